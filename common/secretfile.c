/*
 * secretfile — credentials kept in files that change under a running
 * process.
 */
#include "secretfile.h"

#include "log.h"
#include "wipe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

char *akv_secret_read(const char *path, size_t max, unsigned flags, char *why,
                      size_t why_size)
{
    FILE *fp = fopen(path, "r");
    char *buf;
    size_t n;
    int bad;

    if (!fp) {
        snprintf(why, why_size, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(max + 1);
    if (!buf) {
        fclose(fp);
        snprintf(why, why_size, "out of memory");
        return NULL;
    }
    n = fread(buf, 1, max + 1, fp);
    bad = n > max || ferror(fp);
    if (n > max) {
        snprintf(why, why_size, "%s is larger than %zu bytes", path, max);
    } else if (bad) {
        snprintf(why, why_size, "cannot read %s: %s", path, strerror(errno));
    }
    fclose(fp);
    if (bad) {
        /* whatever was read may be part of a secret */
        explicit_bzero(buf, max + 1);
        free(buf);
        return NULL;
    }
    while (n > 0 && strchr("\r\n \t", buf[n - 1])) {
        n--;
    }
    buf[n] = '\0';
    if ((flags & AKV_SECRET_ONE_LINE) && (n == 0 || memchr(buf, '\n', n))) {
        snprintf(why, why_size, "%s must hold exactly one non-empty line",
                 path);
        akv_wipe_free(buf);
        return NULL;
    }
    return buf;
}

void akv_file_stamp_take(const char *path, struct akv_file_stamp *st)
{
    struct stat sb;

    memset(st, 0, sizeof(*st));
    if (stat(path, &sb) < 0) {
        return;
    }
    st->dev = sb.st_dev;
    st->ino = sb.st_ino;
    st->size = sb.st_size;
    st->mtime = sb.st_mtim;
    st->ok = 1;
}

int akv_file_stamp_same(const struct akv_file_stamp *a,
                        const struct akv_file_stamp *b)
{
    return a->ok == b->ok && a->dev == b->dev && a->ino == b->ino &&
           a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec;
}

#define CREDFILE_MAX 16384

enum akv_credfile_change akv_credfile_refresh(struct akv_credfile *cf,
                                              int force, char *why,
                                              size_t why_size)
{
    struct akv_file_stamp now;
    char *fresh;

    akv_file_stamp_take(cf->path, &now);
    if (!force && cf->value && akv_file_stamp_same(&now, &cf->stamp)) {
        return AKV_CREDFILE_SAME;
    }
    /* Stamped before the read: a change racing the read is seen again at
     * the next look rather than missed. */
    cf->stamp = now;
    fresh = akv_secret_read(cf->path, CREDFILE_MAX, AKV_SECRET_ONE_LINE, why,
                            why_size);
    if (!fresh) {
        return AKV_CREDFILE_FAILED;
    }
    if (cf->value && strcmp(fresh, cf->value) == 0) {
        akv_wipe_free(fresh);
        return AKV_CREDFILE_SAME;
    }
    if (akv_log_secret_add(fresh) < 0) {
        akv_wipe_free(fresh);
        snprintf(why, why_size, "out of memory");
        return AKV_CREDFILE_FAILED;
    }
    akv_credfile_clear(cf);
    cf->value = fresh;
    return AKV_CREDFILE_CHANGED;
}

enum akv_credfile_change akv_credfile_reload(struct akv_credfile *cf, int force)
{
    enum akv_credfile_change ch;
    char why[512];

    ch = akv_credfile_refresh(cf, force, why, sizeof(why));
    if (ch == AKV_CREDFILE_FAILED) {
        akv_log_warn(cf->component,
                     "%s: %s; the token read before stays in use", cf->setting,
                     why);
    } else if (ch == AKV_CREDFILE_CHANGED) {
        akv_log_info(cf->component,
                     "%s %s holds a new token: later requests use it",
                     cf->setting, cf->path);
    }
    return ch;
}

void akv_credfile_clear(struct akv_credfile *cf)
{
    if (cf->value) {
        akv_log_secret_remove(cf->value);
        akv_wipe_free(cf->value);
        cf->value = NULL;
    }
}
