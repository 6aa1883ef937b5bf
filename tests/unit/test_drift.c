/*
 * test_drift — what a reconcile calls each token's state, and which
 * identifiers it visits.
 */
#include "testutil.h"

#include "drift.h"

static void drift_follows_the_table(void **state)
{
    static const struct {
        const char *vault; /* NULL: no live version */
        const char *doc;
        enum akv_drift want;
    } rows[] = {
        {NULL, "{\"key\":\"k\",\"intent\":\"api\"}", AKV_DRIFT_MISSING},
        {"[]", "{\"key\":\"k\",\"intent\":\"api\"}", AKV_DRIFT_MISSING},
        {"{\"key\":\"k\",\"intent\":\"api\"}",
         "{\"intent\":\"api\",\"key\":\"k\"}", AKV_DRIFT_NONE},
        {"{\"key\":\"old\",\"intent\":\"api\"}",
         "{\"key\":\"k\",\"intent\":\"api\"}", AKV_DRIFT_STALE_KEY},
        {"{\"key\":\"old\",\"intent\":\"app_password\"}",
         "{\"key\":\"k\",\"intent\":\"api\"}", AKV_DRIFT_STALE_KEY},
        {"{\"intent\":\"api\"}", "{\"key\":\"k\",\"intent\":\"api\"}",
         AKV_DRIFT_STALE_KEY},
        {"{\"key\":\"k\",\"intent\":\"app_password\"}",
         "{\"key\":\"k\",\"intent\":\"api\"}", AKV_DRIFT_INTENT},
        {"{\"key\":\"k\"}", "{\"key\":\"k\",\"intent\":\"api\"}",
         AKV_DRIFT_INTENT},
        {"{\"key\":\"k\",\"intent\":\"api\",\"description\":\"a\"}",
         "{\"key\":\"k\",\"intent\":\"api\",\"description\":\"b\"}",
         AKV_DRIFT_FIELDS},
        {"{\"key\":\"k\",\"intent\":\"api\",\"note\":\"by hand\"}",
         "{\"key\":\"k\",\"intent\":\"api\"}", AKV_DRIFT_FIELDS},
        {"{\"key\":\"k\",\"intent\":\"api\",\"expires\":null}",
         "{\"key\":\"k\",\"intent\":\"api\",\"expires\":null}", AKV_DRIFT_NONE},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        cJSON *v = rows[i].vault ? cJSON_Parse(rows[i].vault) : NULL;
        cJSON *d = cJSON_Parse(rows[i].doc);
        enum akv_drift got = akv_drift_of(v, d);

        if (got != rows[i].want) {
            fail_msg("row %zu: got %s, want %s", i, akv_drift_name(got),
                     akv_drift_name(rows[i].want));
        }
        cJSON_Delete(v);
        cJSON_Delete(d);
    }
    assert_string_equal(akv_drift_name(AKV_DRIFT_NONE), "in_sync");
    assert_string_equal(akv_drift_name(AKV_DRIFT_ORPHAN), "orphan");
    assert_string_equal(akv_drift_name(AKV_DRIFT_KINDS), "?");
}

/* One visit plan: "ident:visit" items joined by spaces. */
static void plan_text(const char *const *tokens_in, const int *mirrored_in,
                      size_t ntokens, const char *const *secrets_in,
                      size_t nsecrets, char *out, size_t size)
{
    const char *tokens[16];
    int mirrored[16];
    const char *secrets[16];
    struct akv_visit_item items[32];
    static const char *const names[] = {"sync", "orphan", "excluded"};
    size_t n;
    size_t i;
    size_t o = 0;

    memcpy(tokens, tokens_in, ntokens * sizeof(*tokens));
    memcpy(mirrored, mirrored_in, ntokens * sizeof(*mirrored));
    memcpy(secrets, secrets_in, nsecrets * sizeof(*secrets));
    assert_int_equal(
        akv_visit_plan(tokens, mirrored, ntokens, secrets, nsecrets, items, &n),
        0);
    out[0] = '\0';
    for (i = 0; i < n && o < size; i++) {
        o += (size_t)snprintf(out + o, size - o, "%s%s:%s", i ? " " : "",
                              items[i].identifier, names[items[i].visit]);
    }
}

static void plan_follows_the_table(void **state)
{
    static const struct {
        const char *tokens[8];
        int mirrored[8];
        size_t ntokens;
        const char *secrets[8];
        size_t nsecrets;
        const char *want;
    } rows[] = {
        {{NULL}, {0}, 0, {NULL}, 0, ""},
        {{"b", "a"}, {1, 1}, 2, {NULL}, 0, "a:sync b:sync"},
        {{NULL}, {0}, 0, {"z", "y"}, 2, "y:orphan z:orphan"},
        {{"c", "a", "b"},
         {1, 0, 1},
         3,
         {"b", "d", "a"},
         3,
         "a:excluded b:sync c:sync d:orphan"},
        /* a listing that repeated an item across a page boundary */
        {{"a", "a", "b"}, {1, 1, 1}, 3, {"b", "b"}, 2, "a:sync b:sync"},
        {{"m"}, {1}, 1, {"m", "l", "n"}, 3, "l:orphan m:sync n:orphan"},
        {{"a-1", "a"}, {1, 1}, 2, {"a_1"}, 1, "a:sync a-1:sync a_1:orphan"},
    };
    char got[512];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        plan_text(rows[i].tokens, rows[i].mirrored, rows[i].ntokens,
                  rows[i].secrets, rows[i].nsecrets, got, sizeof(got));
        if (strcmp(got, rows[i].want) != 0) {
            fail_msg("row %zu: got \"%s\", want \"%s\"", i, got, rows[i].want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(drift_follows_the_table),
        cmocka_unit_test(plan_follows_the_table),
    };

    return cmocka_run_group_tests_name("drift", tests, NULL, NULL);
}
