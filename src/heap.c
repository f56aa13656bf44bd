/*
 * heap.c — private heaps and the requests that are not small.
 *
 * An om_heap (types.h) holds all allocator state; nothing lives in other
 * globals except the default heap, which the MEM and OBJ domains use and
 * which is statically initialised so the first allocation needs no set-up.
 *
 * Routing of a request of n bytes from heap h:
 *   n ≤ OM_SMALL_SIZE_MAX  → the pools of h (pool.c)
 *   n > OM_SMALL_SIZE_MAX  → the system allocator (until the medium and large
 *                            allocators exist)
 * Routing of a pointer (free, realloc, usable size): the address map says
 * whether it is in a pool arena, and the pool header says which class and
 * heap; any other pointer belongs to the system allocator (CPython's rule).
 * At load time, OBJMEM_MALLOCSTATS=1 arranges for the default heap's tables
 * to be printed to stderr at exit (here, because every program that
 * allocates links this file).
 *
 * realloc keeps the invariant "a block of ≤ 512 bytes lives in a pool": a
 * system block shrunk that far moves into the pools.
 */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

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
    om_heap *h = malloc(sizeof *h);
    if (h == NULL)
        return omi_out_of_memory(sizeof *h);
    omi_pool_heap_init(h);
    return h;
}

void om_heap_delete(om_heap *h)
{
    if (h == NULL)
        return;
    if (h->is_default)
        omi_fatal("om_heap_delete: the default heap cannot be deleted");
    omi_pool_heap_release_all(h);
    free(h);
}

static om_heap *heap_or_default(om_heap *h);

size_t om_heap_trim(om_heap *h)
{
    return omi_pool_heap_trim(heap_or_default(h));
}

void *omi_heap_malloc_large(size_t size)
{
    if (size > PTRDIFF_MAX)
        return omi_out_of_memory(size);
    void *p = malloc(size);
    return p != NULL ? p : omi_out_of_memory(size);
}

void omi_free_foreign(void *p)
{
    free(p);
}

void *omi_heap_calloc(om_heap *h, size_t count, size_t size)
{
    size_t total;
    if (!omi_mul_size(count, size, &total))
        return omi_calloc_overflow(count, size);
    void *p = omi_heap_malloc(h, total);
    if (p != NULL)
        memset(p, 0, total);
    return p;
}

/* A small block stays where it is when the new size still fits its class
 * and wastes at most a quarter of it; otherwise it moves. */
static bool heap_small_fits(size_t block_size, size_t size)
{
    return size <= block_size && (size > block_size / 4 * 3 || block_size == OM_ALIGNMENT);
}

void *omi_heap_realloc(om_heap *h, void *p, size_t size)
{
    if (p == NULL)
        return omi_heap_malloc(h, size);
    if (size > PTRDIFF_MAX)
        return omi_out_of_memory(size);
    uintptr_t entry = omi_addrmap_lookup(p);
    bool in_pool = entry != 0;
    if (!in_pool && size > OM_SMALL_SIZE_MAX) {
        void *moved = realloc(p, size);
        return moved != NULL ? moved : omi_out_of_memory(size);
    }
    size_t old_size = in_pool ? omi_pool_usable_size(p) : malloc_usable_size(p);
    if (in_pool && heap_small_fits(old_size, size))
        return p;
    /* Between a pool and the system, or between two classes: move. */
    void *moved = omi_heap_malloc(h, size);
    if (moved == NULL)
        return NULL;
    memcpy(moved, p, old_size < size ? old_size : size);
    omi_free(p);
    return moved;
}

static om_heap *heap_or_default(om_heap *h)
{
    return h != NULL ? h : &omi_default_heap;
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
    return omi_heap_realloc(heap_or_default(h), ptr, size);
}

size_t om_usable_size(const void *ptr)
{
    if (ptr == NULL)
        return 0;
    uintptr_t entry = omi_addrmap_lookup(ptr);
    if (entry != 0)
        return omi_pool_usable_size(ptr);
    return malloc_usable_size((void *)ptr);
}

__attribute__((constructor)) static void heap_read_environment(void)
{
    const char *stats = getenv("OBJMEM_MALLOCSTATS");
    if (stats != NULL && strcmp(stats, "1") == 0)
        atexit(omi_stats_print_at_exit);
}
