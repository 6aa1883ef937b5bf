/*
 * telemetry — the ak2vault_* families and the health state.
 */
#include "telemetry.h"

#include "clock.h"
#include "log.h"
#include "process.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* From a cached token (milliseconds) to a day-long outage. */
static const double latency_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,    2.5,
    5,     10,   30,    60,   120, 300,  600, 1800, 3600,
};
static const double request_buckets[] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
};

static const char *const upstream_names[AKV_UPSTREAMS] = {"authentik", "vault"};

struct family_def {
    enum akv_metric_type type;
    const char *name;
    const char *help;
    const char *labels[AKV_METRIC_MAX_LABELS];
    const double *buckets;
    size_t nbuckets;
    struct akv_metric_family **fam; /* where to keep the family, or NULL */
    struct akv_metric **series;     /* where to keep the unlabelled series */
};

/* Adds a family; for an unlabelled one keeps its series. */
static int add(struct akv_telemetry *t, const struct family_def *d,
               char *errstr, size_t errstr_size)
{
    struct akv_metric_spec spec;
    struct akv_metric_family *fam;

    memset(&spec, 0, sizeof(spec));
    spec.type = d->type;
    spec.name = d->name;
    spec.help = d->help;
    memcpy(spec.labels, d->labels, sizeof(spec.labels));
    spec.buckets = d->buckets;
    spec.nbuckets = d->nbuckets;
    if (akv_metrics_family(t->reg, &spec, &fam, errstr, errstr_size) !=
        AKV_OK) {
        return -1;
    }
    if (d->fam) {
        *d->fam = fam;
    }
    if (d->series) {
        *d->series = akv_metric_get(fam, NULL);
        if (!*d->series) {
            snprintf(errstr, errstr_size, "out of memory");
            return -1;
        }
    }
    return 0;
}

/* Gets the series of a labelled family (creating it at 0). */
static int labelled(struct akv_metric_family *fam, struct akv_metric **out,
                    const char *a, const char *b, char *errstr,
                    size_t errstr_size)
{
    const char *values[2] = {a, b};

    *out = akv_metric_get(fam, values);
    if (!*out) {
        snprintf(errstr, errstr_size, "out of memory");
        return -1;
    }
    return 0;
}

static double wall_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Families whose series the code below labels, and two it sets once. */
struct named {
    struct akv_metric_family *syncs;
    struct akv_metric_family *commits;
    struct akv_metric_family *durations;
    struct akv_metric_family *up;
    struct akv_metric_family *info;
    struct akv_metric *start;
    struct akv_metric_family *reconcile_runs;
    struct akv_metric_family *reconcile_drift;
    struct akv_metric_family *reconcile_repaired;
};

/* Every metric family of the worker: a table. */
static int add_families(struct akv_telemetry *t, struct named *n, char *errstr,
                        size_t errstr_size)
{
    size_t i;

    const struct family_def defs[] = {
        {AKV_METRIC_COUNTER,
         "ak2vault_events_consumed_total",
         "Kafka messages taken from the topic.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->consumed},
        {AKV_METRIC_COUNTER,
         "ak2vault_events_skipped_total",
         "Events that are not token events (or not mirrored).",
         {NULL},
         NULL,
         0,
         NULL,
         &t->skipped},
        {AKV_METRIC_COUNTER,
         "ak2vault_events_matched_total",
         "Token events handed to a sync.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->matched},
        {AKV_METRIC_COUNTER,
         "ak2vault_events_invalid_total",
         "Token events that cannot be used (sent to the dead-letter "
         "topic).",
         {NULL},
         NULL,
         0,
         NULL,
         &t->invalid},
        {AKV_METRIC_COUNTER,
         "ak2vault_syncs_total",
         "Syncs by result: written, unchanged, gone, deleted, filtered, "
         "dead_lettered (gave up); superseded counts check-and-set writes "
         "that lost to another writer (the sync re-reads and goes on).",
         {"result", NULL},
         NULL,
         0,
         &n->syncs,
         NULL},
        {AKV_METRIC_COUNTER,
         "ak2vault_sync_retries_total",
         "Failed sync attempts that will be retried.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->retries},
        {AKV_METRIC_COUNTER,
         "ak2vault_dlq_messages_total",
         "Events written to the dead-letter topic.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->dlq_messages},
        {AKV_METRIC_HISTOGRAM,
         "ak2vault_sync_latency_seconds",
         "From an event's Kafka timestamp to the end of the sync that "
         "answered for it.",
         {NULL},
         latency_buckets,
         sizeof(latency_buckets) / sizeof(latency_buckets[0]),
         NULL,
         &t->latency},
        {AKV_METRIC_GAUGE,
         "ak2vault_syncs_in_flight",
         "Syncs with requests out right now.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->in_flight},
        {AKV_METRIC_GAUGE,
         "ak2vault_syncs_pending",
         "Tokens with a sync running, waiting to run or waiting to "
         "retry.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->pending},
        {AKV_METRIC_COUNTER,
         "ak2vault_upstream_requests_total",
         "Requests to authentik and Vault by HTTP status (error: no "
         "answer).",
         {"upstream", "status", NULL},
         NULL,
         0,
         &t->requests,
         NULL},
        {AKV_METRIC_HISTOGRAM,
         "ak2vault_upstream_request_duration_seconds",
         "Duration of requests to authentik and Vault.",
         {"upstream", NULL},
         request_buckets,
         sizeof(request_buckets) / sizeof(request_buckets[0]),
         &n->durations,
         NULL},
        {AKV_METRIC_GAUGE,
         "ak2vault_upstream_up",
         "0 after a request got no answer or a 5xx, 1 once one is "
         "answered again (1 before the first request).",
         {"upstream", NULL},
         NULL,
         0,
         &n->up,
         NULL},
        {AKV_METRIC_GAUGE,
         "ak2vault_vault_token_ttl_seconds",
         "Seconds left before the Vault token expires (+Inf: never; 0: "
         "no token).",
         {NULL},
         NULL,
         0,
         NULL,
         &t->token_ttl},
        {AKV_METRIC_GAUGE,
         "ak2vault_vault_token_lease_seconds",
         "The lifetime the Vault token was given at its login or lookup "
         "(+Inf: never expires; 0: no token).",
         {NULL},
         NULL,
         0,
         NULL,
         &t->token_lease},
        {AKV_METRIC_COUNTER,
         "ak2vault_rebalances_total",
         "Consumer group assignment changes.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->rebalances},
        {AKV_METRIC_COUNTER,
         "ak2vault_commits_total",
         "Offset commits by result (ok, error).",
         {"result", NULL},
         NULL,
         0,
         &n->commits,
         NULL},
        {AKV_METRIC_GAUGE,
         "ak2vault_assigned_partitions",
         "Partitions assigned to this worker.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->assigned},
        {AKV_METRIC_GAUGE,
         "ak2vault_committed_offset",
         "Last committed offset (the next event to process).",
         {"topic", "partition", NULL},
         NULL,
         0,
         &t->committed,
         NULL},
        {AKV_METRIC_GAUGE,
         "ak2vault_end_offset",
         "Log end offset (high watermark).",
         {"topic", "partition", NULL},
         NULL,
         0,
         &t->end,
         NULL},
        {AKV_METRIC_GAUGE,
         "ak2vault_consumer_lag_messages",
         "End offset minus committed offset.",
         {"topic", "partition", NULL},
         NULL,
         0,
         &t->lag,
         NULL},
        {AKV_METRIC_GAUGE,
         "ak2vault_consumer_lag_seconds",
         "Age of the oldest unfinished event (0 when caught up).",
         {"topic", "partition", NULL},
         NULL,
         0,
         &t->lag_seconds,
         NULL},
        {AKV_METRIC_GAUGE,
         "ak2vault_partition_stalled",
         "1 when the partition has unfinished work and its committed "
         "offset has not moved for metrics.stall_timeout_ms.",
         {"topic", "partition", NULL},
         NULL,
         0,
         &t->stalled,
         NULL},
        {AKV_METRIC_GAUGE,
         "ak2vault_ready",
         "1 when /readyz answers ready.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->ready_gauge},
        {AKV_METRIC_GAUGE,
         "ak2vault_reconcile_owner",
         "1 while this replica owns the periodic reconcile (it holds "
         "partition 0 of the topic).",
         {NULL},
         NULL,
         0,
         NULL,
         &t->reconcile_owner},
        {AKV_METRIC_GAUGE,
         "ak2vault_reconcile_running",
         "1 while a periodic reconcile lists or syncs.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->reconcile_running},
        {AKV_METRIC_GAUGE,
         "ak2vault_reconcile_last_success_timestamp_seconds",
         "When the last reconcile of this replica that listed both sides "
         "and synced every token ended (0: none yet).",
         {NULL},
         NULL,
         0,
         NULL,
         &t->reconcile_last_success},
        {AKV_METRIC_GAUGE,
         "ak2vault_reconcile_duration_seconds",
         "How long the last finished reconcile took.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->reconcile_duration},
        {AKV_METRIC_GAUGE,
         "ak2vault_reconcile_tokens",
         "Identifiers the last finished reconcile visited (authentik's "
         "tokens and the secrets under the prefix).",
         {NULL},
         NULL,
         0,
         NULL,
         &t->reconcile_tokens},
        {AKV_METRIC_COUNTER,
         "ak2vault_reconcile_runs_total",
         "Finished reconciles by result (ok; failed: a list could not be "
         "read or a token's sync gave up).",
         {"result", NULL},
         NULL,
         0,
         &n->reconcile_runs,
         NULL},
        {AKV_METRIC_COUNTER,
         "ak2vault_reconcile_drift_total",
         "Tokens a reconcile found out of sync, by kind (missing, "
         "stale_key, intent_differs, fields_differ, orphan).",
         {"kind", NULL},
         NULL,
         0,
         &n->reconcile_drift,
         NULL},
        {AKV_METRIC_COUNTER,
         "ak2vault_reconcile_repaired_total",
         "Drift a reconcile repaired, by kind (an orphan kept by "
         "vault.on_delete=keep is not repaired).",
         {"kind", NULL},
         NULL,
         0,
         &n->reconcile_repaired,
         NULL},
        {AKV_METRIC_COUNTER,
         "ak2vault_reconcile_orphans_removed_total",
         "Secrets a reconcile deleted or purged because authentik "
         "answered 404 for their token.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->reconcile_orphans_removed},
        {AKV_METRIC_GAUGE,
         "ak2vault_kafka_broker_rtt_seconds",
         "Average request round trip to each broker over the last "
         "statistics interval (librdkafka's statistics).",
         {"broker", NULL},
         NULL,
         0,
         &t->kafka_rtt,
         NULL},
        {AKV_METRIC_GAUGE,
         "ak2vault_kafka_fetch_queue_messages",
         "Messages fetched and waiting in librdkafka's queues.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->kafka_fetchq_messages},
        {AKV_METRIC_GAUGE,
         "ak2vault_kafka_fetch_queue_bytes",
         "Bytes fetched and waiting in librdkafka's queues.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->kafka_fetchq_bytes},
        {AKV_METRIC_COUNTER,
         "process_cpu_seconds_total",
         "Total user and system CPU time spent in seconds.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->process_cpu},
        {AKV_METRIC_GAUGE,
         "process_resident_memory_bytes",
         "Resident memory size in bytes.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->process_rss},
        {AKV_METRIC_GAUGE,
         "process_virtual_memory_bytes",
         "Virtual memory size in bytes.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->process_vsize},
        {AKV_METRIC_GAUGE,
         "process_open_fds",
         "Number of open file descriptors.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->process_fds},
        {AKV_METRIC_GAUGE,
         "process_max_fds",
         "Maximum number of open file descriptors.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->process_max_fds},
        {AKV_METRIC_GAUGE,
         "process_start_time_seconds",
         "Start time of the process since unix epoch in seconds.",
         {NULL},
         NULL,
         0,
         NULL,
         &t->process_start},
        {AKV_METRIC_GAUGE,
         "ak2vault_build_info",
         "Always 1; the labels say which build runs.",
         {"version", "librdkafka", NULL},
         NULL,
         0,
         &n->info,
         NULL},
        {AKV_METRIC_GAUGE,
         "ak2vault_start_time_seconds",
         "When the worker started, in seconds since the Unix epoch.",
         {NULL},
         NULL,
         0,
         NULL,
         &n->start},
    };

    for (i = 0; i < sizeof(defs) / sizeof(defs[0]); i++) {
        if (add(t, &defs[i], errstr, errstr_size) < 0) {
            return -1;
        }
    }
    return 0;
}

/* The labelled series the worker updates by name, and the constant ones. */
static int add_series(struct akv_telemetry *t, const struct named *n,
                      const char *version, const char *librdkafka, char *errstr,
                      size_t errstr_size)
{
    struct akv_metric *build = NULL;
    size_t i;
    int u;

    for (i = 0; i <= AKV_SYNC_FILTERED; i++) {
        if (labelled(n->syncs, &t->result[i], akv_sync_result_name(i), NULL,
                     errstr, errstr_size) < 0) {
            return -1;
        }
    }
    if (labelled(n->syncs, &t->superseded, "superseded", NULL, errstr,
                 errstr_size) < 0 ||
        labelled(n->syncs, &t->gave_up, "dead_lettered", NULL, errstr,
                 errstr_size) < 0 ||
        labelled(n->commits, &t->commits_ok, "ok", NULL, errstr, errstr_size) <
            0 ||
        labelled(n->commits, &t->commits_failed, "error", NULL, errstr,
                 errstr_size) < 0 ||
        labelled(n->info, &build, version, librdkafka, errstr, errstr_size) <
            0) {
        return -1;
    }
    if (labelled(n->reconcile_runs, &t->reconcile_runs_ok, "ok", NULL, errstr,
                 errstr_size) < 0 ||
        labelled(n->reconcile_runs, &t->reconcile_runs_failed, "failed", NULL,
                 errstr, errstr_size) < 0) {
        return -1;
    }
    for (i = AKV_DRIFT_MISSING; i <= AKV_DRIFT_ORPHAN; i++) {
        if (labelled(n->reconcile_drift, &t->reconcile_drift[i],
                     akv_drift_name(i), NULL, errstr, errstr_size) < 0 ||
            labelled(n->reconcile_repaired, &t->reconcile_repaired[i],
                     akv_drift_name(i), NULL, errstr, errstr_size) < 0) {
            return -1;
        }
    }
    for (u = 0; u < AKV_UPSTREAMS; u++) {
        if (labelled(n->durations, &t->request_seconds[u], upstream_names[u],
                     NULL, errstr, errstr_size) < 0 ||
            labelled(n->up, &t->up[u], upstream_names[u], NULL, errstr,
                     errstr_size) < 0) {
            return -1;
        }
        akv_metric_set(t->up[u], 1);
    }
    akv_metric_set(build, 1);
    akv_metric_set(n->start, floor(wall_seconds()));
    return 0;
}

struct akv_telemetry *akv_telemetry_new(const char *version,
                                        const char *librdkafka, char *errstr,
                                        size_t errstr_size)
{
    struct akv_telemetry *t = calloc(1, sizeof(*t));
    struct named n;

    if (!t) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        free(t);
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    snprintf(t->why_not, sizeof(t->why_not), "starting");
    t->reg = akv_metrics_new();
    if (!t->reg) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    memset(&n, 0, sizeof(n));
    if (add_families(t, &n, errstr, errstr_size) < 0 ||
        add_series(t, &n, version, librdkafka, errstr, errstr_size) < 0) {
        goto fail;
    }
    return t;

fail:
    akv_telemetry_free(t);
    return NULL;
}

void akv_telemetry_free(struct akv_telemetry *t)
{
    if (!t) {
        return;
    }
    akv_metrics_free(t->reg);
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void akv_telemetry_process(struct akv_telemetry *t)
{
    struct akv_process p;

    if (!t || akv_process_read(&p) < 0) {
        return;
    }
    /* A counter only goes up: add what was spent since the last read. */
    akv_metric_add(t->process_cpu, p.cpu_seconds - t->process_cpu_seen);
    if (p.cpu_seconds > t->process_cpu_seen) {
        t->process_cpu_seen = p.cpu_seconds;
    }
    akv_metric_set(t->process_rss, p.rss_bytes);
    akv_metric_set(t->process_vsize, p.vsize_bytes);
    akv_metric_set(t->process_start, p.start_time);
    if (p.open_fds >= 0) {
        akv_metric_set(t->process_fds, p.open_fds);
    }
    if (p.max_fds >= 0) {
        akv_metric_set(t->process_max_fds, p.max_fds);
    }
}

void akv_telemetry_kafka_stats(struct akv_telemetry *t,
                               const struct akv_kstats *k)
{
    size_t i;

    if (!t) {
        return;
    }
    akv_metric_family_mark(t->kafka_rtt);
    for (i = 0; i < k->nbrokers; i++) {
        const char *values[1] = {k->brokers[i].name};

        akv_metric_set(akv_metric_get(t->kafka_rtt, values),
                       k->brokers[i].rtt_seconds);
    }
    akv_metric_family_sweep(t->kafka_rtt);
    akv_metric_set(t->kafka_fetchq_messages, k->fetch_queue_messages);
    akv_metric_set(t->kafka_fetchq_bytes, k->fetch_queue_bytes);
}

void akv_telemetry_request(struct akv_telemetry *t, enum akv_upstream u,
                           long status, double seconds)
{
    struct akv_metric **slot;

    if (!t || u < 0 || u >= AKV_UPSTREAMS) {
        return;
    }
    if (status < 100 || status >= AKV_STATUS_SLOTS) {
        status = 0;
    }
    slot = &t->by_status[u][status];
    if (!*slot) {
        char code[16];
        const char *values[2];

        snprintf(code, sizeof(code), "%ld", status);
        values[0] = upstream_names[u];
        values[1] = status ? code : "error";
        *slot = akv_metric_get(t->requests, values);
    }
    akv_metric_inc(*slot);
    akv_metric_observe(t->request_seconds[u], seconds);
    akv_metric_set(t->up[u], status == 0 || status >= 500 ? 0 : 1);
}

void akv_telemetry_partitions_begin(struct akv_telemetry *t)
{
    akv_metric_family_mark(t->committed);
    akv_metric_family_mark(t->end);
    akv_metric_family_mark(t->lag);
    akv_metric_family_mark(t->lag_seconds);
    akv_metric_family_mark(t->stalled);
}

void akv_telemetry_partition(struct akv_telemetry *t,
                             const struct akv_partition_progress *p)
{
    char num[16];
    const char *values[2];

    snprintf(num, sizeof(num), "%d", (int)p->partition);
    values[0] = p->topic;
    values[1] = num;
    /* Unknown offsets have no series: a made-up 0 would be a lie. */
    if (p->committed >= 0) {
        akv_metric_set(akv_metric_get(t->committed, values),
                       (double)p->committed);
    }
    if (p->end >= 0) {
        akv_metric_set(akv_metric_get(t->end, values), (double)p->end);
    }
    if (p->lag >= 0) {
        akv_metric_set(akv_metric_get(t->lag, values), (double)p->lag);
    }
    akv_metric_set(akv_metric_get(t->lag_seconds, values), p->lag_seconds);
    akv_metric_set(akv_metric_get(t->stalled, values), p->stalled ? 1 : 0);
}

void akv_telemetry_partitions_end(struct akv_telemetry *t)
{
    akv_metric_family_sweep(t->committed);
    akv_metric_family_sweep(t->end);
    akv_metric_family_sweep(t->lag);
    akv_metric_family_sweep(t->lag_seconds);
    akv_metric_family_sweep(t->stalled);
}

void akv_telemetry_heartbeat(struct akv_telemetry *t)
{
    atomic_store(&t->heartbeat_ms, akv_mono_ms());
}

void akv_telemetry_set_ready(struct akv_telemetry *t, const char *why_not)
{
    pthread_mutex_lock(&t->lock);
    t->ready = why_not == NULL;
    snprintf(t->why_not, sizeof(t->why_not), "%s", why_not ? why_not : "");
    pthread_mutex_unlock(&t->lock);
    akv_metric_set(t->ready_gauge, why_not ? 0 : 1);
}

int akv_telemetry_live(struct akv_telemetry *t, long long timeout_ms, char *msg,
                       size_t size)
{
    long long beat = atomic_load(&t->heartbeat_ms);
    long long age;

    if (atomic_load(&t->stopping)) {
        snprintf(msg, size, "shutting down");
        return 1;
    }
    if (beat == 0) {
        snprintf(msg, size, "starting");
        return 1; /* connecting is not being stuck */
    }
    age = akv_mono_ms() - beat;
    if (age > timeout_ms) {
        snprintf(msg, size, "the poll loop has not turned for %lld ms", age);
        return 0;
    }
    snprintf(msg, size, "ok");
    return 1;
}

int akv_telemetry_ready(struct akv_telemetry *t, char *msg, size_t size)
{
    int ready;

    pthread_mutex_lock(&t->lock);
    ready = t->ready;
    snprintf(msg, size, "%s", ready ? "ready" : t->why_not);
    pthread_mutex_unlock(&t->lock);
    return ready;
}

static unsigned long long count(const struct akv_metric *s)
{
    return (unsigned long long)akv_metric_value(s);
}

void akv_telemetry_log_final(const struct akv_telemetry *t)
{
    akv_log_info(
        "worker",
        "final stats: consumed=%llu skipped=%llu matched=%llu "
        "poison=%llu written=%llu unchanged=%llu gone=%llu "
        "deleted=%llu filtered=%llu retries=%llu "
        "dead_lettered=%llu",
        count(t->consumed), count(t->skipped), count(t->matched),
        count(t->invalid), count(t->result[AKV_SYNC_WRITTEN]),
        count(t->result[AKV_SYNC_UNCHANGED]), count(t->result[AKV_SYNC_GONE]),
        count(t->result[AKV_SYNC_DELETED]), count(t->result[AKV_SYNC_FILTERED]),
        count(t->retries), count(t->dlq_messages));
}
