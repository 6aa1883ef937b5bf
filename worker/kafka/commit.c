/*
 * commit — storing watermarks, committing them, and the commits' answers.
 */
#include "commit.h"

#include "clock.h"
#include "log.h"
#include "offsets.h"

void akv_commit_store(rd_kafka_t *rk, const char *topic,
                      struct akv_partition *parts, int nparts)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t err;
    int i;

    for (i = 0; i < nparts; i++) {
        struct akv_partition *p = &parts[i];
        int64_t w;

        if (!p->assigned || !p->offsets) {
            continue;
        }
        w = akv_offsets_watermark(p->offsets);
        if (w < 0 || w <= p->stored) {
            continue;
        }
        if (!list) {
            list = rd_kafka_topic_partition_list_new(8);
        }
        rd_kafka_topic_partition_list_add(list, topic, i)->offset = w;
        p->stored = w;
    }
    if (!list) {
        return;
    }
    err = rd_kafka_offsets_store(rk, list);
    if (err) {
        akv_log_warn("kafka", "offsets not stored: %s", rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(list);
}

void akv_commit_now(rd_kafka_t *rk, const char *why)
{
    rd_kafka_resp_err_t err = rd_kafka_commit(rk, NULL, 0);

    if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET) {
        akv_log_warn("kafka", "commit (%s) failed: %s", why,
                     rd_kafka_err2str(err));
    }
}

int akv_commit_retriable(rd_kafka_resp_err_t err)
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

void akv_commit_final(rd_kafka_t *rk, long long max_ms)
{
    long long deadline = akv_mono_ms() + max_ms;
    rd_kafka_resp_err_t err;

    for (;;) {
        rd_kafka_message_t *rkm;

        err = rd_kafka_commit(rk, NULL, 0);
        if (!err || err == RD_KAFKA_RESP_ERR__NO_OFFSET) {
            return;
        }
        if (!akv_commit_retriable(err) || akv_mono_ms() >= deadline) {
            akv_log_warn("kafka",
                         "final commit failed: %s; events after "
                         "the last commit will be redone by the next owner",
                         rd_kafka_err2str(err));
            return;
        }
        akv_log_debug("kafka", "final commit: %s, retrying",
                      rd_kafka_err2str(err));
        rkm = rd_kafka_consumer_poll(rk, 200);
        if (rkm) {
            rd_kafka_message_destroy(rkm);
        }
    }
}

void akv_commit_answered(struct akv_partition *parts, int nparts,
                         const rd_kafka_topic_partition_list_t *offsets,
                         long long now_ms)
{
    int i;

    for (i = 0; offsets && i < offsets->cnt; i++) {
        const rd_kafka_topic_partition_t *t = &offsets->elems[i];
        struct akv_partition *p;

        if (t->err || t->offset < 0 || t->partition < 0 ||
            t->partition >= nparts) {
            continue;
        }
        p = &parts[t->partition];
        if (p->assigned && t->offset != p->committed) {
            p->committed = t->offset;
            p->moved_ms = now_ms;
        }
    }
}
