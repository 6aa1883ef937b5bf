/*
 * fake-authentik — a loopback stand-in for authentik's token API and for
 * the event stream authentik forwards to Kafka.
 *
 *   fake-authentik --brokers BOOTSTRAP --topic TOPIC
 *                  [--listen HOST:PORT] [--api-token TOKEN]
 *                  [--page-size N] [--latency-ms N] [--faults JSON]
 *                  [--kafka-properties FILE] [--enterprise] [--verbose]
 *
 * The API token may instead come from $AUTHENTIK_API_TOKEN, which keeps it
 * off command lines that test harnesses log. --kafka-properties names a
 * file of librdkafka properties for the producer, "name=value" a line (#
 * comments and blank lines ignored), e.g. security.protocol, sasl.* and
 * ssl.ca.location: a file, so that SASL passwords stay off the command
 * line too; its values are never printed. The real listen address is the
 * first stdout line; the process runs until SIGTERM or SIGINT.
 *
 * Every call that changes a token (and view_key) publishes the event
 * authentik would have recorded, shaped like authentik's Event model after
 * a round trip through PostgreSQL's jsonb (which is why nested objects are
 * ordered by key length, then bytewise). The HTTP answer goes out only after
 * Kafka acknowledged the event, so a test that got the answer can rely on
 * the event being in the topic.
 *
 * Keys and the API token are secrets: they are never written to stdout or
 * stderr, the tests scan every process's logs for them.
 *
 * Fake-only controls (loopback clients only): GET /_fake/tokens, GET
 * /_fake/stats, POST /_fake/reset-stats, POST /_fake/tokens/{id}/rotate,
 * POST /_fake/tokens/{id}/delete-silently, POST /_fake/api-token
 * {"token": "..."} (only that API token is accepted from then on: a rotated
 * one), and GET|POST|DELETE /_fake/faults, the fault plan.
 *
 * Fault injection: POST /_fake/faults replaces the plan with the JSON
 * object sent (--faults JSON sets the first one; --latency-ms N is its
 * latency_ms), DELETE or POST {} clears it; all answer with the effective
 * plan, a bad one is a 400 {"error":"..."} that changes nothing. Every key
 * is optional (missing or null = off/default):
 *   latency_ms, latency_jitter_ms  delay before answering: fixed plus
 *                          uniform 0..jitter (ms, 0..3600000)
 *   scope                  what latency and the *_rate faults hit: "all"
 *                          /api requests (default), "detail" (GET token),
 *                          "view_key", "list" (GET token list)
 *   error_rates            {"STATUS": p}, STATUS one of 429 500 502 503
 *                          504: DRF's body (502/504: a proxy's HTML page),
 *                          the operation not performed
 *   drop_rate              close without answering, not performed
 *   drop_after_rate        perform, then close without answering
 *   truncate_rate          perform, then send half the body and close (an
 *                          empty 204 cannot be halved: it is dropped and
 *                          counted as dropped_after)
 *                          One uniform draw per affected request picks
 *                          among all rates, so they must add up to <= 1.
 *   retry_after            "N" or "http-date:N": Retry-After (N seconds,
 *                          or an IMF-fixdate N seconds ahead) on injected
 *                          429 and 503 answers
 *   seed                   integer: draws depend only on (seed, index of
 *                          the affected request), so a plan replays
 *   deny_status            401 or 403: every /api request is refused so,
 *                          whatever the scope
 *   drop_events            true: token changes are made and answered as
 *                          usual, but their events never reach Kafka (the
 *                          event-forwarding policy's target was down)
 * Counters are under "faults" in /_fake/stats.
 */
#include "fa.h"
#include "wipe.h"

#include "num.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE        64
#define DEFAULT_LISTEN    "127.0.0.1:0"
#define DEFAULT_PAGE_SIZE 20

static void usage(void)
{
    fprintf(stderr,
            "usage: fake-authentik --brokers BOOTSTRAP --topic TOPIC\n"
            "                      [--listen HOST:PORT] [--api-token TOKEN]\n"
            "                      [--page-size N] [--latency-ms N]\n"
            "                      [--faults JSON] [--kafka-properties FILE]\n"
            "                      [--enterprise] [--verbose]\n"
            "  The API token may come from $AUTHENTIK_API_TOKEN instead.\n");
}

static int parse_int_arg(const char *opt, const char *s, int min, int max,
                         int *out)
{
    long v;

    if (akv_parse_long(s, min, max, &v) < 0) {
        fprintf(stderr, "fake-authentik: %s wants %d..%d\n", opt, min, max);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, struct app *app)
{
    const char *token = NULL;
    const char *env;
    int i;

    app->listen = DEFAULT_LISTEN;
    app->page_size = DEFAULT_PAGE_SIZE;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--enterprise") == 0) {
            app->enterprise = true;
            continue;
        }
        if (strcmp(a, "--verbose") == 0) {
            app->verbose = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage();
            return -1;
        }
        if (!v) {
            fprintf(stderr,
                    "fake-authentik: unknown or incomplete option "
                    "%s\n",
                    a);
            usage();
            return -1;
        }
        i++;
        if (strcmp(a, "--listen") == 0) {
            app->listen = v;
        } else if (strcmp(a, "--api-token") == 0) {
            token = v;
        } else if (strcmp(a, "--brokers") == 0) {
            app->brokers = v;
        } else if (strcmp(a, "--topic") == 0) {
            app->topic = v;
        } else if (strcmp(a, "--page-size") == 0) {
            if (parse_int_arg(a, v, 1, 100000, &app->page_size) < 0) {
                return -1;
            }
        } else if (strcmp(a, "--latency-ms") == 0) {
            if (parse_int_arg(a, v, 0, 600000, &app->latency_ms) < 0) {
                return -1;
            }
        } else if (strcmp(a, "--faults") == 0) {
            app->faults_json = v;
        } else if (strcmp(a, "--kafka-properties") == 0) {
            app->kafka_props = v;
        } else {
            fprintf(stderr, "fake-authentik: unknown option %s\n", a);
            usage();
            return -1;
        }
    }
    if (!token) {
        env = getenv("AUTHENTIK_API_TOKEN");
        token = env && *env ? env : NULL;
    }
    if (!token || !*token) {
        fprintf(stderr, "fake-authentik: --api-token or "
                        "$AUTHENTIK_API_TOKEN is required\n");
        return -1;
    }
    if (!app->brokers || !*app->brokers || !app->topic || !*app->topic) {
        fprintf(stderr, "fake-authentik: --brokers and --topic are "
                        "required\n");
        usage();
        return -1;
    }
    app->api_token = strdup(token);
    if (!app->api_token) {
        fprintf(stderr, "fake-authentik: out of memory\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static struct app app;
    struct fakehttp *srv = NULL;
    char errstr[256];
    int rc = 1;

    /* Before any thread exists, so all inherit the mask. */
    fakehttp_block_signals();
    pthread_mutex_init(&app.token_lock, NULL);
    if (parse_args(argc, argv, &app) < 0) {
        return EXIT_USAGE;
    }
    fakefault_slot_init(&app.faults, &fa_fault_spec, NULL);
    if (fakefault_initial(&app.faults, app.faults_json, app.latency_ms,
                          "fake-authentik") < 0) {
        akv_wipe_free(app.api_token);
        return EXIT_USAGE;
    }
    if (fa_store_init(&app.store) < 0) {
        fprintf(stderr, "fake-authentik: out of memory\n");
        fakefault_slot_destroy(&app.faults);
        akv_wipe_free(app.api_token);
        return 1;
    }
    if (fa_kafka_start(&app) < 0) {
        goto out;
    }
    srv = fakehttp_start(app.listen, fa_handle, &app, errstr, sizeof(errstr));
    if (!srv) {
        fprintf(stderr, "fake-authentik: %s\n", errstr);
        goto out;
    }
    fakehttp_announce(fakehttp_address(srv));
    fakehttp_wait_for_signal();
    rc = 0;

out:
    /* HTTP before Kafka: its threads may still wait for delivery reports,
     * which the poller keeps serving until fa_kafka_stop(). */
    if (srv) {
        fa_kafka_drain(&app);
    }
    fakehttp_stop(srv);
    fa_kafka_stop(&app);
    fa_store_destroy(&app.store);
    fakefault_slot_destroy(&app.faults);
    akv_wipe_free(app.api_token);
    return rc;
}
