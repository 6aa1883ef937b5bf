/*
 * test_common — bounded buffers, clocks, numbers, backoff, escaping and JSON
 * helpers.
 */
#include "testutil.h"

#include "backoff.h"
#include "buf.h"
#include "clock.h"
#include "http.h"
#include "json.h"
#include "memfind.h"
#include "num.h"
#include "siphash.h"
#include "thread.h"

#include <errno.h>
#include <limits.h>
#include <math.h>

static void buffer_refuses_to_grow_past_its_limit(void **state)
{
    struct akv_buf b;
    char chunk[100];

    (void)state;
    memset(chunk, 'x', sizeof(chunk));
    akv_buf_init(&b, 250);
    assert_string_equal(akv_buf_str(&b), "");
    assert_int_equal(akv_buf_append(&b, chunk, 100), AKV_OK);
    assert_int_equal(akv_buf_append(&b, chunk, 100), AKV_OK);
    assert_int_equal(akv_buf_append(&b, chunk, 100), AKV_ERR_TOOBIG);
    assert_int_equal(b.len, 200);
    assert_int_equal(akv_buf_append(&b, chunk, 50), AKV_OK);
    assert_int_equal(b.len, 250);
    assert_int_equal(b.data[250], '\0');
    assert_int_equal(akv_buf_append(&b, chunk, 1), AKV_ERR_TOOBIG);
    akv_buf_reset(&b);
    assert_int_equal(b.len, 0);
    assert_int_equal(akv_buf_puts(&b, "abc"), AKV_OK);
    assert_string_equal(akv_buf_str(&b), "abc");
    akv_buf_free(&b);
    assert_null(b.data);
}

static void buffer_chains_appends_and_hands_over_its_text(void **state)
{
    struct akv_buf b = AKV_BUF_INIT(12);
    char *s;

    (void)state;
    /* nothing appended: an empty string of its own */
    s = akv_buf_take(&b);
    assert_non_null(s);
    assert_string_equal(s, "");
    free(s);
    akv_buf_putc(&b, '[');
    akv_buf_printf(&b, "%d:%s", 42, "ab");
    akv_buf_putc(&b, ']');
    assert_int_equal(b.err, AKV_OK);
    assert_string_equal(akv_buf_str(&b), "[42:ab]");
    s = akv_buf_take(&b);
    assert_string_equal(s, "[42:ab]");
    free(s);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.max, 12);

    /* the first failure of a chain is kept; the text is not handed over */
    assert_int_equal(akv_buf_printf(&b, "%s", "0123456789"), AKV_OK);
    assert_int_equal(akv_buf_printf(&b, "%s", "abc"), AKV_ERR_TOOBIG);
    assert_int_equal(akv_buf_puts(&b, "z"), AKV_OK);
    assert_int_equal(b.err, AKV_ERR_TOOBIG);
    assert_null(akv_buf_take(&b));
    assert_int_equal(b.err, AKV_OK);
    assert_null(b.data);

    /* reset forgets the failure as well as the text */
    assert_int_equal(akv_buf_putc(&b, 'x'), AKV_OK);
    b.err = AKV_ERR_NOMEM;
    akv_buf_reset(&b);
    assert_int_equal(b.err, AKV_OK);
    assert_int_equal(akv_buf_printf(&b, "%05d", 7), AKV_OK);
    assert_string_equal(akv_buf_str(&b), "00007");
    akv_buf_free(&b);
}

static void wall_clock_in_nanoseconds_agrees_with_milliseconds(void **state)
{
    int64_t before;
    int64_t ns;
    int64_t after;

    (void)state;
    before = akv_wall_ms();
    ns = akv_wall_ns();
    after = akv_wall_ms();
    assert_true(ns / 1000000 >= before);
    assert_true(ns / 1000000 <= after);
}

static void parse_long_takes_whole_numbers_within_bounds(void **state)
{
    long v = -7;

    (void)state;
    assert_int_equal(akv_parse_long("42", 0, 100, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(akv_parse_long(" -3", -5, 5, &v), 0);
    assert_int_equal(v, -3);
    assert_int_equal(akv_parse_long("0", 0, 0, &v), 0);
    assert_int_equal(v, 0);
    v = 9;
    /* not the whole text, no digits, out of bounds, overflow */
    assert_int_equal(akv_parse_long("12abc", 0, 100, &v), -1);
    assert_int_equal(akv_parse_long("", 0, 100, &v), -1);
    assert_int_equal(akv_parse_long("-", 0, 100, &v), -1);
    assert_int_equal(akv_parse_long("12 ", 0, 100, &v), -1);
    assert_int_equal(akv_parse_long("101", 0, 100, &v), -1);
    assert_int_equal(akv_parse_long("-1", 0, 100, &v), -1);
    assert_int_equal(
        akv_parse_long("99999999999999999999999", LONG_MIN, LONG_MAX, &v), -1);
    assert_int_equal(v, 9);
}

static void backoff_stays_within_the_exponential_ceiling(void **state)
{
    unsigned attempt;
    uint64_t r;

    (void)state;
    for (attempt = 0; attempt < 40; attempt++) {
        long long ceiling = 100LL << (attempt < 20 ? attempt : 20);

        if (ceiling > 30000) {
            ceiling = 30000;
        }
        for (r = 0; r < 2000; r += 7) {
            long long d = akv_backoff_delay(100, 30000, 2.0, attempt,
                                            r * 0x9E3779B97F4A7C15ULL);

            assert_true(d >= 0);
            assert_true(d <= ceiling);
        }
        /* the top of the range is reachable */
        assert_int_equal(
            akv_backoff_delay(100, 30000, 2.0, attempt, (uint64_t)ceiling),
            ceiling);
    }
}

static void backoff_jitter_spreads(void **state)
{
    int buckets[10] = {0};
    int i;

    (void)state;
    for (i = 0; i < 10000; i++) {
        long long d =
            akv_backoff_delay(1000, 1000, 2.0, 5, akv_backoff_random());

        buckets[d * 10 / 1001]++;
    }
    /* Full jitter is uniform: every tenth of the range gets ~1000. */
    for (i = 0; i < 10; i++) {
        assert_in_range(buckets[i], 800, 1200);
    }
}

static void multiplier_sets_the_growth(void **state)
{
    (void)state;
    /* rnd = ceiling hits the top of the range exactly */
    assert_int_equal(akv_backoff_delay(100, 100000, 1.5, 0, 100), 100);
    assert_int_equal(akv_backoff_delay(100, 100000, 1.5, 2, 225), 225);
    assert_int_equal(akv_backoff_delay(100, 100000, 3.0, 2, 900), 900);
    assert_int_equal(akv_backoff_delay(100, 100000, 3.0, 2, 901), 0);
    /* a multiplier below 1 is treated as 1: constant ceiling */
    assert_int_equal(akv_backoff_delay(100, 100000, 0.5, 9, 100), 100);
    assert_int_equal(akv_backoff_delay(0, 100, 2.0, 3, 7), 0);
}

/* Inputs the settings never give (NaN, caps near 2^63) still keep the
 * delay within [0, cap]: found by fuzz_backoff. */
static void backoff_holds_its_bounds_for_any_input(void **state)
{
    static const uint64_t rnds[] = {0, 1, 9007199254740996ULL,
                                    9223372036854775808ULL, UINT64_MAX};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
        long long d = akv_backoff_delay(1000, 60000, NAN, 3, rnds[i]);

        assert_true(d >= 0 && d <= 1000); /* NaN grows like 1 */
        d = akv_backoff_delay(9007199254740995LL, 9007199254740995LL, 2, 0,
                              rnds[i]);
        assert_true(d >= 0 && d <= 9007199254740995LL);
        d = akv_backoff_delay(LLONG_MAX, LLONG_MAX, 2, 0, rnds[i]);
        assert_true(d >= 0);
    }
}

/* cJSON decodes \u0000, a raw NUL and a \u escape with a non-hex digit
 * into a NUL byte that cuts the string short. */
static void json_has_nul_finds_what_cjson_would_cut(void **state)
{
    static const struct {
        const char *text;
        size_t len;
        int nul;
    } rows[] = {
        {"{\"k\":\"abc\"}", 11, 0},
        {"{\"k\":\"a\\u0000b\"}", 16, 1},
        {"{\"k\":\"a\\\\u0000b\"}", 17, 0}, /* an escaped backslash */
        {"{\"k\":\"a\\ud0}}\"}", 15, 1},    /* not hex: read as 0 */
        {"{\"k\":\"a\\u00e9\\n\\\"\"}", 19, 0},
        {"{\"k\":\"a\\u00\"}", 13, 1},
        {"{\"k\":\"a\0b\"}", 11, 1},
        {"{\"k\":\"a\\u", 9, 1},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (akv_json_has_nul(rows[i].text, rows[i].len) != rows[i].nul) {
            fail_msg("row %zu: %d", i, !rows[i].nul);
        }
    }
}

static void retry_after_seconds_and_dates(void **state)
{
    /* 2015-10-21T07:28:00Z */
    time_t now = 1445412480;

    (void)state;
    assert_int_equal(akv_retry_after_ms("0", now, 60000), 0);
    assert_int_equal(akv_retry_after_ms("1", now, 60000), 1000);
    assert_int_equal(akv_retry_after_ms(" 120 ", now, 600000), 120000);
    /* capped */
    assert_int_equal(akv_retry_after_ms("120", now, 60000), 60000);
    assert_int_equal(akv_retry_after_ms("99999999999999999999999", now, 60000),
                     60000);
    /* IMF-fixdate, RFC 850 and asctime, 30 s ahead */
    assert_int_equal(
        akv_retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", now, 60000), 30000);
    assert_int_equal(
        akv_retry_after_ms("Wednesday, 21-Oct-15 07:28:30 GMT", now, 60000),
        30000);
    assert_int_equal(akv_retry_after_ms("Wed Oct 21 07:28:30 2015", now, 60000),
                     30000);
    /* in the past: retry now; far future: capped */
    assert_int_equal(
        akv_retry_after_ms("Wed, 21 Oct 2015 07:00:00 GMT", now, 60000), 0);
    assert_int_equal(
        akv_retry_after_ms("Thu, 01 Jan 2099 00:00:00 GMT", now, 60000), 60000);
    /* garbage */
    assert_int_equal(akv_retry_after_ms("", now, 60000), -1);
    assert_int_equal(akv_retry_after_ms(NULL, now, 60000), -1);
    assert_int_equal(akv_retry_after_ms("soon", now, 60000), -1);
    assert_int_equal(akv_retry_after_ms("12abc", now, 60000), -1);
    assert_int_equal(akv_retry_after_ms("-5", now, 60000), -1);
    assert_int_equal(akv_retry_after_ms("1.5", now, 60000), -1);
}

static void siphash_matches_the_reference_vector(void **state)
{
    uint8_t key[16];
    uint8_t msg[15];
    int i;

    (void)state;
    /* The paper's test vector: key 00..0f, message 00..0e. */
    for (i = 0; i < 16; i++) {
        key[i] = (uint8_t)i;
    }
    for (i = 0; i < 15; i++) {
        msg[i] = (uint8_t)i;
    }
    assert_true(akv_siphash(key, msg, 15) == 0xa129ca6149be45e5ULL);
    assert_true(akv_siphash(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
}

static void escape_keeps_only_unreserved(void **state)
{
    char out[64];

    (void)state;
    assert_int_equal(akv_http_escape("a-b_c.d~e", out, sizeof(out)), 0);
    assert_string_equal(out, "a-b_c.d~e");
    assert_int_equal(akv_http_escape("a b/c%?#\xc3\xa9", out, sizeof(out)), 0);
    assert_string_equal(out, "a%20b%2Fc%25%3F%23%C3%A9");
    assert_int_equal(akv_http_escape("abc", out, 3), -1);
    assert_int_equal(akv_http_escape("/", out, 3), -1);
    assert_int_equal(akv_http_escape("/", out, 4), 0);
}

static void json_lookups_check_types(void **state)
{
    cJSON *root = cJSON_Parse("{\"a\":{\"b\":{\"c\":\"x\"}},\"n\":7,"
                              "\"f\":1.5,\"t\":true,\"s\":\"str\"}");
    long long n = 0;
    int b = 0;

    (void)state;
    assert_non_null(root);
    assert_string_equal(
        akv_json_path(root, "a", "b", "c", AKV_JSON_END)->valuestring, "x");
    assert_null(akv_json_path(root, "a", "x", "c", AKV_JSON_END));
    assert_null(akv_json_path(root, "s", "x", AKV_JSON_END));
    assert_null(akv_json_string(root, "n"));
    assert_null(akv_json_object(root, "s"));
    assert_int_equal(akv_json_int(root, "n", &n), 0);
    assert_int_equal(n, 7);
    assert_int_equal(akv_json_int(root, "f", &n), -1);
    assert_int_equal(akv_json_int(root, "s", &n), -1);
    assert_int_equal(akv_json_bool(root, "t", &b), 0);
    assert_int_equal(b, 1);
    assert_int_equal(akv_json_bool(root, "n", &b), -1);
    assert_null(akv_json_get(NULL, "a"));
    akv_json_wipe(root);
    assert_string_equal(akv_json_string(root, "s"), "");
    cJSON_Delete(root);
}

/* The plain definition: first position holding a stop byte or starting
 * the needle. */
static const char *reference_find(const char *hay, size_t n, const char *needle,
                                  size_t m, int stops, char s1, char s2,
                                  int *stopped)
{
    size_t i;

    *stopped = 0;
    for (i = 0; i < n; i++) {
        if (stops && (hay[i] == s1 || hay[i] == s2)) {
            *stopped = 1;
            return hay + i;
        }
        if (i + m <= n && memcmp(hay + i, needle, m) == 0) {
            return hay + i;
        }
    }
    return NULL;
}

/* Random haystacks from a small alphabet (so that needles occur, in part
 * and whole, at every offset and near the end), against the definition,
 * with the 16-byte search and, where the CPU has it, the 32-byte one. */
static void memfind_agrees_with_the_definition(void **state)
{
    static const char alphabet[] = "\"actionx\\\0ab";
    static const char *const needles[] = {
        "\"action\"",
        "token",
        "ab\"",
        "authentik_core",
        "aa",
        "x",
        "\"action\":\"authentik\"",
        "ab\"acx\"a\"ab\"acx\"a\"ab\"acx\"a\"ab\"acxa"};
    char hay[200];
    uint64_t seed = 42;
    int avx2;
    int pass;

    (void)state;
    for (pass = 0; pass < 2; pass++) {
        avx2 = akv_memfind_use_avx2(pass);
        if (pass == 1 && !avx2) {
            break;
        }
        for (int round = 0; round < 20000; round++) {
            size_t n;
            size_t i;
            const char *needle = needles[round % 8];
            size_t m = strlen(needle);
            const char *want;
            const char *got;
            int want_stop;
            int got_stop = -1;

            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            n = (size_t)(seed >> 33) % sizeof(hay);
            for (i = 0; i < n; i++) {
                seed = seed * 6364136223846793005ULL + 1ULL;
                hay[i] = alphabet[(seed >> 40) % (sizeof(alphabet) - 1)];
            }
            want = reference_find(hay, n, needle, m, 0, 0, 0, &want_stop);
            got = akv_memfind(hay, n, needle, m);
            assert_ptr_equal(got, want);
            if (needle[0] == '\\' || needle[0] == '\0') {
                continue;
            }
            want = reference_find(hay, n, needle, m, 1, '\\', '\0', &want_stop);
            got = akv_memfind_stop(hay, n, needle, m, '\\', '\0', &got_stop);
            assert_ptr_equal(got, want);
            if (want) {
                assert_int_equal(got_stop, want_stop);
            }
        }
    }
    akv_memfind_use_avx2(1);
}

/* A helper thread that counts wake-ups until it is stopped. */
struct counter {
    struct akv_thread th;
    int wakes; /* under th.lock */
};

static void *count_wakes(void *arg)
{
    struct counter *c = arg;

    pthread_mutex_lock(&c->th.lock);
    while (!c->th.stop) {
        akv_thread_wait(&c->th, NULL);
        c->wakes++;
    }
    pthread_mutex_unlock(&c->th.lock);
    return NULL;
}

static void thread_wakes_waits_and_stops(void **state)
{
    struct counter c;
    struct akv_thread t;
    struct timespec until;
    int i;

    (void)state;
    memset(&c, 0, sizeof(c));
    assert_int_equal(akv_thread_start(&c.th, count_wakes, &c), 0);
    /* A wake-up only counts once the thread waits: wake until one did. */
    for (i = 0; i < 2000; i++) {
        int n;

        akv_thread_wake(&c.th);
        pthread_mutex_lock(&c.th.lock);
        n = c.wakes;
        pthread_mutex_unlock(&c.th.lock);
        if (n > 0) {
            break;
        }
        usleep(1000);
    }
    assert_true(i < 2000);
    akv_thread_stop(&c.th); /* returns only once the thread has */
    assert_int_equal(c.th.stop, 1);

    /* A wait with a deadline and no wake-up times out, after it. */
    memset(&t, 0, sizeof(t));
    assert_int_equal(pthread_mutex_init(&t.lock, NULL), 0);
    assert_int_equal(pthread_cond_init(&t.cond, NULL), 0);
    {
        struct timespec before;
        long long ahead;

        clock_gettime(CLOCK_REALTIME, &before);
        akv_thread_deadline(&until, 30);
        ahead = (long long)(until.tv_sec - before.tv_sec) * 1000 +
                (until.tv_nsec - before.tv_nsec) / 1000000;
        assert_true(ahead >= 29 && ahead < 1000);
    }
    pthread_mutex_lock(&t.lock);
    while (akv_thread_wait(&t, &until) != ETIMEDOUT) {
    }
    pthread_mutex_unlock(&t.lock);
    {
        struct timespec now;

        clock_gettime(CLOCK_REALTIME, &now);
        assert_true(
            now.tv_sec > until.tv_sec ||
            (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec));
    }
    pthread_cond_destroy(&t.cond);
    pthread_mutex_destroy(&t.lock);
    akv_thread_deadline(&until, 1999);
    assert_true(until.tv_nsec >= 0 && until.tv_nsec < 1000000000L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buffer_refuses_to_grow_past_its_limit),
        cmocka_unit_test(buffer_chains_appends_and_hands_over_its_text),
        cmocka_unit_test(wall_clock_in_nanoseconds_agrees_with_milliseconds),
        cmocka_unit_test(parse_long_takes_whole_numbers_within_bounds),
        cmocka_unit_test(backoff_stays_within_the_exponential_ceiling),
        cmocka_unit_test(backoff_jitter_spreads),
        cmocka_unit_test(multiplier_sets_the_growth),
        cmocka_unit_test(backoff_holds_its_bounds_for_any_input),
        cmocka_unit_test(json_has_nul_finds_what_cjson_would_cut),
        cmocka_unit_test(retry_after_seconds_and_dates),
        cmocka_unit_test(siphash_matches_the_reference_vector),
        cmocka_unit_test(escape_keeps_only_unreserved),
        cmocka_unit_test(json_lookups_check_types),
        cmocka_unit_test(memfind_agrees_with_the_definition),
        cmocka_unit_test(thread_wakes_waits_and_stops),
    };

    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
