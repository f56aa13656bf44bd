/*
 * test-gc.c — the cycle collector: cycles of every container type, random
 * graphs against a reachability model, PEP 442 finalizers and resurrection,
 * legacy finalizers and SAVEALL, thresholds and the pending rule, freeze,
 * introspection, callbacks and re-entrancy, debug output, fault injection,
 * collect-and-retry on out-of-memory, and incremental mode on a big heap.
 * Every test leaves the heap as it found it (tu_live_bytes).
 */
#include <stddef.h>
#include <time.h>

#include "check.h"
#include "internal.h"
#include "testutil.h"

/* ---- A record type with three object fields ---------------------------- */

typedef struct node {
    OM_OBJECT_HEAD;
    om_object *f[3];
    long id;
} node;

static const size_t node_fields[] = {offsetof(node, f[0]), offsetof(node, f[1]),
                                     offsetof(node, f[2])};
static om_type *node_type;            /* plain */
static om_type *fin_type;             /* with a PEP 442 finalizer */
static om_type *legacy_type;          /* with a legacy finalizer */
static long destroyed;                /* destroy calls */
static unsigned char *destroyed_ids;  /* destroyed_ids[id] = 1 when destroyed (model tests) */
static size_t destroyed_ids_count;
static long finalized;                /* finalize calls */
static om_object *resurrect_slot;     /* a finalizer may store its object here */
static bool resurrect_next;           /* the next finalizer resurrects */
static bool collect_in_finalizer;     /* the finalizer calls om_gc_collect */
static long nested_collect_result = -2;

static void node_destroy(om_object *self)
{
    destroyed++;
    long id = ((node *)self)->id;
    if (destroyed_ids != NULL && id >= 0 && (size_t)id < destroyed_ids_count)
        destroyed_ids[id]++;
}

static void node_finalize(om_object *self)
{
    finalized++;
    if (collect_in_finalizer)
        nested_collect_result = om_gc_collect(2);
    if (resurrect_next) {
        resurrect_next = false;
        om_incref(self);
        resurrect_slot = self;
    }
}

static om_type *make_type(const char *name, unsigned flags, void (*finalize)(om_object *))
{
    om_type_spec spec = {
        .name = name,
        .size = sizeof(node),
        .flags = flags,
        .object_offsets = node_fields,
        .object_offset_count = 3,
        .finalize = finalize,
        .destroy = node_destroy,
    };
    return om_type_from_spec(&spec);
}

static node *new_node(om_type *type, long id)
{
    node *n = (node *)om_new(type);
    CHECK(n != NULL);
    n->id = id;
    return n;
}

/* Stores a new reference to v in field i of n. */
static void set_field(node *n, int i, void *v)
{
    om_incref(OM_OBJ(v));
    OM_SETREF(n->f[i], OM_OBJ(v));
}

/* Links a and b into a two-cycle and drops the caller's references to
 * both: garbage that only a collection can free. */
static void make_garbage_pair(node *a, node *b)
{
    set_field(a, 0, b);
    set_field(b, 0, a);
    om_decref(OM_OBJ(a));
    om_decref(OM_OBJ(b));
}

static size_t garbage_size(void)
{
    return (size_t)om_list_size(om_gc_garbage());
}

/* ---- Cycles of every container type --------------------------------------- */

static void test_self_cycles(void)
{
    size_t base = tu_live_bytes();
    om_gc_collect(2);

    om_object *l = om_list_new(0);
    CHECK(om_list_append(l, l) == 0);
    om_object *d = om_dict_new();
    om_object *k = om_str_from_cstr("self");
    CHECK(om_dict_set(d, k, d) == 0);
    om_decref(k);
    node *n = new_node(node_type, 1);
    set_field(n, 0, n);
    /* a tuple on a cycle through a list */
    om_object *l2 = om_list_new(0);
    om_object *t = om_tuple_pack(1, l2);
    CHECK(om_gc_is_tracked(t));
    CHECK(om_list_append(l2, t) == 0);
    om_decref(t);
    size_t with_cycles = tu_live_bytes();
    om_decref(l);
    om_decref(d);
    om_decref(OM_OBJ(n));
    om_decref(l2);
    CHECK_EQ_SIZE(tu_live_bytes(), with_cycles);   /* refcounting cannot free them */
    destroyed = 0;
    long found = om_gc_collect(2);
    CHECK(found == 5);
    CHECK(destroyed == 1);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* A ring of n nodes linked through field 0 (ids 0 … n-1, or all -1): the
 * caller holds one reference, to the first node. */
static node *make_ring(size_t n, bool numbered)
{
    node *first = new_node(node_type, numbered ? 0 : -1), *prev = first;
    for (size_t i = 1; i < n; i++) {
        node *x = new_node(node_type, numbered ? (long)i : -1);
        set_field(prev, 0, x);
        if (prev != first)
            om_decref(OM_OBJ(prev));
        prev = x;
    }
    set_field(prev, 0, first);
    if (prev != first)
        om_decref(OM_OBJ(prev));
    return first;
}

static void test_long_ring(void)
{
    size_t base = tu_live_bytes();
    size_t n = OM_TEST_SCALE(200000);
    om_decref(OM_OBJ(make_ring(n, true)));
    destroyed = 0;
    om_gc_collect(2);
    CHECK_EQ_SIZE(destroyed, n);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Random graphs against a model of reachability -------------------------- */

static void model_mark(size_t count, const uint32_t *edges, unsigned char *reach, size_t root,
                       uint32_t *stack)
{
    size_t top = 0;
    if (reach[root])
        return;
    reach[root] = 1;
    stack[top++] = (uint32_t)root;
    while (top > 0) {
        uint32_t v = stack[--top];
        for (int j = 0; j < 3; j++) {
            uint32_t w = edges[v * 3 + j];
            if (w < count && !reach[w]) {
                reach[w] = 1;
                stack[top++] = w;
            }
        }
    }
}

static void random_graph_round(uint64_t seed, size_t count, int promote)
{
    size_t base = tu_live_bytes();
    tu_rng rng = {seed};
    node **nodes = calloc(count, sizeof *nodes);
    uint32_t *edges = malloc(count * 3 * sizeof *edges);
    unsigned char *reach = calloc(count, 1), *is_root = calloc(count, 1);
    uint32_t *stack = malloc(count * sizeof *stack);
    destroyed_ids = calloc(count, 1);
    destroyed_ids_count = count;
    for (size_t i = 0; i < count; i++)
        nodes[i] = new_node(node_type, (long)i);
    for (size_t i = 0; i < count; i++) {
        for (int j = 0; j < 3; j++) {
            uint64_t r = tu_rng_next(&rng);
            /* a third of the fields stay empty; the rest point anywhere */
            edges[i * 3 + j] = r % 3 == 0 ? UINT32_MAX : (uint32_t)((r >> 8) % count);
            if (edges[i * 3 + j] != UINT32_MAX)
                set_field(nodes[i], j, nodes[edges[i * 3 + j]]);
        }
    }
    if (promote)
        om_gc_collect(promote);    /* some of the graph lives in older generations */
    for (size_t i = 0; i < count; i++)
        is_root[i] = tu_rng_next(&rng) % 50 == 0;
    for (size_t i = 0; i < count; i++)
        if (is_root[i])
            model_mark(count, edges, reach, i, stack);
    for (size_t i = 0; i < count; i++)
        if (!is_root[i])
            om_decref(OM_OBJ(nodes[i]));
    /* refcounting alone never frees a reachable node */
    bool sound = true;
    for (size_t i = 0; i < count; i++)
        sound &= !(reach[i] && destroyed_ids[i]);
    CHECK(sound);
    om_gc_collect(2);
    size_t wrong = 0;
    for (size_t i = 0; i < count; i++)
        wrong += destroyed_ids[i] != (reach[i] ? 0 : 1);
    CHECK_EQ_SIZE(wrong, 0);
    for (size_t i = 0; i < count; i++)
        if (is_root[i])
            om_decref(OM_OBJ(nodes[i]));
    om_gc_collect(2);
    size_t leftover = 0;
    for (size_t i = 0; i < count; i++)
        leftover += destroyed_ids[i] != 1;
    CHECK_EQ_SIZE(leftover, 0);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
    free(destroyed_ids);
    destroyed_ids = NULL;
    free(nodes);
    free(edges);
    free(reach);
    free(is_root);
    free(stack);
}

static void test_random_graphs(void)
{
    for (uint64_t seed = 1; seed <= 6; seed++)
        random_graph_round(0x9e3779b9ULL * seed, OM_TEST_SCALE(20000) + seed * 7, (int)(seed % 3));
}

/* ---- Finalizers ------------------------------------------------------------------ */

static void test_finalizer_cycle(void)
{
    size_t base = tu_live_bytes();
    make_garbage_pair(new_node(fin_type, 1), new_node(fin_type, 2));
    finalized = destroyed = 0;
    CHECK(om_gc_collect(2) == 2);
    CHECK(finalized == 2);
    CHECK(destroyed == 2);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_resurrection(void)
{
    size_t base = tu_live_bytes();
    node *a = new_node(fin_type, 1), *b = new_node(fin_type, 2);
    node *c = new_node(node_type, 3);
    set_field(a, 0, b);
    set_field(b, 0, a);
    set_field(a, 1, c);
    om_decref(OM_OBJ(a));
    om_decref(OM_OBJ(b));
    om_decref(OM_OBJ(c));
    finalized = destroyed = 0;
    resurrect_next = true;     /* the first finalizer stores its object */
    long found = om_gc_collect(2);
    CHECK(found == 3);
    CHECK(finalized == 2);
    CHECK(destroyed == 0);     /* everything is reachable from the resurrected one */
    CHECK(resurrect_slot != NULL);
    node *r = (node *)resurrect_slot;
    node *other = (node *)r->f[0];
    CHECK(om_gc_is_finalized(OM_OBJ(r)) && om_gc_is_finalized(OM_OBJ(other)));
    CHECK(om_gc_is_tracked(OM_OBJ(r)));
    CHECK(((node *)a->f[1])->id == 3);  /* c is still there */
    om_decref(resurrect_slot);
    resurrect_slot = NULL;
    finalized = 0;
    CHECK(om_gc_collect(2) == 3);
    CHECK(finalized == 0);     /* never twice */
    CHECK(destroyed == 3);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_legacy_and_saveall(void)
{
    size_t base = tu_live_bytes();
    node *a = new_node(legacy_type, 1);
    make_garbage_pair(a, new_node(node_type, 2));
    om_gc_stats before[3], after[3];
    om_gc_get_stats(before);
    finalized = destroyed = 0;
    CHECK(om_gc_collect(2) == 2);
    om_gc_get_stats(after);
    CHECK(after[2].uncollectable - before[2].uncollectable == 2);
    CHECK(after[2].collected == before[2].collected);
    CHECK(finalized == 0 && destroyed == 0);
    CHECK_EQ_SIZE(garbage_size(), 1);  /* only the legacy object, as CPython */
    CHECK(om_list_get(om_gc_garbage(), 0) == OM_OBJ(a));
    /* om_gc_garbage holds it now: reachable, not found again */
    CHECK(om_gc_collect(2) == 0);
    CHECK_EQ_SIZE(garbage_size(), 1);
    /* the user breaks the cycle and empties the list */
    OM_CLEAR(a->f[0]);
    CHECK(om_list_clear(om_gc_garbage()) == 0);
    CHECK(destroyed == 2);
    CHECK(finalized == 1);     /* the legacy hook ran at its death by refcount */

    /* SAVEALL: every unreachable object goes to the list */
    node *x = new_node(node_type, 3), *y = new_node(node_type, 4);
    set_field(x, 0, y);
    set_field(y, 0, x);
    om_decref(OM_OBJ(x));
    om_decref(OM_OBJ(y));
    CHECK(om_gc_set_debug(OM_GC_DEBUG_SAVEALL) == 0);
    destroyed = 0;
    CHECK(om_gc_collect(2) == 2);
    CHECK(destroyed == 0);
    CHECK_EQ_SIZE(garbage_size(), 2);
    CHECK(om_gc_set_debug(0) == 0);
    CHECK(om_list_clear(om_gc_garbage()) == 0);
    CHECK(destroyed == 0);     /* still a cycle */
    CHECK(om_gc_collect(2) == 2);
    CHECK(destroyed == 2);
    CHECK(om_gc_set_debug(1 << 9) == -1 && om_last_error() == OM_EINVAL);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_collect_inside_finalizer(void)
{
    size_t base = tu_live_bytes();
    node *a = new_node(fin_type, 1);
    set_field(a, 0, a);
    om_decref(OM_OBJ(a));
    collect_in_finalizer = true;
    nested_collect_result = -2;
    CHECK(om_gc_collect(2) == 1);
    CHECK(nested_collect_result == 0);
    collect_in_finalizer = false;
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Thresholds, counts, the pending rule ------------------------------------------ */

/* A self-referencing list that nobody holds: one tracked allocation that
 * only a collection frees. */
static void drop_self_cycle(void)
{
    om_object *l = om_list_new(0);
    CHECK(l != NULL && om_list_append(l, l) == 0);
    om_decref(l);
}

/* The documented counts while collections find garbage (every collection
 * below finds a self-cycle, so the effective threshold 0 stays threshold 0:
 * test_young_pacing covers the collections that find nothing). */
static void test_thresholds(void)
{
    size_t base = tu_live_bytes();
    long t0, t1, t2, e0;
    om_gc_get_threshold(&t0, &t1, &t2);
    CHECK(t0 == 700 && t1 == 10 && t2 == 10);
    CHECK(om_gc_set_threshold(-1, 1, 1) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_gc_set_threshold(10, 2, 2) == 0);
    om_gc_collect(2);
    long c0, c1, c2;
    om_gc_get_count(&c0, &c1, &c2);
    CHECK(c0 == 0 && c1 == 0 && c2 == 0);
    om_gc_stats s0[3], s1[3];
    om_gc_get_stats(s0);
    om_object *keep[44] = {NULL};
    for (int i = 0; i < 9; i++)
        keep[i] = om_list_new(0);
    drop_self_cycle();                              /* the 10th */
    om_gc_get_count(&c0, &c1, &c2);
    CHECK(c0 == 10);
    om_gc_get_stats(s1);
    CHECK(s1[0].collections == s0[0].collections);
    keep[10] = om_list_new(0);                      /* the 11th passes threshold 0 */
    om_gc_get_stats(s1);
    CHECK(s1[0].collections == s0[0].collections + 1);
    om_gc_get_count(&c0, &c1, &c2);
    CHECK(c0 == 0 && c1 == 1);
    om_gc_get_effective_threshold(&e0, &t1, &t2);
    CHECK(e0 == 10 && t1 == 2 && t2 == 2);
    for (int i = 11; i < 43; i++) {                 /* two more gen-0 collections */
        if (i == 12 || i == 23)
            drop_self_cycle();
        else
            keep[i] = om_list_new(0);
    }
    om_gc_get_stats(s1);
    CHECK(s1[0].collections == s0[0].collections + 3 && s1[1].collections == s0[1].collections);
    om_gc_get_count(&c0, &c1, &c2);
    CHECK(c0 == 10 && c1 == 3);
    om_gc_get_effective_threshold(&e0, NULL, NULL);
    CHECK(e0 == 10);
    keep[43] = om_list_new(0);                      /* count 1 is past 2: generation 1 */
    om_gc_get_stats(s1);
    CHECK(s1[1].collections == s0[1].collections + 1);
    om_gc_get_count(&c0, &c1, &c2);
    CHECK(c0 == 0 && c1 == 0 && c2 == 1);
    om_decref(keep[0]);                             /* a deallocation lowers count 0 */
    om_gc_get_count(&c0, NULL, NULL);
    long before_drop = c0;
    om_decref(keep[1]);
    om_gc_get_count(&c0, NULL, NULL);
    CHECK(c0 == (before_drop > 0 ? before_drop - 1 : 0));
    /* disabled: no automatic collection at all */
    om_gc_disable();
    CHECK(!om_gc_is_enabled());
    om_gc_get_stats(s0);
    om_object *more[50];
    for (int i = 0; i < 50; i++)
        more[i] = om_list_new(0);
    om_gc_get_stats(s1);
    CHECK(s1[0].collections == s0[0].collections);
    om_gc_enable();
    CHECK(om_gc_is_enabled());
    for (int i = 0; i < 50; i++)
        om_decref(more[i]);
    for (int i = 2; i < 44; i++)
        om_xdecref(keep[i]);
    CHECK(om_gc_set_threshold(700, 10, 10) == 0);
    CHECK(om_gc_collect(3) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_gc_collect(-2) == -1);
    CHECK(om_gc_get_stats(NULL) == -1);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static size_t tracked_objects(void)
{
    om_object *all = om_gc_get_objects(-1);
    CHECK(all != NULL);
    size_t n = (size_t)om_list_size(all);
    om_decref(all);
    return n;
}

static size_t automatic_collections(const om_gc_stats before[3])
{
    om_gc_stats now[3];
    om_gc_get_stats(now);
    size_t n = 0;
    for (int g = 0; g < 3; g++)
        n += now[g].collections - before[g].collections;
    return n;
}

/* In incremental mode the bound on the effective threshold 0 also follows
 * the step's object limit (it may fall): at most half of it. */
static long incremental_cap(void)
{
    om_gc_incremental_stats is;
    om_gc_get_incremental_stats(&is);
    return (long)is.step_object_limit / 2;
}

/* An acyclic phase of n tracked allocations (lists held by `held`): each
 * change of the effective threshold 0 is a raise of at most 2×, to at most
 * the tracked objects (in incremental mode, a change to at most 2× and at
 * most incremental_cap()). Returns the automatic collections. */
static size_t acyclic_phase(om_object *held, size_t n, bool incremental)
{
    om_gc_stats s0[3];
    om_gc_get_stats(s0);
    long previous, e0;
    om_gc_get_effective_threshold(&previous, NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        om_object *leaf = om_list_new(0);
        CHECK(leaf != NULL && om_list_append(held, leaf) == 0);
        om_decref(leaf);
        om_gc_get_effective_threshold(&e0, NULL, NULL);
        if (e0 == previous)
            continue;
        CHECK(e0 <= 2 * previous && (size_t)e0 <= tracked_objects() + 1);
        if (incremental)
            CHECK(e0 <= incremental_cap() || e0 == 200);   /* 200: threshold 0 below */
        else
            CHECK(e0 > previous);
        previous = e0;
    }
    return automatic_collections(s0);
}

/* Pacing of the young collections: automatic collections that find no
 * garbage raise the effective threshold 0 (test_thresholds: ones that do
 * keep it); a garbage cycle made after a long acyclic phase is still freed
 * within effective-threshold-0 tracked allocations, and that brings the
 * effective threshold back to threshold 0; om_gc_set_threshold does too;
 * in incremental mode it stays within a step's object limit. */
static void test_young_pacing(void)
{
    size_t base = tu_live_bytes();
    CHECK(om_gc_set_threshold(100, 10, 10) == 0);
    om_gc_collect(2);
    long e0, t0;
    om_gc_get_effective_threshold(&e0, NULL, NULL);
    CHECK(e0 == 100);
    om_object *held = om_list_new(0);
    size_t n = 50000;
    size_t collections = acyclic_phase(held, n, false);
    om_gc_get_effective_threshold(&e0, NULL, NULL);
    om_gc_get_threshold(&t0, NULL, NULL);
    printf("young pacing: %zu automatic collections for %zu acyclic allocations "
           "(threshold 0 = 100: %zu), effective threshold 0 now %ld\n", collections, n,
           n / 101, e0);
    CHECK(t0 == 100);                          /* the configured one is untouched */
    CHECK(e0 >= 16 * 100);
    CHECK(collections <= 2 * 10);              /* doubling: ~log2(n / 100) of them */
    /* a garbage cycle now: freed before effective-threshold-0 more allocations */
    destroyed = 0;
    long c0;
    om_gc_get_count(&c0, NULL, NULL);
    long bound = e0 - c0;
    make_garbage_pair(new_node(node_type, -1), new_node(node_type, -1));
    long allocations = 0;
    while (destroyed < 2 && allocations <= bound) {
        om_object *leaf = om_list_new(0);
        CHECK(om_list_append(held, leaf) == 0);
        om_decref(leaf);
        allocations++;
    }
    printf("young pacing: a garbage pair freed after %ld allocations (bound %ld)\n",
           allocations, bound);
    CHECK(destroyed == 2 && allocations <= bound);
    om_gc_get_effective_threshold(&e0, NULL, NULL);
    CHECK(e0 == 100);                          /* garbage found: back to threshold 0 */
    /* om_gc_set_threshold resets it */
    acyclic_phase(held, 5000, false);
    om_gc_get_effective_threshold(&e0, NULL, NULL);
    CHECK(e0 > 100);
    CHECK(om_gc_set_threshold(200, 10, 10) == 0);
    om_gc_get_effective_threshold(&e0, NULL, NULL);
    CHECK(e0 == 200);
    /* incremental mode: never above half a step's object limit */
    CHECK(om_option_set(OM_OPTION_GC_INCREMENTAL_BUDGET_US, 100) == 0);
    om_gc_collect_step();                      /* sets step_object_limit */
    acyclic_phase(held, 20000, true);
    om_gc_get_effective_threshold(&e0, NULL, NULL);
    CHECK(e0 > 200 && e0 <= incremental_cap());
    CHECK(om_option_set(OM_OPTION_GC_INCREMENTAL_BUDGET_US, 0) == 0);
    om_decref(held);
    CHECK(om_gc_set_threshold(700, 10, 10) == 0);
    om_gc_collect(2);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* Trees that are promoted into generation 2 and then die by refcount. With
 * CPython's rule each batch counts as pending until a full collection runs;
 * here dead ones do not count, so no full collection runs. 600 batches:
 * kept alive, they outgrow what the paced young collections (see
 * test_young_pacing) let pass between two of them several times. */
static long full_collections_in_workload(bool keep_alive)
{
    CHECK(om_gc_set_threshold(100, 2, 2) == 0);
    om_gc_collect(2);
    om_gc_stats s0[3], s1[3];
    om_gc_get_stats(s0);
    om_object *kept = om_list_new(0);
    om_object *long_lived = om_list_new(0);    /* as binary-trees' long-lived tree */
    for (int i = 0; i < 20000; i++) {
        om_object *leaf = om_list_new(0);
        CHECK(om_list_append(long_lived, leaf) == 0);
        om_decref(leaf);
    }
    om_gc_collect(2);
    om_gc_get_stats(s0);
    for (int round = 0; round < 600; round++) {
        om_object *batch = om_list_new(0);
        for (int i = 0; i < 400; i++) {
            om_object *leaf = om_list_new(0);
            CHECK(om_list_append(batch, leaf) == 0);
            om_decref(leaf);
        }
        if (keep_alive)
            CHECK(om_list_append(kept, batch) == 0);
        om_decref(batch);
    }
    om_gc_get_stats(s1);
    om_decref(kept);
    om_decref(long_lived);
    CHECK(om_gc_set_threshold(700, 10, 10) == 0);
    om_gc_collect(2);
    return (long)(s1[2].collections - s0[2].collections);
}

static void test_pending_rule(void)
{
    size_t base = tu_live_bytes();
    long dying = full_collections_in_workload(false);
    long living = full_collections_in_workload(true);
    printf("pending rule: %ld full collections when promoted objects die, %ld when they live\n",
           dying, living);
    CHECK(dying == 0);
    CHECK(living > 0);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* A generation-2 collection fired by the 25 % rule examines the young and
 * the pending objects, and every fourth one the whole heap: a garbage cycle
 * among the young is freed by the first one, a garbage cycle among the old
 * objects from before by one of the next four at the latest. */
static void test_pending_only_collection(void)
{
    size_t base = tu_live_bytes();
    CHECK(om_gc_set_threshold(100, 2, 2) == 0);
    node *old_a = new_node(node_type, 1), *old_b = new_node(node_type, 2);
    set_field(old_a, 0, old_b);
    set_field(old_b, 0, old_a);
    om_gc_collect(2);                       /* the old pair is examined, kept (held) */
    om_decref(OM_OBJ(old_a));               /* now garbage among the old objects */
    om_decref(OM_OBJ(old_b));
    make_garbage_pair(new_node(node_type, 3), new_node(node_type, 4));   /* young garbage */
    destroyed = 0;
    om_gc_stats s0[3], s1[3];
    om_gc_get_stats(s0);
    om_object *kept = om_list_new(0);       /* live objects that get promoted */
    long after_first = -1;
    uint64_t firings = 0;
    for (int i = 0; i < 200000 && destroyed < 4 && firings <= 4; i++) {
        om_object *leaf = om_list_new(0);
        CHECK(om_list_append(kept, leaf) == 0);
        om_decref(leaf);
        om_gc_get_stats(s1);
        firings = s1[2].collections - s0[2].collections;
        if (firings == 1 && after_first < 0)
            after_first = destroyed;
    }
    CHECK(after_first >= 2);                /* the young pair went at the first */
    CHECK(destroyed == 4);                  /* the old pair within four */
    CHECK(firings >= 1 && firings <= 4);
    om_decref(kept);
    CHECK(om_gc_set_threshold(700, 10, 10) == 0);
    om_gc_collect(2);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Freeze ---------------------------------------------------------------------- */

static void test_freeze(void)
{
    size_t base = tu_live_bytes();
    om_gc_collect(2);
    size_t frozen_before = om_gc_get_freeze_count();
    node *a = new_node(node_type, 1);
    set_field(a, 0, a);
    om_gc_freeze();
    CHECK(om_gc_get_freeze_count() > frozen_before);
    om_object *all = om_gc_get_objects(-1);
    CHECK(all != NULL && om_list_size(all) == 0);
    om_decref(all);
    om_decref(OM_OBJ(a));
    destroyed = 0;
    CHECK(om_gc_collect(2) == 0);   /* the permanent generation is not examined */
    CHECK(destroyed == 0);
    om_gc_unfreeze();
    CHECK_EQ_SIZE(om_gc_get_freeze_count(), 0);
    CHECK(om_gc_collect(2) == 1);
    CHECK(destroyed == 1);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Introspection ------------------------------------------------------------------ */

static bool list_holds(om_object *list, om_object *o)
{
    for (ptrdiff_t i = 0; i < om_list_size(list); i++)
        if (om_list_get(list, i) == o)
            return true;
    return false;
}

static void test_introspection(void)
{
    size_t base = tu_live_bytes();
    om_gc_collect(2);
    node *a = new_node(node_type, 1), *b = new_node(node_type, 2), *c = new_node(node_type, 3);
    node *d = new_node(node_type, 4);
    set_field(a, 0, b);
    set_field(a, 2, c);
    set_field(d, 1, b);
    om_object *refs = om_gc_get_referrers(OM_OBJ(b));
    CHECK(refs != NULL && om_list_size(refs) == 2);
    CHECK(list_holds(refs, OM_OBJ(a)) && list_holds(refs, OM_OBJ(d)));
    om_decref(refs);
    om_object *ents = om_gc_get_referents(OM_OBJ(a));
    CHECK(ents != NULL && om_list_size(ents) == 2);
    CHECK(om_list_get(ents, 0) == OM_OBJ(b) && om_list_get(ents, 1) == OM_OBJ(c));
    om_decref(ents);
    om_object *num = om_int_from_i64(1000);
    ents = om_gc_get_referents(num);   /* not a container: empty */
    CHECK(ents != NULL && om_list_size(ents) == 0);
    om_decref(ents);
    om_object *young = om_gc_get_objects(0);
    CHECK(young != NULL && om_list_size(young) == 4);
    CHECK(list_holds(young, OM_OBJ(a)) && !list_holds(young, young));
    om_decref(young);
    om_gc_collect(0);
    om_object *g1 = om_gc_get_objects(1);
    CHECK(g1 != NULL && list_holds(g1, OM_OBJ(d)));
    om_decref(g1);
    CHECK(om_gc_get_objects(3) == NULL && om_last_error() == OM_EINVAL);
    CHECK(om_gc_get_referrers(NULL) == NULL && om_gc_get_referents(NULL) == NULL);
    /* tuples of ints are never tracked; track/untrack/is_tracked */
    om_object *t = om_tuple_pack(2, num, num);
    CHECK(!om_gc_is_tracked(t));
    CHECK(om_gc_is_tracked(OM_OBJ(a)));
    CHECK(om_gc_untrack(OM_OBJ(a)) == 0 && !om_gc_is_tracked(OM_OBJ(a)));
    CHECK(om_gc_track(OM_OBJ(a)) == 0 && om_gc_is_tracked(OM_OBJ(a)));
    CHECK(om_gc_track(num) == -1 && om_last_error() == OM_ETYPE);
    CHECK(om_gc_untrack(NULL) == -1 && om_last_error() == OM_EINVAL);
    CHECK(!om_gc_is_tracked(NULL) && !om_gc_is_finalized(NULL) && !om_gc_is_finalized(num));
    om_decref(t);
    om_decref(num);
    om_decref(OM_OBJ(a));
    om_decref(OM_OBJ(b));
    om_decref(OM_OBJ(c));
    om_decref(OM_OBJ(d));
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Callbacks ---------------------------------------------------------------------- */

typedef struct trace {
    char text[512];
    long nested;                /* what om_gc_collect returned inside */
    bool make_garbage;          /* the START callback makes a cycle */
    bool remove_self;
} trace;

static void trace_cb(om_gc_phase phase, const om_gc_info *info, void *user)
{
    trace *t = user;
    size_t len = strlen(t->text);
    snprintf(t->text + len, sizeof t->text - len, "%s:%d:%zu:%zu ",
             phase == OM_GC_PHASE_START ? "start" : "stop", info->generation, info->collected,
             info->uncollectable);
    t->nested = om_gc_collect(2);
    if (t->make_garbage && phase == OM_GC_PHASE_START) {
        om_object *l = om_list_new(0);
        CHECK(om_list_append(l, l) == 0);
        om_decref(l);
    }
    if (t->remove_self)
        CHECK(om_gc_callback_remove(trace_cb, user) == 0);
}

static void test_callbacks(void)
{
    size_t base = tu_live_bytes();
    om_gc_collect(2);
    trace t = {.make_garbage = true};
    CHECK(om_gc_callback_add(trace_cb, &t) == 0);
    CHECK(om_gc_callback_add(NULL, &t) == -1 && om_last_error() == OM_EINVAL);
    om_object *l = om_list_new(0);
    CHECK(om_list_append(l, l) == 0);
    om_decref(l);
    CHECK(om_gc_collect(2) == 2);   /* the callback's new cycle is in generation 0 */
    CHECK(strcmp(t.text, "start:2:0:0 stop:2:2:0 ") == 0);
    CHECK(t.nested == 0);
    t.make_garbage = false;
    t.text[0] = '\0';
    CHECK(om_gc_collect(1) == 0);
    CHECK(strcmp(t.text, "start:1:0:0 stop:1:0:0 ") == 0);
    t.remove_self = true;           /* removed during the run: not called again */
    t.text[0] = '\0';
    om_gc_collect(0);
    om_gc_collect(0);
    CHECK(strcmp(t.text, "start:0:0:0 ") == 0);
    CHECK(om_gc_callback_remove(trace_cb, &t) == -1 && om_last_error() == OM_EINVAL);
    /* OOM while growing the callback array */
    for (int i = 0; i < 4; i++)
        CHECK(om_gc_callback_add(trace_cb, &t) == 0);
    om_fail_after(OM_DOMAIN_RAW, 0);
    CHECK(om_gc_callback_add(trace_cb, &t) == -1 && om_last_error() == OM_ENOMEM);
    om_fail_after(OM_DOMAIN_RAW, -1);
    for (int i = 0; i < 4; i++)
        CHECK(om_gc_callback_remove(trace_cb, &t) == 0);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Debug output (child process) ------------------------------------------------------ */

static void debug_child(void *arg)
{
    (void)arg;
    om_gc_collect(2);
    om_object *l = om_list_new(0);
    if (om_list_append(l, l) != 0)
        _exit(3);
    om_decref(l);
    node *a = new_node(legacy_type, 1);
    set_field(a, 0, a);
    om_decref(OM_OBJ(a));
    om_gc_set_debug(OM_GC_DEBUG_STATS | OM_GC_DEBUG_COLLECTABLE | OM_GC_DEBUG_UNCOLLECTABLE);
    om_gc_collect(2);
    _exit(0);
}

static void test_debug_output(void)
{
    char buf[4096];
    int status = check_run_child(debug_child, NULL, buf, sizeof buf);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strstr(buf, "gc: collecting generation 2...\n") != NULL);
    CHECK(strstr(buf, "gc: objects in each generation: ") != NULL);
    CHECK(strstr(buf, "gc: objects in permanent generation: 0\n") != NULL);
    CHECK(strstr(buf, "gc: collectable <list 0x") != NULL);
    CHECK(strstr(buf, "gc: uncollectable <legacy 0x") != NULL);
    CHECK(strstr(buf, "gc: done, 2 unreachable, 1 uncollectable, ") != NULL);
    CHECK(strstr(buf, "s elapsed\n") != NULL);
}

/* ---- Fault injection ----------------------------------------------------------------------- */

static void make_mixed_garbage(int rings)
{
    for (int r = 0; r < rings; r++) {
        node *a = new_node(r % 2 ? fin_type : node_type, r);
        om_object *l = om_list_new(0);
        om_object *d = om_dict_new();
        om_object *k = om_int_from_i64(r);
        CHECK(om_list_append(l, OM_OBJ(a)) == 0);
        CHECK(om_dict_set(d, k, l) == 0);
        set_field(a, 0, d);
        om_decref(k);
        om_decref(l);
        om_decref(d);
        om_decref(OM_OBJ(a));
    }
}

static void test_collect_never_allocates(void)
{
    size_t base = tu_live_bytes();
    om_gc_collect(2);
    make_mixed_garbage(50);
    long fails[OM_DOMAIN_COUNT];
    for (int d = 0; d < OM_DOMAIN_COUNT; d++) {
        fails[d] = om_fail_count((om_domain)d);
        om_fail_after((om_domain)d, 0);
    }
    finalized = 0;
    long found = om_gc_collect(2);
    for (int d = 0; d < OM_DOMAIN_COUNT; d++) {
        CHECK(om_fail_count((om_domain)d) == fails[d]);   /* nothing was allocated */
        om_fail_after((om_domain)d, -1);
    }
    CHECK(found == 150);
    CHECK(finalized == 25);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_introspection_oom(void)
{
    size_t base = tu_live_bytes();
    om_object *objs[64];
    for (int i = 0; i < 64; i++)
        objs[i] = om_list_new(0);
    CHECK(om_list_append(objs[0], objs[1]) == 0);
    CHECK(om_list_append(objs[2], objs[1]) == 0);
    for (int d = OM_DOMAIN_MEM; d <= OM_DOMAIN_OBJ; d++) {
        for (int which = 0; which < 3; which++) {
            int failures = 0;
            for (long n = 0; n < 100; n++) {
                om_fail_after((om_domain)d, n);
                om_object *r = which == 0   ? om_gc_get_objects(-1)
                               : which == 1 ? om_gc_get_referrers(objs[1])
                                            : om_gc_get_referents(objs[0]);
                om_fail_after((om_domain)d, -1);
                if (r == NULL) {
                    CHECK(om_last_error() == OM_ENOMEM);
                    failures++;
                    continue;
                }
                om_decref(r);
                break;
            }
            CHECK(failures > 0);
        }
    }
    for (int i = 0; i < 64; i++)
        om_decref(objs[i]);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* An object allocation that fails collects once and retries once, when the
 * collection found garbage; otherwise it fails as before. */
static void test_collect_and_retry(void)
{
    size_t base = tu_live_bytes();
    om_gc_collect(2);
    om_fail_after(OM_DOMAIN_OBJ, 0);
    om_object *l = om_list_new(0);
    om_fail_after(OM_DOMAIN_OBJ, -1);
    CHECK(l == NULL && om_last_error() == OM_ENOMEM);
    make_mixed_garbage(2);
    om_gc_stats s0[3], s1[3];
    om_gc_get_stats(s0);
    om_fail_after(OM_DOMAIN_OBJ, 0);
    l = om_list_new(0);
    om_fail_after(OM_DOMAIN_OBJ, -1);
    CHECK(l != NULL);
    om_gc_get_stats(s1);
    CHECK(s1[2].collections == s0[2].collections + 1);
    CHECK(s1[2].collected == s0[2].collected + 6);
    om_xdecref(l);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Incremental mode ------------------------------------------------------------------------ */

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A heap of `total` tracked objects: live nodes held from a C array (a
 * quarter of them also from one big list, whose closure is larger than a
 * step), interleaved with garbage rings of 2 to 5 nodes. */
static void test_incremental_big_heap(void)
{
    size_t base = tu_live_bytes();
    size_t total = OM_TEST_SCALE((size_t)1200000);
    node **live = malloc(total * sizeof *live);
    size_t nlive = 0, ngarbage = 0;
    om_object *big = om_list_new(0);
    tu_rng rng = {77};
    om_object *rings_holder = om_list_new(0);
    while (nlive + ngarbage < total) {
        if (tu_rng_next(&rng) % 2) {
            node *n = new_node(node_type, -1);
            if (nlive % 64 == 0)
                CHECK(om_list_append(big, OM_OBJ(n)) == 0);
            if (nlive > 0)
                set_field(n, 0, live[tu_rng_next(&rng) % nlive]);   /* acyclic: older only */
            live[nlive++] = n;
        } else {
            size_t len = 2 + tu_rng_next(&rng) % 4;
            node *first = make_ring(len, false);
            CHECK(om_list_append(rings_holder, OM_OBJ(first)) == 0);   /* alive for now */
            om_decref(OM_OBJ(first));
            ngarbage += len;
        }
    }
    om_gc_collect(2);    /* everything in generation 2; the base of the fallback rule */
    om_decref(rings_holder);   /* the rings become garbage, spread through the heap */
    destroyed = 0;
    CHECK(om_option_set(OM_OPTION_GC_INCREMENTAL_BUDGET_US, 2000) == 0);
    om_gc_incremental_stats is0, is;
    om_gc_get_incremental_stats(&is0);
    size_t steps = 0;
    double longest = 0, sum = 0;
    do {
        double t = now_seconds();
        om_gc_collect_step();
        t = now_seconds() - t;
        sum += t;
        longest = t > longest ? t : longest;
        steps++;
        om_gc_get_incremental_stats(&is);
        CHECK(is.last_step_objects <= is.step_object_limit);   /* work bounded per step */
        if (t > 0.004)
            printf("incremental: step %zu took %.2f ms for %zu objects\n", steps, t * 1e3,
                   is.last_step_objects);
    } while (is.sweep_running && steps < 100000);
    size_t limit = is.step_object_limit;
    size_t old_objects = total + 2;   /* + big and the ring holder's list */
    printf("incremental: %zu objects, %zu steps (limit %zu objects), longest step %.2f ms, "
           "mean %.2f ms\n", old_objects, steps, limit, longest * 1e3,
           sum / (double)steps * 1e3);
    CHECK(is.sweeps == is0.sweeps + 1);
    CHECK_EQ_SIZE(destroyed, ngarbage);                /* every ring, in one sweep */
    CHECK(steps <= old_objects / (limit / 4) + 2);   /* the clock may cut at limit/4 */
    CHECK(is.fallbacks == is0.fallbacks);
    double t = now_seconds();
    om_gc_collect(2);
    printf("incremental: a full collection of the same heap took %.2f ms\n",
           (now_seconds() - t) * 1e3);
    CHECK(om_option_set(OM_OPTION_GC_INCREMENTAL_BUDGET_US, 0) == 0);
    om_decref(big);
    for (size_t i = 0; i < nlive; i++)
        om_decref(OM_OBJ(live[i]));
    free(live);
    om_gc_collect(2);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* Automatic incremental mode on a workload that keeps making cyclic garbage
 * that dies old: garbage stays bounded, no stop-the-world full collection. */
static void test_incremental_automatic(void)
{
    size_t base = tu_live_bytes();
    CHECK(om_option_set(OM_OPTION_GC_INCREMENTAL_BUDGET_US, 500) == 0);
    om_gc_collect(2);
    om_gc_stats s0[3], s1[3];
    om_gc_get_stats(s0);
    om_gc_incremental_stats is0, is;
    om_gc_get_incremental_stats(&is0);
    size_t window = 20000, rounds = 400000;
    om_object **slots = calloc(window, sizeof *slots);
    size_t peak = 0;
    tu_rng rng = {5};
    for (size_t i = 0; i < rounds; i++) {
        /* replace a random slot with a fresh 2-cycle: the old one becomes garbage */
        node *a = new_node(node_type, -1), *b = new_node(node_type, -1);
        set_field(a, 0, b);
        set_field(b, 0, a);
        om_decref(OM_OBJ(b));
        size_t j = tu_rng_next(&rng) % window;
        om_xdecref(slots[j]);
        slots[j] = OM_OBJ(a);
        size_t now = tu_live_bytes();
        peak = now > peak ? now : peak;
    }
    om_gc_get_stats(s1);
    om_gc_get_incremental_stats(&is);
    size_t live_bytes = 2 * window * (sizeof(node) + sizeof(omi_gc_head));
    printf("incremental automatic: %zu steps, %zu sweeps, %zu fallbacks, peak %zu KiB for "
           "%zu KiB of live pairs\n", is.steps - is0.steps, is.sweeps - is0.sweeps,
           is.fallbacks - is0.fallbacks, (peak - base) >> 10, live_bytes >> 10);
    CHECK(s1[2].collections == s0[2].collections);   /* no stop-the-world full collection */
    CHECK(is.steps > is0.steps);
    /* garbage: at most twice the live pairs, plus what the young generations
     * hold between their collections (threshold0 × (threshold1 + 1) objects) */
    size_t young = 700 * 11 * (sizeof(node) + sizeof(omi_gc_head));
    CHECK(peak - base < 3 * live_bytes + young);
    for (size_t i = 0; i < window; i++)
        om_xdecref(slots[i]);
    free(slots);
    CHECK(om_option_set(OM_OPTION_GC_INCREMENTAL_BUDGET_US, 0) == 0);
    om_gc_collect(2);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

int main(void)
{
    node_type = make_type("node", 0, NULL);
    fin_type = make_type("fin", 0, node_finalize);
    legacy_type = make_type("legacy", OM_TYPE_LEGACY_FINALIZER, node_finalize);
    CHECK(node_type && fin_type && legacy_type);
    CHECK(om_gc_garbage() != NULL);   /* made once, before any baseline */
    test_self_cycles();
    test_long_ring();
    test_random_graphs();
    test_finalizer_cycle();
    test_resurrection();
    test_legacy_and_saveall();
    test_collect_inside_finalizer();
    test_thresholds();
    test_young_pacing();
    test_pending_rule();
    test_pending_only_collection();
    test_freeze();
    test_introspection();
    test_callbacks();
    test_debug_output();
    test_collect_never_allocates();
    test_introspection_oom();
    test_collect_and_retry();
    test_incremental_big_heap();
    test_incremental_automatic();
    om_type_delete(node_type);
    om_type_delete(fin_type);
    om_type_delete(legacy_type);
    return check_report();
}
