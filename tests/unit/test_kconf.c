/*
 * test_kconf — kafka.properties values from files and the environment.
 */
#include "testutil.h"

#include "kconf.h"
#include "log.h"

#include <stdlib.h>

static void values_resolve(void **state)
{
    char path[] = "/tmp/akv-kconf-XXXXXX";
    char why[256];
    char *v;
    int fd;

    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "pw-from-file\n\n", 14), 14);
    close(fd);
    setenv("AKV_TEST_KCONF", "pw-from-env", 1);
    unsetenv("AKV_TEST_KCONF_UNSET");

    v = akv_kconf_resolve("plain", why, sizeof(why));
    assert_string_equal(v, "plain");
    free(v);
    v = akv_kconf_resolve("@@literal", why, sizeof(why));
    assert_string_equal(v, "@literal");
    free(v);
    v = akv_kconf_resolve("@env:AKV_TEST_KCONF", why, sizeof(why));
    assert_string_equal(v, "pw-from-env");
    free(v);
    {
        char ref[64];

        snprintf(ref, sizeof(ref), "@file:%s", path);
        v = akv_kconf_resolve(ref, why, sizeof(why));
        assert_non_null(v);
        assert_string_equal(v, "pw-from-file"); /* newlines trimmed */
        free(v);
    }
    assert_null(
        akv_kconf_resolve("@env:AKV_TEST_KCONF_UNSET", why, sizeof(why)));
    assert_non_null(strstr(why, "AKV_TEST_KCONF_UNSET is not set"));
    unlink(path);
    assert_null(akv_kconf_resolve("@file:/nonexistent/x", why, sizeof(why)));
    assert_non_null(strstr(why, "cannot read /nonexistent/x"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(values_resolve),
    };

    return cmocka_run_group_tests_name("kconf", tests, NULL, NULL);
}
