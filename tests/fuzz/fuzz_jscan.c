/*
 * fuzz_jscan — whenever akv_jscan() answers, cJSON accepts the same bytes
 * as an object and its lookups find exactly what the scan reported (type,
 * and the characters of a string), the way tests/unit/test_jscan.c checks
 * generated documents. The spans it reports lie inside the input and are
 * delimited as the type says.
 */
#include "fuzzutil.h"

#include "jscan.h"
#include "json.h"

static const struct akv_jscan_query queries[] = {
    {"pk", AKV_JSCAN_ROOT},     /* 0 */
    {"action", AKV_JSCAN_ROOT}, /* 1 */
    {"context", AKV_JSCAN_ROOT},
    {"model", 2},
    {"app", 3},
    {"name", 3}, /* 5 */
    {"diff", 2},
    {"identifier", 6},
    {"new_value", 7},
    {"x", AKV_JSCAN_ROOT},
    {"token", 2}, /* 10 */
    {"model_name", 10},
    {"", AKV_JSCAN_ROOT},
    {"pk", 0}, /* a member of a string: always absent */
    {"action", 2},
};
#define NQ ((int)(sizeof(queries) / sizeof(queries[0])))

/* What cJSON's lookups find for query \p i. */
static const cJSON *lookup(const cJSON *root, int i)
{
    const cJSON *parent = queries[i].parent == AKV_JSCAN_ROOT
                              ? root
                              : lookup(root, queries[i].parent);

    return akv_json_get(parent, queries[i].key);
}

static void check_span(int i, const struct akv_jscan_value *v, const char *buf,
                       size_t len)
{
    if (v->type != AKV_JSCAN_STRING && v->type != AKV_JSCAN_OBJECT) {
        return;
    }
    FUZZ_CHECK(v->p >= buf && v->n <= len && (size_t)(v->p - buf) <= len - v->n,
               "query %s: span outside the input", queries[i].key);
    if (v->type == AKV_JSCAN_STRING) {
        FUZZ_CHECK(v->p > buf && v->p[-1] == '"' &&
                       (size_t)(v->p - buf) + v->n < len && v->p[v->n] == '"',
                   "query %s: string span not between quotes", queries[i].key);
    } else {
        FUZZ_CHECK(v->n >= 2 && v->p[0] == '{' && v->p[v->n - 1] == '}',
                   "query %s: object span not from { to }", queries[i].key);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    struct akv_jscan_value v[NQ];
    cJSON *root;
    int i;

    if (akv_jscan(buf, size, queries, NQ, v) != 0) {
        return 0; /* the caller parses with cJSON: nothing claimed */
    }
    root = cJSON_ParseWithLength(buf, size);
    FUZZ_CHECK(cJSON_IsObject(root),
               "jscan answered for bytes cJSON does not take as an object");
    for (i = 0; i < NQ; i++) {
        const cJSON *item = lookup(root, i);
        enum akv_jscan_type want = !item                  ? AKV_JSCAN_ABSENT
                                   : cJSON_IsString(item) ? AKV_JSCAN_STRING
                                   : cJSON_IsObject(item) ? AKV_JSCAN_OBJECT
                                                          : AKV_JSCAN_OTHER;

        FUZZ_CHECK(v[i].type == want, "query %s: jscan type %d, cJSON %d",
                   queries[i].key, (int)v[i].type, (int)want);
        check_span(i, &v[i], buf, size);
        if (want == AKV_JSCAN_STRING) {
            FUZZ_CHECK(strlen(item->valuestring) == v[i].n &&
                           memcmp(item->valuestring, v[i].p, v[i].n) == 0,
                       "query %s: jscan \"%.*s\", cJSON \"%s\"", queries[i].key,
                       (int)v[i].n, v[i].p, item->valuestring);
        }
    }
    cJSON_Delete(root);
    return 0;
}
