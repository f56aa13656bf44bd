/*
 * debug.c — the debug hooks (CPython's PYTHONMALLOC=debug), a wrapper.
 *
 * om_setup_debug_hooks() installs, on each of the three domains, an
 * om_allocator that forwards to the one installed before (the "inner"
 * allocator) and surrounds every block with what it needs to catch misuse:
 *
 *   inner block (from the inner allocator, 16-byte aligned)
 *   | debug_header (48 B) | guard 16 B 0xFD | user block: size bytes | guard 16 B 0xFD |
 *                                           ^ the pointer the caller gets
 *
 *   debug_header: size, serial number, domain, state (LIVE or FREED), a
 *   cookie (its own address mixed with a constant, so a pointer that does
 *   not lead to a header is seen), and the links of the list of live blocks.
 *
 * Fresh user memory is filled with 0xCD (calloc zeroes it), freed memory
 * with 0xDD. A freed block is not given back at once: it waits in a FIFO
 * quarantine of the last QUARANTINE_COUNT freed blocks, so that a double
 * free finds it marked FREED, and a write after free is seen when the block
 * leaves the quarantine (the first 64 and last 32 bytes and the guards are
 * checked) or at om_heap_check (every byte).
 *
 * Checks at free and realloc, in order: the inner block is objmem's (for
 * MEM and OBJ the address map answers without touching memory: a foreign or
 * interior pointer gets the ordinary fatal report), the cookie, the state
 * (double free, realloc of a freed block), the domain (freed through
 * another domain), the guard bytes (underflow, overflow: which byte, what
 * it should be). om_heap_check walks the live list (guards) and the
 * quarantine (patterns). Every failure is one report through debug_report
 * (the error, the address, size, domain, serial, a hex dump, and the
 * allocation traceback when tracing recorded one) and abort().
 *
 * A block that the hooks did not make but the heap did (om_heap_malloc, or
 * one allocated before the hooks) is recognised as the start of an objmem
 * block, which a debug block's user pointer never is, and passes through.
 *
 * Each domain has its own live list and quarantine; the RAW domain is
 * thread-safe, so its are under a mutex (MEM and OBJ are serialised by
 * their users). Debug mode trades speed for detail; nothing here is on a
 * non-debug path: the one test outside this file is om_usable_size's look
 * at omi_debug_active.
 *
 * OBJMEM_MALLOC=debug installs the hooks at load time; =malloc routes MEM
 * and OBJ to the system allocator (so valgrind sees every block);
 * =malloc_debug does both; =default changes nothing.
 *
 * Learned from: CPython's Objects/obmalloc.c debug allocator (layout with
 * size, serial and forbidden bytes, the 0xCD/0xDD/0xFD patterns, one report
 * then abort) and SQLite's mem2.c (the list of live blocks, checked on demand).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define CLEAN_BYTE 0xCD
#define DEAD_BYTE 0xDD
#define GUARD_BYTE 0xFD
#define GUARD_SIZE 16
#define QUARANTINE_COUNT 1024
#define COOKIE_KEY ((uintptr_t)0x6F626A6D656D6462ULL)

enum debug_state { STATE_LIVE = 0x4C495645, STATE_FREED = 0x46524545 };

typedef struct debug_header {
    size_t size;                     /* bytes the caller asked for */
    uint64_t serial;                 /* allocation number, from 1 */
    uint32_t domain;                 /* om_domain it was allocated through */
    uint32_t state;                  /* enum debug_state */
    uintptr_t cookie;                /* (uintptr_t)this ^ COOKIE_KEY */
    struct debug_header *next;       /* live list */
    struct debug_header *prev;
} debug_header;

#define PREFIX_SIZE (sizeof(debug_header) + GUARD_SIZE)
_Static_assert(PREFIX_SIZE % OM_ALIGNMENT == 0, "the user block stays 16-byte aligned");
_Static_assert(GUARD_SIZE % OM_ALIGNMENT == 0, "guards keep the alignment");

/* Per domain: its inner allocator, its live blocks and its quarantine.
 * Only the RAW domain is used from several threads, so only its state is
 * locked; MEM and OBJ are serialised by their users (later, the GIL). */
typedef struct debug_domain {
    om_allocator inner;              /* what the hooks forward to */
    om_domain domain;
    bool inner_is_heap;              /* inner is the default heap's allocator */
    bool locked;                     /* take `lock` around the lists (RAW) */
    pthread_mutex_t lock;
    debug_header *live;              /* every live block of the domain */
    debug_header *quarantine[QUARANTINE_COUNT]; /* FIFO ring of freed blocks */
    size_t quarantine_head;          /* next slot to fill (oldest when full) */
    size_t quarantine_count;
} debug_domain;

static debug_domain debug_domains[OM_DOMAIN_COUNT] = {
    {.lock = PTHREAD_MUTEX_INITIALIZER},
    {.lock = PTHREAD_MUTEX_INITIALIZER},
    {.lock = PTHREAD_MUTEX_INITIALIZER},
};
static _Atomic uint64_t debug_serial;

static void debug_lock(debug_domain *d)
{
    if (d->locked)
        pthread_mutex_lock(&d->lock);
}

static void debug_unlock(debug_domain *d)
{
    if (d->locked)
        pthread_mutex_unlock(&d->lock);
}

bool omi_debug_active;

static const char *const domain_names[OM_DOMAIN_COUNT] = {"raw", "mem", "obj"};

static unsigned char *user_of(debug_header *h)
{
    return (unsigned char *)h + PREFIX_SIZE;
}

static debug_header *header_of(const void *p)
{
    return (debug_header *)((uintptr_t)p - PREFIX_SIZE);
}

/* ---- Reports ------------------------------------------------------------------ */

static void hex_dump(const unsigned char *bytes, size_t count)
{
    for (size_t i = 0; i < count; i++)
        fprintf(stderr, "%s%02x", i % 16 == 0 ? "\n    " : " ", bytes[i]);
    fputc('\n', stderr);
}

/* One report: the error and its detail, the block, the bytes around
 * `damaged` (or the start of the block), then abort. */
static _Noreturn OMI_COLD void debug_report(const char *function, debug_header *h,
                                            const char *error, const char *detail,
                                            const unsigned char *damaged)
{
    const unsigned char *user = user_of(h);
    const unsigned char *from = damaged != NULL ? damaged - 8 : user - GUARD_SIZE;
    if (from < user - GUARD_SIZE)
        from = user - GUARD_SIZE;
    fprintf(stderr, "objmem: fatal error: debug hooks: %s in %s(%p)\n", error, function,
            (const void *)user);
    if (detail != NULL)
        fprintf(stderr, "  %s\n", detail);
    fprintf(stderr, "  block of %zu bytes allocated through the %s domain, serial %llu\n",
            h->size, domain_names[h->domain % OM_DOMAIN_COUNT], (unsigned long long)h->serial);
    fprintf(stderr, "  bytes from %p:", (const void *)from);
    size_t span = (size_t)(user + h->size + GUARD_SIZE - from);
    hex_dump(from, span < 48 ? span : 48);
    omi_trace_print_block(stderr, user, h->size, h);
    fflush(stderr);
    abort();
}

/* The first byte in [p, p + n) that is not `byte`, or NULL. Compares
 * eight bytes at a time; the byte loop runs only to pin down a mismatch. */
static unsigned char *first_unlike(unsigned char *p, size_t n, unsigned char byte)
{
    uint64_t word = 0x0101010101010101ULL * byte;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t got;
        memcpy(&got, p + i, 8);
        if (got != word)
            break;
    }
    for (; i < n; i++)
        if (p[i] != byte)
            return p + i;
    return NULL;
}

/* The guards of a block; a damaged byte is reported. */
static void debug_check_guards(const char *function, debug_header *h)
{
    unsigned char *user = user_of(h);
    char detail[128];
    unsigned char *before = user - GUARD_SIZE;
    if (first_unlike(before, GUARD_SIZE, GUARD_BYTE) != NULL) {
        unsigned char *b = user - 1;   /* report the damaged byte nearest the block */
        while (*b == GUARD_BYTE)
            b--;
        snprintf(detail, sizeof detail, "byte %zu before the block is 0x%02x, expected 0x%02x",
                 (size_t)(user - b), *b, GUARD_BYTE);
        debug_report(function, h, "buffer underflow", detail, b);
    }
    unsigned char *b = first_unlike(user + h->size, GUARD_SIZE, GUARD_BYTE);
    if (b != NULL) {
        snprintf(detail, sizeof detail, "byte %zu after the block is 0x%02x, expected 0x%02x",
                 (size_t)(b - user - h->size), *b, GUARD_BYTE);
        debug_report(function, h, "buffer overflow", detail, b);
    }
}

/* A freed block still reads DEAD_BYTE: everywhere when `whole`, else in its
 * first 64 and last 32 bytes (where stale pointers most often write), which
 * keeps the eviction from the quarantine cheap; om_heap_check reads it all. */
static void debug_check_dead(const char *function, debug_header *h, bool whole)
{
    unsigned char *user = user_of(h);
    unsigned char *b;
    if (whole || h->size <= 96) {
        b = first_unlike(user, h->size, DEAD_BYTE);
    } else {
        b = first_unlike(user, 64, DEAD_BYTE);
        if (b == NULL)
            b = first_unlike(user + h->size - 32, 32, DEAD_BYTE);
    }
    if (b != NULL) {
        char detail[128];
        snprintf(detail, sizeof detail, "byte %zu of the freed block is 0x%02x, expected 0x%02x",
                 (size_t)(b - user), *b, DEAD_BYTE);
        debug_report(function, h, "write after free", detail, b);
    }
    debug_check_guards(function, h);
}

/* ---- Blocks --------------------------------------------------------------------- */

/* The header of p, after checking that p is a block the hooks handed out;
 * the state is not checked here. */
static debug_header *debug_header_checked(const char *function, const void *p,
                                          const debug_domain *d)
{
    debug_header *h = header_of(p);
    /* Inside objmem's memory the address map answers without a read; a
     * pointer outside it may still be a RAW block freed through the wrong
     * domain, which its header (read, as the RAW domain always does) tells. */
    if (d->inner_is_heap && !omi_is_block_start(h) &&
        (omi_addrmap_lookup(h) != 0 || !omi_asan_readable(h, sizeof *h) ||
         h->cookie != ((uintptr_t)h ^ COOKIE_KEY)))
        omi_invalid_pointer(function, p, "not the start of a block of the debug hooks "
                            "(no objmem block 64 bytes before it)");
    if (h->cookie != ((uintptr_t)h ^ COOKIE_KEY))
        omi_invalid_pointer(function, p, "no debug-hooks header before it: not a block of "
                            "om_mem_*/om_obj_*/om_raw_* with the debug hooks on");
    return h;
}

static void live_link(debug_domain *d, debug_header *h)
{
    h->prev = NULL;
    h->next = d->live;
    if (h->next != NULL)
        h->next->prev = h;
    d->live = h;
}

static void live_unlink(debug_domain *d, debug_header *h)
{
    if (h->prev != NULL)
        h->prev->next = h->next;
    else
        d->live = h->next;
    if (h->next != NULL)
        h->next->prev = h->prev;
}

static void *debug_malloc(void *ctx, size_t size)
{
    debug_domain *d = ctx;
    if (size > PTRDIFF_MAX - PREFIX_SIZE - GUARD_SIZE)
        return omi_out_of_memory(size);
    debug_header *h = d->inner.malloc(d->inner.ctx, PREFIX_SIZE + size + GUARD_SIZE);
    if (h == NULL)
        return NULL;
    h->size = size;
    h->domain = (uint32_t)d->domain;
    h->state = STATE_LIVE;
    h->cookie = (uintptr_t)h ^ COOKIE_KEY;
    unsigned char *user = user_of(h);
    memset(user - GUARD_SIZE, GUARD_BYTE, GUARD_SIZE);
    memset(user, CLEAN_BYTE, size);
    memset(user + size, GUARD_BYTE, GUARD_SIZE);
    h->serial = atomic_fetch_add(&debug_serial, 1) + 1;
    debug_lock(d);
    live_link(d, h);
    debug_unlock(d);
    return user;
}

static void *debug_calloc(void *ctx, size_t count, size_t size)
{
    size_t total;
    if (!omi_mul_size(count, size, &total))
        return omi_calloc_overflow(count, size);
    void *p = debug_malloc(ctx, total);
    if (p != NULL)
        memset(p, 0, total);
    return p;
}

/* Validates p for a free or a realloc through domain d: state, domain,
 * guards. `verb` names the call in the wrong-domain report. */
static debug_header *debug_validate(const char *function, debug_domain *d, void *p,
                                    const char *freed_error)
{
    debug_header *h = debug_header_checked(function, p, d);
    if (h->state != STATE_LIVE)
        debug_report(function, h, freed_error, NULL, NULL);
    if (h->domain != (uint32_t)d->domain) {
        char error[96];
        snprintf(error, sizeof error, "block allocated with om_%s_malloc freed with om_%s_free",
                 domain_names[h->domain % OM_DOMAIN_COUNT], domain_names[d->domain]);
        debug_report(function, h, error, NULL, NULL);
    }
    debug_check_guards(function, h);
    return h;
}

/* Gives the oldest quarantined block back to the inner allocator, after
 * checking that nothing wrote to it. Called with the domain locked. */
static void quarantine_evict_oldest(debug_domain *d)
{
    size_t oldest = (d->quarantine_head + QUARANTINE_COUNT - d->quarantine_count) %
                    QUARANTINE_COUNT;
    debug_header *h = d->quarantine[oldest];
    d->quarantine_count--;
    debug_check_dead("the debug hooks' quarantine", h, false);
    h->cookie = 0;
    d->inner.free(d->inner.ctx, h);
}

static void debug_free_checked(debug_domain *d, debug_header *h)
{
    memset(user_of(h), DEAD_BYTE, h->size);
    debug_lock(d);
    h->state = STATE_FREED;
    live_unlink(d, h);
    if (d->quarantine_count == QUARANTINE_COUNT)
        quarantine_evict_oldest(d);
    d->quarantine[d->quarantine_head] = h;
    d->quarantine_head = (d->quarantine_head + 1) % QUARANTINE_COUNT;
    d->quarantine_count++;
    debug_unlock(d);
}

static const char *free_name(om_domain domain)
{
    static const char *const names[OM_DOMAIN_COUNT] = {"om_raw_free", "om_mem_free", "om_obj_free"};
    return names[domain];
}

static const char *realloc_name(om_domain domain)
{
    static const char *const names[OM_DOMAIN_COUNT] = {"om_raw_realloc", "om_mem_realloc",
                                                       "om_obj_realloc"};
    return names[domain];
}

/* A block of the heap that the hooks did not make (om_heap_malloc, or
 * allocated before they were installed) is the start of an objmem block;
 * the user pointer of a debug block never is (it lies 64 bytes inside one). */
static bool debug_is_plain_block(const debug_domain *d, const void *p)
{
    return d->inner_is_heap && omi_is_block_start(p);
}

static void debug_free(void *ctx, void *p)
{
    debug_domain *d = ctx;
    if (p == NULL)
        return;
    if (debug_is_plain_block(d, p)) {
        d->inner.free(d->inner.ctx, p);
        return;
    }
    debug_free_checked(d, debug_validate(free_name(d->domain), d, p, "double free"));
}

static void *debug_realloc(void *ctx, void *p, size_t size)
{
    debug_domain *d = ctx;
    if (p == NULL)
        return debug_malloc(ctx, size);
    if (debug_is_plain_block(d, p))
        return d->inner.realloc(d->inner.ctx, p, size);
    debug_header *h = debug_validate(realloc_name(d->domain), d, p, "realloc of a freed block");
    void *moved = debug_malloc(ctx, size);
    if (moved == NULL)
        return NULL;
    memcpy(moved, p, h->size < size ? h->size : size);
    debug_free_checked(d, h);
    return moved;
}

/* ---- Entry points ---------------------------------------------------------------- */

int om_setup_debug_hooks(void)
{
    if (omi_debug_active)
        return 0;
    for (int d = 0; d < OM_DOMAIN_COUNT; d++) {
        debug_domain *dd = &debug_domains[d];
        dd->domain = (om_domain)d;
        dd->locked = d == OM_DOMAIN_RAW;
        om_get_allocator((om_domain)d, &dd->inner);
        dd->inner_is_heap = dd->inner.ctx == om_heap_default();
        om_allocator hooks = {dd, debug_malloc, debug_calloc, debug_realloc, debug_free};
        om_set_allocator((om_domain)d, &hooks);
    }
    omi_debug_active = true;
    return 0;
}

size_t omi_debug_usable_size(const void *p)
{
    debug_header *h = header_of(p);
    if (h->cookie != ((uintptr_t)h ^ COOKIE_KEY))
        omi_invalid_pointer("om_usable_size", p, "no debug-hooks header before it");
    if (h->state != STATE_LIVE)
        debug_report("om_usable_size", h, "use of a freed block", NULL, NULL);
    return h->size;
}

void omi_debug_check(void)
{
    for (int i = 0; i < OM_DOMAIN_COUNT; i++) {
        debug_domain *d = &debug_domains[i];
        debug_lock(d);
        for (debug_header *h = d->live; h != NULL; h = h->next)
            debug_check_guards("om_heap_check", h);
        for (size_t k = 0; k < d->quarantine_count; k++) {
            size_t slot = (d->quarantine_head + QUARANTINE_COUNT - 1 - k) % QUARANTINE_COUNT;
            debug_check_dead("om_heap_check", d->quarantine[slot], true);
        }
        debug_unlock(d);
    }
}

/* OBJMEM_MALLOC=malloc: MEM and OBJ become the RAW domain's allocator. */
static void debug_route_to_system(void)
{
    om_allocator raw;
    om_get_allocator(OM_DOMAIN_RAW, &raw);
    om_set_allocator(OM_DOMAIN_MEM, &raw);
    om_set_allocator(OM_DOMAIN_OBJ, &raw);
}

void omi_debug_apply_environment(void)
{
    static bool applied;
    if (applied)
        return;
    applied = true;
    const char *mode = getenv("OBJMEM_MALLOC");
    if (mode == NULL || *mode == '\0' || strcmp(mode, "default") == 0)
        return;
    if (strcmp(mode, "malloc") == 0 || strcmp(mode, "malloc_debug") == 0)
        debug_route_to_system();
    if (strcmp(mode, "debug") == 0 || strcmp(mode, "malloc_debug") == 0)
        om_setup_debug_hooks();
    else if (strcmp(mode, "malloc") != 0)
        fprintf(stderr, "objmem: ignoring OBJMEM_MALLOC=%s (expected default, debug, malloc "
                        "or malloc_debug)\n", mode);
}

__attribute__((constructor)) static void debug_read_environment(void)
{
    omi_debug_apply_environment();
}
