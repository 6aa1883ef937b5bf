/*
 * fake-vault — a loopback stand-in for the part of the HashiCorp Vault HTTP
 * API that ak2vault talks to: KV v2 (data/ and metadata/), kubernetes and
 * approle login, token lookup-self / renew-self, sys/capabilities-self and
 * sys/health.
 *
 * Status codes and bodies follow Vault's source (vault, sdk/framework,
 * vault-plugin-secrets-kv), down to field order and Go's JSON encoding
 * (sorted map keys, "<>&" escaped as \u003c..., numbers as float64), so a
 * client that works against this fake should work against a real server.
 *
 * Usage:
 *   fake-vault [--listen HOST:PORT]        default 127.0.0.1:0 (free port)
 *              [--root-token TOKEN]        never expires, policies ["root"]
 *              [--kv-mount MOUNT]          KV v2 mount, default "secret";
 *                                          may contain '/' ("team/kv")
 *              [--cas-required]            mount-level cas_required=true
 *              [--max-versions N]          mount max_versions, default 10
 *              [--k8s-mount NAME]          default "kubernetes"
 *              [--k8s-role ROLE=JWTFILE]   repeatable; the login jwt must
 *                                          equal the trimmed file contents,
 *                                          read at every login
 *              [--approle ROLE_ID=SECRET_ID]  repeatable
 *              [--token-ttl SECONDS]       login token TTL, default 3600
 *              [--token-max-ttl SECONDS]   default 86400
 *              [--latency-ms N]            added to every /v1 request;
 *                                          same as --faults
 *                                          '{"latency_ms":N}'
 *              [--faults JSON]             initial fault plan, the body
 *                                          POST /_fake/faults takes
 *              [--allow-remote-control]    serve /_fake to non-loopback
 *                                          clients too (docker networks)
 *              [--tls-cert FILE --tls-key FILE]  serve HTTPS only, with
 *                                          this PEM certificate (chain)
 *                                          and unencrypted PEM key
 *              [--tls-client-ca FILE]      with --tls-cert: every request
 *                                          needs a client certificate that
 *                                          verifies against these PEM CAs
 *                                          (else a fatal TLS alert and the
 *                                          connection is closed, /_fake
 *                                          included)
 *              [--verbose]                 log "METHOD PATH STATUS" to
 *                                          stderr
 *
 *   The first stdout line is the real HOST:PORT. The process runs until
 *   SIGTERM or SIGINT and then exits 0; bad options exit 64. Tokens, JWTs,
 *   secret IDs and secret data are never written to stdout or stderr.
 *
 * Vault endpoints (under /v1):
 *   GET|HEAD sys/health
 *   POST     auth/{k8s-mount}/login   {"role","jwt"}
 *   POST     auth/approle/login       {"role_id","secret_id"}
 *   GET|POST auth/token/lookup-self
 *   POST     auth/token/renew-self    {"increment"}
 *   POST|PUT sys/capabilities-self    {"paths"}: ["root"] for the root
 *                                     token, every KV capability for login
 *                                     tokens, ["deny"] under a deny_prefix
 *   GET|POST|PUT|DELETE  {mount}/data/PATH    (GET takes ?version=N)
 *   GET|POST|PUT|DELETE  {mount}/metadata/PATH
 *   LIST (or GET ?list=true) {mount}/metadata/PREFIX (?exclude_deleted)
 *   POST|PUT {mount}/delete/PATH, undelete/PATH, destroy/PATH
 *                                     {"versions"}
 *   PATCH (KV v2's merge patch) is not implemented and answers 405.
 *   Bodies are read as Vault 1.21 reads them (body.c), paths that are not
 *   clean are redirected (307) as Go's ServeMux does, and the root token
 *   is the one `vault server -dev -dev-root-token-id` would make.
 *   tests/integration/test_vault_diff.py compares every answer with the
 *   real Vault's; CONTRIBUTING.md lists what still differs on purpose
 *   (no ACLs, no administrative endpoints, ...).
 *
 * Control endpoints (no token; loopback clients only):
 *   GET  /_fake/kv              the whole KV state, for assertions
 *   GET  /_fake/stats           request counters
 *   GET  /_fake/requests        the last 100000 /v1 requests, oldest first
 *   POST /_fake/reset-stats     zero the counters and the request log
 *   POST /_fake/tokens/revoke-all  revoke every login-issued token
 *   GET|POST|DELETE /_fake/faults  the fault plan: POST replaces it with
 *                               the JSON object sent, DELETE (or POST {})
 *                               clears it; all three answer with the
 *                               effective plan. See "Fault injection".
 *
 * Fault injection (POST /_fake/faults, --faults): a JSON object, every key
 * optional (missing or null = off/default); the answer is the effective
 * plan, and a bad plan is a 400 {"error":"..."} that changes nothing.
 *   latency_ms, latency_jitter_ms  delay before answering: fixed plus
 *                          uniform 0..jitter (ms, 0..3600000)
 *   scope                  what latency and the *_rate faults hit: "all"
 *                          /v1 requests (default), "kv" (under the KV
 *                          mount), "kv_write" (POST/PUT/DELETE there),
 *                          "kv_delete" (DELETE there), "auth"
 *                          (/v1/auth/...), "kv_list" (LIST or GET
 *                          ?list=true there)
 *   error_rates            {"STATUS": p}, STATUS one of 412 429 500 502 503
 *                          504: answered with Vault's body for it, the
 *                          operation not performed
 *   drop_rate              close without answering, not performed
 *   drop_after_rate        perform, then close without answering
 *   truncate_rate          perform, then send half the body and close (an
 *                          empty 204 cannot be halved: it is dropped and
 *                          counted as dropped_after)
 *                          One uniform draw per affected request picks
 *                          among all rates, so they must add up to <= 1.
 *   retry_after            "N" or "http-date:N": a Retry-After header (N
 *                          seconds, or an IMF-fixdate N seconds ahead) on
 *                          injected 429 and 503 answers, sealed ones too
 *   seed                   integer: draws depend only on (seed, index of
 *                          the affected request), so a plan replays
 *   sealed_for_ms          sealed from now for N ms: every /v1 request is
 *                          503 "Vault is sealed", sys/health its sealed
 *                          body (sealedcode honoured); any new plan unseals
 *   deny_prefix            "PATH" or ["PATH", ...] below /v1/: 403 with
 *                          Vault's ACL text, after the token check
 *   token_ttl_s, token_max_ttl_s  for logins from now on (tokens keep the
 *                          max TTL they were issued with when renewing)
 *   mount_missing          true: the KV mount answers the router's 404
 *   write_answer           KV writes (POST/PUT under {mount}/data/) are not
 *                          performed and answered 200 with a body that
 *                          confirms nothing: "null_data" ({"data":null}),
 *                          "no_version" (data without a version), "html"
 *                          (a proxy's page), "garbage", "empty"; "none": off
 *   echo_status            400..599: KV writes are not performed and
 *                          answered with this status and an error text
 *                          that quotes the request body (secret included),
 *                          as some proxies and decoders do; 0: off
 * Counters are under "faults" in /_fake/stats (write_faults counts both
 * write faults); injected 403s are not in "denied".
 *
 * Secrets live in a hash table keyed by path and tokens in another, so the
 * cost of a request does not grow with the number of secrets (LIST and the
 * /_fake dumps are the exceptions: they walk everything).
 */
#include "fv.h"

#include "clock.h"
#include "num.h"
#include "wipe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fputs("usage: fake-vault [--listen HOST:PORT] [--root-token TOKEN]\n"
          "                  [--kv-mount MOUNT] [--cas-required]\n"
          "                  [--max-versions N] [--k8s-mount NAME]\n"
          "                  [--k8s-role ROLE=JWTFILE]...\n"
          "                  [--approle ROLE_ID=SECRET_ID]...\n"
          "                  [--token-ttl SECONDS] [--token-max-ttl SECONDS]\n"
          "                  [--latency-ms N] [--faults JSON]\n"
          "                  [--allow-remote-control] [--verbose]\n"
          "                  [--tls-cert FILE --tls-key FILE\n"
          "                   [--tls-client-ca FILE]]\n",
          out);
}

/* Checks a mount path and drops a trailing '/'. @returns a heap copy. */
static char *clean_mount(const char *s)
{
    char *m = strdup(s);
    size_t n;

    if (!m) {
        return NULL;
    }
    n = strlen(m);
    if (n > 0 && m[n - 1] == '/') {
        m[--n] = '\0';
    }
    if (n == 0 || n > 200 || m[0] == '/' || fv_path_relative(m) ||
        !fv_printable(m)) {
        free(m);
        return NULL;
    }
    return m;
}

/* Splits "A=B" into two heap strings. */
static int split_pair(const char *s, char **a, char **b)
{
    const char *eq = strchr(s, '=');

    *a = NULL;
    *b = NULL;
    if (!eq || eq == s || eq[1] == '\0') {
        return -1;
    }
    *a = strndup(s, (size_t)(eq - s));
    *b = strdup(eq + 1);
    if (!*a || !*b) {
        free(*a);
        free(*b);
        *a = NULL;
        *b = NULL;
        return -1;
    }
    return 0;
}

static void config_free(struct config *c)
{
    size_t i;

    for (i = 0; i < c->nk8s; i++) {
        free(c->k8s[i].name);
        free(c->k8s[i].jwt_file);
    }
    for (i = 0; i < c->napproles; i++) {
        free(c->approles[i].role_id);
        akv_wipe_free(c->approles[i].secret_id);
    }
    free(c->k8s);
    free(c->approles);
    free(c->kv_mount);
    free(c->k8s_mount);
    memset(c, 0, sizeof(*c));
}

/* @returns 1 for options that take a value, 0 for flags, -1 if unknown. */
static int option_kind(const char *name)
{
    static const char *const with_value[] = {
        "--listen",        "--root-token",   "--kv-mount",     "--k8s-mount",
        "--k8s-role",      "--approle",      "--max-versions", "--token-ttl",
        "--token-max-ttl", "--latency-ms",   "--faults",       "--tls-cert",
        "--tls-key",       "--tls-client-ca"};
    static const char *const flags[] = {"--cas-required", "--verbose", "--help",
                                        "--allow-remote-control"};
    size_t i;

    for (i = 0; i < sizeof(with_value) / sizeof(with_value[0]); i++) {
        if (strcmp(name, with_value[i]) == 0) {
            return 1;
        }
    }
    for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (strcmp(name, flags[i]) == 0) {
            return 0;
        }
    }
    return -1;
}

/* The mounts as the command line gives them, checked once all is read. */
struct mounts {
    const char *kv;
    const char *k8s;
};

/* --k8s-role ROLE=JWTFILE: a role, its JWT file and the identity its
 * logins get. @returns 0, or -1 (message printed). */
static int add_k8s_role(struct config *c, const char *val)
{
    struct k8s_role *nr;
    char *role;
    char *file;
    size_t j;

    if (split_pair(val, &role, &file) < 0) {
        fprintf(stderr, "fake-vault: --k8s-role wants ROLE=JWTFILE\n");
        return -1;
    }
    for (j = 0; j < c->nk8s; j++) {
        if (strcmp(c->k8s[j].name, role) == 0) {
            break;
        }
    }
    nr = j == c->nk8s ? realloc(c->k8s, (c->nk8s + 1) * sizeof(*c->k8s)) : NULL;
    if (!nr) {
        fprintf(stderr, "fake-vault: %s\n",
                j == c->nk8s ? "out of memory" : "duplicate --k8s-role");
        free(role);
        free(file);
        return -1;
    }
    c->k8s = nr;
    memset(&c->k8s[c->nk8s], 0, sizeof(c->k8s[0]));
    c->k8s[c->nk8s].name = role;
    c->k8s[c->nk8s].jwt_file = file;
    fv_uuid(c->k8s[c->nk8s].sa_uid);
    fv_uuid(c->k8s[c->nk8s].entity_id);
    c->nk8s++;
    return 0;
}

/* --approle ROLE_ID=SECRET_ID. @returns 0, or -1 (message printed). */
static int add_approle(struct config *c, const char *val)
{
    struct approle *na;
    char *rid;
    char *sid;
    size_t j;

    if (split_pair(val, &rid, &sid) < 0) {
        fprintf(stderr, "fake-vault: --approle wants ROLE_ID=SECRET_ID\n");
        return -1;
    }
    for (j = 0; j < c->napproles; j++) {
        if (strcmp(c->approles[j].role_id, rid) == 0) {
            break;
        }
    }
    na = j == c->napproles
             ? realloc(c->approles, (c->napproles + 1) * sizeof(*c->approles))
             : NULL;
    if (!na) {
        fprintf(stderr, "fake-vault: %s\n",
                j == c->napproles ? "out of memory"
                                  : "duplicate --approle role ID");
        free(rid);
        akv_wipe_free(sid);
        return -1;
    }
    c->approles = na;
    memset(&c->approles[c->napproles], 0, sizeof(c->approles[0]));
    c->approles[c->napproles].role_id = rid;
    c->approles[c->napproles].secret_id = sid;
    fv_uuid(c->approles[c->napproles].entity_id);
    c->napproles++;
    return 0;
}

/* The options that take a number. @returns 0, or -1 (message printed). */
static int number_option(struct config *c, const char *name, const char *val)
{
    long num;

    if (strcmp(name, "--max-versions") == 0) {
        if (akv_parse_long(val, 0, 1000000L, &num) < 0) {
            fprintf(stderr, "fake-vault: bad --max-versions\n");
            return -1;
        }
        c->max_versions = (uint32_t)num;
    } else if (strcmp(name, "--latency-ms") == 0) {
        if (akv_parse_long(val, 0, 3600L * 1000, &num) < 0) {
            fprintf(stderr, "fake-vault: bad --latency-ms\n");
            return -1;
        }
        c->latency_ms = num;
    } else {
        if (akv_parse_long(val, 1, 100L * 365 * 86400, &num) < 0) {
            fprintf(stderr, "fake-vault: bad %s\n", name);
            return -1;
        }
        if (strcmp(name, "--token-ttl") == 0) {
            c->token_ttl = num;
        } else {
            c->token_max_ttl = num;
        }
    }
    return 0;
}

/*
 * Applies option \p name, with its value \p val (NULL for a flag).
 * @returns 0, 1 after --help, -1 on a bad value (message printed, never
 *          quoting a value that may be a secret).
 */
static int apply_option(struct config *c, struct mounts *mnt, const char *name,
                        const char *val)
{
    if (strcmp(name, "--help") == 0) {
        usage(stdout);
        return 1;
    } else if (strcmp(name, "--listen") == 0) {
        if (fakehttp_listen_ok(val) < 0) {
            fprintf(stderr,
                    "fake-vault: --listen wants IPV4:PORT, got \"%s\"\n", val);
            return -1;
        }
        c->listen = val;
    } else if (strcmp(name, "--root-token") == 0) {
        if (!*val) {
            fprintf(stderr, "fake-vault: --root-token is empty\n");
            return -1;
        }
        c->root_token = val;
    } else if (strcmp(name, "--kv-mount") == 0) {
        mnt->kv = val;
    } else if (strcmp(name, "--k8s-mount") == 0) {
        mnt->k8s = val;
    } else if (strcmp(name, "--cas-required") == 0) {
        c->cas_required = 1;
    } else if (strcmp(name, "--verbose") == 0) {
        c->verbose = 1;
    } else if (strcmp(name, "--allow-remote-control") == 0) {
        c->allow_remote_control = 1;
    } else if (strcmp(name, "--max-versions") == 0 ||
               strcmp(name, "--token-ttl") == 0 ||
               strcmp(name, "--token-max-ttl") == 0 ||
               strcmp(name, "--latency-ms") == 0) {
        return number_option(c, name, val);
    } else if (strcmp(name, "--faults") == 0) {
        c->faults_json = val;
    } else if (strcmp(name, "--tls-cert") == 0) {
        c->tls_cert = val;
    } else if (strcmp(name, "--tls-key") == 0) {
        c->tls_key = val;
    } else if (strcmp(name, "--tls-client-ca") == 0) {
        c->tls_client_ca = val;
    } else if (strcmp(name, "--k8s-role") == 0) {
        return add_k8s_role(c, val);
    } else if (strcmp(name, "--approle") == 0) {
        return add_approle(c, val);
    }
    return 0;
}

/*
 * Reads the option at argv[*i] into \p name ("--name") and its value, from
 * "--name=VALUE" or the next argument, into \p val (NULL for a flag).
 * @returns 0, or -1 (message printed).
 */
static int next_option(int argc, char **argv, int *i, char *name, size_t namesz,
                       const char **val)
{
    const char *arg = argv[*i];
    const char *eq;
    size_t nl;
    int takes_value;

    *val = NULL;
    if (strncmp(arg, "--", 2) != 0) {
        fprintf(stderr, "fake-vault: unexpected argument\n");
        usage(stderr);
        return -1;
    }
    eq = strchr(arg, '=');
    nl = eq ? (size_t)(eq - arg) : strlen(arg);
    if (nl >= namesz) {
        fprintf(stderr, "fake-vault: unknown option\n");
        return -1;
    }
    memcpy(name, arg, nl);
    name[nl] = '\0';
    takes_value = option_kind(name);
    if (takes_value < 0) {
        fprintf(stderr, "fake-vault: unknown option %s\n", name);
        usage(stderr);
        return -1;
    }
    if (takes_value) {
        if (eq) {
            *val = eq + 1;
        } else if (*i + 1 < argc) {
            *val = argv[++*i];
        } else {
            fprintf(stderr, "fake-vault: %s needs a value\n", name);
            return -1;
        }
    } else if (eq) {
        fprintf(stderr, "fake-vault: %s takes no value\n", name);
        return -1;
    }
    return 0;
}

/* What can only be checked once every option is read. @returns 0, or -1
 * (message printed). */
static int check_config(struct config *c, const struct mounts *mnt)
{
    if (c->token_ttl > c->token_max_ttl) {
        fprintf(stderr, "fake-vault: --token-ttl exceeds --token-max-ttl\n");
        return -1;
    }
    if (!c->tls_cert != !c->tls_key) {
        fprintf(stderr, "fake-vault: --tls-cert and --tls-key go together\n");
        return -1;
    }
    if (c->tls_client_ca && !c->tls_cert) {
        fprintf(stderr, "fake-vault: --tls-client-ca needs --tls-cert and "
                        "--tls-key\n");
        return -1;
    }
    c->kv_mount = clean_mount(mnt->kv);
    if (!c->kv_mount || fv_starts_with_dir(c->kv_mount, "auth") ||
        fv_starts_with_dir(c->kv_mount, "sys")) {
        fprintf(stderr, "fake-vault: bad --kv-mount \"%s\"\n", mnt->kv);
        return -1;
    }
    c->k8s_mount = clean_mount(mnt->k8s);
    if (!c->k8s_mount || strcmp(c->k8s_mount, "token") == 0 ||
        strcmp(c->k8s_mount, "approle") == 0) {
        fprintf(stderr, "fake-vault: bad --k8s-mount \"%s\"\n", mnt->k8s);
        return -1;
    }
    return 0;
}

/*
 * @returns 0 to run, 1 after --help, -1 on a bad option (message printed,
 *          never quoting a value that may be a secret).
 */
static int parse_args(struct config *c, int argc, char **argv)
{
    struct mounts mnt = {"secret", "kubernetes"};
    int i;

    memset(c, 0, sizeof(*c));
    c->listen = "127.0.0.1:0";
    c->max_versions = DEFAULT_MAX_VERSIONS;
    c->token_ttl = 3600;
    c->token_max_ttl = 86400;
    for (i = 1; i < argc; i++) {
        char name[32];
        const char *val;
        int rc;

        if (next_option(argc, argv, &i, name, sizeof(name), &val) < 0) {
            return -1;
        }
        rc = apply_option(c, &mnt, name, val);
        if (rc != 0) {
            return rc;
        }
    }
    return check_config(c, &mnt);
}

static void fake_vault_free(struct fake_vault *fv)
{
    size_t i;

    fakehtab_destroy(&fv->secrets, fv_secret_release);
    fakehtab_destroy(&fv->tokens, fv_token_release);
    if (fv->rlog) {
        for (i = 0; i < REQLOG_CAP; i++) {
            free(fv->rlog[i].path);
        }
        free(fv->rlog);
    }
    fakefault_slot_destroy(&fv->faults);
    pthread_mutex_destroy(&fv->kv_lock);
    pthread_mutex_destroy(&fv->tok_lock);
    pthread_mutex_destroy(&fv->log_lock);
    config_free(&fv->cfg);
}

static int fake_vault_init(struct fake_vault *fv)
{
    pthread_mutex_init(&fv->kv_lock, NULL);
    pthread_mutex_init(&fv->tok_lock, NULL);
    pthread_mutex_init(&fv->log_lock, NULL);
    fakefault_slot_init(&fv->faults, &fv_fault_spec, &fv->cfg);
    fv_uuid(fv->cluster_id);
    {
        char id[UUID_LEN + 1];

        fv_uuid(id);
        snprintf(fv->cluster_name, sizeof(fv->cluster_name),
                 "vault-cluster-%.8s", id);
    }
    fv->rlog = calloc(REQLOG_CAP, sizeof(*fv->rlog));
    if (!fv->rlog || fakehtab_init(&fv->secrets, 1024) < 0 ||
        fakehtab_init(&fv->tokens, 256) < 0) {
        return -1;
    }
    if (fv->cfg.root_token) {
        struct token *t = fv_token_new(fv->cfg.root_token, TOK_ROOT, 0);

        if (!t) {
            return -1;
        }
        t->issued = akv_wall_ns();
        fakehtab_insert(&fv->tokens, &t->node);
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct fake_vault fv;
    struct fakehttp *srv;
    struct fakehttp_tls tls;
    char err[512];
    int rc;

    fakehttp_block_signals();
    rc = parse_args(&fv.cfg, argc, argv);
    if (rc != 0) {
        config_free(&fv.cfg);
        return rc > 0 ? 0 : EXIT_USAGE;
    }
    if (fake_vault_init(&fv) < 0) {
        fprintf(stderr, "fake-vault: out of memory\n");
        fake_vault_free(&fv);
        return 1;
    }
    if (fakefault_initial(&fv.faults, fv.cfg.faults_json, fv.cfg.latency_ms,
                          "fake-vault") < 0) {
        fake_vault_free(&fv);
        return EXIT_USAGE;
    }
    tls.cert_file = fv.cfg.tls_cert;
    tls.key_file = fv.cfg.tls_key;
    tls.client_ca_file = fv.cfg.tls_client_ca;
    srv = fakehttp_start_tls(fv.cfg.listen, fv.cfg.tls_cert ? &tls : NULL,
                             fv_handle, &fv, err, sizeof(err));
    if (!srv) {
        fprintf(stderr, "fake-vault: %s\n", err);
        fake_vault_free(&fv);
        return 1;
    }
    fakehttp_announce(fakehttp_address(srv));
    if (fv.cfg.verbose) {
        fprintf(stderr, "fake-vault: listening on %s (%s%s), KV v2 at %s/\n",
                fakehttp_address(srv), fv.cfg.tls_cert ? "HTTPS" : "HTTP",
                fv.cfg.tls_client_ca ? ", client certificates required" : "",
                fv.cfg.kv_mount);
    }
    fakehttp_wait_for_signal();
    fakehttp_stop(srv);
    fake_vault_free(&fv);
    return 0;
}
