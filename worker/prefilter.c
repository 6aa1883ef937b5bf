/*
 * prefilter — can these bytes possibly be a token event?
 */
#include "prefilter.h"

#include <string.h>

/* Is "\"<s>\"" (the JSON string literal) somewhere in buf? */
static int has_literal(const char *buf, size_t len, const char *s)
{
    size_t n = strlen(s);
    const char *p = buf;
    const char *end = buf + len;

    while (p + n + 2 <= end) {
        const char *q = memchr(p, '"', (size_t)(end - p));

        if (!q || q + n + 2 > end) {
            return 0;
        }
        if (memcmp(q + 1, s, n) == 0 && q[n + 1] == '"') {
            return 1;
        }
        p = q + 1;
    }
    return 0;
}

/* Is \p s anywhere in buf? (memmem is not in C11 or POSIX.) */
static int contains(const char *buf, size_t len, const char *s)
{
    size_t n = strlen(s);
    const char *p = buf;
    const char *end = buf + len;

    while (p + n <= end) {
        const char *q = memchr(p, s[0], (size_t)(end - p));

        if (!q || q + n > end) {
            return 0;
        }
        if (memcmp(q, s, n) == 0) {
            return 1;
        }
        p = q + 1;
    }
    return 0;
}

static int has_any(const char *buf, size_t len, const struct akv_strlist *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (has_literal(buf, len, l->v[i])) {
            return 1;
        }
    }
    return 0;
}

int akv_prefilter_may_match(const struct akv_match_rules *rules,
                            const char *buf, size_t len)
{
    /* An escape can spell any action ("model\u005fcreated"). */
    if (memchr(buf, '\\', len)) {
        return 1;
    }
    if (has_any(buf, len, rules->sync_actions) ||
        has_any(buf, len, rules->delete_actions)) {
        return 1;
    }
    /* What the matcher calls poison when it does not parse. */
    return contains(buf, len, "authentik_core") && contains(buf, len, "token");
}
