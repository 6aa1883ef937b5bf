/*
 * clock — the two clocks, named as such.
 *
 * Monotonic time measures intervals (timeouts, retry delays, ages in a
 * cache); it has no meaning across processes. Wall time is what Kafka
 * timestamps, logs and metrics mean by a date; it may jump.
 */
#ifndef AKV_COMMON_CLOCK_H
#define AKV_COMMON_CLOCK_H

#include <stdint.h>

/** @returns milliseconds on the monotonic clock. */
int64_t akv_mono_ms(void);

/** @returns milliseconds since the Unix epoch (wall time). */
int64_t akv_wall_ms(void);

/** @returns nanoseconds since the Unix epoch (wall time), for dates written
 *           with a fraction of a second finer than milliseconds. */
int64_t akv_wall_ns(void);

#endif /* AKV_COMMON_CLOCK_H */
