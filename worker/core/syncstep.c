/*
 * syncstep — the sync state machine's transitions.
 */
#include "syncstep.h"

/* A decision; the sync then waits for the answer to \p req (if any). */
static struct akv_step decided(struct akv_sync_fsm *m, enum akv_step_do what,
                               enum akv_step_req req, enum akv_sync_result r,
                               enum akv_class cls, unsigned flags)
{
    struct akv_step s;

    s.what = what;
    s.req = req;
    s.result = r;
    s.cls = cls;
    s.flags = flags;
    m->waiting = req;
    return s;
}

static struct akv_step request(struct akv_sync_fsm *m, enum akv_step_req req,
                               unsigned flags)
{
    return decided(m, AKV_DO_REQUEST, req, AKV_SYNC_WRITTEN, AKV_CLASS_OK,
                   flags);
}

static struct akv_step finish(struct akv_sync_fsm *m, enum akv_sync_result r,
                              unsigned flags)
{
    return decided(m, AKV_DO_FINISH, AKV_REQ_NONE, r, AKV_CLASS_OK, flags);
}

static struct akv_step fail(struct akv_sync_fsm *m, enum akv_class cls,
                            unsigned flags)
{
    return decided(m, AKV_DO_FAIL, AKV_REQ_NONE, AKV_SYNC_WRITTEN, cls, flags);
}

/* Vault said "invalid token": log in again and repeat the request, once
 * per attempt; a second refusal is the retry policy's to judge. */
static struct akv_step reauth(struct akv_sync_fsm *m, enum akv_step_req req)
{
    if (m->reauthed || !m->opts.can_login) {
        return fail(m, AKV_CLASS_REAUTH, 0);
    }
    m->reauthed = 1;
    return decided(m, AKV_DO_LOGIN, req, AKV_SYNC_WRITTEN, AKV_CLASS_OK, 0);
}

/* Vault first, then authentik: a write rests on a read of each. */
static struct akv_step read_vault(struct akv_sync_fsm *m, unsigned flags)
{
    m->confirm = 0;
    m->checked = 0;
    return request(m, AKV_REQ_VAULT_READ, flags | AKV_STEP_FORGET_READS);
}

/* Whether a delete per \p m's on_delete would change anything: a soft
 * delete does not when no live version is left, a purge only when Vault
 * never held the path. Without a Vault read, assume it would. */
static int delete_due(const struct akv_sync_fsm *m, const struct akv_answer *a)
{
    if (!m->confirm || !a->vault_empty) {
        return 1;
    }
    return m->opts.on_delete == AKV_ON_DELETE_PURGE && m->version > 0;
}

/* Nothing to do for a token authentik does not have: after a Vault read,
 * the cache may remember the secret as it was found. */
static struct akv_step left_alone(struct akv_sync_fsm *m)
{
    return finish(m, AKV_SYNC_GONE,
                  AKV_STEP_FORGET_READS | (m->confirm ? AKV_STEP_REMEMBER_GONE
                                                      : AKV_STEP_FORGET_CACHE));
}

/* authentik has no such token: per vault.on_delete. */
static struct akv_step gone(struct akv_sync_fsm *m, const struct akv_answer *a)
{
    unsigned flags = AKV_STEP_FORGET_READS | AKV_STEP_FORGET_CACHE;

    if (m->opts.on_delete == AKV_ON_DELETE_KEEP || !delete_due(m, a)) {
        return left_alone(m);
    }
    if (m->opts.dry_run) {
        return finish(m, AKV_SYNC_DRY_RUN, flags);
    }
    return request(m,
                   m->opts.on_delete == AKV_ON_DELETE_PURGE ? AKV_REQ_PURGE
                                                            : AKV_REQ_DELETE,
                   flags);
}

static struct akv_step after_authentik(struct akv_sync_fsm *m,
                                       const struct akv_answer *a)
{
    if (a->cls == AKV_CLASS_GONE) {
        return m->deleted ? finish(m, AKV_SYNC_DELETED, 0) : gone(m, a);
    }
    if (a->cls != AKV_CLASS_OK) {
        return fail(m, a->cls, 0);
    }
    if (m->deleted) {
        /* Back under the same identifier since the 404: sync it anew,
         * over the version just deleted. */
        m->deleted = 0;
        return read_vault(m, AKV_STEP_CREATED_AGAIN);
    }
    if (a->filtered) {
        return finish(m, AKV_SYNC_FILTERED, 0);
    }
    if (!m->confirm) {
        if (a->cached) {
            m->version = a->version;
            return finish(m, AKV_SYNC_UNCHANGED, AKV_STEP_CACHED);
        }
        /* Changed since this worker last wrote it: read Vault, then
         * authentik again. */
        return read_vault(m, 0);
    }
    if (a->same) {
        return finish(m, AKV_SYNC_UNCHANGED, AKV_STEP_REMEMBER);
    }
    if (m->checked) {
        /* Changed in authentik since the version remembered: read what
         * Vault holds (how it differs), then authentik again. */
        return read_vault(m, AKV_STEP_FORGET_CACHE);
    }
    if (m->opts.dry_run) {
        return finish(m, AKV_SYNC_DRY_RUN, 0);
    }
    return request(m, AKV_REQ_VAULT_WRITE, 0);
}

static struct akv_step after_vault_read(struct akv_sync_fsm *m,
                                        const struct akv_answer *a)
{
    if (a->cls == AKV_CLASS_REAUTH) {
        return reauth(m, AKV_REQ_VAULT_READ);
    }
    if (a->cls != AKV_CLASS_OK) {
        return fail(m, a->cls, 0);
    }
    m->version = a->version;
    m->confirm = 1;
    return request(m, AKV_REQ_AUTHENTIK, 0);
}

/* The version check: the remembered version is still current and live, or
 * something changed behind the cache's back and Vault must be read. */
static struct akv_step after_vault_version(struct akv_sync_fsm *m,
                                           const struct akv_answer *a)
{
    if (a->cls == AKV_CLASS_REAUTH) {
        return reauth(m, AKV_REQ_VAULT_VERSION);
    }
    if (a->cls != AKV_CLASS_OK) {
        return fail(m, a->cls, 0);
    }
    if (!a->cached) {
        return read_vault(m, AKV_STEP_FORGET_CACHE);
    }
    m->version = a->version;
    m->confirm = 1;
    m->checked = 1;
    return request(m, AKV_REQ_AUTHENTIK, 0);
}

static struct akv_step after_vault_write(struct akv_sync_fsm *m,
                                         const struct akv_answer *a)
{
    switch (a->cls) {
    case AKV_CLASS_OK:
        m->version = a->version;
        return request(m, AKV_REQ_METADATA, AKV_STEP_REMEMBER);
    case AKV_CLASS_REAUTH:
        return reauth(m, AKV_REQ_VAULT_WRITE);
    case AKV_CLASS_SUPERSEDED:
        /* Another writer (a second worker, a person) got in between, or
         * our own earlier write landed but its answer was lost: the next
         * read tells which. Someone who keeps winning is waited out with
         * backoff. */
        if (++m->cas_rounds >= m->opts.cas_max) {
            return fail(m, AKV_CLASS_TRANSIENT,
                        AKV_STEP_SUPERSEDED | AKV_STEP_CAS_EXHAUSTED);
        }
        return read_vault(m, AKV_STEP_SUPERSEDED | AKV_STEP_FORGET_CACHE);
    default:
        return fail(m, a->cls, 0);
    }
}

static struct akv_step after_delete(struct akv_sync_fsm *m,
                                    const struct akv_answer *a)
{
    if (a->cls == AKV_CLASS_REAUTH) {
        return reauth(m, m->waiting);
    }
    if (a->cls != AKV_CLASS_OK) {
        return fail(m, a->cls, 0);
    }
    /* A delete carries no check-and-set. If the identifier was created
     * again after authentik's 404, another replica (its events have a new
     * pk, so maybe another partition) may have written it before the
     * delete landed: ask authentik once more before calling it deleted. */
    m->version = 0;
    m->deleted = 1;
    return request(m, AKV_REQ_AUTHENTIK, 0);
}

struct akv_step akv_sync_start(struct akv_sync_fsm *m,
                               enum akv_sync_begin begin,
                               const struct akv_sync_opts *opts)
{
    m->opts = *opts;
    if (m->opts.cas_max < 1) {
        m->opts.cas_max = 1;
    }
    m->deleted = 0;
    m->reauthed = 0;
    m->version = 0;
    m->cas_rounds = 0;
    switch (begin) {
    case AKV_BEGIN_CACHE:
        m->confirm = 0;
        m->checked = 0;
        return request(m, AKV_REQ_AUTHENTIK, 0);
    case AKV_BEGIN_CHECK:
        m->confirm = 0;
        m->checked = 0;
        return request(m, AKV_REQ_VAULT_VERSION, 0);
    case AKV_BEGIN_VAULT:
    default:
        return read_vault(m, 0);
    }
}

struct akv_step akv_sync_step(struct akv_sync_fsm *m,
                              const struct akv_answer *a)
{
    switch (m->waiting) {
    case AKV_REQ_AUTHENTIK:
        return after_authentik(m, a);
    case AKV_REQ_VAULT_READ:
        return after_vault_read(m, a);
    case AKV_REQ_VAULT_VERSION:
        return after_vault_version(m, a);
    case AKV_REQ_VAULT_WRITE:
        return after_vault_write(m, a);
    case AKV_REQ_METADATA:
        /* Provenance is best effort: the secret itself is written. */
        return finish(m, AKV_SYNC_WRITTEN, 0);
    case AKV_REQ_DELETE:
    case AKV_REQ_PURGE:
        return after_delete(m, a);
    case AKV_REQ_NONE:
    default:
        return fail(m, AKV_CLASS_TRANSIENT, 0);
    }
}

const char *akv_step_req_name(enum akv_step_req r)
{
    switch (r) {
    case AKV_REQ_AUTHENTIK:
        return "authentik";
    case AKV_REQ_VAULT_READ:
        return "vault_read";
    case AKV_REQ_VAULT_VERSION:
        return "vault_version";
    case AKV_REQ_VAULT_WRITE:
        return "vault_write";
    case AKV_REQ_METADATA:
        return "metadata";
    case AKV_REQ_DELETE:
        return "delete";
    case AKV_REQ_PURGE:
        return "purge";
    case AKV_REQ_NONE:
    default:
        return "none";
    }
}
