/*
 * replay_main — runs a libFuzzer target without libFuzzer: calls
 * LLVMFuzzerTestOneInput() once on every file of the directories (or the
 * files) named on the command line, so that `make test` replays the
 * committed corpora with the project's own compiler and flags. A target
 * reports a violated property by aborting; a crash found once and copied
 * into its corpus stays a regression test.
 *
 * Each input is read into a buffer of exactly its size, so that a
 * sanitizer build sees a read past its end. The name of each input goes
 * to stderr before it runs: after a crash, the last one is the culprit.
 */
#include "fuzzutil.h"

#include <dirent.h>
#include <errno.h>
#include <sys/stat.h>

/* Defined by targets that set up their process first (as libFuzzer
 * calls it). */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf = NULL;
    long size;
    int rc = -1;

    if (!fp) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fseek(fp, 0, SEEK_END) != 0 || (size = ftell(fp)) < 0 ||
        fseek(fp, 0, SEEK_SET) != 0) {
        fprintf(stderr, "%s: cannot size it\n", path);
        goto out;
    }
    /* malloc(0) may return NULL: keep one byte, pass the true size. */
    buf = malloc(size ? (size_t)size : 1);
    if (!buf || fread(buf, 1, (size_t)size, fp) != (size_t)size) {
        fprintf(stderr, "%s: cannot read it\n", path);
        goto out;
    }
    fprintf(stderr, "input: %s\n", path);
    LLVMFuzzerTestOneInput(buf, (size_t)size);
    rc = 0;

out:
    free(buf);
    fclose(fp);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Replays every regular file in \p dir, in name order. */
static int replay_dir(const char *dir, int *count)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    size_t cap = 0;
    size_t i;
    int rc = 0;

    if (!d) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        struct stat st;
        char *path;

        if (e->d_name[0] == '.') {
            continue;
        }
        path = malloc(len);
        if (!path) {
            abort();
        }
        snprintf(path, len, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            free(path);
            continue;
        }
        if (n == cap) {
            char **grown;

            cap = cap ? cap * 2 : 64;
            grown = realloc(names, cap * sizeof(*names));
            if (!grown) {
                abort();
            }
            names = grown;
        }
        names[n++] = path;
    }
    closedir(d);
    if (n > 0) {
        qsort(names, n, sizeof(*names), by_name);
    }
    for (i = 0; i < n; i++) {
        if (rc == 0 && replay_file(names[i]) == 0) {
            (*count)++;
        } else {
            rc = -1;
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv)
{
    const char *name;
    int count = 0;
    int i;

    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 64;
    }
    if (LLVMFuzzerInitialize) {
        LLVMFuzzerInitialize(&argc, &argv);
    }
    for (i = 1; i < argc; i++) {
        struct stat st;
        int rc;

        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            rc = replay_dir(argv[i], &count);
        } else {
            rc = replay_file(argv[i]);
            count += rc == 0;
        }
        if (rc != 0) {
            return 1;
        }
    }
    /* A replay of nothing would pass whatever the target does. */
    if (count == 0) {
        fprintf(stderr, "%s: no inputs to replay\n", argv[0]);
        return 1;
    }
    name = strrchr(argv[0], '/');
    printf("fuzz replay %s: %d inputs, no property violated\n",
           name ? name + 1 : argv[0], count);
    return 0;
}
