/*
 * objmem.h — the one public header of objmem, Python's memory manager as a
 * C library.
 *
 * Sections:
 *   1. Version, export and attribute macros
 *   2. Errors
 *   3. Memory domains (RAW, MEM, OBJ) and pluggable allocators
 *   4. Private heaps
 *   5. Arena allocator (where arenas come from)
 *   6. Options
 *   7. Statistics
 *   8. Checking and fault injection
 * and, in parts of their own under objmem/ (each included at the end):
 *   9. Allocation tracing                         objmem/trace.h
 *  10. Objects, reference counts, types            objmem/object.h
 *  11. Built-in types: numbers, str and bytes      objmem/scalars.h
 *  12. Built-in types: tuple, list, range, generators  objmem/sequences.h
 *  13. Built-in types: dict                         objmem/dict.h
 *  14. The cycle collector and weak references     objmem/gc.h
 *  15. Runtimes, threads and the global lock       objmem/runtime.h
 *
 * Conventions: every function is prefixed om_, every macro and constant OM_.
 * A failing call returns NULL (or -1) and records an error code and message
 * for the calling thread, read with om_last_error() / om_last_error_message().
 * Sizes are in bytes unless a name says "count".
 */
#ifndef OBJMEM_H
#define OBJMEM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------------------ */
/* 1. Version, export and attribute macros                                  */
/* ------------------------------------------------------------------------ */

/** The version of this header: major, minor and patch numbers (0.1.0). */
#define OM_VERSION_MAJOR 0
#define OM_VERSION_MINOR 1
#define OM_VERSION_PATCH 0
/** The version as one number: major * 10000 + minor * 100 + patch. */
#define OM_VERSION (OM_VERSION_MAJOR * 10000 + OM_VERSION_MINOR * 100 + OM_VERSION_PATCH)

/** Marks a function or variable the library exports (it is built with
 *  hidden visibility, so everything else stays internal). */
#define OM_API __attribute__((visibility("default")))

#if defined(__GNUC__) || defined(__clang__)
/** Attributes on the allocation functions, empty on compilers other than
 *  GCC and Clang: OM_MALLOC_LIKE, the result aliases nothing else;
 *  OM_ALLOC_SIZE(n), argument n is the size in bytes (so the compiler
 *  checks constant sizes and object-size bounds); OM_ALLOC_SIZE2(n, m),
 *  the size is argument n times argument m; OM_NODISCARD, ignoring the
 *  result is a warning. */
#define OM_MALLOC_LIKE __attribute__((malloc))
#define OM_ALLOC_SIZE(n) __attribute__((alloc_size(n)))
#define OM_ALLOC_SIZE2(n, m) __attribute__((alloc_size(n, m)))
#define OM_NODISCARD __attribute__((warn_unused_result))
#else
#define OM_MALLOC_LIKE
#define OM_ALLOC_SIZE(n)
#define OM_ALLOC_SIZE2(n, m)
#define OM_NODISCARD
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* 2. Errors                                                                */
/* ------------------------------------------------------------------------ */

/** Error codes kept per thread; OM_OK means "no error recorded". */
typedef enum om_error {
    OM_OK = 0,        /**< no error */
    OM_ENOMEM = 1,    /**< out of memory, or a size too large to represent */
    OM_EINVAL = 2,    /**< an argument is invalid (bad domain, NULL struct, …) */
    OM_ETYPE = 3,     /**< an object of the wrong type (Python's TypeError), e.g. an unhashable key */
    OM_EINDEX = 4,    /**< an index out of range (IndexError) */
    OM_EKEY = 5,      /**< a key that is not in the mapping (KeyError) */
    OM_EOVERFLOW = 6, /**< a result too large for its type (OverflowError), e.g. int64 arithmetic */
    OM_EVALUE = 7,    /**< a value of the right type but not acceptable (ValueError),
                           e.g. invalid UTF-8, a range step of 0, division by zero */
} om_error;

/** The calling thread's last error code (OM_OK if none since the last clear). */
OM_API om_error om_last_error(void);

/** A readable message for the calling thread's last error ("" if none).
 *  The string stays valid until the thread's next objmem call. */
OM_API const char *om_last_error_message(void);

/** Forget the calling thread's last error. */
OM_API void om_clear_error(void);

/* ------------------------------------------------------------------------ */
/* 3. Memory domains and pluggable allocators                               */
/* ------------------------------------------------------------------------ */

/*
 * Three domains, as CPython's PyMem_Raw*, PyMem_* and PyObject_*:
 *   RAW  general buffers, thread-safe, needs no runtime (the system allocator);
 *   MEM  general buffers on the objmem heap;
 *   OBJ  object memory on the objmem heap.
 * MEM and OBJ use the heap of the calling thread's runtime (section 15): a
 * thread must hold that runtime's GIL; a thread that is not attached is
 * attached to the default runtime by its first MEM or OBJ call.
 *
 * Common contract of every om_*_malloc/calloc/realloc/free:
 *  - a returned block is aligned to 16 bytes (OM_ALIGNMENT);
 *  - malloc(0) returns a unique, freeable pointer;
 *  - calloc(count, size) returns zeroed memory, or NULL with errno = ENOMEM and
 *    om_last_error() == OM_ENOMEM when count * size overflows;
 *  - a size above PTRDIFF_MAX fails with NULL and OM_ENOMEM;
 *  - realloc(NULL, n) is malloc(n); realloc keeps the old contents up to the
 *    smaller size; on failure it returns NULL and leaves the old block intact;
 *  - free(NULL) does nothing;
 *  - every MEM and OBJ block belongs to objmem (RAW blocks are the system
 *    allocator's), in three tiers by size:
 *      ≤ OM_SMALL_SIZE_MAX (512 B)      pools of 16 KiB in 1 MiB arenas;
 *      ≤ OM_MEDIUM_SIZE_MAX (256 KiB)   page runs in 1 MiB arenas, in size
 *                                       classes four per doubling (steps of
 *                                       12.5 % of the doubling's top, so a
 *                                       request wastes under 20 %); freed
 *                                       runs coalesce;
 *      larger                           a mapping of its own; realloc
 *                                       resizes it with mremap instead of
 *                                       copying; a freed mapping is kept a
 *                                       while for reuse (see purging);
 *    realloc moves a block whose new size belongs to another tier;
 *  - when a pool empties it goes back to its arena, except that each size
 *    class keeps its last pool warm, so that an allocate/free pair does not
 *    flip a pool between empty and used; a wholly free pool arena is kept
 *    as a spare for reuse (at most 64 per heap; beyond that it is unmapped
 *    at once) until it has stayed unused for the purge delay, a wholly
 *    free medium arena likewise but one per heap, and one pool arena that
 *    only warm pools hold is kept; each medium class caches a few freed
 *    blocks (om_heap_trim releases all of these);
 *  - free, realloc and om_usable_size of a pointer that objmem did not hand
 *    out (another allocator's, or the inside of a block) or of a medium
 *    block already freed is fatal misuse: one report on stderr naming the
 *    call, the address and what the address map knows of it, then abort().
 *    A small block freed twice is not detected yet: it corrupts its pool's
 *    free list (the debug hooks of a later release will catch it).
 *  - om_aligned_alloc and om_heap_aligned_alloc take memory from the heap
 *    directly, not through an allocator installed with om_set_allocator.
 */

/** Alignment of every block that objmem returns, in bytes. */
#define OM_ALIGNMENT 16
/** Largest request served from the small-object pools, in bytes. */
#define OM_SMALL_SIZE_MAX 512
/** Number of small size classes: 16, 32, …, 512 bytes. */
#define OM_SMALL_CLASS_COUNT (OM_SMALL_SIZE_MAX / OM_ALIGNMENT)
/** Largest request served from medium page runs, in bytes. */
#define OM_MEDIUM_SIZE_MAX ((size_t)256 << 10)
/** Number of medium size classes: 640 B … 256 KiB, four per doubling. */
#define OM_MEDIUM_CLASS_COUNT 36

/** RAW domain: the system allocator's malloc, calloc, realloc and free
 *  under the contract above; thread-safe, no runtime or GIL needed. */
OM_API void *om_raw_malloc(size_t size) OM_MALLOC_LIKE OM_ALLOC_SIZE(1) OM_NODISCARD;
OM_API void *om_raw_calloc(size_t count, size_t size) OM_MALLOC_LIKE OM_ALLOC_SIZE2(1, 2) OM_NODISCARD;
OM_API void *om_raw_realloc(void *ptr, size_t size) OM_ALLOC_SIZE(2) OM_NODISCARD;
OM_API void om_raw_free(void *ptr);

/** MEM domain: general buffers (strings, arrays, list items) from the
 *  current runtime's heap under the contract above; GIL held. */
OM_API void *om_mem_malloc(size_t size) OM_MALLOC_LIKE OM_ALLOC_SIZE(1) OM_NODISCARD;
OM_API void *om_mem_calloc(size_t count, size_t size) OM_MALLOC_LIKE OM_ALLOC_SIZE2(1, 2) OM_NODISCARD;
OM_API void *om_mem_realloc(void *ptr, size_t size) OM_ALLOC_SIZE(2) OM_NODISCARD;
OM_API void om_mem_free(void *ptr);

/** OBJ domain: memory for objects (om_new takes its blocks here) from the
 *  current runtime's heap under the contract above; GIL held. */
OM_API void *om_obj_malloc(size_t size) OM_MALLOC_LIKE OM_ALLOC_SIZE(1) OM_NODISCARD;
OM_API void *om_obj_calloc(size_t count, size_t size) OM_MALLOC_LIKE OM_ALLOC_SIZE2(1, 2) OM_NODISCARD;
OM_API void *om_obj_realloc(void *ptr, size_t size) OM_ALLOC_SIZE(2) OM_NODISCARD;
OM_API void om_obj_free(void *ptr);

/** Bytes usable in the block at ptr (at least the size asked for; 0 for NULL).
 *  Works for blocks of the MEM and OBJ domains and of any heap. */
OM_API size_t om_usable_size(const void *ptr);

/** A block of `size` bytes from the current runtime's heap whose address is a
 *  multiple of `alignment` (a power of two; any size, from 16 bytes to
 *  several MiB). Free it with om_mem_free or om_obj_free. NULL with
 *  OM_EINVAL for an alignment that is not a power of two, OM_ENOMEM when out
 *  of memory. */
OM_API void *om_aligned_alloc(size_t alignment, size_t size) OM_MALLOC_LIKE OM_ALLOC_SIZE(2) OM_NODISCARD;

/** The three allocation domains. */
typedef enum om_domain {
    OM_DOMAIN_RAW = 0,  /**< om_raw_*: system allocator, thread-safe */
    OM_DOMAIN_MEM = 1,  /**< om_mem_*: objmem heap, general buffers */
    OM_DOMAIN_OBJ = 2,  /**< om_obj_*: objmem heap, objects */
} om_domain;

/** Number of domains (for loops over them). */
#define OM_DOMAIN_COUNT 3

/** A pluggable allocator (CPython's PyMemAllocatorEx): four functions and the
 *  context they receive. calloc receives (ctx, count, size). */
typedef struct om_allocator {
    void *ctx;                                              /**< passed to every hook */
    void *(*malloc)(void *ctx, size_t size);                /**< like malloc */
    void *(*calloc)(void *ctx, size_t count, size_t size);  /**< like calloc */
    void *(*realloc)(void *ctx, void *ptr, size_t size);    /**< like realloc */
    void (*free)(void *ctx, void *ptr);                     /**< like free */
} om_allocator;

/** Copy the allocator of `domain` into *out. Returns 0, or -1 (OM_EINVAL) for
 *  an unknown domain or a NULL out. */
OM_API int om_get_allocator(om_domain domain, om_allocator *out);

/** Install *allocator for `domain`; every later om_<domain>_* call goes to it.
 *  All four functions must be set. Blocks allocated before the switch must be
 *  freed by an allocator that understands them: save the old one with
 *  om_get_allocator and forward to it (the usual way to wrap). Returns 0, or
 *  -1 (OM_EINVAL) for an unknown domain or an incomplete allocator.
 *  Not thread-safe: call it before other threads use the domain. */
OM_API int om_set_allocator(om_domain domain, const om_allocator *allocator);

/* ------------------------------------------------------------------------ */
/* 4. Private heaps                                                         */
/* ------------------------------------------------------------------------ */

/** A private heap: its own pools and arenas (mimalloc's first-class heaps).
 *  A heap is not thread-safe: its user serialises access. */
typedef struct om_heap om_heap;

/** A new, empty heap, or NULL (OM_ENOMEM). */
OM_API om_heap *om_heap_new(void) OM_NODISCARD;

/** Release all memory of the heap at once (arenas and large mappings),
 *  including blocks still in use, then the heap itself. h may not be the
 *  default heap. */
OM_API void om_heap_delete(om_heap *h);

/** Give back to the OS everything heap h (NULL = default heap) holds free
 *  now: the empty pool each size class keeps warm, the medium caches, the
 *  spare arenas and the freed large mappings are unmapped, and free pages
 *  inside arenas are purged. Returns the number of bytes unmapped. */
OM_API size_t om_heap_trim(om_heap *h);

/** The heap that the MEM and OBJ domains use. */
OM_API om_heap *om_heap_default(void);

/** Allocate from heap h (NULL = the default heap) with the domain contract above. Any om_*_free,
 *  om_*_realloc and om_usable_size accepts the result: the address map knows
 *  which heap owns each block. */
OM_API void *om_heap_malloc(om_heap *h, size_t size) OM_MALLOC_LIKE OM_ALLOC_SIZE(2) OM_NODISCARD;
OM_API void *om_heap_calloc(om_heap *h, size_t count, size_t size) OM_MALLOC_LIKE OM_ALLOC_SIZE2(2, 3) OM_NODISCARD;
/** Resize ptr (which may belong to any heap); a moved block is reallocated
 *  in h (NULL = the default heap). */
OM_API void *om_heap_realloc(om_heap *h, void *ptr, size_t size) OM_ALLOC_SIZE(3) OM_NODISCARD;
/** om_aligned_alloc from heap h (NULL = the default heap). */
OM_API void *om_heap_aligned_alloc(om_heap *h, size_t alignment, size_t size) OM_MALLOC_LIKE OM_ALLOC_SIZE(3) OM_NODISCARD;

/* ------------------------------------------------------------------------ */
/* 5. Arena allocator                                                       */
/* ------------------------------------------------------------------------ */

/** Size of one arena in bytes (compile-time tunable: OM_ARENA_SHIFT). */
#define OM_ARENA_SIZE ((size_t)1 << 20)
/** Size of one pool in bytes. */
#define OM_POOL_SIZE ((size_t)16 << 10)

/** Where arenas come from (CPython's PyObjectArenaAllocator). alloc must
 *  return OM_ARENA_SIZE bytes aligned to OM_ARENA_SIZE, or NULL; free gets
 *  back exactly what alloc gave, with the same size. */
typedef struct om_arena_allocator {
    void *ctx;                                          /**< passed to both hooks */
    void *(*alloc)(void *ctx, size_t size);             /**< map `size` bytes, size-aligned */
    void (*free)(void *ctx, void *ptr, size_t size);    /**< unmap them */
} om_arena_allocator;

/** Copy the current arena allocator into *out (no-op for NULL). */
OM_API void om_get_arena_allocator(om_arena_allocator *out);

/** Install the arena allocator used for arenas created from now on; arenas
 *  that exist keep the allocator that made them. NULL restores the default
 *  (mmap/munmap). Returns 0, or -1 (OM_EINVAL) for missing hooks. An arena
 *  that comes back misaligned is returned to its allocator and the
 *  allocation fails with OM_ENOMEM. */
OM_API int om_set_arena_allocator(const om_arena_allocator *allocator);

/* ------------------------------------------------------------------------ */
/* 6. Options                                                               */
/* ------------------------------------------------------------------------ */

/** Run-time options. Each one reads the environment variable OBJMEM_<NAME>
 *  at load time, and om_option_set changes it later. */
typedef enum om_option {
    /** Free memory inside arenas (pools back in their arena, free medium
     *  runs) is given back to the OS with madvise once it has stayed free
     *  this many milliseconds; spare arenas and freed large mappings kept
     *  for reuse (at most 8 of at most 32 MiB each) are unmapped after the
     *  same delay. 0 = at once. Checked on the allocator's slow paths and by
     *  om_heap_trim (which gives back everything free at once). Default 1000;
     *  environment OBJMEM_PURGE_DELAY_MS. */
    OM_OPTION_PURGE_DELAY_MS = 0,
    /** Incremental mode of the cycle collector (objmem/gc.h): when > 0,
     *  automatic full collections are replaced by steps over generation 2
     *  that each examine about as many objects as fit in this many
     *  microseconds (measured cost per object), so that the longest pause
     *  stays near the budget on heaps of millions of tracked objects.
     *  0 = off (stop-the-world full collections, as CPython 3.11).
     *  Range 0 … 1,000,000; default 0; environment
     *  OBJMEM_GC_INCREMENTAL_BUDGET_US. */
    OM_OPTION_GC_INCREMENTAL_BUDGET_US = 1,
    /** Hardened mode, in the spirit of mimalloc's secure mode: 1 = on.
     *  Small-block free lists are kept encoded with a per-heap secret
     *  (a corrupted link is reported, never followed), a freed block that
     *  is already free is reported as a double free (a fatal report naming
     *  the om_*_free call, without the debug hooks), a fresh pool hands out
     *  its blocks in a random order, and arenas mapped by the default arena
     *  allocator get a PROT_NONE guard page before and after them, so a
     *  linear overflow off an arena faults. A heap takes the mode when it
     *  is created (om_heap_new, om_runtime_new) and keeps it for life; the
     *  default heap takes it before its first small block; an arena takes
     *  it when it is mapped. Its cost is in bench/RESULTS.md; the default
     *  mode's paths are unchanged. Range 0 … 1; default 0; environment
     *  OBJMEM_SECURE. */
    OM_OPTION_SECURE = 2,
} om_option;

/** Number of options. */
#define OM_OPTION_COUNT 3

/** The current value of an option; -1 with OM_EINVAL for an unknown one. */
OM_API long om_option_get(om_option option);

/** Sets an option. Returns 0, or -1 with OM_EINVAL for an unknown option or
 *  a value out of its range (the purge delay: 0 … 3,600,000 ms; the
 *  collector's incremental budget: 0 … 1,000,000 µs; hardened mode: 0 … 1). Not
 *  thread-safe: set options before threads allocate. */
OM_API int om_option_set(om_option option, long value);

/* ------------------------------------------------------------------------ */
/* 7. Statistics                                                            */
/* ------------------------------------------------------------------------ */

/** One small size class at the moment of the snapshot. */
typedef struct om_size_class_stats {
    size_t block_size;   /**< bytes per block */
    size_t pools;        /**< pools assigned to this class */
    size_t used_blocks;  /**< blocks handed out and not freed */
    size_t free_blocks;  /**< blocks in those pools not in use (carved or not) */
    size_t used_bytes;   /**< used_blocks * block_size */
} om_size_class_stats;

/** A heap at the moment of the snapshot. */
typedef struct om_heap_stats {
    size_t arena_size;           /**< bytes per arena */
    size_t pool_size;            /**< bytes per pool */
    size_t arenas_allocated;     /**< arenas mapped since the heap was made */
    size_t arenas_freed;         /**< arenas returned to the OS since then */
    size_t arenas_current;       /**< arenas mapped now */
    size_t arenas_highwater;     /**< most arenas mapped at one time */
    size_t pools_used;           /**< pools holding a size class now */
    size_t pools_free;           /**< pools of current arenas not assigned */
    size_t small_used_bytes;     /**< bytes in used small blocks */
    size_t small_free_bytes;     /**< bytes in free small blocks of used pools */
    size_t mapped_bytes;         /**< arenas_current * arena_size */
    om_size_class_stats classes[OM_SMALL_CLASS_COUNT]; /**< index i: (i+1)*16 B */
    size_t medium_arenas_current;   /**< medium arenas mapped now */
    size_t medium_arenas_allocated; /**< medium arenas mapped since the heap was made */
    size_t medium_arenas_freed;     /**< medium arenas unmapped since then */
    size_t medium_used_bytes;       /**< bytes in medium blocks in use */
    size_t medium_cached_bytes;     /**< bytes in freed medium blocks held by the class caches */
    size_t medium_free_bytes;       /**< bytes in free medium runs */
    size_t large_count;             /**< large blocks (own mappings) in use */
    size_t large_bytes;             /**< their usable bytes */
    size_t large_cached_bytes;      /**< freed large mappings kept for reuse, bytes */
    size_t purged_bytes;            /**< bytes given back with madvise since the heap was made */
    size_t purges;                  /**< madvise calls that gave them back */
} om_heap_stats;

/** Fill *out with a snapshot of heap h (NULL = the default heap). Walks every
 *  pool: O(pools). Returns 0, or -1 (OM_EINVAL) for NULL out. */
OM_API int om_heap_get_stats(const om_heap *h, om_heap_stats *out);

/** Print the default heap's tables to `out` (NULL = stderr), as CPython's
 *  sys._debugmallocstats(). */
OM_API void om_debug_malloc_stats(FILE *out);

/** The same tables for any heap h (NULL = the default heap). */
OM_API void om_heap_print_stats(const om_heap *h, FILE *out);

/** Write heap h's statistics (NULL = default heap) to `out` as one JSON
 *  object. Returns 0, or -1 (OM_EINVAL) for a NULL stream. */
OM_API int om_heap_write_stats_json(const om_heap *h, FILE *out);

/*
 * Environment: OBJMEM_MALLOCSTATS=1 prints om_debug_malloc_stats(stderr) at
 * process exit.
 */

/* ------------------------------------------------------------------------ */
/* 8. Checking and fault injection                                          */
/* ------------------------------------------------------------------------ */

/** Verify every structural invariant of the default heap: pool records,
 *  free lists, arena counts and lists, medium boundary tags, bins, caches,
 *  large-block lists and the address map; the collector's lists and counts
 *  when the caller is attached to the heap's runtime; with the debug hooks
 *  on, also every live block's guard bytes and every quarantined block's
 *  free pattern. Returns 0 when all hold; a violation is reported
 *  like any fatal misuse (one report on stderr naming what is wrong and
 *  where, then abort). Cost: O(blocks in free lists + pools + medium runs
 *  + tracked objects). */
OM_API int om_heap_check(void);

/** om_heap_check for heap h (NULL = the default heap). */
OM_API int om_heap_check_heap(const om_heap *h);

/** Debug hooks (CPython's PYTHONMALLOC=debug): wrap the allocators of all
 *  three domains so that every block carries its size, its domain, a serial
 *  number and 16 guard bytes (0xFD) before and after it; fresh memory is
 *  filled with 0xCD (calloc still zeroes), freed memory with 0xDD and held
 *  in a quarantine of the last 1024 freed blocks before it is really freed.
 *  Free, realloc, om_usable_size and om_heap_check then detect buffer
 *  overflow and underflow, double free, free or realloc of a freed block,
 *  a block freed through another domain, writes to freed memory, and
 *  pointers objmem did not hand out; each is one report on stderr
 *  ("objmem: fatal error: debug hooks: …" with the address, the block's
 *  size, domain and serial, and a hex dump of the damaged bytes), then
 *  abort(). Install before any block is allocated through the domains (a
 *  block allocated before cannot be freed after), and before other
 *  wrappers such as fault injection. Idempotent. Returns 0.
 *  Environment: OBJMEM_MALLOC=debug installs them at load time;
 *  OBJMEM_MALLOC=malloc routes MEM and OBJ to the system allocator (for
 *  valgrind), malloc_debug does both. */
OM_API int om_setup_debug_hooks(void);

/** Fault injection: the allocation of `domain` that comes `n` allocations
 *  from now (0 = the very next one) fails, once: it returns NULL, sets
 *  OM_ENOMEM and errno = ENOMEM, and leaves everything else as it was (a
 *  failing realloc keeps its block). malloc, calloc, and realloc to a
 *  non-zero size count as allocations. n = -1 disarms. Works by wrapping the
 *  domain's allocator (om_set_allocator); install other wrappers first.
 *  Returns 0, or -1 with OM_EINVAL for an unknown domain or n < -1.
 *  Environment: OBJMEM_FAIL=DOMAIN:N (DOMAIN raw, mem or obj). */
OM_API int om_fail_after(om_domain domain, long n);

/** Fault injection, seeded probability mode: each allocation of `domain`
 *  fails with probability per_million / 1e6, drawn from a generator seeded
 *  with `seed`, so a failing run can be replayed. per_million = 0 disarms.
 *  Returns 0, or -1 with OM_EINVAL for an unknown domain or per_million
 *  above 1,000,000. Environment: OBJMEM_FAIL=DOMAIN:random:PER_MILLION:SEED. */
OM_API int om_fail_random(om_domain domain, long per_million, uint64_t seed);

/** Allocations of `domain` that fault injection has failed so far. */
OM_API long om_fail_count(om_domain domain);

/** Write the HTML heap report of the calling thread's runtime (its heap,
 *  collector and tracing) to the file at `path`: one self-contained page
 *  (inline SVG and CSS, a small inline script, nothing fetched from a
 *  network) with a summary (totals of the three tiers, RSS, date), an
 *  arena map (a row per pool arena, a cell per pool coloured by size class
 *  and fullness; medium arenas and large blocks summarised), a size-class
 *  histogram, the collector's last OM_GC_PAUSE_LOG pauses on a timeline,
 *  and the top allocation sites while tracing is on (else a note that it
 *  is off). Draws at most 256 pool arenas, 64 medium arenas, 64 large
 *  blocks and 20 sites, and says how many more there are. The page is
 *  built in RAW memory and written once complete. Returns 0, or -1 with
 *  OM_EINVAL (NULL path, or a path that cannot be opened for writing) or
 *  OM_ENOMEM (out of memory: no file is written; or the write failed: a
 *  regular file left half-written is removed). Needs the runtime's GIL,
 *  like every MEM and OBJ call. Cost: O(pools + medium runs + traced
 *  sites); it does not change the heap it draws. */
OM_API int om_write_report(const char *path);

#ifdef __cplusplus
}
#endif

#include "objmem/trace.h"
#include "objmem/object.h"
#include "objmem/scalars.h"
#include "objmem/sequences.h"
#include "objmem/dict.h"
#include "objmem/gc.h"
#include "objmem/runtime.h"

#endif /* OBJMEM_H */
