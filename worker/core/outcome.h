/*
 * outcome — how a finished sync ended: what the logs, the final stats and
 * the metrics count.
 */
#ifndef AKV_WORKER_OUTCOME_H
#define AKV_WORKER_OUTCOME_H

enum akv_sync_result {
    AKV_SYNC_WRITTEN = 0, /**< a new Vault version was written */
    AKV_SYNC_UNCHANGED,   /**< Vault already held the document */
    AKV_SYNC_GONE,        /**< not in authentik; secret kept (on_delete) */
    AKV_SYNC_DELETED,     /**< not in authentik; secret deleted or purged */
    AKV_SYNC_FILTERED,    /**< the token's intent is not mirrored */
    AKV_SYNC_DRY_RUN,     /**< a write or delete was due; none was made */
    AKV_SYNC_RESULTS
};

struct akv_sync_outcome {
    enum akv_sync_result result;
    long long version; /**< Vault version now current (0 if none) */
};

/** @returns a stable lowercase name for \p r ("written", ...). */
const char *akv_sync_result_name(enum akv_sync_result r);

#endif /* AKV_WORKER_OUTCOME_H */
