/*
 * valgrind-uaf.c — memcheck sees the pools (issue 2, item 8).
 *
 * Run under `valgrind --error-exitcode=42` by tests/CMakeLists.txt (normal
 * build only, when valgrind and valgrind/memcheck.h exist):
 *
 *   valgrind-uaf clean   allocates, uses, reallocates and frees pool blocks
 *                        of every class, medium blocks of many classes
 *                        (grown in place, moved, aligned, cached and
 *                        coalesced) and large blocks (grown and shrunk with
 *                        mremap), on the default heap and a private one;
 *                        memcheck must report nothing (objmem's own
 *                        free-list, bin and header accesses are annotated);
 *   valgrind-uaf uaf     the same, then writes into three freed pool blocks
 *                        and one freed medium block and reads from one;
 *                        memcheck must report the invalid writes and the
 *                        invalid read.
 *
 * Without objmem's client requests (OM_VALGRIND) a freed pool block is
 * ordinary mapped memory to memcheck, and `uaf` exits 0: the CTest test
 * then fails, as it should. The freed blocks keep a live neighbour so that
 * their pool stays mapped and the access is a clean invalid access rather
 * than a fault.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "objmem.h"

static volatile unsigned char sink;

static void workload(om_heap *h)
{
    void *blocks[OM_SMALL_CLASS_COUNT * 4];
    size_t n = 0;
    for (size_t c = 0; c < OM_SMALL_CLASS_COUNT; c++) {
        size_t size = (c + 1) * OM_ALIGNMENT;
        blocks[n++] = om_obj_malloc(size);
        blocks[n++] = om_mem_calloc(1, size - 3);
        blocks[n++] = om_heap_malloc(h, size);
        blocks[n++] = om_heap_calloc(h, 2, size / 2);
    }
    for (size_t i = 0; i < n; i++) {
        size_t usable = om_usable_size(blocks[i]);
        memset(blocks[i], (int)i, usable);
    }
    for (size_t i = 0; i < n; i += 3)
        blocks[i] = om_mem_realloc(blocks[i], om_usable_size(blocks[i]) / 2 + 1);
    for (size_t i = 1; i < n; i += 5)
        blocks[i] = om_heap_realloc(h, blocks[i], 700);
    unsigned sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += ((unsigned char *)blocks[i])[0];
    sink = (unsigned char)sum;
    for (size_t i = 0; i < n; i++)
        om_obj_free(blocks[i]);
    /* Reuse freed blocks: their free-list links are objmem's to read. */
    for (size_t i = 0; i < n; i++)
        blocks[i] = om_obj_malloc(1 + i % OM_SMALL_SIZE_MAX);
    for (size_t i = 0; i < n; i++)
        om_mem_free(blocks[i]);
}

/* Medium and large blocks (issue 3): every access below is to a live block. */
static void workload_big(om_heap *h)
{
    static const size_t sizes[] = {513,   640,   1000,  2048,   5000,   12345,
                                   40000, 65536, 99999, 200000, 262144, 262145};
    enum { N = sizeof sizes / sizeof sizes[0] };
    unsigned char *blocks[2 * N];
    for (size_t i = 0; i < N; i++) {
        blocks[2 * i] = om_mem_malloc(sizes[i]);
        blocks[2 * i + 1] = om_heap_calloc(h, 1, sizes[i]);
    }
    unsigned sum = 0;
    for (size_t i = 0; i < 2 * N; i++) {
        size_t usable = om_usable_size(blocks[i]);
        sum += blocks[i][usable - 1];
        memset(blocks[i], (int)i, usable);
    }
    /* Free every other one (cached or coalesced), grow the rest. */
    for (size_t i = 0; i < 2 * N; i += 2)
        om_obj_free(blocks[i]);
    for (size_t i = 1; i < 2 * N; i += 2) {
        size_t usable = om_usable_size(blocks[i]);
        blocks[i] = om_heap_realloc(h, blocks[i], usable + usable / 3 + 1);
        usable = om_usable_size(blocks[i]);
        memset(blocks[i], 7, usable);
        blocks[i] = om_mem_realloc(blocks[i], usable / 3 + 1);
        sum += blocks[i][0];
    }
    for (size_t i = 1; i < 2 * N; i += 2)
        om_mem_free(blocks[i]);
    /* Aligned blocks of every tier. */
    for (size_t shift = 5; shift <= 20; shift += 3) {
        unsigned char *a = om_aligned_alloc((size_t)1 << shift, 3000);
        unsigned char *b = om_heap_aligned_alloc(h, (size_t)1 << shift, 300000);
        memset(a, 1, 3000);
        memset(b, 2, 300000);
        sum += a[2999] + b[299999];
        om_mem_free(a);
        om_mem_free(b);
    }
    /* A large block grown a lot (mremap, maybe moving) and shrunk. */
    unsigned char *big = om_mem_malloc(1 << 20);
    unsigned char *fence = om_mem_malloc(1 << 20);
    memset(big, 3, 1 << 20);
    memset(fence, 4, 1 << 20);
    big = om_mem_realloc(big, 9 << 20);
    memset(big + (1 << 20), 5, 8 << 20);
    big = om_mem_realloc(big, 300000);
    sum += big[299999] + fence[0];
    om_mem_free(big);
    om_mem_free(fence);
    sink = (unsigned char)sum;
}

int main(int argc, char **argv)
{
    int uaf = argc > 1 && strcmp(argv[1], "uaf") == 0;
    om_heap *h = om_heap_new();
    workload(h);
    workload_big(h);

    unsigned char *neighbour = om_obj_malloc(64);
    volatile unsigned char *p = om_obj_malloc(64);
    unsigned char *heap_neighbour = om_heap_malloc(h, 96);
    volatile unsigned char *q = om_heap_malloc(h, 96);
    volatile unsigned char *r = om_mem_malloc(300);
    unsigned char *mem_neighbour = om_mem_malloc(300);
    volatile unsigned char *m = om_heap_malloc(h, 5000);
    unsigned char *medium_neighbour = om_heap_malloc(h, 5000);
    memset(medium_neighbour, 7, 5000);
    for (int i = 0; i < 5000; i++)
        m[i] = 8;
    memset(neighbour, 1, 64);
    memset(heap_neighbour, 2, 96);
    memset(mem_neighbour, 3, 300);
    for (int i = 0; i < 64; i++)
        p[i] = 4;
    for (int i = 0; i < 96; i++)
        q[i] = 5;
    for (int i = 0; i < 300; i++)
        r[i] = 6;
    om_obj_free((void *)p);
    om_mem_free((void *)q);
    om_mem_free((void *)r);
    om_mem_free((void *)m);

    if (uaf) {
        p[20] = 0x41;  /* invalid write: freed om_obj block */
        q[50] = 0x42;  /* invalid write: freed private-heap block */
        r[299] = 0x43; /* invalid write: last byte of a freed om_mem block */
        m[4000] = 0x44; /* invalid write: freed medium block */
        sink = p[40];  /* invalid read */
    }

    om_obj_free(neighbour);
    om_mem_free(heap_neighbour);
    om_mem_free(mem_neighbour);
    om_mem_free(medium_neighbour);
    om_heap_trim(NULL);
    om_heap_delete(h);
    printf("valgrind-uaf: %s run done\n", uaf ? "uaf" : "clean");
    return 0;
}
