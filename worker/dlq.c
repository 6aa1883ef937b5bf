/*
 * dlq — producing poison events to the dead-letter topic.
 */
#include "dlq.h"

#include "kconf.h"
#include "log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACK_TIMEOUT_MS 30000

struct akv_dlq {
    rd_kafka_t *rk;
    char *topic;
    /* The message being waited for: its sequence number travels as the
     * msg_opaque, so a late report for an abandoned one is ignored. */
    uintptr_t seq;
    int done;
    rd_kafka_resp_err_t err;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                        void *opaque)
{
    struct akv_dlq *d = opaque;

    (void)rk;
    if ((uintptr_t)rkm->_private == d->seq) {
        d->err = rkm->err;
        d->done = 1;
    }
}

struct akv_dlq *akv_dlq_new(const struct akv_settings *s, char *errstr,
                            size_t errstr_size)
{
    struct akv_dlq *d = calloc(1, sizeof(*d));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char kerr[512];

    if (!d || !conf) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto fail;
    }
    /* The consumer's pass-through properties carry security settings the
     * producer needs too; consumer-only ones are ignored by librdkafka. */
    if (akv_kconf_properties(conf, s, errstr, errstr_size) < 0) {
        goto fail;
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", s->kafka_brokers, kerr,
                          sizeof(kerr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "acks", "all", kerr, sizeof(kerr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.idempotence", "true", kerr,
                          sizeof(kerr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "linger.ms", "0", kerr, sizeof(kerr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "client.id", "ak2vault-dlq", kerr,
                          sizeof(kerr)) != RD_KAFKA_CONF_OK) {
        akv_errf(AKV_ERR_CONFIG, errstr, errstr_size, "dlq producer: %s", kerr);
        goto fail;
    }
    rd_kafka_conf_set_opaque(conf, d);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_log_cb(conf, akv_kconf_log);
    d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
    if (!d->rk) {
        akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                 "cannot create the dlq producer: %s", kerr);
        goto fail;
    }
    conf = NULL; /* rd_kafka_new() took it */
    d->topic = strdup(s->dlq_topic);
    if (!d->topic) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto fail;
    }
    return d;

fail:
    if (conf) {
        rd_kafka_conf_destroy(conf);
    }
    akv_dlq_destroy(d);
    return NULL;
}

void akv_dlq_destroy(struct akv_dlq *d)
{
    if (!d) {
        return;
    }
    if (d->rk) {
        rd_kafka_flush(d->rk, 5000);
        rd_kafka_destroy(d->rk);
    }
    free(d->topic);
    free(d);
}

void akv_dlq_time(long long ms, char *out, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&secs, &tm);
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static void add(rd_kafka_headers_t *h, const char *name, const char *value)
{
    rd_kafka_header_add(h, name, -1, value, -1);
}

akv_err_t akv_dlq_send(struct akv_dlq *d, const rd_kafka_message_t *rkm,
                       const struct akv_dlq_failure *f, char *errstr,
                       size_t errstr_size)
{
    rd_kafka_headers_t *orig = NULL;
    rd_kafka_headers_t *h;
    rd_kafka_resp_err_t err;
    char num[32];
    char when[40];
    char reason[512];
    int waited = 0;

    if (rd_kafka_message_headers(rkm, &orig) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        h = rd_kafka_headers_copy(orig);
    } else {
        h = rd_kafka_headers_new(8);
    }
    /* Belt and braces: whatever the reason says, no secret leaves. */
    snprintf(reason, sizeof(reason), "%s", f->reason);
    akv_log_scrub(reason, sizeof(reason));
    add(h, "ak2vault.error.class", f->error_class);
    add(h, "ak2vault.error.reason", reason);
    add(h, "ak2vault.source.topic", rd_kafka_topic_name(rkm->rkt));
    snprintf(num, sizeof(num), "%d", (int)rkm->partition);
    add(h, "ak2vault.source.partition", num);
    snprintf(num, sizeof(num), "%lld", (long long)rkm->offset);
    add(h, "ak2vault.source.offset", num);
    snprintf(num, sizeof(num), "%u", f->attempts);
    add(h, "ak2vault.attempts", num);
    akv_dlq_time(f->first_ms, when, sizeof(when));
    add(h, "ak2vault.failure.first", when);
    akv_dlq_time(f->last_ms, when, sizeof(when));
    add(h, "ak2vault.failure.last", when);

    d->seq++;
    d->done = 0;
    d->err = RD_KAFKA_RESP_ERR_NO_ERROR;
    err = rd_kafka_producev(d->rk, RD_KAFKA_V_TOPIC(d->topic),
                            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                            RD_KAFKA_V_KEY(rkm->key, rkm->key_len),
                            RD_KAFKA_V_VALUE(rkm->payload, rkm->len),
                            RD_KAFKA_V_HEADERS(h),
                            RD_KAFKA_V_OPAQUE((void *)d->seq), RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(h); /* not taken on failure */
        return akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                        "dlq produce to %s: %s", d->topic,
                        rd_kafka_err2str(err));
    }
    while (!d->done && waited < ACK_TIMEOUT_MS) {
        rd_kafka_poll(d->rk, 100);
        waited += 100;
    }
    if (!d->done) {
        return akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                        "dlq write to %s not acknowledged in %d ms", d->topic,
                        ACK_TIMEOUT_MS);
    }
    if (d->err) {
        return akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                        "dlq write to %s failed: %s", d->topic,
                        rd_kafka_err2str(d->err));
    }
    return AKV_OK;
}
