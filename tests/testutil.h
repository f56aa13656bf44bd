/*
 * testutil.h — small helpers the test programs share. check.h stays the
 * harness (CHECK, check_report, check_run_child); this header includes it.
 *
 * Everything is a static inline function, so that a test pays only for what
 * it calls. Where the tests differ (seeds, pattern formulas), the helper
 * takes the difference as an argument and each test keeps its own value, so
 * that its deterministic sequences stay as they were.
 *
 *   KB, MB                      1 << 10 and 1 << 20 as size_t.
 *   tu_rng, tu_rng_next(r)      xorshift64*; each test owns a tu_rng with its
 *                               own seed ({seed} or r.state = seed).
 *   tu_shuffle(r, items, n)     Fisher–Yates shuffle of a pointer array,
 *                               drawing from r.
 *   tu_pattern                  a byte pattern, byte i of seed s being
 *                               s * seed_mul + i * index_mul + (i >> shift) + add
 *                               (truncated to a byte); each test keeps its own
 *                               constants.
 *   tu_pattern_byte(pat, s, i)  that byte.
 *   tu_fill_pattern(pat, p, n, s), tu_has_pattern(pat, p, n, s)
 *                               write / check bytes [0, n) of p.
 *   tu_fill_pattern_range(pat, p, from, to, s),
 *   tu_has_pattern_range(pat, p, from, to, stride, s)
 *                               the same over [from, to); the check reads
 *                               every stride-th byte and the last one.
 *   tu_is_zero(p, n)            1 if the n bytes at p are all zero.
 *   tu_is_aligned(p)            1 if p is OM_ALIGNMENT-aligned.
 *   tu_get_stats(h)             om_heap_get_stats of h (NULL = default heap)
 *                               as a value, into a struct poisoned with 0xff,
 *                               and one CHECK that the call succeeded.
 *   tu_small_class_size(n)      the pool block size of a request of n bytes
 *                               (0..OM_SMALL_SIZE_MAX; 0 gets the first class).
 *   tu_small_class_index(n)     its index in om_heap_stats.classes.
 *   tu_medium_class_bytes(c)    the size of medium class c.
 *   tu_medium_class_size(n)     the medium class a request of n bytes gets
 *                               (OM_SMALL_SIZE_MAX < n ≤ OM_MEDIUM_SIZE_MAX),
 *                               0 above the medium tier.
 *   tu_fresh_usable(n)          the usable size of a fresh unaligned block of n
 *                               bytes, or 0 for a large request (bounded
 *                               below only).
 *   tu_mapped_part(growth)      the part of an RSS growth that objmem's own
 *                               mappings account for (under ASan 1/9 of an
 *                               arena growth is shadow memory).
 *   tu_count_occurrences(t, w)  how often w occurs in t (overlaps count).
 *   tu_mem_*, tu_obj_*, tu_raw_* malloc/calloc/realloc of a domain as plain
 *                               functions, for tables of function pointers.
 *   tu_domain_calls, tu_all_domains
 *                               the calls of each domain, indexed by om_domain.
 */
#ifndef OM_TESTS_TESTUTIL_H
#define OM_TESTS_TESTUTIL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "objmem.h"

#define KB ((size_t)1 << 10)
#define MB ((size_t)1 << 20)

/* ---- Random numbers ------------------------------------------------------ */

typedef struct tu_rng {
    uint64_t state;
} tu_rng;

/* xorshift64*: deterministic, so that failures repeat. */
static inline uint64_t tu_rng_next(tu_rng *r)
{
    r->state ^= r->state >> 12;
    r->state ^= r->state << 25;
    r->state ^= r->state >> 27;
    return r->state * 0x2545f4914f6cdd1dULL;
}

static inline void tu_shuffle(tu_rng *r, void **items, size_t count)
{
    for (size_t i = count; i > 1; i--) {
        size_t j = (size_t)(tu_rng_next(r) % i);
        void *t = items[i - 1];
        items[i - 1] = items[j];
        items[j] = t;
    }
}

/* ---- Byte patterns ------------------------------------------------------- */

typedef struct tu_pattern {
    unsigned seed_mul;
    unsigned index_mul;
    unsigned shift;
    unsigned add;
} tu_pattern;

static inline unsigned char tu_pattern_byte(const tu_pattern *pat, unsigned seed, size_t i)
{
    return (unsigned char)(seed * pat->seed_mul + i * pat->index_mul + (i >> pat->shift) +
                           pat->add);
}

static inline void tu_fill_pattern_range(const tu_pattern *pat, void *ptr, size_t from,
                                         size_t to, unsigned seed)
{
    /* tu_pattern_byte written out: the tests fill megabytes, also in
     * unoptimised sanitizer builds, and some of them are timing-sensitive
     * (purge delays). Only the low byte counts, so the seed term can be
     * summed first. */
    unsigned char *p = ptr;
    const unsigned base = seed * pat->seed_mul + pat->add, shift = pat->shift;
    const size_t index_mul = pat->index_mul;
    for (size_t i = from; i < to; i++)
        p[i] = (unsigned char)(base + i * index_mul + (i >> shift));
}

static inline int tu_has_pattern_range(const tu_pattern *pat, const void *ptr, size_t from,
                                       size_t to, size_t stride, unsigned seed)
{
    const unsigned char *p = ptr;
    const unsigned base = seed * pat->seed_mul + pat->add, shift = pat->shift;
    const size_t index_mul = pat->index_mul;
    for (size_t i = from; i < to; i += stride)
        if (p[i] != (unsigned char)(base + i * index_mul + (i >> shift)))
            return 0;
    return to == from || p[to - 1] == tu_pattern_byte(pat, seed, to - 1);
}

static inline void tu_fill_pattern(const tu_pattern *pat, void *ptr, size_t size,
                                   unsigned seed)
{
    tu_fill_pattern_range(pat, ptr, 0, size, seed);
}

static inline int tu_has_pattern(const tu_pattern *pat, const void *ptr, size_t size,
                                 unsigned seed)
{
    return tu_has_pattern_range(pat, ptr, 0, size, 1, seed);
}

/* ---- Blocks -------------------------------------------------------------- */

static inline int tu_is_zero(const void *ptr, size_t size)
{
    const unsigned char *p = ptr;
    for (size_t i = 0; i < size; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

static inline int tu_is_aligned(const void *ptr)
{
    return ((uintptr_t)ptr & (OM_ALIGNMENT - 1)) == 0;
}

/* ---- Stats and size classes ---------------------------------------------- */

static inline om_heap_stats tu_get_stats(const om_heap *h)
{
    om_heap_stats st;
    memset(&st, 0xff, sizeof st);
    CHECK(om_heap_get_stats(h, &st) == 0);
    return st;
}

/* An arena allocator that wraps the one installed before it and counts
 * the arenas passing through, atomically (runtimes map arenas from several
 * threads). tu_arena_counter_install puts it in place: 0, or -1. */
typedef struct tu_arena_counter {
    om_arena_allocator inner;        /* the allocator it forwards to */
    atomic_size_t allocs, frees;     /* arenas mapped / unmapped through it */
} tu_arena_counter;

static inline void *tu_counter_alloc(void *ctx, size_t size)
{
    tu_arena_counter *c = ctx;
    void *p = c->inner.alloc(c->inner.ctx, size);
    if (p != NULL)
        atomic_fetch_add(&c->allocs, 1);
    return p;
}

static inline void tu_counter_free(void *ctx, void *ptr, size_t size)
{
    tu_arena_counter *c = ctx;
    atomic_fetch_add(&c->frees, 1);
    c->inner.free(c->inner.ctx, ptr, size);
}

static inline int tu_arena_counter_install(tu_arena_counter *c)
{
    om_get_arena_allocator(&c->inner);
    atomic_init(&c->allocs, 0);
    atomic_init(&c->frees, 0);
    om_arena_allocator counting = {c, tu_counter_alloc, tu_counter_free};
    return om_set_arena_allocator(&counting);
}

/* Bytes in blocks handed out by the default heap (small, medium, large):
 * what must come back to its baseline when a test frees what it made. */
static inline size_t tu_live_bytes(void)
{
    om_heap_stats st = tu_get_stats(NULL);
    return st.small_used_bytes + st.medium_used_bytes + st.large_bytes;
}

static inline size_t tu_small_class_size(size_t size)
{
    return size ? (size + OM_ALIGNMENT - 1) / OM_ALIGNMENT * OM_ALIGNMENT : OM_ALIGNMENT;
}

static inline size_t tu_small_class_index(size_t size)
{
    return tu_small_class_size(size) / OM_ALIGNMENT - 1;
}

/* objmem.h: 640 B … 256 KiB, four per doubling. */
static inline size_t tu_medium_class_bytes(size_t c)
{
    return (5 + c % 4) << (c / 4 + 7);
}

static inline size_t tu_medium_class_size(size_t size)
{
    for (size_t c = 0; c < OM_MEDIUM_CLASS_COUNT; c++)
        if (tu_medium_class_bytes(c) >= size)
            return tu_medium_class_bytes(c);
    return 0;
}

static inline size_t tu_fresh_usable(size_t size)
{
    if (size <= OM_SMALL_SIZE_MAX)
        return tu_small_class_size(size);
    if (size <= OM_MEDIUM_SIZE_MAX)
        return tu_medium_class_size(size);
    return 0;
}

static inline size_t tu_mapped_part(size_t growth)
{
#ifdef OM_TEST_SANITIZED
    return growth / 9 * 8;
#else
    return growth;
#endif
}

/* ---- Text ---------------------------------------------------------------- */

static inline size_t tu_count_occurrences(const char *text, const char *word)
{
    size_t n = 0;
    for (const char *at = strstr(text, word); at != NULL; at = strstr(at + 1, word))
        n++;
    return n;
}

/* ---- Domain functions as plain function pointers ------------------------- */

static inline void *tu_raw_malloc(size_t size) { return om_raw_malloc(size); }
static inline void *tu_raw_calloc(size_t count, size_t size) { return om_raw_calloc(count, size); }
static inline void *tu_raw_realloc(void *ptr, size_t size) { return om_raw_realloc(ptr, size); }
static inline void *tu_mem_malloc(size_t size) { return om_mem_malloc(size); }
static inline void *tu_mem_calloc(size_t count, size_t size) { return om_mem_calloc(count, size); }
static inline void *tu_mem_realloc(void *ptr, size_t size) { return om_mem_realloc(ptr, size); }
static inline void *tu_obj_malloc(size_t size) { return om_obj_malloc(size); }
static inline void *tu_obj_calloc(size_t count, size_t size) { return om_obj_calloc(count, size); }
static inline void *tu_obj_realloc(void *ptr, size_t size) { return om_obj_realloc(ptr, size); }

/* The calls of one domain, for tests that loop over the three. */
typedef struct tu_domain_calls {
    om_domain domain;
    const char *name;                        /* "raw", "mem", "obj" */
    void *(*malloc_fn)(size_t);
    void *(*calloc_fn)(size_t, size_t);
    void *(*realloc_fn)(void *, size_t);
    void (*free_fn)(void *);
} tu_domain_calls;

static const tu_domain_calls tu_all_domains[OM_DOMAIN_COUNT] = {
    {OM_DOMAIN_RAW, "raw", tu_raw_malloc, tu_raw_calloc, tu_raw_realloc, om_raw_free},
    {OM_DOMAIN_MEM, "mem", tu_mem_malloc, tu_mem_calloc, tu_mem_realloc, om_mem_free},
    {OM_DOMAIN_OBJ, "obj", tu_obj_malloc, tu_obj_calloc, tu_obj_realloc, om_obj_free},
};

#endif
