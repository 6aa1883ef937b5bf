/*
 * metrics — a Prometheus metrics registry and its text exposition (0.0.4).
 *
 * A registry holds families (counter, gauge, histogram), each with a name,
 * a HELP text and up to AKV_METRIC_MAX_LABELS label names. A series is one
 * combination of label values of a family; the worker gets it once (a
 * slow-ish lookup under the registry's lock) and keeps the pointer, so an
 * update is a lock-free atomic operation.
 *
 * Thread safety:
 *  - akv_metrics_new() and akv_metrics_free() must not run concurrently with
 *    anything else on the same registry.
 *  - Creating families, getting, removing, clearing and sweeping series and
 *    rendering take the registry's mutex and may be called from any thread.
 *  - Updates (akv_metric_add/inc/set/observe) and reads (akv_metric_value,
 *    akv_metric_count) take no lock and may run on any thread,
 *    concurrently with rendering and with each other.
 *  - Removing a series (akv_metric_remove, akv_metric_remove_labels,
 *    akv_metric_family_clear, akv_metric_family_sweep) frees it: the caller
 *    must make sure no thread still updates it. In the worker, series are
 *    updated and removed on the main thread only and the HTTP thread only
 *    renders, so dropping the pointer when removing the series is enough.
 *  - Every function taking a family or a series accepts NULL and does
 *    nothing, so a failed lookup needs no check at each update.
 *  - A render running alongside updates sees every sample whole (values are
 *    read atomically); a histogram's le="+Inf" bucket always equals its
 *    _count, while its _sum may not yet include observations in flight.
 *
 * Label values may come from outside (topic names, ...): they are stored as
 * valid UTF-8 (each byte that is not part of a valid sequence becomes
 * U+FFFD, as Prometheus rejects anything else) and escaped on output, so no
 * value can break the exposition. A family holds at most max_series series,
 * so they cannot make the registry grow without bound either.
 */
#ifndef AKV_COMMON_METRICS_H
#define AKV_COMMON_METRICS_H

#include "buf.h"
#include "err.h"

#include <stddef.h>
#include <stdint.h>

/** Most label names a family may have. */
#define AKV_METRIC_MAX_LABELS 4
/** Most buckets (besides +Inf) a histogram may have. */
#define AKV_METRIC_MAX_BUCKETS 64
/** Series per family when the spec says 0. */
#define AKV_METRIC_DEFAULT_MAX_SERIES 10000
/** Room akv_metrics_format_double() needs, terminator included. */
#define AKV_METRIC_DOUBLE_MAX 32

enum akv_metric_type {
    AKV_METRIC_COUNTER = 0,
    AKV_METRIC_GAUGE,
    AKV_METRIC_HISTOGRAM,
};

/** What a family is; given to akv_metrics_family(), which copies it. */
struct akv_metric_spec {
    enum akv_metric_type type;
    const char *name; /**< [a-zA-Z_:][a-zA-Z0-9_:]* */
    const char *help; /**< any text; backslash and newline are escaped */
    /** label names, [a-zA-Z_][a-zA-Z0-9_]* not starting with "__" (and not
     *  "le" for a histogram); the first NULL ends the list */
    const char *labels[AKV_METRIC_MAX_LABELS];
    const double *buckets; /**< histogram: finite, strictly ascending upper
                                bounds; +Inf is implicit */
    size_t nbuckets;       /**< entries in buckets, 0..AKV_METRIC_MAX_BUCKETS */
    size_t max_series;     /**< 0 = AKV_METRIC_DEFAULT_MAX_SERIES */
};

struct akv_metrics;       /**< a registry */
struct akv_metric_family; /**< a metric name, its type, help and labels */
struct akv_metric;        /**< a series: one label-value combination */

/** @returns an empty registry, or NULL when out of memory. */
struct akv_metrics *akv_metrics_new(void);

/** @brief Frees the registry with its families and series. NULL is fine. */
void akv_metrics_free(struct akv_metrics *reg);

/**
 * @brief Adds a family; it is rendered after the families added before it.
 *
 * An unlabelled family gets its single series at once, at 0, so it is
 * rendered before its first update.
 *
 * @returns AKV_OK and sets \p out (valid until the registry is freed);
 *          AKV_ERR_INVALID for a bad name, label name or bucket list, or a
 *          name whose samples would clash with an existing family's (such
 *          as "x_count" next to the histogram "x"); AKV_ERR_NOMEM.
 */
akv_err_t akv_metrics_family(struct akv_metrics *reg,
                             const struct akv_metric_spec *spec,
                             struct akv_metric_family **out, char *errstr,
                             size_t errstr_size);

/**
 * @brief Gets the series of \p fam with these label values, creating it
 *        (at 0, rendered after the existing ones) when there is none.
 * @param values as many strings as the family has label names, in the same
 *        order (NULL for an unlabelled family); any bytes.
 * @returns the series, stable until it is removed; NULL when a value is
 *          NULL, the family already holds max_series series, or out of
 *          memory.
 */
struct akv_metric *akv_metric_get(struct akv_metric_family *fam,
                                  const char *const *values);

/** @brief Removes and frees a series (see Thread safety). NULL is fine. */
void akv_metric_remove(struct akv_metric *s);

/**
 * @brief Removes the series of \p fam with these label values, if any.
 * @returns 1 when one was removed, 0 when there was none.
 */
int akv_metric_remove_labels(struct akv_metric_family *fam,
                             const char *const *values);

/** @brief Removes every series of \p fam. */
void akv_metric_family_clear(struct akv_metric_family *fam);

/**
 * @brief Starts rebuilding \p fam: marks every series stale.
 *
 * Then akv_metric_get() each series that should remain (which unmarks it
 * and keeps its pointer and value), update them, and call
 * akv_metric_family_sweep() to remove the rest. A render in between sees
 * old and new series side by side, never an empty family. One rebuild of
 * a family at a time.
 */
void akv_metric_family_mark(struct akv_metric_family *fam);

/**
 * @brief Removes the series still stale since akv_metric_family_mark().
 * @returns how many were removed.
 */
size_t akv_metric_family_sweep(struct akv_metric_family *fam);

/** @returns how many series \p fam holds. */
size_t akv_metric_family_size(struct akv_metric_family *fam);

/**
 * @brief Adds \p v to a counter or gauge. Lock-free.
 * @remark A counter ignores a negative or NaN \p v (it never goes down);
 *         a histogram ignores this call.
 */
void akv_metric_add(struct akv_metric *s, double v);

/** @brief Adds 1 to a counter or gauge. Lock-free. */
void akv_metric_inc(struct akv_metric *s);

/** @brief Sets a gauge to \p v. Lock-free. Counters and histograms ignore
 *         this call. */
void akv_metric_set(struct akv_metric *s, double v);

/**
 * @brief Records \p v in a histogram: one bucket count and the sum.
 *        Lock-free. A NaN \p v is ignored; counters and gauges ignore
 *        this call.
 */
void akv_metric_observe(struct akv_metric *s, double v);

/** @returns a counter's or gauge's value, a histogram's sum of
 *           observations; 0 for NULL. */
double akv_metric_value(const struct akv_metric *s);

/** @returns a histogram's number of observations; 0 otherwise. */
uint64_t akv_metric_count(const struct akv_metric *s);

/**
 * @brief Appends the text exposition (format 0.0.4) of every family to
 *        \p out: HELP and TYPE lines, then one sample line per value.
 * @returns AKV_OK; AKV_ERR_TOOBIG or AKV_ERR_NOMEM when \p out refused to
 *          grow, in which case \p out is left as it was.
 */
akv_err_t akv_metrics_render(struct akv_metrics *reg, struct akv_buf *out);

/**
 * @brief Formats \p v as Prometheus parses it: "+Inf", "-Inf", "NaN", an
 *        integer without exponent up to 2^53, otherwise the shortest of
 *        %.15g, %.16g and %.17g that reads back as \p v.
 * @param out at least AKV_METRIC_DOUBLE_MAX bytes.
 * @returns the length written. Exposed for tests.
 */
size_t akv_metrics_format_double(double v, char *out);

#endif /* AKV_COMMON_METRICS_H */
