/*
 * test_log — the logger never writes a registered secret.
 */
#include "testutil.h"

#include "log.h"

static char *capture(void (*emit)(void))
{
    FILE *fp = tmpfile();
    char *buf;
    long size;

    assert_non_null(fp);
    akv_log_set_stream(fp);
    emit();
    akv_log_set_stream(NULL);
    size = ftell(fp);
    rewind(fp);
    buf = calloc(1, (size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, fp), (size_t)size);
    fclose(fp);
    return buf;
}

static void emit_with_secret(void)
{
    akv_log_error("test", "token=%s again=%s end", "S3cretValue42",
                  "xS3cretValue42x");
}

static void registered_secret_is_redacted(void **state)
{
    char *line;

    (void)state;
    assert_int_equal(akv_log_secret_add("S3cretValue42"), 0);
    line = capture(emit_with_secret);
    assert_null(strstr(line, "S3cretValue42"));
    assert_non_null(strstr(line, "token=[redacted] again=x[redacted]x end"));
    free(line);
    akv_log_secret_remove("S3cretValue42");
    line = capture(emit_with_secret);
    assert_non_null(strstr(line, "S3cretValue42"));
    free(line);
}

static void scrub_handles_overlap_and_truncation(void **state)
{
    char s[32];

    (void)state;
    assert_int_equal(akv_log_secret_add("abcdefabcdef"), 0);
    snprintf(s, sizeof(s), "abcdefabcdefabcdefabcdef!");
    akv_log_scrub(s, sizeof(s));
    assert_string_equal(s, "[redacted][redacted]!");
    /* The marker is shorter than the secret here; with a tiny buffer the
     * line is truncated, never left holding the secret. */
    snprintf(s, 12, "xabcdefabcd");
    akv_log_scrub(s, 12);
    assert_null(strstr(s, "abcdefabcdef"));
    akv_log_secret_clear();
}

/* An excerpt finds secrets in the whole text before it cuts it, so a
 * secret straddling the cut leaves no piece behind; the JSON-escaped form
 * of the given secret and every registered secret go too. */
static void excerpt_redacts_before_cutting(void **state)
{
    char out[32];
    char big[200];

    (void)state;
    akv_log_secret_clear();
    /* "0123456789abc" straddles byte 31: neither half may remain. */
    akv_log_excerpt("twenty-five bytes of text 0123456789abcdef",
                    "0123456789abc", out, sizeof(out));
    assert_string_equal(out, "twenty-five bytes of text [r...");
    akv_log_excerpt("a \"q\"uoted\\ key: \\\"q\\\"uoted\\\\", "\"q\"uoted\\",
                    big, sizeof(big));
    assert_string_equal(big, "a [redacted] key: [redacted]");
    assert_int_equal(akv_log_secret_add("registered-secret"), 0);
    akv_log_excerpt("x registered-secret\ty\n", NULL, big, sizeof(big));
    assert_string_equal(big, "x [redacted] y ");
    akv_log_secret_clear();
    akv_log_excerpt("short", NULL, out, sizeof(out));
    assert_string_equal(out, "short");
    akv_log_excerpt("abc", NULL, out, 4); /* no room for text and "..." */
    assert_string_equal(out, "");
}

static void short_values_are_not_registered(void **state)
{
    char s[32];

    (void)state;
    assert_int_equal(akv_log_secret_add("abc"), 0);
    snprintf(s, sizeof(s), "abc abc");
    akv_log_scrub(s, sizeof(s));
    assert_string_equal(s, "abc abc");
}

static void emit_levels(void)
{
    akv_log_debug("test", "debug-line");
    akv_log_info("test", "info-line");
    akv_log_warn("test", "warn-line");
}

static void level_filters_lines(void **state)
{
    char *out;
    enum akv_log_level lvl;

    (void)state;
    assert_int_equal(akv_log_level_parse("warn", &lvl), 0);
    assert_int_equal(akv_log_level_parse("loud", &lvl), -1);
    akv_log_set_level(AKV_LOG_WARN);
    out = capture(emit_levels);
    assert_null(strstr(out, "debug-line"));
    assert_null(strstr(out, "info-line"));
    assert_non_null(strstr(out, "warn-line"));
    free(out);
    akv_log_set_level(AKV_LOG_INFO);
}

static void emit_json(void)
{
    akv_log_info("comp", "quote\" and\nnewline");
}

static void json_format_escapes(void **state)
{
    char *out;

    (void)state;
    akv_log_set_format(AKV_LOG_JSON);
    out = capture(emit_json);
    akv_log_set_format(AKV_LOG_TEXT);
    assert_non_null(strstr(out, "\"level\":\"info\""));
    assert_non_null(strstr(out, "\"msg\":\"quote\\\" and newline\""));
    /* exactly one line */
    assert_non_null(strchr(out, '\n'));
    assert_null(strchr(strchr(out, '\n') + 1, '\n'));
    free(out);
}

static void emit_fields(void)
{
    akv_log_warn("sync", "token=deploy-bot class=transient attempt=3 "
                         "retry_in_ms=400: vault read answered HTTP 503");
    akv_log_info("sync",
                 "token=ci-runner action=model_updated result=written "
                 "version=4 partition=2 offset=1234 event=0f9e events=1");
    akv_log_info("kafka", "not at the end yet: partition=-1 topic=a.b "
                          "offset=x12 event= token=");
}

/* JSON lines carry what the message names as key=value as fields (numbers
 * as numbers); the message stays whole. */
static void json_lines_carry_fields(void **state)
{
    char *out;
    char *l2;
    char *l3;

    (void)state;
    akv_log_set_format(AKV_LOG_JSON);
    out = capture(emit_fields);
    akv_log_set_format(AKV_LOG_TEXT);
    l2 = strchr(out, '\n');
    assert_non_null(l2);
    *l2++ = '\0';
    l3 = strchr(l2, '\n');
    assert_non_null(l3);
    *l3++ = '\0';
    assert_non_null(strstr(out, "HTTP 503\",\"token\":\"deploy-bot\","
                                "\"class\":\"transient\",\"attempt\":3}"));
    assert_non_null(strstr(l2, ",\"token\":\"ci-runner\",\"event\":\"0f9e\","
                               "\"partition\":2,\"offset\":1234}"));
    /* a value that is not a number stays a string; empty ones are left
     * out, and so are keys inside other words */
    assert_non_null(strstr(l3, ",\"topic\":\"a.b\",\"partition\":-1,"
                               "\"offset\":\"x12\"}"));
    assert_null(strstr(l3, "\"token\""));
    assert_null(strstr(l3, "\"event\""));
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registered_secret_is_redacted),
        cmocka_unit_test(scrub_handles_overlap_and_truncation),
        cmocka_unit_test(short_values_are_not_registered),
        cmocka_unit_test(excerpt_redacts_before_cutting),
        cmocka_unit_test(level_filters_lines),
        cmocka_unit_test(json_format_escapes),
        cmocka_unit_test(json_lines_carry_fields),
    };

    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
