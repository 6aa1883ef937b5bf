/*
 * retry — what follows a failed sync attempt: retry after a delay, hold
 * (a configuration error, retried slowly), or give up and dead-letter.
 *
 * Pure: the caller draws the random value, reads the clock and parses
 * Retry-After.
 */
#ifndef AKV_WORKER_RETRY_H
#define AKV_WORKER_RETRY_H

#include "failure.h"

#include <stdint.h>

/** The sync.* settings the decision depends on. */
struct akv_retry_policy {
    long long initial_ms;      /**< sync.retry_initial_ms */
    long long max_ms;          /**< sync.retry_max_ms */
    double multiplier;         /**< sync.retry_multiplier */
    long long max_attempts;    /**< sync.max_attempts; 0 = forever */
    long long config_retry_ms; /**< sync.config_retry_ms */
};

enum akv_retry_action {
    AKV_RETRY_AGAIN,   /**< retry after delay_ms */
    AKV_RETRY_HOLD,    /**< a configuration error: retry after delay_ms, and
                            the event is never skipped or dead-lettered */
    AKV_RETRY_GIVE_UP, /**< dead-letter the events; if that fails, retry
                            after delay_ms */
};

struct akv_retry_step {
    enum akv_retry_action action;
    enum akv_class cls; /**< the class the failure counts as */
    long long delay_ms;
};

/**
 * @brief Decides what follows attempt number \p attempts (1 for the first)
 *        that failed with \p cls.
 * @param can_login whether the Vault credentials can log in again: an
 *        expired Vault token is transient if so, else a configuration
 *        error. A poison class here is a configuration error too (a
 *        validated identifier cannot make a request poison).
 * @param retry_after_ms the server's Retry-After (already capped), or -1.
 * @param rnd a uniformly random value for the backoff's jitter.
 */
struct akv_retry_step akv_retry_next(const struct akv_retry_policy *p,
                                     enum akv_class cls, int can_login,
                                     unsigned attempts,
                                     long long retry_after_ms, uint64_t rnd);

#endif /* AKV_WORKER_RETRY_H */
