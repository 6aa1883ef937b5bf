/*
 * endoffsets — the log end offset of each assigned partition, for lag.
 *
 * librdkafka knows a partition's high watermark only from its fetch
 * answers, and a paused partition (backpressure) is not fetched: its lag
 * would freeze exactly when it grows. A helper thread therefore asks the
 * partition leaders (ListOffsets) every interval, off the poll loop, as
 * the query blocks for a round trip. For a newly watched partition it
 * also reads the group's committed offset once (an idle partition never
 * reports a commit of its own).
 */
#ifndef AKV_WORKER_ENDOFFSETS_H
#define AKV_WORKER_ENDOFFSETS_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

struct akv_endoffsets;

/** Starts the helper thread; NULL when it cannot (no memory, no thread). */
struct akv_endoffsets *akv_endoffsets_new(rd_kafka_t *rk, const char *topic,
                                          long long interval_ms);

/**
 * Sets the partitions to watch (the assignment); returns at once. Newly
 * watched partitions are read right away, the others every interval.
 */
void akv_endoffsets_watch(struct akv_endoffsets *eo, const int32_t *partitions,
                          int n);

/**
 * @returns the last end offset read for \p partition, or -1 when none was
 *          read since it was last watched.
 */
int64_t akv_endoffsets_get(struct akv_endoffsets *eo, int32_t partition);

/**
 * @returns the committed offset read when \p partition was last watched
 *          anew: >= 0, or -1 when the group had none or it is not read yet.
 */
int64_t akv_endoffsets_committed(struct akv_endoffsets *eo, int32_t partition);

/** Stops and joins the thread (bounded by one query's timeout). NULL is
 *  a no-op. */
void akv_endoffsets_destroy(struct akv_endoffsets *eo);

#endif /* AKV_WORKER_ENDOFFSETS_H */
