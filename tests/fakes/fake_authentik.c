/*
 * fake-authentik — a loopback stand-in for authentik's token API and for
 * the event stream authentik forwards to Kafka.
 *
 *   fake-authentik --brokers BOOTSTRAP --topic TOPIC
 *                  [--listen HOST:PORT] [--api-token TOKEN]
 *                  [--page-size N] [--latency-ms N] [--faults JSON]
 *                  [--kafka-properties FILE] [--enterprise] [--verbose]
 *
 * The API token may instead come from $AUTHENTIK_API_TOKEN, which keeps it
 * off command lines that test harnesses log. --kafka-properties names a
 * file of librdkafka properties for the producer, "name=value" a line (#
 * comments and blank lines ignored), e.g. security.protocol, sasl.* and
 * ssl.ca.location: a file, so that SASL passwords stay off the command
 * line too; its values are never printed. The real listen address is the
 * first stdout line; the process runs until SIGTERM or SIGINT.
 *
 * Every call that changes a token (and view_key) publishes the event
 * authentik would have recorded, shaped like authentik's Event model after
 * a round trip through PostgreSQL's jsonb (which is why nested objects are
 * ordered by key length, then bytewise). The HTTP answer goes out only after
 * Kafka acknowledged the event, so a test that got the answer can rely on
 * the event being in the topic.
 *
 * Keys and the API token are secrets: they are never written to stdout or
 * stderr, the tests scan every process's logs for them.
 *
 * Fake-only controls (loopback clients only): GET /_fake/tokens, GET
 * /_fake/stats, POST /_fake/reset-stats, POST /_fake/tokens/{id}/rotate,
 * POST /_fake/tokens/{id}/delete-silently, and GET|POST|DELETE
 * /_fake/faults, the fault plan.
 *
 * Fault injection: POST /_fake/faults replaces the plan with the JSON
 * object sent (--faults JSON sets the first one; --latency-ms N is its
 * latency_ms), DELETE or POST {} clears it; all answer with the effective
 * plan, a bad one is a 400 {"error":"..."} that changes nothing. Every key
 * is optional (missing or null = off/default):
 *   latency_ms, latency_jitter_ms  delay before answering: fixed plus
 *                          uniform 0..jitter (ms, 0..3600000)
 *   scope                  what latency and the *_rate faults hit: "all"
 *                          /api requests (default), "detail" (GET token),
 *                          "view_key", "list" (GET token list)
 *   error_rates            {"STATUS": p}, STATUS one of 429 500 502 503
 *                          504: DRF's body (502/504: a proxy's HTML page),
 *                          the operation not performed
 *   drop_rate              close without answering, not performed
 *   drop_after_rate        perform, then close without answering
 *   truncate_rate          perform, then send half the body and close (an
 *                          empty 204 cannot be halved: it is dropped and
 *                          counted as dropped_after)
 *                          One uniform draw per affected request picks
 *                          among all rates, so they must add up to <= 1.
 *   retry_after            "N" or "http-date:N": Retry-After (N seconds,
 *                          or an IMF-fixdate N seconds ahead) on injected
 *                          429 and 503 answers
 *   seed                   integer: draws depend only on (seed, index of
 *                          the affected request), so a plan replays
 *   deny_status            401 or 403: every /api request is refused so,
 *                          whatever the scope
 * Counters are under "faults" in /_fake/stats.
 */
#include "fakefault.h"
#include "fakehtab.h"
#include "fakehttp.h"

#include "clock.h"
#include "json.h"
#include "num.h"
#include "wipe.h"

#include <arpa/inet.h>
#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#define EXIT_USAGE         64
#define DEFAULT_LISTEN     "127.0.0.1:0"
#define DEFAULT_PAGE_SIZE  20
#define IDENT_MAX          255
#define KEY_LEN            60
#define USEC_PER_SEC       INT64_C(1000000)
#define DAY_US             (INT64_C(86400) * USEC_PER_SEC)
#define EVENT_RETENTION_US (INT64_C(365) * DAY_US)
#define MSG_TIMEOUT_MS     5000
/* A waiter gives up a little after librdkafka's own message timeout, which
 * normally reports the failure first. */
#define DELIVERY_WAIT_MS (MSG_TIMEOUT_MS + 2000)
#define TIME_BUF         64
#define CLEANSED         "********************"
#define TOKENS_PREFIX    "/api/v3/core/tokens/"

/* The one user the fake knows: the owner of the API token and the actor in
 * every event that comes from an HTTP request. */
#define ADMIN_PK       4
#define ADMIN_USERNAME "akadmin"
#define ADMIN_EMAIL    "admin@example.com"
#define ADMIN_NAME     "authentik Default Admin"
#define ADMIN_UID                                                              \
    "5e1a8f7bd0c34c7a9a0e4b7f3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"

#define SLUG_ERROR                                                             \
    "Enter a valid \u201cslug\u201d consisting of letters, numbers, "          \
    "underscores or hyphens."
#define DATETIME_ERROR                                                         \
    "Datetime has wrong format. Use one of these formats instead: "            \
    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."

/* ------------------------------------------------------------------------
 * State
 */

struct token {
    struct fakehtab_node node; /* key: the identifier */
    char pk[33];               /* uuid4 as 32 lowercase hex digits */
    char *identifier;
    char *key;
    char *description;
    const char *intent; /* "api" or "app_password" (static strings) */
    int user;
    bool expiring;
    bool has_expires;
    int64_t expires_us; /* microseconds since the epoch, UTC */
};

/* Tokens by identifier: a hash table for lookups plus an array kept sorted
 * by identifier, because the list endpoint pages in that order. */
struct store {
    pthread_mutex_t mu;
    struct fakehtab by_ident;
    struct token **sorted;
    size_t count;
    size_t cap;
};

/* The statuses "error_rates" may inject, in the order a draw walks them. */
static const int fault_codes[] = {429, 500, 502, 503, 504};
#define NFAULT_CODES (sizeof(fault_codes) / sizeof(fault_codes[0]))
_Static_assert(NFAULT_CODES <= FAKEFAULT_MAX_CODES, "too many fault codes");

/* Which /api requests latency and the probabilistic faults hit. */
enum fault_scope { SCOPE_ALL, SCOPE_DETAIL, SCOPE_VIEW_KEY, SCOPE_LIST };

static const char *const scope_names[] = {"all", "detail", "view_key", "list"};

/* fake-authentik's keys of a fault plan, besides fakefault's common ones,
 * and what they set (fakefault_plan.ext). */
static const char *const authentik_fault_keys[] = {"deny_status"};

struct authentik_faults {
    int deny_status; /* 401 or 403; 0: off */
};

struct fault_stats {
    struct fakefault_counts common;
    atomic_ullong deny_status;
};

struct stats {
    atomic_long requests;
    atomic_long detail;
    atomic_long view_key;
    atomic_long list;
    atomic_long events_published;
    atomic_long denied;
    struct fault_stats faults;
};

struct app {
    char *api_token;
    const char *topic;
    const char *brokers;
    const char *listen;
    int page_size;
    bool enterprise;
    bool verbose;
    int latency_ms;          /* --latency-ms, folded into the first plan */
    const char *faults_json; /* --faults */
    const char *kafka_props; /* --kafka-properties FILE */

    struct fakefault_slot faults; /* the fault plan */

    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    pthread_t poller;
    bool poller_started;
    atomic_bool stop;

    struct store store;
    struct stats stats;
};

/* Everything an event needs to know about the HTTP request behind it. */
struct reqctx {
    const struct fakehttp_request *req;
    char request_id[33];
    char client_ip[INET6_ADDRSTRLEN];
    bool have_client_ip;
};

/* An event ready to go to Kafka: record key and JSON value. */
struct outmsg {
    char key[33];
    char *value;
};

#define MAX_OUTMSGS 2

/* ------------------------------------------------------------------------
 * Small helpers: time, randomness, strings
 */

/* authentik's dates: microseconds since the epoch, UTC, as Python has them. */
static int64_t now_us(void)
{
    return akv_wall_ns() / 1000;
}

/* Formats like Python does: DRF's isoformat() with "Z" when \p iso, else
 * str(datetime) ("YYYY-MM-DD HH:MM:SS.ffffff+00:00"). Both drop the
 * fraction when it is zero, as Python does. */
static void fmt_time(int64_t us, bool iso, char *out, size_t outsz)
{
    time_t secs = (time_t)(us / USEC_PER_SEC);
    long frac = (long)(us % USEC_PER_SEC);
    struct tm tm;
    char base[40];

    gmtime_r(&secs, &tm);
    if (iso) {
        strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    } else {
        strftime(base, sizeof(base), "%Y-%m-%d %H:%M:%S", &tm);
    }
    if (frac) {
        snprintf(out, outsz, "%s.%06ld%s", base, frac, iso ? "Z" : "+00:00");
    } else {
        snprintf(out, outsz, "%s%s", base, iso ? "Z" : "+00:00");
    }
}

static int parse_digits(const char **p, int n, int *out)
{
    int v = 0;
    int i;

    for (i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9') {
            return -1;
        }
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* Accepts what Django's parse_datetime does for ISO 8601:
 * YYYY-MM-DD[(T| )HH:MM[:SS[.f{1,6}]]][Z|(+|-)HH[:MM]]. Naive values are
 * UTC, authentik's default time zone. */
static int parse_time(const char *s, int64_t *out)
{
    struct tm tm;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0;
    const char *p = s;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if (parse_digits(&p, 4, &y) || *p++ != '-' || parse_digits(&p, 2, &mo) ||
        *p++ != '-' || parse_digits(&p, 2, &d)) {
        return -1;
    }
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (parse_digits(&p, 2, &h) || *p++ != ':' ||
            parse_digits(&p, 2, &mi)) {
            return -1;
        }
        if (*p == ':') {
            p++;
            if (parse_digits(&p, 2, &sec)) {
                return -1;
            }
            if (*p == '.' || *p == ',') {
                int n = 0;

                p++;
                while (*p >= '0' && *p <= '9') {
                    if (n < 6) {
                        frac = frac * 10 + (*p - '0');
                    }
                    n++;
                    p++;
                }
                if (n == 0 || n > 6) {
                    return -1;
                }
                for (; n < 6; n++) {
                    frac *= 10;
                }
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            int oh, om = 0;

            p++;
            if (parse_digits(&p, 2, &oh)) {
                return -1;
            }
            if (*p == ':') {
                p++;
            }
            if (*p >= '0' && *p <= '9' && parse_digits(&p, 2, &om)) {
                return -1;
            }
            off = sign * (oh * 3600 + om * 60);
        }
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 59) {
        return -1;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    /* timegm() normalises 31 February into March; Python refuses it. */
    if (tm.tm_mday != d || tm.tm_mon != mo - 1) {
        return -1;
    }
    *out = ((int64_t)t - off) * USEC_PER_SEC + frac;
    return 0;
}

static void random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* Without randomness every key would be predictable; a fake
             * that silently hands out such keys is worse than none. */
            perror("fake-authentik: getrandom");
            abort();
        }
        p += n;
        len -= (size_t)n;
    }
}

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* uuid4().hex: 32 lowercase hex digits. */
static void uuid4_hex(char out[33])
{
    unsigned char b[16];

    random_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    hex_encode(b, sizeof(b), out);
}

/* 32 hex digits to the dashed 8-4-4-4-12 form. */
static void uuid_dashed(const char *hex, char out[37])
{
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
             hex + 16, hex + 20);
}

/* authentik's generate_id(60): letters and digits, uniformly. */
static char *new_key(void)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "abcdefghijklmnopqrstuvwxyz"
                                   "0123456789";
    char *key = malloc(KEY_LEN + 1);
    size_t n = 0;

    if (!key) {
        return NULL;
    }
    while (n < KEY_LEN) {
        unsigned char b[64];
        size_t i;

        random_bytes(b, sizeof(b));
        for (i = 0; i < sizeof(b) && n < KEY_LEN; i++) {
            /* 248 = 4 * 62: rejecting the rest keeps the draw unbiased. */
            if (b[i] < 248) {
                key[n++] = alphabet[b[i] % 62];
            }
        }
    }
    key[KEY_LEN] = '\0';
    return key;
}

static bool ci_contains(const char *hay, const char *needle)
{
    size_t nlen = strlen(needle);
    size_t i;

    for (; *hay; hay++) {
        for (i = 0; i < nlen; i++) {
            char a = hay[i];
            char b = needle[i];

            if (a >= 'A' && a <= 'Z') {
                a = (char)(a - 'A' + 'a');
            }
            if (b >= 'A' && b <= 'Z') {
                b = (char)(b - 'A' + 'a');
            }
            if (a != b) {
                break;
            }
        }
        if (i == nlen) {
            return true;
        }
    }
    return nlen == 0;
}

/* Django's SafeExceptionReporterFilter.hidden_settings, minus authentik's
 * "passing" exception: such query arguments are masked in events. */
static bool is_hidden_key(const char *key)
{
    static const char *const words[] = {"api",    "token", "key",
                                        "secret", "pass",  "signature"};
    size_t i;

    if (ci_contains(key, "passing")) {
        return false;
    }
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (ci_contains(key, words[i])) {
            return true;
        }
    }
    return false;
}

static bool valid_slug(const char *s)
{
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        char c = *s;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return false;
        }
    }
    return true;
}

/* Constant-time so response timing says nothing about the API token. */
static bool secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    size_t i;

    for (i = 0; i < la && i < lb; i++) {
        diff |= (unsigned char)(a[i] ^ b[i]);
    }
    return diff == 0;
}

/* ------------------------------------------------------------------------
 * JSON helpers
 */

/* PostgreSQL's jsonb orders object keys by length, then bytewise; authentik
 * stores event context, user and brand as jsonb, so what it forwards comes
 * out in that order. Sorts every object in \p item, recursively. */
static int jsonb_key_cmp(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);

    if (la != lb) {
        return la < lb ? -1 : 1;
    }
    return memcmp(a, b, la);
}

static void jsonb_sort(cJSON *item)
{
    cJSON *c;

    if (cJSON_IsObject(item) && item->child) {
        cJSON *in = item->child;
        cJSON *out = NULL;
        cJSON *prev = NULL;

        /* Stable insertion sort of the child list. */
        while (in) {
            cJSON *next = in->next;
            cJSON **pp = &out;

            while (*pp && jsonb_key_cmp((*pp)->string, in->string) <= 0) {
                pp = &(*pp)->next;
            }
            in->next = *pp;
            *pp = in;
            in = next;
        }
        /* cJSON keeps the head's prev pointing at the tail. */
        for (c = out; c; c = c->next) {
            c->prev = prev;
            prev = c;
        }
        out->prev = prev;
        item->child = out;
    }
    for (c = item->child; c; c = c->next) {
        jsonb_sort(c);
    }
}

static char *json_take_print(cJSON *obj)
{
    char *s = obj ? akv_json_print(obj) : NULL;

    cJSON_Delete(obj);
    return s;
}

static void reply_json(struct fakehttp_response *resp, int status, cJSON *obj)
{
    char *s = json_take_print(obj);

    if (!s) {
        fakehttp_reply(resp, 500, "{\"detail\":\"out of memory\"}");
        return;
    }
    fakehttp_reply_take(resp, status, s);
}

static void reply_detail(struct fakehttp_response *resp, int status,
                         const char *msg)
{
    cJSON *o = cJSON_CreateObject();

    if (o && !cJSON_AddStringToObject(o, "detail", msg)) {
        cJSON_Delete(o);
        o = NULL;
    }
    reply_json(resp, status, o);
}

/* DRF's validation error shape: {"field": ["message"]}. The first message
 * per field wins, as DRF stops at a field's first failing validator. */
static void add_field_error(cJSON *errs, const char *field, const char *msg)
{
    cJSON *arr;

    if (akv_json_get(errs, field)) {
        return;
    }
    arr = cJSON_AddArrayToObject(errs, field);
    if (arr) {
        cJSON_AddItemToArray(arr, cJSON_CreateString(msg));
    }
}

static cJSON *add_time_or_null(cJSON *obj, const char *name, bool has,
                               int64_t us)
{
    char buf[TIME_BUF];

    if (!has) {
        return cJSON_AddNullToObject(obj, name);
    }
    fmt_time(us, true, buf, sizeof(buf));
    return cJSON_AddStringToObject(obj, name, buf);
}

/* ------------------------------------------------------------------------
 * Token store
 */

static void token_free(struct token *t)
{
    if (!t) {
        return;
    }
    free(t->identifier);
    akv_wipe_free(t->key);
    free(t->description);
    free(t);
}

static int store_init(struct store *st)
{
    memset(st, 0, sizeof(*st));
    if (fakehtab_init(&st->by_ident, 1024) < 0) {
        return -1;
    }
    pthread_mutex_init(&st->mu, NULL);
    return 0;
}

static void token_release(struct fakehtab_node *n)
{
    token_free((struct token *)n);
}

static void store_destroy(struct store *st)
{
    fakehtab_destroy(&st->by_ident, token_release);
    free(st->sorted);
    pthread_mutex_destroy(&st->mu);
}

static struct token *store_find(const struct store *st, const char *ident)
{
    return (struct token *)fakehtab_find(&st->by_ident, ident);
}

/* Index in the sorted array where \p ident is or would be. */
static size_t store_pos(const struct store *st, const char *ident)
{
    size_t lo = 0;
    size_t hi = st->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (strcmp(st->sorted[mid]->identifier, ident) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static int store_grow(struct store *st)
{
    if (st->count == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 256;
        struct token **p = realloc(st->sorted, cap * sizeof(*p));

        if (!p) {
            return -1;
        }
        st->sorted = p;
        st->cap = cap;
    }
    return 0;
}

static int store_add(struct store *st, struct token *t)
{
    size_t pos;

    if (store_grow(st) < 0) {
        return -1;
    }
    pos = store_pos(st, t->identifier);
    memmove(&st->sorted[pos + 1], &st->sorted[pos],
            (st->count - pos) * sizeof(*st->sorted));
    st->sorted[pos] = t;
    st->count++;
    t->node.key = t->identifier;
    fakehtab_insert(&st->by_ident, &t->node);
    return 0;
}

/* Unlinks \p t from both indexes; the caller owns it afterwards. */
static void store_remove(struct store *st, struct token *t)
{
    size_t pos = store_pos(st, t->identifier);

    fakehtab_remove(&st->by_ident, t->identifier);
    if (pos < st->count && st->sorted[pos] == t) {
        memmove(&st->sorted[pos], &st->sorted[pos + 1],
                (st->count - pos - 1) * sizeof(*st->sorted));
        st->count--;
    }
}

/* ------------------------------------------------------------------------
 * Token and event JSON
 */

/* str(token): the identifier, plus " (expires=...)" for expiring tokens. */
static void token_name(const struct token *t, char *out, size_t outsz)
{
    char when[TIME_BUF];

    if (!t->expiring) {
        snprintf(out, outsz, "%s", t->identifier);
        return;
    }
    if (t->has_expires) {
        fmt_time(t->expires_us, false, when, sizeof(when));
    } else {
        snprintf(when, sizeof(when), "None");
    }
    snprintf(out, outsz, "%s (expires=%s)", t->identifier, when);
}

static cJSON *user_obj_json(void)
{
    cJSON *u = cJSON_CreateObject();

    if (!u) {
        return NULL;
    }
    cJSON_AddNumberToObject(u, "pk", ADMIN_PK);
    cJSON_AddStringToObject(u, "username", ADMIN_USERNAME);
    cJSON_AddStringToObject(u, "name", ADMIN_NAME);
    cJSON_AddTrueToObject(u, "is_active");
    cJSON_AddNullToObject(u, "last_login");
    cJSON_AddStringToObject(u, "email", ADMIN_EMAIL);
    cJSON_AddObjectToObject(u, "attributes");
    cJSON_AddStringToObject(u, "uid", ADMIN_UID);
    return u;
}

/* TokenSerializer's output, in its field order. */
static cJSON *token_json(const struct token *t)
{
    cJSON *o = cJSON_CreateObject();
    char pk[37];

    if (!o) {
        return NULL;
    }
    uuid_dashed(t->pk, pk);
    cJSON_AddStringToObject(o, "pk", pk);
    cJSON_AddNullToObject(o, "managed");
    cJSON_AddStringToObject(o, "identifier", t->identifier);
    cJSON_AddStringToObject(o, "intent", t->intent);
    cJSON_AddNumberToObject(o, "user", t->user);
    cJSON_AddItemToObject(o, "user_obj", user_obj_json());
    cJSON_AddStringToObject(o, "description", t->description);
    add_time_or_null(o, "expires", t->has_expires, t->expires_us);
    cJSON_AddBoolToObject(o, "expiring", t->expiring);
    return o;
}

/* model_to_dict(token) after sanitize_dict: the pk as uuid hex. */
static cJSON *model_dict_json(const struct token *t)
{
    cJSON *o = cJSON_CreateObject();
    char name[IDENT_MAX + 64];

    if (!o) {
        return NULL;
    }
    token_name(t, name, sizeof(name));
    cJSON_AddStringToObject(o, "app", "authentik_core");
    cJSON_AddStringToObject(o, "model_name", "token");
    cJSON_AddStringToObject(o, "pk", t->pk);
    cJSON_AddStringToObject(o, "name", name);
    return o;
}

/* The enterprise audit middleware's serialize_simple() of a token, after
 * cleanse_dict(): secrets (key, token_uuid) are masked before diffing, so a
 * key change never shows up in an update diff. */
static cJSON *token_state_json(const struct token *t)
{
    cJSON *o = cJSON_CreateObject();

    if (!o) {
        return NULL;
    }
    cJSON_AddNullToObject(o, "managed");
    add_time_or_null(o, "expires", t->has_expires, t->expires_us);
    cJSON_AddBoolToObject(o, "expiring", t->expiring);
    cJSON_AddStringToObject(o, "token_uuid", CLEANSED);
    cJSON_AddStringToObject(o, "identifier", t->identifier);
    cJSON_AddStringToObject(o, "key", CLEANSED);
    cJSON_AddStringToObject(o, "intent", t->intent);
    cJSON_AddNumberToObject(o, "user", t->user);
    cJSON_AddStringToObject(o, "description", t->description);
    return o;
}

/* Python's None and a missing key compare equal in the middleware's diff. */
static bool same_value(const cJSON *a, const cJSON *b)
{
    bool a_null = !a || cJSON_IsNull(a);
    bool b_null = !b || cJSON_IsNull(b);

    if (a_null || b_null) {
        return a_null && b_null;
    }
    return cJSON_Compare(a, b, true);
}

static void diff_add(cJSON *diff, const char *name, const cJSON *prev,
                     const cJSON *next)
{
    cJSON *entry = cJSON_AddObjectToObject(diff, name);

    if (!entry) {
        return;
    }
    cJSON_AddItemToObject(entry, "previous_value",
                          prev ? cJSON_Duplicate(prev, true)
                               : cJSON_CreateNull());
    cJSON_AddItemToObject(entry, "new_value",
                          next ? cJSON_Duplicate(next, true)
                               : cJSON_CreateNull());
}

/* EnterpriseAuditMiddleware.diff(before, after). */
static cJSON *state_diff(const cJSON *before, const cJSON *after)
{
    cJSON *diff = cJSON_CreateObject();
    const cJSON *c;

    if (!diff) {
        return NULL;
    }
    for (c = before ? before->child : NULL; c; c = c->next) {
        const cJSON *a = akv_json_get(after, c->string);

        if (!same_value(a, c)) {
            diff_add(diff, c->string, c, a);
        }
    }
    for (c = after ? after->child : NULL; c; c = c->next) {
        if (akv_json_get(before, c->string) || akv_json_get(diff, c->string)) {
            continue;
        }
        if (!same_value(NULL, c)) {
            diff_add(diff, c->string, NULL, c);
        }
    }
    return diff;
}

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind,
                               const char *key, const char *value)
{
    cJSON *args = cls;

    (void)kind;
    if (!key) {
        return MHD_YES;
    }
    /* QueryDict.items() yields the last value of a repeated argument. */
    cJSON_DeleteItemFromObjectCaseSensitive(args, key);
    cJSON_AddStringToObject(
        args, key, is_hidden_key(key) ? CLEANSED : (value ? value : ""));
    return MHD_YES;
}

/* Event.from_http()'s context["http_request"]. */
static cJSON *http_request_json(const struct reqctx *rc)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *args;
    const char *ua;

    if (!o) {
        return NULL;
    }
    cJSON_AddStringToObject(o, "path", rc->req->path);
    cJSON_AddStringToObject(o, "method", rc->req->method);
    args = cJSON_AddObjectToObject(o, "args");
    if (args) {
        MHD_get_connection_values(rc->req->conn, MHD_GET_ARGUMENT_KIND, add_arg,
                                  args);
    }
    ua = fakehttp_header(rc->req, "User-Agent");
    cJSON_AddStringToObject(o, "user_agent", ua ? ua : "");
    cJSON_AddStringToObject(o, "request_id", rc->request_id);
    return o;
}

static cJSON *admin_user_json(void)
{
    cJSON *u = cJSON_CreateObject();

    if (!u) {
        return NULL;
    }
    cJSON_AddStringToObject(u, "username", ADMIN_USERNAME);
    cJSON_AddNumberToObject(u, "pk", ADMIN_PK);
    cJSON_AddStringToObject(u, "email", ADMIN_EMAIL);
    return u;
}

static cJSON *brand_json(bool fallback)
{
    cJSON *b = cJSON_CreateObject();

    if (!b) {
        return NULL;
    }
    if (fallback) {
        /* Events saved outside a request get DEFAULT_BRAND. */
        cJSON_AddStringToObject(b, "pk", "a7d83d0dbfaf49259a92ced93f04dd52");
        cJSON_AddStringToObject(b, "app", "authentik_brands");
        cJSON_AddStringToObject(b, "name", "Brand fallback");
    } else {
        cJSON_AddStringToObject(b, "pk", "0bb0bcf421994958b51ffc2627ea8fe6");
        cJSON_AddStringToObject(b, "app", "authentik_brands");
        cJSON_AddStringToObject(b, "name", "Default brand");
    }
    cJSON_AddStringToObject(b, "model_name", "brand");
    return b;
}

/*
 * Builds one event as authentik's forwarding produces it and stores it in
 * \p out. Takes ownership of \p context. \p rc is NULL for events raised
 * outside an HTTP request (background tasks): no user, no client IP, the
 * fallback brand.
 */
static int event_build(const char *action, const char *appname, cJSON *context,
                       const struct reqctx *rc, const char *token_pk,
                       struct outmsg *out)
{
    cJSON *ev = cJSON_CreateObject();
    char pkhex[33];
    char pk[37];
    char when[TIME_BUF];
    int64_t created = now_us();
    cJSON *user;
    cJSON *brand;

    if (!ev || !context) {
        cJSON_Delete(ev);
        cJSON_Delete(context);
        return -1;
    }
    if (rc) {
        cJSON_AddItemToObject(context, "http_request", http_request_json(rc));
    }
    jsonb_sort(context);
    user = rc ? admin_user_json() : cJSON_CreateObject();
    brand = brand_json(rc == NULL);
    jsonb_sort(user);
    jsonb_sort(brand);

    uuid4_hex(pkhex);
    uuid_dashed(pkhex, pk);
    cJSON_AddStringToObject(ev, "pk", pk);
    cJSON_AddItemToObject(ev, "user", user);
    cJSON_AddStringToObject(ev, "action", action);
    cJSON_AddStringToObject(ev, "app", appname);
    cJSON_AddItemToObject(ev, "context", context);
    if (rc && rc->have_client_ip) {
        cJSON_AddStringToObject(ev, "client_ip", rc->client_ip);
    } else if (rc) {
        cJSON_AddStringToObject(ev, "client_ip", "255.255.255.255");
    } else {
        cJSON_AddNullToObject(ev, "client_ip");
    }
    fmt_time(created, true, when, sizeof(when));
    cJSON_AddStringToObject(ev, "created", when);
    fmt_time(created + EVENT_RETENTION_US, true, when, sizeof(when));
    cJSON_AddStringToObject(ev, "expires", when);
    cJSON_AddItemToObject(ev, "brand", brand);

    out->value = json_take_print(ev);
    if (!out->value) {
        return -1;
    }
    snprintf(out->key, sizeof(out->key), "%s", token_pk);
    return 0;
}

/* model_created / model_updated / model_deleted as the audit middleware
 * records them; \p diff (taken, may be NULL) only with --enterprise. */
static int model_event(const char *action, const struct token *t, cJSON *diff,
                       const struct reqctx *rc, struct outmsg *out)
{
    cJSON *ctx = cJSON_CreateObject();

    if (!ctx) {
        cJSON_Delete(diff);
        return -1;
    }
    if (diff) {
        cJSON_AddItemToObject(ctx, "diff", diff);
    }
    cJSON_AddItemToObject(ctx, "model", model_dict_json(t));
    return event_build(action, "authentik.events.middleware", ctx, rc, t->pk,
                       out);
}

/* ------------------------------------------------------------------------
 * Kafka
 */

/* One produced message and the HTTP thread waiting for its delivery
 * report. Shared by the waiter and the delivery callback; whoever drops the
 * last reference frees it, so a waiter that gave up is safe. */
struct delivery {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;
    bool done;
    rd_kafka_resp_err_t err;
};

static void delivery_unref(struct delivery *d)
{
    int left;

    pthread_mutex_lock(&d->mu);
    left = --d->refs;
    pthread_mutex_unlock(&d->mu);
    if (left == 0) {
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
        free(d);
    }
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                      void *opaque)
{
    struct delivery *d = msg->_private;

    (void)rk;
    (void)opaque;
    if (!d) {
        return;
    }
    pthread_mutex_lock(&d->mu);
    d->err = msg->err;
    d->done = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    delivery_unref(d);
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf)
{
    (void)rk;
    if (level <= 3) {
        fprintf(stderr, "fake-authentik: kafka %s: %s\n", fac, buf);
    }
}

/* Serves delivery reports, so HTTP threads only ever wait on their own
 * condition variable. */
static void *poller_main(void *arg)
{
    struct app *app = arg;

    while (!atomic_load(&app->stop)) {
        rd_kafka_poll(app->rk, 100);
    }
    return NULL;
}

/* \p ms on akv_mono_ms()'s clock (CLOCK_MONOTONIC) as the deadline
 * pthread_cond_timedwait() takes on the condition variables here. */
static struct timespec mono_deadline(int64_t ms)
{
    struct timespec ts;

    ts.tv_sec = (time_t)(ms / 1000);
    ts.tv_nsec = (long)(ms % 1000) * 1000000L;
    return ts;
}

/* Produces one message and waits until Kafka acknowledged it (acks=all).
 * @returns 0, or -1 with the reason logged to stderr. */
static int publish_wait(struct app *app, const struct outmsg *m)
{
    struct delivery *d = calloc(1, sizeof(*d));
    pthread_condattr_t attr;
    int64_t deadline = akv_mono_ms() + DELIVERY_WAIT_MS;
    struct timespec until = mono_deadline(deadline);
    rd_kafka_resp_err_t err;

    if (!d) {
        fprintf(stderr, "fake-authentik: out of memory publishing\n");
        return -1;
    }
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &attr);
    pthread_condattr_destroy(&attr);
    d->refs = 2; /* the waiter and the delivery report */

    for (;;) {
        err = rd_kafka_producev(app->rk, RD_KAFKA_V_RKT(app->rkt),
                                RD_KAFKA_V_KEY(m->key, strlen(m->key)),
                                RD_KAFKA_V_VALUE(m->value, strlen(m->value)),
                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || akv_mono_ms() >= deadline) {
            break;
        }
        /* The poller thread drains the queue; just give it a moment. */
        nanosleep(&(struct timespec){0, 5000000L}, NULL);
    }
    if (err) {
        fprintf(stderr, "fake-authentik: cannot produce to %s: %s\n",
                app->topic, rd_kafka_err2str(err));
        d->refs = 1;
        delivery_unref(d);
        return -1;
    }

    pthread_mutex_lock(&d->mu);
    while (!d->done) {
        if (pthread_cond_timedwait(&d->cv, &d->mu, &until) == ETIMEDOUT) {
            break;
        }
    }
    err = d->done ? d->err : RD_KAFKA_RESP_ERR__TIMED_OUT;
    pthread_mutex_unlock(&d->mu);
    delivery_unref(d);
    if (err) {
        fprintf(stderr, "fake-authentik: event not delivered to %s: %s\n",
                app->topic, rd_kafka_err2str(err));
        return -1;
    }
    atomic_fetch_add(&app->stats.events_published, 1);
    return 0;
}

/* Publishes \p n events in order, one at a time: set_key's two events go
 * to the same partition and must not be reordered by a retry. Frees the
 * values either way. */
static int publish_all(struct app *app, struct outmsg *msgs, int n)
{
    int rc = 0;
    int i;

    for (i = 0; i < n; i++) {
        if (rc == 0 && publish_wait(app, &msgs[i]) < 0) {
            rc = -1;
        }
        free(msgs[i].value);
        msgs[i].value = NULL;
    }
    return rc;
}

/* Sets the "name=value" lines of \p path on \p conf. An error names the
 * line and the property, never the value (it may be a password). */
static int kafka_properties_file(rd_kafka_conf_t *conf, const char *path,
                                 char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    char kerr[256];
    int n = 0;

    if (!f) {
        snprintf(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        char *eq;
        size_t len = strcspn(line, "\r\n");

        n++;
        line[len] = '\0';
        if (line[0] == '\0' || line[0] == '#') {
            continue;
        }
        eq = strchr(line, '=');
        if (!eq || eq == line) {
            snprintf(errstr, errstr_size, "%s:%d: not name=value", path, n);
            fclose(f);
            return -1;
        }
        *eq = '\0';
        if (rd_kafka_conf_set(conf, line, eq + 1, kerr, sizeof(kerr)) !=
            RD_KAFKA_CONF_OK) {
            snprintf(errstr, errstr_size, "%s:%d: property %.64s refused", path,
                     n, line);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

static int kafka_start(struct app *app)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char errstr[512];
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    static const char *const settings[][2] = {
        {"acks", "all"},
        {"linger.ms", "1"},
        {"compression.codec", "lz4"},
        {"message.timeout.ms", "5000"},
        {"partitioner", "murmur2_random"},
        {"log_level", "3"},
        {"client.id", "fake-authentik"},
    };
    size_t i;

    if (!conf) {
        return -1;
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", app->brokers, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK) {
        goto conf_error;
    }
    for (i = 0; i < sizeof(settings) / sizeof(settings[0]); i++) {
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK) {
            goto conf_error;
        }
    }
    if (app->kafka_props && kafka_properties_file(conf, app->kafka_props,
                                                  errstr, sizeof(errstr)) < 0) {
        goto conf_error;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    app->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!app->rk) {
        goto conf_error;
    }
    app->rkt = rd_kafka_topic_new(app->rk, app->topic, NULL);
    if (!app->rkt) {
        fprintf(stderr, "fake-authentik: cannot use topic %s: %s\n", app->topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    /* "Up" means the cluster answered: a test that read our address can
     * use the API right away without racing the producer's connect. */
    err = rd_kafka_metadata(app->rk, 0, app->rkt, &md, 10000);
    if (err) {
        fprintf(stderr, "fake-authentik: cannot reach Kafka at %s: %s\n",
                app->brokers, rd_kafka_err2str(err));
        return -1;
    }
    if (md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "fake-authentik: warning: topic %s: %s\n", app->topic,
                rd_kafka_err2str(md->topic_cnt
                                     ? md->topics[0].err
                                     : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
    }
    rd_kafka_metadata_destroy(md);
    if (pthread_create(&app->poller, NULL, poller_main, app) != 0) {
        fprintf(stderr, "fake-authentik: cannot start the poller thread\n");
        return -1;
    }
    app->poller_started = true;
    return 0;

conf_error:
    fprintf(stderr, "fake-authentik: kafka configuration: %s\n", errstr);
    rd_kafka_conf_destroy(conf);
    return -1;
}

/* On shutdown: give in-flight events a moment to be acknowledged, then
 * fail whatever is left so HTTP threads still waiting on a dead cluster
 * answer 500 at once instead of holding up the exit for the full message
 * timeout. */
static void kafka_drain(struct app *app)
{
    int64_t deadline = akv_mono_ms() + 1000;

    if (!app->rk) {
        return;
    }
    while (rd_kafka_outq_len(app->rk) > 0 && akv_mono_ms() < deadline) {
        nanosleep(&(struct timespec){0, 10000000L}, NULL);
    }
    rd_kafka_purge(app->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
}

static void kafka_stop(struct app *app)
{
    if (app->poller_started) {
        atomic_store(&app->stop, true);
        pthread_join(app->poller, NULL);
        app->poller_started = false;
    }
    if (app->rk) {
        if (rd_kafka_flush(app->rk, MSG_TIMEOUT_MS) != 0) {
            fprintf(stderr, "fake-authentik: %d event(s) not flushed\n",
                    rd_kafka_outq_len(app->rk));
        }
    }
    if (app->rkt) {
        rd_kafka_topic_destroy(app->rkt);
        app->rkt = NULL;
    }
    if (app->rk) {
        rd_kafka_destroy(app->rk);
        app->rk = NULL;
    }
}

/* ------------------------------------------------------------------------
 * Request input
 */

/* What a create/update body asked for, validated field by field. String
 * pointers point into the parsed body. */
struct token_input {
    const char *identifier;
    const char *intent;
    bool intent_bad;
    bool has_intent;
    bool has_user;
    int user;
    const char *description;
    bool has_expires;
    bool expires_null;
    int64_t expires_us;
    bool has_expiring;
    bool expiring;
};

/* Parses the request body; a missing body is an empty object. On failure
 * the response is set and NULL returned. */
static cJSON *parse_body(const struct fakehttp_request *req,
                         struct fakehttp_response *resp)
{
    cJSON *body;
    cJSON *errs;
    char msg[96];

    if (req->body_len == 0) {
        body = cJSON_CreateObject();
        if (!body) {
            reply_detail(resp, 500, "out of memory");
        }
        return body;
    }
    body = cJSON_ParseWithLength(req->body, req->body_len);
    if (!body) {
        reply_detail(resp, 400, "JSON parse error - Expecting value");
        return NULL;
    }
    if (cJSON_IsObject(body)) {
        return body;
    }
    snprintf(msg, sizeof(msg),
             "Invalid data. Expected a dictionary, but got %s.",
             cJSON_IsArray(body)    ? "list"
             : cJSON_IsString(body) ? "str"
             : cJSON_IsNumber(body) ? "int"
             : cJSON_IsBool(body)   ? "bool"
                                    : "NoneType");
    cJSON_Delete(body);
    errs = cJSON_CreateObject();
    if (errs) {
        add_field_error(errs, "non_field_errors", msg);
    }
    reply_json(resp, 400, errs);
    return NULL;
}

static const char *string_field(const cJSON *v, const char *field, cJSON *errs,
                                bool allow_blank)
{
    if (cJSON_IsNull(v)) {
        add_field_error(errs, field, "This field may not be null.");
        return NULL;
    }
    if (!cJSON_IsString(v)) {
        add_field_error(errs, field, "Not a valid string.");
        return NULL;
    }
    if (!allow_blank && v->valuestring[0] == '\0') {
        add_field_error(errs, field, "This field may not be blank.");
        return NULL;
    }
    return v->valuestring;
}

/* DRF's BooleanField accepts JSON booleans and a few spellings of them. */
static int bool_field(const cJSON *v, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "1",
                                      "yes",  "on",   "y"};
    static const char *const no[] = {"false", "False", "FALSE", "0",
                                     "no",    "off",   "n"};
    size_t i;

    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return 0;
    }
    if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1)) {
        *out = v->valuedouble == 1;
        return 0;
    }
    if (!cJSON_IsString(v)) {
        return -1;
    }
    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(v->valuestring, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(v->valuestring, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Field-level validation, as TokenSerializer's fields do it; the checks
 * that need the store (uniqueness) and validate() come later. */
static void token_input_parse(const cJSON *body, bool need_identifier,
                              struct token_input *in, cJSON *errs)
{
    const cJSON *v;

    memset(in, 0, sizeof(*in));
    v = akv_json_get(body, "identifier");
    if (!v) {
        if (need_identifier) {
            add_field_error(errs, "identifier", "This field is required.");
        }
    } else {
        const char *s = string_field(v, "identifier", errs, false);

        if (s && strlen(s) > IDENT_MAX) {
            add_field_error(errs, "identifier",
                            "Ensure this field has no more than 255 "
                            "characters.");
        } else if (s && !valid_slug(s)) {
            add_field_error(errs, "identifier", SLUG_ERROR);
        } else {
            in->identifier = s;
        }
    }

    v = akv_json_get(body, "intent");
    if (v) {
        in->has_intent = true;
        if (cJSON_IsString(v) &&
            (strcmp(v->valuestring, "api") == 0 ||
             strcmp(v->valuestring, "app_password") == 0)) {
            in->intent =
                strcmp(v->valuestring, "api") == 0 ? "api" : "app_password";
        } else {
            in->intent_bad = true;
        }
    }

    v = akv_json_get(body, "user");
    if (v) {
        char msg[128];

        if (!cJSON_IsNumber(v) || v->valuedouble != (double)v->valueint) {
            add_field_error(errs, "user",
                            "Incorrect type. Expected pk value, received "
                            "str.");
        } else if (v->valueint != ADMIN_PK) {
            snprintf(msg, sizeof(msg),
                     "Invalid pk \"%d\" - object does not exist.", v->valueint);
            add_field_error(errs, "user", msg);
        } else {
            in->has_user = true;
            in->user = v->valueint;
        }
    }

    v = akv_json_get(body, "description");
    if (v) {
        in->description = string_field(v, "description", errs, true);
    }

    v = akv_json_get(body, "expires");
    if (v) {
        if (cJSON_IsNull(v)) {
            in->has_expires = true;
            in->expires_null = true;
        } else if (cJSON_IsString(v) &&
                   parse_time(v->valuestring, &in->expires_us) == 0) {
            in->has_expires = true;
        } else {
            add_field_error(errs, "expires", DATETIME_ERROR);
        }
    }

    v = akv_json_get(body, "expiring");
    if (v) {
        if (cJSON_IsNull(v)) {
            add_field_error(errs, "expiring", "This field may not be null.");
        } else if (bool_field(v, &in->expiring) < 0) {
            add_field_error(errs, "expiring", "Must be a valid boolean.");
        } else {
            in->has_expiring = true;
        }
    }
}

/* TokenSerializer.validate(): allowed intents, the app password lifetime
 * cap. Called with the store locked. @returns 0 or -1 with \p errs set. */
static int token_input_validate(const struct token_input *in,
                                const char *intent, int64_t now, cJSON *errs)
{
    if (in->intent_bad) {
        add_field_error(errs, "intent", "Invalid intent");
        return -1;
    }
    if (strcmp(intent, "app_password") == 0 && in->has_expires &&
        !in->expires_null && in->expires_us > now + DAY_US) {
        char when[TIME_BUF];
        char msg[128];

        fmt_time(now + DAY_US, false, when, sizeof(when));
        snprintf(msg, sizeof(msg),
                 "Token expires exceeds maximum lifetime (%s UTC).", when);
        add_field_error(errs, "expires", msg);
        return -1;
    }
    return 0;
}

/* Applies validated input to \p t; API tokens always get a fresh default
 * lifetime, which authentik does not let clients override. */
static int token_apply(struct token *t, const struct token_input *in,
                       int64_t now)
{
    if (in->identifier) {
        char *s = strdup(in->identifier);

        if (!s) {
            return -1;
        }
        free(t->identifier);
        t->identifier = s;
    }
    if (in->description) {
        char *s = strdup(in->description);

        if (!s) {
            return -1;
        }
        free(t->description);
        t->description = s;
    }
    if (in->intent) {
        t->intent = in->intent;
    }
    if (in->has_user) {
        t->user = in->user;
    }
    if (in->has_expiring) {
        t->expiring = in->expiring;
    }
    if (strcmp(t->intent, "api") == 0) {
        t->has_expires = true;
        t->expires_us = now + DAY_US;
    } else if (in->has_expires) {
        t->has_expires = !in->expires_null;
        t->expires_us = in->expires_us;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Token API handlers
 */

static void reply_errors(struct fakehttp_response *resp, cJSON *errs)
{
    reply_json(resp, 400, errs);
}

static void finish_publish(struct app *app, struct fakehttp_response *resp,
                           struct outmsg *msgs, int n, int status, cJSON *body)
{
    if (publish_all(app, msgs, n) < 0) {
        cJSON_Delete(body);
        reply_detail(resp, 500, "could not publish the event to Kafka");
        return;
    }
    if (body) {
        reply_json(resp, status, body);
    } else {
        fakehttp_reply_take(resp, status, NULL);
    }
}

static void tokens_create(struct app *app, const struct reqctx *rc,
                          struct fakehttp_response *resp)
{
    struct token_input in;
    struct outmsg msg = {{0}, NULL};
    cJSON *body = parse_body(rc->req, resp);
    cJSON *errs = cJSON_CreateObject();
    cJSON *out = NULL;
    cJSON *diff = NULL;
    struct token *t = NULL;
    int64_t now = now_us();

    if (!body || !errs) {
        cJSON_Delete(body);
        cJSON_Delete(errs);
        if (!resp->body) {
            reply_detail(resp, 500, "out of memory");
        }
        return;
    }
    token_input_parse(body, true, &in, errs);

    t = calloc(1, sizeof(*t));
    if (t) {
        uuid4_hex(t->pk);
        t->key = new_key();
        t->description = strdup("");
        t->intent = "api";
        t->user = ADMIN_PK;
        t->expiring = true;
    }
    if (!t || !t->key || !t->description) {
        token_free(t);
        cJSON_Delete(body);
        cJSON_Delete(errs);
        reply_detail(resp, 500, "out of memory");
        return;
    }

    pthread_mutex_lock(&app->store.mu);
    if (in.identifier && store_find(&app->store, in.identifier)) {
        add_field_error(errs, "identifier",
                        "token with this identifier already exists.");
    }
    if (!errs->child) {
        token_input_validate(&in, in.intent ? in.intent : "api", now, errs);
    }
    if (errs->child) {
        pthread_mutex_unlock(&app->store.mu);
        token_free(t);
        cJSON_Delete(body);
        reply_errors(resp, errs);
        return;
    }
    if (token_apply(t, &in, now) < 0 || store_add(&app->store, t) < 0) {
        pthread_mutex_unlock(&app->store.mu);
        token_free(t);
        cJSON_Delete(body);
        cJSON_Delete(errs);
        reply_detail(resp, 500, "out of memory");
        return;
    }
    if (app->enterprise) {
        cJSON *after = token_state_json(t);

        diff = state_diff(NULL, after);
        cJSON_Delete(after);
    }
    out = token_json(t);
    if (model_event("model_created", t, diff, rc, &msg) < 0) {
        fprintf(stderr, "fake-authentik: cannot build an event\n");
    }
    pthread_mutex_unlock(&app->store.mu);
    cJSON_Delete(body);
    cJSON_Delete(errs);
    if (!msg.value) {
        cJSON_Delete(out);
        reply_detail(resp, 500, "could not build the event");
        return;
    }
    finish_publish(app, resp, &msg, 1, 201, out);
}

static void tokens_update(struct app *app, const struct reqctx *rc,
                          const char *ident, bool partial,
                          struct fakehttp_response *resp)
{
    struct token_input in;
    struct outmsg msg = {{0}, NULL};
    cJSON *body = parse_body(rc->req, resp);
    cJSON *errs = cJSON_CreateObject();
    cJSON *before = NULL;
    cJSON *diff = NULL;
    cJSON *out = NULL;
    struct token *t;
    int64_t now = now_us();
    bool renamed;

    if (!body || !errs) {
        cJSON_Delete(body);
        cJSON_Delete(errs);
        if (!resp->body) {
            reply_detail(resp, 500, "out of memory");
        }
        return;
    }
    token_input_parse(body, !partial, &in, errs);

    pthread_mutex_lock(&app->store.mu);
    t = store_find(&app->store, ident);
    if (!t) {
        pthread_mutex_unlock(&app->store.mu);
        cJSON_Delete(body);
        cJSON_Delete(errs);
        reply_detail(resp, 404, "Not found.");
        return;
    }
    renamed = in.identifier && strcmp(in.identifier, t->identifier) != 0;
    if (renamed && store_find(&app->store, in.identifier)) {
        add_field_error(errs, "identifier",
                        "token with this identifier already exists.");
    }
    if (!errs->child) {
        token_input_validate(&in, in.intent ? in.intent : t->intent, now, errs);
    }
    if (errs->child) {
        pthread_mutex_unlock(&app->store.mu);
        cJSON_Delete(body);
        reply_errors(resp, errs);
        return;
    }
    cJSON_Delete(errs);
    if (app->enterprise) {
        before = token_state_json(t);
    }
    /* A rename moves the token in both indexes. */
    if (renamed) {
        store_remove(&app->store, t);
    }
    if (token_apply(t, &in, now) < 0) {
        fprintf(stderr, "fake-authentik: out of memory updating a token\n");
    }
    if (renamed && store_add(&app->store, t) < 0) {
        /* Only reachable when out of memory; the token is lost. */
        pthread_mutex_unlock(&app->store.mu);
        token_free(t);
        cJSON_Delete(before);
        cJSON_Delete(body);
        reply_detail(resp, 500, "out of memory");
        return;
    }
    if (app->enterprise) {
        cJSON *after = token_state_json(t);

        diff = state_diff(before, after);
        cJSON_Delete(after);
        cJSON_Delete(before);
    }
    out = token_json(t);
    model_event("model_updated", t, diff, rc, &msg);
    pthread_mutex_unlock(&app->store.mu);
    cJSON_Delete(body);
    if (!msg.value) {
        cJSON_Delete(out);
        reply_detail(resp, 500, "could not build the event");
        return;
    }
    finish_publish(app, resp, &msg, 1, 200, out);
}

static void tokens_delete(struct app *app, const struct reqctx *rc,
                          const char *ident, struct fakehttp_response *resp)
{
    struct outmsg msg = {{0}, NULL};
    struct token *t;

    pthread_mutex_lock(&app->store.mu);
    t = store_find(&app->store, ident);
    if (t) {
        store_remove(&app->store, t);
        model_event("model_deleted", t, NULL, rc, &msg);
    }
    pthread_mutex_unlock(&app->store.mu);
    if (!t) {
        reply_detail(resp, 404, "Not found.");
        return;
    }
    token_free(t);
    if (!msg.value) {
        reply_detail(resp, 500, "could not build the event");
        return;
    }
    finish_publish(app, resp, &msg, 1, 204, NULL);
}

static void tokens_detail(struct app *app, const char *ident,
                          struct fakehttp_response *resp)
{
    struct token *t;
    cJSON *out = NULL;

    atomic_fetch_add(&app->stats.detail, 1);
    pthread_mutex_lock(&app->store.mu);
    t = store_find(&app->store, ident);
    if (t) {
        out = token_json(t);
    }
    pthread_mutex_unlock(&app->store.mu);
    if (!t) {
        reply_detail(resp, 404, "Not found.");
        return;
    }
    reply_json(resp, 200, out);
}

static void tokens_view_key(struct app *app, const struct reqctx *rc,
                            const char *ident, struct fakehttp_response *resp)
{
    struct outmsg msg = {{0}, NULL};
    struct token *t;
    cJSON *out = NULL;
    cJSON *ctx;

    atomic_fetch_add(&app->stats.view_key, 1);
    pthread_mutex_lock(&app->store.mu);
    t = store_find(&app->store, ident);
    if (t) {
        out = cJSON_CreateObject();
        if (out) {
            cJSON_AddStringToObject(out, "key", t->key);
        }
        ctx = cJSON_CreateObject();
        if (ctx) {
            cJSON_AddItemToObject(ctx, "secret", model_dict_json(t));
        }
        event_build("secret_view", "authentik.core.api.tokens", ctx, rc, t->pk,
                    &msg);
    }
    pthread_mutex_unlock(&app->store.mu);
    if (!t) {
        reply_detail(resp, 404, "Not found.");
        return;
    }
    if (!msg.value) {
        cJSON_Delete(out);
        reply_detail(resp, 500, "could not build the event");
        return;
    }
    finish_publish(app, resp, &msg, 1, 200, out);
}

static void tokens_set_key(struct app *app, const struct reqctx *rc,
                           const char *ident, struct fakehttp_response *resp)
{
    struct outmsg msgs[MAX_OUTMSGS] = {{{0}, NULL}, {{0}, NULL}};
    cJSON *body;
    const cJSON *k;
    struct token *t;
    char *key;
    cJSON *ctx;

    /* The view looks the token up before it reads the body, so an unknown
     * token is a 404 whatever the body says. */
    pthread_mutex_lock(&app->store.mu);
    t = store_find(&app->store, ident);
    pthread_mutex_unlock(&app->store.mu);
    if (!t) {
        reply_detail(resp, 404, "Not found.");
        return;
    }
    body = parse_body(rc->req, resp);
    if (!body) {
        return;
    }
    k = akv_json_get(body, "key");
    if (!cJSON_IsString(k) || k->valuestring[0] == '\0') {
        cJSON *errs = cJSON_CreateObject();

        cJSON_Delete(body);
        if (errs) {
            add_field_error(errs, "key", "This field may not be blank.");
        }
        reply_errors(resp, errs);
        return;
    }
    key = strdup(k->valuestring);
    cJSON_Delete(body);
    if (!key) {
        reply_detail(resp, 500, "out of memory");
        return;
    }

    pthread_mutex_lock(&app->store.mu);
    t = store_find(&app->store, ident);
    if (t) {
        free(t->key);
        t->key = key;
        key = NULL;
        /* token.save() first: the audit middleware's event, whose diff is
         * empty because the key is masked on both sides. */
        model_event("model_updated", t,
                    app->enterprise ? cJSON_CreateObject() : NULL, rc,
                    &msgs[0]);
        /* Then the view's own Event.new(MODEL_UPDATED, model=...). */
        ctx = cJSON_CreateObject();
        if (ctx) {
            cJSON_AddItemToObject(ctx, "model", model_dict_json(t));
        }
        event_build("model_updated", "authentik.core.api.tokens", ctx, rc,
                    t->pk, &msgs[1]);
    }
    pthread_mutex_unlock(&app->store.mu);
    free(key);
    if (!t) {
        reply_detail(resp, 404, "Not found.");
        return;
    }
    if (!msgs[0].value || !msgs[1].value) {
        free(msgs[0].value);
        free(msgs[1].value);
        reply_detail(resp, 500, "could not build the event");
        return;
    }
    finish_publish(app, resp, msgs, 2, 204, NULL);
}

/* A query filter; NULL or "" means "not filtering", as django-filter does
 * for empty values. */
static const char *filter_arg(const struct fakehttp_request *req,
                              const char *name)
{
    const char *v = fakehttp_arg(req, name);

    return v && *v ? v : NULL;
}

struct list_filter {
    const char *identifier;
    const char *intent;
    const char *username;
    const char *description;
    const char *managed;
    const char *search;
    int expiring; /* -1: any */
};

static bool token_matches(const struct token *t, const struct list_filter *f)
{
    if (f->identifier && strcmp(t->identifier, f->identifier) != 0) {
        return false;
    }
    if (f->intent && strcmp(t->intent, f->intent) != 0) {
        return false;
    }
    if (f->username && strcmp(f->username, ADMIN_USERNAME) != 0) {
        return false;
    }
    if (f->description && strcmp(t->description, f->description) != 0) {
        return false;
    }
    /* Tokens made through the API are never managed. */
    if (f->managed) {
        return false;
    }
    if (f->expiring >= 0 && t->expiring != (f->expiring == 1)) {
        return false;
    }
    if (f->search && !ci_contains(t->identifier, f->search) &&
        !ci_contains(t->intent, f->search) &&
        !ci_contains(ADMIN_USERNAME, f->search) &&
        !ci_contains(t->description, f->search)) {
        return false;
    }
    return true;
}

/* Django's paginator and authentik's Pagination class: 0 stands for "no
 * next/previous page". */
static cJSON *pagination_json(long count, long page, long page_size, long pages)
{
    cJSON *p = cJSON_CreateObject();
    long start = count == 0 ? 0 : (page - 1) * page_size + 1;
    long end = page == pages ? count : page * page_size;

    if (!p) {
        return NULL;
    }
    cJSON_AddNumberToObject(p, "next", page < pages ? (double)(page + 1) : 0);
    cJSON_AddNumberToObject(p, "previous", page > 1 ? (double)(page - 1) : 0);
    cJSON_AddNumberToObject(p, "count", (double)count);
    cJSON_AddNumberToObject(p, "current", (double)page);
    cJSON_AddNumberToObject(p, "total_pages", (double)pages);
    cJSON_AddNumberToObject(p, "start_index", (double)start);
    cJSON_AddNumberToObject(p, "end_index", (double)end);
    return p;
}

static void tokens_list(struct app *app, const struct fakehttp_request *req,
                        struct fakehttp_response *resp)
{
    struct list_filter f;
    const char *page_arg = fakehttp_arg(req, "page");
    const char *size_arg = fakehttp_arg(req, "page_size");
    const char *exp_arg = filter_arg(req, "expiring");
    long page_size = app->page_size;
    long page = 1;
    long count = 0;
    long pages;
    long skip;
    long i;
    bool filtered;
    bool last = false;
    cJSON *out = cJSON_CreateObject();
    cJSON *results;

    atomic_fetch_add(&app->stats.list, 1);
    if (!out) {
        reply_detail(resp, 500, "out of memory");
        return;
    }
    f.identifier = filter_arg(req, "identifier");
    f.intent = filter_arg(req, "intent");
    f.username = filter_arg(req, "user__username");
    f.description = filter_arg(req, "description");
    f.managed = filter_arg(req, "managed");
    f.search = filter_arg(req, "search");
    f.expiring = -1;
    if (exp_arg) {
        if (strcmp(exp_arg, "true") == 0 || strcmp(exp_arg, "True") == 0 ||
            strcmp(exp_arg, "1") == 0) {
            f.expiring = 1;
        } else if (strcmp(exp_arg, "false") == 0 ||
                   strcmp(exp_arg, "False") == 0 || strcmp(exp_arg, "0") == 0) {
            f.expiring = 0;
        }
    }
    filtered = f.identifier || f.intent || f.username || f.description ||
               f.managed || f.search || f.expiring >= 0;

    /* DRF falls back to the default for a bad or non-positive size. */
    if (size_arg) {
        long v;

        if (akv_parse_long(size_arg, 1, LONG_MAX, &v) == 0) {
            page_size = v;
        }
    }
    if (page_arg && strcmp(page_arg, "last") == 0) {
        last = true;
    } else if (page_arg && akv_parse_long(page_arg, 1, LONG_MAX, &page) < 0) {
        cJSON_Delete(out);
        reply_detail(resp, 404, "Invalid page.");
        return;
    }

    pthread_mutex_lock(&app->store.mu);
    if (!filtered) {
        count = (long)app->store.count;
    } else if (f.identifier) {
        struct token *t = store_find(&app->store, f.identifier);

        count = t && token_matches(t, &f) ? 1 : 0;
    } else {
        for (i = 0; i < (long)app->store.count; i++) {
            count += token_matches(app->store.sorted[i], &f);
        }
    }
    pages = count == 0 ? 1 : (count + page_size - 1) / page_size;
    if (last) {
        page = pages;
    }
    if (page > pages) {
        pthread_mutex_unlock(&app->store.mu);
        cJSON_Delete(out);
        reply_detail(resp, 404, "Invalid page.");
        return;
    }
    cJSON_AddItemToObject(out, "pagination",
                          pagination_json(count, page, page_size, pages));
    results = cJSON_AddArrayToObject(out, "results");
    skip = (page - 1) * page_size;
    if (!filtered) {
        for (i = skip; i < count && i < skip + page_size; i++) {
            cJSON_AddItemToArray(results, token_json(app->store.sorted[i]));
        }
    } else if (f.identifier) {
        if (count == 1) {
            cJSON_AddItemToArray(
                results, token_json(store_find(&app->store, f.identifier)));
        }
    } else {
        long seen = 0;

        for (i = 0; i < (long)app->store.count && seen < skip + page_size;
             i++) {
            const struct token *t = app->store.sorted[i];

            if (!token_matches(t, &f)) {
                continue;
            }
            if (seen >= skip) {
                cJSON_AddItemToArray(results, token_json(t));
            }
            seen++;
        }
    }
    pthread_mutex_unlock(&app->store.mu);
    cJSON_AddObjectToObject(out, "autocomplete");
    reply_json(resp, 200, out);
}

/* ------------------------------------------------------------------------
 * Routing
 */

enum route {
    ROUTE_NONE,
    ROUTE_LIST,
    ROUTE_DETAIL,
    ROUTE_VIEW_KEY,
    ROUTE_SET_KEY,
};

/* Resolves a path the way authentik's DRF router does: lookups match
 * [^/.]+ and every URL ends in a slash. */
static enum route route_api(const char *path, char *ident, size_t identsz)
{
    const char *rest;
    const char *slash;
    size_t len;

    if (strncmp(path, TOKENS_PREFIX, strlen(TOKENS_PREFIX)) != 0) {
        return ROUTE_NONE;
    }
    rest = path + strlen(TOKENS_PREFIX);
    if (*rest == '\0') {
        return ROUTE_LIST;
    }
    slash = strchr(rest, '/');
    if (!slash || slash == rest) {
        return ROUTE_NONE;
    }
    len = (size_t)(slash - rest);
    if (len >= identsz || memchr(rest, '.', len)) {
        return ROUTE_NONE;
    }
    memcpy(ident, rest, len);
    ident[len] = '\0';
    rest = slash + 1;
    if (*rest == '\0') {
        return ROUTE_DETAIL;
    }
    if (strcmp(rest, "view_key/") == 0) {
        return ROUTE_VIEW_KEY;
    }
    if (strcmp(rest, "set_key/") == 0) {
        return ROUTE_SET_KEY;
    }
    return ROUTE_NONE;
}

static const char *route_allow(enum route r)
{
    switch (r) {
    case ROUTE_LIST:
        return "GET, POST, HEAD, OPTIONS";
    case ROUTE_DETAIL:
        return "GET, PUT, PATCH, DELETE, HEAD, OPTIONS";
    case ROUTE_VIEW_KEY:
        return "GET, HEAD, OPTIONS";
    case ROUTE_SET_KEY:
        return "POST, OPTIONS";
    default:
        return "";
    }
}

/* authentik's token authentication: "Bearer <key>" only. Sets the 403 and
 * returns false when the request may not proceed. */
static bool authenticate(struct app *app, const struct fakehttp_request *req,
                         struct fakehttp_response *resp)
{
    const char *h = fakehttp_header(req, "Authorization");
    const char *p;

    if (h) {
        while (*h == ' ') {
            h++;
        }
    }
    if (!h || strncasecmp(h, "bearer", 6) != 0 || (h[6] != ' ' && h[6])) {
        atomic_fetch_add(&app->stats.denied, 1);
        reply_detail(resp, 403,
                     "Authentication credentials were not provided.");
        return false;
    }
    p = h + 6;
    while (*p == ' ') {
        p++;
    }
    if (!*p || !secret_equal(p, app->api_token)) {
        atomic_fetch_add(&app->stats.denied, 1);
        reply_detail(resp, 403, "Token invalid/expired");
        return false;
    }
    return true;
}

static void reply_not_allowed(struct fakehttp_response *resp, enum route r,
                              const char *method)
{
    char msg[96];

    snprintf(msg, sizeof(msg), "Method \"%s\" not allowed.", method);
    reply_detail(resp, 405, msg);
    fakehttp_add_header(resp, "Allow", route_allow(r));
}

static void reply_options(struct fakehttp_response *resp, enum route r)
{
    fakehttp_reply(resp, 200,
                   "{\"name\":\"%s\",\"description\":\"Token Viewset\","
                   "\"renders\":[\"application/json\"],"
                   "\"parses\":[\"application/json\"]}",
                   r == ROUTE_LIST ? "Token List" : "Token Instance");
    fakehttp_add_header(resp, "Allow", route_allow(r));
}

static void reqctx_init(struct reqctx *rc, const struct fakehttp_request *req)
{
    const union MHD_ConnectionInfo *ci;

    memset(rc, 0, sizeof(*rc));
    rc->req = req;
    uuid4_hex(rc->request_id);
    ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;

        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *sin = (const void *)sa;

            rc->have_client_ip =
                inet_ntop(AF_INET, &sin->sin_addr, rc->client_ip,
                          sizeof(rc->client_ip)) != NULL;
        } else if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const void *)sa;

            rc->have_client_ip =
                inet_ntop(AF_INET6, &sin6->sin6_addr, rc->client_ip,
                          sizeof(rc->client_ip)) != NULL;
        }
    }
}

static void handle_api(struct app *app, const struct fakehttp_request *req,
                       struct fakehttp_response *resp)
{
    char ident[1024];
    enum route r = route_api(req->path, ident, sizeof(ident));
    const char *m = req->method;
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    struct reqctx rc;

    if (r == ROUTE_NONE) {
        reply_detail(resp, 404, "Not found.");
        return;
    }
    /* DRF authenticates before it looks at the method. */
    if (!authenticate(app, req, resp)) {
        return;
    }
    if (strcmp(m, "OPTIONS") == 0) {
        reply_options(resp, r);
        return;
    }
    reqctx_init(&rc, req);
    switch (r) {
    case ROUTE_LIST:
        if (get) {
            tokens_list(app, req, resp);
        } else if (strcmp(m, "POST") == 0) {
            tokens_create(app, &rc, resp);
        } else {
            reply_not_allowed(resp, r, m);
        }
        break;
    case ROUTE_DETAIL:
        if (get) {
            tokens_detail(app, ident, resp);
        } else if (strcmp(m, "PATCH") == 0 || strcmp(m, "PUT") == 0) {
            tokens_update(app, &rc, ident, m[1] == 'A', resp);
        } else if (strcmp(m, "DELETE") == 0) {
            tokens_delete(app, &rc, ident, resp);
        } else {
            reply_not_allowed(resp, r, m);
        }
        break;
    case ROUTE_VIEW_KEY:
        if (get) {
            tokens_view_key(app, &rc, ident, resp);
        } else {
            reply_not_allowed(resp, r, m);
        }
        break;
    case ROUTE_SET_KEY:
        if (strcmp(m, "POST") == 0) {
            tokens_set_key(app, &rc, ident, resp);
        } else {
            reply_not_allowed(resp, r, m);
        }
        break;
    default:
        reply_detail(resp, 404, "Not found.");
        break;
    }
}

/* ------------------------------------------------------------------------
 * Fake-only controls
 */

/* Token.expire_action() for API tokens, as authentik's expiry task runs
 * it: outside any request, so no audit-middleware event, only
 * secret_rotate. */
static void fake_rotate(struct app *app, const char *ident,
                        struct fakehttp_response *resp)
{
    struct outmsg msg = {{0}, NULL};
    struct token *t;
    cJSON *out = NULL;
    char *key = new_key();

    if (!key) {
        reply_detail(resp, 500, "out of memory");
        return;
    }
    pthread_mutex_lock(&app->store.mu);
    t = store_find(&app->store, ident);
    if (t) {
        cJSON *ctx = cJSON_CreateObject();
        char message[IDENT_MAX + 64];

        free(t->key);
        t->key = key;
        key = NULL;
        t->has_expires = true;
        t->expires_us = now_us() + DAY_US;
        if (ctx) {
            snprintf(message, sizeof(message), "Token %s's secret was rotated.",
                     t->identifier);
            cJSON_AddItemToObject(ctx, "token", model_dict_json(t));
            cJSON_AddStringToObject(ctx, "message", message);
        }
        event_build("secret_rotate", "authentik.core.models", ctx, NULL, t->pk,
                    &msg);
        out = token_json(t);
    }
    pthread_mutex_unlock(&app->store.mu);
    free(key);
    if (!t) {
        reply_detail(resp, 404, "Not found.");
        return;
    }
    if (!msg.value) {
        cJSON_Delete(out);
        reply_detail(resp, 500, "could not build the event");
        return;
    }
    finish_publish(app, resp, &msg, 1, 200, out);
}

static void fake_delete_silently(struct app *app, const char *ident,
                                 struct fakehttp_response *resp)
{
    struct token *t;

    pthread_mutex_lock(&app->store.mu);
    t = store_find(&app->store, ident);
    if (t) {
        store_remove(&app->store, t);
    }
    pthread_mutex_unlock(&app->store.mu);
    if (!t) {
        reply_detail(resp, 404, "Not found.");
        return;
    }
    token_free(t);
    fakehttp_reply_take(resp, 204, NULL);
}

/* Every live token with its key, for test assertions only. */
static void fake_list_tokens(struct app *app, struct fakehttp_response *resp)
{
    cJSON *out = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(out, "tokens");
    size_t i;

    if (!arr) {
        cJSON_Delete(out);
        reply_detail(resp, 500, "out of memory");
        return;
    }
    pthread_mutex_lock(&app->store.mu);
    for (i = 0; i < app->store.count; i++) {
        const struct token *t = app->store.sorted[i];
        cJSON *o = cJSON_CreateObject();
        char pk[37];

        if (!o) {
            continue;
        }
        uuid_dashed(t->pk, pk);
        cJSON_AddStringToObject(o, "pk", pk);
        cJSON_AddStringToObject(o, "identifier", t->identifier);
        cJSON_AddStringToObject(o, "intent", t->intent);
        cJSON_AddStringToObject(o, "key", t->key);
        cJSON_AddStringToObject(o, "description", t->description);
        add_time_or_null(o, "expires", t->has_expires, t->expires_us);
        cJSON_AddBoolToObject(o, "expiring", t->expiring);
        cJSON_AddItemToArray(arr, o);
    }
    pthread_mutex_unlock(&app->store.mu);
    reply_json(resp, 200, out);
}

static void fake_stats(struct app *app, struct fakehttp_response *resp)
{
    const struct fault_stats *fs = &app->stats.faults;

    fakehttp_reply(
        resp, 200,
        "{\"requests\":%ld,\"detail\":%ld,\"view_key\":%ld,"
        "\"list\":%ld,\"events_published\":%ld,\"denied\":%ld,"
        "\"faults\":{\"errors\":{\"429\":%llu,\"500\":%llu,\"502\":%llu,"
        "\"503\":%llu,\"504\":%llu},\"dropped\":%llu,\"dropped_after\":%llu,"
        "\"truncated\":%llu,\"deny_status\":%llu,\"latency_ms_total\":%llu}}",
        atomic_load(&app->stats.requests), atomic_load(&app->stats.detail),
        atomic_load(&app->stats.view_key), atomic_load(&app->stats.list),
        atomic_load(&app->stats.events_published),
        atomic_load(&app->stats.denied), atomic_load(&fs->common.errors[0]),
        atomic_load(&fs->common.errors[1]), atomic_load(&fs->common.errors[2]),
        atomic_load(&fs->common.errors[3]), atomic_load(&fs->common.errors[4]),
        atomic_load(&fs->common.dropped),
        atomic_load(&fs->common.dropped_after),
        atomic_load(&fs->common.truncated), atomic_load(&fs->deny_status),
        atomic_load(&fs->common.latency_ms_total));
}

static void fake_reset_stats(struct app *app, struct fakehttp_response *resp)
{
    atomic_store(&app->stats.requests, 0);
    atomic_store(&app->stats.detail, 0);
    atomic_store(&app->stats.view_key, 0);
    atomic_store(&app->stats.list, 0);
    atomic_store(&app->stats.events_published, 0);
    atomic_store(&app->stats.denied, 0);
    fakefault_counts_reset(&app->stats.faults.common);
    atomic_store(&app->stats.faults.deny_status, 0);
    fakehttp_reply_take(resp, 204, NULL);
}

static void handle_fake(struct app *app, const struct fakehttp_request *req,
                        struct fakehttp_response *resp)
{
    static const char prefix[] = "/_fake/tokens/";
    const char *p = req->path;
    bool post = strcmp(req->method, "POST") == 0;
    bool get = strcmp(req->method, "GET") == 0;

    if (!fakehttp_from_loopback(req)) {
        reply_detail(resp, 403, "fake controls are loopback only");
        return;
    }
    if (strcmp(p, "/_fake/tokens") == 0 || strcmp(p, "/_fake/tokens/") == 0) {
        if (get) {
            fake_list_tokens(app, resp);
        } else {
            reply_detail(resp, 405, "use GET");
        }
    } else if (strcmp(p, "/_fake/stats") == 0) {
        if (get) {
            fake_stats(app, resp);
        } else {
            reply_detail(resp, 405, "use GET");
        }
    } else if (strcmp(p, "/_fake/faults") == 0) {
        fakefault_control(&app->faults, req, resp);
    } else if (strcmp(p, "/_fake/reset-stats") == 0) {
        if (post) {
            fake_reset_stats(app, resp);
        } else {
            reply_detail(resp, 405, "use POST");
        }
    } else if (strncmp(p, prefix, sizeof(prefix) - 1) == 0) {
        const char *ident = p + sizeof(prefix) - 1;
        const char *slash = strchr(ident, '/');
        char buf[1024];
        size_t len = slash ? (size_t)(slash - ident) : 0;

        if (!slash || len == 0 || len >= sizeof(buf)) {
            reply_detail(resp, 404, "Not found.");
            return;
        }
        memcpy(buf, ident, len);
        buf[len] = '\0';
        if (strcmp(slash, "/rotate") == 0 && post) {
            fake_rotate(app, buf, resp);
        } else if (strcmp(slash, "/delete-silently") == 0 && post) {
            fake_delete_silently(app, buf, resp);
        } else if (strcmp(slash, "/rotate") == 0 ||
                   strcmp(slash, "/delete-silently") == 0) {
            reply_detail(resp, 405, "use POST");
        } else {
            reply_detail(resp, 404, "Not found.");
        }
    } else {
        reply_detail(resp, 404, "Not found.");
    }
}

/* ------------------------------------------------------------------------
 * Fault injection and the request entry point
 */

/*
 * Every kind of injected misbehaviour is decided here and in fakefault.c,
 * so the API handlers stay a faithful authentik. A request takes the plan
 * once and meets it twice: fakefault_inject() before handling (latency,
 * deny_status, error answers, dropped connections, and the draw that marks
 * the answer for spoiling) and fakefault_after() once the operation was
 * performed (dropped or truncated answer).
 */

static int authentik_fault_in_scope(const struct fakefault_plan *fp, void *rctx,
                                    const struct fakehttp_request *req)
{
    char ident[1024];
    enum route r;
    bool get;

    (void)rctx;
    r = route_api(req->path, ident, sizeof(ident));
    get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    switch ((enum fault_scope)fp->scope) {
    case SCOPE_DETAIL:
        return r == ROUTE_DETAIL && get;
    case SCOPE_VIEW_KEY:
        return r == ROUTE_VIEW_KEY;
    case SCOPE_LIST:
        return r == ROUTE_LIST && get;
    default:
        return true;
    }
}

/* deny_status: every /api request, in scope or not. */
static int authentik_fault_gate(const struct fakefault_plan *fp, void *rctx,
                                const struct fakehttp_request *req,
                                struct fakehttp_response *resp)
{
    const struct authentik_faults *ax = fp->ext;
    struct app *app = rctx;

    (void)req;
    if (ax->deny_status == 401) {
        reply_detail(resp, 401, "Invalid token.");
        /* DRF sends the challenge of the authenticator that refused */
        fakehttp_add_header(resp, "WWW-Authenticate", "Bearer");
        atomic_fetch_add(&app->stats.faults.deny_status, 1);
        return 1;
    }
    if (ax->deny_status == 403) {
        reply_detail(resp, 403,
                     "You do not have permission to perform this action.");
        atomic_fetch_add(&app->stats.faults.deny_status, 1);
        return 1;
    }
    return 0;
}

/* An injected error with the body authentik (DRF), or the reverse proxy in
 * front of it for 502/504, sends. */
static void authentik_fault_reply(const struct fakefault_plan *fp, void *rctx,
                                  const struct fakehttp_request *req,
                                  struct fakehttp_response *resp, int code)
{
    (void)rctx;
    (void)req;
    if (code == 429) {
        /* DRF words the wait it also puts in Retry-After */
        long wait = fp->retry_after >= 0 ? fp->retry_after : 1;
        char msg[96];

        snprintf(msg, sizeof(msg),
                 "Request was throttled. Expected available in %ld second%s.",
                 wait, wait == 1 ? "" : "s");
        reply_detail(resp, code, msg);
    } else if (code == 502) {
        fakehttp_reply(resp, code,
                       "<html><body><h1>502 Bad Gateway</h1></body></html>\n");
        resp->content_type = "text/html";
    } else if (code == 504) {
        fakehttp_reply(resp, code,
                       "<html><body><h1>504 Gateway Time-out</h1></body>"
                       "</html>\n");
        resp->content_type = "text/html";
    } else {
        reply_detail(resp, code, "A server error occurred.");
    }
}

/* authentik_fault_keys[idx] (only deny_status), not null. */
static int authentik_fault_key(void *ext, size_t idx, const cJSON *it,
                               const void *ctx, char *err, size_t errsz)
{
    struct authentik_faults *ax = ext;
    long num;

    (void)idx;
    (void)ctx;
    if (fakefault_json_long(it, 401, 403, &num) < 0 || num == 402) {
        snprintf(err, errsz, "deny_status must be 401 or 403");
        return -1;
    }
    ax->deny_status = (int)num;
    return 0;
}

static void authentik_fault_json(cJSON *o, const void *ext, const void *ctx)
{
    const struct authentik_faults *ax = ext;

    (void)ctx;
    if (ax && ax->deny_status) {
        cJSON_AddNumberToObject(o, "deny_status", ax->deny_status);
    } else {
        cJSON_AddNullToObject(o, "deny_status");
    }
}

static const struct fakefault_spec authentik_fault_spec = {
    .codes = fault_codes,
    .ncodes = NFAULT_CODES,
    .scopes = scope_names,
    .nscopes = sizeof(scope_names) / sizeof(scope_names[0]),
    .keys = authentik_fault_keys,
    .nkeys = sizeof(authentik_fault_keys) / sizeof(authentik_fault_keys[0]),
    .ext_size = sizeof(struct authentik_faults),
    .eol = "",
    .oom_body = "{\"detail\":\"out of memory\"}",
    .parse_key = authentik_fault_key,
    .add_json = authentik_fault_json,
    .in_scope = authentik_fault_in_scope,
    .gate = authentik_fault_gate,
    .reply_status = authentik_fault_reply,
};

static void handle(void *opaque, const struct fakehttp_request *req,
                   struct fakehttp_response *resp)
{
    struct app *app = opaque;

    if (strncmp(req->path, "/_fake/", 7) == 0) {
        handle_fake(app, req, resp);
    } else if (strncmp(req->path, "/api/v3/", 8) == 0) {
        struct fakefault_plan *fp = fakefault_acquire(&app->faults);
        enum fakefault_post post = FAKEFAULT_POST_NONE;

        atomic_fetch_add(&app->stats.requests, 1);
        if (!fakefault_inject(fp, app, req, resp, &app->stats.faults.common,
                              &post)) {
            handle_api(app, req, resp);
            fakefault_after(post, resp, &app->stats.faults.common);
        }
        fakefault_release(fp);
    } else {
        reply_detail(resp, 404, "Not found.");
    }
    if (app->verbose) {
        /* Paths carry identifiers only; keys travel in bodies. */
        fprintf(stderr, "fake-authentik: %s %s -> %d\n", req->method, req->path,
                resp->action == FAKEHTTP_DROP ? 0
                : resp->status                ? resp->status
                                              : 500);
    }
}

/* ------------------------------------------------------------------------
 * Command line and main
 */

static void usage(void)
{
    fprintf(stderr,
            "usage: fake-authentik --brokers BOOTSTRAP --topic TOPIC\n"
            "                      [--listen HOST:PORT] [--api-token TOKEN]\n"
            "                      [--page-size N] [--latency-ms N]\n"
            "                      [--faults JSON] [--kafka-properties FILE]\n"
            "                      [--enterprise] [--verbose]\n"
            "  The API token may come from $AUTHENTIK_API_TOKEN instead.\n");
}

static int parse_int_arg(const char *opt, const char *s, int min, int max,
                         int *out)
{
    long v;

    if (akv_parse_long(s, min, max, &v) < 0) {
        fprintf(stderr, "fake-authentik: %s wants %d..%d\n", opt, min, max);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct app *app)
{
    const char *token = NULL;
    const char *env;
    int i;

    app->listen = DEFAULT_LISTEN;
    app->page_size = DEFAULT_PAGE_SIZE;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--enterprise") == 0) {
            app->enterprise = true;
            continue;
        }
        if (strcmp(a, "--verbose") == 0) {
            app->verbose = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return -1;
        }
        if (!v) {
            fprintf(stderr,
                    "fake-authentik: unknown or incomplete option "
                    "%s\n",
                    a);
            usage();
            return -1;
        }
        i++;
        if (strcmp(a, "--listen") == 0) {
            app->listen = v;
        } else if (strcmp(a, "--api-token") == 0) {
            token = v;
        } else if (strcmp(a, "--brokers") == 0) {
            app->brokers = v;
        } else if (strcmp(a, "--topic") == 0) {
            app->topic = v;
        } else if (strcmp(a, "--page-size") == 0) {
            if (parse_int_arg(a, v, 1, 100000, &app->page_size) < 0) {
                return -1;
            }
        } else if (strcmp(a, "--latency-ms") == 0) {
            if (parse_int_arg(a, v, 0, 600000, &app->latency_ms) < 0) {
                return -1;
            }
        } else if (strcmp(a, "--faults") == 0) {
            app->faults_json = v;
        } else if (strcmp(a, "--kafka-properties") == 0) {
            app->kafka_props = v;
        } else {
            fprintf(stderr, "fake-authentik: unknown option %s\n", a);
            usage();
            return -1;
        }
    }
    if (!token) {
        env = getenv("AUTHENTIK_API_TOKEN");
        token = env && *env ? env : NULL;
    }
    if (!token || !*token) {
        fprintf(stderr, "fake-authentik: --api-token or "
                        "$AUTHENTIK_API_TOKEN is required\n");
        return -1;
    }
    if (!app->brokers || !*app->brokers || !app->topic || !*app->topic) {
        fprintf(stderr, "fake-authentik: --brokers and --topic are "
                        "required\n");
        usage();
        return -1;
    }
    app->api_token = strdup(token);
    if (!app->api_token) {
        fprintf(stderr, "fake-authentik: out of memory\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct app app;
    struct fakehttp *srv = NULL;
    char errstr[256];
    int rc = 1;

    /* Before any thread exists, so all inherit the mask. */
    fakehttp_block_signals();
    if (parse_args(argc, argv, &app) < 0) {
        return EXIT_USAGE;
    }
    fakefault_slot_init(&app.faults, &authentik_fault_spec, NULL);
    if (fakefault_initial(&app.faults, app.faults_json, app.latency_ms,
                          "fake-authentik") < 0) {
        free(app.api_token);
        return EXIT_USAGE;
    }
    if (store_init(&app.store) < 0) {
        fprintf(stderr, "fake-authentik: out of memory\n");
        fakefault_slot_destroy(&app.faults);
        free(app.api_token);
        return 1;
    }
    if (kafka_start(&app) < 0) {
        goto out;
    }
    srv = fakehttp_start(app.listen, handle, &app, errstr, sizeof(errstr));
    if (!srv) {
        fprintf(stderr, "fake-authentik: %s\n", errstr);
        goto out;
    }
    fakehttp_announce(fakehttp_address(srv));
    fakehttp_wait_for_signal();
    rc = 0;

out:
    /* HTTP before Kafka: its threads may still wait for delivery reports,
     * which the poller keeps serving until kafka_stop(). */
    if (srv) {
        kafka_drain(&app);
    }
    fakehttp_stop(srv);
    kafka_stop(&app);
    store_destroy(&app.store);
    fakefault_slot_destroy(&app.faults);
    free(app.api_token);
    return rc;
}
