/*
 * lag — a consumer group's progress per partition: committed offset, log
 * end offset, and the difference, as `kafka-consumer-groups --describe`
 * shows it. Works whether or not workers are running: it asks the group
 * coordinator for the committed offsets without joining the group.
 */
#ifndef AKV_WORKER_LAG_H
#define AKV_WORKER_LAG_H

#include "err.h"
#include "settings.h"

#include <stdio.h>

/**
 * @brief Prints the lag of \p group on \p topic (NULL: from the settings)
 *        as a table, or as JSON with \p json.
 * @returns AKV_OK, or an error with a message in \p errstr.
 */
akv_err_t akv_lag_report(const struct akv_settings *s, const char *group,
                         const char *topic, int json, FILE *out, char *errstr,
                         size_t errstr_size);

#endif /* AKV_WORKER_LAG_H */
