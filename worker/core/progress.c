/*
 * progress — lag in messages and seconds, and whether work is stalled.
 */
#include "progress.h"

void akv_progress_compute(const struct akv_progress_in *in,
                          struct akv_progress_memory *mem,
                          struct akv_progress *out)
{
    int64_t end = in->end;
    int64_t taken = in->taken;
    int64_t w = in->watermark;
    int committing; /* finished events wait for a commit */
    int busy;
    long long since;

    /* The end read a moment ago may already be behind what was taken
     * since: the log reaches at least that far. */
    if (end >= 0 && taken > end) {
        end = taken;
    }
    out->end = end;
    out->caught_up =
        in->pending == 0 &&
        (end < 0 || (taken >= 0 ? taken >= end : end == in->start));
    if (out->caught_up) {
        mem->caught_up_ms = in->now_ms;
    }
    if (in->committed >= 0 && end >= 0) {
        out->lag = end > in->committed ? end - in->committed : 0;
    } else {
        out->lag = out->caught_up && end >= 0 ? 0 : -1; /* an empty log */
    }
    if (in->pending > 0 && in->oldest_ms > 0) {
        out->lag_seconds = (double)(in->now_ms - in->oldest_ms) / 1000.0;
    } else if (!out->caught_up) {
        /* Not taken yet: the events are at least as old as the moment
         * the partition was last seen with nothing left. */
        out->lag_seconds = (double)(in->now_ms - mem->caught_up_ms) / 1000.0;
    } else {
        out->lag_seconds = 0;
    }
    if (out->lag_seconds < 0) {
        out->lag_seconds = 0;
    }
    /* Stalled: work to do, and no progress since the later of the last
     * commit and the moment the work came (a partition idle for an hour
     * is not stalled by the event that just arrived). */
    committing = in->committed >= 0 && w > in->committed;
    busy = !out->caught_up || committing;
    if (!busy) {
        mem->idle_ms = in->now_ms;
    }
    since = mem->moved_ms > mem->idle_ms ? mem->moved_ms : mem->idle_ms;
    /* idle_ms is sampled once per look; with nothing finished waiting for
     * a commit, the work came no earlier than its oldest event was
     * written, so a stall is never older than the lag in seconds says. */
    if (in->pending > 0 && in->oldest_ms > since && !committing) {
        since = in->oldest_ms;
    }
    out->stalled = busy && in->now_ms - since >= in->stall_timeout_ms;
}
