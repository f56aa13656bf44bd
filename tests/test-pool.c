/*
 * test-pool.c — the small-object pools seen through the domain contract.
 *
 * What objmem.h promises and this program checks, for om_mem_*, om_obj_*
 * and om_heap_* on a private heap:
 *   - every size-class boundary (0, 1, 15, 16, 17, 511, 512, 513): the block
 *     holds at least the request, and a request of at most OM_SMALL_SIZE_MAX
 *     gets exactly its 16-byte class;
 *   - every block is 16-byte aligned and no two live blocks overlap;
 *   - malloc(0) gives distinct, freeable pointers;
 *   - calloc zeroes, also when it reuses a block that was dirtied and freed;
 *     count * size overflow gives NULL, errno ENOMEM and OM_ENOMEM;
 *   - sizes above PTRDIFF_MAX fail with OM_ENOMEM, realloc keeping the block;
 *   - realloc keeps the contents across classes and across the three tiers
 *     (small, medium, large) and back; realloc(NULL, n) allocates;
 *     free(NULL) does nothing;
 *   - usable sizes: a small request gets its 16-byte class, a medium one
 *     (513 B … 256 KiB) exactly its medium class (four per doubling), a
 *     large one at least the request;
 *   - om_heap_get_stats per class on a fresh private heap: block_size,
 *     used_blocks, used_bytes, pools, free_blocks, and the heap totals;
 *     om_heap_trim returns every pool arena and the spare medium arena.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "objmem.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* A domain as a table of functions, so that every check runs for each.     */
/* ------------------------------------------------------------------------ */

typedef struct test_domain {
    const char *name;
    void *(*malloc_fn)(size_t size);
    void *(*calloc_fn)(size_t count, size_t size);
    void *(*realloc_fn)(void *ptr, size_t size);
    void (*free_fn)(void *ptr);
    om_heap *heap; /* heap whose stats the domain changes */
} test_domain;

static om_heap *private_heap;

static void *heap_malloc(size_t size)
{
    return om_heap_malloc(private_heap, size);
}

static void *heap_calloc(size_t count, size_t size)
{
    return om_heap_calloc(private_heap, count, size);
}

static void *heap_realloc(void *ptr, size_t size)
{
    return om_heap_realloc(private_heap, ptr, size);
}

enum { DOMAIN_COUNT = 3 };
static test_domain domains[DOMAIN_COUNT];

static void domains_init(void)
{
    domains[0] = (test_domain){"mem", tu_mem_malloc, tu_mem_calloc, tu_mem_realloc, om_mem_free,
                               NULL};
    domains[1] = (test_domain){"obj", tu_obj_malloc, tu_obj_calloc, tu_obj_realloc, om_obj_free,
                               NULL};
    domains[2] = (test_domain){"heap", heap_malloc, heap_calloc, heap_realloc, om_mem_free,
                               private_heap};
}

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static tu_rng rng = {0x9e3779b97f4a7c15u};
static const tu_pattern byte_pattern = {131, 7, 8, 1};

/* 1 if n is the size of a medium class. */
static int is_medium_class(size_t n)
{
    for (size_t c = 0; c < OM_MEDIUM_CLASS_COUNT; c++)
        if (tu_medium_class_bytes(c) == n)
            return 1;
    return 0;
}

/* Sizes that a compiler must not see as constants (alloc_size warnings). */
static volatile size_t volatile_size_max = SIZE_MAX;
static volatile size_t volatile_ptrdiff_max = (size_t)PTRDIFF_MAX;

typedef struct span {
    uintptr_t begin;
    uintptr_t end;
} span;

static int span_compare(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* 1 if no two spans of the array overlap (sorts it). */
static int spans_disjoint(span *spans, size_t count)
{
    qsort(spans, count, sizeof *spans, span_compare);
    for (size_t i = 1; i < count; i++)
        if (spans[i].begin < spans[i - 1].end)
            return 0;
    return 1;
}

/* Heap-wide invariants that hold in every snapshot. */
static void check_stats_consistent(const om_heap_stats *st)
{
    size_t used_bytes = 0, free_bytes = 0, pools = 0;
    CHECK_EQ_SIZE(st->arena_size, OM_ARENA_SIZE);
    CHECK_EQ_SIZE(st->pool_size, OM_POOL_SIZE);
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++) {
        const om_size_class_stats *cs = &st->classes[c];
        CHECK_EQ_SIZE(cs->block_size, (c + 1) * OM_ALIGNMENT);
        CHECK_EQ_SIZE(cs->used_bytes, cs->used_blocks * cs->block_size);
        if (cs->pools == 0) {
            CHECK_EQ_SIZE(cs->used_blocks, 0);
            CHECK_EQ_SIZE(cs->free_blocks, 0);
        } else {
            /* Every pool of a class holds the same number of blocks. */
            size_t total = cs->used_blocks + cs->free_blocks;
            CHECK_EQ_SIZE(total % cs->pools, 0);
            CHECK(total / cs->pools * cs->block_size <= OM_POOL_SIZE);
            CHECK(total / cs->pools * cs->block_size > OM_POOL_SIZE / 2);
        }
        used_bytes += cs->used_bytes;
        free_bytes += cs->free_blocks * cs->block_size;
        pools += cs->pools;
    }
    CHECK_EQ_SIZE(st->small_used_bytes, used_bytes);
    CHECK_EQ_SIZE(st->small_free_bytes, free_bytes);
    CHECK_EQ_SIZE(st->pools_used, pools);
    CHECK_EQ_SIZE(st->mapped_bytes, st->arenas_current * st->arena_size);
    CHECK_EQ_SIZE(st->arenas_current, st->arenas_allocated - st->arenas_freed);
    CHECK(st->arenas_highwater >= st->arenas_current);
    CHECK(st->arenas_highwater <= st->arenas_allocated);
    CHECK(st->pools_used + st->pools_free <= st->arenas_current * (OM_ARENA_SIZE / OM_POOL_SIZE));
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

static void test_boundaries(const test_domain *d)
{
    static const size_t sizes[] = {0, 1, 15, 16, 17, 31, 32, 33, 255, 256, 257,
                                   496, 497, 511, 512, 513, 639, 640, 641, 1024, 4096,
                                   100000, 262143, 262144, 262145, 1 << 20};
    enum { N = sizeof sizes / sizeof sizes[0] };
    void *blocks[N];
    span spans[N];
    for (size_t i = 0; i < N; i++) {
        size_t size = sizes[i];
        void *p = d->malloc_fn(size);
        blocks[i] = p;
        CHECK(p != NULL);
        if (p == NULL) {
            spans[i] = (span){0, 0};
            continue;
        }
        CHECK(tu_is_aligned(p));
        size_t usable = om_usable_size(p);
        CHECK(usable >= size);
        /* design-pool.md: a request of 0 bytes gets a 16-byte block; a
         * medium request its medium class; a large one at least its size. */
        if (tu_fresh_usable(size) != 0) {
            if (usable != tu_fresh_usable(size))
                fprintf(stderr, "  domain %s, size %zu:\n", d->name, size);
            CHECK_EQ_SIZE(usable, tu_fresh_usable(size));
        }
        /* The whole usable part is writable. */
        tu_fill_pattern(&byte_pattern, p, usable, (unsigned)i);
        spans[i] = (span){(uintptr_t)p, (uintptr_t)p + usable};
    }
    for (size_t i = 0; i < N; i++)
        if (blocks[i])
            CHECK(tu_has_pattern(&byte_pattern, blocks[i], om_usable_size(blocks[i]), (unsigned)i));
    CHECK(spans_disjoint(spans, N));
    for (size_t i = 0; i < N; i++)
        d->free_fn(blocks[i]);
}

/* Every small size on a fresh private heap: exact class, and the class index
 * in the stats is the one the size belongs to. */
static void test_every_small_size(void)
{
    om_heap *h = om_heap_new();
    CHECK(h != NULL);
    if (!h)
        return;
    for (size_t size = 1; size <= OM_SMALL_SIZE_MAX; size++) {
        void *p = om_heap_malloc(h, size);
        CHECK(p != NULL);
        if (!p)
            continue;
        size_t usable = om_usable_size(p);
        if (usable != tu_small_class_size(size)) {
            fprintf(stderr, "  size %zu:\n", size);
            CHECK_EQ_SIZE(usable, tu_small_class_size(size));
        }
        if (size % 16 == 1 || size % 16 == 0) {
            om_heap_stats st = tu_get_stats(h);
            CHECK_EQ_SIZE(st.classes[tu_small_class_index(size)].used_blocks, 1);
            CHECK_EQ_SIZE(st.small_used_bytes, tu_small_class_size(size));
        }
        om_mem_free(p);
    }
    om_heap_stats st = tu_get_stats(h);
    CHECK_EQ_SIZE(st.small_used_bytes, 0);
    check_stats_consistent(&st);
    om_heap_delete(h);
}

static void test_alignment_and_disjoint(const test_domain *d)
{
    enum { COUNT = 20000 };
    void **blocks = malloc(COUNT * sizeof *blocks);
    span *spans = malloc(COUNT * sizeof *spans);
    CHECK(blocks && spans);
    if (!blocks || !spans) {
        free(blocks);
        free(spans);
        return;
    }
    size_t misaligned = 0, failed = 0, small_wrong = 0;
    for (size_t i = 0; i < COUNT; i++) {
        size_t size = (size_t)(tu_rng_next(&rng) % 601);
        void *p = d->malloc_fn(size);
        blocks[i] = p;
        if (!p) {
            failed++;
            spans[i] = (span){0, 0};
            continue;
        }
        if (!tu_is_aligned(p))
            misaligned++;
        size_t usable = om_usable_size(p);
        if (usable < size || (size >= 1 && usable != tu_fresh_usable(size)))
            small_wrong++;
        /* A zero-sized block is still unique: give it one byte of span. */
        spans[i] = (span){(uintptr_t)p, (uintptr_t)p + (size ? size : 1)};
    }
    CHECK_EQ_SIZE(failed, 0);
    CHECK_EQ_SIZE(misaligned, 0);
    CHECK_EQ_SIZE(small_wrong, 0);
    CHECK(spans_disjoint(spans, COUNT));
    /* Free in an order unlike the allocation order. */
    for (size_t i = 0; i < COUNT; i += 2)
        d->free_fn(blocks[i]);
    for (size_t i = 1; i < COUNT; i += 2)
        d->free_fn(blocks[i]);
    free(blocks);
    free(spans);
}

static void test_malloc_zero(const test_domain *d)
{
    enum { COUNT = 1000 };
    void *blocks[COUNT];
    span spans[COUNT];
    size_t nulls = 0;
    for (size_t i = 0; i < COUNT; i++) {
        blocks[i] = d->malloc_fn(0);
        if (!blocks[i])
            nulls++;
        spans[i] = (span){(uintptr_t)blocks[i], (uintptr_t)blocks[i] + 1};
    }
    CHECK_EQ_SIZE(nulls, 0);
    CHECK(spans_disjoint(spans, COUNT));
    size_t misaligned = 0, wrong_usable = 0;
    for (size_t i = 0; i < COUNT; i++) {
        if (!tu_is_aligned(blocks[i]))
            misaligned++;
        if (blocks[i] && om_usable_size(blocks[i]) != OM_ALIGNMENT)
            wrong_usable++;
    }
    CHECK_EQ_SIZE(misaligned, 0);
    CHECK_EQ_SIZE(wrong_usable, 0);
    for (size_t i = 0; i < COUNT; i++)
        d->free_fn(blocks[i]);
    /* realloc(NULL, 0) is malloc(0). */
    void *p = d->realloc_fn(NULL, 0);
    CHECK(p != NULL);
    d->free_fn(p);
}

static void test_calloc(const test_domain *d)
{
    static const size_t sizes[] = {1,   15,   16,    17,     64,     200,
                                   511, 512,  513,   3000,   262144, 300000};
    enum { N = sizeof sizes / sizeof sizes[0], ROUNDS = 64 };
    for (size_t s = 0; s < N; s++) {
        size_t size = sizes[s];
        void *blocks[ROUNDS];
        /* Dirty a set of blocks and free them, so that calloc reuses them. */
        for (size_t r = 0; r < ROUNDS; r++) {
            blocks[r] = d->malloc_fn(size);
            CHECK(blocks[r] != NULL);
            if (blocks[r])
                memset(blocks[r], 0xA5, om_usable_size(blocks[r]));
        }
        for (size_t r = 0; r < ROUNDS; r++)
            d->free_fn(blocks[r]);
        size_t dirty = 0;
        for (size_t r = 0; r < ROUNDS; r++) {
            void *p = d->calloc_fn(1, size);
            CHECK(p != NULL);
            if (!p) {
                blocks[r] = NULL;
                continue;
            }
            CHECK(tu_is_aligned(p));
            CHECK(om_usable_size(p) >= size);
            if (!tu_is_zero(p, size))
                dirty++;
            blocks[r] = p;
        }
        if (dirty)
            fprintf(stderr, "  domain %s calloc(1, %zu): %zu blocks not zeroed\n", d->name,
                    size, dirty);
        CHECK_EQ_SIZE(dirty, 0);
        for (size_t r = 0; r < ROUNDS; r++)
            d->free_fn(blocks[r]);
    }
    /* count * size split several ways. */
    void *p = d->calloc_fn(7, 9);
    CHECK(p && tu_is_zero(p, 63) && om_usable_size(p) >= 63);
    if (p)
        memset(p, 0xff, 63);
    d->free_fn(p);
    p = d->calloc_fn(32, 16);
    CHECK(p && tu_is_zero(p, 512) && om_usable_size(p) == 512);
    d->free_fn(p);

    /* Overflow of count * size. */
    size_t max = volatile_size_max;
    const size_t overflows[][2] = {
        {max, 2},
        {2, max},
        {(size_t)1 << 32, (size_t)1 << 32},
        {max / 16 + 1, 16},
        {max, max},
    };
    for (size_t i = 0; i < sizeof overflows / sizeof overflows[0]; i++) {
        om_clear_error();
        errno = 0;
        void *q = d->calloc_fn(overflows[i][0], overflows[i][1]);
        CHECK(q == NULL);
        CHECK(errno == ENOMEM);
        CHECK(om_last_error() == OM_ENOMEM);
        CHECK(om_last_error_message()[0] != '\0');
        d->free_fn(q);
    }
    /* No overflow, but the product is above PTRDIFF_MAX. */
    size_t half = volatile_ptrdiff_max / 2 + 1;
    om_clear_error();
    void *q = d->calloc_fn(half, 2);
    CHECK(q == NULL);
    CHECK(om_last_error() == OM_ENOMEM);
    d->free_fn(q);
}

static void test_too_large(const test_domain *d)
{
    const size_t too_large[] = {volatile_ptrdiff_max + 1, volatile_size_max,
                                volatile_size_max - OM_ALIGNMENT, volatile_size_max / 2 + 17};
    for (size_t i = 0; i < sizeof too_large / sizeof too_large[0]; i++) {
        om_clear_error();
        errno = 0;
        void *p = d->malloc_fn(too_large[i]);
        CHECK(p == NULL);
        CHECK(om_last_error() == OM_ENOMEM);
        CHECK(errno == ENOMEM);
        d->free_fn(p);

        om_clear_error();
        errno = 0;
        p = d->calloc_fn(1, too_large[i]);
        CHECK(p == NULL);
        CHECK(om_last_error() == OM_ENOMEM);
        CHECK(errno == ENOMEM);

        om_clear_error();
        errno = 0;
        p = d->realloc_fn(NULL, too_large[i]);
        CHECK(p == NULL);
        CHECK(om_last_error() == OM_ENOMEM);
        CHECK(errno == ENOMEM);

        /* A failed realloc leaves the old block as it was, small or large. */
        static const size_t old_sizes[] = {40, 512, 2000, 300000};
        for (size_t k = 0; k < sizeof old_sizes / sizeof old_sizes[0]; k++) {
            void *old = d->malloc_fn(old_sizes[k]);
            CHECK(old != NULL);
            if (!old)
                continue;
            tu_fill_pattern(&byte_pattern, old, old_sizes[k], 77);
            om_clear_error();
            errno = 0;
            void *res = d->realloc_fn(old, too_large[i]);
            CHECK(res == NULL);
            CHECK(om_last_error() == OM_ENOMEM);
            CHECK(errno == ENOMEM);
            CHECK(tu_has_pattern(&byte_pattern, old, old_sizes[k], 77));
            CHECK(om_usable_size(old) >= old_sizes[k]);
            d->free_fn(res == NULL ? old : res);
        }
    }
}

static void test_realloc(const test_domain *d)
{
    /* Grow across every class, into large sizes, and back down. */
    static const size_t steps[] = {1,      15,     16,      17,     40,     100,    256,
                                   511,    512,    513,     600,    4096,   70000,  262144,
                                   262145, 300000, 3000000, 262144, 513,    512,    511,
                                   300,    64,     33,      32,     17,     16,     1,
                                   200,    100000, 2000000, 48};
    enum { N = sizeof steps / sizeof steps[0] };
    void *p = d->realloc_fn(NULL, steps[0]);
    CHECK(p != NULL);
    if (!p)
        return;
    CHECK(tu_is_aligned(p));
    tu_fill_pattern(&byte_pattern, p, steps[0], 0);
    size_t prev = steps[0];
    for (size_t i = 1; i < N; i++) {
        size_t size = steps[i];
        void *q = d->realloc_fn(p, size);
        CHECK(q != NULL);
        if (!q)
            break;
        CHECK(tu_is_aligned(q));
        size_t keep = prev < size ? prev : size;
        if (!tu_has_pattern(&byte_pattern, q, keep, (unsigned)(i - 1))) {
            fprintf(stderr, "  domain %s realloc %zu -> %zu lost contents\n", d->name, prev,
                    size);
            CHECK(0);
        }
        size_t usable = om_usable_size(q);
        CHECK(usable >= size);
        if (size <= OM_SMALL_SIZE_MAX)
            CHECK_EQ_SIZE(usable, tu_small_class_size(size));
        else if (size <= OM_MEDIUM_SIZE_MAX)
            /* It may have stayed in place in a larger class; it is a
             * medium block either way. */
            CHECK(is_medium_class(usable));
        else
            CHECK(usable > OM_MEDIUM_SIZE_MAX);
        tu_fill_pattern(&byte_pattern, q, size, (unsigned)i);
        p = q;
        prev = size;
    }
    d->free_fn(p);

    /* api.md: a small block stays in place when the new size fits its class
     * and uses more than three quarters of it; otherwise it moves. */
    static const size_t blocks_sizes[] = {16, 64, 256, 512};
    for (size_t b = 0; b < 4; b++) {
        size_t bs = blocks_sizes[b];
        for (size_t size = bs * 3 / 4 + 1; size <= bs; size++) {
            void *blk = d->malloc_fn(bs);
            CHECK(blk != NULL);
            if (!blk)
                continue;
            tu_fill_pattern(&byte_pattern, blk, bs, 5);
            void *q = d->realloc_fn(blk, size);
            if (q != blk)
                fprintf(stderr, "  domain %s realloc %zu -> %zu moved\n", d->name, bs, size);
            CHECK(q == blk);
            CHECK(q && tu_has_pattern(&byte_pattern, q, size, 5));
            d->free_fn(q ? q : blk);
        }
        if (bs > 16) {
            /* Three quarters or less: the block moves to the smaller class. */
            void *blk = d->malloc_fn(bs);
            CHECK(blk != NULL);
            if (!blk)
                continue;
            void *q = d->realloc_fn(blk, bs / 2);
            CHECK(q != NULL);
            CHECK_EQ_SIZE(om_usable_size(q), tu_small_class_size(bs / 2));
            d->free_fn(q ? q : blk);
        }
    }

    /* Realloc within the same class keeps the data too. */
    p = d->malloc_fn(20);
    CHECK(p != NULL);
    if (p) {
        tu_fill_pattern(&byte_pattern, p, 20, 9);
        void *q = d->realloc_fn(p, 30);
        CHECK(q != NULL && tu_has_pattern(&byte_pattern, q, 20, 9));
        d->free_fn(q ? q : p);
    }

    /* Many blocks grown and shrunk in turn: no block corrupts another. */
    enum { LIVE = 300 };
    void *blocks[LIVE];
    size_t sizes[LIVE];
    unsigned seeds[LIVE];
    for (size_t i = 0; i < LIVE; i++) {
        sizes[i] = (size_t)(tu_rng_next(&rng) % 700);
        seeds[i] = (unsigned)i;
        blocks[i] = d->malloc_fn(sizes[i]);
        CHECK(blocks[i] != NULL);
        if (blocks[i])
            tu_fill_pattern(&byte_pattern, blocks[i], sizes[i], seeds[i]);
    }
    size_t bad = 0;
    for (size_t round = 0; round < 20; round++) {
        for (size_t i = 0; i < LIVE; i++) {
            if (!blocks[i])
                continue;
            size_t size = (size_t)(tu_rng_next(&rng) % 700);
            if (!tu_has_pattern(&byte_pattern, blocks[i], sizes[i], seeds[i]))
                bad++;
            void *q = d->realloc_fn(blocks[i], size);
            if (!q) {
                bad++;
                continue;
            }
            size_t keep = sizes[i] < size ? sizes[i] : size;
            if (!tu_has_pattern(&byte_pattern, q, keep, seeds[i]))
                bad++;
            blocks[i] = q;
            sizes[i] = size;
            seeds[i] += LIVE;
            tu_fill_pattern(&byte_pattern, q, size, seeds[i]);
        }
    }
    CHECK_EQ_SIZE(bad, 0);
    for (size_t i = 0; i < LIVE; i++) {
        if (blocks[i])
            CHECK(tu_has_pattern(&byte_pattern, blocks[i], sizes[i], seeds[i]));
        d->free_fn(blocks[i]);
    }
}

static void test_free_null(const test_domain *d)
{
    om_clear_error();
    d->free_fn(NULL);
    om_mem_free(NULL);
    om_obj_free(NULL);
    om_raw_free(NULL);
    CHECK(om_last_error() == OM_OK);
    CHECK_EQ_SIZE(om_usable_size(NULL), 0);
}

/* Per-class statistics on a fresh private heap. */
static void test_class_stats(void)
{
    om_heap *h = om_heap_new();
    CHECK(h != NULL);
    if (!h)
        return;
    om_heap_stats st = tu_get_stats(h);
    check_stats_consistent(&st);
    /* api.md: a new heap maps no memory until its first allocation. */
    CHECK_EQ_SIZE(st.arenas_current, 0);
    CHECK_EQ_SIZE(st.arenas_allocated, 0);
    CHECK_EQ_SIZE(st.mapped_bytes, 0);
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++) {
        CHECK_EQ_SIZE(st.classes[c].used_blocks, 0);
        CHECK_EQ_SIZE(st.classes[c].pools, 0);
    }
    CHECK_EQ_SIZE(st.small_used_bytes, 0);
    CHECK_EQ_SIZE(st.pools_used, 0);

    size_t used_total = 0;
    void **keep[OM_SMALL_CLASS_COUNT];
    size_t keep_count[OM_SMALL_CLASS_COUNT];
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++) {
        size_t bs = (c + 1) * OM_ALIGNMENT;
        /* More blocks than two pools can hold. */
        size_t k = 2 * (OM_POOL_SIZE / bs) + 7 + c;
        void **blocks = malloc(k * sizeof *blocks);
        CHECK(blocks != NULL);
        if (!blocks) {
            keep[c] = NULL;
            keep_count[c] = 0;
            continue;
        }
        for (size_t i = 0; i < k; i++) {
            /* Vary the request inside the class: bs-15 .. bs. */
            size_t size = bs - (i % OM_ALIGNMENT);
            blocks[i] = om_heap_malloc(h, size);
            CHECK(blocks[i] != NULL);
        }
        used_total += k * bs;
        st = tu_get_stats(h);
        check_stats_consistent(&st);
        const om_size_class_stats *cs = &st.classes[c];
        CHECK_EQ_SIZE(cs->block_size, bs);
        CHECK_EQ_SIZE(cs->used_blocks, k);
        CHECK_EQ_SIZE(cs->used_bytes, k * bs);
        CHECK(cs->pools >= 3);
        if (cs->pools) {
            size_t per_pool = (cs->used_blocks + cs->free_blocks) / cs->pools;
            /* Pools fill before a new one is taken: no more pools than needed. */
            if (per_pool)
                CHECK_EQ_SIZE(cs->pools, (k + per_pool - 1) / per_pool);
            CHECK_EQ_SIZE(cs->free_blocks, cs->pools * per_pool - k);
        }
        CHECK_EQ_SIZE(st.small_used_bytes, used_total);
        /* Classes not touched yet are still empty. */
        for (size_t other = c + 1; other < OM_SMALL_CLASS_COUNT; other++) {
            CHECK_EQ_SIZE(st.classes[other].used_blocks, 0);
            CHECK_EQ_SIZE(st.classes[other].pools, 0);
        }
        CHECK(st.arenas_current >= 1);
        keep[c] = blocks;
        keep_count[c] = k;
    }

    /* Free every other block of each class: counts drop by as many. */
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++) {
        size_t freed = 0;
        for (size_t i = 0; i < keep_count[c]; i += 2) {
            om_obj_free(keep[c][i]);
            keep[c][i] = NULL;
            freed++;
        }
        st = tu_get_stats(h);
        CHECK_EQ_SIZE(st.classes[c].used_blocks, keep_count[c] - freed);
        CHECK_EQ_SIZE(st.classes[c].used_bytes,
                      (keep_count[c] - freed) * st.classes[c].block_size);
    }
    st = tu_get_stats(h);
    check_stats_consistent(&st);

    /* Free the rest: every class empty, at most one warm pool kept each. */
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++) {
        for (size_t i = 0; i < keep_count[c]; i++)
            om_mem_free(keep[c][i]);
        free(keep[c]);
    }
    st = tu_get_stats(h);
    check_stats_consistent(&st);
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++) {
        CHECK_EQ_SIZE(st.classes[c].used_blocks, 0);
        CHECK(st.classes[c].pools <= 1);
    }
    CHECK_EQ_SIZE(st.small_used_bytes, 0);
    CHECK(st.pools_used <= OM_SMALL_CLASS_COUNT);
    CHECK(st.arenas_current <= OM_SMALL_CLASS_COUNT + 1);

    /* Medium and large blocks do not show in the small-class stats, but in
     * their own fields. */
    void *big = om_heap_malloc(h, 10000);
    void *huge = om_heap_malloc(h, 300000);
    CHECK(big != NULL && huge != NULL);
    om_heap_stats st2 = tu_get_stats(h);
    CHECK_EQ_SIZE(st2.small_used_bytes, 0);
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++)
        CHECK_EQ_SIZE(st2.classes[c].used_blocks, 0);
    CHECK_EQ_SIZE(st2.medium_used_bytes, tu_medium_class_size(10000));
    CHECK_EQ_SIZE(st2.medium_arenas_current, 1);
    CHECK_EQ_SIZE(st2.large_count, 1);
    CHECK(st2.large_bytes >= 300000);
    CHECK_EQ_SIZE(st2.arenas_current, st.arenas_current);
    om_mem_free(big);
    om_mem_free(huge);
    st2 = tu_get_stats(h);
    CHECK_EQ_SIZE(st2.medium_used_bytes, 0);
    CHECK_EQ_SIZE(st2.large_count, 0);
    CHECK_EQ_SIZE(st2.large_bytes, 0);

    /* Trimming leaves a heap with nothing mapped; it still works after.
     * It returns whole arenas' bytes: the pool arenas (mapped_bytes) and,
     * since issue 3, the medium arena kept as the spare and the freed large
     * mappings kept for reuse. */
    size_t mapped_before = st2.mapped_bytes + st2.medium_arenas_current * OM_ARENA_SIZE +
                           st2.large_cached_bytes;
    size_t trimmed = om_heap_trim(h);
    CHECK(trimmed > 0);
    CHECK_EQ_SIZE(trimmed % OM_ARENA_SIZE, 0);
    CHECK_EQ_SIZE(trimmed, mapped_before);
    st = tu_get_stats(h);
    check_stats_consistent(&st);
    CHECK_EQ_SIZE(st.arenas_current, 0);
    CHECK_EQ_SIZE(st.medium_arenas_current, 0);
    CHECK_EQ_SIZE(st.medium_cached_bytes, 0);
    CHECK_EQ_SIZE(st.pools_used, 0);
    void *again = om_heap_malloc(h, 100);
    CHECK(again != NULL);
    st = tu_get_stats(h);
    CHECK_EQ_SIZE(st.classes[tu_small_class_index(100)].used_blocks, 1);
    CHECK_EQ_SIZE(st.arenas_current, 1);
    om_mem_free(again);
    om_heap_delete(h);
}

/* The domain functions change the default heap's class counts. */
static void test_default_heap_stats(const test_domain *d)
{
    static const size_t sizes[] = {1, 16, 17, 100, 511, 512};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t c = tu_small_class_index(sizes[s]);
        om_heap_stats before = tu_get_stats(NULL);
        enum { K = 50 };
        void *blocks[K];
        for (size_t i = 0; i < K; i++)
            blocks[i] = d->malloc_fn(sizes[s]);
        om_heap_stats during = tu_get_stats(NULL);
        CHECK_EQ_SIZE(during.classes[c].used_blocks, before.classes[c].used_blocks + K);
        CHECK_EQ_SIZE(during.small_used_bytes,
                      before.small_used_bytes + K * tu_small_class_size(sizes[s]));
        for (size_t i = 0; i < K; i++)
            d->free_fn(blocks[i]);
        om_heap_stats after = tu_get_stats(NULL);
        CHECK_EQ_SIZE(after.classes[c].used_blocks, before.classes[c].used_blocks);
        CHECK_EQ_SIZE(after.small_used_bytes, before.small_used_bytes);
    }
}

int main(void)
{
    private_heap = om_heap_new();
    CHECK(private_heap != NULL);
    if (!private_heap)
        return check_report();
    domains_init();

    for (size_t i = 0; i < DOMAIN_COUNT; i++) {
        const test_domain *d = &domains[i];
        test_boundaries(d);
        test_alignment_and_disjoint(d);
        test_malloc_zero(d);
        test_calloc(d);
        test_too_large(d);
        test_realloc(d);
        test_free_null(d);
    }
    test_default_heap_stats(&domains[0]);
    test_default_heap_stats(&domains[1]);
    test_every_small_size();
    test_class_stats();

    /* The private heap of the domain table is empty again. */
    om_heap_stats st = tu_get_stats(private_heap);
    CHECK_EQ_SIZE(st.small_used_bytes, 0);
    check_stats_consistent(&st);
    om_heap_delete(private_heap);
    return check_report();
}
