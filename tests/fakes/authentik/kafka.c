/*
 * kafka — publishing events: a librdkafka producer (acks=all) whose
 * delivery reports a poller thread serves, so that an HTTP thread can wait
 * until Kafka acknowledged its event before it answers.
 */
#include "fa.h"

#include "clock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MSG_TIMEOUT_MS 5000
/* A waiter gives up a little after librdkafka's own message timeout, which
 * normally reports the failure first. */
#define DELIVERY_WAIT_MS (MSG_TIMEOUT_MS + 2000)

/* One produced message and the HTTP thread waiting for its delivery
 * report. Shared by the waiter and the delivery callback; whoever drops the
 * last reference frees it, so a waiter that gave up is safe. */
struct delivery {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    bool done;
    rd_kafka_resp_err_t err;
};

static void delivery_unref(struct delivery *d)
{
    int left;

    pthread_mutex_lock(&d->mu);
    left = --d->refs;
    pthread_mutex_unlock(&d->mu);
    if (left == 0) {
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
        free(d);
    }
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                      void *opaque)
{
    struct delivery *d = msg->_private;

    (void)rk;
    (void)opaque;
    if (!d) {
        return;
    }
    pthread_mutex_lock(&d->mu);
    d->err = msg->err;
    d->done = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    delivery_unref(d);
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf)
{
    (void)rk;
    if (level <= 3) {
        fprintf(stderr, "fake-authentik: kafka %s: %s\n", fac, buf);
    }
}

/* Serves delivery reports, so HTTP threads only ever wait on their own
 * condition variable. */
static void *poller_main(void *arg)
{
    struct app *app = arg;

    for (;;) {
        int stop;

        pthread_mutex_lock(&app->poller.lock);
        stop = app->poller.stop;
        pthread_mutex_unlock(&app->poller.lock);
        if (stop) {
            return NULL;
        }
        rd_kafka_poll(app->rk, 100);
    }
}

/* \p ms on akv_mono_ms()'s clock (CLOCK_MONOTONIC) as the deadline
 * pthread_cond_timedwait() takes on the condition variables here. */
static struct timespec mono_deadline(int64_t ms)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    return ts;
}

/* Produces one message and waits until Kafka acknowledged it (acks=all).
 * @returns 0, or -1 with the reason logged to stderr. */
static int publish_wait(struct app *app, const struct outmsg *m)
{
    struct delivery *d = calloc(1, sizeof(*d));
    pthread_condattr_t attr;
    int64_t deadline = akv_mono_ms() + DELIVERY_WAIT_MS;
    struct timespec until = mono_deadline(deadline);
    rd_kafka_resp_err_t err;

    if (!d) {
        fprintf(stderr, "fake-authentik: out of memory publishing\n");
        return -1;
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &attr);
    pthread_condattr_destroy(&attr);
    d->refs = 2; /* the waiter and the delivery report */

    for (;;) {
        err = rd_kafka_producev(app->rk, RD_KAFKA_V_RKT(app->rkt),
                                RD_KAFKA_V_KEY(m->key, strlen(m->key)),
                                RD_KAFKA_V_VALUE(m->value, strlen(m->value)),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || akv_mono_ms() >= deadline) {
            break;
        }
        /* The poller thread drains the queue; just give it a moment. */
        nanosleep(&(struct timespec){0, 5000000L}, NULL);
    }
    if (err) {
        fprintf(stderr, "fake-authentik: cannot produce to %s: %s\n",
                app->topic, rd_kafka_err2str(err));
        d->refs = 1;
        delivery_unref(d);
        return -1;
    }

    pthread_mutex_lock(&d->mu);
    while (!d->done) {
        if (pthread_cond_timedwait(&d->cv, &d->mu, &until) == ETIMEDOUT) {
            break;
        }
    }
    err = d->done ? d->err : RD_KAFKA_RESP_ERR__TIMED_OUT;
    pthread_mutex_unlock(&d->mu);
    delivery_unref(d);
    if (err) {
        fprintf(stderr, "fake-authentik: event not delivered to %s: %s\n",
                app->topic, rd_kafka_err2str(err));
        return -1;
    }
    atomic_fetch_add(&app->stats.events_published, 1);
    return 0;
}

/* Publishes \p n events in order, one at a time: set_key's two events go
 * to the same partition and must not be reordered by a retry. Frees the
 * values either way. */
int fa_publish_all(struct app *app, struct outmsg *msgs, int n)
{
    int rc = 0;
    int i;

    for (i = 0; i < n; i++) {
        if (rc == 0 && publish_wait(app, &msgs[i]) < 0) {
            rc = -1;
        }
        free(msgs[i].value);
        msgs[i].value = NULL;
    }
    return rc;
}

/* Sets the "name=value" lines of \p path on \p conf. An error names the
 * line and the property, never the value (it may be a password). */
static int kafka_properties_file(rd_kafka_conf_t *conf, const char *path,
                                 char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    char kerr[256];
    int n = 0;

    if (!f) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        char *eq;
        size_t len = strcspn(line, "\r\n");

        n++;
        line[len] = '\0';
        if (line[0] == '\0' || line[0] == '#') {
            continue;
        }
        eq = strchr(line, '=');
        if (!eq || eq == line) {
            snprintf(errstr, errstr_size, "%s:%d: not name=value", path, n);
            fclose(f);
            return -1;
        }
        *eq = '\0';
        if (rd_kafka_conf_set(conf, line, eq + 1, kerr, sizeof(kerr)) !=
            RD_KAFKA_CONF_OK) {
            snprintf(errstr, errstr_size, "%s:%d: property %.64s refused", path,
                     n, line);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

/* Starts the producer and its poller once the cluster answered.
 * @returns 0, or -1 with the reason on stderr. */
int fa_kafka_start(struct app *app)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    static const char *const settings[][2] = {
        {"acks", "all"},
        {"linger.ms", "1"},
        {"compression.codec", "lz4"},
        {"message.timeout.ms", "5000"},
        {"partitioner", "murmur2_random"},
        {"log_level", "3"},
        {"client.id", "fake-authentik"},
    };
    size_t i;

    if (!conf) {
        return -1;
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", app->brokers, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        goto conf_error;
    }
    for (i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK) {
            goto conf_error;
        }
    }
    if (app->kafka_props && kafka_properties_file(conf, app->kafka_props,
                                                  errstr, sizeof(errstr)) < 0) {
        goto conf_error;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    app->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!app->rk) {
        goto conf_error;
    }
    app->rkt = rd_kafka_topic_new(app->rk, app->topic, NULL);
    if (!app->rkt) {
        fprintf(stderr, "fake-authentik: cannot use topic %s: %s\n", app->topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    /* "Up" means the cluster answered: a test that read our address can
     * use the API right away without racing the producer's connect. */
    err = rd_kafka_metadata(app->rk, 0, app->rkt, &md, 10000);
    if (err) {
        fprintf(stderr, "fake-authentik: cannot reach Kafka at %s: %s\n",
                app->brokers, rd_kafka_err2str(err));
        return -1;
    }
    if (md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "fake-authentik: warning: topic %s: %s\n", app->topic,
                rd_kafka_err2str(md->topic_cnt
                                     ? md->topics[0].err
                                     : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
    }
    rd_kafka_metadata_destroy(md);
    if (akv_thread_start(&app->poller, poller_main, app) < 0) {
        fprintf(stderr, "fake-authentik: cannot start the poller thread\n");
        return -1;
    }
    app->poller_started = true;
    return 0;

conf_error:
    fprintf(stderr, "fake-authentik: kafka configuration: %s\n", errstr);
    rd_kafka_conf_destroy(conf);
    return -1;
}

/* On shutdown: give in-flight events a moment to be acknowledged, then
 * fail whatever is left so HTTP threads still waiting on a dead cluster
 * answer 500 at once instead of holding up the exit for the full message
 * timeout. */
void fa_kafka_drain(struct app *app)
{
    int64_t deadline = akv_mono_ms() + 1000;

    if (!app->rk) {
        return;
    }
    while (rd_kafka_outq_len(app->rk) > 0 && akv_mono_ms() < deadline) {
        nanosleep(&(struct timespec){0, 10000000L}, NULL);
    }
    rd_kafka_purge(app->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
}

/* Stops the poller, flushes what is left and destroys the producer. */
void fa_kafka_stop(struct app *app)
{
    if (app->poller_started) {
        akv_thread_stop(&app->poller);
        app->poller_started = false;
    }
    if (app->rk) {
        if (rd_kafka_flush(app->rk, MSG_TIMEOUT_MS) != 0) {
            fprintf(stderr, "fake-authentik: %d event(s) not flushed\n",
                    rd_kafka_outq_len(app->rk));
        }
    }
    if (app->rkt) {
        rd_kafka_topic_destroy(app->rkt);
        app->rkt = NULL;
    }
    if (app->rk) {
        rd_kafka_destroy(app->rk);
        app->rk = NULL;
    }
}
