/*
 * prefilter — can these bytes possibly be a token event?
 *
 * Vectorised scans per event, no allocation: one pass for the "action"
 * members and for a backslash or a NUL (either could hide an action from a
 * byte comparison), and for the rest the two words that make undecodable
 * bytes poison (akv_match_mentions_token()).
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
 * string value, or do the bytes hold a backslash or a NUL (an escape can
 * spell any action, "model\u005fcreated", and a NUL ends the string the
 * matcher compares, "model_created\0...")? One pass over the bytes: 0
 * only when every byte was seen and none of that was found. Without
 * escapes a member is spelt exactly "action" <ws> : <ws> "value", so this
 * sees every one the parser would.
 */
static int action_or_escape(const struct akv_match_rules *rules,
                            const char *buf, size_t len)
{
    static const char key[] = "\"action\"";
    const char *end = buf + len;
    const char *p = buf;

    for (;;) {
        const char *v;
        const char *q;
        int stopped;

        p = akv_memfind_stop(p, (size_t)(end - p), key, sizeof(key) - 1, '\\',
                             '\0', &stopped);
        if (!p) {
            return 0;
        }
        if (stopped) {
            return 1;
        }
        /* The search goes on right after the key, so the bytes of the
         * value are watched for escapes too. */
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
        if (q &&
            (akv_strlist_contains_n(rules->sync_actions, v, (size_t)(q - v)) ||
             akv_strlist_contains_n(rules->delete_actions, v,
                                    (size_t)(q - v)))) {
            return 1;
        }
    }
}

int akv_prefilter_may_match(const struct akv_match_rules *rules,
                            const char *buf, size_t len)
{
    if (action_or_escape(rules, buf, len)) {
        return 1;
    }
    /* What the matcher calls poison when it does not parse. */
    return akv_match_mentions_token(buf, len);
}
