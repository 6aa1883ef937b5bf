/*
 * log — levelled, secret-scrubbing logger.
 */
#include "log.h"

#include "wipe.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE_MAX_BYTES 4096
#define REDACTED       "[redacted]"

/* Read by every thread that logs, changed by signals at run time. */
static atomic_int log_level = AKV_LOG_INFO;
static enum akv_log_format log_format = AKV_LOG_TEXT;
static FILE *log_stream;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* Registered secrets: a small array, since the worker holds few at once
 * (its credentials plus one key per sync in flight). */
static char **secrets;
static size_t nsecrets;
static size_t secrets_cap;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void akv_log_set_level(enum akv_log_level level)
{
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

void akv_log_set_format(enum akv_log_format format)
{
    log_format = format;
}

void akv_log_set_stream(FILE *fp)
{
    log_stream = fp;
}

int akv_log_level_parse(const char *name, enum akv_log_level *out)
{
    size_t i;

    for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum akv_log_level)i;
            return 0;
        }
    }
    return -1;
}

enum akv_log_level akv_log_get_level(void)
{
    return (enum akv_log_level)atomic_load_explicit(&log_level,
                                                    memory_order_relaxed);
}

const char *akv_log_level_name(enum akv_log_level level)
{
    return (unsigned)level < sizeof(level_names) / sizeof(level_names[0])
               ? level_names[level]
               : "?";
}

int akv_log_enabled(enum akv_log_level level)
{
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

int akv_log_secret_add(const char *secret)
{
    char *copy;

    if (!secret || strlen(secret) < AKV_LOG_SECRET_MIN) {
        return 0;
    }
    copy = strdup(secret);
    if (!copy) {
        return -1;
    }
    pthread_mutex_lock(&log_lock);
    if (nsecrets == secrets_cap) {
        size_t cap = secrets_cap ? secrets_cap * 2 : 16;
        char **p = realloc(secrets, cap * sizeof(*p));

        if (!p) {
            pthread_mutex_unlock(&log_lock);
            akv_wipe_free(copy);
            return -1;
        }
        secrets = p;
        secrets_cap = cap;
    }
    secrets[nsecrets++] = copy;
    pthread_mutex_unlock(&log_lock);
    return 0;
}

void akv_log_secret_remove(const char *secret)
{
    size_t i;

    if (!secret) {
        return;
    }
    pthread_mutex_lock(&log_lock);
    for (i = 0; i < nsecrets; i++) {
        if (strcmp(secrets[i], secret) == 0) {
            akv_wipe_free(secrets[i]);
            secrets[i] = secrets[--nsecrets];
            break;
        }
    }
    pthread_mutex_unlock(&log_lock);
}

void akv_log_secret_clear(void)
{
    size_t i;

    pthread_mutex_lock(&log_lock);
    for (i = 0; i < nsecrets; i++) {
        akv_wipe_free(secrets[i]);
    }
    free(secrets);
    secrets = NULL;
    nsecrets = 0;
    secrets_cap = 0;
    pthread_mutex_unlock(&log_lock);
}

/*
 * Rewrites \p s with every registered secret replaced by the marker.
 * Caller holds log_lock. If the scratch buffer cannot be had the whole line
 * is blanked: losing a log line beats leaking a secret.
 */
static void scrub_locked(char *s, size_t size)
{
    size_t i;
    size_t rlen = strlen(REDACTED);
    char *out;

    if (nsecrets == 0 || size == 0) {
        return;
    }
    out = malloc(size);
    if (!out) {
        s[0] = '\0';
        return;
    }
    for (i = 0; i < nsecrets; i++) {
        size_t slen = strlen(secrets[i]);
        const char *src = s;
        const char *hit = strstr(src, secrets[i]);
        size_t o = 0;

        if (!hit) {
            continue;
        }
        while (*src) {
            size_t n;

            if (!hit) {
                n = strlen(src);
            } else {
                n = (size_t)(hit - src);
            }
            if (n > size - 1 - o) {
                n = size - 1 - o;
            }
            memcpy(out + o, src, n);
            o += n;
            if (!hit || o >= size - 1) {
                break;
            }
            n = rlen < size - 1 - o ? rlen : size - 1 - o;
            memcpy(out + o, REDACTED, n);
            o += n;
            src = hit + slen;
            hit = strstr(src, secrets[i]);
        }
        out[o] = '\0';
        memcpy(s, out, o + 1);
    }
    explicit_bzero(out, size);
    free(out);
}

/* \p s as it reads between the quotes of a JSON string (cJSON's escapes),
 * or NULL when out of memory. */
static char *json_escaped(const char *s)
{
    size_t n = strlen(s);
    char *out = malloc(n * 6 + 1);
    size_t o = 0;

    if (!out) {
        return NULL;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20) {
            static const char short_esc[] = "btn\0fr";
            static const char hex[] = "0123456789abcdef";

            out[o++] = '\\';
            if (c >= '\b' && c <= '\r' && c != 0x0b) {
                out[o++] = short_esc[c - '\b'];
            } else {
                memcpy(out + o, "u00", 3);
                o += 3;
                out[o++] = hex[c >> 4];
                out[o++] = hex[c & 0xf];
            }
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
    return out;
}

/* Marks in \p hide every byte of \p in covered by an occurrence of \p
 * needle. */
static void mark_needle(const char *in, size_t len, const char *needle,
                        unsigned char *hide)
{
    size_t nlen = needle ? strlen(needle) : 0;
    const char *p = in;
    const char *hit;

    if (nlen < AKV_LOG_SECRET_MIN) {
        return;
    }
    while ((hit = strstr(p, needle)) != NULL) {
        memset(hide + (hit - in), 1, nlen);
        p = hit + 1;
        if ((size_t)(p - in) >= len) {
            break;
        }
    }
}

void akv_log_excerpt(const char *in, const char *secret, char *out, size_t size)
{
    static const char ellipsis[] = "...";
    size_t rlen = strlen(REDACTED);
    size_t len = strlen(in);
    size_t room;
    unsigned char *hide;
    char *esc;
    size_t i;
    size_t o = 0;

    if (size == 0) {
        return;
    }
    out[0] = '\0';
    if (size <= sizeof(ellipsis)) {
        return;
    }
    hide = calloc(len + 1, 1);
    if (!hide) {
        return; /* no excerpt rather than an unscrubbed one */
    }
    mark_needle(in, len, secret, hide);
    esc = secret ? json_escaped(secret) : NULL;
    if (secret && !esc) {
        free(hide);
        return;
    }
    mark_needle(in, len, esc, hide);
    akv_wipe_free(esc);
    pthread_mutex_lock(&log_lock);
    for (i = 0; i < nsecrets; i++) {
        mark_needle(in, len, secrets[i], hide);
    }
    pthread_mutex_unlock(&log_lock);

    room = size - sizeof(ellipsis); /* keeps room for "..." and the NUL */
    for (i = 0; i < len && o < room;) {
        if (hide[i]) {
            size_t n = rlen < room - o ? rlen : room - o;

            memcpy(out + o, REDACTED, n);
            o += n;
            while (i < len && hide[i]) {
                i++;
            }
            continue;
        }
        out[o++] = (unsigned char)in[i] < 0x20 || in[i] == 0x7f ? ' ' : in[i];
        i++;
    }
    if (i < len) {
        memcpy(out + o, ellipsis, sizeof(ellipsis) - 1);
        o += sizeof(ellipsis) - 1;
    }
    out[o] = '\0';
    free(hide);
}

void akv_log_scrub(char *s, size_t size)
{
    pthread_mutex_lock(&log_lock);
    scrub_locked(s, size);
    pthread_mutex_unlock(&log_lock);
}

/* Writes \p s as a JSON string body (without quotes). */
static void json_escape(FILE *fp, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '"' || c == '\\') {
            fputc('\\', fp);
            fputc(c, fp);
        } else if (c == '\n') {
            fputs("\\n", fp);
        } else if (c < 0x20) {
            fprintf(fp, "\\u%04x", c);
        } else {
            fputc(c, fp);
        }
    }
}

/* The fields a JSON line carries besides the message, when the message
 * names them as key=value (as every sync, partition and retry line does),
 * and whether each is a number. */
static const struct {
    const char *key;
    int number;
} json_fields[] = {
    {"token", 0},  {"event", 0}, {"topic", 0},   {"partition", 1},
    {"offset", 1}, {"class", 0}, {"attempt", 1},
};

/* Where "key=" starts a word of \p msg; NULL when it does not. */
static const char *field_value(const char *msg, const char *key, size_t *len)
{
    size_t klen = strlen(key);
    const char *p;

    for (p = strstr(msg, key); p; p = strstr(p + 1, key)) {
        const char *v = p + klen;

        if ((p == msg || p[-1] == ' ') && *v == '=') {
            v++;
            *len = strcspn(v, " ");
            /* a value ends before the punctuation that follows it */
            while (*len > 0 && strchr(":,;)", v[*len - 1])) {
                (*len)--;
            }
            return *len > 0 ? v : NULL;
        }
    }
    return NULL;
}

static int all_digits(const char *v, size_t len)
{
    size_t i = v[0] == '-' ? 1 : 0;

    if (i == len || len > 19) {
        return 0;
    }
    for (; i < len; i++) {
        if (v[i] < '0' || v[i] > '9') {
            return 0;
        }
    }
    return 1;
}

/* Appends ,"key":value for each field \p msg names. */
static void json_write_fields(FILE *fp, const char *msg)
{
    size_t i;

    for (i = 0; i < sizeof(json_fields) / sizeof(json_fields[0]); i++) {
        size_t len = 0;
        const char *v = field_value(msg, json_fields[i].key, &len);
        char *copy;

        if (!v) {
            continue;
        }
        if (json_fields[i].number && all_digits(v, len)) {
            fprintf(fp, ",\"%s\":%.*s", json_fields[i].key, (int)len, v);
            continue;
        }
        copy = strndup(v, len);
        if (copy) {
            fprintf(fp, ",\"%s\":\"", json_fields[i].key);
            json_escape(fp, copy);
            fputc('"', fp);
            free(copy);
        }
    }
}

void akv_log_write(enum akv_log_level level, const char *component,
                   const char *fmt, ...)
{
    char msg[LINE_MAX_BYTES];
    char ts[96];
    struct timespec now;
    struct tm tm;
    va_list ap;
    FILE *fp = log_stream ? log_stream : stderr;
    char *nl;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* One event, one line: fold embedded newlines. */
    for (nl = strchr(msg, '\n'); nl; nl = strchr(nl, '\n')) {
        *nl = ' ';
    }

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);

    pthread_mutex_lock(&log_lock);
    scrub_locked(msg, sizeof(msg));
    if (log_format == AKV_LOG_JSON) {
        fprintf(fp, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"", ts,
                level_names[level]);
        json_escape(fp, component);
        fputs("\",\"msg\":\"", fp);
        json_escape(fp, msg);
        fputc('"', fp);
        json_write_fields(fp, msg);
        fputs("}\n", fp);
    } else {
        fprintf(fp, "%s %-5s [%s] %s\n", ts, level_names[level], component,
                msg);
    }
    fflush(fp);
    pthread_mutex_unlock(&log_lock);
}
