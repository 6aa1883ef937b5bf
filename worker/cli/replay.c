/*
 * replay — `ak2vault replay` and `ak2vault run --from`: new committed
 * offsets for a consumer group, computed per partition, clamped to its log,
 * committed from outside the group only while the group is empty.
 */
#include "replay.h"

#include "clock.h"
#include "json.h"
#include "log.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DATETIME_FORMAT                                                        \
    "YYYY-MM-DDTHH:MM:SS[.fff] and a zone, Z or +hh:mm, e.g. "                 \
    "2026-11-28T10:00:00Z"
#define DURATION_FORMAT                                                        \
    "PnDTnHnMnS (P1DT2H, PT15M) or numbers with units ms, s, m, h, d (90s, "   \
    "15m, 2h, 1d, 1h30m)"
#define MAX_DURATION_MS (100LL * 365 * 24 * 3600 * 1000)

static const struct {
    const char *name;
    enum akv_replay_mode mode;
} mode_names[] = {
    {"to-earliest", AKV_REPLAY_TO_EARLIEST},
    {"to-latest", AKV_REPLAY_TO_LATEST},
    {"to-offset", AKV_REPLAY_TO_OFFSET},
    {"shift-by", AKV_REPLAY_SHIFT_BY},
    {"to-datetime", AKV_REPLAY_TO_DATETIME},
    {"by-duration", AKV_REPLAY_BY_DURATION},
    {"to-current", AKV_REPLAY_TO_CURRENT},
    {"from-file", AKV_REPLAY_FROM_FILE},
};

#define MODE_LIST                                                              \
    "--to-earliest, --to-latest, --to-offset N, --shift-by N, "                \
    "--to-datetime DATETIME, --by-duration DURATION, --to-current, "           \
    "--from-file FILE"

static const char *mode_name(enum akv_replay_mode mode)
{
    size_t i;

    for (i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
        if (mode_names[i].mode == mode) {
            return mode_names[i].name;
        }
    }
    return "none";
}

/* ------------------------------------------------------------------------
 * Parsing (pure)
 */

static int parse_ll(const char *s, long long *out)
{
    char *end = NULL;

    if (!s || !*s || isspace((unsigned char)*s)) {
        return -1;
    }
    errno = 0;
    *out = strtoll(s, &end, 10);
    return errno || *end ? -1 : 0;
}

/* Exactly \p n digits at *p, advancing it. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    int i;

    for (i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) {
            return -1;
        }
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * days_from_civil), so that no time zone of the process is involved. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era;
    int64_t yoe;
    int64_t doy;
    int64_t doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : days[m - 1];
}

/* A calendar date and a time of day, as written: not yet checked. */
struct civil {
    int y, mo, d, h, mi, sec;
    int frac; /* milliseconds */
};

/* The fraction after a decimal point at *p: up to nanoseconds, of which
 * the milliseconds are kept. */
static int fraction_ms(const char **p, int *frac)
{
    int n;

    *frac = 0;
    for (n = 0; isdigit((unsigned char)**p); n++, (*p)++) {
        if (n < 3) {
            *frac = *frac * 10 + (**p - '0');
        }
    }
    if (n == 0 || n > 9) {
        return -1;
    }
    for (; n < 3; n++) {
        *frac *= 10;
    }
    return 0;
}

/* YYYY-MM-DDTHH:MM[:SS[.fff]] at *p, advancing it. */
static int date_and_time(const char **p, struct civil *c)
{
    c->sec = 0;
    c->frac = 0;
    if (digits(p, 4, &c->y) || *(*p)++ != '-' || digits(p, 2, &c->mo) ||
        *(*p)++ != '-' || digits(p, 2, &c->d) || (**p != 'T' && **p != 't')) {
        return -1;
    }
    (*p)++;
    if (digits(p, 2, &c->h) || *(*p)++ != ':' || digits(p, 2, &c->mi)) {
        return -1;
    }
    if (**p != ':') {
        return 0;
    }
    (*p)++;
    if (digits(p, 2, &c->sec)) {
        return -1;
    }
    if (**p == '.' || **p == ',') {
        (*p)++;
        return fraction_ms(p, &c->frac);
    }
    return 0;
}

/* The zone at *p, Z or +hh:mm (+hhmm), in minutes east of UTC, advancing
 * it. @returns 0, -1 when malformed, 1 when there is none (the end). */
static int time_zone(const char **p, int *zone)
{
    int sign;
    int zh, zm;

    *zone = 0;
    if (**p == 'Z' || **p == 'z') {
        (*p)++;
        return 0;
    }
    if (**p == '\0') {
        return 1;
    }
    if (**p != '+' && **p != '-') {
        return -1;
    }
    sign = *(*p)++ == '-' ? -1 : 1;
    if (digits(p, 2, &zh)) {
        return -1;
    }
    if (**p == ':') {
        (*p)++;
    }
    if (digits(p, 2, &zm) || zh > 23 || zm > 59) {
        return -1;
    }
    *zone = sign * (zh * 60 + zm);
    return 0;
}

/* Milliseconds since 1970 of \p c, written \p zone minutes east of UTC. */
static int64_t civil_ms(const struct civil *c, int zone)
{
    int64_t minutes =
        (days_from_civil(c->y, c->mo, c->d) * 24 + c->h) * 60 + c->mi - zone;

    return minutes * 60000LL + c->sec * 1000LL + c->frac;
}

akv_err_t akv_replay_parse_datetime(const char *s, int64_t *ms, char *errstr,
                                    size_t errstr_size)
{
    const char *p = s;
    struct civil c;
    int zone; /* minutes east of UTC */
    int64_t t;
    int rc;

    if (date_and_time(&p, &c)) {
        goto bad;
    }
    rc = time_zone(&p, &zone);
    if (rc > 0) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "date and time '%s' has no time zone: add Z (UTC) "
                        "or an offset such as +02:00",
                        s);
    }
    if (rc < 0 || *p) {
        goto bad;
    }
    if (c.mo < 1 || c.mo > 12 || c.d < 1 || c.d > days_in_month(c.y, c.mo) ||
        c.h > 23 || c.mi > 59 || c.sec > 59) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "date and time '%s' does not exist", s);
    }
    t = civil_ms(&c, zone);
    if (t < 0) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "date and time '%s' is before 1970", s);
    }
    *ms = t;
    return AKV_OK;
bad:
    return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                    "bad date and time '%s': expected " DATETIME_FORMAT, s);
}

/* A decimal number at *p (digits, optionally a fraction), advancing it.
 * @returns the number of integer digits read (0: none). */
static int number(const char **p, long long *ip, long long *frac,
                  long long *scale)
{
    int n = 0;

    *ip = 0;
    *frac = 0;
    *scale = 1;
    while (isdigit((unsigned char)**p)) {
        if (*ip > MAX_DURATION_MS) {
            return -1;
        }
        *ip = *ip * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    if (n > 0 && (**p == '.' || **p == ',') &&
        isdigit((unsigned char)(*p)[1])) {
        (*p)++;
        while (isdigit((unsigned char)**p)) {
            if (*scale < 1000000000LL) {
                *frac = *frac * 10 + (**p - '0');
                *scale *= 10;
            }
            (*p)++;
        }
    }
    return n;
}

/* Adds ip.frac units of \p unit_ms to *total, bounded. */
static int add_units(long long *total, long long ip, long long frac,
                     long long scale, long long unit_ms)
{
    if (ip > MAX_DURATION_MS / unit_ms) {
        return -1;
    }
    *total += ip * unit_ms + frac * unit_ms / scale;
    return *total > MAX_DURATION_MS ? -1 : 0;
}

static int iso_duration(const char *s, long long *total)
{
    const char *p = s + 1; /* past the P */
    int in_time = 0;
    int parts = 0;
    char last = 0;

    while (*p) {
        long long ip, frac, scale;
        long long unit;
        char u;
        int n;

        if ((*p == 'T' || *p == 't') && !in_time) {
            in_time = 1;
            p++;
            if (!*p) {
                return -1;
            }
            continue;
        }
        n = number(&p, &ip, &frac, &scale);
        if (n <= 0) {
            return -1;
        }
        u = (char)toupper((unsigned char)*p++);
        if (!in_time && u == 'D') {
            unit = 86400000LL;
        } else if (in_time && u == 'H') {
            unit = 3600000LL;
        } else if (in_time && u == 'M') {
            unit = 60000LL;
        } else if (in_time && u == 'S') {
            unit = 1000LL;
        } else {
            return -1;
        }
        /* Each unit once, largest first; a fraction only for seconds. */
        if ((last && strchr("DHMS", last) >= strchr("DHMS", u)) ||
            (scale > 1 && u != 'S') ||
            add_units(total, ip, frac, scale, unit)) {
            return -1;
        }
        last = u;
        parts++;
    }
    return parts > 0 ? 0 : -1;
}

static int simple_duration(const char *s, long long *total)
{
    static const struct {
        const char *unit;
        long long ms;
    } units[] = {{"ms", 1},
                 {"s", 1000},
                 {"m", 60000},
                 {"h", 3600000LL},
                 {"d", 86400000LL}};
    const char *p = s;
    unsigned seen = 0;

    while (*p) {
        long long ip, frac, scale;
        size_t i;
        size_t best = sizeof(units) / sizeof(units[0]);

        if (number(&p, &ip, &frac, &scale) <= 0) {
            return -1;
        }
        /* "ms" before "m": the longest unit that matches. */
        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t len = strlen(units[i].unit);

            if (strncmp(p, units[i].unit, len) == 0 &&
                (best == sizeof(units) / sizeof(units[0]) ||
                 len > strlen(units[best].unit))) {
                best = i;
            }
        }
        if (best == sizeof(units) / sizeof(units[0]) || (seen & (1u << best)) ||
            add_units(total, ip, frac, scale, units[best].ms)) {
            return -1;
        }
        seen |= 1u << best;
        p += strlen(units[best].unit);
    }
    return 0;
}

akv_err_t akv_replay_parse_duration(const char *s, int64_t *ms, char *errstr,
                                    size_t errstr_size)
{
    long long total = 0;
    int bad;

    if (!s || !*s) {
        bad = 1;
    } else if (*s == 'P' || *s == 'p') {
        bad = iso_duration(s, &total);
    } else {
        bad = simple_duration(s, &total);
    }
    if (bad) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "bad duration '%s': expected " DURATION_FORMAT
                        ", at most 100 years",
                        s ? s : "");
    }
    *ms = total;
    return AKV_OK;
}

/* One "topic,partition,offset" line of \p len bytes (no newline). */
static akv_err_t offset_line(const char *line, size_t len, const char *topic,
                             size_t lineno, struct akv_replay_offset *o,
                             char *errstr, size_t errstr_size)
{
    char buf[512];
    char *part;
    char *off;
    long long p;
    long long v;

    if (len >= sizeof(buf)) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "line %zu: too long", lineno);
    }
    memcpy(buf, line, len);
    buf[len] = '\0';
    part = strchr(buf, ',');
    off = part ? strchr(part + 1, ',') : NULL;
    if (!part || !off || strchr(off + 1, ',')) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "line %zu: expected topic,partition,offset", lineno);
    }
    *part++ = '\0';
    *off++ = '\0';
    if (strcmp(buf, topic) != 0) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "line %zu: topic '%s', not %s", lineno, buf, topic);
    }
    if (parse_ll(part, &p) || p < 0 || p > INT32_MAX || parse_ll(off, &v) ||
        v < 0) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "line %zu: partition and offset must be numbers, 0 "
                        "or more",
                        lineno);
    }
    o->partition = (int32_t)p;
    o->offset = v;
    return AKV_OK;
}

akv_err_t akv_replay_parse_offsets(const char *text, const char *topic,
                                   struct akv_replay_offset **out, size_t *n,
                                   char *errstr, size_t errstr_size)
{
    size_t cap = 0;
    size_t lineno = 0;
    const char *p = text;

    *out = NULL;
    *n = 0;
    while (*p) {
        size_t len = strcspn(p, "\n");
        size_t i;
        akv_err_t err;

        lineno++;
        if (len > 0 && p[len - 1] == '\r') {
            len--;
        }
        if (len > 0) {
            if (*n == cap) {
                size_t c = cap ? cap * 2 : 16;
                struct akv_replay_offset *v = realloc(*out, c * sizeof(*v));

                if (!v) {
                    return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size,
                                    "out of memory");
                }
                *out = v;
                cap = c;
            }
            err = offset_line(p, len, topic, lineno, &(*out)[*n], errstr,
                              errstr_size);
            for (i = 0; !err && i < *n; i++) {
                if ((*out)[i].partition == (*out)[*n].partition) {
                    err = akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                                   "line %zu: partition %d again", lineno,
                                   (int)(*out)[*n].partition);
                }
            }
            if (err) {
                return err;
            }
            (*n)++;
        }
        p += strcspn(p, "\n");
        p += *p == '\n';
    }
    return AKV_OK;
}

akv_err_t akv_replay_parse_partitions(const char *s, struct akv_prange **out,
                                      size_t *n, char *errstr,
                                      size_t errstr_size)
{
    struct akv_prange *r = NULL;
    size_t cap = 1;
    const char *p = s;
    size_t i;

    *out = NULL;
    *n = 0;
    for (i = 0; s[i]; i++) {
        cap += s[i] == ',';
    }
    r = calloc(cap, sizeof(*r));
    if (!r) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    for (;;) {
        long long a, b;
        char *end = NULL;

        if (!isdigit((unsigned char)*p)) {
            goto bad;
        }
        errno = 0;
        a = strtoll(p, &end, 10);
        b = a;
        p = end;
        if (*p == '-') {
            p++;
            if (!isdigit((unsigned char)*p)) {
                goto bad;
            }
            b = strtoll(p, &end, 10);
            p = end;
        }
        if (errno || a > INT32_MAX || b > INT32_MAX || b < a) {
            goto bad;
        }
        r[*n].first = (int32_t)a;
        r[*n].last = (int32_t)b;
        (*n)++;
        if (*p == '\0') {
            break;
        }
        if (*p++ != ',') {
            goto bad;
        }
    }
    *out = r;
    return AKV_OK;
bad:
    free(r);
    *n = 0;
    return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                    "bad partition list '%s': expected numbers and ranges "
                    "such as 0,2,5-7",
                    s);
}

int akv_replay_prange_has(const struct akv_prange *r, size_t n,
                          int32_t partition)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (partition >= r[i].first && partition <= r[i].last) {
            return 1;
        }
    }
    return 0;
}

static int has_partition(const struct akv_kpart *parts, size_t n, int64_t p)
{
    size_t lo = 0;
    size_t hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (parts[mid].partition == p) {
            return 1;
        }
        if (parts[mid].partition < p) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return 0;
}

akv_err_t akv_replay_partitions_exist(const struct akv_prange *r, size_t nr,
                                      const struct akv_kpart *parts, size_t n,
                                      const char *topic, char *errstr,
                                      size_t errstr_size)
{
    size_t i;
    int64_t p;

    for (i = 0; i < nr; i++) {
        /* Partitions are unique: a range is covered when it holds as many
         * of them as it is long, and a range longer than the topic never
         * is (so a huge range costs no more than the topic). */
        size_t in = 0;
        size_t k;

        for (k = 0; k < n; k++) {
            in += parts[k].partition >= r[i].first &&
                  parts[k].partition <= r[i].last;
        }
        if ((int64_t)in == (int64_t)r[i].last - r[i].first + 1) {
            continue;
        }
        for (p = r[i].first; p <= r[i].last; p++) {
            if (!has_partition(parts, n, p)) {
                break;
            }
        }
        if (n == 0) {
            return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                            "topic %s has no partitions", topic);
        }
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "unknown partition %lld: topic %s has partitions "
                        "%d-%d",
                        (long long)p, topic, (int)parts[0].partition,
                        (int)parts[n - 1].partition);
    }
    return AKV_OK;
}

void akv_replay_format_time(int64_t ms, char *buf, size_t size)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;

    if (ms < 0 || !gmtime_r(&secs, &tm)) {
        snprintf(buf, size, "-");
        return;
    }
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* ------------------------------------------------------------------------
 * Options
 */

/* --partitions LIST: the list is checked here and parsed again when the
 * command runs, so that only the text is kept in the options. */
static akv_err_t opt_partitions(struct akv_replay_opts *o, const char *arg,
                                char *errstr, size_t errstr_size)
{
    struct akv_prange *r = NULL;
    size_t n = 0;
    akv_err_t err;

    if (o->partitions) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "--partitions given twice");
    }
    err = akv_replay_parse_partitions(arg, &r, &n, errstr, errstr_size);
    free(r);
    o->partitions = arg;
    return err;
}

/* run --from earliest|latest|DATETIME. */
static akv_err_t opt_from(struct akv_replay_opts *o, const char *arg,
                          char *errstr, size_t errstr_size)
{
    int64_t t = 0;

    if (o->from) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "--from given twice");
    }
    o->from = 1;
    o->from_arg = arg;
    if (strcmp(arg, "earliest") == 0) {
        o->mode = AKV_REPLAY_TO_EARLIEST;
    } else if (strcmp(arg, "latest") == 0) {
        o->mode = AKV_REPLAY_TO_LATEST;
    } else {
        akv_err_t err = akv_replay_parse_datetime(arg, &t, errstr, errstr_size);

        if (err) {
            return akv_errf(err, errstr, errstr_size,
                            "--from '%s': expected earliest, latest or "
                            "a date and time, " DATETIME_FORMAT,
                            arg);
        }
        o->mode = AKV_REPLAY_TO_DATETIME;
        o->value = t;
    }
    return AKV_OK;
}

static enum akv_replay_mode mode_of(const char *name)
{
    enum akv_replay_mode mode = AKV_REPLAY_NONE;
    size_t i;

    for (i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
        if (strcmp(name, mode_names[i].name) == 0) {
            mode = mode_names[i].mode;
        }
    }
    return mode;
}

/* The argument of a mode option, as the value kept in the options (0 for
 * the modes without one). */
static akv_err_t mode_value(enum akv_replay_mode mode, const char *arg,
                            long long *v, char *errstr, size_t errstr_size)
{
    int64_t t = 0;
    akv_err_t err = AKV_OK;

    *v = 0;
    switch (mode) {
    case AKV_REPLAY_TO_OFFSET:
        if (parse_ll(arg, v) || *v < 0) {
            return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                            "--to-offset '%s': expected an offset (0 or "
                            "more)",
                            arg);
        }
        return AKV_OK;
    case AKV_REPLAY_SHIFT_BY:
        if (parse_ll(arg, v)) {
            return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                            "--shift-by '%s': expected a whole number of "
                            "offsets, e.g. -100 or 50",
                            arg);
        }
        return AKV_OK;
    case AKV_REPLAY_TO_DATETIME:
        err = akv_replay_parse_datetime(arg, &t, errstr, errstr_size);
        break;
    case AKV_REPLAY_BY_DURATION:
        err = akv_replay_parse_duration(arg, &t, errstr, errstr_size);
        break;
    default:
        break;
    }
    *v = t;
    return err;
}

akv_err_t akv_replay_opt(struct akv_replay_opts *o, const char *name,
                         const char *arg, char *errstr, size_t errstr_size)
{
    enum akv_replay_mode mode;
    long long v = 0;
    akv_err_t err;

    if (strcmp(name, "execute") == 0) {
        o->execute = 1;
        return AKV_OK;
    }
    if (strcmp(name, "export") == 0) {
        o->export_path = arg;
        return AKV_OK;
    }
    if (strcmp(name, "partitions") == 0) {
        return opt_partitions(o, arg, errstr, errstr_size);
    }
    if (strcmp(name, "from") == 0) {
        return opt_from(o, arg, errstr, errstr_size);
    }
    mode = mode_of(name);
    if (mode == AKV_REPLAY_NONE) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "unknown replay option --%s", name);
    }
    if (o->modes > 0) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "--%s and --%s: give exactly one of " MODE_LIST,
                        mode_name(o->mode), name);
    }
    err = mode_value(mode, arg, &v, errstr, errstr_size);
    if (err) {
        return err;
    }
    o->mode = mode;
    o->modes++;
    o->value = v;
    o->mode_arg = arg;
    return AKV_OK;
}

akv_err_t akv_replay_check(const struct akv_replay_opts *o, const char *cmd,
                           char *errstr, size_t errstr_size)
{
    int replay = strcmp(cmd, "replay") == 0;
    int run = strcmp(cmd, "run") == 0;

    if (o->from && !run) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "--from is an option of run, not of %s", cmd);
    }
    if (!replay && (o->modes || o->partitions || o->execute)) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "--%s is an option of replay, not of %s",
                        o->modes        ? mode_name(o->mode)
                        : o->partitions ? "partitions"
                                        : "execute",
                        cmd);
    }
    if (replay && o->modes != 1) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "replay needs one of " MODE_LIST);
    }
    return AKV_OK;
}

/* ------------------------------------------------------------------------
 * Planning (pure)
 */

void akv_replay_plan(const struct akv_replay_opts *o, const struct akv_kpart *p,
                     int start_latest, int64_t time_offset,
                     struct akv_replay_row *row)
{
    int64_t base;
    int64_t v = 0;

    memset(row, 0, sizeof(*row));
    row->partition = p->partition;
    row->current = p->committed;
    row->low = p->low;
    row->high = p->high;
    switch (o->mode) {
    case AKV_REPLAY_TO_EARLIEST:
        v = p->low;
        break;
    case AKV_REPLAY_TO_LATEST:
        v = p->high;
        break;
    case AKV_REPLAY_TO_OFFSET:
        v = o->value;
        break;
    case AKV_REPLAY_SHIFT_BY:
    case AKV_REPLAY_TO_CURRENT:
        /* Without a committed offset the group would start where
         * kafka.auto_offset_reset says: shift from there. */
        base = p->committed >= 0 ? p->committed
               : start_latest    ? p->high
                                 : p->low;
        if (o->mode == AKV_REPLAY_TO_CURRENT) {
            v = base;
            break;
        }
        if (o->value > 0 && base > INT64_MAX - o->value) {
            v = INT64_MAX;
        } else if (o->value < 0 && base < INT64_MIN - o->value) {
            v = INT64_MIN;
        } else {
            v = base + o->value;
        }
        break;
    case AKV_REPLAY_TO_DATETIME:
    case AKV_REPLAY_BY_DURATION:
    case AKV_REPLAY_FROM_FILE:
        v = time_offset;
        break;
    default:
        v = p->committed >= 0 ? p->committed : p->low;
        break;
    }
    row->wanted = v;
    row->target = v;
    if (v < p->low) {
        row->target = p->low;
        row->clamped = -1;
    } else if (v > p->high) {
        row->target = p->high;
        row->clamped = 1;
    }
}

/* ------------------------------------------------------------------------
 * The commands
 */

/* Appends "a,b-c" for \p parts[i] of every row i with flag[i] set. */
static void partition_list(const struct akv_replay_row *rows, size_t n,
                           const char *flag, char *buf, size_t size)
{
    size_t len = 0;
    size_t i = 0;

    buf[0] = '\0';
    while (i < n && len < size) {
        size_t j;
        int w;

        if (!flag[i]) {
            i++;
            continue;
        }
        for (j = i; j + 1 < n && flag[j + 1] &&
                    rows[j + 1].partition == rows[j].partition + 1;
             j++) {
        }
        w = j > i ? snprintf(buf + len, size - len, "%s%d-%d", len ? "," : "",
                             (int)rows[i].partition, (int)rows[j].partition)
                  : snprintf(buf + len, size - len, "%s%d", len ? "," : "",
                             (int)rows[i].partition);
        if (w < 0) {
            break;
        }
        len += (size_t)w;
        i = j + 1;
    }
}

static void describe_mode(const struct akv_replay_opts *o, int64_t ts,
                          char *buf, size_t size)
{
    char when[40];

    akv_replay_format_time(ts, when, sizeof(when));
    switch (o->mode) {
    case AKV_REPLAY_TO_OFFSET:
    case AKV_REPLAY_SHIFT_BY:
        snprintf(buf, size, "%s %lld", mode_name(o->mode), o->value);
        break;
    case AKV_REPLAY_TO_DATETIME:
        snprintf(buf, size, "%s %s", mode_name(o->mode), when);
        break;
    case AKV_REPLAY_BY_DURATION:
        snprintf(buf, size, "%s %s (%s)", mode_name(o->mode), o->mode_arg,
                 when);
        break;
    case AKV_REPLAY_FROM_FILE:
        snprintf(buf, size, "%s %s", mode_name(o->mode), o->mode_arg);
        break;
    default:
        snprintf(buf, size, "%s", mode_name(o->mode));
        break;
    }
}

static void row_note(const struct akv_replay_row *r, char *buf, size_t size)
{
    int len = 0;

    buf[0] = '\0';
    if (r->current < 0) {
        len = snprintf(buf, size, "nothing committed");
    }
    if (r->clamped && len >= 0 && (size_t)len < size) {
        snprintf(buf + len, size - (size_t)len,
                 "%sclamped to the log %s (wanted %lld)", len ? "; " : "",
                 r->clamped < 0 ? "start" : "end", (long long)r->wanted);
    }
}

static void print_table(FILE *out, const char *group, const char *topic,
                        const char *mode, const struct akv_replay_row *rows,
                        size_t n)
{
    char cur[24];
    char note[160];
    size_t i;

    fprintf(out, "GROUP %s  TOPIC %s  RESET %s\n", group, topic, mode);
    fprintf(out, "%9s %12s %12s %12s %12s  %s\n", "PARTITION", "CURRENT", "NEW",
            "LOG-START", "LOG-END", "NOTE");
    for (i = 0; i < n; i++) {
        const struct akv_replay_row *r = &rows[i];

        if (r->current >= 0) {
            snprintf(cur, sizeof(cur), "%lld", (long long)r->current);
        } else {
            snprintf(cur, sizeof(cur), "-");
        }
        row_note(r, note, sizeof(note));
        fprintf(out, "%9d %12s %12lld %12lld %12lld%s%s\n", (int)r->partition,
                cur, (long long)r->target, (long long)r->low,
                (long long)r->high, *note ? "  " : "", note);
    }
}

static akv_err_t print_json(FILE *out, const char *group, const char *topic,
                            const struct akv_replay_opts *o, int64_t ts,
                            const struct akv_replay_row *rows, size_t n,
                            char *errstr, size_t errstr_size)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = NULL;
    char when[40];
    size_t i;

    if (!root) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    cJSON_AddStringToObject(root, "group", group);
    cJSON_AddStringToObject(root, "topic", topic);
    cJSON_AddStringToObject(root, "mode", mode_name(o->mode));
    if (o->mode == AKV_REPLAY_TO_OFFSET || o->mode == AKV_REPLAY_SHIFT_BY) {
        cJSON_AddNumberToObject(root, "value", (double)o->value);
    }
    if (o->mode == AKV_REPLAY_TO_DATETIME ||
        o->mode == AKV_REPLAY_BY_DURATION) {
        akv_replay_format_time(ts, when, sizeof(when));
        cJSON_AddStringToObject(root, "datetime", when);
        cJSON_AddNumberToObject(root, "timestamp", (double)ts);
    }
    cJSON_AddBoolToObject(root, "execute", o->execute);
    arr = cJSON_AddArrayToObject(root, "partitions");
    for (i = 0; arr && i < n; i++) {
        const struct akv_replay_row *r = &rows[i];
        cJSON *e = cJSON_CreateObject();

        if (!e) {
            break;
        }
        cJSON_AddNumberToObject(e, "partition", r->partition);
        cJSON_AddNumberToObject(e, "current", (double)r->current);
        cJSON_AddNumberToObject(e, "new", (double)r->target);
        cJSON_AddNumberToObject(e, "low", (double)r->low);
        cJSON_AddNumberToObject(e, "end", (double)r->high);
        cJSON_AddNumberToObject(e, "wanted", (double)r->wanted);
        if (r->clamped) {
            cJSON_AddStringToObject(e, "clamped",
                                    r->clamped < 0 ? "start" : "end");
        } else {
            cJSON_AddNullToObject(e, "clamped");
        }
        cJSON_AddItemToArray(arr, e);
    }
    if (akv_json_write_line(out, root) < 0) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    return AKV_OK;
}

static int is_time_mode(enum akv_replay_mode mode)
{
    return mode == AKV_REPLAY_TO_DATETIME || mode == AKV_REPLAY_BY_DURATION;
}

/* What a command reads from Kafka and plans: the partitions of the topic
 * with the group's committed offsets, the group's members, and a row for
 * each selected partition. Released by session_free(). */
struct session {
    struct akv_kadmin *ka;
    struct akv_kpart *parts;
    size_t n;
    struct akv_kgroup g;
    struct akv_replay_row *rows;
    size_t nrows;
};

static void session_free(struct session *ss)
{
    akv_kgroup_free(&ss->g);
    free(ss->rows);
    free(ss->parts);
    akv_kadmin_destroy(ss->ka);
}

/* Connects as \p group on \p topic (NULL: those of \p s) and reads the
 * partitions, checks that \p ranges (NULL: all) are partitions of the
 * topic, then describes the group. */
static akv_err_t session_open(struct session *ss, const struct akv_settings *s,
                              const char *group, const char *topic,
                              const struct akv_prange *ranges, size_t nr,
                              char *errstr, size_t errstr_size)
{
    akv_err_t err;

    err = akv_kadmin_new(&ss->ka, s, group, topic, errstr, errstr_size);
    if (err) {
        return err;
    }
    err =
        akv_kadmin_partitions(ss->ka, &ss->parts, &ss->n, errstr, errstr_size);
    if (err) {
        return err;
    }
    if (ranges) {
        err = akv_replay_partitions_exist(ranges, nr, ss->parts, ss->n,
                                          akv_kadmin_topic(ss->ka), errstr,
                                          errstr_size);
        if (err) {
            return err;
        }
    }
    akv_kadmin_describe(ss->ka, &ss->g, ss->parts, ss->n);
    return AKV_OK;
}

/* What a --from-file says: the offsets, and for each partition of the
 * topic whether it is in the file. */
struct from_file {
    struct akv_replay_offset *v;
    size_t n;
};

/* \p p's offset in the file. @returns 1 when it is there. */
static int file_offset(const struct from_file *f, int32_t p, int64_t *off)
{
    size_t i;

    for (i = 0; f && i < f->n; i++) {
        if (f->v[i].partition == p) {
            *off = f->v[i].offset;
            return 1;
        }
    }
    return 0;
}

/* Reads --from-file's offsets for the session's topic, each of them a
 * partition of it. */
static akv_err_t read_from_file(const struct session *ss, const char *path,
                                struct from_file *f, char *errstr,
                                size_t errstr_size)
{
    FILE *fp = fopen(path, "r");
    char text[1 << 16];
    char why[512];
    size_t len;
    size_t i;
    size_t j;

    if (!fp) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "--from-file %s: %s", path, strerror(errno));
    }
    len = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[len] = '\0';
    if (len == sizeof(text) - 1 ||
        akv_replay_parse_offsets(text, akv_kadmin_topic(ss->ka), &f->v, &f->n,
                                 why, sizeof(why)) != AKV_OK) {
        return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                        "--from-file %s: %s", path,
                        len == sizeof(text) - 1 ? "too long" : why);
    }
    for (i = 0; i < f->n; i++) {
        for (j = 0; j < ss->n && ss->parts[j].partition != f->v[i].partition;
             j++) {
        }
        if (j == ss->n) {
            return akv_errf(AKV_ERR_INVALID, errstr, errstr_size,
                            "--from-file %s: unknown partition %d of %s", path,
                            (int)f->v[i].partition, akv_kadmin_topic(ss->ka));
        }
    }
    return AKV_OK;
}

/* The rows of every selected partition (\p ranges NULL: all; with
 * --from-file, those the file names), time searches done. */
static akv_err_t plan_rows(struct session *ss, const struct akv_settings *s,
                           const struct akv_replay_opts *o, int64_t ts,
                           const struct akv_prange *ranges, size_t nr,
                           const struct from_file *file, char *errstr,
                           size_t errstr_size)
{
    int start_latest = strcmp(s->kafka_auto_offset_reset, "latest") == 0;
    akv_err_t err;
    size_t i;

    ss->rows = calloc(ss->n ? ss->n : 1, sizeof(*ss->rows));
    if (!ss->rows) {
        return akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
    }
    ss->nrows = 0;
    for (i = 0; i < ss->n; i++) {
        struct akv_kpart *p = &ss->parts[i];
        struct akv_replay_row *row = &ss->rows[ss->nrows];
        int64_t toff = 0;
        int searched = 0;

        if ((ranges && !akv_replay_prange_has(ranges, nr, p->partition)) ||
            (o->mode == AKV_REPLAY_FROM_FILE &&
             !file_offset(file, p->partition, &toff))) {
            continue;
        }
        if (is_time_mode(o->mode)) {
            err = akv_kadmin_offset_for_time(ss->ka, p, ts, &toff, &searched,
                                             errstr, errstr_size);
            if (err) {
                return err;
            }
        }
        akv_replay_plan(o, p, start_latest, toff, row);
        row->searched = searched;
        ss->nrows++;
    }
    return AKV_OK;
}

static akv_err_t commit_rows(struct akv_kadmin *ka,
                             const struct akv_replay_row *rows, size_t n,
                             const char *only, int *refused, char *errstr,
                             size_t errstr_size)
{
    int32_t *partitions = calloc(n ? n : 1, sizeof(*partitions));
    int64_t *offsets = calloc(n ? n : 1, sizeof(*offsets));
    akv_err_t err = AKV_OK;
    size_t k = 0;
    size_t i;

    *refused = 0;
    if (!partitions || !offsets) {
        err = akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    for (i = 0; i < n; i++) {
        if (!only || only[i]) {
            partitions[k] = rows[i].partition;
            offsets[k] = rows[i].target;
            k++;
        }
    }
    err = akv_kadmin_commit(ka, partitions, offsets, k, refused, errstr,
                            errstr_size);
out:
    free(partitions);
    free(offsets);
    return err;
}

static void note_searched(const struct akv_replay_row *rows, size_t n)
{
    char *flag = calloc(n ? n : 1, 1);
    char list[256];
    size_t i;
    int any = 0;

    if (!flag) {
        return;
    }
    for (i = 0; i < n; i++) {
        flag[i] = (char)rows[i].searched;
        any |= rows[i].searched;
    }
    if (any) {
        partition_list(rows, n, flag, list, sizeof(list));
        fprintf(stderr,
                "note: partitions %s: the broker's offset for the time did "
                "not match the message timestamps; the offsets were found by "
                "reading them\n",
                list);
    }
    free(flag);
}

/* The time the time modes go by: the one given, or the duration before
 * now. */
static int64_t replay_time(const struct akv_replay_opts *o)
{
    if (o->mode == AKV_REPLAY_TO_DATETIME) {
        return o->value;
    }
    if (o->mode == AKV_REPLAY_BY_DURATION) {
        return akv_wall_ms() - o->value;
    }
    return 0;
}

/* Offsets are committed from outside the group, so --execute is refused
 * while it has active members; a dry run says so, or that the brokers
 * cannot tell. */
static akv_err_t check_members(const struct session *ss,
                               const struct akv_replay_opts *o, int *refused,
                               char *errstr, size_t errstr_size)
{
    const struct akv_kgroup *g = &ss->g;
    const char *group = akv_kadmin_group(ss->ka);

    if (g->known && g->member_count > 0) {
        if (o->execute) {
            *refused = 1;
            return akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                            "group %s has %zu active member%s (state %s): "
                            "stop its workers before replaying; nothing "
                            "changed",
                            group, g->member_count,
                            g->member_count == 1 ? "" : "s", g->state);
        }
        fprintf(stderr,
                "note: group %s has %zu active member%s (state %s): "
                "--execute is refused until they stop\n",
                group, g->member_count, g->member_count == 1 ? "" : "s",
                g->state);
    } else if (!g->known && !o->execute) {
        fprintf(stderr,
                "note: members of group %s: unknown (the broker does not "
                "answer DescribeGroups: %s); --execute is refused if the "
                "group has active members\n",
                group, g->error);
    }
    return AKV_OK;
}

/* --execute: commits every row; a group that has become active meanwhile
 * refuses, and the reason says what to do. */
static akv_err_t execute_rows(const struct session *ss, int *refused,
                              char *errstr, size_t errstr_size)
{
    char why[512];
    akv_err_t err;

    err = commit_rows(ss->ka, ss->rows, ss->nrows, NULL, refused, why,
                      sizeof(why));
    if (err) {
        akv_errf(err, errstr, errstr_size, "%s%s", why,
                 *refused ? ": stop its workers before replaying; "
                            "nothing changed"
                          : "");
    }
    return err;
}

/* The plan, as a table or JSON on \p out, then whether it was applied. */
static akv_err_t print_result(const struct session *ss,
                              const struct akv_replay_opts *o, int64_t ts,
                              int json, FILE *out, char *errstr,
                              size_t errstr_size)
{
    const char *group = akv_kadmin_group(ss->ka);
    const char *topic = akv_kadmin_topic(ss->ka);
    akv_err_t err = AKV_OK;
    char mode[128];

    note_searched(ss->rows, ss->nrows);
    describe_mode(o, ts, mode, sizeof(mode));
    if (json) {
        err = print_json(out, group, topic, o, ts, ss->rows, ss->nrows, errstr,
                         errstr_size);
    } else {
        print_table(out, group, topic, mode, ss->rows, ss->nrows);
    }
    if (o->execute) {
        fprintf(json ? stderr : out,
                "executed: group %s committed the new offsets of %zu "
                "partition%s\n",
                group, ss->nrows, ss->nrows == 1 ? "" : "s");
    } else {
        fprintf(json ? stderr : out,
                "dry run: nothing changed; add --execute to apply\n");
    }
    return err;
}

/* --export: the plan as "topic,partition,offset" lines, the format
 * --from-file reads (and kafka-consumer-groups --export writes). */
static akv_err_t export_rows(const struct session *ss, const char *path,
                             char *errstr, size_t errstr_size)
{
    FILE *fp = fopen(path, "w");
    size_t i;

    if (!fp) {
        return akv_errf(AKV_ERR_IO, errstr, errstr_size, "--export %s: %s",
                        path, strerror(errno));
    }
    for (i = 0; i < ss->nrows; i++) {
        fprintf(fp, "%s,%d,%lld\n", akv_kadmin_topic(ss->ka),
                (int)ss->rows[i].partition, (long long)ss->rows[i].target);
    }
    if (fclose(fp) != 0) {
        return akv_errf(AKV_ERR_IO, errstr, errstr_size, "--export %s: %s",
                        path, strerror(errno));
    }
    return AKV_OK;
}

akv_err_t akv_replay_run(const struct akv_settings *s,
                         const struct akv_replay_opts *o, const char *group,
                         const char *topic, int json, FILE *out, int *refused,
                         char *errstr, size_t errstr_size)
{
    struct session ss;
    struct akv_prange *ranges = NULL;
    struct from_file file = {NULL, 0};
    size_t nr = 0;
    int64_t ts = replay_time(o);
    akv_err_t err;

    *refused = 0;
    memset(&ss, 0, sizeof(ss));
    if (o->partitions) {
        err = akv_replay_parse_partitions(o->partitions, &ranges, &nr, errstr,
                                          errstr_size);
        if (err) {
            goto out;
        }
    }
    err = session_open(&ss, s, group, topic, ranges, nr, errstr, errstr_size);
    if (err) {
        goto out;
    }
    err = check_members(&ss, o, refused, errstr, errstr_size);
    if (err) {
        goto out;
    }
    if (o->mode == AKV_REPLAY_FROM_FILE) {
        err = read_from_file(&ss, o->mode_arg, &file, errstr, errstr_size);
        if (err) {
            goto out;
        }
    }
    err = plan_rows(&ss, s, o, ts, ranges, nr, &file, errstr, errstr_size);
    if (err) {
        goto out;
    }
    if (o->export_path) {
        err = export_rows(&ss, o->export_path, errstr, errstr_size);
        if (err) {
            goto out;
        }
    }
    if (o->execute) {
        err = execute_rows(&ss, refused, errstr, errstr_size);
        if (err) {
            goto out;
        }
    }
    err = print_result(&ss, o, ts, json, out, errstr, errstr_size);
out:
    session_free(&ss);
    free(ranges);
    free(file.v);
    return err;
}

/* Flags in \p fresh the rows without a committed offset, where --from
 * applies, and in \p kept the others, which it leaves alone and names.
 * @returns how many rows are fresh. */
static size_t mark_fresh(const struct akv_settings *s,
                         const struct akv_replay_opts *o,
                         const struct session *ss, char *fresh, char *kept)
{
    size_t nfresh = 0;
    size_t nkept;
    char list[512];
    size_t i;

    for (i = 0; i < ss->nrows; i++) {
        fresh[i] = ss->rows[i].current < 0;
        kept[i] = !fresh[i];
        nfresh += (size_t)fresh[i];
    }
    nkept = ss->nrows - nfresh;
    if (nkept > 0) {
        partition_list(ss->rows, ss->nrows, kept, list, sizeof(list));
        akv_log_info(
            "replay", "--from %s: %s %s of group %s %s and %s left alone",
            o->from_arg, nkept == 1 ? "partition" : "partitions", list,
            s->kafka_group,
            nkept == 1 ? "has a committed offset" : "have committed offsets",
            nkept == 1 ? "is" : "are");
    }
    return nfresh;
}

static void log_started(const struct akv_settings *s,
                        const struct akv_replay_opts *o,
                        const struct session *ss, const char *fresh)
{
    size_t i;

    for (i = 0; i < ss->nrows; i++) {
        const struct akv_replay_row *r = &ss->rows[i];

        if (fresh[i]) {
            akv_log_info("replay",
                         "--from %s: group %s starts partition %d at offset "
                         "%lld (log %lld..%lld)",
                         o->from_arg, s->kafka_group, (int)r->partition,
                         (long long)r->target, (long long)r->low,
                         (long long)r->high);
        }
    }
}

akv_err_t akv_replay_start_from(const struct akv_settings *s,
                                const struct akv_replay_opts *o, char *errstr,
                                size_t errstr_size)
{
    struct session ss;
    char *fresh = NULL; /* no committed offset: --from applies */
    char *kept = NULL;  /* a committed offset: left alone */
    int refused = 0;
    akv_err_t err;

    memset(&ss, 0, sizeof(ss));
    err = session_open(&ss, s, NULL, NULL, NULL, 0, errstr, errstr_size);
    if (err) {
        goto out;
    }
    if (ss.g.known && ss.g.member_count > 0) {
        akv_log_warn("replay",
                     "--from %s ignored: group %s has %zu active member%s "
                     "(state %s), which own its offsets",
                     o->from_arg, s->kafka_group, ss.g.member_count,
                     ss.g.member_count == 1 ? "" : "s", ss.g.state);
        goto out;
    }
    fresh = calloc(ss.n ? ss.n : 1, 1);
    kept = calloc(ss.n ? ss.n : 1, 1);
    if (!fresh || !kept) {
        err = akv_errf(AKV_ERR_NOMEM, errstr, errstr_size, "out of memory");
        goto out;
    }
    err = plan_rows(&ss, s, o, o->value, NULL, 0, NULL, errstr, errstr_size);
    if (err) {
        goto out;
    }
    if (mark_fresh(s, o, &ss, fresh, kept) == 0) {
        goto out; /* every partition has a committed offset */
    }
    err = commit_rows(ss.ka, ss.rows, ss.nrows, fresh, &refused, errstr,
                      errstr_size);
    if (err && refused) {
        akv_log_warn("replay", "--from %s ignored: %s", o->from_arg, errstr);
        err = AKV_OK;
        goto out;
    }
    if (err) {
        goto out;
    }
    log_started(s, o, &ss, fresh);
out:
    free(kept);
    free(fresh);
    session_free(&ss);
    return err;
}
