/*
 * test-heap.c — private heaps.
 *
 *   - blocks of two heaps never overlap, and small blocks of different heaps
 *     never share an arena (each heap has its own arenas);
 *   - a block is owned by the heap that made it: om_obj_free / om_mem_free
 *     without a heap argument give it back to that heap (its stats drop, the
 *     other heap's do not); om_heap_realloc moves a block from heap A into B;
 *   - om_heap_default() is the heap of om_mem_* and om_obj_* (and of a NULL
 *     heap argument); private heaps do not touch it;
 *   - om_heap_delete releases a heap with many live blocks; the next heap
 *     works, also at reused addresses; deleting the default heap is fatal;
 *   - many heaps created and deleted in a loop leak no arenas (arena
 *     allocator counts and RSS);
 *   - one heap per thread, several threads at once;
 *   - the heap calls' share of the common contract (calloc, overflow) and the
 *     statistics output functions.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "objmem.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

static tu_rng rng = {0xdeadbeefcafef00dULL};
static const tu_pattern byte_pattern = {29, 13, 8, 5};

static size_t used_blocks(const om_heap *h, size_t cls)
{
    om_heap_stats st = tu_get_stats(h);
    return st.classes[cls].used_blocks;
}

static size_t total_used_blocks(const om_heap_stats *st)
{
    size_t n = 0;
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++)
        n += st->classes[c].used_blocks;
    return n;
}

static int stats_equal(const om_heap_stats *a, const om_heap_stats *b)
{
    if (a->arenas_allocated != b->arenas_allocated || a->arenas_freed != b->arenas_freed ||
        a->arenas_current != b->arenas_current || a->pools_used != b->pools_used ||
        a->small_used_bytes != b->small_used_bytes || a->mapped_bytes != b->mapped_bytes)
        return 0;
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++)
        if (a->classes[c].used_blocks != b->classes[c].used_blocks ||
            a->classes[c].pools != b->classes[c].pools)
            return 0;
    return 1;
}

typedef struct span {
    uintptr_t begin, end;
    int heap;
} span;

static int span_compare(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

static void test_no_overlap(void)
{
    enum { PER_HEAP = 20000 };
    om_heap *heaps[2] = {om_heap_new(), om_heap_new()};
    CHECK(heaps[0] != NULL && heaps[1] != NULL && heaps[0] != heaps[1]);
    if (!heaps[0] || !heaps[1])
        return;
    void **blocks = malloc(2 * PER_HEAP * sizeof *blocks);
    size_t *sizes = malloc(2 * PER_HEAP * sizeof *sizes);
    span *spans = malloc(2 * PER_HEAP * sizeof *spans);
    CHECK(blocks && sizes && spans);
    if (!blocks || !sizes || !spans) {
        free(blocks);
        free(sizes);
        free(spans);
        return;
    }
    size_t failed = 0, wrong_size = 0;
    for (size_t i = 0; i < 2 * PER_HEAP; i++) {
        int which = (int)(i & 1); /* interleave the heaps */
        size_t size = (size_t)(tu_rng_next(&rng) % 601);
        void *p = om_heap_malloc(heaps[which], size);
        blocks[i] = p;
        sizes[i] = size;
        if (!p) {
            failed++;
            spans[i] = (span){0, 0, which};
            continue;
        }
        size_t usable = om_usable_size(p);
        if (usable < size || (size <= OM_SMALL_SIZE_MAX && usable != tu_small_class_size(size)))
            wrong_size++;
        tu_fill_pattern(&byte_pattern, p, size, (unsigned)i);
        spans[i] = (span){(uintptr_t)p, (uintptr_t)p + (size ? size : 1), which};
    }
    CHECK_EQ_SIZE(failed, 0);
    CHECK_EQ_SIZE(wrong_size, 0);
    size_t corrupt = 0;
    for (size_t i = 0; i < 2 * PER_HEAP; i++)
        if (blocks[i] && !tu_has_pattern(&byte_pattern, blocks[i], sizes[i], (unsigned)i))
            corrupt++;
    CHECK_EQ_SIZE(corrupt, 0);

    qsort(spans, 2 * PER_HEAP, sizeof *spans, span_compare);
    size_t overlaps = 0, shared_arenas = 0;
    for (size_t i = 1; i < 2 * PER_HEAP; i++)
        if (spans[i].begin < spans[i - 1].end)
            overlaps++;
    CHECK_EQ_SIZE(overlaps, 0);
    /* Small blocks of different heaps never share an arena. */
    for (size_t i = 0; i < 2 * PER_HEAP; i++) {
        size_t j = i + 1;
        uintptr_t arena = spans[i].begin & ~(uintptr_t)(OM_ARENA_SIZE - 1);
        if (spans[i].end - spans[i].begin > OM_SMALL_SIZE_MAX)
            continue;
        while (j < 2 * PER_HEAP &&
               (spans[j].begin & ~(uintptr_t)(OM_ARENA_SIZE - 1)) == arena) {
            if (spans[j].end - spans[j].begin <= OM_SMALL_SIZE_MAX &&
                spans[j].heap != spans[i].heap) {
                shared_arenas++;
                break;
            }
            j++;
        }
    }
    CHECK_EQ_SIZE(shared_arenas, 0);

    /* Each heap's stats count its own blocks only. */
    size_t small[2] = {0, 0};
    for (size_t i = 0; i < 2 * PER_HEAP; i++)
        if (blocks[i] && sizes[i] <= OM_SMALL_SIZE_MAX)
            small[i & 1]++;
    for (int k = 0; k < 2; k++) {
        om_heap_stats st = tu_get_stats(heaps[k]);
        CHECK_EQ_SIZE(total_used_blocks(&st), small[k]);
    }
    for (size_t i = 0; i < 2 * PER_HEAP; i++)
        om_obj_free(blocks[i]);
    for (int k = 0; k < 2; k++) {
        om_heap_stats st = tu_get_stats(heaps[k]);
        CHECK_EQ_SIZE(total_used_blocks(&st), 0);
        om_heap_delete(heaps[k]);
    }
    free(blocks);
    free(sizes);
    free(spans);
}

/* Free and realloc without a heap argument find the owner. */
static void test_ownership(void)
{
    om_heap *a = om_heap_new(), *b = om_heap_new();
    CHECK(a && b);
    if (!a || !b)
        return;
    size_t c64 = tu_small_class_index(64), c256 = tu_small_class_index(256);
    om_heap_stats def0 = tu_get_stats(NULL);

    void *pa[10], *pb[10];
    for (int i = 0; i < 10; i++) {
        pa[i] = om_heap_malloc(a, 64);
        pb[i] = om_heap_malloc(b, 64);
        CHECK(pa[i] && pb[i]);
    }
    CHECK_EQ_SIZE(used_blocks(a, c64), 10);
    CHECK_EQ_SIZE(used_blocks(b, c64), 10);

    om_obj_free(pa[0]);
    CHECK_EQ_SIZE(used_blocks(a, c64), 9);
    CHECK_EQ_SIZE(used_blocks(b, c64), 10);
    om_mem_free(pa[1]);
    CHECK_EQ_SIZE(used_blocks(a, c64), 8);
    CHECK_EQ_SIZE(used_blocks(b, c64), 10);
    om_raw_free(NULL);
    om_obj_free(pb[0]);
    CHECK_EQ_SIZE(used_blocks(a, c64), 8);
    CHECK_EQ_SIZE(used_blocks(b, c64), 9);
    /* The default heap saw none of this. */
    om_heap_stats def1 = tu_get_stats(NULL);
    CHECK(stats_equal(&def0, &def1));

    /* om_heap_realloc moving a block of A into B. */
    tu_fill_pattern(&byte_pattern, pa[2], 64, 42);
    void *moved = om_heap_realloc(b, pa[2], 256);
    CHECK(moved != NULL);
    if (moved) {
        CHECK(moved != pa[2]);
        CHECK(tu_has_pattern(&byte_pattern, moved, 64, 42));
        CHECK_EQ_SIZE(om_usable_size(moved), 256);
        CHECK_EQ_SIZE(used_blocks(a, c64), 7);
        CHECK_EQ_SIZE(used_blocks(b, c256), 1);
        CHECK_EQ_SIZE(used_blocks(a, c256), 0);
        CHECK_EQ_SIZE(used_blocks(b, c64), 9);
        /* It is B's now: freeing it lowers B's count. */
        om_obj_free(moved);
        CHECK_EQ_SIZE(used_blocks(b, c256), 0);
        CHECK_EQ_SIZE(used_blocks(a, c256), 0);
    } else {
        om_obj_free(pa[2]);
    }

    /* om_heap_realloc from B into A, shrinking to another class. */
    tu_fill_pattern(&byte_pattern, pb[1], 64, 43);
    void *back = om_heap_realloc(a, pb[1], 16);
    CHECK(back != NULL);
    if (back) {
        CHECK(tu_has_pattern(&byte_pattern, back, 16, 43));
        CHECK_EQ_SIZE(used_blocks(b, c64), 8);
        CHECK_EQ_SIZE(used_blocks(a, tu_small_class_index(16)), 1);
        om_mem_free(back);
        CHECK_EQ_SIZE(used_blocks(a, tu_small_class_index(16)), 0);
    } else {
        om_mem_free(pb[1]);
    }

    /* A block of A grown to a large size, then brought back into B's pools. */
    tu_fill_pattern(&byte_pattern, pa[3], 64, 44);
    void *big = om_heap_realloc(b, pa[3], 5000);
    CHECK(big != NULL);
    CHECK_EQ_SIZE(used_blocks(a, c64), 6);
    if (big) {
        CHECK(tu_has_pattern(&byte_pattern, big, 64, 44));
        void *small = om_heap_realloc(b, big, 100);
        CHECK(small != NULL);
        if (small) {
            CHECK(tu_has_pattern(&byte_pattern, small, 64, 44));
            CHECK_EQ_SIZE(used_blocks(b, tu_small_class_index(100)), 1);
            om_obj_free(small);
        } else {
            om_obj_free(big);
        }
    }
    CHECK_EQ_SIZE(used_blocks(b, tu_small_class_index(100)), 0);

    /* usable_size works for every heap's blocks. */
    CHECK_EQ_SIZE(om_usable_size(pa[4]), 64);
    CHECK_EQ_SIZE(om_usable_size(pb[4]), 64);

    for (int i = 4; i < 10; i++) {
        om_mem_free(pa[i]);
        om_obj_free(pb[i]);
    }
    om_mem_free(pb[2]);
    om_mem_free(pb[3]);
    CHECK_EQ_SIZE(tu_get_stats(a).small_used_bytes, 0);
    CHECK_EQ_SIZE(tu_get_stats(b).small_used_bytes, 0);
    om_heap_stats def2 = tu_get_stats(NULL);
    CHECK(stats_equal(&def0, &def2));
    om_heap_delete(a);
    om_heap_delete(b);
}

static void test_default_heap(void)
{
    om_heap *d = om_heap_default();
    CHECK(d != NULL);
    CHECK(om_heap_default() == d);
    om_heap_stats s_null = tu_get_stats(NULL), s_def = tu_get_stats(d);
    CHECK(stats_equal(&s_null, &s_def));

    size_t c = tu_small_class_index(80);
    size_t before = used_blocks(d, c);
    void *m = om_mem_malloc(80);
    CHECK_EQ_SIZE(used_blocks(d, c), before + 1);
    void *o = om_obj_malloc(80);
    CHECK_EQ_SIZE(used_blocks(d, c), before + 2);
    void *h1 = om_heap_malloc(d, 80);
    CHECK_EQ_SIZE(used_blocks(d, c), before + 3);
    void *h2 = om_heap_malloc(NULL, 80);
    CHECK_EQ_SIZE(used_blocks(NULL, c), before + 4);
    void *z = om_heap_calloc(NULL, 5, 16);
    CHECK(z && tu_is_zero(z, 80));
    CHECK_EQ_SIZE(used_blocks(d, c), before + 5);

    /* A private heap's allocation does not change the default heap. */
    om_heap *p = om_heap_new();
    CHECK(p != NULL && p != d);
    om_heap_stats s1 = tu_get_stats(d);
    void *q = om_heap_malloc(p, 80);
    CHECK(q != NULL);
    om_heap_stats s2 = tu_get_stats(d);
    CHECK(stats_equal(&s1, &s2));
    CHECK_EQ_SIZE(used_blocks(p, c), 1);

    /* om_heap_realloc(NULL, …) moves into the default heap. */
    void *r = om_heap_realloc(NULL, q, 300);
    CHECK(r != NULL);
    CHECK_EQ_SIZE(used_blocks(p, c), 0);
    CHECK_EQ_SIZE(used_blocks(d, tu_small_class_index(300)),
                  s2.classes[tu_small_class_index(300)].used_blocks + 1);
    om_mem_free(r);

    om_mem_free(m);
    om_obj_free(o);
    om_mem_free(h1);
    om_obj_free(h2);
    om_mem_free(z);
    CHECK_EQ_SIZE(used_blocks(d, c), before);
    om_heap_delete(p);
}

static void delete_default_heap(void *arg)
{
    (void)arg;
    om_heap_delete(om_heap_default());
}

static void test_delete_default_is_fatal(void)
{
    char buf[4096];
    int status = check_run_child(delete_default_heap, NULL, buf, sizeof buf);
    CHECK(status != -1);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(strstr(buf, "objmem: fatal error") != NULL);
    if (!(WIFSIGNALED(status) && strstr(buf, "objmem: fatal error")))
        fprintf(stderr, "child status %#x, stderr: %s\n", (unsigned)status, buf);
}

/* A heap deleted with many live blocks; the next heap works. */
static void test_delete_with_live_blocks(void)
{
    om_heap_delete(NULL); /* no-op */

    om_heap *h = om_heap_new();
    CHECK(h != NULL);
    if (!h)
        return;
    size_t count = OM_TEST_SCALE(300000);
    size_t failed = 0;
    for (size_t i = 0; i < count; i++) {
        size_t size = (size_t)(tu_rng_next(&rng) % (OM_SMALL_SIZE_MAX + 1));
        unsigned char *p = om_heap_malloc(h, size);
        if (!p)
            failed++;
        else if (size)
            p[0] = p[size - 1] = 0x5a;
        /* Free some, so that the free lists are not trivial. */
        if (p && i % 5 == 0)
            om_mem_free(p);
    }
    CHECK_EQ_SIZE(failed, 0);
    om_heap_stats st = tu_get_stats(h);
    CHECK(st.arenas_current >= 1);
    CHECK(total_used_blocks(&st) > count / 2);
    om_heap_delete(h);

    /* A new heap, likely at the old addresses: ownership is its own. */
    om_heap *g = om_heap_new();
    CHECK(g != NULL);
    if (!g)
        return;
    enum { N = 5000 };
    void *blocks[N];
    for (size_t i = 0; i < N; i++) {
        blocks[i] = om_heap_malloc(g, 1 + i % OM_SMALL_SIZE_MAX);
        CHECK(blocks[i] != NULL);
    }
    st = tu_get_stats(g);
    CHECK_EQ_SIZE(total_used_blocks(&st), N);
    size_t wrong = 0;
    for (size_t i = 0; i < N; i++)
        if (blocks[i] &&
            om_usable_size(blocks[i]) != tu_small_class_size(1 + i % OM_SMALL_SIZE_MAX))
            wrong++;
    CHECK_EQ_SIZE(wrong, 0);
    for (size_t i = 0; i < N; i++)
        om_obj_free(blocks[i]);
    st = tu_get_stats(g);
    CHECK_EQ_SIZE(total_used_blocks(&st), 0);
    om_heap_delete(g);
}

/* Many heaps created and deleted: no arena leaks. */
static void test_heap_churn(void)
{
    static tu_arena_counter counter;
    CHECK(tu_arena_counter_install(&counter) == 0);

    size_t iterations = OM_TEST_SCALE(400);
    enum { WARMUP = 10, PER_HEAP = 12000 };
    void **blocks = malloc(PER_HEAP * sizeof *blocks);
    CHECK(blocks != NULL);
    if (!blocks) {
        om_set_arena_allocator(NULL);
        return;
    }
    size_t rss_warm = 0, mismatched = 0, failed = 0, peak_arenas = 0;
    for (size_t it = 0; it < iterations + WARMUP; it++) {
        if (it == WARMUP)
            rss_warm = check_rss_bytes();
        om_heap *h = om_heap_new();
        if (!h) {
            failed++;
            continue;
        }
        for (size_t i = 0; i < PER_HEAP; i++) {
            size_t size = 1 + (size_t)(tu_rng_next(&rng) % OM_SMALL_SIZE_MAX);
            blocks[i] = om_heap_malloc(h, size);
            if (!blocks[i])
                failed++;
            else
                memset(blocks[i], (int)it, size);
        }
        /* Free a random half, realloc a few, leave the rest to delete. */
        for (size_t i = 0; i < PER_HEAP; i++) {
            uint64_t r = tu_rng_next(&rng);
            if (r % 2 == 0) {
                om_obj_free(blocks[i]);
            } else if (r % 7 == 1 && blocks[i]) {
                void *q = om_heap_realloc(h, blocks[i], (size_t)(r >> 32) % 400 + 1);
                if (!q)
                    failed++;
            }
        }
        om_heap_stats st = tu_get_stats(h);
        if (counter.allocs - counter.frees != st.arenas_current)
            mismatched++;
        if (st.arenas_current > peak_arenas)
            peak_arenas = st.arenas_current;
        om_heap_delete(h);
        if (counter.allocs != counter.frees)
            mismatched++;
    }
    size_t rss_end = check_rss_bytes();
    CHECK(om_set_arena_allocator(NULL) == 0);
    free(blocks);
    long long growth = (long long)rss_end - (long long)rss_warm;
    printf("heap churn: %zu heaps, %zu arenas mapped and unmapped (peak %zu a heap), "
           "RSS %+lld KB after warm-up\n",
           iterations + WARMUP, counter.allocs, peak_arenas, growth / 1024);
    CHECK_EQ_SIZE(failed, 0);
    CHECK_EQ_SIZE(mismatched, 0);
    CHECK_EQ_SIZE(counter.allocs, counter.frees);
    CHECK(counter.allocs >= iterations * 2);
    /* Every iteration maps and unmaps a few MB; a leak of one arena per heap
     * would add iterations MB. Allow a small fraction of that. */
    CHECK(growth < (long long)tu_mapped_part(iterations * MB / 16 + 8 * MB));
}

/* One heap per thread. */
typedef struct heap_thread_arg {
    unsigned id;
    size_t ops;
    size_t corrupt, failed, wrong_stats;
} heap_thread_arg;

static void *heap_thread(void *varg)
{
    heap_thread_arg *a = varg;
    enum { SLOTS = 2048 };
    unsigned char **ptr = calloc(SLOTS, sizeof *ptr);
    size_t *size = calloc(SLOTS, sizeof *size);
    unsigned *seed = calloc(SLOTS, sizeof *seed);
    om_heap *h = om_heap_new();
    if (!ptr || !size || !seed || !h) {
        a->failed++;
        free(ptr);
        free(size);
        free(seed);
        om_heap_delete(h);
        return NULL;
    }
    tu_rng thread_rng = {0x9e3779b97f4a7c15ULL * (a->id + 3)};
    for (size_t op = 0; op < a->ops; op++) {
        uint64_t r = tu_rng_next(&thread_rng);
        size_t s = (size_t)(r % SLOTS);
        size_t n = 1 + (size_t)((r >> 16) % 600);
        if (!ptr[s]) {
            ptr[s] = om_heap_malloc(h, n);
            if (!ptr[s]) {
                a->failed++;
                continue;
            }
            size[s] = n;
            seed[s] = (unsigned)(op * 7 + a->id);
            tu_fill_pattern(&byte_pattern, ptr[s], n, seed[s]);
        } else if ((r >> 40) % 3) {
            if (!tu_has_pattern(&byte_pattern, ptr[s], size[s], seed[s]))
                a->corrupt++;
            /* No heap argument: the address map finds this thread's heap. */
            if ((r >> 44) & 1)
                om_obj_free(ptr[s]);
            else
                om_mem_free(ptr[s]);
            ptr[s] = NULL;
        } else {
            if (!tu_has_pattern(&byte_pattern, ptr[s], size[s], seed[s]))
                a->corrupt++;
            unsigned char *q = om_heap_realloc(h, ptr[s], n);
            if (!q) {
                a->failed++;
                continue;
            }
            if (!tu_has_pattern(&byte_pattern, q, size[s] < n ? size[s] : n, seed[s]))
                a->corrupt++;
            ptr[s] = q;
            size[s] = n;
            seed[s] = (unsigned)(op * 7 + a->id);
            tu_fill_pattern(&byte_pattern, q, n, seed[s]);
        }
    }
    size_t small = 0;
    for (size_t s = 0; s < SLOTS; s++)
        if (ptr[s] && size[s] <= OM_SMALL_SIZE_MAX)
            small++;
    om_heap_stats st;
    if (om_heap_get_stats(h, &st) != 0 || total_used_blocks(&st) != small)
        a->wrong_stats++;
    for (size_t s = 0; s < SLOTS; s++) {
        if (ptr[s] && !tu_has_pattern(&byte_pattern, ptr[s], size[s], seed[s]))
            a->corrupt++;
        om_mem_free(ptr[s]);
    }
    if (om_heap_get_stats(h, &st) != 0 || total_used_blocks(&st) != 0)
        a->wrong_stats++;
    om_heap_delete(h);
    free(ptr);
    free(size);
    free(seed);
    return NULL;
}

static void test_heap_per_thread(void)
{
    enum { THREADS = 4 };
    pthread_t t[THREADS];
    heap_thread_arg args[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        args[i] = (heap_thread_arg){i, OM_TEST_SCALE(1000000), 0, 0, 0};
        CHECK(pthread_create(&t[i], NULL, heap_thread, &args[i]) == 0);
    }
    for (unsigned i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_SIZE(args[i].corrupt, 0);
        CHECK_EQ_SIZE(args[i].failed, 0);
        CHECK_EQ_SIZE(args[i].wrong_stats, 0);
    }
}

static volatile size_t volatile_size_max = SIZE_MAX;

static void test_heap_contract(void)
{
    om_heap *h = om_heap_new();
    CHECK(h != NULL);
    if (!h)
        return;
    /* calloc on a private heap zeroes reused blocks. */
    void *dirty[100];
    for (int i = 0; i < 100; i++) {
        dirty[i] = om_heap_malloc(h, 200);
        if (dirty[i])
            memset(dirty[i], 0xee, 200);
    }
    for (int i = 0; i < 100; i++)
        om_mem_free(dirty[i]);
    size_t not_zero = 0;
    for (int i = 0; i < 100; i++) {
        dirty[i] = om_heap_calloc(h, 10, 20);
        if (!dirty[i] || !tu_is_zero(dirty[i], 200))
            not_zero++;
    }
    CHECK_EQ_SIZE(not_zero, 0);
    for (int i = 0; i < 100; i++)
        om_obj_free(dirty[i]);

    size_t max = volatile_size_max;
    om_clear_error();
    errno = 0;
    CHECK(om_heap_calloc(h, max / 2, 3) == NULL);
    CHECK(errno == ENOMEM && om_last_error() == OM_ENOMEM);
    om_clear_error();
    errno = 0;
    CHECK(om_heap_malloc(h, max / 2 + 1) == NULL);
    CHECK(errno == ENOMEM && om_last_error() == OM_ENOMEM);
    void *p = om_heap_malloc(h, 30);
    CHECK(p != NULL);
    om_clear_error();
    CHECK(om_heap_realloc(h, p, max) == NULL);
    CHECK(om_last_error() == OM_ENOMEM);
    CHECK_EQ_SIZE(om_usable_size(p), 32);
    void *z = om_heap_malloc(h, 0);
    CHECK(z != NULL && z != p);
    void *r = om_heap_realloc(h, NULL, 40);
    CHECK(r != NULL);
    CHECK_EQ_SIZE(tu_get_stats(h).small_used_bytes, 32 + 16 + 48);
    om_mem_free(p);
    om_mem_free(z);
    om_mem_free(r);
    om_heap_delete(h);
}

/* Stats output: the JSON names the fields and agrees with the struct. */
static size_t json_number(const char *json, const char *key)
{
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":", key);
    const char *at = strstr(json, pattern);
    if (!at)
        return (size_t)-1;
    return (size_t)strtoull(at + strlen(pattern), NULL, 10);
}

static void test_stats_output(void)
{
    om_heap *h = om_heap_new();
    CHECK(h != NULL);
    if (!h)
        return;
    void *blocks[300];
    for (int i = 0; i < 300; i++)
        blocks[i] = om_heap_malloc(h, (size_t)(i % 64) * 8);
    om_heap_stats st = tu_get_stats(h);

    om_clear_error();
    CHECK(om_heap_get_stats(h, NULL) == -1);
    CHECK(om_last_error() == OM_EINVAL);
    om_clear_error();
    CHECK(om_heap_write_stats_json(h, NULL) == -1);
    CHECK(om_last_error() == OM_EINVAL);

    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (f) {
        CHECK(om_heap_write_stats_json(h, f) == 0);
        long len = ftell(f);
        CHECK(len > 0);
        char *json = calloc(1, (size_t)(len > 0 ? len : 0) + 1);
        rewind(f);
        if (json && len > 0 && fread(json, 1, (size_t)len, f) == (size_t)len) {
            size_t end = (size_t)len;
            while (end > 0 && (json[end - 1] == '\n' || json[end - 1] == ' '))
                end--;
            CHECK(json[0] == '{');
            CHECK(end > 0 && json[end - 1] == '}');
            CHECK(memchr(json, '\n', end) == NULL); /* one line */
            CHECK_EQ_SIZE(json_number(json, "arena_size"), OM_ARENA_SIZE);
            CHECK_EQ_SIZE(json_number(json, "arenas_current"), st.arenas_current);
            CHECK_EQ_SIZE(json_number(json, "small_used_bytes"), st.small_used_bytes);
            CHECK_EQ_SIZE(json_number(json, "pools_used"), st.pools_used);
            CHECK_EQ_SIZE(tu_count_occurrences(json, "\"block_size\":"), OM_SMALL_CLASS_COUNT);
            CHECK(strstr(json, "\"classes\":[") != NULL);
        } else {
            CHECK(0);
        }
        free(json);
        fclose(f);
    }
    f = tmpfile();
    CHECK(f != NULL);
    if (f) {
        om_heap_print_stats(h, f);
        CHECK(ftell(f) > 0);
        long before = ftell(f);
        om_debug_malloc_stats(f);
        CHECK(ftell(f) > before);
        fclose(f);
    }
    for (int i = 0; i < 300; i++)
        om_mem_free(blocks[i]);
    om_heap_delete(h);
}

int main(void)
{
    test_no_overlap();
    test_ownership();
    test_default_heap();
    test_delete_default_is_fatal();
    test_delete_with_live_blocks();
    test_heap_contract();
    test_stats_output();
    test_heap_per_thread();
    test_heap_churn();
    return check_report();
}
