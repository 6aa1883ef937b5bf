/*
 * test_jscan — the allocation-free scan agrees with cJSON.
 *
 * Whenever akv_jscan() answers, cJSON must accept the same bytes as an
 * object and its lookups must find exactly what the scan reported; and the
 * matcher's verdict by way of the scan must equal its verdict by way of a
 * full cJSON parse. Checked over every event fixture and over many
 * generated documents: random nesting, duplicate keys, cJSON's odd number
 * forms and whitespace, byte order marks, trailing bytes, escapes, NUL
 * bytes, truncation and corrupted bytes.
 */
#include "testutil.h"

#include "matchrules.h"

#include "jscan.h"
#include "json.h"
#include "matcher.h"

#include <stdint.h>

static const struct akv_jscan_query queries[] = {
    {"pk", AKV_JSCAN_ROOT},
    {"action", AKV_JSCAN_ROOT},
    {"context", AKV_JSCAN_ROOT},
    {"model", 2},
    {"app", 3},
    {"name", 3},
    {"diff", 2},
    {"identifier", 6},
    {"new_value", 7},
    {"x", AKV_JSCAN_ROOT},
};
#define NQ ((int)(sizeof(queries) / sizeof(queries[0])))

static int answered;
static int checked;

/* What cJSON's lookups find for query \p i. */
static const cJSON *lookup(const cJSON *root, int i)
{
    const cJSON *parent = queries[i].parent == AKV_JSCAN_ROOT
                              ? root
                              : lookup(root, queries[i].parent);

    return akv_json_get(parent, queries[i].key);
}

static void check_one(const char *buf, size_t len)
{
    struct akv_jscan_value v[NQ];
    struct akv_match fast;
    struct akv_match slow;
    int i;

    checked++;
    if (akv_jscan(buf, len, queries, NQ, v) == 0) {
        cJSON *root = cJSON_ParseWithLength(buf, len);

        answered++;
        if (!cJSON_IsObject(root)) {
            fail_msg("jscan answered for bytes cJSON rejects: %.*s", (int)len,
                     buf);
        }
        for (i = 0; i < NQ; i++) {
            const cJSON *item = lookup(root, i);
            enum akv_jscan_type want = !item                  ? AKV_JSCAN_ABSENT
                                       : cJSON_IsString(item) ? AKV_JSCAN_STRING
                                       : cJSON_IsObject(item) ? AKV_JSCAN_OBJECT
                                                              : AKV_JSCAN_OTHER;

            if (v[i].type != want) {
                fail_msg("query %s: jscan type %d, cJSON %d in: %.*s",
                         queries[i].key, v[i].type, want, (int)len, buf);
            }
            if (want == AKV_JSCAN_STRING &&
                (strlen(item->valuestring) != v[i].n ||
                 memcmp(item->valuestring, v[i].p, v[i].n) != 0)) {
                fail_msg("query %s: jscan \"%.*s\", cJSON \"%s\"",
                         queries[i].key, (int)v[i].n, v[i].p,
                         item->valuestring);
            }
        }
        cJSON_Delete(root);
    }
    akv_match_event(&rules, buf, len, &fast);
    akv_match_event_parsed(&rules, buf, len, &slow);
    if (fast.kind != slow.kind || strcmp(fast.reason, slow.reason) != 0 ||
        strcmp(fast.identifier, slow.identifier) != 0 ||
        strcmp(fast.token_pk, slow.token_pk) != 0 ||
        strcmp(fast.event_pk, slow.event_pk) != 0 ||
        strcmp(fast.action, slow.action) != 0 ||
        fast.undecodable != slow.undecodable) {
        fail_msg("verdicts differ: scan %s (%s), parse %s (%s) for: %.*s",
                 akv_match_kind_name(fast.kind), fast.reason,
                 akv_match_kind_name(slow.kind), slow.reason, (int)len, buf);
    }
}

static void check_fixture(const char *name, const char *buf, size_t len,
                          void *ctx)
{
    (void)name;
    (void)ctx;
    check_one(buf, len);
}

static void agrees_on_every_fixture(void **state)
{
    int files;

    (void)state;
    answered = 0;
    files = for_each_event_fixture(check_fixture, NULL);
    assert_true(files >= 15);
    /* most fixtures are plain JSON the scan answers for */
    assert_true(answered >= files / 2);
}

struct out {
    char *b;
    size_t n;
    size_t cap;
};

static void put(struct out *o, const char *s)
{
    size_t n = strlen(s);

    if (o->n + n < o->cap) {
        memcpy(o->b + o->n, s, n);
        o->n += n;
    }
}

static void ws(struct out *o)
{
    static const char *const spaces[] = {"",   "",     "",     " ",   "\n  ",
                                         "\t", "\r\n", "\x01", "\x1f"};

    put(o, test_pick(spaces, sizeof(spaces) / sizeof(spaces[0])));
}

static void gen_value(struct out *o, int depth);

static void gen_object(struct out *o, int depth, int top)
{
    static const char *const keys[] = {
        "pk",     "action", "context",    "model",     "token",   "app",
        "name",   "diff",   "identifier", "new_value", "x",       "model_name",
        "secret", "user",   "pk",         "action",    "context", "model"};
    int n = (int)(test_rnd() % (top ? 7 : 5));
    int i;

    put(o, "{");
    ws(o);
    for (i = 0; i < n; i++) {
        if (i) {
            put(o, ",");
            ws(o);
        }
        put(o, "\"");
        put(o, test_pick(keys, sizeof(keys) / sizeof(keys[0])));
        put(o, "\"");
        ws(o);
        put(o, ":");
        ws(o);
        gen_value(o, depth + 1);
        ws(o);
    }
    put(o, "}");
}

static void gen_value(struct out *o, int depth)
{
    static const char *const strings[] = {
        "\"model_created\"",
        "\"secret_rotate\"",
        "\"model_deleted\"",
        "\"login\"",
        "\"authentik_core\"",
        "\"token\"",
        "\"deploy-bot (expires=2026-04-22 09:12:00+00:00)\"",
        "\"ci-1\"",
        "\"a b\"",
        "\"\"",
        "\"8b03f2c1df9c4cabbb33602efade9ced\"",
        "\"6a4b1c9e-0f3d-4e2a-9b7c-52d8e1f0a3b4\"",
        "\"esc\\u005fape\"",
        "\"caf\xc3\xa9\""};
    static const char *const others[] = {
        "0",
        "-1",
        "01",
        "1.5",
        "1e5",
        "1E+5",
        "-0.0e-3",
        "1.",
        "-",
        "1e",
        "1e+",
        "2-3",
        "12345678901234567890123456789012345678901234567890"
        "123456789012345",
        "null",
        "true",
        "false",
        "nul",
        "tru",
        "[]",
        "[1, \"a\" ,{}]",
        "[,]",
        "-.5",
        ".5",
        "+1"};
    uint64_t r = test_rnd() % 10;

    if (depth < 5 && r < 3) {
        gen_object(o, depth, 0);
    } else if (r < 7) {
        put(o, test_pick(strings, sizeof(strings) / sizeof(strings[0])));
    } else if (depth < 5 && r == 7) {
        put(o, "[");
        ws(o);
        gen_value(o, depth + 1);
        ws(o);
        put(o, "]");
    } else {
        put(o, test_pick(others, sizeof(others) / sizeof(others[0])));
    }
}

static size_t generate(char *buf, size_t cap)
{
    static const char *const trailers[] = {"",        "",  "",          " ",
                                           "garbage", "}", ",{\"a\":1}"};
    static const char corrupt[] = "{}[]\",: \\\001a1-.e";
    struct out o = {buf, 0, cap};
    uint64_t r = test_rnd() % 20;

    if (r == 0) {
        put(&o, "\xEF\xBB\xBF");
    }
    ws(&o);
    gen_object(&o, 0, 1);
    put(&o, test_pick(trailers, sizeof(trailers) / sizeof(trailers[0])));
    r = test_rnd() % 10;
    if (r == 0 && o.n > 1) {
        o.n = 1 + (size_t)(test_rnd() % (o.n - 1)); /* truncated */
    } else if (r == 1 && o.n > 0) {
        buf[test_rnd() % o.n] = corrupt[test_rnd() % (sizeof(corrupt) - 1)];
    } else if (r == 2 && o.n > 0) {
        buf[test_rnd() % o.n] = '\0';
    }
    return o.n;
}

static void agrees_on_generated_documents(void **state)
{
    char buf[8192];
    int i;

    (void)state;
    answered = 0;
    checked = 0;
    for (i = 0; i < 300000; i++) {
        size_t len = generate(buf, sizeof(buf));

        check_one(buf, len);
    }
    print_message("jscan answered for %d of %d generated documents\n", answered,
                  checked);
    /* both ways are exercised */
    assert_true(answered > checked / 10);
    assert_true(answered < checked - checked / 10);
}

static void refuses_what_it_cannot_vouch_for(void **state)
{
    struct akv_jscan_value v[NQ];
    static const char escaped[] = "{\"action\":\"model\\u005fcreated\"}";
    static const char array[] = "[{\"action\":\"model_created\"}]";
    char deep[400];
    int i;

    (void)state;
    assert_int_equal(akv_jscan(escaped, strlen(escaped), queries, NQ, v), -1);
    assert_int_equal(akv_jscan(array, strlen(array), queries, NQ, v), -1);
    assert_int_equal(akv_jscan("{\"a\":1", 6, queries, NQ, v), -1);
    assert_int_equal(akv_jscan("", 0, queries, NQ, v), -1);
    /* {"x":[[[...]]]} nested 96 deep: cJSON takes it, jscan leaves it */
    memcpy(deep, "{\"x\":", 5);
    for (i = 0; i < 95; i++) {
        deep[5 + i] = '[';
        deep[100 + i] = ']';
    }
    deep[195] = '}';
    assert_int_equal(akv_jscan(deep, 196, queries, NQ, v), -1);
    /* and answers for the plain case, first duplicate winning */
    {
        static const char dup[] =
            " {\"action\" : \"login\", \"action\":\"model_created\", "
            "\"context\":{\"model\":{\"app\":\"authentik_core\"}}} trailing";

        assert_int_equal(akv_jscan(dup, strlen(dup), queries, NQ, v), 0);
        assert_int_equal(v[1].type, AKV_JSCAN_STRING);
        assert_int_equal(v[1].n, 5);
        assert_memory_equal(v[1].p, "login", 5);
        assert_int_equal(v[4].type, AKV_JSCAN_STRING);
        assert_int_equal(v[5].type, AKV_JSCAN_ABSENT);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(agrees_on_every_fixture),
        cmocka_unit_test(agrees_on_generated_documents),
        cmocka_unit_test(refuses_what_it_cannot_vouch_for),
    };

    return cmocka_run_group_tests_name("jscan", tests, NULL, NULL);
}
