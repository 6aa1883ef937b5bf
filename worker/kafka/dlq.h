/*
 * dlq — the dead-letter topic for poison events.
 *
 * A poison event is copied to the DLQ with its original key, value and
 * headers, plus headers saying why: error class and reason, where it came
 * from (topic, partition, offset), how many attempts were made and when the
 * first and last failures happened. The write is acknowledged by Kafka
 * (acks=all) before akv_dlq_send() returns success, so the source offset
 * only moves once the event is safe in the DLQ.
 *
 * An event the DLQ refuses as too large (the producer's message.max.bytes,
 * the broker's or the topic's limit) would hold its partition forever if it
 * were retried as it is. It is sent instead as a bounded copy: the first
 * 16 KiB of its value, 1 KiB of its key, its headers up to 16 KiB, and
 * ak2vault.truncated, ak2vault.original.size (value bytes),
 * ak2vault.original.key.size and ak2vault.original.headers.omitted; if even
 * that is refused, the failure headers alone. Source topic, partition and
 * offset always say where the whole event is.
 */
#ifndef AKV_WORKER_DLQ_H
#define AKV_WORKER_DLQ_H

#include "err.h"
#include "record.h"
#include "settings.h"

#include <librdkafka/rdkafka.h>

struct akv_dlq_failure {
    const char *error_class; /**< "poison", "transient", ... */
    const char *reason;      /**< human-readable, secret-free */
    unsigned attempts;       /**< processing attempts made */
    long long first_ms;      /**< wall-clock ms of the first failure */
    long long last_ms;       /**< wall-clock ms of the last failure */
};

struct akv_dlq;

/** @returns a producer for settings->dlq_topic, or NULL with errstr. */
struct akv_dlq *akv_dlq_new(const struct akv_settings *s, char *errstr,
                            size_t errstr_size);

/** @brief Flushes and destroys the producer. NULL is a no-op. */
void akv_dlq_destroy(struct akv_dlq *d);

/**
 * @brief Copies \p rec to the DLQ with the failure headers and waits for
 *        Kafka's acknowledgement.
 * @returns AKV_OK once acknowledged, AKV_ERR_KAFKA otherwise (the caller
 *          must then keep the event and retry: never skip it).
 */
akv_err_t akv_dlq_send(struct akv_dlq *d, const struct akv_record *rec,
                       const struct akv_dlq_failure *f, char *errstr,
                       size_t errstr_size);

/**
 * @brief The authorization or authentication error behind the last failed
 *        akv_dlq_send() (TOPIC_ or CLUSTER_AUTHORIZATION_FAILED: no Write
 *        on the topic; the latter when the idempotent producer's id is
 *        refused), else NO_ERROR. The next send then uses a new producer,
 *        so that a grant takes effect without a restart.
 */
rd_kafka_resp_err_t akv_dlq_refused(const struct akv_dlq *d);

/** @brief Formats wall-clock \p ms as ISO 8601 UTC with milliseconds. */
void akv_dlq_time(long long ms, char *out, size_t size);

#endif /* AKV_WORKER_DLQ_H */
