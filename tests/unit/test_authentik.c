/*
 * test_authentik — authentik answers: classification, token detail and
 * view_key parsing, and the document built from them.
 */
#include "testutil.h"

#include "authentik.h"

#include <curl/curl.h>
#include <stdbool.h>
#include "json.h"
#include "sync.h"

/* authentik's Token serializer output (schema.yml components.Token). */
static const char detail_body[] =
    "{\"pk\":\"8b03f2c1-df9c-4cab-bb33-602efade9ced\",\"managed\":null,"
    "\"identifier\":\"deploy-bot-api\",\"intent\":\"api\",\"user\":12,"
    "\"user_obj\":{\"pk\":12,\"username\":\"deploy-bot\"},"
    "\"description\":\"Vault sync test token\","
    "\"expires\":\"2026-04-22T09:12:00.412345Z\",\"expiring\":true}";

static void classify_statuses(void **state)
{
    static const struct {
        long status;
        enum akv_class want;
    } rows[] = {
        {200, AKV_CLASS_OK},        {204, AKV_CLASS_OK},
        {0, AKV_CLASS_TRANSIENT},   {404, AKV_CLASS_GONE},
        {401, AKV_CLASS_CONFIG},    {403, AKV_CLASS_CONFIG},
        {400, AKV_CLASS_CONFIG},    {405, AKV_CLASS_CONFIG},
        {408, AKV_CLASS_TRANSIENT}, {429, AKV_CLASS_TRANSIENT},
        {500, AKV_CLASS_TRANSIENT}, {501, AKV_CLASS_CONFIG},
        {502, AKV_CLASS_TRANSIENT}, {503, AKV_CLASS_TRANSIENT},
        {504, AKV_CLASS_TRANSIENT},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        enum akv_class got = akv_authentik_classify(rows[i].status, 0);

        if (got != rows[i].want) {
            fail_msg("HTTP %ld: got %s, want %s", rows[i].status,
                     akv_class_name(got), akv_class_name(rows[i].want));
        }
    }
}

static void detail_is_parsed_and_checked(void **state)
{
    char errstr[256];
    cJSON *d;

    (void)state;
    d = akv_authentik_parse_detail(detail_body, sizeof(detail_body) - 1,
                                   "deploy-bot-api", errstr, sizeof(errstr));
    assert_non_null(d);
    assert_string_equal(akv_json_string(d, "intent"), "api");
    cJSON_Delete(d);
    /* An answer about another token is never trusted. */
    assert_null(akv_authentik_parse_detail(detail_body, sizeof(detail_body) - 1,
                                           "other-token", errstr,
                                           sizeof(errstr)));
    assert_null(
        akv_authentik_parse_detail("[1,2]", 5, "x", errstr, sizeof(errstr)));
    assert_null(akv_authentik_parse_detail("{\"identifier\":\"x\"}", 18, "x",
                                           errstr, sizeof(errstr)));
    assert_null(akv_authentik_parse_detail("{\"detail\":", 10, "x", errstr,
                                           sizeof(errstr)));
}

static void key_is_parsed(void **state)
{
    char errstr[256];
    char *key;

    (void)state;
    key = akv_authentik_parse_key("{\"key\":\"abcDEF123\"}", 19, errstr,
                                  sizeof(errstr));
    assert_non_null(key);
    assert_string_equal(key, "abcDEF123");
    free(key);
    assert_null(
        akv_authentik_parse_key("{\"key\":\"\"}", 10, errstr, sizeof(errstr)));
    assert_null(
        akv_authentik_parse_key("{\"key\":5}", 9, errstr, sizeof(errstr)));
    assert_null(akv_authentik_parse_key("{\"detail\":\"Not found.\"}", 23,
                                        errstr, sizeof(errstr)));
    /* The error never echoes the body (it may hold a key). */
    assert_null(strstr(errstr, "Not found"));
}

/* A key that cannot be represented exactly is an invalid answer, not a
 * shorter key: cJSON would end the string at an embedded NUL. */
static void key_with_nul_is_refused(void **state)
{
    static const char *const bodies[] = {
        "{\"key\":\"abcdefgh\\u0000ijklmnop\"}",
        "{\"key\":\"abcdefgh\\u0000\"}",
        "{\"key\":\"\\u0000abcdefgh\"}",
        "{\"key\":\"abcdefgh\"}\n{\"x\":\"\\u0000\"}",
        /* cJSON reads a \u escape with a non-hex digit as U+0000 */
        "{\"key\":\"abcdefgh\\ud0}}\"}",
        "{\"key\":\"abcdefgh\\u0zzzijkl\"}",
    };
    char errstr[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char *key = akv_authentik_parse_key(bodies[i], strlen(bodies[i]),
                                            errstr, sizeof(errstr));

        if (key) {
            fail_msg("body %zu gave a %zu-character key", i, strlen(key));
        }
        assert_null(strstr(errstr, "abcdefgh"));
    }
    /* A raw NUL byte inside the string, which cJSON copies as well. */
    assert_null(akv_authentik_parse_key("{\"key\":\"abcdefgh\0ijkl\"}", 23,
                                        errstr, sizeof(errstr)));
}

/* An escaped backslash before "u0000" is text, and other escapes stay. */
/* An identifier cut short by a NUL would compare equal to another. */
static void detail_with_nul_is_refused(void **state)
{
    static const char body[] = "{\"identifier\":\"d\\u0000x\",\"intent\":"
                               "\"api\"}";
    char errstr[256];

    (void)state;
    assert_null(akv_authentik_parse_detail(body, strlen(body), "d", errstr,
                                           sizeof(errstr)));
}

static void key_with_escapes_is_kept_exactly(void **state)
{
    static const char body[] = "{\"key\":\"ab\\\\u0000cd\\\"e\\u00e9\"}";
    char errstr[256];
    char *key;

    (void)state;
    key = akv_authentik_parse_key(body, strlen(body), errstr, sizeof(errstr));
    assert_non_null(key);
    assert_string_equal(key, "ab\\u0000cd\"e\xc3\xa9");
    free(key);
    /* bytes that are not UTF-8 would reach Vault replaced: refused */
    assert_null(akv_authentik_parse_key("{\"key\":\"abc\xff\xfe\"}", 15, errstr,
                                        sizeof(errstr)));
}

static void document_holds_key_intent_and_extra_fields(void **state)
{
    struct akv_token tok;
    cJSON *detail;
    char errstr[256];
    char *extra[] = {"description", "expires", "managed"};
    struct akv_strlist none = {NULL, 0};
    struct akv_strlist some = {extra, 3};
    cJSON *doc;

    (void)state;
    detail =
        akv_authentik_parse_detail(detail_body, sizeof(detail_body) - 1,
                                   "deploy-bot-api", errstr, sizeof(errstr));
    assert_non_null(detail);
    tok.detail = detail;
    tok.key = "the-key-value";
    doc = akv_sync_document(&tok, &none);
    assert_non_null(doc);
    assert_int_equal(cJSON_GetArraySize(doc), 2);
    assert_string_equal(akv_json_string(doc, "key"), "the-key-value");
    assert_string_equal(akv_json_string(doc, "intent"), "api");
    cJSON_Delete(doc);

    doc = akv_sync_document(&tok, &some);
    assert_int_equal(cJSON_GetArraySize(doc), 5);
    assert_string_equal(akv_json_string(doc, "description"),
                        "Vault sync test token");
    assert_true(cJSON_IsNull(akv_json_get(doc, "managed")));
    cJSON_Delete(doc);
    cJSON_Delete(detail);
}

static void transport_failures_are_classified(void **state)
{
    (void)state;
    assert_int_equal(akv_authentik_classify(0, CURLE_COULDNT_CONNECT),
                     AKV_CLASS_TRANSIENT);
    assert_int_equal(akv_authentik_classify(0, CURLE_OPERATION_TIMEDOUT),
                     AKV_CLASS_TRANSIENT);
    assert_int_equal(akv_authentik_classify(0, CURLE_GOT_NOTHING),
                     AKV_CLASS_TRANSIENT);
    assert_int_equal(akv_authentik_classify(0, CURLE_PARTIAL_FILE),
                     AKV_CLASS_TRANSIENT);
    assert_int_equal(akv_authentik_classify(0, CURLE_RECV_ERROR),
                     AKV_CLASS_TRANSIENT);
    /* Only a person can fix an untrusted certificate. */
    assert_int_equal(akv_authentik_classify(0, CURLE_PEER_FAILED_VERIFICATION),
                     AKV_CLASS_CONFIG);
    assert_int_equal(akv_authentik_classify(0, CURLE_SSL_CACERT_BADFILE),
                     AKV_CLASS_CONFIG);
}

/* Collects "identifier:intent" items of a list page. */
static void collect(void *ctx, const char *identifier, const char *intent)
{
    char *out = ctx;
    size_t o = strlen(out);

    snprintf(out + o, 512 - o, "%s%s:%s", o ? " " : "", identifier, intent);
}

static void list_pages_are_read(void **state)
{
    static const struct {
        const char *body;
        int rc;
        long long next;
        const char *items;
    } rows[] = {
        {"{\"pagination\":{\"next\":2,\"count\":3},\"results\":["
         "{\"identifier\":\"a\",\"intent\":\"api\"},"
         "{\"identifier\":\"b\",\"intent\":\"app_password\"}]}",
         0, 2, "a:api b:app_password"},
        {"{\"pagination\":{\"next\":0},\"results\":[]}", 0, 0, ""},
        /* an item without an identifier or intent is skipped */
        {"{\"pagination\":{\"next\":0},\"results\":[{\"intent\":\"api\"},"
         "{\"identifier\":\"c\"},{\"identifier\":\"d\",\"intent\":\"api\"}]}",
         0, 0, "d:api"},
        /* no pagination object: the last page */
        {"{\"results\":[{\"identifier\":\"e\",\"intent\":\"api\"}]}", 0, 0,
         "e:api"},
        {"{\"pagination\":{\"next\":-4},\"results\":[]}", 0, 0, ""},
        {"{\"detail\":\"Not found.\"}", -1, 0, ""},
        {"<html>", -1, 0, ""},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        char got[512] = "";
        long long next = 99;
        int rc = akv_authentik_parse_page(rows[i].body, strlen(rows[i].body),
                                          collect, got, &next);

        if (rc != rows[i].rc || next != rows[i].next ||
            strcmp(got, rows[i].items) != 0) {
            fail_msg("row %zu: rc %d next %lld items \"%s\"", i, rc, next, got);
        }
    }
}

/* ---- tests/fixtures/authentik-schema/: the shapes authentik's schema
 * allows (generated from its published client's models and checked
 * against them by tests/authentik/gen_schema_fixtures.py) ---- */

/* What a fixture says the parsers must return, read with cJSON. */
static void expect_items(const cJSON *results, char *out, size_t outsz)
{
    const cJSON *t;

    out[0] = '\0';
    cJSON_ArrayForEach(t, results)
    {
        size_t o = strlen(out);

        snprintf(out + o, outsz - o, "%s%s:%s", o ? " " : "",
                 akv_json_string(t, "identifier"),
                 akv_json_string(t, "intent"));
    }
}

/* Collects "identifier:intent" items of a list page into a 64 KiB buffer. */
static void collect_big(void *ctx, const char *identifier, const char *intent)
{
    char *out = ctx;
    size_t o = strlen(out);

    snprintf(out + o, 65536 - o, "%s%s:%s", o ? " " : "", identifier, intent);
}

static void schema_detail(const char *name, const char *body, size_t len,
                          bool accepted)
{
    cJSON *want = cJSON_ParseWithLength(body, len);
    const char *ident = akv_json_string(want, "identifier");
    char errstr[256];
    cJSON *got;

    assert_non_null(ident);
    got = akv_authentik_parse_detail(body, len, ident, errstr, sizeof(errstr));
    if (!accepted) {
        if (got) {
            fail_msg("%s: accepted", name);
        }
        cJSON_Delete(want);
        return;
    }
    if (!got) {
        fail_msg("%s: refused: %s", name, errstr);
    }
    assert_string_equal(akv_json_string(got, "intent"),
                        akv_json_string(want, "intent"));
    cJSON_Delete(got);
    cJSON_Delete(want);
}

static void schema_list(const char *name, const char *body, size_t len)
{
    cJSON *want = cJSON_ParseWithLength(body, len);
    const cJSON *pg = akv_json_object(want, "pagination");
    char *items = calloc(1, 65536);
    char *got = calloc(1, 65536);
    long long next = -1;
    long long count = -1;

    assert_non_null(items);
    assert_non_null(got);
    expect_items(akv_json_get(want, "results"), items, 65536);
    if (akv_authentik_parse_page(body, len, collect_big, got, &next) != 0) {
        fail_msg("%s: page refused", name);
    }
    if (next != (long long)akv_json_get(pg, "next")->valuedouble) {
        fail_msg("%s: next %lld", name, next);
    }
    if (strcmp(got, items) != 0) {
        fail_msg("%s: items \"%s\"", name, got);
    }
    if (akv_authentik_parse_count(body, len, &count) != 0 ||
        count != (long long)akv_json_get(pg, "count")->valuedouble) {
        fail_msg("%s: count refused or %lld", name, count);
    }
    free(items);
    free(got);
    cJSON_Delete(want);
}

static void schema_view_key(const char *name, const char *body, size_t len)
{
    cJSON *want = cJSON_ParseWithLength(body, len);
    char errstr[256];
    char *key = akv_authentik_parse_key(body, len, errstr, sizeof(errstr));

    if (!key) {
        fail_msg("%s: refused: %s", name, errstr);
    }
    /* never print a key, even a made-up one */
    if (strcmp(key, akv_json_string(want, "key")) != 0) {
        fail_msg("%s: the key read differs", name);
    }
    free(key);
    cJSON_Delete(want);
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* One schema fixture, by the kind its name starts with; counts[] per kind. */
static void schema_fixture(const char *name, const char *buf, size_t len,
                           void *ctx)
{
    int *counts = ctx;

    if (has_prefix(name, "detail-")) {
        schema_detail(name, buf, len, true);
        counts[0]++;
    } else if (has_prefix(name, "refused-detail-")) {
        /* allowed by the schema (intent is optional there), refused by
         * the worker: it cannot tell what to write without it */
        schema_detail(name, buf, len, false);
        counts[1]++;
    } else if (has_prefix(name, "list-")) {
        schema_list(name, buf, len);
        counts[2]++;
    } else if (has_prefix(name, "view_key-")) {
        schema_view_key(name, buf, len);
        counts[3]++;
    } else {
        fail_msg("%s: unknown kind of fixture", name);
    }
}

static void schema_shapes_are_parsed(void **state)
{
    int counts[4] = {0, 0, 0, 0};

    (void)state;
    for_each_fixture("authentik-schema", schema_fixture, counts);
    /* the generator's set: a missing directory entry is a failure */
    assert_true(counts[0] >= 12);
    assert_true(counts[1] >= 1);
    assert_true(counts[2] >= 7);
    assert_true(counts[3] >= 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classify_statuses),
        cmocka_unit_test(transport_failures_are_classified),
        cmocka_unit_test(detail_is_parsed_and_checked),
        cmocka_unit_test(key_is_parsed),
        cmocka_unit_test(key_with_nul_is_refused),
        cmocka_unit_test(key_with_escapes_is_kept_exactly),
        cmocka_unit_test(detail_with_nul_is_refused),
        cmocka_unit_test(document_holds_key_intent_and_extra_fields),
        cmocka_unit_test(list_pages_are_read),
        cmocka_unit_test(schema_shapes_are_parsed),
    };

    return cmocka_run_group_tests_name("authentik", tests, NULL, NULL);
}
