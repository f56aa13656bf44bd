/*
 * test-mixed.c — randomized small/medium/large stress with pattern checks
 * (issue 3: "a mixed small/medium/large randomized stress test of ≥ 5M
 * operations with pattern verification").
 *
 * A table of slots holds the live blocks. Each operation picks a slot in
 * the active window: an empty slot gets a block (malloc, calloc,
 * realloc(NULL, n) or aligned allocation) from the default heap (om_mem_*,
 * om_obj_*, om_aligned_alloc) or from a private heap (om_heap_*); a live
 * slot is freed (om_mem_free or om_obj_free, whichever heap made it) or
 * reallocated (om_mem_realloc, om_obj_realloc, om_heap_realloc with either
 * heap). Sizes: mostly small, some medium (log-uniform up to 256 KiB), a
 * few large (up to 4 MiB), and the tier boundaries (512/513, every medium
 * class size ± 1, 256 KiB/256 KiB + 1) on purpose.
 *
 * Every block carries a pattern derived from (slot, generation): every
 * 8-byte word for blocks up to 64 KiB, and above that the first 4 KiB, one
 * word in every 512 bytes and the last bytes (so that a large block costs
 * a few page touches, not a full write). The pattern is verified before
 * every free and realloc, and the kept part after every realloc: two blocks
 * that overlap, a block handed out twice, a lost realloc copy or a free-list
 * link written into a live block show up as a mismatch. A fresh block must
 * be 16-byte aligned (or aligned as asked), have at least the requested
 * usable size, exactly its class for small and medium requests, and calloc
 * blocks must read zero.
 *
 * The active window changes size in phases, so that arenas fill, empty and
 * go back. At the end every block is verified and freed, and both heaps'
 * stats show no used bytes in any tier and no large block.
 *
 * Usage: test-mixed [seed [operations]]   (defaults: fixed seed, 5M ops,
 * a tenth of that under sanitizers).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "objmem.h"
#include "testutil.h"

#define MAX_SLOTS 40000
#define LARGE_MAX (4 * MB)
#define DENSE_MAX (64 * KB)  /* blocks up to this size carry a full pattern */
#define REPORT_LIMIT 10

typedef struct slot {
    unsigned char *ptr;  /* NULL when empty */
    size_t size;         /* bytes requested */
    uint32_t gen;        /* generation that wrote the pattern */
    uint8_t heap;        /* 0 = default heap, 1 = the private heap */
} slot;

static slot slots[MAX_SLOTS];
static om_heap *private_heap;
static tu_rng rng; /* seeded in main */
static uint32_t generation;
static unsigned long long op_index;
static size_t errors_reported, corrupt_blocks, alloc_failures, bad_blocks;
static size_t count_small, count_medium, count_large, count_aligned, count_boundary;

static void report(const char *what, size_t index, size_t value)
{
    if (errors_reported++ < REPORT_LIMIT)
        fprintf(stderr, "op %llu, slot %zu (size %zu, gen %u): %s %zu\n", op_index, index,
                slots[index].size, slots[index].gen, what, value);
}

/* ---- Patterns ---------------------------------------------------------------- */

static uint64_t word_of(uint64_t seed, size_t i)
{
    return (seed * 0x9e3779b97f4a7c15ULL) ^ ((uint64_t)i * 0x100000001b3ULL) ^ 0x5bd1e995;
}

static uint64_t block_seed(size_t index, uint32_t gen)
{
    return (uint64_t)index << 32 | gen;
}

/* A sparse block's sampled words (the first 512, then every 64th) depend
 * only on the word index, so a prefix of a block checks against the
 * pattern of the whole; the last word and tail bytes only in full checks. */
static void fill_pattern(unsigned char *p, size_t size, uint64_t seed)
{
    uint64_t *w = (uint64_t *)p;
    size_t words = size / 8;
    if (size <= DENSE_MAX) {
        for (size_t i = 0; i < words; i++)
            w[i] = word_of(seed, i);
    } else {
        for (size_t i = 0; i < 512; i++)
            w[i] = word_of(seed, i);
        for (size_t i = 575; i < words; i += 64)
            w[i] = word_of(seed, i);
        if (words > 0)
            w[words - 1] = word_of(seed, words - 1);
    }
    for (size_t i = words * 8; i < size; i++)
        p[i] = (unsigned char)(seed + i);
}

/* Checks the first `keep` bytes of a block of `size` bytes that was filled
 * with fill_pattern(p, size, seed). Returns the first bad byte offset, or
 * SIZE_MAX. */
static size_t check_pattern(const unsigned char *p, size_t size, size_t keep, uint64_t seed)
{
    const uint64_t *w = (const uint64_t *)p;
    size_t words = size / 8, keep_words = keep / 8;
    if (size <= DENSE_MAX) {
        for (size_t i = 0; i < keep_words; i++)
            if (w[i] != word_of(seed, i))
                return i * 8;
    } else {
        for (size_t i = 0; i < keep_words && i < 512; i++)
            if (w[i] != word_of(seed, i))
                return i * 8;
        for (size_t i = 575; i < keep_words; i += 64)
            if (w[i] != word_of(seed, i))
                return i * 8;
        if (keep == size && words > 0 && w[words - 1] != word_of(seed, words - 1))
            return (words - 1) * 8;
    }
    if (keep == size)
        for (size_t i = words * 8; i < size; i++)
            if (p[i] != (unsigned char)(seed + i))
                return i;
    return SIZE_MAX;
}

static void verify_slot(size_t index, size_t keep)
{
    slot *s = &slots[index];
    size_t bad = check_pattern(s->ptr, s->size, keep, block_seed(index, s->gen));
    if (bad != SIZE_MAX) {
        corrupt_blocks++;
        report("pattern mismatch at byte", index, bad);
    }
}

/* ---- Sizes ------------------------------------------------------------------- */

static size_t log_uniform(size_t lo, size_t hi)
{
    /* lo * 2^(u * log2(hi / lo)), in integer steps: an exponent, then a
     * uniform value inside that doubling. */
    size_t span_bits = 0;
    while ((lo << (span_bits + 1)) <= hi)
        span_bits++;
    size_t e = (size_t)(tu_rng_next(&rng) % (span_bits + 1));
    size_t base = lo << e;
    size_t top = base * 2 < hi ? base * 2 : hi;
    return base + (size_t)(tu_rng_next(&rng) % (top - base + 1));
}

static size_t random_size(void)
{
    unsigned pick = (unsigned)(tu_rng_next(&rng) % 1000);
    if (pick < 780) {
        count_small++;
        if (pick < 20)
            return 0;
        if (pick < 400)
            return 1 + (size_t)(tu_rng_next(&rng) % 64);
        return 1 + (size_t)(tu_rng_next(&rng) % OM_SMALL_SIZE_MAX);
    }
    if (pick < 965) {
        count_medium++;
        if (pick < 900)
            return log_uniform(OM_SMALL_SIZE_MAX + 1, 32 * KB);
        return log_uniform(OM_SMALL_SIZE_MAX + 1, OM_MEDIUM_SIZE_MAX);
    }
    if (pick < 995) {
        /* The boundaries: 512/513, a medium class size ± 1, 256 KiB ± 1. */
        count_boundary++;
        size_t c = (size_t)(tu_rng_next(&rng) % OM_MEDIUM_CLASS_COUNT);
        switch (tu_rng_next(&rng) % 6) {
        case 0:
            return OM_SMALL_SIZE_MAX + (size_t)(tu_rng_next(&rng) % 2);
        case 1:
            return tu_medium_class_bytes(c) - 1;
        case 2:
            return tu_medium_class_bytes(c);
        case 3:
            return tu_medium_class_bytes(c) + 1;
        default:
            return OM_MEDIUM_SIZE_MAX + (size_t)(tu_rng_next(&rng) % 2);
        }
    }
    count_large++;
    return log_uniform(OM_MEDIUM_SIZE_MAX + 1, LARGE_MAX);
}

/* ---- Operations -------------------------------------------------------------- */

static void check_new_block(size_t index, const unsigned char *p, size_t size,
                            size_t alignment, int exact)
{
    if (((uintptr_t)p & (alignment - 1)) != 0) {
        bad_blocks++;
        report("misaligned block", index, (size_t)(uintptr_t)p);
    }
    size_t usable = om_usable_size(p);
    size_t expect = exact ? tu_fresh_usable(size) : 0;
    if (usable < size || (expect != 0 && usable != expect)) {
        bad_blocks++;
        report("wrong usable size", index, usable);
    }
}

static void do_alloc(size_t index)
{
    slot *s = &slots[index];
    size_t size = random_size();
    uint8_t heap = (uint8_t)(tu_rng_next(&rng) & 1);
    om_heap *h = heap ? private_heap : NULL;
    unsigned kind = (unsigned)(tu_rng_next(&rng) % 20);
    size_t alignment = OM_ALIGNMENT;
    int exact = 1;
    unsigned char *p;
    if (kind < 9) {
        p = heap ? om_heap_malloc(h, size) : (kind & 1) ? om_obj_malloc(size) : om_mem_malloc(size);
    } else if (kind < 13) {
        size_t count = (size % 8 == 0 && size) ? 8 : 1;
        p = heap ? om_heap_calloc(h, count, size / count)
            : (kind & 1) ? om_obj_calloc(count, size / count)
                         : om_mem_calloc(count, size / count);
        if (p && !tu_is_zero(p, size)) {
            corrupt_blocks++;
            report("calloc block not zeroed", index, size);
        }
    } else if (kind < 15) {
        p = heap ? om_heap_realloc(h, NULL, size) : om_mem_realloc(NULL, size);
    } else {
        count_aligned++;
        unsigned shift = (unsigned)(tu_rng_next(&rng) % 100);
        /* 16 B … 64 KiB mostly, up to 1 MiB sometimes. */
        alignment = (size_t)16 << (shift < 95 ? shift % 13 : 13 + shift % 4);
        p = heap ? om_heap_aligned_alloc(h, alignment, size) : om_aligned_alloc(alignment, size);
        exact = 0;
    }
    if (!p) {
        alloc_failures++;
        report("allocation failed", index, size);
        return;
    }
    check_new_block(index, p, size, alignment, exact);
    s->ptr = p;
    s->size = size;
    s->heap = heap;
    s->gen = ++generation;
    fill_pattern(p, size, block_seed(index, s->gen));
}

static void do_free(size_t index)
{
    slot *s = &slots[index];
    verify_slot(index, s->size);
    if (tu_rng_next(&rng) & 1)
        om_obj_free(s->ptr);
    else
        om_mem_free(s->ptr);
    s->ptr = NULL;
}

static void do_realloc(size_t index)
{
    slot *s = &slots[index];
    size_t size = random_size();
    if (size == 0)
        size = 1 + (size_t)(tu_rng_next(&rng) % 8);
    verify_slot(index, s->size);
    unsigned which = (unsigned)(tu_rng_next(&rng) % 4);
    unsigned char *p;
    uint8_t heap = s->heap;
    switch (which) {
    case 0:
        p = om_mem_realloc(s->ptr, size);
        break;
    case 1:
        p = om_obj_realloc(s->ptr, size);
        break;
    default:
        /* A moved block lands in the heap named here. */
        heap = which == 2;
        p = om_heap_realloc(heap ? private_heap : NULL, s->ptr, size);
        break;
    }
    if (!p) {
        alloc_failures++;
        report("realloc failed", index, size);
        return; /* the old block stays in the slot */
    }
    if (p != s->ptr)
        s->heap = heap;
    s->ptr = p;
    size_t keep = s->size < size ? s->size : size;
    verify_slot(index, keep);
    check_new_block(index, p, size, OM_ALIGNMENT, 0);
    s->size = size;
    s->gen = ++generation;
    fill_pattern(p, size, block_seed(index, s->gen));
}

/* The tiers' used bytes over both heaps, against the model. */
static void check_against_stats(int final)
{
    om_heap_stats d, p;
    CHECK(om_heap_get_stats(NULL, &d) == 0);
    CHECK(om_heap_get_stats(private_heap, &p) == 0);
    size_t large = 0, large_model_min = 0;
    for (size_t i = 0; i < MAX_SLOTS; i++) {
        if (!slots[i].ptr)
            continue;
        if (om_usable_size(slots[i].ptr) > OM_MEDIUM_SIZE_MAX) {
            large++;
            large_model_min += slots[i].size;
        }
    }
    CHECK_EQ_SIZE(d.large_count + p.large_count, large);
    CHECK(d.large_bytes + p.large_bytes >= large_model_min);
    if (final) {
        CHECK_EQ_SIZE(d.small_used_bytes + p.small_used_bytes, 0);
        CHECK_EQ_SIZE(d.medium_used_bytes + p.medium_used_bytes, 0);
        CHECK_EQ_SIZE(d.large_count + p.large_count, 0);
        CHECK_EQ_SIZE(d.large_bytes + p.large_bytes, 0);
        CHECK(d.medium_arenas_current <= 1);
        CHECK(p.medium_arenas_current <= 1);
    }
}

int main(int argc, char **argv)
{
    uint64_t seed = 0x13198a2e03707344ULL;
    unsigned long long ops = OM_TEST_SCALE(5000000ULL);
    if (argc > 1)
        seed = strtoull(argv[1], NULL, 0);
    if (argc > 2)
        ops = strtoull(argv[2], NULL, 0);
    rng.state = seed ? seed : 1;
    printf("test-mixed: seed 0x%llx, %llu operations\n", (unsigned long long)seed, ops);
    private_heap = om_heap_new();
    CHECK(private_heap != NULL);
    if (!private_heap)
        return check_report();

    static const size_t limits[] = {1, 16, 300, 3000, 10000, MAX_SLOTS};
    size_t limit = 3000;
    unsigned long long phase_len = ops / 20 ? ops / 20 : 1;
    size_t peak_medium_arenas = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    for (op_index = 0; op_index < ops; op_index++) {
        if (op_index % phase_len == 0) {
            check_against_stats(0);
            om_heap_stats d, p;
            om_heap_get_stats(NULL, &d);
            om_heap_get_stats(private_heap, &p);
            if (d.medium_arenas_current + p.medium_arenas_current > peak_medium_arenas)
                peak_medium_arenas = d.medium_arenas_current + p.medium_arenas_current;
            size_t next = limits[tu_rng_next(&rng) % (sizeof limits / sizeof limits[0])];
            for (size_t i = next; i < limit; i++)
                if (slots[i].ptr)
                    do_free(i);
            limit = next;
        }
        size_t index = (size_t)(tu_rng_next(&rng) % limit);
        if (!slots[index].ptr)
            do_alloc(index);
        else if (tu_rng_next(&rng) % 3 != 0)
            do_free(index);
        else
            do_realloc(index);
    }
    check_against_stats(0);

    size_t live = 0;
    for (size_t i = 0; i < MAX_SLOTS; i++) {
        if (slots[i].ptr) {
            live++;
            do_free(i);
        }
    }
    check_against_stats(1);
    CHECK_EQ_SIZE(corrupt_blocks, 0);
    CHECK_EQ_SIZE(alloc_failures, 0);
    CHECK_EQ_SIZE(bad_blocks, 0);
    /* Every tier was exercised. */
    CHECK(count_small > 0 && count_medium > 0 && count_large > 0 && count_boundary > 0);
    CHECK(count_aligned > 0);

    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("test-mixed: %u blocks (sizes drawn: %zu small, %zu medium, %zu boundary, %zu large; "
           "%zu aligned), %zu live at the end, peak %zu medium arenas, %.1f s\n",
           (unsigned)generation, count_small, count_medium, count_boundary, count_large,
           count_aligned, live, peak_medium_arenas,
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    om_heap_trim(NULL);
    om_heap_delete(private_heap);
    return check_report();
}
