/*
 * consumer — the poll loop: a librdkafka consumer-group member that turns
 * authentik events into syncs and stores each offset only once its event is
 * finished (at-least-once: enable.auto.offset.store=false).
 */
#ifndef AKV_WORKER_CONSUMER_H
#define AKV_WORKER_CONSUMER_H

#include "err.h"
#include "settings.h"
#include "telemetry.h"

#include <librdkafka/rdkafka.h>
#include <signal.h>

struct akv_run_opts {
    int exit_at_end; /**< stop once every assigned partition is consumed */
    /* Signals, set by their handlers and served on the poll loop's turn
     * (NULL: none). */
    volatile sig_atomic_t *reload;  /**< SIGHUP: call reload_fn */
    volatile sig_atomic_t *louder;  /**< SIGUSR1s: one level more each */
    volatile sig_atomic_t *quieter; /**< SIGUSR2s: one level less each */
    void (*reload_fn)(void *ctx);   /**< re-reads what may change */
    void *reload_ctx;
};

/** What a librdkafka error says about the worker's Kafka permissions. */
enum akv_kafka_denial {
    AKV_DENIED_NONE = 0,
    AKV_DENIED_TOPIC,   /**< TOPIC_AUTHORIZATION_FAILED */
    AKV_DENIED_GROUP,   /**< GROUP_AUTHORIZATION_FAILED */
    AKV_DENIED_CLUSTER, /**< CLUSTER_AUTHORIZATION_FAILED (e.g. the DLQ
                             producer's id, with Write on no topic) */
    AKV_DENIED_AUTH,    /**< the credentials were refused */
};

/** @brief Classifies \p err (pure). */
enum akv_kafka_denial akv_kafka_denial_of(rd_kafka_resp_err_t err);

/**
 * @brief Whether librdkafka \p version (rd_kafka_version()) cannot log in
 *        with \p mechanism to Kafka 4.x brokers: before 2.6.1 its SCRAM
 *        client-final message repeats the client nonce, which those
 *        brokers refuse as invalid credentials (pure).
 */
int akv_kafka_scram_broken(const char *mechanism, int version);

/**
 * @brief Runs the consumer until \p *run becomes 0 (signal), a fatal Kafka
 *        error, or (with exit_at_end) the end of every assigned partition.
 * @returns AKV_OK on a clean stop (offsets committed, group left), or an
 *          error with a message in \p errstr.
 */
/**
 * @brief Builds the Kafka consumer `run` would build from \p s (the same
 *        properties in the same order, kafka.properties included, but no
 *        bootstrap broker: nothing is connected to) and destroys it at
 *        once.
 * @returns AKV_OK, or AKV_ERR_CONFIG with what librdkafka refused (the
 *          property and why) in \p errstr.
 */
akv_err_t akv_consumer_check(const struct akv_settings *s, char *errstr,
                             size_t errstr_size);

akv_err_t akv_consumer_run(const struct akv_settings *s,
                           const struct akv_run_opts *opts,
                           volatile sig_atomic_t *run, struct akv_telemetry *tm,
                           char *errstr, size_t errstr_size);

#endif /* AKV_WORKER_CONSUMER_H */
