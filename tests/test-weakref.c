/*
 * test-weakref.c — weak references: get and clear, callbacks at death by
 * refcount, CPython's rule in collections (a garbage weak reference's
 * callback never runs), clearing before finalizers, the side table under
 * many referents, errors and out-of-memory. Heap back to baseline after
 * every test (tu_live_bytes).
 */
#include <stddef.h>

#include "check.h"
#include "internal.h"
#include "testutil.h"

typedef struct rec {
    OM_OBJECT_HEAD;
    om_object *f[2];
    long id;
} rec;

static const size_t rec_fields[] = {offsetof(rec, f[0]), offsetof(rec, f[1])};
static om_type *rec_type;         /* GC, weakrefable */
static om_type *fin_rec_type;     /* GC, weakrefable, finalizer */
static om_type *leaf_type;        /* not GC, weakrefable */
static om_type *plain_type;       /* GC, not weakrefable */

static om_object *callback_refs[16];
static int callback_calls;
static om_object *seen_in_callback;   /* what om_weakref_get returned inside */
static long collect_in_callback = -2;
static bool callback_collects;
static bool callback_makes_garbage;
static om_object *watched_ref;        /* the finalizer looks at this weak reference */
static om_object *seen_in_finalizer;

static void on_death(om_object *ref)
{
    if (callback_calls < 16)
        callback_refs[callback_calls] = ref;
    callback_calls++;
    seen_in_callback = om_weakref_get(ref);
    if (callback_collects)
        collect_in_callback = om_gc_collect(2);
    if (callback_makes_garbage) {
        om_object *l = om_list_new(0);
        CHECK(om_list_append(l, l) == 0);
        om_decref(l);
    }
}

static void rec_finalize(om_object *self)
{
    (void)self;
    seen_in_finalizer = watched_ref != NULL ? om_weakref_get(watched_ref) : NULL;
}

static om_type *make_type(const char *name, unsigned flags, size_t nfields,
                          void (*finalize)(om_object *))
{
    om_type_spec spec = {
        .name = name,
        .size = sizeof(rec),
        .flags = flags,
        .object_offsets = rec_fields,
        .object_offset_count = nfields,
        .finalize = finalize,
    };
    return om_type_from_spec(&spec);
}

static rec *new_rec(om_type *type)
{
    rec *r = (rec *)om_new(type);
    CHECK(r != NULL);
    return r;
}

static void set_field(rec *r, int i, void *v)
{
    om_incref(OM_OBJ(v));
    OM_SETREF(r->f[i], OM_OBJ(v));
}

static void reset_callbacks(void)
{
    callback_calls = 0;
    seen_in_callback = NULL;
    memset(callback_refs, 0, sizeof callback_refs);
}

/* ---- Death by refcount ---------------------------------------------------- */

static void test_refcount_death(void)
{
    size_t base = tu_live_bytes();
    rec *r = new_rec(rec_type);
    om_object *w1 = om_weakref_new(OM_OBJ(r), on_death);
    om_object *w2 = om_weakref_new(OM_OBJ(r), NULL);
    CHECK(w1 != NULL && w2 != NULL);
    CHECK(om_weakref_get(w1) == OM_OBJ(r) && om_weakref_get(w2) == OM_OBJ(r));
    CHECK(om_refcnt(OM_OBJ(r)) == 1);       /* weak: no count taken */
    CHECK_EQ_SIZE(om_weakref_count(OM_OBJ(r)), 2);
    reset_callbacks();
    om_decref(OM_OBJ(r));
    CHECK(callback_calls == 1 && callback_refs[0] == w1);
    CHECK(seen_in_callback == om_none);     /* cleared before the callback */
    CHECK(om_weakref_get(w1) == om_none && om_weakref_get(w2) == om_none);
    om_decref(w1);
    om_decref(w2);

    /* a weak reference that dies first leaves its referent's list */
    r = new_rec(rec_type);
    om_object *ws[5];
    for (int i = 0; i < 5; i++)
        ws[i] = om_weakref_new(OM_OBJ(r), on_death);
    om_decref(ws[2]);
    om_decref(ws[4]);
    om_decref(ws[0]);
    CHECK_EQ_SIZE(om_weakref_count(OM_OBJ(r)), 2);
    reset_callbacks();
    om_decref(OM_OBJ(r));
    CHECK(callback_calls == 2);
    om_decref(ws[1]);
    om_decref(ws[3]);
    CHECK(omi_weakref_referents == 0);

    /* a referent of a type without the GC flag */
    rec *leaf = new_rec(leaf_type);
    om_object *wl = om_weakref_new(OM_OBJ(leaf), on_death);
    CHECK(!om_gc_is_tracked(OM_OBJ(leaf)));
    reset_callbacks();
    om_decref(OM_OBJ(leaf));
    CHECK(callback_calls == 1 && om_weakref_get(wl) == om_none);
    om_decref(wl);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_errors(void)
{
    size_t base = tu_live_bytes();
    CHECK(om_weakref_new(NULL, NULL) == NULL && om_last_error() == OM_EINVAL);
    rec *p = new_rec(plain_type);
    CHECK(om_weakref_new(OM_OBJ(p), NULL) == NULL && om_last_error() == OM_ETYPE);
    om_object *l = om_list_new(0);
    CHECK(om_weakref_new(l, NULL) == NULL && om_last_error() == OM_ETYPE);
    CHECK(om_weakref_get(l) == NULL && om_last_error() == OM_ETYPE);
    CHECK(om_weakref_get(NULL) == NULL && om_last_error() == OM_EINVAL);
    CHECK(om_weakref_count(NULL) == 0 && om_weakref_count(l) == 0);
    om_decref(l);
    om_decref(OM_OBJ(p));
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- In collections -------------------------------------------------------- */

static void test_collection_rule(void)
{
    size_t base = tu_live_bytes();
    om_gc_collect(2);
    /* the referent is cyclic garbage; the weak reference is held from outside */
    rec *a = new_rec(rec_type), *b = new_rec(rec_type);
    set_field(a, 0, b);
    set_field(b, 0, a);
    om_object *outside = om_weakref_new(OM_OBJ(a), on_death);
    /* a second weak reference that is itself part of the garbage */
    om_object *inside = om_weakref_new(OM_OBJ(b), on_death);
    set_field(a, 1, inside);
    om_decref(inside);
    om_decref(OM_OBJ(a));
    om_decref(OM_OBJ(b));
    reset_callbacks();
    CHECK(om_gc_collect(2) == 3);
    CHECK(callback_calls == 1 && callback_refs[0] == outside);   /* not `inside` */
    CHECK(om_weakref_get(outside) == om_none);
    om_decref(outside);
    CHECK(omi_weakref_referents == 0);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_cleared_before_finalizer(void)
{
    size_t base = tu_live_bytes();
    rec *a = new_rec(fin_rec_type);
    set_field(a, 0, a);
    watched_ref = om_weakref_new(OM_OBJ(a), NULL);
    om_decref(OM_OBJ(a));
    seen_in_finalizer = NULL;
    CHECK(om_gc_collect(2) == 1);
    CHECK(seen_in_finalizer == om_none);
    om_decref(watched_ref);
    watched_ref = NULL;
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_callback_side_effects(void)
{
    size_t base = tu_live_bytes();
    om_gc_collect(2);
    rec *a = new_rec(rec_type);
    set_field(a, 0, a);
    om_object *w = om_weakref_new(OM_OBJ(a), on_death);
    om_decref(OM_OBJ(a));
    callback_collects = true;
    callback_makes_garbage = true;
    reset_callbacks();
    CHECK(om_gc_collect(2) == 1);
    CHECK(callback_calls == 1 && collect_in_callback == 0);   /* no re-entry */
    callback_collects = false;
    callback_makes_garbage = false;
    CHECK(om_gc_collect(2) == 1);   /* the callback's cycle */
    om_decref(w);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* A collection with weak references and callbacks allocates nothing. */
static void test_collection_without_memory(void)
{
    size_t base = tu_live_bytes();
    om_gc_collect(2);
    om_object *refs[20];
    for (int i = 0; i < 20; i++) {
        rec *a = new_rec(rec_type);
        set_field(a, 0, a);
        refs[i] = om_weakref_new(OM_OBJ(a), on_death);
        om_decref(OM_OBJ(a));
    }
    long fails[OM_DOMAIN_COUNT];
    for (int d = 0; d < OM_DOMAIN_COUNT; d++) {
        fails[d] = om_fail_count((om_domain)d);
        om_fail_after((om_domain)d, 0);
    }
    reset_callbacks();
    long found = om_gc_collect(2);
    for (int d = 0; d < OM_DOMAIN_COUNT; d++) {
        CHECK(om_fail_count((om_domain)d) == fails[d]);
        om_fail_after((om_domain)d, -1);
    }
    CHECK(found == 20 && callback_calls == 20);
    for (int i = 0; i < 20; i++)
        om_decref(refs[i]);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- The side table ---------------------------------------------------------- */

static void test_many_referents(void)
{
    size_t base = tu_live_bytes();
    size_t n = OM_TEST_SCALE(20000);
    rec **objs = malloc(n * sizeof *objs);
    om_object **refs = malloc(2 * n * sizeof *refs);
    for (size_t i = 0; i < n; i++) {
        objs[i] = new_rec(rec_type);
        objs[i]->id = (long)i;
        refs[2 * i] = om_weakref_new(OM_OBJ(objs[i]), NULL);
        refs[2 * i + 1] = om_weakref_new(OM_OBJ(objs[i]), on_death);
    }
    CHECK_EQ_SIZE(omi_weakref_referents, n);
    tu_rng rng = {99};
    size_t *order = malloc(n * sizeof *order);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    tu_shuffle(&rng, (void **)order, n);
    reset_callbacks();
    size_t wrong = 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = order[k];
        if (k % 3 == 0)
            OM_CLEAR(refs[2 * i + 1]);   /* some weak references die first */
        om_decref(OM_OBJ(objs[i]));
        objs[i] = NULL;
        /* every other weak reference still finds its own referent */
        if (k % 997 == 0)
            for (size_t j = 0; j < n; j++)
                if (objs[j] != NULL)
                    wrong += om_weakref_get(refs[2 * j]) != OM_OBJ(objs[j]);
    }
    CHECK_EQ_SIZE(wrong, 0);
    CHECK_EQ_SIZE((size_t)callback_calls, n - (n + 2) / 3);
    CHECK_EQ_SIZE(omi_weakref_referents, 0);
    for (size_t i = 0; i < 2 * n; i++) {
        if (refs[i] != NULL) {
            CHECK(om_weakref_get(refs[i]) == om_none);
            om_decref(refs[i]);
        }
    }
    free(order);
    free(objs);
    free(refs);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_out_of_memory(void)
{
    size_t base = tu_live_bytes();
    rec *r = new_rec(rec_type);
    om_fail_after(OM_DOMAIN_OBJ, 0);
    CHECK(om_weakref_new(OM_OBJ(r), NULL) == NULL && om_last_error() == OM_ENOMEM);
    om_fail_after(OM_DOMAIN_OBJ, -1);
    /* the side table's first allocation (RAW) fails: run first of all */
    CHECK(omi_weakref_referents == 0);
    om_fail_after(OM_DOMAIN_RAW, 0);
    om_object *w = om_weakref_new(OM_OBJ(r), NULL);
    om_fail_after(OM_DOMAIN_RAW, -1);
    CHECK(w == NULL && om_last_error() == OM_ENOMEM);
    CHECK(om_weakref_count(OM_OBJ(r)) == 0 && omi_weakref_referents == 0);
    w = om_weakref_new(OM_OBJ(r), NULL);
    CHECK(w != NULL && om_weakref_count(OM_OBJ(r)) == 1);
    om_decref(OM_OBJ(r));
    CHECK(om_weakref_get(w) == om_none);
    om_decref(w);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

int main(void)
{
    rec_type = make_type("rec", OM_TYPE_WEAKREFABLE, 2, NULL);
    fin_rec_type = make_type("fin_rec", OM_TYPE_WEAKREFABLE, 2, rec_finalize);
    leaf_type = make_type("leaf", OM_TYPE_WEAKREFABLE, 0, NULL);
    plain_type = make_type("plain", 0, 2, NULL);
    CHECK(rec_type && fin_rec_type && leaf_type && plain_type);
    test_out_of_memory();
    test_refcount_death();
    test_errors();
    test_collection_rule();
    test_cleared_before_finalizer();
    test_callback_side_effects();
    test_collection_without_memory();
    test_many_referents();
    om_type_delete(rec_type);
    om_type_delete(fin_rec_type);
    om_type_delete(leaf_type);
    om_type_delete(plain_type);
    return check_report();
}
