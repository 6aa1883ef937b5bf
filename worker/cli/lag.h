/*
 * lag — a consumer group's progress per partition, as
 * `kafka-consumer-groups --describe` shows it: committed offset, log end
 * offset, lag in offsets, lag in seconds (the age of the first unconsumed
 * message) and the member that owns the partition. Works whether or not
 * workers are running: it asks the group coordinator without joining the
 * group. Where the broker does not describe groups (librdkafka's mock
 * cluster), the members are reported unknown and everything else still is.
 */
#ifndef AKV_WORKER_LAG_H
#define AKV_WORKER_LAG_H

#include "err.h"
#include "settings.h"

#include <stdio.h>

/**
 * @brief Prints the lag of \p group on \p topic (NULL: from the settings)
 *        as a table, or as JSON with \p json; a note on stderr when the
 *        members are unknown.
 * @returns AKV_OK, or an error with a message in \p errstr.
 */
akv_err_t akv_lag_report(const struct akv_settings *s, const char *group,
                         const char *topic, int json, FILE *out, char *errstr,
                         size_t errstr_size);

#endif /* AKV_WORKER_LAG_H */
