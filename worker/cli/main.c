/*
 * ak2vault — mirror authentik tokens into HashiCorp Vault.
 *
 * Command-line front end: parses arguments, loads the configuration and
 * runs a subcommand. Only this file exits, with <sysexits.h> codes.
 */
#include "config.h"
#include "consumer.h"
#include "httpd.h"
#include "lag.h"
#include "log.h"
#include "num.h"
#include "probe.h"
#include "reconcile.h"
#include "replay.h"
#include "settings.h"

#include <cJSON.h>
#include <ctype.h>
#include <curl/curl.h>
#include <getopt.h>
#include <libconfig.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#ifndef AKV_VERSION
#error "AKV_VERSION: the Makefile's VERSION, passed as -DAKV_VERSION"
#endif

static volatile sig_atomic_t run = 1;
static volatile sig_atomic_t reload;  /* SIGHUP */
static volatile sig_atomic_t louder;  /* SIGUSR1 */
static volatile sig_atomic_t quieter; /* SIGUSR2 */

/* SIGHUP re-reads the configuration; SIGUSR1 and SIGUSR2 move the log
 * level. The poll loop serves them on its next turn. */
static void on_other_signal(int sig)
{
    if (sig == SIGHUP) {
        reload = 1;
    } else if (sig == SIGUSR1) {
        louder = 1;
    } else {
        quieter = 1;
    }
}

/*
 * The first SIGTERM/SIGINT asks for a clean stop (finish what is in
 * flight, commit, leave the group). A second one exits at once: only
 * finished events were ever committed, so nothing is lost, the next
 * owner redoes what was in flight.
 */
static void on_signal(int sig)
{
    static const char msg[] = "ak2vault: second signal: exiting now without "
                              "a final commit; unfinished events are "
                              "redone by the next owner\n";

    if (!run) {
        ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);

        (void)n;
        _exit(128 + sig);
    }
    run = 0;
}

static int load(struct akv_settings *s, const char *path, int secrets)
{
    char errstr[1024];
    enum akv_log_level level = AKV_LOG_INFO;

    if ((secrets ? akv_settings_load(s, path, errstr, sizeof(errstr))
                 : akv_settings_load_kafka(s, path, errstr, sizeof(errstr))) !=
        AKV_OK) {
        fprintf(stderr, "ak2vault: %s\n", errstr);
        return EX_CONFIG;
    }
    akv_log_level_parse(s->log_level, &level);
    akv_log_set_level(level);
    akv_log_set_format(strcmp(s->log_format, "json") == 0 ? AKV_LOG_JSON
                                                          : AKV_LOG_TEXT);
    return EX_OK;
}

/* The settings SIGHUP changes in a running worker; any other change is
 * reported as needing a restart. */
static const char *const reloadable[] = {"log.level", "reconcile.interval_ms",
                                         "reconcile.max_requests_per_second",
                                         "reconcile.on_start", NULL};

struct reloading {
    const char *path;
    struct akv_settings *live;
    struct akv_settings *fresh;
};

static int is_reloadable(const char *name)
{
    const char *const *r;

    for (r = reloadable; *r; r++) {
        if (strcmp(*r, name) == 0) {
            return 1;
        }
    }
    return 0;
}

static void apply_change(void *ctx, const char *name, const char *was,
                         const char *now)
{
    struct reloading *r = ctx;
    enum akv_log_level level;
    char *swap;

    if (!is_reloadable(name)) {
        akv_log_warn("config",
                     "SIGHUP: %s changed (%s -> %s): takes a restart, "
                     "not applied",
                     name, was, now);
        return;
    }
    if (strcmp(name, "log.level") == 0) {
        swap = r->live->log_level;
        r->live->log_level = r->fresh->log_level;
        r->fresh->log_level = swap;
        if (akv_log_level_parse(r->live->log_level, &level) == 0) {
            akv_log_set_level(level);
        }
    } else if (strcmp(name, "reconcile.interval_ms") == 0) {
        r->live->reconcile_interval_ms = r->fresh->reconcile_interval_ms;
    } else if (strcmp(name, "reconcile.max_requests_per_second") == 0) {
        r->live->reconcile_max_requests_per_second =
            r->fresh->reconcile_max_requests_per_second;
    } else {
        r->live->reconcile_on_start = r->fresh->reconcile_on_start;
    }
    akv_log_write(AKV_LOG_INFO, "config", "SIGHUP: %s %s -> %s", name, was,
                  now);
}

/* SIGHUP, on the poll loop's thread: the file read again; what may
 * change is applied, the rest reported. A file that no longer loads
 * changes nothing. */
static void reload_settings(void *ctx)
{
    struct reloading *r = ctx;
    struct akv_settings fresh;
    char errstr[1024];
    int n;

    if (akv_settings_load(&fresh, r->path, errstr, sizeof(errstr)) != AKV_OK) {
        akv_log_error("config", "SIGHUP: %s; nothing changed", errstr);
        akv_settings_free(&fresh);
        return;
    }
    r->fresh = &fresh;
    n = akv_cfg_diff(akv_settings_schema, r->live, &fresh, apply_change, r);
    akv_log_write(AKV_LOG_INFO, "config", "SIGHUP: %s read again: %s", r->path,
                  n < 0    ? "out of memory"
                  : n == 0 ? "nothing changed"
                           : "done");
    r->fresh = NULL;
    akv_settings_free(&fresh);
}

/* SIGTERM and SIGINT stop the worker; SIGHUP, SIGUSR1 and SIGUSR2 are
 * served by the poll loop; a closed pipe is an error, not a death. */
static void install_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_other_signal;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGUSR2, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static int cmd_run(const char *path, int exit_at_end,
                   const struct akv_replay_opts *from)
{
    struct akv_settings s;
    struct akv_run_opts opts;
    struct reloading rl;
    struct akv_telemetry *tm;
    struct akv_httpd *httpd = NULL;
    char errstr[1024];
    akv_err_t err;
    int rc;

    rc = load(&s, path, 1);
    if (rc != EX_OK) {
        akv_settings_free(&s);
        return rc;
    }
    install_signals();

    memset(&opts, 0, sizeof(opts));
    opts.exit_at_end = exit_at_end;
    opts.reload = &reload;
    opts.louder = &louder;
    opts.quieter = &quieter;
    rl.path = path;
    rl.live = &s;
    rl.fresh = NULL;
    opts.reload_fn = reload_settings;
    opts.reload_ctx = &rl;
    akv_log_info("worker", "ak2vault %s starting (librdkafka %s, %s)",
                 AKV_VERSION, rd_kafka_version_str(),
                 curl_version_info(CURLVERSION_NOW)->version);
    akv_settings_warn_plain_http(&s);
    /* --from: commit where a fresh group starts, before joining it. */
    if (from->from &&
        akv_replay_start_from(&s, from, errstr, sizeof(errstr)) != AKV_OK) {
        akv_log_error("worker", "--from %s: %s", from->from_arg, errstr);
        akv_settings_free(&s);
        return EX_UNAVAILABLE;
    }
    tm = akv_telemetry_new(AKV_VERSION, rd_kafka_version_str(), errstr,
                           sizeof(errstr));
    if (!tm) {
        akv_log_error("worker", "%s", errstr);
        akv_settings_free(&s);
        return EX_OSERR;
    }
    if (s.metrics_listen && *s.metrics_listen) {
        httpd = akv_httpd_start(s.metrics_listen, tm, s.metrics_live_timeout_ms,
                                errstr, sizeof(errstr));
        if (!httpd) {
            akv_log_error("worker", "%s", errstr);
            akv_telemetry_free(tm);
            akv_settings_free(&s);
            return EX_UNAVAILABLE;
        }
        akv_log_info("http", "serving /metrics /livez /readyz on %s (port %u)",
                     s.metrics_listen, akv_httpd_port(httpd));
    }
    err = akv_consumer_run(&s, &opts, &run, tm, errstr, sizeof(errstr));
    if (err != AKV_OK) {
        akv_log_error("worker", "%s", errstr);
        /* A Kafka property librdkafka refuses is a configuration error. */
        rc = err == AKV_ERR_CONFIG ? EX_CONFIG : EX_SOFTWARE;
    }
    akv_httpd_stop(httpd);
    akv_telemetry_log_final(tm);
    akv_telemetry_free(tm);
    akv_settings_free(&s);
    return rc;
}

static int cmd_lag(const char *path, const char *group, const char *topic,
                   int json)
{
    struct akv_settings s;
    char errstr[1024];
    int rc = load(&s, path, 0);

    if (rc == EX_OK && akv_lag_report(&s, group, topic, json, stdout, errstr,
                                      sizeof(errstr)) != AKV_OK) {
        fprintf(stderr, "ak2vault: %s\n", errstr);
        rc = EX_UNAVAILABLE;
    }
    akv_settings_free(&s);
    return rc;
}

static int cmd_replay(const char *path, const struct akv_replay_opts *o,
                      const char *group, const char *topic, int json)
{
    struct akv_settings s;
    char errstr[1024];
    int refused = 0;
    akv_err_t err;
    int rc = load(&s, path, 0);

    if (rc == EX_OK) {
        err = akv_replay_run(&s, o, group, topic, json, stdout, &refused,
                             errstr, sizeof(errstr));
        if (err != AKV_OK) {
            fprintf(stderr, "ak2vault: %s\n", errstr);
            rc = refused                  ? EX_TEMPFAIL
                 : err == AKV_ERR_INVALID ? EX_USAGE
                 : err == AKV_ERR_CONFIG  ? EX_CONFIG
                 : err == AKV_ERR_IO      ? EX_CANTCREAT
                                          : EX_UNAVAILABLE;
        }
    }
    akv_settings_free(&s);
    return rc;
}

static int cmd_check_config(const char *path, int connect)
{
    struct akv_settings s;
    char errstr[1024];
    int rc = load(&s, path, 1);

    /* What librdkafka refuses, run refuses when it creates its consumer:
     * create that consumer here too. */
    if (rc == EX_OK &&
        akv_consumer_check(&s, errstr, sizeof(errstr)) != AKV_OK) {
        fprintf(stderr, "ak2vault: %s: %s\n", path, errstr);
        rc = EX_CONFIG;
    }
    if (rc == EX_OK) {
        akv_settings_warn_plain_http(&s);
        akv_settings_dump(&s, stdout);
        fprintf(stderr, "ak2vault: %s: configuration is valid\n", path);
    }
    if (rc == EX_OK && connect && akv_probe_run(&s, stdout) > 0) {
        rc = EX_UNAVAILABLE;
    }
    akv_settings_free(&s);
    return rc;
}

/* --- the command line ---------------------------------------------------- */

/* The options; each command takes some of them (struct command.opts). */
enum opt {
    OPT_CONFIG,
    OPT_EXIT_AT_END,
    OPT_GROUP,
    OPT_TOPIC,
    OPT_JSON,
    OPT_CONNECT,
    OPT_DRY_RUN,
    OPT_TIMEOUT,
    OPT_MODE, /* replay's --to-earliest ... --by-duration */
    OPT_PARTITIONS,
    OPT_EXECUTE,
    OPT_FROM,
    OPT_EXPORT,
    OPT_HELP,
    OPT_COUNT
};

#define BIT(o) (1u << (o))

/* What the command line asked for, besides the command. */
struct args {
    const char *config;
    int exit_at_end;
    const char *group;
    const char *topic;
    int json;
    int connect;
    struct akv_replay_opts replay;
    int dry_run;
    long long timeout_s;
    char **names; /* sync: the identifiers */
    int nnames;
    unsigned given;                 /* BIT(opt) of every option given */
    const char *spelled[OPT_COUNT]; /* its long name, for messages */
};

struct command {
    const char *name;
    const char *synopsis; /* after "ak2vault " */
    const char *summary;  /* one line */
    const char *details;  /* its options */
    const char *notes;    /* after them: exit statuses, signals */
    unsigned opts;        /* BIT(opt) of the options it takes */
    int kafka_only;       /* reads only the kafka settings: -c optional */
    int names;            /* takes identifiers after its options */
    int (*fn)(const struct args *a);
};

static int cmd_run_args(const struct args *a)
{
    return cmd_run(a->config, a->exit_at_end, &a->replay);
}

/* The configuration file of a command that may do without one. */
static const char *config_or_none(const struct args *a)
{
    return a->config && *a->config ? a->config : NULL;
}

static int cmd_lag_args(const struct args *a)
{
    return cmd_lag(config_or_none(a), a->group, a->topic, a->json);
}

static int cmd_replay_args(const struct args *a)
{
    return cmd_replay(config_or_none(a), &a->replay, a->group, a->topic,
                      a->json);
}

static int cmd_check_config_args(const struct args *a)
{
    return cmd_check_config(a->config, a->connect);
}

/* sync and reconcile. Exit 0: every token synced (or, dry, in sync);
 * 2: a dry run found drift; 69: a token could not be synced or checked in
 * time, or a list could not be read. */
static int cmd_sync(const struct args *a, int everything)
{
    struct akv_settings s;
    struct akv_resync_opts o;
    struct akv_resync_totals t;
    char errstr[1024];
    akv_err_t err;
    int rc = load(&s, a->config, 1);

    memset(&o, 0, sizeof(o));
    o.dry_run = a->dry_run;
    o.json = a->json;
    o.timeout_ms = (a->timeout_s ? a->timeout_s : 120) * 1000;
    if (rc == EX_OK) {
        err = everything
                  ? akv_reconcile(&s, &o, stdout, &t, errstr, sizeof(errstr))
                  : akv_resync(&s, (const char *const *)a->names,
                               (size_t)a->nnames, &o, stdout, &t, errstr,
                               sizeof(errstr));
        if (err != AKV_OK) {
            fprintf(stderr, "ak2vault: %s\n", errstr);
            rc = err == AKV_ERR_INVALID     ? EX_USAGE
                 : err == AKV_ERR_CONFIG    ? EX_CONFIG
                 : err == AKV_ERR_TRANSPORT ? EX_UNAVAILABLE
                                            : EX_SOFTWARE;
        } else if (t.failed > 0) {
            rc = EX_UNAVAILABLE;
        } else if (a->dry_run && t.drift > 0) {
            rc = 2;
        }
    }
    akv_settings_free(&s);
    return rc;
}

static int cmd_sync_args(const struct args *a)
{
    return cmd_sync(a, 0);
}

static int cmd_reconcile_args(const struct args *a)
{
    return cmd_sync(a, 1);
}

static int cmd_version(const struct args *a);
static int cmd_config_reference(const struct args *a);

#define CONFIG_HELP                                                            \
    "  -c, --config FILE   the configuration (libconfig; default: "            \
    "$AK2VAULT_CONFIG)\n"
#define JSON_HELP "  -j, --json          one JSON document instead of a table\n"
#define KAFKA_ONLY_HELP                                                        \
    "Only the kafka settings are read (and checked); without -c they come "    \
    "from the\nenvironment alone (KAFKA_BROKERS, KAFKA_TOPIC, KAFKA_GROUP, "   \
    "...).\n"

/* clang-format off */
static const struct command commands[] = {
    {"run", "run -c FILE [--exit-at-end] [--from WHERE]",
     "consume authentik events and sync tokens to Vault",
     CONFIG_HELP
     "  -e, --exit-at-end   stop once every assigned partition is consumed "
     "(and a\n"
     "                      reconcile that is due has run)\n"
     "      --from WHERE    where partitions without a committed offset "
     "start:\n"
     "                      earliest, latest or DATETIME (ignored while the "
     "group\n"
     "                      has members)\n"
     ,
     "Signals: SIGTERM/SIGINT stop cleanly (a second one at once).\n"
     "Exit status: 0, 78 configuration error, 69 a service unreachable at "
     "start.\n",
     BIT(OPT_CONFIG) | BIT(OPT_EXIT_AT_END) | BIT(OPT_FROM), 0, 0,
     cmd_run_args},
    {"check-config", "check-config -c FILE [--connect]",
     "validate the configuration and print it (secrets masked)",
     CONFIG_HELP
     "      --connect       also check that Kafka, Vault and authentik "
     "answer with\n"
     "                      the configured credentials\n",
     "Exit status: 0 valid, 78 invalid, 69 (--connect) a check failed.\n",
     BIT(OPT_CONFIG) | BIT(OPT_CONNECT), 0, 0, cmd_check_config_args},
    {"lag", "lag [-c FILE] [--group G] [--topic T] [--json]",
     "per partition: committed and end offset, lag in offsets and seconds, "
     "member",
     CONFIG_HELP
     "  -g, --group G       the consumer group (default: kafka.group)\n"
     "  -t, --topic T       the topic (default: kafka.topic)\n"
     JSON_HELP, KAFKA_ONLY_HELP,
     BIT(OPT_CONFIG) | BIT(OPT_GROUP) | BIT(OPT_TOPIC) | BIT(OPT_JSON), 1, 0,
     cmd_lag_args},
    {"replay", "replay [-c FILE] MODE [--partitions LIST] [--execute] "
     "[--export FILE] "
     "[--group G] [--topic T] [--json]",
     "move the group's committed offsets (a dry run unless --execute)",
     CONFIG_HELP
     "  MODE, exactly one of:\n"
     "      --to-earliest, --to-latest, --to-offset N, --shift-by N\n"
     "      --to-datetime DATETIME  the first message at or after it, e.g.\n"
     "                      2026-11-28T10:00:00Z, "
     "2026-11-28T11:00:00.250+01:00\n"
     "      --by-duration DURATION  the same, DURATION before now: "
     "PnDTnHnMnS\n"
     "                      (P1DT2H, PT15M) or 90s, 15m, 2h, 1d, 1h30m\n"
     "      --to-current    where the group is now (with --export: save "
     "it)\n"
     "      --from-file FILE  the offsets in FILE (topic,partition,offset "
     "lines, as\n"
     "                      --export and kafka-consumer-groups --export "
     "write them);\n"
     "                      only the partitions it names\n"
     "      --partitions LIST  only these, e.g. 0,2,5-7\n"
     "      --execute       commit the new offsets (refused, status 75, "
     "while the\n"
     "                      group has active members)\n"
     "      --export FILE   also write the new offsets to FILE, one "
     "line each:\n"
     "                      topic,partition,offset\n"
     "  -g, --group G       the consumer group (default: kafka.group)\n"
     "  -t, --topic T       the topic (default: kafka.topic)\n"
     JSON_HELP, KAFKA_ONLY_HELP,
     BIT(OPT_CONFIG) | BIT(OPT_MODE) | BIT(OPT_PARTITIONS) | BIT(OPT_EXECUTE) |
         BIT(OPT_EXPORT) | BIT(OPT_GROUP) | BIT(OPT_TOPIC) | BIT(OPT_JSON),
     1, 0, cmd_replay_args},
    {"reconcile", "reconcile -c FILE [--dry-run] [--json] [--timeout S]",
     "bring Vault to authentik's state: every token, every secret under "
     "the prefix",
     CONFIG_HELP
     "      --dry-run       say what differs, change nothing\n"
     JSON_HELP
     "      --timeout S     give up on what is unfinished after S seconds "
     "(120)\n",
     "Exit status: 0 done (dry run: no drift), 2 a dry run found drift, "
     "69 a token\n"
     "or a list could not be read in time.\n",
     BIT(OPT_CONFIG) | BIT(OPT_DRY_RUN) | BIT(OPT_JSON) | BIT(OPT_TIMEOUT), 0,
     0, cmd_reconcile_args},
    {"sync", "sync -c FILE [--dry-run] [--json] [--timeout S] IDENTIFIER...",
     "sync the named tokens now, as an event would",
     CONFIG_HELP
     "      --dry-run       say what differs, change nothing\n"
     JSON_HELP
     "      --timeout S     give up on what is unfinished after S seconds "
     "(120)\n",
     "Exit status: as for reconcile; 64 for a name that is not a token "
     "identifier.\n",
     BIT(OPT_CONFIG) | BIT(OPT_DRY_RUN) | BIT(OPT_JSON) | BIT(OPT_TIMEOUT), 0,
     1, cmd_sync_args},
    {"config-reference", "config-reference",
     "describe every setting (Markdown table)", "", "", 0, 0, 0,
     cmd_config_reference},
    {"version", "version", "print the version and the libraries' versions",
     "", "", 0, 0, 0, cmd_version},
};
/* clang-format on */

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find_command(const char *name)
{
    size_t i;

    for (i = 0; i < NCOMMANDS; i++) {
        if (strcmp(commands[i].name, name) == 0) {
            return &commands[i];
        }
    }
    return NULL;
}

static void usage(FILE *fp)
{
    size_t i;

    fprintf(fp, "Usage: ak2vault COMMAND [options]\n\nCommands:\n");
    for (i = 0; i < NCOMMANDS; i++) {
        fprintf(fp, "  %-17s %s\n", commands[i].name, commands[i].summary);
    }
    fprintf(fp, "\n'ak2vault COMMAND --help' shows a command's options; "
                "'ak2vault --version'\nthe version.\n");
}

static void command_usage(const struct command *c, FILE *fp)
{
    fprintf(fp, "Usage: ak2vault %s\n\n%c%s.\n\n%s", c->synopsis,
            toupper((unsigned char)c->summary[0]), c->summary + 1, c->details);
    fprintf(fp, "  -h, --help          this help\n");
    if (c->notes[0]) {
        fprintf(fp, "\n%s", c->notes);
    }
}

static int cmd_version(const struct args *a)
{
    const curl_version_info_data *curl = curl_version_info(CURLVERSION_NOW);

    (void)a;
    printf("ak2vault %s\n", AKV_VERSION);
    printf("librdkafka %s\n", rd_kafka_version_str());
    printf("libcurl %s (%s)\n", curl->version,
           curl->ssl_version ? curl->ssl_version : "no TLS");
    printf("cJSON %s\n", cJSON_Version());
    printf("libconfig %d.%d.%d\n", LIBCONFIG_VER_MAJOR, LIBCONFIG_VER_MINOR,
           LIBCONFIG_VER_REVISION);
    printf("libmicrohttpd %s\n", MHD_get_version());
    return EX_OK;
}

static int cmd_config_reference(const struct args *a)
{
    (void)a;
    akv_cfg_describe(akv_settings_schema, stdout);
    return EX_OK;
}

/* --timeout's whole seconds. @returns 0, or -1 (reported). */
static int seconds_opt(const char *arg, long long *out)
{
    long v;

    if (akv_parse_long(arg, 1, 86400, &v) < 0) {
        fprintf(stderr, "ak2vault: --timeout takes whole seconds, 1 to "
                        "86400\n");
        return -1;
    }
    *out = v;
    return 0;
}

/* getopt's table; `val` is enum opt. */
static const struct option long_opts[] = {
    {"config", required_argument, NULL, OPT_CONFIG},
    {"exit-at-end", no_argument, NULL, OPT_EXIT_AT_END},
    {"group", required_argument, NULL, OPT_GROUP},
    {"topic", required_argument, NULL, OPT_TOPIC},
    {"json", no_argument, NULL, OPT_JSON},
    {"help", no_argument, NULL, OPT_HELP},
    {"connect", no_argument, NULL, OPT_CONNECT},
    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    /* replay and run --from: akv_replay_opt() takes them by name */
    {"to-earliest", no_argument, NULL, OPT_MODE},
    {"to-latest", no_argument, NULL, OPT_MODE},
    {"to-offset", required_argument, NULL, OPT_MODE},
    {"shift-by", required_argument, NULL, OPT_MODE},
    {"to-datetime", required_argument, NULL, OPT_MODE},
    {"to-current", no_argument, NULL, OPT_MODE},
    {"from-file", required_argument, NULL, OPT_MODE},
    {"export", required_argument, NULL, OPT_EXPORT},
    {"by-duration", required_argument, NULL, OPT_MODE},
    {"partitions", required_argument, NULL, OPT_PARTITIONS},
    {"execute", no_argument, NULL, OPT_EXECUTE},
    {"from", required_argument, NULL, OPT_FROM},
    {NULL, 0, NULL, 0},
};

/* The short options and the enum opt each stands for. */
static int short_opt(int c)
{
    switch (c) {
    case 'c':
        return OPT_CONFIG;
    case 'e':
        return OPT_EXIT_AT_END;
    case 'g':
        return OPT_GROUP;
    case 't':
        return OPT_TOPIC;
    case 'j':
        return OPT_JSON;
    case 'h':
        return OPT_HELP;
    default:
        return c;
    }
}

/* The long name of an option given in its short form. */
static const char *long_name(int opt)
{
    const struct option *o;

    for (o = long_opts; o->name; o++) {
        if (o->val == opt) {
            return o->name;
        }
    }
    return "?";
}

/* Takes one option's value. @returns 0, or the exit status (reported). */
static int take(struct args *a, int opt, const char *name)
{
    char errstr[512];

    switch (opt) {
    case OPT_CONFIG:
        a->config = optarg;
        break;
    case OPT_EXIT_AT_END:
        a->exit_at_end = 1;
        break;
    case OPT_GROUP:
        a->group = optarg;
        break;
    case OPT_TOPIC:
        a->topic = optarg;
        break;
    case OPT_JSON:
        a->json = 1;
        break;
    case OPT_CONNECT:
        a->connect = 1;
        break;
    case OPT_DRY_RUN:
        a->dry_run = 1;
        break;
    case OPT_TIMEOUT:
        return seconds_opt(optarg, &a->timeout_s) < 0 ? EX_USAGE : 0;
    case OPT_MODE:
    case OPT_PARTITIONS:
    case OPT_EXECUTE:
    case OPT_FROM:
    case OPT_EXPORT:
        if (akv_replay_opt(&a->replay, name, optarg, errstr, sizeof(errstr)) !=
            AKV_OK) {
            fprintf(stderr, "ak2vault: %s\n", errstr);
            return EX_USAGE;
        }
        break;
    default:
        break;
    }
    return 0;
}

/* The options after the command. @returns -1 to go on, or the exit status
 * (--help, or a usage error already reported). */
static int parse_args(int argc, char **argv, const struct command *c,
                      struct args *a)
{
    int idx = -1;
    int opt;
    int rc;

    optind = 2;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, ":c:eg:t:jh", long_opts, &idx)) !=
           -1) {
        const char *name = idx >= 0 ? long_opts[idx].name : NULL;

        opt = short_opt(opt);
        if (opt == '?' || opt == ':') {
            fprintf(stderr, "ak2vault %s: %s '%s' (see ak2vault %s --help)\n",
                    c->name,
                    opt == ':' ? "missing value for" : "unknown option",
                    argv[optind - 1], c->name);
            return EX_USAGE;
        }
        if (opt == OPT_HELP) {
            command_usage(c, stdout);
            return EX_OK;
        }
        a->given |= BIT(opt);
        a->spelled[opt] = name ? name : long_name(opt);
        rc = take(a, opt, name);
        if (rc) {
            return rc;
        }
        idx = -1;
    }
    if (optind < argc && c->names) {
        a->names = argv + optind;
        a->nnames = argc - optind;
    } else if (optind < argc) {
        fprintf(stderr, "ak2vault %s: unexpected argument '%s'\n", c->name,
                argv[optind]);
        return EX_USAGE;
    }
    return -1;
}

/* The checks before a command runs. @returns -1 to go on, or the exit
 * status. */
static int check_command(const struct command *c, const struct args *a)
{
    unsigned extra = a->given & ~c->opts;
    char errstr[512];
    int o;

    for (o = 0; extra && o < OPT_COUNT; o++) {
        if (extra & BIT(o)) {
            fprintf(stderr,
                    "ak2vault %s: --%s does not apply to %s (see ak2vault "
                    "%s --help)\n",
                    c->name, a->spelled[o], c->name, c->name);
            return EX_USAGE;
        }
    }
    if (!(c->opts & BIT(OPT_CONFIG))) {
        return -1;
    }
    if (akv_replay_check(&a->replay, c->name, errstr, sizeof(errstr)) !=
        AKV_OK) {
        fprintf(stderr, "ak2vault: %s\n", errstr);
        return EX_USAGE;
    }
    if ((!a->config || !*a->config) && !c->kafka_only) {
        fprintf(stderr, "ak2vault: %s needs -c FILE (or AK2VAULT_CONFIG)\n",
                c->name);
        return EX_USAGE;
    }
    if (c->names && a->nnames == 0) {
        fprintf(stderr, "ak2vault: %s needs at least one token identifier\n",
                c->name);
        return EX_USAGE;
    }
    return -1;
}

int main(int argc, char **argv)
{
    const struct command *c;
    struct args a;
    int rc;

    memset(&a, 0, sizeof(a));
    a.config = getenv("AK2VAULT_CONFIG");
    if (argc < 2) {
        usage(stderr);
        return EX_USAGE;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        c = argc > 2 ? find_command(argv[2]) : NULL;
        if (argc > 2 && !c) {
            fprintf(stderr, "ak2vault: unknown command '%s'\n", argv[2]);
            usage(stderr);
            return EX_USAGE;
        }
        if (c) {
            command_usage(c, stdout);
        } else {
            usage(stdout);
        }
        return EX_OK;
    }
    if (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0) {
        return cmd_version(&a);
    }
    c = find_command(argv[1]);
    if (!c) {
        fprintf(stderr, "ak2vault: unknown command '%s'\n", argv[1]);
        usage(stderr);
        return EX_USAGE;
    }
    rc = parse_args(argc, argv, c, &a);
    if (rc < 0) {
        rc = check_command(c, &a);
    }
    if (rc >= 0) {
        return rc;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = c->fn(&a);
    akv_log_secret_clear();
    curl_global_cleanup();
    return rc;
}
