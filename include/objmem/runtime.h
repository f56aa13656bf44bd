/*
 * objmem/runtime.h — runtimes, threads and the global lock (section 15 of
 * objmem.h, which includes this part).
 *
 * A runtime (CPython's interpreter state) owns a heap, a cycle collector
 * and a global lock, the GIL. A thread attaches to one runtime at a time
 * (CPython's thread state) and must hold that runtime's GIL for every MEM,
 * OBJ, object and collector call; the RAW domain needs no runtime. Two
 * runtimes share nothing, so threads attached to different runtimes run
 * in parallel (as CPython 3.12's per-interpreter GIL). An object belongs to
 * the runtime whose heap holds it: never hand it to another runtime.
 *
 * A single-threaded program needs no set-up: the first MEM, OBJ, object or
 * collector call of a thread that is not attached attaches it to the
 * default runtime (which exists from the start and is never deleted) and
 * takes its GIL. A thread that ends while attached is detached.
 *
 * The GIL switches fairly: a thread that has waited one switch interval
 * (5 ms by default) asks the holder to drop it; the holder drops it at its
 * next check point (om_yield_point(), the start of an automatic or explicit
 * collection) and queues behind the waiters that were first, so a
 * CPU-bound thread cannot starve the others. Waiters are served in the order
 * they arrived. Blocking work (I/O, sleeping, waiting for another thread)
 * goes between OM_BEGIN_ALLOW_THREADS and OM_END_ALLOW_THREADS, or
 * om_save_thread() / om_restore_thread(): a thread that blocks while
 * holding the GIL blocks every other thread of its runtime.
 *
 * With the debug hooks on (om_setup_debug_hooks, OBJMEM_MALLOC=debug) the
 * rules are checked, each violation one fatal report naming the call:
 * MEM/OBJ calls and om_new/om_new_var without the GIL; a release (count
 * to zero) without the GIL or of another runtime's object; a store into a
 * list, dict or tuple (om_list_append/insert/set/extend, om_dict_set,
 * om_tuple_set/pack/from_array) of an object or into a container of
 * another runtime; a MEM/OBJ block freed by another runtime. om_incref and
 * om_decref check only in code compiled with OM_DEBUG > 0
 * (om_debug_check_refchange in objmem/object.h). docs/api.md, "Runtimes
 * and threads", lists the exact coverage and what runtimes still share.
 */
#ifndef OBJMEM_RUNTIME_H
#define OBJMEM_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* 15. Runtimes, threads and the global lock                                */
/* ------------------------------------------------------------------------ */

/** A runtime: a heap, a cycle collector and a GIL (opaque). */
typedef struct om_runtime om_runtime;
/** A thread's attachment to a runtime (opaque), from om_save_thread. */
typedef struct om_thread om_thread;

/** Settings of a new runtime. Start from om_config_init; the environment
 *  overrides them (OBJMEM_SWITCH_INTERVAL in seconds, e.g. 0.005, and
 *  OBJMEM_GC_THRESHOLD as "t0,t1,t2"), as it does for the default runtime. */
typedef struct om_config {
    double switch_interval;   /**< seconds a waiter waits before asking the holder to drop (> 0) */
    long gc_threshold[3];     /**< as om_gc_set_threshold (700, 10, 10 by default) */
    bool gc_enabled;          /**< automatic collection (true by default) */
} om_config;

/** Fills *cfg with the defaults (switch interval 0.005 s, thresholds 700,
 *  10, 10, collection enabled). */
OM_API void om_config_init(om_config *cfg);

/** A new runtime with its own heap, collector and GIL (cfg NULL: the
 *  defaults). No thread is attached to it. NULL with OM_ENOMEM when out
 *  of memory, OM_EINVAL for a switch interval ≤ 0 or a negative threshold. */
OM_API om_runtime *om_runtime_new(const om_config *cfg) OM_NODISCARD;

/** Deletes rt and everything it owns: runs full collections until they
 *  find nothing (finalizers and weak-reference callbacks run), then gives
 *  the whole heap back at once, objects still referenced included (their
 *  finalizers do not run). No thread but the caller may be attached to rt;
 *  a caller attached to rt is detached. 0, or -1 with OM_EINVAL (the
 *  default runtime, or other threads attached). NULL does nothing (0). */
OM_API int om_runtime_delete(om_runtime *rt);

/** The default runtime (the one the first call attaches to). */
OM_API om_runtime *om_runtime_default(void);

/** The calling thread's runtime, or NULL if it is not attached. */
OM_API om_runtime *om_runtime_current(void);

/** The heap of rt (for om_heap_get_stats and om_heap_check_heap). */
OM_API om_heap *om_runtime_heap(om_runtime *rt);

/** Attaches the calling thread to rt and takes rt's GIL (waiting for it).
 *  0, or -1 with OM_EINVAL when rt is NULL or the thread is already
 *  attached (detach first), OM_ENOMEM when out of memory. */
OM_API int om_attach(om_runtime *rt);

/** Releases the GIL and detaches the calling thread (nothing if it is not
 *  attached). Its objects stay in the runtime. */
OM_API void om_detach(void);

/** Releases the GIL before blocking work; the thread stays attached but
 *  may make no MEM, OBJ or object call until om_restore_thread. Returns
 *  the token to pass to it, or NULL (which om_restore_thread accepts)
 *  without releasing anything if the thread is not attached or is inside
 *  a destroy or finalize hook called by a release (objects waiting to be
 *  released must not be seen by another thread's collection: do not wait
 *  there for another thread of the runtime). */
OM_API om_thread *om_save_thread(void);

/** Takes the GIL back (waiting for it) after om_save_thread. */
OM_API void om_restore_thread(om_thread *ts);

/** Around blocking work, as Py_BEGIN_ALLOW_THREADS / Py_END_ALLOW_THREADS
 *  (one block: the two macros open and close a brace). */
#define OM_BEGIN_ALLOW_THREADS { om_thread *om_saved_thread_ = om_save_thread();
#define OM_END_ALLOW_THREADS om_restore_thread(om_saved_thread_); }

/** A check point for long loops: if another thread has asked for the GIL,
 *  hand it over and queue for it again. Costs one atomic load otherwise.
 *  Nothing if the thread is not attached, or inside a hook called by a
 *  release (see om_save_thread). */
OM_API void om_yield_point(void);

/** The switch interval of the calling thread's runtime, in seconds:
 *  how long a waiter waits before asking the holder to drop the GIL.
 *  -1 with OM_EINVAL for a value that is not > 0 (nothing changed). */
OM_API int om_set_switch_interval(double seconds);
OM_API double om_get_switch_interval(void);

/** true if the calling thread holds its runtime's GIL. */
OM_API bool om_gil_held(void);

/** The GIL's counts for one runtime. */
typedef struct om_gil_stats {
    uint64_t acquisitions;    /**< times a thread took the GIL */
    uint64_t switches;        /**< acquisitions by another thread than the last holder */
    uint64_t drop_requests;   /**< times a waiter asked the holder to drop it */
    double held_seconds;      /**< total time the GIL was held, by all threads */
} om_gil_stats;

/** rt's GIL statistics (rt NULL: the calling thread's runtime). 0, or -1
 *  with OM_EINVAL (out NULL, or no runtime). */
OM_API int om_runtime_get_gil_stats(om_runtime *rt, om_gil_stats *out);

/** The calling thread's counts since it attached. */
typedef struct om_thread_stats {
    uint64_t acquisitions;    /**< times it took the GIL */
    uint64_t requested_drops; /**< times it dropped the GIL because a waiter asked */
    double held_seconds;      /**< time it held the GIL, the current hold included */
    double waited_seconds;    /**< time it waited for the GIL */
} om_thread_stats;

/** The calling thread's statistics. 0, or -1 with OM_EINVAL (out NULL, or
 *  the thread not attached). */
OM_API int om_thread_get_stats(om_thread_stats *out);

#ifdef __cplusplus
}
#endif

#endif
