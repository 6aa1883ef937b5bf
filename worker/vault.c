/*
 * vault — KV version 2 reads and check-and-set writes.
 */
#include "vault.h"

#include "http.h"
#include "json.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RESPONSE (1024 * 1024)
#define PATH_MAX_LEN 2048

struct akv_vault {
    struct akv_http *http;
    struct curl_slist *headers; /* X-Vault-Token (secret) */
    char addr[1024];            /* without trailing slash */
    char *mount;
    char *prefix;
};

struct akv_vault *akv_vault_new(const struct akv_settings *s, char *errstr,
                                size_t errstr_size)
{
    struct akv_vault *v = calloc(1, sizeof(*v));
    struct akv_http_opts opts;
    size_t len;

    if (!v) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    len = strlen(s->vault_addr);
    while (len > 0 && s->vault_addr[len - 1] == '/') {
        len--;
    }
    if (len >= sizeof(v->addr)) {
        akv_errf(AKV_ERR_CONFIG, errstr, errstr_size, "vault.addr is too long");
        goto fail;
    }
    memcpy(v->addr, s->vault_addr, len);
    v->addr[len] = '\0';
    v->mount = strdup(s->vault_kv_mount);
    v->prefix = strdup(s->vault_prefix);

    memset(&opts, 0, sizeof(opts));
    opts.connect_timeout_ms = (long)s->vault_connect_timeout_ms;
    opts.timeout_ms = (long)s->vault_timeout_ms;
    opts.max_response = MAX_RESPONSE;
    opts.user_agent = "ak2vault";
    v->http = akv_http_new(&opts, errstr, errstr_size);
    if (!v->http) {
        goto fail;
    }
    v->headers = akv_http_header(NULL, "X-Vault-Token", s->vault_token);
    v->headers = v->headers
                     ? akv_http_header(v->headers, "X-Vault-Request", "true")
                     : NULL;
    v->headers = v->headers ? akv_http_header(v->headers, "Content-Type",
                                              "application/json")
                            : NULL;
    if (!v->headers || !v->mount || !v->prefix) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto fail;
    }
    return v;

fail:
    akv_vault_destroy(v);
    return NULL;
}

void akv_vault_destroy(struct akv_vault *v)
{
    if (!v) {
        return;
    }
    akv_http_headers_free(v->headers);
    akv_http_destroy(v->http);
    free(v->mount);
    free(v->prefix);
    free(v);
}

/* Appends "/"-separated \p path to \p out at *o, escaping each segment. */
static int append_segments(const char *path, char *out, size_t size, size_t *o)
{
    char seg[512];
    char esc[1536];
    const char *p = path;

    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        size_t elen;

        if (len >= sizeof(seg)) {
            return -1;
        }
        memcpy(seg, p, len);
        seg[len] = '\0';
        if (akv_http_escape(seg, esc, sizeof(esc)) < 0) {
            return -1;
        }
        elen = strlen(esc);
        if (*o + elen + 2 > size) {
            return -1;
        }
        if (*o > 0) {
            out[(*o)++] = '/';
        }
        memcpy(out + *o, esc, elen);
        *o += elen;
        out[*o] = '\0';
        p = slash ? slash + 1 : p + len;
    }
    return 0;
}

int akv_vault_secret_path(const char *mount, const char *kind,
                          const char *prefix, const char *identifier, char *out,
                          size_t size)
{
    size_t o = 0;

    if (size == 0) {
        return -1;
    }
    out[0] = '\0';
    if (append_segments(mount, out, size, &o) ||
        append_segments(kind, out, size, &o) ||
        append_segments(prefix, out, size, &o)) {
        return -1;
    }
    /* The identifier is a single segment even if it held a slash. */
    {
        char esc[1024];
        size_t elen;

        if (akv_http_escape(identifier, esc, sizeof(esc)) < 0) {
            return -1;
        }
        elen = strlen(esc);
        if (o + elen + 2 > size) {
            return -1;
        }
        out[o++] = '/';
        memcpy(out + o, esc, elen + 1);
    }
    return 0;
}

enum akv_class akv_vault_classify(long status, const char *body)
{
    if (status >= 200 && status < 300) {
        return AKV_CLASS_OK;
    }
    if (status == 0) {
        return AKV_CLASS_TRANSIENT;
    }
    if (status == 400) {
        if (strstr(body, "check-and-set parameter did not match")) {
            return AKV_CLASS_SUPERSEDED;
        }
        /* A KV mount upgrading from v1 answers 400 for a short while. */
        if (strstr(body, "Upgrading from non-versioned to versioned") ||
            strstr(body, "Waiting for the primary to upgrade")) {
            return AKV_CLASS_TRANSIENT;
        }
        return AKV_CLASS_CONFIG;
    }
    if (status == 403) {
        return strstr(body, "invalid token") ? AKV_CLASS_REAUTH
                                             : AKV_CLASS_CONFIG;
    }
    /* 307: a standby that could not forward; 412: index not yet present;
     * 429: rate limited; 5xx: sealed, overloaded, failover. */
    if (status == 307 || status == 412 || status == 429 ||
        (status >= 500 && status != 501)) {
        return AKV_CLASS_TRANSIENT;
    }
    return AKV_CLASS_CONFIG;
}

/* First entry of {"errors":[...]} for messages, "" if none. Vault error
 * strings never carry secret values. */
static void first_error(const char *body, size_t len, char *out, size_t size)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *errors = akv_json_get(root, "errors");
    const cJSON *first =
        cJSON_IsArray(errors) ? cJSON_GetArrayItem(errors, 0) : NULL;

    snprintf(out, size, "%s", cJSON_IsString(first) ? first->valuestring : "");
    cJSON_Delete(root);
}

enum akv_class akv_vault_parse_read(long status, const char *body, size_t len,
                                    struct akv_vault_secret *out, char *errstr,
                                    size_t errstr_size)
{
    cJSON *root = NULL;
    const cJSON *data;
    const cJSON *errors;
    long long version = 0;
    enum akv_class cls = AKV_CLASS_OK;
    char msg[256];

    out->version = 0;
    out->data = NULL;
    if (status != 200 && status != 404) {
        cls = akv_vault_classify(status, body);
        first_error(body, len, msg, sizeof(msg));
        akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                 "vault read answered HTTP %ld: %s", status, msg);
        return cls == AKV_CLASS_OK ? AKV_CLASS_TRANSIENT : cls;
    }
    root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        akv_errf(AKV_ERR_PARSE, errstr, errstr_size,
                 "vault read answered HTTP %ld with a body that is not "
                 "JSON",
                 status);
        cls = AKV_CLASS_TRANSIENT;
        goto out;
    }
    data = akv_json_object(root, "data");
    if (data && akv_json_int(akv_json_object(data, "metadata"), "version",
                             &version) == 0) {
        /* 200: a live version; 404 with metadata: the current version is
         * deleted or destroyed, and a write must CAS against it. */
        const cJSON *d = akv_json_get(data, "data");

        out->version = version;
        if (status == 200 && cJSON_IsObject(d)) {
            out->data = cJSON_Duplicate(d, 1);
            if (!out->data) {
                cls = AKV_CLASS_TRANSIENT;
            }
        }
        goto out;
    }
    errors = akv_json_get(root, "errors");
    if (status == 404 && cJSON_IsArray(errors) &&
        cJSON_GetArraySize(errors) == 0) {
        goto out; /* never written */
    }
    /* A 404 naming a route, or with warnings: wrong mount or not KV v2. */
    first_error(body, len, msg, sizeof(msg));
    akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
             "vault read answered HTTP %ld: %s", status,
             msg[0] ? msg : "not a KV version 2 secret path");
    cls = status == 404 ? AKV_CLASS_CONFIG : AKV_CLASS_TRANSIENT;

out:
    if (root) {
        akv_json_wipe(root);
        cJSON_Delete(root);
    }
    return cls;
}

char *akv_vault_write_body(const cJSON *data, long long cas)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *options = cJSON_AddObjectToObject(root, "options");
    cJSON *copy = cJSON_Duplicate(data, 1);
    char *body = NULL;

    if (!root || !options || !copy ||
        !cJSON_AddNumberToObject(options, "cas", (double)cas)) {
        cJSON_Delete(copy);
        goto out;
    }
    cJSON_AddItemToObject(root, "data", copy);
    body = akv_json_print(root);

out:
    akv_json_wipe(root);
    cJSON_Delete(root);
    return body;
}

static enum akv_class request(struct akv_vault *v, const char *method,
                              const char *identifier, const char *body,
                              struct akv_http_response *resp, char *errstr,
                              size_t errstr_size)
{
    char path[PATH_MAX_LEN];
    char url[PATH_MAX_LEN + 1100];

    if (akv_vault_secret_path(v->mount, "data", v->prefix, identifier, path,
                              sizeof(path)) < 0) {
        memset(resp, 0, sizeof(*resp));
        akv_errf(AKV_ERR_INVALID, errstr, errstr_size, "vault path too long");
        return AKV_CLASS_POISON;
    }
    snprintf(url, sizeof(url), "%s/v1/%s", v->addr, path);
    if (akv_http_request(v->http, method, url, v->headers, body,
                         body ? strlen(body) : 0, resp) != AKV_OK) {
        akv_errf(AKV_ERR_TRANSPORT, errstr, errstr_size, "vault %s: %s", method,
                 resp->error);
        return AKV_CLASS_TRANSIENT;
    }
    return AKV_CLASS_OK;
}

enum akv_class akv_vault_read(struct akv_vault *v, const char *identifier,
                              struct akv_vault_secret *out, char *errstr,
                              size_t errstr_size)
{
    struct akv_http_response resp;
    enum akv_class cls;

    out->version = 0;
    out->data = NULL;
    cls = request(v, "GET", identifier, NULL, &resp, errstr, errstr_size);
    if (cls == AKV_CLASS_OK) {
        cls = akv_vault_parse_read(resp.status, akv_buf_str(&resp.body),
                                   resp.body.len, out, errstr, errstr_size);
    }
    akv_http_response_free(&resp);
    return cls;
}

enum akv_class akv_vault_write(struct akv_vault *v, const char *identifier,
                               const cJSON *data, long long cas,
                               long long *version, char *errstr,
                               size_t errstr_size)
{
    struct akv_http_response resp;
    enum akv_class cls;
    char *body = akv_vault_write_body(data, cas);
    cJSON *root = NULL;
    char msg[256];

    if (!body) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return AKV_CLASS_TRANSIENT;
    }
    cls = request(v, "POST", identifier, body, &resp, errstr, errstr_size);
    akv_json_free_string(body);
    if (cls != AKV_CLASS_OK) {
        akv_http_response_free(&resp);
        return cls;
    }
    cls = akv_vault_classify(resp.status, akv_buf_str(&resp.body));
    if (cls != AKV_CLASS_OK) {
        first_error(akv_buf_str(&resp.body), resp.body.len, msg, sizeof(msg));
        akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                 "vault write answered HTTP %ld: %s", resp.status, msg);
        goto out;
    }
    root = cJSON_ParseWithLength(akv_buf_str(&resp.body), resp.body.len);
    if (akv_json_int(akv_json_object(root, "data"), "version", version)) {
        /* Written, but we cannot tell which version: still done. */
        *version = 0;
    }

out:
    cJSON_Delete(root);
    akv_http_response_free(&resp);
    return cls;
}

void akv_vault_secret_free(struct akv_vault_secret *s)
{
    if (s->data) {
        akv_json_wipe(s->data);
        cJSON_Delete(s->data);
    }
    s->data = NULL;
    s->version = 0;
}
