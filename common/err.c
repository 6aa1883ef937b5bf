/*
 * err — error names and the errstr formatting helper.
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

akv_err_t akv_errf(akv_err_t err, char *errstr, size_t errstr_size,
                   const char *fmt, ...)
{
    va_list ap;

    if (errstr && errstr_size > 0) {
        va_start(ap, fmt);
        vsnprintf(errstr, errstr_size, fmt, ap);
        va_end(ap);
    }
    return err;
}
