/*
 * drift — classifying a token's Vault copy; the reconcile's visit list.
 */
#include "drift.h"

#include <stdlib.h>
#include <string.h>

/* Whether member \p name is the same in both (absent in both counts). */
static int same_member(const cJSON *a, const cJSON *b, const char *name)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(a, name);
    const cJSON *y = cJSON_GetObjectItemCaseSensitive(b, name);

    if (!x || !y) {
        return !x && !y;
    }
    return cJSON_Compare(x, y, 1);
}

enum akv_drift akv_drift_of(const cJSON *vault_data, const cJSON *doc)
{
    if (!cJSON_IsObject(vault_data)) {
        return AKV_DRIFT_MISSING;
    }
    if (!same_member(vault_data, doc, "key")) {
        return AKV_DRIFT_STALE_KEY;
    }
    if (!same_member(vault_data, doc, "intent")) {
        return AKV_DRIFT_INTENT;
    }
    return cJSON_Compare(vault_data, doc, 1) ? AKV_DRIFT_NONE
                                             : AKV_DRIFT_FIELDS;
}

const char *akv_drift_name(enum akv_drift d)
{
    static const char *const names[AKV_DRIFT_KINDS] = {
        "in_sync",       "missing", "stale_key", "intent_differs",
        "fields_differ", "orphan",  "excluded",
    };

    return (unsigned)d < AKV_DRIFT_KINDS ? names[d] : "?";
}

/* A token and its flag, sorted together. */
struct tagged {
    const char *identifier;
    int flag;
};

static int by_identifier(const void *a, const void *b)
{
    return strcmp(((const struct tagged *)a)->identifier,
                  ((const struct tagged *)b)->identifier);
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int sort_tokens(const char **tokens, int *mirrored, size_t n)
{
    struct tagged *t = malloc((n ? n : 1) * sizeof(*t));
    size_t i;

    if (!t) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        t[i].identifier = tokens[i];
        t[i].flag = mirrored[i];
    }
    qsort(t, n, sizeof(*t), by_identifier);
    for (i = 0; i < n; i++) {
        tokens[i] = t[i].identifier;
        mirrored[i] = t[i].flag;
    }
    free(t);
    return 0;
}

int akv_visit_plan(const char **tokens, int *mirrored, size_t ntokens,
                   const char **secrets, size_t nsecrets,
                   struct akv_visit_item *out, size_t *count)
{
    size_t i = 0;
    size_t j = 0;
    size_t n = 0;

    if (sort_tokens(tokens, mirrored, ntokens) < 0) {
        return -1;
    }
    qsort(secrets, nsecrets, sizeof(*secrets), by_string);
    while (i < ntokens || j < nsecrets) {
        int c = i == ntokens    ? 1
                : j == nsecrets ? -1
                                : strcmp(tokens[i], secrets[j]);

        if (c > 0) {
            out[n].identifier = secrets[j++];
            out[n].visit = AKV_VISIT_ORPHAN;
        } else {
            out[n].identifier = tokens[i];
            out[n].visit = mirrored[i] ? AKV_VISIT_SYNC : AKV_VISIT_EXCLUDED;
            i++;
            j += c == 0; /* the same identifier in both: one visit */
        }
        /* Duplicates in either list (a page boundary that moved while
         * listing) are visited once. */
        if (n == 0 || strcmp(out[n - 1].identifier, out[n].identifier) != 0) {
            n++;
        }
    }
    *count = n;
    return 0;
}
