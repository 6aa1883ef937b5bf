/*
 * sync — one token sync, the unit of work (DESIGN §4).
 *
 * Read the token's current state from authentik, build the document Vault
 * should hold, and write it with check-and-set only when it differs from
 * what Vault holds. Running a sync twice, or for a stale event, is harmless:
 * it always converges to authentik's current state. A token authentik no
 * longer has (404) is handled per vault.on_delete.
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
    AKV_SYNC_GONE,        /**< not in authentik; secret kept (on_delete) */
    AKV_SYNC_DELETED,     /**< not in authentik; secret deleted or purged */
    AKV_SYNC_FILTERED,    /**< the token's intent is not mirrored */
};

/** What triggered the sync (for provenance and logs). */
struct akv_sync_request {
    const char *identifier; /**< validated slug */
    const char *event_pk;   /**< "" when unknown */
    const char *action;     /**< event action */
};

struct akv_sync_outcome {
    enum akv_sync_result result;
    long long version;    /**< Vault version now current (0 if none) */
    int cached;           /**< unchanged per the cache: Vault not read */
    char intent[32];      /**< token intent, "" if unknown */
    char retry_after[64]; /**< on failure: the upstream's Retry-After */
};

/** The two Vault operations check-and-set convergence needs. */
struct akv_cas_ops {
    enum akv_class (*read)(void *ctx, const char *identifier,
                           struct akv_vault_secret *out, char *errstr,
                           size_t errstr_size);
    enum akv_class (*write)(void *ctx, const char *identifier,
                            const cJSON *data, long long cas,
                            long long *version, char *errstr,
                            size_t errstr_size);
};

struct akv_syncer;

/**
 * @brief Creates the upstream clients for \p s and logs in to Vault.
 * @remark \p s must outlive the syncer. A failed first login is not fatal:
 *         the syncs report its class until a later login succeeds.
 */
struct akv_syncer *akv_syncer_new(const struct akv_settings *s, char *errstr,
                                  size_t errstr_size);

/** @brief Destroys the syncer. NULL is a no-op. */
void akv_syncer_destroy(struct akv_syncer *sy);

/** @brief Renews or re-obtains the Vault token when due (cheap). */
void akv_syncer_tick(struct akv_syncer *sy);

/**
 * @brief Syncs one token from authentik to Vault.
 * @returns AKV_CLASS_OK with \p out filled when the work is finished, or the
 *          class of the failure that stopped it (message in \p errstr,
 *          Retry-After in out->retry_after).
 */
enum akv_class akv_sync_token(struct akv_syncer *sy,
                              const struct akv_sync_request *rq,
                              struct akv_sync_outcome *out, char *errstr,
                              size_t errstr_size);

/**
 * @brief Read, compare, write with cas = the version read; on a CAS
 *        mismatch read again and converge, at most \p max_attempts rounds.
 * @returns AKV_CLASS_OK with out->result WRITTEN or UNCHANGED and
 *          out->version set; AKV_CLASS_TRANSIENT when every round lost the
 *          race; or the class of a read/write failure.
 */
enum akv_class akv_sync_converge(const struct akv_cas_ops *ops, void *ctx,
                                 const char *identifier, const cJSON *doc,
                                 long long max_attempts,
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
