/*
 * sync — one token sync, the unit of work (README.md, "One sync").
 *
 * Read the token's current state from authentik, build the document Vault
 * should hold, and write it with check-and-set only when it differs from
 * what Vault holds. Running a sync twice, or for a stale event, is harmless:
 * it always converges to authentik's current state. A token authentik no
 * longer has (404) is handled per vault.on_delete.
 *
 * This module holds the decisions (document, check-and-set steps,
 * provenance); engine.c runs them over non-blocking transfers.
 */
#ifndef AKV_WORKER_SYNC_H
#define AKV_WORKER_SYNC_H

#include "failure.h"
#include "outcome.h"

#include <cJSON.h>

struct akv_strlist;
struct akv_token; /* authentik.h */

/** Check-and-set convergence, one step at a time (README.md, "One sync"). */
struct akv_cas {
    long long rounds;     /**< writes that lost the race so far */
    long long max_rounds; /**< sync.cas_max_attempts */
};

enum akv_cas_next {
    AKV_CAS_WRITE,     /**< write with cas = the version just read */
    AKV_CAS_READ,      /**< someone else wrote: read again */
    AKV_CAS_UNCHANGED, /**< Vault holds the document: done */
    AKV_CAS_WRITTEN,   /**< our write landed: done */
    AKV_CAS_FAIL,      /**< stop with the class given */
};

/** @returns what follows a read that found the document (\p same) or not. */
enum akv_cas_next akv_cas_after_read(int same);

/**
 * @brief What follows a write that answered \p cls.
 * @param fail set to the class to report when AKV_CAS_FAIL is returned
 *        (AKV_CLASS_TRANSIENT when the race was lost too often).
 */
enum akv_cas_next akv_cas_after_write(struct akv_cas *c, enum akv_class cls,
                                      enum akv_class *fail);

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
