/*
 * demo.c — `objmem demo`: a guided tour of the library, told with numbers
 * measured on the spot.
 *
 * The demo is demo_steps[]: each step is one small function that takes the
 * shared demo_state (the private heap, the workload's blocks, the RSS at
 * the start) and returns 0, or -1 after printing on stderr what failed.
 * The runner numbers the steps and stops at the first failure; a new step
 * is a new row in the table. The steps cover issue 8's tour: pools and
 * arenas (1-4), the address map (5), medium and large blocks (6-7), errors
 * (8), timing (9), refcounting (10), generators against lists (11), a
 * cycle collected (12), a leak hunt (13) and threads (14); every number
 * printed carries its unit.
 *
 * Exit status: 0 success; 1 a step failed (an allocation that failed, a
 * library result that contradicts the header's contract); 2 a usage error.
 */
#include "tool.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* The demo                                                                 */
/* ------------------------------------------------------------------------ */

enum {
    DEMO_MIN_SIZE = 8,                /* smallest request of the workload, bytes */
    DEMO_MAX_SIZE = OM_SMALL_SIZE_MAX, /* largest request of the workload, bytes */
};
#define DEMO_DEFAULT_BLOCKS ((size_t)300000)
#define DEMO_MAX_BLOCKS ((size_t)100000000)
#define DEMO_SEED UINT64_C(0x9E3779B97F4A7C15)

/* State shared by the steps of one demo run. */
typedef struct demo_state {
    size_t block_count; /* blocks in the workload of steps 1-3 */
    uint64_t seed;      /* xorshift seed of the workload */
    om_heap *heap;      /* the private heap of steps 1-3; NULL once deleted */
    void **blocks;      /* the workload's blocks, an array from the system malloc */
    size_t live;        /* blocks[0 .. live) are allocated */
    size_t rss_start;   /* process RSS when the demo began, bytes (0 = unknown) */
} demo_state;

static size_t request_size(uint64_t *rng)
{
    return DEMO_MIN_SIZE + (size_t)(xorshift64(rng) % (DEMO_MAX_SIZE - DEMO_MIN_SIZE + 1));
}

static int heap_stats(const om_heap *h, om_heap_stats *out)
{
    if (om_heap_get_stats(h, out) != 0)
        return fail_om("om_heap_get_stats()");
    return 0;
}

/* The heap-wide lines of a snapshot, aligned as a two-column table. */
static void print_heap_summary(const om_heap_stats *s, size_t rss, size_t rss_start)
{
    size_t in_pools = s->small_used_bytes + s->small_free_bytes;
    printf("  %-22s %12s   %s\n", "used small blocks", fmt_bytes(s->small_used_bytes),
           "(sizes rounded up to their class)");
    printf("  %-22s %12s   (%s of the used pools' blocks)\n", "free in used pools",
           fmt_bytes(s->small_free_bytes), fmt_percent((double)s->small_free_bytes, (double)in_pools));
    printf("  %-22s %12s   (%s each)\n", "pools used", fmt_count(s->pools_used),
           fmt_bytes(s->pool_size));
    printf("  %-22s %12s\n", "pools free in arenas", fmt_count(s->pools_free));
    printf("  %-22s %12s   (%s each)\n", "arenas now", fmt_count(s->arenas_current),
           fmt_bytes(s->arena_size));
    printf("  %-22s %12s   (mapped so far %s, unmapped %s)\n", "arenas high-water",
           fmt_count(s->arenas_highwater), fmt_count(s->arenas_allocated),
           fmt_count(s->arenas_freed));
    printf("  %-22s %12s\n", "mapped", fmt_bytes(s->mapped_bytes));
    if (rss && rss_start)
        printf("  %-22s %12s   (%s since the demo began)\n", "process RSS", fmt_rss(rss),
               fmt_delta(rss, rss_start));
    else
        printf("  %-22s %12s\n", "process RSS", fmt_rss(rss));
}

/* Pools and blocks of the 32 size classes, in two side-by-side halves. */
static void print_class_table(const om_heap_stats *s)
{
    enum { HALF = OM_SMALL_CLASS_COUNT / 2 };
    printf("\n  pools per size class; blocks used (handed out) and free (left in those pools)\n");
    for (int side = 0; side < 2; side++)
        printf("%s%s%7s %6s %9s %7s", side ? "   |" : "", dim(), "class", "pools", "used", "free");
    printf("%s\n", plain());
    for (size_t row = 0; row < HALF; row++) {
        for (size_t side = 0; side < 2; side++) {
            const om_size_class_stats *c = &s->classes[row + side * HALF];
            printf("%s%7s %6s %9s %7s", side ? "   |" : "", fmt_bytes(c->block_size),
                   fmt_count(c->pools), fmt_count(c->used_blocks), fmt_count(c->free_blocks));
        }
        putchar('\n');
    }
}

/* Step 1: a deterministic mixed-size workload on a private heap. */
static int step_fill(demo_state *st)
{
    st->heap = om_heap_new();
    if (st->heap == NULL)
        return fail_om("om_heap_new()");
    st->blocks = malloc(st->block_count * sizeof *st->blocks);
    if (st->blocks == NULL)
        return fail("malloc of an array of %zu pointers failed", st->block_count);

    uint64_t rng = st->seed;
    size_t requested = 0;
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < st->block_count; i++) {
        size_t size = request_size(&rng);
        unsigned char *p = om_heap_malloc(st->heap, size);
        if (p == NULL)
            return fail_om("om_heap_malloc(heap, %zu) of block %zu", size, i);
        p[0] = (unsigned char)i; /* touch it, as a user would */
        st->blocks[i] = p;
        st->live = i + 1;
        requested += size;
    }
    uint64_t elapsed = now_ns() - t0;

    om_heap_stats s;
    if (heap_stats(st->heap, &s) != 0)
        return -1;
    printf("  h = om_heap_new(), then %s x om_heap_malloc(h, %d..%d B),\n"
           "  sizes from xorshift64 (seed %#" PRIx64 ")\n",
           fmt_count(st->block_count), DEMO_MIN_SIZE, DEMO_MAX_SIZE, st->seed);
    printf("  took %.1f ms: %.0f ns per block, first-touch page faults included\n\n",
           (double)elapsed / 1e6, (double)elapsed / (double)st->block_count);
    printf("  %-22s %12s   (%s blocks, %s on average)\n", "requested", fmt_bytes(requested),
           fmt_count(st->block_count), fmt_bytes(requested / st->block_count));
    print_heap_summary(&s, rss_bytes(), st->rss_start);
    print_class_table(&s);
    return 0;
}

/* One row of the table of step 2. */
static int print_free_row(demo_state *st, size_t freed)
{
    om_heap_stats s;
    if (heap_stats(st->heap, &s) != 0)
        return -1;
    printf("  %7s %11s %10s %8s %8s %10s %10s\n",
           fmt_percent((double)freed, (double)st->block_count), fmt_count(st->block_count - freed),
           fmt_count(s.pools_used), fmt_count(s.arenas_current), fmt_count(s.arenas_freed),
           fmt_bytes(s.mapped_bytes), fmt_rss(rss_bytes()));
    return 0;
}

/* Step 2: free every block in a shuffled order; arenas go back to the OS as
 * they empty. */
static int step_free_shuffled(demo_state *st)
{
    size_t n = st->live;
    uint64_t rng = st->seed ^ UINT64_C(0xD1B54A32D192ED03);
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(xorshift64(&rng) % i);
        void *tmp = st->blocks[i - 1];
        st->blocks[i - 1] = st->blocks[j];
        st->blocks[j] = tmp;
    }

    static const unsigned checkpoints_permille[] = {250, 500, 750, 900, 990, 1000};
    printf("  om_obj_free(p) on every block in a shuffled order; no heap argument is\n"
           "  needed: the address map knows that p belongs to h\n\n");
    printf("%s  %7s %11s %10s %8s %8s %10s %10s%s\n", dim(), "freed", "live blocks", "pools used",
           "arenas", "unmapped", "mapped", "RSS", plain());
    size_t rss_full = rss_bytes();
    if (print_free_row(st, 0) != 0)
        return -1;

    /* blocks[live-1] down to blocks[0]: the shuffled order, freed from the end. */
    size_t freed = 0;
    uint64_t free_ns = 0;
    for (size_t c = 0; c < sizeof checkpoints_permille / sizeof checkpoints_permille[0]; c++) {
        size_t target = (size_t)((double)n * checkpoints_permille[c] / 1000.0);
        uint64_t t0 = now_ns();
        for (; freed < target; freed++)
            om_obj_free(st->blocks[--st->live]);
        free_ns += now_ns() - t0;
        if (print_free_row(st, freed) != 0)
            return -1;
    }
    free(st->blocks);
    st->blocks = NULL;

    om_heap_stats s;
    if (heap_stats(st->heap, &s) != 0)
        return -1;
    size_t rss_now = rss_bytes();
    printf("\n  %s blocks freed in %.1f ms (%.0f ns per block)\n", fmt_count(n),
           (double)free_ns / 1e6, n ? (double)free_ns / (double)n : 0.0);
    printf("  %s of %s arenas went back to the OS; RSS %s -> %s (%s)\n",
           fmt_count(s.arenas_freed), fmt_count(s.arenas_allocated), fmt_rss(rss_full),
           fmt_rss(rss_now), rss_full && rss_now ? fmt_delta(rss_now, rss_full) : "n/a");
    printf("  an arena is unmapped only when its last block is freed: in a random order\n"
           "  almost all of them empty in the final percent. Still mapped: %s arenas,\n"
           "  held by the %s empty pools kept warm (the last pool of each size class)\n"
           "  and at most one spare arena; step 3 gives them back.\n",
           fmt_count(s.arenas_current), fmt_count(s.pools_used));
    return 0;
}

/* Step 3: om_heap_trim() gives back what the heap keeps warm, then the heap
 * is deleted. */
static int step_trim(demo_state *st)
{
    om_heap_stats before, after;
    if (heap_stats(st->heap, &before) != 0)
        return -1;
    size_t rss_before = rss_bytes();
    size_t released = om_heap_trim(st->heap);
    if (heap_stats(st->heap, &after) != 0)
        return -1;
    size_t rss_after = rss_bytes();

    printf("  om_heap_trim(h) returned %s (%s bytes unmapped)\n\n", fmt_bytes(released),
           fmt_count(released));
    printf("%s  %-14s %12s %12s%s\n", dim(), "", "before trim", "after trim", plain());
    printf("  %-14s %12s %12s\n", "pools used", fmt_count(before.pools_used), fmt_count(after.pools_used));
    printf("  %-14s %12s %12s\n", "arenas now", fmt_count(before.arenas_current),
           fmt_count(after.arenas_current));
    printf("  %-14s %12s %12s\n", "mapped", fmt_bytes(before.mapped_bytes), fmt_bytes(after.mapped_bytes));
    printf("  %-14s %12s %12s\n", "process RSS", fmt_rss(rss_before), fmt_rss(rss_after));

    om_heap_delete(st->heap);
    st->heap = NULL;
    size_t rss_deleted = rss_bytes();
    printf("\n  om_heap_delete(h): RSS %s (%s since the demo began)\n", fmt_rss(rss_deleted),
           rss_deleted && st->rss_start ? fmt_delta(rss_deleted, st->rss_start) : "n/a");
    return 0;
}

/* Step 4: the MEM and OBJ domains share the default heap; its tables. */
static int step_default_heap(demo_state *st)
{
    enum { OBJECTS = 20000, BUFFERS = 2000, LARGE = 10, LARGE_SIZE = 4096 };
    void **ptrs = malloc((OBJECTS + BUFFERS + LARGE) * sizeof *ptrs);
    if (ptrs == NULL)
        return fail("malloc of an array of %d pointers failed", OBJECTS + BUFFERS + LARGE);
    uint64_t rng = st->seed ^ UINT64_C(0x94D049BB133111EB);
    size_t count = 0;
    int rc = 0;
    for (int i = 0; i < OBJECTS && rc == 0; i++) {
        size_t size = 16 + (size_t)(xorshift64(&rng) % 113); /* 16..128 B objects */
        if ((ptrs[count] = om_obj_malloc(size)) == NULL)
            rc = fail_om("om_obj_malloc(%zu)", size);
        else
            count++;
    }
    for (int i = 0; i < BUFFERS && rc == 0; i++) {
        size_t size = 100 + (size_t)(xorshift64(&rng) % 401); /* 100..500 B buffers */
        if ((ptrs[count] = om_mem_malloc(size)) == NULL)
            rc = fail_om("om_mem_malloc(%zu)", size);
        else
            count++;
    }
    for (int i = 0; i < LARGE && rc == 0; i++) {
        if ((ptrs[count] = om_mem_malloc(LARGE_SIZE)) == NULL)
            rc = fail_om("om_mem_malloc(%d)", LARGE_SIZE);
        else
            count++;
    }

    om_heap_stats s;
    if (rc == 0)
        rc = heap_stats(NULL, &s);
    if (rc == 0) {
        printf("  %s x om_obj_malloc(16..128 B), %s x om_mem_malloc(100..500 B) and\n"
               "  %d x om_mem_malloc(%s); the last ones are above %d B and take medium\n"
               "  page runs, the rest share the pools of the default heap:\n\n",
               fmt_count(OBJECTS), fmt_count(BUFFERS), LARGE, fmt_bytes(LARGE_SIZE), OM_SMALL_SIZE_MAX);
        printf("  %-22s %12s\n", "used small blocks", fmt_bytes(s.small_used_bytes));
        printf("  %-22s %12s\n", "pools used", fmt_count(s.pools_used));
        printf("  %-22s %12s\n", "arenas now", fmt_count(s.arenas_current));
        printf("\n  om_debug_malloc_stats(stdout), the sys._debugmallocstats() table:\n");
        printf("%s  ----------------------------------------------------------------------%s\n",
               dim(), plain());
        fflush(stdout);
        om_debug_malloc_stats(stdout);
        fflush(stdout);
        printf("%s  ----------------------------------------------------------------------%s\n",
               dim(), plain());
    }
    for (size_t i = 0; i < count; i++) {
        if (i < OBJECTS)
            om_obj_free(ptrs[i]);
        else
            om_mem_free(ptrs[i]);
    }
    free(ptrs);
    if (rc == 0 && (rc = heap_stats(NULL, &s)) == 0)
        printf("  all freed again: %s used small blocks left on the default heap\n",
               fmt_bytes(s.small_used_bytes));
    return rc;
}

/* The size class that serves a small request of `size` bytes. */
static size_t class_of(size_t size)
{
    return (size + OM_ALIGNMENT - 1) / OM_ALIGNMENT * OM_ALIGNMENT;
}

/* One line of step 5: what om_usable_size says about p. */
static void print_usable(const char *call, const void *p, const char *why)
{
    printf("  %-24s %10s   %s\n", call, fmt_bytes(om_usable_size(p)), why);
}

/* Step 5: the address map tells objmem's blocks from everyone else's. */
static int step_address_map(demo_state *st)
{
    (void)st;
    om_heap *h = om_heap_new();
    if (h == NULL)
        return fail_om("om_heap_new()");
    void *small = om_obj_malloc(20);
    void *priv = om_heap_malloc(h, 100);
    void *big = om_mem_malloc(1000);
    void *huge = om_mem_malloc(1000000);
    int rc = 0;
    if (small == NULL)
        rc = fail_om("om_obj_malloc(20)");
    else if (priv == NULL)
        rc = fail_om("om_heap_malloc(h, 100)");
    else if (big == NULL)
        rc = fail_om("om_mem_malloc(1000)");
    else if (huge == NULL)
        rc = fail_om("om_mem_malloc(1000000)");

    if (rc == 0) {
        char why[96];
        printf("  om_usable_size(p) asks the address map (a radix tree over the address\n"
               "  space) whether p lies in one of objmem's arenas:\n\n");
        printf("%s  %-24s %10s   %s%s\n", dim(), "p from", "usable", "why", plain());
        snprintf(why, sizeof why, "small: the %s size class", fmt_bytes(class_of(20)));
        print_usable("om_obj_malloc(20)", small, why);
        snprintf(why, sizeof why, "small, heap h: the %s class", fmt_bytes(class_of(100)));
        print_usable("om_heap_malloc(h, 100)", priv, why);
        print_usable("om_mem_malloc(1000)", big, "medium: a run of the 1 KiB class");
        print_usable("om_mem_malloc(1000000)", huge, "large: a mapping of its own");
        print_usable("NULL", NULL, "by definition");
        printf("\n  A pointer objmem never handed out (another allocator's, or the inside\n"
               "  of a block) is fatal misuse: free, realloc and om_usable_size print one\n"
               "  report naming the call and the address, then abort.\n");

        om_heap_stats s;
        om_obj_free(priv);
        priv = NULL;
        if ((rc = heap_stats(h, &s)) == 0)
            printf("\n  om_obj_free(p) with p from h: the map finds h, which now has %s in use\n",
                   fmt_bytes(s.small_used_bytes));
    }
    om_obj_free(small);
    om_obj_free(priv);
    om_mem_free(big);
    om_mem_free(huge);
    om_heap_delete(h);
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Medium and large blocks, purging                                         */
/* ------------------------------------------------------------------------ */

enum {
    MEDIUM_BLOCKS = 4096,             /* blocks of the medium workload */
    MEDIUM_KEEP_EVERY = 64,           /* one block in this many stays allocated */
    PURGE_DEMO_DELAY_MS = 100,        /* the purge delay the step sets */
};

static void print_medium_line(const char *when, const om_heap_stats *s)
{
    printf("  %-28s medium arenas %4zu   in use %10s   free runs %10s   RSS %s\n", when,
           s->medium_arenas_current, fmt_bytes(s->medium_used_bytes),
           fmt_bytes(s->medium_free_bytes + s->medium_cached_bytes), fmt_rss(rss_bytes()));
}

/* Medium blocks: fill, free most, watch the free pages go back after the
 * purge delay. Blocks are written in full so that their pages are resident. */
static int step_medium(demo_state *st)
{
    om_heap *h = om_heap_new();
    void **blocks = calloc(MEDIUM_BLOCKS, sizeof *blocks);
    if (h == NULL || blocks == NULL) {
        free(blocks);
        om_heap_delete(h);
        return fail_om("om_heap_new()");
    }
    long old_delay = om_option_get(OM_OPTION_PURGE_DELAY_MS);
    om_option_set(OM_OPTION_PURGE_DELAY_MS, PURGE_DEMO_DELAY_MS);
    uint64_t rng = st->seed;
    size_t requested = 0;
    int rc = 0;
    for (size_t i = 0; i < MEDIUM_BLOCKS && rc == 0; i++) {
        size_t size = 513 + (size_t)(xorshift64(&rng) % (64 << 10));
        blocks[i] = om_heap_malloc(h, size);
        if (blocks[i] == NULL)
            rc = fail_om("om_heap_malloc(h, %zu)", size);
        else
            memset(blocks[i], 0x5A, size);
        requested += size;
    }
    om_heap_stats s;
    if (rc == 0 && (rc = heap_stats(h, &s)) == 0) {
        printf("  %s blocks of 513 B - 64 KiB (%s asked): page runs of 128 B units\n"
               "  in 1 MiB arenas, 36 size classes, four per doubling\n\n",
               fmt_count(MEDIUM_BLOCKS), fmt_bytes(requested));
        print_medium_line("allocated", &s);
    }
    for (size_t i = 0; i < MEDIUM_BLOCKS && rc == 0; i++) {
        if (i % MEDIUM_KEEP_EVERY != 0) {
            om_obj_free(blocks[i]);
            blocks[i] = NULL;
        }
    }
    if (rc == 0 && (rc = heap_stats(h, &s)) == 0)
        print_medium_line("63 of 64 freed", &s);
    usleep(2 * PURGE_DEMO_DELAY_MS * 1000);
    /* The allocator looks at the clock on its slow paths (a large block's
     * free is one); nothing runs in the background. */
    om_obj_free(om_heap_malloc(h, (size_t)1 << 20));
    if (rc == 0 && (rc = heap_stats(h, &s)) == 0) {
        print_medium_line("after the purge delay", &s);
        printf("\n  free runs stay mapped (their arenas hold live blocks) but after %d ms\n"
               "  their pages went back with madvise: %s in %s calls\n",
               PURGE_DEMO_DELAY_MS, fmt_bytes(s.purged_bytes), fmt_count(s.purges));
    }
    for (size_t i = 0; i < MEDIUM_BLOCKS; i++)
        om_obj_free(blocks[i]);
    if (rc == 0 && (rc = heap_stats(h, &s)) == 0)
        print_medium_line("all freed", &s);
    om_option_set(OM_OPTION_PURGE_DELAY_MS, old_delay);
    free(blocks);
    om_heap_delete(h);
    return rc;
}

/* A large block: its own mapping, resized with mremap, unmapped at free. */
static int step_large(demo_state *st)
{
    (void)st;
    const size_t first = (size_t)64 << 20, second = (size_t)256 << 20;
    size_t rss0 = rss_bytes();
    char *p = om_mem_malloc(first);
    if (p == NULL)
        return fail_om("om_mem_malloc(%zu)", first);
    memset(p, 0x33, first);
    printf("  om_mem_malloc(64 MiB), written:     RSS %s\n", fmt_rss(rss_bytes()));
    uint64_t t0 = now_ns();
    char *q = om_mem_realloc(p, second);
    uint64_t t1 = now_ns();
    if (q == NULL) {
        om_mem_free(p);
        return fail_om("om_mem_realloc(p, %zu)", second);
    }
    if (q[first - 1] != 0x33) {
        om_mem_free(q);
        return fail("realloc lost the contents of the large block");
    }
    printf("  om_mem_realloc to 256 MiB:         %s, %s in %.1f us (mremap: no copy)\n",
           q == p ? "grew in place" : "moved", fmt_bytes(first),
           (double)(t1 - t0) / 1000.0);
    om_mem_free(q);
    size_t rss1 = rss_bytes();
    printf("  om_mem_free (unmapped at once):    RSS %s, %s against before the block\n",
           fmt_rss(rss1), fmt_delta(rss1, rss0));
    return 0;
}

static const char *error_name(om_error code)
{
    switch (code) {
    case OM_OK: return "OM_OK";
    case OM_ENOMEM: return "OM_ENOMEM";
    case OM_EINVAL: return "OM_EINVAL";
    case OM_ETYPE: return "OM_ETYPE";
    case OM_EINDEX: return "OM_EINDEX";
    case OM_EKEY: return "OM_EKEY";
    case OM_EOVERFLOW: return "OM_EOVERFLOW";
    case OM_EVALUE: return "OM_EVALUE";
    }
    return "(unknown code)";
}

/* One line of step 6; returns 0 when the error recorded is `want`. */
static int print_error_row(const char *call, const char *result, om_error want)
{
    om_error got = om_last_error();
    printf("  %-32s %-7s %s\n", call, result, error_name(got));
    printf("  %s  \"%s\"%s\n", dim(), om_last_error_message(), plain());
    if (got != want)
        return fail("%s recorded %s; the contract says %s", call, error_name(got), error_name(want));
    return 0;
}

/* Step 6: errors come back as NULL or -1 plus a per-thread code and message. */
enum { ERROR_TIMING_CALLS = 100000 };

static int step_errors(demo_state *st)
{
    (void)st;
    /* volatile: the sizes are absurd on purpose; keep the compiler from
     * rejecting them through the alloc_size attributes. */
    volatile size_t huge = SIZE_MAX, half = SIZE_MAX / 2;
    int rc = 0;

    printf("%s  %-32s %-7s %s%s\n", dim(), "call", "returns", "om_last_error() and message",
           plain());
    om_clear_error();
    void *p = om_obj_malloc(huge);
    if (p != NULL) {
        om_obj_free(p);
        return fail("om_obj_malloc(SIZE_MAX) succeeded; the contract says NULL and OM_ENOMEM");
    }
    rc |= print_error_row("om_obj_malloc(SIZE_MAX)", "NULL", OM_ENOMEM);

    om_clear_error();
    errno = 0;
    p = om_mem_calloc(half, 4);
    int calloc_errno = errno;
    if (p != NULL) {
        om_mem_free(p);
        return fail("om_mem_calloc(SIZE_MAX / 2, 4) succeeded; the contract says NULL and OM_ENOMEM");
    }
    rc |= print_error_row("om_mem_calloc(SIZE_MAX / 2, 4)", "NULL", OM_ENOMEM);

    om_clear_error();
    om_allocator a;
    int r = om_get_allocator((om_domain)42, &a);
    if (r != -1)
        return fail("om_get_allocator(42, &a) returned %d; the contract says -1", r);
    rc |= print_error_row("om_get_allocator(42, &a)", "-1", OM_EINVAL);
    om_clear_error();

    /* What a failure costs: the message is formatted on every one. */
    uint64_t t0 = now_ns();
    for (int i = 0; i < ERROR_TIMING_CALLS; i++)
        if (om_obj_malloc(huge) != NULL)
            return fail("om_obj_malloc(SIZE_MAX) succeeded; the contract says NULL and OM_ENOMEM");
    double failed_ns = (double)(now_ns() - t0) / ERROR_TIMING_CALLS;
    om_clear_error();

    printf("\n  the code and message belong to the calling thread; om_clear_error()\n"
           "  forgets them. calloc's overflow also sets errno = %s.\n"
           "  a failing om_obj_malloc(SIZE_MAX) costs %s (mean of %s calls)\n",
           calloc_errno == ENOMEM ? "ENOMEM" : "ENOMEM (here it did NOT)", fmt_ns(failed_ns),
           fmt_count(ERROR_TIMING_CALLS));
    if (calloc_errno != ENOMEM)
        rc = fail("om_mem_calloc(SIZE_MAX / 2, 4) left errno = %d; the contract says ENOMEM", calloc_errno);
    return rc ? -1 : 0;
}

enum { TIMING_PAIRS = 2000000, TIMING_SLOTS = 256, TIMING_SIZES = 4096 };

/* ns per pair of `release` then `allocate` over a window of live blocks.
 * Both allocators are called through the same function pointers, so the
 * comparison stays fair. */
static double time_pairs(const uint16_t *sizes, void **slots, void *(*allocate)(size_t),
                         void (*release)(void *))
{
    uint64_t t0 = now_ns();
    for (size_t i = 0; i < TIMING_PAIRS; i++) {
        size_t k = i % TIMING_SLOTS;
        release(slots[k]);
        unsigned char *p = allocate(sizes[i % TIMING_SIZES]);
        if (p == NULL)
            return -1.0;
        p[0] = 1;
        slots[k] = p;
    }
    return (double)(now_ns() - t0) / TIMING_PAIRS;
}

/* time_pairs after one warm-up round (the slots start NULL, and freeing
 * NULL does nothing); the slots are emptied again afterwards. */
static double time_warm(const uint16_t *sizes, void **slots, void *(*allocate)(size_t),
                        void (*release)(void *))
{
    double ns = time_pairs(sizes, slots, allocate, release);
    if (ns >= 0)
        ns = time_pairs(sizes, slots, allocate, release);
    for (size_t k = 0; k < TIMING_SLOTS; k++) {
        release(slots[k]);
        slots[k] = NULL;
    }
    return ns;
}

/* Step 7: a rough timing of a malloc+free pair against the system's. */
static int step_timing(demo_state *st)
{
    static uint16_t sizes[TIMING_SIZES];
    static void *slots[TIMING_SLOTS];
    uint64_t rng = st->seed ^ UINT64_C(0xBF58476D1CE4E5B9);
    for (size_t i = 0; i < TIMING_SIZES; i++)
        sizes[i] = (uint16_t)request_size(&rng);

    double om_ns = time_warm(sizes, slots, om_obj_malloc, om_obj_free);
    if (om_ns < 0)
        return fail_om("om_obj_malloc in the timing loop");
    double sys_ns = time_warm(sizes, slots, malloc, free);
    if (sys_ns < 0)
        return fail("malloc failed in the timing loop");

    printf("  %s pairs of %d..%d B, %d blocks live, after one warm-up round:\n\n",
           fmt_count(TIMING_PAIRS), DEMO_MIN_SIZE, DEMO_MAX_SIZE, TIMING_SLOTS);
    printf("  %-30s %8.1f ns per pair\n", "om_obj_malloc + om_obj_free", om_ns);
    printf("  %-30s %8.1f ns per pair\n", "malloc + free (system)", sys_ns);
    printf("\n  %sa rough single-run figure on a possibly busy machine; `make bench`\n"
           "  is the real comparison, against glibc, jemalloc, tcmalloc and mimalloc%s\n",
           dim(), plain());
    return 0;
}

/* Step 10: leak hunt with tracing. A small workload parses records: each
 * gets a buffer and a name, kept in a window of the last LEAK_WINDOW
 * records (older ones are freed), and a cache entry that nothing ever
 * frees: the leak. Each call site is a function of its own (noinline), so
 * a traceback's innermost frame names it. */
enum { LEAK_RECORDS = 2000, LEAK_WINDOW = 64, LEAK_TOP = 3 };

typedef struct leak_state {
    char *buffers[LEAK_WINDOW];      /* the window: live from before the first snapshot */
    char *names[LEAK_WINDOW];
    void *cache[LEAK_RECORDS];       /* the leak (freed at the end of the step) */
} leak_state;

static __attribute__((noinline)) char *leak_parse_buffer(size_t i)
{
    char *buf = om_mem_malloc(64 + i % 64);
    if (buf != NULL)
        buf[0] = (char)i;
    return buf;
}

static __attribute__((noinline)) char *leak_intern_name(size_t i)
{
    char *name = om_obj_malloc(24);
    if (name != NULL)
        snprintf(name, 24, "record-%zu", i);
    return name;
}

static __attribute__((noinline)) void *leak_cache_entry(leak_state *ls, size_t i)
{
    void *entry = om_obj_calloc(1, 48);
    ls->cache[i] = entry;
    return entry;
}

/* Record i replaces the window slot it falls on; -1 if an allocation failed. */
static int leak_record(leak_state *ls, size_t i, bool cached)
{
    size_t slot = i % LEAK_WINDOW;
    om_mem_free(ls->buffers[slot]);
    om_obj_free(ls->names[slot]);
    ls->buffers[slot] = leak_parse_buffer(i);
    ls->names[slot] = leak_intern_name(i);
    bool ok = ls->buffers[slot] != NULL && ls->names[slot] != NULL;
    return ok && (!cached || leak_cache_entry(ls, i) != NULL) ? 0 : -1;
}

static void leak_release(leak_state *ls)
{
    for (size_t i = 0; i < LEAK_WINDOW; i++) {
        om_mem_free(ls->buffers[i]);
        om_obj_free(ls->names[i]);
    }
    for (size_t i = 0; i < LEAK_RECORDS; i++)
        om_obj_free(ls->cache[i]);
}

static void leak_print_top(const om_trace_stats *diff)
{
    printf("  %s    %12s %13s   site (innermost frame)%s\n", dim(), "size diff", "blocks diff",
           plain());
    for (size_t i = 0; i < diff->count && i < LEAK_TOP; i++) {
        const om_trace_stat *s = &diff->entries[i];
        char name[256];
        om_trace_format_frame(s->frames[0], name, sizeof name);
        /* "function (/long/path/tools/objmem.c:N)": keep the repository's part. */
        char *open = strchr(name, '(');
        const char *tail = open != NULL ? strstr(open, "tools/") : NULL;
        int keep = tail != NULL ? (int)(open + 1 - name) : (int)strlen(name);
        printf("  #%zu %+12td B %+12td   %.*s%s\n", i + 1, s->size_diff, s->count_diff, keep,
               name, tail != NULL ? tail : "");
    }
}

/* Snapshot, workload, snapshot, compare; prints the top sites. */
static int leak_hunt(leak_state *ls)
{
    for (size_t i = 0; i < LEAK_WINDOW; i++)
        if (leak_record(ls, i, false) != 0)
            return fail_om("om_mem_malloc/om_obj_malloc in the leak workload");
    om_snapshot *before = om_trace_take_snapshot();
    int rc = before != NULL ? 0 : fail_om("om_trace_take_snapshot");
    for (size_t i = 0; rc == 0 && i < LEAK_RECORDS; i++)
        if (leak_record(ls, i, true) != 0)
            rc = fail_om("an allocation in the leak workload");
    om_snapshot *after = rc == 0 ? om_trace_take_snapshot() : NULL;
    om_trace_stats *diff = after != NULL ? om_snapshot_compare(before, after, OM_TRACE_BY_SITE)
                                         : NULL;
    if (rc == 0 && diff == NULL)
        rc = fail_om("om_trace_take_snapshot / om_snapshot_compare");
    if (rc == 0) {
        size_t current, peak;
        om_trace_get_traced_memory(&current, &peak);
        printf("  om_trace_start(1); %d records kept in a window; snapshot; %s more\n"
               "  records; snapshot; om_snapshot_compare by site. Traced now: %s\n"
               "  (peak %s). The top %d sites:\n\n",
               LEAK_WINDOW, fmt_count(LEAK_RECORDS), fmt_bytes(current), fmt_bytes(peak),
               LEAK_TOP);
        leak_print_top(diff);
        printf("\n  %sthe window's buffers and names come and go (a small diff, or none);\n"
               "  every record left a cache entry behind: that site is the leak%s\n",
               dim(), plain());
    }
    om_trace_stats_free(diff);
    om_snapshot_free(before);
    om_snapshot_free(after);
    return rc;
}

static int step_leak_hunt(demo_state *st)
{
    (void)st;
    static leak_state ls;
    if (om_trace_start(1) != 0)
        return fail_om("om_trace_start(1)");
    int rc = leak_hunt(&ls);
    leak_release(&ls);
    memset(&ls, 0, sizeof ls);
    om_trace_stop();
    return rc;
}

/* Bytes in blocks the default heap has handed out (small, medium, large). */
static size_t heap_live_bytes(void)
{
    om_heap_stats s;
    if (om_heap_get_stats(NULL, &s) != 0)
        return 0;
    return s.small_used_bytes + s.medium_used_bytes + s.large_bytes;
}

/* Step: objects and reference counts. A record type with two object fields
 * from a spec; a pair of them pointing at a shared str; counts printed as
 * references come and go; each object freed the moment its count is 0. */
typedef struct demo_record {
    OM_OBJECT_HEAD;
    om_object *name;         /* a str */
    om_object *next;         /* another record, or NULL */
} demo_record;

static int demo_destroyed;   /* records whose destroy hook ran */

static void demo_record_destroy(om_object *self)
{
    (void)self;
    demo_destroyed++;
}

static void print_count(const char *what, om_object *o)
{
    printf("  %-44s count %ld\n", what, (long)om_refcnt(o));
}

static int refcount_tour(om_type *type)
{
    size_t base = heap_live_bytes();
    om_object *name = om_str_from_cstr("shared name");
    demo_record *a = (demo_record *)om_new(type);
    demo_record *b = (demo_record *)om_new(type);
    if (name == NULL || a == NULL || b == NULL) {
        om_xdecref(name), om_xdecref(OM_OBJ(a)), om_xdecref(OM_OBJ(b));
        return fail_om("om_str_from_cstr / om_new");
    }
    print_count("name = om_str_from_cstr(\"shared name\")", name);
    om_incref(name), a->name = name;
    print_count("a->name = name (om_incref)", name);
    om_incref(name), b->name = name;
    print_count("b->name = name (om_incref)", name);
    a->next = OM_OBJ(b);          /* a takes over our reference to b */
    print_count("b, owned by a->next only", OM_OBJ(b));
    printf("  live objects' bytes: %s (om_sizeof(a) = %zu B, of name = %zu B)\n",
           fmt_delta(heap_live_bytes(), base), om_sizeof(OM_OBJ(a)), om_sizeof(name));
    demo_destroyed = 0;
    om_decref(OM_OBJ(a));
    printf("  om_decref(a): count 0, so a is freed at once; that drops a->next,\n"
           "  so b goes too: %d records destroyed\n", demo_destroyed);
    print_count("name, still ours", name);
    om_decref(name);
    printf("  om_decref(name): freed. Live bytes against the start: %s\n",
           fmt_delta(heap_live_bytes(), base));
    printf("  None, True, False and the ints -5..256 are immortal (om_is_immortal: %s):\n"
           "  their counts never change and they are never freed\n",
           om_is_immortal(om_none) && om_is_immortal(om_true) ? "yes" : "NO");
    return demo_destroyed == 2 && heap_live_bytes() == base
               ? 0 : fail("objects were not freed at count 0");
}

static int step_refcounts(demo_state *st)
{
    (void)st;
    static const size_t fields[] = {offsetof(demo_record, name), offsetof(demo_record, next)};
    om_type_spec spec = {.name = "record", .size = sizeof(demo_record),
                         .object_offsets = fields, .object_offset_count = 2,
                         .destroy = demo_record_destroy};
    om_type *type = om_type_from_spec(&spec);
    if (type == NULL)
        return fail_om("om_type_from_spec");
    int rc = refcount_tour(type);
    om_type_delete(type);
    return rc;
}

/* Step: a list of LAZY_COUNT ints against a range and a generator of the
 * same length; the memory of each, measured, and the sums agree. */
enum { LAZY_COUNT = 10000000 };

static int squares_next(void *state, om_object **item)
{
    int64_t *i = state;
    if (*i >= LAZY_COUNT)
        return 0;
    *item = om_int_from_i64(*i);
    (*i)++;
    return *item != NULL ? 1 : -1;
}

/* Sums the ints of any iterable; -1 on error. */
static int sum_iterable(om_object *iterable, int64_t *sum, size_t *peak_live)
{
    om_object *it = om_iter(iterable);
    if (it == NULL)
        return -1;
    *sum = 0;
    om_object *item;
    while ((item = om_next(it)) != NULL) {
        int64_t v = 0;
        (void)om_int_as_i64(item, &v);
        *sum += v;
        om_decref(item);
        if (v % 1000000 == 0) {          /* sampled: a stats walk is O(pools) */
            size_t live = heap_live_bytes();
            *peak_live = live > *peak_live ? live : *peak_live;
        }
    }
    om_decref(it);
    return om_last_error() == OM_OK ? 0 : -1;
}

static om_object *build_int_list(size_t count)
{
    om_object *list = om_list_new(0);
    for (size_t i = 0; list != NULL && i < count; i++) {
        om_object *v = om_int_from_i64((int64_t)i);
        if (v == NULL || om_list_append(list, v) != 0) {
            om_xdecref(v);
            om_decref(list);
            return NULL;
        }
        om_decref(v);
    }
    return list;
}

static int lazy_row(const char *what, om_object *seq, size_t base, int64_t want)
{
    size_t held = heap_live_bytes() - base, peak = 0;
    int64_t sum = 0;
    if (sum_iterable(seq, &sum, &peak) != 0)
        return fail_om("iterating the %s", what);
    printf("  %-36s holds %9s, %9s at most while iterated, sum %s\n", what,
           fmt_bytes(held), fmt_bytes(peak > base ? peak - base : 0), sum == want ? "right" : "WRONG");
    return sum == want ? 0 : fail("the %s summed to %lld", what, (long long)sum);
}

static int step_lazy(demo_state *st)
{
    (void)st;
    int64_t want = (int64_t)LAZY_COUNT * (LAZY_COUNT - 1) / 2;
    size_t base = heap_live_bytes();
    om_object *list = build_int_list(LAZY_COUNT);
    if (list == NULL)
        return fail_om("building a list of %d ints", LAZY_COUNT);
    printf("  sum of 0 .. %s - 1, three ways:\n\n", fmt_count(LAZY_COUNT));
    int rc = lazy_row("list of ints (every int an object)", list, base, want);
    om_decref(list);
    om_object *range = om_range(0, LAZY_COUNT, 1);
    rc = rc != 0 ? rc : range == NULL ? fail_om("om_range") : lazy_row("om_range(0, N, 1)", range, base, want);
    om_xdecref(range);
    int64_t next = 0;
    om_object *gen = om_generator_new(squares_next, &next, NULL);
    rc = rc != 0 ? rc : gen == NULL ? fail_om("om_generator_new") : lazy_row("generator (a C callback)", gen, base, want);
    om_xdecref(gen);
    if (rc == 0)
        printf("\n  %sthe list keeps all its ints alive (one 32 B block each plus an 8 B\n"
               "  slot); a range or a generator makes each int when asked and frees it\n"
               "  when the loop drops it: constant memory for any length%s\n", dim(), plain());
    return rc;
}

/* Step: cycles survive refcounting; the collector finds and frees them.
 * A gc callback prints each collection as it starts and stops. */
enum { CYCLE_PAIRS = 100000 };

static void cycle_trace(om_gc_phase phase, const om_gc_info *info, void *user)
{
    (void)user;
    printf("  %scallback: %-5s generation %d, %s unreachable, %zu uncollectable%s\n", dim(),
           phase == OM_GC_PHASE_START ? "start" : "stop", info->generation,
           fmt_count(info->collected), info->uncollectable, plain());
}

/* CYCLE_PAIRS pairs of lists that hold each other, the references dropped. */
static int make_list_cycles(void)
{
    for (size_t i = 0; i < CYCLE_PAIRS; i++) {
        om_object *a = om_list_new(0), *b = om_list_new(0);
        int rc = a != NULL && b != NULL && om_list_append(a, b) == 0 &&
                 om_list_append(b, a) == 0 ? 0 : -1;
        om_xdecref(a);
        om_xdecref(b);
        if (rc != 0)
            return fail_om("building list cycles");
    }
    return 0;
}

static int step_cycles(demo_state *st)
{
    (void)st;
    om_gc_collect(2);
    om_gc_disable();          /* so that the cycles wait for the explicit collection */
    size_t base = heap_live_bytes();
    if (make_list_cycles() != 0) {
        om_gc_enable();
        return -1;
    }
    size_t held = heap_live_bytes() - base;
    printf("  %s pairs of lists a = [b], b = [a], every reference of ours dropped:\n",
           fmt_count(CYCLE_PAIRS));
    printf("  refcounting freed nothing: %s still live (each count is 1, held by\n"
           "  the other list)\n\n", fmt_bytes(held));
    if (om_gc_callback_add(cycle_trace, NULL) != 0) {
        om_gc_enable();
        return fail_om("om_gc_callback_add");
    }
    uint64_t t0 = now_ns();
    long found = om_gc_collect(2);
    double ms = (double)(now_ns() - t0) / 1e6;
    om_gc_callback_remove(cycle_trace, NULL);
    om_gc_enable();
    om_gc_stats stats[OM_GC_GENERATIONS];
    om_gc_get_stats(stats);
    printf("\n  om_gc_collect(2): %s unreachable found in %.1f ms (%.0f ns each); live bytes\n"
           "  against the start: %s\n", fmt_count((size_t)found), ms,
           found > 0 ? ms * 1e6 / (double)found : 0.0, fmt_delta(heap_live_bytes(), base));
    printf("  om_gc_get_stats: generation 2: %zu collections, %s collected, %zu uncollectable\n",
           stats[2].collections, fmt_count(stats[2].collected), stats[2].uncollectable);
    return found == 2 * CYCLE_PAIRS && heap_live_bytes() == base
               ? 0 : fail("the collector found %ld objects, expected %d", found, 2 * CYCLE_PAIRS);
}

/* Step: threads. Two threads share the default runtime, taking turns with
 * its GIL (om_yield_point in their loops); then two runtimes, one per
 * thread, run at once, each behind its own GIL. */
enum { THREAD_WORK_MS = 200, RUNTIME_OPS = 2000000 };

typedef struct thread_job {
    om_runtime *runtime;       /* attach to this one (NULL: create and delete its own) */
    long ops;                  /* operations to do (0: run for THREAD_WORK_MS) */
    long done;                 /* operations done */
    om_thread_stats stats;     /* the thread's GIL statistics at the end */
    double seconds;            /* time spent in the loop */
    int failed;                /* an allocation failed */
} thread_job;

/* One operation: a list of two fresh ints, made and dropped. */
static int thread_op(long i)
{
    om_object *list = om_list_new(0), *a = om_int_from_i64(1000 + i), *b = om_int_from_i64(-i);
    int rc = list != NULL && a != NULL && b != NULL && om_list_append(list, a) == 0 &&
                     om_list_append(list, b) == 0 ? 0 : -1;
    om_xdecref(a), om_xdecref(b), om_xdecref(list);
    return rc;
}

static void *thread_main(void *arg)
{
    thread_job *job = arg;
    om_runtime *own = job->runtime == NULL ? om_runtime_new(NULL) : NULL;
    if ((job->runtime == NULL && own == NULL) ||
        om_attach(own != NULL ? own : job->runtime) != 0) {
        job->failed = 1;
        om_runtime_delete(own);
        return NULL;
    }
    double t0 = (double)now_ns() * 1e-9;
    double stop = t0 + THREAD_WORK_MS / 1000.0;
    for (long i = 0; job->ops == 0 || i < job->ops; i++) {
        if (thread_op(i) != 0) {
            job->failed = 1;
            break;
        }
        job->done++;
        om_yield_point();
        if (job->ops == 0 && (i & 255) == 0 && (double)now_ns() * 1e-9 >= stop)
            break;
    }
    job->seconds = (double)now_ns() * 1e-9 - t0;
    om_thread_get_stats(&job->stats);
    om_detach();
    if (own != NULL)
        om_runtime_delete(own);
    return NULL;
}

/* Runs the jobs on threads of their own; the caller lets go of its GIL
 * while it waits. -1 if a thread could not start or a job failed. */
static int run_thread_jobs(thread_job *jobs, int count)
{
    pthread_t threads[2];
    int started = 0, rc = 0;
    OM_BEGIN_ALLOW_THREADS
    for (; started < count; started++)
        if (pthread_create(&threads[started], NULL, thread_main, &jobs[started]) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    OM_END_ALLOW_THREADS
    for (int i = 0; i < count; i++)
        rc |= i >= started || jobs[i].failed ? -1 : 0;
    return rc;
}

static int step_threads(demo_state *st)
{
    (void)st;
    om_gil_stats before, after;
    om_runtime_get_gil_stats(om_runtime_default(), &before);
    thread_job shared[2] = {{.runtime = om_runtime_default()}, {.runtime = om_runtime_default()}};
    if (run_thread_jobs(shared, 2) != 0)
        return fail_om("two threads on the default runtime");
    om_runtime_get_gil_stats(om_runtime_default(), &after);
    printf("  two threads, one runtime, %d ms each, switch interval %.1f ms:\n\n",
           THREAD_WORK_MS, om_get_switch_interval() * 1e3);
    printf("  %sthread   operations   took the GIL   held      waited%s\n", dim(), plain());
    for (int i = 0; i < 2; i++)
        printf("  %-8d %10s   %8s x   %6.1f ms %6.1f ms\n", i + 1, fmt_count((size_t)shared[i].done),
               fmt_count((size_t)shared[i].stats.acquisitions), shared[i].stats.held_seconds * 1e3,
               shared[i].stats.waited_seconds * 1e3);
    printf("\n  the GIL changed hands %s times (%s drop requests by a waiting thread)\n",
           fmt_count((size_t)(after.switches - before.switches)),
           fmt_count((size_t)(after.drop_requests - before.drop_requests)));

    thread_job one[1] = {{.ops = 2 * RUNTIME_OPS}};
    thread_job two[2] = {{.ops = RUNTIME_OPS}, {.ops = RUNTIME_OPS}};
    if (run_thread_jobs(one, 1) != 0 || run_thread_jobs(two, 2) != 0)
        return fail_om("threads with runtimes of their own");
    double parallel = two[0].seconds > two[1].seconds ? two[0].seconds : two[1].seconds;
    printf("\n  %s operations: one runtime on one thread %.0f ms; two runtimes on\n"
           "  two threads, half each, %.0f ms: %.2fx (two shared vCPUs here)\n",
           fmt_count(2 * RUNTIME_OPS), one[0].seconds * 1e3, parallel * 1e3,
           one[0].seconds / parallel);
    return 0;
}

typedef struct demo_step {
    const char *title;              /* one line, printed after the step number */
    int (*run)(demo_state *st);     /* 0 on success, -1 after reporting the failure */
} demo_step;

static const demo_step demo_steps[] = {
    {"Fill a private heap with small blocks", step_fill},
    {"Free them in a shuffled order: arenas go back to the OS", step_free_shuffled},
    {"Trim the heap, then delete it", step_trim},
    {"The default heap behind om_mem_* and om_obj_*", step_default_heap},
    {"The address map: whose block is this?", step_address_map},
    {"Medium blocks, and free pages going back after the purge delay", step_medium},
    {"A large block: its own mapping, resized by mremap", step_large},
    {"Errors: NULL or -1, and a code and message per thread", step_errors},
    {"Timing: a malloc+free pair", step_timing},
    {"Objects: reference counts, and freed at zero", step_refcounts},
    {"Lazy sequences: a list of 10M ints against a range and a generator", step_lazy},
    {"Cycles: refcounting cannot free them, the collector does", step_cycles},
    {"Leak hunt: tracing, two snapshots and a compare", step_leak_hunt},
    {"Threads: one runtime's GIL, taken in turns; two runtimes at once", step_threads},
};

static void demo_cleanup(demo_state *st)
{
    /* om_heap_delete releases the heap's arenas with every block still in
     * them, so blocks left by a failed step need no om_obj_free of their own. */
    if (st->heap != NULL)
        om_heap_delete(st->heap);
    free(st->blocks);
    st->heap = NULL;
    st->blocks = NULL;
    st->live = 0;
}

void demo_usage(FILE *out)
{
    fprintf(out,
            "usage: objmem demo [--blocks N] [--help]\n"
            "\n"
            "A guided tour of objmem as it stands today, with measured numbers:\n"
            "fills a private heap with N small blocks of %d..%d B, shows how pools\n"
            "and arenas filled, frees the blocks in a shuffled order and shows the\n"
            "arenas going back to the OS, trims and deletes the heap, prints the\n"
            "default heap's tables, looks pointers up in the address map, shows the\n"
            "error reporting, times a malloc+free pair against the system malloc,\n"
            "shows objects with reference counts freed at zero, a list of 10M ints\n"
            "against a range and a generator, collects cycles, hunts a leak with\n"
            "tracing, and runs two threads on one runtime's GIL and two runtimes\n"
            "in parallel.\n"
            "\n"
            "options:\n"
            "  --blocks N   blocks in the workload (default %zu)\n"
            "  -h, --help   show this help\n",
            DEMO_MIN_SIZE, DEMO_MAX_SIZE, DEMO_DEFAULT_BLOCKS);
}

int cmd_demo(int argc, char **argv)
{
    demo_state st = {.block_count = DEMO_DEFAULT_BLOCKS, .seed = DEMO_SEED};
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            demo_usage(stdout);
            return EXIT_SUCCESS;
        } else if (strcmp(argv[i], "--blocks") == 0) {
            if (i + 1 == argc || parse_count(argv[i + 1], 1, DEMO_MAX_BLOCKS, &st.block_count) != 0)
                return usage_error(demo_usage, "--blocks wants a number from 1 to %zu, not '%s'",
                                   DEMO_MAX_BLOCKS, i + 1 == argc ? "" : argv[i + 1]);
            i++;
        } else {
            return usage_error(demo_usage, "unknown argument '%s'", argv[i]);
        }
    }

    st.rss_start = rss_bytes();
    size_t nsteps = sizeof demo_steps / sizeof demo_steps[0];
    printf("%sobjmem %d.%d.%d demo%s: Python's memory manager as a C library, step by step\n",
           bold(), OM_VERSION_MAJOR, OM_VERSION_MINOR, OM_VERSION_PATCH, plain());
    printf("small blocks of up to %d B live in %s pools inside %s arenas;\n"
           "the process started this demo at %s RSS\n",
           OM_SMALL_SIZE_MAX, fmt_bytes(OM_POOL_SIZE), fmt_bytes(OM_ARENA_SIZE), fmt_rss(st.rss_start));
    for (size_t i = 0; i < nsteps; i++) {
        printf("\n%s[%zu/%zu] %s%s\n\n", bold(), i + 1, nsteps, demo_steps[i].title, plain());
        if (demo_steps[i].run(&st) != 0) {
            demo_cleanup(&st);
            fprintf(stderr, "objmem demo: stopped at step %zu (%s)\n", i + 1, demo_steps[i].title);
            return EXIT_FAILURE;
        }
    }
    demo_cleanup(&st);
    printf("\ndone. Next: `objmem stats`, `objmem bench --quick`, `objmem trace -- PROGRAM`,\n"
           "`make test`, and docs/design-pool.md for how it works.\n");
    return finish_stdout();
}
