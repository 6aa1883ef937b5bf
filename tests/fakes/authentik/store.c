/*
 * store — the tokens fake-authentik holds, by identifier (fakehtab) and in
 * identifier order (the order the list endpoint pages in), and what a new
 * token is made of: a uuid4 pk and a generate_id() key.
 */
#include "fa.h"

#include "wipe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define KEY_LEN 60

static void random_bytes(void *buf, size_t len)
{
    unsigned char *p = buf;

    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);

        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            /* Without randomness every key would be predictable; a fake
             * that silently hands out such keys is worse than none. */
            perror("fake-authentik: getrandom");
            abort();
        }
        p += n;
        len -= (size_t)n;
    }
}

static void hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* uuid4().hex: 32 lowercase hex digits. */
void fa_uuid4_hex(char out[33])
{
    unsigned char b[16];

    random_bytes(b, sizeof(b));
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    hex_encode(b, sizeof(b), out);
}

/* 32 hex digits to the dashed 8-4-4-4-12 form. */
void fa_uuid_dashed(const char *hex, char out[37])
{
    snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
             hex + 16, hex + 20);
}

/* authentik's generate_id(60): letters and digits, uniformly. */
char *fa_new_key(void)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                   "abcdefghijklmnopqrstuvwxyz"
                                   "0123456789";
    char *key = malloc(KEY_LEN + 1);
    size_t n = 0;

    if (!key) {
        return NULL;
    }
    while (n < KEY_LEN) {
        unsigned char b[64];
        size_t i;

        random_bytes(b, sizeof(b));
        for (i = 0; i < sizeof(b) && n < KEY_LEN; i++) {
            /* 248 = 4 * 62: rejecting the rest keeps the draw unbiased. */
            if (b[i] < 248) {
                key[n++] = alphabet[b[i] % 62];
            }
        }
    }
    key[KEY_LEN] = '\0';
    return key;
}

/* Frees a token, wiping its key; NULL is a no-op. */
void fa_token_free(struct token *t)
{
    if (!t) {
        return;
    }
    free(t->identifier);
    akv_wipe_free(t->key);
    free(t->description);
    free(t);
}

static void token_release(struct fakehtab_node *n)
{
    fa_token_free((struct token *)n);
}

/* @returns 0, or -1 when out of memory. */
int fa_store_init(struct store *st)
{
    memset(st, 0, sizeof(*st));
    if (fakehtab_init(&st->by_ident, 1024) < 0) {
        return -1;
    }
    pthread_mutex_init(&st->mu, NULL);
    return 0;
}

/* Frees every token and the store. */
void fa_store_destroy(struct store *st)
{
    fakehtab_destroy(&st->by_ident, token_release);
    free(st->sorted);
    pthread_mutex_destroy(&st->mu);
}

/* @returns the token \p ident, or NULL; with the lock held. */
struct token *fa_store_find(const struct store *st, const char *ident)
{
    return (struct token *)fakehtab_find(&st->by_ident, ident);
}

/* Locks the store and gives the token \p ident the key \p key (taken;
 * wiped and freed when there is no such token).
 * @returns the token or NULL, the store locked either way. */
struct token *fa_store_rekey(struct store *st, const char *ident, char *key)
{
    struct token *t;

    pthread_mutex_lock(&st->mu);
    t = fa_store_find(st, ident);
    if (t) {
        akv_wipe_free(t->key);
        t->key = key;
    } else {
        akv_wipe_free(key);
    }
    return t;
}

/* Index in the sorted array where \p ident is or would be. */
static size_t store_pos(const struct store *st, const char *ident)
{
    size_t lo = 0;
    size_t hi = st->count;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (strcmp(st->sorted[mid]->identifier, ident) < 0) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

static int store_grow(struct store *st)
{
    if (st->count == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 256;
        struct token **p = realloc(st->sorted, cap * sizeof(*p));

        if (!p) {
            return -1;
        }
        st->sorted = p;
        st->cap = cap;
    }
    return 0;
}

/* Adds \p t to both indexes, with the lock held. @returns 0, or -1 when
 * out of memory. */
int fa_store_add(struct store *st, struct token *t)
{
    size_t pos;

    if (store_grow(st) < 0) {
        return -1;
    }
    pos = store_pos(st, t->identifier);
    memmove(&st->sorted[pos + 1], &st->sorted[pos],
            (st->count - pos) * sizeof(*st->sorted));
    st->sorted[pos] = t;
    st->count++;
    t->node.key = t->identifier;
    fakehtab_insert(&st->by_ident, &t->node);
    return 0;
}

/* Unlinks \p t from both indexes; the caller owns it afterwards. */
void fa_store_remove(struct store *st, struct token *t)
{
    size_t pos = store_pos(st, t->identifier);

    fakehtab_remove(&st->by_ident, t->identifier);
    if (pos < st->count && st->sorted[pos] == t) {
        memmove(&st->sorted[pos], &st->sorted[pos + 1],
                (st->count - pos - 1) * sizeof(*st->sorted));
        st->count--;
    }
}
