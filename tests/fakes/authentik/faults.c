/*
 * faults — fake-authentik's part of the fault plan (fakefault does the
 * rest): its scopes and injectable statuses, the bodies authentik (or the
 * proxy in front of it) sends for them, and deny_status.
 */
#include "fa.h"

#include <stdio.h>
#include <string.h>

/*
 * Every kind of injected misbehaviour is decided here and in fakefault.c,
 * so the API handlers stay a faithful authentik. A request takes the plan
 * once and meets it twice: fakefault_inject() before handling (latency,
 * deny_status, error answers, dropped connections, and the draw that marks
 * the answer for spoiling) and fakefault_after() once the operation was
 * performed (dropped or truncated answer).
 */

/* The statuses "error_rates" may inject, in the order a draw walks them. */
static const int fault_codes[] = {429, 500, 502, 503, 504};
#define NFAULT_CODES (sizeof(fault_codes) / sizeof(fault_codes[0]))
_Static_assert(NFAULT_CODES <= FAKEFAULT_MAX_CODES, "too many fault codes");

/* Which /api requests latency and the probabilistic faults hit. */
enum fault_scope { SCOPE_ALL, SCOPE_DETAIL, SCOPE_VIEW_KEY, SCOPE_LIST };

static const char *const scope_names[] = {"all", "detail", "view_key", "list"};

/* fake-authentik's keys of a fault plan, besides fakefault's common ones,
 * and what they set (fakefault_plan.ext). */
static const char *const authentik_fault_keys[] = {"deny_status",
                                                   "drop_events"};

/* Whether a request is in the plan's scope (other than "all"). */
static int authentik_fault_in_scope(const struct fakefault_plan *fp, void *rctx,
                                    const struct fakehttp_request *req)
{
    char ident[1024];
    enum route r;
    bool get;

    (void)rctx;
    r = fa_route_api(req->path, ident, sizeof(ident));
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
        fa_reply_detail(resp, 401, "Invalid token.");
        /* DRF sends the challenge of the authenticator that refused */
        fakehttp_add_header(resp, "WWW-Authenticate", "Bearer");
        atomic_fetch_add(&app->stats.faults.deny_status, 1);
        return 1;
    }
    if (ax->deny_status == 403) {
        fa_reply_detail(resp, 403,
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
        fa_reply_detail(resp, code, msg);
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
        fa_reply_detail(resp, code, "A server error occurred.");
    }
}

/* authentik_fault_keys[idx], not null. */
static int authentik_fault_key(void *ext, size_t idx, const cJSON *it,
                               const void *ctx, char *err, size_t errsz)
{
    struct authentik_faults *ax = ext;
    long num;

    (void)ctx;
    if (idx == 1) {
        if (!cJSON_IsBool(it)) {
            snprintf(err, errsz, "drop_events must be true or false");
            return -1;
        }
        ax->drop_events = cJSON_IsTrue(it);
        return 0;
    }
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
    cJSON_AddBoolToObject(o, "drop_events", ax && ax->drop_events);
}

const struct fakefault_spec fa_fault_spec = {
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
