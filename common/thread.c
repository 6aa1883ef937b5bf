/*
 * thread — start, wake, wait and stop for helper threads.
 */
#include "thread.h"

#include <errno.h>

int akv_thread_start(struct akv_thread *t, void *(*fn)(void *), void *arg)
{
    t->stop = 0;
    if (pthread_mutex_init(&t->lock, NULL) != 0) {
        return -1;
    }
    if (pthread_cond_init(&t->cond, NULL) != 0) {
        pthread_mutex_destroy(&t->lock);
        return -1;
    }
    if (pthread_create(&t->thread, NULL, fn, arg) != 0) {
        pthread_cond_destroy(&t->cond);
        pthread_mutex_destroy(&t->lock);
        return -1;
    }
    return 0;
}

void akv_thread_stop(struct akv_thread *t)
{
    pthread_mutex_lock(&t->lock);
    t->stop = 1;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    pthread_join(t->thread, NULL);
    pthread_cond_destroy(&t->cond);
    pthread_mutex_destroy(&t->lock);
}

void akv_thread_wake(struct akv_thread *t)
{
    pthread_mutex_lock(&t->lock);
    pthread_cond_signal(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

int akv_thread_wait(struct akv_thread *t, const struct timespec *until)
{
    if (!until) {
        return pthread_cond_wait(&t->cond, &t->lock);
    }
    return pthread_cond_timedwait(&t->cond, &t->lock, until) == ETIMEDOUT
               ? ETIMEDOUT
               : 0;
}

void akv_thread_deadline(struct timespec *ts, long long ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}
