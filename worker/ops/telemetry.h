/*
 * telemetry — the worker's metrics (README.md, "Metrics and health") and
 * health.
 *
 * One registry (common/metrics.c) with every ak2vault_* family, the
 * series the worker updates kept as pointers, and the state /livez and
 * /readyz answer from. The poll loop's thread updates and removes series;
 * the HTTP thread only renders and reads the health state.
 */
#ifndef AKV_WORKER_TELEMETRY_H
#define AKV_WORKER_TELEMETRY_H

#include "drift.h"
#include "kstats.h"
#include "metrics.h"
#include "outcome.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

enum akv_upstream {
    AKV_UPSTREAM_AUTHENTIK = 0,
    AKV_UPSTREAM_VAULT,
    AKV_UPSTREAMS
};

/* Statuses 100..599 get a series each, looked up once; slot 0 is a
 * request that got no answer (status="error"). */
#define AKV_STATUS_SLOTS 600

struct akv_telemetry {
    struct akv_metrics *reg;

    /* events */
    struct akv_metric *consumed;
    struct akv_metric *skipped;
    struct akv_metric *matched;
    struct akv_metric *invalid;
    /* syncs */
    struct akv_metric *result[AKV_SYNC_RESULTS]; /* dry_run: none */
    struct akv_metric *superseded;
    struct akv_metric *gave_up;
    struct akv_metric *retries;
    struct akv_metric *dlq_messages;
    struct akv_metric *latency;
    struct akv_metric *in_flight;
    struct akv_metric *pending;
    /* upstreams */
    struct akv_metric_family *requests;
    struct akv_metric *by_status[AKV_UPSTREAMS][AKV_STATUS_SLOTS];
    struct akv_metric *request_seconds[AKV_UPSTREAMS];
    struct akv_metric *up[AKV_UPSTREAMS];
    struct akv_metric *token_ttl;
    struct akv_metric *token_lease;
    /* the consumer */
    struct akv_metric *rebalances;
    struct akv_metric *commits_ok;
    struct akv_metric *commits_failed;
    struct akv_metric *assigned;
    struct akv_metric_family *committed;
    struct akv_metric_family *end;
    struct akv_metric_family *lag;
    struct akv_metric_family *lag_seconds;
    struct akv_metric_family *stalled;
    struct akv_metric *ready_gauge;
    /* the periodic reconcile */
    struct akv_metric *reconcile_owner;
    struct akv_metric *reconcile_running;
    struct akv_metric *reconcile_last_success;
    struct akv_metric *reconcile_duration;
    struct akv_metric *reconcile_tokens;
    struct akv_metric *reconcile_runs_ok;
    struct akv_metric *reconcile_runs_failed;
    struct akv_metric *reconcile_drift[AKV_DRIFT_KINDS]; /* ORPHAN and before */
    struct akv_metric *reconcile_repaired[AKV_DRIFT_KINDS];
    struct akv_metric *reconcile_orphans_removed;
    /* the process, and librdkafka's statistics */
    struct akv_metric *process_cpu;
    double process_cpu_seen; /* the counter's value so far */
    struct akv_metric *process_rss;
    struct akv_metric *process_vsize;
    struct akv_metric *process_fds;
    struct akv_metric *process_max_fds;
    struct akv_metric *process_start;
    struct akv_metric_family *kafka_rtt;
    struct akv_metric *kafka_fetchq_messages;
    struct akv_metric *kafka_fetchq_bytes;

    /* health, read by the HTTP thread */
    _Atomic long long heartbeat_ms; /* monotonic; 0 before the loop runs */
    _Atomic int stopping;
    pthread_mutex_t lock;
    int ready;         /* under lock */
    char why_not[256]; /* under lock: what keeps it unready */
};

/** What the consumer knows of one assigned partition. */
struct akv_partition_progress {
    const char *topic;
    int32_t partition;
    int64_t committed; /**< -1: not known yet */
    int64_t end;       /**< log end offset; -1: not known yet */
    int64_t lag;       /**< messages not finished; -1: not known yet */
    double lag_seconds;
    int stalled;
};

/**
 * @brief Creates the registry with every family at its initial value.
 * @returns NULL with a message in \p errstr when out of memory.
 */
struct akv_telemetry *akv_telemetry_new(const char *version,
                                        const char *librdkafka, char *errstr,
                                        size_t errstr_size);

/** @brief Frees \p t; the HTTP endpoint must be stopped first. */
void akv_telemetry_free(struct akv_telemetry *t);

/**
 * @brief Counts one upstream request.
 * @param status the HTTP status, 0 when no answer arrived.
 * @param seconds how long it took.
 * @remark A request without an answer or with a 5xx marks the upstream
 *         down, any other answer up.
 */
void akv_telemetry_request(struct akv_telemetry *t, enum akv_upstream u,
                           long status, double seconds);

/**
 * @brief Starts a round of partition reports: the partitions not reported
 *        again before akv_telemetry_partitions_end() lose their series.
 */
void akv_telemetry_partitions_begin(struct akv_telemetry *t);

/** @brief Sets one partition's offsets, lag and stall gauges. */
void akv_telemetry_partition(struct akv_telemetry *t,
                             const struct akv_partition_progress *p);

/** @brief Ends the round begun by akv_telemetry_partitions_begin(). */
void akv_telemetry_partitions_end(struct akv_telemetry *t);

/** @brief Reads the process's CPU, memory and descriptors (process_*). */
void akv_telemetry_process(struct akv_telemetry *t);

/** @brief Sets the gauges of librdkafka's statistics from \p k (brokers
 *         no longer named lose their series). */
void akv_telemetry_kafka_stats(struct akv_telemetry *t,
                               const struct akv_kstats *k);

/** @brief The poll loop turned (for /livez). */
void akv_telemetry_heartbeat(struct akv_telemetry *t);

/** @brief Records readiness; \p why_not says what is missing (NULL: ready). */
void akv_telemetry_set_ready(struct akv_telemetry *t, const char *why_not);

/**
 * @returns non-zero when the poll loop turned within \p timeout_ms (or is
 *          shutting down on purpose); else 0 with the reason in \p msg.
 */
int akv_telemetry_live(struct akv_telemetry *t, long long timeout_ms, char *msg,
                       size_t size);

/** @returns non-zero when ready; else 0 with the reason in \p msg. */
int akv_telemetry_ready(struct akv_telemetry *t, char *msg, size_t size);

/** @brief Logs the run's counters as one "final stats:" line. */
void akv_telemetry_log_final(const struct akv_telemetry *t);

#endif /* AKV_WORKER_TELEMETRY_H */
