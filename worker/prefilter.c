/*
 * prefilter — can these bytes possibly be a token event?
 *
 * A few vectorised scans per event, no allocation: a backslash or a NUL
 * (either could hide an action from a byte comparison), the "action"
 * members, and for the rest the two words that make undecodable bytes
 * poison (akv_match_mentions_token()).
 */
#include "prefilter.h"

#include "memfind.h"

#include <string.h>

/* JSON whitespace as the parser skips it: every byte up to the space. */
static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= ' ') {
        p++;
    }
    return p;
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

        p = akv_memfind(p, (size_t)(end - p), key, sizeof(key) - 1);
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
        if (akv_strlist_contains_n(rules->sync_actions, v, (size_t)(q - v)) ||
            akv_strlist_contains_n(rules->delete_actions, v, (size_t)(q - v))) {
            return 1;
        }
    }
}

int akv_prefilter_may_match(const struct akv_match_rules *rules,
                            const char *buf, size_t len)
{
    /* An escape can spell any action ("model\u005fcreated"), and a NUL
     * ends the string the matcher compares ("model_created\0..."). */
    if (memchr(buf, '\\', len) || memchr(buf, '\0', len)) {
        return 1;
    }
    if (has_wanted_action(rules, buf, len)) {
        return 1;
    }
    /* What the matcher calls poison when it does not parse. */
    return akv_match_mentions_token(buf, len);
}
