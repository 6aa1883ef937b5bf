/*
 * test_kstats — the figures read from librdkafka's statistics.
 */
#include "testutil.h"

#include "kstats.h"

/* A consumer's statistics as librdkafka 2.0.2 writes them, cut down to
 * the members kstats reads and a few it must skip. */
static const char stats[] =
    "{\"name\":\"ak2vault#consumer-1\",\"client_id\":\"ak2vault\","
    "\"type\":\"consumer\",\"ts\":123,\"replyq\":0,"
    "\"brokers\":{"
    "\"kafka-0:9092/bootstrap\":{\"name\":\"kafka-0:9092/bootstrap\","
    "\"nodeid\":-1,\"source\":\"configured\",\"state\":\"UP\","
    "\"rtt\":{\"min\":100,\"max\":900,\"avg\":500,\"cnt\":3}},"
    "\"kafka-0:9092/0\":{\"name\":\"kafka-0:9092/0\",\"nodeid\":0,"
    "\"source\":\"learned\",\"state\":\"UP\","
    "\"rtt\":{\"min\":800,\"max\":4000,\"avg\":1250,\"cnt\":12}},"
    "\"kafka-1:9092/1\":{\"name\":\"kafka-1:9092/1\",\"nodeid\":1,"
    "\"source\":\"learned\",\"state\":\"INIT\","
    "\"rtt\":{\"min\":0,\"max\":0,\"avg\":0,\"cnt\":0}},"
    "\"GroupCoordinator\":{\"name\":\"GroupCoordinator\",\"nodeid\":0,"
    "\"source\":\"logical\",\"state\":\"UP\","
    "\"rtt\":{\"avg\":1250,\"cnt\":12}}},"
    "\"topics\":{\"authentik.events\":{\"topic\":\"authentik.events\","
    "\"partitions\":{"
    "\"0\":{\"partition\":0,\"fetchq_cnt\":30,\"fetchq_size\":24000},"
    "\"1\":{\"partition\":1,\"fetchq_cnt\":2,\"fetchq_size\":1600},"
    "\"-1\":{\"partition\":-1,\"fetchq_cnt\":5,\"fetchq_size\":100}}}}}";

static void reads_rtt_and_fetch_queues(void **state)
{
    struct akv_kstats k;

    (void)state;
    assert_int_equal(akv_kstats_parse(stats, sizeof(stats) - 1, &k), 0);
    /* the bootstrap address, a broker with no round trip yet and the
     * logical coordinator are left out */
    assert_int_equal(k.nbrokers, 1);
    assert_string_equal(k.brokers[0].name, "kafka-0:9092/0");
    assert_true(k.brokers[0].rtt_seconds > 0.00124 &&
                k.brokers[0].rtt_seconds < 0.00126);
    /* the unassigned partition (-1) is not a fetch queue */
    assert_true(k.fetch_queue_messages == 32);
    assert_true(k.fetch_queue_bytes == 25600);
}

static void refuses_what_is_not_statistics(void **state)
{
    struct akv_kstats k;

    (void)state;
    assert_int_equal(akv_kstats_parse("{}", 2, &k), -1);
    assert_int_equal(akv_kstats_parse("[1,2]", 5, &k), -1);
    assert_int_equal(akv_kstats_parse("{\"type\":", 8, &k), -1);
    assert_int_equal(akv_kstats_parse("{\"type\":\"consumer\"}", 19, &k), 0);
    assert_int_equal(k.nbrokers, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_rtt_and_fetch_queues),
        cmocka_unit_test(refuses_what_is_not_statistics),
    };

    return cmocka_run_group_tests_name("kstats", tests, NULL, NULL);
}
