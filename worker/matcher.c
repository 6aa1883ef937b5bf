/*
 * matcher — authentik event → skip / sync / delete / poison.
 */
#include "matcher.h"

#include "json.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

const char *akv_match_kind_name(enum akv_match_kind kind)
{
    switch (kind) {
    case AKV_MATCH_SKIP:
        return "skip";
    case AKV_MATCH_SYNC:
        return "sync";
    case AKV_MATCH_DELETE:
        return "delete";
    case AKV_MATCH_POISON:
        return "poison";
    }
    return "?";
}

int akv_identifier_valid(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];

        if (!(isalnum(c) || c == '-' || c == '_') || c > 0x7f) {
            return 0;
        }
        if (n >= AKV_IDENTIFIER_MAX) {
            return 0;
        }
    }
    return n > 0;
}

int akv_token_pk_normalize(const char *pk, char out[33])
{
    size_t len = strlen(pk);
    size_t i;
    size_t o = 0;

    if (len != 32 && len != 36) {
        return -1;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)pk[i];

        if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
            if (c != '-') {
                return -1;
            }
            continue;
        }
        if (!isxdigit(c)) {
            return -1;
        }
        out[o++] = (char)tolower(c);
    }
    out[o] = '\0';
    return 0;
}

/* Naive but sufficient: only used on bytes that failed to parse. */
static int mem_contains(const char *buf, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    size_t i;

    for (i = 0; i + n <= len; i++) {
        if (memcmp(buf + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Copies \p s into \p out for a log-safe reason: printable ASCII only,
 * truncated, so an attacker-chosen name cannot forge log lines. */
static void safe_copy(char *out, size_t size, const char *s)
{
    size_t o = 0;

    for (; *s && o + 1 < size; s++) {
        unsigned char c = (unsigned char)*s;

        out[o++] = (c >= 0x20 && c < 0x7f && c != '"') ? (char)c : '?';
    }
    out[o] = '\0';
}

static void verdict(struct akv_match *out, enum akv_match_kind kind,
                    const char *fmt, const char *arg)
{
    out->kind = kind;
    snprintf(out->reason, sizeof(out->reason), fmt, arg ? arg : "");
}

/* The identifier: name up to its first space ("deploy-bot (expires=…)"),
 * else the enterprise diff's identifier. */
static const char *identifier_source(const cJSON *context, const cJSON *ref,
                                     size_t *len)
{
    const char *name = akv_json_string(ref, "name");
    const cJSON *ident;
    const char *sp;

    if (name) {
        sp = strchr(name, ' ');
        *len = sp ? (size_t)(sp - name) : strlen(name);
        return name;
    }
    ident =
        akv_json_path(context, "diff", "identifier", "new_value", AKV_JSON_END);
    if (cJSON_IsString(ident)) {
        *len = strlen(ident->valuestring);
        return ident->valuestring;
    }
    return NULL;
}

void akv_match_event(const struct akv_match_rules *rules, const char *buf,
                     size_t len, struct akv_match *out)
{
    cJSON *root = NULL;
    const cJSON *context;
    const cJSON *ref;
    const char *action;
    const char *pk;
    const char *app;
    const char *model;
    const char *ident;
    size_t ident_len = 0;
    enum akv_match_kind kind;
    char shown[64];

    memset(out, 0, sizeof(*out));
    root = cJSON_ParseWithLength(buf, len);
    if (!cJSON_IsObject(root)) {
        out->undecodable = 1;
        if (mem_contains(buf, len, "authentik_core") &&
            mem_contains(buf, len, "token")) {
            verdict(out, AKV_MATCH_POISON,
                    "undecodable event that mentions authentik_core and "
                    "token%s",
                    NULL);
        } else {
            verdict(out, AKV_MATCH_SKIP, "undecodable or not an object%s",
                    NULL);
        }
        goto out;
    }

    pk = akv_json_string(root, "pk");
    if (pk) {
        safe_copy(out->event_pk, sizeof(out->event_pk), pk);
    }
    action = akv_json_string(root, "action");
    if (!action) {
        verdict(out, AKV_MATCH_SKIP, "no action%s", NULL);
        goto out;
    }
    safe_copy(out->action, sizeof(out->action), action);
    if (akv_strlist_contains(rules->sync_actions, action)) {
        kind = AKV_MATCH_SYNC;
    } else if (akv_strlist_contains(rules->delete_actions, action)) {
        kind = AKV_MATCH_DELETE;
    } else {
        verdict(out, AKV_MATCH_SKIP, "action %s not matched", out->action);
        goto out;
    }

    context = akv_json_object(root, "context");
    if (!context) {
        verdict(out, AKV_MATCH_POISON, "%s event without a context object",
                out->action);
        goto out;
    }
    ref = akv_json_object(context, "model");
    if (!ref) {
        ref = akv_json_object(context, "token");
    }
    if (!ref) {
        /* secret_rotate of something that is not a token (context.secret
         * in newer authentik): not ours. */
        if (akv_json_object(context, "secret")) {
            verdict(out, AKV_MATCH_SKIP, "%s of a non-token secret",
                    out->action);
        } else {
            verdict(out, AKV_MATCH_POISON,
                    "%s event without context.model or context.token",
                    out->action);
        }
        goto out;
    }
    app = akv_json_string(ref, "app");
    model = akv_json_string(ref, "model_name");
    if (!app || !model) {
        verdict(out, AKV_MATCH_POISON,
                "%s event whose model reference lacks app or model_name",
                out->action);
        goto out;
    }
    if (!akv_strlist_contains(rules->apps, app) ||
        !akv_strlist_contains(rules->models, model)) {
        safe_copy(shown, sizeof(shown), model);
        verdict(out, AKV_MATCH_SKIP, "model %s not matched", shown);
        goto out;
    }

    /* From here on the event is about a token: anything unusable is poison,
     * never a silent skip and never a Vault path. */
    pk = akv_json_string(ref, "pk");
    if (!pk || akv_token_pk_normalize(pk, out->token_pk) < 0) {
        out->token_pk[0] = '\0';
        verdict(out, AKV_MATCH_POISON, "token reference without a UUID pk%s",
                NULL);
        goto out;
    }
    ident = identifier_source(context, ref, &ident_len);
    if (!ident) {
        verdict(out, AKV_MATCH_POISON,
                "token reference without name or identifier%s", NULL);
        goto out;
    }
    if (ident_len > AKV_IDENTIFIER_MAX) {
        verdict(out, AKV_MATCH_POISON, "identifier longer than 255 bytes%s",
                NULL);
        goto out;
    }
    memcpy(out->identifier, ident, ident_len);
    out->identifier[ident_len] = '\0';
    if (!akv_identifier_valid(out->identifier)) {
        safe_copy(shown, sizeof(shown), out->identifier);
        out->identifier[0] = '\0';
        verdict(out, AKV_MATCH_POISON, "identifier \"%s\" is not a slug",
                shown);
        goto out;
    }
    out->kind = kind;

out:
    cJSON_Delete(root);
}
