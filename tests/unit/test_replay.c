/*
 * test_replay — the pure parts of replay and lag: dates, durations and
 * partition lists as the command line gives them, options that fit their
 * command, the new offset of every mode with its clamping, the timestamp
 * search over a log (with a broker answer that holds, and with the mock
 * cluster's answer, which does not), and member assignments as
 * DescribeGroups returns them.
 */
#include "testutil.h"

#include "kadmin.h"
#include "replay.h"

static char errstr[512];

/* ------------------------------------------------------------------------
 * Dates and durations
 */

static int64_t dt(const char *s)
{
    int64_t ms = -42;

    if (akv_replay_parse_datetime(s, &ms, errstr, sizeof(errstr)) != AKV_OK) {
        fail_msg("'%s' refused: %s", s, errstr);
    }
    return ms;
}

static void bad_dt(const char *s, const char *why)
{
    int64_t ms = -42;

    errstr[0] = '\0';
    if (akv_replay_parse_datetime(s, &ms, errstr, sizeof(errstr)) !=
        AKV_ERR_INVALID) {
        fail_msg("'%s' accepted as %lld", s, (long long)ms);
    }
    assert_int_equal(ms, -42);
    if (!strstr(errstr, why)) {
        fail_msg("'%s': message '%s' lacks '%s'", s, errstr, why);
    }
}

static void datetimes_in_every_accepted_form(void **state)
{
    (void)state;
    assert_int_equal(dt("1970-01-01T00:00:00Z"), 0);
    assert_int_equal(dt("2026-11-28T10:00:00Z"), 1795860000000LL);
    assert_int_equal(dt("2026-11-28t10:00:00z"), 1795860000000LL);
    assert_int_equal(dt("2026-11-28T10:00Z"), 1795860000000LL);
    assert_int_equal(dt("2026-11-28T10:00:00.000Z"), 1795860000000LL);
    assert_int_equal(dt("2026-11-28T10:00:00.5Z"), 1795860000500LL);
    assert_int_equal(dt("2026-11-28T10:00:00.123456789Z"), 1795860000123LL);
    assert_int_equal(dt("2026-11-28T10:00:00+02:00"), 1795852800000LL);
    assert_int_equal(dt("2026-11-28T10:00:00+0200"), 1795852800000LL);
    assert_int_equal(dt("2026-11-28T10:00:00-05:30"), 1795879800000LL);
    assert_int_equal(dt("2024-02-29T23:59:59.999Z"), 1709251199999LL);
}

static void bad_datetimes_are_refused_with_a_reason(void **state)
{
    (void)state;
    bad_dt("2026-11-28T10:00:00", "no time zone");
    bad_dt("2026-11-28", "expected");
    bad_dt("2026-11-28 10:00:00Z", "expected");
    bad_dt("2026-11-28T10:00:00ZZ", "expected");
    bad_dt("2026-11-28T10:00:00.Z", "expected");
    bad_dt("2026-11-28T10:00:00.1234567890Z", "expected");
    bad_dt("2026-11-28T10:00:00+2:00", "expected");
    bad_dt("26-11-28T10:00:00Z", "expected");
    bad_dt("yesterday", "expected");
    bad_dt("", "expected");
    bad_dt("2026-13-01T00:00:00Z", "does not exist");
    bad_dt("2023-02-29T00:00:00Z", "does not exist");
    bad_dt("2026-11-31T00:00:00Z", "does not exist");
    bad_dt("2026-11-28T24:00:00Z", "does not exist");
    bad_dt("2026-11-28T10:60:00Z", "does not exist");
    bad_dt("1969-12-31T23:59:59Z", "before 1970");
}

static int64_t dur(const char *s)
{
    int64_t ms = -42;

    if (akv_replay_parse_duration(s, &ms, errstr, sizeof(errstr)) != AKV_OK) {
        fail_msg("'%s' refused: %s", s, errstr);
    }
    return ms;
}

static void bad_dur(const char *s)
{
    int64_t ms = -42;

    if (akv_replay_parse_duration(s, &ms, errstr, sizeof(errstr)) !=
        AKV_ERR_INVALID) {
        fail_msg("'%s' accepted as %lld", s, (long long)ms);
    }
    assert_non_null(strstr(errstr, "bad duration"));
    assert_int_equal(ms, -42);
}

static void durations_simple_and_iso(void **state)
{
    (void)state;
    assert_int_equal(dur("90s"), 90000);
    assert_int_equal(dur("15m"), 900000);
    assert_int_equal(dur("2h"), 7200000);
    assert_int_equal(dur("1d"), 86400000);
    assert_int_equal(dur("500ms"), 500);
    assert_int_equal(dur("1h30m"), 5400000);
    assert_int_equal(dur("1d2h3m4s5ms"), 93784005);
    assert_int_equal(dur("1.5h"), 5400000);
    assert_int_equal(dur("0s"), 0);
    assert_int_equal(dur("PT15M"), 900000);
    assert_int_equal(dur("P1DT2H"), 93600000);
    assert_int_equal(dur("P2D"), 172800000);
    assert_int_equal(dur("PT0.5S"), 500);
    assert_int_equal(dur("pt1h30m"), 5400000);
    assert_int_equal(dur("P1DT2H3M4.25S"), 93784250);
    assert_int_equal(dur("36500d"), 36500LL * 86400000);
}

static void bad_durations_are_refused(void **state)
{
    (void)state;
    bad_dur("");
    bad_dur("15");     /* no unit */
    bad_dur("m");      /* no number */
    bad_dur("1x");     /* unknown unit */
    bad_dur("-5m");    /* negative */
    bad_dur("1h1h");   /* a unit twice */
    bad_dur("1h ");    /* trailing space */
    bad_dur("P");      /* nothing */
    bad_dur("PT");     /* nothing after T */
    bad_dur("P1H");    /* hours before T */
    bad_dur("PT1D");   /* days after T */
    bad_dur("PT1M1H"); /* wrong order */
    bad_dur("P1.5D");  /* a fraction of days */
    bad_dur("P1DT");   /* T without time */
    bad_dur("36600d"); /* over 100 years */
    bad_dur("99999999999999999999999s");
}

/* ------------------------------------------------------------------------
 * Partition lists
 */

static void partition_lists_parse_to_ranges(void **state)
{
    struct akv_prange *r = NULL;
    size_t n = 0;

    (void)state;
    assert_int_equal(
        akv_replay_parse_partitions("0,2,5-7", &r, &n, errstr, sizeof(errstr)),
        AKV_OK);
    assert_int_equal(n, 3);
    assert_int_equal(r[0].first, 0);
    assert_int_equal(r[0].last, 0);
    assert_int_equal(r[2].first, 5);
    assert_int_equal(r[2].last, 7);
    assert_true(akv_replay_prange_has(r, n, 6));
    assert_true(akv_replay_prange_has(r, n, 2));
    assert_false(akv_replay_prange_has(r, n, 1));
    assert_false(akv_replay_prange_has(r, n, 8));
    free(r);
}

static void bad_partition_lists_are_refused(void **state)
{
    static const char *const bad[] = {
        "",    ",",  "1,",   ",1",   "a",    "1,a",         "3-1",
        "1-",  "-1", "1 ,2", "1, 2", "1--2", "99999999999", "0-99999999999",
        "1;2", NULL,
    };
    struct akv_prange *r = NULL;
    size_t n = 0;
    size_t i;

    (void)state;
    for (i = 0; bad[i]; i++) {
        if (akv_replay_parse_partitions(bad[i], &r, &n, errstr,
                                        sizeof(errstr)) != AKV_ERR_INVALID) {
            fail_msg("'%s' accepted", bad[i]);
        }
        assert_null(r);
        assert_non_null(strstr(errstr, "bad partition list"));
    }
}

static void unknown_partitions_are_named(void **state)
{
    struct akv_kpart parts[4];
    struct akv_prange *r = NULL;
    size_t n = 0;
    int i;

    (void)state;
    memset(parts, 0, sizeof(parts));
    for (i = 0; i < 4; i++) {
        parts[i].partition = i;
    }
    assert_int_equal(
        akv_replay_parse_partitions("0-3", &r, &n, errstr, sizeof(errstr)),
        AKV_OK);
    assert_int_equal(akv_replay_partitions_exist(r, n, parts, 4, "t", errstr,
                                                 sizeof(errstr)),
                     AKV_OK);
    free(r);
    assert_int_equal(
        akv_replay_parse_partitions("1,2-5", &r, &n, errstr, sizeof(errstr)),
        AKV_OK);
    assert_int_equal(akv_replay_partitions_exist(r, n, parts, 4, "t", errstr,
                                                 sizeof(errstr)),
                     AKV_ERR_INVALID);
    assert_non_null(strstr(errstr, "unknown partition 4"));
    assert_non_null(strstr(errstr, "0-3"));
    free(r);
    assert_int_equal(akv_replay_parse_partitions("0-2000000000", &r, &n, errstr,
                                                 sizeof(errstr)),
                     AKV_OK);
    assert_int_equal(akv_replay_partitions_exist(r, n, parts, 4, "t", errstr,
                                                 sizeof(errstr)),
                     AKV_ERR_INVALID);
    assert_non_null(strstr(errstr, "unknown partition 4"));
    free(r);
}

/* ------------------------------------------------------------------------
 * Options
 */

static akv_err_t opt(struct akv_replay_opts *o, const char *name,
                     const char *arg)
{
    return akv_replay_opt(o, name, arg, errstr, sizeof(errstr));
}

static void exactly_one_mode_per_replay(void **state)
{
    struct akv_replay_opts o;

    (void)state;
    memset(&o, 0, sizeof(o));
    assert_int_equal(akv_replay_check(&o, "replay", errstr, sizeof(errstr)),
                     AKV_ERR_INVALID);
    assert_non_null(strstr(errstr, "--to-earliest"));

    assert_int_equal(opt(&o, "to-earliest", NULL), AKV_OK);
    assert_int_equal(akv_replay_check(&o, "replay", errstr, sizeof(errstr)),
                     AKV_OK);
    assert_int_equal(opt(&o, "shift-by", "-5"), AKV_ERR_INVALID);
    assert_non_null(strstr(errstr, "--to-earliest and --shift-by"));
    assert_int_equal(opt(&o, "to-earliest", NULL), AKV_ERR_INVALID);
}

static void mode_arguments_are_checked(void **state)
{
    struct akv_replay_opts o;

    (void)state;
    memset(&o, 0, sizeof(o));
    assert_int_equal(opt(&o, "to-offset", "-1"), AKV_ERR_INVALID);
    assert_int_equal(opt(&o, "to-offset", "12x"), AKV_ERR_INVALID);
    assert_int_equal(opt(&o, "shift-by", ""), AKV_ERR_INVALID);
    assert_int_equal(opt(&o, "shift-by", " 5"), AKV_ERR_INVALID);
    assert_int_equal(opt(&o, "to-datetime", "2026-11-28"), AKV_ERR_INVALID);
    assert_int_equal(opt(&o, "by-duration", "15"), AKV_ERR_INVALID);
    assert_int_equal(opt(&o, "partitions", "1,,2"), AKV_ERR_INVALID);
    assert_int_equal(o.modes, 0);

    assert_int_equal(opt(&o, "shift-by", "-25"), AKV_OK);
    assert_int_equal(o.mode, AKV_REPLAY_SHIFT_BY);
    assert_int_equal(o.value, -25);
    memset(&o, 0, sizeof(o));
    assert_int_equal(opt(&o, "by-duration", "PT15M"), AKV_OK);
    assert_int_equal(o.value, 900000);
    assert_int_equal(opt(&o, "partitions", "0,2"), AKV_OK);
    assert_int_equal(opt(&o, "partitions", "1"), AKV_ERR_INVALID);
}

static void options_belong_to_their_command(void **state)
{
    struct akv_replay_opts o;

    (void)state;
    memset(&o, 0, sizeof(o));
    assert_int_equal(opt(&o, "execute", NULL), AKV_OK);
    assert_int_equal(akv_replay_check(&o, "lag", errstr, sizeof(errstr)),
                     AKV_ERR_INVALID);
    assert_non_null(strstr(errstr, "--execute is an option of replay"));

    memset(&o, 0, sizeof(o));
    assert_int_equal(opt(&o, "from", "earliest"), AKV_OK);
    assert_int_equal(akv_replay_check(&o, "run", errstr, sizeof(errstr)),
                     AKV_OK);
    assert_int_equal(akv_replay_check(&o, "replay", errstr, sizeof(errstr)),
                     AKV_ERR_INVALID);
    assert_non_null(strstr(errstr, "--from is an option of run"));

    memset(&o, 0, sizeof(o));
    assert_int_equal(opt(&o, "to-latest", NULL), AKV_OK);
    assert_int_equal(akv_replay_check(&o, "run", errstr, sizeof(errstr)),
                     AKV_ERR_INVALID);
}

static void from_takes_earliest_latest_or_a_datetime(void **state)
{
    struct akv_replay_opts o;

    (void)state;
    memset(&o, 0, sizeof(o));
    assert_int_equal(opt(&o, "from", "latest"), AKV_OK);
    assert_int_equal(o.mode, AKV_REPLAY_TO_LATEST);
    memset(&o, 0, sizeof(o));
    assert_int_equal(opt(&o, "from", "2026-11-28T10:00:00Z"), AKV_OK);
    assert_int_equal(o.mode, AKV_REPLAY_TO_DATETIME);
    assert_int_equal(o.value, 1795860000000LL);
    memset(&o, 0, sizeof(o));
    assert_int_equal(opt(&o, "from", "beginning"), AKV_ERR_INVALID);
    assert_non_null(strstr(errstr, "earliest, latest or a date"));
}

/* ------------------------------------------------------------------------
 * Planning
 */

static struct akv_replay_row plan(enum akv_replay_mode mode, long long value,
                                  int64_t committed, int start_latest,
                                  int64_t time_offset)
{
    struct akv_replay_opts o;
    struct akv_kpart p = {3, committed, 100, 200, -1};
    struct akv_replay_row row;

    memset(&o, 0, sizeof(o));
    o.mode = mode;
    o.value = value;
    akv_replay_plan(&o, &p, start_latest, time_offset, &row);
    assert_int_equal(row.partition, 3);
    assert_int_equal(row.current, committed);
    assert_int_equal(row.low, 100);
    assert_int_equal(row.high, 200);
    return row;
}

static void every_mode_lands_in_the_log(void **state)
{
    struct akv_replay_row r;

    (void)state;
    r = plan(AKV_REPLAY_TO_EARLIEST, 0, 150, 0, 0);
    assert_int_equal(r.target, 100);
    assert_int_equal(r.clamped, 0);
    r = plan(AKV_REPLAY_TO_LATEST, 0, 150, 0, 0);
    assert_int_equal(r.target, 200);
    r = plan(AKV_REPLAY_TO_OFFSET, 120, 150, 0, 0);
    assert_int_equal(r.target, 120);
    r = plan(AKV_REPLAY_SHIFT_BY, -20, 150, 0, 0);
    assert_int_equal(r.target, 130);
    r = plan(AKV_REPLAY_SHIFT_BY, 20, 150, 0, 0);
    assert_int_equal(r.target, 170);
    r = plan(AKV_REPLAY_TO_DATETIME, 0, 150, 0, 123);
    assert_int_equal(r.target, 123);
    r = plan(AKV_REPLAY_BY_DURATION, 60000, -1, 0, 177);
    assert_int_equal(r.target, 177);
}

static void offsets_outside_the_log_are_clamped(void **state)
{
    struct akv_replay_row r;

    (void)state;
    r = plan(AKV_REPLAY_TO_OFFSET, 5, 150, 0, 0);
    assert_int_equal(r.target, 100);
    assert_int_equal(r.wanted, 5);
    assert_int_equal(r.clamped, -1);
    r = plan(AKV_REPLAY_TO_OFFSET, 500, 150, 0, 0);
    assert_int_equal(r.target, 200);
    assert_int_equal(r.wanted, 500);
    assert_int_equal(r.clamped, 1);
    r = plan(AKV_REPLAY_SHIFT_BY, -1000, 150, 0, 0);
    assert_int_equal(r.target, 100);
    assert_int_equal(r.clamped, -1);
    r = plan(AKV_REPLAY_SHIFT_BY, 51, 150, 0, 0);
    assert_int_equal(r.target, 200);
    assert_int_equal(r.clamped, 1);
    r = plan(AKV_REPLAY_SHIFT_BY, INT64_MAX, 150, 0, 0);
    assert_int_equal(r.target, 200);
    r = plan(AKV_REPLAY_SHIFT_BY, INT64_MIN, 150, 0, 0);
    assert_int_equal(r.target, 100);
    /* a committed offset the log no longer holds */
    r = plan(AKV_REPLAY_SHIFT_BY, 10, 40, 0, 0);
    assert_int_equal(r.target, 100);
    assert_int_equal(r.wanted, 50);
}

static void shift_without_a_commit_starts_where_the_group_would(void **state)
{
    struct akv_replay_row r;

    (void)state;
    r = plan(AKV_REPLAY_SHIFT_BY, 10, -1, 0, 0);
    assert_int_equal(r.target, 110);
    r = plan(AKV_REPLAY_SHIFT_BY, -10, -1, 1, 0);
    assert_int_equal(r.target, 190);
}

/* ------------------------------------------------------------------------
 * Timestamp search over a fake log: offsets with gaps, timestamps that
 * grow with the offset.
 */

struct fake_log {
    const int64_t *offsets;
    const int64_t *ts;
    size_t n;
    int reads;
    int scans;
};

static akv_err_t fake_read(void *opaque, int64_t offset, int64_t *msg_offset,
                           int64_t *ts, char *e, size_t es)
{
    struct fake_log *l = opaque;
    size_t i;

    (void)e;
    (void)es;
    l->reads++;
    *msg_offset = -1;
    *ts = -1;
    for (i = 0; i < l->n; i++) {
        if (l->offsets[i] >= offset) {
            *msg_offset = l->offsets[i];
            *ts = l->ts[i];
            break;
        }
    }
    return AKV_OK;
}

static akv_err_t fake_scan(void *opaque, int64_t from, int64_t to, int64_t ts,
                           int64_t *found, char *e, size_t es)
{
    struct fake_log *l = opaque;
    size_t i;

    (void)e;
    (void)es;
    l->scans++;
    *found = to;
    for (i = 0; i < l->n; i++) {
        if (l->offsets[i] >= from && l->offsets[i] < to && l->ts[i] >= ts) {
            *found = l->offsets[i];
            break;
        }
    }
    return AKV_OK;
}

/* The right answer, the slow way. */
static int64_t first_at_or_after(const struct fake_log *l, int64_t ts,
                                 int64_t high)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (l->ts[i] >= ts) {
            return l->offsets[i];
        }
    }
    return high;
}

static int64_t search(struct fake_log *l, int64_t low, int64_t high, int64_t ts,
                      int64_t answer, int *searched)
{
    int64_t off = -42;

    assert_int_equal(akv_kadmin_time_search(low, high, ts, answer, fake_read,
                                            fake_scan, l, &off, searched,
                                            errstr, sizeof(errstr)),
                     AKV_OK);
    return off;
}

static void a_broker_answer_that_holds_is_kept(void **state)
{
    static const int64_t offs[] = {10, 11, 12, 13, 14};
    static const int64_t ts[] = {1000, 2000, 3000, 4000, 5000};
    struct fake_log l = {offs, ts, 5, 0, 0};
    int searched = -1;

    (void)state;
    assert_int_equal(search(&l, 10, 15, 3000, 12, &searched), 12);
    assert_int_equal(searched, 0);
    assert_int_equal(l.scans, 0);
    assert_true(l.reads <= 2);
    /* the end, rightly: every message is older */
    assert_int_equal(search(&l, 10, 15, 9000, -1, &searched), 15);
    assert_int_equal(searched, 0);
    /* the start, rightly: no message before it to check */
    assert_int_equal(search(&l, 10, 15, 5, 10, &searched), 10);
    assert_int_equal(searched, 0);
}

static void the_mocks_answer_is_caught_and_searched(void **state)
{
    static const int64_t offs[] = {10, 11, 12, 13, 14};
    static const int64_t ts[] = {1000, 2000, 3000, 4000, 5000};
    struct fake_log l = {offs, ts, 5, 0, 0};
    int searched = -1;
    int64_t t;

    (void)state;
    /* librdkafka's mock answers the log end (-1) for every timestamp */
    for (t = 0; t <= 6000; t += 500) {
        int64_t want = first_at_or_after(&l, t, 15);

        assert_int_equal(search(&l, 10, 15, t, -1, &searched), want);
        assert_int_equal(searched, want != 15);
    }
    /* an answer one too far, one too early, before the log */
    assert_int_equal(search(&l, 10, 15, 3000, 13, &searched), 12);
    assert_int_equal(searched, 1);
    assert_int_equal(search(&l, 10, 15, 3000, 11, &searched), 12);
    assert_int_equal(searched, 1);
    assert_int_equal(search(&l, 10, 15, 3000, 3, &searched), 12);
    assert_int_equal(searched, 1);
}

static void a_big_log_with_gaps_costs_few_reads(void **state)
{
    enum { N = 100000 };
    int64_t *offs = malloc(N * sizeof(*offs));
    int64_t *ts = malloc(N * sizeof(*ts));
    struct fake_log l = {offs, ts, N, 0, 0};
    int64_t high;
    int searched;
    size_t i;
    int k;

    (void)state;
    assert_non_null(offs);
    assert_non_null(ts);
    /* every third offset missing (compaction), runs of equal timestamps */
    for (i = 0; i < N; i++) {
        offs[i] = 1000 + (int64_t)i + (int64_t)i / 2;
        ts[i] = 1700000000000LL + (int64_t)(i / 3) * 7;
    }
    high = offs[N - 1] + 1;
    for (k = 0; k < 200; k++) {
        int64_t t = 1700000000000LL - 50 + (int64_t)k * 1171;
        int64_t want = first_at_or_after(&l, t, high);

        l.reads = 0;
        l.scans = 0;
        assert_int_equal(search(&l, 1000, high, t, -1, &searched), want);
        assert_true(l.reads <= 24);
        assert_true(l.scans <= 1);
    }
    free(offs);
    free(ts);
}

static void an_empty_log_ends_where_it_starts(void **state)
{
    struct fake_log l = {NULL, NULL, 0, 0, 0};
    int searched = -1;

    (void)state;
    assert_int_equal(search(&l, 7, 7, 123, -1, &searched), 7);
    assert_int_equal(searched, 0);
    assert_int_equal(l.reads, 0);
}

/* ------------------------------------------------------------------------
 * Member assignments
 */

static size_t put16(unsigned char *b, int v)
{
    b[0] = (unsigned char)(v >> 8);
    b[1] = (unsigned char)v;
    return 2;
}

static size_t put32(unsigned char *b, int32_t v)
{
    b[0] = (unsigned char)((uint32_t)v >> 24);
    b[1] = (unsigned char)((uint32_t)v >> 16);
    b[2] = (unsigned char)((uint32_t)v >> 8);
    b[3] = (unsigned char)v;
    return 4;
}

static size_t put_topic(unsigned char *b, const char *t, const int32_t *p,
                        int n)
{
    size_t len = put16(b, (int)strlen(t));
    int i;

    memcpy(b + len, t, strlen(t));
    len += strlen(t);
    len += put32(b + len, n);
    for (i = 0; i < n; i++) {
        len += put32(b + len, p[i]);
    }
    return len;
}

static void assignments_name_the_partitions_of_our_topic(void **state)
{
    static const int32_t ours[] = {0, 3};
    static const int32_t theirs[] = {1, 2};
    unsigned char b[256];
    int32_t out[8];
    size_t len = 0;
    size_t cut;

    (void)state;
    len += put16(b + len, 1);
    len += put32(b + len, 2);
    len += put_topic(b + len, "other.topic", theirs, 2);
    len += put_topic(b + len, "authentik.events", ours, 2);
    len += put32(b + len, 3); /* user data */
    memcpy(b + len, "abc", 3);
    len += 3;
    assert_int_equal(
        akv_kadmin_assignment_partitions(b, len, "authentik.events", out, 8),
        2);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 3);
    assert_int_equal(
        akv_kadmin_assignment_partitions(b, len, "authentik", out, 8), 0);
    assert_int_equal(akv_kadmin_assignment_partitions(b, 0, "x", out, 8), 0);
    /* cut anywhere inside the topics: malformed, never read past */
    for (cut = 1; cut < len - 7; cut++) {
        assert_int_equal(akv_kadmin_assignment_partitions(
                             b, cut, "authentik.events", out, 8),
                         -1);
    }
}

/* Offsets files: what --export writes, what --from-file reads. */
static void offsets_files_are_read_strictly(void **state)
{
    static const struct {
        const char *text;
        size_t n; /* lines read; 0 with a needle: refused */
        const char *needle;
    } rows[] = {
        {"t,0,10\nt,2,0\n", 2, NULL},
        {"t,0,10\r\n\nt,1,7", 2, NULL},
        {"", 0, NULL},
        {"u,0,10\n", 0, "line 1: topic 'u', not t"},
        {"t,0,10\nt,0,11\n", 0, "line 2: partition 0 again"},
        {"t,0\n", 0, "line 1: expected topic,partition,offset"},
        {"t,0,1,2\n", 0, "line 1: expected topic,partition,offset"},
        {"t,x,1\n", 0, "must be numbers"},
        {"t,1,-5\n", 0, "must be numbers"},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct akv_replay_offset *v = NULL;
        size_t n = 0;
        char why[256] = "";
        akv_err_t err = akv_replay_parse_offsets(rows[i].text, "t", &v, &n, why,
                                                 sizeof(why));

        if (rows[i].needle) {
            if (err != AKV_ERR_INVALID || !strstr(why, rows[i].needle)) {
                fail_msg("%zu: %d '%s', wanted '%s'", i, err, why,
                         rows[i].needle);
            }
        } else if (err != AKV_OK || n != rows[i].n) {
            fail_msg("%zu: %d '%s', %zu lines", i, err, why, n);
        }
        free(v);
    }
}

static void to_current_keeps_where_the_group_is(void **state)
{
    struct akv_replay_opts o;
    struct akv_kpart committed = {0, 40, 10, 90, -1};
    struct akv_kpart none = {1, -1, 10, 90, -1};
    struct akv_replay_row r;

    (void)state;
    memset(&o, 0, sizeof(o));
    o.mode = AKV_REPLAY_TO_CURRENT;
    akv_replay_plan(&o, &committed, 0, 0, &r);
    assert_int_equal(r.target, 40);
    akv_replay_plan(&o, &none, 0, 0, &r);
    assert_int_equal(r.target, 10); /* auto_offset_reset earliest */
    akv_replay_plan(&o, &none, 1, 0, &r);
    assert_int_equal(r.target, 90); /* latest */
    o.mode = AKV_REPLAY_FROM_FILE;
    akv_replay_plan(&o, &committed, 0, 95, &r);
    assert_int_equal(r.target, 90); /* clamped to the log end */
    assert_int_equal(r.clamped, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(datetimes_in_every_accepted_form),
        cmocka_unit_test(bad_datetimes_are_refused_with_a_reason),
        cmocka_unit_test(durations_simple_and_iso),
        cmocka_unit_test(bad_durations_are_refused),
        cmocka_unit_test(partition_lists_parse_to_ranges),
        cmocka_unit_test(bad_partition_lists_are_refused),
        cmocka_unit_test(unknown_partitions_are_named),
        cmocka_unit_test(exactly_one_mode_per_replay),
        cmocka_unit_test(mode_arguments_are_checked),
        cmocka_unit_test(options_belong_to_their_command),
        cmocka_unit_test(from_takes_earliest_latest_or_a_datetime),
        cmocka_unit_test(every_mode_lands_in_the_log),
        cmocka_unit_test(offsets_outside_the_log_are_clamped),
        cmocka_unit_test(shift_without_a_commit_starts_where_the_group_would),
        cmocka_unit_test(a_broker_answer_that_holds_is_kept),
        cmocka_unit_test(the_mocks_answer_is_caught_and_searched),
        cmocka_unit_test(a_big_log_with_gaps_costs_few_reads),
        cmocka_unit_test(an_empty_log_ends_where_it_starts),
        cmocka_unit_test(assignments_name_the_partitions_of_our_topic),
        cmocka_unit_test(offsets_files_are_read_strictly),
        cmocka_unit_test(to_current_keeps_where_the_group_is),
    };

    return cmocka_run_group_tests_name("replay", tests, NULL, NULL);
}
