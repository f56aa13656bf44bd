/*
 * test-sanitizer.c — ASan sees the pools (issue 2, item 8).
 *
 * In the sanitizer build (OM_TEST_SANITIZED), objmem poisons a pool block
 * when it is freed, so that ASan reports a use after free of a block that
 * never went back to the system. Each misuse runs in a child process
 * (check_run_child); the child must end abnormally with an AddressSanitizer
 * report on stderr. ASan names poisoned user memory "use-after-poison",
 * which is accepted as well as "heap-use-after-free".
 *
 * A control child does the same work without the misuse and must exit 0
 * with no report: objmem's own accesses to free lists in poisoned blocks
 * must not trip ASan.
 *
 * In a normal build there is nothing to test: the program says so and
 * exits 77, which CTest reports as skipped.
 */
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "objmem.h"

#ifdef OM_TEST_SANITIZED

typedef enum misuse {
    MISUSE_NONE,
    MISUSE_OBJ_WRITE,   /* write into the middle of a freed om_obj block */
    MISUSE_MEM_READ,    /* read from a freed om_mem block */
    MISUSE_HEAP_WRITE,  /* write into a freed block of a private heap */
    MISUSE_FIRST_WORD,  /* write over the first word (the free-list link) */
    MISUSE_REALLOC_OLD, /* write into the old block after realloc moved it */
} misuse;

static volatile unsigned char sink;

/* Allocate, use and free small blocks in all the ways the misuses do. The
 * neighbours stay live, so that the freed block's pool stays mapped. */
static void run_child(void *arg)
{
    misuse m = (misuse)(intptr_t)arg;
    om_heap *h = om_heap_new();
    unsigned char *keep[8];
    for (int i = 0; i < 8; i++) {
        keep[i] = om_obj_malloc(64);
        memset(keep[i], i, 64);
    }
    volatile unsigned char *p = om_obj_malloc(64);
    volatile unsigned char *q = om_mem_malloc(200);
    volatile unsigned char *r = om_heap_malloc(h, 48);
    volatile unsigned char *keep_r = om_heap_malloc(h, 48);
    volatile unsigned char *s = om_mem_malloc(32);
    for (int i = 0; i < 64; i++)
        p[i] = 1;
    for (int i = 0; i < 200; i++)
        q[i] = 2;
    for (int i = 0; i < 48; i++)
        r[i] = keep_r[i] = 3;
    for (int i = 0; i < 32; i++)
        s[i] = 4;
    volatile unsigned char *s2 = om_mem_realloc((void *)s, 400);
    s2[399] = 5;

    om_obj_free((void *)p);
    om_mem_free((void *)q);
    om_mem_free((void *)r);

    switch (m) {
    case MISUSE_NONE:
        break;
    case MISUSE_OBJ_WRITE:
        p[24] = 0x41;
        break;
    case MISUSE_MEM_READ:
        sink = q[100];
        break;
    case MISUSE_HEAP_WRITE:
        r[30] = 0x42;
        break;
    case MISUSE_FIRST_WORD:
        memset((void *)p, 0x43, 8);
        break;
    case MISUSE_REALLOC_OLD:
        s[10] = 0x44;
        break;
    }
    om_mem_free((void *)s2);
    om_mem_free((void *)keep_r);
    for (int i = 0; i < 8; i++)
        om_obj_free(keep[i]);
    om_heap_delete(h);
}

static int asan_reported(const char *err)
{
    return strstr(err, "AddressSanitizer") != NULL &&
           (strstr(err, "use-after-poison") != NULL ||
            strstr(err, "heap-use-after-free") != NULL);
}

static void expect_report(misuse m, const char *name)
{
    static char err[16384];
    int status = check_run_child(run_child, (void *)(intptr_t)m, err, sizeof err);
    int abnormal = status != -1 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (!abnormal || !asan_reported(err))
        fprintf(stderr, "%s: child status %#x, stderr:\n%s\n", name, (unsigned)status, err);
    CHECK(abnormal);
    CHECK(asan_reported(err));
}

int main(void)
{
    static char err[16384];
    int status = check_run_child(run_child, (void *)(intptr_t)MISUSE_NONE, err, sizeof err);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strstr(err, "AddressSanitizer") == NULL);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        fprintf(stderr, "control child: status %#x, stderr:\n%s\n", (unsigned)status, err);

    expect_report(MISUSE_OBJ_WRITE, "write after om_obj_free");
    expect_report(MISUSE_MEM_READ, "read after om_mem_free");
    expect_report(MISUSE_HEAP_WRITE, "write after free, private heap");
    expect_report(MISUSE_FIRST_WORD, "write over the free-list link");
    expect_report(MISUSE_REALLOC_OLD, "write into a block realloc moved away from");
    return check_report();
}

#else

int main(void)
{
    printf("test-sanitizer: not a sanitizer build (OM_TEST_SANITIZED), skipped\n");
    check_report();
    return 77;
}

#endif
