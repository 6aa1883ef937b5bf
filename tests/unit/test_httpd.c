/*
 * test_httpd — the HTTP endpoint: listen address parsing, and a real
 * server on a loopback port answering /metrics, /livez and /readyz from a
 * telemetry whose state the test sets.
 */
#include "testutil.h"

#include "httpd.h"
#include "telemetry.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <unistd.h>

static void parses_listen_addresses(void **state)
{
    static const struct {
        const char *spec;
        int ok;
        int family;
        unsigned port;
    } cases[] = {
        {"127.0.0.1:9464", 1, AF_INET, 9464},
        {":9464", 1, 0, 9464},
        {"0.0.0.0:0", 1, AF_INET, 0},
        {"[::1]:8080", 1, AF_INET6, 8080},
        {"localhost:1", 1, 0, 1},
        {"127.0.0.1", 0, 0, 0},
        {"127.0.0.1:", 0, 0, 0},
        {"127.0.0.1:65536", 0, 0, 0},
        {"127.0.0.1:-1", 0, 0, 0},
        {"127.0.0.1:80x", 0, 0, 0},
        {"::1:80", 0, 0, 0},
        {"[::1]80", 0, 0, 0},
        {"[::1", 0, 0, 0},
        {"", 0, 0, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sockaddr_storage addr;
        socklen_t len = 0;
        char err[300] = "";
        akv_err_t rc =
            akv_listen_parse(cases[i].spec, &addr, &len, err, sizeof(err));

        if ((rc == AKV_OK) != cases[i].ok) {
            fail_msg("'%s': %s", cases[i].spec, rc ? err : "accepted");
        }
        if (!cases[i].ok) {
            assert_true(strlen(err) > 0);
            continue;
        }
        if (cases[i].family) {
            assert_int_equal(addr.ss_family, cases[i].family);
        }
        assert_int_equal(addr.ss_family == AF_INET6
                             ? ntohs(((struct sockaddr_in6 *)&addr)->sin6_port)
                             : ntohs(((struct sockaddr_in *)&addr)->sin_port),
                         cases[i].port);
    }
}

struct reply {
    long status;
    char type[128];
    struct akv_buf body;
};

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
    struct reply *r = ctx;

    return akv_buf_append(&r->body, p, size * n) == AKV_OK ? size * n : 0;
}

static void get(unsigned port, const char *method, const char *path,
                struct reply *r)
{
    CURL *curl = curl_easy_init();
    char url[128];
    char *type = NULL;

    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
    memset(r, 0, sizeof(*r));
    akv_buf_init(&r->body, 1 << 20);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    assert_int_equal(curl_easy_perform(curl), CURLE_OK);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &type);
    snprintf(r->type, sizeof(r->type), "%s", type ? type : "");
    curl_easy_cleanup(curl);
}

static void serves_metrics_and_health(void **state)
{
    char err[300];
    struct akv_telemetry *t =
        akv_telemetry_new("9.9.9", "2.0.2", err, sizeof(err));
    struct akv_httpd *h;
    struct akv_partition_progress pp = {
        "authentik.events", 3, 10, 25, 15, 4.5, 1};
    struct reply r;
    unsigned port;

    (void)state;
    assert_non_null(t);
    h = akv_httpd_start("127.0.0.1:0", t, 1000, err, sizeof(err));
    assert_non_null(h);
    port = akv_httpd_port(h);
    assert_true(port > 0);

    /* Before the loop runs: alive (starting), not ready. */
    get(port, "GET", "/livez", &r);
    assert_int_equal(r.status, 200);
    akv_buf_free(&r.body);
    get(port, "GET", "/readyz", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(akv_buf_str(&r.body), "starting\n");
    akv_buf_free(&r.body);

    akv_telemetry_heartbeat(t);
    akv_telemetry_set_ready(t, NULL);
    akv_metric_inc(t->consumed);
    akv_telemetry_request(t, AKV_UPSTREAM_VAULT, 503, 0.02);
    akv_telemetry_partitions_begin(t);
    akv_telemetry_partition(t, &pp);
    akv_telemetry_partitions_end(t);

    get(port, "GET", "/readyz", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(akv_buf_str(&r.body), "ready\n");
    akv_buf_free(&r.body);

    get(port, "GET", "/metrics", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.type, "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(
        strstr(akv_buf_str(&r.body), "\nak2vault_events_consumed_total 1\n"));
    assert_non_null(strstr(akv_buf_str(&r.body),
                           "\nak2vault_upstream_requests_total{upstream="
                           "\"vault\",status=\"503\"} 1\n"));
    assert_non_null(strstr(akv_buf_str(&r.body),
                           "\nak2vault_upstream_up{upstream=\"vault\"} 0\n"));
    assert_non_null(strstr(akv_buf_str(&r.body),
                           "\nak2vault_consumer_lag_messages{topic=\"authentik"
                           ".events\",partition=\"3\"} 15\n"));
    assert_non_null(strstr(akv_buf_str(&r.body),
                           "\nak2vault_consumer_lag_seconds{topic=\"authentik"
                           ".events\",partition=\"3\"} 4.5\n"));
    assert_non_null(strstr(akv_buf_str(&r.body),
                           "\nak2vault_build_info{version=\"9.9.9\","
                           "librdkafka=\"2.0.2\"} 1\n"));
    akv_buf_free(&r.body);

    /* A partition not reported in the next round loses its series. */
    akv_telemetry_partitions_begin(t);
    akv_telemetry_partitions_end(t);
    get(port, "GET", "/metrics", &r);
    assert_null(strstr(akv_buf_str(&r.body), "partition=\"3\""));
    akv_buf_free(&r.body);

    /* Unready with a reason; then a silent poll loop fails /livez. */
    akv_telemetry_set_ready(t, "no partitions assigned");
    get(port, "GET", "/readyz", &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(akv_buf_str(&r.body), "no partitions assigned\n");
    akv_buf_free(&r.body);
    usleep(1200 * 1000);
    get(port, "GET", "/livez", &r);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(akv_buf_str(&r.body), "has not turned"));
    akv_buf_free(&r.body);

    get(port, "GET", "/other", &r);
    assert_int_equal(r.status, 404);
    akv_buf_free(&r.body);
    get(port, "DELETE", "/metrics", &r);
    assert_int_equal(r.status, 405);
    akv_buf_free(&r.body);

    akv_httpd_stop(h);
    akv_telemetry_free(t);
}

static void refuses_a_port_in_use(void **state)
{
    char err[300];
    struct akv_telemetry *t = akv_telemetry_new("1", "2", err, sizeof(err));
    struct akv_httpd *a =
        akv_httpd_start("127.0.0.1:0", t, 1000, err, sizeof(err));
    char spec[64];
    struct akv_httpd *b;

    (void)state;
    assert_non_null(a);
    snprintf(spec, sizeof(spec), "127.0.0.1:%u", akv_httpd_port(a));
    b = akv_httpd_start(spec, t, 1000, err, sizeof(err));
    assert_null(b);
    assert_non_null(strstr(err, "cannot listen on"));
    akv_httpd_stop(a);
    akv_telemetry_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_listen_addresses),
        cmocka_unit_test(serves_metrics_and_health),
        cmocka_unit_test(refuses_a_port_in_use),
    };
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
