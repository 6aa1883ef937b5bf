/*
 * kadmin — a consumer group seen from outside: partitions, committed
 * offsets, watermarks, members, message timestamps, and commits on the
 * group's behalf.
 */
#include "kadmin.h"

#include "clock.h"
#include "kconf.h"
#include "listoffsets.h"
#include "log.h"

#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TIMEOUT_MS 10000
/* The binary search over message timestamps stops when this few offsets
 * are left: one sequential read of them costs less than more lookups. */
#define LINEAR_WINDOW 64

struct akv_kadmin {
    rd_kafka_t *rk;     /* group.id set, never subscribes */
    rd_kafka_t *reader; /* no group.id: reads single partitions */
    rd_kafka_topic_t *reader_rkt;
    char *group;
    char *topic;
};

/* A client configuration: the settings' brokers and pass-through
 * properties, then \p fixed (name, value, ..., NULL), which no property
 * may undo. */
static akv_err_t client(const struct akv_settings *s, const char *const *fixed,
                        rd_kafka_t **rkp, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    akv_err_t err = AKV_ERR_CONFIG;
    char kerr[512];
    size_t i;

    if (akv_kconf_set(conf, "bootstrap.servers", s->kafka_brokers, errstr,
                      errstr_size) ||
        akv_kconf_set(conf, "client.id", "ak2vault-admin", errstr,
                      errstr_size) ||
        akv_kconf_set(conf, "log_level", "3", errstr, errstr_size)) {
        goto out;
    }
    if (akv_kconf_properties(conf, s, errstr, errstr_size) < 0) {
        goto out;
    }
    for (i = 0; fixed[i]; i += 2) {
        if (akv_kconf_set(conf, fixed[i], fixed[i + 1], errstr, errstr_size)) {
            goto out;
        }
    }
    rd_kafka_conf_set_log_cb(conf, akv_kconf_log);
    *rkp = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
    if (!*rkp) {
        err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                       "cannot create a Kafka client: %s", kerr);
        goto out;
    }
    conf = NULL;
    err = AKV_OK;
out:
    if (conf) {
        rd_kafka_conf_destroy(conf);
    }
    return err;
}

akv_err_t akv_kadmin_new(struct akv_kadmin **kap, const struct akv_settings *s,
                         const char *group, const char *topic, char *errstr,
                         size_t errstr_size)
{
    struct akv_kadmin *ka = calloc(1, sizeof(*ka));
    const char *group_conf[] = {"group.id",
                                NULL,
                                "enable.auto.commit",
                                "false",
                                "enable.auto.offset.store",
                                "false",
                                NULL};
    /* Without a group.id this consumer cannot commit (nor store offsets
     * to commit); auto.offset.reset "error" makes an offset gone from the
     * log an error instead of a silent jump. A fetch at the end of the
     * partition holds the broker connection for fetch.wait.max.ms, and
     * the next read waits for it: keep it short. */
    const char *const reader_conf[] = {"enable.auto.commit",
                                       "false",
                                       "enable.auto.offset.store",
                                       "false",
                                       "enable.partition.eof",
                                       "true",
                                       "auto.offset.reset",
                                       "error",
                                       "fetch.wait.max.ms",
                                       "5",
                                       "queued.min.messages",
                                       "1000",
                                       NULL};
    akv_err_t err;

    *kap = ka;
    if (!ka) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    ka->group = strdup(group ? group : s->kafka_group);
    ka->topic = strdup(topic ? topic : s->kafka_topic);
    if (!ka->group || !ka->topic) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    group_conf[1] = ka->group;
    err = client(s, group_conf, &ka->rk, errstr, errstr_size);
    if (err) {
        return err;
    }
    err = client(s, reader_conf, &ka->reader, errstr, errstr_size);
    if (err) {
        return err;
    }
    ka->reader_rkt = rd_kafka_topic_new(ka->reader, ka->topic, NULL);
    if (!ka->reader_rkt) {
        return akv_errf(AKV_ERR_KAFKA, errstr, errstr_size, "topic %s: %s",
                        ka->topic, rd_kafka_err2str(rd_kafka_last_error()));
    }
    return AKV_OK;
}

void akv_kadmin_destroy(struct akv_kadmin *ka)
{
    if (!ka) {
        return;
    }
    if (ka->reader_rkt) {
        rd_kafka_topic_destroy(ka->reader_rkt);
    }
    if (ka->reader) {
        rd_kafka_destroy(ka->reader);
    }
    if (ka->rk) {
        rd_kafka_destroy(ka->rk);
    }
    free(ka->group);
    free(ka->topic);
    free(ka);
}

const char *akv_kadmin_group(const struct akv_kadmin *ka)
{
    return ka->group;
}

const char *akv_kadmin_topic(const struct akv_kadmin *ka)
{
    return ka->topic;
}

static int cmp_kpart(const void *a, const void *b)
{
    const struct akv_kpart *x = a;
    const struct akv_kpart *y = b;

    return (x->partition > y->partition) - (x->partition < y->partition);
}

/* Reads the start and the end of each of the \p n partitions' logs. */
static akv_err_t read_log_range(struct akv_kadmin *ka, struct akv_kpart *parts,
                                size_t n, char *errstr, size_t errstr_size)
{
    static const int64_t which[2] = {RD_KAFKA_OFFSET_BEGINNING,
                                     RD_KAFKA_OFFSET_END};
    int32_t *ids = malloc((n ? n : 1) * sizeof(*ids));
    akv_err_t err = AKV_OK;
    size_t i;
    int w;

    if (!ids) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    for (i = 0; i < n; i++) {
        ids[i] = parts[i].partition;
    }
    for (w = 0; w < 2 && !err; w++) {
        rd_kafka_resp_err_t kerr;
        rd_kafka_topic_partition_list_t *l = akv_list_offsets(
            ka->rk, ka->topic, ids, (int)n, which[w], TIMEOUT_MS, &kerr);

        if (!l) {
            err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                           "cannot read the log range of %s: %s", ka->topic,
                           rd_kafka_err2str(kerr));
            break;
        }
        for (i = 0; i < n && !err; i++) {
            const rd_kafka_topic_partition_t *t = &l->elems[i];

            if (t->err) {
                err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                               "cannot read the log range of partition %d: %s",
                               (int)t->partition, rd_kafka_err2str(t->err));
            } else if (w == 0) {
                parts[i].low = t->offset;
            } else {
                parts[i].high = t->offset;
            }
        }
        rd_kafka_topic_partition_list_destroy(l);
    }
    free(ids);
    return err;
}

/* The topic's partitions, sorted, from the metadata of that topic alone. */
static akv_err_t topic_partitions(struct akv_kadmin *ka,
                                  struct akv_kpart **partsp, size_t *np,
                                  char *errstr, size_t errstr_size)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(ka->rk, ka->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    struct akv_kpart *parts;
    rd_kafka_resp_err_t kerr;
    akv_err_t err = AKV_OK;
    size_t n;
    size_t i;

    if (!rkt) {
        return akv_errf(AKV_ERR_KAFKA, errstr, errstr_size, "topic %s: %s",
                        ka->topic, rd_kafka_err2str(rd_kafka_last_error()));
    }
    kerr = rd_kafka_metadata(ka->rk, 0, rkt, &md, TIMEOUT_MS);
    if (!kerr && (md->topic_cnt != 1 || md->topics[0].err)) {
        kerr = md->topic_cnt == 1 ? md->topics[0].err
                                  : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    }
    if (kerr) {
        err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                       "cannot read the partitions of %s: %s", ka->topic,
                       rd_kafka_err2str(kerr));
        goto out;
    }
    n = (size_t)md->topics[0].partition_cnt;
    parts = calloc(n ? n : 1, sizeof(*parts));
    if (!parts) {
        err = akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        parts[i].partition = md->topics[0].partitions[i].id;
        parts[i].member = -1;
    }
    qsort(parts, n, sizeof(*parts), cmp_kpart);
    *partsp = parts;
    *np = n;
out:
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return err;
}

/* The group's committed offset of each of the \p n partitions (-1: none).
 * The coordinator answers for the group without our joining it. */
static akv_err_t read_committed(struct akv_kadmin *ka, struct akv_kpart *parts,
                                size_t n, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new((int)n);
    rd_kafka_resp_err_t kerr;
    akv_err_t err = AKV_OK;
    size_t i;

    for (i = 0; i < n; i++) {
        rd_kafka_topic_partition_list_add(list, ka->topic, parts[i].partition);
    }
    kerr = rd_kafka_committed(ka->rk, list, TIMEOUT_MS);
    if (kerr) {
        err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                       "cannot read the committed offsets of group %s: %s",
                       ka->group, rd_kafka_err2str(kerr));
    }
    for (i = 0; i < n && !err; i++) {
        const rd_kafka_topic_partition_t *t = &list->elems[i];

        if (t->err) {
            err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                           "cannot read the committed offset of partition "
                           "%d: %s",
                           (int)t->partition, rd_kafka_err2str(t->err));
        } else {
            parts[i].committed = t->offset >= 0 ? t->offset : -1;
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
    return err;
}

akv_err_t akv_kadmin_partitions(struct akv_kadmin *ka,
                                struct akv_kpart **partsp, size_t *np,
                                char *errstr, size_t errstr_size)
{
    struct akv_kpart *parts = NULL;
    size_t n = 0;
    akv_err_t err;

    *partsp = NULL;
    *np = 0;
    err = topic_partitions(ka, &parts, &n, errstr, errstr_size);
    if (err) {
        return err;
    }
    err = read_committed(ka, parts, n, errstr, errstr_size);
    if (!err) {
        err = read_log_range(ka, parts, n, errstr, errstr_size);
    }
    if (err) {
        free(parts);
        return err;
    }
    *partsp = parts;
    *np = n;
    return AKV_OK;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

void akv_kgroup_free(struct akv_kgroup *g)
{
    size_t i;

    if (g->members) {
        for (i = 0; i < g->member_count; i++) {
            free(g->members[i].consumer_id);
            free(g->members[i].client_id);
            free(g->members[i].host);
        }
        free(g->members);
    }
    memset(g, 0, sizeof(*g));
}

static int get_i16(const unsigned char **p, const unsigned char *end,
                   int32_t *v)
{
    if (end - *p < 2) {
        return -1;
    }
    *v = (int16_t)(((*p)[0] << 8) | (*p)[1]);
    *p += 2;
    return 0;
}

static int get_i32(const unsigned char **p, const unsigned char *end,
                   int32_t *v)
{
    if (end - *p < 4) {
        return -1;
    }
    *v = (int32_t)(((uint32_t)(*p)[0] << 24) | ((uint32_t)(*p)[1] << 16) |
                   ((uint32_t)(*p)[2] << 8) | (uint32_t)(*p)[3]);
    *p += 4;
    return 0;
}

int akv_kadmin_assignment_partitions(const void *buf, size_t len,
                                     const char *topic, int32_t *out,
                                     size_t max)
{
    const unsigned char *p = buf;
    const unsigned char *end = p + len;
    size_t tlen = strlen(topic);
    size_t found = 0;
    int32_t version, ntopics, nlen, nparts, part;
    int32_t t, k;

    if (len == 0) {
        return 0; /* a member without partitions yet */
    }
    if (!buf || get_i16(&p, end, &version) || version < 0 ||
        get_i32(&p, end, &ntopics) || ntopics < 0) {
        return -1;
    }
    for (t = 0; t < ntopics; t++) {
        int match;

        if (get_i16(&p, end, &nlen) || nlen < 0 || end - p < nlen) {
            return -1;
        }
        match = (size_t)nlen == tlen && memcmp(p, topic, tlen) == 0;
        p += nlen;
        if (get_i32(&p, end, &nparts) || nparts < 0) {
            return -1;
        }
        for (k = 0; k < nparts; k++) {
            if (get_i32(&p, end, &part)) {
                return -1;
            }
            if (match && found < max) {
                out[found++] = part;
            }
        }
    }
    /* The user data that follows is the assignor's business. */
    return (int)found;
}

/* Copies the members of \p gi and marks the partitions each owns. */
static void fill_group(struct akv_kadmin *ka, struct akv_kgroup *g,
                       const struct rd_kafka_group_info *gi,
                       struct akv_kpart *parts, size_t n)
{
    int32_t *owned = calloc(n ? n : 1, sizeof(*owned));
    int m;
    int k;
    size_t i;

    snprintf(g->state, sizeof(g->state), "%s", gi->state ? gi->state : "?");
    g->members = calloc(gi->member_cnt > 0 ? (size_t)gi->member_cnt : 1,
                        sizeof(*g->members));
    if (!g->members || !owned) {
        free(owned);
        return;
    }
    g->member_count = gi->member_cnt > 0 ? (size_t)gi->member_cnt : 0;
    for (m = 0; m < gi->member_cnt; m++) {
        const struct rd_kafka_group_member_info *mi = &gi->members[m];
        int cnt = 0;

        g->members[m].consumer_id = dup_or_null(mi->member_id);
        g->members[m].client_id = dup_or_null(mi->client_id);
        g->members[m].host = dup_or_null(mi->client_host);
        if (gi->protocol_type && strcmp(gi->protocol_type, "consumer") == 0) {
            cnt = akv_kadmin_assignment_partitions(
                mi->member_assignment,
                mi->member_assignment_size > 0
                    ? (size_t)mi->member_assignment_size
                    : 0,
                ka->topic, owned, n);
        }
        for (k = 0; k < cnt; k++) {
            for (i = 0; i < n; i++) {
                if (parts[i].partition == owned[k]) {
                    parts[i].member = m;
                }
            }
        }
    }
    free(owned);
}

/*
 * ListGroups + DescribeGroups (rd_kafka_list_groups), not the Admin API's
 * rd_kafka_DescribeConsumerGroups(): in librdkafka before 2.15 a
 * coordinator request that cannot be sent — a broker without
 * DescribeGroups, such as the mock cluster — frees its state twice and
 * the process aborts (librdkafka issues 3663 and 4605).
 */
akv_err_t akv_kadmin_describe(struct akv_kadmin *ka, struct akv_kgroup *g,
                              struct akv_kpart *parts, size_t n)
{
    const struct rd_kafka_group_list *gl = NULL;
    rd_kafka_resp_err_t kerr;
    int i;

    memset(g, 0, sizeof(*g));
    kerr = rd_kafka_list_groups(ka->rk, ka->group, &gl, TIMEOUT_MS);
    if (kerr && kerr != RD_KAFKA_RESP_ERR__PARTIAL) {
        snprintf(g->error, sizeof(g->error), "%s", rd_kafka_err2str(kerr));
        goto out;
    }
    for (i = 0; gl && i < gl->group_cnt; i++) {
        const struct rd_kafka_group_info *gi = &gl->groups[i];

        if (strcmp(gi->group, ka->group) != 0) {
            continue;
        }
        if (gi->err) {
            snprintf(g->error, sizeof(g->error), "%s",
                     rd_kafka_err2str(gi->err));
            goto out;
        }
        g->known = 1;
        fill_group(ka, g, gi, parts, n);
        goto out;
    }
    if (kerr) {
        /* Some broker did not answer: it may be the coordinator. */
        snprintf(g->error, sizeof(g->error), "%s", rd_kafka_err2str(kerr));
        goto out;
    }
    /* No broker knows the group: it has neither members nor offsets. */
    g->known = 1;
    snprintf(g->state, sizeof(g->state), "Dead");
out:
    if (gl) {
        rd_kafka_group_list_destroy(gl);
    }
    return AKV_OK;
}

static int index_of(const int32_t *partitions, size_t n, int32_t partition)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (partitions[i] == partition) {
            return (int)i;
        }
    }
    return -1;
}

/* Starts reading each of \p partitions at its offset into a new queue:
 * the simple (legacy) consumer API, which needs no group. A fresh queue
 * per read holds nothing an earlier read fetched. */
static akv_err_t reader_start(struct akv_kadmin *ka, const int32_t *partitions,
                              const int64_t *offsets, size_t n,
                              rd_kafka_queue_t **qp, size_t *started,
                              char *errstr, size_t errstr_size)
{
    *started = 0;
    *qp = rd_kafka_queue_new(ka->reader);
    if (!*qp) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    for (; *started < n; (*started)++) {
        if (rd_kafka_consume_start_queue(ka->reader_rkt, partitions[*started],
                                         offsets[*started], *qp) == -1) {
            return akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                            "cannot read partition %d of %s: %s",
                            (int)partitions[*started], ka->topic,
                            rd_kafka_err2str(rd_kafka_last_error()));
        }
    }
    return AKV_OK;
}

static void reader_stop(struct akv_kadmin *ka, const int32_t *partitions,
                        size_t started, rd_kafka_queue_t *q)
{
    size_t i;

    for (i = 0; i < started; i++) {
        rd_kafka_consume_stop(ka->reader_rkt, partitions[i]);
    }
    if (q) {
        rd_kafka_queue_destroy(q);
    }
}

/* The next message (or end of partition, *eof) from \p q, within
 * \p deadline. Errors of the client as a whole (a broker going away) are
 * retried until the deadline; an error of a partition ends the read. */
static akv_err_t reader_next(struct akv_kadmin *ka, rd_kafka_queue_t *q,
                             const int32_t *partitions, size_t n,
                             int64_t deadline, int *idx, int64_t *offset,
                             int64_t *ts, int *eof, char *errstr,
                             size_t errstr_size)
{
    char last[256] = "";

    for (;;) {
        int64_t left = deadline - akv_wall_ms();
        rd_kafka_message_t *rkm;

        if (left <= 0) {
            return akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                            "no message from %s in %d ms%s%s", ka->topic,
                            TIMEOUT_MS, *last ? ": " : "", last);
        }
        rkm = rd_kafka_consume_queue(q, left > 200 ? 200 : (int)left);
        if (!rkm) {
            continue;
        }
        *idx = rkm->rkt ? index_of(partitions, n, rkm->partition) : -1;
        if (rkm->err && rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (*idx >= 0) {
                akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                         "cannot read partition %d at offset %lld: %s",
                         (int)rkm->partition, (long long)rkm->offset,
                         rd_kafka_message_errstr(rkm));
                rd_kafka_message_destroy(rkm);
                return AKV_ERR_KAFKA;
            }
            snprintf(last, sizeof(last), "%s", rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
            continue;
        }
        if (*idx < 0) {
            rd_kafka_message_destroy(rkm);
            continue;
        }
        *eof = rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF;
        *offset = rkm->offset;
        *ts = *eof ? -1 : rd_kafka_message_timestamp(rkm, NULL);
        rd_kafka_message_destroy(rkm);
        return AKV_OK;
    }
}

akv_err_t akv_kadmin_first_messages(struct akv_kadmin *ka,
                                    const int32_t *partitions,
                                    const int64_t *offsets, size_t n,
                                    int64_t *msg_offsets, int64_t *timestamps,
                                    char *errstr, size_t errstr_size)
{
    int64_t deadline = akv_wall_ms() + TIMEOUT_MS;
    rd_kafka_queue_t *q = NULL;
    char *done = NULL;
    size_t remaining = n;
    size_t started = 0;
    akv_err_t err = AKV_OK;
    size_t i;

    for (i = 0; i < n; i++) {
        msg_offsets[i] = -1;
        timestamps[i] = -1;
    }
    if (n == 0) {
        return AKV_OK;
    }
    done = calloc(n, 1);
    if (!done) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    err = reader_start(ka, partitions, offsets, n, &q, &started, errstr,
                       errstr_size);
    while (!err && remaining > 0) {
        int64_t offset = -1;
        int64_t ts = -1;
        int eof = 0;
        int idx = -1;

        err = reader_next(ka, q, partitions, n, deadline, &idx, &offset, &ts,
                          &eof, errstr, errstr_size);
        /* Only the first message at or after the offset asked counts. */
        if (err || done[idx] || (!eof && offset < offsets[idx])) {
            continue;
        }
        done[idx] = 1;
        remaining--;
        if (!eof) {
            msg_offsets[idx] = offset;
            timestamps[idx] = ts;
        }
    }
    reader_stop(ka, partitions, started, q);
    free(done);
    return err;
}

struct one_partition {
    struct akv_kadmin *ka;
    int32_t partition;
};

static akv_err_t read_one(void *opaque, int64_t offset, int64_t *msg_offset,
                          int64_t *ts, char *errstr, size_t errstr_size)
{
    struct one_partition *op = opaque;
    akv_err_t err;

    err = akv_kadmin_first_messages(op->ka, &op->partition, &offset, 1,
                                    msg_offset, ts, errstr, errstr_size);
    if (!err && *msg_offset >= 0 && *ts < 0) {
        err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                       "partition %d offset %lld: the message has no "
                       "timestamp",
                       (int)op->partition, (long long)*msg_offset);
    }
    return err;
}

static akv_err_t scan_one(void *opaque, int64_t from, int64_t to, int64_t ts,
                          int64_t *found, char *errstr, size_t errstr_size)
{
    struct one_partition *op = opaque;
    int64_t deadline = akv_wall_ms() + TIMEOUT_MS;
    rd_kafka_queue_t *q = NULL;
    size_t started = 0;
    akv_err_t err;

    *found = to;
    err = reader_start(op->ka, &op->partition, &from, 1, &q, &started, errstr,
                       errstr_size);
    while (!err) {
        int64_t offset = -1;
        int64_t mts = -1;
        int eof = 0;
        int idx = -1;

        err = reader_next(op->ka, q, &op->partition, 1, deadline, &idx, &offset,
                          &mts, &eof, errstr, errstr_size);
        if (err || (!eof && offset < from)) {
            continue;
        }
        if (eof || offset >= to) {
            break;
        }
        if (mts < 0) {
            err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                           "partition %d offset %lld: the message has no "
                           "timestamp",
                           (int)op->partition, (long long)offset);
            break;
        }
        if (mts >= ts) {
            *found = offset;
            break;
        }
    }
    reader_stop(op->ka, &op->partition, started, q);
    return err;
}

/* Does \p answer hold: the message at it is at or after ts, the one
 * before it before ts? A gap just before it (compaction, transaction
 * markers) cannot be checked cheaply and counts as not holding. */
static akv_err_t answer_holds(int64_t low, int64_t high, int64_t ts,
                              int64_t answer, akv_kadmin_read_fn read,
                              void *opaque, int *holds, char *errstr,
                              size_t errstr_size)
{
    int64_t mo = -1;
    int64_t mts = -1;
    akv_err_t err;

    *holds = 0;
    if (answer < high) {
        err = read(opaque, answer, &mo, &mts, errstr, errstr_size);
        if (err || mo < 0 || mts < ts) {
            return err;
        }
    }
    if (answer > low) {
        err = read(opaque, answer - 1, &mo, &mts, errstr, errstr_size);
        if (err || mo < 0 || mo >= answer || mts >= ts) {
            return err;
        }
    }
    *holds = 1;
    return AKV_OK;
}

akv_err_t akv_kadmin_time_search(int64_t low, int64_t high, int64_t ts,
                                 int64_t answer, akv_kadmin_read_fn read,
                                 akv_kadmin_scan_fn scan, void *opaque,
                                 int64_t *offset, int *searched, char *errstr,
                                 size_t errstr_size)
{
    int64_t lo = low;
    int64_t hi = high;
    int holds = 0;
    akv_err_t err;

    *searched = 0;
    *offset = high;
    if (high <= low) {
        return AKV_OK;
    }
    if (answer < 0 || answer > high) {
        answer = high;
    } else if (answer < low) {
        answer = low;
    }
    err = answer_holds(low, high, ts, answer, read, opaque, &holds, errstr,
                       errstr_size);
    if (err || holds) {
        *offset = answer;
        return err;
    }
    *searched = 1;
    /* The answer, the first offset whose next message is at or after ts,
     * stays in [lo, hi]; hi == high stands for "none". */
    while (hi - lo > LINEAR_WINDOW) {
        int64_t mid = lo + (hi - lo) / 2;
        int64_t mo = -1;
        int64_t mts = -1;

        err = read(opaque, mid, &mo, &mts, errstr, errstr_size);
        if (err) {
            return err;
        }
        if (mo < 0 || mo >= hi || mts >= ts) {
            hi = mid;
        } else {
            lo = mo + 1;
        }
    }
    if (lo < hi) {
        err = scan(opaque, lo, hi, ts, offset, errstr, errstr_size);
        if (err || *offset < hi) {
            return err;
        }
    }
    /* The message at or after hi is the one: hi itself may fall in a gap
     * of the log, or past its last message. */
    *offset = high;
    if (hi < high) {
        int64_t mo = -1;
        int64_t mts = -1;

        err = read(opaque, hi, &mo, &mts, errstr, errstr_size);
        if (!err && mo >= 0) {
            *offset = mo;
        }
    }
    return err;
}

akv_err_t akv_kadmin_offset_for_time(struct akv_kadmin *ka,
                                     const struct akv_kpart *p, int64_t ts_ms,
                                     int64_t *offset, int *searched,
                                     char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new(1);
    struct one_partition op = {ka, p->partition};
    rd_kafka_resp_err_t kerr;
    int64_t answer = -1;

    rd_kafka_topic_partition_list_add(list, ka->topic, p->partition)->offset =
        ts_ms;
    kerr = rd_kafka_offsets_for_times(ka->rk, list, TIMEOUT_MS);
    if (!kerr && !list->elems[0].err) {
        answer = list->elems[0].offset;
    } else {
        /* No answer is checked like a wrong one: by the search. */
        akv_log_debug("kadmin", "partition %d: offsets_for_times: %s",
                      (int)p->partition,
                      rd_kafka_err2str(kerr ? kerr : list->elems[0].err));
    }
    rd_kafka_topic_partition_list_destroy(list);
    return akv_kadmin_time_search(p->low, p->high, ts_ms, answer, read_one,
                                  scan_one, &op, offset, searched, errstr,
                                  errstr_size);
}

static int group_is_active(rd_kafka_resp_err_t e)
{
    return e == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID ||
           e == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
           e == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
           e == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID;
}

akv_err_t akv_kadmin_commit(struct akv_kadmin *ka, const int32_t *partitions,
                            const int64_t *offsets, size_t n, int *refused,
                            char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new((int)n);
    rd_kafka_resp_err_t kerr;
    akv_err_t err = AKV_OK;
    size_t i;
    int k;

    *refused = 0;
    if (n == 0) {
        rd_kafka_topic_partition_list_destroy(list);
        return AKV_OK;
    }
    for (i = 0; i < n; i++) {
        rd_kafka_topic_partition_list_add(list, ka->topic, partitions[i])
            ->offset = offsets[i];
    }
    /* Never having joined, this consumer commits with no member id and no
     * generation: Kafka accepts that only while the group is empty. */
    kerr = rd_kafka_commit(ka->rk, list, 0);
    for (k = 0; !kerr && k < list->cnt; k++) {
        kerr = list->elems[k].err;
    }
    if (kerr && group_is_active(kerr)) {
        *refused = 1;
        err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                       "group %s has active members: its coordinator refused "
                       "a commit from outside the group (%s)",
                       ka->group, rd_kafka_err2str(kerr));
    } else if (kerr) {
        err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                       "cannot commit the offsets of group %s: %s", ka->group,
                       rd_kafka_err2str(kerr));
    }
    rd_kafka_topic_partition_list_destroy(list);
    return err;
}
