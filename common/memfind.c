/*
 * memfind — where a short needle first occurs in a short haystack.
 */
#define _GNU_SOURCE /* memmem() */
#include "memfind.h"

#include <string.h>

#if defined(__SSE2__) && defined(__GNUC__)
#include <emmintrin.h>

/* Bytes \p a and \p b equal for \p n bytes (short: no call). */
static int same(const char *a, const char *b, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            return 0;
        }
    }
    return 1;
}

/*
 * Sixteen positions at a time are tested for the needle's first two and
 * last bytes; the few that have all three are compared in full. On
 * haystacks of a few hundred bytes this is several times faster than
 * memmem().
 */
const char *akv_memfind(const char *hay, size_t n, const char *needle, size_t m)
{
    __m128i first;
    __m128i second;
    __m128i last;
    size_t i = 0;

    if (m < 3) {
        return memmem(hay, n, needle, m);
    }
    first = _mm_set1_epi8(needle[0]);
    second = _mm_set1_epi8(needle[1]);
    last = _mm_set1_epi8(needle[m - 1]);
    for (; i + m - 1 + 16 <= n; i += 16) {
        const char *h = hay + i;
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)h);
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(h + 1));
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(h + m - 1));
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_and_si128(
            _mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, second)),
            _mm_cmpeq_epi8(c, last)));

        while (mask) {
            size_t at = (size_t)__builtin_ctz(mask);

            if (same(h + at + 2, needle + 2, m - 3)) {
                return h + at;
            }
            mask &= mask - 1;
        }
    }
    for (; i + m <= n; i++) {
        if (same(hay + i, needle, m)) {
            return hay + i;
        }
    }
    return NULL;
}

#else

const char *akv_memfind(const char *hay, size_t n, const char *needle, size_t m)
{
    return memmem(hay, n, needle, m);
}

#endif
