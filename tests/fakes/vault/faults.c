/*
 * faults — fake-vault's part of the fault plan (fakefault does the rest):
 * its scopes and injectable statuses, Vault's bodies for them, the sealed
 * window, policy denial by path prefix, KV writes answered without being
 * performed, and the keys of the plan that set these.
 */
#include "fv.h"

#include "clock.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Every kind of injected misbehaviour is decided here and in fakefault.c,
 * so the handlers stay a faithful Vault and a fault plan is read in one
 * place. A request takes the plan once (rq->fc) and then meets it at fixed
 * points:
 *   fakefault_inject()  before routing: latency, the sealed window
 *                       (vault_fault_gate), error answers, dropped
 *                       connections, and the draw that marks the answer
 *                       for dropping or truncating afterwards;
 *   fv_fault_deny()     in route.c, where Vault checks the ACL: after the
 *                       token check, so a bad token keeps its own 403;
 *   mount_missing       in route.c, where the KV mount would be found;
 *   issue_token()       in auth.c: token_ttl_s / token_max_ttl_s for new
 *                       logins;
 *   fakefault_after()   after normal handling: drop or truncate the answer.
 */

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
    SCOPE_AUTH,
    SCOPE_KV_LIST
};

static const char *const scope_names[] = {"all",       "kv",   "kv_write",
                                          "kv_delete", "auth", "kv_list"};

/* fake-vault's keys of a fault plan, besides fakefault's common ones. */
static const char *const vault_fault_keys[] = {
    "sealed_for_ms", "deny_prefix",  "token_ttl_s", "token_max_ttl_s",
    "mount_missing", "write_answer", "echo_status"};

/* The values of "write_answer", by enum write_answer. */
static const char *const write_answer_names[] = {
    "none", "null_data", "no_version", "html", "garbage", "empty"};

/* @returns the fake-vault part of \p fp, or NULL when there is no plan. */
const struct vault_faults *fv_vfaults(const struct fakefault_plan *fp)
{
    return fp ? fp->ext : NULL;
}

#define FAULT_MAX_DENY 64

#define FAULT_MAX_TTL (100L * 365 * 86400)

#define ACL_DENIED "1 error occurred:\n\t* permission denied\n\n"

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
        return fv_kv_rest(rq->fv, vp) != NULL;
    case SCOPE_KV_WRITE:
        return fv_kv_rest(rq->fv, vp) != NULL &&
               (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0 ||
                strcmp(m, "DELETE") == 0);
    case SCOPE_KV_DELETE:
        return fv_kv_rest(rq->fv, vp) != NULL && strcmp(m, "DELETE") == 0;
    case SCOPE_AUTH:
        return strncmp(vp, "auth/", 5) == 0;
    case SCOPE_KV_LIST:
        return fv_kv_rest(rq->fv, vp) != NULL &&
               (strcmp(m, "LIST") == 0 ||
                (strcmp(m, "GET") == 0 && fakehttp_arg(req, "list") &&
                 strcmp(fakehttp_arg(req, "list"), "true") == 0));
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
    const struct vault_faults *vx = fv_vfaults(fp);
    const char *rest;
    struct akv_buf msg = TEXT_INIT;

    if (!vx || (vx->write_answer == WA_NONE && vx->echo_status == 0) ||
        (strcmp(req->method, "POST") != 0 && strcmp(req->method, "PUT") != 0)) {
        return 0;
    }
    rest = fv_kv_rest(rq->fv, req->path + 4);
    if (!rest || strncmp(rest, "data/", 5) != 0) {
        return 0;
    }
    atomic_fetch_add(&rq->fv->st.faults.write_faults, 1);
    if (vx->echo_status) {
        akv_buf_puts(&msg, "1 error occurred:\n\t* cannot decode the request "
                           "body: ");
        akv_buf_append(&msg, req->body, req->body_len);
        akv_buf_puts(&msg, "\n\n");
        fv_reply_error(resp, vx->echo_status, fv_text(&msg));
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
    if (!fault_sealed(fv_vfaults(fp))) {
        return 0;
    }
    if (strcmp(req->path, "/v1/sys/health") == 0 &&
        (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)) {
        fv_sys_health(rq, 1);
    } else {
        fv_reply_error(resp, 503, "Vault is sealed");
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
        fv_reply_error(resp, code, "required index state not present");
        break;
    case 429:
        /* http/util.go: fmt.Errorf("request path %q: %w", path, ...) */
        akv_buf_puts(&msg, "request path ");
        fv_go_quote(&msg, req->path + 4);
        akv_buf_puts(&msg, ": rate limit quota exceeded");
        fv_reply_error(resp, code, fv_text(&msg));
        akv_buf_free(&msg);
        break;
    case 502:
        fv_reply_error(resp, code, "bad gateway");
        break;
    case 503:
        fv_reply_error(resp, code, "Vault is sealed");
        break;
    case 504:
        fv_reply_error(resp, code, "context deadline exceeded");
        break;
    default:
        fv_reply_error(resp, code, "internal error");
        break;
    }
}

/* @returns 1 when a deny_prefix of the plan covers \p vpath. */
int fv_deny_prefix_match(const struct fakefault_plan *fc, const char *vpath)
{
    const struct vault_faults *vx = fv_vfaults(fc);
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
int fv_fault_deny(struct rq *rq, const char *vpath)
{
    if (!fv_deny_prefix_match(rq->fc, vpath)) {
        return 0;
    }
    fv_reply_error(rq->resp, 403, ACL_DENIED);
    atomic_fetch_add(&rq->fv->st.faults.denied_prefix, 1);
    rq->injected = 1;
    return 1;
}

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
    long num;
    int rc;

    (void)ctx;
    switch (idx) {
    case 0:
        if (fakefault_key_long(it, 0, 7L * 86400 * 1000, &vx->sealed_for_ms,
                               err, errsz) < 0) {
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
        if (fakefault_key_long(it, 1, FAULT_MAX_TTL, &num, err, errsz) < 0) {
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

const struct fakefault_spec fv_fault_spec = {
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
