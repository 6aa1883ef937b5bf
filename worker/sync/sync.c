/*
 * sync — authentik token → desired document → Vault check-and-set write.
 */
#include "sync.h"

#include "authentik.h"
#include "json.h"
#include "matcher.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

cJSON *akv_sync_provenance(const cJSON *detail, const char *event_pk,
                           const char *action)
{
    cJSON *meta = cJSON_CreateObject();
    const char *pk = akv_json_string(detail, "pk");
    char hex[33];
    char when[32];
    struct tm tm;
    time_t now = time(NULL);

    if (!pk || akv_token_pk_normalize(pk, hex) < 0) {
        snprintf(hex, sizeof(hex), "unknown");
    }
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    /* custom_metadata values must be non-empty */
    if (!meta || !cJSON_AddStringToObject(meta, "ak2vault_token_pk", hex) ||
        !cJSON_AddStringToObject(meta, "ak2vault_event_pk",
                                 event_pk && *event_pk ? event_pk
                                                       : "unknown") ||
        !cJSON_AddStringToObject(meta, "ak2vault_action",
                                 action && *action ? action : "unknown") ||
        !cJSON_AddStringToObject(meta, "ak2vault_synced_at", when)) {
        cJSON_Delete(meta);
        return NULL;
    }
    return meta;
}
