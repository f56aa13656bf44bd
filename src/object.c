/*
 * object.c — objects, reference counts, release without recursion, types
 * from specs, None and the booleans, and the generic operations (hash,
 * equality, ordering, iteration, size) that dispatch through a type's hooks.
 *
 * An object block (from the OBJ domain):
 *
 *   GC types:     | omi_gc_head (16 B) | om_object head | fields … |
 *   other types:                       | om_object head | fields … |
 *                                      ^ the om_object * users hold
 *
 * The count (ob_refcnt) has these ranges:
 *   1 … OM_REFCNT_IMMORTAL-1      alive, owned that many times
 *   ≥ OM_REFCNT_IMMORTAL          immortal: om_incref/om_decref skip it
 *   0                             being released now
 *   -1 - (next >> 4)              waiting on the release stack (below)
 *   around OMI_REFCNT_DEAD        released, kept by the debug quarantine
 * so any decref that takes a count below zero lands in om_dealloc with a
 * negative value, which is always fatal misuse.
 *
 * Release without recursion (CPython's trashcan, simplified): releasing an
 * object drops its references, which may release more objects, and so on
 * down a chain of any length. Only the outermost om_dealloc of a thread
 * releases; a nested one (from inside a destroy hook) pushes its object on
 * the thread's release stack and returns, and the outer loop pops it. The
 * stack is intrusive: an object waiting on it has count 0 and no other
 * use for its count word, so the word holds the link (objects are 16-byte
 * aligned, so next >> 4 fits and the encoded value stays negative). C
 * stack depth is constant and no memory is needed, so release cannot fail.
 *
 * Release of one object (release_one_generic): the finalize hook first (PEP 442:
 * for GC types at most once, recorded in the pre-header; the count is held
 * at 1 around the call, and if the hook stored a new reference the object
 * is resurrected and lives on); then its weak references are cleared and
 * their callbacks run (WEAKREFABLE types only); then it leaves the collector's lists, its
 * destroy hook drops what it owns, and the memory goes back (or, with the
 * debug hooks on, it waits dead in its runtime's quarantine of
 * OMI_DEAD_QUARANTINE objects with its type intact, so that a late decref
 * or call names the type).
 *
 * The plain path (spec_release_run): an object of a spec type with no
 * destroy and no finalize, when no weak reference, debug quarantine or
 * allocator wrapper is in play, runs no user code as it dies, so release
 * does the same work without the dispatch: untrack, decref each field
 * (the last one to reach zero is released next, the others pushed: the
 * generic order), free the block; and it keeps going while the next object
 * has the same type, whose checks then still hold. Freed blocks of small
 * fixed-size objects skip the address map (omi_pool_free_known) as long
 * as every object block came from a heap's inline path. A 10M-node chain
 * costs ~90 instructions a node this way instead of ~190.
 *
 * Learned from: CPython's Objects/object.c (_Py_Dealloc, the trashcan in
 * Include/cpython/object.h, PyObject_CallFinalizerFromDealloc) and PEP 683
 * for immortal objects; written afresh.
 */
#include <stdalign.h>
#include <string.h>

#include "internal.h"

/* How far a dead object's count may drift from OMI_REFCNT_DEAD through
 * misuse (late increfs and decrefs) and still be recognised. */
#define DEAD_SLACK ((intptr_t)1 << 20)

_Static_assert(OMI_REFCNT_DEAD + DEAD_SLACK < -((intptr_t)1 << 44) - 1,
               "dead counts never look like release-stack links");

/* ---- None and the booleans ---------------------------------------------- */

static int64_t none_hash(om_object *self)
{
    (void)self;
    return 0x5f3759df;
}

static int64_t bool_hash(om_object *self)
{
    return self == om_true ? 1 : 0;
}

const om_type om_none_type = {.name = "NoneType", .size = sizeof(om_object), .hash = none_hash};
const om_type om_bool_type = {.name = "bool", .size = sizeof(om_object), .hash = bool_hash};

om_object om_none_object = {OM_REFCNT_IMMORTAL, &om_none_type};
om_object om_true_object = {OM_REFCNT_IMMORTAL, &om_bool_type};
om_object om_false_object = {OM_REFCNT_IMMORTAL, &om_bool_type};

/* ---- Allocation ---------------------------------------------------------- */

/* Bytes of the object proper (head, fields, items), or false on overflow. */
static bool object_body_size(const om_type *type, size_t count, size_t *size)
{
    size_t items;
    if (!omi_mul_size(count, type->item_size, &items))
        return false;
    *size = type->size + items;
    return *size >= type->size && *size <= PTRDIFF_MAX - sizeof(omi_gc_head);
}

/* True while every object block so far came from a heap's inline path:
 * then a block of a small fixed-size object is known to be a pool block of
 * its size's class, and goes back without the address map. Cleared for
 * good by the first block taken through another OBJ allocator (such a
 * block may be freed after the default allocator is back). */
static _Atomic bool object_blocks_all_inline = true;

/* An object's block: from the current runtime's heap's inline path while the OBJ
 * domain has its default allocator (nothing to honour: no debug hooks,
 * tracing or fault injection), else through the domain, after the debug
 * hooks' thread rule (checked here, off the default path, to name the
 * public call `function`). */
static inline void *object_block_malloc(size_t size, const char *function)
{
    if (omi_likely(omi_domain_is_default[OM_DOMAIN_OBJ]))
        return omi_heap_malloc(omi_current_heap(), size);
    atomic_store_explicit(&object_blocks_all_inline, false, memory_order_relaxed);
    omi_debug_check_gil(function);
    return om_obj_malloc(size);
}

/* Frees an object's block; `size` is the size it was allocated with, or 0
 * when not known (variable-size objects: their ob_size is a public field). */
static inline void object_block_free(void *block, size_t size)
{
    if (omi_likely(omi_domain_is_default[OM_DOMAIN_OBJ])) {
        if (omi_likely(size - 1 < OM_SMALL_SIZE_MAX &&
                       atomic_load_explicit(&object_blocks_all_inline, memory_order_relaxed)))
            omi_pool_free_known(block, (size - 1) >> OMI_ALIGN_SHIFT);
        else
            omi_free("om_obj_free", block);
    } else {
        om_obj_free(block);
    }
}

/* A block of `size` bytes, collecting once and retrying once when the
 * first try fails (STYLE: never from inside the collector). */
static void *object_block_malloc_or_collect(size_t size, const char *function)
{
    void *block = object_block_malloc(size, function);
    if (block == NULL && omi_gc_collect_for_memory() > 0)
        block = object_block_malloc(size, function);
    return block;
}

om_object *omi_object_alloc(const om_type *type, size_t count)
{
    size_t body;
    if (!object_body_size(type, count, &body)) {
        omi_set_error(OM_ENOMEM, "%s: %zu items of %zu bytes do not fit in memory",
                      type->name, count, type->item_size);
        return NULL;
    }
    size_t prefix = omi_type_is_gc(type) ? sizeof(omi_gc_head) : 0;
    unsigned char *block = object_block_malloc_or_collect(
        prefix + body, type->item_size != 0 ? "om_new_var" : "om_new");
    if (block == NULL)
        return NULL;
    if (prefix != 0)
        memset(block, 0, prefix);
    om_object *o = (om_object *)(block + prefix);
    o->ob_refcnt = 1;
    o->ob_type = type;
    if (type->item_size != 0)
        ((om_var_object *)o)->ob_size = count;
    return o;
}

/* Zeroes everything after the head (and after ob_size), then tracks a GC
 * object: with its fields NULL, traverse is safe at once. */
static om_object *object_init_zeroed(om_object *o, size_t count)
{
    const om_type *type = o->ob_type;
    size_t head = type->item_size != 0 ? sizeof(om_var_object) : sizeof(om_object);
    size_t body = type->size + count * type->item_size;
    if (body > head)
        memset((unsigned char *)o + head, 0, body - head);
    if (omi_type_is_gc(type))
        omi_gc_track(o);
    return o;
}

static bool type_argument_ok(const om_type *type, bool variable, const char *function)
{
    if (type == NULL) {
        omi_set_error(OM_EINVAL, "%s: type is NULL", function);
        return false;
    }
    if ((type->item_size != 0) != variable) {
        omi_set_error(OM_EINVAL, "%s: type '%s' is %s", function, type->name,
                      variable ? "not variable-size (item_size is 0): use om_new"
                               : "variable-size: use om_new_var");
        return false;
    }
    if (type->size < (variable ? sizeof(om_var_object) : sizeof(om_object))) {
        omi_set_error(OM_EINVAL, "%s: type '%s' is smaller than its object head",
                      function, type->name);
        return false;
    }
    return true;
}

/* Zeroes a small block with 16-byte stores (the compiler cannot inline a
 * memset of a run-time size); size is a multiple of 16. */
static inline void zero_small_block(unsigned char *block, size_t size)
{
    for (size_t i = 0; i < size; i += 16) {
        uint64_t *word = (uint64_t *)(block + i);
        word[0] = 0;
        word[1] = 0;
    }
}

om_object *om_new(const om_type *type)
{
    if (omi_unlikely(type == NULL || type->item_size != 0 || type->size < sizeof(om_object))) {
        type_argument_ok(type, false, "om_new");
        return NULL;
    }
    size_t prefix = omi_type_is_gc(type) ? sizeof(omi_gc_head) : 0;
    size_t size = prefix + type->size;
    if (omi_unlikely(size > OM_SMALL_SIZE_MAX)) {
        om_object *o = omi_object_alloc(type, 0);
        return o != NULL ? object_init_zeroed(o, 0) : NULL;
    }
    /* A pool block is a whole number of 16-byte units: zero them all. */
    unsigned char *block = object_block_malloc_or_collect(size, "om_new");
    if (block == NULL)
        return NULL;
    if (omi_likely(omi_domain_is_default[OM_DOMAIN_OBJ]))
        zero_small_block(block, (size + OM_ALIGNMENT - 1) & ~(size_t)(OM_ALIGNMENT - 1));
    else
        memset(block, 0, size);   /* a wrapper's block may end at `size` (debug guards) */
    om_object *o = (om_object *)(block + prefix);
    o->ob_refcnt = 1;
    o->ob_type = type;
    if (prefix != 0)
        omi_gc_track(o);
    return o;
}

om_object *om_new_var(const om_type *type, size_t count)
{
    if (!type_argument_ok(type, true, "om_new_var"))
        return NULL;
    om_object *o = omi_object_alloc(type, count);
    return o != NULL ? object_init_zeroed(o, count) : NULL;
}

void omi_object_free_memory(om_object *o)
{
    const om_type *type = o->ob_type;
    size_t size = type->item_size == 0 ? type->size : 0;
    if (omi_type_is_gc(type))
        object_block_free(omi_gc_head_of(o), size != 0 ? size + sizeof(omi_gc_head) : 0);
    else
        object_block_free(o, size);
}

void om_make_immortal(om_object *o)
{
    if (o != NULL)
        o->ob_refcnt = OM_REFCNT_IMMORTAL;
}

/* ---- Release ------------------------------------------------------------- */

/* A type made by om_type_from_spec (see "Types from specs" below). */
typedef struct spec_type {
    om_type type;                           /* first: ob_type points here */
    void (*user_destroy)(om_object *self);  /* the spec's destroy, or NULL */
    size_t field_count;                     /* entries in field_offsets */
    size_t field_offsets[];                 /* offsetof each om_object * field */
} spec_type;

static const spec_type *spec_of(const om_object *o)
{
    return (const spec_type *)o->ob_type;
}

static om_object **spec_field(om_object *o, size_t offset)
{
    return (om_object **)((unsigned char *)o + offset);
}

typedef struct release_state {
    om_object *pending;     /* top of the release stack, linked through counts */
    bool releasing;         /* an om_dealloc of this thread is running its loop */
} release_state;

static _Thread_local release_state thread_release __attribute__((tls_model("initial-exec")));

static void release_push(release_state *rs, om_object *o)
{
    o->ob_refcnt = -1 - (intptr_t)((uintptr_t)rs->pending >> 4);
    rs->pending = o;
}

static om_object *release_pop(release_state *rs)
{
    om_object *o = rs->pending;
    rs->pending = (om_object *)((uintptr_t)(-1 - o->ob_refcnt) << 4);
    o->ob_refcnt = 0;
    return o;
}

static bool count_is_dead(intptr_t count)
{
    return count > OMI_REFCNT_DEAD - DEAD_SLACK && count < OMI_REFCNT_DEAD + DEAD_SLACK;
}

void omi_object_dead(const om_object *o, const char *function)
{
    if (count_is_dead(o->ob_refcnt))
        omi_fatal("%s: object of type '%s' at %p was already freed "
                  "(its count had reached zero)", function, o->ob_type->name, (const void *)o);
    omi_fatal("%s: object at %p has count %ld: it was freed or is being freed "
              "(a decref without a matching incref)", function, (const void *)o,
              (long)o->ob_refcnt);
}

bool omi_type_error(const om_object *o, const char *want, const char *function)
{
    omi_set_error(OM_ETYPE, "%s: expected '%s', got '%s'", function, want, o->ob_type->name);
    return false;
}

/* PEP 442: finalize once (GC types) or at each death (others); true when
 * the hook resurrected the object. */
static bool finalize_resurrects(om_object *o)
{
    const om_type *type = o->ob_type;
    if (type->finalize == NULL)
        return false;
    if (omi_type_is_gc(type)) {
        omi_gc_head *gc = omi_gc_head_of(o);
        if (gc->prev & OMI_GC_FINALIZED)
            return false;
        gc->prev |= OMI_GC_FINALIZED;
    }
    o->ob_refcnt = 1;
    type->finalize(o);
    return --o->ob_refcnt != 0;
}

/* Keeps o dead in its runtime's quarantine (the calling thread's: the
 * debug hooks' rule checked that o lies in its heap). */
static OMI_NOINLINE OMI_COLD void dead_keep(om_object *o)
{
    omi_dead_objects *dead = omi_runtime_dead_objects(omi_bound()->runtime);
    o->ob_refcnt = OMI_REFCNT_DEAD;
    om_object *oldest = dead->objects[dead->next_slot];
    dead->objects[dead->next_slot] = o;
    dead->next_slot = (dead->next_slot + 1) % OMI_DEAD_QUARANTINE;
    if (oldest != NULL)
        omi_object_free_memory(oldest);
}

static void release_one_generic(om_object *o)
{
    if (finalize_resurrects(o))
        return;
    const om_type *type = o->ob_type;
    if (omi_weakref_may_have_refs(o))
        omi_weakref_object_dies(o);
    if (omi_type_is_gc(type))
        omi_gc_untrack(o);
    if (type->destroy != NULL)
        type->destroy(o);
    if (omi_unlikely(omi_debug_active))
        dead_keep(o);
    else
        omi_object_free_memory(o);
}

static void spec_clear(om_object *self);

/* True when o dies without running user code and its block goes straight
 * back to its pool, so that release may skip the dispatch through hooks:
 * a GC spec type whose destroy only drops the fields (no user destroy, no
 * finalize), no weak reference to it possible, no debug quarantine, the
 * default OBJ allocator (nothing to trace or inject) and a small block. */
static inline bool spec_dies_plainly(const om_object *o)
{
    const om_type *type = o->ob_type;
    return type->destroy == spec_clear && type->finalize == NULL && omi_type_is_gc(type) &&
           !omi_weakref_may_have_refs(o) && omi_likely(!omi_debug_active) &&
           omi_domain_is_default[OM_DOMAIN_OBJ] &&
           type->size + sizeof(omi_gc_head) <= OM_SMALL_SIZE_MAX &&
           atomic_load_explicit(&object_blocks_all_inline, memory_order_relaxed);
}

/* Releases o, which spec_dies_plainly, in one pass (untrack, drop each
 * field's reference, free the block), then likewise the object to release
 * next while it has the same type: no user code runs in between, so the
 * type's hooks, the debug state, the allocator and the weak references
 * cannot change and the checks hold for the whole run. Of the fields whose
 * count reaches zero, the last is released next and the others are pushed,
 * the order in which the generic path (destroy pushing each, the loop
 * popping the last) would release them. The fields are not set to NULL:
 * the block is freed before any other release (and so any user code)
 * runs. Returns the next object to release (count 0, of another type), or
 * NULL to pop one. Out of line, as is dead_keep: inlined, their register
 * needs cost every om_dealloc a longer prologue (an int's om_decref: +5
 * instructions). */
static OMI_NOINLINE om_object *spec_release_run(release_state *rs, om_object *o)
{
    const spec_type *st = spec_of(o);
    const size_t *offsets = st->field_offsets;
    size_t field_count = st->field_count;
    size_t class_index = (sizeof(omi_gc_head) + st->type.size - 1) >> OMI_ALIGN_SHIFT;
    do {
        omi_gc_untrack_dying(o);
        om_object *next = NULL;
        for (size_t i = 0; i < field_count; i++) {
            om_object *field = *spec_field(o, offsets[i]);
            if (field == NULL || field->ob_refcnt >= OM_REFCNT_IMMORTAL || --field->ob_refcnt > 0)
                continue;
            if (omi_unlikely(field->ob_refcnt < 0))
                omi_object_dead(field, "om_decref");
            if (next != NULL)
                release_push(rs, next);
            next = field;
        }
        omi_pool_free_known(omi_gc_head_of(o), class_index);
        o = next;
    } while (o != NULL && o->ob_type == &st->type);
    return o;
}

bool omi_object_release_running(void)
{
    return thread_release.releasing;
}

/* Releases o (count 0); returns the next object to release (count 0, not
 * on the stack), or NULL to pop the next from the stack. */
static inline om_object *release_one(release_state *rs, om_object *o)
{
    if (spec_dies_plainly(o))
        return spec_release_run(rs, o);
    release_one_generic(o);
    return NULL;
}

void om_dealloc(om_object *o)
{
    if (omi_unlikely(o->ob_refcnt < 0))
        omi_object_dead(o, "om_decref");
    omi_debug_check_object(o, "om_decref");
    release_state *rs = &thread_release;
    if (rs->releasing) {
        release_push(rs, o);
        return;
    }
    rs->releasing = true;
    for (;;) {
        o = release_one(rs, o);
        if (o == NULL) {
            if (rs->pending == NULL)
                break;
            o = release_pop(rs);
        }
    }
    rs->releasing = false;
}

/* ---- Types from specs --------------------------------------------------- */

static int spec_traverse(om_object *self, om_visit_fn visit, void *arg)
{
    const spec_type *st = spec_of(self);
    for (size_t i = 0; i < st->field_count; i++) {
        om_object *field = *spec_field(self, st->field_offsets[i]);
        if (field != NULL) {
            int stop = visit(field, arg);
            if (stop != 0)
                return stop;
        }
    }
    return 0;
}

static void spec_clear(om_object *self)
{
    const spec_type *st = spec_of(self);
    for (size_t i = 0; i < st->field_count; i++)
        OM_CLEAR(*spec_field(self, st->field_offsets[i]));
}

/* The destroy hook of a spec with a destroy (without one, destroy is
 * spec_clear itself, which spec_dies_plainly looks for). */
static void spec_destroy(om_object *self)
{
    spec_of(self)->user_destroy(self);
    spec_clear(self);
}

static bool spec_is_valid(const om_type_spec *spec)
{
    if (spec == NULL || spec->name == NULL) {
        omi_set_error(OM_EINVAL, "om_type_from_spec: %s is NULL", spec == NULL ? "spec" : "name");
        return false;
    }
    if (spec->size < sizeof(om_object) || spec->size > PTRDIFF_MAX / 2) {
        omi_set_error(OM_EINVAL, "om_type_from_spec: '%s': size %zu cannot hold the object head",
                      spec->name, spec->size);
        return false;
    }
    if (spec->object_offset_count > 0 && spec->object_offsets == NULL) {
        omi_set_error(OM_EINVAL, "om_type_from_spec: '%s': object_offsets is NULL", spec->name);
        return false;
    }
    for (size_t i = 0; i < spec->object_offset_count; i++) {
        size_t off = spec->object_offsets[i];
        if (off < sizeof(om_object) || off % alignof(om_object *) != 0 ||
            off > spec->size - sizeof(om_object *)) {
            omi_set_error(OM_EINVAL, "om_type_from_spec: '%s': field offset %zu is inside the "
                          "head, misaligned or past the struct (size %zu)",
                          spec->name, off, spec->size);
            return false;
        }
    }
    return true;
}

om_type *om_type_from_spec(const om_type_spec *spec)
{
    if (!spec_is_valid(spec))
        return NULL;
    size_t count = spec->object_offset_count;
    size_t name_size = strlen(spec->name) + 1;
    size_t offsets_size = count * sizeof(size_t);
    spec_type *st = om_raw_malloc(sizeof *st + offsets_size + name_size);
    if (st == NULL)
        return NULL;
    char *name = (char *)st->field_offsets + offsets_size;
    memcpy(name, spec->name, name_size);
    if (count > 0)
        memcpy(st->field_offsets, spec->object_offsets, offsets_size);
    st->field_count = count;
    st->user_destroy = spec->destroy;
    st->type = (om_type){
        .name = name,
        .size = spec->size,
        .flags = spec->flags | (count > 0 ? OM_TYPE_GC : 0),
        .traverse = spec_traverse,
        .clear = spec_clear,
        .finalize = spec->finalize,
        .destroy = spec->destroy != NULL ? spec_destroy : spec_clear,
    };
    return &st->type;
}

void om_type_delete(om_type *type)
{
    om_raw_free(type);
}

/* ---- Generic operations ------------------------------------------------- */

static bool object_argument_ok(const om_object *o, const char *function)
{
    if (o == NULL) {
        omi_set_error(OM_EINVAL, "%s: object is NULL", function);
        return false;
    }
    if (o->ob_refcnt <= 0)
        omi_object_dead(o, function);
    return true;
}

int64_t om_hash(om_object *o)
{
    if (!object_argument_ok(o, "om_hash"))
        return -1;
    if (o->ob_type->hash == NULL) {
        omi_set_error(OM_ETYPE, "om_hash: unhashable type: '%s'", o->ob_type->name);
        return -1;
    }
    return o->ob_type->hash(o);
}

int om_equal(om_object *a, om_object *b)
{
    if (!object_argument_ok(a, "om_equal") || !object_argument_ok(b, "om_equal"))
        return -1;
    if (a == b)
        return 1;
    if (a->ob_type->equal != NULL)
        return a->ob_type->equal(a, b);
    if (b->ob_type->equal != NULL)
        return b->ob_type->equal(b, a);
    return 0;
}

int om_compare(om_object *a, om_object *b, int *result)
{
    if (!object_argument_ok(a, "om_compare") || !object_argument_ok(b, "om_compare"))
        return -1;
    if (result == NULL) {
        omi_set_error(OM_EINVAL, "om_compare: result is NULL");
        return -1;
    }
    if (a->ob_type->compare == NULL) {
        omi_set_error(OM_ETYPE, "om_compare: '<' not supported between '%s' and '%s'",
                      a->ob_type->name, b->ob_type->name);
        return -1;
    }
    return a->ob_type->compare(a, b, result);
}

om_object *om_iter(om_object *o)
{
    if (!object_argument_ok(o, "om_iter"))
        return NULL;
    if (o->ob_type->iter == NULL) {
        omi_set_error(OM_ETYPE, "om_iter: '%s' object is not iterable", o->ob_type->name);
        return NULL;
    }
    return o->ob_type->iter(o);
}

om_object *om_next(om_object *it)
{
    if (!object_argument_ok(it, "om_next"))
        return NULL;
    if (it->ob_type->next == NULL) {
        omi_set_error(OM_ETYPE, "om_next: '%s' object is not an iterator", it->ob_type->name);
        return NULL;
    }
    om_clear_error();
    return it->ob_type->next(it);
}

size_t om_sizeof(om_object *o)
{
    if (o == NULL)
        return 0;
    if (!object_argument_ok(o, "om_sizeof"))
        return 0;
    const om_type *type = o->ob_type;
    size_t size = type->size;
    if (type->item_size != 0)
        size += ((om_var_object *)o)->ob_size * type->item_size;
    if (omi_type_is_gc(type))
        size += sizeof(omi_gc_head);
    if (type->buffer_size != NULL)
        size += type->buffer_size(o);
    return size;
}

om_object *omi_iterator_self(om_object *self)
{
    om_incref(self);
    return self;
}

om_object *omi_seq_iterator_new(const om_type *type, om_object *seq)
{
    omi_seq_iterator *it = (omi_seq_iterator *)om_new(type);
    if (it == NULL)
        return NULL;
    om_incref(seq);
    it->seq = seq;
    return OM_OBJ(it);
}

int omi_seq_iterator_traverse(om_object *self, om_visit_fn visit, void *arg)
{
    om_object *seq = ((omi_seq_iterator *)self)->seq;
    return seq != NULL ? visit(seq, arg) : 0;
}

void omi_seq_iterator_clear(om_object *self)
{
    OM_CLEAR(((omi_seq_iterator *)self)->seq);
}

const char *om_type_name(const om_object *o)
{
    return o != NULL ? o->ob_type->name : "NULL";
}
