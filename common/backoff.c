/*
 * backoff — full-jitter exponential backoff and Retry-After parsing.
 */
#include "backoff.h"

#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

long long akv_backoff_delay(long long initial_ms, long long cap_ms,
                            double multiplier, unsigned attempt, uint64_t rnd)
{
    double ceiling = (double)initial_ms;
    uint64_t top;

    if (initial_ms <= 0 || cap_ms <= 0) {
        return 0;
    }
    if (!(multiplier >= 1.0)) { /* NaN too */
        multiplier = 1.0;
    }
    while (attempt-- > 0 && ceiling < (double)cap_ms && multiplier > 1.0) {
        ceiling *= multiplier;
    }
    /* (double)cap_ms may round up past the cap itself (near 2^63 it would
     * also overflow the conversion back): compare again as integers. */
    top = (uint64_t)cap_ms;
    if (ceiling < (double)cap_ms && (uint64_t)ceiling < top) {
        top = (uint64_t)ceiling;
    }
    return (long long)(rnd % (top + 1));
}

uint64_t akv_backoff_random(void)
{
    uint64_t v = 0;

    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
        v = (uint64_t)time(NULL) * 6364136223846793005ULL + (uint64_t)clock();
    }
    return v;
}

long long akv_retry_after_ms(const char *value, time_t now, long long cap_ms)
{
    const char *p = value;
    unsigned long long secs = 0;
    time_t when;

    if (!value) {
        return -1;
    }
    while (isspace((unsigned char)*p)) {
        p++;
    }
    if (!*p) {
        return -1;
    }
    if (isdigit((unsigned char)*p)) {
        /* delta-seconds: digits only; saturate instead of overflowing. */
        for (; isdigit((unsigned char)*p); p++) {
            if (secs < 1000000000ULL) {
                secs = secs * 10 + (unsigned long long)(*p - '0');
            }
        }
        while (isspace((unsigned char)*p)) {
            p++;
        }
        if (*p) {
            return -1;
        }
        if (secs * 1000ULL > (unsigned long long)cap_ms) {
            return cap_ms;
        }
        return (long long)(secs * 1000ULL);
    }
    /* curl_getdate() knows all three HTTP-date forms; it is pure. */
    when = curl_getdate(p, &now);
    if (when == (time_t)-1) {
        return -1;
    }
    if (when <= now) {
        return 0;
    }
    if ((long long)(when - now) > cap_ms / 1000) {
        return cap_ms;
    }
    return (long long)(when - now) * 1000;
}
