/*
 * tokens — the token API's handlers: create, update, delete, detail,
 * view_key, set_key and the paginated, filtered list. Every change is
 * answered only once Kafka acknowledged its event.
 */
#include "fa.h"

#include "clock.h"
#include "json.h"
#include "num.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_OUTMSGS 2

/* Django's icontains for ASCII: \p needle in \p hay, ignoring case. */
bool fa_ci_contains(const char *hay, const char *needle)
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

/* DRF's 400 with the field errors \p errs (taken). */
void fa_reply_errors(struct fakehttp_response *resp, cJSON *errs)
{
    fa_reply_json(resp, 400, errs);
}

/* With the drop_events fault, frees the \p n events unpublished.
 * @returns whether it did. */
static bool events_dropped(struct app *app, struct outmsg *msgs, int n)
{
    struct fakefault_plan *fp = fakefault_acquire(&app->faults);
    const struct authentik_faults *ax = fp ? fp->ext : NULL;
    bool drop = ax && ax->drop_events;
    int i;

    fakefault_release(fp);
    for (i = 0; drop && i < n; i++) {
        free(msgs[i].value);
        msgs[i].value = NULL;
        atomic_fetch_add(&app->stats.events_dropped, 1);
    }
    return drop;
}

/*
 * Answers an operation on a token once its \p n events are in Kafka: 404
 * when there was no such token (\p found false), 500 when an event could
 * not be built or published, else \p status with \p body (taken; NULL: no
 * body). The events are freed either way.
 */
void fa_finish_publish(struct app *app, struct fakehttp_response *resp,
                       bool found, struct outmsg *msgs, int n, int status,
                       cJSON *body)
{
    const char *fail = found ? NULL : "Not found.";
    int i;

    for (i = 0; i < n && !fail; i++) {
        if (!msgs[i].value) {
            fail = "could not build the event";
        }
    }
    if (fail) {
        for (i = 0; i < n; i++) {
            free(msgs[i].value);
            msgs[i].value = NULL;
        }
        cJSON_Delete(body);
        fa_reply_detail(resp, found ? 500 : 404, fail);
        return;
    }
    if (events_dropped(app, msgs, n)) {
        /* as if the forwarding policy could not reach its target */
    } else if (fa_publish_all(app, msgs, n) < 0) {
        cJSON_Delete(body);
        fa_reply_detail(resp, 500, "could not publish the event to Kafka");
        return;
    }
    if (body) {
        fa_reply_json(resp, status, body);
    } else {
        fakehttp_reply_take(resp, status, NULL);
    }
}

/* Reads a create or update body into \p in, with the field errors in a new
 * *errs. @returns the parsed body (\p in points into it), or NULL with the
 * answer set. */
static cJSON *read_input(const struct reqctx *rc, bool need_identifier,
                         struct token_input *in, cJSON **errs,
                         struct fakehttp_response *resp)
{
    cJSON *body = fa_parse_body(rc->req, resp);

    *errs = cJSON_CreateObject();
    if (!body || !*errs) {
        cJSON_Delete(body);
        cJSON_Delete(*errs);
        *errs = NULL;
        if (!resp->body) {
            fa_reply_detail(resp, 500, "out of memory");
        }
        return NULL;
    }
    fa_token_input_parse(body, need_identifier, in, *errs);
    return body;
}

/* What needs the store (a new identifier must be free) and validate(), with
 * the lock held. @returns true when \p errs stayed empty. */
static bool input_valid(struct app *app, const struct token_input *in,
                        bool new_identifier, const char *intent, int64_t now,
                        cJSON *errs)
{
    if (new_identifier && fa_store_find(&app->store, in->identifier)) {
        fa_add_field_error(errs, "identifier",
                           "token with this identifier already exists.");
    }
    if (!errs->child) {
        fa_token_input_validate(in, intent, now, errs);
    }
    return !errs->child;
}

/* The audit middleware's diff from \p before (taken; NULL for a new token)
 * to \p t now; NULL without --enterprise. */
static cJSON *audit_diff(const struct app *app, cJSON *before,
                         const struct token *t)
{
    cJSON *after;
    cJSON *diff;

    if (!app->enterprise) {
        cJSON_Delete(before);
        return NULL;
    }
    after = fa_token_state_json(t);
    diff = fa_state_diff(before, after);
    cJSON_Delete(after);
    cJSON_Delete(before);
    return diff;
}

/* Gives up on a change, with the lock held: releases it, frees \p t (a
 * token the store does not hold; may be NULL) and \p body. */
static void give_up(struct app *app, struct token *t, cJSON *body)
{
    pthread_mutex_unlock(&app->store.mu);
    fa_token_free(t);
    cJSON_Delete(body);
}

/*
 * Ends a create or update, with the lock held, which it releases: when
 * \p stored, answers the token \p t with \p status once its \p action
 * event (with the diff from \p before, taken) is in Kafka; else (out of
 * memory) frees \p t, which the store does not hold. Frees \p body.
 */
static void end_change(struct app *app, const struct reqctx *rc,
                       struct token *t, bool stored, cJSON *before,
                       const char *action, int status, cJSON *body,
                       struct fakehttp_response *resp)
{
    struct outmsg msg = {{0}, NULL};
    cJSON *out;

    if (!stored) {
        give_up(app, t, body);
        cJSON_Delete(before);
        fa_reply_detail(resp, 500, "out of memory");
        return;
    }
    out = fa_token_json(t);
    if (fa_model_event(action, t, audit_diff(app, before, t), rc, &msg) < 0) {
        fprintf(stderr, "fake-authentik: cannot build an event\n");
    }
    pthread_mutex_unlock(&app->store.mu);
    cJSON_Delete(body);
    fa_finish_publish(app, resp, true, &msg, 1, status, out);
}

/* A token as authentik makes one before the body applies: an expiring API
 * token of the admin, with a fresh pk and key. NULL when out of memory. */
static struct token *token_new(void)
{
    struct token *t = calloc(1, sizeof(*t));

    if (!t) {
        return NULL;
    }
    fa_uuid4_hex(t->pk);
    t->key = fa_new_key();
    t->description = strdup("");
    t->intent = "api";
    t->user = ADMIN_PK;
    t->expiring = true;
    if (!t->key || !t->description) {
        fa_token_free(t);
        return NULL;
    }
    return t;
}

/* POST tokens/ */
void fa_tokens_create(struct app *app, const struct reqctx *rc,
                      struct fakehttp_response *resp)
{
    struct token_input in;
    cJSON *errs;
    cJSON *body = read_input(rc, true, &in, &errs, resp);
    struct token *t;
    int64_t now = akv_wall_ns() / NS_PER_US;

    if (!body) {
        return;
    }
    t = token_new();
    if (!t) {
        cJSON_Delete(body);
        cJSON_Delete(errs);
        fa_reply_detail(resp, 500, "out of memory");
        return;
    }
    pthread_mutex_lock(&app->store.mu);
    if (!input_valid(app, &in, in.identifier != NULL,
                     in.intent ? in.intent : "api", now, errs)) {
        give_up(app, t, body);
        fa_reply_errors(resp, errs);
        return;
    }
    cJSON_Delete(errs);
    end_change(app, rc, t,
               fa_token_apply(t, &in, now) == 0 &&
                   fa_store_add(&app->store, t) == 0,
               NULL, "model_created", 201, body, resp);
}

/* PUT and (\p partial) PATCH tokens/ID/ */
void fa_tokens_update(struct app *app, const struct reqctx *rc,
                      const char *ident, bool partial,
                      struct fakehttp_response *resp)
{
    struct token_input in;
    cJSON *errs;
    cJSON *body = read_input(rc, !partial, &in, &errs, resp);
    cJSON *before = NULL;
    struct token *t;
    int64_t now = akv_wall_ns() / NS_PER_US;
    bool renamed;

    if (!body) {
        return;
    }
    pthread_mutex_lock(&app->store.mu);
    t = fa_store_find(&app->store, ident);
    if (!t) {
        give_up(app, NULL, body);
        cJSON_Delete(errs);
        fa_reply_detail(resp, 404, "Not found.");
        return;
    }
    renamed = in.identifier && strcmp(in.identifier, t->identifier) != 0;
    if (!input_valid(app, &in, renamed, in.intent ? in.intent : t->intent, now,
                     errs)) {
        give_up(app, NULL, body);
        fa_reply_errors(resp, errs);
        return;
    }
    cJSON_Delete(errs);
    if (app->enterprise) {
        before = fa_token_state_json(t);
    }
    /* A rename moves the token in both indexes. The same identifier again
     * (PUT sends it) must leave t->identifier alone: it is the hash
     * table's key, which a fresh copy would leave pointing at freed
     * memory. */
    if (renamed) {
        fa_store_remove(&app->store, t);
    } else {
        in.identifier = NULL;
    }
    if (fa_token_apply(t, &in, now) < 0) {
        fprintf(stderr, "fake-authentik: out of memory updating a token\n");
    }
    /* Failing only when out of memory; the token is then lost. */
    end_change(app, rc, t, !renamed || fa_store_add(&app->store, t) == 0,
               before, "model_updated", 200, body, resp);
}

/* DELETE tokens/ID/ */
void fa_tokens_delete(struct app *app, const struct reqctx *rc,
                      const char *ident, struct fakehttp_response *resp)
{
    struct outmsg msg = {{0}, NULL};
    struct token *t;
    bool found;

    pthread_mutex_lock(&app->store.mu);
    t = fa_store_find(&app->store, ident);
    if (t) {
        fa_store_remove(&app->store, t);
        fa_model_event("model_deleted", t, NULL, rc, &msg);
    }
    pthread_mutex_unlock(&app->store.mu);
    found = t != NULL;
    fa_token_free(t);
    fa_finish_publish(app, resp, found, &msg, 1, 204, NULL);
}

/* GET tokens/ID/ */
void fa_tokens_detail(struct app *app, const char *ident,
                      struct fakehttp_response *resp)
{
    struct token *t;
    cJSON *out = NULL;

    atomic_fetch_add(&app->stats.detail, 1);
    pthread_mutex_lock(&app->store.mu);
    t = fa_store_find(&app->store, ident);
    if (t) {
        out = fa_token_json(t);
    }
    pthread_mutex_unlock(&app->store.mu);
    if (!t) {
        fa_reply_detail(resp, 404, "Not found.");
        return;
    }
    fa_reply_json(resp, 200, out);
}

/* GET tokens/ID/view_key/: the key, and a secret_view event. */
void fa_tokens_view_key(struct app *app, const struct reqctx *rc,
                        const char *ident, struct fakehttp_response *resp)
{
    struct outmsg msg = {{0}, NULL};
    struct token *t;
    cJSON *out = NULL;
    cJSON *ctx;

    atomic_fetch_add(&app->stats.view_key, 1);
    pthread_mutex_lock(&app->store.mu);
    t = fa_store_find(&app->store, ident);
    if (t) {
        out = cJSON_CreateObject();
        if (out) {
            cJSON_AddStringToObject(out, "key", t->key);
        }
        ctx = cJSON_CreateObject();
        if (ctx) {
            cJSON_AddItemToObject(ctx, "secret", fa_model_dict_json(t));
        }
        fa_event_build("secret_view", "authentik.core.api.tokens", ctx, rc,
                       t->pk, &msg);
    }
    pthread_mutex_unlock(&app->store.mu);
    fa_finish_publish(app, resp, t != NULL, &msg, 1, 200, out);
}

/* POST tokens/ID/set_key/ {"key"} */
void fa_tokens_set_key(struct app *app, const struct reqctx *rc,
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
    t = fa_store_find(&app->store, ident);
    pthread_mutex_unlock(&app->store.mu);
    if (!t) {
        fa_reply_detail(resp, 404, "Not found.");
        return;
    }
    body = fa_parse_body(rc->req, resp);
    if (!body) {
        return;
    }
    k = akv_json_get(body, "key");
    if (!cJSON_IsString(k) || k->valuestring[0] == '\0') {
        /* The view's `if not key: return Response(status=400)`: no body,
         * as authentik's schema declares for this 400. */
        cJSON_Delete(body);
        fakehttp_reply_take(resp, 400, NULL);
        return;
    }
    key = strdup(k->valuestring);
    akv_json_wipe(body);
    cJSON_Delete(body);
    if (!key) {
        fa_reply_detail(resp, 500, "out of memory");
        return;
    }

    t = fa_store_rekey(&app->store, ident, key);
    if (t) {
        /* token.save() first: the audit middleware's event, whose diff is
         * empty because the key is masked on both sides. */
        fa_model_event("model_updated", t,
                       app->enterprise ? cJSON_CreateObject() : NULL, rc,
                       &msgs[0]);
        /* Then the view's own Event.new(MODEL_UPDATED, model=...). */
        ctx = cJSON_CreateObject();
        if (ctx) {
            cJSON_AddItemToObject(ctx, "model", fa_model_dict_json(t));
        }
        fa_event_build("model_updated", "authentik.core.api.tokens", ctx, rc,
                       t->pk, &msgs[1]);
    }
    pthread_mutex_unlock(&app->store.mu);
    fa_finish_publish(app, resp, t != NULL, msgs, 2, 204, NULL);
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
    if (f->search && !fa_ci_contains(t->identifier, f->search) &&
        !fa_ci_contains(t->intent, f->search) &&
        !fa_ci_contains(ADMIN_USERNAME, f->search) &&
        !fa_ci_contains(t->description, f->search)) {
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

/* The filters of a list request. @returns true when any is set. */
static bool list_filter_parse(const struct fakehttp_request *req,
                              struct list_filter *f)
{
    const char *exp_arg = filter_arg(req, "expiring");

    f->identifier = filter_arg(req, "identifier");
    f->intent = filter_arg(req, "intent");
    f->username = filter_arg(req, "user__username");
    f->description = filter_arg(req, "description");
    f->managed = filter_arg(req, "managed");
    f->search = filter_arg(req, "search");
    f->expiring = -1;
    if (exp_arg) {
        if (strcmp(exp_arg, "true") == 0 || strcmp(exp_arg, "True") == 0 ||
            strcmp(exp_arg, "1") == 0) {
            f->expiring = 1;
        } else if (strcmp(exp_arg, "false") == 0 ||
                   strcmp(exp_arg, "False") == 0 || strcmp(exp_arg, "0") == 0) {
            f->expiring = 0;
        }
    }
    return f->identifier || f->intent || f->username || f->description ||
           f->managed || f->search || f->expiring >= 0;
}

/* The page a list request asks for: \p *page 0 for "last".
 * @returns 0, or -1 for a page DRF calls invalid. */
static int list_page_args(const struct app *app,
                          const struct fakehttp_request *req, long *page_size,
                          long *page)
{
    const char *page_arg = fakehttp_arg(req, "page");
    const char *size_arg = fakehttp_arg(req, "page_size");
    long v;

    *page_size = app->page_size;
    *page = 1;
    /* DRF falls back to the default for a bad or non-positive size. */
    if (size_arg && akv_parse_long(size_arg, 1, LONG_MAX, &v) == 0) {
        *page_size = v;
    }
    if (page_arg && strcmp(page_arg, "last") == 0) {
        *page = 0;
    } else if (page_arg && akv_parse_long(page_arg, 1, LONG_MAX, page) < 0) {
        return -1;
    }
    return 0;
}

/* How many tokens pass \p f, with the lock held. */
static long list_count(const struct store *st, const struct list_filter *f,
                       bool filtered)
{
    long count = 0;
    size_t i;

    if (!filtered) {
        return (long)st->count;
    }
    if (f->identifier) {
        const struct token *t = fa_store_find(st, f->identifier);

        return t && token_matches(t, f) ? 1 : 0;
    }
    for (i = 0; i < st->count; i++) {
        count += token_matches(st->sorted[i], f);
    }
    return count;
}

/* The tokens of the page that starts at match \p skip, with the lock held. */
static void list_results(const struct store *st, const struct list_filter *f,
                         bool filtered, long count, long skip, long page_size,
                         cJSON *results)
{
    long seen = 0;
    long i;

    if (!filtered) {
        for (i = skip; i < count && i < skip + page_size; i++) {
            cJSON_AddItemToArray(results, fa_token_json(st->sorted[i]));
        }
        return;
    }
    if (f->identifier) {
        if (count == 1) {
            cJSON_AddItemToArray(
                results, fa_token_json(fa_store_find(st, f->identifier)));
        }
        return;
    }
    for (i = 0; i < (long)st->count && seen < skip + page_size; i++) {
        const struct token *t = st->sorted[i];

        if (!token_matches(t, f)) {
            continue;
        }
        if (seen >= skip) {
            cJSON_AddItemToArray(results, fa_token_json(t));
        }
        seen++;
    }
}

/* GET tokens/: filtered, a page at a time, in identifier order. */
void fa_tokens_list(struct app *app, const struct fakehttp_request *req,
                    struct fakehttp_response *resp)
{
    struct list_filter f;
    bool filtered = list_filter_parse(req, &f);
    long page_size;
    long page;
    long count;
    long pages;
    cJSON *out = cJSON_CreateObject();

    atomic_fetch_add(&app->stats.list, 1);
    if (!out) {
        fa_reply_detail(resp, 500, "out of memory");
        return;
    }
    if (list_page_args(app, req, &page_size, &page) < 0) {
        cJSON_Delete(out);
        fa_reply_detail(resp, 404, "Invalid page.");
        return;
    }
    pthread_mutex_lock(&app->store.mu);
    count = list_count(&app->store, &f, filtered);
    pages = count == 0 ? 1 : (count + page_size - 1) / page_size;
    if (page == 0) {
        page = pages;
    }
    if (page > pages) {
        pthread_mutex_unlock(&app->store.mu);
        cJSON_Delete(out);
        fa_reply_detail(resp, 404, "Invalid page.");
        return;
    }
    cJSON_AddItemToObject(out, "pagination",
                          pagination_json(count, page, page_size, pages));
    list_results(&app->store, &f, filtered, count, (page - 1) * page_size,
                 page_size, cJSON_AddArrayToObject(out, "results"));
    pthread_mutex_unlock(&app->store.mu);
    cJSON_AddObjectToObject(out, "autocomplete");
    fa_reply_json(resp, 200, out);
}
