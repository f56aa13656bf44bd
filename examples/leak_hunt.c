/*
 * leak_hunt.c — find which code keeps memory alive, as Python's tracemalloc
 * does: start tracing, take a snapshot, run the suspect code, take a
 * second snapshot, compare them by allocation site and print the sites
 * that grew most. Here a request handler keeps a copy of every request's
 * header in a cache nobody empties, while its scratch buffers come and go.
 * Build (-g gives file:line names; frame pointers give deeper tracebacks):
 *   cc -g -fno-omit-frame-pointer leak_hunt.c $(pkg-config --cflags --libs objmem)
 *
 * A site is the innermost frame: the code that called om_mem_malloc,
 * om_obj_malloc, … For objects made by objmem's constructors (om_new,
 * om_str_from_cstr, …) that is a function inside objmem; your own frames
 * come next in the traceback, which objmem can only walk when it was built
 * with -fno-omit-frame-pointer (see docs/guide-leaks.md). Group with
 * OM_TRACE_BY_TRACEBACK then.
 */
#include <objmem.h>
#include <stdio.h>
#include <string.h>

enum { REQUESTS = 1000 };

/* A cache that only ever grows: the leak. */
static char **header_cache;
static size_t cached;

/* Keeps a copy of a header "forever". noinline keeps this function's name
 * on its allocation site in an optimised build. */
__attribute__((noinline)) static int remember_header(long request)
{
    char **grown = om_mem_realloc(header_cache, (cached + 1) * sizeof *grown);
    if (grown == NULL)
        return -1;
    header_cache = grown;
    char *copy = om_mem_malloc(48);
    if (copy == NULL)
        return -1;
    snprintf(copy, 48, "X-Request-Id: %ld", request);
    header_cache[cached++] = copy;
    return 0;
}

/* Handles one request: a scratch buffer, used and freed (no leak). */
__attribute__((noinline)) static int handle_request(long request)
{
    char *scratch = om_mem_malloc(4096);
    if (scratch == NULL)
        return -1;
    memset(scratch, 'x', 4096);
    om_mem_free(scratch);
    return remember_header(request);
}

int main(void)
{
    if (om_trace_start(4) != 0) {   /* tracebacks of up to 4 frames */
        fprintf(stderr, "om_trace_start: %s\n", om_last_error_message());
        return 1;
    }
    om_snapshot *before = om_trace_take_snapshot();
    int rc = before != NULL ? 0 : -1;
    for (long i = 0; rc == 0 && i < REQUESTS; i++)
        rc = handle_request(i);
    om_snapshot *after = rc == 0 ? om_trace_take_snapshot() : NULL;
    om_trace_stats *diff = after != NULL ? om_snapshot_compare(before, after, OM_TRACE_BY_SITE)
                                         : NULL;
    if (diff == NULL) {
        fprintf(stderr, "tracing the requests: %s\n", om_last_error_message());
        return 1;
    }

    size_t current, peak;
    om_trace_get_traced_memory(&current, &peak);
    printf("%d requests; traced memory now %zu B, peak %zu B\n", REQUESTS, current, peak);
    printf("top 3 sites by growth between the snapshots:\n");
    om_trace_print_stats(stdout, diff, 3);

    /* The biggest growth must be the copies made in remember_header: one
     * block per request, none freed. (The cache's array is one block that
     * grew; the scratch buffers were all freed, so they do not show.) */
    const om_trace_stat *top = &diff->entries[0];
    char site[256];
    om_trace_format_frame(top->frames[0], site, sizeof site);
    printf("the leak: %td new blocks at %s\n", top->count_diff, site);
    int found = diff->count > 0 && top->count_diff == REQUESTS &&
                strstr(site, "remember_header") != NULL;

    /* Where was one leaked block allocated? Ask for its traceback. */
    om_traceback *tb = om_trace_get_object_traceback(header_cache[0]);
    if (tb != NULL) {
        printf("traceback of the first cached header (%zu B asked for):\n", tb->size);
        for (size_t i = 0; i < tb->nframes; i++) {
            om_trace_format_frame(tb->frames[i], site, sizeof site);
            printf("  #%zu %s\n", i, site);
        }
    }
    om_traceback_free(tb);

    om_trace_stats_free(diff);
    om_snapshot_free(before);
    om_snapshot_free(after);
    for (size_t i = 0; i < cached; i++)     /* the fix: empty the cache */
        om_mem_free(header_cache[i]);
    om_mem_free(header_cache);
    om_trace_stop();
    return found ? 0 : 1;
}
