/*
 * types.h — the core structs of objmem and the tunables they depend on.
 *
 * Legend:
 *   omi_block       a free small block: its first word links the free list
 *   omi_pool        state of one 16 KiB pool: size class, free list,
 *                   count of used blocks, list links
 *   omi_arena       descriptor of one 1 MiB arena, at the arena's start:
 *                   its pools' states, its place in the heap's arena lists
 *   om_heap     all allocator state: per-class lists of usable pools, the
 *               arenas ordered fullest first, counters
 *
 * Memory picture (one arena, aligned to OMI_ARENA_SIZE):
 *
 *   arena base                                          base + 1 MiB
 *   | descriptor | pool 1 | … | pool k (never used yet) … | pool 63 |
 *   pool = | block | block | … | block | tail |     (no header inside)
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
#define OMI_POOLS_USABLE (OMI_POOLS_PER_ARENA - 1)   /* pool 0 holds the descriptor */
#define OMI_CLASS_COUNT OM_SMALL_CLASS_COUNT
#define OMI_ALIGN_SHIFT 4            /* size classes are 16 B apart */
#define OMI_CARVE_SPAN ((size_t)4096) /* blocks are carved a page at a time */
#ifndef OMI_SPARE_ARENAS_MAX
#define OMI_SPARE_ARENAS_MAX 64      /* wholly free pool arenas kept per heap for reuse */
#endif

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

#define OMI_POOL_UNASSIGNED 0xFFu    /* class_index of a pool back in its arena */

enum omi_pool_list_state {
    OMI_POOL_UNLISTED = 0,           /* full, or back in its arena */
    OMI_POOL_LISTED = 1,             /* in heap->usable[class] with others */
    OMI_POOL_ALONE = 2,              /* the only pool in heap->usable[class] */
};

/*
 * The state of one pool: 32 bytes, two to a cache line. It lives in a dense
 * array in the arena descriptor, not in the pool, so that a free at a
 * random address touches the block and one metadata line that is likely
 * cached, instead of a header 16 KiB away from every other header (a cache
 * miss and a TLB miss). The fast paths use the first 16 bytes; the list
 * links share the line so that relinking a pool costs no second line.
 * Invariants (pool of class c, block size s = (c + 1) * 16):
 *   used + |free list| + (pool_size - next_offset) / s = pool_size / s
 *   list_state != UNLISTED  <=>  the pool is in heap->usable[c]
 *   listed  =>  freeblock != NULL
 *   UNLISTED and assigned   =>   free list empty and nothing left to carve
 */
typedef struct omi_pool {
    omi_block *freeblock;            /* head of the free list; NULL = none */
    uint16_t used;                   /* blocks handed out */
    uint16_t next_offset;            /* offset of the first never-carved block */
    uint8_t class_index;             /* size class, or OMI_POOL_UNASSIGNED */
    uint8_t list_state;              /* enum omi_pool_list_state */
    uint8_t kept_class;              /* back in its arena: the class whose
                                        free list it still holds */
    struct omi_pool *next;           /* usable list, or the arena's free pools */
    struct omi_pool *prev;           /* usable list; NULL at the head */
} omi_pool;

_Static_assert(OMI_POOL_SIZE <= 0xFFFF, "used and next_offset are kept in 16 bits");
_Static_assert(OMI_CLASS_COUNT < 0xFF, "class_index is kept in 8 bits");
_Static_assert(sizeof(omi_pool) == 32, "pool states are two to a cache line");

/* ---- Arenas -------------------------------------------------------------- */

/*
 * An arena's descriptor sits at the start of the arena, in the place of
 * pool 0 (which is never handed out; only the descriptor's own pages of it
 * are ever touched). So the descriptor of any block, or of any pool state,
 * is that address with the low 20 bits cleared: the free path finds the
 * pool state from the pointer alone, in parallel with the address-map check.
 * An arena is in exactly one of: the heap's usable list (some pool free,
 * sorted by nfree_pools ascending so the fullest is used first), no list
 * (every pool assigned), or the heap's spare stack (every pool free, kept
 * for reuse until the purge delay passes; linked through ->next).
 * Every arena is also on the heap's all-arenas list.
 *   nfree_pools = |free_pools| + (OMI_POOLS_PER_ARENA - untouched_index)
 *   1 <= untouched_index <= OMI_POOLS_PER_ARENA
 */
typedef struct omi_arena {
    om_heap *heap;                   /* owner */
    uint32_t nfree_pools;            /* usable pools not assigned to a class */
    uint32_t untouched_index;        /* pools from here on were never used */
    omi_pool *free_pools;            /* emptied pools, linked through ->next */
    struct omi_arena *next;          /* usable list, toward more free pools */
    struct omi_arena *prev;          /* usable list, toward fuller arenas */
    struct omi_arena *all_next;      /* all-arenas list */
    struct omi_arena *all_prev;
    bool in_usable_list;             /* on the usable list now */
    bool dirty;                      /* some free pool still holds its pages */
    uint64_t dirty_since_ms;         /* when the first of them went free */
    uint64_t spare_since_ms;         /* when it became a spare (on the spare stack) */
    om_arena_allocator allocator;    /* the allocator that mapped it */
    _Alignas(64) omi_pool pools[OMI_POOLS_PER_ARENA];   /* state per pool */
    uintptr_t secure_heads[OMI_POOLS_PER_ARENA];   /* hardened heaps only: each
                                        pool's free-list head, encoded (their
                                        pools' freeblock stays NULL; pool.c) */
} omi_arena;

_Static_assert(sizeof(omi_arena) <= OMI_POOL_SIZE, "the descriptor must fit in pool 0");
_Static_assert(offsetof(omi_arena, heap) == 0, "omi_heap_of reads the owner first");
_Static_assert(OMI_POOLS_USABLE < 64, "free-pool counts index a 64-bit mask");

/* ---- Medium blocks (medium.c) -------------------------------------------- */

#define OMI_MEDIUM_CLASS_COUNT OM_MEDIUM_CLASS_COUNT  /* 640 B … 256 KiB */
#define OMI_MEDIUM_BIN_COUNT 48      /* free-run bins by length in 128 B units */

typedef struct omi_medium_cache {
    void *head;                      /* freed blocks of one class, LIFO */
    size_t count;                    /* how many */
} omi_medium_cache;

/* A heap's medium state: free runs binned by length, a cache per class. */
typedef struct omi_medium_heap {
    struct medium_free_run *bins[OMI_MEDIUM_BIN_COUNT]; /* free runs per bin */
    uint64_t bin_mask;               /* bit b: bins[b] is not empty */
    omi_medium_cache cache[OMI_MEDIUM_CLASS_COUNT];
    struct omi_medium_arena *arenas; /* every medium arena of the heap */
    struct omi_medium_arena *spare;  /* one with no block in use kept, or NULL */
    uint64_t spare_since_ms;         /* when it became the spare */
    size_t arenas_current;
    size_t arenas_allocated;
    size_t arenas_freed;
} omi_medium_heap;

/* ---- The heap ------------------------------------------------------------ */

/* A hardened heap's secrets (OBJMEM_SECURE; pool.c's design comment).
 * A free-list link to `next` stored at address `slot` is kept as
 *   rotl(next ^ slot ^ link_xor, link_rotate) + link_add
 * and a free block's second word holds (block ^ free_tag). */
typedef struct omi_secure {
    bool on;                         /* the heap is hardened (fixed at its first pool) */
    unsigned link_rotate;            /* 1 … 63 */
    uintptr_t link_xor;              /* random */
    uintptr_t link_add;              /* random */
    uintptr_t free_tag;              /* random: marks blocks on a free list */
    uint64_t shuffle_state;          /* xorshift64 state for carving order, != 0 */
} omi_secure;

struct om_heap {
    omi_pool *usable[OMI_CLASS_COUNT];   /* pools with room per class;
                                            &omi_pool_sentinel when none */
    omi_arena *usable_arenas;            /* head: fewest free pools */
    omi_arena *last_with_nfree[OMI_POOLS_USABLE + 1]; /* last usable arena
                                            having exactly n free pools */
    uint64_t nfree_present;              /* bit n: last_with_nfree[n] != NULL */
    omi_arena *all_arenas;               /* every arena, spare included */
    omi_arena *spare;                    /* top of the stack of wholly free arenas */
    size_t spare_count;                  /* arenas on it, <= OMI_SPARE_ARENAS_MAX */
    omi_arena *warm_arena;               /* the one arena allowed to be held
                                            only by warm pools, or NULL */
    omi_medium_heap medium;              /* 513 B … 256 KiB (medium.c) */
    struct omi_large *large_blocks;      /* large mappings of this heap (large.c) */
    size_t large_count;                  /* how many */
    size_t large_bytes;                  /* their usable bytes */
    struct omi_large *large_cache;       /* freed mappings kept for reuse */
    size_t large_cached_count;           /* how many */
    size_t large_cached_bytes;           /* their mapping bytes */
    uint64_t now_ms;                     /* the clock at the last purge check */
    uint64_t last_purge_check_ms;        /* the last scan for dirty memory */
    size_t purged_bytes;                 /* given back with madvise, in total */
    size_t purges;                       /* madvise calls that did it */
    size_t arenas_allocated;             /* counters since creation */
    size_t arenas_freed;
    size_t arenas_current;
    size_t arenas_highwater;
    bool is_default;                     /* the MEM/OBJ heap: never deleted */
    omi_secure secure;                   /* hardened mode (OBJMEM_SECURE) */
};

#endif
