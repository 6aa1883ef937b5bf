/*
 * metrics — Prometheus registry, lock-free updates, text exposition 0.0.4.
 *
 * One mutex per registry guards the lists of families and series; values
 * are _Atomic uint64_t updated with relaxed ordering (doubles as their bit
 * patterns, added with a compare-and-swap loop). A histogram keeps one
 * count per bucket, not cumulative, and no separate total: the renderer
 * adds them up, so le="+Inf" and _count always agree.
 *
 * Numbers are formatted with snprintf and checked with strtod, both of
 * which follow LC_NUMERIC; the worker never calls setlocale, so the
 * decimal point is '.'.
 */
#include "metrics.h"

#include "utf8.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct akv_metric {
    struct akv_metric_family *fam;
    struct akv_metric *prev;
    struct akv_metric *next;
    uint64_t hash;                             /**< of the label values */
    int stale;                                 /**< see family_mark */
    const char *values[AKV_METRIC_MAX_LABELS]; /**< UTF-8, in this block */
    _Atomic uint64_t value;                    /**< bits of a double */
    _Atomic uint64_t buckets[];                /**< histogram, +Inf last */
};

struct akv_metric_family {
    struct akv_metrics *reg;
    struct akv_metric_family *next;
    enum akv_metric_type type;
    char *name;
    char *help; /**< UTF-8, unescaped */
    size_t nlabels;
    char *labels[AKV_METRIC_MAX_LABELS];
    double *bounds;
    size_t nbounds;
    size_t max_series;
    size_t nseries;
    struct akv_metric *head;
    struct akv_metric *tail;
};

struct akv_metrics {
    pthread_mutex_t lock;
    struct akv_metric_family *head;
    struct akv_metric_family *tail;
};

/* ---- doubles in atomics ---- */

static uint64_t dbl_bits(double v)
{
    uint64_t u;

    memcpy(&u, &v, sizeof(u));
    return u;
}

static double bits_dbl(uint64_t u)
{
    double v;

    memcpy(&v, &u, sizeof(v));
    return v;
}

static void atomic_add_dbl(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);

    while (!atomic_compare_exchange_weak_explicit(
        p, &old, dbl_bits(bits_dbl(old) + v), memory_order_relaxed,
        memory_order_relaxed)) {
    }
}

/* ---- UTF-8 ---- */

/* Length of \p s once every byte outside a valid sequence is replaced by
 * U+FFFD (3 bytes); *clean is set to 0 when there is such a byte. */
static size_t utf8_clean_len(const char *s, int *clean)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = 0;

    while (*p) {
        size_t n = akv_utf8_seq(p);

        if (n == 0) {
            *clean = 0;
            len += 3;
            p++;
        } else {
            len += n;
            p += n;
        }
    }
    return len;
}

/* Copies \p s to \p out with U+FFFD for bad bytes; returns the end. */
static char *utf8_clean_copy(char *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        size_t n = akv_utf8_seq(p);

        if (n == 0) {
            memcpy(out, "\xef\xbf\xbd", 3);
            out += 3;
            p++;
        } else {
            memcpy(out, p, n);
            out += n;
            p += n;
        }
    }
    *out = '\0';
    return out;
}

static char *utf8_clean_dup(const char *s)
{
    int clean = 1;
    char *d = malloc(utf8_clean_len(s, &clean) + 1);

    if (d) {
        utf8_clean_copy(d, s);
    }
    return d;
}

/* ---- names ---- */

static int is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int valid_metric_name(const char *s)
{
    if (!s || !(is_alpha_(*s) || *s == ':')) {
        return 0;
    }
    for (s++; *s; s++) {
        if (!(is_alpha_(*s) || is_digit(*s) || *s == ':')) {
            return 0;
        }
    }
    return 1;
}

static int valid_label_name(const char *s)
{
    if (!s || !is_alpha_(*s) || (s[0] == '_' && s[1] == '_')) {
        return 0;
    }
    for (s++; *s; s++) {
        if (!(is_alpha_(*s) || is_digit(*s))) {
            return 0;
        }
    }
    return 1;
}

/* The names a family's samples and HELP/TYPE lines use: the name itself,
 * plus _bucket, _sum and _count for a histogram. */
static const char *const hist_suffixes[] = {"", "_bucket", "_sum", "_count"};

static size_t nsuffixes(enum akv_metric_type type)
{
    return type == AKV_METRIC_HISTOGRAM ? 4 : 1;
}

/* Whether a followed by sa equals b followed by sb. */
static int cat_equal(const char *a, const char *sa, const char *b,
                     const char *sb)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    size_t n = la + strlen(sa);
    size_t i;

    if (n != lb + strlen(sb)) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        char ca = i < la ? a[i] : sa[i - la];
        char cb = i < lb ? b[i] : sb[i - lb];

        if (ca != cb) {
            return 0;
        }
    }
    return 1;
}

static int names_clash(const struct akv_metric_family *f,
                       enum akv_metric_type type, const char *name)
{
    size_t i;
    size_t j;

    for (i = 0; i < nsuffixes(f->type); i++) {
        for (j = 0; j < nsuffixes(type); j++) {
            if (cat_equal(f->name, hist_suffixes[i], name, hist_suffixes[j])) {
                return 1;
            }
        }
    }
    return 0;
}

/* ---- registry and families ---- */

struct akv_metrics *akv_metrics_new(void)
{
    struct akv_metrics *reg = calloc(1, sizeof(*reg));

    if (!reg) {
        return NULL;
    }
    if (pthread_mutex_init(&reg->lock, NULL) != 0) {
        free(reg);
        return NULL;
    }
    return reg;
}

static void family_free(struct akv_metric_family *f)
{
    struct akv_metric *s;
    struct akv_metric *next;
    size_t i;

    for (s = f->head; s; s = next) {
        next = s->next;
        free(s);
    }
    for (i = 0; i < f->nlabels; i++) {
        free(f->labels[i]);
    }
    free(f->bounds);
    free(f->help);
    free(f->name);
    free(f);
}

void akv_metrics_free(struct akv_metrics *reg)
{
    struct akv_metric_family *f;
    struct akv_metric_family *next;

    if (!reg) {
        return;
    }
    for (f = reg->head; f; f = next) {
        next = f->next;
        family_free(f);
    }
    pthread_mutex_destroy(&reg->lock);
    free(reg);
}

static akv_err_t check_spec(const struct akv_metric_spec *spec, size_t *nlabels,
                            char *errstr, size_t errstr_size)
{
    size_t n = 0;
    size_t i;
    size_t j;

    if (spec->type != AKV_METRIC_COUNTER && spec->type != AKV_METRIC_GAUGE &&
        spec->type != AKV_METRIC_HISTOGRAM) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "metrics: unknown metric type %d", (int)spec->type);
    }
    if (!valid_metric_name(spec->name)) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "metrics: invalid metric name \"%.64s\"",
                        spec->name ? spec->name : "(null)");
    }
    if (!spec->help) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "metrics: %s: no help text", spec->name);
    }
    while (n < AKV_METRIC_MAX_LABELS && spec->labels[n]) {
        n++;
    }
    for (i = n; i < AKV_METRIC_MAX_LABELS; i++) {
        if (spec->labels[i]) {
            return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                            "metrics: %s: label name after the end of the list",
                            spec->name);
        }
    }
    for (i = 0; i < n; i++) {
        const char *l = spec->labels[i];

        if (!valid_label_name(l) ||
            (spec->type == AKV_METRIC_HISTOGRAM && strcmp(l, "le") == 0)) {
            return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                            "metrics: %s: invalid label name \"%.64s\"",
                            spec->name, l);
        }
        for (j = 0; j < i; j++) {
            if (strcmp(spec->labels[j], l) == 0) {
                return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                                "metrics: %s: label \"%.64s\" twice",
                                spec->name, l);
            }
        }
    }
    if (spec->type != AKV_METRIC_HISTOGRAM) {
        if (spec->nbuckets > 0) {
            return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                            "metrics: %s: buckets for a non-histogram",
                            spec->name);
        }
    } else if (spec->nbuckets > AKV_METRIC_MAX_BUCKETS ||
               (spec->nbuckets > 0 && !spec->buckets)) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "metrics: %s: bad bucket list", spec->name);
    }
    for (i = 0; i < spec->nbuckets; i++) {
        if (!isfinite(spec->buckets[i]) ||
            (i > 0 && !(spec->buckets[i] > spec->buckets[i - 1]))) {
            return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                            "metrics: %s: bucket bounds must be finite and "
                            "strictly ascending",
                            spec->name);
        }
    }
    *nlabels = n;
    return AKV_OK;
}

static uint64_t values_hash(const char *const *values, size_t n);
static struct akv_metric *series_new(struct akv_metric_family *f,
                                     const char *const *values,
                                     const size_t *lens, uint64_t hash);
static void series_link(struct akv_metric_family *f, struct akv_metric *s);

/* A family as \p spec (checked) describes it, with its one series when it
 * has no labels. @returns NULL when out of memory. */
static struct akv_metric_family *family_new(struct akv_metrics *reg,
                                            const struct akv_metric_spec *spec,
                                            size_t nlabels)
{
    struct akv_metric_family *f = calloc(1, sizeof(*f));
    akv_err_t err;
    size_t i;

    if (!f) {
        return NULL;
    }
    f->reg = reg;
    f->type = spec->type;
    f->max_series =
        spec->max_series ? spec->max_series : AKV_METRIC_DEFAULT_MAX_SERIES;
    f->name = strdup(spec->name);
    f->help = utf8_clean_dup(spec->help);
    err = f->name && f->help ? AKV_OK : AKV_ERR_NOMEM;
    for (i = 0; i < nlabels && err == AKV_OK; i++) {
        f->labels[i] = strdup(spec->labels[i]);
        if (!f->labels[i]) {
            err = AKV_ERR_NOMEM;
        }
        f->nlabels = i + 1;
    }
    if (err == AKV_OK && spec->nbuckets > 0) {
        f->bounds = malloc(spec->nbuckets * sizeof(double));
        if (f->bounds) {
            memcpy(f->bounds, spec->buckets, spec->nbuckets * sizeof(double));
            f->nbounds = spec->nbuckets;
        } else {
            err = AKV_ERR_NOMEM;
        }
    }
    if (err == AKV_OK && nlabels == 0) {
        size_t none = 0;
        struct akv_metric *s = series_new(f, NULL, &none, values_hash(NULL, 0));

        if (s) {
            series_link(f, s);
        } else {
            err = AKV_ERR_NOMEM;
        }
    }
    if (err != AKV_OK) {
        family_free(f);
        return NULL;
    }
    return f;
}

/* Appends \p f to the registry unless its names clash with those of a
 * family there (a histogram's _bucket, _sum and _count included).
 * @returns that family, or NULL when \p f was added. */
static const struct akv_metric_family *family_add(struct akv_metrics *reg,
                                                  struct akv_metric_family *f)
{
    struct akv_metric_family *o;

    pthread_mutex_lock(&reg->lock);
    for (o = reg->head; o; o = o->next) {
        if (names_clash(o, f->type, f->name)) {
            break;
        }
    }
    if (!o) {
        if (reg->tail) {
            reg->tail->next = f;
        } else {
            reg->head = f;
        }
        reg->tail = f;
    }
    pthread_mutex_unlock(&reg->lock);
    return o;
}

akv_err_t akv_metrics_family(struct akv_metrics *reg,
                             const struct akv_metric_spec *spec,
                             struct akv_metric_family **out, char *errstr,
                             size_t errstr_size)
{
    struct akv_metric_family *f;
    const struct akv_metric_family *o;
    size_t nlabels = 0;
    akv_err_t err;

    *out = NULL;
    err = check_spec(spec, &nlabels, errstr, errstr_size);
    if (err != AKV_OK) {
        return err;
    }
    f = family_new(reg, spec, nlabels);
    if (!f) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size,
                        "metrics: out of memory");
    }
    o = family_add(reg, f);
    if (o) {
        err = akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                       "metrics: %s clashes with the metric %s", f->name,
                       o->name);
        family_free(f);
        return err;
    }
    *out = f;
    return AKV_OK;
}

/* ---- series ---- */

static uint64_t values_hash(const char *const *values, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    size_t i;
    const unsigned char *p;

    for (i = 0; i < n; i++) {
        for (p = (const unsigned char *)values[i]; *p; p++) {
            h = (h ^ *p) * 0x100000001b3ULL;
        }
        /* 0xff never occurs in UTF-8: a separator */
        h = (h ^ 0xff) * 0x100000001b3ULL;
    }
    return h;
}

static size_t nslots(const struct akv_metric_family *f)
{
    return f->type == AKV_METRIC_HISTOGRAM ? f->nbounds + 1 : 0;
}

/* One block: the struct, the bucket counts, then the label values. */
static struct akv_metric *series_new(struct akv_metric_family *f,
                                     const char *const *values,
                                     const size_t *lens, uint64_t hash)
{
    size_t slots = nslots(f);
    size_t size = sizeof(struct akv_metric) + slots * sizeof(_Atomic uint64_t);
    struct akv_metric *s;
    char *p;
    size_t i;

    for (i = 0; i < f->nlabels; i++) {
        size += lens[i] + 1;
    }
    s = calloc(1, size);
    if (!s) {
        return NULL;
    }
    s->fam = f;
    s->hash = hash;
    atomic_init(&s->value, dbl_bits(0.0));
    for (i = 0; i < slots; i++) {
        atomic_init(&s->buckets[i], 0);
    }
    p = (char *)&s->buckets[slots];
    for (i = 0; i < f->nlabels; i++) {
        memcpy(p, values[i], lens[i] + 1);
        s->values[i] = p;
        p += lens[i] + 1;
    }
    return s;
}

static void series_link(struct akv_metric_family *f, struct akv_metric *s)
{
    s->prev = f->tail;
    s->next = NULL;
    if (f->tail) {
        f->tail->next = s;
    } else {
        f->head = s;
    }
    f->tail = s;
    f->nseries++;
}

static void series_unlink(struct akv_metric_family *f, struct akv_metric *s)
{
    if (s->prev) {
        s->prev->next = s->next;
    } else {
        f->head = s->next;
    }
    if (s->next) {
        s->next->prev = s->prev;
    } else {
        f->tail = s->prev;
    }
    f->nseries--;
}

static struct akv_metric *series_find(const struct akv_metric_family *f,
                                      const char *const *values, uint64_t hash)
{
    struct akv_metric *s;
    size_t i;

    for (s = f->head; s; s = s->next) {
        if (s->hash != hash) {
            continue;
        }
        for (i = 0; i < f->nlabels; i++) {
            if (strcmp(s->values[i], values[i]) != 0) {
                break;
            }
        }
        if (i == f->nlabels) {
            return s;
        }
    }
    return NULL;
}

/* Points \p clean at the label values made valid UTF-8 (copies in *block
 * when needed, which the caller frees) and sets their lengths.
 * Returns 0, or -1 for a NULL value or when out of memory. */
static int clean_values(const struct akv_metric_family *f,
                        const char *const *values, const char **clean,
                        size_t *lens, char **block)
{
    int ok = 1;
    size_t total = 0;
    size_t i;
    char *p;

    *block = NULL;
    for (i = 0; i < f->nlabels; i++) {
        if (!values || !values[i]) {
            return -1;
        }
        lens[i] = utf8_clean_len(values[i], &ok);
        total += lens[i] + 1;
        clean[i] = values[i];
    }
    if (ok) {
        return 0;
    }
    p = *block = malloc(total);
    if (!p) {
        return -1;
    }
    for (i = 0; i < f->nlabels; i++) {
        clean[i] = p;
        p = utf8_clean_copy(p, values[i]) + 1;
    }
    return 0;
}

struct akv_metric *akv_metric_get(struct akv_metric_family *fam,
                                  const char *const *values)
{
    const char *clean[AKV_METRIC_MAX_LABELS];
    size_t lens[AKV_METRIC_MAX_LABELS] = {0};
    char *block;
    uint64_t hash;
    struct akv_metric *s;

    if (!fam || clean_values(fam, values, clean, lens, &block) != 0) {
        return NULL;
    }
    hash = values_hash(clean, fam->nlabels);
    pthread_mutex_lock(&fam->reg->lock);
    s = series_find(fam, clean, hash);
    if (!s && fam->nseries < fam->max_series) {
        s = series_new(fam, clean, lens, hash);
        if (s) {
            series_link(fam, s);
        }
    }
    if (s) {
        s->stale = 0;
    }
    pthread_mutex_unlock(&fam->reg->lock);
    free(block);
    return s;
}

void akv_metric_remove(struct akv_metric *s)
{
    struct akv_metric_family *f;

    if (!s) {
        return;
    }
    f = s->fam;
    pthread_mutex_lock(&f->reg->lock);
    series_unlink(f, s);
    pthread_mutex_unlock(&f->reg->lock);
    free(s);
}

int akv_metric_remove_labels(struct akv_metric_family *fam,
                             const char *const *values)
{
    const char *clean[AKV_METRIC_MAX_LABELS];
    size_t lens[AKV_METRIC_MAX_LABELS] = {0};
    char *block;
    struct akv_metric *s;

    if (!fam || clean_values(fam, values, clean, lens, &block) != 0) {
        return 0;
    }
    pthread_mutex_lock(&fam->reg->lock);
    s = series_find(fam, clean, values_hash(clean, fam->nlabels));
    if (s) {
        series_unlink(fam, s);
    }
    pthread_mutex_unlock(&fam->reg->lock);
    free(block);
    free(s);
    return s != NULL;
}

void akv_metric_family_clear(struct akv_metric_family *fam)
{
    struct akv_metric *s;

    if (!fam) {
        return;
    }
    pthread_mutex_lock(&fam->reg->lock);
    s = fam->head;
    fam->head = NULL;
    fam->tail = NULL;
    fam->nseries = 0;
    pthread_mutex_unlock(&fam->reg->lock);
    while (s) {
        struct akv_metric *next = s->next;

        free(s);
        s = next;
    }
}

void akv_metric_family_mark(struct akv_metric_family *fam)
{
    struct akv_metric *s;

    if (!fam) {
        return;
    }
    pthread_mutex_lock(&fam->reg->lock);
    for (s = fam->head; s; s = s->next) {
        s->stale = 1;
    }
    pthread_mutex_unlock(&fam->reg->lock);
}

size_t akv_metric_family_sweep(struct akv_metric_family *fam)
{
    struct akv_metric *s;
    struct akv_metric *next;
    struct akv_metric *dead = NULL;
    size_t n = 0;

    if (!fam) {
        return 0;
    }
    pthread_mutex_lock(&fam->reg->lock);
    for (s = fam->head; s; s = next) {
        next = s->next;
        if (s->stale) {
            series_unlink(fam, s);
            s->next = dead;
            dead = s;
            n++;
        }
    }
    pthread_mutex_unlock(&fam->reg->lock);
    for (s = dead; s; s = next) {
        next = s->next;
        free(s);
    }
    return n;
}

size_t akv_metric_family_size(struct akv_metric_family *fam)
{
    size_t n;

    if (!fam) {
        return 0;
    }
    pthread_mutex_lock(&fam->reg->lock);
    n = fam->nseries;
    pthread_mutex_unlock(&fam->reg->lock);
    return n;
}

/* ---- updates (lock-free) ---- */

void akv_metric_add(struct akv_metric *s, double v)
{
    if (!s || s->fam->type == AKV_METRIC_HISTOGRAM) {
        return;
    }
    if (s->fam->type == AKV_METRIC_COUNTER && !(v >= 0)) {
        return;
    }
    atomic_add_dbl(&s->value, v);
}

void akv_metric_inc(struct akv_metric *s)
{
    akv_metric_add(s, 1.0);
}

void akv_metric_set(struct akv_metric *s, double v)
{
    if (!s || s->fam->type != AKV_METRIC_GAUGE) {
        return;
    }
    atomic_store_explicit(&s->value, dbl_bits(v), memory_order_relaxed);
}

void akv_metric_observe(struct akv_metric *s, double v)
{
    const struct akv_metric_family *f;
    size_t lo = 0;
    size_t hi;

    if (!s || s->fam->type != AKV_METRIC_HISTOGRAM || isnan(v)) {
        return;
    }
    f = s->fam;
    /* the first bucket whose upper bound is >= v; nbounds is +Inf */
    hi = f->nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (v <= f->bounds[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    atomic_fetch_add_explicit(&s->buckets[lo], 1, memory_order_relaxed);
    atomic_add_dbl(&s->value, v);
}

double akv_metric_value(const struct akv_metric *s)
{
    if (!s) {
        return 0;
    }
    return bits_dbl(atomic_load_explicit((_Atomic uint64_t *)&s->value,
                                         memory_order_relaxed));
}

uint64_t akv_metric_count(const struct akv_metric *s)
{
    uint64_t n = 0;
    size_t i;

    if (!s || s->fam->type != AKV_METRIC_HISTOGRAM) {
        return 0;
    }
    for (i = 0; i <= s->fam->nbounds; i++) {
        n += atomic_load_explicit((_Atomic uint64_t *)&s->buckets[i],
                                  memory_order_relaxed);
    }
    return n;
}

/* ---- exposition ---- */

size_t akv_metrics_format_double(double v, char *out)
{
    int n = 0;
    int prec;

    if (isnan(v)) {
        memcpy(out, "NaN", 4);
        return 3;
    }
    if (isinf(v)) {
        memcpy(out, v > 0 ? "+Inf" : "-Inf", 5);
        return 4;
    }
    if (v == 0) { /* also -0 */
        memcpy(out, "0", 2);
        return 1;
    }
    if (fabs(v) <= 9007199254740992.0 && v == trunc(v)) {
        /* exact integer: all digits, no exponent */
        n = snprintf(out, AKV_METRIC_DOUBLE_MAX, "%.0f", v);
        return (size_t)n;
    }
    for (prec = 15; prec <= 17; prec++) {
        n = snprintf(out, AKV_METRIC_DOUBLE_MAX, "%.*g", prec, v);
        if (strtod(out, NULL) == v) {
            break;
        }
    }
    return (size_t)n;
}

/* An akv_buf writer that keeps the first error and skips the rest. */
struct writer {
    struct akv_buf *b;
    akv_err_t err;
};

static void put(struct writer *o, const char *s, size_t n)
{
    if (o->err == AKV_OK) {
        o->err = akv_buf_append(o->b, s, n);
    }
}

static void puts_(struct writer *o, const char *s)
{
    put(o, s, strlen(s));
}

static void put_double(struct writer *o, double v)
{
    char num[AKV_METRIC_DOUBLE_MAX];

    put(o, num, akv_metrics_format_double(v, num));
}

static void put_u64(struct writer *o, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof(num), "%llu", (unsigned long long)v);

    put(o, num, (size_t)n);
}

/* Writes \p s with backslash and newline escaped, and double quotes too
 * when \p quotes (label values; HELP text leaves them alone). */
static void put_escaped(struct writer *o, const char *s, int quotes)
{
    const char *run = s;

    for (; *s; s++) {
        const char *esc = NULL;

        if (*s == '\\') {
            esc = "\\\\";
        } else if (*s == '\n') {
            esc = "\\n";
        } else if (*s == '"' && quotes) {
            esc = "\\\"";
        }
        if (esc) {
            put(o, run, (size_t)(s - run));
            put(o, esc, 2);
            run = s + 1;
        }
    }
    put(o, run, (size_t)(s - run));
}

/* name + suffix + {labels[,le="..."]} + ' ' */
static void put_sample_start(struct writer *o, const struct akv_metric *s,
                             const char *suffix, const char *le)
{
    const struct akv_metric_family *f = s->fam;
    size_t i;

    puts_(o, f->name);
    puts_(o, suffix);
    if (f->nlabels > 0 || le) {
        put(o, "{", 1);
        for (i = 0; i < f->nlabels; i++) {
            if (i > 0) {
                put(o, ",", 1);
            }
            puts_(o, f->labels[i]);
            put(o, "=\"", 2);
            put_escaped(o, s->values[i], 1);
            put(o, "\"", 1);
        }
        if (le) {
            puts_(o, f->nlabels > 0 ? ",le=\"" : "le=\"");
            puts_(o, le);
            put(o, "\"", 1);
        }
        put(o, "}", 1);
    }
    put(o, " ", 1);
}

static void put_histogram(struct writer *o, const struct akv_metric *s)
{
    const struct akv_metric_family *f = s->fam;
    char le[AKV_METRIC_DOUBLE_MAX];
    uint64_t cumulative = 0;
    size_t i;

    for (i = 0; i <= f->nbounds; i++) {
        cumulative += atomic_load_explicit((_Atomic uint64_t *)&s->buckets[i],
                                           memory_order_relaxed);
        if (i < f->nbounds) {
            akv_metrics_format_double(f->bounds[i], le);
        } else {
            memcpy(le, "+Inf", 5);
        }
        put_sample_start(o, s, "_bucket", le);
        put_u64(o, cumulative);
        put(o, "\n", 1);
    }
    put_sample_start(o, s, "_sum", NULL);
    put_double(o, akv_metric_value(s));
    put(o, "\n", 1);
    put_sample_start(o, s, "_count", NULL);
    put_u64(o, cumulative);
    put(o, "\n", 1);
}

static const char *const type_names[] = {"counter", "gauge", "histogram"};

akv_err_t akv_metrics_render(struct akv_metrics *reg, struct akv_buf *out)
{
    struct writer o = {out, AKV_OK};
    size_t start = out->len;
    const struct akv_metric_family *f;
    const struct akv_metric *s;

    pthread_mutex_lock(&reg->lock);
    for (f = reg->head; f && o.err == AKV_OK; f = f->next) {
        puts_(&o, "# HELP ");
        puts_(&o, f->name);
        put(&o, " ", 1);
        put_escaped(&o, f->help, 0);
        puts_(&o, "\n# TYPE ");
        puts_(&o, f->name);
        put(&o, " ", 1);
        puts_(&o, type_names[f->type]);
        put(&o, "\n", 1);
        for (s = f->head; s && o.err == AKV_OK; s = s->next) {
            if (f->type == AKV_METRIC_HISTOGRAM) {
                put_histogram(&o, s);
            } else {
                put_sample_start(&o, s, "", NULL);
                put_double(&o, akv_metric_value(s));
                put(&o, "\n", 1);
            }
        }
    }
    pthread_mutex_unlock(&reg->lock);
    if (o.err != AKV_OK) {
        out->len = start;
        if (out->data) {
            out->data[start] = '\0';
        }
    }
    return o.err;
}
