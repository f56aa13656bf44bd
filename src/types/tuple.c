/*
 * tuple.c — the tuple type, its iterator, and the helpers every sequence
 * type shares (Python indexes, item-wise equality and ordering).
 *
 * A tuple is one OBJ block, items inline (om_new_var layout):
 *
 *   | omi_gc_head (16) | refcnt | type | ob_size | items[0] … items[n-1] |
 *
 * Invariants:
 *   - every items[i] is a reference the tuple owns (never NULL: a fresh
 *     tuple holds None, which is immortal, until om_tuple_set fills it);
 *   - after its creator let go of count 1, a tuple never changes;
 *   - tracked(t) ⇔ some item is tracked or of a GC type other than tuple.
 *     The decision is made when an item is stored (pack, from_array, set),
 *     never later: a tuple's items cannot change once it is shared, and an
 *     untracked tuple item stays untracked. Mutable containers count even
 *     while untracked, since they may become tracked while in the tuple.
 *     CPython tracks every tuple and untracks lazily during collections;
 *     deciding at the store keeps tuples of scalars out of every scan.
 *   - the empty tuple is a static immortal object with a zeroed pre-header
 *     in front of it (so it reads as untracked), shared by every n = 0.
 *
 * Hash: each item's hash goes through one round of the xxHash64
 * accumulator (multiply, rotate, multiply), the length is mixed in at the
 * end, so that (1, 2) and (2, 1) differ; -1 is never returned.
 *
 * A tuple iterator holds a reference to its tuple and an index; it drops
 * the tuple when it reaches the end.
 *
 * Learned from: CPython's Objects/tupleobject.c (the hash, the empty
 * singleton) and Modules/gcmodule.c (untracking tuples of atoms);
 * written afresh.
 */
#include <stdarg.h>
#include <string.h>

#include "../internal.h"

typedef struct tuple_object {
    OM_OBJECT_VAR_HEAD;          /* ob_size = n, fixed for life */
    om_object *items[];          /* n owned references, never NULL */
} tuple_object;

static tuple_object *as_tuple(om_object *o)
{
    return (tuple_object *)o;
}

static size_t tuple_count(om_object *t)
{
    return as_tuple(t)->ob_var_head.ob_size;
}

/* ---- Helpers shared by the sequence types ------------------------------- */

bool omi_seq_index(ptrdiff_t index, size_t size, size_t *out, const char *function)
{
    /* -(index + 1) cannot overflow, even for PTRDIFF_MIN */
    size_t back = index < 0 ? (size_t)(-(index + 1)) + 1 : 0;
    if (index >= 0 ? (size_t)index >= size : back > size) {
        omi_set_error(OM_EINDEX, "%s: index %td out of range (size %zu)", function, index, size);
        return false;
    }
    *out = index >= 0 ? (size_t)index : size - back;
    return true;
}

/* Items x of a and y of b at the first index where they differ (both held
 * with a reference), or NULL where a sequence ended. 1 when a differing
 * pair was found, 0 when one sequence ended first or both did, -1 on error. */
static int seq_first_difference(om_object *a, om_object *b, omi_item_at_fn item_at,
                                om_object **x, om_object **y)
{
    for (size_t i = 0;; i++) {
        *x = item_at(a, i);
        *y = item_at(b, i);
        if (*x == NULL || *y == NULL)
            return 0;
        om_incref(*x);
        om_incref(*y);
        int eq = om_equal(*x, *y);
        if (eq != 1) {
            if (eq == 0)
                return 1;
            om_decref(*x);
            om_decref(*y);
            return -1;
        }
        om_decref(*x);
        om_decref(*y);
    }
}

int omi_seq_equal(om_object *a, om_object *b, omi_item_at_fn item_at)
{
    om_object *x, *y;
    int found = seq_first_difference(a, b, item_at, &x, &y);
    if (found != 1)
        return found < 0 ? -1 : x == NULL && y == NULL;
    om_decref(x);
    om_decref(y);
    return 0;
}

int omi_seq_compare(om_object *a, om_object *b, omi_item_at_fn item_at, int *result)
{
    om_object *x, *y;
    int found = seq_first_difference(a, b, item_at, &x, &y);
    if (found < 0)
        return -1;
    if (found == 0) {
        *result = (x != NULL) - (y != NULL);
        return 0;
    }
    int rc = om_compare(x, y, result);
    om_decref(x);
    om_decref(y);
    return rc;
}

/* ---- The empty tuple ---------------------------------------------------- */

typedef struct static_tuple {
    omi_gc_head gc;              /* zero: untracked */
    om_var_object tuple;         /* no items */
} static_tuple;

_Static_assert(offsetof(static_tuple, tuple) == sizeof(omi_gc_head),
               "omi_gc_head_of finds the empty tuple's pre-header");

static static_tuple empty_tuple = {
    .tuple = {{OM_REFCNT_IMMORTAL, &om_tuple_type}, 0},
};

/* ---- Creation and filling ----------------------------------------------- */

/* Whether holding v could put a tuple on a cycle (see the invariants). */
static bool item_needs_tracking(const om_object *v)
{
    const om_type *type = v->ob_type;
    return omi_type_is_gc(type) && (type != &om_tuple_type || omi_gc_is_tracked(v));
}

/* Stores a new reference to v in slot i of t (whose old item is None). */
static void tuple_store(om_object *t, size_t i, om_object *v)
{
    om_incref(v);
    as_tuple(t)->items[i] = v;
    if (item_needs_tracking(v))
        omi_gc_track(t);
}

om_object *om_tuple_new(size_t count)
{
    if (count == 0)
        return OM_OBJ(&empty_tuple.tuple);
    om_object *t = omi_object_alloc(&om_tuple_type, count);
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++)
        as_tuple(t)->items[i] = om_none;
    return t;
}

static bool items_are_valid(om_object *const *items, size_t count, const char *function)
{
    for (size_t i = 0; i < count; i++) {
        if (items[i] == NULL) {
            omi_set_error(OM_EINVAL, "%s: item %zu is NULL", function, i);
            return false;
        }
        if (items[i]->ob_refcnt <= 0)
            omi_object_dead(items[i], function);
        omi_debug_check_object(items[i], function);
    }
    return true;
}

static om_object *tuple_from_checked(om_object *const *items, size_t count)
{
    om_object *t = om_tuple_new(count);
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < count; i++)
        tuple_store(t, i, items[i]);
    return t;
}

om_object *om_tuple_from_array(om_object *const *items, size_t count)
{
    if (items == NULL && count > 0) {
        omi_set_error(OM_EINVAL, "om_tuple_from_array: items is NULL");
        return NULL;
    }
    if (!items_are_valid(items, count, "om_tuple_from_array"))
        return NULL;
    return tuple_from_checked(items, count);
}

om_object *om_tuple_pack(size_t count, ...)
{
    om_object *t = om_tuple_new(count);
    if (t == NULL)
        return NULL;
    va_list args;
    va_start(args, count);
    for (size_t i = 0; i < count; i++) {
        om_object *v = va_arg(args, om_object *);
        if (!items_are_valid(&v, 1, "om_tuple_pack")) {
            om_decref(t);
            t = NULL;
            break;
        }
        tuple_store(t, i, v);
    }
    va_end(args);
    return t;
}

int om_tuple_set(om_object *t, ptrdiff_t index, om_object *v)
{
    if (!omi_check_type(t, &om_tuple_type, "om_tuple_set") ||
        !items_are_valid(&v, 1, "om_tuple_set"))
        return -1;
    omi_debug_check_store(t, v, "om_tuple_set");
    if (om_refcnt(t) != 1 || v == t) {
        omi_set_error(OM_EINVAL, "om_tuple_set: %s", v == t ? "a tuple cannot contain itself"
                      : "the tuple is shared (count != 1): tuples are immutable once shared");
        return -1;
    }
    size_t i;
    if (!omi_seq_index(index, tuple_count(t), &i, "om_tuple_set"))
        return -1;
    om_object *old = as_tuple(t)->items[i];
    tuple_store(t, i, v);
    om_decref(old);
    return 0;
}

/* ---- Access ------------------------------------------------------------- */

om_object *om_tuple_get(om_object *t, ptrdiff_t index)
{
    size_t i;
    if (!omi_check_type(t, &om_tuple_type, "om_tuple_get") ||
        !omi_seq_index(index, tuple_count(t), &i, "om_tuple_get"))
        return NULL;
    return as_tuple(t)->items[i];
}

ptrdiff_t om_tuple_size(om_object *t)
{
    if (!omi_check_type(t, &om_tuple_type, "om_tuple_size"))
        return -1;
    return (ptrdiff_t)tuple_count(t);
}

int om_tuple_contains(om_object *t, om_object *v)
{
    if (!omi_check_type(t, &om_tuple_type, "om_tuple_contains") ||
        !items_are_valid(&v, 1, "om_tuple_contains"))
        return -1;
    for (size_t i = 0; i < tuple_count(t); i++) {
        int eq = om_equal(as_tuple(t)->items[i], v);
        if (eq != 0)
            return eq;
    }
    return 0;
}

/* ---- Type hooks --------------------------------------------------------- */

static om_object *tuple_item_at(om_object *t, size_t i)
{
    return i < tuple_count(t) ? as_tuple(t)->items[i] : NULL;
}

static int tuple_traverse(om_object *self, om_visit_fn visit, void *arg)
{
    for (size_t i = 0; i < tuple_count(self); i++) {
        int stop = visit(as_tuple(self)->items[i], arg);
        if (stop != 0)
            return stop;
    }
    return 0;
}

/* Breaks a garbage cycle: each item becomes None, so destroy still finds
 * a reference in every slot. */
static void tuple_clear(om_object *self)
{
    for (size_t i = 0; i < tuple_count(self); i++)
        OM_SETREF(as_tuple(self)->items[i], om_none);
}

static void tuple_destroy(om_object *self)
{
    for (size_t i = 0; i < tuple_count(self); i++)
        om_decref(as_tuple(self)->items[i]);
}

#define HASH_PRIME_1 0x9E3779B185EBCA87u
#define HASH_PRIME_2 0xC2B2AE3D27D4EB4Fu
#define HASH_PRIME_5 0x27D4EB2F165667C5u

static int64_t tuple_hash(om_object *self)
{
    uint64_t acc = HASH_PRIME_5;
    for (size_t i = 0; i < tuple_count(self); i++) {
        int64_t h = om_hash(as_tuple(self)->items[i]);
        if (h == -1)
            return -1;
        acc += (uint64_t)h * HASH_PRIME_2;
        acc = (acc << 31) | (acc >> 33);
        acc *= HASH_PRIME_1;
    }
    acc += tuple_count(self) ^ HASH_PRIME_5;
    return acc == UINT64_MAX ? 1546275796 : (int64_t)acc;
}

static int tuple_equal(om_object *self, om_object *other)
{
    if (other->ob_type != &om_tuple_type)
        return 0;
    if (tuple_count(self) != tuple_count(other))
        return 0;
    return omi_seq_equal(self, other, tuple_item_at);
}

static int tuple_compare(om_object *self, om_object *other, int *result)
{
    if (other->ob_type != &om_tuple_type) {
        omi_set_error(OM_ETYPE, "om_compare: '<' not supported between 'tuple' and '%s'",
                      other->ob_type->name);
        return -1;
    }
    return omi_seq_compare(self, other, tuple_item_at, result);
}

static om_object *tuple_iter(om_object *self)
{
    return omi_seq_iterator_new(&om_tuple_iterator_type, self);
}

const om_type om_tuple_type = {
    .name = "tuple",
    .size = sizeof(tuple_object),
    .item_size = sizeof(om_object *),
    .flags = OM_TYPE_GC,
    .traverse = tuple_traverse,
    .clear = tuple_clear,
    .destroy = tuple_destroy,
    .hash = tuple_hash,
    .equal = tuple_equal,
    .compare = tuple_compare,
    .iter = tuple_iter,
};

/* ---- Iterators (shared with list.c) -------------------------------------- */

om_object *omi_seq_iterator_next(om_object *self, omi_item_at_fn item_at)
{
    omi_seq_iterator *it = (omi_seq_iterator *)self;
    if (it->seq == NULL)
        return NULL;
    om_object *item = item_at(it->seq, it->index);
    if (item == NULL) {
        OM_CLEAR(it->seq);
        return NULL;
    }
    it->index++;
    om_incref(item);
    return item;
}

static om_object *tuple_iterator_next(om_object *self)
{
    return omi_seq_iterator_next(self, tuple_item_at);
}

const om_type om_tuple_iterator_type =
    OMI_SEQ_ITERATOR_TYPE("tuple_iterator", tuple_iterator_next);
