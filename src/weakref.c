/*
 * weakref.c — weak references: om_weakref_new / om_weakref_get, clearing
 * and callbacks when a referent dies by refcount or in a collection.
 *
 * Data structures:
 *
 *   side table (RAW memory): open addressing, linear probing, power-of-two
 *   capacity, load ≤ 1/2, backward-shift deletion (no tombstones)
 *
 *      slot: { referent address → first weak reference }
 *                                      │
 *            weakref ⇄ weakref ⇄ …  (doubly linked through next/prev,
 *                                     newest first)
 *
 *   weakref_object: an object of om_weakref_type (a GC type whose traverse
 *   visits nothing: it holds no strong reference, but being tracked lets
 *   the collector tell whether a weak reference is garbage itself).
 *
 * Invariants:
 *   wr.referent ≠ NULL ⇔ wr is in the list of the slot keyed wr.referent;
 *   a slot exists ⇔ its list is non-empty;
 *   table.referents = number of slots in use.
 *
 * Why a side table and not a field in every object: only objects of
 * OM_TYPE_WEAKREFABLE types can have weak references, and release_one
 * consults the table for them only, and only while the table is non-empty
 * (one load and one flag test); every other death costs nothing more, and
 * objects carry no extra word. The table is keyed by address; an address is
 * reused only after its object died, which removed its slot first.
 *
 * Death: the referent's slot is removed, every weak reference in its list
 * is cleared (referent = NULL) before any callback runs, then the callbacks
 * run, each with its weak reference held by a reference so that it stays
 * alive for the call (linked through `pending`, no allocation). In a
 * collection (CPython's Modules/gc_weakref.txt rule) the weak references to
 * unreachable objects are cleared before any finalizer runs, and only
 * those that are not unreachable themselves get their callbacks called: a
 * garbage weak reference's callback could see other garbage in a state
 * half torn by clear hooks.
 *
 * Learned from: CPython's Objects/weakrefobject.c (PyObject_ClearWeakRefs:
 * clear all, then call) and Modules/gc_weakref.txt; written afresh.
 */
#include <string.h>

#include "internal.h"

#define TABLE_MIN_CAPACITY 16

typedef struct weakref_object {
    OM_OBJECT_HEAD;
    om_object *referent;               /* borrowed; NULL once cleared */
    om_weakref_callback callback;      /* or NULL */
    struct weakref_object *next;       /* the referent's other weak references */
    struct weakref_object *prev;       /* NULL for the first of the list */
    struct weakref_object *pending;    /* callback queue while clearing */
} weakref_object;

typedef struct weakref_slot {
    const om_object *referent;         /* NULL = empty slot */
    weakref_object *first;             /* newest weak reference */
} weakref_slot;

/* The default runtime's table; every runtime has one (omi_weakref_table
 * in internal.h), reached through the calling thread's binding. */
omi_weakref_table omi_weakref_default;

#define table (*omi_bound()->weakrefs)

void omi_weakref_table_release(omi_weakref_table *t)
{
    om_raw_free(t->slots);
    *t = (omi_weakref_table){0};
}

static weakref_object *as_weakref(om_object *o)
{
    return (weakref_object *)o;
}

/* ---- The side table --------------------------------------------------- */

static size_t slot_home(const om_object *referent)
{
    return (size_t)(((uintptr_t)referent >> 4) * 0x9e3779b97f4a7c15ULL >> 7) &
           (table.capacity - 1);
}

/* The slot of referent, or NULL. */
static weakref_slot *table_find(const om_object *referent)
{
    if (table.capacity == 0)
        return NULL;
    for (size_t i = slot_home(referent);; i = (i + 1) & (table.capacity - 1)) {
        weakref_slot *s = &table.slots[i];
        if (s->referent == referent)
            return s;
        if (s->referent == NULL)
            return NULL;
    }
}

/* The empty slot where referent goes (the table has room). */
static weakref_slot *table_free_slot(const om_object *referent)
{
    size_t i = slot_home(referent);
    while (table.slots[i].referent != NULL)
        i = (i + 1) & (table.capacity - 1);
    return &table.slots[i];
}

/* Room for one more referent: 0, or -1 with OM_ENOMEM. */
static int table_reserve(void)
{
    if ((table.referents + 1) * 2 <= table.capacity)
        return 0;
    size_t capacity = table.capacity ? table.capacity * 2 : TABLE_MIN_CAPACITY;
    weakref_slot *slots = om_raw_calloc(capacity, sizeof *slots);
    if (slots == NULL)
        return -1;
    omi_weakref_table old = table;
    table.slots = slots;
    table.capacity = capacity;
    for (size_t i = 0; i < old.capacity; i++)
        if (old.slots[i].referent != NULL)
            *table_free_slot(old.slots[i].referent) = old.slots[i];
    om_raw_free(old.slots);
    return 0;
}

/* Empties slot s, shifting back the entries of its probe run. */
static void table_remove(weakref_slot *s)
{
    size_t mask = table.capacity - 1;
    size_t hole = (size_t)(s - table.slots);
    for (size_t i = (hole + 1) & mask; table.slots[i].referent != NULL; i = (i + 1) & mask) {
        size_t home = slot_home(table.slots[i].referent);
        /* entry i may fill the hole if its home is not in (hole, i] */
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            table.slots[hole] = table.slots[i];
            hole = i;
        }
    }
    table.slots[hole] = (weakref_slot){NULL, NULL};
    table.referents--;
}

/* ---- Clearing ----------------------------------------------------------- */

/* Removes referent's slot and clears its weak references; those with a
 * callback (in a collection: only those not unreachable themselves) are
 * increfed and pushed on *pending; those dying themselves are only cleared. */
static void clear_all(om_object *referent, bool in_collection, weakref_object **pending)
{
    weakref_slot *s = table_find(referent);
    if (s == NULL)
        return;
    weakref_object *wr = s->first;
    table_remove(s);
    while (wr != NULL) {
        weakref_object *next = wr->next;
        wr->referent = NULL;
        wr->next = wr->prev = NULL;
        /* A weak reference that is dying itself (count 0, or waiting on the
         * release stack, whose links its count word holds) gets no call. */
        if (wr->callback != NULL && OM_OBJ(wr)->ob_refcnt > 0 &&
            !(in_collection && omi_gc_is_unreachable(OM_OBJ(wr)))) {
            om_incref(OM_OBJ(wr));
            wr->pending = *pending;
            *pending = wr;
        }
        wr = next;
    }
}

void omi_weakref_run_pending(om_object *pending)
{
    weakref_object *wr = as_weakref(pending);
    while (wr != NULL) {
        weakref_object *next = wr->pending;
        wr->pending = NULL;
        wr->callback(OM_OBJ(wr));
        om_decref(OM_OBJ(wr));
        wr = next;
    }
}

void omi_weakref_object_dies(om_object *o)
{
    weakref_object *pending = NULL;
    clear_all(o, false, &pending);
    omi_weakref_run_pending(OM_OBJ(pending));
}

void omi_weakref_clear_for_collection(om_object *o, om_object **pending)
{
    weakref_object *queue = as_weakref(*pending);
    clear_all(o, true, &queue);
    *pending = OM_OBJ(queue);
}

/* ---- The type ------------------------------------------------------------- */

static int weakref_traverse(om_object *self, om_visit_fn visit, void *arg)
{
    (void)self;
    (void)visit;
    (void)arg;
    return 0;
}

/* Leaves the referent's list (the slot goes when the list empties). */
static void weakref_destroy(om_object *self)
{
    weakref_object *wr = as_weakref(self);
    if (wr->referent == NULL)
        return;
    if (wr->next != NULL)
        wr->next->prev = wr->prev;
    if (wr->prev != NULL) {
        wr->prev->next = wr->next;
    } else {
        weakref_slot *s = table_find(wr->referent);
        om_assert(s != NULL && s->first == wr);
        if (wr->next != NULL)
            s->first = wr->next;
        else
            table_remove(s);
    }
    wr->referent = NULL;
}

const om_type om_weakref_type = {
    .name = "weakref",
    .size = sizeof(weakref_object),
    .flags = OM_TYPE_GC,
    .traverse = weakref_traverse,
    .destroy = weakref_destroy,
};

/* ---- Public API --------------------------------------------------------------- */

om_object *om_weakref_new(om_object *obj, om_weakref_callback callback)
{
    if (obj == NULL) {
        omi_set_error(OM_EINVAL, "om_weakref_new: obj is NULL");
        return NULL;
    }
    if (obj->ob_refcnt <= 0)
        omi_object_dead(obj, "om_weakref_new");
    if (!(obj->ob_type->flags & OM_TYPE_WEAKREFABLE)) {
        omi_set_error(OM_ETYPE, "om_weakref_new: cannot create weak reference to '%s' object",
                      obj->ob_type->name);
        return NULL;
    }
    om_object *ref = om_new(&om_weakref_type);
    if (ref == NULL)
        return NULL;
    /* after om_new: a collection it started may have changed the table */
    weakref_slot *s = table_find(obj);
    if (s == NULL) {
        if (table_reserve() != 0) {
            om_decref(ref);
            return NULL;
        }
        s = table_free_slot(obj);
        *s = (weakref_slot){obj, NULL};
        table.referents++;
    }
    weakref_object *wr = as_weakref(ref);
    wr->referent = obj;
    wr->callback = callback;
    wr->next = s->first;
    if (s->first != NULL)
        s->first->prev = wr;
    s->first = wr;
    return ref;
}

om_object *om_weakref_get(om_object *ref)
{
    if (!omi_check_type(ref, &om_weakref_type, "om_weakref_get"))
        return NULL;
    om_object *referent = as_weakref(ref)->referent;
    return referent != NULL ? referent : om_none;
}

size_t om_weakref_count(const om_object *obj)
{
    if (obj == NULL || table.referents == 0)
        return 0;
    weakref_slot *s = table_find(obj);
    size_t n = 0;
    for (weakref_object *wr = s != NULL ? s->first : NULL; wr != NULL; wr = wr->next)
        n++;
    return n;
}
