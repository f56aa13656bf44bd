/*
 * test-check.c — om_heap_check, the heap invariant checker (issue 9).
 *
 * The corruption catalogue: each case runs in a child process
 * (check_run_child). The child builds a small private heap (or uses the
 * default runtime's collector), breaks one structure the way a bug or a
 * stray write would, and calls om_heap_check_heap / om_heap_check. The
 * parent asserts that the child died of SIGABRT with one report on stderr
 * that starts "objmem: fatal error: om_heap_check: " and names the broken
 * invariant (the case's phrase):
 *   pools: a free-list link to a misaligned address and a free list that
 *   loops, a used count that disagrees with the free list, a lone pool
 *   marked as one of several, a pool on its class list marked unlisted;
 *   arenas: a wrong free-pool count, a broken all-arenas back link, the
 *   mask of free-pool counts, the spare count, an arena missing from the
 *   address map; medium: the bin mask, a cache count, a cached block's
 *   link overwritten after free, the arena count, the address map; large:
 *   the block count, the address map; the collector: a broken previous
 *   link, a head marked with the wrong generation, a pending flag in
 *   generation 0, a dead object still tracked, an object unlinked behind
 *   the counts' back.
 * (The unlisted flag is reported as a pool off its class list that is not
 * full: the per-pool check comes first.)
 * And the other way: om_heap_check passes (returns 0, no report) from a
 * destroy hook in the middle of a release cascade, and all
 * through a heavy mixed workload: every tier in the default heap and two
 * private heaps, reallocs across tiers, trims, object graphs with cycles,
 * weak references and collections of every generation.
 */
#include <signal.h>
#include <stddef.h>

#include "check.h"
#include "internal.h"
#include "testutil.h"

#ifdef OM_TEST_SANITIZED
#include <sanitizer/asan_interface.h>
#endif

#define REPORT_PREFIX "objmem: fatal error: om_heap_check: "

typedef struct corruption {
    const char *name;
    void (*corrupt)(om_heap *h);   /* breaks h (or the collector) */
    const char *phrase;            /* the report must contain it */
    const char *secure_phrase;     /* in hardened mode, if it differs */
} corruption;

/* A stray write of one word into free memory (which ASan keeps poisoned in
 * the sanitizer build: the write is let through, as a bug's would be). */
static void stray_write(void *at, const void *word)
{
#ifdef OM_TEST_SANITIZED
    __asan_unpoison_memory_region(at, sizeof(void *));
#endif
    memcpy(at, word, sizeof(void *));
#ifdef OM_TEST_SANITIZED
    __asan_poison_memory_region(at, sizeof(void *));
#endif
}

/* Allocations a corruption only needs to exist (the child never frees). */
static void alloc_kept(om_heap *h, size_t size)
{
    void *p = om_heap_malloc(h, size);
    CHECK(p != NULL);
}

/* ---- Pools and arenas ------------------------------------------------------ */

/* A pool of the 48-byte class with some blocks used and some free. */
static omi_pool *pool_with_free_blocks(om_heap *h, void **blocks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        blocks[i] = om_heap_malloc(h, 48);
    for (size_t i = 0; i < n; i += 2)
        om_mem_free(blocks[i]);
    return omi_pool_of(blocks[1]);
}

/* Overwrites the link of the pool's first free block with a raw pointer
 * (hardened mode keeps the list elsewhere and encoded: the raw value then
 * decodes to garbage). */
static void set_free_link(omi_pool *pool, omi_block *to)
{
    stray_write(omi_pool_free_first(pool), &to);
}

static void corrupt_free_link(om_heap *h)
{
    void *blocks[8];
    omi_pool *pool = pool_with_free_blocks(h, blocks, 8);
    set_free_link(pool, (omi_block *)((char *)blocks[1] + 8));
}

static void corrupt_free_cycle(om_heap *h)
{
    void *blocks[8];
    omi_pool *pool = pool_with_free_blocks(h, blocks, 8);
    set_free_link(pool, omi_pool_free_first(pool));
}

static void corrupt_used_count(om_heap *h)
{
    void *blocks[8];
    pool_with_free_blocks(h, blocks, 8)->used++;
}

static void corrupt_alone_flag(om_heap *h)
{
    void *blocks[8];
    pool_with_free_blocks(h, blocks, 8)->list_state = OMI_POOL_LISTED;
}

static void corrupt_unlisted_flag(om_heap *h)
{
    void *blocks[8];
    pool_with_free_blocks(h, blocks, 8)->list_state = OMI_POOL_UNLISTED;
}

static void corrupt_nfree(om_heap *h)
{
    void *p = om_heap_malloc(h, 100);
    omi_arena_of_pool(omi_pool_of(p))->nfree_pools--;
}

/* Two arenas (one more pool of 512-byte blocks than an arena holds): the
 * second one made heads the all-arenas list. */
static void fill_two_arenas(om_heap *h)
{
    for (size_t i = 0; i < (OMI_POOLS_USABLE + 1) * (OMI_POOL_SIZE / OM_SMALL_SIZE_MAX); i++)
        alloc_kept(h, OM_SMALL_SIZE_MAX);
}

static void corrupt_all_prev(om_heap *h)
{
    fill_two_arenas(h);
    h->all_arenas->all_next->all_prev = NULL;
}

static void corrupt_nfree_mask(om_heap *h)
{
    alloc_kept(h, 16);
    h->nfree_present ^= 1;   /* claims (or denies) an arena with no free pool */
}

static void corrupt_spare_count(om_heap *h)
{
    alloc_kept(h, 16);
    h->spare_count++;
}

static void corrupt_arena_map(om_heap *h)
{
    void *p = om_heap_malloc(h, 16);
    omi_addrmap_clear((uintptr_t)omi_arena_of_pool(omi_pool_of(p)), OMI_ARENA_SIZE);
}

/* ---- Medium blocks -------------------------------------------------------------- */

static void corrupt_bin_mask(om_heap *h)
{
    alloc_kept(h, 4000);
    h->medium.bin_mask ^= (uint64_t)1 << 3;
}

static void corrupt_cache_count(om_heap *h)
{
    om_mem_free(om_heap_malloc(h, 4000));
    for (size_t c = 0; c < OMI_MEDIUM_CLASS_COUNT; c++)
        if (h->medium.cache[c].count != 0)
            h->medium.cache[c].count++;
}

/* A write after free: the first word of a cached medium block. */
static void corrupt_cached_link(om_heap *h)
{
    void *keep = om_heap_malloc(h, 4000);
    char *p = om_heap_malloc(h, 4000);
    om_mem_free(p);
    stray_write(p, &keep);
}

static void corrupt_medium_count(om_heap *h)
{
    alloc_kept(h, 4000);
    h->medium.arenas_current++;
}

static void corrupt_medium_map(om_heap *h)
{
    void *p = om_heap_malloc(h, 4000);
    omi_addrmap_clear((uintptr_t)p & ~(uintptr_t)(OMI_ARENA_SIZE - 1), OMI_ARENA_SIZE);
}

/* ---- Large blocks ---------------------------------------------------------------- */

static void corrupt_large_count(om_heap *h)
{
    alloc_kept(h, 3 * MB);
    h->large_count++;
}

static void corrupt_large_map(om_heap *h)
{
    char *p = om_heap_malloc(h, 3 * MB);
    uintptr_t second_slot = ((uintptr_t)p & ~(uintptr_t)(OMI_ARENA_SIZE - 1)) + OMI_ARENA_SIZE;
    omi_addrmap_clear(second_slot, OMI_ARENA_SIZE);
}

/* ---- The collector (the default runtime's) --------------------------------------- */

static om_object *tracked_list(void)
{
    om_object *l = om_list_new(0);
    CHECK(l != NULL && om_gc_is_tracked(l));
    return l;
}

static void corrupt_gc_prev(om_heap *h)
{
    (void)h;
    om_object *a = tracked_list();
    (void)tracked_list();
    om_object *c = tracked_list();
    omi_gc_head *head = omi_gc_head_of(c);
    head->prev = (uintptr_t)omi_gc_head_of(a) | (head->prev & OMI_GC_FLAG_MASK);
}

static void corrupt_gc_space(om_heap *h)
{
    (void)h;
    om_object *a = tracked_list();
    omi_gc_head_of(a)->prev ^= (uintptr_t)1 << 1;   /* generation 0 → 1 */
}

static void corrupt_gc_pending(om_heap *h)
{
    (void)h;
    om_object *a = tracked_list();
    omi_gc_head_of(a)->next |= OMI_GC_PENDING;
}

static void corrupt_gc_dead(om_heap *h)
{
    (void)h;
    om_object *a = tracked_list();
    a->ob_refcnt = 0;
}

/* Unlinks b from between its neighbours without telling the counts. */
static void corrupt_gc_unlinked(om_heap *h)
{
    (void)h;
    om_object *a = tracked_list();
    om_object *b = tracked_list();
    om_object *c = tracked_list();
    omi_gc_head *ha = omi_gc_head_of(a), *hb = omi_gc_head_of(b), *hc = omi_gc_head_of(c);
    ha->next = (uintptr_t)hc | (ha->next & OMI_GC_FLAG_MASK);
    hc->prev = (uintptr_t)ha | (hc->prev & OMI_GC_FLAG_MASK);
    hb->next = hb->prev = 0;
}

static const corruption corruptions[] = {
    {"free link", corrupt_free_link, "is not a carved block of it", NULL},
    {"free cycle", corrupt_free_cycle, "its free list has a cycle", "is not a carved block of it"},
    {"used count", corrupt_used_count, "used + ", NULL},
    {"alone flag", corrupt_alone_flag, "the only pool of class 48 B is not marked alone", NULL},
    {"unlisted flag", corrupt_unlisted_flag, "is off its class list but not full", NULL},
    {"nfree", corrupt_nfree, "free pools counted", NULL},
    {"all prev", corrupt_all_prev, "the all-arenas list is broken", NULL},
    {"nfree mask", corrupt_nfree_mask, "the mask of free-pool counts disagrees", NULL},
    {"spare count", corrupt_spare_count, "spare arenas stacked", NULL},
    {"arena map", corrupt_arena_map, "address map: slot", NULL},
    {"bin mask", corrupt_bin_mask, "bin 3 and the bin mask disagree", NULL},
    {"cache count", corrupt_cache_count, "the cache of class", NULL},
    {"cached link", corrupt_cached_link, "not a cached block of that class", NULL},
    {"medium count", corrupt_medium_count, "medium arenas listed", NULL},
    {"medium map", corrupt_medium_map, "of medium arena", NULL},
    {"large count", corrupt_large_count, "large blocks", NULL},
    {"large map", corrupt_large_map, "of large mapping", NULL},
    {"gc prev", corrupt_gc_prev, "collector: generation 0: object", NULL},
    {"gc space", corrupt_gc_space, "is marked as in space 1", NULL},
    {"gc pending", corrupt_gc_pending, "flagged pending outside generation 2", NULL},
    {"gc dead", corrupt_gc_dead, "is dead or not of a GC type", NULL},
    {"gc unlinked", corrupt_gc_unlinked, "objects listed, ", NULL},
};

static void corruption_child(void *arg)
{
    const corruption *c = arg;
    om_heap *h = om_heap_new();
    bool collector = strncmp(c->name, "gc ", 3) == 0;
    om_gc_disable();   /* no collection between the corruption and the check */
    c->corrupt(h);
    if (collector)
        om_heap_check();
    else
        om_heap_check_heap(h);
    fprintf(stderr, "test-check: no report\n");
}

static void test_corruptions(void)
{
    bool secure = om_option_get(OM_OPTION_SECURE) == 1;
    for (size_t i = 0; i < sizeof corruptions / sizeof corruptions[0]; i++) {
        const corruption *c = &corruptions[i];
        char err[4096];
        int status = check_run_child(corruption_child, (void *)c, err, sizeof err);
        bool aborted = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
        const char *phrase = secure && c->secure_phrase != NULL ? c->secure_phrase : c->phrase;
        bool named = strstr(err, REPORT_PREFIX) != NULL && strstr(err, phrase) != NULL;
        CHECK(aborted);
        CHECK(named);
        CHECK(tu_count_occurrences(err, "objmem: fatal error:") == 1);
        if (!aborted || !named)
            fprintf(stderr, "case '%s' (want \"%s\"): status %#x, stderr:\n%s\n", c->name,
                    phrase, (unsigned)status, err);
    }
}

/* ---- Heavy workload: the checker finds nothing wrong ------------------------------- */

typedef struct node {
    OM_OBJECT_HEAD;
    om_object *f[2];
} node;

static size_t checks_passed;

static void check_all(om_heap **heaps, size_t n)
{
    int rc = om_heap_check();
    for (size_t i = 0; i < n; i++)
        rc |= om_heap_check_heap(heaps[i]);
    checks_passed += rc == 0;
}

static size_t workload_size(tu_rng *r)
{
    switch (tu_rng_next(r) % 8) {
    case 0: return OM_SMALL_SIZE_MAX + tu_rng_next(r) % (64 * KB);
    case 1: return tu_rng_next(r) % 8 == 0 ? OM_MEDIUM_SIZE_MAX + tu_rng_next(r) % (3 * MB)
                                            : 1000 + tu_rng_next(r) % (200 * KB);
    default: return tu_rng_next(r) % (OM_SMALL_SIZE_MAX + 1);
    }
}

static void allocation_rounds(tu_rng *r, om_heap **heaps, size_t rounds)
{
    enum { SLOTS = 512 };
    static void *slots[SLOTS];
    for (size_t round = 0; round < rounds; round++) {
        for (size_t step = 0; step < 4 * SLOTS; step++) {
            void **s = &slots[tu_rng_next(r) % SLOTS];
            unsigned which = (unsigned)(tu_rng_next(r) % 4);
            om_heap *h = which < 2 ? heaps[which] : NULL;
            if (*s == NULL)
                *s = om_heap_malloc(h, workload_size(r));
            else if (which == 3)
                *s = om_heap_realloc(h, *s, workload_size(r));
            else {
                om_mem_free(*s);
                *s = NULL;
            }
        }
        check_all(heaps, 2);
        if (round % 3 == 2) {
            om_heap_trim(heaps[round % 2]);
            check_all(heaps, 2);
        }
    }
    for (size_t i = 0; i < SLOTS; i++) {
        om_mem_free(slots[i]);
        slots[i] = NULL;
    }
}

static void object_rounds(tu_rng *r, om_heap **heaps, size_t rounds)
{
    static const size_t fields[] = {offsetof(node, f[0]), offsetof(node, f[1])};
    om_type_spec spec = {.name = "check_node", .size = sizeof(node),
                         .flags = OM_TYPE_WEAKREFABLE, .object_offsets = fields,
                         .object_offset_count = 2};
    om_type *type = om_type_from_spec(&spec);
    CHECK(type != NULL);
    enum { NODES = 2000 };
    static om_object *nodes[NODES];
    for (size_t round = 0; round < rounds; round++) {
        om_object *keep = om_list_new(0);
        for (size_t i = 0; i < NODES; i++)
            nodes[i] = om_new(type);
        for (size_t i = 0; i < NODES; i++) {
            node *n = (node *)nodes[i];
            for (int f = 0; f < 2; f++) {
                n->f[f] = nodes[tu_rng_next(r) % NODES];
                om_incref(n->f[f]);
            }
            if (i % 7 == 0) {
                om_object *ref = om_weakref_new(nodes[i], NULL);
                CHECK(ref != NULL && om_list_append(keep, ref) == 0);
                om_xdecref(ref);
            }
            if (i % 5 == 0)
                CHECK(om_list_append(keep, nodes[i]) == 0);
        }
        for (size_t i = 0; i < NODES; i++)
            om_decref(nodes[i]);
        check_all(heaps, 2);
        om_gc_collect((int)(round % 3));
        check_all(heaps, 2);
        om_decref(keep);   /* the weak references go with it */
        om_gc_collect(2);
        check_all(heaps, 2);
    }
    om_type_delete(type);
}

/* om_heap_check from a destroy hook, in the middle of a release cascade:
 * the objects waiting on the release stack are still tracked, with their
 * count words holding the stack's links, and are no violation. */
static size_t checks_in_destroy;

static void check_in_destroy(om_object *self)
{
    (void)self;
    checks_in_destroy += om_heap_check() == 0;
}

static void test_check_during_release(void)
{
    static const size_t fields[] = {offsetof(node, f[0]), offsetof(node, f[1])};
    om_type_spec spec = {.name = "check_chain", .size = sizeof(node), .object_offsets = fields,
                         .object_offset_count = 2, .destroy = check_in_destroy};
    om_type *type = om_type_from_spec(&spec);
    CHECK(type != NULL);
    /* A tree, so that a release pushes two children and checks with one
     * of them still waiting. */
    enum { DEPTH = 5 };
    om_object *level[1 << DEPTH] = {0};
    size_t made = 0;
    for (size_t i = (1u << DEPTH) - 1; i >= 1; i--) {
        om_object *n = om_new(type);
        CHECK(n != NULL);
        made++;
        if (2 * i + 1 < (1u << DEPTH)) {
            ((node *)n)->f[0] = level[2 * i];
            ((node *)n)->f[1] = level[2 * i + 1];
        }
        level[i] = n;
    }
    om_decref(level[1]);
    CHECK_EQ_SIZE(checks_in_destroy, made);
    om_type_delete(type);
}

static void test_heavy_workload(void)
{
    om_heap *heaps[2] = {om_heap_new(), om_heap_new()};
    CHECK(heaps[0] != NULL && heaps[1] != NULL);
    size_t live_before = tu_live_bytes();
    tu_rng r = {0xc4ec4ULL};
    size_t rounds = OM_TEST_SCALE(30);
    allocation_rounds(&r, heaps, rounds);
    object_rounds(&r, heaps, OM_TEST_SCALE(10));
    CHECK_EQ_SIZE(checks_passed, rounds + rounds / 3 + 3 * OM_TEST_SCALE(10));
    CHECK_EQ_SIZE(tu_live_bytes(), live_before);
    om_heap_delete(heaps[0]);
    om_heap_delete(heaps[1]);
    CHECK(om_heap_check() == 0);
}

int main(void)
{
    test_corruptions();
    test_heavy_workload();
    test_check_during_release();
    return check_report();
}
