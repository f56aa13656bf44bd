/*
 * test-trace.c — allocation tracing (om_trace_*, om_snapshot_*; issue 4).
 *
 * A known program: noinline helpers allocate from known call sites (each
 * stores its result, so no call is in tail position), and the tests check
 * that statistics by site give exactly their sizes and counts; that the
 * traced current and peak sizes and om_trace_reset_peak are right; that a
 * compare of two snapshots finds a leak injected between them at the right
 * site with the right size and count differences; that dump and load round
 * trip and that every truncation and a flipped byte of a dump are rejected
 * (NULL, OM_EINVAL) without a crash; that om_trace_get_object_traceback
 * names the allocating function (by address range and by name); filters
 * by file glob, library glob and domain; that om_trace_stop leaves traced
 * blocks freeable and reallocable, and blocks from before om_trace_start
 * free and reallocate untraced; om_usable_size of traced blocks; a
 * traceback 5 calls deep in order (this file is compiled with frame
 * pointers under GCC, see below); the RAW domain from two threads, counts
 * exact; fault injection on RAW (where the tracer takes its own memory)
 * looped over the first allocation points of each operation: every failure
 * is NULL/-1 with OM_ENOMEM and changes no counter; OBJMEM_TRACEMALLOC in
 * a re-executed child. In children (check_run_child): a block freed
 * through another domain is a fatal report with its traceback, and with
 * the debug hooks installed first a buffer overflow report shows the
 * allocation traceback of the block.
 */
/* Deep tracebacks follow frame pointers: tests/CMakeLists.txt builds every
 * test with -fno-omit-frame-pointer. */

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "objmem.h"
#include "testutil.h"

#define NOINLINE __attribute__((noinline))
#define SITE_SPAN 256                 /* bytes of code a helper surely fits in */

static void *volatile sink;           /* keeps helpers' results observable */

/* ---- Known call sites ------------------------------------------------------ */

static NOINLINE void site_mem24(void **out) { *out = om_mem_malloc(24); sink = *out; }
static NOINLINE void site_obj100(void **out) { *out = om_obj_malloc(100); sink = *out; }
static NOINLINE void site_raw40(void **out) { *out = om_raw_malloc(40); sink = *out; }
static NOINLINE void site_leak48(void **out) { *out = om_mem_calloc(2, 24); sink = *out; }
static NOINLINE void site_big(void **out) { *out = om_mem_malloc(1000); sink = *out; }
static NOINLINE void site_grow(void **p, size_t n) { *p = om_mem_realloc(*p, n); sink = *p; }
static NOINLINE void site_fresh(void **out) { *out = om_mem_malloc(72); sink = *out; }
static NOINLINE void site_thread(void **out) { *out = om_raw_malloc(32); sink = *out; }

/* A 5-deep chain: depth5 -> depth4 -> … -> depth1 allocates. */
static NOINLINE void depth1(void **out) { *out = om_obj_malloc(56); sink = *out; }
static NOINLINE void depth2(void **out) { depth1(out); sink = *out; }
static NOINLINE void depth3(void **out) { depth2(out); sink = *out; }
static NOINLINE void depth4(void **out) { depth3(out); sink = *out; }
static NOINLINE void depth5(void **out) { depth4(out); sink = *out; }

/* Every helper that allocates, in no particular order: a frame belongs to
 * fn when it lies after fn's start and before the next helper's start. */
static void (*const helpers[])(void **) = {
    site_mem24, site_obj100, site_raw40, site_leak48, site_big, site_fresh, site_thread,
    depth1, depth2, depth3, depth4, depth5,
};

static int frame_in_range(const void *frame, uintptr_t start)
{
    uintptr_t f = (uintptr_t)frame;
    if (f <= start || f >= start + SITE_SPAN)
        return 0;
    for (size_t i = 0; i < sizeof helpers / sizeof helpers[0]; i++) {
        uintptr_t other = (uintptr_t)helpers[i];
        if (other > start && other < f)
            return 0;
    }
    uintptr_t grow = (uintptr_t)site_grow;
    return !(grow > start && grow < f);
}

static int frame_in(const void *frame, void (*fn)(void **))
{
    return frame_in_range(frame, (uintptr_t)fn);
}

static int frame_in_grow(const void *frame)
{
    return frame_in_range(frame, (uintptr_t)site_grow);
}

static int frame_named(const void *frame, const char *name)
{
    char buf[512];
    om_trace_format_frame(frame, buf, sizeof buf);
    return strstr(buf, name) != NULL;
}

/* The entry of stats whose innermost frame lies in fn, or NULL. */
static const om_trace_stat *stat_of(const om_trace_stats *stats, void (*fn)(void **))
{
    for (size_t i = 0; i < stats->count; i++)
        if (frame_in(stats->entries[i].frames[0], fn))
            return &stats->entries[i];
    return NULL;
}

static size_t traced_current(void)
{
    size_t current = 0;
    om_trace_get_traced_memory(&current, NULL);
    return current;
}

static size_t traced_peak(void)
{
    size_t peak = 0;
    om_trace_get_traced_memory(NULL, &peak);
    return peak;
}

/* ---- Sites, sizes, counts, peak ------------------------------------------- */

#define N_MEM 10
#define N_OBJ 5
#define N_RAW 3

typedef struct known_blocks {
    void *mem[N_MEM], *obj[N_OBJ], *raw[N_RAW];
} known_blocks;

static void known_allocate(known_blocks *k)
{
    for (int i = 0; i < N_MEM; i++)
        site_mem24(&k->mem[i]);
    for (int i = 0; i < N_OBJ; i++)
        site_obj100(&k->obj[i]);
    for (int i = 0; i < N_RAW; i++)
        site_raw40(&k->raw[i]);
}

static void known_free(known_blocks *k)
{
    for (int i = 0; i < N_MEM; i++)
        om_mem_free(k->mem[i]);
    for (int i = 0; i < N_OBJ; i++)
        om_obj_free(k->obj[i]);
    for (int i = 0; i < N_RAW; i++)
        om_raw_free(k->raw[i]);
}

#define KNOWN_SIZE (N_MEM * 24 + N_OBJ * 100 + N_RAW * 40)

static void test_sites(void)
{
    CHECK(om_trace_start(1) == 0);
    CHECK(om_trace_is_tracing() == 1);
    CHECK(om_trace_get_traceback_limit() == 1);
    CHECK_EQ_SIZE(traced_current(), 0);
    known_blocks k;
    known_allocate(&k);
    CHECK_EQ_SIZE(traced_current(), KNOWN_SIZE);
    CHECK_EQ_SIZE(traced_peak(), KNOWN_SIZE);

    void *big;
    site_big(&big);
    CHECK_EQ_SIZE(traced_current(), KNOWN_SIZE + 1000);
    om_mem_free(big);
    CHECK_EQ_SIZE(traced_current(), KNOWN_SIZE);
    CHECK_EQ_SIZE(traced_peak(), KNOWN_SIZE + 1000);
    om_trace_reset_peak();
    CHECK_EQ_SIZE(traced_peak(), KNOWN_SIZE);

    om_snapshot *snap = om_trace_take_snapshot();
    CHECK(snap != NULL);
    CHECK(om_snapshot_traceback_limit(snap) == 1);
    om_trace_stats *stats = om_snapshot_statistics(snap, OM_TRACE_BY_SITE);
    CHECK(stats != NULL && stats->count == 3);
    CHECK_EQ_SIZE(stats->total_size, KNOWN_SIZE);
    const om_trace_stat *mem = stat_of(stats, site_mem24);
    const om_trace_stat *obj = stat_of(stats, site_obj100);
    const om_trace_stat *raw = stat_of(stats, site_raw40);
    CHECK(mem != NULL && obj != NULL && raw != NULL);
    if (mem != NULL && obj != NULL && raw != NULL) {
        CHECK_EQ_SIZE(mem->size, N_MEM * 24);
        CHECK_EQ_SIZE(mem->count, N_MEM);
        CHECK_EQ_SIZE(obj->size, N_OBJ * 100);
        CHECK_EQ_SIZE(obj->count, N_OBJ);
        CHECK_EQ_SIZE(raw->size, N_RAW * 40);
        CHECK_EQ_SIZE(raw->count, N_RAW);
        CHECK(stats->entries[0].frames[0] == obj->frames[0]);   /* sorted by size */
        CHECK(frame_named(mem->frames[0], "site_mem24"));
        CHECK(frame_named(raw->frames[0], "test-trace.c:"));
    }
    om_trace_stats_free(stats);

    /* Traceback grouping with 1 frame gives the same groups. */
    stats = om_snapshot_statistics(snap, OM_TRACE_BY_TRACEBACK);
    CHECK(stats != NULL && stats->count == 3 && stats->total_size == KNOWN_SIZE);
    om_trace_stats_free(stats);
    CHECK(om_snapshot_statistics(snap, (om_trace_group)7) == NULL);
    CHECK(om_last_error() == OM_EINVAL);
    CHECK(om_snapshot_statistics(NULL, OM_TRACE_BY_SITE) == NULL);
    om_snapshot_free(snap);

    /* The object traceback of one block. */
    om_traceback *tb = om_trace_get_object_traceback(k.obj[2]);
    CHECK(tb != NULL);
    if (tb != NULL) {
        CHECK(tb->nframes == 1 && tb->size == 100 && tb->domain == OM_DOMAIN_OBJ);
        CHECK(frame_in(tb->frames[0], site_obj100));
        CHECK(frame_named(tb->frames[0], "site_obj100"));
    }
    om_traceback_free(tb);
    tb = om_trace_get_object_traceback(k.raw[0]);
    CHECK(tb != NULL && tb->domain == OM_DOMAIN_RAW && frame_in(tb->frames[0], site_raw40));
    om_traceback_free(tb);
    CHECK(om_usable_size(k.mem[0]) == 24);
    CHECK(om_usable_size(k.obj[0]) == 100);

    known_free(&k);
    CHECK_EQ_SIZE(traced_current(), 0);
    snap = om_trace_take_snapshot();
    stats = snap != NULL ? om_snapshot_statistics(snap, OM_TRACE_BY_SITE) : NULL;
    CHECK(stats != NULL && stats->count == 0);
    om_trace_stats_free(stats);
    om_snapshot_free(snap);
    CHECK(om_trace_stop() == 0);
    CHECK(om_trace_is_tracing() == 0);
    CHECK(om_trace_get_traceback_limit() == 0);
}

/* ---- Compare: an injected leak --------------------------------------------------- */

#define LEAKS 7

static void test_compare_finds_leak(void)
{
    CHECK(om_trace_start(4) == 0);
    known_blocks k;
    known_allocate(&k);
    om_snapshot *before = om_trace_take_snapshot();
    void *leaked[LEAKS];
    for (int i = 0; i < LEAKS; i++)
        site_leak48(&leaked[i]);
    void *gone;                       /* a block of a known site goes away */
    om_mem_free(k.mem[0]);
    k.mem[0] = NULL;
    site_fresh(&gone);
    om_mem_free(gone);
    om_snapshot *after = om_trace_take_snapshot();
    CHECK(before != NULL && after != NULL);

    om_trace_stats *diff = om_snapshot_compare(before, after, OM_TRACE_BY_SITE);
    CHECK(diff != NULL && diff->count == 4);
    if (diff != NULL && diff->count >= 2) {
        const om_trace_stat *top = &diff->entries[0];
        CHECK(frame_in(top->frames[0], site_leak48));
        CHECK(top->size_diff == LEAKS * 48 && top->count_diff == LEAKS);
        CHECK(top->size == LEAKS * 48 && top->count == LEAKS);
        const om_trace_stat *mem = stat_of(diff, site_mem24);
        CHECK(mem != NULL && mem->size_diff == -24 && mem->count_diff == -1);
        CHECK(&diff->entries[1] == mem);    /* |24| is the next largest difference */
        CHECK(diff->total_size_diff == LEAKS * 48 - 24);
    }
    om_trace_stats_free(diff);
    diff = om_snapshot_compare(before, after, OM_TRACE_BY_TRACEBACK);
    CHECK(diff != NULL && diff->entries[0].size_diff == LEAKS * 48);
    if (diff != NULL) {
        char *text = NULL;
        size_t length = 0;
        FILE *out = open_memstream(&text, &length);
        om_trace_print_stats(out, diff, 1);
        fclose(out);
        CHECK(text != NULL && strstr(text, "site_leak48") != NULL &&
              strstr(text, "+336 B, +7 blocks") != NULL);
        free(text);
    }
    om_trace_stats_free(diff);
    CHECK(om_snapshot_compare(NULL, after, OM_TRACE_BY_SITE) == NULL);

    /* Dump, load, and the same statistics from the loaded copy. */
    char path[] = "/tmp/test-trace-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    CHECK(om_snapshot_dump(after, path) == 0);
    om_snapshot *loaded = om_snapshot_load(path);
    CHECK(loaded != NULL);
    if (loaded != NULL) {
        CHECK(om_snapshot_traceback_limit(loaded) == 4);
        om_trace_stats *a = om_snapshot_statistics(after, OM_TRACE_BY_TRACEBACK);
        om_trace_stats *b = om_snapshot_statistics(loaded, OM_TRACE_BY_TRACEBACK);
        CHECK(a != NULL && b != NULL && a->count == b->count && a->total_size == b->total_size);
        for (size_t i = 0; a != NULL && b != NULL && i < a->count && i < b->count; i++) {
            CHECK(a->entries[i].size == b->entries[i].size);
            CHECK(a->entries[i].count == b->entries[i].count);
            CHECK(a->entries[i].nframes == b->entries[i].nframes);
            CHECK(memcmp(a->entries[i].frames, b->entries[i].frames,
                         a->entries[i].nframes * sizeof(void *)) == 0);
        }
        om_trace_stats_free(a);
        om_trace_stats_free(b);
        diff = om_snapshot_compare(before, loaded, OM_TRACE_BY_SITE);
        CHECK(diff != NULL && frame_in(diff->entries[0].frames[0], site_leak48) &&
              diff->entries[0].count_diff == LEAKS);
        om_trace_stats_free(diff);
    }
    om_snapshot_free(loaded);

    /* Every truncation, and every flipped byte of the first 200, is rejected. */
    FILE *f = fopen(path, "rb");
    unsigned char data[1 << 14];
    size_t size = f != NULL ? fread(data, 1, sizeof data, f) : 0;
    if (f != NULL)
        fclose(f);
    CHECK(size > 64 && size < sizeof data);
    int rejected = 1;
    for (size_t cut = 0; cut < size; cut++) {
        f = fopen(path, "wb");
        fwrite(data, 1, cut, f);
        fclose(f);
        om_snapshot *bad = om_snapshot_load(path);
        rejected &= bad == NULL && om_last_error() == OM_EINVAL;
        om_snapshot_free(bad);
    }
    for (size_t at = 0; at < size && at < 200; at++) {
        data[at] ^= 0x41;
        f = fopen(path, "wb");
        fwrite(data, 1, size, f);
        fclose(f);
        data[at] ^= 0x41;
        om_snapshot *bad = om_snapshot_load(path);
        rejected &= bad == NULL && om_last_error() == OM_EINVAL;
        om_snapshot_free(bad);
    }
    CHECK(rejected);
    CHECK(om_snapshot_load("/nonexistent/trace.dump") == NULL && om_last_error() == OM_EINVAL);
    CHECK(om_snapshot_dump(after, "/nonexistent/trace.dump") == -1);
    CHECK(om_snapshot_dump(NULL, path) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_snapshot_load(NULL) == NULL);
    unlink(path);

    om_snapshot_free(before);
    om_snapshot_free(after);
    for (int i = 0; i < LEAKS; i++)
        om_mem_free(leaked[i]);
    known_free(&k);
    om_trace_stop();
}

/* ---- Filters ------------------------------------------------------------------------ */

static size_t filtered_count(const om_snapshot *snap, const om_trace_filter *filters, size_t n)
{
    om_snapshot *f = om_snapshot_filter(snap, filters, n);
    om_trace_stats *stats = f != NULL ? om_snapshot_statistics(f, OM_TRACE_BY_SITE) : NULL;
    size_t count = stats != NULL ? stats->count : (size_t)-1;
    om_trace_stats_free(stats);
    om_snapshot_free(f);
    return count;
}

static void test_filters(void)
{
    CHECK(om_trace_start(3) == 0);
    known_blocks k;
    known_allocate(&k);
    om_snapshot *snap = om_trace_take_snapshot();
    CHECK(snap != NULL);
    om_trace_filter only_here = {1, "test-trace.c", 0, -1};
    om_trace_filter not_here = {0, "*/test-trace.c", 0, -1};
    om_trace_filter only_raw = {1, NULL, 0, OM_DOMAIN_RAW};
    om_trace_filter library = {1, "test-trace", 0, -1};      /* the program's file name */
    om_trace_filter libc = {1, "libc.so*", 1, -1};
    CHECK_EQ_SIZE(filtered_count(snap, &only_here, 1), 3);
    CHECK_EQ_SIZE(filtered_count(snap, &not_here, 1), 0);
    CHECK_EQ_SIZE(filtered_count(snap, &only_raw, 1), 1);
    CHECK_EQ_SIZE(filtered_count(snap, &library, 1), 3);
    CHECK_EQ_SIZE(filtered_count(snap, &libc, 1), 0);
    om_trace_filter both[] = {only_here, only_raw};
    CHECK_EQ_SIZE(filtered_count(snap, both, 2), 1);
    CHECK_EQ_SIZE(filtered_count(snap, NULL, 0), 3);
    CHECK(om_snapshot_filter(snap, NULL, 1) == NULL && om_last_error() == OM_EINVAL);
    CHECK(om_snapshot_filter(NULL, NULL, 0) == NULL);
    om_snapshot_free(snap);
    known_free(&k);
    om_trace_stop();
}

/* ---- Start, stop, and blocks across them ---------------------------------------------- */

static void test_start_stop(void)
{
    CHECK(om_trace_start(0) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_trace_start(OM_TRACE_MAX_FRAMES + 1) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_trace_take_snapshot() == NULL && om_last_error() == OM_EINVAL);
    CHECK(om_trace_stop() == 0);

    /* Blocks from before start: untraced, free and realloc fine. */
    void *mem_before = om_mem_malloc(40), *obj_before = om_obj_malloc(300);
    void *raw_before = om_raw_malloc(50), *big_before = om_mem_malloc(5000);
    CHECK(om_trace_start(2) == 0);
    CHECK(om_trace_get_object_traceback(mem_before) == NULL && om_last_error() == OM_EINVAL);
    CHECK(om_trace_get_object_traceback(raw_before) == NULL);
    CHECK(om_trace_get_object_traceback(NULL) == NULL);
    CHECK(om_usable_size(mem_before) >= 40);
    mem_before = om_mem_realloc(mem_before, 80);
    CHECK(mem_before != NULL && traced_current() == 0);
    om_mem_free(mem_before);
    om_obj_free(obj_before);
    om_raw_free(raw_before);
    om_mem_free(big_before);
    CHECK_EQ_SIZE(traced_current(), 0);

    /* realloc moves a traced block to the realloc's site. */
    void *p = NULL;
    site_grow(&p, 30);
    CHECK_EQ_SIZE(traced_current(), 30);
    memset(p, 0x5A, 30);
    site_grow(&p, 3000);
    CHECK(p != NULL && ((unsigned char *)p)[29] == 0x5A);
    CHECK_EQ_SIZE(traced_current(), 3000);
    om_traceback *tb = om_trace_get_object_traceback(p);
    CHECK(tb != NULL && tb->size == 3000 && frame_in_grow(tb->frames[0]));
    om_traceback_free(tb);

    /* Blocks traced before stop: freed, reallocated, measured after it. */
    known_blocks k;
    known_allocate(&k);
    CHECK(om_trace_stop() == 0);
    CHECK_EQ_SIZE(traced_current(), 0);
    CHECK(om_usable_size(k.mem[1]) == 24);
    k.mem[1] = om_mem_realloc(k.mem[1], 2000);
    CHECK(k.mem[1] != NULL);
    void *untraced = om_mem_malloc(24);
    CHECK(om_trace_get_object_traceback(untraced) == NULL);
    om_mem_free(untraced);

    /* A new session does not count the old blocks, which still free fine. */
    CHECK(om_trace_start(1) == 0);
    CHECK_EQ_SIZE(traced_current(), 0);
    void *fresh;
    site_fresh(&fresh);
    CHECK_EQ_SIZE(traced_current(), 72);
    known_free(&k);
    om_mem_free(p);
    CHECK_EQ_SIZE(traced_current(), 72);
    om_snapshot *snap = om_trace_take_snapshot();
    om_trace_stats *stats = snap != NULL ? om_snapshot_statistics(snap, OM_TRACE_BY_SITE) : NULL;
    CHECK(stats != NULL && stats->count == 1 && frame_in(stats->entries[0].frames[0], site_fresh));
    om_trace_stats_free(stats);
    om_snapshot_free(snap);
    om_mem_free(fresh);
    CHECK(om_trace_start(5) == 0);          /* while tracing: a new limit */
    CHECK(om_trace_get_traceback_limit() == 5);
    om_trace_stop();
    /* Nothing traced is left: the domains have their allocators back. */
    om_allocator a;
    om_get_allocator(OM_DOMAIN_MEM, &a);
    CHECK(a.ctx == om_heap_default());
}

/* ---- A deep traceback --------------------------------------------------------------------- */

static void test_deep_traceback(void)
{
    CHECK(om_trace_start(10) == 0);
    void *p;
    depth5(&p);
    om_traceback *tb = om_trace_get_object_traceback(p);
    CHECK(tb != NULL);
    if (tb != NULL) {
        CHECK(tb->nframes >= 6);
        void (*chain[])(void **) = {depth1, depth2, depth3, depth4, depth5};
        for (size_t i = 0; i < 5 && i < tb->nframes; i++)
            CHECK(frame_in(tb->frames[i], chain[i]));
        CHECK(frame_named(tb->frames[4], "depth5"));
    }
    om_traceback_free(tb);
    om_obj_free(p);
    om_trace_stop();
}

/* ---- RAW from two threads ---------------------------------------------------------------- */

#define THREAD_BLOCKS 20000

static void *thread_work(void *arg)
{
    void **blocks = arg;
    size_t n = OM_TEST_SCALE(THREAD_BLOCKS);
    for (size_t i = 0; i < n; i++)
        site_thread(&blocks[i]);
    for (size_t i = 0; i < n; i += 2)
        om_raw_free(blocks[i]);
    return NULL;
}

static void test_raw_threads(void)
{
    size_t n = OM_TEST_SCALE(THREAD_BLOCKS);
    void **blocks[2] = {calloc(n, sizeof(void *)), calloc(n, sizeof(void *))};
    CHECK(om_trace_start(2) == 0);
    pthread_t threads[2];
    for (int t = 0; t < 2; t++)
        pthread_create(&threads[t], NULL, thread_work, blocks[t]);
    for (int t = 0; t < 2; t++)
        pthread_join(threads[t], NULL);
    size_t live = 2 * (n / 2);
    CHECK_EQ_SIZE(traced_current(), live * 32);
    om_snapshot *snap = om_trace_take_snapshot();
    om_trace_stats *stats = snap != NULL ? om_snapshot_statistics(snap, OM_TRACE_BY_SITE) : NULL;
    const om_trace_stat *s = stats != NULL ? stat_of(stats, site_thread) : NULL;
    CHECK(s != NULL && s->count == live && s->size == live * 32);
    om_trace_stats_free(stats);
    om_snapshot_free(snap);
    for (int t = 0; t < 2; t++) {
        for (size_t i = 1; i < n; i += 2)
            om_raw_free(blocks[t][i]);
        free(blocks[t]);
    }
    CHECK_EQ_SIZE(traced_current(), 0);
    om_trace_stop();
}

/* ---- Fault injection on the tracer's own memory ------------------------------------------- */

/* One operation that needs tracer memory; 0 = success, -1 = clean failure. */
typedef int (*tracer_op)(void);

/* A site never seen before: its traceback needs a new record. */
static NOINLINE int op_new_site(void)
{
    void *p = om_mem_malloc(64);
    sink = p;
    om_mem_free(p);
    return p != NULL ? 0 : -1;
}

static om_snapshot *fault_snap;

static int op_snapshot(void)
{
    om_snapshot *s = om_trace_take_snapshot();
    om_snapshot_free(s);
    return s != NULL ? 0 : -1;
}

static int op_statistics(void)
{
    om_trace_stats *s = om_snapshot_statistics(fault_snap, OM_TRACE_BY_TRACEBACK);
    om_trace_stats_free(s);
    return s != NULL ? 0 : -1;
}

static int op_compare(void)
{
    om_trace_stats *s = om_snapshot_compare(fault_snap, fault_snap, OM_TRACE_BY_SITE);
    om_trace_stats_free(s);
    return s != NULL ? 0 : -1;
}

static int op_filter(void)
{
    om_trace_filter f = {1, NULL, 0, OM_DOMAIN_MEM};
    om_snapshot *s = om_snapshot_filter(fault_snap, &f, 1);
    om_snapshot_free(s);
    return s != NULL ? 0 : -1;
}

static char fault_path[64];

static int op_dump_load(void)
{
    if (om_snapshot_dump(fault_snap, fault_path) != 0)
        return -1;
    om_snapshot *s = om_snapshot_load(fault_path);
    om_snapshot_free(s);
    return s != NULL ? 0 : -1;
}

static int op_object_traceback(void)
{
    void *p;
    site_fresh(&p);
    if (p == NULL)
        return -1;
    om_traceback *tb = om_trace_get_object_traceback(p);
    om_mem_free(p);
    om_traceback_free(tb);
    return tb != NULL ? 0 : -1;
}

static void test_faults(void)
{
    static const struct { const char *name; tracer_op op; } ops[] = {
        {"new site", op_new_site}, {"snapshot", op_snapshot}, {"statistics", op_statistics},
        {"compare", op_compare}, {"filter", op_filter}, {"dump+load", op_dump_load},
        {"object traceback", op_object_traceback},
    };
    snprintf(fault_path, sizeof fault_path, "/tmp/test-trace-fault-%d", (int)getpid());
    CHECK(om_trace_start(3) == 0);
    known_blocks k;
    known_allocate(&k);
    fault_snap = om_trace_take_snapshot();
    CHECK(fault_snap != NULL);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        int failures = 0, clean = 1, succeeded = 0;
        for (long n = 0; n < 12 && !succeeded; n++) {
            size_t current = traced_current();
            om_clear_error();
            CHECK(om_fail_after(OM_DOMAIN_RAW, n) == 0);
            int result = ops[i].op();
            CHECK(om_fail_after(OM_DOMAIN_RAW, -1) == 0);
            if (result != 0) {
                failures++;
                clean &= om_last_error() == OM_ENOMEM;
            }
            succeeded = result == 0;
            clean &= traced_current() == current;
        }
        if (!clean || !succeeded)
            fprintf(stderr, "fault case %s: clean %d, succeeded %d\n", ops[i].name, clean,
                    succeeded);
        CHECK(clean && succeeded);
        CHECK(failures >= 1);
    }
    om_snapshot_free(fault_snap);
    unlink(fault_path);
    CHECK_EQ_SIZE(traced_current(), KNOWN_SIZE);
    known_free(&k);
    CHECK_EQ_SIZE(traced_current(), 0);
    om_trace_stop();
}

/* ---- Fatal reports (children) ---------------------------------------------------------------- */

static NOINLINE void site_wrong(void **out) { *out = om_mem_malloc(33); sink = *out; }

static void child_wrong_domain(void *arg)
{
    (void)arg;
    om_trace_start(2);
    void *p;
    site_wrong(&p);
    om_obj_free(p);
}

static NOINLINE void site_overflow(void **out) { *out = om_mem_malloc(40); sink = *out; }

static void child_debug_overflow(void *arg)
{
    (void)arg;
    om_setup_debug_hooks();
    om_trace_start(4);
    void *p;
    site_overflow(&p);
    CHECK(om_usable_size(p) == 40);
    om_traceback *tb = om_trace_get_object_traceback(p);
    if (tb == NULL || !frame_in(tb->frames[0], site_overflow))
        _exit(3);
    om_traceback_free(tb);
    void *q = om_obj_malloc(10);    /* an ordinary pair through both wrappers */
    om_obj_free(q);
    ((volatile unsigned char *)p)[40] = 0x11;
    om_mem_free(p);
}

static void test_fatal_reports(void)
{
    char buf[8192];
    int status = check_run_child(child_wrong_domain, NULL, buf, sizeof buf);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(strstr(buf, "tracing: block") != NULL);
    CHECK(strstr(buf, "allocated with om_mem_malloc freed with om_obj_free") != NULL);
    CHECK(strstr(buf, "site_wrong") != NULL);

    status = check_run_child(child_debug_overflow, NULL, buf, sizeof buf);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(strstr(buf, "debug hooks: buffer overflow") != NULL);
    CHECK(strstr(buf, "allocated at (most recent call first)") != NULL);
    CHECK(strstr(buf, "site_overflow") != NULL);
    if (strstr(buf, "site_overflow") == NULL)
        fprintf(stderr, "child said:\n%s\n", buf);
}

/* ---- OBJMEM_TRACEMALLOC ------------------------------------------------------------------------ */

static void child_environment(void *arg)
{
    (void)arg;
    setenv("OBJMEM_TRACEMALLOC", "7", 1);
    execl("/proc/self/exe", "test-trace", "--environment-child", (char *)NULL);
    _exit(5);
}

static int environment_child_main(void)
{
    void *p = om_mem_malloc(10);
    int ok = om_trace_is_tracing() == 1 && om_trace_get_traceback_limit() == 7 &&
             traced_current() == 10;
    om_mem_free(p);
    return ok ? 0 : 1;
}

/* Objects: a GC object's block begins with the collector's header, so the
 * object pointer is not the block's start; both kinds of object are found. */
static void test_object_tracebacks(void)
{
    CHECK(om_trace_start(1) == 0);
    om_object *list = om_list_new(4);             /* tracked by the collector */
    om_object *big = om_int_from_i64(1 << 20);    /* not a GC type; not cached */
    CHECK(list != NULL && big != NULL);
    om_traceback *tb = om_trace_get_object_traceback(list);
    /* size: the block, the collector's 16-byte header included */
    CHECK(tb != NULL && tb->domain == OM_DOMAIN_OBJ && tb->size >= 16 + sizeof(om_var_object));
    om_traceback_free(tb);
    tb = om_trace_get_object_traceback(big);
    CHECK(tb != NULL && tb->domain == OM_DOMAIN_OBJ);
    om_traceback_free(tb);
    om_decref(list);
    om_decref(big);
    void *small = om_mem_malloc(8);               /* too small to hold an object */
    CHECK(small != NULL);
    CHECK(om_trace_get_object_traceback((unsigned char *)small + 16) == NULL);
    om_mem_free(small);
    om_trace_stop();
}

static void test_environment(void)
{
    char buf[512];
    int status = check_run_child(child_environment, NULL, buf, sizeof buf);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--environment-child") == 0)
        return environment_child_main();
    test_sites();
    test_compare_finds_leak();
    test_filters();
    test_start_stop();
    test_deep_traceback();
    test_raw_threads();
    test_faults();
    test_fatal_reports();
    test_object_tracebacks();
    test_environment();
    return check_report();
}
