/*
 * vault — ak2vault's Vault client: authentication (token, kubernetes,
 * approle, with renewal), and KV version 2 reads, check-and-set writes,
 * provenance metadata and deletes for one token's secret.
 *
 * Path building, body building, response parsing, classification and the
 * token-lifetime decision are pure functions; the rest is a thin network
 * edge around them.
 */
#ifndef AKV_WORKER_VAULT_H
#define AKV_WORKER_VAULT_H

#include "failure.h"
#include "settings.h"

#include "http.h"

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

struct akv_vault;

/**
 * @brief Creates a client for settings->vault_addr (TLS options,
 *        namespace and auth method from \p s).
 * @remark \p s must outlive the client. No request is made here; call
 *         akv_vault_login() before the first use.
 * @returns the client or NULL with a message in \p errstr.
 */
struct akv_vault *akv_vault_new(const struct akv_settings *s, char *errstr,
                                size_t errstr_size);

/** @brief Destroys the client, wiping its token. NULL is a no-op. */
void akv_vault_destroy(struct akv_vault *v);

/**
 * @brief Obtains a token: logs in (kubernetes, approle) or looks the
 *        configured token up (token) to learn its TTL, waiting for the
 *        answer (the commands that are not the daemon; the engine makes
 *        the same call through akv_vault_call_prepare()).
 * @returns AKV_CLASS_OK, or the failure class with a message in \p errstr.
 */
enum akv_class akv_vault_login(struct akv_vault *v, char *errstr,
                               size_t errstr_size);

/** The client's own calls, which obtain and keep its token. */
enum akv_vault_op {
    AKV_VAULT_LOGIN, /**< log in, or look the configured token up */
    AKV_VAULT_RENEW, /**< renew the current token */
};

/** A header list with (or without) the token, held by a request. */
struct akv_vault_headers;

/** One of the client's own calls, for a transfer the caller runs. */
struct akv_vault_call {
    const char *method;
    char url[3200];
    struct akv_vault_headers *headers; /**< held; released by _free() */
    char *body;                        /**< NULL or secret (wiped) */
};

/**
 * @brief Prepares \p op: URL, headers and body (credential files are read
 *        now: the kubelet rotates projected tokens).
 * @returns AKV_CLASS_OK with \p c to run and then free, or the failure
 *          class (an unreadable credential file is AKV_CLASS_CONFIG) with
 *          a message in \p errstr.
 */
enum akv_class akv_vault_call_prepare(struct akv_vault *v, enum akv_vault_op op,
                                      struct akv_vault_call *c, char *errstr,
                                      size_t errstr_size);

/**
 * @brief Takes the answer to \p op: installs the new token and lifetime.
 * @param resp the answer (status 0: none arrived, curl_code says why).
 * @returns AKV_CLASS_OK, or the failure class with a message in \p errstr
 *          (refused credentials are AKV_CLASS_CONFIG).
 */
enum akv_class akv_vault_call_finish(struct akv_vault *v, enum akv_vault_op op,
                                     const struct akv_http_response *resp,
                                     char *errstr, size_t errstr_size);

/** @brief Releases what akv_vault_call_prepare() put in \p c. */
void akv_vault_call_free(struct akv_vault_call *c);

/** @returns what the current token needs now (akv_vault_lease_due()). */
enum akv_lease_action akv_vault_due(const struct akv_vault *v);

/** @brief After a failed renewal of a token that cannot be replaced: the
 *         next attempt is due half a TTL later, not at every check. */
void akv_vault_renew_later(struct akv_vault *v);

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
 * @brief The URL of \p identifier's secret: "{addr}/v1/{mount}/{kind}/...".
 * @returns 0, or -1 when it does not fit.
 */
int akv_vault_url(const struct akv_vault *v, const char *kind,
                  const char *identifier, char *out, size_t size);

/**
 * @brief Holds the request headers with the current token, for a transfer
 *        that may outlive the token: a new one does not free them.
 * @returns the headers, or NULL when there is no token yet.
 */
struct akv_vault_headers *akv_vault_headers_hold(struct akv_vault *v);

/** @returns the header list for libcurl. */
const struct curl_slist *
akv_vault_headers_list(const struct akv_vault_headers *h);

/** @brief Lets go of held headers (wiped when no request holds them).
 *         NULL is a no-op. */
void akv_vault_headers_release(struct akv_vault_headers *h);

/** @returns a number that changes whenever a new token is installed. */
unsigned long akv_vault_token_generation(const struct akv_vault *v);

/** @returns the HTTP options (timeouts, TLS) for the engine's handles. */
const struct akv_http *akv_vault_http(const struct akv_vault *v);

/** @returns seconds before the token expires: INFINITY when it never
 *           does, 0 when there is none or it has expired. */
double akv_vault_token_ttl(const struct akv_vault *v);

/** @returns non-zero when the auth method can obtain a new token. */
int akv_vault_can_login(const struct akv_vault *v);

/**
 * @brief Builds {"custom_metadata": {...}} for a metadata write.
 * @returns a string for akv_json_free_string(), or NULL.
 */
char *akv_vault_metadata_body(const cJSON *custom_metadata);

/** @brief Frees what akv_vault_parse_read() put in \p s (wiping it). */
void akv_vault_secret_free(struct akv_vault_secret *s);

/* --- checks for `check-config --connect` --------------------------------- */

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
 * @brief Asks Vault (POST sys/capabilities-self) what the current token
 *        may do on each of \p n logical \p paths ("kv/data/authentik/x").
 * @returns AKV_CLASS_OK with \p caps[i] set for paths[i], or the failure
 *          class with a message in \p errstr.
 */
enum akv_class akv_vault_capabilities_self(struct akv_vault *v,
                                           const char *const *paths, size_t n,
                                           unsigned *caps, char *errstr,
                                           size_t errstr_size);

/**
 * @brief Reads \p identifier's secret once, waiting for the answer.
 * @returns like akv_vault_parse_read(); release \p out with
 *          akv_vault_secret_free().
 */
enum akv_class akv_vault_read(struct akv_vault *v, const char *identifier,
                              struct akv_vault_secret *out, char *errstr,
                              size_t errstr_size);

/** @returns the current token's lifetime as login or lookup found it. */
const struct akv_vault_lease *akv_vault_token_lease(const struct akv_vault *v);

#endif /* AKV_WORKER_VAULT_H */
