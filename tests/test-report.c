/*
 * test-report.c — om_write_report (the HTML heap report) and the
 * collector's pause log (om_gc_get_pauses, om_gc_pause_count).
 *
 *   - pause log: one entry per collection and step, in order, with the
 *     generation, the counts om_gc_collect returned, times that do not go
 *     backwards; the ring keeps the last OM_GC_PAUSE_LOG; a new runtime
 *     starts its own empty log; bad arguments;
 *   - the report of a real workload (many size classes, medium and large
 *     blocks, cycles collected, tracing on) checked structurally: tags
 *     balanced, one arena row per pool arena, pool cells per class and
 *     their used blocks as in om_heap_get_stats, one histogram bar per class
 *     in use, one mark per logged pause, one row per allocation site, the
 *     counts the page's own script will compare; writing it leaves the heap
 *     as it was; with tracing off the page says so; beyond 64 medium
 *     arenas and 64 large blocks it draws 64 and says how many more;
 *   - failures: NULL path, a path that cannot be opened, a device that
 *     refuses the write (/dev/full, which stays), a regular file cut short
 *     by RLIMIT_FSIZE (removed), and every RAW allocation of the report
 *     failing in turn (om_fail_after): each returns -1 with its error and
 *     leaves no file.
 *
 * `test-report FILE` also leaves the workload's report at FILE, for
 * tests/browser-report.sh to render in Chromium.
 */
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "testutil.h"

/* ---- Helpers ---------------------------------------------------------------- */

/* The whole file at path, NUL-terminated (malloc), or NULL. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *text = malloc((size_t)size + 1);
    if (text != NULL && fread(text, 1, (size_t)size, f) != (size_t)size) {
        free(text);
        text = NULL;
    }
    if (text != NULL)
        text[size] = '\0';
    fclose(f);
    return text;
}

static bool file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A fresh path in the temporary directory (the file does not exist). */
static void temp_path(char *buf, size_t size, const char *tag)
{
    const char *dir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    snprintf(buf, size, "%s/test-report-%ld-%s.html", dir, (long)getpid(), tag);
    remove(buf);
}

/* ---- The pause log ------------------------------------------------------------- */

static om_object *make_cycle(void)
{
    om_object *a = om_list_new(0), *b = om_list_new(0);
    om_list_append(a, b);
    om_list_append(b, a);
    om_decref(b);
    return a;
}

static void test_pause_log(void)
{
    CHECK(om_gc_get_pauses(NULL, 0) == 0);
    CHECK(om_gc_get_pauses(NULL, 1) == -1 && om_last_error() == OM_EINVAL);

    uint64_t before = om_gc_pause_count();
    om_decref(make_cycle());
    long found0 = om_gc_collect(0);
    om_decref(make_cycle());
    om_decref(make_cycle());
    long found2 = om_gc_collect(2);
    long found1 = om_gc_collect(1);
    CHECK(om_gc_pause_count() == before + 3);
    CHECK(found0 == 2 && found2 == 4 && found1 == 0);

    om_gc_pause p[3];
    CHECK(om_gc_get_pauses(p, 3) == 3);
    CHECK(p[0].generation == 0 && p[1].generation == 2 && p[2].generation == 1);
    CHECK(p[0].collected == 2 && p[1].collected == 4 && p[2].collected == 0);
    CHECK(p[0].uncollectable == 0 && p[1].uncollectable == 0);
    CHECK(!p[0].step && !p[1].step && !p[2].step);
    CHECK(p[0].examined >= 2 && p[1].examined >= 4);
    for (int i = 0; i < 3; i++)
        CHECK(p[i].start_seconds >= 0 && p[i].duration_seconds >= 0);
    CHECK(p[0].start_seconds + p[0].duration_seconds <= p[1].start_seconds);
    CHECK(p[1].start_seconds + p[1].duration_seconds <= p[2].start_seconds);

    /* fewer than stored: the newest ones, oldest first */
    om_gc_pause last;
    CHECK(om_gc_get_pauses(&last, 1) == 1);
    CHECK(last.generation == 1 && last.start_seconds == p[2].start_seconds);

    /* an incremental step is logged as generation 2, step */
    om_gc_collect_step();
    CHECK(om_gc_get_pauses(&last, 1) == 1);
    CHECK(last.step && last.generation == 2);

    /* the ring keeps the last OM_GC_PAUSE_LOG */
    for (int i = 0; i < OM_GC_PAUSE_LOG + 44; i++)
        om_gc_collect(i % 2);
    om_gc_pause all[OM_GC_PAUSE_LOG + 10];
    CHECK(om_gc_get_pauses(all, OM_GC_PAUSE_LOG + 10) == OM_GC_PAUSE_LOG);
    CHECK(all[OM_GC_PAUSE_LOG - 1].generation == 1 && all[OM_GC_PAUSE_LOG - 2].generation == 0);
    bool ordered = true;
    for (int i = 1; i < OM_GC_PAUSE_LOG; i++)
        ordered &= all[i].start_seconds >= all[i - 1].start_seconds &&
                   all[i].generation == 1 - all[i - 1].generation;
    CHECK(ordered);
    CHECK(om_gc_pause_count() >= (uint64_t)OM_GC_PAUSE_LOG + 44 + 4);

    /* a new runtime has a log of its own */
    om_runtime *rt = om_runtime_new(NULL);
    CHECK(rt != NULL);
    om_detach();
    CHECK(om_attach(rt) == 0);
    CHECK(om_gc_pause_count() == 0 && om_gc_get_pauses(all, 10) == 0);
    om_gc_collect(0);
    CHECK(om_gc_pause_count() == 1 && om_gc_get_pauses(all, 10) == 1);
    om_detach();
    CHECK(om_runtime_delete(rt) == 0);
    CHECK(om_attach(om_runtime_default()) == 0);
    CHECK(om_gc_pause_count() >= (uint64_t)OM_GC_PAUSE_LOG + 48);
}

/* ---- The workload --------------------------------------------------------------- */

#define SMALL_BLOCKS 6000
#define MEDIUM_BLOCKS 40

typedef struct workload {
    void *small[SMALL_BLOCKS];
    void *medium[MEDIUM_BLOCKS];
    void *large;
    om_object *survivors;            /* a list holding live cycles */
} workload;

/* Blocks of every small class (some freed to leave pools part full), some
 * medium blocks, one large block, cycles freed by the collector and live
 * cycles kept; automatic collections run on the way. */
static void workload_build(workload *w)
{
    tu_rng rng = {0x9e3779b97f4a7c15u};
    for (size_t i = 0; i < SMALL_BLOCKS; i++)
        w->small[i] = om_mem_malloc(1 + tu_rng_next(&rng) % OM_SMALL_SIZE_MAX);
    for (size_t i = 0; i < SMALL_BLOCKS; i += 3) {
        om_mem_free(w->small[i]);
        w->small[i] = NULL;
    }
    for (size_t i = 0; i < MEDIUM_BLOCKS; i++)
        w->medium[i] = om_mem_malloc(600 + tu_rng_next(&rng) % (64 << 10));
    w->large = om_mem_malloc(3 * MB);
    w->survivors = om_list_new(0);
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 100; i++)
            om_decref(make_cycle());
        om_object *kept = make_cycle();
        om_list_append(w->survivors, kept);
        om_decref(kept);
    }
    om_gc_collect(2);
}

static void workload_free(workload *w)
{
    for (size_t i = 0; i < SMALL_BLOCKS; i++)
        om_mem_free(w->small[i]);
    for (size_t i = 0; i < MEDIUM_BLOCKS; i++)
        om_mem_free(w->medium[i]);
    om_mem_free(w->large);
    om_decref(w->survivors);
}

/* ---- Structural checks -------------------------------------------------------- */

static size_t count(const char *text, const char *what)
{
    return tu_count_occurrences(text, what);
}

/* Every pool cell of class c: the sum of their data-used attributes. */
static size_t used_blocks_drawn(const char *text, size_t c, size_t *cells)
{
    char key[64];
    snprintf(key, sizeof key, "<rect class=\"pool c%zu\" data-class=\"%zu\" data-used=\"", c, c);
    size_t used = 0;
    *cells = 0;
    for (const char *at = strstr(text, key); at != NULL; at = strstr(at + 1, key)) {
        used += strtoul(at + strlen(key), NULL, 10);
        (*cells)++;
    }
    return used;
}

static void check_balanced(const char *html)
{
    static const char *const tags[][2] = {
        {"<svg", "</svg>"}, {"<g ", "</g>"},         {"<table", "</table>"},
        {"<tr", "</tr>"},   {"<rect", "</rect>"},    {"<text", "</text>"},
        {"<title", "</title>"}, {"<script", "</script>"}, {"<p ", "</p>"},
        {"<h2", "</h2>"},   {"<td", "</td>"},        {"<pre", "</pre>"},
    };
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        size_t open = count(html, tags[i][0]), close = count(html, tags[i][1]);
        if (strcmp(tags[i][0], "<p ") == 0)
            open += count(html, "<p>");
        if (open != close)
            fprintf(stderr, "unbalanced %s: %zu open, %zu closed\n", tags[i][0], open, close);
        CHECK(open == close && open > 0);
    }
    CHECK(strncmp(html, "<!DOCTYPE html>\n<html", 21) == 0);
    size_t n = strlen(html);
    CHECK(n > 8 && strcmp(html + n - 8, "</html>\n") == 0);
    CHECK(count(html, "<html") == 1 && count(html, "<body") == 1 && count(html, "</body>") == 1);
    /* self-contained: nothing loaded from elsewhere */
    CHECK(count(html, "http://") == 0 && count(html, "https://") == 0);
    CHECK(count(html, " src=") == 0 && count(html, "<link") == 0);
}

static void check_against_stats(const char *html, const om_heap_stats *s, size_t expect_sites)
{
    CHECK_EQ_SIZE(count(html, "<g class=\"arena-row\""), s->arenas_current);
    /* 63 cells per row, plus the two sample cells of the legend */
    CHECK_EQ_SIZE(count(html, "<rect class=\"pool"), s->arenas_current * 63 + 2);
    size_t classes_in_use = 0, pools_drawn = 0;
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++) {
        size_t cells = 0;
        size_t used = used_blocks_drawn(html, c, &cells);
        CHECK_EQ_SIZE(cells, s->classes[c].pools);
        CHECK_EQ_SIZE(used, s->classes[c].used_blocks);
        classes_in_use += s->classes[c].pools != 0;
        pools_drawn += cells;
    }
    CHECK_EQ_SIZE(pools_drawn, s->pools_used);
    CHECK(classes_in_use >= 20);
    CHECK_EQ_SIZE(count(html, "class=\"hist-bar hist-blocks\""), classes_in_use);
    CHECK_EQ_SIZE(count(html, "class=\"hist-bar hist-bytes\""), classes_in_use);
    CHECK_EQ_SIZE(count(html, "<g class=\"medium-row\""), s->medium_arenas_current);
    CHECK_EQ_SIZE(count(html, "<tr class=\"large-block\""), s->large_count);
    size_t pauses = om_gc_pause_count() < OM_GC_PAUSE_LOG ? (size_t)om_gc_pause_count()
                                                          : OM_GC_PAUSE_LOG;
    CHECK(pauses > 0);
    CHECK_EQ_SIZE(count(html, "<rect class=\"pause "), pauses);
    CHECK(count(html, "<rect class=\"pause gen-2") > 0 && count(html, "<rect class=\"pause gen-0") > 0);
    CHECK_EQ_SIZE(count(html, "<tr class=\"site\""), expect_sites);
    char expect[256];
    snprintf(expect, sizeof expect,
             "data-expect='{\"arenaRows\":%zu,\"pools\":%zu,\"mediumRows\":%zu,"
             "\"largeRows\":%zu,\"histBars\":%zu,\"pauses\":%zu,\"sites\":%zu}'",
             s->arenas_current, s->arenas_current * 63, s->medium_arenas_current,
             s->large_count, 2 * classes_in_use, pauses, expect_sites);
    CHECK(count(html, expect) == 1);
    CHECK(count(html, "id=\"script-errors\"") == 1 && count(html, "id=\"self-check\"") == 1);
}

/* The report of the workload with tracing on, left at `keep` if not NULL. */
static void test_report_of_workload(const char *keep)
{
    CHECK(om_trace_start(8) == 0);
    workload w;
    workload_build(&w);
    om_gc_stats gs[OM_GC_GENERATIONS];
    om_gc_get_stats(gs);
    CHECK(gs[0].collected + gs[1].collected + gs[2].collected >= 10000);   /* the cycles */

    om_snapshot *snap = om_trace_take_snapshot();
    om_trace_stats *sites = om_snapshot_statistics(snap, OM_TRACE_BY_SITE);
    CHECK(sites != NULL && sites->count >= 3);
    size_t expect_sites = sites->count < 20 ? sites->count : 20;
    om_trace_stats_free(sites);
    om_snapshot_free(snap);

    char path[256];
    temp_path(path, sizeof path, "workload");
    om_heap_stats before = tu_get_stats(NULL);
    uint64_t pauses_before = om_gc_pause_count();
    CHECK(om_write_report(path) == 0);
    om_heap_stats after = tu_get_stats(NULL);
    CHECK(memcmp(&before, &after, sizeof before) == 0);   /* drawing changes nothing */
    CHECK(om_gc_pause_count() == pauses_before);

    char *html = read_file(path);
    CHECK(html != NULL);
    if (html != NULL) {
        check_balanced(html);
        check_against_stats(html, &after, expect_sites);
        CHECK(count(html, "id=\"sites\"") == 1 && count(html, "id=\"tracing-off\"") == 0);
        CHECK(count(html, "traced memory now") == 1);
        free(html);
    }
    if (keep != NULL)
        CHECK(rename(path, keep) == 0);
    else
        remove(path);

    /* tracing off: the page says so and lists no site */
    CHECK(om_trace_stop() == 0);
    CHECK(om_write_report(path) == 0);
    html = read_file(path);
    CHECK(html != NULL);
    if (html != NULL) {
        check_balanced(html);
        CHECK(count(html, "id=\"tracing-off\"") == 1 && count(html, "<tr class=\"site\"") == 0);
        CHECK(count(html, "id=\"sites\"") == 0);
        free(html);
    }
    remove(path);
    workload_free(&w);
}

/* ---- Limits ------------------------------------------------------------------- */

/* More medium arenas and large blocks than the page draws: it draws 64 of
 * each and says how many more there are. (Blocks are not written, so this
 * maps address space, not memory.) */
static void test_row_limits(void)
{
    enum { MEDIUM = 3 * 70, LARGE = 70 };
    static void *medium[MEDIUM], *large[LARGE];
    om_heap_trim(NULL);   /* no freed large mapping left: every large block listed is in use */
    for (size_t i = 0; i < MEDIUM; i++)
        medium[i] = om_mem_malloc(OM_MEDIUM_SIZE_MAX);
    for (size_t i = 0; i < LARGE; i++)
        large[i] = om_mem_malloc(OM_MEDIUM_SIZE_MAX + 1);
    om_heap_stats s = tu_get_stats(NULL);
    CHECK(s.medium_arenas_current > 64 && s.large_count >= LARGE);
    char path[256], more[128];
    temp_path(path, sizeof path, "limits");
    CHECK(om_write_report(path) == 0);
    char *html = read_file(path);
    CHECK(html != NULL);
    if (html != NULL) {
        CHECK_EQ_SIZE(count(html, "<g class=\"medium-row\""), 64);
        CHECK_EQ_SIZE(count(html, "<tr class=\"large-block\""), 64);
        snprintf(more, sizeof more, "%zu more medium arenas are not drawn",
                 s.medium_arenas_current - 64);
        CHECK(count(html, more) == 1);
        snprintf(more, sizeof more, "%zu more large blocks are not listed", s.large_count - 64);
        CHECK(count(html, more) == 1);
        CHECK(count(html, "\"mediumRows\":64,\"largeRows\":64,") == 1);
        free(html);
    }
    remove(path);
    for (size_t i = 0; i < MEDIUM; i++)
        om_mem_free(medium[i]);
    for (size_t i = 0; i < LARGE; i++)
        om_mem_free(large[i]);
}

/* ---- Failures ---------------------------------------------------------------- */

static void test_bad_paths(void)
{
    om_clear_error();
    CHECK(om_write_report(NULL) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_write_report("/nonexistent-dir-for-test-report/x.html") == -1);
    CHECK(om_last_error() == OM_EINVAL);
    CHECK(strstr(om_last_error_message(), "cannot open") != NULL);
    const char *dir = getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp";
    CHECK(om_write_report(dir) == -1 && om_last_error() == OM_EINVAL);
    if (file_exists("/dev/full")) {
        CHECK(om_write_report("/dev/full") == -1 && om_last_error() == OM_ENOMEM);
        CHECK(strstr(om_last_error_message(), "cannot write") != NULL);
        CHECK(file_exists("/dev/full"));   /* a device is never removed */
    }
}

/* In a child: a file size limit of 4 KiB makes the write fail part way. */
static void write_past_size_limit(void *arg)
{
    const char *path = arg;
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = {4096, 4096};
    setrlimit(RLIMIT_FSIZE, &limit);
    int rc = om_write_report(path);
    bool ok = rc == -1 && om_last_error() == OM_ENOMEM && !file_exists(path);
    _exit(ok ? 0 : 1);
}

static void test_write_failure_removes_file(void)
{
    char path[256];
    temp_path(path, sizeof path, "fsize");
    char err[512];
    int status = check_run_child(write_past_size_limit, path, err, sizeof err);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(!file_exists(path));
    remove(path);
}

/* Every RAW allocation of the report fails in turn; with tracing on, so
 * that the snapshot's allocations fail too. */
static void test_allocation_failures(void)
{
    char path[256];
    temp_path(path, sizeof path, "fault");
    CHECK(om_trace_start(4) == 0);
    void *traced = om_mem_malloc(100);
    int failures = 0;
    bool clean = true;
    for (long n = 0; n < 1000; n++) {
        CHECK(om_fail_after(OM_DOMAIN_RAW, n) == 0);
        om_clear_error();
        int rc = om_write_report(path);
        om_fail_after(OM_DOMAIN_RAW, -1);
        if (rc == 0)
            break;
        failures++;
        clean &= om_last_error() == OM_ENOMEM && !file_exists(path);
    }
    CHECK(clean);
    CHECK(failures >= 3);   /* snapshot, statistics, the page buffer */
    CHECK(file_exists(path));
    remove(path);
    om_mem_free(traced);
    CHECK(om_trace_stop() == 0);
}

int main(int argc, char **argv)
{
    test_pause_log();
    test_report_of_workload(argc > 1 ? argv[1] : NULL);
    test_row_limits();
    test_bad_paths();
    test_write_failure_removes_file();
    test_allocation_failures();
    return check_report();
}
