/*
 * fuzz_settings — the configuration loader on any file: akv_settings_load()
 * on a temporary file holding the input (libconfig syntax), with the
 * credentials from the environment, or from tests/fuzz/token-file.txt
 * when the input names that file.
 *
 * Properties: no crash or leak; the loader either loads or explains why
 * not; what it loads passes the cross-field checks (URLs, a mount and
 * prefix without empty, "." or ".." segments, non-empty lists, ordered
 * retry bounds, the credentials present); a Vault path built from it is
 * sound; and the printed settings never show a credential.
 *
 * The loader reads the files a configuration names (@include, *_file
 * settings) and resolves metrics.listen: to keep the fuzzer off devices,
 * /proc and DNS, this program opens only regular files outside /proc and
 * /sys, and resolves only numeric addresses.
 */
#define _GNU_SOURCE

#include "fuzzutil.h"

#include "settings.h"
#include "vault.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <sys/stat.h>
#include <unistd.h>

#define AUTHENTIK_TOKEN "fuzz-authentik-token-7c1f2a94"
#define VAULT_TOKEN     "fuzz-vault-token-93be0155"
#define FILE_TOKEN      "not-a-secret-fuzz-token-from-file"

static char cfg_path[64];
static int cfg_fd = -1;

FILE *fopen(const char *path, const char *mode)
{
    static FILE *(*real)(const char *, const char *);
    char resolved[PATH_MAX];
    struct stat st;

    if (!real) {
        *(void **)&real = dlsym(RTLD_NEXT, "fopen");
        if (!real) {
            abort();
        }
    }
    if (!realpath(path, resolved) || stat(resolved, &st) != 0) {
        return real(path, mode); /* let the caller see why */
    }
    if (!S_ISREG(st.st_mode) || strncmp(resolved, "/proc/", 6) == 0 ||
        strncmp(resolved, "/sys/", 5) == 0) {
        errno = EACCES;
        return NULL;
    }
    return real(path, mode);
}

int getaddrinfo(const char *node, const char *service,
                const struct addrinfo *hints, struct addrinfo **res)
{
    static int (*real)(const char *, const char *, const struct addrinfo *,
                       struct addrinfo **);
    struct addrinfo h;

    if (!real) {
        *(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
        if (!real) {
            abort();
        }
    }
    memset(&h, 0, sizeof(h));
    if (hints) {
        h = *hints;
    }
    h.ai_flags |= AI_NUMERICHOST;
    return real(node, service, &h, res);
}

/*
 * libconfig 1.5 leaks the buffer of a string literal its scanner is
 * reading when the file ends in the middle of it (`url = "http://...`
 * without the closing quote): a leak in the library, once per failed
 * load, that would stop every fuzzing run. LeakSanitizer asks the
 * program for suppressions through this hook; only leaks allocated
 * inside libconfig are ignored, never the copies config.c makes.
 */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libconfig.so\n";
}

static void remove_cfg(void)
{
    if (cfg_fd >= 0) {
        close(cfg_fd);
        unlink(cfg_path);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const struct akv_cfg_entry *e;

    (void)argc;
    (void)argv;
    /* Only the input decides what is loaded. */
    for (e = akv_settings_schema; e->name; e++) {
        if (e->env) {
            unsetenv(e->env);
        }
    }
    snprintf(cfg_path, sizeof(cfg_path), "/tmp/akv-fuzz-settings-XXXXXX");
    cfg_fd = mkstemp(cfg_path);
    if (cfg_fd < 0) {
        perror("mkstemp");
        abort();
    }
    atexit(remove_cfg);
    return 0;
}

static int mentions(const uint8_t *data, size_t size, const char *s)
{
    return memmem(data, size, s, strlen(s)) != NULL;
}

/* A mount or prefix as validate() must have left it. */
static void check_path_setting(const char *name, const char *v)
{
    const char *why;

    FUZZ_CHECK(v && *v, "loaded with an empty %s", name);
    why = fuzz_path_problem(v);
    FUZZ_CHECK(!why && v[strlen(v) - 1] != '/', "loaded %s \"%s\" with %s",
               name, v, why ? why : "a trailing /");
}

static void check_loaded(const struct akv_settings *s, const uint8_t *data,
                         size_t size)
{
    char path[4096];
    char *dump = NULL;
    size_t dumplen = 0;
    FILE *fp;
    const char *const secrets[] = {AUTHENTIK_TOKEN, VAULT_TOKEN, FILE_TOKEN};
    size_t i;

    FUZZ_CHECK(s->kafka_brokers && *s->kafka_brokers, "loaded without brokers");
    FUZZ_CHECK(s->kafka_topic && s->dlq_topic, "loaded without topics");
    FUZZ_CHECK(strncmp(s->authentik_url, "http://", 7) == 0 ||
                   strncmp(s->authentik_url, "https://", 8) == 0,
               "loaded authentik.url \"%s\"", s->authentik_url);
    FUZZ_CHECK(strncmp(s->vault_addr, "http://", 7) == 0 ||
                   strncmp(s->vault_addr, "https://", 8) == 0,
               "loaded vault.addr \"%s\"", s->vault_addr);
    check_path_setting("vault.kv_mount", s->vault_kv_mount);
    check_path_setting("vault.prefix", s->vault_prefix);
    FUZZ_CHECK(s->match_apps.n && s->match_models.n &&
                   s->match_sync_actions.n && s->match_intents.n,
               "loaded with an empty match list");
    FUZZ_CHECK(s->sync_retry_initial_ms <= s->sync_retry_max_ms,
               "loaded retry_initial_ms %lld > retry_max_ms %lld",
               s->sync_retry_initial_ms, s->sync_retry_max_ms);
    FUZZ_CHECK(s->authentik_token && *s->authentik_token,
               "loaded without an authentik token");
    FUZZ_CHECK(strcmp(s->vault_auth_method, "token") != 0 ||
                   (s->vault_token && *s->vault_token),
               "loaded token auth without a Vault token");

    /* The path the worker will write to, for a valid identifier. */
    if (akv_vault_secret_path(s->vault_kv_mount, "data", s->vault_prefix,
                              "ci-deploy", path, sizeof(path)) == 0) {
        const char *why = fuzz_path_problem(path);

        FUZZ_CHECK(!why, "loaded settings give Vault path \"%s\" with %s", path,
                   why);
    }

    fp = open_memstream(&dump, &dumplen);
    if (!fp) {
        abort();
    }
    akv_settings_dump(s, fp);
    fclose(fp);
    for (i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++) {
        /* Unless the file itself wrote it into some other setting. */
        if (!mentions(data, size, secrets[i])) {
            FUZZ_CHECK(!strstr(dump, secrets[i]),
                       "the printed settings show a credential");
        }
    }
    free(dump);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct akv_settings s;
    char errstr[1024] = "";
    akv_err_t err;

    if (ftruncate(cfg_fd, 0) != 0 ||
        (size > 0 && pwrite(cfg_fd, data, size, 0) != (ssize_t)size)) {
        perror(cfg_path);
        abort();
    }
    /* One source per credential: the file when the input names one. */
    if (mentions(data, size, "token-file.txt")) {
        unsetenv("AUTHENTIK_TOKEN");
        unsetenv("VAULT_TOKEN");
    } else {
        setenv("AUTHENTIK_TOKEN", AUTHENTIK_TOKEN, 1);
        setenv("VAULT_TOKEN", VAULT_TOKEN, 1);
    }
    err = akv_settings_load(&s, cfg_path, errstr, sizeof(errstr));
    if (err == AKV_OK) {
        check_loaded(&s, data, size);
    } else {
        FUZZ_CHECK(err == AKV_ERR_CONFIG || err == AKV_ERR_NOMEM,
                   "load failed with error %d", (int)err);
        FUZZ_CHECK(errstr[0] != '\0', "load failed without a message");
    }
    akv_settings_free(&s);
    return 0;
}
