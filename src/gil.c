/*
 * gil.c — the global lock of a runtime (the GIL): one thread at a time
 * runs in a runtime, and the lock changes hands fairly.
 *
 * State (omi_gil in internal.h), all under `mutex` except the two atomics:
 *
 *   locked        a thread holds the GIL (last_holder is that thread)
 *   next_ticket   the ticket the next waiter draws
 *   serving       the ticket of the waiter allowed to take it next
 *   drop_request  a waiter asks the holder to drop it (atomic: the holder
 *                 polls it without the mutex)
 *
 *   Invariants: serving ≤ next_ticket; next_ticket − serving threads are
 *   queued; a thread takes the GIL only when !locked and either nobody is
 *   queued (the fast path) or its ticket is `serving`.
 *
 * Transitions:
 *
 *   take, nobody queued, free       → locked by the caller
 *   take otherwise                  → draw a ticket; wait on cond until
 *                                     free and serving == ticket; then
 *                                     serving++ (the next waiter is head)
 *   head waiter, one interval with  → drop_request = true
 *   no hand-over                      (it waits for the holder's check point)
 *   holder at a check point sees    → drop, then take again: it draws a
 *   drop_request                      ticket behind every thread that was
 *                                     already queued (forced switching)
 *   drop                            → !locked, broadcast cond
 *   any take                        → drop_request = false (it was meant
 *                                     for the previous holder)
 *
 * Fairness. Only the head of the queue runs the switch-interval timer, and
 * it restarts the timer only when the GIL changed hands meanwhile, so a
 * holder that never blocks is asked to drop within one interval of the
 * head's arrival at the front and must drop at its next check point. When
 * it drops, it queues behind the head (tickets are FIFO), so the head gets
 * the GIL before the holder can take it back. A thread with k threads
 * ahead of it therefore waits at most about (k + 1) × (interval + check
 * latency), and with one competitor, one interval plus the holder's check
 * latency: the bound the tests check with slack.
 *
 * Learned from: CPython's Python/ceval_gil.c ("new GIL", Antoine Pitrou,
 * 3.2): a boolean under a mutex, a timed wait of one interval before
 * setting a drop request, and forced switching (the dropper may not take it
 * back before a waiter has had it). Where it differs: CPython lets every
 * waiter run the timer and whoever wins the wake-up race takes the lock, so
 * with several waiters one of them can lose the race again and again, and
 * forced switching needs a second condition variable and mutex; FIFO
 * tickets give a bound per waiter, and forced switching falls out of them.
 */
#include <errno.h>
#include <time.h>

#include "internal.h"

uint64_t omi_gil_now_ns(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static uint64_t interval_to_ns(double seconds)
{
    double ns = seconds * 1e9;
    return ns < 1000.0 ? 1000 : (uint64_t)ns;   /* at least 1 µs */
}

int omi_gil_init(omi_gil *gil, double interval_seconds)
{
    pthread_condattr_t attr;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    int failed = pthread_cond_init(&gil->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (failed != 0)
        return -1;
    if (pthread_mutex_init(&gil->mutex, NULL) != 0) {
        pthread_cond_destroy(&gil->cond);
        return -1;
    }
    gil->locked = false;
    gil->last_holder = NULL;
    gil->next_ticket = gil->serving = 0;
    gil->acquisitions = gil->switches = gil->drop_requests = gil->held_ns = 0;
    atomic_init(&gil->drop_request, false);
    atomic_init(&gil->interval_ns, interval_to_ns(interval_seconds));
    return 0;
}

void omi_gil_destroy(omi_gil *gil)
{
    pthread_cond_destroy(&gil->cond);
    pthread_mutex_destroy(&gil->mutex);
}

void omi_gil_set_interval(omi_gil *gil, double seconds)
{
    atomic_store_explicit(&gil->interval_ns, interval_to_ns(seconds), memory_order_relaxed);
}

double omi_gil_interval(omi_gil *gil)
{
    return (double)atomic_load_explicit(&gil->interval_ns, memory_order_relaxed) / 1e9;
}

/* The head waiter's wait: one interval; if the GIL did not change hands in
 * it, asks the holder to drop. */
static void wait_as_head_locked(omi_gil *gil)
{
    uint64_t acquisitions = gil->acquisitions;
    uint64_t deadline = omi_gil_now_ns() +
                        atomic_load_explicit(&gil->interval_ns, memory_order_relaxed);
    struct timespec ts = {(time_t)(deadline / 1000000000u), (long)(deadline % 1000000000u)};
    int rc = pthread_cond_timedwait(&gil->cond, &gil->mutex, &ts);
    if (rc == ETIMEDOUT && gil->locked && gil->acquisitions == acquisitions &&
        !atomic_load_explicit(&gil->drop_request, memory_order_relaxed)) {
        atomic_store_explicit(&gil->drop_request, true, memory_order_relaxed);
        gil->drop_requests++;
    }
}

/* Queues the caller and waits until its ticket is served and the GIL free. */
static void wait_turn_locked(omi_gil *gil, struct om_thread *ts)
{
    uint64_t ticket = gil->next_ticket++;
    uint64_t start = omi_gil_now_ns();
    while (gil->locked || gil->serving != ticket) {
        if (gil->serving == ticket)
            wait_as_head_locked(gil);
        else
            pthread_cond_wait(&gil->cond, &gil->mutex);
    }
    gil->serving++;
    /* The next waiter is now head: wake it so that it starts its timer. */
    pthread_cond_broadcast(&gil->cond);
    ts->waited_ns += omi_gil_now_ns() - start;
}

void omi_gil_take(omi_gil *gil, struct om_thread *ts)
{
    pthread_mutex_lock(&gil->mutex);
    if (gil->locked || gil->serving != gil->next_ticket)
        wait_turn_locked(gil, ts);
    gil->locked = true;
    if (gil->last_holder != ts)
        gil->switches++;
    gil->last_holder = ts;
    gil->acquisitions++;
    atomic_store_explicit(&gil->drop_request, false, memory_order_relaxed);
    ts->holds_gil = true;
    ts->acquisitions++;
    ts->taken_at_ns = omi_gil_now_ns();
    pthread_mutex_unlock(&gil->mutex);
}

void omi_gil_drop(omi_gil *gil, struct om_thread *ts)
{
    pthread_mutex_lock(&gil->mutex);
    uint64_t held = omi_gil_now_ns() - ts->taken_at_ns;
    ts->held_ns += held;
    gil->held_ns += held;
    ts->holds_gil = false;
    gil->locked = false;
    pthread_cond_broadcast(&gil->cond);
    pthread_mutex_unlock(&gil->mutex);
}

void omi_gil_yield(omi_gil *gil, struct om_thread *ts)
{
    ts->requested_drops++;
    omi_gil_drop(gil, ts);
    omi_gil_take(gil, ts);
}

void omi_gil_get_stats(omi_gil *gil, om_gil_stats *out)
{
    pthread_mutex_lock(&gil->mutex);
    out->acquisitions = gil->acquisitions;
    out->switches = gil->switches;
    out->drop_requests = gil->drop_requests;
    out->held_seconds = (double)gil->held_ns / 1e9;
    pthread_mutex_unlock(&gil->mutex);
}
