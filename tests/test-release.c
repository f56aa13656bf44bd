/*
 * test-release.c — the plain release path of spec types (object.c,
 * spec_release_run): objects of a type from om_type_from_spec with no
 * destroy and no finalize die without their hooks being dispatched, their
 * blocks going straight back to their pools. Checked here: everything is
 * freed and untracked, in the order the generic path releases it; objects
 * that need the generic path (a finalizer that resurrects, a weak
 * reference, debug hooks, tracing, fault injection) get it in the middle
 * of a plain chain; a corrupted object is a fatal report.
 *
 * The tests that install an allocator wrapper (tracing, fault injection)
 * run last: after the first object block taken through a wrapper, object
 * blocks no longer take the known-pool path for the rest of the process.
 */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>

#include "check.h"
#include "internal.h"
#include "testutil.h"

/* ---- Types ---------------------------------------------------------------- */

/* pnode: a plain spec type (no destroy, no finalize); hnode: the same
 * layout with a destroy that does nothing, which takes the generic path. */
typedef struct pnode {
    OM_OBJECT_HEAD;
    om_object *left;
    om_object *right;
} pnode;

static const size_t pnode_fields[] = {offsetof(pnode, left), offsetof(pnode, right)};
static om_type *pnode_type;
static om_type *hnode_type;
static om_type *weak_pnode_type;   /* plain, OM_TYPE_WEAKREFABLE */

static void destroy_nothing(om_object *self)
{
    (void)self;
}

static om_type *make_type(const char *name, unsigned flags, void (*finalize)(om_object *),
                          void (*destroy)(om_object *))
{
    om_type_spec spec = {
        .name = name,
        .size = sizeof(pnode),
        .flags = flags,
        .object_offsets = pnode_fields,
        .object_offset_count = 2,
        .finalize = finalize,
        .destroy = destroy,
    };
    om_type *t = om_type_from_spec(&spec);
    CHECK(t != NULL);
    return t;
}

static pnode *new_pnode(const om_type *type, om_object *left, om_object *right)
{
    pnode *n = (pnode *)om_new(type);
    CHECK(n != NULL);
    if (n != NULL) {
        n->left = left;
        n->right = right;
    }
    return n;
}

/* A leaf that records its death: its id goes to death_order. */
typedef struct leaf {
    OM_OBJECT_HEAD;
    long id;
} leaf;

#define MAX_DEATHS 4096
static long death_order[MAX_DEATHS];
static size_t deaths;

static void leaf_destroy(om_object *self)
{
    if (deaths < MAX_DEATHS)
        death_order[deaths] = ((leaf *)self)->id;
    deaths++;
}

static const om_type leaf_type = {.name = "leaf", .size = sizeof(leaf), .destroy = leaf_destroy};

static om_object *new_leaf(long id)
{
    leaf *l = (leaf *)om_new(&leaf_type);
    CHECK(l != NULL);
    l->id = id;
    return OM_OBJ(l);
}

/* Tracked objects in generations 0-2 (the list made to count them aside). */
static ptrdiff_t tracked_objects(void)
{
    om_object *all = om_gc_get_objects(-1);
    CHECK(all != NULL);
    ptrdiff_t n = om_list_size(all);
    om_decref(all);
    return n;
}

/* head -> … -> tail through `right`, `length` nodes of `type`; the last
 * holds `tail` (may be NULL), whose reference it takes over. */
static om_object *build_chain(const om_type *type, size_t length, om_object *tail)
{
    om_object *head = tail;
    for (size_t i = 0; i < length; i++)
        head = OM_OBJ(new_pnode(type, NULL, head));
    return head;
}

/* ---- Chains and trees -------------------------------------------------- */

typedef struct chain_job {
    size_t length;
    size_t leaf_deaths;
} chain_job;

static void *release_chain_job(void *arg)
{
    chain_job *job = arg;
    deaths = 0;
    om_object *head = build_chain(pnode_type, job->length, new_leaf(1));
    om_decref(head);
    job->leaf_deaths = deaths;
    return NULL;
}

/* A long plain chain released on a 256 KiB stack: no recursion, all of it
 * freed and untracked, the leaf at its end destroyed once. */
static void test_plain_chain(void)
{
    size_t base = tu_live_bytes();
    ptrdiff_t tracked = tracked_objects();
    chain_job job = {.length = OM_TEST_SCALE(1000000)};
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t t;
    CHECK(pthread_create(&t, &attr, release_chain_job, &job) == 0);
    OM_BEGIN_ALLOW_THREADS
    pthread_join(t, NULL);
    OM_END_ALLOW_THREADS
    pthread_attr_destroy(&attr);
    CHECK_EQ_SIZE(job.leaf_deaths, 1);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
    CHECK(tracked_objects() == tracked);
    CHECK(om_heap_check() == 0);
}

/* A tree of `type` with leaves numbered in build order. */
static om_object *build_tree(const om_type *type, int depth, long *next_id)
{
    if (depth == 0)
        return new_leaf((*next_id)++);
    om_object *left = build_tree(type, depth - 1, next_id);
    om_object *right = build_tree(type, depth - 1, next_id);
    return OM_OBJ(new_pnode(type, left, right));
}

/* The order in which the leaves of a tree die, released from its root. */
static size_t release_order(const om_type *type, long *order)
{
    long next_id = 0;
    om_object *root = build_tree(type, 8, &next_id);
    deaths = 0;
    om_decref(root);
    memcpy(order, death_order, sizeof death_order);
    return deaths;
}

/* The plain path releases a tree in the generic path's order (pushing
 * all dying fields but the last, which goes next). */
static void test_release_order(void)
{
    size_t base = tu_live_bytes();
    static long plain[MAX_DEATHS], hooked[MAX_DEATHS];
    size_t plain_deaths = release_order(pnode_type, plain);
    size_t hooked_deaths = release_order(hnode_type, hooked);
    CHECK_EQ_SIZE(plain_deaths, 256);
    CHECK_EQ_SIZE(hooked_deaths, 256);
    CHECK(memcmp(plain, hooked, 256 * sizeof(long)) == 0);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* Shared children die once, when their last holder dies; immortal fields
 * and fields whose count stays above zero are left alone; a chain that
 * alternates plain and hooked types is all freed. */
static void test_shared_and_mixed(void)
{
    size_t base = tu_live_bytes();
    ptrdiff_t tracked = tracked_objects();
    deaths = 0;
    om_object *shared = new_leaf(7);
    om_incref(shared);
    pnode *b = new_pnode(pnode_type, shared, om_none);
    pnode *a = new_pnode(pnode_type, shared, OM_OBJ(b));
    om_object *kept = new_leaf(8);
    om_incref(kept);
    pnode *c = new_pnode(pnode_type, kept, OM_OBJ(a));
    om_decref(OM_OBJ(c));
    CHECK_EQ_SIZE(deaths, 1);
    CHECK(death_order[0] == 7);
    CHECK(om_refcnt(kept) == 1);
    CHECK(om_is_immortal(om_none));
    om_decref(kept);

    om_object *head = new_leaf(9);
    for (int i = 0; i < 1000; i++)
        head = OM_OBJ(new_pnode(i % 3 == 0 ? hnode_type : pnode_type, NULL, head));
    deaths = 0;
    om_decref(head);
    CHECK_EQ_SIZE(deaths, 1);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
    CHECK(tracked_objects() == tracked);
}

/* Nodes that have been through collections (older generations, pending
 * flags) untrack with the right counts; a cycle of plain nodes is freed
 * by the collector (clear, then release by refcount). */
static void test_old_nodes_and_cycles(void)
{
    size_t base = tu_live_bytes();
    ptrdiff_t tracked = tracked_objects();
    om_object *head = build_chain(pnode_type, 5000, NULL);
    om_gc_collect(0);
    head = build_chain(pnode_type, 5000, head);
    om_gc_collect(1);
    head = build_chain(pnode_type, 5000, head);
    om_gc_collect(2);
    head = build_chain(pnode_type, 5000, head);
    CHECK(tracked_objects() == tracked + 20000);
    om_decref(head);
    CHECK(tracked_objects() == tracked);
    CHECK(om_gc_collect(2) == 0);

    pnode *x = new_pnode(pnode_type, NULL, NULL);
    pnode *y = new_pnode(pnode_type, NULL, NULL);
    x->left = OM_OBJ(y);
    om_incref(OM_OBJ(y));
    y->left = OM_OBJ(x);
    om_incref(OM_OBJ(x));
    om_decref(OM_OBJ(x));
    om_decref(OM_OBJ(y));
    CHECK(om_gc_collect(2) == 2);
    CHECK(tracked_objects() == tracked);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
    CHECK(om_heap_check() == 0);
}

/* ---- The generic path in the middle of a plain chain -------------------- */

static int callbacks;
static om_object *callback_ref;

static void count_callback(om_object *ref)
{
    callbacks++;
    callback_ref = ref;
}

/* A weak reference to a node in the middle: it is cleared and its callback
 * runs once; the whole chain is freed. Without weak references a
 * weakrefable plain type takes the plain path again. */
static void test_weakref_in_chain(void)
{
    size_t base = tu_live_bytes();
    om_object *tail = build_chain(weak_pnode_type, 500, new_leaf(3));
    om_object *head = build_chain(weak_pnode_type, 500, tail);
    om_object *ref = om_weakref_new(tail, count_callback);
    CHECK(ref != NULL);
    callbacks = 0;
    deaths = 0;
    om_decref(head);
    CHECK(callbacks == 1);
    CHECK(callback_ref == ref);
    CHECK(om_weakref_get(ref) == om_none);
    CHECK_EQ_SIZE(deaths, 1);
    om_decref(ref);
    CHECK_EQ_SIZE(tu_live_bytes(), base);

    deaths = 0;
    om_decref(build_chain(weak_pnode_type, 1000, new_leaf(4)));
    CHECK_EQ_SIZE(deaths, 1);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static int finalize_calls;
static om_object *resurrected;

static void finalize_resurrect(om_object *self)
{
    finalize_calls++;
    om_incref(self);
    resurrected = self;
}

/* A node whose finalizer resurrects it, in the middle of a plain chain:
 * the release stops there (the nodes it holds stay alive), the finalizer
 * runs once (PEP 442), and the second death frees the rest. */
static void test_resurrection_in_chain(void)
{
    size_t base = tu_live_bytes();
    ptrdiff_t tracked = tracked_objects();
    om_type *phoenix_type = make_type("phoenix", 0, finalize_resurrect, NULL);
    om_object *tail = build_chain(pnode_type, 100, new_leaf(5));
    om_object *phoenix = OM_OBJ(new_pnode(phoenix_type, NULL, tail));
    om_object *head = build_chain(pnode_type, 100, phoenix);
    finalize_calls = 0;
    resurrected = NULL;
    deaths = 0;
    om_decref(head);
    CHECK(finalize_calls == 1);
    CHECK(resurrected == phoenix);
    CHECK(om_refcnt(phoenix) == 1);
    CHECK(om_gc_is_tracked(phoenix));
    CHECK(om_refcnt(tail) == 1);
    CHECK_EQ_SIZE(deaths, 0);
    CHECK(tracked_objects() == tracked + 101);
    om_decref(resurrected);
    CHECK(finalize_calls == 1);
    CHECK_EQ_SIZE(deaths, 1);
    CHECK(tracked_objects() == tracked);
    om_type_delete(phoenix_type);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Misuse -------------------------------------------------------------- */

typedef struct big_record {
    OM_OBJECT_HEAD;
    om_object *fields[30];
} big_record;

/* A plain node whose type pointer was overwritten with a type of another
 * size: its block does not belong to that size's pools. */
static void child_corrupt_type(void *arg)
{
    (void)arg;
    static const size_t offsets[] = {offsetof(big_record, fields)};
    om_type_spec spec = {.name = "big", .size = sizeof(big_record),
                         .object_offsets = offsets, .object_offset_count = 1};
    om_type *big = om_type_from_spec(&spec);
    om_object *n = OM_OBJ(new_pnode(pnode_type, NULL, NULL));
    n->ob_type = big;
    om_decref(n);
}

/* The same for a plain (non-spec) fixed-size type, freed by the generic
 * path through the known-pool free. */
static void child_corrupt_leaf(void *arg)
{
    (void)arg;
    static const om_type wide_leaf = {.name = "wide", .size = 200};
    om_object *l = new_leaf(1);
    l->ob_type = &wide_leaf;
    om_decref(l);
}

/* With the debug hooks, a plain node is kept dead and a second decref is
 * reported with its type. */
static void child_plain_decref_dead_debug(void *arg)
{
    (void)arg;
    om_setup_debug_hooks();
    om_object *n = OM_OBJ(new_pnode(pnode_type, new_leaf(1), NULL));
    om_decref(n);
    om_decref(n);
}

static void expect_abort(void (*fn)(void *), const char *want1, const char *want2)
{
    char buf[4096];
    int status = check_run_child(fn, NULL, buf, sizeof buf);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(strstr(buf, want1) != NULL);
    CHECK(strstr(buf, want2) != NULL);
    if (strstr(buf, want1) == NULL || strstr(buf, want2) == NULL)
        fprintf(stderr, "child said: %s\n", buf);
}

static void test_misuse_reports(void)
{
    expect_abort(child_corrupt_type, "is not a handed-out block of 272 bytes",
                 "serves class 2");
    expect_abort(child_corrupt_leaf, "is not a handed-out block of 208 bytes",
                 "serves class 1");
    expect_abort(child_plain_decref_dead_debug, "om_decref: object of type 'pnode'",
                 "already freed");
}

/* ---- Allocator wrappers (last: see the top) -------------------------------- */

/* Tracing sees every block of a plain chain come and go. */
static void test_tracing(void)
{
    size_t base = tu_live_bytes();
    CHECK(om_trace_start(1) == 0);
    size_t before = 0, after = 0, peak = 0;
    om_trace_get_traced_memory(&before, &peak);
    om_object *head = build_chain(pnode_type, 1000, NULL);
    om_trace_get_traced_memory(&after, &peak);
    CHECK(after >= before + 1000 * (sizeof(pnode) + sizeof(omi_gc_head)));
    om_decref(head);
    om_trace_get_traced_memory(&after, &peak);
    CHECK_EQ_SIZE(after, before);
    CHECK(om_trace_stop() == 0);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* Building a plain chain fails half-way under fault injection: what was
 * made is freed; blocks made through the wrapper free after it is gone. */
static void test_fault_injection(void)
{
    size_t base = tu_live_bytes();
    om_object *made = build_chain(pnode_type, 10, NULL);
    CHECK(om_fail_after(OM_DOMAIN_OBJ, 100) == 0);
    om_object *head = made;
    pnode *n;
    size_t count = 0;
    while ((n = (pnode *)om_new(pnode_type)) != NULL) {
        n->right = head;
        head = OM_OBJ(n);
        count++;
    }
    CHECK(om_last_error() == OM_ENOMEM);
    CHECK_EQ_SIZE(count, 100);
    om_fail_after(OM_DOMAIN_OBJ, -1);
    om_decref(head);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
    CHECK(om_heap_check() == 0);
}

int main(void)
{
    pnode_type = make_type("pnode", 0, NULL, NULL);
    hnode_type = make_type("hnode", 0, NULL, destroy_nothing);
    weak_pnode_type = make_type("weak pnode", OM_TYPE_WEAKREFABLE, NULL, NULL);
    test_plain_chain();
    test_release_order();
    test_shared_and_mixed();
    test_old_nodes_and_cycles();
    test_weakref_in_chain();
    test_resurrection_in_chain();
    test_misuse_reports();
    test_tracing();
    test_fault_injection();
    om_type_delete(weak_pnode_type);
    om_type_delete(hnode_type);
    om_type_delete(pnode_type);
    return check_report();
}
