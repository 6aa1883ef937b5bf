/*
 * events — the events authentik records for token changes, shaped as
 * authentik's forwarding sends them to Kafka after a round trip through
 * PostgreSQL's jsonb: the event envelope, the HTTP request it came from
 * (secret query arguments masked), the model and the enterprise audit
 * middleware's diff.
 */
#include "fa.h"

#include "clock.h"
#include "json.h"

#include <microhttpd.h>
#include <stdio.h>
#include <string.h>

#define EVENT_RETENTION_US (INT64_C(365) * DAY_US)
#define CLEANSED           "********************"

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

/* Django's SafeExceptionReporterFilter.hidden_settings, minus authentik's
 * "passing" exception: such query arguments are masked in events. */
static bool is_hidden_key(const char *key)
{
    static const char *const words[] = {"api",    "token", "key",
                                        "secret", "pass",  "signature"};
    size_t i;

    if (fa_ci_contains(key, "passing")) {
        return false;
    }
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (fa_ci_contains(key, words[i])) {
            return true;
        }
    }
    return false;
}

/* str(token): the identifier, plus " (expires=...)" for expiring tokens. */
static void token_name(const struct token *t, char *out, size_t outsz)
{
    char when[TIME_BUF];

    if (!t->expiring) {
        snprintf(out, outsz, "%s", t->identifier);
        return;
    }
    if (t->has_expires) {
        fa_fmt_time(t->expires_us, false, when, sizeof(when));
    } else {
        snprintf(when, sizeof(when), "None");
    }
    snprintf(out, outsz, "%s (expires=%s)", t->identifier, when);
}

/* model_to_dict(token) after sanitize_dict: the pk as uuid hex. */
cJSON *fa_model_dict_json(const struct token *t)
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
cJSON *fa_token_state_json(const struct token *t)
{
    cJSON *o = cJSON_CreateObject();

    if (!o) {
        return NULL;
    }
    cJSON_AddNullToObject(o, "managed");
    fa_add_time_or_null(o, "expires", t->has_expires, t->expires_us);
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
cJSON *fa_state_diff(const cJSON *before, const cJSON *after)
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
int fa_event_build(const char *action, const char *appname, cJSON *context,
                   const struct reqctx *rc, const char *token_pk,
                   struct outmsg *out)
{
    cJSON *ev = cJSON_CreateObject();
    char pkhex[33];
    char pk[37];
    char when[TIME_BUF];
    int64_t created = akv_wall_ns() / NS_PER_US;
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

    fa_uuid4_hex(pkhex);
    fa_uuid_dashed(pkhex, pk);
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
    fa_fmt_time(created, true, when, sizeof(when));
    cJSON_AddStringToObject(ev, "created", when);
    fa_fmt_time(created + EVENT_RETENTION_US, true, when, sizeof(when));
    cJSON_AddStringToObject(ev, "expires", when);
    cJSON_AddItemToObject(ev, "brand", brand);

    out->value = fa_json_take_print(ev);
    if (!out->value) {
        return -1;
    }
    snprintf(out->key, sizeof(out->key), "%s", token_pk);
    return 0;
}

/* model_created / model_updated / model_deleted as the audit middleware
 * records them; \p diff (taken, may be NULL) only with --enterprise. */
int fa_model_event(const char *action, const struct token *t, cJSON *diff,
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
    cJSON_AddItemToObject(ctx, "model", fa_model_dict_json(t));
    return fa_event_build(action, "authentik.events.middleware", ctx, rc, t->pk,
                          out);
}
