/*
 * akv-bench-gen — writes realistic authentik events to a Kafka topic fast,
 * and tells what a topic holds; the event source of tests/bench/bench.py.
 *
 *   akv-bench-gen produce --brokers B --topic T --events N
 *                 [--token-events K | --token-ratio R]
 *                 [--tokens-file FILE | --ghost-tokens N]
 *                 [--manifest FILE] [--seed S] [--quiet] [-X name=value]
 *   akv-bench-gen check --brokers B --topic T [--group G] [--expect N]
 *
 * produce: N events in the shapes authentik's forwarding produces (logins,
 * failed logins, logouts, flow executions, authorize_application,
 * policy_execution, OAuth2 access tokens and users created/updated, secret
 * views of certificates and tokens), of which K (default 0.5% of N) are
 * token events — model_created, model_updated, secret_rotate — in exactly
 * authentik's shape. Each token event references a token of FILE (lines
 * "PK<TAB>IDENTIFIER<TAB>NAME", PK with or without dashes, NAME is
 * authentik's str(token), "ident (expires=...)"), so the worker finds
 * them in fake-authentik; --ghost-tokens N makes up N tokens instead. When
 * K >= the number of tokens every token is referenced at least once. Each
 * value is one line of compact JSON with nested keys in PostgreSQL jsonb
 * order, as authentik stores them; the record key is the token pk (32 hex)
 * for token events, else the event pk. `created` is the time the event is
 * built and also the record timestamp. Large batches, lz4 at level 3
 * (LZ4HC), which is what makes 25,000 events fit in a partition of the
 * mock. -X passes librdkafka properties (compression.level=1: faster,
 * about 18% bigger); --seed makes the layout reproducible.
 * After rd_kafka_flush() every delivery report must be a success and every
 * partition's low watermark must still be 0 (librdkafka 2.0.2's mock keeps
 * only the newest 5 MiB / 100,000 batches of each partition and drops the
 * oldest silently), and the high watermarks must have grown by exactly N:
 * otherwise it exits 1 saying what was lost. --manifest writes one line per
 * token event: "IDENTIFIER<TAB>CREATED_US<TAB>ACTION".
 *
 * check: the low and high watermark of every partition, and with --group
 * that group's committed offset (-1 when none); --expect N exits 1 unless
 * every low watermark is 0 and the partitions hold N records in all.
 *
 * Both print one JSON object on stdout (the figures bench.py reads);
 * produce also a one-line summary on stderr. Exit 0 ok, 1 check failed or
 * Kafka error, 64 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define EXIT_FAIL  1
#define EXIT_USAGE 64

#define EVENT_MAX      4096
#define IDENT_MAX      255
#define NAME_MAX_LEN   511
#define TIMEOUT_MS     10000
#define FLUSH_MS       120000
#define RETENTION_US   (365LL * 24 * 3600 * 1000000LL)
#define DEFAULT_RATIO  0.005
#define MAX_PARTITIONS 1000

struct token {
    char pk[33];                 /* 32 lowercase hex */
    char ident[IDENT_MAX + 1];   /* the slug */
    char name[NAME_MAX_LEN + 1]; /* str(token), JSON-safe */
    int seen;                    /* referenced by an event already */
};

struct options {
    const char *mode;
    const char *brokers;
    const char *topic;
    const char *group;
    const char *tokens_file;
    const char *manifest;
    long long events;
    long long token_events;
    double token_ratio;
    long long ghost_tokens;
    long long expect;
    unsigned long long seed;
    const char *props[32]; /* -X name=value, librdkafka properties */
    int nprops;
    int quiet;
};

/* ------------------------------------------------------------------------
 * Randomness: xoshiro256**, seeded by splitmix64. Fast, and a seed
 * reproduces a topic's layout.
 */

static uint64_t rng_s[4];

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void rng_seed(uint64_t seed)
{
    int i;

    for (i = 0; i < 4; i++) {
        rng_s[i] = splitmix64(&seed);
    }
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng(void)
{
    uint64_t result = rotl(rng_s[1] * 5, 7) * 9;
    uint64_t t = rng_s[1] << 17;

    rng_s[2] ^= rng_s[0];
    rng_s[3] ^= rng_s[1];
    rng_s[1] ^= rng_s[2];
    rng_s[0] ^= rng_s[3];
    rng_s[2] ^= t;
    rng_s[3] = rotl(rng_s[3], 45);
    return result;
}

/* Uniform in [0, n). */
static uint64_t rng_below(uint64_t n)
{
    return n ? rng() % n : 0;
}

static void rand_hex(char *out, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t r = 0;
    size_t i;

    for (i = 0; i < n; i++) {
        if ((i & 15) == 0) {
            r = rng();
        }
        out[i] = hex[r & 15];
        r >>= 4;
    }
    out[n] = '\0';
}

/* A random (version 4) UUID: \p hex gets 32 hex chars, \p dashed 36. */
static void rand_uuid(char hex[33], char dashed[37])
{
    rand_hex(hex, 32);
    hex[12] = '4';
    hex[16] = "89ab"[rng() & 3];
    snprintf(dashed, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
             hex + 16, hex + 20);
}

/* ------------------------------------------------------------------------
 * Time, as authentik prints it: 2026-04-21T08:01:12.447520Z. The part up
 * to the seconds is cached: formatting a million of them shows otherwise.
 */

static long long now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct timefmt {
    time_t sec;
    char base[24]; /* YYYY-MM-DDTHH:MM:SS */
};

static void fmt_iso(struct timefmt *cache, long long us, char *out,
                    size_t outsz)
{
    time_t sec = (time_t)(us / 1000000LL);

    if (sec != cache->sec || cache->base[0] == '\0') {
        struct tm tm;

        gmtime_r(&sec, &tm);
        strftime(cache->base, sizeof(cache->base), "%Y-%m-%dT%H:%M:%S", &tm);
        cache->sec = sec;
    }
    snprintf(out, outsz, "%s.%06lldZ", cache->base, us % 1000000LL);
}

/* ------------------------------------------------------------------------
 * The cast: users, applications, flows, clients.
 */

struct user {
    int pk;
    char username[32];
    char email[64];
};

#define NUSERS 48
static struct user users[NUSERS];

static const char *const first_names[] = {
    "alice",  "bob",    "carol",  "dave",  "erin",    "frank",
    "grace",  "heidi",  "ivan",   "judy",  "mallory", "niaj",
    "olivia", "peggy",  "rupert", "sybil", "trent",   "victor",
    "walter", "xavier", "yvonne", "zoe",   "amir",    "bea",
};

static const char *const user_agents[] = {
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 "
    "Firefox/128.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
    "like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Safari/605.1.15",
};
#define NUAS (sizeof(user_agents) / sizeof(user_agents[0]))

struct application {
    const char *name;
    const char *slug;
    const char *redirect;
    char pk[33];
    char client_id[41];
};

static struct application apps[] = {
    {"Grafana", "grafana", "https://grafana.example.com/login/generic_oauth",
     "", ""},
    {"GitLab", "gitlab",
     "https://gitlab.example.com/users/auth/openid_connect"
     "/callback",
     "", ""},
    {"Nextcloud", "nextcloud", "https://cloud.example.com/apps/user_oidc/code",
     "", ""},
    {"Vaultwarden", "vaultwarden",
     "https://vault.example.com/identity/connect/oidc-signin", "", ""},
    {"Jenkins", "jenkins", "https://ci.example.com/securityRealm/finishLogin",
     "", ""},
    {"Proxmox", "proxmox", "https://pve.example.com:8006", "", ""},
    {"Outline", "outline", "https://wiki.example.com/auth/oidc.callback", "",
     ""},
    {"Immich", "immich", "https://photos.example.com/auth/login", "", ""},
};
#define NAPPS (sizeof(apps) / sizeof(apps[0]))

struct flow {
    const char *slug;
    const char *name;
    const char *designation;
    char pk[33];
};

static struct flow flows[] = {
    {"default-authentication-flow", "Welcome to authentik!", "authentication",
     ""},
    {"default-provider-authorization-implicit-consent", "Redirecting to %s",
     "authorization", ""},
    {"default-provider-authorization-explicit-consent", "Redirecting to %s",
     "authorization", ""},
    {"default-invalidation-flow", "Logout", "invalidation", ""},
    {"default-user-settings-flow", "User settings", "stage_configuration", ""},
    {"default-authenticator-totp-setup", "Setup Two-Factor authentication",
     "stage_configuration", ""},
};
#define NFLOWS (sizeof(flows) / sizeof(flows[0]))

struct policy {
    const char *name;
    const char *model;
    const char *app;
    char pk[33];
    char binding_pk[33];
};

static struct policy policies[] = {
    {"group-membership-admins", "expressionpolicy",
     "authentik_policies_expression", "", ""},
    {"default-password-change-password-policy", "passwordpolicy",
     "authentik_policies_password", "", ""},
    {"office-network-only", "expressionpolicy", "authentik_policies_expression",
     "", ""},
    {"reputation-block", "reputationpolicy", "authentik_policies_reputation",
     "", ""},
};
#define NPOLICIES (sizeof(policies) / sizeof(policies[0]))

static char stage_pk[33];
static char cert_pk[33];
static char cert_dashed[37];

static void cast_init(void)
{
    size_t i;
    size_t nf = sizeof(first_names) / sizeof(first_names[0]);
    char dashed[37];

    for (i = 0; i < NUSERS; i++) {
        users[i].pk = (int)(7 + i * 3);
        if (i < nf) {
            snprintf(users[i].username, sizeof(users[i].username), "%s",
                     first_names[i]);
        } else {
            snprintf(users[i].username, sizeof(users[i].username), "%s.%zu",
                     first_names[i % nf], i);
        }
        snprintf(users[i].email, sizeof(users[i].email), "%s@example.com",
                 users[i].username);
    }
    for (i = 0; i < NAPPS; i++) {
        rand_uuid(apps[i].pk, dashed);
        rand_hex(apps[i].client_id, 40);
    }
    for (i = 0; i < NFLOWS; i++) {
        rand_uuid(flows[i].pk, dashed);
    }
    for (i = 0; i < NPOLICIES; i++) {
        rand_uuid(policies[i].pk, dashed);
        rand_uuid(policies[i].binding_pk, dashed);
    }
    rand_uuid(stage_pk, dashed);
    rand_uuid(cert_pk, cert_dashed);
}

/* ------------------------------------------------------------------------
 * Events
 */

static const char brand_default[] =
    "{\"pk\":\"0bb0bcf421994958b51ffc2627ea8fe6\",\"app\":"
    "\"authentik_brands\",\"name\":\"Default brand\",\"model_name\":"
    "\"brand\"}";
static const char brand_fallback[] =
    "{\"pk\":\"a7d83d0dbfaf49259a92ced93f04dd52\",\"app\":"
    "\"authentik_brands\",\"name\":\"Brand fallback\",\"model_name\":"
    "\"brand\"}";

/* What every event has: its pk, times, request id, client. */
struct common {
    char pk_hex[33];
    char pk[37];
    char created[40];
    char expires[40];
    char request_id[33];
    char ip[20];
    const char *ua;
    const struct user *user;
    long long created_us;
};

static void common_init(struct common *c, struct timefmt *tf,
                        struct timefmt *tf_exp)
{
    static const char *const nets[] = {"198.51.100.", "203.0.113.", "192.0.2."};

    rand_uuid(c->pk_hex, c->pk);
    rand_hex(c->request_id, 32);
    c->created_us = now_us();
    fmt_iso(tf, c->created_us, c->created, sizeof(c->created));
    fmt_iso(tf_exp, c->created_us + RETENTION_US, c->expires,
            sizeof(c->expires));
    snprintf(c->ip, sizeof(c->ip), "%s%d", nets[rng_below(3)],
             (int)(1 + rng_below(254)));
    c->ua = user_agents[rng_below(NUAS)];
    c->user = &users[rng_below(NUSERS)];
}

/* The tail shared by most shapes: client_ip, created, expires, brand. */
#define TAIL_FMT                                                               \
    "\"client_ip\":\"%s\",\"created\":\"%s\",\"expires\":\"%s\",\"brand\":%s}"
#define TAIL_ARGS(c) (c)->ip, (c)->created, (c)->expires, brand_default
#define USER_FMT     "\"user\":{\"pk\":%d,\"email\":\"%s\",\"username\":\"%s\"}"
#define USER_ARGS(u) (u)->pk, (u)->email, (u)->username
#define HTTP_FMT                                                               \
    "\"http_request\":{\"args\":%s,\"path\":\"%s\",\"method\":\"%s\","         \
    "\"request_id\":\"%s\",\"user_agent\":\"%s\"}"

static int ev_login(char *b, size_t n, const struct common *c)
{
    return snprintf(b, n,
                    "{\"pk\":\"%s\"," USER_FMT ",\"action\":\"login\",\"app\":"
                    "\"authentik.events.signals\",\"context\":{\"auth_method\":"
                    "\"password\"," HTTP_FMT
                    ",\"auth_method_args\":{}}," TAIL_FMT,
                    c->pk, USER_ARGS(c->user), "{\"next\":\"/if/user/\"}",
                    "/api/v3/flows/executor/default-authentication-flow/",
                    "POST", c->request_id, c->ua, TAIL_ARGS(c));
}

static int ev_login_failed(char *b, size_t n, const struct common *c)
{
    return snprintf(
        b, n,
        "{\"pk\":\"%s\",\"user\":{\"pk\":1,\"email\":\"\",\"username\":"
        "\"AnonymousUser\",\"is_anonymous\":true},\"action\":\"login_failed\","
        "\"app\":\"authentik.events.signals\",\"context\":{\"stage\":{\"pk\":"
        "\"%s\",\"app\":\"authentik_stages_password\",\"name\":"
        "\"default-authentication-password\",\"model_name\":"
        "\"passwordstage\"},\"password\":\"********************\","
        "\"username\":\"%s\"," HTTP_FMT "}," TAIL_FMT,
        c->pk, stage_pk, c->user->username, "{\"next\":\"/if/user/\"}",
        "/api/v3/flows/executor/default-authentication-flow/", "POST",
        c->request_id, c->ua, TAIL_ARGS(c));
}

static int ev_logout(char *b, size_t n, const struct common *c)
{
    return snprintf(b, n,
                    "{\"pk\":\"%s\"," USER_FMT ",\"action\":\"logout\",\"app\":"
                    "\"authentik.events.signals\",\"context\":{" HTTP_FMT
                    "}," TAIL_FMT,
                    c->pk, USER_ARGS(c->user), "{}",
                    "/api/v3/flows/executor/default-invalidation-flow/", "GET",
                    c->request_id, c->ua, TAIL_ARGS(c));
}

static int ev_flow_execution(char *b, size_t n, const struct common *c)
{
    const struct flow *f = &flows[rng_below(NFLOWS)];
    const struct application *a = &apps[rng_below(NAPPS)];
    char name[96];
    char path[128];

    snprintf(name, sizeof(name), f->name, a->name);
    snprintf(path, sizeof(path), "/api/v3/flows/executor/%s/", f->slug);
    return snprintf(
        b, n,
        "{\"pk\":\"%s\"," USER_FMT ",\"action\":\"flow_execution\",\"app\":"
        "\"authentik.flows.views.executor\",\"context\":{\"flow\":{\"pk\":"
        "\"%s\",\"app\":\"authentik_flows\",\"name\":\"%s\",\"model_name\":"
        "\"flow\"},\"successful\":true,\"designation\":\"%s\"," HTTP_FMT
        "}," TAIL_FMT,
        c->pk, USER_ARGS(c->user), f->pk, name, f->designation, "{}", path,
        "GET", c->request_id, c->ua, TAIL_ARGS(c));
}

static int ev_authorize(char *b, size_t n, const struct common *c)
{
    const struct application *a = &apps[rng_below(NAPPS)];
    const struct flow *f = &flows[1 + rng_below(2)];
    char args[384];
    char state[11];
    char path[128];

    rand_hex(state, 10);
    snprintf(args, sizeof(args),
             "{\"scope\":\"openid email profile\",\"state\":\"%s\","
             "\"client_id\":\"%s\",\"redirect_uri\":\"%s\","
             "\"response_type\":\"code\"}",
             state, a->client_id, a->redirect);
    snprintf(path, sizeof(path), "/api/v3/flows/executor/%s/", f->slug);
    return snprintf(
        b, n,
        "{\"pk\":\"%s\"," USER_FMT ",\"action\":\"authorize_application\","
        "\"app\":\"authentik.providers.oauth2.views.authorize\",\"context\":{"
        "\"flow\":\"%s\",\"scopes\":\"openid email profile\"," HTTP_FMT
        ",\"authorized_application\":{\"pk\":\"%s\",\"app\":"
        "\"authentik_core\",\"name\":\"%s\",\"model_name\":"
        "\"application\"}}," TAIL_FMT,
        c->pk, USER_ARGS(c->user), f->pk, args, path, "GET", c->request_id,
        c->ua, a->pk, a->name, TAIL_ARGS(c));
}

static int ev_policy_execution(char *b, size_t n, const struct common *c)
{
    const struct policy *p = &policies[rng_below(NPOLICIES)];
    const struct application *a = &apps[rng_below(NAPPS)];
    int passing = rng_below(10) != 0;

    return snprintf(
        b, n,
        "{\"pk\":\"%s\"," USER_FMT ",\"action\":\"policy_execution\",\"app\":"
        "\"authentik.policies.process\",\"context\":{\"policy\":{\"pk\":"
        "\"%s\",\"app\":\"%s\",\"name\":\"%s\",\"model_name\":\"%s\"},"
        "\"result\":{\"passing\":%s,\"messages\":[%s],\"log_messages\":[]},"
        "\"binding\":{\"pk\":\"%s\",\"app\":\"authentik_policies\",\"name\":"
        "\"Binding from Application %s #0 to Policy %s\",\"model_name\":"
        "\"policybinding\"},\"message\":\"Policy Execution\",\"request\":{"
        "\"obj\":{\"pk\":\"%s\",\"app\":\"authentik_core\",\"name\":\"%s\","
        "\"model_name\":\"application\"},\"user\":{\"pk\":%d,\"email\":\"%s\","
        "\"username\":\"%s\"},\"debug\":false,\"context\":{}}},\"client_ip\":"
        "\"%s\",\"created\":\"%s\",\"expires\":\"%s\",\"brand\":%s}",
        c->pk, USER_ARGS(c->user), p->pk, p->app, p->name, p->model,
        passing ? "true" : "false", passing ? "" : "\"Access denied\"",
        p->binding_pk, a->name, p->name, a->pk, a->name, USER_ARGS(c->user),
        TAIL_ARGS(c));
}

static int ev_access_token(char *b, size_t n, const struct common *c)
{
    char session[33];
    char expires[40];
    struct timefmt tf = {0, ""};

    rand_hex(session, 32);
    fmt_iso(&tf, c->created_us + 300000000LL, expires, sizeof(expires));
    return snprintf(
        b, n,
        "{\"pk\":\"%s\",\"user\":{\"pk\":1,\"email\":\"\",\"username\":"
        "\"AnonymousUser\"},\"action\":\"model_created\",\"app\":"
        "\"authentik.events.middleware\",\"context\":{\"diff\":{\"user\":{"
        "\"new_value\":%d,\"previous_value\":null},\"token\":{\"new_value\":"
        "\"********************\",\"previous_value\":null},\"_scope\":{"
        "\"new_value\":\"openid email profile\",\"previous_value\":null},"
        "\"expires\":{\"new_value\":\"%s\",\"previous_value\":null},"
        "\"session\":{\"new_value\":\"%s\",\"previous_value\":null},"
        "\"expiring\":{\"new_value\":true,\"previous_value\":null},"
        "\"provider\":{\"new_value\":%d,\"previous_value\":null},"
        "\"_id_token\":{\"new_value\":\"********************\","
        "\"previous_value\":null},\"auth_time\":{\"new_value\":\"%s\","
        "\"previous_value\":null}},\"model\":{\"pk\":%d,\"app\":"
        "\"authentik_providers_oauth2\",\"name\":\"Access Token for %d for "
        "user %d\",\"model_name\":\"accesstoken\"}," HTTP_FMT "}," TAIL_FMT,
        c->pk, c->user->pk, expires, session, (int)(1 + rng_below(NAPPS)),
        c->created, (int)(1000 + rng_below(900000)),
        (int)(1 + rng_below(NAPPS)), c->user->pk, "{}", "/application/o/token/",
        "POST", c->request_id, "Go-http-client/1.1", TAIL_ARGS(c));
}

static int ev_user_updated(char *b, size_t n, const struct common *c)
{
    const struct user *u = &users[rng_below(NUSERS)];
    char path[64];

    snprintf(path, sizeof(path), "/api/v3/core/users/%d/", u->pk);
    return snprintf(
        b, n,
        "{\"pk\":\"%s\",\"user\":{\"pk\":4,\"email\":\"admin@example.com\","
        "\"username\":\"akadmin\"},\"action\":\"model_updated\",\"app\":"
        "\"authentik.events.middleware\",\"context\":{\"diff\":{\"name\":{"
        "\"new_value\":\"%s Example\",\"previous_value\":\"%s\"},"
        "\"attributes\":{\"new_value\":{\"settings\":{\"locale\":\"en\"}},"
        "\"previous_value\":{}}},\"model\":{\"pk\":%d,\"app\":"
        "\"authentik_core\",\"name\":\"%s "
        "Example\",\"model_name\":\"user\"}," HTTP_FMT "}," TAIL_FMT,
        c->pk, u->username, u->username, u->pk, u->username, "{}", path,
        "PATCH", c->request_id, c->ua, TAIL_ARGS(c));
}

static int ev_certificate_view(char *b, size_t n, const struct common *c)
{
    char path[128];

    snprintf(path, sizeof(path),
             "/api/v3/crypto/certificatekeypairs/%s/view_certificate/",
             cert_dashed);
    return snprintf(
        b, n,
        "{\"pk\":\"%s\",\"user\":{\"pk\":4,\"email\":\"admin@example.com\","
        "\"username\":\"akadmin\"},\"action\":\"secret_view\",\"app\":"
        "\"authentik.crypto.api\",\"context\":{\"type\":\"certificate\","
        "\"secret\":{\"pk\":\"%s\",\"app\":\"authentik_crypto\",\"name\":"
        "\"authentik Self-signed Certificate\",\"model_name\":"
        "\"certificatekeypair\"}," HTTP_FMT "}," TAIL_FMT,
        c->pk, cert_pk, "{}", path, "GET", c->request_id, c->ua, TAIL_ARGS(c));
}

/* A token's key read through the API (what every sync does): secret_view,
 * which the worker must skip. */
static int ev_token_view(char *b, size_t n, const struct common *c,
                         const struct token *t)
{
    char path[IDENT_MAX + 64];

    snprintf(path, sizeof(path), "/api/v3/core/tokens/%s/view_key/", t->ident);
    return snprintf(
        b, n,
        "{\"pk\":\"%s\",\"user\":{\"pk\":4,\"email\":\"admin@example.com\","
        "\"username\":\"akadmin\"},\"action\":\"secret_view\",\"app\":"
        "\"authentik.core.api.tokens\",\"context\":{\"secret\":{\"pk\":\"%s\","
        "\"app\":\"authentik_core\",\"name\":\"%s\",\"model_name\":"
        "\"token\"}," HTTP_FMT "}," TAIL_FMT,
        c->pk, t->pk, t->name, "{}", path, "GET", c->request_id, "ak2vault/1.0",
        TAIL_ARGS(c));
}

/* Token events, exactly as authentik records them (see the fixtures
 * token_created.json, token_set_key_middleware.json, token_updated.json
 * and token_rotate.json). */
enum token_action { TOK_CREATED, TOK_UPDATED, TOK_SET_KEY, TOK_ROTATE };

static const char *token_action_name(enum token_action a)
{
    switch (a) {
    case TOK_CREATED:
        return "model_created";
    case TOK_UPDATED:
    case TOK_SET_KEY:
        return "model_updated";
    case TOK_ROTATE:
        return "secret_rotate";
    }
    return "?";
}

static int ev_token(char *b, size_t n, const struct common *c,
                    const struct token *t, enum token_action a)
{
    char path[IDENT_MAX + 64];

    switch (a) {
    case TOK_CREATED:
        return snprintf(
            b, n,
            "{\"pk\":\"%s\",\"user\":{\"pk\":4,\"email\":"
            "\"admin@example.com\",\"username\":\"akadmin\"},\"action\":"
            "\"model_created\",\"app\":\"authentik.events.middleware\","
            "\"context\":{\"model\":{\"pk\":\"%s\",\"app\":\"authentik_core\","
            "\"name\":\"%s\",\"model_name\":\"token\"}," HTTP_FMT "}," TAIL_FMT,
            c->pk, t->pk, t->name, "{}", "/api/v3/core/tokens/", "POST",
            c->request_id, c->ua, TAIL_ARGS(c));
    case TOK_UPDATED:
        snprintf(path, sizeof(path), "/api/v3/core/tokens/%s/", t->ident);
        return snprintf(
            b, n,
            "{\"pk\":\"%s\",\"user\":{\"pk\":4,\"email\":"
            "\"admin@example.com\",\"username\":\"akadmin\"},\"action\":"
            "\"model_updated\",\"app\":\"authentik.events.middleware\","
            "\"context\":{\"model\":{\"pk\":\"%s\",\"app\":\"authentik_core\","
            "\"name\":\"%s\",\"model_name\":\"token\"}," HTTP_FMT "}," TAIL_FMT,
            c->pk, t->pk, t->name, "{}", path, "PATCH", c->request_id, c->ua,
            TAIL_ARGS(c));
    case TOK_SET_KEY:
        snprintf(path, sizeof(path), "/api/v3/core/tokens/%s/set_key/",
                 t->ident);
        return snprintf(
            b, n,
            "{\"pk\":\"%s\",\"user\":{\"pk\":4,\"email\":"
            "\"admin@example.com\",\"username\":\"akadmin\"},\"action\":"
            "\"model_updated\",\"app\":\"authentik.events.middleware\","
            "\"context\":{\"diff\":{},\"model\":{\"pk\":\"%s\",\"app\":"
            "\"authentik_core\",\"name\":\"%s\",\"model_name\":\"token\"}"
            "," HTTP_FMT "}," TAIL_FMT,
            c->pk, t->pk, t->name, "{}", path, "POST", c->request_id,
            "ak2vault-tests/1.0", TAIL_ARGS(c));
    case TOK_ROTATE:
        /* Raised by the rotation task: no user, no request, fallback
         * brand, client_ip null. */
        return snprintf(
            b, n,
            "{\"pk\":\"%s\",\"user\":{},\"action\":\"secret_rotate\",\"app\":"
            "\"authentik.core.models\",\"context\":{\"token\":{\"pk\":\"%s\","
            "\"app\":\"authentik_core\",\"name\":\"%s\",\"model_name\":"
            "\"token\"},\"message\":\"Token %s's secret was rotated.\"},"
            "\"client_ip\":null,\"created\":\"%s\",\"expires\":\"%s\","
            "\"brand\":%s}",
            c->pk, t->pk, t->name, t->ident, c->created, c->expires,
            brand_fallback);
    }
    return -1;
}

/* The mix of the other 99.5%, in per-mille, roughly what a busy authentik
 * with OAuth2 applications records. */
enum kind {
    K_LOGIN,
    K_LOGIN_FAILED,
    K_LOGOUT,
    K_FLOW,
    K_AUTHORIZE,
    K_POLICY,
    K_ACCESS_TOKEN,
    K_USER_UPDATED,
    K_CERT_VIEW,
    K_TOKEN_VIEW,
    NKINDS
};

static const struct {
    enum kind kind;
    int permille;
    const char *name;
} mix[] = {
    {K_LOGIN, 370, "login"},
    {K_LOGIN_FAILED, 40, "login_failed"},
    {K_LOGOUT, 190, "logout"},
    {K_FLOW, 210, "flow_execution"},
    {K_AUTHORIZE, 60, "authorize_application"},
    {K_POLICY, 30, "policy_execution"},
    {K_ACCESS_TOKEN, 25, "model_created accesstoken"},
    {K_USER_UPDATED, 45, "model_updated user"},
    {K_CERT_VIEW, 15, "secret_view certificate"},
    {K_TOKEN_VIEW, 15, "secret_view token"},
};
#define NMIX (sizeof(mix) / sizeof(mix[0]))

static enum kind pick_kind(void)
{
    int r = (int)rng_below(1000);
    size_t i;

    for (i = 0; i < NMIX; i++) {
        r -= mix[i].permille;
        if (r < 0) {
            return mix[i].kind;
        }
    }
    return K_LOGIN;
}

/* ------------------------------------------------------------------------
 * Tokens
 */

static void strip_nl(char *s)
{
    size_t n = strlen(s);

    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r')) {
        s[--n] = '\0';
    }
}

static int pk_normalize(const char *in, char out[33])
{
    size_t n = 0;

    for (; *in; in++) {
        char ch = *in;

        if (ch == '-') {
            continue;
        }
        if (ch >= 'A' && ch <= 'F') {
            ch = (char)(ch - 'A' + 'a');
        }
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) ||
            n >= 32) {
            return -1;
        }
        out[n++] = ch;
    }
    out[n] = '\0';
    return n == 32 ? 0 : -1;
}

/* Names and identifiers go into JSON strings verbatim: refuse anything
 * that would need escaping rather than escape it. */
static int json_safe(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || *s == '"' || *s == '\\') {
            return 0;
        }
    }
    return 1;
}

static struct token *tokens_load(const char *path, size_t *count)
{
    FILE *fp = fopen(path, "r");
    struct token *v = NULL;
    size_t n = 0;
    size_t cap = 0;
    char line[1024];
    unsigned lineno = 0;

    if (!fp) {
        fprintf(stderr, "akv-bench-gen: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    while (fgets(line, sizeof(line), fp)) {
        char *pk = line;
        char *ident;
        char *name;
        struct token *t;

        lineno++;
        strip_nl(line);
        if (line[0] == '\0' || line[0] == '#') {
            continue;
        }
        ident = strchr(pk, '\t');
        name = ident ? strchr(ident + 1, '\t') : NULL;
        if (!ident) {
            fprintf(stderr,
                    "akv-bench-gen: %s:%u: want PK<TAB>IDENTIFIER"
                    "[<TAB>NAME]\n",
                    path, lineno);
            goto fail;
        }
        *ident++ = '\0';
        if (name) {
            *name++ = '\0';
        }
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 1024;
            struct token *nv = realloc(v, ncap * sizeof(*v));

            if (!nv) {
                fprintf(stderr, "akv-bench-gen: out of memory\n");
                goto fail;
            }
            v = nv;
            cap = ncap;
        }
        t = &v[n];
        memset(t, 0, sizeof(*t));
        if (pk_normalize(pk, t->pk) < 0 || strlen(ident) == 0 ||
            strlen(ident) > IDENT_MAX || !json_safe(ident) ||
            (name && (strlen(name) > NAME_MAX_LEN || !json_safe(name)))) {
            fprintf(stderr, "akv-bench-gen: %s:%u: bad token line\n", path,
                    lineno);
            goto fail;
        }
        snprintf(t->ident, sizeof(t->ident), "%s", ident);
        snprintf(t->name, sizeof(t->name), "%s", name ? name : ident);
        n++;
    }
    fclose(fp);
    if (n == 0) {
        fprintf(stderr, "akv-bench-gen: %s: no tokens\n", path);
        free(v);
        return NULL;
    }
    *count = n;
    return v;

fail:
    fclose(fp);
    free(v);
    return NULL;
}

/* Tokens that exist nowhere: the worker will get 404s for them. */
static struct token *tokens_ghost(size_t n)
{
    struct token *v = calloc(n, sizeof(*v));
    char dashed[37];
    size_t i;

    if (!v) {
        fprintf(stderr, "akv-bench-gen: out of memory\n");
        return NULL;
    }
    for (i = 0; i < n; i++) {
        rand_uuid(v[i].pk, dashed);
        snprintf(v[i].ident, sizeof(v[i].ident), "bench-ghost-%06zu", i);
        snprintf(v[i].name, sizeof(v[i].name),
                 "bench-ghost-%06zu (expires=2027-04-21 08:00:00+00:00)", i);
    }
    return v;
}

/* ------------------------------------------------------------------------
 * Kafka
 */

struct delivery {
    long long ok;
    long long failed;
    rd_kafka_resp_err_t first_err;
};

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                      void *opaque)
{
    struct delivery *d = opaque;

    (void)rk;
    if (rkm->err) {
        if (d->failed++ == 0) {
            d->first_err = rkm->err;
        }
    } else {
        d->ok++;
    }
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "akv-bench-gen: %s: %s\n", name, errstr);
        return -1;
    }
    return 0;
}

/* -X name=value: librdkafka properties, after the built-in ones. */
static int conf_props(rd_kafka_conf_t *conf, const struct options *o)
{
    int i;

    for (i = 0; i < o->nprops; i++) {
        char name[256];
        const char *eq = strchr(o->props[i], '=');

        if (!eq || eq == o->props[i] ||
            (size_t)(eq - o->props[i]) >= sizeof(name)) {
            fprintf(stderr, "akv-bench-gen: -X wants name=value: %s\n",
                    o->props[i]);
            return -1;
        }
        snprintf(name, sizeof(name), "%.*s", (int)(eq - o->props[i]),
                 o->props[i]);
        if (conf_set(conf, name, eq + 1) < 0) {
            return -1;
        }
    }
    return 0;
}

static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf,
                              const char *brokers)
{
    char errstr[512];
    rd_kafka_t *rk;

    if (conf_set(conf, "bootstrap.servers", brokers) ||
        conf_set(conf, "client.id", "akv-bench-gen") ||
        conf_set(conf, "log_level", "3")) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "akv-bench-gen: cannot create the Kafka client: %s\n",
                errstr);
        rd_kafka_conf_destroy(conf);
    }
    return rk; /* rd_kafka_new() took conf */
}

/* @returns the partition count of \p topic, or -1 (said why). */
static int partition_count(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    int n = -1;

    if (!rkt) {
        fprintf(stderr, "akv-bench-gen: topic %s: %s\n", topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        return -1;
    }
    err = rd_kafka_metadata(rk, 0, rkt, &md, TIMEOUT_MS);
    if (err) {
        fprintf(stderr, "akv-bench-gen: metadata of %s: %s\n", topic,
                rd_kafka_err2str(err));
    } else if (md->topic_cnt != 1 || md->topics[0].err) {
        fprintf(stderr, "akv-bench-gen: topic %s: %s\n", topic,
                md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err)
                                   : "not in the metadata");
    } else if (md->topics[0].partition_cnt < 1 ||
               md->topics[0].partition_cnt > MAX_PARTITIONS) {
        fprintf(stderr, "akv-bench-gen: topic %s has %d partitions\n", topic,
                md->topics[0].partition_cnt);
    } else {
        n = md->topics[0].partition_cnt;
    }
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_topic_destroy(rkt);
    return n;
}

static int watermarks(rd_kafka_t *rk, const char *topic, int nparts,
                      int64_t *low, int64_t *high)
{
    int p;

    for (p = 0; p < nparts; p++) {
        rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
            rk, topic, p, &low[p], &high[p], TIMEOUT_MS);

        if (err) {
            fprintf(stderr, "akv-bench-gen: watermarks of %s [%d]: %s\n", topic,
                    p, rd_kafka_err2str(err));
            return -1;
        }
    }
    return 0;
}

static void print_offsets(const char *name, const int64_t *v, int n)
{
    int p;

    printf(",\"%s\":[", name);
    for (p = 0; p < n; p++) {
        printf("%s%" PRId64, p ? "," : "", v[p]);
    }
    printf("]");
}

/* Every low watermark 0, and \p expect records in all (-1: any number).
 * @returns 0 or -1, saying what is wrong on stderr. */
static int verify_offsets(const char *topic, int nparts, const int64_t *low,
                          const int64_t *high, const int64_t *before,
                          long long expect)
{
    long long total = 0;
    long long dropped = 0;
    int bad = 0;
    int p;

    for (p = 0; p < nparts; p++) {
        total += high[p] - (before ? before[p] : 0);
        if (low[p] != 0) {
            dropped += low[p];
            bad++;
        }
    }
    if (bad) {
        fprintf(stderr,
                "akv-bench-gen: %s: %lld record(s) DROPPED: %d partition(s) "
                "have a low watermark above 0 (the mock keeps only the "
                "newest 5 MiB / 100,000 batches per partition): use more "
                "partitions\n",
                topic, dropped, bad);
        return -1;
    }
    if (expect >= 0 && total != expect) {
        fprintf(stderr,
                "akv-bench-gen: %s: %lld record(s) where %lld were "
                "expected\n",
                topic, total, expect);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * produce
 */

static int do_produce(const struct options *o)
{
    struct delivery dr = {0, 0, RD_KAFKA_RESP_ERR_NO_ERROR};
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    struct token *tokens = NULL;
    size_t ntokens = 0;
    size_t *order = NULL;
    size_t next_unseen = 0;
    int64_t *before = NULL;
    int64_t *low = NULL;
    int64_t *high = NULL;
    FILE *manifest = NULL;
    struct timefmt tf = {0, ""};
    struct timefmt tf_exp = {0, ""};
    char buf[EVENT_MAX];
    long long token_events = o->token_events;
    long long kinds[NKINDS + 1];
    long long bytes = 0;
    long long tok_done = 0;
    long long first_us = 0;
    long long last_us = 0;
    long long i;
    double t0;
    double secs;
    int nparts;
    int rc = EXIT_FAIL;
    size_t k;

    memset(kinds, 0, sizeof(kinds));
    if (token_events < 0) {
        token_events = (long long)((double)o->events * o->token_ratio + 0.5);
    }
    if (token_events > o->events) {
        fprintf(stderr, "akv-bench-gen: more token events than events\n");
        rd_kafka_conf_destroy(conf);
        return EXIT_USAGE;
    }
    if (o->tokens_file) {
        tokens = tokens_load(o->tokens_file, &ntokens);
    } else if (o->ghost_tokens > 0) {
        ntokens = (size_t)o->ghost_tokens;
        tokens = tokens_ghost(ntokens);
    } else if (token_events > 0) {
        fprintf(stderr, "akv-bench-gen: token events need --tokens-file or "
                        "--ghost-tokens\n");
        rd_kafka_conf_destroy(conf);
        return EXIT_USAGE;
    }
    if (token_events > 0 && !tokens) {
        rd_kafka_conf_destroy(conf);
        return EXIT_FAIL;
    }
    /* The first references visit every token once, in random order. */
    if (ntokens > 0) {
        order = malloc(ntokens * sizeof(*order));
        if (!order) {
            fprintf(stderr, "akv-bench-gen: out of memory\n");
            rd_kafka_conf_destroy(conf);
            goto out;
        }
        for (k = 0; k < ntokens; k++) {
            order[k] = k;
        }
        for (k = ntokens - 1; k > 0; k--) {
            size_t j = (size_t)rng_below(k + 1);
            size_t tmp = order[k];

            order[k] = order[j];
            order[j] = tmp;
        }
    }
    if (o->manifest) {
        manifest = fopen(o->manifest, "w");
        if (!manifest) {
            fprintf(stderr, "akv-bench-gen: %s: %s\n", o->manifest,
                    strerror(errno));
            rd_kafka_conf_destroy(conf);
            goto out;
        }
    }

    /* Big lz4 batches make the most of the mock's 5 MiB per partition.
     * Level 3 (LZ4HC) makes them about 18% smaller than lz4's fast mode:
     * with ~800-byte events that is the difference between 1,000,000
     * fitting in 32 partitions and 11% of them silently dropped, for about
     * twice the producing time (-X compression.level=1 for speed). */
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    rd_kafka_conf_set_opaque(conf, &dr);
    if (conf_set(conf, "compression.type", "lz4") ||
        conf_set(conf, "compression.level", "3") ||
        conf_set(conf, "linger.ms", "50") ||
        conf_set(conf, "batch.size", "1000000") ||
        conf_set(conf, "batch.num.messages", "10000") ||
        conf_set(conf, "queue.buffering.max.messages", "1000000") ||
        conf_set(conf, "queue.buffering.max.kbytes", "2097151") ||
        conf_set(conf, "acks", "all") ||
        conf_set(conf, "message.timeout.ms", "120000") ||
        conf_props(conf, o) < 0) {
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    rk = client_new(RD_KAFKA_PRODUCER, conf, o->brokers);
    if (!rk) {
        goto out;
    }
    nparts = partition_count(rk, o->topic);
    if (nparts < 0) {
        goto out;
    }
    before = calloc((size_t)nparts, sizeof(*before));
    low = calloc((size_t)nparts, sizeof(*low));
    high = calloc((size_t)nparts, sizeof(*high));
    if (!before || !low || !high) {
        fprintf(stderr, "akv-bench-gen: out of memory\n");
        goto out;
    }
    if (watermarks(rk, o->topic, nparts, low, before) < 0) {
        goto out;
    }
    rkt = rd_kafka_topic_new(rk, o->topic, NULL);
    if (!rkt) {
        fprintf(stderr, "akv-bench-gen: topic %s: %s\n", o->topic,
                rd_kafka_err2str(rd_kafka_last_error()));
        goto out;
    }

    t0 = mono_s();
    for (i = 0; i < o->events; i++) {
        struct common c;
        const char *key;
        size_t klen;
        int len;
        rd_kafka_resp_err_t err;
        /* Token events spread evenly, exactly token_events of them. */
        int is_token = token_events > 0 && (i + 1) * token_events / o->events !=
                                               i * token_events / o->events;

        common_init(&c, &tf, &tf_exp);
        if (first_us == 0) {
            first_us = c.created_us;
        }
        last_us = c.created_us;
        if (is_token) {
            struct token *t;
            enum token_action a;

            if (next_unseen < ntokens) {
                t = &tokens[order[next_unseen++]];
            } else {
                t = &tokens[rng_below(ntokens)];
            }
            if (!t->seen) {
                a = TOK_CREATED;
                t->seen = 1;
            } else {
                uint64_t r = rng_below(100);

                a = r < 35 ? TOK_UPDATED : r < 60 ? TOK_SET_KEY : TOK_ROTATE;
            }
            len = ev_token(buf, sizeof(buf), &c, t, a);
            key = t->pk;
            klen = 32;
            kinds[NKINDS]++;
            tok_done++;
            if (manifest) {
                fprintf(manifest, "%s\t%lld\t%s\n", t->ident, c.created_us,
                        token_action_name(a));
            }
        } else {
            enum kind kind = pick_kind();

            if (kind == K_TOKEN_VIEW && ntokens == 0) {
                kind = K_CERT_VIEW;
            }
            switch (kind) {
            case K_LOGIN_FAILED:
                len = ev_login_failed(buf, sizeof(buf), &c);
                break;
            case K_LOGOUT:
                len = ev_logout(buf, sizeof(buf), &c);
                break;
            case K_FLOW:
                len = ev_flow_execution(buf, sizeof(buf), &c);
                break;
            case K_AUTHORIZE:
                len = ev_authorize(buf, sizeof(buf), &c);
                break;
            case K_POLICY:
                len = ev_policy_execution(buf, sizeof(buf), &c);
                break;
            case K_ACCESS_TOKEN:
                len = ev_access_token(buf, sizeof(buf), &c);
                break;
            case K_USER_UPDATED:
                len = ev_user_updated(buf, sizeof(buf), &c);
                break;
            case K_CERT_VIEW:
                len = ev_certificate_view(buf, sizeof(buf), &c);
                break;
            case K_TOKEN_VIEW:
                len = ev_token_view(buf, sizeof(buf), &c,
                                    &tokens[rng_below(ntokens)]);
                break;
            case K_LOGIN:
            default:
                len = ev_login(buf, sizeof(buf), &c);
                break;
            }
            key = c.pk;
            klen = 36;
            kinds[kind]++;
        }
        if (len < 0 || (size_t)len >= sizeof(buf)) {
            fprintf(stderr, "akv-bench-gen: event %lld does not fit\n", i);
            goto out;
        }
        bytes += len;
        for (;;) {
            err = rd_kafka_producev(
                rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_KEY(key, klen),
                RD_KAFKA_V_VALUE(buf, (size_t)len),
                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_TIMESTAMP(c.created_us / 1000), RD_KAFKA_V_END);
            if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                break;
            }
            rd_kafka_poll(rk, 10);
        }
        if (err) {
            fprintf(stderr, "akv-bench-gen: produce: %s\n",
                    rd_kafka_err2str(err));
            goto out;
        }
        if ((i & 1023) == 0) {
            rd_kafka_poll(rk, 0);
        }
    }
    if (rd_kafka_flush(rk, FLUSH_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr,
                "akv-bench-gen: %d message(s) still queued after "
                "%d s\n",
                rd_kafka_outq_len(rk), FLUSH_MS / 1000);
        goto out;
    }
    secs = mono_s() - t0;
    if (dr.failed || dr.ok != o->events) {
        fprintf(stderr,
                "akv-bench-gen: %lld of %lld deliveries failed (first: %s)\n",
                dr.failed, o->events, rd_kafka_err2str(dr.first_err));
        goto out;
    }
    if (watermarks(rk, o->topic, nparts, low, high) < 0) {
        goto out;
    }

    printf("{\"topic\":\"%s\",\"partitions\":%d,\"events\":%lld,"
           "\"token_events\":%lld,\"tokens\":%zu,\"bytes\":%lld,"
           "\"seconds\":%.3f,\"first_ts_us\":%lld,\"last_ts_us\":%lld",
           o->topic, nparts, o->events, tok_done, ntokens, bytes, secs,
           first_us, last_us);
    print_offsets("low", low, nparts);
    print_offsets("high", high, nparts);
    printf(",\"kinds\":{");
    for (k = 0; k < NMIX; k++) {
        printf("%s\"%s\":%lld", k ? "," : "", mix[k].name, kinds[mix[k].kind]);
    }
    printf(",\"token\":%lld}}\n", kinds[NKINDS]);
    fflush(stdout);
    if (!o->quiet) {
        fprintf(stderr,
                "akv-bench-gen: %lld events (%lld token events), %lld bytes "
                "(%.0f per event) to %s (%d partitions) in %.2f s\n",
                o->events, tok_done, bytes,
                o->events ? (double)bytes / (double)o->events : 0.0, o->topic,
                nparts, secs);
    }
    if (verify_offsets(o->topic, nparts, low, high, before, o->events) < 0) {
        goto out;
    }
    rc = 0;

out:
    if (manifest && fclose(manifest) != 0) {
        fprintf(stderr, "akv-bench-gen: %s: %s\n", o->manifest,
                strerror(errno));
        rc = EXIT_FAIL;
    }
    if (rkt) {
        rd_kafka_topic_destroy(rkt);
    }
    if (rk) {
        rd_kafka_destroy(rk);
    }
    free(before);
    free(low);
    free(high);
    free(order);
    free(tokens);
    return rc;
}

/* ------------------------------------------------------------------------
 * check
 */

static int do_check(const struct options *o)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *list = NULL;
    int64_t *low = NULL;
    int64_t *high = NULL;
    int64_t *committed = NULL;
    long long total = 0;
    int nparts;
    int rc = EXIT_FAIL;
    int p;

    /* A consumer only so that it can ask for a group's committed offsets;
     * it never subscribes, so it never joins the group. */
    if ((o->group && (conf_set(conf, "group.id", o->group) ||
                      conf_set(conf, "enable.auto.commit", "false"))) ||
        conf_props(conf, o) < 0) {
        rd_kafka_conf_destroy(conf);
        return EXIT_FAIL;
    }
    rk = client_new(RD_KAFKA_CONSUMER, conf, o->brokers);
    if (!rk) {
        return EXIT_FAIL;
    }
    nparts = partition_count(rk, o->topic);
    if (nparts < 0) {
        goto out;
    }
    low = calloc((size_t)nparts, sizeof(*low));
    high = calloc((size_t)nparts, sizeof(*high));
    committed = calloc((size_t)nparts, sizeof(*committed));
    if (!low || !high || !committed) {
        fprintf(stderr, "akv-bench-gen: out of memory\n");
        goto out;
    }
    if (watermarks(rk, o->topic, nparts, low, high) < 0) {
        goto out;
    }
    for (p = 0; p < nparts; p++) {
        committed[p] = -1;
        total += high[p] - low[p];
    }
    if (o->group) {
        rd_kafka_resp_err_t err;

        list = rd_kafka_topic_partition_list_new(nparts);
        for (p = 0; p < nparts; p++) {
            rd_kafka_topic_partition_list_add(list, o->topic, p);
        }
        err = rd_kafka_committed(rk, list, TIMEOUT_MS);
        if (err) {
            fprintf(stderr, "akv-bench-gen: committed offsets of %s: %s\n",
                    o->group, rd_kafka_err2str(err));
            goto out;
        }
        for (p = 0; p < list->cnt; p++) {
            const rd_kafka_topic_partition_t *rktpar = &list->elems[p];

            if (rktpar->partition >= 0 && rktpar->partition < nparts &&
                !rktpar->err && rktpar->offset >= 0) {
                committed[rktpar->partition] = rktpar->offset;
            }
        }
    }
    printf("{\"topic\":\"%s\",\"partitions\":%d,\"records\":%lld", o->topic,
           nparts, total);
    print_offsets("low", low, nparts);
    print_offsets("high", high, nparts);
    if (o->group) {
        print_offsets("committed", committed, nparts);
    }
    printf("}\n");
    fflush(stdout);
    rc = 0;
    if (o->expect >= 0 &&
        verify_offsets(o->topic, nparts, low, high, NULL, o->expect) < 0) {
        rc = EXIT_FAIL;
    }

out:
    if (list) {
        rd_kafka_topic_partition_list_destroy(list);
    }
    if (rk) {
        rd_kafka_destroy(rk);
    }
    free(low);
    free(high);
    free(committed);
    return rc;
}

/* ------------------------------------------------------------------------
 * main
 */

static void usage(void)
{
    fprintf(stderr,
            "usage: akv-bench-gen produce --brokers B --topic T --events N\n"
            "                     [--token-events K | --token-ratio R]\n"
            "                     [--tokens-file FILE | --ghost-tokens N]\n"
            "                     [--manifest FILE] [--seed S] [--quiet]\n"
            "                     [-X librdkafka.property=value ...]\n"
            "       akv-bench-gen check --brokers B --topic T [--group G] "
            "[--expect N]\n");
}

static int parse_ll(const char *s, long long min, long long *out)
{
    char *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min) {
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"events", required_argument, NULL, 'n'},
        {"token-events", required_argument, NULL, 'k'},
        {"token-ratio", required_argument, NULL, 'r'},
        {"tokens-file", required_argument, NULL, 'f'},
        {"ghost-tokens", required_argument, NULL, 'g'},
        {"manifest", required_argument, NULL, 'm'},
        {"seed", required_argument, NULL, 's'},
        {"group", required_argument, NULL, 'G'},
        {"expect", required_argument, NULL, 'e'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct options o;
    long long seed = -1;
    int opt;

    memset(&o, 0, sizeof(o));
    o.events = -1;
    o.token_events = -1;
    o.token_ratio = DEFAULT_RATIO;
    o.expect = -1;
    if (argc < 2 ||
        (strcmp(argv[1], "produce") != 0 && strcmp(argv[1], "check") != 0)) {
        usage();
        return argc >= 2 && (strcmp(argv[1], "-h") == 0 ||
                             strcmp(argv[1], "--help") == 0)
                   ? 0
                   : EXIT_USAGE;
    }
    o.mode = argv[1];
    optind = 2;
    while ((opt = getopt_long(argc, argv, "X:", longopts, NULL)) != -1) {
        char *end = NULL;

        switch (opt) {
        case 'b':
            o.brokers = optarg;
            break;
        case 't':
            o.topic = optarg;
            break;
        case 'n':
            if (parse_ll(optarg, 0, &o.events) < 0) {
                goto bad;
            }
            break;
        case 'k':
            if (parse_ll(optarg, 0, &o.token_events) < 0) {
                goto bad;
            }
            break;
        case 'r':
            errno = 0;
            o.token_ratio = strtod(optarg, &end);
            if (errno || end == optarg || *end || o.token_ratio < 0 ||
                o.token_ratio > 1) {
                goto bad;
            }
            break;
        case 'f':
            o.tokens_file = optarg;
            break;
        case 'g':
            if (parse_ll(optarg, 1, &o.ghost_tokens) < 0) {
                goto bad;
            }
            break;
        case 'm':
            o.manifest = optarg;
            break;
        case 's':
            if (parse_ll(optarg, 0, &seed) < 0) {
                goto bad;
            }
            break;
        case 'G':
            o.group = optarg;
            break;
        case 'e':
            if (parse_ll(optarg, 0, &o.expect) < 0) {
                goto bad;
            }
            break;
        case 'q':
            o.quiet = 1;
            break;
        case 'X':
            if (o.nprops >= (int)(sizeof(o.props) / sizeof(o.props[0]))) {
                goto bad;
            }
            o.props[o.nprops++] = optarg;
            break;
        case 'h':
            usage();
            return 0;
        default:
            usage();
            return EXIT_USAGE;
        }
    }
    if (optind != argc || !o.brokers || !o.topic ||
        (strcmp(o.mode, "produce") == 0 && o.events < 0)) {
        usage();
        return EXIT_USAGE;
    }
    o.seed = seed >= 0 ? (unsigned long long)seed
                       : (unsigned long long)now_us() ^
                             ((unsigned long long)clock() << 32);
    rng_seed(o.seed);
    cast_init();
    if (strcmp(o.mode, "produce") == 0) {
        return do_produce(&o);
    }
    return do_check(&o);

bad:
    fprintf(stderr, "akv-bench-gen: bad option value: %s\n", optarg);
    return EXIT_USAGE;
}
