/*
 * consumer — librdkafka glue and the poll loop.
 *
 * Processing is sequential: one event at a time, its offset stored only
 * after its sync finished, so the committed offset never passes unfinished
 * work. A sync that fails is never retried in place: its partition is
 * paused and sought back to the event, and resumed when the backoff (or
 * the upstream's Retry-After) is due. The poll loop keeps running, so other
 * partitions progress, the group session stays alive whatever the outage
 * lasts, and nothing behind the failing event in its partition is
 * committed meanwhile. Poison events go to the dead-letter topic, and their
 * offset moves only once Kafka acknowledged the copy.
 */
#include "consumer.h"

#include "backoff.h"
#include "dlq.h"
#include "log.h"
#include "matcher.h"
#include "prefilter.h"
#include "sync.h"

#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Per assigned partition: end-of-partition seen, and the event being
 * retried there, if any (the partition is paused until resume_at). */
struct partition_state {
    int assigned;
    int eof;
    int held;
    long long held_offset;
    unsigned attempts;    /* failed attempts of the held event */
    long long resume_at;  /* monotonic ms */
    long long first_fail; /* wall-clock ms, for the DLQ headers */
    long long last_fail;
    long long last_logged; /* monotonic ms of the last rate-limited log */
};

struct consumer {
    const struct akv_settings *settings;
    const struct akv_run_opts *opts;
    volatile sig_atomic_t *run;
    struct akv_stats *stats;
    struct akv_match_rules rules;
    struct akv_syncer *syncer;
    struct akv_dlq *dlq;
    rd_kafka_t *rk;
    struct partition_state *parts;
    int nparts;
    int ever_assigned;
    int fatal;
};

/* How long the final commit may wait for the group to settle. */
#define SHUTDOWN_COMMIT_MS 10000

enum handled {
    HANDLED_DONE, /* finished: store the offset */
    HANDLED_HELD, /* failed: paused and sought back, delivered again later */
};

static long long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long long wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void state_reset(struct partition_state *p)
{
    p->eof = 0;
    p->held = 0;
    p->held_offset = -1;
    p->attempts = 0;
    p->resume_at = 0;
    p->first_fail = 0;
    p->last_fail = 0;
    p->last_logged = 0;
}

static struct partition_state *part(struct consumer *c, int32_t partition)
{
    if (partition < 0) {
        return NULL;
    }
    if (partition >= c->nparts) {
        int n = partition + 1;
        struct partition_state *p = realloc(c->parts, (size_t)n * sizeof(*p));
        int i;

        if (!p) {
            return NULL;
        }
        for (i = c->nparts; i < n; i++) {
            p[i].assigned = 0;
            state_reset(&p[i]);
        }
        c->parts = p;
        c->nparts = n;
    }
    return &c->parts[partition];
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac,
                   const char *buf)
{
    (void)rk;
    if (level <= 3) {
        akv_log_error("kafka", "%s: %s", fac, buf);
    } else if (level == 4) {
        akv_log_warn("kafka", "%s: %s", fac, buf);
    } else if (level <= 6) {
        akv_log_info("kafka", "%s: %s", fac, buf);
    } else {
        akv_log_debug("kafka", "%s: %s", fac, buf);
    }
}

/* Informational errors (a broker going away) are logged; librdkafka
 * recovers from them by itself. Only a fatal error stops the worker. */
static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct consumer *c = opaque;
    char fatal[512];

    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
        akv_log_error("kafka", "fatal error: %s", fatal);
        c->fatal = 1;
        return;
    }
    akv_log_warn("kafka", "%s: %s", rd_kafka_err2name(err), reason);
}

static void mark_assigned(struct consumer *c,
                          const rd_kafka_topic_partition_list_t *parts,
                          int assigned)
{
    int i;

    for (i = 0; i < parts->cnt; i++) {
        struct partition_state *p = part(c, parts->elems[i].partition);

        if (p) {
            p->assigned = assigned;
            state_reset(p);
        }
    }
}

/* Commits what has been stored so far; used before giving partitions up
 * and at shutdown. Nothing stored is not an error. */
static void commit_stored(struct consumer *c, const char *why)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(c->rk, NULL, 0);

    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        akv_log_warn("kafka", "commit (%s) failed: %s", why,
                     rd_kafka_err2str(err));
    }
}

/* Errors after which a commit is worth retrying once the group settles. */
static int commit_retriable(rd_kafka_resp_err_t err)
{
    return err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
           err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION ||
           err == RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS ||
           err == RD_KAFKA_RESP_ERR_NOT_COORDINATOR ||
           err == RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE ||
           err == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT ||
           err == RD_KAFKA_RESP_ERR__TRANSPORT ||
           err == RD_KAFKA_RESP_ERR__TIMED_OUT;
}

/*
 * The last commit before leaving. When replicas stop together, the first
 * one's LeaveGroup starts a rebalance and the broker refuses the others'
 * commits until they have rejoined, which happens while the consumer is
 * polled. So keep polling (discarding what arrives: nothing more is
 * processed or stored) and retry, for a bounded time. Whatever could not be
 * committed is redone by the next owner, which is harmless.
 */
static void commit_final(struct consumer *c)
{
    long long deadline = now_ms() + SHUTDOWN_COMMIT_MS;
    rd_kafka_resp_err_t err;

    for (;;) {
        err = rd_kafka_commit(c->rk, NULL, 0);
        if (!err || err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
            return;
        }
        if (!commit_retriable(err) || now_ms() >= deadline) {
            akv_log_warn("kafka",
                         "final commit failed: %s; events after "
                         "the last commit will be redone by the next owner",
                         rd_kafka_err2str(err));
            return;
        }
        akv_log_debug("kafka", "final commit: %s, retrying",
                      rd_kafka_err2str(err));
        {
            rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, 200);

            if (rkm) {
                rd_kafka_message_destroy(rkm);
            }
        }
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    struct consumer *c = opaque;
    int coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NO_ERROR;

    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        akv_log_info("kafka", "assigned %d partition(s)", parts->cnt);
        mark_assigned(c, parts, 1);
        if (parts->cnt > 0) {
            c->ever_assigned = 1;
        }
        if (coop) {
            error = rd_kafka_incremental_assign(rk, parts);
        } else {
            rerr = rd_kafka_assign(rk, parts);
        }
        /* A partition we paused before it was revoked may come back. */
        rd_kafka_resume_partitions(rk, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        /* Sequential processing: nothing is in flight here, so what is
         * stored is exactly what is finished. Commit it before another
         * member takes the partitions over. */
        akv_log_info("kafka", "revoked %d partition(s)", parts->cnt);
        if (rd_kafka_assignment_lost(rk)) {
            akv_log_warn("kafka",
                         "%d partition(s) lost before their "
                         "offsets were committed; their next owner redoes "
                         "the events since the last commit",
                         parts->cnt);
        } else {
            commit_stored(c, "revoke");
        }
        mark_assigned(c, parts, 0);
        if (coop) {
            error = rd_kafka_incremental_unassign(rk, parts);
        } else {
            rerr = rd_kafka_assign(rk, NULL);
        }
    } else {
        akv_log_error("kafka", "rebalance failed: %s", rd_kafka_err2str(err));
        rerr = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        akv_log_error("kafka", "assignment change failed: %s",
                      rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (rerr) {
        akv_log_error("kafka", "assignment change failed: %s",
                      rd_kafka_err2str(rerr));
    }
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                    char *errstr, size_t errstr_size)
{
    char kerr[512];

    if (rd_kafka_conf_set(conf, name, value, kerr, sizeof(kerr)) !=
        RD_KAFKA_CONF_OK) {
        akv_errf(AKV_ERR_CONFIG, errstr, errstr_size, "kafka property %s: %s",
                 name, kerr);
        return -1;
    }
    return 0;
}

static rd_kafka_t *create(struct consumer *c, char *errstr, size_t errstr_size)
{
    const struct akv_settings *s = c->settings;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    char num[32];
    char kerr[512];
    size_t i;

    if (conf_set(conf, "bootstrap.servers", s->kafka_brokers, errstr,
                 errstr_size) ||
        conf_set(conf, "group.id", s->kafka_group, errstr, errstr_size) ||
        conf_set(conf, "client.id", "ak2vault", errstr, errstr_size) ||
        conf_set(conf, "auto.offset.reset", s->kafka_auto_offset_reset, errstr,
                 errstr_size) ||
        conf_set(conf, "partition.assignment.strategy", "cooperative-sticky",
                 errstr, errstr_size) ||
        conf_set(conf, "auto.commit.interval.ms", "1000", errstr,
                 errstr_size) ||
        conf_set(conf, "enable.partition.eof",
                 c->opts->exit_at_end ? "true" : "false", errstr,
                 errstr_size)) {
        goto fail;
    }
    snprintf(num, sizeof(num), "%lld", s->kafka_session_timeout_ms);
    if (conf_set(conf, "session.timeout.ms", num, errstr, errstr_size)) {
        goto fail;
    }
    snprintf(num, sizeof(num), "%lld", s->kafka_max_poll_interval_ms);
    if (conf_set(conf, "max.poll.interval.ms", num, errstr, errstr_size)) {
        goto fail;
    }
    for (i = 0; i < s->kafka_properties.n; i++) {
        if (conf_set(conf, s->kafka_properties.names[i],
                     s->kafka_properties.values[i], errstr, errstr_size)) {
            goto fail;
        }
    }
    /* Set last so that no pass-through property can undo at-least-once:
     * offsets are stored by hand once an event is finished, and the stored
     * offsets are committed automatically and at every revoke/shutdown. */
    if (conf_set(conf, "enable.auto.offset.store", "false", errstr,
                 errstr_size) ||
        conf_set(conf, "enable.auto.commit", "true", errstr, errstr_size)) {
        goto fail;
    }
    rd_kafka_conf_set_opaque(conf, c);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
    if (!rk) {
        akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                 "cannot create the Kafka consumer: %s", kerr);
        goto fail;
    }
    return rk; /* rd_kafka_new() took conf */

fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

static void store_offset(struct consumer *c, const rd_kafka_message_t *rkm)
{
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_resp_err_t err;

    rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(rkm->rkt),
                                      rkm->partition)
        ->offset = rkm->offset + 1;
    err = rd_kafka_offsets_store(c->rk, list);
    if (err) {
        /* The partition was revoked meanwhile: its new owner will redo
         * the event, which is harmless. */
        akv_log_warn("kafka", "partition=%d offset=%lld not stored: %s",
                     (int)rkm->partition, (long long)rkm->offset,
                     rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(list);
}

/* Pauses \p rkm's partition and moves it back to \p rkm, so the event is
 * delivered again once the partition is resumed. */
static void hold(struct consumer *c, const rd_kafka_message_t *rkm,
                 struct partition_state *p, long long delay)
{
    rd_kafka_topic_partition_list_t *list =
        rd_kafka_topic_partition_list_new(1);
    rd_kafka_error_t *error;

    rd_kafka_topic_partition_list_add(list, rd_kafka_topic_name(rkm->rkt),
                                      rkm->partition)
        ->offset = rkm->offset;
    rd_kafka_pause_partitions(c->rk, list);
    error = rd_kafka_seek_partitions(c->rk, list, 5000);
    if (error) {
        /* Without the seek the partition would resume after the event:
         * stop rather than risk skipping it. */
        akv_log_error("kafka",
                      "seek back to partition=%d offset=%lld failed: %s",
                      (int)rkm->partition, (long long)rkm->offset,
                      rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        c->fatal = 1;
    }
    rd_kafka_topic_partition_list_destroy(list);
    p->held = 1;
    p->held_offset = (long long)rkm->offset;
    p->resume_at = now_ms() + delay;
}

/* Resumes the paused partitions whose retry is due; returns the ms until
 * the next one is (or \p max when none is pending). */
static long long resume_due(struct consumer *c, long long max)
{
    long long now = now_ms();
    long long next = max;
    int i;

    for (i = 0; i < c->nparts; i++) {
        struct partition_state *p = &c->parts[i];
        rd_kafka_topic_partition_list_t *list;

        if (!p->assigned || !p->held || p->resume_at == 0) {
            continue;
        }
        if (p->resume_at > now) {
            if (p->resume_at - now < next) {
                next = p->resume_at - now;
            }
            continue;
        }
        list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, c->settings->kafka_topic, i);
        rd_kafka_resume_partitions(c->rk, list);
        rd_kafka_topic_partition_list_destroy(list);
        p->resume_at = 0; /* still held until its event is delivered */
    }
    return next;
}

static void count_result(struct consumer *c, enum akv_sync_result r)
{
    switch (r) {
    case AKV_SYNC_WRITTEN:
        c->stats->written++;
        break;
    case AKV_SYNC_UNCHANGED:
        c->stats->unchanged++;
        break;
    case AKV_SYNC_GONE:
        c->stats->gone++;
        break;
    case AKV_SYNC_DELETED:
        c->stats->deleted++;
        break;
    case AKV_SYNC_FILTERED:
        c->stats->filtered++;
        break;
    }
}

static void note_failure(struct partition_state *p)
{
    long long now = wall_ms();

    p->attempts++;
    if (!p->first_fail) {
        p->first_fail = now;
    }
    p->last_fail = now;
}

/*
 * Sends a poison event to the dead-letter topic. Done when Kafka
 * acknowledged it (or when the DLQ is disabled: then the event is logged
 * and counted, never silently dropped); held for a retry when the DLQ write
 * failed.
 */
static enum handled dead_letter(struct consumer *c,
                                const rd_kafka_message_t *rkm,
                                struct partition_state *p,
                                const char *error_class, const char *reason)
{
    struct akv_dlq_failure f;
    char errstr[512];
    long long now = wall_ms();

    if (!c->dlq) {
        akv_log_error("dlq",
                      "class=%s partition=%d offset=%lld skipped (dead-letter "
                      "topic disabled): %s",
                      error_class, (int)rkm->partition, (long long)rkm->offset,
                      reason);
        return HANDLED_DONE;
    }
    f.error_class = error_class;
    f.reason = reason;
    f.attempts = p->attempts ? p->attempts : 1;
    f.first_ms = p->first_fail ? p->first_fail : now;
    f.last_ms = p->last_fail ? p->last_fail : now;
    if (akv_dlq_send(c->dlq, rkm, &f, errstr, sizeof(errstr)) != AKV_OK) {
        long long delay = akv_backoff_delay(c->settings->sync_retry_initial_ms,
                                            c->settings->sync_retry_max_ms,
                                            c->settings->sync_retry_multiplier,
                                            p->attempts, akv_backoff_random());

        note_failure(p);
        akv_log_error(
            "dlq", "partition=%d offset=%lld held, retry_in_ms=%lld: %s",
            (int)rkm->partition, (long long)rkm->offset, delay, errstr);
        hold(c, rkm, p, delay);
        return HANDLED_HELD;
    }
    c->stats->dead_lettered++;
    akv_log_warn("dlq",
                 "class=%s partition=%d offset=%lld sent to %s after %u "
                 "attempt(s): %s",
                 error_class, (int)rkm->partition, (long long)rkm->offset,
                 c->settings->dlq_topic, f.attempts, reason);
    return HANDLED_DONE;
}

/*
 * A failed sync: hold the partition until the retry is due. Transient
 * failures back off exponentially (or as the upstream's Retry-After says);
 * configuration errors retry at sync.config_retry_ms and log their cause
 * once per sync.log_interval_ms.
 */
static enum handled retry_later(struct consumer *c,
                                const rd_kafka_message_t *rkm,
                                struct partition_state *p,
                                const struct akv_match *m, enum akv_class cls,
                                const char *retry_after, const char *errstr)
{
    const struct akv_settings *s = c->settings;
    long long delay;
    long long ra;
    char reason[1024];

    note_failure(p);
    c->stats->retries++;
    if (cls == AKV_CLASS_TRANSIENT && s->sync_max_attempts > 0 &&
        p->attempts >= (unsigned)s->sync_max_attempts) {
        snprintf(reason, sizeof(reason),
                 "token %s: gave up after %u "
                 "attempts: %s",
                 m->identifier, p->attempts, errstr);
        return dead_letter(c, rkm, p, "transient", reason);
    }
    if (cls == AKV_CLASS_CONFIG) {
        delay = s->sync_config_retry_ms;
    } else {
        delay = akv_backoff_delay(
            s->sync_retry_initial_ms, s->sync_retry_max_ms,
            s->sync_retry_multiplier, p->attempts - 1, akv_backoff_random());
    }
    ra =
        akv_retry_after_ms(retry_after, time(NULL), s->sync_retry_after_max_ms);
    if (ra >= 0 && cls == AKV_CLASS_TRANSIENT) {
        delay = ra;
    }
    if (cls != AKV_CLASS_CONFIG) {
        akv_log_warn("sync",
                     "token=%s class=%s attempt=%u partition=%d offset=%lld "
                     "retry_in_ms=%lld: %s",
                     m->identifier, akv_class_name(cls), p->attempts,
                     (int)rkm->partition, (long long)rkm->offset, delay,
                     errstr);
    } else if (p->last_logged == 0 ||
               now_ms() - p->last_logged >= s->sync_log_interval_ms) {
        p->last_logged = now_ms();
        akv_log_error("sync",
                      "token=%s class=configuration partition=%d "
                      "offset=%lld held (attempt %u, retrying every %lld "
                      "ms; nothing after it in this partition is "
                      "committed): %s",
                      m->identifier, (int)rkm->partition,
                      (long long)rkm->offset, p->attempts, delay, errstr);
    }
    hold(c, rkm, p, delay);
    return HANDLED_HELD;
}

static enum handled sync_event(struct consumer *c,
                               const rd_kafka_message_t *rkm,
                               struct partition_state *p,
                               const struct akv_match *m)
{
    struct akv_sync_request rq;
    struct akv_sync_outcome out;
    enum akv_class cls;
    char errstr[512];

    rq.identifier = m->identifier;
    rq.event_pk = m->event_pk;
    rq.action = m->action;
    errstr[0] = '\0';
    cls = akv_sync_token(c->syncer, &rq, &out, errstr, sizeof(errstr));
    if (cls == AKV_CLASS_OK) {
        count_result(c, out.result);
        akv_log_info("sync",
                     "token=%s action=%s result=%s version=%lld "
                     "partition=%d offset=%lld event=%s%s",
                     m->identifier, m->action, akv_sync_result_name(out.result),
                     out.version, (int)rkm->partition, (long long)rkm->offset,
                     m->event_pk, out.cached ? " cached=1" : "");
        if (p->attempts) {
            akv_log_info("sync",
                         "token=%s recovered after %u failed "
                         "attempt(s)",
                         m->identifier, p->attempts);
        }
        return HANDLED_DONE;
    }
    if (cls == AKV_CLASS_POISON) {
        c->stats->poison++;
        return dead_letter(c, rkm, p, "poison", errstr);
    }
    return retry_later(c, rkm, p, m, cls, out.retry_after, errstr);
}

static enum handled handle(struct consumer *c, const rd_kafka_message_t *rkm,
                           struct partition_state *p)
{
    struct akv_match m;
    char reason[256];
    /* A held event delivered again after its backoff is not new work. */
    int again = p->held && p->held_offset == (long long)rkm->offset;

    if (!again) {
        c->stats->consumed++;
    }
    /* Most events are logins and flows: tell them by their bytes. With
     * dlq.undecodable every event must be parsed to know if it is JSON. */
    if (!c->settings->dlq_undecodable && rkm->len > 0 &&
        !akv_prefilter_may_match(&c->rules, rkm->payload, rkm->len)) {
        c->stats->skipped++;
        return HANDLED_DONE;
    }
    akv_match_event(&c->rules, rkm->payload ? rkm->payload : "", rkm->len, &m);
    switch (m.kind) {
    case AKV_MATCH_SKIP:
        if (m.undecodable && c->settings->dlq_undecodable) {
            c->stats->poison++;
            return dead_letter(c, rkm, p, "poison", m.reason);
        }
        c->stats->skipped++;
        akv_log_debug("match", "skip partition=%d offset=%lld: %s",
                      (int)rkm->partition, (long long)rkm->offset, m.reason);
        return HANDLED_DONE;
    case AKV_MATCH_POISON:
        c->stats->poison++;
        akv_log_error("match",
                      "poison event partition=%d offset=%lld action=%s "
                      "event=%s: %s",
                      (int)rkm->partition, (long long)rkm->offset, m.action,
                      m.event_pk, m.reason);
        snprintf(reason, sizeof(reason), "%s", m.reason);
        return dead_letter(c, rkm, p, "poison", reason);
    case AKV_MATCH_SYNC:
    case AKV_MATCH_DELETE:
        /* A delete resolves exactly like a sync: only authentik's 404
         * proves the token gone (then vault.on_delete applies); a token
         * that exists again under the same identifier is synced. */
        if (!again) {
            c->stats->matched++;
        }
        return sync_event(c, rkm, p, &m);
    }
    return HANDLED_DONE;
}

/* With --exit-at-end: every assigned partition has hit its end. */
static int all_at_end(const struct consumer *c)
{
    int i;
    int any = 0;

    if (!c->ever_assigned) {
        return 0;
    }
    for (i = 0; i < c->nparts; i++) {
        if (c->parts[i].assigned) {
            any = 1;
            if (!c->parts[i].eof || c->parts[i].held) {
                return 0;
            }
        }
    }
    return any;
}

static void poll_loop(struct consumer *c)
{
    static struct partition_state none;

    while (*c->run && !c->fatal) {
        rd_kafka_message_t *rkm;
        struct partition_state *p;
        long long wait;

        akv_syncer_tick(c->syncer);
        wait = resume_due(c, 100);
        rkm = rd_kafka_consumer_poll(c->rk, (int)wait);
        if (!rkm) {
            continue;
        }
        p = part(c, rkm->partition);
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (p) {
                p->eof = 1;
            }
            rd_kafka_message_destroy(rkm);
            if (c->opts->exit_at_end && all_at_end(c)) {
                akv_log_info("worker", "every assigned partition consumed");
                break;
            }
            continue;
        }
        if (rkm->err) {
            akv_log_warn("kafka", "consume error: %s",
                         rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
            continue;
        }
        if (!p) {
            state_reset(&none); /* out of memory: process, keep no state */
            p = &none;
        }
        if (p->held && (long long)rkm->offset != p->held_offset) {
            /* Fetched before the seek back: the held event comes first. */
            rd_kafka_message_destroy(rkm);
            continue;
        }
        p->eof = 0;
        if (handle(c, rkm, p) == HANDLED_DONE) {
            store_offset(c, rkm);
            p->held = 0;
            p->held_offset = -1;
            p->attempts = 0;
            p->first_fail = 0;
            p->last_fail = 0;
            p->last_logged = 0;
        }
        rd_kafka_message_destroy(rkm);
    }
}

akv_err_t akv_consumer_run(const struct akv_settings *s,
                           const struct akv_run_opts *opts,
                           volatile sig_atomic_t *run, struct akv_stats *stats,
                           char *errstr, size_t errstr_size)
{
    struct consumer c;
    rd_kafka_topic_partition_list_t *topics = NULL;
    rd_kafka_resp_err_t kerr;
    akv_err_t err = AKV_OK;

    memset(&c, 0, sizeof(c));
    c.settings = s;
    c.opts = opts;
    c.run = run;
    c.stats = stats;
    c.rules.apps = &s->match_apps;
    c.rules.models = &s->match_models;
    c.rules.sync_actions = &s->match_sync_actions;
    c.rules.delete_actions = &s->match_delete_actions;

    c.syncer = akv_syncer_new(s, errstr, errstr_size);
    if (!c.syncer) {
        return AKV_ERR_CONFIG;
    }
    if (s->dlq_enabled) {
        c.dlq = akv_dlq_new(s, errstr, errstr_size);
        if (!c.dlq) {
            err = AKV_ERR_CONFIG;
            goto out;
        }
    }
    c.rk = create(&c, errstr, errstr_size);
    if (!c.rk) {
        err = AKV_ERR_CONFIG;
        goto out;
    }
    rd_kafka_poll_set_consumer(c.rk);
    topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, s->kafka_topic,
                                      RD_KAFKA_PARTITION_UA);
    kerr = rd_kafka_subscribe(c.rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (kerr) {
        err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                       "cannot subscribe to %s: %s", s->kafka_topic,
                       rd_kafka_err2str(kerr));
        goto out;
    }
    akv_log_info("worker", "consuming topic=%s group=%s", s->kafka_topic,
                 s->kafka_group);

    poll_loop(&c);

    if (c.fatal) {
        err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                       "stopped on a fatal Kafka error");
    }
    akv_log_info("worker", "stopping: committing and leaving the group");
    commit_final(&c);
    kerr = rd_kafka_consumer_close(c.rk);
    if (kerr) {
        akv_log_warn("kafka", "close: %s", rd_kafka_err2str(kerr));
    }

out:
    if (c.rk) {
        rd_kafka_destroy(c.rk);
    }
    akv_dlq_destroy(c.dlq);
    akv_syncer_destroy(c.syncer);
    free(c.parts);
    return err;
}

void akv_stats_log(const struct akv_stats *st)
{
    akv_log_info("worker",
                 "final stats: consumed=%llu skipped=%llu matched=%llu "
                 "poison=%llu written=%llu unchanged=%llu gone=%llu "
                 "deleted=%llu filtered=%llu retries=%llu "
                 "dead_lettered=%llu",
                 st->consumed, st->skipped, st->matched, st->poison,
                 st->written, st->unchanged, st->gone, st->deleted,
                 st->filtered, st->retries, st->dead_lettered);
}
