/*
 * authentikproto — authentik's answers as ak2vault reads them, without the
 * transfers (authentik.h makes those). Pure functions.
 */
#ifndef AKV_WORKER_AUTHENTIKPROTO_H
#define AKV_WORKER_AUTHENTIKPROTO_H

#include "failure.h"

#include <cJSON.h>
#include <stddef.h>

/** One token as authentik reports it. */
struct akv_token {
    const cJSON *detail; /**< the Token object from the detail call */
    const char *key;     /**< the key from view_key (secret) */
};

/**
 * @brief Maps an authentik answer to a failure class (failure.h).
 * @param status HTTP status, 0 when no answer arrived.
 * @param curl_code libcurl's result when status is 0.
 */
enum akv_class akv_authentik_classify(long status, int curl_code);

/**
 * @brief Parses a token detail body and checks it is about \p identifier.
 * @returns the Token object (caller deletes) or NULL with \p errstr set
 *          (also for a body holding a NUL in a string: it would compare
 *          equal to the text before it).
 */
cJSON *akv_authentik_parse_detail(const char *body, size_t len,
                                  const char *identifier, char *errstr,
                                  size_t errstr_size);

/**
 * @brief Parses a view_key body {"key": "..."}.
 * @returns the key as a heap string (caller wipes and frees) or NULL with
 *          \p errstr set: a key that Vault would not hold exactly (a NUL in
 *          the body, bytes that are not UTF-8) is refused, not shortened.
 */
char *akv_authentik_parse_key(const char *body, size_t len, char *errstr,
                              size_t errstr_size);

/**
 * @brief Reads the "count" of a paginated list answer ({"pagination":
 *        {"count": N, ...}, "results": [...]}).
 * @returns 0 with \p count set, or -1 when the body is not such a page.
 */
int akv_authentik_parse_count(const char *body, size_t len, long long *count);

/** Called for each token of a list page: its identifier and intent. */
typedef void(akv_token_list_fn)(void *ctx, const char *identifier,
                                const char *intent);

/**
 * @brief Reads one page of GET /api/v3/core/tokens/: calls \p fn for
 *        every token in "results" (one without an identifier or intent is
 *        skipped) and sets \p next to the next page's number (0: last).
 * @returns 0, or -1 when the body is not such a page.
 */
int akv_authentik_parse_page(const char *body, size_t len,
                             akv_token_list_fn *fn, void *ctx, long long *next);

#endif /* AKV_WORKER_AUTHENTIKPROTO_H */
