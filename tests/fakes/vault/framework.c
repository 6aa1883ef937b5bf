/*
 * framework — what Vault's HTTP layer and sdk/framework do around every
 * handler: the response envelope and error bodies, the warning about
 * parameters a path does not declare, and the decoding of request fields
 * (mapstructure's WeakDecode, Go's integer, boolean and duration syntax)
 * with the error texts Vault gives for them.
 */
#include "fv.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Answers \p status with the text built in \p b (taken), or a 500 when
 * building it failed. */
void fv_reply_buf(struct fakehttp_response *resp, int status, struct akv_buf *b)
{
    char *body = akv_buf_take(b);

    if (!body) {
        fakehttp_reply(resp, 500, "{\"errors\":[\"out of memory\"]}\n");
        return;
    }
    fakehttp_reply_take(resp, status, body);
}

/* Vault's respondError: {"errors":[msg]} or {"errors":[]} for NULL. */
void fv_reply_error(struct fakehttp_response *resp, int status, const char *msg)
{
    struct akv_buf b = TEXT_INIT;

    akv_buf_puts(&b, "{\"errors\":[");
    if (msg) {
        fv_json_str(&b, msg);
    }
    akv_buf_puts(&b, "]}\n");
    fv_reply_buf(resp, status, &b);
}

/* Vault's empty 204. */
void fv_reply_no_content(struct fakehttp_response *resp)
{
    fakehttp_reply_take(resp, 204, NULL);
    /* fakehttp leaves Content-Type off empty 204s; Vault sets it anyway */
    fakehttp_add_header(resp, "Content-Type", "application/json");
}

/* Opens Vault's response envelope after the members of the JSON object
 * \p top (NULL: none; logical.HTTPSysInjector puts a sys/ answer's data
 * there); the caller writes the data value. */
void fv_env_begin_with(struct akv_buf *b, const struct akv_buf *top)
{
    char id[UUID_LEN + 1];

    akv_buf_putc(b, '{');
    if (top && top->len > 2) {
        akv_buf_append(b, top->data + 1, top->len - 2);
        akv_buf_putc(b, ',');
    }
    fv_uuid(id);
    akv_buf_printf(
        b,
        "\"request_id\":\"%s\",\"lease_id\":\"\",\"renewable\":false,"
        "\"lease_duration\":0,\"data\":",
        id);
}

/* Opens Vault's response envelope; the caller writes the data value. */
void fv_env_begin(struct akv_buf *b)
{
    fv_env_begin_with(b, NULL);
}

/* Closes the envelope. \p auth is JSON text or NULL. json.Marshal bodies
 * (raw 404s) carry no newline; json.Encoder ones do. */
void fv_env_end(struct akv_buf *b, const char *const *warnings,
                size_t nwarnings, const char *auth, const char *mount_type,
                int newline)
{
    size_t i;

    akv_buf_puts(b, ",\"wrap_info\":null,\"warnings\":");
    if (nwarnings == 0) {
        akv_buf_puts(b, "null");
    } else {
        akv_buf_putc(b, '[');
        for (i = 0; i < nwarnings; i++) {
            if (i > 0) {
                akv_buf_putc(b, ',');
            }
            fv_json_str(b, warnings[i]);
        }
        akv_buf_putc(b, ']');
    }
    akv_buf_puts(b, ",\"auth\":");
    akv_buf_puts(b, auth ? auth : "null");
    akv_buf_puts(b, ",\"mount_type\":");
    fv_json_str(b, mount_type);
    akv_buf_puts(b, newline ? "}\n" : "}");
}

/*
 * The framework's "Endpoint ignored these unrecognized parameters: [a b]"
 * warning for body fields the path does not declare; Vault adds it to every
 * non-nil, non-error response.
 * @returns 1 when \p out got a warning.
 */
int fv_ignored_params(const cJSON *body, const char *const *known,
                      struct akv_buf *out)
{
    struct fv_member *m;
    size_t n;
    size_t i;
    size_t j;
    int any = 0;

    if (!cJSON_IsObject(body)) {
        return 0;
    }
    n = fv_sorted_members(body, &m);
    if (n == (size_t)-1) {
        out->err = AKV_ERR_NOMEM;
        return 0;
    }
    for (i = 0; i < n; i++) {
        int is_known = 0;

        for (j = 0; known[j]; j++) {
            if (strcmp(known[j], m[i].item->string) == 0) {
                is_known = 1;
                break;
            }
        }
        if (is_known) {
            continue;
        }
        akv_buf_puts(out,
                     any ? " "
                         : "Endpoint ignored these unrecognized parameters: [");
        akv_buf_puts(out, m[i].item->string);
        any = 1;
    }
    if (any) {
        akv_buf_putc(out, ']');
    }
    free(m);
    return any;
}

/* The last member called \p name: Go's decoder keeps the last duplicate. */
const cJSON *fv_obj_get(const cJSON *obj, const char *name)
{
    const cJSON *c;
    const cJSON *found = NULL;

    if (!cJSON_IsObject(obj)) {
        return NULL;
    }
    for (c = obj->child; c; c = c->next) {
        if (c->string && strcmp(c->string, name) == 0) {
            found = c;
        }
    }
    return found;
}

/* The framework's "error converting input for field "NAME": " (Vault 1.21
 * leaves the input out). */
void fv_field_error_prefix(struct akv_buf *err, const char *name)
{
    akv_buf_puts(err, "error converting input for field ");
    fv_go_quote(err, name);
    akv_buf_puts(err, ": ");
}

/*
 * mapstructure's weak decoding of \p v into the map \p dst, named \p path
 * in errors: an object's members are added (a later key replaces an
 * earlier one), null adds nothing, and a list decodes each element in
 * turn into the same map ("[i]" appended to the name).
 * @returns 0, or -1 with "'PATH' expected a map, got 'KIND'" in \p err.
 */
static int weak_map_merge(cJSON *dst, const cJSON *v, const char *path,
                          struct akv_buf *err)
{
    const cJSON *c;
    size_t i = 0;

    if (cJSON_IsNull(v)) {
        return 0;
    }
    if (cJSON_IsObject(v)) {
        for (c = v->child; c; c = c->next) {
            cJSON *dup = cJSON_Duplicate(c, 1);

            if (!dup) {
                err->err = AKV_ERR_NOMEM;
                return -1;
            }
            if (cJSON_GetObjectItemCaseSensitive(dst, c->string)) {
                cJSON_ReplaceItemInObjectCaseSensitive(dst, c->string, dup);
            } else {
                cJSON_AddItemToObject(dst, c->string, dup);
            }
        }
        return 0;
    }
    if (!cJSON_IsArray(v)) {
        akv_buf_printf(err, "'%s' expected a map, got '%s'", path,
                       fv_go_kind(v));
        return -1;
    }
    for (c = v->child; c; c = c->next, i++) {
        char sub[512];

        snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
        if (weak_map_merge(dst, c, sub, err) < 0) {
            return -1;
        }
    }
    return 0;
}

/*
 * A TypeMap field. A list is decoded weakly (weak_map_merge()) into an
 * object that takes its place in \p body. @returns 0 when absent, 1 when
 * present (*out is NULL for JSON null), -1 with the framework's message in
 * \p err.
 */
int fv_field_map(cJSON *body, const char *name, const cJSON **out,
                 struct akv_buf *err)
{
    cJSON *v = (cJSON *)fv_obj_get(body, name);
    struct akv_buf inner = TEXT_INIT;
    cJSON *merged;

    *out = NULL;
    if (!v) {
        return 0;
    }
    if (cJSON_IsNull(v)) {
        return 1;
    }
    if (cJSON_IsObject(v)) {
        *out = v;
        return 1;
    }
    merged = cJSON_CreateObject();
    if (!merged) {
        err->err = AKV_ERR_NOMEM;
        return -1;
    }
    if (weak_map_merge(merged, v, "", &inner) < 0) {
        cJSON_Delete(merged);
        fv_field_error_prefix(err, name);
        akv_buf_puts(err, fv_text(&inner));
        akv_buf_free(&inner);
        return -1;
    }
    /* the body's keys are unique (fv_body_parse() refuses duplicates) */
    cJSON_ReplaceItemInObjectCaseSensitive(body, name, merged);
    *out = merged;
    return 1;
}

/* strconv.ParseInt(s, 0, 64) as mapstructure uses it ("" reads as 0). */
int fv_parse_go_int(const char *s, int64_t *out)
{
    const char *p = s;
    int neg = 0;
    int base = 10;
    uint64_t v = 0;
    int digits = 0;

    if (*p == '\0') {
        *out = 0;
        return 0;
    }
    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) {
        base = 2;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
        base = 8;
        p += 2;
    } else if (p[0] == '0' && p[1] != '\0') {
        base = 8;
        p++;
    }
    for (; *p; p++) {
        int d;

        if (*p == '_') {
            continue;
        }
        if (*p >= '0' && *p <= '9') {
            d = *p - '0';
        } else if (*p >= 'a' && *p <= 'f') {
            d = *p - 'a' + 10;
        } else if (*p >= 'A' && *p <= 'F') {
            d = *p - 'A' + 10;
        } else {
            return -1;
        }
        if (d >= base || v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) {
            return -1;
        }
        v = v * (uint64_t)base + (uint64_t)d;
        digits++;
    }
    if (digits == 0 && base != 8) {
        return -1;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX) {
        return -1;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* A JSON number as json.Number.Int64 would take it: integral, in range.
 * (cJSON keeps no literal, so "1.0" passes where Go would refuse it.) */
static int number_to_int(const cJSON *v, int64_t *out)
{
    double d = v->valuedouble;

    if (!isfinite(d) || d != (double)(int64_t)d || d >= 9.3e18 ||
        d <= -9.3e18) {
        return -1;
    }
    *out = (int64_t)d;
    return 0;
}

/* mapstructure's "'' expected type 'T', got unconvertible type 'K', value:
 * 'V'" for a list or an object \p v. */
void fv_unconvertible(struct akv_buf *err, const char *path, const char *type,
                      const cJSON *v)
{
    akv_buf_printf(err,
                   "'%s' expected type '%s', got unconvertible type '%s', "
                   "value: '",
                   path, type,
                   cJSON_IsArray(v) ? "[]interface {}"
                                    : "map[string]interface {}");
    fv_go_value(err, v);
    akv_buf_putc(err, '\'');
}

static void unconvertible(struct akv_buf *err, const char *type, const cJSON *v)
{
    fv_unconvertible(err, "", type, v);
}

/* WeakDecode into an int. @returns 0, or -1 with a message in \p err. */
int fv_weak_int(const cJSON *v, const char *name, int64_t *out,
                struct akv_buf *err)
{
    if (cJSON_IsNull(v)) {
        *out = 0;
        return 0;
    }
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return 0;
    }
    if (cJSON_IsNumber(v)) {
        if (number_to_int(v, out) == 0) {
            return 0;
        }
        if (err) {
            fv_field_error_prefix(err, name);
            akv_buf_puts(err, "cannot parse '' as int: strconv.ParseInt: "
                              "parsing \"");
            fv_go_float(err, v->valuedouble);
            akv_buf_puts(err, "\": invalid syntax");
        }
        return -1;
    }
    if (cJSON_IsString(v)) {
        if (fv_parse_go_int(v->valuestring, out) == 0) {
            return 0;
        }
        if (err) {
            fv_field_error_prefix(err, name);
            akv_buf_puts(err,
                         "cannot parse '' as int: strconv.ParseInt: parsing ");
            fv_go_quote(err, v->valuestring);
            akv_buf_puts(err, ": invalid syntax");
        }
        return -1;
    }
    if (err) {
        fv_field_error_prefix(err, name);
        unconvertible(err, "int", v);
    }
    return -1;
}

/* strconv.ParseBool */
int fv_parse_go_bool(const char *s, int *out)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

/* WeakDecode into a bool: json.Number and strings go through ParseBool. */
int fv_weak_bool(const cJSON *v, const char *name, int *out,
                 struct akv_buf *err)
{
    struct akv_buf lit = TEXT_INIT;
    int rc = 0;

    if (cJSON_IsNull(v)) {
        *out = 0;
        return 0;
    }
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return 0;
    }
    if (cJSON_IsString(v) || cJSON_IsNumber(v)) {
        if (cJSON_IsString(v)) {
            akv_buf_puts(&lit, v->valuestring);
        } else {
            fv_go_float(&lit, v->valuedouble);
        }
        if (lit.err != AKV_OK) {
            err->err = AKV_ERR_NOMEM;
            rc = -1;
        } else if (lit.len == 0) {
            *out = 0;
        } else if (fv_parse_go_bool(lit.data, out) != 0) {
            fv_field_error_prefix(err, name);
            akv_buf_puts(err, "cannot parse '' as bool: strconv.ParseBool: "
                              "parsing ");
            fv_go_quote(err, lit.data);
            akv_buf_puts(err, ": invalid syntax");
            rc = -1;
        }
        akv_buf_free(&lit);
        return rc;
    }
    fv_field_error_prefix(err, name);
    unconvertible(err, "bool", v);
    return -1;
}

/*
 * WeakDecode of a scalar into a string, written to \p out: numbers keep
 * their text, bools become "1"/"0", null becomes "". @returns 0, or -1 for
 * an array or an object (nothing written).
 */
int fv_weak_scalar(struct akv_buf *out, const cJSON *v)
{
    if (cJSON_IsString(v)) {
        akv_buf_puts(out, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        fv_go_float(out, v->valuedouble);
    } else if (cJSON_IsBool(v)) {
        akv_buf_puts(out, cJSON_IsTrue(v) ? "1" : "0");
    } else if (!cJSON_IsNull(v)) {
        return -1;
    }
    return 0;
}

/* Go's strings.TrimSpace for the ASCII white space: in place. */
void fv_trim_space(char *s)
{
    size_t n = strlen(s);
    size_t start = 0;

    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' ||
                     s[n - 1] == '\r')) {
        s[--n] = '\0';
    }
    while (s[start] == ' ' || s[start] == '\t' || s[start] == '\n' ||
           s[start] == '\r') {
        start++;
    }
    if (start > 0) {
        memmove(s, s + start, n - start + 1);
    }
}

/*
 * WeakDecode into a string: numbers keep their text, bools become "1"/"0",
 * null becomes "". @returns a heap string, or NULL with \p err set (or OOM
 * when \p err stays empty).
 */
char *fv_weak_string(const cJSON *v, struct akv_buf *err)
{
    struct akv_buf s = TEXT_INIT;

    if (fv_weak_scalar(&s, v) < 0) {
        unconvertible(err, "string", v);
        return NULL;
    }
    return akv_buf_take(&s);
}

/* A TypeString field: NULL when absent; "" for null. */
char *fv_field_string(const cJSON *body, const char *name, struct akv_buf *err,
                      int *failed)
{
    const cJSON *v = fv_obj_get(body, name);
    struct akv_buf inner = TEXT_INIT;
    char *s;

    *failed = 0;
    if (!v) {
        return NULL;
    }
    s = fv_weak_string(v, &inner);
    if (!s) {
        *failed = 1;
        if (inner.len > 0) {
            fv_field_error_prefix(err, name);
            akv_buf_puts(err, inner.data);
        } else {
            err->err = AKV_ERR_NOMEM;
        }
    }
    akv_buf_free(&inner);
    return s;
}

/*
 * Go's time.ParseDuration, to whole seconds (fractions are truncated).
 * @returns 0 on success.
 */
static int parse_go_duration(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        double ns;
    } units[] = {{"ns", 1},          {"us", 1e3},  {"\xc2\xb5s", 1e3},
                 {"\xce\xbcs", 1e3}, {"ms", 1e6},  {"s", 1e9},
                 {"m", 60e9},        {"h", 3600e9}};
    const char *p = s;
    double total = 0;
    int neg = 0;

    if (*p == '+' || *p == '-') {
        neg = *p == '-';
        p++;
    }
    if (strcmp(p, "0") == 0) {
        *out = 0;
        return 0;
    }
    if (*p == '\0') {
        return -1;
    }
    while (*p) {
        char *end;
        double v;
        size_t i;
        size_t best = 0;
        size_t best_len = 0;

        if (!((*p >= '0' && *p <= '9') || *p == '.')) {
            return -1;
        }
        v = strtod(p, &end);
        if (end == p) {
            return -1;
        }
        p = end;
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t ul = strlen(units[i].unit);

            if (strncmp(p, units[i].unit, ul) == 0 && ul > best_len) {
                best = i;
                best_len = ul;
            }
        }
        if (best_len == 0) {
            return -1;
        }
        total += v * units[best].ns;
        p += best_len;
    }
    if (total / 1e9 > 9.2e18) {
        return -1;
    }
    *out = (int64_t)(total / 1e9) * (neg ? -1 : 1);
    return 0;
}

/*
 * A TypeDurationSecond field (parseutil.ParseDurationSecond): a number of
 * seconds, a numeric string, "Nd", or a Go duration string.
 * @returns 0 absent, 1 present, -1 with \p err set.
 */
int fv_field_duration(const cJSON *body, const char *name, int64_t *out,
                      struct akv_buf *err)
{
    const cJSON *v = fv_obj_get(body, name);
    char buf[128];
    size_t n;
    const char *s;

    *out = 0;
    if (!v) {
        return 0;
    }
    if (cJSON_IsNull(v)) {
        return 1;
    }
    if (cJSON_IsNumber(v)) {
        *out = (int64_t)v->valuedouble;
        return 1;
    }
    if (!cJSON_IsString(v)) {
        fv_field_error_prefix(err, name);
        akv_buf_puts(err, "could not parse duration from input");
        return -1;
    }
    s = v->valuestring;
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
        s++;
    }
    snprintf(buf, sizeof(buf), "%s", s);
    fv_trim_space(buf);
    n = strlen(buf);
    if (n == 0) {
        return 1;
    }
    if (buf[n - 1] == 'd') {
        int64_t days;

        buf[n - 1] = '\0';
        if (fv_parse_go_int(buf, &days) == 0 && buf[0] != '\0' &&
            days < INT64_MAX / 86400 && days > INT64_MIN / 86400) {
            *out = days * 86400;
            return 1;
        }
        buf[n - 1] = 'd';
    } else {
        char *end;
        long long secs;

        errno = 0;
        secs = strtoll(buf, &end, 10);
        if (errno == 0 && *end == '\0' && end != buf) {
            *out = secs;
            return 1;
        }
    }
    if (parse_go_duration(buf, out) == 0) {
        return 1;
    }
    fv_field_error_prefix(err, name);
    akv_buf_puts(err, "time: invalid duration ");
    fv_go_quote(err, buf);
    return -1;
}

/* The element errors of a slice, one text each. */
struct slice_errors {
    char **v;
    size_t n;
    size_t cap;
    int oom;
};

static void slice_errors_add(struct slice_errors *e, struct akv_buf *one)
{
    char *text = akv_buf_take(one);

    if (text && e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 4;
        char **nv = realloc(e->v, cap * sizeof(*nv));

        if (!nv) {
            free(text);
            text = NULL;
        } else {
            e->v = nv;
            e->cap = cap;
        }
    }
    if (!text) {
        e->oom = 1;
        return;
    }
    e->v[e->n++] = text;
}

static int cmp_text(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* mapstructure.Error's text: "N error(s) decoding:\n\n* e1\n* e2", the
 * lines sorted. */
static void slice_errors_text(struct slice_errors *e, struct akv_buf *err)
{
    size_t k;
    struct akv_buf line = TEXT_INIT;
    char **lines = calloc(e->n, sizeof(*lines));

    if (!lines) {
        err->err = AKV_ERR_NOMEM;
        return;
    }
    for (k = 0; k < e->n; k++) {
        akv_buf_printf(&line, "* %s", e->v[k]);
        lines[k] = akv_buf_take(&line);
        if (!lines[k]) {
            err->err = AKV_ERR_NOMEM;
        }
    }
    if (err->err == AKV_OK) {
        qsort(lines, e->n, sizeof(*lines), cmp_text);
        akv_buf_printf(err, "%zu error(s) decoding:\n\n", e->n);
        for (k = 0; k < e->n; k++) {
            akv_buf_puts(err, k ? "\n" : "");
            akv_buf_puts(err, lines[k]);
        }
    }
    for (k = 0; k < e->n; k++) {
        free(lines[k]);
    }
    free(lines);
}

static void slice_errors_free(struct slice_errors *e)
{
    size_t k;

    for (k = 0; k < e->n; k++) {
        free(e->v[k]);
    }
    free(e->v);
    memset(e, 0, sizeof(*e));
}

/* One element of a comma slice, decoded weakly onto \p out (a string, or
 * an int as a number), or its error added to \p errs. @returns -1 when
 * out of memory. */
static int slice_element(const cJSON *it, size_t idx, int ints, cJSON *out,
                         struct slice_errors *errs)
{
    struct akv_buf one = TEXT_INIT;
    struct akv_buf text = TEXT_INIT;
    char path[32];
    int64_t n = 0;
    cJSON *item = NULL;
    int failed = 1;

    snprintf(path, sizeof(path), "[%zu]", idx);
    if (fv_weak_scalar(&text, it) < 0) {
        fv_unconvertible(&one, path, ints ? "int" : "string", it);
    } else if (!ints) {
        item = cJSON_CreateString(akv_buf_str(&text));
        failed = 0;
    } else if (cJSON_IsNumber(it)
                   ? number_to_int(it, &n) == 0
                   : fv_parse_go_int(akv_buf_str(&text), &n) == 0) {
        item = cJSON_CreateNumber((double)n);
        failed = 0;
    } else {
        akv_buf_printf(
            &one, "cannot parse '%s' as int: strconv.ParseInt: parsing ", path);
        fv_go_quote(&one, akv_buf_str(&text));
        akv_buf_puts(&one, ": invalid syntax");
    }
    akv_buf_free(&text);
    if (failed) {
        slice_errors_add(errs, &one);
        akv_buf_free(&one);
        return errs->oom ? -1 : 0;
    }
    if (!item) {
        return -1;
    }
    cJSON_AddItemToArray(out, item);
    return 0;
}

/* Splits \p s at every comma (strings.Split) into elements of a slice. */
static int slice_split(const char *s, int ints, cJSON *out,
                       struct slice_errors *errs)
{
    size_t idx = 0;

    for (;;) {
        size_t len = strcspn(s, ",");
        char *part = strndup(s, len);
        cJSON *elem = part ? cJSON_CreateString(part) : NULL;
        int rc = elem ? slice_element(elem, idx++, ints, out, errs) : -1;

        cJSON_Delete(elem);
        free(part);
        if (rc < 0) {
            return -1;
        }
        if (s[len] != ',') {
            return 0;
        }
        s += len + 1;
    }
}

/*
 * A framework.TypeCommaStringSlice (\p ints 0, as parseutil's
 * ParseCommaStringSlice decodes it) or TypeCommaIntSlice (\p ints 1)
 * field, decoded as mapstructure does with WeaklyTypedInput: a number is
 * read as its text, a string is split at every comma ("" is no element),
 * a bool or an object stands for a list of one, and each element is
 * decoded weakly, every failing one reported.
 * @returns 0 when absent or null, 1 with *out a new array (strings, or
 *          numbers), -1 with the framework's text in \p err.
 */
int fv_field_comma_slice(const cJSON *body, const char *name, int ints,
                         cJSON **out, struct akv_buf *err)
{
    const cJSON *v = fv_obj_get(body, name);
    struct slice_errors errs;
    int rc = 0;

    memset(&errs, 0, sizeof(errs));
    *out = NULL;
    if (!v || cJSON_IsNull(v)) {
        return 0;
    }
    *out = cJSON_CreateArray();
    if (!*out) {
        err->err = AKV_ERR_NOMEM;
        return -1;
    }
    if (cJSON_IsString(v) || cJSON_IsNumber(v)) {
        struct akv_buf text = TEXT_INIT;

        fv_weak_scalar(&text, v);
        if (text.err != AKV_OK) {
            rc = -1;
        } else if (text.len > 0) {
            rc = slice_split(akv_buf_str(&text), ints, *out, &errs);
        }
        akv_buf_free(&text);
    } else if (cJSON_IsArray(v)) {
        const cJSON *it;
        size_t idx = 0;

        cJSON_ArrayForEach(it, v)
        {
            if (rc == 0 && slice_element(it, idx++, ints, *out, &errs) < 0) {
                rc = -1;
            }
        }
    } else {
        rc = slice_element(v, 0, ints, *out, &errs);
    }
    if (rc < 0) {
        err->err = AKV_ERR_NOMEM;
    } else if (errs.n > 0) {
        fv_field_error_prefix(err, name);
        slice_errors_text(&errs, err);
        rc = -1;
    } else {
        rc = 1;
    }
    slice_errors_free(&errs);
    if (rc < 0) {
        cJSON_Delete(*out);
        *out = NULL;
    }
    return rc;
}
