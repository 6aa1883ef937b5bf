/*
 * sync — authentik token → desired document → Vault check-and-set write.
 */
#include "sync.h"

#include "json.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct akv_syncer {
    const struct akv_settings *settings;
    struct akv_authentik *authentik;
    struct akv_vault *vault;
};

const char *akv_sync_result_name(enum akv_sync_result r)
{
    switch (r) {
    case AKV_SYNC_WRITTEN:
        return "written";
    case AKV_SYNC_UNCHANGED:
        return "unchanged";
    case AKV_SYNC_GONE:
        return "gone";
    case AKV_SYNC_FILTERED:
        return "filtered";
    }
    return "?";
}

struct akv_syncer *akv_syncer_new(const struct akv_settings *s, char *errstr,
                                  size_t errstr_size)
{
    struct akv_syncer *sy = calloc(1, sizeof(*sy));

    if (!sy) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    sy->settings = s;
    sy->authentik = akv_authentik_new(s, errstr, errstr_size);
    if (!sy->authentik) {
        goto fail;
    }
    sy->vault = akv_vault_new(s, errstr, errstr_size);
    if (!sy->vault) {
        goto fail;
    }
    return sy;

fail:
    akv_syncer_destroy(sy);
    return NULL;
}

void akv_syncer_destroy(struct akv_syncer *sy)
{
    if (!sy) {
        return;
    }
    akv_authentik_destroy(sy->authentik);
    akv_vault_destroy(sy->vault);
    free(sy);
}

cJSON *akv_sync_document(const struct akv_token *tok,
                         const struct akv_strlist *extra_fields)
{
    cJSON *doc = cJSON_CreateObject();
    const char *intent = akv_json_string(tok->detail, "intent");
    size_t i;

    if (!doc || !intent || !cJSON_AddStringToObject(doc, "key", tok->key) ||
        !cJSON_AddStringToObject(doc, "intent", intent)) {
        goto fail;
    }
    for (i = 0; i < extra_fields->n; i++) {
        const cJSON *v = akv_json_get(tok->detail, extra_fields->v[i]);
        cJSON *copy = v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull();

        if (!copy) {
            goto fail;
        }
        cJSON_AddItemToObject(doc, extra_fields->v[i], copy);
    }
    return doc;

fail:
    akv_json_wipe(doc);
    cJSON_Delete(doc);
    return NULL;
}

static int intent_wanted(const struct akv_settings *s, const char *intent)
{
    size_t i;

    for (i = 0; i < s->match_intents.n; i++) {
        if (strcmp(s->match_intents.v[i], intent) == 0) {
            return 1;
        }
    }
    return 0;
}

/*
 * Read, compare, write with cas = the version read. A CAS mismatch means
 * another writer (a second worker, a human) got in between: read again and
 * converge, a bounded number of times.
 */
static enum akv_class converge(struct akv_syncer *sy, const char *identifier,
                               const cJSON *doc, struct akv_sync_outcome *out,
                               char *errstr, size_t errstr_size)
{
    long long attempt;
    enum akv_class cls = AKV_CLASS_SUPERSEDED;

    for (attempt = 0; attempt < sy->settings->sync_cas_max_attempts;
         attempt++) {
        struct akv_vault_secret cur;
        long long version = 0;
        int same;

        cls = akv_vault_read(sy->vault, identifier, &cur, errstr, errstr_size);
        if (cls != AKV_CLASS_OK) {
            return cls;
        }
        same = cur.data && cJSON_Compare(cur.data, doc, 1);
        out->version = cur.version;
        akv_vault_secret_free(&cur);
        if (same) {
            out->result = AKV_SYNC_UNCHANGED;
            return AKV_CLASS_OK;
        }
        cls = akv_vault_write(sy->vault, identifier, doc, out->version,
                              &version, errstr, errstr_size);
        if (cls == AKV_CLASS_OK) {
            out->result = AKV_SYNC_WRITTEN;
            out->version = version;
            return AKV_CLASS_OK;
        }
        if (cls != AKV_CLASS_SUPERSEDED) {
            return cls;
        }
        akv_log_debug("sync", "token=%s cas=%lld superseded, re-reading",
                      identifier, out->version);
    }
    akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
             "check-and-set lost %lld times in a row",
             sy->settings->sync_cas_max_attempts);
    /* Someone keeps writing the path: back off and try again later. */
    return AKV_CLASS_TRANSIENT;
}

enum akv_class akv_sync_token(struct akv_syncer *sy, const char *identifier,
                              struct akv_sync_outcome *out, char *errstr,
                              size_t errstr_size)
{
    struct akv_token tok;
    cJSON *doc = NULL;
    enum akv_class cls;
    const char *intent;

    memset(out, 0, sizeof(*out));
    cls = akv_authentik_get_detail(sy->authentik, identifier, &tok, errstr,
                                   errstr_size);
    if (cls != AKV_CLASS_OK) {
        goto out;
    }
    intent = akv_json_string(tok.detail, "intent");
    snprintf(out->intent, sizeof(out->intent), "%s", intent);
    if (!intent_wanted(sy->settings, intent)) {
        out->result = AKV_SYNC_FILTERED;
        goto out;
    }
    cls = akv_authentik_get_key(sy->authentik, identifier, &tok, errstr,
                                errstr_size);
    if (cls != AKV_CLASS_OK) {
        goto out;
    }
    doc = akv_sync_document(&tok, &sy->settings->vault_extra_fields);
    if (!doc) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        cls = AKV_CLASS_TRANSIENT;
        goto out;
    }
    cls = converge(sy, identifier, doc, out, errstr, errstr_size);

out:
    /* A token deleted between the event and now: done, nothing to write. */
    if (cls == AKV_CLASS_GONE) {
        out->result = AKV_SYNC_GONE;
        cls = AKV_CLASS_OK;
    }
    if (doc) {
        akv_json_wipe(doc);
        cJSON_Delete(doc);
    }
    akv_token_free(&tok);
    return cls;
}
