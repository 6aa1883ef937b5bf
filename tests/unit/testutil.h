/*
 * testutil — helpers shared by the cmocka unit tests.
 */
#ifndef AKV_TESTS_TESTUTIL_H
#define AKV_TESTS_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads tests/fixtures/<rel> (or $AKV_FIXTURES/<rel>) into a NUL-terminated
 * heap buffer; fails the test when it cannot. */
static inline char *read_fixture(const char *rel, size_t *len)
{
    const char *dir = getenv("AKV_FIXTURES");
    char path[1024];
    FILE *fp;
    char *buf;
    long size;

    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/fixtures", rel);
    fp = fopen(path, "rb");
    if (!fp) {
        fail_msg("cannot open fixture %s", path);
    }
    fseek(fp, 0, SEEK_END);
    size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
    buf[size] = '\0';
    fclose(fp);
    *len = (size_t)size;
    return buf;
}

/* Calls \p fn for every .json file in tests/fixtures/\p sub (read whole);
 * returns how many there were. */
static inline int for_each_fixture(const char *sub,
                                   void (*fn)(const char *name, const char *buf,
                                              size_t len, void *ctx),
                                   void *ctx)
{
    const char *dir = getenv("AKV_FIXTURES");
    char path[1024];
    DIR *d;
    struct dirent *e;
    int files = 0;

    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "tests/fixtures", sub);
    d = opendir(path);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        char rel[512];
        size_t len;
        char *buf;

        if (!strstr(e->d_name, ".json")) {
            continue;
        }
        snprintf(rel, sizeof(rel), "%s/%s", sub, e->d_name);
        buf = read_fixture(rel, &len);
        fn(e->d_name, buf, len, ctx);
        free(buf);
        files++;
    }
    closedir(d);
    return files;
}

/* for_each_fixture() over tests/fixtures/events. */
static inline int for_each_event_fixture(void (*fn)(const char *name,
                                                    const char *buf, size_t len,
                                                    void *ctx),
                                         void *ctx)
{
    return for_each_fixture("events", fn, ctx);
}

/* xorshift64*: deterministic pseudo-random numbers for generated inputs
 * (one sequence per test program). */
static inline uint64_t test_rnd(void)
{
    static uint64_t state = 0x9E3779B97F4A7C15ULL;

    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 2685821657736338717ULL;
}

/* One of the \p n strings of \p v, at random. */
static inline const char *test_pick(const char *const *v, size_t n)
{
    return v[test_rnd() % n];
}

/* Writes \p text to a new temporary file; returns its path (static). */
static inline const char *write_temp(const char *text)
{
    static char path[64];
    int fd;
    size_t len = strlen(text);

    snprintf(path, sizeof(path), "/tmp/akv-test-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

#endif /* AKV_TESTS_TESTUTIL_H */
