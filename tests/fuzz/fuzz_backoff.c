/*
 * fuzz_backoff — the retry delays stay within their bounds for any input.
 *
 * Input, as text:
 *   line 1: initial_ms cap_ms multiplier attempt rnd   (akv_backoff_delay)
 *   line 2: now cap_ms                                 (akv_retry_after_ms)
 *   the rest: a Retry-After header value
 * Missing numbers take the worker's defaults; the attempt is taken modulo
 * 1000001.
 *
 * Properties: a delay is 0 when initial or cap is not positive, else in
 * [0, min(cap, initial * multiplier^attempt)]; a Retry-After wait is -1
 * or in [0, cap], -1 exactly for an empty value, min(N s, cap) for
 * delta-seconds N, and a lower cap never lengthens a wait.
 */
#include "fuzzutil.h"

#include "backoff.h"

#include <limits.h>

static void check_delay(const char *line)
{
    char *p = (char *)line;
    long long initial = 1000;
    long long cap = 60000;
    double mult = 2.0;
    unsigned long attempt = 3;
    unsigned long long rnd = 0x9E3779B97F4A7C15ULL;
    long double bound;
    long long d;
    unsigned long i;

    if (*p) {
        initial = strtoll(p, &p, 10);
        cap = strtoll(p, &p, 10);
        mult = strtod(p, &p);
        attempt = strtoul(p, &p, 10);
        rnd = strtoull(p, &p, 10);
    }
    /* The delay takes time linear in the attempt while the ceiling stays
     * under the cap (a multiplier of 1): keep to a million retries, the
     * most sync.max_attempts allows, so that one input takes milliseconds,
     * not seconds. */
    attempt %= 1000001;
    d = akv_backoff_delay(initial, cap, mult, (unsigned)attempt, rnd);
    if (initial <= 0 || cap <= 0) {
        FUZZ_CHECK(d == 0, "delay %lld with initial %lld, cap %lld", d, initial,
                   cap);
        return;
    }
    /* The ceiling computed exactly enough, stopping where the cap is
     * reached as the function does. */
    bound = (long double)initial;
    for (i = 0; i < (unsigned)attempt && bound < (long double)cap; i++) {
        bound *= !(mult >= 1.0) ? 1.0L : (long double)mult; /* NaN: 1 */
    }
    if (bound > (long double)cap) {
        bound = (long double)cap;
    }
    FUZZ_CHECK(d >= 0 && d <= cap && (long double)d <= bound,
               "delay %lld out of [0, %.0Lf] (initial %lld, cap %lld, "
               "multiplier %g, attempt %u)",
               d, bound, initial, cap, mult, (unsigned)attempt);
}

/* The value of an all-digit Retry-After with at most 9 significant
 * digits, or -1. */
static long long delta_seconds(const char *v)
{
    static const char space[] = " \t\n\v\f\r";
    long long secs = 0;
    int digits = 0;

    while (*v && strchr(space, *v)) {
        v++;
    }
    if (!(*v >= '0' && *v <= '9')) {
        return -1;
    }
    for (; *v >= '0' && *v <= '9'; v++) {
        secs = secs * 10 + (*v - '0');
        digits += secs > 0;
        if (digits > 9) {
            return -1;
        }
    }
    while (*v && strchr(space, *v)) {
        v++;
    }
    return *v ? -1 : secs;
}

static void check_retry_after(const char *line, const char *value)
{
    char *p = (char *)line;
    long long now = 1445412480; /* Wed, 21 Oct 2015 07:28:00 GMT */
    long long cap = 300000;
    long long w;
    long long lower;
    long long secs;
    const char *v;

    if (*p) {
        now = strtoll(p, &p, 10);
        cap = strtoll(p, &p, 10);
    }
    /* now is the wall clock: keep it between 1970 and the year 4000, where
     * the worker runs; cap is a configured maximum: not negative. */
    now = (long long)((unsigned long long)now % 64000000000ULL);
    if (cap < 0) {
        cap = -(cap + 1);
    }
    w = akv_retry_after_ms(value, (time_t)now, cap);
    FUZZ_CHECK(w == -1 || (w >= 0 && w <= cap),
               "Retry-After \"%s\" gave %lld, cap %lld", value, w, cap);
    for (v = value; *v && strchr(" \t\n\v\f\r", *v); v++) {
    }
    if (!*v) {
        FUZZ_CHECK(w == -1, "empty Retry-After \"%s\" gave %lld", value, w);
    }
    secs = delta_seconds(value);
    if (secs >= 0) {
        long long want = secs > cap / 1000 ? cap : secs * 1000;

        FUZZ_CHECK(w == want, "Retry-After \"%s\" gave %lld, not %lld", value,
                   w, want);
    }
    lower = akv_retry_after_ms(value, (time_t)now, cap / 2);
    FUZZ_CHECK((w == -1) == (lower == -1) && lower <= w,
               "Retry-After \"%s\": %lld with cap %lld, %lld with cap %lld",
               value, w, cap, lower, cap / 2);
    FUZZ_CHECK(akv_retry_after_ms(value, (time_t)now, cap) == w,
               "Retry-After \"%s\" is not pure", value);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *delay = fuzz_take_line(&data, &size);
    char *retry = fuzz_take_line(&data, &size);
    char *value = fuzz_cstr(data, size);

    check_delay(delay);
    check_retry_after(retry, value);
    free(value);
    free(retry);
    free(delay);
    return 0;
}
