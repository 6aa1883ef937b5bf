/*
 * auth — tokens and the auth endpoints: IDs and token strings, the token
 * table, kubernetes and approle login, lookup-self and renew-self, and the
 * token check every other /v1 request goes through.
 */
#include "fv.h"

#include "backoff.h"
#include "clock.h"
#include "wipe.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A JWT file is a service-account token: small. */
#define JWT_FILE_MAX (64u * 1024u)

/* Per-thread splitmix64, seeded by akv_backoff_random() (the kernel's
 * randomness): request IDs and tokens need to be unique, not secret, and
 * must not cost a syscall each. */
static _Thread_local uint64_t rng_x;

static _Thread_local int rng_ready;

static uint64_t rng_next(void)
{
    uint64_t z;

    if (!rng_ready) {
        rng_x = akv_backoff_random();
        rng_ready = 1;
    }
    rng_x += 0x9e3779b97f4a7c15ULL;
    z = rng_x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A random (version 4) UUID, as Vault's IDs and accessors are. */
void fv_uuid(char out[UUID_LEN + 1])
{
    uint64_t hi = rng_next();
    uint64_t lo = rng_next();

    hi = (hi & ~0xf000ULL) | 0x4000ULL;       /* version 4 */
    lo = (lo & ~(3ULL << 62)) | (2ULL << 62); /* RFC 4122 */
    snprintf(out, UUID_LEN + 1,
             "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64
             "-%012" PRIx64,
             hi >> 32, (hi >> 16) & 0xffff, hi & 0xffff, lo >> 48,
             lo & (uint64_t)0xffffffffffffULL);
}

#define TOKEN_LEN 28 /* "hvs." + 24 */

static void gen_token(char out[TOKEN_LEN + 1])
{
    static const char alnum[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    int i;

    memcpy(out, "hvs.", 4);
    for (i = 4; i < TOKEN_LEN; i++) {
        out[i] = alnum[rng_next() % 62];
    }
    out[TOKEN_LEN] = '\0';
}

/* A table entry for the token \p id (copied) with a fresh accessor; NULL
 * when out of memory. */
struct token *fv_token_new(const char *id, enum tok_kind kind, size_t role)
{
    struct token *t = calloc(1, sizeof(*t));

    if (!t) {
        return NULL;
    }
    t->node.key = strdup(id);
    if (!t->node.key) {
        free(t);
        return NULL;
    }
    t->kind = kind;
    t->role = role;
    fv_uuid(t->accessor);
    return t;
}

static void token_free(struct token *t)
{
    if (t) {
        akv_wipe_free(t->node.key);
        free(t);
    }
}

/* Frees a token the table gave up (a fakehtab release function). */
void fv_token_release(struct fakehtab_node *n)
{
    token_free((struct token *)n);
}

/*
 * Looks a token up and copies its entry. Expired entries are dropped on the
 * way, so the table does not keep every token a long test ever issued.
 * @returns 1 when valid.
 */
static int token_lookup(struct fake_vault *fv, const char *id,
                        struct token *snap)
{
    int64_t now = akv_wall_ns();
    struct token *t;
    int ok = 0;

    pthread_mutex_lock(&fv->tok_lock);
    t = (struct token *)fakehtab_find(&fv->tokens, id);
    if (t) {
        if (t->kind != TOK_ROOT && t->expires <= now) {
            fakehtab_remove(&fv->tokens, id);
            token_free(t);
        } else {
            *snap = *t;
            snap->node.next = NULL;
            snap->node.key = NULL;
            ok = 1;
        }
    }
    pthread_mutex_unlock(&fv->tok_lock);
    return ok;
}

static const char *token_policies_json(const struct token *t)
{
    /* Vault sorts policies (policyutil.SanitizePolicies) */
    return t->kind == TOK_ROOT ? "[\"root\"]" : "[\"ak2vault\",\"default\"]";
}

static const char *token_entity(const struct fake_vault *fv,
                                const struct token *t)
{
    if (t->kind == TOK_K8S) {
        return fv->cfg.k8s[t->role].entity_id;
    }
    if (t->kind == TOK_APPROLE) {
        return fv->cfg.approles[t->role].entity_id;
    }
    return "";
}

/* The auth metadata a login attaches (also the token's "meta"). */
static void sb_token_meta(struct akv_buf *b, const struct fake_vault *fv,
                          const struct token *t)
{
    if (t->kind == TOK_K8S) {
        const struct k8s_role *r = &fv->cfg.k8s[t->role];

        akv_buf_puts(b, "{\"role\":");
        fv_json_str(b, r->name);
        akv_buf_printf(b,
                       ",\"service_account_name\":\"ak2vault\","
                       "\"service_account_namespace\":\"default\","
                       "\"service_account_secret_name\":\"\","
                       "\"service_account_uid\":\"%s\"}",
                       r->sa_uid);
    } else if (t->kind == TOK_APPROLE) {
        akv_buf_puts(b, "{\"role_name\":\"ak2vault\"}");
    } else {
        akv_buf_puts(b, "null");
    }
}

/* The "auth" block of login and renew responses (api.SecretAuth order). */
static void sb_auth_block(struct akv_buf *b, const struct fake_vault *fv,
                          const char *id, const struct token *t,
                          int64_t lease_duration)
{
    const char *pol = token_policies_json(t);

    akv_buf_puts(b, "{\"client_token\":");
    fv_json_str(b, id);
    akv_buf_printf(b,
                   ",\"accessor\":\"%s\",\"policies\":%s,\"token_policies\":%s,"
                   "\"metadata\":",
                   t->accessor, pol, pol);
    sb_token_meta(b, fv, t);
    akv_buf_printf(b,
                   ",\"lease_duration\":%" PRId64 ",\"renewable\":true,"
                   "\"entity_id\":\"%s\",\"token_type\":\"service\","
                   "\"orphan\":true,\"mfa_requirement\":null,\"num_uses\":0}",
                   lease_duration, token_entity(fv, t));
}

/* Issues a login token; replies 200 with the auth block. */
static void issue_token(struct rq *rq, enum tok_kind kind, size_t role,
                        const char *mount_type, const char *warning)
{
    struct fake_vault *fv = rq->fv;
    int64_t ttl = fv->cfg.token_ttl;
    int64_t max_ttl = fv->cfg.token_max_ttl;
    const struct vault_faults *vx = fv_vfaults(rq->fc);
    const char *warnings[1];
    char id[TOKEN_LEN + 1];
    struct token *t;
    struct token snap;
    struct akv_buf b = TEXT_INIT;
    struct akv_buf auth = TEXT_INIT;

    memset(&snap, 0, sizeof(snap));
    /* a fault plan may shorten the lives of tokens issued from now on */
    if (vx && vx->token_ttl > 0) {
        ttl = vx->token_ttl;
    }
    if (vx && vx->token_max_ttl > 0) {
        max_ttl = vx->token_max_ttl;
    }
    if (ttl > max_ttl) {
        ttl = max_ttl;
    }
    pthread_mutex_lock(&fv->tok_lock);
    do {
        gen_token(id);
    } while (fakehtab_find(&fv->tokens, id));
    t = fv_token_new(id, kind, role);
    if (t) {
        t->issued = akv_wall_ns();
        t->expires = fv_ns_after(t->issued, ttl);
        t->creation_ttl = ttl;
        t->max_ttl = max_ttl;
        fakehtab_insert(&fv->tokens, &t->node);
        snap = *t;
    }
    pthread_mutex_unlock(&fv->tok_lock);
    if (!t) {
        fv_reply_error(rq->resp, 500, "out of memory");
        return;
    }
    STAT_INC(fv, logins);
    sb_auth_block(&auth, fv, id, &snap, ttl);
    if (auth.err != AKV_OK) {
        akv_buf_free(&auth);
        fv_reply_error(rq->resp, 500, "out of memory");
        return;
    }
    fv_env_begin(&b);
    akv_buf_puts(&b, "null");
    warnings[0] = warning;
    fv_env_end(&b, warnings, warning ? 1 : 0, auth.data, mount_type, 1);
    akv_buf_free(&auth);
    fv_reply_buf(rq->resp, 200, &b);
}

/* Reads a JWT file and strips surrounding whitespace. NULL on failure. */
static char *read_jwt_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (!f) {
        fprintf(stderr, "fake-vault: cannot open JWT file %s: %s\n", path,
                strerror(errno));
        return NULL;
    }
    buf = malloc(JWT_FILE_MAX + 1);
    if (!buf) {
        fclose(f);
        return NULL;
    }
    n = fread(buf, 1, JWT_FILE_MAX, f);
    fclose(f);
    buf[n] = '\0';
    fv_trim_space(buf);
    return buf;
}

/* A refused login: counted, and answered \p status with \p msg. */
static void login_refused(struct rq *rq, int status, const char *msg)
{
    STAT_INC(rq->fv, login_failures);
    fv_reply_error(rq->resp, status, msg);
}

/* Reads the two string fields known[0] and known[1] of a login into \p a
 * and \p b (NULL when absent). @returns 0, or -1 with the refusal set. */
static int login_fields(struct rq *rq, const char *const *known, char **a,
                        char **b)
{
    struct akv_buf err = TEXT_INIT;
    int failed;

    *b = NULL;
    *a = fv_field_string(rq->body, known[0], &err, &failed);
    if (!failed) {
        *b = fv_field_string(rq->body, known[1], &err, &failed);
    }
    if (failed) {
        login_refused(rq, err.err != AKV_OK ? 500 : 400, fv_text(&err));
    }
    akv_buf_free(&err);
    return failed ? -1 : 0;
}

/* A token for the login to \p role, with the warning about the fields of
 * the body other than \p known. */
static void login_granted(struct rq *rq, const char *const *known,
                          enum tok_kind kind, size_t role,
                          const char *mount_type)
{
    struct akv_buf warn = TEXT_INIT;

    fv_ignored_params(rq->body, known, &warn);
    issue_token(rq, kind, role, mount_type, warn.len ? warn.data : NULL);
    akv_buf_free(&warn);
}

/* POST auth/{k8s-mount}/login (vault-plugin-auth-kubernetes) */
void fv_k8s_login(struct rq *rq)
{
    static const char *const known[] = {"role", "jwt", NULL};
    struct fake_vault *fv = rq->fv;
    struct akv_buf msg = TEXT_INIT;
    char *role;
    char *jwt;
    char *want = NULL;
    size_t i;

    if (login_fields(rq, known, &role, &jwt) < 0) {
        goto out;
    }
    if (!role || !*role) {
        login_refused(rq, 400, "missing role");
        goto out;
    }
    if (!jwt || !*jwt) {
        login_refused(rq, 400, "missing jwt");
        goto out;
    }
    for (i = 0; i < fv->cfg.nk8s; i++) {
        if (strcmp(fv->cfg.k8s[i].name, role) == 0) {
            break;
        }
    }
    if (i == fv->cfg.nk8s) {
        akv_buf_puts(&msg, "invalid role name ");
        fv_go_quote(&msg, role);
        login_refused(rq, 400, fv_text(&msg));
        goto out;
    }
    /* read at every login so a test can rotate the projected token */
    want = read_jwt_file(fv->cfg.k8s[i].jwt_file);
    if (!want || strcmp(want, jwt) != 0) {
        login_refused(rq, 403, "permission denied");
        goto out;
    }
    login_granted(rq, known, TOK_K8S, i, "kubernetes");
out:
    akv_buf_free(&msg);
    free(role);
    akv_wipe_free(jwt);
    akv_wipe_free(want);
}

/* POST auth/approle/login */
void fv_approle_login(struct rq *rq)
{
    static const char *const known[] = {"role_id", "secret_id", NULL};
    struct fake_vault *fv = rq->fv;
    char *role_id;
    char *secret_id;
    size_t i;

    if (login_fields(rq, known, &role_id, &secret_id) < 0) {
        goto out;
    }
    if (role_id) {
        fv_trim_space(role_id);
    }
    if (secret_id) {
        fv_trim_space(secret_id);
    }
    if (!role_id || !*role_id) {
        login_refused(rq, 400, "missing role_id");
        goto out;
    }
    for (i = 0; i < fv->cfg.napproles; i++) {
        if (strcmp(fv->cfg.approles[i].role_id, role_id) == 0) {
            break;
        }
    }
    if (i == fv->cfg.napproles) {
        login_refused(rq, 400, "invalid role or secret ID");
        goto out;
    }
    if (!secret_id || !*secret_id) {
        login_refused(rq, 400, "missing secret_id");
        goto out;
    }
    if (strcmp(fv->cfg.approles[i].secret_id, secret_id) != 0) {
        login_refused(rq, 400, "invalid role or secret ID");
        goto out;
    }
    login_granted(rq, known, TOK_APPROLE, i, "approle");
out:
    free(role_id);
    akv_wipe_free(secret_id);
}

/* GET auth/token/lookup-self */
void fv_lookup_self(struct rq *rq)
{
    struct fake_vault *fv = rq->fv;
    const struct token *t = &rq->tok;
    int64_t now = akv_wall_ns();
    struct akv_buf b = TEXT_INIT;

    if (rq->op != OP_READ) {
        fv_reply_error(rq->resp, 405, MSG_UNSUPPORTED_OP);
        return;
    }
    fv_env_begin(&b);
    akv_buf_printf(&b,
                   "{\"accessor\":\"%s\",\"creation_time\":%lld,"
                   "\"creation_ttl\":%" PRId64 ",\"display_name\":",
                   t->accessor, (long long)(t->issued / NS_PER_SEC),
                   t->creation_ttl);
    if (t->kind == TOK_ROOT) {
        akv_buf_puts(&b, "\"root\"");
    } else if (t->kind == TOK_K8S) {
        /* the mount path, '/' turned into '-', then namespace-name */
        const char *m;

        akv_buf_putc(&b, '"');
        for (m = fv->cfg.k8s_mount; *m; m++) {
            akv_buf_putc(&b, *m == '/' ? '-' : *m);
        }
        akv_buf_puts(&b, "-default-ak2vault\"");
    } else {
        akv_buf_puts(&b, "\"approle\"");
    }
    akv_buf_puts(&b, ",\"entity_id\":");
    fv_json_str(&b, token_entity(fv, t));
    akv_buf_puts(&b, ",\"expire_time\":");
    if (t->kind == TOK_ROOT) {
        akv_buf_puts(&b, "null");
    } else {
        fv_time(&b, t->expires);
    }
    akv_buf_puts(&b, ",\"explicit_max_ttl\":0,\"id\":");
    fv_json_str(&b, rq->token);
    if (t->kind != TOK_ROOT) {
        akv_buf_puts(&b, ",\"issue_time\":");
        fv_time(&b, t->issued);
        if (t->renewed != 0) {
            akv_buf_puts(&b, ",\"last_renewal\":");
            fv_time(&b, t->renewed);
            akv_buf_printf(&b, ",\"last_renewal_time\":%lld",
                           (long long)(t->renewed / NS_PER_SEC));
        }
    }
    akv_buf_puts(&b, ",\"meta\":");
    sb_token_meta(&b, fv, t);
    akv_buf_puts(&b, ",\"num_uses\":0,\"orphan\":true,\"path\":");
    if (t->kind == TOK_ROOT) {
        akv_buf_puts(&b, "\"auth/token/root\"");
    } else if (t->kind == TOK_K8S) {
        akv_buf_puts(&b, "\"auth/");
        akv_buf_puts(&b, fv->cfg.k8s_mount);
        akv_buf_puts(&b, "/login\"");
    } else {
        akv_buf_puts(&b, "\"auth/approle/login\"");
    }
    akv_buf_printf(&b, ",\"policies\":%s", token_policies_json(t));
    if (t->kind == TOK_ROOT) {
        akv_buf_puts(&b, ",\"ttl\":0");
    } else {
        int64_t left = (t->expires - now) / NS_PER_SEC;

        akv_buf_printf(&b, ",\"renewable\":true,\"ttl\":%" PRId64,
                       left < 0 ? 0 : left);
    }
    akv_buf_puts(&b, ",\"type\":\"service\"}");
    fv_env_end(&b, NULL, 0, NULL, "token", 1);
    fv_reply_buf(rq->resp, 200, &b);
}

/* POST auth/token/renew-self (framework.CalculateTTL for the new TTL) */
void fv_renew_self(struct rq *rq)
{
    static const char *const known[] = {"increment", "token", NULL};
    struct fake_vault *fv = rq->fv;
    struct akv_buf err = TEXT_INIT;
    struct akv_buf b = TEXT_INIT;
    struct akv_buf auth = TEXT_INIT;
    struct akv_buf capw = TEXT_INIT;
    struct akv_buf ignw = TEXT_INIT;
    const char *warnings[2];
    size_t nwarn = 0;
    struct token *t;
    struct token snap;
    int64_t now;
    int64_t increment = 0;
    int64_t ttl;
    int64_t max_valid;
    int found = 0;

    memset(&snap, 0, sizeof(snap));
    if (rq->op != OP_WRITE) {
        fv_reply_error(rq->resp, 405, MSG_UNSUPPORTED_OP);
        return;
    }
    if (fv_field_duration(rq->body, "increment", &increment, &err) < 0) {
        fv_reply_error(rq->resp, 400, fv_text(&err));
        akv_buf_free(&err);
        return;
    }
    if (rq->tok.kind == TOK_ROOT) {
        fv_reply_error(rq->resp, 400, "lease is not renewable");
        return;
    }
    /* the TTL the token was issued with stands in for the role's TTL */
    ttl = increment > 0 ? increment : rq->tok.creation_ttl;
    pthread_mutex_lock(&fv->tok_lock);
    t = (struct token *)fakehtab_find(&fv->tokens, rq->token);
    now = akv_wall_ns();
    if (t && now <= t->expires) {
        /* both ends are truncated to seconds, as CalculateTTL does */
        max_valid = t->issued / NS_PER_SEC + t->max_ttl - now / NS_PER_SEC;
        if (max_valid > 0) {
            if (max_valid < ttl) {
                char want[48];
                char cap[48];

                fv_fmt_duration(want, sizeof(want), ttl);
                fv_fmt_duration(cap, sizeof(cap), max_valid);
                akv_buf_printf(
                    &capw,
                    "TTL of \"%s\" exceeded the effective max_ttl of "
                    "\"%s\"; TTL value is capped accordingly",
                    want, cap);
                ttl = max_valid;
            }
            t->expires = fv_ns_after(now, ttl);
            t->renewed = now;
            snap = *t;
            found = 1;
        }
    }
    pthread_mutex_unlock(&fv->tok_lock);
    if (!found) {
        /* it expired or was revoked since authentication */
        akv_buf_free(&capw);
        fv_reply_error(rq->resp, 403, MSG_INVALID_TOKEN);
        return;
    }
    STAT_INC(fv, renewals);
    if (capw.len) {
        warnings[nwarn++] = capw.data;
    }
    if (fv_ignored_params(rq->body, known, &ignw)) {
        warnings[nwarn++] = ignw.data;
    }
    sb_auth_block(&auth, fv, rq->token, &snap, ttl);
    fv_env_begin(&b);
    akv_buf_puts(&b, "null");
    fv_env_end(&b, warnings, nwarn,
               auth.err != AKV_OK ? "null" : akv_buf_str(&auth), "token", 1);
    if (auth.err != AKV_OK || capw.err != AKV_OK || ignw.err != AKV_OK) {
        b.err = AKV_ERR_NOMEM;
    }
    akv_buf_free(&auth);
    akv_buf_free(&capw);
    akv_buf_free(&ignw);
    fv_reply_buf(rq->resp, 200, &b);
}

/* The token from X-Vault-Token, else from "Authorization: Bearer ...". */
static const char *request_token(const struct fakehttp_request *req)
{
    const char *t = fakehttp_header(req, "X-Vault-Token");
    const char *a;

    if (t && *t) {
        return t;
    }
    a = fakehttp_header(req, "Authorization");
    if (a && strncmp(a, "Bearer ", 7) == 0) {
        a += 7;
        while (*a == ' ') {
            a++;
        }
        if (*a) {
            return a;
        }
    }
    return NULL;
}

/* @returns 1 when authenticated; otherwise the 403 is already set. */
int fv_authenticate(struct rq *rq)
{
    const char *t = request_token(rq->http);

    if (!t) {
        fv_reply_error(rq->resp, 403, "permission denied");
        return 0;
    }
    if (!token_lookup(rq->fv, t, &rq->tok)) {
        fv_reply_error(rq->resp, 403, MSG_INVALID_TOKEN);
        return 0;
    }
    rq->token = t;
    return 1;
}
