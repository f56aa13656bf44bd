/*
 * report.c — om_write_report: the current runtime's heap as one HTML page.
 *
 * The page is self-contained (inline CSS and SVG, one small inline script,
 * no request to any network) so that it can be mailed, attached to a bug
 * or opened from a CI artifact. Its parts, top to bottom:
 *
 *   summary      totals of the three tiers, RSS, collections, tracing, date
 *   arena map    one SVG row per pool arena, one cell per pool: hue = size
 *                class (blue 16 B … red 512 B), darkness = fullness (used
 *                blocks / capacity); free and never-used pools in grey and
 *                white; a legend; medium arenas as used / cached / free
 *                bars; large blocks as a table
 *   histogram    blocks in use and bytes in use per small size class
 *   pauses       the collector's last OM_GC_PAUSE_LOG collections on a time
 *                axis, one lane per generation (and one for incremental
 *                steps), mark height by duration, a <title> tooltip each
 *   sites        the top allocation sites of a tracing snapshot, or a note
 *                that tracing is off
 *
 * How it is built. The page is assembled in memory first, in one growing
 * RAW buffer (`report`), and written to the file only once it is complete:
 * an allocation failure (fault injection included) therefore leaves no
 * file behind, and a write failure removes the partial file when it is a
 * regular file (never a device such as /dev/full). RAW memory does not
 * come from the heap being drawn, so drawing it does not change it. The
 * tracing snapshot is taken before the buffer grows, so the report's own
 * blocks are not among the sites.
 *
 * The data comes through small visitors owned by the tiers
 * (omi_pool_for_each_arena, omi_medium_for_each_arena, omi_large_for_each)
 * and the public calls om_heap_get_stats, om_gc_get_pauses and the tracing
 * snapshot API; report.c never reads a tier's structs.
 *
 * Self-check: the page carries the element counts it drew in a data
 * attribute; its script counts the elements the browser actually built
 * and writes "ok" or the mismatches into #self-check, and records any
 * script error into #script-errors (tests/browser-report.sh reads both from
 * Chromium's DOM dump). All coordinates are integers, so the SVG does not
 * depend on the C locale's decimal point.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

/* ---- Tunables ------------------------------------------------------------- */

#define REPORT_ARENA_ROWS_MAX 256    /* pool arenas drawn one row each; the rest counted */
#define REPORT_MEDIUM_ROWS_MAX 64    /* medium arenas drawn */
#define REPORT_LARGE_ROWS_MAX 64     /* large blocks listed */
#define REPORT_SITES_MAX 20          /* allocation sites listed */
#define REPORT_INITIAL_CAPACITY ((size_t)64 << 10)
#define CELL 12                      /* pixels per pool cell (11 + 1 gap) */
#define LABEL_WIDTH 150              /* pixels left of the cells */
#define TIMELINE_WIDTH 900           /* pixels of the pause time axis */
#define HIST_COLUMN 26               /* pixels per size-class column */
#define HIST_HEIGHT 120              /* pixels of the tallest bar */

_Static_assert(OMI_CLASS_COUNT > 1, "the hue scale divides by the class count - 1");

/* ---- The page buffer -------------------------------------------------------- */

typedef struct report {
    char *data;                      /* RAW buffer, NUL-terminated */
    size_t length;                   /* bytes used, without the NUL */
    size_t capacity;                 /* bytes allocated */
    bool failed;                     /* an allocation failed: the page is lost */
    const om_heap *heap;             /* the heap drawn */
    om_heap_stats stats;             /* its statistics */
    size_t arena_rows;               /* pool arenas drawn */
    size_t medium_rows;              /* medium arenas drawn */
    size_t large_rows;               /* large blocks listed */
    size_t large_seen;               /* large blocks visited */
    size_t hist_bars;                /* histogram bars drawn */
    size_t pause_marks;              /* pauses drawn */
    size_t site_rows;                /* allocation sites listed */
} report;

static bool report_reserve(report *r, size_t extra)
{
    if (r->failed)
        return false;
    if (r->capacity - r->length > extra)
        return true;
    size_t capacity = r->capacity != 0 ? r->capacity : REPORT_INITIAL_CAPACITY;
    while (capacity - r->length <= extra)
        capacity *= 2;
    char *data = om_raw_realloc(r->data, capacity);
    if (data == NULL) {
        r->failed = true;
        return false;
    }
    r->data = data;
    r->capacity = capacity;
    return true;
}

/* Appends printf-formatted text. */
static OMI_PRINTF(2, 3) void out(report *r, const char *fmt, ...)
{
    for (;;) {
        if (!report_reserve(r, 1))
            return;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(r->data + r->length, r->capacity - r->length, fmt, ap);
        va_end(ap);
        if (n < 0) {
            r->failed = true;
            return;
        }
        if ((size_t)n < r->capacity - r->length) {
            r->length += (size_t)n;
            return;
        }
        if (!report_reserve(r, (size_t)n + 1))
            return;
    }
}

/* Appends s with &, <, >, " and ' escaped for HTML text and attributes. */
static void out_escaped(report *r, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&': out(r, "&amp;"); break;
        case '<': out(r, "&lt;"); break;
        case '>': out(r, "&gt;"); break;
        case '"': out(r, "&quot;"); break;
        case '\'': out(r, "&#39;"); break;
        default: out(r, "%c", *s); break;
        }
    }
}

/* ---- Formatting helpers ----------------------------------------------------- */

typedef struct bytes_text {
    char text[32];
} bytes_text;

/* "512 B", "1.5 KiB", "3.25 MiB", "1.01 GiB". */
static bytes_text fmt_bytes(size_t bytes)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    bytes_text t;
    double value = (double)bytes;
    size_t u = 0;
    while (value >= 1024 && u + 1 < sizeof units / sizeof units[0]) {
        value /= 1024;
        u++;
    }
    if (u == 0)
        snprintf(t.text, sizeof t.text, "%zu B", bytes);
    else
        snprintf(t.text, sizeof t.text, "%.*f %s", value < 10 ? 2 : 1, value, units[u]);
    return t;
}

typedef struct seconds_text {
    char text[32];
} seconds_text;

/* "850 µs", "12.3 ms", "2.41 s". */
static seconds_text fmt_seconds(double seconds)
{
    seconds_text t;
    if (seconds < 1e-3)
        snprintf(t.text, sizeof t.text, "%.0f µs", seconds * 1e6);
    else if (seconds < 1)
        snprintf(t.text, sizeof t.text, "%.2f ms", seconds * 1e3);
    else
        snprintf(t.text, sizeof t.text, "%.2f s", seconds);
    return t;
}

/* Hue of small size class c: blue (240) for 16 B through red (0) for 512 B. */
static int class_hue(size_t c)
{
    return (int)(240 - c * 240 / (OMI_CLASS_COUNT - 1));
}

/* Lightness of a pool: 90 % when empty, 35 % when full. */
static int fullness_lightness(size_t used, size_t capacity)
{
    return (int)(90 - (capacity != 0 ? used * 55 / capacity : 0));
}

/* Resident set size in bytes from /proc/self/statm; 0 when unknown. */
static size_t report_rss(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long total_pages = 0, resident_pages = 0;
    int got = fscanf(f, "%lu %lu", &total_pages, &resident_pages);
    fclose(f);
    long page_size = sysconf(_SC_PAGESIZE);
    if (got != 2 || page_size <= 0)
        return 0;
    return (size_t)resident_pages * (size_t)page_size;
}

/* ---- Page head and summary ---------------------------------------------------- */

static const char report_css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;"
    "border-bottom:1px solid #ddd}"
    "table{border-collapse:collapse}td,th{padding:2px 10px;text-align:right}"
    "th{background:#f3f3f3}td.name,th.name{text-align:left;font-family:monospace}"
    ".summary td:first-child{text-align:left;color:#555}"
    "svg text{font:11px monospace;fill:#333}"
    "rect.pool.free{fill:#d9d9d9}rect.pool.untouched{fill:#fff;stroke:#ccc}"
    "#arena-map.dim rect.pool{opacity:.12}#arena-map.dim rect.pool.hi{opacity:1}"
    ".legend-class{cursor:pointer}"
    ".bar{display:inline-block;height:10px;background:#4a7bd0}"
    ".note{color:#666}";

/* Records script errors into the page (#script-errors) before anything
 * else runs, so that the browser test can read them from the DOM. */
static const char report_error_script[] =
    "window.reportErrors=[];"
    "window.addEventListener('error',function(e){"
    "window.reportErrors.push(String(e.message));"
    "var el=document.getElementById('script-errors');"
    "if(el){el.textContent=window.reportErrors.join('\\n');"
    "el.setAttribute('data-count',String(window.reportErrors.length));}});";

static void page_head(report *r)
{
    out(r, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<title>objmem heap report</title>\n<style>%s</style>\n<script>%s</script>\n"
           "</head>\n<body>\n",
        report_css, report_error_script);
}

static void summary_row(report *r, const char *what, const char *value)
{
    out(r, "<tr><td>%s</td><td>%s</td></tr>\n", what, value);
}

static void summary_bytes(report *r, const char *what, size_t bytes)
{
    summary_row(r, what, fmt_bytes(bytes).text);
}

static void summary_count(report *r, const char *what, size_t count)
{
    char text[32];
    snprintf(text, sizeof text, "%zu", count);
    summary_row(r, what, text);
}

static void section_summary(report *r)
{
    const om_heap_stats *s = &r->stats;
    char date[64] = "unknown";
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm) != NULL)
        strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", &tm);
    out(r, "<h1>objmem heap report</h1>\n<p class=\"note\" id=\"generated\">%s · objmem "
           "%d.%d.%d · process %ld</p>\n",
        date, OM_VERSION_MAJOR, OM_VERSION_MINOR, OM_VERSION_PATCH, (long)getpid());
    out(r, "<table class=\"summary\" id=\"summary\">\n");
    size_t rss = report_rss();
    summary_row(r, "resident set size (RSS)", rss != 0 ? fmt_bytes(rss).text : "n/a");
    summary_bytes(r, "in use: small + medium + large blocks",
                  s->small_used_bytes + s->medium_used_bytes + s->large_bytes);
    summary_count(r, "pool arenas now (1 MiB each)", s->arenas_current);
    summary_bytes(r, "small blocks in use", s->small_used_bytes);
    summary_bytes(r, "small blocks free in used pools", s->small_free_bytes);
    summary_count(r, "pools in use", s->pools_used);
    summary_count(r, "pools free", s->pools_free);
    summary_count(r, "medium arenas now", s->medium_arenas_current);
    summary_bytes(r, "medium blocks in use", s->medium_used_bytes);
    summary_bytes(r, "medium blocks cached", s->medium_cached_bytes);
    summary_bytes(r, "medium free runs", s->medium_free_bytes);
    summary_count(r, "large blocks", s->large_count);
    summary_bytes(r, "large blocks, usable", s->large_bytes);
    summary_bytes(r, "large mappings kept for reuse", s->large_cached_bytes);
    summary_bytes(r, "purged with madvise (total)", s->purged_bytes);
    summary_count(r, "collections (all generations)", (size_t)om_gc_pause_count());
    if (om_trace_is_tracing()) {
        size_t current = 0, peak = 0;
        om_trace_get_traced_memory(&current, &peak);
        summary_bytes(r, "traced memory now", current);
        summary_bytes(r, "traced memory peak", peak);
    } else {
        summary_row(r, "tracing", "off");
    }
    out(r, "</table>\n");
}

/* ---- Arena map ------------------------------------------------------------------ */

static void arena_map_legend(report *r)
{
    out(r, "<svg id=\"arena-legend\" width=\"%d\" height=\"58\" role=\"img\" "
           "aria-label=\"legend\">\n",
        LABEL_WIDTH + (int)OMI_CLASS_COUNT * 24 + 10);
    out(r, "<text x=\"0\" y=\"12\">size class</text>\n");
    for (size_t c = 0; c < OMI_CLASS_COUNT; c++) {
        int x = LABEL_WIDTH + (int)c * 24;
        out(r, "<g class=\"legend-class\" data-class=\"%zu\"><rect x=\"%d\" y=\"2\" "
               "width=\"22\" height=\"12\" fill=\"hsl(%d,70%%,50%%)\"><title>class %zu: "
               "%zu B blocks</title></rect>",
            c, x, class_hue(c), c, omi_class_block_size(c));
        if (c % 4 == 0 || c == OMI_CLASS_COUNT - 1)
            out(r, "<text x=\"%d\" y=\"26\">%zu</text>", x, omi_class_block_size(c));
        out(r, "</g>\n");
    }
    out(r, "<text x=\"0\" y=\"48\">fullness</text>\n");
    for (int i = 0; i <= 10; i++)
        out(r, "<rect x=\"%d\" y=\"38\" width=\"14\" height=\"12\" "
               "fill=\"hsl(%d,70%%,%d%%)\"></rect>\n",
            LABEL_WIDTH + i * 15, class_hue(0), fullness_lightness((size_t)i, 10));
    out(r, "<text x=\"%d\" y=\"48\">empty → full</text>\n", LABEL_WIDTH + 11 * 15 + 6);
    out(r, "<rect class=\"pool free\" x=\"%d\" y=\"38\" width=\"11\" height=\"11\"></rect>"
           "<text x=\"%d\" y=\"48\">free pool</text>\n",
        LABEL_WIDTH + 290, LABEL_WIDTH + 305);
    out(r, "<rect class=\"pool untouched\" x=\"%d\" y=\"38\" width=\"11\" height=\"11\"></rect>"
           "<text x=\"%d\" y=\"48\">never used</text>\n",
        LABEL_WIDTH + 390, LABEL_WIDTH + 405);
    out(r, "</svg>\n");
}

static void arena_pool_cell(report *r, const omi_arena_view *a, size_t i)
{
    size_t pool = i + 1;
    int x = LABEL_WIDTH + (int)i * CELL;
    if (a->class_index[i] == OMI_POOL_UNASSIGNED) {
        bool untouched = pool >= a->untouched_index;
        out(r, "<rect class=\"pool %s\" x=\"%d\" y=\"0\" width=\"11\" height=\"11\">"
               "<title>pool %zu: %s</title></rect>",
            untouched ? "untouched" : "free", x, pool, untouched ? "never used" : "free");
        return;
    }
    size_t c = a->class_index[i];
    size_t capacity = omi_pool_capacity(c);
    out(r, "<rect class=\"pool c%zu\" data-class=\"%zu\" data-used=\"%u\" x=\"%d\" y=\"0\" "
           "width=\"11\" height=\"11\" fill=\"hsl(%d,70%%,%d%%)\"><title>pool %zu: "
           "class %zu (%zu B), %u of %zu blocks in use</title></rect>",
        c, c, (unsigned)a->used[i], x, class_hue(c),
        fullness_lightness(a->used[i], capacity), pool, c, omi_class_block_size(c),
        (unsigned)a->used[i], capacity);
}

static int arena_row(const omi_arena_view *a, void *arg)
{
    report *r = arg;
    if (r->arena_rows == REPORT_ARENA_ROWS_MAX)
        return 1;
    size_t assigned = OMI_POOLS_USABLE - a->free_pools;
    out(r, "<g class=\"arena-row\" transform=\"translate(0,%zu)\"><text x=\"0\" y=\"10\">"
           "#%zu 0x%lx<title>pool arena at 0x%lx: %zu of %d pools in use%s</title></text>",
        r->arena_rows * CELL, r->arena_rows, (unsigned long)a->base, (unsigned long)a->base,
        assigned, (int)OMI_POOLS_USABLE,
        assigned == 0 ? " (a spare, kept for reuse until the purge delay)" : "");
    for (size_t i = 0; i < OMI_POOLS_USABLE; i++)
        arena_pool_cell(r, a, i);
    out(r, "</g>\n");
    r->arena_rows++;
    return 0;
}

static int medium_row(const omi_medium_arena_view *a, void *arg)
{
    report *r = arg;
    if (r->medium_rows == REPORT_MEDIUM_ROWS_MAX)
        return 1;
    size_t total = a->used_bytes + a->cached_bytes + a->free_bytes;
    int width = (int)OMI_POOLS_USABLE * CELL;
    int used_w = total != 0 ? (int)(a->used_bytes * (size_t)width / total) : 0;
    int cached_w = total != 0 ? (int)(a->cached_bytes * (size_t)width / total) : 0;
    out(r, "<g class=\"medium-row\" transform=\"translate(0,%zu)\"><title>medium arena%s: "
           "%zu blocks in use, %s in use, %s cached, %s free</title><text x=\"0\" y=\"10\">"
           "#%zu 0x%lx</text>",
        r->medium_rows * 16, a->spare ? " (spare)" : "", a->used_blocks,
        fmt_bytes(a->used_bytes).text, fmt_bytes(a->cached_bytes).text,
        fmt_bytes(a->free_bytes).text, r->medium_rows, (unsigned long)a->base);
    out(r, "<rect class=\"medium-used\" x=\"%d\" y=\"0\" width=\"%d\" height=\"12\" "
           "fill=\"#4a7bd0\"></rect><rect class=\"medium-cached\" x=\"%d\" y=\"0\" "
           "width=\"%d\" height=\"12\" fill=\"#e0a030\"></rect><rect class=\"medium-free\" "
           "x=\"%d\" y=\"0\" width=\"%d\" height=\"12\" fill=\"#e4e4e4\"></rect></g>\n",
        LABEL_WIDTH, used_w, LABEL_WIDTH + used_w, cached_w, LABEL_WIDTH + used_w + cached_w,
        width - used_w - cached_w);
    r->medium_rows++;
    return 0;
}

static int large_row(const omi_large_view *l, void *arg)
{
    report *r = arg;
    r->large_seen++;
    if (r->large_rows == REPORT_LARGE_ROWS_MAX)
        return 0;
    out(r, "<tr class=\"large-block\"><td class=\"name\">0x%lx</td><td>%s</td>",
        (unsigned long)l->block, fmt_bytes(l->size).text);
    out(r, "<td>%s</td>", fmt_bytes(l->usable).text);
    out(r, "<td>%s</td><td class=\"name\">%s</td></tr>\n", fmt_bytes(l->map_size).text,
        l->cached ? "freed, kept for reuse" : "in use");
    r->large_rows++;
    return 0;
}

static void section_arena_map(report *r)
{
    const om_heap_stats *s = &r->stats;
    out(r, "<h2>Arena map</h2>\n<p class=\"note\">Each row is a pool arena (1 MiB), each "
           "cell one of its %d pools (16 KiB): the hue is the pool's size class, the "
           "darkness how full it is. Hover a cell for its numbers, a legend colour to "
           "pick out its class.</p>\n",
        (int)OMI_POOLS_USABLE);
    arena_map_legend(r);
    size_t rows = s->arenas_current < REPORT_ARENA_ROWS_MAX ? s->arenas_current
                                                            : REPORT_ARENA_ROWS_MAX;
    out(r, "<svg id=\"arena-map\" width=\"%d\" height=\"%zu\" role=\"img\" "
           "aria-label=\"pool arenas\">\n",
        LABEL_WIDTH + (int)OMI_POOLS_USABLE * CELL, rows * CELL + 1);
    omi_pool_for_each_arena(r->heap, arena_row, r);
    out(r, "</svg>\n");
    if (r->arena_rows == 0)
        out(r, "<p class=\"note\">No pool arena is mapped.</p>\n");
    if (s->arenas_current > r->arena_rows)
        out(r, "<p class=\"note\">%zu more pool arenas are not drawn.</p>\n",
            s->arenas_current - r->arena_rows);

    out(r, "<h3>Medium arenas</h3>\n<p class=\"note\">513 B – 256 KiB blocks in page runs: "
           "<span style=\"color:#4a7bd0\">■</span> in use, <span style=\"color:#e0a030\">"
           "■</span> cached for reuse, <span style=\"color:#aaa\">■</span> free.</p>\n");
    size_t medium = s->medium_arenas_current < REPORT_MEDIUM_ROWS_MAX
                        ? s->medium_arenas_current : REPORT_MEDIUM_ROWS_MAX;
    out(r, "<svg id=\"medium-map\" width=\"%d\" height=\"%zu\" role=\"img\" "
           "aria-label=\"medium arenas\">\n",
        LABEL_WIDTH + (int)OMI_POOLS_USABLE * CELL, medium * 16 + 1);
    omi_medium_for_each_arena(r->heap, medium_row, r);
    out(r, "</svg>\n");
    if (r->medium_rows == 0)
        out(r, "<p class=\"note\">No medium arena is mapped.</p>\n");
    if (s->medium_arenas_current > r->medium_rows)
        out(r, "<p class=\"note\">%zu more medium arenas are not drawn.</p>\n",
            s->medium_arenas_current - r->medium_rows);

    out(r, "<h3>Large blocks</h3>\n<table id=\"large-blocks\"><tr><th class=\"name\">"
           "block</th><th>asked for</th><th>usable</th><th>mapping</th><th class=\"name\">"
           "state</th></tr>\n");
    omi_large_for_each(r->heap, large_row, r);
    out(r, "</table>\n");
    if (r->large_seen == 0)
        out(r, "<p class=\"note\">No large block (above 256 KiB) exists.</p>\n");
    else if (r->large_seen > r->large_rows)
        out(r, "<p class=\"note\">%zu more large blocks are not listed.</p>\n",
            r->large_seen - r->large_rows);
}

/* ---- Size-class histogram ----------------------------------------------------------- */

/* One chart: a bar per class in use, heights by value(class). */
static void histogram_chart(report *r, const char *id, const char *title, bool bytes)
{
    const om_heap_stats *s = &r->stats;
    size_t max = 1;
    for (size_t c = 0; c < OMI_CLASS_COUNT; c++) {
        size_t v = bytes ? s->classes[c].used_bytes : s->classes[c].used_blocks;
        if (v > max)
            max = v;
    }
    int width = 60 + (int)OMI_CLASS_COUNT * HIST_COLUMN;
    char largest[48];
    if (bytes)
        snprintf(largest, sizeof largest, "%s", fmt_bytes(max).text);
    else
        snprintf(largest, sizeof largest, "%zu blocks", max);
    out(r, "<div class=\"chart\"><p>%s (largest: %s)</p><svg id=\"%s\" width=\"%d\" "
           "height=\"%d\" role=\"img\" aria-label=\"%s\">\n",
        title, largest, id, width, HIST_HEIGHT + 30, title);
    out(r, "<line x1=\"58\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"></line>\n",
        HIST_HEIGHT, width, HIST_HEIGHT);
    for (size_t c = 0; c < OMI_CLASS_COUNT; c++) {
        const om_size_class_stats *cls = &s->classes[c];
        int x = 60 + (int)c * HIST_COLUMN;
        if (c % 2 == 0)
            out(r, "<text x=\"%d\" y=\"%d\">%zu</text>\n", x, HIST_HEIGHT + 14,
                cls->block_size);
        if (cls->pools == 0)
            continue;
        size_t v = bytes ? cls->used_bytes : cls->used_blocks;
        int h = (int)(v * HIST_HEIGHT / max);
        if (h == 0 && v != 0)
            h = 1;
        out(r, "<rect class=\"hist-bar %s\" data-class=\"%zu\" x=\"%d\" y=\"%d\" "
               "width=\"%d\" height=\"%d\" fill=\"hsl(%d,70%%,50%%)\"><title>%zu B blocks: "
               "%zu in use (%s) in %zu pools, %zu free</title></rect>\n",
            bytes ? "hist-bytes" : "hist-blocks", c, x, HIST_HEIGHT - h, HIST_COLUMN - 4, h,
            class_hue(c), cls->block_size, cls->used_blocks, fmt_bytes(cls->used_bytes).text,
            cls->pools, cls->free_blocks);
        r->hist_bars++;
    }
    out(r, "<text x=\"0\" y=\"%d\">block size</text>\n</svg></div>\n", HIST_HEIGHT + 26);
}

static void section_histogram(report *r)
{
    out(r, "<h2>Size classes</h2>\n<p class=\"note\">Small blocks (up to 512 B) in use per "
           "size class, in blocks and in bytes; a class appears once it has a pool.</p>\n");
    histogram_chart(r, "hist-blocks", "blocks in use", false);
    histogram_chart(r, "hist-bytes", "bytes in use", true);
}

/* ---- Collector pauses ------------------------------------------------------------------ */

/* The lane of a pause: generations 0-2, then incremental steps. */
static int pause_lane(const om_gc_pause *p)
{
    return p->step ? 3 : p->generation;
}

static void pause_axis(report *r, double t0, double span)
{
    static const char *const lanes[] = {"gen 0", "gen 1", "gen 2", "steps"};
    for (int lane = 0; lane < 4; lane++)
        out(r, "<text x=\"0\" y=\"%d\">%s</text><line x1=\"60\" y1=\"%d\" x2=\"%d\" "
               "y2=\"%d\" stroke=\"#eee\"></line>\n",
            24 + lane * 30, lanes[lane], 26 + lane * 30, 60 + TIMELINE_WIDTH, 26 + lane * 30);
    for (int i = 0; i <= 4; i++) {
        int x = 60 + i * TIMELINE_WIDTH / 4;
        out(r, "<line x1=\"%d\" y1=\"128\" x2=\"%d\" y2=\"134\" stroke=\"#999\"></line>"
               "<text x=\"%d\" y=\"148\">%.3f s</text>\n",
            x, x, i == 4 ? x - 50 : x, t0 + span * i / 4);
    }
}

static void pause_mark(report *r, const om_gc_pause *p, double t0, double span, double longest)
{
    int lane = pause_lane(p);
    int x = 60 + (int)((p->start_seconds - t0) / span * TIMELINE_WIDTH);
    int w = (int)(p->duration_seconds / span * TIMELINE_WIDTH);
    int h = 4 + (int)(20 * (longest > 0 ? p->duration_seconds / longest : 0));
    static const char *const fills[] = {"#5b9bd5", "#70ad47", "#c0504d", "#8064a2"};
    out(r, "<rect class=\"pause gen-%d%s\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
           "fill=\"%s\"><title>generation %d%s at %.4f s: %s, %zu examined, %zu collected, "
           "%zu uncollectable</title></rect>\n",
        p->generation, p->step ? " step" : "", x, 26 + lane * 30 - h, w < 2 ? 2 : w, h,
        fills[lane], p->generation, p->step ? " (incremental step)" : "", p->start_seconds,
        fmt_seconds(p->duration_seconds).text, p->examined, p->collected, p->uncollectable);
    r->pause_marks++;
}

static void pause_table(report *r, const om_gc_pause *pauses, size_t n)
{
    size_t count[4] = {0}, collected[4] = {0};
    double total[4] = {0}, longest[4] = {0};
    for (size_t i = 0; i < n; i++) {
        int lane = pause_lane(&pauses[i]);
        count[lane]++;
        collected[lane] += pauses[i].collected;
        total[lane] += pauses[i].duration_seconds;
        if (pauses[i].duration_seconds > longest[lane])
            longest[lane] = pauses[i].duration_seconds;
    }
    static const char *const names[] = {"generation 0", "generation 1", "generation 2",
                                        "incremental steps"};
    out(r, "<table id=\"pause-table\"><tr><th class=\"name\">kind</th><th>shown</th>"
           "<th>total time</th><th>longest</th><th>mean</th><th>collected</th></tr>\n");
    for (int lane = 0; lane < 4; lane++) {
        if (count[lane] == 0)
            continue;
        out(r, "<tr><td class=\"name\">%s</td><td>%zu</td><td>%s</td>", names[lane],
            count[lane], fmt_seconds(total[lane]).text);
        out(r, "<td>%s</td>", fmt_seconds(longest[lane]).text);
        out(r, "<td>%s</td><td>%zu</td></tr>\n",
            fmt_seconds(total[lane] / (double)count[lane]).text, collected[lane]);
    }
    out(r, "</table>\n");
}

static void section_pauses(report *r, const om_gc_pause *pauses, size_t n)
{
    uint64_t all = om_gc_pause_count();
    out(r, "<h2>Collector pauses</h2>\n<p class=\"note\">%llu collections since the runtime "
           "was made; the last %zu are drawn on a time axis (seconds since then), one lane "
           "per generation, the mark's height by its duration. Hover a mark for its "
           "numbers.</p>\n",
        (unsigned long long)all, n);
    if (n == 0) {
        out(r, "<p class=\"note\" id=\"no-pauses\">No collection has run yet.</p>\n");
        return;
    }
    double t0 = pauses[0].start_seconds, t1 = t0, longest = 0;
    for (size_t i = 0; i < n; i++) {
        double end = pauses[i].start_seconds + pauses[i].duration_seconds;
        if (end > t1)
            t1 = end;
        if (pauses[i].duration_seconds > longest)
            longest = pauses[i].duration_seconds;
    }
    double span = t1 - t0 > 1e-6 ? t1 - t0 : 1e-6;
    out(r, "<svg id=\"pause-timeline\" width=\"%d\" height=\"156\" role=\"img\" "
           "aria-label=\"collector pauses\">\n",
        80 + TIMELINE_WIDTH);
    pause_axis(r, t0, span);
    for (size_t i = 0; i < n; i++)
        pause_mark(r, &pauses[i], t0, span, longest);
    out(r, "</svg>\n");
    pause_table(r, pauses, n);
}

/* ---- Allocation sites ------------------------------------------------------------------- */

static void site_row(report *r, size_t rank, const om_trace_stat *e, size_t largest)
{
    char name[512];
    if (om_trace_format_frame(e->nframes != 0 ? e->frames[0] : NULL, name, sizeof name) < 0)
        snprintf(name, sizeof name, "?");
    out(r, "<tr class=\"site\"><td>%zu</td><td><span class=\"bar\" style=\"width:%dpx\">"
           "</span></td><td>%s</td><td>%zu</td>",
        rank, (int)(largest != 0 ? e->size * 200 / largest : 0) + 1, fmt_bytes(e->size).text,
        e->count);
    out(r, "<td>%s</td><td class=\"name\">", fmt_bytes(e->count != 0 ? e->size / e->count
                                                                     : 0).text);
    out_escaped(r, name);
    out(r, "</td></tr>\n");
    r->site_rows++;
}

static void section_sites(report *r, const om_trace_stats *sites)
{
    out(r, "<h2>Top allocation sites</h2>\n");
    if (sites == NULL) {
        out(r, "<p class=\"note\" id=\"tracing-off\">Tracing is off, so allocation sites are "
               "unknown: start it with om_trace_start(nframes) or the environment variable "
               "OBJMEM_TRACEMALLOC=N before the allocations to be seen.</p>\n");
        return;
    }
    out(r, "<p class=\"note\">Live traced blocks grouped by the line that allocated them "
           "(%zu sites, %s in all); the %d largest.</p>\n",
        sites->count, fmt_bytes(sites->total_size).text, REPORT_SITES_MAX);
    out(r, "<table id=\"sites\"><tr><th>#</th><th></th><th>size</th><th>blocks</th>"
           "<th>average</th><th class=\"name\">site</th></tr>\n");
    size_t largest = sites->count != 0 ? sites->entries[0].size : 0;
    for (size_t i = 0; i < sites->count && i < REPORT_SITES_MAX; i++)
        site_row(r, i + 1, &sites->entries[i], largest);
    out(r, "</table>\n");
    if (sites->count == 0)
        out(r, "<p class=\"note\">Tracing is on, but no traced block is live.</p>\n");
}

/* ---- Script and tail ---------------------------------------------------------------------- */

/* Counts what the browser built against what was drawn (data-expect),
 * and lets a legend colour pick out its class in the arena map. */
static const char report_tail_script[] =
    "(function(){"
    "var d=document;"
    "function n(s){return d.querySelectorAll(s).length;}"
    "var check=d.getElementById('self-check');"
    "var want=JSON.parse(check.getAttribute('data-expect'));"
    "var got={arenaRows:n('.arena-row'),pools:n('#arena-map rect.pool'),"
    "mediumRows:n('.medium-row'),largeRows:n('tr.large-block'),histBars:n('.hist-bar'),"
    "pauses:n('rect.pause'),sites:n('tr.site')};"
    "var bad=[];"
    "for(var k in want){if(want[k]!==got[k])bad.push(k+' '+got[k]+' != '+want[k]);}"
    "check.textContent=bad.length?'mismatch: '+bad.join(', '):'ok';"
    "check.setAttribute('data-result',bad.length?'mismatch':'ok');"
    "var map=d.getElementById('arena-map');"
    "d.querySelectorAll('.legend-class').forEach(function(g){"
    "var pools=map.querySelectorAll('rect.pool.c'+g.getAttribute('data-class'));"
    "g.addEventListener('mouseenter',function(){map.classList.add('dim');"
    "pools.forEach(function(p){p.classList.add('hi');});});"
    "g.addEventListener('mouseleave',function(){map.classList.remove('dim');"
    "pools.forEach(function(p){p.classList.remove('hi');});});});"
    "d.body.setAttribute('data-ready','1');"
    "})();";

static void page_tail(report *r)
{
    out(r, "<h2>Self-check</h2>\n<p>Elements drawn and found by the page's script: "
           "<output id=\"self-check\" data-result=\"pending\" data-expect='{\"arenaRows\":%zu,"
           "\"pools\":%zu,\"mediumRows\":%zu,\"largeRows\":%zu,\"histBars\":%zu,"
           "\"pauses\":%zu,\"sites\":%zu}'>not run</output></p>\n",
        r->arena_rows, r->arena_rows * OMI_POOLS_USABLE, r->medium_rows, r->large_rows,
        r->hist_bars, r->pause_marks, r->site_rows);
    out(r, "<pre id=\"script-errors\" data-count=\"0\"></pre>\n<script>%s</script>\n"
           "</body>\n</html>\n",
        report_tail_script);
}

/* ---- Writing ------------------------------------------------------------------------------ */

/* Writes the finished page to path. 0, or -1 with the error set. */
static int report_save(const report *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        omi_set_error(OM_EINVAL, "om_write_report: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    bool regular = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
    errno = 0;
    bool ok = fwrite(r->data, 1, r->length, f) == r->length;
    int error = errno;
    if (fclose(f) != 0 && ok) {
        ok = false;
        error = errno;
    }
    if (ok)
        return 0;
    if (regular)
        remove(path);   /* no half page left behind; a device stays */
    omi_set_error(OM_ENOMEM, "om_write_report: cannot write %s: %s", path,
                  strerror(error != 0 ? error : EIO));
    return -1;
}

/* The tracing statistics by site, or NULL when tracing is off; *failed
 * when tracing is on but they could not be made (the error is set). */
static om_trace_stats *report_sites(bool *failed)
{
    *failed = false;
    if (!om_trace_is_tracing())
        return NULL;
    om_snapshot *snap = om_trace_take_snapshot();
    if (snap == NULL) {
        *failed = true;
        return NULL;
    }
    om_trace_stats *sites = om_snapshot_statistics(snap, OM_TRACE_BY_SITE);
    om_snapshot_free(snap);
    *failed = sites == NULL;
    return sites;
}

int om_write_report(const char *path)
{
    if (path == NULL) {
        omi_set_error(OM_EINVAL, "om_write_report: path is NULL");
        return -1;
    }
    report r = {.heap = omi_bound()->heap};
    om_heap_get_stats(r.heap, &r.stats);
    om_gc_pause pauses[OM_GC_PAUSE_LOG];
    long npauses = om_gc_get_pauses(pauses, OM_GC_PAUSE_LOG);
    bool sites_failed;
    om_trace_stats *sites = report_sites(&sites_failed);
    if (sites_failed)
        return -1;
    page_head(&r);
    section_summary(&r);
    section_arena_map(&r);
    section_histogram(&r);
    section_pauses(&r, pauses, npauses > 0 ? (size_t)npauses : 0);
    section_sites(&r, sites);
    page_tail(&r);
    om_trace_stats_free(sites);
    int rc = -1;
    if (r.failed)
        omi_set_error(OM_ENOMEM, "om_write_report: out of memory building the page");
    else
        rc = report_save(&r, path);
    om_raw_free(r.data);
    return rc;
}
