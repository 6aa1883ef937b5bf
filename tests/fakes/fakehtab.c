/*
 * fakehtab — intrusive string-keyed hash table of the stand-ins.
 */
#include "fakehtab.h"

#include "backoff.h"
#include "siphash.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_key(const struct fakehtab *t, const char *key)
{
    return akv_siphash(t->sipkey, key, strlen(key));
}

int fakehtab_init(struct fakehtab *t, size_t nb)
{
    uint64_t r0 = akv_backoff_random();
    uint64_t r1 = akv_backoff_random();

    memcpy(t->sipkey, &r0, 8);
    memcpy(t->sipkey + 8, &r1, 8);
    t->b = calloc(nb, sizeof(*t->b));
    t->nb = nb;
    t->n = 0;
    return t->b ? 0 : -1;
}

struct fakehtab_node *fakehtab_find(const struct fakehtab *t, const char *key)
{
    uint64_t h = hash_key(t, key);
    struct fakehtab_node *n;

    for (n = t->b[h & (t->nb - 1)]; n; n = n->next) {
        if (n->hash == h && strcmp(n->key, key) == 0) {
            return n;
        }
    }
    return NULL;
}

/* Doubles the chains; on OOM the table just gets longer chains. */
static void grow(struct fakehtab *t)
{
    struct fakehtab_node **nbk = calloc(t->nb * 2, sizeof(*nbk));
    size_t i;

    if (!nbk) {
        return;
    }
    for (i = 0; i < t->nb; i++) {
        struct fakehtab_node *n = t->b[i];

        while (n) {
            struct fakehtab_node *next = n->next;
            size_t j = n->hash & (t->nb * 2 - 1);

            n->next = nbk[j];
            nbk[j] = n;
            n = next;
        }
    }
    free(t->b);
    t->b = nbk;
    t->nb *= 2;
}

void fakehtab_insert(struct fakehtab *t, struct fakehtab_node *node)
{
    size_t i;

    if (t->n + 1 > t->nb - t->nb / 4) {
        grow(t);
    }
    node->hash = hash_key(t, node->key);
    i = node->hash & (t->nb - 1);
    node->next = t->b[i];
    t->b[i] = node;
    t->n++;
}

struct fakehtab_node *fakehtab_remove(struct fakehtab *t, const char *key)
{
    uint64_t h = hash_key(t, key);
    struct fakehtab_node **pp = &t->b[h & (t->nb - 1)];

    for (; *pp; pp = &(*pp)->next) {
        struct fakehtab_node *n = *pp;

        if (n->hash == h && strcmp(n->key, key) == 0) {
            *pp = n->next;
            t->n--;
            return n;
        }
    }
    return NULL;
}

size_t fakehtab_drop_if(struct fakehtab *t,
                        int (*drop)(const struct fakehtab_node *),
                        void (*release)(struct fakehtab_node *))
{
    size_t dropped = 0;
    size_t i;

    for (i = 0; t->b && i < t->nb; i++) {
        struct fakehtab_node **pp = &t->b[i];

        while (*pp) {
            struct fakehtab_node *n = *pp;

            if (drop && !drop(n)) {
                pp = &n->next;
                continue;
            }
            *pp = n->next;
            t->n--;
            release(n);
            dropped++;
        }
    }
    return dropped;
}

void fakehtab_destroy(struct fakehtab *t,
                      void (*release)(struct fakehtab_node *))
{
    fakehtab_drop_if(t, NULL, release);
    free(t->b);
    t->b = NULL;
    t->nb = 0;
    explicit_bzero(t->sipkey, sizeof(t->sipkey));
}
