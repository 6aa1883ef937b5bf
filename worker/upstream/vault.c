/*
 * vault — the Vault client: its token (login, lookup, renewal, the headers
 * requests hold) and the requests the commands that are not the daemon
 * make and wait for. What requests say and answers mean is vaultproto.c.
 */
#include "vault.h"

#include "clock.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "secretfile.h"
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
    char addr[1024];                /* without trailing slash */
    char auth_mount[256];           /* kubernetes / approle mount */
    char *token;                    /* current token (secret), or NULL */
    struct akv_headers *headers;    /* with X-Vault-Token (secret) */
    struct akv_headers *anon;       /* without a token, for logins */
    struct akv_credfile token_file; /* vault.token_file, if set */
    unsigned long generation;       /* counts tokens installed */
    struct akv_vault_lease lease;
};

/* Headers every request carries; the token only when \p token is set. */
static struct akv_headers *build_headers(const struct akv_settings *s,
                                         const char *token)
{
    struct curl_slist *h = akv_http_header(NULL, "X-Vault-Request", "true");

    h = h ? akv_http_header(h, "Content-Type", "application/json") : NULL;
    if (h && s->vault_namespace && *s->vault_namespace) {
        h = akv_http_header(h, "X-Vault-Namespace", s->vault_namespace);
    }
    if (h && token) {
        h = akv_http_header(h, "X-Vault-Token", token);
    }
    return akv_headers_new(h);
}

struct akv_headers *akv_vault_headers_hold(struct akv_vault *v)
{
    return akv_headers_hold(v->headers);
}

unsigned long akv_vault_token_generation(const struct akv_vault *v)
{
    return v->generation;
}

/* Installs a new token (taking ownership), registering it with the log
 * scrubber and forgetting the old one. */
static int set_token(struct akv_vault *v, char *token)
{
    struct akv_headers *h = build_headers(v->settings, token);

    if (!h || akv_log_secret_add(token) < 0) {
        akv_headers_release(h);
        akv_wipe_free(token);
        return -1;
    }
    if (v->token) {
        akv_log_secret_remove(v->token);
        akv_wipe_free(v->token);
    }
    akv_headers_release(v->headers);
    v->token = token;
    v->headers = h;
    v->generation++;
    return 0;
}

/* The token method's token: vault.token_file read again (not taken from
 * the settings, so a client made later, a reconcile's, sees the file as it
 * is now), or VAULT_TOKEN. */
static akv_err_t configured_token(struct akv_vault *v, char *errstr,
                                  size_t errstr_size)
{
    const struct akv_settings *s = v->settings;
    char why[512];
    char *copy;

    if (s->vault_token_file) {
        v->token_file.path = s->vault_token_file;
        v->token_file.setting = "vault.token_file";
        v->token_file.component = "vault";
        if (akv_credfile_refresh(&v->token_file, 1, why, sizeof(why)) ==
            AKV_CREDFILE_FAILED) {
            return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                            "vault.token_file: %s", why);
        }
    }
    copy = strdup(v->token_file.value ? v->token_file.value : s->vault_token);
    if (!copy || set_token(v, copy) < 0) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    return AKV_OK;
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
    if (v->method == AUTH_TOKEN &&
        configured_token(v, errstr, errstr_size) != AKV_OK) {
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
    if (v->token) {
        akv_log_secret_remove(v->token);
        akv_wipe_free(v->token);
    }
    akv_headers_release(v->headers);
    akv_headers_release(v->anon);
    akv_credfile_clear(&v->token_file);
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

double akv_vault_token_lifetime(const struct akv_vault *v)
{
    if (!v->token) {
        return 0;
    }
    if (v->lease.obtained_ms == 0) {
        return NAN;
    }
    return v->lease.first_ttl_s == 0 ? INFINITY : (double)v->lease.first_ttl_s;
}

int akv_vault_can_login(const struct akv_vault *v)
{
    /* A token file may hold a newer token than the one refused. */
    return v->method != AUTH_TOKEN || v->token_file.path != NULL;
}

enum akv_credfile_change akv_vault_reload_token(struct akv_vault *v, int force)
{
    enum akv_credfile_change ch;
    char *copy;

    if (!v->token_file.path) {
        return AKV_CREDFILE_NONE;
    }
    ch = akv_credfile_reload(&v->token_file, force);
    if (ch != AKV_CREDFILE_CHANGED) {
        return ch;
    }
    copy = strdup(v->token_file.value);
    if (!copy || set_token(v, copy) < 0) {
        akv_log_error("vault", "out of memory: the token read before stays "
                               "in use");
        return AKV_CREDFILE_FAILED;
    }
    /* Its lifetime is the lookup's to learn. */
    memset(&v->lease, 0, sizeof(v->lease));
    return ch;
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
    err = akv_http_request(
        v->http, method, url,
        akv_headers_list(anon || !v->headers ? v->anon : v->headers), body,
        body ? strlen(body) : 0, resp);
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
    if (op == AKV_VAULT_LOGIN && v->method == AUTH_TOKEN) {
        /* "Logging in" with a token file is reading it again: the token
         * was refused, or is due, and the file may hold its successor. */
        (void)akv_vault_reload_token(v, 1);
    }
    if (op == AKV_VAULT_RENEW || v->method == AUTH_TOKEN) {
        c->headers = akv_vault_headers_hold(v);
        if (!c->headers) {
            akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                     "no Vault token to %s",
                     op == AKV_VAULT_RENEW ? "renew" : "look up");
            return AKV_CLASS_CONFIG;
        }
    } else {
        c->headers = akv_headers_hold(v->anon);
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
    akv_headers_release(c->headers);
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
    /* What a refusal by policy (not for an invalid token) names. */
    const char *need = op == AKV_VAULT_RENEW ? "update on auth/token/renew-self"
                       : v->method == AUTH_TOKEN
                           ? "read on auth/token/lookup-self"
                           : NULL;
    enum akv_class cls;

    if (resp->status == 0) {
        akv_errf(AKV_ERR_TRANSPORT, errstr, errstr_size, "vault %s: %s", what,
                 resp->error);
        return akv_transport_class((int)resp->curl_code, resp->error);
    }
    cls = answer(what, resp, errstr, errstr_size);
    if (need) {
        akv_vault_denied_hint(resp->status, cls, need, errstr, errstr_size);
    }
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
    (void)akv_http_request(v->http, c.method, c.url,
                           akv_headers_list(c.headers), c.body,
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

/* --- checks for `check-config --connect` --------------------------------- */

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
        akv_vault_denied_hint(resp.status, cls,
                              "update on sys/capabilities-self", errstr,
                              errstr_size);
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

enum akv_class akv_vault_list(struct akv_vault *v,
                              void (*fn)(void *ctx, const char *key), void *ctx,
                              char *errstr, size_t errstr_size)
{
    struct akv_http_response resp;
    char prefix[PATH_MAX_LEN];
    char path[PATH_MAX_LEN + 16];
    enum akv_class cls;

    if (akv_vault_prefix_path(v->settings->vault_kv_mount,
                              v->settings->vault_prefix, prefix,
                              sizeof(prefix)) < 0) {
        akv_errf(AKV_ERR_INVALID, errstr, errstr_size, "vault path too long");
        return AKV_CLASS_CONFIG;
    }
    /* GET ?list=true is LIST to Vault, and needs no custom method. */
    snprintf(path, sizeof(path), "%s/?list=true", prefix);
    cls = call(v, "GET", path, NULL, 0, &resp, errstr, errstr_size);
    if (cls == AKV_CLASS_OK && resp.status == 404) {
        cls = AKV_CLASS_OK; /* nothing under the prefix yet */
    } else if (cls == AKV_CLASS_OK) {
        cls = answer("list", &resp, errstr, errstr_size);
        if (cls == AKV_CLASS_OK &&
            akv_vault_parse_list(akv_buf_str(&resp.body), resp.body.len, fn,
                                 ctx) < 0) {
            akv_errf(AKV_ERR_PARSE, errstr, errstr_size,
                     "vault list answered without data.keys");
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
