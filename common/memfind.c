/*
 * memfind — where a short needle first occurs in a short haystack.
 *
 * Several positions at a time are tested for the needle's first two and
 * last bytes (and, for akv_memfind_stop(), for the stop bytes); the few
 * that have all three are compared in full. On haystacks of a few hundred
 * bytes this is several times faster than memmem(). x86-64 always has the
 * 16-byte (SSE2) form; the 32-byte (AVX2) one is chosen at start when the
 * CPU has it.
 */
#define _GNU_SOURCE /* memmem() */
#include "memfind.h"

#include <string.h>

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

/* Byte by byte from position \p i: the tail of the vector loops, and
 * needles too short for them. */
static const char *bytewise(const char *hay, size_t n, size_t i,
                            const char *needle, size_t m, int stops, char stop1,
                            char stop2, int *stopped)
{
    for (; i < n; i++) {
        if (stops && (hay[i] == stop1 || hay[i] == stop2)) {
            *stopped = 1;
            return hay + i;
        }
        if (i + m <= n && same(hay + i, needle, m)) {
            return hay + i;
        }
    }
    return NULL;
}

typedef const char *find_fn(const char *hay, size_t n, const char *needle,
                            size_t m, int stops, char stop1, char stop2,
                            int *stopped);

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

/*
 * The vector searches test windows of 16 or 32 positions: bit k of a mask
 * stands for position h + k. \p hit has the positions where the needle's
 * first two and last bytes are, \p stop those holding a stop byte. The
 * first stop byte or whole needle among the bits of \p keep, or NULL.
 */
static const char *first_of(const char *h, unsigned hit, unsigned stop,
                            unsigned keep, const char *needle, size_t m,
                            int *stopped)
{
    unsigned mask = (hit | stop) & keep;

    while (mask) {
        unsigned at = (unsigned)__builtin_ctz(mask);

        if (stop & (1u << at)) {
            *stopped = 1;
            return h + at;
        }
        if (same(h + at + 2, needle + 2, m - 3)) {
            return h + at;
        }
        mask &= mask - 1;
    }
    return NULL;
}

/*
 * The windows start every \p w positions; the last one is moved back to
 * end where the needle can last start (its bits already seen are not
 * kept), and the needle's last m - 1 bytes, which start no needle, are
 * looked at for stop bytes only. So every byte is read in vectors: a
 * bytewise tail cost as much as the rest on haystacks of a few hundred.
 * Needs 3 <= m <= w and n >= m - 1 + w.
 */
#define WINDOWS(w, window)                                                     \
    do {                                                                       \
        const size_t end = n - (m - 1) - (w);                                  \
        size_t i = 0;                                                          \
        const char *r;                                                         \
                                                                               \
        for (;;) {                                                             \
            size_t at = i < end ? i : end;                                     \
            window(hay + at, 0);                                               \
            r = (hit | stop) ? first_of(hay + at, hit, stop, ~0u << (i - at),  \
                                        needle, m, stopped)                    \
                             : NULL;                                           \
            if (r || at == end) {                                              \
                break;                                                         \
            }                                                                  \
            i += (w);                                                          \
        }                                                                      \
        if (!r && stops) {                                                     \
            window(hay + n - (w), 1);                                          \
            r = first_of(hay + n - (w), 0, stop, ~0u << ((w)-m + 1), needle,   \
                         m, stopped);                                          \
        }                                                                      \
        return r;                                                              \
    } while (0)

static const char *find16(const char *hay, size_t n, const char *needle,
                          size_t m, int stops, char stop1, char stop2,
                          int *stopped)
{
    const __m128i first = _mm_set1_epi8(needle[0]);
    const __m128i second = _mm_set1_epi8(needle[1]);
    const __m128i last = _mm_set1_epi8(needle[m - 1]);
    const __m128i x1 = _mm_set1_epi8(stop1);
    const __m128i x2 = _mm_set1_epi8(stop2);
    unsigned hit = 0;
    unsigned stop = 0;

    if (m > 16 || n < m - 1 + 16) {
        return bytewise(hay, n, 0, needle, m, stops, stop1, stop2, stopped);
    }
#define WINDOW16(h, stops_only)                                                \
    do {                                                                       \
        __m128i a_ = _mm_loadu_si128((const __m128i *)(const void *)(h));      \
        stop = stops ? (unsigned)_mm_movemask_epi8(_mm_or_si128(               \
                           _mm_cmpeq_epi8(a_, x1), _mm_cmpeq_epi8(a_, x2)))    \
                     : 0;                                                      \
        if (!(stops_only)) {                                                   \
            __m128i b_ =                                                       \
                _mm_loadu_si128((const __m128i *)(const void *)((h) + 1));     \
            __m128i c_ =                                                       \
                _mm_loadu_si128((const __m128i *)(const void *)((h) + m - 1)); \
            hit = (unsigned)_mm_movemask_epi8(                                 \
                _mm_and_si128(_mm_and_si128(_mm_cmpeq_epi8(a_, first),         \
                                            _mm_cmpeq_epi8(b_, second)),       \
                              _mm_cmpeq_epi8(c_, last)));                      \
        }                                                                      \
    } while (0)
    WINDOWS(16, WINDOW16);
#undef WINDOW16
}

__attribute__((target("avx2"))) static const char *
find32(const char *hay, size_t n, const char *needle, size_t m, int stops,
       char stop1, char stop2, int *stopped)
{
    const __m256i first = _mm256_set1_epi8(needle[0]);
    const __m256i second = _mm256_set1_epi8(needle[1]);
    const __m256i last = _mm256_set1_epi8(needle[m - 1]);
    const __m256i x1 = _mm256_set1_epi8(stop1);
    const __m256i x2 = _mm256_set1_epi8(stop2);
    unsigned hit = 0;
    unsigned stop = 0;

    if (m > 32 || n < m - 1 + 32) {
        return find16(hay, n, needle, m, stops, stop1, stop2, stopped);
    }
#define WINDOW32(h, stops_only)                                                \
    do {                                                                       \
        __m256i a_ = _mm256_loadu_si256((const __m256i *)(const void *)(h));   \
        stop =                                                                 \
            stops ? (unsigned)_mm256_movemask_epi8(_mm256_or_si256(            \
                        _mm256_cmpeq_epi8(a_, x1), _mm256_cmpeq_epi8(a_, x2))) \
                  : 0;                                                         \
        if (!(stops_only)) {                                                   \
            __m256i b_ =                                                       \
                _mm256_loadu_si256((const __m256i *)(const void *)((h) + 1));  \
            __m256i c_ = _mm256_loadu_si256(                                   \
                (const __m256i *)(const void *)((h) + m - 1));                 \
            hit = (unsigned)_mm256_movemask_epi8(_mm256_and_si256(             \
                _mm256_and_si256(_mm256_cmpeq_epi8(a_, first),                 \
                                 _mm256_cmpeq_epi8(b_, second)),               \
                _mm256_cmpeq_epi8(c_, last)));                                 \
        }                                                                      \
    } while (0)
    WINDOWS(32, WINDOW32);
#undef WINDOW32
}

static find_fn *find = find16;

int akv_memfind_use_avx2(int on)
{
    __builtin_cpu_init();
    find = on && __builtin_cpu_supports("avx2") ? find32 : find16;
    return find == find32;
}

__attribute__((constructor)) static void choose(void)
{
    akv_memfind_use_avx2(1);
}

#else

static const char *portable(const char *hay, size_t n, const char *needle,
                            size_t m, int stops, char stop1, char stop2,
                            int *stopped)
{
    if (!stops) {
        return memmem(hay, n, needle, m);
    }
    return bytewise(hay, n, 0, needle, m, stops, stop1, stop2, stopped);
}

static find_fn *find = portable;

int akv_memfind_use_avx2(int on)
{
    (void)on;
    return 0;
}

#endif

const char *akv_memfind(const char *hay, size_t n, const char *needle, size_t m)
{
    if (m < 3) {
        return memmem(hay, n, needle, m);
    }
    /* Without stop bytes nothing is stopped: no flag to set. */
    return find(hay, n, needle, m, 0, 0, 0, NULL);
}

const char *akv_memfind_stop(const char *hay, size_t n, const char *needle,
                             size_t m, char stop1, char stop2, int *stopped)
{
    *stopped = 0;
    if (m < 3) {
        return bytewise(hay, n, 0, needle, m, 1, stop1, stop2, stopped);
    }
    return find(hay, n, needle, m, 1, stop1, stop2, stopped);
}
