/*
 * progress — a partition's lag and stall, from what the consumer knows of
 * it: the arithmetic behind ak2vault_consumer_lag*, the stall alert and
 * /readyz, pure and table-tested.
 */
#ifndef AKV_WORKER_PROGRESS_H
#define AKV_WORKER_PROGRESS_H

#include <stddef.h>
#include <stdint.h>

/** What the consumer knows of one partition now. */
struct akv_progress_in {
    int64_t committed; /**< the group's committed offset; -1 unknown */
    int64_t end;       /**< the log end as last read; -1 unknown */
    int64_t start;     /**< the log start as the fetcher saw it; -1 */
    int64_t taken;     /**< one past the last event taken; -1 unknown */
    int64_t watermark; /**< what may be committed next; -1 none */
    size_t pending;    /**< events taken and not finished */
    int64_t oldest_ms; /**< timestamp of the oldest unfinished; -1 */
    long long now_ms;  /**< wall clock */
    long long stall_timeout_ms; /**< metrics.stall_timeout_ms */
};

/** What is remembered between two looks (wall-clock ms). */
struct akv_progress_memory {
    long long moved_ms;     /**< the committed offset last moved */
    long long caught_up_ms; /**< last seen with nothing left to do */
    long long idle_ms;      /**< ... and nothing left to commit */
};

struct akv_progress {
    int64_t end;        /**< the log end, at least what was taken */
    int64_t lag;        /**< messages not committed; -1 not known */
    double lag_seconds; /**< age of the oldest work not done */
    int caught_up;      /**< nothing taken is unfinished, nothing left */
    int stalled;        /**< work to do and no progress for the timeout */
};

/** @brief Computes \p out and updates \p mem (its caught_up and idle). */
void akv_progress_compute(const struct akv_progress_in *in,
                          struct akv_progress_memory *mem,
                          struct akv_progress *out);

#endif /* AKV_WORKER_PROGRESS_H */
