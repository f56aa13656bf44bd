/* objmem/sequences.h — part of objmem.h; include <objmem.h>, not this file.
 *
 * 12. Built-in types: tuple, list, range, generators
 *
 * tuple      an immutable array of references, items inline in the object's
 *            block. om_tuple_new(0) is one immortal empty tuple. A tuple is
 *            tracked by the cycle collector only while it may be part of a
 *            cycle: when one of its items is tracked, or is of a GC type
 *            other than tuple (a container that may become tracked later);
 *            a tuple of ints, strs and untracked tuples is never scanned.
 * list       a mutable array of references in a buffer from the MEM domain,
 *            over-allocated as CPython's (capacity ≈ n + n/8 + 6, rounded to
 *            a multiple of 4), so appends are amortised O(1); the buffer
 *            shrinks when less than half of it is used.
 * range      an arithmetic progression of int64 values, O(1) memory whatever
 *            its length; its items are ints made on demand.
 * generator  a lazy sequence defined by a C function that produces one item
 *            per call; it is its own iterator.
 *
 * Indexes are ptrdiff_t and count from the end when negative, as in Python
 * (-1 is the last item); an index outside the sequence fails with
 * OM_EINDEX. Every function taking an object checks its type first: a
 * wrong type fails with OM_ETYPE, NULL with OM_EINVAL, a freed object is
 * fatal misuse. A function that stores an object takes its own reference
 * (the caller keeps its own). A failing call leaves the sequence as it was
 * (for om_list_sort: holding the same items, see there).
 *
 * om_iter over a tuple or list gives an iterator that holds a reference to
 * the sequence until it ends; a list iterator sees the list's changes (it
 * stops at the current end). om_hash, om_equal and om_compare work on
 * tuples (hash: from the items' hashes; an unhashable item fails with
 * OM_ETYPE), om_equal and om_compare on lists (lexicographic, as Python),
 * om_equal on ranges (equal when they produce the same values).
 */
#ifndef OBJMEM_SEQUENCES_H
#define OBJMEM_SEQUENCES_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

OM_API extern const om_type om_tuple_type;           /**< type "tuple" (GC, variable size) */
OM_API extern const om_type om_tuple_iterator_type;  /**< type "tuple_iterator" (GC) */
OM_API extern const om_type om_list_type;            /**< type "list" (GC) */
OM_API extern const om_type om_list_iterator_type;   /**< type "list_iterator" (GC) */
OM_API extern const om_type om_range_type;           /**< type "range" */
OM_API extern const om_type om_range_iterator_type;  /**< type "range_iterator" */
OM_API extern const om_type om_generator_type;       /**< type "generator" (GC) */

/* ---- Tuples ------------------------------------------------------------ */

/** A new tuple of `count` items, each None until om_tuple_set fills it (new
 *  reference); count 0 gives the immortal empty tuple. NULL with OM_ENOMEM.
 *  Memory: one OBJ block of 40 + 8 * count bytes, pre-header included. */
OM_API om_object *om_tuple_new(size_t count) OM_NODISCARD;

/** A new tuple of the `count` om_object * arguments that follow (new
 *  reference); takes its own reference to each (none may be NULL: OM_EINVAL).
 *  NULL with OM_ENOMEM. */
OM_API om_object *om_tuple_pack(size_t count, ...) OM_NODISCARD;

/** A new tuple of items[0 … count-1] (new reference); takes its own
 *  reference to each. NULL with OM_EINVAL (a NULL item, or a NULL array with
 *  count > 0) or OM_ENOMEM. */
OM_API om_object *om_tuple_from_array(om_object *const *items, size_t count) OM_NODISCARD;

/** Item `index` of tuple t (borrowed reference), or NULL with OM_EINDEX. */
OM_API om_object *om_tuple_get(om_object *t, ptrdiff_t index);

/** The number of items of tuple t, or -1 on error. */
OM_API ptrdiff_t om_tuple_size(om_object *t);

/** Fill item `index` of a tuple just made by om_tuple_new: stores its own
 *  reference to v and drops the old item. Only while the caller holds the
 *  one reference to t (count 1): a tuple others can see is immutable, so
 *  any other count fails with OM_EINVAL, as does v == t (a tuple cannot
 *  contain itself). Tracks t when v calls for it (see the header comment).
 *  Fill a tuple completely before storing it in another tuple. Returns 0,
 *  or -1 (OM_EINDEX, OM_EINVAL, OM_ETYPE). */
OM_API int om_tuple_set(om_object *t, ptrdiff_t index, om_object *v);

/** 1 if an item of tuple t equals v (om_equal), 0 if none, -1 on error. */
OM_API int om_tuple_contains(om_object *t, om_object *v);

/* ---- Lists ------------------------------------------------------------- */

/** A new empty list with room for `capacity` items before it grows (new
 *  reference), or NULL with OM_ENOMEM. */
OM_API om_object *om_list_new(size_t capacity) OM_NODISCARD;

/** Append v to list l (takes its own reference). Amortised O(1). Returns
 *  0, or -1 (OM_ENOMEM: l unchanged). */
OM_API int om_list_append(om_object *l, om_object *v);

/** Insert v before item `index` of list l, as Python's list.insert: a
 *  negative index counts from the end, and an index beyond either end
 *  inserts at that end (no OM_EINDEX). O(n - index). Returns 0, or -1
 *  (OM_ENOMEM: l unchanged). */
OM_API int om_list_insert(om_object *l, ptrdiff_t index, om_object *v);

/** Item `index` of list l (borrowed reference: valid until the list drops
 *  it), or NULL with OM_EINDEX. */
OM_API om_object *om_list_get(om_object *l, ptrdiff_t index);

/** Replace item `index` of list l with v (takes its own reference; drops
 *  the old item). Returns 0, or -1 with OM_EINDEX. */
OM_API int om_list_set(om_object *l, ptrdiff_t index, om_object *v);

/** Remove item `index` (-1: the last) of list l and return it (new
 *  reference), or NULL with OM_EINDEX (also for an empty list). */
OM_API om_object *om_list_pop(om_object *l, ptrdiff_t index) OM_NODISCARD;

/** Remove item `index` of list l and drop it. Returns 0, or -1 (OM_EINDEX). */
OM_API int om_list_delete(om_object *l, ptrdiff_t index);

/** The number of items of list l, or -1 on error. */
OM_API ptrdiff_t om_list_size(om_object *l);

/** The items list l has room for before its buffer grows, or -1 on error. */
OM_API ptrdiff_t om_list_capacity(om_object *l);

/** 1 if an item of list l equals v (om_equal), 0 if none, -1 on error. */
OM_API int om_list_contains(om_object *l, om_object *v);

/** The index of the first item of list l equal to v, or -1: with OM_EVALUE
 *  when there is none, another code on error. */
OM_API ptrdiff_t om_list_index(om_object *l, om_object *v);

/** Append every item of `iterable` (anything om_iter accepts; a list or
 *  tuple is copied directly, l itself included) to list l. Returns 0, or -1
 *  with the error of om_iter, om_next or OM_ENOMEM, and l holding the same
 *  items as before (its capacity may have grown). */
OM_API int om_list_extend(om_object *l, om_object *iterable);

/** Sort list l in place, ascending by om_compare, stable (equal items keep
 *  their order); O(n log n) compares, fewer on presorted runs. Lists of more
 *  than 32 items take a temporary MEM buffer of n/2 pointers. Returns 0, or
 *  -1: OM_ENOMEM (l unchanged), OM_ETYPE from a compare that cannot order
 *  two items (l then holds the same items in an unspecified order), or
 *  OM_EVALUE when a compare hook changed l during the sort (the items it
 *  added are dropped, the sorted ones kept). */
OM_API int om_list_sort(om_object *l);

/** Remove and drop every item of list l and free its buffer. Returns 0, or
 *  -1 on a wrong type. */
OM_API int om_list_clear(om_object *l);

/* ---- Ranges ------------------------------------------------------------ */

/** The range start, start + step, … up to but excluding stop, as Python's
 *  range(start, stop, step) (new reference). O(1) memory whatever its
 *  length. NULL with OM_EVALUE when step is 0, OM_ENOMEM. */
OM_API om_object *om_range(int64_t start, int64_t stop, int64_t step) OM_NODISCARD;

/** The number of items of range r, or -1: OM_EOVERFLOW when it exceeds
 *  INT64_MAX (a range may hold up to 2^64 - 1 items, as Python's len()
 *  overflows past sys.maxsize), another code on error. */
OM_API int64_t om_range_length(om_object *r);

/** Item `index` of range r as an int (new reference), or NULL: OM_EINDEX,
 *  OM_ENOMEM. Negative indexes count from the end. */
OM_API om_object *om_range_get(om_object *r, int64_t index) OM_NODISCARD;

/** 1 if range r produces a value equal to v, 0 if not, -1 on error. O(1):
 *  v counts when it is an int, a bool or a float with an integral value
 *  (all equal to ints, as in Python); any other object gives 0. */
OM_API int om_range_contains(om_object *r, om_object *v);

/* ---- Generators -------------------------------------------------------- */

/** The function behind a generator: store the next item in *item as a new
 *  reference and return 1; return 0 at the end; return -1 on failure (an
 *  objmem call that failed has set the error; otherwise the generator
 *  reports OM_EVALUE). Not called again after it returned 0 or -1. */
typedef int (*om_generator_fn)(void *state, om_object **item);

/** A new generator (new reference): each om_next calls next_fn(state, …)
 *  once, so items are made only on demand. The generator owns `state`
 *  from this call on: release(state) (may be NULL) runs exactly once, when
 *  next_fn ends or fails or when the generator dies, whichever comes first;
 *  also at once when this call fails (NULL with OM_EINVAL for a NULL
 *  next_fn, OM_ENOMEM). om_iter of a generator returns the generator
 *  itself; om_next on a generator whose next_fn is running fails with
 *  OM_EVALUE. The collector cannot see objects that state refers to, so
 *  a cycle through state is never collected. */
OM_API om_object *om_generator_new(om_generator_fn next_fn, void *state,
                                   void (*release)(void *state)) OM_NODISCARD;

#ifdef __cplusplus
}
#endif

#endif /* OBJMEM_SEQUENCES_H */
