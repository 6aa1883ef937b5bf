/*
 * authentik — the authentik client: its URLs, its headers, and the one
 * request `check-config --connect` makes and waits for. What answers mean
 * is authentikproto.c.
 */
#include "authentik.h"

#include "http.h"
#include "json.h"
#include "log.h"
#include "matcher.h"
#include "secretfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESPONSE (1024 * 1024)

struct akv_authentik {
    struct akv_http *http;
    struct akv_headers *headers;    /* Authorization: Bearer ... (secret) */
    struct akv_credfile token_file; /* authentik.token_file, if set */
    char base[1024];                /* URL without trailing slash */
};

/* The headers every request carries, with \p token. */
static struct akv_headers *build_headers(const char *token)
{
    char bearer[16400];
    struct curl_slist *h;

    snprintf(bearer, sizeof(bearer), "Bearer %s", token);
    h = akv_http_header(NULL, "Authorization", bearer);
    explicit_bzero(bearer, sizeof(bearer));
    h = h ? akv_http_header(h, "Accept", "application/json") : NULL;
    return akv_headers_new(h);
}

enum akv_credfile_change akv_authentik_reload_token(struct akv_authentik *ak,
                                                    int force)
{
    enum akv_credfile_change ch;
    struct akv_headers *h;

    if (!ak->token_file.path) {
        return AKV_CREDFILE_NONE;
    }
    ch = akv_credfile_reload(&ak->token_file, force);
    if (ch != AKV_CREDFILE_CHANGED) {
        return ch;
    }
    h = build_headers(ak->token_file.value);
    if (!h) {
        akv_log_error("authentik", "out of memory: the token read before "
                                   "stays in use");
        return AKV_CREDFILE_FAILED;
    }
    /* Requests under way keep the headers they hold. */
    akv_headers_release(ak->headers);
    ak->headers = h;
    return ch;
}

struct akv_authentik *akv_authentik_new(const struct akv_settings *s,
                                        char *errstr, size_t errstr_size)
{
    struct akv_authentik *ak = calloc(1, sizeof(*ak));
    struct akv_http_opts opts;
    const char *token = s->authentik_token;
    char why[512];
    size_t len;

    if (!ak) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    len = strlen(s->authentik_url);
    while (len > 0 && s->authentik_url[len - 1] == '/') {
        len--;
    }
    if (len >= sizeof(ak->base)) {
        akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                 "authentik.url is too long");
        goto fail;
    }
    memcpy(ak->base, s->authentik_url, len);
    ak->base[len] = '\0';

    memset(&opts, 0, sizeof(opts));
    opts.connect_timeout_ms = (long)s->authentik_connect_timeout_ms;
    opts.timeout_ms = (long)s->authentik_timeout_ms;
    opts.max_response = MAX_RESPONSE;
    opts.user_agent = "ak2vault";
    opts.ca_file = s->authentik_tls_ca_file;
    opts.insecure = s->authentik_tls_skip_verify;
    ak->http = akv_http_new(&opts, errstr, errstr_size);
    if (!ak->http) {
        goto fail;
    }
    if (s->authentik_token_file) {
        /* Read again, not taken from the settings: a client made later
         * (a reconcile's) sees the file as it is now. */
        ak->token_file.path = s->authentik_token_file;
        ak->token_file.setting = "authentik.token_file";
        ak->token_file.component = "authentik";
        if (akv_credfile_refresh(&ak->token_file, 1, why, sizeof(why)) ==
            AKV_CREDFILE_FAILED) {
            akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                     "authentik.token_file: %s", why);
            goto fail;
        }
        token = ak->token_file.value;
    }
    ak->headers = build_headers(token);
    if (!ak->headers) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto fail;
    }
    return ak;

fail:
    akv_authentik_destroy(ak);
    return NULL;
}

void akv_authentik_destroy(struct akv_authentik *ak)
{
    if (!ak) {
        return;
    }
    akv_headers_release(ak->headers);
    akv_credfile_clear(&ak->token_file);
    akv_http_destroy(ak->http);
    free(ak);
}

int akv_authentik_url(const struct akv_authentik *ak, const char *identifier,
                      const char *suffix, char *out, size_t size)
{
    int n;

    /* Only a slug goes into the path unescaped: anything else (".." above
     * all, which would address the token list) is refused here, whatever
     * the caller checked. */
    if (!akv_identifier_valid(identifier)) {
        return -1;
    }
    n = snprintf(out, size, "%s/api/v3/core/tokens/%s/%s", ak->base, identifier,
                 suffix);
    return n < 0 || (size_t)n >= size ? -1 : 0;
}

struct akv_headers *akv_authentik_headers_hold(struct akv_authentik *ak)
{
    return akv_headers_hold(ak->headers);
}

const struct akv_http *akv_authentik_http(const struct akv_authentik *ak)
{
    return ak->http;
}

/* authentik's (Django REST framework's) {"detail": "..."}, one line. */
static void detail_of(const char *body, size_t len, char *out, size_t size)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const char *d = akv_json_string(root, "detail");
    size_t i;

    snprintf(out, size, "%s", d ? d : "");
    for (i = 0; out[i]; i++) {
        if (out[i] == '\n' || out[i] == '\r' || out[i] == '\t') {
            out[i] = ' ';
        }
    }
    cJSON_Delete(root);
}

/*
 * GET {base}/api/v3/core/tokens/?{query}, waiting for the answer: its
 * class, with the status and authentik's "detail" in \p errstr when it is
 * not OK. The caller frees \p resp.
 */
static enum akv_class get_tokens(struct akv_authentik *ak, const char *query,
                                 struct akv_http_response *resp, char *errstr,
                                 size_t errstr_size)
{
    enum akv_class cls;
    char url[1200];
    char detail[256];

    snprintf(url, sizeof(url), "%s/api/v3/core/tokens/?%s", ak->base, query);
    if (akv_http_request(ak->http, "GET", url, akv_headers_list(ak->headers),
                         NULL, 0, resp) != AKV_OK) {
        akv_errf(AKV_ERR_TRANSPORT, errstr, errstr_size,
                 "GET /api/v3/core/tokens/: %s", resp->error);
        return akv_authentik_classify(0, (int)resp->curl_code);
    }
    cls = akv_authentik_classify(resp->status, 0);
    if (cls == AKV_CLASS_GONE) {
        cls = AKV_CLASS_CONFIG; /* no token list at this URL */
    }
    if (cls != AKV_CLASS_OK) {
        detail_of(akv_buf_str(&resp->body), resp->body.len, detail,
                  sizeof(detail));
        akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                 "GET /api/v3/core/tokens/ answered HTTP %ld%s%s", resp->status,
                 detail[0] ? ": " : "", detail);
    }
    return cls;
}

static void not_a_list(const struct akv_http_response *resp, char *errstr,
                       size_t errstr_size)
{
    akv_errf(AKV_ERR_PARSE, errstr, errstr_size,
             "GET /api/v3/core/tokens/ answered HTTP %ld without a "
             "paginated token list (is authentik.url authentik's base "
             "URL?)",
             resp->status);
}

enum akv_class akv_authentik_count_tokens(struct akv_authentik *ak,
                                          long long *count, char *errstr,
                                          size_t errstr_size)
{
    struct akv_http_response resp;
    enum akv_class cls;

    *count = 0;
    cls = get_tokens(ak, "page_size=1", &resp, errstr, errstr_size);
    if (cls == AKV_CLASS_OK &&
        akv_authentik_parse_count(akv_buf_str(&resp.body), resp.body.len,
                                  count) < 0) {
        not_a_list(&resp, errstr, errstr_size);
        cls = AKV_CLASS_CONFIG;
    }
    akv_http_response_free(&resp);
    return cls;
}

enum akv_class akv_authentik_list_tokens(struct akv_authentik *ak,
                                         akv_token_list_fn *fn, void *ctx,
                                         char *errstr, size_t errstr_size)
{
    long long page = 1;
    long long next;
    enum akv_class cls;

    for (;;) {
        struct akv_http_response resp;
        char query[128];

        snprintf(query, sizeof(query),
                 "ordering=identifier&page=%lld&page_size=100", page);
        cls = get_tokens(ak, query, &resp, errstr, errstr_size);
        if (cls == AKV_CLASS_OK &&
            akv_authentik_parse_page(akv_buf_str(&resp.body), resp.body.len, fn,
                                     ctx, &next) < 0) {
            not_a_list(&resp, errstr, errstr_size);
            cls = AKV_CLASS_CONFIG;
        }
        akv_http_response_free(&resp);
        /* A next page that does not move on would never end. */
        if (cls != AKV_CLASS_OK || next <= page) {
            return cls;
        }
        page = next;
    }
}
