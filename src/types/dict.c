/*
 * dict.c — the dict: an insertion-ordered compact hash table, as CPython's
 * since 3.6.
 *
 * A dict object points to one table, a single MEM block (NULL until the
 * first insertion and after clear):
 *
 *   dict_object            dict_table (one om_mem_malloc block)
 *   +-----------+         +--------------------------------------------+
 *   | head      |         | log2_size, log2_index_width, usable,       |
 *   | used      |         | nentries                                   |
 *   | table ----+-------->+--------------------------------------------+
 *   +-----------+         | indices: 1 << log2_size slots of           |
 *                         |   int8/16/32/64 (width by table size)      |
 *                         |   [ 1 | -1 | 0 | -2 | -1 | 2 | -1 | -1 ]   |
 *                         +--------------------------------------------+
 *                         | entries: usable_fraction(slots) of         |
 *                         |   {hash, key, value}, in insertion order   |
 *                         |   0: {h("a"), "a", 1}                      |
 *                         |   1: {h("b"), "b", 2}                      |
 *                         |   2: {h("c"), NULL, NULL}   <- deleted     |
 *                         |   3..: not yet used                        |
 *                         +--------------------------------------------+
 *
 * A slot of the sparse index holds IX_EMPTY (-1, never used), IX_DUMMY (-2,
 * its entry was deleted) or the position of an entry in the dense array.
 * Only the index is hashed into; the entries stay in insertion order, so
 * iteration is a walk over the dense array that skips NULL keys, and the
 * table costs 24 B per usable entry plus 1–8 B per slot instead of 24 B per
 * slot. Slot widths: int8 below 256 slots, int16 below 2^16, int32 below
 * 2^32, else int64; each holds every entry position of its table.
 *
 * Invariants (slots = 1 << log2_size, live = entries with key != NULL):
 *   usable + nentries = usable_fraction(slots) = ⌊2·slots / 3⌋
 *   used = |live| ≤ nentries
 *   |slots holding an entry position| = used
 *   |slots not IX_EMPTY| ≤ nentries < slots      (so every probe ends)
 *   every live entry e is reachable: the probe sequence of e.hash meets
 *   the slot holding its position before any IX_EMPTY slot.
 *
 * Probing (open addressing with perturbation, as CPython): start at
 * slot = hash & mask; then perturb >>= 5, slot = (5·slot + perturb + 1) &
 * mask. While perturb is non-zero the high hash bits take part, which
 * spreads identity hashes of ints; once it is zero, slot ↦ 5·slot + 1 is a
 * full cycle mod 2^k, so every slot is reached.
 *
 * Lookup compares the key pointer first (interned and reused keys match
 * without a call), then the stored hash, and only then calls equal. A key
 * type's equal hook may do anything, the dict's own mutation included: a
 * lookup holds a reference to the entry key around the call and starts over
 * when the table or the entry changed meanwhile. Two keys of one built-in
 * value type (str, int, bytes, float) skip that guard: their hooks only
 * compare values.
 *
 * Insertion appends to the entries and takes the first slot of the probe
 * sequence that holds no position (empty or dummy: the key is known to be
 * absent). When usable reaches 0 the table is rebuilt for used·3 slots
 * (rounded up to a power of two, at least 8): live entries are copied in
 * order, dummies and holes disappear; a table full of deletions thereby
 * shrinks. Deletion writes IX_DUMMY into the slot and NULL into the entry;
 * the table itself only shrinks at such a rebuild (or clear).
 *
 * Failure safety: everything that can fail (hashing, an equal hook, the new
 * table) happens before the dict is touched; references are dropped only
 * after the dict is consistent again, because a drop can run a destroy or
 * finalize hook that looks at the dict.
 *
 * Learned from: CPython's Objects/dictobject.c (the compact layout, the
 * probing, the growth rate, the mutation check of iterators) and Raymond
 * Hettinger's 2012 python-dev proposal of the compact dict; written afresh.
 */
#include <string.h>

#include "internal.h"

/* ---- Tunables ------------------------------------------------------------ */

#define DICT_LOG2_MIN_SLOTS 3   /* the smallest table has 8 slots */
#define PERTURB_SHIFT 5         /* perturb bits mixed in per probe step */

_Static_assert(PERTURB_SHIFT > 0 && PERTURB_SHIFT < 64, "probing must consume the hash");

/* ---- Layout -------------------------------------------------------------- */

enum {
    IX_EMPTY = -1,      /* slot never used: a probe ends here */
    IX_DUMMY = -2,      /* slot of a deleted entry: a probe goes on */
    IX_ERROR = -3,      /* lookup result: the error is recorded */
    IX_RESTART = -4,    /* probe result: an equal hook changed the table */
};

typedef struct dict_entry {
    int64_t hash;           /* the key's hash (valid while key != NULL) */
    om_object *key;         /* owned; NULL: deleted */
    om_object *value;       /* owned; NULL when key is */
} dict_entry;

typedef struct dict_table {
    uint8_t log2_size;          /* slots = 1 << log2_size, ≥ DICT_LOG2_MIN_SLOTS */
    uint8_t log2_index_width;   /* bytes per slot = 1 << this (0 … 3) */
    size_t usable;              /* entries that may still be appended */
    size_t nentries;            /* entries appended, deleted ones included */
    char indices[];             /* the slots, then the entries */
} dict_table;

_Static_assert(offsetof(dict_table, indices) % sizeof(int64_t) == 0, "slots of 8 B aligned");
_Static_assert(((size_t)1 << DICT_LOG2_MIN_SLOTS) % sizeof(int64_t) == 0,
               "entries aligned after the smallest index array");

typedef struct dict_object {
    OM_OBJECT_HEAD;
    size_t used;            /* live keys */
    dict_table *table;      /* NULL when no key was stored since creation or clear */
} dict_object;

static dict_object *dict_of(om_object *o)
{
    return (dict_object *)o;
}

static size_t table_slots(const dict_table *t)
{
    return (size_t)1 << t->log2_size;
}

static size_t usable_fraction(size_t slots)
{
    return (slots << 1) / 3;
}

static unsigned index_width_log2(unsigned log2_size)
{
    return log2_size < 8 ? 0 : log2_size < 16 ? 1 : log2_size < 32 ? 2 : 3;
}

static dict_entry *table_entries(dict_table *t)
{
    return (dict_entry *)(t->indices + (table_slots(t) << t->log2_index_width));
}

static inline ptrdiff_t index_get(const dict_table *t, size_t slot)
{
    switch (t->log2_index_width) {
    case 0:
        return ((const int8_t *)t->indices)[slot];
    case 1:
        return ((const int16_t *)t->indices)[slot];
    case 2:
        return ((const int32_t *)t->indices)[slot];
    default:
        return (ptrdiff_t)((const int64_t *)t->indices)[slot];
    }
}

static inline void index_set(dict_table *t, size_t slot, ptrdiff_t ix)
{
    switch (t->log2_index_width) {
    case 0:
        ((int8_t *)t->indices)[slot] = (int8_t)ix;
        break;
    case 1:
        ((int16_t *)t->indices)[slot] = (int16_t)ix;
        break;
    case 2:
        ((int32_t *)t->indices)[slot] = (int32_t)ix;
        break;
    default:
        ((int64_t *)t->indices)[slot] = (int64_t)ix;
        break;
    }
}

/* ---- Tables -------------------------------------------------------------- */

/* Bytes of a table of 1 << log2_size slots, or false when it cannot exist. */
static bool table_size_for(unsigned log2_size, size_t *size)
{
    if (log2_size > 8 * sizeof(size_t) - 4)
        return false;
    size_t slots = (size_t)1 << log2_size, entry_bytes;
    if (!omi_mul_size(usable_fraction(slots), sizeof(dict_entry), &entry_bytes))
        return false;
    size_t index_bytes = slots << index_width_log2(log2_size);
    *size = sizeof(dict_table) + index_bytes + entry_bytes;
    return *size > entry_bytes && *size <= PTRDIFF_MAX;
}

static size_t table_bytes(const dict_table *t)
{
    size_t size = 0;
    table_size_for(t->log2_size, &size);
    return size;
}

/* An empty table of 1 << log2_size slots, or NULL with OM_ENOMEM. */
static dict_table *table_new(unsigned log2_size)
{
    size_t size;
    if (!table_size_for(log2_size, &size)) {
        omi_set_error(OM_ENOMEM, "dict: a table of 2^%u slots does not fit in memory", log2_size);
        return NULL;
    }
    dict_table *t = om_mem_malloc(size);
    if (t == NULL)
        return NULL;
    t->log2_size = (uint8_t)log2_size;
    t->log2_index_width = (uint8_t)index_width_log2(log2_size);
    t->usable = usable_fraction(table_slots(t));
    t->nentries = 0;
    /* All bits set is IX_EMPTY at every width. */
    memset(t->indices, 0xff, table_slots(t) << t->log2_index_width);
    return t;
}

/* log2 of the smallest table with at least min_slots slots (≥ 8). */
static unsigned log2_slots_for(size_t min_slots)
{
    unsigned log2 = DICT_LOG2_MIN_SLOTS;
    while (log2 < 8 * sizeof(size_t) - 1 && ((size_t)1 << log2) < min_slots)
        log2++;
    return log2;
}

/* The first slot of hash's probe sequence that holds no entry position. */
static size_t table_free_slot(const dict_table *t, int64_t hash)
{
    size_t mask = table_slots(t) - 1, slot = (size_t)hash & mask;
    uint64_t perturb = (uint64_t)hash;
    while (index_get(t, slot) >= 0) {
        perturb >>= PERTURB_SHIFT;
        slot = (slot * 5 + (size_t)perturb + 1) & mask;
    }
    return slot;
}

/* The slot that holds entry position ix (whose key hashed to hash). */
static size_t table_slot_of(const dict_table *t, int64_t hash, ptrdiff_t ix)
{
    size_t mask = table_slots(t) - 1, slot = (size_t)hash & mask;
    uint64_t perturb = (uint64_t)hash;
    for (ptrdiff_t at = index_get(t, slot); at != ix; at = index_get(t, slot)) {
        om_assert(at != IX_EMPTY);
        perturb >>= PERTURB_SHIFT;
        slot = (slot * 5 + (size_t)perturb + 1) & mask;
    }
    return slot;
}

/* Appends an entry (references move in) and indexes it. Needs usable > 0. */
static void table_append(dict_table *t, int64_t hash, om_object *key, om_object *value)
{
    om_assert(t->usable > 0);
    size_t n = t->nentries;
    index_set(t, table_free_slot(t, hash), (ptrdiff_t)n);
    table_entries(t)[n] = (dict_entry){hash, key, value};
    t->nentries = n + 1;
    t->usable--;
}

/* Appends the live ones of count entries at from to the empty table t, in
 * order; references move with them (counts unchanged). */
static void table_fill(dict_table *t, const dict_entry *from, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (from[i].key != NULL)
            table_append(t, from[i].hash, from[i].key, from[i].value);
}

#if OM_DEBUG >= 2
/* Expensive check of the invariants of the design comment (after rebuilds). */
static void table_check(dict_table *t, size_t used)
{
    size_t live = 0, positions = 0;
    dict_entry *e = table_entries(t);
    for (size_t i = 0; i < t->nentries; i++)
        if (e[i].key != NULL) {
            live++;
            om_assert(index_get(t, table_slot_of(t, e[i].hash, (ptrdiff_t)i)) == (ptrdiff_t)i);
        }
    for (size_t s = 0; s < table_slots(t); s++)
        positions += index_get(t, s) >= 0;
    om_assert(live == used && positions == used);
    om_assert(t->usable + t->nentries == usable_fraction(table_slots(t)));
}
#else
static void table_check(dict_table *t, size_t used)
{
    (void)t;
    (void)used;
}
#endif

/* ---- Keys ---------------------------------------------------------------- */

/* The hash of key into *hash; false with OM_EINVAL (NULL key), OM_ETYPE
 * (unhashable) or the hook's error. Calls the hook directly: cheap for a
 * str, whose hash is cached. */
static inline bool key_hash(om_object *key, const char *function, int64_t *hash)
{
    if (omi_unlikely(key == NULL)) {
        omi_set_error(OM_EINVAL, "%s: key is NULL", function);
        return false;
    }
    if (omi_unlikely(key->ob_refcnt <= 0))
        omi_object_dead(key, function);
    int64_t (*hash_fn)(om_object *) = key->ob_type->hash;
    if (omi_unlikely(hash_fn == NULL)) {
        omi_set_error(OM_ETYPE, "%s: unhashable type: '%s'", function, key->ob_type->name);
        return false;
    }
    *hash = hash_fn(key);
    return *hash != -1;
}

/* om_equal for two different objects, straight to the hook when both have
 * the same type. */
static int keys_equal(om_object *a, om_object *b)
{
    int (*equal)(om_object *, om_object *) = a->ob_type->equal;
    if (equal != NULL && a->ob_type == b->ob_type)
        return equal(a, b);
    return om_equal(a, b);
}

/* The equal hooks of these built-in types compare values and call nothing
 * else, so they cannot change a dict: no guard is needed around them. */
static inline bool equal_is_pure(const om_type *t)
{
    return t == &om_str_type || t == &om_int_type || t == &om_bytes_type ||
           t == &om_float_type;
}

/* key against entry e of t, whose hash matches, with any equal hook: 1, 0,
 * -1 (error), or IX_RESTART when the hook changed d's table or the entry. */
static OMI_NOINLINE int entry_matches_guarded(dict_object *d, dict_table *t, dict_entry *e,
                                              om_object *key)
{
    om_object *start = e->key;
    om_incref(start);
    int eq = keys_equal(start, key);
    om_decref(start);
    if (eq < 0)
        return -1;
    if (d->table != t || e->key != start)
        return IX_RESTART;
    return eq;
}

/* entry_matches_guarded, straight to the hook for two keys of one pure type
 * (two distinct str objects with the same text: the common slow case). */
static inline int entry_matches(dict_object *d, dict_table *t, dict_entry *e, om_object *key)
{
    const om_type *type = e->key->ob_type;
    if (type == key->ob_type && equal_is_pure(type))
        return type->equal(e->key, key);
    return entry_matches_guarded(d, t, e, key);
}

/* One probe of table t for key: entry position, IX_EMPTY, IX_ERROR or
 * IX_RESTART. The hot loop: a slot read, a pointer compare, a hash compare. */
static inline ptrdiff_t table_probe(dict_object *d, dict_table *t, om_object *key, int64_t hash)
{
    size_t mask = table_slots(t) - 1, slot = (size_t)hash & mask;
    uint64_t perturb = (uint64_t)hash;
    dict_entry *entries = table_entries(t);
    for (;;) {
        ptrdiff_t ix = index_get(t, slot);
        if (ix >= 0) {
            dict_entry *e = &entries[ix];
            if (e->key == key)
                return ix;
            if (e->hash == hash) {
                int eq = entry_matches(d, t, e, key);
                if (eq != 0)
                    return eq == 1 ? ix : eq == IX_RESTART ? IX_RESTART : IX_ERROR;
            }
        } else if (ix == IX_EMPTY) {
            return IX_EMPTY;
        }
        perturb >>= PERTURB_SHIFT;
        slot = (slot * 5 + (size_t)perturb + 1) & mask;
    }
}

/* The entry position of key in d, IX_EMPTY when absent, IX_ERROR on error. */
static inline ptrdiff_t dict_lookup(dict_object *d, om_object *key, int64_t hash)
{
    for (;;) {
        dict_table *t = d->table;
        if (t == NULL)
            return IX_EMPTY;
        ptrdiff_t ix = table_probe(d, t, key, hash);
        if (omi_likely(ix != IX_RESTART))
            return ix;
    }
}

/* The common front of the keyed calls: type check, hash, lookup. */
static inline ptrdiff_t dict_locate(om_object *d, om_object *key, const char *function,
                                    int64_t *hash)
{
    if (!omi_check_type(d, &om_dict_type, function) || !key_hash(key, function, hash))
        return IX_ERROR;
    return dict_lookup(dict_of(d), key, *hash);
}

static OMI_NOINLINE void key_error(om_object *key, const char *function)
{
    omi_set_error(OM_EKEY, "%s: key not found (a '%s')", function, key->ob_type->name);
}

/* ---- Changing a dict ----------------------------------------------------- */

/* Rebuilds d's table with room for used·3 slots: compacts, grows or
 * shrinks. -1 with OM_ENOMEM and d unchanged. */
static int dict_rebuild(dict_object *d)
{
    dict_table *t = table_new(log2_slots_for(d->used * 3));
    if (t == NULL)
        return -1;
    dict_table *old = d->table;
    if (old != NULL) {
        table_fill(t, table_entries(old), old->nentries);
        om_mem_free(old);
    }
    table_check(t, d->used);
    d->table = t;
    return 0;
}

static int dict_insert_new(dict_object *d, int64_t hash, om_object *key, om_object *value)
{
    if (d->table == NULL || d->table->usable == 0) {
        if (dict_rebuild(d) < 0)
            return -1;
    }
    om_incref(key);
    om_incref(value);
    table_append(d->table, hash, key, value);
    d->used++;
    return 0;
}

/* Takes entry ix (key hashed to hash) out of d; the references to its key
 * and value move to the caller. */
static dict_entry dict_remove(dict_object *d, ptrdiff_t ix, int64_t hash)
{
    dict_table *t = d->table;
    index_set(t, table_slot_of(t, hash, ix), IX_DUMMY);
    dict_entry *e = &table_entries(t)[ix];
    dict_entry taken = *e;
    e->key = NULL;
    e->value = NULL;
    d->used--;
    return taken;
}

/* Empties d (table detached first), then drops the references. */
static void dict_empty(dict_object *d)
{
    dict_table *t = d->table;
    if (t == NULL)
        return;
    d->table = NULL;
    d->used = 0;
    dict_entry *e = table_entries(t);
    for (size_t i = 0; i < t->nentries; i++) {
        om_xdecref(e[i].key);
        om_xdecref(e[i].value);
    }
    om_mem_free(t);
}

/* ---- The public calls ---------------------------------------------------- */

om_object *om_dict_new(void)
{
    return om_new(&om_dict_type);
}

int om_dict_set(om_object *d, om_object *key, om_object *value)
{
    int64_t hash;
    ptrdiff_t ix = dict_locate(d, key, "om_dict_set", &hash);
    if (ix == IX_ERROR)
        return -1;
    if (omi_unlikely(value == NULL)) {
        omi_set_error(OM_EINVAL, "om_dict_set: value is NULL");
        return -1;
    }
    if (omi_unlikely(value->ob_refcnt <= 0))
        omi_object_dead(value, "om_dict_set");
    omi_debug_check_store(d, key, "om_dict_set");
    omi_debug_check_store(d, value, "om_dict_set");
    if (ix == IX_EMPTY)
        return dict_insert_new(dict_of(d), hash, key, value);
    om_incref(value);
    OM_SETREF(table_entries(dict_of(d)->table)[ix].value, value);
    return 0;
}

int om_dict_find(om_object *d, om_object *key, om_object **value)
{
    int64_t hash;
    ptrdiff_t ix = dict_locate(d, key, "om_dict_find", &hash);
    if (ix < 0)
        return ix == IX_EMPTY ? 0 : -1;
    if (value != NULL)
        *value = table_entries(dict_of(d)->table)[ix].value;
    return 1;
}

om_object *om_dict_get(om_object *d, om_object *key)
{
    int64_t hash;
    ptrdiff_t ix = dict_locate(d, key, "om_dict_get", &hash);
    if (omi_likely(ix >= 0))
        return table_entries(dict_of(d)->table)[ix].value;
    if (ix == IX_EMPTY)
        key_error(key, "om_dict_get");
    return NULL;
}

int om_dict_contains(om_object *d, om_object *key)
{
    int64_t hash;
    ptrdiff_t ix = dict_locate(d, key, "om_dict_contains", &hash);
    return ix >= 0 ? 1 : ix == IX_EMPTY ? 0 : -1;
}

om_object *om_dict_pop(om_object *d, om_object *key)
{
    int64_t hash;
    ptrdiff_t ix = dict_locate(d, key, "om_dict_pop", &hash);
    if (ix < 0) {
        if (ix == IX_EMPTY)
            key_error(key, "om_dict_pop");
        return NULL;
    }
    dict_entry taken = dict_remove(dict_of(d), ix, hash);
    om_decref(taken.key);
    return taken.value;
}

int om_dict_delete(om_object *d, om_object *key)
{
    int64_t hash;
    ptrdiff_t ix = dict_locate(d, key, "om_dict_delete", &hash);
    if (ix < 0) {
        if (ix == IX_EMPTY)
            key_error(key, "om_dict_delete");
        return -1;
    }
    dict_entry taken = dict_remove(dict_of(d), ix, hash);
    om_decref(taken.key);
    om_decref(taken.value);
    return 0;
}

ptrdiff_t om_dict_size(om_object *d)
{
    if (!omi_check_type(d, &om_dict_type, "om_dict_size"))
        return -1;
    return (ptrdiff_t)dict_of(d)->used;
}

int om_dict_clear(om_object *d)
{
    if (!omi_check_type(d, &om_dict_type, "om_dict_clear"))
        return -1;
    dict_empty(dict_of(d));
    return 0;
}

int om_dict_next(om_object *d, size_t *pos, om_object **key, om_object **value)
{
    if (!omi_check_type(d, &om_dict_type, "om_dict_next"))
        return 0;
    if (pos == NULL) {
        omi_set_error(OM_EINVAL, "om_dict_next: pos is NULL");
        return 0;
    }
    dict_table *t = dict_of(d)->table;
    if (t == NULL)
        return 0;
    dict_entry *e = table_entries(t);
    size_t i = *pos;
    while (i < t->nentries && e[i].key == NULL)
        i++;
    if (i >= t->nentries)
        return 0;
    *pos = i + 1;
    if (key != NULL)
        *key = e[i].key;
    if (value != NULL)
        *value = e[i].value;
    return 1;
}

om_object *om_dict_copy(om_object *d)
{
    if (!omi_check_type(d, &om_dict_type, "om_dict_copy"))
        return NULL;
    dict_object *src = dict_of(d);
    om_object *copy = om_dict_new();
    if (copy == NULL || src->used == 0)
        return copy;
    /* The smallest table whose usable part holds every key. */
    dict_table *t = table_new(log2_slots_for((src->used * 3 + 1) / 2));
    if (t == NULL) {
        om_decref(copy);
        return NULL;
    }
    table_fill(t, table_entries(src->table), src->table->nentries);
    dict_entry *e = table_entries(t);
    for (size_t i = 0; i < t->nentries; i++) {
        om_incref(e[i].key);
        om_incref(e[i].value);
    }
    table_check(t, src->used);
    dict_of(copy)->table = t;
    dict_of(copy)->used = src->used;
    return copy;
}

/* ---- Type hooks ---------------------------------------------------------- */

static int dict_traverse(om_object *self, om_visit_fn visit, void *arg)
{
    dict_table *t = dict_of(self)->table;
    if (t == NULL)
        return 0;
    dict_entry *e = table_entries(t);
    for (size_t i = 0; i < t->nentries; i++) {
        if (e[i].key == NULL)
            continue;
        int stop = visit(e[i].key, arg);
        if (stop == 0)
            stop = visit(e[i].value, arg);
        if (stop != 0)
            return stop;
    }
    return 0;
}

static void dict_clear_hook(om_object *self)
{
    dict_empty(dict_of(self));
}

/* Entry i of a's table held (references taken) while b is searched and the
 * values compared: 1, 0 or -1. */
static int dict_entry_in(dict_entry held, dict_object *b)
{
    om_incref(held.key);
    om_incref(held.value);
    int result = 0;
    ptrdiff_t ix = dict_lookup(b, held.key, held.hash);
    if (ix >= 0) {
        om_object *other = table_entries(b->table)[ix].value;
        om_incref(other);
        result = om_equal(held.value, other);
        om_decref(other);
    } else if (ix == IX_ERROR) {
        result = -1;
    }
    om_decref(held.key);
    om_decref(held.value);
    return result;
}

/* Same size and every key of a maps to an equal value in b. Re-reads a's
 * table at each step: an equal hook may change either dict. */
static int dict_equal(om_object *self, om_object *other)
{
    if (!om_is_type(other, &om_dict_type))
        return 0;
    dict_object *a = dict_of(self), *b = dict_of(other);
    if (a->used != b->used)
        return 0;
    for (size_t i = 0; a->table != NULL && i < a->table->nentries; i++) {
        dict_entry e = table_entries(a->table)[i];
        if (e.key == NULL)
            continue;
        int eq = dict_entry_in(e, b);
        if (eq <= 0)
            return eq;
    }
    return 1;
}

static size_t dict_buffer_size(om_object *self)
{
    dict_table *t = dict_of(self)->table;
    return t != NULL ? table_bytes(t) : 0;
}

static om_object *dict_iter_hook(om_object *self);

const om_type om_dict_type = {
    .name = "dict",
    .size = sizeof(dict_object),
    .flags = OM_TYPE_GC,
    .traverse = dict_traverse,
    .clear = dict_clear_hook,
    .destroy = dict_clear_hook,
    .equal = dict_equal,
    .iter = dict_iter_hook,
    .buffer_size = dict_buffer_size,
};

/* ---- Iterators ----------------------------------------------------------- */

/* The three iterator types share this struct and differ in next. */
typedef struct dict_iter {
    OM_OBJECT_HEAD;
    dict_object *dict;      /* owned; NULL once exhausted */
    size_t pos;             /* the next entry position to look at */
    size_t expected_used;   /* dict->used when made; SIZE_MAX after a size change */
} dict_iter;

static int dict_iter_traverse(om_object *self, om_visit_fn visit, void *arg)
{
    dict_iter *it = (dict_iter *)self;
    return it->dict != NULL ? visit(OM_OBJ(it->dict), arg) : 0;
}

static void dict_iter_clear(om_object *self)
{
    OM_CLEAR(((dict_iter *)self)->dict);
}

/* The next live entry without consuming it (it->pos points at it), or NULL:
 * at the end (the iterator lets its dict go; no error) or when the dict's
 * size changed since the iterator was made (OM_EVALUE, for good). */
static dict_entry *dict_iter_peek(dict_iter *it)
{
    dict_object *d = it->dict;
    if (d == NULL)
        return NULL;
    if (d->used != it->expected_used) {
        it->expected_used = SIZE_MAX;
        omi_set_error(OM_EVALUE, "dict changed size during iteration");
        return NULL;
    }
    dict_table *t = d->table;
    for (; t != NULL && it->pos < t->nentries; it->pos++) {
        dict_entry *e = &table_entries(t)[it->pos];
        if (e->key != NULL)
            return e;
    }
    OM_CLEAR(it->dict);
    return NULL;
}

static om_object *dict_keys_next(om_object *self)
{
    dict_iter *it = (dict_iter *)self;
    dict_entry *e = dict_iter_peek(it);
    if (e == NULL)
        return NULL;
    it->pos++;
    om_incref(e->key);
    return e->key;
}

static om_object *dict_values_next(om_object *self)
{
    dict_iter *it = (dict_iter *)self;
    dict_entry *e = dict_iter_peek(it);
    if (e == NULL)
        return NULL;
    it->pos++;
    om_incref(e->value);
    return e->value;
}

static om_object *dict_items_next(om_object *self)
{
    dict_iter *it = (dict_iter *)self;
    dict_entry *e = dict_iter_peek(it);
    if (e == NULL)
        return NULL;
    /* Held across the allocation, which might run hooks that change the dict. */
    om_object *key = e->key, *value = e->value;
    om_incref(key);
    om_incref(value);
    om_object *pair = om_tuple_pack(2, key, value);
    om_decref(key);
    om_decref(value);
    if (pair != NULL)
        it->pos++;
    return pair;
}

#define DICT_ITER_TYPE(type_name, next_fn)          \
    {                                               \
        .name = type_name,                          \
        .size = sizeof(dict_iter),                  \
        .flags = OM_TYPE_GC,                        \
        .traverse = dict_iter_traverse,             \
        .clear = dict_iter_clear,                   \
        .destroy = dict_iter_clear,                 \
        .iter = omi_iterator_self,                     \
        .next = next_fn,                            \
    }

static const om_type dict_keys_iter_type = DICT_ITER_TYPE("dict_keyiterator", dict_keys_next);
static const om_type dict_values_iter_type =
    DICT_ITER_TYPE("dict_valueiterator", dict_values_next);
static const om_type dict_items_iter_type = DICT_ITER_TYPE("dict_itemiterator", dict_items_next);

static om_object *dict_iter_new(om_object *d, const om_type *kind, const char *function)
{
    if (!omi_check_type(d, &om_dict_type, function))
        return NULL;
    dict_iter *it = (dict_iter *)om_new(kind);
    if (it == NULL)
        return NULL;
    om_incref(d);
    it->dict = dict_of(d);
    it->expected_used = dict_of(d)->used;
    return OM_OBJ(it);
}

static om_object *dict_iter_hook(om_object *self)
{
    return dict_iter_new(self, &dict_keys_iter_type, "om_iter");
}

om_object *om_dict_keys(om_object *d)
{
    return dict_iter_new(d, &dict_keys_iter_type, "om_dict_keys");
}

om_object *om_dict_values(om_object *d)
{
    return dict_iter_new(d, &dict_values_iter_type, "om_dict_values");
}

om_object *om_dict_items(om_object *d)
{
    return dict_iter_new(d, &dict_items_iter_type, "om_dict_items");
}
