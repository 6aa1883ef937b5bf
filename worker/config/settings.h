/*
 * settings — the worker's configuration: one schema table, the struct it
 * fills, and the cross-field checks that run after loading.
 */
#ifndef AKV_WORKER_SETTINGS_H
#define AKV_WORKER_SETTINGS_H

#include "config.h"
#include "err.h"

#include <stdio.h>

struct akv_settings {
    /* kafka */
    char *kafka_brokers;
    char *kafka_topic;
    char *kafka_group;
    char *kafka_instance_id;
    char *kafka_auto_offset_reset;
    long long kafka_session_timeout_ms;
    long long kafka_max_poll_interval_ms;
    struct akv_pairs kafka_properties;

    /* authentik */
    char *authentik_url;
    char *authentik_token; /**< secret: env AUTHENTIK_TOKEN or file */
    char *authentik_token_file;
    long long authentik_timeout_ms;
    long long authentik_connect_timeout_ms;
    char *authentik_tls_ca_file;
    int authentik_tls_skip_verify;

    /* vault */
    char *vault_addr;
    char *vault_token; /**< secret: env VAULT_TOKEN or file */
    char *vault_token_file;
    char *vault_namespace;
    char *vault_auth_method; /**< token | kubernetes | approle */
    char *vault_auth_mount;  /**< NULL = the method's name */
    char *vault_auth_role;
    char *vault_auth_jwt_file;
    char *vault_auth_role_id;
    char *vault_auth_role_id_file;
    char *vault_auth_secret_id_file;
    char *vault_tls_ca_file;
    char *vault_tls_ca_path;
    char *vault_tls_client_cert;
    char *vault_tls_client_key;
    char *vault_tls_server_name;
    int vault_tls_skip_verify;
    char *vault_on_delete; /**< keep | soft-delete | purge */
    char *vault_kv_mount;
    char *vault_prefix;
    struct akv_strlist vault_extra_fields;
    long long vault_timeout_ms;
    long long vault_connect_timeout_ms;

    /* match */
    struct akv_strlist match_apps;
    struct akv_strlist match_models;
    struct akv_strlist match_sync_actions;
    struct akv_strlist match_delete_actions;
    struct akv_strlist match_intents;
    struct akv_strlist match_exclude_identifiers;

    /* sync */
    long long sync_max_in_flight;
    long long sync_max_pending;
    long long sync_catchup_delay_ms;
    long long sync_shutdown_timeout_ms;
    long long sync_retry_initial_ms;
    long long sync_retry_max_ms;
    double sync_retry_multiplier;
    long long sync_retry_after_max_ms;
    long long sync_max_attempts;
    long long sync_config_retry_ms;
    long long sync_log_interval_ms;
    long long sync_cas_max_attempts;
    long long sync_cache_size;
    long long sync_cache_max_age_ms;

    /* reconcile: the periodic one inside `run` */
    long long reconcile_interval_ms; /**< 0: no periodic reconcile */
    int reconcile_on_start;
    long long reconcile_max_requests_per_second;

    /* dlq */
    int dlq_enabled;
    char *dlq_topic; /**< default "<kafka.topic>.dlq" */
    int dlq_undecodable;

    /* metrics: the HTTP endpoint */
    char *metrics_listen; /**< host:port, NULL = none */
    long long metrics_lag_interval_ms;
    long long metrics_stall_timeout_ms;
    long long metrics_live_timeout_ms;

    /* log */
    char *log_level;
    char *log_format;
};

/** The schema: every setting, its type, default, bounds and environment. */
extern const struct akv_cfg_entry akv_settings_schema[];

/**
 * @brief Loads \p path, applies the environment, reads secret files and runs
 *        the cross-field checks.
 * @returns AKV_OK or AKV_ERR_CONFIG with "file:line: message" in \p errstr.
 * @remark Release \p s with akv_settings_free() whatever the result.
 */
akv_err_t akv_settings_load(struct akv_settings *s, const char *path,
                            char *errstr, size_t errstr_size);

/**
 * @brief For commands that only talk to Kafka: like akv_settings_load(),
 *        but only the kafka settings are required and checked (no Vault
 *        or authentik setting, no credential), and \p path may be NULL to
 *        take everything from the environment (KAFKA_BROKERS, ...).
 */
akv_err_t akv_settings_load_kafka(struct akv_settings *s, const char *path,
                                  char *errstr, size_t errstr_size);

/** @brief Frees (and wipes the secrets of) \p s. */
void akv_settings_free(struct akv_settings *s);

/** @brief Prints the effective settings, secrets masked. */
void akv_settings_dump(const struct akv_settings *s, FILE *fp);

/**
 * @returns non-zero when \p url is plain http:// to a host other than the
 *          loopback (localhost, 127.0.0.0/8, ::1): credentials and token
 *          keys would cross a network unencrypted.
 */
int akv_url_plain_remote(const char *url);

/** @brief Logs a warning for each upstream reached over plain HTTP on a
 *         network (akv_url_plain_remote()). */
void akv_settings_warn_plain_http(const struct akv_settings *s);

/** The fields of authentik's token object that may be mirrored to Vault
 *  besides "key" and "intent". NULL-terminated. */
extern const char *const akv_settings_extra_field_names[];

#endif /* AKV_WORKER_SETTINGS_H */
