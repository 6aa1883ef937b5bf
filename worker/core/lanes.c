/*
 * lanes — a hash map identifier → lane, chained, growing with the load.
 */
#include "lanes.h"

#include <stdlib.h>
#include <string.h>

struct node {
    struct node *next;
    uint64_t hash;
    struct akv_lane lane;
};

struct akv_lanes {
    struct node **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
};

/* FNV-1a: identifiers are validated slugs, and a lane table is not worth
 * attacking (its size is bounded by the work in flight). */
static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ULL;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ULL;
    }
    return h;
}

struct akv_lanes *akv_lanes_new(void)
{
    struct akv_lanes *ls = calloc(1, sizeof(*ls));

    if (!ls) {
        return NULL;
    }
    ls->nbuckets = 256;
    ls->buckets = calloc(ls->nbuckets, sizeof(*ls->buckets));
    if (!ls->buckets) {
        free(ls);
        return NULL;
    }
    return ls;
}

static void node_free(struct node *n)
{
    free(n->lane.identifier);
    free(n->lane.covered.v);
    free(n->lane.waiting.v);
    free(n);
}

void akv_lanes_destroy(struct akv_lanes *ls)
{
    size_t i;

    if (!ls) {
        return;
    }
    for (i = 0; i < ls->nbuckets; i++) {
        struct node *n = ls->buckets[i];

        while (n) {
            struct node *next = n->next;

            node_free(n);
            n = next;
        }
    }
    free(ls->buckets);
    free(ls);
}

static int push(struct akv_lane_events *l, int32_t partition, int64_t offset)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        struct akv_lane_event *v = realloc(l->v, cap * sizeof(*v));

        if (!v) {
            return -1;
        }
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n].partition = partition;
    l->v[l->n].offset = offset;
    l->n++;
    return 0;
}

/* Rehash into twice the buckets when chains get long; failure is fine. */
static void maybe_grow(struct akv_lanes *ls)
{
    size_t n = ls->nbuckets * 2;
    struct node **b;
    size_t i;

    if (ls->count < ls->nbuckets * 2) {
        return;
    }
    b = calloc(n, sizeof(*b));
    if (!b) {
        return;
    }
    for (i = 0; i < ls->nbuckets; i++) {
        struct node *nd = ls->buckets[i];

        while (nd) {
            struct node *next = nd->next;
            size_t j = nd->hash & (n - 1);

            nd->next = b[j];
            b[j] = nd;
            nd = next;
        }
    }
    free(ls->buckets);
    ls->buckets = b;
    ls->nbuckets = n;
}

enum akv_lane_admit akv_lanes_admit(struct akv_lanes *ls,
                                    const char *identifier, int32_t partition,
                                    int64_t offset, struct akv_lane **out)
{
    uint64_t h = hash_str(identifier);
    struct node **p = &ls->buckets[h & (ls->nbuckets - 1)];
    struct node *n;

    for (n = *p; n; n = n->next) {
        if (n->hash == h && strcmp(n->lane.identifier, identifier) == 0) {
            if (push(&n->lane.waiting, partition, offset) < 0) {
                return AKV_LANE_ERROR;
            }
            *out = &n->lane;
            return AKV_LANE_QUEUED;
        }
    }
    n = calloc(1, sizeof(*n));
    if (!n) {
        return AKV_LANE_ERROR;
    }
    n->hash = h;
    n->lane.identifier = strdup(identifier);
    if (!n->lane.identifier || push(&n->lane.covered, partition, offset) < 0) {
        node_free(n);
        return AKV_LANE_ERROR;
    }
    n->next = *p;
    *p = n;
    ls->count++;
    maybe_grow(ls);
    *out = &n->lane;
    return AKV_LANE_START;
}

static struct node *node_of(struct akv_lane *lane)
{
    return (struct node *)((char *)lane - offsetof(struct node, lane));
}

void akv_lanes_remove(struct akv_lanes *ls, struct akv_lane *lane)
{
    struct node *n = node_of(lane);
    struct node **p = &ls->buckets[n->hash & (ls->nbuckets - 1)];

    while (*p && *p != n) {
        p = &(*p)->next;
    }
    if (*p) {
        *p = n->next;
        ls->count--;
    }
    node_free(n);
}

int akv_lanes_finish(struct akv_lanes *ls, struct akv_lane *lane,
                     void (*done)(void *ctx, const struct akv_lane_event *ev),
                     void *ctx)
{
    struct akv_lane_events t;
    size_t i;

    for (i = 0; i < lane->covered.n; i++) {
        done(ctx, &lane->covered.v[i]);
    }
    if (lane->waiting.n == 0) {
        akv_lanes_remove(ls, lane);
        return 0;
    }
    /* The waiting events become the follow-up's; reuse the arrays. */
    t = lane->covered;
    lane->covered = lane->waiting;
    lane->waiting = t;
    lane->waiting.n = 0;
    return 1;
}

int akv_lanes_merge(struct akv_lane *lane)
{
    size_t need = lane->covered.n + lane->waiting.n;
    size_t i;

    if (need > lane->covered.cap) {
        struct akv_lane_event *v = realloc(lane->covered.v, need * sizeof(*v));

        if (!v) {
            return -1;
        }
        lane->covered.v = v;
        lane->covered.cap = need;
    }
    for (i = 0; i < lane->waiting.n; i++) {
        lane->covered.v[lane->covered.n++] = lane->waiting.v[i];
    }
    lane->waiting.n = 0;
    return 0;
}

static void drop(struct akv_lane_events *l, int32_t partition)
{
    size_t i;
    size_t o = 0;

    for (i = 0; i < l->n; i++) {
        if (l->v[i].partition != partition) {
            l->v[o++] = l->v[i];
        }
    }
    l->n = o;
}

void akv_lanes_drop_partition(struct akv_lanes *ls, int32_t partition,
                              void (*orphan)(void *ctx, struct akv_lane *lane),
                              void *ctx)
{
    size_t i;

    for (i = 0; i < ls->nbuckets; i++) {
        struct node *n = ls->buckets[i];

        while (n) {
            struct node *next = n->next;

            drop(&n->lane.covered, partition);
            drop(&n->lane.waiting, partition);
            if (n->lane.covered.n == 0 && n->lane.waiting.n == 0) {
                orphan(ctx, &n->lane);
            }
            n = next;
        }
    }
}

size_t akv_lanes_count(const struct akv_lanes *ls)
{
    return ls->count;
}
