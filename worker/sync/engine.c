/*
 * engine — token syncs as state machines over libcurl multi transfers.
 *
 * A sync reads Vault and authentik (detail and view_key at once), writes
 * with check-and-set, then records provenance, or deletes the secret of a
 * token authentik no longer has. Which request comes next is decided by
 * the state machine of core/syncstep.c from the answer to the last one;
 * this file makes the requests, reads their answers (with the pure
 * parsers of upstream/) and carries the decisions out. Completions arrive
 * through curl_multi_info_read(); nothing here waits for one.
 */
#include "engine.h"

#include "authentik.h"
#include "backoff.h"
#include "cache.h"
#include "clock.h"
#include "drift.h"
#include "json.h"
#include "lanes.h"
#include "log.h"
#include "retry.h"
#include "sync.h"
#include "syncstep.h"
#include "transport.h"
#include "vault.h"
#include "wipe.h"

#include <curl/curl.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define URL_MAX 4096

enum sync_state {
    ST_READY,   /* queued for an in-flight slot */
    ST_RUNNING, /* its requests are out (sync->fsm says which) */
    ST_WAITING, /* failed, or deferred while catching up; its timer runs */
    ST_TOKEN,   /* waiting for a Vault login (the engine's auth) */
};

enum { X_DETAIL, X_KEY, X_VAULT, X_COUNT };

/* The token files are looked at (a stat each) this often. */
#define TOKEN_FILE_CHECK_MS 1000

struct sync;

struct xfer {
    struct sync *sync;
    CURL *curl;
    struct akv_http_xfer x;
    struct akv_http_response resp;
    akv_err_t err;            /* of akv_http_xfer_finish() */
    char *body;               /* request body, wiped when done */
    struct akv_headers *hold; /* its headers, while running */
    int used;                 /* resp holds an answer to look at */
};

struct sync {
    struct akv_engine *e;
    struct akv_lane *lane; /* NULL once abandoned */
    enum sync_state st;
    char identifier[256];
    char event_pk[40]; /* named in logs and provenance */
    char action[64];
    char next_event_pk[40]; /* latest admitted, for the next begin() */
    char next_action[64];
    struct xfer xf[X_COUNT];
    int pending; /* transfers in flight */
    cJSON *detail;
    char *key;
    cJSON *doc;
    uint64_t hash;
    struct akv_cache_entry checked; /* the cache's, when the version
                                       check held */
    cJSON *vault_data; /* what the last Vault read found (NULL: nothing) */
    struct akv_sync_fsm fsm;
    unsigned long token_gen;     /* the Vault token of its last request */
    enum akv_sync_result result; /* how it ended, for the reports */
    enum akv_drift drift;        /* what Vault's copy lacked when read */
    char gave_up[1024];          /* why it gave up, or "" */
    unsigned long epoch; /* the engine's epoch when this attempt began */
    unsigned attempts;
    long long retry_at;   /* monotonic ms */
    int deferred;         /* waiting for later events, not for a retry */
    long long first_fail; /* wall-clock ms */
    long long last_fail;
    struct sync *next;     /* ready queue or waiting list */
    struct sync *all_prev; /* every live sync, for the destructor */
    struct sync *all_next;
};

/*
 * The Vault client's own calls (login, token lookup, renewal) run over
 * the same multi handle as the syncs: one at a time, never waited for.
 * A sync that needs a token waits on the list until the call answers.
 */
struct auth {
    struct xfer xf; /* xf.sync is NULL */
    struct akv_vault_call call;
    enum akv_vault_op op;
    int running;
    struct sync *waiting;  /* ST_TOKEN syncs */
    enum akv_class failed; /* the last login's failure, or AKV_CLASS_OK */
    char error[512];       /* its message */
    long long retry_at;    /* monotonic ms: no new call before */
    long long lookup_at;   /* monotonic ms: the next lookup of a token
                              whose lifetime is unknown (lifetime_unknown) */
    int lookup_due;        /* a new token from the file: learn its TTL */
};

struct akv_engine {
    const struct akv_settings *settings;
    struct akv_telemetry *tm;
    akv_engine_done_fn *done;
    akv_engine_dead_letter_fn *dead_letter;
    akv_engine_report_fn *report; /* requested syncs, or NULL */
    void *report_ctx;
    int dry_run; /* decide, write nothing (reports say what was due) */
    struct akv_retry_policy retry;
    void *ctx;
    CURLM *multi;
    long long files_looked_at;  /* monotonic ms: token files' last stat */
    long long authentik_reread; /* monotonic ms: after its last refusal */
    struct akv_authentik *ak;
    struct akv_vault *vault;
    struct akv_cache *cache;
    /* Counts assignment changes: a sync that began under an older
     * assignment may not vouch for Vault in the cache. */
    unsigned long epoch;
    struct akv_lanes *lanes;
    struct sync *ready_head;
    struct sync *ready_tail;
    struct sync *waiting;
    size_t deferred; /* syncs in waiting that are deferred */
    struct sync *all;
    size_t in_flight;
    size_t busy;
    int draining; /* shutting down: start nothing new */
    struct auth auth;
    CURL **pool; /* idle easy handles */
    size_t npool;
    size_t pool_cap;
    long long last_config_log;
};

/* --- easy handle pool: connections live in the multi handle's cache, the
 * handles themselves are only recycled to save allocations. */

static CURL *handle_get(struct akv_engine *e)
{
    if (e->npool > 0) {
        return e->pool[--e->npool];
    }
    return curl_easy_init();
}

static void handle_put(struct akv_engine *e, CURL *curl)
{
    if (e->npool == e->pool_cap) {
        size_t cap = e->pool_cap ? e->pool_cap * 2 : 16;
        CURL **p = realloc(e->pool, cap * sizeof(*p));

        if (!p) {
            curl_easy_cleanup(curl);
            return;
        }
        e->pool = p;
        e->pool_cap = cap;
    }
    e->pool[e->npool++] = curl;
}

/* --- per-sync data ------------------------------------------------------ */

static void xfer_clear(struct xfer *x)
{
    if (x->used) {
        akv_http_response_free(&x->resp);
        x->used = 0;
    }
    if (x->body) {
        akv_json_free_string(x->body);
        x->body = NULL;
    }
}

/* Drops what was read from authentik and Vault (the key above all). */
static void forget_reads(struct sync *sy)
{
    cJSON_Delete(sy->detail);
    sy->detail = NULL;
    if (sy->key) {
        akv_log_secret_remove(sy->key);
        akv_wipe_free(sy->key);
        sy->key = NULL;
    }
    if (sy->doc) {
        akv_json_wipe(sy->doc);
        cJSON_Delete(sy->doc);
        sy->doc = NULL;
    }
    if (sy->vault_data) {
        akv_json_wipe(sy->vault_data);
        cJSON_Delete(sy->vault_data);
        sy->vault_data = NULL;
    }
}

/*
 * Remembers what Vault holds for the token: only while this worker still
 * owns the token's partition and has owned it since the sync began (no
 * other writer of the group can have written it meanwhile).
 */
static void remember(struct sync *sy)
{
    struct akv_engine *e = sy->e;

    if (sy->lane && sy->epoch == e->epoch) {
        akv_cache_store(e->cache, sy->identifier, sy->hash, sy->fsm.version,
                        akv_mono_ms());
    }
}

/* Whether Vault holds a live version, as this attempt learned it: its
 * data read found one, or its version check held on a live one. */
static int vault_held(const struct sync *sy)
{
    return sy->vault_data != NULL || (sy->fsm.checked && sy->checked.live);
}

/* The same for a token authentik does not have: the secret as it was
 * found, live or not (before the reads are forgotten). */
static void remember_gone(struct sync *sy)
{
    struct akv_engine *e = sy->e;

    if (sy->lane && sy->epoch == e->epoch) {
        akv_cache_store_gone(e->cache, sy->identifier, sy->fsm.version,
                             vault_held(sy), akv_mono_ms());
    }
}

/* Drops what one attempt gathered. */
static void sync_clear(struct sync *sy)
{
    int i;

    for (i = 0; i < X_COUNT; i++) {
        xfer_clear(&sy->xf[i]);
    }
    forget_reads(sy);
}

static void ready_push(struct akv_engine *e, struct sync *sy)
{
    sy->st = ST_READY;
    sy->next = NULL;
    if (e->ready_tail) {
        e->ready_tail->next = sy;
    } else {
        e->ready_head = sy;
    }
    e->ready_tail = sy;
}

/* --- transfers ---------------------------------------------------------- */

/*
 * Starts one request for \p sy. The body (if any) is owned by the transfer
 * from here on. Returns -1 when it could not even start; the caller fails
 * the sync.
 */
static int xfer_start(struct akv_engine *e, struct xfer *x,
                      const struct akv_http *http, const char *method,
                      const char *url, const struct curl_slist *headers,
                      const char *body)
{
    x->curl = handle_get(e);
    if (!x->curl) {
        return -1;
    }
    x->used = 1;
    if (akv_http_xfer_setup(http, x->curl, &x->x, method, url, headers, body,
                            body ? strlen(body) : 0, &x->resp) != AKV_OK) {
        handle_put(e, x->curl);
        x->curl = NULL;
        return -1;
    }
    curl_easy_setopt(x->curl, CURLOPT_PRIVATE, x);
    if (curl_multi_add_handle(e->multi, x->curl) != CURLM_OK) {
        akv_http_xfer_finish(&x->x, CURLE_FAILED_INIT);
        handle_put(e, x->curl);
        x->curl = NULL;
        return -1;
    }
    return 0;
}

/* A transfer ends (answered, failed or abandoned): libcurl lets go of
 * its request. */
static void xfer_end(struct akv_engine *e, struct xfer *x, CURLcode rc)
{
    curl_multi_remove_handle(e->multi, x->curl);
    x->err = akv_http_xfer_finish(&x->x, rc);
    akv_headers_release(x->hold);
    x->hold = NULL;
}

/* Starts a sync's request with \p headers, a reference the transfer
 * keeps until it ends (released here when it cannot start). */
static int issue(struct sync *sy, int which, const struct akv_http *http,
                 const char *method, const char *url,
                 struct akv_headers *headers, char *body)
{
    struct xfer *x = &sy->xf[which];

    xfer_clear(x);
    x->sync = sy;
    x->body = body;
    if (!headers || xfer_start(sy->e, x, http, method, url,
                               akv_headers_list(headers), body) < 0) {
        akv_headers_release(headers);
        return -1;
    }
    x->hold = headers;
    sy->pending++;
    return 0;
}

static void fail(struct sync *sy, enum akv_class cls, const char *errstr,
                 const char *retry_after);
static void finish(struct sync *sy, enum akv_sync_result r, int cached);
static void wait_for_token(struct sync *sy);

/* The waiting events become the sync's: so does the latest one's name. */
static void take_waiting_names(struct sync *sy)
{
    memcpy(sy->event_pk, sy->next_event_pk, sizeof(sy->event_pk));
    memcpy(sy->action, sy->next_action, sizeof(sy->action));
}

static void start_authentik(struct sync *sy)
{
    struct akv_engine *e = sy->e;
    char url[URL_MAX];

    /* This read is newer than every event waiting in the lane (each was
     * published after its change), so it answers for them too: they need
     * no follow-up sync. */
    if (sy->lane && sy->lane->waiting.n > 0 && akv_lanes_merge(sy->lane) == 0) {
        take_waiting_names(sy);
    }
    akv_authentik_url(e->ak, sy->identifier, "", url, sizeof(url));
    if (issue(sy, X_DETAIL, akv_authentik_http(e->ak), "GET", url,
              akv_authentik_headers_hold(e->ak), NULL) < 0) {
        fail(sy, AKV_CLASS_TRANSIENT, "cannot start the authentik request", "");
        return;
    }
    akv_authentik_url(e->ak, sy->identifier, "view_key/", url, sizeof(url));
    if (issue(sy, X_KEY, akv_authentik_http(e->ak), "GET", url,
              akv_authentik_headers_hold(e->ak), NULL) < 0) {
        /* the detail request still completes and finds pending > 0 */
        sy->xf[X_KEY].used = 0;
    }
}

static void vault_request(struct sync *sy, const char *method, const char *kind,
                          char *body)
{
    struct akv_engine *e = sy->e;
    struct akv_headers *h = akv_vault_headers_hold(e->vault);
    char url[URL_MAX];

    if (!h) {
        /* No token yet, or the last login failed: the request is made
         * again once a login answers. */
        if (body) {
            akv_json_free_string(body);
        }
        wait_for_token(sy);
        return;
    }
    sy->token_gen = akv_vault_token_generation(e->vault);
    if (akv_vault_url(e->vault, kind, sy->identifier, url, sizeof(url)) < 0) {
        akv_headers_release(h);
        h = NULL; /* issue() refuses it */
    }
    if (issue(sy, X_VAULT, akv_vault_http(e->vault), method, url, h, body) <
        0) {
        if (body && !sy->xf[X_VAULT].body) {
            akv_json_free_string(body);
        }
        fail(sy, AKV_CLASS_CONFIG, "cannot build the Vault request", "");
        return;
    }
}

static void vault_write(struct sync *sy)
{
    char *body = akv_vault_write_body(sy->doc, sy->fsm.version);

    if (!body) {
        fail(sy, AKV_CLASS_TRANSIENT, "out of memory", "");
        return;
    }
    vault_request(sy, "POST", "data", body);
}

static void vault_metadata(struct sync *sy)
{
    cJSON *meta = akv_sync_provenance(sy->detail, sy->event_pk, sy->action);
    char *body = meta ? akv_vault_metadata_body(meta) : NULL;

    cJSON_Delete(meta);
    if (!body) {
        finish(sy, AKV_SYNC_WRITTEN, 0); /* provenance is best effort */
        return;
    }
    vault_request(sy, "POST", "metadata", body);
}

/* Makes the request the state machine asked for. */
static void make(struct sync *sy, enum akv_step_req req)
{
    switch (req) {
    case AKV_REQ_AUTHENTIK:
        start_authentik(sy);
        break;
    case AKV_REQ_VAULT_READ:
        vault_request(sy, "GET", "data", NULL);
        break;
    case AKV_REQ_VAULT_VERSION:
        vault_request(sy, "GET", "metadata", NULL);
        break;
    case AKV_REQ_VAULT_WRITE:
        vault_write(sy);
        break;
    case AKV_REQ_METADATA:
        vault_metadata(sy);
        break;
    case AKV_REQ_DELETE:
        vault_request(sy, "DELETE", "data", NULL);
        break;
    case AKV_REQ_PURGE:
        vault_request(sy, "DELETE", "metadata", NULL);
        break;
    case AKV_REQ_NONE:
    default:
        fail(sy, AKV_CLASS_TRANSIENT, "no request to make", "");
        break;
    }
}

/* --- outcomes ----------------------------------------------------------- */

/* A request rides in a lane like an event, under a partition no event
 * has; its offset is the request's id. */
#define REQUEST_PARTITION (-1)

static int is_request(const struct akv_lane_event *ev)
{
    return ev->partition == REQUEST_PARTITION;
}

/* Whether the sync answers for a request: then the cache may not vouch. */
static int answers_request(const struct sync *sy)
{
    size_t i;

    for (i = 0; sy->lane && i < sy->lane->covered.n; i++) {
        if (is_request(&sy->lane->covered.v[i])) {
            return 1;
        }
    }
    return 0;
}

static void report(const struct sync *sy, const struct akv_lane_event *ev,
                   const char *reason)
{
    struct akv_engine *e = sy->e;
    struct akv_sync_report r;

    if (!e->report) {
        return;
    }
    r.identifier = sy->identifier;
    r.id = (uint64_t)ev->offset;
    r.ok = reason == NULL;
    r.result = sy->result;
    r.drift = sy->drift;
    r.version = sy->fsm.version;
    r.reason = reason ? reason : "";
    e->report(e->report_ctx, &r);
}

static void on_event_done(void *ctx, const struct akv_lane_event *ev)
{
    struct sync *sy = ctx;

    if (is_request(ev)) {
        report(sy, ev, sy->gave_up[0] ? sy->gave_up : NULL);
    } else {
        sy->e->done(sy->e->ctx, ev->partition, ev->offset);
    }
}

static struct sync *sync_new(struct akv_engine *e)
{
    struct sync *sy = calloc(1, sizeof(*sy));

    if (!sy) {
        return NULL;
    }
    sy->e = e;
    sy->all_next = e->all;
    if (e->all) {
        e->all->all_prev = sy;
    }
    e->all = sy;
    return sy;
}

static void sync_free(struct sync *sy)
{
    struct akv_engine *e = sy->e;
    int i;

    /* Transfers still out (only when the engine is destroyed). */
    for (i = 0; i < X_COUNT; i++) {
        if (sy->xf[i].curl) {
            xfer_end(e, &sy->xf[i], CURLE_ABORTED_BY_CALLBACK);
            curl_easy_cleanup(sy->xf[i].curl);
            sy->xf[i].curl = NULL;
        }
    }
    sync_clear(sy);
    if (sy->all_prev) {
        sy->all_prev->all_next = sy->all_next;
    } else {
        e->all = sy->all_next;
    }
    if (sy->all_next) {
        sy->all_next->all_prev = sy->all_prev;
    }
    free(sy);
}

/* The lane's events are answered; start its follow-up or retire it. */
static void release(struct sync *sy)
{
    struct akv_engine *e = sy->e;

    if (!sy->lane) {
        e->busy--;
        sync_free(sy); /* abandoned on revoke: nothing to report */
        return;
    }
    if (akv_lanes_finish(e->lanes, sy->lane, on_event_done, sy)) {
        take_waiting_names(sy);
        sy->gave_up[0] = '\0';
        sy->attempts = 0;
        sy->first_fail = 0;
        sy->last_fail = 0;
        ready_push(e, sy);
        return;
    }
    e->busy--;
    sync_free(sy); /* the lane was removed by akv_lanes_finish() */
}

static void finish(struct sync *sy, enum akv_sync_result r, int cached)
{
    struct akv_engine *e = sy->e;
    const struct akv_lane_event *first =
        sy->lane && sy->lane->covered.n ? &sy->lane->covered.v[0] : NULL;

    e->in_flight--;
    sy->result = r;
    akv_metric_inc(e->tm->result[r]);
    akv_log_info("sync",
                 "token=%s action=%s result=%s version=%lld partition=%d "
                 "offset=%lld event=%s events=%zu%s",
                 sy->identifier, sy->action, akv_sync_result_name(r),
                 sy->fsm.version, first ? (int)first->partition : -1,
                 first ? (long long)first->offset : -1LL, sy->event_pk,
                 sy->lane ? sy->lane->covered.n : 0, cached ? " cached=1" : "");
    if (sy->attempts) {
        akv_log_info("sync", "token=%s recovered after %u failed attempt(s)",
                     sy->identifier, sy->attempts);
    }
    sync_clear(sy);
    release(sy);
}

/* The retry limit is reached: every event the sync answers for goes to
 * the dead-letter topic; only when all are acknowledged is it done. */
static int dead_letter_all(struct sync *sy, const char *reason)
{
    struct akv_engine *e = sy->e;
    struct akv_engine_failure f;
    size_t i;

    if (!sy->lane) {
        return 0;
    }
    f.reason = reason;
    f.attempts = sy->attempts;
    f.first_ms = sy->first_fail;
    f.last_ms = sy->last_fail;
    for (i = 0; i < sy->lane->covered.n; i++) {
        const struct akv_lane_event *ev = &sy->lane->covered.v[i];

        if (!is_request(ev) &&
            e->dead_letter(e->ctx, sy->identifier, ev->partition, ev->offset,
                           &f) < 0) {
            return -1;
        }
    }
    /* Requests have no record to dead-letter: their reports say why. */
    snprintf(sy->gave_up, sizeof(sy->gave_up), "%s", reason);
    akv_log_warn("dlq",
                 "token=%s: %zu event(s) sent to %s after %u "
                 "attempts: %s",
                 sy->identifier, sy->lane->covered.n, e->settings->dlq_topic,
                 sy->attempts, reason);
    return 0;
}

static void fail(struct sync *sy, enum akv_class cls, const char *errstr,
                 const char *retry_after)
{
    struct akv_engine *e = sy->e;
    const struct akv_settings *s = e->settings;
    struct akv_retry_step step;
    long long delay;
    char reason[1024];
    char text[512];

    /* Whatever the failure text quotes, the key goes before the key itself
     * is forgotten (and with it the log's means to recognise it). */
    akv_log_excerpt(errstr, sy->key, text, sizeof(text));
    errstr = text;
    e->in_flight--;
    akv_cache_forget(e->cache, sy->identifier);
    sync_clear(sy);
    if (!sy->lane) {
        release(sy);
        return;
    }
    sy->attempts++;
    if (!sy->first_fail) {
        sy->first_fail = akv_wall_ms();
    }
    sy->last_fail = akv_wall_ms();
    step = akv_retry_next(
        &e->retry, cls, akv_vault_can_login(e->vault), sy->attempts,
        akv_retry_after_ms(retry_after, time(NULL), s->sync_retry_after_max_ms),
        akv_backoff_random());
    cls = step.cls;
    delay = step.delay_ms;
    if (step.action == AKV_RETRY_GIVE_UP) {
        snprintf(reason, sizeof(reason),
                 "token %s: gave up after %u attempts: %s", sy->identifier,
                 sy->attempts, errstr);
        if (dead_letter_all(sy, reason) == 0) {
            akv_metric_inc(e->tm->gave_up);
            release(sy);
            return;
        }
    }
    akv_metric_inc(e->tm->retries);
    if (cls != AKV_CLASS_CONFIG) {
        akv_log_warn(
            "sync", "token=%s class=%s attempt=%u retry_in_ms=%lld: %s",
            sy->identifier, akv_class_name(cls), sy->attempts, delay, errstr);
    } else if (e->last_config_log == 0 ||
               akv_mono_ms() - e->last_config_log >= s->sync_log_interval_ms) {
        /* Configuration errors hit every token alike: say it once per
         * interval, not once per token. */
        e->last_config_log = akv_mono_ms();
        akv_log_error("sync",
                      "token=%s class=configuration held (attempt %u, "
                      "retrying every %lld ms; nothing after it in its "
                      "partition is committed): %s",
                      sy->identifier, sy->attempts, delay, errstr);
    }
    sy->st = ST_WAITING;
    sy->retry_at = akv_mono_ms() + delay;
    sy->next = e->waiting;
    e->waiting = sy;
}

/* A transfer's class and a message for logs (never its body). */
static enum akv_class authentik_answer(const struct xfer *x, const char *what,
                                       char *errstr, size_t size)
{
    enum akv_class cls =
        x->resp.status == 0
            ? akv_transport_class((int)x->resp.curl_code, x->resp.error)
            : akv_authentik_classify(x->resp.status, 0);

    if (cls != AKV_CLASS_OK) {
        if (x->resp.status == 0) {
            snprintf(errstr, size, "authentik %s: %s", what, x->resp.error);
        } else {
            snprintf(errstr, size, "authentik %s answered HTTP %ld", what,
                     x->resp.status);
        }
    }
    return cls;
}

/* The document the token's detail and key make, and its hash. */
static enum akv_class make_document(struct sync *sy, char *errstr, size_t size)
{
    struct akv_engine *e = sy->e;
    struct xfer *k = &sy->xf[X_KEY];
    struct akv_token tok;
    char *text;

    sy->key = akv_authentik_parse_key(akv_buf_str(&k->resp.body),
                                      k->resp.body.len, errstr, size);
    xfer_clear(k); /* the body held the key */
    if (!sy->key || akv_log_secret_add(sy->key) < 0) {
        if (sy->key) {
            snprintf(errstr, size, "out of memory");
        }
        return AKV_CLASS_TRANSIENT;
    }
    tok.detail = sy->detail;
    tok.key = sy->key;
    sy->doc = akv_sync_document(&tok, &e->settings->vault_extra_fields);
    text = sy->doc ? akv_json_print(sy->doc) : NULL;
    if (!text) {
        snprintf(errstr, size, "out of memory");
        return AKV_CLASS_TRANSIENT;
    }
    sy->hash = akv_cache_hash(e->cache, text, strlen(text));
    akv_json_free_string(text);
    return AKV_CLASS_OK;
}

/*
 * authentik's answers as the state machine takes them: the class, and for
 * a token it has, whether its intent is mirrored, whether the cache
 * vouches for the document it makes and whether Vault holds it.
 */
static void answer_authentik(struct sync *sy, struct akv_answer *a,
                             char *errstr, size_t size, char *retry_after)
{
    struct akv_engine *e = sy->e;
    struct xfer *d = &sy->xf[X_DETAIL];
    struct xfer *k = &sy->xf[X_KEY];
    enum akv_class ck = AKV_CLASS_TRANSIENT;
    char kerr[512] = "cannot start the view_key request";

    a->cls = authentik_answer(d, "detail", errstr, size);
    if (k->used) {
        ck = authentik_answer(k, "view_key", kerr, sizeof(kerr));
    }
    if (a->cls == AKV_CLASS_GONE || ck == AKV_CLASS_GONE) {
        int held = vault_held(sy);

        a->cls = AKV_CLASS_GONE;
        a->vault_empty = !held;
        if (!sy->fsm.deleted) { /* not the check after our own delete */
            sy->drift = held ? AKV_DRIFT_ORPHAN : AKV_DRIFT_NONE;
        }
        return;
    }
    if (a->cls != AKV_CLASS_OK) {
        memcpy(retry_after, d->resp.retry_after, sizeof(d->resp.retry_after));
        return;
    }
    if (ck != AKV_CLASS_OK) {
        a->cls = ck;
        snprintf(errstr, size, "%s", kerr);
        memcpy(retry_after, k->resp.retry_after, sizeof(k->resp.retry_after));
        return;
    }
    sy->detail =
        akv_authentik_parse_detail(akv_buf_str(&d->resp.body), d->resp.body.len,
                                   sy->identifier, errstr, size);
    if (!sy->detail) {
        a->cls = AKV_CLASS_TRANSIENT;
        return;
    }
    if (!akv_strlist_contains(&e->settings->match_intents,
                              akv_json_string(sy->detail, "intent"))) {
        a->filtered = 1;
        sy->drift = AKV_DRIFT_EXCLUDED;
        return;
    }
    a->cls = make_document(sy, errstr, size);
    if (a->cls != AKV_CLASS_OK) {
        return;
    }
    if (sy->fsm.checked) {
        /* After a version check: Vault holds what the cache remembered;
         * how it differs, if it does, takes a read. */
        a->same = sy->checked.has_doc && sy->hash == sy->checked.hash;
    } else if (sy->fsm.confirm) {
        /* After a Vault read: one comparison says both whether Vault
         * holds the document and, if not, how it differs. */
        sy->drift = akv_drift_of(sy->vault_data, sy->doc);
        a->same = sy->drift == AKV_DRIFT_NONE;
    } else {
        /* Before one, only the cache can vouch; never for a request,
         * which asks what Vault holds. */
        a->cached = !answers_request(sy) &&
                    akv_cache_lookup(e->cache, sy->identifier, sy->hash,
                                     akv_mono_ms(), &a->version);
    }
}

/* Vault's answer, or the transport failure, as a class and a message. */
static enum akv_class vault_answer(const struct sync *sy, const char *what,
                                   char *errstr, size_t size)
{
    const struct xfer *x = &sy->xf[X_VAULT];
    char msg[256];

    if (x->resp.status == 0) {
        snprintf(errstr, size, "vault %s: %s", what, x->resp.error);
        return akv_transport_class((int)x->resp.curl_code, x->resp.error);
    }
    /* The key is still known here: Vault's text may quote the write. */
    akv_vault_error_excerpt(akv_buf_str(&x->resp.body), x->resp.body.len,
                            sy->key, msg, sizeof(msg));
    snprintf(errstr, size, "vault %s answered HTTP %ld: %s", what,
             x->resp.status, msg);
    return akv_vault_classify(x->resp.status, akv_buf_str(&x->resp.body), 0);
}

static void answer_vault_read(struct sync *sy, struct akv_answer *a,
                              char *errstr, size_t size)
{
    struct xfer *x = &sy->xf[X_VAULT];
    struct akv_vault_secret cur;

    if (x->resp.status == 0) {
        a->cls = vault_answer(sy, "read", errstr, size);
        return;
    }
    a->cls = akv_vault_parse_read(x->resp.status, akv_buf_str(&x->resp.body),
                                  x->resp.body.len, &cur, errstr, size);
    if (a->cls == AKV_CLASS_OK) {
        a->version = cur.version;
        sy->vault_data = cur.data; /* taken over */
    }
}

/* The secret's metadata: whether its current version is the one the cache
 * remembers, live or not as remembered. */
static void answer_vault_version(struct sync *sy, struct akv_answer *a,
                                 char *errstr, size_t size)
{
    struct akv_engine *e = sy->e;
    struct xfer *x = &sy->xf[X_VAULT];
    int live = 0;

    if (x->resp.status == 0) {
        a->cls = vault_answer(sy, "metadata read", errstr, size);
        return;
    }
    a->cls = akv_vault_parse_metadata(
        x->resp.status, akv_buf_str(&x->resp.body), x->resp.body.len,
        &a->version, &live, errstr, size);
    a->cached = a->cls == AKV_CLASS_OK &&
                akv_cache_known(e->cache, sy->identifier, &sy->checked) &&
                sy->checked.version == a->version && sy->checked.live == live;
}

static void answer_vault_write(struct sync *sy, struct akv_answer *a,
                               char *errstr, size_t size)
{
    struct xfer *x = &sy->xf[X_VAULT];

    a->cls = vault_answer(sy, "write", errstr, size);
    if (a->cls == AKV_CLASS_OK) {
        /* Unconfirmed: maybe written, maybe not. The retry reads Vault
         * first, so it writes again only if the key is not there. */
        a->cls =
            akv_vault_parse_write(akv_buf_str(&x->resp.body), x->resp.body.len,
                                  sy->fsm.version, &a->version, errstr, size);
    } else if (a->cls == AKV_CLASS_SUPERSEDED) {
        snprintf(errstr, size, "check-and-set lost too many times in a row");
    }
}

/* Carries out what the state machine decided. */
static void act(struct sync *sy, struct akv_step step, const char *errstr,
                const char *retry_after)
{
    struct akv_engine *e = sy->e;

    if (step.flags & AKV_STEP_SUPERSEDED) {
        akv_log_debug("sync", "token=%s cas=%lld superseded, re-reading",
                      sy->identifier, sy->fsm.version);
        akv_metric_inc(e->tm->superseded);
    }
    if (step.flags & AKV_STEP_CREATED_AGAIN) {
        akv_log_info("sync",
                     "token=%s created again while its secret was "
                     "being deleted, syncing it",
                     sy->identifier);
    }
    if (step.flags & AKV_STEP_FORGET_CACHE) {
        akv_cache_forget(e->cache, sy->identifier);
    }
    if (step.flags & AKV_STEP_REMEMBER) {
        remember(sy);
    }
    if (step.flags & AKV_STEP_REMEMBER_GONE) {
        remember_gone(sy);
    }
    if (step.flags & AKV_STEP_FORGET_READS) {
        sync_clear(sy);
    }
    switch (step.what) {
    case AKV_DO_REQUEST:
        make(sy, step.req);
        break;
    case AKV_DO_LOGIN:
        if (sy->token_gen != akv_vault_token_generation(e->vault)) {
            make(sy, step.req); /* a login since its request: try that */
        } else {
            akv_log_info("vault",
                         "token=%s: Vault token rejected as "
                         "invalid, logging in again",
                         sy->identifier);
            wait_for_token(sy);
        }
        break;
    case AKV_DO_FINISH:
        finish(sy, step.result, (step.flags & AKV_STEP_CACHED) != 0);
        break;
    case AKV_DO_FAIL:
        fail(sy, step.cls, errstr, retry_after);
        break;
    }
}

/*
 * Where an attempt starts: authentik first when the cache may vouch for
 * the token; for a request, which may not take the cache's word, Vault's
 * metadata first when the cache remembers a version; else Vault's data.
 */
static enum akv_sync_begin where_to_begin(const struct sync *sy)
{
    struct akv_engine *e = sy->e;
    struct akv_cache_entry known;

    if (!answers_request(sy)) {
        return akv_cache_has(e->cache, sy->identifier, akv_mono_ms())
                   ? AKV_BEGIN_CACHE
                   : AKV_BEGIN_VAULT;
    }
    return akv_cache_known(e->cache, sy->identifier, &known) ? AKV_BEGIN_CHECK
                                                             : AKV_BEGIN_VAULT;
}

static void begin(struct sync *sy)
{
    struct akv_engine *e = sy->e;
    const char *policy = e->settings->vault_on_delete;
    struct akv_sync_opts o;

    o.on_delete = strcmp(policy, "keep") == 0    ? AKV_ON_DELETE_KEEP
                  : strcmp(policy, "purge") == 0 ? AKV_ON_DELETE_PURGE
                                                 : AKV_ON_DELETE_SOFT;
    o.can_login = akv_vault_can_login(e->vault);
    o.cas_max = e->settings->sync_cas_max_attempts;
    o.dry_run = e->dry_run;
    sy->epoch = e->epoch;
    sy->st = ST_RUNNING;
    sy->drift = AKV_DRIFT_NONE;
    act(sy, akv_sync_start(&sy->fsm, where_to_begin(sy), &o), "", "");
}

/* A request's answers are in: the state machine takes them. */
static void advance(struct sync *sy)
{
    struct akv_answer a;
    char errstr[512] = "";
    char retry_after[64] = "";
    enum akv_class cls;

    memset(&a, 0, sizeof(a));
    if (sy->fsm.waiting != AKV_REQ_AUTHENTIK) {
        memcpy(retry_after, sy->xf[X_VAULT].resp.retry_after,
               sizeof(retry_after));
    }
    switch (sy->fsm.waiting) {
    case AKV_REQ_AUTHENTIK:
        answer_authentik(sy, &a, errstr, sizeof(errstr), retry_after);
        break;
    case AKV_REQ_VAULT_READ:
        answer_vault_read(sy, &a, errstr, sizeof(errstr));
        break;
    case AKV_REQ_VAULT_VERSION:
        answer_vault_version(sy, &a, errstr, sizeof(errstr));
        break;
    case AKV_REQ_VAULT_WRITE:
        answer_vault_write(sy, &a, errstr, sizeof(errstr));
        break;
    case AKV_REQ_METADATA:
        cls = vault_answer(sy, "metadata", errstr, sizeof(errstr));
        if (cls != AKV_CLASS_OK) {
            akv_log_warn("sync",
                         "token=%s provenance not recorded (%s, HTTP %ld)",
                         sy->identifier, akv_class_name(cls),
                         sy->xf[X_VAULT].resp.status);
        }
        a.cls = cls;
        break;
    case AKV_REQ_DELETE:
    case AKV_REQ_PURGE:
    case AKV_REQ_NONE:
    default:
        a.cls = vault_answer(sy, "delete", errstr, sizeof(errstr));
        break;
    }
    act(sy, akv_sync_step(&sy->fsm, &a), errstr, retry_after);
}

static void auth_done(struct akv_engine *e);

/* authentik refused its token (401) or the token's permissions (403):
 * the token file may hold a new one, even one written within the stamp's
 * resolution. At most once a second, however many syncs were refused. */
static void refused_by_authentik(struct akv_engine *e)
{
    long long now = akv_mono_ms();

    if (e->authentik_reread != 0 &&
        now - e->authentik_reread < TOKEN_FILE_CHECK_MS) {
        return;
    }
    e->authentik_reread = now;
    (void)akv_authentik_reload_token(e->ak, 1);
}

static void xfer_done(struct akv_engine *e, struct xfer *x, CURLcode rc)
{
    struct sync *sy = x->sync;
    curl_off_t us = 0;

    xfer_end(e, x, rc);
    curl_easy_getinfo(x->curl, CURLINFO_TOTAL_TIME_T, &us);
    akv_telemetry_request(e->tm,
                          !sy || x == &sy->xf[X_VAULT] ? AKV_UPSTREAM_VAULT
                                                       : AKV_UPSTREAM_AUTHENTIK,
                          x->resp.status, (double)us / 1e6);
    if (sy && x != &sy->xf[X_VAULT] &&
        (x->resp.status == 401 || x->resp.status == 403)) {
        refused_by_authentik(e);
    }
    handle_put(e, x->curl);
    x->curl = NULL;
    if (!sy) {
        auth_done(e);
        return;
    }
    sy->pending--;
    if (sy->pending == 0) {
        advance(sy);
    }
}

/* --- the Vault token: login, lookup and renewal, never waited for ----- */

/* The syncs waiting for a token make their request now, or fail with the
 * login's class when there is still none. */
static void auth_wake(struct akv_engine *e)
{
    struct sync *list = e->auth.waiting;

    e->auth.waiting = NULL;
    while (list) {
        struct sync *sy = list;

        list = sy->next;
        sy->next = NULL;
        sy->st = ST_RUNNING;
        if (e->auth.failed != AKV_CLASS_OK) {
            fail(sy, e->auth.failed, e->auth.error, "");
        } else {
            make(sy, sy->fsm.waiting);
        }
    }
}

/* The configured token (token method) is used whatever its lookup
 * answered: a failed lookup only leaves its lifetime unknown, and a token
 * whose lifetime is unknown is never renewed. */
static int lifetime_unknown(const struct akv_engine *e)
{
    return isnan(akv_vault_token_lifetime(e->vault));
}

/* Remembers a failed login or lookup of class \p cls, retried no sooner
 * than \p retry_ms from now. */
static void auth_failed(struct akv_engine *e, enum akv_class cls,
                        long long retry_ms)
{
    e->auth.failed = cls;
    e->auth.retry_at = akv_mono_ms() + retry_ms;
    e->auth.lookup_at = akv_mono_ms() + e->settings->sync_config_retry_ms;
}

/* Starts \p op unless a call is out already (its answer serves both). */
static void auth_start(struct akv_engine *e, enum akv_vault_op op)
{
    struct auth *a = &e->auth;
    enum akv_class cls;

    if (a->running) {
        return;
    }
    cls = akv_vault_call_prepare(e->vault, op, &a->call, a->error,
                                 sizeof(a->error));
    if (cls == AKV_CLASS_OK &&
        xfer_start(e, &a->xf, akv_vault_http(e->vault), a->call.method,
                   a->call.url, akv_headers_list(a->call.headers),
                   a->call.body) < 0) {
        akv_vault_call_free(&a->call);
        snprintf(a->error, sizeof(a->error), "cannot start the Vault %s",
                 op == AKV_VAULT_RENEW ? "renewal" : "login");
        cls = AKV_CLASS_TRANSIENT;
    }
    if (cls != AKV_CLASS_OK) {
        akv_log_error("vault", "no usable token (%s): %s", akv_class_name(cls),
                      a->error);
        auth_failed(e, cls, e->settings->sync_retry_initial_ms);
        auth_wake(e);
        return;
    }
    a->op = op;
    a->running = 1;
}

static void auth_done(struct akv_engine *e)
{
    struct auth *a = &e->auth;
    enum akv_vault_op op = a->op;
    enum akv_class cls;

    cls = akv_vault_call_finish(e->vault, op, &a->xf.resp, a->error,
                                sizeof(a->error));
    akv_http_response_free(&a->xf.resp);
    a->xf.used = 0;
    akv_vault_call_free(&a->call);
    a->running = 0;
    if (cls == AKV_CLASS_OK) {
        a->failed = AKV_CLASS_OK;
        auth_wake(e);
        return;
    }
    a->retry_at = akv_mono_ms() + (cls == AKV_CLASS_CONFIG
                                       ? e->settings->sync_config_retry_ms
                                       : e->settings->sync_retry_initial_ms);
    if (op == AKV_VAULT_RENEW) {
        if (cls != AKV_CLASS_TRANSIENT && akv_vault_can_login(e->vault)) {
            akv_log_info("vault", "renewal refused (%s), logging in again",
                         a->error);
            auth_start(e, AKV_VAULT_LOGIN);
            return;
        }
        akv_log_warn("vault", "token renewal failed (%s): %s",
                     akv_class_name(cls), a->error);
        if (!akv_vault_can_login(e->vault)) {
            akv_vault_renew_later(e->vault);
        }
        auth_wake(e); /* the token is still the one there was */
        return;
    }
    auth_failed(e, cls,
                cls == AKV_CLASS_CONFIG ? e->settings->sync_config_retry_ms
                                        : e->settings->sync_retry_initial_ms);
    if (lifetime_unknown(e)) {
        akv_log_error("vault",
                      "token lookup failed (%s): %s; the token is used, but "
                      "not renewed until a lookup tells its lifetime (tried "
                      "again every %lld ms)",
                      akv_class_name(cls), a->error,
                      e->settings->sync_config_retry_ms);
    } else {
        akv_log_error("vault", "no usable token (%s): %s", akv_class_name(cls),
                      a->error);
    }
    auth_wake(e);
}

/* \p sy needs a token: the current one was rejected, or there is none. */
static void wait_for_token(struct sync *sy)
{
    struct akv_engine *e = sy->e;
    struct auth *a = &e->auth;

    if (!a->running && a->failed != AKV_CLASS_OK &&
        akv_mono_ms() < a->retry_at) {
        /* The last login failed a moment ago: no new one yet. */
        fail(sy, a->failed, a->error, "");
        return;
    }
    sy->st = ST_TOKEN;
    sy->next = a->waiting;
    a->waiting = sy;
    auth_start(e, AKV_VAULT_LOGIN);
}

/* --- the engine --------------------------------------------------------- */

struct akv_engine *akv_engine_new(const struct akv_settings *s,
                                  struct akv_telemetry *tm,
                                  akv_engine_done_fn *done,
                                  akv_engine_dead_letter_fn *dead_letter,
                                  void *ctx, char *errstr, size_t errstr_size)
{
    struct akv_engine *e = calloc(1, sizeof(*e));
    if (!e) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    e->settings = s;
    e->tm = tm;
    e->done = done;
    e->dead_letter = dead_letter;
    e->retry.initial_ms = s->sync_retry_initial_ms;
    e->retry.max_ms = s->sync_retry_max_ms;
    e->retry.multiplier = s->sync_retry_multiplier;
    e->retry.max_attempts = s->sync_max_attempts;
    e->retry.config_retry_ms = s->sync_config_retry_ms;
    e->ctx = ctx;
    e->multi = curl_multi_init();
    e->lanes = akv_lanes_new();
    e->cache =
        akv_cache_new((size_t)s->sync_cache_size, s->sync_cache_max_age_ms);
    if (!e->multi || !e->lanes || !e->cache) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto fail;
    }
    /* Keep-alive connections to both upstreams, a few per in-flight
     * sync's worth of requests. */
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS,
                      (long)(s->sync_max_in_flight * 2 + 4));
    e->ak = akv_authentik_new(s, errstr, errstr_size);
    if (!e->ak) {
        goto fail;
    }
    e->vault = akv_vault_new(s, errstr, errstr_size);
    if (!e->vault) {
        goto fail;
    }
    if (s->vault_tls_skip_verify) {
        akv_log_warn("vault", "TLS certificate verification is OFF "
                              "(vault.tls.skip_verify): anyone on the path "
                              "can read the keys written to Vault");
    }
    if (s->authentik_tls_skip_verify) {
        akv_log_warn("authentik", "TLS certificate verification is OFF "
                                  "(authentik.tls.skip_verify)");
    }
    /* The first login (or the configured token's lookup) answers within
     * akv_engine_run(); syncs that need the token wait for it. */
    auth_start(e, AKV_VAULT_LOGIN);
    return e;

fail:
    akv_engine_destroy(e);
    return NULL;
}

void akv_engine_destroy(struct akv_engine *e)
{
    size_t i;

    if (!e) {
        return;
    }
    while (e->all) {
        sync_free(e->all);
    }
    if (e->auth.running) {
        xfer_end(e, &e->auth.xf, CURLE_ABORTED_BY_CALLBACK);
        curl_easy_cleanup(e->auth.xf.curl);
        akv_http_response_free(&e->auth.xf.resp);
        akv_vault_call_free(&e->auth.call);
    }
    akv_lanes_destroy(e->lanes);
    for (i = 0; i < e->npool; i++) {
        curl_easy_cleanup(e->pool[i]);
    }
    free(e->pool);
    if (e->multi) {
        curl_multi_cleanup(e->multi);
    }
    akv_authentik_destroy(e->ak);
    akv_vault_destroy(e->vault);
    akv_cache_destroy(e->cache);
    free(e);
}

/*
 * A token event with many more events after it in its partition: let its
 * sync wait a while, so that the token's later events join it and one
 * authentik read answers for all (start_authentik() merges them). The
 * events stay unfinished, so nothing past them is committed meanwhile.
 */
static void defer(struct akv_engine *e, struct sync *sy)
{
    sy->st = ST_WAITING;
    sy->deferred = 1;
    sy->retry_at = akv_mono_ms() + e->settings->sync_catchup_delay_ms;
    sy->next = e->waiting;
    e->waiting = sy;
    e->deferred++;
}

static void undefer(struct akv_engine *e, struct sync *sy)
{
    if (sy->deferred) {
        sy->deferred = 0;
        e->deferred--;
    }
}

int akv_engine_submit(struct akv_engine *e, const struct akv_engine_event *ev)
{
    struct akv_lane *lane = NULL;
    struct sync *sy;

    switch (akv_lanes_admit(e->lanes, ev->identifier, ev->partition, ev->offset,
                            &lane)) {
    case AKV_LANE_ERROR:
        return -1;
    case AKV_LANE_QUEUED:
        sy = lane->sync;
        break;
    case AKV_LANE_START:
    default:
        sy = sync_new(e);
        if (!sy) {
            akv_lanes_remove(e->lanes, lane);
            return -1;
        }
        sy->lane = lane;
        lane->sync = sy;
        snprintf(sy->identifier, sizeof(sy->identifier), "%s", ev->identifier);
        e->busy++;
        if (ev->behind && e->settings->sync_catchup_delay_ms > 0) {
            defer(e, sy);
        } else {
            ready_push(e, sy);
        }
        break;
    }
    /* Logs and provenance name the latest event the sync answers for: a
     * new lane's sync answers for this one; a busy lane's follow-up (or
     * retry) takes the latest waiting one when it takes them over. */
    if (sy->lane->waiting.n == 0) {
        snprintf(sy->event_pk, sizeof(sy->event_pk), "%s", ev->event_pk);
        snprintf(sy->action, sizeof(sy->action), "%s", ev->action);
    } else {
        snprintf(sy->next_event_pk, sizeof(sy->next_event_pk), "%s",
                 ev->event_pk);
        snprintf(sy->next_action, sizeof(sy->next_action), "%s", ev->action);
    }
    return 0;
}

int akv_engine_request(struct akv_engine *e, const char *identifier,
                       uint64_t id)
{
    struct akv_engine_event ev;

    memset(&ev, 0, sizeof(ev));
    ev.identifier = identifier;
    ev.event_pk = "";
    ev.action = "request";
    ev.partition = REQUEST_PARTITION;
    ev.offset = (int64_t)id;
    return akv_engine_submit(e, &ev);
}

void akv_engine_set_reporter(struct akv_engine *e, akv_engine_report_fn *fn,
                             void *ctx, int dry_run)
{
    e->report = fn;
    e->report_ctx = ctx;
    e->dry_run = dry_run;
}

static void start_ready(struct akv_engine *e)
{
    while (!e->draining && e->ready_head &&
           e->in_flight < (size_t)e->settings->sync_max_in_flight) {
        struct sync *sy = e->ready_head;

        e->ready_head = sy->next;
        if (!e->ready_head) {
            e->ready_tail = NULL;
        }
        sy->next = NULL;
        if (!sy->lane) {
            e->busy--;
            sync_free(sy);
            continue;
        }
        e->in_flight++;
        begin(sy);
    }
}

/* Moves due retries to the ready queue; returns ms until the next. */
static long long fire_timers(struct akv_engine *e, long long max)
{
    long long now = akv_mono_ms();
    long long next = max;
    struct sync **p = &e->waiting;

    while (*p) {
        struct sync *sy = *p;

        if (!sy->lane) {
            *p = sy->next;
            undefer(e, sy);
            e->busy--;
            sync_free(sy);
            continue;
        }
        if (sy->retry_at <= now) {
            *p = sy->next;
            undefer(e, sy);
            /* events that arrived meanwhile join it when it reads
             * authentik (start_authentik()) */
            ready_push(e, sy);
            continue;
        }
        if (sy->retry_at - now < next) {
            next = sy->retry_at - now;
        }
        p = &sy->next;
    }
    return next;
}

static void reap(struct akv_engine *e)
{
    CURLMsg *msg;
    int left;
    int running;

    curl_multi_perform(e->multi, &running);
    while ((msg = curl_multi_info_read(e->multi, &left)) != NULL) {
        struct xfer *x = NULL;

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (x) {
            xfer_done(e, x, msg->data.result);
        }
    }
}

void akv_engine_run(struct akv_engine *e, int wake_fd, int timeout_ms)
{
    struct curl_waitfd wfd;
    long long wait;

    wait = fire_timers(e, timeout_ms);
    start_ready(e);
    reap(e);
    start_ready(e);
    wfd.fd = wake_fd;
    wfd.events = CURL_WAIT_POLLIN;
    wfd.revents = 0;
    curl_multi_poll(e->multi, wake_fd >= 0 ? &wfd : NULL, wake_fd >= 0 ? 1 : 0,
                    (int)wait, NULL);
    reap(e);
    start_ready(e);
}

/* A revoked partition's lane emptied: abandon its sync. */
static void orphan(void *ctx, struct akv_lane *lane)
{
    struct akv_engine *e = ctx;
    struct sync *sy = lane->sync;

    if (sy) {
        /* Running syncs complete and are then freed; queued or waiting
         * ones are freed when their list is next walked. */
        sy->lane = NULL;
    }
    akv_lanes_remove(e->lanes, lane);
}

void akv_engine_drop_partition(struct akv_engine *e, int32_t partition)
{
    akv_lanes_drop_partition(e->lanes, partition, orphan, e);
}

void akv_engine_assignment_changed(struct akv_engine *e)
{
    /* Partitions that left may have been written by their next owner, and
     * partitions that arrived by their last one: nothing remembered can
     * vouch for Vault any more. */
    e->epoch++;
    akv_cache_clear(e->cache);
}

size_t akv_engine_deferred(const struct akv_engine *e)
{
    return e->deferred;
}

void akv_engine_release_deferred(struct akv_engine *e)
{
    struct sync *sy;

    for (sy = e->waiting; sy; sy = sy->next) {
        if (sy->deferred) {
            sy->retry_at = 0; /* the next fire_timers() starts it */
        }
    }
}

size_t akv_engine_busy(const struct akv_engine *e)
{
    return e->busy;
}

size_t akv_engine_in_flight(const struct akv_engine *e)
{
    return e->in_flight;
}

void akv_engine_drain(struct akv_engine *e)
{
    e->draining = 1;
}

/* Token files are read again when they change: a Vault Agent sink or a
 * Kubernetes Secret replaces them under the running worker. */
static int look_at_token_files(struct akv_engine *e, int force)
{
    enum akv_credfile_change ak = akv_authentik_reload_token(e->ak, force);
    enum akv_credfile_change v = akv_vault_reload_token(e->vault, force);

    e->files_looked_at = akv_mono_ms();
    if (v == AKV_CREDFILE_CHANGED) {
        e->auth.lookup_due = 1;
    }
    if (ak == AKV_CREDFILE_NONE && v == AKV_CREDFILE_NONE) {
        return -1;
    }
    return (ak == AKV_CREDFILE_CHANGED) + (v == AKV_CREDFILE_CHANGED);
}

int akv_engine_reload_credentials(struct akv_engine *e)
{
    return look_at_token_files(e, 1);
}

void akv_engine_tick(struct akv_engine *e)
{
    if (akv_mono_ms() - e->files_looked_at >= TOKEN_FILE_CHECK_MS) {
        look_at_token_files(e, 0);
    }
    if (e->auth.running) {
        return;
    }
    if (e->auth.lookup_due) {
        /* A new token: whatever the old one's last failure was, it is
         * looked up now, and the syncs held by that failure retry. */
        e->auth.lookup_due = 0;
        e->auth.failed = AKV_CLASS_OK;
        auth_start(e, AKV_VAULT_LOGIN);
        return;
    }
    if (akv_mono_ms() < e->auth.retry_at) {
        return;
    }
    if (e->auth.failed != AKV_CLASS_OK && lifetime_unknown(e)) {
        /* No sync waits for this lookup (they use the token), but the
         * renewals do: try again at a configuration error's pace. */
        if (akv_mono_ms() >= e->auth.lookup_at) {
            auth_start(e, AKV_VAULT_LOGIN);
        }
        return;
    }
    switch (akv_vault_due(e->vault)) {
    case AKV_LEASE_RENEW:
        auth_start(e, AKV_VAULT_RENEW);
        break;
    case AKV_LEASE_LOGIN:
        auth_start(e, AKV_VAULT_LOGIN);
        break;
    case AKV_LEASE_OK:
        break;
    }
}

double akv_engine_token_ttl(const struct akv_engine *e)
{
    return akv_vault_token_ttl(e->vault);
}

double akv_engine_token_lease(const struct akv_engine *e)
{
    return akv_vault_token_lifetime(e->vault);
}
