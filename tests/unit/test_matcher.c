/*
 * test_matcher — every authentik event shape ak2vault meets, and the
 * identifier rules.
 */
#include "testutil.h"

#include "matchrules.h"

#include "matcher.h"

static void match_text(const char *text, struct akv_match *m)
{
    akv_match_event(&rules, text, strlen(text), m);
}

static void match_fixture(const char *name, struct akv_match *m)
{
    char rel[256];
    size_t len;
    char *buf;

    snprintf(rel, sizeof(rel), "events/%s", name);
    buf = read_fixture(rel, &len);
    akv_match_event(&rules, buf, len, m);
    free(buf);
}

static void expect_fixture(const char *name, enum akv_match_kind kind,
                           const char *identifier)
{
    struct akv_match m;

    match_fixture(name, &m);
    if (m.kind != kind) {
        fail_msg("%s: got %s (%s), want %s", name, akv_match_kind_name(m.kind),
                 m.reason, akv_match_kind_name(kind));
    }
    if (identifier) {
        assert_string_equal(m.identifier, identifier);
        assert_string_equal(m.token_pk, "8b03f2c1df9c4cabbb33602efade9ced");
    }
}

static void token_created_with_and_without_diff_syncs(void **state)
{
    (void)state;
    expect_fixture("token_created_enterprise.json", AKV_MATCH_SYNC,
                   "deploy-bot-api");
    expect_fixture("token_created.json", AKV_MATCH_SYNC, "deploy-bot-api");
    expect_fixture("token_created_no_expiry.json", AKV_MATCH_SYNC,
                   "deploy-bot-api");
}

static void token_updated_syncs(void **state)
{
    struct akv_match m;

    (void)state;
    expect_fixture("token_updated.json", AKV_MATCH_SYNC, "deploy-bot-api");
    match_fixture("token_updated.json", &m);
    assert_string_equal(m.action, "model_updated");
    assert_true(strlen(m.event_pk) > 0);
}

static void set_key_double_event_both_sync(void **state)
{
    (void)state;
    expect_fixture("token_set_key_middleware.json", AKV_MATCH_SYNC,
                   "deploy-bot-api");
    expect_fixture("token_set_key_explicit.json", AKV_MATCH_SYNC,
                   "deploy-bot-api");
}

static void secret_rotate_reads_context_token(void **state)
{
    struct akv_match m;

    (void)state;
    expect_fixture("token_rotate.json", AKV_MATCH_SYNC, "deploy-bot-api");
    match_fixture("token_rotate.json", &m);
    assert_string_equal(m.action, "secret_rotate");
}

static void deleted_token_is_a_delete(void **state)
{
    (void)state;
    expect_fixture("token_deleted.json", AKV_MATCH_DELETE, "deploy-bot-api");
}

static void non_token_events_are_skipped(void **state)
{
    static const char *const names[] = {
        "token_view.json", /* our own view_key reads */
        "user_updated_intpk.json",
        "login.json",
        "login_failed.json",
        "authorize_application.json",
        "notificationrule_deleted.json",
        "certificate_view.json",
        "custom_event.json",
        "oauth2_access_token_created.json",
        "token_rotate_managed_secret.json",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        expect_fixture(names[i], AKV_MATCH_SKIP, NULL);
    }
}

static void key_order_does_not_matter(void **state)
{
    struct akv_match m;

    (void)state;
    match_text("{\"context\":{\"model\":{\"name\":\"a-b (expires=x)\","
               "\"model_name\":\"token\",\"pk\":"
               "\"8B03F2C1-DF9C-4CAB-BB33-602EFADE9CED\","
               "\"app\":\"authentik_core\"}},\"action\":\"model_updated\"}",
               &m);
    assert_int_equal(m.kind, AKV_MATCH_SYNC);
    assert_string_equal(m.identifier, "a-b");
    assert_string_equal(m.token_pk, "8b03f2c1df9c4cabbb33602efade9ced");
}

static void identifier_falls_back_to_the_diff(void **state)
{
    struct akv_match m;

    (void)state;
    match_text("{\"action\":\"model_created\",\"context\":{\"diff\":{"
               "\"identifier\":{\"new_value\":\"from-diff\","
               "\"previous_value\":null}},\"model\":{\"pk\":"
               "\"8b03f2c1df9c4cabbb33602efade9ced\",\"app\":"
               "\"authentik_core\",\"model_name\":\"token\"}}}",
               &m);
    assert_int_equal(m.kind, AKV_MATCH_SYNC);
    assert_string_equal(m.identifier, "from-diff");
}

static void unusable_token_events_are_poison(void **state)
{
    static const char *const events[] = {
        /* identifier not a slug: must never become a Vault path */
        "{\"action\":\"model_created\",\"context\":{\"model\":{\"pk\":"
        "\"8b03f2c1df9c4cabbb33602efade9ced\",\"app\":\"authentik_core\","
        "\"model_name\":\"token\",\"name\":\"../../escape (expires=1)\"}}}",
        "{\"action\":\"model_updated\",\"context\":{\"model\":{\"pk\":"
        "\"8b03f2c1df9c4cabbb33602efade9ced\",\"app\":\"authentik_core\","
        "\"model_name\":\"token\",\"name\":\"a/b\"}}}",
        "{\"action\":\"model_updated\",\"context\":{\"model\":{\"pk\":"
        "\"8b03f2c1df9c4cabbb33602efade9ced\",\"app\":\"authentik_core\","
        "\"model_name\":\"token\",\"name\":\" leading-space\"}}}",
        "{\"action\":\"model_updated\",\"context\":{\"model\":{\"pk\":"
        "\"8b03f2c1df9c4cabbb33602efade9ced\",\"app\":\"authentik_core\","
        "\"model_name\":\"token\",\"name\":\"caf\xc3\xa9\"}}}",
        /* no name and no diff identifier */
        "{\"action\":\"model_created\",\"context\":{\"model\":{\"pk\":"
        "\"8b03f2c1df9c4cabbb33602efade9ced\",\"app\":\"authentik_core\","
        "\"model_name\":\"token\"}}}",
        /* name of the wrong type */
        "{\"action\":\"model_created\",\"context\":{\"model\":{\"pk\":"
        "\"8b03f2c1df9c4cabbb33602efade9ced\",\"app\":\"authentik_core\","
        "\"model_name\":\"token\",\"name\":42}}}",
        /* a token with an integer or malformed pk */
        "{\"action\":\"model_created\",\"context\":{\"model\":{\"pk\":7,"
        "\"app\":\"authentik_core\",\"model_name\":\"token\",\"name\":"
        "\"x\"}}}",
        "{\"action\":\"model_created\",\"context\":{\"model\":{\"pk\":"
        "\"not-a-uuid\",\"app\":\"authentik_core\",\"model_name\":"
        "\"token\",\"name\":\"x\"}}}",
        /* a matched action without any usable context */
        "{\"action\":\"model_created\"}",
        "{\"action\":\"model_created\",\"context\":[1,2]}",
        "{\"action\":\"model_created\",\"context\":\"text\"}",
        "{\"action\":\"secret_rotate\",\"context\":{\"message\":\"m\"}}",
        "{\"action\":\"model_updated\",\"context\":{\"model\":{\"pk\":"
        "\"8b03f2c1df9c4cabbb33602efade9ced\",\"name\":\"x\"}}}",
        /* undecodable, but claims to be about an authentik_core token */
        "{\"action\":\"model_created\",\"context\":{\"model\":{\"app\":"
        "\"authentik_core\",\"model_name\":\"token\"",
    };
    struct akv_match m;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        match_text(events[i], &m);
        if (m.kind != AKV_MATCH_POISON) {
            fail_msg("event %zu: got %s (%s), want poison", i,
                     akv_match_kind_name(m.kind), m.reason);
        }
        assert_string_equal(m.identifier, "");
        assert_true(strlen(m.reason) > 0);
    }
}

static void overlong_identifier_is_poison(void **state)
{
    char name[400];
    char event[700];
    struct akv_match m;

    (void)state;
    memset(name, 'a', 300);
    name[300] = '\0';
    snprintf(event, sizeof(event),
             "{\"action\":\"model_created\",\"context\":{\"model\":{\"pk\":"
             "\"8b03f2c1df9c4cabbb33602efade9ced\",\"app\":"
             "\"authentik_core\",\"model_name\":\"token\",\"name\":\"%s\"}}}",
             name);
    match_text(event, &m);
    assert_int_equal(m.kind, AKV_MATCH_POISON);
    /* 255 is still fine */
    name[255] = '\0';
    snprintf(event, sizeof(event),
             "{\"action\":\"model_created\",\"context\":{\"model\":{\"pk\":"
             "\"8b03f2c1df9c4cabbb33602efade9ced\",\"app\":"
             "\"authentik_core\",\"model_name\":\"token\",\"name\":\"%s\"}}}",
             name);
    match_text(event, &m);
    assert_int_equal(m.kind, AKV_MATCH_SYNC);
}

static void undecodable_and_foreign_bytes_are_skipped(void **state)
{
    static const char *const events[] = {
        "",        "not json at all", "\xff\xfe\x00binary",
        "[1,2,3]", "\"string\"",      "{\"action\":\"login\",\"context\":",
        "{}",      "{\"action\":5}",  "{\"pk\":\"x\",\"context\":{}}",
    };
    struct akv_match m;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
        akv_match_event(&rules, events[i], i == 2 ? 9 : strlen(events[i]), &m);
        if (m.kind != AKV_MATCH_SKIP) {
            fail_msg("event %zu: got %s (%s), want skip", i,
                     akv_match_kind_name(m.kind), m.reason);
        }
    }
}

static void lists_are_configurable(void **state)
{
    static char *only_rotate_v[] = {"secret_rotate"};
    static const struct akv_strlist only_rotate = {only_rotate_v, 1};
    static const struct akv_strlist none = {NULL, 0};
    struct akv_match_rules r = {&apps, &models, &only_rotate, &none};
    static const char ev[] =
        "{\"action\":\"model_created\",\"context\":{\"model\":{\"pk\":"
        "\"8b03f2c1df9c4cabbb33602efade9ced\",\"app\":\"authentik_core\","
        "\"model_name\":\"token\",\"name\":\"x\"}}}";
    struct akv_match m;

    (void)state;
    akv_match_event(&r, ev, sizeof(ev) - 1, &m);
    assert_int_equal(m.kind, AKV_MATCH_SKIP);
}

static void identifier_rules(void **state)
{
    char pk[33];
    char long_id[300];

    (void)state;
    assert_true(akv_identifier_valid("deploy-bot_API-1"));
    assert_true(akv_identifier_valid("a"));
    assert_false(akv_identifier_valid(""));
    assert_false(akv_identifier_valid("a b"));
    assert_false(akv_identifier_valid("a/b"));
    assert_false(akv_identifier_valid(".."));
    assert_false(akv_identifier_valid("a%2Fb"));
    assert_false(akv_identifier_valid("caf\xc3\xa9"));
    memset(long_id, 'x', 255);
    long_id[255] = '\0';
    assert_true(akv_identifier_valid(long_id));
    long_id[255] = 'x';
    long_id[256] = '\0';
    assert_false(akv_identifier_valid(long_id));

    assert_int_equal(
        akv_token_pk_normalize("8b03f2c1df9c4cabbb33602efade9ced", pk), 0);
    assert_string_equal(pk, "8b03f2c1df9c4cabbb33602efade9ced");
    assert_int_equal(
        akv_token_pk_normalize("8B03F2C1-DF9C-4CAB-BB33-602EFADE9CED", pk), 0);
    assert_string_equal(pk, "8b03f2c1df9c4cabbb33602efade9ced");
    assert_int_equal(akv_token_pk_normalize("8b03f2c1", pk), -1);
    assert_int_equal(
        akv_token_pk_normalize("8b03f2c1df9c4cabbb33602efade9ceg", pk), -1);
    assert_int_equal(
        akv_token_pk_normalize("8b03f2c1-df9c4cab-bb33-602efade9ced", pk), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(token_created_with_and_without_diff_syncs),
        cmocka_unit_test(token_updated_syncs),
        cmocka_unit_test(set_key_double_event_both_sync),
        cmocka_unit_test(secret_rotate_reads_context_token),
        cmocka_unit_test(deleted_token_is_a_delete),
        cmocka_unit_test(non_token_events_are_skipped),
        cmocka_unit_test(key_order_does_not_matter),
        cmocka_unit_test(identifier_falls_back_to_the_diff),
        cmocka_unit_test(unusable_token_events_are_poison),
        cmocka_unit_test(overlong_identifier_is_poison),
        cmocka_unit_test(undecodable_and_foreign_bytes_are_skipped),
        cmocka_unit_test(lists_are_configurable),
        cmocka_unit_test(identifier_rules),
    };

    return cmocka_run_group_tests_name("matcher", tests, NULL, NULL);
}
