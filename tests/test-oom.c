/*
 * test-oom.c — out of memory everywhere (issue 9).
 *
 * Each workload below runs once per allocation point it reaches: run i
 * makes exactly the i-th allocation fail, for i = 0, 1, 2, … until a run
 * completes without the failure firing (then i is the number of points).
 * After each run the test asserts:
 *   - a clean error: the workload saw a NULL or -1 from the call whose
 *     allocation failed and om_last_error() said OM_ENOMEM (or the library
 *     recovered by itself, e.g. collect-and-retry, and the workload
 *     completed);
 *   - no leak: the heap's live bytes (small + medium + large in use) are
 *     back at their value before the run (RAW memory: LeakSanitizer in the
 *     sanitizer build);
 *   - a consistent heap: om_heap_check (pools, arenas, medium, large, the
 *     address map and the collector's lists) passes.
 *
 * Failures are injected at two levels:
 *   domain  om_fail_after(domain, i) for RAW, MEM and OBJ, around a buffer
 *           workload (MEM: every tier, calloc, realloc across tiers,
 *           aligned), an object workload (containers, str/bytes/int,
 *           a custom GC type, cycles, weak references with a callback,
 *           iterators, collections), both again while tracing (snapshots,
 *           statistics, a comparison), and a runtime made and deleted;
 *   arena   om_set_arena_allocator with an allocator that fails its i-th
 *           arena, around a private-heap workload and the object workload
 *           (pool and medium arenas; large blocks take their own mappings
 *           and are failed at the OS level by asking for more address
 *           space than mmap gives).
 * The number of allocation points each workload reached is printed.
 */
#include <stddef.h>
#include <stdio.h>

#include "check.h"
#include "testutil.h"

#define MAX_POINTS 100000   /* a workload reaching more is a runaway loop */

/* ---- Workloads: each returns 0, or -1 after freeing what it made -------- */

typedef int workload_fn(om_heap *h);

/* The outcome of one call: fine, or a clean failure (NULL or -1 with
 * OM_ENOMEM); anything else is a failed CHECK. */
static bool failed_cleanly(bool failed)
{
    if (!failed)
        return false;
    CHECK(om_last_error() == OM_ENOMEM);
    return true;
}

static const size_t buffer_sizes[] = {0, 16, 100, 512, 513, 4000, 70000, 300000, 3u << 20};
#define BUFFER_COUNT (sizeof buffer_sizes / sizeof buffer_sizes[0])

/* MEM buffers of every tier: malloc, calloc, realloc up and down across
 * tiers, aligned. */
static int mem_buffers(om_heap *h)
{
    (void)h;
    void *blocks[BUFFER_COUNT + 2] = {0};
    int rc = -1;
    for (size_t i = 0; i < BUFFER_COUNT; i++) {
        blocks[i] = i % 2 ? om_mem_calloc(1, buffer_sizes[i]) : om_mem_malloc(buffer_sizes[i]);
        if (failed_cleanly(blocks[i] == NULL))
            goto out;
    }
    for (size_t i = 0; i < BUFFER_COUNT; i++) {
        void *p = om_mem_realloc(blocks[i], buffer_sizes[BUFFER_COUNT - 1 - i] + 1);
        if (failed_cleanly(p == NULL))
            goto out;   /* the old block is still in blocks[i] */
        blocks[i] = p;
    }
    blocks[BUFFER_COUNT] = om_aligned_alloc(4096, 5000);
    if (failed_cleanly(blocks[BUFFER_COUNT] == NULL))
        goto out;
    blocks[BUFFER_COUNT + 1] = om_obj_malloc(48);
    if (failed_cleanly(blocks[BUFFER_COUNT + 1] == NULL))
        goto out;
    rc = 0;
out:
    for (size_t i = 0; i < BUFFER_COUNT + 1; i++)
        om_mem_free(blocks[i]);
    om_obj_free(blocks[BUFFER_COUNT + 1]);
    return rc;
}

/* Enough small and medium blocks to need several arenas of each kind. */
static int many_blocks(om_heap *h)
{
    enum { SMALL = 5000, MEDIUM = 40 };
    static void *small[SMALL], *medium[MEDIUM];
    int rc = -1;
    memset(small, 0, sizeof small);
    memset(medium, 0, sizeof medium);
    for (size_t i = 0; i < SMALL; i++)
        if (failed_cleanly((small[i] = om_heap_malloc(h, 400)) == NULL))
            goto out;
    for (size_t i = 0; i < MEDIUM; i++)
        if (failed_cleanly((medium[i] = om_heap_malloc(h, 100000)) == NULL))
            goto out;
    rc = 0;
out:
    for (size_t i = 0; i < SMALL; i++)
        om_mem_free(small[i]);
    for (size_t i = 0; i < MEDIUM; i++)
        om_mem_free(medium[i]);
    return rc;
}

/* The same tiers from a private heap, plus om_heap_trim in the middle. */
static int heap_buffers(om_heap *h)
{
    void *blocks[BUFFER_COUNT * 2] = {0};
    int rc = -1;
    for (size_t i = 0; i < BUFFER_COUNT * 2; i++) {
        size_t size = buffer_sizes[i % BUFFER_COUNT] + i;
        blocks[i] = i % 3 == 0 ? om_heap_calloc(h, 2, size / 2 + 1) : om_heap_malloc(h, size);
        if (failed_cleanly(blocks[i] == NULL))
            goto out;
        if (i == BUFFER_COUNT)
            om_heap_trim(h);
    }
    for (size_t i = 0; i < BUFFER_COUNT * 2; i++) {
        void *p = om_heap_realloc(h, blocks[i], buffer_sizes[(i + 3) % BUFFER_COUNT] * 2);
        if (failed_cleanly(p == NULL))
            goto out;
        blocks[i] = p;
    }
    void *aligned = om_heap_aligned_alloc(h, 65536, 20000);
    if (failed_cleanly(aligned == NULL))
        goto out;
    om_mem_free(aligned);
    rc = many_blocks(h);
out:
    for (size_t i = 0; i < BUFFER_COUNT * 2; i++)
        om_mem_free(blocks[i]);
    return rc;
}

typedef struct pair {
    OM_OBJECT_HEAD;
    om_object *a, *b;
} pair;

static om_type *pair_type;
static long callbacks;

static void count_callback(om_object *ref)
{
    (void)ref;
    callbacks++;
}

/* Stores item into list l, consuming the caller's reference to item;
 * false (item dropped) on a clean failure. */
static bool append_new(om_object *l, om_object *item)
{
    if (failed_cleanly(item == NULL))
        return false;
    int rc = om_list_append(l, item);
    om_decref(item);
    return !failed_cleanly(rc != 0);
}

/* Containers and scalars, a cycle of custom objects, weak references with
 * a callback, a dict, iteration, and collections. */
static int objects(om_heap *h)
{
    (void)h;
    om_object *root = om_list_new(0);
    if (failed_cleanly(root == NULL))
        return -1;
    int rc = -1;
    for (int i = 0; i < 40; i++)
        if (!append_new(root, om_int_from_i64((int64_t)i << 40)))
            goto out;
    if (!append_new(root, om_str_from_cstr("out of memory everywhere")) ||
        !append_new(root, om_bytes_from("abc", 3)) ||
        !append_new(root, om_tuple_pack(2, om_none, om_true)) ||
        !append_new(root, om_float_from_double(2.5)))
        goto out;
    om_object *d = om_dict_new();
    if (!append_new(root, d))
        goto out;
    for (int i = 0; i < 20; i++) {
        om_object *k = om_str_from_cstr(i % 2 ? "odd" : "even");
        om_object *v = om_int_from_i64(i * 1000003);
        bool made = !failed_cleanly(k == NULL || v == NULL);
        bool stored = made && !failed_cleanly(om_dict_set(d, k, v) != 0);
        om_xdecref(k);
        om_xdecref(v);
        if (!stored)
            goto out;
        om_object *key = om_int_from_i64(i + 1000);
        stored = !failed_cleanly(key == NULL) && !failed_cleanly(om_dict_set(d, key, root) != 0);
        om_xdecref(key);
        if (!stored)
            goto out;
    }
    /* A cycle p <-> q, one of them weakly referenced with a callback. */
    om_object *p = om_new(pair_type);
    if (failed_cleanly(p == NULL))
        goto out;
    om_object *q = om_new(pair_type);
    if (failed_cleanly(q == NULL)) {
        om_decref(p);
        goto out;
    }
    ((pair *)p)->a = q;   /* p owns the reference om_new gave to q */
    ((pair *)q)->a = p;
    om_incref(p);
    om_object *ref = om_weakref_new(p, count_callback);
    if (!failed_cleanly(ref == NULL) && !append_new(root, ref))
        ref = NULL;
    om_decref(p);   /* the cycle is garbage now, held by nothing */
    if (ref == NULL)
        goto out;
    om_object *it = om_iter(root);
    if (failed_cleanly(it == NULL))
        goto out;
    om_object *item;
    om_clear_error();
    while ((item = om_next(it)) != NULL)
        om_decref(item);
    bool iter_failed = failed_cleanly(om_last_error() != OM_OK);
    om_decref(it);
    if (iter_failed)
        goto out;
    om_gc_collect(0);
    om_gc_collect(2);
    rc = 0;
out:
    om_decref(root);
    om_gc_collect(2);   /* the dict <-> root cycle, and the pair if still there */
    return rc;
}

/* A runtime made and deleted. */
static int runtime_life(om_heap *h)
{
    (void)h;
    om_runtime *rt = om_runtime_new(NULL);
    if (failed_cleanly(rt == NULL))
        return -1;
    CHECK(om_runtime_delete(rt) == 0);
    return 0;
}

/* Tracing: start, traced buffers and objects, two snapshots, statistics
 * and a comparison, stop. */
static int tracing(om_heap *h)
{
    om_snapshot *first = NULL, *second = NULL;
    om_trace_stats *stats = NULL, *diff = NULL;
    int rc = -1;
    if (failed_cleanly(om_trace_start(4) != 0))
        return -1;
    if (failed_cleanly((first = om_trace_take_snapshot()) == NULL))
        goto out;
    if (mem_buffers(h) != 0 || objects(h) != 0)
        goto out;
    void *kept = om_mem_malloc(1000);
    if (failed_cleanly(kept == NULL))
        goto out;
    second = om_trace_take_snapshot();
    om_mem_free(kept);
    if (failed_cleanly(second == NULL))
        goto out;
    if (failed_cleanly((stats = om_snapshot_statistics(second, OM_TRACE_BY_TRACEBACK)) == NULL))
        goto out;
    if (failed_cleanly((diff = om_snapshot_compare(first, second, OM_TRACE_BY_SITE)) == NULL))
        goto out;
    rc = 0;
out:
    om_trace_stats_free(stats);
    om_trace_stats_free(diff);
    om_snapshot_free(first);
    om_snapshot_free(second);
    om_trace_stop();
    return rc;
}

/* ---- Running a workload at every allocation point ------------------------ */

static size_t live_bytes(om_heap *h)
{
    om_heap_stats st = tu_get_stats(h);
    return st.small_used_bytes + st.medium_used_bytes + st.large_bytes;
}

/* One run with a fault armed by arm(i); true when the fault fired. */
typedef struct fault_level {
    const char *name;
    void (*arm)(long i);
    void (*disarm)(void);
    long (*fired)(void);        /* failures injected so far */
} fault_level;

static size_t run_everywhere(const char *name, workload_fn *work, bool private_heap,
                             const fault_level *level)
{
    size_t points = 0;
    for (long i = 0; i < MAX_POINTS; i++) {
        om_heap *h = private_heap ? om_heap_new() : NULL;
        CHECK(!private_heap || h != NULL);
        om_gc_collect(2);
        size_t before = live_bytes(h);
        long fired_before = level->fired();
        om_clear_error();
        level->arm(i);
        int rc = work(h);
        level->disarm();
        bool fired = level->fired() > fired_before;
        CHECK(rc == 0 || fired);   /* a failure only where one was injected */
        CHECK_EQ_SIZE(live_bytes(h), before);
        CHECK(om_heap_check() == 0);
        if (h != NULL) {
            CHECK(om_heap_check_heap(h) == 0);
            om_heap_delete(h);
        }
        if (!fired) {
            points = (size_t)i;
            break;
        }
    }
    printf("test-oom: %s, %s failures: %zu allocation points\n", name, level->name, points);
    CHECK(points < MAX_POINTS);
    return points;
}

/* Domain level: om_fail_after on one domain. */
static om_domain armed_domain;

static void domain_arm(long i)
{
    CHECK(om_fail_after(armed_domain, i) == 0);
}

static void domain_disarm(void)
{
    CHECK(om_fail_after(armed_domain, -1) == 0);
}

static long domain_fired(void)
{
    return om_fail_count(armed_domain);
}

/* Arena level: an arena allocator that fails its countdown-th arena. */
typedef struct failing_arenas {
    om_arena_allocator inner;
    long countdown;               /* arenas that still succeed; < 0 = never fail */
    long failures;
} failing_arenas;

static failing_arenas arenas;

static void *failing_alloc(void *ctx, size_t size)
{
    failing_arenas *f = ctx;
    if (f->countdown == 0) {
        f->countdown = -1;
        f->failures++;
        return NULL;
    }
    if (f->countdown > 0)
        f->countdown--;
    return f->inner.alloc(f->inner.ctx, size);
}

static void failing_free(void *ctx, void *ptr, size_t size)
{
    failing_arenas *f = ctx;
    f->inner.free(f->inner.ctx, ptr, size);
}

static void arena_arm(long i)
{
    arenas.countdown = i;
}

static void arena_disarm(void)
{
    arenas.countdown = -1;
}

static long arena_fired(void)
{
    return arenas.failures;
}

static const fault_level domain_level = {"domain", domain_arm, domain_disarm, domain_fired};
static const fault_level arena_level = {"arena", arena_arm, arena_disarm, arena_fired};

static void test_domain_failures(void)
{
    static const char *const names[OM_DOMAIN_COUNT] = {"RAW", "MEM", "OBJ"};
    for (int d = 0; d < OM_DOMAIN_COUNT; d++) {
        armed_domain = (om_domain)d;
        char name[64];
        snprintf(name, sizeof name, "buffers, %s domain", names[d]);
        if (d != OM_DOMAIN_RAW)   /* the buffer workload makes no RAW call */
            CHECK(run_everywhere(name, mem_buffers, false, &domain_level) >= 1);
        snprintf(name, sizeof name, "objects, %s domain", names[d]);
        size_t points = run_everywhere(name, objects, false, &domain_level);
        if (d == OM_DOMAIN_OBJ)
            CHECK(points >= 40);   /* at least the 40 ints */
        snprintf(name, sizeof name, "tracing, %s domain", names[d]);
        CHECK(run_everywhere(name, tracing, false, &domain_level) > 0);
    }
    armed_domain = OM_DOMAIN_RAW;
    CHECK(run_everywhere("runtime, RAW domain", runtime_life, false, &domain_level) > 0);
}

static void test_arena_failures(void)
{
    om_get_arena_allocator(&arenas.inner);
    arenas.countdown = -1;
    om_arena_allocator failing = {&arenas, failing_alloc, failing_free};
    CHECK(om_set_arena_allocator(&failing) == 0);
    /* Each run starts from a heap that must map its arenas anew: a private
     * heap, or the default heap trimmed of its spares. */
    CHECK(run_everywhere("private heap buffers", heap_buffers, true, &arena_level) >= 2);
    om_heap_trim(NULL);
    run_everywhere("objects after a trim", objects, false, &arena_level);
    CHECK(om_set_arena_allocator(NULL) == 0);
}

/* mmap refuses: a large block beyond the address space, from each way in. */
static void test_os_failures(void)
{
    size_t before = live_bytes(NULL);
    size_t huge = (size_t)1 << 47;
    om_clear_error();
    CHECK(om_mem_malloc(huge) == NULL && om_last_error() == OM_ENOMEM);
    om_clear_error();
    CHECK(om_mem_calloc(huge / 16, 16) == NULL && om_last_error() == OM_ENOMEM);
    om_clear_error();
    CHECK(om_aligned_alloc((size_t)1 << 21, huge) == NULL && om_last_error() == OM_ENOMEM);
    void *p = om_mem_malloc(3 * MB);
    CHECK(p != NULL);
    om_clear_error();
    CHECK(om_mem_realloc(p, huge) == NULL && om_last_error() == OM_ENOMEM);
    CHECK(om_usable_size(p) >= 3 * MB);   /* the block is kept */
    om_mem_free(p);
    om_object *l = om_list_new(0);
    om_clear_error();
    CHECK(l != NULL && om_new_var(&om_tuple_type, huge / 8) == NULL &&
          om_last_error() == OM_ENOMEM);
    om_decref(l);
    CHECK_EQ_SIZE(live_bytes(NULL), before);
    CHECK(om_heap_check() == 0);
}

int main(void)
{
    om_type_spec spec = {.name = "oom_pair", .size = sizeof(pair),
                         .flags = OM_TYPE_WEAKREFABLE,
                         .object_offsets = (const size_t[]){offsetof(pair, a), offsetof(pair, b)},
                         .object_offset_count = 2};
    pair_type = om_type_from_spec(&spec);
    CHECK(pair_type != NULL);
    /* First allocations of the collector, weak references and the
     * garbage list happen here, before any baseline. */
    om_object *warm = om_new(pair_type);
    om_object *ref = om_weakref_new(warm, NULL);
    om_decref(ref);
    om_decref(warm);
    (void)om_gc_garbage();
    om_gc_collect(2);

    test_os_failures();
    test_domain_failures();
    test_arena_failures();
    om_type_delete(pair_type);
    return check_report();
}
