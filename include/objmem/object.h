/* objmem/object.h — part of objmem.h; include <objmem.h>, not this file.
 *
 * 10. Objects, reference counts and types
 *
 * Every object starts with OM_OBJECT_HEAD: a reference count and a pointer
 * to its type. om_new(type) returns an object with count 1; om_incref and
 * om_decref change the count, and the object is destroyed and its memory
 * (from the OBJ domain) freed the moment the count reaches zero, from
 * inside that om_decref. Release never recurses on the C stack: dropping
 * the head of a chain of ten million objects, or a list nested a million
 * deep, frees everything in linear time with a constant stack.
 *
 * A type (om_type) is a plain struct, usually a static const: its name,
 * the size of its objects, flags and hooks. Objects of types flagged
 * OM_TYPE_GC may hold references to other objects and so take part in
 * cycles; they carry a two-word pre-header, allocated in the same block in
 * front of the object, that the cycle collector links them through.
 *
 * Ownership rules, as in CPython's C API:
 *   - a function documented "new reference" returns an object the caller
 *     owns one count of (and must om_decref);
 *   - a "borrowed reference" is valid as long as its owner holds it;
 *   - a function that stores an argument (om_list_append …) takes its own
 *     count; the caller keeps its own.
 * Immortal objects (om_none, om_true, om_false, small ints, anything passed
 * to om_make_immortal) ignore count changes and are never freed.
 *
 * Errors: a function that fails returns NULL or -1 and sets
 * om_last_error() to OM_ETYPE, OM_EINDEX, OM_EKEY, OM_EOVERFLOW,
 * OM_EVALUE or OM_ENOMEM with a message; the objects it was given are left
 * as they were. A decref of an object whose count is already zero, or an
 * API call on an object already freed, is fatal misuse when objmem can see
 * it (always for a decref below zero; with the debug hooks on, freed
 * objects are kept dead for a while so that their use is reported with the
 * type's name).
 */
#ifndef OBJMEM_OBJECT_H
#define OBJMEM_OBJECT_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct om_type om_type;

/** The head every object starts with. Never touch the fields directly:
 *  use om_incref/om_decref/om_refcnt and om_type_of. */
typedef struct om_object {
    intptr_t ob_refcnt;       /**< references; OM_REFCNT_IMMORTAL or above: immortal */
    const om_type *ob_type;   /**< the object's type */
} om_object;

/** The head of a variable-size object made by om_new_var: the item count. */
typedef struct om_var_object {
    om_object ob_base;        /**< count and type */
    size_t ob_size;           /**< number of items allocated after the struct */
} om_var_object;

/** First member of a user object struct:
 *    typedef struct point { OM_OBJECT_HEAD; double x, y; } point; */
#define OM_OBJECT_HEAD om_object ob_head
/** First member of a variable-size object struct (om_new_var). */
#define OM_OBJECT_VAR_HEAD om_var_object ob_var_head

/** Any object pointer as om_object * (for the head-first structs above). */
#define OM_OBJ(p) ((om_object *)(p))

/** Counts at or above this value mark an immortal object (PEP 683). */
#define OM_REFCNT_IMMORTAL ((intptr_t)1 << 60)

/* ---- Types ------------------------------------------------------------- */

/** Type flags. */
enum {
    /** Objects hold references and may form cycles: they get the collector's
     *  pre-header and the type must provide traverse (and clear). */
    OM_TYPE_GC = 1u << 0,
    /** om_weakref_new accepts objects of this type. */
    OM_TYPE_WEAKREFABLE = 1u << 1,
    /** The finalize hook is a legacy finalizer (CPython's tp_del): objects of
     *  this type in a garbage cycle are not freed but moved to om_gc_garbage. */
    OM_TYPE_LEGACY_FINALIZER = 1u << 2,
};

/** Called by traverse for each object reference the object holds; a
 *  non-zero return stops the traversal and is returned by traverse. */
typedef int (*om_visit_fn)(om_object *referent, void *arg);

/** A type: a plain struct, normally a static const, or made by
 *  om_type_from_spec. Hooks left NULL mean "nothing to do" (or, for hash,
 *  compare, iter and next, "not supported": the call fails with OM_ETYPE). */
struct om_type {
    const char *name;        /**< shown in errors and reports, e.g. "list" */
    size_t size;             /**< bytes of the object struct, head included */
    size_t item_size;        /**< bytes per item for om_new_var; 0 = fixed size */
    unsigned flags;          /**< OM_TYPE_* */
    /** Call visit on every object reference held (NULL ones skipped);
     *  return the first non-zero visit result, else 0. Required for GC types. */
    int (*traverse)(om_object *self, om_visit_fn visit, void *arg);
    /** Drop the references that could form cycles (set them NULL, then
     *  decref): the collector calls it to break a garbage cycle. The object
     *  must stay valid for destroy afterwards. */
    void (*clear)(om_object *self);
    /** Run once before the object dies (PEP 442): may resurrect it by
     *  storing a new reference somewhere; called at most once per object. */
    void (*finalize)(om_object *self);
    /** Release what the object owns (decref its references, free its
     *  buffers); objmem frees the object's own memory afterwards. */
    void (*destroy)(om_object *self);
    /** A hash for dict keys: equal objects have equal hashes; never -1.
     *  NULL = unhashable. */
    int64_t (*hash)(om_object *self);
    /** 1 if self equals other (which may be of another type), 0 if not, -1
     *  on error. NULL = identity. */
    int (*equal)(om_object *self, om_object *other);
    /** Ordering: *result < 0, 0, > 0 as self <, ==, > other; 0, or -1 with
     *  OM_ETYPE when the two cannot be ordered. NULL = not orderable. */
    int (*compare)(om_object *self, om_object *other, int *result);
    /** A new iterator over self (new reference), or NULL on error. */
    om_object *(*iter)(om_object *self);
    /** The next item of iterator self (new reference), or NULL at the end
     *  (no error set) or on error (error set). */
    om_object *(*next)(om_object *self);
    /** Bytes held outside the object's block (buffers), for om_sizeof. */
    size_t (*buffer_size)(om_object *self);
};

/** The type of o. */
static inline const om_type *om_type_of(const om_object *o) { return o->ob_type; }

/** True when o's type is exactly t. */
static inline bool om_is_type(const om_object *o, const om_type *t) { return o->ob_type == t; }

/** A user struct type described by the offsets of its object fields, for
 *  om_type_from_spec. */
typedef struct om_type_spec {
    const char *name;               /**< the type's name (copied) */
    size_t size;                    /**< sizeof the struct, OM_OBJECT_HEAD first */
    unsigned flags;                 /**< OM_TYPE_* (OM_TYPE_GC is added when
                                         object_offset_count > 0) */
    const size_t *object_offsets;   /**< offsetof each om_object * field */
    size_t object_offset_count;     /**< number of entries in object_offsets */
    void (*finalize)(om_object *self);  /**< optional, as om_type.finalize */
    /** Optional: called by the generated destroy before it drops the
     *  object fields, for other resources the struct owns. */
    void (*destroy)(om_object *self);
} om_type_spec;

/** A new type from spec whose traverse, clear and destroy handle the
 *  listed object fields (each an om_object * that may be NULL). Returns
 *  the type, or NULL with OM_EINVAL (size smaller than the head, an offset
 *  outside the struct or not pointer-aligned, a NULL name) or OM_ENOMEM.
 *  Free it with om_type_delete once no object of it is alive. */
OM_API om_type *om_type_from_spec(const om_type_spec *spec) OM_NODISCARD;

/** Free a type made by om_type_from_spec. */
OM_API void om_type_delete(om_type *type);

/* ---- Creating objects ------------------------------------------------- */

/** A new object of `type` (new reference, count 1) with every byte after
 *  the head zeroed, or NULL with OM_ENOMEM (OM_EINVAL for a NULL type or
 *  one with item_size != 0). Memory from the OBJ domain. */
OM_API om_object *om_new(const om_type *type) OM_NODISCARD;

/** A new variable-size object: type->size + count * type->item_size bytes,
 *  zeroed after the head, ob_size = count. NULL with OM_ENOMEM (also when
 *  the size overflows) or OM_EINVAL (a NULL type or item_size == 0). */
OM_API om_object *om_new_var(const om_type *type, size_t count) OM_NODISCARD;

/* ---- Reference counts -------------------------------------------------- */

/** Out of line: the count of o reached zero (destroy and free it, or defer
 *  that if a release is in progress), or went below zero (fatal misuse). */
OM_API void om_dealloc(om_object *o);

/** With the debug hooks on (om_setup_debug_hooks, OBJMEM_MALLOC=debug):
 *  a fatal report naming `function` unless the calling thread is attached,
 *  holds its runtime's GIL, and o lies in that runtime's heap (or in no
 *  heap: a static object); nothing otherwise. om_incref and om_decref call
 *  it when the code that includes this header is compiled with OM_DEBUG
 *  defined above 0 (objmem's own debug builds are); in other builds the
 *  inline paths check nothing and the rule is checked where the debug
 *  hooks already run out of line: om_new and om_new_var, the release of
 *  an object whose count reached zero (om_dealloc), and the stores of
 *  list, tuple and dict (docs/api.md, "Runtimes and threads"). */
OM_API void om_debug_check_refchange(const om_object *o, const char *function);

/** The check om_incref and om_decref make: om_debug_check_refchange when
 *  the including code is compiled with OM_DEBUG > 0, else nothing. */
#if defined(OM_DEBUG) && OM_DEBUG > 0
#define OM_DEBUG_CHECK_REFCHANGE(o, function) om_debug_check_refchange((o), (function))
#else
#define OM_DEBUG_CHECK_REFCHANGE(o, function) ((void)0)
#endif

/** Take a reference. Cost: a compare and an increment (plus, in OM_DEBUG
 *  builds, a call to om_debug_check_refchange). */
static inline void om_incref(om_object *o)
{
    if (o->ob_refcnt < OM_REFCNT_IMMORTAL) {
        OM_DEBUG_CHECK_REFCHANGE(o, "om_incref");
        o->ob_refcnt++;
    }
}

/** Drop a reference; at zero the object is destroyed and freed at once. */
static inline void om_decref(om_object *o)
{
    if (o->ob_refcnt >= OM_REFCNT_IMMORTAL)
        return;
    OM_DEBUG_CHECK_REFCHANGE(o, "om_decref");
    if (--o->ob_refcnt <= 0)
        om_dealloc(o);
}

/** om_incref that accepts NULL. */
static inline void om_xincref(om_object *o)
{
    if (o != NULL)
        om_incref(o);
}

/** om_decref that accepts NULL. */
static inline void om_xdecref(om_object *o)
{
    if (o != NULL)
        om_decref(o);
}

/** The reference count of o (OM_REFCNT_IMMORTAL or more when immortal). */
static inline intptr_t om_refcnt(const om_object *o) { return o->ob_refcnt; }

/** Set the om_object * variable or field `slot` to NULL, then drop the
 *  reference it held (in that order, so a destroy hook that looks at the
 *  slot sees NULL). */
#define OM_CLEAR(slot)                          \
    do {                                        \
        om_object *om_clear_old_ = OM_OBJ(slot);\
        if (om_clear_old_ != NULL) {            \
            (slot) = NULL;                      \
            om_decref(om_clear_old_);           \
        }                                       \
    } while (0)

/** Store new reference v in `slot`, then drop the reference the slot held
 *  before (which may be NULL). The caller's reference to v moves into the slot. */
#define OM_SETREF(slot, v)                      \
    do {                                        \
        om_object *om_setref_old_ = OM_OBJ(slot);\
        (slot) = (v);                           \
        om_xdecref(om_setref_old_);             \
    } while (0)

/** Make o immortal: count changes are ignored from now on and o is never
 *  freed (PEP 683). */
OM_API void om_make_immortal(om_object *o);

/** True when o is immortal. */
static inline bool om_is_immortal(const om_object *o) { return o->ob_refcnt >= OM_REFCNT_IMMORTAL; }

/* ---- None and booleans ------------------------------------------------- */

OM_API extern const om_type om_none_type;   /**< type of om_none */
OM_API extern const om_type om_bool_type;   /**< type of om_true and om_false */
OM_API extern om_object om_none_object;     /**< use om_none */
OM_API extern om_object om_true_object;     /**< use om_true */
OM_API extern om_object om_false_object;    /**< use om_false */

/** The immortal None, True and False (no incref needed, decref is harmless). */
#define om_none (&om_none_object)
#define om_true (&om_true_object)
#define om_false (&om_false_object)

/** om_true if value is non-zero, else om_false (immortal, borrowed or owned alike). */
static inline om_object *om_bool_from(int value) { return value ? om_true : om_false; }

/* ---- Generic operations ---------------------------------------------- */

/** The hash of o for dict keys; -1 with OM_ETYPE "unhashable type: 'list'"
 *  when its type has no hash. */
OM_API int64_t om_hash(om_object *o);

/** 1 if a equals b, 0 if not, -1 on error. Identical objects are equal;
 *  objects of unrelated types are not. */
OM_API int om_equal(om_object *a, om_object *b);

/** Ordering of a and b in *result (<0, 0, >0); 0, or -1 with OM_ETYPE when
 *  they cannot be ordered (e.g. a str and an int). */
OM_API int om_compare(om_object *a, om_object *b, int *result);

/** A new iterator over o (new reference), or NULL with OM_ETYPE when o is
 *  not iterable. An iterator is its own iterator. */
OM_API om_object *om_iter(om_object *o) OM_NODISCARD;

/** The next item of iterator it (new reference), or NULL: at the end with
 *  om_last_error() == OM_OK (om_next clears the error first), on failure
 *  with the error set. NULL with OM_ETYPE when it is not an iterator. */
OM_API om_object *om_next(om_object *it) OM_NODISCARD;

/** Bytes that o holds, as Python's sys.getsizeof: its block (the
 *  collector's pre-header included) plus the buffers it owns; 0 for NULL. */
OM_API size_t om_sizeof(om_object *o);

/** The name of o's type ("NULL" for NULL). */
OM_API const char *om_type_name(const om_object *o);

#ifdef __cplusplus
}
#endif

#endif /* OBJMEM_OBJECT_H */
