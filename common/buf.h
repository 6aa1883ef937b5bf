/*
 * buf — a growable byte buffer that refuses to grow past a limit.
 *
 * Everything read from the network lands in one of these, so a broken or
 * hostile peer can never make the worker allocate without bound. The
 * contents are always NUL-terminated and are wiped when freed, because
 * response bodies may hold token keys.
 *
 * Text can be built with a chain of appends checked once at its end: the
 * first failure is kept in err until the buffer is reset or freed.
 */
#ifndef AKV_COMMON_BUF_H
#define AKV_COMMON_BUF_H

#include "err.h"

#include <stddef.h>

struct akv_buf {
    char *data; /**< NUL-terminated contents, NULL until first append */
    size_t len; /**< bytes used, excluding the terminator */
    size_t cap; /**< bytes allocated */
    size_t max; /**< largest len allowed */
    /** AKV_OK, or the error of the first append that failed since init or
     *  reset (a caller may set it too, to mark the text as incomplete). */
    akv_err_t err;
};

/** An empty buffer that may hold up to \p max bytes, as an initialiser. */
#define AKV_BUF_INIT(max)                                                      \
    {                                                                          \
        NULL, 0, 0, (max), AKV_OK                                              \
    }

/** @brief Initialises an empty buffer that may hold up to \p max bytes. */
void akv_buf_init(struct akv_buf *b, size_t max);

/**
 * @brief Appends \p len bytes.
 * @returns AKV_ERR_TOOBIG past the limit (the buffer is left unchanged),
 *          AKV_ERR_NOMEM when allocation fails.
 */
akv_err_t akv_buf_append(struct akv_buf *b, const void *data, size_t len);

/** @brief Appends a NUL-terminated string. */
akv_err_t akv_buf_puts(struct akv_buf *b, const char *s);

/** @brief Appends one character. */
akv_err_t akv_buf_putc(struct akv_buf *b, char c);

/**
 * @brief Appends printf-formatted text, formatted in place (no copy of it
 *        is left anywhere else).
 * @returns like akv_buf_append(); AKV_ERR_INVALID when the format fails.
 */
akv_err_t akv_buf_printf(struct akv_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/** @brief Empties the buffer (wiping the old contents), keeps the memory. */
void akv_buf_reset(struct akv_buf *b);

/** @brief Wipes and frees the contents; the buffer can be reused. */
void akv_buf_free(struct akv_buf *b);

/** @returns the contents, "" when empty (never NULL). */
const char *akv_buf_str(const struct akv_buf *b);

/**
 * @brief Hands the contents over: the buffer is left empty, with its limit.
 * @returns a NUL-terminated string from malloc() that the caller frees (and
 *          wipes, if need be; "" when nothing was appended), or NULL when
 *          err is set (the contents are wiped) or memory runs out.
 */
char *akv_buf_take(struct akv_buf *b);

#endif /* AKV_COMMON_BUF_H */
