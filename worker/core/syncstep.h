/*
 * syncstep — one token sync as a state machine, without the I/O.
 *
 * The engine (sync/engine.c) makes the requests; this file decides which
 * request comes next from the answer to the last one: the order of
 * authentik and Vault reads, check-and-set rounds, re-login, deletes per
 * vault.on_delete and what a sync's result is. No clock, no network, no
 * allocation: test_sync drives it with scripted answers.
 *
 * A write must rest on an authentik read made AFTER the Vault read it
 * checks-and-sets against: whoever wrote the version read had read
 * authentik before writing it, so the key written is at least as new, and
 * a concurrent writer (another worker, a rebalance) can never make the
 * sync put an older key back. So a write goes Vault read, authentik read,
 * check-and-set write. A token the cache knows is first checked against
 * the cache, which needs authentik's answer only. A sync that may not take
 * the cache's word (a reconcile) reads the secret's metadata instead of its
 * data: KV v2 versions never change, so when the current version is the
 * one the cache remembers, and live, Vault holds the document remembered.
 */
#ifndef AKV_WORKER_SYNCSTEP_H
#define AKV_WORKER_SYNCSTEP_H

#include "failure.h"
#include "outcome.h"

/** The requests a sync makes. */
enum akv_step_req {
    AKV_REQ_NONE = 0,
    AKV_REQ_AUTHENTIK,     /**< token detail and view_key, at once */
    AKV_REQ_VAULT_READ,    /**< the secret's current version and data */
    AKV_REQ_VAULT_WRITE,   /**< check-and-set write against the version */
    AKV_REQ_METADATA,      /**< provenance in custom_metadata (best effort) */
    AKV_REQ_DELETE,        /**< soft-delete the current version */
    AKV_REQ_PURGE,         /**< delete every version and the metadata */
    AKV_REQ_VAULT_VERSION, /**< the secret's metadata: its current version
                                and whether that is live */
};

/** Where an attempt begins. */
enum akv_sync_begin {
    AKV_BEGIN_VAULT, /**< read Vault, then authentik */
    AKV_BEGIN_CACHE, /**< authentik; the cache may vouch for Vault */
    AKV_BEGIN_CHECK, /**< Vault's metadata: is the version the cache
                          knows still current and live? then authentik */
};

/** What the engine does next. */
enum akv_step_do {
    AKV_DO_REQUEST, /**< make request `req` */
    AKV_DO_LOGIN,   /**< log in to Vault, then make request `req` */
    AKV_DO_FINISH,  /**< the sync is done with `result` */
    AKV_DO_FAIL,    /**< the attempt failed with `cls` (core/retry.h) */
};

/** Side effects the engine carries out before acting. */
enum akv_step_flag {
    AKV_STEP_FORGET_READS = 1 << 0,  /**< drop detail, key, document */
    AKV_STEP_FORGET_CACHE = 1 << 1,  /**< the cache may not vouch any more */
    AKV_STEP_REMEMBER = 1 << 2,      /**< cache: Vault holds the document */
    AKV_STEP_CACHED = 1 << 3,        /**< finished on the cache's word */
    AKV_STEP_SUPERSEDED = 1 << 4,    /**< a check-and-set write lost */
    AKV_STEP_CAS_EXHAUSTED = 1 << 5, /**< ... too many times in a row */
    AKV_STEP_CREATED_AGAIN = 1 << 6, /**< back in authentik after a 404 */
    AKV_STEP_REMEMBER_GONE = 1 << 7, /**< cache: no such token, and the
                                          secret as Vault was read */
};

enum akv_on_delete {
    AKV_ON_DELETE_KEEP = 0, /**< leave the secret as it is */
    AKV_ON_DELETE_SOFT,     /**< soft-delete its current version */
    AKV_ON_DELETE_PURGE,    /**< remove it with every version */
};

struct akv_step {
    enum akv_step_do what;
    enum akv_step_req req;       /**< AKV_DO_REQUEST, AKV_DO_LOGIN */
    enum akv_sync_result result; /**< AKV_DO_FINISH */
    enum akv_class cls;          /**< AKV_DO_FAIL */
    unsigned flags;              /**< akv_step_flag bits */
};

/**
 * The answer to the request a sync waits for, as the engine read it.
 * For AKV_REQ_AUTHENTIK, `cls` is AKV_CLASS_GONE when either request found
 * no token, else the first failure of detail and view_key (a body that
 * does not parse is AKV_CLASS_TRANSIENT).
 */
struct akv_answer {
    enum akv_class cls;
    long long version; /**< Vault read, write or version check: the
                            version it names; authentik with `cached`: the
                            cached version */
    int filtered;      /**< authentik: the token's intent is not mirrored */
    int cached;        /**< authentik: the cache vouches Vault holds the
                            document authentik's answer makes; version
                            check: the current version is the cache's,
                            and live */
    int same;          /**< authentik after a Vault read or a version
                            check: Vault holds the document authentik's
                            answer makes */
    int vault_empty;   /**< authentik after a Vault read: Vault held no
                            live version (for a dry run's verdict) */
};

/** How a sync behaves, fixed for its attempt. */
struct akv_sync_opts {
    enum akv_on_delete on_delete;
    int can_login;     /**< Vault's auth method can log in again */
    long long cas_max; /**< sync.cas_max_attempts (at least 1) */
    int dry_run;       /**< decide, but write and delete nothing */
};

/** One sync's state. Set up by akv_sync_start(), read-only elsewhere. */
struct akv_sync_fsm {
    enum akv_step_req waiting; /**< the request whose answer is due */
    struct akv_sync_opts opts;
    int confirm;          /**< authentik is read after a Vault read */
    int checked;          /**< ... which was the version check */
    int deleted;          /**< authentik is read after a delete */
    int reauthed;         /**< this attempt logged in again already */
    long long version;    /**< the version Vault holds, as last learned */
    long long cas_rounds; /**< check-and-set writes lost so far */
};

/**
 * @brief Begins an attempt where \p begin says. A dry run finishes with
 *        AKV_SYNC_DRY_RUN where it would write or delete.
 */
struct akv_step akv_sync_start(struct akv_sync_fsm *m,
                               enum akv_sync_begin begin,
                               const struct akv_sync_opts *opts);

/** @brief What follows the answer \p a to the request the sync waits for. */
struct akv_step akv_sync_step(struct akv_sync_fsm *m,
                              const struct akv_answer *a);

/** @returns a stable lowercase name for \p r ("vault_read", ...). */
const char *akv_step_req_name(enum akv_step_req r);

#endif /* AKV_WORKER_SYNCSTEP_H */
