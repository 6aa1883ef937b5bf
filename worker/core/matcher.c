/*
 * matcher — authentik event → skip / sync / delete / poison.
 */
#include "matcher.h"

#include "jscan.h"
#include "json.h"
#include "memfind.h"

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

/* A pk of \p len bytes (not NUL-terminated). */
static int pk_normalize(const char *pk, size_t len, char out[33])
{
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

int akv_token_pk_normalize(const char *pk, char out[33])
{
    return pk_normalize(pk, strlen(pk), out);
}

int akv_match_mentions_token(const char *buf, size_t len)
{
    return akv_memfind(buf, len, "authentik_core", 14) != NULL &&
           akv_memfind(buf, len, "token", 5) != NULL;
}

/* Copies \p n bytes of \p s into \p out for a log-safe reason: printable
 * ASCII only, truncated, so an attacker-chosen name cannot forge log lines. */
static void safe_copy(char *out, size_t size, const char *s, size_t n)
{
    size_t o = 0;
    size_t i;

    for (i = 0; i < n && o + 1 < size; i++) {
        unsigned char c = (unsigned char)s[i];

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

/* A string member: p == NULL when absent or not a string. */
struct span {
    const char *p;
    size_t n;
};

/* A token reference: context.model or context.token. */
struct ref {
    int present; /* the member is an object */
    struct span app;
    struct span model;
    struct span pk;
    struct span name;
};

/* The members of an event the verdict depends on. */
struct view {
    struct span pk;
    struct span action;
    int context; /* context is an object */
    struct ref model;
    struct ref token;
    int secret;             /* context.secret is an object */
    struct span diff_ident; /* context.diff.identifier.new_value */
};

static int listed(const struct akv_strlist *l, struct span s)
{
    return akv_strlist_contains_n(l, s.p, s.n);
}

/* --- the view from jscan (no allocation) or from a cJSON tree */

enum {
    Q_PK,
    Q_ACTION,
    Q_CONTEXT,
    Q_MODEL,
    Q_MODEL_APP,
    Q_MODEL_MODEL,
    Q_MODEL_PK,
    Q_MODEL_NAME,
    Q_TOKEN,
    Q_TOKEN_APP,
    Q_TOKEN_MODEL,
    Q_TOKEN_PK,
    Q_TOKEN_NAME,
    Q_SECRET,
    Q_DIFF,
    Q_DIFF_IDENT,
    Q_DIFF_NEW,
    Q_COUNT
};

static const struct akv_jscan_query queries[Q_COUNT] = {
    [Q_PK] = {"pk", AKV_JSCAN_ROOT},
    [Q_ACTION] = {"action", AKV_JSCAN_ROOT},
    [Q_CONTEXT] = {"context", AKV_JSCAN_ROOT},
    [Q_MODEL] = {"model", Q_CONTEXT},
    [Q_MODEL_APP] = {"app", Q_MODEL},
    [Q_MODEL_MODEL] = {"model_name", Q_MODEL},
    [Q_MODEL_PK] = {"pk", Q_MODEL},
    [Q_MODEL_NAME] = {"name", Q_MODEL},
    [Q_TOKEN] = {"token", Q_CONTEXT},
    [Q_TOKEN_APP] = {"app", Q_TOKEN},
    [Q_TOKEN_MODEL] = {"model_name", Q_TOKEN},
    [Q_TOKEN_PK] = {"pk", Q_TOKEN},
    [Q_TOKEN_NAME] = {"name", Q_TOKEN},
    [Q_SECRET] = {"secret", Q_CONTEXT},
    [Q_DIFF] = {"diff", Q_CONTEXT},
    [Q_DIFF_IDENT] = {"identifier", Q_DIFF},
    [Q_DIFF_NEW] = {"new_value", Q_DIFF_IDENT},
};

static struct span scanned(const struct akv_jscan_value *v, int q)
{
    struct span s = {NULL, 0};

    if (v[q].type == AKV_JSCAN_STRING) {
        s.p = v[q].p;
        s.n = v[q].n;
    }
    return s;
}

static int view_scan(const char *buf, size_t len, struct view *w)
{
    struct akv_jscan_value v[Q_COUNT];

    if (akv_jscan(buf, len, queries, Q_COUNT, v) < 0) {
        return -1;
    }
    w->pk = scanned(v, Q_PK);
    w->action = scanned(v, Q_ACTION);
    w->context = v[Q_CONTEXT].type == AKV_JSCAN_OBJECT;
    w->model.present = v[Q_MODEL].type == AKV_JSCAN_OBJECT;
    w->model.app = scanned(v, Q_MODEL_APP);
    w->model.model = scanned(v, Q_MODEL_MODEL);
    w->model.pk = scanned(v, Q_MODEL_PK);
    w->model.name = scanned(v, Q_MODEL_NAME);
    w->token.present = v[Q_TOKEN].type == AKV_JSCAN_OBJECT;
    w->token.app = scanned(v, Q_TOKEN_APP);
    w->token.model = scanned(v, Q_TOKEN_MODEL);
    w->token.pk = scanned(v, Q_TOKEN_PK);
    w->token.name = scanned(v, Q_TOKEN_NAME);
    w->secret = v[Q_SECRET].type == AKV_JSCAN_OBJECT;
    w->diff_ident = scanned(v, Q_DIFF_NEW);
    return 0;
}

static struct span member(const cJSON *obj, const char *key)
{
    const char *s = akv_json_string(obj, key);
    struct span sp = {s, s ? strlen(s) : 0};

    return sp;
}

static void ref_tree(const cJSON *context, const char *key, struct ref *r)
{
    const cJSON *o = akv_json_object(context, key);

    r->present = o != NULL;
    r->app = member(o, "app");
    r->model = member(o, "model_name");
    r->pk = member(o, "pk");
    r->name = member(o, "name");
}

/* The same view from a parsed event (strings end at their first NUL, as
 * C strings do). */
static void view_tree(const cJSON *root, struct view *w)
{
    const cJSON *context = akv_json_object(root, "context");
    const cJSON *ident =
        akv_json_path(context, "diff", "identifier", "new_value", AKV_JSON_END);

    w->pk = member(root, "pk");
    w->action = member(root, "action");
    w->context = context != NULL;
    ref_tree(context, "model", &w->model);
    ref_tree(context, "token", &w->token);
    w->secret = akv_json_object(context, "secret") != NULL;
    w->diff_ident.p = cJSON_IsString(ident) ? ident->valuestring : NULL;
    w->diff_ident.n = w->diff_ident.p ? strlen(w->diff_ident.p) : 0;
}

/* --- the verdict */

/* The event's token reference, or NULL with the verdict given when it
 * has none that is ours. */
static const struct ref *token_ref(const struct akv_match_rules *rules,
                                   const struct view *w, struct akv_match *out)
{
    const struct ref *ref;
    char shown[64];

    if (!w->context) {
        verdict(out, AKV_MATCH_POISON, "%s event without a context object",
                out->action);
        return NULL;
    }
    ref = w->model.present ? &w->model : w->token.present ? &w->token : NULL;
    if (!ref) {
        /* secret_rotate of something that is not a token (context.secret
         * in newer authentik): not ours. */
        if (w->secret) {
            verdict(out, AKV_MATCH_SKIP, "%s of a non-token secret",
                    out->action);
        } else {
            verdict(out, AKV_MATCH_POISON,
                    "%s event without context.model or context.token",
                    out->action);
        }
        return NULL;
    }
    if (!ref->app.p || !ref->model.p) {
        verdict(out, AKV_MATCH_POISON,
                "%s event whose model reference lacks app or model_name",
                out->action);
        return NULL;
    }
    if (!listed(rules->apps, ref->app) || !listed(rules->models, ref->model)) {
        safe_copy(shown, sizeof(shown), ref->model.p, ref->model.n);
        verdict(out, AKV_MATCH_SKIP, "model %s not matched", shown);
        return NULL;
    }
    return ref;
}

/*
 * The token's pk and identifier from its reference. From here on the event
 * is about a token: anything unusable is poison, never a silent skip and
 * never a Vault path. Returns 0, or -1 with the verdict given.
 */
static int token_names(const struct ref *ref, const struct view *w,
                       struct akv_match *out)
{
    struct span ident;
    char shown[64];

    if (!ref->pk.p || pk_normalize(ref->pk.p, ref->pk.n, out->token_pk) < 0) {
        out->token_pk[0] = '\0';
        verdict(out, AKV_MATCH_POISON, "token reference without a UUID pk%s",
                NULL);
        return -1;
    }
    /* The identifier: name up to its first space ("deploy-bot
     * (expires=…)"), else the enterprise diff's identifier. */
    ident = ref->name;
    if (ident.p) {
        const char *sp = memchr(ident.p, ' ', ident.n);

        if (sp) {
            ident.n = (size_t)(sp - ident.p);
        }
    } else {
        ident = w->diff_ident;
    }
    if (!ident.p) {
        verdict(out, AKV_MATCH_POISON,
                "token reference without name or identifier%s", NULL);
        return -1;
    }
    if (ident.n > AKV_IDENTIFIER_MAX) {
        verdict(out, AKV_MATCH_POISON, "identifier longer than 255 bytes%s",
                NULL);
        return -1;
    }
    memcpy(out->identifier, ident.p, ident.n);
    out->identifier[ident.n] = '\0';
    if (!akv_identifier_valid(out->identifier)) {
        safe_copy(shown, sizeof(shown), out->identifier,
                  strlen(out->identifier));
        out->identifier[0] = '\0';
        verdict(out, AKV_MATCH_POISON, "identifier \"%s\" is not a slug",
                shown);
        return -1;
    }
    return 0;
}

static void decide(const struct akv_match_rules *rules, const struct view *w,
                   struct akv_match *out)
{
    const struct ref *ref;
    enum akv_match_kind kind;

    if (w->pk.p) {
        safe_copy(out->event_pk, sizeof(out->event_pk), w->pk.p, w->pk.n);
    }
    if (!w->action.p) {
        verdict(out, AKV_MATCH_SKIP, "no action%s", NULL);
        return;
    }
    safe_copy(out->action, sizeof(out->action), w->action.p, w->action.n);
    if (listed(rules->sync_actions, w->action)) {
        kind = AKV_MATCH_SYNC;
    } else if (listed(rules->delete_actions, w->action)) {
        kind = AKV_MATCH_DELETE;
    } else {
        verdict(out, AKV_MATCH_SKIP, "action %s not matched", out->action);
        return;
    }
    ref = token_ref(rules, w, out);
    if (ref && token_names(ref, w, out) == 0) {
        out->kind = kind;
    }
}

/* Bytes that are no JSON object: poison only if they look like a token
 * event. */
static void undecodable(const char *buf, size_t len, struct akv_match *out)
{
    out->undecodable = 1;
    if (akv_match_mentions_token(buf, len)) {
        verdict(out, AKV_MATCH_POISON,
                "undecodable event that mentions authentik_core and token%s",
                NULL);
    } else {
        verdict(out, AKV_MATCH_SKIP, "undecodable or not an object%s", NULL);
    }
}

void akv_match_event(const struct akv_match_rules *rules, const char *buf,
                     size_t len, struct akv_match *out)
{
    struct view w;

    memset(out, 0, sizeof(*out));
    memset(&w, 0, sizeof(w));
    if (view_scan(buf, len, &w) == 0) {
        decide(rules, &w, out);
        return;
    }
    akv_match_event_parsed(rules, buf, len, out);
}

void akv_match_event_parsed(const struct akv_match_rules *rules,
                            const char *buf, size_t len, struct akv_match *out)
{
    cJSON *root = cJSON_ParseWithLength(buf, len);
    struct view w;

    memset(out, 0, sizeof(*out));
    if (!cJSON_IsObject(root)) {
        undecodable(buf, len, out);
    } else {
        memset(&w, 0, sizeof(w));
        view_tree(root, &w);
        decide(rules, &w, out);
    }
    cJSON_Delete(root);
}
