/*
 * sys — the sys/ endpoints ak2vault calls: sys/health (also as a sealed
 * Vault answers it) and sys/capabilities-self.
 */
#include "fv.h"

#include "num.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A ?xxxcode= override, like Vault's health handler honours. */
static int health_code(const struct fakehttp_request *req, const char *name,
                       int def)
{
    const char *v = fakehttp_arg(req, name);
    long code;

    if (!v || !*v) {
        return def;
    }
    return akv_parse_long(v, 100, 999, &code) < 0 ? -1 : (int)code;
}

/* Always initialized and active, unless a fault plan seals it: then it is
 * a sealed standby with no cluster identity yet, as Vault reports. */
void fv_sys_health(struct rq *rq, int sealed)
{
    const char *m = rq->http->method;
    struct akv_buf b = TEXT_INIT;
    int code;

    if (strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0) {
        fv_reply_error(rq->resp, 405, NULL);
        return;
    }
    code = sealed ? health_code(rq->http, "sealedcode", 503)
                  : health_code(rq->http, "activecode", 200);
    if (code < 0) {
        fv_reply_error(rq->resp, 400, "bad code");
        return;
    }
    akv_buf_printf(&b,
                   "{\"initialized\":true,\"sealed\":%s,\"standby\":%s,"
                   "\"performance_standby\":false,"
                   "\"replication_performance_mode\":\"%s\","
                   "\"replication_dr_mode\":\"%s\","
                   "\"server_time_utc\":%lld,\"version\":\"" VAULT_VERSION "\","
                   "\"enterprise\":false,",
                   sealed ? "true" : "false", sealed ? "true" : "false",
                   /* a sealed Vault does not know its replication state */
                   sealed ? "unknown" : "disabled",
                   sealed ? "unknown" : "disabled", (long long)time(NULL));
    if (!sealed) {
        akv_buf_printf(&b, "\"cluster_name\":\"%s\",\"cluster_id\":\"%s\",",
                       rq->fv->cluster_name, rq->fv->cluster_id);
    }
    akv_buf_puts(&b, "\"echo_duration_ms\":0,\"clock_skew_ms\":0,"
                     "\"replication_primary_canary_age_ms\":0}\n");
    fv_reply_buf(rq->resp, code, &b);
}

#define CAP_PATHS_MAX 64

struct cap_paths {
    char *p[CAP_PATHS_MAX];
    size_t n;
};

/*
 * The capabilities of the presented token on \p path, as a JSON array
 * (acl.Capabilities, sorted as Core.Capabilities returns them). The root
 * token has ["root"] everywhere. Login tokens carry the policies
 * ["ak2vault","default"]; the fake enforces no ACL, so it models them as
 * granting every capability KV v2 knows, on every path. A deny_prefix
 * fault stands for a policy that denies: a covered path is ["deny"], for
 * the root token too, since the fault's 403 hits the root token as well.
 */
static const char *path_capabilities(const struct rq *rq, const char *path)
{
    if (fv_deny_prefix_match(rq->fc, path)) {
        return "[\"deny\"]";
    }
    if (rq->tok.kind == TOK_ROOT) {
        return "[\"root\"]";
    }
    return "[\"create\",\"delete\",\"list\",\"patch\",\"read\",\"update\"]";
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Appends a trimmed copy of \p s[0..n) to \p out. @returns 0 or -1. */
static int slice_add(struct cap_paths *out, const char *s, size_t n,
                     struct akv_buf *err)
{
    char *copy;

    while (n > 0 && strchr(" \t\n\r", s[0])) {
        s++;
        n--;
    }
    while (n > 0 && strchr(" \t\n\r", s[n - 1])) {
        n--;
    }
    if (out->n >= CAP_PATHS_MAX) {
        akv_buf_printf(err, "at most %d paths at once", CAP_PATHS_MAX);
        return -1;
    }
    copy = strndup(s, n);
    if (!copy) {
        akv_buf_puts(err, "out of memory");
        return -1;
    }
    out->p[out->n++] = copy;
    return 0;
}

/* A framework.TypeCommaStringSlice field (fv_field_comma_slice()), its
 * elements trimmed of white space, added to \p out; the fake takes at most
 * CAP_PATHS_MAX of them. @returns 0, or -1 with the framework's
 * "Field validation failed: ..." in \p err. */
static int field_paths(const cJSON *body, const char *name,
                       struct cap_paths *out, struct akv_buf *err)
{
    struct akv_buf inner = TEXT_INIT;
    cJSON *list = NULL;
    const cJSON *it;
    int rc = fv_field_comma_slice(body, name, 0, &list, &inner);

    if (rc < 0) {
        akv_buf_puts(err, MSG_FIELD_VALIDATION);
        akv_buf_puts(err, fv_text(&inner));
        akv_buf_free(&inner);
        return -1;
    }
    cJSON_ArrayForEach(it, list)
    {
        if (rc >= 0 &&
            slice_add(out, it->valuestring, strlen(it->valuestring), err) < 0) {
            rc = -1;
        }
    }
    cJSON_Delete(list);
    return rc < 0 ? -1 : 0;
}

/*
 * POST sys/capabilities-self {"paths": [...]} (vault/logical_system.go
 * handleCapabilities, http/logical.go respondLogical): the capabilities of
 * the calling token on each path; with exactly one path also under
 * "capabilities" (backwards compatibility). "path" is the deprecated
 * spelling, read when "paths" is empty. sys/ answers go through
 * logical.HTTPSysInjector: the data members appear at the top level as
 * well as under "data". Go emits the top-level ones in map order, which is
 * random; the fake sorts them. Any valid token may call it (Vault's
 * default policy grants it).
 */
void fv_capabilities_self(struct rq *rq)
{
    static const char *const known[] = {"path", "paths", "token", NULL};
    struct cap_paths paths = {{NULL}, 0};
    const char *keys[CAP_PATHS_MAX + 1];
    const char *single = NULL;
    size_t nkeys = 0;
    size_t i;
    struct akv_buf err = TEXT_INIT;
    struct akv_buf data = TEXT_INIT;
    struct akv_buf ignw = TEXT_INIT;
    struct akv_buf b = TEXT_INIT;
    const char *warnings[1];

    if (rq->op != OP_WRITE) {
        fv_reply_error(rq->resp, 405, MSG_UNSUPPORTED_OP);
        return;
    }
    if (field_paths(rq->body, "paths", &paths, &err) < 0 ||
        (paths.n == 0 && field_paths(rq->body, "path", &paths, &err) < 0)) {
        fv_reply_error(rq->resp, 400, fv_text(&err));
        goto out;
    }
    if (paths.n == 0) {
        fv_reply_error(rq->resp, 400, "paths must be supplied");
        goto out;
    }
    for (i = 0; i < paths.n; i++) {
        if (!*paths.p[i]) {
            /* Core's check, in a multierror */
            fv_reply_error(rq->resp, 400,
                           "1 error occurred:\n\t* missing path\n\n");
            goto out;
        }
        keys[nkeys++] = paths.p[i];
    }
    if (paths.n == 1) {
        single = paths.p[0];
        if (strcmp(single, "capabilities") != 0) {
            keys[nkeys++] = "capabilities";
        }
    }
    /* The results are a map: sorted, one entry per distinct key. */
    qsort(keys, nkeys, sizeof(keys[0]), cmp_cstr);
    akv_buf_putc(&data, '{');
    for (i = 0; i < nkeys; i++) {
        const char *path = keys[i];

        if (i > 0 && strcmp(keys[i], keys[i - 1]) == 0) {
            continue;
        }
        if (single && strcmp(path, "capabilities") == 0) {
            path = single;
        }
        if (data.len > 1) {
            akv_buf_putc(&data, ',');
        }
        fv_json_str(&data, keys[i]);
        akv_buf_putc(&data, ':');
        akv_buf_puts(&data, path_capabilities(rq, path));
    }
    akv_buf_putc(&data, '}');
    if (data.err != AKV_OK) {
        fv_reply_error(rq->resp, 500, "out of memory");
        goto out;
    }
    fv_env_begin_with(&b, &data);
    akv_buf_puts(&b, data.data);
    if (fv_ignored_params(rq->body, known, &ignw)) {
        warnings[0] = ignw.data;
    }
    fv_env_end(&b, warnings, ignw.len ? 1 : 0, NULL, "system", 1);
    if (ignw.err != AKV_OK) {
        b.err = AKV_ERR_NOMEM;
    }
    fv_reply_buf(rq->resp, 200, &b);

out:
    for (i = 0; i < paths.n; i++) {
        free(paths.p[i]);
    }
    akv_buf_free(&err);
    akv_buf_free(&data);
    akv_buf_free(&ignw);
}
