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

/** @returns the request headers (Authorization included). */
const struct curl_slist *akv_authentik_headers(const struct akv_authentik *ak);

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
