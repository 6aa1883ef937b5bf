/*
 * vault — authentication, KV version 2 reads, check-and-set writes,
 * provenance and deletes.
 */
#include "vault.h"

#include "clock.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "transport.h"
#include "wipe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_RESPONSE (1024 * 1024)
#define PATH_MAX_LEN 2048
#define SECRET_MAX   16384

enum auth_method { AUTH_TOKEN, AUTH_KUBERNETES, AUTH_APPROLE };

struct akv_vault {
    const struct akv_settings *settings;
    struct akv_http *http;
    enum auth_method method;
    char addr[1024];                   /* without trailing slash */
    char auth_mount[256];              /* kubernetes / approle mount */
    char *token;                       /* current token (secret), or NULL */
    struct akv_vault_headers *headers; /* with X-Vault-Token (secret) */
    struct akv_vault_headers *anon;    /* without a token, for logins */
    unsigned long generation;          /* counts tokens installed */
    struct akv_vault_lease lease;
};

/* A header list and the requests that hold it: libcurl reads the list
 * while a transfer runs, so a new token cannot free it under them. */
struct akv_vault_headers {
    struct curl_slist *list;
    unsigned refs;
};

/* Headers every request carries; the token only when \p token is set. */
static struct akv_vault_headers *build_headers(const struct akv_settings *s,
                                               const char *token)
{
    struct akv_vault_headers *vh = calloc(1, sizeof(*vh));
    struct curl_slist *h = akv_http_header(NULL, "X-Vault-Request", "true");

    h = h ? akv_http_header(h, "Content-Type", "application/json") : NULL;
    if (h && s->vault_namespace && *s->vault_namespace) {
        h = akv_http_header(h, "X-Vault-Namespace", s->vault_namespace);
    }
    if (h && token) {
        h = akv_http_header(h, "X-Vault-Token", token);
    }
    if (!vh || !h) {
        akv_http_headers_free(h);
        free(vh);
        return NULL;
    }
    vh->list = h;
    vh->refs = 1;
    return vh;
}

struct akv_vault_headers *akv_vault_headers_hold(struct akv_vault *v)
{
    if (!v->headers) {
        return NULL;
    }
    v->headers->refs++;
    return v->headers;
}

const struct curl_slist *
akv_vault_headers_list(const struct akv_vault_headers *h)
{
    return h->list;
}

void akv_vault_headers_release(struct akv_vault_headers *h)
{
    if (h && --h->refs == 0) {
        akv_http_headers_free(h->list); /* wipes the token */
        free(h);
    }
}

unsigned long akv_vault_token_generation(const struct akv_vault *v)
{
    return v->generation;
}

/* Installs a new token (taking ownership), registering it with the log
 * scrubber and forgetting the old one. */
static int set_token(struct akv_vault *v, char *token)
{
    struct akv_vault_headers *h = build_headers(v->settings, token);

    if (!h || akv_log_secret_add(token) < 0) {
        akv_vault_headers_release(h);
        akv_wipe_free(token);
        return -1;
    }
    if (v->token) {
        akv_log_secret_remove(v->token);
        akv_wipe_free(v->token);
    }
    akv_vault_headers_release(v->headers);
    v->token = token;
    v->headers = h;
    v->generation++;
    return 0;
}

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
    v->settings = s;
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
    if (strcmp(s->vault_auth_method, "kubernetes") == 0) {
        v->method = AUTH_KUBERNETES;
    } else if (strcmp(s->vault_auth_method, "approle") == 0) {
        v->method = AUTH_APPROLE;
    } else {
        v->method = AUTH_TOKEN;
    }
    snprintf(v->auth_mount, sizeof(v->auth_mount), "%s",
             s->vault_auth_mount && *s->vault_auth_mount
                 ? s->vault_auth_mount
                 : s->vault_auth_method);

    memset(&opts, 0, sizeof(opts));
    opts.connect_timeout_ms = (long)s->vault_connect_timeout_ms;
    opts.timeout_ms = (long)s->vault_timeout_ms;
    opts.max_response = MAX_RESPONSE;
    opts.user_agent = "ak2vault";
    opts.ca_file = s->vault_tls_ca_file;
    opts.ca_path = s->vault_tls_ca_path;
    opts.client_cert = s->vault_tls_client_cert;
    opts.client_key = s->vault_tls_client_key;
    opts.server_name = s->vault_tls_server_name;
    opts.insecure = s->vault_tls_skip_verify;
    v->http = akv_http_new(&opts, errstr, errstr_size);
    if (!v->http) {
        goto fail;
    }
    v->anon = build_headers(s, NULL);
    if (!v->anon) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (v->method == AUTH_TOKEN) {
        char *copy = strdup(s->vault_token);

        if (!copy || set_token(v, copy) < 0) {
            akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
            goto fail;
        }
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
    if (v->token) {
        akv_log_secret_remove(v->token);
        akv_wipe_free(v->token);
    }
    akv_vault_headers_release(v->headers);
    akv_vault_headers_release(v->anon);
    akv_http_destroy(v->http);
    free(v);
}

int akv_vault_url(const struct akv_vault *v, const char *kind,
                  const char *identifier, char *out, size_t size)
{
    char path[PATH_MAX_LEN];

    if (akv_vault_secret_path(v->settings->vault_kv_mount, kind,
                              v->settings->vault_prefix, identifier, path,
                              sizeof(path)) < 0) {
        return -1;
    }
    if ((size_t)snprintf(out, size, "%s/v1/%s", v->addr, path) >= size) {
        return -1;
    }
    return 0;
}

const struct akv_http *akv_vault_http(const struct akv_vault *v)
{
    return v->http;
}

double akv_vault_token_ttl(const struct akv_vault *v)
{
    double left;

    if (!v->token) {
        return 0;
    }
    if (v->lease.obtained_ms == 0) {
        return NAN; /* its lookup failed: not known */
    }
    if (v->lease.ttl_s == 0) {
        return INFINITY;
    }
    left = (double)v->lease.ttl_s -
           (double)(akv_mono_ms() - v->lease.obtained_ms) / 1000.0;
    return left > 0 ? left : 0;
}

int akv_vault_can_login(const struct akv_vault *v)
{
    return v->method != AUTH_TOKEN;
}

char *akv_vault_metadata_body(const cJSON *custom_metadata)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *copy = cJSON_Duplicate(custom_metadata, 1);
    char *body = NULL;

    if (root && copy) {
        cJSON_AddItemToObject(root, "custom_metadata", copy);
        copy = NULL;
        body = akv_json_print(root);
    }
    cJSON_Delete(copy);
    cJSON_Delete(root);
    return body;
}

/* --- pure parts --------------------------------------------------------- */

enum akv_class akv_vault_classify(long status, const char *body, int curl_code)
{
    if (status == 0) {
        return akv_transport_class(curl_code, NULL);
    }
    if (status >= 200 && status < 300) {
        return AKV_CLASS_OK;
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
    /* 404 (unknown mount), 405, 413, 501 (not initialised), ... */
    return AKV_CLASS_CONFIG;
}

enum akv_lease_action akv_vault_lease_due(const struct akv_vault_lease *l,
                                          long long now_ms_, int can_login)
{
    long long elapsed = now_ms_ - l->obtained_ms;

    if (l->ttl_s <= 0) {
        return AKV_LEASE_OK; /* never expires (root-like) */
    }
    if (elapsed * 3 < l->ttl_s * 1000 * 2) {
        return AKV_LEASE_OK;
    }
    /* Renewals capped by the maximum TTL shrink the lease: once it is
     * below a third of what login gave, renewing buys too little. */
    if (can_login && (!l->renewable || l->ttl_s * 3 < l->first_ttl_s)) {
        return AKV_LEASE_LOGIN;
    }
    return l->renewable ? AKV_LEASE_RENEW : AKV_LEASE_OK;
}

int akv_vault_parse_auth(const char *body, size_t len, char **token,
                         long long *ttl_s, int *renewable)
{
    /* A NUL would cut the token short: refused rather than shortened. */
    cJSON *root =
        akv_json_has_nul(body, len) ? NULL : cJSON_ParseWithLength(body, len);
    const cJSON *auth = akv_json_object(root, "auth");
    const char *t = akv_json_string(auth, "client_token");
    int rc = -1;

    *token = NULL;
    if (t && *t && akv_json_int(auth, "lease_duration", ttl_s) == 0) {
        if (akv_json_bool(auth, "renewable", renewable) < 0) {
            *renewable = 0;
        }
        *token = strdup(t);
        rc = *token ? 0 : -1;
    }
    akv_json_wipe(root);
    cJSON_Delete(root);
    return rc;
}

/* "." and ".." are not names: curl and Vault's router resolve them, so a
 * path holding one would address another secret (or the mount itself). */
static int dot_segment(const char *seg, size_t len)
{
    return (len == 1 && seg[0] == '.') ||
           (len == 2 && seg[0] == '.' && seg[1] == '.');
}

/* Appends "/"-separated \p path to \p out at *o, escaping each segment and
 * skipping empty ones. @returns -1 for a dot segment or when out of room. */
static int append_segments(const char *path, char *out, size_t size, size_t *o)
{
    char seg[512];
    char esc[1536];
    const char *p = path;

    while (*p) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        size_t elen;

        if (len >= sizeof(seg) || dot_segment(p, len)) {
            return -1;
        }
        if (len == 0) {
            p = slash ? slash + 1 : p;
            continue;
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
    char esc[1024];
    size_t o = 0;
    size_t elen;

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
    if (!*identifier || dot_segment(identifier, strlen(identifier)) ||
        akv_http_escape(identifier, esc, sizeof(esc)) < 0) {
        return -1;
    }
    elen = strlen(esc);
    if (o + elen + 2 > size) {
        return -1;
    }
    out[o++] = '/';
    memcpy(out + o, esc, elen + 1);
    return 0;
}

/* First entry of {"errors":[...]} for messages, "" if none. Vault error
 * strings never carry secret values. */
void akv_vault_error_excerpt(const char *body, size_t len, const char *secret,
                             char *out, size_t size)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *errors = akv_json_get(root, "errors");
    const cJSON *first =
        cJSON_IsArray(errors) ? cJSON_GetArrayItem(errors, 0) : NULL;

    /* Vault's multierror text spans lines, and an error may quote the
     * request: a bounded, scrubbed excerpt, never the text verbatim. */
    akv_log_excerpt(cJSON_IsString(first) ? first->valuestring : "", secret,
                    out, size);
    akv_json_wipe(root);
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
        cls = akv_vault_classify(status, body, 0);
        akv_vault_error_excerpt(body, len, NULL, msg, sizeof(msg));
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
        /* Data with a NUL in a string would compare equal to the same
         * text cut short there: unknown data, so a write replaces it. */
        if (status == 200 && cJSON_IsObject(d) &&
            !akv_json_has_nul(body, len)) {
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
    akv_vault_error_excerpt(body, len, NULL, msg, sizeof(msg));
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

enum akv_class akv_vault_parse_write(const char *body, size_t len,
                                     long long cas, long long *version,
                                     char *errstr, size_t errstr_size)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *data = akv_json_object(root, "data");
    long long v = 0;
    enum akv_class cls = AKV_CLASS_OK;

    *version = 0;
    /* Only a version newer than the one the write was checked against
     * proves the write happened: a proxy's page, an empty body or
     * {"data":null} prove nothing, and a write that counted as done would
     * never be repeated. */
    if (!cJSON_IsObject(root)) {
        akv_errf(AKV_ERR_PARSE, errstr, errstr_size,
                 "vault write answered without a JSON object (%zu bytes): "
                 "not confirmed",
                 len);
        cls = AKV_CLASS_TRANSIENT;
    } else if (akv_json_int(data, "version", &v) < 0 || v <= 0 || v <= cas) {
        akv_errf(AKV_ERR_PARSE, errstr, errstr_size,
                 "vault write answered without a version newer than %lld: "
                 "not confirmed",
                 cas);
        cls = AKV_CLASS_TRANSIENT;
    } else {
        *version = v;
    }
    akv_json_wipe(root);
    cJSON_Delete(root);
    return cls;
}

/* --- the network edge --------------------------------------------------- */

/*
 * One request to /v1/{path}. Returns AKV_CLASS_OK when an HTTP answer
 * arrived (the caller classifies it), else the transport failure's class.
 */
static enum akv_class call(struct akv_vault *v, const char *method,
                           const char *path, const char *body, int anon,
                           struct akv_http_response *resp, char *errstr,
                           size_t errstr_size)
{
    char url[PATH_MAX_LEN + 1100];
    akv_err_t err;

    snprintf(url, sizeof(url), "%s/v1/%s", v->addr, path);
    err = akv_http_request(v->http, method, url,
                           (anon || !v->headers ? v->anon : v->headers)->list,
                           body, body ? strlen(body) : 0, resp);
    if (err) {
        akv_errf(AKV_ERR_TRANSPORT, errstr, errstr_size, "vault %s: %s", method,
                 resp->error);
        return akv_transport_class((int)resp->curl_code, resp->error);
    }
    return AKV_CLASS_OK;
}

/* Classifies a finished call, with Vault's own message in \p errstr. */
static enum akv_class answer(const char *what,
                             const struct akv_http_response *resp, char *errstr,
                             size_t errstr_size)
{
    enum akv_class cls = akv_vault_classify(
        resp->status, akv_buf_str(&resp->body), (int)resp->curl_code);
    char msg[256];

    if (cls != AKV_CLASS_OK) {
        akv_vault_error_excerpt(akv_buf_str(&resp->body), resp->body.len, NULL,
                                msg, sizeof(msg));
        akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                 "vault %s answered HTTP %ld: %s", what, resp->status, msg);
    }
    return cls;
}

/* Reads a one-line secret file (JWT, secret_id, role_id). */
static char *read_secret_file(const char *path, const char *what, char *errstr,
                              size_t errstr_size)
{
    FILE *fp = fopen(path, "r");
    char *buf;
    size_t n;

    if (!fp) {
        akv_errf(AKV_ERR_IO, errstr, errstr_size, "cannot read the %s file %s",
                 what, path);
        return NULL;
    }
    buf = calloc(1, SECRET_MAX);
    if (!buf) {
        fclose(fp);
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    n = fread(buf, 1, SECRET_MAX - 1, fp);
    fclose(fp);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' ||
                     buf[n - 1] == ' ' || buf[n - 1] == '\t')) {
        buf[--n] = '\0';
    }
    if (n == 0) {
        free(buf);
        akv_errf(AKV_ERR_IO, errstr, errstr_size, "the %s file %s is empty",
                 what, path);
        return NULL;
    }
    return buf;
}

/* Builds the login body for the configured method. The caller wipes it. */
static char *login_body(struct akv_vault *v, char *errstr, size_t errstr_size)
{
    const struct akv_settings *s = v->settings;
    cJSON *root = cJSON_CreateObject();
    char *a = NULL;
    char *b = NULL;
    char *body = NULL;

    if (!root) {
        return NULL;
    }
    if (v->method == AUTH_KUBERNETES) {
        /* Read on every login: the kubelet rotates projected tokens. */
        b = read_secret_file(s->vault_auth_jwt_file, "kubernetes JWT", errstr,
                             errstr_size);
        if (b && cJSON_AddStringToObject(root, "role", s->vault_auth_role) &&
            cJSON_AddStringToObject(root, "jwt", b)) {
            body = akv_json_print(root);
        }
    } else {
        a = s->vault_auth_role_id_file
                ? read_secret_file(s->vault_auth_role_id_file, "role_id",
                                   errstr, errstr_size)
                : strdup(s->vault_auth_role_id);
        b = a ? read_secret_file(s->vault_auth_secret_id_file, "secret_id",
                                 errstr, errstr_size)
              : NULL;
        if (a && b && cJSON_AddStringToObject(root, "role_id", a) &&
            cJSON_AddStringToObject(root, "secret_id", b)) {
            body = akv_json_print(root);
        }
    }
    akv_wipe_free(a);
    akv_wipe_free(b);
    akv_json_wipe(root);
    cJSON_Delete(root);
    return body;
}

static void set_lease(struct akv_vault *v, long long ttl_s, int renewable,
                      int fresh)
{
    v->lease.obtained_ms = akv_mono_ms();
    v->lease.ttl_s = ttl_s;
    v->lease.renewable = renewable;
    if (fresh) {
        v->lease.first_ttl_s = ttl_s;
    }
}

/* The token method cannot log in: learn the configured token's TTL. */
static enum akv_class take_lookup(struct akv_vault *v,
                                  const struct akv_http_response *resp)
{
    cJSON *root =
        cJSON_ParseWithLength(akv_buf_str(&resp->body), resp->body.len);
    const cJSON *data = akv_json_object(root, "data");
    long long ttl = 0;
    int renewable = 0;

    if (akv_json_int(data, "ttl", &ttl) < 0) {
        ttl = 0;
    }
    if (akv_json_bool(data, "renewable", &renewable) < 0) {
        renewable = 0;
    }
    set_lease(v, ttl, renewable, 1);
    akv_log_info("vault", "token ttl=%llds renewable=%s", (long long)ttl,
                 renewable ? "yes" : "no");
    akv_json_wipe(root);
    cJSON_Delete(root);
    return AKV_CLASS_OK;
}

/* Stores the token from a login or renew answer. */
static enum akv_class take_auth(struct akv_vault *v,
                                const struct akv_http_response *resp, int fresh,
                                char *errstr, size_t errstr_size)
{
    char *token = NULL;
    long long ttl = 0;
    int renewable = 0;

    if (akv_vault_parse_auth(akv_buf_str(&resp->body), resp->body.len, &token,
                             &ttl, &renewable) < 0) {
        akv_errf(AKV_ERR_PARSE, errstr, errstr_size,
                 "vault answer has no auth block");
        return AKV_CLASS_TRANSIENT;
    }
    if (v->token && strcmp(token, v->token) == 0) {
        akv_wipe_free(token); /* a renewal keeps the token */
    } else if (set_token(v, token) < 0) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return AKV_CLASS_TRANSIENT;
    }
    set_lease(v, ttl, renewable, fresh);
    return AKV_CLASS_OK;
}

enum akv_class akv_vault_call_prepare(struct akv_vault *v, enum akv_vault_op op,
                                      struct akv_vault_call *c, char *errstr,
                                      size_t errstr_size)
{
    memset(c, 0, sizeof(*c));
    if (op == AKV_VAULT_RENEW || v->method == AUTH_TOKEN) {
        c->headers = akv_vault_headers_hold(v);
        if (!c->headers) {
            akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                     "no Vault token to %s",
                     op == AKV_VAULT_RENEW ? "renew" : "look up");
            return AKV_CLASS_CONFIG;
        }
    } else {
        c->headers = v->anon;
        v->anon->refs++;
    }
    if (op == AKV_VAULT_RENEW) {
        c->method = "POST";
        c->body = strdup("{}");
        snprintf(c->url, sizeof(c->url), "%s/v1/auth/token/renew-self",
                 v->addr);
    } else if (v->method == AUTH_TOKEN) {
        c->method = "GET";
        snprintf(c->url, sizeof(c->url), "%s/v1/auth/token/lookup-self",
                 v->addr);
        return AKV_CLASS_OK;
    } else {
        c->method = "POST";
        c->body = login_body(v, errstr, errstr_size);
        snprintf(c->url, sizeof(c->url), "%s/v1/auth/%s/login", v->addr,
                 v->auth_mount);
    }
    if (!c->body) {
        akv_vault_call_free(c);
        if (op == AKV_VAULT_RENEW) {
            akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        }
        /* An unreadable credential file is a deployment problem. */
        return op == AKV_VAULT_LOGIN ? AKV_CLASS_CONFIG : AKV_CLASS_TRANSIENT;
    }
    return AKV_CLASS_OK;
}

void akv_vault_call_free(struct akv_vault_call *c)
{
    akv_vault_headers_release(c->headers);
    c->headers = NULL;
    if (c->body) {
        akv_wipe_free(c->body);
        c->body = NULL;
    }
}

enum akv_class akv_vault_call_finish(struct akv_vault *v, enum akv_vault_op op,
                                     const struct akv_http_response *resp,
                                     char *errstr, size_t errstr_size)
{
    const char *what = op == AKV_VAULT_RENEW     ? "token renewal"
                       : v->method == AUTH_TOKEN ? "token lookup"
                                                 : "login";
    enum akv_class cls;

    if (resp->status == 0) {
        akv_errf(AKV_ERR_TRANSPORT, errstr, errstr_size, "vault %s: %s", what,
                 resp->error);
        return akv_transport_class((int)resp->curl_code, resp->error);
    }
    cls = answer(what, resp, errstr, errstr_size);
    if (op == AKV_VAULT_RENEW) {
        cls = cls == AKV_CLASS_OK ? take_auth(v, resp, 0, errstr, errstr_size)
                                  : cls;
        if (cls == AKV_CLASS_OK) {
            akv_log_debug("vault", "token renewed, ttl=%llds", v->lease.ttl_s);
        }
        return cls;
    }
    /* Refused credentials, or a configured token that is invalid, will
     * not improve by retrying soon. */
    if (cls == AKV_CLASS_REAUTH || cls == AKV_CLASS_SUPERSEDED) {
        return AKV_CLASS_CONFIG;
    }
    if (cls != AKV_CLASS_OK) {
        return cls;
    }
    if (v->method == AUTH_TOKEN) {
        return take_lookup(v, resp);
    }
    cls = take_auth(v, resp, 1, errstr, errstr_size);
    if (cls == AKV_CLASS_OK) {
        akv_log_info("vault", "logged in with %s auth at %s, ttl=%llds",
                     v->settings->vault_auth_method, v->auth_mount,
                     v->lease.ttl_s);
    }
    return cls;
}

/* One of the client's own calls, waiting for the answer. */
static enum akv_class call_now(struct akv_vault *v, enum akv_vault_op op,
                               char *errstr, size_t errstr_size)
{
    struct akv_vault_call c;
    struct akv_http_response resp;
    enum akv_class cls;

    cls = akv_vault_call_prepare(v, op, &c, errstr, errstr_size);
    if (cls != AKV_CLASS_OK) {
        return cls;
    }
    /* A failure leaves status 0 and says why in resp. */
    (void)akv_http_request(v->http, c.method, c.url, c.headers->list, c.body,
                           c.body ? strlen(c.body) : 0, &resp);
    cls = akv_vault_call_finish(v, op, &resp, errstr, errstr_size);
    akv_http_response_free(&resp);
    akv_vault_call_free(&c);
    return cls;
}

enum akv_class akv_vault_login(struct akv_vault *v, char *errstr,
                               size_t errstr_size)
{
    return call_now(v, AKV_VAULT_LOGIN, errstr, errstr_size);
}

enum akv_lease_action akv_vault_due(const struct akv_vault *v)
{
    return akv_vault_lease_due(&v->lease, akv_mono_ms(),
                               v->method != AUTH_TOKEN);
}

void akv_vault_renew_later(struct akv_vault *v)
{
    /* Try again half a TTL from now rather than on every tick. */
    v->lease.obtained_ms = akv_mono_ms() - v->lease.ttl_s * 1000 / 2;
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

/* --- checks for `check-config --connect` --------------------------------- */

static const struct {
    const char *name;
    unsigned bit;
} cap_names[] = {
    {"create", AKV_VAULT_CAP_CREATE}, {"read", AKV_VAULT_CAP_READ},
    {"update", AKV_VAULT_CAP_UPDATE}, {"delete", AKV_VAULT_CAP_DELETE},
    {"list", AKV_VAULT_CAP_LIST},     {"patch", AKV_VAULT_CAP_PATCH},
    {"sudo", AKV_VAULT_CAP_SUDO},     {"root", AKV_VAULT_CAP_ROOT},
    {"deny", AKV_VAULT_CAP_DENY},
};

static int caps_of(const cJSON *list, unsigned *caps)
{
    const cJSON *it;
    size_t i;

    if (!cJSON_IsArray(list)) {
        return -1;
    }
    *caps = 0;
    cJSON_ArrayForEach(it, list)
    {
        unsigned bit = AKV_VAULT_CAP_OTHER;

        if (!cJSON_IsString(it)) {
            return -1;
        }
        for (i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++) {
            if (strcmp(it->valuestring, cap_names[i].name) == 0) {
                bit = cap_names[i].bit;
                break;
            }
        }
        *caps |= bit;
    }
    return 0;
}

int akv_vault_parse_capabilities(const char *body, size_t len, const char *path,
                                 unsigned *caps)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *data = akv_json_object(root, "data");
    const cJSON *list = akv_json_get(data, path);
    int rc;

    if (!list) {
        list = akv_json_get(root, path);
    }
    if (!list) {
        list = akv_json_get(data ? data : root, "capabilities");
    }
    rc = caps_of(list, caps);
    cJSON_Delete(root);
    return rc;
}

unsigned akv_vault_caps_missing(unsigned have, unsigned need)
{
    if (have & AKV_VAULT_CAP_DENY) {
        return need;
    }
    if (have & AKV_VAULT_CAP_ROOT) {
        return 0;
    }
    return need & ~have;
}

void akv_vault_caps_format(unsigned caps, char *out, size_t size)
{
    size_t o = 0;
    size_t i;

    if (size == 0) {
        return;
    }
    out[0] = '\0';
    for (i = 0; i < sizeof(cap_names) / sizeof(cap_names[0]); i++) {
        if (caps & cap_names[i].bit) {
            int n = snprintf(out + o, size - o, "%s%s", o ? ", " : "",
                             cap_names[i].name);

            if (n < 0 || (size_t)n >= size - o) {
                out[o] = '\0'; /* whole names only */
                return;
            }
            o += (size_t)n;
        }
    }
    if ((caps & AKV_VAULT_CAP_OTHER) && o + 8 < size) {
        snprintf(out + o, size - o, "%sothers", o ? ", " : "");
    } else if (caps == 0) {
        snprintf(out, size, "none");
    }
}

enum akv_class akv_vault_capabilities_self(struct akv_vault *v,
                                           const char *const *paths, size_t n,
                                           unsigned *caps, char *errstr,
                                           size_t errstr_size)
{
    struct akv_http_response resp;
    cJSON *root = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(root, "paths");
    enum akv_class cls = AKV_CLASS_OK;
    char *body = NULL;
    size_t i;

    memset(&resp, 0, sizeof(resp));
    for (i = 0; list && i < n; i++) {
        cJSON *p = cJSON_CreateString(paths[i]);

        if (!p) {
            list = NULL;
            break;
        }
        cJSON_AddItemToArray(list, p);
    }
    body = list ? akv_json_print(root) : NULL;
    cJSON_Delete(root);
    if (!body) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return AKV_CLASS_TRANSIENT;
    }
    cls = call(v, "POST", "sys/capabilities-self", body, 0, &resp, errstr,
               errstr_size);
    akv_json_free_string(body);
    if (cls == AKV_CLASS_OK) {
        cls = answer("capabilities lookup", &resp, errstr, errstr_size);
    }
    for (i = 0; cls == AKV_CLASS_OK && i < n; i++) {
        if (akv_vault_parse_capabilities(akv_buf_str(&resp.body), resp.body.len,
                                         paths[i], &caps[i]) < 0) {
            akv_errf(AKV_ERR_PARSE, errstr, errstr_size,
                     "vault capabilities lookup answered without the "
                     "capabilities of %s",
                     paths[i]);
            cls = AKV_CLASS_TRANSIENT;
        }
    }
    akv_http_response_free(&resp);
    return cls;
}

enum akv_class akv_vault_read(struct akv_vault *v, const char *identifier,
                              struct akv_vault_secret *out, char *errstr,
                              size_t errstr_size)
{
    struct akv_http_response resp;
    char path[PATH_MAX_LEN];
    enum akv_class cls;

    out->version = 0;
    out->data = NULL;
    if (akv_vault_secret_path(v->settings->vault_kv_mount, "data",
                              v->settings->vault_prefix, identifier, path,
                              sizeof(path)) < 0) {
        akv_errf(AKV_ERR_INVALID, errstr, errstr_size, "vault path too long");
        return AKV_CLASS_CONFIG;
    }
    cls = call(v, "GET", path, NULL, 0, &resp, errstr, errstr_size);
    if (cls == AKV_CLASS_OK) {
        cls = akv_vault_parse_read(resp.status, akv_buf_str(&resp.body),
                                   resp.body.len, out, errstr, errstr_size);
    }
    akv_http_response_free(&resp);
    return cls;
}

const struct akv_vault_lease *akv_vault_token_lease(const struct akv_vault *v)
{
    return &v->lease;
}
