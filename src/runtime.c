/*
 * runtime.c — runtimes, and the binding of threads to them.
 *
 * A runtime owns a heap, a collector state, a weak-reference table, a str
 * intern table, the debug hooks' lists of its blocks and dead objects, and
 * a GIL (gil.c). The default runtime is static: its heap is omi_default_heap,
 * its collector gc.c's omi_gc_default, its table weakref.c's
 * omi_weakref_default, so a program that never creates a runtime works
 * without set-up; only its GIL is initialised on first use (pthread_once).
 *
 * Binding. A thread is attached to at most one runtime at a time. Its
 * om_thread (the state of that attachment) is thread-local storage, so
 * attaching needs no allocation and cannot fail for lack of memory. The
 * thread-local omi_thread (internal.h) copies the runtime's members, so the
 * allocation fast paths reach the heap with one thread-local load. While
 * the thread is not attached its heap is NULL, and the first allocation or
 * public call that needs a runtime attaches the thread to the default
 * runtime (omi_runtime_attach_default); its collector and weak-reference
 * table are then the default runtime's, so that tracking and release need
 * no test on their hot paths. A thread that ends attached is detached by
 * a pthread key destructor, so it does not leave its GIL held.
 *
 *   thread states:   detached ──om_attach / first call──▶ attached, holding
 *                    attached, holding ──om_save_thread──▶ attached, released
 *                    attached, released ──om_restore_thread──▶ attached, holding
 *                    attached (either) ──om_detach / thread exit──▶ detached
 *
 * Invariants: rt->attached = threads attached to rt (atomic);
 * omi_thread.runtime ≠ NULL ⇔ the thread is attached, and then every other
 * member of omi_thread is rt's.
 *
 * Deletion runs on the caller's thread: bound to the runtime for the time
 * of it (the caller's own binding, elsewhere, is put back after), it runs
 * full collections until one finds nothing (finalizers and callbacks run
 * there, with the runtime current), then frees the collector's and the
 * weak-reference table's RAW memory and deletes the heap, which gives back
 * every block at once, those of objects still referenced included.
 *
 * Learned from: CPython's Python/pystate.c (interpreter and thread states,
 * PyEval_SaveThread / PyEval_RestoreThread, PyGILState_Ensure's implicit
 * thread state for threads the runtime did not create); written afresh.
 */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define RUNTIME_DEFAULT_SWITCH_INTERVAL 0.005   /* seconds, as CPython's */
#define RUNTIME_DEFAULT_THRESHOLD0 700
#define RUNTIME_DEFAULT_THRESHOLD1 10
#define RUNTIME_DEFAULT_THRESHOLD2 10
#define RUNTIME_DELETE_MAX_ROUNDS 64           /* collections at most in a delete
                                                  (a finalizer that always makes
                                                  new garbage cannot hang it) */

struct om_runtime {
    om_heap *heap;                   /* MEM, OBJ and objects of its threads */
    struct omi_gc_state *gc;         /* its collector */
    omi_weakref_table *weakrefs;     /* its weak references */
    omi_intern_table interned;       /* its interned strs (types/str.c) */
    struct omi_debug_lists *debug_lists; /* the debug hooks' MEM/OBJ lists, or NULL */
    omi_dead_objects dead;           /* the debug hooks' dead objects (object.c) */
    omi_gil gil;                     /* its lock */
    _Atomic size_t attached;         /* threads attached to it now */
    bool is_default;                 /* the static one: never deleted */
};

/* The binding of a thread that is not attached (see internal.h). */
#define BINDING_DETACHED_INIT {.gc = &omi_gc_default, .weakrefs = &omi_weakref_default}
#define BINDING_DETACHED ((omi_binding)BINDING_DETACHED_INIT)

_Thread_local omi_binding omi_thread __attribute__((tls_model("initial-exec"))) =
    BINDING_DETACHED_INIT;

/* The state of this thread's attachment (one at a time). */
static _Thread_local om_thread thread_state __attribute__((tls_model("initial-exec")));

static om_runtime default_runtime = {
    .heap = &omi_default_heap,
    .gc = &omi_gc_default,
    .weakrefs = &omi_weakref_default,
    .is_default = true,
};

static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static pthread_key_t exit_key;         /* value: the om_thread to detach at exit */

/* ---- Configuration ------------------------------------------------------- */

void om_config_init(om_config *cfg)
{
    if (cfg == NULL)
        return;
    *cfg = (om_config){
        .switch_interval = RUNTIME_DEFAULT_SWITCH_INTERVAL,
        .gc_threshold = {RUNTIME_DEFAULT_THRESHOLD0, RUNTIME_DEFAULT_THRESHOLD1,
                         RUNTIME_DEFAULT_THRESHOLD2},
        .gc_enabled = true,
    };
}

/* OBJMEM_SWITCH_INTERVAL and OBJMEM_GC_THRESHOLD over *cfg (values that do
 * not parse are ignored, as the options' are out of range). */
static void config_apply_environment(om_config *cfg)
{
    const char *interval = getenv("OBJMEM_SWITCH_INTERVAL");
    if (interval != NULL) {
        char *end;
        double seconds = strtod(interval, &end);
        if (end != interval && *end == '\0' && seconds > 0)
            cfg->switch_interval = seconds;
    }
    const char *threshold = getenv("OBJMEM_GC_THRESHOLD");
    long t[3];
    int n = threshold != NULL ? sscanf(threshold, "%ld,%ld,%ld", &t[0], &t[1], &t[2]) : 0;
    for (int i = 0; i < n; i++)
        if (t[i] >= 0)
            cfg->gc_threshold[i] = t[i];
}

static bool config_is_valid(const om_config *cfg)
{
    if (!(cfg->switch_interval > 0)) {
        omi_set_error(OM_EINVAL, "om_runtime_new: switch interval %g s is not > 0",
                      cfg->switch_interval);
        return false;
    }
    for (int i = 0; i < 3; i++) {
        if (cfg->gc_threshold[i] < 0) {
            omi_set_error(OM_EINVAL, "om_runtime_new: gc threshold %d is negative", i);
            return false;
        }
    }
    return true;
}

/* ---- Binding ---------------------------------------------------------------- */

static void runtime_detach_at_exit(void *value);

static void default_runtime_init(void)
{
    om_config cfg;
    om_config_init(&cfg);
    config_apply_environment(&cfg);
    if (omi_gil_init(&default_runtime.gil, cfg.switch_interval) != 0 ||
        pthread_key_create(&exit_key, runtime_detach_at_exit) != 0)
        omi_fatal("objmem: cannot initialise the default runtime's lock");
    omi_gc_state_configure(default_runtime.gc, cfg.gc_threshold, cfg.gc_enabled);
}

static void bind_thread(om_runtime *rt, om_thread *ts)
{
    omi_thread = (omi_binding){rt->heap, rt->gc, rt->weakrefs, &rt->gil, rt, ts};
}

/* Attaches the calling thread (detached) to rt and takes rt's GIL. */
static void attach(om_runtime *rt)
{
    pthread_once(&default_once, default_runtime_init);
    thread_state = (om_thread){.runtime = rt};
    atomic_fetch_add(&rt->attached, 1);
    bind_thread(rt, &thread_state);
    pthread_setspecific(exit_key, &thread_state);
    omi_gil_take(&rt->gil, &thread_state);
}

om_heap *omi_runtime_attach_default(void)
{
    attach(&default_runtime);
    return default_runtime.heap;
}

int om_attach(om_runtime *rt)
{
    if (rt == NULL || omi_thread.runtime != NULL) {
        omi_set_error(OM_EINVAL, "om_attach: %s",
                      rt == NULL ? "runtime is NULL" : "the thread is already attached");
        return -1;
    }
    attach(rt);
    return 0;
}

void om_detach(void)
{
    om_thread *ts = omi_thread.thread;
    if (ts == NULL)
        return;
    om_runtime *rt = ts->runtime;
    if (ts->holds_gil)
        omi_gil_drop(&rt->gil, ts);
    omi_thread = BINDING_DETACHED;
    pthread_setspecific(exit_key, NULL);
    atomic_fetch_sub(&rt->attached, 1);
}

static void runtime_detach_at_exit(void *value)
{
    if (value == omi_thread.thread)
        om_detach();
}

/* While this thread releases objects (om_dealloc's loop: a destroy or
 * finalize hook is running), the objects waiting on its release stack are
 * still tracked but their count words hold links: another thread's
 * collection must not see them, so the GIL stays with this thread. */
static bool may_release_gil(const om_thread *ts)
{
    return ts != NULL && ts->holds_gil && !omi_object_release_running();
}

om_thread *om_save_thread(void)
{
    om_thread *ts = omi_thread.thread;
    if (!may_release_gil(ts))
        return NULL;
    omi_gil_drop(&ts->runtime->gil, ts);
    return ts;
}

void om_restore_thread(om_thread *ts)
{
    if (ts != NULL && !ts->holds_gil)
        omi_gil_take(&ts->runtime->gil, ts);
}

void om_yield_point(void)
{
    if (may_release_gil(omi_thread.thread))
        omi_gil_check();
}

bool om_gil_held(void)
{
    return omi_thread.thread != NULL && omi_thread.thread->holds_gil;
}

int om_set_switch_interval(double seconds)
{
    if (!(seconds > 0)) {
        omi_set_error(OM_EINVAL, "om_set_switch_interval: %g s is not > 0", seconds);
        return -1;
    }
    omi_gil_set_interval(omi_bound()->gil, seconds);
    return 0;
}

double om_get_switch_interval(void)
{
    return omi_gil_interval(omi_bound()->gil);
}

om_runtime *om_runtime_default(void)
{
    pthread_once(&default_once, default_runtime_init);
    return &default_runtime;
}

om_runtime *om_runtime_current(void)
{
    return omi_thread.runtime;
}

om_heap *om_runtime_heap(om_runtime *rt)
{
    return rt != NULL ? rt->heap : NULL;
}

omi_intern_table *omi_runtime_intern_table(om_runtime *rt)
{
    return &rt->interned;
}

struct omi_debug_lists **omi_runtime_debug_lists(om_runtime *rt)
{
    return &rt->debug_lists;
}

omi_dead_objects *omi_runtime_dead_objects(om_runtime *rt)
{
    return &rt->dead;
}

/* ---- Statistics -------------------------------------------------------------- */

int om_runtime_get_gil_stats(om_runtime *rt, om_gil_stats *out)
{
    if (rt == NULL)
        rt = omi_thread.runtime;
    if (rt == NULL || out == NULL) {
        omi_set_error(OM_EINVAL, "om_runtime_get_gil_stats: %s",
                      out == NULL ? "out is NULL" : "no runtime");
        return -1;
    }
    pthread_once(&default_once, default_runtime_init);
    omi_gil_get_stats(&rt->gil, out);
    return 0;
}

int om_thread_get_stats(om_thread_stats *out)
{
    const om_thread *ts = omi_thread.thread;
    if (ts == NULL || out == NULL) {
        omi_set_error(OM_EINVAL, "om_thread_get_stats: %s",
                      out == NULL ? "out is NULL" : "the thread is not attached");
        return -1;
    }
    uint64_t held = ts->held_ns;
    if (ts->holds_gil)
        held += omi_gil_now_ns() - ts->taken_at_ns;
    *out = (om_thread_stats){ts->acquisitions, ts->requested_drops, (double)held / 1e9,
                             (double)ts->waited_ns / 1e9};
    return 0;
}

/* ---- Creation and deletion ----------------------------------------------- */

/* Frees what runtime_new got so far (every member NULL or whole). */
static void runtime_free(om_runtime *rt)
{
    om_heap_delete(rt->heap);
    if (rt->gc != NULL)
        omi_gc_state_delete(rt->gc);
    if (rt->weakrefs != NULL)
        omi_weakref_table_release(rt->weakrefs);
    om_raw_free(rt->weakrefs);
    omi_intern_table_release(&rt->interned);
    omi_debug_lists_release(rt->debug_lists);
    om_raw_free(rt);
}

om_runtime *om_runtime_new(const om_config *cfg)
{
    om_config c;
    if (cfg != NULL)
        c = *cfg;
    else
        om_config_init(&c);
    config_apply_environment(&c);
    if (!config_is_valid(&c))
        return NULL;
    pthread_once(&default_once, default_runtime_init);
    om_runtime *rt = om_raw_calloc(1, sizeof *rt);
    if (rt == NULL)
        return NULL;
    rt->weakrefs = om_raw_calloc(1, sizeof *rt->weakrefs);
    rt->gc = rt->weakrefs != NULL ? omi_gc_state_new() : NULL;
    rt->heap = rt->gc != NULL ? om_heap_new() : NULL;
    if (rt->heap == NULL) {
        runtime_free(rt);
        return NULL;
    }
    if (omi_gil_init(&rt->gil, c.switch_interval) != 0) {
        runtime_free(rt);
        omi_set_error(OM_ENOMEM, "om_runtime_new: cannot create the lock");
        return NULL;
    }
    omi_gc_state_configure(rt->gc, c.gc_threshold, c.gc_enabled);
    atomic_init(&rt->attached, 0);
    return rt;
}

/* Full collections until one finds nothing (bounded), on a thread bound
 * to the runtime and holding its GIL. */
static void runtime_collect_all(void)
{
    for (int round = 0; round < RUNTIME_DELETE_MAX_ROUNDS; round++)
        if (om_gc_collect(2) <= 0)
            return;
}

int om_runtime_delete(om_runtime *rt)
{
    if (rt == NULL)
        return 0;
    bool own = omi_thread.runtime == rt;
    size_t others = atomic_load(&rt->attached) - (own ? 1 : 0);
    if (rt->is_default || others != 0) {
        omi_set_error(OM_EINVAL, "om_runtime_delete: %s",
                      rt->is_default ? "the default runtime cannot be deleted"
                                     : "other threads are still attached to it");
        return -1;
    }
    /* Bound to rt for the collections; the caller's own binding (to
     * another runtime, whose GIL it keeps) comes back afterwards. */
    omi_binding saved = omi_thread;
    om_thread visitor = {.runtime = rt};
    om_thread *ts = own ? omi_thread.thread : &visitor;
    if (!own) {
        bind_thread(rt, ts);
        omi_gil_take(&rt->gil, ts);
    } else if (!ts->holds_gil) {
        omi_gil_take(&rt->gil, ts);
    }
    runtime_collect_all();
    if (own) {
        om_detach();
    } else {
        omi_gil_drop(&rt->gil, ts);
        omi_thread = saved;
    }
    omi_gil_destroy(&rt->gil);
    runtime_free(rt);
    return 0;
}
