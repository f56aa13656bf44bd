/*
 * pool.c — the small-object allocator: objmem's pymalloc.
 *
 * Requests of 0..512 bytes are rounded up to one of 32 size classes spaced
 * 16 bytes apart (class i holds blocks of (i + 1) * 16 bytes):
 *
 *   request   1-16  17-32  33-48  …  497-512
 *   class        0      1      2  …       31
 *   block       16     32     48  …      512
 *
 * Memory comes in arenas of 1 MiB aligned to their size (os.c), each cut
 * into 64 slots of 16 KiB: slot 0 holds the arena's descriptor, slots 1-63
 * are pools. A pool serves one class and holds nothing but blocks. Its
 * state is kept outside it, in the descriptor: a dense array of 32-byte
 * records (free list, used count, class, carving position, list links).
 * A block's record is found from the block's address alone (clear the low
 * 20 bits for the descriptor, bits 19-14 pick the record), so the free path
 * loads it in parallel with the address-map check.
 *
 * Why outside: a free at a random address must touch the block; with an
 * in-pool header it also touches a line 16 KiB away from every other
 * header, usually a cache miss and a TLB miss. The records of an arena
 * share two pages.
 *
 * Inside a pool, free blocks form an intrusive singly-linked list through
 * their first word. Blocks never used are not linked up front: the pool
 * carves them from its tail a page (OMI_CARVE_SPAN) at a time when the list
 * runs dry, so a fresh pool touches only the pages it uses.
 *
 * Per heap and per class, `usable[c]` heads a doubly-linked list of pools
 * that can serve class c; every listed pool has a free block. The
 * allocation fast path (internal.h) is: load the head, pop its free list.
 * When that pop empties the list, the pool carves more or leaves the list
 * as full, right away; when the class has no pool at all, the slow path
 * takes one from an arena.
 * A list with no pool points at a shared sentinel whose free list is empty,
 * so the fast path needs no NULL test. A full pool is off every list; the
 * first free into it links it back at the head. Each pool's list_state says
 * whether it is listed, and whether it is alone in its list, so the free
 * fast path can tell a warm pool without following the links.
 *
 * Pool states and transitions:
 *
 *        take from arena               free into full pool
 *   free ───────────────▶ usable ◀──────────────────────── full
 *    ▲                     │  └────── exhausted on alloc ───▶ ▲
 *    └─ last block freed ──┘  (unless it is its class's only usable pool:
 *                              then it stays warm, so that a loop of
 *                              allocate/free pairs never flips it)
 *
 * Warm pools could pin whole arenas: after a program frees everything, each
 * class's last pool may sit alone in its own arena. So an arena held only
 * by warm pools is allowed once per heap (`warm_arena`); in any other such
 * arena the warm pools go back and the arena retires. A heap that has freed
 * everything keeps the warm arena and its spares (below) mapped until the
 * purge delay has passed.
 *
 * Arenas: each arena descriptor (kept outside the arena) counts its free
 * pools: emptied ones on a list, plus the never-used tail. Arenas with a free
 * pool sit on the heap's usable-arena list sorted by that count, fewest
 * first, so new pools come from the fullest arena and the emptiest arenas
 * get the chance to drain completely. `last_with_nfree[n]` points at the
 * last arena holding exactly n free pools, and a 64-bit mask says which n
 * have one, so re-sorting after a change is a splice rather than a walk
 * (CPython's nfp2lasta, plus the mask). A wholly
 * free arena becomes a spare, up to OMI_SPARE_ARENAS_MAX per heap, and is
 * unmapped once it has been spare for the purge delay (or at om_heap_trim,
 * or at once with a delay of 0): a program that builds and drops a few MiB
 * of objects in a loop (binary-trees) reuses its arenas instead of paying
 * the page faults of fresh mappings on every round; beyond the cap, or
 * after the delay, empty arenas go back to the OS as in CPython. Arenas are registered in the address map (which
 * is how a free with no heap argument knows a pointer is ours).
 *
 * Hardened mode (OM_OPTION_SECURE, fixed per heap when it takes its first
 * pool): a hardened heap's pools keep `freeblock` NULL, so the inline fast
 * paths, unchanged, always fall through to the out-of-line ones here, and
 * keep their real free list in the arena's secure_heads[] instead. There,
 * and in every free block, a link to `next` stored at address `slot` is
 * encoded with the heap's secrets (types.h, omi_secure):
 *
 *   stored = rotl(next ^ slot ^ link_xor, link_rotate) + link_add
 *
 *   hardened free block:  | encoded next | block ^ free_tag | rest … |
 *
 * Every decoded link must be NULL or a carved block of the same pool
 * before it is used: an overwritten link (a write after free, an overflow
 * from the block before) is reported, never followed, and an attacker who
 * does not know the secrets cannot forge one. The second word marks the
 * block as free: freeing a block that carries its mark is a double free,
 * found in O(1) without the debug hooks (a live block carries the mark only
 * if its user wrote a value derived from the secret: the mark is cleared as
 * the block is handed out). A fresh pool is carved whole at once, in a
 * random order (Fisher-Yates, from the heap's xorshift state), so the
 * addresses handed out are not predictable from one another. All links are
 * read through secure_decode; walkers outside (heap checks) use
 * omi_pool_free_first / omi_pool_free_next, which decode for them.
 *
 * Learned from: CPython Objects/obmalloc.c (size classes, pools, usedpools,
 * arena ordering) and mimalloc (lazy free-list extension; keeping a page
 * from flipping between empty and used on every free; its secure mode's
 * encoded free lists, guard pages and randomised extension).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* The pool that every empty usable list points at: no free block, never
 * linked, never written. */
omi_pool omi_pool_sentinel;

/* Divisibility by a block size with one multiplication (Lemire): for a
 * block size 16 * d, offset / 16 is a multiple of d iff
 * (uint32_t)(offset / 16 * M) <= M - 1 with M = 0xFFFFFFFF / d + 1. */
#define MAGIC(d) (uint32_t)(UINT32_C(0xFFFFFFFF) / (d) + 1)
#define MAGIC4(d) MAGIC(d), MAGIC(d + 1), MAGIC(d + 2), MAGIC(d + 3)
const uint32_t omi_pool_block_magic[OMI_CLASS_COUNT] = {
    MAGIC4(1), MAGIC4(5), MAGIC4(9), MAGIC4(13),
    MAGIC4(17), MAGIC4(21), MAGIC4(25), MAGIC4(29),
};
#undef MAGIC4
#undef MAGIC

static size_t pool_index(const omi_pool *pool)
{
    return (size_t)(pool - omi_arena_of_pool(pool)->pools);
}

static char *pool_memory(const omi_pool *pool)
{
    return (char *)omi_arena_of_pool(pool) + pool_index(pool) * OMI_POOL_SIZE;
}

/* ---- Usable pool lists ---------------------------------------------------- */

static inline void pool_link_head(om_heap *h, omi_pool *pool)
{
    omi_pool *head = h->usable[pool->class_index];
    pool->prev = NULL;
    if (head == &omi_pool_sentinel) {
        pool->next = NULL;
        pool->list_state = OMI_POOL_ALONE;
    } else {
        pool->next = head;
        head->prev = pool;
        head->list_state = OMI_POOL_LISTED;
        pool->list_state = OMI_POOL_LISTED;
    }
    h->usable[pool->class_index] = pool;
}

static void pool_unlink(om_heap *h, omi_pool *pool)
{
    if (pool->prev != NULL)
        pool->prev->next = pool->next;
    else
        h->usable[pool->class_index] = pool->next != NULL ? pool->next : &omi_pool_sentinel;
    if (pool->next != NULL)
        pool->next->prev = pool->prev;
    pool->next = pool->prev = NULL;
    pool->list_state = OMI_POOL_UNLISTED;
    omi_pool *head = h->usable[pool->class_index];
    if (head != &omi_pool_sentinel && head->next == NULL)
        head->list_state = OMI_POOL_ALONE;
}

/* The head of its class's list ran out: it is full until a block comes
 * back. The common case of pool_unlink, on the allocation path. */
static void pool_unlink_exhausted_head(om_heap *h, omi_pool *pool)
{
    omi_pool *next = pool->next;
    pool->next = NULL;
    pool->list_state = OMI_POOL_UNLISTED;
    if (next == NULL) {
        h->usable[pool->class_index] = &omi_pool_sentinel;
        return;
    }
    next->prev = NULL;
    if (next->next == NULL)
        next->list_state = OMI_POOL_ALONE;
    h->usable[pool->class_index] = next;
}

/* ---- Arena ordering -------------------------------------------------------- */

static void arena_set_last(om_heap *h, uint32_t n, omi_arena *arena)
{
    h->last_with_nfree[n] = arena;
    if (arena != NULL)
        h->nfree_present |= (uint64_t)1 << n;
    else
        h->nfree_present &= ~((uint64_t)1 << n);
}

static void arena_list_unlink(om_heap *h, omi_arena *arena)
{
    uint32_t n = arena->nfree_pools;
    if (h->last_with_nfree[n] == arena)
        arena_set_last(h, n, (arena->prev != NULL && arena->prev->nfree_pools == n)
                                 ? arena->prev : NULL);
    if (arena->prev != NULL)
        arena->prev->next = arena->next;
    else
        h->usable_arenas = arena->next;
    if (arena->next != NULL)
        arena->next->prev = arena->prev;
    arena->next = arena->prev = NULL;
    arena->in_usable_list = false;
}

/* Inserts arena where its nfree_pools keeps the list ascending: after the
 * last arena with as many or fewer free pools, found in O(1) from the
 * bitmap of counts that have a last arena. */
static void arena_list_insert(om_heap *h, omi_arena *arena)
{
    uint32_t n = arena->nfree_pools;
    uint64_t at_most_n = h->nfree_present & (((uint64_t)2 << n) - 1);
    omi_arena *after = at_most_n != 0 ? h->last_with_nfree[63 - __builtin_clzll(at_most_n)] : NULL;
    arena->prev = after;
    arena->next = after != NULL ? after->next : h->usable_arenas;
    if (arena->next != NULL)
        arena->next->prev = arena;
    if (after != NULL)
        after->next = arena;
    else
        h->usable_arenas = arena;
    arena_set_last(h, n, arena);
    arena->in_usable_list = true;
}

/* ---- Arenas ----------------------------------------------------------------- */

static omi_arena *arena_new(om_heap *h)
{
    om_arena_allocator made_by;
    omi_arena *arena = omi_os_arena_alloc(OMI_OWNER_SMALL, &made_by);
    if (arena == NULL)
        return NULL;
    memset(arena, 0, sizeof *arena);   /* a custom arena allocator may not zero */
    for (size_t i = 0; i < OMI_POOLS_PER_ARENA; i++)
        arena->pools[i].class_index = OMI_POOL_UNASSIGNED;
    arena->allocator = made_by;
    arena->heap = h;
    arena->nfree_pools = OMI_POOLS_USABLE;
    arena->untouched_index = 1;
    arena->all_next = h->all_arenas;
    if (h->all_arenas != NULL)
        h->all_arenas->all_prev = arena;
    h->all_arenas = arena;
    h->arenas_allocated++;
    if (++h->arenas_current > h->arenas_highwater)
        h->arenas_highwater = h->arenas_current;
    return arena;
}

static void arena_unmap(om_heap *h, omi_arena *arena)
{
    if (h->warm_arena == arena)
        h->warm_arena = NULL;
    if (arena->all_prev != NULL)
        arena->all_prev->all_next = arena->all_next;
    else
        h->all_arenas = arena->all_next;
    if (arena->all_next != NULL)
        arena->all_next->all_prev = arena->all_prev;
    h->arenas_freed++;
    h->arenas_current--;
    omi_os_arena_free(arena, arena->allocator);
}

/* A wholly free arena: kept as a spare (while fewer than
 * OMI_SPARE_ARENAS_MAX are kept and the purge delay is not 0), or goes back
 * to the OS. Spares are a stack linked through ->next, newest on top. */
static void arena_retire(om_heap *h, omi_arena *arena)
{
    if (h->spare_count < OMI_SPARE_ARENAS_MAX && !omi_purge_at_once()) {
        arena->next = h->spare;
        arena->spare_since_ms = omi_purge_now(h);
        h->spare = arena;
        h->spare_count++;
        return;
    }
    arena_unmap(h, arena);
}

static omi_arena *spare_pop(om_heap *h)
{
    omi_arena *arena = h->spare;
    if (arena != NULL) {
        h->spare = arena->next;
        h->spare_count--;
    }
    return arena;
}

/* Unmaps the spares that have been spare since before deadline_ms (all of
 * them for UINT64_MAX). Older spares sit lower in the stack. */
static void spares_unmap_due(om_heap *h, uint64_t deadline_ms)
{
    omi_arena **link = &h->spare;
    while (*link != NULL) {
        omi_arena *arena = *link;
        if (deadline_ms == UINT64_MAX || omi_purge_is_due(arena->spare_since_ms, deadline_ms)) {
            *link = arena->next;
            h->spare_count--;
            arena_unmap(h, arena);
        } else {
            link = &arena->next;
        }
    }
}

/* The arena new pools come from: the fullest usable one, else the spare,
 * else a new one. NULL with OM_ENOMEM. */
static omi_arena *arena_for_new_pool(om_heap *h)
{
    if (h->usable_arenas != NULL)
        return h->usable_arenas;
    omi_arena *arena = spare_pop(h);
    if (arena == NULL && (arena = arena_new(h)) == NULL)
        return NULL;
    arena_list_insert(h, arena);
    return arena;
}

/* ---- Hardened free lists ------------------------------------------------ */

#define SECURE_BLOCK_WORDS (2 * sizeof(uintptr_t))   /* the link and the free mark */
_Static_assert(SECURE_BLOCK_WORDS <= OM_ALIGNMENT, "the smallest block holds both words");

static uintptr_t secure_rotl(uintptr_t x, unsigned r)
{
    return (x << r) | (x >> (sizeof x * 8 - r));
}

static uintptr_t secure_rotr(uintptr_t x, unsigned r)
{
    return (x >> r) | (x << (sizeof x * 8 - r));
}

/* The stored form of a link to `next` kept at address `slot`. */
static uintptr_t secure_encode(const omi_secure *s, const void *slot, const omi_block *next)
{
    return secure_rotl((uintptr_t)next ^ (uintptr_t)slot ^ s->link_xor, s->link_rotate) +
           s->link_add;
}

/* The one decoder of stored links (not validated: see secure_checked). */
static omi_block *secure_decode(const omi_secure *s, const void *slot, uintptr_t stored)
{
    return (omi_block *)(secure_rotr(stored - s->link_add, s->link_rotate) ^ (uintptr_t)slot ^
                         s->link_xor);
}

static uintptr_t secure_free_mark(const omi_secure *s, const omi_block *block)
{
    return (uintptr_t)block ^ s->free_tag;
}

static uintptr_t *secure_head_of(const omi_pool *pool)
{
    return &omi_arena_of_pool(pool)->secure_heads[pool_index(pool)];
}

static _Noreturn OMI_COLD void secure_corrupted(const omi_pool *pool, const void *slot,
                                                const omi_block *decoded)
{
    omi_fatal("the free list of pool %p (class %zu B) is corrupted: the link at %p decodes "
              "to %p, not a block of the pool (a write after free, or an overflow from the "
              "block before it; hardened mode)",
              (void *)pool_memory(pool), omi_class_block_size(pool->class_index), slot,
              (const void *)decoded);
}

/* A decoded link of pool's list, stored at slot: NULL or a carved block of
 * the pool, else fatal before anything follows it. */
static inline omi_block *secure_checked(const omi_pool *pool, const void *slot,
                                        omi_block *decoded)
{
    uintptr_t off_pool = ((uintptr_t)decoded ^ (uintptr_t)pool_memory(pool)) &
                         ~(uintptr_t)(OMI_POOL_MASK & ~(OM_ALIGNMENT - 1));
    if (omi_unlikely(decoded != NULL && (off_pool != 0 || !omi_pool_block_is_valid(pool, decoded))))
        secure_corrupted(pool, slot, decoded);
    return decoded;
}

/* Writes free block's link to next and its free mark. */
static void secure_link_free(const omi_secure *s, omi_block *block, const omi_block *next)
{
    uintptr_t *words = (uintptr_t *)block;
    omi_track_internal_open(block, SECURE_BLOCK_WORDS);
    words[0] = secure_encode(s, block, next);
    words[1] = secure_free_mark(s, block);
    omi_track_internal_close(block, SECURE_BLOCK_WORDS);
}

static uint64_t secure_random(omi_secure *s)
{
    uint64_t x = s->shuffle_state;   /* xorshift64: never 0 from a non-zero seed */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return s->shuffle_state = x;
}

/* A hardened pool's first carve: every block of the pool at once, linked
 * in a random order onto its (empty) list. */
static void pool_carve_shuffled(om_heap *h, omi_pool *pool)
{
    omi_secure *s = &h->secure;
    size_t block_size = omi_class_block_size(pool->class_index);
    size_t count = OMI_POOL_SIZE / block_size;
    uint16_t order[OMI_POOL_SIZE / OM_ALIGNMENT];
    om_assert(pool->next_offset == 0);
    for (size_t i = 0; i < count; i++)
        order[i] = (uint16_t)i;
    for (size_t i = count - 1; i > 0; i--) {
        size_t j = (size_t)(secure_random(s) % (i + 1));
        uint16_t swap = order[i];
        order[i] = order[j];
        order[j] = swap;
    }
    char *base = pool_memory(pool);
    omi_block *next = NULL;
    for (size_t i = count; i-- > 0;) {
        omi_block *block = (omi_block *)(base + order[i] * block_size);
        secure_link_free(s, block, next);
        next = block;
    }
    uintptr_t *head = secure_head_of(pool);
    *head = secure_encode(s, head, next);
    pool->next_offset = (uint16_t)(count * block_size);
}

omi_block *omi_pool_free_first(const omi_pool *pool)
{
    const om_heap *h = omi_arena_of_pool(pool)->heap;
    if (!h->secure.on)
        return pool->freeblock;
    const uintptr_t *head = secure_head_of(pool);
    return secure_decode(&h->secure, head, *head);
}

omi_block *omi_pool_free_next(const omi_pool *pool, const omi_block *block)
{
    const om_heap *h = omi_arena_of_pool(pool)->heap;
    omi_track_internal_open(block, sizeof(uintptr_t));
    omi_block *next = h->secure.on ? secure_decode(&h->secure, block, *(const uintptr_t *)block)
                                   : omi_pool_block_next(pool, block);
    omi_track_internal_close(block, sizeof(uintptr_t));
    return next;
}

/* ---- Pools ------------------------------------------------------------------- */

/* Links never-used blocks from the pool's tail onto its (empty) free list,
 * up to the end of the page holding the first one. false if none is left. */
static bool pool_carve(omi_pool *pool)
{
    size_t block_size = omi_class_block_size(pool->class_index);
    size_t start = pool->next_offset;
    size_t left = (OMI_POOL_SIZE - start) / block_size;
    if (left == 0)
        return false;
    /* Blocks starting before the end of the current carve span. */
    size_t span_end = (start & ~(OMI_CARVE_SPAN - 1)) + OMI_CARVE_SPAN;
    size_t count = (span_end - start + block_size - 1) / block_size;
    if (count > left)
        count = left;
    char *first = pool_memory(pool) + start;
    char *last = first + (count - 1) * block_size;
    for (char *at = first; at < last; at += block_size) {
        omi_track_internal_open(at, sizeof(omi_block));
        ((omi_block *)at)->next = (omi_block *)(at + block_size);
        omi_track_internal_close(at, sizeof(omi_block));
    }
    omi_track_internal_open(last, sizeof(omi_block));
    ((omi_block *)last)->next = NULL;
    omi_track_internal_close(last, sizeof(omi_block));
    pool->freeblock = (omi_block *)first;
    pool->next_offset = (uint16_t)(start + count * block_size);
    return true;
}

/* Assigns a free pool of the fullest usable arena to class_index and links
 * it at the head of the class's list. NULL with OM_ENOMEM. */
static omi_pool *pool_take(om_heap *h, size_t class_index)
{
    omi_arena *arena = arena_for_new_pool(h);
    if (arena == NULL)
        return NULL;
    omi_pool *pool = arena->free_pools;
    if (pool != NULL) {
        arena->free_pools = pool->next;
    } else {
        pool = &arena->pools[arena->untouched_index++];
        pool->kept_class = OMI_POOL_UNASSIGNED;
    }
    /* The head arena has the fewest free pools, so one fewer keeps it first. */
    arena_list_unlink(h, arena);
    arena->nfree_pools--;
    if (arena->nfree_pools > 0)
        arena_list_insert(h, arena);
    om_assert(pool->used == 0);
    pool->class_index = (uint8_t)class_index;
    if (pool->kept_class != class_index) {
        /* A fresh pool, or one whose free list is of another class: carve
         * anew. Every block starts out inaccessible to memory checkers. */
        pool->freeblock = NULL;
        pool->next_offset = 0;
        omi_track_internal_close(pool_memory(pool), OMI_POOL_SIZE);
        if (h->secure.on)
            pool_carve_shuffled(h, pool);
        else
            pool_carve(pool);
    }
    pool_link_head(h, pool);
    return pool;
}

/* Gives a free pool's pages back; its free list goes with them. */
static void pool_purge(om_heap *h, omi_pool *pool)
{
    omi_asan_unpoison(pool_memory(pool), OMI_POOL_SIZE);
    omi_purge_range(h, pool_memory(pool), OMI_POOL_SIZE);
    omi_track_internal_close(pool_memory(pool), OMI_POOL_SIZE);
    pool->kept_class = OMI_POOL_UNASSIGNED;
}

/* Returns an empty pool to its arena, re-sorting or retiring the arena.
 * true if the arena retired (its descriptor may be gone). */
static bool pool_give_back(om_heap *h, omi_pool *pool)
{
    omi_arena *arena = omi_arena_of_pool(pool);
    if (pool->list_state != OMI_POOL_UNLISTED)
        pool_unlink(h, pool);
    /* Every block is on the free list: a later take for the same class
     * reuses the list instead of carving again, unless the pool's pages are
     * purged first. */
    pool->kept_class = pool->class_index;
    pool->class_index = OMI_POOL_UNASSIGNED;
    pool->next = arena->free_pools;
    arena->free_pools = pool;
    if (omi_purge_at_once()) {
        pool_purge(h, pool);
    } else if (!arena->dirty) {
        arena->dirty = true;
        arena->dirty_since_ms = omi_purge_now(h);
    }
    if (arena->in_usable_list)
        arena_list_unlink(h, arena);
    arena->nfree_pools++;
    if (arena->nfree_pools == OMI_POOLS_USABLE) {
        arena_retire(h, arena);
        return true;
    }
    arena_list_insert(h, arena);
    return false;
}

/* ---- Warm pools ----------------------------------------------------------- */

static bool pool_is_warm_in(const omi_pool *pool, const omi_arena *arena)
{
    return pool != &omi_pool_sentinel && omi_arena_of_pool(pool) == arena && pool->used == 0;
}

/* true if every assigned pool of arena is an empty class head of h. O(32). */
static bool arena_held_only_by_warm_pools(const om_heap *h, const omi_arena *arena)
{
    uint32_t assigned = (uint32_t)OMI_POOLS_USABLE - arena->nfree_pools;
    if (assigned > OMI_CLASS_COUNT)
        return false;
    uint32_t warm = 0;
    for (size_t c = 0; c < OMI_CLASS_COUNT; c++)
        warm += pool_is_warm_in(h->usable[c], arena);
    return warm == assigned;
}

/* Called when arena may be held only by warm pools: the heap keeps one such
 * arena; any other gives its warm pools back and retires. */
static void arena_settle_warm(om_heap *h, omi_arena *arena)
{
    if (h->warm_arena == arena || !arena_held_only_by_warm_pools(h, arena))
        return;
    if (h->warm_arena == NULL || !arena_held_only_by_warm_pools(h, h->warm_arena)) {
        h->warm_arena = arena;
        return;
    }
    for (size_t c = 0; c < OMI_CLASS_COUNT; c++) {
        if (pool_is_warm_in(h->usable[c], arena) && pool_give_back(h, h->usable[c]))
            return;  /* the arena retired with its last pool */
    }
}

/* An empty pool that is not its class's only usable pool goes back. */
static void pool_release_empty(om_heap *h, omi_pool *pool)
{
    omi_arena *arena = omi_arena_of_pool(pool);
    if (!pool_give_back(h, pool))
        arena_settle_warm(h, arena);
}

/* A hardened heap's allocation when its class has no pool: takes one. */
static OMI_NOINLINE void *pool_secure_malloc_fresh(om_heap *h, size_t class_index);

/* A hardened heap's allocation: a pop from the encoded list of the class's
 * first pool, its link checked. A leaf but for the rare paths, which are
 * tail calls, so that it needs no stack frame. */
static OMI_NOINLINE void *pool_secure_malloc(om_heap *h, size_t class_index)
{
    omi_pool *pool = h->usable[class_index];
    if (omi_unlikely(pool == &omi_pool_sentinel))
        return pool_secure_malloc_fresh(h, class_index);
    const omi_secure *s = &h->secure;
    /* The head needs no check: only this file writes the descriptor, and a
     * link becomes the head only after passing the check below. */
    uintptr_t *head = secure_head_of(pool);
    omi_block *block = secure_decode(s, head, *head);
    om_assert(block != NULL);   /* a listed pool has a free block */
    uintptr_t *words = (uintptr_t *)block;
    omi_track_internal_open(block, SECURE_BLOCK_WORDS);
    omi_block *next = secure_checked(pool, block, secure_decode(s, block, words[0]));
    words[1] = 0;   /* no longer marked free */
    omi_track_internal_close(block, SECURE_BLOCK_WORDS);
    *head = secure_encode(s, head, next);
    pool->used++;
    if (omi_unlikely(next == NULL))
        pool_unlink_exhausted_head(h, pool);   /* hardened pools are carved whole */
    omi_track_malloc(block, omi_class_block_size(class_index));
    return block;
}

static void *pool_secure_malloc_fresh(om_heap *h, size_t class_index)
{
    omi_purge_tick(h);
    if (pool_take(h, class_index) == NULL)
        return omi_out_of_memory(omi_class_block_size(class_index));
    return pool_secure_malloc(h, class_index);
}

/* The default mode's allocation when the class has no pool. */
static OMI_NOINLINE void *pool_malloc_fresh(om_heap *h, size_t class_index)
{
    if (omi_unlikely(h->is_default && h->arenas_allocated == 0)) {
        omi_heap_choose_mode(h);   /* the static default heap is "created" now */
        if (h->secure.on)
            return pool_secure_malloc(h, class_index);
    }
    om_assert(h->usable[class_index] == &omi_pool_sentinel);
    omi_purge_tick(h);
    if (pool_take(h, class_index) == NULL)
        return omi_out_of_memory(omi_class_block_size(class_index));
    return omi_pool_malloc(h, omi_class_block_size(class_index));
}

void *omi_pool_malloc_slow(om_heap *h, size_t class_index)
{
    /* Tail calls both: this dispatch costs no stack frame. */
    if (h->secure.on)
        return pool_secure_malloc(h, class_index);
    return pool_malloc_fresh(h, class_index);
}

void omi_pool_refill(om_heap *h, omi_pool *pool)
{
    if (!pool_carve(pool))
        pool_unlink_exhausted_head(h, pool);
}

/* After a block went back to pool: relinks an exhausted pool, gives back
 * or settles an emptied one. Inlined into both free paths: a churn of
 * random frees takes the default one about once a free. */
static inline __attribute__((always_inline)) void pool_after_free(om_heap *h, omi_pool *pool,
                                                                  bool was_exhausted)
{
    if (was_exhausted) {
        om_assert(pool->list_state == OMI_POOL_UNLISTED);
        pool_link_head(h, pool);
        /* The old head may be an empty warm pool: no longer the only one. */
        omi_pool *old_head = pool->next;
        if (old_head != NULL && old_head->used == 0)
            pool_release_empty(h, old_head);
    }
    if (pool->used != 0)
        return;
    if (pool->list_state == OMI_POOL_ALONE)
        arena_settle_warm(h, omi_arena_of_pool(pool));
    else
        pool_release_empty(h, pool);
    omi_purge_tick(h);
}

void omi_pool_free_known_invalid(const void *p, size_t class_index)
{
    omi_pool *pool = omi_pool_of(p);
    omi_fatal("om_decref(%p): the object's block is not a handed-out block of %zu bytes\n"
              "  its pool serves class %u and is carved up to offset %u\n"
              "  (a corrupted object or type)",
              p, omi_class_block_size(class_index), (unsigned)pool->class_index,
              (unsigned)pool->next_offset);
}

static _Noreturn OMI_COLD void secure_double_free(const char *function, const omi_pool *pool,
                                                  const void *block)
{
    omi_fatal("%s(%p): double free: the block (%zu B, pool %p) is already on its pool's "
              "free list (hardened mode)",
              function, block, omi_class_block_size(pool->class_index),
              (void *)pool_memory(pool));
}

/* A hardened heap's free: the inline path pushed the block on
 * pool->freeblock (which such pools keep NULL) and came here. The block
 * moves onto the encoded list unless it carries the free mark already. */
static OMI_NOINLINE void pool_secure_free(om_heap *h, omi_pool *pool, const char *function)
{
    const omi_secure *s = &h->secure;
    omi_block *block = pool->freeblock;
    pool->freeblock = NULL;
    omi_track_internal_open(block, SECURE_BLOCK_WORDS);
    bool marked_free = ((uintptr_t *)block)[1] == secure_free_mark(s, block);
    omi_track_internal_close(block, SECURE_BLOCK_WORDS);
    if (marked_free)
        secure_double_free(function, pool, block);
    uintptr_t *head = secure_head_of(pool);
    omi_block *old_head = secure_decode(s, head, *head);   /* checked when popped */
    secure_link_free(s, block, old_head);
    *head = secure_encode(s, head, block);
    if (omi_pool_free_needs_slow(pool, old_head == NULL))
        pool_after_free(h, pool, old_head == NULL);
}

void omi_pool_free_slow(omi_pool *pool, bool was_exhausted, const char *function)
{
    om_heap *h = omi_arena_of_pool(pool)->heap;
    if (h->secure.on)
        pool_secure_free(h, pool, function);   /* a tail call: no frame here */
    else
        pool_after_free(h, pool, was_exhausted);
}

/* ---- Whole heaps ------------------------------------------------------------ */

void omi_pool_heap_init(om_heap *h)
{
    memset(h, 0, sizeof *h);
    for (size_t i = 0; i < OMI_CLASS_COUNT; i++)
        h->usable[i] = &omi_pool_sentinel;
}

#if defined(OM_VALGRIND) && OM_VALGRIND
/* valgrind: the blocks still in use in an arena that goes back with them
 * (a heap deleted with live blocks) are announced as freed; memcheck would
 * otherwise keep their records and misjudge the next blocks mapped at
 * those addresses. Finds them as the carved blocks not on the free list. */
static void arena_forget_live_blocks(omi_arena *arena)
{
    for (uint32_t i = 1; i < arena->untouched_index; i++) {
        omi_pool *pool = &arena->pools[i];
        if (pool->class_index == OMI_POOL_UNASSIGNED || pool->used == 0)
            continue;
        char *base = pool_memory(pool);
        size_t block_size = omi_class_block_size(pool->class_index);
        uint64_t is_free[OMI_POOL_SIZE / OM_ALIGNMENT / 64] = {0};
        for (omi_block *b = omi_pool_free_first(pool); b != NULL; b = omi_pool_free_next(pool, b)) {
            size_t k = (size_t)((char *)b - base) / block_size;
            is_free[k / 64] |= (uint64_t)1 << (k % 64);
        }
        for (size_t k = 0; k * block_size < pool->next_offset; k++)
            if ((is_free[k / 64] >> (k % 64) & 1) == 0)
                omi_vg_freelike(base + k * block_size);
    }
}
#else
static void arena_forget_live_blocks(omi_arena *arena)
{
    (void)arena;
}
#endif

void omi_pool_heap_release_all(om_heap *h)
{
    while (h->all_arenas != NULL) {
        arena_forget_live_blocks(h->all_arenas);
        arena_unmap(h, h->all_arenas);
    }
}

void omi_pool_purge(om_heap *h, uint64_t deadline_ms)
{
    for (omi_arena *arena = h->all_arenas; arena != NULL; arena = arena->all_next) {
        if (!arena->dirty || !omi_purge_is_due(arena->dirty_since_ms, deadline_ms))
            continue;
        for (omi_pool *pool = arena->free_pools; pool != NULL; pool = pool->next) {
            if (pool->kept_class != OMI_POOL_UNASSIGNED)
                pool_purge(h, pool);
        }
        arena->dirty = false;
    }
    spares_unmap_due(h, deadline_ms);
}

size_t omi_pool_heap_trim(om_heap *h)
{
    size_t freed_before = h->arenas_freed;
    for (size_t i = 0; i < OMI_CLASS_COUNT; i++) {
        omi_pool *pool = h->usable[i];
        if (pool != &omi_pool_sentinel && pool->used == 0)
            pool_give_back(h, pool);
    }
    h->warm_arena = NULL;
    spares_unmap_due(h, UINT64_MAX);
    return (h->arenas_freed - freed_before) * OMI_ARENA_SIZE;
}

/* ---- Visiting (for the HTML report) ------------------------------------------ */

int omi_pool_for_each_arena(const om_heap *h, omi_arena_visit_fn fn, void *arg)
{
    omi_arena_view view;
    for (const omi_arena *arena = h->all_arenas; arena != NULL; arena = arena->all_next) {
        view.base = (uintptr_t)arena;
        view.free_pools = arena->nfree_pools;
        view.untouched_index = arena->untouched_index;
        for (size_t i = 1; i < OMI_POOLS_PER_ARENA; i++) {
            view.class_index[i - 1] = arena->pools[i].class_index;
            view.used[i - 1] = arena->pools[i].used;
        }
        int stop = fn(&view, arg);
        if (stop != 0)
            return stop;
    }
    return 0;
}

/* ---- Checking ---------------------------------------------------------------- */

#define POOL_CHECK(cond, ...) \
    do { if (!(cond)) omi_fatal("om_heap_check: " __VA_ARGS__); } while (0)

/* The free list of an assigned pool: inside the carved part, on block
 * boundaries, no longer than the free blocks it can have. Links are read
 * through omi_pool_free_first / omi_pool_free_next, which decode a hardened
 * heap's links. */
static void pool_check_free_list(omi_pool *pool)
{
    size_t block_size = omi_class_block_size(pool->class_index);
    size_t capacity = OMI_POOL_SIZE / block_size;
    size_t carved = pool->next_offset / block_size;
    size_t listed = 0;
    char *base = pool_memory(pool);
    POOL_CHECK(carved <= capacity && pool->used <= carved,
               "pool %p (class %zu B): %u used of %zu carved, %zu fit", (void *)base,
               block_size, (unsigned)pool->used, carved, capacity);
    for (omi_block *b = omi_pool_free_first(pool); b != NULL; listed++) {
        size_t offset = (size_t)((char *)b - base);
        POOL_CHECK((char *)b >= base && offset < pool->next_offset && offset % block_size == 0,
                   "pool %p (class %zu B): free-list entry %p is not a carved block of it",
                   (void *)base, block_size, (void *)b);
        POOL_CHECK(listed < capacity, "pool %p (class %zu B): its free list has a cycle",
                   (void *)base, block_size);
        b = omi_pool_free_next(pool, b);
    }
    POOL_CHECK(listed + pool->used == carved,
               "pool %p (class %zu B): %zu used + %zu free != %zu carved blocks", (void *)base,
               block_size, (size_t)pool->used, listed, carved);
}

static void pool_check_assigned(omi_pool *pool)
{
    POOL_CHECK(pool->class_index < OMI_CLASS_COUNT, "pool %p has class %u",
               (void *)pool_memory(pool), (unsigned)pool->class_index);
    pool_check_free_list(pool);
    bool listed = pool->list_state != OMI_POOL_UNLISTED;
    POOL_CHECK(pool->list_state <= OMI_POOL_ALONE, "pool %p has list state %u",
               (void *)pool_memory(pool), (unsigned)pool->list_state);
    POOL_CHECK(!listed || omi_pool_free_first(pool) != NULL,
               "pool %p is on its class list with no free block", (void *)pool_memory(pool));
    POOL_CHECK(listed || pool->used == OMI_POOL_SIZE / omi_class_block_size(pool->class_index),
               "pool %p is off its class list but not full", (void *)pool_memory(pool));
}

/* One arena: registered in the address map, its free-pool list and counts
 * agree, its pools' records hold. Returns the pools it has listed on the
 * heap's class lists. */
static size_t pool_check_arena(const om_heap *h, omi_arena *arena)
{
    POOL_CHECK(arena->heap == h, "arena %p belongs to another heap", (void *)arena);
    omi_addrmap_check((uintptr_t)arena, OMI_ARENA_SIZE, (uintptr_t)arena | OMI_OWNER_SMALL,
                      "pool arena");
    POOL_CHECK(arena->untouched_index >= 1 && arena->untouched_index <= OMI_POOLS_PER_ARENA,
               "arena %p: untouched index %u", (void *)arena, arena->untouched_index);
    size_t free_listed = 0;
    for (omi_pool *pool = arena->free_pools; pool != NULL; pool = pool->next, free_listed++)
        POOL_CHECK(omi_arena_of_pool(pool) == arena &&
                   pool->class_index == OMI_POOL_UNASSIGNED && free_listed < OMI_POOLS_USABLE,
                   "arena %p: its free-pool list holds an assigned or foreign pool, or a cycle",
                   (void *)arena);
    POOL_CHECK(arena->nfree_pools == free_listed + OMI_POOLS_PER_ARENA - arena->untouched_index,
               "arena %p: %u free pools counted, %zu listed + %zu untouched", (void *)arena,
               arena->nfree_pools, free_listed,
               (size_t)(OMI_POOLS_PER_ARENA - arena->untouched_index));
    size_t on_class_lists = 0;
    for (uint32_t i = 1; i < OMI_POOLS_PER_ARENA; i++) {
        omi_pool *pool = &arena->pools[i];
        if (i >= arena->untouched_index)
            POOL_CHECK(pool->class_index == OMI_POOL_UNASSIGNED,
                       "arena %p: untouched pool %u has a class", (void *)arena, i);
        if (pool->class_index == OMI_POOL_UNASSIGNED)
            continue;
        pool_check_assigned(pool);
        on_class_lists += pool->list_state != OMI_POOL_UNLISTED;
    }
    return on_class_lists;
}

/* Every usable list: doubly linked, of its class and heap, list states
 * right. Returns the pools listed. */
static size_t pool_check_lists(const om_heap *h)
{
    size_t total = 0;
    for (size_t c = 0; c < OMI_CLASS_COUNT; c++) {
        omi_pool *prev = NULL;
        size_t n = 0;
        for (omi_pool *p = h->usable[c]; p != &omi_pool_sentinel; prev = p, p = p->next) {
            POOL_CHECK(p != NULL && p->class_index == c && p->prev == prev &&
                       omi_arena_of_pool(p)->heap == h,
                       "the usable list of class %zu B is broken", omi_class_block_size(c));
            POOL_CHECK(p->list_state != OMI_POOL_UNLISTED, "a listed pool says it is not");
            POOL_CHECK(++n <= h->arenas_current * OMI_POOLS_USABLE,
                       "the usable list of class %zu B has a cycle", omi_class_block_size(c));
            if (p->next == NULL)
                break;
        }
        if (n == 1)
            POOL_CHECK(h->usable[c]->list_state == OMI_POOL_ALONE,
                       "the only pool of class %zu B is not marked alone", omi_class_block_size(c));
        if (n > 1)
            POOL_CHECK(h->usable[c]->list_state == OMI_POOL_LISTED,
                       "the first of %zu pools of class %zu B is marked alone", n,
                       omi_class_block_size(c));
        total += n;
    }
    return total;
}

/* The usable-arena list: doubly linked, sorted fullest first, the
 * last-with-n-free table and its mask pointing at the last arena of each
 * count. Returns the arenas on it. */
static size_t pool_check_usable_arenas(const om_heap *h, size_t arenas)
{
    size_t usable = 0;
    omi_arena *prev = NULL;
    for (omi_arena *arena = h->usable_arenas; arena != NULL; prev = arena, arena = arena->next) {
        POOL_CHECK(++usable <= arenas, "the usable-arena list has a cycle");
        POOL_CHECK(arena->prev == prev && arena->heap == h,
                   "the usable-arena list is broken at %p", (void *)arena);
        POOL_CHECK(arena->in_usable_list && arena->nfree_pools > 0 &&
                   arena->nfree_pools <= OMI_POOLS_USABLE,
                   "arena %p on the usable list has no free pool", (void *)arena);
        POOL_CHECK(arena->next == NULL || arena->next->nfree_pools >= arena->nfree_pools,
                   "the usable arenas are not sorted fullest first");
        bool last_of_count = arena->next == NULL || arena->next->nfree_pools != arena->nfree_pools;
        POOL_CHECK((h->last_with_nfree[arena->nfree_pools] == arena) == last_of_count,
                   "the last usable arena with %u free pools is not %p", arena->nfree_pools,
                   (void *)h->last_with_nfree[arena->nfree_pools]);
    }
    for (size_t n = 0; n <= OMI_POOLS_USABLE; n++) {
        omi_arena *last = h->last_with_nfree[n];
        POOL_CHECK(((h->nfree_present >> n) & 1) == (last != NULL),
                   "the mask of free-pool counts disagrees at %zu", n);
        POOL_CHECK(last == NULL || (last->in_usable_list && last->nfree_pools == n),
                   "the last usable arena with %zu free pools has %u", n,
                   last != NULL ? last->nfree_pools : 0);
    }
    return usable;
}

/* The spare stack: wholly free arenas, off the usable list, counted. */
static void pool_check_spares(const om_heap *h, size_t arenas)
{
    size_t spares = 0;
    for (omi_arena *arena = h->spare; arena != NULL; arena = arena->next) {
        POOL_CHECK(++spares <= arenas, "the spare-arena stack has a cycle");
        POOL_CHECK(arena->heap == h && !arena->in_usable_list &&
                   arena->nfree_pools == OMI_POOLS_USABLE,
                   "spare arena %p is in use or on the usable list", (void *)arena);
    }
    POOL_CHECK(spares == h->spare_count && spares <= OMI_SPARE_ARENAS_MAX,
               "%zu spare arenas stacked, %zu counted", spares, h->spare_count);
}

void omi_pool_check(const om_heap *h)
{
    size_t arenas = 0, listed_pools = 0, flagged_usable = 0;
    bool warm_found = h->warm_arena == NULL;
    omi_arena *prev = NULL;
    for (omi_arena *arena = h->all_arenas; arena != NULL; prev = arena, arena = arena->all_next) {
        POOL_CHECK(++arenas <= h->arenas_current, "%zu or more arenas listed, %zu counted",
                   arenas, h->arenas_current);
        POOL_CHECK(arena->all_prev == prev, "the all-arenas list is broken at %p",
                   (void *)arena);
        listed_pools += pool_check_arena(h, arena);
        flagged_usable += arena->in_usable_list;
        warm_found = warm_found || arena == h->warm_arena;
    }
    POOL_CHECK(arenas == h->arenas_current, "%zu arenas listed, %zu counted", arenas,
               h->arenas_current);
    POOL_CHECK(warm_found, "the warm arena %p is not an arena of the heap",
               (void *)h->warm_arena);
    size_t on_lists = pool_check_lists(h);
    POOL_CHECK(on_lists == listed_pools, "%zu pools on the class lists, %zu say they are",
               on_lists, listed_pools);
    size_t usable = pool_check_usable_arenas(h, arenas);
    POOL_CHECK(usable == flagged_usable, "%zu arenas on the usable list, %zu say they are",
               usable, flagged_usable);
    pool_check_spares(h, arenas);
}
