/*
 * json — typed lookups on cJSON trees.
 */
#include "json.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

const cJSON *akv_json_get(const cJSON *obj, const char *key)
{
    if (!cJSON_IsObject(obj)) {
        return NULL;
    }
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

const cJSON *akv_json_path(const cJSON *root, ...)
{
    va_list ap;
    const char *key;
    const cJSON *cur = root;

    va_start(ap, root);
    for (key = va_arg(ap, const char *); key && cur;
         key = va_arg(ap, const char *)) {
        cur = akv_json_get(cur, key);
    }
    va_end(ap);
    return cur;
}

const char *akv_json_string(const cJSON *obj, const char *key)
{
    const cJSON *item = akv_json_get(obj, key);

    return cJSON_IsString(item) ? item->valuestring : NULL;
}

const cJSON *akv_json_object(const cJSON *obj, const char *key)
{
    const cJSON *item = akv_json_get(obj, key);

    return cJSON_IsObject(item) ? item : NULL;
}

int akv_json_int(const cJSON *obj, const char *key, long long *out)
{
    const cJSON *item = akv_json_get(obj, key);
    double v;

    if (!cJSON_IsNumber(item)) {
        return -1;
    }
    v = item->valuedouble;
    if (v != floor(v) || v < -9007199254740992.0 || v > 9007199254740992.0) {
        return -1;
    }
    *out = (long long)v;
    return 0;
}

int akv_json_bool(const cJSON *obj, const char *key, int *out)
{
    const cJSON *item = akv_json_get(obj, key);

    if (!cJSON_IsBool(item)) {
        return -1;
    }
    *out = cJSON_IsTrue(item) ? 1 : 0;
    return 0;
}

char *akv_json_print(const cJSON *item)
{
    return cJSON_PrintUnformatted(item);
}

int akv_json_write_line(FILE *out, cJSON *root)
{
    char *text = cJSON_PrintUnformatted(root);

    cJSON_Delete(root);
    if (!text) {
        return -1;
    }
    fprintf(out, "%s\n", text);
    cJSON_free(text);
    return 0;
}

void akv_json_free_string(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        cJSON_free(s);
    }
}

void akv_json_wipe(cJSON *item)
{
    cJSON *child;

    if (!item) {
        return;
    }
    if (cJSON_IsString(item) && item->valuestring) {
        explicit_bzero(item->valuestring, strlen(item->valuestring));
    }
    for (child = item->child; child; child = child->next) {
        akv_json_wipe(child);
    }
}

int akv_json_has_nul(const char *text, size_t len)
{
    size_t i;
    size_t k;

    for (i = 0; i < len; i++) {
        if (text[i] == '\0') {
            return 1;
        }
        if (text[i] != '\\' || i + 1 >= len) {
            continue;
        }
        i++; /* the escaped character is no backslash of its own */
        if (text[i] != 'u') {
            continue;
        }
        if (i + 4 >= len) {
            return 1; /* cut short: cJSON refuses it, so can we */
        }
        for (k = 1; k <= 4; k++) {
            if (!isxdigit((unsigned char)text[i + k])) {
                return 1;
            }
        }
        if (memcmp(text + i + 1, "0000", 4) == 0) {
            return 1;
        }
        i += 4;
    }
    return 0;
}
