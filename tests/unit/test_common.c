/*
 * test_common — bounded buffers, backoff, escaping and JSON helpers.
 */
#include "testutil.h"

#include "backoff.h"
#include "buf.h"
#include "http.h"
#include "json.h"

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
            long long d = akv_backoff_delay(100, 30000, attempt,
                                            r * 0x9E3779B97F4A7C15ULL);

            assert_true(d >= 0);
            assert_true(d <= ceiling);
        }
        /* the top of the range is reachable */
        assert_int_equal(
            akv_backoff_delay(100, 30000, attempt, (uint64_t)ceiling), ceiling);
    }
}

static void backoff_jitter_spreads(void **state)
{
    int buckets[10] = {0};
    int i;

    (void)state;
    for (i = 0; i < 10000; i++) {
        long long d = akv_backoff_delay(1000, 1000, 5, akv_backoff_random());

        buckets[d * 10 / 1001]++;
    }
    /* Full jitter is uniform: every tenth of the range gets ~1000. */
    for (i = 0; i < 10; i++) {
        assert_in_range(buckets[i], 800, 1200);
    }
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(buffer_refuses_to_grow_past_its_limit),
        cmocka_unit_test(backoff_stays_within_the_exponential_ceiling),
        cmocka_unit_test(backoff_jitter_spreads),
        cmocka_unit_test(escape_keeps_only_unreserved),
        cmocka_unit_test(json_lookups_check_types),
    };

    return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
