/*
 * consumer — the poll loop: a librdkafka consumer-group member that turns
 * authentik events into syncs and stores each offset only once its event is
 * finished (at-least-once: enable.auto.offset.store=false).
 */
#ifndef AKV_WORKER_CONSUMER_H
#define AKV_WORKER_CONSUMER_H

#include "err.h"
#include "settings.h"

#include <signal.h>

struct akv_run_opts {
    int exit_at_end; /**< stop once every assigned partition is consumed */
};

/** Counters for one run; printed as the final "stats" log line. */
struct akv_stats {
    unsigned long long consumed;  /**< messages polled */
    unsigned long long skipped;   /**< not token events */
    unsigned long long matched;   /**< token events (sync or delete) */
    unsigned long long poison;    /**< unusable token events */
    unsigned long long written;   /**< syncs that wrote a Vault version */
    unsigned long long unchanged; /**< syncs that found Vault up to date */
    unsigned long long gone;      /**< tokens gone from authentik, kept */
    unsigned long long deleted;   /**< tokens gone, deleted from Vault */
    unsigned long long filtered;  /**< tokens whose intent is not mirrored */
    unsigned long long retries;   /**< failed attempts, retried later */
    unsigned long long dead_lettered; /**< events written to the DLQ */
    unsigned long long rebalances;    /**< assignment changes */
};

/**
 * @brief Runs the consumer until \p *run becomes 0 (signal), a fatal Kafka
 *        error, or (with exit_at_end) the end of every assigned partition.
 * @returns AKV_OK on a clean stop (offsets committed, group left), or an
 *          error with a message in \p errstr.
 */
akv_err_t akv_consumer_run(const struct akv_settings *s,
                           const struct akv_run_opts *opts,
                           volatile sig_atomic_t *run, struct akv_stats *stats,
                           char *errstr, size_t errstr_size);

/** @brief Logs \p stats as one "final stats:" line of key=value pairs. */
void akv_stats_log(const struct akv_stats *stats);

#endif /* AKV_WORKER_CONSUMER_H */
