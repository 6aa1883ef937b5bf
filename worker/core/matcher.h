/*
 * matcher — decides what one authentik event means for ak2vault.
 *
 * Pure: bytes in, verdict out, no I/O. Events are triggers, never data: the
 * matcher only finds *which* token an event is about (its identifier, the
 * key every authentik token endpoint is addressed by); the sync then reads
 * the token's current state from authentik.
 */
#ifndef AKV_WORKER_MATCHER_H
#define AKV_WORKER_MATCHER_H

#include "config.h"

#include <stddef.h>

#define AKV_IDENTIFIER_MAX 255

enum akv_match_kind {
    AKV_MATCH_SKIP = 0, /**< not a token event: count and commit */
    AKV_MATCH_SYNC,     /**< token created/updated/rotated: sync it */
    AKV_MATCH_DELETE,   /**< token deleted: confirm, then per on_delete */
    AKV_MATCH_POISON,   /**< claims to be a token event but is unusable */
};

struct akv_match {
    enum akv_match_kind kind;
    char action[64];                         /**< event action, "" if none */
    char identifier[AKV_IDENTIFIER_MAX + 1]; /**< SYNC/DELETE only */
    char token_pk[33];                       /**< 32 lowercase hex or "" */
    char event_pk[40];                       /**< event pk or "" */
    char reason[192];                        /**< why SKIP or POISON */
    int undecodable; /**< the bytes are not a JSON object */
};

/** The configurable matching lists (README.md, "Matching"). */
struct akv_match_rules {
    const struct akv_strlist *apps;           /**< e.g. authentik_core */
    const struct akv_strlist *models;         /**< e.g. token */
    const struct akv_strlist *sync_actions;   /**< model_created, ... */
    const struct akv_strlist *delete_actions; /**< model_deleted */
};

/**
 * @brief Classifies one event value.
 *
 * The token reference is read from `context.model` (model_* actions) or
 * `context.token` (secret_rotate); it matches when its `app` and
 * `model_name` are in the rules' lists. The identifier is the reference's
 * `name` up to the first space (falling back to the enterprise
 * `context.diff.identifier.new_value`) and must be a slug.
 *
 * Undecodable bytes are SKIP unless they mention both "authentik_core" and
 * "token", in which case they are POISON: they may be a token event that
 * must not vanish silently.
 */
void akv_match_event(const struct akv_match_rules *rules, const char *buf,
                     size_t len, struct akv_match *out);

/**
 * @brief akv_match_event() by way of a full cJSON parse, always (it takes
 *        that way only when its scan cannot answer): the reference the
 *        scan is tested against.
 */
void akv_match_event_parsed(const struct akv_match_rules *rules,
                            const char *buf, size_t len, struct akv_match *out);

/**
 * @returns non-zero when \p buf mentions both "authentik_core" and
 *          "token": what makes undecodable bytes POISON.
 */
int akv_match_mentions_token(const char *buf, size_t len);

/** @returns non-zero when \p s matches ^[-a-zA-Z0-9_]{1,255}$. */
int akv_identifier_valid(const char *s);

/**
 * @brief Normalises a token pk ("8b03…ced" or dashed UUID) to 32 lowercase
 *        hex characters.
 * @returns 0, or -1 when \p pk is not a UUID.
 */
int akv_token_pk_normalize(const char *pk, char out[33]);

/** @returns a stable lowercase name for \p kind ("sync", ...). */
const char *akv_match_kind_name(enum akv_match_kind kind);

#endif /* AKV_WORKER_MATCHER_H */
