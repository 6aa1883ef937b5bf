/*
 * fakehttp — libmicrohttpd glue shared by the HTTP stand-ins.
 */
#include "fakehttp.h"

#include "buf.h"
#include "num.h"
#include "wipe.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <gnutls/gnutls.h>
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

/* Largest PEM file fakehttp_start_tls() reads. */
#define PEM_MAX (1024u * 1024u)

/*
 * GnuTLS entry points for the client-certificate check. With a trust list
 * libmicrohttpd only *requests* a client certificate (GNUTLS_CERT_REQUEST)
 * and leaves verifying it to the application. The stand-ins link
 * libmicrohttpd alone (gnutls is only its private dependency), so these are
 * looked up in the libgnutls libmicrohttpd already loaded rather than
 * linked; the types still come from <gnutls/gnutls.h>.
 */
typedef int(verify_peers_fn)(gnutls_session_t session, unsigned int *status);
typedef int(alert_send_fn)(gnutls_session_t session, gnutls_alert_level_t level,
                           gnutls_alert_description_t desc);

struct fakehttp {
    struct MHD_Daemon *daemon;
    fakehttp_handler_fn *fn;
    void *opaque;
    char address[64];
    /* TLS only; libmicrohttpd keeps pointers to these, so they live as long
     * as the daemon. */
    char *tls_cert;
    char *tls_key;
    char *tls_trust;
    verify_peers_fn *verify_peers; /* set: client certificates required */
    alert_send_fn *alert_send;
};

/* Per-request state: the body collected so far (wiped when freed: bodies
 * carry token keys and secrets). */
struct conn_state {
    struct akv_buf body;
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
    akv_err_t err = akv_buf_append(&st->body, data, len);

    if (err == AKV_ERR_TOOBIG) {
        st->too_big = 1;
        return 0;
    }
    return err == AKV_OK ? 0 : -1;
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
    /* "" is no Content-Type at all */
    if ((resp->body_len > 0 || status != 204) &&
        !(resp->content_type && !*resp->content_type)) {
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

/*
 * With a client CA, a request is served only over a connection whose client
 * presented a certificate that verifies against it. Vault's listener does
 * the same check in its handshake; here the handshake has already succeeded
 * (libmicrohttpd cannot make the certificate mandatory), so the closest
 * equivalent is a fatal TLS alert and a closed connection before anything
 * is answered: the client sees the same alert a real Vault sends.
 * @returns 1 to serve the request.
 */
static int client_cert_ok(const struct fakehttp *srv,
                          struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci;
    gnutls_session_t session;
    unsigned int status = 0;
    int rc;

    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    if (!ci || !ci->tls_session) {
        fprintf(stderr, "fakehttp: no TLS session to check a client "
                        "certificate on; connection closed\n");
        return 0;
    }
    session = ci->tls_session;
    rc = srv->verify_peers(session, &status);
    if (rc == GNUTLS_E_SUCCESS && status == 0) {
        return 1;
    }
    if (rc == GNUTLS_E_NO_CERTIFICATE_FOUND) {
        fprintf(stderr, "fakehttp: TLS client sent no certificate; "
                        "connection closed\n");
        srv->alert_send(session, GNUTLS_AL_FATAL,
                        GNUTLS_A_CERTIFICATE_REQUIRED);
    } else {
        fprintf(stderr,
                "fakehttp: TLS client certificate does not verify "
                "against the client CA (gnutls %d, status 0x%x); "
                "connection closed\n",
                rc, status);
        srv->alert_send(session, GNUTLS_AL_FATAL, GNUTLS_A_BAD_CERTIFICATE);
    }
    return 0;
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
        if (srv->verify_peers && !client_cert_ok(srv, conn)) {
            return MHD_NO;
        }
        st = calloc(1, sizeof(*st));
        if (!st) {
            return MHD_NO;
        }
        /* with its terminator, a body is less than FAKEHTTP_MAX_BODY */
        akv_buf_init(&st->body, FAKEHTTP_MAX_BODY - 1);
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
    req.body = akv_buf_str(&st->body);
    req.body_len = st->body.len;
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
        akv_buf_free(&st->body);
        free(st);
        *con_cls = NULL;
    }
}

static int parse_listen(const char *listen, struct sockaddr_in *sin,
                        char *errstr, size_t errstr_size)
{
    char host[64];
    const char *colon = strrchr(listen, ':');
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
    if (akv_parse_long(colon + 1, 0, 65535, &port) < 0) {
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

/*
 * Reads a whole PEM file (\p what names it in messages).
 * @returns a NUL-terminated heap copy, or NULL with a message that names
 *          the file but never quotes it (it may hold a private key).
 */
static char *read_pem(const char *path, const char *what, char *errstr,
                      size_t errstr_size)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0;
    size_t n;

    if (!f) {
        snprintf(errstr, errstr_size, "cannot open the %s %s: %s", what, path,
                 strerror(errno));
        return NULL;
    }
    buf = malloc(PEM_MAX + 1);
    if (!buf) {
        snprintf(errstr, errstr_size, "out of memory");
        fclose(f);
        return NULL;
    }
    while ((n = fread(buf + len, 1, PEM_MAX + 1 - len, f)) > 0) {
        len += n;
        if (len > PEM_MAX) {
            break;
        }
    }
    if (ferror(f) || len > PEM_MAX) {
        snprintf(errstr, errstr_size, "cannot read the %s %s: %s", what, path,
                 ferror(f) ? strerror(errno) : "larger than 1 MiB");
        explicit_bzero(buf, len);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[len] = '\0';
    if (!strstr(buf, "-----BEGIN ")) {
        snprintf(errstr, errstr_size, "the %s %s is not PEM", what, path);
        explicit_bzero(buf, len);
        free(buf);
        return NULL;
    }
    return buf;
}

static void free_tls(struct fakehttp *srv)
{
    free(srv->tls_cert);
    akv_wipe_free(srv->tls_key);
    free(srv->tls_trust);
    srv->tls_cert = srv->tls_key = srv->tls_trust = NULL;
}

/* Finds the GnuTLS functions of the client-certificate check. */
static int load_gnutls(struct fakehttp *srv, char *errstr, size_t errstr_size)
{
    void *self = dlopen(NULL, RTLD_LAZY);
    void *verify =
        self ? dlsym(self, "gnutls_certificate_verify_peers2") : NULL;
    void *alert = self ? dlsym(self, "gnutls_alert_send") : NULL;

    if (!verify || !alert) {
        snprintf(errstr, errstr_size,
                 "client certificates: GnuTLS functions not found in the "
                 "loaded libmicrohttpd/libgnutls");
        return -1;
    }
    /* Object pointer to function pointer: memcpy, as ISO C has no cast. */
    memcpy(&srv->verify_peers, &verify, sizeof(verify));
    memcpy(&srv->alert_send, &alert, sizeof(alert));
    return 0;
}

/* Reads the PEM files and fills the libmicrohttpd TLS options. */
static int setup_tls(struct fakehttp *srv, const struct fakehttp_tls *tls,
                     struct MHD_OptionItem *ops, int *nops, char *errstr,
                     size_t errstr_size)
{
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(errstr, errstr_size,
                 "HTTPS requested, but this libmicrohttpd was built without "
                 "TLS support (MHD_FEATURE_TLS)");
        return -1;
    }
    if (!tls->cert_file || !tls->key_file) {
        snprintf(errstr, errstr_size,
                 "HTTPS needs both a certificate and a key file");
        return -1;
    }
    srv->tls_cert =
        read_pem(tls->cert_file, "TLS certificate", errstr, errstr_size);
    if (!srv->tls_cert) {
        return -1;
    }
    srv->tls_key = read_pem(tls->key_file, "TLS key", errstr, errstr_size);
    if (!srv->tls_key) {
        return -1;
    }
    ops[(*nops)++] =
        (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, srv->tls_cert};
    ops[(*nops)++] =
        (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, srv->tls_key};
    if (tls->client_ca_file) {
        srv->tls_trust =
            read_pem(tls->client_ca_file, "TLS client CA", errstr, errstr_size);
        if (!srv->tls_trust || load_gnutls(srv, errstr, errstr_size) < 0) {
            return -1;
        }
        ops[(*nops)++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0,
                                                 srv->tls_trust};
    }
    return 0;
}

int fakehttp_listen_ok(const char *listen)
{
    struct sockaddr_in sin;
    char err[160];

    return parse_listen(listen, &sin, err, sizeof(err));
}

struct fakehttp *fakehttp_start(const char *listen, fakehttp_handler_fn *fn,
                                void *opaque, char *errstr, size_t errstr_size)
{
    return fakehttp_start_tls(listen, NULL, fn, opaque, errstr, errstr_size);
}

struct fakehttp *fakehttp_start_tls(const char *listen,
                                    const struct fakehttp_tls *tls,
                                    fakehttp_handler_fn *fn, void *opaque,
                                    char *errstr, size_t errstr_size)
{
    struct fakehttp *srv = NULL;
    struct sockaddr_in sin;
    struct sockaddr_in bound;
    socklen_t blen = sizeof(bound);
    const union MHD_DaemonInfo *info;
    char ip[INET_ADDRSTRLEN];
    struct MHD_OptionItem ops[4];
    int nops = 0;
    unsigned int flags = MHD_USE_THREAD_PER_CONNECTION |
                         MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                         MHD_USE_ERROR_LOG;

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
    if (tls) {
        if (setup_tls(srv, tls, ops, &nops, errstr, errstr_size) < 0) {
            free_tls(srv);
            free(srv);
            return NULL;
        }
        flags |= MHD_USE_TLS;
    }
    ops[nops] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    srv->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, &sin,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024, MHD_OPTION_ARRAY,
        ops, MHD_OPTION_END);
    if (!srv->daemon) {
        if (tls) {
            /* libmicrohttpd has logged GnuTLS's reason to stderr. */
            snprintf(errstr, errstr_size,
                     "cannot serve HTTPS on %s (is %s with %s a PEM "
                     "certificate and its key?)",
                     listen, tls->cert_file, tls->key_file);
        } else {
            snprintf(errstr, errstr_size, "cannot listen on %s", listen);
        }
        free_tls(srv);
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
    free_tls(srv);
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

int fakehttp_from_loopback(const struct fakehttp_request *req)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;

    if (!sa) {
        return 0;
    }
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const void *)sa;

        return (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const void *)sa;

        return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
    }
    return 0;
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
