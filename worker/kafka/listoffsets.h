/*
 * listoffsets — the start or end offsets of partitions, within a deadline.
 *
 * librdkafka 2.0's rd_kafka_query_watermark_offsets() does not keep to its
 * timeout once its request waits on a broker that went away: it blocks until
 * the broker is back (fixed in librdkafka 2.3.0). A worker asking for end
 * offsets while a partition leader was down could then not shut down.
 * rd_kafka_offsets_for_times() sends the same ListOffsets request, one per
 * leader, and keeps to its timeout; asked for the logical offsets END or
 * BEGINNING it answers with the end or the start of each log.
 */
#ifndef AKV_WORKER_LISTOFFSETS_H
#define AKV_WORKER_LISTOFFSETS_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

/**
 * Asks the leaders of \p n \p partitions of \p topic for \p which offset
 * (RD_KAFKA_OFFSET_END or RD_KAFKA_OFFSET_BEGINNING), waiting at most
 * \p timeout_ms in all.
 *
 * Returns a list in the order of \p partitions whose elements carry the
 * offset or their own error (the caller destroys it), or NULL with \p *errp
 * set when the request as a whole failed.
 */
rd_kafka_topic_partition_list_t *
akv_list_offsets(rd_kafka_t *rk, const char *topic, const int32_t *partitions,
                 int n, int64_t which, int timeout_ms,
                 rd_kafka_resp_err_t *errp);

#endif /* AKV_WORKER_LISTOFFSETS_H */
