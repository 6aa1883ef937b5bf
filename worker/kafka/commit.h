/*
 * commit — how offsets reach Kafka.
 *
 * Only a partition's watermark is ever stored: the first offset whose
 * event is not finished (core/offsets.c), never past it. librdkafka
 * commits what is stored every second (enable.auto.commit with
 * enable.auto.offset.store=false); the consumer also commits at a revoke,
 * before another member takes the partitions over, and once more at
 * shutdown, retrying while the group settles.
 */
#ifndef AKV_WORKER_COMMIT_H
#define AKV_WORKER_COMMIT_H

#include "partition.h"

#include <librdkafka/rdkafka.h>

/**
 * @brief Stores the watermark of every assigned partition of \p parts
 *        whose watermark moved since it was last stored.
 */
void akv_commit_store(rd_kafka_t *rk, const char *topic,
                      struct akv_partition *parts, int nparts);

/**
 * @brief Commits what is stored, now (before giving partitions up).
 *        Nothing stored is not an error; a failure is logged with \p why.
 */
void akv_commit_now(rd_kafka_t *rk, const char *why);

/**
 * @brief The last commit before leaving the group: retried while the
 *        group rebalances (replicas stopping together refuse each other's
 *        commits until they rejoin), polling meanwhile and discarding what
 *        arrives, for at most \p max_ms. What could not be committed is
 *        redone by the next owner.
 */
void akv_commit_final(rd_kafka_t *rk, long long max_ms);

/**
 * @brief Records a successful commit answer: each assigned partition's
 *        committed offset, and when it last moved (\p now_ms, wall clock).
 */
void akv_commit_answered(struct akv_partition *parts, int nparts,
                         const rd_kafka_topic_partition_list_t *offsets,
                         long long now_ms);

/** @returns whether a commit that failed with \p err is worth retrying
 *           once the group settles (pure). */
int akv_commit_retriable(rd_kafka_resp_err_t err);

#endif /* AKV_WORKER_COMMIT_H */
