/*
 * flow — pause and wake-up thresholds of the consumer.
 */
#include "flow.h"

int akv_flow_paused(int paused, size_t pending, size_t high)
{
    if (!paused) {
        return pending >= high;
    }
    return pending > high / 2;
}

int akv_flow_queue_drained(struct akv_flow_queue *q, double msgs, double bytes)
{
    if (bytes >= 0.6 * q->max_bytes || msgs >= 0.6 * q->min_msgs) {
        q->full = 1;
    } else if (q->full && bytes <= 0.5 * q->max_bytes &&
               msgs <= 0.5 * q->min_msgs) {
        q->full = 0;
        return 1;
    }
    return 0;
}
