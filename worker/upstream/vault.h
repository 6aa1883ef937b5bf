/*
 * vault — ak2vault's Vault client: authentication (token, kubernetes,
 * approle, with renewal), and KV version 2 reads, check-and-set writes,
 * provenance metadata and deletes for one token's secret.
 *
 * Path building, body building, response parsing, classification and the
 * token-lifetime decision are the pure functions of vaultproto.h; this is
 * the network edge around them.
 */
#ifndef AKV_WORKER_VAULT_H
#define AKV_WORKER_VAULT_H

#include "failure.h"
#include "settings.h"
#include "vaultproto.h"

#include "http.h"
#include "secretfile.h"

#include <cJSON.h>
#include <stddef.h>

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

/** One of the client's own calls, for a transfer the caller runs. */
struct akv_vault_call {
    const char *method;
    char url[3200];
    struct akv_headers *headers; /**< held; released by _free() */
    char *body;                  /**< NULL or secret (wiped) */
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
struct akv_headers *akv_vault_headers_hold(struct akv_vault *v);

/**
 * @brief Reads vault.token_file again when it changed (or always, when
 *        \p force is set), and installs the new token for the requests
 *        started after this call; its lifetime is unknown until the next
 *        lookup (an AKV_VAULT_LOGIN with the token method). A file that
 *        cannot be read is logged and the token read before stays.
 * @returns whether the token changed; AKV_CREDFILE_NONE without a file (and
 *          with another auth method).
 */
enum akv_credfile_change akv_vault_reload_token(struct akv_vault *v, int force);

/** @returns a number that changes whenever a new token is installed. */
unsigned long akv_vault_token_generation(const struct akv_vault *v);

/** @returns the HTTP options (timeouts, TLS) for the engine's handles. */
const struct akv_http *akv_vault_http(const struct akv_vault *v);

/** @returns seconds before the token expires: INFINITY when it never
 *           does, 0 when there is none or it has expired. */
double akv_vault_token_ttl(const struct akv_vault *v);

/** @returns the lifetime the token had when it was obtained (its login
 *           or lookup): INFINITY when it never expires, 0 when there is no
 *           token, NAN when its lookup failed. */
double akv_vault_token_lifetime(const struct akv_vault *v);

/** @returns non-zero when the auth method can obtain a new token (a
 *           token read from a file can: the file may hold a newer one). */
int akv_vault_can_login(const struct akv_vault *v);

/* --- checks for `check-config --connect` --------------------------------- */

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
 * @brief Lists the secrets under the configured prefix (one LIST; KV v2
 *        answers it in one piece), calling \p fn for each name.
 * @returns AKV_CLASS_OK (also when nothing is there yet), or the failure
 *          class with a message in \p errstr.
 */
enum akv_class akv_vault_list(struct akv_vault *v,
                              void (*fn)(void *ctx, const char *key), void *ctx,
                              char *errstr, size_t errstr_size);

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
