/*
 * mock-kafka — librdkafka's in-process mock cluster run as a stand-alone
 * process, so the worker, fake-authentik and kcat can all talk to the same
 * throw-away "Kafka" over loopback TCP.
 *
 *   mock-kafka [--brokers N] --topic NAME[:PARTITIONS] [--topic ...]
 *
 * The bootstrap list is the first stdout line; the process then runs until
 * SIGTERM or SIGINT and exits 0. Bad arguments exit 64 (EX_USAGE).
 *
 * The mock keeps only about 5 MiB per partition (older messages are dropped)
 * and stores everything in memory; it is meant for tests, not soak runs.
 */
#include "num.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#define EXIT_USAGE      64
#define MAX_BROKERS     16
#define MAX_PARTITIONS  1000
#define MAX_TOPIC_LEN   249
#define DEFAULT_BROKERS 1

struct topic_spec {
    char name[MAX_TOPIC_LEN + 1];
    int partitions;
};

struct options {
    int brokers;
    struct topic_spec *topics;
    int ntopics;
};

static void usage(void)
{
    fprintf(stderr, "usage: mock-kafka [--brokers N] --topic NAME[:PARTITIONS] "
                    "[--topic ...]\n");
}

/* Kafka's own rule for topic names; rejecting bad ones here gives a clear
 * message instead of a mock that silently refuses the topic. */
static int topic_name_ok(const char *name, size_t len)
{
    size_t i;

    if (len == 0 || len > MAX_TOPIC_LEN) {
        return 0;
    }
    if ((len == 1 && name[0] == '.') ||
        (len == 2 && name[0] == '.' && name[1] == '.')) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-')) {
            return 0;
        }
    }
    return 1;
}

static int parse_int(const char *s, int min, int max, int *out)
{
    long v;

    if (akv_parse_long(s, min, max, &v) < 0) {
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_topic(const char *arg, struct topic_spec *spec)
{
    const char *colon = strrchr(arg, ':');
    size_t len = colon ? (size_t)(colon - arg) : strlen(arg);

    if (!topic_name_ok(arg, len)) {
        fprintf(stderr, "mock-kafka: invalid topic name in \"%s\"\n", arg);
        return -1;
    }
    memcpy(spec->name, arg, len);
    spec->name[len] = '\0';
    spec->partitions = 1;
    if (colon &&
        parse_int(colon + 1, 1, MAX_PARTITIONS, &spec->partitions) < 0) {
        fprintf(stderr,
                "mock-kafka: invalid partition count in \"%s\" "
                "(1..%d)\n",
                arg, MAX_PARTITIONS);
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, struct options *opt)
{
    int i;

    opt->brokers = DEFAULT_BROKERS;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "mock-kafka: unknown or incomplete option %s\n", a);
            usage();
            return -1;
        }
        if (strcmp(a, "--brokers") == 0) {
            if (parse_int(argv[++i], 1, MAX_BROKERS, &opt->brokers) < 0) {
                fprintf(stderr, "mock-kafka: --brokers wants 1..%d\n",
                        MAX_BROKERS);
                return -1;
            }
        } else if (strcmp(a, "--topic") == 0) {
            struct topic_spec *t;

            t = realloc(opt->topics, sizeof(*t) * (size_t)(opt->ntopics + 1));
            if (!t) {
                fprintf(stderr, "mock-kafka: out of memory\n");
                return -1;
            }
            opt->topics = t;
            if (parse_topic(argv[++i], &opt->topics[opt->ntopics]) < 0) {
                return -1;
            }
            opt->ntopics++;
        } else {
            fprintf(stderr, "mock-kafka: unknown option %s\n", a);
            usage();
            return -1;
        }
    }
    return 0;
}

/* Only errors reach stderr: the test harness keeps every process's log and
 * the mock's own chatter about client connections is noise there. */
static void log_cb(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
    (void)rk;
    if (level <= 3) {
        fprintf(stderr, "mock-kafka: %s: %s\n", fac, buf);
    }
}

int main(int argc, char **argv)
{
    struct options opt = {0};
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk = NULL;
    rd_kafka_mock_cluster_t *mcluster = NULL;
    char errstr[512];
    sigset_t set;
    int sig = 0;
    int i;
    int rc = 1;

    /* Block the signals before librdkafka starts its threads so they all
     * inherit the mask and sigwait() below is the only taker. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    if (parse_args(argc, argv, &opt) < 0) {
        free(opt.topics);
        return EXIT_USAGE;
    }
    if (opt.ntopics == 0) {
        fprintf(stderr, "mock-kafka: at least one --topic is required\n");
        usage();
        return EXIT_USAGE;
    }

    /* The mock cluster needs a client instance to hang off; a producer with
     * no bootstrap servers never connects anywhere itself. */
    conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, log_cb);
    if (rd_kafka_conf_set(conf, "log_level", "3", errstr, sizeof(errstr)) !=
        RD_KAFKA_CONF_OK) {
        fprintf(stderr, "mock-kafka: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "mock-kafka: cannot create client: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        goto out;
    }
    mcluster = rd_kafka_mock_cluster_new(rk, opt.brokers);
    if (!mcluster) {
        fprintf(stderr, "mock-kafka: cannot create the mock cluster\n");
        goto out;
    }
    for (i = 0; i < opt.ntopics; i++) {
        rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(
            mcluster, opt.topics[i].name, opt.topics[i].partitions, 1);

        if (err) {
            fprintf(stderr, "mock-kafka: cannot create topic %s: %s\n",
                    opt.topics[i].name, rd_kafka_err2str(err));
            goto out;
        }
    }

    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
    fflush(stdout);

    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigwait(&set, &sig);
    rc = 0;

out:
    if (mcluster) {
        rd_kafka_mock_cluster_destroy(mcluster);
    }
    if (rk) {
        rd_kafka_destroy(rk);
    }
    free(opt.topics);
    return rc;
}
