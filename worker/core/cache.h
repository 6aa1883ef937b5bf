/*
 * cache — what this worker last knew Vault to hold, per token.
 *
 * For each identifier: a keyed hash of the document last written (or found
 * already current), the Vault version it was found or written as, and when.
 * A redelivered event whose document hashes the same costs no Vault read.
 * A token authentik no longer has is remembered without a document: the
 * version its secret was left at and whether that version is live.
 *
 * What the cache trusts, and when it stops: an entry only vouches for Vault
 * while nobody else can have written the token since. This worker is the
 * only writer of a token while it owns the partition the token's events come
 * from, so the engine clears the cache whenever its assignment changes (a
 * partition revoked, lost or added), and an entry older than the maximum age
 * is ignored: writers outside the group (a person, a second group, a
 * restore) are noticed within that age. Any failed or superseded write
 * forgets the token's entry.
 *
 * The table is bounded: when full it starts over, which only costs reads.
 * Time is passed in (monotonic milliseconds); nothing here reads a clock.
 */
#ifndef AKV_WORKER_CACHE_H
#define AKV_WORKER_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct akv_cache;

/**
 * @returns a cache for up to \p capacity tokens whose entries are trusted
 *          for \p max_age_ms (either 0: never remembers), or NULL when out
 *          of memory.
 */
struct akv_cache *akv_cache_new(size_t capacity, long long max_age_ms);

/** @brief Frees the cache. NULL is a no-op. */
void akv_cache_destroy(struct akv_cache *c);

/** @returns the keyed hash of \p len bytes (per-process random key). */
uint64_t akv_cache_hash(const struct akv_cache *c, const void *data,
                        size_t len);

/**
 * @returns 1 and the Vault version when \p identifier has an entry younger
 *          than the maximum age at \p now_ms with document hash \p hash,
 *          else 0.
 */
int akv_cache_lookup(const struct akv_cache *c, const char *identifier,
                     uint64_t hash, long long now_ms, long long *version);

/** What an entry says Vault holds. */
struct akv_cache_entry {
    uint64_t hash;     /**< of the document, when has_doc */
    long long version; /**< Vault's current version */
    int live;          /**< that version is neither deleted nor destroyed */
    int has_doc;       /**< it holds the document hashed */
};

/**
 * @returns 1 with \p identifier's entry in \p out, whatever its age, else
 *          0. For a caller that checks the version against Vault's
 *          metadata before it believes the entry (KV v2 versions never
 *          change once written).
 */
int akv_cache_known(const struct akv_cache *c, const char *identifier,
                    struct akv_cache_entry *out);

/** @returns 1 when \p identifier has an entry with a document, young
 *           enough at \p now_ms. */
int akv_cache_has(const struct akv_cache *c, const char *identifier,
                  long long now_ms);

/** @brief Remembers that Vault holds \p hash as \p version at \p now_ms. */
void akv_cache_store(struct akv_cache *c, const char *identifier, uint64_t hash,
                     long long version, long long now_ms);

/**
 * @brief Remembers that authentik has no token \p identifier and that its
 *        secret's current version is \p version (0: none), \p live or not.
 *        Only akv_cache_known() returns such an entry.
 */
void akv_cache_store_gone(struct akv_cache *c, const char *identifier,
                          long long version, int live, long long now_ms);

/** @brief Forgets \p identifier (its secret changed outside our view). */
void akv_cache_forget(struct akv_cache *c, const char *identifier);

/** @brief Forgets every token (the assignment changed). */
void akv_cache_clear(struct akv_cache *c);

/** @returns the number of tokens remembered (stale entries included). */
size_t akv_cache_count(const struct akv_cache *c);

#endif /* AKV_WORKER_CACHE_H */
