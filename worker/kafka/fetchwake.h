/*
 * fetchwake — wakes librdkafka's fetcher once its queue has drained.
 *
 * librdkafka 2.0 stops fetching while the consumer queue holds more than
 * queued.max.messages.kbytes (or queued.min.messages) and decides again
 * only when something wakes the broker thread: a fetch answer, a request
 * to send, or its one-second timer. With the small queue that keeps the
 * worker's memory bounded, the worker drains the queue in milliseconds and
 * would then wait out the rest of that second. Any request to a
 * partition's leader wakes its broker thread at once; a ListOffsets request
 * for the log end (listoffsets.h) is the cheapest and changes nothing. It
 * blocks for a round trip, so a helper thread sends it while the poll loop
 * goes on.
 */
#ifndef AKV_WORKER_FETCHWAKE_H
#define AKV_WORKER_FETCHWAKE_H

#include <librdkafka/rdkafka.h>
#include <stdint.h>

struct akv_fetchwake;

/** Starts the helper thread; NULL when it cannot (then nothing wakes the
 *  fetcher early, which costs speed, not correctness). */
struct akv_fetchwake *akv_fetchwake_new(rd_kafka_t *rk, const char *topic);

/**
 * Asks for the leaders of \p partitions to be woken (one request per
 * leader); returns at once. A request still waiting is replaced.
 */
void akv_fetchwake_kick(struct akv_fetchwake *w, const int32_t *partitions,
                        int n);

/** How many wake-up rounds the helper has finished (for tests and logs). */
unsigned long akv_fetchwake_rounds(struct akv_fetchwake *w);

/** Stops and joins the helper thread; waits for a request in progress
 *  (bounded by its timeout). NULL is a no-op. */
void akv_fetchwake_destroy(struct akv_fetchwake *w);

#endif /* AKV_WORKER_FETCHWAKE_H */
