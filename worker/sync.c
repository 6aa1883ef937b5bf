/*
 * sync — authentik token → desired document → Vault check-and-set write.
 */
#include "sync.h"

#include "cache.h"
#include "json.h"
#include "log.h"
#include "matcher.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct akv_syncer {
    const struct akv_settings *settings;
    struct akv_authentik *authentik;
    struct akv_vault *vault;
    struct akv_cache *cache;
    int can_login; /* the Vault auth method can obtain new tokens */
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
    case AKV_SYNC_DELETED:
        return "deleted";
    case AKV_SYNC_FILTERED:
        return "filtered";
    }
    return "?";
}

struct akv_syncer *akv_syncer_new(const struct akv_settings *s, char *errstr,
                                  size_t errstr_size)
{
    struct akv_syncer *sy = calloc(1, sizeof(*sy));
    char lerr[512];
    enum akv_class cls;

    if (!sy) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        return NULL;
    }
    sy->settings = s;
    sy->can_login = strcmp(s->vault_auth_method, "token") != 0;
    sy->authentik = akv_authentik_new(s, errstr, errstr_size);
    if (!sy->authentik) {
        goto fail;
    }
    sy->vault = akv_vault_new(s, errstr, errstr_size);
    if (!sy->vault) {
        goto fail;
    }
    sy->cache = akv_cache_new((size_t)s->sync_cache_size);
    if (!sy->cache) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (s->vault_tls_skip_verify) {
        akv_log_warn("vault", "TLS certificate verification is OFF "
                              "(vault.tls.skip_verify): anyone on the path "
                              "can read the keys written to Vault");
    }
    if (s->authentik_tls_skip_verify) {
        akv_log_warn("authentik", "TLS certificate verification is OFF "
                                  "(authentik.tls.skip_verify)");
    }
    cls = akv_vault_login(sy->vault, lerr, sizeof(lerr));
    if (cls != AKV_CLASS_OK) {
        akv_log_error("vault", "no usable token yet (%s): %s",
                      akv_class_name(cls), lerr);
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
    akv_cache_destroy(sy->cache);
    free(sy);
}

void akv_syncer_tick(struct akv_syncer *sy)
{
    char errstr[512];
    enum akv_class cls = akv_vault_tick(sy->vault, errstr, sizeof(errstr));

    if (cls != AKV_CLASS_OK) {
        akv_log_warn("vault", "token upkeep failed (%s): %s",
                     akv_class_name(cls), errstr);
    }
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

enum akv_class akv_sync_converge(const struct akv_cas_ops *ops, void *ctx,
                                 const char *identifier, const cJSON *doc,
                                 long long max_attempts,
                                 struct akv_sync_outcome *out, char *errstr,
                                 size_t errstr_size)
{
    long long attempt;
    enum akv_class cls;

    for (attempt = 0; attempt < max_attempts; attempt++) {
        struct akv_vault_secret cur;
        long long version = 0;
        int same;

        cls = ops->read(ctx, identifier, &cur, errstr, errstr_size);
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
        cls = ops->write(ctx, identifier, doc, out->version, &version, errstr,
                         errstr_size);
        if (cls == AKV_CLASS_OK) {
            out->result = AKV_SYNC_WRITTEN;
            out->version = version;
            return AKV_CLASS_OK;
        }
        if (cls != AKV_CLASS_SUPERSEDED) {
            return cls;
        }
        /* Another writer (a second worker, a person) got in between, or
         * our own earlier write landed but its answer was lost: the next
         * read tells which. */
        akv_log_debug("sync", "token=%s cas=%lld superseded, re-reading",
                      identifier, out->version);
    }
    akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
             "check-and-set lost %lld times in a row", max_attempts);
    return AKV_CLASS_TRANSIENT;
}

static enum akv_class vault_read_op(void *ctx, const char *identifier,
                                    struct akv_vault_secret *out, char *errstr,
                                    size_t errstr_size)
{
    return akv_vault_read(ctx, identifier, out, errstr, errstr_size);
}

static enum akv_class vault_write_op(void *ctx, const char *identifier,
                                     const cJSON *data, long long cas,
                                     long long *version, char *errstr,
                                     size_t errstr_size)
{
    return akv_vault_write(ctx, identifier, data, cas, version, errstr,
                           errstr_size);
}

static const struct akv_cas_ops vault_ops = {vault_read_op, vault_write_op};

/* The token is gone from authentik: apply vault.on_delete. */
static enum akv_class gone(struct akv_syncer *sy,
                           const struct akv_sync_request *rq,
                           struct akv_sync_outcome *out, char *errstr,
                           size_t errstr_size)
{
    const char *policy = sy->settings->vault_on_delete;
    enum akv_class cls;

    akv_cache_forget(sy->cache, rq->identifier);
    if (strcmp(policy, "keep") == 0) {
        out->result = AKV_SYNC_GONE;
        return AKV_CLASS_OK;
    }
    cls = akv_vault_delete(sy->vault, rq->identifier,
                           strcmp(policy, "purge") == 0, errstr, errstr_size);
    if (cls == AKV_CLASS_OK) {
        out->result = AKV_SYNC_DELETED;
    }
    return cls;
}

/* The token pk as authentik reports it, normalised; "" if odd. */
static void detail_pk(const cJSON *detail, char out[33])
{
    const char *pk = akv_json_string(detail, "pk");

    if (!pk || akv_token_pk_normalize(pk, out) < 0) {
        out[0] = '\0';
    }
}

/*
 * Provenance in custom_metadata: which token, which event, when. Only
 * after a write (unchanged events cost nothing); a failure here is logged
 * and does not undo the finished sync.
 */
static void provenance(struct akv_syncer *sy, const struct akv_sync_request *rq,
                       const cJSON *detail)
{
    cJSON *meta = cJSON_CreateObject();
    char pk[33];
    char when[32];
    char errstr[512];
    struct tm tm;
    time_t now = time(NULL);
    enum akv_class cls;

    detail_pk(detail, pk);
    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (!meta ||
        !cJSON_AddStringToObject(meta, "ak2vault_token_pk",
                                 pk[0] ? pk : "unknown") ||
        !cJSON_AddStringToObject(meta, "ak2vault_event_pk",
                                 rq->event_pk[0] ? rq->event_pk : "unknown") ||
        !cJSON_AddStringToObject(meta, "ak2vault_action",
                                 rq->action[0] ? rq->action : "unknown") ||
        !cJSON_AddStringToObject(meta, "ak2vault_synced_at", when)) {
        cJSON_Delete(meta);
        return;
    }
    cls = akv_vault_write_metadata(sy->vault, rq->identifier, meta, errstr,
                                   sizeof(errstr));
    if (cls != AKV_CLASS_OK) {
        akv_log_warn("sync", "token=%s provenance not recorded (%s): %s",
                     rq->identifier, akv_class_name(cls), errstr);
    }
    cJSON_Delete(meta);
}

/* The keyed hash of the document, computed on its canonical text. */
static int doc_hash(struct akv_syncer *sy, const cJSON *doc, uint64_t *hash)
{
    char *text = akv_json_print(doc);

    if (!text) {
        return -1;
    }
    *hash = akv_cache_hash(sy->cache, text, strlen(text));
    akv_json_free_string(text);
    return 0;
}

enum akv_class akv_sync_token(struct akv_syncer *sy,
                              const struct akv_sync_request *rq,
                              struct akv_sync_outcome *out, char *errstr,
                              size_t errstr_size)
{
    struct akv_token tok;
    cJSON *doc = NULL;
    enum akv_class cls;
    const char *intent;
    uint64_t hash = 0;
    int hashed = 0;
    int vault_failed = 0;

    memset(out, 0, sizeof(*out));
    cls = akv_authentik_get_detail(sy->authentik, rq->identifier, &tok, errstr,
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
    cls = akv_authentik_get_key(sy->authentik, rq->identifier, &tok, errstr,
                                errstr_size);
    if (cls != AKV_CLASS_OK) {
        goto out;
    }
    doc = akv_sync_document(&tok, &sy->settings->vault_extra_fields);
    if (!doc || doc_hash(sy, doc, &hash) < 0) {
        akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        cls = AKV_CLASS_TRANSIENT;
        goto out;
    }
    hashed = 1;
    if (akv_cache_lookup(sy->cache, rq->identifier, hash, &out->version)) {
        out->result = AKV_SYNC_UNCHANGED;
        out->cached = 1;
        goto out;
    }
    vault_failed = 1;
    cls = akv_sync_converge(&vault_ops, sy->vault, rq->identifier, doc,
                            sy->settings->sync_cas_max_attempts, out, errstr,
                            errstr_size);
    if (cls == AKV_CLASS_OK) {
        vault_failed = 0;
        akv_cache_store(sy->cache, rq->identifier, hash, out->version);
        if (out->result == AKV_SYNC_WRITTEN) {
            provenance(sy, rq, tok.detail);
        }
    }

out:
    if (cls == AKV_CLASS_GONE) {
        /* Deleted between the event and now, or a model_deleted event:
         * authentik's 404 is the only proof the token is gone. */
        vault_failed = 1;
        cls = gone(sy, rq, out, errstr, errstr_size);
        vault_failed = cls != AKV_CLASS_OK;
    }
    if (cls != AKV_CLASS_OK) {
        if (hashed) {
            akv_cache_forget(sy->cache, rq->identifier);
        }
        snprintf(out->retry_after, sizeof(out->retry_after), "%s",
                 vault_failed ? akv_vault_retry_after(sy->vault)
                              : akv_authentik_retry_after(sy->authentik));
        /* With a fixed token, "invalid token" needs a person. */
        if (cls == AKV_CLASS_REAUTH) {
            cls = sy->can_login ? AKV_CLASS_TRANSIENT : AKV_CLASS_CONFIG;
        }
    }
    if (doc) {
        akv_json_wipe(doc);
        cJSON_Delete(doc);
    }
    akv_token_free(&tok);
    return cls;
}
