/*
 * failure — the classes every upstream answer is sorted into (README.md,
 * "Failures", has what each one leads to).
 *
 * Each upstream has one pure classifier (akv_vault_classify(),
 * akv_authentik_classify()) that maps status, body and transport error to a
 * class; the sync decides what to do from the class alone.
 */
#ifndef AKV_WORKER_FAILURE_H
#define AKV_WORKER_FAILURE_H

enum akv_class {
    AKV_CLASS_OK = 0,     /**< success */
    AKV_CLASS_TRANSIENT,  /**< retry with backoff: outage, 5xx, 429, ... */
    AKV_CLASS_REAUTH,     /**< credentials expired: log in again, retry */
    AKV_CLASS_SUPERSEDED, /**< CAS mismatch: someone else wrote; re-read */
    AKV_CLASS_GONE,       /**< the token no longer exists in authentik */
    AKV_CLASS_CONFIG,     /**< denied / misconfigured: hold, retry slowly */
    AKV_CLASS_POISON,     /**< the event itself is unusable */
};

/** @returns a stable lowercase name for \p c ("transient", ...). */
const char *akv_class_name(enum akv_class c);

#endif /* AKV_WORKER_FAILURE_H */
