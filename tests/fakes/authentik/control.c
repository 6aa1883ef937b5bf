/*
 * control — the endpoints under /_fake/ (loopback clients only): every
 * token with its key, counters and their reset, rotating a token as
 * authentik's expiry task does, deleting one without an event, and the
 * fault plan.
 */
#include "fa.h"

#include "clock.h"
#include "wipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Token.expire_action() for API tokens, as authentik's expiry task runs
 * it: outside any request, so no audit-middleware event, only
 * secret_rotate. */
static void fake_rotate(struct app *app, const char *ident,
                        struct fakehttp_response *resp)
{
    struct outmsg msg = {{0}, NULL};
    struct token *t;
    cJSON *out = NULL;
    char *key = fa_new_key();

    if (!key) {
        fa_reply_detail(resp, 500, "out of memory");
        return;
    }
    t = fa_store_rekey(&app->store, ident, key);
    if (t) {
        cJSON *ctx = cJSON_CreateObject();
        char message[IDENT_MAX + 64];

        t->has_expires = true;
        t->expires_us = akv_wall_ns() / NS_PER_US + DAY_US;
        if (ctx) {
            snprintf(message, sizeof(message), "Token %s's secret was rotated.",
                     t->identifier);
            cJSON_AddItemToObject(ctx, "token", fa_model_dict_json(t));
            cJSON_AddStringToObject(ctx, "message", message);
        }
        fa_event_build("secret_rotate", "authentik.core.models", ctx, NULL,
                       t->pk, &msg);
        out = fa_token_json(t);
    }
    pthread_mutex_unlock(&app->store.mu);
    fa_finish_publish(app, resp, t != NULL, &msg, 1, 200, out);
}

static void fake_delete_silently(struct app *app, const char *ident,
                                 struct fakehttp_response *resp)
{
    struct token *t;

    pthread_mutex_lock(&app->store.mu);
    t = fa_store_find(&app->store, ident);
    if (t) {
        fa_store_remove(&app->store, t);
    }
    pthread_mutex_unlock(&app->store.mu);
    if (!t) {
        fa_reply_detail(resp, 404, "Not found.");
        return;
    }
    fa_token_free(t);
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
        fa_reply_detail(resp, 500, "out of memory");
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
        fa_uuid_dashed(t->pk, pk);
        cJSON_AddStringToObject(o, "pk", pk);
        cJSON_AddStringToObject(o, "identifier", t->identifier);
        cJSON_AddStringToObject(o, "intent", t->intent);
        cJSON_AddStringToObject(o, "key", t->key);
        cJSON_AddStringToObject(o, "description", t->description);
        fa_add_time_or_null(o, "expires", t->has_expires, t->expires_us);
        cJSON_AddBoolToObject(o, "expiring", t->expiring);
        cJSON_AddItemToArray(arr, o);
    }
    pthread_mutex_unlock(&app->store.mu);
    fa_reply_json(resp, 200, out);
}

static void fake_stats(struct app *app, struct fakehttp_response *resp)
{
    const struct fault_stats *fs = &app->stats.faults;

    fakehttp_reply(
        resp, 200,
        "{\"requests\":%ld,\"detail\":%ld,\"view_key\":%ld,"
        "\"list\":%ld,\"events_published\":%ld,\"events_dropped\":%ld,"
        "\"denied\":%ld,"
        "\"faults\":{\"errors\":{\"429\":%llu,\"500\":%llu,\"502\":%llu,"
        "\"503\":%llu,\"504\":%llu},\"dropped\":%llu,\"dropped_after\":%llu,"
        "\"truncated\":%llu,\"deny_status\":%llu,\"latency_ms_total\":%llu}}",
        atomic_load(&app->stats.requests), atomic_load(&app->stats.detail),
        atomic_load(&app->stats.view_key), atomic_load(&app->stats.list),
        atomic_load(&app->stats.events_published),
        atomic_load(&app->stats.events_dropped),
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
    atomic_store(&app->stats.events_dropped, 0);
    atomic_store(&app->stats.denied, 0);
    fakefault_counts_reset(&app->stats.faults.common);
    atomic_store(&app->stats.faults.deny_status, 0);
    fakehttp_reply_take(resp, 204, NULL);
}

/* POST /_fake/api-token {"token": "..."}: from now on only this API token
 * is accepted (the one an operator rotated in authentik). */
static void fake_api_token(struct app *app, const struct fakehttp_request *req,
                           struct fakehttp_response *resp)
{
    cJSON *body = cJSON_ParseWithLength(req->body, req->body_len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(body, "token");
    char *fresh =
        cJSON_IsString(t) && *t->valuestring ? strdup(t->valuestring) : NULL;
    char *old;

    cJSON_Delete(body);
    if (!fresh) {
        fa_reply_detail(resp, 400, "want {\"token\": \"...\"}");
        return;
    }
    pthread_mutex_lock(&app->token_lock);
    old = app->api_token;
    app->api_token = fresh;
    pthread_mutex_unlock(&app->token_lock);
    akv_wipe_free(old);
    fakehttp_reply_take(resp, 204, NULL);
}

/* Serves /_fake/... to loopback clients. */
void fa_handle_fake(struct app *app, const struct fakehttp_request *req,
                    struct fakehttp_response *resp)
{
    static const char prefix[] = "/_fake/tokens/";
    const char *p = req->path;
    bool post = strcmp(req->method, "POST") == 0;
    bool get = strcmp(req->method, "GET") == 0;

    if (!fakehttp_from_loopback(req)) {
        fa_reply_detail(resp, 403, "fake controls are loopback only");
        return;
    }
    if (strcmp(p, "/_fake/tokens") == 0 || strcmp(p, "/_fake/tokens/") == 0) {
        if (get) {
            fake_list_tokens(app, resp);
        } else {
            fa_reply_detail(resp, 405, "use GET");
        }
    } else if (strcmp(p, "/_fake/stats") == 0) {
        if (get) {
            fake_stats(app, resp);
        } else {
            fa_reply_detail(resp, 405, "use GET");
        }
    } else if (strcmp(p, "/_fake/faults") == 0) {
        fakefault_control(&app->faults, req, resp);
    } else if (strcmp(p, "/_fake/api-token") == 0) {
        if (post) {
            fake_api_token(app, req, resp);
        } else {
            fa_reply_detail(resp, 405, "use POST");
        }
    } else if (strcmp(p, "/_fake/reset-stats") == 0) {
        if (post) {
            fake_reset_stats(app, resp);
        } else {
            fa_reply_detail(resp, 405, "use POST");
        }
    } else if (strncmp(p, prefix, sizeof(prefix) - 1) == 0) {
        const char *ident = p + sizeof(prefix) - 1;
        const char *slash = strchr(ident, '/');
        char buf[1024];
        size_t len = slash ? (size_t)(slash - ident) : 0;

        if (!slash || len == 0 || len >= sizeof(buf)) {
            fa_reply_detail(resp, 404, "Not found.");
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
            fa_reply_detail(resp, 405, "use POST");
        } else {
            fa_reply_detail(resp, 404, "Not found.");
        }
    } else {
        fa_reply_detail(resp, 404, "Not found.");
    }
}
