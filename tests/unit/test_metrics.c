/*
 * test_metrics — the Prometheus registry: exposition text, escaping, name
 * validation, series removal and rebuilds, concurrent updates and renders.
 *
 * Every rendered text also goes through parse_exposition(), a strict
 * checker of the text format 0.0.4 written here: each line must match one
 * of three regular expressions (HELP, TYPE, sample), be valid UTF-8 and
 * belong to the family announced before it, histograms must be complete
 * and cumulative, and no series may appear twice.
 */
#include "testutil.h"

#include "buf.h"
#include "metrics.h"

#include <float.h>
#include <math.h>
#include <pthread.h>
#include <regex.h>
#include <stdatomic.h>
#include <stdint.h>

/* ---- the checker ---- */

#define NAME_RE  "[a-zA-Z_:][a-zA-Z0-9_:]*"
#define LNAME_RE "[a-zA-Z_][a-zA-Z0-9_]*"
/* "..." holding anything but " and \, or one of \\ \" \n */
#define LVAL_RE  "\"([^\"\\]|\\\\[n\"\\])*\""
#define FLOAT_RE "(\\+Inf|-Inf|NaN|-?[0-9]+(\\.[0-9]+)?(e[+-][0-9]+)?)"

static const char *const line_res[] = {
    /* HELP: anything but \, or one of \\ \n */
    "^# HELP " NAME_RE " ([^\\]|\\\\[n\\])*$",
    "^# TYPE " NAME_RE " (counter|gauge|histogram)$",
    "^" NAME_RE "(\\{" LNAME_RE "=" LVAL_RE "(," LNAME_RE "=" LVAL_RE
    ")*\\})? " FLOAT_RE "$",
};

#define MAX_SAMPLE_LABELS 8

struct sample {
    char name[128];
    size_t nl;
    char lname[MAX_SAMPLE_LABELS][64];
    char *lval[MAX_SAMPLE_LABELS]; /* unescaped */
    double value;
};

struct parsed {
    struct sample *v;
    size_t n;
    char why[512];
};

static void parsed_free(struct parsed *p)
{
    size_t i;
    size_t j;

    for (i = 0; i < p->n; i++) {
        for (j = 0; j < p->v[i].nl; j++) {
            free(p->v[i].lval[j]);
        }
    }
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

/* Decodes code points and checks their ranges (a different method from
 * the module's, on purpose). */
static int utf8_valid(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned cp;
        size_t len;
        size_t k;

        if (s[i] < 0x80) {
            i++;
            continue;
        }
        if ((s[i] & 0xe0) == 0xc0) {
            cp = s[i] & 0x1f;
            len = 2;
        } else if ((s[i] & 0xf0) == 0xe0) {
            cp = s[i] & 0x0f;
            len = 3;
        } else if ((s[i] & 0xf8) == 0xf0) {
            cp = s[i] & 0x07;
            len = 4;
        } else {
            return 0;
        }
        if (i + len > n) {
            return 0;
        }
        for (k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
            (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            return 0;
        }
        i += len;
    }
    return 1;
}

/* Splits a line that matched the sample expression. */
static int split_sample(const char *line, struct sample *s)
{
    const char *q = line;
    size_t n = strcspn(q, "{ ");

    memset(s, 0, sizeof(*s));
    if (n >= sizeof(s->name)) {
        return -1;
    }
    memcpy(s->name, q, n);
    q += n;
    if (*q == '{') {
        q++;
        while (*q != '}') {
            size_t k = strcspn(q, "=");
            size_t vn = 0;
            char *v;

            if (s->nl == MAX_SAMPLE_LABELS || k >= sizeof(s->lname[0])) {
                while (s->nl > 0) {
                    free(s->lval[--s->nl]);
                }
                return -1;
            }
            memcpy(s->lname[s->nl], q, k);
            q += k + 2; /* =" */
            v = malloc(strlen(q) + 1);
            assert_non_null(v);
            while (*q != '"') {
                if (*q == '\\') {
                    v[vn++] = q[1] == 'n' ? '\n' : q[1];
                    q += 2;
                } else {
                    v[vn++] = *q++;
                }
            }
            v[vn] = '\0';
            s->lval[s->nl++] = v;
            q++;
            if (*q == ',') {
                q++;
            }
        }
        q++;
    }
    s->value = strtod(q + 1, NULL);
    return 0;
}

static char *append(char *w, const char *s)
{
    size_t n = strlen(s);

    memcpy(w, s, n);
    return w + n;
}

/* The name and labels of a sample; without le and with an empty name, the
 * labels that identify a histogram's series. */
static char *series_key(const struct sample *s, int with_le)
{
    size_t size = strlen(s->name) + 1;
    size_t i;
    char *k;
    char *w;

    for (i = 0; i < s->nl; i++) {
        size += strlen(s->lname[i]) + strlen(s->lval[i]) + 2;
    }
    k = malloc(size);
    assert_non_null(k);
    w = append(k, with_le ? s->name : "");
    for (i = 0; i < s->nl; i++) {
        if (!with_le && strcmp(s->lname[i], "le") == 0) {
            continue;
        }
        w = append(w, "\x01");
        w = append(w, s->lname[i]);
        w = append(w, "\x02");
        w = append(w, s->lval[i]);
    }
    *w = '\0';
    return k;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct hist_state {
    int step; /* 0 before a series, 1 in its buckets, 2 _sum, 3 _count */
    char *key;
    double prev_le;
    double prev_count;
};

/* Checks a sample against its family; \p why gets the reason. */
static const char *check_sample(const struct sample *s, const char *fam,
                                const char *type, struct hist_state *h)
{
    size_t flen = strlen(fam);
    const char *suffix;
    char *key;
    const char *err = NULL;

    if (strncmp(s->name, fam, flen) != 0) {
        return "sample of another family";
    }
    suffix = s->name + flen;
    if (strcmp(type, "histogram") != 0) {
        if (*suffix) {
            return "sample of another family";
        }
        if (strcmp(type, "counter") == 0 && !(s->value >= 0)) {
            return "counter below zero";
        }
        return NULL;
    }
    key = series_key(s, 0);
    if (strcmp(suffix, "_bucket") == 0) {
        double le = 0;

        if (s->nl == 0 || strcmp(s->lname[s->nl - 1], "le") != 0) {
            err = "bucket without le as last label";
        } else if (h->step == 0) {
            free(h->key);
            h->key = strdup(key);
            h->prev_le = -INFINITY;
            h->prev_count = 0;
            h->step = 1;
        } else if (h->step != 1 || strcmp(key, h->key) != 0) {
            err = "bucket out of place";
        }
        if (!err) {
            const char *l = s->lval[s->nl - 1];

            if (strcmp(l, "+Inf") == 0) {
                le = INFINITY;
            } else {
                char *end;

                le = strtod(l, &end);
                if (end == l || *end || !isfinite(le)) {
                    err = "bad le";
                }
            }
            if (err) {
                /* reported below */
            } else if (!(le > h->prev_le)) {
                err = "le not ascending";
            } else if (!(s->value >= h->prev_count) ||
                       s->value != floor(s->value)) {
                err = "bucket counts not cumulative";
            } else {
                h->prev_le = le;
                h->prev_count = s->value;
                if (isinf(le)) {
                    h->step = 2;
                }
            }
        }
    } else if (strcmp(suffix, "_sum") == 0) {
        if (h->step != 2 || strcmp(key, h->key) != 0) {
            err = "_sum out of place";
        } else {
            h->step = 3;
        }
    } else if (strcmp(suffix, "_count") == 0) {
        if (h->step != 3 || strcmp(key, h->key) != 0) {
            err = "_count out of place";
        } else if (s->value != h->prev_count) {
            err = "_count is not the +Inf bucket";
        } else {
            h->step = 0;
        }
    } else {
        err = "sample of another family";
    }
    free(key);
    return err;
}

/* Returns 0 when \p text is valid exposition text, with its samples in
 * \p p (parsed_free() them); -1 with the reason in p->why otherwise. */
static int parse_exposition(const char *text, struct parsed *p)
{
    regex_t re[3];
    char fam[128] = "";
    char type[16] = "";
    int expect_type = 0;
    char *fams[256];
    size_t nfams = 0;
    struct hist_state h = {0, NULL, 0, 0};
    size_t lineno = 0;
    size_t cap = 0;
    const char *q = text;
    const char *err = NULL;
    char *line = NULL;
    size_t i;

    memset(p, 0, sizeof(*p));
    for (i = 0; i < 3; i++) {
        assert_int_equal(regcomp(&re[i], line_res[i], REG_EXTENDED | REG_NOSUB),
                         0);
    }
    if (*text && text[strlen(text) - 1] != '\n') {
        err = "no newline at the end";
    }
    while (*q && !err) {
        size_t len = strcspn(q, "\n");

        free(line);
        line = strndup(q, len);
        assert_non_null(line);
        lineno++;
        q += len + (q[len] == '\n');
        if (!utf8_valid((const unsigned char *)line, len)) {
            err = "not UTF-8";
        } else if (regexec(&re[0], line, 0, NULL, 0) == 0) {
            size_t n = strcspn(line + 7, " ");

            if (expect_type || h.step != 0) {
                err = "HELP out of place";
                break;
            }
            memcpy(fam, line + 7, n);
            fam[n] = '\0';
            for (i = 0; i < nfams; i++) {
                if (strcmp(fams[i], fam) == 0) {
                    err = "family twice";
                }
            }
            assert_true(nfams < 256);
            fams[nfams++] = strdup(fam);
            expect_type = 1;
        } else if (regexec(&re[1], line, 0, NULL, 0) == 0) {
            size_t n = strcspn(line + 7, " ");

            if (!expect_type || n != strlen(fam) ||
                strncmp(line + 7, fam, n) != 0) {
                err = "TYPE without its HELP";
                break;
            }
            snprintf(type, sizeof(type), "%s", line + 8 + n);
            expect_type = 0;
        } else if (regexec(&re[2], line, 0, NULL, 0) == 0) {
            struct sample s;

            if (expect_type || !*fam) {
                err = "sample before HELP and TYPE";
                break;
            }
            if (split_sample(line, &s) != 0) {
                err = "sample too long for the checker";
                break;
            }
            if (p->n == cap) {
                cap = cap ? cap * 2 : 64;
                p->v = realloc(p->v, cap * sizeof(*p->v));
                assert_non_null(p->v);
            }
            p->v[p->n++] = s;
            err = check_sample(&s, fam, type, &h);
        } else {
            err = "not a HELP, TYPE or sample line";
        }
    }
    if (!err && (expect_type || h.step != 0)) {
        err = "ends inside a family or a histogram";
    }
    if (err) {
        snprintf(p->why, sizeof(p->why), "line %zu: %s: %.300s", lineno, err,
                 line ? line : "");
    } else if (p->n > 0) {
        char **keys = malloc(p->n * sizeof(*keys));

        assert_non_null(keys);
        for (i = 0; i < p->n; i++) {
            keys[i] = series_key(&p->v[i], 1);
        }
        qsort(keys, p->n, sizeof(*keys), cmp_str);
        for (i = 1; i < p->n && !err; i++) {
            if (strcmp(keys[i - 1], keys[i]) == 0) {
                err = "series twice";
                snprintf(p->why, sizeof(p->why), "%s: %.300s", err, keys[i]);
            }
        }
        for (i = 0; i < p->n; i++) {
            free(keys[i]);
        }
        free(keys);
    }
    free(line);
    free(h.key);
    for (i = 0; i < nfams; i++) {
        free(fams[i]);
    }
    for (i = 0; i < 3; i++) {
        regfree(&re[i]);
    }
    if (err) {
        parsed_free(p);
        return -1;
    }
    return 0;
}

/* The first sample named \p name whose first label value is \p lval0
 * (any when NULL) and, for buckets, whose le is \p le. */
static const struct sample *find(const struct parsed *p, const char *name,
                                 const char *lval0, const char *le)
{
    size_t i;

    for (i = 0; i < p->n; i++) {
        const struct sample *s = &p->v[i];

        if (strcmp(s->name, name) != 0 ||
            (lval0 && (s->nl == 0 || strcmp(s->lval[0], lval0) != 0)) ||
            (le && (s->nl == 0 || strcmp(s->lval[s->nl - 1], le) != 0))) {
            continue;
        }
        return s;
    }
    return NULL;
}

static void assert_exposition(const char *text)
{
    struct parsed p;

    if (parse_exposition(text, &p) != 0) {
        fail_msg("invalid exposition: %s\n%s", p.why, text);
    }
    parsed_free(&p);
}

/* ---- helpers ---- */

static char *render(struct akv_metrics *reg)
{
    struct akv_buf b;
    char *s;

    akv_buf_init(&b, 64 << 20);
    assert_int_equal(akv_metrics_render(reg, &b), AKV_OK);
    s = strdup(akv_buf_str(&b));
    assert_non_null(s);
    akv_buf_free(&b);
    return s;
}

static struct akv_metric_family *family(struct akv_metrics *reg,
                                        const struct akv_metric_spec *spec)
{
    struct akv_metric_family *f = NULL;
    char err[256] = "";

    if (akv_metrics_family(reg, spec, &f, err, sizeof(err)) != AKV_OK) {
        fail_msg("family %s: %s", spec->name, err);
    }
    assert_non_null(f);
    return f;
}

#define VALUES(...) ((const char *const[]){__VA_ARGS__})

/* ---- tests ---- */

static void checker_rejects_what_prometheus_would(void **state)
{
    static const char *const bad[] = {
        "# HELP a x\n# TYPE a counter\na{l=\"q\"q\"} 1\n",
        "# HELP a x\n# TYPE a counter\na{l=\"\\q\"} 1\n",
        "# HELP a x\n# TYPE a counter\na{l=\"x\ny\"} 1\n",
        "# HELP a x\n# TYPE a counter\na{l=\"\xff\"} 1\n",
        "# HELP a x\n# TYPE a counter\na 1",
        "# HELP a x\n# TYPE a counter\na 1,5\n",
        "# HELP a x\n# TYPE a counter\na inf\n",
        "# HELP a x\n# TYPE a counter\na -1\n",
        "# HELP a x\n# TYPE a counter\na{} 1\n",
        "# HELP a x\\\n# TYPE a counter\na 1\n",
        "# HELP a x\\t\n# TYPE a counter\na 1\n",
        "# HELP a x\n# TYPE a counter\nb 1\n",
        "# HELP a x\na 1\n",
        "# TYPE a counter\na 1\n",
        "# HELP a x\n# TYPE a counter\na{l=\"1\"} 1\na{l=\"1\"} 2\n",
        "# HELP a x\n# TYPE a gauge\n# HELP a x\n# TYPE a gauge\n",
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
        "h_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\n"
        "h_count 1\n",
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\n"
        "h_count 2\n",
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\",l=\"a\"} 1\n"
        "h_sum{l=\"a\"} 1\nh_count{l=\"a\"} 1\n",
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n",
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"2\"} 1\n"
        "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",
        "# HELP h x\n# TYPE h histogram\nh_bucket{l=\"a\",le=\"+Inf\"} 1\n"
        "h_sum{l=\"b\"} 1\nh_count{l=\"b\"} 1\n",
        "# HELP h x\n# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\n",
    };
    static const char *const good =
        "# HELP a x \\\\ \\n \"q\"\n# TYPE a counter\n"
        "a{l=\"\\\\ \\\" \\n \xc3\xa9\"} 1.5e-07\n"
        "# HELP g \n# TYPE g gauge\ng -Inf\n"
        "# HELP h x\n# TYPE h histogram\nh_bucket{l=\"a\",le=\"1\"} 1\n"
        "h_bucket{l=\"a\",le=\"+Inf\"} 2\nh_sum{l=\"a\"} NaN\n"
        "h_count{l=\"a\"} 2\n";
    struct parsed p;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_exposition(bad[i], &p) == 0) {
            parsed_free(&p);
            fail_msg("checker accepted bad text %zu:\n%s", i, bad[i]);
        }
    }
    assert_int_equal(parse_exposition(good, &p), 0);
    assert_int_equal(p.n, 6);
    assert_string_equal(p.v[0].lval[0], "\\ \" \n \xc3\xa9");
    parsed_free(&p);
}

static void renders_a_small_registry_exactly(void **state)
{
    static const double secs[] = {0.005, 0.1, 1, 2.5};
    struct akv_metrics *reg = akv_metrics_new();
    struct akv_metric_family *events;
    struct akv_metric_family *restarts;
    struct akv_metric_family *inflight;
    struct akv_metric_family *lag;
    struct akv_metric_family *sync;
    struct akv_metric_family *batch;
    struct akv_metric *ok;
    char *text;

    (void)state;
    assert_non_null(reg);
    events = family(reg, &(struct akv_metric_spec){
                             .type = AKV_METRIC_COUNTER,
                             .name = "akv_events_total",
                             .help = "Events read, by topic and result.",
                             .labels = {"topic", "result"},
                         });
    restarts = family(reg, &(struct akv_metric_spec){
                               .type = AKV_METRIC_COUNTER,
                               .name = "akv_restarts_total",
                               .help = "Restarts.",
                           });
    inflight = family(reg, &(struct akv_metric_spec){
                               .type = AKV_METRIC_GAUGE,
                               .name = "akv_inflight",
                               .help = "Syncs in flight.",
                           });
    lag = family(reg, &(struct akv_metric_spec){
                          .type = AKV_METRIC_GAUGE,
                          .name = "akv_partition_lag",
                          .help = "Lag of each partition.",
                          .labels = {"partition"},
                      });
    sync = family(reg, &(struct akv_metric_spec){
                           .type = AKV_METRIC_HISTOGRAM,
                           .name = "akv_sync_seconds",
                           .help = "Duration of one sync.",
                           .labels = {"result"},
                           .buckets = secs,
                           .nbuckets = 4,
                       });
    batch = family(reg, &(struct akv_metric_spec){
                            .type = AKV_METRIC_HISTOGRAM,
                            .name = "akv_batch",
                            .help = "Only +Inf.",
                        });
    (void)restarts;
    (void)lag;

    akv_metric_add(akv_metric_get(events, VALUES("authentik", "synced")), 2);
    akv_metric_inc(akv_metric_get(events, VALUES("authentik", "skipped")));
    akv_metric_inc(akv_metric_get(events, VALUES("authentik", "synced")));
    akv_metric_set(akv_metric_get(inflight, NULL), -2.5);
    ok = akv_metric_get(sync, VALUES("ok"));
    assert_non_null(akv_metric_get(sync, VALUES("failed")));
    akv_metric_observe(ok, 0.00390625);
    akv_metric_observe(ok, 0.0625);
    akv_metric_observe(ok, 1); /* on a bound: counted in le="1" */
    akv_metric_observe(ok, 2);
    akv_metric_observe(ok, 4);
    akv_metric_observe(ok, 4);
    akv_metric_observe(akv_metric_get(batch, NULL), 7);

    text = render(reg);
    assert_string_equal(
        text, "# HELP akv_events_total Events read, by topic and result.\n"
              "# TYPE akv_events_total counter\n"
              "akv_events_total{topic=\"authentik\",result=\"synced\"} 3\n"
              "akv_events_total{topic=\"authentik\",result=\"skipped\"} 1\n"
              "# HELP akv_restarts_total Restarts.\n"
              "# TYPE akv_restarts_total counter\n"
              "akv_restarts_total 0\n"
              "# HELP akv_inflight Syncs in flight.\n"
              "# TYPE akv_inflight gauge\n"
              "akv_inflight -2.5\n"
              "# HELP akv_partition_lag Lag of each partition.\n"
              "# TYPE akv_partition_lag gauge\n"
              "# HELP akv_sync_seconds Duration of one sync.\n"
              "# TYPE akv_sync_seconds histogram\n"
              "akv_sync_seconds_bucket{result=\"ok\",le=\"0.005\"} 1\n"
              "akv_sync_seconds_bucket{result=\"ok\",le=\"0.1\"} 2\n"
              "akv_sync_seconds_bucket{result=\"ok\",le=\"1\"} 3\n"
              "akv_sync_seconds_bucket{result=\"ok\",le=\"2.5\"} 4\n"
              "akv_sync_seconds_bucket{result=\"ok\",le=\"+Inf\"} 6\n"
              "akv_sync_seconds_sum{result=\"ok\"} 11.06640625\n"
              "akv_sync_seconds_count{result=\"ok\"} 6\n"
              "akv_sync_seconds_bucket{result=\"failed\",le=\"0.005\"} 0\n"
              "akv_sync_seconds_bucket{result=\"failed\",le=\"0.1\"} 0\n"
              "akv_sync_seconds_bucket{result=\"failed\",le=\"1\"} 0\n"
              "akv_sync_seconds_bucket{result=\"failed\",le=\"2.5\"} 0\n"
              "akv_sync_seconds_bucket{result=\"failed\",le=\"+Inf\"} 0\n"
              "akv_sync_seconds_sum{result=\"failed\"} 0\n"
              "akv_sync_seconds_count{result=\"failed\"} 0\n"
              "# HELP akv_batch Only +Inf.\n"
              "# TYPE akv_batch histogram\n"
              "akv_batch_bucket{le=\"+Inf\"} 1\n"
              "akv_batch_sum 7\n"
              "akv_batch_count 1\n");
    assert_exposition(text);
    free(text);
    assert_int_equal(akv_metric_count(ok), 6);
    assert_true(akv_metric_value(ok) == 11.06640625);
    akv_metrics_free(reg);
}

static void updates_follow_the_metric_type(void **state)
{
    static const double b[] = {-1, 0, 1};
    struct akv_metrics *reg = akv_metrics_new();
    struct akv_metric *c;
    struct akv_metric *g;
    struct akv_metric *h;
    char *text;

    (void)state;
    c = akv_metric_get(family(reg,
                              &(struct akv_metric_spec){
                                  .type = AKV_METRIC_COUNTER,
                                  .name = "c_total",
                                  .help = "c",
                              }),
                       NULL);
    g = akv_metric_get(family(reg,
                              &(struct akv_metric_spec){
                                  .type = AKV_METRIC_GAUGE,
                                  .name = "g",
                                  .help = "g",
                              }),
                       NULL);
    h = akv_metric_get(family(reg,
                              &(struct akv_metric_spec){
                                  .type = AKV_METRIC_HISTOGRAM,
                                  .name = "h",
                                  .help = "h",
                                  .buckets = b,
                                  .nbuckets = 3,
                              }),
                       NULL);
    /* counters only go up */
    akv_metric_add(c, 5);
    akv_metric_add(c, -1);
    akv_metric_add(c, NAN);
    akv_metric_set(c, 0);
    akv_metric_observe(c, 1);
    akv_metric_add(c, 0.5);
    assert_true(akv_metric_value(c) == 5.5);
    /* gauges go anywhere */
    akv_metric_set(g, 10);
    akv_metric_add(g, -12);
    akv_metric_inc(g);
    akv_metric_observe(g, 100);
    assert_true(akv_metric_value(g) == -1);
    /* histograms: NaN ignored, bounds inclusive, infinities at the ends */
    akv_metric_add(h, 3);
    akv_metric_set(h, 3);
    akv_metric_observe(h, NAN);
    akv_metric_observe(h, -1);
    akv_metric_observe(h, -INFINITY);
    akv_metric_observe(h, 0);
    akv_metric_observe(h, 0.5);
    akv_metric_observe(h, 1);
    akv_metric_observe(h, 1.0000001);
    assert_int_equal(akv_metric_count(h), 6);
    assert_int_equal(akv_metric_count(g), 0);
    /* NULL series: nothing happens */
    akv_metric_add(NULL, 1);
    akv_metric_inc(NULL);
    akv_metric_set(NULL, 1);
    akv_metric_observe(NULL, 1);
    akv_metric_remove(NULL);
    assert_true(akv_metric_value(NULL) == 0);
    assert_int_equal(akv_metric_count(NULL), 0);
    assert_null(akv_metric_get(NULL, NULL));
    assert_int_equal(akv_metric_remove_labels(NULL, NULL), 0);
    akv_metric_family_clear(NULL);
    akv_metric_family_mark(NULL);
    assert_int_equal(akv_metric_family_sweep(NULL), 0);
    assert_int_equal(akv_metric_family_size(NULL), 0);

    text = render(reg);
    assert_string_equal(text, "# HELP c_total c\n"
                              "# TYPE c_total counter\n"
                              "c_total 5.5\n"
                              "# HELP g g\n"
                              "# TYPE g gauge\n"
                              "g -1\n"
                              "# HELP h h\n"
                              "# TYPE h histogram\n"
                              "h_bucket{le=\"-1\"} 2\n"
                              "h_bucket{le=\"0\"} 3\n"
                              "h_bucket{le=\"1\"} 5\n"
                              "h_bucket{le=\"+Inf\"} 6\n"
                              "h_sum -Inf\n"
                              "h_count 6\n");
    assert_exposition(text);
    free(text);
    akv_metric_set(g, NAN);
    text = render(reg);
    assert_non_null(strstr(text, "\ng NaN\n"));
    assert_exposition(text);
    free(text);
    akv_metrics_free(reg);
}

static void escapes_label_values_and_help(void **state)
{
    static const char *const values[] = {
        "a\\b",
        "say \"hi\"",
        "two\nlines",
        "end\\",
        "\xff\xfe bad",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
        "",
        "{},= \t\r",
        "cut \xc3",
        "overlong \xc0\xaf surrogate \xed\xa0\x80",
        "\\n\\\"",
    };
    struct akv_metrics *reg = akv_metrics_new();
    struct akv_metric_family *f;
    struct akv_metric *first;
    char *text;
    size_t i;

    (void)state;
    f = family(reg, &(struct akv_metric_spec){
                        .type = AKV_METRIC_GAUGE,
                        .name = "akv_escape",
                        .help = "Backslash \\ and\nnewline, \"quotes\" stay. "
                                "Bad \xff byte.",
                        .labels = {"v"},
                    });
    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        akv_metric_set(akv_metric_get(f, VALUES(values[i])), (double)i);
    }
    text = render(reg);
    assert_string_equal(
        text,
        "# HELP akv_escape Backslash \\\\ and\\nnewline, \"quotes\" stay. "
        "Bad \xef\xbf\xbd byte.\n"
        "# TYPE akv_escape gauge\n"
        "akv_escape{v=\"a\\\\b\"} 0\n"
        "akv_escape{v=\"say \\\"hi\\\"\"} 1\n"
        "akv_escape{v=\"two\\nlines\"} 2\n"
        "akv_escape{v=\"end\\\\\"} 3\n"
        "akv_escape{v=\"\xef\xbf\xbd\xef\xbf\xbd bad\"} 4\n"
        "akv_escape{v=\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"} 5\n"
        "akv_escape{v=\"\"} 6\n"
        "akv_escape{v=\"{},= \t\r\"} 7\n"
        "akv_escape{v=\"cut \xef\xbf\xbd\"} 8\n"
        "akv_escape{v=\"overlong \xef\xbf\xbd\xef\xbf\xbd surrogate "
        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"} 9\n"
        "akv_escape{v=\"\\\\n\\\\\\\"\"} 10\n");
    assert_exposition(text);
    free(text);

    /* a bad byte and U+FFFD itself name the same series */
    first = akv_metric_get(f, VALUES("x\xff"));
    assert_non_null(first);
    assert_ptr_equal(akv_metric_get(f, VALUES("x\xef\xbf\xbd")), first);
    assert_ptr_equal(akv_metric_get(f, VALUES("x\x80")), first);
    /* a NULL value names nothing */
    assert_null(akv_metric_get(f, VALUES(NULL)));
    assert_null(akv_metric_get(f, NULL));
    akv_metrics_free(reg);
}

/* Random label values of awkward bytes: every render must parse, and each
 * value that was valid UTF-8 must read back as itself. */
static void random_label_values_round_trip(void **state)
{
    static const char alphabet[] = "a\\\"\n\r\t{},= \xc3\xa9\xff\x80\xe2\x82"
                                   "\xac\xf0\x9f\x98\xed\xa0";
    enum { N = 3000 };
    struct akv_metrics *reg = akv_metrics_new();
    struct akv_metric_family *f;
    static char strs[N][16];
    struct parsed p;
    char *text;
    uint64_t rnd = 0x9E3779B97F4A7C15ULL;
    size_t i;
    size_t j;
    size_t valid = 0;

    (void)state;
    f = family(reg, &(struct akv_metric_spec){
                        .type = AKV_METRIC_GAUGE,
                        .name = "akv_fuzz",
                        .help = "fuzz",
                        .labels = {"a", "b"},
                    });
    for (i = 0; i < N; i++) {
        size_t len;

        rnd ^= rnd << 13;
        rnd ^= rnd >> 7;
        rnd ^= rnd << 17;
        len = rnd % 12;
        for (j = 0; j < len; j++) {
            strs[i][j] =
                alphabet[(rnd >> (8 + 4 * j)) % (sizeof(alphabet) - 1)];
        }
        strs[i][len] = '\0';
        akv_metric_set(akv_metric_get(f, VALUES(strs[i], "\"")), (double)i);
    }
    text = render(reg);
    if (parse_exposition(text, &p) != 0) {
        fail_msg("invalid exposition: %s", p.why);
    }
    assert_int_equal(p.n, akv_metric_family_size(f));
    for (i = 0; i < N; i++) {
        size_t last = i;
        const struct sample *s;

        if (!utf8_valid((const unsigned char *)strs[i], strlen(strs[i]))) {
            continue;
        }
        valid++;
        for (j = i + 1; j < N; j++) {
            if (strcmp(strs[j], strs[i]) == 0) {
                last = j;
            }
        }
        s = find(&p, "akv_fuzz", strs[i], NULL);
        assert_non_null(s);
        assert_string_equal(s->lval[1], "\"");
        assert_true(s->value == (double)last);
    }
    assert_true(valid > N / 10);
    assert_true(p.n < N);
    parsed_free(&p);
    free(text);
    akv_metrics_free(reg);
}

static void rejects_bad_names_and_buckets(void **state)
{
    static const double up[] = {1, 2};
    static const double same[] = {1, 1};
    static const double down[] = {2, 1};
    static const double nan[] = {NAN};
    static const double inf[] = {1, INFINITY};
    static const double minf[] = {-INFINITY, 1};
    static const double many[AKV_METRIC_MAX_BUCKETS + 1] = {0};
    static const char *const bad_names[] = {
        "", "1x", "a-b", "a b", "a.b", "caf\xc3\xa9", "a\n", "a{", "a\"",
    };
    static const char *const good_names[] = {"a", "_a", ":a", "a:b_9", "A0"};
    static const char *const bad_labels[] = {"1a",  "a-b", "",        "__x",
                                             "a:b", "a b", "\xc3\xa9"};
    struct akv_metric_spec bad[64];
    size_t nbad = 0;
    struct akv_metrics *reg = akv_metrics_new();
    struct akv_metric_family *f;
    char err[256];
    size_t i;

    (void)state;
    memset(bad, 0, sizeof(bad));
    for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        bad[nbad++] = (struct akv_metric_spec){
            .type = AKV_METRIC_COUNTER, .name = bad_names[i], .help = "h"};
    }
    bad[nbad++] = (struct akv_metric_spec){
        .type = AKV_METRIC_GAUGE, .name = NULL, .help = "h"};
    bad[nbad++] =
        (struct akv_metric_spec){.type = AKV_METRIC_GAUGE, .name = "nohelp"};
    bad[nbad++] = (struct akv_metric_spec){
        .type = (enum akv_metric_type)7, .name = "t", .help = "h"};
    for (i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++) {
        bad[nbad++] = (struct akv_metric_spec){.type = AKV_METRIC_GAUGE,
                                               .name = "l",
                                               .help = "h",
                                               .labels = {"ok", bad_labels[i]}};
    }
    bad[nbad++] = (struct akv_metric_spec){.type = AKV_METRIC_GAUGE,
                                           .name = "l",
                                           .help = "h",
                                           .labels = {"a", "a"}};
    bad[nbad++] = (struct akv_metric_spec){.type = AKV_METRIC_GAUGE,
                                           .name = "l",
                                           .help = "h",
                                           .labels = {"a", NULL, "b"}};
    bad[nbad++] = (struct akv_metric_spec){.type = AKV_METRIC_HISTOGRAM,
                                           .name = "l",
                                           .help = "h",
                                           .labels = {"le"}};
    bad[nbad++] = (struct akv_metric_spec){.type = AKV_METRIC_HISTOGRAM,
                                           .name = "b",
                                           .help = "h",
                                           .buckets = same,
                                           .nbuckets = 2};
    bad[nbad++] = (struct akv_metric_spec){.type = AKV_METRIC_HISTOGRAM,
                                           .name = "b",
                                           .help = "h",
                                           .buckets = down,
                                           .nbuckets = 2};
    bad[nbad++] = (struct akv_metric_spec){.type = AKV_METRIC_HISTOGRAM,
                                           .name = "b",
                                           .help = "h",
                                           .buckets = nan,
                                           .nbuckets = 1};
    bad[nbad++] = (struct akv_metric_spec){.type = AKV_METRIC_HISTOGRAM,
                                           .name = "b",
                                           .help = "h",
                                           .buckets = inf,
                                           .nbuckets = 2};
    bad[nbad++] = (struct akv_metric_spec){.type = AKV_METRIC_HISTOGRAM,
                                           .name = "b",
                                           .help = "h",
                                           .buckets = minf,
                                           .nbuckets = 2};
    bad[nbad++] =
        (struct akv_metric_spec){.type = AKV_METRIC_HISTOGRAM,
                                 .name = "b",
                                 .help = "h",
                                 .buckets = many,
                                 .nbuckets = AKV_METRIC_MAX_BUCKETS + 1};
    bad[nbad++] = (struct akv_metric_spec){.type = AKV_METRIC_HISTOGRAM,
                                           .name = "b",
                                           .help = "h",
                                           .buckets = NULL,
                                           .nbuckets = 1};
    bad[nbad++] = (struct akv_metric_spec){.type = AKV_METRIC_COUNTER,
                                           .name = "b",
                                           .help = "h",
                                           .buckets = up,
                                           .nbuckets = 2};
    assert_true(nbad <= sizeof(bad) / sizeof(bad[0]));
    for (i = 0; i < nbad; i++) {
        f = (struct akv_metric_family *)(uintptr_t)1; /* must be reset */
        err[0] = '\0';
        if (akv_metrics_family(reg, &bad[i], &f, err, sizeof(err)) !=
            AKV_ERR_INVALID) {
            fail_msg("bad spec %zu (%s) accepted", i,
                     bad[i].name ? bad[i].name : "NULL");
        }
        assert_null(f);
        assert_true(err[0] != '\0');
    }

    for (i = 0; i < sizeof(good_names) / sizeof(good_names[0]); i++) {
        family(reg, &(struct akv_metric_spec){.type = AKV_METRIC_GAUGE,
                                              .name = good_names[i],
                                              .help = ""});
    }
    /* le is only reserved in histograms; labels may use the whole list */
    family(reg, &(struct akv_metric_spec){.type = AKV_METRIC_COUNTER,
                                          .name = "le_ok",
                                          .help = "h",
                                          .labels = {"le", "_b", "c9", "D"}});
    family(reg, &(struct akv_metric_spec){.type = AKV_METRIC_HISTOGRAM,
                                          .name = "h",
                                          .help = "h",
                                          .labels = {"l"},
                                          .buckets = up,
                                          .nbuckets = 2});
    family(reg, &(struct akv_metric_spec){
                    .type = AKV_METRIC_COUNTER, .name = "g_sum", .help = "h"});

    /* names whose samples would clash with an existing family's */
    {
        static const struct {
            enum akv_metric_type type;
            const char *name;
        } clash[] = {
            {AKV_METRIC_GAUGE, "a"},         {AKV_METRIC_COUNTER, "le_ok"},
            {AKV_METRIC_GAUGE, "h"},         {AKV_METRIC_COUNTER, "h_count"},
            {AKV_METRIC_GAUGE, "h_sum"},     {AKV_METRIC_GAUGE, "h_bucket"},
            {AKV_METRIC_HISTOGRAM, "g"},     {AKV_METRIC_HISTOGRAM, "h"},
            {AKV_METRIC_HISTOGRAM, "g_sum"},
        };

        for (i = 0; i < sizeof(clash) / sizeof(clash[0]); i++) {
            err[0] = '\0';
            if (akv_metrics_family(
                    reg,
                    &(struct akv_metric_spec){.type = clash[i].type,
                                              .name = clash[i].name,
                                              .help = "h"},
                    &f, err, sizeof(err)) != AKV_ERR_INVALID) {
                fail_msg("clashing name %s accepted", clash[i].name);
            }
            assert_null(f);
            assert_non_null(strstr(err, "clashes"));
        }
    }
    family(reg, &(struct akv_metric_spec){.type = AKV_METRIC_COUNTER,
                                          .name = "h_total",
                                          .help = "h"});
    family(reg, &(struct akv_metric_spec){
                    .type = AKV_METRIC_HISTOGRAM, .name = "h_", .help = "h"});
    {
        char *text = render(reg);

        assert_exposition(text);
        free(text);
    }
    akv_metrics_free(reg);
}

static void series_are_removed_and_rebuilt(void **state)
{
    struct akv_metrics *reg = akv_metrics_new();
    struct akv_metric_family *f;
    struct akv_metric_family *u;
    struct akv_metric *p[6];
    struct akv_metric *kept;
    struct akv_buf small;
    char *text;
    char name[16];
    int i;

    (void)state;
    f = family(reg, &(struct akv_metric_spec){.type = AKV_METRIC_GAUGE,
                                              .name = "lag",
                                              .help = "h",
                                              .labels = {"partition"},
                                              .max_series = 5});
    u = family(reg, &(struct akv_metric_spec){.type = AKV_METRIC_COUNTER,
                                              .name = "u_total",
                                              .help = "h"});
    for (i = 0; i < 4; i++) {
        snprintf(name, sizeof(name), "%d", i);
        p[i] = akv_metric_get(f, VALUES(name));
        assert_non_null(p[i]);
        akv_metric_set(p[i], 10 + i);
    }
    assert_ptr_equal(akv_metric_get(f, VALUES("2")), p[2]);
    assert_int_equal(akv_metric_family_size(f), 4);

    akv_metric_remove(p[1]);
    assert_int_equal(akv_metric_remove_labels(f, VALUES("3")), 1);
    assert_int_equal(akv_metric_remove_labels(f, VALUES("3")), 0);
    assert_int_equal(akv_metric_remove_labels(f, VALUES("9")), 0);
    p[1] = akv_metric_get(f, VALUES("1")); /* comes back last, at 0 */
    text = render(reg);
    assert_string_equal(text, "# HELP lag h\n# TYPE lag gauge\n"
                              "lag{partition=\"0\"} 10\n"
                              "lag{partition=\"2\"} 12\n"
                              "lag{partition=\"1\"} 0\n"
                              "# HELP u_total h\n# TYPE u_total counter\n"
                              "u_total 0\n");
    free(text);

    /* rebuild: keep 2, add 5, drop the rest; 2 keeps pointer and value */
    akv_metric_family_mark(f);
    kept = akv_metric_get(f, VALUES("2"));
    assert_ptr_equal(kept, p[2]);
    akv_metric_add(kept, 1);
    akv_metric_set(akv_metric_get(f, VALUES("5")), 15);
    text = render(reg); /* mid-rebuild: old and new side by side */
    assert_string_equal(text, "# HELP lag h\n# TYPE lag gauge\n"
                              "lag{partition=\"0\"} 10\n"
                              "lag{partition=\"2\"} 13\n"
                              "lag{partition=\"1\"} 0\n"
                              "lag{partition=\"5\"} 15\n"
                              "# HELP u_total h\n# TYPE u_total counter\n"
                              "u_total 0\n");
    free(text);
    assert_int_equal(akv_metric_family_sweep(f), 2);
    assert_int_equal(akv_metric_family_sweep(f), 0);
    text = render(reg);
    assert_string_equal(text, "# HELP lag h\n# TYPE lag gauge\n"
                              "lag{partition=\"2\"} 13\n"
                              "lag{partition=\"5\"} 15\n"
                              "# HELP u_total h\n# TYPE u_total counter\n"
                              "u_total 0\n");
    free(text);

    /* at most max_series series */
    for (i = 0; i < 3; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        assert_non_null(akv_metric_get(f, VALUES(name)));
    }
    assert_null(akv_metric_get(f, VALUES("n3")));
    akv_metric_set(akv_metric_get(f, VALUES("n3")), 1); /* harmless */
    assert_non_null(akv_metric_get(f, VALUES("n2")));   /* existing: fine */
    akv_metric_remove_labels(f, VALUES("n0"));
    assert_non_null(akv_metric_get(f, VALUES("n3")));

    /* clear: HELP and TYPE only; an unlabelled series can go and return */
    akv_metric_family_clear(f);
    akv_metric_family_clear(u);
    assert_int_equal(akv_metric_family_size(f), 0);
    text = render(reg);
    assert_string_equal(text, "# HELP lag h\n# TYPE lag gauge\n"
                              "# HELP u_total h\n# TYPE u_total counter\n");
    free(text);
    akv_metric_inc(akv_metric_get(u, NULL));
    akv_metric_inc(akv_metric_get(u, NULL));
    text = render(reg);
    assert_string_equal(text, "# HELP lag h\n# TYPE lag gauge\n"
                              "# HELP u_total h\n# TYPE u_total counter\n"
                              "u_total 2\n");
    free(text);

    /* a buffer too small is left as it was */
    akv_buf_init(&small, 40);
    assert_int_equal(akv_buf_puts(&small, "kept"), AKV_OK);
    assert_int_equal(akv_metrics_render(reg, &small), AKV_ERR_TOOBIG);
    assert_string_equal(akv_buf_str(&small), "kept");
    assert_int_equal(small.len, 4);
    akv_buf_free(&small);
    akv_metrics_free(reg);
}

static void formats_doubles_that_read_back(void **state)
{
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        {0.0, "0"},
        {-0.0, "0"},
        {1, "1"},
        {-3, "-3"},
        {0.1, "0.1"},
        {0.005, "0.005"},
        {2.5, "2.5"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1.0 / 3, "0.3333333333333333"},
        {123456.789, "123456.789"},
        {1e15, "1000000000000000"},
        {9007199254740992.0, "9007199254740992"},
        {9007199254740994.0, "9007199254740994"},
        {1e20, "1e+20"},
        {1.5e-7, "1.5e-07"},
        {-2.5e-300, "-2.5e-300"},
        {DBL_MAX, "1.7976931348623157e+308"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
        {NAN, "NaN"},
    };
    regex_t re;
    char out[AKV_METRIC_DOUBLE_MAX];
    uint64_t rnd = 88172645463325252ULL;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = akv_metrics_format_double(cases[i].v, out);

        assert_string_equal(out, cases[i].text);
        assert_int_equal(n, strlen(cases[i].text));
    }
    /* random bit patterns: every double reads back as itself */
    assert_int_equal(regcomp(&re, "^" FLOAT_RE "$", REG_EXTENDED | REG_NOSUB),
                     0);
    for (i = 0; i < 200000; i++) {
        double v;
        double back;
        size_t n;

        rnd ^= rnd << 13;
        rnd ^= rnd >> 7;
        rnd ^= rnd << 17;
        if (i % 2) {
            memcpy(&v, &rnd, sizeof(v));
        } else {
            v = (double)(int64_t)(rnd >> (rnd % 64)) / ((i % 7) + 1);
        }
        memset(out, 'x', sizeof(out));
        n = akv_metrics_format_double(v, out);
        assert_true(n < sizeof(out));
        assert_int_equal(strlen(out), n);
        if (regexec(&re, out, 0, NULL, 0) != 0) {
            fail_msg("%s does not look like a Prometheus float", out);
        }
        back = strtod(out, NULL);
        if (!(back == v || (isnan(back) && isnan(v)))) {
            fail_msg("%.17g formatted as %s", v, out);
        }
    }
    regfree(&re);
}

/* ---- concurrency ---- */

#define MIN_UPDATES 100000
static const double conc_bounds[] = {1, 2, 4};

struct updater {
    pthread_t thread;
    int id;
    atomic_int *stop;
    struct akv_metric *counter;
    struct akv_metric *hist;
    struct akv_metric *gauge;
    struct akv_metric_family *churn;
    unsigned long iterations;
    double sum;
    unsigned long buckets[4];
};

static void *updater_main(void *arg)
{
    struct updater *u = arg;
    struct akv_metric *prev = NULL;
    unsigned long i;

    for (i = 0; i < MIN_UPDATES || !atomic_load(u->stop); i++) {
        double v = (double)(i % 8);
        size_t b = 0;

        akv_metric_inc(u->counter);
        akv_metric_observe(u->hist, v);
        akv_metric_set(u->gauge, (double)i);
        u->sum += v;
        while (b < 3 && v > conc_bounds[b]) {
            b++;
        }
        u->buckets[b]++;
        if (i % 512 == 0) {
            char label[32];
            struct akv_metric *s;

            snprintf(label, sizeof(label), "t%d-%lu", u->id, i / 512 % 8);
            s = akv_metric_get(u->churn, VALUES(label));
            akv_metric_set(s, v);
            if (prev && prev != s) {
                akv_metric_remove(prev);
            }
            prev = s;
        }
    }
    u->iterations = i;
    return NULL;
}

static void concurrent_updates_add_up(void **state)
{
    struct akv_metrics *reg = akv_metrics_new();
    struct akv_metric_family *cf;
    struct akv_metric_family *hf;
    struct akv_metric_family *gf;
    struct akv_metric_family *churn;
    struct updater u[2];
    atomic_int stop;
    double last_counter = 0;
    double last_count = 0;
    unsigned long total = 0;
    unsigned long buckets[4] = {0};
    double sum = 0;
    struct parsed p;
    const struct sample *s;
    char *text;
    int r;
    int i;

    (void)state;
    atomic_init(&stop, 0);
    cf = family(reg, &(struct akv_metric_spec){.type = AKV_METRIC_COUNTER,
                                               .name = "akv_conc_total",
                                               .help = "c",
                                               .labels = {"k"}});
    hf = family(reg, &(struct akv_metric_spec){.type = AKV_METRIC_HISTOGRAM,
                                               .name = "akv_conc_seconds",
                                               .help = "h",
                                               .labels = {"k"},
                                               .buckets = conc_bounds,
                                               .nbuckets = 3});
    gf = family(reg, &(struct akv_metric_spec){.type = AKV_METRIC_GAUGE,
                                               .name = "akv_conc_last",
                                               .help = "g"});
    churn = family(reg, &(struct akv_metric_spec){.type = AKV_METRIC_GAUGE,
                                                  .name = "akv_conc_churn",
                                                  .help = "g",
                                                  .labels = {"p"}});
    for (i = 0; i < 2; i++) {
        memset(&u[i], 0, sizeof(u[i]));
        u[i].id = i;
        u[i].stop = &stop;
        /* both threads update the same series */
        u[i].counter = akv_metric_get(cf, VALUES("x"));
        u[i].hist = akv_metric_get(hf, VALUES("x"));
        u[i].gauge = akv_metric_get(gf, NULL);
        u[i].churn = churn;
        assert_int_equal(
            pthread_create(&u[i].thread, NULL, updater_main, &u[i]), 0);
    }
    for (r = 0; r < 300; r++) {
        text = render(reg);
        if (parse_exposition(text, &p) != 0) {
            fail_msg("render %d invalid: %s", r, p.why);
        }
        s = find(&p, "akv_conc_total", "x", NULL);
        assert_non_null(s);
        assert_true(s->value >= last_counter);
        last_counter = s->value;
        s = find(&p, "akv_conc_seconds_count", "x", NULL);
        assert_non_null(s);
        assert_true(s->value >= last_count);
        last_count = s->value;
        parsed_free(&p);
        free(text);
    }
    atomic_store(&stop, 1);
    for (i = 0; i < 2; i++) {
        assert_int_equal(pthread_join(u[i].thread, NULL), 0);
        total += u[i].iterations;
        sum += u[i].sum;
        for (r = 0; r < 4; r++) {
            buckets[r] += u[i].buckets[r];
        }
    }
    assert_true(total >= 2 * MIN_UPDATES);
    assert_true(akv_metric_value(u[0].counter) == (double)total);
    assert_int_equal(akv_metric_count(u[0].hist), total);
    assert_true(akv_metric_value(u[0].hist) == sum);

    text = render(reg);
    assert_int_equal(parse_exposition(text, &p), 0);
    assert_true(find(&p, "akv_conc_total", "x", NULL)->value == (double)total);
    assert_true(find(&p, "akv_conc_seconds_bucket", "x", "1")->value ==
                (double)buckets[0]);
    assert_true(find(&p, "akv_conc_seconds_bucket", "x", "2")->value ==
                (double)(buckets[0] + buckets[1]));
    assert_true(find(&p, "akv_conc_seconds_bucket", "x", "4")->value ==
                (double)(buckets[0] + buckets[1] + buckets[2]));
    assert_true(find(&p, "akv_conc_seconds_bucket", "x", "+Inf")->value ==
                (double)total);
    assert_true(find(&p, "akv_conc_seconds_sum", "x", NULL)->value == sum);
    assert_true(find(&p, "akv_conc_seconds_count", "x", NULL)->value ==
                (double)total);
    /* each thread left its last churn series */
    assert_int_equal(akv_metric_family_size(churn), 2);
    parsed_free(&p);
    free(text);
    akv_metrics_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(checker_rejects_what_prometheus_would),
        cmocka_unit_test(renders_a_small_registry_exactly),
        cmocka_unit_test(updates_follow_the_metric_type),
        cmocka_unit_test(escapes_label_values_and_help),
        cmocka_unit_test(random_label_values_round_trip),
        cmocka_unit_test(rejects_bad_names_and_buckets),
        cmocka_unit_test(series_are_removed_and_rebuilt),
        cmocka_unit_test(formats_doubles_that_read_back),
        cmocka_unit_test(concurrent_updates_add_up),
    };

    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
