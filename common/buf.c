/*
 * buf — bounded growable byte buffer.
 */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void akv_buf_init(struct akv_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
    b->err = AKV_OK;
}

/* Keeps the first error of a chain of appends. @returns \p err. */
static akv_err_t failed(struct akv_buf *b, akv_err_t err)
{
    if (b->err == AKV_OK) {
        b->err = err;
    }
    return err;
}

/* Makes room for \p len more bytes and the terminator. */
static akv_err_t reserve(struct akv_buf *b, size_t len)
{
    size_t need;

    if (len > b->max || b->len > b->max - len) {
        return failed(b, AKV_ERR_TOOBIG);
    }
    need = b->len + len + 1;
    if (need > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;

        while (cap < need) {
            cap *= 2;
        }
        p = malloc(cap);
        if (!p) {
            return failed(b, AKV_ERR_NOMEM);
        }
        /* Copy and wipe rather than realloc: the old block may hold a key. */
        if (b->data) {
            memcpy(p, b->data, b->len);
            explicit_bzero(b->data, b->cap);
            free(b->data);
        }
        b->data = p;
        b->cap = cap;
    }
    return AKV_OK;
}

akv_err_t akv_buf_append(struct akv_buf *b, const void *data, size_t len)
{
    akv_err_t err = reserve(b, len);

    if (err != AKV_OK) {
        return err;
    }
    if (len > 0) {
        memcpy(b->data + b->len, data, len);
    }
    b->len += len;
    b->data[b->len] = '\0';
    return AKV_OK;
}

akv_err_t akv_buf_puts(struct akv_buf *b, const char *s)
{
    return akv_buf_append(b, s, strlen(s));
}

akv_err_t akv_buf_putc(struct akv_buf *b, char c)
{
    return akv_buf_append(b, &c, 1);
}

akv_err_t akv_buf_printf(struct akv_buf *b, const char *fmt, ...)
{
    va_list ap;
    akv_err_t err;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        return failed(b, AKV_ERR_INVALID);
    }
    err = reserve(b, (size_t)n);
    if (err != AKV_OK) {
        return err;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return AKV_OK;
}

void akv_buf_reset(struct akv_buf *b)
{
    if (b->data) {
        explicit_bzero(b->data, b->len);
        b->data[0] = '\0';
    }
    b->len = 0;
    b->err = AKV_OK;
}

void akv_buf_free(struct akv_buf *b)
{
    if (b->data) {
        explicit_bzero(b->data, b->cap);
        free(b->data);
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->err = AKV_OK;
}

const char *akv_buf_str(const struct akv_buf *b)
{
    return b->data ? b->data : "";
}

char *akv_buf_take(struct akv_buf *b)
{
    char *s = b->data;

    if (b->err != AKV_OK) {
        akv_buf_free(b);
        return NULL;
    }
    if (!s) {
        s = malloc(1);
        if (s) {
            s[0] = '\0';
        }
    }
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return s;
}
