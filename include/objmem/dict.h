/* objmem/dict.h — part of objmem.h; include <objmem.h>, not this file.
 *
 * 13. Built-in types: dict
 *
 * A dict maps keys to values and remembers the order in which keys were
 * first inserted (Python 3.7's guarantee): iteration, om_dict_next and
 * om_dict_copy follow that order; replacing the value of a key keeps its
 * place; deleting a key and inserting it again moves it to the end.
 *
 * Keys are any objects whose type has a hash hook (int, str, bytes, tuple,
 * None, bool, user types with hash); a key whose type has none (list,
 * dict) is refused with OM_ETYPE ("unhashable type: 'list'"). Keys are
 * matched by identity first, then by equal hashes and om_equal. When an
 * equal hook fails, the call returns -1 (or NULL) with the hook's error and
 * the dict is unchanged.
 *
 * Ownership, as everywhere in objmem: om_dict_set takes its own references
 * to the key and the value; om_dict_get, om_dict_find and om_dict_next
 * return borrowed references (valid while the dict holds them); om_dict_pop,
 * om_dict_copy, the iterators and the items they yield are new references.
 *
 * Every call checks that d is a live dict: NULL gives OM_EINVAL, another
 * type OM_ETYPE ("om_dict_set: expected 'dict', got 'list'"), a freed dict
 * is fatal misuse reported with the type's name (with the debug hooks on).
 * A call that fails for any reason — OM_ENOMEM while the table grows
 * included — leaves the dict as it was and leaks nothing.
 *
 * A dict is an OM_TYPE_GC object, tracked by the cycle collector from its
 * creation. Cost: get, set, delete, pop and contains take O(1) expected
 * time (one hash, a few probes of a compact table); the table grows by
 * rebuilding itself, amortised O(1) per insertion. om_equal(a, b) on two
 * dicts is 1 when they hold the same keys mapped to equal values (order
 * does not matter); om_sizeof counts the table too. Dicts are unhashable.
 */
#ifndef OBJMEM_DICT_H
#define OBJMEM_DICT_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The type of dicts (name "dict"). */
OM_API extern const om_type om_dict_type;

/** A new empty dict (new reference), or NULL with OM_ENOMEM. The table is
 *  allocated at the first insertion. */
OM_API om_object *om_dict_new(void) OM_NODISCARD;

/** Map key to value: the dict takes its own references to both. A key that
 *  is present keeps its place and its key object; only the value is
 *  replaced (the old value's reference is dropped). Returns 0, or -1 with
 *  OM_EINVAL (NULL key or value), OM_ETYPE (unhashable key), OM_ENOMEM
 *  (the table could not grow) or an equal hook's error. */
OM_API int om_dict_set(om_object *d, om_object *key, om_object *value);

/** The value of key (borrowed reference), or NULL with OM_EKEY when key is
 *  absent, OM_ETYPE when it is unhashable, or an equal hook's error. */
OM_API om_object *om_dict_get(om_object *d, om_object *key);

/** Look key up without treating absence as an error: 1 with *value set to
 *  the value (borrowed; value may be NULL when only presence matters), 0
 *  when absent (no error recorded, *value untouched), -1 on error
 *  (OM_EINVAL, OM_ETYPE for an unhashable key, an equal hook's error). */
OM_API int om_dict_find(om_object *d, om_object *key, om_object **value);

/** 1 if key is present, 0 if not, -1 on error (as om_dict_find). */
OM_API int om_dict_contains(om_object *d, om_object *key);

/** Remove key and drop the dict's references to it and its value. Returns
 *  0, or -1 with OM_EKEY when absent, OM_ETYPE when unhashable, or an equal
 *  hook's error. The table never shrinks here (see om_dict_clear). */
OM_API int om_dict_delete(om_object *d, om_object *key);

/** Remove key and return its value (new reference: the dict's reference
 *  moves to the caller), or NULL with the errors of om_dict_delete. */
OM_API om_object *om_dict_pop(om_object *d, om_object *key) OM_NODISCARD;

/** Number of keys in d, or -1 with OM_EINVAL / OM_ETYPE. O(1). */
OM_API ptrdiff_t om_dict_size(om_object *d);

/** Remove every key and free the table. Returns 0, or -1 when d is not a
 *  dict. The dict is empty before the first reference is dropped, so a
 *  destroy hook that looks at d sees it empty. */
OM_API int om_dict_clear(om_object *d);

/** Iterate in insertion order without allocating, as CPython's PyDict_Next:
 *
 *      size_t pos = 0;
 *      om_object *key, *value;
 *      while (om_dict_next(d, &pos, &key, &value))
 *          use(key, value);               // borrowed references
 *
 *  Start with *pos = 0; each call that returns 1 stores the next key and
 *  value (either output pointer may be NULL) and advances *pos, an opaque
 *  cursor. Returns 0 at the end, and also when d is not a dict or pos is
 *  NULL (error recorded then). Do not add or delete keys during the loop
 *  (replacing values with om_dict_set is fine): memory stays safe, but
 *  keys may be missed or seen twice; unlike the iterators below,
 *  om_dict_next does not detect the change. */
OM_API int om_dict_next(om_object *d, size_t *pos, om_object **key, om_object **value);

/** A new iterator over d's keys in insertion order (new reference), for
 *  om_next; om_iter(d) gives the same. The iterator holds a reference to
 *  d. If d's size changes between two om_next calls, om_next fails with
 *  OM_EVALUE "dict changed size during iteration", then keeps failing.
 *  NULL with OM_ENOMEM / OM_ETYPE / OM_EINVAL. */
OM_API om_object *om_dict_keys(om_object *d) OM_NODISCARD;

/** A new iterator over d's values, in key insertion order, as om_dict_keys. */
OM_API om_object *om_dict_values(om_object *d) OM_NODISCARD;

/** A new iterator over d's items: om_next yields 2-tuples (key, value),
 *  new references; om_next returns NULL with OM_ENOMEM when a tuple cannot
 *  be allocated, without advancing (the next call yields the same item).
 *  Otherwise as om_dict_keys. */
OM_API om_object *om_dict_items(om_object *d) OM_NODISCARD;

/** A shallow copy of d (new reference): the same keys, in the same order,
 *  mapped to the same value objects, in a compact table sized for them.
 *  NULL with OM_ENOMEM (nothing leaks), OM_ETYPE or OM_EINVAL. */
OM_API om_object *om_dict_copy(om_object *d) OM_NODISCARD;

#ifdef __cplusplus
}
#endif

#endif /* OBJMEM_DICT_H */
