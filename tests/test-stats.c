/*
 * test-stats.c — the statistics outputs: om_debug_malloc_stats's table
 * agrees with om_heap_get_stats, and OBJMEM_MALLOCSTATS=1 prints the table
 * at exit (checked by running this program again with the variable set).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "objmem.h"

/* The table of a heap with 100 blocks of 48 B names class 2 with 100 used. */
static void test_table_matches_stats(void)
{
    om_heap *h = om_heap_new();
    CHECK(h != NULL);
    void *blocks[100];
    for (int i = 0; i < 100; i++)
        blocks[i] = om_heap_malloc(h, 40);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    om_heap_print_stats(h, out);
    fclose(out);
    /* class 2 (48 B), 1 pool, 100 used, 341 - 100 available */
    CHECK(strstr(text, "    2     48           1             100           241") != NULL);
    CHECK(strstr(text, "# arenas allocated current           =               1") != NULL);
    free(text);
    for (int i = 0; i < 100; i++)
        om_obj_free(blocks[i]);
    om_heap_delete(h);
}

static int run_self_with_stats(const char *self, char *buf, size_t cap)
{
    char command[4096];
    snprintf(command, sizeof command, "OBJMEM_MALLOCSTATS=1 '%s' --allocate-and-exit 2>&1", self);
    FILE *p = popen(command, "r");
    if (p == NULL)
        return -1;
    size_t got = fread(buf, 1, cap - 1, p);
    buf[got] = '\0';
    return pclose(p);
}

static void test_mallocstats_at_exit(const char *self)
{
    static char output[16384];
    int status = run_self_with_stats(self, output, sizeof output);
    CHECK(status == 0);
    CHECK(strstr(output, "Small block threshold = 512") != NULL);
    CHECK(strstr(output, "# arenas allocated total") != NULL);
    /* The child keeps 10 blocks of 16 B alive: class 0 shows them. */
    CHECK(strstr(output, "    0     16           1              10") != NULL);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--allocate-and-exit") == 0) {
        for (int i = 0; i < 10; i++)
            if (om_mem_malloc(8) == NULL)
                return 1;
        return 0;   /* the blocks stay alive for the exit-time table */
    }
    test_table_matches_stats();
    test_mallocstats_at_exit(argv[0]);
    return check_report();
}
