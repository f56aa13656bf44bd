/*
 * test-large.c — large blocks (large.c), through its internal API.
 *
 *   - sizes just above OMI_MEDIUM_SIZE_MAX up to several MiB: the block is
 *     writable across its whole usable size (>= the size asked), its mapping
 *     starts on a 1 MiB boundary with the block one header page in, and the
 *     address map says LARGE for every byte of the mapping and something
 *     else just outside it;
 *   - alignments 16 B … 8 MiB;
 *   - realloc: many growing steps keep the contents, a grow that cannot
 *     happen in place moves the pages (and keeps contents and alignment),
 *     a shrink stays in place and clears the released slots' map entries;
 *   - the heap's counters, and omi_large_heap_release_all on a private heap
 *     giving the memory back to the OS (RSS);
 *   - a pointer into a block (or its header) passed to free, realloc or
 *     usable_size is fatal with a report naming the function and address;
 *   - absurd sizes and alignments fail cleanly: NULL, OM_ENOMEM, ENOMEM, and
 *     a failed realloc leaves the block as it was;
 *   - the cache of freed mappings: with the purge delay at 0 a free unmaps
 *     at once (the tests above run that way); with a delay a freed mapping
 *     is reused by the next allocation that fits (same address, no new
 *     mapping), freeing it twice is fatal, at most 8 wait, and om_heap_trim
 *     or the purge delay unmaps them.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "internal.h"
#include "objmem.h"
#include "testutil.h"

#define HEADER ((size_t)4096)

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

/* This file's byte pattern: seed * 31 + i * 7 + (i >> 12) + 1. */
static const tu_pattern byte_pattern = {31, 7, 12, 1};

static uintptr_t entry_of(const void *p)
{
    return omi_addrmap_lookup(p);
}

static bool is_large_entry(uintptr_t entry)
{
    return (entry & OMI_OWNER_KIND_MASK) == OMI_OWNER_LARGE;
}

/* The mapping base of a large block: its descriptor's address. */
static uintptr_t mapping_base(const void *p)
{
    return entry_of(p) & ~OMI_OWNER_KIND_MASK;
}

static size_t usable(const void *p)
{
    return omi_large_usable_size("test", entry_of(p), p);
}

static void large_free(void *p)
{
    omi_large_free("test", entry_of(p), p);
}

static void *large_realloc(void *p, size_t size)
{
    return omi_large_realloc("test", entry_of(p), p, size);
}

/* The geometry every large block must have: 1 MiB-aligned mapping of whole
 * slots, the block inside it, every slot mapped to the same LARGE entry and
 * the neighbours outside not. */
static void check_geometry(const void *p, size_t size, size_t alignment)
{
    uintptr_t entry = entry_of(p);
    CHECK(is_large_entry(entry));
    uintptr_t base = entry & ~OMI_OWNER_KIND_MASK;
    uintptr_t block = (uintptr_t)p;
    size_t avail = usable(p);
    uintptr_t end = block + avail;
    CHECK(avail >= size);
    CHECK(block % alignment == 0);
    CHECK(base % MB == 0);
    CHECK(end % MB == 0);
    CHECK(block >= base + HEADER);
    size_t expected_offset = alignment <= HEADER ? HEADER : alignment <= MB ? alignment : MB;
    CHECK_EQ_SIZE(block - base, expected_offset);
    CHECK(entry_of((void *)(base - 1)) != entry);
    CHECK(entry_of((void *)end) != entry);
    CHECK(entry_of((void *)(end - 1)) == entry);
    for (uintptr_t slot = base; slot < end; slot += MB)
        CHECK(entry_of((void *)slot) == entry);
}

/* ------------------------------------------------------------------------ */
/* Sizes and alignments                                                     */
/* ------------------------------------------------------------------------ */

static void test_sizes(void)
{
    om_heap *h = om_heap_default();
    const size_t sizes[] = {
        OMI_MEDIUM_SIZE_MAX + 1, OMI_MEDIUM_SIZE_MAX + 16, MB - HEADER - 1, MB - HEADER,
        MB - HEADER + 1, MB, 3 * MB + 5, 9 * MB + 12345,
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t size = sizes[i];
        unsigned char *p = omi_large_malloc(h, size, OM_ALIGNMENT);
        CHECK(p != NULL);
        if (p == NULL)
            continue;
        check_geometry(p, size, OM_ALIGNMENT);
        /* Whole slots: the usable size is the rest of the last slot. */
        size_t slots = (HEADER + size + MB - 1) / MB;
        CHECK_EQ_SIZE(usable(p), slots * MB - HEADER);
        /* Fresh pages read as zero and all of the usable size is writable. */
        CHECK(p[0] == 0 && p[size - 1] == 0);
        memset(p, 0xA5, usable(p));
        CHECK(p[usable(p) - 1] == 0xA5);
        uintptr_t entry = entry_of(p);
        large_free(p);
        CHECK(entry_of(p) != entry);
    }
}

static void test_alignments(void)
{
    om_heap *h = om_heap_default();
    for (size_t alignment = 16; alignment <= 8 * MB; alignment *= 2) {
        size_t size = OMI_MEDIUM_SIZE_MAX + 1 + alignment / 3;
        unsigned char *p = omi_large_malloc(h, size, alignment);
        CHECK(p != NULL);
        if (p == NULL)
            continue;
        check_geometry(p, size, alignment);
        tu_fill_pattern_range(&byte_pattern, p, 0, size, (unsigned)alignment);
        CHECK(tu_has_pattern_range(&byte_pattern, p, 0, size, 1, (unsigned)alignment));
        /* A big alignment costs one slot of address space, not `alignment`. */
        CHECK(usable(p) + (uintptr_t)p - mapping_base(p) <= (HEADER + size) / MB * MB + 2 * MB);
        large_free(p);
    }
}

/* ------------------------------------------------------------------------ */
/* realloc                                                                  */
/* ------------------------------------------------------------------------ */

static void test_realloc_grow_steps(void)
{
    om_heap *h = om_heap_default();
    size_t limit = OM_TEST_SCALE(48 * MB);
    size_t size = 300 * KB;
    unsigned char *p = omi_large_malloc(h, size, OM_ALIGNMENT);
    CHECK(p != NULL);
    if (p == NULL)
        return;
    tu_fill_pattern_range(&byte_pattern, p, 0, size, 7);
    size_t steps = 0, moves = 0;
    bool all_kept = true;
    while (size < limit) {
        size_t new_size = size + size / 3 + 12345;
        unsigned char *q = large_realloc(p, new_size);
        CHECK(q != NULL);
        if (q == NULL)
            break;
        moves += q != p;
        all_kept &= tu_has_pattern_range(&byte_pattern, q, 0, size, 4093, 7);
        check_geometry(q, new_size, OM_ALIGNMENT);
        tu_fill_pattern_range(&byte_pattern, q, size, new_size, 7);
        p = q;
        size = new_size;
        steps++;
    }
    CHECK(all_kept);
    CHECK(steps >= 10);
    CHECK(tu_has_pattern_range(&byte_pattern, p, 0, size, 1, 7));
    /* Growing inside the usable size changes nothing. */
    size_t avail = usable(p);
    CHECK(large_realloc(p, avail) == p);
    CHECK_EQ_SIZE(usable(p), avail);
    CHECK(tu_has_pattern_range(&byte_pattern, p, 0, size, 1, 7));
    large_free(p);
    printf("grow steps: %zu to %zu bytes, %zu moved\n", steps, size, moves);
}

/* Takes the page after p's mapping, so that p cannot grow in place. Returns
 * the page to unmap afterwards, or NULL when something already sits there. */
static void *block_growth(const void *p)
{
    char *end = (char *)p + usable(p);
    void *guard = mmap(end, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                       -1, 0);
    if (guard == MAP_FAILED)
        return NULL;                 /* EEXIST: taken already, as wanted */
    if (guard != end) {              /* a kernel that ignores NOREPLACE */
        munmap(guard, 4096);
        return NULL;
    }
    return guard;
}

static void test_realloc_move(size_t alignment)
{
    om_heap *h = om_heap_default();
    size_t size = 2 * MB;
    unsigned char *p = omi_large_malloc(h, size, alignment);
    CHECK(p != NULL);
    if (p == NULL)
        return;
    tu_fill_pattern_range(&byte_pattern, p, 0, size, 11);
    uintptr_t old_entry = entry_of(p);
    uintptr_t old_base = mapping_base(p);
    size_t old_mapping = (uintptr_t)p + usable(p) - old_base;
    void *guard = block_growth(p);
    size_t count = h->large_count;
    size_t new_size = 7 * MB + 3;
    unsigned char *q = large_realloc(p, new_size);
    CHECK(q != NULL);
    if (q == NULL)
        return;
    CHECK(q != p);
    check_geometry(q, new_size, alignment);
    CHECK(tu_has_pattern_range(&byte_pattern, q, 0, size, 1, 11));
    CHECK(h->large_count == count);
    /* The old mapping is no longer registered. */
    for (uintptr_t slot = old_base; slot < old_base + old_mapping; slot += MB)
        CHECK(entry_of((void *)slot) != old_entry);
    tu_fill_pattern_range(&byte_pattern, q, size, new_size, 11);
    CHECK(tu_has_pattern_range(&byte_pattern, q, 0, new_size, 1, 11));
    large_free(q);
    if (guard != NULL)
        munmap(guard, 4096);
}

static void test_realloc_shrink(void)
{
    om_heap *h = om_heap_default();
    size_t size = 8 * MB;
    unsigned char *p = omi_large_malloc(h, size, OM_ALIGNMENT);
    CHECK(p != NULL);
    if (p == NULL)
        return;
    tu_fill_pattern_range(&byte_pattern, p, 0, size, 23);
    uintptr_t entry = entry_of(p);
    uintptr_t base = mapping_base(p);
    uintptr_t old_end = (uintptr_t)p + usable(p);
    size_t bytes = h->large_bytes;

    /* Same slot count: nothing moves, nothing is released. */
    CHECK(large_realloc(p, size - 100) == p);
    CHECK(h->large_bytes == bytes);
    CHECK(entry_of((void *)(old_end - 1)) == entry);

    size_t new_size = 2 * MB + 100;
    unsigned char *q = large_realloc(p, new_size);
    CHECK(q == p);
    check_geometry(q, new_size, OM_ALIGNMENT);
    CHECK(tu_has_pattern_range(&byte_pattern, q, 0, new_size, 1, 23));
    CHECK_EQ_SIZE(usable(q), 3 * MB - HEADER);
    CHECK_EQ_SIZE(h->large_bytes, bytes - (old_end - (base + 3 * MB)));
    for (uintptr_t slot = base + 3 * MB; slot < old_end; slot += MB)
        CHECK(entry_of((void *)slot) != entry);

    /* Down to a single slot, then back up. */
    q = large_realloc(q, OMI_MEDIUM_SIZE_MAX + 1);
    CHECK(q == p);
    CHECK_EQ_SIZE(usable(q), MB - HEADER);
    CHECK(tu_has_pattern_range(&byte_pattern, q, 0, OMI_MEDIUM_SIZE_MAX + 1, 1, 23));
    CHECK(entry_of((void *)(base + MB)) != entry);
    q = large_realloc(q, 5 * MB);
    CHECK(q != NULL);
    if (q != NULL) {
        CHECK(tu_has_pattern_range(&byte_pattern, q, 0, OMI_MEDIUM_SIZE_MAX + 1, 1, 23));
        check_geometry(q, 5 * MB, OM_ALIGNMENT);
        large_free(q);
    }
}

/* ------------------------------------------------------------------------ */
/* Heap counters and release                                                */
/* ------------------------------------------------------------------------ */

static void test_counters(void)
{
    om_heap *h = om_heap_new();
    CHECK(h != NULL);
    if (h == NULL)
        return;
    CHECK(h->large_count == 0 && h->large_bytes == 0 && h->large_blocks == NULL);
    void *a = omi_large_malloc(h, 300 * KB, OM_ALIGNMENT);
    void *b = omi_large_malloc(h, 3 * MB, 64 * KB);
    void *c = omi_large_malloc(h, 5 * MB, 4 * MB);
    CHECK(a != NULL && b != NULL && c != NULL);
    if (a == NULL || b == NULL || c == NULL)
        return;
    CHECK_EQ_SIZE(h->large_count, 3);
    CHECK_EQ_SIZE(h->large_bytes, usable(a) + usable(b) + usable(c));
    b = large_realloc(b, 20 * MB);
    CHECK(b != NULL);
    if (b == NULL)
        return;
    CHECK((uintptr_t)b % (64 * KB) == 0);
    CHECK_EQ_SIZE(h->large_count, 3);
    CHECK_EQ_SIZE(h->large_bytes, usable(a) + usable(b) + usable(c));
    large_free(a);
    CHECK_EQ_SIZE(h->large_count, 2);
    CHECK_EQ_SIZE(h->large_bytes, usable(b) + usable(c));
    uintptr_t eb = entry_of(b), ec = entry_of(c);
    omi_large_heap_release_all(h);
    CHECK_EQ_SIZE(h->large_count, 0);
    CHECK_EQ_SIZE(h->large_bytes, 0);
    CHECK(h->large_blocks == NULL);
    CHECK(entry_of(b) != eb);
    CHECK(entry_of(c) != ec);
    omi_large_heap_release_all(h);   /* twice is harmless */
    om_heap_delete(h);
}

static void test_release_rss(void)
{
    om_heap *h = om_heap_new();
    CHECK(h != NULL);
    if (h == NULL)
        return;
    size_t count = OM_TEST_SCALE(24), size = 4 * MB;
    size_t total = count * size;
    void *blocks[24] = {NULL};
    size_t rss_before = check_rss_bytes();
    for (size_t i = 0; i < count; i++) {
        blocks[i] = omi_large_malloc(h, size, i % 2 ? OM_ALIGNMENT : 2 * MB);
        CHECK(blocks[i] != NULL);
        if (blocks[i] != NULL)
            memset(blocks[i], (int)i + 1, size);
    }
    /* A third of them grown by realloc (in place or moved), the new part
     * touched too. */
    size_t grown = size + size / 2;
    for (size_t i = 0; i < count; i += 3) {
        void *q = blocks[i] != NULL ? large_realloc(blocks[i], grown) : NULL;
        CHECK(q != NULL);
        if (q != NULL) {
            memset((char *)q + size, (int)i + 1, grown - size);
            total += grown - size;
        }
    }
    size_t rss_full = check_rss_bytes();
    CHECK(rss_full >= rss_before + total / 10 * 9);
    CHECK_EQ_SIZE(h->large_count, count);
    omi_large_heap_release_all(h);
    size_t rss_after = check_rss_bytes();
    CHECK(rss_after + total / 10 * 9 <= rss_full);
    printf("rss: %zu KiB before, %zu KiB with %zu MiB live, %zu KiB after release_all\n",
           rss_before / KB, rss_full / KB, total / MB, rss_after / KB);
    om_heap_delete(h);
}

/* ------------------------------------------------------------------------ */
/* Fatal misuse                                                             */
/* ------------------------------------------------------------------------ */

enum misuse { MISUSE_FREE, MISUSE_REALLOC, MISUSE_USABLE };

struct misuse_case {
    enum misuse what;
    ptrdiff_t delta;                 /* from the block's start */
    const char *function;
};

static void misuse_child(void *arg)
{
    const struct misuse_case *c = arg;
    char *p = omi_large_malloc(om_heap_default(), 2 * MB, OM_ALIGNMENT);
    if (p == NULL)
        _exit(3);
    char *bad = p + c->delta;
    fprintf(stderr, "BAD=%p\n", (void *)bad);
    uintptr_t entry = omi_addrmap_lookup(bad);
    switch (c->what) {
    case MISUSE_FREE:
        omi_large_free(c->function, entry, bad);
        break;
    case MISUSE_REALLOC:
        omi_large_realloc(c->function, entry, bad, 4 * MB);
        break;
    case MISUSE_USABLE:
        omi_large_usable_size(c->function, entry, bad);
        break;
    }
    _exit(0);                        /* not reached: the call aborts */
}

static void test_misuse(void)
{
    const struct misuse_case cases[] = {
        {MISUSE_FREE, 16, "om_mem_free"},
        {MISUSE_REALLOC, (ptrdiff_t)(MB + 8), "om_obj_realloc"},
        {MISUSE_USABLE, -64, "om_usable_size"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[4096];
        int status = check_run_child(misuse_child, (void *)&cases[i], err, sizeof err);
        CHECK(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
        char bad[64] = "";
        const char *line = strstr(err, "BAD=");
        if (line != NULL)
            sscanf(line, "BAD=%63s", bad);
        char expected[128];
        snprintf(expected, sizeof expected, "%s(%s)", cases[i].function, bad);
        CHECK(bad[0] != '\0' && strstr(err, expected) != NULL);
        CHECK(strstr(err, "objmem: fatal error") != NULL);
        CHECK(strstr(err, "large block of 2097152 bytes") != NULL);
        CHECK(strstr(err, cases[i].delta < 0 ? "in the header" : "bytes past its start") != NULL);
        if (check_failed)
            fprintf(stderr, "--- child stderr:\n%s---\n", err);
    }
}

/* ------------------------------------------------------------------------ */
/* The cache of freed mappings                                              */
/* ------------------------------------------------------------------------ */

static void double_free_child(void *arg)
{
    (void)arg;
    void *p = om_mem_malloc(2 * MB);
    om_mem_free(p);
    om_mem_free(p);
}

static void test_cache(void)
{
    CHECK(om_option_set(OM_OPTION_PURGE_DELAY_MS, 3600L * 1000) == 0);
    om_heap *h = om_heap_new();
    CHECK(h != NULL);
    if (h == NULL)
        return;
    /* A freed mapping is reused as it is by an allocation that fits. */
    unsigned char *p = om_heap_malloc(h, 600 * KB);
    CHECK(p != NULL);
    memset(p, 0x77, 600 * KB);
    uintptr_t entry = entry_of(p);
    om_mem_free(p);
    CHECK(entry_of(p) == entry);          /* still mapped, still ours */
    om_heap_stats st;
    om_heap_get_stats(h, &st);
    CHECK_EQ_SIZE(st.large_count, 0);
    CHECK_EQ_SIZE(st.large_cached_bytes, MB);
    unsigned char *q = om_heap_malloc(h, 900 * KB);
    CHECK(q == p);
    om_heap_get_stats(h, &st);
    CHECK_EQ_SIZE(st.large_count, 1);
    CHECK_EQ_SIZE(st.large_cached_bytes, 0);
    /* A request needing more slots, or less than half, maps anew. */
    unsigned char *r = om_heap_malloc(h, 5 * MB);
    om_mem_free(q);
    unsigned char *s2 = om_heap_malloc(h, 3 * MB);
    CHECK(s2 != NULL && s2 != q);
    om_mem_free(r);
    om_mem_free(s2);
    /* At most 8 wait; the rest are unmapped at once. */
    void *many[12];
    for (int i = 0; i < 12; i++)
        many[i] = om_heap_malloc(h, 300 * KB);
    for (int i = 0; i < 12; i++)
        om_mem_free(many[i]);
    om_heap_get_stats(h, &st);
    CHECK(st.large_cached_bytes <= 8 * 6 * MB);
    CHECK(st.large_cached_bytes >= 8 * MB);
    /* om_heap_trim unmaps them all and counts them. */
    size_t cached = st.large_cached_bytes;
    CHECK(om_heap_trim(h) >= cached);
    om_heap_get_stats(h, &st);
    CHECK_EQ_SIZE(st.large_cached_bytes, 0);
    CHECK(entry_of(many[0]) != entry_of(many[1]) || entry_of(many[0]) == 0);
    /* The purge delay unmaps them too, at the next slow path after it. */
    CHECK(om_option_set(OM_OPTION_PURGE_DELAY_MS, 20) == 0);
    p = om_heap_malloc(h, 400 * KB);
    entry = entry_of(p);
    om_mem_free(p);
    CHECK(entry_of(p) == entry);
    usleep(60 * 1000);
    om_mem_free(om_heap_malloc(h, 8 * MB));  /* a slow path: checks the clock */
    CHECK(entry_of(p) == 0);
    om_heap_delete(h);
    /* Freeing a cached block again is fatal. */
    char err[2048];
    CHECK(om_option_set(OM_OPTION_PURGE_DELAY_MS, 3600L * 1000) == 0);
    int status = check_run_child(double_free_child, NULL, err, sizeof err);
    CHECK(status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(strstr(err, "om_mem_free(") != NULL);
    CHECK(strstr(err, "a large block that is already free") != NULL);
    CHECK(om_option_set(OM_OPTION_PURGE_DELAY_MS, 0) == 0);
}

/* ------------------------------------------------------------------------ */
/* Failures                                                                 */
/* ------------------------------------------------------------------------ */

static void check_enomem(void *p)
{
    CHECK(p == NULL);
    CHECK(om_last_error() == OM_ENOMEM);
    CHECK(errno == ENOMEM);
    om_clear_error();
    errno = 0;
}

static void test_failures(void)
{
    om_heap *h = om_heap_default();
    size_t count = h->large_count, bytes = h->large_bytes;
    check_enomem(omi_large_malloc(h, SIZE_MAX, OM_ALIGNMENT));
    check_enomem(omi_large_malloc(h, SIZE_MAX - 4096, OM_ALIGNMENT));
    check_enomem(omi_large_malloc(h, PTRDIFF_MAX, OM_ALIGNMENT));
    check_enomem(omi_large_malloc(h, (size_t)PTRDIFF_MAX - 2 * MB, 8 * MB));
    check_enomem(omi_large_malloc(h, (size_t)1 << 50, OM_ALIGNMENT));
    check_enomem(omi_large_malloc(h, MB, (size_t)1 << 62));
    CHECK(h->large_count == count && h->large_bytes == bytes);

    size_t size = 3 * MB;
    unsigned char *p = omi_large_malloc(h, size, OM_ALIGNMENT);
    CHECK(p != NULL);
    if (p == NULL)
        return;
    tu_fill_pattern_range(&byte_pattern, p, 0, size, 41);
    size_t avail = usable(p);
    uintptr_t entry = entry_of(p);
    bytes = h->large_bytes;
    const size_t absurd[] = {SIZE_MAX, SIZE_MAX - MB, PTRDIFF_MAX, (size_t)1 << 50};
    for (size_t i = 0; i < sizeof absurd / sizeof absurd[0]; i++) {
        check_enomem(large_realloc(p, absurd[i]));
        CHECK(entry_of(p) == entry);
        CHECK_EQ_SIZE(usable(p), avail);
        CHECK(h->large_bytes == bytes);
    }
    CHECK(tu_has_pattern_range(&byte_pattern, p, 0, size, 1, 41));
    large_free(p);
}

int main(void)
{
    /* Freed mappings unmapped at once, as the tests up to test_cache expect. */
    CHECK(om_option_set(OM_OPTION_PURGE_DELAY_MS, 0) == 0);
    test_sizes();
    test_alignments();
    test_realloc_grow_steps();
    test_realloc_move(OM_ALIGNMENT);
    test_realloc_move(2 * MB);
    test_realloc_move(256 * KB);
    test_realloc_shrink();
    test_counters();
    test_release_rss();
    test_misuse();
    test_failures();
    test_cache();
    return check_report();
}
