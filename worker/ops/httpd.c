/*
 * httpd — /metrics, /livez and /readyz over libmicrohttpd.
 */
#include "httpd.h"

#include "buf.h"
#include "log.h"

#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A scrape is a few hundred KiB at most; anything bigger is a bug. */
#define METRICS_MAX_BYTES (16u << 20)
#define CONNECTION_LIMIT  64
#define IDLE_TIMEOUT_S    30

struct akv_httpd {
    struct MHD_Daemon *d;
    struct akv_telemetry *t;
    long long live_timeout_ms;
    unsigned port;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
                             const char *type, const char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (!r) {
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result text(struct MHD_Connection *conn, unsigned status,
                            const char *msg)
{
    char body[512];
    int n = snprintf(body, sizeof(body), "%s\n", msg);

    return reply(conn, status, "text/plain; charset=utf-8", body,
                 n < (int)sizeof(body) ? (size_t)n : sizeof(body) - 1);
}

static enum MHD_Result metrics(struct akv_httpd *h, struct MHD_Connection *conn)
{
    struct akv_buf out;
    enum MHD_Result ret;

    akv_buf_init(&out, METRICS_MAX_BYTES);
    if (akv_metrics_render(h->t->reg, &out) != AKV_OK) {
        akv_buf_free(&out);
        return text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                    "metrics could not be rendered");
    }
    ret = reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8",
                akv_buf_str(&out), out.len);
    akv_buf_free(&out);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    struct akv_httpd *h = cls;
    char msg[300];

    (void)version;
    (void)upload;
    /* The first call only announces the headers; answer on the second,
     * once any (ignored) request body is consumed. */
    if (!*state) {
        *state = h;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
        strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD");
    }
    if (strcmp(url, "/metrics") == 0) {
        return metrics(h, conn);
    }
    if (strcmp(url, "/livez") == 0) {
        int ok = akv_telemetry_live(h->t, h->live_timeout_ms, msg, sizeof(msg));

        return text(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, msg);
    }
    if (strcmp(url, "/readyz") == 0) {
        int ok = akv_telemetry_ready(h->t, msg, sizeof(msg));

        return text(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, msg);
    }
    if (strcmp(url, "/") == 0) {
        return text(conn, MHD_HTTP_OK, "ak2vault: /metrics /livez /readyz");
    }
    return text(conn, MHD_HTTP_NOT_FOUND, "not found");
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    akv_log_warn("http", "%s", line);
}

struct akv_httpd *akv_httpd_start(const char *listen, struct akv_telemetry *t,
                                  long long live_timeout_ms, char *errstr,
                                  size_t errstr_size)
{
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct akv_httpd *h;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *info;

    if (akv_listen_parse(listen, &addr, &addrlen, errstr, errstr_size) !=
        AKV_OK) {
        return NULL;
    }
    h = calloc(1, sizeof(*h));
    if (!h) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    h->t = t;
    h->live_timeout_ms = live_timeout_ms;
    if (addr.ss_family == AF_INET6) {
        flags |= MHD_USE_IPv6;
    }
    /* The logger first, so that MHD says nothing on stderr by itself. */
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
        on_mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)CONNECTION_LIMIT,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)IDLE_TIMEOUT_S,
        MHD_OPTION_END);
    if (!h->d) {
        akv_errf(AKV_ERR_IO, errstr, errstr_size,
                 "cannot listen on %s for /metrics (address in use?)", listen);
        free(h);
        return NULL;
    }
    info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    return h;
}

unsigned akv_httpd_port(const struct akv_httpd *h)
{
    return h ? h->port : 0;
}

void akv_httpd_stop(struct akv_httpd *h)
{
    if (!h) {
        return;
    }
    MHD_stop_daemon(h->d);
    free(h);
}
