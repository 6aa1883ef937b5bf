/*
 * num — checked whole numbers from text.
 */
#include "num.h"

#include <errno.h>
#include <stdlib.h>

int akv_parse_long(const char *s, long min, long max, long *out)
{
    char *end = NULL;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        return -1;
    }
    *out = v;
    return 0;
}
