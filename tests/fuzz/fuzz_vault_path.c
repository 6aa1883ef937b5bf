/*
 * fuzz_vault_path — akv_vault_secret_path() never builds a path that
 * leaves the secret it names.
 *
 * Input: lines "mount", "kind", "prefix", "identifier" and a buffer size
 * (missing lines: the defaults "kv", "data", "authentik", "ci-deploy",
 * 1024). The output buffer is allocated with exactly that size, so that
 * AddressSanitizer sees any write past it.
 *
 * Properties: a path that was built fits its buffer and its last segment
 * decodes to exactly the identifier; and for what the worker can pass (a
 * kind of "data" or "metadata", a mount and prefix that the settings
 * loader accepts) it holds no "//", no leading "/" and no "." or ".."
 * segment (also percent-encoded). Mount and prefix come only from the
 * configuration, which refuses empty, "." and ".." segments (fuzz_settings
 * checks that what it loads gives a sound path); the identifier comes from
 * an event and is checked here for any bytes.
 */
#include "fuzzutil.h"

#include "vault.h"

static int hexval(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}

/* Does \p seg percent-decode to \p want? */
static int decodes_to(const char *seg, const char *want)
{
    while (*seg && *want) {
        char c = *seg++;

        if (c == '%') {
            int hi = hexval(seg[0]);
            int lo = hi < 0 ? -1 : hexval(seg[1]);

            if (lo < 0) {
                return 0;
            }
            c = (char)(hi * 16 + lo);
            seg += 2;
        }
        if (c != *want++) {
            return 0;
        }
    }
    return !*seg && !*want;
}

/* What the settings loader accepts for vault.kv_mount and vault.prefix:
 * non-empty "/"-separated segments, none empty, "." or "..". */
static int setting_path_ok(const char *p)
{
    const char *seg = p;

    for (;;) {
        const char *slash = strchr(seg, '/');
        size_t n = slash ? (size_t)(slash - seg) : strlen(seg);

        if (n == 0 || (n == 1 && seg[0] == '.') ||
            (n == 2 && seg[0] == '.' && seg[1] == '.')) {
            return 0;
        }
        if (!slash) {
            return 1;
        }
        seg = slash + 1;
    }
}

static char *line_or(const uint8_t **data, size_t *size, const char *def)
{
    char *line;

    if (*size == 0) {
        line = fuzz_cstr((const uint8_t *)def, strlen(def));
    } else {
        line = fuzz_take_line(data, size);
    }
    return line;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *mount = line_or(&data, &size, "kv");
    char *kind = line_or(&data, &size, "data");
    char *prefix = line_or(&data, &size, "authentik");
    char *ident = line_or(&data, &size, "ci-deploy");
    char *sizeline = line_or(&data, &size, "1024");
    size_t outsize = strtoul(sizeline, NULL, 10) % 8192;
    char *out = malloc(outsize ? outsize : 1);
    const char *why;
    const char *last;

    if (!out) {
        abort();
    }
    if (akv_vault_secret_path(mount, kind, prefix, ident, out, outsize) == 0) {
        FUZZ_CHECK(outsize > 0 && memchr(out, '\0', outsize) != NULL,
                   "path does not fit its buffer of %zu", outsize);
        why = fuzz_path_problem(out);
        FUZZ_CHECK(
            why == NULL || !setting_path_ok(mount) ||
                !setting_path_ok(prefix) ||
                (strcmp(kind, "data") != 0 && strcmp(kind, "metadata") != 0),
            "path \"%s\" (mount \"%s\", kind \"%s\", prefix \"%s\", "
            "identifier \"%s\") has %s",
            out, mount, kind, prefix, ident, why);
        last = strrchr(out, '/');
        FUZZ_CHECK(last && decodes_to(last + 1, ident),
                   "path \"%s\" does not end in identifier \"%s\"", out, ident);
    }
    free(out);
    free(sizeline);
    free(ident);
    free(prefix);
    free(kind);
    free(mount);
    return 0;
}
