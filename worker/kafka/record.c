/*
 * record — a Kafka message as the worker keeps it (record.h).
 */
#include "record.h"

#include <stdlib.h>
#include <string.h>

struct akv_record *akv_record_copy(const rd_kafka_message_t *rkm)
{
    const char *topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "";
    size_t topic_len = strlen(topic) + 1;
    size_t key_len = rkm->key ? rkm->key_len : 0;
    size_t len = rkm->payload ? rkm->len : 0;
    rd_kafka_headers_t *headers = NULL;
    struct akv_record *r;
    char *p;

    r = malloc(sizeof(*r) + topic_len + key_len + len);
    if (!r) {
        return NULL;
    }
    p = (char *)(r + 1);
    r->topic = memcpy(p, topic, topic_len);
    p += topic_len;
    r->partition = rkm->partition;
    r->offset = rkm->offset;
    r->timestamp = rd_kafka_message_timestamp(rkm, NULL);
    r->key = rkm->key ? memcpy(p, rkm->key, key_len) : NULL;
    r->key_len = key_len;
    p += key_len;
    r->value = rkm->payload ? memcpy(p, rkm->payload, len) : NULL;
    r->len = len;
    r->headers = NULL;
    if (rd_kafka_message_headers(rkm, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        r->headers = rd_kafka_headers_copy(headers);
        if (!r->headers) {
            free(r);
            return NULL;
        }
    }
    return r;
}

void akv_record_free(struct akv_record *r)
{
    if (!r) {
        return;
    }
    if (r->headers) {
        rd_kafka_headers_destroy(r->headers);
    }
    free(r);
}
