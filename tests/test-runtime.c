/*
 * test-runtime.c — runtimes and the binding of threads to them.
 *
 * Checks:
 *   - a thread that makes no set-up call is attached to the default runtime
 *     by its first allocation, whose heap is om_heap_default();
 *   - om_runtime_new: configuration, validation, environment overrides, and
 *     every allocation failure (fault injection on RAW) fails cleanly;
 *   - om_attach / om_detach errors; a thread that ends attached releases
 *     its GIL;
 *   - two runtimes in two threads hold their GILs at the same time and
 *     never share a block (each block's arena belongs to its runtime's heap);
 *   - om_heap_new's failure (fault injection on RAW): NULL, OM_ENOMEM,
 *     nothing mapped;
 *   - str interning is per runtime: two runtimes intern concurrently, each
 *     gets its own canonical strs in its own heap, and deleting one leaves
 *     the other's valid;
 *   - om_runtime_delete with garbage cycles, finalizers, weak-reference
 *     callbacks and an object still referenced: finalizers ran and every
 *     arena went back (a counting arena allocator); deleting from a thread
 *     attached elsewhere restores that thread's binding.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "check.h"
#include "internal.h"
#include "objmem.h"
#include "testutil.h"

/* ---- Helpers ------------------------------------------------------------- */

static double now_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The heap that owns small block p (its arena's descriptor says). */
static om_heap *small_block_heap(const void *p)
{
    uintptr_t entry = omi_addrmap_lookup(p);
    if ((entry & OMI_OWNER_KIND_MASK) != OMI_OWNER_SMALL)
        return NULL;
    return ((const omi_arena *)((uintptr_t)p & ~(uintptr_t)(OMI_ARENA_SIZE - 1)))->heap;
}

typedef struct node {
    OM_OBJECT_HEAD;
    om_object *next;
    long payload;
} node;

static atomic_long finalized;

static void node_finalize(om_object *self)
{
    (void)self;
    atomic_fetch_add(&finalized, 1);
}

static const size_t node_offsets[] = {offsetof(node, next)};
static const om_type *node_type_ptr;

/* Made once, before any thread (RAW memory: shared by every runtime). */
static void node_type_init(void)
{
    om_type_spec spec = {.name = "node", .size = sizeof(node), .flags = OM_TYPE_WEAKREFABLE,
                         .object_offsets = node_offsets, .object_offset_count = 1,
                         .finalize = node_finalize};
    node_type_ptr = om_type_from_spec(&spec);
}

static const om_type *node_type(void)
{
    return node_type_ptr;
}

/* ---- The default runtime ----------------------------------------------- */

typedef struct first_call_result {
    om_runtime *before, *after;
    bool held;
    om_heap *heap;
} first_call_result;

static void *first_call_thread(void *arg)
{
    first_call_result *r = arg;
    r->before = om_runtime_current();
    void *p = om_mem_malloc(24);
    r->after = om_runtime_current();
    r->held = om_gil_held();
    r->heap = small_block_heap(p);
    om_mem_free(p);
    return NULL;
}

static void test_default_runtime(void)
{
    void *p = om_obj_malloc(16);
    CHECK(om_runtime_current() == om_runtime_default());
    CHECK(om_runtime_heap(om_runtime_default()) == om_heap_default());
    CHECK(small_block_heap(p) == om_heap_default());
    CHECK(om_gil_held());
    om_obj_free(p);
    CHECK(om_runtime_delete(om_runtime_default()) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_runtime_delete(NULL) == 0);

    /* A second thread is attached by its first call, and waits for the GIL
     * that this thread holds: release it meanwhile. */
    first_call_result r = {0};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, first_call_thread, &r) == 0);
    OM_BEGIN_ALLOW_THREADS
    pthread_join(t, NULL);
    OM_END_ALLOW_THREADS
    CHECK(r.before == NULL);
    CHECK(r.after == om_runtime_default());
    CHECK(r.held);
    CHECK(r.heap == om_heap_default());
    CHECK(om_gil_held());
}

/* ---- Creation ------------------------------------------------------------ */

static void test_config(void)
{
    om_config cfg;
    om_config_init(&cfg);
    CHECK(cfg.switch_interval == 0.005 && cfg.gc_threshold[0] == 700 && cfg.gc_enabled);
    om_config_init(NULL);

    cfg.switch_interval = 0;
    CHECK(om_runtime_new(&cfg) == NULL && om_last_error() == OM_EINVAL);
    om_config_init(&cfg);
    cfg.gc_threshold[2] = -1;
    CHECK(om_runtime_new(&cfg) == NULL && om_last_error() == OM_EINVAL);

    om_config_init(&cfg);
    cfg.switch_interval = 0.002;
    cfg.gc_threshold[0] = 123;
    cfg.gc_enabled = false;
    om_runtime *rt = om_runtime_new(&cfg);
    CHECK(rt != NULL);
    om_detach();
    CHECK(om_runtime_current() == NULL);
    CHECK(om_attach(rt) == 0);
    CHECK(om_runtime_current() == rt && om_gil_held());
    CHECK(om_get_switch_interval() > 0.0019 && om_get_switch_interval() < 0.0021);
    long t0, t1, t2;
    om_gc_get_threshold(&t0, &t1, &t2);
    CHECK(t0 == 123 && t1 == 10 && t2 == 10);
    CHECK(!om_gc_is_enabled());
    CHECK(om_attach(rt) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_attach(NULL) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_runtime_delete(rt) == 0);
    CHECK(om_runtime_current() == NULL);

    /* The environment overrides the configuration. */
    setenv("OBJMEM_SWITCH_INTERVAL", "0.003", 1);
    setenv("OBJMEM_GC_THRESHOLD", "500,7", 1);
    rt = om_runtime_new(NULL);
    unsetenv("OBJMEM_SWITCH_INTERVAL");
    unsetenv("OBJMEM_GC_THRESHOLD");
    CHECK(rt != NULL && om_attach(rt) == 0);
    CHECK(om_get_switch_interval() > 0.0029 && om_get_switch_interval() < 0.0031);
    om_gc_get_threshold(&t0, &t1, &t2);
    CHECK(t0 == 500 && t1 == 7 && t2 == 10);
    CHECK(om_runtime_delete(rt) == 0);
    om_mem_free(om_mem_malloc(1));   /* back on the default runtime */
    CHECK(om_runtime_current() == om_runtime_default());
}

/* Every RAW allocation of om_runtime_new fails in turn, cleanly. */
static void test_new_out_of_memory(void)
{
    long failures = 0;
    om_runtime *rt = NULL;
    for (long n = 0; n < 64 && rt == NULL; n++) {
        om_fail_after(OM_DOMAIN_RAW, n);
        rt = om_runtime_new(NULL);
        if (rt == NULL) {
            failures++;
            CHECK(om_last_error() == OM_ENOMEM);
        }
    }
    om_fail_after(OM_DOMAIN_RAW, -1);
    CHECK(failures >= 4);   /* the runtime, its table, its collector, its heap */
    CHECK(rt != NULL);
    CHECK(om_runtime_delete(rt) == 0);
}

/* om_heap_new's descriptor comes from the RAW domain: its failure is a
 * NULL with OM_ENOMEM, and nothing was taken (no arena mapped, the heap
 * that a retry makes works). */
static void test_heap_new_out_of_memory(void)
{
    tu_arena_counter counter;
    tu_arena_counter_install(&counter);
    long failed_before = om_fail_count(OM_DOMAIN_RAW);
    om_fail_after(OM_DOMAIN_RAW, 0);
    om_clear_error();
    om_heap *h = om_heap_new();
    om_fail_after(OM_DOMAIN_RAW, -1);
    CHECK(h == NULL);
    CHECK(om_last_error() == OM_ENOMEM);
    CHECK(om_fail_count(OM_DOMAIN_RAW) == failed_before + 1);
    CHECK_EQ_SIZE(atomic_load(&counter.allocs), 0);
    h = om_heap_new();
    CHECK(h != NULL);
    void *p = om_heap_malloc(h, 64);
    CHECK(p != NULL);
    om_mem_free(p);
    om_heap_delete(h);
    om_set_arena_allocator(NULL);
    CHECK_EQ_SIZE(atomic_load(&counter.frees), atomic_load(&counter.allocs));
}

/* ---- Threads ------------------------------------------------------------- */

static void *attach_and_exit(void *arg)
{
    om_attach(arg);
    om_mem_free(om_mem_malloc(8));
    return NULL;   /* still attached: the exit destructor detaches */
}

static void test_thread_exit_detaches(void)
{
    om_runtime *rt = om_runtime_new(NULL);
    CHECK(rt != NULL);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, attach_and_exit, rt) == 0);
    pthread_join(t, NULL);
    CHECK(om_runtime_delete(rt) == 0);   /* nobody attached any more */

    rt = om_runtime_new(NULL);
    om_thread *saved = om_save_thread();
    CHECK(saved != NULL && !om_gil_held());
    om_restore_thread(saved);
    CHECK(om_gil_held());
    om_restore_thread(NULL);
    CHECK(om_runtime_delete(rt) == 0);
}

enum { PARALLEL_BLOCKS = 4000 };

typedef struct parallel_arg {
    om_runtime *rt;
    atomic_int *inside;           /* threads holding their GILs now */
    bool overlapped;              /* saw both inside at once */
    void *blocks[PARALLEL_BLOCKS];
    om_object *objects[PARALLEL_BLOCKS / 4];
    bool failed;
} parallel_arg;

static void *parallel_thread(void *varg)
{
    parallel_arg *a = varg;
    if (om_attach(a->rt) != 0) {
        a->failed = true;
        return NULL;
    }
    atomic_fetch_add(a->inside, 1);
    double deadline = now_seconds() + 30;
    while (atomic_load(a->inside) < 2 && now_seconds() < deadline)
        ;
    a->overlapped = atomic_load(a->inside) == 2;
    for (size_t i = 0; i < PARALLEL_BLOCKS; i++) {
        a->blocks[i] = om_obj_malloc(16 + i % 400);
        a->failed |= a->blocks[i] == NULL;
    }
    for (size_t i = 0; i < PARALLEL_BLOCKS / 4; i++) {
        a->objects[i] = om_new(node_type());
        a->failed |= a->objects[i] == NULL;
    }
    om_detach();
    return NULL;
}

/* Two runtimes in two threads: both hold their GILs at once, and each
 * block is in its own runtime's heap. */
static void test_two_runtimes_in_parallel(void)
{
    om_detach();
    atomic_int inside = 0;
    parallel_arg *args = calloc(2, sizeof *args);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        args[i].rt = om_runtime_new(NULL);
        args[i].inside = &inside;
        CHECK(args[i].rt != NULL);
        CHECK(pthread_create(&t[i], NULL, parallel_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        parallel_arg *a = &args[i];
        om_heap *mine = om_runtime_heap(a->rt);
        CHECK(!a->failed && a->overlapped);
        size_t wrong = 0;
        for (size_t k = 0; k < PARALLEL_BLOCKS; k++)
            wrong += small_block_heap(a->blocks[k]) != mine;
        for (size_t k = 0; k < PARALLEL_BLOCKS / 4; k++)
            wrong += small_block_heap(omi_gc_head_of(a->objects[k])) != mine;
        CHECK_EQ_SIZE(wrong, 0);
        /* Clean up on the runtime that owns them. */
        CHECK(om_attach(a->rt) == 0);
        for (size_t k = 0; k < PARALLEL_BLOCKS; k++)
            om_obj_free(a->blocks[k]);
        for (size_t k = 0; k < PARALLEL_BLOCKS / 4; k++)
            om_decref(a->objects[k]);
        om_heap_stats st;
        om_heap_get_stats(mine, &st);
        CHECK_EQ_SIZE(st.small_used_bytes, 0);
        CHECK(om_runtime_delete(a->rt) == 0);
    }
    free(args);
}

/* ---- Deletion ------------------------------------------------------------ */

static atomic_int callbacks_run;

static void weak_callback(om_object *ref)
{
    (void)ref;
    atomic_fetch_add(&callbacks_run, 1);
}

/* Makes `pairs` garbage two-node cycles (finalizers), a weak reference with
 * a callback to one of them, and a chain still referenced (returned). */
static om_object *make_garbage(size_t pairs, om_object **weak)
{
    for (size_t i = 0; i < pairs; i++) {
        node *a = (node *)om_new(node_type());
        node *b = (node *)om_new(node_type());
        a->next = OM_OBJ(b);   /* takes b's reference */
        om_incref(OM_OBJ(a));
        b->next = OM_OBJ(a);
        if (i == 0)
            *weak = om_weakref_new(OM_OBJ(a), weak_callback);
        om_decref(OM_OBJ(a));
    }
    om_object *kept = om_list_new(0);
    for (int i = 0; i < 100; i++) {
        om_object *n = om_new(node_type());
        om_list_append(kept, n);
        om_decref(n);
    }
    return kept;
}

static void test_delete_frees_everything(void)
{
    enum { PAIRS = 5000 };
    om_detach();
    tu_arena_counter counter;
    tu_arena_counter_install(&counter);

    om_runtime *rt = om_runtime_new(NULL);
    CHECK(rt != NULL && om_attach(rt) == 0);
    om_gc_disable();   /* all the garbage waits for the delete */
    atomic_store(&finalized, 0);
    atomic_store(&callbacks_run, 0);
    om_object *weak = NULL;
    om_object *kept = make_garbage(PAIRS, &weak);
    CHECK(kept != NULL && weak != NULL);
    CHECK(atomic_load(&finalized) == 0);
    CHECK(atomic_load(&counter.allocs) > 0);
    (void)kept;   /* still referenced: freed with the heap, not finalized */
    CHECK(om_runtime_delete(rt) == 0);
    CHECK(om_runtime_current() == NULL);
    CHECK(atomic_load(&finalized) == 2 * PAIRS);
    /* the weak reference is still referenced (not garbage): its callback ran */
    CHECK(atomic_load(&callbacks_run) == 1);
    om_set_arena_allocator(NULL);
    CHECK_EQ_SIZE(atomic_load(&counter.frees), atomic_load(&counter.allocs));
}

/* Deleting a runtime from a thread attached to another one: the caller's
 * binding (and its GIL) come back. */
static void test_delete_from_elsewhere(void)
{
    om_runtime *other = om_runtime_new(NULL);
    om_runtime *victim = om_runtime_new(NULL);
    CHECK(other != NULL && victim != NULL);
    CHECK(om_attach(victim) == 0);
    om_gc_disable();
    atomic_store(&finalized, 0);
    om_object *weak = NULL;
    make_garbage(10, &weak);
    om_detach();
    CHECK(om_attach(other) == 0);
    om_object *mine = om_list_new(0);
    CHECK(om_runtime_delete(victim) == 0);
    CHECK(atomic_load(&finalized) == 20);
    CHECK(om_runtime_current() == other && om_gil_held());
    CHECK(small_block_heap(omi_gc_head_of(mine)) == om_runtime_heap(other));
    om_decref(mine);
    CHECK(om_runtime_delete(other) == 0);
}

typedef struct attached_arg {
    om_runtime *rt;
    atomic_int state;             /* 1: attached; 2: told to detach */
} attached_arg;

static void *attach_and_wait(void *varg)
{
    attached_arg *a = varg;
    om_attach(a->rt);
    atomic_store(&a->state, 1);
    while (atomic_load(&a->state) != 2) {
        OM_BEGIN_ALLOW_THREADS
        nanosleep(&(struct timespec){0, 100000}, NULL);
        OM_END_ALLOW_THREADS
    }
    om_detach();
    return NULL;
}

/* No deletion while another thread is attached to the runtime. */
static void test_delete_refused_while_attached(void)
{
    om_detach();
    attached_arg a = {om_runtime_new(NULL), 0};
    CHECK(a.rt != NULL);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, attach_and_wait, &a) == 0);
    while (atomic_load(&a.state) != 1)
        nanosleep(&(struct timespec){0, 100000}, NULL);
    CHECK(om_runtime_delete(a.rt) == -1 && om_last_error() == OM_EINVAL);
    atomic_store(&a.state, 2);
    pthread_join(t, NULL);
    CHECK(om_runtime_delete(a.rt) == 0);
}

/* ---- Interning: one table per runtime ---------------------------------- */

enum { INTERN_TEXTS = 2000, INTERN_ROUNDS = 5 };

typedef struct intern_arg {
    om_runtime *rt;
    om_object *canonical[INTERN_TEXTS];   /* the runtime's interned strs */
    size_t wrong;                         /* a later intern gave another object */
} intern_arg;

static void intern_text(char *buf, size_t cap, size_t i)
{
    snprintf(buf, cap, "name-%zu", i);
}

/* Interns INTERN_TEXTS texts, then again (through a fresh str too), each
 * time expecting the first object. */
static void *intern_thread(void *varg)
{
    intern_arg *a = varg;
    om_attach(a->rt);
    char text[32];
    for (int round = 0; round < INTERN_ROUNDS; round++) {
        for (size_t i = 0; i < INTERN_TEXTS; i++) {
            intern_text(text, sizeof text, i);
            om_object *s = om_str_intern_cstr(text);
            if (round == 0)
                a->canonical[i] = s;
            a->wrong += s != a->canonical[i];
            om_decref(s);
            om_object *fresh = om_str_from_cstr(text);
            om_object *same = om_str_intern(fresh);
            a->wrong += same != a->canonical[i];
            om_decref(same);
            om_decref(fresh);
        }
    }
    om_detach();
    return NULL;
}

/* Two runtimes intern the same texts at once on two threads (TSan-clean:
 * no shared table); each gets its own strs, in its own heap; deleting one
 * runtime leaves the other's interned strs valid and canonical. */
static void test_intern_per_runtime(void)
{
    om_detach();
    intern_arg *args = calloc(2, sizeof *args);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        args[i].rt = om_runtime_new(NULL);
        CHECK(args[i].rt != NULL);
        CHECK(pthread_create(&t[i], NULL, intern_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    size_t foreign = 0, shared = 0;
    for (int i = 0; i < 2; i++) {
        CHECK_EQ_SIZE(args[i].wrong, 0);
        for (size_t k = 0; k < INTERN_TEXTS; k++)
            foreign += small_block_heap(args[i].canonical[k]) != om_runtime_heap(args[i].rt);
    }
    for (size_t k = 0; k < INTERN_TEXTS; k++)
        shared += args[0].canonical[k] == args[1].canonical[k];
    CHECK_EQ_SIZE(foreign, 0);
    CHECK_EQ_SIZE(shared, 0);

    CHECK(om_runtime_delete(args[0].rt) == 0);
    CHECK(om_attach(args[1].rt) == 0);
    char text[32];
    size_t bad = 0;
    for (size_t k = 0; k < INTERN_TEXTS; k++) {
        intern_text(text, sizeof text, k);
        bad += om_str_equal_cstr(args[1].canonical[k], text) != 1;
        om_object *s = om_str_intern_cstr(text);
        bad += s != args[1].canonical[k];
        om_decref(s);
    }
    CHECK_EQ_SIZE(bad, 0);
    CHECK(om_runtime_delete(args[1].rt) == 0);
    free(args);
}

int main(void)
{
    node_type_init();
    test_default_runtime();
    test_config();
    test_new_out_of_memory();
    test_heap_new_out_of_memory();
    test_thread_exit_detaches();
    test_two_runtimes_in_parallel();
    test_delete_frees_everything();
    test_delete_from_elsewhere();
    test_delete_refused_while_attached();
    test_intern_per_runtime();
    return check_report();
}
