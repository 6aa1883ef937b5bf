/*
 * buf — a growable byte buffer that refuses to grow past a limit.
 *
 * Everything read from the network lands in one of these, so a broken or
 * hostile peer can never make the worker allocate without bound. The
 * contents are always NUL-terminated and are wiped when freed, because
 * response bodies may hold token keys.
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
};

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

/** @brief Empties the buffer (wiping the old contents), keeps the memory. */
void akv_buf_reset(struct akv_buf *b);

/** @brief Wipes and frees the contents; the buffer can be reused. */
void akv_buf_free(struct akv_buf *b);

/** @returns the contents, "" when empty (never NULL). */
const char *akv_buf_str(const struct akv_buf *b);

#endif /* AKV_COMMON_BUF_H */
