/*
 * test_process — /proc/self/stat read for the process_* metrics.
 */
#include "testutil.h"

#include "process.h"

static void stat_line_is_read(void **state)
{
    /* A command name with a space and a ')' in it: the fields after the
     * last ')' count. utime 250 + stime 50 ticks, starttime 1000 ticks,
     * vsize 104857600, rss 2560 pages. */
    static const char line[] =
        "4242 (ak2 vault) w) S 1 4242 4242 0 -1 4194560 900 0 0 0 250 50 0 "
        "0 20 0 5 0 1000 104857600 2560 18446744073709551615 1 1 0 0 0 0 0 "
        "0 0 0 0 0 17 1 0 0 0 0 0\n";
    struct akv_process p;

    (void)state;
    assert_int_equal(akv_process_parse_stat(line, 100, 4096, 1.7e9, &p), 0);
    assert_true(p.cpu_seconds == 3.0);
    assert_true(p.start_time == 1.7e9 + 10.0);
    assert_true(p.vsize_bytes == 104857600.0);
    assert_true(p.rss_bytes == 2560.0 * 4096);
    assert_int_equal(akv_process_parse_stat("garbage", 100, 4096, 0, &p), -1);
    assert_int_equal(akv_process_parse_stat("1 (x) S 1", 100, 4096, 0, &p), -1);
}

static void own_process_is_read(void **state)
{
    struct akv_process p;

    (void)state;
    assert_int_equal(akv_process_read(&p), 0);
    assert_true(p.rss_bytes > 0 && p.vsize_bytes >= p.rss_bytes);
    assert_true(p.open_fds >= 3);
    assert_true(p.start_time > 1.5e9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stat_line_is_read),
        cmocka_unit_test(own_process_is_read),
    };

    return cmocka_run_group_tests_name("process", tests, NULL, NULL);
}
