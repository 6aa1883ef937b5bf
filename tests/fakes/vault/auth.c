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

/* Vault 1.10+ service tokens: "hvs." and the base64url (unpadded) of a
 * protobuf SignedToken: field 1 = 1 (08 01), field 2 = 32 random bytes
 * (12 20 ...), field 3 = a message holding "hvs." and a 24-character
 * local ID (1a 1e 0a 1c "hvs.XXXX..."). 68 bytes, 91 characters. */
#define TOKEN_PREFIX  "hvs."
#define TOKEN_RAW_LEN 68u
#define TOKEN_LEN     (4u + (TOKEN_RAW_LEN * 4u + 2u) / 3u)

/* Accessors are 24 base62 characters. */
#define ACCESSOR_LEN 24u

static void base62(char *out, size_t n)
{
    static const char alnum[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    size_t i;

    for (i = 0; i < n; i++) {
        out[i] = alnum[rng_next() % 62];
    }
}

static void gen_token(char out[TOKEN_LEN + 1])
{
    static const char b64[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char raw[TOKEN_RAW_LEN];
    size_t i;
    size_t o = 4;

    raw[0] = 0x08;
    raw[1] = 0x01;
    raw[2] = 0x12;
    raw[3] = 0x20;
    for (i = 0; i < 32; i += 8) {
        uint64_t r = rng_next();

        memcpy(raw + 4 + i, &r, 8);
    }
    memcpy(raw + 36, "\x1a\x1e\x0a\x1c" TOKEN_PREFIX, 8);
    base62((char *)raw + 44, ACCESSOR_LEN);
    memcpy(out, TOKEN_PREFIX, 4);
    /* base64url without padding: 4 characters per 3 bytes, 2 or 3 for
     * the 1 or 2 bytes left (68 = 3 * 22 + 2) */
    for (i = 0; i < TOKEN_RAW_LEN; i += 3) {
        size_t left = TOKEN_RAW_LEN - i;
        uint32_t v = (uint32_t)raw[i] << 16;

        if (left > 1) {
            v |= (uint32_t)raw[i + 1] << 8;
        }
        if (left > 2) {
            v |= raw[i + 2];
        }
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        if (left > 1) {
            out[o++] = b64[(v >> 6) & 63];
        }
        if (left > 2) {
            out[o++] = b64[v & 63];
        }
    }
    out[o] = '\0';
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
    base62(t->accessor, ACCESSOR_LEN);
    t->accessor[ACCESSOR_LEN] = '\0';
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

/* The token's display name: the root token's is "token", as for the one
 * `vault server -dev -dev-root-token-id` creates through auth/token/create;
 * a login's is its mount path ('/' turned into '-') and the name its auth
 * method gives ("default-ak2vault" for the service account). */
static void sb_display_name(struct akv_buf *b, const struct fake_vault *fv,
                            const struct token *t)
{
    const char *m;

    if (t->kind == TOK_ROOT) {
        akv_buf_puts(b, "token");
    } else if (t->kind == TOK_K8S) {
        for (m = fv->cfg.k8s_mount; *m; m++) {
            akv_buf_putc(b, *m == '/' ? '-' : *m);
        }
        akv_buf_puts(b, "-default-ak2vault");
    } else {
        akv_buf_puts(b, "approle");
    }
}

/* A token without an entity has the client ID base64(SHA-256(its sorted
 * policies and its namespace, NUL-separated)): for the root token in the
 * root namespace, of "root\0root". */
#define ROOT_CLIENT_ID "0DHqvq2D77kL2/JTPSZkTMJbkFVmUu0TzMi0jiXcFy8="

/*
 * The KV v2 Attribution of the request's token doing \p operation, as
 * JSON (members in the protobuf's order, empty ones left out):
 * {"actor":DISPLAY_NAME,"operation":OP,"entity_id":ID,"client_id":ID}.
 * @returns heap text, or NULL when out of memory.
 */
char *fv_attribution(const struct rq *rq, const char *operation)
{
    const char *entity = token_entity(rq->fv, &rq->tok);
    struct akv_buf b = TEXT_INIT;
    struct akv_buf name = TEXT_INIT;

    sb_display_name(&name, rq->fv, &rq->tok);
    akv_buf_puts(&b, "{\"actor\":");
    fv_json_str(&b, fv_text(&name));
    akv_buf_puts(&b, ",\"operation\":");
    fv_json_str(&b, operation);
    if (*entity) {
        akv_buf_printf(&b, ",\"entity_id\":\"%s\"", entity);
    }
    akv_buf_printf(&b, ",\"client_id\":\"%s\"}",
                   *entity ? entity : ROOT_CLIENT_ID);
    if (name.err != AKV_OK) {
        b.err = AKV_ERR_NOMEM;
    }
    akv_buf_free(&name);
    return akv_buf_take(&b);
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

/* Issues a login token; replies 200 with the auth block. A login's answer
 * has no mount_type: Vault sets it only on requests routed with a token. */
static void issue_token(struct rq *rq, enum tok_kind kind, size_t role,
                        const char *warning)
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
    fv_env_end(&b, warnings, warning ? 1 : 0, auth.data, "", 1);
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
    akv_buf_puts(&err, MSG_FIELD_VALIDATION);
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
                          enum tok_kind kind, size_t role)
{
    struct akv_buf warn = TEXT_INIT;

    fv_ignored_params(rq->body, known, &warn);
    issue_token(rq, kind, role, warn.len ? warn.data : NULL);
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
    login_granted(rq, known, TOK_K8S, i);
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
        /* pathLoginUpdate: logical.ErrInvalidCredentials */
        login_refused(rq, 400, "invalid credentials");
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
    login_granted(rq, known, TOK_APPROLE, i);
out:
    free(role_id);
    akv_wipe_free(secret_id);
}

/* GET (or POST) auth/token/lookup-self. The root token is the one dev mode
 * creates with auth/token/create: no TTL, a lease that is not renewable. */
void fv_lookup_self(struct rq *rq)
{
    static const char *const known[] = {"token", NULL};
    struct fake_vault *fv = rq->fv;
    const struct token *t = &rq->tok;
    int64_t now = akv_wall_ns();
    struct akv_buf b = TEXT_INIT;
    struct akv_buf warn = TEXT_INIT;
    const char *warnings[1];

    if (rq->op != OP_READ && rq->op != OP_WRITE) {
        fv_reply_error(rq->resp, 405, MSG_UNSUPPORTED_OP);
        return;
    }
    fv_env_begin(&b);
    akv_buf_printf(&b,
                   "{\"accessor\":\"%s\",\"creation_time\":%lld,"
                   "\"creation_ttl\":%" PRId64 ",\"display_name\":\"",
                   t->accessor, (long long)(t->issued / NS_PER_SEC),
                   t->creation_ttl);
    sb_display_name(&b, fv, t);
    akv_buf_puts(&b, "\",\"entity_id\":");
    fv_json_str(&b, token_entity(fv, t));
    akv_buf_puts(&b, ",\"expire_time\":");
    if (t->kind == TOK_ROOT) {
        akv_buf_puts(&b, "null");
    } else {
        fv_time(&b, t->expires);
    }
    akv_buf_puts(&b, ",\"explicit_max_ttl\":0,\"id\":");
    fv_json_str(&b, rq->token);
    akv_buf_puts(&b, ",\"issue_time\":");
    fv_time(&b, t->issued);
    if (t->renewed != 0) {
        akv_buf_puts(&b, ",\"last_renewal\":");
        fv_time(&b, t->renewed);
        akv_buf_printf(&b, ",\"last_renewal_time\":%lld",
                       (long long)(t->renewed / NS_PER_SEC));
    }
    akv_buf_puts(&b, ",\"meta\":");
    sb_token_meta(&b, fv, t);
    akv_buf_puts(&b, ",\"num_uses\":0,\"orphan\":true,\"path\":");
    if (t->kind == TOK_ROOT) {
        akv_buf_puts(&b, "\"auth/token/create\"");
    } else if (t->kind == TOK_K8S) {
        akv_buf_puts(&b, "\"auth/");
        akv_buf_puts(&b, fv->cfg.k8s_mount);
        akv_buf_puts(&b, "/login\"");
    } else {
        akv_buf_puts(&b, "\"auth/approle/login\"");
    }
    akv_buf_printf(&b, ",\"policies\":%s", token_policies_json(t));
    if (t->kind == TOK_ROOT) {
        akv_buf_puts(&b, ",\"renewable\":false,\"ttl\":0");
    } else {
        int64_t left = (t->expires - now) / NS_PER_SEC;

        akv_buf_printf(&b, ",\"renewable\":true,\"ttl\":%" PRId64,
                       left < 0 ? 0 : left);
    }
    akv_buf_puts(&b, ",\"type\":\"service\"}");
    warnings[0] = fv_ignored_params(rq->op == OP_READ ? rq->query : rq->body,
                                    known, &warn)
                      ? warn.data
                      : NULL;
    fv_env_end(&b, warnings, warnings[0] ? 1 : 0, NULL, "token", 1);
    if (warn.err != AKV_OK) {
        b.err = AKV_ERR_NOMEM;
    }
    akv_buf_free(&warn);
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
    akv_buf_puts(&err, MSG_FIELD_VALIDATION);
    if (fv_field_duration(rq->body, "increment", &increment, &err) < 0) {
        fv_reply_error(rq->resp, 400, fv_text(&err));
        akv_buf_free(&err);
        return;
    }
    akv_buf_free(&err);
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

                fv_human_duration(want, sizeof(want), ttl);
                fv_human_duration(cap, sizeof(cap), max_valid);
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
