/*
 * fuzz_authentik — authentik's answers as the worker reads them: the
 * token detail, view_key and a paginated token list.
 *
 * Input: a first line with the identifier the detail was asked for, then
 * the response body.
 *
 * Properties: no crash or leak; a failure always has a message; a detail
 * is accepted only when it is about exactly the identifier asked for and
 * has an intent; a key is the whole "key" string (an escaped NUL must not
 * cut it short, or Vault would receive a different, shorter key); a
 * count is the page's pagination.count and comes with a results list.
 */
#include "fuzzutil.h"

#include "authentik.h"
#include "json.h"

static void check_detail(const char *body, size_t len, const char *ident)
{
    static const char *const path[] = {"identifier", NULL};
    char errstr[256] = "";
    cJSON *detail;
    struct fuzz_jstr raw;

    detail =
        akv_authentik_parse_detail(body, len, ident, errstr, sizeof(errstr));
    if (!detail) {
        FUZZ_CHECK(errstr[0] != '\0', "refused detail without a message");
        return;
    }
    FUZZ_CHECK(cJSON_IsObject(detail), "detail is no object");
    FUZZ_CHECK(akv_json_string(detail, "intent") != NULL,
               "detail accepted without an intent");
    FUZZ_CHECK(fuzz_json_string_at(body, len, path, &raw) == 0,
               "detail accepted without an identifier");
    FUZZ_CHECK(!raw.has_nul && raw.n == strlen(ident) &&
                   memcmp(raw.s, ident, raw.n) == 0,
               "detail about a %zu-byte identifier accepted for \"%s\"", raw.n,
               ident);
    free(raw.s);
    cJSON_Delete(detail);
}

static void check_key(const char *body, size_t len)
{
    static const char *const path[] = {"key", NULL};
    char errstr[256] = "";
    char *key;
    struct fuzz_jstr raw;

    key = akv_authentik_parse_key(body, len, errstr, sizeof(errstr));
    if (!key) {
        FUZZ_CHECK(errstr[0] != '\0', "refused key without a message");
        return;
    }
    FUZZ_CHECK(*key, "empty key accepted");
    FUZZ_CHECK(fuzz_json_string_at(body, len, path, &raw) == 0,
               "key accepted from an answer without a key string");
    FUZZ_CHECK(!raw.has_nul && raw.n == strlen(key) &&
                   memcmp(raw.s, key, raw.n) == 0,
               "key cut short: %zu of its %zu bytes returned (a NUL in the "
               "string)",
               strlen(key), raw.n);
    free(raw.s);
    free(key);
}

static void check_count(const char *body, size_t len)
{
    long long count = -1;
    long long want = -1;
    cJSON *root;

    if (akv_authentik_parse_count(body, len, &count) != 0) {
        return;
    }
    root = cJSON_ParseWithLength(body, len);
    FUZZ_CHECK(count >= 0, "negative count %lld", count);
    FUZZ_CHECK(akv_json_int(akv_json_object(root, "pagination"), "count",
                            &want) == 0 &&
                   want == count,
               "count %lld is not the page's pagination.count", count);
    FUZZ_CHECK(cJSON_IsArray(akv_json_get(root, "results")),
               "count accepted without a results list");
    cJSON_Delete(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *ident = fuzz_take_line(&data, &size);
    char *body = fuzz_cstr(data, size);

    check_detail(body, size, ident);
    check_key(body, size);
    check_count(body, size);
    free(body);
    free(ident);
    return 0;
}
