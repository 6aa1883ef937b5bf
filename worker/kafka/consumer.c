/*
 * consumer — librdkafka glue and the poll loop.
 *
 * The loop drains the consumer queue, decides what each event is (byte
 * prefilter, then the matcher), hands token events to the engine and
 * finishes the rest at once. Every event's offset is tracked in its
 * partition's watermark (offsets.c); only the contiguous prefix of
 * finished events is stored and committed, so a slow or failing token
 * holds back its own partition's commit and nothing else. A partition with
 * too much unfinished work is paused until half of it is done. The engine's
 * transfers and the Kafka queue are waited on together (the queue signals
 * a pipe), so the loop sleeps only when there is nothing to do.
 *
 * A refusal that the principal's ACLs or credentials explain (topic,
 * group, dead-letter topic, authentication) is a configuration error: it is
 * logged at most once per sync.log_interval_ms, /readyz names it until
 * Kafka shows the permission is there (an assignment, a message, a commit,
 * a dead letter written), and the worker keeps retrying: nothing is
 * skipped and a grant takes effect without a restart.
 */
#include "consumer.h"

#include "backoff.h"
#include "clock.h"
#include "commit.h"
#include "dlq.h"
#include "endoffsets.h"
#include "engine.h"
#include "fetchwake.h"
#include "flow.h"
#include "kconf.h"
#include "kstats.h"
#include "log.h"
#include "matcher.h"
#include "offsets.h"
#include "partition.h"
#include "prefilter.h"
#include "progress.h"
#include "reconciler.h"
#include "record.h"

#include <errno.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* How long the final commit may wait for the group to settle. */
#define SHUTDOWN_COMMIT_MS 10000
/* How often gauges, lag and readiness are brought up to date. */
#define REPORT_INTERVAL_MS 1000
/* Messages taken from the queue before the engine gets a turn. */
#define POLL_BATCH 500
/* How often subscribed topics' metadata is asked for again (librdkafka:
 * 5 minutes). A topic first refused as not authorized is retried only
 * then, so a grant would otherwise wait that long. */
#define METADATA_REFRESH_MS "10000"
/* librdkafka's prefetch: queued messages (KiB) and one fetch answer. */
#define QUEUE_KBYTES    "8192"
#define FETCH_MAX_BYTES "2097152"

/* A poison event whose dead-letter write failed: retried on a timer. */
struct dlq_retry {
    struct dlq_retry *next;
    int32_t partition;
    int64_t offset;
    char reason[256];
    unsigned attempts;
    long long retry_at;
    long long first_ms;
    long long last_ms;
};

/* What Kafka refused, by what the principal lacks. */
enum refusal {
    REFUSED_TOPIC,
    REFUSED_GROUP,
    REFUSED_DLQ,
    REFUSED_AUTH,
    REFUSED_KINDS
};

struct denial {
    int active;
    long long logged_ms; /* monotonic, of the last log line; 0: none */
    char what[512];      /* for /readyz and the log */
};

struct consumer {
    const struct akv_settings *settings;
    const struct akv_run_opts *opts;
    volatile sig_atomic_t *run;
    struct akv_telemetry *tm;
    struct akv_endoffsets *ends; /* end offsets, for lag */
    long long next_report;       /* monotonic ms */
    struct akv_match_rules rules;
    struct akv_engine *engine;
    struct akv_reconciler *reconciler; /* while partition 0 is held */
    struct akv_dlq *dlq;
    rd_kafka_t *rk;
    struct akv_partition *parts;
    int nparts;
    int ever_assigned;
    int fatal;
    int wake[2]; /* the consumer queue writes here when it fills */
    struct dlq_retry *dlq_retries;
    rd_kafka_queue_t *queue; /* the consumer queue */
    struct akv_fetchwake *fetchwake;
    struct akv_flow_queue fill; /* librdkafka's prefetch queue */
    double avg_len;             /* of the messages taken so far */
    int32_t *wakeup;            /* scratch: partitions to wake */
    struct denial denied[REFUSED_KINDS];
};

static struct akv_partition *part(struct consumer *c, int32_t partition)
{
    if (partition < 0) {
        return NULL;
    }
    if (partition >= c->nparts) {
        int n = partition + 1;
        struct akv_partition *p = realloc(c->parts, (size_t)n * sizeof(*p));
        int32_t *w;
        int i;

        if (!p) {
            return NULL;
        }
        c->parts = p;
        w = realloc(c->wakeup, (size_t)n * sizeof(*w));
        if (!w) {
            return NULL;
        }
        c->wakeup = w;
        for (i = c->nparts; i < n; i++) {
            memset(&p[i], 0, sizeof(p[i]));
            p[i].stored = -1;
            p[i].committed = -1;
        }
        c->nparts = n;
    }
    if (!c->parts[partition].offsets) {
        c->parts[partition].offsets = akv_offsets_new();
        if (!c->parts[partition].offsets) {
            return NULL;
        }
    }
    return &c->parts[partition];
}

enum akv_kafka_denial akv_kafka_denial_of(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
        return AKV_DENIED_TOPIC;
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
        return AKV_DENIED_GROUP;
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
        return AKV_DENIED_CLUSTER;
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
        return AKV_DENIED_AUTH;
    default:
        return AKV_DENIED_NONE;
    }
}

int akv_kafka_scram_broken(const char *mechanism, int version)
{
    return mechanism && strncasecmp(mechanism, "SCRAM-", 6) == 0 &&
           (unsigned)version < 0x020601ffu;
}

static const char *kafka_property(const struct akv_settings *s,
                                  const char *name)
{
    size_t i;

    for (i = 0; i < s->kafka_properties.n; i++) {
        if (strcmp(s->kafka_properties.names[i], name) == 0) {
            return s->kafka_properties.values[i];
        }
    }
    return NULL;
}

/*
 * Kafka refused something the worker needs, with \p err: remember it for
 * /readyz and log what the principal lacks, at most once per
 * sync.log_interval_ms for each kind.
 */
static void refused(struct consumer *c, enum refusal kind,
                    rd_kafka_resp_err_t err)
{
    const struct akv_settings *s = c->settings;
    struct denial *d = &c->denied[kind];
    const char *mech = kafka_property(s, "sasl.mechanisms");
    long long now = akv_mono_ms();
    char need[300];

    if (!mech) {
        mech = kafka_property(s, "sasl.mechanism");
    }
    switch (kind) {
    case REFUSED_TOPIC:
        snprintf(need, sizeof(need), "Read on topic %s", s->kafka_topic);
        break;
    case REFUSED_GROUP:
        snprintf(need, sizeof(need), "Read on group %s", s->kafka_group);
        break;
    case REFUSED_DLQ:
        snprintf(need, sizeof(need),
                 "Write on topic %s (the dead-letter topic)", s->dlq_topic);
        break;
    default:
        snprintf(need, sizeof(need),
                 "credentials the brokers accept (kafka.properties: sasl.*, "
                 "ssl.*)%s",
                 akv_kafka_scram_broken(mech, rd_kafka_version())
                     ? "; if the brokers run Kafka 4.x: this librdkafka, "
                       "older than 2.6.1, cannot log in to them with SCRAM "
                       "(use PLAIN over SASL_SSL there)"
                     : "");
        break;
    }
    snprintf(d->what, sizeof(d->what),
             "kafka configuration error: %s; the worker's principal needs %s",
             rd_kafka_err2str(err), need);
    d->active = 1;
    if (d->logged_ms == 0 || now - d->logged_ms >= s->sync_log_interval_ms) {
        d->logged_ms = now;
        akv_log_error("kafka",
                      "%s (the work is held and retried until it "
                      "is granted)",
                      d->what);
    }
}

/* Kafka showed the permission is there (again). */
static void allowed(struct consumer *c, enum refusal kind)
{
    struct denial *d = &c->denied[kind];

    if (d->active) {
        d->active = 0;
        d->logged_ms = 0;
        akv_log_info("kafka", "resolved: %s", d->what);
    }
}

/* A refusal by \p err of the consumer (topic, group or credentials);
 * @returns 1 when \p err is one. */
static int consumer_refused(struct consumer *c, rd_kafka_resp_err_t err)
{
    switch (akv_kafka_denial_of(err)) {
    case AKV_DENIED_TOPIC:
        refused(c, REFUSED_TOPIC, err);
        return 1;
    case AKV_DENIED_GROUP:
        refused(c, REFUSED_GROUP, err);
        return 1;
    case AKV_DENIED_AUTH:
        refused(c, REFUSED_AUTH, err);
        return 1;
    default:
        return 0;
    }
}

static void free_record(void *data)
{
    akv_record_free(data);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque);

/* librdkafka's statistics, on the poll loop's thread. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    struct consumer *c = opaque;
    struct akv_kstats k;

    (void)rk;
    if (akv_kstats_parse(json, len, &k) == 0) {
        akv_telemetry_kafka_stats(c->tm, &k);
    }
    return 0; /* librdkafka frees json */
}

/* Informational errors (a broker going away) are logged; librdkafka
 * recovers from them by itself. Only a fatal error stops the worker. */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct consumer *c = opaque;
    char fatal[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        akv_log_error("kafka", "fatal error: %s", fatal);
        c->fatal = 1;
        return;
    }
    if (consumer_refused(c, err)) {
        akv_log_debug("kafka", "%s: %s", rd_kafka_err2name(err), reason);
        return;
    }
    akv_log_warn("kafka", "%s: %s", rd_kafka_err2name(err), reason);
}

/* Every commit's answer (automatic ones too), served by the poll: the
 * committed offsets are what lag and stall detection go by. */
static void on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                      rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    struct consumer *c = opaque;
    int i;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
        return; /* nothing new to commit */
    }
    for (i = 0; !err && offsets && i < offsets->cnt; i++) {
        if (akv_kafka_denial_of(offsets->elems[i].err) != AKV_DENIED_NONE) {
            err = offsets->elems[i].err;
        }
    }
    if (err) {
        akv_metric_inc(c->tm->commits_failed);
        akv_log_debug("kafka", "commit failed: %s", rd_kafka_err2str(err));
        consumer_refused(c, err);
        return;
    }
    akv_metric_inc(c->tm->commits_ok);
    allowed(c, REFUSED_GROUP);
    allowed(c, REFUSED_AUTH);
    akv_commit_answered(c->parts, c->nparts, offsets, akv_wall_ms());
}

/* The consumer's configuration: ak2vault's settings, then kafka.properties,
 * then what no property may change. NULL with the refused property in
 * \p errstr. */
static rd_kafka_conf_t *consumer_conf(const struct akv_settings *s,
                                      int exit_at_end, char *errstr,
                                      size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char num[32];

    /* Bound what librdkafka prefetches (its defaults allow 64 MiB queued
     * plus 50 MiB per fetch, more once decompressed): memory must stay
     * small whatever the topic size. The fetch answer is bounded too, as
     * it lands in the queue whole. fetchwake.c keeps the small queue from
     * stalling the fetcher. Pass-through properties below may change both. */
    if (akv_kconf_set(conf, "queued.max.messages.kbytes", QUEUE_KBYTES, errstr,
                      errstr_size) ||
        akv_kconf_set(conf, "fetch.max.bytes", FETCH_MAX_BYTES, errstr,
                      errstr_size) ||
        akv_kconf_set(conf, "bootstrap.servers", s->kafka_brokers, errstr,
                      errstr_size) ||
        akv_kconf_set(conf, "group.id", s->kafka_group, errstr, errstr_size) ||
        akv_kconf_set(conf, "client.id", "ak2vault", errstr, errstr_size) ||
        akv_kconf_set(conf, "auto.offset.reset", s->kafka_auto_offset_reset,
                      errstr, errstr_size) ||
        akv_kconf_set(conf, "partition.assignment.strategy",
                      "cooperative-sticky", errstr, errstr_size) ||
        akv_kconf_set(conf, "auto.commit.interval.ms", "1000", errstr,
                      errstr_size) ||
        akv_kconf_set(conf, "topic.metadata.refresh.interval.ms",
                      METADATA_REFRESH_MS, errstr, errstr_size) ||
        akv_kconf_set(conf, "enable.partition.eof",
                      exit_at_end ? "true" : "false", errstr, errstr_size)) {
        goto fail;
    }
    if (s->kafka_instance_id && *s->kafka_instance_id &&
        akv_kconf_set(conf, "group.instance.id", s->kafka_instance_id, errstr,
                      errstr_size)) {
        goto fail;
    }
    snprintf(num, sizeof(num), "%lld", s->kafka_session_timeout_ms);
    if (akv_kconf_set(conf, "session.timeout.ms", num, errstr, errstr_size)) {
        goto fail;
    }
    snprintf(num, sizeof(num), "%lld", s->kafka_max_poll_interval_ms);
    if (akv_kconf_set(conf, "max.poll.interval.ms", num, errstr, errstr_size)) {
        goto fail;
    }
    /* librdkafka's statistics feed a few gauges (broker round trips, fetch
     * queues), as often as the end offsets are read, unless
     * kafka.properties says otherwise. */
    snprintf(num, sizeof(num), "%lld", s->metrics_lag_interval_ms);
    if (akv_kconf_set(conf, "statistics.interval.ms", num, errstr,
                      errstr_size)) {
        goto fail;
    }
    if (akv_kconf_properties(conf, s, errstr, errstr_size) < 0) {
        goto fail;
    }
    /* Set last so that no pass-through property can undo at-least-once:
     * offsets are stored by hand once an event is finished, and the stored
     * offsets are committed automatically and at every revoke/shutdown. */
    if (akv_kconf_set(conf, "enable.auto.offset.store", "false", errstr,
                      errstr_size) ||
        akv_kconf_set(conf, "enable.auto.commit", "true", errstr,
                      errstr_size)) {
        goto fail;
    }
    return conf;

fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* A client librdkafka refuses to create is a configuration error too (a
 * CA file that is not there, a mechanism this build lacks). */
static rd_kafka_t *client_new(rd_kafka_conf_t *conf, char *errstr,
                              size_t errstr_size)
{
    char kerr[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));

    if (!rk) {
        rd_kafka_conf_destroy(conf);
        akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                 "cannot create the Kafka consumer: %s", kerr);
    }
    return rk; /* rd_kafka_new() took conf */
}

akv_err_t akv_consumer_check(const struct akv_settings *s, char *errstr,
                             size_t errstr_size)
{
    rd_kafka_conf_t *conf = consumer_conf(s, 0, errstr, errstr_size);
    rd_kafka_t *rk;

    if (!conf) {
        return AKV_ERR_CONFIG;
    }
    /* The same client, but with no broker to connect to: checking the
     * configuration does not touch the network (--connect does). */
    if (akv_kconf_set(conf, "bootstrap.servers", "", errstr, errstr_size)) {
        rd_kafka_conf_destroy(conf);
        return AKV_ERR_CONFIG;
    }
    rd_kafka_conf_set_log_cb(conf, akv_kconf_log);
    rk = client_new(conf, errstr, errstr_size);
    if (!rk) {
        return AKV_ERR_CONFIG;
    }
    rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    return AKV_OK;
}

static rd_kafka_t *create(struct consumer *c, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf =
        consumer_conf(c->settings, c->opts->exit_at_end, errstr, errstr_size);

    if (!conf) {
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_log_cb(conf, akv_kconf_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_offset_commit_cb(conf, on_commit);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    return client_new(conf, errstr, errstr_size);
}

static double conf_number(rd_kafka_t *rk, const char *name, double fallback)
{
    char value[64];
    size_t size = sizeof(value);
    char *end;
    double v;

    if (rd_kafka_conf_get(rd_kafka_conf(rk), name, value, &size) !=
        RD_KAFKA_CONF_OK) {
        return fallback;
    }
    v = strtod(value, &end);
    return end != value && v > 0 ? v : fallback;
}

/* The bounds refill() watches, as librdkafka took them. */
static void read_prefetch_bounds(struct consumer *c)
{
    c->fill.max_bytes =
        1024 * conf_number(c->rk, "queued.max.messages.kbytes", 65536);
    c->fill.min_msgs = conf_number(c->rk, "queued.min.messages", 100000);
}

static void set_paused(struct consumer *c, int32_t partition, int pause)
{
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new(1);

    rd_kafka_topic_partition_list_add(list, c->settings->kafka_topic,
                                      partition);
    if (pause) {
        rd_kafka_pause_partitions(c->rk, list);
    } else {
        rd_kafka_resume_partitions(c->rk, list);
    }
    rd_kafka_topic_partition_list_destroy(list);
    c->parts[partition].paused = pause;
}

/* Wakes the fetcher of every assigned partition that is not paused. */
static void wake_fetchers(struct consumer *c)
{
    int n = 0;
    int i;

    for (i = 0; i < c->nparts; i++) {
        if (c->parts[i].assigned && !c->parts[i].paused) {
            c->wakeup[n++] = i;
        }
    }
    akv_fetchwake_kick(c->fetchwake, c->wakeup, n);
}

/* Backpressure: pause a partition whose unfinished events pass the
 * bound, resume it at half. */
static void backpressure(struct consumer *c)
{
    size_t high = (size_t)c->settings->sync_max_pending;
    int resumed = 0;
    int i;

    for (i = 0; i < c->nparts; i++) {
        struct akv_partition *p = &c->parts[i];
        size_t n;

        if (!p->assigned || !p->offsets) {
            continue;
        }
        n = akv_offsets_pending(p->offsets);
        if (akv_flow_paused(p->paused, n, high) == p->paused) {
            continue;
        }
        if (!p->paused) {
            akv_log_debug("kafka", "partition=%d paused: %zu unfinished", i, n);
            set_paused(c, i, 1);
            /* A paused partition takes no later events: its deferred
             * syncs would only wait. */
            akv_engine_release_deferred(c->engine);
        } else {
            set_paused(c, i, 0);
            resumed = 1;
        }
    }
    /* A resumed partition is fetched once its broker thread looks again. */
    if (resumed) {
        wake_fetchers(c);
    }
}

/* The engine (or the loop) finished the event at (partition, offset). */
static void on_done(void *ctx, int32_t partition, int64_t offset)
{
    struct consumer *c = ctx;
    void *data = NULL;

    if (partition < 0 || partition >= c->nparts ||
        !c->parts[partition].offsets) {
        return;
    }
    if (akv_offsets_done(c->parts[partition].offsets, offset, &data) == 0) {
        akv_record_free(data);
    }
}

/* The engine finished a token event: its latency is measured from the
 * message's timestamp (the event's creation, with CreateTime). */
static void on_synced(void *ctx, int32_t partition, int64_t offset)
{
    struct consumer *c = ctx;
    const struct akv_record *rec = NULL;

    if (partition >= 0 && partition < c->nparts &&
        c->parts[partition].offsets) {
        rec = akv_offsets_get(c->parts[partition].offsets, offset);
    }
    if (rec) {
        int64_t ts = rec->timestamp;

        if (ts > 0) {
            double age = (double)(akv_wall_ms() - ts) / 1000.0;

            akv_metric_observe(c->tm->latency, age > 0 ? age : 0);
        }
    }
    on_done(ctx, partition, offset);
}

static const struct akv_record *held_message(void *ctx, int32_t partition,
                                             int64_t offset)
{
    struct consumer *c = ctx;

    if (partition < 0 || partition >= c->nparts ||
        !c->parts[partition].offsets) {
        return NULL;
    }
    return akv_offsets_get(c->parts[partition].offsets, offset);
}

/* The engine gave up on a token's event after sync.max_attempts. */
static int dead_letter_given_up(void *ctx, const char *identifier,
                                int32_t partition, int64_t offset,
                                const struct akv_engine_failure *f)
{
    struct consumer *c = ctx;
    const struct akv_record *rec = held_message(c, partition, offset);
    struct akv_dlq_failure df;
    char errstr[512];

    if (!c->dlq) {
        akv_log_error("dlq",
                      "token=%s partition=%d offset=%lld skipped "
                      "(dead-letter topic disabled): %s",
                      identifier, (int)partition, (long long)offset, f->reason);
        return 0;
    }
    if (!rec) {
        akv_log_error("dlq",
                      "token=%s partition=%d offset=%lld: the message is no "
                      "longer held",
                      identifier, (int)partition, (long long)offset);
        return -1;
    }
    df.error_class = "transient";
    df.reason = f->reason;
    df.attempts = f->attempts;
    df.first_ms = f->first_ms;
    df.last_ms = f->last_ms;
    if (akv_dlq_send(c->dlq, rec, &df, errstr, sizeof(errstr)) != AKV_OK) {
        akv_log_error("dlq", "token=%s: %s", identifier, errstr);
        return -1;
    }
    akv_metric_inc(c->tm->dlq_messages);
    return 0;
}

/* Tells the end-offset reader which partitions to watch. */
static void watch_assigned(struct consumer *c)
{
    int n = 0;
    int i;

    for (i = 0; i < c->nparts; i++) {
        if (c->parts[i].assigned) {
            c->wakeup[n++] = i;
        }
    }
    akv_endoffsets_watch(c->ends, c->wakeup, n);
}

static void mark_assigned(struct consumer *c,
                          const rd_kafka_topic_partition_list_t *parts,
                          int assigned)
{
    int i;

    for (i = 0; i < parts->cnt; i++) {
        int32_t n = parts->elems[i].partition;
        struct akv_partition *p = part(c, n);
        struct dlq_retry **r = &c->dlq_retries;

        if (!p) {
            continue;
        }
        if (!assigned) {
            /* Stop answering for the revoked events: whatever is still
             * running finishes without reporting them. */
            akv_engine_drop_partition(c->engine, n);
            while (*r) {
                if ((*r)->partition == n) {
                    struct dlq_retry *gone = *r;

                    *r = gone->next;
                    free(gone);
                } else {
                    r = &(*r)->next;
                }
            }
        }
        akv_offsets_reset(p->offsets, free_record);
        p->assigned = assigned;
        p->eof = 0;
        p->paused = 0;
        p->next = -1;
        p->stored = -1;
        p->committed = -1;
        p->moved_ms = akv_wall_ms();
        p->caught_up_ms = p->moved_ms;
        p->idle_ms = p->moved_ms;
    }
    watch_assigned(c);
    akv_reconciler_own(c->reconciler, c->nparts > 0 && c->parts[0].assigned);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct consumer *c = opaque;
    /* NULL while the member is in no group, e.g. the revoke at close:
     * then an eager unassign is what is left to do. */
    const char *protocol = rd_kafka_rebalance_protocol(rk);
    int coop = protocol && strcmp(protocol, "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    akv_metric_inc(c->tm->rebalances);
    /* Whoever owned a partition before us, or owns it after us, may have
     * written its tokens: the engine's memory of Vault ends here. */
    akv_engine_assignment_changed(c->engine);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        akv_log_info("kafka", "assigned %d partition(s)", parts->cnt);
        mark_assigned(c, parts, 1);
        allowed(c, REFUSED_GROUP);
        allowed(c, REFUSED_AUTH);
        if (parts->cnt > 0) {
            c->ever_assigned = 1;
            allowed(c, REFUSED_TOPIC);
        }
        if (coop) {
            error = rd_kafka_incremental_assign(rk, parts);
        } else {
            rerr = rd_kafka_assign(rk, parts);
        }
        /* A partition we paused before it was revoked may come back. */
        rd_kafka_resume_partitions(rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* Commit the finished prefix of the revoked partitions before
         * another member takes them over; their unfinished events are
         * dropped here and redone by the new owner (at least once). */
        akv_log_info("kafka", "revoked %d partition(s)", parts->cnt);
        akv_commit_store(c->rk, c->settings->kafka_topic, c->parts, c->nparts);
        if (rd_kafka_assignment_lost(rk)) {
            akv_log_warn("kafka",
                         "%d partition(s) lost before their offsets were "
                         "committed; their next owner redoes the events "
                         "since the last commit",
                         parts->cnt);
        } else {
            akv_commit_now(c->rk, "revoke");
        }
        mark_assigned(c, parts, 0);
        if (coop) {
            error = rd_kafka_incremental_unassign(rk, parts);
        } else {
            rerr = rd_kafka_assign(rk, NULL);
        }
    } else {
        akv_log_error("kafka", "rebalance failed: %s", rd_kafka_err2str(err));
        rerr = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        akv_log_error("kafka", "assignment change failed: %s",
                      rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (rerr) {
        akv_log_error("kafka", "assignment change failed: %s",
                      rd_kafka_err2str(rerr));
    }
}

/*
 * Sends a poison event to the dead-letter topic; done once Kafka
 * acknowledged it (or right away, logged, when the DLQ is disabled). A
 * failed write is retried on a timer; the event stays unfinished.
 */
static void dead_letter(struct consumer *c, const struct akv_record *rec,
                        const char *reason, struct dlq_retry *r)
{
    struct akv_dlq_failure f;
    char errstr[512];
    long long now = akv_wall_ms();

    if (!c->dlq) {
        akv_log_error("dlq",
                      "partition=%d offset=%lld skipped (dead-letter topic "
                      "disabled): %s",
                      (int)rec->partition, (long long)rec->offset, reason);
        on_done(c, rec->partition, rec->offset);
        free(r);
        return;
    }
    f.error_class = "poison";
    f.reason = reason;
    f.attempts = r ? r->attempts + 1 : 1;
    f.first_ms = r ? r->first_ms : now;
    f.last_ms = now;
    if (akv_dlq_send(c->dlq, rec, &f, errstr, sizeof(errstr)) == AKV_OK) {
        allowed(c, REFUSED_DLQ);
        akv_metric_inc(c->tm->dlq_messages);
        akv_log_warn("dlq",
                     "class=poison partition=%d offset=%lld sent to %s: "
                     "%s",
                     (int)rec->partition, (long long)rec->offset,
                     c->settings->dlq_topic, reason);
        on_done(c, rec->partition, rec->offset);
        free(r);
        return;
    }
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r) {
            akv_log_error("dlq",
                          "out of memory: partition=%d offset=%lld "
                          "stays unfinished",
                          (int)rec->partition, (long long)rec->offset);
            return;
        }
        r->partition = rec->partition;
        r->offset = rec->offset;
        r->first_ms = now;
        snprintf(r->reason, sizeof(r->reason), "%s", reason);
    }
    r->attempts++;
    r->last_ms = now;
    if (akv_dlq_refused(c->dlq)) {
        /* A configuration error, like Vault's 403: retried at the
         * configuration pace, logged at most once per interval. */
        r->retry_at = akv_mono_ms() + c->settings->sync_config_retry_ms;
        refused(c, REFUSED_DLQ, akv_dlq_refused(c->dlq));
        akv_log_debug("dlq", "partition=%d offset=%lld held: %s",
                      (int)rec->partition, (long long)rec->offset, errstr);
    } else {
        r->retry_at = akv_mono_ms() +
                      akv_backoff_delay(c->settings->sync_retry_initial_ms,
                                        c->settings->sync_retry_max_ms,
                                        c->settings->sync_retry_multiplier,
                                        r->attempts - 1, akv_backoff_random());
        akv_log_error("dlq", "partition=%d offset=%lld held: %s",
                      (int)rec->partition, (long long)rec->offset, errstr);
    }
    r->next = c->dlq_retries;
    c->dlq_retries = r;
}

static void retry_dead_letters(struct consumer *c)
{
    struct dlq_retry *due = NULL;
    struct dlq_retry **p = &c->dlq_retries;
    long long now = akv_mono_ms();

    while (*p) {
        if ((*p)->retry_at <= now) {
            struct dlq_retry *r = *p;

            *p = r->next;
            r->next = due;
            due = r;
        } else {
            p = &(*p)->next;
        }
    }
    while (due) {
        struct dlq_retry *r = due;
        const struct akv_record *rec = held_message(c, r->partition, r->offset);

        due = r->next;
        r->next = NULL;
        if (!rec) {
            free(r); /* revoked meanwhile */
            continue;
        }
        dead_letter(c, rec, r->reason, r);
    }
}

/*
 * Keeps a copy of the message for as long as its event is unfinished
 * (record.h): the message itself goes when handle() returns.
 */
static const struct akv_record *hold(struct akv_partition *p,
                                     const rd_kafka_message_t *rkm)
{
    struct akv_record *rec = akv_record_copy(rkm);

    if (!rec || akv_offsets_set(p->offsets, rkm->offset, rec) < 0) {
        akv_record_free(rec);
        akv_log_error("kafka",
                      "out of memory: partition=%d offset=%lld stays "
                      "unfinished",
                      (int)rkm->partition, (long long)rkm->offset);
        return NULL;
    }
    return rec;
}

/*
 * How far behind its partition's end (as the last fetch answer gave it) a
 * worker must be for its syncs to wait for later events of the same
 * token (sync.catchup_delay_ms): at a few hundred thousand events a
 * second, 1,000 events are read in milliseconds, so a live worker at the
 * end never waits.
 */
#define CATCHUP_BEHIND 1000

/* Events the partition holds after \p next, as far as the fetcher knows;
 * -1 when it does not know its end yet. */
static int64_t ahead(const struct consumer *c, int32_t partition, int64_t next)
{
    int64_t lo = -1;
    int64_t hi = -1;

    if (next < 0 ||
        rd_kafka_get_watermark_offsets(c->rk, c->settings->kafka_topic,
                                       partition, &lo,
                                       &hi) != RD_KAFKA_RESP_ERR_NO_ERROR ||
        hi < 0) {
        return -1;
    }
    return hi > next ? hi - next : 0;
}

/* No assigned partition is behind: a deferred sync has nothing more to
 * wait for. A partition that delivered nothing since its assignment counts
 * as behind unless its committed offset is known and near its end (the
 * consumer may deliver one partition's backlog after another's). */
static int caught_up(const struct consumer *c)
{
    int i;

    for (i = 0; i < c->nparts; i++) {
        const struct akv_partition *p = &c->parts[i];
        int64_t at = p->next >= 0 ? p->next : p->committed;
        int64_t left;

        if (!p->assigned || p->eof) {
            continue;
        }
        left = ahead(c, i, at);
        if (left < 0 || left >= CATCHUP_BEHIND) {
            return 0;
        }
    }
    return 1;
}

/* One message: skipped, dead-lettered or handed to the engine. */
/* An event with nothing to sync: finished at once. */
static void skip(struct consumer *c, const rd_kafka_message_t *rkm)
{
    akv_metric_inc(c->tm->skipped);
    on_done(c, rkm->partition, rkm->offset);
}

/* An event that cannot be processed: to the dead-letter topic. */
static void reject(struct consumer *c, struct akv_partition *p,
                   const rd_kafka_message_t *rkm, const char *reason)
{
    const struct akv_record *rec;

    akv_metric_inc(c->tm->invalid);
    rec = hold(p, rkm);
    if (rec) {
        dead_letter(c, rec, reason, NULL);
    }
}

/* A token event: the engine syncs the token, then finishes the event. */
static void submit(struct consumer *c, struct akv_partition *p,
                   const rd_kafka_message_t *rkm, const struct akv_match *m)
{
    struct akv_engine_event ev;

    if (akv_strlist_contains(&c->settings->match_exclude_identifiers,
                             m->identifier)) {
        akv_log_debug("match",
                      "skip partition=%d offset=%lld token=%s: in "
                      "match.exclude_identifiers",
                      (int)rkm->partition, (long long)rkm->offset,
                      m->identifier);
        skip(c, rkm);
        return;
    }
    /* A delete resolves exactly like a sync: only authentik's 404 proves
     * the token gone (then vault.on_delete applies); a token that exists
     * again under the same identifier is synced. */
    akv_metric_inc(c->tm->matched);
    if (!hold(p, rkm)) {
        return;
    }
    ev.identifier = m->identifier;
    ev.event_pk = m->event_pk;
    ev.action = m->action;
    ev.behind = ahead(c, rkm->partition, rkm->offset + 1) >= CATCHUP_BEHIND;
    ev.partition = rkm->partition;
    ev.offset = rkm->offset;
    if (akv_engine_submit(c->engine, &ev) < 0) {
        akv_log_error("sync",
                      "out of memory: partition=%d offset=%lld "
                      "stays unfinished",
                      (int)rkm->partition, (long long)rkm->offset);
    }
}

static void handle_one(struct consumer *c, const rd_kafka_message_t *rkm,
                       struct akv_partition *p)
{
    struct akv_match m;
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);

    akv_metric_inc(c->tm->consumed);
    if (akv_offsets_track(p->offsets, rkm->offset, ts, NULL) < 0) {
        /* Below the watermark: a redelivery we already answered for. */
        akv_log_debug("kafka", "partition=%d offset=%lld already seen",
                      (int)rkm->partition, (long long)rkm->offset);
        return;
    }
    /* Until the first commit answer, where consumption started stands
     * for the committed offset (it is the committed one, or the reset). */
    if (p->committed < 0) {
        p->committed = rkm->offset;
    }
    /* Most events are logins and flows: tell them by their bytes. With
     * dlq.undecodable every event must be parsed to know if it is JSON. */
    if (!c->settings->dlq_undecodable && rkm->len > 0 &&
        !akv_prefilter_may_match(&c->rules, rkm->payload, rkm->len)) {
        skip(c, rkm);
        return;
    }
    akv_match_event(&c->rules, rkm->payload ? rkm->payload : "", rkm->len, &m);
    switch (m.kind) {
    case AKV_MATCH_SKIP:
        if (m.undecodable && c->settings->dlq_undecodable) {
            reject(c, p, rkm, m.reason);
            return;
        }
        akv_log_debug("match", "skip partition=%d offset=%lld: %s",
                      (int)rkm->partition, (long long)rkm->offset, m.reason);
        skip(c, rkm);
        return;
    case AKV_MATCH_POISON:
        akv_log_error("match",
                      "poison event partition=%d offset=%lld action=%s "
                      "event=%s: %s",
                      (int)rkm->partition, (long long)rkm->offset, m.action,
                      m.event_pk, m.reason);
        reject(c, p, rkm, m.reason);
        return;
    case AKV_MATCH_SYNC:
    case AKV_MATCH_DELETE:
        submit(c, p, rkm, &m);
        return;
    }
}

static void handle(struct consumer *c, rd_kafka_message_t *rkm,
                   struct akv_partition *p)
{
    handle_one(c, rkm, p);
    rd_kafka_message_destroy(rkm);
}

/*
 * Has everything up to the partition's end, as the last fetch answer gave
 * it, been taken? librdkafka 2.0.2 reports a partition's end only after a
 * fetch that starts there, which the broker holds for fetch.wait.max.ms
 * when nothing new arrives, so that report comes up to half a second
 * after the last event. Until an event was taken since the assignment
 * (the end known then came with it), the partition is at its end when
 * the group's committed offset is at the end offset the end-offset reader
 * found, or when librdkafka reported the end: that report does not always
 * come again for a partition assigned anew with nothing left to read. The
 * report is also the only sign when a transaction marker is the
 * partition's last record.
 */
static int at_end(const struct consumer *c, int32_t partition,
                  const struct akv_partition *p)
{
    int64_t lo = -1;
    int64_t hi = -1;
    int64_t taken = akv_offsets_watermark(p->offsets);

    if (p->eof) {
        return 1;
    }
    if (taken < 0 && c->ends) {
        /* Nothing taken since the assignment: at the end when the group's
         * committed offset already is (the EOF report of a partition
         * assigned anew may not come again). */
        int64_t committed = akv_endoffsets_committed(c->ends, partition);

        hi = akv_endoffsets_get(c->ends, partition);
        return committed >= 0 && hi >= 0 && committed >= hi;
    }
    return taken >= 0 &&
           rd_kafka_get_watermark_offsets(c->rk, c->settings->kafka_topic,
                                          partition, &lo,
                                          &hi) == RD_KAFKA_RESP_ERR_NO_ERROR &&
           hi >= 0 && taken >= hi;
}

/* With --exit-at-end: every assigned partition is at its end and all
 * its events are finished. */
static int all_at_end(const struct consumer *c)
{
    int i;
    int any = 0;

    if (!c->ever_assigned || akv_engine_busy(c->engine) > 0 || c->dlq_retries ||
        akv_reconciler_busy(c->reconciler)) {
        return 0;
    }
    for (i = 0; i < c->nparts; i++) {
        const struct akv_partition *p = &c->parts[i];

        if (p->assigned) {
            any = 1;
            if (akv_offsets_pending(p->offsets) > 0 || !at_end(c, i, p)) {
                return 0;
            }
        }
    }
    return any;
}

/* Takes up to POLL_BATCH messages; returns how many. */
static int drain(struct consumer *c)
{
    int n;

    for (n = 0; n < POLL_BATCH; n++) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, 0);
        struct akv_partition *p;

        if (!rkm) {
            break;
        }
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            p = part(c, rkm->partition);
            if (p) {
                p->eof = 1;
                if (p->committed < 0 && p->assigned) {
                    p->committed = rkm->offset;
                }
            }
            rd_kafka_message_destroy(rkm);
            continue;
        }
        if (rkm->err) {
            if (consumer_refused(c, rkm->err)) {
                akv_log_debug("kafka", "consume error: %s",
                              rd_kafka_message_errstr(rkm));
            } else {
                akv_log_warn("kafka", "consume error: %s",
                             rd_kafka_message_errstr(rkm));
            }
            rd_kafka_message_destroy(rkm);
            continue;
        }
        allowed(c, REFUSED_TOPIC);
        p = part(c, rkm->partition);
        if (!p || !p->assigned) {
            /* out of memory, or a late message of a revoked partition:
             * leave it to be redelivered */
            rd_kafka_message_destroy(rkm);
            continue;
        }
        p->eof = 0;
        p->next = rkm->offset + 1;
        c->avg_len += ((double)rkm->len - c->avg_len) / 64;
        handle(c, rkm, p);
    }
    return n;
}

/*
 * librdkafka stops fetching while its queue is over a bound and looks
 * again up to a second later (fetchwake.h). Once the queue came near the
 * bound and has since drained to half of it (core/flow.h), wake the
 * fetcher so that the next answer arrives before the queue runs dry.
 */
static void refill(struct consumer *c)
{
    double msgs = (double)rd_kafka_queue_length(c->queue);

    if (akv_flow_queue_drained(&c->fill, msgs, msgs * c->avg_len)) {
        wake_fetchers(c);
    }
}

/* librdkafka's idea of the next offset for the application: past
 * records it never delivers (transaction markers). -1 when unknown. */
static int64_t app_position(struct consumer *c, int32_t partition)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    int64_t pos = -1;

    rd_kafka_topic_partition_list_add(l, c->settings->kafka_topic, partition);
    if (rd_kafka_position(c->rk, l) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        !l->elems[0].err && l->elems[0].offset >= 0) {
        pos = l->elems[0].offset;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return pos;
}

/*
 * One partition's progress: offsets, lag in messages and in seconds, and
 * whether it is stalled: work to do (events unfinished, not yet taken, or
 * finished but not yet committed) and a committed offset that has not
 * moved for metrics.stall_timeout_ms.
 */
static void progress(struct consumer *c, int32_t i, long long now,
                     struct akv_partition_progress *pp)
{
    struct akv_partition *p = &c->parts[i];
    int64_t lo = -1;
    int64_t hi = -1;
    int64_t end = akv_endoffsets_get(c->ends, i);
    int64_t w = akv_offsets_watermark(p->offsets);
    int64_t taken;
    size_t pending = akv_offsets_pending(p->offsets);
    struct akv_progress_in in;
    struct akv_progress_memory mem;
    struct akv_progress out;

    if (p->committed < 0) {
        /* Nothing taken or committed since the assignment: the group's
         * committed offset, as read when the partition came. */
        p->committed = akv_endoffsets_committed(c->ends, i);
    }
    taken = w >= 0 ? w : p->committed; /* one past the last event taken */

    /* What the fetcher saw may be newer than the last query. */
    if (rd_kafka_get_watermark_offsets(c->rk, c->settings->kafka_topic, i, &lo,
                                       &hi) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        hi > end) {
        end = hi;
    }
    if (pending == 0 && end >= 0 && taken < end) {
        int64_t rp = app_position(c, i);

        if (rp > taken) {
            taken = rp;
        }
    }
    in.committed = p->committed;
    in.end = end;
    in.start = lo;
    in.taken = taken;
    in.watermark = w;
    in.pending = pending;
    in.oldest_ms = akv_offsets_oldest_timestamp(p->offsets);
    in.now_ms = now;
    in.stall_timeout_ms = c->settings->metrics_stall_timeout_ms;
    mem.moved_ms = p->moved_ms;
    mem.caught_up_ms = p->caught_up_ms;
    mem.idle_ms = p->idle_ms;
    akv_progress_compute(&in, &mem, &out);
    p->caught_up_ms = mem.caught_up_ms;
    p->idle_ms = mem.idle_ms;
    pp->topic = c->settings->kafka_topic;
    pp->partition = i;
    pp->committed = p->committed;
    pp->end = out.end;
    pp->lag = out.lag;
    pp->lag_seconds = out.lag_seconds;
    pp->stalled = out.stalled;
}

/* Gauges, per-partition lag and readiness, once per REPORT_INTERVAL_MS. */
static void report(struct consumer *c)
{
    struct akv_telemetry *tm = c->tm;
    long long now = akv_wall_ms();
    char why[600] = "";
    int assigned = 0;
    int i;

    if (akv_mono_ms() < c->next_report) {
        return;
    }
    c->next_report = akv_mono_ms() + REPORT_INTERVAL_MS;
    akv_telemetry_partitions_begin(tm);
    for (i = 0; i < c->nparts; i++) {
        struct akv_partition_progress pp;

        if (!c->parts[i].assigned || !c->parts[i].offsets) {
            continue;
        }
        assigned++;
        progress(c, i, now, &pp);
        akv_telemetry_partition(tm, &pp);
        if (pp.stalled && !*why) {
            snprintf(why, sizeof(why),
                     "partition %d stalled: committed offset %lld has not "
                     "moved for %lld s with work pending",
                     (int)i, (long long)pp.committed,
                     (now - c->parts[i].moved_ms) / 1000);
        }
    }
    akv_telemetry_partitions_end(tm);
    akv_telemetry_process(tm);
    akv_metric_set(tm->assigned, assigned);
    akv_metric_set(tm->in_flight, (double)akv_engine_in_flight(c->engine));
    akv_metric_set(tm->pending, (double)akv_engine_busy(c->engine));
    akv_metric_set(tm->token_ttl, akv_engine_token_ttl(c->engine));
    akv_metric_set(tm->token_lease, akv_engine_token_lease(c->engine));
    /* The dead-letter topic matters while a poison event waits for it. */
    if (!c->dlq_retries) {
        allowed(c, REFUSED_DLQ);
    }
    /* A configuration error says more than its consequences (a stall, no
     * partitions). */
    for (i = 0; i < REFUSED_KINDS; i++) {
        if (c->denied[i].active) {
            snprintf(why, sizeof(why), "%s", c->denied[i].what);
            break;
        }
    }
    if (*why) {
        /* said */
    } else if (assigned == 0) {
        snprintf(why, sizeof(why), "no partitions assigned");
    } else if (akv_metric_value(tm->up[AKV_UPSTREAM_VAULT]) < 1) {
        snprintf(why, sizeof(why),
                 "vault unreachable: the last request got no answer or a "
                 "5xx");
    } else if (akv_metric_value(tm->up[AKV_UPSTREAM_AUTHENTIK]) < 1) {
        snprintf(why, sizeof(why),
                 "authentik unreachable: the last request got no answer or "
                 "a 5xx");
    }
    akv_telemetry_set_ready(tm, *why ? why : NULL);
}

static void clear_wake(struct consumer *c)
{
    char buf[64];

    while (read(c->wake[0], buf, sizeof(buf)) > 0) {
    }
}

/* --exit-at-end still waiting: what each partition is waiting for. */
static void log_not_at_end(const struct consumer *c)
{
    int i;

    for (i = 0; i < c->nparts; i++) {
        const struct akv_partition *p = &c->parts[i];
        int64_t lo = -1;
        int64_t hi = -1;

        if (!p->assigned || at_end(c, i, p)) {
            continue;
        }
        rd_kafka_get_watermark_offsets(c->rk, c->settings->kafka_topic, i, &lo,
                                       &hi);
        akv_log_info("worker",
                     "not at the end yet: partition=%d eof=%d taken=%lld "
                     "high_watermark=%lld pending=%zu",
                     i, p->eof, (long long)akv_offsets_watermark(p->offsets),
                     (long long)hi, akv_offsets_pending(p->offsets));
    }
}

/* One log level up (more detail) or down per signal received. */
static void adjust_log_level(volatile sig_atomic_t *count, int step,
                             const char *sig)
{
    enum akv_log_level level;

    if (!count || !*count) {
        return;
    }
    *count = 0;
    level = akv_log_get_level();
    if ((step > 0 && level < AKV_LOG_DEBUG) ||
        (step < 0 && level > AKV_LOG_ERROR)) {
        level = (enum akv_log_level)((int)level + step);
        akv_log_set_level(level);
    }
    /* Written whatever the level: the change itself is worth a line. */
    akv_log_write(AKV_LOG_INFO, "worker", "%s: log level now %s", sig,
                  akv_log_level_name(level));
}

/* The signals a running worker serves: SIGHUP, SIGUSR1, SIGUSR2. */
static void serve_signals(struct consumer *c)
{
    const struct akv_run_opts *o = c->opts;
    int n;

    adjust_log_level(o->louder, 1, "SIGUSR1");
    adjust_log_level(o->quieter, -1, "SIGUSR2");
    if (o->reload && *o->reload) {
        *o->reload = 0;
        if (o->reload_fn) {
            o->reload_fn(o->reload_ctx);
        }
        n = akv_engine_reload_credentials(c->engine);
        if (n >= 0) {
            akv_log_info("config", "SIGHUP: token files read again: %s",
                         n > 0 ? "new token in use" : "unchanged");
        }
    }
}

static void poll_loop(struct consumer *c)
{
    long long waited = akv_mono_ms();

    while (*c->run && !c->fatal) {
        int n;
        int paced;

        akv_telemetry_heartbeat(c->tm);
        serve_signals(c);
        akv_engine_tick(c->engine);
        paced = akv_reconciler_tick(c->reconciler);
        clear_wake(c);
        n = drain(c);
        if (akv_engine_deferred(c->engine) > 0 && caught_up(c)) {
            akv_engine_release_deferred(c->engine);
        }
        retry_dead_letters(c);
        akv_commit_store(c->rk, c->settings->kafka_topic, c->parts, c->nparts);
        backpressure(c);
        refill(c);
        report(c);
        if (c->opts->exit_at_end && all_at_end(c)) {
            akv_log_info("worker", "every assigned partition consumed");
            break;
        }
        if (c->opts->exit_at_end && akv_mono_ms() - waited >= 10000) {
            waited = akv_mono_ms();
            log_not_at_end(c);
        }
        /* More may be queued after a full batch: do not sleep then; nor
         * past the moment the reconcile's pace lets its next sync go. */
        akv_engine_run(c->engine, c->wake[0],
                       n == POLL_BATCH             ? 0
                       : paced >= 0 && paced < 100 ? paced
                                                   : 100);
    }
}

/*
 * librdkafka 2.0.2 aborts (sticky assignor assertion, fixed upstream in
 * 2.3.0) when a consumer is closed between its JoinGroup and SyncGroup
 * answers. A member stopped while it holds no partitions may be in that
 * window, so it lets the join finish first, for a bounded time. Messages
 * that arrive meanwhile are not processed (nor committed).
 */
static void let_join_finish(struct consumer *c)
{
    long long bound = c->settings->kafka_session_timeout_ms;
    long long deadline;

    if (c->settings->sync_shutdown_timeout_ms < bound) {
        bound = c->settings->sync_shutdown_timeout_ms;
    }
    deadline = akv_mono_ms() + bound;
    while (akv_mono_ms() < deadline) {
        rd_kafka_topic_partition_list_t *a = NULL;
        rd_kafka_message_t *rkm;
        int n = 0;

        if (rd_kafka_assignment(c->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            n = a->cnt;
            rd_kafka_topic_partition_list_destroy(a);
        }
        if (n > 0) {
            return;
        }
        rkm = rd_kafka_consumer_poll(c->rk, 100);
        if (rkm) {
            rd_kafka_message_destroy(rkm);
        }
    }
}

/* SIGTERM: stop taking events and starting syncs, let the running ones
 * finish for a while (a sync waiting out a backoff cannot finish: it is
 * left to the next owner), then store what is finished. */
static void drain_in_flight(struct consumer *c)
{
    long long deadline = akv_mono_ms() + c->settings->sync_shutdown_timeout_ms;

    akv_engine_drain(c->engine);
    while (akv_engine_in_flight(c->engine) > 0 && akv_mono_ms() < deadline) {
        akv_engine_run(c->engine, -1, 50);
    }
    if (akv_engine_busy(c->engine) > 0) {
        akv_log_warn("worker",
                     "%zu token sync(s) unfinished at shutdown; their "
                     "events are redone by the next owner",
                     akv_engine_busy(c->engine));
    }
    akv_commit_store(c->rk, c->settings->kafka_topic, c->parts, c->nparts);
}

/* Everything the consumer needs before it subscribes, then the
 * subscription. */
static akv_err_t consumer_start(struct consumer *c, char *errstr,
                                size_t errstr_size)
{
    const struct akv_settings *s = c->settings;
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_resp_err_t kerr;

    if (pipe(c->wake) < 0 || fcntl(c->wake[0], F_SETFL, O_NONBLOCK) < 0 ||
        fcntl(c->wake[1], F_SETFL, O_NONBLOCK) < 0) {
        return akv_errf(AKV_ERR_IO, errstr, errstr_size, "pipe: %s",
                        strerror(errno));
    }
    if (s->dlq_enabled) {
        c->dlq = akv_dlq_new(s, errstr, errstr_size);
        if (!c->dlq) {
            return AKV_ERR_CONFIG;
        }
    }
    c->engine = akv_engine_new(s, c->tm, on_synced, dead_letter_given_up, c,
                               errstr, errstr_size);
    if (!c->engine) {
        return AKV_ERR_CONFIG;
    }
    c->reconciler = akv_reconciler_new(s, c->engine, c->tm, c->wake[1]);
    if (!c->reconciler) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    c->rk = create(c, errstr, errstr_size);
    if (!c->rk) {
        return AKV_ERR_CONFIG;
    }
    rd_kafka_poll_set_consumer(c->rk);
    c->queue = rd_kafka_queue_get_consumer(c->rk);
    rd_kafka_queue_io_event_enable(c->queue, c->wake[1], "1", 1);
    read_prefetch_bounds(c);
    c->ends =
        akv_endoffsets_new(c->rk, s->kafka_topic, s->metrics_lag_interval_ms);
    if (!c->ends) {
        akv_log_warn("kafka", "no end-offset reader thread: lag follows only "
                              "what the fetcher sees");
    }
    c->fetchwake = akv_fetchwake_new(c->rk, s->kafka_topic);
    if (!c->fetchwake) {
        akv_log_warn("kafka", "no fetch wake-up thread: fetching may pause "
                              "for up to a second whenever the queue fills");
    }
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, s->kafka_topic,
                                      RD_KAFKA_PARTITION_UA);
    kerr = rd_kafka_subscribe(c->rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (kerr) {
        return akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                        "cannot subscribe to %s: %s", s->kafka_topic,
                        rd_kafka_err2str(kerr));
    }
    akv_log_info("worker", "consuming topic=%s group=%s max_in_flight=%lld",
                 s->kafka_topic, s->kafka_group, s->sync_max_in_flight);
    return AKV_OK;
}

/* After the poll loop: finish the syncs in flight, commit, leave. */
static void consumer_leave(struct consumer *c)
{
    rd_kafka_resp_err_t kerr;

    if (c->fetchwake) {
        akv_log_info("kafka",
                     "fetcher woken %lu time(s) after its queue drained",
                     akv_fetchwake_rounds(c->fetchwake));
        akv_fetchwake_destroy(c->fetchwake);
        c->fetchwake = NULL;
    }
    akv_endoffsets_destroy(c->ends);
    c->ends = NULL;
    atomic_store(&c->tm->stopping, 1);
    akv_telemetry_set_ready(c->tm, "shutting down");
    akv_log_info("worker", "stopping: finishing syncs in flight, committing "
                           "and leaving the group");
    drain_in_flight(c);
    let_join_finish(c);
    akv_commit_final(c->rk, SHUTDOWN_COMMIT_MS);
    rd_kafka_queue_io_event_enable(c->queue, -1, NULL, 0);
    kerr = rd_kafka_consumer_close(c->rk);
    if (kerr) {
        akv_log_warn("kafka", "close: %s", rd_kafka_err2str(kerr));
    }
}

static void consumer_free(struct consumer *c)
{
    int i;

    akv_fetchwake_destroy(c->fetchwake);
    akv_endoffsets_destroy(c->ends);
    if (c->queue) {
        rd_kafka_queue_destroy(c->queue);
    }
    akv_reconciler_destroy(c->reconciler);
    akv_engine_destroy(c->engine);
    for (i = 0; i < c->nparts; i++) {
        if (c->parts[i].offsets) {
            akv_offsets_reset(c->parts[i].offsets, free_record);
            akv_offsets_destroy(c->parts[i].offsets);
        }
    }
    free(c->parts);
    free(c->wakeup);
    while (c->dlq_retries) {
        struct dlq_retry *r = c->dlq_retries;

        c->dlq_retries = r->next;
        free(r);
    }
    if (c->rk) {
        rd_kafka_destroy(c->rk);
    }
    akv_dlq_destroy(c->dlq);
    if (c->wake[0] >= 0) {
        close(c->wake[0]);
        close(c->wake[1]);
    }
}

akv_err_t akv_consumer_run(const struct akv_settings *s,
                           const struct akv_run_opts *opts,
                           volatile sig_atomic_t *run, struct akv_telemetry *tm,
                           char *errstr, size_t errstr_size)
{
    struct consumer c;
    akv_err_t err;

    memset(&c, 0, sizeof(c));
    c.settings = s;
    c.opts = opts;
    c.run = run;
    c.tm = tm;
    c.wake[0] = -1;
    c.wake[1] = -1;
    c.rules.apps = &s->match_apps;
    c.rules.models = &s->match_models;
    c.rules.sync_actions = &s->match_sync_actions;
    c.rules.delete_actions = &s->match_delete_actions;

    err = consumer_start(&c, errstr, errstr_size);
    if (err == AKV_OK) {
        poll_loop(&c);
        if (c.fatal) {
            err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                           "stopped on a fatal Kafka error");
        }
        consumer_leave(&c);
    }
    consumer_free(&c);
    return err;
}
