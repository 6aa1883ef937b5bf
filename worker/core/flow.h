/*
 * flow — when the consumer holds back and when it lets go again: two
 * hysteresis decisions, pure so that their thresholds are table-tested.
 */
#ifndef AKV_WORKER_FLOW_H
#define AKV_WORKER_FLOW_H

#include <stddef.h>

/**
 * @brief Whether a partition with \p pending unfinished events should be
 *        paused: from \p high (sync.max_pending) on, and until it is down
 *        to half of it.
 * @param paused whether it is paused now.
 */
int akv_flow_paused(int paused, size_t pending, size_t high);

/** The fetch queue's fill state (librdkafka's queue of fetched messages). */
struct akv_flow_queue {
    double max_bytes; /**< queued.max.messages.kbytes, in bytes */
    double min_msgs;  /**< queued.min.messages */
    int full;         /**< came near the bound and has not drained since */
};

/**
 * @brief Follows the queue holding \p msgs messages of \p bytes in all.
 *
 * librdkafka stops fetching while its queue is over a bound and looks
 * again only later; the consumer wakes it once the queue, after coming
 * within 60% of a bound, has drained to half of both.
 *
 * @returns 1 when the fetcher should be woken now, else 0.
 */
int akv_flow_queue_drained(struct akv_flow_queue *q, double msgs, double bytes);

#endif /* AKV_WORKER_FLOW_H */
