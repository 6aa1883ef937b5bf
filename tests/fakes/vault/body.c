/*
 * body — a request body as Vault 1.21 reads it. Two passes, each with its
 * own answers:
 *
 *   1. http/util.go wrapJSONLimitsHandler, around every /v1 request: a
 *      body whose first non-blank byte is '{' or '[' is scanned by
 *      jsonutil.VerifyMaxDepthStreaming, which checks nesting, sizes,
 *      duplicate keys and (loosely) syntax. A refusal is a 500 with the
 *      scanner's text.
 *   2. http/logical.go parseJSONRequest, for POST, PUT and PATCH:
 *      encoding/json's Decoder reads one value into a map. Empty input and
 *      null are no data; a syntax error or a value that is not an object
 *      is a 400 "error parsing JSON: failed to parse JSON input: ..."
 *      (PATCH says only "error parsing JSON").
 *
 * The texts follow Go's: the scanner's own messages in pass 1, and
 * encoding/json's SyntaxError texts ("invalid character 'x' looking for
 * beginning of value", "unexpected EOF", ...) in pass 2.
 */
#include "fv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* http/handler.go's defaults for the limits of pass 1. */
#define MAX_DEPTH         300
#define MAX_STRING_LENGTH (1024 * 1024)
#define MAX_OBJECT_KEYS   10000
#define MAX_ARRAY_ITEMS   10000
#define MAX_TOKENS        500000

/* Appends byte \p c as Go's %c prints it: the rune U+00cc, in UTF-8. */
static void put_byte_rune(struct akv_buf *b, unsigned char c)
{
    if (c < 0x80) {
        akv_buf_putc(b, (char)c);
    } else {
        akv_buf_putc(b, (char)(0xc0 | (c >> 6)));
        akv_buf_putc(b, (char)(0x80 | (c & 0x3f)));
    }
}

/* ---- pass 1: jsonutil.VerifyMaxDepthStreaming ---- */

/* The scanner's white space: JSON's, plus bytes 31 and 139. */
static int limits_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 31 ||
           c == 139;
}

/* An open container of the scan, with the keys an object has seen. */
struct container {
    char type; /* '{' or '[' */
    int is_key;
    size_t count;
    char **keys;
    size_t nkeys;
    size_t capkeys;
};

struct scan {
    const unsigned char *p;
    size_t n;
    size_t i;
    struct container *stack;
    size_t depth;
    struct akv_buf *err;
};

static void container_free(struct container *c)
{
    size_t k;

    for (k = 0; k < c->nkeys; k++) {
        free(c->keys[k]);
    }
    free(c->keys);
    memset(c, 0, sizeof(*c));
}

static int scan_fail(struct scan *s, const char *msg)
{
    akv_buf_puts(s->err, msg);
    return -1;
}

/* "invalid character 'c' <context>" */
static int scan_fail_char(struct akv_buf *err, unsigned char c,
                          const char *context)
{
    akv_buf_puts(err, "invalid character '");
    put_byte_rune(err, c);
    akv_buf_puts(err, "' ");
    akv_buf_puts(err, context);
    return -1;
}

/* Appends rune \p r to \p b as Go's strings.Builder.WriteRune does: a
 * surrogate or an out-of-range value becomes U+FFFD. */
static void put_rune(struct akv_buf *b, unsigned long r)
{
    if ((r >= 0xd800 && r <= 0xdfff) || r > 0x10ffff) {
        r = 0xfffd;
    }
    if (r < 0x80) {
        akv_buf_putc(b, (char)r);
    } else if (r < 0x800) {
        akv_buf_putc(b, (char)(0xc0 | (r >> 6)));
        akv_buf_putc(b, (char)(0x80 | (r & 0x3f)));
    } else if (r < 0x10000) {
        akv_buf_putc(b, (char)(0xe0 | (r >> 12)));
        akv_buf_putc(b, (char)(0x80 | ((r >> 6) & 0x3f)));
        akv_buf_putc(b, (char)(0x80 | (r & 0x3f)));
    } else {
        akv_buf_putc(b, (char)(0xf0 | (r >> 18)));
        akv_buf_putc(b, (char)(0x80 | ((r >> 12) & 0x3f)));
        akv_buf_putc(b, (char)(0x80 | ((r >> 6) & 0x3f)));
        akv_buf_putc(b, (char)(0x80 | (r & 0x3f)));
    }
}

static int is_hex(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

/* scanString: a string at s->i ('"'), its value unescaped into \p val. */
static int scan_string(struct scan *s, struct akv_buf *val)
{
    size_t raw = 0;
    int high_surrogate = 0;

    s->i++; /* the opening quote */
    for (;;) {
        unsigned char c;

        if (s->i >= s->n) {
            return scan_fail(s, "malformed JSON, unclosed string");
        }
        c = s->p[s->i++];
        if (c == '"') {
            if (high_surrogate) {
                return scan_fail(
                    s, "malformed JSON, unterminated surrogate pair in string");
            }
            return 0;
        }
        raw++;
        high_surrogate = 0;
        if (c == '\\') {
            unsigned char e;

            if (s->i >= s->n) {
                return scan_fail(
                    s,
                    "malformed JSON, unterminated escape sequence in string");
            }
            e = s->p[s->i++];
            raw++;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                akv_buf_putc(val, (char)e);
                break;
            case 'b':
                akv_buf_putc(val, '\b');
                break;
            case 'f':
                akv_buf_putc(val, '\f');
                break;
            case 'n':
                akv_buf_putc(val, '\n');
                break;
            case 'r':
                akv_buf_putc(val, '\r');
                break;
            case 't':
                akv_buf_putc(val, '\t');
                break;
            case 'u': {
                unsigned long r = 0;
                size_t k;

                if (s->n - s->i < 4) {
                    return scan_fail(
                        s, "malformed JSON, unterminated unicode escape in "
                           "string");
                }
                for (k = 0; k < 4; k++) {
                    unsigned char h = s->p[s->i + k];

                    if (!is_hex(h)) {
                        return scan_fail_char(s->err, h,
                                              "in string escape code");
                    }
                    r = r * 16 + (unsigned long)(h <= '9'   ? h - '0'
                                                 : h <= 'F' ? h - 'A' + 10
                                                            : h - 'a' + 10);
                }
                s->i += 4;
                raw += 4;
                put_rune(val, r);
                high_surrogate = r >= 0xd800 && r <= 0xdbff;
                break;
            }
            default:
                return scan_fail_char(s->err, e, "in string escape code");
            }
        } else {
            akv_buf_putc(val, (char)c);
        }
        if (raw > MAX_STRING_LENGTH) {
            return scan_fail(s, "JSON string value exceeds allowed length");
        }
    }
}

/* strconv.ParseFloat's syntax for what scanNumber collects (digits, '.',
 * 'e', 'E', '+', '-'), and its range: overflow is an error. */
static int go_float_ok(const char *t)
{
    const char *p = t;
    int digits = 0;
    char *end;
    double v;

    if (*p == '+' || *p == '-') {
        p++;
    }
    while (*p >= '0' && *p <= '9') {
        p++;
        digits++;
    }
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            p++;
            digits++;
        }
    }
    if (digits == 0) {
        return 0;
    }
    if (*p == 'e' || *p == 'E') {
        int exp_digits = 0;

        p++;
        if (*p == '+' || *p == '-') {
            p++;
        }
        while (*p >= '0' && *p <= '9') {
            p++;
            exp_digits++;
        }
        if (exp_digits == 0) {
            return 0;
        }
    }
    if (*p != '\0') {
        return 0;
    }
    errno = 0;
    v = strtod(t, &end);
    return !(errno == ERANGE && isinf(v));
}

/* scanNumber: a number at s->i. */
static int scan_number(struct scan *s)
{
    struct akv_buf num = TEXT_INIT;
    size_t start = s->i;
    int rc = 0;

    if (s->n - s->i >= 2 && s->p[s->i] == '0' && s->p[s->i + 1] >= '0' &&
        s->p[s->i + 1] <= '9') {
        return scan_fail_char(s->err, s->p[s->i + 1], "after top-level value");
    }
    while (s->i < s->n) {
        unsigned char c = s->p[s->i];

        if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' ||
              c == '+' || c == '-')) {
            break;
        }
        s->i++;
        if (s->i - start > MAX_STRING_LENGTH) {
            return scan_fail(s, "JSON number value exceeds allowed length");
        }
    }
    akv_buf_append(&num, s->p + start, s->i - start);
    if (num.err != AKV_OK) {
        rc = scan_fail(s, "out of memory");
    } else if (!go_float_ok(akv_buf_str(&num))) {
        akv_buf_puts(s->err, "malformed JSON, invalid number syntax for '");
        akv_buf_puts(s->err, akv_buf_str(&num));
        akv_buf_putc(s->err, '\'');
        rc = -1;
    }
    akv_buf_free(&num);
    return rc;
}

/* Counts one more element of an array, or marks an object's value seen. */
static int scan_value_done(struct scan *s, struct container *cur)
{
    if (!cur) {
        return 0;
    }
    if (cur->type == '[') {
        if (++cur->count > MAX_ARRAY_ITEMS) {
            return scan_fail(s, "JSON array exceeds allowed element count");
        }
    } else {
        cur->is_key = 1;
    }
    return 0;
}

/* A string: an object's key (duplicates refused), or a value. */
static int scan_string_token(struct scan *s, struct container *cur)
{
    struct akv_buf val = TEXT_INIT;
    size_t k;
    int rc = -1;

    if (scan_string(s, &val) < 0) {
        goto out;
    }
    if (val.err != AKV_OK) {
        scan_fail(s, "out of memory");
        goto out;
    }
    if (!cur || cur->type == '[' || !cur->is_key) {
        rc = scan_value_done(s, cur);
        goto out;
    }
    for (k = 0; k < cur->nkeys; k++) {
        if (strcmp(cur->keys[k], akv_buf_str(&val)) == 0) {
            akv_buf_puts(s->err, "duplicate key '");
            akv_buf_puts(s->err, akv_buf_str(&val));
            akv_buf_puts(s->err, "' in object");
            goto out;
        }
    }
    if (cur->nkeys == cur->capkeys) {
        size_t cap = cur->capkeys ? cur->capkeys * 2 : 8;
        char **nk = realloc(cur->keys, cap * sizeof(*nk));

        if (!nk) {
            scan_fail(s, "out of memory");
            goto out;
        }
        cur->keys = nk;
        cur->capkeys = cap;
    }
    cur->keys[cur->nkeys] = akv_buf_take(&val);
    if (!cur->keys[cur->nkeys]) {
        scan_fail(s, "out of memory");
        goto out;
    }
    cur->nkeys++;
    if (++cur->count > MAX_OBJECT_KEYS) {
        scan_fail(s, "JSON object exceeds allowed entry count");
        goto out;
    }
    cur->is_key = 0;
    rc = 0;
out:
    akv_buf_free(&val);
    return rc;
}

/* An opening '{' or '['. */
static int scan_open(struct scan *s, struct container *cur, size_t *max_depth)
{
    char type = (char)s->p[s->i++];

    if (cur) {
        if (cur->type == '[') {
            if (++cur->count > MAX_ARRAY_ITEMS) {
                return scan_fail(s, "JSON array exceeds allowed element count");
            }
        } else {
            cur->is_key = 1;
        }
    }
    if (s->depth + 1 > *max_depth) {
        *max_depth = s->depth + 1;
    }
    if (s->depth + 1 > MAX_DEPTH) {
        return scan_fail(s, "JSON input exceeds allowed nesting depth");
    }
    memset(&s->stack[s->depth], 0, sizeof(s->stack[0]));
    s->stack[s->depth].type = type;
    s->stack[s->depth].is_key = type == '{';
    s->depth++;
    return 0;
}

/* A closing '}' or ']'. */
static int scan_close(struct scan *s, struct container *cur)
{
    unsigned char c;

    if (cur && cur->type == '{' && !cur->is_key) {
        return scan_fail(s, "invalid character '}' after object key");
    }
    c = s->p[s->i++];
    if (!cur) {
        akv_buf_puts(s->err, "malformed JSON: unmatched closing delimiter '");
        put_byte_rune(s->err, c);
        akv_buf_putc(s->err, '\'');
        return -1;
    }
    if ((c == '}' && cur->type != '{') || (c == ']' && cur->type != '[')) {
        akv_buf_puts(s->err, "malformed JSON: mismatched closing delimiter '");
        put_byte_rune(s->err, c);
        akv_buf_putc(s->err, '\'');
        return -1;
    }
    container_free(cur);
    s->depth--;
    if (s->depth > 0 && s->stack[s->depth - 1].type == '{') {
        s->stack[s->depth - 1].is_key = 1;
    }
    return 0;
}

static void skip_limits_space(struct scan *s)
{
    while (s->i < s->n && limits_space(s->p[s->i])) {
        s->i++;
    }
}

/* One token at s->i. @returns 0, or -1 with the error in s->err. */
static int scan_token(struct scan *s, int *last_comma, size_t *max_depth)
{
    struct container *cur = s->depth ? &s->stack[s->depth - 1] : NULL;
    unsigned char c = s->p[s->i];

    *last_comma = 0;
    switch (c) {
    case '{':
    case '[':
        return scan_open(s, cur, max_depth);
    case '}':
    case ']':
        return scan_close(s, cur);
    case '"':
        return scan_string_token(s, cur);
    case 't':
    case 'f':
    case 'n':
        /* scanLiteral takes anything up to a delimiter */
        while (s->i < s->n && !limits_space(s->p[s->i]) && s->p[s->i] != ',' &&
               s->p[s->i] != '}' && s->p[s->i] != ']') {
            s->i++;
        }
        return scan_value_done(s, cur);
    case ',':
        s->i++;
        *last_comma = 1;
        if (cur && cur->type == '{') {
            cur->is_key = 1;
        }
        return 0;
    case ':':
        s->i++;
        return 0;
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            return scan_number(s) < 0 ? -1 : scan_value_done(s, cur);
        }
        return scan_fail_char(s->err, c, "looking for beginning of value");
    }
}

/* The whole of pass 1. @returns 0, or -1 with the error in \p err. */
static int limits_scan(const unsigned char *p, size_t n, struct akv_buf *err)
{
    struct scan s;
    size_t max_depth = 0;
    size_t tokens = 0;
    int last_comma = 0;
    int rc = -1;

    memset(&s, 0, sizeof(s));
    s.p = p;
    s.n = n;
    s.err = err;
    if (n >= 3 && p[0] == 0xef && p[1] == 0xbb && p[2] == 0xbf) {
        s.i = 3;
    }
    skip_limits_space(&s);
    if (s.i >= n || (p[s.i] != '{' && p[s.i] != '[')) {
        return 0; /* not a container: not checked */
    }
    s.stack = calloc(MAX_DEPTH, sizeof(*s.stack));
    if (!s.stack) {
        return scan_fail(&s, "out of memory");
    }
    while (s.i < n) {
        unsigned char c = p[s.i];

        if (last_comma && (c == '}' || c == ']')) {
            scan_fail(&s, c == '}'
                              ? "invalid character '}' after object key-value "
                                "pair"
                              : "invalid character ']' after array element");
            goto out;
        }
        if (s.depth == 0 && max_depth > 0) {
            scan_fail_char(err, c, "after top-level value");
            goto out;
        }
        if (++tokens > MAX_TOKENS) {
            scan_fail(&s, "JSON payload exceeds allowed token count");
            goto out;
        }
        if (scan_token(&s, &last_comma, &max_depth) < 0) {
            goto out;
        }
        skip_limits_space(&s);
    }
    if (s.depth != 0) {
        scan_fail(&s, "malformed JSON, unclosed containers");
        goto out;
    }
    rc = 0;
out:
    while (s.depth > 0) {
        container_free(&s.stack[--s.depth]);
    }
    free(s.stack);
    return rc;
}

/* ---- pass 2: encoding/json's Decoder, reading one value ---- */

struct dec {
    const unsigned char *p;
    size_t n;
    size_t i;
    struct akv_buf *err;
};

static int go_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Go's quoteChar: 'x', '\'', '"', '\x01', '\n', 'é' for byte 0xe9. */
static int dec_fail_char(struct dec *d, const char *context)
{
    unsigned char c = d->p[d->i];

    akv_buf_puts(d->err, "invalid character ");
    if (c == '\'') {
        akv_buf_puts(d->err, "'\\''");
    } else if (c == '"') {
        akv_buf_puts(d->err, "'\"'");
    } else {
        struct akv_buf q = TEXT_INIT;
        char one[3] = {0};

        if (c < 0x80) {
            one[0] = (char)c;
        } else {
            one[0] = (char)(0xc0 | (c >> 6));
            one[1] = (char)(0x80 | (c & 0x3f));
        }
        fv_go_quote(&q, one);
        if (q.err == AKV_OK && q.len >= 2) {
            akv_buf_putc(d->err, '\'');
            akv_buf_append(d->err, q.data + 1, q.len - 2);
            akv_buf_putc(d->err, '\'');
        } else {
            d->err->err = AKV_ERR_NOMEM;
        }
        akv_buf_free(&q);
    }
    akv_buf_putc(d->err, ' ');
    akv_buf_puts(d->err, context);
    return -1;
}

static int dec_eof(struct dec *d)
{
    akv_buf_puts(d->err, "unexpected EOF");
    return -1;
}

static void dec_space(struct dec *d)
{
    while (d->i < d->n && go_space(d->p[d->i])) {
        d->i++;
    }
}

static int dec_value(struct dec *d, int depth);

static int dec_literal(struct dec *d, const char *word)
{
    size_t k;

    for (k = 1; word[k]; k++) {
        d->i++;
        if (d->i >= d->n) {
            return dec_eof(d);
        }
        if (d->p[d->i] != (unsigned char)word[k]) {
            char ctx[48];

            snprintf(ctx, sizeof(ctx), "in literal %s (expecting '%c')", word,
                     word[k]);
            return dec_fail_char(d, ctx);
        }
    }
    d->i++;
    return 0;
}

static int dec_digits(struct dec *d)
{
    while (d->i < d->n && d->p[d->i] >= '0' && d->p[d->i] <= '9') {
        d->i++;
    }
    return 0;
}

/* A number; at the top level it ends at EOF, elsewhere at any byte. */
static int dec_number(struct dec *d)
{
    if (d->p[d->i] == '-') {
        d->i++;
        if (d->i >= d->n) {
            return dec_eof(d);
        }
        if (d->p[d->i] < '0' || d->p[d->i] > '9') {
            return dec_fail_char(d, "in numeric literal");
        }
    }
    if (d->p[d->i] == '0') {
        d->i++;
    } else {
        dec_digits(d);
    }
    if (d->i < d->n && d->p[d->i] == '.') {
        d->i++;
        if (d->i >= d->n) {
            return dec_eof(d);
        }
        if (d->p[d->i] < '0' || d->p[d->i] > '9') {
            return dec_fail_char(d, "after decimal point in numeric literal");
        }
        dec_digits(d);
    }
    if (d->i < d->n && (d->p[d->i] == 'e' || d->p[d->i] == 'E')) {
        d->i++;
        if (d->i < d->n && (d->p[d->i] == '+' || d->p[d->i] == '-')) {
            d->i++;
        }
        if (d->i >= d->n) {
            return dec_eof(d);
        }
        if (d->p[d->i] < '0' || d->p[d->i] > '9') {
            return dec_fail_char(d, "in exponent of numeric literal");
        }
        dec_digits(d);
    }
    return 0;
}

static int dec_string(struct dec *d)
{
    d->i++;
    for (;;) {
        unsigned char c;

        if (d->i >= d->n) {
            return dec_eof(d);
        }
        c = d->p[d->i];
        if (c == '"') {
            d->i++;
            return 0;
        }
        if (c < 0x20) {
            return dec_fail_char(d, "in string literal");
        }
        if (c == '\\') {
            d->i++;
            if (d->i >= d->n) {
                return dec_eof(d);
            }
            c = d->p[d->i];
            if (c == 'u') {
                int k;

                for (k = 0; k < 4; k++) {
                    d->i++;
                    if (d->i >= d->n) {
                        return dec_eof(d);
                    }
                    if (!is_hex(d->p[d->i])) {
                        return dec_fail_char(
                            d, "in \\u hexadecimal character escape");
                    }
                }
            } else if (!strchr("\"\\/bfnrt", c) || c == '\0') {
                return dec_fail_char(d, "in string escape code");
            }
        }
        d->i++;
    }
}

static int dec_object(struct dec *d, int depth)
{
    d->i++;
    dec_space(d);
    if (d->i >= d->n) {
        return dec_eof(d);
    }
    if (d->p[d->i] == '}') {
        d->i++;
        return 0;
    }
    for (;;) {
        if (d->p[d->i] != '"') {
            return dec_fail_char(d, "looking for beginning of object key "
                                    "string");
        }
        if (dec_string(d) < 0) {
            return -1;
        }
        dec_space(d);
        if (d->i >= d->n) {
            return dec_eof(d);
        }
        if (d->p[d->i] != ':') {
            return dec_fail_char(d, "after object key");
        }
        d->i++;
        if (dec_value(d, depth + 1) < 0) {
            return -1;
        }
        dec_space(d);
        if (d->i >= d->n) {
            return dec_eof(d);
        }
        if (d->p[d->i] == '}') {
            d->i++;
            return 0;
        }
        if (d->p[d->i] != ',') {
            return dec_fail_char(d, "after object key:value pair");
        }
        d->i++;
        dec_space(d);
        if (d->i >= d->n) {
            return dec_eof(d);
        }
    }
}

static int dec_array(struct dec *d, int depth)
{
    d->i++;
    dec_space(d);
    if (d->i >= d->n) {
        return dec_eof(d);
    }
    if (d->p[d->i] == ']') {
        d->i++;
        return 0;
    }
    for (;;) {
        if (dec_value(d, depth + 1) < 0) {
            return -1;
        }
        dec_space(d);
        if (d->i >= d->n) {
            return dec_eof(d);
        }
        if (d->p[d->i] == ']') {
            d->i++;
            return 0;
        }
        if (d->p[d->i] != ',') {
            return dec_fail_char(d, "after array element");
        }
        d->i++;
    }
}

static int dec_value(struct dec *d, int depth)
{
    unsigned char c;

    dec_space(d);
    if (d->i >= d->n) {
        return dec_eof(d);
    }
    if (depth > 10000) {
        akv_buf_puts(d->err, "exceeded max depth");
        return -1;
    }
    c = d->p[d->i];
    switch (c) {
    case '{':
        return dec_object(d, depth);
    case '[':
        return dec_array(d, depth);
    case '"':
        return dec_string(d);
    case 't':
        return dec_literal(d, "true");
    case 'f':
        return dec_literal(d, "false");
    case 'n':
        return dec_literal(d, "null");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            return dec_number(d);
        }
        return dec_fail_char(d, "looking for beginning of value");
    }
}

/* What a top-level value that is not an object unmarshals as. */
static const char *dec_kind(unsigned char c)
{
    switch (c) {
    case '[':
        return "array";
    case '"':
        return "string";
    case 't':
    case 'f':
        return "bool";
    default:
        return "number";
    }
}

/*
 * Reads the body of a /v1 request as Vault 1.21 does (see the top of this
 * file). \p decode: the method is POST, PUT or PATCH (\p patch), whose
 * body becomes the request's data.
 * @returns 0 with *out the object (NULL for no data), or the HTTP status
 *          of the refusal with its text in \p err.
 */
int fv_body_parse(const char *body, size_t n, int decode, int patch,
                  cJSON **out, struct akv_buf *err)
{
    const unsigned char *p = (const unsigned char *)body;
    struct akv_buf derr = TEXT_INIT;
    struct dec d;
    size_t start;
    const char *end = NULL;

    *out = NULL;
    if (n > 0 && limits_scan(p, n, err) < 0) {
        return 500;
    }
    if (!decode) {
        return 0;
    }
    memset(&d, 0, sizeof(d));
    d.p = p;
    d.n = n;
    d.err = &derr;
    dec_space(&d);
    if (d.i >= n) {
        return 0; /* io.EOF: no data */
    }
    start = d.i;
    if (dec_value(&d, 0) < 0) {
        akv_buf_puts(err, patch ? "error parsing JSON"
                                : "error parsing JSON: failed to parse JSON "
                                  "input: ");
        if (!patch) {
            akv_buf_puts(err, fv_text(&derr));
        }
        akv_buf_free(&derr);
        return 400;
    }
    akv_buf_free(&derr);
    if (p[start] == 'n') {
        return 0; /* null */
    }
    if (p[start] != '{') {
        if (patch) {
            akv_buf_puts(err, "error parsing JSON");
        } else {
            akv_buf_printf(err,
                           "error parsing JSON: failed to parse JSON input: "
                           "json: cannot unmarshal %s into Go value of type "
                           "map[string]interface {}",
                           dec_kind(p[start]));
        }
        return 400;
    }
    /* The Decoder reads one value; what follows it is not looked at. */
    *out = cJSON_ParseWithLengthOpts(body + start, d.i - start, &end, 0);
    if (!*out) {
        akv_buf_puts(err, "out of memory");
        return 500;
    }
    return 0;
}
