/*
 * jscan — a validating single pass over a JSON object, allocation free.
 *
 * The grammar is cJSON 1.7's as cJSON_ParseWithLength() applies it:
 * whitespace is any byte up to the space; values are tried in cJSON's
 * order (null, false, true, string, number, array, object); a number is
 * the longest prefix strtod() accepts of at most 63 characters from
 * [0-9+-.eE], with '.' as the locale's decimal point; bytes after the root
 * value are ignored. Without escapes a string ends at the next quote and
 * its value is its raw bytes, which is why escapes and NUL bytes (which
 * end cJSON's C strings early) are left to cJSON.
 */
#include "jscan.h"

#include <locale.h>
#include <stdlib.h>
#include <string.h>

/* cJSON allows 1000 levels; events need a handful. */
#define MAX_DEPTH 64
#define NONE      (-2) /* a value no query is about */

struct scan {
    const char *p;
    const char *end;
    const struct akv_jscan_query *q;
    int nq;
    struct akv_jscan_value *out;
    int depth;
};

static int value(struct scan *s, int node);

static void skip_ws(struct scan *s)
{
    while (s->p < s->end && (unsigned char)*s->p <= ' ') {
        s->p++;
    }
}

static int at(const struct scan *s, char c)
{
    return s->p < s->end && *s->p == c;
}

/* At a quote: the characters up to the next one. */
static int string(struct scan *s, const char **start, size_t *n)
{
    const char *close = memchr(s->p + 1, '"', (size_t)(s->end - s->p - 1));

    if (!close) {
        return -1;
    }
    *start = s->p + 1;
    *n = (size_t)(close - *start);
    s->p = close + 1;
    return 0;
}

static int number(struct scan *s)
{
    char tmp[64];
    char *after;
    size_t i;

    for (i = 0; i < sizeof(tmp) - 1 && s->p + i < s->end; i++) {
        char c = s->p[i];

        if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == 'e' ||
            c == 'E') {
            tmp[i] = c;
        } else if (c == '.') {
            tmp[i] = localeconv()->decimal_point[0];
        } else {
            break;
        }
    }
    tmp[i] = '\0';
    (void)strtod(tmp, &after);
    if (after == tmp) {
        return -1;
    }
    s->p += after - tmp;
    return 0;
}

/* The query for member \p key of the object of query \p node, unless an
 * earlier member had that key (lookups find the first). */
static int child(const struct scan *s, int node, const char *key, size_t n)
{
    int i;

    for (i = 0; i < s->nq; i++) {
        if (s->q[i].parent == node && s->out[i].type == AKV_JSCAN_ABSENT &&
            strncmp(s->q[i].key, key, n) == 0 && s->q[i].key[n] == '\0') {
            return i;
        }
    }
    return NONE;
}

static int object(struct scan *s, int node)
{
    if (++s->depth > MAX_DEPTH) {
        return -1;
    }
    s->p++;
    skip_ws(s);
    if (at(s, '}')) {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        const char *key;
        size_t n;
        int member = NONE;

        skip_ws(s);
        if (!at(s, '"') || string(s, &key, &n) < 0) {
            return -1;
        }
        if (node != NONE) {
            member = child(s, node, key, n);
        }
        skip_ws(s);
        if (!at(s, ':')) {
            return -1;
        }
        s->p++;
        skip_ws(s);
        if (value(s, member) < 0) {
            return -1;
        }
        skip_ws(s);
        if (at(s, ',')) {
            s->p++;
            continue;
        }
        if (!at(s, '}')) {
            return -1;
        }
        s->p++;
        s->depth--;
        return 0;
    }
}

static int array(struct scan *s)
{
    if (++s->depth > MAX_DEPTH) {
        return -1;
    }
    s->p++;
    skip_ws(s);
    if (at(s, ']')) {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        skip_ws(s);
        if (value(s, NONE) < 0) {
            return -1;
        }
        skip_ws(s);
        if (at(s, ',')) {
            s->p++;
            continue;
        }
        if (!at(s, ']')) {
            return -1;
        }
        s->p++;
        s->depth--;
        return 0;
    }
}

static int literal(struct scan *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) >= n && memcmp(s->p, word, n) == 0) {
        s->p += n;
        return 1;
    }
    return 0;
}

/* One value; recorded in out[node] when a query is about it. */
static int value(struct scan *s, int node)
{
    const char *start = s->p;
    enum akv_jscan_type type = AKV_JSCAN_OTHER;
    int rc = 0;

    if (s->p >= s->end) {
        return -1;
    }
    if (literal(s, "null", 4) || literal(s, "false", 5) ||
        literal(s, "true", 4)) {
        /* done */
    } else if (*s->p == '"') {
        const char *str;
        size_t n;

        rc = string(s, &str, &n);
        if (rc == 0 && node >= 0) {
            s->out[node].type = AKV_JSCAN_STRING;
            s->out[node].p = str;
            s->out[node].n = n;
        }
        return rc;
    } else if (*s->p == '-' || (*s->p >= '0' && *s->p <= '9')) {
        rc = number(s);
    } else if (*s->p == '[') {
        rc = array(s);
    } else if (*s->p == '{') {
        type = AKV_JSCAN_OBJECT;
        rc = object(s, node);
    } else {
        return -1;
    }
    if (rc == 0 && node >= 0) {
        s->out[node].type = type;
        s->out[node].p = start;
        s->out[node].n = (size_t)(s->p - start);
    }
    return rc;
}

int akv_jscan(const char *buf, size_t len,
              const struct akv_jscan_query *queries, int nqueries,
              struct akv_jscan_value *out)
{
    struct scan s;
    int i;

    if (!buf || len == 0 || nqueries < 0 || nqueries > 64 ||
        memchr(buf, '\\', len) || memchr(buf, '\0', len)) {
        return -1;
    }
    for (i = 0; i < nqueries; i++) {
        out[i].type = AKV_JSCAN_ABSENT;
        out[i].p = NULL;
        out[i].n = 0;
    }
    s.p = buf;
    s.end = buf + len;
    s.q = queries;
    s.nq = nqueries;
    s.out = out;
    s.depth = 0;
    /* cJSON skips a byte order mark when more than four bytes follow */
    if (len > 4 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0) {
        s.p += 3;
    }
    skip_ws(&s);
    if (!at(&s, '{')) {
        return -1;
    }
    return object(&s, AKV_JSCAN_ROOT);
}
