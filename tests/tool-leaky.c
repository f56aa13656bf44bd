/*
 * tool-leaky.c — the program tests/test-tool.sh runs under `objmem trace`.
 *
 * It leaks a known amount from a known function and tidies everything
 * else, so the tool must name exactly one site as live at exit:
 *   leaky_cache_entry   LEAKY_BLOCKS blocks of LEAKY_SIZE bytes, never freed
 *   tidy_scratch        a larger buffer, freed before exit (must not appear)
 * The exit status is argv[1] (default 0), so the test can check that the
 * tool reports it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objmem.h"

enum { LEAKY_BLOCKS = 25, LEAKY_SIZE = 400, SCRATCH_SIZE = 100000 };

static void *kept[LEAKY_BLOCKS];

/* noinline: the traceback's first frame must be this function. */
static __attribute__((noinline)) void *leaky_cache_entry(int i)
{
    char *p = om_raw_malloc(LEAKY_SIZE);
    if (p != NULL)
        memset(p, i, LEAKY_SIZE);
    return p;
}

static __attribute__((noinline)) int tidy_scratch(void)
{
    char *p = om_raw_malloc(SCRATCH_SIZE);
    if (p == NULL)
        return -1;
    memset(p, 0, SCRATCH_SIZE);
    om_raw_free(p);
    return 0;
}

int main(int argc, char **argv)
{
    int status = argc > 1 ? atoi(argv[1]) : 0;
    for (int i = 0; i < LEAKY_BLOCKS; i++) {
        kept[i] = leaky_cache_entry(i);
        if (kept[i] == NULL || tidy_scratch() != 0) {
            fprintf(stderr, "tool-leaky: out of memory\n");
            return 1;
        }
    }
    printf("tool-leaky: leaked %d blocks of %d B\n", LEAKY_BLOCKS, LEAKY_SIZE);
    return status;
}
