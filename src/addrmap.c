/*
 * addrmap.c — which memory objmem owns, found in O(1) from any pointer.
 *
 * om_*_free, om_*_realloc and om_usable_size take a bare pointer; the map
 * tells whether it lies in memory objmem owns and who owns it, without
 * touching the memory itself (so a foreign pointer never faults). As in
 * CPython ≥ 3.10 it is a radix tree over the address space, here two levels
 * because arenas are aligned to their size:
 *
 *   address bits  47 ........ 34 | 33 ........ 20 | 19 ....... 0
 *                 root index     | leaf index     | inside the arena
 *
 *   omi_addrmap_root[2^14]  static, zero until used (costs no RSS)
 *     └─ leaf[2^14]         128 KiB, mapped on first use, never freed
 *          └─ entry         0 = not ours; else descriptor | kind
 *
 * A lookup is two dependent loads. Leaves are installed with a
 * compare-and-swap and entries are atomics, so heaps owned by different
 * threads may map and unmap arenas concurrently; an entry is only ever read
 * for memory whose owner is serialised with its reader.
 *
 * om_heap_check asks omi_addrmap_check that every arena and mapping of the
 * heap it walks is registered, with its own descriptor, in every slot it
 * covers (so free and usable_size would find it).
 */
#include "internal.h"

_Atomic(omi_map_entry *) omi_addrmap_root[OMI_MAP_ROOT_COUNT];

#define ADDRMAP_LEAF_BYTES (OMI_MAP_LEAF_COUNT * sizeof(omi_map_entry))

/* The leaf covering addr, created if `create`; NULL if absent or unmappable. */
static omi_map_entry *addrmap_leaf(uintptr_t addr, bool create)
{
    size_t root_index = addr >> (OM_ARENA_SHIFT + OMI_MAP_LEAF_BITS);
    if (root_index >= OMI_MAP_ROOT_COUNT)
        return NULL;
    omi_map_entry *leaf = atomic_load_explicit(&omi_addrmap_root[root_index],
                                               memory_order_acquire);
    if (leaf != NULL || !create)
        return leaf;
    omi_map_entry *fresh = omi_os_map(ADDRMAP_LEAF_BYTES);
    if (fresh == NULL)
        return NULL;
    omi_map_entry *expected = NULL;
    if (atomic_compare_exchange_strong_explicit(&omi_addrmap_root[root_index], &expected,
                                                fresh, memory_order_acq_rel,
                                                memory_order_acquire))
        return fresh;
    omi_os_unmap(fresh, ADDRMAP_LEAF_BYTES);   /* another thread won the race */
    return expected;
}

static void addrmap_store(uintptr_t base, size_t size, uintptr_t entry, bool create)
{
    for (uintptr_t addr = base; addr < base + size; addr += OMI_ARENA_SIZE) {
        omi_map_entry *leaf = addrmap_leaf(addr, create);
        if (leaf != NULL) {
            size_t leaf_index = (addr >> OM_ARENA_SHIFT) & (OMI_MAP_LEAF_COUNT - 1);
            atomic_store_explicit(&leaf[leaf_index], entry, memory_order_release);
        }
    }
}

int omi_addrmap_set(uintptr_t base, size_t size, uintptr_t entry)
{
    om_assert((base & (OMI_ARENA_SIZE - 1)) == 0);
    for (uintptr_t addr = base; addr < base + size; addr += OMI_ARENA_SIZE) {
        if (addrmap_leaf(addr, true) == NULL) {
            omi_set_error(OM_ENOMEM, "address map: cannot map a node for %p", (void *)addr);
            return -1;
        }
    }
    addrmap_store(base, size, entry, true);
    return 0;
}

void omi_addrmap_clear(uintptr_t base, size_t size)
{
    addrmap_store(base, size, 0, false);
}

void omi_addrmap_check(uintptr_t base, size_t size, uintptr_t entry, const char *what)
{
    for (uintptr_t addr = base; addr < base + size; addr += OMI_ARENA_SIZE) {
        uintptr_t found = omi_addrmap_lookup((const void *)addr);
        if (found != entry)
            omi_fatal("om_heap_check: address map: slot %p of %s %p holds %#lx, not %#lx",
                      (void *)addr, what, (void *)base, (unsigned long)found,
                      (unsigned long)entry);
    }
}
