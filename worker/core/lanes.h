/*
 * lanes — per-token ordering and coalescing.
 *
 * At most one sync per token identifier is in flight. An event for a token
 * whose sync is running joins its lane's waiting list; when the sync
 * finishes, everything that waited is answered by exactly ONE follow-up
 * sync, however many events arrived (a sync always reads authentik's
 * current state, so one read answers them all). Events that arrive before
 * the running sync reads authentik can be merged into it instead
 * (akv_lanes_merge()): that read answers for them. Each event's (partition,
 * offset) travels with the sync that answers for it, so the caller can mark
 * it finished in its partition's watermark.
 */
#ifndef AKV_WORKER_LANES_H
#define AKV_WORKER_LANES_H

#include <stddef.h>
#include <stdint.h>

struct akv_lane_event {
    int32_t partition;
    int64_t offset;
};

/** A list of events (grows as needed). */
struct akv_lane_events {
    struct akv_lane_event *v;
    size_t n;
    size_t cap;
};

struct akv_lane {
    char *identifier;
    struct akv_lane_events covered; /**< answered by the current sync */
    struct akv_lane_events waiting; /**< arrived while it ran */
    void *sync;                     /**< the caller's sync state */
};

enum akv_lane_admit {
    AKV_LANE_START,  /**< the lane was idle: start a sync for it */
    AKV_LANE_QUEUED, /**< a sync is running: the event waits for the next */
    AKV_LANE_ERROR,  /**< out of memory */
};

struct akv_lanes;

/** @returns an empty set of lanes, or NULL when out of memory. */
struct akv_lanes *akv_lanes_new(void);

/** @brief Frees every lane. NULL is a no-op. */
void akv_lanes_destroy(struct akv_lanes *ls);

/**
 * @brief Admits an event for \p identifier.
 * @param out the lane (set for START and QUEUED).
 */
enum akv_lane_admit akv_lanes_admit(struct akv_lanes *ls,
                                    const char *identifier, int32_t partition,
                                    int64_t offset, struct akv_lane **out);

/**
 * @brief The lane's sync finished: \p done is called for every covered
 *        event. If events waited meanwhile they become the covered events
 *        of a follow-up sync and 1 is returned (the lane stays busy);
 *        otherwise the lane is removed (and freed) and 0 is returned.
 */
int akv_lanes_finish(struct akv_lanes *ls, struct akv_lane *lane,
                     void (*done)(void *ctx, const struct akv_lane_event *ev),
                     void *ctx);

/**
 * @brief The waiting events join the covered ones: for a sync about to
 *        read authentik (first time, or a retry), whose read answers for
 *        them too. @returns 0, or -1 when out of memory (nothing changed).
 */
int akv_lanes_merge(struct akv_lane *lane);

/**
 * @brief Forgets the events of \p partition (revoked) in every lane.
 *        Lanes left with no event at all are handed to \p orphan (the
 *        caller cancels their sync, then calls akv_lanes_remove()).
 */
void akv_lanes_drop_partition(struct akv_lanes *ls, int32_t partition,
                              void (*orphan)(void *ctx, struct akv_lane *lane),
                              void *ctx);

/** @brief Removes and frees \p lane. */
void akv_lanes_remove(struct akv_lanes *ls, struct akv_lane *lane);

/** @returns the number of busy lanes. */
size_t akv_lanes_count(const struct akv_lanes *ls);

#endif /* AKV_WORKER_LANES_H */
