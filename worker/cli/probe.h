/*
 * probe — `ak2vault check-config --connect`: does every upstream answer,
 * and accept the configured credentials for what the worker will ask of
 * it? Kafka (brokers, the topic, the group coordinator, the dead-letter
 * topic), Vault (login or token lookup, the token's capabilities on the
 * KV paths, the KV mount) and authentik (an authenticated token list).
 *
 * Each check has a short timeout and prints one line, "NAME: ok (...)" or
 * "NAME: FAILED: ...". Nothing is written anywhere; no secret is printed.
 */
#ifndef AKV_WORKER_PROBE_H
#define AKV_WORKER_PROBE_H

#include "settings.h"

#include <stdio.h>

/** The longest a check waits for one answer, in milliseconds. */
#define AKV_PROBE_TIMEOUT_MS 5000

/**
 * @brief Runs every check against the upstreams of \p s, printing one line
 *        per check to \p out.
 * @returns the number of checks that failed (0: everything answered).
 */
int akv_probe_run(const struct akv_settings *s, FILE *out);

/**
 * @brief The capabilities (akv_vault_cap bits) the worker needs on
 *        {kv_mount}/\p kind/{prefix}/ paths for \p on_delete (pure).
 * @param kind "data" or "metadata".
 */
unsigned akv_probe_kv_needs(const char *kind, const char *on_delete);

#endif /* AKV_WORKER_PROBE_H */
