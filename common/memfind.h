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

#endif /* AKV_COMMON_MEMFIND_H */
