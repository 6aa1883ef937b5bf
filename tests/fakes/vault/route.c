/*
 * route — one /v1 request from the HTTP layer to its handler, with the
 * checks in the order Vault makes them (path, method, body, trailing
 * slash, token, policy, mount), and the fakehttp handler that also takes
 * the fault plan, counts and logs every request.
 */
#include "fv.h"

#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* @returns 1 when \p p has a "." or ".." segment or an empty one ("//"):
 * no mount path may (main.c). */
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

/*
 * Go's path cleaning as net/http's ServeMux does it (cleanPath): "." and
 * ".." segments resolved, repeated slashes made one, a trailing slash
 * kept. @returns the clean path (heap), or NULL when out of memory.
 */
static char *clean_path(const char *p)
{
    size_t n = strlen(p);
    char *out = malloc(n + 2);
    size_t o = 0;
    const char *seg = p;

    if (!out) {
        return NULL;
    }
    out[o++] = '/';
    while (*seg) {
        const char *end;
        size_t len;

        while (*seg == '/') {
            seg++;
        }
        end = strchr(seg, '/');
        len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0) {
            break;
        }
        if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            /* out ends with a '/': drop it and the segment before it */
            if (o > 1) {
                o--;
            }
            while (o > 1 && out[o - 1] != '/') {
                o--;
            }
        } else if (!(len == 1 && seg[0] == '.')) {
            memcpy(out + o, seg, len);
            o += len;
            out[o++] = '/';
        }
        seg += len;
    }
    if (o > 1 && (n == 0 || p[n - 1] != '/')) {
        o--; /* the slash after the last segment */
    }
    out[o] = '\0';
    return out;
}

static enum MHD_Result add_query_arg(void *cls, enum MHD_ValueKind kind,
                                     const char *key, const char *value)
{
    cJSON *q = cls;

    (void)kind;
    if (key && !cJSON_GetObjectItemCaseSensitive(q, key)) {
        cJSON_AddItemToObject(q, key, cJSON_CreateString(value ? value : ""));
    }
    return MHD_YES;
}

/* The query parameters as an object (the first of a repeated name), the
 * way Vault gives them to a read, list or delete as its data. NULL when
 * out of memory. */
static cJSON *query_object(const struct fakehttp_request *req)
{
    cJSON *q = cJSON_CreateObject();

    if (q) {
        MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND,
                                  add_query_arg, q);
    }
    return q;
}

/*
 * The 307 ServeMux answers for a path that is not clean: Location is the
 * clean path and the query (its parameters re-encoded), and a GET gets
 * Go's little HTML body. @returns 1 when \p rq was answered.
 */
static int redirect_unclean(struct rq *rq)
{
    const char *full = rq->http->path;
    char *clean = clean_path(full);
    struct akv_buf loc = TEXT_INIT;
    struct akv_buf body = TEXT_INIT;
    const cJSON *arg;
    cJSON *q;

    if (clean && strcmp(clean, full) == 0) {
        free(clean);
        return 0;
    }
    if (!clean || !(q = query_object(rq->http))) {
        free(clean);
        fv_reply_error(rq->resp, 500, "out of memory");
        return 1;
    }
    akv_buf_puts(&loc, clean);
    cJSON_ArrayForEach(arg, q)
    {
        akv_buf_putc(&loc, arg == q->child ? '?' : '&');
        fv_url_escape(&loc, arg->string);
        akv_buf_putc(&loc, '=');
        fv_url_escape(&loc, arg->valuestring);
    }
    cJSON_Delete(q);
    free(clean);
    if (strcmp(rq->http->method, "GET") == 0) {
        const char *c;

        akv_buf_puts(&body, "<a href=\"");
        for (c = fv_text(&loc); *c; c++) { /* Go's htmlEscape */
            const char *esc = *c == '&'    ? "&amp;"
                              : *c == '<'  ? "&lt;"
                              : *c == '>'  ? "&gt;"
                              : *c == '"'  ? "&#34;"
                              : *c == '\'' ? "&#39;"
                                           : NULL;

            if (esc) {
                akv_buf_puts(&body, esc);
            } else {
                akv_buf_putc(&body, *c);
            }
        }
        akv_buf_puts(&body, "\">Temporary Redirect</a>.\n\n");
    }
    fakehttp_reply_take(rq->resp, 307, akv_buf_take(&body));
    if (strcmp(rq->http->method, "GET") == 0 ||
        strcmp(rq->http->method, "HEAD") == 0) {
        rq->resp->content_type = "text/html; charset=utf-8";
    } else {
        rq->resp->content_type = ""; /* http.Redirect sets none */
    }
    fakehttp_add_header(rq->resp, "Location", fv_text(&loc));
    akv_buf_free(&loc);
    return 1;
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
    if (strcmp(m, "OPTIONS") == 0) {
        return OP_OPTIONS; /* no operation: every handler refuses it */
    }
    return -1;
}

/* PATCH takes only JSON merge patches (mime.ParseMediaType of the header).
 * @returns 0, or the status of the refusal with its text in \p err. */
static int patch_content_type(const struct fakehttp_request *req,
                              struct akv_buf *err)
{
    static const char want[] = "application/merge-patch+json";
    const char *ct = fakehttp_header(req, "Content-Type");
    size_t n;

    while (ct && (*ct == ' ' || *ct == '\t')) {
        ct++;
    }
    if (!ct || !*ct) {
        akv_buf_puts(err, "mime: no media type");
        return 400;
    }
    n = strcspn(ct, "; \t");
    if (n == sizeof(want) - 1 && strncasecmp(ct, want, n) == 0) {
        return 0;
    }
    akv_buf_printf(err, "PATCH requires Content-Type of %s, provided ", want);
    while (n > 0 && ct[n - 1] == ' ') {
        n--;
    }
    for (; n > 0; n--, ct++) {
        akv_buf_putc(err, (char)((*ct >= 'A' && *ct <= 'Z') ? *ct + 32 : *ct));
    }
    return 415;
}

/*
 * Reads the body (fv_body_parse): every method's body is scanned, a
 * write's becomes rq->body. PATCH first needs Vault's content type.
 * @returns 1 to go on, 0 when the answer is set.
 */
static int read_body(struct rq *rq)
{
    int write = rq->op == OP_WRITE || rq->op == OP_PATCH;
    struct akv_buf err = TEXT_INIT;
    int status;

    status = fv_body_parse(rq->http->body, rq->http->body_len, 0, 0, &rq->body,
                           &err);
    if (status == 0 && rq->op == OP_PATCH) {
        status = patch_content_type(rq->http, &err);
    }
    if (status == 0 && write) {
        status = fv_body_parse(rq->http->body, rq->http->body_len, 1,
                               rq->op == OP_PATCH, &rq->body, &err);
    }
    if (status != 0) {
        fv_reply_error(rq->resp, status, fv_text(&err));
    }
    akv_buf_free(&err);
    return status == 0;
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
    if (redirect_unclean(rq)) {
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
    if (!read_body(rq)) {
        return 0;
    }
    if (rq->op == OP_READ || rq->op == OP_LIST || rq->op == OP_DELETE) {
        rq->query = query_object(rq->http);
        if (!rq->query) {
            fv_reply_error(rq->resp, 500, "out of memory");
            return 0;
        }
        if (rq->op == OP_LIST && strcmp(rq->http->method, "GET") == 0) {
            /* ?list=true made it a LIST and is no parameter of it */
            cJSON_DeleteItemFromObjectCaseSensitive(rq->query, "list");
        }
    }
    if ((rq->op == OP_WRITE || rq->op == OP_PATCH) && *vp &&
        vp[strlen(vp) - 1] == '/') {
        fv_reply_error(rq->resp, 400, "cannot write to a path ending in '/'");
        return 0;
    }
    return 1;
}

/* @returns 1 when \p vp is one of the login paths. */
static int login_path(const struct rq *rq, const char *vp)
{
    char login[300];

    snprintf(login, sizeof(login), "auth/%s/login", rq->fv->cfg.k8s_mount);
    return strcmp(vp, login) == 0 || strcmp(vp, "auth/approle/login") == 0;
}

/* The login paths, which need no token. @returns 1 when \p rq was one. */
static int route_login(struct rq *rq)
{
    const char *vp = rq->vpath;

    if (!login_path(rq, vp)) {
        return 0;
    }
    /* check_config() (main.c) keeps the k8s mount from being "approle" */
    if (fv_fault_deny(rq, vp)) {
        return 1;
    }
    if (rq->op != OP_WRITE) {
        /* a login's error is not wrapped in a multierror */
        fv_reply_error(rq->resp, 405, "unsupported operation");
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
        cJSON_Delete(rq.query);
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
