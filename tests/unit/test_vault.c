/*
 * test_vault — Vault paths, write bodies, read parsing and classification,
 * on the status codes and bodies Vault really returns.
 */
#include "testutil.h"

#include "json.h"
#include "transport.h"
#include "vault.h"

#include <curl/curl.h>

static void classify_every_known_answer(void **state)
{
    static const struct {
        long status;
        const char *body;
        enum akv_class want;
    } rows[] = {
        {200, "{\"data\":{\"version\":1}}", AKV_CLASS_OK},
        {204, "", AKV_CLASS_OK},
        {0, "", AKV_CLASS_TRANSIENT},
        {400,
         "{\"errors\":[\"check-and-set parameter did not match the current "
         "version\"]}",
         AKV_CLASS_SUPERSEDED},
        {400,
         "{\"errors\":[\"check-and-set parameter required for this "
         "call\"]}",
         AKV_CLASS_CONFIG},
        {400, "{\"errors\":[\"error parsing check-and-set parameter\"]}",
         AKV_CLASS_CONFIG},
        {400, "{\"errors\":[\"no data provided\"]}", AKV_CLASS_CONFIG},
        {400,
         "{\"errors\":[\"Upgrading from non-versioned to versioned data. "
         "This backend will be unavailable for a brief period and will "
         "resume service shortly.\"]}",
         AKV_CLASS_TRANSIENT},
        {400,
         "{\"errors\":[\"Waiting for the primary to upgrade from "
         "non-versioned to versioned data. This backend will be unavailable "
         "for a brief period and will resume service when the primary is "
         "finished.\"]}",
         AKV_CLASS_TRANSIENT},
        {403, "{\"errors\":[\"permission denied\"]}", AKV_CLASS_CONFIG},
        {403,
         "{\"errors\":[\"1 error occurred:\\n\\t* permission denied\\n\\n\"]}",
         AKV_CLASS_CONFIG},
        {403,
         "{\"errors\":[\"2 errors occurred:\\n\\t* permission denied\\n\\t* "
         "invalid token\\n\\n\"]}",
         AKV_CLASS_REAUTH},
        {404,
         "{\"errors\":[\"no handler for route \\\"nomount/data/x\\\". route "
         "entry not found.\"]}",
         AKV_CLASS_CONFIG},
        {405, "{\"errors\":[]}", AKV_CLASS_CONFIG},
        {307, "", AKV_CLASS_TRANSIENT},
        {412, "{\"errors\":[\"required index state not present\"]}",
         AKV_CLASS_TRANSIENT},
        {429,
         "{\"errors\":[\"request path \\\"kv/data/a\\\": rate limit quota "
         "exceeded\"]}",
         AKV_CLASS_TRANSIENT},
        {500, "{\"errors\":[\"internal error\"]}", AKV_CLASS_TRANSIENT},
        /* Vault's answer to renew-self once the token's max TTL passed
         * (Vault 1.21, vault/expiration.go): never renewable again. */
        {500,
         "{\"errors\":[\"1 error occurred:\\n\\t* past the max TTL, "
         "cannot renew\\n\\n\"]}",
         AKV_CLASS_REAUTH},
        {501, "", AKV_CLASS_CONFIG},
        {502, "", AKV_CLASS_TRANSIENT},
        {503, "{\"errors\":[\"Vault is sealed\"]}", AKV_CLASS_TRANSIENT},
        {503, "{\"errors\":[\"overloaded, try again later\"]}",
         AKV_CLASS_TRANSIENT},
        {503, "{\"errors\":[\"no active Vault instance found\"]}",
         AKV_CLASS_TRANSIENT},
        {413, "{\"errors\":[\"http: request body too large\"]}",
         AKV_CLASS_CONFIG},
        {400, "{\"errors\":[\"cannot write to a path ending in '/'\"]}",
         AKV_CLASS_CONFIG},
        {404,
         "{\"request_id\":\"r\",\"data\":null,\"warnings\":[\"Invalid "
         "path for a versioned K/V secrets engine. See the API docs for the "
         "appropriate API endpoints to use. If using the Vault CLI, use "
         "'vault kv put' for this operation.\"]}",
         AKV_CLASS_CONFIG},
        {404,
         "{\"request_id\":\"r\",\"data\":null,\"warnings\":[\"Non-listing "
         "operations on the root of a K/V v2 mount are not supported.\"]}",
         AKV_CLASS_CONFIG},
        {400, "", AKV_CLASS_CONFIG}, /* token header too large */
        {503, "{\"errors\":[\"node is not active\"]}", AKV_CLASS_TRANSIENT},
        {500,
         "{\"errors\":[\"local node not active but active cluster node not "
         "found\"]}",
         AKV_CLASS_TRANSIENT},
        {400, "{\"errors\":[\"error parsing JSON\"]}", AKV_CLASS_CONFIG},
        {500, "{\"errors\":[\"malformed JSON, unclosed containers\"]}",
         AKV_CLASS_TRANSIENT},
        {415,
         "{\"errors\":[\"PATCH requires Content-Type of "
         "application/merge-patch+json, provided application/json\"]}",
         AKV_CLASS_CONFIG},
        {403, "{\"errors\":[\"namespaces feature not enabled\"]}",
         AKV_CLASS_CONFIG},
        {504, "", AKV_CLASS_TRANSIENT},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        enum akv_class got =
            akv_vault_classify(rows[i].status, rows[i].body, 0);

        if (got != rows[i].want) {
            fail_msg("row %zu (HTTP %ld): got %s, want %s", i, rows[i].status,
                     akv_class_name(got), akv_class_name(rows[i].want));
        }
    }
}

static void transport_failures_are_classified(void **state)
{
    (void)state;
    assert_int_equal(akv_vault_classify(0, "", CURLE_COULDNT_CONNECT),
                     AKV_CLASS_TRANSIENT);
    assert_int_equal(akv_vault_classify(0, "", CURLE_OPERATION_TIMEDOUT),
                     AKV_CLASS_TRANSIENT);
    assert_int_equal(akv_vault_classify(0, "", CURLE_GOT_NOTHING),
                     AKV_CLASS_TRANSIENT);
    assert_int_equal(akv_vault_classify(0, "", CURLE_PARTIAL_FILE),
                     AKV_CLASS_TRANSIENT);
    assert_int_equal(akv_vault_classify(0, "", CURLE_SEND_ERROR),
                     AKV_CLASS_TRANSIENT);
    assert_int_equal(akv_vault_classify(0, "", CURLE_SSL_CONNECT_ERROR),
                     AKV_CLASS_TRANSIENT);
    assert_int_equal(akv_vault_classify(0, "", CURLE_COULDNT_RESOLVE_HOST),
                     AKV_CLASS_TRANSIENT);
    /* What retrying cannot fix: go-retryablehttp does not retry these. */
    assert_int_equal(akv_vault_classify(0, "", CURLE_PEER_FAILED_VERIFICATION),
                     AKV_CLASS_CONFIG);
    assert_int_equal(akv_vault_classify(0, "", CURLE_SSL_CERTPROBLEM),
                     AKV_CLASS_CONFIG);
    assert_int_equal(akv_vault_classify(0, "", CURLE_UNSUPPORTED_PROTOCOL),
                     AKV_CLASS_CONFIG);
    assert_int_equal(akv_vault_classify(0, "", CURLE_URL_MALFORMAT),
                     AKV_CLASS_CONFIG);
    /* A server refusing our client certificate: a receive error whose
     * text names the alert. */
    assert_int_equal(
        akv_transport_class(CURLE_RECV_ERROR,
                            "OpenSSL SSL_read: error:0A00045C:SSL "
                            "routines::tlsv13 alert certificate required, "
                            "errno 0"),
        AKV_CLASS_CONFIG);
    assert_int_equal(
        akv_transport_class(CURLE_RECV_ERROR,
                            "OpenSSL SSL_read: error:0A000412:SSL "
                            "routines::sslv3 alert bad certificate"),
        AKV_CLASS_CONFIG);
    assert_int_equal(
        akv_transport_class(CURLE_RECV_ERROR, "Connection reset by peer"),
        AKV_CLASS_TRANSIENT);
    assert_int_equal(akv_transport_class(CURLE_RECV_ERROR, NULL),
                     AKV_CLASS_TRANSIENT);
}

static void path_escapes_each_segment(void **state)
{
    char out[256];

    (void)state;
    assert_int_equal(akv_vault_secret_path("kv", "data", "authentik",
                                           "deploy-bot_1", out, sizeof(out)),
                     0);
    assert_string_equal(out, "kv/data/authentik/deploy-bot_1");
    assert_int_equal(akv_vault_secret_path("team a/kv", "metadata",
                                           "auth/tokens", "x", out,
                                           sizeof(out)),
                     0);
    assert_string_equal(out, "team%20a/kv/metadata/auth/tokens/x");
    /* A slash or dots in an identifier can never become path structure. */
    assert_int_equal(
        akv_vault_secret_path("kv", "data", "p", "../a/b?c", out, sizeof(out)),
        0);
    assert_string_equal(out, "kv/data/p/..%2Fa%2Fb%3Fc");
    assert_int_equal(akv_vault_secret_path("kv", "data", "p", "abc", out, 12),
                     -1);
}

/* "." and ".." would be resolved by curl and Vault's router into another
 * path: kv/data/authentik/.. is the mount's data root. */
static void path_refuses_dot_segments(void **state)
{
    static const char *const idents[] = {".", "..", ""};
    char out[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(idents) / sizeof(idents[0]); i++) {
        if (akv_vault_secret_path("kv", "data", "authentik", idents[i], out,
                                  sizeof(out)) == 0) {
            fail_msg("identifier \"%s\" gave the path %s", idents[i], out);
        }
    }
    assert_int_equal(
        akv_vault_secret_path("kv", "data", "a/../b", "x", out, sizeof(out)),
        -1);
    assert_int_equal(
        akv_vault_secret_path("kv/.", "data", "a", "x", out, sizeof(out)), -1);
    /* dots inside a name are names */
    assert_int_equal(
        akv_vault_secret_path("kv", "data", "a.b", "...", out, sizeof(out)), 0);
    assert_string_equal(out, "kv/data/a.b/...");
    /* empty segments of mount and prefix are skipped, not kept as "//" */
    assert_int_equal(
        akv_vault_secret_path("kv/", "data", "/a//b/", "x", out, sizeof(out)),
        0);
    assert_string_equal(out, "kv/data/a/b/x");
}

/* Only a version newer than the CAS base proves a write happened. */
static void write_counts_only_with_a_confirmed_version(void **state)
{
    static const struct {
        const char *body;
        long long cas;
        enum akv_class cls;
        long long version;
    } rows[] = {
        {"{\"data\":{\"created_time\":\"t\",\"version\":4}}", 3, AKV_CLASS_OK,
         4},
        {"{\"data\":{\"version\":1}}", 0, AKV_CLASS_OK, 1},
        {"{\"data\":null}", 0, AKV_CLASS_TRANSIENT, 0},
        {"{\"data\":{\"created_time\":\"t\"}}", 0, AKV_CLASS_TRANSIENT, 0},
        {"{\"data\":{\"version\":0}}", 0, AKV_CLASS_TRANSIENT, 0},
        {"{\"data\":{\"version\":3}}", 3, AKV_CLASS_TRANSIENT, 0},
        {"{\"data\":{\"version\":\"5\"}}", 3, AKV_CLASS_TRANSIENT, 0},
        {"{\"data\":{\"version\":4.5}}", 3, AKV_CLASS_TRANSIENT, 0},
        {"<html><body>OK</body></html>", 0, AKV_CLASS_TRANSIENT, 0},
        {"", 0, AKV_CLASS_TRANSIENT, 0},
        {"\x01garbage{{", 0, AKV_CLASS_TRANSIENT, 0},
    };
    char errstr[256];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        long long v = -1;
        enum akv_class cls =
            akv_vault_parse_write(rows[i].body, strlen(rows[i].body),
                                  rows[i].cas, &v, errstr, sizeof(errstr));

        if (cls != rows[i].cls || v != rows[i].version) {
            fail_msg("row %zu: class %s version %lld", i, akv_class_name(cls),
                     v);
        }
        if (cls != AKV_CLASS_OK) {
            assert_null(strstr(errstr, "html"));
        }
    }
}

/* Vault's error text may quote the request: the key goes before the text is
 * cut, so not even a piece of it remains at the cut. */
static void error_excerpt_is_bounded_and_redacted(void **state)
{
    static const char key[] = "KEYkeyKEYkeyKEYkeyKEYkey0123456789";
    char body[2048];
    char out[64];
    char piece[13];
    size_t i;

    (void)state;
    snprintf(body, sizeof(body),
             "{\"errors\":[\"1 error occurred:\\n\\t* bad body: "
             "{\\\"data\\\":{\\\"key\\\":\\\"%s\\\"}}\\n\"]}",
             key);
    akv_vault_error_excerpt(body, strlen(body), key, out, sizeof(out));
    assert_non_null(strstr(out, "1 error occurred:"));
    assert_null(strchr(out, '\n'));
    assert_true(strlen(out) < sizeof(out));
    for (i = 0; i + 12 <= strlen(key); i++) {
        memcpy(piece, key + i, 12);
        piece[12] = '\0';
        if (strstr(out, piece)) {
            fail_msg("a piece of the key survived: %s", out);
        }
    }
    akv_vault_error_excerpt("not json", 8, key, out, sizeof(out));
    assert_string_equal(out, "");
}

/* A 403 by policy on one of Vault's own paths names what the token's
 * policies must grant there; an invalid token, another status or class
 * leaves the message alone. */
static void denied_hint_names_only_policy_refusals(void **state)
{
    static const struct {
        long status;
        enum akv_class cls;
        const char *in;
        const char *out;
    } cases[] = {
        {403, AKV_CLASS_CONFIG,
         "vault token renewal answered HTTP 403: 1 error occurred:  * "
         "permission denied  ",
         "vault token renewal answered HTTP 403: 1 error occurred:  * "
         "permission denied (the token's policies do not grant update on "
         "auth/token/renew-self)"},
        {403, AKV_CLASS_REAUTH, "invalid token", "invalid token"},
        {400, AKV_CLASS_CONFIG, "missing role", "missing role"},
        {503, AKV_CLASS_TRANSIENT, "sealed", "sealed"},
        {403, AKV_CLASS_CONFIG, "",
         " (the token's policies do not grant "
         "update on auth/token/renew-self)"},
    };
    char buf[256];
    char tiny[24];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(buf, sizeof(buf), "%s", cases[i].in);
        akv_vault_denied_hint(cases[i].status, cases[i].cls,
                              "update on auth/token/renew-self", buf,
                              sizeof(buf));
        assert_string_equal(buf, cases[i].out);
    }
    /* A buffer too small keeps a terminated prefix. */
    snprintf(tiny, sizeof(tiny), "permission denied");
    akv_vault_denied_hint(403, AKV_CLASS_CONFIG, "read on x", tiny,
                          sizeof(tiny));
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    assert_memory_equal(tiny, "permission denied (the ", sizeof(tiny) - 1);
}

static void read_of_live_version(void **state)
{
    static const char body[] =
        "{\"request_id\":\"r\",\"lease_id\":\"\",\"renewable\":false,"
        "\"lease_duration\":0,\"data\":{\"data\":{\"intent\":\"api\","
        "\"key\":\"k1\"},\"metadata\":{\"created_time\":"
        "\"2018-03-22T02:24:06.945319214Z\",\"custom_metadata\":null,"
        "\"deletion_time\":\"\",\"destroyed\":false,\"version\":2}},"
        "\"wrap_info\":null,\"warnings\":null,\"auth\":null,"
        "\"mount_type\":\"kv\"}\n";
    struct akv_vault_secret sec;
    char errstr[256];

    (void)state;
    assert_int_equal(akv_vault_parse_read(200, body, sizeof(body) - 1, &sec,
                                          errstr, sizeof(errstr)),
                     AKV_CLASS_OK);
    assert_int_equal(sec.version, 2);
    assert_non_null(sec.data);
    assert_string_equal(akv_json_string(sec.data, "key"), "k1");
    akv_vault_secret_free(&sec);
    assert_null(sec.data);
}

static void read_of_never_written_path(void **state)
{
    struct akv_vault_secret sec;
    char errstr[256];

    (void)state;
    assert_int_equal(akv_vault_parse_read(404, "{\"errors\":[]}\n", 14, &sec,
                                          errstr, sizeof(errstr)),
                     AKV_CLASS_OK);
    assert_int_equal(sec.version, 0);
    assert_null(sec.data);
}

static void read_of_deleted_version_keeps_its_number(void **state)
{
    static const char body[] =
        "{\"request_id\":\"r\",\"lease_id\":\"\",\"renewable\":false,"
        "\"lease_duration\":0,\"data\":{\"data\":null,\"metadata\":{"
        "\"created_time\":\"2024-01-01T00:00:00.1Z\",\"custom_metadata\":"
        "null,\"deletion_time\":\"2024-01-02T00:00:00.2Z\",\"destroyed\":"
        "false,\"version\":3}},\"wrap_info\":null,\"warnings\":null,"
        "\"auth\":null,\"mount_type\":\"\"}";
    struct akv_vault_secret sec;
    char errstr[256];

    (void)state;
    assert_int_equal(akv_vault_parse_read(404, body, sizeof(body) - 1, &sec,
                                          errstr, sizeof(errstr)),
                     AKV_CLASS_OK);
    assert_int_equal(sec.version, 3);
    assert_null(sec.data);
}

static void read_failures_are_classified(void **state)
{
    static const char no_route[] =
        "{\"errors\":[\"no handler for route \\\"nope/data/authentik/x\\\". "
        "route entry not found.\"]}\n";
    static const char warn[] =
        "{\"request_id\":\"r\",\"data\":null,\"warnings\":[\"Invalid path "
        "for a versioned K/V secrets engine.\"]}";
    struct akv_vault_secret sec;
    char errstr[256];

    (void)state;
    assert_int_equal(akv_vault_parse_read(404, no_route, sizeof(no_route) - 1,
                                          &sec, errstr, sizeof(errstr)),
                     AKV_CLASS_CONFIG);
    assert_non_null(strstr(errstr, "no handler for route"));
    assert_int_equal(akv_vault_parse_read(404, warn, sizeof(warn) - 1, &sec,
                                          errstr, sizeof(errstr)),
                     AKV_CLASS_CONFIG);
    assert_int_equal(akv_vault_parse_read(503,
                                          "{\"errors\":[\"Vault is "
                                          "sealed\"]}",
                                          30, &sec, errstr, sizeof(errstr)),
                     AKV_CLASS_TRANSIENT);
    assert_non_null(strstr(errstr, "Vault is sealed"));
    assert_int_equal(
        akv_vault_parse_read(403,
                             "{\"errors\":[\"2 errors occurred:\\n\\t* "
                             "permission denied\\n\\t* invalid token\\n\\n\"]}",
                             78, &sec, errstr, sizeof(errstr)),
        AKV_CLASS_REAUTH);
    assert_int_equal(
        akv_vault_parse_read(200, "<html>", 6, &sec, errstr, sizeof(errstr)),
        AKV_CLASS_TRANSIENT);
}

static void write_body_carries_cas_and_data(void **state)
{
    cJSON *data = cJSON_CreateObject();
    cJSON *root;
    char *body;
    long long cas = -1;

    (void)state;
    cJSON_AddStringToObject(data, "key", "k");
    cJSON_AddStringToObject(data, "intent", "api");
    body = akv_vault_write_body(data, 7);
    assert_non_null(body);
    root = cJSON_Parse(body);
    assert_non_null(root);
    assert_int_equal(
        akv_json_int(akv_json_object(root, "options"), "cas", &cas), 0);
    assert_int_equal(cas, 7);
    assert_true(cJSON_Compare(akv_json_get(root, "data"), data, 1));
    cJSON_Delete(root);
    akv_json_free_string(body);
    cJSON_Delete(data);
}

static void add_key(void *ctx, const char *key)
{
    char *out = ctx;
    size_t o = strlen(out);

    snprintf(out + o, 256 - o, "%s%s", o ? " " : "", key);
}

static void list_answers_and_prefix_paths(void **state)
{
    static const char keys[] =
        "{\"data\":{\"keys\":[\"a\",\"team/\",\"b\",\"\",7]}}";
    static const char errors[] = "{\"errors\":[]}";
    char got[256] = "";
    char path[256];

    (void)state;
    assert_int_equal(akv_vault_parse_list(keys, sizeof(keys) - 1, add_key, got),
                     0);
    assert_string_equal(got, "a b");
    got[0] = '\0';
    assert_int_equal(
        akv_vault_parse_list(errors, sizeof(errors) - 1, add_key, got), -1);
    assert_int_equal(
        akv_vault_prefix_path("kv", "authentik", path, sizeof(path)), 0);
    assert_string_equal(path, "kv/metadata/authentik");
    assert_int_equal(
        akv_vault_prefix_path("secret/", "/team a/x", path, sizeof(path)), 0);
    assert_string_equal(path, "secret/metadata/team%20a/x");
    assert_int_equal(akv_vault_prefix_path("kv", "a/../b", path, sizeof(path)),
                     -1);
    assert_int_equal(akv_vault_prefix_path("kv", "authentik", path, 8), -1);
}

/* One row of metadata_answers: an answer and what it says. */
struct meta_row {
    const char *name;
    long status;
    const char *body;
    enum akv_class cls;
    long long version;
    int live;
};

/* clang-format off */
#define META(cur, v3) \
    "{\"data\":{\"cas_required\":false,\"current_version\":" cur "," \
    "\"custom_metadata\":null,\"delete_version_after\":\"0s\"," \
    "\"max_versions\":0,\"oldest_version\":0,\"versions\":{" \
    "\"2\":{\"created_time\":\"t\",\"deletion_time\":\"\"," \
    "\"destroyed\":false}," v3 "}}}"
static const struct meta_row meta_rows[] = {
    {"current and live", 200,
     META("3", "\"3\":{\"created_time\":\"t\",\"deletion_time\":\"\","
               "\"destroyed\":false}"), AKV_CLASS_OK, 3, 1},
    {"current version deleted", 200,
     META("3", "\"3\":{\"created_time\":\"t\",\"deletion_time\":"
               "\"2026-12-07T10:00:00Z\",\"destroyed\":false}"),
     AKV_CLASS_OK, 3, 0},
    {"current version destroyed", 200,
     META("3", "\"3\":{\"created_time\":\"t\",\"deletion_time\":\"\","
               "\"destroyed\":true}"), AKV_CLASS_OK, 3, 0},
    {"current version not described", 200, META("3", "\"4\":{}"),
     AKV_CLASS_OK, 3, 0},
    {"an older version is live, not the current one", 200,
     META("2", "\"3\":{\"deletion_time\":\"x\",\"destroyed\":true}"),
     AKV_CLASS_OK, 2, 1},
    {"never written, or purged", 404, "{\"errors\":[]}\n", AKV_CLASS_OK, 0, 0},
    {"no such mount", 404,
     "{\"errors\":[\"no handler for route \\\"nope/metadata/x\\\"\"]}",
     AKV_CLASS_CONFIG, 0, 0},
    {"sealed", 503, "{\"errors\":[\"Vault is sealed\"]}", AKV_CLASS_TRANSIENT,
     0, 0},
    {"not JSON", 200, "<html>", AKV_CLASS_TRANSIENT, 0, 0},
    {"no current_version", 200, "{\"data\":{}}", AKV_CLASS_TRANSIENT, 0, 0},
};
/* clang-format on */

static void metadata_answers(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(meta_rows) / sizeof(meta_rows[0]); i++) {
        const struct meta_row *r = &meta_rows[i];
        long long version = -1;
        int live = -1;
        char errstr[256] = "";
        enum akv_class cls =
            akv_vault_parse_metadata(r->status, r->body, strlen(r->body),
                                     &version, &live, errstr, sizeof(errstr));

        if (cls != r->cls || version != r->version || live != r->live) {
            fail_msg("%s: got %s version=%lld live=%d (%s), want %s "
                     "version=%lld live=%d",
                     r->name, akv_class_name(cls), version, live, errstr,
                     akv_class_name(r->cls), r->version, r->live);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(classify_every_known_answer),
        cmocka_unit_test(transport_failures_are_classified),
        cmocka_unit_test(path_escapes_each_segment),
        cmocka_unit_test(path_refuses_dot_segments),
        cmocka_unit_test(write_counts_only_with_a_confirmed_version),
        cmocka_unit_test(error_excerpt_is_bounded_and_redacted),
        cmocka_unit_test(read_of_live_version),
        cmocka_unit_test(read_of_never_written_path),
        cmocka_unit_test(read_of_deleted_version_keeps_its_number),
        cmocka_unit_test(read_failures_are_classified),
        cmocka_unit_test(denied_hint_names_only_policy_refusals),
        cmocka_unit_test(metadata_answers),
        cmocka_unit_test(write_body_carries_cas_and_data),
        cmocka_unit_test(list_answers_and_prefix_paths),
    };

    return cmocka_run_group_tests_name("vault", tests, NULL, NULL);
}
