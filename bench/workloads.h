/*
 * bench/workloads.h — the allocator workloads, written once and
 * instantiated once per allocator family.
 *
 * Fairness is the point of this file. Every allocator runs the very same
 * loop, compiled from the same text, and the loop calls the allocator
 * directly (no function pointer that only some allocators pay for). The
 * includer defines, before each inclusion:
 *
 *   WL_FAMILY         a suffix for the generated function names (sys, om, py)
 *   WL_MALLOC(size)   an expression that allocates `size` bytes
 *   WL_FREE(ptr)      a statement that frees `ptr`
 *   WL_REALLOC(ptr, size)  an expression that resizes `ptr` to `size` bytes
 *
 * and this file defines wl_pairs_<family>, wl_churn_<family>,
 * wl_bulk_<family>, wl_trees_<family> (the small-object rows (a)–(d)) and
 * wl_medium_<family>, wl_window_<family>, wl_large_<family>,
 * wl_realloc_<family> (rows (e), (e'), (f), (g)). There is no include guard on
 * purpose; the macros are undefined at the end so the next family can set
 * them again.
 *
 * It relies on these helpers from alloc_bench.c, shared by every family:
 *   bench_params, bench_result, tree_node, BENCH_SEED, WL_MEDIUM_MIN/MAX,
 *   WL_LARGE_MIN/MAX, rng_next(),
 *   clock_start(), clock_stop(),
 *   touch_block(), touch_pages(), bench_oom(), bench_bad(), bench_map(),
 *   bench_unmap(), rss_now_kb(), tree_check(). The child reads the peak RSS (VmHWM) after the workload.
 *
 * Each workload draws from one xorshift64 sequence started at BENCH_SEED, so
 * every allocator sees the same sizes, the same slot choices and the same
 * free order. The bench's own arrays come from mmap (bench_map), not from
 * the allocator under test, so they neither disturb its heap nor favour it.
 */

#define WL_CAT2(a, b) a##_##b
#define WL_CAT(a, b) WL_CAT2(a, b)
#define WL_FN(name) WL_CAT(name, WL_FAMILY)

/* ---- Small objects: rows (a)–(d) ---------------------------------------- */

/* A pairs loop: `n` times allocate a block of min..max bytes (from the
 * shared xorshift sequence), write its first byte, free it. Rows (a), (e)
 * and (f) are this loop over their size ranges. ops = pairs. Always
 * inlined, so that each row divides by its constant range. */
static inline __attribute__((always_inline)) void WL_FN(wl_pairs_in)(uint64_t n, size_t min,
                                                                    size_t max, bench_result *res)
{
    uint64_t s = BENCH_SEED;
    bench_clock t0 = clock_start();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = rng_next(&s);
        size_t size = min + (size_t)(r % (max - min + 1));
        void *p = WL_MALLOC(size);
        if (p == NULL)
            bench_oom(size);
        touch_block(p, r);
        WL_FREE(p);
    }
    clock_stop(t0, res);
    res->ops = n;
}

/* (a) pairs: blocks of 8–512 bytes. */
static void WL_FN(wl_pairs)(const bench_params *bp, bench_result *res)
{
    WL_FN(wl_pairs_in)(bp->pairs, 8, 512, res);
}

/* (b) churn: fill `live` slots with blocks of 8–512 bytes (not timed), then
 * `steps` times free a random slot and allocate a new random size into it
 * (timed). ops = steps; one op is one free plus one malloc. */
static void WL_FN(wl_churn)(const bench_params *bp, bench_result *res)
{
    uint64_t s = BENCH_SEED;
    size_t live = bp->churn_live;
    void **slot = bench_map(live * sizeof *slot);
    for (size_t i = 0; i < live; i++) {
        uint64_t r = rng_next(&s);
        size_t size = 8 + (size_t)(r % 505);
        void *p = WL_MALLOC(size);
        if (p == NULL)
            bench_oom(size);
        touch_block(p, r);
        slot[i] = p;
    }
    uint64_t n = bp->churn_steps;
    bench_clock t0 = clock_start();
    for (uint64_t i = 0; i < n; i++) {
        size_t k = (size_t)(rng_next(&s) % live);
        uint64_t r = rng_next(&s);
        size_t size = 8 + (size_t)(r % 505);
        WL_FREE(slot[k]);
        void *p = WL_MALLOC(size);
        if (p == NULL)
            bench_oom(size);
        touch_block(p, r);
        slot[k] = p;
    }
    clock_stop(t0, res);
    res->ops = n;
    for (size_t i = 0; i < live; i++)
        WL_FREE(slot[i]);
    bench_unmap(slot, live * sizeof *slot);
}

/* (c) bulk: allocate `bulk_count` blocks of 16–128 bytes (timed), shuffle
 * the pointers with Fisher–Yates (not timed: it is the bench's work, not the
 * allocator's), free them in that order (timed). ops = blocks; one op is one
 * malloc plus one free. Then the memory picture:
 *   base_kb        RSS before the first allocation (pointer array touched)
 *   peak_kb        VmHWM, the process's peak RSS
 *   after_kb       RSS after every free, pointer array unmapped
 *   retained_kb    RSS after every free, array still mapped, minus base_kb:
 *                  what the allocator keeps resident of what it took. */
static void WL_FN(wl_bulk)(const bench_params *bp, bench_result *res)
{
    uint64_t s = BENCH_SEED;
    size_t n = bp->bulk_count;
    size_t bytes = n * sizeof(void *);
    void **ptr = bench_map(bytes);
    memset(ptr, 0, bytes);
    uint64_t base_kb = rss_now_kb();

    bench_clock t0 = clock_start();
    for (size_t i = 0; i < n; i++) {
        uint64_t r = rng_next(&s);
        size_t size = 16 + (size_t)(r % 113);
        void *p = WL_MALLOC(size);
        if (p == NULL)
            bench_oom(size);
        touch_block(p, r);
        ptr[i] = p;
    }
    clock_stop(t0, res);

    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(rng_next(&s) % (i + 1));
        void *tmp = ptr[i];
        ptr[i] = ptr[j];
        ptr[j] = tmp;
    }

    bench_clock t1 = clock_start();
    for (size_t i = 0; i < n; i++)
        WL_FREE(ptr[i]);
    clock_stop(t1, res);

    uint64_t after_mapped_kb = rss_now_kb();
    bench_unmap(ptr, bytes);
    res->after_kb = rss_now_kb();
    res->base_kb = base_kb;
    res->retained_kb = after_mapped_kb > base_kb ? after_mapped_kb - base_kb : 0;
    res->ops = n;
}

/* A complete binary tree of `depth` levels below the root, one 16-byte
 * allocation per node. */
static tree_node *WL_FN(tree_make)(int depth)
{
    tree_node *t = WL_MALLOC(sizeof *t);
    if (t == NULL)
        bench_oom(sizeof *t);
    if (depth > 0) {
        t->left = WL_FN(tree_make)(depth - 1);
        t->right = WL_FN(tree_make)(depth - 1);
    } else {
        t->left = NULL;
        t->right = NULL;
    }
    return t;
}

static void WL_FN(tree_free)(tree_node *t)
{
    if (t->left != NULL) {
        WL_FN(tree_free)(t->left);
        WL_FN(tree_free)(t->right);
    }
    WL_FREE(t);
}

/* (d) binary trees, the benchmarks-game shape: a stretch tree of depth
 * max+1 built, checked and freed; a long-lived tree of depth max kept for the
 * whole run; then for depth 4, 6, …, max, 2^(max - depth + 4) trees built,
 * checked and freed one after the other; finally the long-lived tree is
 * checked and freed. ops = nodes allocated (counted by the checks); the time
 * covers everything, so one op is a malloc, a visit and a free. */
static void WL_FN(wl_trees)(const bench_params *bp, bench_result *res)
{
    const int min_depth = 4;
    int max_depth = bp->tree_depth;
    uint64_t nodes = 0;
    bench_clock t0 = clock_start();

    tree_node *stretch = WL_FN(tree_make)(max_depth + 1);
    nodes += tree_check(stretch);
    WL_FN(tree_free)(stretch);

    tree_node *long_lived = WL_FN(tree_make)(max_depth);

    for (int depth = min_depth; depth <= max_depth; depth += 2) {
        uint64_t iterations = (uint64_t)1 << (max_depth - depth + min_depth);
        for (uint64_t i = 0; i < iterations; i++) {
            tree_node *t = WL_FN(tree_make)(depth);
            nodes += tree_check(t);
            WL_FN(tree_free)(t);
        }
    }

    nodes += tree_check(long_lived);
    WL_FN(tree_free)(long_lived);

    clock_stop(t0, res);
    res->ops = nodes;
}

/* ---- Medium and large blocks, realloc: rows (e), (e'), (f), (g) ---------- */

/* (e) medium pairs: blocks of 513 B–32 KiB. */
static void WL_FN(wl_medium)(const bench_params *bp, bench_result *res)
{
    WL_FN(wl_pairs_in)(bp->medium_pairs, WL_MEDIUM_MIN, WL_MEDIUM_MAX, res);
}

/* (e') medium window: `window_live` blocks of 513 B–32 KiB held at once
 * (fill not timed), then `window_steps` times free a random one and allocate
 * a new random size in its place (timed). Unlike the pairs rows, every page
 * of every block is written (touch_pages), so that the peak RSS reflects
 * what the allocator really gives out; the timed steps include those
 * writes. The bench counts the bytes it holds, exactly: the sum of the
 * requested sizes of the live blocks, whose maximum over the whole run is
 * res->live_max_bytes. base_kb is the RSS before the first allocation, with
 * the bench's arrays mapped and touched. ops = steps. */
static void WL_FN(wl_window)(const bench_params *bp, bench_result *res)
{
    uint64_t s = BENCH_SEED;
    size_t live = bp->window_live;
    size_t bytes = live * (sizeof(void *) + sizeof(size_t));
    void **slot = bench_map(bytes);
    size_t *slot_size = (size_t *)(slot + live);
    memset(slot, 0, bytes);
    res->base_kb = rss_now_kb();

    uint64_t live_bytes = 0, live_max = 0;
    for (size_t i = 0; i < live; i++) {
        uint64_t r = rng_next(&s);
        size_t size = WL_MEDIUM_MIN + (size_t)(r % (WL_MEDIUM_MAX - WL_MEDIUM_MIN + 1));
        void *p = WL_MALLOC(size);
        if (p == NULL)
            bench_oom(size);
        touch_pages(p, size, r);
        slot[i] = p;
        slot_size[i] = size;
        live_bytes += size;
    }
    live_max = live_bytes;

    uint64_t n = bp->window_steps;
    bench_clock t0 = clock_start();
    for (uint64_t i = 0; i < n; i++) {
        size_t k = (size_t)(rng_next(&s) % live);
        uint64_t r = rng_next(&s);
        size_t size = WL_MEDIUM_MIN + (size_t)(r % (WL_MEDIUM_MAX - WL_MEDIUM_MIN + 1));
        WL_FREE(slot[k]);
        live_bytes -= slot_size[k];
        void *p = WL_MALLOC(size);
        if (p == NULL)
            bench_oom(size);
        touch_pages(p, size, r);
        slot[k] = p;
        slot_size[k] = size;
        live_bytes += size;
        if (live_bytes > live_max)
            live_max = live_bytes;
    }
    clock_stop(t0, res);
    res->ops = n;
    res->live_max_bytes = live_max;
    for (size_t i = 0; i < live; i++)
        WL_FREE(slot[i]);
    bench_unmap(slot, bytes);
}

/* (f) large pairs: blocks of 32 KiB + 1 B–1 MiB. */
static void WL_FN(wl_large)(const bench_params *bp, bench_result *res)
{
    WL_FN(wl_pairs_in)(bp->large_pairs, WL_LARGE_MIN, WL_LARGE_MAX, res);
}

/* (g) realloc growth: one buffer, allocated with 1 byte, grown by realloc
 * one byte at a time to `realloc_max` bytes; after each realloc the new last
 * byte is written (so every page of the buffer is really used). Timed: the
 * reallocs and their writes (the first malloc and the final free are not).
 * ops = reallocs (realloc_max - 1); res->moves counts the reallocs that
 * returned a different address. Afterwards (not timed) every byte is checked,
 * so an allocator that lost contents while moving fails the run. */
static void WL_FN(wl_realloc)(const bench_params *bp, bench_result *res)
{
    size_t max = bp->realloc_max;
    unsigned char *p = WL_MALLOC(1);
    if (p == NULL)
        bench_oom(1);
    touch_block(p, 1);
    uint64_t moves = 0;
    bench_clock t0 = clock_start();
    for (size_t size = 2; size <= max; size++) {
        uintptr_t old = (uintptr_t)p;   /* p is not read after the realloc */
        unsigned char *q = WL_REALLOC(p, size);
        if (q == NULL)
            bench_oom(size);
        moves += (uintptr_t)q != old;
        p = q;
        *(volatile unsigned char *)(p + size - 1) = (unsigned char)size;
        __asm__ __volatile__("" : : "r"(p) : "memory");
    }
    clock_stop(t0, res);
    for (size_t i = 0; i < max; i++)
        if (p[i] != (unsigned char)(i + 1))
            bench_bad("realloc lost the contents of the buffer", i);
    WL_FREE(p);
    res->ops = max - 1;
    res->moves = moves;
}

#undef WL_FN
#undef WL_CAT
#undef WL_CAT2
#undef WL_FAMILY
#undef WL_MALLOC
#undef WL_FREE
#undef WL_REALLOC
