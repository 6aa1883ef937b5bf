/*
 * sync — one token sync, the unit of work (README.md, "One sync").
 *
 * Read the token's current state from authentik, build the document Vault
 * should hold, and write it with check-and-set only when it differs from
 * what Vault holds. Running a sync twice, or for a stale event, is harmless:
 * it always converges to authentik's current state. A token authentik no
 * longer has (404) is handled per vault.on_delete.
 *
 * This module builds what a sync writes (the document, its provenance);
 * core/syncstep.c decides the steps, engine.c runs them over
 * non-blocking transfers.
 */
#ifndef AKV_WORKER_SYNC_H
#define AKV_WORKER_SYNC_H

#include <cJSON.h>

struct akv_strlist;
struct akv_token; /* authentik.h */

/**
 * @brief Provenance for custom_metadata: token pk (from the detail),
 *        event pk, action and sync time.
 * @returns a new object of strings, or NULL when out of memory.
 */
cJSON *akv_sync_provenance(const cJSON *detail, const char *event_pk,
                           const char *action);

/**
 * @brief Builds the document Vault should hold: {"key", "intent"} plus the
 *        configured extra fields copied from the token detail.
 * @returns a new object (caller wipes and deletes) or NULL.
 */
cJSON *akv_sync_document(const struct akv_token *tok,
                         const struct akv_strlist *extra_fields);

#endif /* AKV_WORKER_SYNC_H */
