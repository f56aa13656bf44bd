/*
 * first_heap.c — a private heap, the domains and the statistics in thirty
 * lines. Build: cc first_heap.c $(pkg-config --cflags --libs objmem)
 */
#include <objmem.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    om_heap *scratch = om_heap_new();
    if (scratch == NULL) {
        fprintf(stderr, "om_heap_new: %s\n", om_last_error_message());
        return 1;
    }
    char *names[1000];
    for (int i = 0; i < 1000; i++) {
        names[i] = om_heap_malloc(scratch, 24);
        if (names[i] == NULL)
            return 1;
        snprintf(names[i], 24, "item-%d", i);
    }
    om_heap_stats stats;
    om_heap_get_stats(scratch, &stats);
    printf("%zu blocks of 32 B in %zu pool(s), %zu arena(s) mapped\n",
           stats.classes[1].used_blocks, stats.classes[1].pools, stats.arenas_current);

    om_obj_free(names[0]);            /* no heap argument: the address map knows */
    om_heap_delete(scratch);          /* everything else goes at once */

    void *buffer = om_mem_calloc(100, sizeof(double));
    printf("om_mem_calloc(100, 8): %zu usable bytes\n", om_usable_size(buffer));
    om_mem_free(buffer);
    return 0;
}
