/*
 * err — error names and the errstr formatting helper.
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>

const char *akv_err_name(akv_err_t err)
{
    switch (err) {
    case AKV_OK:
        return "ok";
    case AKV_ERR_NOMEM:
        return "nomem";
    case AKV_ERR_CONFIG:
        return "config";
    case AKV_ERR_PARSE:
        return "parse";
    case AKV_ERR_INVALID:
        return "invalid";
    case AKV_ERR_IO:
        return "io";
    case AKV_ERR_TRANSPORT:
        return "transport";
    case AKV_ERR_TOOBIG:
        return "toobig";
    case AKV_ERR_KAFKA:
        return "kafka";
    }
    return "unknown";
}

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
