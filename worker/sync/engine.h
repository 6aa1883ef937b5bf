/*
 * engine — many token syncs in flight, none of them blocking.
 *
 * The consumer hands every token event to the engine; the engine keeps at
 * most one sync per token (lanes.c: later events ride on one follow-up
 * sync), at most sync.max_in_flight syncs running, and runs each sync as a
 * state machine over libcurl multi transfers: authentik's token detail and
 * key at once, then Vault's read, check-and-set write and provenance. A
 * failed sync waits for its backoff on a timer; nothing else waits for it.
 * When a sync finishes, the engine reports every event it answered for, so
 * the consumer can advance its partition watermark (offsets.c).
 */
#ifndef AKV_WORKER_ENGINE_H
#define AKV_WORKER_ENGINE_H

#include "drift.h"
#include "outcome.h"
#include "settings.h"
#include "telemetry.h"

#include <stdint.h>

struct akv_engine_event {
    const char *identifier; /**< validated slug */
    const char *event_pk;   /**< "" when unknown */
    const char *action;
    int32_t partition;
    int64_t offset;
    int behind; /**< many more events follow in the partition: the sync
                     may wait sync.catchup_delay_ms for them to join */
};

/**
 * @brief Called for every event whose work is finished (synced, or
 *        dead-lettered after the retry limit).
 */
typedef void(akv_engine_done_fn)(void *ctx, int32_t partition, int64_t offset);

/** What a requested sync (akv_engine_request()) found and did. */
struct akv_sync_report {
    const char *identifier;
    uint64_t id; /**< the request's */
    int ok;      /**< 0: the sync gave up (sync.max_attempts); see reason */
    enum akv_sync_result result;
    enum akv_drift drift; /**< how Vault's copy differed when it was read */
    long long version;    /**< Vault's version after the sync (0: none) */
    const char *reason;   /**< when !ok: why, secret-free */
};

/** @brief Called once for every request, when its sync has answered it. */
typedef void(akv_engine_report_fn)(void *ctx, const struct akv_sync_report *r);

/** Why a sync gave up on its events: what their dead-letter records say. */
struct akv_engine_failure {
    const char *reason; /**< human-readable, secret-free */
    unsigned attempts;  /**< sync attempts made */
    long long first_ms; /**< wall-clock ms of the first failure */
    long long last_ms;  /**< wall-clock ms of the last failure */
};

/**
 * @brief Dead-letters the event at (partition, offset) of token
 *        \p identifier, whose sync gave up after sync.max_attempts.
 * @returns 0 when that is done (or the dead-letter topic is disabled), -1
 *          when it cannot be now: the sync then keeps retrying.
 */
typedef int(akv_engine_dead_letter_fn)(void *ctx, const char *identifier,
                                       int32_t partition, int64_t offset,
                                       const struct akv_engine_failure *f);

struct akv_engine;

/**
 * @brief Creates the engine and its upstream clients, and starts the
 *        first Vault login (or the configured token's lookup).
 * @remark \p s and \p tm must outlive the engine. Nothing here waits for
 *         an answer: the login runs in akv_engine_run() like every other
 *         request, syncs that need the token wait for it, and a failed
 *         login is logged, not fatal (syncs retry until one succeeds).
 */
struct akv_engine *akv_engine_new(const struct akv_settings *s,
                                  struct akv_telemetry *tm,
                                  akv_engine_done_fn *done,
                                  akv_engine_dead_letter_fn *dead_letter,
                                  void *ctx, char *errstr, size_t errstr_size);

/** @brief Destroys the engine, abandoning whatever is in flight. */
void akv_engine_destroy(struct akv_engine *e);

/**
 * @brief Takes a token event. Its done callback comes later (possibly
 *        within a later akv_engine_run()).
 * @returns 0, or -1 when out of memory (the event stays unfinished).
 */
int akv_engine_submit(struct akv_engine *e, const struct akv_engine_event *ev);

/**
 * @brief Asks for a sync of \p identifier that no event asked for (a
 *        reconcile, `ak2vault sync`). It shares the token's lane with event
 *        syncs, so the two never race, and it does not take the cache's
 *        word for Vault: it reads Vault. Its report goes to the reporter.
 * @returns 0, or -1 when out of memory.
 */
int akv_engine_request(struct akv_engine *e, const char *identifier,
                       uint64_t id);

/**
 * @brief Sets who hears of requested syncs, and whether the engine only
 *        decides (\p dry_run: it writes and deletes nothing, and reports
 *        AKV_SYNC_DRY_RUN where it would have).
 */
void akv_engine_set_reporter(struct akv_engine *e, akv_engine_report_fn *fn,
                             void *ctx, int dry_run);

/**
 * @brief Starts what can start, runs transfers and timers, and waits up to
 *        \p timeout_ms for progress or for \p wake_fd to become readable
 *        (-1: none).
 */
void akv_engine_run(struct akv_engine *e, int wake_fd, int timeout_ms);

/**
 * @brief Forgets the events of a revoked partition: their syncs finish or
 *        are abandoned without reporting them (the next owner redoes them).
 */
void akv_engine_drop_partition(struct akv_engine *e, int32_t partition);

/**
 * @brief The consumer's assignment changed (partitions assigned, revoked
 *        or lost): forgets everything the engine remembered about Vault,
 *        and keeps syncs begun before from remembering.
 */
void akv_engine_assignment_changed(struct akv_engine *e);

/** @returns syncs running or waiting to run or to retry (busy lanes). */
size_t akv_engine_busy(const struct akv_engine *e);

/** @returns syncs deferred while their partition catches up. */
size_t akv_engine_deferred(const struct akv_engine *e);

/** @brief Starts every deferred sync on the next akv_engine_run(): the
 *         consumer caught up, so no later event is coming soon. */
void akv_engine_release_deferred(struct akv_engine *e);

/** @returns syncs with requests out right now. */
size_t akv_engine_in_flight(const struct akv_engine *e);

/**
 * @brief Shutting down: start no sync and no retry any more; the ones
 *        running finish.
 */
void akv_engine_drain(struct akv_engine *e);

/** @returns seconds before the Vault token expires: INFINITY when it
 *           never does, 0 when there is none. */
double akv_engine_token_ttl(const struct akv_engine *e);

/** @returns the lifetime the Vault token was given when obtained
 *           (akv_vault_token_lifetime()). */
double akv_engine_token_lease(const struct akv_engine *e);

/** @brief Starts the Vault token's renewal, or a new login, when due
 *         (the answer arrives within akv_engine_run()); once a second,
 *         reads the token files (vault.token_file, authentik.token_file)
 *         again if they changed. */
void akv_engine_tick(struct akv_engine *e);

/**
 * @brief Reads the token files again whether they changed or not
 *        (SIGHUP); a new token is used by the requests started after.
 * @returns how many tokens changed, or -1 when no token comes from a file.
 */
int akv_engine_reload_credentials(struct akv_engine *e);

#endif /* AKV_WORKER_ENGINE_H */
