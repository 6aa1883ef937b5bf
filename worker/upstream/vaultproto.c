/*
 * vaultproto — Vault's HTTP API as ak2vault speaks it, without the
 * transfers: KV version 2 paths and bodies, answers parsed and classed,
 * login answers, the token-lifetime decision and ACL capabilities.
 */
#include "vaultproto.h"

#include "http.h"
#include "json.h"
#include "log.h"
#include "transport.h"
#include "wipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    /* A renewal of a token past its max TTL: Vault answers 500 (its
     * expiration manager's plain error), and no retry can renew it; a new
     * login replaces it. */
    if (status == 500 && strstr(body, "past the max TTL, cannot renew")) {
        return AKV_CLASS_REAUTH;
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
    long long span_s;
    int capped;

    if (l->ttl_s <= 0) {
        return AKV_LEASE_OK; /* never expires (root-like) */
    }
    if (!can_login) {
        /* Renew at two thirds of what the last answer granted; a token
         * that cannot be renewed lives as long as it lives. */
        if (elapsed * 3 < l->ttl_s * 1000 * 2) {
            return AKV_LEASE_OK;
        }
        return l->renewable ? AKV_LEASE_RENEW : AKV_LEASE_OK;
    }
    /* Act once a third of a login's lifetime is left (two thirds of the
     * TTL gone, for a token as long-lived as at login). A renewal capped
     * by the token's max TTL granted less than login gave: renewing it
     * again cannot outlive that cap, so the token is replaced by a login
     * when a third of a login's lifetime is left, or at once when the cap
     * left less. The remaining lifetime thus stays above a third of a
     * login's (what AK2VaultVaultTokenExpiring counts on). */
    capped = l->renewable && l->ttl_s < l->first_ttl_s;
    span_s = l->ttl_s > l->first_ttl_s ? l->ttl_s : l->first_ttl_s;
    if ((l->ttl_s * 1000 - elapsed) * 3 > span_s * 1000) {
        return AKV_LEASE_OK;
    }
    return l->renewable && !capped ? AKV_LEASE_RENEW : AKV_LEASE_LOGIN;
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

int akv_vault_prefix_path(const char *mount, const char *prefix, char *out,
                          size_t size)
{
    size_t o = 0;

    if (size == 0) {
        return -1;
    }
    out[0] = '\0';
    return append_segments(mount, out, size, &o) ||
                   append_segments("metadata", out, size, &o) ||
                   append_segments(prefix, out, size, &o)
               ? -1
               : 0;
}

int akv_vault_parse_list(const char *body, size_t len,
                         void (*fn)(void *ctx, const char *key), void *ctx)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *keys = akv_json_get(akv_json_object(root, "data"), "keys");
    const cJSON *k;
    int rc = -1;

    if (cJSON_IsArray(keys)) {
        rc = 0;
        cJSON_ArrayForEach(k, keys)
        {
            size_t n = cJSON_IsString(k) ? strlen(k->valuestring) : 0;

            /* "dir/" is a folder of secrets below the prefix: not a
             * token's (identifiers hold no slash). */
            if (n > 0 && k->valuestring[n - 1] != '/') {
                fn(ctx, k->valuestring);
            }
        }
    }
    cJSON_Delete(root);
    return rc;
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

/*
 * The start of reading a KV v2 answer to GET (\p what: "read", "metadata
 * read"): a status other than 200 or 404 is a failure; else the body must
 * be a JSON object. @returns the parsed body, or NULL with \p *cls set.
 */
static cJSON *read_answer(const char *what, long status, const char *body,
                          size_t len, enum akv_class *cls, char *errstr,
                          size_t errstr_size)
{
    cJSON *root;
    char msg[256];

    if (status != 200 && status != 404) {
        *cls = akv_vault_classify(status, body, 0);
        akv_vault_error_excerpt(body, len, NULL, msg, sizeof(msg));
        akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                 "vault %s answered HTTP %ld: %s", what, status, msg);
        if (*cls == AKV_CLASS_OK) {
            *cls = AKV_CLASS_TRANSIENT;
        }
        return NULL;
    }
    root = cJSON_ParseWithLength(body, len);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        akv_errf(AKV_ERR_PARSE, errstr, errstr_size,
                 "vault %s answered HTTP %ld with a body that is not JSON",
                 what, status);
        *cls = AKV_CLASS_TRANSIENT;
        return NULL;
    }
    *cls = AKV_CLASS_OK;
    return root;
}

/*
 * A KV v2 answer without a secret in it: a plain 404 (no errors) is a path
 * never written (AKV_CLASS_OK); a 404 naming a route, or with warnings,
 * means a wrong mount or not KV v2.
 */
static enum akv_class no_secret(const char *what, long status,
                                const cJSON *root, const char *body, size_t len,
                                char *errstr, size_t errstr_size)
{
    const cJSON *errors = akv_json_get(root, "errors");
    char msg[256];

    if (status == 404 && cJSON_IsArray(errors) &&
        cJSON_GetArraySize(errors) == 0) {
        return AKV_CLASS_OK;
    }
    akv_vault_error_excerpt(body, len, NULL, msg, sizeof(msg));
    akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
             "vault %s answered HTTP %ld: %s", what, status,
             msg[0] ? msg : "not a KV version 2 secret path");
    return status == 404 ? AKV_CLASS_CONFIG : AKV_CLASS_TRANSIENT;
}

enum akv_class akv_vault_parse_read(long status, const char *body, size_t len,
                                    struct akv_vault_secret *out, char *errstr,
                                    size_t errstr_size)
{
    cJSON *root;
    const cJSON *data;
    long long version = 0;
    enum akv_class cls;

    out->version = 0;
    out->data = NULL;
    root = read_answer("read", status, body, len, &cls, errstr, errstr_size);
    if (!root) {
        return cls;
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
    cls = no_secret("read", status, root, body, len, errstr, errstr_size);

out:
    akv_json_wipe(root);
    cJSON_Delete(root);
    return cls;
}

enum akv_class akv_vault_parse_metadata(long status, const char *body,
                                        size_t len, long long *version,
                                        int *live, char *errstr,
                                        size_t errstr_size)
{
    cJSON *root;
    const cJSON *data;
    const cJSON *cur;
    const char *deleted;
    int destroyed = 0;
    enum akv_class cls;
    char name[32];

    *version = 0;
    *live = 0;
    root = read_answer("metadata read", status, body, len, &cls, errstr,
                       errstr_size);
    if (!root) {
        return cls;
    }
    data = akv_json_object(root, "data");
    if (status != 200 || !data ||
        akv_json_int(data, "current_version", version) != 0) {
        *version = 0;
        cls = no_secret("metadata read", status, root, body, len, errstr,
                        errstr_size);
        goto out;
    }
    snprintf(name, sizeof(name), "%lld", *version);
    cur = akv_json_object(akv_json_object(data, "versions"), name);
    deleted = cur ? akv_json_string(cur, "deletion_time") : NULL;
    /* A version Vault does not describe, or will delete later, is not
     * known to be live: the caller reads the data instead. */
    *live = *version > 0 && cur && deleted && !deleted[0] &&
            akv_json_bool(cur, "destroyed", &destroyed) == 0 && !destroyed;

out:
    cJSON_Delete(root);
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

void akv_vault_secret_free(struct akv_vault_secret *s)
{
    if (s->data) {
        akv_json_wipe(s->data);
        cJSON_Delete(s->data);
    }
    s->data = NULL;
    s->version = 0;
}

/* --- capabilities, for `check-config --connect` ------------------------- */

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

void akv_vault_denied_hint(long status, enum akv_class cls, const char *need,
                           char *errstr, size_t size)
{
    size_t n;

    if (status != 403 || cls != AKV_CLASS_CONFIG || size == 0) {
        return;
    }
    /* Vault's multierror text ends in white space once flattened. */
    n = strnlen(errstr, size - 1);
    while (n > 0 && (errstr[n - 1] == ' ' || errstr[n - 1] == '\t')) {
        n--;
    }
    snprintf(errstr + n, size - n, " (the token's policies do not grant %s)",
             need);
}
