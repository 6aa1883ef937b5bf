/*
 * listen — a listen address from its configured spelling.
 */
#include "listen.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

akv_err_t akv_listen_parse(const char *spec, struct sockaddr_storage *addr,
                           socklen_t *addrlen, char *errstr, size_t errstr_size)
{
    char host[256];
    const char *port;
    const char *colon;
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    char *end;
    long n;
    int rc;

    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');

        if (!close || close[1] != ':' ||
            (size_t)(close - spec) > sizeof(host)) {
            goto bad;
        }
        memcpy(host, spec + 1, (size_t)(close - spec - 1));
        host[close - spec - 1] = '\0';
        port = close + 2;
    } else {
        colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= sizeof(host) ||
            memchr(spec, ':', (size_t)(colon - spec))) {
            goto bad;
        }
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
        port = colon + 1;
    }
    n = strtol(port, &end, 10);
    if (!*port || *end || n < 0 || n > 65535) {
        goto bad;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(*host ? host : NULL, port, &hints, &res);
    if (rc != 0 || !res) {
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                        "cannot resolve '%s': %s", host, gai_strerror(rc));
    }
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return AKV_OK;

bad:
    return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                    "'%s' is not host:port, [ipv6]:port or :port", spec);
}
