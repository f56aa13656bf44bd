/*
 * medium.c — blocks of 513 B to 256 KiB: page runs in objmem's own arenas.
 *
 * Size classes, four per doubling: within [2^k, 2^(k+1)] they are 2^(k-2)
 * apart, 12.5 % of the doubling's top (so a request wastes under 20 %):
 *
 *   class   0    1    2    3     4     5     6     7   …    35
 *   size  640  768  896 1024  1280  1536  1792  2048  … 262144
 *
 *   class_size(c) = (5 + c % 4) << (c / 4 + 7)
 *
 * Every class size is a multiple of 128 B, the *unit* of this allocator. A
 * medium arena (1 MiB, aligned to its size, OMI_OWNER_MEDIUM in the address
 * map) starts with its descriptor; the rest is cut into runs of whole units.
 * A run is free, or holds exactly one block that starts at the run's start
 * (a block of class c is a run of class_size(c) / 128 units; an aligned
 * block may be a longer run).
 *
 * Boundary tags, kept outside the runs in the descriptor's unit map (one
 * 16-bit tag per unit), make coalescing O(1):
 *
 *   tag = (length - 1) | CACHED << 13 | FREE << 14 | START << 15
 *
 * written at a run's first unit (with START) and at its last unit (without
 * START; for a one-unit run the two are the same tag). Every other unit's
 * tag is 0, because a merge clears the two tags that become inner. So a
 * pointer that is not the start of a live run is seen at once: its tag lacks
 * START (inside a run), or has FREE (freed twice), or has CACHED.
 *
 * Free runs sit in the heap's bins, doubly linked through their first 16
 * bytes. Bins are spaced like the classes, by run length; bin b holds runs
 * of at least bin_floor(b) units, and a 64-bit mask says which bins are
 * non-empty, so finding a run that fits is a mask operation (O(1)), and a
 * class's run length is always a bin floor, so the first run of the first
 * non-empty bin at or above it fits. The remainder of a split goes back to
 * its bin. A freed run merges with a free neighbour on either side.
 *
 * In front of the runs, each class keeps a short LIFO cache of freed blocks
 * (CACHED in their tag, not coalesced), so an allocate/free pair of one size
 * costs a push and a pop, not a split and a merge. A cache holds at most
 * min(16, 256 KiB / class size) blocks (at least one). Caches are flushed
 * into the bins before the heap maps a new medium arena and by
 * om_heap_trim, so cached blocks never make the heap grow; and when an
 * arena's last block in use is freed, its cached blocks are returned too
 * (each descriptor counts its live units) unless the arena becomes the
 * spare, so caches never keep more than one otherwise empty arena mapped.
 *
 * The spare: each heap keeps at most one medium arena with no block in use
 * (wholly free, or held only by cached blocks); any other arena that
 * reaches that state gives its cached blocks back and is unmapped.
 *
 * Learned from: jemalloc's size classes (four per doubling) and extents,
 * dlmalloc's boundary tags (kept out of band here), TLSF's O(1) bin search
 * with a bitmap.
 */
#include <string.h>

#include "internal.h"

/* ---- Geometry ------------------------------------------------------------- */

#define UNIT_SHIFT 7
#define UNIT_SIZE ((size_t)1 << UNIT_SHIFT)
#define ARENA_UNITS (OMI_ARENA_SIZE >> UNIT_SHIFT)

#define TAG_LENGTH_MASK 0x1FFFu
#define TAG_CACHED 0x2000u
#define TAG_FREE 0x4000u
#define TAG_START 0x8000u

_Static_assert(ARENA_UNITS - 1 <= TAG_LENGTH_MASK, "run lengths fit the tag");
_Static_assert(OMI_MEDIUM_CLASS_COUNT <= 64, "one cache per class in the heap");
_Static_assert(OMI_MEDIUM_BIN_COUNT <= 64, "bins are indexed by a 64-bit mask");

typedef struct medium_free_run {
    struct medium_free_run *next;   /* bin list */
    struct medium_free_run *prev;
} medium_free_run;

/* The descriptor at the start of every medium arena. */
typedef struct omi_medium_arena {
    om_heap *heap;                          /* owner */
    struct omi_medium_arena *all_next;      /* the heap's medium arenas */
    struct omi_medium_arena *all_prev;
    om_arena_allocator allocator;           /* the allocator that mapped it */
    size_t live_units;                      /* units in blocks in use (not cached) */
    bool dirty;                             /* a free run may hold pages */
    uint64_t dirty_since_ms;                /* when the first free run went free */
    uint16_t tags[ARENA_UNITS];             /* boundary tags, one per unit */
} omi_medium_arena;

_Static_assert(offsetof(omi_medium_arena, heap) == 0, "omi_heap_of reads the owner first");

/* Units taken by the descriptor, rounded up to whole pages so that purging
 * free pages never touches it. */
#define FIRST_UNIT \
    (((sizeof(omi_medium_arena) + 4095) & ~(size_t)4095) >> UNIT_SHIFT)
#define USABLE_UNITS (ARENA_UNITS - FIRST_UNIT)

/* ---- Classes and bins ----------------------------------------------------- */

static size_t medium_class_size(size_t class_index)
{
    return (5 + (class_index & 3)) << ((class_index >> 2) + 7);
}

/* class_of_units[n]: the smallest class of at least n units; filled once
 * at load time (one byte per unit count, 2 KiB, so both hot paths look a
 * class up with one load instead of bit arithmetic). */
static uint8_t class_of_units[(OMI_MEDIUM_SIZE_MAX >> UNIT_SHIFT) + 1];
/* class_units[c]: the run length of class c, in units. */
static uint16_t class_units[OMI_MEDIUM_CLASS_COUNT];

__attribute__((constructor(102))) static void medium_fill_class_tables(void)
{
    size_t c = 0;
    for (size_t units = 0; units < sizeof class_of_units; units++) {
        while (medium_class_size(c) >> UNIT_SHIFT < units)
            c++;
        class_of_units[units] = (uint8_t)c;
    }
    for (c = 0; c < OMI_MEDIUM_CLASS_COUNT; c++)
        class_units[c] = (uint16_t)(medium_class_size(c) >> UNIT_SHIFT);
}

size_t omi_medium_class_of(size_t size)
{
    return class_of_units[(size + UNIT_SIZE - 1) >> UNIT_SHIFT];
}

static size_t bin_of_length(size_t units)
{
    if (units <= 4)
        return units - 1;
    size_t e = 63 - (size_t)__builtin_clzll(units);
    return (e - 2) * 4 + ((units >> (e - 2)) & 3) + 3;
}

static size_t bin_floor(size_t bin)
{
    if (bin < 4)
        return bin + 1;
    return (4 + ((bin - 3) & 3)) << ((bin - 3) / 4);
}

/* The first bin all of whose runs are at least `units` long. */
static size_t bin_for_request(size_t units)
{
    size_t bin = bin_of_length(units);
    return bin_floor(bin) == units ? bin : bin + 1;
}

/* How many freed blocks class c may cache: min(16, 256 KiB / size), at
 * least 1. */
#define CLASS_SIZE(c) ((size_t)(5 + ((c) & 3)) << (((c) >> 2) + 7))
#define CACHE_LIMIT(c) \
    ((uint8_t)(((size_t)256 << 10) / CLASS_SIZE(c) >= 16 ? 16 : ((size_t)256 << 10) / CLASS_SIZE(c)))
#define LIMITS4(c) CACHE_LIMIT(c), CACHE_LIMIT(c + 1), CACHE_LIMIT(c + 2), CACHE_LIMIT(c + 3)
static const uint8_t cache_limits[OMI_MEDIUM_CLASS_COUNT] = {
    LIMITS4(0), LIMITS4(4), LIMITS4(8), LIMITS4(12), LIMITS4(16),
    LIMITS4(20), LIMITS4(24), LIMITS4(28), LIMITS4(32),
};
_Static_assert(CACHE_LIMIT(OMI_MEDIUM_CLASS_COUNT - 1) >= 1, "every class caches a block");
#undef LIMITS4
#undef CACHE_LIMIT
#undef CLASS_SIZE

/* ---- Tags ------------------------------------------------------------------- */

static omi_medium_arena *arena_of(const void *p)
{
    return (omi_medium_arena *)((uintptr_t)p & ~(uintptr_t)(OMI_ARENA_SIZE - 1));
}

static size_t unit_of(const omi_medium_arena *arena, const void *p)
{
    return ((uintptr_t)p - (uintptr_t)arena) >> UNIT_SHIFT;
}

static char *unit_address(omi_medium_arena *arena, size_t unit)
{
    return (char *)arena + (unit << UNIT_SHIFT);
}

static size_t tag_length(uint16_t tag)
{
    return (size_t)(tag & TAG_LENGTH_MASK) + 1;
}

/* Writes the start and end tags of the run [unit, unit + units). */
static void run_set_tags(omi_medium_arena *arena, size_t unit, size_t units, uint16_t flags)
{
    uint16_t length = (uint16_t)(units - 1);
    arena->tags[unit + units - 1] = length | (uint16_t)(flags & ~TAG_START);
    arena->tags[unit] = length | flags | TAG_START;
}

/* ---- Bins ------------------------------------------------------------------- */

static void bin_insert(omi_medium_heap *m, omi_medium_arena *arena, size_t unit, size_t units)
{
    run_set_tags(arena, unit, units, TAG_FREE);
    medium_free_run *run = (medium_free_run *)unit_address(arena, unit);
    size_t bin = bin_of_length(units);
    medium_free_run *next = m->bins[bin];
    omi_track_internal_open(run, sizeof *run);
    run->prev = NULL;
    run->next = next;
    omi_track_internal_close(run, sizeof *run);
    if (next != NULL) {
        omi_track_internal_open(next, sizeof *next);
        next->prev = run;
        omi_track_internal_close(next, sizeof *next);
    }
    m->bins[bin] = run;
    m->bin_mask |= (uint64_t)1 << bin;
}

static void bin_remove(omi_medium_heap *m, medium_free_run *run, size_t units)
{
    size_t bin = bin_of_length(units);
    omi_track_internal_open(run, sizeof *run);
    medium_free_run *next = run->next, *prev = run->prev;
    omi_track_internal_close(run, sizeof *run);
    if (prev != NULL) {
        omi_track_internal_open(prev, sizeof *prev);
        prev->next = next;
        omi_track_internal_close(prev, sizeof *prev);
    } else {
        m->bins[bin] = next;
        if (next == NULL)
            m->bin_mask &= ~((uint64_t)1 << bin);
    }
    if (next != NULL) {
        omi_track_internal_open(next, sizeof *next);
        next->prev = prev;
        omi_track_internal_close(next, sizeof *next);
    }
}

/* ---- Purging ---------------------------------------------------------------- */

/* Gives back the whole pages of a free run, except the one holding its bin
 * links. */
static void run_purge(om_heap *h, omi_medium_arena *arena, size_t unit, size_t units)
{
    uintptr_t start = (uintptr_t)unit_address(arena, unit) + sizeof(medium_free_run);
    uintptr_t end = (uintptr_t)unit_address(arena, unit + units);
    start = (start + 4095) & ~(uintptr_t)4095;
    end &= ~(uintptr_t)4095;
    if (end > start)
        omi_purge_range(h, (void *)start, end - start);
}

/* A run went free: purge it now, or note when the arena became dirty. */
static void run_went_free(om_heap *h, omi_medium_arena *arena, size_t unit, size_t units)
{
    if (omi_purge_at_once()) {
        run_purge(h, arena, unit, units);
    } else if (!arena->dirty) {
        arena->dirty = true;
        arena->dirty_since_ms = omi_purge_now(h);
    }
}

static void arena_purge_free_runs(om_heap *h, omi_medium_arena *arena)
{
    for (size_t unit = FIRST_UNIT; unit < ARENA_UNITS;) {
        uint16_t tag = arena->tags[unit];
        if (tag & TAG_FREE)
            run_purge(h, arena, unit, tag_length(tag));
        unit += tag_length(tag);
    }
    arena->dirty = false;
}

/* ---- Arenas ----------------------------------------------------------------- */

static omi_medium_arena *arena_new(om_heap *h)
{
    om_arena_allocator made_by;
    omi_medium_arena *arena = omi_os_arena_alloc(OMI_OWNER_MEDIUM, &made_by);
    if (arena == NULL)
        return NULL;
    memset(arena, 0, sizeof *arena);   /* a custom arena allocator may not zero */
    arena->heap = h;
    arena->allocator = made_by;
    omi_medium_heap *m = &h->medium;
    arena->all_next = m->arenas;
    if (m->arenas != NULL)
        m->arenas->all_prev = arena;
    m->arenas = arena;
    m->arenas_current++;
    m->arenas_allocated++;
    omi_track_internal_close(unit_address(arena, FIRST_UNIT), USABLE_UNITS << UNIT_SHIFT);
    bin_insert(m, arena, FIRST_UNIT, USABLE_UNITS);
    return arena;
}

static void arena_unmap(omi_medium_heap *m, omi_medium_arena *arena)
{
    if (arena->all_prev != NULL)
        arena->all_prev->all_next = arena->all_next;
    else
        m->arenas = arena->all_next;
    if (arena->all_next != NULL)
        arena->all_next->all_prev = arena->all_prev;
    m->arenas_current--;
    m->arenas_freed++;
    omi_os_arena_free(arena, arena->allocator);
}

static bool arena_is_wholly_free(const omi_medium_arena *arena)
{
    uint16_t tag = arena->tags[FIRST_UNIT];
    return (tag & TAG_FREE) && tag_length(tag) == USABLE_UNITS;
}

/* The arena's one free run covers it all: keep it as the spare, or unmap. */
static void arena_retire(omi_medium_heap *m, omi_medium_arena *arena)
{
    if ((m->spare == NULL || m->spare == arena || m->spare->live_units != 0) &&
        !omi_purge_at_once()) {
        if (m->spare != arena)
            m->spare_since_ms = omi_purge_now(arena->heap);
        m->spare = arena;
        return;
    }
    if (m->spare == arena)
        m->spare = NULL;
    bin_remove(m, (medium_free_run *)unit_address(arena, FIRST_UNIT), USABLE_UNITS);
    arena_unmap(m, arena);
}

/* ---- Runs ------------------------------------------------------------------- */

/* Frees the run at `unit` (tags say allocated or cached): merges it with
 * free neighbours, bins it, and retires its arena if it is now wholly free. */
static void run_release(omi_medium_heap *m, omi_medium_arena *arena, size_t unit)
{
    size_t units = tag_length(arena->tags[unit]);
    size_t end = unit + units;
    if (end < ARENA_UNITS && (arena->tags[end] & TAG_FREE)) {
        size_t next_units = tag_length(arena->tags[end]);
        bin_remove(m, (medium_free_run *)unit_address(arena, end), next_units);
        arena->tags[end] = 0;
        arena->tags[end - 1] = 0;
        units += next_units;
    }
    if (unit > FIRST_UNIT && (arena->tags[unit - 1] & TAG_FREE)) {
        size_t prev_units = tag_length(arena->tags[unit - 1]);
        size_t prev = unit - prev_units;
        bin_remove(m, (medium_free_run *)unit_address(arena, prev), prev_units);
        arena->tags[unit - 1] = 0;
        arena->tags[unit] = 0;
        unit = prev;
        units += prev_units;
    }
    bin_insert(m, arena, unit, units);
    if (units == USABLE_UNITS)
        arena_retire(m, arena);
    else
        run_went_free(arena->heap, arena, unit, units);
}

/* The link of a cached block (its first word). */
static void *cached_next(void *block)
{
    omi_track_internal_open(block, sizeof(void *));
    void *next = *(void **)block;
    omi_track_internal_close(block, sizeof(void *));
    return next;
}

static void cached_set_next(void *block, void *next)
{
    omi_track_internal_open(block, sizeof(void *));
    *(void **)block = next;
    omi_track_internal_close(block, sizeof(void *));
}

/* Returns the cached blocks of `only` (every arena if NULL) to the bins;
 * true if any was returned. */
static bool caches_flush(omi_medium_heap *m, const omi_medium_arena *only)
{
    bool any = false;
    for (size_t c = 0; c < OMI_MEDIUM_CLASS_COUNT; c++) {
        void *prev = NULL;
        void *block = m->cache[c].head;
        while (block != NULL) {
            void *next = cached_next(block);
            omi_medium_arena *arena = arena_of(block);
            if (only != NULL && arena != only) {
                prev = block;
            } else {
                if (prev != NULL)
                    cached_set_next(prev, next);
                else
                    m->cache[c].head = next;
                m->cache[c].count--;
                run_release(m, arena, unit_of(arena, block));
                any = true;
            }
            block = next;
        }
    }
    return any;
}

/* Takes a free run of at least `units` + the units needed to align its
 * start to `alignment`; splits off what is not needed. The run's start,
 * or NULL with OM_ENOMEM. */
static void *run_take(om_heap *h, size_t units, size_t alignment)
{
    omi_medium_heap *m = &h->medium;
    omi_purge_tick(h);   /* first: it may unmap the spare and change the bins */
    size_t slack = alignment > UNIT_SIZE ? (alignment >> UNIT_SHIFT) - 1 : 0;
    size_t bin = bin_for_request(units + slack);
    uint64_t fits = bin < 64 ? m->bin_mask & (~(uint64_t)0 << bin) : 0;
    if (fits == 0) {
        if (caches_flush(m, NULL))
            return run_take(h, units, alignment);
        if (units + slack > USABLE_UNITS || arena_new(h) == NULL)
            return omi_out_of_memory((units + slack) << UNIT_SHIFT);
        fits = m->bin_mask & (~(uint64_t)0 << bin);
    }
    medium_free_run *run = m->bins[__builtin_ctzll(fits)];
    omi_medium_arena *arena = arena_of(run);
    size_t unit = unit_of(arena, run);
    size_t run_units = tag_length(arena->tags[unit]);
    bin_remove(m, run, run_units);
    if (m->spare == arena)
        m->spare = NULL;
    size_t aligned = ((((uintptr_t)run + alignment - 1) & ~(uintptr_t)(alignment - 1)) -
                      (uintptr_t)arena) >> UNIT_SHIFT;
    if (alignment <= UNIT_SIZE)
        aligned = unit;
    if (aligned > unit)
        bin_insert(m, arena, unit, aligned - unit);
    size_t tail = unit + run_units - (aligned + units);
    if (tail > 0)
        bin_insert(m, arena, aligned + units, tail);
    run_set_tags(arena, aligned, units, 0);
    arena->live_units += units;
    return unit_address(arena, aligned);
}

/* ---- Entry points ------------------------------------------------------------ */

void *omi_medium_malloc(om_heap *h, size_t size)
{
    size_t class_index = omi_medium_class_of(size);
    omi_medium_cache *cache = &h->medium.cache[class_index];
    void *block = cache->head;
    size_t block_size = medium_class_size(class_index);
    if (block != NULL) {
        cache->head = cached_next(block);
        cache->count--;
        omi_medium_arena *arena = arena_of(block);
        arena->tags[unit_of(arena, block)] &= (uint16_t)~TAG_CACHED;
        arena->live_units += block_size >> UNIT_SHIFT;
    } else {
        block = run_take(h, block_size >> UNIT_SHIFT, UNIT_SIZE);
        if (block == NULL)
            return NULL;
    }
    omi_track_malloc(block, block_size);
    return block;
}

void *omi_medium_aligned_malloc(om_heap *h, size_t size, size_t alignment)
{
    size_t units = (size + UNIT_SIZE - 1) >> UNIT_SHIFT;
    void *block = run_take(h, units, alignment);
    if (block != NULL)
        omi_track_malloc(block, units << UNIT_SHIFT);
    return block;
}

static _Noreturn OMI_COLD void medium_report(const char *function, const void *p, uint16_t tag)
{
    if (((uintptr_t)p & (UNIT_SIZE - 1)) == 0 && (tag & TAG_START))
        omi_invalid_pointer(function, p, "a medium block that is already free");
    omi_invalid_pointer(function, p, "inside a medium arena, not at the start of a block");
}

/* The start tag of live block p, or a fatal report naming `function`. */
static inline uint16_t medium_checked_tag(const char *function, omi_medium_arena *arena, const void *p)
{
    uint16_t tag = arena->tags[unit_of(arena, p)];
    /* Descriptor units and the inside of runs have tag 0: no START. */
    if (omi_unlikely((((uintptr_t)p & (UNIT_SIZE - 1)) != 0) |
                     ((tag & (TAG_START | TAG_FREE | TAG_CACHED)) != TAG_START)))
        medium_report(function, p, tag);
    return tag;
}

/* Puts the freed block at `unit` on its class's cache, if it is a block
 * of a class and the cache has room; false otherwise. */
static inline bool medium_cache_push(omi_medium_heap *m, omi_medium_arena *arena, size_t unit,
                                     size_t units)
{
    if (units >= sizeof class_of_units)
        return false;
    size_t class_index = class_of_units[units];
    omi_medium_cache *cache = &m->cache[class_index];
    if (class_units[class_index] != units || cache->count >= cache_limits[class_index])
        return false;
    void *p = unit_address(arena, unit);
    arena->tags[unit] |= TAG_CACHED;
    cached_set_next(p, cache->head);
    cache->head = p;
    cache->count++;
    return true;
}

/* The free of a block that does not simply go on its class cache: the
 * arena's last block in use, a block of no class, or a full cache. */
static OMI_NOINLINE void medium_free_slow(omi_medium_arena *arena, size_t unit, size_t units,
                                          bool last_in_use)
{
    om_heap *h = arena->heap;   /* the arena may be unmapped below */
    omi_medium_heap *m = &h->medium;
    if (last_in_use) {
        /* It becomes the spare (still caching, so that a loop of pairs does
         * not flip it), or, with another spare still idle, its cached
         * blocks go back and it retires. A spare that has live blocks
         * again no longer counts. */
        if ((m->spare != NULL && m->spare->live_units == 0) || omi_purge_at_once()) {
            run_release(m, arena, unit);
            caches_flush(m, arena);
            omi_purge_tick(h);
            return;
        }
        m->spare = arena;
        m->spare_since_ms = omi_purge_now(h);
        if (medium_cache_push(m, arena, unit, units))
            return;
    }
    run_release(m, arena, unit);
    omi_purge_tick(h);
}

void omi_medium_free(const char *function, void *p)
{
    omi_medium_arena *arena = arena_of(p);
    size_t unit = unit_of(arena, p);
    size_t units = tag_length(medium_checked_tag(function, arena, p));
    omi_medium_heap *m = &arena->heap->medium;
    omi_track_free(p, units << UNIT_SHIFT);
    arena->live_units -= units;
    bool last_in_use = arena->live_units == 0 && m->spare != arena;
    if (omi_likely(!last_in_use) && medium_cache_push(m, arena, unit, units))
        return;
    medium_free_slow(arena, unit, units, last_in_use);
}

bool omi_medium_is_block_start(const void *p)
{
    omi_medium_arena *arena = arena_of(p);
    uint16_t tag = arena->tags[unit_of(arena, p)];
    return ((uintptr_t)p & (UNIT_SIZE - 1)) == 0 &&
           (tag & (TAG_START | TAG_FREE | TAG_CACHED)) == TAG_START;
}

size_t omi_medium_usable_size(const char *function, const void *p)
{
    omi_medium_arena *arena = arena_of(p);
    return tag_length(medium_checked_tag(function, arena, p)) << UNIT_SHIFT;
}

/* Grows the run of p in place into a free run that follows it, when that
 * run is long enough; true on success. */
static bool medium_grow_in_place(omi_medium_heap *m, omi_medium_arena *arena, size_t unit,
                                 size_t units, size_t wanted)
{
    size_t end = unit + units;
    if (end >= ARENA_UNITS || !(arena->tags[end] & TAG_FREE))
        return false;
    size_t next_units = tag_length(arena->tags[end]);
    if (units + next_units < wanted)
        return false;
    bin_remove(m, (medium_free_run *)unit_address(arena, end), next_units);
    arena->tags[end] = 0;
    arena->tags[end - 1] = 0;
    size_t rest = units + next_units - wanted;
    if (rest > 0)
        bin_insert(m, arena, unit + wanted, rest);
    run_set_tags(arena, unit, wanted, 0);
    arena->live_units += wanted - units;
    omi_track_resize(unit_address(arena, unit), units << UNIT_SHIFT, wanted << UNIT_SHIFT);
    return true;
}

/* Shrinks the run of p in place to `wanted` units; the tail goes back to
 * the bins (merged with a free neighbour). */
static void medium_shrink_in_place(omi_medium_heap *m, omi_medium_arena *arena, size_t unit,
                                   size_t units, size_t wanted)
{
    size_t tail = unit + wanted;
    run_set_tags(arena, unit, wanted, 0);
    run_set_tags(arena, tail, units - wanted, 0);
    arena->live_units -= units - wanted;
    omi_track_resize(unit_address(arena, unit), units << UNIT_SHIFT, wanted << UNIT_SHIFT);
    omi_track_internal_close(unit_address(arena, tail), (units - wanted) << UNIT_SHIFT);
    run_release(m, arena, tail);
}

/* Both sizes are medium (the caller routes the rest). The block stays where
 * it is when it still fits without wasting more than half of it, or when
 * the run can grow into a free neighbour; a shrink gives the tail back. */
void *omi_medium_realloc(const char *function, om_heap *h, void *p, size_t size)
{
    omi_medium_arena *arena = arena_of(p);
    size_t unit = unit_of(arena, p);
    size_t units = tag_length(medium_checked_tag(function, arena, p));
    size_t old_bytes = units << UNIT_SHIFT;
    size_t wanted = class_units[omi_medium_class_of(size)];
    if (size <= old_bytes) {
        if (size > old_bytes / 2)
            return p;
        medium_shrink_in_place(&arena->heap->medium, arena, unit, units, wanted);
        return p;
    }
    if (medium_grow_in_place(&arena->heap->medium, arena, unit, units, wanted))
        return p;
    void *moved = omi_heap_malloc(h, size);
    if (moved == NULL)
        return NULL;
    memcpy(moved, p, old_bytes);
    omi_medium_free(function, p);
    return moved;
}

/* ---- Whole heaps ------------------------------------------------------------ */

void omi_medium_heap_release_all(om_heap *h)
{
    omi_medium_heap *m = &h->medium;
    while (m->arenas != NULL)
        arena_unmap(m, m->arenas);
    size_t allocated = m->arenas_allocated, freed = m->arenas_freed;
    memset(m, 0, sizeof *m);
    m->arenas_allocated = allocated;
    m->arenas_freed = freed;
}

size_t omi_medium_heap_trim(om_heap *h)
{
    omi_medium_heap *m = &h->medium;
    size_t freed_before = m->arenas_freed;
    caches_flush(m, NULL);
    if (m->spare != NULL && arena_is_wholly_free(m->spare)) {
        omi_medium_arena *spare = m->spare;
        m->spare = NULL;
        bin_remove(m, (medium_free_run *)unit_address(spare, FIRST_UNIT), USABLE_UNITS);
        arena_unmap(m, spare);
    }
    return (m->arenas_freed - freed_before) * OMI_ARENA_SIZE;
}

void omi_medium_purge(om_heap *h, uint64_t deadline_ms)
{
    omi_medium_heap *m = &h->medium;
    omi_medium_arena *spare = m->spare;
    if (spare != NULL && spare->live_units != 0) {
        m->spare = NULL;   /* in use again: no longer a spare */
    } else if (spare != NULL && omi_purge_is_due(m->spare_since_ms, deadline_ms)) {
        /* Idle for the whole delay: its cached blocks go back (it stays the
         * spare meanwhile), and the arena, wholly free then, is unmapped. */
        caches_flush(m, spare);
        if (m->spare == spare && arena_is_wholly_free(spare)) {
            m->spare = NULL;
            bin_remove(m, (medium_free_run *)unit_address(spare, FIRST_UNIT), USABLE_UNITS);
            arena_unmap(m, spare);
        }
    }
    for (omi_medium_arena *arena = m->arenas; arena != NULL; arena = arena->all_next) {
        if (arena->dirty && omi_purge_is_due(arena->dirty_since_ms, deadline_ms))
            arena_purge_free_runs(h, arena);
    }
}

void omi_medium_stats(const om_heap *h, size_t *used_bytes, size_t *free_bytes,
                      size_t *cached_bytes)
{
    const omi_medium_heap *m = &h->medium;
    size_t used = 0, free_total = 0, cached = 0;
    for (const omi_medium_arena *arena = m->arenas; arena != NULL; arena = arena->all_next) {
        for (size_t unit = FIRST_UNIT; unit < ARENA_UNITS;) {
            uint16_t tag = arena->tags[unit];
            size_t bytes = tag_length(tag) << UNIT_SHIFT;
            if (tag & TAG_FREE)
                free_total += bytes;
            else if (tag & TAG_CACHED)
                cached += bytes;
            else
                used += bytes;
            unit += tag_length(tag);
        }
    }
    *used_bytes = used;
    *free_bytes = free_total;
    *cached_bytes = cached;
}

/* ---- Visiting (for the HTML report) ------------------------------------------ */

static void view_add_run(omi_medium_arena_view *view, uint16_t tag)
{
    size_t bytes = tag_length(tag) << UNIT_SHIFT;
    if (tag & TAG_FREE) {
        view->free_bytes += bytes;
    } else if (tag & TAG_CACHED) {
        view->cached_bytes += bytes;
    } else {
        view->used_bytes += bytes;
        view->used_blocks++;
    }
}

int omi_medium_for_each_arena(const om_heap *h, omi_medium_visit_fn fn, void *arg)
{
    for (const omi_medium_arena *arena = h->medium.arenas; arena != NULL;
         arena = arena->all_next) {
        omi_medium_arena_view view = {.base = (uintptr_t)arena,
                                      .spare = arena == h->medium.spare};
        for (size_t unit = FIRST_UNIT; unit < ARENA_UNITS; unit += tag_length(arena->tags[unit]))
            view_add_run(&view, arena->tags[unit]);
        int stop = fn(&view, arg);
        if (stop != 0)
            return stop;
    }
    return 0;
}

/* ---- Checking ---------------------------------------------------------------- */

#define MEDIUM_CHECK(cond, ...) \
    do { if (!(cond)) omi_fatal("om_heap_check: " __VA_ARGS__); } while (0)

/* Walks the runs of one arena: tags at both ends agree, the inside is 0,
 * no two free runs touch, and the live units add up. Returns the free runs
 * counted, for the bins' total. */
static size_t medium_check_arena(const om_heap *h, const omi_medium_arena *arena)
{
    MEDIUM_CHECK(arena->heap == h, "medium arena %p belongs to another heap", (const void *)arena);
    omi_addrmap_check((uintptr_t)arena, OMI_ARENA_SIZE, (uintptr_t)arena | OMI_OWNER_MEDIUM,
                      "medium arena");
    size_t live = 0, free_runs = 0;
    bool previous_free = false;
    for (size_t unit = FIRST_UNIT; unit < ARENA_UNITS;) {
        uint16_t tag = arena->tags[unit];
        size_t units = tag_length(tag);
        MEDIUM_CHECK((tag & TAG_START) && unit + units <= ARENA_UNITS,
                     "medium arena %p: unit %zu has no run start (tag %#x)",
                     (const void *)arena, unit, (unsigned)tag);
        uint16_t end = arena->tags[unit + units - 1];
        MEDIUM_CHECK(units == 1 || ((end & TAG_LENGTH_MASK) == (tag & TAG_LENGTH_MASK) &&
                                    (end & TAG_FREE) == (tag & TAG_FREE)),
                     "medium arena %p: the run at unit %zu ends with the wrong tag",
                     (const void *)arena, unit);
        for (size_t inner = unit + 1; inner + 1 < unit + units; inner++)
            MEDIUM_CHECK(arena->tags[inner] == 0, "medium arena %p: unit %zu inside a run "
                         "has a tag", (const void *)arena, inner);
        bool is_free = (tag & TAG_FREE) != 0;
        MEDIUM_CHECK(!(is_free && previous_free), "medium arena %p: two free runs touch at "
                     "unit %zu", (const void *)arena, unit);
        if (is_free)
            free_runs++;
        else if (!(tag & TAG_CACHED))
            live += units;
        previous_free = is_free;
        unit += units;
    }
    MEDIUM_CHECK(live == arena->live_units, "medium arena %p: %zu live units, %zu counted",
                 (const void *)arena, live, arena->live_units);
    return free_runs;
}

void omi_medium_check(const om_heap *h)
{
    const omi_medium_heap *m = &h->medium;
    size_t arenas = 0, free_runs = 0;
    bool spare_found = m->spare == NULL;
    const omi_medium_arena *prev = NULL;
    for (const omi_medium_arena *a = m->arenas; a != NULL; prev = a, a = a->all_next) {
        MEDIUM_CHECK(++arenas <= m->arenas_current && a->all_prev == prev,
                     "the medium arena list is broken at %p (or longer than its count %zu)",
                     (const void *)a, m->arenas_current);
        free_runs += medium_check_arena(h, a);
        spare_found = spare_found || a == m->spare;
    }
    MEDIUM_CHECK(arenas == m->arenas_current, "%zu medium arenas listed, %zu counted", arenas,
                 m->arenas_current);
    MEDIUM_CHECK(spare_found, "the spare medium arena %p is not an arena of the heap",
                 (const void *)m->spare);
    size_t binned = 0;
    for (size_t b = 0; b < OMI_MEDIUM_BIN_COUNT; b++) {
        MEDIUM_CHECK(((m->bin_mask >> b) & 1) == (m->bins[b] != NULL),
                     "medium bin %zu and the bin mask disagree", b);
        for (medium_free_run *run = m->bins[b]; run != NULL; run = cached_next(run), binned++) {
            /* Ask the address map before touching a pointer found in memory
             * that a write after free may have changed. */
            bool in_medium = (omi_addrmap_lookup(run) & OMI_OWNER_KIND_MASK) == OMI_OWNER_MEDIUM &&
                             ((uintptr_t)run & (UNIT_SIZE - 1)) == 0;
            omi_medium_arena *arena = arena_of(run);
            uint16_t tag = in_medium ? arena->tags[unit_of(arena, run)] : 0;
            MEDIUM_CHECK(in_medium && (tag & TAG_FREE) && (tag & TAG_START) &&
                         bin_of_length(tag_length(tag)) == b && binned <= free_runs,
                         "medium bin %zu holds %p, which is not a free run of its size "
                         "(a write after free?)", b, (void *)run);
        }
    }
    MEDIUM_CHECK(binned == free_runs, "%zu free medium runs, %zu in the bins", free_runs, binned);
    for (size_t c = 0; c < OMI_MEDIUM_CLASS_COUNT; c++) {
        size_t n = 0;
        for (void *block = m->cache[c].head; block != NULL; block = cached_next(block), n++) {
            bool in_medium = (omi_addrmap_lookup(block) & OMI_OWNER_KIND_MASK) == OMI_OWNER_MEDIUM &&
                             ((uintptr_t)block & (UNIT_SIZE - 1)) == 0;
            omi_medium_arena *arena = arena_of(block);
            uint16_t tag = in_medium ? arena->tags[unit_of(arena, block)] : 0;
            MEDIUM_CHECK((tag & TAG_CACHED) && tag_length(tag) == class_units[c] &&
                         n < m->cache[c].count,
                         "the cache of class %zu B holds %p, not a cached block of that class",
                         medium_class_size(c), block);
        }
        MEDIUM_CHECK(n == m->cache[c].count, "the cache of class %zu B counts %zu, holds %zu",
                     medium_class_size(c), m->cache[c].count, n);
    }
}

