/*
 * kv — the KV v2 engine under the mount: secrets with their versions and
 * metadata in a hash table, data/ (read, write with check-and-set, soft
 * delete), delete/, undelete/ and destroy/ of versions, metadata/ (read
 * with who changed what, write with custom_metadata checked as Vault
 * checks it, delete, LIST) and the answers for paths the engine has no
 * route for.
 */
#include "fv.h"

#include "clock.h"
#include "wipe.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MSG_NON_LISTING                                                        \
    "Non-listing operations on the root of a K/V v2 mount are not "            \
    "supported."

/* The fields the data/ and metadata/ paths declare (others draw the
 * framework's "unrecognized parameters" warning). */
static const char *const data_fields[] = {"path", "version", "options", "data",
                                          NULL};
static const char *const metadata_fields[] = {"path",
                                              "exclude_deleted",
                                              "cas_required",
                                              "max_versions",
                                              "delete_version_after",
                                              "custom_metadata",
                                              NULL};

/* The warning about query parameters \p known lacks, written to \p warn.
 * @returns it, or NULL when there is none. */
static const char *query_warning(const struct rq *rq, const char *const *known,
                                 struct akv_buf *warn)
{
    return fv_ignored_params(rq->query, known, warn) ? warn->data : NULL;
}

static struct kv_secret *secret_find(struct fake_vault *fv, const char *key)
{
    return (struct kv_secret *)fakehtab_find(&fv->secrets, key);
}

static struct kv_secret *secret_new(struct fake_vault *fv, const char *key)
{
    struct kv_secret *s = calloc(1, sizeof(*s));

    if (!s) {
        return NULL;
    }
    s->node.key = strdup(key);
    if (!s->node.key) {
        free(s);
        return NULL;
    }
    fakehtab_insert(&fv->secrets, &s->node);
    return s;
}

/* Looks \p key up with the lock taken. @returns the secret, the lock held;
 * or NULL, the lock released and the 404 set. */
static struct kv_secret *secret_locked(struct rq *rq, const char *key)
{
    struct kv_secret *s;

    pthread_mutex_lock(&rq->fv->kv_lock);
    s = secret_find(rq->fv, key);
    if (!s) {
        pthread_mutex_unlock(&rq->fv->kv_lock);
        fv_reply_error(rq->resp, 404, NULL);
    }
    return s;
}

/* Frees what a version owns. */
static void version_clear(struct kv_version *v)
{
    akv_wipe_free(v->data);
    free(v->created_by);
    free(v->deleted_by);
    memset(v, 0, sizeof(*v));
}

/* Replaces the Attribution text in *\p slot by \p attr (taken). */
static void set_attribution(char **slot, char *attr)
{
    free(*slot);
    *slot = attr;
}

static void secret_free(struct kv_secret *s)
{
    size_t i;

    if (!s) {
        return;
    }
    for (i = 0; i < s->nvers; i++) {
        version_clear(&s->vers[i]);
    }
    free(s->vers);
    free(s->custom);
    free(s->last_updated_by);
    free(s->node.key);
    free(s);
}

/* Frees a secret the table gave up (a fakehtab release function). */
void fv_secret_release(struct fakehtab_node *n)
{
    secret_free((struct kv_secret *)n);
}

static struct kv_version *secret_version(struct kv_secret *s, uint64_t v)
{
    if (v < s->first || v - s->first >= s->nvers) {
        return NULL;
    }
    return &s->vers[v - s->first];
}

/*
 * KeyMetadata.AddVersion: appends a version (taking \p data and
 * \p created_by) and prunes the oldest ones past max_versions.
 * @returns -1 on OOM (nothing changed, nothing taken).
 */
static int secret_add_version(struct kv_secret *s, char *data, int64_t now,
                              uint32_t mount_max, char *created_by)
{
    struct kv_version *v;
    uint32_t max;

    if (s->nvers == s->capvers) {
        size_t cap = s->capvers ? s->capvers * 2 : 4;
        struct kv_version *nv = realloc(s->vers, cap * sizeof(*nv));

        if (!nv) {
            return -1;
        }
        s->vers = nv;
        s->capvers = cap;
    }
    if (s->nvers == 0) {
        s->first = s->current + 1;
    }
    v = &s->vers[s->nvers++];
    memset(v, 0, sizeof(*v));
    v->data = data;
    v->created_by = created_by;
    v->created = now;
    if (s->delete_after > 0) {
        v->deleted = fv_ns_after(now, s->delete_after);
    }
    s->current++;
    s->updated = now;
    if (s->created == 0) {
        s->created = now;
    }
    if (s->max_versions != 0) {
        max = s->max_versions;
    } else if (mount_max != 0) {
        max = mount_max;
    } else {
        max = DEFAULT_MAX_VERSIONS;
    }
    if (s->nvers > max) {
        uint64_t last_to_delete = s->current - max;
        size_t drop = 0;

        while (drop < s->nvers && s->first + drop <= last_to_delete) {
            version_clear(&s->vers[drop]);
            drop++;
        }
        memmove(s->vers, s->vers + drop, (s->nvers - drop) * sizeof(*s->vers));
        s->nvers -= drop;
        s->first += drop;
        s->oldest = last_to_delete + 1;
    }
    return 0;
}

static int version_deleted(const struct kv_version *v, int64_t now)
{
    return v->deleted != 0 && v->deleted <= now;
}

/* The per-version metadata map of data reads and writes (sorted keys). */
static void sb_version_meta(struct akv_buf *b, const struct kv_secret *s,
                            const struct kv_version *v, uint64_t num)
{
    akv_buf_puts(b, "{\"created_time\":");
    fv_time(b, v->created);
    akv_buf_puts(b, ",\"custom_metadata\":");
    akv_buf_puts(b, s->custom ? s->custom : "null");
    akv_buf_puts(b, ",\"deletion_time\":");
    fv_time(b, v->deleted);
    akv_buf_printf(b, ",\"destroyed\":%s,\"version\":%" PRIu64 "}",
                   v->destroyed ? "true" : "false", num);
}

/* A data write as its body asks for it, read before the lock is taken. */
struct data_write {
    struct akv_buf text; /* the data map in Vault's encoding */
    struct akv_buf warn; /* the unrecognized-parameters warning, or "" */
    int has_cas;
    int64_t cas;
};

/* Reads the body of a data write. @returns 0, or -1 with the answer set. */
static int data_write_parse(struct rq *rq, struct data_write *w)
{
    const char *const *known = data_fields;
    const cJSON *data = NULL;
    const cJSON *options = NULL;
    const cJSON *cas_item;
    struct akv_buf err = TEXT_INIT;
    int has_data;
    int rc = -1;

    has_data = fv_field_map(rq->body, "data", &data, &err);
    if (has_data >= 0 &&
        fv_field_map(rq->body, "options", &options, &err) < 0) {
        has_data = -1;
    }
    if (has_data < 0) {
        fv_reply_error(rq->resp, 400, fv_text(&err));
        goto out;
    }
    if (!has_data) {
        fv_reply_error(rq->resp, 400, "no data provided");
        goto out;
    }
    cas_item = fv_obj_get(options, "cas");
    if (cas_item) {
        w->has_cas = 1;
        if (fv_weak_int(cas_item, "cas", &w->cas, NULL) < 0) {
            fv_reply_error(rq->resp, 400,
                           "error parsing check-and-set parameter");
            goto out;
        }
    }
    if (data) {
        fv_go_json(&w->text, data);
    } else {
        /* "data": null is stored as such and reads back as null */
        akv_buf_puts(&w->text, "null");
    }
    fv_ignored_params(rq->body, known, &w->warn);
    if (w->text.err != AKV_OK || w->warn.err != AKV_OK) {
        fv_reply_error(rq->resp, 500, "out of memory");
        goto out;
    }
    rc = 0;
out:
    akv_buf_free(&err);
    return rc;
}

/* Check-and-set, with the lock held: \p s is the secret or NULL.
 * @returns 0 when the write may go ahead, else -1 with the 400 set. */
static int data_write_cas(struct rq *rq, const struct kv_secret *s,
                          const struct data_write *w)
{
    struct fake_vault *fv = rq->fv;

    if (w->has_cas) {
        if ((uint64_t)w->cas != (s ? s->current : 0)) {
            STAT_INC(fv, cas_mismatch);
            fv_reply_error(rq->resp, 400,
                           "check-and-set parameter did not "
                           "match the current version");
            return -1;
        }
    } else if (fv->cfg.cas_required || (s && s->cas_required)) {
        fv_reply_error(rq->resp, 400,
                       "check-and-set parameter required for this call");
        return -1;
    }
    return 0;
}

/* POST/PUT {mount}/data/KEY */
static void kv_data_write(struct rq *rq, const char *key)
{
    struct fake_vault *fv = rq->fv;
    struct data_write w = {TEXT_INIT, TEXT_INIT, 0, 0};
    struct akv_buf b = TEXT_INIT;
    struct kv_secret *s;
    const char *warnings[1];
    int64_t now;
    char *stored;
    char *attr = NULL;
    char *created_by = NULL;

    if (data_write_parse(rq, &w) < 0) {
        goto out;
    }
    warnings[0] = w.warn.len ? w.warn.data : NULL;
    now = akv_wall_ns();
    pthread_mutex_lock(&fv->kv_lock);
    s = secret_find(fv, key);
    if (data_write_cas(rq, s, &w) < 0) {
        pthread_mutex_unlock(&fv->kv_lock);
        goto out;
    }
    /* the existence check makes a write to a new key "create" */
    attr = fv_attribution(rq, s ? "update" : "create");
    created_by = attr ? strdup(attr) : NULL;
    if (!s) {
        s = secret_new(fv, key);
    }
    stored = akv_buf_take(&w.text);
    if (!s || !stored || !created_by ||
        secret_add_version(s, stored, now, fv->cfg.max_versions, created_by) <
            0) {
        if (s && s->current == 0 && s->created == 0) {
            fakehtab_remove(&fv->secrets, key);
            secret_free(s);
        }
        pthread_mutex_unlock(&fv->kv_lock);
        akv_wipe_free(stored);
        free(attr);
        free(created_by);
        fv_reply_error(rq->resp, 500, "out of memory");
        goto out;
    }
    set_attribution(&s->last_updated_by, attr);
    STAT_INC(fv, kv_writes);
    fv_env_begin(&b);
    sb_version_meta(&b, s, secret_version(s, s->current), s->current);
    pthread_mutex_unlock(&fv->kv_lock);
    fv_env_end(&b, warnings, warnings[0] ? 1 : 0, NULL, "kv", 1);
    fv_reply_buf(rq->resp, 200, &b);
out:
    akv_buf_free(&w.text);
    akv_buf_free(&w.warn);
}

/* GET {mount}/data/KEY[?version=N] */
static void kv_data_read(struct rq *rq, const char *key)
{
    struct fake_vault *fv = rq->fv;
    const char *vq = fakehttp_arg(rq->http, "version");
    int64_t now = akv_wall_ns();
    struct kv_secret *s;
    struct kv_version *v;
    struct akv_buf b = TEXT_INIT;
    struct akv_buf warn = TEXT_INIT;
    const char *warnings[1];
    int64_t want = 0;
    uint64_t num;
    int gone;

    if (vq && fv_parse_go_int(vq, &want) != 0) {
        akv_buf_puts(&b, MSG_FIELD_VALIDATION);
        fv_field_error_prefix(&b, "version");
        akv_buf_puts(&b, "cannot parse '' as int: strconv.ParseInt: parsing ");
        fv_go_quote(&b, vq);
        akv_buf_puts(&b, ": invalid syntax");
        fv_reply_error(rq->resp, 400, fv_text(&b));
        akv_buf_free(&b);
        return;
    }
    s = secret_locked(rq, key);
    if (!s) {
        return;
    }
    num = want > 0 ? (uint64_t)want : s->current;
    v = secret_version(s, num);
    if (!v) {
        pthread_mutex_unlock(&fv->kv_lock);
        fv_reply_error(rq->resp, 404, NULL);
        return;
    }
    /* a deleted or destroyed version: RespondWithStatusCode, the metadata
     * in a raw 404 body */
    gone = version_deleted(v, now) || v->destroyed;
    fv_env_begin(&b);
    akv_buf_puts(&b, "{\"data\":");
    akv_buf_puts(&b, gone ? "null" : v->data);
    akv_buf_puts(&b, ",\"metadata\":");
    sb_version_meta(&b, s, v, num);
    pthread_mutex_unlock(&fv->kv_lock);
    akv_buf_puts(&b, "}");
    warnings[0] = gone ? NULL : query_warning(rq, data_fields, &warn);
    fv_env_end(&b, warnings, warnings[0] ? 1 : 0, NULL, gone ? "" : "kv",
               !gone);
    if (warn.err != AKV_OK) {
        b.err = AKV_ERR_NOMEM;
    }
    akv_buf_free(&warn);
    fv_reply_buf(rq->resp, gone ? 404 : 200, &b);
}

/* DELETE {mount}/data/KEY: soft-deletes the current version. */
static void kv_data_delete(struct rq *rq, const char *key)
{
    struct fake_vault *fv = rq->fv;
    int64_t now = akv_wall_ns();
    struct kv_secret *s;
    struct kv_version *v;
    char *attr = NULL;
    char *copy = NULL;
    int oom = 0;

    pthread_mutex_lock(&fv->kv_lock);
    s = secret_find(fv, key);
    v = s ? secret_version(s, s->current) : NULL;
    if (v && !v->destroyed && !version_deleted(v, now)) {
        attr = fv_attribution(rq, "delete");
        copy = attr ? strdup(attr) : NULL;
        if (copy) {
            v->deleted = now;
            set_attribution(&v->deleted_by, copy);
            set_attribution(&s->last_updated_by, attr);
        } else {
            free(attr);
            oom = 1;
        }
    }
    pthread_mutex_unlock(&fv->kv_lock);
    if (oom) {
        fv_reply_error(rq->resp, 500, "out of memory");
    } else {
        fv_reply_no_content(rq->resp);
    }
}

/* What POST {mount}/delete/, undelete/ and destroy/ do to a version. */
enum version_op { VOP_DELETE, VOP_UNDELETE, VOP_DESTROY };

/* Applies \p op to version \p num of \p s (pathDeleteWrite,
 * pathUndeleteWrite, pathDestroyWrite): a version the key does not have,
 * or a destroyed one, is skipped; delete skips a version already deleted.
 * \p attr is the Attribution of a deletion. @returns -1 on OOM. */
static int version_apply(struct kv_secret *s, int64_t num, enum version_op op,
                         const char *attr, int64_t now)
{
    struct kv_version *v = num >= 1 ? secret_version(s, (uint64_t)num) : NULL;
    char *copy;

    if (!v || v->destroyed) {
        return 0;
    }
    switch (op) {
    case VOP_DELETE:
        if (version_deleted(v, now)) {
            return 0;
        }
        copy = strdup(attr);
        if (!copy) {
            return -1;
        }
        v->deleted = now;
        set_attribution(&v->deleted_by, copy);
        break;
    case VOP_UNDELETE:
        /* delete_version_after starts again from now */
        v->deleted =
            s->delete_after > 0 ? fv_ns_after(now, s->delete_after) : 0;
        set_attribution(&v->deleted_by, NULL);
        break;
    case VOP_DESTROY:
        akv_wipe_free(v->data);
        v->data = NULL;
        v->destroyed = 1;
        break;
    }
    return 0;
}

/*
 * PUT/POST {mount}/delete/KEY, undelete/KEY and destroy/KEY
 * {"versions": [...]}: the versions (a TypeCommaIntSlice) soft-deleted,
 * restored, or their data removed for good. A key never written is no
 * error. Delete and undelete record who did it in the key's
 * last_updated_by (undelete under the operation "undelete"), destroy does
 * not.
 */
static void kv_versions(struct rq *rq, const char *key, enum version_op op)
{
    struct fake_vault *fv = rq->fv;
    struct akv_buf err = TEXT_INIT;
    cJSON *list = NULL;
    const cJSON *it;
    struct kv_secret *s;
    char *attr = NULL;
    int64_t now = akv_wall_ns();
    int oom = 0;

    if (rq->op != OP_WRITE) {
        fv_reply_error(rq->resp, 405, MSG_UNSUPPORTED_OP);
        return;
    }
    akv_buf_puts(&err, MSG_FIELD_VALIDATION);
    if (fv_field_comma_slice(rq->body, "versions", 1, &list, &err) < 0) {
        fv_reply_error(rq->resp, 400, fv_text(&err));
        goto out;
    }
    if (cJSON_GetArraySize(list) == 0) {
        fv_reply_error(rq->resp, 400,
                       op == VOP_DESTROY ? "no version number provided"
                                         : "No version number provided");
        goto out;
    }
    if (op != VOP_DESTROY) {
        attr = fv_attribution(rq, op == VOP_UNDELETE ? "undelete" : "update");
        if (!attr) {
            fv_reply_error(rq->resp, 500, "out of memory");
            goto out;
        }
    }
    pthread_mutex_lock(&fv->kv_lock);
    s = secret_find(fv, key);
    if (s) {
        cJSON_ArrayForEach(it, list)
        {
            if (!oom &&
                version_apply(s, (int64_t)it->valuedouble, op, attr, now) < 0) {
                oom = 1;
            }
        }
        if (attr) {
            set_attribution(&s->last_updated_by, attr);
            attr = NULL;
        }
    }
    pthread_mutex_unlock(&fv->kv_lock);
    if (oom) {
        fv_reply_error(rq->resp, 500, "out of memory");
    } else {
        fv_reply_no_content(rq->resp);
    }
out:
    free(attr);
    cJSON_Delete(list);
    akv_buf_free(&err);
}

struct vnum {
    uint64_t v;
    char s[24];
};

static int cmp_vnum(const void *a, const void *b)
{
    return strcmp(((const struct vnum *)a)->s, ((const struct vnum *)b)->s);
}

/* GET {mount}/metadata/KEY */
static void kv_metadata_read(struct rq *rq, const char *key)
{
    struct fake_vault *fv = rq->fv;
    struct kv_secret *s;
    struct vnum *order = NULL;
    struct akv_buf b = TEXT_INIT;
    struct akv_buf warn = TEXT_INIT;
    const char *warnings[1];
    char dva[48];
    size_t i;

    s = secret_locked(rq, key);
    if (!s) {
        return;
    }
    if (s->nvers > 0) {
        order = malloc(s->nvers * sizeof(*order));
        if (!order) {
            pthread_mutex_unlock(&fv->kv_lock);
            fv_reply_error(rq->resp, 500, "out of memory");
            return;
        }
        /* Go marshals the versions map with its keys sorted as strings */
        for (i = 0; i < s->nvers; i++) {
            order[i].v = s->first + i;
            snprintf(order[i].s, sizeof(order[i].s), "%" PRIu64, order[i].v);
        }
        qsort(order, s->nvers, sizeof(*order), cmp_vnum);
    }
    fv_fmt_duration(dva, sizeof(dva), s->delete_after);
    fv_env_begin(&b);
    akv_buf_printf(&b, "{\"cas_required\":%s,\"created_time\":",
                   s->cas_required ? "true" : "false");
    fv_time(&b, s->created);
    akv_buf_printf(&b, ",\"current_version\":%" PRIu64 ",\"custom_metadata\":",
                   s->current);
    akv_buf_puts(&b, s->custom ? s->custom : "null");
    akv_buf_printf(
        &b, ",\"delete_version_after\":\"%s\",\"last_updated_by\":", dva);
    akv_buf_puts(&b, s->last_updated_by ? s->last_updated_by : "null");
    akv_buf_printf(&b,
                   ",\"max_versions\":%" PRIu32 ",\"oldest_version\":%" PRIu64
                   ",\"updated_time\":",
                   s->max_versions, s->oldest);
    fv_time(&b, s->updated);
    akv_buf_puts(&b, ",\"versions\":{");
    for (i = 0; i < s->nvers; i++) {
        const struct kv_version *v = secret_version(s, order[i].v);

        akv_buf_printf(&b, "%s\"%s\":{\"created_by\":", i ? "," : "",
                       order[i].s);
        akv_buf_puts(&b, v->created_by ? v->created_by : "null");
        akv_buf_puts(&b, ",\"created_time\":");
        fv_time(&b, v->created);
        akv_buf_puts(&b, ",\"deleted_by\":");
        akv_buf_puts(&b, v->deleted_by ? v->deleted_by : "null");
        akv_buf_puts(&b, ",\"deletion_time\":");
        fv_time(&b, v->deleted);
        akv_buf_printf(&b, ",\"destroyed\":%s}",
                       v->destroyed ? "true" : "false");
    }
    pthread_mutex_unlock(&fv->kv_lock);
    free(order);
    akv_buf_puts(&b, "}}");
    warnings[0] = query_warning(rq, metadata_fields, &warn);
    fv_env_end(&b, warnings, warnings[0] ? 1 : 0, NULL, "kv", 1);
    if (warn.err != AKV_OK) {
        b.err = AKV_ERR_NOMEM;
    }
    akv_buf_free(&warn);
    fv_reply_buf(rq->resp, 200, &b);
}

/* The errors a check finds, spelled as Go's multierror does: "1 error
 * occurred:\n\t* e\n\n", "N errors occurred:\n\t* e1\n\t* e2\n\n". */
struct multierror {
    struct akv_buf list; /* "* e1\n\t* e2" */
    struct akv_buf one;  /* the error being written */
    size_t count;
};

/* Adds the error written in \p me->one to the list and empties it. */
static void multierror_add(struct multierror *me)
{
    akv_buf_puts(&me->list, me->count ? "\n\t* " : "* ");
    akv_buf_puts(&me->list, akv_buf_str(&me->one));
    if (me->one.err != AKV_OK) {
        me->list.err = AKV_ERR_NOMEM;
    }
    akv_buf_free(&me->one);
    me->count++;
}

/* Writes the whole text to \p out. */
static void multierror_text(const struct multierror *me, struct akv_buf *out)
{
    if (me->count == 1) {
        akv_buf_puts(out, "1 error occurred:\n\t");
    } else {
        akv_buf_printf(out, "%zu errors occurred:\n\t", me->count);
    }
    akv_buf_puts(out, akv_buf_str(&me->list));
    akv_buf_puts(out, "\n\n");
    if (me->list.err != AKV_OK) {
        out->err = AKV_ERR_NOMEM;
    }
}

static void free_strings(char **v, size_t n)
{
    size_t i;

    for (i = 0; v && i < n; i++) {
        free(v[i]);
    }
    free(v);
}

/* parseCustomMetadata: the \p n values weakly decoded to strings.
 * @returns them, or NULL with \p err set. */
static char **custom_metadata_values(const struct fv_member *m, size_t n,
                                     struct akv_buf *err)
{
    char **vals = calloc(n, sizeof(*vals));
    size_t i;

    if (!vals) {
        err->err = AKV_ERR_NOMEM;
        return NULL;
    }
    for (i = 0; i < n; i++) {
        struct akv_buf inner = TEXT_INIT;

        vals[i] = fv_weak_string(m[i].item, &inner);
        if (!vals[i]) {
            if (inner.len) {
                akv_buf_puts(err, "custom_metadata validation failed: ");
                akv_buf_puts(err, inner.data);
            } else {
                err->err = AKV_ERR_NOMEM;
            }
            akv_buf_free(&inner);
            free_strings(vals, n);
            return NULL;
        }
    }
    return vals;
}

/* validateCustomMetadata: what is wrong with the keys and values. */
static void custom_metadata_check(const struct fv_member *m, char *const *vals,
                                  size_t n, struct multierror *me)
{
    static const char failed[] = "custom_metadata validation failed: ";
    size_t i;

    if (n > 64) {
        akv_buf_printf(&me->one,
                       "%spayload must contain at most 64 keys, provided %zu",
                       failed, n);
        multierror_add(me);
        return;
    }
    for (i = 0; i < n; i++) {
        const char *k = m[i].item->string;
        size_t kl = strlen(k);
        size_t vl = strlen(vals[i]);

        if (kl == 0 || kl > 128) {
            akv_buf_printf(&me->one, "%slength of key ", failed);
            fv_go_quote(&me->one, k);
            akv_buf_printf(&me->one, " is %zu but must be 0 < len(key) <= 128",
                           kl);
            multierror_add(me);
        }
        if (vl == 0 || vl > 512) {
            akv_buf_printf(&me->one, "%slength of value for key ", failed);
            fv_go_quote(&me->one, k);
            akv_buf_printf(&me->one,
                           " is %zu but must be 0 < len(value) <= 512", vl);
            multierror_add(me);
        }
        if (!fv_printable(k)) {
            akv_buf_printf(&me->one, "%skey ", failed);
            fv_go_quote(&me->one, k);
            akv_buf_printf(&me->one, " (%s) contains unprintable characters",
                           k);
            multierror_add(me);
        }
        if (!fv_printable(vals[i])) {
            akv_buf_printf(&me->one, "%svalue for key ", failed);
            fv_go_quote(&me->one, k);
            akv_buf_puts(&me->one, " contains unprintable characters");
            multierror_add(me);
        }
    }
}

/* The map to store, in Vault's encoding. @returns heap text, NULL on OOM. */
static char *custom_metadata_json(const struct fv_member *m, char *const *vals,
                                  size_t n)
{
    struct akv_buf json = TEXT_INIT;
    size_t i;

    akv_buf_putc(&json, '{');
    for (i = 0; i < n; i++) {
        if (i > 0) {
            akv_buf_putc(&json, ',');
        }
        fv_json_str(&json, m[i].item->string);
        akv_buf_putc(&json, ':');
        fv_json_str(&json, vals[i]);
    }
    akv_buf_putc(&json, '}');
    return akv_buf_take(&json);
}

/*
 * Parses and validates custom_metadata (Vault's parseCustomMetadata and
 * validateCustomMetadata). @returns 0 with *out the JSON to store (NULL for
 * an empty map), or -1 with the error text in \p err.
 */
static int parse_custom_metadata(const cJSON *cm, char **out,
                                 struct akv_buf *err)
{
    struct multierror me = {TEXT_INIT, TEXT_INIT, 0};
    struct fv_member *m = NULL;
    char **vals = NULL;
    size_t n;
    int rc = -1;

    *out = NULL;
    if (!cm) {
        return 0;
    }
    n = fv_sorted_members(cm, &m);
    if (n == (size_t)-1) {
        err->err = AKV_ERR_NOMEM;
        return -1;
    }
    if (n == 0) {
        return 0;
    }
    vals = custom_metadata_values(m, n, err);
    if (!vals) {
        goto out;
    }
    custom_metadata_check(m, vals, n, &me);
    if (me.count > 0) {
        multierror_text(&me, err);
        goto out;
    }
    *out = custom_metadata_json(m, vals, n);
    if (!*out) {
        err->err = AKV_ERR_NOMEM;
        goto out;
    }
    rc = 0;
out:
    free_strings(vals, n);
    free(m);
    akv_buf_free(&me.list);
    akv_buf_free(&me.one);
    return rc;
}

/* The fields a metadata write sets, as its body gives them. */
struct meta_write {
    const cJSON *max_item; /* NULL: max_versions stays */
    const cJSON *cas_item; /* NULL: cas_required stays */
    int64_t max_versions;
    int cas_required;
    int has_dva; /* delete_version_after */
    int64_t dva;
    int has_cm;   /* custom_metadata */
    char *custom; /* custom_metadata to store; NULL for none */
};

/* Reads the fields, each checked as the framework does before the
 * handler, then custom_metadata as the handler does.
 * @returns 1 when there is something to write, 0 when the body sets
 *          nothing, -1 with the error answer set. */
static int meta_write_parse(struct rq *rq, struct meta_write *w)
{
    const cJSON *cm = NULL;
    struct akv_buf err = TEXT_INIT;
    int rc = -1;

    w->max_item = fv_obj_get(rq->body, "max_versions");
    w->cas_item = fv_obj_get(rq->body, "cas_required");
    if ((w->max_item && fv_weak_int(w->max_item, "max_versions",
                                    &w->max_versions, &err) < 0) ||
        (w->cas_item && fv_weak_bool(w->cas_item, "cas_required",
                                     &w->cas_required, &err) < 0)) {
        fv_reply_error(rq->resp, 400, fv_text(&err));
        goto out;
    }
    w->has_dva =
        fv_field_duration(rq->body, "delete_version_after", &w->dva, &err);
    w->has_cm = w->has_dva < 0
                    ? -1
                    : fv_field_map(rq->body, "custom_metadata", &cm, &err);
    if (w->has_dva < 0 || w->has_cm < 0) {
        fv_reply_error(rq->resp, 400, fv_text(&err));
        goto out;
    }
    if (!w->max_item && !w->cas_item && !w->has_dva && !w->has_cm) {
        rc = 0;
        goto out;
    }
    if (w->has_cm && parse_custom_metadata(cm, &w->custom, &err) < 0) {
        fv_reply_error(rq->resp, err.err != AKV_OK ? 500 : 400, fv_text(&err));
        goto out;
    }
    rc = 1;
out:
    akv_buf_free(&err);
    return rc;
}

/* Sets the fields of \p w on \p key, which is created if need be.
 * @returns 0, or -1 when out of memory. */
static int meta_write_apply(struct fake_vault *fv, const char *key,
                            struct meta_write *w)
{
    struct kv_secret *s;

    pthread_mutex_lock(&fv->kv_lock);
    s = secret_find(fv, key);
    if (!s) {
        s = secret_new(fv, key);
        if (!s) {
            pthread_mutex_unlock(&fv->kv_lock);
            return -1;
        }
        s->created = akv_wall_ns();
        s->updated = s->created;
    }
    if (w->max_item) {
        s->max_versions = (uint32_t)w->max_versions;
    }
    if (w->cas_item) {
        s->cas_required = w->cas_required;
    }
    if (w->has_dva) {
        s->delete_after = w->dva;
    }
    if (w->has_cm) {
        free(s->custom);
        s->custom = w->custom;
        w->custom = NULL;
    }
    pthread_mutex_unlock(&fv->kv_lock);
    return 0;
}

/* POST/PUT {mount}/metadata/KEY */
static void kv_metadata_write(struct rq *rq, const char *key)
{
    const char *const *known = metadata_fields;
    static const char cas_warning[] =
        "\"cas_required\" set to false, but is mandated by backend config. "
        "This value will be ignored.";
    struct fake_vault *fv = rq->fv;
    struct meta_write w;
    struct akv_buf ignw = TEXT_INIT;
    struct akv_buf b = TEXT_INIT;
    const char *warnings[2];
    size_t nwarn = 0;
    int rc;

    memset(&w, 0, sizeof(w));
    rc = meta_write_parse(rq, &w);
    if (rc == 0) {
        fv_reply_no_content(rq->resp);
    }
    if (rc <= 0) {
        goto out;
    }
    if (w.cas_item && !w.cas_required && fv->cfg.cas_required) {
        warnings[nwarn++] = cas_warning;
    }
    if (meta_write_apply(fv, key, &w) < 0) {
        fv_reply_error(rq->resp, 500, "out of memory");
        goto out;
    }
    if (nwarn == 0) {
        fv_reply_no_content(rq->resp);
        goto out;
    }
    if (fv_ignored_params(rq->body, known, &ignw)) {
        warnings[nwarn++] = ignw.data;
    }
    fv_env_begin(&b);
    akv_buf_puts(&b, "null");
    fv_env_end(&b, warnings, nwarn, NULL, "kv", 1);
    if (ignw.err != AKV_OK) {
        b.err = AKV_ERR_NOMEM;
    }
    fv_reply_buf(rq->resp, 200, &b);
out:
    free(w.custom);
    akv_buf_free(&ignw);
}

/* DELETE {mount}/metadata/KEY: every version and the metadata. */
static void kv_metadata_delete(struct rq *rq, const char *key)
{
    struct fake_vault *fv = rq->fv;
    struct fakehtab_node *n;

    pthread_mutex_lock(&fv->kv_lock);
    n = fakehtab_remove(&fv->secrets, key);
    pthread_mutex_unlock(&fv->kv_lock);
    secret_free((struct kv_secret *)n);
    fv_reply_no_content(rq->resp);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* LIST {mount}/metadata/PREFIX/: the keys and "dirs/" one level down. */
static void kv_metadata_list(struct rq *rq, const char *prefix)
{
    struct fake_vault *fv = rq->fv;
    size_t plen = strlen(prefix);
    char **keys = NULL;
    size_t n = 0;
    size_t cap = 0;
    size_t i;
    size_t k = 0;
    int oom = 0;
    int exclude_deleted = 0;
    const cJSON *ed = fv_obj_get(rq->query, "exclude_deleted");
    struct akv_buf b = TEXT_INIT;
    struct akv_buf warn = TEXT_INIT;
    const char *warnings[1];

    if (ed) {
        akv_buf_puts(&warn, MSG_FIELD_VALIDATION);
        if (fv_weak_bool(ed, "exclude_deleted", &exclude_deleted, &warn) < 0) {
            fv_reply_error(rq->resp, 400, fv_text(&warn));
            akv_buf_free(&warn);
            return;
        }
        akv_buf_free(&warn);
    }
    pthread_mutex_lock(&fv->kv_lock);
    for (i = 0; i < fv->secrets.nb && !oom; i++) {
        struct fakehtab_node *h;

        for (h = fv->secrets.b[i]; h && !oom; h = h->next) {
            const char *rest;
            const char *slash;

            if (strncmp(h->key, prefix, plen) != 0 || h->key[plen] == '\0') {
                continue;
            }
            rest = h->key + plen;
            slash = strchr(rest, '/');
            if (!slash && exclude_deleted) {
                /* a key whose current version has a deletion_time, even
                 * one still to come */
                const struct kv_secret *s = (const struct kv_secret *)h;
                const struct kv_version *cur =
                    secret_version((struct kv_secret *)s, s->current);

                if (cur && cur->deleted != 0) {
                    continue;
                }
            }
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 64;
                char **nk = realloc(keys, nc * sizeof(*nk));

                if (!nk) {
                    oom = 1;
                    break;
                }
                keys = nk;
                cap = nc;
            }
            keys[n] = slash ? strndup(rest, (size_t)(slash - rest) + 1)
                            : strdup(rest);
            if (!keys[n]) {
                oom = 1;
                break;
            }
            n++;
        }
    }
    pthread_mutex_unlock(&fv->kv_lock);
    if (oom) {
        fv_reply_error(rq->resp, 500, "out of memory");
        goto out;
    }
    if (n == 0) {
        fv_reply_error(rq->resp, 404, NULL);
        goto out;
    }
    qsort(keys, n, sizeof(*keys), cmp_str);
    fv_env_begin(&b);
    akv_buf_puts(&b, "{\"keys\":[");
    for (i = 0; i < n; i++) {
        if (i > 0 && strcmp(keys[i], keys[i - 1]) == 0) {
            continue;
        }
        if (k++ > 0) {
            akv_buf_putc(&b, ',');
        }
        fv_json_str(&b, keys[i]);
    }
    akv_buf_puts(&b, "]}");
    warnings[0] = query_warning(rq, metadata_fields, &warn);
    fv_env_end(&b, warnings, warnings[0] ? 1 : 0, NULL, "kv", 1);
    if (warn.err != AKV_OK) {
        b.err = AKV_ERR_NOMEM;
    }
    akv_buf_free(&warn);
    fv_reply_buf(rq->resp, 200, &b);
out:
    for (i = 0; i < n; i++) {
        free(keys[i]);
    }
    free(keys);
}

/* logical.RespondWithStatusCode with only a warning: a raw 404 body. */
static void reply_warning_404(struct fakehttp_response *resp,
                              const char *warning)
{
    const char *warnings[1] = {warning};
    struct akv_buf b = TEXT_INIT;

    fv_env_begin(&b);
    akv_buf_puts(&b, "null");
    fv_env_end(&b, warnings, 1, NULL, "", 0);
    fv_reply_buf(resp, 404, &b);
}

/* pathInvalid: what the KV backend says about paths it has no route for. */
static void kv_invalid_path(struct rq *rq, const char *rest)
{
    static const char *const roots[] = {"metadata", "data", "delete",
                                        "undelete", "destroy"};
    const char *sub = "get";
    char msg[256];
    size_t i;

    if (rq->op == OP_OPTIONS) {
        /* no operation: the router's own refusal */
        fv_reply_error(rq->resp, 405, MSG_UNSUPPORTED_OP);
        return;
    }
    for (i = 0; i < sizeof(roots) / sizeof(roots[0]); i++) {
        if (strcmp(rest, roots[i]) == 0) {
            reply_warning_404(rq->resp, MSG_NON_LISTING);
            return;
        }
    }
    switch (rq->op) {
    case OP_WRITE:
        sub = "put";
        break;
    case OP_PATCH:
        sub = "patch";
        break;
    case OP_LIST:
        sub = "list";
        break;
    case OP_DELETE:
        sub = "delete";
        break;
    case OP_READ:
    case OP_OPTIONS:
        sub = "get";
        break;
    }
    snprintf(msg, sizeof(msg),
             "Invalid path for a versioned K/V secrets engine. See the API "
             "docs for the appropriate API endpoints to use. If using the "
             "Vault CLI, use 'vault kv %s' for this operation.",
             sub);
    reply_warning_404(rq->resp, msg);
}

/* What data/KEY and metadata/KEY do, by operation; NULL: not supported. */
typedef void(kv_handler)(struct rq *rq, const char *key);

static kv_handler *const data_ops[] = {
    [OP_READ] = kv_data_read,
    [OP_WRITE] = kv_data_write,
    [OP_DELETE] = kv_data_delete,
    [OP_LIST] = NULL,
    [OP_PATCH] = NULL,
    [OP_OPTIONS] = NULL,
};

static kv_handler *const metadata_ops[] = {
    [OP_READ] = kv_metadata_read,
    [OP_WRITE] = kv_metadata_write,
    [OP_DELETE] = kv_metadata_delete,
    [OP_LIST] = kv_metadata_list,
    [OP_PATCH] = NULL,
    [OP_OPTIONS] = NULL,
};

static void kv_dispatch(struct rq *rq, kv_handler *const *ops, const char *key)
{
    if (ops[rq->op]) {
        ops[rq->op](rq, key);
    } else {
        fv_reply_error(rq->resp, 405, MSG_UNSUPPORTED_OP);
    }
}

/* Routes a request below the KV mount; \p rest is the path after it. */
void fv_kv_route(struct rq *rq, const char *rest)
{
    if (strncmp(rest, "data/", 5) == 0 && rest[5] != '\0' &&
        rest[strlen(rest) - 1] != '/') {
        kv_dispatch(rq, data_ops, rest + 5);
    } else if (strncmp(rest, "metadata/", 9) == 0) {
        kv_dispatch(rq, metadata_ops, rest + 9);
    } else if (strncmp(rest, "destroy/", 8) == 0 && rest[8] != '\0') {
        kv_versions(rq, rest + 8, VOP_DESTROY);
    } else if (strncmp(rest, "delete/", 7) == 0 && rest[7] != '\0') {
        kv_versions(rq, rest + 7, VOP_DELETE);
    } else if (strncmp(rest, "undelete/", 9) == 0 && rest[9] != '\0') {
        kv_versions(rq, rest + 9, VOP_UNDELETE);
    } else {
        kv_invalid_path(rq, rest);
    }
}

/* @returns the path below the KV mount, or NULL when outside it. */
const char *fv_kv_rest(const struct fake_vault *fv, const char *vpath)
{
    size_t ml = strlen(fv->cfg.kv_mount);

    if (strncmp(vpath, fv->cfg.kv_mount, ml) != 0) {
        return NULL;
    }
    if (vpath[ml] == '/') {
        return vpath + ml + 1;
    }
    return vpath[ml] == '\0' ? vpath + ml : NULL;
}
