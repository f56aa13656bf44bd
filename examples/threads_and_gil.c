/*
 * threads_and_gil.c — threads and objmem's global lock (the GIL).
 *
 * Part 1: two threads share the default runtime. Each attaches, builds and
 * drops objects in a loop with om_yield_point() so the other gets its turn,
 * and lets go of the GIL around a blocking call (here: nanosleep) with
 * OM_BEGIN_ALLOW_THREADS / OM_END_ALLOW_THREADS.
 * Part 2: two threads, each with a runtime of its own (its own heap,
 * collector and GIL): they never wait for each other.
 * Build:
 *   cc threads_and_gil.c $(pkg-config --cflags --libs objmem) -pthread
 */
#define _POSIX_C_SOURCE 200809L     /* nanosleep under -std=c11 */
#include <objmem.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>

enum { ROUNDS = 20000 };

typedef struct worker {
    om_runtime *runtime;        /* attach to this one; NULL: make a runtime of its own */
    long built;                 /* lists built and dropped */
    om_thread_stats stats;      /* its GIL counts at the end */
    int failed;
} worker;

/* One unit of work: a list of two fresh ints, made and dropped. */
static int build_and_drop(long i)
{
    om_object *list = om_list_new(2);
    om_object *x = om_int_from_i64(1000 + i), *y = om_int_from_i64(-1000 - i);
    int ok = list != NULL && x != NULL && y != NULL &&
             om_list_append(list, x) == 0 && om_list_append(list, y) == 0;
    om_xdecref(x);
    om_xdecref(y);
    om_xdecref(list);
    return ok ? 0 : -1;
}

static void *work(void *arg)
{
    worker *w = arg;
    om_runtime *own = w->runtime == NULL ? om_runtime_new(NULL) : NULL;
    om_runtime *rt = own != NULL ? own : w->runtime;
    if (rt == NULL || om_attach(rt) != 0) {     /* takes rt's GIL */
        w->failed = 1;
        return NULL;
    }
    for (long i = 0; i < ROUNDS; i++) {
        if (build_and_drop(i) != 0) {
            w->failed = 1;
            break;
        }
        w->built++;
        om_yield_point();           /* hand the GIL over if another thread asked */
        if (i % 5000 == 0) {
            /* Blocking work without the GIL: no objmem MEM/OBJ calls in here. */
            OM_BEGIN_ALLOW_THREADS
            nanosleep(&(struct timespec){.tv_nsec = 1000000}, NULL);
            OM_END_ALLOW_THREADS
        }
    }
    om_thread_get_stats(&w->stats);
    om_detach();                    /* releases the GIL */
    if (own != NULL && om_runtime_delete(own) != 0)
        w->failed = 1;
    return NULL;
}

/* Runs two workers on two threads and waits for both. */
static int run_pair(worker pair[2])
{
    pthread_t threads[2];
    int started = 0;
    for (; started < 2; started++)
        if (pthread_create(&threads[started], NULL, work, &pair[started]) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    return started == 2 && !pair[0].failed && !pair[1].failed ? 0 : -1;
}

int main(void)
{
    /* The main thread makes no objmem call, so it holds no GIL while it
     * waits. (A thread that did would wrap pthread_join in
     * OM_BEGIN_ALLOW_THREADS / OM_END_ALLOW_THREADS.) */
    om_gil_stats before, after;
    om_runtime_get_gil_stats(om_runtime_default(), &before);
    worker shared[2] = {{.runtime = om_runtime_default()}, {.runtime = om_runtime_default()}};
    if (run_pair(shared) != 0) {
        fprintf(stderr, "shared runtime: %s\n", om_last_error_message());
        return 1;
    }
    om_runtime_get_gil_stats(om_runtime_default(), &after);
    printf("one runtime, two threads:\n");
    for (int i = 0; i < 2; i++)
        printf("  thread %d built %ld lists, took the GIL %llu times\n", i + 1, shared[i].built,
               (unsigned long long)shared[i].stats.acquisitions);
    printf("  the GIL changed hands %llu times\n",
           (unsigned long long)(after.switches - before.switches));

    worker separate[2] = {{.runtime = NULL}, {.runtime = NULL}};
    if (run_pair(separate) != 0) {
        fprintf(stderr, "own runtimes: %s\n", om_last_error_message());
        return 1;
    }
    printf("two runtimes, two threads: %ld and %ld lists, each thread alone on its GIL\n",
           separate[0].built, separate[1].built);

    /* Each thread gave up the GIL around its sleeps, so each took it more
     * than once; the work itself is exact. */
    int ok = shared[0].built == ROUNDS && shared[1].built == ROUNDS &&
             separate[0].built == ROUNDS && separate[1].built == ROUNDS &&
             shared[0].stats.acquisitions > 1 && shared[1].stats.acquisitions > 1 &&
             after.switches > before.switches;
    return ok ? 0 : 1;
}
