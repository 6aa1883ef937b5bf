/*
 * cache — what this worker last knew Vault to hold, per token.
 *
 * For each identifier: a keyed hash of the document last written (or found
 * already current) and its version. A redelivered or replayed event whose
 * document hashes the same costs no Vault read. The table is bounded: when
 * full it starts over, which only costs reads.
 */
#ifndef AKV_WORKER_CACHE_H
#define AKV_WORKER_CACHE_H

#include <stddef.h>
#include <stdint.h>

struct akv_cache;

/** @returns a cache for up to \p capacity tokens (0: never remembers). */
struct akv_cache *akv_cache_new(size_t capacity);

/** @brief Frees the cache. NULL is a no-op. */
void akv_cache_destroy(struct akv_cache *c);

/** @returns the keyed hash of \p len bytes (per-process random key). */
uint64_t akv_cache_hash(const struct akv_cache *c, const void *data,
                        size_t len);

/**
 * @returns 1 and the version when \p identifier is known with document hash
 *          \p hash, else 0.
 */
int akv_cache_lookup(const struct akv_cache *c, const char *identifier,
                     uint64_t hash, long long *version);

/** @returns 1 when anything is remembered for \p identifier. */
int akv_cache_has(const struct akv_cache *c, const char *identifier);

/** @brief Remembers \p identifier → (hash, version). */
void akv_cache_store(struct akv_cache *c, const char *identifier, uint64_t hash,
                     long long version);

/** @brief Forgets \p identifier (its secret changed outside our view). */
void akv_cache_forget(struct akv_cache *c, const char *identifier);

/** @returns the number of tokens remembered. */
size_t akv_cache_count(const struct akv_cache *c);

#endif /* AKV_WORKER_CACHE_H */
