/*
 * authentik — token detail and key from authentik's REST API.
 */
#include "authentik.h"

#include "http.h"
#include "json.h"
#include "log.h"
#include "matcher.h"
#include "transport.h"
#include "utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESPONSE (1024 * 1024)

struct akv_authentik {
    struct akv_http *http;
    struct curl_slist *headers; /* Authorization: Bearer ... (secret) */
    char base[1024];            /* URL without trailing slash */
};

struct akv_authentik *akv_authentik_new(const struct akv_settings *s,
                                        char *errstr, size_t errstr_size)
{
    struct akv_authentik *ak = calloc(1, sizeof(*ak));
    struct akv_http_opts opts;
    size_t len;
    char bearer[16400];

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
    snprintf(bearer, sizeof(bearer), "Bearer %s", s->authentik_token);
    ak->headers = akv_http_header(NULL, "Authorization", bearer);
    explicit_bzero(bearer, sizeof(bearer));
    ak->headers =
        ak->headers ? akv_http_header(ak->headers, "Accept", "application/json")
                    : NULL;
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
    akv_http_headers_free(ak->headers);
    akv_http_destroy(ak->http);
    free(ak);
}

enum akv_class akv_authentik_classify(long status, int curl_code)
{
    if (status == 0) {
        return akv_transport_class(curl_code, NULL);
    }
    if (status >= 200 && status < 300) {
        return AKV_CLASS_OK;
    }
    if (status == 404) {
        return AKV_CLASS_GONE;
    }
    if (status == 408 || status == 429 || (status >= 500 && status != 501)) {
        return AKV_CLASS_TRANSIENT;
    }
    /* 401/403 (token or permissions), 400, 501 ...: nothing a retry soon
     * would fix; hold the work until someone fixes the setup. */
    return AKV_CLASS_CONFIG;
}

cJSON *akv_authentik_parse_detail(const char *body, size_t len,
                                  const char *identifier, char *errstr,
                                  size_t errstr_size)
{
    cJSON *root = NULL;
    const char *ident;

    /* A NUL would cut the identifier short and make it compare equal to
     * another one. */
    if (akv_json_has_nul(body, len)) {
        akv_errf(AKV_ERR_PARSE, errstr, errstr_size,
                 "token detail holds a NUL character: refused");
        return NULL;
    }
    root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        akv_errf(AKV_ERR_PARSE, errstr, errstr_size,
                 "token detail is not a JSON object");
        cJSON_Delete(root);
        return NULL;
    }
    ident = akv_json_string(root, "identifier");
    if (!ident || strcmp(ident, identifier) != 0) {
        akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                 "token detail is about another identifier");
        cJSON_Delete(root);
        return NULL;
    }
    if (!akv_json_string(root, "intent")) {
        akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                 "token detail has no intent");
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

char *akv_authentik_parse_key(const char *body, size_t len, char *errstr,
                              size_t errstr_size)
{
    cJSON *root = NULL;
    const char *key;
    char *copy = NULL;

    /* A key Vault would not hold exactly is no key: a NUL would cut it
     * short, bytes that are not UTF-8 would reach Vault as U+FFFD. */
    if (akv_json_has_nul(body, len)) {
        akv_errf(AKV_ERR_PARSE, errstr, errstr_size,
                 "view_key answer holds a NUL character: refused");
        return NULL;
    }
    root = cJSON_ParseWithLength(body, len);
    key = akv_json_string(root, "key");
    if (!key || !*key) {
        akv_errf(AKV_ERR_PARSE, errstr, errstr_size,
                 "view_key answer has no key");
    } else if (!akv_utf8_valid(key)) {
        akv_errf(AKV_ERR_PARSE, errstr, errstr_size,
                 "view_key answer holds a key that is not UTF-8: refused");
    } else {
        copy = strdup(key);
        if (!copy) {
            akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        }
    }
    if (root) {
        /* The tree holds the key too: wipe it before cJSON frees it. */
        akv_json_wipe(root);
        cJSON_Delete(root);
    }
    return copy;
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

const struct curl_slist *akv_authentik_headers(const struct akv_authentik *ak)
{
    return ak->headers;
}

const struct akv_http *akv_authentik_http(const struct akv_authentik *ak)
{
    return ak->http;
}

int akv_authentik_parse_count(const char *body, size_t len, long long *count)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    int rc = -1;

    if (akv_json_int(akv_json_object(root, "pagination"), "count", count) ==
            0 &&
        *count >= 0 && cJSON_IsArray(akv_json_get(root, "results"))) {
        rc = 0;
    }
    /* The results are token objects: no keys, but wipe them anyway. */
    akv_json_wipe(root);
    cJSON_Delete(root);
    return rc;
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

enum akv_class akv_authentik_count_tokens(struct akv_authentik *ak,
                                          long long *count, char *errstr,
                                          size_t errstr_size)
{
    struct akv_http_response resp;
    enum akv_class cls;
    char url[1200];
    char detail[256];

    *count = 0;
    snprintf(url, sizeof(url), "%s/api/v3/core/tokens/?page_size=1", ak->base);
    if (akv_http_request(ak->http, "GET", url, ak->headers, NULL, 0, &resp) !=
        AKV_OK) {
        akv_errf(AKV_ERR_TRANSPORT, errstr, errstr_size,
                 "GET /api/v3/core/tokens/: %s", resp.error);
        cls = akv_authentik_classify(0, (int)resp.curl_code);
        goto out;
    }
    cls = akv_authentik_classify(resp.status, 0);
    if (cls == AKV_CLASS_GONE) {
        cls = AKV_CLASS_CONFIG; /* no token list at this URL */
    }
    if (cls != AKV_CLASS_OK) {
        detail_of(akv_buf_str(&resp.body), resp.body.len, detail,
                  sizeof(detail));
        akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                 "GET /api/v3/core/tokens/ answered HTTP %ld%s%s", resp.status,
                 detail[0] ? ": " : "", detail);
        goto out;
    }
    if (akv_authentik_parse_count(akv_buf_str(&resp.body), resp.body.len,
                                  count) < 0) {
        akv_errf(AKV_ERR_PARSE, errstr, errstr_size,
                 "GET /api/v3/core/tokens/ answered HTTP %ld without a "
                 "paginated token list (is authentik.url authentik's base "
                 "URL?)",
                 resp.status);
        cls = AKV_CLASS_CONFIG;
    }

out:
    akv_http_response_free(&resp);
    return cls;
}
