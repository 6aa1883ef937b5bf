/*
 * vault — reads and writes one token's secret in Vault KV version 2.
 *
 * Path building, body building, response parsing and classification are
 * pure functions; akv_vault_read() and akv_vault_write() are the thin
 * network edges around them.
 */
#ifndef AKV_WORKER_VAULT_H
#define AKV_WORKER_VAULT_H

#include "failure.h"
#include "settings.h"

#include <cJSON.h>
#include <stddef.h>

/** What Vault holds for one path. */
struct akv_vault_secret {
    long long version; /**< current version; 0 when the path never existed */
    cJSON *data;       /**< current data object, NULL when absent/deleted */
};

struct akv_vault;

/**
 * @brief Creates a client for settings->vault_addr with token auth.
 * @returns the client or NULL with a message in \p errstr.
 */
struct akv_vault *akv_vault_new(const struct akv_settings *s, char *errstr,
                                size_t errstr_size);

/** @brief Destroys the client. NULL is a no-op. */
void akv_vault_destroy(struct akv_vault *v);

/**
 * @brief Builds "{mount}/{kind}/{prefix}/{identifier}" with every segment
 *        percent-encoded (the slashes inside mount and prefix are kept).
 * @param kind "data" or "metadata".
 * @returns 0, or -1 when \p out is too small.
 */
int akv_vault_secret_path(const char *mount, const char *kind,
                          const char *prefix, const char *identifier, char *out,
                          size_t size);

/**
 * @brief Maps a Vault answer to a failure class.
 * @param status HTTP status, 0 when no answer arrived.
 * @param body response body ("" when none).
 */
enum akv_class akv_vault_classify(long status, const char *body);

/**
 * @brief Interprets the answer to GET {mount}/data/{path}.
 * @returns AKV_CLASS_OK with \p out filled (version 0 and data NULL for a
 *          path never written; data NULL for a deleted current version), or
 *          the failure class with a message in \p errstr.
 */
enum akv_class akv_vault_parse_read(long status, const char *body, size_t len,
                                    struct akv_vault_secret *out, char *errstr,
                                    size_t errstr_size);

/**
 * @brief Builds the KV v2 write body {"options":{"cas":N},"data":{...}}.
 * @returns a string for akv_json_free_string(), or NULL when out of memory.
 */
char *akv_vault_write_body(const cJSON *data, long long cas);

/** @brief Reads the current version of \p identifier's secret. */
enum akv_class akv_vault_read(struct akv_vault *v, const char *identifier,
                              struct akv_vault_secret *out, char *errstr,
                              size_t errstr_size);

/**
 * @brief Writes \p data with check-and-set \p cas.
 * @returns AKV_CLASS_OK with the new version in \p version,
 *          AKV_CLASS_SUPERSEDED when another writer got there first, or
 *          another failure class with a message in \p errstr.
 */
enum akv_class akv_vault_write(struct akv_vault *v, const char *identifier,
                               const cJSON *data, long long cas,
                               long long *version, char *errstr,
                               size_t errstr_size);

/** @brief Frees what akv_vault_read() put in \p s (wiping the data). */
void akv_vault_secret_free(struct akv_vault_secret *s);

#endif /* AKV_WORKER_VAULT_H */
