/*
 * fuzz_vault — Vault's answers as the worker reads them: the classifier,
 * the KV v2 read parser, the login parser and the capabilities parser.
 *
 * Input: an optional first line with an HTTP status ("404\n"; default
 * 200), then the response body.
 *
 * Properties: no crash or leak; a status outside 2xx is never OK; a read
 * is OK only for 200 or 404, with data that is exactly the answer's
 * data.data object and an error text otherwise; a login token is the
 * whole auth.client_token string (not cut at an escaped NUL); capability
 * bits are only known ones; a write counts only with a data.version newer
 * than its CAS base; an error excerpt fits its buffer, holds no control
 * character and no 8-byte piece of the secret the request carried.
 */
#include "fuzzutil.h"

#include "json.h"
#include "vault.h"

#include <ctype.h>

/* "NNN\n" at the start: the status, and the body after it. */
static long take_status(const uint8_t **data, size_t *size)
{
    long status = 0;
    size_t i;

    for (i = 0; i < *size && i < 4 && isdigit((*data)[i]); i++) {
        status = status * 10 + ((*data)[i] - '0');
    }
    if (i == 0 || i >= *size || (*data)[i] != '\n') {
        return 200;
    }
    *data += i + 1;
    *size -= i + 1;
    return status;
}

static void check_classify(long status, const char *body)
{
    enum akv_class c = akv_vault_classify(status, body, 0);

    FUZZ_CHECK(c >= AKV_CLASS_OK && c <= AKV_CLASS_POISON,
               "classify(%ld) gave class %d", status, (int)c);
    FUZZ_CHECK((c == AKV_CLASS_OK) == (status >= 200 && status < 300),
               "classify(%ld) gave %s", status, akv_class_name(c));
    c = akv_vault_classify(0, body, (int)(status % 100));
    FUZZ_CHECK(c == AKV_CLASS_TRANSIENT || c == AKV_CLASS_CONFIG,
               "no answer (curl code %ld) classified %s", status % 100,
               akv_class_name(c));
}

static void check_read(long status, const char *body, size_t len)
{
    struct akv_vault_secret sec;
    char errstr[512] = "";
    enum akv_class c;

    c = akv_vault_parse_read(status, body, len, &sec, errstr, sizeof(errstr));
    if (c != AKV_CLASS_OK) {
        FUZZ_CHECK(sec.data == NULL, "failed read (%s) left data",
                   akv_class_name(c));
        FUZZ_CHECK(errstr[0] != '\0', "failed read (%s) without a message",
                   akv_class_name(c));
        return;
    }
    FUZZ_CHECK(status == 200 || status == 404, "read of HTTP %ld is OK",
               status);
    if (sec.data) {
        cJSON *root = cJSON_ParseWithLength(body, len);
        const cJSON *want = akv_json_path(root, "data", "data", AKV_JSON_END);
        long long version = -1;

        FUZZ_CHECK(status == 200, "HTTP %ld read returned data", status);
        FUZZ_CHECK(cJSON_IsObject(sec.data), "read data is no object");
        FUZZ_CHECK(cJSON_Compare(want, sec.data, 1),
                   "read data is not the answer's data.data");
        FUZZ_CHECK(
            akv_json_int(akv_json_path(root, "data", "metadata", AKV_JSON_END),
                         "version", &version) == 0 &&
                version == sec.version,
            "read version %lld is not the answer's", sec.version);
        cJSON_Delete(root);
    }
    akv_vault_secret_free(&sec);
    FUZZ_CHECK(sec.data == NULL && sec.version == 0,
               "akv_vault_secret_free() left data");
}

static void check_auth(const char *body, size_t len)
{
    static const char *const path[] = {"auth", "client_token", NULL};
    char *token = (char *)"unset";
    long long ttl = 0;
    int renewable = 0;
    struct fuzz_jstr raw;

    if (akv_vault_parse_auth(body, len, &token, &ttl, &renewable) != 0) {
        FUZZ_CHECK(token == NULL, "failed login parse left a token");
        return;
    }
    FUZZ_CHECK(token && *token, "login parse gave an empty token");
    FUZZ_CHECK(renewable == 0 || renewable == 1, "renewable is %d", renewable);
    FUZZ_CHECK(fuzz_json_string_at(body, len, path, &raw) == 0,
               "login parse found a token the answer does not hold");
    FUZZ_CHECK(!raw.has_nul && raw.n == strlen(token) &&
                   memcmp(raw.s, token, raw.n) == 0,
               "token cut short: %zu of %zu bytes (a NUL in the string)",
               strlen(token), raw.n);
    free(raw.s);
    free(token);
}

static void check_capabilities(const char *body, size_t len)
{
    static const char *const paths[] = {"kv/data/authentik/ci", "p",
                                        "capabilities", ""};
    size_t i;

    for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        unsigned caps = 0;

        if (akv_vault_parse_capabilities(body, len, paths[i], &caps) == 0) {
            FUZZ_CHECK((caps & ~(AKV_VAULT_CAP_OTHER * 2u - 1u)) == 0,
                       "capabilities 0x%x hold unknown bits", caps);
        }
    }
}

static void check_write(const char *body, size_t len)
{
    static const long long bases[] = {0, 1, 41};
    char errstr[256];
    size_t i;

    for (i = 0; i < sizeof(bases) / sizeof(bases[0]); i++) {
        long long v = -1;
        enum akv_class c = akv_vault_parse_write(body, len, bases[i], &v,
                                                 errstr, sizeof(errstr));
        cJSON *root;
        long long want = 0;

        if (c != AKV_CLASS_OK) {
            FUZZ_CHECK(c == AKV_CLASS_TRANSIENT && v == 0,
                       "unconfirmed write gave %s, version %lld",
                       akv_class_name(c), v);
            continue;
        }
        root = cJSON_ParseWithLength(body, len);
        FUZZ_CHECK(akv_json_int(akv_json_object(root, "data"), "version",
                                &want) == 0 &&
                       want == v && v > bases[i],
                   "write confirmed as version %lld over %lld", v, bases[i]);
        cJSON_Delete(root);
    }
}

/* Whether the 8 bytes at \p piece stand in \p text outside every whole
 * occurrence of \p secret (such a piece is no leak of the secret). */
static int piece_outside(const char *text, const char *secret,
                         const char *piece)
{
    size_t slen = strlen(secret);
    size_t i;

    for (i = 0; text[i]; i++) {
        if (strncmp(text + i, secret, slen) == 0) {
            i += slen - 1;
        } else if (strncmp(text + i, piece, 8) == 0) {
            return 1;
        }
    }
    return 0;
}

static void check_excerpt(const char *body, size_t len)
{
    /* A secret of the kind a write carries; the seeds quote it. */
    static const char secret[] = "fuzzKEY0123456789abcdefghijKLMNOP";
    cJSON *root = cJSON_ParseWithLength(body, len);
    const cJSON *errors = akv_json_get(root, "errors");
    const cJSON *first =
        cJSON_IsArray(errors) ? cJSON_GetArrayItem(errors, 0) : NULL;
    const char *text = cJSON_IsString(first) ? first->valuestring : "";
    char out[64];
    size_t i;
    size_t n;

    akv_vault_error_excerpt(body, len, secret, out, sizeof(out));
    n = strlen(out);
    FUZZ_CHECK(n < sizeof(out), "excerpt overflowed");
    for (i = 0; i < n; i++) {
        FUZZ_CHECK((unsigned char)out[i] >= 0x20 && out[i] != 0x7f,
                   "control character 0x%02x in the excerpt",
                   (unsigned char)out[i]);
    }
    for (i = 0; i + 8 <= sizeof(secret) - 1; i++) {
        char piece[9];

        memcpy(piece, secret + i, 8);
        piece[8] = '\0';
        FUZZ_CHECK(!strstr(out, piece) || piece_outside(text, secret, piece),
                   "a piece of the secret survived: %s", out);
    }
    cJSON_Delete(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long status = take_status(&data, &size);
    /* The worker's bodies are NUL-terminated buffers (akv_buf_str()); the
     * parsers get the length as well. */
    char *body = fuzz_cstr(data, size);

    check_classify(status, body);
    check_read(status, body, size);
    check_read(404, body, size);
    check_auth(body, size);
    check_capabilities(body, size);
    check_write(body, size);
    check_excerpt(body, size);
    free(body);
    return 0;
}
