/*
 * record — a Kafka message as the worker keeps it (record.h).
 */
#include "record.h"

#include <stdlib.h>
#include <string.h>

static rd_kafka_headers_t *headers_of(const rd_kafka_message_t *rkm)
{
    rd_kafka_headers_t *h = NULL;

    if (rd_kafka_message_headers(rkm, &h) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return NULL;
    }
    return h;
}

void akv_record_view(struct akv_record *r, const rd_kafka_message_t *rkm)
{
    r->topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "";
    r->partition = rkm->partition;
    r->offset = rkm->offset;
    r->timestamp = rd_kafka_message_timestamp(rkm, NULL);
    r->key = rkm->key;
    r->key_len = rkm->key ? rkm->key_len : 0;
    r->value = rkm->payload;
    r->len = rkm->payload ? rkm->len : 0;
    r->headers = headers_of(rkm);
    r->owned = 0;
}

struct akv_record *akv_record_copy(const rd_kafka_message_t *rkm)
{
    struct akv_record view;
    struct akv_record *r;
    size_t topic_len;
    char *p;

    akv_record_view(&view, rkm);
    topic_len = strlen(view.topic) + 1;
    r = malloc(sizeof(*r) + topic_len + view.key_len + view.len);
    if (!r) {
        return NULL;
    }
    *r = view;
    p = (char *)(r + 1);
    r->topic = memcpy(p, view.topic, topic_len);
    p += topic_len;
    if (view.key) {
        r->key = memcpy(p, view.key, view.key_len);
        p += view.key_len;
    }
    if (view.value) {
        r->value = memcpy(p, view.value, view.len);
    }
    if (view.headers) {
        r->headers = rd_kafka_headers_copy(view.headers);
        if (!r->headers) {
            free(r);
            return NULL;
        }
    }
    r->owned = 1;
    return r;
}

void akv_record_free(struct akv_record *r)
{
    if (!r || !r->owned) {
        return;
    }
    if (r->headers) {
        rd_kafka_headers_destroy(r->headers);
    }
    free(r);
}
