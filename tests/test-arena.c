/*
 * test-arena.c — arenas come back to the OS, and the arena allocator is
 * pluggable.
 *
 * Arena return (objmem.h, section 3): on a private heap, allocate a few
 * hundred MB of small blocks, free them all in a shuffled order, and see the
 * arenas unmapped — in the statistics and in the resident set size. At most
 * one warm pool per class plus OMI_SPARE_ARENAS_MAX spare arenas may stay
 * mapped, and om_heap_trim releases those too. Spare arenas: reused before
 * new ones are mapped, unmapped after the purge delay, at once with a delay
 * of 0, never more than OMI_SPARE_ARENAS_MAX. om_heap_delete releases the arenas of a
 * heap whose blocks are still live.
 *
 * Arena allocator (section 5): get/set round-trip; a counting allocator that
 * wraps the default sees every new arena and gets each one back with the same
 * pointer and size, also after it was replaced; an allocator that returns
 * misaligned memory makes allocation fail cleanly (NULL, OM_ENOMEM) and gets
 * that memory back, for small and medium blocks alike (both live in arenas;
 * a large block is a mapping of its own and still works); NULL restores the
 * default; missing hooks give OM_EINVAL.
 *
 * RSS under ASan: ASan keeps the shadow of unmapped memory resident (one
 * byte per eight, so 1/9 of what an arena-heavy test grows by); the expected
 * drops are computed from the arena part of the growth there.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "objmem.h"
#include "testutil.h"
#include "types.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static tu_rng rng = {0x853c49e6748fea9bULL};

/* A set of small blocks on heap h adding up to at least `total` class bytes.
 * The pointer array is allocated and touched before any block, so that the
 * caller's RSS baseline can include it. */
typedef struct block_set {
    void **blocks;
    size_t count;
    size_t class_total;
    uint64_t seed;
} block_set;

static size_t random_small(void)
{
    return 1 + (size_t)(tu_rng_next(&rng) % OM_SMALL_SIZE_MAX);
}

static void block_set_plan(block_set *set, size_t total)
{
    set->seed = rng.state;
    size_t sum = 0, count = 0;
    while (sum < total) {
        sum += tu_small_class_size(random_small());
        count++;
    }
    set->count = count;
    set->class_total = sum;
    set->blocks = calloc(count, sizeof *set->blocks);
    CHECK(set->blocks != NULL);
    rng.state = set->seed;
}

/* Returns the number of failed allocations. */
static size_t block_set_fill(block_set *set, om_heap *h)
{
    size_t failed = 0;
    rng.state = set->seed;
    for (size_t i = 0; i < set->count; i++) {
        size_t size = random_small();
        void *p = om_heap_malloc(h, size);
        set->blocks[i] = p;
        if (!p) {
            failed++;
            continue;
        }
        /* Touch every byte, so that the pages are resident. */
        memset(p, (int)(i & 0xff) | 1, size);
    }
    return failed;
}

/* ------------------------------------------------------------------------ */
/* A counting arena allocator that wraps another one                        */
/* ------------------------------------------------------------------------ */

#define COUNTING_LIVE_MAX 8192

typedef struct counting_arena {
    om_arena_allocator inner;
    size_t allocs;        /* successful allocs */
    size_t frees;
    size_t bad_size;      /* alloc or free with size != OM_ARENA_SIZE */
    size_t misaligned;    /* inner returned a misaligned arena */
    size_t unknown_free;  /* free of a pointer this allocator did not give */
    size_t live_count;
    void *live[COUNTING_LIVE_MAX];
} counting_arena;

static void *counting_alloc(void *ctx, size_t size)
{
    counting_arena *c = ctx;
    if (size != OM_ARENA_SIZE)
        c->bad_size++;
    void *p = c->inner.alloc(c->inner.ctx, size);
    if (!p)
        return NULL;
    c->allocs++;
    if ((uintptr_t)p % OM_ARENA_SIZE != 0)
        c->misaligned++;
    if (c->live_count < COUNTING_LIVE_MAX)
        c->live[c->live_count++] = p;
    return p;
}

static void counting_free(void *ctx, void *ptr, size_t size)
{
    counting_arena *c = ctx;
    if (size != OM_ARENA_SIZE)
        c->bad_size++;
    size_t i = 0;
    while (i < c->live_count && c->live[i] != ptr)
        i++;
    if (i == c->live_count)
        c->unknown_free++;
    else
        c->live[i] = c->live[--c->live_count];
    c->frees++;
    c->inner.free(c->inner.ctx, ptr, size);
}

static void counting_init(counting_arena *c, om_arena_allocator *as_allocator)
{
    memset(c, 0, sizeof *c);
    om_get_arena_allocator(&c->inner);
    *as_allocator = (om_arena_allocator){c, counting_alloc, counting_free};
}

static int same_allocator(const om_arena_allocator *a, const om_arena_allocator *b)
{
    return a->ctx == b->ctx && a->alloc == b->alloc && a->free == b->free;
}

/* ------------------------------------------------------------------------ */
/* A misaligned arena allocator: page-aligned, never arena-aligned          */
/* ------------------------------------------------------------------------ */

#define MISALIGNED_MAX 64

typedef struct misaligned_arena {
    size_t allocs;
    size_t frees;
    size_t bad_free; /* unknown pointer or wrong size */
    size_t count;
    void *given[MISALIGNED_MAX];
    void *base[MISALIGNED_MAX];
} misaligned_arena;

static void *misaligned_alloc(void *ctx, size_t size)
{
    misaligned_arena *m = ctx;
    if (m->count == MISALIGNED_MAX)
        return NULL;
    size_t page = 4096;
    unsigned char *base = malloc(size + 2 * page);
    if (!base)
        return NULL;
    uintptr_t p = ((uintptr_t)base + page - 1) & ~(uintptr_t)(page - 1);
    if (p % OM_ARENA_SIZE == 0)
        p += page;
    m->given[m->count] = (void *)p;
    m->base[m->count] = base;
    m->count++;
    m->allocs++;
    return (void *)p;
}

static void misaligned_free(void *ctx, void *ptr, size_t size)
{
    misaligned_arena *m = ctx;
    m->frees++;
    size_t i = 0;
    while (i < m->count && m->given[i] != ptr)
        i++;
    if (i == m->count || size != OM_ARENA_SIZE) {
        m->bad_free++;
        return;
    }
    free(m->base[i]);
    m->count--;
    m->given[i] = m->given[m->count];
    m->base[i] = m->base[m->count];
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

static void test_arena_return(void)
{
    om_heap *h = om_heap_new();
    CHECK(h != NULL);
    if (!h)
        return;
    block_set set;
    block_set_plan(&set, OM_TEST_SCALE(224 * MB));
    if (!set.blocks) {
        om_heap_delete(h);
        return;
    }
    om_heap_stats st0 = tu_get_stats(h);
    size_t rss0 = check_rss_bytes();

    CHECK_EQ_SIZE(block_set_fill(&set, h), 0);
    om_heap_stats st1 = tu_get_stats(h);
    size_t rss1 = check_rss_bytes();
    size_t grew = rss1 > rss0 ? rss1 - rss0 : 0;
    printf("arena return: %zu blocks, %zu MB in classes, %zu arenas, RSS +%zu MB\n", set.count,
           set.class_total / MB, st1.arenas_current, grew / MB);
    CHECK_EQ_SIZE(st1.small_used_bytes, set.class_total);
    CHECK(st1.arenas_current >= set.class_total / OM_ARENA_SIZE);
    CHECK(st1.mapped_bytes >= set.class_total);
    CHECK_EQ_SIZE(st1.mapped_bytes, st1.arenas_current * OM_ARENA_SIZE);
    CHECK(st1.arenas_highwater >= st1.arenas_current);
    CHECK(st1.arenas_allocated >= st1.arenas_current);
    CHECK(st1.arenas_current > st0.arenas_current);
    CHECK(grew >= set.class_total / 10 * 9);

    /* Free in a shuffled order, through both domains' free. */
    tu_shuffle(&rng, set.blocks, set.count);
    for (size_t i = 0; i < set.count; i++) {
        if (i & 1)
            om_obj_free(set.blocks[i]);
        else
            om_mem_free(set.blocks[i]);
    }
    free(set.blocks);
    om_heap_stats st2 = tu_get_stats(h);
    size_t rss2 = check_rss_bytes();
    printf("after free: %zu arenas mapped, %zu freed, RSS %+lld MB from the start\n",
           st2.arenas_current, st2.arenas_freed, ((long long)rss2 - (long long)rss0) / (long long)MB);
    CHECK_EQ_SIZE(st2.small_used_bytes, 0);
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++) {
        CHECK_EQ_SIZE(st2.classes[c].used_blocks, 0);
        CHECK(st2.classes[c].pools <= 1);
    }
    /* Every arena beyond the spares and the warm pools' went back. */
    CHECK(st2.arenas_freed - st1.arenas_freed + OMI_SPARE_ARENAS_MAX + OM_SMALL_CLASS_COUNT + 1 >=
          st1.arenas_current);
    CHECK(st2.arenas_current <= OM_SMALL_CLASS_COUNT + 1 + OMI_SPARE_ARENAS_MAX);
    /* objmem.h also says an arena held only by warm pools is kept once per
     * heap, which would mean at most 2 here; design-pool.md lets such arenas
     * wait for the next event or a trim, so this is reported, not checked. */
    if (st2.arenas_current > 2 + OMI_SPARE_ARENAS_MAX)
        printf("note: %zu arenas mapped after freeing everything (%zu pools used)\n",
               st2.arenas_current, st2.pools_used);
    CHECK_EQ_SIZE(st2.arenas_freed + st2.arenas_current, st2.arenas_allocated);
    CHECK(st2.arenas_highwater >= st1.arenas_current);
    /* What is unmapped must be gone from RSS: all of the growth except the
     * arenas that the contract lets the heap keep (and 10 % of slack). */
    size_t kept = st2.mapped_bytes;
    size_t dropped = rss1 > rss2 ? rss1 - rss2 : 0;
    size_t need = tu_mapped_part(grew) > kept ? (tu_mapped_part(grew) - kept) / 10 * 9 : 0;
    if (dropped < need)
        fprintf(stderr, "RSS dropped %zu MB, expected >= %zu MB (grew %zu MB, kept %zu MB)\n",
                dropped / MB, need / MB, grew / MB, kept / MB);
    CHECK(dropped >= need);

    /* Trim releases the warm pools and the spares: nothing stays mapped. */
    size_t trimmed = om_heap_trim(h);
    om_heap_stats st3 = tu_get_stats(h);
    size_t rss3 = check_rss_bytes();
    printf("after trim: %zu bytes unmapped, %zu arenas mapped, RSS %+lld MB from the start\n",
           trimmed, st3.arenas_current, ((long long)rss3 - (long long)rss0) / (long long)MB);
    CHECK(trimmed > 0);
    CHECK_EQ_SIZE(trimmed, st2.mapped_bytes);
    CHECK_EQ_SIZE(st3.arenas_current, 0);
    CHECK_EQ_SIZE(st3.mapped_bytes, 0);
    CHECK_EQ_SIZE(st3.pools_used, 0);
    CHECK_EQ_SIZE(st3.arenas_freed, st3.arenas_allocated);
    dropped = rss1 > rss3 ? rss1 - rss3 : 0;
    if (dropped < tu_mapped_part(grew) / 10 * 9)
        fprintf(stderr, "RSS dropped %zu MB after trim, grew %zu MB\n", dropped / MB, grew / MB);
    CHECK(dropped >= tu_mapped_part(grew) / 10 * 9);
    /* Nothing left to trim. */
    CHECK_EQ_SIZE(om_heap_trim(h), 0);

    /* The heap works after a trim. */
    void *p = om_heap_malloc(h, 48);
    CHECK(p != NULL);
    om_mem_free(p);
    om_heap_delete(h);
}

static void test_get_set_round_trip(void)
{
    om_arena_allocator def, got, again;
    memset(&def, 0, sizeof def);
    om_get_arena_allocator(&def);
    CHECK(def.alloc != NULL);
    CHECK(def.free != NULL);
    om_get_arena_allocator(NULL); /* no-op */

    CHECK(om_set_arena_allocator(&def) == 0);
    memset(&got, 0, sizeof got);
    om_get_arena_allocator(&got);
    CHECK(same_allocator(&got, &def));

    counting_arena *counter = malloc(sizeof *counter);
    CHECK(counter != NULL);
    if (!counter)
        return;
    om_arena_allocator counting;
    counting_init(counter, &counting);
    CHECK(same_allocator(&counter->inner, &def));
    CHECK(om_set_arena_allocator(&counting) == 0);
    om_get_arena_allocator(&got);
    CHECK(same_allocator(&got, &counting));

    /* Missing hooks: refused, and the installed one stays. */
    const om_arena_allocator incomplete[] = {
        {counter, NULL, counting_free},
        {counter, counting_alloc, NULL},
        {NULL, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof incomplete / sizeof incomplete[0]; i++) {
        om_clear_error();
        CHECK(om_set_arena_allocator(&incomplete[i]) == -1);
        CHECK(om_last_error() == OM_EINVAL);
        CHECK(om_last_error_message()[0] != '\0');
        om_get_arena_allocator(&again);
        CHECK(same_allocator(&again, &counting));
    }

    /* NULL restores the default. */
    om_clear_error();
    CHECK(om_set_arena_allocator(NULL) == 0);
    om_get_arena_allocator(&got);
    CHECK(same_allocator(&got, &def));
    CHECK_EQ_SIZE(counter->allocs, 0);
    free(counter);
}

/* A counting allocator sees every arena of a new heap, and each one comes
 * back to it, also after another allocator was installed. */
static void test_counting_allocator(void)
{
    counting_arena *counter = malloc(sizeof *counter);
    CHECK(counter != NULL);
    if (!counter)
        return;
    om_arena_allocator counting;
    counting_init(counter, &counting);
    CHECK(om_set_arena_allocator(&counting) == 0);

    om_heap *h = om_heap_new();
    CHECK(h != NULL);
    if (!h) {
        om_set_arena_allocator(NULL);
        free(counter);
        return;
    }
    /* About 4.5 arenas of 256-byte blocks. */
    size_t count = (OM_ARENA_SIZE * 9 / 2) / 256;
    void **blocks = malloc(count * sizeof *blocks);
    CHECK(blocks != NULL);
    if (!blocks) {
        om_heap_delete(h);
        om_set_arena_allocator(NULL);
        free(counter);
        return;
    }
    size_t failed = 0;
    for (size_t i = 0; i < count; i++) {
        blocks[i] = om_heap_malloc(h, 256);
        if (!blocks[i])
            failed++;
        else
            memset(blocks[i], 0x3c, 256);
    }
    CHECK_EQ_SIZE(failed, 0);
    om_heap_stats st = tu_get_stats(h);
    CHECK(counter->allocs >= 5);
    CHECK_EQ_SIZE(counter->allocs, st.arenas_allocated);
    CHECK_EQ_SIZE(counter->allocs - counter->frees, st.arenas_current);
    CHECK_EQ_SIZE(counter->bad_size, 0);
    CHECK_EQ_SIZE(counter->misaligned, 0);
    /* Every block lies inside an arena the counting allocator gave. */
    size_t outside = 0;
    for (size_t i = 0; i < count; i++) {
        uintptr_t p = (uintptr_t)blocks[i];
        size_t k = 0;
        while (k < counter->live_count && !((uintptr_t)counter->live[k] <= p &&
                                            p + 256 <= (uintptr_t)counter->live[k] + OM_ARENA_SIZE))
            k++;
        if (k == counter->live_count)
            outside++;
    }
    CHECK_EQ_SIZE(outside, 0);

    /* Back to the default: the existing arenas keep the counting one. */
    CHECK(om_set_arena_allocator(NULL) == 0);
    size_t allocs_before = counter->allocs;
    for (size_t i = 0; i < count; i++)
        om_mem_free(blocks[i]);
    om_heap_trim(h);
    st = tu_get_stats(h);
    CHECK_EQ_SIZE(st.arenas_current, 0);
    CHECK_EQ_SIZE(counter->allocs, allocs_before);
    CHECK_EQ_SIZE(counter->frees, counter->allocs);
    CHECK_EQ_SIZE(counter->live_count, 0);
    CHECK_EQ_SIZE(counter->unknown_free, 0);
    CHECK_EQ_SIZE(counter->bad_size, 0);

    /* New arenas after the switch do not reach the counting allocator. */
    void *p = om_heap_malloc(h, 64);
    CHECK(p != NULL);
    CHECK_EQ_SIZE(counter->allocs, allocs_before);
    om_mem_free(p);
    om_heap_delete(h);
    CHECK_EQ_SIZE(counter->allocs, allocs_before);
    free(blocks);
    free(counter);
}

/* An arena that comes back misaligned is returned and the allocation fails
 * with OM_ENOMEM; nothing crashes. */
static void test_misaligned_allocator(void)
{
    om_heap *h = om_heap_new();
    CHECK(h != NULL);
    if (!h)
        return;
    misaligned_arena mis;
    memset(&mis, 0, sizeof mis);
    om_arena_allocator bad = {&mis, misaligned_alloc, misaligned_free};
    CHECK(om_set_arena_allocator(&bad) == 0);

    /* Whatever the new heap holds already, it runs out within two arenas. */
    size_t limit = 2 * OM_ARENA_SIZE / 64;
    void **blocks = malloc(limit * sizeof *blocks);
    CHECK(blocks != NULL);
    size_t got = 0;
    om_clear_error();
    void *p = NULL;
    while (blocks && got < limit && (p = om_heap_malloc(h, 64)) != NULL)
        blocks[got++] = p;
    CHECK(p == NULL);
    CHECK(om_last_error() == OM_ENOMEM);
    CHECK(om_last_error_message()[0] != '\0');
    CHECK(mis.allocs >= 1);
    CHECK_EQ_SIZE(mis.frees, mis.allocs);
    CHECK_EQ_SIZE(mis.bad_free, 0);
    CHECK_EQ_SIZE(mis.count, 0);

    /* calloc and a second try fail the same way. */
    om_clear_error();
    errno = 0;
    void *q = om_heap_calloc(h, 4, 16);
    if (q == NULL) {
        CHECK(om_last_error() == OM_ENOMEM);
    } else {
        CHECK(0); /* the heap had no room left */
        om_mem_free(q);
    }
    CHECK_EQ_SIZE(mis.frees, mis.allocs);

    /* Since issue 3 a medium block (513 B … 256 KiB) lives in a medium
     * arena from the same arena allocator: it fails the same way, and the
     * misaligned arena goes back to the allocator. */
    static const size_t medium_sizes[] = {513, 4000, OM_MEDIUM_SIZE_MAX};
    for (size_t i = 0; i < sizeof medium_sizes / sizeof medium_sizes[0]; i++) {
        size_t allocs_before = mis.allocs;
        om_clear_error();
        errno = 0;
        void *medium = om_heap_malloc(h, medium_sizes[i]);
        CHECK(medium == NULL);
        CHECK(om_last_error() == OM_ENOMEM);
        CHECK(errno == ENOMEM);
        CHECK(mis.allocs > allocs_before);
        CHECK_EQ_SIZE(mis.frees, mis.allocs);
        om_mem_free(medium);
    }
    om_heap_stats st = tu_get_stats(h);
    CHECK_EQ_SIZE(st.medium_arenas_current, 0);

    /* A large block is a mapping of its own, not an arena: the arena
     * allocator is not asked for it. */
    size_t allocs_before = mis.allocs;
    void *big = om_heap_malloc(h, OM_MEDIUM_SIZE_MAX + 1);
    CHECK(big != NULL);
    CHECK_EQ_SIZE(mis.allocs, allocs_before);
    if (big)
        memset(big, 0x5a, OM_MEDIUM_SIZE_MAX + 1);
    om_mem_free(big);

    /* The default again: allocation works. */
    CHECK(om_set_arena_allocator(NULL) == 0);
    p = om_heap_malloc(h, 64);
    CHECK(p != NULL);
    om_mem_free(p);
    CHECK_EQ_SIZE(mis.count, 0);
    for (size_t i = 0; i < got; i++)
        om_mem_free(blocks[i]);
    free(blocks);
    om_heap_delete(h);
    CHECK_EQ_SIZE(mis.bad_free, 0);
}

/* om_heap_delete releases every arena, live blocks or not. */
static void test_delete_releases(void)
{
    counting_arena *counter = malloc(sizeof *counter);
    CHECK(counter != NULL);
    if (!counter)
        return;
    om_arena_allocator counting;
    counting_init(counter, &counting);
    CHECK(om_set_arena_allocator(&counting) == 0);

    om_heap *h = om_heap_new();
    CHECK(h != NULL);
    block_set set;
    block_set_plan(&set, OM_TEST_SCALE(128 * MB));
    if (!h || !set.blocks) {
        om_set_arena_allocator(NULL);
        if (h)
            om_heap_delete(h);
        free(set.blocks);
        free(counter);
        return;
    }
    size_t rss0 = check_rss_bytes();
    CHECK_EQ_SIZE(block_set_fill(&set, h), 0);
    /* Free a random third, so that the heap is in a mixed state. */
    for (size_t i = 0; i < set.count; i++) {
        if (tu_rng_next(&rng) % 3 == 0) {
            om_obj_free(set.blocks[i]);
            set.blocks[i] = NULL;
        }
    }
    om_heap_stats st = tu_get_stats(h);
    size_t rss1 = check_rss_bytes();
    size_t grew = rss1 > rss0 ? rss1 - rss0 : 0;
    CHECK_EQ_SIZE(counter->allocs, st.arenas_allocated);
    CHECK_EQ_SIZE(counter->allocs - counter->frees, st.arenas_current);
    CHECK(st.arenas_current >= set.class_total / 2 / OM_ARENA_SIZE);

    om_heap_delete(h);
    size_t rss2 = check_rss_bytes();
    size_t dropped = rss1 > rss2 ? rss1 - rss2 : 0;
    printf("delete with live blocks: %zu arenas, RSS +%zu MB, then -%zu MB\n",
           st.arenas_current, grew / MB, dropped / MB);
    CHECK_EQ_SIZE(counter->frees, counter->allocs);
    CHECK_EQ_SIZE(counter->live_count, 0);
    CHECK_EQ_SIZE(counter->unknown_free, 0);
    CHECK_EQ_SIZE(counter->bad_size, 0);
    CHECK(dropped >= tu_mapped_part(grew) / 10 * 9);

    CHECK(om_set_arena_allocator(NULL) == 0);
    free(set.blocks);
    free(counter);
}

/* The default heap trims too, when it holds no block. */
static void test_default_heap_trim(void)
{
    void *blocks[1000];
    for (size_t i = 0; i < 1000; i++)
        blocks[i] = om_mem_malloc(1 + i % OM_SMALL_SIZE_MAX);
    om_heap_stats st = tu_get_stats(NULL);
    CHECK(st.arenas_current >= 1);
    for (size_t i = 0; i < 1000; i++)
        om_mem_free(blocks[i]);
    st = tu_get_stats(NULL);
    if (st.small_used_bytes == 0) {
        CHECK(om_heap_trim(NULL) > 0);
        st = tu_get_stats(NULL);
        CHECK_EQ_SIZE(st.arenas_current, 0);
    }
    void *p = om_obj_malloc(32);
    CHECK(p != NULL);
    om_obj_free(p);
}

/* Fills `arenas` arenas of 256 B blocks in heap h and frees them all. */
static int fill_and_free_arenas(om_heap *h, size_t arenas)
{
    size_t count = arenas * (OM_ARENA_SIZE / 256);
    void **blocks = malloc(count * sizeof *blocks);
    if (blocks == NULL)
        return -1;
    for (size_t i = 0; i < count; i++)
        blocks[i] = om_heap_malloc(h, 256);
    for (size_t i = 0; i < count; i++)
        om_mem_free(blocks[i]);
    free(blocks);
    return 0;
}

static void test_spare_arenas(void)
{
    long delay = om_option_get(OM_OPTION_PURGE_DELAY_MS);
    om_option_set(OM_OPTION_PURGE_DELAY_MS, 60000);
    om_heap *h = om_heap_new();
    CHECK(fill_and_free_arenas(h, 20) == 0);
    om_heap_stats st1 = tu_get_stats(h);
    CHECK(st1.arenas_current >= 19);            /* kept as spares, not unmapped */
    /* Refilling reuses them: no new mapping. */
    CHECK(fill_and_free_arenas(h, 20) == 0);
    om_heap_stats st2 = tu_get_stats(h);
    CHECK_EQ_SIZE(st2.arenas_allocated, st1.arenas_allocated);
    CHECK(om_heap_trim(h) >= 19 * OM_ARENA_SIZE);
    CHECK_EQ_SIZE(tu_get_stats(h).arenas_current, 0);

    /* The cap: beyond OMI_SPARE_ARENAS_MAX, free arenas go back at once. */
    CHECK(fill_and_free_arenas(h, OMI_SPARE_ARENAS_MAX + 30) == 0);
    CHECK(tu_get_stats(h).arenas_current <= OMI_SPARE_ARENAS_MAX + 2);
    om_heap_trim(h);

    /* A delay of 0: no spare is kept. */
    om_option_set(OM_OPTION_PURGE_DELAY_MS, 0);
    CHECK(fill_and_free_arenas(h, 20) == 0);
    CHECK(tu_get_stats(h).arenas_current <= 1);
    om_heap_delete(h);
    om_option_set(OM_OPTION_PURGE_DELAY_MS, delay);
}

int main(void)
{
    test_get_set_round_trip();
    test_counting_allocator();
    test_misaligned_allocator();
    test_arena_return();
    test_spare_arenas();
    test_delete_releases();
    test_default_heap_trim();
    return check_report();
}
