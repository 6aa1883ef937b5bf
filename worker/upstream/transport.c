/*
 * transport — libcurl's result, sorted into a failure class.
 */
#include "transport.h"

#include <curl/curl.h>
#include <string.h>

/* TLS alerts a server sends when it refuses our certificate (OpenSSL's
 * wording in libcurl's error buffer). */
static int certificate_alert(const char *error)
{
    return error && strstr(error, "alert") &&
           (strstr(error, "certificate") || strstr(error, "unknown ca") ||
            strstr(error, "access denied"));
}

enum akv_class akv_transport_class(int curl_code, const char *error)
{
    switch ((CURLcode)curl_code) {
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_SSL_CONNECT_ERROR:
        return certificate_alert(error) ? AKV_CLASS_CONFIG
                                        : AKV_CLASS_TRANSIENT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_CIPHER:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
        return AKV_CLASS_CONFIG;
    default:
        return AKV_CLASS_TRANSIENT;
    }
}
