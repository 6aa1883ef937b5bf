/*
 * sync — one token sync, the unit of work (DESIGN §4).
 *
 * Read the token's current state from authentik, build the document Vault
 * should hold, and write it with check-and-set only when it differs from
 * what Vault holds. Running a sync twice, or for a stale event, is harmless:
 * it always converges to authentik's current state.
 */
#ifndef AKV_WORKER_SYNC_H
#define AKV_WORKER_SYNC_H

#include "authentik.h"
#include "failure.h"
#include "settings.h"
#include "vault.h"

#include <cJSON.h>

enum akv_sync_result {
    AKV_SYNC_WRITTEN = 0, /**< a new Vault version was written */
    AKV_SYNC_UNCHANGED,   /**< Vault already held the document */
    AKV_SYNC_GONE,        /**< the token no longer exists in authentik */
    AKV_SYNC_FILTERED,    /**< the token's intent is not mirrored */
};

struct akv_sync_outcome {
    enum akv_sync_result result;
    long long version; /**< Vault version now current (0 if none) */
    char intent[32];   /**< token intent, "" if unknown */
};

struct akv_syncer;

/**
 * @brief Creates the upstream clients for \p s.
 * @remark \p s must outlive the syncer.
 */
struct akv_syncer *akv_syncer_new(const struct akv_settings *s, char *errstr,
                                  size_t errstr_size);

/** @brief Destroys the syncer. NULL is a no-op. */
void akv_syncer_destroy(struct akv_syncer *sy);

/**
 * @brief Syncs token \p identifier from authentik to Vault.
 * @returns AKV_CLASS_OK with \p out filled when the work is finished, or the
 *          class of the failure that stopped it (message in \p errstr).
 */
enum akv_class akv_sync_token(struct akv_syncer *sy, const char *identifier,
                              struct akv_sync_outcome *out, char *errstr,
                              size_t errstr_size);

/**
 * @brief Builds the document Vault should hold: {"key", "intent"} plus the
 *        configured extra fields copied from the token detail.
 * @returns a new object (caller wipes and deletes) or NULL.
 */
cJSON *akv_sync_document(const struct akv_token *tok,
                         const struct akv_strlist *extra_fields);

/** @returns a stable lowercase name for \p r ("written", ...). */
const char *akv_sync_result_name(enum akv_sync_result r);

#endif /* AKV_WORKER_SYNC_H */
