/*
 * kconf — what every Kafka client of ak2vault (the consumer, the
 * dead-letter producer, lag/replay/check-config's clients) is configured
 * with: the pass-through kafka.properties, errors named after the
 * property, and librdkafka's log lines through the scrubbing logger.
 */
#ifndef AKV_WORKER_KCONF_H
#define AKV_WORKER_KCONF_H

#include "settings.h"

#include <librdkafka/rdkafka.h>

/**
 * @brief Sets one property.
 * @returns 0, or -1 with "kafka property NAME: why" in \p errstr.
 */
int akv_kconf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                  char *errstr, size_t errstr_size);

/**
 * @brief A kafka.properties value as librdkafka gets it: "@file:PATH" is
 *        the file's content (trailing newlines trimmed, read anew each
 *        time a client is made), "@env:NAME" the environment variable's
 *        value, "@@..." the literal "@..."; anything else itself.
 * @returns a malloc'd copy (wipe it: it may be a password), or NULL with
 *          the reason in \p why.
 */
char *akv_kconf_resolve(const char *value, char *why, size_t why_size);

/**
 * @brief Sets every kafka.properties pair of \p s (security settings and
 *        tuning), values resolved by akv_kconf_resolve() and, when taken
 *        from a file or the environment, kept out of every log line; a
 *        client sets what it must not let them change after.
 * @returns 0, or -1 with the first refused property in \p errstr.
 */
int akv_kconf_properties(rd_kafka_conf_t *conf, const struct akv_settings *s,
                         char *errstr, size_t errstr_size);

/** librdkafka's log callback: its syslog levels onto ak2vault's. */
void akv_kconf_log(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf);

#endif /* AKV_WORKER_KCONF_H */
