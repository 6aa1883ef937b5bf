/*
 * test_secretfile — credential files read, and read again when replaced.
 */
#include "testutil.h"

#include "log.h"
#include "secretfile.h"
#include "wipe.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

struct dir {
    char path[64];
    char file[96];
};

static void dir_make(struct dir *d)
{
    snprintf(d->path, sizeof(d->path), "/tmp/akv-secretfile-XXXXXX");
    assert_non_null(mkdtemp(d->path));
    snprintf(d->file, sizeof(d->file), "%s/token", d->path);
}

static void put(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");

    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* Written beside and renamed over: a new inode, as Vault Agent does. */
static void replace(const struct dir *d, const char *text)
{
    char tmp[128];

    snprintf(tmp, sizeof(tmp), "%s/.next", d->path);
    put(tmp, text);
    assert_int_equal(rename(tmp, d->file), 0);
}

static void dir_remove(struct dir *d)
{
    unlink(d->file);
    rmdir(d->path);
}

static void read_trims_and_refuses(void **state)
{
    struct dir d = {{0}, {0}};
    char why[256];
    char *v;

    (void)state;
    dir_make(&d);
    put(d.file, "s3cret \r\n\n");
    v = akv_secret_read(d.file, 64, AKV_SECRET_ONE_LINE, why, sizeof(why));
    assert_string_equal(v, "s3cret");
    akv_wipe_free(v);

    put(d.file, "line one\nline two\n");
    assert_null(
        akv_secret_read(d.file, 64, AKV_SECRET_ONE_LINE, why, sizeof(why)));
    assert_non_null(strstr(why, "exactly one non-empty line"));
    assert_null(strstr(why, "line one")); /* never the content */
    v = akv_secret_read(d.file, 64, 0, why, sizeof(why)); /* a PEM may */
    assert_string_equal(v, "line one\nline two");
    akv_wipe_free(v);

    put(d.file, "\n");
    assert_null(
        akv_secret_read(d.file, 64, AKV_SECRET_ONE_LINE, why, sizeof(why)));
    v = akv_secret_read(d.file, 64, 0, why, sizeof(why));
    assert_string_equal(v, "");
    akv_wipe_free(v);

    put(d.file, "0123456789");
    v = akv_secret_read(d.file, 10, 0, why, sizeof(why));
    assert_string_equal(v, "0123456789");
    akv_wipe_free(v);
    assert_null(akv_secret_read(d.file, 9, 0, why, sizeof(why)));
    assert_non_null(strstr(why, "larger than 9 bytes"));

    assert_null(akv_secret_read(d.path, 64, 0, why, sizeof(why)));
    assert_non_null(strstr(why, "cannot read"));
    dir_remove(&d);
    assert_null(akv_secret_read(d.file, 64, 0, why, sizeof(why)));
    assert_non_null(strstr(why, "No such file"));
}

static void stamps_tell_versions_apart(void **state)
{
    struct akv_file_stamp a;
    struct akv_file_stamp b;
    struct dir d = {{0}, {0}};

    (void)state;
    dir_make(&d);
    put(d.file, "one");
    akv_file_stamp_take(d.file, &a);
    akv_file_stamp_take(d.file, &b);
    assert_true(a.ok);
    assert_true(akv_file_stamp_same(&a, &b));
    replace(&d, "two"); /* same size, new inode */
    akv_file_stamp_take(d.file, &b);
    assert_false(akv_file_stamp_same(&a, &b));
    unlink(d.file);
    akv_file_stamp_take(d.file, &a);
    assert_false(a.ok);
    assert_false(akv_file_stamp_same(&a, &b));
    dir_remove(&d);
}

static void credfile_follows_the_file(void **state)
{
    struct akv_credfile cf = {0};
    struct timespec keep[2];
    struct stat sb;
    struct dir d = {{0}, {0}};
    char line[64];
    char why[256];

    (void)state;
    dir_make(&d);
    cf.path = d.file;
    put(d.file, "token-aaaa\n");
    assert_int_equal(akv_credfile_refresh(&cf, 0, why, sizeof(why)),
                     AKV_CREDFILE_CHANGED);
    assert_string_equal(cf.value, "token-aaaa");
    /* registered: a log line holding it is scrubbed */
    snprintf(line, sizeof(line), "x token-aaaa y");
    akv_log_scrub(line, sizeof(line));
    assert_null(strstr(line, "token-aaaa"));

    assert_int_equal(akv_credfile_refresh(&cf, 0, why, sizeof(why)),
                     AKV_CREDFILE_SAME);
    replace(&d, "token-bbbb\n");
    assert_int_equal(akv_credfile_refresh(&cf, 0, why, sizeof(why)),
                     AKV_CREDFILE_CHANGED);
    assert_string_equal(cf.value, "token-bbbb");
    snprintf(line, sizeof(line), "x token-aaaa y");
    akv_log_scrub(line, sizeof(line));
    assert_non_null(strstr(line, "token-aaaa")); /* the old one forgotten */

    /* The same bytes in a new file: read, not a change. */
    replace(&d, "token-bbbb\n");
    assert_int_equal(akv_credfile_refresh(&cf, 0, why, sizeof(why)),
                     AKV_CREDFILE_SAME);

    /* Rewritten in place with its size and time kept: only a forced read
     * (after a refusal) sees it. */
    assert_int_equal(stat(d.file, &sb), 0);
    keep[0] = sb.st_atim;
    keep[1] = sb.st_mtim;
    put(d.file, "token-cccc\n");
    assert_int_equal(utimensat(AT_FDCWD, d.file, keep, 0), 0);
    assert_int_equal(akv_credfile_refresh(&cf, 0, why, sizeof(why)),
                     AKV_CREDFILE_SAME);
    assert_string_equal(cf.value, "token-bbbb");
    assert_int_equal(akv_credfile_refresh(&cf, 1, why, sizeof(why)),
                     AKV_CREDFILE_CHANGED);
    assert_string_equal(cf.value, "token-cccc");

    /* Emptied or removed: the old value stays, the reason is given. */
    replace(&d, "\n");
    assert_int_equal(akv_credfile_refresh(&cf, 0, why, sizeof(why)),
                     AKV_CREDFILE_FAILED);
    assert_string_equal(cf.value, "token-cccc");
    unlink(d.file);
    assert_int_equal(akv_credfile_refresh(&cf, 1, why, sizeof(why)),
                     AKV_CREDFILE_FAILED);
    assert_non_null(strstr(why, d.file));
    assert_string_equal(cf.value, "token-cccc");
    replace(&d, "token-dddd");
    assert_int_equal(akv_credfile_refresh(&cf, 0, why, sizeof(why)),
                     AKV_CREDFILE_CHANGED);
    assert_string_equal(cf.value, "token-dddd");
    akv_credfile_clear(&cf);
    assert_null(cf.value);
    dir_remove(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(read_trims_and_refuses),
        cmocka_unit_test(stamps_tell_versions_apart),
        cmocka_unit_test(credfile_follows_the_file),
    };

    return cmocka_run_group_tests_name("secretfile", tests, NULL, NULL);
}
