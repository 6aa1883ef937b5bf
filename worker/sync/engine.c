/*
 * engine — token syncs as state machines over libcurl multi transfers.
 *
 * A sync goes AUTHENTIK (detail and view_key at once) → VAULT_READ →
 * VAULT_WRITE (check-and-set) → METADATA (provenance) → done, or DELETE for
 * a token authentik no longer has. Each state issues its requests and
 * returns; completions arrive through curl_multi_info_read() and advance
 * the machine. The decisions themselves (classification, parsing, the
 * document, check-and-set steps) are the pure functions of authentik.c,
 * vault.c and sync.c, shared with the blocking clients.
 */
#include "engine.h"

#include "authentik.h"
#include "backoff.h"
#include "cache.h"
#include "clock.h"
#include "json.h"
#include "lanes.h"
#include "log.h"
#include "retry.h"
#include "sync.h"
#include "transport.h"
#include "vault.h"
#include "wipe.h"

#include <curl/curl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define URL_MAX 4096

enum sync_state {
    ST_READY, /* queued for an in-flight slot */
    ST_AUTHENTIK,
    ST_VAULT_READ,
    ST_VAULT_WRITE,
    ST_METADATA,
    ST_DELETE,
    ST_WAITING, /* failed, or deferred while catching up; its timer runs */
};

enum { X_DETAIL, X_KEY, X_VAULT, X_COUNT };

struct sync;

struct xfer {
    struct sync *sync;
    CURL *curl;
    struct akv_http_xfer x;
    struct akv_http_response resp;
    akv_err_t err; /* of akv_http_xfer_finish() */
    char *body;    /* request body, wiped when done */
    int used;      /* resp holds an answer to look at */
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
    cJSON *vault_data; /* what the last Vault read found (NULL: nothing) */
    int confirm;       /* authentik is being read after a Vault read */
    int deleted;       /* authentik is being read after a Vault DELETE */
    struct akv_cas cas;
    long long version;
    int reauthed;
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

struct akv_engine {
    const struct akv_settings *settings;
    struct akv_telemetry *tm;
    akv_engine_done_fn *done;
    akv_engine_dead_letter_fn *dead_letter;
    struct akv_retry_policy retry;
    void *ctx;
    CURLM *multi;
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
    CURL **pool;  /* idle easy handles */
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
        akv_cache_store(e->cache, sy->identifier, sy->hash, sy->version,
                        akv_mono_ms());
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
    sy->reauthed = 0;
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
static int issue(struct sync *sy, int which, const struct akv_http *http,
                 const char *method, const char *url,
                 const struct curl_slist *headers, char *body)
{
    struct akv_engine *e = sy->e;
    struct xfer *x = &sy->xf[which];

    xfer_clear(x);
    x->sync = sy;
    x->body = body;
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
    sy->pending++;
    return 0;
}

static void advance(struct sync *sy);
static void fail(struct sync *sy, enum akv_class cls, const char *errstr,
                 const char *retry_after);

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

    sy->st = ST_AUTHENTIK;
    /* This read is newer than every event waiting in the lane (each was
     * published after its change), so it answers for them too: they need
     * no follow-up sync. */
    if (sy->lane && sy->lane->waiting.n > 0 && akv_lanes_merge(sy->lane) == 0) {
        take_waiting_names(sy);
    }
    akv_authentik_url(e->ak, sy->identifier, "", url, sizeof(url));
    if (issue(sy, X_DETAIL, akv_authentik_http(e->ak), "GET", url,
              akv_authentik_headers(e->ak), NULL) < 0) {
        fail(sy, AKV_CLASS_TRANSIENT, "cannot start the authentik request", "");
        return;
    }
    akv_authentik_url(e->ak, sy->identifier, "view_key/", url, sizeof(url));
    if (issue(sy, X_KEY, akv_authentik_http(e->ak), "GET", url,
              akv_authentik_headers(e->ak), NULL) < 0) {
        /* the detail request still completes and finds pending > 0 */
        sy->xf[X_KEY].used = 0;
    }
}

static void vault_request(struct sync *sy, enum sync_state st,
                          const char *method, const char *kind, char *body)
{
    struct akv_engine *e = sy->e;
    char url[URL_MAX];

    sy->st = st;
    if (akv_vault_url(e->vault, kind, sy->identifier, url, sizeof(url)) < 0 ||
        !akv_vault_headers(e->vault) ||
        issue(sy, X_VAULT, akv_vault_http(e->vault), method, url,
              akv_vault_headers(e->vault), body) < 0) {
        if (body && !sy->xf[X_VAULT].body) {
            akv_json_free_string(body);
        }
        fail(sy,
             akv_vault_headers(e->vault) ? AKV_CLASS_CONFIG
                                         : AKV_CLASS_TRANSIENT,
             akv_vault_headers(e->vault) ? "cannot build the Vault request"
                                         : "no Vault token yet",
             "");
    }
}

static void vault_read(struct sync *sy)
{
    vault_request(sy, ST_VAULT_READ, "GET", "data", NULL);
}

static void vault_write(struct sync *sy)
{
    char *body = akv_vault_write_body(sy->doc, sy->version);

    if (!body) {
        fail(sy, AKV_CLASS_TRANSIENT, "out of memory", "");
        return;
    }
    vault_request(sy, ST_VAULT_WRITE, "POST", "data", body);
}

/* --- outcomes ----------------------------------------------------------- */

static void on_event_done(void *ctx, const struct akv_lane_event *ev)
{
    struct akv_engine *e = ctx;

    e->done(e->ctx, ev->partition, ev->offset);
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
            curl_multi_remove_handle(e->multi, sy->xf[i].curl);
            akv_http_xfer_finish(&sy->xf[i].x, CURLE_ABORTED_BY_CALLBACK);
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
    if (akv_lanes_finish(e->lanes, sy->lane, on_event_done, e)) {
        take_waiting_names(sy);
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
    akv_metric_inc(e->tm->result[r]);
    akv_log_info("sync",
                 "token=%s action=%s result=%s version=%lld partition=%d "
                 "offset=%lld event=%s events=%zu%s",
                 sy->identifier, sy->action, akv_sync_result_name(r),
                 sy->version, first ? (int)first->partition : -1,
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

        if (e->dead_letter(e->ctx, sy->identifier, ev->partition, ev->offset,
                           &f) < 0) {
            return -1;
        }
    }
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

/* authentik answered 404: per vault.on_delete. */
static void gone(struct sync *sy)
{
    struct akv_engine *e = sy->e;
    const char *policy = e->settings->vault_on_delete;

    akv_cache_forget(e->cache, sy->identifier);
    if (strcmp(policy, "keep") == 0) {
        finish(sy, AKV_SYNC_GONE, 0);
        return;
    }
    vault_request(sy, ST_DELETE, "DELETE",
                  strcmp(policy, "purge") == 0 ? "metadata" : "data", NULL);
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

static void after_authentik(struct sync *sy)
{
    struct akv_engine *e = sy->e;
    struct xfer *d = &sy->xf[X_DETAIL];
    struct xfer *k = &sy->xf[X_KEY];
    enum akv_class cd;
    enum akv_class ck = AKV_CLASS_TRANSIENT;
    const char *intent;
    char *text;
    char errstr[512] = "";
    char kerr[512] = "";

    cd = authentik_answer(d, "detail", errstr, sizeof(errstr));
    if (k->used) {
        ck = authentik_answer(k, "view_key", kerr, sizeof(kerr));
    } else {
        snprintf(kerr, sizeof(kerr), "cannot start the view_key request");
    }
    if (cd == AKV_CLASS_GONE || ck == AKV_CLASS_GONE) {
        if (sy->deleted) {
            finish(sy, AKV_SYNC_DELETED, 0);
            return;
        }
        sync_clear(sy);
        gone(sy);
        return;
    }
    if (cd != AKV_CLASS_OK) {
        fail(sy, cd, errstr, d->resp.retry_after);
        return;
    }
    if (ck != AKV_CLASS_OK) {
        fail(sy, ck, kerr, k->resp.retry_after);
        return;
    }
    sy->detail =
        akv_authentik_parse_detail(akv_buf_str(&d->resp.body), d->resp.body.len,
                                   sy->identifier, errstr, sizeof(errstr));
    if (!sy->detail) {
        fail(sy, AKV_CLASS_TRANSIENT, errstr, "");
        return;
    }
    if (sy->deleted) {
        /* Back under the same identifier since the 404: sync it anew
         * (Vault read first), over the version just deleted. */
        akv_log_info("sync",
                     "token=%s created again while its secret was "
                     "being deleted, syncing it",
                     sy->identifier);
        sy->deleted = 0;
        sy->confirm = 0;
        xfer_clear(k); /* its body holds the key */
        forget_reads(sy);
        vault_read(sy);
        return;
    }
    intent = akv_json_string(sy->detail, "intent");
    if (!akv_strlist_contains(&e->settings->match_intents, intent)) {
        finish(sy, AKV_SYNC_FILTERED, 0);
        return;
    }
    sy->key = akv_authentik_parse_key(akv_buf_str(&k->resp.body),
                                      k->resp.body.len, errstr, sizeof(errstr));
    xfer_clear(k); /* the body held the key */
    if (!sy->key || akv_log_secret_add(sy->key) < 0) {
        fail(sy, AKV_CLASS_TRANSIENT, sy->key ? "out of memory" : errstr, "");
        return;
    }
    {
        struct akv_token tok = {sy->detail, sy->key};

        sy->doc = akv_sync_document(&tok, &e->settings->vault_extra_fields);
    }
    text = sy->doc ? akv_json_print(sy->doc) : NULL;
    if (!text) {
        fail(sy, AKV_CLASS_TRANSIENT, "out of memory", "");
        return;
    }
    sy->hash = akv_cache_hash(e->cache, text, strlen(text));
    akv_json_free_string(text);
    if (!sy->confirm) {
        if (akv_cache_lookup(e->cache, sy->identifier, sy->hash, akv_mono_ms(),
                             &sy->version)) {
            finish(sy, AKV_SYNC_UNCHANGED, 1);
            return;
        }
        /* Changed since we last wrote: read Vault, then authentik again
         * (see begin()). */
        forget_reads(sy);
        vault_read(sy);
        return;
    }
    if (akv_cas_after_read(sy->vault_data &&
                           cJSON_Compare(sy->vault_data, sy->doc, 1)) ==
        AKV_CAS_UNCHANGED) {
        remember(sy);
        finish(sy, AKV_SYNC_UNCHANGED, 0);
        return;
    }
    vault_write(sy);
}

/*
 * Where a sync starts. A write must be based on an authentik read made
 * AFTER the Vault read it checks-and-sets against: whoever wrote the
 * version we read had read authentik before writing it, so our key is at
 * least as new, and a concurrent writer (another worker, a rebalance)
 * can never make us put an older key back. So a write goes Vault read,
 * then authentik, then CAS write. A token this worker has written before
 * is first checked against the cache, which needs authentik's answer
 * only: a redelivery of an unchanged token costs no Vault request.
 */
static void begin(struct sync *sy)
{
    struct akv_engine *e = sy->e;

    sy->confirm = 0;
    sy->deleted = 0;
    sy->epoch = e->epoch;
    sy->cas.rounds = 0;
    sy->cas.max_rounds = e->settings->sync_cas_max_attempts;
    if (akv_cache_has(e->cache, sy->identifier, akv_mono_ms())) {
        start_authentik(sy);
    } else {
        vault_read(sy);
    }
}

/* Vault said "invalid token": log in again (blocking, rare) and repeat
 * the step once. */
static int reauth(struct sync *sy)
{
    struct akv_engine *e = sy->e;
    char errstr[512];

    if (sy->reauthed || !akv_vault_can_login(e->vault)) {
        return -1;
    }
    sy->reauthed = 1;
    akv_log_info("vault", "token rejected as invalid, logging in again");
    return akv_vault_login(e->vault, errstr, sizeof(errstr)) == AKV_CLASS_OK
               ? 0
               : -1;
}

static void vault_failed(struct sync *sy, enum akv_class cls,
                         const struct xfer *x, const char *what)
{
    char errstr[512];
    char msg[256];

    if (x->resp.status == 0) {
        snprintf(errstr, sizeof(errstr), "vault %s: %s", what, x->resp.error);
    } else {
        /* The key is still known here: Vault's text may quote the write. */
        akv_vault_error_excerpt(akv_buf_str(&x->resp.body), x->resp.body.len,
                                sy->key, msg, sizeof(msg));
        snprintf(errstr, sizeof(errstr), "vault %s answered HTTP %ld: %s", what,
                 x->resp.status, msg);
    }
    fail(sy, cls, errstr, x->resp.retry_after);
}

/* Vault's answer, or the transport failure, as a class. */
static enum akv_class vault_class(const struct xfer *x)
{
    if (x->resp.status == 0) {
        return akv_transport_class((int)x->resp.curl_code, x->resp.error);
    }
    return akv_vault_classify(x->resp.status, akv_buf_str(&x->resp.body), 0);
}

static void after_vault_read(struct sync *sy)
{
    struct xfer *x = &sy->xf[X_VAULT];
    struct akv_vault_secret cur;
    enum akv_class cls;
    char errstr[512];

    if (x->resp.status == 0) {
        vault_failed(sy,
                     akv_transport_class((int)x->resp.curl_code, x->resp.error),
                     x, "read");
        return;
    }
    cls = akv_vault_parse_read(x->resp.status, akv_buf_str(&x->resp.body),
                               x->resp.body.len, &cur, errstr, sizeof(errstr));
    if (cls == AKV_CLASS_REAUTH && reauth(sy) == 0) {
        vault_read(sy);
        return;
    }
    if (cls != AKV_CLASS_OK) {
        fail(sy, cls, errstr, x->resp.retry_after);
        return;
    }
    sy->version = cur.version;
    sy->vault_data = cur.data; /* taken over */
    sy->confirm = 1;
    start_authentik(sy);
}

static void after_vault_write(struct sync *sy)
{
    struct akv_engine *e = sy->e;
    struct xfer *x = &sy->xf[X_VAULT];
    enum akv_class cls = vault_class(x);
    enum akv_class fail_cls = AKV_CLASS_TRANSIENT;
    long long version;
    char errstr[256];
    cJSON *meta;
    char *body;

    if (cls == AKV_CLASS_REAUTH && reauth(sy) == 0) {
        vault_write(sy);
        return;
    }
    switch (akv_cas_after_write(&sy->cas, cls, &fail_cls)) {
    case AKV_CAS_WRITTEN:
        if (akv_vault_parse_write(akv_buf_str(&x->resp.body), x->resp.body.len,
                                  sy->version, &version, errstr,
                                  sizeof(errstr)) != AKV_CLASS_OK) {
            /* Unconfirmed: maybe written, maybe not. The retry reads Vault
             * first, so it writes again only if the key is not there. */
            fail(sy, AKV_CLASS_TRANSIENT, errstr, "");
            return;
        }
        sy->version = version;
        remember(sy);
        meta = akv_sync_provenance(sy->detail, sy->event_pk, sy->action);
        body = meta ? akv_vault_metadata_body(meta) : NULL;
        cJSON_Delete(meta);
        if (!body) {
            finish(sy, AKV_SYNC_WRITTEN, 0);
            return;
        }
        vault_request(sy, ST_METADATA, "POST", "metadata", body);
        return;
    case AKV_CAS_READ:
        /* Someone wrote in between: read Vault and authentik again. */
        akv_log_debug("sync", "token=%s cas=%lld superseded, re-reading",
                      sy->identifier, sy->version);
        akv_metric_inc(e->tm->superseded);
        akv_cache_forget(e->cache, sy->identifier);
        forget_reads(sy);
        sy->confirm = 0;
        vault_read(sy);
        return;
    default:
        if (cls == AKV_CLASS_SUPERSEDED) {
            fail(sy, fail_cls, "check-and-set lost too many times in a row",
                 "");
            return;
        }
        vault_failed(sy, fail_cls, x, "write");
        return;
    }
}

static void after_metadata(struct sync *sy)
{
    struct xfer *x = &sy->xf[X_VAULT];
    enum akv_class cls = vault_class(x);

    /* Provenance is best effort: the secret itself is written. */
    if (cls != AKV_CLASS_OK) {
        akv_log_warn("sync", "token=%s provenance not recorded (%s, HTTP %ld)",
                     sy->identifier, akv_class_name(cls), x->resp.status);
    }
    finish(sy, AKV_SYNC_WRITTEN, 0);
}

static void after_delete(struct sync *sy)
{
    struct xfer *x = &sy->xf[X_VAULT];
    enum akv_class cls = vault_class(x);

    if (cls == AKV_CLASS_REAUTH && reauth(sy) == 0) {
        gone(sy);
        return;
    }
    if (cls != AKV_CLASS_OK) {
        vault_failed(sy, cls, x, "delete");
        return;
    }
    /* A DELETE carries no check-and-set. If the identifier was created
     * again after authentik's 404, another replica (its events have a new
     * pk, so maybe another partition) may have written it before this
     * DELETE landed: ask authentik once more before calling it deleted. */
    sy->version = 0;
    sy->deleted = 1;
    start_authentik(sy);
}

static void advance(struct sync *sy)
{
    switch (sy->st) {
    case ST_AUTHENTIK:
        after_authentik(sy);
        break;
    case ST_VAULT_READ:
        after_vault_read(sy);
        break;
    case ST_VAULT_WRITE:
        after_vault_write(sy);
        break;
    case ST_METADATA:
        after_metadata(sy);
        break;
    case ST_DELETE:
        after_delete(sy);
        break;
    case ST_READY:
    case ST_WAITING:
        break;
    }
}

static void xfer_done(struct akv_engine *e, struct xfer *x, CURLcode rc)
{
    struct sync *sy = x->sync;
    curl_off_t us = 0;

    curl_multi_remove_handle(e->multi, x->curl);
    x->err = akv_http_xfer_finish(&x->x, rc);
    curl_easy_getinfo(x->curl, CURLINFO_TOTAL_TIME_T, &us);
    akv_telemetry_request(e->tm,
                          x == &sy->xf[X_VAULT] ? AKV_UPSTREAM_VAULT
                                                : AKV_UPSTREAM_AUTHENTIK,
                          x->resp.status, (double)us / 1e6);
    handle_put(e, x->curl);
    x->curl = NULL;
    sy->pending--;
    if (sy->pending == 0) {
        advance(sy);
    }
}

/* The Vault client's own requests (login, lookup, renewal) count too. */
static void on_vault_call(void *ctx, long status, double seconds)
{
    struct akv_engine *e = ctx;

    akv_telemetry_request(e->tm, AKV_UPSTREAM_VAULT, status, seconds);
}

/* --- the engine --------------------------------------------------------- */

struct akv_engine *akv_engine_new(const struct akv_settings *s,
                                  struct akv_telemetry *tm,
                                  akv_engine_done_fn *done,
                                  akv_engine_dead_letter_fn *dead_letter,
                                  void *ctx, char *errstr, size_t errstr_size)
{
    struct akv_engine *e = calloc(1, sizeof(*e));
    char lerr[512];
    enum akv_class cls;

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
    akv_vault_set_observer(e->vault, on_vault_call, e);
    if (s->vault_tls_skip_verify) {
        akv_log_warn("vault", "TLS certificate verification is OFF "
                              "(vault.tls.skip_verify): anyone on the path "
                              "can read the keys written to Vault");
    }
    if (s->authentik_tls_skip_verify) {
        akv_log_warn("authentik", "TLS certificate verification is OFF "
                                  "(authentik.tls.skip_verify)");
    }
    cls = akv_vault_login(e->vault, lerr, sizeof(lerr));
    if (cls != AKV_CLASS_OK) {
        akv_log_error("vault", "no usable token yet (%s): %s",
                      akv_class_name(cls), lerr);
    }
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

void akv_engine_tick(struct akv_engine *e)
{
    char errstr[512];
    enum akv_class cls = akv_vault_tick(e->vault, errstr, sizeof(errstr));

    if (cls != AKV_CLASS_OK) {
        akv_log_warn("vault", "token upkeep failed (%s): %s",
                     akv_class_name(cls), errstr);
    }
}

double akv_engine_token_ttl(const struct akv_engine *e)
{
    return akv_vault_token_ttl(e->vault);
}
