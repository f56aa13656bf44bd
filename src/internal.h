/*
 * internal.h — prototypes shared between objmem's source files, one heading
 * per file, and the inline fast paths that more than one file calls.
 * Everything here is hidden from the shared library's exports.
 */
#ifndef OM_INTERNAL_H
#define OM_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "objmem.h"
#include "track.h"
#include "types.h"

#define OMI_HIDDEN __attribute__((visibility("hidden")))
#define omi_likely(x) __builtin_expect(!!(x), 1)
#define omi_unlikely(x) __builtin_expect(!!(x), 0)
#define OMI_NOINLINE __attribute__((noinline))
#define OMI_COLD __attribute__((cold))
#define OMI_PRINTF(f, a) __attribute__((format(printf, f, a)))

#if OM_DEBUG > 0
#define om_assert(expr) \
    ((expr) ? (void)0 : omi_fatal("assertion failed: %s (%s:%d)", #expr, __FILE__, __LINE__))
#else
#define om_assert(expr) ((void)0)
#endif

/* ---- error.c ------------------------------------------------------------- */

/* Records code and message as the calling thread's last error. */
OMI_HIDDEN void omi_set_error(om_error code, const char *fmt, ...) OMI_PRINTF(2, 3) OMI_COLD;
/* Prints one "objmem: fatal error: …" report to stderr and aborts. */
OMI_HIDDEN _Noreturn void omi_fatal(const char *fmt, ...) OMI_PRINTF(1, 2) OMI_COLD;
/* Fatal misuse: `function` got pointer p that is not the start of a live
 * block; `finding` says what the address map knows of p. One report, abort. */
OMI_HIDDEN _Noreturn void omi_invalid_pointer(const char *function, const void *p,
                                               const char *finding) OMI_COLD;
/* Sets OM_ENOMEM and errno = ENOMEM for a request of `size` bytes; NULL. */
OMI_HIDDEN void *omi_out_of_memory(size_t size) OMI_COLD;
/* Sets OM_ENOMEM and errno = ENOMEM for a count * size that overflows; NULL. */
OMI_HIDDEN void *omi_calloc_overflow(size_t count, size_t size) OMI_COLD;

/* count * size, or false when it overflows or exceeds PTRDIFF_MAX. */
static inline bool omi_mul_size(size_t count, size_t size, size_t *total)
{
    return !__builtin_mul_overflow(count, size, total) && *total <= PTRDIFF_MAX;
}

/* ---- options.c ----------------------------------------------------------- */

extern OMI_HIDDEN long omi_option_values[OM_OPTION_COUNT];

/* ---- os.c ---------------------------------------------------------------- */

/* Anonymous read-write pages, or NULL. size is a multiple of the page size. */
OMI_HIDDEN void *omi_os_map(size_t size);
OMI_HIDDEN void omi_os_unmap(void *addr, size_t size);
/* One arena from the current arena allocator, aligned to OMI_ARENA_SIZE
 * and registered in the address map as (its address | kind); *made_by
 * receives that allocator, to give the arena back to. NULL with OM_ENOMEM
 * when the allocator fails, returns misaligned memory, or the map cannot
 * grow. */
OMI_HIDDEN void *omi_os_arena_alloc(uintptr_t kind, om_arena_allocator *made_by);
/* Unregisters an arena and gives it back to the allocator that made it
 * (pass a copy: the arena's own descriptor goes with it). */
OMI_HIDDEN void omi_os_arena_free(void *arena, om_arena_allocator made_by);
/* size bytes at an address a with (a + offset) % alignment == 0 (alignment
 * a power of two >= the page size, offset a multiple of it); NULL on failure
 * or overflow. The reserve variant maps PROT_NONE, MAP_NORESERVE: address
 * space only, a target for omi_os_remap. */
OMI_HIDDEN void *omi_os_map_aligned(size_t size, size_t alignment, size_t offset);
OMI_HIDDEN void *omi_os_reserve_aligned(size_t size, size_t alignment, size_t offset);
/* target NULL: resizes the mapping at addr in place; else moves its pages
 * onto the reservation at target, without copying. 0, or -1 with the
 * mapping at addr untouched. */
OMI_HIDDEN int omi_os_remap(void *addr, size_t old_size, size_t new_size, void *target);
/* Gives the pages of [addr, addr + size) back to the OS; they read as zero
 * afterwards. addr and size are page-aligned. */
OMI_HIDDEN void omi_os_purge(void *addr, size_t size);
/* size random bytes from the kernel (a clock-based fallback without it). */
OMI_HIDDEN void omi_os_random(void *out, size_t size);

/* ---- addrmap.c ----------------------------------------------------------- */

/*
 * The address map: a two-level radix tree over the low 48 bits of the
 * address space, one entry per OMI_ARENA_SIZE slot. An entry is 0 for memory
 * objmem does not own, else a tagged value: the owner's descriptor with the
 * kind in its low bits.
 */
#define OMI_ADDR_BITS 48
#define OMI_MAP_LEAF_BITS 14
#define OMI_MAP_ROOT_BITS (OMI_ADDR_BITS - OM_ARENA_SHIFT - OMI_MAP_LEAF_BITS)
#define OMI_MAP_ROOT_COUNT ((size_t)1 << OMI_MAP_ROOT_BITS)
#define OMI_MAP_LEAF_COUNT ((size_t)1 << OMI_MAP_LEAF_BITS)
_Static_assert(OMI_MAP_ROOT_BITS > 0, "arenas too large for the map");

enum omi_owner_kind {
    OMI_OWNER_NONE = 0,
    OMI_OWNER_SMALL = 1,             /* a pool arena: descriptor is omi_arena */
    OMI_OWNER_MEDIUM = 2,            /* a page-run arena: descriptor is omi_medium_arena */
    OMI_OWNER_LARGE = 3,             /* a large mapping: descriptor is omi_large */
};
#define OMI_OWNER_KIND_MASK ((uintptr_t)0xF)

typedef _Atomic(uintptr_t) omi_map_entry;
extern OMI_HIDDEN _Atomic(omi_map_entry *) omi_addrmap_root[OMI_MAP_ROOT_COUNT];

/* Marks [base, base + size) (slot-aligned) as owned with `entry`. -1 with
 * OM_ENOMEM when a map node cannot be allocated. Thread-safe. */
OMI_HIDDEN int omi_addrmap_set(uintptr_t base, size_t size, uintptr_t entry);
OMI_HIDDEN void omi_addrmap_clear(uintptr_t base, size_t size);
/* om_heap_check: every slot of [base, base + size) holds `entry`; fatal
 * ("om_heap_check: address map …", naming `what`) when one does not. */
OMI_HIDDEN void omi_addrmap_check(uintptr_t base, size_t size, uintptr_t entry,
                                  const char *what);

/* The entry for the slot holding p (0 if objmem does not own it). O(1): two
 * dependent loads. */
static inline uintptr_t omi_addrmap_lookup(const void *p)
{
    uintptr_t addr = (uintptr_t)p;
    uintptr_t root_index = addr >> (OM_ARENA_SHIFT + OMI_MAP_LEAF_BITS);
    if (omi_unlikely(root_index >= OMI_MAP_ROOT_COUNT))
        return 0;
    omi_map_entry *leaf = atomic_load_explicit(&omi_addrmap_root[root_index],
                                               memory_order_acquire);
    if (omi_unlikely(leaf == NULL))
        return 0;
    size_t leaf_index = (addr >> OM_ARENA_SHIFT) & (OMI_MAP_LEAF_COUNT - 1);
    return atomic_load_explicit(&leaf[leaf_index], memory_order_relaxed);
}

/* ---- pool.c -------------------------------------------------------------- */

extern OMI_HIDDEN omi_pool omi_pool_sentinel;
extern OMI_HIDDEN const uint32_t omi_pool_block_magic[OMI_CLASS_COUNT];

OMI_HIDDEN void *omi_pool_malloc_slow(om_heap *h, size_t class_index);
OMI_HIDDEN void omi_pool_refill(om_heap *h, omi_pool *pool);
/* `function` names the public call in a hardened heap's double-free report. */
OMI_HIDDEN void omi_pool_free_slow(omi_pool *pool, bool was_exhausted, const char *function);
/* pool's free list, for walkers (heap checks): its first block (NULL if
 * none), and the block after `block`. A hardened heap's encoded links are
 * decoded here; the results are not validated (check that one is a carved
 * block of the pool before following it). */
OMI_HIDDEN omi_block *omi_pool_free_first(const omi_pool *pool);
OMI_HIDDEN omi_block *omi_pool_free_next(const omi_pool *pool, const omi_block *block);
/* omi_pool_free_known's report: p is not a block of class class_index. */
OMI_HIDDEN _Noreturn void omi_pool_free_known_invalid(const void *p, size_t class_index) OMI_COLD;
OMI_HIDDEN void omi_pool_heap_init(om_heap *h);
/* Unmaps every arena of h, in use or not. */
OMI_HIDDEN void omi_pool_heap_release_all(om_heap *h);
/* Returns warm empty pools and the spare arena; bytes unmapped. */
OMI_HIDDEN size_t omi_pool_heap_trim(om_heap *h);
/* Structural checks for om_heap_check, one per tier: a violation is fatal. */
OMI_HIDDEN void omi_pool_check(const om_heap *h);
OMI_HIDDEN void omi_medium_check(const om_heap *h);
OMI_HIDDEN void omi_large_check(const om_heap *h);
/* Purges the free pools that have been dirty since before `deadline_ms`
 * and unmaps a spare that has been spare since before it. */
OMI_HIDDEN void omi_pool_purge(om_heap *h, uint64_t deadline_ms);

/* One pool arena as the HTML report (report.c) draws it. */
typedef struct omi_arena_view {
    uintptr_t base;                          /* the arena's address */
    size_t free_pools;                       /* pools not assigned to a class */
    size_t untouched_index;                  /* pools from here on were never used */
    uint8_t class_index[OMI_POOLS_USABLE];   /* pool i + 1's class, or OMI_POOL_UNASSIGNED */
    uint16_t used[OMI_POOLS_USABLE];         /* pool i + 1's blocks in use */
} omi_arena_view;
typedef int (*omi_arena_visit_fn)(const omi_arena_view *arena, void *arg);
/* Calls fn(view, arg) for every pool arena of h (spares included), and
 * stops at the first call that returns non-zero, returning that; else 0. */
OMI_HIDDEN int omi_pool_for_each_arena(const om_heap *h, omi_arena_visit_fn fn, void *arg);

static inline size_t omi_class_block_size(size_t class_index)
{
    return (class_index + 1) << OMI_ALIGN_SHIFT;
}

static inline size_t omi_pool_capacity(size_t class_index)
{
    return OMI_POOL_SIZE / omi_class_block_size(class_index);
}

static inline omi_arena *omi_arena_of_pool(const omi_pool *pool)
{
    return (omi_arena *)((uintptr_t)pool & ~(uintptr_t)(OMI_ARENA_SIZE - 1));
}

/* The pool state of block p, in a pool arena: computed from p alone, in
 * integer arithmetic (the result is only used once p is known to be a pool
 * block, but the address is formed before that, even for NULL). */
static inline omi_pool *omi_pool_of(const void *p)
{
    uintptr_t arena = (uintptr_t)p & ~(uintptr_t)(OMI_ARENA_SIZE - 1);
    uintptr_t index = ((uintptr_t)p >> OM_POOL_SHIFT) & (OMI_POOLS_PER_ARENA - 1);
    return (omi_pool *)(arena + offsetof(omi_arena, pools) + index * sizeof(omi_pool));
}

/* The link of free block `block` of `pool` in the default mode (the fast
 * path; om_heap_check reads through omi_pool_free_next, which comes here
 * for default heaps and decodes a hardened heap's links in pool.c). */
static inline omi_block *omi_pool_block_next(const omi_pool *pool, const omi_block *block)
{
    (void)pool;
    return block->next;
}

/* A block of at most OM_SMALL_SIZE_MAX bytes from h, or NULL (OM_ENOMEM).
 * Fast path: one load of the class's pool and a pop from its free list.
 * Every listed pool has a free block, so the pop fails only when the class
 * has no pool; when it empties the list, the pool carves more blocks or
 * leaves the list at once, while its state is still in cache. */
static inline void *omi_pool_malloc(om_heap *h, size_t size)
{
    size_t class_index = (size - (size != 0)) >> OMI_ALIGN_SHIFT;
    omi_pool *pool = h->usable[class_index];
    omi_block *block = pool->freeblock;
    if (omi_likely(block != NULL)) {
        omi_track_internal_open(block, sizeof(omi_block));
        omi_block *next = omi_pool_block_next(pool, block);
        pool->freeblock = next;
        pool->used++;
        if (omi_unlikely(next == NULL))
            omi_pool_refill(h, pool);
        omi_track_malloc(block, omi_class_block_size(class_index));
        return block;
    }
    return omi_pool_malloc_slow(h, class_index);
}

/* After a free into pool, which now has `pool->used` blocks out: true when
 * the slow path has work, i.e. the pool was exhausted, or is empty while
 * other pools of its class can serve (the last one stays warm), or is
 * empty alone in its arena. */
static inline bool omi_pool_free_needs_slow(const omi_pool *pool, bool was_exhausted)
{
    if (omi_likely(!was_exhausted)) {
        if (omi_likely(pool->used != 0))
            return false;
        if (pool->list_state == OMI_POOL_ALONE &&
            omi_arena_of_pool(pool)->nfree_pools != OMI_POOLS_USABLE - 1)
            return false;
    }
    return true;
}

/* Gives back block p of `pool`; `function` names the public call. A
 * hardened heap's pools have no inline free list, so their frees always
 * take the slow path. */
static inline void omi_pool_free(omi_pool *pool, void *p, const char *function)
{
    omi_block *block = (omi_block *)p;
    omi_block *old_head = pool->freeblock;
    omi_track_free(block, omi_class_block_size(pool->class_index));
    omi_track_internal_open(block, sizeof(omi_block));
    block->next = old_head;
    omi_track_internal_close(block, sizeof(omi_block));
    pool->freeblock = block;
    --pool->used;
    if (omi_pool_free_needs_slow(pool, old_head == NULL))
        omi_pool_free_slow(pool, old_head == NULL, function);
}

/* true if p is the start of a block that pool has handed out at some time:
 * 16-byte aligned, below the carved end, at a multiple of the block size.
 * (A block freed twice passes; the debug hooks and hardened mode catch
 * that.) */
static inline bool omi_pool_block_is_valid(const omi_pool *pool, const void *p)
{
    uint32_t offset = (uint32_t)((uintptr_t)p & OMI_POOL_MASK);
    size_t class_index = pool->class_index;
    if (omi_unlikely((offset & (OM_ALIGNMENT - 1)) != 0 || offset >= pool->next_offset ||
                     class_index >= OMI_CLASS_COUNT))
        return false;
    uint32_t magic = omi_pool_block_magic[class_index];
    return (uint32_t)((offset >> OMI_ALIGN_SHIFT) * magic) <= magic - 1;
}

/* Frees block p that the caller knows omi_pool_malloc handed out for a
 * request of class class_index (object.c: an object block while the OBJ
 * domain has had only its default allocator). The pool is found by masking
 * p, without the address-map lookup omi_free makes; the check that remains
 * is the cheap part of omi_pool_block_is_valid: p's pool serves that class
 * and p lies below its carved end (a corrupted object or type fails it:
 * fatal, omi_pool_free_known_invalid). The push is omi_pool_free's. */
static inline void omi_pool_free_known(void *p, size_t class_index)
{
    omi_pool *pool = omi_pool_of(p);
    uint32_t offset = (uint32_t)((uintptr_t)p & OMI_POOL_MASK);
    if (omi_unlikely(pool->class_index != class_index || offset >= pool->next_offset))
        omi_pool_free_known_invalid(p, class_index);
    omi_pool_free(pool, p, "om_decref");
}

/* ---- large.c ------------------------------------------------------------- */

/* Blocks above OMI_MEDIUM_SIZE_MAX, each in a mapping of its own, aligned to
 * OMI_ARENA_SIZE and a whole number of arena slots long so that no other
 * owner shares an address-map slot with it; registered as OMI_OWNER_LARGE
 * with the block's descriptor as the entry. */
#define OMI_MEDIUM_SIZE_MAX OM_MEDIUM_SIZE_MAX

/* A block of `size` bytes aligned to `alignment` (a power of two >= 16),
 * owned by h; NULL with OM_ENOMEM. */
OMI_HIDDEN void *omi_large_malloc(om_heap *h, size_t size, size_t alignment);
/* A zeroed large block: only a mapping reused from the cache is cleared. */
OMI_HIDDEN void *omi_large_calloc(om_heap *h, size_t size);
/* Frees p, whose address-map entry is `entry`; a p that is not the block's
 * start is fatal (omi_invalid_pointer with `function`). */
OMI_HIDDEN void omi_large_free(const char *function, uintptr_t entry, void *p);
/* Resizes in place or moves the mapping with mremap (never copies); size
 * stays above OMI_MEDIUM_SIZE_MAX. NULL with OM_ENOMEM, p intact. */
OMI_HIDDEN void *omi_large_realloc(const char *function, uintptr_t entry, void *p, size_t size);
OMI_HIDDEN size_t omi_large_usable_size(const char *function, uintptr_t entry, const void *p);
OMI_HIDDEN bool omi_large_is_block_start(uintptr_t entry, const void *p);
/* Unmaps every large block of h, cached ones included. */
OMI_HIDDEN void omi_large_heap_release_all(om_heap *h);
/* Unmaps the cached (freed) mappings freed before `deadline_ms`. */
OMI_HIDDEN void omi_large_purge(om_heap *h, uint64_t deadline_ms);
/* One large block as the HTML report draws it. */
typedef struct omi_large_view {
    uintptr_t block;                 /* the block's address */
    size_t size;                     /* bytes asked for */
    size_t usable;                   /* usable bytes (to the end of the mapping) */
    size_t map_size;                 /* the mapping's length */
    bool cached;                     /* freed, kept for reuse */
} omi_large_view;
typedef int (*omi_large_visit_fn)(const omi_large_view *block, void *arg);
/* Calls fn for every large block of h, those in use first, then the cached
 * ones; stops at the first non-zero return and returns it; else 0. */
OMI_HIDDEN int omi_large_for_each(const om_heap *h, omi_large_visit_fn fn, void *arg);

/* ---- medium.c ------------------------------------------------------------ */

/* The medium class of a request of 513 … OMI_MEDIUM_SIZE_MAX bytes. */
OMI_HIDDEN size_t omi_medium_class_of(size_t size);
/* A block of 513 … OMI_MEDIUM_SIZE_MAX bytes from h; NULL with OM_ENOMEM. */
OMI_HIDDEN void *omi_medium_malloc(om_heap *h, size_t size);
/* A run of at least `size` bytes whose start is aligned to `alignment` (a
 * power of two, at most OMI_MEDIUM_ALIGN_MAX); NULL with OM_ENOMEM. */
OMI_HIDDEN void *omi_medium_aligned_malloc(om_heap *h, size_t size, size_t alignment);
/* Free, resize, measure block p of a medium arena; a p that is not the start
 * of a live block is fatal (omi_invalid_pointer with `function`). */
OMI_HIDDEN void omi_medium_free(const char *function, void *p);
OMI_HIDDEN void *omi_medium_realloc(const char *function, om_heap *h, void *p, size_t size);
OMI_HIDDEN size_t omi_medium_usable_size(const char *function, const void *p);
OMI_HIDDEN bool omi_medium_is_block_start(const void *p);
OMI_HIDDEN void omi_medium_heap_release_all(om_heap *h);
/* Flushes the class caches and unmaps the spare medium arena; bytes unmapped. */
OMI_HIDDEN size_t omi_medium_heap_trim(om_heap *h);
/* Purges free runs of arenas dirty since before `deadline_ms`, and unmaps a
 * spare (with nothing cached) that has been spare since before it. */
OMI_HIDDEN void omi_medium_purge(om_heap *h, uint64_t deadline_ms);
OMI_HIDDEN void omi_medium_stats(const om_heap *h, size_t *used_bytes, size_t *free_bytes,
                                 size_t *cached_bytes);
/* One medium arena as the HTML report draws it. */
typedef struct omi_medium_arena_view {
    uintptr_t base;                  /* the arena's address */
    bool spare;                      /* the heap's spare (no block in use) */
    size_t used_blocks;              /* blocks in use */
    size_t used_bytes;               /* bytes in their runs */
    size_t cached_bytes;             /* bytes in freed blocks held by the class caches */
    size_t free_bytes;               /* bytes in free runs */
} omi_medium_arena_view;
typedef int (*omi_medium_visit_fn)(const omi_medium_arena_view *arena, void *arg);
/* Calls fn for every medium arena of h; stops at the first non-zero
 * return and returns it; else 0. */
OMI_HIDDEN int omi_medium_for_each_arena(const om_heap *h, omi_medium_visit_fn fn, void *arg);

#define OMI_MEDIUM_ALIGN_MAX ((size_t)64 << 10)

/* ---- runtime.c, gil.c ---------------------------------------------------- */

/* The GIL of one runtime (gil.c's design comment): a flag under a mutex,
 * waiters served in ticket order, a drop request the holder polls.
 *   locked ⇔ some thread holds it; serving ≤ next_ticket;
 *   next_ticket − serving = threads queued for it now. */
typedef struct omi_gil {
    pthread_mutex_t mutex;           /* guards every field but the atomics */
    pthread_cond_t cond;             /* the GIL was dropped or the queue moved */
    bool locked;                     /* a thread holds it */
    struct om_thread *last_holder;   /* the holder, or the last one */
    uint64_t next_ticket;            /* the ticket the next waiter draws */
    uint64_t serving;                /* the ticket allowed to take it next */
    uint64_t acquisitions;           /* statistics (om_gil_stats) */
    uint64_t switches;
    uint64_t drop_requests;
    uint64_t held_ns;
    _Atomic bool drop_request;       /* a waiter asks the holder to drop it */
    _Atomic uint64_t interval_ns;    /* the switch interval */
} omi_gil;

/* One thread's attachment to a runtime (om_thread of the public API),
 * RAW memory, freed by om_detach. */
struct om_thread {
    struct om_runtime *runtime;      /* the runtime it is attached to */
    bool holds_gil;                  /* between take and drop */
    uint64_t taken_at_ns;            /* when it last took the GIL */
    uint64_t acquisitions;           /* statistics (om_thread_stats), its own */
    uint64_t requested_drops;
    uint64_t held_ns;
    uint64_t waited_ns;
};

/* A runtime's weak-reference side table (weakref.c). */
typedef struct omi_weakref_table {
    struct weakref_slot *slots;      /* RAW array of capacity slots */
    size_t capacity;                 /* power of two, or 0 */
    size_t referents;                /* objects with weak references: the slots in use */
} omi_weakref_table;

/* A runtime's str intern table (types/str.c): open addressing, linear
 * probing, at most 2/3 full; the strs live in the runtime's heap.
 *   capacity is 0 or a power of two; count * 3 ≤ capacity * 2. */
typedef struct omi_intern_table {
    om_object **slots;               /* capacity entries, NULL = empty; RAW domain */
    size_t capacity;
    size_t count;                    /* interned strs */
} omi_intern_table;

/* A runtime's dead-object quarantine (object.c), used while the debug
 * hooks are on: the last OMI_DEAD_QUARANTINE objects released, kept dead
 * so that a late use names their type. Per runtime: they lie in its heap. */
#define OMI_DEAD_QUARANTINE 1024
typedef struct omi_dead_objects {
    om_object *objects[OMI_DEAD_QUARANTINE];  /* oldest at next_slot; NULL = empty */
    size_t next_slot;                         /* where the next one goes */
} omi_dead_objects;

struct omi_gc_state;

/* The calling thread's binding: copies of its runtime's members, so that a
 * hot path reaches its heap with one thread-local load. While the thread is
 * not attached, heap, gil, runtime and thread are NULL (the first
 * allocation or public call then attaches it to the default runtime) and
 * gc and weakrefs are the default runtime's (runtime.c). */
typedef struct omi_binding {
    om_heap *heap;                   /* the runtime's heap (MEM, OBJ, objects) */
    struct omi_gc_state *gc;         /* its collector */
    omi_weakref_table *weakrefs;     /* its weak references */
    omi_gil *gil;                    /* its GIL */
    struct om_runtime *runtime;      /* the runtime itself */
    struct om_thread *thread;        /* this thread's attachment */
} omi_binding;

extern OMI_HIDDEN _Thread_local omi_binding omi_thread
    __attribute__((tls_model("initial-exec")));

/* Attaches the calling thread to the default runtime (first call of a
 * thread that is not attached; takes the GIL); returns its heap. */
OMI_HIDDEN om_heap *omi_runtime_attach_default(void) OMI_COLD;

/* The calling thread's binding, attaching it to the default runtime first
 * if it is not attached. */
static inline omi_binding *omi_bound(void)
{
    if (omi_unlikely(omi_thread.runtime == NULL))
        omi_runtime_attach_default();
    return &omi_thread;
}

/* The current runtime's collector and weak-reference table, for the hot
 * paths of every GC object's birth and death: one thread-local load, no
 * test. A thread that is not attached sees the default runtime's (the
 * detached binding, runtime.c), so these never attach: allocation and the
 * public calls do (omi_current_heap, omi_bound). */
static inline struct omi_gc_state *omi_current_gc(void)
{
    return omi_thread.gc;
}

static inline omi_weakref_table *omi_current_weakrefs(void)
{
    return omi_thread.weakrefs;
}

/* The heap MEM and OBJ allocate from: one thread-local load. */
static inline om_heap *omi_current_heap(void)
{
    om_heap *h = omi_thread.heap;
    if (omi_unlikely(h == NULL))
        h = omi_runtime_attach_default();
    return h;
}

/* rt's str intern table (rt not NULL). */
OMI_HIDDEN omi_intern_table *omi_runtime_intern_table(struct om_runtime *rt);
/* rt's debug-hook lists: NULL until debug.c makes them (rt not NULL). */
OMI_HIDDEN struct omi_debug_lists **omi_runtime_debug_lists(struct om_runtime *rt);
/* rt's dead-object quarantine (object.c; rt not NULL). */
OMI_HIDDEN struct omi_dead_objects *omi_runtime_dead_objects(struct om_runtime *rt);
/* types/str.c: frees a table's RAW memory (its strs die with the heap). */
OMI_HIDDEN void omi_intern_table_release(omi_intern_table *t);

/* gil.c. Every function but the statistics runs on the thread `ts`;
 * omi_gil_init fails only when pthreads do (then nothing to destroy). */
OMI_HIDDEN int omi_gil_init(omi_gil *gil, double interval_seconds);
OMI_HIDDEN void omi_gil_destroy(omi_gil *gil);
OMI_HIDDEN void omi_gil_take(omi_gil *gil, struct om_thread *ts);
OMI_HIDDEN void omi_gil_drop(omi_gil *gil, struct om_thread *ts);
/* Drops and takes again, behind the threads already waiting. */
OMI_HIDDEN void omi_gil_yield(omi_gil *gil, struct om_thread *ts) OMI_COLD;
OMI_HIDDEN uint64_t omi_gil_now_ns(void);
OMI_HIDDEN void omi_gil_set_interval(omi_gil *gil, double seconds);
OMI_HIDDEN double omi_gil_interval(omi_gil *gil);
OMI_HIDDEN void omi_gil_get_stats(omi_gil *gil, om_gil_stats *out);

/* A check point in objmem's own slow paths (where arbitrary code may run
 * anyway, e.g. an automatic collection): one load of an atomic flag. */
static inline void omi_gil_check(void)
{
    omi_gil *gil = omi_thread.gil;
    if (gil != NULL && omi_unlikely(atomic_load_explicit(&gil->drop_request,
                                                         memory_order_relaxed)))
        omi_gil_yield(gil, omi_thread.thread);
}

/* ---- heap.c -------------------------------------------------------------- */

extern OMI_HIDDEN om_heap omi_default_heap;

/* Requests above OM_SMALL_SIZE_MAX: medium or large. NULL with OM_ENOMEM. */
OMI_HIDDEN void *omi_heap_malloc_big(om_heap *h, size_t size);
OMI_HIDDEN void *omi_heap_calloc(om_heap *h, size_t count, size_t size);
OMI_HIDDEN void *omi_heap_aligned_malloc(om_heap *h, size_t alignment, size_t size);
/* `function` names the public call in fatal reports about p. */
OMI_HIDDEN void *omi_heap_realloc(const char *function, om_heap *h, void *p, size_t size);
OMI_HIDDEN size_t omi_usable_size(const char *function, const void *p);
/* Purging (heap.c): memory that went free is given back once it has stayed
 * free for OM_OPTION_PURGE_DELAY_MS. The tiers call omi_purge_tick on their
 * slow paths when they free memory; it reads the clock and, at most every
 * quarter delay, asks each tier to purge what is old enough. */
OMI_HIDDEN void omi_purge_tick(om_heap *h);
/* Records p .. p + size as purged (statistics) and gives its pages back. */
OMI_HIDDEN void omi_purge_range(om_heap *h, void *p, size_t size);
/* The clock (ms), read now; stamps memory as it goes free (a rare,
 * per-arena transition), so nothing is purged before the delay. */
OMI_HIDDEN uint64_t omi_purge_now(om_heap *h);
/* Fixes h's mode for life: hardened (with fresh secrets) if
 * OM_OPTION_SECURE is on now, else the default. Called by om_heap_new, and
 * for the static default heap before it takes its first pool. */
OMI_HIDDEN void omi_heap_choose_mode(om_heap *h);
/* om_heap_trim passes UINT64_MAX: everything is due. */
static inline bool omi_purge_is_due(uint64_t since_ms, uint64_t deadline_ms)
{
    return deadline_ms == UINT64_MAX || since_ms <= deadline_ms;
}

static inline bool omi_purge_at_once(void)
{
    return omi_option_values[OM_OPTION_PURGE_DELAY_MS] == 0;
}

/* The heap that owns the memory at p (any address inside a block), or
 * NULL when objmem does not own it: every owner descriptor (omi_arena,
 * the medium arena's, omi_large) starts with its heap. One map lookup. */
OMI_HIDDEN om_heap *omi_heap_of(const void *p);

/* true if p is the start of a block objmem handed out and has not freed
 * (as far as the tier can tell: a small block freed twice still passes). */
OMI_HIDDEN bool omi_is_block_start(const void *p);

/* ---- domain.c ------------------------------------------------------------ */

/* omi_domain_is_default[d]: domain d still has its default allocator (no
 * wrapper to honour), so the heap's inline paths may serve it directly. */
extern OMI_HIDDEN bool omi_domain_is_default[OM_DOMAIN_COUNT];

/* ---- debug.c ------------------------------------------------------------- */

extern OMI_HIDDEN bool omi_debug_active;
/* om_usable_size and om_heap_check for blocks of the debug hooks. */
OMI_HIDDEN size_t omi_debug_usable_size(const void *p);
/* om_heap_check_heap(h)'s part: for the default heap, the RAW blocks;
 * for the heap of the calling thread's runtime (the default runtime's if
 * the thread is not attached), that runtime's MEM and OBJ blocks. */
OMI_HIDDEN void omi_debug_check(const om_heap *h);
/* A runtime's MEM and OBJ lists of the hooks (debug.c), and their release
 * (RAW memory; the blocks die with the heap). */
struct omi_debug_lists;
OMI_HIDDEN void omi_debug_lists_release(struct omi_debug_lists *lists);

/* The environment's settings, read once at load time by heap.c's
 * constructor, in this order (tracing wraps the debug hooks): OBJMEM_MALLOC,
 * OBJMEM_TRACEMALLOC and OBJMEM_TRACE_OUTPUT, OBJMEM_FAIL. One caller that
 * every program links (heap.c) makes a static link pull each reader in: a
 * constructor in a module the program does not reference would be dropped. */
OMI_HIDDEN void omi_debug_apply_environment(void);
OMI_HIDDEN void omi_trace_read_environment(void);
OMI_HIDDEN void omi_fault_read_environment(void);

/* The thread rules, checked only while the debug hooks are on (debug.c's
 * "Thread rules"); each violation is one fatal report naming `function`.
 * omi_debug_check_gil: the calling thread holds its runtime's GIL, or is
 * not attached yet (for calls that attach it: allocations).
 * omi_debug_check_object: the thread is attached, holds the GIL, and o
 * (when objmem's memory holds it) is in the thread's runtime's heap.
 * omi_debug_check_store: that, for a container and a value stored in it. */
OMI_HIDDEN void omi_debug_check_gil_slow(const char *function) OMI_COLD;
OMI_HIDDEN void omi_debug_check_object_slow(const om_object *o, const char *function) OMI_COLD;
OMI_HIDDEN void omi_debug_check_store_slow(const om_object *container, const om_object *value,
                                           const char *function) OMI_COLD;

static inline void omi_debug_check_gil(const char *function)
{
    if (omi_unlikely(omi_debug_active))
        omi_debug_check_gil_slow(function);
}

static inline void omi_debug_check_object(const om_object *o, const char *function)
{
    if (omi_unlikely(omi_debug_active))
        omi_debug_check_object_slow(o, function);
}

static inline void omi_debug_check_store(const om_object *container, const om_object *value,
                                         const char *function)
{
    if (omi_unlikely(omi_debug_active))
        omi_debug_check_store_slow(container, value, function);
}

/* Frees a large block, or reports a foreign or interior pointer (omi_free
 * handles pool and medium blocks itself). */
OMI_HIDDEN void omi_free_slow(const char *function, uintptr_t entry, void *p);

static inline void *omi_heap_malloc(om_heap *h, size_t size)
{
    if (omi_likely(size <= OM_SMALL_SIZE_MAX))
        return omi_pool_malloc(h, size);
    return omi_heap_malloc_big(h, size);
}

/* Frees a block of any heap; `function` names the public call in reports.
 * Always inlined: left to itself, GCC calls it out of line from the
 * om_*_free wrappers (+4 instructions a pair). */
static inline __attribute__((always_inline)) void omi_free(const char *function, void *p)
{
    uintptr_t entry = omi_addrmap_lookup(p);
    omi_pool *pool = omi_pool_of(p);
    if (omi_likely((entry & OMI_OWNER_KIND_MASK) == OMI_OWNER_SMALL &&
                   omi_pool_block_is_valid(pool, p))) {
        omi_pool_free(pool, p, function);
        return;
    }
    if ((entry & OMI_OWNER_KIND_MASK) == OMI_OWNER_MEDIUM)
        omi_medium_free(function, p);
    else if (p != NULL)
        omi_free_slow(function, entry, p);
}

/* ---- object.c ------------------------------------------------------------ */

/* A dead object's count: negative, so that om_decref and omi_check_live
 * send it to a fatal report; kept while the debug hooks hold the object. */
#define OMI_REFCNT_DEAD (-((intptr_t)1 << 56))

/* An object of `type` with `count` items (0 for fixed-size types): count 1,
 * type set, ob_size set for variable-size types, the collector's
 * pre-header zeroed (untracked) but the body NOT zeroed. NULL with
 * OM_ENOMEM (also when the size overflows). Memory from the OBJ domain. */
OMI_HIDDEN om_object *omi_object_alloc(const om_type *type, size_t count);
/* Gives back the memory of an object whose destroy has run (no hooks). */
OMI_HIDDEN void omi_object_free_memory(om_object *o);
/* Reports a call on a freed object (count <= 0): fatal. */
OMI_HIDDEN _Noreturn void omi_object_dead(const om_object *o, const char *function) OMI_COLD;
/* Sets OM_ETYPE "function: expected a 'want', got 'o's type'"; returns false. */
OMI_HIDDEN bool omi_type_error(const om_object *o, const char *want, const char *function) OMI_COLD;

/* An iterator over one sequence: the sequence (NULL once exhausted, and
 * dropped then) and a position in it. list, tuple, str and bytes iterators
 * are these, so they share traverse and clear. */
typedef struct omi_seq_iterator {
    OM_OBJECT_HEAD;
    om_object *seq;                  /* the sequence, or NULL once exhausted */
    size_t index;                    /* position of the next item (its unit is the type's) */
} omi_seq_iterator;

OMI_HIDDEN int omi_seq_iterator_traverse(om_object *self, om_visit_fn visit, void *arg);
OMI_HIDDEN void omi_seq_iterator_clear(om_object *self);
/* The iter hook of every iterator: the iterator itself (a new reference). */
OMI_HIDDEN om_object *omi_iterator_self(om_object *self);
/* A new iterator of `type` (an omi_seq_iterator type) over seq at index 0,
 * or NULL with OM_ENOMEM. */
OMI_HIDDEN om_object *omi_seq_iterator_new(const om_type *type, om_object *seq);
/* The om_type of an omi_seq_iterator whose next hook is next_fn. */
#define OMI_SEQ_ITERATOR_TYPE(type_name, next_fn)                                  \
    {                                                                              \
        .name = (type_name), .size = sizeof(omi_seq_iterator), .flags = OM_TYPE_GC, \
        .traverse = omi_seq_iterator_traverse, .clear = omi_seq_iterator_clear,     \
        .destroy = omi_seq_iterator_clear, .iter = omi_iterator_self, .next = (next_fn), \
    }

/* Entry check of every typed API call: o is live (else fatal) and of type
 * t (else OM_ETYPE and false). NULL o gives OM_EINVAL and false. */
static inline bool omi_check_type(om_object *o, const om_type *t, const char *function)
{
    if (omi_unlikely(o == NULL)) {
        omi_set_error(OM_EINVAL, "%s: object is NULL", function);
        return false;
    }
    if (omi_unlikely(o->ob_refcnt <= 0))
        omi_object_dead(o, function);
    if (omi_unlikely(o->ob_type != t))
        return omi_type_error(o, t->name, function);
    return true;
}

/* ---- gc.c, weakref.c ----------------------------------------------------- */

/* A runtime's collector state: the default runtime's is static (gc.c);
 * another runtime's comes from omi_gc_state_new (RAW; NULL with OM_ENOMEM)
 * and goes with omi_gc_state_delete once its heap is about to go (it frees
 * only RAW memory: the objects die with the heap). */
extern OMI_HIDDEN struct omi_gc_state omi_gc_default;
OMI_HIDDEN struct omi_gc_state *omi_gc_state_new(void);
OMI_HIDDEN void omi_gc_state_delete(struct omi_gc_state *g);
/* om_heap_check: g's lists and counts (skipped while g collects); fatal
 * ("om_heap_check: collector: …") on a violation. The caller holds g's GIL. */
OMI_HIDDEN void omi_gc_check(const struct omi_gc_state *g);
OMI_HIDDEN void omi_gc_state_configure(struct omi_gc_state *g, const long threshold[3],
                                       bool enabled);
/* weakref.c: the default runtime's table, and the release of a table's
 * RAW memory (its weak references die with the heap). */
extern OMI_HIDDEN omi_weakref_table omi_weakref_default;
/* Objects with weak references in the current runtime now. */
#define omi_weakref_referents (omi_current_weakrefs()->referents)
OMI_HIDDEN void omi_weakref_table_release(omi_weakref_table *t);

/* The collector's pre-header, in front of every object of an OM_TYPE_GC
 * type, in the same block. Heads are 16-byte aligned, so the four low bits
 * of both words are free for flags:
 *   next: address of the next head in its list | OMI_GC_PENDING; 0 means
 *         "not tracked" (so the flag dies with the tracking);
 *   prev: address of the previous head, or during a collection the
 *         object's working count << OMI_GC_PREV_SHIFT, | OMI_GC_FINALIZED
 *         (kept for life) | the object's space << 1 (its generation, see
 *         gc.c).                                                           */
typedef struct omi_gc_head {
    _Alignas(16) uintptr_t next;     /* next in its list | flags, or 0 */
    uintptr_t prev;                  /* previous (or count) | flags */
} omi_gc_head;

#define OMI_GC_FINALIZED ((uintptr_t)1)   /* prev: finalize has run (PEP 442) */
#define OMI_GC_FLAG_MASK ((uintptr_t)15)  /* low bits of prev (and next) that are flags */
#define OMI_GC_PREV_SHIFT 4               /* the working count sits above them */
#define OMI_GC_PENDING ((uintptr_t)1)     /* next: came into generation 2 since
                                             its last examination (25 % rule) */

_Static_assert(sizeof(omi_gc_head) % OM_ALIGNMENT == 0, "objects stay 16-byte aligned");

static inline omi_gc_head *omi_gc_head_of(const om_object *o)
{
    return (omi_gc_head *)o - 1;
}

static inline bool omi_type_is_gc(const om_type *t)
{
    return (t->flags & OM_TYPE_GC) != 0;
}

static inline bool omi_gc_is_tracked(const om_object *o)
{
    return omi_type_is_gc(o->ob_type) && omi_gc_head_of(o)->next != 0;
}

/* Start / stop the collector watching a GC object: track once traverse is
 * safe to call on it; objects must be untracked before they are destroyed
 * (om_dealloc does that). Both are idempotent. Tracking counts as a
 * tracked allocation and may start an automatic collection (never inside
 * another collection or a release by refcount); untracking counts as a
 * deallocation. */
OMI_HIDDEN void omi_gc_track(om_object *o);
OMI_HIDDEN void omi_gc_untrack(om_object *o);
/* omi_gc_untrack for an object whose block is freed next: its head is
 * left stale instead of marked untracked (no one reads it again). */
OMI_HIDDEN void omi_gc_untrack_dying(om_object *o);

/* For omi_object_alloc after a failed allocation: one full collection
 * unless a collection or a release is running; the number of unreachable
 * objects it found (retry only when that is > 0). */
OMI_HIDDEN long omi_gc_collect_for_memory(void);

/* true while o is in the unreachable set of the running collection (for
 * the weak-reference rule: callbacks of garbage weak references never run). */
OMI_HIDDEN bool omi_gc_is_unreachable(const om_object *o);

/* Provided by object.c: true while this thread's om_dealloc loop runs (a
 * collection then waits: objects on the release stack have their count
 * word in use). */
OMI_HIDDEN bool omi_object_release_running(void);

/* weakref.c: o (of a WEAKREFABLE type) is dying: clear its weak references,
 * then run their callbacks. Called by release_one after finalize. */
OMI_HIDDEN void omi_weakref_object_dies(om_object *o);

/* weakref.c: for the collector: clear the weak references to unreachable
 * object o; those that are not unreachable themselves and have a callback
 * are increfed and pushed on *pending (linked through the weak reference,
 * no allocation). omi_weakref_run_pending calls and drops them. */
OMI_HIDDEN void omi_weakref_clear_for_collection(om_object *o, om_object **pending);
OMI_HIDDEN void omi_weakref_run_pending(om_object *pending);

static inline bool omi_weakref_may_have_refs(const om_object *o)
{
    return (o->ob_type->flags & OM_TYPE_WEAKREFABLE) != 0 && omi_weakref_referents != 0;
}

/* ---- types/int.c, types/str.c -------------------------------------------- */

/* The hash of int value v, shared by a float of the same value: v, or -2
 * for -1 (never -1). */
OMI_HIDDEN int64_t omi_int_hash_value(int64_t v);
/* A 64-bit hash of `size` bytes (never -1), shared by str and bytes. */
OMI_HIDDEN int64_t omi_hash_bytes(const void *data, size_t size);
/* The order of two byte strings (memcmp, then the shorter first): <0, 0, >0. */
OMI_HIDDEN int omi_compare_bytes(const void *a, size_t size_a, const void *b, size_t size_b);

/* ---- types/tuple.c: helpers the sequence types share -------------------- */

/* Item `index` of a sequence (borrowed), or NULL past its end. */
typedef om_object *(*omi_item_at_fn)(om_object *seq, size_t index);

/* A Python index (negative counts from the end) into a sequence of `size`
 * items: true with *out set, or false with OM_EINDEX naming `function`. */
OMI_HIDDEN bool omi_seq_index(ptrdiff_t index, size_t size, size_t *out, const char *function);
/* Item-wise om_equal / lexicographic om_compare of two sequences of one
 * type read through item_at (which sees changes a hook makes): as the
 * om_type hooks equal (1, 0, -1) and compare (0 with *result, or -1). */
OMI_HIDDEN int omi_seq_equal(om_object *a, om_object *b, omi_item_at_fn item_at);
/* The next hook's work for list and tuple iterators, reading items through
 * item_at (NULL past the end: the sequence is then let go). */
OMI_HIDDEN om_object *omi_seq_iterator_next(om_object *self, omi_item_at_fn item_at);
OMI_HIDDEN int omi_seq_compare(om_object *a, om_object *b, omi_item_at_fn item_at, int *result);

/* ---- trace.c ------------------------------------------------------------- */

/* The caller of a domain entry point: its return address and the caller's
 * frame pointer, stored by the entry point (only when the domain's
 * allocator is not the default) for the tracing wrapper to take. */
typedef struct omi_trace_site {
    uintptr_t return_address;        /* into the caller; 0 = none recorded */
    uintptr_t frame;                 /* the caller's frame pointer (may be junk) */
} omi_trace_site;
extern OMI_HIDDEN _Thread_local omi_trace_site omi_trace_caller
    __attribute__((tls_model("initial-exec")));
#define OMI_TRACE_CAPTURE()                                                        \
    (omi_trace_caller = (omi_trace_site){                                          \
         (uintptr_t)__builtin_return_address(0),                                   \
         *(const uintptr_t *)__builtin_frame_address(0)})

/* true once tracing has been installed: a block may carry a trace header. */
extern OMI_HIDDEN bool omi_trace_wrapped;
/* om_usable_size of a pointer that is not the start of an objmem block
 * while tracing or the debug hooks are on: a traced block's size, else the
 * debug hooks' answer, else the ordinary fatal report. */
OMI_HIDDEN size_t omi_trace_usable_size(const void *p);
/* For the debug hooks' reports: prints the allocation traceback of the
 * block whose debug user block is outer_user (outer_size bytes; tracing
 * installed over the hooks) or whose debug header is inner_block (tracing
 * under them), if it was traced; else nothing. */
OMI_HIDDEN void omi_trace_print_block(FILE *out, const void *outer_user, size_t outer_size,
                                      const void *inner_block);
/* Prints frames[0 … n), one "    name" line each. Slow (names frames). */
OMI_HIDDEN void omi_trace_print_traceback(FILE *out, const uintptr_t *frames, size_t n);

/* ---- stats.c ------------------------------------------------------------- */

OMI_HIDDEN void omi_stats_print_at_exit(void);

#endif
