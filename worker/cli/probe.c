/*
 * probe — the upstream checks of `check-config --connect`.
 *
 * The checks reuse the worker's own clients (vault.c, authentik.c) with
 * the configured credentials and TLS options, only with their timeouts
 * capped, so a check passes exactly when the worker's first requests
 * would. Kafka is asked through a consumer handle that never joins the
 * group, like `ak2vault lag`.
 *
 * Kafka's ACLs are checked as far as that can be done without joining the
 * group or writing: Describe on the topic, the group and the dead-letter
 * topic (metadata, committed offsets), Read on the topic (one fetch at the
 * log end), and Write on some topic (the dead-letter producer's idempotent
 * producer id, which Kafka grants for Write on any topic). Read on the
 * group (join, commit) and Write on the dead-letter topic itself are left
 * to the worker, which names either when it is refused.
 */
#include "probe.h"

#include "authentik.h"
#include "clock.h"
#include "consumer.h"
#include "kconf.h"
#include "log.h"
#include "vault.h"

#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

/* An identifier whose paths stand for every token's: policies grant the
 * paths below {kv_mount}/data/{prefix}/ with a glob, and "x" is one. */
#define PROBE_IDENTIFIER "x"

struct probe {
    FILE *out;
    int failed;
};

/* Prints "NAME: ok (detail)" or "NAME: FAILED: detail". Every line goes
 * through the log scrubber: error texts come from upstreams and libraries,
 * and none of them may carry a registered secret out. */
__attribute__((format(printf, 4, 5))) static void
report(struct probe *p, const char *name, int ok, const char *fmt, ...)
{
    char detail[1024];
    char line[1200];
    va_list ap;

    size_t n;

    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    /* Vault's multierror texts end in white space once flattened, and an
     * answer without a message leaves "HTTP 404: " behind. */
    n = strlen(detail);
    while (n > 0 && (detail[n - 1] == ' ' || detail[n - 1] == '\n' ||
                     detail[n - 1] == ':')) {
        detail[--n] = '\0';
    }
    if (ok) {
        snprintf(line, sizeof(line), "%s: ok (%s)", name, detail);
    } else {
        snprintf(line, sizeof(line), "%s: FAILED: %s", name, detail);
        p->failed++;
    }
    akv_log_scrub(line, sizeof(line));
    fprintf(p->out, "%s\n", line);
    fflush(p->out);
}

/* A check that could not run because an earlier one failed; the earlier
 * failure already decides the exit status. */
static void skipped(struct probe *p, const char *name, const char *why)
{
    fprintf(p->out, "%s: skipped (%s)\n", name, why);
    fflush(p->out);
}

static long long cap_ms(long long configured)
{
    return configured < AKV_PROBE_TIMEOUT_MS ? configured
                                             : AKV_PROBE_TIMEOUT_MS;
}

static const char *plural(long long n)
{
    return n == 1 ? "" : "s";
}

/* --- Kafka -------------------------------------------------------------- */

struct kafka_probe {
    char cause[512];            /* the last error about one broker */
    char all_down[128];         /* "1/1 brokers are down", once they all are */
    rd_kafka_resp_err_t denied; /* the last authorization error */
};

/* Served by rd_kafka_poll() on this thread. */
static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason,
                           void *opaque)
{
    struct kafka_probe *kp = opaque;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        snprintf(kp->all_down, sizeof(kp->all_down), "%s", reason);
    } else if (akv_kafka_denial_of(err) != AKV_DENIED_NONE) {
        kp->denied = err;
    } else {
        snprintf(kp->cause, sizeof(kp->cause), "%s", reason);
    }
}

/* librdkafka's own lines (connection refused, ...) only at debug level:
 * the check's line says what failed. */
static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf)
{
    (void)rk;
    (void)level;
    akv_log_debug("kafka", "%s: %s", fac, buf);
}

static const rd_kafka_metadata_topic_t *
find_topic(const struct rd_kafka_metadata *md, const char *name)
{
    int i;

    for (i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, name) == 0) {
            return &md->topics[i];
        }
    }
    return NULL;
}

/* Checks \p name in \p md; @returns 1 when it exists with leaders.
 * \p need: the operation the worker needs on it, named when the topic is
 * not authorized. */
static int check_topic(struct probe *p, const char *check,
                       const struct rd_kafka_metadata *md, const char *name,
                       const char *need, const char *missing_hint)
{
    const rd_kafka_metadata_topic_t *t = find_topic(md, name);
    int leaderless = 0;
    int i;

    /* Kafka leaves a topic the principal may not describe out of the
     * listing, as if it did not exist. Asking for it by name would tell
     * the two apart, but some clusters (librdkafka's mock among them)
     * create a topic asked for by name, and this check never creates
     * one. */
    if (!t) {
        report(p, check, 0,
               "topic %s does not exist, or this principal may not see it "
               "(the worker needs %s on topic %s)%s",
               name, need, name, missing_hint);
        return 0;
    }
    if (akv_kafka_denial_of(t->err) == AKV_DENIED_TOPIC) {
        report(p, check, 0, "topic %s: %s: the principal needs %s on topic %s",
               name, rd_kafka_err2str(t->err), need, name);
        return 0;
    }
    if (t->err) {
        report(p, check, 0, "topic %s: %s", name, rd_kafka_err2str(t->err));
        return 0;
    }
    for (i = 0; i < t->partition_cnt; i++) {
        if (t->partitions[i].err || t->partitions[i].leader < 0) {
            leaderless++;
        }
    }
    if (t->partition_cnt == 0 || leaderless) {
        report(p, check, 0, "topic %s: %d of %d partitions have no leader",
               name, leaderless, t->partition_cnt);
        return 0;
    }
    return 1;
}

/* The committed offsets come from the group coordinator: reading them
 * proves it can be found and answers, without joining the group. */
static void check_group(struct probe *p, rd_kafka_t *rk, struct kafka_probe *kp,
                        const struct akv_settings *s,
                        const rd_kafka_metadata_topic_t *t)
{
    rd_kafka_topic_partition_list_t *parts =
        rd_kafka_topic_partition_list_new(t ? t->partition_cnt : 1);
    rd_kafka_resp_err_t kerr;
    int committed = 0;
    int i;

    if (t) {
        for (i = 0; i < t->partition_cnt; i++) {
            rd_kafka_topic_partition_list_add(parts, s->kafka_topic,
                                              t->partitions[i].id);
        }
    } else {
        rd_kafka_topic_partition_list_add(parts, s->kafka_topic, 0);
    }
    /* Already refused while the fetch check looked for the coordinator:
     * asking again would only wait for the timeout. */
    rd_kafka_poll(rk, 0);
    kerr = akv_kafka_denial_of(kp->denied) == AKV_DENIED_GROUP
               ? kp->denied
               : rd_kafka_committed(rk, parts, AKV_PROBE_TIMEOUT_MS);
    /* A refused FindCoordinator is retried inside librdkafka until the
     * timeout; the refusal itself comes as an error event. */
    if (kerr == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        rd_kafka_message_t *rkm;

        rd_kafka_poll(rk, 0);
        while ((rkm = rd_kafka_consumer_poll(rk, 0)) != NULL) {
            if (akv_kafka_denial_of(rkm->err) == AKV_DENIED_GROUP) {
                kp->denied = rkm->err;
            }
            rd_kafka_message_destroy(rkm);
        }
        if (akv_kafka_denial_of(kp->denied) == AKV_DENIED_GROUP) {
            kerr = kp->denied;
        }
    }
    /* Without the topic, a partition's "unknown topic" is still an answer
     * from the coordinator. */
    for (i = 0; !kerr && t && i < parts->cnt; i++) {
        if (parts->elems[i].err) {
            kerr = parts->elems[i].err;
        } else if (parts->elems[i].offset >= 0) {
            committed++;
        }
    }
    if (akv_kafka_denial_of(kerr) == AKV_DENIED_GROUP) {
        report(p, "kafka group", 0,
               "group %s: %s: the principal needs Read on group %s",
               s->kafka_group, rd_kafka_err2str(kerr), s->kafka_group);
    } else if (akv_kafka_denial_of(kerr) == AKV_DENIED_TOPIC) {
        report(p, "kafka group", 0,
               "group %s: committed offsets of topic %s: %s: the principal "
               "needs Read on topic %s",
               s->kafka_group, s->kafka_topic, rd_kafka_err2str(kerr),
               s->kafka_topic);
    } else if (kerr) {
        report(p, "kafka group", 0,
               "group %s: the coordinator did not answer: %s", s->kafka_group,
               rd_kafka_err2str(kerr));
    } else if (t) {
        report(p, "kafka group", 1,
               "group %s: coordinator answered, committed offsets on %d of "
               "%d partition%s; joining and committing (Read) not tried",
               s->kafka_group, committed, parts->cnt, plural(parts->cnt));
    } else {
        report(p, "kafka group", 1, "group %s: coordinator answered",
               s->kafka_group);
    }
    rd_kafka_topic_partition_list_destroy(parts);
}

static rd_kafka_t *kafka_handle(const struct akv_settings *s,
                                struct kafka_probe *kp, char *errstr,
                                size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    char kerr[512];
    size_t i;
    static const char *const fixed[][2] = {
        {"enable.auto.commit", "false"},
        {"client.id", "ak2vault-check"},
        {"log.connection.close", "false"},
        /* the fetch check's answer when the partition has nothing new */
        {"enable.partition.eof", "true"},
    };

    if (akv_kconf_properties(conf, s, errstr, errstr_size) < 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", s->kafka_brokers, kerr,
                          sizeof(kerr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", s->kafka_group, kerr,
                          sizeof(kerr)) != RD_KAFKA_CONF_OK) {
        akv_errf(AKV_ERR_CONFIG, errstr, errstr_size, "%s", kerr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    for (i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
        if (rd_kafka_conf_set(conf, fixed[i][0], fixed[i][1], kerr,
                              sizeof(kerr)) != RD_KAFKA_CONF_OK) {
            akv_errf(AKV_ERR_CONFIG, errstr, errstr_size, "%s", kerr);
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    rd_kafka_conf_set_opaque(conf, kp);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    rd_kafka_conf_set_log_cb(conf, on_kafka_log);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
    if (!rk) {
        akv_errf(AKV_ERR_KAFKA, errstr, errstr_size, "%s", kerr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return rk;
}

/* Read on the topic: one fetch at the end of \p partition, answered by an
 * end-of-partition event, or refused. @returns 1 when answered, 0 when
 * refused (reported), -1 when no answer came in time. */
static int check_fetch(struct probe *p, rd_kafka_t *rk, struct kafka_probe *kp,
                       const struct akv_settings *s, int32_t partition)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    long long deadline = akv_mono_ms() + AKV_PROBE_TIMEOUT_MS;
    int answered = -1;

    rd_kafka_topic_partition_list_add(l, s->kafka_topic, partition)->offset =
        RD_KAFKA_OFFSET_END;
    if (rd_kafka_assign(rk, l) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_topic_partition_list_destroy(l);
        return -1;
    }
    rd_kafka_topic_partition_list_destroy(l);
    while (answered < 0 && akv_mono_ms() < deadline) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 100);

        if (!rkm) {
            continue;
        }
        if (!rkm->err || rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            answered = 1;
        } else if (akv_kafka_denial_of(rkm->err) == AKV_DENIED_GROUP) {
            /* the assignment looked for the group's coordinator too */
            kp->denied = rkm->err;
        } else if (akv_kafka_denial_of(rkm->err) == AKV_DENIED_TOPIC) {
            report(p, "kafka", 0,
                   "topic %s: a fetch was refused: %s: the principal needs "
                   "Read on topic %s",
                   s->kafka_topic, rd_kafka_err2str(rkm->err), s->kafka_topic);
            answered = 0;
        }
        rd_kafka_message_destroy(rkm);
    }
    rd_kafka_assign(rk, NULL);
    return answered;
}

struct pid_probe {
    int assigned;            /* the producer id was granted */
    rd_kafka_resp_err_t err; /* the fatal error that refused it */
};

static int on_pid_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct pid_probe *pp = opaque;

    (void)rk;
    (void)len;
    if (strstr(json, "\"idemp_state\": \"Assigned\"")) {
        pp->assigned = 1;
    }
    return 0;
}

static void on_pid_error(rd_kafka_t *rk, int err, const char *reason,
                         void *opaque)
{
    struct pid_probe *pp = opaque;
    char why[256];

    (void)reason;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        pp->err = rd_kafka_fatal_error(rk, why, sizeof(why));
    }
}

/* Write for the dead-letter producer, as far as it shows without writing:
 * its idempotent producer id, granted for Write on any topic. @returns 1
 * granted, 0 refused (reported), -1 unknown. */
static int check_producer_id(struct probe *p, const struct akv_settings *s)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    struct pid_probe pp = {0, RD_KAFKA_RESP_ERR_NO_ERROR};
    long long deadline = akv_mono_ms() + AKV_PROBE_TIMEOUT_MS;
    char errstr[512];
    rd_kafka_t *rk;

    if (akv_kconf_properties(conf, s, errstr, sizeof(errstr)) < 0 ||
        akv_kconf_set(conf, "bootstrap.servers", s->kafka_brokers, errstr,
                      sizeof(errstr)) < 0 ||
        akv_kconf_set(conf, "enable.idempotence", "true", errstr,
                      sizeof(errstr)) < 0 ||
        akv_kconf_set(conf, "statistics.interval.ms", "100", errstr,
                      sizeof(errstr)) < 0 ||
        akv_kconf_set(conf, "client.id", "ak2vault-check", errstr,
                      sizeof(errstr)) < 0) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    rd_kafka_conf_set_opaque(conf, &pp);
    rd_kafka_conf_set_stats_cb(conf, on_pid_stats);
    rd_kafka_conf_set_error_cb(conf, on_pid_error);
    rd_kafka_conf_set_log_cb(conf, on_kafka_log);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        return -1;
    }
    while (!pp.assigned && !pp.err && akv_mono_ms() < deadline) {
        rd_kafka_poll(rk, 100);
    }
    rd_kafka_destroy(rk);
    if (pp.err) {
        report(p, "kafka dlq", 0,
               "the dead-letter producer's id was refused: %s: the principal "
               "may write to no topic; it needs Write on topic %s",
               rd_kafka_err2str(pp.err), s->dlq_topic);
        return 0;
    }
    return pp.assigned ? 1 : -1;
}

/* The checks after the connection, when it failed. */
static void skip_kafka_rest(struct probe *p)
{
    skipped(p, "kafka group", "kafka failed");
    skipped(p, "kafka dlq", "kafka failed");
}

/* The cluster's metadata, asked for every topic: asking for one by name
 * may create it on a cluster that auto-creates topics. Short rounds, so
 * that brokers refusing connections (librdkafka then reports all of them
 * down, into \p kp) fail the check at once rather than at \p deadline. */
static rd_kafka_resp_err_t fetch_metadata(rd_kafka_t *rk,
                                          struct kafka_probe *kp,
                                          long long deadline,
                                          const struct rd_kafka_metadata **md)
{
    rd_kafka_resp_err_t kerr = RD_KAFKA_RESP_ERR__TIMED_OUT;

    for (;;) {
        long long left = deadline - akv_mono_ms();

        kerr = rd_kafka_metadata(
            rk, 1, NULL, md, (int)(left < 500 ? (left > 0 ? left : 1) : 500));
        if (!kerr) {
            break;
        }
        *md = NULL;
        rd_kafka_poll(rk, 0);
        if (kp->all_down[0] || akv_mono_ms() >= deadline) {
            break;
        }
    }
    return kerr;
}

static void report_no_broker(struct probe *p, const struct akv_settings *s,
                             rd_kafka_t *rk, struct kafka_probe *kp,
                             rd_kafka_resp_err_t kerr)
{
    char within[32] = "";

    rd_kafka_poll(rk, 0);
    if (!kp->all_down[0]) {
        snprintf(within, sizeof(within), " within %ds",
                 AKV_PROBE_TIMEOUT_MS / 1000);
    }
    report(p, "kafka", 0, "no broker of %s answered%s: %s%s%s",
           s->kafka_brokers, within,
           kp->cause[0] ? kp->cause : rd_kafka_err2str(kerr),
           kp->all_down[0] ? "; " : "", kp->all_down);
}

/* Describe and Read on the source topic. @returns 1 when it exists with
 * leaders (check_topic()), so that the group's check can use it. */
static int check_source_topic(struct probe *p, const struct akv_settings *s,
                              rd_kafka_t *rk, struct kafka_probe *kp,
                              const struct rd_kafka_metadata *md)
{
    const rd_kafka_metadata_topic_t *t;
    int readable;

    if (!check_topic(p, "kafka", md, s->kafka_topic, "Read", "")) {
        return 0;
    }
    t = find_topic(md, s->kafka_topic);
    readable = check_fetch(p, rk, kp, s, t->partitions[0].id);
    if (readable != 0) {
        report(p, "kafka", 1, "%d broker%s, topic %s has %d partition%s, %s",
               md->broker_cnt, plural(md->broker_cnt), s->kafka_topic,
               t->partition_cnt, plural(t->partition_cnt),
               readable > 0 ? "a fetch was answered"
                            : "no fetch answer in time: Read not verified");
    }
    return 1;
}

/* Describe on the dead-letter topic, and Write through the producer id. */
static void check_dlq(struct probe *p, const struct akv_settings *s,
                      const struct rd_kafka_metadata *md)
{
    const rd_kafka_metadata_topic_t *t;
    int pid;

    if (!s->dlq_enabled) {
        skipped(p, "kafka dlq", "dlq.enabled = false");
        return;
    }
    if (!check_topic(p, "kafka dlq", md, s->dlq_topic, "Write",
                     "; create it like the source topic, or set "
                     "dlq.enabled = false")) {
        return;
    }
    t = find_topic(md, s->dlq_topic);
    pid = check_producer_id(p, s);
    if (pid != 0) {
        report(p, "kafka dlq", 1,
               "topic %s has %d partition%s; %s; writing to it not tried",
               s->dlq_topic, t->partition_cnt, plural(t->partition_cnt),
               pid > 0 ? "producer id granted"
                       : "no producer id in time: Write not verified");
    }
}

static void check_kafka(struct probe *p, const struct akv_settings *s)
{
    struct kafka_probe kp;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t kerr;
    long long deadline = akv_mono_ms() + AKV_PROBE_TIMEOUT_MS;
    char errstr[512];
    rd_kafka_t *rk;
    int topic_ok;

    memset(&kp, 0, sizeof(kp));
    rk = kafka_handle(s, &kp, errstr, sizeof(errstr));
    if (!rk) {
        report(p, "kafka", 0, "%s", errstr);
        skip_kafka_rest(p);
        return;
    }
    kerr = fetch_metadata(rk, &kp, deadline, &md);
    if (kerr) {
        report_no_broker(p, s, rk, &kp, kerr);
        skip_kafka_rest(p);
        rd_kafka_destroy(rk);
        return;
    }
    topic_ok = check_source_topic(p, s, rk, &kp, md);
    check_group(p, rk, &kp, s,
                topic_ok ? find_topic(md, s->kafka_topic) : NULL);
    check_dlq(p, s, md);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
}

/* --- Vault -------------------------------------------------------------- */

unsigned akv_probe_kv_needs(const char *kind, const char *on_delete)
{
    /* Data: read the current version, write new ones (create for a new
     * token, update for the next). Metadata: the provenance write, the
     * version check and the list of a reconcile. The deletes only with
     * the on_delete policy that uses them. */
    if (strcmp(kind, "data") == 0) {
        return AKV_VAULT_CAP_CREATE | AKV_VAULT_CAP_READ |
               AKV_VAULT_CAP_UPDATE |
               (strcmp(on_delete, "soft-delete") == 0 ? AKV_VAULT_CAP_DELETE
                                                      : 0u);
    }
    return AKV_VAULT_CAP_CREATE | AKV_VAULT_CAP_READ | AKV_VAULT_CAP_UPDATE |
           AKV_VAULT_CAP_LIST |
           (strcmp(on_delete, "purge") == 0 ? AKV_VAULT_CAP_DELETE : 0u);
}

/* The path where the worker renews a renewable token (the default policy
 * grants it; a role with token_no_default_policy needs it from its own). */
#define PROBE_RENEW_PATH "auth/token/renew-self"

static void check_vault_kv(struct probe *p, struct akv_vault *v,
                           const struct akv_settings *s)
{
    static const char *const kinds[2] = {"data", "metadata"};
    char paths[2][1100];
    const char *ptrs[3];
    unsigned caps[3] = {0, 0, 0};
    char have[3][128];
    char errstr[1024];
    struct akv_vault_secret sec;
    enum akv_class cls;
    const struct akv_vault_lease *lease = akv_vault_token_lease(v);
    /* The renewal's path only when the worker will renew this token. */
    size_t n = lease->ttl_s > 0 && lease->renewable ? 3 : 2;
    size_t i;

    for (i = 0; i < 2; i++) {
        snprintf(paths[i], sizeof(paths[i]), "%s/%s/%s/%s", s->vault_kv_mount,
                 kinds[i], s->vault_prefix, PROBE_IDENTIFIER);
        ptrs[i] = paths[i];
    }
    ptrs[2] = PROBE_RENEW_PATH;
    cls = akv_vault_capabilities_self(v, ptrs, n, caps, errstr, sizeof(errstr));
    if (cls != AKV_CLASS_OK) {
        report(p, "vault kv", 0, "%s", errstr);
        return;
    }
    for (i = 0; i < n; i++) {
        unsigned need = i < 2 ? akv_probe_kv_needs(kinds[i], s->vault_on_delete)
                              : AKV_VAULT_CAP_UPDATE;
        unsigned missing = akv_vault_caps_missing(caps[i], need);
        char want[128];

        akv_vault_caps_format(caps[i], have[i], sizeof(have[i]));
        if (!missing) {
            continue;
        }
        akv_vault_caps_format(missing, want, sizeof(want));
        if (i < 2) {
            report(p, "vault kv", 0,
                   "the token lacks %s on %s (it has: %s; vault.on_delete = "
                   "%s)",
                   want, paths[i], have[i], s->vault_on_delete);
        } else {
            report(p, "vault kv", 0,
                   "the token lacks %s on %s (it has: %s): the worker renews "
                   "its token there",
                   want, PROBE_RENEW_PATH, have[i]);
        }
        return;
    }
    /* Capabilities say nothing of the mount: read one path to learn that
     * the mount exists and is KV version 2 (a never-written path is a
     * plain 404, a missing mount names the route). */
    cls = akv_vault_read(v, PROBE_IDENTIFIER, &sec, errstr, sizeof(errstr));
    akv_vault_secret_free(&sec);
    if (cls != AKV_CLASS_OK) {
        report(p, "vault kv", 0, "mount %s: %s", s->vault_kv_mount, errstr);
        return;
    }
    report(p, "vault kv", 1, "%s: %s; %s: %s; mount %s is KV version 2",
           paths[0], have[0], paths[1], have[1], s->vault_kv_mount);
}

static void check_vault(struct probe *p, const struct akv_settings *s)
{
    struct akv_settings capped = *s;
    const struct akv_vault_lease *lease;
    struct akv_vault *v;
    char errstr[1024];
    char how[128] = "";
    enum akv_class cls;

    capped.vault_timeout_ms = cap_ms(s->vault_timeout_ms);
    capped.vault_connect_timeout_ms = cap_ms(s->vault_connect_timeout_ms);
    v = akv_vault_new(&capped, errstr, sizeof(errstr));
    if (!v) {
        report(p, "vault", 0, "%s", errstr);
        skipped(p, "vault kv", "vault failed");
        return;
    }
    cls = akv_vault_login(v, errstr, sizeof(errstr));
    if (cls != AKV_CLASS_OK) {
        report(p, "vault", 0, "%s", errstr);
        skipped(p, "vault kv", "vault failed");
        akv_vault_destroy(v);
        return;
    }
    if (akv_vault_can_login(v)) {
        snprintf(how, sizeof(how), "%s login, ", s->vault_auth_method);
    }
    lease = akv_vault_token_lease(v);
    if (lease->ttl_s <= 0) {
        report(p, "vault", 1, "%stoken never expires", how);
    } else {
        report(p, "vault", 1, "%stoken ttl %llds, %s", how, lease->ttl_s,
               lease->renewable ? "renewable" : "not renewable");
    }
    check_vault_kv(p, v, &capped);
    akv_vault_destroy(v);
}

/* --- authentik ---------------------------------------------------------- */

static void check_authentik(struct probe *p, const struct akv_settings *s)
{
    struct akv_settings capped = *s;
    struct akv_authentik *ak;
    char errstr[1024];
    long long count = 0;

    capped.authentik_timeout_ms = cap_ms(s->authentik_timeout_ms);
    capped.authentik_connect_timeout_ms =
        cap_ms(s->authentik_connect_timeout_ms);
    ak = akv_authentik_new(&capped, errstr, sizeof(errstr));
    if (!ak) {
        report(p, "authentik", 0, "%s", errstr);
        return;
    }
    if (akv_authentik_count_tokens(ak, &count, errstr, sizeof(errstr)) !=
        AKV_CLASS_OK) {
        report(p, "authentik", 0, "%s", errstr);
    } else {
        report(p, "authentik", 1, "token list readable, %lld token%s visible",
               count, plural(count));
    }
    akv_authentik_destroy(ak);
}

int akv_probe_run(const struct akv_settings *s, FILE *out)
{
    struct probe p = {out, 0};

    check_kafka(&p, s);
    check_vault(&p, s);
    check_authentik(&p, s);
    return p.failed;
}
