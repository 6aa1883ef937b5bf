/*
 * transport — the failure class of a request that got no HTTP answer.
 */
#ifndef AKV_WORKER_TRANSPORT_H
#define AKV_WORKER_TRANSPORT_H

#include "failure.h"

/**
 * @brief Class of a request that got no HTTP answer.
 * @param curl_code libcurl's result.
 * @param error libcurl's error text, or NULL: a TLS alert about
 *        certificates (the server refused our client certificate) arrives
 *        as a plain receive error and is only recognisable by its text.
 * @returns AKV_CLASS_CONFIG for what only a person can fix (certificate
 *          not trusted, client certificate refused, malformed URL,
 *          unsupported protocol), else AKV_CLASS_TRANSIENT (refused,
 *          reset, timed out, truncated, name resolution).
 */
enum akv_class akv_transport_class(int curl_code, const char *error);

#endif /* AKV_WORKER_TRANSPORT_H */
