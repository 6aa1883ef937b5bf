/*
 * partition — what the consumer keeps per assigned partition, shared by
 * the poll loop (consumer.c) and the commits (commit.c).
 */
#ifndef AKV_WORKER_PARTITION_H
#define AKV_WORKER_PARTITION_H

#include <stdint.h>

struct akv_partition {
    int assigned;
    int eof;
    int paused;
    struct akv_offsets *offsets; /* pending events, their messages */
    int64_t next;                /* one past the last message taken; -1 */
    int64_t stored;              /* last offset handed to offsets_store */
    int64_t committed;           /* last committed; -1 unknown */
    long long moved_ms;          /* committed last moved (or assigned) */
    long long caught_up_ms;      /* last seen with nothing left to do */
    long long idle_ms;           /* ... and nothing left to commit */
};

#endif /* AKV_WORKER_PARTITION_H */
