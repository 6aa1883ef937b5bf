/*
 * fetchwake — a helper thread that wakes the fetcher's broker threads.
 */
#include "fetchwake.h"

#include "listoffsets.h"
#include "log.h"
#include "thread.h"

#include <stdlib.h>
#include <string.h>

/* A wake-up must not hold shutdown up for long. */
#define QUERY_TIMEOUT_MS 500

struct akv_fetchwake {
    rd_kafka_t *rk;
    char *topic;
    struct akv_thread th; /* th.lock guards what says "under lock" */
    int32_t *want;        /* under lock: partitions waiting to be woken */
    int nwant;            /* under lock */
    int capwant;          /* under lock */
    unsigned long rounds; /* under lock */
};

/* One ListOffsets request per leader of \p parts (listoffsets.h). */
static void wake(struct akv_fetchwake *w, const int32_t *parts, int n)
{
    rd_kafka_resp_err_t err;
    rd_kafka_topic_partition_list_t *l = akv_list_offsets(
        w->rk, w->topic, parts, n, RD_KAFKA_OFFSET_END, QUERY_TIMEOUT_MS, &err);

    if (!l) {
        akv_log_debug("kafka", "fetch wake-up: %s", rd_kafka_err2str(err));
        return;
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void *run(void *arg)
{
    struct akv_fetchwake *w = arg;
    int32_t *parts = NULL;
    int cap = 0;

    pthread_mutex_lock(&w->th.lock);
    for (;;) {
        int n;

        while (!w->th.stop && w->nwant == 0) {
            akv_thread_wait(&w->th, NULL);
        }
        if (w->th.stop) {
            break;
        }
        if (w->nwant > cap) {
            int32_t *p = realloc(parts, (size_t)w->nwant * sizeof(*p));

            if (!p) {
                w->nwant = 0; /* drop this request; the next one retries */
                continue;
            }
            parts = p;
            cap = w->nwant;
        }
        n = w->nwant;
        memcpy(parts, w->want, (size_t)n * sizeof(*parts));
        w->nwant = 0;
        pthread_mutex_unlock(&w->th.lock);

        wake(w, parts, n);

        pthread_mutex_lock(&w->th.lock);
        w->rounds++;
    }
    pthread_mutex_unlock(&w->th.lock);
    free(parts);
    return NULL;
}

struct akv_fetchwake *akv_fetchwake_new(rd_kafka_t *rk, const char *topic)
{
    struct akv_fetchwake *w = calloc(1, sizeof(*w));

    if (!w) {
        return NULL;
    }
    w->rk = rk;
    w->topic = strdup(topic);
    if (!w->topic || akv_thread_start(&w->th, run, w) < 0) {
        free(w->topic);
        free(w);
        return NULL;
    }
    return w;
}

void akv_fetchwake_kick(struct akv_fetchwake *w, const int32_t *partitions,
                        int n)
{
    if (!w || n <= 0) {
        return;
    }
    pthread_mutex_lock(&w->th.lock);
    if (n > w->capwant) {
        int32_t *p = realloc(w->want, (size_t)n * sizeof(*p));

        if (!p) {
            pthread_mutex_unlock(&w->th.lock);
            return;
        }
        w->want = p;
        w->capwant = n;
    }
    memcpy(w->want, partitions, (size_t)n * sizeof(*partitions));
    w->nwant = n;
    pthread_cond_signal(&w->th.cond);
    pthread_mutex_unlock(&w->th.lock);
}

unsigned long akv_fetchwake_rounds(struct akv_fetchwake *w)
{
    unsigned long n;

    if (!w) {
        return 0;
    }
    pthread_mutex_lock(&w->th.lock);
    n = w->rounds;
    pthread_mutex_unlock(&w->th.lock);
    return n;
}

void akv_fetchwake_destroy(struct akv_fetchwake *w)
{
    if (!w) {
        return;
    }
    akv_thread_stop(&w->th);
    free(w->want);
    free(w->topic);
    free(w);
}
