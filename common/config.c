/*
 * config — schema-driven libconfig loading.
 *
 * Order of precedence, lowest first: the schema default, the file, the
 * environment variable named in the schema. Containers are configured by
 * environment, so the environment wins over the file.
 */
#include "config.h"

#include <errno.h>
#include <libconfig.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void *field(void *cfg, const struct akv_cfg_entry *e)
{
    return (char *)cfg + e->offset;
}

static const void *cfield(const void *cfg, const struct akv_cfg_entry *e)
{
    return (const char *)cfg + e->offset;
}

static void strlist_free(struct akv_strlist *l)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        free(l->v[i]);
    }
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

static void pairs_free(struct akv_pairs *p)
{
    size_t i;

    for (i = 0; i < p->n; i++) {
        free(p->names[i]);
        free(p->values[i]);
    }
    free(p->names);
    free(p->values);
    p->names = NULL;
    p->values = NULL;
    p->n = 0;
}

static void entry_clear(const struct akv_cfg_entry *e, void *cfg)
{
    switch (e->type) {
    case AKV_CFG_STRING:
    case AKV_CFG_ENUM: {
        char **s = field(cfg, e);

        if (*s && (e->flags & AKV_CFG_SECRET)) {
            explicit_bzero(*s, strlen(*s));
        }
        free(*s);
        *s = NULL;
        break;
    }
    case AKV_CFG_STRLIST:
        strlist_free(field(cfg, e));
        break;
    case AKV_CFG_PAIRS:
        pairs_free(field(cfg, e));
        break;
    case AKV_CFG_INT:
    case AKV_CFG_BOOL:
    case AKV_CFG_DOUBLE:
        break;
    }
}

static int strlist_push(struct akv_strlist *l, const char *s, size_t len)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof(*v));

    if (!v) {
        return -1;
    }
    l->v = v;
    l->v[l->n] = strndup(s, len);
    if (!l->v[l->n]) {
        return -1;
    }
    l->n++;
    return 0;
}

static int pairs_push(struct akv_pairs *p, const char *name, const char *value)
{
    char **names = realloc(p->names, (p->n + 1) * sizeof(*names));
    char **values;

    if (!names) {
        return -1;
    }
    p->names = names;
    values = realloc(p->values, (p->n + 1) * sizeof(*values));
    if (!values) {
        return -1;
    }
    p->values = values;
    p->names[p->n] = strdup(name);
    p->values[p->n] = strdup(value);
    if (!p->names[p->n] || !p->values[p->n]) {
        free(p->names[p->n]);
        free(p->values[p->n]);
        return -1;
    }
    p->n++;
    return 0;
}

static int enum_ok(const struct akv_cfg_entry *e, const char *s)
{
    const char *const *c;

    for (c = e->choices; c && *c; c++) {
        if (strcmp(*c, s) == 0) {
            return 1;
        }
    }
    return 0;
}

/* "a, b, c" for error messages. */
static void choices_text(const struct akv_cfg_entry *e, char *out, size_t size)
{
    const char *const *c;
    size_t o = 0;

    out[0] = '\0';
    for (c = e->choices; c && *c && o < size; c++) {
        int n = snprintf(out + o, size - o, "%s%s", o ? ", " : "", *c);

        if (n < 0) {
            break;
        }
        o += (size_t)n;
    }
}

static akv_err_t check_int(const struct akv_cfg_entry *e, long long v,
                           const char *where, char *errstr, size_t errstr_size)
{
    if (v < e->min || v > e->max) {
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                        "%s: '%s' = %lld is out of range [%lld, %lld]", where,
                        e->name, v, e->min, e->max);
    }
    return AKV_OK;
}

static akv_err_t check_double(const struct akv_cfg_entry *e, double v,
                              const char *where, char *errstr,
                              size_t errstr_size)
{
    if (!(v >= (double)e->min && v <= (double)e->max)) {
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                        "%s: '%s' = %g is out of range [%lld, %lld]", where,
                        e->name, v, e->min, e->max);
    }
    return AKV_OK;
}

static const char *type_name(enum akv_cfg_type t)
{
    switch (t) {
    case AKV_CFG_STRING:
        return "a string";
    case AKV_CFG_INT:
        return "an integer";
    case AKV_CFG_BOOL:
        return "true or false";
    case AKV_CFG_DOUBLE:
        return "a number";
    case AKV_CFG_ENUM:
        return "a string";
    case AKV_CFG_STRLIST:
        return "an array of strings";
    case AKV_CFG_PAIRS:
        return "a list of (\"name\", \"value\") pairs";
    }
    return "?";
}

static akv_err_t wrong_type(const struct akv_cfg_entry *e, const char *where,
                            char *errstr, size_t errstr_size)
{
    return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size, "%s: '%s' must be %s",
                    where, e->name, type_name(e->type));
}

static akv_err_t string_from_text(const struct akv_cfg_entry *e, void *cfg,
                                  const char *text, const char *where,
                                  char *errstr, size_t errstr_size)
{
    char **s = field(cfg, e);
    char choices[256];

    if (e->type == AKV_CFG_ENUM && !enum_ok(e, text)) {
        choices_text(e, choices, sizeof(choices));
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                        "%s: '%s' must be one of: %s", where, e->name, choices);
    }
    *s = strdup(text);
    if (!*s) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    return AKV_OK;
}

/* An integer or a number: the whole text, in range. */
static akv_err_t number_from_text(const struct akv_cfg_entry *e, void *cfg,
                                  const char *text, const char *where,
                                  char *errstr, size_t errstr_size)
{
    char *end = NULL;
    long long i = 0;
    double d = 0;

    errno = 0;
    if (e->type == AKV_CFG_INT) {
        i = strtoll(text, &end, 10);
    } else {
        d = strtod(text, &end);
    }
    if (errno || end == text || *end) {
        return wrong_type(e, where, errstr, errstr_size);
    }
    if (e->type == AKV_CFG_INT) {
        *(long long *)field(cfg, e) = i;
        return check_int(e, i, where, errstr, errstr_size);
    }
    *(double *)field(cfg, e) = d;
    return check_double(e, d, where, errstr, errstr_size);
}

static akv_err_t bool_from_text(const struct akv_cfg_entry *e, void *cfg,
                                const char *text, const char *where,
                                char *errstr, size_t errstr_size)
{
    int *b = field(cfg, e);

    /* The spellings Vault's own tools accept for VAULT_SKIP_VERIFY and the
     * like (Go's strconv.ParseBool), and no others. */
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(text, yes[i]) == 0 || strcmp(text, no[i]) == 0) {
            *b = strcmp(text, yes[i]) == 0;
            return AKV_OK;
        }
    }
    return wrong_type(e, where, errstr, errstr_size);
}

/* Adds one item of a list (an empty one adds nothing) or of pairs
 * ("name=value"), the \p len bytes at \p p. */
static akv_err_t item_from_text(const struct akv_cfg_entry *e, void *cfg,
                                const char *p, size_t len, const char *where,
                                char *errstr, size_t errstr_size)
{
    char *item = strndup(p, len);
    char *eq;
    int rc;

    if (!item) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    if (e->type == AKV_CFG_STRLIST) {
        rc = len ? strlist_push(field(cfg, e), item, len) : 0;
    } else {
        eq = strchr(item, '=');
        if (!eq) {
            free(item);
            return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                            "%s: '%s' items must be name=value", where,
                            e->name);
        }
        *eq = '\0';
        rc = pairs_push(field(cfg, e), item, eq + 1);
    }
    free(item);
    if (rc) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    return AKV_OK;
}

/* Comma-separated items, the spaces around each one trimmed. */
static akv_err_t items_from_text(const struct akv_cfg_entry *e, void *cfg,
                                 const char *text, const char *where,
                                 char *errstr, size_t errstr_size)
{
    const char *p = text;
    akv_err_t err;

    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);

        while (len > 0 && *p == ' ') {
            p++;
            len--;
        }
        while (len > 0 && p[len - 1] == ' ') {
            len--;
        }
        err = item_from_text(e, cfg, p, len, where, errstr, errstr_size);
        if (err) {
            return err;
        }
        p = comma ? comma + 1 : p + len;
    }
    return AKV_OK;
}

/*
 * Sets an entry from text: the schema default or an environment variable.
 * Lists are comma-separated; pairs are "name=value" comma-separated.
 */
static akv_err_t set_from_text(const struct akv_cfg_entry *e, void *cfg,
                               const char *text, const char *where,
                               char *errstr, size_t errstr_size)
{
    entry_clear(e, cfg);
    switch (e->type) {
    case AKV_CFG_STRING:
    case AKV_CFG_ENUM:
        return string_from_text(e, cfg, text, where, errstr, errstr_size);
    case AKV_CFG_INT:
    case AKV_CFG_DOUBLE:
        return number_from_text(e, cfg, text, where, errstr, errstr_size);
    case AKV_CFG_BOOL:
        return bool_from_text(e, cfg, text, where, errstr, errstr_size);
    case AKV_CFG_STRLIST:
    case AKV_CFG_PAIRS:
        return items_from_text(e, cfg, text, where, errstr, errstr_size);
    }
    return AKV_OK;
}

static int is_string_pair(const config_setting_t *s)
{
    int type = config_setting_type(s);

    if ((type != CONFIG_TYPE_LIST && type != CONFIG_TYPE_ARRAY) ||
        config_setting_length(s) != 2) {
        return 0;
    }
    return config_setting_type(config_setting_get_elem(s, 0)) ==
               CONFIG_TYPE_STRING &&
           config_setting_type(config_setting_get_elem(s, 1)) ==
               CONFIG_TYPE_STRING;
}

static int is_string(const config_setting_t *s)
{
    return config_setting_type(s) == CONFIG_TYPE_STRING;
}

static int push_string(void *list, const config_setting_t *s)
{
    const char *v = config_setting_get_string(s);

    return strlist_push(list, v, strlen(v));
}

static int push_pair(void *pairs, const config_setting_t *s)
{
    return pairs_push(pairs,
                      config_setting_get_string(config_setting_get_elem(s, 0)),
                      config_setting_get_string(config_setting_get_elem(s, 1)));
}

/* A list or array of elements that \p ok accepts, each added by \p push.
 * Every element is checked before the entry's value is cleared. */
static akv_err_t
elements_from_setting(const struct akv_cfg_entry *e, void *cfg,
                      const config_setting_t *s,
                      int (*ok)(const config_setting_t *),
                      int (*push)(void *, const config_setting_t *),
                      const char *where, char *errstr, size_t errstr_size)
{
    int n = config_setting_length(s);
    int i;

    for (i = 0; i < n; i++) {
        if (!ok(config_setting_get_elem(s, i))) {
            return wrong_type(e, where, errstr, errstr_size);
        }
    }
    entry_clear(e, cfg);
    for (i = 0; i < n; i++) {
        if (push(field(cfg, e), config_setting_get_elem(s, i))) {
            return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size,
                            "out of memory");
        }
    }
    return AKV_OK;
}

/* Sets an entry from the parsed file; \p where is "file:line". */
static akv_err_t set_from_setting(const struct akv_cfg_entry *e, void *cfg,
                                  const config_setting_t *s, const char *where,
                                  char *errstr, size_t errstr_size)
{
    int type = config_setting_type(s);

    switch (e->type) {
    case AKV_CFG_STRING:
    case AKV_CFG_ENUM:
        if (type != CONFIG_TYPE_STRING) {
            break;
        }
        return set_from_text(e, cfg, config_setting_get_string(s), where,
                             errstr, errstr_size);
    case AKV_CFG_INT:
        if (type != CONFIG_TYPE_INT && type != CONFIG_TYPE_INT64) {
            break;
        }
        *(long long *)field(cfg, e) = config_setting_get_int64(s);
        return check_int(e, config_setting_get_int64(s), where, errstr,
                         errstr_size);
    case AKV_CFG_DOUBLE:
        if (type == CONFIG_TYPE_FLOAT) {
            *(double *)field(cfg, e) = config_setting_get_float(s);
        } else if (type == CONFIG_TYPE_INT || type == CONFIG_TYPE_INT64) {
            *(double *)field(cfg, e) = (double)config_setting_get_int64(s);
        } else {
            break;
        }
        return check_double(e, *(double *)field(cfg, e), where, errstr,
                            errstr_size);
    case AKV_CFG_BOOL:
        if (type != CONFIG_TYPE_BOOL) {
            break;
        }
        *(int *)field(cfg, e) = config_setting_get_bool(s);
        return AKV_OK;
    case AKV_CFG_STRLIST:
        if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
            break;
        }
        return elements_from_setting(e, cfg, s, is_string, push_string, where,
                                     errstr, errstr_size);
    case AKV_CFG_PAIRS:
        if (type != CONFIG_TYPE_LIST) {
            break;
        }
        return elements_from_setting(e, cfg, s, is_string_pair, push_pair,
                                     where, errstr, errstr_size);
    }
    return wrong_type(e, where, errstr, errstr_size);
}

static const struct akv_cfg_entry *
find_entry(const struct akv_cfg_entry *schema, const char *name)
{
    const struct akv_cfg_entry *e;

    for (e = schema; e->name; e++) {
        if (strcmp(e->name, name) == 0) {
            return e;
        }
    }
    return NULL;
}

/* Is \p name a group in the schema, i.e. a proper prefix of an entry? */
static int is_group(const struct akv_cfg_entry *schema, const char *name)
{
    const struct akv_cfg_entry *e;
    size_t len = strlen(name);

    for (e = schema; e->name; e++) {
        if (strncmp(e->name, name, len) == 0 && e->name[len] == '.') {
            return 1;
        }
    }
    return 0;
}

static void where_of(const config_setting_t *s, const char *path, char *out,
                     size_t size)
{
    const char *file = config_setting_source_file(s);

    snprintf(out, size, "%s:%d", file ? file : path,
             config_setting_source_line(s));
}

static akv_err_t walk(const struct akv_cfg_entry *schema, void *cfg,
                      const config_setting_t *group, const char *prefix,
                      const char *path, char *errstr, size_t errstr_size)
{
    int i;
    int n = config_setting_length(group);
    akv_err_t err;

    for (i = 0; i < n; i++) {
        const config_setting_t *s = config_setting_get_elem(group, i);
        const struct akv_cfg_entry *e;
        char full[256];
        char where[512];

        snprintf(full, sizeof(full), "%s%s%s", prefix, *prefix ? "." : "",
                 config_setting_name(s));
        where_of(s, path, where, sizeof(where));
        if (config_setting_is_group(s)) {
            if (!is_group(schema, full)) {
                return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                                "%s: unknown setting '%s'", where, full);
            }
            err = walk(schema, cfg, s, full, path, errstr, errstr_size);
            if (err) {
                return err;
            }
            continue;
        }
        e = find_entry(schema, full);
        if (!e) {
            return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                            is_group(schema, full)
                                ? "%s: '%s' must be a group { ... }"
                                : "%s: unknown setting '%s'",
                            where, full);
        }
        if (e->flags & AKV_CFG_ENV_ONLY) {
            return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                            "%s: '%s' holds a secret and cannot be set in "
                            "the file; use the environment variable %s or "
                            "a *_file setting",
                            where, full, e->env);
        }
        err = set_from_setting(e, cfg, s, where, errstr, errstr_size);
        if (err) {
            return err;
        }
    }
    return AKV_OK;
}

static int is_set(const struct akv_cfg_entry *e, const void *cfg)
{
    switch (e->type) {
    case AKV_CFG_STRING:
    case AKV_CFG_ENUM: {
        const char *const *s = cfield(cfg, e);

        return *s && **s;
    }
    case AKV_CFG_STRLIST:
        return ((const struct akv_strlist *)cfield(cfg, e))->n > 0;
    case AKV_CFG_PAIRS:
        return ((const struct akv_pairs *)cfield(cfg, e))->n > 0;
    case AKV_CFG_INT:
    case AKV_CFG_BOOL:
    case AKV_CFG_DOUBLE:
        return 1;
    }
    return 0;
}

/* The settings \p path sets. */
static akv_err_t read_file(const struct akv_cfg_entry *schema, void *out,
                           const char *path, char *errstr, size_t errstr_size)
{
    struct stat st;
    config_t lc;
    akv_err_t err;

    errno = 0;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                        "%s: cannot read file: it is a directory", path);
    }
    config_init(&lc);
    if (!config_read_file(&lc, path)) {
        if (config_error_type(&lc) == CONFIG_ERR_FILE_IO) {
            err = akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                           "%s: cannot read file: %s", path,
                           errno ? strerror(errno) : "read error");
        } else {
            err =
                akv_errf(AKV_ERR_CONFIG, errstr, errstr_size, "%s:%d: %s",
                         config_error_file(&lc) ? config_error_file(&lc) : path,
                         config_error_line(&lc), config_error_text(&lc));
        }
    } else {
        err = walk(schema, out, config_root_setting(&lc), "", path, errstr,
                   errstr_size);
    }
    config_destroy(&lc);
    return err;
}

/* The environment variables, over the file. */
static akv_err_t read_env(const struct akv_cfg_entry *schema, void *out,
                          char *errstr, size_t errstr_size)
{
    const struct akv_cfg_entry *e;
    akv_err_t err;

    for (e = schema; e->name; e++) {
        const char *v = e->env ? getenv(e->env) : NULL;
        char where[128];

        if (v && *v) {
            snprintf(where, sizeof(where), "environment %s", e->env);
            err = set_from_text(e, out, v, where, errstr, errstr_size);
            if (err) {
                return err;
            }
        }
    }
    return AKV_OK;
}

static akv_err_t check_required(const struct akv_cfg_entry *schema,
                                const void *out, const char *where,
                                const char *prefix, char *errstr,
                                size_t errstr_size)
{
    const struct akv_cfg_entry *e;

    for (e = schema; e->name; e++) {
        if (!(e->flags & AKV_CFG_REQUIRED) || is_set(e, out) ||
            (prefix && strncmp(e->name, prefix, strlen(prefix)) != 0)) {
            continue;
        }
        if (e->env) {
            return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                            "%s: missing required setting '%s' (or "
                            "environment variable %s)",
                            where, e->name, e->env);
        }
        return akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                        "%s: missing required setting '%s'", where, e->name);
    }
    return AKV_OK;
}

akv_err_t akv_cfg_load_some(const struct akv_cfg_entry *schema, void *out,
                            const char *path, const char *required_prefix,
                            char *errstr, size_t errstr_size)
{
    const struct akv_cfg_entry *e;
    akv_err_t err;

    for (e = schema; e->name; e++) {
        if (e->def) {
            err = set_from_text(e, out, e->def, "default", errstr, errstr_size);
            if (err) {
                return err;
            }
        }
    }
    err = path ? read_file(schema, out, path, errstr, errstr_size) : AKV_OK;
    if (!err) {
        err = read_env(schema, out, errstr, errstr_size);
    }
    if (!err) {
        err = check_required(schema, out, path ? path : "environment",
                             required_prefix, errstr, errstr_size);
    }
    return err;
}

akv_err_t akv_cfg_load(const struct akv_cfg_entry *schema, void *out,
                       const char *path, char *errstr, size_t errstr_size)
{
    return akv_cfg_load_some(schema, out, path, NULL, errstr, errstr_size);
}

const char *akv_cfg_origin(const struct akv_cfg_entry *schema, const char *name,
                           const char *path, char *buf, size_t size)
{
    const struct akv_cfg_entry *e;

    for (e = schema; e->name; e++) {
        if (strcmp(e->name, name) == 0 && e->env && getenv(e->env) &&
            *getenv(e->env)) {
            snprintf(buf, size, "environment %s", e->env);
            return buf;
        }
    }
    snprintf(buf, size, "%s", path);
    return buf;
}

void akv_cfg_free(const struct akv_cfg_entry *schema, void *cfg)
{
    const struct akv_cfg_entry *e;

    for (e = schema; e->name; e++) {
        entry_clear(e, cfg);
    }
}

static void dump_value(const struct akv_cfg_entry *e, const void *cfg, FILE *fp)
{
    size_t i;

    switch (e->type) {
    case AKV_CFG_STRING:
    case AKV_CFG_ENUM: {
        const char *const *s = cfield(cfg, e);

        if (!*s) {
            fputs("(unset)", fp);
        } else if ((e->flags & AKV_CFG_SECRET) && **s) {
            fputs("\"********\"", fp);
        } else {
            fprintf(fp, "\"%s\"", *s);
        }
        break;
    }
    case AKV_CFG_INT:
        fprintf(fp, "%lld", *(const long long *)cfield(cfg, e));
        break;
    case AKV_CFG_BOOL:
        fputs(*(const int *)cfield(cfg, e) ? "true" : "false", fp);
        break;
    case AKV_CFG_DOUBLE:
        fprintf(fp, "%g", *(const double *)cfield(cfg, e));
        break;
    case AKV_CFG_STRLIST: {
        const struct akv_strlist *l = cfield(cfg, e);

        fputc('[', fp);
        for (i = 0; i < l->n; i++) {
            fprintf(fp, "%s\"%s\"", i ? ", " : "", l->v[i]);
        }
        fputc(']', fp);
        break;
    }
    case AKV_CFG_PAIRS: {
        const struct akv_pairs *p = cfield(cfg, e);

        fputc('(', fp);
        for (i = 0; i < p->n; i++) {
            /* librdkafka properties may carry SASL passwords; a reference
             * to a file or a variable ("@file:", "@env:") is no secret. */
            int secret = (strstr(p->names[i], "password") ||
                          strstr(p->names[i], "secret")) &&
                         !(p->values[i][0] == '@' && p->values[i][1] != '@');

            fprintf(fp, "%s(\"%s\", \"%s\")", i ? ", " : "", p->names[i],
                    secret ? "********" : p->values[i]);
        }
        fputc(')', fp);
        break;
    }
    }
}

void akv_cfg_dump(const struct akv_cfg_entry *schema, const void *cfg, FILE *fp)
{
    const struct akv_cfg_entry *e;

    for (e = schema; e->name; e++) {
        fprintf(fp, "%s = ", e->name);
        dump_value(e, cfg, fp);
        fputc('\n', fp);
    }
}

/* One setting's value as akv_cfg_dump() prints it (malloc'd; NULL when
 * out of memory). */
static char *value_text(const struct akv_cfg_entry *e, const void *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *fp = open_memstream(&text, &len);

    if (!fp) {
        return NULL;
    }
    dump_value(e, cfg, fp);
    if (fclose(fp) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

int akv_cfg_diff(const struct akv_cfg_entry *schema, const void *a,
                 const void *b, akv_cfg_diff_fn *fn, void *ctx)
{
    const struct akv_cfg_entry *e;
    int n = 0;

    for (e = schema; e->name; e++) {
        char *was = value_text(e, a);
        char *now = value_text(e, b);

        if (!was || !now) {
            free(was);
            free(now);
            return -1;
        }
        if (strcmp(was, now) != 0) {
            fn(ctx, e->name, was, now);
            n++;
        }
        free(was);
        free(now);
    }
    return n;
}

void akv_cfg_describe(const struct akv_cfg_entry *schema, FILE *fp)
{
    static const char *const words[] = {
        [AKV_CFG_STRING] = "string",
        [AKV_CFG_INT] = "integer",
        [AKV_CFG_BOOL] = "boolean",
        [AKV_CFG_DOUBLE] = "number",
        [AKV_CFG_ENUM] = "string",
        [AKV_CFG_STRLIST] = "array of strings",
        [AKV_CFG_PAIRS] = "list of (name, value)",
    };
    const struct akv_cfg_entry *e;
    char choices[256];

    fputs("| setting | type | default | environment | description |\n"
          "|---|---|---|---|---|\n",
          fp);
    for (e = schema; e->name; e++) {
        fprintf(fp, "| `%s` | %s", e->name, words[e->type]);
        if (e->type == AKV_CFG_INT || e->type == AKV_CFG_DOUBLE) {
            fprintf(fp, " %lld..%lld", e->min, e->max);
        } else if (e->type == AKV_CFG_ENUM) {
            choices_text(e, choices, sizeof(choices));
            fprintf(fp, ": %s", choices);
        }
        fputs(" | ", fp);
        if (e->flags & AKV_CFG_REQUIRED) {
            fputs("required", fp);
        } else if (e->def && *e->def) {
            fprintf(fp, "`%s`", e->def);
        } else if (e->def) {
            fputs("empty", fp);
        }
        fprintf(fp, " | %s | %s |\n", e->env ? e->env : "", e->desc);
    }
}

int akv_strlist_contains(const struct akv_strlist *l, const char *s)
{
    return s ? akv_strlist_contains_n(l, s, strlen(s)) : 0;
}

int akv_strlist_contains_n(const struct akv_strlist *l, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < l->n; i++) {
        if (strlen(l->v[i]) == n && memcmp(l->v[i], s, n) == 0) {
            return 1;
        }
    }
    return 0;
}
