/*
 * siphash — SipHash-2-4, a keyed 64-bit hash.
 *
 * Used where a hash must not be steerable by whoever controls the input:
 * the worker's per-token cache compares documents that hold token keys by
 * their keyed hash, so neither collisions can be crafted nor the hash be
 * used to test guesses of a key without the per-process random key.
 */
#ifndef AKV_COMMON_SIPHASH_H
#define AKV_COMMON_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

/** @returns SipHash-2-4 of \p data under the 16-byte \p key. */
uint64_t akv_siphash(const uint8_t key[16], const void *data, size_t len);

#endif /* AKV_COMMON_SIPHASH_H */
