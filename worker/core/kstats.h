/*
 * kstats — the few figures of librdkafka's statistics (the JSON document
 * its stats callback gets every statistics.interval.ms) the worker
 * exports: each broker's round-trip time and what waits in the fetch
 * queues. Pure.
 */
#ifndef AKV_WORKER_KSTATS_H
#define AKV_WORKER_KSTATS_H

#include <stddef.h>

#define AKV_KSTATS_MAX_BROKERS 64

struct akv_kstats_broker {
    char name[128];     /**< librdkafka's "host:port/id" */
    double rtt_seconds; /**< average request round trip of the window */
};

struct akv_kstats {
    struct akv_kstats_broker brokers[AKV_KSTATS_MAX_BROKERS];
    size_t nbrokers;
    double fetch_queue_messages; /**< summed over the partitions */
    double fetch_queue_bytes;
};

/**
 * @brief Reads \p len bytes of librdkafka's statistics JSON. Brokers that
 *        are only bootstrap addresses (no node id yet) and brokers with no
 *        round trip measured in the window are left out; so is the
 *        unassigned partition (-1).
 * @returns 0, or -1 when the text is not a statistics document.
 */
int akv_kstats_parse(const char *json, size_t len, struct akv_kstats *out);

#endif /* AKV_WORKER_KSTATS_H */
