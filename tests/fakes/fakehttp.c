/*
 * fakehttp — libmicrohttpd glue shared by the HTTP stand-ins.
 */
#include "fakehttp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct fakehttp {
    struct MHD_Daemon *daemon;
    fakehttp_handler_fn *fn;
    void *opaque;
    char address[64];
};

/* Per-request state: the body collected so far. */
struct conn_state {
    char *body;
    size_t len;
    size_t cap;
    int too_big;
};

/* A truncated response: the reader hands out the first half and then fails
 * the connection, so the client sees a short body for a longer
 * Content-Length. */
struct truncated {
    char *body;
    size_t len;
};

static ssize_t truncated_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct truncated *t = cls;
    size_t half = t->len / 2;
    size_t n;

    if (pos >= half) {
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    n = half - (size_t)pos;
    if (n > max) {
        n = max;
    }
    memcpy(buf, t->body + pos, n);
    return (ssize_t)n;
}

static void truncated_free(void *cls)
{
    struct truncated *t = cls;

    free(t->body);
    free(t);
}

static int body_append(struct conn_state *st, const char *data, size_t len)
{
    size_t need = st->len + len + 1;

    if (need > FAKEHTTP_MAX_BODY) {
        st->too_big = 1;
        return 0;
    }
    if (need > st->cap) {
        size_t cap = st->cap ? st->cap : 1024;
        char *p;

        while (cap < need) {
            cap *= 2;
        }
        p = realloc(st->body, cap);
        if (!p) {
            return -1;
        }
        st->body = p;
        st->cap = cap;
    }
    memcpy(st->body + st->len, data, len);
    st->len += len;
    st->body[st->len] = '\0';
    return 0;
}

static enum MHD_Result send_response(struct MHD_Connection *conn,
                                     struct fakehttp_response *resp)
{
    struct MHD_Response *r = NULL;
    enum MHD_Result ret;
    int status = resp->status ? resp->status : 500;
    int i;

    if (resp->action == FAKEHTTP_DROP) {
        free(resp->body);
        return MHD_NO;
    }
    if (resp->action == FAKEHTTP_TRUNCATE && resp->body_len > 1) {
        struct truncated *t = malloc(sizeof(*t));

        if (!t) {
            free(resp->body);
            return MHD_NO;
        }
        t->body = resp->body;
        t->len = resp->body_len;
        resp->body = NULL;
        r = MHD_create_response_from_callback(t->len, 4096, truncated_read, t,
                                              truncated_free);
    } else {
        r = MHD_create_response_from_buffer(
            resp->body_len, resp->body ? resp->body : (char *)"",
            resp->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
        resp->body = NULL;
    }
    if (!r) {
        return MHD_NO;
    }
    if (resp->body_len > 0 || status != 204) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                resp->content_type ? resp->content_type
                                                   : "application/json");
    }
    for (i = 0; i < resp->nheaders; i++) {
        MHD_add_response_header(r, resp->headers[i].name,
                                resp->headers[i].value);
    }
    ret = MHD_queue_response(conn, (unsigned int)status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    struct fakehttp *srv = cls;
    struct conn_state *st = *con_cls;
    struct fakehttp_request req;
    struct fakehttp_response resp;

    (void)version;
    if (!st) {
        st = calloc(1, sizeof(*st));
        if (!st) {
            return MHD_NO;
        }
        *con_cls = st;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (!st->too_big && body_append(st, upload, *upload_size) < 0) {
            return MHD_NO;
        }
        *upload_size = 0;
        return MHD_YES;
    }

    memset(&resp, 0, sizeof(resp));
    if (st->too_big) {
        fakehttp_reply(&resp, 413,
                       "{\"errors\":[\"http: request body too "
                       "large\"]}\n");
        return send_response(conn, &resp);
    }
    req.method = method;
    req.path = url;
    req.body = st->body ? st->body : "";
    req.body_len = st->len;
    req.conn = conn;
    srv->fn(srv->opaque, &req, &resp);
    return send_response(conn, &resp);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct conn_state *st = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (st) {
        free(st->body);
        free(st);
        *con_cls = NULL;
    }
}

static int parse_listen(const char *listen, struct sockaddr_in *sin,
                        char *errstr, size_t errstr_size)
{
    char host[64];
    const char *colon = strrchr(listen, ':');
    char *end = NULL;
    long port;
    size_t hlen;

    if (!colon || colon == listen) {
        snprintf(errstr, errstr_size, "listen address \"%s\" is not HOST:PORT",
                 listen);
        return -1;
    }
    hlen = (size_t)(colon - listen);
    if (hlen >= sizeof(host)) {
        snprintf(errstr, errstr_size, "listen host too long");
        return -1;
    }
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port < 0 || port > 65535) {
        snprintf(errstr, errstr_size, "bad port in \"%s\"", listen);
        return -1;
    }
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0) {
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
        snprintf(errstr, errstr_size,
                 "listen host \"%s\" is not an IPv4 "
                 "address",
                 host);
        return -1;
    }
    return 0;
}

struct fakehttp *fakehttp_start(const char *listen, fakehttp_handler_fn *fn,
                                void *opaque, char *errstr, size_t errstr_size)
{
    struct fakehttp *srv = NULL;
    struct sockaddr_in sin;
    struct sockaddr_in bound;
    socklen_t blen = sizeof(bound);
    const union MHD_DaemonInfo *info;
    char ip[INET_ADDRSTRLEN];

    if (parse_listen(listen, &sin, errstr, errstr_size) < 0) {
        return NULL;
    }
    srv = calloc(1, sizeof(*srv));
    if (!srv) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    srv->fn = fn;
    srv->opaque = opaque;
    srv->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
            MHD_USE_POLL | MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, &sin,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(errstr, errstr_size, "cannot listen on %s", listen);
        free(srv);
        return NULL;
    }
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_LISTEN_FD);
    if (!info ||
        getsockname(info->listen_fd, (struct sockaddr *)&bound, &blen) < 0) {
        snprintf(errstr, errstr_size, "cannot read the bound address");
        fakehttp_stop(srv);
        return NULL;
    }
    inet_ntop(AF_INET, &bound.sin_addr, ip, sizeof(ip));
    snprintf(srv->address, sizeof(srv->address), "%s:%u", ip,
             (unsigned)ntohs(bound.sin_port));
    return srv;
}

const char *fakehttp_address(const struct fakehttp *srv)
{
    return srv->address;
}

void fakehttp_stop(struct fakehttp *srv)
{
    if (!srv) {
        return;
    }
    MHD_stop_daemon(srv->daemon);
    free(srv);
}

const char *fakehttp_header(const struct fakehttp_request *req,
                            const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *fakehttp_arg(const struct fakehttp_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

void fakehttp_reply_take(struct fakehttp_response *resp, int status, char *body)
{
    free(resp->body);
    resp->status = status;
    resp->body = body;
    resp->body_len = body ? strlen(body) : 0;
}

void fakehttp_reply(struct fakehttp_response *resp, int status, const char *fmt,
                    ...)
{
    va_list ap;
    char *body = NULL;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n >= 0) {
        body = malloc((size_t)n + 1);
    }
    if (body) {
        va_start(ap, fmt);
        vsnprintf(body, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    fakehttp_reply_take(resp, status, body);
}

void fakehttp_add_header(struct fakehttp_response *resp, const char *name,
                         const char *value)
{
    if (resp->nheaders >= FAKEHTTP_MAX_HEADERS) {
        return;
    }
    snprintf(resp->headers[resp->nheaders].name, sizeof(resp->headers[0].name),
             "%s", name);
    snprintf(resp->headers[resp->nheaders].value,
             sizeof(resp->headers[0].value), "%s", value);
    resp->nheaders++;
}

void fakehttp_announce(const char *address)
{
    printf("%s\n", address);
    fflush(stdout);
}

void fakehttp_block_signals(void)
{
    sigset_t set;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

void fakehttp_wait_for_signal(void)
{
    sigset_t set;
    int sig = 0;

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigwait(&set, &sig);
}
