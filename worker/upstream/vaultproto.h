/*
 * vaultproto — Vault's HTTP API as ak2vault speaks it, without the
 * transfers (vault.h makes those): KV version 2 paths and bodies, answers
 * parsed and classified, login answers, the token-lifetime decision and
 * ACL capabilities. Pure functions.
 */
#ifndef AKV_WORKER_VAULTPROTO_H
#define AKV_WORKER_VAULTPROTO_H

#include "failure.h"

#include <cJSON.h>
#include <stddef.h>

/** What Vault holds for one path. */
struct akv_vault_secret {
    long long version; /**< current version; 0 when the path never existed */
    cJSON *data;       /**< current data object, NULL when absent/deleted */
};

/** A Vault token's lifetime as the worker tracks it. */
struct akv_vault_lease {
    long long obtained_ms; /**< monotonic time of login or last renewal */
    long long ttl_s;       /**< TTL at that time; 0 = never expires */
    long long first_ttl_s; /**< TTL right after login (for max-TTL checks) */
    int renewable;
};

enum akv_lease_action {
    AKV_LEASE_OK = 0, /**< nothing to do */
    AKV_LEASE_RENEW,  /**< about two thirds of the TTL are gone: renew */
    AKV_LEASE_LOGIN,  /**< expiring and not renewable (enough): log in */
};

/**
 * @brief Decides what a token needs at \p now_ms (pure).
 * @param can_login the auth method can obtain a fresh token.
 */
enum akv_lease_action akv_vault_lease_due(const struct akv_vault_lease *l,
                                          long long now_ms, int can_login);

/**
 * @brief Parses the "auth" block of a login or renew-self answer.
 * @returns 0 with \p token (heap, caller wipes and frees), \p ttl_s and
 *          \p renewable set, or -1 when the body has no usable auth block
 *          (a token with a NUL in it is not usable).
 */
int akv_vault_parse_auth(const char *body, size_t len, char **token,
                         long long *ttl_s, int *renewable);

/**
 * @brief Builds "{mount}/{kind}/{prefix}/{identifier}" with every segment
 *        percent-encoded (the slashes inside mount and prefix are kept).
 * @param kind "data" or "metadata".
 * @returns 0, or -1 when \p out is too small or a segment is "." or ".."
 *          (or the identifier is empty): such a path would name another
 *          secret once resolved. Empty segments of mount and prefix are
 *          skipped.
 */
int akv_vault_secret_path(const char *mount, const char *kind,
                          const char *prefix, const char *identifier, char *out,
                          size_t size);

/**
 * @brief Builds "{mount}/metadata/{prefix}" (segments percent-encoded),
 *        the path a LIST of every secret under the prefix asks for.
 * @returns 0, or -1 when it does not fit or a segment is "." or "..".
 */
int akv_vault_prefix_path(const char *mount, const char *prefix, char *out,
                          size_t size);

/**
 * @brief Calls \p fn for every secret a KV v2 LIST answer names
 *        ({"data": {"keys": [...]}}); folders ("name/") are skipped.
 * @returns 0, or -1 when the body is not such an answer.
 */
int akv_vault_parse_list(const char *body, size_t len,
                         void (*fn)(void *ctx, const char *key), void *ctx);

/**
 * @brief Maps a Vault answer to a failure class (failure.h).
 * @param status HTTP status, 0 when no answer arrived.
 * @param body response body ("" when none).
 * @param curl_code libcurl's result when status is 0.
 */
enum akv_class akv_vault_classify(long status, const char *body, int curl_code);

/**
 * @brief Interprets the answer to GET {mount}/data/{path}.
 * @returns AKV_CLASS_OK with \p out filled (version 0 and data NULL for a
 *          path never written; data NULL for a deleted current version,
 *          and for data that holds a NUL in a string, which cannot be
 *          compared exactly), or the failure class with a message in
 *          \p errstr.
 */
enum akv_class akv_vault_parse_read(long status, const char *body, size_t len,
                                    struct akv_vault_secret *out, char *errstr,
                                    size_t errstr_size);

/**
 * @brief Interprets the answer to GET {mount}/metadata/{path}: the current
 *        version and whether it is live (neither deleted nor destroyed).
 * @returns AKV_CLASS_OK with \p version (0 for a path never written or
 *          purged) and \p live, or the failure class with a message in
 *          \p errstr.
 */
enum akv_class akv_vault_parse_metadata(long status, const char *body,
                                        size_t len, long long *version,
                                        int *live, char *errstr,
                                        size_t errstr_size);

/**
 * @brief Builds the KV v2 write body {"options":{"cas":N},"data":{...}}.
 * @returns a string for akv_json_free_string(), or NULL when out of memory.
 */
char *akv_vault_write_body(const cJSON *data, long long cas);

/**
 * @brief Interprets a 2xx answer to a KV v2 write: it counts only when Vault
 *        confirms a version newer than \p cas, the one it was checked
 *        against.
 * @returns AKV_CLASS_OK with \p version set, or AKV_CLASS_TRANSIENT with a
 *          message in \p errstr that quotes nothing of the body.
 */
enum akv_class akv_vault_parse_write(const char *body, size_t len,
                                     long long cas, long long *version,
                                     char *errstr, size_t errstr_size);

/**
 * @brief Vault's first error message in \p body as a bounded excerpt with
 *        \p secret (what the request carried, or NULL) and every registered
 *        secret redacted (akv_log_excerpt()); "" when there is none.
 */
void akv_vault_error_excerpt(const char *body, size_t len, const char *secret,
                             char *out, size_t size);

/**
 * @brief Builds {"custom_metadata": {...}} for a metadata write.
 * @returns a string for akv_json_free_string(), or NULL.
 */
char *akv_vault_metadata_body(const cJSON *custom_metadata);

/** @brief Frees what akv_vault_parse_read() put in \p s (wiping it). */
void akv_vault_secret_free(struct akv_vault_secret *s);

/** Vault ACL capabilities, as sys/capabilities-self names them. */
enum akv_vault_cap {
    AKV_VAULT_CAP_CREATE = 1 << 0,
    AKV_VAULT_CAP_READ = 1 << 1,
    AKV_VAULT_CAP_UPDATE = 1 << 2,
    AKV_VAULT_CAP_DELETE = 1 << 3,
    AKV_VAULT_CAP_LIST = 1 << 4,
    AKV_VAULT_CAP_PATCH = 1 << 5,
    AKV_VAULT_CAP_SUDO = 1 << 6,
    AKV_VAULT_CAP_ROOT = 1 << 7,  /**< "root": every capability */
    AKV_VAULT_CAP_DENY = 1 << 8,  /**< "deny": none, whatever else is set */
    AKV_VAULT_CAP_OTHER = 1 << 9, /**< a name this client does not know */
};

/**
 * @brief Finds \p path's capabilities in a sys/capabilities-self answer:
 *        under "data" (Vault's envelope), else at the top level (where
 *        sys/ answers repeat them), else "capabilities" when one path was
 *        asked for.
 * @returns 0 with the akv_vault_cap bits in \p caps, or -1 when the body
 *          holds no list of names for \p path.
 */
int akv_vault_parse_capabilities(const char *body, size_t len, const char *path,
                                 unsigned *caps);

/**
 * @brief The capabilities of \p need that \p have does not grant ("deny"
 *        grants none, "root" every one).
 */
unsigned akv_vault_caps_missing(unsigned have, unsigned need);

/** @brief Writes capability names ("create, read") into \p out. */
void akv_vault_caps_format(unsigned caps, char *out, size_t size);

/**
 * @brief After a failed call to one of Vault's own paths: when Vault
 *        refused it by policy (HTTP 403 classed AKV_CLASS_CONFIG, not an
 *        invalid token), appends to \p errstr what the token's policies
 *        must grant there, e.g. \p need "update on auth/token/renew-self".
 *        Anything else leaves \p errstr as it is.
 */
void akv_vault_denied_hint(long status, enum akv_class cls, const char *need,
                           char *errstr, size_t size);

#endif /* AKV_WORKER_VAULTPROTO_H */
