/*
 * thread — a helper thread with its lock, condition and stop flag: the one
 * way ak2vault and its stand-ins start and stop the threads they keep.
 *
 * The thread's function takes the lock, waits on the condition until it
 * has work or `stop` is set, and drops the lock while it works;
 * akv_thread_stop() sets `stop`, wakes it and joins it.
 */
#ifndef AKV_COMMON_THREAD_H
#define AKV_COMMON_THREAD_H

#include <pthread.h>
#include <time.h>

struct akv_thread {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond; /* signalled on new work and on stop */
    int stop;            /* under lock */
};

/**
 * @brief Initialises \p t and runs \p fn(\p arg) on a new thread.
 * @returns 0, or -1 with nothing left to clean up.
 */
int akv_thread_start(struct akv_thread *t, void *(*fn)(void *), void *arg);

/** @brief Sets `stop`, wakes the thread, waits for it to return and
 *         releases the lock and condition. */
void akv_thread_stop(struct akv_thread *t);

/** @brief Wakes the thread (for new work). Takes and drops the lock. */
void akv_thread_wake(struct akv_thread *t);

/**
 * @brief Waits on the condition, with the lock held, until woken or until
 *        \p until (CLOCK_REALTIME; NULL: no limit).
 * @returns 0 when woken (or spuriously), ETIMEDOUT when \p until passed.
 */
int akv_thread_wait(struct akv_thread *t, const struct timespec *until);

/** @brief Sets \p ts to \p ms milliseconds from now, for akv_thread_wait(). */
void akv_thread_deadline(struct timespec *ts, long long ms);

#endif /* AKV_COMMON_THREAD_H */
