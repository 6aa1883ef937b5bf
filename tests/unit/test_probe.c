/*
 * test_probe — the pure parts of `check-config --connect`: what the
 * worker needs on the KV paths, Vault's sys/capabilities-self answers and
 * how they are judged, and authentik's paginated token list.
 */
#include "testutil.h"

#include "authentik.h"
#include "probe.h"
#include "vault.h"

/* What Vault (and fake-vault) answer for two paths: sys/ answers repeat
 * the data members at the top level (logical.HTTPSysInjector). */
static const char two_paths[] =
    "{\"kv/data/authentik/x\":[\"create\",\"read\",\"update\"],"
    "\"kv/metadata/authentik/x\":[\"deny\"],"
    "\"request_id\":\"1\",\"lease_id\":\"\",\"renewable\":false,"
    "\"lease_duration\":0,\"data\":{"
    "\"kv/data/authentik/x\":[\"create\",\"read\",\"update\"],"
    "\"kv/metadata/authentik/x\":[\"deny\"]},"
    "\"wrap_info\":null,\"warnings\":null,\"auth\":null,"
    "\"mount_type\":\"system\"}\n";

static void kv_needs_follow_on_delete(void **state)
{
    const unsigned cru =
        AKV_VAULT_CAP_CREATE | AKV_VAULT_CAP_READ | AKV_VAULT_CAP_UPDATE;
    const unsigned cu = AKV_VAULT_CAP_CREATE | AKV_VAULT_CAP_READ |
                        AKV_VAULT_CAP_UPDATE | AKV_VAULT_CAP_LIST;

    (void)state;
    assert_int_equal(akv_probe_kv_needs("data", "keep"), cru);
    assert_int_equal(akv_probe_kv_needs("metadata", "keep"), cu);
    assert_int_equal(akv_probe_kv_needs("data", "soft-delete"),
                     cru | AKV_VAULT_CAP_DELETE);
    assert_int_equal(akv_probe_kv_needs("metadata", "soft-delete"), cu);
    assert_int_equal(akv_probe_kv_needs("data", "purge"), cru);
    assert_int_equal(akv_probe_kv_needs("metadata", "purge"),
                     cu | AKV_VAULT_CAP_DELETE);
}

static void capabilities_are_read_per_path(void **state)
{
    unsigned caps = 0;

    (void)state;
    assert_int_equal(akv_vault_parse_capabilities(two_paths,
                                                  sizeof(two_paths) - 1,
                                                  "kv/data/authentik/x", &caps),
                     0);
    assert_int_equal(caps, AKV_VAULT_CAP_CREATE | AKV_VAULT_CAP_READ |
                               AKV_VAULT_CAP_UPDATE);
    assert_int_equal(
        akv_vault_parse_capabilities(two_paths, sizeof(two_paths) - 1,
                                     "kv/metadata/authentik/x", &caps),
        0);
    assert_int_equal(caps, AKV_VAULT_CAP_DENY);
    /* A path that was not asked for is not there. */
    assert_int_equal(akv_vault_parse_capabilities(two_paths,
                                                  sizeof(two_paths) - 1,
                                                  "kv/data/other", &caps),
                     -1);
}

static void capabilities_of_other_answer_shapes(void **state)
{
    /* One path: Vault adds "capabilities"; the documented sample has no
     * envelope at all; a name this client does not know is kept apart. */
    static const char single[] =
        "{\"data\":{\"capabilities\":[\"root\"],\"p\":[\"root\"]}}";
    static const char bare[] =
        "{\"capabilities\":[\"delete\",\"list\",\"read\",\"update\"]}";
    static const char odd[] = "{\"p\":[\"read\",\"subscribe\"]}";
    static const char *const bad[] = {
        "", "null", "[]", "{\"p\":\"read\"}", "{\"p\":[1]}", "{\"data\":{}}",
    };
    unsigned caps = 0;
    size_t i;

    (void)state;
    assert_int_equal(
        akv_vault_parse_capabilities(single, sizeof(single) - 1, "p", &caps),
        0);
    assert_int_equal(caps, AKV_VAULT_CAP_ROOT);
    assert_int_equal(
        akv_vault_parse_capabilities(bare, sizeof(bare) - 1, "q", &caps), 0);
    assert_int_equal(caps, AKV_VAULT_CAP_DELETE | AKV_VAULT_CAP_LIST |
                               AKV_VAULT_CAP_READ | AKV_VAULT_CAP_UPDATE);
    assert_int_equal(
        akv_vault_parse_capabilities(odd, sizeof(odd) - 1, "p", &caps), 0);
    assert_int_equal(caps, AKV_VAULT_CAP_READ | AKV_VAULT_CAP_OTHER);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            akv_vault_parse_capabilities(bad[i], strlen(bad[i]), "p", &caps),
            -1);
    }
}

static void missing_capabilities_honour_root_and_deny(void **state)
{
    const unsigned need =
        AKV_VAULT_CAP_CREATE | AKV_VAULT_CAP_READ | AKV_VAULT_CAP_UPDATE;

    (void)state;
    assert_int_equal(akv_vault_caps_missing(AKV_VAULT_CAP_ROOT, need), 0);
    assert_int_equal(akv_vault_caps_missing(need | AKV_VAULT_CAP_LIST, need),
                     0);
    assert_int_equal(akv_vault_caps_missing(AKV_VAULT_CAP_READ, need),
                     AKV_VAULT_CAP_CREATE | AKV_VAULT_CAP_UPDATE);
    assert_int_equal(akv_vault_caps_missing(0, need), need);
    /* "deny" wins over everything, root included. */
    assert_int_equal(akv_vault_caps_missing(
                         AKV_VAULT_CAP_DENY | AKV_VAULT_CAP_ROOT | need, need),
                     need);
}

static void capabilities_are_named(void **state)
{
    char out[128];
    char tiny[8];

    (void)state;
    akv_vault_caps_format(AKV_VAULT_CAP_UPDATE | AKV_VAULT_CAP_CREATE, out,
                          sizeof(out));
    assert_string_equal(out, "create, update");
    akv_vault_caps_format(0, out, sizeof(out));
    assert_string_equal(out, "none");
    akv_vault_caps_format(AKV_VAULT_CAP_DENY, out, sizeof(out));
    assert_string_equal(out, "deny");
    akv_vault_caps_format(AKV_VAULT_CAP_READ | AKV_VAULT_CAP_OTHER, out,
                          sizeof(out));
    assert_string_equal(out, "read, others");
    /* Too small: cut at a whole name, still terminated. */
    akv_vault_caps_format(AKV_VAULT_CAP_CREATE | AKV_VAULT_CAP_READ, tiny,
                          sizeof(tiny));
    assert_string_equal(tiny, "create");
}

static void token_list_count_is_read(void **state)
{
    /* authentik's Pagination (authentik/api/pagination.py). */
    static const char page[] =
        "{\"pagination\":{\"next\":2,\"previous\":0,\"count\":42,"
        "\"current\":1,\"total_pages\":42,\"start_index\":1,"
        "\"end_index\":1},\"results\":[{\"pk\":\"1\",\"identifier\":\"a\","
        "\"intent\":\"api\"}],\"autocomplete\":{}}";
    static const char empty[] = "{\"pagination\":{\"count\":0},\"results\":[]}";
    static const char *const bad[] = {
        "",
        "[]",
        "{\"results\":[]}",
        "{\"pagination\":{\"count\":3}}",
        "{\"pagination\":{\"count\":-1},\"results\":[]}",
        "{\"detail\":\"Token invalid/expired\"}",
    };
    long long count = -1;
    size_t i;

    (void)state;
    assert_int_equal(akv_authentik_parse_count(page, sizeof(page) - 1, &count),
                     0);
    assert_int_equal(count, 42);
    assert_int_equal(
        akv_authentik_parse_count(empty, sizeof(empty) - 1, &count), 0);
    assert_int_equal(count, 0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(
            akv_authentik_parse_count(bad[i], strlen(bad[i]), &count), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kv_needs_follow_on_delete),
        cmocka_unit_test(capabilities_are_read_per_path),
        cmocka_unit_test(capabilities_of_other_answer_shapes),
        cmocka_unit_test(missing_capabilities_honour_root_and_deny),
        cmocka_unit_test(capabilities_are_named),
        cmocka_unit_test(token_list_count_is_read),
    };

    return cmocka_run_group_tests_name("probe", tests, NULL, NULL);
}
