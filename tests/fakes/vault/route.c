/*
 * route — one /v1 request from the HTTP layer to its handler, with the
 * checks in the order Vault makes them (path, method, body, trailing
 * slash, token, policy, mount), and the fakehttp handler that also takes
 * the fault plan, counts and logs every request.
 */
#include "fv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Vault 2.0 refuses "." and ".." segments and empty ones ("//"). */
int fv_path_relative(const char *p)
{
    const char *seg = p;

    if (strstr(p, "//")) {
        return 1;
    }
    while (seg) {
        const char *end = strchr(seg, '/');
        size_t n = end ? (size_t)(end - seg) : strlen(seg);

        if ((n == 1 && seg[0] == '.') ||
            (n == 2 && seg[0] == '.' && seg[1] == '.')) {
            return 1;
        }
        seg = end ? end + 1 : NULL;
    }
    return 0;
}

/* Vault's method → logical operation (http/logical.go). @returns -1 for
 * methods it does not take, -2 for a bad ?list= value. */
static int method_op(const struct fakehttp_request *req)
{
    const char *m = req->method;

    if (strcmp(m, "GET") == 0) {
        const char *l = fakehttp_arg(req, "list");
        int list = 0;

        if (l && *l && fv_parse_go_bool(l, &list) != 0) {
            return -2;
        }
        return list ? OP_LIST : OP_READ;
    }
    if (strcmp(m, "POST") == 0 || strcmp(m, "PUT") == 0) {
        return OP_WRITE;
    }
    if (strcmp(m, "DELETE") == 0) {
        return OP_DELETE;
    }
    if (strcmp(m, "LIST") == 0) {
        return OP_LIST;
    }
    if (strcmp(m, "PATCH") == 0) {
        return OP_PATCH;
    }
    return -1;
}

/*
 * Parses a write body like jsonutil.DecodeJSONFromReader into a map: empty
 * input and null mean "no data"; anything but an object is an error.
 * @returns 0, or -1 for "error parsing JSON".
 */
static int parse_body(struct rq *rq)
{
    const char *p = rq->http->body;
    size_t n = rq->http->body_len;
    size_t i = 0;

    while (i < n &&
           (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) {
        i++;
    }
    if (i == n) {
        return 0;
    }
    rq->body = cJSON_ParseWithLength(p, n);
    if (!rq->body) {
        return -1;
    }
    if (cJSON_IsNull(rq->body)) {
        cJSON_Delete(rq->body);
        rq->body = NULL;
        return 0;
    }
    if (!cJSON_IsObject(rq->body)) {
        cJSON_Delete(rq->body);
        rq->body = NULL;
        return -1;
    }
    return 0;
}

/* Counts the KV traffic /_fake/stats reports, before anything can fail. */
static void count_kv(struct rq *rq)
{
    const char *rest = fv_kv_rest(rq->fv, rq->vpath);

    if (!rest) {
        return;
    }
    if (strncmp(rest, "data/", 5) == 0) {
        if (rq->op == OP_WRITE) {
            STAT_INC(rq->fv, kv_write_requests);
        } else if (rq->op == OP_READ) {
            STAT_INC(rq->fv, kv_reads);
        }
    } else if (strncmp(rest, "metadata/", 9) == 0 && rq->op == OP_READ) {
        STAT_INC(rq->fv, metadata_reads);
    }
}

/* @returns 1 when the path \p p is \p dir or below it. */
int fv_starts_with_dir(const char *p, const char *dir)
{
    size_t n = strlen(dir);

    return strncmp(p, dir, n) == 0 && (p[n] == '/' || p[n] == '\0');
}

/* Copies the path below /v1/ into rq->vpath: a LIST always addresses a
 * "directory", so it gets a trailing '/'. @returns 0, or -1 on OOM. */
static int set_vpath(struct rq *rq)
{
    const char *p = rq->http->path + 4;
    size_t n = strlen(p);

    rq->vpath = malloc(n + 2);
    if (!rq->vpath) {
        return -1;
    }
    memcpy(rq->vpath, p, n + 1);
    if (rq->op == OP_LIST && (n == 0 || rq->vpath[n - 1] != '/')) {
        rq->vpath[n] = '/';
        rq->vpath[n + 1] = '\0';
    }
    return 0;
}

/* What Vault's HTTP layer checks before the core sees a request: the path,
 * the method, the JSON body, and (in the core) no write to a path ending
 * in '/'. sys/health is answered here, as Vault's own handler does.
 * @returns 1 to go on, 0 when the answer is set. */
static int http_layer(struct rq *rq)
{
    const char *full = rq->http->path;
    const char *vp;
    int op;

    if (!fv_printable(full)) {
        fakehttp_reply_take(rq->resp, 400, NULL);
        return 0;
    }
    if (fv_path_relative(full)) {
        fv_reply_error(rq->resp, 400, "relative paths not supported");
        return 0;
    }
    if (strcmp(full, "/v1/sys/health") == 0) {
        if (!fv_fault_deny(rq, "sys/health")) {
            fv_sys_health(rq, 0);
        }
        return 0;
    }
    op = method_op(rq->http);
    if (op == -1 || op == -2) {
        fv_reply_error(rq->resp, op == -1 ? 405 : 400, NULL);
        return 0;
    }
    rq->op = (enum op)op;
    if (set_vpath(rq) < 0) {
        fv_reply_error(rq->resp, 500, "out of memory");
        return 0;
    }
    vp = rq->vpath;
    count_kv(rq);
    if ((rq->op == OP_WRITE || rq->op == OP_PATCH) && parse_body(rq) < 0) {
        fv_reply_error(rq->resp, 400, "error parsing JSON");
        return 0;
    }
    if ((rq->op == OP_WRITE || rq->op == OP_PATCH) && *vp &&
        vp[strlen(vp) - 1] == '/') {
        fv_reply_error(rq->resp, 400, "cannot write to a path ending in '/'");
        return 0;
    }
    return 1;
}

/* The login paths, which need no token. @returns 1 when \p rq was one. */
static int route_login(struct rq *rq)
{
    const char *vp = rq->vpath;
    char login[300];

    snprintf(login, sizeof(login), "auth/%s/login", rq->fv->cfg.k8s_mount);
    if (strcmp(vp, login) != 0 && strcmp(vp, "auth/approle/login") != 0) {
        return 0;
    }
    /* check_config() (main.c) keeps the k8s mount from being "approle" */
    if (fv_fault_deny(rq, vp)) {
        return 1;
    }
    if (rq->op != OP_WRITE) {
        fv_reply_error(rq->resp, 405, MSG_UNSUPPORTED_OP);
    } else if (strcmp(vp, "auth/approle/login") == 0) {
        fv_approle_login(rq);
    } else {
        fv_k8s_login(rq);
    }
    return 1;
}

/* The router's 404s: auth mounts without such a path, and no mount. */
static void no_route(struct rq *rq)
{
    const char *vp = rq->vpath;
    struct akv_buf msg = TEXT_INIT;
    char mount[300];

    snprintf(mount, sizeof(mount), "auth/%s", rq->fv->cfg.k8s_mount);
    if (fv_starts_with_dir(vp, "auth/token") || fv_starts_with_dir(vp, mount) ||
        fv_starts_with_dir(vp, "auth/approle")) {
        fv_reply_error(rq->resp, 404, MSG_UNSUPPORTED_PATH);
        return;
    }
    akv_buf_puts(&msg, "no handler for route ");
    fv_go_quote(&msg, vp);
    akv_buf_puts(&msg, ". route entry not found.");
    fv_reply_error(rq->resp, 404, fv_text(&msg));
    akv_buf_free(&msg);
}

/* The order of checks follows Vault: HTTP layer (path, method, JSON),
 * core (trailing slash, token), then the router. */
static void route_v1(struct rq *rq)
{
    struct fake_vault *fv = rq->fv;
    const char *vp;
    const char *rest;

    if (!http_layer(rq) || route_login(rq)) {
        return;
    }
    vp = rq->vpath;
    if (!fv_authenticate(rq) || fv_fault_deny(rq, vp)) {
        return;
    }
    if (strcmp(vp, "auth/token/lookup-self") == 0) {
        fv_lookup_self(rq);
        return;
    }
    if (strcmp(vp, "auth/token/renew-self") == 0) {
        fv_renew_self(rq);
        return;
    }
    if (strcmp(vp, "sys/capabilities-self") == 0) {
        fv_capabilities_self(rq);
        return;
    }
    rest = fv_kv_rest(fv, vp);
    if (rest && rq->fc && fv_vfaults(rq->fc)->mount_missing) {
        /* an unmounted engine: the router's 404 */
        atomic_fetch_add(&fv->st.faults.mount_missing, 1);
        rq->injected = 1;
        rest = NULL;
    }
    if (rest) {
        fv_kv_route(rq, rest);
    } else {
        no_route(rq);
    }
}

/* The fakehttp handler: one call per request, on the connection's thread. */
void fv_handle(void *opaque, const struct fakehttp_request *req,
               struct fakehttp_response *resp)
{
    struct fake_vault *fv = opaque;

    if (strncmp(req->path, "/v1/", 4) == 0) {
        struct rq rq;

        STAT_INC(fv, requests);
        memset(&rq, 0, sizeof(rq));
        rq.fv = fv;
        rq.http = req;
        rq.resp = resp;
        rq.fc = fakefault_acquire(&fv->faults);
        if (fakefault_inject(rq.fc, &rq, req, resp, &fv->st.faults.common,
                             &rq.post)) {
            rq.injected = 1;
        } else {
            route_v1(&rq);
            fakefault_after(rq.post, resp, &fv->st.faults.common);
        }
        /* "denied" counts Vault's own refusals; injected ones are faults */
        if (resp->status == 403 && !rq.injected) {
            STAT_INC(fv, denied);
        }
        fakefault_release(rq.fc);
        cJSON_Delete(rq.body);
        free(rq.vpath);
        fv_log_request(fv, req,
                       resp->action == FAKEHTTP_DROP ? 0
                       : resp->status                ? resp->status
                                                     : 500);
    } else if (strncmp(req->path, "/_fake/", 7) == 0) {
        fv_handle_control(fv, req, resp);
    } else {
        fv_reply_error(resp, 404, NULL);
    }
    fakehttp_add_header(resp, "Cache-Control", "no-store");
}
