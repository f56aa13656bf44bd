/*
 * cmd_stats.c — `objmem stats`: the heap tables of a workload, or of a
 * saved JSON snapshot.
 *
 * Two sources, one printer:
 *   - no FILE: stats_workload() fills the default heap with what a typical
 *     program holds (a dict of str keys, a list of ints and strs, medium
 *     buffers, large buffers), takes om_heap_get_stats(NULL) while all of
 *     it is alive, then frees it;
 *   - FILE: a JSON object as written by `objmem stats --json` or by
 *     om_heap_write_stats_json(), read back into an om_heap_stats.
 * print_stats_tables() prints either as sys._debugmallocstats-like tables
 * with units; --json prints the snapshot as JSON instead (the library's own
 * writer for a live heap; for FILE the same format from the fields table,
 * so `stats --json FILE` reproduces a library-written FILE byte for byte).
 *
 * The JSON reader is a small recursive-descent parser over the whole file
 * in memory (json_reader: text, position, first error). It knows the JSON
 * grammar (objects, arrays, strings with escapes, numbers, true, false,
 * null) and maps members by name through stats_fields[] (name, offset into
 * om_heap_stats) and class_fields[] (offset into om_size_class_stats).
 * Unknown members are skipped, so a newer library's snapshot still loads;
 * a missing field, a value that is not a non-negative integer, a classes
 * array that is not OM_SMALL_CLASS_COUNT entries long, or any syntax error
 * is reported as FILE:line:column and exits 1.
 */
#include "tool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- The fields of a snapshot ----------------------------------------------------- */

typedef struct stats_field {
    const char *name;   /* JSON member name, as om_heap_write_stats_json spells it */
    size_t offset;      /* of its size_t in the struct */
} stats_field;

#define HEAP_FIELD(f) {#f, offsetof(om_heap_stats, f)}
#define CLASS_FIELD(f) {#f, offsetof(om_size_class_stats, f)}

/* In the library's output order; "classes" comes after them. */
static const stats_field stats_fields[] = {
    HEAP_FIELD(arena_size),          HEAP_FIELD(pool_size),
    HEAP_FIELD(arenas_allocated),    HEAP_FIELD(arenas_freed),
    HEAP_FIELD(arenas_current),      HEAP_FIELD(arenas_highwater),
    HEAP_FIELD(pools_used),          HEAP_FIELD(pools_free),
    HEAP_FIELD(small_used_bytes),    HEAP_FIELD(small_free_bytes),
    HEAP_FIELD(mapped_bytes),        HEAP_FIELD(medium_arenas_current),
    HEAP_FIELD(medium_arenas_allocated), HEAP_FIELD(medium_arenas_freed),
    HEAP_FIELD(medium_used_bytes),   HEAP_FIELD(medium_cached_bytes),
    HEAP_FIELD(medium_free_bytes),   HEAP_FIELD(large_count),
    HEAP_FIELD(large_bytes),         HEAP_FIELD(large_cached_bytes),
    HEAP_FIELD(purged_bytes),        HEAP_FIELD(purges),
};
enum { STATS_FIELD_COUNT = sizeof stats_fields / sizeof stats_fields[0] };

static const stats_field class_fields[] = {
    CLASS_FIELD(block_size), CLASS_FIELD(pools), CLASS_FIELD(used_blocks),
    CLASS_FIELD(free_blocks), CLASS_FIELD(used_bytes),
};
enum { CLASS_FIELD_COUNT = sizeof class_fields / sizeof class_fields[0] };

static size_t *field_ptr(void *base, const stats_field *f)
{
    return (size_t *)((char *)base + f->offset);
}

/* ---- JSON reader ---------------------------------------------------------------- */

typedef struct json_reader {
    const char *path;   /* for messages */
    const char *text;   /* the whole file, NUL-terminated */
    size_t pos;         /* next byte to read */
    bool failed;        /* an error was reported; everything after is skipped */
} json_reader;

enum { JSON_MAX_DEPTH = 64 };  /* nesting a skipped value may have */

static void json_error(json_reader *r, const char *what)
{
    if (r->failed)
        return;
    size_t line = 1, column = 1;
    for (size_t i = 0; i < r->pos && r->text[i] != '\0'; i++) {
        if (r->text[i] == '\n')
            line++, column = 1;
        else
            column++;
    }
    fail("%s:%zu:%zu: not a stats snapshot: %s", r->path, line, column, what);
    r->failed = true;
}

static void json_space(json_reader *r)
{
    while (strchr(" \t\r\n", r->text[r->pos]) != NULL && r->text[r->pos] != '\0')
        r->pos++;
}

/* Consumes `c` (after white space) and returns true, else reports it. */
static bool json_expect(json_reader *r, char c, const char *what)
{
    json_space(r);
    if (r->text[r->pos] != c) {
        json_error(r, what);
        return false;
    }
    r->pos++;
    return true;
}

static bool json_peek(json_reader *r, char c)
{
    json_space(r);
    return r->text[r->pos] == c;
}

/* A string; its contents (escapes kept as written) go to out, truncated to
 * size - 1 bytes. Member names here are plain ASCII, so no decoding. */
static bool json_string(json_reader *r, char *out, size_t size)
{
    if (!json_expect(r, '"', "expected a string"))
        return false;
    size_t n = 0;
    for (;;) {
        unsigned char c = (unsigned char)r->text[r->pos];
        if (c == '\0' || c < 0x20) {
            json_error(r, c == '\0' ? "unterminated string" : "control character in a string");
            return false;
        }
        r->pos++;
        if (c == '"')
            break;
        if (c == '\\') {
            if (r->text[r->pos] == '\0') {
                json_error(r, "unterminated string");
                return false;
            }
            if (n + 1 < size)
                out[n++] = (char)c;
            c = (unsigned char)r->text[r->pos++];
        }
        if (n + 1 < size)
            out[n++] = (char)c;
    }
    out[n] = '\0';
    return true;
}

/* A non-negative integer that fits a size_t. */
static bool json_size(json_reader *r, size_t *out)
{
    json_space(r);
    const char *start = r->text + r->pos;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(start, &end, 10);
    if (end == start || *start < '0' || *start > '9' || strchr(".eE", *end) != NULL) {
        json_error(r, "expected a non-negative integer");
        return false;
    }
    if (errno == ERANGE || v > SIZE_MAX) {
        json_error(r, "integer too large");
        return false;
    }
    r->pos += (size_t)(end - start);
    *out = (size_t)v;
    return true;
}

static bool json_skip_value(json_reader *r, int depth);

/* The members or items of a container being skipped, up to `close`. */
static bool json_skip_items(json_reader *r, char close, bool members, int depth)
{
    if (json_peek(r, close)) {
        r->pos++;
        return true;
    }
    do {
        char name[2];
        if (members && (!json_string(r, name, sizeof name) ||
                        !json_expect(r, ':', "expected ':' after a member name")))
            return false;
        if (!json_skip_value(r, depth + 1))
            return false;
    } while (json_peek(r, ',') && ++r->pos);
    return json_expect(r, close, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

static bool json_skip_value(json_reader *r, int depth)
{
    if (depth > JSON_MAX_DEPTH) {
        json_error(r, "nested too deeply");
        return false;
    }
    json_space(r);
    char c = r->text[r->pos];
    char scratch[2];
    if (c == '{' || c == '[') {
        r->pos++;
        return json_skip_items(r, c == '{' ? '}' : ']', c == '{', depth);
    }
    if (c == '"')
        return json_string(r, scratch, sizeof scratch);
    static const char *const words[] = {"true", "false", "null"};
    for (size_t i = 0; i < 3; i++) {
        size_t len = strlen(words[i]);
        if (strncmp(r->text + r->pos, words[i], len) == 0) {
            r->pos += len;
            return true;
        }
    }
    char *end;
    strtod(r->text + r->pos, &end);
    if (end == r->text + r->pos || (c != '-' && (c < '0' || c > '9'))) {
        json_error(r, "expected a value");
        return false;
    }
    r->pos = (size_t)(end - r->text);
    return true;
}

/* The members of an object whose fields are `fields`: each found field is
 * stored into base and marked in seen[]; "classes" goes to on_classes. */
typedef bool (*classes_reader)(json_reader *r, om_heap_stats *s);

static bool json_object(json_reader *r, void *base, const stats_field *fields, size_t nfields,
                        bool *seen, classes_reader on_classes)
{
    if (!json_expect(r, '{', "expected '{'"))
        return false;
    if (json_peek(r, '}'))
        return ++r->pos, true;
    do {
        char name[64];
        if (!json_string(r, name, sizeof name) ||
            !json_expect(r, ':', "expected ':' after a member name"))
            return false;
        size_t i = 0;
        while (i < nfields && strcmp(name, fields[i].name) != 0)
            i++;
        bool ok;
        if (i < nfields) {
            ok = json_size(r, field_ptr(base, &fields[i]));
            seen[i] = true;
        } else if (on_classes != NULL && strcmp(name, "classes") == 0) {
            ok = on_classes(r, base);
            seen[nfields] = true;
        } else {
            ok = json_skip_value(r, 1);
        }
        if (!ok)
            return false;
    } while (json_peek(r, ',') && ++r->pos);
    return json_expect(r, '}', "expected ',' or '}'");
}

static bool report_missing(json_reader *r, const stats_field *fields, size_t nfields,
                           const bool *seen, const char *where)
{
    for (size_t i = 0; i < nfields; i++) {
        if (!seen[i]) {
            char what[128];
            snprintf(what, sizeof what, "%s has no member \"%s\"", where, fields[i].name);
            json_error(r, what);
            return false;
        }
    }
    return true;
}

static bool read_classes(json_reader *r, om_heap_stats *s)
{
    if (!json_expect(r, '[', "\"classes\" must be an array"))
        return false;
    size_t n = 0;
    if (!json_peek(r, ']')) {
        do {
            if (n == OM_SMALL_CLASS_COUNT) {
                json_error(r, "more size classes than this build has");
                return false;
            }
            bool seen[CLASS_FIELD_COUNT + 1] = {false};
            if (!json_object(r, &s->classes[n], class_fields, CLASS_FIELD_COUNT, seen, NULL) ||
                !report_missing(r, class_fields, CLASS_FIELD_COUNT, seen, "a size class"))
                return false;
            n++;
        } while (json_peek(r, ',') && ++r->pos);
    }
    if (!json_expect(r, ']', "expected ',' or ']'"))
        return false;
    if (n != OM_SMALL_CLASS_COUNT) {
        char what[96];
        snprintf(what, sizeof what, "%zu size classes, this build has %d", n, OM_SMALL_CLASS_COUNT);
        json_error(r, what);
        return false;
    }
    return true;
}

static char *read_whole_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fail("cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    while (text != NULL) {
        len += fread(text + len, 1, cap - len - 1, f);
        if (len < cap - 1)
            break;
        char *bigger = realloc(text, cap *= 2);
        if (bigger == NULL)
            free(text);
        text = bigger;
    }
    bool bad = text == NULL || ferror(f);
    fclose(f);
    if (bad) {
        fail("cannot read %s: %s", path, text == NULL ? "out of memory" : strerror(errno));
        free(text);
        return NULL;
    }
    text[len] = '\0';
    if (strlen(text) != len) {
        fail("%s: not a stats snapshot: it contains a NUL byte", path);
        free(text);
        return NULL;
    }
    return text;
}

/* Reads the snapshot at path into *s: 0, or -1 after reporting why not. */
static int load_snapshot(const char *path, om_heap_stats *s)
{
    char *text = read_whole_file(path);
    if (text == NULL)
        return -1;
    memset(s, 0, sizeof *s);
    json_reader r = {path, text, 0, false};
    bool seen[STATS_FIELD_COUNT + 1] = {false};
    bool ok = json_object(&r, s, stats_fields, STATS_FIELD_COUNT, seen, read_classes) &&
              report_missing(&r, stats_fields, STATS_FIELD_COUNT, seen, "the snapshot");
    if (ok && !seen[STATS_FIELD_COUNT]) {
        json_error(&r, "the snapshot has no member \"classes\"");
        ok = false;
    }
    json_space(&r);
    if (ok && r.text[r.pos] != '\0') {
        json_error(&r, "text after the snapshot");
        ok = false;
    }
    free(text);
    return ok ? 0 : -1;
}

/* The same text om_heap_write_stats_json writes for a live heap: the
 * fields in order, then the classes. */
static void write_snapshot_json(const om_heap_stats *s)
{
    putchar('{');
    for (size_t i = 0; i < STATS_FIELD_COUNT; i++)
        printf("\"%s\":%zu,", stats_fields[i].name, *field_ptr((void *)s, &stats_fields[i]));
    fputs("\"classes\":[", stdout);
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++) {
        fputs(c == 0 ? "{" : ",{", stdout);
        for (size_t k = 0; k < CLASS_FIELD_COUNT; k++)
            printf("%s\"%s\":%zu", k ? "," : "", class_fields[k].name,
                   *field_ptr((void *)&s->classes[c], &class_fields[k]));
        putchar('}');
    }
    puts("]}");
}

/* ---- Tables ----------------------------------------------------------------- */

static void print_class_rows(const om_heap_stats *s)
{
    printf("%s  %5s %8s %7s %13s %12s %12s%s\n", dim(), "class", "block", "pools", "used blocks",
           "free blocks", "used bytes", plain());
    size_t pools = 0, used = 0, free_blocks = 0;
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++) {
        const om_size_class_stats *k = &s->classes[c];
        if (k->pools == 0)
            continue;
        printf("  %5zu %8s %7s %13s %12s %12s\n", c, fmt_bytes(k->block_size), fmt_count(k->pools),
               fmt_count(k->used_blocks), fmt_count(k->free_blocks), fmt_bytes(k->used_bytes));
        pools += k->pools, used += k->used_blocks, free_blocks += k->free_blocks;
    }
    printf("  %-14s %7s %13s %12s %12s\n", "total", fmt_count(pools), fmt_count(used),
           fmt_count(free_blocks), fmt_bytes(s->small_used_bytes));
}

static void row(const char *label, const char *value, const char *note)
{
    printf("  %-34s %14s%s%s\n", label, value, note[0] ? "   " : "", note);
}

void print_stats_tables(const om_heap_stats *s)
{
    printf("%ssmall blocks (up to %d B): %s pools in %s arenas%s\n\n", bold(), OM_SMALL_SIZE_MAX,
           fmt_bytes(s->pool_size), fmt_bytes(s->arena_size), plain());
    print_class_rows(s);

    size_t accounted = s->small_used_bytes + s->small_free_bytes +
                       (s->pools_free + s->arenas_current) * s->pool_size;
    char note[96];
    printf("\n");
    row("arenas mapped now", fmt_count(s->arenas_current), fmt_bytes(s->mapped_bytes));
    snprintf(note, sizeof note, "(mapped since start %s, returned %s)",
             fmt_count(s->arenas_allocated), fmt_count(s->arenas_freed));
    row("arenas high-water", fmt_count(s->arenas_highwater), note);
    row("pools in use", fmt_count(s->pools_used), "");
    row("pools free in arenas", fmt_count(s->pools_free), "");
    row("bytes in used blocks", fmt_bytes(s->small_used_bytes), "(sizes rounded up to their class)");
    row("bytes free in used pools", fmt_bytes(s->small_free_bytes),
        fmt_percent((double)s->small_free_bytes,
                    (double)(s->small_used_bytes + s->small_free_bytes)));
    row("bytes in arena and pool headers", fmt_bytes(s->arenas_current * s->pool_size), "");
    row("bytes lost to quantization",
        fmt_bytes(s->mapped_bytes > accounted ? s->mapped_bytes - accounted : 0), "");

    printf("\n%smedium blocks (%d B .. %s): page runs in %s arenas%s\n\n", bold(),
           OM_SMALL_SIZE_MAX + 1, fmt_bytes(OM_MEDIUM_SIZE_MAX), fmt_bytes(s->arena_size), plain());
    snprintf(note, sizeof note, "(mapped since start %s, returned %s)",
             fmt_count(s->medium_arenas_allocated), fmt_count(s->medium_arenas_freed));
    row("medium arenas mapped now", fmt_count(s->medium_arenas_current), note);
    row("bytes in medium blocks in use", fmt_bytes(s->medium_used_bytes), "");
    row("bytes in medium class caches", fmt_bytes(s->medium_cached_bytes), "");
    row("bytes in free medium runs", fmt_bytes(s->medium_free_bytes), "");

    printf("\n%slarge blocks (above %s): one mapping each%s\n\n", bold(),
           fmt_bytes(OM_MEDIUM_SIZE_MAX), plain());
    row("large blocks in use", fmt_count(s->large_count), fmt_bytes(s->large_bytes));
    row("freed mappings kept for reuse", fmt_bytes(s->large_cached_bytes), "");
    snprintf(note, sizeof note, "(in %s madvise calls)", fmt_count(s->purges));
    row("given back to the OS (purged)", fmt_bytes(s->purged_bytes), note);
}

/* ---- The workload ------------------------------------------------------------ */


static int workload_dict(stats_workload *w)
{
    w->dict = om_dict_new();
    if (w->dict == NULL)
        return fail_om("om_dict_new()");
    for (int i = 0; i < WL_DICT_KEYS; i++) {
        char key[32];
        snprintf(key, sizeof key, "key-%d", i);
        om_object *k = om_str_from_cstr(key), *v = om_int_from_i64((int64_t)i * 1000003);
        int rc = k != NULL && v != NULL ? om_dict_set(w->dict, k, v) : -1;
        om_xdecref(k);
        om_xdecref(v);
        if (rc != 0)
            return fail_om("building a dict of %d str keys", WL_DICT_KEYS);
    }
    return 0;
}

/* Strs of 1 .. 300 characters: their blocks spread over many size classes. */
static int workload_list(stats_workload *w)
{
    char letters[300];
    memset(letters, 'x', sizeof letters);
    w->list = om_list_new(0);
    if (w->list == NULL)
        return fail_om("om_list_new()");
    uint64_t rng = UINT64_C(0x5DEECE66D);
    for (int i = 0; i < WL_LIST_ITEMS; i++) {
        om_object *item = i % 2 ? om_int_from_i64(1000000 + i)
                                : om_str_from_utf8(letters, 1 + xorshift64(&rng) % sizeof letters);
        int rc = item != NULL ? om_list_append(w->list, item) : -1;
        om_xdecref(item);
        if (rc != 0)
            return fail_om("building a list of %d ints and strs", WL_LIST_ITEMS);
    }
    return 0;
}

static int workload_buffers(stats_workload *w)
{
    uint64_t rng = UINT64_C(0x2545F4914F6CDD1D);
    for (int i = 0; i < WL_MEDIUM_BUFFERS; i++) {
        size_t size = 1024 + xorshift64(&rng) % (191 * 1024);
        if ((w->medium[i] = om_mem_malloc(size)) == NULL)
            return fail_om("om_mem_malloc(%zu)", size);
        memset(w->medium[i], 1, size);
    }
    for (int i = 0; i < WL_LARGE_BUFFERS; i++) {
        size_t size = ((size_t)1 << 20) * (size_t)(i + 1);
        if ((w->large[i] = om_mem_malloc(size)) == NULL)
            return fail_om("om_mem_malloc(%zu)", size);
        memset(w->large[i], 1, size);
    }
    return 0;
}

void stats_workload_free(stats_workload *w)
{
    om_xdecref(w->dict);
    om_xdecref(w->list);
    for (int i = 0; i < WL_MEDIUM_BUFFERS; i++)
        om_mem_free(w->medium[i]);
    for (int i = 0; i < WL_LARGE_BUFFERS; i++)
        om_mem_free(w->large[i]);
}

int stats_workload_run(stats_workload *w)
{
    memset(w, 0, sizeof *w);
    int rc = workload_dict(w);
    rc = rc != 0 ? rc : workload_list(w);
    return rc != 0 ? rc : workload_buffers(w);
}

/* ---- The command ----------------------------------------------------------------- */

void stats_usage(FILE *out)
{
    fprintf(out,
            "usage: objmem stats [--json] [FILE.json]\n"
            "\n"
            "Without FILE: runs a workload on the default heap (a dict of %d str\n"
            "keys, a list of %d ints and strs, %d medium and %d large buffers) and\n"
            "prints the heap's tables while all of it is alive: blocks per size\n"
            "class, arenas and pools, medium and large blocks, purging.\n"
            "With FILE: prints the same tables for a snapshot saved by\n"
            "`objmem stats --json` or om_heap_write_stats_json().\n"
            "\n"
            "options:\n"
            "  --json       print the snapshot as one JSON object instead\n"
            "  -h, --help   show this help\n"
            "\n"
            "exit status: 0 success, 1 FILE unreadable or not a snapshot, 2 usage error\n",
            WL_DICT_KEYS, WL_LIST_ITEMS, WL_MEDIUM_BUFFERS, WL_LARGE_BUFFERS);
}

static int stats_of_workload(bool json)
{
    stats_workload w;
    int rc = stats_workload_run(&w);
    om_heap_stats s;
    if (rc == 0 && om_heap_get_stats(NULL, &s) != 0)
        rc = fail_om("om_heap_get_stats(NULL)");
    if (rc == 0 && json) {
        if (om_heap_write_stats_json(NULL, stdout) != 0)
            rc = fail_om("om_heap_write_stats_json(NULL, stdout)");
    } else if (rc == 0) {
        printf("default heap while the workload is alive; process RSS %s\n\n", fmt_rss(rss_bytes()));
        print_stats_tables(&s);
    }
    stats_workload_free(&w);
    return rc == 0 ? finish_stdout() : EXIT_FAILURE;
}

static int stats_of_file(const char *path, bool json)
{
    om_heap_stats s;
    if (load_snapshot(path, &s) != 0)
        return EXIT_FAILURE;
    if (json) {
        write_snapshot_json(&s);
    } else {
        printf("snapshot %s\n\n", path);
        print_stats_tables(&s);
    }
    return finish_stdout();
}

int cmd_stats(int argc, char **argv)
{
    bool json = false;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            stats_usage(stdout);
            return EXIT_SUCCESS;
        } else if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return usage_error(stats_usage, "unknown option '%s'", argv[i]);
        } else if (path != NULL) {
            return usage_error(stats_usage, "one FILE at most ('%s' and '%s')", path, argv[i]);
        } else {
            path = argv[i];
        }
    }
    return path != NULL ? stats_of_file(path, json) : stats_of_workload(json);
}
