/*
 * types.h — the core structs of objmem and the tunables they depend on.
 *
 * Legend:
 *   omi_block   a free small block: its first word links the pool's free list
 *   omi_pool    header at the start of every 16 KiB pool: one size class,
 *               the free list, the never-carved tail, the list links
 *   omi_arena   descriptor of one 1 MiB arena (kept outside the arena): its
 *               pools, its place in the heap's arena lists
 *   om_heap     all allocator state: per-class lists of usable pools, the
 *               arenas ordered fullest first, counters
 *
 * Memory picture (one arena, aligned to OMI_ARENA_SIZE):
 *
 *   arena base                                          base + 1 MiB
 *   | pool 0 | pool 1 | … | pool k (never used yet) … | pool 63 |
 *   pool = | omi_pool header (48 B) | block | block | … | tail |
 */
#ifndef OM_TYPES_H
#define OM_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objmem.h"

/* ---- Tunables ----------------------------------------------------------- */

#ifndef OM_ARENA_SHIFT
#define OM_ARENA_SHIFT 20            /* arena = 1 MiB */
#endif
#ifndef OM_POOL_SHIFT
#define OM_POOL_SHIFT 14             /* pool = 16 KiB */
#endif
#define OMI_ARENA_SIZE ((size_t)1 << OM_ARENA_SHIFT)
#define OMI_POOL_SIZE ((size_t)1 << OM_POOL_SHIFT)
#define OMI_POOL_MASK (OMI_POOL_SIZE - 1)
#define OMI_POOLS_PER_ARENA (OMI_ARENA_SIZE / OMI_POOL_SIZE)
#define OMI_CLASS_COUNT OM_SMALL_CLASS_COUNT
#define OMI_ALIGN_SHIFT 4            /* size classes are 16 B apart */
#define OMI_CARVE_SPAN ((size_t)4096) /* blocks are carved a page at a time */

_Static_assert(OMI_ARENA_SIZE == OM_ARENA_SIZE, "objmem.h and OM_ARENA_SHIFT disagree");
_Static_assert(OMI_POOL_SIZE == OM_POOL_SIZE, "objmem.h and OM_POOL_SHIFT disagree");
_Static_assert(OM_POOL_SHIFT < OM_ARENA_SHIFT, "a pool must fit in an arena");
_Static_assert(OMI_POOLS_PER_ARENA <= 0xFFFF, "pool counts are kept in 16 bits");
_Static_assert(OM_ALIGNMENT == (1 << OMI_ALIGN_SHIFT), "class spacing is the alignment");
_Static_assert(OM_SMALL_SIZE_MAX % OM_ALIGNMENT == 0, "classes end on a multiple of 16");
_Static_assert(OMI_POOL_SIZE >= 8 * OM_SMALL_SIZE_MAX, "a pool holds several largest blocks");

/* ---- Blocks and pools ---------------------------------------------------- */

typedef struct omi_block {
    struct omi_block *next;          /* next free block of the pool, or NULL */
} omi_block;

#define OMI_POOL_UNASSIGNED 0xFFFFu  /* class_index of a pool back in its arena */

/*
 * Invariants (pool p of class c, block size s = (c + 1) * 16):
 *   used + |free list| + (max_offset - next_offset) / s + 1 = capacity(s)
 *     while next_offset <= max_offset (the +1 term vanishes once carved out)
 *   in_list  <=>  p is in heap->usable[c]
 *   !in_list and assigned  =>  free list empty and nothing left to carve
 * 48 bytes, so the hot fields share one cache line with nothing else.
 */
typedef struct omi_pool {
    omi_block *freeblock;            /* head of the free list; NULL = none */
    struct omi_pool *next;           /* usable list (or arena free list) */
    struct omi_pool *prev;           /* usable list; NULL at the head */
    struct omi_arena *arena;         /* the arena this pool sits in */
    uint32_t used;                   /* blocks handed out */
    uint16_t class_index;            /* size class, or OMI_POOL_UNASSIGNED */
    uint16_t in_list;                /* 1 while linked in heap->usable[] */
    uint32_t next_offset;            /* offset of the first never-carved block */
    uint32_t max_offset;             /* last offset where a block still fits */
} omi_pool;

#define OMI_POOL_HEADER_SIZE \
    ((sizeof(omi_pool) + OM_ALIGNMENT - 1) & ~(size_t)(OM_ALIGNMENT - 1))
_Static_assert(sizeof(omi_pool) <= 64, "the pool header must fit one cache line");

/* ---- Arenas -------------------------------------------------------------- */

/*
 * An arena is in exactly one of: the heap's usable list (some pool free,
 * sorted by nfree_pools ascending so the fullest is used first), no list
 * (every pool assigned), or heap->spare (every pool free, kept for reuse).
 * Every arena is also on the heap's all-arenas list.
 *   nfree_pools = |free_pools| + (OMI_POOLS_PER_ARENA - untouched_index)
 */
typedef struct omi_arena {
    uintptr_t base;                  /* address of pool 0, OMI_ARENA_SIZE aligned */
    om_heap *heap;                   /* owner */
    omi_pool *free_pools;            /* emptied pools, linked through ->next */
    uint32_t nfree_pools;            /* pools not assigned to a class */
    uint32_t untouched_index;        /* pools from here on were never used */
    struct omi_arena *next;          /* usable list, toward more free pools */
    struct omi_arena *prev;          /* usable list, toward fuller arenas */
    struct omi_arena *all_next;      /* all-arenas list */
    struct omi_arena *all_prev;
    bool in_usable_list;             /* on the usable list now */
    om_arena_allocator allocator;    /* the allocator that mapped it */
} omi_arena;

/* ---- The heap ------------------------------------------------------------ */

struct om_heap {
    omi_pool *usable[OMI_CLASS_COUNT];   /* pools with room per class;
                                            &omi_pool_sentinel when none */
    omi_arena *usable_arenas;            /* head: fewest free pools */
    omi_arena *last_with_nfree[OMI_POOLS_PER_ARENA + 1]; /* last usable arena
                                            having exactly n free pools */
    omi_arena *all_arenas;               /* every arena, spare included */
    omi_arena *spare;                    /* one wholly free arena, or NULL */
    omi_arena *warm_arena;               /* the one arena allowed to be held
                                            only by warm pools, or NULL */
    size_t arenas_allocated;             /* counters since creation */
    size_t arenas_freed;
    size_t arenas_current;
    size_t arenas_highwater;
    bool is_default;                     /* the MEM/OBJ heap: never deleted */
};

#endif
