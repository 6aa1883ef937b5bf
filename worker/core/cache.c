/*
 * cache — a bounded hash map identifier → (document hash, version, time).
 */
#include "cache.h"

#include "backoff.h"
#include "siphash.h"

#include <stdlib.h>
#include <string.h>

struct entry {
    struct entry *next;
    uint64_t doc_hash;
    long long version;
    long long stored_ms;
    int live;
    int has_doc;
    char identifier[]; /* NUL-terminated */
};

struct akv_cache {
    struct entry **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
    size_t capacity;
    long long max_age_ms;
    uint8_t key[16];
};

struct akv_cache *akv_cache_new(size_t capacity, long long max_age_ms)
{
    struct akv_cache *c = calloc(1, sizeof(*c));
    uint64_t r0 = akv_backoff_random();
    uint64_t r1 = akv_backoff_random();

    if (!c) {
        return NULL;
    }
    c->capacity = max_age_ms > 0 ? capacity : 0;
    c->max_age_ms = max_age_ms;
    c->nbuckets = 16;
    while (c->nbuckets < capacity && c->nbuckets < ((size_t)1 << 24)) {
        c->nbuckets *= 2;
    }
    c->buckets = calloc(c->nbuckets, sizeof(*c->buckets));
    if (!c->buckets) {
        free(c);
        return NULL;
    }
    memcpy(c->key, &r0, 8);
    memcpy(c->key + 8, &r1, 8);
    return c;
}

void akv_cache_clear(struct akv_cache *c)
{
    size_t i;

    for (i = 0; i < c->nbuckets; i++) {
        struct entry *e = c->buckets[i];

        while (e) {
            struct entry *next = e->next;

            free(e);
            e = next;
        }
        c->buckets[i] = NULL;
    }
    c->count = 0;
}

void akv_cache_destroy(struct akv_cache *c)
{
    if (!c) {
        return;
    }
    akv_cache_clear(c);
    free(c->buckets);
    explicit_bzero(c->key, sizeof(c->key));
    free(c);
}

uint64_t akv_cache_hash(const struct akv_cache *c, const void *data, size_t len)
{
    return akv_siphash(c->key, data, len);
}

static struct entry **slot(const struct akv_cache *c, const char *identifier)
{
    uint64_t h = akv_siphash(c->key, identifier, strlen(identifier));
    struct entry **p = &c->buckets[h & (c->nbuckets - 1)];

    while (*p && strcmp((*p)->identifier, identifier) != 0) {
        p = &(*p)->next;
    }
    return p;
}

/* An entry from the future (a clock that went back) is no younger. */
static const struct entry *fresh(const struct akv_cache *c,
                                 const char *identifier, long long now_ms)
{
    const struct entry *e = *slot(c, identifier);

    if (!e || !e->has_doc || now_ms < e->stored_ms ||
        now_ms - e->stored_ms >= c->max_age_ms) {
        return NULL;
    }
    return e;
}

int akv_cache_lookup(const struct akv_cache *c, const char *identifier,
                     uint64_t hash, long long now_ms, long long *version)
{
    const struct entry *e = fresh(c, identifier, now_ms);

    if (e && e->doc_hash == hash) {
        *version = e->version;
        return 1;
    }
    return 0;
}

int akv_cache_known(const struct akv_cache *c, const char *identifier,
                    struct akv_cache_entry *out)
{
    const struct entry *e = *slot(c, identifier);

    if (!e) {
        return 0;
    }
    out->hash = e->doc_hash;
    out->version = e->version;
    out->live = e->live;
    out->has_doc = e->has_doc;
    return 1;
}

int akv_cache_has(const struct akv_cache *c, const char *identifier,
                  long long now_ms)
{
    return fresh(c, identifier, now_ms) != NULL;
}

/* Sets \p identifier's entry, adding one if need be. */
static void put(struct akv_cache *c, const char *identifier,
                const struct akv_cache_entry *v, long long now_ms)
{
    struct entry **p;
    struct entry *e;
    size_t len = strlen(identifier);

    if (c->capacity == 0) {
        return;
    }
    p = slot(c, identifier);
    if (!*p) {
        if (c->count >= c->capacity) {
            akv_cache_clear(c);
            p = slot(c, identifier);
        }
        e = malloc(sizeof(*e) + len + 1);
        if (!e) {
            return; /* remembering is an optimisation */
        }
        e->next = NULL;
        memcpy(e->identifier, identifier, len + 1);
        *p = e;
        c->count++;
    }
    e = *p;
    e->doc_hash = v->hash;
    e->version = v->version;
    e->live = v->live;
    e->has_doc = v->has_doc;
    e->stored_ms = now_ms;
}

void akv_cache_store(struct akv_cache *c, const char *identifier, uint64_t hash,
                     long long version, long long now_ms)
{
    struct akv_cache_entry v = {hash, version, 1, 1};

    put(c, identifier, &v, now_ms);
}

void akv_cache_store_gone(struct akv_cache *c, const char *identifier,
                          long long version, int live, long long now_ms)
{
    struct akv_cache_entry v = {0, version, live != 0, 0};

    put(c, identifier, &v, now_ms);
}

void akv_cache_forget(struct akv_cache *c, const char *identifier)
{
    struct entry **p = slot(c, identifier);
    struct entry *e = *p;

    if (e) {
        *p = e->next;
        free(e);
        c->count--;
    }
}

size_t akv_cache_count(const struct akv_cache *c)
{
    return c->count;
}
