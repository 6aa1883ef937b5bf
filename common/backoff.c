/*
 * backoff — full-jitter exponential backoff.
 */
#include "backoff.h"

#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

long long akv_backoff_delay(long long initial_ms, long long cap_ms,
                            unsigned attempt, uint64_t rnd)
{
    long long ceiling = initial_ms;

    if (initial_ms <= 0 || cap_ms <= 0) {
        return 0;
    }
    while (attempt-- > 0 && ceiling < cap_ms) {
        ceiling *= 2;
    }
    if (ceiling > cap_ms) {
        ceiling = cap_ms;
    }
    return (long long)(rnd % (uint64_t)(ceiling + 1));
}

uint64_t akv_backoff_random(void)
{
    uint64_t v = 0;

    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
        v = (uint64_t)time(NULL) * 6364136223846793005ULL + (uint64_t)clock();
    }
    return v;
}
