/*
 * control — what tests see and steer outside the Vault API: the log of
 * /v1 requests and the endpoints under /_fake/ (KV dump, counters, request
 * log, resets, revoking login tokens, the fault plan), loopback clients
 * only unless --allow-remote-control.
 */
#include "fv.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Remembers a /v1 request and its answer for /_fake/requests, and prints
 * it with --verbose. */
void fv_log_request(struct fake_vault *fv, const struct fakehttp_request *req,
                    int status)
{
    struct reqlog_entry *e;
    char *path = strdup(req->path);

    pthread_mutex_lock(&fv->log_lock);
    e = &fv->rlog[fv->rlog_head];
    free(e->path);
    snprintf(e->method, sizeof(e->method), "%s", req->method);
    e->path = path; /* NULL on OOM: listed as "" */
    e->status = status;
    fv->rlog_head = (fv->rlog_head + 1) % REQLOG_CAP;
    if (fv->rlog_count < REQLOG_CAP) {
        fv->rlog_count++;
    }
    pthread_mutex_unlock(&fv->log_lock);

    if (fv->cfg.verbose) {
        char safe[512];
        size_t i;

        /* paths hold no secrets, but keep control bytes off the terminal */
        snprintf(safe, sizeof(safe), "%s", req->path);
        for (i = 0; safe[i]; i++) {
            if ((unsigned char)safe[i] < 0x20 || safe[i] == 0x7f) {
                safe[i] = '?';
            }
        }
        fprintf(stderr, "fake-vault: %s %s %d\n", req->method, safe, status);
    }
}

static int cmp_secret(const void *a, const void *b)
{
    const struct kv_secret *x = *(const struct kv_secret *const *)a;
    const struct kv_secret *y = *(const struct kv_secret *const *)b;

    return strcmp(x->node.key, y->node.key);
}

/* GET /_fake/kv */
static void control_kv(struct fake_vault *fv, struct fakehttp_response *resp)
{
    struct kv_secret **all = NULL;
    struct akv_buf b = TEXT_INIT;
    size_t n = 0;
    size_t i;
    size_t j;

    akv_buf_puts(&b, "{\"mount\":");
    fv_json_str(&b, fv->cfg.kv_mount);
    akv_buf_puts(&b, ",\"secrets\":{");
    pthread_mutex_lock(&fv->kv_lock);
    if (fv->secrets.n > 0) {
        all = malloc(fv->secrets.n * sizeof(*all));
        if (!all) {
            pthread_mutex_unlock(&fv->kv_lock);
            akv_buf_free(&b);
            fv_reply_error(resp, 500, "out of memory");
            return;
        }
        for (i = 0; i < fv->secrets.nb; i++) {
            struct fakehtab_node *h;

            for (h = fv->secrets.b[i]; h; h = h->next) {
                all[n++] = (struct kv_secret *)h;
            }
        }
        qsort(all, n, sizeof(*all), cmp_secret);
    }
    for (i = 0; i < n; i++) {
        const struct kv_secret *s = all[i];

        if (i > 0) {
            akv_buf_putc(&b, ',');
        }
        fv_json_str(&b, s->node.key);
        akv_buf_printf(
            &b,
            ":{\"current_version\":%" PRIu64 ",\"oldest_version\":%" PRIu64
            ",\"cas_required\":%s,\"max_versions\":%" PRIu32
            ",\"custom_metadata\":%s,\"created_time\":",
            s->current, s->oldest, s->cas_required ? "true" : "false",
            s->max_versions, s->custom ? s->custom : "null");
        fv_time(&b, s->created);
        akv_buf_puts(&b, ",\"updated_time\":");
        fv_time(&b, s->updated);
        akv_buf_puts(&b, ",\"versions\":{");
        for (j = 0; j < s->nvers; j++) {
            const struct kv_version *v = &s->vers[j];

            akv_buf_printf(&b,
                           "%s\"%" PRIu64 "\":{\"data\":%s,\"created_time\":",
                           j ? "," : "", s->first + j,
                           v->data ? v->data : "null"); /* destroyed */
            fv_time(&b, v->created);
            akv_buf_puts(&b, ",\"deletion_time\":");
            fv_time(&b, v->deleted);
            akv_buf_printf(&b, ",\"destroyed\":%s}",
                           v->destroyed ? "true" : "false");
        }
        akv_buf_puts(&b, "}}");
    }
    pthread_mutex_unlock(&fv->kv_lock);
    free(all);
    akv_buf_puts(&b, "}}\n");
    fv_reply_buf(resp, 200, &b);
}

/* GET /_fake/stats */
static void control_stats(struct fake_vault *fv, struct fakehttp_response *resp)
{
    const struct stats *st = &fv->st;
    const struct fault_stats *fs = &st->faults;
    struct akv_buf b = TEXT_INIT;
    size_t i;

    akv_buf_printf(
        &b,
        "{\"requests\":%llu,\"kv_writes\":%llu,\"kv_write_requests\":%llu,"
        "\"kv_reads\":%llu,\"metadata_reads\":%llu,\"logins\":%llu,"
        "\"login_failures\":%llu,\"renewals\":%llu,\"denied\":%llu,"
        "\"cas_mismatch\":%llu,\"faults\":{\"errors\":{",
        atomic_load(&st->requests), atomic_load(&st->kv_writes),
        atomic_load(&st->kv_write_requests), atomic_load(&st->kv_reads),
        atomic_load(&st->metadata_reads), atomic_load(&st->logins),
        atomic_load(&st->login_failures), atomic_load(&st->renewals),
        atomic_load(&st->denied), atomic_load(&st->cas_mismatch));
    for (i = 0; i < fv_fault_spec.ncodes; i++) {
        akv_buf_printf(&b, "%s\"%d\":%llu", i ? "," : "",
                       fv_fault_spec.codes[i],
                       atomic_load(&fs->common.errors[i]));
    }
    akv_buf_printf(
        &b,
        "},\"dropped\":%llu,\"dropped_after\":%llu,\"truncated\":%llu,"
        "\"sealed\":%llu,\"denied_prefix\":%llu,"
        "\"mount_missing\":%llu,\"write_faults\":%llu,"
        "\"latency_ms_total\":%llu}}\n",
        atomic_load(&fs->common.dropped),
        atomic_load(&fs->common.dropped_after),
        atomic_load(&fs->common.truncated), atomic_load(&fs->sealed),
        atomic_load(&fs->denied_prefix), atomic_load(&fs->mount_missing),
        atomic_load(&fs->write_faults),
        atomic_load(&fs->common.latency_ms_total));
    fv_reply_buf(resp, 200, &b);
}

/* GET /_fake/requests */
static void control_requests(struct fake_vault *fv,
                             struct fakehttp_response *resp)
{
    struct akv_buf b = TEXT_INIT;
    size_t i;
    size_t start;

    akv_buf_puts(&b, "{\"requests\":[");
    pthread_mutex_lock(&fv->log_lock);
    start = (fv->rlog_head + REQLOG_CAP - fv->rlog_count) % REQLOG_CAP;
    for (i = 0; i < fv->rlog_count; i++) {
        const struct reqlog_entry *e = &fv->rlog[(start + i) % REQLOG_CAP];

        akv_buf_puts(&b, i ? ",{\"method\":" : "{\"method\":");
        fv_json_str(&b, e->method);
        akv_buf_puts(&b, ",\"path\":");
        fv_json_str(&b, e->path ? e->path : "");
        akv_buf_printf(&b, ",\"status\":%d}", e->status);
    }
    pthread_mutex_unlock(&fv->log_lock);
    akv_buf_puts(&b, "]}\n");
    fv_reply_buf(resp, 200, &b);
}

/* POST /_fake/reset-stats */
static void control_reset(struct fake_vault *fv, struct fakehttp_response *resp)
{
    struct stats *st = &fv->st;
    size_t i;

    atomic_store(&st->requests, 0);
    atomic_store(&st->kv_writes, 0);
    atomic_store(&st->kv_write_requests, 0);
    atomic_store(&st->kv_reads, 0);
    atomic_store(&st->metadata_reads, 0);
    atomic_store(&st->logins, 0);
    atomic_store(&st->login_failures, 0);
    atomic_store(&st->renewals, 0);
    atomic_store(&st->denied, 0);
    atomic_store(&st->cas_mismatch, 0);
    fakefault_counts_reset(&st->faults.common);
    atomic_store(&st->faults.sealed, 0);
    atomic_store(&st->faults.denied_prefix, 0);
    atomic_store(&st->faults.mount_missing, 0);
    atomic_store(&st->faults.write_faults, 0);
    pthread_mutex_lock(&fv->log_lock);
    for (i = 0; i < REQLOG_CAP; i++) {
        free(fv->rlog[i].path);
        fv->rlog[i].path = NULL;
    }
    fv->rlog_head = 0;
    fv->rlog_count = 0;
    pthread_mutex_unlock(&fv->log_lock);
    fakehttp_reply(resp, 200, "{\"reset\":true}\n");
}

static int is_login_token(const struct fakehtab_node *n)
{
    return ((const struct token *)n)->kind != TOK_ROOT;
}

/* POST /_fake/tokens/revoke-all: every login token, never the root one. */
static void control_revoke_all(struct fake_vault *fv,
                               struct fakehttp_response *resp)
{
    size_t revoked;

    pthread_mutex_lock(&fv->tok_lock);
    revoked = fakehtab_drop_if(&fv->tokens, is_login_token, fv_token_release);
    pthread_mutex_unlock(&fv->tok_lock);
    fakehttp_reply(resp, 200, "{\"revoked\":%zu}\n", revoked);
}

/* Serves /_fake/...: to loopback clients only, unless
 * --allow-remote-control. */
void fv_handle_control(struct fake_vault *fv,
                       const struct fakehttp_request *req,
                       struct fakehttp_response *resp)
{
    static const struct {
        const char *path;
        const char *method;
        void (*fn)(struct fake_vault *, struct fakehttp_response *);
    } routes[] = {
        {"/_fake/kv", "GET", control_kv},
        {"/_fake/stats", "GET", control_stats},
        {"/_fake/requests", "GET", control_requests},
        {"/_fake/reset-stats", "POST", control_reset},
        {"/_fake/tokens/revoke-all", "POST", control_revoke_all},
    };
    size_t i;

    if (!fv->cfg.allow_remote_control && !fakehttp_from_loopback(req)) {
        fv_reply_error(resp, 403, "control endpoints are loopback only");
        return;
    }
    if (strcmp(req->path, "/_fake/faults") == 0) {
        fakefault_control(&fv->faults, req, resp);
        return;
    }
    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(req->path, routes[i].path) != 0) {
            continue;
        }
        if (strcmp(req->method, routes[i].method) != 0 &&
            !(strcmp(routes[i].method, "GET") == 0 &&
              strcmp(req->method, "HEAD") == 0)) {
            fv_reply_error(resp, 405, NULL);
            return;
        }
        routes[i].fn(fv, resp);
        return;
    }
    fv_reply_error(resp, 404, "no such control endpoint");
}
