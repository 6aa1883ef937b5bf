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

        p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1);
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
    return memmem(buf, len, "authentik_core", 14) != NULL &&
           memmem(buf, len, "token", 5) != NULL;
}
