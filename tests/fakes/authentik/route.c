/*
 * route — an /api request from the HTTP layer to its handler, the way
 * authentik's DRF router and token authentication see it, and the fakehttp
 * handler in front of everything: the fault plan, the counters, /_fake/.
 */
#include "fa.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define TOKENS_PREFIX "/api/v3/core/tokens/"

/* Resolves a path the way authentik's DRF router does: lookups match
 * [^/.]+ and every URL ends in a slash. */
enum route fa_route_api(const char *path, char *ident, size_t identsz)
{
    const char *rest;
    const char *slash;
    size_t len;

    if (strncmp(path, TOKENS_PREFIX, strlen(TOKENS_PREFIX)) != 0) {
        return ROUTE_NONE;
    }
    rest = path + strlen(TOKENS_PREFIX);
    if (*rest == '\0') {
        return ROUTE_LIST;
    }
    slash = strchr(rest, '/');
    if (!slash || slash == rest) {
        return ROUTE_NONE;
    }
    len = (size_t)(slash - rest);
    if (len >= identsz || memchr(rest, '.', len)) {
        return ROUTE_NONE;
    }
    memcpy(ident, rest, len);
    ident[len] = '\0';
    rest = slash + 1;
    if (*rest == '\0') {
        return ROUTE_DETAIL;
    }
    if (strcmp(rest, "view_key/") == 0) {
        return ROUTE_VIEW_KEY;
    }
    if (strcmp(rest, "set_key/") == 0) {
        return ROUTE_SET_KEY;
    }
    return ROUTE_NONE;
}

static const char *route_allow(enum route r)
{
    switch (r) {
    case ROUTE_LIST:
        return "GET, POST, HEAD, OPTIONS";
    case ROUTE_DETAIL:
        return "GET, PUT, PATCH, DELETE, HEAD, OPTIONS";
    case ROUTE_VIEW_KEY:
        return "GET, HEAD, OPTIONS";
    case ROUTE_SET_KEY:
        return "POST, OPTIONS";
    default:
        return "";
    }
}

/* Constant-time so response timing says nothing about the API token. */
static bool secret_equal(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    size_t i;

    for (i = 0; i < la && i < lb; i++) {
        diff |= (unsigned char)(a[i] ^ b[i]);
    }
    return diff == 0;
}

/* authentik's token authentication: "Bearer <key>" only. Sets the 403 and
 * returns false when the request may not proceed. */
static bool authenticate(struct app *app, const struct fakehttp_request *req,
                         struct fakehttp_response *resp)
{
    const char *h = fakehttp_header(req, "Authorization");
    const char *p;
    bool ok;

    if (h) {
        while (*h == ' ') {
            h++;
        }
    }
    if (!h || strncasecmp(h, "bearer", 6) != 0 || (h[6] != ' ' && h[6])) {
        atomic_fetch_add(&app->stats.denied, 1);
        fa_reply_detail(resp, 403,
                        "Authentication credentials were not provided.");
        return false;
    }
    p = h + 6;
    while (*p == ' ') {
        p++;
    }
    pthread_mutex_lock(&app->token_lock);
    ok = *p && secret_equal(p, app->api_token);
    pthread_mutex_unlock(&app->token_lock);
    if (!ok) {
        atomic_fetch_add(&app->stats.denied, 1);
        fa_reply_detail(resp, 403, "Token invalid/expired");
        return false;
    }
    return true;
}

static void reply_not_allowed(struct fakehttp_response *resp, enum route r,
                              const char *method)
{
    char msg[96];

    snprintf(msg, sizeof(msg), "Method \"%s\" not allowed.", method);
    fa_reply_detail(resp, 405, msg);
    fakehttp_add_header(resp, "Allow", route_allow(r));
}

static void reply_options(struct fakehttp_response *resp, enum route r)
{
    fakehttp_reply(resp, 200,
                   "{\"name\":\"%s\",\"description\":\"Token Viewset\","
                   "\"renders\":[\"application/json\"],"
                   "\"parses\":[\"application/json\"]}",
                   r == ROUTE_LIST ? "Token List" : "Token Instance");
    fakehttp_add_header(resp, "Allow", route_allow(r));
}

static void reqctx_init(struct reqctx *rc, const struct fakehttp_request *req)
{
    const union MHD_ConnectionInfo *ci;

    memset(rc, 0, sizeof(*rc));
    rc->req = req;
    fa_uuid4_hex(rc->request_id);
    ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;

        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *sin = (const void *)sa;

            rc->have_client_ip =
                inet_ntop(AF_INET, &sin->sin_addr, rc->client_ip,
                          sizeof(rc->client_ip)) != NULL;
        } else if (sa->sa_family == AF_INET6) {
            const struct sockaddr_in6 *sin6 = (const void *)sa;

            rc->have_client_ip =
                inet_ntop(AF_INET6, &sin6->sin6_addr, rc->client_ip,
                          sizeof(rc->client_ip)) != NULL;
        }
    }
}

static void handle_api(struct app *app, const struct fakehttp_request *req,
                       struct fakehttp_response *resp)
{
    char ident[1024];
    enum route r = fa_route_api(req->path, ident, sizeof(ident));
    const char *m = req->method;
    bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
    struct reqctx rc;

    if (r == ROUTE_NONE) {
        fa_reply_detail(resp, 404, "Not found.");
        return;
    }
    /* DRF authenticates before it looks at the method. */
    if (!authenticate(app, req, resp)) {
        return;
    }
    if (strcmp(m, "OPTIONS") == 0) {
        reply_options(resp, r);
        return;
    }
    reqctx_init(&rc, req);
    switch (r) {
    case ROUTE_LIST:
        if (get) {
            fa_tokens_list(app, req, resp);
        } else if (strcmp(m, "POST") == 0) {
            fa_tokens_create(app, &rc, resp);
        } else {
            reply_not_allowed(resp, r, m);
        }
        break;
    case ROUTE_DETAIL:
        if (get) {
            fa_tokens_detail(app, ident, resp);
        } else if (strcmp(m, "PATCH") == 0 || strcmp(m, "PUT") == 0) {
            fa_tokens_update(app, &rc, ident, m[1] == 'A', resp);
        } else if (strcmp(m, "DELETE") == 0) {
            fa_tokens_delete(app, &rc, ident, resp);
        } else {
            reply_not_allowed(resp, r, m);
        }
        break;
    case ROUTE_VIEW_KEY:
        if (get) {
            fa_tokens_view_key(app, &rc, ident, resp);
        } else {
            reply_not_allowed(resp, r, m);
        }
        break;
    case ROUTE_SET_KEY:
        if (strcmp(m, "POST") == 0) {
            fa_tokens_set_key(app, &rc, ident, resp);
        } else {
            reply_not_allowed(resp, r, m);
        }
        break;
    default:
        fa_reply_detail(resp, 404, "Not found.");
        break;
    }
}

/* The fakehttp handler: one call per request, on the connection's thread. */
void fa_handle(void *opaque, const struct fakehttp_request *req,
               struct fakehttp_response *resp)
{
    struct app *app = opaque;

    if (strncmp(req->path, "/_fake/", 7) == 0) {
        fa_handle_fake(app, req, resp);
    } else if (strncmp(req->path, "/api/v3/", 8) == 0) {
        struct fakefault_plan *fp = fakefault_acquire(&app->faults);
        enum fakefault_post post = FAKEFAULT_POST_NONE;

        atomic_fetch_add(&app->stats.requests, 1);
        if (!fakefault_inject(fp, app, req, resp, &app->stats.faults.common,
                              &post)) {
            handle_api(app, req, resp);
            fakefault_after(post, resp, &app->stats.faults.common);
        }
        fakefault_release(fp);
    } else {
        fa_reply_detail(resp, 404, "Not found.");
    }
    if (app->verbose) {
        /* Paths carry identifiers only; keys travel in bodies. */
        fprintf(stderr, "fake-authentik: %s %s -> %d\n", req->method, req->path,
                resp->action == FAKEHTTP_DROP ? 0
                : resp->status                ? resp->status
                                              : 500);
    }
}
