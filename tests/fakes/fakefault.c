/*
 * fakefault — the fault plan shared by the HTTP stand-ins: parsing and
 * checking it, answering /_fake/faults, and applying it to requests.
 */
#include "fakefault.h"

#include "backoff.h"
#include "buf.h"
#include "num.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The keys every plan takes; the fake's own follow them, and the index of
 * a key in both lists together is a bit in the duplicate check. */
static const char *const common_keys[] = {
    "latency_ms",      "latency_jitter_ms", "scope",
    "error_rates",     "retry_after",       "drop_rate",
    "drop_after_rate", "truncate_rate",     "seed"};
#define NCOMMON_KEYS (sizeof(common_keys) / sizeof(common_keys[0]))

#define FAULT_MAX_MS (3600L * 1000)
/* The longest message about a bad plan that is built before being cut to
 * the caller's buffer. */
#define MESSAGE_MAX       4096
#define FAULT_MAX_RETRY_S (365L * 86400)

/* ---- the slot ---- */

static void plan_free(struct fakefault_plan *fp)
{
    if (!fp) {
        return;
    }
    if (fp->ext && fp->spec->ext_free) {
        fp->spec->ext_free(fp->ext);
    }
    free(fp->ext);
    free(fp);
}

void fakefault_slot_init(struct fakefault_slot *s,
                         const struct fakefault_spec *spec, const void *ctx)
{
    s->spec = spec;
    s->ctx = ctx;
    pthread_mutex_init(&s->lock, NULL);
    atomic_init(&s->plan, NULL);
}

struct fakefault_plan *fakefault_acquire(struct fakefault_slot *s)
{
    struct fakefault_plan *fp;

    /* no plan, the usual case, costs one atomic load and no lock */
    if (!atomic_load(&s->plan)) {
        return NULL;
    }
    pthread_mutex_lock(&s->lock);
    fp = atomic_load(&s->plan);
    if (fp) {
        atomic_fetch_add(&fp->refs, 1);
    }
    pthread_mutex_unlock(&s->lock);
    return fp;
}

void fakefault_release(struct fakefault_plan *fp)
{
    if (fp && atomic_fetch_sub(&fp->refs, 1) == 1) {
        plan_free(fp);
    }
}

/* Replaces the plan (taking \p fp's reference); NULL clears it. */
static void slot_publish(struct fakefault_slot *s, struct fakefault_plan *fp)
{
    struct fakefault_plan *old;

    pthread_mutex_lock(&s->lock);
    old = atomic_exchange(&s->plan, fp);
    pthread_mutex_unlock(&s->lock);
    fakefault_release(old);
}

void fakefault_slot_destroy(struct fakefault_slot *s)
{
    fakefault_release(atomic_exchange(&s->plan, NULL));
    pthread_mutex_destroy(&s->lock);
}

/* ---- draws and answers ---- */

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Random number \p j of the plan's \p k-th affected request: a pure
 * function of (seed, k, j), so threads share nothing but the counter and a
 * seeded plan replays as long as requests arrive in the same order. */
static uint64_t fault_rand(const struct fakefault_plan *fp, uint64_t k,
                           unsigned j)
{
    return mix64(mix64(fp->seed + k * 0x9e3779b97f4a7c15ULL) +
                 (uint64_t)(j + 1) * 0xd1b54a32d192ed03ULL);
}

/* A uniform double in [0, 1) from the top 53 bits. */
static double unit_interval(uint64_t x)
{
    return (double)(x >> 11) / 9007199254740992.0;
}

static void sleep_ms(long ms)
{
    struct timespec d;

    d.tv_sec = ms / 1000;
    d.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&d, &d) < 0 && errno == EINTR) {
    }
}

/* IMF-fixdate (RFC 9110), spelled out so the locale cannot change it. */
static void fmt_http_date(char *out, size_t size, time_t t)
{
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed",
                                    "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr",
                                       "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;

    gmtime_r(&t, &tm);
    snprintf(out, size, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour,
             tm.tm_min, tm.tm_sec);
}

void fakefault_retry_after(const struct fakefault_plan *fp,
                           struct fakehttp_response *resp)
{
    char v[64];

    if (fp->retry_after < 0) {
        return;
    }
    if (fp->retry_http_date) {
        fmt_http_date(v, sizeof(v), time(NULL) + fp->retry_after);
    } else {
        snprintf(v, sizeof(v), "%ld", fp->retry_after);
    }
    fakehttp_add_header(resp, "Retry-After", v);
}

int fakefault_inject(struct fakefault_plan *fp, void *rctx,
                     const struct fakehttp_request *req,
                     struct fakehttp_response *resp,
                     struct fakefault_counts *counts, enum fakefault_post *post)
{
    const struct fakefault_spec *spec;
    uint64_t k = 0;
    double u;
    double acc = 0;
    size_t i;
    int in_scope;

    if (!fp) {
        return 0;
    }
    spec = fp->spec;
    in_scope = fp->scope == 0 || spec->in_scope(fp, rctx, req);
    if (in_scope) {
        k = atomic_fetch_add(&fp->seq, 1);
    }
    if (in_scope && (fp->latency_ms > 0 || fp->jitter_ms > 0)) {
        long ms = fp->latency_ms;

        if (fp->jitter_ms > 0) {
            ms += (long)(fault_rand(fp, k, 1) % (uint64_t)(fp->jitter_ms + 1));
        }
        /* only a reference on the plan is held: nothing else waits */
        sleep_ms(ms);
        atomic_fetch_add(&counts->latency_ms_total, (unsigned long long)ms);
    }
    if (spec->gate && spec->gate(fp, rctx, req, resp)) {
        return 1;
    }
    if (!in_scope || fp->total <= 0) {
        return 0;
    }
    /* one draw decides between every outcome, so they exclude each other
     * and each status comes up in proportion to its rate */
    u = unit_interval(fault_rand(fp, k, 0));
    for (i = 0; i < spec->ncodes; i++) {
        acc += fp->rates[i];
        if (u < acc) {
            int code = spec->codes[i];

            spec->reply_status(fp, rctx, req, resp, code);
            if (code == 429 || code == 503) {
                fakefault_retry_after(fp, resp);
            }
            atomic_fetch_add(&counts->errors[i], 1);
            return 1;
        }
    }
    acc += fp->drop;
    if (u < acc) {
        resp->action = FAKEHTTP_DROP;
        atomic_fetch_add(&counts->dropped, 1);
        return 1;
    }
    acc += fp->drop_after;
    if (u < acc) {
        *post = FAKEFAULT_POST_DROP;
        return 0;
    }
    acc += fp->truncate;
    if (u < acc) {
        *post = FAKEFAULT_POST_TRUNCATE;
    }
    return 0;
}

void fakefault_after(enum fakefault_post post, struct fakehttp_response *resp,
                     struct fakefault_counts *counts)
{
    if (post == FAKEFAULT_POST_TRUNCATE && resp->body_len >= 2) {
        resp->action = FAKEHTTP_TRUNCATE;
        atomic_fetch_add(&counts->truncated, 1);
    } else if (post != FAKEFAULT_POST_NONE) {
        /* an empty 204 has no half to send: losing it is the nearest
         * thing, and it is counted as what it is */
        resp->action = FAKEHTTP_DROP;
        atomic_fetch_add(&counts->dropped_after, 1);
    }
}

void fakefault_counts_reset(struct fakefault_counts *c)
{
    size_t i;

    for (i = 0; i < FAKEFAULT_MAX_CODES; i++) {
        atomic_store(&c->errors[i], 0);
    }
    atomic_store(&c->dropped, 0);
    atomic_store(&c->dropped_after, 0);
    atomic_store(&c->truncated, 0);
    atomic_store(&c->latency_ms_total, 0);
}

/* ---- the plan as JSON ---- */

int fakefault_json_long(const cJSON *v, long min, long max, long *out)
{
    double d;

    if (!cJSON_IsNumber(v)) {
        return -1;
    }
    d = v->valuedouble;
    /* range first: converting an out-of-range double is undefined */
    if (!(d >= (double)min && d <= (double)max) || d != (double)(long)d) {
        return -1;
    }
    *out = (long)d;
    return 0;
}

int fakefault_key_long(const cJSON *v, long min, long max, long *out, char *err,
                       size_t errsz)
{
    if (fakefault_json_long(v, min, max, out) < 0) {
        snprintf(err, errsz, "%s must be an integer in %ld..%ld", v->string,
                 min, max);
        return -1;
    }
    return 0;
}

static int json_rate(const cJSON *v, double *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0.0) ||
        v->valuedouble > 1.0) {
        return -1;
    }
    *out = v->valuedouble;
    return 0;
}

/* Moves the message built in \p b to \p err (cut to \p errsz). */
static void take_message(struct akv_buf *b, char *err, size_t errsz)
{
    snprintf(err, errsz, "%s", akv_buf_str(b));
    akv_buf_free(b);
}

/* "N" seconds, "http-date:N", or a plain number of seconds. */
static int json_retry_after(const cJSON *v, struct fakefault_plan *fp)
{
    const char *s;

    if (cJSON_IsNumber(v)) {
        return fakefault_json_long(v, 0, FAULT_MAX_RETRY_S, &fp->retry_after);
    }
    if (!cJSON_IsString(v)) {
        return -1;
    }
    s = v->valuestring;
    if (strncmp(s, "http-date:", 10) == 0) {
        fp->retry_http_date = 1;
        s += 10;
    }
    if (*s < '0' || *s > '9') {
        return -1;
    }
    return akv_parse_long(s, 0, FAULT_MAX_RETRY_S, &fp->retry_after);
}

static int json_scope(const cJSON *v, struct fakefault_plan *fp, char *err,
                      size_t errsz)
{
    const struct fakefault_spec *spec = fp->spec;
    struct akv_buf msg = AKV_BUF_INIT(MESSAGE_MAX);
    size_t i;

    for (i = 0; i < spec->nscopes; i++) {
        if (cJSON_IsString(v) && strcmp(v->valuestring, spec->scopes[i]) == 0) {
            fp->scope = (int)i;
            return 0;
        }
    }
    /* scope must be "a", "b" or "c" */
    akv_buf_puts(&msg, "scope must be ");
    for (i = 0; i < spec->nscopes; i++) {
        akv_buf_printf(&msg, "%s\"%s\"",
                       i == 0                   ? ""
                       : i + 1 == spec->nscopes ? " or "
                                                : ", ",
                       spec->scopes[i]);
    }
    take_message(&msg, err, errsz);
    return -1;
}

static int json_error_rates(const cJSON *v, struct fakefault_plan *fp,
                            char *err, size_t errsz)
{
    const struct fakefault_spec *spec = fp->spec;
    const cJSON *it;
    unsigned seen = 0;

    if (!cJSON_IsObject(v)) {
        snprintf(err, errsz, "error_rates must be an object");
        return -1;
    }
    cJSON_ArrayForEach(it, v)
    {
        size_t i;

        for (i = 0; i < spec->ncodes; i++) {
            char code[8];

            snprintf(code, sizeof(code), "%d", spec->codes[i]);
            if (strcmp(it->string, code) == 0) {
                break;
            }
        }
        if (i == spec->ncodes) {
            struct akv_buf msg = AKV_BUF_INIT(MESSAGE_MAX);

            akv_buf_printf(&msg,
                           "error_rates: status \"%.32s\" cannot be injected (",
                           it->string);
            for (i = 0; i < spec->ncodes; i++) {
                akv_buf_printf(&msg, "%s%d", i ? ", " : "", spec->codes[i]);
            }
            akv_buf_puts(&msg, " can)");
            take_message(&msg, err, errsz);
            return -1;
        }
        if (seen & (1u << i)) {
            snprintf(err, errsz, "error_rates: status %d given twice",
                     spec->codes[i]);
            return -1;
        }
        seen |= 1u << i;
        if (json_rate(it, &fp->rates[i]) < 0) {
            snprintf(err, errsz,
                     "error_rates: the rate of %d must be a number in 0..1",
                     spec->codes[i]);
            return -1;
        }
    }
    return 0;
}

/* @returns the index of key \p k among the common keys and then the
 * fake's, or the number of both when it is neither. */
static size_t key_index(const struct fakefault_spec *spec, const char *k)
{
    size_t idx;

    for (idx = 0; idx < NCOMMON_KEYS; idx++) {
        if (strcmp(k, common_keys[idx]) == 0) {
            return idx;
        }
    }
    for (idx = 0; idx < spec->nkeys; idx++) {
        if (strcmp(k, spec->keys[idx]) == 0) {
            break;
        }
    }
    return NCOMMON_KEYS + idx;
}

/* The common key number \p idx, not null. @returns 0 or -1 (\p err set). */
static int parse_common(const cJSON *it, size_t idx, struct fakefault_plan *fp,
                        char *err, size_t errsz)
{
    const char *k = it->string;

    switch (idx) {
    case 0:
        return fakefault_key_long(it, 0, FAULT_MAX_MS, &fp->latency_ms, err,
                                  errsz);
    case 1:
        return fakefault_key_long(it, 0, FAULT_MAX_MS, &fp->jitter_ms, err,
                                  errsz);
    case 2:
        return json_scope(it, fp, err, errsz);
    case 3:
        return json_error_rates(it, fp, err, errsz);
    case 4:
        if (json_retry_after(it, fp) < 0) {
            snprintf(err, errsz,
                     "retry_after must be \"SECONDS\" or "
                     "\"http-date:SECONDS\" (0..%ld)",
                     FAULT_MAX_RETRY_S);
            return -1;
        }
        return 0;
    case 5:
    case 6:
    case 7:
        if (json_rate(it, idx == 5   ? &fp->drop
                          : idx == 6 ? &fp->drop_after
                                     : &fp->truncate) < 0) {
            snprintf(err, errsz, "%s must be a number in 0..1", k);
            return -1;
        }
        return 0;
    default:
        if (!cJSON_IsNumber(it) || it->valuedouble < 0 ||
            it->valuedouble > 9007199254740992.0 ||
            it->valuedouble != (double)(uint64_t)it->valuedouble) {
            snprintf(err, errsz, "seed must be an integer in 0..2^53");
            return -1;
        }
        fp->seed = (uint64_t)it->valuedouble;
        fp->has_seed = 1;
        return 0;
    }
}

/*
 * Builds a plan from its JSON object. \p *out is NULL for a plan without a
 * single key, which is how "no faults" is stored.
 * @returns 0, or -1 with a message in \p err (no input echoed but key names).
 */
static int plan_parse(const struct fakefault_slot *s, const cJSON *root,
                      struct fakefault_plan **out, char *err, size_t errsz)
{
    const struct fakefault_spec *spec = s->spec;
    struct fakefault_plan *fp;
    const cJSON *it;
    unsigned long seen = 0;
    size_t nkeys = 0;
    size_t i;

    *out = NULL;
    if (!cJSON_IsObject(root)) {
        snprintf(err, errsz, "the fault plan must be a JSON object");
        return -1;
    }
    fp = calloc(1, sizeof(*fp));
    if (fp && spec->ext_size > 0) {
        fp->ext = calloc(1, spec->ext_size);
        if (!fp->ext) {
            free(fp);
            fp = NULL;
        }
    }
    if (!fp) {
        snprintf(err, errsz, "out of memory");
        return -1;
    }
    fp->spec = spec;
    atomic_init(&fp->refs, 1);
    atomic_init(&fp->seq, 0);
    fp->retry_after = -1;
    cJSON_ArrayForEach(it, root)
    {
        const char *k = it->string;
        size_t idx = key_index(spec, k);

        if (idx == NCOMMON_KEYS + spec->nkeys) {
            snprintf(err, errsz, "unknown key \"%.64s\"", k);
            goto bad;
        }
        if (seen & (1ul << idx)) {
            snprintf(err, errsz, "key \"%s\" given twice", k);
            goto bad;
        }
        seen |= 1ul << idx;
        nkeys++;
        /* null is the same as leaving the key out */
        if (cJSON_IsNull(it)) {
            continue;
        }
        if (idx < NCOMMON_KEYS ? parse_common(it, idx, fp, err, errsz) < 0
                               : spec->parse_key(fp->ext, idx - NCOMMON_KEYS,
                                                 it, s->ctx, err, errsz) < 0) {
            goto bad;
        }
    }
    fp->total = fp->drop + fp->drop_after + fp->truncate;
    for (i = 0; i < spec->ncodes; i++) {
        fp->total += fp->rates[i];
    }
    if (fp->total > 1.0 + 1e-9) {
        snprintf(err, errsz,
                 "error_rates, drop_rate, drop_after_rate and truncate_rate "
                 "add up to more than 1");
        goto bad;
    }
    if (spec->check && spec->check(fp->ext, s->ctx, err, errsz) < 0) {
        goto bad;
    }
    if (!fp->has_seed) {
        fp->seed = akv_backoff_random();
    }
    if (nkeys == 0) {
        plan_free(fp);
        return 0;
    }
    *out = fp;
    return 0;
bad:
    plan_free(fp);
    return -1;
}

/* The effective plan; \p fp NULL means none. @returns heap JSON or NULL. */
static char *plan_json(const struct fakefault_slot *s,
                       const struct fakefault_plan *fp)
{
    static const struct fakefault_plan none = {.retry_after = -1};
    const struct fakefault_spec *spec = s->spec;
    const struct fakefault_plan *p = fp ? fp : &none;
    cJSON *o = cJSON_CreateObject();
    cJSON *rates;
    char *text;
    char ra[48];
    size_t i;

    if (!o) {
        return NULL;
    }
    cJSON_AddNumberToObject(o, "latency_ms", (double)p->latency_ms);
    cJSON_AddNumberToObject(o, "latency_jitter_ms", (double)p->jitter_ms);
    cJSON_AddStringToObject(o, "scope", spec->scopes[p->scope]);
    rates = cJSON_AddObjectToObject(o, "error_rates");
    for (i = 0; rates && i < spec->ncodes; i++) {
        char code[8];

        if (p->rates[i] > 0) {
            snprintf(code, sizeof(code), "%d", spec->codes[i]);
            cJSON_AddNumberToObject(rates, code, p->rates[i]);
        }
    }
    if (p->retry_after < 0) {
        cJSON_AddNullToObject(o, "retry_after");
    } else {
        snprintf(ra, sizeof(ra), "%s%ld",
                 p->retry_http_date ? "http-date:" : "", p->retry_after);
        cJSON_AddStringToObject(o, "retry_after", ra);
    }
    cJSON_AddNumberToObject(o, "drop_rate", p->drop);
    cJSON_AddNumberToObject(o, "drop_after_rate", p->drop_after);
    cJSON_AddNumberToObject(o, "truncate_rate", p->truncate);
    if (p->has_seed) {
        cJSON_AddNumberToObject(o, "seed", (double)p->seed);
    } else {
        cJSON_AddNullToObject(o, "seed");
    }
    spec->add_json(o, fp ? fp->ext : NULL, s->ctx);
    text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* ---- /_fake/faults and --faults ---- */

/* Answers \p text (heap, taken) followed by the fake's line end. */
static void reply_text(const struct fakefault_spec *spec,
                       struct fakehttp_response *resp, int status, char *text)
{
    if (*spec->eol) {
        fakehttp_reply(resp, status, "%s%s", text, spec->eol);
        free(text);
    } else {
        fakehttp_reply_take(resp, status, text);
    }
}

static void reply_config_error(const struct fakefault_spec *spec,
                               struct fakehttp_response *resp, int status,
                               const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;

    if (o && cJSON_AddStringToObject(o, "error", msg)) {
        text = cJSON_PrintUnformatted(o);
    }
    cJSON_Delete(o);
    if (!text) {
        fakehttp_reply(resp, 500, "%s", spec->oom_body);
        return;
    }
    reply_text(spec, resp, status, text);
}

void fakefault_control(struct fakefault_slot *s,
                       const struct fakehttp_request *req,
                       struct fakehttp_response *resp)
{
    const char *m = req->method;
    struct fakefault_plan *fp = NULL;
    char err[256];
    char *text;

    if (strcmp(m, "POST") == 0) {
        cJSON *root = cJSON_ParseWithLength(req->body, req->body_len);
        int rc;

        if (!root) {
            reply_config_error(s->spec, resp, 400,
                               "the body is not valid JSON");
            return;
        }
        rc = plan_parse(s, root, &fp, err, sizeof(err));
        cJSON_Delete(root);
        if (rc < 0) {
            reply_config_error(s->spec, resp, 400, err);
            return;
        }
        slot_publish(s, fp);
    } else if (strcmp(m, "DELETE") == 0) {
        slot_publish(s, NULL);
    } else if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        reply_config_error(s->spec, resp, 405, "use GET, POST or DELETE");
        fakehttp_add_header(resp, "Allow", "GET, HEAD, POST, DELETE");
        return;
    }
    /* the plan in force now, which a concurrent POST may already have
     * replaced again */
    fp = fakefault_acquire(s);
    text = plan_json(s, fp);
    fakefault_release(fp);
    if (!text) {
        reply_config_error(s->spec, resp, 500, "out of memory");
        return;
    }
    reply_text(s->spec, resp, 200, text);
}

int fakefault_initial(struct fakefault_slot *s, const char *json,
                      long latency_ms, const char *prog)
{
    struct fakefault_plan *fp = NULL;
    cJSON *root;
    char err[256];
    int rc;

    if (!json && latency_ms == 0) {
        return 0;
    }
    root = json ? cJSON_Parse(json) : cJSON_CreateObject();
    if (!root) {
        fprintf(stderr, "%s: --faults is not valid JSON\n", prog);
        return -1;
    }
    if (latency_ms > 0 && cJSON_IsObject(root) &&
        !cJSON_GetObjectItemCaseSensitive(root, "latency_ms")) {
        cJSON_AddNumberToObject(root, "latency_ms", (double)latency_ms);
    }
    rc = plan_parse(s, root, &fp, err, sizeof(err));
    cJSON_Delete(root);
    if (rc < 0) {
        fprintf(stderr, "%s: bad --faults: %s\n", prog, err);
        return -1;
    }
    slot_publish(s, fp);
    return 0;
}
