/*
 * wipe — zero, then free.
 */
#include "wipe.h"

#include <stdlib.h>
#include <string.h>

void akv_wipe_free(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}
