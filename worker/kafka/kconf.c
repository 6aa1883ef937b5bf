/*
 * kconf — shared Kafka client configuration.
 */
#include "kconf.h"

#include "log.h"

int akv_kconf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                  char *errstr, size_t errstr_size)
{
    char kerr[512];

    if (rd_kafka_conf_set(conf, name, value, kerr, sizeof(kerr)) !=
        RD_KAFKA_CONF_OK) {
        akv_errf(AKV_ERR_CONFIG, errstr, errstr_size, "kafka property %s: %s",
                 name, kerr);
        return -1;
    }
    return 0;
}

int akv_kconf_properties(rd_kafka_conf_t *conf, const struct akv_settings *s,
                         char *errstr, size_t errstr_size)
{
    size_t i;

    for (i = 0; i < s->kafka_properties.n; i++) {
        if (akv_kconf_set(conf, s->kafka_properties.names[i],
                          s->kafka_properties.values[i], errstr,
                          errstr_size) < 0) {
            return -1;
        }
    }
    return 0;
}

void akv_kconf_log(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
    (void)rk;
    if (level <= 3) {
        akv_log_error("kafka", "%s: %s", fac, buf);
    } else if (level == 4) {
        akv_log_warn("kafka", "%s: %s", fac, buf);
    } else if (level <= 6) {
        akv_log_info("kafka", "%s: %s", fac, buf);
    } else {
        akv_log_debug("kafka", "%s: %s", fac, buf);
    }
}
