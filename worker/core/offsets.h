/*
 * offsets — the commit watermark of one partition.
 *
 * Events of a partition finish out of order once several syncs are in
 * flight. Only the contiguous prefix of finished offsets may be committed:
 * a slow or failing event holds its partition's commit back (and nothing
 * else), and a later success never commits past it.
 */
#ifndef AKV_WORKER_OFFSETS_H
#define AKV_WORKER_OFFSETS_H

#include <stddef.h>
#include <stdint.h>

struct akv_offsets;

/** @returns an empty watermark, or NULL when out of memory. */
struct akv_offsets *akv_offsets_new(void);

/** @brief Frees \p o. NULL is a no-op. */
void akv_offsets_destroy(struct akv_offsets *o);

/**
 * @brief Records that \p offset was received and is pending.
 * @param timestamp_ms the message's timestamp (for lag in seconds).
 * @param data the caller's pointer kept with it (the message), or NULL.
 * @returns 0, or -1 when \p offset is not above every tracked offset
 *          (Kafka delivers a partition in order) or memory ran out.
 */
int akv_offsets_track(struct akv_offsets *o, int64_t offset,
                      int64_t timestamp_ms, void *data);

/**
 * @brief Marks \p offset finished.
 * @param data set to the pointer tracked with it (may be NULL).
 * @returns 0, or -1 when it is not pending.
 */
int akv_offsets_done(struct akv_offsets *o, int64_t offset, void **data);

/**
 * @brief Replaces the pointer kept with pending \p offset.
 * @returns 0, or -1 when it is not pending.
 */
int akv_offsets_set(struct akv_offsets *o, int64_t offset, void *data);

/** @returns the pointer tracked with pending \p offset, or NULL. */
void *akv_offsets_get(const struct akv_offsets *o, int64_t offset);

/**
 * @returns the offset to commit: one past the contiguous prefix of
 *          finished offsets (the lowest pending offset, or one past the
 *          last tracked when none is pending); -1 before anything was
 *          tracked.
 */
int64_t akv_offsets_watermark(const struct akv_offsets *o);

/** @returns the number of pending (unfinished) offsets. */
size_t akv_offsets_pending(const struct akv_offsets *o);

/**
 * @returns the entries kept: the pending ones and the finished ones between
 *          them (what the watermark costs in memory; finished offsets
 *          before the first or after the last pending one are not kept).
 */
size_t akv_offsets_stored(const struct akv_offsets *o);

/** @returns the timestamp of the oldest pending event, or -1 if none. */
int64_t akv_offsets_oldest_timestamp(const struct akv_offsets *o);

/**
 * @brief Forgets everything (the partition was revoked), handing every
 *        pending entry's pointer to \p release (may be NULL).
 */
void akv_offsets_reset(struct akv_offsets *o, void (*release)(void *data));

#endif /* AKV_WORKER_OFFSETS_H */
