/*
 * test_config — the schema loader and the worker's settings.
 */
#include "testutil.h"

#include "config.h"
#include "log.h"
#include "settings.h"

#include <stddef.h>

struct demo {
    char *name;
    long long count;
    int flag;
    char *mode;
    struct akv_strlist tags;
    struct akv_pairs props;
    char *secret;
};

static const char *const modes[] = {"fast", "slow", NULL};

static const struct akv_cfg_entry demo_schema[] = {
    {"a.name", AKV_CFG_STRING, NULL, AKV_CFG_REQUIRED,
     offsetof(struct demo, name), 0, 0, NULL, "AKV_TEST_NAME", "name"},
    {"a.count", AKV_CFG_INT, "5", 0, offsetof(struct demo, count), 1, 10, NULL,
     NULL, "count"},
    {"a.flag", AKV_CFG_BOOL, "false", 0, offsetof(struct demo, flag), 0, 0,
     NULL, NULL, "flag"},
    {"a.mode", AKV_CFG_ENUM, "fast", 0, offsetof(struct demo, mode), 0, 0,
     modes, NULL, "mode"},
    {"b.tags", AKV_CFG_STRLIST, "x,y", 0, offsetof(struct demo, tags), 0, 0,
     NULL, NULL, "tags"},
    {"b.props", AKV_CFG_PAIRS, NULL, 0, offsetof(struct demo, props), 0, 0,
     NULL, NULL, "props"},
    {"b.secret", AKV_CFG_STRING, NULL, AKV_CFG_SECRET | AKV_CFG_ENV_ONLY,
     offsetof(struct demo, secret), 0, 0, NULL, "AKV_TEST_SECRET", "secret"},
    {NULL, AKV_CFG_STRING, NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};

static akv_err_t load_text(const char *text, struct demo *d, char *errstr,
                           size_t size, char *path_out)
{
    const char *path = write_temp(text);
    akv_err_t err;

    memset(d, 0, sizeof(*d));
    snprintf(path_out, 64, "%s", path);
    err = akv_cfg_load(demo_schema, d, path, errstr, size);
    unlink(path);
    return err;
}

/* Loads \p text, expects a config error whose message starts with
 * "<file>:<line>:" and contains \p needle. */
static void expect_error(const char *text, int line, const char *needle)
{
    struct demo d;
    char errstr[512];
    char path[64];
    char prefix[96];

    assert_int_equal(load_text(text, &d, errstr, sizeof(errstr), path),
                     AKV_ERR_CONFIG);
    if (line > 0) {
        snprintf(prefix, sizeof(prefix), "%s:%d: ", path, line);
        if (strncmp(errstr, prefix, strlen(prefix)) != 0) {
            fail_msg("expected prefix '%s' in '%s'", prefix, errstr);
        }
    }
    if (!strstr(errstr, needle)) {
        fail_msg("expected '%s' in '%s'", needle, errstr);
    }
    akv_cfg_free(demo_schema, &d);
}

static void defaults_apply_and_file_overrides(void **state)
{
    struct demo d;
    char errstr[256];
    char path[64];

    (void)state;
    assert_int_equal(load_text("a: { name = \"n\"; count = 7; };\n"
                               "b: { props = ( (\"k1\", \"v1\"), "
                               "(\"k2\", \"v2\") ); };\n",
                               &d, errstr, sizeof(errstr), path),
                     AKV_OK);
    assert_string_equal(d.name, "n");
    assert_int_equal(d.count, 7);
    assert_int_equal(d.flag, 0);
    assert_string_equal(d.mode, "fast");
    assert_int_equal(d.tags.n, 2);
    assert_string_equal(d.tags.v[1], "y");
    assert_int_equal(d.props.n, 2);
    assert_string_equal(d.props.names[1], "k2");
    assert_string_equal(d.props.values[1], "v2");
    assert_null(d.secret);
    akv_cfg_free(demo_schema, &d);
}

static void unknown_setting_is_rejected_with_line(void **state)
{
    (void)state;
    expect_error("a: {\n  name = \"n\";\n  nmae = \"typo\";\n};\n", 3,
                 "unknown setting 'a.nmae'");
    expect_error("a: { name = \"n\"; };\nc: { x = 1; };\n", 2,
                 "unknown setting 'c'");
}

static void wrong_type_is_rejected_with_line(void **state)
{
    (void)state;
    expect_error("a: {\n  name = 5;\n};\n", 2, "'a.name' must be a string");
    expect_error("a: { name = \"n\";\n count = \"7\"; };\n", 2,
                 "'a.count' must be an integer");
    expect_error("a: { name = \"n\";\n flag = 1; };\n", 2,
                 "'a.flag' must be true or false");
    expect_error("a: { name = \"n\"; };\nb: {\n tags = [1, 2]; };\n", 3,
                 "'b.tags' must be an array of strings");
    expect_error("a: { name = \"n\"; };\nb: {\n props = ( (\"k\") ); };\n", 3,
                 "'b.props' must be a list");
    expect_error("a = 5;\n", 1, "'a' must be a group");
}

static void out_of_range_is_rejected_with_line(void **state)
{
    (void)state;
    expect_error("a: { name = \"n\";\n\n count = 11; };\n", 3,
                 "'a.count' = 11 is out of range [1, 10]");
    expect_error("a: { name = \"n\"; count = 0; };\n", 1, "out of range");
    expect_error("a: { name = \"n\"; mode = \"warp\"; };\n", 1,
                 "'a.mode' must be one of: fast, slow");
}

static void syntax_error_reports_line(void **state)
{
    (void)state;
    expect_error("a: { name = \"n\"\n  count = ; };\n", 2, "syntax error");
}

static void missing_required_is_reported(void **state)
{
    (void)state;
    expect_error("a: { count = 2; };\n", 0,
                 "missing required setting 'a.name' (or environment "
                 "variable AKV_TEST_NAME)");
}

static void environment_overrides_file(void **state)
{
    struct demo d;
    char errstr[256];
    char path[64];

    (void)state;
    setenv("AKV_TEST_NAME", "from-env", 1);
    setenv("AKV_TEST_SECRET", "hunter2hunter2", 1);
    assert_int_equal(load_text("a: { name = \"file\"; };\n", &d, errstr,
                               sizeof(errstr), path),
                     AKV_OK);
    assert_string_equal(d.name, "from-env");
    assert_string_equal(d.secret, "hunter2hunter2");
    akv_cfg_free(demo_schema, &d);
    unsetenv("AKV_TEST_NAME");
    unsetenv("AKV_TEST_SECRET");
}

static void env_only_secret_cannot_be_in_file(void **state)
{
    (void)state;
    expect_error("a: { name = \"n\"; };\nb: { secret = \"x\"; };\n", 2,
                 "holds a secret and cannot be set in the file");
}

static void dump_masks_secrets(void **state)
{
    struct demo d;
    char errstr[256];
    char path[64];
    char out[2048] = {0};
    FILE *fp;

    (void)state;
    setenv("AKV_TEST_SECRET", "hunter2hunter2", 1);
    assert_int_equal(
        load_text("a: { name = \"n\"; };\n", &d, errstr, sizeof(errstr), path),
        AKV_OK);
    fp = fmemopen(out, sizeof(out) - 1, "w");
    akv_cfg_dump(demo_schema, &d, fp);
    fclose(fp);
    assert_null(strstr(out, "hunter2"));
    assert_non_null(strstr(out, "b.secret = \"********\""));
    assert_non_null(strstr(out, "a.count = 5"));
    akv_cfg_free(demo_schema, &d);
    unsetenv("AKV_TEST_SECRET");
}

/* --- the worker's own schema --- */

static const char *const minimal_cfg =
    "kafka: { brokers = \"127.0.0.1:9092\"; };\n"
    "authentik: { url = \"http://127.0.0.1:9000\"; };\n"
    "vault: { addr = \"http://127.0.0.1:8200\"; };\n";

static akv_err_t load_settings(const char *text, struct akv_settings *s,
                               char *errstr, size_t size)
{
    const char *path = write_temp(text);
    akv_err_t err = akv_settings_load(s, path, errstr, size);

    unlink(path);
    return err;
}

static void settings_defaults_match_the_design(void **state)
{
    struct akv_settings s;
    char errstr[512];

    (void)state;
    setenv("VAULT_TOKEN", "vault-token-value", 1);
    setenv("AUTHENTIK_TOKEN", "authentik-token-value", 1);
    assert_int_equal(load_settings(minimal_cfg, &s, errstr, sizeof(errstr)),
                     AKV_OK);
    assert_string_equal(s.kafka_topic, "authentik.events");
    assert_string_equal(s.vault_kv_mount, "kv");
    assert_string_equal(s.vault_prefix, "authentik");
    assert_string_equal(s.kafka_auto_offset_reset, "earliest");
    assert_int_equal(s.match_sync_actions.n, 3);
    assert_string_equal(s.match_sync_actions.v[2], "secret_rotate");
    assert_string_equal(s.vault_token, "vault-token-value");
    akv_settings_free(&s);
    unsetenv("VAULT_TOKEN");
    unsetenv("AUTHENTIK_TOKEN");
}

static void settings_env_overrides(void **state)
{
    struct akv_settings s;
    char errstr[512];

    (void)state;
    setenv("VAULT_TOKEN", "vault-token-value", 1);
    setenv("AUTHENTIK_TOKEN", "authentik-token-value", 1);
    setenv("KAFKA_TOPIC", "other.topic", 1);
    setenv("KAFKA_GROUP", "g2", 1);
    setenv("VAULT_ADDR", "https://vault.example:8200", 1);
    assert_int_equal(load_settings(minimal_cfg, &s, errstr, sizeof(errstr)),
                     AKV_OK);
    assert_string_equal(s.kafka_topic, "other.topic");
    assert_string_equal(s.kafka_group, "g2");
    assert_string_equal(s.vault_addr, "https://vault.example:8200");
    akv_settings_free(&s);
    unsetenv("KAFKA_TOPIC");
    unsetenv("KAFKA_GROUP");
    unsetenv("VAULT_ADDR");
    unsetenv("VAULT_TOKEN");
    unsetenv("AUTHENTIK_TOKEN");
}

static void settings_need_exactly_one_secret_source(void **state)
{
    struct akv_settings s;
    char errstr[512];
    char text[1024];
    const char *tokfile;
    char tokpath[64];

    (void)state;
    unsetenv("VAULT_TOKEN");
    setenv("AUTHENTIK_TOKEN", "authentik-token-value", 1);
    assert_int_equal(load_settings(minimal_cfg, &s, errstr, sizeof(errstr)),
                     AKV_ERR_CONFIG);
    assert_non_null(strstr(errstr, "no Vault token"));
    akv_settings_free(&s);

    tokfile = write_temp("file-token-value\n");
    snprintf(tokpath, sizeof(tokpath), "%s", tokfile);
    snprintf(text, sizeof(text), "%svault: { token_file = \"%s\"; };\n",
             "kafka: { brokers = \"b:1\"; };\n"
             "authentik: { url = \"http://a\"; };\n",
             tokpath);
    assert_int_equal(load_settings(text, &s, errstr, sizeof(errstr)), AKV_OK);
    assert_string_equal(s.vault_token, "file-token-value");
    akv_settings_free(&s);

    setenv("VAULT_TOKEN", "vault-token-value", 1);
    assert_int_equal(load_settings(text, &s, errstr, sizeof(errstr)),
                     AKV_ERR_CONFIG);
    assert_non_null(strstr(errstr, "use one"));
    akv_settings_free(&s);
    unlink(tokpath);
    unsetenv("VAULT_TOKEN");
    unsetenv("AUTHENTIK_TOKEN");
}

static void settings_cross_checks(void **state)
{
    struct akv_settings s;
    char errstr[512];
    char text[1024];
    static const struct {
        const char *kafka; /* inside kafka: { ... } */
        const char *rest;  /* further groups */
        const char *needle;
    } cases[] = {
        {"", "vault: { kv_mount = \"a//b\"; };", "'vault.kv_mount'"},
        {"", "vault: { prefix = \"../x\"; };", "'vault.prefix'"},
        {"", "vault: { extra_fields = [\"key2\"]; };", "unknown field 'key2'"},
        {"properties = ( (\"enable.auto.offset.store\", \"true\") );", "",
         "cannot set enable.auto.offset.store"},
        {"", "sync: { retry_initial_ms = 5000; retry_max_ms = 100; };",
         "'sync.retry_initial_ms'"},
        {"", "sync: { retry_multiplier = 0.5; };", "out of range"},
        {"", "vault: { auth: { method = \"kubernetes\"; }; };",
         "needs 'vault.auth.role'"},
        {"", "vault: { auth: { method = \"approle\"; role_id = \"r\"; }; };",
         "'vault.auth.secret_id_file'"},
        {"", "vault: { tls: { client_cert = \"/c.pem\"; }; };", "go together"},
        {"", "vault: { on_delete = \"shred\"; };", "must be one of"},
        {"", "match: { intents = []; };", "must not be empty"},
        {"", "authentik2: { url = \"http://a\"; };",
         "unknown setting 'authentik2'"},
    };
    size_t i;

    (void)state;
    setenv("VAULT_TOKEN", "vault-token-value", 1);
    setenv("AUTHENTIK_TOKEN", "authentik-token-value", 1);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text),
                 "kafka: { brokers = \"b:1\"; %s };\n"
                 "authentik: { url = \"http://a\"; };\n%s\n",
                 cases[i].kafka, cases[i].rest);
        assert_int_equal(load_settings(text, &s, errstr, sizeof(errstr)),
                         AKV_ERR_CONFIG);
        if (!strstr(errstr, cases[i].needle)) {
            fail_msg("case %zu: expected '%s' in '%s'", i, cases[i].needle,
                     errstr);
        }
        akv_settings_free(&s);
    }
    unsetenv("VAULT_TOKEN");
    unsetenv("AUTHENTIK_TOKEN");
}

static void example_config_is_valid(void **state)
{
    struct akv_settings s;
    char errstr[512];
    char path[1024];
    const char *dir = getenv("AKV_FIXTURES");

    (void)state;
    setenv("VAULT_TOKEN", "vault-token-value", 1);
    setenv("AUTHENTIK_TOKEN", "authentik-token-value", 1);
    snprintf(path, sizeof(path), "%s/../../configs/ak2vault.cfg",
             dir ? dir : "tests/fixtures");
    if (akv_settings_load(&s, path, errstr, sizeof(errstr)) != AKV_OK) {
        fail_msg("%s", errstr);
    }
    akv_settings_free(&s);
    unsetenv("VAULT_TOKEN");
    unsetenv("AUTHENTIK_TOKEN");
}

/* Plain http:// warns unless it stays on the loopback. */
static void plain_http_to_a_network_is_told_apart(void **state)
{
    static const struct {
        const char *url;
        int remote;
    } rows[] = {
        {"http://vault:8200", 1},
        {"http://10.0.0.5:8200/", 1},
        {"http://localhost.example.com:8200", 1},
        {"http://127.example.com", 1},
        {"https://vault:8200", 0},
        {"http://localhost:8200", 0},
        {"http://LOCALHOST", 0},
        {"http://127.0.0.1:8200", 0},
        {"http://127.1.2.3/", 0},
        {"http://[::1]:8200", 0},
        {"vault:8200", 0},
        {NULL, 0},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (akv_url_plain_remote(rows[i].url) != rows[i].remote) {
            fail_msg("%s: got %d", rows[i].url ? rows[i].url : "NULL",
                     !rows[i].remote);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_apply_and_file_overrides),
        cmocka_unit_test(unknown_setting_is_rejected_with_line),
        cmocka_unit_test(wrong_type_is_rejected_with_line),
        cmocka_unit_test(out_of_range_is_rejected_with_line),
        cmocka_unit_test(syntax_error_reports_line),
        cmocka_unit_test(missing_required_is_reported),
        cmocka_unit_test(environment_overrides_file),
        cmocka_unit_test(env_only_secret_cannot_be_in_file),
        cmocka_unit_test(dump_masks_secrets),
        cmocka_unit_test(settings_defaults_match_the_design),
        cmocka_unit_test(settings_env_overrides),
        cmocka_unit_test(settings_need_exactly_one_secret_source),
        cmocka_unit_test(settings_cross_checks),
        cmocka_unit_test(example_config_is_valid),
        cmocka_unit_test(plain_http_to_a_network_is_told_apart),
    };

    akv_log_set_level(AKV_LOG_ERROR);
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
