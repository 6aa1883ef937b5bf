/*
 * backoff — exponential backoff with full jitter, and Retry-After.
 *
 * delay(n) = uniform(0, min(cap, initial * multiplier^n)). Full jitter
 * spreads the retries of many workers hit by the same outage, so they do
 * not return in lock-step when the upstream comes back. A server's
 * Retry-After, when present, replaces the computed delay (capped: a
 * misconfigured proxy must not park the worker for a day).
 */
#ifndef AKV_COMMON_BACKOFF_H
#define AKV_COMMON_BACKOFF_H

#include <stdint.h>
#include <time.h>

/**
 * @brief Delay before retry number \p attempt (0-based).
 * @param multiplier growth per attempt (>= 1; less, or NaN, counts as 1).
 * @param rnd a uniformly random 64-bit value (pure: the caller draws it).
 * @returns milliseconds in [0, min(cap_ms, initial_ms * multiplier^attempt)],
 *          for any inputs (0 when \p initial_ms or \p cap_ms is not
 *          positive).
 */
long long akv_backoff_delay(long long initial_ms, long long cap_ms,
                            double multiplier, unsigned attempt, uint64_t rnd);

/** @returns a random 64-bit value (not for cryptography). */
uint64_t akv_backoff_random(void);

/**
 * @brief Parses a Retry-After header value: delta-seconds ("120") or an
 *        HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT", and the obsolete
 *        RFC 850 and asctime forms), relative to \p now.
 * @returns the wait in milliseconds, clamped to [0, cap_ms], or -1 when
 *          \p value is empty or not a valid Retry-After.
 */
long long akv_retry_after_ms(const char *value, time_t now, long long cap_ms);

#endif /* AKV_COMMON_BACKOFF_H */
