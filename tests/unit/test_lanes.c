/*
 * test_lanes — one sync per token at a time, and exactly one follow-up
 * however many events arrived meanwhile.
 */
#include "testutil.h"

#include "lanes.h"

struct seen {
    int n;
    struct akv_lane_event ev[64];
};

static void record(void *ctx, const struct akv_lane_event *ev)
{
    struct seen *s = ctx;

    s->ev[s->n++] = *ev;
}

static void idle_token_starts_a_sync(void **state)
{
    struct akv_lanes *ls = akv_lanes_new();
    struct akv_lane *lane = NULL;
    struct seen s = {0};

    (void)state;
    assert_int_equal(akv_lanes_admit(ls, "a", 0, 1, &lane), AKV_LANE_START);
    assert_string_equal(lane->identifier, "a");
    assert_int_equal(akv_lanes_count(ls), 1);
    assert_int_equal(akv_lanes_finish(ls, lane, record, &s), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.ev[0].offset, 1);
    assert_int_equal(akv_lanes_count(ls), 0);
    akv_lanes_destroy(ls);
}

static void busy_token_coalesces_into_one_follow_up(void **state)
{
    struct akv_lanes *ls = akv_lanes_new();
    struct akv_lane *lane = NULL;
    struct akv_lane *again = NULL;
    struct seen s = {0};
    int i;

    (void)state;
    assert_int_equal(akv_lanes_admit(ls, "a", 0, 1, &lane), AKV_LANE_START);
    /* ten more events for the same token while its sync runs */
    for (i = 0; i < 10; i++) {
        assert_int_equal(akv_lanes_admit(ls, "a", i % 2, 10 + i, &again),
                         AKV_LANE_QUEUED);
        assert_ptr_equal(again, lane);
    }
    /* the first sync answers for offset 1 only ... */
    assert_int_equal(akv_lanes_finish(ls, lane, record, &s), 1);
    assert_int_equal(s.n, 1);
    /* ... and ONE follow-up for all ten */
    assert_int_equal(lane->covered.n, 10);
    assert_int_equal(lane->waiting.n, 0);
    s.n = 0;
    assert_int_equal(akv_lanes_finish(ls, lane, record, &s), 0);
    assert_int_equal(s.n, 10);
    assert_int_equal(akv_lanes_count(ls), 0);
    akv_lanes_destroy(ls);
}

static void different_tokens_run_side_by_side(void **state)
{
    struct akv_lanes *ls = akv_lanes_new();
    struct akv_lane *a = NULL;
    struct akv_lane *b = NULL;
    struct seen s = {0};

    (void)state;
    assert_int_equal(akv_lanes_admit(ls, "a", 0, 1, &a), AKV_LANE_START);
    assert_int_equal(akv_lanes_admit(ls, "b", 0, 2, &b), AKV_LANE_START);
    assert_ptr_not_equal(a, b);
    assert_int_equal(akv_lanes_count(ls), 2);
    assert_int_equal(akv_lanes_finish(ls, b, record, &s), 0);
    assert_int_equal(akv_lanes_finish(ls, a, record, &s), 0);
    assert_int_equal(s.n, 2);
    akv_lanes_destroy(ls);
}

static void retry_answers_for_the_waiting_too(void **state)
{
    struct akv_lanes *ls = akv_lanes_new();
    struct akv_lane *lane = NULL;
    struct akv_lane *x = NULL;
    struct seen s = {0};

    (void)state;
    akv_lanes_admit(ls, "a", 0, 1, &lane);
    akv_lanes_admit(ls, "a", 0, 2, &x);
    /* the sync failed; its retry reads authentik anew */
    assert_int_equal(akv_lanes_merge(lane), 0);
    assert_int_equal(lane->covered.n, 2);
    assert_int_equal(lane->waiting.n, 0);
    assert_int_equal(akv_lanes_finish(ls, lane, record, &s), 0);
    assert_int_equal(s.n, 2);
    akv_lanes_destroy(ls);
}

struct orphans {
    struct akv_lanes *ls;
    int n;
};

static void on_orphan(void *ctx, struct akv_lane *lane)
{
    struct orphans *o = ctx;

    o->n++;
    akv_lanes_remove(o->ls, lane);
}

static void revoked_partition_events_are_dropped(void **state)
{
    struct akv_lanes *ls = akv_lanes_new();
    struct akv_lane *a = NULL;
    struct akv_lane *b = NULL;
    struct akv_lane *x = NULL;
    struct orphans o = {ls, 0};
    struct seen s = {0};

    (void)state;
    akv_lanes_admit(ls, "a", 1, 10, &a); /* only partition 1 */
    akv_lanes_admit(ls, "b", 1, 11, &b); /* partitions 1 and 2 */
    akv_lanes_admit(ls, "b", 2, 5, &x);
    akv_lanes_drop_partition(ls, 1, on_orphan, &o);
    assert_int_equal(o.n, 1); /* lane a had nothing left */
    assert_int_equal(akv_lanes_count(ls), 1);
    assert_int_equal(b->covered.n, 0);
    assert_int_equal(b->waiting.n, 1);
    assert_int_equal(akv_lanes_finish(ls, b, record, &s), 1);
    assert_int_equal(s.n, 0);
    assert_int_equal(akv_lanes_finish(ls, b, record, &s), 0);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.ev[0].partition, 2);
    akv_lanes_destroy(ls);
}

static void many_lanes(void **state)
{
    struct akv_lanes *ls = akv_lanes_new();
    struct akv_lane *lanes[5000];
    struct seen s = {0};
    char id[32];
    int i;

    (void)state;
    for (i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "token-%d", i);
        assert_int_equal(akv_lanes_admit(ls, id, 0, i, &lanes[i]),
                         AKV_LANE_START);
    }
    assert_int_equal(akv_lanes_count(ls), 5000);
    for (i = 0; i < 5000; i++) {
        struct akv_lane *again = NULL;

        snprintf(id, sizeof(id), "token-%d", i);
        assert_int_equal(akv_lanes_admit(ls, id, 0, 5000 + i, &again),
                         AKV_LANE_QUEUED);
        assert_ptr_equal(again, lanes[i]);
    }
    for (i = 0; i < 5000; i++) {
        s.n = 0;
        assert_int_equal(akv_lanes_finish(ls, lanes[i], record, &s), 1);
        s.n = 0;
        assert_int_equal(akv_lanes_finish(ls, lanes[i], record, &s), 0);
    }
    assert_int_equal(akv_lanes_count(ls), 0);
    akv_lanes_destroy(ls);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(idle_token_starts_a_sync),
        cmocka_unit_test(busy_token_coalesces_into_one_follow_up),
        cmocka_unit_test(different_tokens_run_side_by_side),
        cmocka_unit_test(retry_answers_for_the_waiting_too),
        cmocka_unit_test(revoked_partition_events_are_dropped),
        cmocka_unit_test(many_lanes),
    };

    return cmocka_run_group_tests_name("lanes", tests, NULL, NULL);
}
