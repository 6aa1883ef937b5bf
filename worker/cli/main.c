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

#include <curl/curl.h>
#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#ifndef AKV_VERSION
#define AKV_VERSION "0.1.0"
#endif

static volatile sig_atomic_t run = 1;

/* Long options without a short form. */
enum { OPT_CONNECT = 256, OPT_REPLAY, OPT_DRY_RUN, OPT_TIMEOUT };

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

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: ak2vault <command> [options]\n"
            "\n"
            "Commands:\n"
            "  run -c FILE [--exit-at-end] [--from earliest|latest|DATETIME]\n"
            "                                consume authentik events and "
            "sync tokens to Vault\n"
            "  check-config -c FILE [--connect]\n"
            "                                validate the configuration and "
            "print it (secrets masked)\n"
            "  lag -c FILE [--group G] [--topic T] [--json]\n"
            "                                per partition: committed and end "
            "offset, lag in\n"
            "                                offsets and seconds, member\n"
            "  replay -c FILE MODE [--partitions LIST] [--execute] [--group G]"
            "\n"
            "         [--topic T] [--json]   move the group's committed "
            "offsets (a dry run\n"
            "                                unless --execute)\n"
            "  reconcile -c FILE [--dry-run] [--json] [--timeout S]\n"
            "                                bring Vault to authentik's "
            "state: every token,\n"
            "                                every secret under the prefix "
            "(exit 2: a dry\n"
            "                                run found drift)\n"
            "  sync -c FILE [--dry-run] [--json] [--timeout S] IDENTIFIER...\n"
            "                                sync the named tokens now, as "
            "an event would\n"
            "                                (a dry run writes nothing; "
            "exit 2: drift found)\n"
            "  config-reference              describe every setting\n"
            "  version                       print the version\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE   configuration file (libconfig)\n"
            "  -e, --exit-at-end   stop once every assigned partition is "
            "consumed\n"
            "  -g, --group G       lag, replay: the consumer group (default: "
            "kafka.group)\n"
            "  -t, --topic T       lag, replay: the topic (default: "
            "kafka.topic)\n"
            "  -j, --json          lag, replay, sync: JSON instead of a "
            "table\n"
            "      --dry-run       sync, reconcile: say what differs, change "
            "nothing\n"
            "      --timeout S     sync, reconcile: give up on what is "
            "unfinished after S\n"
            "                      seconds\n"
            "                      (default 120)\n"
            "      --from WHERE    run: where partitions without a committed "
            "offset start\n"
            "                      (earliest, latest or DATETIME; ignored "
            "while the group\n"
            "                      has members)\n"
            "      --connect       check-config: also check that Kafka, "
            "Vault and\n"
            "                      authentik answer with the configured "
            "credentials\n"
            "                      (exit status 69 when one does not)\n"
            "  replay MODE, exactly one of:\n"
            "      --to-earliest, --to-latest, --to-offset N, --shift-by N\n"
            "      --to-datetime DATETIME  the first message at or after it, "
            "e.g.\n"
            "                      2026-11-28T10:00:00Z, "
            "2026-11-28T11:00:00.250+01:00\n"
            "      --by-duration DURATION  the same, DURATION before now: "
            "PnDTnHnMnS\n"
            "                      (P1DT2H, PT15M) or 90s, 15m, 2h, 1d, "
            "1h30m\n"
            "      --partitions LIST  replay: only these, e.g. 0,2,5-7\n"
            "      --execute       replay: commit the new offsets (refused, "
            "status 75,\n"
            "                      while the group has active members)\n"
            "  -h, --help          this help\n");
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

static int cmd_run(const char *path, int exit_at_end,
                   const struct akv_replay_opts *from)
{
    struct akv_settings s;
    struct akv_run_opts opts;
    struct akv_telemetry *tm;
    struct akv_httpd *httpd = NULL;
    struct sigaction sa;
    char errstr[1024];
    akv_err_t err;
    int rc;

    rc = load(&s, path, 1);
    if (rc != EX_OK) {
        akv_settings_free(&s);
        return rc;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    memset(&opts, 0, sizeof(opts));
    opts.exit_at_end = exit_at_end;
    akv_log_info("worker", "ak2vault %s starting (librdkafka %s, %s)",
                 AKV_VERSION, rd_kafka_version_str(),
                 curl_version_info(CURLVERSION_NOW)->version);
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
                                          : EX_UNAVAILABLE;
        }
    }
    akv_settings_free(&s);
    return rc;
}

static int cmd_check_config(const char *path, int connect)
{
    struct akv_settings s;
    int rc = load(&s, path, 1);

    if (rc == EX_OK) {
        akv_settings_dump(&s, stdout);
        fprintf(stderr, "ak2vault: %s: configuration is valid\n", path);
    }
    if (rc == EX_OK && connect && akv_probe_run(&s, stdout) > 0) {
        rc = EX_UNAVAILABLE;
    }
    akv_settings_free(&s);
    return rc;
}

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
};

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

/* The options after the command. @returns -1 to go on, or the exit status
 * (--help, or a usage error already reported). */
static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option long_opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"exit-at-end", no_argument, NULL, 'e'},
        {"group", required_argument, NULL, 'g'},
        {"topic", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"connect", no_argument, NULL, OPT_CONNECT},
        {"dry-run", no_argument, NULL, OPT_DRY_RUN},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        /* replay and run --from: akv_replay_opt() takes them by name */
        {"to-earliest", no_argument, NULL, OPT_REPLAY},
        {"to-latest", no_argument, NULL, OPT_REPLAY},
        {"to-offset", required_argument, NULL, OPT_REPLAY},
        {"shift-by", required_argument, NULL, OPT_REPLAY},
        {"to-datetime", required_argument, NULL, OPT_REPLAY},
        {"by-duration", required_argument, NULL, OPT_REPLAY},
        {"partitions", required_argument, NULL, OPT_REPLAY},
        {"execute", no_argument, NULL, OPT_REPLAY},
        {"from", required_argument, NULL, OPT_REPLAY},
        {NULL, 0, NULL, 0},
    };
    char errstr[512];
    int idx = 0;
    int opt;

    optind = 2;
    while ((opt = getopt_long(argc, argv, "c:eg:t:jh", long_opts, &idx)) !=
           -1) {
        switch (opt) {
        case 'c':
            a->config = optarg;
            break;
        case 'e':
            a->exit_at_end = 1;
            break;
        case 'g':
            a->group = optarg;
            break;
        case 't':
            a->topic = optarg;
            break;
        case 'j':
            a->json = 1;
            break;
        case OPT_CONNECT:
            a->connect = 1;
            break;
        case OPT_DRY_RUN:
            a->dry_run = 1;
            break;
        case OPT_TIMEOUT:
            if (seconds_opt(optarg, &a->timeout_s) < 0) {
                return EX_USAGE;
            }
            break;
        case OPT_REPLAY:
            if (akv_replay_opt(&a->replay, long_opts[idx].name, optarg, errstr,
                               sizeof(errstr)) != AKV_OK) {
                fprintf(stderr, "ak2vault: %s\n", errstr);
                return EX_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return EX_OK;
        default:
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind < argc && strcmp(argv[1], "sync") == 0) {
        a->names = argv + optind;
        a->nnames = argc - optind;
    } else if (optind < argc) {
        fprintf(stderr, "ak2vault: unexpected argument '%s'\n", argv[optind]);
        return EX_USAGE;
    }
    return -1;
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

/* The commands that need no configuration, and the checks before one that
 * does. @returns -1 to go on, or the exit status. */
static int check_command(const char *cmd, const struct args *a)
{
    char errstr[512];

    if (strcmp(cmd, "version") == 0) {
        printf("ak2vault %s\n", AKV_VERSION);
        return EX_OK;
    }
    if (strcmp(cmd, "config-reference") == 0) {
        akv_cfg_describe(akv_settings_schema, stdout);
        return EX_OK;
    }
    if (strcmp(cmd, "run") != 0 && strcmp(cmd, "check-config") != 0 &&
        strcmp(cmd, "lag") != 0 && strcmp(cmd, "replay") != 0 &&
        strcmp(cmd, "sync") != 0 && strcmp(cmd, "reconcile") != 0) {
        fprintf(stderr, "ak2vault: unknown command '%s'\n", cmd);
        usage(stderr);
        return EX_USAGE;
    }
    if (akv_replay_check(&a->replay, cmd, errstr, sizeof(errstr)) != AKV_OK) {
        fprintf(stderr, "ak2vault: %s\n", errstr);
        return EX_USAGE;
    }
    if (!a->config || !*a->config) {
        fprintf(stderr, "ak2vault: %s needs -c FILE\n", cmd);
        return EX_USAGE;
    }
    if (strcmp(cmd, "sync") == 0 && a->nnames == 0) {
        fprintf(stderr, "ak2vault: sync needs at least one token "
                        "identifier\n");
        return EX_USAGE;
    }
    return -1;
}

static int run_command(const char *cmd, const struct args *a)
{
    if (strcmp(cmd, "run") == 0) {
        return cmd_run(a->config, a->exit_at_end, &a->replay);
    }
    if (strcmp(cmd, "lag") == 0) {
        return cmd_lag(a->config, a->group, a->topic, a->json);
    }
    if (strcmp(cmd, "replay") == 0) {
        return cmd_replay(a->config, &a->replay, a->group, a->topic, a->json);
    }
    if (strcmp(cmd, "sync") == 0 || strcmp(cmd, "reconcile") == 0) {
        return cmd_sync(a, strcmp(cmd, "reconcile") == 0);
    }
    return cmd_check_config(a->config, a->connect);
}

int main(int argc, char **argv)
{
    struct args a;
    const char *cmd;
    int rc;

    memset(&a, 0, sizeof(a));
    a.config = getenv("AK2VAULT_CONFIG");
    if (argc < 2) {
        usage(stderr);
        return EX_USAGE;
    }
    cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 ||
        strcmp(cmd, "help") == 0) {
        usage(stdout);
        return EX_OK;
    }
    rc = parse_args(argc, argv, &a);
    if (rc < 0) {
        rc = check_command(cmd, &a);
    }
    if (rc >= 0) {
        return rc;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = run_command(cmd, &a);
    akv_log_secret_clear();
    curl_global_cleanup();
    return rc;
}
