/*
 * httpd — the worker's HTTP endpoint (libmicrohttpd, its own thread):
 *
 *   GET /metrics  Prometheus text exposition of every ak2vault_* family
 *   GET /livez    200 while the poll loop turns, else 503
 *   GET /readyz   200 when assigned partitions, upstreams reachable and no
 *                 partition stalled, else 503 saying what is missing
 *
 * It reads the telemetry and never changes it.
 */
#ifndef AKV_WORKER_HTTPD_H
#define AKV_WORKER_HTTPD_H

#include "err.h"
#include "listen.h"
#include "telemetry.h"

#include <stddef.h>
#include <sys/socket.h>

struct akv_httpd;

/**
 * @brief Starts serving on \p listen.
 * @param live_timeout_ms /livez fails after this long without a heartbeat.
 * @returns the server, or NULL with a message in \p errstr.
 * @remark \p t must outlive the server.
 */
struct akv_httpd *akv_httpd_start(const char *listen, struct akv_telemetry *t,
                                  long long live_timeout_ms, char *errstr,
                                  size_t errstr_size);

/** @returns the port the server listens on (useful after port 0). */
unsigned akv_httpd_port(const struct akv_httpd *h);

/** @brief Stops the server and waits for its thread. NULL is a no-op. */
void akv_httpd_stop(struct akv_httpd *h);

#endif /* AKV_WORKER_HTTPD_H */
