/*
 * memfind — a substring search for needles of a few bytes in haystacks of
 * a few hundred: the byte prefilter's inner loop, run on every event.
 */
#ifndef AKV_COMMON_MEMFIND_H
#define AKV_COMMON_MEMFIND_H

#include <stddef.h>

/**
 * @returns where the \p m bytes of \p needle first occur in the \p n bytes
 *          of \p hay, or NULL. Neither needs a terminator; either may hold
 *          any byte.
 */
const char *akv_memfind(const char *hay, size_t n, const char *needle,
                        size_t m);

/**
 * @brief akv_memfind() that also watches for two stop bytes on the way, so
 *        that one pass answers both "where is the needle" and "does the
 *        haystack hold either byte".
 *
 * Neither stop byte may be the needle's first byte.
 *
 * @returns the first position that starts the needle or holds a stop byte
 *          (*\p stopped tells which: 1 for a stop byte), or NULL when
 *          neither occurs in the \p n bytes.
 */
const char *akv_memfind_stop(const char *hay, size_t n, const char *needle,
                             size_t m, char stop1, char stop2, int *stopped);

/**
 * @brief Chooses the 32-byte (AVX2) search when \p on and the CPU has it,
 *        else the portable one. The fastest available is chosen at start;
 *        tests use this to check both. Not thread-safe.
 * @returns whether the AVX2 search is now in use.
 */
int akv_memfind_use_avx2(int on);

#endif /* AKV_COMMON_MEMFIND_H */
