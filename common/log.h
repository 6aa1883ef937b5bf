/*
 * log — levelled logging to stderr, as text or JSON lines.
 *
 * Secrets never reach a log line by construction: callers don't format
 * them, and as a second line of defence every secret the process holds
 * (Vault token, authentik API token, JWTs, the token keys of syncs in
 * flight) is registered here, and any registered value that still finds its
 * way into a formatted line is replaced by "[redacted]" before the line is
 * written. The scrub runs on every line, including librdkafka's and libcurl's
 * messages routed through akv_log().
 */
#ifndef AKV_COMMON_LOG_H
#define AKV_COMMON_LOG_H

#include <stdio.h>

enum akv_log_level {
    AKV_LOG_ERROR = 0,
    AKV_LOG_WARN,
    AKV_LOG_INFO,
    AKV_LOG_DEBUG,
};

enum akv_log_format {
    AKV_LOG_TEXT = 0,
    AKV_LOG_JSON,
};

/** Secrets shorter than this are not registered (they would scrub noise). */
#define AKV_LOG_SECRET_MIN 6

/** @brief Sets the most verbose level that is written. */
void akv_log_set_level(enum akv_log_level level);

/** @brief Sets the line format. */
void akv_log_set_format(enum akv_log_format format);

/** @brief Sends lines to \p fp instead of stderr (tests). NULL = stderr. */
void akv_log_set_stream(FILE *fp);

/** @returns 0 and sets \p out when \p name is error|warn|info|debug. */
int akv_log_level_parse(const char *name, enum akv_log_level *out);

/** @returns the most verbose level written now. */
enum akv_log_level akv_log_get_level(void);

/** @returns "error", "warn", "info" or "debug". */
const char *akv_log_level_name(enum akv_log_level level);

/** @returns non-zero when \p level would be written. */
int akv_log_enabled(enum akv_log_level level);

/**
 * @brief Formats and writes one line: time, level, [component], message.
 * @remark Thread-safe. Use the akv_log_*() macros, which skip formatting
 *         when the level is disabled.
 */
void akv_log_write(enum akv_log_level level, const char *component,
                   const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define akv_log_at(level, comp, ...)                                           \
    do {                                                                       \
        if (akv_log_enabled(level)) {                                          \
            akv_log_write(level, comp, __VA_ARGS__);                           \
        }                                                                      \
    } while (0)

#define akv_log_error(comp, ...) akv_log_at(AKV_LOG_ERROR, comp, __VA_ARGS__)
#define akv_log_warn(comp, ...)  akv_log_at(AKV_LOG_WARN, comp, __VA_ARGS__)
#define akv_log_info(comp, ...)  akv_log_at(AKV_LOG_INFO, comp, __VA_ARGS__)
#define akv_log_debug(comp, ...) akv_log_at(AKV_LOG_DEBUG, comp, __VA_ARGS__)

/**
 * @brief Registers a secret to be scrubbed from every later line.
 * @remark The value is copied; registering the same value twice needs two
 *         removals. Values shorter than AKV_LOG_SECRET_MIN are ignored.
 * @returns 0, or -1 when out of memory (the caller should treat that as
 *          fatal for the secret's use).
 */
int akv_log_secret_add(const char *secret);

/** @brief Forgets one registration of \p secret (wiping the copy). */
void akv_log_secret_remove(const char *secret);

/** @brief Forgets every registered secret (wiping the copies). */
void akv_log_secret_clear(void);

/**
 * @brief Replaces every registered secret in \p s by "[redacted]", in place.
 * @remark \p s must have room for \p size bytes; the result is truncated to
 *         fit. Exposed for tests.
 */
void akv_log_scrub(char *s, size_t size);

/**
 * @brief A bounded excerpt of upstream text, fit for a log line or a
 *        dead-letter header: \p in copied to \p out (at most \p size - 1
 *        bytes), with every occurrence of \p secret (as is, and as it reads
 *        inside a JSON string) and of every registered secret replaced by
 *        "[redacted]", control characters by spaces, and "..." at the end
 *        when it was cut.
 * @remark Secrets are found in the whole of \p in before it is cut, so no
 *         part of one survives at the cut. \p secret may be NULL.
 */
void akv_log_excerpt(const char *in, const char *secret, char *out,
                     size_t size);

#endif /* AKV_COMMON_LOG_H */
