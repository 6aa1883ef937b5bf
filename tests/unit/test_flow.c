/*
 * test_flow — the consumer's two hysteresis decisions as tables: pausing a
 * partition with too many unfinished events, and waking the fetcher once
 * its queue drained.
 */
#include "testutil.h"

#include "flow.h"

static void a_partition_pauses_at_high_and_resumes_at_half(void **state)
{
    static const struct {
        int paused;
        size_t pending;
        int want;
    } rows[] = {
        {0, 0, 0},    {0, 1999, 0}, {0, 2000, 1}, {0, 5000, 1},
        {1, 2000, 1}, {1, 1001, 1}, {1, 1000, 0}, {1, 0, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        int got = akv_flow_paused(rows[i].paused, rows[i].pending, 2000);

        if (got != rows[i].want) {
            fail_msg("paused=%d pending=%zu: %d, want %d", rows[i].paused,
                     rows[i].pending, got, rows[i].want);
        }
    }
}

/* A queue of 8 MiB / 100,000 messages filling and draining: the fetcher is
 * woken once per drain, at half of both bounds, and never while only one
 * of them has drained. */
static void the_fetcher_is_woken_once_the_queue_drained(void **state)
{
    static const struct {
        double msgs;
        double bytes;
        int wake;
        int full;
    } steps[] = {
        {1000, 4e6, 0, 0},   /* below 60%: nothing happened yet */
        {1000, 3e6, 0, 0},   /* draining without having filled */
        {6000, 5.1e6, 0, 1}, /* 60% of the bytes: full */
        {5000, 4.5e6, 0, 1}, /* between: still full */
        {4000, 4.3e6, 0, 1}, /* bytes not at half yet */
        {4000, 4.0e6, 1, 0}, /* both at half: wake, once */
        {3000, 3.0e6, 0, 0}, /* and not again */
        {60000, 1e6, 0, 1},  /* 60% of the messages: full */
        {50001, 1e5, 0, 1},  /* messages not at half yet */
        {50000, 1e5, 1, 0},
    };
    struct akv_flow_queue q = {8388608.0, 100000.0, 0};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        int wake = akv_flow_queue_drained(&q, steps[i].msgs, steps[i].bytes);

        if (wake != steps[i].wake || q.full != steps[i].full) {
            fail_msg("step %zu (%.0f messages, %.0f bytes): wake %d full %d, "
                     "want %d %d",
                     i, steps[i].msgs, steps[i].bytes, wake, q.full,
                     steps[i].wake, steps[i].full);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_partition_pauses_at_high_and_resumes_at_half),
        cmocka_unit_test(the_fetcher_is_woken_once_the_queue_drained),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
