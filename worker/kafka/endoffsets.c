/*
 * endoffsets — a helper thread reading partitions' end offsets.
 */
#include "endoffsets.h"

#include "listoffsets.h"
#include "log.h"
#include "thread.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One slow leader must not hold shutdown up for long. */
#define QUERY_TIMEOUT_MS 2000

struct akv_endoffsets {
    rd_kafka_t *rk;
    char *topic;
    long long interval_ms;
    struct akv_thread th; /* th.lock guards what says "under lock" */
    int changed;          /* under lock: the set changed since the last round */
    int32_t *watch;       /* under lock: the watched partitions */
    int nwatch;           /* under lock */
    int64_t *end;         /* under lock: by partition, -1 unknown */
    int64_t *committed;   /* under lock: by partition, -1 none, -2 to read */
    int nend;             /* under lock */
};

/* Makes room for \p partition in eo->end; under lock. */
static int room(struct akv_endoffsets *eo, int32_t partition)
{
    int n = partition + 1;
    int64_t *e;
    int64_t *c;
    int i;

    if (partition < eo->nend) {
        return 0;
    }
    e = realloc(eo->end, (size_t)n * sizeof(*e));
    if (!e) {
        return -1;
    }
    eo->end = e;
    c = realloc(eo->committed, (size_t)n * sizeof(*c));
    if (!c) {
        return -1;
    }
    eo->committed = c;
    for (i = eo->nend; i < n; i++) {
        e[i] = -1;
        c[i] = -2;
    }
    eo->nend = n;
    return 0;
}

/* Reads the committed offsets still to read among \p parts. */
static void read_committed(struct akv_endoffsets *eo, const int32_t *parts,
                           int n)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    rd_kafka_resp_err_t err;
    int i;

    pthread_mutex_lock(&eo->th.lock);
    for (i = 0; i < n; i++) {
        if (parts[i] < eo->nend && eo->committed[parts[i]] == -2) {
            rd_kafka_topic_partition_list_add(l, eo->topic, parts[i]);
        }
    }
    pthread_mutex_unlock(&eo->th.lock);
    if (l->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(l);
        return;
    }
    err = rd_kafka_committed(eo->rk, l, QUERY_TIMEOUT_MS);
    if (err) {
        akv_log_debug("kafka", "committed offsets: %s", rd_kafka_err2str(err));
    } else {
        pthread_mutex_lock(&eo->th.lock);
        for (i = 0; i < l->cnt; i++) {
            const rd_kafka_topic_partition_t *t = &l->elems[i];

            if (!t->err && t->partition < eo->nend &&
                eo->committed[t->partition] == -2) {
                eo->committed[t->partition] = t->offset >= 0 ? t->offset : -1;
            }
        }
        pthread_mutex_unlock(&eo->th.lock);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

/* Reads the end offsets of \p parts. */
static void end_offsets(struct akv_endoffsets *eo, const int32_t *parts, int n)
{
    rd_kafka_resp_err_t err;
    rd_kafka_topic_partition_list_t *l =
        akv_list_offsets(eo->rk, eo->topic, parts, n, RD_KAFKA_OFFSET_END,
                         QUERY_TIMEOUT_MS, &err);
    int i;

    if (!l) {
        akv_log_debug("kafka", "end offsets: %s", rd_kafka_err2str(err));
        return;
    }
    pthread_mutex_lock(&eo->th.lock);
    for (i = 0; i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *t = &l->elems[i];

        if (t->err || t->offset < 0) {
            akv_log_debug("kafka", "end offset of partition=%d: %s",
                          (int)t->partition, rd_kafka_err2str(t->err));
        } else if (room(eo, t->partition) == 0) {
            eo->end[t->partition] = t->offset;
        }
    }
    pthread_mutex_unlock(&eo->th.lock);
    rd_kafka_topic_partition_list_destroy(l);
}

static void *run(void *arg)
{
    struct akv_endoffsets *eo = arg;
    int32_t *parts = NULL;
    int cap = 0;

    pthread_mutex_lock(&eo->th.lock);
    for (;;) {
        struct timespec until;
        int n;

        akv_thread_deadline(&until, eo->interval_ms);
        while (!eo->th.stop && !eo->changed) {
            if (akv_thread_wait(&eo->th, &until) == ETIMEDOUT) {
                break;
            }
        }
        if (eo->th.stop) {
            break;
        }
        eo->changed = 0;
        if (eo->nwatch > cap) {
            int32_t *p = realloc(parts, (size_t)eo->nwatch * sizeof(*p));

            if (!p) {
                continue; /* try again next round */
            }
            parts = p;
            cap = eo->nwatch;
        }
        n = eo->nwatch;
        if (n == 0) {
            continue;
        }
        memcpy(parts, eo->watch, (size_t)n * sizeof(*parts));
        pthread_mutex_unlock(&eo->th.lock);

        end_offsets(eo, parts, n);
        read_committed(eo, parts, n);

        pthread_mutex_lock(&eo->th.lock);
    }
    pthread_mutex_unlock(&eo->th.lock);
    free(parts);
    return NULL;
}

struct akv_endoffsets *akv_endoffsets_new(rd_kafka_t *rk, const char *topic,
                                          long long interval_ms)
{
    struct akv_endoffsets *eo = calloc(1, sizeof(*eo));

    if (!eo) {
        return NULL;
    }
    eo->rk = rk;
    eo->interval_ms = interval_ms;
    eo->topic = strdup(topic);
    if (!eo->topic || akv_thread_start(&eo->th, run, eo) < 0) {
        free(eo->topic);
        free(eo);
        return NULL;
    }
    return eo;
}

static int contains(const int32_t *v, int n, int32_t x)
{
    int i;

    for (i = 0; i < n; i++) {
        if (v[i] == x) {
            return 1;
        }
    }
    return 0;
}

void akv_endoffsets_watch(struct akv_endoffsets *eo, const int32_t *partitions,
                          int n)
{
    int32_t *w;
    int i;

    if (!eo) {
        return;
    }
    w = malloc((size_t)(n > 0 ? n : 1) * sizeof(*w));
    if (!w) {
        return;
    }
    if (n > 0) {
        memcpy(w, partitions, (size_t)n * sizeof(*w));
    }
    pthread_mutex_lock(&eo->th.lock);
    /* A partition given up forgets its offsets: when it comes back, the
     * old values must not pass for fresh ones. */
    for (i = 0; i < eo->nend; i++) {
        if (!contains(w, n, i)) {
            eo->end[i] = -1;
            eo->committed[i] = -2;
        }
    }
    for (i = 0; i < n && !eo->changed; i++) {
        eo->changed = !contains(eo->watch, eo->nwatch, w[i]);
    }
    free(eo->watch);
    eo->watch = w;
    eo->nwatch = n;
    if (eo->changed) {
        pthread_cond_signal(&eo->th.cond);
    }
    pthread_mutex_unlock(&eo->th.lock);
}

int64_t akv_endoffsets_get(struct akv_endoffsets *eo, int32_t partition)
{
    int64_t v = -1;

    if (!eo || partition < 0) {
        return -1;
    }
    pthread_mutex_lock(&eo->th.lock);
    if (partition < eo->nend) {
        v = eo->end[partition];
    }
    pthread_mutex_unlock(&eo->th.lock);
    return v;
}

int64_t akv_endoffsets_committed(struct akv_endoffsets *eo, int32_t partition)
{
    int64_t v = -1;

    if (!eo || partition < 0) {
        return -1;
    }
    pthread_mutex_lock(&eo->th.lock);
    if (partition < eo->nend && eo->committed[partition] >= 0) {
        v = eo->committed[partition];
    }
    pthread_mutex_unlock(&eo->th.lock);
    return v;
}

void akv_endoffsets_destroy(struct akv_endoffsets *eo)
{
    if (!eo) {
        return;
    }
    akv_thread_stop(&eo->th);
    free(eo->watch);
    free(eo->end);
    free(eo->committed);
    free(eo->topic);
    free(eo);
}
