/*
 * reconcile — requested syncs through the engine, and their report.
 */
#include "reconcile.h"

#include "clock.h"
#include "drift.h"
#include "engine.h"
#include "json.h"
#include "log.h"
#include "matcher.h"
#include "reconciler.h"
#include "telemetry.h"

#include <cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* One token's line of the report. */
struct row {
    const char *identifier;
    int answered;
    int ok;
    enum akv_sync_result result;
    enum akv_drift drift;
    long long version;
    char reason[256];
};

struct run {
    struct row *rows;
    size_t n;
    size_t answered;
};

static void on_report(void *ctx, const struct akv_sync_report *r)
{
    struct run *run = ctx;
    struct row *row;

    if (r->id >= run->n || run->rows[r->id].answered) {
        return;
    }
    row = &run->rows[r->id];
    row->answered = 1;
    row->ok = r->ok;
    row->result = r->result;
    row->drift = r->drift;
    row->version = r->version;
    snprintf(row->reason, sizeof(row->reason), "%s", r->reason);
    run->answered++;
}

/* Events never reach this engine: nothing to finish or dead-letter. */
static void on_done(void *ctx, int32_t partition, int64_t offset)
{
    (void)ctx;
    (void)partition;
    (void)offset;
}

static int on_dead_letter(void *ctx, const char *identifier, int32_t partition,
                          int64_t offset, const struct akv_engine_failure *f)
{
    (void)ctx;
    (void)identifier;
    (void)partition;
    (void)offset;
    (void)f;
    return 0;
}

/* What the row says happened, as a word. */
static const char *outcome(const struct row *r)
{
    if (!r->answered) {
        return "unfinished";
    }
    return r->ok ? akv_sync_result_name(r->result) : "failed";
}

static void print_table(const struct run *run, FILE *out)
{
    size_t i;

    fprintf(out, "%-40s %-10s %-15s %s\n", "TOKEN", "RESULT", "DRIFT",
            "VERSION");
    for (i = 0; i < run->n; i++) {
        const struct row *r = &run->rows[i];

        fprintf(out, "%-40s %-10s %-15s %lld%s%s\n", r->identifier, outcome(r),
                r->answered ? akv_drift_name(r->drift) : "-", r->version,
                r->reason[0] ? "  " : "", r->reason);
    }
}

static int print_json(const struct run *run, const struct akv_resync_totals *t,
                      FILE *out)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "tokens");
    size_t i;

    for (i = 0; arr && i < run->n; i++) {
        const struct row *r = &run->rows[i];
        cJSON *e = cJSON_CreateObject();

        cJSON_AddStringToObject(e, "identifier", r->identifier);
        cJSON_AddStringToObject(e, "result", outcome(r));
        if (r->answered) {
            cJSON_AddStringToObject(e, "drift", akv_drift_name(r->drift));
        } else {
            cJSON_AddNullToObject(e, "drift");
        }
        cJSON_AddNumberToObject(e, "version", (double)r->version);
        if (r->reason[0]) {
            cJSON_AddStringToObject(e, "error", r->reason);
        } else {
            cJSON_AddNullToObject(e, "error");
        }
        cJSON_AddItemToArray(arr, e);
    }
    cJSON_AddNumberToObject(root, "drift", (double)t->drift);
    cJSON_AddNumberToObject(root, "failed", (double)t->failed);
    return akv_json_write_line(out, root);
}

static void count(const struct run *run, struct akv_resync_totals *t)
{
    size_t i;

    memset(t, 0, sizeof(*t));
    t->tokens = run->n;
    for (i = 0; i < run->n; i++) {
        const struct row *r = &run->rows[i];

        if (!r->answered || !r->ok) {
            t->failed++;
        } else if (r->drift != AKV_DRIFT_NONE &&
                   r->drift != AKV_DRIFT_EXCLUDED) {
            t->drift++;
        }
    }
}

/* Runs the engine until every request is answered or the time is up. */
static void run_engine(struct akv_engine *e, const struct run *run,
                       long long timeout_ms)
{
    long long deadline = akv_mono_ms() + timeout_ms;

    while (run->answered < run->n && akv_mono_ms() < deadline) {
        akv_engine_run(e, -1, 100);
    }
    akv_engine_drain(e);
    /* What is still in flight gets a moment to land, not to start anew. */
    deadline = akv_mono_ms() + 2000;
    while (akv_engine_in_flight(e) > 0 && akv_mono_ms() < deadline) {
        akv_engine_run(e, -1, 100);
    }
}

/*
 * Syncs every row not answered yet through an engine of its own, then
 * prints the report.
 */
static akv_err_t run_rows(const struct akv_settings *s, struct run *run,
                          const struct akv_resync_opts *o, FILE *out,
                          struct akv_resync_totals *totals, char *errstr,
                          size_t errstr_size)
{
    struct akv_telemetry *tm;
    struct akv_engine *e = NULL;
    akv_err_t err = AKV_OK;
    size_t i;

    tm = akv_telemetry_new("cli", "", errstr, errstr_size);
    if (!tm) {
        return AKV_ERR_NOMEM;
    }
    e = akv_engine_new(s, tm, on_done, on_dead_letter, NULL, errstr,
                       errstr_size);
    if (!e) {
        err = AKV_ERR_CONFIG;
        goto out;
    }
    akv_engine_set_reporter(e, on_report, run, o->dry_run);
    for (i = 0; i < run->n; i++) {
        if (!run->rows[i].answered &&
            akv_engine_request(e, run->rows[i].identifier, (uint64_t)i) < 0) {
            err = akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
            goto out;
        }
    }
    run_engine(e, run, o->timeout_ms);
    count(run, totals);
    if (!o->json) {
        print_table(run, out);
    } else if (print_json(run, totals, out) < 0) {
        err = akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }

out:
    akv_engine_destroy(e);
    akv_telemetry_free(tm);
    return err;
}

akv_err_t akv_resync(const struct akv_settings *s, const char *const *ids,
                     size_t n, const struct akv_resync_opts *o, FILE *out,
                     struct akv_resync_totals *totals, char *errstr,
                     size_t errstr_size)
{
    struct run run;
    akv_err_t err;
    size_t i;

    memset(&run, 0, sizeof(run));
    for (i = 0; i < n; i++) {
        if (!akv_identifier_valid(ids[i])) {
            return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                            "'%s' is not a token identifier (a slug of "
                            "letters, digits, '-' and '_')",
                            ids[i]);
        }
    }
    run.rows = calloc(n ? n : 1, sizeof(*run.rows));
    if (!run.rows) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    run.n = n;
    for (i = 0; i < n; i++) {
        run.rows[i].identifier = ids[i];
    }
    err = run_rows(s, &run, o, out, totals, errstr, errstr_size);
    free(run.rows);
    return err;
}

/* --- reconcile: both lists, then every identifier ---------------------- */

/* The rows of a reconcile: one per identifier either list named. */
static akv_err_t plan_rows(const struct akv_reconcile_plan *plan,
                           struct run *run, char *errstr, size_t errstr_size)
{
    size_t i;

    run->rows = calloc(plan->n + 1, sizeof(*run->rows));
    if (!run->rows) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    for (i = 0; i < plan->n; i++) {
        struct row *r = &run->rows[i];

        r->identifier = plan->items[i].identifier;
        if (plan->items[i].visit == AKV_VISIT_EXCLUDED) {
            /* Not mirrored: reported, left alone. */
            r->answered = 1;
            r->ok = 1;
            r->result = AKV_SYNC_FILTERED;
            r->drift = AKV_DRIFT_EXCLUDED;
            run->answered++;
        }
    }
    run->n = plan->n;
    return AKV_OK;
}

akv_err_t akv_reconcile(const struct akv_settings *s,
                        const struct akv_resync_opts *o, FILE *out,
                        struct akv_resync_totals *totals, char *errstr,
                        size_t errstr_size)
{
    struct akv_reconcile_plan plan;
    struct run run;
    akv_err_t err;

    memset(&run, 0, sizeof(run));
    err = akv_reconcile_plan_build(s, &plan, errstr, errstr_size);
    if (err == AKV_OK) {
        err = plan_rows(&plan, &run, errstr, errstr_size);
    }
    if (err == AKV_OK) {
        akv_log_info("reconcile",
                     "%zu token(s) in authentik, %zu secret(s) under the "
                     "prefix: %zu identifier(s) to visit",
                     plan.tokens, plan.secrets, run.n);
        err = run_rows(s, &run, o, out, totals, errstr, errstr_size);
    }
    free(run.rows);
    akv_reconcile_plan_free(&plan);
    return err;
}
