/*
 * kadmin — the Kafka plumbing of the operator commands (lag, replay,
 * run --from): a client that looks at a consumer group from outside,
 * without ever joining it.
 *
 * Two librdkafka handles: a consumer with the group's group.id that never
 * subscribes (it reads and commits the group's offsets and describes the
 * group), and a consumer without any group.id that reads single messages
 * by assignment to learn their timestamps (it cannot commit anything, by
 * construction).
 */
#ifndef AKV_WORKER_KADMIN_H
#define AKV_WORKER_KADMIN_H

#include "err.h"
#include "settings.h"

#include <stddef.h>
#include <stdint.h>

/** One partition of the topic as the group sees it. */
struct akv_kpart {
    int32_t partition;
    int64_t committed; /**< the group's committed offset; -1: none */
    int64_t low;       /**< log start offset (low watermark) */
    int64_t high;      /**< log end offset (high watermark) */
    int member;        /**< index in akv_kgroup.members owning it; -1 */
};

/** A member of the group, as DescribeGroups tells it. */
struct akv_kmember {
    char *consumer_id; /**< the member id the coordinator gave it */
    char *client_id;
    char *host;
};

/** The group's state; only filled when the broker answered. */
struct akv_kgroup {
    int known;           /**< 1: the broker described the group */
    char state[32];      /**< "Stable", "Empty", "Dead" (unknown), ... */
    size_t member_count; /**< members of the group */
    struct akv_kmember *members;
    char error[256]; /**< why the group is not known (known == 0) */
};

struct akv_kadmin;

/**
 * @brief Creates the clients for \p group on \p topic (NULL: kafka.group
 *        and kafka.topic of \p s), with kafka.properties applied.
 * @returns AKV_OK, AKV_ERR_CONFIG for a property librdkafka refuses, or
 *          AKV_ERR_KAFKA.
 * @remark Release with akv_kadmin_destroy() whatever the result.
 */
akv_err_t akv_kadmin_new(struct akv_kadmin **kap, const struct akv_settings *s,
                         const char *group, const char *topic, char *errstr,
                         size_t errstr_size);

/** @brief Closes the clients. NULL is a no-op. Commits nothing. */
void akv_kadmin_destroy(struct akv_kadmin *ka);

/** @returns the group the client looks at. */
const char *akv_kadmin_group(const struct akv_kadmin *ka);

/** @returns the topic the client looks at. */
const char *akv_kadmin_topic(const struct akv_kadmin *ka);

/**
 * @brief Lists the topic's partitions in order with the group's committed
 *        offsets and each partition's log start and end.
 * @param partsp set to a malloc'd array of \p *np entries (free() it);
 *        every member index is -1.
 */
akv_err_t akv_kadmin_partitions(struct akv_kadmin *ka,
                                struct akv_kpart **partsp, size_t *np,
                                char *errstr, size_t errstr_size);

/**
 * @brief Describes the group (ListGroups, DescribeGroups) and marks which
 *        member owns each of \p parts.
 * @returns AKV_OK with \p g->known set, or AKV_OK with \p g->known 0 and
 *          the reason in \p g->error when the brokers cannot say
 *          (librdkafka's mock cluster answers neither request, a broker may
 *          deny them): never an error.
 * @remark Release \p g with akv_kgroup_free().
 */
akv_err_t akv_kadmin_describe(struct akv_kadmin *ka, struct akv_kgroup *g,
                              struct akv_kpart *parts, size_t n);

/** @brief Frees what akv_kadmin_describe() put in \p g. */
void akv_kgroup_free(struct akv_kgroup *g);

/**
 * @brief Reads the partitions of \p topic from a member assignment in the
 *        consumer protocol's format (version, [topic, [partition]], user
 *        data), as DescribeGroups returns it (pure).
 * @returns how many were written to \p out (at most \p max), or -1 when
 *          the bytes are malformed.
 */
int akv_kadmin_assignment_partitions(const void *buf, size_t len,
                                     const char *topic, int32_t *out,
                                     size_t max);

/**
 * @brief Reads the first message at or after \p offsets[i] of partition
 *        \p partitions[i], for every i at once.
 * @param msg_offsets set to that message's offset, or -1 when the
 *        partition has none before its end.
 * @param timestamps set to its timestamp (ms since the epoch), or -1.
 */
akv_err_t akv_kadmin_first_messages(struct akv_kadmin *ka,
                                    const int32_t *partitions,
                                    const int64_t *offsets, size_t n,
                                    int64_t *msg_offsets, int64_t *timestamps,
                                    char *errstr, size_t errstr_size);

/**
 * @brief The first offset of \p p whose message timestamp is >= \p ts_ms
 *        (the log end when there is none).
 *
 * Asks the broker (ListOffsets by timestamp) and checks its answer against
 * the messages at and before it; when the answer does not hold (the mock
 * cluster answers the log end for every timestamp), searches the message
 * timestamps themselves. Timestamps are taken to grow with the offset, as
 * Kafka's own timestamp index does.
 * @param searched set to 1 when the broker's answer was not used.
 */
akv_err_t akv_kadmin_offset_for_time(struct akv_kadmin *ka,
                                     const struct akv_kpart *p, int64_t ts_ms,
                                     int64_t *offset, int *searched,
                                     char *errstr, size_t errstr_size);

/**
 * @brief Commits \p offsets[i] for partition \p partitions[i] on behalf of
 *        the group, from outside it (no member id, no generation).
 * @param refused set to 1, with AKV_ERR_KAFKA, when the coordinator
 *        refused because the group has active members.
 */
akv_err_t akv_kadmin_commit(struct akv_kadmin *ka, const int32_t *partitions,
                            const int64_t *offsets, size_t n, int *refused,
                            char *errstr, size_t errstr_size);

/**
 * Reads the first message at or after an offset: its offset (-1: none
 * before the end) and timestamp. For akv_kadmin_time_search().
 */
typedef akv_err_t (*akv_kadmin_read_fn)(void *opaque, int64_t offset,
                                        int64_t *msg_offset, int64_t *ts,
                                        char *errstr, size_t errstr_size);

/**
 * Reads the messages of [from, to) in order: the offset of the first one
 * whose timestamp is >= ts, or \p to when there is none.
 */
typedef akv_err_t (*akv_kadmin_scan_fn)(void *opaque, int64_t from, int64_t to,
                                        int64_t ts, int64_t *found,
                                        char *errstr, size_t errstr_size);

/**
 * @brief The timestamp search over a log [low, high) behind \p read and
 *        \p scan (pure: the tests give it an array).
 *
 * \p answer is what the broker said (-1: the log end). It is kept when the
 * message at it has a timestamp >= ts and the message before it one < ts;
 * otherwise a binary search over message timestamps narrows the range to a
 * few messages, which one linear read finishes.
 * @param searched set to 1 when \p answer was not kept.
 */
akv_err_t akv_kadmin_time_search(int64_t low, int64_t high, int64_t ts,
                                 int64_t answer, akv_kadmin_read_fn read,
                                 akv_kadmin_scan_fn scan, void *opaque,
                                 int64_t *offset, int *searched, char *errstr,
                                 size_t errstr_size);

#endif /* AKV_WORKER_KADMIN_H */
