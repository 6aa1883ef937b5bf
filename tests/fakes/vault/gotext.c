/*
 * gotext — text the way Vault's Go code writes it: JSON strings and values
 * as encoding/json encodes them (sorted map keys, "<>&" escaped, numbers
 * as float64), strconv.Quote, %v of a decoded value, strutil.Printable,
 * RFC 3339 times and durations. Answers built with these match Vault's to
 * the byte.
 */
#include "fv.h"

#include "utf8.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* @returns the text built in \p b, or "out of memory" when that failed. */
const char *fv_text(const struct akv_buf *b)
{
    return b->err != AKV_OK ? "out of memory" : akv_buf_str(b);
}

static const char hexdig[] = "0123456789abcdef";

/*
 * Decodes the UTF-8 sequence at \p s (NUL-terminated) the way Go's
 * utf8.DecodeRune does: what is valid is common/utf8's to say.
 * @returns its length, or 0 for an invalid byte (which Go reads as U+FFFD
 *          with width 1).
 */
static size_t utf8_decode(const unsigned char *s, uint32_t *out)
{
    static const unsigned char lead_bits[] = {0, 0x7f, 0x1f, 0x0f, 0x07};
    size_t w = akv_utf8_seq(s);
    uint32_t r;
    size_t i;

    if (w == 0) {
        return 0;
    }
    r = s[0] & lead_bits[w];
    for (i = 1; i < w; i++) {
        r = (r << 6) | (s[i] & 0x3f);
    }
    *out = r;
    return w;
}

/*
 * Approximates Go's unicode.IsPrint: controls, non-ASCII spaces, format
 * characters, separators, private use and non-characters are not printable.
 * Unassigned code points, which Go also rejects, are let through.
 */
static int rune_printable(uint32_t r)
{
    if (r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0xa0) || r == 0xad) {
        return 0;
    }
    if (r == 0x61c || r == 0x1680 || r == 0x180e ||
        (r >= 0x2000 && r <= 0x200f) || (r >= 0x2028 && r <= 0x202f) ||
        (r >= 0x205f && r <= 0x206f) || r == 0x3000 || r == 0xfeff) {
        return 0;
    }
    if ((r >= 0xe000 && r <= 0xf8ff) || (r >= 0xfff9 && r <= 0xfffb) ||
        r == 0xfffe || r == 0xffff || r >= 0xf0000) {
        return 0;
    }
    return 1;
}

/* Go's strutil.Printable: invalid bytes decode to U+FFFD, which prints. */
int fv_printable(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    while (u[i]) {
        uint32_t r;
        size_t w = utf8_decode(u + i, &r);

        if (w == 0) {
            i++;
            continue;
        }
        if (!rune_printable(r)) {
            return 0;
        }
        i += w;
    }
    return 1;
}

/* The escape JSON and Go's strconv.Quote both write for \p c, or NULL. */
static const char *short_escape(uint32_t c)
{
    switch (c) {
    case '\b':
        return "\\b";
    case '\f':
        return "\\f";
    case '\n':
        return "\\n";
    case '\r':
        return "\\r";
    case '\t':
        return "\\t";
    default:
        return NULL;
    }
}

/*
 * Writes a JSON string the way Go's encoding/json does: "<", ">" and "&"
 * become \u003c..., U+2028/U+2029 are escaped, invalid UTF-8 becomes \ufffd.
 */
void fv_json_str(struct akv_buf *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    akv_buf_putc(b, '"');
    while (u[i]) {
        unsigned char c = u[i];
        uint32_t r;
        size_t w;

        if (c < 0x80) {
            size_t start = i;

            /* copy runs that need no escaping in one go */
            while (u[i] >= 0x20 && u[i] < 0x80 && u[i] != '"' && u[i] != '\\' &&
                   u[i] != '<' && u[i] != '>' && u[i] != '&') {
                i++;
            }
            if (i > start) {
                akv_buf_append(b, s + start, i - start);
                continue;
            }
            if (c == '"' || c == '\\') {
                akv_buf_putc(b, '\\');
                akv_buf_putc(b, (char)c);
            } else if (short_escape(c)) {
                akv_buf_puts(b, short_escape(c));
            } else {
                char e[6] = {'\\',           'u',           '0', '0',
                             hexdig[c >> 4], hexdig[c & 15]};

                akv_buf_append(b, e, sizeof(e));
            }
            i++;
            continue;
        }
        w = utf8_decode(u + i, &r);
        if (w == 0) {
            akv_buf_puts(b, "\\ufffd");
            i++;
            continue;
        }
        if (r == 0x2028 || r == 0x2029) {
            akv_buf_puts(b, r == 0x2028 ? "\\u2028" : "\\u2029");
        } else {
            akv_buf_append(b, s + i, w);
        }
        i += w;
    }
    akv_buf_putc(b, '"');
}

/* Go's strconv.Quote (the %q verb), for error texts that quote user input. */
void fv_go_quote(struct akv_buf *b, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    akv_buf_putc(b, '"');
    while (u[i]) {
        uint32_t r;
        size_t w = utf8_decode(u + i, &r);

        if (w == 0) {
            akv_buf_printf(b, "\\x%02x", u[i]);
            i++;
            continue;
        }
        if (r == '"' || r == '\\') {
            akv_buf_putc(b, '\\');
            akv_buf_putc(b, (char)r);
        } else if (rune_printable(r)) {
            akv_buf_append(b, s + i, w);
        } else if (short_escape(r)) {
            akv_buf_puts(b, short_escape(r));
        } else if (r == '\a' || r == '\v') {
            akv_buf_puts(b, r == '\a' ? "\\a" : "\\v");
        } else if (r < 0x80) {
            akv_buf_printf(b, "\\x%02x", (unsigned)r);
        } else if (r < 0x10000) {
            akv_buf_printf(b, "\\u%04x", (unsigned)r);
        } else {
            akv_buf_printf(b, "\\U%08x", (unsigned)r);
        }
        i += w;
    }
    akv_buf_putc(b, '"');
}

/*
 * Writes a float64 the way Go's encoding/json does: the shortest digits that
 * read back to the same value, in %f form unless tiny or huge. Vault reads
 * stored secret data back into float64s, so this is what it returns.
 */
void fv_go_float(struct akv_buf *b, double f)
{
    char buf[48];
    char digits[24];
    double a = f < 0 ? -f : f;
    const char *p;
    int prec;
    int nd = 0;
    int exp10;

    if (!isfinite(f)) {
        akv_buf_puts(b, "null");
        return;
    }
    if (f == 0) {
        akv_buf_puts(b, signbit(f) ? "-0" : "0");
        return;
    }
    for (prec = 0; prec < 17; prec++) {
        snprintf(buf, sizeof(buf), "%.*e", prec, f);
        if (strtod(buf, NULL) == f) {
            break;
        }
    }
    p = buf;
    if (*p == '-') {
        akv_buf_putc(b, '-');
        p++;
    }
    while (*p && *p != 'e' && nd < (int)sizeof(digits) - 1) {
        if (*p != '.') {
            digits[nd++] = *p;
        }
        p++;
    }
    while (nd > 1 && digits[nd - 1] == '0') {
        nd--;
    }
    exp10 = *p == 'e' ? (int)strtol(p + 1, NULL, 10) : 0;
    if (a < 1e-6 || a >= 1e21) {
        akv_buf_putc(b, digits[0]);
        if (nd > 1) {
            akv_buf_putc(b, '.');
            akv_buf_append(b, digits + 1, (size_t)nd - 1);
        }
        /* Go pads the exponent to two digits, then trims "e-07" to "e-7" */
        if (exp10 < 0) {
            akv_buf_printf(b, "e-%d", -exp10);
        } else {
            akv_buf_printf(b, "e+%02d", exp10);
        }
        return;
    }
    if (exp10 < 0) {
        akv_buf_puts(b, "0.");
        for (prec = exp10 + 1; prec < 0; prec++) {
            akv_buf_putc(b, '0');
        }
        akv_buf_append(b, digits, (size_t)nd);
    } else if (exp10 + 1 >= nd) {
        akv_buf_append(b, digits, (size_t)nd);
        for (prec = nd; prec < exp10 + 1; prec++) {
            akv_buf_putc(b, '0');
        }
    } else {
        akv_buf_append(b, digits, (size_t)exp10 + 1);
        akv_buf_putc(b, '.');
        akv_buf_append(b, digits + exp10 + 1, (size_t)(nd - exp10 - 1));
    }
}

static int cmp_member(const void *a, const void *b)
{
    const struct fv_member *x = a;
    const struct fv_member *y = b;
    int c = strcmp(x->item->string, y->item->string);

    if (c != 0) {
        return c;
    }
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/*
 * Collects an object's members sorted by key (byte order, as Go sorts map
 * keys). Duplicates are dropped keeping the last, as Go's decoder does.
 * @returns the count, or (size_t)-1 on OOM; *out must be freed.
 */
size_t fv_sorted_members(const cJSON *obj, struct fv_member **out)
{
    const cJSON *c;
    struct fv_member *m;
    size_t n = 0;
    size_t i;
    size_t k = 0;

    *out = NULL;
    for (c = obj->child; c; c = c->next) {
        n++;
    }
    if (n == 0) {
        return 0;
    }
    m = malloc(n * sizeof(*m));
    if (!m) {
        return (size_t)-1;
    }
    i = 0;
    for (c = obj->child; c; c = c->next) {
        m[i].item = c;
        m[i].idx = i;
        i++;
    }
    qsort(m, n, sizeof(*m), cmp_member);
    for (i = 0; i < n; i++) {
        if (i + 1 < n &&
            strcmp(m[i].item->string, m[i + 1].item->string) == 0) {
            continue;
        }
        m[k++] = m[i];
    }
    *out = m;
    return k;
}

/* How a map and a slice are written: as encoding/json does, or as Go's %v
 * does. */
struct go_style {
    const char *map_open; /* "{" or "map[" */
    char map_close;
    char sep;       /* between members and between items */
    int quote_keys; /* keys as JSON strings */
    void (*put)(struct akv_buf *b, const cJSON *v);
};

static const struct go_style json_style = {"{", '}', ',', 1, fv_go_json};
static const struct go_style value_style = {"map[", ']', ' ', 0, fv_go_value};

/* An object, its members sorted by key as Go sorts map keys. */
static void put_map(struct akv_buf *b, const cJSON *v,
                    const struct go_style *st)
{
    struct fv_member *m;
    size_t n = fv_sorted_members(v, &m);
    size_t i;

    if (n == (size_t)-1) {
        b->err = AKV_ERR_NOMEM;
        return;
    }
    akv_buf_puts(b, st->map_open);
    for (i = 0; i < n; i++) {
        if (i > 0) {
            akv_buf_putc(b, st->sep);
        }
        if (st->quote_keys) {
            fv_json_str(b, m[i].item->string);
        } else {
            akv_buf_puts(b, m[i].item->string);
        }
        akv_buf_putc(b, ':');
        st->put(b, m[i].item);
    }
    akv_buf_putc(b, st->map_close);
    free(m);
}

static void put_list(struct akv_buf *b, const cJSON *v,
                     const struct go_style *st)
{
    const cJSON *c;

    akv_buf_putc(b, '[');
    for (c = v->child; c; c = c->next) {
        if (c != v->child) {
            akv_buf_putc(b, st->sep);
        }
        st->put(b, c);
    }
    akv_buf_putc(b, ']');
}

/* Re-encodes a parsed JSON value exactly as Vault would return it. */
void fv_go_json(struct akv_buf *b, const cJSON *v)
{
    if (cJSON_IsObject(v)) {
        put_map(b, v, &json_style);
    } else if (cJSON_IsArray(v)) {
        put_list(b, v, &json_style);
    } else if (cJSON_IsString(v)) {
        fv_json_str(b, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        fv_go_float(b, v->valuedouble);
    } else if (cJSON_IsTrue(v)) {
        akv_buf_puts(b, "true");
    } else if (cJSON_IsFalse(v)) {
        akv_buf_puts(b, "false");
    } else {
        akv_buf_puts(b, "null");
    }
}

/* Go's %v of a decoded JSON value, for "error converting input" texts. */
void fv_go_value(struct akv_buf *b, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        akv_buf_puts(b, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        fv_go_float(b, v->valuedouble);
    } else if (cJSON_IsBool(v)) {
        akv_buf_puts(b, cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsArray(v)) {
        put_list(b, v, &value_style);
    } else if (cJSON_IsObject(v)) {
        put_map(b, v, &value_style);
    } else {
        akv_buf_puts(b, "<nil>");
    }
}

/* The reflect kind mapstructure names; JSON numbers are json.Number. */
const char *fv_go_kind(const cJSON *v)
{
    if (cJSON_IsString(v) || cJSON_IsNumber(v)) {
        return "string";
    }
    if (cJSON_IsBool(v)) {
        return "bool";
    }
    if (cJSON_IsArray(v)) {
        return "slice";
    }
    if (cJSON_IsObject(v)) {
        return "map";
    }
    return "invalid";
}

/* @returns the date \p secs seconds after \p t, INT64_MAX at the most (a
 *          date in 2262: a delete_version_after of centuries stays one). */
int64_t fv_ns_after(int64_t t, int64_t secs)
{
    if (secs > (INT64_MAX - t) / NS_PER_SEC) {
        return INT64_MAX;
    }
    return t + secs * NS_PER_SEC;
}

/* Go's time.RFC3339Nano in UTC: trailing zeros of the fraction dropped. */
static void fmt_rfc3339(char *out, size_t size, int64_t t)
{
    struct tm tm;
    time_t sec = (time_t)(t / NS_PER_SEC);
    long nsec = (long)(t % NS_PER_SEC);
    char frac[16] = "";
    size_t n;

    gmtime_r(&sec, &tm);
    if (nsec != 0) {
        snprintf(frac, sizeof(frac), ".%09ld", nsec);
        n = strlen(frac);
        while (n > 1 && frac[n - 1] == '0') {
            frac[--n] = '\0';
        }
    }
    snprintf(out, size, "%04d-%02d-%02dT%02d:%02d:%02d%sZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

/* A quoted RFC 3339 time, or "" when unset (ptypesTimestampToString). */
void fv_time(struct akv_buf *b, int64_t t)
{
    char buf[64];

    if (t == 0) {
        akv_buf_puts(b, "\"\"");
        return;
    }
    fmt_rfc3339(buf, sizeof(buf), t);
    akv_buf_putc(b, '"');
    akv_buf_puts(b, buf);
    akv_buf_putc(b, '"');
}

/* Go's time.Duration.String for whole seconds: "0s", "45s", "1h0m0s". */
void fv_fmt_duration(char *out, size_t size, int64_t secs)
{
    const char *sign = secs < 0 ? "-" : "";
    uint64_t s = secs < 0 ? (uint64_t)0 - (uint64_t)secs : (uint64_t)secs;

    if (s >= 3600) {
        snprintf(out, size, "%s%" PRIu64 "h%" PRIu64 "m%" PRIu64 "s", sign,
                 s / 3600, s % 3600 / 60, s % 60);
    } else if (s >= 60) {
        snprintf(out, size, "%s%" PRIu64 "m%" PRIu64 "s", sign, s / 60, s % 60);
    } else {
        snprintf(out, size, "%s%" PRIu64 "s", sign, s);
    }
}

/* Vault's humanized duration (TTL warnings): Go's Duration.String
 * without zero minutes or seconds: "24h" for 24h0m0s, "25h1s" for
 * 25h0m1s, "1m" for 1m0s. */
void fv_human_duration(char *out, size_t size, int64_t secs)
{
    size_t n;
    char *h0m;

    fv_fmt_duration(out, size, secs);
    n = strlen(out);
    if (n > 3 && strcmp(out + n - 3, "m0s") == 0) {
        out[n - 2] = '\0';
    }
    h0m = strstr(out, "h0m");
    if (h0m) {
        memmove(h0m + 1, h0m + 3, strlen(h0m + 3) + 1);
    }
}

/* Go's url.QueryEscape: unreserved bytes as they are, ' ' as '+', every
 * other byte as %XX. */
void fv_url_escape(struct akv_buf *b, const char *s)
{
    static const char hexup[] = "0123456789ABCDEF";
    const unsigned char *u = (const unsigned char *)s;

    for (; *u; u++) {
        if ((*u >= 'a' && *u <= 'z') || (*u >= 'A' && *u <= 'Z') ||
            (*u >= '0' && *u <= '9') || *u == '-' || *u == '_' || *u == '.' ||
            *u == '~') {
            akv_buf_putc(b, (char)*u);
        } else if (*u == ' ') {
            akv_buf_putc(b, '+');
        } else {
            akv_buf_putc(b, '%');
            akv_buf_putc(b, hexup[*u >> 4]);
            akv_buf_putc(b, hexup[*u & 15]);
        }
    }
}
