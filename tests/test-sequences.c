/*
 * test-sequences.c — tuple, list, range and generator: lifecycle with the
 * heap back at its baseline after every test, the tuple tracking rule,
 * list growth and editing, sort stability and errors, ranges near the
 * int64 limits, generator laziness, iterators, deep release, fault
 * injection around every container operation, and use of a freed list
 * under the debug hooks.
 *
 * argv[1] (optional): the length of the long chain (default 10M, 1M under
 * sanitizers).
 */
#include <signal.h>
#include <time.h>

#include "internal.h"
#include "testutil.h"

/* ---- Helpers -------------------------------------------------------------- */

/* Ints of at least this value are fresh objects (not the immortal small ones). */
#define BIG 100000

static om_object *int_of(int64_t v)
{
    om_object *o = om_int_from_i64(v);
    CHECK(o != NULL);
    return o;
}

static int64_t value_of(om_object *o)
{
    int64_t v = INT64_MIN;
    CHECK(om_int_as_i64(o, &v) == 0);
    return v;
}

/* A list of the ints from, from + 1, …, from + n - 1. */
static om_object *list_of_range(int64_t from, size_t n)
{
    om_object *l = om_list_new(0);
    CHECK(l != NULL);
    for (size_t i = 0; i < n; i++) {
        om_object *v = int_of(from + (int64_t)i);
        CHECK(om_list_append(l, v) == 0);
        om_decref(v);
    }
    return l;
}

/* Under the debug hooks (OBJMEM_MALLOC=debug) freed blocks and dead
 * objects wait in quarantines whose contents drift, so live bytes are no
 * leak measure there; the leak checks are made in every other run. */
static bool debug_hooks_on;

static void check_no_leak(size_t base)
{
    if (!debug_hooks_on)
        CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- Tuples --------------------------------------------------------------- */

static void test_tuple_basics(void)
{
    size_t base = tu_live_bytes();
    om_object *t = om_tuple_new(3);
    CHECK(t != NULL && om_is_type(t, &om_tuple_type));
    CHECK(om_tuple_size(t) == 3);
    CHECK(om_tuple_get(t, 0) == om_none && om_tuple_get(t, -1) == om_none);
    CHECK_EQ_SIZE(om_sizeof(t), 16 + 24 + 3 * 8);

    om_object *a = int_of(BIG), *b = int_of(BIG + 1);
    CHECK(om_tuple_set(t, 0, a) == 0 && om_refcnt(a) == 2);
    CHECK(om_tuple_set(t, -1, b) == 0);
    CHECK(om_tuple_set(t, 1, a) == 0 && om_refcnt(a) == 3);
    CHECK(om_tuple_set(t, 1, b) == 0 && om_refcnt(a) == 2);   /* the old item dropped */
    CHECK(om_tuple_get(t, 2) == b && om_tuple_get(t, -3) == a);
    CHECK(om_tuple_get(t, 3) == NULL && om_last_error() == OM_EINDEX);
    CHECK(om_tuple_get(t, -4) == NULL && om_last_error() == OM_EINDEX);
    CHECK(om_tuple_set(t, 3, a) == -1 && om_last_error() == OM_EINDEX);
    CHECK(om_tuple_set(t, 0, t) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_tuple_set(t, 0, NULL) == -1 && om_last_error() == OM_EINVAL);
    om_incref(t);                                   /* shared: immutable now */
    CHECK(om_tuple_set(t, 0, b) == -1 && om_last_error() == OM_EINVAL);
    om_decref(t);
    CHECK(om_tuple_contains(t, b) == 1);
    om_object *c = int_of(BIG + 1);                 /* equal to b, another object */
    CHECK(om_tuple_contains(t, c) == 1);
    om_decref(c);
    CHECK(om_tuple_contains(t, om_none) == 0);

    om_object *items[3] = {a, b, b};
    om_object *u = om_tuple_from_array(items, 3);
    om_object *p = om_tuple_pack(3, a, b, b);
    CHECK(u != NULL && p != NULL);
    CHECK(om_refcnt(a) == 4 && om_refcnt(b) == 7);
    CHECK(om_equal(t, u) == 1 && om_equal(u, p) == 1);
    CHECK(om_hash(t) == om_hash(u) && om_hash(t) != -1);
    om_object *rev = om_tuple_pack(3, b, b, a);
    CHECK(om_equal(t, rev) == 0 && om_hash(t) != om_hash(rev));
    int order = 99;
    CHECK(om_compare(t, rev, &order) == 0 && order < 0);
    CHECK(om_compare(rev, t, &order) == 0 && order > 0);
    CHECK(om_compare(t, u, &order) == 0 && order == 0);
    om_object *shorter = om_tuple_pack(2, a, b);
    CHECK(om_compare(shorter, t, &order) == 0 && order < 0);
    CHECK(om_equal(shorter, t) == 0);
    CHECK(om_compare(t, a, &order) == -1 && om_last_error() == OM_ETYPE);
    CHECK(om_tuple_from_array(NULL, 2) == NULL && om_last_error() == OM_EINVAL);
    om_object *with_null[2] = {a, NULL};
    CHECK(om_tuple_from_array(with_null, 2) == NULL && om_last_error() == OM_EINVAL);
    CHECK(om_tuple_pack(2, a, (om_object *)NULL) == NULL && om_last_error() == OM_EINVAL);
    CHECK(om_refcnt(a) == 6);

    om_object *l = om_list_new(0);
    om_object *unhashable = om_tuple_pack(2, a, l);
    CHECK(om_hash(unhashable) == -1 && om_last_error() == OM_ETYPE);

    CHECK(om_tuple_size(l) == -1 && om_last_error() == OM_ETYPE);
    CHECK(om_tuple_size(NULL) == -1 && om_last_error() == OM_EINVAL);
    CHECK(strstr(om_last_error_message(), "om_tuple_size") != NULL);

    om_object *e = om_tuple_new(0);
    CHECK(e != NULL && om_is_immortal(e) && om_tuple_size(e) == 0);
    CHECK(om_tuple_pack(0) == e && om_tuple_from_array(NULL, 0) == e);
    CHECK(om_equal(e, om_tuple_new(0)) == 1 && om_hash(e) != -1);
    CHECK(om_compare(e, t, &order) == 0 && order < 0);
    om_decref(e);

    for (om_object **o = (om_object *[]){t, u, p, rev, shorter, unhashable, l, a, b, NULL};
         *o != NULL; o++)
        om_decref(*o);
    check_no_leak(base);
}

static void test_tuple_tracking(void)
{
    size_t base = tu_live_bytes();
    om_object *x = int_of(BIG), *s = om_str_from_cstr("text");
    om_object *scalars = om_tuple_pack(3, x, s, om_none);
    CHECK(!omi_gc_is_tracked(scalars));
    om_object *nested = om_tuple_pack(2, scalars, x);       /* untracked tuple inside */
    CHECK(!omi_gc_is_tracked(nested));
    CHECK(!omi_gc_is_tracked(om_tuple_new(0)));

    om_object *l = om_list_new(0);
    CHECK(omi_gc_is_tracked(l));
    om_object *holds_list = om_tuple_pack(2, x, l);
    CHECK(omi_gc_is_tracked(holds_list));
    om_object *holds_tracked = om_tuple_pack(1, holds_list);  /* tracked tuple inside */
    CHECK(omi_gc_is_tracked(holds_tracked));

    om_object *filled = om_tuple_new(2);
    CHECK(!omi_gc_is_tracked(filled));
    CHECK(om_tuple_set(filled, 0, x) == 0 && !omi_gc_is_tracked(filled));
    CHECK(om_tuple_set(filled, 1, l) == 0 && omi_gc_is_tracked(filled));
    om_object *array_items[2] = {s, holds_list};
    om_object *from_array = om_tuple_from_array(array_items, 2);
    CHECK(omi_gc_is_tracked(from_array));

    om_object *it = om_iter(scalars);
    CHECK(it != NULL && omi_gc_is_tracked(it));

    for (om_object **o = (om_object *[]){it, from_array, filled, holds_tracked, holds_list, l,
                                         nested, scalars, s, x, NULL};
         *o != NULL; o++)
        om_decref(*o);
    check_no_leak(base);
}

/* ---- Iterators ------------------------------------------------------------ */

/* Iterates `it` to its end; the items must be first, first + 1, …; returns
 * the count, and checks that the end is NULL with no error, twice. */
static size_t drain_ints(om_object *it, int64_t first, int64_t step)
{
    size_t n = 0;
    om_object *item;
    while ((item = om_next(it)) != NULL) {
        CHECK(value_of(item) == first + (int64_t)n * step);
        om_decref(item);
        n++;
    }
    CHECK(om_last_error() == OM_OK);
    CHECK(om_next(it) == NULL && om_last_error() == OM_OK);
    return n;
}

static void test_iterators(void)
{
    size_t base = tu_live_bytes();
    om_object *l = list_of_range(BIG, 5);
    om_object *it = om_iter(l);
    CHECK(it != NULL && om_is_type(it, &om_list_iterator_type) && omi_gc_is_tracked(it));
    CHECK(om_refcnt(l) == 2);                        /* the iterator holds the list */
    om_object *self = om_iter(it);
    CHECK(self == it);
    om_decref(self);
    om_object *first = om_next(it);
    CHECK(value_of(first) == BIG);
    om_decref(first);
    om_object *more = int_of(BIG + 5);
    CHECK(om_list_append(l, more) == 0);           /* seen by the running iterator */
    om_decref(more);
    CHECK(drain_ints(it, BIG + 1, 1) == 5);
    CHECK(om_refcnt(l) == 1);                        /* dropped at the end */
    om_decref(it);

    om_object *t = om_tuple_pack(3, om_list_get(l, 0), om_list_get(l, 1), om_list_get(l, 2));
    it = om_iter(t);
    CHECK(it != NULL && om_is_type(it, &om_tuple_iterator_type) && om_refcnt(t) == 2);
    CHECK(drain_ints(it, BIG, 1) == 3);
    CHECK(om_refcnt(t) == 1);
    om_decref(it);
    it = om_iter(t);                                 /* dropped before its end */
    om_decref(it);
    CHECK(om_refcnt(t) == 1);

    om_object *empty = om_list_new(0);
    it = om_iter(empty);
    CHECK(om_next(it) == NULL && om_last_error() == OM_OK);
    om_decref(it);
    CHECK(om_next(l) == NULL && om_last_error() == OM_ETYPE);   /* a list is no iterator */

    om_decref(empty);
    om_decref(t);
    om_decref(l);
    check_no_leak(base);
}

/* ---- Lists ---------------------------------------------------------------- */

static bool list_holds(om_object *l, const int64_t *values, size_t n)
{
    if (om_list_size(l) != (ptrdiff_t)n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (value_of(om_list_get(l, (ptrdiff_t)i)) != values[i])
            return false;
    return true;
}

static void test_list_editing(void)
{
    size_t base = tu_live_bytes();
    om_object *l = om_list_new(0);
    CHECK(l != NULL && om_list_size(l) == 0 && om_list_capacity(l) == 0);
    CHECK_EQ_SIZE(om_sizeof(l), 16 + 40);
    for (int64_t v = 1; v <= 3; v++) {
        om_object *o = int_of(v);
        CHECK(om_list_append(l, o) == 0);
        om_decref(o);
    }
    CHECK(list_holds(l, (int64_t[]){1, 2, 3}, 3));
    CHECK_EQ_SIZE(om_sizeof(l), 16 + 40 + 4 * 8);

    om_object *v = int_of(BIG);
    CHECK(om_list_insert(l, 0, v) == 0);                    /* front */
    CHECK(om_list_insert(l, 2, int_of(10)) == 0);           /* middle (small int: immortal) */
    CHECK(om_list_insert(l, 100, int_of(20)) == 0);         /* beyond the end: appends */
    CHECK(om_list_insert(l, -1, int_of(30)) == 0);          /* before the last */
    CHECK(om_list_insert(l, -100, int_of(40)) == 0);        /* before the start: prepends */
    CHECK(list_holds(l, (int64_t[]){40, BIG, 1, 10, 2, 3, 30, 20}, 8));
    CHECK(om_refcnt(v) == 2);

    CHECK(om_list_get(l, -1) == int_of(20) && om_list_get(l, -8) == int_of(40));
    CHECK(om_list_get(l, 8) == NULL && om_last_error() == OM_EINDEX);
    CHECK(om_list_get(l, -9) == NULL && om_last_error() == OM_EINDEX);
    CHECK(om_list_get(l, PTRDIFF_MIN) == NULL && om_last_error() == OM_EINDEX);

    CHECK(om_list_set(l, 1, int_of(50)) == 0 && om_refcnt(v) == 1);   /* old one dropped */
    CHECK(om_list_set(l, -1, v) == 0 && om_refcnt(v) == 2);
    CHECK(om_list_set(l, 8, v) == -1 && om_last_error() == OM_EINDEX);
    CHECK(list_holds(l, (int64_t[]){40, 50, 1, 10, 2, 3, 30, BIG}, 8));

    om_object *last = om_list_pop(l, -1);
    CHECK(last == v && om_refcnt(v) == 2);                  /* ours now */
    om_decref(last);
    om_object *front = om_list_pop(l, 0);
    CHECK(value_of(front) == 40);
    om_object *middle = om_list_pop(l, 2);
    CHECK(value_of(middle) == 10);
    om_decref(front);
    om_decref(middle);
    CHECK(om_list_delete(l, 0) == 0 && om_list_delete(l, -1) == 0 && om_list_delete(l, 1) == 0);
    CHECK(list_holds(l, (int64_t[]){1, 3}, 2));
    CHECK(om_list_delete(l, 2) == -1 && om_last_error() == OM_EINDEX);

    CHECK(om_list_contains(l, int_of(3)) == 1 && om_list_contains(l, int_of(4)) == 0);
    CHECK(om_list_index(l, int_of(3)) == 1);
    CHECK(om_list_index(l, int_of(4)) == -1 && om_last_error() == OM_EVALUE);

    om_object *other = list_of_range(1, 3);
    int order = 0;
    CHECK(om_equal(l, other) == 0);
    CHECK(om_compare(other, l, &order) == 0 && order < 0);  /* [1, 2, 3] < [1, 3] */
    CHECK(om_list_delete(other, 1) == 0 && om_equal(l, other) == 1);
    CHECK(om_compare(l, other, &order) == 0 && order == 0);
    CHECK(om_compare(l, v, &order) == -1 && om_last_error() == OM_ETYPE);
    CHECK(om_hash(l) == -1 && om_last_error() == OM_ETYPE);

    CHECK(om_list_clear(l) == 0 && om_list_size(l) == 0 && om_list_capacity(l) == 0);
    om_object *none = om_list_pop(l, -1);
    CHECK(none == NULL && om_last_error() == OM_EINDEX);
    CHECK(om_list_append(v, v) == -1 && om_last_error() == OM_ETYPE);
    CHECK(om_list_append(l, NULL) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_list_size(NULL) == -1 && om_last_error() == OM_EINVAL);
    CHECK(strstr(om_last_error_message(), "om_list_size") != NULL);

    om_decref(other);
    om_decref(l);
    om_decref(v);
    check_no_leak(base);
}

static void test_list_growth(void)
{
    size_t base = tu_live_bytes();
    om_object *l = om_list_new(0);
    const ptrdiff_t expected[] = {4, 8, 16, 24, 32, 40, 52, 64, 76, 92, 108, 128};
    size_t next = 0, changes = 0;
    ptrdiff_t capacity = 0;
    size_t n = OM_TEST_SCALE(1000000);
    bool appended = true;
    for (size_t i = 0; i < n; i++) {
        appended &= om_list_append(l, om_none) == 0;
        ptrdiff_t now = om_list_capacity(l);
        if (now != capacity) {
            if (next < sizeof expected / sizeof *expected)
                CHECK(now == expected[next++]);
            CHECK(now >= capacity + capacity / 8);  /* geometric: amortised O(1) */
            capacity = now;
            changes++;
        }
    }
    CHECK(appended && om_list_size(l) == (ptrdiff_t)n);
    CHECK(changes < 120);
    CHECK_EQ_SIZE(om_sizeof(l), 16 + 40 + (size_t)capacity * 8);
    /* removals shrink the buffer once less than half of it is used */
    bool deleted = true;
    while (om_list_size(l) > 10)
        deleted &= om_list_delete(l, -1) == 0;
    CHECK(deleted);
    CHECK(om_list_capacity(l) < 40);
    CHECK(om_list_delete(l, 0) == 0);
    CHECK(om_list_insert(l, 4, om_true) == 0 && om_list_get(l, 4) == om_true);
    om_decref(l);

    om_object *sized = om_list_new(1000);
    CHECK(om_list_capacity(sized) == 1000 && om_list_size(sized) == 0);
    om_decref(sized);
    CHECK(om_list_new(SIZE_MAX) == NULL && om_last_error() == OM_ENOMEM);
    check_no_leak(base);
}

/* A removal whose shrink fails still succeeds, and leaves the last error
 * as it was. */
static void test_list_shrink_failure(void)
{
    size_t base = tu_live_bytes();
    om_object *l = list_of_range(BIG, 100);
    ptrdiff_t capacity = om_list_capacity(l);
    bool deleted = true;
    while (om_list_size(l) > capacity / 2)
        deleted &= om_list_delete(l, -1) == 0;
    CHECK(deleted && om_list_capacity(l) == capacity);
    CHECK(om_list_get(l, 1000) == NULL && om_last_error() == OM_EINDEX);   /* pending */
    char message[256];
    snprintf(message, sizeof message, "%s", om_last_error_message());
    om_fail_after(OM_DOMAIN_MEM, 0);
    CHECK(om_list_delete(l, -1) == 0);
    CHECK(om_fail_count(OM_DOMAIN_MEM) > 0);
    om_fail_after(OM_DOMAIN_MEM, -1);
    CHECK(om_list_capacity(l) == capacity && om_list_size(l) == capacity / 2 - 1);
    CHECK(om_last_error() == OM_EINDEX && strcmp(om_last_error_message(), message) == 0);
    CHECK(om_list_delete(l, -1) == 0 && om_list_capacity(l) < capacity);
    CHECK(om_last_error() == OM_EINDEX);
    om_decref(l);
    check_no_leak(base);
}

/* A generator of the ints state->next, … below state->stop; fails (-1, no
 * error set) at state->fail_at. Counts calls and releases. */
typedef struct counter {
    int64_t next;
    int64_t stop;
    int64_t fail_at;
    int calls;
    int releases;
} counter;

static int counter_next(void *state, om_object **item)
{
    counter *c = state;
    c->calls++;
    if (c->next == c->fail_at)
        return -1;
    if (c->next >= c->stop)
        return 0;
    *item = om_int_from_i64(c->next);
    if (*item == NULL)
        return -1;
    c->next++;
    return 1;
}

static void counter_release(void *state)
{
    ((counter *)state)->releases++;
}

static om_object *counter_generator(counter *c, int64_t from, int64_t stop)
{
    *c = (counter){.next = from, .stop = stop, .fail_at = INT64_MIN};
    return om_generator_new(counter_next, c, counter_release);
}

static void test_list_extend(void)
{
    size_t base = tu_live_bytes();
    om_object *l = list_of_range(BIG, 3);
    CHECK(om_list_extend(l, l) == 0);                       /* itself: doubled */
    CHECK(list_holds(l, (int64_t[]){BIG, BIG + 1, BIG + 2, BIG, BIG + 1, BIG + 2}, 6));
    CHECK(om_refcnt(om_list_get(l, 0)) == 2);
    om_object *t = om_tuple_pack(2, om_none, om_true);
    CHECK(om_list_extend(l, t) == 0 && om_list_get(l, 7) == om_true);
    CHECK(om_list_delete(l, 6) == 0 && om_list_delete(l, 6) == 0);
    om_object *r = om_range(0, 3, 1);
    CHECK(om_list_extend(l, r) == 0);
    counter c;
    om_object *g = counter_generator(&c, 3, 5);
    CHECK(om_list_extend(l, g) == 0 && c.releases == 1);
    CHECK(list_holds(l, (int64_t[]){BIG, BIG + 1, BIG + 2, BIG, BIG + 1, BIG + 2, 0, 1, 2, 3, 4},
                     11));
    om_decref(g);

    /* a failure in the middle: the items appended so far are removed again */
    g = counter_generator(&c, BIG, BIG + 100);
    c.fail_at = BIG + 50;
    CHECK(om_list_extend(l, g) == -1 && om_last_error() == OM_EVALUE);
    CHECK(om_list_size(l) == 11 && c.releases == 1);
    om_decref(g);
    CHECK(om_list_extend(l, om_none) == -1 && om_last_error() == OM_ETYPE);
    CHECK(om_list_extend(l, NULL) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_list_size(l) == 11);

    om_decref(r);
    om_decref(t);
    om_decref(l);
    check_no_leak(base);
}

/* ---- Sort ----------------------------------------------------------------- */

static bool is_sorted_stable(om_object *l, om_object *const *original, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        om_object *a = om_list_get(l, (ptrdiff_t)i - 1), *b = om_list_get(l, (ptrdiff_t)i);
        if (value_of(a) > value_of(b))
            return false;
        if (value_of(a) == value_of(b)) {     /* equal: original order kept */
            size_t ia = 0, ib = 0;
            while (original[ia] != a)
                ia++;
            while (original[ib] != b)
                ib++;
            if (ia > ib)
                return false;
        }
    }
    return true;
}

/* Same objects, any order (pointer multiset). */
static bool same_items(om_object *l, om_object *const *items, size_t n)
{
    if (om_list_size(l) != (ptrdiff_t)n)
        return false;
    om_object **seen = calloc(n, sizeof *seen);
    bool same = true;
    for (size_t i = 0; i < n && same; i++) {
        om_object *x = om_list_get(l, (ptrdiff_t)i);
        size_t j = 0;
        while (j < n && (items[j] != x || seen[j] != NULL))
            j++;
        same = j < n;
        if (same)
            seen[j] = x;
    }
    free(seen);
    return same;
}

static void test_list_sort(void)
{
    size_t base = tu_live_bytes();
    tu_rng rng = {0x50f7};
    const size_t sizes[] = {0, 1, 2, 31, 32, 33, 64, 100, 1000, 5000};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        size_t n = sizes[s];
        om_object *l = om_list_new(n);
        om_object **original = malloc((n + 1) * sizeof *original);
        for (size_t i = 0; i < n; i++) {
            /* few distinct values, each a distinct object: stability shows */
            original[i] = int_of(BIG + (int64_t)(tu_rng_next(&rng) % (n / 4 + 1)));
            CHECK(om_list_append(l, original[i]) == 0);
            om_decref(original[i]);
        }
        CHECK(om_list_sort(l) == 0);
        CHECK(same_items(l, original, n) && is_sorted_stable(l, original, n));
        CHECK(om_list_sort(l) == 0 && is_sorted_stable(l, original, n));   /* presorted */
        free(original);
        om_decref(l);
    }

    /* a str among ints: OM_ETYPE, the same items still there */
    for (size_t where = 0; where < 200; where += 37) {
        om_object *l = list_of_range(BIG, 200);
        om_object *items[201];
        om_object *s = om_str_from_cstr("not an int");
        CHECK(om_list_insert(l, (ptrdiff_t)where, s) == 0);
        om_decref(s);
        for (size_t i = 0; i < 201; i++)
            items[i] = om_list_get(l, (ptrdiff_t)i);
        CHECK(om_list_sort(l) == -1 && om_last_error() == OM_ETYPE);
        CHECK(same_items(l, items, 201));
        om_decref(l);
    }
    om_object *two = om_list_new(0);
    CHECK(om_list_append(two, om_none) == 0 && om_list_append(two, om_none) == 0);
    CHECK(om_list_sort(two) == -1 && om_last_error() == OM_ETYPE);  /* None is not orderable */
    CHECK(om_list_size(two) == 2);
    om_decref(two);
    CHECK(om_list_sort(om_none) == -1 && om_last_error() == OM_ETYPE);
    check_no_leak(base);
}

/* A type whose compare appends to a list: the sort must notice. */
static om_object *meddled_list;

static int meddler_compare(om_object *self, om_object *other, int *result)
{
    (void)other;
    (void)self;
    if (om_list_size(meddled_list) == 0)
        CHECK(om_list_append(meddled_list, om_none) == 0);
    *result = 0;
    return 0;
}

static const om_type meddler_type = {
    .name = "meddler", .size = sizeof(om_object), .compare = meddler_compare,
};

static void test_list_sort_meddling(void)
{
    size_t base = tu_live_bytes();
    meddled_list = om_list_new(0);
    om_object *m = om_new(&meddler_type);
    for (int i = 0; i < 40; i++)
        CHECK(om_list_append(meddled_list, m) == 0);
    CHECK(om_list_sort(meddled_list) == -1 && om_last_error() == OM_EVALUE);
    CHECK(om_list_size(meddled_list) == 40 && om_refcnt(m) == 41);
    om_decref(meddled_list);
    om_decref(m);
    check_no_leak(base);
}

/* ---- Ranges --------------------------------------------------------------- */

static void check_range_item(om_object *r, int64_t index, int64_t expected)
{
    om_object *v = om_range_get(r, index);
    CHECK(v != NULL && value_of(v) == expected);
    om_xdecref(v);
}

/* om_range_contains with a fresh int of value v. */
static int range_has(om_object *r, int64_t v)
{
    om_object *o = int_of(v);
    int found = om_range_contains(r, o);
    om_decref(o);
    return found;
}

static void test_range(void)
{
    size_t base = tu_live_bytes();
    om_object *r = om_range(0, 10, 3);
    CHECK(r != NULL && om_range_length(r) == 4);
    check_range_item(r, 0, 0);
    check_range_item(r, 3, 9);
    check_range_item(r, -1, 9);
    check_range_item(r, -4, 0);
    CHECK(om_range_get(r, 4) == NULL && om_last_error() == OM_EINDEX);
    CHECK(om_range_get(r, -5) == NULL && om_last_error() == OM_EINDEX);
    CHECK(om_range_get(r, INT64_MIN) == NULL && om_last_error() == OM_EINDEX);
    om_object *it = om_iter(r);
    CHECK(it != NULL && drain_ints(it, 0, 3) == 4);
    om_decref(it);
    CHECK(range_has(r, 6) == 1 && range_has(r, 7) == 0);
    CHECK(range_has(r, 10) == 0 && range_has(r, -3) == 0);
    CHECK(om_range_contains(r, om_true) == 0 && om_range_contains(r, om_false) == 1);
    om_object *f = om_float_from_double(9.0), *g = om_float_from_double(9.5);
    CHECK(om_range_contains(r, f) == 1 && om_range_contains(r, g) == 0);
    om_decref(f);
    om_decref(g);
    om_object *s = om_str_from_cstr("3");
    CHECK(om_range_contains(r, s) == 0);
    om_decref(s);

    om_object *down = om_range(5, -5, -4);                 /* 5, 1, -3 */
    CHECK(om_range_length(down) == 3);
    it = om_iter(down);
    CHECK(drain_ints(it, 5, -4) == 3);
    om_decref(it);
    CHECK(range_has(down, -3) == 1 && range_has(down, -5) == 0);
    om_object *empty = om_range(5, 5, 1), *empty2 = om_range(0, 10, -1);
    CHECK(om_range_length(empty) == 0 && om_range_length(empty2) == 0);
    CHECK(om_equal(empty, empty2) == 1 && om_equal(r, down) == 0);
    om_object *same = om_range(0, 11, 3);                   /* 0, 3, 6, 9 as r */
    CHECK(om_equal(r, same) == 1);
    it = om_iter(empty);
    CHECK(om_next(it) == NULL && om_last_error() == OM_OK);
    om_decref(it);
    CHECK(om_range(0, 10, 0) == NULL && om_last_error() == OM_EVALUE);
    CHECK(om_range_length(om_none) == -1 && om_last_error() == OM_ETYPE);

    /* near the int64 limits: exact lengths, O(1) memory */
    om_object *all = om_range(INT64_MIN, INT64_MAX, 1);      /* 2^64 - 1 items */
    CHECK(om_range_length(all) == -1 && om_last_error() == OM_EOVERFLOW);
    check_range_item(all, 0, INT64_MIN);
    check_range_item(all, -1, INT64_MAX - 1);
    check_range_item(all, INT64_MAX, -1);
    CHECK(range_has(all, INT64_MAX) == 0);
    CHECK(range_has(all, INT64_MIN) == 1);
    CHECK_EQ_SIZE(om_sizeof(all), om_sizeof(r));
    om_object *thirds = om_range(INT64_MIN, INT64_MAX, 3);
    CHECK(om_range_length(thirds) == INT64_C(6148914691236517205));
    check_range_item(thirds, -1, INT64_MAX - 3);
    CHECK(range_has(thirds, INT64_MAX - 3) == 1);
    CHECK(range_has(thirds, INT64_MAX - 2) == 0);
    om_object *backwards = om_range(INT64_MAX, INT64_MIN, INT64_MIN);   /* 2 items */
    CHECK(om_range_length(backwards) == 2);
    check_range_item(backwards, 1, -1);
    om_object *half = om_range(0, INT64_MAX, 1);
    CHECK(om_range_length(half) == INT64_MAX);
    check_range_item(half, -1, INT64_MAX - 1);
    om_object *top = om_range(INT64_MAX - 5, INT64_MAX, 4);   /* the iterator stops at the edge */
    it = om_iter(top);
    CHECK(drain_ints(it, INT64_MAX - 5, 4) == 2);
    om_decref(it);
    om_object *bottom = om_range(INT64_MIN + 2, INT64_MIN, -1);
    it = om_iter(bottom);
    CHECK(drain_ints(it, INT64_MIN + 2, -1) == 2);
    om_decref(it);

    /* a long range is iterated lazily: memory stays flat */
    it = om_iter(all);
    size_t during = 0;
    for (int i = 0; i < 100000; i++) {
        om_object *v = om_next(it);
        om_decref(v);
        if (i == 10)
            during = tu_live_bytes();
    }
    CHECK(tu_live_bytes() < during + 64 * KB);   /* 100,000 ints kept would be 3 MB */
    om_decref(it);

    for (om_object **o = (om_object *[]){r, down, empty, empty2, same, all, thirds, backwards,
                                         half, top, bottom, NULL};
         *o != NULL; o++)
        om_decref(*o);
    check_no_leak(base);
}

/* ---- Generators ----------------------------------------------------------- */

static om_object *reentered;

static int reentrant_next(void *state, om_object **item)
{
    (void)state;
    om_object *inner = om_next(reentered);
    CHECK(inner == NULL && om_last_error() == OM_EVALUE);
    *item = om_none;
    return 1;
}

static int bad_return_next(void *state, om_object **item)
{
    (void)item;
    return *(int *)state;
}

static void test_generator(void)
{
    size_t base = tu_live_bytes();
    counter c;
    om_object *g = counter_generator(&c, BIG, BIG + 5);
    CHECK(g != NULL && om_is_type(g, &om_generator_type) && omi_gc_is_tracked(g));
    CHECK(c.calls == 0);                                   /* nothing made yet */
    om_object *it = om_iter(g);
    CHECK(it == g && c.calls == 0);
    om_decref(it);
    om_object *v = om_next(g);
    CHECK(value_of(v) == BIG && c.calls == 1);
    om_decref(v);
    v = om_next(g);
    CHECK(value_of(v) == BIG + 1 && c.calls == 2 && c.releases == 0);
    om_decref(v);
    CHECK(drain_ints(g, BIG + 2, 1) == 3);
    CHECK(c.calls == 6 && c.releases == 1);                /* one call reported the end */
    CHECK(om_next(g) == NULL && c.calls == 6);             /* never called again */
    om_decref(g);
    CHECK(c.releases == 1);

    g = counter_generator(&c, 0, 1000);                     /* dropped early */
    v = om_next(g);
    om_decref(v);
    om_decref(g);
    CHECK(c.calls == 1 && c.releases == 1);

    g = counter_generator(&c, 0, 10);
    c.fail_at = 1;
    v = om_next(g);
    om_decref(v);
    CHECK(om_next(g) == NULL && om_last_error() == OM_EVALUE && c.releases == 1);
    CHECK(om_next(g) == NULL && om_last_error() == OM_OK);
    om_decref(g);
    CHECK(c.releases == 1);

    c = (counter){.fail_at = INT64_MIN};
    CHECK(om_generator_new(NULL, &c, counter_release) == NULL && om_last_error() == OM_EINVAL);
    CHECK(c.releases == 1);
    om_object *nothing = om_generator_new(counter_next, &c, NULL);   /* no release: fine */
    c.stop = 0;
    CHECK(om_next(nothing) == NULL && om_last_error() == OM_OK);
    om_decref(nothing);

    reentered = om_generator_new(reentrant_next, NULL, NULL);
    v = om_next(reentered);
    CHECK(v == om_none);
    om_decref(reentered);

    int codes[] = {1, 7};                 /* 1 without an item; an unknown code */
    for (int i = 0; i < 2; i++) {
        om_object *bad = om_generator_new(bad_return_next, &codes[i], NULL);
        CHECK(om_next(bad) == NULL && om_last_error() == OM_EINVAL);
        om_decref(bad);
    }
    check_no_leak(base);
}

/* ---- Deep release ----------------------------------------------------------- */

static void test_deep_release(size_t chain_length)
{
    size_t base = tu_live_bytes();
    size_t depth = OM_TEST_SCALE(1000000);
    om_object *head = om_list_new(0);
    bool built = head != NULL;
    for (size_t i = 1; built && i < depth; i++) {
        om_object *outer = om_list_new(1);
        built = outer != NULL && om_list_append(outer, head) == 0;
        om_decref(head);
        head = outer;
    }
    CHECK(built);
    double t0 = now_seconds();
    om_xdecref(head);
    double nested = now_seconds() - t0;
    check_no_leak(base);

    head = om_tuple_new(0);
    for (size_t i = 0; i < chain_length; i++) {
        om_object *next = om_tuple_pack(1, head);
        om_decref(head);
        head = next;
        if (head == NULL)
            break;
    }
    CHECK(head != NULL && !omi_gc_is_tracked(head));
    t0 = now_seconds();
    om_xdecref(head);
    double chain = now_seconds() - t0;
    check_no_leak(base);
    printf("deep release: %zu nested lists in %.3f s (%.1f ns each), %zu-tuple chain in %.3f s "
           "(%.1f ns each)\n", depth, nested, nested * 1e9 / (double)depth, chain_length, chain,
           chain * 1e9 / (double)chain_length);
}

/* ---- Use of a freed list under the debug hooks ------------------------------ */

static void append_to_freed_list(void *arg)
{
    (void)arg;
    om_setup_debug_hooks();
    om_object *l = om_list_new(0);
    om_decref(l);
    (void)om_list_append(l, om_none);
}

static void test_freed_list(void)
{
    char report[4096];
    int status = check_run_child(append_to_freed_list, NULL, report, sizeof report);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(strstr(report, "'list'") != NULL);
    CHECK(strstr(report, "om_list_append") != NULL);
    if (check_failed)
        fprintf(stderr, "child report: %s\n", report);
}

/* ---- Fault injection ---------------------------------------------------------- */

/* A list operation under test: the list is built before faults are armed. */
typedef struct fault_case {
    const char *name;
    size_t initial;                                  /* items of the list before */
    int (*run)(om_object *list, om_object **made);   /* 0 or -1; *made: a new object */
} fault_case;

static int run_append(om_object *l, om_object **made)
{
    (void)made;
    return om_list_append(l, om_none);
}

static int run_insert(om_object *l, om_object **made)
{
    (void)made;
    return om_list_insert(l, 1, om_none);
}

static int run_extend_tuple(om_object *l, om_object **made)
{
    (void)made;
    om_object *t = om_tuple_pack(3, om_none, om_true, om_false);
    if (t == NULL)
        return -1;
    int rc = om_list_extend(l, t);
    om_decref(t);
    return rc;
}

static int run_extend_range(om_object *l, om_object **made)
{
    (void)made;
    om_object *r = om_range(BIG, BIG + 20, 1);
    if (r == NULL)
        return -1;
    int rc = om_list_extend(l, r);
    om_decref(r);
    return rc;
}

static counter fault_counter;

static int run_extend_generator(om_object *l, om_object **made)
{
    (void)made;
    om_object *g = counter_generator(&fault_counter, BIG, BIG + 20);
    if (g == NULL)
        return -1;
    int rc = om_list_extend(l, g);
    om_decref(g);
    CHECK(fault_counter.releases == 1);
    return rc;
}

static int run_sort(om_object *l, om_object **made)
{
    (void)made;
    return om_list_sort(l);
}

static int run_iter(om_object *l, om_object **made)
{
    *made = om_iter(l);
    return *made != NULL ? 0 : -1;
}

static int run_pack(om_object *l, om_object **made)
{
    *made = om_tuple_pack(3, l, om_none, l);
    return *made != NULL ? 0 : -1;
}

static int run_tuple_iter(om_object *l, om_object **made)
{
    om_object *t = om_tuple_pack(1, l);
    if (t == NULL)
        return -1;
    *made = om_iter(t);
    om_decref(t);
    return *made != NULL ? 0 : -1;
}

static int run_range_iter(om_object *l, om_object **made)
{
    (void)l;
    om_object *r = om_range(0, 10, 1);
    if (r == NULL)
        return -1;
    *made = om_iter(r);
    om_decref(r);
    return *made != NULL ? 0 : -1;
}

static int run_list_new(om_object *l, om_object **made)
{
    (void)l;
    *made = om_list_new(100);
    return *made != NULL ? 0 : -1;
}

static int run_generator_new(om_object *l, om_object **made)
{
    (void)l;
    fault_counter = (counter){.stop = 1};
    *made = om_generator_new(counter_next, &fault_counter, counter_release);
    if (*made == NULL)
        CHECK(fault_counter.releases == 1);
    return *made != NULL ? 0 : -1;
}

static const fault_case fault_cases[] = {
    {"append (growth)", 4, run_append},
    {"insert (growth)", 8, run_insert},
    {"extend from a tuple", 4, run_extend_tuple},
    {"extend from a range", 4, run_extend_range},
    {"extend from a generator", 4, run_extend_generator},
    {"sort", 100, run_sort},
    {"list iterator", 4, run_iter},
    {"tuple pack", 4, run_pack},
    {"tuple iterator", 4, run_tuple_iter},
    {"range iterator", 0, run_range_iter},
    {"list new", 0, run_list_new},
    {"generator new", 0, run_generator_new},
};

/* A list of `n` distinct ints in descending order, filled to capacity. */
static om_object *fault_list(size_t n)
{
    om_object *l = om_list_new(n);
    for (size_t i = 0; i < n; i++) {
        om_object *v = int_of(BIG + (int64_t)(n - i));
        CHECK(om_list_append(l, v) == 0);
        om_decref(v);
    }
    return l;
}

/* Runs one case with the n-th allocation of `domain` failing; true once
 * the operation succeeded. */
static bool fault_run_once(const fault_case *fc, om_domain domain, long n)
{
    size_t base = tu_live_bytes();
    om_object *l = fault_list(fc->initial);
    om_object *before[128];
    intptr_t counts[128];
    for (size_t i = 0; i < fc->initial; i++) {
        before[i] = om_list_get(l, (ptrdiff_t)i);
        counts[i] = om_refcnt(before[i]);
    }
    om_object *made = NULL;
    om_clear_error();
    om_fail_after(domain, n);
    int rc = fc->run(l, &made);
    om_fail_after(domain, -1);
    if (rc != 0) {
        bool unchanged = om_list_size(l) == (ptrdiff_t)fc->initial && made == NULL;
        for (size_t i = 0; unchanged && i < fc->initial; i++)
            unchanged = om_list_get(l, (ptrdiff_t)i) == before[i] && om_refcnt(before[i]) == counts[i];
        CHECK(om_last_error() == OM_ENOMEM);
        CHECK(unchanged);
        if (om_last_error() != OM_ENOMEM || !unchanged)
            fprintf(stderr, "  fault case '%s', domain %d, n = %ld\n", fc->name, (int)domain, n);
    }
    om_xdecref(made);
    om_decref(l);
    check_no_leak(base);
    return rc == 0;
}

static void test_fault_injection(void)
{
    long injected = om_fail_count(OM_DOMAIN_OBJ) + om_fail_count(OM_DOMAIN_MEM);
    for (size_t c = 0; c < sizeof fault_cases / sizeof *fault_cases; c++) {
        const om_domain domains[] = {OM_DOMAIN_OBJ, OM_DOMAIN_MEM};
        for (size_t d = 0; d < 2; d++) {
            long n = 0;
            while (!fault_run_once(&fault_cases[c], domains[d], n) && n < 1000)
                n++;
            CHECK(n < 1000);
        }
    }
    injected = om_fail_count(OM_DOMAIN_OBJ) + om_fail_count(OM_DOMAIN_MEM) - injected;
    CHECK(injected > 20);
    printf("fault injection: %ld failed allocations over %zu operations, each clean\n",
           injected, sizeof fault_cases / sizeof *fault_cases);
}

int main(int argc, char **argv)
{
    size_t chain_length = argc > 1 ? strtoul(argv[1], NULL, 0) : OM_TEST_SCALE(10000000);
    const char *malloc_mode = getenv("OBJMEM_MALLOC");
    debug_hooks_on = malloc_mode != NULL && strstr(malloc_mode, "debug") != NULL;
    test_freed_list();   /* first: its child installs the debug hooks before any wrapper */
    test_tuple_basics();
    test_tuple_tracking();
    test_iterators();
    test_list_editing();
    test_list_growth();
    test_list_shrink_failure();
    test_list_extend();
    test_list_sort();
    test_list_sort_meddling();
    test_range();
    test_generator();
    test_fault_injection();
    test_deep_release(chain_length);
    return check_report();
}
