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
 * Cost (a malloc+free pair of 8-512 B takes about 5.5x the time of the
 * pair without the hooks; bench/RESULTS.md run 8): each byte check has a fast test that
 * only answers "intact" (16 bytes a step, no branch per step) and a cold
 * path that finds the damaged byte for the report; a block in a pool is
 * validated with one address-map lookup (debug_pool_header), the general
 * path taking every other pointer; each push into the quarantine
 * prefetches what the eviction a few frees later will read, since those
 * bytes were last touched a thousand frees ago; and the helpers of the free
 * path are `static inline`, which lets the compiler fold them into
 * debug_free_checked and debug_lookup instead of calling each.
 *
 * A block that the hooks did not make but the heap did (om_heap_malloc, or
 * one allocated before the hooks) is recognised as the start of an objmem
 * block, which a debug block's user pointer never is, and passes through.
 *
 * Lists: the RAW domain's live list and quarantine are global, under a
 * mutex (RAW is used from any thread with no runtime). MEM and OBJ blocks
 * lie in a runtime's heap, so their lists are per runtime (struct
 * omi_debug_lists, hung off the runtime, made at its first hooked
 * allocation, freed with it), serialised by its GIL: a freed block never
 * waits in a quarantine that another runtime's thread evicts, and deleting
 * a runtime leaves no list naming its memory. A MEM or OBJ block freed on
 * a thread of another runtime is reported ("block of another runtime").
 *
 * Thread rules (below, "Thread rules"): with the hooks on, MEM and OBJ
 * calls, reference changes and container stores check the calling
 * thread's GIL and the runtime of the objects they touch.
 *
 * Debug mode trades speed for detail; nothing here is on a non-debug path
 * but the out-of-line checks' one load of omi_debug_active (om_usable_size,
 * om_dealloc, the stores of list, tuple and dict).
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
#define QUARANTINE_PREFETCH 8        /* evictions ahead whose bytes are fetched */
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

/* A freed block waiting in the quarantine. The size is a copy of the
 * header's, kept here so that the block's bytes can be prefetched without
 * reading its header first. */
typedef struct quarantined {
    debug_header *block;
    size_t size;                     /* == block->size when it was freed */
} quarantined;

/* The live blocks and the quarantine of one domain in one runtime (or of
 * the RAW domain, which has no runtime). */
typedef struct debug_lists {
    debug_header *live;              /* every live block */
    quarantined quarantine[QUARANTINE_COUNT]; /* FIFO ring of freed blocks */
    size_t quarantine_head;          /* next slot to fill (oldest when full) */
    size_t quarantine_count;
} debug_lists;

/* A runtime's lists for MEM and OBJ: made (RAW) at the runtime's first
 * allocation through the hooks, hung off the runtime, freed with it. The
 * blocks they list lie in the runtime's heap and die with it, so no list
 * ever names another runtime's memory; the runtime's GIL serialises them. */
struct omi_debug_lists {
    debug_lists domain[2];           /* [OM_DOMAIN_MEM - 1], [OM_DOMAIN_OBJ - 1] */
};

/* Per domain: its inner allocator; for RAW its lists too, under `lock`
 * (RAW is used from any thread). */
typedef struct debug_domain {
    om_allocator inner;              /* what the hooks forward to */
    om_domain domain;
    bool inner_is_heap;              /* inner is the default heap's allocator */
    bool locked;                     /* take `lock` around the lists (RAW) */
    pthread_mutex_t lock;
    debug_lists raw_lists;           /* RAW's lists (MEM and OBJ: per runtime) */
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

/* 16 bytes, compared at once (an SSE2 or NEON register). */
typedef uint64_t chunk16 __attribute__((vector_size(16)));

/* true if all of [p, p + n) is `byte`: 16 bytes a step (the last step
 * overlaps when n is not a multiple of 16), the differences folded together
 * with no branch per step. The hot checks use it: they need "intact" only,
 * and leave finding *which* byte to the report. */
static inline bool span_is(const unsigned char *p, size_t n, unsigned char byte)
{
    if (n < 16) {
        unsigned diff = 0;
        for (size_t i = 0; i < n; i++)
            diff |= p[i] ^ byte;
        return diff == 0;
    }
    uint64_t word = 0x0101010101010101ULL * byte;
    chunk16 pattern = {word, word}, diff = {0, 0}, got;
    for (size_t i = 0; i + 16 <= n; i += 16) {
        memcpy(&got, p + i, 16);
        diff |= got ^ pattern;
    }
    if (n % 16 != 0) {
        memcpy(&got, p + n - 16, 16);
        diff |= got ^ pattern;
    }
    return (diff[0] | diff[1]) == 0;
}

static inline bool guards_intact(const debug_header *h)
{
    const unsigned char *user = (const unsigned char *)h + PREFIX_SIZE;
    return (int)span_is(user - GUARD_SIZE, GUARD_SIZE, GUARD_BYTE) &   /* both, no branch */
           (int)span_is(user + h->size, GUARD_SIZE, GUARD_BYTE);
}

/* The bytes of a freed block that leaving the quarantine checks still read
 * DEAD_BYTE: all of them up to 96, else the first 64 and the last 32 (where
 * stale pointers most often write); om_heap_check reads every byte. */
static inline bool dead_ends_intact(const debug_header *h)
{
    const unsigned char *user = (const unsigned char *)h + PREFIX_SIZE;
    if (h->size <= 96)
        return span_is(user, h->size, DEAD_BYTE);
    return (int)span_is(user, 64, DEAD_BYTE) & (int)span_is(user + h->size - 32, 32, DEAD_BYTE);
}

/* Finds and reports the damaged guard byte of h, if there is one. */
static OMI_COLD void report_guards(const char *function, debug_header *h)
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

/* The guards of a block; a damaged byte is reported. */
static void debug_check_guards(const char *function, debug_header *h)
{
    if (omi_unlikely(!guards_intact(h)))
        report_guards(function, h);
}

/* Finds and reports the first byte of the freed block h that is not
 * DEAD_BYTE (in the whole block when `whole`, else where dead_ends_intact
 * looks), then a damaged guard byte. */
static OMI_COLD void report_dead(const char *function, debug_header *h, bool whole)
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
    report_guards(function, h);
}

/* Every byte of a freed block still reads DEAD_BYTE and its guards are
 * intact (om_heap_check); a damaged byte is reported. */
static void debug_check_dead(const char *function, debug_header *h)
{
    if (omi_unlikely(!span_is(user_of(h), h->size, DEAD_BYTE) || !guards_intact(h)))
        report_dead(function, h, true);
}

/* ---- Thread rules ------------------------------------------------------------- */

/* The runtime rules, checked while the hooks are on (CPython's
 * _PyMem_DebugCheckGIL, extended to objects):
 *   MEM and OBJ calls      the calling thread holds its runtime's GIL, or
 *                          is not attached yet (the call attaches it);
 *   reference changes      the thread is attached and holds the GIL, and
 *                          the object lies in its runtime's heap;
 *   container stores       the container and the value both lie in the
 *                          calling thread's runtime's heap.
 * An object that objmem's memory does not hold (a static immortal such as
 * om_none, or one from OBJMEM_MALLOC=malloc_debug's system allocator) has
 * no runtime and passes. Each violation is one report naming the call. */

static OMI_COLD _Noreturn void report_without_gil(const char *function)
{
    const om_thread *ts = omi_thread.thread;
    omi_fatal("%s: called by a thread that does not hold its runtime's GIL\n"
              "  %s\n"
              "  (MEM, OBJ, object and reference-count calls need the GIL of the calling\n"
              "  thread's runtime: om_attach, or om_restore_thread / OM_END_ALLOW_THREADS)",
              function,
              ts == NULL ? "the thread is not attached to any runtime"
                         : "the thread is attached but released the GIL (om_save_thread)");
}

static OMI_COLD _Noreturn void report_foreign(const char *function, const om_object *o,
                                              const char *what, const om_heap *owner)
{
    omi_fatal("%s: %s, a '%s' object at %p, belongs to another runtime\n"
              "  its heap is %p, the calling thread's runtime's heap is %p\n"
              "  (objects must not cross runtimes: each runtime frees its own with its heap)",
              function, what, o->ob_type->name, (const void *)o, (const void *)owner,
              (const void *)omi_thread.heap);
}

static void check_gil_held(const char *function)
{
    const om_thread *ts = omi_thread.thread;
    if (ts == NULL || !ts->holds_gil)
        report_without_gil(function);
}

/* o lies in the current runtime's heap, or in no heap of objmem's. */
static void check_object_home(const om_object *o, const char *what, const char *function)
{
    om_heap *owner = omi_heap_of(o);
    if (owner != NULL && owner != omi_thread.heap)
        report_foreign(function, o, what, owner);
}

void omi_debug_check_gil_slow(const char *function)
{
    if (omi_thread.runtime != NULL)
        check_gil_held(function);
}

void omi_debug_check_object_slow(const om_object *o, const char *function)
{
    check_gil_held(function);
    check_object_home(o, "the object", function);
}

void omi_debug_check_store_slow(const om_object *container, const om_object *value,
                                const char *function)
{
    check_gil_held(function);
    check_object_home(container, "the container", function);
    check_object_home(value, "the object stored", function);
}

void om_debug_check_refchange(const om_object *o, const char *function)
{
    if (omi_unlikely(omi_debug_active))
        omi_debug_check_object_slow(o, function);
}

/* MEM and OBJ calls need the GIL (RAW calls do not). */
static inline void debug_check_domain_gil(const debug_domain *d, const char *function)
{
    if (d->domain != OM_DOMAIN_RAW)
        omi_debug_check_gil_slow(function);
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

/* The lists of domain d for the calling thread: RAW's, or those of the
 * thread's runtime (attaching it first: the first-call rule), made now if
 * it has none yet. NULL with OM_ENOMEM when they cannot be made. */
static debug_lists *debug_lists_of(debug_domain *d)
{
    if (d->domain == OM_DOMAIN_RAW)
        return &d->raw_lists;
    struct omi_debug_lists **slot = omi_runtime_debug_lists(omi_bound()->runtime);
    if (omi_unlikely(*slot == NULL) && (*slot = om_raw_calloc(1, sizeof **slot)) == NULL)
        return NULL;
    return &(*slot)->domain[d->domain - 1];
}

/* The lists that hold block h, found by a free or a realloc: those of the
 * calling thread's runtime, which made h (debug_validate checked that h
 * lies in its heap). A runtime that never allocated through the hooks
 * holds no debug block: h came from another runtime's system allocator. */
static debug_lists *debug_lists_holding(debug_domain *d, const char *function,
                                        debug_header *h)
{
    if (d->domain == OM_DOMAIN_RAW)
        return &d->raw_lists;
    struct omi_debug_lists *lists = *omi_runtime_debug_lists(omi_bound()->runtime);
    if (lists == NULL)
        debug_report(function, h, "block of another runtime", "the calling thread's "
                     "runtime never allocated it: free it where it was allocated", NULL);
    return &lists->domain[d->domain - 1];
}

void omi_debug_lists_release(struct omi_debug_lists *lists)
{
    om_raw_free(lists);
}

static inline void live_link(debug_lists *l, debug_header *h)
{
    h->prev = NULL;
    h->next = l->live;
    if (h->next != NULL)
        h->next->prev = h;
    l->live = h;
}

static inline void live_unlink(debug_lists *l, debug_header *h)
{
    if (h->prev != NULL)
        h->prev->next = h->next;
    else
        l->live = h->next;
    if (h->next != NULL)
        h->next->prev = h->prev;
}

static const char *malloc_name(om_domain domain)
{
    static const char *const names[OM_DOMAIN_COUNT] = {"om_raw_malloc", "om_mem_malloc",
                                                       "om_obj_malloc"};
    return names[domain];
}

static const char *calloc_name(om_domain domain)
{
    static const char *const names[OM_DOMAIN_COUNT] = {"om_raw_calloc", "om_mem_calloc",
                                                       "om_obj_calloc"};
    return names[domain];
}

/* A new debug block of size bytes (the callers checked the thread rule). */
static void *debug_new_block(debug_domain *d, size_t size)
{
    if (size > PTRDIFF_MAX - PREFIX_SIZE - GUARD_SIZE)
        return omi_out_of_memory(size);
    debug_header *h = d->inner.malloc(d->inner.ctx, PREFIX_SIZE + size + GUARD_SIZE);
    if (h == NULL)
        return NULL;
    debug_lists *lists = debug_lists_of(d);
    if (lists == NULL) {
        d->inner.free(d->inner.ctx, h);
        return NULL;
    }
    /* The serial first: a locked add waits for earlier stores to drain,
     * and after the fills below there would be hundreds of bytes of them. */
    h->serial = atomic_fetch_add(&debug_serial, 1) + 1;
    h->size = size;
    h->domain = (uint32_t)d->domain;
    h->state = STATE_LIVE;
    h->cookie = (uintptr_t)h ^ COOKIE_KEY;
    unsigned char *user = user_of(h);
    memset(user - GUARD_SIZE, GUARD_BYTE, GUARD_SIZE);
    memset(user, CLEAN_BYTE, size);
    memset(user + size, GUARD_BYTE, GUARD_SIZE);
    debug_lock(d);
    live_link(lists, h);
    debug_unlock(d);
    return user;
}

static void *debug_malloc(void *ctx, size_t size)
{
    debug_domain *d = ctx;
    debug_check_domain_gil(d, malloc_name(d->domain));
    return debug_new_block(d, size);
}

static void *debug_calloc(void *ctx, size_t count, size_t size)
{
    debug_domain *d = ctx;
    debug_check_domain_gil(d, calloc_name(d->domain));
    size_t total;
    if (!omi_mul_size(count, size, &total))
        return omi_calloc_overflow(count, size);
    void *p = debug_new_block(d, total);
    if (p != NULL)
        memset(p, 0, total);
    return p;
}

/* The header of p when the address map alone shows p to be a block of the
 * hooks in a pool of the heap: h = p - PREFIX_SIZE starts a pool block, p
 * does not (so p is no plain block), and h's cookie matches. NULL when this
 * cannot tell (other tiers, RAW, plain, foreign or interior pointers): the
 * general path then decides, giving the same answer for the cases that
 * pass here. One map lookup instead of the general path's two; no call. */
static inline debug_header *debug_pool_header(const debug_domain *d, const void *p)
{
    debug_header *h = header_of(p);
    if (!d->inner_is_heap || (((uintptr_t)h ^ (uintptr_t)p) >> OM_POOL_SHIFT) != 0 ||
        (omi_addrmap_lookup(h) & OMI_OWNER_KIND_MASK) != OMI_OWNER_SMALL)
        return NULL;
    const omi_pool *pool = omi_pool_of(h);  /* p's too: the same pool-sized slot */
    if (!omi_pool_block_is_valid(pool, h) || omi_pool_block_is_valid(pool, p) ||
        h->cookie != ((uintptr_t)h ^ COOKIE_KEY))
        return NULL;
    return h;
}

/* A block of the heap that the hooks did not make (om_heap_malloc, or
 * allocated before they were installed) is the start of an objmem block;
 * the user pointer of a debug block never is (it lies 64 bytes inside one). */
static bool debug_is_plain_block(const debug_domain *d, const void *p)
{
    return d->inner_is_heap && omi_is_block_start(p);
}

/* The header of p for a free or realloc through d, or NULL when p is a
 * plain block of the heap (which passes through). A pointer that is
 * neither is reported. The state is not checked here. */
static debug_header *debug_lookup(const char *function, const debug_domain *d, const void *p)
{
    debug_header *h = debug_pool_header(d, p);
    if (omi_likely(h != NULL))
        return h;
    if (debug_is_plain_block(d, p))
        return NULL;
    return debug_header_checked(function, p, d);
}

/* Validates h, found by debug_lookup, for a free or a realloc through
 * domain d: state, domain, guards. */
static inline void debug_validate(const char *function, const debug_domain *d, debug_header *h,
                           const char *freed_error)
{
    if (h->state != STATE_LIVE)
        debug_report(function, h, freed_error, NULL, NULL);
    if (h->domain != (uint32_t)d->domain) {
        char error[96];
        snprintf(error, sizeof error, "block allocated with om_%s_malloc freed with om_%s_free",
                 domain_names[h->domain % OM_DOMAIN_COUNT], domain_names[d->domain]);
        debug_report(function, h, error, NULL, NULL);
    }
    if (d->domain != OM_DOMAIN_RAW && d->inner_is_heap && omi_heap_of(h) != omi_current_heap())
        debug_report(function, h, "block of another runtime",
                     "it lies in another runtime's heap: free it on a thread attached to "
                     "that runtime", NULL);
    debug_check_guards(function, h);
}

/* Gives the oldest quarantined block back to the inner allocator, after
 * checking that nothing wrote to it. Called with the domain locked. */
static inline void quarantine_evict_oldest(debug_domain *d, debug_lists *l)
{
    size_t oldest = (l->quarantine_head + QUARANTINE_COUNT - l->quarantine_count) %
                    QUARANTINE_COUNT;
    debug_header *h = l->quarantine[oldest].block;
    l->quarantine_count--;
    if (omi_unlikely(!dead_ends_intact(h) || !guards_intact(h)))
        report_dead("the debug hooks' quarantine", h, false);
    h->cookie = 0;
    d->inner.free(d->inner.ctx, h);
}

/* Puts h at the end of the quarantine, evicting the oldest block when the
 * ring is full, then asks the cache for the bytes that the eviction
 * QUARANTINE_PREFETCH pushes from now will read (header, guards, first 64
 * and last 32 bytes), which have not been touched for a thousand frees.
 * Called with the domain locked. (The prefetches are written here, not in
 * a function of their own, which the compiler finds free of effects and
 * drops.) */
static inline void quarantine_push(debug_domain *d, debug_lists *l, debug_header *h)
{
    if (l->quarantine_count == QUARANTINE_COUNT)
        quarantine_evict_oldest(d, l);
    l->quarantine[l->quarantine_head] = (quarantined){h, h->size};
    l->quarantine_head = (l->quarantine_head + 1) % QUARANTINE_COUNT;
    l->quarantine_count++;
    if (l->quarantine_count == QUARANTINE_COUNT) {
        const quarantined *next = &l->quarantine[(l->quarantine_head + QUARANTINE_PREFETCH - 1) %
                                                 QUARANTINE_COUNT];
        const unsigned char *user = user_of(next->block);
        __builtin_prefetch(next->block);
        __builtin_prefetch(user - 1);
        __builtin_prefetch(user + (next->size < 64 ? next->size : 64) - 1);
        __builtin_prefetch(user + next->size - 32);
        __builtin_prefetch(user + next->size + GUARD_SIZE - 1);
    }
}

static inline void debug_free_checked(debug_domain *d, const char *function, debug_header *h)
{
    debug_lists *lists = debug_lists_holding(d, function, h);
    memset(user_of(h), DEAD_BYTE, h->size);
    debug_lock(d);
    h->state = STATE_FREED;
    live_unlink(lists, h);
    quarantine_push(d, lists, h);
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

static void debug_free(void *ctx, void *p)
{
    debug_domain *d = ctx;
    if (p == NULL)
        return;
    const char *function = free_name(d->domain);
    debug_check_domain_gil(d, function);
    debug_header *h = debug_lookup(function, d, p);
    if (h == NULL) {
        d->inner.free(d->inner.ctx, p);
        return;
    }
    debug_validate(function, d, h, "double free");
    debug_free_checked(d, function, h);
}

static void *debug_realloc(void *ctx, void *p, size_t size)
{
    debug_domain *d = ctx;
    const char *function = realloc_name(d->domain);
    debug_check_domain_gil(d, function);
    if (p == NULL)
        return debug_new_block(d, size);
    debug_header *h = debug_lookup(function, d, p);
    if (h == NULL)
        return d->inner.realloc(d->inner.ctx, p, size);
    debug_validate(function, d, h, "realloc of a freed block");
    void *moved = debug_new_block(d, size);
    if (moved == NULL)
        return NULL;
    memcpy(moved, p, h->size < size ? h->size : size);
    debug_free_checked(d, function, h);
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

static void debug_check_lists(const debug_lists *l)
{
    for (debug_header *h = l->live; h != NULL; h = h->next)
        debug_check_guards("om_heap_check", h);
    for (size_t k = 0; k < l->quarantine_count; k++) {
        size_t slot = (l->quarantine_head + QUARANTINE_COUNT - 1 - k) % QUARANTINE_COUNT;
        debug_check_dead("om_heap_check", l->quarantine[slot].block);
    }
}

void omi_debug_check(const om_heap *h)
{
    if (h == om_heap_default()) {
        debug_domain *raw = &debug_domains[OM_DOMAIN_RAW];
        debug_lock(raw);
        debug_check_lists(&raw->raw_lists);
        debug_unlock(raw);
    }
    om_runtime *rt = omi_thread.runtime != NULL ? omi_thread.runtime : om_runtime_default();
    struct omi_debug_lists *lists = *omi_runtime_debug_lists(rt);
    if (om_runtime_heap(rt) == h && lists != NULL) {
        debug_check_lists(&lists->domain[0]);
        debug_check_lists(&lists->domain[1]);
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
