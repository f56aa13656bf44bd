/*
 * soak.c — a long mixed workload whose resident set must stay flat.
 *
 * `make soak` (SOAK_SECONDS, default 600) builds and runs this program:
 *
 *   soak [seconds [threads]]        defaults 600 and 3
 *
 * Workload. Each worker thread owns a runtime (om_runtime_new, om_attach)
 * and loops over a fixed-size window of slots, replacing the contents of a
 * random slot at each step (freeing the old, allocating the new). Each slot
 * has a plan drawn once at the start, so that the live data is the same
 * size at every moment after the window first fills (RSS then measures the
 * allocator, not the luck of the draw); slots hold:
 *   - an object graph: a list of ints, strs and a dict (refcounting);
 *   - (besides, one step in 16) a garbage cycle: two lists that hold each
 *     other, dropped at once, for the collector to free;
 *   - a small, medium (513 B … 256 KiB) or large (256 KiB … 1.25 MiB) block
 *     from the MEM domain, every byte written (so that RSS sees it);
 *   - now and then om_heap_trim of the runtime's heap, and a full
 *     collection.
 * The window bounds the live data, so after warm-up the heap should neither
 * grow (a leak) nor keep fragmenting. One more thread does the same on the
 * default runtime, so that runtimes and the default one coexist.
 *
 * Measurement. The main thread samples RSS (/proc/self/statm) once a second.
 * The first 20 % of the run is warm-up and is not judged. Then
 *   start = median of the samples of the first 10 % after warm-up,
 *   end   = median of the samples of the last 10 % of the run,
 *   drift = (end - start) / start,
 * and the run fails when drift > 2 % (medians of windows, so that one
 * sample caught between a burst of large blocks and their purge does not
 * decide). Every worker checks the contents it wrote before it frees them,
 * and its heap at the end (om_heap_check_heap: a broken heap is a fatal
 * report). Exit 0 on success, 1 on drift, a damaged block or a failed
 * allocation.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "objmem.h"

#define SOAK_WINDOW 2048                   /* slots per worker */
#define SOAK_WARMUP_SHARE 0.20             /* of the run, not judged */
#define SOAK_WINDOW_SHARE 0.10             /* of the run, per median window */
#define SOAK_DRIFT_LIMIT 0.02              /* 2 % */
#define SOAK_MAX_SAMPLES 100000

typedef enum slot_kind { SLOT_EMPTY, SLOT_OBJECTS, SLOT_SMALL, SLOT_MEDIUM, SLOT_LARGE } slot_kind;

typedef struct slot {
    slot_kind plan;                        /* what the slot holds when full */
    size_t size;                           /* bytes of its blocks, or items of its lists */
    slot_kind kind;                        /* what it holds now */
    void *p;                               /* the block or the object */
    unsigned char mark;                    /* the byte its block is filled with */
} slot;

typedef struct worker {
    pthread_t thread;
    bool own_runtime;                      /* false: the default runtime */
    uint64_t rng;                          /* xorshift64 state */
    slot slots[SOAK_WINDOW];
    uint64_t steps;                        /* results, read after join */
    uint64_t damaged;
    uint64_t failed_allocations;
    long collected;
} worker;

static atomic_bool soak_stop;

static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long total = 0, resident = 0;
    if (f != NULL) {
        if (fscanf(f, "%lu %lu", &total, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* ---- One slot's contents -------------------------------------------------- */

/* A list of `n` ints and strs and a dict mapping the strs to the ints. */
static om_object *make_objects(uint64_t *rng, size_t n)
{
    om_object *list = om_list_new(0);
    om_object *dict = om_dict_new();
    if (list == NULL || dict == NULL) {
        om_xdecref(list);
        om_xdecref(dict);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char text[32];
        int length = snprintf(text, sizeof text, "item-%05llu",
                              (unsigned long long)(next_random(rng) % 100000));
        om_object *key = om_str_from_utf8(text, (size_t)length);
        om_object *value = om_int_from_i64((int64_t)(next_random(rng) % 1000000) + 1000);
        if (key != NULL && value != NULL) {
            om_list_append(list, key);
            om_list_append(list, value);
            om_dict_set(dict, key, value);
        }
        om_xdecref(key);
        om_xdecref(value);
    }
    om_list_append(list, dict);
    om_decref(dict);
    return list;
}

/* Two lists that hold each other, with a weak reference to one: garbage
 * for the collector once dropped here. */
static void make_garbage_cycle(void)
{
    om_object *a = om_list_new(0);
    om_object *b = om_list_new(0);
    if (a != NULL && b != NULL) {
        om_list_append(a, b);
        om_list_append(b, a);
    }
    om_xdecref(a);
    om_xdecref(b);
}

static size_t planned_size(slot_kind kind, uint64_t *rng)
{
    switch (kind) {
    case SLOT_OBJECTS:
        return 1 + next_random(rng) % 24;
    case SLOT_SMALL:
        return 1 + next_random(rng) % OM_SMALL_SIZE_MAX;
    case SLOT_MEDIUM:
        return OM_SMALL_SIZE_MAX + 1 + next_random(rng) % (OM_MEDIUM_SIZE_MAX - OM_SMALL_SIZE_MAX);
    default:
        return OM_MEDIUM_SIZE_MAX + 1 + next_random(rng) % ((size_t)1 << 20);
    }
}

static void slot_clear(worker *w, slot *s)
{
    if (s->kind == SLOT_OBJECTS) {
        om_decref(s->p);
    } else if (s->kind != SLOT_EMPTY) {
        const unsigned char *bytes = s->p;
        if (bytes[0] != s->mark || bytes[s->size / 2] != s->mark || bytes[s->size - 1] != s->mark)
            w->damaged++;
        om_mem_free(s->p);
    }
    s->kind = SLOT_EMPTY;
    s->p = NULL;
}

/* Kinds drawn per 64: objects 40, small 17, medium 6, large 1. */
static slot_kind draw_kind(uint64_t *rng)
{
    uint64_t r = next_random(rng) % 64;
    return r < 40 ? SLOT_OBJECTS : r < 57 ? SLOT_SMALL : r < 63 ? SLOT_MEDIUM : SLOT_LARGE;
}

static void slot_plan(worker *w, slot *s)
{
    s->plan = draw_kind(&w->rng);
    s->size = planned_size(s->plan, &w->rng);
}

static void slot_fill(worker *w, slot *s)
{
    if (s->plan == SLOT_OBJECTS) {
        s->p = make_objects(&w->rng, s->size);
    } else {
        s->p = om_mem_malloc(s->size);
        if (s->p != NULL) {
            s->mark = (unsigned char)next_random(&w->rng);
            memset(s->p, s->mark, s->size);
        }
    }
    if (s->p == NULL) {
        w->failed_allocations++;
        return;
    }
    s->kind = s->plan;
}

/* ---- Workers ---------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    worker *w = arg;
    om_runtime *rt = NULL;
    if (w->own_runtime) {
        rt = om_runtime_new(NULL);
        if (rt == NULL || om_attach(rt) != 0) {
            fprintf(stderr, "soak: cannot start a runtime: %s\n", om_last_error_message());
            w->failed_allocations++;
            return NULL;
        }
    } else if (om_attach(om_runtime_default()) != 0) {
        w->failed_allocations++;
        return NULL;
    }
    for (size_t i = 0; i < SOAK_WINDOW; i++)
        slot_plan(w, &w->slots[i]);
    while (!atomic_load_explicit(&soak_stop, memory_order_relaxed)) {
        slot *s = &w->slots[next_random(&w->rng) % SOAK_WINDOW];
        slot_clear(w, s);
        slot_fill(w, s);
        if (next_random(&w->rng) % 16 == 0)
            make_garbage_cycle();
        w->steps++;
        if (w->steps % 200000 == 0) {
            w->collected += om_gc_collect(2);
            om_heap_trim(om_runtime_heap(om_runtime_current()));
        }
        om_yield_point();
    }
    for (size_t i = 0; i < SOAK_WINDOW; i++)
        slot_clear(w, &w->slots[i]);
    w->collected += om_gc_collect(2);
    om_heap_check_heap(om_runtime_heap(om_runtime_current()));
    if (rt != NULL)
        om_runtime_delete(rt);
    else
        om_detach();
    return NULL;
}

/* ---- RSS statistics ---------------------------------------------------------- */

static int compare_sizes(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

/* The median of samples[from, to), to > from. */
static double median_of(const size_t *samples, size_t from, size_t to)
{
    size_t n = to - from;
    size_t *sorted = malloc(n * sizeof *sorted);
    if (sorted == NULL)
        return 0;
    memcpy(sorted, samples + from, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, compare_sizes);
    double m = n % 2 ? (double)sorted[n / 2] : ((double)sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    free(sorted);
    return m;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 600;
    int threads = argc > 2 ? atoi(argv[2]) : 3;
    if (seconds < 10 || threads < 1 || threads > 64) {
        fprintf(stderr, "usage: soak [seconds >= 10 [threads 1..64]]\n");
        return 2;
    }
    static size_t samples[SOAK_MAX_SAMPLES];
    size_t count = 0;
    worker *workers = calloc((size_t)threads + 1, sizeof *workers);
    if (workers == NULL)
        return 2;
    printf("soak: %.0f s, %d runtime threads + 1 on the default runtime, window %d slots each\n",
           seconds, threads, SOAK_WINDOW);
    fflush(stdout);
    for (int i = 0; i <= threads; i++) {
        workers[i].own_runtime = i < threads;
        workers[i].rng = UINT64_C(0x50a6) * (uint64_t)(i + 1) + 0x9e3779b97f4a7c15u;
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            fprintf(stderr, "soak: pthread_create failed\n");
            return 2;
        }
    }
    double start = now_seconds();
    while (now_seconds() - start < seconds && count < SOAK_MAX_SAMPLES) {
        sleep(1);
        samples[count++] = rss_bytes();
        if (count % (getenv("SOAK_VERBOSE") ? 5 : 60) == 0) {
            printf("soak: %4zu s  RSS %.1f MB\n", count, samples[count - 1] / 1e6);
            fflush(stdout);
        }
    }
    atomic_store(&soak_stop, true);
    uint64_t steps = 0, damaged = 0, failed = 0;
    long collected = 0;
    for (int i = 0; i <= threads; i++) {
        pthread_join(workers[i].thread, NULL);
        steps += workers[i].steps;
        damaged += workers[i].damaged;
        failed += workers[i].failed_allocations;
        collected += workers[i].collected;
    }

    size_t warmup = (size_t)((double)count * SOAK_WARMUP_SHARE);
    size_t window = (size_t)((double)count * SOAK_WINDOW_SHARE);
    if (window < 3 || warmup + window > count - window) {
        fprintf(stderr, "soak: %zu samples are too few to judge\n", count);
        return 1;
    }
    double first = median_of(samples, warmup, warmup + window);
    double last = median_of(samples, count - window, count);
    double drift = (last - first) / first;
    printf("soak: %llu steps, %ld objects collected by full collections, %llu failed "
           "allocations, %llu damaged blocks\n",
           (unsigned long long)steps, collected, (unsigned long long)failed,
           (unsigned long long)damaged);
    printf("soak: %zu RSS samples (1/s); warm-up %zu s; median of samples %zu-%zu s: %.2f MB; "
           "median of the last %zu s: %.2f MB; drift %+.2f %% (limit %.0f %%)\n",
           count, warmup, warmup, warmup + window, first / 1e6, window, last / 1e6,
           drift * 100, SOAK_DRIFT_LIMIT * 100);
    bool ok = drift <= SOAK_DRIFT_LIMIT && damaged == 0 && failed == 0;
    printf("soak: %s\n", ok ? "PASS" : "FAIL");
    free(workers);
    return ok ? 0 : 1;
}
