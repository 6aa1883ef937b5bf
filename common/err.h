/*
 * err — the error codes every ak2vault module returns.
 *
 * Functions return an akv_err_t (0 = success) and put the human-readable
 * detail in a caller-supplied buffer (char *errstr, size_t errstr_size), so
 * no module allocates or keeps global state to report an error.
 */
#ifndef AKV_COMMON_ERR_H
#define AKV_COMMON_ERR_H

#include <stddef.h>

typedef enum {
    AKV_OK = 0,
    AKV_ERR_NOMEM,     /**< allocation failed */
    AKV_ERR_CONFIG,    /**< invalid configuration */
    AKV_ERR_PARSE,     /**< malformed input (JSON, number, ...) */
    AKV_ERR_INVALID,   /**< well-formed but unacceptable input */
    AKV_ERR_IO,        /**< local file or system call failed */
    AKV_ERR_TRANSPORT, /**< connect, TLS, timeout, reset: no HTTP answer */
    AKV_ERR_TOOBIG,    /**< a bounded buffer refused to grow */
    AKV_ERR_KAFKA,     /**< librdkafka reported an error */
} akv_err_t;

/**
 * @brief snprintf into an error buffer; a NULL or empty buffer is ignored.
 * @returns \p err, so callers can write `return akv_errf(AKV_ERR_X, ...)`.
 */
akv_err_t akv_errf(akv_err_t err, char *errstr, size_t errstr_size,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif /* AKV_COMMON_ERR_H */
