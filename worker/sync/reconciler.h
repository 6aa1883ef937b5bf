/*
 * reconciler — Vault brought to authentik's state without an event.
 *
 * A reconcile lists authentik's tokens and the secrets under the Vault
 * prefix (akv_reconcile_plan_build(): every page of both, blocking) and
 * then syncs each identifier through the engine as a request, in the
 * token's lane, so it never races an event sync of the same token.
 *
 * Inside `run`, one replica of the group reconciles every
 * reconcile.interval_ms: the one that holds partition 0 of the topic
 * (akv_reconciler_own()), so scaling needs no coordination of its own. The
 * lists are read on a helper thread; the poll loop hands the engine one
 * request at a time, paced to reconcile.max_requests_per_second toward
 * authentik, so a reconcile takes at most one of the engine's slots from
 * event syncs. A replica that loses partition 0 abandons its run: the
 * reports of requests still out are ignored, and the new owner starts its
 * own schedule.
 */
#ifndef AKV_WORKER_RECONCILER_H
#define AKV_WORKER_RECONCILER_H

#include "drift.h"
#include "engine.h"
#include "err.h"
#include "settings.h"
#include "telemetry.h"

#include <stddef.h>

/* What a reconcile visits: both lists merged (core/drift). */
struct akv_reconcile_plan {
    struct akv_visit_item *items; /**< identifier order, each once */
    size_t n;
    size_t tokens;  /**< tokens authentik listed */
    size_t secrets; /**< secrets under the prefix */
    char **names;   /**< owns the items' identifiers */
    size_t nnames;
};

/**
 * @brief Lists authentik's tokens (every page; mirrored unless their intent
 *        is not in match.intents or match.exclude_identifiers names them)
 *        and the secrets under the Vault prefix, with clients of its own
 *        (a Vault login of its own when the auth method needs one), and
 *        merges them into \p plan. Blocks for as long as the lists take.
 * @returns AKV_OK, or AKV_ERR_TRANSPORT / AKV_ERR_CONFIG / AKV_ERR_NOMEM
 *          with a secret-free message in \p errstr (\p plan then empty).
 */
akv_err_t akv_reconcile_plan_build(const struct akv_settings *s,
                                   struct akv_reconcile_plan *plan,
                                   char *errstr, size_t errstr_size);

/** @brief Frees what \p plan holds (it may be zeroed or built). */
void akv_reconcile_plan_free(struct akv_reconcile_plan *plan);

struct akv_reconciler;

/**
 * @brief The periodic reconcile of `run`, on engine \p e (whose reporter
 *        it becomes). \p wake_fd (-1: none) gets a byte when the lists
 *        are read, so the poll loop turns at once.
 * @returns NULL when out of memory. With reconcile.interval_ms 0 and
 *          reconcile.on_start false it never reconciles.
 */
struct akv_reconciler *akv_reconciler_new(const struct akv_settings *s,
                                          struct akv_engine *e,
                                          struct akv_telemetry *tm,
                                          int wake_fd);

/** @brief Abandons a run in progress (waiting for a list being read to
 *         come back) and frees \p r. NULL is a no-op. */
void akv_reconciler_destroy(struct akv_reconciler *r);

/**
 * @brief This replica now holds partition 0 (\p owner non-zero) or no
 *        longer does: it starts its schedule (a run at once with
 *        reconcile.on_start, before its first successful run), or abandons
 *        its run.
 */
void akv_reconciler_own(struct akv_reconciler *r, int owner);

/**
 * @brief From the poll loop: starts a run when due, hands the engine the
 *        next request when the pace allows, ends a run when every request
 *        is answered.
 * @returns milliseconds until the pace allows the next request (the loop
 *          should turn again by then), or -1.
 */
int akv_reconciler_tick(struct akv_reconciler *r);

/** @returns non-zero while this replica owns the reconcile and a run is
 *           due now or in progress (`run --exit-at-end` waits for it). */
int akv_reconciler_busy(const struct akv_reconciler *r);

#endif /* AKV_WORKER_RECONCILER_H */
