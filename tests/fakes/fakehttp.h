/*
 * fakehttp — the small HTTP server the loopback stand-ins (fake-vault,
 * fake-authentik) are built on.
 *
 * It wraps libmicrohttpd in thread-per-connection mode: a handler may sleep
 * to inject latency without holding up other connections, and keep-alive
 * connections from the worker each get their own thread. Request bodies are
 * collected in full (capped) before the handler runs, so handlers see one
 * call per request. fakehttp_start_tls() serves HTTPS instead (GnuTLS, via
 * libmicrohttpd), optionally requiring verified client certificates.
 */
#ifndef AKV_TESTS_FAKEHTTP_H
#define AKV_TESTS_FAKEHTTP_H

#include <stddef.h>

/** Largest request body accepted; larger ones are answered 413. */
#define FAKEHTTP_MAX_BODY (32u * 1024u * 1024u)

struct MHD_Connection;

struct fakehttp_request {
    const char *method; /**< "GET", "POST", ... */
    const char *path;   /**< URL path, percent-decoded, no query string */
    const char *body;   /**< NUL-terminated request body ("" when none) */
    size_t body_len;
    struct MHD_Connection *conn; /**< for fakehttp_header()/fakehttp_arg() */
};

/** What the handler wants done with the connection. */
enum fakehttp_action {
    FAKEHTTP_RESPOND = 0, /**< send status, headers and body */
    FAKEHTTP_DROP,        /**< close the connection without answering */
    FAKEHTTP_TRUNCATE,    /**< announce the full length, send half, close */
};

#define FAKEHTTP_MAX_HEADERS 8

struct fakehttp_response {
    enum fakehttp_action action;
    int status; /**< HTTP status; 0 is sent as 500 */
    char *body; /**< heap body, freed by fakehttp; may be NULL */
    size_t body_len;
    const char *content_type; /**< default "application/json"; "" for none */
    int nheaders;
    struct {
        char name[64];
        char value[256];
    } headers[FAKEHTTP_MAX_HEADERS];
};

/**
 * @brief Handles one request. Fill \p resp; runs on a connection thread, so
 *        shared state needs the handler's own locking.
 */
typedef void(fakehttp_handler_fn)(void *opaque,
                                  const struct fakehttp_request *req,
                                  struct fakehttp_response *resp);

struct fakehttp;

/**
 * @brief Starts listening on \p listen ("HOST:PORT"; port 0 picks a free
 *        port; HOST must be an IPv4 literal).
 * @returns the server, or NULL with a message in \p errstr.
 */
struct fakehttp *fakehttp_start(const char *listen, fakehttp_handler_fn *fn,
                                void *opaque, char *errstr, size_t errstr_size);

/** @returns 0 when fakehttp_start() takes \p listen as its address, else -1
 *           (for checking a command line before anything starts). */
int fakehttp_listen_ok(const char *listen);

/** TLS settings of fakehttp_start_tls(); the files are PEM. */
struct fakehttp_tls {
    const char *cert_file; /**< server certificate (chain, leaf first) */
    const char *key_file;  /**< its private key (unencrypted) */
    /**
     * NULL: no client certificate is asked for. Else a CA bundle: every
     * request must come over a connection whose client presented a
     * certificate that verifies against it, or the connection is closed
     * with a TLS alert and nothing is answered.
     */
    const char *client_ca_file;
};

/**
 * @brief Like fakehttp_start(), but speaks HTTPS only (libmicrohttpd with
 *        GnuTLS). \p tls NULL is plain fakehttp_start().
 * @returns the server, or NULL with a message in \p errstr (which names
 *          files, never their contents).
 */
struct fakehttp *fakehttp_start_tls(const char *listen,
                                    const struct fakehttp_tls *tls,
                                    fakehttp_handler_fn *fn, void *opaque,
                                    char *errstr, size_t errstr_size);

/** @returns "HOST:PORT" the server really listens on. */
const char *fakehttp_address(const struct fakehttp *srv);

/** @brief Stops the server and waits for its threads. NULL is a no-op. */
void fakehttp_stop(struct fakehttp *srv);

/** @returns a request header (case-insensitive name) or NULL. */
const char *fakehttp_header(const struct fakehttp_request *req,
                            const char *name);

/** @returns a query-string argument, percent-decoded, or NULL. */
const char *fakehttp_arg(const struct fakehttp_request *req, const char *name);

/** @returns 1 when the request comes from a loopback address (the control
 *           endpoints /_fake/... serve only those unless told otherwise). */
int fakehttp_from_loopback(const struct fakehttp_request *req);

/**
 * @brief Sets the response: status and a printf-formatted body.
 *        The body is copied; an earlier body is freed.
 */
void fakehttp_reply(struct fakehttp_response *resp, int status, const char *fmt,
                    ...) __attribute__((format(printf, 3, 4)));

/** @brief Sets the response body, taking ownership of the heap \p body. */
void fakehttp_reply_take(struct fakehttp_response *resp, int status,
                         char *body);

/** @brief Adds a response header (silently ignored past the limit). */
void fakehttp_add_header(struct fakehttp_response *resp, const char *name,
                         const char *value);

/**
 * @brief Prints \p address as the first stdout line and flushes, so the
 *        process that started the stand-in can read where it listens.
 */
void fakehttp_announce(const char *address);

/**
 * @brief Blocks until SIGTERM or SIGINT arrives.
 * @remark Call fakehttp_block_signals() before starting any thread so that
 *         every thread inherits the blocked mask and the signal is taken here.
 */
void fakehttp_wait_for_signal(void);

/** @brief Blocks SIGTERM, SIGINT and SIGPIPE in the calling thread. */
void fakehttp_block_signals(void);

#endif /* AKV_TESTS_FAKEHTTP_H */
