/*
 * backoff — exponential backoff with full jitter.
 *
 * delay(n) = uniform(0, min(cap, initial * 2^n)). Full jitter spreads the
 * retries of many workers hit by the same outage, so they do not return in
 * lock-step when the upstream comes back.
 */
#ifndef AKV_COMMON_BACKOFF_H
#define AKV_COMMON_BACKOFF_H

#include <stdint.h>

/**
 * @brief Delay before retry number \p attempt (0-based).
 * @param rnd a uniformly random 64-bit value (pure: the caller draws it).
 * @returns milliseconds in [0, min(cap_ms, initial_ms * 2^attempt)].
 */
long long akv_backoff_delay(long long initial_ms, long long cap_ms,
                            unsigned attempt, uint64_t rnd);

/** @returns a random 64-bit value (not for cryptography). */
uint64_t akv_backoff_random(void);

#endif /* AKV_COMMON_BACKOFF_H */
