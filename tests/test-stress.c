/*
 * test-stress.c — randomized malloc/calloc/realloc/free against a shadow model.
 *
 * A table of slots holds the live blocks (pointer, size, domain, generation).
 * Each operation picks a slot at random: an empty slot gets a block from
 * om_mem_* or om_obj_* (malloc, calloc or realloc(NULL, n)); a live slot is
 * freed or reallocated. Every block is filled with a pattern derived from
 * (slot, generation), and the whole block is verified before each free and
 * realloc, so that two blocks that overlap, a block handed out twice, or a
 * free list written into a live block show up as a pattern mismatch.
 *
 * The model knows the block size of each block: a new block of n <= 512
 * bytes gets exactly its class; a realloc keeps a small block in place when
 * the new size fits it and uses more than three quarters of it (api.md),
 * and otherwise gives the new size's class. Requests of 513..600 bytes are
 * medium blocks (issue 3), all of the first medium class, 640 bytes.
 *
 * The active part of the table changes size in phases, so that pools and
 * arenas fill, empty and get released along the way. At each phase boundary
 * the default heap's per-class used_blocks must equal the model's count and
 * om_heap_check must pass; at the end everything is freed and every class
 * must be empty.
 *
 * With a fault rate, om_fail_random makes that share of the MEM and OBJ
 * allocations fail: each failure must leave the model and the heap intact
 * (a failed realloc keeps its block, verified later), and the failures seen
 * must be exactly those injected.
 *
 * Usage: test-stress [seed [operations [failures-per-million]]]
 * (defaults: fixed seed, 10M ops — a tenth under sanitizers — no faults).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "objmem.h"
#include "testutil.h"

#define MAX_SLOTS 300000
#define MAX_SIZE 600
#define REPORT_LIMIT 10

typedef struct slot {
    unsigned char *ptr; /* NULL when empty */
    uint32_t size;      /* bytes requested */
    uint32_t gen;       /* generation that wrote the pattern */
    uint16_t block;     /* pool block size (16..512), 0 for a medium block */
    uint8_t domain;     /* 0 = mem, 1 = obj */
} slot;

static slot slots[MAX_SLOTS];
static tu_rng rng; /* seeded in main */
static uint32_t generation;
static size_t errors_reported;
static size_t corrupt_blocks;
static size_t alloc_failures;
static long fault_per_million; /* argv[3]: fault injection rate, 0 = none */
static size_t bad_blocks; /* misaligned or usable size too small */
static unsigned long long op_index;

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static uint64_t block_seed(size_t index, uint32_t gen)
{
    return mix64(((uint64_t)index << 32) ^ gen ^ 0x5bd1e995u);
}

static uint64_t pattern_word(uint64_t seed, size_t k)
{
    return seed ^ ((uint64_t)(k + 1) * 0x9e3779b97f4a7c15ULL);
}

static void fill_pattern(unsigned char *p, size_t size, uint64_t seed)
{
    size_t words = size / 8;
    for (size_t k = 0; k < words; k++) {
        uint64_t w = pattern_word(seed, k);
        memcpy(p + 8 * k, &w, 8);
    }
    if (size % 8) {
        uint64_t w = pattern_word(seed, words);
        memcpy(p + 8 * words, &w, size % 8);
    }
}

/* Number of leading bytes that match the pattern (size if all do). */
static size_t pattern_prefix(const unsigned char *p, size_t size, uint64_t seed)
{
    size_t words = size / 8;
    for (size_t k = 0; k < words; k++) {
        uint64_t w = pattern_word(seed, k);
        if (memcmp(p + 8 * k, &w, 8) != 0) {
            size_t i = 0;
            while (i < 8 && p[8 * k + i] == ((const unsigned char *)&w)[i])
                i++;
            return 8 * k + i;
        }
    }
    if (size % 8) {
        uint64_t w = pattern_word(seed, words);
        for (size_t i = 0; i < size % 8; i++)
            if (p[8 * words + i] != ((const unsigned char *)&w)[i])
                return 8 * words + i;
    }
    return size;
}

static void report(const char *what, size_t index, size_t detail)
{
    if (errors_reported++ < REPORT_LIMIT)
        fprintf(stderr, "op %llu: slot %zu (%s, size %u, gen %u): %s (%zu)\n", op_index, index,
                slots[index].domain ? "obj" : "mem", (unsigned)slots[index].size,
                (unsigned)slots[index].gen, what, detail);
}

/* Verify the block of a live slot; `keep` bytes of it (all of it normally). */
static void verify_slot(size_t index, size_t keep)
{
    const slot *s = &slots[index];
    size_t good = pattern_prefix(s->ptr, keep, block_seed(index, s->gen));
    if (good != keep) {
        corrupt_blocks++;
        report("pattern mismatch at byte", index, good);
    }
}

static size_t random_size(void)
{
    uint64_t r = tu_rng_next(&rng);
    unsigned pick = (unsigned)(r % 100);
    r >>= 8;
    if (pick < 2)
        return 0;
    if (pick < 40)
        return 1 + (size_t)(r % 64);
    if (pick < 90)
        return 1 + (size_t)(r % OM_SMALL_SIZE_MAX);
    return OM_SMALL_SIZE_MAX + 1 + (size_t)(r % (MAX_SIZE - OM_SMALL_SIZE_MAX));
}

/* The first medium class: every request of 513..MAX_SIZE bytes gets it. */
#define FIRST_MEDIUM_CLASS 640
_Static_assert(MAX_SIZE <= FIRST_MEDIUM_CLASS, "the model knows one medium class");

/* Checks a block that the slot is about to hold and returns its pool block
 * size (0 for a medium block). `expect_block` is the block size the model
 * predicts for a small request. */
static uint16_t check_new_block(size_t index, const unsigned char *p, size_t size,
                                size_t expect_block)
{
    if (!tu_is_aligned(p)) {
        bad_blocks++;
        report("misaligned block", index, (size_t)(uintptr_t)p);
    }
    size_t usable = om_usable_size(p);
    if (usable < size || (size <= OM_SMALL_SIZE_MAX && usable != expect_block) ||
        (size > OM_SMALL_SIZE_MAX && usable != FIRST_MEDIUM_CLASS)) {
        bad_blocks++;
        report("wrong usable size", index, usable);
    }
    return size <= OM_SMALL_SIZE_MAX ? (uint16_t)expect_block : 0;
}

static void do_alloc(size_t index)
{
    slot *s = &slots[index];
    size_t size = random_size();
    uint8_t domain = (uint8_t)(tu_rng_next(&rng) & 1);
    unsigned kind = (unsigned)(tu_rng_next(&rng) % 20);
    unsigned char *p;
    if (kind < 12)
        p = domain ? om_obj_malloc(size) : om_mem_malloc(size);
    else if (kind < 17) {
        /* Split the size into count * elsize when it divides. */
        size_t count = (size % 4 == 0 && size) ? 4 : 1;
        p = domain ? om_obj_calloc(count, size / count) : om_mem_calloc(count, size / count);
        if (p && !tu_is_zero(p, size)) {
            corrupt_blocks++;
            s->size = (uint32_t)size;
            s->domain = domain;
            report("calloc block not zeroed", index, size);
        }
    } else
        p = domain ? om_obj_realloc(NULL, size) : om_mem_realloc(NULL, size);
    if (!p) {
        alloc_failures++;
        if (fault_per_million == 0)
            report("allocation failed", index, size);
        return;
    }
    s->block = check_new_block(index, p, size, tu_small_class_size(size));
    s->ptr = p;
    s->size = (uint32_t)size;
    s->domain = domain;
    s->gen = ++generation;
    fill_pattern(p, size, block_seed(index, s->gen));
}

static void do_free(size_t index)
{
    slot *s = &slots[index];
    verify_slot(index, s->size);
    if (s->domain)
        om_obj_free(s->ptr);
    else
        om_mem_free(s->ptr);
    s->ptr = NULL;
}

static void do_realloc(size_t index)
{
    slot *s = &slots[index];
    /* realloc(p, 0) is left out: the header does not define it. */
    size_t size = random_size();
    if (size == 0)
        size = 1 + (size_t)(tu_rng_next(&rng) % 8);
    verify_slot(index, s->size);
    unsigned char *old = s->ptr;
    unsigned char *p = s->domain ? om_obj_realloc(old, size) : om_mem_realloc(old, size);
    if (!p) {
        alloc_failures++;
        if (fault_per_million == 0)
            report("realloc failed", index, size);
        return; /* the old block stays in the slot */
    }
    s->ptr = p;
    size_t keep = s->size < size ? s->size : size;
    verify_slot(index, keep);
    size_t expect = tu_small_class_size(size);
    if (s->block && size <= s->block && 4 * size > 3 * (size_t)s->block) {
        expect = s->block;
        if (p != old) {
            bad_blocks++;
            report("realloc moved a block that fits in place", index, size);
        }
    }
    s->block = check_new_block(index, p, size, expect);
    s->size = (uint32_t)size;
    s->gen = ++generation;
    fill_pattern(p, size, block_seed(index, s->gen));
}

/* The default heap's class counts must match the model's live blocks.
 * A zero-byte request gets a 16-byte block (design-pool.md). */
static void check_against_stats(void)
{
    size_t expect[OM_SMALL_CLASS_COUNT] = {0};
    size_t zero = 0;
    for (size_t i = 0; i < MAX_SLOTS; i++) {
        if (!slots[i].ptr)
            continue;
        if (slots[i].size == 0)
            zero++;
        if (slots[i].block)
            expect[slots[i].block / OM_ALIGNMENT - 1]++;
    }
    om_heap_stats st;
    CHECK(om_heap_get_stats(NULL, &st) == 0);
    size_t mismatched = 0;
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++) {
        size_t used = st.classes[c].used_blocks;
        if (used != expect[c]) {
            mismatched++;
            fprintf(stderr, "op %llu: class %zu used_blocks %zu, model %zu (%zu of 0 bytes)\n",
                    op_index, c, used, expect[c], c == 0 ? zero : 0);
        }
    }
    CHECK_EQ_SIZE(mismatched, 0);
    CHECK(st.arenas_current == st.arenas_allocated - st.arenas_freed);
}

int main(int argc, char **argv)
{
    uint64_t seed = 0x243f6a8885a308d3ULL;
    unsigned long long ops = OM_TEST_SCALE(10000000ULL);
    if (argc > 1)
        seed = strtoull(argv[1], NULL, 0);
    if (argc > 2)
        ops = strtoull(argv[2], NULL, 0);
    if (argc > 3)
        fault_per_million = strtol(argv[3], NULL, 0);
    rng.state = seed ? seed : 1;
    /* With faults injected, failed allocations must leave the model and the
     * heap intact: every check below still holds, and the failures seen are
     * exactly the ones injected. */
    CHECK(om_fail_random(OM_DOMAIN_MEM, fault_per_million, seed) == 0);
    CHECK(om_fail_random(OM_DOMAIN_OBJ, fault_per_million, seed + 1) == 0);
    printf("test-stress: seed 0x%llx, %llu operations\n", (unsigned long long)seed, ops);

    om_heap_stats st0;
    CHECK(om_heap_get_stats(NULL, &st0) == 0);

    static const size_t limits[] = {1, 16, 300, 5000, 30000, MAX_SLOTS, MAX_SLOTS};
    size_t limit = MAX_SLOTS;
    unsigned long long phase_len = ops / 24 ? ops / 24 : 1;
    size_t peak_arenas = 0, frees_between = 0;
    clock_t start = clock();

    for (op_index = 0; op_index < ops; op_index++) {
        if (op_index % phase_len == 0) {
            check_against_stats();
            CHECK(om_heap_check() == 0);
            om_heap_stats st;
            CHECK(om_heap_get_stats(NULL, &st) == 0);
            if (st.arenas_current > peak_arenas)
                peak_arenas = st.arenas_current;
            size_t next = limits[tu_rng_next(&rng) % (sizeof limits / sizeof limits[0])];
            /* Shrinking the window frees the slots beyond it. */
            for (size_t i = next; i < limit; i++)
                if (slots[i].ptr)
                    do_free(i);
            limit = next;
            om_heap_stats after;
            CHECK(om_heap_get_stats(NULL, &after) == 0);
            if (after.arenas_freed > st.arenas_freed)
                frees_between++;
        }
        size_t index = (size_t)(tu_rng_next(&rng) % limit);
        if (!slots[index].ptr)
            do_alloc(index);
        else if (tu_rng_next(&rng) & 1)
            do_free(index);
        else
            do_realloc(index);
    }
    check_against_stats();

    /* Verify everything, then free everything. */
    size_t live = 0;
    for (size_t i = 0; i < MAX_SLOTS; i++) {
        if (slots[i].ptr) {
            live++;
            do_free(i);
        }
    }
    om_heap_stats st;
    CHECK(om_heap_get_stats(NULL, &st) == 0);
    size_t used_classes = 0;
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++) {
        if (st.classes[c].used_blocks != 0) {
            used_classes++;
            fprintf(stderr, "class %zu: %zu blocks still used\n", c, st.classes[c].used_blocks);
        }
    }
    CHECK_EQ_SIZE(used_classes, 0);
    CHECK_EQ_SIZE(st.small_used_bytes, st0.small_used_bytes);
    CHECK_EQ_SIZE(st.small_used_bytes, 0);
    CHECK_EQ_SIZE(st.medium_used_bytes, 0);
    CHECK(st.arenas_current <= OM_SMALL_CLASS_COUNT + 1);
    CHECK(st.arenas_current == st.arenas_allocated - st.arenas_freed);

    CHECK_EQ_SIZE(corrupt_blocks, 0);
    CHECK(om_heap_check() == 0);
    if (fault_per_million == 0) {
        CHECK_EQ_SIZE(alloc_failures, 0);
    } else {
        CHECK(alloc_failures > 0);
        CHECK_EQ_SIZE(alloc_failures,
                      (size_t)(om_fail_count(OM_DOMAIN_MEM) + om_fail_count(OM_DOMAIN_OBJ)));
        printf("test-stress: %zu allocations failed on purpose, all handled\n", alloc_failures);
    }
    CHECK_EQ_SIZE(bad_blocks, 0);

    printf("test-stress: %u allocations, %zu live at the end, peak %zu arenas, "
           "arenas freed in %zu phase changes, %.1f s\n",
           (unsigned)generation, live, peak_arenas, frees_between,
           (double)(clock() - start) / CLOCKS_PER_SEC);
    return check_report();
}
