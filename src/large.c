/*
 * large.c — blocks above OMI_MEDIUM_SIZE_MAX: one mapping each.
 *
 * A large block is rare and big, so it gets the simplest home there is: a
 * mapping of its own, obtained from the OS when the block is allocated.
 * Its descriptor lives in the first page of the same mapping, so freeing
 * needs nothing but the address-map entry.
 *
 * A freed mapping is not unmapped at once (a mmap, a munmap and a page fault
 * per allocate/free pair cost 10-20 µs, a thousand times a reuse): up to
 * LARGE_CACHE_COUNT mappings of at most LARGE_CACHE_MAP_MAX bytes wait on
 * the heap's large cache, like every other free memory, for the purge delay
 * (OM_OPTION_PURGE_DELAY_MS; 0 = unmapped at once) and are unmapped by the
 * next purge check after it, or by om_heap_trim. An allocation that fits a
 * cached mapping (same placement, at most twice the slots it needs) takes
 * it as it is: no system call, its pages still resident. A cached block is
 * marked, so freeing it again is reported.
 *
 * Mapping layout (base aligned to OMI_ARENA_SIZE, length map_size a whole
 * number of 1 MiB slots):
 *
 *   base                block = base + block_offset             base + map_size
 *   |descriptor| (gap)  |block: size bytes ......|  rest of the last slot  |
 *   |<-4 KiB ->|        |<-------------- usable size --------------------->|
 *   |<---------- slot 0 (1 MiB) ---------->|<- slot 1 ->| … |<- slot n-1 ->|
 *
 *   alignment <= 4 KiB:        block_offset = 4 KiB (no gap)
 *   4 KiB < alignment <= 1 MiB: block_offset = alignment
 *   alignment > 1 MiB:         block_offset = 1 MiB, the base placed 1 MiB
 *                              before a multiple of the alignment; so any
 *                              alignment costs at most one slot of address
 *                              space, never `alignment` bytes.
 *
 * Invariants (l = the descriptor, at base):
 *   base % OMI_ARENA_SIZE == 0,   l->map_size % OMI_ARENA_SIZE == 0
 *   block % l->alignment == 0,    l->size <= usable = map_size - block_offset
 *   every slot of [base, base + map_size) maps to (uintptr_t)l | OMI_OWNER_LARGE,
 *     and no other slot does
 *   l is on l->heap->large_blocks;  heap->large_count = |that list|,
 *     heap->large_bytes = sum of their usable sizes
 *   an address-map entry is written only while its owner holds the pages
 *     under it: set after mapping, cleared before unmapping. Otherwise
 *     another thread could map the released pages and register them in
 *     the window, and our late clear would erase its entries.
 *
 * Why whole 1 MiB slots: the address map has one entry per slot, so a slot
 * can have one owner only. Padding the mapping to the slot boundary means
 * no arena, no other large block and no foreign mapping ever shares a slot
 * with a large block, and a lookup of any pointer gives the right answer.
 * The padding is address space, not memory: pages never touched cost no
 * RSS. It is also room to grow: the usable size reported (and accepted by
 * realloc without a system call) runs to the end of the mapping, so a
 * buffer grown a byte at a time makes one system call per MiB.
 *
 * realloc never copies: the new length is rounded to slots as well, and
 *   same slot count  → nothing to do, only the recorded size changes;
 *   fewer slots      → mremap shrinks in place (always succeeds on Linux);
 *   more slots       → mremap grows in place if the address space after the
 *                      mapping is free; else a PROT_NONE reservation of the
 *                      new length is placed with the same alignment and
 *                      mremap(MAYMOVE | FIXED) moves the pages onto it: the
 *                      kernel carries the page tables over, O(pages), and
 *                      the descriptor moves with them (the heap's list is
 *                      relinked to its new address). The block keeps its
 *                      offset in the mapping, hence its alignment.
 * Every step can fail with the block left as it was: NULL, OM_ENOMEM.
 *
 * Tools: the pages are fresh mappings; ASan's shadow is cleared after each
 * map or move in case a former tenant of the range left poison behind. The
 * blocks are not announced to valgrind as heap blocks: memcheck follows
 * mmap, mremap and munmap itself, so a use after the mapping is unmapped
 * faults or is reported. While a freed mapping waits in the cache its block
 * is closed to both tools (poisoned, no access), so a use after free is
 * reported then too, and opened again when the mapping is reused.
 * One exception:
 * memcheck 3.19 gets an mremap(MAYMOVE | FIXED) wrong when the old mapping
 * has a neighbour right after it (the very case that makes us move), and
 * marks the grown part inaccessible; with OM_VALGRIND the move re-marks it,
 * without it valgrind reports false invalid accesses there.
 *
 * Learned from: glibc malloc (chunks above its mmap threshold are mmapped
 * one by one and realloc'd with mremap — mremap_chunk), CPython (obmalloc
 * hands everything above 512 B to the system allocator, which is how
 * Python's big buffers end up on glibc's mremap path), mimalloc (huge blocks
 * in a segment of their own; mapping so that base + offset, not base, is
 * aligned, so the header never costs a whole alignment).
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* The descriptor's share of slot 0: a block never starts before this. */
#define LARGE_HEADER_SIZE ((size_t)4096)

/* One large block's descriptor, at the start of its mapping. The block is
 * kept as an offset, not a pointer, because the whole mapping can move. */
typedef struct omi_large {
    om_heap *heap;                   /* owner */
    struct omi_large *next;          /* heap->large_blocks list */
    struct omi_large *prev;          /* NULL at the head */
    size_t map_size;                 /* mapping length, a multiple of OMI_ARENA_SIZE */
    size_t block_offset;             /* block = (char *)this + block_offset */
    size_t alignment;                /* requested; kept when the mapping moves */
    size_t size;                     /* bytes requested by the last malloc/realloc */
    bool cached;                     /* freed, waiting on heap->large_cache */
    uint64_t freed_ms;               /* when it was freed (cached only) */
} omi_large;

_Static_assert(offsetof(omi_large, heap) == 0, "omi_heap_of reads the owner first");

/* The large cache's bounds, per heap. */
#define LARGE_CACHE_COUNT 8
#define LARGE_CACHE_MAP_MAX ((size_t)32 << 20)

_Static_assert(sizeof(omi_large) <= LARGE_HEADER_SIZE, "the descriptor fits its page");
_Static_assert(LARGE_HEADER_SIZE < OMI_ARENA_SIZE, "the header leaves room in slot 0");
_Static_assert(_Alignof(omi_large) <= OMI_ARENA_SIZE, "an arena-aligned base holds it");

/* Where a block of a given alignment sits: at base + block_offset, with the
 * base chosen so that (base + map_offset) % map_alignment == 0. */
typedef struct large_place {
    size_t block_offset;
    size_t map_alignment;
    size_t map_offset;
} large_place;

static large_place large_placement(size_t alignment)
{
    if (alignment <= OMI_ARENA_SIZE) {
        size_t offset = alignment > LARGE_HEADER_SIZE ? alignment : LARGE_HEADER_SIZE;
        return (large_place){offset, OMI_ARENA_SIZE, 0};
    }
    /* base = k * alignment - 1 MiB: arena-aligned, and block = base + 1 MiB
     * is aligned, for one slot of padding whatever the alignment. */
    return (large_place){OMI_ARENA_SIZE, alignment, OMI_ARENA_SIZE};
}

/* The mapping length for `size` bytes at block_offset, in whole slots;
 * false when it overflows or exceeds PTRDIFF_MAX. */
static bool large_map_size(size_t block_offset, size_t size, size_t *map_size)
{
    size_t end;
    if (size > PTRDIFF_MAX || __builtin_add_overflow(block_offset, size, &end) ||
        __builtin_add_overflow(end, OMI_ARENA_SIZE - 1, &end))
        return false;
    *map_size = end & ~(OMI_ARENA_SIZE - 1);
    return *map_size <= PTRDIFF_MAX;
}

static inline uintptr_t large_entry(const omi_large *l)
{
    return (uintptr_t)l | OMI_OWNER_LARGE;
}

static inline char *large_block(const omi_large *l)
{
    return (char *)l + l->block_offset;
}

static inline size_t large_usable(const omi_large *l)
{
    return l->map_size - l->block_offset;
}

/* The heap's two lists of descriptors (live blocks, cached mappings) share
 * these two operations; the callers keep their own counters. */
static void large_list_push(omi_large **head, omi_large *l)
{
    l->prev = NULL;
    l->next = *head;
    if (l->next != NULL)
        l->next->prev = l;
    *head = l;
}

static void large_list_remove(omi_large **head, omi_large *l)
{
    if (l->prev != NULL)
        l->prev->next = l->next;
    else
        *head = l->next;
    if (l->next != NULL)
        l->next->prev = l->prev;
}

static void large_link(om_heap *h, omi_large *l)
{
    large_list_push(&h->large_blocks, l);
    h->large_count++;
    h->large_bytes += large_usable(l);
}

static void large_unlink(omi_large *l)
{
    om_heap *h = l->heap;
    large_list_remove(&h->large_blocks, l);
    h->large_count--;
    h->large_bytes -= large_usable(l);
}

/* After the mapping moved, l's neighbours still point at its old address. */
static void large_relink_moved(omi_large *l)
{
    if (l->prev != NULL)
        l->prev->next = l;
    else
        l->heap->large_blocks = l;
    if (l->next != NULL)
        l->next->prev = l;
}

/* Gives the whole mapping of l back; l is gone afterwards. */
static void large_unmap(omi_large *l)
{
    size_t map_size = l->map_size;
    omi_addrmap_clear((uintptr_t)l, map_size);
    omi_asan_unpoison(l, map_size);   /* a cached block is poisoned; the next tenant is not */
    omi_os_unmap(l, map_size);
}

static OMI_NOINLINE OMI_COLD _Noreturn void large_report_interior(const char *function,
                                                                   const omi_large *l,
                                                                   const void *p)
{
    char finding[256];
    const char *block = large_block(l);
    const char *base = (const char *)l;
    if ((const char *)p < block)
        snprintf(finding, sizeof finding,
                 "in the header of a large block of %zu bytes at %p, %zu bytes before "
                 "its start (mapping %p-%p)",
                 l->size, (const void *)block, (size_t)(block - (const char *)p),
                 (const void *)base, (const void *)(base + l->map_size));
    else
        snprintf(finding, sizeof finding,
                 "inside a large block of %zu bytes at %p, %zu bytes past its start "
                 "(mapping %p-%p)",
                 l->size, (const void *)block, (size_t)((const char *)p - block),
                 (const void *)base, (const void *)(base + l->map_size));
    omi_invalid_pointer(function, p, finding);
}

/* The descriptor behind `entry`, after checking that p is its block. */
static inline omi_large *large_checked(const char *function, uintptr_t entry, const void *p)
{
    om_assert((entry & OMI_OWNER_KIND_MASK) == OMI_OWNER_LARGE);
    omi_large *l = (omi_large *)(entry & ~OMI_OWNER_KIND_MASK);
    if (omi_unlikely((const char *)p != large_block(l)))
        large_report_interior(function, l, p);
    if (omi_unlikely(l->cached))
        omi_invalid_pointer(function, p, "a large block that is already free");
    return l;
}

/* ---- The cache of freed mappings --------------------------------------------- */

static void large_cache_push(om_heap *h, omi_large *l)
{
    omi_track_internal_close(large_block(l), large_usable(l));
    l->cached = true;
    l->freed_ms = h->now_ms;   /* read by the purge check just before */
    large_list_push(&h->large_cache, l);
    h->large_cached_count++;
    h->large_cached_bytes += l->map_size;
}

static void large_cache_remove(om_heap *h, omi_large *l)
{
    large_list_remove(&h->large_cache, l);
    h->large_cached_count--;
    h->large_cached_bytes -= l->map_size;
    l->cached = false;
}

/* A cached mapping that can hold `map_size` bytes placed as `place` for
 * `alignment`, without wasting more than half of it; NULL if none. */
static omi_large *large_cache_find(om_heap *h, const large_place *place, size_t map_size,
                                   size_t alignment)
{
    for (omi_large *l = h->large_cache; l != NULL; l = l->next) {
        if (l->block_offset == place->block_offset && l->map_size >= map_size &&
            l->map_size / 2 <= map_size && ((uintptr_t)large_block(l) & (alignment - 1)) == 0)
            return l;
    }
    return NULL;
}

void omi_large_purge(om_heap *h, uint64_t deadline_ms)
{
    omi_large *l = h->large_cache;
    while (l != NULL) {
        omi_large *next = l->next;
        if (omi_purge_is_due(l->freed_ms, deadline_ms)) {
            large_cache_remove(h, l);
            large_unmap(l);
        }
        l = next;
    }
}

/* A large block; `zero` asks for zeroed memory, which only a reused
 * mapping needs to be cleared for (a fresh one reads as zero). */
static void *large_alloc(om_heap *h, size_t size, size_t alignment, bool zero)
{
    om_assert(alignment >= OM_ALIGNMENT && (alignment & (alignment - 1)) == 0);
    large_place place = large_placement(alignment);
    size_t map_size;
    if (!large_map_size(place.block_offset, size, &map_size))
        return omi_out_of_memory(size);
    omi_large *reused = large_cache_find(h, &place, map_size, alignment);
    if (reused != NULL) {
        large_cache_remove(h, reused);
        omi_track_internal_open(large_block(reused), large_usable(reused));
        reused->size = size;
        large_link(h, reused);
        if (zero)
            memset(large_block(reused), 0, size);
        return large_block(reused);
    }
    char *base = omi_os_map_aligned(map_size, place.map_alignment, place.map_offset);
    if (base == NULL)
        return omi_out_of_memory(size);
    omi_large *l = (omi_large *)base;
    if (omi_addrmap_set((uintptr_t)base, map_size, large_entry(l)) != 0) {
        omi_os_unmap(base, map_size);
        return omi_out_of_memory(size);
    }
    omi_asan_unpoison(base, map_size);
    l->heap = h;
    l->map_size = map_size;
    l->block_offset = place.block_offset;
    l->alignment = alignment;
    l->size = size;
    l->cached = false;
    large_link(h, l);
    return large_block(l);
}

void *omi_large_malloc(om_heap *h, size_t size, size_t alignment)
{
    return large_alloc(h, size, alignment, false);
}

void *omi_large_calloc(om_heap *h, size_t size)
{
    return large_alloc(h, size, OM_ALIGNMENT, true);
}

void omi_large_free(const char *function, uintptr_t entry, void *p)
{
    omi_large *l = large_checked(function, entry, p);
    om_heap *h = l->heap;
    large_unlink(l);
    omi_purge_tick(h);   /* a slow path anyway: a chance to purge; reads the clock */
    if (!omi_purge_at_once() && l->map_size <= LARGE_CACHE_MAP_MAX &&
        h->large_cached_count < LARGE_CACHE_COUNT)
        large_cache_push(h, l);
    else
        large_unmap(l);
}

/* Gives back the slots past new_map_size. If the OS refuses (it does not on
 * Linux), the block simply keeps its larger mapping. */
static void large_shrink(omi_large *l, size_t new_map_size)
{
    uintptr_t base = (uintptr_t)l;
    size_t old_map_size = l->map_size;
    size_t released = old_map_size - new_map_size;
    omi_addrmap_clear(base + new_map_size, released);
    if (omi_os_remap(l, old_map_size, new_map_size, NULL) != 0) {
        /* The slots are still ours and their leaves exist: cannot fail. */
        omi_addrmap_set(base + new_map_size, released, large_entry(l));
        return;
    }
    l->map_size = new_map_size;
    l->heap->large_bytes -= released;
}

/* Extends the mapping where it is; false (mapping unchanged) when the
 * address space after it is taken or the map cannot grow. */
static bool large_grow_in_place(omi_large *l, size_t new_map_size)
{
    uintptr_t base = (uintptr_t)l;
    size_t old_map_size = l->map_size;
    if (omi_os_remap(l, old_map_size, new_map_size, NULL) != 0)
        return false;
    if (omi_addrmap_set(base + old_map_size, new_map_size - old_map_size, large_entry(l)) != 0) {
        omi_os_remap(l, new_map_size, old_map_size, NULL);
        return false;
    }
    l->map_size = new_map_size;
    l->heap->large_bytes += new_map_size - old_map_size;
    return true;
}

/* Moves the pages to a fresh, equally aligned place of new_map_size bytes.
 * The new descriptor, or NULL with l unchanged. */
static omi_large *large_grow_moved(omi_large *l, size_t new_map_size)
{
    large_place place = large_placement(l->alignment);
    size_t old_map_size = l->map_size;
    char *target = omi_os_reserve_aligned(new_map_size, place.map_alignment, place.map_offset);
    if (target == NULL)
        return NULL;
    omi_large *moved = (omi_large *)target;
    if (omi_addrmap_set((uintptr_t)target, new_map_size, large_entry(moved)) != 0) {
        omi_os_unmap(target, new_map_size);
        return NULL;
    }
    /* Cleared before the move: once moved, the old range is free for anyone. */
    omi_addrmap_clear((uintptr_t)l, old_map_size);
    if (omi_os_remap(l, old_map_size, new_map_size, target) != 0) {
        omi_addrmap_set((uintptr_t)l, old_map_size, large_entry(l));   /* leaves exist */
        omi_addrmap_clear((uintptr_t)target, new_map_size);
        omi_os_unmap(target, new_map_size);
        return NULL;
    }
    omi_asan_unpoison(target, new_map_size);
    /* memcheck (3.19) marks the grown part of a mapping moved next to a
     * neighbour as inaccessible; the pages are plain zero-filled memory. */
    omi_vg_defined(target + old_map_size, new_map_size - old_map_size);
    large_relink_moved(moved);
    moved->map_size = new_map_size;
    moved->heap->large_bytes += new_map_size - old_map_size;
    return moved;
}

void *omi_large_realloc(const char *function, uintptr_t entry, void *p, size_t size)
{
    omi_large *l = large_checked(function, entry, p);
    size_t new_map_size;
    if (!large_map_size(l->block_offset, size, &new_map_size))
        return omi_out_of_memory(size);
    if (new_map_size < l->map_size) {
        large_shrink(l, new_map_size);
    } else if (new_map_size > l->map_size && !large_grow_in_place(l, new_map_size)) {
        l = large_grow_moved(l, new_map_size);
        if (l == NULL)
            return omi_out_of_memory(size);
    }
    l->size = size;
    return large_block(l);
}

bool omi_large_is_block_start(uintptr_t entry, const void *p)
{
    const omi_large *l = (const omi_large *)(entry & ~OMI_OWNER_KIND_MASK);
    return (const char *)p == large_block(l) && !l->cached;
}

/* The usable size runs to the end of the mapping: every byte of it is
 * mapped read-write, and realloc up to it is free of system calls. */
size_t omi_large_usable_size(const char *function, uintptr_t entry, const void *p)
{
    return large_usable(large_checked(function, entry, p));
}

/* One list of large blocks, for omi_large_for_each. */
static int large_visit_list(const omi_large *head, omi_large_visit_fn fn, void *arg)
{
    for (const omi_large *l = head; l != NULL; l = l->next) {
        omi_large_view view = {(uintptr_t)large_block(l), l->size, large_usable(l),
                               l->map_size, l->cached};
        int stop = fn(&view, arg);
        if (stop != 0)
            return stop;
    }
    return 0;
}

int omi_large_for_each(const om_heap *h, omi_large_visit_fn fn, void *arg)
{
    int stop = large_visit_list(h->large_blocks, fn, arg);
    return stop != 0 ? stop : large_visit_list(h->large_cache, fn, arg);
}

void omi_large_heap_release_all(om_heap *h)
{
    omi_large *l = h->large_blocks;
    while (l != NULL) {
        omi_large *next = l->next;
        large_unmap(l);
        l = next;
    }
    h->large_blocks = NULL;
    h->large_count = 0;
    h->large_bytes = 0;
    omi_large_purge(h, UINT64_MAX);
}

/* ---- Checking ---------------------------------------------------------------- */

#define LARGE_CHECK(cond, ...) \
    do { if (!(cond)) omi_fatal("om_heap_check: " __VA_ARGS__); } while (0)

/* One list of descriptors: linked both ways, each registered in the address
 * map for its whole mapping, in the state the list says. */
static void large_check_list(const om_heap *h, const omi_large *head, bool cached,
                             size_t count, size_t bytes)
{
    size_t n = 0, total = 0;
    const omi_large *prev = NULL;
    for (const omi_large *l = head; l != NULL; prev = l, l = l->next, n++) {
        LARGE_CHECK(l->heap == h && l->prev == prev && l->cached == cached && n < count,
                    "the %s large list of the heap is broken at %p", cached ? "cached" : "live",
                    (const void *)l);
        omi_addrmap_check((uintptr_t)l, l->map_size, large_entry(l), "large mapping");
        total += cached ? l->map_size : large_usable(l);
    }
    LARGE_CHECK(n == count && total == bytes,
                "%zu %s large blocks of %zu bytes listed, %zu of %zu bytes counted", n,
                cached ? "cached" : "live", total, count, bytes);
}

void omi_large_check(const om_heap *h)
{
    large_check_list(h, h->large_blocks, false, h->large_count, h->large_bytes);
    large_check_list(h, h->large_cache, true, h->large_cached_count, h->large_cached_bytes);
}

