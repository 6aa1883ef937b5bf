/*
 * fuzzutil — what the libFuzzer targets share: a property check that
 * aborts (so that libFuzzer, and the replay driver under `make test`,
 * report the input), splitting an input into lines, and two independent
 * oracles: a raw walk over JSON text that cJSON has accepted, and a
 * Vault path checker.
 *
 * The JSON walk exists because cJSON cannot say what it lost: a string
 * with an escaped NUL ("\u0000") becomes a C string that ends early, and
 * nothing in the tree shows that a byte was cut. The walk decodes the raw
 * member itself, the way cJSON 1.7 does, and so knows the full value.
 */
#ifndef AKV_TESTS_FUZZUTIL_H
#define AKV_TESTS_FUZZUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reports a violated property with the input's target and aborts: the
 * fuzzer keeps the input as a crash, the replay driver fails. */
static inline void fuzz_fail(const char *fmt, ...)
{
    va_list ap;

    fputs("property violated: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

#define FUZZ_CHECK(cond, ...)                                                  \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fuzz_fail(__VA_ARGS__);                                            \
        }                                                                      \
    } while (0)

/* A NUL-terminated heap copy of \p n bytes (the C string ends at the
 * first NUL of the input, as it would for any caller). */
static inline char *fuzz_cstr(const uint8_t *data, size_t n)
{
    char *s = malloc(n + 1);

    if (!s) {
        abort();
    }
    if (n > 0) {
        memcpy(s, data, n);
    }
    s[n] = '\0';
    return s;
}

/* Takes the line at *data (without its '\n') into a heap string and moves
 * *data and *size past it. */
static inline char *fuzz_take_line(const uint8_t **data, size_t *size)
{
    const uint8_t *nl = *size ? memchr(*data, '\n', *size) : NULL;
    size_t n = nl ? (size_t)(nl - *data) : *size;
    char *line = fuzz_cstr(*data, n);

    *data += nl ? n + 1 : n;
    *size -= nl ? n + 1 : n;
    return line;
}

/* --- a raw walk over JSON text cJSON accepted -------------------------- */

struct fuzz_jstr {
    char *s;     /* decoded bytes, NUL-terminated (heap) */
    size_t n;    /* decoded length, embedded NULs included */
    int has_nul; /* a NUL among the n bytes */
};

static inline const char *fuzz_jws(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= 32) {
        p++;
    }
    return p;
}

/* cJSON's parse_hex4(): an invalid digit makes the whole value 0. */
static inline unsigned fuzz_hex4(const char *p)
{
    unsigned h = 0;
    int i;

    for (i = 0; i < 4; i++) {
        unsigned char c = (unsigned char)p[i];

        if (c >= '0' && c <= '9') {
            h += c - '0';
        } else if (c >= 'a' && c <= 'f') {
            h += 10u + c - 'a';
        } else if (c >= 'A' && c <= 'F') {
            h += 10u + c - 'A';
        } else {
            return 0;
        }
        if (i < 3) {
            h <<= 4;
        }
    }
    return h;
}

static inline size_t fuzz_utf8(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The string literal at p ('"'), decoded into \p out when not NULL.
 * @returns the byte after its closing quote. */
static inline const char *fuzz_jstring(const char *p, const char *end,
                                       struct fuzz_jstr *out)
{
    const char *q = p + 1;
    const char *close;
    size_t o = 0;

    /* The closing quote as cJSON finds it: a backslash hides the next
     * byte, whatever it is. */
    close = q;
    while (close < end && *close != '"') {
        close += *close == '\\' ? 2 : 1;
    }
    if (close > end) {
        close = end;
    }
    if (out) {
        out->s = malloc((size_t)(close - q) + 1);
        if (!out->s) {
            abort();
        }
        out->has_nul = 0;
    }
    while (q < close) {
        char buf[4];
        size_t k = 1;

        if (*q != '\\') {
            buf[0] = *q++;
        } else if (q[1] == 'u' && close - q >= 6) {
            unsigned cp = fuzz_hex4(q + 2);

            q += 6;
            if (cp >= 0xD800 && cp <= 0xDBFF && close - q >= 6) {
                cp = 0x10000 +
                     (((cp & 0x3FF) << 10) | (fuzz_hex4(q + 2) & 0x3FF));
                q += 6;
            }
            k = fuzz_utf8(cp, buf);
        } else {
            static const char from[] = "bfnrt\"\\/";
            static const char to[] = "\b\f\n\r\t\"\\/";
            const char *e = q[1] ? strchr(from, q[1]) : NULL;

            buf[0] = e ? to[e - from] : q[1];
            q += 2;
        }
        if (out) {
            memcpy(out->s + o, buf, k);
            out->has_nul |= memchr(buf, '\0', k) != NULL;
        }
        o += k;
    }
    if (out) {
        out->s[o] = '\0';
        out->n = o;
    }
    return close < end ? close + 1 : end;
}

/* The byte after the value at p. */
static inline const char *fuzz_jskip(const char *p, const char *end)
{
    int depth = 0;

    if (p < end && *p == '"') {
        return fuzz_jstring(p, end, NULL);
    }
    if (p < end && (*p == '{' || *p == '[')) {
        while (p < end) {
            if (*p == '"') {
                p = fuzz_jstring(p, end, NULL);
                continue;
            }
            depth += *p == '{' || *p == '[';
            depth -= *p == '}' || *p == ']';
            p++;
            if (depth == 0) {
                return p;
            }
        }
        return end;
    }
    /* number or literal: up to the next separator */
    while (p < end && (unsigned char)*p > 32 && *p != ',' && *p != '}' &&
           *p != ']') {
        p++;
    }
    return p;
}

/* Member \p key of the object at p, as cJSON_GetObjectItemCaseSensitive()
 * finds it (the first whose decoded name, as a C string, equals key).
 * @returns the start of its value, or NULL. */
static inline const char *fuzz_jmember(const char *p, const char *end,
                                       const char *key)
{
    if (p >= end || *p != '{') {
        return NULL;
    }
    p = fuzz_jws(p + 1, end);
    while (p < end && *p == '"') {
        struct fuzz_jstr name;
        int match;

        p = fuzz_jstring(p, end, &name);
        match = strcmp(name.s, key) == 0;
        free(name.s);
        p = fuzz_jws(p, end);
        if (p >= end || *p != ':') {
            return NULL;
        }
        p = fuzz_jws(p + 1, end);
        if (match) {
            return p;
        }
        p = fuzz_jws(fuzz_jskip(p, end), end);
        if (p >= end || *p != ',') {
            return NULL;
        }
        p = fuzz_jws(p + 1, end);
    }
    return NULL;
}

/*
 * The string at the path of member names \p keys (NULL-terminated) in
 * \p body, which cJSON_ParseWithLength() accepted as an object.
 * @returns 0 with \p out filled (free out->s), or -1 when there is no
 *          string there.
 */
static inline int fuzz_json_string_at(const char *body, size_t len,
                                      const char *const *keys,
                                      struct fuzz_jstr *out)
{
    const char *end = body + len;
    const char *p = body;

    /* cJSON skips a byte order mark only when more bytes follow it. */
    if (len > 4 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
    }
    p = fuzz_jws(p, end);
    for (; *keys; keys++) {
        p = fuzz_jmember(p, end, *keys);
        if (!p) {
            return -1;
        }
    }
    if (p >= end || *p != '"') {
        return -1;
    }
    fuzz_jstring(p, end, out);
    return 0;
}

/* --- Vault paths -------------------------------------------------------- */

/* One segment of \p n bytes, percent-decoded once (Vault decodes the URL
 * path before routing it), is "." or "..". */
static inline int fuzz_dot_segment(const char *s, size_t n)
{
    size_t dots = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && s[i + 1] == '2' &&
            (s[i + 2] == 'e' || s[i + 2] == 'E')) {
            i += 2;
        } else if (s[i] != '.') {
            return 0;
        }
        if (++dots > 2) {
            return 0;
        }
    }
    return dots == 1 || dots == 2;
}

/*
 * A built Vault path is safe to append to "{addr}/v1/": no empty segment
 * in front or in the middle ("//" or a leading "/"), and no "." or ".."
 * segment that would move it to another secret.
 * @returns NULL when safe, else what is wrong.
 */
static inline const char *fuzz_path_problem(const char *path)
{
    const char *seg = path;

    if (strstr(path, "//")) {
        return "an empty segment (//)";
    }
    if (path[0] == '/') {
        return "a leading /";
    }
    for (;;) {
        const char *slash = strchr(seg, '/');
        size_t n = slash ? (size_t)(slash - seg) : strlen(seg);

        if (fuzz_dot_segment(seg, n)) {
            return "a . or .. segment";
        }
        if (!slash) {
            return NULL;
        }
        seg = slash + 1;
    }
}

#endif /* AKV_TESTS_FUZZUTIL_H */
