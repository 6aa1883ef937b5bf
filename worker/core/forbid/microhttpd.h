/*
 * core/ makes pure decisions: no network, no Kafka client, no HTTP server.
 * This stub is first on core's include path (Makefile, DEPS_core), so that
 * including the real header from a core/ file fails the build.
 */
#error                                                                         \
    "worker/core must not include <microhttpd.h>: put the I/O in another part"
