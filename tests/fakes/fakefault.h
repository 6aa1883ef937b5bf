/*
 * fakefault — the fault plan of the loopback stand-ins (fake-vault,
 * fake-authentik): the JSON object behind GET|POST|DELETE /_fake/faults and
 * --faults, and what it does to the requests it hits.
 *
 * The keys every fake takes are read, checked, answered and applied here:
 * latency_ms, latency_jitter_ms, scope, error_rates, retry_after, drop_rate,
 * drop_after_rate, truncate_rate and seed. A fake describes the rest in a
 * struct fakefault_spec: the statuses it may inject and their bodies, its
 * scope names and which requests they match, its own keys, and the faults
 * of its own that hit whatever the scope (a sealed Vault, a refused token).
 *
 * A plan is immutable once published: a request takes a reference for its
 * whole life, so replacing the plan never waits for a request asleep in its
 * latency, and a request never sees half of an old plan and half of a new
 * one.
 */
#ifndef AKV_TESTS_FAKEFAULT_H
#define AKV_TESTS_FAKEFAULT_H

#include "fakehttp.h"

#include <cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/** Most statuses a fake may offer to "error_rates". */
#define FAKEFAULT_MAX_CODES 8

struct fakefault_plan;

/**
 * What a fake adds to the common plan; static data. The hooks marked
 * optional may be NULL. \p ctx is the one given to fakefault_slot_init(),
 * \p rctx the one given to fakefault_inject().
 */
struct fakefault_spec {
    /** The statuses "error_rates" may inject, in the order a draw walks
     *  them (at most FAKEFAULT_MAX_CODES). */
    const int *codes;
    size_t ncodes;
    /** The values of "scope"; [0] is "all", which hits every request. */
    const char *const *scopes;
    size_t nscopes;
    /** The fake's own keys, taken besides the common ones. */
    const char *const *keys;
    size_t nkeys;
    /** Size of the fake's part of a plan (fakefault_plan.ext), zeroed. */
    size_t ext_size;
    /** What the bodies of /_fake/faults end with: "\n" or "". */
    const char *eol;
    /** The 500 body of /_fake/faults when memory runs out. */
    const char *oom_body;

    /** Reads the value of keys[idx], never null, into \p ext.
     *  @returns 0, or -1 with a message in \p err. */
    int (*parse_key)(void *ext, size_t idx, const cJSON *v, const void *ctx,
                     char *err, size_t errsz);
    /** Optional: checks \p ext once every key was read and the rates add
     *  up. @returns 0, or -1 with a message in \p err. */
    int (*check)(const void *ext, const void *ctx, char *err, size_t errsz);
    /** Optional: frees what \p ext owns (not \p ext itself). */
    void (*ext_free)(void *ext);
    /** Adds the fake's keys to the effective plan \p o; \p ext is NULL
     *  when there is no plan. */
    void (*add_json)(cJSON *o, const void *ext, const void *ctx);
    /** Whether \p req is in the plan's scope; asked only for scopes other
     *  than "all". */
    int (*in_scope)(const struct fakefault_plan *fp, void *rctx,
                    const struct fakehttp_request *req);
    /** Optional: the fake's faults that hit every request, in scope or
     *  not, once the latency was served. @returns 1 when \p resp is set. */
    int (*gate)(const struct fakefault_plan *fp, void *rctx,
                const struct fakehttp_request *req,
                struct fakehttp_response *resp);
    /** Sets the answer of an injected \p code; fakefault_inject() adds
     *  Retry-After (429, 503) and counts it. */
    void (*reply_status)(const struct fakefault_plan *fp, void *rctx,
                         const struct fakehttp_request *req,
                         struct fakehttp_response *resp, int code);
};

/** A published plan. Read-only for the fakes. */
struct fakefault_plan {
    const struct fakefault_spec *spec;
    atomic_uint refs;
    atomic_ullong seq; /**< affected requests so far: the draw index */
    uint64_t seed;
    int has_seed;
    long latency_ms;
    long jitter_ms;
    int scope;                         /**< index into spec->scopes */
    double rates[FAKEFAULT_MAX_CODES]; /**< by index into spec->codes */
    double drop;
    double drop_after;
    double truncate;
    double total;        /**< sum of every rate */
    long retry_after;    /**< seconds; -1: no Retry-After header */
    int retry_http_date; /**< send it as an HTTP-date, not seconds */
    void *ext;           /**< the fake's keys (spec->ext_size bytes) */
};

/** Where a fake keeps its current plan. */
struct fakefault_slot {
    const struct fakefault_spec *spec;
    const void *ctx; /**< handed to the spec's plan hooks */
    /* NULL when there is no plan, which the request path checks without
     * the lock; the lock only guards taking a reference against the plan
     * being replaced and freed. */
    pthread_mutex_t lock;
    _Atomic(struct fakefault_plan *) plan;
};

/** The counters every fake reports under "faults" in /_fake/stats. */
struct fakefault_counts {
    atomic_ullong errors[FAKEFAULT_MAX_CODES]; /**< by index into codes */
    atomic_ullong dropped;
    atomic_ullong dropped_after;
    atomic_ullong truncated;
    atomic_ullong latency_ms_total;
};

/** What happens to the answer once the request was handled normally. */
enum fakefault_post {
    FAKEFAULT_POST_NONE,
    FAKEFAULT_POST_DROP,
    FAKEFAULT_POST_TRUNCATE,
};

/** @brief An empty slot for plans of \p spec. */
void fakefault_slot_init(struct fakefault_slot *s,
                         const struct fakefault_spec *spec, const void *ctx);

/** @brief Drops the plan (once no request holds it) and the lock. */
void fakefault_slot_destroy(struct fakefault_slot *s);

/**
 * @brief Publishes the plan to start with: \p json (--faults; NULL for
 *        none), with \p latency_ms (--latency-ms) as its latency_ms unless
 *        the plan sets one.
 * @returns 0, or -1 with a message naming \p prog on stderr.
 */
int fakefault_initial(struct fakefault_slot *s, const char *json,
                      long latency_ms, const char *prog);

/**
 * @brief Serves GET|POST|DELETE /_fake/faults: POST replaces the plan
 *        (POST {} or DELETE clears it), all answer with the effective
 *        plan; a bad one is a 400 {"error":"..."} that changes nothing.
 */
void fakefault_control(struct fakefault_slot *s,
                       const struct fakehttp_request *req,
                       struct fakehttp_response *resp);

/** @returns the current plan with a reference held, or NULL for none. */
struct fakefault_plan *fakefault_acquire(struct fakefault_slot *s);

/** @brief Gives back a reference from fakefault_acquire(); NULL is a no-op. */
void fakefault_release(struct fakefault_plan *fp);

/**
 * @brief Runs before a request is handled: latency, the spec's gate, then
 *        one draw among error answers, dropped connections and the spoiling
 *        of the answer. \p fp NULL does nothing.
 * @returns 1 when \p resp is decided and normal handling must be skipped;
 *          otherwise \p post may ask fakefault_after() to spoil the answer.
 */
int fakefault_inject(struct fakefault_plan *fp, void *rctx,
                     const struct fakehttp_request *req,
                     struct fakehttp_response *resp,
                     struct fakefault_counts *counts,
                     enum fakefault_post *post);

/** @brief Spoils an answer whose operation was performed. */
void fakefault_after(enum fakefault_post post, struct fakehttp_response *resp,
                     struct fakefault_counts *counts);

/** @brief Adds the plan's Retry-After header, if it has one, to \p resp. */
void fakefault_retry_after(const struct fakefault_plan *fp,
                           struct fakehttp_response *resp);

/** @brief Zeroes \p c. */
void fakefault_counts_reset(struct fakefault_counts *c);

/** @returns 0 with \p v, an integral JSON number in [min, max], in \p out;
 *           else -1. */
int fakefault_json_long(const cJSON *v, long min, long max, long *out);

/** @brief fakefault_json_long() for the value of a plan's key.
 *  @returns 0, or -1 with "KEY must be an integer in MIN..MAX" in \p err. */
int fakefault_key_long(const cJSON *v, long min, long max, long *out, char *err,
                       size_t errsz);

#endif /* AKV_TESTS_FAKEFAULT_H */
