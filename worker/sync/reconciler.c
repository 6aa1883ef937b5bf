/*
 * reconciler — both lists merged into a plan, and the periodic reconcile.
 */
#include "reconciler.h"

#include "authentik.h"
#include "clock.h"
#include "log.h"
#include "matcher.h"
#include "thread.h"
#include "vault.h"

#include <limits.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* --- the plan: both lists ---------------------------------------------- */

/* Identifiers as one of the lists gave them, with each token's flag. */
struct names {
    char **v;
    int *mirrored;
    size_t n;
    size_t cap;
    int nomem;
    const struct akv_settings *s;
};

static void names_add(struct names *l, const char *identifier, int mirrored)
{
    if (!akv_identifier_valid(identifier)) {
        akv_log_warn("reconcile", "'%s' is not a token identifier: left alone",
                     identifier);
        return;
    }
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->v, cap * sizeof(*v));
        int *m = v ? realloc(l->mirrored, cap * sizeof(*m)) : NULL;

        if (v) {
            l->v = v;
        }
        if (!v || !m) {
            l->nomem = 1;
            return;
        }
        l->mirrored = m;
        l->cap = cap;
    }
    l->v[l->n] = strdup(identifier);
    if (!l->v[l->n]) {
        l->nomem = 1;
        return;
    }
    l->mirrored[l->n++] = mirrored;
}

/* A token of authentik's list: mirrored unless its intent is not, or it
 * is one of match.exclude_identifiers. */
static void on_token(void *ctx, const char *identifier, const char *intent)
{
    struct names *l = ctx;

    names_add(l, identifier,
              akv_strlist_contains(&l->s->match_intents, intent) &&
                  !akv_strlist_contains(&l->s->match_exclude_identifiers,
                                        identifier));
}

static void on_secret(void *ctx, const char *key)
{
    names_add(ctx, key, 1);
}

/* Both lists, waiting for each answer. */
static akv_err_t list_both(const struct akv_settings *s, struct names *tokens,
                           struct names *secrets, char *errstr,
                           size_t errstr_size)
{
    struct akv_authentik *ak = akv_authentik_new(s, errstr, errstr_size);
    struct akv_vault *v = ak ? akv_vault_new(s, errstr, errstr_size) : NULL;
    akv_err_t err = AKV_ERR_CONFIG;
    char why[512];

    if (!ak || !v) {
        goto out;
    }
    if (akv_authentik_list_tokens(ak, on_token, tokens, why, sizeof(why)) !=
        AKV_CLASS_OK) {
        err = akv_errf(AKV_ERR_TRANSPORT, errstr, errstr_size,
                       "authentik's token list: %s", why);
        goto out;
    }
    if (akv_vault_login(v, why, sizeof(why)) != AKV_CLASS_OK ||
        akv_vault_list(v, on_secret, secrets, why, sizeof(why)) !=
            AKV_CLASS_OK) {
        err = akv_errf(AKV_ERR_TRANSPORT, errstr, errstr_size,
                       "the secrets under the Vault prefix: %s", why);
        goto out;
    }
    err = tokens->nomem || secrets->nomem
              ? akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory")
              : AKV_OK;

out:
    akv_vault_destroy(v);
    akv_authentik_destroy(ak);
    return err;
}

/* Moves both lists' names into the plan, which frees them from now on. */
static int keep_names(struct akv_reconcile_plan *plan, struct names *a,
                      struct names *b)
{
    size_t i;

    plan->names = calloc(a->n + b->n + 1, sizeof(*plan->names));
    if (!plan->names) {
        return -1;
    }
    for (i = 0; i < a->n; i++) {
        plan->names[plan->nnames++] = a->v[i];
    }
    for (i = 0; i < b->n; i++) {
        plan->names[plan->nnames++] = b->v[i];
    }
    a->n = 0;
    b->n = 0;
    return 0;
}

static void names_free(struct names *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
    free(l->mirrored);
}

akv_err_t akv_reconcile_plan_build(const struct akv_settings *s,
                                   struct akv_reconcile_plan *plan,
                                   char *errstr, size_t errstr_size)
{
    struct names tokens;
    struct names secrets;
    akv_err_t err;

    memset(plan, 0, sizeof(*plan));
    memset(&tokens, 0, sizeof(tokens));
    memset(&secrets, 0, sizeof(secrets));
    tokens.s = s;
    secrets.s = s;
    err = list_both(s, &tokens, &secrets, errstr, errstr_size);
    if (err == AKV_OK) {
        plan->tokens = tokens.n;
        plan->secrets = secrets.n;
        plan->items = calloc(tokens.n + secrets.n + 1, sizeof(*plan->items));
        if (!plan->items ||
            akv_visit_plan((const char **)tokens.v, tokens.mirrored, tokens.n,
                           (const char **)secrets.v, secrets.n, plan->items,
                           &plan->n) < 0 ||
            keep_names(plan, &tokens, &secrets) < 0) {
            akv_reconcile_plan_free(plan);
            err = akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        }
    }
    names_free(&tokens);
    names_free(&secrets);
    return err;
}

void akv_reconcile_plan_free(struct akv_reconcile_plan *plan)
{
    size_t i;

    for (i = 0; i < plan->nnames; i++) {
        free(plan->names[i]);
    }
    free(plan->names);
    free(plan->items);
    memset(plan, 0, sizeof(*plan));
}

/* --- the periodic reconcile -------------------------------------------- */

/* A failed run is tried again this soon (or at the interval if sooner). */
#define RETRY_FAILED_MS 60000LL

/* authentik requests one sync makes: the token's detail and its key. */
#define REQUESTS_PER_SYNC 2.0

/* The lists, read on a helper thread. */
struct listing {
    struct akv_thread th;
    const struct akv_settings *s;
    int wake_fd;
    atomic_int done;
    akv_err_t err;
    char errstr[512];
    struct akv_reconcile_plan plan;
};

enum phase {
    IDLE,    /* waiting for next_ms */
    LISTING, /* the helper thread reads both lists */
    SYNCING, /* handing the engine one request at a time */
};

/* What one run found. */
struct tally {
    size_t visited;
    size_t in_sync;
    size_t drift;
    size_t repaired;
    size_t failed;
};

struct akv_reconciler {
    const struct akv_settings *s;
    struct akv_engine *e;
    struct akv_telemetry *tm;
    int wake_fd;
    int owner;
    enum phase phase;
    uint32_t gen;         /* of the run: older reports are ignored */
    long long next_ms;    /* monotonic: when the next run is due */
    long long started_ms; /* monotonic, of the run */
    long long last_ok_ms; /* monotonic, of the last successful run; 0 */
    struct listing *list; /* while LISTING (or abandoned, until done) */
    struct akv_reconcile_plan plan;
    size_t next;        /* the plan's next item to request */
    int waiting;        /* a request is out */
    double allowance;   /* authentik requests the pace allows now */
    long long paced_ms; /* monotonic, when allowance was last grown */
    struct tally tally;
};

/* Makes the poll loop turn now rather than at its next timeout. */
static void wake(int fd)
{
    char one = 1;

    if (fd >= 0 && write(fd, &one, 1) < 0) {
        /* the pipe is full: the loop is awake anyway */
    }
}

static void *list_main(void *arg)
{
    struct listing *l = arg;

    l->err =
        akv_reconcile_plan_build(l->s, &l->plan, l->errstr, sizeof(l->errstr));
    atomic_store(&l->done, 1);
    wake(l->wake_fd);
    return NULL;
}

static void on_report(void *ctx, const struct akv_sync_report *r);

struct akv_reconciler *akv_reconciler_new(const struct akv_settings *s,
                                          struct akv_engine *e,
                                          struct akv_telemetry *tm, int wake_fd)
{
    struct akv_reconciler *r = calloc(1, sizeof(*r));

    if (!r) {
        return NULL;
    }
    r->s = s;
    r->e = e;
    r->tm = tm;
    r->wake_fd = wake_fd;
    r->next_ms = LLONG_MAX;
    akv_engine_set_reporter(e, on_report, r, 0);
    return r;
}

/* Waits for the helper thread, which has returned or is about to. */
static void join_listing(struct akv_reconciler *r)
{
    akv_thread_stop(&r->list->th);
    akv_reconcile_plan_free(&r->list->plan);
    free(r->list);
    r->list = NULL;
}

void akv_reconciler_destroy(struct akv_reconciler *r)
{
    if (!r) {
        return;
    }
    if (r->list) {
        join_listing(r);
    }
    akv_reconcile_plan_free(&r->plan);
    free(r);
}

/* When the next run is due, from now. */
static long long schedule(const struct akv_reconciler *r, long long now)
{
    long long interval = r->s->reconcile_interval_ms;

    if (r->s->reconcile_on_start && r->last_ok_ms == 0) {
        return now;
    }
    if (interval <= 0) {
        return LLONG_MAX;
    }
    return (r->last_ok_ms ? r->last_ok_ms : now) + interval;
}

static void set_running(struct akv_reconciler *r, int running)
{
    if (r->tm) {
        akv_metric_set(r->tm->reconcile_running, running);
    }
}

void akv_reconciler_own(struct akv_reconciler *r, int owner)
{
    long long now = akv_mono_ms();

    owner = owner != 0;
    if (!r || owner == r->owner) {
        return;
    }
    r->owner = owner;
    if (r->tm) {
        akv_metric_set(r->tm->reconcile_owner, owner);
    }
    if (!owner) {
        if (r->phase != IDLE) {
            akv_log_info("reconcile", "partition 0 revoked: the reconcile "
                                      "in progress is left to its new owner");
        }
        /* A listing still running is joined once it is done. */
        r->phase = IDLE;
        r->gen++;
        r->waiting = 0;
        akv_reconcile_plan_free(&r->plan);
        r->next_ms = LLONG_MAX;
        set_running(r, 0);
        return;
    }
    r->next_ms = schedule(r, now);
    if (r->next_ms == LLONG_MAX) {
        akv_log_info("reconcile", "this replica holds partition 0; periodic "
                                  "reconcile is off (reconcile.interval_ms=0)");
    } else {
        akv_log_info("reconcile",
                     "this replica holds partition 0: it reconciles, the "
                     "next run in %lld s",
                     (r->next_ms - now) / 1000);
    }
}

static void begin(struct akv_reconciler *r, long long now)
{
    struct listing *l = calloc(1, sizeof(*l));

    if (!l) {
        akv_log_warn("reconcile", "out of memory: reconcile postponed");
        r->next_ms = now + RETRY_FAILED_MS;
        return;
    }
    l->s = r->s;
    l->wake_fd = r->wake_fd;
    if (akv_thread_start(&l->th, list_main, l) != 0) {
        akv_log_warn("reconcile", "cannot start a thread: reconcile "
                                  "postponed");
        free(l);
        r->next_ms = now + RETRY_FAILED_MS;
        return;
    }
    r->list = l;
    r->phase = LISTING;
    r->gen++;
    r->started_ms = now;
    memset(&r->tally, 0, sizeof(r->tally));
    set_running(r, 1);
    akv_log_info("reconcile", "reconcile started: listing authentik's "
                              "tokens and the secrets under the prefix");
}

/* The run ended (\p ok: both lists read and every token synced). */
static void end(struct akv_reconciler *r, int ok, long long now)
{
    const struct tally *t = &r->tally;
    double seconds = (double)(now - r->started_ms) / 1000.0;

    r->phase = IDLE;
    akv_reconcile_plan_free(&r->plan);
    set_running(r, 0);
    if (ok) {
        r->last_ok_ms = now;
        r->next_ms = schedule(r, now);
    } else {
        /* Again in a minute, or at the interval if that is sooner; never
         * at once (a backfill that keeps failing must not spin). */
        long long interval = r->s->reconcile_interval_ms;

        r->next_ms = now + (interval > 0 && interval < RETRY_FAILED_MS
                                ? interval
                                : RETRY_FAILED_MS);
    }
    if (r->tm) {
        akv_metric_set(r->tm->reconcile_duration, seconds);
        akv_metric_set(r->tm->reconcile_tokens, (double)t->visited);
        akv_metric_add(
            ok ? r->tm->reconcile_runs_ok : r->tm->reconcile_runs_failed, 1);
        if (ok) {
            akv_metric_set(r->tm->reconcile_last_success,
                           (double)akv_wall_ms() / 1000.0);
        }
    }
    akv_log_info("reconcile",
                 "reconcile %s in %.1f s: visited=%zu in_sync=%zu drift=%zu "
                 "repaired=%zu failed=%zu; next in %lld s",
                 ok ? "finished" : "failed", seconds, t->visited, t->in_sync,
                 t->drift, t->repaired, t->failed,
                 r->next_ms == LLONG_MAX ? -1 : (r->next_ms - now) / 1000);
}

/* The lists are read: keep the plan, or end a failed run. */
static void listed(struct akv_reconciler *r, long long now)
{
    struct listing *l = r->list;

    if (r->phase != LISTING) {
        /* abandoned while listing */
        join_listing(r);
        return;
    }
    if (l->err != AKV_OK) {
        akv_log_warn("reconcile", "cannot list: %s", l->errstr);
        join_listing(r);
        end(r, 0, now);
        return;
    }
    r->plan = l->plan;
    memset(&l->plan, 0, sizeof(l->plan));
    join_listing(r);
    akv_log_info("reconcile",
                 "%zu token(s) in authentik, %zu secret(s) under the "
                 "prefix: %zu identifier(s) to visit",
                 r->plan.tokens, r->plan.secrets, r->plan.n);
    r->phase = SYNCING;
    r->next = 0;
    r->waiting = 0;
    r->allowance = REQUESTS_PER_SYNC;
    r->paced_ms = now;
}

/* Grows the allowance with the time passed, up to one sync's worth. */
static void pace(struct akv_reconciler *r, long long now)
{
    r->allowance += (double)(now - r->paced_ms) *
                    (double)r->s->reconcile_max_requests_per_second / 1000.0;
    if (r->allowance > REQUESTS_PER_SYNC) {
        r->allowance = REQUESTS_PER_SYNC;
    }
    r->paced_ms = now;
}

/* Milliseconds until the pace allows the next sync (at least 1). */
static int pace_wait_ms(const struct akv_reconciler *r)
{
    double per_ms = (double)r->s->reconcile_max_requests_per_second / 1000.0;
    double ms = (REQUESTS_PER_SYNC - r->allowance) / per_ms;

    return ms < 1 ? 1 : ms > 1000 ? 1000 : (int)ms + 1;
}

/* Hands the engine the next identifier to sync, when one may go.
 * @returns milliseconds until the pace allows it, or -1. */
static int request_next(struct akv_reconciler *r, long long now)
{
    pace(r, now);
    while (!r->waiting && r->next < r->plan.n) {
        const struct akv_visit_item *it = &r->plan.items[r->next];

        if (it->visit == AKV_VISIT_EXCLUDED) {
            r->tally.visited++;
            r->next++;
            continue;
        }
        if (r->allowance < REQUESTS_PER_SYNC) {
            return pace_wait_ms(r);
        }
        if (akv_engine_request(r->e, it->identifier,
                               ((uint64_t)r->gen << 32) | r->next) < 0) {
            return -1; /* out of memory: tried again on the next turn */
        }
        r->allowance -= REQUESTS_PER_SYNC;
        r->waiting = 1;
    }
    if (!r->waiting && r->next >= r->plan.n) {
        end(r, r->tally.failed == 0, now);
    }
    return -1;
}

static void count_report(struct akv_reconciler *r,
                         const struct akv_sync_report *rep)
{
    struct tally *t = &r->tally;
    int drifted =
        rep->drift >= AKV_DRIFT_MISSING && rep->drift <= AKV_DRIFT_ORPHAN;
    int repaired =
        rep->ok && drifted &&
        (rep->result == AKV_SYNC_WRITTEN || rep->result == AKV_SYNC_DELETED);

    t->visited++;
    if (!rep->ok) {
        t->failed++;
        akv_log_warn("reconcile", "token=%s: sync gave up: %s", rep->identifier,
                     rep->reason ? rep->reason : "?");
        return;
    }
    if (!drifted) {
        t->in_sync++;
        return;
    }
    t->drift++;
    t->repaired += repaired;
    if (r->tm) {
        akv_metric_add(r->tm->reconcile_drift[rep->drift], 1);
        if (repaired) {
            akv_metric_add(r->tm->reconcile_repaired[rep->drift], 1);
        }
        if (rep->drift == AKV_DRIFT_ORPHAN && rep->result == AKV_SYNC_DELETED) {
            akv_metric_add(r->tm->reconcile_orphans_removed, 1);
        }
    }
    akv_log_info("reconcile", "token=%s drift=%s result=%s version=%lld",
                 rep->identifier, akv_drift_name(rep->drift),
                 akv_sync_result_name(rep->result), rep->version);
}

static void on_report(void *ctx, const struct akv_sync_report *rep)
{
    struct akv_reconciler *r = ctx;

    if (r->phase != SYNCING || (uint32_t)(rep->id >> 32) != r->gen ||
        (size_t)(rep->id & 0xffffffffu) != r->next || !r->waiting) {
        return; /* of an abandoned run */
    }
    count_report(r, rep);
    r->waiting = 0;
    r->next++;
    /* The next request goes out on the loop's next turn: do not let the
     * engine wait for its timeout first. */
    wake(r->wake_fd);
}

int akv_reconciler_tick(struct akv_reconciler *r)
{
    long long now;

    if (!r) {
        return -1;
    }
    now = akv_mono_ms();
    if (r->list && atomic_load(&r->list->done)) {
        listed(r, now);
    }
    switch (r->phase) {
    case IDLE:
        if (r->owner && now >= r->next_ms && !r->list) {
            begin(r, now);
        }
        break;
    case LISTING:
        break;
    case SYNCING:
        return request_next(r, now);
    }
    return -1;
}

int akv_reconciler_busy(const struct akv_reconciler *r)
{
    return r && r->owner && (r->phase != IDLE || akv_mono_ms() >= r->next_ms);
}
