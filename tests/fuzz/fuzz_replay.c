/*
 * fuzz_replay — the option parsers of `ak2vault replay` and `run --from`,
 * each on the whole input as one argument.
 *
 * Properties: no crash or leak; a refusal always explains itself; a date
 * and time is at or after 1970 and survives akv_replay_format_time() and
 * a second parse (which checks days_from_civil() against gmtime_r()); a
 * duration lies in [0, 100 years], equals N units for the plain "N<unit>"
 * form and does not depend on the case of an ISO 8601 form; a partition
 * list has one range per comma-separated item, each ordered and
 * non-negative, and reads back the same when printed.
 */
#include "fuzzutil.h"

#include "replay.h"

#include <ctype.h>
#include <inttypes.h>

#define MAX_DURATION_MS (100LL * 365 * 24 * 3600 * 1000)

static void check_datetime(const char *s)
{
    char errstr[512] = "";
    char text[64];
    int64_t ms = -1;
    int64_t again = -1;

    if (akv_replay_parse_datetime(s, &ms, errstr, sizeof(errstr)) != AKV_OK) {
        FUZZ_CHECK(errstr[0] != '\0', "refused date without a message");
        return;
    }
    FUZZ_CHECK(ms >= 0, "date and time before 1970: %" PRId64, ms);
    akv_replay_format_time(ms, text, sizeof(text));
    /* Years past 9999 have no four-digit form to read back. */
    if (strlen(text) == 24) {
        FUZZ_CHECK(akv_replay_parse_datetime(text, &again, errstr,
                                             sizeof(errstr)) == AKV_OK &&
                       again == ms,
                   "\"%s\" is %" PRId64
                   " ms, printed \"%s\", read back %" PRId64,
                   s, ms, text, again);
    }
}

/* "N<unit>" with up to 12 digits: its value in ms, else -1. */
static long long plain_duration(const char *s)
{
    static const struct {
        const char *unit;
        long long ms;
    } units[] = {{"ms", 1},
                 {"s", 1000},
                 {"m", 60000},
                 {"h", 3600000LL},
                 {"d", 86400000LL}};
    long long n = 0;
    int digits = 0;
    size_t i;

    for (; isdigit((unsigned char)*s); s++) {
        n = n * 10 + (*s - '0');
        if (++digits > 12) {
            return -1;
        }
    }
    for (i = 0; digits && i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(s, units[i].unit) == 0) {
            return n > MAX_DURATION_MS / units[i].ms ? -1 : n * units[i].ms;
        }
    }
    return -1;
}

static void check_duration(const char *s)
{
    char errstr[512] = "";
    int64_t ms = -1;
    akv_err_t err;
    long long want;

    err = akv_replay_parse_duration(s, &ms, errstr, sizeof(errstr));
    want = plain_duration(s);
    if (err != AKV_OK) {
        FUZZ_CHECK(errstr[0] != '\0', "refused duration without a message");
        FUZZ_CHECK(want < 0, "\"%s\" refused, but it is %lld ms", s, want);
    } else {
        FUZZ_CHECK(ms >= 0 && ms <= MAX_DURATION_MS,
                   "duration \"%s\" is %" PRId64 " ms", s, ms);
        FUZZ_CHECK(want < 0 || ms == want,
                   "duration \"%s\" is %" PRId64 " ms, not %lld", s, ms, want);
    }
    if (*s == 'P' || *s == 'p') {
        char *upper = fuzz_cstr((const uint8_t *)s, strlen(s));
        int64_t ms2 = -1;
        akv_err_t err2;
        size_t i;

        for (i = 0; upper[i]; i++) {
            upper[i] = (char)toupper((unsigned char)upper[i]);
        }
        err2 = akv_replay_parse_duration(upper, &ms2, errstr, sizeof(errstr));
        FUZZ_CHECK((err == AKV_OK) == (err2 == AKV_OK) &&
                       (err != AKV_OK || ms == ms2),
                   "ISO duration \"%s\" and \"%s\" differ", s, upper);
        free(upper);
    }
}

static void check_partitions(const char *s)
{
    static struct akv_prange unset;
    char errstr[512] = "";
    struct akv_prange *r = &unset;
    struct akv_prange *r2 = NULL;
    size_t n = 99;
    size_t n2 = 0;
    size_t items = 1;
    size_t i;
    char *text;
    size_t cap;
    size_t o = 0;

    if (akv_replay_parse_partitions(s, &r, &n, errstr, sizeof(errstr)) !=
        AKV_OK) {
        FUZZ_CHECK(errstr[0] != '\0', "refused partitions without a message");
        FUZZ_CHECK(r == NULL && n == 0, "refused partitions left %zu ranges",
                   n);
        return;
    }
    for (i = 0; s[i]; i++) {
        items += s[i] == ',';
    }
    FUZZ_CHECK(r != NULL && n == items, "\"%s\": %zu ranges for %zu items", s,
               n, items);
    cap = n * 24 + 1;
    text = malloc(cap);
    if (!text) {
        abort();
    }
    text[0] = '\0';
    for (i = 0; i < n; i++) {
        FUZZ_CHECK(r[i].first >= 0 && r[i].first <= r[i].last,
                   "\"%s\": range %zu is %d-%d", s, i, (int)r[i].first,
                   (int)r[i].last);
        FUZZ_CHECK(akv_replay_prange_has(r, n, r[i].first) &&
                       akv_replay_prange_has(r, n, r[i].last),
                   "\"%s\": range %zu does not hold its ends", s, i);
        o += (size_t)snprintf(text + o, cap - o, "%s%d-%d", i ? "," : "",
                              (int)r[i].first, (int)r[i].last);
    }
    FUZZ_CHECK(akv_replay_parse_partitions(text, &r2, &n2, errstr,
                                           sizeof(errstr)) == AKV_OK &&
                   n2 == n && memcmp(r, r2, n * sizeof(*r)) == 0,
               "\"%s\" printed as \"%s\" reads back differently", s, text);
    free(text);
    free(r2);
    free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_cstr(data, size);

    check_datetime(s);
    check_duration(s);
    check_partitions(s);
    free(s);
    return 0;
}
