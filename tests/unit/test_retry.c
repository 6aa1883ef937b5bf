/*
 * test_retry — the retry policy as a table: class, attempt, Retry-After
 * and the credentials decide between retrying, holding and giving up, and
 * how long to wait.
 */
#include "testutil.h"

#include "retry.h"

#include <stdint.h>

/* initial 200 ms, cap 30 s, doubling; give up at the 5th transient failure;
 * configuration errors every 30 s. */
static const struct akv_retry_policy policy = {200, 30000, 2.0, 5, 30000};
static const struct akv_retry_policy forever = {200, 30000, 2.0, 0, 30000};

/* The backoff draws rnd % (ceiling + 1): rnd = the ceiling draws it. */
#define RND_MAX UINT64_MAX

struct row {
    const char *what;
    const struct akv_retry_policy *p;
    enum akv_class cls;
    int can_login;
    unsigned attempts;
    long long retry_after_ms;
    uint64_t rnd;
    enum akv_retry_action action;
    enum akv_class counts_as;
    long long min_ms; /* the delay is within [min_ms, max_ms] */
    long long max_ms;
};

static const struct row rows[] = {
    {"first transient failure: up to the initial delay", &policy,
     AKV_CLASS_TRANSIENT, 0, 1, -1, 200, AKV_RETRY_AGAIN, AKV_CLASS_TRANSIENT,
     200, 200},
    {"the delay doubles per attempt", &policy, AKV_CLASS_TRANSIENT, 0, 3, -1,
     800, AKV_RETRY_AGAIN, AKV_CLASS_TRANSIENT, 800, 800},
    {"... and never exceeds that", &policy, AKV_CLASS_TRANSIENT, 0, 3, -1,
     RND_MAX, AKV_RETRY_AGAIN, AKV_CLASS_TRANSIENT, 0, 800},
    {"full jitter may draw nothing", &policy, AKV_CLASS_TRANSIENT, 0, 3, -1, 0,
     AKV_RETRY_AGAIN, AKV_CLASS_TRANSIENT, 0, 0},
    {"the cap holds", &forever, AKV_CLASS_TRANSIENT, 0, 40, -1, 30000,
     AKV_RETRY_AGAIN, AKV_CLASS_TRANSIENT, 30000, 30000},
    {"Retry-After replaces the backoff", &policy, AKV_CLASS_TRANSIENT, 0, 1,
     45000, RND_MAX, AKV_RETRY_AGAIN, AKV_CLASS_TRANSIENT, 45000, 45000},
    {"Retry-After 0 means now", &policy, AKV_CLASS_TRANSIENT, 0, 2, 0, RND_MAX,
     AKV_RETRY_AGAIN, AKV_CLASS_TRANSIENT, 0, 0},
    {"the last allowed attempt gives up", &policy, AKV_CLASS_TRANSIENT, 0, 5,
     -1, RND_MAX, AKV_RETRY_GIVE_UP, AKV_CLASS_TRANSIENT, 0, 30000},
    {"one before it retries", &policy, AKV_CLASS_TRANSIENT, 0, 4, -1, RND_MAX,
     AKV_RETRY_AGAIN, AKV_CLASS_TRANSIENT, 0, 30000},
    {"max_attempts 0 retries forever", &forever, AKV_CLASS_TRANSIENT, 0, 1000,
     -1, RND_MAX, AKV_RETRY_AGAIN, AKV_CLASS_TRANSIENT, 0, 30000},
    {"a configuration error is held, never given up", &policy, AKV_CLASS_CONFIG,
     0, 50, 1000, RND_MAX, AKV_RETRY_HOLD, AKV_CLASS_CONFIG, 30000, 30000},
    {"expired credentials that can log in again are transient", &policy,
     AKV_CLASS_REAUTH, 1, 1, -1, RND_MAX, AKV_RETRY_AGAIN, AKV_CLASS_TRANSIENT,
     0, 200},
    {"an expired static token is a configuration error", &policy,
     AKV_CLASS_REAUTH, 0, 1, -1, RND_MAX, AKV_RETRY_HOLD, AKV_CLASS_CONFIG,
     30000, 30000},
    {"poison from a request is held like configuration", &policy,
     AKV_CLASS_POISON, 0, 9, -1, RND_MAX, AKV_RETRY_HOLD, AKV_CLASS_CONFIG,
     30000, 30000},
    {"a lost check-and-set race past its rounds backs off, never gives up",
     &policy, AKV_CLASS_SUPERSEDED, 0, 7, -1, RND_MAX, AKV_RETRY_AGAIN,
     AKV_CLASS_SUPERSEDED, 0, 30000},
};

static void the_table_holds(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        struct akv_retry_step st = akv_retry_next(
            r->p, r->cls, r->can_login, r->attempts, r->retry_after_ms, r->rnd);

        if (st.action != r->action || st.cls != r->counts_as ||
            st.delay_ms < r->min_ms || st.delay_ms > r->max_ms) {
            fail_msg("%s: action %d class %s delay %lld (want %d, %s, "
                     "%lld..%lld)",
                     r->what, (int)st.action, akv_class_name(st.cls),
                     st.delay_ms, (int)r->action, akv_class_name(r->counts_as),
                     r->min_ms, r->max_ms);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(the_table_holds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
