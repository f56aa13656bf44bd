/*
 * gc.c — the cycle collector: generations, automatic collection, PEP 442
 * finalizers, incremental steps over the old generation, and the gc API.
 *
 * Data structures. Every tracked object's omi_gc_head (internal.h) links it
 * into one circular doubly linked list with a sentinel; the list is its
 * "space", which the head also records in three bits of prev (so that an
 * object dying by refcount tells which count to decrement in O(1)):
 *
 *   space        list          meaning
 *   GEN0         lists[0]      young: tracked since the last collection
 *   GEN1         lists[1]      survived one collection of generation 0
 *   OLD_A/OLD_B  lists[2], [3] generation 2, in two halves: the "scanned"
 *                               one (gc.old_scanned) and the "unscanned"
 *                               one, which is empty unless an incremental
 *                               sweep is running
 *   PERMANENT    lists[4]      frozen (om_gc_freeze): never examined
 *   COLLECTING   a local list  examined by the running collection
 *   UNREACHABLE  a local list  found unreachable by it
 *
 * Invariants (outside the phases of a collection that run no user code):
 *   live[s] = number of objects in space s, for every s;
 *   pending_live = #{tracked o : o.next has OMI_GC_PENDING}
 *                = objects promoted into generation 2 and alive that no
 *                  full collection or step has examined since;
 *   every list is doubly linked with real addresses in prev; only between
 *   update_refs and the end of move_unreachable do the heads of the
 *   working list hold their working count in prev instead;
 *   untracked ⇔ next == 0, and then prev holds only OMI_GC_FINALIZED;
 *   no collection starts while one runs or while an om_dealloc loop runs.
 *
 * The algorithm is CPython's (Modules/gcmodule.c): copy each examined
 * object's count into its head (update_refs), subtract the references the
 * examined objects hold to each other (subtract_refs, through traverse),
 * then everything with a count left is referenced from outside and is
 * reachable, with all it reaches (move_unreachable, which uses the working
 * list itself as its queue, so no memory is needed); the rest is
 * unreachable. Why it is sound for ANY examined set S (a generation, or an
 * incremental slice): an object x ∈ S left unreachable has all of its
 * references from inside S (its count went to 0), and every referrer y of x
 * is unreachable too (were y reachable, move_unreachable would have reached
 * x through it); so the unreachable set U has no reference from outside U:
 * nothing else can reach it. Garbage is only missed when part of it lies
 * outside S; generations and sweeps bound how long that lasts.
 *
 * After U is known: objects of OM_TYPE_LEGACY_FINALIZER types and all they
 * reach in U are set aside (uncollectable, to om_gc_garbage); weak
 * references to U are cleared and the callbacks of those outside U run;
 * each finalize hook not yet run runs once (OMI_GC_FINALIZED); if any user
 * code ran, the working counts are computed again over U and whatever is
 * referenced from outside now (resurrected) goes back to the generation
 * with all it reaches; the rest is broken with clear hooks, which frees it
 * by refcount. Unlike CPython 3.11, the second pass is skipped when no
 * finalizer or weak-reference callback ran (plain cycles cost three passes,
 * not six). The collector allocates nothing (lists are intrusive, sentinels
 * live on the C stack); only appending to om_gc_garbage may fail, and then
 * the object simply stays in generation 2.
 *
 * Scheduling. count[0] = tracked allocations − deallocations; past
 * threshold[0], generation 0 is collected; count[1] (generation-0
 * collections) past threshold[1] collects generation 1; count[2] past
 * threshold[2] asks for a full collection, which runs only when the pending
 * objects (pending_live) are at least a quarter of the other old objects.
 * CPython's long_lived_pending only grows until the next full collection,
 * so a program whose objects get promoted and then die by refcount (binary
 * trees) pays for full collections that find nothing; pending_live drops
 * when such an object dies, so that rule now asks "is there new old data?".
 * When it fires, the collection examines the young generations and the
 * pending objects only (the tail of the old list: see gather_pending_tail),
 * which is what can answer that question, except every GC_WHOLE_EVERY-th
 * time, which examines the whole heap: old objects that turned into
 * garbage are only found so (pending-only alone let a churned heap grow to
 * 4.2× its live objects in gc_bench (d); every 4th whole: 1.6×). The whole
 * heap is also examined by om_gc_collect(2), by collect-and-retry, and once
 * the program has made FULL_ALLOC_FACTOR × generation 2's size tracked
 * allocations since the last whole collection. Big binary trees alive
 * while they are built are pending when the rule looks; they are all a
 * pending-only collection examines.
 *
 * Pacing of the young collections. The hot path compares count[0] with
 * young_threshold, the effective threshold 0, not threshold[0]. An
 * automatic collection that finds no garbage doubles it (YOUNG_GROWTH), up
 * to the number of tracked objects (and in incremental mode up to a
 * quarter of a step's object limit); any collection or step that finds garbage, and
 * om_gc_set_threshold, set it back to threshold[0]. So a program that
 * builds big acyclic structures (binary trees) is examined O(log) times
 * per doubling of its heap instead of once per 700 objects, and most of its
 * short-lived structures die by refcount before any collection sees them;
 * young garbage is still found within young_threshold ≤ max(threshold 0,
 * tracked objects) net allocations, i.e. it never outgrows the live data
 * at the last collection. A collection of the enlarged generation 0 counts
 * in count[1] (and count[2]) as the young_threshold / threshold 0
 * collections it stands for (credit_enlarged_young), so generations 1 and
 * 2 keep their pace in allocations, and its survivors go straight to
 * generation 2 as pending objects (COLLECT_YOUNG_TO_OLD): generation 1
 * would examine them a second time for nothing. The rejected alternative,
 * skipping collections when no count dropped to non-zero, is unsound here:
 * references stolen into containers and spec-type fields written directly
 * make cycles without any decrement.
 *
 * Incremental mode (OM_OPTION_GC_INCREMENTAL_BUDGET_US > 0): instead of a
 * full collection, a sweep starts: the scanned half becomes the unscanned
 * one. Each step (one after every automatic collection while the sweep
 * runs, so that it keeps pace with promotions) takes seeds from the
 * unscanned half while it has examined fewer than limit/2 objects, and
 * with each seed the transitive closure of what it reaches in the
 * unscanned half, up to `limit` objects or, past step_least, until 40 % of
 * its budget has gone (closures of STEP_CLOCK_OBJECTS objects or more are
 * cut then; the cost per object varies 2-3× with the state of the caches;
 * limit = budget ÷ ns per object, measured on the steps
 * themselves: a full collection's cost per object is 3-10× lower, a step
 * over a churned heap misses the caches on almost every object), then
 * runs the algorithm above on that set;
 * survivors go to the scanned half, as do objects promoted meanwhile. Sound
 * by the argument above (any S). Complete: a garbage structure is a
 * union of strongly connected parts, and one with no garbage referrer (a
 * "source") is referenced from nothing outside itself; when the first of its
 * objects enters a step, the closure brings in all of it (each part member
 * reaches every other) unless the step is full (limit or clock), so it is freed in that
 * step; freeing it drops the only references to what it held, which then
 * dies by refcount or is a source for the next sweep. A closure cut short
 * (by `limit`: a structure larger than the budget; or by the clock) may
 * split garbage; then, at the next sweep start, if generation 2 has grown
 * to FALLBACK_GROWTH times its size after the last full collection, a full
 * collection runs instead (counted in fallbacks): garbage is never kept
 * for ever, and the pause bound holds for heaps whose structures fit a step.
 * In this mode the young collections stay within the budget too: the
 * effective threshold 0 never exceeds limit / STEP_PACE, and generation 0's
 * survivors go straight to generation 2 (COLLECT_YOUNG_TO_OLD), where the
 * sweep examines them; a collection of generation 1 (up to threshold 0 ×
 * (threshold 1 + 1) objects scattered over a churned heap) alone took 2–6
 * ms of CPU in gc_bench (d), against a budget of 1 ms.
 *
 * Pause log: each collection and step, as it ends, writes one om_gc_pause
 * (start relative to the runtime's birth, duration, generation, counts)
 * into a ring of the last GC_PAUSE_LOG entries in the state: the slot is
 * pause_total % GC_PAUSE_LOG, so it costs a clock read and a store per
 * collection, nothing on tracking or release, and never allocates.
 *
 * Bacon–Rajan candidate roots were considered and left out: recording a
 * candidate needs a branch in om_decref's inline path (count dropped to
 * non-zero), which the object core keeps to compare, decrement, test.
 *
 * Learned from: CPython 3.11 Modules/gcmodule.c and Modules/gc_weakref.txt
 * (the algorithm, PEP 442 order, the weakref rule, the 25 % rule), Lua's
 * lgc.c (work units per step), CPython 3.13/3.14 incremental collector
 * discussions (increments closed under reference); written afresh.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* ---- Tunables ------------------------------------------------------------ */

#define GC_DEFAULT_THRESHOLD0 700      /* tracked allocations − deallocations */
#define GC_DEFAULT_THRESHOLD1 10       /* generation-0 collections */
#define GC_DEFAULT_THRESHOLD2 10       /* generation-1 collections */
#define GC_PENDING_DIVISOR 4           /* full collection once pending ≥ old / 4 */
#define GC_REFS_CLAMP ((uintptr_t)1 << 56)  /* working count of immortal objects */
#define STEP_DEFAULT_BUDGET_US 1000    /* om_gc_collect_step with the option at 0 */
#define STEP_MIN_OBJECTS 1024          /* a step examines at least this many, and at
                                          least STEP_PACE × threshold 0, to keep pace */
#define STEP_PACE 4                    /* and the effective threshold 0 stays below
                                          limit / STEP_PACE in incremental mode */
#define FULL_ALLOC_FACTOR 16           /* a full collection at least every this many
                                          × generation 2's size tracked allocations */
#define FULL_ALLOC_MIN 65536
#define GC_WHOLE_EVERY 4               /* see pending_only_turn */
#define STEP_INITIAL_NS_PER_OBJECT 400.0  /* a step's cost per object on a heap
                                          bigger than the caches (gc_bench (d):
                                          300-800 ns), until steps measure it */
#define STEP_ESTIMATE_MIN_OBJECTS 256  /* steps this big update the estimate */
#define STEP_CLOCK_OBJECTS 64          /* a step reads the clock every this many objects */
#define STEP_GATHER_SHARE_PERCENT 40   /* of the budget, for gathering the step's
                                          objects: examining them costs 1-1.6× that */
#define FALLBACK_GROWTH 2              /* see "Incremental mode" above */
#define GC_PAUSE_LOG OM_GC_PAUSE_LOG   /* collections om_gc_get_pauses remembers */
#define YOUNG_GROWTH 2                 /* a fruitless young collection multiplies
                                          the effective threshold 0 by this */
#define YOUNG_BOUND_DIVISOR 1          /* ... up to tracked objects / this */

_Static_assert(GC_REFS_CLAMP < (UINTPTR_MAX >> OMI_GC_PREV_SHIFT), "working counts fit in prev");
_Static_assert(STEP_MIN_OBJECTS >= 2, "a step takes at least one seed");

enum gc_space {
    SPACE_GEN0 = 0,
    SPACE_GEN1 = 1,
    SPACE_OLD_A = 2,
    SPACE_OLD_B = 3,
    SPACE_PERMANENT = 4,
    SPACE_COLLECTING = 5,
    SPACE_UNREACHABLE = 6,
    SPACE_COUNT = 8,
};
#define SPACE_LISTS 5                  /* spaces with a list in gc_state */
#define SPACE_SHIFT 1
#define SPACE_MASK ((uintptr_t)7 << SPACE_SHIFT)

_Static_assert(((SPACE_COUNT - 1) << SPACE_SHIFT | OMI_GC_FINALIZED) <= OMI_GC_FLAG_MASK,
               "space and flags fit in the low bits of prev");

typedef struct gc_callback {
    om_gc_callback_fn fn;              /* NULL: removed during a collection */
    void *user;                        /* passed back */
} gc_callback;

typedef struct omi_gc_state {
    omi_gc_head lists[SPACE_LISTS];    /* sentinels, indexed by space */
    size_t live[SPACE_COUNT];          /* objects per space (invariant above) */
    size_t pending_live;               /* objects flagged OMI_GC_PENDING */
    size_t pending_rule_firings;       /* generation-2 collections the 25 % rule asked for */
    long count[OM_GC_GENERATIONS];     /* compared with threshold[] */
    long threshold[OM_GC_GENERATIONS];
    long young_threshold;              /* effective threshold 0 (see "Pacing"):
                                          threshold[0] ≤ it ≤ max(threshold[0],
                                          young_bound()), 0 iff threshold[0] is */
    bool enabled;                      /* automatic collection */
    bool collecting;                   /* a collection or step is running */
    int debug;                         /* OM_GC_DEBUG_* */
    unsigned old_scanned;              /* SPACE_OLD_A or SPACE_OLD_B */
    bool sweep_running;                /* the other old half is being swept */
    bool truncated_since_full;         /* a step was cut short since the last full */
    size_t old_after_full;             /* generation-2 objects after the last full */
    size_t allocs_since_full;          /* tracked allocations since the last full
                                          collection or sweep start */
    double ns_per_object;              /* measured cost of examining one object */
    om_gc_stats stats[OM_GC_GENERATIONS];
    om_gc_incremental_stats inc;
    om_object *garbage;                /* om_gc_garbage(), or NULL until needed */
    gc_callback *callbacks;            /* RAW array */
    size_t callback_count;             /* entries used (tombstones included) */
    size_t callback_capacity;          /* entries allocated */
    int callbacks_running;             /* nesting depth of gc_run_callbacks */
    uint64_t born_ns;                  /* the clock when the runtime was made */
    uint64_t pause_total;              /* collections logged; the newest is in
                                          pauses[(pause_total - 1) % GC_PAUSE_LOG] */
    om_gc_pause pauses[GC_PAUSE_LOG];  /* ring: the last GC_PAUSE_LOG collections */
} gc_state;

#define LIST_INIT(g, i) {(uintptr_t)&(g).lists[i], (uintptr_t)&(g).lists[i]}
#define GC_STATE_INIT(g)                                                           \
    {                                                                              \
        .lists = {LIST_INIT(g, 0), LIST_INIT(g, 1), LIST_INIT(g, 2), LIST_INIT(g, 3), \
                  LIST_INIT(g, 4)},                                                \
        .threshold = {GC_DEFAULT_THRESHOLD0, GC_DEFAULT_THRESHOLD1, GC_DEFAULT_THRESHOLD2}, \
        .young_threshold = GC_DEFAULT_THRESHOLD0,                                  \
        .enabled = true, .old_scanned = SPACE_OLD_A,                               \
        .ns_per_object = STEP_INITIAL_NS_PER_OBJECT,                               \
    }

/* The default runtime's collector; every other runtime has its own
 * (omi_gc_state_new). */
gc_state omi_gc_default = GC_STATE_INIT(omi_gc_default);

/* The collector of the calling thread's runtime: every use of `gc` below
 * attaches a thread that is not attached (omi_bound); tracking and
 * untracking, the hot paths, read omi_current_gc() once instead. */
#define gc (*omi_bound()->gc)

static uint64_t gc_now_ns(void);

/* The default runtime is born when the library is loaded. */
__attribute__((constructor)) static void gc_default_born(void)
{
    omi_gc_default.born_ns = gc_now_ns();
}

gc_state *omi_gc_state_new(void)
{
    gc_state *g = om_raw_malloc(sizeof *g);
    if (g != NULL) {
        *g = (gc_state)GC_STATE_INIT(*g);
        g->born_ns = gc_now_ns();
    }
    return g;
}

void omi_gc_state_delete(gc_state *g)
{
    om_raw_free(g->callbacks);
    om_raw_free(g);
}

void omi_gc_state_configure(gc_state *g, const long threshold[3], bool enabled)
{
    memcpy(g->threshold, threshold, sizeof g->threshold);
    g->young_threshold = threshold[0];
    g->enabled = enabled;
}

/* ---- Heads and lists --------------------------------------------------------- */

static om_object *head_object(omi_gc_head *h)
{
    return (om_object *)(h + 1);
}

static omi_gc_head *head_next(const omi_gc_head *h)
{
    return (omi_gc_head *)(h->next & ~OMI_GC_FLAG_MASK);
}

static omi_gc_head *head_prev(const omi_gc_head *h)
{
    return (omi_gc_head *)(h->prev & ~OMI_GC_FLAG_MASK);
}

static void head_set_next(omi_gc_head *h, const omi_gc_head *next)
{
    h->next = (uintptr_t)next | (h->next & OMI_GC_FLAG_MASK);
}

static void head_set_prev(omi_gc_head *h, const omi_gc_head *prev)
{
    h->prev = (uintptr_t)prev | (h->prev & OMI_GC_FLAG_MASK);
}

static unsigned head_space(const omi_gc_head *h)
{
    return (unsigned)((h->prev & SPACE_MASK) >> SPACE_SHIFT);
}

static void head_set_space(omi_gc_head *h, unsigned space)
{
    h->prev = (h->prev & ~SPACE_MASK) | ((uintptr_t)space << SPACE_SHIFT);
}

static uintptr_t head_refs(const omi_gc_head *h)
{
    return h->prev >> OMI_GC_PREV_SHIFT;
}

/* prev := refs, FINALIZED kept, space := space (the prev address is lost). */
static void head_set_refs(omi_gc_head *h, uintptr_t refs, unsigned space)
{
    h->prev = refs << OMI_GC_PREV_SHIFT | (h->prev & OMI_GC_FINALIZED) |
              (uintptr_t)space << SPACE_SHIFT;
}

static void list_init(omi_gc_head *list)
{
    list->next = list->prev = (uintptr_t)list;
}

static bool list_is_empty(const omi_gc_head *list)
{
    return head_next(list) == list;
}

static void list_append(omi_gc_head *h, omi_gc_head *list)
{
    omi_gc_head *last = head_prev(list);
    head_set_next(last, h);
    h->next = (uintptr_t)list | (h->next & OMI_GC_FLAG_MASK);
    head_set_prev(h, last);
    head_set_prev(list, h);
}

static void list_unlink(omi_gc_head *h)
{
    omi_gc_head *prev = head_prev(h);
    omi_gc_head *next = head_next(h);
    head_set_next(prev, next);
    head_set_prev(next, prev);
}

static void list_move(omi_gc_head *h, omi_gc_head *to)
{
    list_unlink(h);
    list_append(h, to);
}

/* Appends every head of `from` to `to`; from becomes empty. O(1). */
static void list_splice(omi_gc_head *from, omi_gc_head *to)
{
    if (list_is_empty(from))
        return;
    omi_gc_head *first = head_next(from), *last = head_prev(from), *tail = head_prev(to);
    head_set_next(tail, first);
    head_set_prev(first, tail);
    head_set_next(last, to);
    head_set_prev(to, last);
    list_init(from);
}

/* Moves h (in some list) to space `to`'s list, with the counts. */
static void move_to_space(omi_gc_head *h, unsigned to)
{
    gc.live[head_space(h)]--;
    gc.live[to]++;
    list_move(h, &gc.lists[to]);
    head_set_space(h, to);
}

/* Rewrites the space of every head of `list` and moves them all to space
 * `to` (clearing OMI_GC_PENDING); list is a resting space. O(n). */
static void respace_all(unsigned from, unsigned to)
{
    omi_gc_head *list = &gc.lists[from];
    for (omi_gc_head *h = head_next(list); h != list; h = head_next(h)) {
        head_set_space(h, to);
        if (h->next & OMI_GC_PENDING) {
            h->next &= ~OMI_GC_PENDING;
            gc.pending_live--;
        }
    }
    gc.live[to] += gc.live[from];
    gc.live[from] = 0;
    list_splice(list, &gc.lists[to]);
}

static unsigned old_unscanned(void)
{
    return gc.old_scanned == SPACE_OLD_A ? SPACE_OLD_B : SPACE_OLD_A;
}

static size_t old_live(void)
{
    return gc.live[SPACE_OLD_A] + gc.live[SPACE_OLD_B];
}

/* ---- Tracking ---------------------------------------------------------------- */

/* Out of line: inlined into omi_gc_track, its register needs would cost
 * every tracking a prologue of five pushes. */
static OMI_NOINLINE void gc_collect_auto(void);

/* list_append for an untracked head (next == 0, no flag but FINALIZED in
 * prev, space GEN0) going to the end of generation 0: the hot path of every
 * GC object's creation, so without the general flag bookkeeping. */
static void list_append_young(gc_state *g, omi_gc_head *h)
{
    omi_gc_head *list = &g->lists[SPACE_GEN0];
    omi_gc_head *last = head_prev(list);
    h->next = (uintptr_t)list;
    h->prev = (uintptr_t)last | (h->prev & OMI_GC_FINALIZED);
    last->next = (uintptr_t)h | (last->next & OMI_GC_FLAG_MASK);
    list->prev = (uintptr_t)h;
}

/* Tracking and untracking run for every GC object's birth and death: they
 * read the runtime's collector once. */
void omi_gc_track(om_object *o)
{
    omi_gc_head *h = omi_gc_head_of(o);
    if (h->next != 0)
        return;
    om_assert(head_space(h) == SPACE_GEN0);
    gc_state *g = omi_current_gc();
    list_append_young(g, h);
    g->live[SPACE_GEN0]++;
    g->allocs_since_full++;
    if (omi_unlikely(++g->count[0] > g->young_threshold) && g->young_threshold != 0)
        gc_collect_auto();
}

/* Takes tracked head h off its list, with the counts. */
static inline void untrack_head(omi_gc_head *h)
{
    om_assert(head_space(h) != SPACE_COLLECTING);
    gc_state *g = omi_current_gc();
    g->live[head_space(h)]--;
    if (h->next & OMI_GC_PENDING)
        g->pending_live--;
    list_unlink(h);
    if (g->count[0] > 0)
        g->count[0]--;
}

void omi_gc_untrack(om_object *o)
{
    omi_gc_head *h = omi_gc_head_of(o);
    if (h->next == 0)
        return;
    untrack_head(h);
    h->next = 0;
    h->prev &= OMI_GC_FINALIZED;
}

void omi_gc_untrack_dying(om_object *o)
{
    omi_gc_head *h = omi_gc_head_of(o);
    if (h->next != 0)
        untrack_head(h);
}

bool omi_gc_is_unreachable(const om_object *o)
{
    return omi_gc_is_tracked(o) && head_space(omi_gc_head_of(o)) == SPACE_UNREACHABLE;
}

/* ---- Clock, debug output, callbacks ------------------------------------------- */

static uint64_t gc_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void debug_object(const char *what, om_object *o)
{
    fprintf(stderr, "gc: %s <%s %p>\n", what, o->ob_type->name, (void *)o);
}

static void debug_start(int generation, bool step)
{
    fprintf(stderr, "gc: collecting generation %d%s...\n", generation,
            step ? " (incremental step)" : "");
    fprintf(stderr, "gc: objects in each generation: %zu %zu %zu\n", gc.live[SPACE_GEN0],
            gc.live[SPACE_GEN1], old_live());
    fprintf(stderr, "gc: objects in permanent generation: %zu\n", gc.live[SPACE_PERMANENT]);
}

static void gc_run_callbacks(om_gc_phase phase, int generation, size_t collected,
                             size_t uncollectable)
{
    if (gc.callback_count == 0)
        return;
    om_gc_info info = {generation, collected, uncollectable};
    size_t n = gc.callback_count;   /* callbacks added meanwhile wait for the next time */
    gc.callbacks_running++;
    for (size_t i = 0; i < n; i++) {
        gc_callback cb = gc.callbacks[i];
        if (cb.fn != NULL)
            cb.fn(phase, &info, cb.user);
    }
    if (--gc.callbacks_running == 0) {
        size_t kept = 0;
        for (size_t i = 0; i < gc.callback_count; i++)
            if (gc.callbacks[i].fn != NULL)
                gc.callbacks[kept++] = gc.callbacks[i];
        gc.callback_count = kept;
    }
}

/* ---- The algorithm ------------------------------------------------------------ */

/* Working count := reference count, for every head of list (now COLLECTING);
 * from here on, list's heads are linked through next only. */
static void update_refs(omi_gc_head *list)
{
    for (omi_gc_head *h = head_next(list); h != list; h = head_next(h)) {
        intptr_t count = head_object(h)->ob_refcnt;
        om_assert(count > 0);
        uintptr_t refs = count >= OM_REFCNT_IMMORTAL ? GC_REFS_CLAMP : (uintptr_t)count;
        if (h->next & OMI_GC_PENDING) {
            h->next &= ~OMI_GC_PENDING;
            gc.pending_live--;
        }
        head_set_refs(h, refs, SPACE_COLLECTING);
    }
}

static int visit_decref(om_object *o, void *arg)
{
    (void)arg;
    if (omi_type_is_gc(o->ob_type)) {
        omi_gc_head *h = omi_gc_head_of(o);
        if (head_space(h) == SPACE_COLLECTING) {
            om_assert(head_refs(h) > 0);
            h->prev -= (uintptr_t)1 << OMI_GC_PREV_SHIFT;
        }
    }
    return 0;
}

static void traverse(om_object *o, om_visit_fn visit, void *arg)
{
    if (o->ob_type->traverse != NULL)
        o->ob_type->traverse(o, visit, arg);
}

/* Subtracts the references that list's objects hold to each other. */
static void subtract_refs(omi_gc_head *list)
{
    for (omi_gc_head *h = head_next(list); h != list; h = head_next(h))
        traverse(head_object(h), visit_decref, NULL);
}

/* A referent of a reachable object: reachable too. One still in the
 * tentatively unreachable list comes back to the end of the working list,
 * where move_unreachable's scan will reach it. */
static int visit_reachable(om_object *o, void *arg)
{
    if (!omi_type_is_gc(o->ob_type))
        return 0;
    omi_gc_head *h = omi_gc_head_of(o);
    unsigned space = head_space(h);
    if (space == SPACE_COLLECTING) {
        if (head_refs(h) == 0)
            head_set_refs(h, 1, SPACE_COLLECTING);
    } else if (space == SPACE_UNREACHABLE) {
        list_unlink(h);
        list_append(h, arg);
        head_set_refs(h, 1, SPACE_COLLECTING);
    }
    return 0;
}

/* Splits `work` (after subtract_refs) into the reachable objects, which stay
 * in work with real prev links, space `target` and OMI_GC_PENDING if
 * `pending`, and the unreachable ones, appended to `unreachable` (space
 * UNREACHABLE). Returns the number of reachable objects. Objects reached
 * later are appended to work's end, so the scan is also the queue: no
 * memory needed. */
static size_t move_unreachable(omi_gc_head *work, omi_gc_head *unreachable, unsigned target,
                               bool pending)
{
    size_t reached = 0;
    omi_gc_head *prev = work;
    for (omi_gc_head *h = head_next(work); h != work; h = head_next(prev)) {
        if (head_refs(h) != 0) {
            traverse(head_object(h), visit_reachable, work);
            h->prev = (uintptr_t)prev | (h->prev & OMI_GC_FINALIZED) |
                      (uintptr_t)target << SPACE_SHIFT;
            if (pending)
                h->next |= OMI_GC_PENDING;
            prev = h;
            reached++;
        } else {
            /* work is singly linked here; work's own prev stays the real
             * tail unless h is the tail, and then the scan ends now */
            head_set_next(prev, head_next(h));
            omi_gc_head *last = head_prev(unreachable);
            head_set_next(last, h);
            h->prev = (uintptr_t)last | (h->prev & OMI_GC_FINALIZED) |
                      (uintptr_t)SPACE_UNREACHABLE << SPACE_SHIFT;
            h->next = (uintptr_t)unreachable;
            head_set_prev(unreachable, h);
        }
    }
    head_set_prev(work, prev);
    return reached;
}

/* Runs the algorithm on `work` (its `total` objects COLLECTING, counted in
 * live[COLLECTING]): survivors join space target; the unreachable ones are
 * left in `unreachable`. */
static void find_unreachable(omi_gc_head *work, size_t total, omi_gc_head *unreachable,
                             unsigned target, bool pending)
{
    update_refs(work);
    subtract_refs(work);
    size_t reached = move_unreachable(work, unreachable, target, pending);
    gc.live[SPACE_COLLECTING] -= total;
    gc.live[target] += reached;
    gc.live[SPACE_UNREACHABLE] += total - reached;
    if (pending)
        gc.pending_live += reached;
    list_splice(work, &gc.lists[target]);
}

/* ---- After the unreachable set is known ---------------------------------------- */

typedef struct gc_result {
    size_t collected;       /* unreachable, not set aside for legacy finalizers */
    size_t uncollectable;   /* set aside: legacy finalizers and what they reach */
} gc_result;

static bool has_legacy_finalizer(const om_object *o)
{
    return (o->ob_type->flags & OM_TYPE_LEGACY_FINALIZER) != 0 && o->ob_type->finalize != NULL;
}

typedef struct legacy_ctx {
    omi_gc_head *list;      /* where set-aside objects go */
    unsigned target;        /* their space */
} legacy_ctx;

static void set_aside(omi_gc_head *h, const legacy_ctx *ctx)
{
    gc.live[SPACE_UNREACHABLE]--;
    gc.live[ctx->target]++;
    list_move(h, ctx->list);
    head_set_space(h, ctx->target);
}

static int visit_set_aside(om_object *o, void *arg)
{
    if (omi_gc_is_unreachable(o))
        set_aside(omi_gc_head_of(o), arg);
    return 0;
}

/* Objects with legacy finalizers, and all they reach in unreachable, move to
 * ctx->list: they are uncollectable. Returns how many. */
static size_t move_legacy_finalizers(omi_gc_head *unreachable, const legacy_ctx *ctx)
{
    omi_gc_head *next;
    for (omi_gc_head *h = head_next(unreachable); h != unreachable; h = next) {
        next = head_next(h);
        if (has_legacy_finalizer(head_object(h)))
            set_aside(h, ctx);
    }
    size_t n = 0;
    for (omi_gc_head *h = head_next(ctx->list); h != ctx->list; h = head_next(h), n++)
        traverse(head_object(h), visit_set_aside, (void *)ctx);
    return n;
}

/* Appends o to om_gc_garbage(); on failure o just stays where it is. */
static void garbage_append(om_object *o)
{
    om_object *garbage = om_gc_garbage();
    if (garbage != NULL && om_list_append(garbage, o) != 0)
        om_clear_error();
}

/* Clears the weak references to unreachable objects, then runs the
 * callbacks of those that are not garbage. true if any callback ran. */
static bool handle_weakrefs(omi_gc_head *unreachable)
{
    if (omi_thread.weakrefs->referents == 0)
        return false;
    om_object *pending = NULL;
    for (omi_gc_head *h = head_next(unreachable); h != unreachable; h = head_next(h)) {
        om_object *o = head_object(h);
        if (omi_weakref_may_have_refs(o))
            omi_weakref_clear_for_collection(o, &pending);
    }
    if (pending == NULL)
        return false;
    omi_weakref_run_pending(pending);
    return true;
}

/* Runs each finalize hook not yet run (PEP 442). Objects may die or be
 * resurrected meanwhile; each is moved to `seen` before its hook, so the
 * loop survives any change. true if any hook ran. */
static bool finalize_garbage(omi_gc_head *unreachable)
{
    omi_gc_head seen;
    list_init(&seen);
    bool ran = false;
    while (!list_is_empty(unreachable)) {
        omi_gc_head *h = head_next(unreachable);
        list_move(h, &seen);
        om_object *o = head_object(h);
        if (o->ob_type->finalize != NULL && !(h->prev & OMI_GC_FINALIZED)) {
            h->prev |= OMI_GC_FINALIZED;
            om_incref(o);
            o->ob_type->finalize(o);
            om_decref(o);
            ran = true;
        }
    }
    list_splice(&seen, unreachable);
    return ran;
}

/* After user code ran: objects of unreachable that are now referenced from
 * outside it (resurrected), and all they reach, go back to space target. */
static void handle_resurrected(omi_gc_head *unreachable, unsigned target)
{
    size_t total = gc.live[SPACE_UNREACHABLE];
    gc.live[SPACE_UNREACHABLE] = 0;
    gc.live[SPACE_COLLECTING] += total;
    omi_gc_head still;
    list_init(&still);
    find_unreachable(unreachable, total, &still, target, false);
    list_splice(&still, unreachable);
}

/* Breaks what is left with clear hooks (or, with SAVEALL, keeps it in
 * om_gc_garbage); objects still alive afterwards join space target. */
static void delete_garbage(omi_gc_head *unreachable, unsigned target)
{
    while (!list_is_empty(unreachable)) {
        omi_gc_head *h = head_next(unreachable);
        om_object *o = head_object(h);
        if (gc.debug & OM_GC_DEBUG_SAVEALL) {
            garbage_append(o);
        } else if (o->ob_type->clear != NULL) {
            om_incref(o);
            o->ob_type->clear(o);
            om_decref(o);
        }
        if (head_next(unreachable) == h)
            move_to_space(h, target);
    }
}

/* Everything after find_unreachable; unreachable's objects are in space
 * UNREACHABLE (only they, while this runs). */
static gc_result finish_collection(omi_gc_head *unreachable, unsigned target)
{
    omi_gc_head legacy;
    list_init(&legacy);
    legacy_ctx ctx = {&legacy, target};
    gc_result r = {0, move_legacy_finalizers(unreachable, &ctx)};
    r.collected = gc.live[SPACE_UNREACHABLE];
    if (gc.debug & OM_GC_DEBUG_COLLECTABLE)
        for (omi_gc_head *h = head_next(unreachable); h != unreachable; h = head_next(h))
            debug_object("collectable", head_object(h));
    if (gc.debug & OM_GC_DEBUG_UNCOLLECTABLE)
        for (omi_gc_head *h = head_next(&legacy); h != &legacy; h = head_next(h))
            debug_object("uncollectable", head_object(h));
    bool user_code = handle_weakrefs(unreachable);
    user_code |= finalize_garbage(unreachable);
    if (user_code)
        handle_resurrected(unreachable, target);
    delete_garbage(unreachable, target);
    for (omi_gc_head *h = head_next(&legacy); h != &legacy; h = head_next(h)) {
        om_object *o = head_object(h);
        if ((gc.debug & OM_GC_DEBUG_SAVEALL) || has_legacy_finalizer(o))
            garbage_append(o);
    }
    list_splice(&legacy, &gc.lists[target]);
    om_assert(gc.live[SPACE_COLLECTING] == 0 && gc.live[SPACE_UNREACHABLE] == 0);
    return r;
}

/* ---- Collections ----------------------------------------------------------------- */

/* Moves space s into the working list. */
/* Moves the pending objects at the end of old space s to work (COLLECTING)
 * and returns how many. Outside incremental sweeps, promotion appends to
 * the end of the scanned old list and every collection that examines old
 * objects appends its survivors there unflagged, so the pending objects
 * form the list's tail (a pending object elsewhere is only left for the
 * next whole collection: examining a subset is always sound). */
static size_t gather_pending_tail(omi_gc_head *work, unsigned s)
{
    omi_gc_head *list = &gc.lists[s], *first = list;
    size_t n = 0;
    for (omi_gc_head *h = head_prev(list); h != list && (h->next & OMI_GC_PENDING);
         h = head_prev(h)) {
        first = h;
        n++;
    }
    if (n == 0)
        return 0;
    omi_gc_head *last = head_prev(list), *before = head_prev(first), *tail = head_prev(work);
    head_set_next(before, list);
    head_set_prev(list, before);
    head_set_next(tail, first);
    head_set_prev(first, tail);
    head_set_next(last, work);
    head_set_prev(work, last);
    gc.live[s] -= n;
    gc.live[SPACE_COLLECTING] += n;
    return n;
}

static size_t gather_space(omi_gc_head *work, unsigned s)
{
    size_t n = gc.live[s];
    gc.live[s] = 0;
    gc.live[SPACE_COLLECTING] += n;
    list_splice(&gc.lists[s], work);
    return n;
}

static void update_estimate(uint64_t elapsed_ns, size_t objects)
{
    if (objects >= STEP_ESTIMATE_MIN_OBJECTS)
        gc.ns_per_object = (gc.ns_per_object + (double)elapsed_ns / (double)objects) / 2;
}

/* Logs a finished collection in the pause ring (see the design comment). */
static void log_pause(int generation, bool step, size_t examined, gc_result r,
                      uint64_t start_ns, uint64_t end_ns)
{
    om_gc_pause *p = &gc.pauses[gc.pause_total % GC_PAUSE_LOG];
    p->start_seconds = (double)(start_ns - gc.born_ns) / 1e9;
    p->duration_seconds = (double)(end_ns - start_ns) / 1e9;
    p->generation = generation;
    p->step = step;
    p->examined = examined;
    p->collected = r.collected;
    p->uncollectable = r.uncollectable;
    gc.pause_total++;
}

static void young_threshold_after(gc_result r);

static void record_result(int generation, bool step, size_t examined, gc_result r,
                          uint64_t start_ns)
{
    young_threshold_after(r);
    uint64_t end_ns = gc_now_ns();
    log_pause(generation, step, examined, r, start_ns, end_ns);
    gc.stats[generation].collected += r.collected;
    gc.stats[generation].uncollectable += r.uncollectable;
    if (gc.debug & OM_GC_DEBUG_STATS)
        fprintf(stderr, "gc: done, %zu unreachable, %zu uncollectable, %.4fs elapsed\n",
                r.collected + r.uncollectable, r.uncollectable,
                (double)(end_ns - start_ns) / 1e9);
    gc_run_callbacks(OM_GC_PHASE_STOP, generation, r.collected + r.uncollectable,
                     r.uncollectable);
    gc.collecting = false;
}

/* What a collection of a generation examines and where its survivors go. */
typedef enum collect_kind {
    COLLECT_EXACT,          /* the generation and the younger ones (the whole
                               heap for 2); survivors one generation up */
    COLLECT_PENDING_ONLY,   /* 2: the young and the pending old objects only */
    COLLECT_YOUNG_TO_OLD,   /* 0: survivors straight to generation 2, pending
                               (enlarged generation 0 or incremental mode) */
} collect_kind;

/* Collects `generation` and the younger ones, stop-the-world. */
static long collect_generation_ex(int generation, collect_kind kind)
{
    om_assert(om_gil_held());   /* the runtime's collector is the GIL's to use */
    gc.collecting = true;
    if (generation + 1 < OM_GC_GENERATIONS)
        gc.count[generation + 1]++;
    for (int i = 0; i <= generation; i++)
        gc.count[i] = 0;
    gc.stats[generation].collections++;
    gc_run_callbacks(OM_GC_PHASE_START, generation, 0, 0);
    uint64_t start = gc_now_ns();
    if (gc.debug & OM_GC_DEBUG_STATS)
        debug_start(generation, false);
    omi_gc_head work, unreachable;
    list_init(&work);
    list_init(&unreachable);
    size_t total = 0;
    if (generation == 2 && kind == COLLECT_PENDING_ONLY) {
        total += gather_pending_tail(&work, gc.old_scanned);
    } else if (generation == 2) {
        total += gather_space(&work, SPACE_OLD_A);
        total += gather_space(&work, SPACE_OLD_B);
        gc.sweep_running = false;
        gc.truncated_since_full = false;
        gc.allocs_since_full = 0;
    }
    if (generation >= 1)
        total += gather_space(&work, SPACE_GEN1);
    total += gather_space(&work, SPACE_GEN0);
    bool to_old = generation == 1 || kind == COLLECT_YOUNG_TO_OLD;
    unsigned target = to_old || generation == 2 ? gc.old_scanned : SPACE_GEN1;
    find_unreachable(&work, total, &unreachable, target, to_old);
    gc_result r = finish_collection(&unreachable, target);
    if (generation == 2 && kind == COLLECT_EXACT)
        gc.old_after_full = old_live();
    record_result(generation, false, total, r, start);
    return (long)(r.collected + r.uncollectable);
}

/* Collects `generation` and the younger ones, stop-the-world, the whole
 * heap for generation 2. */
static long collect_generation(int generation)
{
    return collect_generation_ex(generation, COLLECT_EXACT);
}

/* ---- Incremental steps ------------------------------------------------------------ */

typedef struct closure_ctx {
    omi_gc_head *work;      /* the step's working list */
    unsigned from;          /* the unscanned half */
    size_t count;           /* objects in work */
    size_t limit;           /* at most this many */
    bool truncated;         /* a referent was left out (limit or clock) */
    uint64_t gather_until_ns;   /* the gather's share of the budget ends here */
    bool out_of_time;       /* ...and has ended */
    size_t seed_at;         /* count when the current seed was taken */
    size_t least;           /* the clock cuts nothing before this many */
} closure_ctx;

static void closure_take(omi_gc_head *h, closure_ctx *ctx)
{
    gc.live[ctx->from]--;
    gc.live[SPACE_COLLECTING]++;
    list_move(h, ctx->work);
    head_set_space(h, SPACE_COLLECTING);
    ctx->count++;
}

/* true once the gather's share of the budget has gone, but never before
 * the step holds ctx->least objects (see step_least). */
static bool out_of_time(closure_ctx *ctx)
{
    if (!ctx->out_of_time && ctx->count >= ctx->least && gc_now_ns() >= ctx->gather_until_ns)
        ctx->out_of_time = true;
    return ctx->out_of_time;
}

/* true when the current closure may take no more objects: `limit` of them,
 * or out of time once the closure holds STEP_CLOCK_OBJECTS or more (a
 * closure through a big container can hold thousands of objects, so the
 * clock is read every STEP_CLOCK_OBJECTS of them; smaller structures are
 * never split by the clock). */
static bool closure_full(closure_ctx *ctx)
{
    size_t in_closure = ctx->count - ctx->seed_at;
    if (ctx->count >= ctx->limit)
        return true;
    return in_closure >= STEP_CLOCK_OBJECTS && in_closure % STEP_CLOCK_OBJECTS == 0 &&
           out_of_time(ctx);
}

static int visit_closure(om_object *o, void *arg)
{
    closure_ctx *ctx = arg;
    if (!omi_type_is_gc(o->ob_type))
        return 0;
    omi_gc_head *h = omi_gc_head_of(o);
    if (head_space(h) != ctx->from)
        return 0;
    if (closure_full(ctx)) {
        ctx->truncated = true;
        return 1;           /* stop this traverse: nothing more fits */
    }
    closure_take(h, ctx);
    return 0;
}

/* Seeds from the unscanned half while fewer than limit/2 objects are in
 * and there is time, each with its closure in that half (see
 * closure_full). */
static void gather_step(closure_ctx *ctx)
{
    omi_gc_head *unscanned = &gc.lists[ctx->from];
    while (ctx->count < ctx->limit / 2 && !list_is_empty(unscanned) && !out_of_time(ctx)) {
        ctx->seed_at = ctx->count;
        omi_gc_head *seed = head_next(unscanned);
        closure_take(seed, ctx);
        for (omi_gc_head *h = seed; h != ctx->work; h = head_next(h))
            traverse(head_object(h), visit_closure, ctx);
    }
}

static uint64_t step_budget_ns(void)
{
    long budget_us = omi_option_values[OM_OPTION_GC_INCREMENTAL_BUDGET_US];
    return (uint64_t)(budget_us > 0 ? budget_us : STEP_DEFAULT_BUDGET_US) * 1000u;
}

/* What a step examines before the clock may cut it: limit/4, and STEP_PACE
 * times what a young collection can promote, so that the sweep keeps ahead
 * of the promotions however slow the machine (then the pause grows
 * instead of the garbage). */
static size_t step_least(size_t limit)
{
    size_t pace = (size_t)STEP_PACE * (size_t)gc.young_threshold;
    size_t least = limit / 4 > pace ? limit / 4 : pace;
    return least < limit ? least : limit;
}

static size_t step_limit(void)
{
    double limit = (double)step_budget_ns() / gc.ns_per_object;
    double least = (double)STEP_PACE * (double)gc.threshold[0];
    if (least < STEP_MIN_OBJECTS)
        least = STEP_MIN_OBJECTS;
    gc.inc.step_object_limit = (size_t)(limit < least ? least : limit);
    return gc.inc.step_object_limit;
}

static void sweep_start(void)
{
    om_assert(gc.live[old_unscanned()] == 0);
    gc.old_scanned = old_unscanned();
    gc.sweep_running = true;
    gc.count[2] = 0;
    gc.allocs_since_full = 0;
}

/* One step of the sweep over generation 2 (starting one if needed). */
static long collect_step(void)
{
    om_assert(om_gil_held());
    gc.collecting = true;
    gc_run_callbacks(OM_GC_PHASE_START, 2, 0, 0);
    uint64_t start = gc_now_ns();
    if (gc.debug & OM_GC_DEBUG_STATS)
        debug_start(2, true);
    if (!gc.sweep_running)
        sweep_start();
    omi_gc_head work, unreachable;
    list_init(&work);
    list_init(&unreachable);
    size_t limit = step_limit();
    closure_ctx ctx = {&work, old_unscanned(), 0, limit, false,
                       start + step_budget_ns() * STEP_GATHER_SHARE_PERCENT / 100, false, 0,
                       step_least(limit)};
    gather_step(&ctx);
    gc.truncated_since_full |= ctx.truncated;
    find_unreachable(&work, ctx.count, &unreachable, gc.old_scanned, false);
    if (gc.live[old_unscanned()] == 0) {
        gc.sweep_running = false;
        gc.inc.sweeps++;
    }
    gc_result r = finish_collection(&unreachable, gc.old_scanned);
    uint64_t elapsed = gc_now_ns() - start;
    update_estimate(elapsed, ctx.count);
    gc.inc.steps++;
    gc.inc.last_step_objects = ctx.count;
    if (ctx.count > gc.inc.max_step_objects)
        gc.inc.max_step_objects = ctx.count;
    if ((double)elapsed / 1e9 > gc.inc.max_step_seconds)
        gc.inc.max_step_seconds = (double)elapsed / 1e9;
    record_result(2, true, ctx.count, r, start);
    return (long)(r.collected + r.uncollectable);
}

/* ---- Scheduling ------------------------------------------------------------------- */

/* The 25 % rule on live counts (see the design comment). */
static bool pending_rule_fires(void)
{
    size_t old = old_live() - gc.pending_live;
    return gc.pending_live > 0 && gc.pending_live >= old / GC_PENDING_DIVISOR;
}

/* The backstop for old objects that turn into garbage while nothing new
 * comes in: a whole collection after enough allocations. */
static bool whole_collection_due(void)
{
    size_t base = old_live() > FULL_ALLOC_MIN ? old_live() : FULL_ALLOC_MIN;
    return gc.allocs_since_full / FULL_ALLOC_FACTOR >= base;
}

/* Of the collections the 25 % rule fires, every GC_WHOLE_EVERY-th examines
 * the whole heap (old objects that turned into garbage are only found
 * so), the others the young and pending objects only; the allocation
 * backstop always takes the whole heap. */
static bool pending_only_turn(void)
{
    if (whole_collection_due())
        return false;
    return ++gc.pending_rule_firings % GC_WHOLE_EVERY != 0;
}

static bool full_collection_pays_off(void)
{
    return pending_rule_fires() || whole_collection_due();
}

static bool fallback_due(void)
{
    size_t base = gc.old_after_full > STEP_MIN_OBJECTS ? gc.old_after_full : STEP_MIN_OBJECTS;
    return gc.truncated_since_full && old_live() > FALLBACK_GROWTH * base;
}

/* Incremental mode, when a full collection is due: a step (which starts a
 * sweep if none runs), or a fallback full collection instead of starting a
 * sweep that may not be able to finish the job. */
static long incremental_full_due(void)
{
    if (!gc.sweep_running && fallback_due()) {
        gc.inc.fallbacks++;
        return collect_generation(2);
    }
    return collect_step();
}

/* ---- Pacing of the young collections ------------------------------------------- */

/* The most the effective threshold 0 may reach: the tracked objects (so the
 * young garbage a collection can find late stays below the live data), and
 * in incremental mode 1 / STEP_PACE of a step's object limit (a young
 * collection then stays well within the budget, and the step after it
 * examines at least STEP_PACE times what it can promote, so that sweeps
 * keep ahead); never below threshold 0. */
static long young_bound(void)
{
    if (gc.threshold[0] == 0)
        return 0;
    size_t bound = (gc.live[SPACE_GEN0] + gc.live[SPACE_GEN1] + old_live()) / YOUNG_BOUND_DIVISOR;
    if (omi_option_values[OM_OPTION_GC_INCREMENTAL_BUDGET_US] > 0) {
        size_t limit = step_limit() / STEP_PACE;
        bound = bound < limit ? bound : limit;
    }
    return (size_t)gc.threshold[0] > bound ? gc.threshold[0] : (long)bound;
}

/* After an automatic collection that found no garbage: the next one waits
 * YOUNG_GROWTH times longer, up to young_bound(). */
static void young_threshold_raise(void)
{
    long bound = young_bound();
    long raised = gc.young_threshold <= bound / YOUNG_GROWTH ? gc.young_threshold * YOUNG_GROWTH
                                                           : bound;
    gc.young_threshold = raised > gc.threshold[0] ? raised : gc.threshold[0];
}

/* Any collection or step that finds garbage: back to threshold 0. */
static void young_threshold_after(gc_result r)
{
    if (r.collected + r.uncollectable > 0)
        gc.young_threshold = gc.threshold[0];
}

/* How many collections of threshold-g size count[g] stands for (rounded
 * up, at least 1). */
static long collection_weight(int g)
{
    long weight = (gc.count[g] + gc.threshold[g]) / (gc.threshold[g] + 1);
    return weight > 1 ? weight : 1;
}

/* An enlarged generation 0 (young_threshold above threshold 0) stands for
 * several collections of threshold-0 size: the older generations become
 * due as if those had run one by one, so that they keep their pace in
 * allocations. */
static void credit_enlarged_young(void)
{
    if (gc.young_threshold <= gc.threshold[0])
        return;
    gc.count[1] += collection_weight(0) - 1;
    if (gc.count[1] > gc.threshold[1])
        gc.count[2] += collection_weight(1) - 1;
}

static OMI_NOINLINE void gc_collect_auto(void)
{
    if (!gc.enabled || gc.collecting || omi_object_release_running())
        return;
    /* A check point: a collection runs finalizers (arbitrary code) anyway. */
    omi_gil_check();
    bool incremental = omi_option_values[OM_OPTION_GC_INCREMENTAL_BUDGET_US] > 0;
    credit_enlarged_young();
    for (int i = OM_GC_GENERATIONS - 1; i >= 0; i--) {
        if (gc.count[i] <= gc.threshold[i])
            continue;
        if (i == 2 && !full_collection_pays_off())
            continue;
        long found;
        if (incremental && i == 2) {
            found = collect_generation(1);
            found += incremental_full_due();
        } else {
            /* the 25 % rule asks "is there new old data?": examining the
             * new old data (and the young) answers it; the whole heap
             * waits for the backstop or om_gc_collect */
            collect_kind kind = COLLECT_EXACT;
            if (i == 2 && pending_only_turn())
                kind = COLLECT_PENDING_ONLY;
            else if (i == 0 && (incremental || gc.young_threshold > gc.threshold[0]))
                kind = COLLECT_YOUNG_TO_OLD;
            found = collect_generation_ex(i, kind);
            /* while a sweep runs, every collection brings a step: the sweep
             * keeps pace with what the young generations promote */
            if (incremental && gc.sweep_running)
                found += collect_step();
        }
        if (found == 0)
            young_threshold_raise();
        return;
    }
}

long omi_gc_collect_for_memory(void)
{
    if (gc.collecting || omi_object_release_running())
        return 0;
    return collect_generation(2);
}

/* ---- Public API: collecting ----------------------------------------------------- */

long om_gc_collect(int generation)
{
    if (generation < -1 || generation >= OM_GC_GENERATIONS) {
        omi_set_error(OM_EINVAL, "om_gc_collect: generation %d is not -1, 0, 1 or 2", generation);
        return -1;
    }
    if (gc.collecting || omi_object_release_running())
        return 0;
    omi_gil_check();
    return collect_generation(generation < 0 ? 2 : generation);
}

long om_gc_collect_step(void)
{
    if (gc.collecting || omi_object_release_running())
        return 0;
    return collect_step();
}

void om_gc_enable(void)
{
    gc.enabled = true;
}

void om_gc_disable(void)
{
    gc.enabled = false;
}

bool om_gc_is_enabled(void)
{
    return gc.enabled;
}

int om_gc_set_threshold(long threshold0, long threshold1, long threshold2)
{
    if (threshold0 < 0 || threshold1 < 0 || threshold2 < 0) {
        omi_set_error(OM_EINVAL, "om_gc_set_threshold: thresholds must not be negative "
                      "(%ld, %ld, %ld)", threshold0, threshold1, threshold2);
        return -1;
    }
    gc.threshold[0] = threshold0;
    gc.threshold[1] = threshold1;
    gc.threshold[2] = threshold2;
    gc.young_threshold = threshold0;
    return 0;
}

static void store_three(const long v[3], long *a, long *b, long *c)
{
    if (a != NULL)
        *a = v[0];
    if (b != NULL)
        *b = v[1];
    if (c != NULL)
        *c = v[2];
}

void om_gc_get_threshold(long *threshold0, long *threshold1, long *threshold2)
{
    store_three(gc.threshold, threshold0, threshold1, threshold2);
}

void om_gc_get_effective_threshold(long *threshold0, long *threshold1, long *threshold2)
{
    long effective[OM_GC_GENERATIONS] = {gc.young_threshold, gc.threshold[1], gc.threshold[2]};
    store_three(effective, threshold0, threshold1, threshold2);
}

void om_gc_get_count(long *count0, long *count1, long *count2)
{
    store_three(gc.count, count0, count1, count2);
}

int om_gc_get_stats(om_gc_stats out[OM_GC_GENERATIONS])
{
    if (out == NULL) {
        omi_set_error(OM_EINVAL, "om_gc_get_stats: out is NULL");
        return -1;
    }
    memcpy(out, gc.stats, sizeof gc.stats);
    return 0;
}

int om_gc_get_incremental_stats(om_gc_incremental_stats *out)
{
    if (out == NULL) {
        omi_set_error(OM_EINVAL, "om_gc_get_incremental_stats: out is NULL");
        return -1;
    }
    *out = gc.inc;
    out->sweep_running = gc.sweep_running;
    return 0;
}

long om_gc_get_pauses(om_gc_pause *out, size_t max)
{
    if (out == NULL && max > 0) {
        omi_set_error(OM_EINVAL, "om_gc_get_pauses: out is NULL");
        return -1;
    }
    uint64_t stored = gc.pause_total < GC_PAUSE_LOG ? gc.pause_total : GC_PAUSE_LOG;
    size_t n = stored < max ? (size_t)stored : max;
    for (size_t i = 0; i < n; i++)
        out[i] = gc.pauses[(gc.pause_total - n + i) % GC_PAUSE_LOG];
    return (long)n;
}

uint64_t om_gc_pause_count(void)
{
    return gc.pause_total;
}

/* ---- Public API: callbacks and debugging --------------------------------------- */

int om_gc_callback_add(om_gc_callback_fn fn, void *user)
{
    if (fn == NULL) {
        omi_set_error(OM_EINVAL, "om_gc_callback_add: fn is NULL");
        return -1;
    }
    if (gc.callback_count == gc.callback_capacity) {
        size_t capacity = gc.callback_capacity ? 2 * gc.callback_capacity : 4;
        gc_callback *grown = om_raw_realloc(gc.callbacks, capacity * sizeof *grown);
        if (grown == NULL)
            return -1;
        gc.callbacks = grown;
        gc.callback_capacity = capacity;
    }
    gc.callbacks[gc.callback_count++] = (gc_callback){fn, user};
    return 0;
}

int om_gc_callback_remove(om_gc_callback_fn fn, void *user)
{
    for (size_t i = 0; i < gc.callback_count; i++) {
        if (gc.callbacks[i].fn != fn || gc.callbacks[i].user != user || fn == NULL)
            continue;
        if (gc.callbacks_running > 0) {
            gc.callbacks[i].fn = NULL;   /* compacted when the run ends */
        } else {
            memmove(&gc.callbacks[i], &gc.callbacks[i + 1],
                    (gc.callback_count - i - 1) * sizeof gc.callbacks[0]);
            gc.callback_count--;
        }
        return 0;
    }
    omi_set_error(OM_EINVAL, "om_gc_callback_remove: no such callback");
    return -1;
}

int om_gc_set_debug(int flags)
{
    if ((flags & ~OM_GC_DEBUG_LEAK & ~OM_GC_DEBUG_STATS) != 0) {
        omi_set_error(OM_EINVAL, "om_gc_set_debug: unknown flags 0x%x", (unsigned)flags);
        return -1;
    }
    gc.debug = flags;
    return 0;
}

int om_gc_get_debug(void)
{
    return gc.debug;
}

om_object *om_gc_garbage(void)
{
    if (gc.garbage == NULL)
        gc.garbage = om_list_new(0);
    return gc.garbage;
}

/* ---- Checking (om_heap_check) ------------------------------------------------- */

#define GC_CHECK(cond, ...) \
    do { if (!(cond)) omi_fatal("om_heap_check: collector: " __VA_ARGS__); } while (0)

static const char *const space_names[SPACE_LISTS] = {
    "generation 0", "generation 1", "generation 2 (half A)", "generation 2 (half B)",
    "the permanent generation",
};

/* One resting list of g: circular, doubly linked, every head marked with
 * this space, of a live GC object, pending only in generation 2, and as
 * long as its count. Returns the pending objects on it. */
static size_t gc_check_list(const gc_state *g, unsigned space)
{
    const omi_gc_head *list = &g->lists[space];
    const omi_gc_head *prev = list;
    size_t n = 0, pending = 0;
    bool releasing = omi_object_release_running();
    for (const omi_gc_head *h = head_next(list); h != list; prev = h, h = head_next(h)) {
        GC_CHECK(h != NULL && ((uintptr_t)h & (OM_ALIGNMENT - 1)) == 0 && ++n <= g->live[space],
                 "%s holds more than its %zu objects, a cycle or a bad link after %p",
                 space_names[space], g->live[space], (const void *)prev);
        const om_object *o = (const om_object *)(h + 1);
        GC_CHECK(head_prev(h) == prev, "%s: object %p's previous link is %p, not %p",
                 space_names[space], (const void *)o, (const void *)head_prev(h),
                 (const void *)prev);
        GC_CHECK(head_space(h) == space, "%s: object %p is marked as in space %u",
                 space_names[space], (const void *)o, head_space(h));
        /* Inside om_dealloc's loop, objects waiting to be released are
         * still tracked with their count words holding the loop's links. */
        GC_CHECK((o->ob_refcnt > 0 || releasing) && o->ob_type != NULL &&
                 omi_type_is_gc(o->ob_type),
                 "%s: object %p is dead or not of a GC type (count %ld)", space_names[space],
                 (const void *)o, (long)o->ob_refcnt);
        bool is_pending = (h->next & OMI_GC_PENDING) != 0;
        GC_CHECK(!is_pending || space == SPACE_OLD_A || space == SPACE_OLD_B,
                 "%s: object %p is flagged pending outside generation 2", space_names[space],
                 (const void *)o);
        pending += is_pending;
    }
    GC_CHECK(head_prev(list) == prev, "%s: the list's tail link is %p, not %p",
             space_names[space], (const void *)head_prev(list), (const void *)prev);
    GC_CHECK(n == g->live[space], "%s: %zu objects listed, %zu counted", space_names[space], n,
             g->live[space]);
    return pending;
}

void omi_gc_check(const struct omi_gc_state *g)
{
    if (g->collecting)
        return;   /* the working lists are in flux; called from a finalizer */
    size_t pending = 0;
    for (unsigned space = 0; space < SPACE_LISTS; space++)
        pending += gc_check_list(g, space);
    GC_CHECK(pending == g->pending_live, "%zu objects flagged pending, %zu counted", pending,
             g->pending_live);
    GC_CHECK(g->live[SPACE_COLLECTING] == 0 && g->live[SPACE_UNREACHABLE] == 0,
             "%zu objects counted in a collection's working lists outside a collection",
             g->live[SPACE_COLLECTING] + g->live[SPACE_UNREACHABLE]);
    GC_CHECK(g->old_scanned == SPACE_OLD_A || g->old_scanned == SPACE_OLD_B,
             "the scanned half of generation 2 is space %u", g->old_scanned);
    unsigned unscanned = g->old_scanned == SPACE_OLD_A ? SPACE_OLD_B : SPACE_OLD_A;
    GC_CHECK(g->sweep_running || g->live[unscanned] == 0,
             "%zu objects wait in the unscanned half of generation 2 with no sweep running",
             g->live[unscanned]);
}

/* ---- Public API: generations and introspection ---------------------------------- */

void om_gc_freeze(void)
{
    for (unsigned s = SPACE_GEN0; s <= SPACE_OLD_B; s++)
        respace_all(s, SPACE_PERMANENT);
    gc.sweep_running = false;
}

void om_gc_unfreeze(void)
{
    respace_all(SPACE_PERMANENT, gc.old_scanned);
}

size_t om_gc_get_freeze_count(void)
{
    return gc.live[SPACE_PERMANENT];
}

/* Appends the objects of space s to list (skipping list itself); -1 on OOM. */
static int append_space(om_object *list, unsigned s)
{
    omi_gc_head *sentinel = &gc.lists[s];
    for (omi_gc_head *h = head_next(sentinel); h != sentinel; h = head_next(h)) {
        om_object *o = head_object(h);
        if (o != list && om_list_append(list, o) != 0)
            return -1;
    }
    return 0;
}

om_object *om_gc_get_objects(int generation)
{
    if (generation < -1 || generation >= OM_GC_GENERATIONS) {
        omi_set_error(OM_EINVAL, "om_gc_get_objects: generation %d is not -1, 0, 1 or 2",
                      generation);
        return NULL;
    }
    om_object *list = om_list_new(0);
    if (list == NULL)
        return NULL;
    for (unsigned s = SPACE_GEN0; s <= SPACE_OLD_B; s++) {
        int g = s < SPACE_OLD_A ? (int)s : 2;
        if ((generation < 0 || generation == g) && append_space(list, s) != 0) {
            om_decref(list);
            return NULL;
        }
    }
    return list;
}

static int visit_is(om_object *o, void *target)
{
    return o == target;
}

om_object *om_gc_get_referrers(om_object *obj)
{
    if (obj == NULL) {
        omi_set_error(OM_EINVAL, "om_gc_get_referrers: obj is NULL");
        return NULL;
    }
    om_object *list = om_list_new(0);
    if (list == NULL)
        return NULL;
    for (unsigned s = SPACE_GEN0; s <= SPACE_OLD_B; s++) {
        omi_gc_head *sentinel = &gc.lists[s];
        for (omi_gc_head *h = head_next(sentinel); h != sentinel; h = head_next(h)) {
            om_object *o = head_object(h);
            if (o == list || o->ob_type->traverse == NULL ||
                o->ob_type->traverse(o, visit_is, obj) == 0)
                continue;
            if (om_list_append(list, o) != 0) {
                om_decref(list);
                return NULL;
            }
        }
    }
    return list;
}

static int visit_append(om_object *o, void *list)
{
    return om_list_append(list, o) != 0;
}

om_object *om_gc_get_referents(om_object *obj)
{
    if (obj == NULL) {
        omi_set_error(OM_EINVAL, "om_gc_get_referents: obj is NULL");
        return NULL;
    }
    om_object *list = om_list_new(0);
    if (list == NULL)
        return NULL;
    if (omi_type_is_gc(obj->ob_type) && obj->ob_type->traverse != NULL &&
        obj->ob_type->traverse(obj, visit_append, list) != 0) {
        om_decref(list);
        return NULL;
    }
    return list;
}

static bool gc_argument_ok(const om_object *obj, const char *function)
{
    if (obj == NULL) {
        omi_set_error(OM_EINVAL, "%s: obj is NULL", function);
        return false;
    }
    if (!omi_type_is_gc(obj->ob_type)) {
        omi_set_error(OM_ETYPE, "%s: '%s' is not a GC type", function, obj->ob_type->name);
        return false;
    }
    return true;
}

int om_gc_track(om_object *obj)
{
    if (!gc_argument_ok(obj, "om_gc_track"))
        return -1;
    omi_gc_track(obj);
    return 0;
}

int om_gc_untrack(om_object *obj)
{
    if (!gc_argument_ok(obj, "om_gc_untrack"))
        return -1;
    omi_gc_untrack(obj);
    return 0;
}

bool om_gc_is_tracked(const om_object *obj)
{
    return obj != NULL && omi_gc_is_tracked(obj);
}

bool om_gc_is_finalized(const om_object *obj)
{
    return obj != NULL && omi_type_is_gc(obj->ob_type) &&
           (omi_gc_head_of(obj)->prev & OMI_GC_FINALIZED) != 0;
}
