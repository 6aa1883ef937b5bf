/*
 * http — the libcurl client helper the worker talks to Vault and authentik
 * with.
 *
 * One struct akv_http wraps one reused easy handle, so consecutive requests
 * to the same upstream share a kept-alive connection. Every response body
 * lands in a bounded buffer; headers that carry credentials are wiped when
 * freed.
 */
#ifndef AKV_COMMON_HTTP_H
#define AKV_COMMON_HTTP_H

#include "buf.h"
#include "err.h"

#include <curl/curl.h>

struct akv_http_opts {
    long connect_timeout_ms; /**< TCP+TLS connect limit */
    long timeout_ms;         /**< whole-request limit */
    size_t max_response;     /**< largest body accepted */
    const char *user_agent;
    const char *ca_file;     /**< PEM bundle, NULL = system default */
    const char *ca_path;     /**< hashed CA directory, NULL = none */
    const char *client_cert; /**< PEM client certificate, NULL = none */
    const char *client_key;  /**< PEM client key, NULL = none */
    const char *server_name; /**< TLS name to verify (and send as SNI)
                                  instead of the URL's host, NULL = none */
    int insecure;            /**< skip TLS verification (logged loudly) */
};

struct akv_http_response {
    long status;                 /**< HTTP status; 0 when no answer */
    struct akv_buf body;         /**< response body (bounded) */
    char retry_after[64];        /**< Retry-After header value, "" if none */
    CURLcode curl_code;          /**< CURLE_OK, or why no answer arrived */
    char error[CURL_ERROR_SIZE]; /**< transport error detail, "" if none */
};

struct akv_http;

/**
 * One transfer in progress, for the blocking akv_http_request() and for
 * easy handles run by a caller's libcurl multi handle alike.
 */
struct akv_http_xfer {
    CURL *curl;
    struct akv_http_response *resp;
    int too_big;
    struct curl_slist *connect_to;
    char *rewritten;
    size_t max_response;
};

/**
 * @brief Creates a client with its own reused easy handle.
 * @remark The strings in \p opts are copied.
 * @returns the client, or NULL with a message in \p errstr.
 */
struct akv_http *akv_http_new(const struct akv_http_opts *opts, char *errstr,
                              size_t errstr_size);

/** @brief Destroys the client and closes its connections. NULL: no-op. */
void akv_http_destroy(struct akv_http *http);

/**
 * @brief Performs one request and waits for the whole answer.
 * @param headers extra request headers (may be NULL); not consumed.
 * @param body request body or NULL for none.
 * @returns AKV_OK when an HTTP answer arrived (any status: look at
 *          resp->status), AKV_ERR_TRANSPORT when none did (resp->error says
 *          why), AKV_ERR_TOOBIG when the body exceeded max_response.
 * @remark \p resp is initialised here; release it with
 *         akv_http_response_free() whatever the result.
 */
akv_err_t akv_http_request(struct akv_http *http, const char *method,
                           const char *url, const struct curl_slist *headers,
                           const char *body, size_t body_len,
                           struct akv_http_response *resp);

/**
 * @brief Prepares easy handle \p curl for one request with \p http's
 *        options (timeouts, TLS, bounded body, Retry-After capture),
 *        without running it; for a libcurl multi handle.
 * @remark \p body, \p headers, \p resp and \p x must stay valid until
 *         akv_http_xfer_finish(). \p resp is initialised here.
 */
akv_err_t akv_http_xfer_setup(const struct akv_http *http, CURL *curl,
                              struct akv_http_xfer *x, const char *method,
                              const char *url, const struct curl_slist *headers,
                              const char *body, size_t body_len,
                              struct akv_http_response *resp);

/**
 * @brief Completes a transfer that ended with \p rc: fills the status and
 *        error, and releases what setup allocated.
 * @returns like akv_http_request().
 */
akv_err_t akv_http_xfer_finish(struct akv_http_xfer *x, CURLcode rc);

/** @brief Wipes and frees a response body. */
void akv_http_response_free(struct akv_http_response *resp);

/**
 * @brief Appends "Name: value" to a header list.
 * @returns the new list head, or NULL on allocation failure (the old list is
 *          then freed by this call, so `h = akv_http_header(h, ...)` is safe).
 */
struct curl_slist *akv_http_header(struct curl_slist *list, const char *name,
                                   const char *value);

/** @brief Wipes (headers may hold tokens) and frees a header list. */
void akv_http_headers_free(struct curl_slist *list);

/**
 * A header list shared by the requests that send it. libcurl reads the
 * list while a transfer runs, so a client that replaces its credentials
 * (a new token) drops its own reference and the old list lives on until
 * the last transfer using it lets go. Counted without locks: one thread
 * per client.
 */
struct akv_headers;

/**
 * @brief Wraps \p list (taken over) with one reference.
 * @returns NULL on allocation failure or a NULL \p list (the list is then
 *          freed).
 */
struct akv_headers *akv_headers_new(struct curl_slist *list);

/** @brief Takes one more reference to \p h (may be NULL); returns \p h. */
struct akv_headers *akv_headers_hold(struct akv_headers *h);

/** @brief The list itself, for a request. */
const struct curl_slist *akv_headers_list(const struct akv_headers *h);

/** @brief Drops a reference (NULL ignored); the last one wipes the list. */
void akv_headers_release(struct akv_headers *h);

/**
 * @brief Percent-encodes \p in (RFC 3986 unreserved characters kept) into
 *        \p out.
 * @returns 0, or -1 when \p out is too small.
 */
int akv_http_escape(const char *in, char *out, size_t out_size);

#endif /* AKV_COMMON_HTTP_H */
