/*
 * buf — bounded growable byte buffer.
 */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

void akv_buf_init(struct akv_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

akv_err_t akv_buf_append(struct akv_buf *b, const void *data, size_t len)
{
    size_t need;

    if (len > b->max || b->len > b->max - len) {
        return AKV_ERR_TOOBIG;
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
            return AKV_ERR_NOMEM;
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

void akv_buf_reset(struct akv_buf *b)
{
    if (b->data) {
        explicit_bzero(b->data, b->len);
        b->data[0] = '\0';
    }
    b->len = 0;
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
}

const char *akv_buf_str(const struct akv_buf *b)
{
    return b->data ? b->data : "";
}
