/*
 * test_prefilter — the byte-level prefilter never rejects an event the
 * matcher would not skip: over every fixture, and over many generated
 * events with shuffled keys, odd spacing, escapes and truncation.
 */
#include "testutil.h"

#include "matchrules.h"

#include "matcher.h"
#include "prefilter.h"

#include <stdint.h>

static void check_one(const char *buf, size_t len, const char *what,
                      int *rejected)
{
    struct akv_match m;
    int may = akv_prefilter_may_match(&rules, buf, len);

    akv_match_event(&rules, buf, len, &m);
    if (m.kind != AKV_MATCH_SKIP && !may) {
        fail_msg("prefilter rejected a %s event (%s): %.*s",
                 akv_match_kind_name(m.kind), what, (int)len, buf);
    }
    if (!may) {
        (*rejected)++;
    }
}

static void check_fixture(const char *name, const char *buf, size_t len,
                          void *rejected)
{
    check_one(buf, len, name, rejected);
}

static void never_rejects_a_fixture_that_matches(void **state)
{
    int rejected = 0;
    int files;

    (void)state;
    files = for_each_event_fixture(check_fixture, &rejected);
    assert_true(files >= 15);
    /* and it does filter: logins, views, other models */
    assert_true(rejected >= 5);
}

static void rejects_the_common_noise(void **state)
{
    static const char login[] =
        "{\"pk\":\"c7e90f15-a3fa-4616-9b38-cbecee062d1c\",\"user\":{\"pk\":4,"
        "\"email\":\"root@example.com\",\"username\":\"akadmin\"},\"action\":"
        "\"login\",\"app\":\"authentik.events.signals\",\"context\":{"
        "\"auth_method\":\"password\"},\"client_ip\":\"81.2.69.144\"}";
    static const char flow[] =
        "{\"action\":\"flow_execution\",\"context\":{\"flow\":"
        "\"default-authentication-flow\"}}";

    (void)state;
    assert_int_equal(akv_prefilter_may_match(&rules, login, strlen(login)), 0);
    assert_int_equal(akv_prefilter_may_match(&rules, flow, strlen(flow)), 0);
}

/* A raw NUL inside a string ends the C string the matcher compares: the
 * action below is "model_created" to it (and the event poison, lacking a
 * model reference), so the event must go through. */
static void lets_a_nul_through(void **state)
{
    static const char ev[] = "{\"action\":\"model_created\0x\",\"context\":{}}";
    size_t len = sizeof(ev) - 1;
    struct akv_match m;
    int rejected = 0;

    (void)state;
    akv_match_event(&rules, ev, len, &m);
    assert_int_equal(m.kind, AKV_MATCH_POISON);
    check_one(ev, len, "NUL in the action", &rejected);
    assert_int_equal(rejected, 0);
}

/* Writes a JSON string literal, sometimes escaping a character. */
static size_t put_str(char *out, size_t o, size_t size, const char *s)
{
    int escape = test_rnd() % 8 == 0;

    o += (size_t)snprintf(out + o, size - o, "\"");
    for (; *s && o + 8 < size; s++) {
        if (escape && (*s == '_' || *s == 'e')) {
            o += (size_t)snprintf(out + o, size - o, "\\u%04x",
                                  (unsigned char)*s);
            escape = 0;
        } else {
            out[o++] = *s;
        }
    }
    o += (size_t)snprintf(out + o, size - o, "\"");
    return o;
}

static size_t put_sep(char *out, size_t o, size_t size, const char *sep)
{
    static const char *const spaces[] = {"", " ", "\n  ", "\t"};

    return o + (size_t)snprintf(out + o, size - o, "%s%s%s",
                                test_pick(spaces, 4), sep,
                                test_pick(spaces, 4));
}

static size_t generate(char *out, size_t size)
{
    static const char *const actions[] = {
        "model_created",         "model_updated",
        "model_deleted",         "secret_rotate",
        "secret_view",           "login",
        "login_failed",          "logout",
        "flow_execution",        "policy_execution",
        "authorize_application", "custom_x"};
    static const char *const appsv[] = {"authentik_core", "authentik_events",
                                        "authentik_flows", "authentik_core"};
    static const char *const modelsv[] = {"token", "user", "application",
                                          "token", "accesstoken"};
    static const char *const refs[] = {"model", "token", "secret", "stage"};
    static const char *const names[] = {
        "deploy-bot (expires=2026-04-22 09:12:00.412345+00:00)", "ci-1",
        "../bad", "a b", ""};
    const char *keys[4] = {"action", "context", "pk", "app"};
    size_t o = 0;
    int i;

    /* shuffle the top-level keys */
    for (i = 3; i > 0; i--) {
        int j = (int)(test_rnd() % (uint64_t)(i + 1));
        const char *t = keys[i];

        keys[i] = keys[j];
        keys[j] = t;
    }
    o += (size_t)snprintf(out + o, size - o, "{");
    for (i = 0; i < 4; i++) {
        if (i) {
            o = put_sep(out, o, size, ",");
        }
        o = put_str(out, o, size, keys[i]);
        o = put_sep(out, o, size, ":");
        if (strcmp(keys[i], "action") == 0) {
            o = put_str(out, o, size, test_pick(actions, 12));
        } else if (strcmp(keys[i], "pk") == 0) {
            o = put_str(out, o, size, "6a4b1c9e-0f3d-4e2a-9b7c-52d8e1f0a3b4");
        } else if (strcmp(keys[i], "app") == 0) {
            o = put_str(out, o, size, "authentik.events.middleware");
        } else {
            o += (size_t)snprintf(out + o, size - o, "{");
            o = put_str(out, o, size, test_pick(refs, 4));
            o = put_sep(out, o, size, ":");
            o += (size_t)snprintf(out + o, size - o, "{");
            o = put_str(out, o, size, "app");
            o = put_sep(out, o, size, ":");
            o = put_str(out, o, size, test_pick(appsv, 4));
            o = put_sep(out, o, size, ",");
            o = put_str(out, o, size, "model_name");
            o = put_sep(out, o, size, ":");
            o = put_str(out, o, size, test_pick(modelsv, 5));
            o = put_sep(out, o, size, ",");
            o = put_str(out, o, size, "pk");
            o = put_sep(out, o, size, ":");
            o = put_str(out, o, size, "8b03f2c1df9c4cabbb33602efade9ced");
            if (test_rnd() % 4) {
                o = put_sep(out, o, size, ",");
                o = put_str(out, o, size, "name");
                o = put_sep(out, o, size, ":");
                o = put_str(out, o, size, test_pick(names, 5));
            }
            o += (size_t)snprintf(out + o, size - o, "}}");
        }
    }
    o += (size_t)snprintf(out + o, size - o, "}");
    /* sometimes cut it short: undecodable bytes */
    if (test_rnd() % 10 == 0 && o > 2) {
        o = 1 + (size_t)(test_rnd() % (o - 1));
    }
    return o;
}

static void never_rejects_a_generated_event_that_matches(void **state)
{
    char buf[2048];
    int rejected = 0;
    int i;

    (void)state;
    for (i = 0; i < 200000; i++) {
        size_t len = generate(buf, sizeof(buf));

        check_one(buf, len, "generated", &rejected);
    }
    /* The generator is token-heavy on purpose (it hunts for false
     * rejections), yet plenty of its noise is still filtered. */
    print_message("prefilter rejected %d of 200000 generated events\n",
                  rejected);
    assert_true(rejected > 20000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(never_rejects_a_fixture_that_matches),
        cmocka_unit_test(rejects_the_common_noise),
        cmocka_unit_test(lets_a_nul_through),
        cmocka_unit_test(never_rejects_a_generated_event_that_matches),
    };

    return cmocka_run_group_tests_name("prefilter", tests, NULL, NULL);
}
