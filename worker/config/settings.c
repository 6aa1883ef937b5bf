/*
 * settings — the ak2vault schema table and cross-field validation.
 *
 * Every setting is described exactly once, below. The configuration
 * reference in README.md and `ak2vault config-reference` both come from this
 * table, so they cannot drift from what the loader accepts.
 */
#include "settings.h"

#include "listen.h"
#include "log.h"
#include "secretfile.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define OFF(f)          offsetof(struct akv_settings, f)
#define SECRET_FILE_MAX 16384

static const char *const offset_resets[] = {"earliest", "latest", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug",
                                         NULL};
static const char *const log_formats[] = {"text", "json", NULL};
static const char *const auth_methods[] = {"token", "kubernetes", "approle",
                                           NULL};
static const char *const on_deletes[] = {"keep", "soft-delete", "purge", NULL};

const char *const akv_settings_extra_field_names[] = {
    "identifier", "description", "expires", "expiring",
    "user",       "managed",     NULL};

#define STR(name, def, flags, field, env, desc)                                \
    {                                                                          \
        name, AKV_CFG_STRING, def, flags, OFF(field), 0, 0, NULL, env, desc    \
    }
#define INT(name, def, field, min, max, desc)                                  \
    {                                                                          \
        name, AKV_CFG_INT, def, 0, OFF(field), min, max, NULL, NULL, desc      \
    }
#define ENUM(name, def, field, choices, desc)                                  \
    {                                                                          \
        name, AKV_CFG_ENUM, def, 0, OFF(field), 0, 0, choices, NULL, desc      \
    }
#define BOOL(name, def, field, env, desc)                                      \
    {                                                                          \
        name, AKV_CFG_BOOL, def, 0, OFF(field), 0, 0, NULL, env, desc          \
    }
#define LIST(name, def, field, desc)                                           \
    {                                                                          \
        name, AKV_CFG_STRLIST, def, 0, OFF(field), 0, 0, NULL, NULL, desc      \
    }

const struct akv_cfg_entry akv_settings_schema[] = {
    STR("kafka.brokers", NULL, AKV_CFG_REQUIRED, kafka_brokers, "KAFKA_BROKERS",
        "Bootstrap brokers, host:port[,host:port...]."),
    STR("kafka.topic", "authentik.events", 0, kafka_topic, "KAFKA_TOPIC",
        "Topic the forwarding policy publishes authentik events to."),
    STR("kafka.group", "ak2vault", 0, kafka_group, "KAFKA_GROUP",
        "Consumer group; every replica of one deployment uses the same."),
    STR("kafka.instance_id", NULL, 0, kafka_instance_id,
        "KAFKA_GROUP_INSTANCE_ID",
        "Static group membership (group.instance.id), e.g. the pod name: a "
        "restarted replica gets its partitions back without a rebalance."),
    ENUM("kafka.auto_offset_reset", "earliest", kafka_auto_offset_reset,
         offset_resets,
         "Where a new group starts. earliest: syncing is idempotent, and "
         "starting at the end would miss tokens changed before the first "
         "deployment."),
    INT("kafka.session_timeout_ms", "45000", kafka_session_timeout_ms, 6000,
        300000, "Group session timeout."),
    INT("kafka.max_poll_interval_ms", "300000", kafka_max_poll_interval_ms,
        10000, 86400000,
        "Longest time between polls before the member is evicted."),
    {"kafka.properties", AKV_CFG_PAIRS, NULL, 0, OFF(kafka_properties), 0, 0,
     NULL, NULL,
     "librdkafka properties passed through, as ( (\"name\", \"value\"), ... "
     "), e.g. security.protocol, sasl.*, ssl.*. A value \"@file:PATH\" is "
     "the file's content, \"@env:NAME\" the variable's (for passwords; "
     "\"@@\" starts a literal '@'). The prefetch bounds "
     "queued.max.messages.kbytes (8192) and fetch.max.bytes (2097152) may be "
     "changed here too."},

    STR("authentik.url", NULL, AKV_CFG_REQUIRED, authentik_url, "AUTHENTIK_URL",
        "authentik base URL, e.g. https://auth.example.com."),
    STR("authentik.token", NULL, AKV_CFG_SECRET | AKV_CFG_ENV_ONLY,
        authentik_token, "AUTHENTIK_TOKEN",
        "API token of the sync service account (environment only)."),
    STR("authentik.token_file", NULL, 0, authentik_token_file, NULL,
        "File holding the API token (used when AUTHENTIK_TOKEN is unset); "
        "read again when it changes and when authentik refuses the token."),
    INT("authentik.timeout_ms", "10000", authentik_timeout_ms, 100, 300000,
        "Whole-request timeout for authentik API calls."),
    INT("authentik.connect_timeout_ms", "3000", authentik_connect_timeout_ms,
        100, 60000, "Connect timeout for authentik API calls."),
    STR("authentik.tls.ca_file", NULL, 0, authentik_tls_ca_file, NULL,
        "PEM bundle of the CAs trusted for authentik (default: system)."),
    BOOL("authentik.tls.skip_verify", "false", authentik_tls_skip_verify, NULL,
         "Do not verify authentik's certificate (logged as a warning)."),

    STR("vault.addr", "https://127.0.0.1:8200", 0, vault_addr, "VAULT_ADDR",
        "Vault address."),
    STR("vault.token", NULL, AKV_CFG_SECRET | AKV_CFG_ENV_ONLY, vault_token,
        "VAULT_TOKEN", "Vault token (environment only)."),
    STR("vault.token_file", NULL, 0, vault_token_file, NULL,
        "File holding the Vault token (used when VAULT_TOKEN is unset); read "
        "again when it changes and when Vault refuses the token."),
    STR("vault.namespace", NULL, 0, vault_namespace, "VAULT_NAMESPACE",
        "Vault Enterprise namespace, sent as X-Vault-Namespace."),
    ENUM("vault.auth.method", "token", vault_auth_method, auth_methods,
         "token (VAULT_TOKEN or vault.token_file), kubernetes or approle."),
    STR("vault.auth.mount", NULL, 0, vault_auth_mount, NULL,
        "Mount of the auth method (default: kubernetes / approle)."),
    STR("vault.auth.role", NULL, 0, vault_auth_role, NULL,
        "kubernetes: the Vault role to log in as."),
    STR("vault.auth.jwt_file",
        "/var/run/secrets/kubernetes.io/serviceaccount/token", 0,
        vault_auth_jwt_file, NULL,
        "kubernetes: service account JWT, read again at every login."),
    STR("vault.auth.role_id", NULL, 0, vault_auth_role_id, NULL,
        "approle: the role_id (or vault.auth.role_id_file)."),
    STR("vault.auth.role_id_file", NULL, 0, vault_auth_role_id_file, NULL,
        "approle: file holding the role_id."),
    STR("vault.auth.secret_id_file", NULL, 0, vault_auth_secret_id_file, NULL,
        "approle: file holding the secret_id, read at every login."),
    STR("vault.tls.ca_file", NULL, 0, vault_tls_ca_file, "VAULT_CACERT",
        "PEM bundle of the CAs trusted for Vault (default: system)."),
    STR("vault.tls.ca_path", NULL, 0, vault_tls_ca_path, "VAULT_CAPATH",
        "Directory of hashed CA certificates trusted for Vault."),
    STR("vault.tls.client_cert", NULL, 0, vault_tls_client_cert,
        "VAULT_CLIENT_CERT", "PEM client certificate for Vault (mTLS)."),
    STR("vault.tls.client_key", NULL, 0, vault_tls_client_key,
        "VAULT_CLIENT_KEY", "PEM key of the client certificate."),
    STR("vault.tls.server_name", NULL, 0, vault_tls_server_name,
        "VAULT_TLS_SERVER_NAME",
        "Name to verify Vault's certificate against (and send as SNI)."),
    BOOL("vault.tls.skip_verify", "false", vault_tls_skip_verify,
         "VAULT_SKIP_VERIFY",
         "Do not verify Vault's certificate (logged as a warning)."),
    ENUM("vault.on_delete", "keep", vault_on_delete, on_deletes,
         "When authentik says a token is gone (404): keep its secret, "
         "soft-delete its current version, or purge every version."),
    STR("vault.kv_mount", "kv", 0, vault_kv_mount, NULL,
        "Path of the KV version 2 secrets engine."),
    STR("vault.prefix", "authentik", 0, vault_prefix, NULL,
        "Secrets are written to {kv_mount}/data/{prefix}/{identifier}."),
    LIST("vault.extra_fields", "", vault_extra_fields,
         "Token fields written besides key and intent: identifier, "
         "description, expires, expiring, user, managed."),
    INT("vault.timeout_ms", "10000", vault_timeout_ms, 100, 300000,
        "Whole-request timeout for Vault calls."),
    INT("vault.connect_timeout_ms", "3000", vault_connect_timeout_ms, 100,
        60000, "Connect timeout for Vault calls."),

    LIST("match.apps", "authentik_core", match_apps,
         "Model apps whose events are token events."),
    LIST("match.models", "token", match_models,
         "Model names whose events are token events."),
    LIST("match.sync_actions", "model_created,model_updated,secret_rotate",
         match_sync_actions, "Actions that trigger a sync."),
    LIST("match.delete_actions", "model_deleted", match_delete_actions,
         "Actions that mean the token may be gone."),
    LIST("match.intents", "api,app_password", match_intents,
         "Token intents mirrored to Vault; others are skipped."),
    LIST("match.exclude_identifiers", "ak2vault-worker",
         match_exclude_identifiers,
         "Token identifiers never mirrored, read or deleted: the worker's "
         "own API token (its key can read every token's key)."),

    INT("sync.max_in_flight", "64", sync_max_in_flight, 1, 4096,
        "Syncs in flight at once (one per token at most); each runs its "
        "authentik and Vault requests without blocking the others."),
    INT("sync.max_pending", "2000", sync_max_pending, 10, 1000000,
        "Unfinished events per partition before the partition is paused "
        "(resumed at half): bounds memory whatever the topic size."),
    INT("sync.catchup_delay_ms", "1000", sync_catchup_delay_ms, 0, 60000,
        "While the worker is more than 1,000 events behind a partition's "
        "end (catching up, replaying), a token's sync waits up to this long "
        "so that the token's later events join it: one authentik read "
        "answers for all of them. At the end of the log syncs start at "
        "once; 0 never waits."),
    INT("sync.shutdown_timeout_ms", "10000", sync_shutdown_timeout_ms, 0,
        600000,
        "On SIGTERM, how long syncs in flight may finish before the final "
        "commit; unfinished ones are redone by the next owner."),
    INT("sync.retry_initial_ms", "200", sync_retry_initial_ms, 1, 600000,
        "First retry delay after a transient failure (full jitter)."),
    INT("sync.retry_max_ms", "30000", sync_retry_max_ms, 1, 3600000,
        "Largest retry delay."),
    {"sync.retry_multiplier", AKV_CFG_DOUBLE, "2", 0,
     OFF(sync_retry_multiplier), 1, 10, NULL, NULL,
     "Growth of the retry delay per attempt."},
    INT("sync.retry_after_max_ms", "60000", sync_retry_after_max_ms, 0, 3600000,
        "Cap on a server's Retry-After."),
    INT("sync.max_attempts", "0", sync_max_attempts, 0, 1000000,
        "Attempts before a transiently failing event goes to the dead-letter "
        "topic; 0 retries forever (an outage must not drop syncs)."),
    INT("sync.config_retry_ms", "30000", sync_config_retry_ms, 100, 3600000,
        "Retry interval for configuration errors (denied, unknown mount, "
        "bad credentials): the work is held, never skipped."),
    INT("sync.log_interval_ms", "60000", sync_log_interval_ms, 0, 3600000,
        "A partition held by a configuration error logs its cause at most "
        "once per interval."),
    INT("sync.cas_max_attempts", "5", sync_cas_max_attempts, 1, 100,
        "Read-compare-write rounds when another writer keeps winning."),
    INT("sync.cache_size", "100000", sync_cache_size, 0, 10000000,
        "Tokens whose last written document is remembered, so a redelivery "
        "costs no Vault read; 0 disables."),
    INT("sync.cache_max_age_ms", "300000", sync_cache_max_age_ms, 0, 86400000,
        "How long a remembered document vouches for Vault: a writer outside "
        "the consumer group is noticed within this time; 0 disables the "
        "cache. Every assignment change clears it."),

    INT("reconcile.interval_ms", "21600000", reconcile_interval_ms, 0,
        604800000,
        "How often the replica that holds partition 0 brings Vault to "
        "authentik's state from authentik's token list (repairs what no "
        "event reported); 0: never on a schedule."),
    BOOL("reconcile.on_start", "false", reconcile_on_start, NULL,
         "Reconcile as soon as this replica holds partition 0, before its "
         "first run on the schedule (the backfill of a first install)."),
    INT("reconcile.max_requests_per_second", "20",
        reconcile_max_requests_per_second, 1, 100000,
        "Pace of a periodic reconcile toward authentik (each token costs "
        "two requests); it syncs one token at a time."),

    BOOL("dlq.enabled", "true", dlq_enabled, NULL,
         "Send poison events to the dead-letter topic (else log and skip)."),
    STR("dlq.topic", NULL, 0, dlq_topic, NULL,
        "Dead-letter topic (default: <kafka.topic>.dlq)."),
    BOOL("dlq.undecodable", "false", dlq_undecodable, NULL,
         "Also dead-letter undecodable events that do not look like token "
         "events (else they are counted and skipped)."),

    STR("metrics.listen", NULL, 0, metrics_listen, "AK2VAULT_METRICS_LISTEN",
        "HTTP endpoint for /metrics, /livez and /readyz, host:port (port 0: "
        "any free port, logged); unset: no endpoint."),
    INT("metrics.lag_interval_ms", "5000", metrics_lag_interval_ms, 100, 600000,
        "How often the end offset of each assigned partition is read, for "
        "lag in messages and seconds."),
    INT("metrics.stall_timeout_ms", "300000", metrics_stall_timeout_ms, 1000,
        86400000,
        "A partition with unfinished work whose committed offset has not "
        "moved for this long is stalled: /readyz fails."),
    INT("metrics.live_timeout_ms", "30000", metrics_live_timeout_ms, 1000,
        3600000,
        "/livez fails when the poll loop has not turned for this long."),

    ENUM("log.level", "info", log_level, log_levels,
         "error, warn, info or debug."),
    ENUM("log.format", "text", log_format, log_formats,
         "text (key=value) or json lines."),
    {NULL, AKV_CFG_STRING, NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};

/* Reads a secret file: exactly one line, trailing whitespace trimmed. */
static akv_err_t read_secret_file(const char *path, const char *what,
                                  char **out, char *errstr, size_t errstr_size)
{
    char why[512];

    *out = akv_secret_read(path, SECRET_FILE_MAX, AKV_SECRET_ONE_LINE, why,
                           sizeof(why));
    if (!*out) {
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size, "%s: %s", what,
                        why);
    }
    return AKV_OK;
}

/* Exactly one source for a credential: the environment or a file. */
static akv_err_t resolve_secret(char **value, const char *file,
                                const char *what, const char *env,
                                const char *file_setting, const char *path,
                                char *errstr, size_t errstr_size)
{
    akv_err_t err;

    if (*value && file) {
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                        "%s: both %s and '%s' are set; use one", path, env,
                        file_setting);
    }
    if (!*value && !file) {
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                        "%s: no %s: set %s or '%s'", path, what, env,
                        file_setting);
    }
    if (file) {
        err = read_secret_file(file, what, value, errstr, errstr_size);
        if (err) {
            return err;
        }
    }
    if (akv_log_secret_add(*value) < 0) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    return AKV_OK;
}

static int is_http_url(const char *u)
{
    return strncmp(u, "http://", 7) == 0 || strncmp(u, "https://", 8) == 0;
}

/* A mount or prefix: slash-separated segments, none empty, "." or "..". */
static int path_ok(const char *p)
{
    const char *seg = p;

    if (!*p) {
        return 0;
    }
    for (;;) {
        const char *slash = strchr(seg, '/');
        size_t len = slash ? (size_t)(slash - seg) : strlen(seg);

        if (len == 0 || (len == 1 && seg[0] == '.') ||
            (len == 2 && seg[0] == '.' && seg[1] == '.')) {
            return 0;
        }
        if (!slash) {
            return 1;
        }
        seg = slash + 1;
    }
}

static int field_known(const char *name)
{
    const char *const *f;

    for (f = akv_settings_extra_field_names; *f; f++) {
        if (strcmp(*f, name) == 0) {
            return 1;
        }
    }
    return 0;
}

/* librdkafka properties ak2vault sets itself: at-least-once depends on
 * the first two, and the others have their own settings. */
static const char *const managed_properties[] = {"enable.auto.offset.store",
                                                 "enable.auto.commit",
                                                 "group.id",
                                                 "group.instance.id",
                                                 "bootstrap.servers",
                                                 "auto.offset.reset",
                                                 NULL};

static akv_err_t validate_kafka(const struct akv_settings *s, const char *path,
                                char *errstr, size_t errstr_size)
{
    const char *const *m;
    size_t i;

    for (i = 0; i < s->kafka_properties.n; i++) {
        for (m = managed_properties; *m; m++) {
            if (strcmp(s->kafka_properties.names[i], *m) == 0) {
                return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                                "%s: 'kafka.properties' cannot set %s: "
                                "ak2vault manages it",
                                path, *m);
            }
        }
    }
    return AKV_OK;
}

/* The file, or the environment variable the value of \p name came from. */
#define ORIGIN(name, path, buf)                                                \
    akv_cfg_origin(akv_settings_schema, name, path, buf, sizeof(buf))

static akv_err_t validate_urls(const struct akv_settings *s, const char *path,
                               char *errstr, size_t errstr_size)
{
    static const char *const names[] = {"authentik.url", "vault.addr"};
    const char *urls[] = {s->authentik_url, s->vault_addr};
    char where[1100];
    size_t i;

    for (i = 0; i < 2; i++) {
        if (!is_http_url(urls[i])) {
            return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                            "%s: '%s' must start with http:// or https://",
                            ORIGIN(names[i], path, where), names[i]);
        }
    }
    return AKV_OK;
}

/* Where and what the worker writes in Vault. */
static akv_err_t validate_vault_kv(const struct akv_settings *s,
                                   const char *path, char *errstr,
                                   size_t errstr_size)
{
    size_t i;

    if (!path_ok(s->vault_kv_mount) || !path_ok(s->vault_prefix)) {
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                        "%s: 'vault.kv_mount' and 'vault.prefix' must be "
                        "non-empty paths without empty, '.' or '..' "
                        "segments",
                        path);
    }
    for (i = 0; i < s->vault_extra_fields.n; i++) {
        if (!field_known(s->vault_extra_fields.v[i])) {
            return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                            "%s: 'vault.extra_fields' has unknown field "
                            "'%s'",
                            path, s->vault_extra_fields.v[i]);
        }
    }
    return AKV_OK;
}

static akv_err_t validate_match(const struct akv_settings *s, const char *path,
                                char *errstr, size_t errstr_size)
{
    if (s->match_apps.n == 0 || s->match_models.n == 0 ||
        s->match_sync_actions.n == 0 || s->match_intents.n == 0) {
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                        "%s: 'match.apps', 'match.models', "
                        "'match.sync_actions' and 'match.intents' must not "
                        "be empty",
                        path);
    }
    return AKV_OK;
}

static akv_err_t validate_metrics(const struct akv_settings *s,
                                  const char *path, char *errstr,
                                  size_t errstr_size)
{
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char why[300];
    char where[1100];

    if (s->metrics_listen && *s->metrics_listen &&
        akv_listen_parse(s->metrics_listen, &addr, &addrlen, why,
                         sizeof(why)) != AKV_OK) {
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                        "%s: 'metrics.listen': %s",
                        ORIGIN("metrics.listen", path, where), why);
    }
    return AKV_OK;
}

static akv_err_t validate_sync(const struct akv_settings *s, const char *path,
                               char *errstr, size_t errstr_size)
{
    if (s->sync_retry_initial_ms > s->sync_retry_max_ms) {
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                        "%s: 'sync.retry_initial_ms' must not exceed "
                        "'sync.retry_max_ms'",
                        path);
    }
    return AKV_OK;
}

/* What the login method needs, and a client certificate with its key. */
static akv_err_t validate_vault_auth(const struct akv_settings *s,
                                     const char *path, char *errstr,
                                     size_t errstr_size)
{
    if (strcmp(s->vault_auth_method, "kubernetes") == 0 &&
        !(s->vault_auth_role && *s->vault_auth_role)) {
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                        "%s: 'vault.auth.method' kubernetes needs "
                        "'vault.auth.role'",
                        path);
    }
    if (strcmp(s->vault_auth_method, "approle") == 0 &&
        (!s->vault_auth_secret_id_file ||
         !((s->vault_auth_role_id && *s->vault_auth_role_id) ||
           s->vault_auth_role_id_file))) {
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                        "%s: 'vault.auth.method' approle needs "
                        "'vault.auth.role_id' (or role_id_file) and "
                        "'vault.auth.secret_id_file'",
                        path);
    }
    if (!s->vault_tls_client_cert != !s->vault_tls_client_key) {
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                        "%s: 'vault.tls.client_cert' and "
                        "'vault.tls.client_key' go together",
                        path);
    }
    return AKV_OK;
}

/* The cross-field checks, in the order their refusals are reported: the
 * first that fails is the one the user sees. */
static akv_err_t (*const checks[])(const struct akv_settings *, const char *,
                                   char *, size_t) = {
    validate_kafka,   validate_urls, validate_vault_kv,   validate_match,
    validate_metrics, validate_sync, validate_vault_auth,
};

static akv_err_t validate(const struct akv_settings *s, const char *path,
                          char *errstr, size_t errstr_size)
{
    akv_err_t err;
    size_t i;

    for (i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
        err = checks[i](s, path, errstr, errstr_size);
        if (err) {
            return err;
        }
    }
    return AKV_OK;
}

static akv_err_t load(struct akv_settings *s, const char *path, int secrets,
                      char *errstr, size_t errstr_size);

akv_err_t akv_settings_load(struct akv_settings *s, const char *path,
                            char *errstr, size_t errstr_size)
{
    return load(s, path, 1, errstr, errstr_size);
}

akv_err_t akv_settings_load_kafka(struct akv_settings *s, const char *path,
                                  char *errstr, size_t errstr_size)
{
    return load(s, path, 0, errstr, errstr_size);
}

static akv_err_t load(struct akv_settings *s, const char *path, int secrets,
                      char *errstr, size_t errstr_size)
{
    const char *where = path ? path : "environment";
    akv_err_t err;

    memset(s, 0, sizeof(*s));
    err = akv_cfg_load_some(akv_settings_schema, s, path,
                            secrets ? NULL : "kafka.", errstr, errstr_size);
    if (err) {
        return err;
    }
    err = secrets ? validate(s, where, errstr, errstr_size)
                  : validate_kafka(s, where, errstr, errstr_size);
    if (err) {
        return err;
    }
    if (!s->dlq_topic) {
        size_t n = strlen(s->kafka_topic) + 5;

        s->dlq_topic = malloc(n);
        if (!s->dlq_topic) {
            return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size,
                            "out of memory");
        }
        snprintf(s->dlq_topic, n, "%s.dlq", s->kafka_topic);
    }
    if (!secrets) {
        return AKV_OK;
    }
    err = resolve_secret(&s->authentik_token, s->authentik_token_file,
                         "authentik API token", "AUTHENTIK_TOKEN",
                         "authentik.token_file", where, errstr, errstr_size);
    if (err) {
        return err;
    }
    if (strcmp(s->vault_auth_method, "token") != 0) {
        return AKV_OK; /* login methods obtain their own tokens */
    }
    return resolve_secret(&s->vault_token, s->vault_token_file, "Vault token",
                          "VAULT_TOKEN", "vault.token_file", where, errstr,
                          errstr_size);
}

void akv_settings_free(struct akv_settings *s)
{
    akv_log_secret_remove(s->authentik_token);
    akv_log_secret_remove(s->vault_token);
    akv_cfg_free(akv_settings_schema, s);
}

int akv_url_plain_remote(const char *url)
{
    const char *host;
    size_t len;

    if (!url || strncmp(url, "http://", 7) != 0) {
        return 0;
    }
    host = url + 7;
    len = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":/");
    if ((len == 9 && strncasecmp(host, "localhost", 9) == 0) ||
        (len == 5 && strncmp(host, "[::1]", 5) == 0)) {
        return 0;
    }
    /* 127.0.0.0/8: digits and dots after "127." */
    return !(len > 4 && strncmp(host, "127.", 4) == 0 &&
             strspn(host, "0123456789.") == len);
}

void akv_settings_warn_plain_http(const struct akv_settings *s)
{
    if (akv_url_plain_remote(s->vault_addr)) {
        akv_log_warn("config",
                     "vault.addr %s is plain http: the Vault token and every "
                     "token key cross the network unencrypted; use https://",
                     s->vault_addr);
    }
    if (akv_url_plain_remote(s->authentik_url)) {
        akv_log_warn("config",
                     "authentik.url %s is plain http: the authentik API token "
                     "and every token key cross the network unencrypted; use "
                     "https://",
                     s->authentik_url);
    }
}

void akv_settings_dump(const struct akv_settings *s, FILE *fp)
{
    akv_cfg_dump(akv_settings_schema, s, fp);
}
