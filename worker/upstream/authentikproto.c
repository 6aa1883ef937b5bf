/*
 * authentikproto — authentik's answers as ak2vault reads them: classes,
 * token detail, key, list pages.
 */
#include "authentikproto.h"

#include "err.h"
#include "json.h"
#include "transport.h"
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

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

int akv_authentik_parse_page(const char *body, size_t len,
                             akv_token_list_fn *fn, void *ctx, long long *next)
{
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *results = akv_json_get(root, "results");
    const cJSON *t;
    int rc = -1;

    *next = 0;
    if (cJSON_IsArray(results)) {
        rc = 0;
        if (akv_json_int(akv_json_object(root, "pagination"), "next", next) <
                0 ||
            *next < 0) {
            *next = 0;
        }
        cJSON_ArrayForEach(t, results)
        {
            const char *ident = akv_json_string(t, "identifier");
            const char *intent = akv_json_string(t, "intent");

            if (ident && intent) {
                fn(ctx, ident, intent);
            }
        }
    }
    /* Token objects carry no keys; wipe them anyway. */
    akv_json_wipe(root);
    cJSON_Delete(root);
    return rc;
}
