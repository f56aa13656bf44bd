/* objmem/gc.h — part of objmem.h; include <objmem.h>, not this file.
 *
 * 14. The cycle collector and weak references
 *
 * Reference counting frees an object the moment its count reaches zero,
 * but never two objects that point at each other. The collector finds such
 * cycles among tracked objects (objects of OM_TYPE_GC types: om_new tracks
 * them at birth, tuples only once they may be on a cycle) and frees them,
 * as Python's gc module does:
 *
 *   - Three generations, 0 (young) to 2 (old), plus a permanent one that
 *     om_gc_freeze fills and no collection looks at. A new object starts in
 *     generation 0; an object that survives a collection of generation g
 *     moves to g + 1 (generation 2 keeps its survivors).
 *   - Automatic collection (while enabled): when tracked allocations minus
 *     deallocations pass the effective threshold 0, generation 0 is
 *     collected. The effective threshold 0 is threshold 0 (default 700)
 *     until automatic collections find no garbage: each such collection
 *     doubles it, up to the number of tracked objects (pacing); one that
 *     finds garbage sets it back. Every threshold-1 (10) collections of
 *     generation 0 (a collection of k × threshold 0 objects counting as
 *     k; its survivors go straight to generation 2), a
 *     collection of generation 1; every threshold-2 (10) collections of
 *     generation 1, a generation-2 collection — but only when the objects
 *     that came into generation 2 since they were last examined and are
 *     still alive exceed 25 % of the ones that were there before (CPython's
 *     rule, except that objects that died by refcount no longer count), and
 *     then of the young generations and those new old objects only (every
 *     fourth time of the whole heap); the whole heap also after 16 ×
 *     generation 2's size tracked allocations, at om_gc_collect(2), or when
 *     an allocation fails.
 *   - Finalizers as in PEP 442: an unreachable object's finalize hook runs
 *     exactly once (om_gc_is_finalized tells), also in a cycle; an object a
 *     finalizer resurrects survives with everything it reaches; the rest
 *     are broken with their clear hooks and freed. A cycle that holds an
 *     object of an OM_TYPE_LEGACY_FINALIZER type is not freed: it goes to
 *     om_gc_garbage() ("uncollectable").
 *   - Weak references: om_weakref_new(obj, callback) refers to obj without
 *     keeping it alive; when obj dies its weak references are cleared
 *     first (om_weakref_get returns om_none), then their callbacks run —
 *     during a collection only for weak references that are not garbage
 *     themselves.
 *   - Incremental mode (OM_OPTION_GC_INCREMENTAL_BUDGET_US > 0): automatic
 *     full collections are replaced by steps over the old generation, each
 *     kept near the time budget, so that pauses stay short on big heaps.
 *
 * A collection never allocates memory (out of memory cannot stop it) and
 * never starts from inside another one: a collection requested from a
 * finalizer, a weak-reference callback or a gc callback returns 0 at once.
 * When an object allocation fails, objmem runs one full collection and, if
 * it found garbage, retries the allocation once.
 *
 * Threads and runtimes: each runtime (objmem/runtime.h) has a collector of
 * its own; every call below acts on the calling thread's runtime (its
 * generations, thresholds, callbacks, debug flags and garbage list) and,
 * like every MEM and OBJ call, needs that runtime's GIL.
 */
#ifndef OBJMEM_GC_H
#define OBJMEM_GC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Number of collected generations (0, 1, 2); the permanent one is apart. */
#define OM_GC_GENERATIONS 3

/* ---- Collecting ---------------------------------------------------------- */

/** Collect generation `generation` and the younger ones (0, 1, or 2 / -1
 *  for a full collection, always stop-the-world, also in incremental
 *  mode). Returns the number of unreachable objects found (collectable and
 *  uncollectable, resurrected ones included), 0 when called from inside a
 *  collection, or -1 with OM_EINVAL for another generation. Runs even when
 *  automatic collection is disabled. */
OM_API long om_gc_collect(int generation);

/** Turn automatic collection on (the default) or off; om_gc_collect works
 *  either way. */
OM_API void om_gc_enable(void);
OM_API void om_gc_disable(void);
/** true while automatic collection is on. */
OM_API bool om_gc_is_enabled(void);

/** Set the three thresholds (see the top of this part). threshold0 = 0
 *  turns automatic collection off as well. 0, or -1 with OM_EINVAL for a
 *  negative value. */
OM_API int om_gc_set_threshold(long threshold0, long threshold1, long threshold2);
/** The three thresholds; any pointer may be NULL. */
OM_API void om_gc_get_threshold(long *threshold0, long *threshold1, long *threshold2);
/** The thresholds automatic collection uses now: threshold 1 and 2 as set,
 *  and the effective threshold 0, which is threshold 0 or, after automatic
 *  collections that found no garbage, up to the number of tracked objects
 *  (see "Pacing" above; in incremental mode also up to a quarter of a
 *  step's object limit). It returns to threshold 0 as soon as a collection finds garbage
 *  and when om_gc_set_threshold is called. Any pointer may be NULL. */
OM_API void om_gc_get_effective_threshold(long *threshold0, long *threshold1,
                                          long *threshold2);

/** The three counts the thresholds are compared with: tracked allocations
 *  minus deallocations since the last collection of generation 0;
 *  collections of generation 0 since the last of generation 1; collections
 *  of generation 1 since the last full one. Any pointer may be NULL. */
OM_API void om_gc_get_count(long *count0, long *count1, long *count2);

/** What the collector did to one generation since the process started. */
typedef struct om_gc_stats {
    size_t collections;     /**< collections of this generation (and younger) */
    size_t collected;       /**< unreachable objects found and freed or resurrected */
    size_t uncollectable;   /**< unreachable objects kept (legacy finalizers) */
} om_gc_stats;

/** Fill out[0 … 2] with the statistics of generations 0 to 2. 0, or -1
 *  with OM_EINVAL for NULL. */
OM_API int om_gc_get_stats(om_gc_stats out[OM_GC_GENERATIONS]);

/* ---- Callbacks ---------------------------------------------------------- */

/** When a gc callback is called: before a collection, and after it. */
typedef enum om_gc_phase {
    OM_GC_PHASE_START = 0,  /**< a collection is about to start */
    OM_GC_PHASE_STOP = 1,   /**< it has finished; the info counts are final */
} om_gc_phase;

/** What a gc callback learns (CPython's info dict). */
typedef struct om_gc_info {
    int generation;         /**< oldest generation collected (2 for incremental steps) */
    size_t collected;       /**< unreachable objects found (0 at START) */
    size_t uncollectable;   /**< of these, kept in om_gc_garbage (0 at START) */
} om_gc_info;

/** A gc callback: called at the start and at the stop of every collection,
 *  automatic or not, with the `user` pointer it was added with. It may
 *  create or drop objects; a collection it asks for returns 0. */
typedef void (*om_gc_callback_fn)(om_gc_phase phase, const om_gc_info *info, void *user);

/** Add callback (fn, user) to the end of the list (the same pair may be
 *  added twice and is then called twice). 0, or -1 with OM_EINVAL (NULL
 *  fn) or OM_ENOMEM. Callbacks added from inside a callback are called
 *  from the next collection on. */
OM_API int om_gc_callback_add(om_gc_callback_fn fn, void *user);
/** Remove the first entry (fn, user). 0, or -1 with OM_EINVAL when there is
 *  none. A callback removed during a collection is not called again. */
OM_API int om_gc_callback_remove(om_gc_callback_fn fn, void *user);

/* ---- Debugging ---------------------------------------------------------- */

/** Debug flags (CPython's gc.DEBUG_*), printed to stderr with "gc: ". */
enum {
    /** Each collection: "gc: collecting generation N...", the generation
     *  sizes, and "gc: done, N unreachable, N uncollectable, Ts elapsed". */
    OM_GC_DEBUG_STATS = 1 << 0,
    /** "gc: collectable <type 0xADDR>" for each collectable object found. */
    OM_GC_DEBUG_COLLECTABLE = 1 << 1,
    /** "gc: uncollectable <type 0xADDR>" for each uncollectable object. */
    OM_GC_DEBUG_UNCOLLECTABLE = 1 << 2,
    /** Keep every unreachable object in om_gc_garbage() instead of freeing it. */
    OM_GC_DEBUG_SAVEALL = 1 << 5,
    /** Leak hunting: COLLECTABLE | UNCOLLECTABLE | SAVEALL. */
    OM_GC_DEBUG_LEAK = OM_GC_DEBUG_COLLECTABLE | OM_GC_DEBUG_UNCOLLECTABLE | OM_GC_DEBUG_SAVEALL,
};

/** Set the debug flags (an OR of OM_GC_DEBUG_*; 0 = none). 0, or -1 with
 *  OM_EINVAL for unknown bits. */
OM_API int om_gc_set_debug(int flags);
/** The current debug flags. */
OM_API int om_gc_get_debug(void);

/** The list of uncollectable objects (borrowed; created on first use, NULL
 *  with OM_ENOMEM if that fails): cycles with legacy finalizers, and with
 *  OM_GC_DEBUG_SAVEALL every unreachable object. The user may empty it
 *  (om_list_clear); its objects are then freed by refcount if nothing else
 *  holds them, or found again by the next collection. When the list cannot
 *  grow during a collection, the objects stay in generation 2 instead. */
OM_API om_object *om_gc_garbage(void);

/* ---- Generations and introspection --------------------------------------- */

/** Move every tracked object into the permanent generation, which no
 *  collection examines (CPython's gc.freeze, for fork-heavy servers: their
 *  pages are never written by the collector). O(tracked objects). */
OM_API void om_gc_freeze(void);
/** Move the permanent generation back into generation 2. */
OM_API void om_gc_unfreeze(void);
/** Number of objects in the permanent generation. */
OM_API size_t om_gc_get_freeze_count(void);

/** A new list (new reference) of the tracked objects of `generation` (0 …
 *  2), or of all three for -1 (never the permanent generation, never the
 *  list itself). NULL with OM_EINVAL for another generation, or OM_ENOMEM. */
OM_API om_object *om_gc_get_objects(int generation) OM_NODISCARD;

/** A new list of the tracked objects (outside the permanent generation)
 *  whose traverse visits `obj`, each once, in generation order; NULL with
 *  OM_EINVAL (NULL obj) or OM_ENOMEM. Cost: one traverse of every tracked
 *  object. */
OM_API om_object *om_gc_get_referrers(om_object *obj) OM_NODISCARD;

/** A new list of the objects obj's traverse visits, in that order
 *  (duplicates kept); empty for objects of types without traverse. NULL
 *  with OM_EINVAL (NULL obj) or OM_ENOMEM. */
OM_API om_object *om_gc_get_referents(om_object *obj) OM_NODISCARD;

/** Start or stop watching an object of an OM_TYPE_GC type (idempotent;
 *  tracking needs traverse to be safe on the object). 0, or -1 with
 *  OM_EINVAL (NULL) or OM_ETYPE (not a GC type). An untracked object is
 *  never collected: only untrack objects that cannot be on a cycle. */
OM_API int om_gc_track(om_object *obj);
OM_API int om_gc_untrack(om_object *obj);

/** true when obj is tracked by the collector (false for NULL). */
OM_API bool om_gc_is_tracked(const om_object *obj);

/** true when obj's finalize hook has run (PEP 442; GC types only). */
OM_API bool om_gc_is_finalized(const om_object *obj);

/* ---- Incremental mode ------------------------------------------------------ */

/** One incremental step over generation 2, as automatic collection runs it
 *  when OM_OPTION_GC_INCREMENTAL_BUDGET_US > 0 (with the budget 0 the
 *  step uses a budget of 1 ms): starts a sweep if none is running.
 *  Returns the unreachable objects found, 0 from inside a collection. */
OM_API long om_gc_collect_step(void);

/** Counters of incremental mode since the process started. */
typedef struct om_gc_incremental_stats {
    size_t steps;              /**< incremental steps run */
    size_t sweeps;             /**< sweeps completed (every old object examined) */
    size_t fallbacks;          /**< full collections run because a step had to be cut short */
    size_t last_step_objects;  /**< objects examined by the last step */
    size_t max_step_objects;   /**< most objects examined by one step */
    size_t step_object_limit;  /**< objects a step examines at most now (from the budget) */
    double max_step_seconds;   /**< longest step, wall time */
    bool sweep_running;        /**< a sweep has started and not finished */
} om_gc_incremental_stats;

/** Fill *out. 0, or -1 with OM_EINVAL for NULL. */
OM_API int om_gc_get_incremental_stats(om_gc_incremental_stats *out);

/* ---- Pauses ------------------------------------------------------------------ */

/** One collection or incremental step as it ended, for timelines (the
 *  HTML report draws them). */
typedef struct om_gc_pause {
    double start_seconds;      /**< when it started, seconds since the runtime was made
                                    (the default runtime: since the library was loaded) */
    double duration_seconds;   /**< how long it ran, wall time (finalizers and weak-reference
                                    callbacks included, gc callbacks not) */
    int generation;            /**< oldest generation collected (2 for a step) */
    bool step;                 /**< an incremental step, not a stop-the-world collection */
    size_t examined;           /**< tracked objects it examined */
    size_t collected;          /**< unreachable objects it found, collectable ones */
    size_t uncollectable;      /**< unreachable objects it kept (om_gc_garbage) */
} om_gc_pause;

/** Most pauses the collector remembers: the last this many collections. */
#define OM_GC_PAUSE_LOG 256

/** Copy the current runtime's most recent pauses, at most `max` of them
 *  (and at most OM_GC_PAUSE_LOG), oldest first, into out. Returns how many
 *  were copied, or -1 with OM_EINVAL for a NULL out with max > 0. Cost:
 *  O(copied); recording them costs a clock read per collection. */
OM_API long om_gc_get_pauses(om_gc_pause *out, size_t max);

/** Collections and steps the current runtime has run (and logged) since it
 *  was made; only the last OM_GC_PAUSE_LOG are kept. */
OM_API uint64_t om_gc_pause_count(void);

/* ---- Weak references ------------------------------------------------------- */

/** Called when the referent of weak reference `ref` has died; ref is
 *  already cleared (om_weakref_get(ref) is om_none) and stays alive for the
 *  call. The callback may create and drop objects. */
typedef void (*om_weakref_callback)(om_object *ref);

/** The type of weak references (a GC type: a weak reference held only by
 *  garbage is garbage too). */
OM_API extern const om_type om_weakref_type;

/** A new weak reference to obj (new reference), with an optional callback
 *  (NULL = none). NULL with OM_EINVAL (NULL obj), OM_ETYPE (obj's type
 *  lacks OM_TYPE_WEAKREFABLE) or OM_ENOMEM. */
OM_API om_object *om_weakref_new(om_object *obj, om_weakref_callback callback) OM_NODISCARD;

/** The referent of weak reference ref (borrowed: take a reference before
 *  anything can drop it), or om_none once it has died. NULL with
 *  OM_EINVAL / OM_ETYPE when ref is NULL or not a weak reference. */
OM_API om_object *om_weakref_get(om_object *ref);

/** Number of live weak references to obj (0 for NULL or other objects). */
OM_API size_t om_weakref_count(const om_object *obj);

#ifdef __cplusplus
}
#endif

#endif /* OBJMEM_GC_H */
