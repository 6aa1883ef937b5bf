/*
 * http — a reused libcurl easy handle with bounded response bodies.
 */
#include "http.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct akv_http {
    CURL *curl;
    struct akv_http_opts opts;
    /* Owned copies of the option strings. */
    char *user_agent;
    char *ca_file;
    char *ca_path;
    char *client_cert;
    char *client_key;
    char *server_name;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct akv_http_xfer *t = userp;
    size_t n = size * nmemb;

    if (akv_buf_append(&t->resp->body, data, n) != AKV_OK) {
        t->too_big = 1;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userp)
{
    struct akv_http_xfer *t = userp;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    size_t nlen = sizeof(name) - 1;

    if (n > nlen && strncasecmp(data, name, nlen) == 0) {
        const char *v = data + nlen;
        size_t vlen = n - nlen;

        while (vlen > 0 && isspace((unsigned char)*v)) {
            v++;
            vlen--;
        }
        while (vlen > 0 && isspace((unsigned char)v[vlen - 1])) {
            vlen--;
        }
        if (vlen >= sizeof(t->resp->retry_after)) {
            vlen = sizeof(t->resp->retry_after) - 1;
        }
        memcpy(t->resp->retry_after, v, vlen);
        t->resp->retry_after[vlen] = '\0';
    }
    return n;
}

static int dup_opt(char **dst, const char *src)
{
    *dst = NULL;
    if (!src || !*src) {
        return 0;
    }
    *dst = strdup(src);
    return *dst ? 0 : -1;
}

struct akv_http *akv_http_new(const struct akv_http_opts *opts, char *errstr,
                              size_t errstr_size)
{
    struct akv_http *http = calloc(1, sizeof(*http));

    if (!http) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    http->opts = *opts;
    if (dup_opt(&http->user_agent, opts->user_agent) ||
        dup_opt(&http->ca_file, opts->ca_file) ||
        dup_opt(&http->ca_path, opts->ca_path) ||
        dup_opt(&http->client_cert, opts->client_cert) ||
        dup_opt(&http->client_key, opts->client_key) ||
        dup_opt(&http->server_name, opts->server_name)) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        akv_http_destroy(http);
        return NULL;
    }
    http->curl = curl_easy_init();
    if (!http->curl) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size,
                 "cannot create a libcurl handle");
        akv_http_destroy(http);
        return NULL;
    }
    return http;
}

void akv_http_destroy(struct akv_http *http)
{
    if (!http) {
        return;
    }
    if (http->curl) {
        curl_easy_cleanup(http->curl);
    }
    free(http->user_agent);
    free(http->ca_file);
    free(http->ca_path);
    free(http->client_cert);
    free(http->client_key);
    free(http->server_name);
    free(http);
}

/* Applies the per-client options; called before every transfer because
 * curl_easy_reset() is not used (it would drop the connection cache). */
static void apply_opts(const struct akv_http *http, CURL *curl)
{
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                     http->opts.connect_timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, http->opts.timeout_ms);
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_USERAGENT, http->user_agent);
    if (http->ca_file) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, http->ca_file);
    }
    if (http->ca_path) {
        curl_easy_setopt(curl, CURLOPT_CAPATH, http->ca_path);
    }
    if (http->client_cert) {
        curl_easy_setopt(curl, CURLOPT_SSLCERT, http->client_cert);
    }
    if (http->client_key) {
        curl_easy_setopt(curl, CURLOPT_SSLKEY, http->client_key);
    }
    if (http->opts.insecure) {
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
}

/*
 * With a server name, connect to the URL's host but speak TLS (SNI and
 * certificate verification) as \p server_name: the URL is rewritten to the
 * name and CURLOPT_CONNECT_TO maps it back to the real host and port.
 */
static akv_err_t apply_server_name(const struct akv_http *http, const char *url,
                                   struct curl_slist **connect_to,
                                   char **rewritten, char *err, size_t err_size)
{
    CURLU *u = curl_url();
    char *host = NULL;
    char *port = NULL;
    char map[1024];
    akv_err_t rc = AKV_ERR_INVALID;

    *connect_to = NULL;
    *rewritten = NULL;
    if (!u) {
        return AKV_ERR_NOMEM;
    }
    if (curl_url_set(u, CURLUPART_URL, url, 0) ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ||
        curl_url_set(u, CURLUPART_HOST, http->server_name, 0) ||
        curl_url_get(u, CURLUPART_URL, rewritten, 0)) {
        snprintf(err, err_size, "cannot apply the TLS server name");
        goto out;
    }
    snprintf(map, sizeof(map), "%s:%s:%s:%s", http->server_name, port, host,
             port);
    *connect_to = curl_slist_append(NULL, map);
    rc = *connect_to ? AKV_OK : AKV_ERR_NOMEM;

out:
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

akv_err_t akv_http_xfer_setup(const struct akv_http *http, CURL *curl,
                              struct akv_http_xfer *x, const char *method,
                              const char *url, const struct curl_slist *headers,
                              const char *body, size_t body_len,
                              struct akv_http_response *resp)
{
    akv_err_t err;

    memset(resp, 0, sizeof(*resp));
    akv_buf_init(&resp->body, http->opts.max_response);
    x->curl = curl;
    x->resp = resp;
    x->too_big = 0;
    x->connect_to = NULL;
    x->rewritten = NULL;
    x->max_response = http->opts.max_response;

    apply_opts(http, curl);
    if (http->server_name) {
        err = apply_server_name(http, url, &x->connect_to, &x->rewritten,
                                resp->error, sizeof(resp->error));
        if (err) {
            resp->curl_code = CURLE_URL_MALFORMAT;
            return err;
        }
        url = x->rewritten;
    }
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CONNECT_TO, x->connect_to);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, NULL);
    curl_easy_setopt(curl, CURLOPT_NOBODY, 0L);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(curl, CURLOPT_POST, 1L);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)(body ? body_len : 0));
        if (strcmp(method, "POST") != 0) {
            curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
        }
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, resp->error);
    return AKV_OK;
}

akv_err_t akv_http_xfer_finish(struct akv_http_xfer *x, CURLcode rc)
{
    CURL *curl = x->curl;
    struct akv_http_response *resp = x->resp;

    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(curl, CURLOPT_CONNECT_TO, NULL);
    curl_slist_free_all(x->connect_to);
    curl_free(x->rewritten);
    x->connect_to = NULL;
    x->rewritten = NULL;
    resp->curl_code = rc;
    if (x->too_big) {
        snprintf(resp->error, sizeof(resp->error),
                 "response body larger than %zu bytes", x->max_response);
        return AKV_ERR_TOOBIG;
    }
    if (rc != CURLE_OK) {
        if (!resp->error[0]) {
            snprintf(resp->error, sizeof(resp->error), "%s",
                     curl_easy_strerror(rc));
        }
        resp->status = 0;
        return AKV_ERR_TRANSPORT;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp->status);
    return AKV_OK;
}

akv_err_t akv_http_request(struct akv_http *http, const char *method,
                           const char *url, const struct curl_slist *headers,
                           const char *body, size_t body_len,
                           struct akv_http_response *resp)
{
    struct akv_http_xfer x;
    akv_err_t err;

    err = akv_http_xfer_setup(http, http->curl, &x, method, url, headers, body,
                              body_len, resp);
    if (err) {
        return err;
    }
    return akv_http_xfer_finish(&x, curl_easy_perform(http->curl));
}

void akv_http_response_free(struct akv_http_response *resp)
{
    akv_buf_free(&resp->body);
}

struct curl_slist *akv_http_header(struct curl_slist *list, const char *name,
                                   const char *value)
{
    struct akv_buf line;
    struct curl_slist *next;

    akv_buf_init(&line, 16384);
    if (akv_buf_puts(&line, name) || akv_buf_puts(&line, ": ") ||
        akv_buf_puts(&line, value)) {
        akv_buf_free(&line);
        akv_http_headers_free(list);
        return NULL;
    }
    next = curl_slist_append(list, line.data);
    akv_buf_free(&line);
    if (!next) {
        akv_http_headers_free(list);
        return NULL;
    }
    return next;
}

void akv_http_headers_free(struct curl_slist *list)
{
    struct curl_slist *h;

    for (h = list; h; h = h->next) {
        if (h->data) {
            explicit_bzero(h->data, strlen(h->data));
        }
    }
    curl_slist_free_all(list);
}

struct akv_headers {
    struct curl_slist *list;
    unsigned refs;
};

struct akv_headers *akv_headers_new(struct curl_slist *list)
{
    struct akv_headers *h = list ? calloc(1, sizeof(*h)) : NULL;

    if (!h) {
        akv_http_headers_free(list);
        return NULL;
    }
    h->list = list;
    h->refs = 1;
    return h;
}

struct akv_headers *akv_headers_hold(struct akv_headers *h)
{
    if (h) {
        h->refs++;
    }
    return h;
}

const struct curl_slist *akv_headers_list(const struct akv_headers *h)
{
    return h->list;
}

void akv_headers_release(struct akv_headers *h)
{
    if (h && --h->refs == 0) {
        akv_http_headers_free(h->list);
        free(h);
    }
}

int akv_http_escape(const char *in, char *out, size_t out_size)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (; *in; in++) {
        unsigned char c = (unsigned char)*in;

        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            if (o + 1 >= out_size) {
                return -1;
            }
            out[o++] = (char)c;
        } else {
            if (o + 3 >= out_size) {
                return -1;
            }
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 0xf];
        }
    }
    if (o >= out_size) {
        return -1;
    }
    out[o] = '\0';
    return 0;
}
