/*
 * gc.c — the cycle collector's bookkeeping of tracked objects.
 *
 * Every object of an OM_TYPE_GC type has an omi_gc_head in front of it.
 * A tracked object is linked into the collector's list of young objects, a
 * circular doubly linked list through the heads with a sentinel, so that
 * both tracking and untracking are O(1):
 *
 *   sentinel <-> head <-> head <-> … <-> sentinel
 *   next: address of the next head; 0 means "not tracked"
 *   prev: address of the previous head | flags (OMI_GC_FLAG_MASK bits,
 *         which survive untracking: OMI_GC_FINALIZED is for life)
 *
 * Heads are 16-byte aligned, so the two low bits of an address are free for
 * the flags. The collection algorithm itself builds on these lists.
 */
#include "internal.h"

typedef struct gc_state {
    omi_gc_head young;          /* sentinel of the list of tracked objects */
    size_t tracked_count;       /* objects in the list */
} gc_state;

static gc_state gc = {
    .young = {(uintptr_t)&gc.young, (uintptr_t)&gc.young},
};

static omi_gc_head *gc_prev_of(const omi_gc_head *h)
{
    return (omi_gc_head *)(h->prev & ~OMI_GC_FLAG_MASK);
}

static void gc_set_prev(omi_gc_head *h, omi_gc_head *prev)
{
    h->prev = (uintptr_t)prev | (h->prev & OMI_GC_FLAG_MASK);
}

void omi_gc_track(om_object *o)
{
    omi_gc_head *h = omi_gc_head_of(o);
    if (h->next != 0)
        return;
    omi_gc_head *last = gc_prev_of(&gc.young);
    h->next = (uintptr_t)&gc.young;
    gc_set_prev(h, last);
    last->next = (uintptr_t)h;
    gc_set_prev(&gc.young, h);
    gc.tracked_count++;
}

void omi_gc_untrack(om_object *o)
{
    omi_gc_head *h = omi_gc_head_of(o);
    if (h->next == 0)
        return;
    omi_gc_head *prev = gc_prev_of(h);
    omi_gc_head *next = (omi_gc_head *)h->next;
    prev->next = (uintptr_t)next;
    gc_set_prev(next, prev);
    h->next = 0;
    h->prev &= OMI_GC_FLAG_MASK;
    gc.tracked_count--;
}
