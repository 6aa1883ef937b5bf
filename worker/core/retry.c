/*
 * retry — the retry, hold and give-up policy of a failed sync.
 */
#include "retry.h"

#include "backoff.h"

struct akv_retry_step akv_retry_next(const struct akv_retry_policy *p,
                                     enum akv_class cls, int can_login,
                                     unsigned attempts,
                                     long long retry_after_ms, uint64_t rnd)
{
    struct akv_retry_step step;

    if (cls == AKV_CLASS_POISON) {
        cls = AKV_CLASS_CONFIG;
    }
    if (cls == AKV_CLASS_REAUTH) {
        cls = can_login ? AKV_CLASS_TRANSIENT : AKV_CLASS_CONFIG;
    }
    step.cls = cls;
    if (cls == AKV_CLASS_CONFIG) {
        step.action = AKV_RETRY_HOLD;
        step.delay_ms = p->config_retry_ms;
        return step;
    }
    step.delay_ms =
        retry_after_ms >= 0
            ? retry_after_ms
            : akv_backoff_delay(p->initial_ms, p->max_ms, p->multiplier,
                                attempts > 0 ? attempts - 1 : 0, rnd);
    step.action = cls == AKV_CLASS_TRANSIENT && p->max_attempts > 0 &&
                          attempts >= (unsigned long long)p->max_attempts
                      ? AKV_RETRY_GIVE_UP
                      : AKV_RETRY_AGAIN;
    return step;
}
