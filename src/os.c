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
 * omi_os_arena_alloc also registers the arena in the address map with the
 * owner kind the caller names, and omi_os_arena_free undoes both, so no
 * arena is ever mapped without an entry or an entry left without an arena.
 *
 * Large blocks (large.c) take whole mappings of their own, which they grow,
 * shrink and move with mremap so that no byte of their contents is copied:
 *
 *   omi_os_map_aligned(size, alignment, offset)
 *       read-write zero pages at an address a with (a + offset) a multiple
 *       of alignment; NULL when size + alignment overflows or mmap fails.
 *   omi_os_reserve_aligned(size, alignment, offset)
 *       the same placement, but PROT_NONE and MAP_NORESERVE: address space
 *       only, no commit charge, a target for omi_os_remap.
 *   omi_os_remap(addr, old_size, new_size, target)
 *       target NULL: resizes the mapping at addr where it is (a shrink always
 *       succeeds; a grow fails when the pages after it are taken). Else moves
 *       the pages to target, replacing the reservation there, with the page
 *       tables carried over: O(pages), no copy. 0, or -1 with the mapping at
 *       addr untouched (the caller still owns a reservation at target).
 *
 * alignment is a power of two >= the page size, offset a multiple of the
 * page size. mremap is Linux's; a port without it would make omi_os_remap
 * fail, and large.c treats that as out of memory, the block kept intact.
 *
 * Hardened mode (OM_OPTION_SECURE): while it is on, an arena asked of the
 * default arena allocator comes from the guarded one instead, which maps
 * one PROT_NONE page right before and right after the arena:
 *
 *   | guard | arena (OMI_ARENA_SIZE, aligned to it) | guard |
 *
 * so a linear overflow (or underflow) off an arena faults instead of
 * running into the neighbouring mapping. The arena records the allocator
 * that made it, so it is given back with its guards whatever the option
 * says by then. A user's arena allocator is used as it is: its memory is
 * not ours to split. omi_os_random fills the heaps' secrets from the
 * kernel's generator (getrandom).
 */
#include <sys/mman.h>
#include <sys/random.h>
#include <time.h>

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

/* size bytes at an address a with (a + offset) % alignment == 0: maps
 * size + alignment bytes with `prot` and unmaps the unused head and tail. */
static void *os_map_placed(size_t size, size_t alignment, size_t offset, int prot, int flags)
{
    size_t span;
    if (__builtin_add_overflow(size, alignment, &span))
        return NULL;
    char *raw = mmap(NULL, span, prot, MAP_PRIVATE | MAP_ANONYMOUS | flags, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    uintptr_t mask = (uintptr_t)(alignment - 1);
    uintptr_t start = (((uintptr_t)raw + offset + mask) & ~mask) - offset;
    size_t head = start - (uintptr_t)raw;   /* < alignment, so the tail is > 0 */
    omi_os_unmap(raw, head);
    omi_os_unmap((char *)start + size, span - head - size);
    return (void *)start;
}

/* size bytes aligned to `alignment` (a power of two ≥ the page size). */
static void *os_map_aligned(size_t size, size_t alignment)
{
    return os_map_placed(size, alignment, 0, PROT_READ | PROT_WRITE, 0);
}

void *omi_os_map_aligned(size_t size, size_t alignment, size_t offset)
{
    return os_map_placed(size, alignment, offset, PROT_READ | PROT_WRITE, 0);
}

void *omi_os_reserve_aligned(size_t size, size_t alignment, size_t offset)
{
    return os_map_placed(size, alignment, offset, PROT_NONE, MAP_NORESERVE);
}

int omi_os_remap(void *addr, size_t old_size, size_t new_size, void *target)
{
    void *result = target == NULL
                       ? mremap(addr, old_size, new_size, 0)
                       : mremap(addr, old_size, new_size, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    return result == MAP_FAILED ? -1 : 0;
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

#define OS_GUARD_SIZE ((size_t)4096)

static void *os_guarded_arena_alloc(void *ctx, size_t size)
{
    (void)ctx;
    char *start = os_map_placed(size + 2 * OS_GUARD_SIZE, OMI_ARENA_SIZE, OS_GUARD_SIZE,
                                PROT_READ | PROT_WRITE, 0);
    if (start == NULL)
        return NULL;
    if (mprotect(start, OS_GUARD_SIZE, PROT_NONE) != 0 ||
        mprotect(start + OS_GUARD_SIZE + size, OS_GUARD_SIZE, PROT_NONE) != 0) {
        omi_os_unmap(start, size + 2 * OS_GUARD_SIZE);
        return NULL;
    }
    return start + OS_GUARD_SIZE;
}

static void os_guarded_arena_free(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    omi_os_unmap((char *)ptr - OS_GUARD_SIZE, size + 2 * OS_GUARD_SIZE);
}

static const om_arena_allocator os_guarded_arena_allocator = {
    NULL, os_guarded_arena_alloc, os_guarded_arena_free,
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

/* The allocator a new arena comes from: the current one, or the guarded
 * default in hardened mode. */
static om_arena_allocator os_arena_allocator_now(void)
{
    if (omi_option_values[OM_OPTION_SECURE] != 0 &&
        os_arena_allocator.alloc == os_default_arena_alloc)
        return os_guarded_arena_allocator;
    return os_arena_allocator;
}

void *omi_os_arena_alloc(uintptr_t kind, om_arena_allocator *made_by)
{
    om_arena_allocator allocator = os_arena_allocator_now();
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
    if (omi_addrmap_set((uintptr_t)arena, OMI_ARENA_SIZE, (uintptr_t)arena | kind) != 0) {
        allocator.free(allocator.ctx, arena, OMI_ARENA_SIZE);
        return NULL;
    }
    *made_by = allocator;
    return arena;
}

void omi_os_arena_free(void *arena, om_arena_allocator made_by)
{
    omi_addrmap_clear((uintptr_t)arena, OMI_ARENA_SIZE);
    omi_asan_unpoison(arena, OMI_ARENA_SIZE);
    made_by.free(made_by.ctx, arena, OMI_ARENA_SIZE);
}

void omi_os_purge(void *addr, size_t size)
{
    if (size != 0)
        madvise(addr, size, MADV_DONTNEED);
}

void omi_os_random(void *out, size_t size)
{
    char *at = out;
    while (size > 0) {
        ssize_t got = getrandom(at, size, GRND_NONBLOCK);
        if (got <= 0)
            break;
        at += got;
        size -= (size_t)got;
    }
    if (size == 0)
        return;
    /* No kernel generator (or not seeded yet): the clock and addresses,
     * mixed by splitmix64. Weak, but never a fixed secret. */
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    uint64_t state = (uint64_t)now.tv_nsec ^ ((uint64_t)now.tv_sec << 30) ^ (uintptr_t)out ^
                     (uintptr_t)&now;
    for (; size > 0; size--) {
        uint64_t z = (state += UINT64_C(0x9E3779B97F4A7C15));
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        *at++ = (char)(z ^ (z >> 31));
    }
}
