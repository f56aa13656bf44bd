/*
 * cycles_and_gc.c — two objects that point at each other are never freed by
 * reference counting; the cycle collector finds and frees them. On the way:
 * a type written by hand (traverse, clear, finalize, destroy), a gc
 * callback that watches each collection, a weak reference whose callback
 * runs when its referent dies, and the finalizer that runs once per object.
 * Build:
 *   cc cycles_and_gc.c $(pkg-config --cflags --libs objmem)
 * The program exits 1 if the collector does not behave as described.
 */
#include <objmem.h>
#include <stdio.h>

/* A node of a graph: a name and one link to another object. */
typedef struct node {
    OM_OBJECT_HEAD;
    const char *name;
    om_object *next;            /* owned reference, may be NULL */
} node;

static int finalized;           /* finalize hooks that ran */
static int weakref_callbacks;   /* weak-reference callbacks that ran */

/* The collector asks a GC type for the references each object holds. */
static int node_traverse(om_object *self, om_visit_fn visit, void *arg)
{
    node *n = (node *)self;
    return n->next != NULL ? visit(n->next, arg) : 0;
}

/* Breaking a garbage cycle: drop the references that can form one. */
static void node_clear(om_object *self)
{
    OM_CLEAR(((node *)self)->next);
}

/* Runs once before the node dies, also when it dies in a cycle (PEP 442). */
static void node_finalize(om_object *self)
{
    printf("  finalize %s\n", ((node *)self)->name);
    finalized++;
}

/* Releases what the node owns; objmem frees the node's block afterwards. */
static void node_destroy(om_object *self)
{
    OM_CLEAR(((node *)self)->next);
}

static const om_type node_type = {
    .name = "node",
    .size = sizeof(node),
    .flags = OM_TYPE_GC | OM_TYPE_WEAKREFABLE,
    .traverse = node_traverse,
    .clear = node_clear,
    .finalize = node_finalize,
    .destroy = node_destroy,
};

static node *node_new(const char *name)
{
    node *n = (node *)om_new(&node_type);
    if (n != NULL)
        n->name = name;
    return n;
}

/* Called at the start and at the end of every collection. */
static void on_collection(om_gc_phase phase, const om_gc_info *info, void *user)
{
    (void)user;
    if (phase == OM_GC_PHASE_START)
        printf("  gc callback: start, generation %d\n", info->generation);
    else
        printf("  gc callback: stop, %zu unreachable, %zu uncollectable\n",
               info->collected, info->uncollectable);
}

static void on_referent_died(om_object *ref)
{
    (void)ref;
    printf("  weak reference callback: the referent is gone\n");
    weakref_callbacks++;
}

static int expect(int ok, const char *what)
{
    if (!ok)
        fprintf(stderr, "unexpected: %s (last error: %s)\n", what, om_last_error_message());
    return ok ? 0 : 1;
}

int main(void)
{
    /* Keep automatic collections out of the way so the output is the same
     * every run; om_gc_collect works either way. */
    om_gc_disable();
    if (om_gc_callback_add(on_collection, NULL) != 0)
        return expect(0, "om_gc_callback_add");

    /* a -> b -> a: each count is 2, one from a variable and one from the other node. */
    node *a = node_new("a"), *b = node_new("b");
    if (a == NULL || b == NULL)
        return expect(0, "node_new");
    a->next = OM_OBJ(b);
    om_incref(OM_OBJ(b));
    b->next = OM_OBJ(a);
    om_incref(OM_OBJ(a));

    om_object *watch = om_weakref_new(OM_OBJ(a), on_referent_died);
    if (watch == NULL)
        return expect(0, "om_weakref_new");

    om_decref(OM_OBJ(a));        /* our references go; the cycle keeps both at 1 */
    om_decref(OM_OBJ(b));
    int failures = 0;
    failures += expect(om_weakref_get(watch) != om_none, "a alive after the decrefs");
    printf("after dropping our references: a is %s, its count %ld (b holds it)\n",
           om_weakref_get(watch) != om_none ? "still alive" : "gone",
           (long)om_refcnt(om_weakref_get(watch)));

    printf("om_gc_collect(2):\n");
    long found = om_gc_collect(2);
    printf("found %ld unreachable objects\n", found);

    failures += expect(found >= 2, "the collector finds the two nodes");
    failures += expect(finalized == 2, "each finalizer ran once");
    failures += expect(weakref_callbacks == 1, "the weak reference's callback ran");
    failures += expect(om_weakref_get(watch) == om_none, "the weak reference is cleared");

    om_decref(watch);
    om_gc_callback_remove(on_collection, NULL);
    om_gc_enable();
    return failures == 0 ? 0 : 1;
}
