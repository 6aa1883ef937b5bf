/*
 * listoffsets — the start or end offsets of partitions, within a deadline.
 */
#include "listoffsets.h"

rd_kafka_topic_partition_list_t *
akv_list_offsets(rd_kafka_t *rk, const char *topic, const int32_t *partitions,
                 int n, int64_t which, int timeout_ms,
                 rd_kafka_resp_err_t *errp)
{
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t err;
    int i;

    l = rd_kafka_topic_partition_list_new(n > 0 ? n : 1);
    for (i = 0; i < n; i++) {
        rd_kafka_topic_partition_list_add(l, topic, partitions[i])->offset =
            which;
    }
    /* The offsets in the list are the "timestamps" asked for: the logical
     * END and BEGINNING ask for the end and the start of the log. */
    err = rd_kafka_offsets_for_times(rk, l, timeout_ms);
    if (err) {
        rd_kafka_topic_partition_list_destroy(l);
        *errp = err;
        return NULL;
    }
    *errp = RD_KAFKA_RESP_ERR_NO_ERROR;
    return l;
}
