/*
 * heap.c — private heaps, and the routing of requests and pointers.
 *
 * An om_heap (types.h) holds all allocator state; nothing lives in other
 * globals except the default heap, the default runtime's (runtime.c), which
 * the MEM and OBJ domains use while the calling thread is attached to that
 * runtime and which is statically initialised so the first allocation
 * needs no set-up.
 *
 * Routing of a request of n bytes from heap h:
 *   n ≤ OM_SMALL_SIZE_MAX (512 B)     → the pools of h (pool.c)
 *   n ≤ OMI_MEDIUM_SIZE_MAX (256 KiB) → page runs of h's medium arenas (medium.c)
 *   larger                            → a mapping of its own (large.c)
 * Routing of a pointer (free, realloc, usable size): the address map's
 * entry says pool arena, medium arena or large mapping; anything else is
 * not objmem's, and a pointer objmem never handed out (foreign, or inside a
 * block) is reported as fatal misuse, naming the public call.
 *
 * realloc keeps every block in the tier its size belongs to: a block that
 * shrinks or grows across 512 B or 256 KiB moves.
 *
 * At load time, OBJMEM_MALLOCSTATS=1 arranges for the default heap's tables
 * to be printed to stderr at exit (here, because every program that
 * allocates links this file).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

#define S1 &omi_pool_sentinel
#define S4 S1, S1, S1, S1
#define S16 S4, S4, S4, S4
_Static_assert(OMI_CLASS_COUNT == 32, "the default heap's initialiser lists 32 classes");

om_heap omi_default_heap = {
    .usable = {S16, S16},
    .is_default = true,
};

#undef S16
#undef S4
#undef S1

om_heap *om_heap_default(void)
{
    return &omi_default_heap;
}

om_heap *om_heap_new(void)
{
    /* From the RAW domain, so that fault injection reaches it too. */
    om_heap *h = om_raw_malloc(sizeof *h);
    if (h == NULL)
        return NULL;
    omi_pool_heap_init(h);
    omi_heap_choose_mode(h);
    return h;
}

void om_heap_delete(om_heap *h)
{
    if (h == NULL)
        return;
    if (h->is_default)
        omi_fatal("om_heap_delete: the default heap cannot be deleted");
    omi_pool_heap_release_all(h);
    omi_medium_heap_release_all(h);
    omi_large_heap_release_all(h);
    om_raw_free(h);
}

om_heap *omi_heap_of(const void *p)
{
    uintptr_t entry = omi_addrmap_lookup(p);
    if (entry == 0)
        return NULL;
    return *(om_heap *const *)(entry & ~OMI_OWNER_KIND_MASK);
}

static om_heap *heap_or_default(om_heap *h)
{
    return h != NULL ? h : &omi_default_heap;
}

size_t om_heap_trim(om_heap *h)
{
    h = heap_or_default(h);
    size_t unmapped = omi_pool_heap_trim(h) + omi_medium_heap_trim(h);
    size_t cached = h->large_cached_bytes;
    omi_pool_purge(h, UINT64_MAX);
    omi_medium_purge(h, UINT64_MAX);
    omi_large_purge(h, UINT64_MAX);
    return unmapped + cached;
}

/* ---- Hardened mode ------------------------------------------------------------ */

void omi_heap_choose_mode(om_heap *h)
{
    h->secure = (omi_secure){.on = false};
    if (omi_option_values[OM_OPTION_SECURE] == 0)
        return;
    uint64_t secrets[5];
    omi_os_random(secrets, sizeof secrets);
    h->secure.on = true;
    h->secure.link_rotate = 1 + (unsigned)(secrets[0] % 63);
    h->secure.link_xor = (uintptr_t)secrets[1];
    h->secure.link_add = (uintptr_t)secrets[2];
    h->secure.free_tag = (uintptr_t)secrets[3];
    h->secure.shuffle_state = secrets[4] | 1;
}

/* ---- Purging ---------------------------------------------------------------- */

static uint64_t purge_clock_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

uint64_t omi_purge_now(om_heap *h)
{
    return h->now_ms = purge_clock_ms();
}

void omi_purge_tick(om_heap *h)
{
    uint64_t delay = (uint64_t)omi_option_values[OM_OPTION_PURGE_DELAY_MS];
    omi_purge_now(h);
    if (h->now_ms - h->last_purge_check_ms <= delay / 4 && h->last_purge_check_ms != 0)
        return;   /* checked less than a quarter delay ago */
    h->last_purge_check_ms = h->now_ms;
    uint64_t deadline = h->now_ms > delay ? h->now_ms - delay : 0;
    omi_pool_purge(h, deadline);
    omi_medium_purge(h, deadline);
    omi_large_purge(h, deadline);
}

void omi_purge_range(om_heap *h, void *p, size_t size)
{
    omi_os_purge(p, size);
    h->purged_bytes += size;
    h->purges++;
}

void *omi_heap_malloc_big(om_heap *h, size_t size)
{
    if (size <= OMI_MEDIUM_SIZE_MAX)
        return omi_medium_malloc(h, size);
    if (size > PTRDIFF_MAX)
        return omi_out_of_memory(size);
    return omi_large_malloc(h, size, OM_ALIGNMENT);
}

void *omi_heap_calloc(om_heap *h, size_t count, size_t size)
{
    size_t total;
    if (!omi_mul_size(count, size, &total))
        return omi_calloc_overflow(count, size);
    if (total > OMI_MEDIUM_SIZE_MAX)
        return omi_large_calloc(h, total);   /* fresh pages need no clearing */
    void *p = omi_heap_malloc(h, total);
    if (p != NULL)
        memset(p, 0, total);
    return p;
}

/* A small block of a power-of-two class is aligned to its size. */
static size_t heap_small_aligned_size(size_t alignment, size_t size)
{
    size_t wanted = size > alignment ? size : alignment;
    size_t power = OM_ALIGNMENT;
    while (power < wanted)
        power <<= 1;
    return power;
}

void *omi_heap_aligned_malloc(om_heap *h, size_t alignment, size_t size)
{
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        omi_set_error(OM_EINVAL, "aligned allocation: alignment %zu is not a power of two",
                      alignment);
        return NULL;
    }
    if (alignment <= OM_ALIGNMENT)
        return omi_heap_malloc(h, size);
    if (size > PTRDIFF_MAX)
        return omi_out_of_memory(size);
    size_t small = heap_small_aligned_size(alignment, size);
    if (small <= OM_SMALL_SIZE_MAX)
        return omi_pool_malloc(h, small);
    if (size <= OMI_MEDIUM_SIZE_MAX && alignment <= OMI_MEDIUM_ALIGN_MAX)
        return omi_medium_aligned_malloc(h, size > OM_SMALL_SIZE_MAX ? size : OM_SMALL_SIZE_MAX + 1,
                                         alignment);
    return omi_large_malloc(h, size > OMI_MEDIUM_SIZE_MAX ? size : OMI_MEDIUM_SIZE_MAX + 1,
                            alignment);
}

void omi_free_slow(const char *function, uintptr_t entry, void *p)
{
    switch (entry & OMI_OWNER_KIND_MASK) {
    case OMI_OWNER_SMALL:
        omi_invalid_pointer(function, p, "inside a pool, not at the start of a handed-out block");
    case OMI_OWNER_LARGE:
        omi_large_free(function, entry, p);
        return;
    default:   /* medium blocks never get here: omi_free calls medium.c itself */
        omi_invalid_pointer(function, p, "not in any objmem arena or mapping");
    }
}

size_t omi_usable_size(const char *function, const void *p)
{
    uintptr_t entry = omi_addrmap_lookup(p);
    switch (entry & OMI_OWNER_KIND_MASK) {
    case OMI_OWNER_SMALL:
        if (!omi_pool_block_is_valid(omi_pool_of(p), p))
            omi_invalid_pointer(function, p,
                                "inside a pool, not at the start of a handed-out block");
        return omi_class_block_size(omi_pool_of(p)->class_index);
    case OMI_OWNER_MEDIUM:
        return omi_medium_usable_size(function, p);
    case OMI_OWNER_LARGE:
        return omi_large_usable_size(function, entry, p);
    default:
        omi_invalid_pointer(function, p, "not in any objmem arena or mapping");
    }
}

/* A small block stays where it is when the new size still fits its class
 * and wastes at most a quarter of it; otherwise it moves. */
static bool heap_small_fits(size_t block_size, size_t size)
{
    return size <= block_size && (size > block_size / 4 * 3 || block_size == OM_ALIGNMENT);
}

/* Moves p's contents (old_size bytes of them, at most) into a new block. */
static void *heap_move(const char *function, om_heap *h, void *p, size_t old_size, size_t size)
{
    void *moved = omi_heap_malloc(h, size);
    if (moved == NULL)
        return NULL;
    memcpy(moved, p, old_size < size ? old_size : size);
    omi_free(function, p);
    return moved;
}

void *omi_heap_realloc(const char *function, om_heap *h, void *p, size_t size)
{
    if (p == NULL)
        return omi_heap_malloc(h, size);
    if (size > PTRDIFF_MAX)
        return omi_out_of_memory(size);
    uintptr_t entry = omi_addrmap_lookup(p);
    switch (entry & OMI_OWNER_KIND_MASK) {
    case OMI_OWNER_SMALL: {
        size_t old_size = omi_usable_size(function, p);
        if (heap_small_fits(old_size, size))
            return p;
        return heap_move(function, h, p, old_size, size);
    }
    case OMI_OWNER_MEDIUM:
        if (size > OM_SMALL_SIZE_MAX && size <= OMI_MEDIUM_SIZE_MAX)
            return omi_medium_realloc(function, h, p, size);
        return heap_move(function, h, p, omi_medium_usable_size(function, p), size);
    case OMI_OWNER_LARGE:
        if (size > OMI_MEDIUM_SIZE_MAX)
            return omi_large_realloc(function, entry, p, size);
        return heap_move(function, h, p, omi_large_usable_size(function, entry, p), size);
    default:
        omi_invalid_pointer(function, p, "not in any objmem arena or mapping");
    }
}

void *om_heap_malloc(om_heap *h, size_t size)
{
    return omi_heap_malloc(heap_or_default(h), size);
}

void *om_heap_calloc(om_heap *h, size_t count, size_t size)
{
    return omi_heap_calloc(heap_or_default(h), count, size);
}

void *om_heap_realloc(om_heap *h, void *ptr, size_t size)
{
    return omi_heap_realloc("om_heap_realloc", heap_or_default(h), ptr, size);
}

void *om_heap_aligned_alloc(om_heap *h, size_t alignment, size_t size)
{
    return omi_heap_aligned_malloc(heap_or_default(h), alignment, size);
}

void *om_aligned_alloc(size_t alignment, size_t size)
{
    return omi_heap_aligned_malloc(omi_current_heap(), alignment, size);
}

bool omi_is_block_start(const void *p)
{
    uintptr_t entry = omi_addrmap_lookup(p);
    switch (entry & OMI_OWNER_KIND_MASK) {
    case OMI_OWNER_SMALL:
        return omi_pool_block_is_valid(omi_pool_of(p), p);
    case OMI_OWNER_MEDIUM:
        return omi_medium_is_block_start(p);
    case OMI_OWNER_LARGE:
        return omi_large_is_block_start(entry, p);
    default:
        return false;
    }
}

int om_heap_check_heap(const om_heap *h)
{
    if (h == NULL)
        h = &omi_default_heap;
    omi_pool_check(h);
    omi_medium_check(h);
    omi_large_check(h);
    if (omi_debug_active)
        omi_debug_check(h);
    /* The collector of h's runtime, when the caller is attached to it (and
     * so holds its GIL: the lists are the runtime's to change). */
    if (omi_thread.heap == h && omi_thread.gc != NULL)
        omi_gc_check(omi_thread.gc);
    return 0;
}

int om_heap_check(void)
{
    return om_heap_check_heap(NULL);
}

size_t om_usable_size(const void *ptr)
{
    if (ptr == NULL)
        return 0;
    if ((omi_debug_active || omi_trace_wrapped) && !omi_is_block_start(ptr))
        return omi_trace_usable_size(ptr);
    return omi_usable_size("om_usable_size", ptr);
}

/* Every module's environment settings (internal.h lists the order). */
__attribute__((constructor)) static void heap_read_environment(void)
{
    omi_debug_apply_environment();
    omi_trace_read_environment();
    omi_fault_read_environment();
    const char *stats = getenv("OBJMEM_MALLOCSTATS");
    if (stats != NULL && strcmp(stats, "1") == 0)
        atexit(omi_stats_print_at_exit);
}
