/*
 * offsets — a ring of (offset, finished) in arrival order.
 *
 * Finished entries at the front are dropped as soon as they are finished,
 * so the front is always the lowest pending offset and the watermark is
 * O(1). Marking an entry finished is a binary search (offsets in the ring
 * are increasing).
 */
#include "offsets.h"

#include <stdlib.h>

struct entry {
    int64_t offset;
    int64_t timestamp_ms;
    void *data;
    int done;
};

struct akv_offsets {
    struct entry *ring;
    size_t cap;  /* power of two */
    size_t head; /* index of the front */
    size_t len;
    int64_t last; /* highest tracked offset, -1 if none */
    size_t pending;
};

struct akv_offsets *akv_offsets_new(void)
{
    struct akv_offsets *o = calloc(1, sizeof(*o));

    if (!o) {
        return NULL;
    }
    o->cap = 64;
    o->ring = malloc(o->cap * sizeof(*o->ring));
    if (!o->ring) {
        free(o);
        return NULL;
    }
    o->last = -1;
    return o;
}

void akv_offsets_destroy(struct akv_offsets *o)
{
    if (!o) {
        return;
    }
    free(o->ring);
    free(o);
}

static struct entry *at(const struct akv_offsets *o, size_t i)
{
    return &o->ring[(o->head + i) & (o->cap - 1)];
}

static int grow(struct akv_offsets *o)
{
    size_t cap = o->cap * 2;
    struct entry *ring = malloc(cap * sizeof(*ring));
    size_t i;

    if (!ring) {
        return -1;
    }
    for (i = 0; i < o->len; i++) {
        ring[i] = *at(o, i);
    }
    free(o->ring);
    o->ring = ring;
    o->cap = cap;
    o->head = 0;
    return 0;
}

int akv_offsets_track(struct akv_offsets *o, int64_t offset,
                      int64_t timestamp_ms, void *data)
{
    struct entry *e;

    if (offset <= o->last) {
        return -1;
    }
    if (o->len == o->cap && grow(o) < 0) {
        return -1;
    }
    e = at(o, o->len);
    e->offset = offset;
    e->timestamp_ms = timestamp_ms;
    e->data = data;
    e->done = 0;
    o->len++;
    o->pending++;
    o->last = offset;
    return 0;
}

/* The pending entry for \p offset, or NULL. */
static struct entry *find(const struct akv_offsets *o, int64_t offset)
{
    size_t lo = 0;
    size_t hi = o->len;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (at(o, mid)->offset < offset) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == o->len || at(o, lo)->offset != offset || at(o, lo)->done) {
        return NULL;
    }
    return at(o, lo);
}

int akv_offsets_set(struct akv_offsets *o, int64_t offset, void *data)
{
    struct entry *e = find(o, offset);

    if (!e) {
        return -1;
    }
    e->data = data;
    return 0;
}

void *akv_offsets_get(const struct akv_offsets *o, int64_t offset)
{
    struct entry *e = find(o, offset);

    return e ? e->data : NULL;
}

int akv_offsets_done(struct akv_offsets *o, int64_t offset, void **data)
{
    struct entry *e = find(o, offset);

    if (data) {
        *data = e ? e->data : NULL;
    }
    if (!e) {
        return -1;
    }
    e->done = 1;
    e->data = NULL;
    o->pending--;
    while (o->len > 0 && at(o, 0)->done) {
        o->head = (o->head + 1) & (o->cap - 1);
        o->len--;
    }
    /* Finished entries at the back count for nothing: the watermark is
     * the first pending one, or one past the last tracked ("last"). So a
     * skipped event costs no room behind a long-unfinished one. */
    while (o->len > 0 && at(o, o->len - 1)->done) {
        o->len--;
    }
    return 0;
}

int64_t akv_offsets_watermark(const struct akv_offsets *o)
{
    if (o->len > 0) {
        return at(o, 0)->offset;
    }
    return o->last < 0 ? -1 : o->last + 1;
}

size_t akv_offsets_pending(const struct akv_offsets *o)
{
    return o->pending;
}

size_t akv_offsets_stored(const struct akv_offsets *o)
{
    return o->len;
}

int64_t akv_offsets_oldest_timestamp(const struct akv_offsets *o)
{
    return o->len > 0 ? at(o, 0)->timestamp_ms : -1;
}

void akv_offsets_reset(struct akv_offsets *o, void (*release)(void *data))
{
    size_t i;

    for (i = 0; i < o->len; i++) {
        struct entry *e = at(o, i);

        if (!e->done && e->data && release) {
            release(e->data);
        }
    }
    o->head = 0;
    o->len = 0;
    o->pending = 0;
    o->last = -1;
}
