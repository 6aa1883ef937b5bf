/*
 * lag — committed and end offsets per partition of a group.
 */
#include "lag.h"

#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

#define TIMEOUT_MS 10000

static int cmp_partition(const void *a, const void *b)
{
    const rd_kafka_topic_partition_t *x = a;
    const rd_kafka_topic_partition_t *y = b;

    return x->partition - y->partition;
}

akv_err_t akv_lag_report(const struct akv_settings *s, const char *group,
                         const char *topic, int json, FILE *out, char *errstr,
                         size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_t *rkt = NULL;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    rd_kafka_resp_err_t kerr;
    char kerrstr[512];
    akv_err_t err = AKV_OK;
    long long total = 0;
    size_t i;
    int p;

    group = group ? group : s->kafka_group;
    topic = topic ? topic : s->kafka_topic;
    for (i = 0; i < s->kafka_properties.n; i++) {
        if (rd_kafka_conf_set(conf, s->kafka_properties.names[i],
                              s->kafka_properties.values[i], kerrstr,
                              sizeof(kerrstr)) != RD_KAFKA_CONF_OK) {
            err = akv_errf(AKV_ERR_CONFIG, errstr, errstr_size,
                           "kafka property %s: %s",
                           s->kafka_properties.names[i], kerrstr);
            goto out;
        }
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", s->kafka_brokers, kerrstr,
                          sizeof(kerrstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", group, kerrstr, sizeof(kerrstr)) !=
            RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", kerrstr,
                          sizeof(kerrstr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "log_level", "3", kerrstr, sizeof(kerrstr)) !=
            RD_KAFKA_CONF_OK) {
        err = akv_errf(AKV_ERR_CONFIG, errstr, errstr_size, "%s", kerrstr);
        goto out;
    }
    /* A consumer that never subscribes: it can read the group's committed
     * offsets from the coordinator without joining or disturbing it. */
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerrstr, sizeof(kerrstr));
    if (!rk) {
        err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size, "%s", kerrstr);
        goto out;
    }
    conf = NULL;
    rkt = rd_kafka_topic_new(rk, topic, NULL);
    kerr = rd_kafka_metadata(rk, 0, rkt, &md, TIMEOUT_MS);
    if (kerr || md->topic_cnt != 1 || md->topics[0].err) {
        err =
            akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                     "cannot read the partitions of %s: %s", topic,
                     rd_kafka_err2str(kerr ? kerr
                                      : md->topic_cnt == 1
                                          ? md->topics[0].err
                                          : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        goto out;
    }
    parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
    for (p = 0; p < md->topics[0].partition_cnt; p++) {
        rd_kafka_topic_partition_list_add(parts, topic,
                                          md->topics[0].partitions[p].id);
    }
    qsort(parts->elems, (size_t)parts->cnt, sizeof(*parts->elems),
          cmp_partition);
    kerr = rd_kafka_committed(rk, parts, TIMEOUT_MS);
    if (kerr) {
        err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                       "cannot read the committed offsets of %s: %s", group,
                       rd_kafka_err2str(kerr));
        goto out;
    }
    if (json) {
        fprintf(out, "{\"group\":\"%s\",\"topic\":\"%s\",\"partitions\":[",
                group, topic);
    } else {
        fprintf(out, "GROUP %s  TOPIC %s\n%9s %12s %12s %10s\n", group, topic,
                "PARTITION", "COMMITTED", "END", "LAG");
    }
    for (p = 0; p < parts->cnt; p++) {
        rd_kafka_topic_partition_t *t = &parts->elems[p];
        int64_t low = 0;
        int64_t high = 0;
        long long lag;

        kerr = rd_kafka_query_watermark_offsets(rk, topic, t->partition, &low,
                                                &high, TIMEOUT_MS);
        if (kerr) {
            err = akv_errf(AKV_ERR_KAFKA, errstr, errstr_size,
                           "cannot read the end of partition %d: %s",
                           (int)t->partition, rd_kafka_err2str(kerr));
            goto out;
        }
        /* Nothing committed yet: the whole retained log is ahead. */
        lag = (long long)high - (long long)(t->offset >= 0 ? t->offset : low);
        if (lag < 0) {
            lag = 0;
        }
        total += lag;
        if (json) {
            fprintf(out,
                    "%s{\"partition\":%d,\"committed\":%lld,\"end\":%lld,"
                    "\"low\":%lld,\"lag\":%lld}",
                    p ? "," : "", (int)t->partition,
                    (long long)(t->offset >= 0 ? t->offset : -1),
                    (long long)high, (long long)low, lag);
        } else if (t->offset >= 0) {
            fprintf(out, "%9d %12lld %12lld %10lld\n", (int)t->partition,
                    (long long)t->offset, (long long)high, lag);
        } else {
            fprintf(out, "%9d %12s %12lld %10lld\n", (int)t->partition, "-",
                    (long long)high, lag);
        }
    }
    if (json) {
        fprintf(out, "],\"lag\":%lld}\n", total);
    } else {
        fprintf(out, "%9s %12s %12s %10lld\n", "TOTAL", "", "", total);
    }

out:
    if (parts) {
        rd_kafka_topic_partition_list_destroy(parts);
    }
    if (md) {
        rd_kafka_metadata_destroy(md);
    }
    if (rkt) {
        rd_kafka_topic_destroy(rkt);
    }
    if (rk) {
        rd_kafka_destroy(rk);
    }
    if (conf) {
        rd_kafka_conf_destroy(conf);
    }
    return err;
}
