/*
 * serialize — what the API answers are made of: DRF's error shapes, dates
 * as Python prints them, and TokenSerializer's view of a token.
 */
#include "fa.h"

#include "json.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* Formats like Python does: DRF's isoformat() with "Z" when \p iso, else
 * str(datetime) ("YYYY-MM-DD HH:MM:SS.ffffff+00:00"). Both drop the
 * fraction when it is zero, as Python does. */
void fa_fmt_time(int64_t us, bool iso, char *out, size_t outsz)
{
    time_t secs = (time_t)(us / USEC_PER_SEC);
    long frac = (long)(us % USEC_PER_SEC);
    struct tm tm;
    char base[40];

    gmtime_r(&secs, &tm);
    if (iso) {
        strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    } else {
        strftime(base, sizeof(base), "%Y-%m-%d %H:%M:%S", &tm);
    }
    if (frac) {
        snprintf(out, outsz, "%s.%06ld%s", base, frac, iso ? "Z" : "+00:00");
    } else {
        snprintf(out, outsz, "%s%s", base, iso ? "Z" : "+00:00");
    }
}

/* @returns \p obj (taken) as compact JSON text, or NULL. */
char *fa_json_take_print(cJSON *obj)
{
    char *s = obj ? akv_json_print(obj) : NULL;

    cJSON_Delete(obj);
    return s;
}

/* Answers \p status with \p obj (taken); a 500 when it cannot be printed. */
void fa_reply_json(struct fakehttp_response *resp, int status, cJSON *obj)
{
    char *s = fa_json_take_print(obj);

    if (!s) {
        fakehttp_reply(resp, 500, "{\"detail\":\"out of memory\"}");
        return;
    }
    fakehttp_reply_take(resp, status, s);
}

/* DRF's {"detail": msg}. */
void fa_reply_detail(struct fakehttp_response *resp, int status,
                     const char *msg)
{
    cJSON *o = cJSON_CreateObject();

    if (o && !cJSON_AddStringToObject(o, "detail", msg)) {
        cJSON_Delete(o);
        o = NULL;
    }
    fa_reply_json(resp, status, o);
}

/* DRF's validation error shape: {"field": ["message"]}. The first message
 * per field wins, as DRF stops at a field's first failing validator. */
void fa_add_field_error(cJSON *errs, const char *field, const char *msg)
{
    cJSON *arr;

    if (akv_json_get(errs, field)) {
        return;
    }
    arr = cJSON_AddArrayToObject(errs, field);
    if (arr) {
        cJSON_AddItemToArray(arr, cJSON_CreateString(msg));
    }
}

/* Adds member \p name: the date \p us as DRF writes it, or null. */
cJSON *fa_add_time_or_null(cJSON *obj, const char *name, bool has, int64_t us)
{
    char buf[TIME_BUF];

    if (!has) {
        return cJSON_AddNullToObject(obj, name);
    }
    fa_fmt_time(us, true, buf, sizeof(buf));
    return cJSON_AddStringToObject(obj, name, buf);
}

/* PartialGroupSerializer of the admin's one group, "authentik Admins". */
static cJSON *admin_group_json(void)
{
    cJSON *g = cJSON_CreateObject();

    if (!g) {
        return NULL;
    }
    cJSON_AddStringToObject(g, "pk", ADMIN_GROUP_PK);
    cJSON_AddNumberToObject(g, "num_pk", ADMIN_GROUP_NUM_PK);
    cJSON_AddStringToObject(g, "name", "authentik Admins");
    cJSON_AddTrueToObject(g, "is_superuser");
    cJSON_AddObjectToObject(g, "attributes");
    return g;
}

/* UserSerializer's output for the admin, in its field order: every field
 * authentik's schema (components.User) requires, groups included (the
 * token views do not ask to leave them out). */
static cJSON *user_obj_json(void)
{
    cJSON *u = cJSON_CreateObject();
    cJSON *a;

    if (!u) {
        return NULL;
    }
    cJSON_AddNumberToObject(u, "pk", ADMIN_PK);
    cJSON_AddStringToObject(u, "username", ADMIN_USERNAME);
    cJSON_AddStringToObject(u, "name", ADMIN_NAME);
    cJSON_AddTrueToObject(u, "is_active");
    cJSON_AddNullToObject(u, "last_login");
    cJSON_AddStringToObject(u, "date_joined", ADMIN_JOINED);
    cJSON_AddTrueToObject(u, "is_superuser");
    a = cJSON_AddArrayToObject(u, "groups");
    if (a) {
        cJSON_AddItemToArray(a, cJSON_CreateString(ADMIN_GROUP_PK));
    }
    a = cJSON_AddArrayToObject(u, "groups_obj");
    if (a) {
        cJSON_AddItemToArray(a, admin_group_json());
    }
    cJSON_AddArrayToObject(u, "roles");
    cJSON_AddArrayToObject(u, "roles_obj");
    cJSON_AddStringToObject(u, "email", ADMIN_EMAIL);
    cJSON_AddStringToObject(u, "avatar", ADMIN_AVATAR);
    cJSON_AddObjectToObject(u, "attributes");
    cJSON_AddStringToObject(u, "uid", ADMIN_UID);
    cJSON_AddStringToObject(u, "path", "users");
    cJSON_AddStringToObject(u, "type", "internal");
    cJSON_AddStringToObject(u, "uuid", ADMIN_UUID);
    cJSON_AddStringToObject(u, "password_change_date", ADMIN_JOINED);
    cJSON_AddStringToObject(u, "last_updated", ADMIN_JOINED);
    return u;
}

/* TokenSerializer's output, in its field order. */
cJSON *fa_token_json(const struct token *t)
{
    cJSON *o = cJSON_CreateObject();
    char pk[37];

    if (!o) {
        return NULL;
    }
    fa_uuid_dashed(t->pk, pk);
    cJSON_AddStringToObject(o, "pk", pk);
    cJSON_AddNullToObject(o, "managed");
    cJSON_AddStringToObject(o, "identifier", t->identifier);
    cJSON_AddStringToObject(o, "intent", t->intent);
    cJSON_AddNumberToObject(o, "user", t->user);
    cJSON_AddItemToObject(o, "user_obj", user_obj_json());
    cJSON_AddStringToObject(o, "description", t->description);
    fa_add_time_or_null(o, "expires", t->has_expires, t->expires_us);
    cJSON_AddBoolToObject(o, "expiring", t->expiring);
    return o;
}
