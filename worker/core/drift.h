/*
 * drift — how Vault's copy of a token differs from what authentik says,
 * and which identifiers a reconcile visits.
 *
 * A reconcile compares two lists (authentik's tokens, the secrets under
 * the Vault prefix) and then syncs every identifier the way an event
 * would; each sync says what it found with akv_drift_of(). Pure.
 */
#ifndef AKV_WORKER_DRIFT_H
#define AKV_WORKER_DRIFT_H

#include <cJSON.h>
#include <stddef.h>

enum akv_drift {
    AKV_DRIFT_NONE = 0,  /**< Vault holds what authentik says */
    AKV_DRIFT_MISSING,   /**< no live version in Vault */
    AKV_DRIFT_STALE_KEY, /**< Vault holds another key */
    AKV_DRIFT_INTENT,    /**< the key is right, the intent is not */
    AKV_DRIFT_FIELDS,    /**< key and intent right, another field not */
    AKV_DRIFT_ORPHAN,    /**< in Vault, and authentik has no such token */
    AKV_DRIFT_EXCLUDED,  /**< in authentik, not mirrored (intent or
                              match.exclude_identifiers) */
    AKV_DRIFT_KINDS
};

/**
 * @brief What a token's Vault copy \p vault_data (NULL: none, or its
 *        current version is deleted) lacks compared with the document
 *        \p doc built from authentik ({"key", "intent", ...}).
 */
enum akv_drift akv_drift_of(const cJSON *vault_data, const cJSON *doc);

/** @returns a stable lowercase name ("in_sync", "stale_key", ...). */
const char *akv_drift_name(enum akv_drift d);

/** What a reconcile does with one identifier. */
enum akv_visit {
    AKV_VISIT_SYNC,     /**< a mirrored token: sync it */
    AKV_VISIT_ORPHAN,   /**< only in Vault: sync it too, so that only
                             authentik's 404 for it proves it gone */
    AKV_VISIT_EXCLUDED, /**< in authentik, not mirrored: left alone */
};

struct akv_visit_item {
    const char *identifier;
    enum akv_visit visit;
};

/**
 * @brief Merges authentik's tokens and Vault's secrets into the list of
 *        identifiers a reconcile visits, in identifier order, each once.
 * @param tokens authentik's token identifiers; sorted here.
 * @param mirrored per token (same order as \p tokens on entry): non-zero
 *        when its intent is mirrored and it is not excluded.
 * @param secrets the identifiers under the Vault prefix; sorted here.
 * @param out room for ntokens + nsecrets items.
 * @returns 0 with the number of items written to \p out in \p count, or
 *          -1 when out of memory.
 */
int akv_visit_plan(const char **tokens, int *mirrored, size_t ntokens,
                   const char **secrets, size_t nsecrets,
                   struct akv_visit_item *out, size_t *count);

#endif /* AKV_WORKER_DRIFT_H */
