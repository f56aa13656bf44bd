/*
 * test-object.c — the object core: counts, release, immortals, types from
 * specs, finalizers, generic operations and their errors, misuse reports.
 */
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <time.h>

#include "check.h"
#include "internal.h"
#include "testutil.h"

/* ---- A record type made from a spec: two object fields --------------- */

typedef struct node {
    OM_OBJECT_HEAD;
    om_object *left;
    om_object *right;
    long payload;
} node;

static const size_t node_fields[] = {offsetof(node, left), offsetof(node, right)};
static om_type *node_type;
static long destroyed_payload_sum;

static void node_destroy_extra(om_object *self)
{
    destroyed_payload_sum += ((node *)self)->payload;
}

static om_type *make_node_type(void (*finalize)(om_object *))
{
    om_type_spec spec = {
        .name = "node",
        .size = sizeof(node),
        .object_offsets = node_fields,
        .object_offset_count = 2,
        .finalize = finalize,
        .destroy = node_destroy_extra,
    };
    return om_type_from_spec(&spec);
}

static node *new_node(long payload)
{
    node *n = (node *)om_new(node_type);
    if (n != NULL)
        n->payload = payload;
    return n;
}

/* ---- Lifecycle ---------------------------------------------------------- */

static void test_lifecycle(void)
{
    size_t base = tu_live_bytes();
    node *n = new_node(7);
    CHECK(n != NULL);
    CHECK(om_refcnt(OM_OBJ(n)) == 1);
    CHECK(n->left == NULL && n->right == NULL);
    CHECK(om_type_of(OM_OBJ(n)) == node_type);
    CHECK(strcmp(om_type_name(OM_OBJ(n)), "node") == 0);
    CHECK(omi_gc_is_tracked(OM_OBJ(n)));
    CHECK(tu_live_bytes() > base);

    om_incref(OM_OBJ(n));
    CHECK(om_refcnt(OM_OBJ(n)) == 2);
    om_decref(OM_OBJ(n));
    CHECK(om_refcnt(OM_OBJ(n)) == 1);

    node *child = new_node(5);
    n->left = OM_OBJ(child);     /* the reference moves into the field */
    destroyed_payload_sum = 0;
    om_decref(OM_OBJ(n));
    CHECK(destroyed_payload_sum == 12);
    CHECK_EQ_SIZE(tu_live_bytes(), base);

    om_xincref(NULL);
    om_xdecref(NULL);
    CHECK(strcmp(om_type_name(NULL), "NULL") == 0);
}

static void test_setref_and_clear(void)
{
    size_t base = tu_live_bytes();
    node *n = new_node(0);
    node *a = new_node(1);
    node *b = new_node(2);
    destroyed_payload_sum = 0;
    n->left = OM_OBJ(a);
    OM_SETREF(n->left, OM_OBJ(b));          /* a dies here */
    CHECK(destroyed_payload_sum == 1);
    CHECK(n->left == OM_OBJ(b));
    OM_CLEAR(n->left);
    CHECK(n->left == NULL);
    CHECK(destroyed_payload_sum == 3);
    OM_CLEAR(n->left);                      /* already NULL: nothing */
    om_decref(OM_OBJ(n));
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Immortal objects ---------------------------------------------------- */

static void test_immortal(void)
{
    CHECK(om_is_immortal(om_none));
    CHECK(om_is_immortal(om_true) && om_is_immortal(om_false));
    intptr_t before = om_refcnt(om_none);
    for (int i = 0; i < 1000; i++)
        om_decref(om_none);
    om_incref(om_none);
    CHECK(om_refcnt(om_none) == before);
    CHECK(om_bool_from(5) == om_true && om_bool_from(0) == om_false);
    CHECK(om_hash(om_true) == 1 && om_hash(om_false) == 0);
    CHECK(om_equal(om_none, om_none) == 1);
    CHECK(om_equal(om_true, om_false) == 0);

    size_t base = tu_live_bytes();
    node *n = new_node(3);
    om_make_immortal(OM_OBJ(n));
    CHECK(om_is_immortal(OM_OBJ(n)));
    om_decref(OM_OBJ(n));
    om_decref(OM_OBJ(n));
    CHECK(om_is_immortal(OM_OBJ(n)));
    CHECK(tu_live_bytes() > base);          /* never freed */
    om_make_immortal(NULL);
}

/* ---- Release without recursion ----------------------------------------- */

typedef struct chain_job {
    size_t length;
    size_t freed;          /* payload sum seen by destroy, = number of nodes */
    double seconds;
    int built;
} chain_job;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Builds head -> n1 -> n2 -> … through `right`, keeping only the head. */
static node *build_chain(size_t length)
{
    node *head = new_node(1);
    node *tail = head;
    for (size_t i = 1; head != NULL && i < length; i++) {
        node *next = new_node(1);
        if (next == NULL) {
            om_decref(OM_OBJ(head));
            return NULL;
        }
        tail->right = OM_OBJ(next);
        tail = next;
    }
    return head;
}

static void *release_chain_job(void *arg)
{
    chain_job *job = arg;
    node *head = build_chain(job->length);
    job->built = head != NULL;
    if (head == NULL)
        return NULL;
    destroyed_payload_sum = 0;
    double t0 = now_seconds();
    om_decref(OM_OBJ(head));
    job->seconds = now_seconds() - t0;
    job->freed = (size_t)destroyed_payload_sum;
    return NULL;
}

/* Runs the release on a thread with a 256 KiB stack: a recursive release
 * of a long chain would overflow it. */
static void run_on_small_stack(void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_t t;
    CHECK(pthread_create(&t, &attr, fn, arg) == 0);
    /* The thread uses the default runtime: let it have the GIL. */
    OM_BEGIN_ALLOW_THREADS
    pthread_join(t, NULL);
    OM_END_ALLOW_THREADS
    pthread_attr_destroy(&attr);
}

static void test_deep_chain_release(void)
{
    size_t base = tu_live_bytes();
    chain_job small = {.length = OM_TEST_SCALE(1000000)};
    chain_job big = {.length = OM_TEST_SCALE(10000000)};
    run_on_small_stack(release_chain_job, &small);
    run_on_small_stack(release_chain_job, &big);
    CHECK(small.built && big.built);
    CHECK_EQ_SIZE(small.freed, small.length);
    CHECK_EQ_SIZE(big.freed, big.length);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
    /* Times are printed, never asserted (shared, noisy machines); the
     * small stack is what proves the release does not recurse. */
    printf("  release: %zu nodes in %.1f ms (%.1f ns/node)\n", big.length,
           big.seconds * 1e3, big.seconds * 1e9 / (double)big.length);
}

/* A binary tree released from its root: the release stack holds more than
 * one object at a time. */
static node *build_tree(int depth, long *count)
{
    node *n = new_node(1);
    (*count)++;
    if (depth > 0) {
        n->left = OM_OBJ(build_tree(depth - 1, count));
        n->right = OM_OBJ(build_tree(depth - 1, count));
    }
    return n;
}

static void test_tree_release(void)
{
    size_t base = tu_live_bytes();
    long count = 0;
    node *root = build_tree(14, &count);
    destroyed_payload_sum = 0;
    om_decref(OM_OBJ(root));
    CHECK(destroyed_payload_sum == count);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Finalizers (PEP 442) --------------------------------------------- */

static int finalize_calls;
static om_object *resurrected;

static void finalize_resurrect(om_object *self)
{
    finalize_calls++;
    om_incref(self);
    resurrected = self;
}

static void finalize_count(om_object *self)
{
    (void)self;
    finalize_calls++;
}

static om_type *plain_node_type;   /* node without a finalizer */

/* A finalizer that makes and drops objects while its owner is released. */
static void finalize_allocates(om_object *self)
{
    (void)self;
    finalize_calls++;
    node *tmp = (node *)om_new(plain_node_type);
    node *inner = (node *)om_new(plain_node_type);
    tmp->payload = 100;
    inner->payload = 1000;
    tmp->left = OM_OBJ(inner);
    om_decref(OM_OBJ(tmp));
}

static void test_finalizers(void)
{
    size_t base = tu_live_bytes();
    om_type *plain = node_type;
    plain_node_type = plain;

    node_type = make_node_type(finalize_resurrect);
    finalize_calls = 0;
    resurrected = NULL;
    node *n = new_node(1);
    om_decref(OM_OBJ(n));
    CHECK(finalize_calls == 1);
    CHECK(resurrected == OM_OBJ(n));
    CHECK(om_refcnt(resurrected) == 1);
    CHECK(omi_gc_head_of(resurrected)->prev & OMI_GC_FINALIZED);
    om_decref(resurrected);                    /* finalized already: dies */
    CHECK(finalize_calls == 1);
    om_type_delete(node_type);

    node_type = make_node_type(finalize_count);
    finalize_calls = 0;
    node *parent = new_node(1);
    parent->left = OM_OBJ(new_node(2));
    om_decref(OM_OBJ(parent));
    CHECK(finalize_calls == 2);
    om_type_delete(node_type);

    node_type = make_node_type(finalize_allocates);
    finalize_calls = 0;
    destroyed_payload_sum = 0;
    parent = new_node(1);
    parent->right = OM_OBJ(new_node(2));
    om_decref(OM_OBJ(parent));
    CHECK(finalize_calls == 2);                /* parent and child; temporaries have none */
    CHECK(destroyed_payload_sum == 1 + 2 + 2 * (100 + 1000));
    om_type_delete(node_type);

    node_type = plain;
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Variable-size objects ---------------------------------------------- */

typedef struct blob {
    OM_OBJECT_VAR_HEAD;
    unsigned char bytes[];
} blob;

static const om_type blob_type = {.name = "blob", .size = sizeof(blob), .item_size = 1};
static const om_type fixed_type = {.name = "fixed", .size = sizeof(om_object)};

static void test_var_objects(void)
{
    size_t base = tu_live_bytes();
    blob *b = (blob *)om_new_var(&blob_type, 1000);
    CHECK(b != NULL);
    CHECK(b->ob_var_head.ob_size == 1000);
    CHECK(tu_is_zero(b->bytes, 1000));
    CHECK_EQ_SIZE(om_sizeof(OM_OBJ(b)), sizeof(blob) + 1000);
    om_decref(OM_OBJ(b));

    om_object *f = om_new(&fixed_type);
    CHECK(f != NULL && om_sizeof(f) == sizeof(om_object));
    CHECK(!omi_gc_is_tracked(f));
    om_decref(f);
    CHECK_EQ_SIZE(tu_live_bytes(), base);

    om_clear_error();
    CHECK(om_new_var(&blob_type, SIZE_MAX / 2) == NULL);
    CHECK(om_last_error() == OM_ENOMEM);
    CHECK(om_new_var(&fixed_type, 3) == NULL && om_last_error() == OM_EINVAL);
    CHECK(om_new(&blob_type) == NULL && om_last_error() == OM_EINVAL);
    CHECK(om_new(NULL) == NULL && om_last_error() == OM_EINVAL);
    CHECK(om_new_var(NULL, 1) == NULL && om_last_error() == OM_EINVAL);
    static const om_type tiny = {.name = "tiny", .size = 4};
    CHECK(om_new(&tiny) == NULL && om_last_error() == OM_EINVAL);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Types from specs: validation --------------------------------------- */

static void test_spec_errors(void)
{
    size_t bad_offsets[] = {4};
    size_t head_offset[] = {0};
    size_t past_end[] = {sizeof(node)};
    om_type_spec spec = {.name = "bad", .size = sizeof(node)};

    CHECK(om_type_from_spec(NULL) == NULL && om_last_error() == OM_EINVAL);
    spec.name = NULL;
    CHECK(om_type_from_spec(&spec) == NULL && om_last_error() == OM_EINVAL);
    spec.name = "bad";
    spec.size = 8;
    CHECK(om_type_from_spec(&spec) == NULL && om_last_error() == OM_EINVAL);
    spec.size = sizeof(node);
    spec.object_offset_count = 1;
    CHECK(om_type_from_spec(&spec) == NULL && om_last_error() == OM_EINVAL);
    spec.object_offsets = bad_offsets;
    CHECK(om_type_from_spec(&spec) == NULL && om_last_error() == OM_EINVAL);
    spec.object_offsets = head_offset;
    CHECK(om_type_from_spec(&spec) == NULL && om_last_error() == OM_EINVAL);
    spec.object_offsets = past_end;
    CHECK(om_type_from_spec(&spec) == NULL && om_last_error() == OM_EINVAL);
    CHECK(strstr(om_last_error_message(), "bad") != NULL);

    /* No object fields: not a GC type. */
    om_type_spec leaf = {.name = "leaf", .size = sizeof(node)};
    om_type *t = om_type_from_spec(&leaf);
    CHECK(t != NULL && (t->flags & OM_TYPE_GC) == 0);
    om_object *o = om_new(t);
    CHECK(o != NULL && om_sizeof(o) == sizeof(node));
    om_decref(o);
    om_type_delete(t);
    CHECK((node_type->flags & OM_TYPE_GC) != 0);

    /* Its name is copied. */
    char name[] = "temporary";
    om_type_spec copied = {.name = name, .size = sizeof(node)};
    t = om_type_from_spec(&copied);
    name[0] = 'X';
    CHECK(t != NULL && strcmp(t->name, "temporary") == 0);
    om_type_delete(t);
}

/* ---- Generic operations and their errors ------------------------------- */

static void test_generic_errors(void)
{
    node *n = new_node(1);
    om_object *o = OM_OBJ(n);
    CHECK(om_hash(o) == -1 && om_last_error() == OM_ETYPE);
    CHECK(strstr(om_last_error_message(), "unhashable type: 'node'") != NULL);
    CHECK(om_iter(o) == NULL && om_last_error() == OM_ETYPE);
    CHECK(strstr(om_last_error_message(), "not iterable") != NULL);
    CHECK(om_next(o) == NULL && om_last_error() == OM_ETYPE);
    int cmp = 0;
    CHECK(om_compare(o, o, &cmp) == -1 && om_last_error() == OM_ETYPE);
    CHECK(om_compare(o, o, NULL) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_equal(o, o) == 1);
    node *other = new_node(1);
    CHECK(om_equal(o, OM_OBJ(other)) == 0);     /* identity only */
    CHECK(om_hash(NULL) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_equal(NULL, o) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_iter(NULL) == NULL && om_last_error() == OM_EINVAL);
    CHECK(om_next(NULL) == NULL && om_last_error() == OM_EINVAL);
    CHECK(om_sizeof(NULL) == 0);
    CHECK_EQ_SIZE(om_sizeof(o), sizeof(node) + sizeof(omi_gc_head));
    om_decref(OM_OBJ(other));
    om_decref(o);
}

/* ---- Out of memory ------------------------------------------------------- */

static void test_out_of_memory(void)
{
    size_t base = tu_live_bytes();
    CHECK(om_fail_after(OM_DOMAIN_OBJ, 0) == 0);
    CHECK(new_node(1) == NULL);
    CHECK(om_last_error() == OM_ENOMEM);
    CHECK(om_fail_after(OM_DOMAIN_OBJ, 0) == 0);
    CHECK(om_new_var(&blob_type, 10) == NULL && om_last_error() == OM_ENOMEM);
    om_fail_after(OM_DOMAIN_OBJ, -1);

    om_type_spec spec = {.name = "x", .size = sizeof(node)};
    CHECK(om_fail_after(OM_DOMAIN_RAW, 0) == 0);
    CHECK(om_type_from_spec(&spec) == NULL && om_last_error() == OM_ENOMEM);
    om_fail_after(OM_DOMAIN_RAW, -1);

    /* A chain whose building fails half-way frees what it made. */
    CHECK(om_fail_after(OM_DOMAIN_OBJ, 500) == 0);
    CHECK(build_chain(1000) == NULL);
    om_fail_after(OM_DOMAIN_OBJ, -1);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Misuse: fatal reports ---------------------------------------------- */

static void child_decref_below_zero(void *arg)
{
    (void)arg;
    static om_object fake = {0, &fixed_type};
    om_decref(&fake);
}

static void child_decref_dead_debug(void *arg)
{
    (void)arg;
    om_setup_debug_hooks();
    node_type = make_node_type(NULL);
    node *n = new_node(1);
    om_decref(OM_OBJ(n));
    om_decref(OM_OBJ(n));
}

static void child_use_dead_debug(void *arg)
{
    (void)arg;
    om_setup_debug_hooks();
    node_type = make_node_type(NULL);
    node *n = new_node(1);
    om_decref(OM_OBJ(n));
    (void)om_hash(OM_OBJ(n));
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
    expect_abort(child_decref_below_zero, "om_decref", "count -1");
    expect_abort(child_decref_dead_debug, "om_decref: object of type 'node'", "already freed");
    expect_abort(child_use_dead_debug, "om_hash: object of type 'node'", "already freed");
}

int main(void)
{
    node_type = make_node_type(NULL);
    CHECK(node_type != NULL);
    test_lifecycle();
    test_setref_and_clear();
    test_var_objects();
    test_spec_errors();
    test_generic_errors();
    test_finalizers();
    test_deep_chain_release();
    test_tree_release();
    test_out_of_memory();
    test_misuse_reports();
    test_immortal();                /* last: leaves an immortal node behind */
    om_type_delete(node_type);
    return check_report();
}
