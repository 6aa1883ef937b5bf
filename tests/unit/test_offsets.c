/*
 * test_offsets — the commit watermark: only the contiguous prefix of
 * finished offsets is committable, whatever order syncs finish in.
 */
#include "testutil.h"

#include "offsets.h"

#include <stdint.h>

static void nothing_tracked_nothing_to_commit(void **state)
{
    struct akv_offsets *o = akv_offsets_new();

    (void)state;
    assert_int_equal(akv_offsets_watermark(o), -1);
    assert_int_equal(akv_offsets_pending(o), 0);
    assert_int_equal(akv_offsets_oldest_timestamp(o), -1);
    akv_offsets_destroy(o);
}

static void in_order_completion_advances(void **state)
{
    struct akv_offsets *o = akv_offsets_new();

    (void)state;
    assert_int_equal(akv_offsets_track(o, 10, 1000, NULL), 0);
    assert_int_equal(akv_offsets_track(o, 11, 1001, NULL), 0);
    assert_int_equal(akv_offsets_watermark(o), 10);
    assert_int_equal(akv_offsets_done(o, 10, NULL), 0);
    assert_int_equal(akv_offsets_watermark(o), 11);
    assert_int_equal(akv_offsets_done(o, 11, NULL), 0);
    assert_int_equal(akv_offsets_watermark(o), 12);
    assert_int_equal(akv_offsets_pending(o), 0);
    akv_offsets_destroy(o);
}

static void out_of_order_completion_holds_at_the_gap(void **state)
{
    struct akv_offsets *o = akv_offsets_new();
    int64_t i;

    (void)state;
    for (i = 100; i < 110; i++) {
        assert_int_equal(akv_offsets_track(o, i, i * 10, NULL), 0);
    }
    /* everything but 103 finishes, backwards */
    for (i = 109; i >= 100; i--) {
        if (i != 103) {
            assert_int_equal(akv_offsets_done(o, i, NULL), 0);
        }
    }
    assert_int_equal(akv_offsets_watermark(o), 103);
    assert_int_equal(akv_offsets_pending(o), 1);
    assert_int_equal(akv_offsets_oldest_timestamp(o), 1030);
    assert_int_equal(akv_offsets_done(o, 103, NULL), 0);
    assert_int_equal(akv_offsets_watermark(o), 110);
    akv_offsets_destroy(o);
}

static void a_failing_event_holds_back_later_successes(void **state)
{
    struct akv_offsets *o = akv_offsets_new();
    int64_t i;

    (void)state;
    for (i = 0; i < 1000; i++) {
        assert_int_equal(akv_offsets_track(o, i, 0, NULL), 0);
    }
    /* offset 5 keeps failing; everything after succeeds */
    for (i = 0; i < 1000; i++) {
        if (i != 5) {
            akv_offsets_done(o, i, NULL);
        }
    }
    assert_int_equal(akv_offsets_watermark(o), 5);
    assert_int_equal(akv_offsets_pending(o), 1);
    akv_offsets_destroy(o);
}

static void gaps_in_offsets_are_fine(void **state)
{
    struct akv_offsets *o = akv_offsets_new();

    (void)state;
    /* compacted or transactional topics skip offsets */
    akv_offsets_track(o, 3, 0, NULL);
    akv_offsets_track(o, 7, 0, NULL);
    akv_offsets_track(o, 20, 0, NULL);
    akv_offsets_done(o, 7, NULL);
    assert_int_equal(akv_offsets_watermark(o), 3);
    akv_offsets_done(o, 3, NULL);
    assert_int_equal(akv_offsets_watermark(o), 20);
    akv_offsets_done(o, 20, NULL);
    assert_int_equal(akv_offsets_watermark(o), 21);
    akv_offsets_destroy(o);
}

static void misuse_is_refused(void **state)
{
    struct akv_offsets *o = akv_offsets_new();

    (void)state;
    akv_offsets_track(o, 5, 0, NULL);
    assert_int_equal(akv_offsets_track(o, 5, 0, NULL), -1); /* not increasing */
    assert_int_equal(akv_offsets_track(o, 4, 0, NULL), -1);
    assert_int_equal(akv_offsets_done(o, 6, NULL), -1); /* never tracked */
    assert_int_equal(akv_offsets_done(o, 5, NULL), 0);
    assert_int_equal(akv_offsets_done(o, 5, NULL), -1); /* twice */
    akv_offsets_destroy(o);
}

static int released;

static void count_release(void *data)
{
    (void)data;
    released++;
}

static void data_travels_with_the_offset(void **state)
{
    struct akv_offsets *o = akv_offsets_new();
    int a = 1;
    int b = 2;
    int c = 3;
    void *got = NULL;

    (void)state;
    akv_offsets_track(o, 1, 0, &a);
    akv_offsets_track(o, 2, 0, &b);
    akv_offsets_track(o, 3, 0, &c);
    assert_ptr_equal(akv_offsets_get(o, 2), &b);
    assert_int_equal(akv_offsets_done(o, 2, &got), 0);
    assert_ptr_equal(got, &b);
    assert_null(akv_offsets_get(o, 2));
    released = 0;
    akv_offsets_reset(o, count_release); /* 1 and 3 were pending */
    assert_int_equal(released, 2);
    akv_offsets_destroy(o);
}

/* The consumer tracks every event with no data and attaches a copy of
 * the message only to those it holds. */
static void data_attached_after_tracking(void **state)
{
    struct akv_offsets *o = akv_offsets_new();
    int a = 1;
    void *got = NULL;

    (void)state;
    akv_offsets_track(o, 5, 0, NULL);
    akv_offsets_track(o, 6, 0, NULL);
    assert_null(akv_offsets_get(o, 5));
    assert_int_equal(akv_offsets_set(o, 5, &a), 0);
    assert_ptr_equal(akv_offsets_get(o, 5), &a);
    assert_null(akv_offsets_get(o, 6));
    assert_int_equal(akv_offsets_set(o, 4, &a), -1); /* never tracked */
    assert_int_equal(akv_offsets_done(o, 5, &got), 0);
    assert_ptr_equal(got, &a);
    assert_int_equal(akv_offsets_set(o, 5, &a), -1); /* finished */
    akv_offsets_destroy(o);
}

static void revocation_resets(void **state)
{
    struct akv_offsets *o = akv_offsets_new();

    (void)state;
    akv_offsets_track(o, 50, 0, NULL);
    akv_offsets_track(o, 51, 0, NULL);
    akv_offsets_done(o, 50, NULL);
    akv_offsets_reset(o, NULL);
    assert_int_equal(akv_offsets_watermark(o), -1);
    assert_int_equal(akv_offsets_pending(o), 0);
    /* re-assigned later, possibly from an earlier committed offset */
    assert_int_equal(akv_offsets_track(o, 40, 0, NULL), 0);
    akv_offsets_destroy(o);
}

static void many_in_flight_grow_and_wrap(void **state)
{
    struct akv_offsets *o = akv_offsets_new();
    static char finished[100000];
    int64_t i;
    int64_t expect = 0;

    (void)state;
    /* A sliding window: track ahead, finish behind in a scrambled order;
     * the ring grows and wraps. Check the watermark against a model. */
    for (i = 0; i < 100000; i++) {
        assert_int_equal(akv_offsets_track(o, i, i, NULL), 0);
        if (i >= 300) {
            int64_t j = i - 300 + ((i * 7) % 3);

            if (!finished[j]) {
                assert_int_equal(akv_offsets_done(o, j, NULL), 0);
                finished[j] = 1;
            }
        }
        while (expect <= i && finished[expect]) {
            expect++;
        }
        assert_int_equal(akv_offsets_watermark(o), expect);
    }
    for (i = 0; i < 100000; i++) {
        if (!finished[i]) {
            akv_offsets_done(o, i, NULL);
        }
    }
    assert_int_equal(akv_offsets_watermark(o), 100000);
    assert_int_equal(akv_offsets_pending(o), 0);
    akv_offsets_destroy(o);
}

/* A long-unfinished event (held by a configuration error, or a deferred
 * sync) while the partition flows on: what finishes at once behind it
 * takes no room, and the watermark still waits for it. */
static void finished_events_behind_a_pending_one_take_no_room(void **state)
{
    struct akv_offsets *o = akv_offsets_new();
    int64_t i;

    (void)state;
    assert_int_equal(akv_offsets_track(o, 0, 0, NULL), 0);
    for (i = 1; i < 100000; i++) {
        assert_int_equal(akv_offsets_track(o, i, 0, NULL), 0);
        assert_int_equal(akv_offsets_done(o, i, NULL), 0);
    }
    assert_int_equal(akv_offsets_stored(o), 1);
    assert_int_equal(akv_offsets_watermark(o), 0);
    assert_int_equal(akv_offsets_track(o, 50, 0, NULL), -1); /* seen */
    /* a second pending one keeps what finished between the two */
    assert_int_equal(akv_offsets_track(o, 100000, 0, NULL), 0);
    assert_int_equal(akv_offsets_track(o, 100001, 0, NULL), 0);
    assert_int_equal(akv_offsets_track(o, 100002, 0, NULL), 0);
    assert_int_equal(akv_offsets_done(o, 100000, NULL), 0);
    assert_int_equal(akv_offsets_stored(o), 4);
    assert_int_equal(akv_offsets_done(o, 0, NULL), 0);
    assert_int_equal(akv_offsets_watermark(o), 100001);
    assert_int_equal(akv_offsets_stored(o), 2);
    assert_int_equal(akv_offsets_done(o, 100002, NULL), 0);
    assert_int_equal(akv_offsets_stored(o), 1);
    assert_int_equal(akv_offsets_done(o, 100001, NULL), 0);
    assert_int_equal(akv_offsets_watermark(o), 100003);
    assert_int_equal(akv_offsets_stored(o), 0);
    akv_offsets_destroy(o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nothing_tracked_nothing_to_commit),
        cmocka_unit_test(in_order_completion_advances),
        cmocka_unit_test(out_of_order_completion_holds_at_the_gap),
        cmocka_unit_test(a_failing_event_holds_back_later_successes),
        cmocka_unit_test(gaps_in_offsets_are_fine),
        cmocka_unit_test(misuse_is_refused),
        cmocka_unit_test(data_travels_with_the_offset),
        cmocka_unit_test(data_attached_after_tracking),
        cmocka_unit_test(revocation_resets),
        cmocka_unit_test(many_in_flight_grow_and_wrap),
        cmocka_unit_test(finished_events_behind_a_pending_one_take_no_room),
    };

    return cmocka_run_group_tests_name("offsets", tests, NULL, NULL);
}
