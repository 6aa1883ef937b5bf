/*
 * reconcile — syncs that no event asked for: `ak2vault sync` for named
 * tokens, `ak2vault reconcile` for every token and every secret. Each goes
 * through the worker's own engine, the same path as an event's sync (Vault
 * read, authentik's detail and key, check-and-set write, provenance), without
 * trusting the cache; a dry run decides and writes nothing.
 */
#ifndef AKV_WORKER_RECONCILE_H
#define AKV_WORKER_RECONCILE_H

#include "err.h"
#include "settings.h"

#include <stdio.h>

struct akv_resync_opts {
    int dry_run;          /**< decide, write and delete nothing */
    int json;             /**< one JSON document instead of a table */
    long long timeout_ms; /**< give up on what is unfinished by then */
};

/** What a run found, for the exit status. */
struct akv_resync_totals {
    size_t tokens;
    size_t drift;  /**< tokens that were not in sync (fixed unless dry) */
    size_t failed; /**< tokens whose sync gave up or did not finish */
};

/**
 * @brief Syncs \p n tokens by identifier now and prints one line each
 *        (identifier, result, drift, Vault version) to \p out.
 * @returns AKV_OK with \p totals set, or an error with a message in
 *          \p errstr (AKV_ERR_INVALID: an identifier that is not a slug).
 */
akv_err_t akv_resync(const struct akv_settings *s, const char *const *ids,
                     size_t n, const struct akv_resync_opts *o, FILE *out,
                     struct akv_resync_totals *totals, char *errstr,
                     size_t errstr_size);

/**
 * @brief Brings Vault to authentik's state: lists authentik's tokens (every
 *        page) and the secrets under the Vault prefix, then syncs each
 *        mirrored token and each secret authentik did not list (only
 *        authentik's 404 for that identifier makes it an orphan, handled
 *        per vault.on_delete); tokens whose intent is not mirrored, or that
 *        match.exclude_identifiers names, are reported and left alone.
 * @returns like akv_resync().
 */
akv_err_t akv_reconcile(const struct akv_settings *s,
                        const struct akv_resync_opts *o, FILE *out,
                        struct akv_resync_totals *totals, char *errstr,
                        size_t errstr_size);

#endif /* AKV_WORKER_RECONCILE_H */
