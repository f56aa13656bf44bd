/*
 * os.c — every call objmem makes to the operating system for memory.
 *
 * Contract: omi_os_map returns zero-filled, read-write, page-aligned memory
 * or NULL; omi_os_unmap gives back exactly a range omi_os_map (or the
 * aligned variant) returned, or a page-aligned part of one. Nothing else in
 * objmem calls mmap/munmap.
 *
 * Arenas come from a pluggable arena allocator (CPython's
 * PyObjectArenaAllocator). The default maps OMI_ARENA_SIZE bytes aligned to
 * their own size: it maps twice the size and unmaps the unaligned head and
 * tail, so the pool allocator can find a pool header by masking a pointer
 * and the address map needs one entry per arena. A user allocator must
 * honour the same alignment; a misaligned arena is given back and refused.
 */
#include <sys/mman.h>

#include "internal.h"

void *omi_os_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void omi_os_unmap(void *addr, size_t size)
{
    if (addr != NULL && size != 0)
        munmap(addr, size);
}

/* size bytes aligned to `alignment` (a power of two ≥ the page size). */
static void *os_map_aligned(size_t size, size_t alignment)
{
    size_t span = size + alignment;
    char *raw = omi_os_map(span);
    if (raw == NULL)
        return NULL;
    uintptr_t start = ((uintptr_t)raw + alignment - 1) & ~(uintptr_t)(alignment - 1);
    size_t head = start - (uintptr_t)raw;
    omi_os_unmap(raw, head);
    omi_os_unmap((char *)start + size, span - head - size);
    return (void *)start;
}

static void *os_default_arena_alloc(void *ctx, size_t size)
{
    (void)ctx;
    return os_map_aligned(size, OMI_ARENA_SIZE);
}

static void os_default_arena_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    omi_os_unmap(ptr, size);
}

static const om_arena_allocator os_default_arena_allocator = {
    NULL, os_default_arena_alloc, os_default_arena_free,
};

static om_arena_allocator os_arena_allocator = {
    NULL, os_default_arena_alloc, os_default_arena_free,
};

void om_get_arena_allocator(om_arena_allocator *out)
{
    if (out != NULL)
        *out = os_arena_allocator;
}

int om_set_arena_allocator(const om_arena_allocator *allocator)
{
    if (allocator == NULL) {
        os_arena_allocator = os_default_arena_allocator;
        return 0;
    }
    if (allocator->alloc == NULL || allocator->free == NULL) {
        omi_set_error(OM_EINVAL, "om_set_arena_allocator: alloc and free must both be set");
        return -1;
    }
    os_arena_allocator = *allocator;
    return 0;
}

void *omi_os_arena_alloc(om_arena_allocator *made_by)
{
    om_arena_allocator allocator = os_arena_allocator;
    void *arena = allocator.alloc(allocator.ctx, OMI_ARENA_SIZE);
    if (arena == NULL)
        return omi_out_of_memory(OMI_ARENA_SIZE);
    if (((uintptr_t)arena & (OMI_ARENA_SIZE - 1)) != 0) {
        allocator.free(allocator.ctx, arena, OMI_ARENA_SIZE);
        omi_out_of_memory(OMI_ARENA_SIZE);
        omi_set_error(OM_ENOMEM, "arena allocator returned %p, not aligned to %zu bytes",
                      arena, OMI_ARENA_SIZE);
        return NULL;
    }
    *made_by = allocator;
    return arena;
}
