/*
 * akv-produce — produces records with chosen timestamps, which kcat 1.7
 * cannot: the timestamp tests of lag and replay need messages of a known
 * age.
 *
 *   akv-produce --brokers B --topic T < records
 *
 * Each input line is PARTITION<TAB>TIMESTAMP_MS<TAB>KEY<TAB>VALUE (an empty
 * KEY sends none; TIMESTAMP_MS 0 stands for the current time).
 * After every record was acknowledged, prints one line per record, in
 * input order: "PARTITION OFFSET TIMESTAMP_MS". Exit 0, 1 on a Kafka error
 * or a failed delivery, 64 on bad usage or input.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define EXIT_FAIL  1
#define EXIT_USAGE 64
#define LINE_MAX_  65536
#define FLUSH_MS   30000

struct record {
    int32_t partition;
    int64_t offset;
    int64_t timestamp;
    int err;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *rkm,
                        void *opaque)
{
    struct record *r = rkm->_private;

    (void)rk;
    (void)opaque;
    r->err = rkm->err;
    r->offset = rkm->offset;
    r->partition = rkm->partition;
}

static int parse_i64(const char *s, long long min, long long *out)
{
    char *end = NULL;

    errno = 0;
    *out = strtoll(s, &end, 10);
    return errno || end == s || *end || *out < min ? -1 : 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    const char *brokers = NULL;
    const char *topic = NULL;
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    struct record *recs = NULL;
    char **lines = NULL;
    size_t n = 0;
    size_t cap = 0;
    char *line;
    char errstr[512];
    int rc = 0;
    int opt;
    size_t i;

    while ((opt = getopt_long(argc, argv, "b:t:", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b':
            brokers = optarg;
            break;
        case 't':
            topic = optarg;
            break;
        default:
            return EXIT_USAGE;
        }
    }
    if (!brokers || !topic || optind < argc) {
        fprintf(stderr, "usage: akv-produce --brokers B --topic T < "
                        "PARTITION<TAB>TIMESTAMP_MS<TAB>KEY<TAB>VALUE lines\n");
        return EXIT_USAGE;
    }
    conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr,
                          sizeof(errstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "linger.ms", "5", errstr, sizeof(errstr)) !=
            RD_KAFKA_CONF_OK) {
        fprintf(stderr, "akv-produce: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return EXIT_USAGE;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
    if (!rk) {
        fprintf(stderr, "akv-produce: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return EXIT_FAIL;
    }
    /* The whole input first: the delivery reports point into recs, which
     * must not move while records are in flight. */
    line = malloc(LINE_MAX_);
    while (line && fgets(line, LINE_MAX_, stdin)) {
        if (n == cap) {
            char **grown;

            cap = cap ? cap * 2 : 256;
            grown = realloc(lines, cap * sizeof(*lines));
            if (!grown) {
                break;
            }
            lines = grown;
        }
        line[strcspn(line, "\n")] = '\0';
        lines[n] = strdup(line);
        if (!lines[n]) {
            break;
        }
        n++;
    }
    recs = calloc(n ? n : 1, sizeof(*recs));
    if (!line || !recs || !feof(stdin)) {
        fprintf(stderr, "akv-produce: cannot read the input\n");
        rc = EXIT_FAIL;
    }
    for (i = 0; rc == 0 && i < n; i++) {
        char *f[4];
        long long part;
        long long ts;
        rd_kafka_resp_err_t err;
        int k;

        recs[i].err = -1;
        f[0] = lines[i];
        for (k = 1; k < 4; k++) {
            f[k] = f[k - 1] ? strchr(f[k - 1], '\t') : NULL;
            if (f[k]) {
                *f[k]++ = '\0';
            }
        }
        if (!f[3] || parse_i64(f[0], 0, &part) || part > INT32_MAX ||
            parse_i64(f[1], 0, &ts)) {
            fprintf(stderr,
                    "akv-produce: line %zu: expected "
                    "PARTITION<TAB>TIMESTAMP_MS<TAB>KEY<TAB>VALUE\n",
                    i + 1);
            rc = EXIT_USAGE;
            break;
        }
        /* The time is always ours: librdkafka's mock reports a
         * LogAppendTime of 1234 in every delivery report. */
        if (ts == 0) {
            struct timespec now;

            clock_gettime(CLOCK_REALTIME, &now);
            ts = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        }
        recs[i].timestamp = ts;
        err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION((int32_t)part),
            RD_KAFKA_V_KEY(*f[2] ? f[2] : NULL, strlen(f[2])),
            RD_KAFKA_V_VALUE(f[3], strlen(f[3])),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(ts),
            RD_KAFKA_V_OPAQUE(&recs[i]), RD_KAFKA_V_END);
        if (err) {
            fprintf(stderr, "akv-produce: line %zu: %s\n", i + 1,
                    rd_kafka_err2str(err));
            rc = EXIT_FAIL;
            break;
        }
        rd_kafka_poll(rk, 0);
    }
    free(line);
    if (rd_kafka_flush(rk, FLUSH_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr,
                "akv-produce: not every record was acknowledged in "
                "%d ms\n",
                FLUSH_MS);
        rc = rc ? rc : EXIT_FAIL;
    }
    for (i = 0; rc == 0 && i < n; i++) {
        if (recs[i].err) {
            fprintf(stderr, "akv-produce: record %zu: %s\n", i + 1,
                    rd_kafka_err2str((rd_kafka_resp_err_t)recs[i].err));
            rc = EXIT_FAIL;
        }
    }
    for (i = 0; rc == 0 && i < n; i++) {
        printf("%d %lld %lld\n", (int)recs[i].partition,
               (long long)recs[i].offset, (long long)recs[i].timestamp);
    }
    rd_kafka_destroy(rk);
    for (i = 0; i < n; i++) {
        free(lines[i]);
    }
    free(lines);
    free(recs);
    return rc;
}
