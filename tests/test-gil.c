/*
 * test-gil.c — the global lock: mutual exclusion, fair switching, release
 * around blocking work, statistics.
 *
 * Checks:
 *   - switch interval: set/get, invalid values refused;
 *   - fairness: a thread waiting for the GIL while another spins calling
 *     om_yield_point() gets it within 2 × the switch interval in most
 *     trials and within a generous bound in all (the 2 vCPUs are shared:
 *     count-based, never one tight wall-time bound); the waiter asked for
 *     the drop and the spinner answered;
 *   - two spinners share the GIL: each holds it a fair part of the time;
 *   - om_save_thread around a blocking call lets another thread run;
 *   - stress: 8 threads on one runtime build lists, dicts and cycles in a
 *     shared structure, collect, and yield; the counts add up and a final
 *     collection frees every cycle (argv[1]: operations per thread).
 * Shared counters are atomics or touched only with the GIL held, so the
 * ThreadSanitizer build checks the GIL's happens-before edges too.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "objmem.h"

#define INTERVAL 0.005

/* Operations per stress thread: ThreadSanitizer runs them ~10x slower. */
#ifdef __SANITIZE_THREAD__
#define STRESS_OPS 100000
#else
#define STRESS_OPS OM_TEST_SCALE(1000000)
#endif

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void sleep_seconds(double s)
{
    struct timespec t = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&t, NULL);
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- Interval ------------------------------------------------------------ */

static void test_interval(void)
{
    om_runtime *rt = om_runtime_new(NULL);
    CHECK(rt != NULL && om_attach(rt) == 0);
    CHECK(om_get_switch_interval() > 0.0049 && om_get_switch_interval() < 0.0051);
    CHECK(om_set_switch_interval(0.010) == 0);
    CHECK(om_get_switch_interval() > 0.0099 && om_get_switch_interval() < 0.0101);
    CHECK(om_set_switch_interval(0) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_set_switch_interval(-1) == -1);
    CHECK(om_get_switch_interval() > 0.0099);
    om_thread_stats ts;
    CHECK(om_thread_get_stats(&ts) == 0 && ts.acquisitions == 1);
    CHECK(om_thread_get_stats(NULL) == -1);
    om_gil_stats gs;
    CHECK(om_runtime_get_gil_stats(NULL, &gs) == 0 && gs.acquisitions == 1);
    CHECK(om_runtime_get_gil_stats(rt, NULL) == -1);
    CHECK(om_runtime_delete(rt) == 0);
    CHECK(om_thread_get_stats(&ts) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_runtime_get_gil_stats(NULL, &gs) == -1);
    om_yield_point();   /* not attached: nothing */
    CHECK(om_save_thread() == NULL);
}

/* ---- Fairness ------------------------------------------------------------ */

typedef struct spinner {
    om_runtime *rt;
    atomic_bool stop;
    atomic_bool started;
    om_thread_stats stats;         /* at the end */
    unsigned long loops;
} spinner;

static void *spin_thread(void *varg)
{
    spinner *s = varg;
    om_attach(s->rt);
    atomic_store(&s->started, true);
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed)) {
        s->loops++;
        om_yield_point();
    }
    om_thread_get_stats(&s->stats);
    om_detach();
    return NULL;
}

static void test_fairness(void)
{
    enum { TRIALS = 20 };
    om_runtime *rt = om_runtime_new(NULL);
    CHECK(rt != NULL);
    spinner s = {.rt = rt};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, spin_thread, &s) == 0);
    while (!atomic_load(&s.started))
        sleep_seconds(0.0001);
    int within = 0, one_request = 0;
    double worst = 0, waits[TRIALS];
    om_gil_stats before, after;
    for (int i = 0; i < TRIALS; i++) {
        om_runtime_get_gil_stats(rt, &before);
        double t0 = now_seconds();
        CHECK(om_attach(rt) == 0);
        double waited = now_seconds() - t0;
        om_detach();
        om_runtime_get_gil_stats(rt, &after);
        /* The count-based check: one drop request was always enough (the
         * holder dropped at its next check point and could not take the
         * GIL back first), whatever the host's load did to the timing. */
        one_request += after.drop_requests - before.drop_requests <= 1;
        within += waited <= 2 * INTERVAL;
        worst = waited > worst ? waited : worst;
        waits[i] = waited;
        sleep_seconds(0.001);   /* the spinner takes it back meanwhile */
    }
    atomic_store(&s.stop, true);
    pthread_join(t, NULL);
    qsort(waits, TRIALS, sizeof waits[0], compare_doubles);
    double median = waits[TRIALS / 2];
    printf("fairness: %d of %d waits within 2 x %.0f ms, median %.1f ms, worst %.1f ms\n",
           within, TRIALS, INTERVAL * 1e3, median * 1e3, worst * 1e3);
    CHECK(one_request == TRIALS);
    /* Wall time on 2 shared vCPUs, with generous slack: unloaded, all 20
     * waits are within 2 x (≈ 5.2 ms); with two busy processes beside it
     * the woken thread waits for a CPU too (medians up to 21 ms seen under
     * ThreadSanitizer). */
    CHECK(median <= 10 * INTERVAL);
    CHECK(worst < 100 * INTERVAL);   /* no starvation */
    CHECK(s.stats.requested_drops >= TRIALS / 4);
    om_gil_stats gs;
    CHECK(om_runtime_get_gil_stats(rt, &gs) == 0);
    CHECK(gs.drop_requests >= TRIALS / 4 && gs.switches >= TRIALS);
    CHECK(om_runtime_delete(rt) == 0);
}

/* Two spinners: forced switching shares the GIL between them. The test
 * runs until the runtime has counted SWITCHES switches (a bound of 400
 * intervals only guards against a hang), so a loaded host that delays the
 * threads changes how long it takes, not what it asserts: the switches
 * alternate, each thread holding the GIL about half of the times. */
static void test_two_spinners(void)
{
    enum { SWITCHES = 16 };
    om_runtime *rt = om_runtime_new(NULL);
    spinner s[2] = {{.rt = rt}, {.rt = rt}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        CHECK(pthread_create(&t[i], NULL, spin_thread, &s[i]) == 0);
    om_gil_stats gs = {0};
    for (int waited = 0; waited < 400 && gs.switches < SWITCHES; waited++) {
        sleep_seconds(INTERVAL);
        if (om_runtime_get_gil_stats(rt, &gs) != 0)
            break;
    }
    CHECK(gs.switches >= SWITCHES);
    for (int i = 0; i < 2; i++)
        atomic_store(&s[i].stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    double a = s[0].stats.held_seconds, b = s[1].stats.held_seconds;
    printf("two spinners: held %.1f / %.1f ms, %llu / %llu acquisitions\n", a * 1e3, b * 1e3,
           (unsigned long long)s[0].stats.acquisitions,
           (unsigned long long)s[1].stats.acquisitions);
    CHECK(s[0].stats.acquisitions >= SWITCHES / 2 - 1 && s[1].stats.acquisitions >= SWITCHES / 2 - 1);
    CHECK(a > 0 && b > 0);
    CHECK(s[0].loops > 0 && s[1].loops > 0);
    CHECK(om_runtime_delete(rt) == 0);
}

/* ---- Release around blocking work ----------------------------------------- */

typedef struct blocking {
    om_runtime *rt;
    sem_t ran;                     /* posted by the second thread */
    bool allocated;
} blocking;

static void *second_thread(void *varg)
{
    blocking *b = varg;
    om_attach(b->rt);              /* needs the GIL the first thread released */
    void *p = om_mem_malloc(100);
    b->allocated = p != NULL;
    om_mem_free(p);
    om_detach();
    sem_post(&b->ran);
    return NULL;
}

static void test_save_restore(void)
{
    blocking b = {.rt = om_runtime_new(NULL)};
    sem_init(&b.ran, 0, 0);
    CHECK(om_attach(b.rt) == 0);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, second_thread, &b) == 0);
    int waited;
    OM_BEGIN_ALLOW_THREADS
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 30;
    waited = sem_timedwait(&b.ran, &deadline);   /* the blocking call */
    OM_END_ALLOW_THREADS
    CHECK(waited == 0);
    CHECK(om_gil_held());
    pthread_join(t, NULL);
    CHECK(b.allocated);
    sem_destroy(&b.ran);
    CHECK(om_runtime_delete(b.rt) == 0);
}

/* A destroy hook runs inside a release: the GIL stays with its thread. */
static bool saved_in_destroy;

static void keeper_destroy(om_object *self)
{
    (void)self;
    om_thread *ts = om_save_thread();
    saved_in_destroy = ts != NULL;
    om_restore_thread(ts);
    om_yield_point();
}

static void test_no_release_inside_release(void)
{
    om_type_spec spec = {.name = "keeper", .size = sizeof(om_object), .destroy = keeper_destroy};
    om_type *keeper = om_type_from_spec(&spec);
    om_runtime *rt = om_runtime_new(NULL);
    CHECK(keeper != NULL && rt != NULL && om_attach(rt) == 0);
    om_object *o = om_new(keeper);
    saved_in_destroy = true;
    om_decref(o);
    CHECK(!saved_in_destroy);
    CHECK(om_gil_held());
    om_thread *ts = om_save_thread();   /* outside a release: released */
    CHECK(ts != NULL && !om_gil_held());
    om_restore_thread(ts);
    CHECK(om_runtime_delete(rt) == 0);
    om_type_delete(keeper);
}

/* ---- Stress ----------------------------------------------------------------- */

enum { THREADS = 8 };

typedef struct stress_shared {
    om_runtime *rt;
    om_object *shared;             /* a list all threads append to (GIL held) */
    size_t appended;               /* GIL held */
} stress_shared;

typedef struct stress_arg {
    stress_shared *sh;
    unsigned id;
    size_t ops;
    size_t failed;
} stress_arg;

static uint64_t next_random(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* One operation: a list cycle (garbage at once), a dict entry, an append
 * to the shared list, a collection, or a drop of the shared list's tail. */
static void stress_op(stress_arg *a, uint64_t r)
{
    stress_shared *sh = a->sh;
    switch (r % 16) {
    case 0: {
        om_object *l = om_list_new(0);
        a->failed += l == NULL || om_list_append(l, l) != 0;
        om_xdecref(l);
        break;
    }
    case 1: {
        om_object *d = om_dict_new();
        om_object *k = om_int_from_i64((int64_t)(r >> 8));
        a->failed += d == NULL || k == NULL || om_dict_set(d, k, d) != 0;
        om_xdecref(k);
        om_xdecref(d);
        break;
    }
    case 2:
        if ((r >> 8) % 64 == 0)
            om_gc_collect((int)((r >> 16) % 3));
        break;
    case 3: {
        ptrdiff_t n = om_list_size(sh->shared);
        if (n > 1000)
            a->failed += om_list_clear(sh->shared) != 0;
        break;
    }
    default: {
        om_object *i = om_int_from_i64((int64_t)r);
        a->failed += i == NULL || om_list_append(sh->shared, i) != 0;
        sh->appended++;
        om_xdecref(i);
        break;
    }
    }
}

static void *stress_thread(void *varg)
{
    stress_arg *a = varg;
    om_attach(a->sh->rt);
    uint64_t state = 0x9e3779b97f4a7c15ULL * (a->id + 1);
    for (size_t op = 0; op < a->ops; op++) {
        stress_op(a, next_random(&state));
        if (op % 64 == 0)
            om_yield_point();
    }
    om_detach();
    return NULL;
}

static void test_stress(size_t ops)
{
    stress_shared sh = {.rt = om_runtime_new(NULL)};
    CHECK(sh.rt != NULL && om_attach(sh.rt) == 0);
    CHECK(om_set_switch_interval(0.001) == 0);   /* many switches */
    sh.shared = om_list_new(0);
    om_thread *main_ts = om_save_thread();
    stress_arg args[THREADS];
    pthread_t t[THREADS];
    double t0 = now_seconds();
    for (unsigned i = 0; i < THREADS; i++) {
        args[i] = (stress_arg){&sh, i, ops, 0};
        CHECK(pthread_create(&t[i], NULL, stress_thread, &args[i]) == 0);
    }
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    om_restore_thread(main_ts);
    size_t failed = 0;
    for (unsigned i = 0; i < THREADS; i++)
        failed += args[i].failed;
    CHECK_EQ_SIZE(failed, 0);
    CHECK(sh.appended > ops * THREADS / 2);
    om_gil_stats gs;
    om_runtime_get_gil_stats(sh.rt, &gs);
    printf("stress: %u threads x %zu ops in %.2f s, %llu switches, %llu drop requests\n",
           THREADS, ops, now_seconds() - t0, (unsigned long long)gs.switches,
           (unsigned long long)gs.drop_requests);
    CHECK(gs.switches >= THREADS);
    om_decref(sh.shared);
    om_gc_collect(2);
    long c0, c1, c2;
    om_gc_get_count(&c0, &c1, &c2);
    CHECK(c0 == 0);   /* every list cycle and dict was collected */
    om_heap_stats st;
    om_gc_collect(2);
    CHECK(om_heap_get_stats(om_runtime_heap(sh.rt), &st) == 0);
    CHECK_EQ_SIZE(st.small_used_bytes, 0);
    CHECK(om_runtime_delete(sh.rt) == 0);
}

int main(int argc, char **argv)
{
    size_t ops = argc > 1 ? strtoul(argv[1], NULL, 0) : STRESS_OPS;
    test_interval();
    test_fairness();
    test_two_spinners();
    test_save_restore();
    test_no_release_inside_release();
    test_stress(ops);
    return check_report();
}
