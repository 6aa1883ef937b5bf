/*
 * listen — where a server should listen: "host:port", "[v6]:port" or
 * ":port" as the configuration spells it.
 */
#ifndef AKV_COMMON_LISTEN_H
#define AKV_COMMON_LISTEN_H

#include "err.h"

#include <stddef.h>
#include <sys/socket.h>

/**
 * @brief Parses "host:port", "[v6]:port" or ":port" (every address) into
 *        \p addr, resolving a host name.
 * @returns AKV_OK, or AKV_ERR_CONFIG with a message in \p errstr.
 */
akv_err_t akv_listen_parse(const char *spec, struct sockaddr_storage *addr,
                           socklen_t *addrlen, char *errstr,
                           size_t errstr_size);

#endif /* AKV_COMMON_LISTEN_H */
