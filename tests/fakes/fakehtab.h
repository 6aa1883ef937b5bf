/*
 * fakehtab — the string-keyed hash table the loopback stand-ins keep their
 * state in (fake-vault's secrets and tokens, fake-authentik's tokens), so
 * the cost of a request does not grow with what a long test has stored.
 *
 * Intrusive: an entry embeds a struct fakehtab_node, whose key is the
 * entry's own string. Keys are hashed with SipHash (common/siphash) under
 * a key drawn per table. The table doubles once 3/4 full; when that
 * allocation fails it keeps longer chains instead. No locking: each fake
 * guards its tables with its own mutex.
 */
#ifndef AKV_TESTS_FAKEHTAB_H
#define AKV_TESTS_FAKEHTAB_H

#include <stddef.h>
#include <stdint.h>

struct fakehtab_node {
    struct fakehtab_node *next;
    uint64_t hash;
    char *key; /**< the entry's key; set before fakehtab_insert() */
};

struct fakehtab {
    struct fakehtab_node **b; /**< chains; read-only for callers */
    size_t nb;                /**< number of chains, a power of two */
    size_t n;                 /**< number of nodes */
    uint8_t sipkey[16];
};

/** @brief An empty table of \p nb chains (a power of two).
 *  @returns 0, or -1 when out of memory. */
int fakehtab_init(struct fakehtab *t, size_t nb);

/** @returns the node with key \p key, or NULL. */
struct fakehtab_node *fakehtab_find(const struct fakehtab *t, const char *key);

/** @brief Adds \p node, whose key is not in the table yet. */
void fakehtab_insert(struct fakehtab *t, struct fakehtab_node *node);

/** @brief Unlinks the node with key \p key. @returns it, or NULL. */
struct fakehtab_node *fakehtab_remove(struct fakehtab *t, const char *key);

/**
 * @brief Unlinks every node \p drop says 1 to (every node when \p drop is
 *        NULL) and hands each to \p release.
 * @returns how many were dropped.
 */
size_t fakehtab_drop_if(struct fakehtab *t,
                        int (*drop)(const struct fakehtab_node *),
                        void (*release)(struct fakehtab_node *));

/** @brief Releases every node and frees the chains; NULL-safe on a table
 *         whose fakehtab_init() failed. */
void fakehtab_destroy(struct fakehtab *t,
                      void (*release)(struct fakehtab_node *));

#endif /* AKV_TESTS_FAKEHTAB_H */
