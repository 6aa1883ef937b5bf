/*
 * kconf — shared Kafka client configuration.
 */
#include "kconf.h"

#include "log.h"
#include "secretfile.h"
#include "wipe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The most a "@file:" value may hold. */
#define VALUE_FILE_MAX 65536

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

char *akv_kconf_resolve(const char *value, char *why, size_t why_size)
{
    const char *env;
    char *copy;

    if (strncmp(value, "@file:", 6) == 0) {
        return akv_secret_read(value + 6, VALUE_FILE_MAX, 0, why, why_size);
    }
    if (strncmp(value, "@env:", 5) == 0) {
        env = getenv(value + 5);
        if (!env) {
            snprintf(why, why_size, "environment variable %s is not set",
                     value + 5);
            return NULL;
        }
        value = env;
    } else if (strncmp(value, "@@", 2) == 0) {
        value++; /* a literal value that starts with '@' */
    }
    copy = strdup(value);
    if (!copy) {
        snprintf(why, why_size, "out of memory");
    }
    return copy;
}

int akv_kconf_properties(rd_kafka_conf_t *conf, const struct akv_settings *s,
                         char *errstr, size_t errstr_size)
{
    size_t i;

    for (i = 0; i < s->kafka_properties.n; i++) {
        const char *name = s->kafka_properties.names[i];
        const char *given = s->kafka_properties.values[i];
        char why[512];
        char *value = akv_kconf_resolve(given, why, sizeof(why));
        int rc;

        if (!value) {
            akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                     "kafka property %s: %s", name, why);
            return -1;
        }
        /* A value taken from a file or the environment is a credential
         * more often than not: no log line may show it. */
        if (given[0] == '@' && given[1] != '@' &&
            akv_log_secret_add(value) < 0) {
            akv_wipe_free(value);
            akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
            return -1;
        }
        rc = akv_kconf_set(conf, name, value, errstr, errstr_size);
        akv_wipe_free(value);
        if (rc < 0) {
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
