/*
 * authentik — reads a token's current state from authentik's API.
 *
 * Two calls per sync: the token detail (intent and the other fields) and
 * view_key (the key itself); engine.c runs them. Parsing and
 * classification are the pure functions of authentikproto.h, tested on
 * recorded bodies.
 */
#ifndef AKV_WORKER_AUTHENTIK_H
#define AKV_WORKER_AUTHENTIK_H

#include "authentikproto.h"
#include "failure.h"
#include "settings.h"

#include "http.h"
#include "secretfile.h"

#include <cJSON.h>
#include <stddef.h>

struct akv_authentik;

/**
 * @brief Creates a client for settings->authentik_url.
 * @returns the client or NULL with a message in \p errstr.
 */
struct akv_authentik *akv_authentik_new(const struct akv_settings *s,
                                        char *errstr, size_t errstr_size);

/** @brief Destroys the client. NULL is a no-op. */
void akv_authentik_destroy(struct akv_authentik *ak);

/**
 * @brief "{base}/api/v3/core/tokens/{identifier}/{suffix}" into \p out.
 * @returns 0, or -1 when \p identifier is not a slug or it does not fit.
 */
int akv_authentik_url(const struct akv_authentik *ak, const char *identifier,
                      const char *suffix, char *out, size_t size);

/**
 * @brief Holds the request headers (Authorization included) for a
 *        transfer: a new token does not free them under it.
 * @returns a reference the caller releases with akv_headers_release().
 */
struct akv_headers *akv_authentik_headers_hold(struct akv_authentik *ak);

/**
 * @brief Reads authentik.token_file again when it changed (or always,
 *        when \p force is set: authentik refused the token), and uses the
 *        new token for the requests started after this call. A file that
 *        cannot be read is logged and the token read before stays.
 * @returns whether the token changed; AKV_CREDFILE_NONE without a file.
 */
enum akv_credfile_change akv_authentik_reload_token(struct akv_authentik *ak,
                                                    int force);

/** @returns the HTTP options (timeouts, TLS) for the engine's handles. */
const struct akv_http *akv_authentik_http(const struct akv_authentik *ak);

/**
 * @brief Lists one token (GET /api/v3/core/tokens/?page_size=1), waiting
 *        for the answer: proves the API token is accepted and may list
 *        tokens, without reading a key.
 * @returns AKV_CLASS_OK with the number of tokens the account can see in
 *          \p count, or the failure class with the status and authentik's
 *          "detail" in \p errstr.
 */
enum akv_class akv_authentik_count_tokens(struct akv_authentik *ak,
                                          long long *count, char *errstr,
                                          size_t errstr_size);

/**
 * @brief Lists every token the account can see (GET
 *        /api/v3/core/tokens/, page after page, by identifier), calling
 *        \p fn for each, waiting for each answer.
 * @returns AKV_CLASS_OK, or the failure class with the status and
 *          authentik's "detail" in \p errstr.
 */
enum akv_class akv_authentik_list_tokens(struct akv_authentik *ak,
                                         akv_token_list_fn *fn, void *ctx,
                                         char *errstr, size_t errstr_size);

#endif /* AKV_WORKER_AUTHENTIK_H */
