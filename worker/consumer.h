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

#include <signal.h>

struct akv_run_opts {
    int exit_at_end; /**< stop once every assigned partition is consumed */
};

/**
 * @brief Runs the consumer until \p *run becomes 0 (signal), a fatal Kafka
 *        error, or (with exit_at_end) the end of every assigned partition.
 * @returns AKV_OK on a clean stop (offsets committed, group left), or an
 *          error with a message in \p errstr.
 */
akv_err_t akv_consumer_run(const struct akv_settings *s,
                           const struct akv_run_opts *opts,
                           volatile sig_atomic_t *run, struct akv_telemetry *tm,
                           char *errstr, size_t errstr_size);

#endif /* AKV_WORKER_CONSUMER_H */
