/*
 * test_progress — a partition's lag and stall as a table: what the
 * consumer knows (committed, end, taken, unfinished events and their age,
 * when it last moved or had nothing to do) gives lag in messages and in
 * seconds and whether the work is stalled (60 s timeout here).
 */
#include "testutil.h"

#include "progress.h"

#define NOW   1000000000LL
#define STALL 60000

struct row {
    const char *what;
    struct akv_progress_in in;
    struct akv_progress_memory mem;
    int64_t end;
    int64_t lag;
    double lag_seconds;
    int caught_up;
    int stalled;
};

static const struct row rows[] = {
    {"all committed, nothing left",
     {500, 500, 0, 500, 500, 0, -1, NOW, STALL},
     {NOW - 100000, NOW - 1000, NOW - 1000},
     500,
     0,
     0,
     1,
     0},
    {"events arrived and are not taken yet",
     {500, 800, 0, 500, 500, 0, -1, NOW, STALL},
     {NOW - 100000, NOW - 5000, NOW - 5000},
     800,
     300,
     5,
     0,
     0},
    {"... for longer than the timeout: stalled",
     {500, 800, 0, 500, 500, 0, -1, NOW, STALL},
     {NOW - 100000, NOW - 70000, NOW - 70000},
     800,
     300,
     70,
     0,
     1},
    {"a commit moved recently: not stalled",
     {500, 800, 0, 500, 500, 0, -1, NOW, STALL},
     {NOW - 1000, NOW - 70000, NOW - 70000},
     800,
     300,
     70,
     0,
     0},
    {"an unfinished event's age is the lag in seconds",
     {500, 510, 0, 510, 500, 1, NOW - 20000, NOW, STALL},
     {NOW - 100000, NOW - 100000, NOW - 100000},
     510,
     10,
     20,
     0,
     0},
    {"an event stuck for longer than the timeout stalls its partition",
     {500, 510, 0, 510, 500, 1, NOW - 90000, NOW, STALL},
     {NOW - 100000, NOW - 100000, NOW - 100000},
     510,
     10,
     90,
     0,
     1},
    {"finished but not yet committed is work: stalled if it stays",
     {500, 510, 0, 510, 510, 0, -1, NOW, STALL},
     {NOW - 100000, NOW - 1000, NOW - 80000},
     510,
     10,
     0,
     1,
     1},
    {"taken past the end read a moment ago: the end is at least that",
     {500, 505, 0, 520, 520, 0, -1, NOW, STALL},
     {NOW - 1000, NOW - 1000, NOW - 1000},
     520,
     20,
     0,
     1,
     0},
    {"nothing known yet",
     {-1, -1, -1, -1, -1, 0, -1, NOW, STALL},
     {NOW, NOW, NOW},
     -1,
     -1,
     0,
     1,
     0},
    {"an empty log, no commit: lag 0",
     {-1, 0, 0, -1, -1, 0, -1, NOW, STALL},
     {NOW, NOW, NOW},
     0,
     0,
     0,
     1,
     0},
    {"a log with records and no commit: lag unknown, not caught up",
     {-1, 40, 0, -1, -1, 0, -1, NOW, STALL},
     {NOW - 1000, NOW - 3000, NOW - 1000},
     40,
     -1,
     3,
     0,
     0},
};

static void the_table_holds(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        struct akv_progress_memory mem = r->mem;
        struct akv_progress out;

        akv_progress_compute(&r->in, &mem, &out);
        if (out.end != r->end || out.lag != r->lag ||
            out.lag_seconds != r->lag_seconds ||
            out.caught_up != r->caught_up || out.stalled != r->stalled) {
            fail_msg("%s: end %lld lag %lld lag_seconds %g caught_up %d "
                     "stalled %d; want %lld %lld %g %d %d",
                     r->what, (long long)out.end, (long long)out.lag,
                     out.lag_seconds, out.caught_up, out.stalled,
                     (long long)r->end, (long long)r->lag, r->lag_seconds,
                     r->caught_up, r->stalled);
        }
        if (out.caught_up && mem.caught_up_ms != NOW) {
            fail_msg("%s: caught up, but not remembered as such", r->what);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_table_holds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
