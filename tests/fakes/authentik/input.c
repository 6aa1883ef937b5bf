/*
 * input — request bodies as TokenSerializer takes them: JSON parsing with
 * DRF's errors, field by field validation (slugs, intents, Django's
 * datetime syntax, DRF's booleans), validate()'s checks, and applying the
 * result to a token.
 */
#include "fa.h"

#include "json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLUG_ERROR                                                             \
    "Enter a valid \u201cslug\u201d consisting of letters, numbers, "          \
    "underscores or hyphens."
#define DATETIME_ERROR                                                         \
    "Datetime has wrong format. Use one of these formats instead: "            \
    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z]."

static int parse_digits(const char **p, int n, int *out)
{
    int v = 0;
    int i;

    for (i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9') {
            return -1;
        }
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* Accepts what Django's parse_datetime does for ISO 8601:
 * YYYY-MM-DD[(T| )HH:MM[:SS[.f{1,6}]]][Z|(+|-)HH[:MM]]. Naive values are
 * UTC, authentik's default time zone. */
static int parse_time(const char *s, int64_t *out)
{
    struct tm tm;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0;
    const char *p = s;
    time_t t;

    memset(&tm, 0, sizeof(tm));
    if (parse_digits(&p, 4, &y) || *p++ != '-' || parse_digits(&p, 2, &mo) ||
        *p++ != '-' || parse_digits(&p, 2, &d)) {
        return -1;
    }
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (parse_digits(&p, 2, &h) || *p++ != ':' ||
            parse_digits(&p, 2, &mi)) {
            return -1;
        }
        if (*p == ':') {
            p++;
            if (parse_digits(&p, 2, &sec)) {
                return -1;
            }
            if (*p == '.' || *p == ',') {
                int n = 0;

                p++;
                while (*p >= '0' && *p <= '9') {
                    if (n < 6) {
                        frac = frac * 10 + (*p - '0');
                    }
                    n++;
                    p++;
                }
                if (n == 0 || n > 6) {
                    return -1;
                }
                for (; n < 6; n++) {
                    frac *= 10;
                }
            }
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p == '-' ? -1 : 1;
            int oh, om = 0;

            p++;
            if (parse_digits(&p, 2, &oh)) {
                return -1;
            }
            if (*p == ':') {
                p++;
            }
            if (*p >= '0' && *p <= '9' && parse_digits(&p, 2, &om)) {
                return -1;
            }
            off = sign * (oh * 3600 + om * 60);
        }
    }
    if (*p || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        sec > 59) {
        return -1;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    /* timegm() normalises 31 February into March; Python refuses it. */
    if (tm.tm_mday != d || tm.tm_mon != mo - 1) {
        return -1;
    }
    *out = ((int64_t)t - off) * USEC_PER_SEC + frac;
    return 0;
}

static bool valid_slug(const char *s)
{
    if (!*s) {
        return false;
    }
    for (; *s; s++) {
        char c = *s;

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_')) {
            return false;
        }
    }
    return true;
}

/* Parses the request body; a missing body is an empty object. On failure
 * the response is set and NULL returned. */
cJSON *fa_parse_body(const struct fakehttp_request *req,
                     struct fakehttp_response *resp)
{
    cJSON *body;
    cJSON *errs;
    char msg[96];

    if (req->body_len == 0) {
        body = cJSON_CreateObject();
        if (!body) {
            fa_reply_detail(resp, 500, "out of memory");
        }
        return body;
    }
    body = cJSON_ParseWithLength(req->body, req->body_len);
    if (!body) {
        fa_reply_detail(resp, 400, "JSON parse error - Expecting value");
        return NULL;
    }
    if (cJSON_IsObject(body)) {
        return body;
    }
    snprintf(msg, sizeof(msg),
             "Invalid data. Expected a dictionary, but got %s.",
             cJSON_IsArray(body)    ? "list"
             : cJSON_IsString(body) ? "str"
             : cJSON_IsNumber(body) ? "int"
             : cJSON_IsBool(body)   ? "bool"
                                    : "NoneType");
    cJSON_Delete(body);
    errs = cJSON_CreateObject();
    if (errs) {
        fa_add_field_error(errs, "non_field_errors", msg);
    }
    fa_reply_json(resp, 400, errs);
    return NULL;
}

static const char *string_field(const cJSON *v, const char *field, cJSON *errs,
                                bool allow_blank)
{
    if (cJSON_IsNull(v)) {
        fa_add_field_error(errs, field, "This field may not be null.");
        return NULL;
    }
    if (!cJSON_IsString(v)) {
        fa_add_field_error(errs, field, "Not a valid string.");
        return NULL;
    }
    if (!allow_blank && v->valuestring[0] == '\0') {
        fa_add_field_error(errs, field, "This field may not be blank.");
        return NULL;
    }
    return v->valuestring;
}

/* DRF's BooleanField accepts JSON booleans and a few spellings of them. */
static int bool_field(const cJSON *v, bool *out)
{
    static const char *const yes[] = {"true", "True", "TRUE", "1",
                                      "yes",  "on",   "y"};
    static const char *const no[] = {"false", "False", "FALSE", "0",
                                     "no",    "off",   "n"};
    size_t i;

    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return 0;
    }
    if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1)) {
        *out = v->valuedouble == 1;
        return 0;
    }
    if (!cJSON_IsString(v)) {
        return -1;
    }
    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(v->valuestring, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(v->valuestring, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* Field-level validation, as TokenSerializer's fields do it; the checks
 * that need the store (uniqueness) and validate() come later. */
void fa_token_input_parse(const cJSON *body, bool need_identifier,
                          struct token_input *in, cJSON *errs)
{
    const cJSON *v;

    memset(in, 0, sizeof(*in));
    v = akv_json_get(body, "identifier");
    if (!v) {
        if (need_identifier) {
            fa_add_field_error(errs, "identifier", "This field is required.");
        }
    } else {
        const char *s = string_field(v, "identifier", errs, false);

        if (s && strlen(s) > IDENT_MAX) {
            fa_add_field_error(errs, "identifier",
                               "Ensure this field has no more than 255 "
                               "characters.");
        } else if (s && !valid_slug(s)) {
            fa_add_field_error(errs, "identifier", SLUG_ERROR);
        } else {
            in->identifier = s;
        }
    }

    v = akv_json_get(body, "intent");
    if (v) {
        in->has_intent = true;
        if (cJSON_IsString(v) &&
            (strcmp(v->valuestring, "api") == 0 ||
             strcmp(v->valuestring, "app_password") == 0)) {
            in->intent =
                strcmp(v->valuestring, "api") == 0 ? "api" : "app_password";
        } else {
            in->intent_bad = true;
        }
    }

    v = akv_json_get(body, "user");
    if (v) {
        char msg[128];

        if (!cJSON_IsNumber(v) || v->valuedouble != (double)v->valueint) {
            fa_add_field_error(errs, "user",
                               "Incorrect type. Expected pk value, received "
                               "str.");
        } else if (v->valueint != ADMIN_PK) {
            snprintf(msg, sizeof(msg),
                     "Invalid pk \"%d\" - object does not exist.", v->valueint);
            fa_add_field_error(errs, "user", msg);
        } else {
            in->has_user = true;
            in->user = v->valueint;
        }
    }

    v = akv_json_get(body, "description");
    if (v) {
        in->description = string_field(v, "description", errs, true);
    }

    v = akv_json_get(body, "expires");
    if (v) {
        if (cJSON_IsNull(v)) {
            in->has_expires = true;
            in->expires_null = true;
        } else if (cJSON_IsString(v) &&
                   parse_time(v->valuestring, &in->expires_us) == 0) {
            in->has_expires = true;
        } else {
            fa_add_field_error(errs, "expires", DATETIME_ERROR);
        }
    }

    v = akv_json_get(body, "expiring");
    if (v) {
        if (cJSON_IsNull(v)) {
            fa_add_field_error(errs, "expiring", "This field may not be null.");
        } else if (bool_field(v, &in->expiring) < 0) {
            fa_add_field_error(errs, "expiring", "Must be a valid boolean.");
        } else {
            in->has_expiring = true;
        }
    }
}

/* TokenSerializer.validate(): allowed intents, the app password lifetime
 * cap. Called with the store locked. @returns 0 or -1 with \p errs set. */
int fa_token_input_validate(const struct token_input *in, const char *intent,
                            int64_t now, cJSON *errs)
{
    if (in->intent_bad) {
        fa_add_field_error(errs, "intent", "Invalid intent");
        return -1;
    }
    if (strcmp(intent, "app_password") == 0 && in->has_expires &&
        !in->expires_null && in->expires_us > now + DAY_US) {
        char when[TIME_BUF];
        char msg[128];

        fa_fmt_time(now + DAY_US, false, when, sizeof(when));
        snprintf(msg, sizeof(msg),
                 "Token expires exceeds maximum lifetime (%s UTC).", when);
        fa_add_field_error(errs, "expires", msg);
        return -1;
    }
    return 0;
}

/* Replaces the string *dst by a copy of \p src (NULL: left alone).
 * @returns 0, or -1 when out of memory (*dst is then left alone). */
static int replace_string(char **dst, const char *src)
{
    char *copy;

    if (!src) {
        return 0;
    }
    copy = strdup(src);
    if (!copy) {
        return -1;
    }
    free(*dst);
    *dst = copy;
    return 0;
}

/* Applies validated input to \p t; API tokens always get a fresh default
 * lifetime, which authentik does not let clients override. */
int fa_token_apply(struct token *t, const struct token_input *in, int64_t now)
{
    if (replace_string(&t->identifier, in->identifier) < 0 ||
        replace_string(&t->description, in->description) < 0) {
        return -1;
    }
    if (in->intent) {
        t->intent = in->intent;
    }
    if (in->has_user) {
        t->user = in->user;
    }
    if (in->has_expiring) {
        t->expiring = in->expiring;
    }
    if (strcmp(t->intent, "api") == 0) {
        t->has_expires = true;
        t->expires_us = now + DAY_US;
    } else if (in->has_expires) {
        t->has_expires = !in->expires_null;
        t->expires_us = in->expires_us;
    }
    return 0;
}
