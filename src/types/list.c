/*
 * list.c — the list type and its iterator.
 *
 * A list is a fixed-size GC object pointing at a buffer of references in
 * the MEM domain:
 *
 *   list_object (OBJ, 40 B + pre-header)      items (MEM)
 *   | refcnt | type | items | size | allocated |  ──▶ | r0 | r1 | … | r(size-1) | spare … |
 *
 * Invariants:
 *   0 ≤ size ≤ allocated ≤ LIST_MAX_ITEMS;  items == NULL ⇔ allocated == 0;
 *   items[0 … size-1] are references the list owns, never NULL;
 *   a list is tracked by the collector from birth to death.
 *
 * Growth (CPython's pattern): when an append or insert needs room for n
 * items the buffer becomes (n + n/8 + 6) rounded down to a multiple of 4,
 * so k appends cost O(k) copying in all; a jump larger than that slack
 * (an extend by many) gets exactly n rounded up to 4. When a removal
 * leaves less than half of the buffer used, it shrinks to the same
 * formula; a shrink that fails is harmless: the buffer stays as it was
 * and so does the thread's last error.
 *
 * Every change is made so that a failure leaves the list as it was: room
 * is made (the only step that can fail) before anything moves, and an
 * item is unlinked from the list before it is dropped, because dropping it
 * may run a hook (destroy, finalize) that looks at the list.
 *
 * Sort: a stable top-down merge sort (binary insertion below SORT_RUN
 * items, a merge skipped when the two halves are already in order). The
 * left half of each merge is copied to a scratch buffer of n/2 pointers;
 * when a compare fails mid-merge, the rest of the scratch copy goes back
 * into the hole it left, so the list always holds a permutation of its
 * items. During the sort the list is emptied (as in CPython) so that a
 * compare hook that touches the list cannot see or break a half-sorted
 * buffer.
 *
 * Learned from: CPython's Objects/listobject.c (list_resize's growth
 * formula, emptying the list while sorting); written afresh.
 */
#include <stdio.h>
#include <string.h>

#include "../internal.h"

#define LIST_MAX_ITEMS (PTRDIFF_MAX / sizeof(om_object *) - 16)
#define SORT_RUN 32   /* runs up to this length are sorted by binary insertion */

typedef struct list_object {
    OM_OBJECT_HEAD;
    om_object **items;           /* MEM buffer of `allocated` slots, or NULL */
    size_t size;                 /* slots in use: owned references */
    size_t allocated;            /* slots in the buffer */
} list_object;

static list_object *as_list(om_object *o)
{
    return (list_object *)o;
}

/* ---- The buffer --------------------------------------------------------- */

/* The capacity for `needed` items when the buffer holds `allocated`. */
static size_t list_capacity_for(size_t needed, size_t allocated)
{
    size_t slack = (needed >> 3) + 6;
    size_t capacity = (needed + slack) & ~(size_t)3;
    if (needed > allocated && needed - allocated > capacity - needed)
        capacity = (needed + 3) & ~(size_t)3;
    return capacity;
}

/* Gives the buffer `capacity` slots (≥ size): 0, or -1 with OM_ENOMEM and
 * the list unchanged. */
static int list_set_capacity(list_object *l, size_t capacity)
{
    if (capacity == 0) {
        om_mem_free(l->items);
        l->items = NULL;
        l->allocated = 0;
        return 0;
    }
    om_object **items = om_mem_realloc(l->items, capacity * sizeof *items);
    if (items == NULL)
        return -1;
    l->items = items;
    l->allocated = capacity;
    return 0;
}

/* Makes room for `needed` items: 0, or -1 with OM_ENOMEM, list unchanged. */
static int list_reserve(list_object *l, size_t needed, const char *function)
{
    if (needed <= l->allocated)
        return 0;
    if (needed > LIST_MAX_ITEMS) {
        omi_set_error(OM_ENOMEM, "%s: a list of %zu items does not fit in memory",
                      function, needed);
        return -1;
    }
    return list_set_capacity(l, list_capacity_for(needed, l->allocated));
}

/* After a removal: give back the buffer's unused half. A shrink that
 * fails is harmless (the removal stands), and it leaves the thread's last
 * error as it was: a successful call does not change it. */
static void list_maybe_shrink(list_object *l)
{
    if (l->size >= l->allocated / 2)
        return;
    if (l->size == 0) {
        list_set_capacity(l, 0);
        return;
    }
    size_t capacity = list_capacity_for(l->size, l->allocated);
    if (capacity >= l->allocated)
        return;
    om_error code = om_last_error();
    char message[256];
    snprintf(message, sizeof message, "%s", om_last_error_message());
    if (list_set_capacity(l, capacity) == 0)
        return;
    if (code == OM_OK)
        om_clear_error();
    else
        omi_set_error(code, "%s", message);
}

/* Removes the item at i (i < size) and returns the list's reference to it. */
static om_object *list_take(list_object *l, size_t i)
{
    om_object *item = l->items[i];
    memmove(&l->items[i], &l->items[i + 1], (l->size - i - 1) * sizeof *l->items);
    l->size--;
    list_maybe_shrink(l);
    return item;
}

/* Empties the list, then drops what it held (in that order: a destroy hook
 * may look at the list). */
static void list_drop_all(list_object *l)
{
    om_object **items = l->items;
    size_t size = l->size;
    l->items = NULL;
    l->size = 0;
    l->allocated = 0;
    for (size_t i = 0; i < size; i++)
        om_decref(items[i]);
    om_mem_free(items);
}

/* ---- Creation and the simple operations --------------------------------- */

om_object *om_list_new(size_t capacity)
{
    if (capacity > LIST_MAX_ITEMS) {
        omi_set_error(OM_ENOMEM, "om_list_new: a capacity of %zu items does not fit in memory",
                      capacity);
        return NULL;
    }
    om_object *l = om_new(&om_list_type);
    if (l == NULL)
        return NULL;
    if (list_set_capacity(as_list(l), capacity) != 0) {
        om_decref(l);
        return NULL;
    }
    return l;
}

static bool argument_is_live(om_object *v, const char *function)
{
    if (v == NULL) {
        omi_set_error(OM_EINVAL, "%s: object is NULL", function);
        return false;
    }
    if (v->ob_refcnt <= 0)
        omi_object_dead(v, function);
    return true;
}

int om_list_append(om_object *l, om_object *v)
{
    if (!omi_check_type(l, &om_list_type, "om_list_append") ||
        !argument_is_live(v, "om_list_append"))
        return -1;
    omi_debug_check_store(l, v, "om_list_append");
    list_object *list = as_list(l);
    if (list_reserve(list, list->size + 1, "om_list_append") != 0)
        return -1;
    om_incref(v);
    list->items[list->size++] = v;
    return 0;
}

/* Python's list.insert position: clamped to [0, size]. */
static size_t insert_position(ptrdiff_t index, size_t size)
{
    if (index < 0) {
        size_t back = (size_t)(-(index + 1)) + 1;
        return back >= size ? 0 : size - back;
    }
    return (size_t)index > size ? size : (size_t)index;
}

int om_list_insert(om_object *l, ptrdiff_t index, om_object *v)
{
    if (!omi_check_type(l, &om_list_type, "om_list_insert") ||
        !argument_is_live(v, "om_list_insert"))
        return -1;
    omi_debug_check_store(l, v, "om_list_insert");
    list_object *list = as_list(l);
    if (list_reserve(list, list->size + 1, "om_list_insert") != 0)
        return -1;
    size_t i = insert_position(index, list->size);
    memmove(&list->items[i + 1], &list->items[i], (list->size - i) * sizeof *list->items);
    om_incref(v);
    list->items[i] = v;
    list->size++;
    return 0;
}

/* The list behind l and index i, checked; NULL with the error set. */
static list_object *list_at(om_object *l, ptrdiff_t index, size_t *i, const char *function)
{
    if (!omi_check_type(l, &om_list_type, function) ||
        !omi_seq_index(index, as_list(l)->size, i, function))
        return NULL;
    return as_list(l);
}

om_object *om_list_get(om_object *l, ptrdiff_t index)
{
    size_t i;
    list_object *list = list_at(l, index, &i, "om_list_get");
    return list != NULL ? list->items[i] : NULL;
}

int om_list_set(om_object *l, ptrdiff_t index, om_object *v)
{
    size_t i;
    list_object *list = list_at(l, index, &i, "om_list_set");
    if (list == NULL || !argument_is_live(v, "om_list_set"))
        return -1;
    omi_debug_check_store(l, v, "om_list_set");
    om_incref(v);
    OM_SETREF(list->items[i], v);
    return 0;
}

om_object *om_list_pop(om_object *l, ptrdiff_t index)
{
    size_t i;
    list_object *list = list_at(l, index, &i, "om_list_pop");
    return list != NULL ? list_take(list, i) : NULL;
}

int om_list_delete(om_object *l, ptrdiff_t index)
{
    size_t i;
    list_object *list = list_at(l, index, &i, "om_list_delete");
    if (list == NULL)
        return -1;
    om_decref(list_take(list, i));
    return 0;
}

ptrdiff_t om_list_size(om_object *l)
{
    if (!omi_check_type(l, &om_list_type, "om_list_size"))
        return -1;
    return (ptrdiff_t)as_list(l)->size;
}

ptrdiff_t om_list_capacity(om_object *l)
{
    if (!omi_check_type(l, &om_list_type, "om_list_capacity"))
        return -1;
    return (ptrdiff_t)as_list(l)->allocated;
}

int om_list_clear(om_object *l)
{
    if (!omi_check_type(l, &om_list_type, "om_list_clear"))
        return -1;
    list_drop_all(as_list(l));
    return 0;
}

/* ---- Searching ---------------------------------------------------------- */

/* Index of the first item equal to v (*found = true), or none; -1 on
 * error. Each item is held while compared: an equal hook may change the
 * list, so its size is read again at every step. */
static int list_find(om_object *l, om_object *v, size_t *at, bool *found, const char *function)
{
    if (!omi_check_type(l, &om_list_type, function) || !argument_is_live(v, function))
        return -1;
    list_object *list = as_list(l);
    *found = false;
    for (size_t i = 0; i < list->size; i++) {
        om_object *item = list->items[i];
        om_incref(item);
        int eq = om_equal(item, v);
        om_decref(item);
        if (eq < 0)
            return -1;
        if (eq == 1) {
            *at = i;
            *found = true;
            break;
        }
    }
    return 0;
}

int om_list_contains(om_object *l, om_object *v)
{
    size_t at;
    bool found;
    if (list_find(l, v, &at, &found, "om_list_contains") != 0)
        return -1;
    return found;
}

ptrdiff_t om_list_index(om_object *l, om_object *v)
{
    size_t at;
    bool found;
    if (list_find(l, v, &at, &found, "om_list_index") != 0)
        return -1;
    if (!found) {
        omi_set_error(OM_EVALUE, "om_list_index: '%s' object is not in list", v->ob_type->name);
        return -1;
    }
    return (ptrdiff_t)at;
}

/* ---- Extend ------------------------------------------------------------- */

/* A list or tuple source: one reserve, then its items copied (read after
 * the reserve, since source may be the list itself). */
static int list_extend_array(list_object *list, om_object *source)
{
    bool is_list = source->ob_type == &om_list_type;
    size_t count = is_list ? as_list(source)->size : (size_t)om_tuple_size(source);
    if (list_reserve(list, list->size + count, "om_list_extend") != 0)
        return -1;
    for (size_t i = 0; i < count; i++) {
        om_object *item = is_list ? as_list(source)->items[i]
                                  : om_tuple_get(source, (ptrdiff_t)i);
        om_incref(item);
        list->items[list->size + i] = item;
    }
    list->size += count;
    return 0;
}

/* Any iterable: items appended as they come; on failure the ones appended
 * are removed and dropped again. */
static int list_extend_iter(list_object *list, om_object *iterable)
{
    om_object *it = om_iter(iterable);
    if (it == NULL)
        return -1;
    size_t old_size = list->size;
    int rc = 0;
    om_object *item;
    while ((item = om_next(it)) != NULL) {
        if (list_reserve(list, list->size + 1, "om_list_extend") != 0) {
            om_decref(item);
            rc = -1;
            break;
        }
        list->items[list->size++] = item;
    }
    if (item == NULL && om_last_error() != OM_OK)
        rc = -1;
    om_decref(it);
    while (rc != 0 && list->size > old_size)
        om_decref(list->items[--list->size]);
    return rc;
}

int om_list_extend(om_object *l, om_object *iterable)
{
    if (!omi_check_type(l, &om_list_type, "om_list_extend") ||
        !argument_is_live(iterable, "om_list_extend"))
        return -1;
    omi_debug_check_store(l, iterable, "om_list_extend");
    if (iterable->ob_type == &om_list_type || iterable->ob_type == &om_tuple_type)
        return list_extend_array(as_list(l), iterable);
    return list_extend_iter(as_list(l), iterable);
}

/* ---- Sort --------------------------------------------------------------- */

/* *less = (a < b): 0, or -1 when the two cannot be ordered. */
static int sort_less(om_object *a, om_object *b, bool *less)
{
    int order;
    if (om_compare(a, b, &order) != 0)
        return -1;
    *less = order < 0;
    return 0;
}

/* Binary insertion sort of items[0 … n-1]: each new item goes after the
 * equal ones before it (stable). An item not below its predecessor stays
 * where it is after one compare, so ordered input costs n - 1 compares.
 * Nothing moves before a compare succeeds. */
static int sort_insertion(om_object **items, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        om_object *pivot = items[i];
        bool less;
        if (sort_less(pivot, items[i - 1], &less) != 0)
            return -1;
        if (!less)
            continue;
        size_t lo = 0, hi = i - 1;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (sort_less(pivot, items[mid], &less) != 0)
                return -1;
            if (less)
                hi = mid;
            else
                lo = mid + 1;
        }
        memmove(&items[lo + 1], &items[lo], (i - lo) * sizeof *items);
        items[lo] = pivot;
    }
    return 0;
}

/* Merges sorted items[0 … mid-1] and items[mid … n-1] through scratch
 * (mid slots). On a failed compare the scratch items left fill the hole
 * [k, j), which has exactly their number of slots. */
static int sort_merge(om_object **items, size_t mid, size_t n, om_object **scratch)
{
    memcpy(scratch, items, mid * sizeof *items);
    size_t i = 0, j = mid, k = 0;
    int rc = 0;
    while (i < mid && j < n) {
        bool less;
        if (sort_less(items[j], scratch[i], &less) != 0) {
            rc = -1;
            break;
        }
        items[k++] = less ? items[j++] : scratch[i++];
    }
    memcpy(&items[k], &scratch[i], (mid - i) * sizeof *items);
    return rc;
}

static int sort_range(om_object **items, size_t n, om_object **scratch)
{
    if (n <= SORT_RUN)
        return sort_insertion(items, n);
    size_t mid = n / 2;
    if (sort_range(items, mid, scratch) != 0 || sort_range(items + mid, n - mid, scratch) != 0)
        return -1;
    bool less;
    if (sort_less(items[mid], items[mid - 1], &less) != 0)
        return -1;
    return less ? sort_merge(items, mid, n, scratch) : 0;
}

int om_list_sort(om_object *l)
{
    if (!omi_check_type(l, &om_list_type, "om_list_sort"))
        return -1;
    list_object *list = as_list(l);
    om_object **items = list->items;
    size_t size = list->size, allocated = list->allocated;
    om_object **scratch = NULL;
    if (size > SORT_RUN && (scratch = om_mem_malloc(size / 2 * sizeof *scratch)) == NULL)
        return -1;
    list->items = NULL;
    list->size = list->allocated = 0;
    int rc = sort_range(items, size, scratch);
    om_mem_free(scratch);
    bool changed = list->items != NULL;
    list_drop_all(list);
    list->items = items;
    list->size = size;
    list->allocated = allocated;
    if (changed) {
        omi_set_error(OM_EVALUE, "om_list_sort: the list was changed during the sort");
        return -1;
    }
    return rc;
}

/* ---- Type hooks --------------------------------------------------------- */

static om_object *list_item_at(om_object *l, size_t i)
{
    return i < as_list(l)->size ? as_list(l)->items[i] : NULL;
}

static int list_traverse(om_object *self, om_visit_fn visit, void *arg)
{
    list_object *list = as_list(self);
    for (size_t i = 0; i < list->size; i++) {
        int stop = visit(list->items[i], arg);
        if (stop != 0)
            return stop;
    }
    return 0;
}

static void list_destroy(om_object *self)
{
    list_drop_all(as_list(self));
}

static int list_equal(om_object *self, om_object *other)
{
    if (other->ob_type != &om_list_type || as_list(self)->size != as_list(other)->size)
        return 0;
    return omi_seq_equal(self, other, list_item_at);
}

static int list_compare(om_object *self, om_object *other, int *result)
{
    if (other->ob_type != &om_list_type) {
        omi_set_error(OM_ETYPE, "om_compare: '<' not supported between 'list' and '%s'",
                      other->ob_type->name);
        return -1;
    }
    return omi_seq_compare(self, other, list_item_at, result);
}

static size_t list_buffer_size(om_object *self)
{
    return as_list(self)->allocated * sizeof(om_object *);
}

static om_object *list_iter(om_object *self)
{
    return omi_seq_iterator_new(&om_list_iterator_type, self);
}

const om_type om_list_type = {
    .name = "list",
    .size = sizeof(list_object),
    .flags = OM_TYPE_GC,
    .traverse = list_traverse,
    .clear = list_destroy,
    .destroy = list_destroy,
    .equal = list_equal,
    .compare = list_compare,
    .iter = list_iter,
    .buffer_size = list_buffer_size,
};

/* ---- The iterator (omi_seq_iterator, tuple.c) --------------------------- */

static om_object *list_iterator_next(om_object *self)
{
    return omi_seq_iterator_next(self, list_item_at);
}

const om_type om_list_iterator_type =
    OMI_SEQ_ITERATOR_TYPE("list_iterator", list_iterator_next);
