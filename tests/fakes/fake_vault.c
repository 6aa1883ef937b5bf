/*
 * fake-vault — a loopback stand-in for the part of the HashiCorp Vault HTTP
 * API that ak2vault talks to: KV v2 (data/ and metadata/), kubernetes and
 * approle login, token lookup-self / renew-self, sys/capabilities-self and
 * sys/health.
 *
 * Status codes and bodies follow Vault's source (vault, sdk/framework,
 * vault-plugin-secrets-kv), down to field order and Go's JSON encoding
 * (sorted map keys, "<>&" escaped as \u003c..., numbers as float64), so a
 * client that works against this fake should work against a real server.
 *
 * Usage:
 *   fake-vault [--listen HOST:PORT]        default 127.0.0.1:0 (free port)
 *              [--root-token TOKEN]        never expires, policies ["root"]
 *              [--kv-mount MOUNT]          KV v2 mount, default "secret";
 *                                          may contain '/' ("team/kv")
 *              [--cas-required]            mount-level cas_required=true
 *              [--max-versions N]          mount max_versions, default 10
 *              [--k8s-mount NAME]          default "kubernetes"
 *              [--k8s-role ROLE=JWTFILE]   repeatable; the login jwt must
 *                                          equal the trimmed file contents,
 *                                          read at every login
 *              [--approle ROLE_ID=SECRET_ID]  repeatable
 *              [--token-ttl SECONDS]       login token TTL, default 3600
 *              [--token-max-ttl SECONDS]   default 86400
 *              [--latency-ms N]            added to every /v1 request;
 *                                          same as --faults
 *                                          '{"latency_ms":N}'
 *              [--faults JSON]             initial fault plan, the body
 *                                          POST /_fake/faults takes
 *              [--allow-remote-control]    serve /_fake to non-loopback
 *                                          clients too (docker networks)
 *              [--tls-cert FILE --tls-key FILE]  serve HTTPS only, with
 *                                          this PEM certificate (chain)
 *                                          and unencrypted PEM key
 *              [--tls-client-ca FILE]      with --tls-cert: every request
 *                                          needs a client certificate that
 *                                          verifies against these PEM CAs
 *                                          (else a fatal TLS alert and the
 *                                          connection is closed, /_fake
 *                                          included)
 *              [--verbose]                 log "METHOD PATH STATUS" to
 *                                          stderr
 *
 *   The first stdout line is the real HOST:PORT. The process runs until
 *   SIGTERM or SIGINT and then exits 0; bad options exit 64. Tokens, JWTs,
 *   secret IDs and secret data are never written to stdout or stderr.
 *
 * Vault endpoints (under /v1):
 *   GET|HEAD sys/health
 *   POST     auth/{k8s-mount}/login   {"role","jwt"}
 *   POST     auth/approle/login       {"role_id","secret_id"}
 *   GET      auth/token/lookup-self
 *   POST     auth/token/renew-self    {"increment"}
 *   POST|PUT sys/capabilities-self    {"paths"}: ["root"] for the root
 *                                     token, every KV capability for login
 *                                     tokens, ["deny"] under a deny_prefix
 *   GET|POST|PUT|DELETE  {mount}/data/PATH    (GET takes ?version=N)
 *   GET|POST|PUT|DELETE  {mount}/metadata/PATH
 *   LIST (or GET ?list=true) {mount}/metadata/PREFIX
 *   PATCH is not implemented and answers 405.
 *
 * Control endpoints (no token; loopback clients only):
 *   GET  /_fake/kv              the whole KV state, for assertions
 *   GET  /_fake/stats           request counters
 *   GET  /_fake/requests        the last 100000 /v1 requests, oldest first
 *   POST /_fake/reset-stats     zero the counters and the request log
 *   POST /_fake/tokens/revoke-all  revoke every login-issued token
 *   GET|POST|DELETE /_fake/faults  the fault plan: POST replaces it with
 *                               the JSON object sent, DELETE (or POST {})
 *                               clears it; all three answer with the
 *                               effective plan. See "Fault injection".
 *
 * Fault injection (POST /_fake/faults, --faults): a JSON object, every key
 * optional (missing or null = off/default); the answer is the effective
 * plan, and a bad plan is a 400 {"error":"..."} that changes nothing.
 *   latency_ms, latency_jitter_ms  delay before answering: fixed plus
 *                          uniform 0..jitter (ms, 0..3600000)
 *   scope                  what latency and the *_rate faults hit: "all"
 *                          /v1 requests (default), "kv" (under the KV
 *                          mount), "kv_write" (POST/PUT/DELETE there),
 *                          "kv_delete" (DELETE there), "auth"
 *                          (/v1/auth/...)
 *   error_rates            {"STATUS": p}, STATUS one of 412 429 500 502 503
 *                          504: answered with Vault's body for it, the
 *                          operation not performed
 *   drop_rate              close without answering, not performed
 *   drop_after_rate        perform, then close without answering
 *   truncate_rate          perform, then send half the body and close (an
 *                          empty 204 cannot be halved: it is dropped and
 *                          counted as dropped_after)
 *                          One uniform draw per affected request picks
 *                          among all rates, so they must add up to <= 1.
 *   retry_after            "N" or "http-date:N": a Retry-After header (N
 *                          seconds, or an IMF-fixdate N seconds ahead) on
 *                          injected 429 and 503 answers, sealed ones too
 *   seed                   integer: draws depend only on (seed, index of
 *                          the affected request), so a plan replays
 *   sealed_for_ms          sealed from now for N ms: every /v1 request is
 *                          503 "Vault is sealed", sys/health its sealed
 *                          body (sealedcode honoured); any new plan unseals
 *   deny_prefix            "PATH" or ["PATH", ...] below /v1/: 403 with
 *                          Vault's ACL text, after the token check
 *   token_ttl_s, token_max_ttl_s  for logins from now on (tokens keep the
 *                          max TTL they were issued with when renewing)
 *   mount_missing          true: the KV mount answers the router's 404
 *   write_answer           KV writes (POST/PUT under {mount}/data/) are not
 *                          performed and answered 200 with a body that
 *                          confirms nothing: "null_data" ({"data":null}),
 *                          "no_version" (data without a version), "html"
 *                          (a proxy's page), "garbage", "empty"; "none": off
 *   echo_status            400..599: KV writes are not performed and
 *                          answered with this status and an error text
 *                          that quotes the request body (secret included),
 *                          as some proxies and decoders do; 0: off
 * Counters are under "faults" in /_fake/stats (write_faults counts both
 * write faults); injected 403s are not in "denied".
 *
 * Secrets live in a hash table keyed by path and tokens in another, so the
 * cost of a request does not grow with the number of secrets (LIST and the
 * /_fake dumps are the exceptions: they walk everything).
 */
#include "fakefault.h"
#include "fakehtab.h"
#include "fakehttp.h"

#include "backoff.h"
#include "buf.h"
#include "clock.h"
#include "num.h"
#include "utf8.h"
#include "wipe.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define EXIT_USAGE 64

/* Vault's KV v2 keeps this many versions when neither mount nor key says. */
#define DEFAULT_MAX_VERSIONS 10u

/* How many /v1 requests /_fake/requests remembers. */
#define REQLOG_CAP 100000u

/* A JWT file is a service-account token: small. */
#define JWT_FILE_MAX (64u * 1024u)

#define VAULT_VERSION "1.21.0"

/* The multierror text Vault produces for a token it does not know. */
#define MSG_INVALID_TOKEN                                                      \
    "2 errors occurred:\n\t* permission denied\n\t* invalid token\n\n"
#define MSG_UNSUPPORTED_OP   "1 error occurred:\n\t* unsupported operation\n\n"
#define MSG_UNSUPPORTED_PATH "1 error occurred:\n\t* unsupported path\n\n"
#define MSG_NON_LISTING                                                        \
    "Non-listing operations on the root of a K/V v2 mount are not "            \
    "supported."

/* ------------------------------------------------------------------------ */
/* Text                                                                      */
/* ------------------------------------------------------------------------ */

/* Every response is assembled in an akv_buf (common/buf) with no bound of
 * its own. An allocation failure is kept in the buffer's err rather than
 * reported at each call, so builders stay linear and check once. */
#define TEXT_MAX  (SIZE_MAX / 2)
#define TEXT_INIT AKV_BUF_INIT(TEXT_MAX)

/* @returns the text built in \p b, or "out of memory" when that failed. */
static const char *text_or_oom(const struct akv_buf *b)
{
    return b->err != AKV_OK ? "out of memory" : akv_buf_str(b);
}

/* ------------------------------------------------------------------------ */
/* UTF-8 and Go-compatible text encoding                                     */
/* ------------------------------------------------------------------------ */

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
static int str_printable(const char *s)
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

/*
 * Writes a JSON string the way Go's encoding/json does: "<", ">" and "&"
 * become \u003c..., U+2028/U+2029 are escaped, invalid UTF-8 becomes \ufffd.
 */
static void sb_json_str(struct akv_buf *b, const char *s)
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
            switch (c) {
            case '"':
                akv_buf_puts(b, "\\\"");
                break;
            case '\\':
                akv_buf_puts(b, "\\\\");
                break;
            case '\b':
                akv_buf_puts(b, "\\b");
                break;
            case '\f':
                akv_buf_puts(b, "\\f");
                break;
            case '\n':
                akv_buf_puts(b, "\\n");
                break;
            case '\r':
                akv_buf_puts(b, "\\r");
                break;
            case '\t':
                akv_buf_puts(b, "\\t");
                break;
            default: {
                char e[6] = {'\\',           'u',           '0', '0',
                             hexdig[c >> 4], hexdig[c & 15]};

                akv_buf_append(b, e, sizeof(e));
                break;
            }
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
static void sb_go_quote(struct akv_buf *b, const char *s)
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
        } else {
            switch (r) {
            case '\a':
                akv_buf_puts(b, "\\a");
                break;
            case '\b':
                akv_buf_puts(b, "\\b");
                break;
            case '\f':
                akv_buf_puts(b, "\\f");
                break;
            case '\n':
                akv_buf_puts(b, "\\n");
                break;
            case '\r':
                akv_buf_puts(b, "\\r");
                break;
            case '\t':
                akv_buf_puts(b, "\\t");
                break;
            case '\v':
                akv_buf_puts(b, "\\v");
                break;
            default:
                if (r < 0x80) {
                    akv_buf_printf(b, "\\x%02x", (unsigned)r);
                } else if (r < 0x10000) {
                    akv_buf_printf(b, "\\u%04x", (unsigned)r);
                } else {
                    akv_buf_printf(b, "\\U%08x", (unsigned)r);
                }
                break;
            }
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
static void sb_go_float(struct akv_buf *b, double f)
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

struct member_ref {
    const cJSON *item;
    size_t idx;
};

static int cmp_member(const void *a, const void *b)
{
    const struct member_ref *x = a;
    const struct member_ref *y = b;
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
static size_t sorted_members(const cJSON *obj, struct member_ref **out)
{
    const cJSON *c;
    struct member_ref *m;
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

/* Re-encodes a parsed JSON value exactly as Vault would return it. */
static void sb_go_json(struct akv_buf *b, const cJSON *v)
{
    const cJSON *c;

    if (cJSON_IsObject(v)) {
        struct member_ref *m;
        size_t n = sorted_members(v, &m);
        size_t i;

        if (n == (size_t)-1) {
            b->err = AKV_ERR_NOMEM;
            return;
        }
        akv_buf_putc(b, '{');
        for (i = 0; i < n; i++) {
            if (i > 0) {
                akv_buf_putc(b, ',');
            }
            sb_json_str(b, m[i].item->string);
            akv_buf_putc(b, ':');
            sb_go_json(b, m[i].item);
        }
        akv_buf_putc(b, '}');
        free(m);
    } else if (cJSON_IsArray(v)) {
        akv_buf_putc(b, '[');
        for (c = v->child; c; c = c->next) {
            if (c != v->child) {
                akv_buf_putc(b, ',');
            }
            sb_go_json(b, c);
        }
        akv_buf_putc(b, ']');
    } else if (cJSON_IsString(v)) {
        sb_json_str(b, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        sb_go_float(b, v->valuedouble);
    } else if (cJSON_IsTrue(v)) {
        akv_buf_puts(b, "true");
    } else if (cJSON_IsFalse(v)) {
        akv_buf_puts(b, "false");
    } else {
        akv_buf_puts(b, "null");
    }
}

/* Go's %v of a decoded JSON value, for "error converting input" texts. */
static void sb_go_value(struct akv_buf *b, const cJSON *v)
{
    const cJSON *c;

    if (cJSON_IsString(v)) {
        akv_buf_puts(b, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        sb_go_float(b, v->valuedouble);
    } else if (cJSON_IsBool(v)) {
        akv_buf_puts(b, cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsArray(v)) {
        akv_buf_putc(b, '[');
        for (c = v->child; c; c = c->next) {
            if (c != v->child) {
                akv_buf_putc(b, ' ');
            }
            sb_go_value(b, c);
        }
        akv_buf_putc(b, ']');
    } else if (cJSON_IsObject(v)) {
        struct member_ref *m;
        size_t n = sorted_members(v, &m);
        size_t i;

        if (n == (size_t)-1) {
            b->err = AKV_ERR_NOMEM;
            return;
        }
        akv_buf_puts(b, "map[");
        for (i = 0; i < n; i++) {
            if (i > 0) {
                akv_buf_putc(b, ' ');
            }
            akv_buf_puts(b, m[i].item->string);
            akv_buf_putc(b, ':');
            sb_go_value(b, m[i].item);
        }
        akv_buf_putc(b, ']');
        free(m);
    } else {
        akv_buf_puts(b, "<nil>");
    }
}

/* The reflect kind mapstructure names; JSON numbers are json.Number. */
static const char *go_kind(const cJSON *v)
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

/* ------------------------------------------------------------------------ */
/* Time, randomness                                                          */
/* ------------------------------------------------------------------------ */

/* Dates are nanoseconds since the epoch on the wall clock (akv_wall_ns()),
 * as Vault keeps them; 0 is Go's zero time, "unset". */
#define NS_PER_SEC INT64_C(1000000000)

/* @returns the date \p secs seconds after \p t, INT64_MAX at the most (a
 *          date in 2262: a delete_version_after of centuries stays one). */
static int64_t ns_after(int64_t t, int64_t secs)
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
static void sb_time(struct akv_buf *b, int64_t t)
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
static void fmt_duration(char *out, size_t size, int64_t secs)
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

/* Per-thread splitmix64, seeded by akv_backoff_random() (the kernel's
 * randomness): request IDs and tokens need to be unique, not secret, and
 * must not cost a syscall each. */
static _Thread_local uint64_t rng_x;
static _Thread_local int rng_ready;

static uint64_t rng_next(void)
{
    uint64_t z;

    if (!rng_ready) {
        rng_x = akv_backoff_random();
        rng_ready = 1;
    }
    rng_x += 0x9e3779b97f4a7c15ULL;
    z = rng_x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

#define UUID_LEN 36

static void gen_uuid(char out[UUID_LEN + 1])
{
    uint64_t hi = rng_next();
    uint64_t lo = rng_next();

    hi = (hi & ~0xf000ULL) | 0x4000ULL;       /* version 4 */
    lo = (lo & ~(3ULL << 62)) | (2ULL << 62); /* RFC 4122 */
    snprintf(out, UUID_LEN + 1,
             "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64
             "-%012" PRIx64,
             hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48,
             lo & (uint64_t)0xffffffffffffULL);
}

#define TOKEN_LEN 28 /* "hvs." + 24 */

static void gen_token(char out[TOKEN_LEN + 1])
{
    static const char alnum[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    int i;

    memcpy(out, "hvs.", 4);
    for (i = 4; i < TOKEN_LEN; i++) {
        out[i] = alnum[rng_next() % 62];
    }
    out[TOKEN_LEN] = '\0';
}

/* ------------------------------------------------------------------------ */
/* State                                                                     */
/* ------------------------------------------------------------------------ */

struct k8s_role {
    char *name;
    char *jwt_file;
    char sa_uid[UUID_LEN + 1];
    char entity_id[UUID_LEN + 1];
};

struct approle {
    char *role_id;
    char *secret_id;
    char entity_id[UUID_LEN + 1];
};

struct config {
    const char *listen;
    const char *root_token;
    char *kv_mount;
    char *k8s_mount;
    int cas_required;
    uint32_t max_versions;
    struct k8s_role *k8s;
    size_t nk8s;
    struct approle *approles;
    size_t napproles;
    int64_t token_ttl;
    int64_t token_max_ttl;
    long latency_ms;
    const char *faults_json;   /* --faults */
    const char *tls_cert;      /* --tls-cert: HTTPS when set */
    const char *tls_key;       /* --tls-key */
    const char *tls_client_ca; /* --tls-client-ca: client certs required */
    int allow_remote_control;
    int verbose;
};

struct kv_version {
    char *data; /* the data map, already in Vault's JSON encoding */
    int64_t created;
    int64_t deleted; /* deletion_time; unset when zero */
    int destroyed;
};

struct kv_secret {
    struct fakehtab_node node; /* key: the path under data/ */
    uint64_t current;          /* current_version */
    uint64_t oldest;           /* oldest_version, as Vault reports it */
    uint64_t first;            /* version number of vers[0] */
    struct kv_version *vers;
    size_t nvers;
    size_t capvers;
    uint32_t max_versions; /* key-level; 0 defers to the mount */
    int cas_required;
    int64_t delete_after; /* key-level delete_version_after, seconds */
    char *custom;         /* custom_metadata as JSON; NULL when empty */
    int64_t created;
    int64_t updated;
};

enum tok_kind { TOK_ROOT, TOK_K8S, TOK_APPROLE };

struct token {
    struct fakehtab_node node; /* key: the token itself */
    enum tok_kind kind;
    size_t role; /* index into cfg.k8s or cfg.approles */
    char accessor[UUID_LEN + 1];
    int64_t issued;
    int64_t expires; /* unset for the root token */
    int64_t renewed; /* unset until the first renewal */
    int64_t creation_ttl;
    int64_t max_ttl; /* fixed at login: a later fault plan must not move it */
};

struct reqlog_entry {
    char method[8];
    int status;
    char *path;
};

/* The statuses "error_rates" may inject, in the order a draw walks them. */
static const int fault_codes[] = {412, 429, 500, 502, 503, 504};
#define NFAULT_CODES (sizeof(fault_codes) / sizeof(fault_codes[0]))
_Static_assert(NFAULT_CODES <= FAKEFAULT_MAX_CODES, "too many fault codes");

/* Which /v1 requests latency and the probabilistic faults hit. */
enum fault_scope {
    SCOPE_ALL,
    SCOPE_KV,
    SCOPE_KV_WRITE,
    SCOPE_KV_DELETE,
    SCOPE_AUTH
};

static const char *const scope_names[] = {"all", "kv", "kv_write", "kv_delete",
                                          "auth"};

/* fake-vault's keys of a fault plan, besides fakefault's common ones. */
static const char *const vault_fault_keys[] = {
    "sealed_for_ms", "deny_prefix",  "token_ttl_s", "token_max_ttl_s",
    "mount_missing", "write_answer", "echo_status"};

/* What "write_answer" makes a KV write answer 200 with, unperformed. */
enum write_answer {
    WA_NONE,
    WA_NULL_DATA,  /* {"data":null,...}: an envelope without a version */
    WA_NO_VERSION, /* data without "version" */
    WA_HTML,       /* a proxy's page */
    WA_GARBAGE,    /* bytes that are not JSON */
    WA_EMPTY,      /* no body at all */
};

static const char *const write_answer_names[] = {
    "none", "null_data", "no_version", "html", "garbage", "empty"};

/* What they set: the fake-vault part of a plan (fakefault_plan.ext). */
struct vault_faults {
    long sealed_for_ms;
    int64_t sealed_until_ms; /* on akv_mono_ms()'s clock */
    char **deny;             /* path prefixes below /v1/ */
    size_t ndeny;
    int64_t token_ttl; /* 0: --token-ttl applies */
    int64_t token_max_ttl;
    int mount_missing;
    enum write_answer write_answer;
    int echo_status; /* 0: off */
};

/* @returns the fake-vault part of \p fp, or NULL when there is no plan. */
static const struct vault_faults *vfaults(const struct fakefault_plan *fp)
{
    return fp ? fp->ext : NULL;
}

struct fault_stats {
    struct fakefault_counts common;
    atomic_ullong sealed;
    atomic_ullong denied_prefix;
    atomic_ullong mount_missing;
    atomic_ullong write_faults; /* write_answer and echo_status */
};

struct stats {
    atomic_ullong requests;
    atomic_ullong kv_writes;
    atomic_ullong kv_write_requests;
    atomic_ullong kv_reads;
    atomic_ullong metadata_reads;
    atomic_ullong logins;
    atomic_ullong login_failures;
    atomic_ullong renewals;
    atomic_ullong denied;
    atomic_ullong cas_mismatch;
    struct fault_stats faults;
};

struct fake_vault {
    struct config cfg;

    pthread_mutex_t kv_lock; /* secrets and everything they own */
    struct fakehtab secrets;

    pthread_mutex_t tok_lock;
    struct fakehtab tokens;

    pthread_mutex_t log_lock;
    struct reqlog_entry *rlog; /* ring of REQLOG_CAP */
    size_t rlog_head;          /* next slot to write */
    size_t rlog_count;

    struct fakefault_slot faults; /* the fault plan */

    struct stats st;
    char cluster_id[UUID_LEN + 1];
};

enum op { OP_READ, OP_WRITE, OP_DELETE, OP_LIST, OP_PATCH };

/* One /v1 request on its way through the handlers. */
struct rq {
    struct fake_vault *fv;
    const struct fakehttp_request *http;
    struct fakehttp_response *resp;
    enum op op;
    char *vpath;       /* path below /v1/; LIST gets a trailing '/' */
    cJSON *body;       /* parsed body of writes; NULL when empty or null */
    const char *token; /* the presented token, once authenticated */
    struct token tok;  /* snapshot of its entry */
    struct fakefault_plan *fc; /* the fault plan it runs under, or NULL */
    enum fakefault_post post;  /* what to do to the answer afterwards */
    int injected;              /* the answer is a fault, not Vault's */
};

#define STAT_INC(fv, field) atomic_fetch_add(&(fv)->st.field, 1)

/* ------------------------------------------------------------------------ */
/* Responses                                                                 */
/* ------------------------------------------------------------------------ */

static void reply_sb(struct fakehttp_response *resp, int status,
                     struct akv_buf *b)
{
    char *body = akv_buf_take(b);

    if (!body) {
        fakehttp_reply(resp, 500, "{\"errors\":[\"out of memory\"]}\n");
        return;
    }
    fakehttp_reply_take(resp, status, body);
}

/* Vault's respondError: {"errors":[msg]} or {"errors":[]} for NULL. */
static void reply_error(struct fakehttp_response *resp, int status,
                        const char *msg)
{
    struct akv_buf b = TEXT_INIT;

    akv_buf_puts(&b, "{\"errors\":[");
    if (msg) {
        sb_json_str(&b, msg);
    }
    akv_buf_puts(&b, "]}\n");
    reply_sb(resp, status, &b);
}

static void reply_no_content(struct fakehttp_response *resp)
{
    fakehttp_reply_take(resp, 204, NULL);
    /* fakehttp leaves Content-Type off empty 204s; Vault sets it anyway */
    fakehttp_add_header(resp, "Content-Type", "application/json");
}

/* Opens Vault's response envelope after the members of the JSON object
 * \p top (NULL: none; logical.HTTPSysInjector puts a sys/ answer's data
 * there); the caller writes the data value. */
static void sb_env_begin_with(struct akv_buf *b, const struct akv_buf *top)
{
    char id[UUID_LEN + 1];

    akv_buf_putc(b, '{');
    if (top && top->len > 2) {
        akv_buf_append(b, top->data + 1, top->len - 2);
        akv_buf_putc(b, ',');
    }
    gen_uuid(id);
    akv_buf_printf(
        b,
        "\"request_id\":\"%s\",\"lease_id\":\"\",\"renewable\":false,"
        "\"lease_duration\":0,\"data\":",
        id);
}

/* Opens Vault's response envelope; the caller writes the data value. */
static void sb_env_begin(struct akv_buf *b)
{
    sb_env_begin_with(b, NULL);
}

/* Closes the envelope. \p auth is JSON text or NULL. json.Marshal bodies
 * (raw 404s) carry no newline; json.Encoder ones do. */
static void sb_env_end(struct akv_buf *b, const char *const *warnings,
                       size_t nwarnings, const char *auth,
                       const char *mount_type, int newline)
{
    size_t i;

    akv_buf_puts(b, ",\"wrap_info\":null,\"warnings\":");
    if (nwarnings == 0) {
        akv_buf_puts(b, "null");
    } else {
        akv_buf_putc(b, '[');
        for (i = 0; i < nwarnings; i++) {
            if (i > 0) {
                akv_buf_putc(b, ',');
            }
            sb_json_str(b, warnings[i]);
        }
        akv_buf_putc(b, ']');
    }
    akv_buf_puts(b, ",\"auth\":");
    akv_buf_puts(b, auth ? auth : "null");
    akv_buf_puts(b, ",\"mount_type\":");
    sb_json_str(b, mount_type);
    akv_buf_puts(b, newline ? "}\n" : "}");
}

/* logical.RespondWithStatusCode with only a warning: a raw 404 body. */
static void reply_warning_404(struct fakehttp_response *resp,
                              const char *warning)
{
    const char *warnings[1] = {warning};
    struct akv_buf b = TEXT_INIT;

    sb_env_begin(&b);
    akv_buf_puts(&b, "null");
    sb_env_end(&b, warnings, 1, NULL, "", 0);
    reply_sb(resp, 404, &b);
}

/*
 * The framework's "Endpoint ignored these unrecognized parameters: [a b]"
 * warning for body fields the path does not declare; Vault adds it to every
 * non-nil, non-error response.
 * @returns 1 when \p out got a warning.
 */
static int ignored_params(const cJSON *body, const char *const *known,
                          struct akv_buf *out)
{
    struct member_ref *m;
    size_t n;
    size_t i;
    size_t j;
    int any = 0;

    if (!cJSON_IsObject(body)) {
        return 0;
    }
    n = sorted_members(body, &m);
    if (n == (size_t)-1) {
        out->err = AKV_ERR_NOMEM;
        return 0;
    }
    for (i = 0; i < n; i++) {
        int is_known = 0;

        for (j = 0; known[j]; j++) {
            if (strcmp(known[j], m[i].item->string) == 0) {
                is_known = 1;
                break;
            }
        }
        if (is_known) {
            continue;
        }
        akv_buf_puts(out,
                     any ? " "
                         : "Endpoint ignored these unrecognized parameters: [");
        akv_buf_puts(out, m[i].item->string);
        any = 1;
    }
    if (any) {
        akv_buf_putc(out, ']');
    }
    free(m);
    return any;
}

/* ------------------------------------------------------------------------ */
/* Field decoding (sdk/framework + mapstructure.WeakDecode)                  */
/* ------------------------------------------------------------------------ */

/* The last member called \p name: Go's decoder keeps the last duplicate. */
static const cJSON *obj_get(const cJSON *obj, const char *name)
{
    const cJSON *c;
    const cJSON *found = NULL;

    if (!cJSON_IsObject(obj)) {
        return NULL;
    }
    for (c = obj->child; c; c = c->next) {
        if (c->string && strcmp(c->string, name) == 0) {
            found = c;
        }
    }
    return found;
}

static void field_error_prefix(struct akv_buf *err, const cJSON *v,
                               const char *name)
{
    akv_buf_puts(err, "error converting input ");
    sb_go_value(err, v);
    akv_buf_puts(err, " for field ");
    sb_go_quote(err, name);
    akv_buf_puts(err, ": ");
}

/*
 * A TypeMap field. @returns 0 when absent, 1 when present (*out is NULL for
 * JSON null), -1 with the framework's message in \p err.
 */
static int field_map(const cJSON *body, const char *name, const cJSON **out,
                     struct akv_buf *err)
{
    const cJSON *v = obj_get(body, name);

    *out = NULL;
    if (!v) {
        return 0;
    }
    if (cJSON_IsNull(v)) {
        return 1;
    }
    if (!cJSON_IsObject(v)) {
        field_error_prefix(err, v, name);
        akv_buf_printf(err, "'' expected a map, got '%s'", go_kind(v));
        return -1;
    }
    *out = v;
    return 1;
}

/* strconv.ParseInt(s, 0, 64) as mapstructure uses it ("" reads as 0). */
static int parse_go_int(const char *s, int64_t *out)
{
    const char *p = s;
    int neg = 0;
    int base = 10;
    uint64_t v = 0;
    int digits = 0;

    if (*p == '\0') {
        *out = 0;
        return 0;
    }
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) {
        base = 2;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
        base = 8;
        p += 2;
    } else if (p[0] == '0' && p[1] != '\0') {
        base = 8;
        p++;
    }
    for (; *p; p++) {
        int d;

        if (*p == '_') {
            continue;
        }
        if (*p >= '0' && *p <= '9') {
            d = *p - '0';
        } else if (*p >= 'a' && *p <= 'f') {
            d = *p - 'a' + 10;
        } else if (*p >= 'A' && *p <= 'F') {
            d = *p - 'A' + 10;
        } else {
            return -1;
        }
        if (d >= base || v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) {
            return -1;
        }
        v = v * (uint64_t)base + (uint64_t)d;
        digits++;
    }
    if (digits == 0 && base != 8) {
        return -1;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX) {
        return -1;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* A JSON number as json.Number.Int64 would take it: integral, in range.
 * (cJSON keeps no literal, so "1.0" passes where Go would refuse it.) */
static int number_to_int(const cJSON *v, int64_t *out)
{
    double d = v->valuedouble;

    if (!isfinite(d) || d != (double)(int64_t)d || d >= 9.3e18 ||
        d <= -9.3e18) {
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

/* WeakDecode into an int. @returns 0, or -1 with a message in \p err. */
static int weak_int(const cJSON *v, const char *name, int64_t *out,
                    struct akv_buf *err)
{
    if (cJSON_IsNull(v)) {
        *out = 0;
        return 0;
    }
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        if (number_to_int(v, out) == 0) {
            return 0;
        }
        if (err) {
            field_error_prefix(err, v, name);
            akv_buf_puts(err, "error decoding json.Number into : "
                              "strconv.ParseInt: parsing ");
            akv_buf_putc(err, '"');
            sb_go_float(err, v->valuedouble);
            akv_buf_puts(err, "\": invalid syntax");
        }
        return -1;
    }
    if (cJSON_IsString(v)) {
        if (parse_go_int(v->valuestring, out) == 0) {
            return 0;
        }
        if (err) {
            field_error_prefix(err, v, name);
            akv_buf_puts(err,
                         "cannot parse '' as int: strconv.ParseInt: parsing ");
            sb_go_quote(err, v->valuestring);
            akv_buf_puts(err, ": invalid syntax");
        }
        return -1;
    }
    if (err) {
        field_error_prefix(err, v, name);
        akv_buf_printf(
            err, "'' expected type 'int', got unconvertible type '%s'",
            cJSON_IsArray(v) ? "[]interface {}" : "map[string]interface {}");
    }
    return -1;
}

/* strconv.ParseBool */
static int parse_go_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* WeakDecode into a bool: json.Number and strings go through ParseBool. */
static int weak_bool(const cJSON *v, const char *name, int *out,
                     struct akv_buf *err)
{
    struct akv_buf lit = TEXT_INIT;
    int rc = 0;

    if (cJSON_IsNull(v)) {
        *out = 0;
        return 0;
    }
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return 0;
    }
    if (cJSON_IsString(v) || cJSON_IsNumber(v)) {
        if (cJSON_IsString(v)) {
            akv_buf_puts(&lit, v->valuestring);
        } else {
            sb_go_float(&lit, v->valuedouble);
        }
        if (lit.err != AKV_OK) {
            err->err = AKV_ERR_NOMEM;
            rc = -1;
        } else if (lit.len == 0) {
            *out = 0;
        } else if (parse_go_bool(lit.data, out) != 0) {
            field_error_prefix(err, v, name);
            akv_buf_puts(err, "cannot parse '' as bool: strconv.ParseBool: "
                              "parsing ");
            sb_go_quote(err, lit.data);
            akv_buf_puts(err, ": invalid syntax");
            rc = -1;
        }
        akv_buf_free(&lit);
        return rc;
    }
    field_error_prefix(err, v, name);
    akv_buf_printf(err, "'' expected type 'bool', got unconvertible type '%s'",
                   cJSON_IsArray(v) ? "[]interface {}"
                                    : "map[string]interface {}");
    return -1;
}

/*
 * WeakDecode into a string: numbers keep their text, bools become "1"/"0",
 * null becomes "". @returns a heap string, or NULL with \p err set (or OOM
 * when \p err stays empty).
 */
static char *weak_string(const cJSON *v, struct akv_buf *err)
{
    struct akv_buf s = TEXT_INIT;

    if (cJSON_IsString(v)) {
        akv_buf_puts(&s, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        sb_go_float(&s, v->valuedouble);
    } else if (cJSON_IsBool(v)) {
        akv_buf_puts(&s, cJSON_IsTrue(v) ? "1" : "0");
    } else if (!cJSON_IsNull(v)) {
        akv_buf_printf(
            err,
            "'' expected type 'string', got unconvertible type '%s', "
            "value: '",
            cJSON_IsArray(v) ? "[]interface {}" : "map[string]interface {}");
        sb_go_value(err, v);
        akv_buf_putc(err, '\'');
        return NULL;
    }
    return akv_buf_take(&s);
}

/* A TypeString field: NULL when absent; "" for null. */
static char *field_string(const cJSON *body, const char *name,
                          struct akv_buf *err, int *failed)
{
    const cJSON *v = obj_get(body, name);
    struct akv_buf inner = TEXT_INIT;
    char *s;

    *failed = 0;
    if (!v) {
        return NULL;
    }
    s = weak_string(v, &inner);
    if (!s) {
        *failed = 1;
        if (inner.len > 0) {
            field_error_prefix(err, v, name);
            akv_buf_puts(err, inner.data);
        } else {
            err->err = AKV_ERR_NOMEM;
        }
    }
    akv_buf_free(&inner);
    return s;
}

/*
 * Go's time.ParseDuration, to whole seconds (fractions are truncated).
 * @returns 0 on success.
 */
static int parse_go_duration(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1},          {"us", 1e3},  {"\xc2\xb5s", 1e3},
                 {"\xce\xbcs", 1e3}, {"ms", 1e6},  {"s", 1e9},
                 {"m", 60e9},        {"h", 3600e9}};
    const char *p = s;
    double total = 0;
    int neg = 0;

    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    if (strcmp(p, "0") == 0) {
        *out = 0;
        return 0;
    }
    if (*p == '\0') {
        return -1;
    }
    while (*p) {
        char *end;
        double v;
        size_t i;
        size_t best = 0;
        size_t best_len = 0;

        if (!((*p >= '0' && *p <= '9') || *p == '.')) {
            return -1;
        }
        v = strtod(p, &end);
        if (end == p) {
            return -1;
        }
        p = end;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t ul = strlen(units[i].unit);

            if (strncmp(p, units[i].unit, ul) == 0 && ul > best_len) {
                best = i;
                best_len = ul;
            }
        }
        if (best_len == 0) {
            return -1;
        }
        total += v * units[best].ns;
        p += best_len;
    }
    if (total / 1e9 > 9.2e18) {
        return -1;
    }
    *out = (int64_t)(total / 1e9) * (neg ? -1 : 1);
    return 0;
}

/*
 * A TypeDurationSecond field (parseutil.ParseDurationSecond): a number of
 * seconds, a numeric string, "Nd", or a Go duration string.
 * @returns 0 absent, 1 present, -1 with \p err set.
 */
static int field_duration(const cJSON *body, const char *name, int64_t *out,
                          struct akv_buf *err)
{
    const cJSON *v = obj_get(body, name);
    char buf[128];
    size_t n;
    const char *s;

    *out = 0;
    if (!v) {
        return 0;
    }
    if (cJSON_IsNull(v)) {
        return 1;
    }
    if (cJSON_IsNumber(v)) {
        *out = (int64_t)v->valuedouble;
        return 1;
    }
    if (!cJSON_IsString(v)) {
        field_error_prefix(err, v, name);
        akv_buf_puts(err, "could not parse duration from input");
        return -1;
    }
    s = v->valuestring;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
        s++;
    }
    snprintf(buf, sizeof(buf), "%s", s);
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t' ||
                     buf[n - 1] == '\n' || buf[n - 1] == '\r')) {
        buf[--n] = '\0';
    }
    if (n == 0) {
        return 1;
    }
    if (buf[n - 1] == 'd') {
        int64_t days;

        buf[n - 1] = '\0';
        if (parse_go_int(buf, &days) == 0 && buf[0] != '\0' &&
            days < INT64_MAX / 86400 && days > INT64_MIN / 86400) {
            *out = days * 86400;
            return 1;
        }
        buf[n - 1] = 'd';
    } else {
        char *end;
        long long secs;

        errno = 0;
        secs = strtoll(buf, &end, 10);
        if (errno == 0 && *end == '\0' && end != buf) {
            *out = secs;
            return 1;
        }
    }
    if (parse_go_duration(buf, out) == 0) {
        return 1;
    }
    field_error_prefix(err, v, name);
    akv_buf_puts(err, "time: invalid duration ");
    sb_go_quote(err, buf);
    return -1;
}

/* ------------------------------------------------------------------------ */
/* Tokens                                                                    */
/* ------------------------------------------------------------------------ */

static struct token *token_new(const char *id, enum tok_kind kind, size_t role)
{
    struct token *t = calloc(1, sizeof(*t));

    if (!t) {
        return NULL;
    }
    t->node.key = strdup(id);
    if (!t->node.key) {
        free(t);
        return NULL;
    }
    t->kind = kind;
    t->role = role;
    gen_uuid(t->accessor);
    return t;
}

static void token_free(struct token *t)
{
    if (t) {
        akv_wipe_free(t->node.key);
        free(t);
    }
}

static void token_release(struct fakehtab_node *n)
{
    token_free((struct token *)n);
}

/*
 * Looks a token up and copies its entry. Expired entries are dropped on the
 * way, so the table does not keep every token a long test ever issued.
 * @returns 1 when valid.
 */
static int token_lookup(struct fake_vault *fv, const char *id,
                        struct token *snap)
{
    int64_t now = akv_wall_ns();
    struct token *t;
    int ok = 0;

    pthread_mutex_lock(&fv->tok_lock);
    t = (struct token *)fakehtab_find(&fv->tokens, id);
    if (t) {
        if (t->kind != TOK_ROOT && t->expires <= now) {
            fakehtab_remove(&fv->tokens, id);
            token_free(t);
        } else {
            *snap = *t;
            snap->node.next = NULL;
            snap->node.key = NULL;
            ok = 1;
        }
    }
    pthread_mutex_unlock(&fv->tok_lock);
    return ok;
}

static const char *token_policies_json(const struct token *t)
{
    /* Vault sorts policies (policyutil.SanitizePolicies) */
    return t->kind == TOK_ROOT ? "[\"root\"]" : "[\"ak2vault\",\"default\"]";
}

static const char *token_entity(const struct fake_vault *fv,
                                const struct token *t)
{
    if (t->kind == TOK_K8S) {
        return fv->cfg.k8s[t->role].entity_id;
    }
    if (t->kind == TOK_APPROLE) {
        return fv->cfg.approles[t->role].entity_id;
    }
    return "";
}

/* The auth metadata a login attaches (also the token's "meta"). */
static void sb_token_meta(struct akv_buf *b, const struct fake_vault *fv,
                          const struct token *t)
{
    if (t->kind == TOK_K8S) {
        const struct k8s_role *r = &fv->cfg.k8s[t->role];

        akv_buf_puts(b, "{\"role\":");
        sb_json_str(b, r->name);
        akv_buf_printf(b,
                       ",\"service_account_name\":\"ak2vault\","
                       "\"service_account_namespace\":\"default\","
                       "\"service_account_secret_name\":\"\","
                       "\"service_account_uid\":\"%s\"}",
                       r->sa_uid);
    } else if (t->kind == TOK_APPROLE) {
        akv_buf_puts(b, "{\"role_name\":\"ak2vault\"}");
    } else {
        akv_buf_puts(b, "null");
    }
}

/* The "auth" block of login and renew responses (api.SecretAuth order). */
static void sb_auth_block(struct akv_buf *b, const struct fake_vault *fv,
                          const char *id, const struct token *t,
                          int64_t lease_duration)
{
    const char *pol = token_policies_json(t);

    akv_buf_puts(b, "{\"client_token\":");
    sb_json_str(b, id);
    akv_buf_printf(b,
                   ",\"accessor\":\"%s\",\"policies\":%s,\"token_policies\":%s,"
                   "\"metadata\":",
                   t->accessor, pol, pol);
    sb_token_meta(b, fv, t);
    akv_buf_printf(b,
                   ",\"lease_duration\":%" PRId64 ",\"renewable\":true,"
                   "\"entity_id\":\"%s\",\"token_type\":\"service\","
                   "\"orphan\":true,\"mfa_requirement\":null,\"num_uses\":0}",
                   lease_duration, token_entity(fv, t));
}

/* Issues a login token; replies 200 with the auth block. */
static void issue_token(struct rq *rq, enum tok_kind kind, size_t role,
                        const char *mount_type, const char *warning)
{
    struct fake_vault *fv = rq->fv;
    int64_t ttl = fv->cfg.token_ttl;
    int64_t max_ttl = fv->cfg.token_max_ttl;
    const struct vault_faults *vx = vfaults(rq->fc);
    const char *warnings[1];
    char id[TOKEN_LEN + 1];
    struct token *t;
    struct token snap;
    struct akv_buf b = TEXT_INIT;
    struct akv_buf auth = TEXT_INIT;

    memset(&snap, 0, sizeof(snap));
    /* a fault plan may shorten the lives of tokens issued from now on */
    if (vx && vx->token_ttl > 0) {
        ttl = vx->token_ttl;
    }
    if (vx && vx->token_max_ttl > 0) {
        max_ttl = vx->token_max_ttl;
    }
    if (ttl > max_ttl) {
        ttl = max_ttl;
    }
    pthread_mutex_lock(&fv->tok_lock);
    do {
        gen_token(id);
    } while (fakehtab_find(&fv->tokens, id));
    t = token_new(id, kind, role);
    if (t) {
        t->issued = akv_wall_ns();
        t->expires = ns_after(t->issued, ttl);
        t->creation_ttl = ttl;
        t->max_ttl = max_ttl;
        fakehtab_insert(&fv->tokens, &t->node);
        snap = *t;
    }
    pthread_mutex_unlock(&fv->tok_lock);
    if (!t) {
        reply_error(rq->resp, 500, "out of memory");
        return;
    }
    STAT_INC(fv, logins);
    sb_auth_block(&auth, fv, id, &snap, ttl);
    if (auth.err != AKV_OK) {
        akv_buf_free(&auth);
        reply_error(rq->resp, 500, "out of memory");
        return;
    }
    sb_env_begin(&b);
    akv_buf_puts(&b, "null");
    warnings[0] = warning;
    sb_env_end(&b, warnings, warning ? 1 : 0, auth.data, mount_type, 1);
    akv_buf_free(&auth);
    reply_sb(rq->resp, 200, &b);
}

/* ------------------------------------------------------------------------ */
/* Auth endpoints                                                            */
/* ------------------------------------------------------------------------ */

/* Reads a JWT file and strips surrounding whitespace. NULL on failure. */
static char *read_jwt_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;
    size_t start = 0;

    if (!f) {
        fprintf(stderr, "fake-vault: cannot open JWT file %s: %s\n", path,
                strerror(errno));
        return NULL;
    }
    buf = malloc(JWT_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, JWT_FILE_MAX, f);
    fclose(f);
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\n' ||
                     buf[n - 1] == '\r' || buf[n - 1] == '\t')) {
        buf[--n] = '\0';
    }
    while (buf[start] == ' ' || buf[start] == '\n' || buf[start] == '\r' ||
           buf[start] == '\t') {
        start++;
    }
    if (start > 0) {
        memmove(buf, buf + start, n - start + 1);
    }
    return buf;
}

/* POST auth/{k8s-mount}/login (vault-plugin-auth-kubernetes) */
static void k8s_login(struct rq *rq)
{
    static const char *const known[] = {"role", "jwt", NULL};
    struct fake_vault *fv = rq->fv;
    struct akv_buf err = TEXT_INIT;
    struct akv_buf warn = TEXT_INIT;
    char *role = NULL;
    char *jwt = NULL;
    char *want = NULL;
    size_t i;
    int failed;

    role = field_string(rq->body, "role", &err, &failed);
    if (!failed) {
        jwt = field_string(rq->body, "jwt", &err, &failed);
    }
    if (failed) {
        STAT_INC(fv, login_failures);
        reply_error(rq->resp, err.err != AKV_OK ? 500 : 400, text_or_oom(&err));
        goto out;
    }
    if (!role || !*role) {
        STAT_INC(fv, login_failures);
        reply_error(rq->resp, 400, "missing role");
        goto out;
    }
    if (!jwt || !*jwt) {
        STAT_INC(fv, login_failures);
        reply_error(rq->resp, 400, "missing jwt");
        goto out;
    }
    for (i = 0; i < fv->cfg.nk8s; i++) {
        if (strcmp(fv->cfg.k8s[i].name, role) == 0) {
            break;
        }
    }
    if (i == fv->cfg.nk8s) {
        STAT_INC(fv, login_failures);
        akv_buf_puts(&err, "invalid role name ");
        sb_go_quote(&err, role);
        reply_error(rq->resp, 400, text_or_oom(&err));
        goto out;
    }
    /* read at every login so a test can rotate the projected token */
    want = read_jwt_file(fv->cfg.k8s[i].jwt_file);
    if (!want || strcmp(want, jwt) != 0) {
        STAT_INC(fv, login_failures);
        reply_error(rq->resp, 403, "permission denied");
        goto out;
    }
    ignored_params(rq->body, known, &warn);
    issue_token(rq, TOK_K8S, i, "kubernetes", warn.len ? warn.data : NULL);
out:
    akv_buf_free(&err);
    akv_buf_free(&warn);
    free(role);
    free(jwt);
    free(want);
}

static void trim_space(char *s)
{
    size_t n = strlen(s);
    size_t start = 0;

    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
                     s[n - 1] == '\r')) {
        s[--n] = '\0';
    }
    while (s[start] == ' ' || s[start] == '\t' || s[start] == '\n' ||
           s[start] == '\r') {
        start++;
    }
    if (start > 0) {
        memmove(s, s + start, n - start + 1);
    }
}

/* POST auth/approle/login */
static void approle_login(struct rq *rq)
{
    static const char *const known[] = {"role_id", "secret_id", NULL};
    struct fake_vault *fv = rq->fv;
    struct akv_buf err = TEXT_INIT;
    struct akv_buf warn = TEXT_INIT;
    char *role_id = NULL;
    char *secret_id = NULL;
    size_t i;
    int failed;

    role_id = field_string(rq->body, "role_id", &err, &failed);
    if (!failed) {
        secret_id = field_string(rq->body, "secret_id", &err, &failed);
    }
    if (failed) {
        STAT_INC(fv, login_failures);
        reply_error(rq->resp, err.err != AKV_OK ? 500 : 400, text_or_oom(&err));
        goto out;
    }
    if (role_id) {
        trim_space(role_id);
    }
    if (secret_id) {
        trim_space(secret_id);
    }
    if (!role_id || !*role_id) {
        STAT_INC(fv, login_failures);
        reply_error(rq->resp, 400, "missing role_id");
        goto out;
    }
    for (i = 0; i < fv->cfg.napproles; i++) {
        if (strcmp(fv->cfg.approles[i].role_id, role_id) == 0) {
            break;
        }
    }
    if (i == fv->cfg.napproles) {
        STAT_INC(fv, login_failures);
        reply_error(rq->resp, 400, "invalid role or secret ID");
        goto out;
    }
    if (!secret_id || !*secret_id) {
        STAT_INC(fv, login_failures);
        reply_error(rq->resp, 400, "missing secret_id");
        goto out;
    }
    if (strcmp(fv->cfg.approles[i].secret_id, secret_id) != 0) {
        STAT_INC(fv, login_failures);
        reply_error(rq->resp, 400, "invalid role or secret ID");
        goto out;
    }
    ignored_params(rq->body, known, &warn);
    issue_token(rq, TOK_APPROLE, i, "approle", warn.len ? warn.data : NULL);
out:
    akv_buf_free(&err);
    akv_buf_free(&warn);
    free(role_id);
    free(secret_id);
}

/* GET auth/token/lookup-self */
static void lookup_self(struct rq *rq)
{
    struct fake_vault *fv = rq->fv;
    const struct token *t = &rq->tok;
    int64_t now = akv_wall_ns();
    struct akv_buf b = TEXT_INIT;

    if (rq->op != OP_READ) {
        reply_error(rq->resp, 405, MSG_UNSUPPORTED_OP);
        return;
    }
    sb_env_begin(&b);
    akv_buf_printf(&b,
                   "{\"accessor\":\"%s\",\"creation_time\":%lld,"
                   "\"creation_ttl\":%" PRId64 ",\"display_name\":",
                   t->accessor, (long long)(t->issued / NS_PER_SEC),
                   t->creation_ttl);
    if (t->kind == TOK_ROOT) {
        akv_buf_puts(&b, "\"root\"");
    } else if (t->kind == TOK_K8S) {
        /* the mount path, '/' turned into '-', then namespace-name */
        const char *m;

        akv_buf_putc(&b, '"');
        for (m = fv->cfg.k8s_mount; *m; m++) {
            akv_buf_putc(&b, *m == '/' ? '-' : *m);
        }
        akv_buf_puts(&b, "-default-ak2vault\"");
    } else {
        akv_buf_puts(&b, "\"approle\"");
    }
    akv_buf_puts(&b, ",\"entity_id\":");
    sb_json_str(&b, token_entity(fv, t));
    akv_buf_puts(&b, ",\"expire_time\":");
    if (t->kind == TOK_ROOT) {
        akv_buf_puts(&b, "null");
    } else {
        sb_time(&b, t->expires);
    }
    akv_buf_puts(&b, ",\"explicit_max_ttl\":0,\"id\":");
    sb_json_str(&b, rq->token);
    if (t->kind != TOK_ROOT) {
        akv_buf_puts(&b, ",\"issue_time\":");
        sb_time(&b, t->issued);
        if (t->renewed != 0) {
            akv_buf_puts(&b, ",\"last_renewal\":");
            sb_time(&b, t->renewed);
            akv_buf_printf(&b, ",\"last_renewal_time\":%lld",
                           (long long)(t->renewed / NS_PER_SEC));
        }
    }
    akv_buf_puts(&b, ",\"meta\":");
    sb_token_meta(&b, fv, t);
    akv_buf_puts(&b, ",\"num_uses\":0,\"orphan\":true,\"path\":");
    if (t->kind == TOK_ROOT) {
        akv_buf_puts(&b, "\"auth/token/root\"");
    } else if (t->kind == TOK_K8S) {
        akv_buf_puts(&b, "\"auth/");
        akv_buf_puts(&b, fv->cfg.k8s_mount);
        akv_buf_puts(&b, "/login\"");
    } else {
        akv_buf_puts(&b, "\"auth/approle/login\"");
    }
    akv_buf_printf(&b, ",\"policies\":%s", token_policies_json(t));
    if (t->kind == TOK_ROOT) {
        akv_buf_puts(&b, ",\"ttl\":0");
    } else {
        int64_t left = (t->expires - now) / NS_PER_SEC;

        akv_buf_printf(&b, ",\"renewable\":true,\"ttl\":%" PRId64,
                       left < 0 ? 0 : left);
    }
    akv_buf_puts(&b, ",\"type\":\"service\"}");
    sb_env_end(&b, NULL, 0, NULL, "token", 1);
    reply_sb(rq->resp, 200, &b);
}

/* POST auth/token/renew-self (framework.CalculateTTL for the new TTL) */
static void renew_self(struct rq *rq)
{
    static const char *const known[] = {"increment", "token", NULL};
    struct fake_vault *fv = rq->fv;
    struct akv_buf err = TEXT_INIT;
    struct akv_buf b = TEXT_INIT;
    struct akv_buf auth = TEXT_INIT;
    struct akv_buf capw = TEXT_INIT;
    struct akv_buf ignw = TEXT_INIT;
    const char *warnings[2];
    size_t nwarn = 0;
    struct token *t;
    struct token snap;
    int64_t now;
    int64_t increment = 0;
    int64_t ttl;
    int64_t max_valid;
    int found = 0;

    memset(&snap, 0, sizeof(snap));
    if (rq->op != OP_WRITE) {
        reply_error(rq->resp, 405, MSG_UNSUPPORTED_OP);
        return;
    }
    if (field_duration(rq->body, "increment", &increment, &err) < 0) {
        reply_error(rq->resp, 400, text_or_oom(&err));
        akv_buf_free(&err);
        return;
    }
    if (rq->tok.kind == TOK_ROOT) {
        reply_error(rq->resp, 400, "lease is not renewable");
        return;
    }
    /* the TTL the token was issued with stands in for the role's TTL */
    ttl = increment > 0 ? increment : rq->tok.creation_ttl;
    pthread_mutex_lock(&fv->tok_lock);
    t = (struct token *)fakehtab_find(&fv->tokens, rq->token);
    now = akv_wall_ns();
    if (t && now <= t->expires) {
        /* both ends are truncated to seconds, as CalculateTTL does */
        max_valid = t->issued / NS_PER_SEC + t->max_ttl - now / NS_PER_SEC;
        if (max_valid > 0) {
            if (max_valid < ttl) {
                char want[48];
                char cap[48];

                fmt_duration(want, sizeof(want), ttl);
                fmt_duration(cap, sizeof(cap), max_valid);
                akv_buf_printf(
                    &capw,
                    "TTL of \"%s\" exceeded the effective max_ttl of "
                    "\"%s\"; TTL value is capped accordingly",
                    want, cap);
                ttl = max_valid;
            }
            t->expires = ns_after(now, ttl);
            t->renewed = now;
            snap = *t;
            found = 1;
        }
    }
    pthread_mutex_unlock(&fv->tok_lock);
    if (!found) {
        /* it expired or was revoked since authentication */
        akv_buf_free(&capw);
        reply_error(rq->resp, 403, MSG_INVALID_TOKEN);
        return;
    }
    STAT_INC(fv, renewals);
    if (capw.len) {
        warnings[nwarn++] = capw.data;
    }
    if (ignored_params(rq->body, known, &ignw)) {
        warnings[nwarn++] = ignw.data;
    }
    sb_auth_block(&auth, fv, rq->token, &snap, ttl);
    sb_env_begin(&b);
    akv_buf_puts(&b, "null");
    sb_env_end(&b, warnings, nwarn,
               auth.err != AKV_OK ? "null" : akv_buf_str(&auth), "token", 1);
    if (auth.err != AKV_OK || capw.err != AKV_OK || ignw.err != AKV_OK) {
        b.err = AKV_ERR_NOMEM;
    }
    akv_buf_free(&auth);
    akv_buf_free(&capw);
    akv_buf_free(&ignw);
    reply_sb(rq->resp, 200, &b);
}

/* ------------------------------------------------------------------------ */
/* KV v2                                                                     */
/* ------------------------------------------------------------------------ */

static struct kv_secret *secret_find(struct fake_vault *fv, const char *key)
{
    return (struct kv_secret *)fakehtab_find(&fv->secrets, key);
}

static struct kv_secret *secret_new(struct fake_vault *fv, const char *key)
{
    struct kv_secret *s = calloc(1, sizeof(*s));

    if (!s) {
        return NULL;
    }
    s->node.key = strdup(key);
    if (!s->node.key) {
        free(s);
        return NULL;
    }
    fakehtab_insert(&fv->secrets, &s->node);
    return s;
}

static void secret_free(struct kv_secret *s)
{
    size_t i;

    if (!s) {
        return;
    }
    for (i = 0; i < s->nvers; i++) {
        akv_wipe_free(s->vers[i].data);
    }
    free(s->vers);
    free(s->custom);
    free(s->node.key);
    free(s);
}

static void secret_release(struct fakehtab_node *n)
{
    secret_free((struct kv_secret *)n);
}

static struct kv_version *secret_version(struct kv_secret *s, uint64_t v)
{
    if (v < s->first || v - s->first >= s->nvers) {
        return NULL;
    }
    return &s->vers[v - s->first];
}

/*
 * KeyMetadata.AddVersion: appends a version (taking \p data) and prunes the
 * oldest ones past max_versions. @returns -1 on OOM (nothing changed).
 */
static int secret_add_version(struct kv_secret *s, char *data, int64_t now,
                              uint32_t mount_max)
{
    struct kv_version *v;
    uint32_t max;

    if (s->nvers == s->capvers) {
        size_t cap = s->capvers ? s->capvers * 2 : 4;
        struct kv_version *nv = realloc(s->vers, cap * sizeof(*nv));

        if (!nv) {
            return -1;
        }
        s->vers = nv;
        s->capvers = cap;
    }
    if (s->nvers == 0) {
        s->first = s->current + 1;
    }
    v = &s->vers[s->nvers++];
    memset(v, 0, sizeof(*v));
    v->data = data;
    v->created = now;
    if (s->delete_after > 0) {
        v->deleted = ns_after(now, s->delete_after);
    }
    s->current++;
    s->updated = now;
    if (s->created == 0) {
        s->created = now;
    }
    if (s->max_versions != 0) {
        max = s->max_versions;
    } else if (mount_max != 0) {
        max = mount_max;
    } else {
        max = DEFAULT_MAX_VERSIONS;
    }
    if (s->nvers > max) {
        uint64_t last_to_delete = s->current - max;
        size_t drop = 0;

        while (drop < s->nvers && s->first + drop <= last_to_delete) {
            akv_wipe_free(s->vers[drop].data);
            drop++;
        }
        memmove(s->vers, s->vers + drop, (s->nvers - drop) * sizeof(*s->vers));
        s->nvers -= drop;
        s->first += drop;
        s->oldest = last_to_delete + 1;
    }
    return 0;
}

static int version_deleted(const struct kv_version *v, int64_t now)
{
    return v->deleted != 0 && v->deleted <= now;
}

/* The per-version metadata map of data reads and writes (sorted keys). */
static void sb_version_meta(struct akv_buf *b, const struct kv_secret *s,
                            const struct kv_version *v, uint64_t num)
{
    akv_buf_puts(b, "{\"created_time\":");
    sb_time(b, v->created);
    akv_buf_puts(b, ",\"custom_metadata\":");
    akv_buf_puts(b, s->custom ? s->custom : "null");
    akv_buf_puts(b, ",\"deletion_time\":");
    sb_time(b, v->deleted);
    akv_buf_printf(b, ",\"destroyed\":%s,\"version\":%" PRIu64 "}",
                   v->destroyed ? "true" : "false", num);
}

/* POST/PUT {mount}/data/KEY */
static void kv_data_write(struct rq *rq, const char *key)
{
    static const char *const known[] = {"path", "version", "options", "data",
                                        NULL};
    struct fake_vault *fv = rq->fv;
    const cJSON *data = NULL;
    const cJSON *options = NULL;
    const cJSON *cas_item;
    struct akv_buf err = TEXT_INIT;
    struct akv_buf text = TEXT_INIT;
    struct akv_buf warn = TEXT_INIT;
    struct akv_buf b = TEXT_INIT;
    struct kv_secret *s;
    struct kv_version *v;
    int64_t now;
    const char *warning;
    const char *warnings[1];
    int64_t cas = 0;
    int has_cas = 0;
    int has_data;
    char *stored;

    has_data = field_map(rq->body, "data", &data, &err);
    if (has_data >= 0 && field_map(rq->body, "options", &options, &err) < 0) {
        has_data = -1;
    }
    if (has_data < 0) {
        reply_error(rq->resp, 400, text_or_oom(&err));
        goto out;
    }
    if (!has_data) {
        reply_error(rq->resp, 400, "no data provided");
        goto out;
    }
    cas_item = obj_get(options, "cas");
    if (cas_item) {
        has_cas = 1;
        if (weak_int(cas_item, "cas", &cas, NULL) < 0) {
            reply_error(rq->resp, 400, "error parsing check-and-set parameter");
            goto out;
        }
    }
    if (data) {
        sb_go_json(&text, data);
    } else {
        /* "data": null is stored as such and reads back as null */
        akv_buf_puts(&text, "null");
    }
    ignored_params(rq->body, known, &warn);
    if (text.err != AKV_OK || warn.err != AKV_OK) {
        reply_error(rq->resp, 500, "out of memory");
        goto out;
    }
    warning = warn.len ? warn.data : NULL;

    now = akv_wall_ns();
    pthread_mutex_lock(&fv->kv_lock);
    s = secret_find(fv, key);
    if (has_cas) {
        if ((uint64_t)cas != (s ? s->current : 0)) {
            pthread_mutex_unlock(&fv->kv_lock);
            STAT_INC(fv, cas_mismatch);
            reply_error(rq->resp, 400,
                        "check-and-set parameter did not "
                        "match the current version");
            goto out;
        }
    } else if (fv->cfg.cas_required || (s && s->cas_required)) {
        pthread_mutex_unlock(&fv->kv_lock);
        reply_error(rq->resp, 400,
                    "check-and-set parameter required for this call");
        goto out;
    }
    if (!s) {
        s = secret_new(fv, key);
    }
    stored = akv_buf_take(&text);
    if (!s || !stored ||
        secret_add_version(s, stored, now, fv->cfg.max_versions) < 0) {
        if (s && s->current == 0 && s->created == 0) {
            fakehtab_remove(&fv->secrets, key);
            secret_free(s);
        }
        pthread_mutex_unlock(&fv->kv_lock);
        akv_wipe_free(stored);
        reply_error(rq->resp, 500, "out of memory");
        goto out;
    }
    STAT_INC(fv, kv_writes);
    v = secret_version(s, s->current);
    sb_env_begin(&b);
    akv_buf_puts(&b, "{\"created_time\":");
    sb_time(&b, v->created);
    akv_buf_puts(&b, ",\"custom_metadata\":");
    akv_buf_puts(&b, s->custom ? s->custom : "null");
    akv_buf_puts(&b, ",\"deletion_time\":");
    sb_time(&b, v->deleted);
    akv_buf_printf(&b, ",\"destroyed\":false,\"version\":%" PRIu64 "}",
                   s->current);
    pthread_mutex_unlock(&fv->kv_lock);
    warnings[0] = warning;
    sb_env_end(&b, warnings, warning ? 1 : 0, NULL, "kv", 1);
    reply_sb(rq->resp, 200, &b);
out:
    akv_buf_free(&err);
    akv_buf_free(&text);
    akv_buf_free(&warn);
}

/* GET {mount}/data/KEY[?version=N] */
static void kv_data_read(struct rq *rq, const char *key)
{
    struct fake_vault *fv = rq->fv;
    const char *vq = fakehttp_arg(rq->http, "version");
    int64_t now = akv_wall_ns();
    struct kv_secret *s;
    struct kv_version *v;
    struct akv_buf b = TEXT_INIT;
    int64_t want = 0;
    uint64_t num;

    if (vq && parse_go_int(vq, &want) != 0) {
        akv_buf_puts(&b, "error converting input ");
        akv_buf_puts(&b, vq);
        akv_buf_puts(&b, " for field \"version\": cannot parse '' as int: "
                         "strconv.ParseInt: parsing ");
        sb_go_quote(&b, vq);
        akv_buf_puts(&b, ": invalid syntax");
        reply_error(rq->resp, 400, text_or_oom(&b));
        akv_buf_free(&b);
        return;
    }
    pthread_mutex_lock(&fv->kv_lock);
    s = secret_find(fv, key);
    if (!s) {
        pthread_mutex_unlock(&fv->kv_lock);
        reply_error(rq->resp, 404, NULL);
        return;
    }
    num = want > 0 ? (uint64_t)want : s->current;
    v = secret_version(s, num);
    if (!v) {
        pthread_mutex_unlock(&fv->kv_lock);
        reply_error(rq->resp, 404, NULL);
        return;
    }
    sb_env_begin(&b);
    if (version_deleted(v, now) || v->destroyed) {
        /* RespondWithStatusCode: the metadata in a raw 404 body */
        akv_buf_puts(&b, "{\"data\":null,\"metadata\":");
        sb_version_meta(&b, s, v, num);
        pthread_mutex_unlock(&fv->kv_lock);
        akv_buf_puts(&b, "}");
        sb_env_end(&b, NULL, 0, NULL, "", 0);
        reply_sb(rq->resp, 404, &b);
        return;
    }
    akv_buf_puts(&b, "{\"data\":");
    akv_buf_puts(&b, v->data);
    akv_buf_puts(&b, ",\"metadata\":");
    sb_version_meta(&b, s, v, num);
    pthread_mutex_unlock(&fv->kv_lock);
    akv_buf_puts(&b, "}");
    sb_env_end(&b, NULL, 0, NULL, "kv", 1);
    reply_sb(rq->resp, 200, &b);
}

/* DELETE {mount}/data/KEY: soft-deletes the current version. */
static void kv_data_delete(struct rq *rq, const char *key)
{
    struct fake_vault *fv = rq->fv;
    int64_t now = akv_wall_ns();
    struct kv_secret *s;
    struct kv_version *v;

    pthread_mutex_lock(&fv->kv_lock);
    s = secret_find(fv, key);
    v = s ? secret_version(s, s->current) : NULL;
    if (v && !v->destroyed && !version_deleted(v, now)) {
        v->deleted = now;
    }
    pthread_mutex_unlock(&fv->kv_lock);
    reply_no_content(rq->resp);
}

struct vnum {
    uint64_t v;
    char s[24];
};

static int cmp_vnum(const void *a, const void *b)
{
    return strcmp(((const struct vnum *)a)->s, ((const struct vnum *)b)->s);
}

/* GET {mount}/metadata/KEY */
static void kv_metadata_read(struct rq *rq, const char *key)
{
    struct fake_vault *fv = rq->fv;
    struct kv_secret *s;
    struct vnum *order = NULL;
    struct akv_buf b = TEXT_INIT;
    char dva[48];
    size_t i;

    pthread_mutex_lock(&fv->kv_lock);
    s = secret_find(fv, key);
    if (!s) {
        pthread_mutex_unlock(&fv->kv_lock);
        reply_error(rq->resp, 404, NULL);
        return;
    }
    if (s->nvers > 0) {
        order = malloc(s->nvers * sizeof(*order));
        if (!order) {
            pthread_mutex_unlock(&fv->kv_lock);
            reply_error(rq->resp, 500, "out of memory");
            return;
        }
        /* Go marshals the versions map with its keys sorted as strings */
        for (i = 0; i < s->nvers; i++) {
            order[i].v = s->first + i;
            snprintf(order[i].s, sizeof(order[i].s), "%" PRIu64, order[i].v);
        }
        qsort(order, s->nvers, sizeof(*order), cmp_vnum);
    }
    fmt_duration(dva, sizeof(dva), s->delete_after);
    sb_env_begin(&b);
    akv_buf_printf(&b, "{\"cas_required\":%s,\"created_time\":",
                   s->cas_required ? "true" : "false");
    sb_time(&b, s->created);
    akv_buf_printf(&b, ",\"current_version\":%" PRIu64 ",\"custom_metadata\":",
                   s->current);
    akv_buf_puts(&b, s->custom ? s->custom : "null");
    akv_buf_printf(&b,
                   ",\"delete_version_after\":\"%s\",\"max_versions\":%" PRIu32
                   ",\"oldest_version\":%" PRIu64 ",\"updated_time\":",
                   dva, s->max_versions, s->oldest);
    sb_time(&b, s->updated);
    akv_buf_puts(&b, ",\"versions\":{");
    for (i = 0; i < s->nvers; i++) {
        const struct kv_version *v = secret_version(s, order[i].v);

        akv_buf_printf(&b, "%s\"%s\":{\"created_time\":", i ? "," : "",
                       order[i].s);
        sb_time(&b, v->created);
        akv_buf_puts(&b, ",\"deletion_time\":");
        sb_time(&b, v->deleted);
        akv_buf_printf(&b, ",\"destroyed\":%s}",
                       v->destroyed ? "true" : "false");
    }
    pthread_mutex_unlock(&fv->kv_lock);
    free(order);
    akv_buf_puts(&b, "}}");
    sb_env_end(&b, NULL, 0, NULL, "kv", 1);
    reply_sb(rq->resp, 200, &b);
}

/* multierror's text: "1 error occurred:\n\t* e\n\n" / "N errors ..." */
static void multierror_add(struct akv_buf *list, size_t *count, const char *msg)
{
    akv_buf_puts(list, *count ? "\n\t* " : "* ");
    akv_buf_puts(list, msg);
    (*count)++;
}

/*
 * Parses and validates custom_metadata (Vault's parseCustomMetadata and
 * validateCustomMetadata). @returns 0 with *out the JSON to store (NULL for
 * an empty map), or -1 with the error text in \p err.
 */
static int parse_custom_metadata(const cJSON *cm, char **out,
                                 struct akv_buf *err)
{
    struct member_ref *m = NULL;
    char **vals = NULL;
    struct akv_buf list = TEXT_INIT;
    struct akv_buf one = TEXT_INIT;
    struct akv_buf json = TEXT_INIT;
    size_t nerr = 0;
    size_t n = 0;
    size_t i;
    int rc = -1;

    *out = NULL;
    if (!cm) {
        return 0;
    }
    n = sorted_members(cm, &m);
    if (n == (size_t)-1) {
        err->err = AKV_ERR_NOMEM;
        return -1;
    }
    if (n == 0) {
        return 0;
    }
    vals = calloc(n, sizeof(*vals));
    if (!vals) {
        err->err = AKV_ERR_NOMEM;
        goto out;
    }
    for (i = 0; i < n; i++) {
        struct akv_buf inner = TEXT_INIT;

        vals[i] = weak_string(m[i].item, &inner);
        if (!vals[i]) {
            if (inner.len) {
                akv_buf_puts(err, "custom_metadata validation failed: ");
                akv_buf_puts(err, inner.data);
            } else {
                err->err = AKV_ERR_NOMEM;
            }
            akv_buf_free(&inner);
            goto out;
        }
    }
    if (n > 64) {
        akv_buf_printf(
            &one,
            "custom_metadata validation failed: payload must contain "
            "at most 64 keys, provided %zu",
            n);
        multierror_add(&list, &nerr, akv_buf_str(&one));
        akv_buf_free(&one);
    } else {
        for (i = 0; i < n; i++) {
            const char *k = m[i].item->string;
            size_t kl = strlen(k);
            size_t vl = strlen(vals[i]);

            if (kl == 0 || kl > 128) {
                akv_buf_puts(&one,
                             "custom_metadata validation failed: length of "
                             "key ");
                sb_go_quote(&one, k);
                akv_buf_printf(&one, " is %zu but must be 0 < len(key) <= 128",
                               kl);
                multierror_add(&list, &nerr, akv_buf_str(&one));
                akv_buf_free(&one);
            }
            if (vl == 0 || vl > 512) {
                akv_buf_puts(&one,
                             "custom_metadata validation failed: length of "
                             "value for key ");
                sb_go_quote(&one, k);
                akv_buf_printf(&one,
                               " is %zu but must be 0 < len(value) <= 512", vl);
                multierror_add(&list, &nerr, akv_buf_str(&one));
                akv_buf_free(&one);
            }
            if (!str_printable(k)) {
                akv_buf_puts(&one, "custom_metadata validation failed: key ");
                sb_go_quote(&one, k);
                akv_buf_printf(&one, " (%s) contains unprintable characters",
                               k);
                multierror_add(&list, &nerr, akv_buf_str(&one));
                akv_buf_free(&one);
            }
            if (!str_printable(vals[i])) {
                akv_buf_puts(&one,
                             "custom_metadata validation failed: value for "
                             "key ");
                sb_go_quote(&one, k);
                akv_buf_puts(&one, " contains unprintable characters");
                multierror_add(&list, &nerr, akv_buf_str(&one));
                akv_buf_free(&one);
            }
        }
    }
    if (nerr > 0) {
        if (nerr == 1) {
            akv_buf_puts(err, "1 error occurred:\n\t");
        } else {
            akv_buf_printf(err, "%zu errors occurred:\n\t", nerr);
        }
        akv_buf_puts(err, akv_buf_str(&list));
        akv_buf_puts(err, "\n\n");
        goto out;
    }
    akv_buf_putc(&json, '{');
    for (i = 0; i < n; i++) {
        if (i > 0) {
            akv_buf_putc(&json, ',');
        }
        sb_json_str(&json, m[i].item->string);
        akv_buf_putc(&json, ':');
        sb_json_str(&json, vals[i]);
    }
    akv_buf_putc(&json, '}');
    *out = akv_buf_take(&json);
    if (!*out) {
        err->err = AKV_ERR_NOMEM;
        goto out;
    }
    rc = 0;
out:
    if (vals) {
        for (i = 0; i < n; i++) {
            free(vals[i]);
        }
        free(vals);
    }
    free(m);
    if (list.err != AKV_OK || one.err != AKV_OK) {
        err->err = AKV_ERR_NOMEM;
    }
    akv_buf_free(&list);
    akv_buf_free(&one);
    akv_buf_free(&json);
    return rc;
}

/* POST/PUT {mount}/metadata/KEY */
static void kv_metadata_write(struct rq *rq, const char *key)
{
    static const char *const known[] = {"path",
                                        "cas_required",
                                        "max_versions",
                                        "delete_version_after",
                                        "custom_metadata",
                                        NULL};
    static const char cas_warning[] =
        "\"cas_required\" set to false, but is mandated by backend config. "
        "This value will be ignored.";
    struct fake_vault *fv = rq->fv;
    const cJSON *max_item = obj_get(rq->body, "max_versions");
    const cJSON *cas_item = obj_get(rq->body, "cas_required");
    const cJSON *cm = NULL;
    struct akv_buf err = TEXT_INIT;
    struct akv_buf ignw = TEXT_INIT;
    struct akv_buf b = TEXT_INIT;
    struct kv_secret *s;
    const char *warnings[2];
    size_t nwarn = 0;
    char *custom = NULL;
    int64_t max_versions = 0;
    int64_t dva = 0;
    int cas_required = 0;
    int has_dva;
    int has_cm;

    /* the framework validates every declared field before the handler */
    if ((max_item &&
         weak_int(max_item, "max_versions", &max_versions, &err) < 0) ||
        (cas_item &&
         weak_bool(cas_item, "cas_required", &cas_required, &err) < 0)) {
        reply_error(rq->resp, 400, text_or_oom(&err));
        goto out;
    }
    has_dva = field_duration(rq->body, "delete_version_after", &dva, &err);
    has_cm =
        has_dva < 0 ? -1 : field_map(rq->body, "custom_metadata", &cm, &err);
    if (has_dva < 0 || has_cm < 0) {
        reply_error(rq->resp, 400, text_or_oom(&err));
        goto out;
    }
    if (!max_item && !cas_item && !has_dva && !has_cm) {
        reply_no_content(rq->resp);
        goto out;
    }
    if (has_cm && parse_custom_metadata(cm, &custom, &err) < 0) {
        reply_error(rq->resp, err.err != AKV_OK ? 500 : 400, text_or_oom(&err));
        goto out;
    }
    if (cas_item && !cas_required && fv->cfg.cas_required) {
        warnings[nwarn++] = cas_warning;
    }

    pthread_mutex_lock(&fv->kv_lock);
    s = secret_find(fv, key);
    if (!s) {
        s = secret_new(fv, key);
        if (!s) {
            pthread_mutex_unlock(&fv->kv_lock);
            reply_error(rq->resp, 500, "out of memory");
            goto out;
        }
        s->created = akv_wall_ns();
        s->updated = s->created;
    }
    if (max_item) {
        s->max_versions = (uint32_t)max_versions;
    }
    if (cas_item) {
        s->cas_required = cas_required;
    }
    if (has_dva) {
        s->delete_after = dva;
    }
    if (has_cm) {
        free(s->custom);
        s->custom = custom;
        custom = NULL;
    }
    pthread_mutex_unlock(&fv->kv_lock);

    if (nwarn == 0) {
        reply_no_content(rq->resp);
        goto out;
    }
    if (ignored_params(rq->body, known, &ignw)) {
        warnings[nwarn++] = ignw.data;
    }
    sb_env_begin(&b);
    akv_buf_puts(&b, "null");
    sb_env_end(&b, warnings, nwarn, NULL, "kv", 1);
    if (ignw.err != AKV_OK) {
        b.err = AKV_ERR_NOMEM;
    }
    reply_sb(rq->resp, 200, &b);
out:
    free(custom);
    akv_buf_free(&err);
    akv_buf_free(&ignw);
}

/* DELETE {mount}/metadata/KEY: every version and the metadata. */
static void kv_metadata_delete(struct rq *rq, const char *key)
{
    struct fake_vault *fv = rq->fv;
    struct fakehtab_node *n;

    pthread_mutex_lock(&fv->kv_lock);
    n = fakehtab_remove(&fv->secrets, key);
    pthread_mutex_unlock(&fv->kv_lock);
    secret_free((struct kv_secret *)n);
    reply_no_content(rq->resp);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* LIST {mount}/metadata/PREFIX/: the keys and "dirs/" one level down. */
static void kv_metadata_list(struct rq *rq, const char *prefix)
{
    struct fake_vault *fv = rq->fv;
    size_t plen = strlen(prefix);
    char **keys = NULL;
    size_t n = 0;
    size_t cap = 0;
    size_t i;
    size_t k = 0;
    int oom = 0;
    struct akv_buf b = TEXT_INIT;

    pthread_mutex_lock(&fv->kv_lock);
    for (i = 0; i < fv->secrets.nb && !oom; i++) {
        struct fakehtab_node *h;

        for (h = fv->secrets.b[i]; h && !oom; h = h->next) {
            const char *rest;
            const char *slash;

            if (strncmp(h->key, prefix, plen) != 0 || h->key[plen] == '\0') {
                continue;
            }
            rest = h->key + plen;
            slash = strchr(rest, '/');
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                char **nk = realloc(keys, nc * sizeof(*nk));

                if (!nk) {
                    oom = 1;
                    break;
                }
                keys = nk;
                cap = nc;
            }
            keys[n] = slash ? strndup(rest, (size_t)(slash - rest) + 1)
                            : strdup(rest);
            if (!keys[n]) {
                oom = 1;
                break;
            }
            n++;
        }
    }
    pthread_mutex_unlock(&fv->kv_lock);
    if (oom) {
        reply_error(rq->resp, 500, "out of memory");
        goto out;
    }
    if (n == 0) {
        reply_error(rq->resp, 404, NULL);
        goto out;
    }
    qsort(keys, n, sizeof(*keys), cmp_str);
    sb_env_begin(&b);
    akv_buf_puts(&b, "{\"keys\":[");
    for (i = 0; i < n; i++) {
        if (i > 0 && strcmp(keys[i], keys[i - 1]) == 0) {
            continue;
        }
        if (k++ > 0) {
            akv_buf_putc(&b, ',');
        }
        sb_json_str(&b, keys[i]);
    }
    akv_buf_puts(&b, "]}");
    sb_env_end(&b, NULL, 0, NULL, "kv", 1);
    reply_sb(rq->resp, 200, &b);
out:
    for (i = 0; i < n; i++) {
        free(keys[i]);
    }
    free(keys);
}

/* pathInvalid: what the KV backend says about paths it has no route for. */
static void kv_invalid_path(struct rq *rq, const char *rest)
{
    static const char *const roots[] = {"metadata", "data", "delete",
                                        "undelete", "destroy"};
    const char *sub = "get";
    char msg[256];
    size_t i;

    for (i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
        if (strcmp(rest, roots[i]) == 0) {
            reply_warning_404(rq->resp, MSG_NON_LISTING);
            return;
        }
    }
    switch (rq->op) {
    case OP_WRITE:
        sub = "put";
        break;
    case OP_PATCH:
        sub = "patch";
        break;
    case OP_LIST:
        sub = "list";
        break;
    case OP_DELETE:
        sub = "delete";
        break;
    case OP_READ:
        sub = "get";
        break;
    }
    snprintf(msg, sizeof(msg),
             "Invalid path for a versioned K/V secrets engine. See the API "
             "docs for the appropriate API endpoints to use. If using the "
             "Vault CLI, use 'vault kv %s' for this operation.",
             sub);
    reply_warning_404(rq->resp, msg);
}

/* Routes a request below the KV mount; \p rest is the path after it. */
static void kv_route(struct rq *rq, const char *rest)
{
    if (strncmp(rest, "data/", 5) == 0 && rest[5] != '\0' &&
        rest[strlen(rest) - 1] != '/') {
        const char *key = rest + 5;

        switch (rq->op) {
        case OP_READ:
            kv_data_read(rq, key);
            return;
        case OP_WRITE:
            kv_data_write(rq, key);
            return;
        case OP_DELETE:
            kv_data_delete(rq, key);
            return;
        case OP_PATCH:
        case OP_LIST:
            reply_error(rq->resp, 405, MSG_UNSUPPORTED_OP);
            return;
        }
    }
    if (strncmp(rest, "metadata/", 9) == 0) {
        const char *key = rest + 9;

        switch (rq->op) {
        case OP_READ:
            kv_metadata_read(rq, key);
            return;
        case OP_WRITE:
            kv_metadata_write(rq, key);
            return;
        case OP_DELETE:
            kv_metadata_delete(rq, key);
            return;
        case OP_LIST:
            kv_metadata_list(rq, key);
            return;
        case OP_PATCH:
            reply_error(rq->resp, 405, MSG_UNSUPPORTED_OP);
            return;
        }
    }
    kv_invalid_path(rq, rest);
}

/* ------------------------------------------------------------------------ */
/* sys/health                                                                */
/* ------------------------------------------------------------------------ */

/* A ?xxxcode= override, like Vault's health handler honours. */
static int health_code(const struct fakehttp_request *req, const char *name,
                       int def)
{
    const char *v = fakehttp_arg(req, name);
    long code;

    if (!v || !*v) {
        return def;
    }
    return akv_parse_long(v, 100, 999, &code) < 0 ? -1 : (int)code;
}

/* Always initialized and active, unless a fault plan seals it: then it is
 * a sealed standby with no cluster identity yet, as Vault reports. */
static void sys_health(struct rq *rq, int sealed)
{
    const char *m = rq->http->method;
    struct akv_buf b = TEXT_INIT;
    int code;

    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        reply_error(rq->resp, 405, NULL);
        return;
    }
    code = sealed ? health_code(rq->http, "sealedcode", 503)
                  : health_code(rq->http, "activecode", 200);
    if (code < 0) {
        reply_error(rq->resp, 400, "bad code");
        return;
    }
    akv_buf_printf(&b,
                   "{\"initialized\":true,\"sealed\":%s,\"standby\":%s,"
                   "\"performance_standby\":false,"
                   "\"replication_performance_mode\":\"disabled\","
                   "\"replication_dr_mode\":\"disabled\","
                   "\"server_time_utc\":%lld,\"version\":\"" VAULT_VERSION "\","
                   "\"enterprise\":false,",
                   sealed ? "true" : "false", sealed ? "true" : "false",
                   (long long)time(NULL));
    if (!sealed) {
        akv_buf_printf(&b,
                       "\"cluster_name\":\"vault-cluster-fake\","
                       "\"cluster_id\":\"%s\",",
                       rq->fv->cluster_id);
    }
    akv_buf_puts(&b, "\"echo_duration_ms\":0,\"clock_skew_ms\":0,"
                     "\"replication_primary_canary_age_ms\":0}\n");
    reply_sb(rq->resp, code, &b);
}

/* ------------------------------------------------------------------------ */
/* sys/capabilities-self                                                     */
/* ------------------------------------------------------------------------ */

static int deny_prefix_match(const struct fakefault_plan *fc,
                             const char *vpath);

#define CAP_PATHS_MAX 64

struct cap_paths {
    char *p[CAP_PATHS_MAX];
    size_t n;
};

/*
 * The capabilities of the presented token on \p path, as a JSON array
 * (acl.Capabilities, sorted as Core.Capabilities returns them). The root
 * token has ["root"] everywhere. Login tokens carry the policies
 * ["ak2vault","default"]; the fake enforces no ACL, so it models them as
 * granting every capability KV v2 knows, on every path. A deny_prefix
 * fault stands for a policy that denies: a covered path is ["deny"], for
 * the root token too, since the fault's 403 hits the root token as well.
 */
static const char *path_capabilities(const struct rq *rq, const char *path)
{
    if (deny_prefix_match(rq->fc, path)) {
        return "[\"deny\"]";
    }
    if (rq->tok.kind == TOK_ROOT) {
        return "[\"root\"]";
    }
    return "[\"create\",\"delete\",\"list\",\"patch\",\"read\",\"update\"]";
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends a trimmed copy of \p s[0..n) to \p out. @returns 0 or -1. */
static int slice_add(struct cap_paths *out, const char *s, size_t n,
                     struct akv_buf *err)
{
    char *copy;

    while (n > 0 && strchr(" \t\n\r", s[0])) {
        s++;
        n--;
    }
    while (n > 0 && strchr(" \t\n\r", s[n - 1])) {
        n--;
    }
    if (out->n >= CAP_PATHS_MAX) {
        akv_buf_printf(err, "at most %d paths at once", CAP_PATHS_MAX);
        return -1;
    }
    copy = strndup(s, n);
    if (!copy) {
        akv_buf_puts(err, "out of memory");
        return -1;
    }
    out->p[out->n++] = copy;
    return 0;
}

/*
 * A framework.TypeCommaStringSlice field (parseutil.ParseCommaStringSlice):
 * a string is split at commas ("" is no element at all), a list's items
 * are weakly decoded to strings; every element is trimmed of white space.
 * The fake takes at most CAP_PATHS_MAX elements.
 * @returns 0, or -1 with a message in \p err.
 */
static int field_comma_slice(const cJSON *body, const char *name,
                             struct cap_paths *out, struct akv_buf *err)
{
    const cJSON *v = obj_get(body, name);
    const cJSON *it;
    size_t idx = 0;

    if (!v || cJSON_IsNull(v)) {
        return 0;
    }
    if (cJSON_IsString(v)) {
        const char *p = v->valuestring;

        while (*p) {
            size_t len = strcspn(p, ",");

            if (slice_add(out, p, len, err) < 0) {
                return -1;
            }
            p += len;
            if (*p == ',') {
                p++;
                if (!*p && slice_add(out, p, 0, err) < 0) {
                    return -1; /* "a," is ["a", ""] */
                }
            }
        }
        return 0;
    }
    if (!cJSON_IsArray(v)) {
        field_error_prefix(err, v, name);
        akv_buf_printf(err, "'' source data must be an array or slice, got %s",
                       cJSON_IsObject(v) ? "map" : go_kind(v));
        return -1;
    }
    cJSON_ArrayForEach(it, v)
    {
        struct akv_buf item = TEXT_INIT;
        int rc;

        if (cJSON_IsString(it)) {
            akv_buf_puts(&item, it->valuestring);
        } else if (cJSON_IsNumber(it)) {
            sb_go_float(&item, it->valuedouble);
        } else if (cJSON_IsBool(it)) {
            akv_buf_puts(&item, cJSON_IsTrue(it) ? "1" : "0");
        } else if (!cJSON_IsNull(it)) {
            field_error_prefix(err, v, name);
            akv_buf_printf(err,
                           "'[%zu]' expected type 'string', got unconvertible "
                           "type '%s'",
                           idx,
                           cJSON_IsArray(it) ? "[]interface {}"
                                             : "map[string]interface {}");
            return -1;
        }
        if (item.err != AKV_OK) {
            akv_buf_puts(err, "out of memory");
            return -1;
        }
        rc = slice_add(out, akv_buf_str(&item), item.len, err);
        akv_buf_free(&item);
        if (rc < 0) {
            return -1;
        }
        idx++;
    }
    return 0;
}

/*
 * POST sys/capabilities-self {"paths": [...]} (vault/logical_system.go
 * handleCapabilities, http/logical.go respondLogical): the capabilities of
 * the calling token on each path; with exactly one path also under
 * "capabilities" (backwards compatibility). "path" is the deprecated
 * spelling, read when "paths" is empty. sys/ answers go through
 * logical.HTTPSysInjector: the data members appear at the top level as
 * well as under "data". Go emits the top-level ones in map order, which is
 * random; the fake sorts them. Any valid token may call it (Vault's
 * default policy grants it).
 */
static void capabilities_self(struct rq *rq)
{
    static const char *const known[] = {"path", "paths", "token", NULL};
    struct cap_paths paths = {{NULL}, 0};
    const char *keys[CAP_PATHS_MAX + 1];
    const char *single = NULL;
    size_t nkeys = 0;
    size_t i;
    struct akv_buf err = TEXT_INIT;
    struct akv_buf data = TEXT_INIT;
    struct akv_buf ignw = TEXT_INIT;
    struct akv_buf b = TEXT_INIT;
    const char *warnings[1];

    if (rq->op != OP_WRITE) {
        reply_error(rq->resp, 405, MSG_UNSUPPORTED_OP);
        return;
    }
    if (field_comma_slice(rq->body, "paths", &paths, &err) < 0 ||
        (paths.n == 0 &&
         field_comma_slice(rq->body, "path", &paths, &err) < 0)) {
        reply_error(rq->resp, 400, text_or_oom(&err));
        goto out;
    }
    if (paths.n == 0) {
        reply_error(rq->resp, 400, "paths must be supplied");
        goto out;
    }
    for (i = 0; i < paths.n; i++) {
        if (!*paths.p[i]) {
            reply_error(rq->resp, 400, "missing path"); /* Core's check */
            goto out;
        }
        keys[nkeys++] = paths.p[i];
    }
    if (paths.n == 1) {
        single = paths.p[0];
        if (strcmp(single, "capabilities") != 0) {
            keys[nkeys++] = "capabilities";
        }
    }
    /* The results are a map: sorted, one entry per distinct key. */
    qsort(keys, nkeys, sizeof(keys[0]), cmp_cstr);
    akv_buf_putc(&data, '{');
    for (i = 0; i < nkeys; i++) {
        const char *path = keys[i];

        if (i > 0 && strcmp(keys[i], keys[i - 1]) == 0) {
            continue;
        }
        if (single && strcmp(path, "capabilities") == 0) {
            path = single;
        }
        if (data.len > 1) {
            akv_buf_putc(&data, ',');
        }
        sb_json_str(&data, keys[i]);
        akv_buf_putc(&data, ':');
        akv_buf_puts(&data, path_capabilities(rq, path));
    }
    akv_buf_putc(&data, '}');
    if (data.err != AKV_OK) {
        reply_error(rq->resp, 500, "out of memory");
        goto out;
    }
    sb_env_begin_with(&b, &data);
    akv_buf_puts(&b, data.data);
    if (ignored_params(rq->body, known, &ignw)) {
        warnings[0] = ignw.data;
    }
    sb_env_end(&b, warnings, ignw.len ? 1 : 0, NULL, "system", 1);
    if (ignw.err != AKV_OK) {
        b.err = AKV_ERR_NOMEM;
    }
    reply_sb(rq->resp, 200, &b);

out:
    for (i = 0; i < paths.n; i++) {
        free(paths.p[i]);
    }
    akv_buf_free(&err);
    akv_buf_free(&data);
    akv_buf_free(&ignw);
}

/* ------------------------------------------------------------------------ */
/* /v1 routing                                                               */
/* ------------------------------------------------------------------------ */

/* Vault 2.0 refuses "." and ".." segments and empty ones ("//"). */
static int path_relative(const char *p)
{
    const char *seg = p;

    if (strstr(p, "//")) {
        return 1;
    }
    while (seg) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);

        if ((n == 1 && seg[0] == '.') ||
            (n == 2 && seg[0] == '.' && seg[1] == '.')) {
            return 1;
        }
        seg = end ? end + 1 : NULL;
    }
    return 0;
}

/* The token from X-Vault-Token, else from "Authorization: Bearer ...". */
static const char *request_token(const struct fakehttp_request *req)
{
    const char *t = fakehttp_header(req, "X-Vault-Token");
    const char *a;

    if (t && *t) {
        return t;
    }
    a = fakehttp_header(req, "Authorization");
    if (a && strncmp(a, "Bearer ", 7) == 0) {
        a += 7;
        while (*a == ' ') {
            a++;
        }
        if (*a) {
            return a;
        }
    }
    return NULL;
}

/* @returns 1 when authenticated; otherwise the 403 is already set. */
static int authenticate(struct rq *rq)
{
    const char *t = request_token(rq->http);

    if (!t) {
        reply_error(rq->resp, 403, "permission denied");
        return 0;
    }
    if (!token_lookup(rq->fv, t, &rq->tok)) {
        reply_error(rq->resp, 403, MSG_INVALID_TOKEN);
        return 0;
    }
    rq->token = t;
    return 1;
}

/* @returns the path below the KV mount, or NULL when outside it. */
static const char *kv_rest(const struct fake_vault *fv, const char *vpath)
{
    size_t ml = strlen(fv->cfg.kv_mount);

    if (strncmp(vpath, fv->cfg.kv_mount, ml) != 0) {
        return NULL;
    }
    if (vpath[ml] == '/') {
        return vpath + ml + 1;
    }
    return vpath[ml] == '\0' ? vpath + ml : NULL;
}

/* Vault's method → logical operation (http/logical.go). @returns -1 for
 * methods it does not take, -2 for a bad ?list= value. */
static int method_op(const struct fakehttp_request *req)
{
    const char *m = req->method;

    if (strcmp(m, "GET") == 0) {
        const char *l = fakehttp_arg(req, "list");
        int list = 0;

        if (l && *l && parse_go_bool(l, &list) != 0) {
            return -2;
        }
        return list ? OP_LIST : OP_READ;
    }
    if (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0) {
        return OP_WRITE;
    }
    if (strcmp(m, "DELETE") == 0) {
        return OP_DELETE;
    }
    if (strcmp(m, "LIST") == 0) {
        return OP_LIST;
    }
    if (strcmp(m, "PATCH") == 0) {
        return OP_PATCH;
    }
    return -1;
}

/*
 * Parses a write body like jsonutil.DecodeJSONFromReader into a map: empty
 * input and null mean "no data"; anything but an object is an error.
 * @returns 0, or -1 for "error parsing JSON".
 */
static int parse_body(struct rq *rq)
{
    const char *p = rq->http->body;
    size_t n = rq->http->body_len;
    size_t i = 0;

    while (i < n &&
           (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) {
        i++;
    }
    if (i == n) {
        return 0;
    }
    rq->body = cJSON_ParseWithLength(p, n);
    if (!rq->body) {
        return -1;
    }
    if (cJSON_IsNull(rq->body)) {
        cJSON_Delete(rq->body);
        rq->body = NULL;
        return 0;
    }
    if (!cJSON_IsObject(rq->body)) {
        cJSON_Delete(rq->body);
        rq->body = NULL;
        return -1;
    }
    return 0;
}

/* Counts the KV traffic /_fake/stats reports, before anything can fail. */
static void count_kv(struct rq *rq)
{
    const char *rest = kv_rest(rq->fv, rq->vpath);

    if (!rest) {
        return;
    }
    if (strncmp(rest, "data/", 5) == 0) {
        if (rq->op == OP_WRITE) {
            STAT_INC(rq->fv, kv_write_requests);
        } else if (rq->op == OP_READ) {
            STAT_INC(rq->fv, kv_reads);
        }
    } else if (strncmp(rest, "metadata/", 9) == 0 && rq->op == OP_READ) {
        STAT_INC(rq->fv, metadata_reads);
    }
}

static int starts_with_dir(const char *p, const char *dir)
{
    size_t n = strlen(dir);

    return strncmp(p, dir, n) == 0 && (p[n] == '/' || p[n] == '\0');
}

static int fault_deny(struct rq *rq, const char *vpath);

/* The order of checks follows Vault: HTTP layer (path, method, JSON),
 * core (trailing slash, token), then the router. */
static void route_v1(struct rq *rq)
{
    struct fake_vault *fv = rq->fv;
    const char *full = rq->http->path;
    const char *vp;
    const char *rest;
    char login[300];
    int op;

    if (!str_printable(full)) {
        fakehttp_reply_take(rq->resp, 400, NULL);
        return;
    }
    if (path_relative(full)) {
        reply_error(rq->resp, 400, "relative paths not supported");
        return;
    }
    if (strcmp(full, "/v1/sys/health") == 0) {
        if (!fault_deny(rq, "sys/health")) {
            sys_health(rq, 0);
        }
        return;
    }
    op = method_op(rq->http);
    if (op == -1) {
        reply_error(rq->resp, 405, NULL);
        return;
    }
    if (op == -2) {
        reply_error(rq->resp, 400, NULL);
        return;
    }
    rq->op = (enum op)op;
    {
        size_t n = strlen(full + 4);

        rq->vpath = malloc(n + 2);
        if (!rq->vpath) {
            reply_error(rq->resp, 500, "out of memory");
            return;
        }
        memcpy(rq->vpath, full + 4, n + 1);
        /* a LIST always addresses a "directory" */
        if (rq->op == OP_LIST && (n == 0 || rq->vpath[n - 1] != '/')) {
            rq->vpath[n] = '/';
            rq->vpath[n + 1] = '\0';
        }
    }
    vp = rq->vpath;
    count_kv(rq);
    if ((rq->op == OP_WRITE || rq->op == OP_PATCH) && parse_body(rq) < 0) {
        reply_error(rq->resp, 400, "error parsing JSON");
        return;
    }
    if ((rq->op == OP_WRITE || rq->op == OP_PATCH) && *vp &&
        vp[strlen(vp) - 1] == '/') {
        reply_error(rq->resp, 400, "cannot write to a path ending in '/'");
        return;
    }

    /* unauthenticated login paths */
    snprintf(login, sizeof(login), "auth/%s/login", fv->cfg.k8s_mount);
    if (strcmp(vp, login) == 0 || strcmp(vp, "auth/approle/login") == 0) {
        /* parse_args keeps the k8s mount from being "approle" */
        if (fault_deny(rq, vp)) {
            return;
        }
        if (rq->op != OP_WRITE) {
            reply_error(rq->resp, 405, MSG_UNSUPPORTED_OP);
        } else if (strcmp(vp, "auth/approle/login") == 0) {
            approle_login(rq);
        } else {
            k8s_login(rq);
        }
        return;
    }

    if (!authenticate(rq) || fault_deny(rq, vp)) {
        return;
    }
    if (strcmp(vp, "auth/token/lookup-self") == 0) {
        lookup_self(rq);
        return;
    }
    if (strcmp(vp, "auth/token/renew-self") == 0) {
        renew_self(rq);
        return;
    }
    if (strcmp(vp, "sys/capabilities-self") == 0) {
        capabilities_self(rq);
        return;
    }
    rest = kv_rest(fv, vp);
    if (rest && rq->fc && vfaults(rq->fc)->mount_missing) {
        /* an unmounted engine: the router's 404 below */
        atomic_fetch_add(&fv->st.faults.mount_missing, 1);
        rq->injected = 1;
        rest = NULL;
    }
    if (rest) {
        kv_route(rq, rest);
        return;
    }
    snprintf(login, sizeof(login), "auth/%s", fv->cfg.k8s_mount);
    if (starts_with_dir(vp, "auth/token") || starts_with_dir(vp, login) ||
        starts_with_dir(vp, "auth/approle")) {
        reply_error(rq->resp, 404, MSG_UNSUPPORTED_PATH);
        return;
    }
    {
        struct akv_buf msg = TEXT_INIT;

        akv_buf_puts(&msg, "no handler for route ");
        sb_go_quote(&msg, vp);
        akv_buf_puts(&msg, ". route entry not found.");
        reply_error(rq->resp, 404, text_or_oom(&msg));
        akv_buf_free(&msg);
    }
}

/* ------------------------------------------------------------------------ */
/* Fault injection                                                           */
/* ------------------------------------------------------------------------ */

/*
 * Every kind of injected misbehaviour is decided here and in fakefault.c,
 * so the handlers stay a faithful Vault and a fault plan is read in one
 * place. A request takes the plan once (rq->fc) and then meets it at fixed
 * points:
 *   fakefault_inject()  before routing: latency, the sealed window
 *                       (vault_fault_gate), error answers, dropped
 *                       connections, and the draw that marks the answer
 *                       for dropping or truncating afterwards;
 *   fault_deny()        in route_v1, where Vault checks the ACL: after the
 *                       token check, so a bad token keeps its own 403;
 *   mount_missing       in route_v1, where the KV mount would be found;
 *   issue_token()       token_ttl_s / token_max_ttl_s for new logins;
 *   fakefault_after()   after normal handling: drop or truncate the answer.
 */

#define FAULT_MAX_DENY 64
#define FAULT_MAX_TTL  (100L * 365 * 86400)
#define ACL_DENIED     "1 error occurred:\n\t* permission denied\n\n"

static int fault_sealed(const struct vault_faults *vx)
{
    return vx->sealed_for_ms > 0 && akv_mono_ms() < vx->sealed_until_ms;
}

static int vault_fault_in_scope(const struct fakefault_plan *fp, void *rctx,
                                const struct fakehttp_request *req)
{
    const struct rq *rq = rctx;
    const char *vp = req->path + 4;
    const char *m = req->method;

    switch ((enum fault_scope)fp->scope) {
    case SCOPE_ALL:
        return 1;
    case SCOPE_KV:
        return kv_rest(rq->fv, vp) != NULL;
    case SCOPE_KV_WRITE:
        return kv_rest(rq->fv, vp) != NULL &&
               (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
                strcmp(m, "DELETE") == 0);
    case SCOPE_KV_DELETE:
        return kv_rest(rq->fv, vp) != NULL && strcmp(m, "DELETE") == 0;
    case SCOPE_AUTH:
        return strncmp(vp, "auth/", 5) == 0;
    }
    return 0;
}

/*
 * A KV write (POST or PUT under {mount}/data/) that is not performed, for
 * "write_answer" (a 2xx that confirms nothing, as a proxy or a broken
 * Vault might send) or "echo_status" (an error whose text quotes the
 * request body, secret and all). @returns 1 when \p resp is set.
 */
static int fault_kv_write(const struct fakefault_plan *fp, struct rq *rq,
                          const struct fakehttp_request *req,
                          struct fakehttp_response *resp)
{
    const struct vault_faults *vx = vfaults(fp);
    const char *rest;
    struct akv_buf msg = TEXT_INIT;

    if (!vx || (vx->write_answer == WA_NONE && vx->echo_status == 0) ||
        (strcmp(req->method, "POST") != 0 && strcmp(req->method, "PUT") != 0)) {
        return 0;
    }
    rest = kv_rest(rq->fv, req->path + 4);
    if (!rest || strncmp(rest, "data/", 5) != 0) {
        return 0;
    }
    atomic_fetch_add(&rq->fv->st.faults.write_faults, 1);
    if (vx->echo_status) {
        akv_buf_puts(&msg, "1 error occurred:\n\t* cannot decode the request "
                           "body: ");
        akv_buf_append(&msg, req->body, req->body_len);
        akv_buf_puts(&msg, "\n\n");
        reply_error(resp, vx->echo_status, text_or_oom(&msg));
        akv_buf_free(&msg);
        return 1;
    }
    switch (vx->write_answer) {
    case WA_NULL_DATA:
        fakehttp_reply(resp, 200,
                       "{\"request_id\":\"00000000-0000-0000-0000-"
                       "000000000000\",\"lease_id\":\"\",\"renewable\":"
                       "false,\"lease_duration\":0,\"data\":null,"
                       "\"wrap_info\":null,\"warnings\":null,\"auth\":"
                       "null,\"mount_type\":\"kv\"}\n");
        break;
    case WA_NO_VERSION:
        fakehttp_reply(resp, 200,
                       "{\"data\":{\"created_time\":\"2026-01-01T00:00:"
                       "00Z\",\"deletion_time\":\"\",\"destroyed\":"
                       "false}}\n");
        break;
    case WA_HTML:
        fakehttp_reply(resp, 200,
                       "<html><head><title>OK</title></head><body>Request "
                       "accepted</body></html>\n");
        resp->content_type = "text/html";
        break;
    case WA_GARBAGE:
        fakehttp_reply(resp, 200, "\x01\x02garbage{{");
        resp->content_type = "application/octet-stream";
        break;
    default:
        fakehttp_reply_take(resp, 200, NULL);
        break;
    }
    return 1;
}

/* The sealed window: every /v1 request, in scope or not. */
static int vault_fault_gate(const struct fakefault_plan *fp, void *rctx,
                            const struct fakehttp_request *req,
                            struct fakehttp_response *resp)
{
    struct rq *rq = rctx;

    if (fault_kv_write(fp, rq, req, resp)) {
        return 1;
    }
    if (!fault_sealed(vfaults(fp))) {
        return 0;
    }
    if (strcmp(req->path, "/v1/sys/health") == 0 &&
        (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)) {
        sys_health(rq, 1);
    } else {
        reply_error(resp, 503, "Vault is sealed");
    }
    if (resp->status == 503) {
        fakefault_retry_after(fp, resp);
    }
    atomic_fetch_add(&rq->fv->st.faults.sealed, 1);
    return 1;
}

/* An injected error, with the body Vault (or the proxy in front of it)
 * sends for that status. */
static void vault_fault_reply(const struct fakefault_plan *fp, void *rctx,
                              const struct fakehttp_request *req,
                              struct fakehttp_response *resp, int code)
{
    struct akv_buf msg = TEXT_INIT;

    (void)fp;
    (void)rctx;
    switch (code) {
    case 412:
        reply_error(resp, code, "required index state not present");
        break;
    case 429:
        /* http/util.go: fmt.Errorf("request path %q: %w", path, ...) */
        akv_buf_puts(&msg, "request path ");
        sb_go_quote(&msg, req->path + 4);
        akv_buf_puts(&msg, ": rate limit quota exceeded");
        reply_error(resp, code, text_or_oom(&msg));
        akv_buf_free(&msg);
        break;
    case 502:
        reply_error(resp, code, "bad gateway");
        break;
    case 503:
        reply_error(resp, code, "Vault is sealed");
        break;
    case 504:
        reply_error(resp, code, "context deadline exceeded");
        break;
    default:
        reply_error(resp, code, "internal error");
        break;
    }
}

/* @returns 1 when a deny_prefix of the plan covers \p vpath. */
static int deny_prefix_match(const struct fakefault_plan *fc, const char *vpath)
{
    const struct vault_faults *vx = vfaults(fc);
    size_t i;

    if (!vx) {
        return 0;
    }
    for (i = 0; i < vx->ndeny; i++) {
        if (strncmp(vpath, vx->deny[i], strlen(vx->deny[i])) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Policy denial by path prefix. @returns 1 when the 403 is set. */
static int fault_deny(struct rq *rq, const char *vpath)
{
    if (!deny_prefix_match(rq->fc, vpath)) {
        return 0;
    }
    reply_error(rq->resp, 403, ACL_DENIED);
    atomic_fetch_add(&rq->fv->st.faults.denied_prefix, 1);
    rq->injected = 1;
    return 1;
}

/* ---- fake-vault's keys of the plan ---- */

static void vault_faults_free(void *ext)
{
    struct vault_faults *vx = ext;
    size_t i;

    for (i = 0; i < vx->ndeny; i++) {
        free(vx->deny[i]);
    }
    free(vx->deny);
}

static int cfg_deny_one(const cJSON *v, struct vault_faults *vx)
{
    const char *s = cJSON_IsString(v) ? v->valuestring : NULL;
    char *copy;

    if (!s || !*s || *s == '/' || strlen(s) > 1024 ||
        vx->ndeny >= FAULT_MAX_DENY) {
        return -1;
    }
    copy = strdup(s);
    if (!copy) {
        return -2;
    }
    vx->deny[vx->ndeny++] = copy;
    return 0;
}

static int cfg_deny(const cJSON *v, struct vault_faults *vx)
{
    const cJSON *it;
    int rc;

    vx->deny = calloc(FAULT_MAX_DENY, sizeof(*vx->deny));
    if (!vx->deny) {
        return -2;
    }
    if (!cJSON_IsArray(v)) {
        return cfg_deny_one(v, vx);
    }
    cJSON_ArrayForEach(it, v)
    {
        rc = cfg_deny_one(it, vx);
        if (rc < 0) {
            return rc;
        }
    }
    return 0;
}

/* vault_fault_keys[idx], not null. @returns 0 or -1 (\p err set). */
static int vault_fault_key(void *ext, size_t idx, const cJSON *it,
                           const void *ctx, char *err, size_t errsz)
{
    struct vault_faults *vx = ext;
    const char *k = it->string;
    long num;
    int rc;

    (void)ctx;
    switch (idx) {
    case 0:
        if (fakefault_json_long(it, 0, 7L * 86400 * 1000, &vx->sealed_for_ms) <
            0) {
            snprintf(err, errsz, "sealed_for_ms must be an integer in 0..%ld",
                     7L * 86400 * 1000);
            return -1;
        }
        vx->sealed_until_ms = akv_mono_ms() + vx->sealed_for_ms;
        return 0;
    case 1:
        rc = cfg_deny(it, vx);
        if (rc < 0) {
            snprintf(err, errsz,
                     rc == -2 ? "out of memory"
                              : "deny_prefix must be a non-empty path "
                                "below /v1/ (no leading '/'), or a list "
                                "of at most 64");
            return -1;
        }
        return 0;
    case 2:
    case 3:
        if (fakefault_json_long(it, 1, FAULT_MAX_TTL, &num) < 0) {
            snprintf(err, errsz, "%s must be an integer in 1..%ld", k,
                     FAULT_MAX_TTL);
            return -1;
        }
        if (idx == 2) {
            vx->token_ttl = num;
        } else {
            vx->token_max_ttl = num;
        }
        return 0;
    case 4:
        if (!cJSON_IsBool(it)) {
            snprintf(err, errsz, "mount_missing must be true or false");
            return -1;
        }
        vx->mount_missing = cJSON_IsTrue(it);
        return 0;
    case 5:
        for (num = 0;
             cJSON_IsString(it) && num < (long)(sizeof(write_answer_names) /
                                                sizeof(write_answer_names[0]));
             num++) {
            if (strcmp(it->valuestring, write_answer_names[num]) == 0) {
                vx->write_answer = (enum write_answer)num;
                return 0;
            }
        }
        snprintf(err, errsz,
                 "write_answer must be one of none, null_data, no_version, "
                 "html, garbage, empty");
        return -1;
    default:
        if (fakefault_json_long(it, 0, 599, &num) < 0 ||
            (num != 0 && num < 400)) {
            snprintf(err, errsz, "echo_status must be 0 or 400..599");
            return -1;
        }
        vx->echo_status = (int)num;
        return 0;
    }
}

static int vault_fault_check(const void *ext, const void *ctx, char *err,
                             size_t errsz)
{
    const struct vault_faults *vx = ext;
    const struct config *cfg = ctx;

    if ((vx->token_ttl > 0 ? vx->token_ttl : cfg->token_ttl) >
        (vx->token_max_ttl > 0 ? vx->token_max_ttl : cfg->token_max_ttl)) {
        snprintf(err, errsz,
                 "token_ttl_s exceeds token_max_ttl_s (or --token-max-ttl, "
                 "%" PRId64 ")",
                 cfg->token_max_ttl);
        return -1;
    }
    return 0;
}

static void vault_fault_json(cJSON *o, const void *ext, const void *ctx)
{
    static const struct vault_faults none;
    const struct vault_faults *vx = ext ? ext : &none;
    const struct config *cfg = ctx;
    cJSON *deny;
    size_t i;

    cJSON_AddNumberToObject(o, "sealed_for_ms", (double)vx->sealed_for_ms);
    deny = cJSON_AddArrayToObject(o, "deny_prefix");
    for (i = 0; deny && i < vx->ndeny; i++) {
        cJSON_AddItemToArray(deny, cJSON_CreateString(vx->deny[i]));
    }
    cJSON_AddNumberToObject(
        o, "token_ttl_s",
        (double)(vx->token_ttl > 0 ? vx->token_ttl : cfg->token_ttl));
    cJSON_AddNumberToObject(o, "token_max_ttl_s",
                            (double)(vx->token_max_ttl > 0
                                         ? vx->token_max_ttl
                                         : cfg->token_max_ttl));
    cJSON_AddBoolToObject(o, "mount_missing", vx->mount_missing);
    cJSON_AddStringToObject(o, "write_answer",
                            write_answer_names[vx->write_answer]);
    cJSON_AddNumberToObject(o, "echo_status", vx->echo_status);
}

static const struct fakefault_spec vault_fault_spec = {
    .codes = fault_codes,
    .ncodes = NFAULT_CODES,
    .scopes = scope_names,
    .nscopes = sizeof(scope_names) / sizeof(scope_names[0]),
    .keys = vault_fault_keys,
    .nkeys = sizeof(vault_fault_keys) / sizeof(vault_fault_keys[0]),
    .ext_size = sizeof(struct vault_faults),
    .eol = "\n",
    .oom_body = "{\"error\":\"out of memory\"}\n",
    .parse_key = vault_fault_key,
    .check = vault_fault_check,
    .ext_free = vault_faults_free,
    .add_json = vault_fault_json,
    .in_scope = vault_fault_in_scope,
    .gate = vault_fault_gate,
    .reply_status = vault_fault_reply,
};

/* ------------------------------------------------------------------------ */
/* Request log and control endpoints                                         */
/* ------------------------------------------------------------------------ */

static void log_request(struct fake_vault *fv,
                        const struct fakehttp_request *req, int status)
{
    struct reqlog_entry *e;
    char *path = strdup(req->path);

    pthread_mutex_lock(&fv->log_lock);
    e = &fv->rlog[fv->rlog_head];
    free(e->path);
    snprintf(e->method, sizeof(e->method), "%s", req->method);
    e->path = path; /* NULL on OOM: listed as "" */
    e->status = status;
    fv->rlog_head = (fv->rlog_head + 1) % REQLOG_CAP;
    if (fv->rlog_count < REQLOG_CAP) {
        fv->rlog_count++;
    }
    pthread_mutex_unlock(&fv->log_lock);

    if (fv->cfg.verbose) {
        char safe[512];
        size_t i;

        /* paths hold no secrets, but keep control bytes off the terminal */
        snprintf(safe, sizeof(safe), "%s", req->path);
        for (i = 0; safe[i]; i++) {
            if ((unsigned char)safe[i] < 0x20 || safe[i] == 0x7f) {
                safe[i] = '?';
            }
        }
        fprintf(stderr, "fake-vault: %s %s %d\n", req->method, safe, status);
    }
}

static int cmp_secret(const void *a, const void *b)
{
    const struct kv_secret *x = *(const struct kv_secret *const *)a;
    const struct kv_secret *y = *(const struct kv_secret *const *)b;

    return strcmp(x->node.key, y->node.key);
}

/* GET /_fake/kv */
static void control_kv(struct fake_vault *fv, struct fakehttp_response *resp)
{
    struct kv_secret **all = NULL;
    struct akv_buf b = TEXT_INIT;
    size_t n = 0;
    size_t i;
    size_t j;

    akv_buf_puts(&b, "{\"mount\":");
    sb_json_str(&b, fv->cfg.kv_mount);
    akv_buf_puts(&b, ",\"secrets\":{");
    pthread_mutex_lock(&fv->kv_lock);
    if (fv->secrets.n > 0) {
        all = malloc(fv->secrets.n * sizeof(*all));
        if (!all) {
            pthread_mutex_unlock(&fv->kv_lock);
            akv_buf_free(&b);
            reply_error(resp, 500, "out of memory");
            return;
        }
        for (i = 0; i < fv->secrets.nb; i++) {
            struct fakehtab_node *h;

            for (h = fv->secrets.b[i]; h; h = h->next) {
                all[n++] = (struct kv_secret *)h;
            }
        }
        qsort(all, n, sizeof(*all), cmp_secret);
    }
    for (i = 0; i < n; i++) {
        const struct kv_secret *s = all[i];

        if (i > 0) {
            akv_buf_putc(&b, ',');
        }
        sb_json_str(&b, s->node.key);
        akv_buf_printf(
            &b,
            ":{\"current_version\":%" PRIu64 ",\"oldest_version\":%" PRIu64
            ",\"cas_required\":%s,\"max_versions\":%" PRIu32
            ",\"custom_metadata\":%s,\"created_time\":",
            s->current, s->oldest, s->cas_required ? "true" : "false",
            s->max_versions, s->custom ? s->custom : "null");
        sb_time(&b, s->created);
        akv_buf_puts(&b, ",\"updated_time\":");
        sb_time(&b, s->updated);
        akv_buf_puts(&b, ",\"versions\":{");
        for (j = 0; j < s->nvers; j++) {
            const struct kv_version *v = &s->vers[j];

            akv_buf_printf(&b,
                           "%s\"%" PRIu64 "\":{\"data\":%s,\"created_time\":",
                           j ? "," : "", s->first + j, v->data);
            sb_time(&b, v->created);
            akv_buf_puts(&b, ",\"deletion_time\":");
            sb_time(&b, v->deleted);
            akv_buf_printf(&b, ",\"destroyed\":%s}",
                           v->destroyed ? "true" : "false");
        }
        akv_buf_puts(&b, "}}");
    }
    pthread_mutex_unlock(&fv->kv_lock);
    free(all);
    akv_buf_puts(&b, "}}\n");
    reply_sb(resp, 200, &b);
}

/* GET /_fake/stats */
static void control_stats(struct fake_vault *fv, struct fakehttp_response *resp)
{
    const struct stats *st = &fv->st;
    const struct fault_stats *fs = &st->faults;
    struct akv_buf b = TEXT_INIT;
    size_t i;

    akv_buf_printf(
        &b,
        "{\"requests\":%llu,\"kv_writes\":%llu,\"kv_write_requests\":%llu,"
        "\"kv_reads\":%llu,\"metadata_reads\":%llu,\"logins\":%llu,"
        "\"login_failures\":%llu,\"renewals\":%llu,\"denied\":%llu,"
        "\"cas_mismatch\":%llu,\"faults\":{\"errors\":{",
        atomic_load(&st->requests), atomic_load(&st->kv_writes),
        atomic_load(&st->kv_write_requests), atomic_load(&st->kv_reads),
        atomic_load(&st->metadata_reads), atomic_load(&st->logins),
        atomic_load(&st->login_failures), atomic_load(&st->renewals),
        atomic_load(&st->denied), atomic_load(&st->cas_mismatch));
    for (i = 0; i < NFAULT_CODES; i++) {
        akv_buf_printf(&b, "%s\"%d\":%llu", i ? "," : "", fault_codes[i],
                       atomic_load(&fs->common.errors[i]));
    }
    akv_buf_printf(
        &b,
        "},\"dropped\":%llu,\"dropped_after\":%llu,\"truncated\":%llu,"
        "\"sealed\":%llu,\"denied_prefix\":%llu,"
        "\"mount_missing\":%llu,\"write_faults\":%llu,"
        "\"latency_ms_total\":%llu}}\n",
        atomic_load(&fs->common.dropped),
        atomic_load(&fs->common.dropped_after),
        atomic_load(&fs->common.truncated), atomic_load(&fs->sealed),
        atomic_load(&fs->denied_prefix), atomic_load(&fs->mount_missing),
        atomic_load(&fs->write_faults),
        atomic_load(&fs->common.latency_ms_total));
    reply_sb(resp, 200, &b);
}

/* GET /_fake/requests */
static void control_requests(struct fake_vault *fv,
                             struct fakehttp_response *resp)
{
    struct akv_buf b = TEXT_INIT;
    size_t i;
    size_t start;

    akv_buf_puts(&b, "{\"requests\":[");
    pthread_mutex_lock(&fv->log_lock);
    start = (fv->rlog_head + REQLOG_CAP - fv->rlog_count) % REQLOG_CAP;
    for (i = 0; i < fv->rlog_count; i++) {
        const struct reqlog_entry *e = &fv->rlog[(start + i) % REQLOG_CAP];

        akv_buf_puts(&b, i ? ",{\"method\":" : "{\"method\":");
        sb_json_str(&b, e->method);
        akv_buf_puts(&b, ",\"path\":");
        sb_json_str(&b, e->path ? e->path : "");
        akv_buf_printf(&b, ",\"status\":%d}", e->status);
    }
    pthread_mutex_unlock(&fv->log_lock);
    akv_buf_puts(&b, "]}\n");
    reply_sb(resp, 200, &b);
}

/* POST /_fake/reset-stats */
static void control_reset(struct fake_vault *fv, struct fakehttp_response *resp)
{
    struct stats *st = &fv->st;
    size_t i;

    atomic_store(&st->requests, 0);
    atomic_store(&st->kv_writes, 0);
    atomic_store(&st->kv_write_requests, 0);
    atomic_store(&st->kv_reads, 0);
    atomic_store(&st->metadata_reads, 0);
    atomic_store(&st->logins, 0);
    atomic_store(&st->login_failures, 0);
    atomic_store(&st->renewals, 0);
    atomic_store(&st->denied, 0);
    atomic_store(&st->cas_mismatch, 0);
    fakefault_counts_reset(&st->faults.common);
    atomic_store(&st->faults.sealed, 0);
    atomic_store(&st->faults.denied_prefix, 0);
    atomic_store(&st->faults.mount_missing, 0);
    atomic_store(&st->faults.write_faults, 0);
    pthread_mutex_lock(&fv->log_lock);
    for (i = 0; i < REQLOG_CAP; i++) {
        free(fv->rlog[i].path);
        fv->rlog[i].path = NULL;
    }
    fv->rlog_head = 0;
    fv->rlog_count = 0;
    pthread_mutex_unlock(&fv->log_lock);
    fakehttp_reply(resp, 200, "{\"reset\":true}\n");
}

static int is_login_token(const struct fakehtab_node *n)
{
    return ((const struct token *)n)->kind != TOK_ROOT;
}

/* POST /_fake/tokens/revoke-all: every login token, never the root one. */
static void control_revoke_all(struct fake_vault *fv,
                               struct fakehttp_response *resp)
{
    size_t revoked;

    pthread_mutex_lock(&fv->tok_lock);
    revoked = fakehtab_drop_if(&fv->tokens, is_login_token, token_release);
    pthread_mutex_unlock(&fv->tok_lock);
    fakehttp_reply(resp, 200, "{\"revoked\":%zu}\n", revoked);
}

static void handle_control(struct fake_vault *fv,
                           const struct fakehttp_request *req,
                           struct fakehttp_response *resp)
{
    static const struct {
        const char *path;
        const char *method;
        void (*fn)(struct fake_vault *, struct fakehttp_response *);
    } routes[] = {
        {"/_fake/kv", "GET", control_kv},
        {"/_fake/stats", "GET", control_stats},
        {"/_fake/requests", "GET", control_requests},
        {"/_fake/reset-stats", "POST", control_reset},
        {"/_fake/tokens/revoke-all", "POST", control_revoke_all},
    };
    size_t i;

    if (!fv->cfg.allow_remote_control && !fakehttp_from_loopback(req)) {
        reply_error(resp, 403, "control endpoints are loopback only");
        return;
    }
    if (strcmp(req->path, "/_fake/faults") == 0) {
        fakefault_control(&fv->faults, req, resp);
        return;
    }
    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(req->path, routes[i].path) != 0) {
            continue;
        }
        if (strcmp(req->method, routes[i].method) != 0 &&
            !(strcmp(routes[i].method, "GET") == 0 &&
              strcmp(req->method, "HEAD") == 0)) {
            reply_error(resp, 405, NULL);
            return;
        }
        routes[i].fn(fv, resp);
        return;
    }
    reply_error(resp, 404, "no such control endpoint");
}

/* The fakehttp handler: one call per request, on the connection's thread. */
static void handle(void *opaque, const struct fakehttp_request *req,
                   struct fakehttp_response *resp)
{
    struct fake_vault *fv = opaque;

    if (strncmp(req->path, "/v1/", 4) == 0) {
        struct rq rq;

        STAT_INC(fv, requests);
        memset(&rq, 0, sizeof(rq));
        rq.fv = fv;
        rq.http = req;
        rq.resp = resp;
        rq.fc = fakefault_acquire(&fv->faults);
        if (fakefault_inject(rq.fc, &rq, req, resp, &fv->st.faults.common,
                             &rq.post)) {
            rq.injected = 1;
        } else {
            route_v1(&rq);
            fakefault_after(rq.post, resp, &fv->st.faults.common);
        }
        /* "denied" counts Vault's own refusals; injected ones are faults */
        if (resp->status == 403 && !rq.injected) {
            STAT_INC(fv, denied);
        }
        fakefault_release(rq.fc);
        cJSON_Delete(rq.body);
        free(rq.vpath);
        log_request(fv, req,
                    resp->action == FAKEHTTP_DROP ? 0
                    : resp->status                ? resp->status
                                                  : 500);
    } else if (strncmp(req->path, "/_fake/", 7) == 0) {
        handle_control(fv, req, resp);
    } else {
        reply_error(resp, 404, NULL);
    }
    fakehttp_add_header(resp, "Cache-Control", "no-store");
}

/* ------------------------------------------------------------------------ */
/* Command line                                                              */
/* ------------------------------------------------------------------------ */

static void usage(FILE *out)
{
    fputs("usage: fake-vault [--listen HOST:PORT] [--root-token TOKEN]\n"
          "                  [--kv-mount MOUNT] [--cas-required]\n"
          "                  [--max-versions N] [--k8s-mount NAME]\n"
          "                  [--k8s-role ROLE=JWTFILE]...\n"
          "                  [--approle ROLE_ID=SECRET_ID]...\n"
          "                  [--token-ttl SECONDS] [--token-max-ttl SECONDS]\n"
          "                  [--latency-ms N] [--faults JSON]\n"
          "                  [--allow-remote-control] [--verbose]\n"
          "                  [--tls-cert FILE --tls-key FILE\n"
          "                   [--tls-client-ca FILE]]\n",
          out);
}

/* Checks a mount path and drops a trailing '/'. @returns a heap copy. */
static char *clean_mount(const char *s)
{
    char *m = strdup(s);
    size_t n;

    if (!m) {
        return NULL;
    }
    n = strlen(m);
    if (n > 0 && m[n - 1] == '/') {
        m[--n] = '\0';
    }
    if (n == 0 || n > 200 || m[0] == '/' || path_relative(m) ||
        !str_printable(m)) {
        free(m);
        return NULL;
    }
    return m;
}

/* Splits "A=B" into two heap strings. */
static int split_pair(const char *s, char **a, char **b)
{
    const char *eq = strchr(s, '=');

    *a = NULL;
    *b = NULL;
    if (!eq || eq == s || eq[1] == '\0') {
        return -1;
    }
    *a = strndup(s, (size_t)(eq - s));
    *b = strdup(eq + 1);
    if (!*a || !*b) {
        free(*a);
        free(*b);
        *a = NULL;
        *b = NULL;
        return -1;
    }
    return 0;
}

static void config_free(struct config *c)
{
    size_t i;

    for (i = 0; i < c->nk8s; i++) {
        free(c->k8s[i].name);
        free(c->k8s[i].jwt_file);
    }
    for (i = 0; i < c->napproles; i++) {
        free(c->approles[i].role_id);
        akv_wipe_free(c->approles[i].secret_id);
    }
    free(c->k8s);
    free(c->approles);
    free(c->kv_mount);
    free(c->k8s_mount);
    memset(c, 0, sizeof(*c));
}

/* @returns 1 for options that take a value, 0 for flags, -1 if unknown. */
static int option_kind(const char *name)
{
    static const char *const with_value[] = {
        "--listen",        "--root-token",   "--kv-mount",     "--k8s-mount",
        "--k8s-role",      "--approle",      "--max-versions", "--token-ttl",
        "--token-max-ttl", "--latency-ms",   "--faults",       "--tls-cert",
        "--tls-key",       "--tls-client-ca"};
    static const char *const flags[] = {"--cas-required", "--verbose", "--help",
                                        "--allow-remote-control"};
    size_t i;

    for (i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++) {
        if (strcmp(name, with_value[i]) == 0) {
            return 1;
        }
    }
    for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (strcmp(name, flags[i]) == 0) {
            return 0;
        }
    }
    return -1;
}

/*
 * @returns 0 to run, 1 after --help, -1 on a bad option (message printed,
 *          never quoting a value that may be a secret).
 */
static int parse_args(struct config *c, int argc, char **argv)
{
    const char *kv_mount = "secret";
    const char *k8s_mount = "kubernetes";
    long num;
    int i;

    memset(c, 0, sizeof(*c));
    c->listen = "127.0.0.1:0";
    c->max_versions = DEFAULT_MAX_VERSIONS;
    c->token_ttl = 3600;
    c->token_max_ttl = 86400;

    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = NULL;
        char name[32];
        const char *eq;
        size_t nl;
        int takes_value;

        if (strncmp(arg, "--", 2) != 0) {
            fprintf(stderr, "fake-vault: unexpected argument\n");
            usage(stderr);
            return -1;
        }
        eq = strchr(arg, '=');
        nl = eq ? (size_t)(eq - arg) : strlen(arg);
        if (nl >= sizeof(name)) {
            fprintf(stderr, "fake-vault: unknown option\n");
            return -1;
        }
        memcpy(name, arg, nl);
        name[nl] = '\0';
        takes_value = option_kind(name);
        if (takes_value < 0) {
            fprintf(stderr, "fake-vault: unknown option %s\n", name);
            usage(stderr);
            return -1;
        }
        if (takes_value) {
            if (eq) {
                val = eq + 1;
            } else if (i + 1 < argc) {
                val = argv[++i];
            } else {
                fprintf(stderr, "fake-vault: %s needs a value\n", name);
                return -1;
            }
        } else if (eq) {
            fprintf(stderr, "fake-vault: %s takes no value\n", name);
            return -1;
        }

        if (strcmp(name, "--help") == 0) {
            usage(stdout);
            return 1;
        } else if (strcmp(name, "--listen") == 0) {
            if (fakehttp_listen_ok(val) < 0) {
                fprintf(stderr,
                        "fake-vault: --listen wants IPV4:PORT, got "
                        "\"%s\"\n",
                        val);
                return -1;
            }
            c->listen = val;
        } else if (strcmp(name, "--root-token") == 0) {
            if (!*val) {
                fprintf(stderr, "fake-vault: --root-token is empty\n");
                return -1;
            }
            c->root_token = val;
        } else if (strcmp(name, "--kv-mount") == 0) {
            kv_mount = val;
        } else if (strcmp(name, "--k8s-mount") == 0) {
            k8s_mount = val;
        } else if (strcmp(name, "--cas-required") == 0) {
            c->cas_required = 1;
        } else if (strcmp(name, "--verbose") == 0) {
            c->verbose = 1;
        } else if (strcmp(name, "--allow-remote-control") == 0) {
            c->allow_remote_control = 1;
        } else if (strcmp(name, "--max-versions") == 0) {
            if (akv_parse_long(val, 0, 1000000L, &num) < 0) {
                fprintf(stderr, "fake-vault: bad --max-versions\n");
                return -1;
            }
            c->max_versions = (uint32_t)num;
        } else if (strcmp(name, "--token-ttl") == 0 ||
                   strcmp(name, "--token-max-ttl") == 0) {
            if (akv_parse_long(val, 1, 100L * 365 * 86400, &num) < 0) {
                fprintf(stderr, "fake-vault: bad %s\n", name);
                return -1;
            }
            if (strcmp(name, "--token-ttl") == 0) {
                c->token_ttl = num;
            } else {
                c->token_max_ttl = num;
            }
        } else if (strcmp(name, "--latency-ms") == 0) {
            if (akv_parse_long(val, 0, 3600L * 1000, &num) < 0) {
                fprintf(stderr, "fake-vault: bad --latency-ms\n");
                return -1;
            }
            c->latency_ms = num;
        } else if (strcmp(name, "--faults") == 0) {
            c->faults_json = val;
        } else if (strcmp(name, "--tls-cert") == 0) {
            c->tls_cert = val;
        } else if (strcmp(name, "--tls-key") == 0) {
            c->tls_key = val;
        } else if (strcmp(name, "--tls-client-ca") == 0) {
            c->tls_client_ca = val;
        } else if (strcmp(name, "--k8s-role") == 0) {
            struct k8s_role *nr;
            char *role;
            char *file;
            size_t j;

            if (split_pair(val, &role, &file) < 0) {
                fprintf(stderr, "fake-vault: --k8s-role wants ROLE=JWTFILE\n");
                return -1;
            }
            for (j = 0; j < c->nk8s; j++) {
                if (strcmp(c->k8s[j].name, role) == 0) {
                    break;
                }
            }
            nr = j == c->nk8s ? realloc(c->k8s, (c->nk8s + 1) * sizeof(*c->k8s))
                              : NULL;
            if (!nr) {
                fprintf(stderr, "fake-vault: %s\n",
                        j == c->nk8s ? "out of memory"
                                     : "duplicate --k8s-role");
                free(role);
                free(file);
                return -1;
            }
            c->k8s = nr;
            memset(&c->k8s[c->nk8s], 0, sizeof(c->k8s[0]));
            c->k8s[c->nk8s].name = role;
            c->k8s[c->nk8s].jwt_file = file;
            gen_uuid(c->k8s[c->nk8s].sa_uid);
            gen_uuid(c->k8s[c->nk8s].entity_id);
            c->nk8s++;
        } else if (strcmp(name, "--approle") == 0) {
            struct approle *na;
            char *rid;
            char *sid;
            size_t j;

            if (split_pair(val, &rid, &sid) < 0) {
                fprintf(stderr,
                        "fake-vault: --approle wants ROLE_ID=SECRET_ID\n");
                return -1;
            }
            for (j = 0; j < c->napproles; j++) {
                if (strcmp(c->approles[j].role_id, rid) == 0) {
                    break;
                }
            }
            na = j == c->napproles
                     ? realloc(c->approles,
                               (c->napproles + 1) * sizeof(*c->approles))
                     : NULL;
            if (!na) {
                fprintf(stderr, "fake-vault: %s\n",
                        j == c->napproles ? "out of memory"
                                          : "duplicate --approle role ID");
                free(rid);
                free(sid);
                return -1;
            }
            c->approles = na;
            memset(&c->approles[c->napproles], 0, sizeof(c->approles[0]));
            c->approles[c->napproles].role_id = rid;
            c->approles[c->napproles].secret_id = sid;
            gen_uuid(c->approles[c->napproles].entity_id);
            c->napproles++;
        }
    }
    if (c->token_ttl > c->token_max_ttl) {
        fprintf(stderr, "fake-vault: --token-ttl exceeds --token-max-ttl\n");
        return -1;
    }
    if (!c->tls_cert != !c->tls_key) {
        fprintf(stderr, "fake-vault: --tls-cert and --tls-key go together\n");
        return -1;
    }
    if (c->tls_client_ca && !c->tls_cert) {
        fprintf(stderr, "fake-vault: --tls-client-ca needs --tls-cert and "
                        "--tls-key\n");
        return -1;
    }
    c->kv_mount = clean_mount(kv_mount);
    if (!c->kv_mount || starts_with_dir(c->kv_mount, "auth") ||
        starts_with_dir(c->kv_mount, "sys")) {
        fprintf(stderr, "fake-vault: bad --kv-mount \"%s\"\n", kv_mount);
        return -1;
    }
    c->k8s_mount = clean_mount(k8s_mount);
    if (!c->k8s_mount || strcmp(c->k8s_mount, "token") == 0 ||
        strcmp(c->k8s_mount, "approle") == 0) {
        fprintf(stderr, "fake-vault: bad --k8s-mount \"%s\"\n", k8s_mount);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Main                                                                      */
/* ------------------------------------------------------------------------ */

static void fv_free(struct fake_vault *fv)
{
    size_t i;

    fakehtab_destroy(&fv->secrets, secret_release);
    fakehtab_destroy(&fv->tokens, token_release);
    if (fv->rlog) {
        for (i = 0; i < REQLOG_CAP; i++) {
            free(fv->rlog[i].path);
        }
        free(fv->rlog);
    }
    fakefault_slot_destroy(&fv->faults);
    pthread_mutex_destroy(&fv->kv_lock);
    pthread_mutex_destroy(&fv->tok_lock);
    pthread_mutex_destroy(&fv->log_lock);
    config_free(&fv->cfg);
}

static int fv_init(struct fake_vault *fv)
{
    pthread_mutex_init(&fv->kv_lock, NULL);
    pthread_mutex_init(&fv->tok_lock, NULL);
    pthread_mutex_init(&fv->log_lock, NULL);
    fakefault_slot_init(&fv->faults, &vault_fault_spec, &fv->cfg);
    gen_uuid(fv->cluster_id);
    fv->rlog = calloc(REQLOG_CAP, sizeof(*fv->rlog));
    if (!fv->rlog || fakehtab_init(&fv->secrets, 1024) < 0 ||
        fakehtab_init(&fv->tokens, 256) < 0) {
        return -1;
    }
    if (fv->cfg.root_token) {
        struct token *t = token_new(fv->cfg.root_token, TOK_ROOT, 0);

        if (!t) {
            return -1;
        }
        t->issued = akv_wall_ns();
        fakehtab_insert(&fv->tokens, &t->node);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct fake_vault fv;
    struct fakehttp *srv;
    struct fakehttp_tls tls;
    char err[512];
    int rc;

    fakehttp_block_signals();
    rc = parse_args(&fv.cfg, argc, argv);
    if (rc != 0) {
        config_free(&fv.cfg);
        return rc > 0 ? 0 : EXIT_USAGE;
    }
    if (fv_init(&fv) < 0) {
        fprintf(stderr, "fake-vault: out of memory\n");
        fv_free(&fv);
        return 1;
    }
    if (fakefault_initial(&fv.faults, fv.cfg.faults_json, fv.cfg.latency_ms,
                          "fake-vault") < 0) {
        fv_free(&fv);
        return EXIT_USAGE;
    }
    tls.cert_file = fv.cfg.tls_cert;
    tls.key_file = fv.cfg.tls_key;
    tls.client_ca_file = fv.cfg.tls_client_ca;
    srv = fakehttp_start_tls(fv.cfg.listen, fv.cfg.tls_cert ? &tls : NULL,
                             handle, &fv, err, sizeof(err));
    if (!srv) {
        fprintf(stderr, "fake-vault: %s\n", err);
        fv_free(&fv);
        return 1;
    }
    fakehttp_announce(fakehttp_address(srv));
    if (fv.cfg.verbose) {
        fprintf(stderr, "fake-vault: listening on %s (%s%s), KV v2 at %s/\n",
                fakehttp_address(srv), fv.cfg.tls_cert ? "HTTPS" : "HTTP",
                fv.cfg.tls_client_ca ? ", client certificates required" : "",
                fv.cfg.kv_mount);
    }
    fakehttp_wait_for_signal();
    fakehttp_stop(srv);
    fv_free(&fv);
    return 0;
}
