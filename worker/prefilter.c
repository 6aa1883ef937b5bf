/*
 * prefilter — can these bytes possibly be a token event?
 *
 * Three sublinear or vectorised scans per event, no allocation: a backslash
 * (any escape could hide an action), the "action" members, and for the
 * rest the two words that make undecodable bytes poison.
 */
#define _GNU_SOURCE /* memmem() */
#include "prefilter.h"

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
 * Where \p needle (at least 3 bytes) first occurs in \p hay. Sixteen
 * positions at a time are tested for the needle's first two and last
 * bytes; the few that have all three are compared in full. On these short
 * haystacks it is several times faster than memmem(), which was most of
 * the prefilter's time.
 */
static const char *find(const char *hay, size_t n, const char *needle, size_t m)
{
    const __m128i first = _mm_set1_epi8(needle[0]);
    const __m128i second = _mm_set1_epi8(needle[1]);
    const __m128i last = _mm_set1_epi8(needle[m - 1]);
    size_t i = 0;

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
static const char *find(const char *hay, size_t n, const char *needle, size_t m)
{
    return memmem(hay, n, needle, m);
}
#endif

/* JSON whitespace as the parser skips it: every byte up to the space. */
static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= ' ') {
        p++;
    }
    return p;
}

static int listed(const struct akv_strlist *l, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (strlen(l->v[i]) == n && memcmp(l->v[i], s, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/*
 * Does some "action" member, at any depth, have a configured action as its
 * string value? Without escapes a member is spelt exactly
 * "action" <ws> : <ws> "value", so this sees every one the parser would.
 */
static int has_wanted_action(const struct akv_match_rules *rules,
                             const char *buf, size_t len)
{
    static const char key[] = "\"action\"";
    const char *end = buf + len;
    const char *p = buf;

    for (;;) {
        const char *v;
        const char *q;

        p = find(p, (size_t)(end - p), key, sizeof(key) - 1);
        if (!p) {
            return 0;
        }
        p += sizeof(key) - 1;
        v = skip_ws(p, end);
        if (v == end || *v != ':') {
            continue;
        }
        v = skip_ws(v + 1, end);
        if (v == end || *v != '"') {
            continue;
        }
        v++;
        q = memchr(v, '"', (size_t)(end - v));
        if (!q) {
            return 0;
        }
        if (listed(rules->sync_actions, v, (size_t)(q - v)) ||
            listed(rules->delete_actions, v, (size_t)(q - v))) {
            return 1;
        }
    }
}

int akv_prefilter_may_match(const struct akv_match_rules *rules,
                            const char *buf, size_t len)
{
    if (memchr(buf, '\\', len)) {
        return 1;
    }
    if (has_wanted_action(rules, buf, len)) {
        return 1;
    }
    /* What the matcher calls poison when it does not parse. */
    return find(buf, len, "authentik_core", 14) != NULL &&
           find(buf, len, "token", 5) != NULL;
}
