/*
 * fetchwake — a helper thread that wakes the fetcher's broker threads.
 */
#include "fetchwake.h"

#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A wake-up must not hold shutdown up for long. */
#define QUERY_TIMEOUT_MS    500
#define METADATA_TIMEOUT_MS 1000
/* Leaders move rarely; a failed wake-up refreshes them sooner. */
#define LEADERS_MAX_AGE_MS 10000

struct akv_fetchwake {
    rd_kafka_t *rk;
    char *topic;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int stop;             /* under lock */
    int32_t *want;        /* under lock: partitions waiting to be woken */
    int nwant;            /* under lock */
    int capwant;          /* under lock */
    unsigned long rounds; /* under lock */
    /* the helper thread's own */
    int32_t *leader; /* by partition; -1 unknown */
    int nleader;
    long long leaders_at;
};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void refresh_leaders(struct akv_fetchwake *w)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(w->rk, w->topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    int i;

    w->leaders_at = now_ms();
    if (!rkt) {
        return;
    }
    err = rd_kafka_metadata(w->rk, 0, rkt, &md, METADATA_TIMEOUT_MS);
    rd_kafka_topic_destroy(rkt);
    if (!err && (md->topic_cnt != 1 || md->topics[0].err)) {
        err = md->topic_cnt == 1 ? md->topics[0].err
                                 : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC;
    }
    if (err) {
        akv_log_debug("kafka", "fetch wake-up: no leaders for %s: %s", w->topic,
                      rd_kafka_err2str(err));
        if (md) {
            rd_kafka_metadata_destroy(md);
        }
        return;
    }
    for (i = 0; i < w->nleader; i++) {
        w->leader[i] = -1;
    }
    for (i = 0; i < md->topics[0].partition_cnt; i++) {
        const rd_kafka_metadata_partition_t *mp = &md->topics[0].partitions[i];

        if (mp->id < 0) {
            continue;
        }
        if (mp->id >= w->nleader) {
            int n = mp->id + 1;
            int32_t *l = realloc(w->leader, (size_t)n * sizeof(*l));
            int j;

            if (!l) {
                break;
            }
            for (j = w->nleader; j < n; j++) {
                l[j] = -1;
            }
            w->leader = l;
            w->nleader = n;
        }
        w->leader[mp->id] = mp->leader;
    }
    rd_kafka_metadata_destroy(md);
}

static int32_t leader_of(const struct akv_fetchwake *w, int32_t partition)
{
    return partition < w->nleader ? w->leader[partition] : -1;
}

/* One watermark query per leader of \p parts; a partition whose leader is
 * unknown gets its own. */
static void wake(struct akv_fetchwake *w, const int32_t *parts, int n)
{
    int i;
    int j;

    if (now_ms() - w->leaders_at > LEADERS_MAX_AGE_MS) {
        refresh_leaders(w);
    }
    for (i = 0; i < n; i++) {
        int32_t leader = leader_of(w, parts[i]);
        int64_t lo;
        int64_t hi;
        rd_kafka_resp_err_t err;
        int seen = 0;

        for (j = 0; j < i && leader >= 0; j++) {
            if (leader_of(w, parts[j]) == leader) {
                seen = 1;
                break;
            }
        }
        if (seen) {
            continue;
        }
        err = rd_kafka_query_watermark_offsets(w->rk, w->topic, parts[i], &lo,
                                               &hi, QUERY_TIMEOUT_MS);
        if (err) {
            /* maybe a leader moved: look again next time */
            w->leaders_at = 0;
            akv_log_debug("kafka", "fetch wake-up partition=%d: %s",
                          (int)parts[i], rd_kafka_err2str(err));
        }
    }
}

static void *run(void *arg)
{
    struct akv_fetchwake *w = arg;
    int32_t *parts = NULL;
    int cap = 0;

    pthread_mutex_lock(&w->lock);
    for (;;) {
        int n;

        while (!w->stop && w->nwant == 0) {
            pthread_cond_wait(&w->cond, &w->lock);
        }
        if (w->stop) {
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
        pthread_mutex_unlock(&w->lock);

        wake(w, parts, n);

        pthread_mutex_lock(&w->lock);
        w->rounds++;
    }
    pthread_mutex_unlock(&w->lock);
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
    if (!w->topic || pthread_mutex_init(&w->lock, NULL) != 0) {
        free(w->topic);
        free(w);
        return NULL;
    }
    if (pthread_cond_init(&w->cond, NULL) != 0) {
        pthread_mutex_destroy(&w->lock);
        free(w->topic);
        free(w);
        return NULL;
    }
    if (pthread_create(&w->thread, NULL, run, w) != 0) {
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->lock);
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
    pthread_mutex_lock(&w->lock);
    if (n > w->capwant) {
        int32_t *p = realloc(w->want, (size_t)n * sizeof(*p));

        if (!p) {
            pthread_mutex_unlock(&w->lock);
            return;
        }
        w->want = p;
        w->capwant = n;
    }
    memcpy(w->want, partitions, (size_t)n * sizeof(*partitions));
    w->nwant = n;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

unsigned long akv_fetchwake_rounds(struct akv_fetchwake *w)
{
    unsigned long n;

    if (!w) {
        return 0;
    }
    pthread_mutex_lock(&w->lock);
    n = w->rounds;
    pthread_mutex_unlock(&w->lock);
    return n;
}

void akv_fetchwake_destroy(struct akv_fetchwake *w)
{
    if (!w) {
        return;
    }
    pthread_mutex_lock(&w->lock);
    w->stop = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->lock);
    free(w->want);
    free(w->leader);
    free(w->topic);
    free(w);
}
