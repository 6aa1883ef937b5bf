/*
 * record — a Kafka message as the worker keeps it while its event is
 * unfinished.
 *
 * librdkafka's messages share the buffer of the batch they came in (the
 * whole decompressed batch, or the whole fetch answer): one message kept
 * alive keeps all of it. A token event may stay unfinished for as long as
 * Vault or authentik are slow, so the worker keeps a copy of what it
 * needs — topic, partition, offset, timestamp, key, value and headers —
 * and lets the message go at once. Memory then follows the events held,
 * not the batches they arrived in.
 */
#ifndef AKV_WORKER_RECORD_H
#define AKV_WORKER_RECORD_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

struct akv_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    int64_t timestamp; /**< ms since the epoch, -1: unknown */
    const void *key;   /**< NULL: no key */
    size_t key_len;
    const void *value; /**< NULL: no value */
    size_t len;
    rd_kafka_headers_t *headers; /**< NULL: none */
};

/**
 * @brief Copies \p rkm (one allocation, headers apart).
 * @returns the copy, or NULL when out of memory.
 */
struct akv_record *akv_record_copy(const rd_kafka_message_t *rkm);

/** @brief Frees a copy; NULL is a no-op. */
void akv_record_free(struct akv_record *r);

#endif /* AKV_WORKER_RECORD_H */
