/*
 * dlq — producing poison events to the dead-letter topic.
 *
 * A producer that was refused (no Write on the topic: its idempotent
 * producer id is refused with a fatal error, or the topic's metadata says
 * not authorized) never recovers by itself: a fatal error is final, and a
 * topic's authorization error stays cached until the next periodic
 * metadata refresh. So the next send after such a refusal starts over
 * with a new producer, and a grant takes effect at the next retry.
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

/* A poison event too large for the dead-letter topic is sent as a bounded
 * copy: this much of its value, of its key, and of its headers. */
#define VALUE_PREFIX   (16 * 1024)
#define KEY_MAX        1024
#define HEADERS_BUDGET (16 * 1024)

struct akv_dlq {
    const struct akv_settings *settings;
    rd_kafka_t *rk;
    char *topic;
    int fatal;                   /* the producer raised a fatal error */
    rd_kafka_resp_err_t refused; /* last send's underlying error */
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

/* Served by rd_kafka_poll() in wait_ack(). */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct akv_dlq *d = opaque;
    char why[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        d->fatal = 1;
        d->refused = rd_kafka_fatal_error(rk, why, sizeof(why));
        akv_log_debug("dlq", "producer fatal error: %s", why);
        return;
    }
    akv_log_debug("dlq", "%s: %s", rd_kafka_err2name(err), reason);
}

/* librdkafka's own lines, but its fatal error only at debug level: a
 * refused producer is started again at every retry, and the caller logs
 * the refusal at its own pace. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
    if (strcmp(fac, "FATAL") == 0) {
        akv_log_debug("dlq", "%s: %s", fac, buf);
        return;
    }
    akv_kconf_log(rk, level, fac, buf);
}

static rd_kafka_t *producer_new(struct akv_dlq *d, char *errstr,
                                size_t errstr_size)
{
    const struct akv_settings *s = d->settings;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    char kerr[512];

    if (!conf) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
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
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, kerr, sizeof(kerr));
    if (!rk) {
        akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                 "cannot create the dlq producer: %s", kerr);
        goto fail;
    }
    d->fatal = 0;
    return rk; /* rd_kafka_new() took conf */

fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

struct akv_dlq *akv_dlq_new(const struct akv_settings *s, char *errstr,
                            size_t errstr_size)
{
    struct akv_dlq *d = calloc(1, sizeof(*d));

    if (!d) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    d->settings = s;
    d->rk = producer_new(d, errstr, errstr_size);
    if (!d->rk) {
        goto fail;
    }
    d->topic = strdup(s->dlq_topic);
    if (!d->topic) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto fail;
    }
    return d;

fail:
    akv_dlq_destroy(d);
    return NULL;
}

/* Whether \p err means the principal may not write to the topic. */
static int refusal(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
           err == RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED ||
           err == RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED ||
           err == RD_KAFKA_RESP_ERR__AUTHENTICATION;
}

/* A new producer in place of one that was refused (see the top). Messages
 * of the old one are not waited for: none is outstanding between sends. */
static int restart_producer(struct akv_dlq *d, char *errstr, size_t errstr_size)
{
    rd_kafka_t *rk = producer_new(d, errstr, errstr_size);

    if (!rk) {
        return -1;
    }
    akv_log_debug("dlq", "new producer for %s after a refusal", d->topic);
    rd_kafka_destroy_flags(d->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    d->rk = rk;
    d->refused = RD_KAFKA_RESP_ERR_NO_ERROR;
    return 0;
}

rd_kafka_resp_err_t akv_dlq_refused(const struct akv_dlq *d)
{
    return d && refusal(d->refused) ? d->refused : RD_KAFKA_RESP_ERR_NO_ERROR;
}

void akv_dlq_destroy(struct akv_dlq *d)
{
    if (!d) {
        return;
    }
    if (d->rk) {
        if (!d->fatal) {
            rd_kafka_flush(d->rk, 5000);
        }
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

static void add_num(rd_kafka_headers_t *h, const char *name, long long n)
{
    char num[32];

    snprintf(num, sizeof(num), "%lld", n);
    add(h, name, num);
}

/* The original headers, all of them or (bounded) as many as fit in
 * HEADERS_BUDGET bytes; @returns how many were left out. */
static size_t copy_headers(const rd_kafka_headers_t *orig,
                           rd_kafka_headers_t *h, int bounded)
{
    const char *name;
    const void *value;
    size_t size;
    size_t used = 0;
    size_t omitted = 0;
    size_t i;

    if (!orig) {
        return 0;
    }
    for (i = 0; rd_kafka_header_get_all(orig, i, &name, &value, &size) ==
                RD_KAFKA_RESP_ERR_NO_ERROR;
         i++) {
        size_t need = strlen(name) + size;

        if (bounded && used + need > HEADERS_BUDGET) {
            omitted++;
            continue;
        }
        used += need;
        rd_kafka_header_add(h, name, -1, value, (ssize_t)size);
    }
    return omitted;
}

/*
 * The record for the DLQ: the original key, value and headers with the
 * failure headers. SHAPE_BOUNDED is for an event too large for the DLQ: a
 * prefix of the value, the key and headers cut to a budget, and the sizes
 * of the original; SHAPE_MINIMAL keeps only the failure headers.
 */
enum shape { SHAPE_FULL, SHAPE_BOUNDED, SHAPE_MINIMAL };

static rd_kafka_resp_err_t produce(struct akv_dlq *d,
                                   const struct akv_record *rec,
                                   const struct akv_dlq_failure *f,
                                   enum shape shape)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(16);
    rd_kafka_resp_err_t err;
    size_t key_len = rec->key_len;
    size_t len = rec->len;
    size_t omitted = 0;
    char when[40];
    char reason[512];

    if (!h) {
        return RD_KAFKA_RESP_ERR__CRIT_SYS_RESOURCE;
    }
    if (shape != SHAPE_MINIMAL) {
        omitted = copy_headers(rec->headers, h, shape == SHAPE_BOUNDED);
    }
    /* Belt and braces: whatever the reason says, no secret leaves. */
    akv_log_excerpt(f->reason, NULL, reason, sizeof(reason));
    add(h, "ak2vault.error.class", f->error_class);
    add(h, "ak2vault.error.reason", reason);
    add(h, "ak2vault.source.topic", rec->topic);
    add_num(h, "ak2vault.source.partition", rec->partition);
    add_num(h, "ak2vault.source.offset", rec->offset);
    add_num(h, "ak2vault.attempts", f->attempts);
    akv_dlq_time(f->first_ms, when, sizeof(when));
    add(h, "ak2vault.failure.first", when);
    akv_dlq_time(f->last_ms, when, sizeof(when));
    add(h, "ak2vault.failure.last", when);
    if (shape != SHAPE_FULL) {
        key_len = key_len < KEY_MAX ? key_len : KEY_MAX;
        len = shape == SHAPE_MINIMAL ? 0
              : len < VALUE_PREFIX   ? len
                                     : VALUE_PREFIX;
        add(h, "ak2vault.truncated", "true");
        add_num(h, "ak2vault.original.size", (long long)rec->len);
        add_num(h, "ak2vault.original.key.size", (long long)rec->key_len);
        if (shape == SHAPE_MINIMAL) {
            omitted = rec->headers ? rd_kafka_header_cnt(rec->headers) : 0;
        }
        add_num(h, "ak2vault.original.headers.omitted", (long long)omitted);
    }

    d->seq++;
    d->done = 0;
    d->err = RD_KAFKA_RESP_ERR_NO_ERROR;
    err = rd_kafka_producev(
        d->rk, RD_KAFKA_V_TOPIC(d->topic),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(rec->key, key_len),
        /* F_COPY: librdkafka copies, never writes */
        RD_KAFKA_V_VALUE(len ? (void *)rec->value : NULL, len),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE((void *)d->seq),
        RD_KAFKA_V_END);
    if (err) {
        rd_kafka_headers_destroy(h); /* not taken on failure */
    }
    return err;
}

/* Kafka's answers for a record larger than the producer, the broker or the
 * topic takes. */
static int too_large(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
           err == RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE;
}

/* Waits for the acknowledgement of the record produce() sent. */
static rd_kafka_resp_err_t wait_ack(struct akv_dlq *d)
{
    int waited = 0;

    /* A fatal error (the producer id refused) may leave the record
     * queued without a report: stop waiting then. */
    while (!d->done && !d->fatal && waited < ACK_TIMEOUT_MS) {
        rd_kafka_poll(d->rk, 100);
        waited += 100;
    }
    if (!d->done && d->fatal) {
        return RD_KAFKA_RESP_ERR__FATAL;
    }
    return d->done ? d->err : RD_KAFKA_RESP_ERR__TIMED_OUT;
}

akv_err_t akv_dlq_send(struct akv_dlq *d, const struct akv_record *rec,
                       const struct akv_dlq_failure *f, char *errstr,
                       size_t errstr_size)
{
    enum shape shape;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

    /* The producer is polled only here: serve what happened since. */
    rd_kafka_poll(d->rk, 0);
    if ((d->fatal || refusal(d->refused)) &&
        restart_producer(d, errstr, errstr_size) < 0) {
        return AKV_ERR_KAFKA;
    }
    d->refused = RD_KAFKA_RESP_ERR_NO_ERROR;

    /* Poison must never hold its partition: what Kafka refuses as too
     * large goes again as a bounded copy, and that, if need be, as the
     * failure headers alone. Only other errors (the DLQ unreachable) make
     * the caller keep the event and retry. */
    for (shape = SHAPE_FULL; shape <= SHAPE_MINIMAL; shape++) {
        err = produce(d, rec, f, shape);
        if (!err) {
            err = wait_ack(d);
        }
        if (!too_large(err)) {
            break;
        }
        if (shape < SHAPE_MINIMAL) {
            akv_log_warn("dlq",
                         "partition=%d offset=%lld: %s refused %zu bytes as "
                         "too large (%s); sending %s",
                         (int)rec->partition, (long long)rec->offset, d->topic,
                         rec->len + rec->key_len, rd_kafka_err2str(err),
                         shape == SHAPE_FULL ? "a bounded copy"
                                             : "the failure headers alone");
        }
    }
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        /* What the fatal error was about (the producer id refused, ...);
         * the producer is done for: the next send starts a new one. */
        char why[512];
        rd_kafka_resp_err_t cause =
            rd_kafka_fatal_error(d->rk, why, sizeof(why));

        d->fatal = 1;
        if (cause) {
            err = cause;
        }
    }
    d->refused = err;
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        return akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                        "dlq write to %s not acknowledged in %d ms", d->topic,
                        ACK_TIMEOUT_MS);
    }
    if (err) {
        return akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                        "dlq write to %s failed: %s", d->topic,
                        rd_kafka_err2str(err));
    }
    return AKV_OK;
}
