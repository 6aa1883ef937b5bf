/*
 * test_kafka_denial — which librdkafka errors are a refusal the principal's
 * ACLs or credentials explain (consumer.c), and which librdkafka versions
 * cannot log in with SCRAM to Kafka 4.x brokers.
 */
#include "testutil.h"

#include "consumer.h"

static void errors_are_classified(void **state)
{
    static const struct {
        rd_kafka_resp_err_t err;
        enum akv_kafka_denial want;
    } table[] = {
        {RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, AKV_DENIED_TOPIC},
        {RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED, AKV_DENIED_GROUP},
        {RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED, AKV_DENIED_CLUSTER},
        {RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED, AKV_DENIED_AUTH},
        {RD_KAFKA_RESP_ERR__AUTHENTICATION, AKV_DENIED_AUTH},
        /* Transient or unrelated: librdkafka retries these by itself. */
        {RD_KAFKA_RESP_ERR_NO_ERROR, AKV_DENIED_NONE},
        {RD_KAFKA_RESP_ERR__TRANSPORT, AKV_DENIED_NONE},
        {RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN, AKV_DENIED_NONE},
        {RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, AKV_DENIED_NONE},
        {RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE, AKV_DENIED_NONE},
        {RD_KAFKA_RESP_ERR_NOT_COORDINATOR, AKV_DENIED_NONE},
        {RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS, AKV_DENIED_NONE},
        {RD_KAFKA_RESP_ERR__FATAL, AKV_DENIED_NONE},
        {RD_KAFKA_RESP_ERR__SSL, AKV_DENIED_NONE},
        {RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
         AKV_DENIED_NONE},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (akv_kafka_denial_of(table[i].err) != table[i].want) {
            fail_msg("%s: got %d, want %d", rd_kafka_err2name(table[i].err),
                     (int)akv_kafka_denial_of(table[i].err),
                     (int)table[i].want);
        }
    }
}

static void scram_before_2_6_1_is_broken(void **state)
{
    static const struct {
        const char *mechanism;
        int version;
        int want;
    } table[] = {
        {"SCRAM-SHA-512", 0x020002ff, 1}, /* Debian's 2.0.2 */
        {"SCRAM-SHA-256", 0x020002ff, 1},
        {"scram-sha-512", 0x020002ff, 1},
        {"SCRAM-SHA-512", 0x020600ff, 1}, /* 2.6.0 still */
        {"SCRAM-SHA-512", 0x020601ff, 0}, /* fixed in 2.6.1 */
        {"SCRAM-SHA-512", 0x020a00ff, 0},
        {"PLAIN", 0x020002ff, 0},
        {"GSSAPI", 0x020002ff, 0},
        {"OAUTHBEARER", 0x020002ff, 0},
        {NULL, 0x020002ff, 0}, /* no SASL */
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (akv_kafka_scram_broken(table[i].mechanism, table[i].version) !=
            table[i].want) {
            fail_msg("%s at 0x%08x: want %d",
                     table[i].mechanism ? table[i].mechanism : "(none)",
                     (unsigned)table[i].version, table[i].want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(errors_are_classified),
        cmocka_unit_test(scram_before_2_6_1_is_broken),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
