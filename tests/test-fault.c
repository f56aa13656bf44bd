/*
 * test-fault.c — fault injection and om_heap_check.
 *
 *   - om_fail_after: in each domain exactly the n-th allocation from now
 *     fails (NULL, OM_ENOMEM, errno ENOMEM), once; calloc and realloc count,
 *     free and realloc(p, 0) do not; a failed realloc keeps its block; -1
 *     disarms and puts the domain's allocator back;
 *   - om_fail_random: the same seed fails the same allocations; the rate is
 *     about what was asked; bad arguments are OM_EINVAL;
 *   - OBJMEM_FAIL arms a domain at load time (this program run again);
 *   - a workload that cleans up after a failed allocation is run with the
 *     failure at every one of its allocations in turn: each run sees NULL at
 *     the right point, leaves no block behind, and om_heap_check passes;
 *   - om_heap_check passes on a busy heap and reports a corrupted free list
 *     (a write after free) as a fatal error naming what is wrong.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objmem.h"
#include "testutil.h"

static void check_injected_failure(void *p)
{
    CHECK(p == NULL);
    CHECK(om_last_error() == OM_ENOMEM);
    CHECK(errno == ENOMEM);
    CHECK(strstr(om_last_error_message(), "fault injection") != NULL);
    om_clear_error();
    errno = 0;
}

static int same_allocator(const om_allocator *a, const om_allocator *b)
{
    return a->ctx == b->ctx && a->malloc == b->malloc && a->calloc == b->calloc &&
           a->realloc == b->realloc && a->free == b->free;
}

static void test_fail_after(const tu_domain_calls *d)
{
    om_allocator before;
    CHECK(om_get_allocator(d->domain, &before) == 0);
    long failed_before = om_fail_count(d->domain);

    /* The third allocation from now fails, the ones around it do not. */
    CHECK(om_fail_after(d->domain, 2) == 0);
    void *a = d->malloc_fn(100);
    void *b = d->calloc_fn(4, 25);
    CHECK(a != NULL && b != NULL);
    check_injected_failure(d->malloc_fn(100));
    void *c = d->malloc_fn(100);
    CHECK(c != NULL);
    CHECK_EQ_SIZE(om_fail_count(d->domain), failed_before + 1);

    /* calloc and realloc are allocations; a failed realloc keeps its block. */
    memset(a, 0x5C, 100);
    CHECK(om_fail_after(d->domain, 0) == 0);
    check_injected_failure(d->realloc_fn(a, 5000));
    CHECK(((unsigned char *)a)[99] == 0x5C);
    CHECK(om_fail_after(d->domain, 0) == 0);
    check_injected_failure(d->calloc_fn(10, 10));

    /* free never fails, nor counts: the armed failure waits for a malloc. */
    CHECK(om_fail_after(d->domain, 0) == 0);
    d->free_fn(b);
    d->free_fn(c);
    check_injected_failure(d->malloc_fn(1));
    d->free_fn(a);

    /* Disarmed, the domain has its old allocator again. */
    CHECK(om_fail_after(d->domain, -1) == 0);
    om_allocator after;
    CHECK(om_get_allocator(d->domain, &after) == 0);
    CHECK(same_allocator(&before, &after));
    void *p = d->malloc_fn(64);
    CHECK(p != NULL);
    d->free_fn(p);
}

/* The indexes, among `count` allocations, that fail with this seed. */
static size_t random_failures(long per_million, uint64_t seed, size_t count, size_t *first)
{
    CHECK(om_fail_random(OM_DOMAIN_MEM, per_million, seed) == 0);
    size_t failed = 0;
    *first = count;
    for (size_t i = 0; i < count; i++) {
        void *p = om_mem_malloc(32);
        if (p == NULL) {
            if (failed++ == 0)
                *first = i;
        }
        om_mem_free(p);
    }
    CHECK(om_fail_random(OM_DOMAIN_MEM, 0, 0) == 0);
    om_clear_error();
    return failed;
}

static void test_fail_random(void)
{
    size_t first1, first2, first3;
    size_t n1 = random_failures(100000, 42, 100000, &first1);
    size_t n2 = random_failures(100000, 42, 100000, &first2);
    size_t n3 = random_failures(100000, 43, 100000, &first3);
    CHECK_EQ_SIZE(n1, n2);               /* the same seed replays */
    CHECK_EQ_SIZE(first1, first2);
    CHECK(n1 > 9000 && n1 < 11000);      /* 10 % asked */
    CHECK(n3 > 9000 && n3 < 11000);
    CHECK(first1 != first3 || n1 != n3); /* another seed, other failures */

    CHECK(om_fail_random(OM_DOMAIN_MEM, 1000001, 1) == -1);
    CHECK(om_last_error() == OM_EINVAL);
    CHECK(om_fail_random((om_domain)7, 10, 1) == -1);
    CHECK(om_fail_after((om_domain)7, 1) == -1);
    CHECK(om_fail_after(OM_DOMAIN_OBJ, -2) == -1);
    CHECK(om_last_error() == OM_EINVAL);
    CHECK(om_fail_count((om_domain)7) == -1);
    om_clear_error();
}

/* A little program with an out-of-memory path: a growing array of blocks
 * built with malloc, realloc and calloc; on any failure it frees what it
 * made and says how far it got. Returns the allocations it made, or -1
 * after a failure. */
static long build_and_release(void)
{
    enum { BLOCKS = 40 };
    void **blocks = NULL;
    size_t count = 0;
    long allocations = 0;
    for (size_t i = 0; i < BLOCKS; i++) {
        void **grown = om_obj_realloc(blocks, (count + 1) * sizeof *grown);
        if (grown == NULL)
            goto failed;
        allocations++;
        blocks = grown;
        size_t size = (i % 3 == 0) ? 24 : (i % 3 == 1) ? 3000 : 400000;
        blocks[count] = (i % 2) ? om_obj_calloc(1, size) : om_obj_malloc(size);
        if (blocks[count] == NULL)
            goto failed;
        allocations++;
        count++;
    }
    for (size_t i = 0; i < count; i++)
        om_obj_free(blocks[i]);
    om_obj_free(blocks);
    return allocations;
failed:
    for (size_t i = 0; i < count; i++)
        om_obj_free(blocks[i]);
    om_obj_free(blocks);
    return -1;
}

static size_t used_bytes(void)
{
    om_heap_stats st = tu_get_stats(NULL);
    return st.small_used_bytes + st.medium_used_bytes + st.large_bytes;
}

static void test_every_failure_point(void)
{
    size_t used_before = used_bytes();
    long total = build_and_release();
    CHECK(total == 80);
    size_t bad = 0;
    for (long n = 0; n < total; n++) {
        CHECK(om_fail_after(OM_DOMAIN_OBJ, n) == 0);
        errno = 0;
        long got = build_and_release();
        if (got != -1 || om_fail_count(OM_DOMAIN_OBJ) == 0 || used_bytes() != used_before)
            bad++;
        om_heap_check();
        om_clear_error();
    }
    CHECK(om_fail_after(OM_DOMAIN_OBJ, -1) == 0);
    CHECK_EQ_SIZE(bad, 0);
    CHECK(build_and_release() == total);   /* and it works again */
    CHECK_EQ_SIZE(used_bytes(), used_before);
}

/* om_heap_check on a busy heap: blocks of every tier, some freed. */
static void test_check_passes(void)
{
    tu_rng rng = {0x1234567};
    void *blocks[3000];
    for (size_t i = 0; i < 3000; i++) {
        uint64_t r = tu_rng_next(&rng);
        size_t size = (r % 10 < 7) ? r % 512 : (r % 10 < 9) ? 513 + r % 60000 : 300000;
        blocks[i] = om_mem_malloc(size);
        CHECK(blocks[i] != NULL);
    }
    for (size_t i = 0; i < 3000; i += 2)
        om_mem_free(blocks[i]);
    CHECK(om_heap_check() == 0);
    om_heap *h = om_heap_new();
    void *p = om_heap_malloc(h, 100);
    CHECK(om_heap_check_heap(h) == 0);
    om_mem_free(p);
    om_heap_delete(h);
    for (size_t i = 1; i < 3000; i += 2)
        om_mem_free(blocks[i]);
    CHECK(om_heap_check() == 0);
}

/* A write after free of a pool block overwrites its free-list link. */
static void corrupt_pool_child(void *arg)
{
    (void)arg;
    om_heap *h = om_heap_new();
    void *keep = om_heap_malloc(h, 64);
    unsigned char *p = om_heap_malloc(h, 64);
    om_mem_free(p);
    memset(p, 0x41, 16);   /* the bug under test: a write after free */
    om_heap_check_heap(h);
    (void)keep;
}

/* A write after free of a medium run overwrites its bin links. A run of a
 * length that is no class (an aligned 4200-byte block: 33 units) skips the
 * class caches and goes straight back to the bins. */
static void corrupt_medium_child(void *arg)
{
    (void)arg;
    om_heap *h = om_heap_new();
    void *keep = om_heap_malloc(h, 100000);
    unsigned char *r = om_heap_aligned_alloc(h, 256, 4200);
    om_mem_free(r);
    memset(r, 0x42, 16);   /* the bug under test: a write after free */
    om_heap_check_heap(h);
    (void)keep;
}

static void test_check_reports(void (*child)(void *), const char *what)
{
    char err[4096];
    int status = check_run_child(child, NULL, err, sizeof err);
#ifdef OM_TEST_SANITIZED
    /* ASan sees the write after free itself, before om_heap_check runs. */
    int caught = status != -1 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0) &&
                 strstr(err, "AddressSanitizer: use-after-poison") != NULL;
    (void)what;
#else
    int caught = status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
                 strstr(err, "objmem: fatal error: om_heap_check: ") != NULL &&
                 strstr(err, what) != NULL;
#endif
    CHECK(caught);
    if (!caught)
        fprintf(stderr, "--- child stderr:\n%s---\n", err);
}

static void test_environment(const char *self)
{
    char command[4096];
    snprintf(command, sizeof command, "OBJMEM_FAIL=obj:3 '%s' --count-until-failure", self);
    FILE *p = popen(command, "r");
    CHECK(p != NULL);
    char line[128] = "";
    if (p != NULL) {
        if (fgets(line, sizeof line, p) == NULL)
            line[0] = '\0';
        pclose(p);
    }
    CHECK(strcmp(line, "failed at 3\n") == 0);
    snprintf(command, sizeof command, "OBJMEM_FAIL=obj:nonsense '%s' --count-until-failure 2>&1",
             self);
    p = popen(command, "r");
    char out[512] = "";
    if (p != NULL) {
        size_t got = fread(out, 1, sizeof out - 1, p);
        out[got] = '\0';
        pclose(p);
    }
    CHECK(strstr(out, "objmem: ignoring OBJMEM_FAIL=obj:nonsense") != NULL);
}

static int count_until_failure(void)
{
    for (int i = 0; i < 100; i++) {
        void *p = om_obj_malloc(16);
        if (p == NULL) {
            printf("failed at %d\n", i);
            return 0;
        }
        om_obj_free(p);
    }
    printf("never failed\n");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--count-until-failure") == 0)
        return count_until_failure();
    for (size_t i = 0; i < sizeof tu_all_domains / sizeof tu_all_domains[0]; i++)
        test_fail_after(&tu_all_domains[i]);
    test_fail_random();
    test_every_failure_point();
    test_check_passes();
    test_check_reports(corrupt_pool_child, "free-list entry");
    test_check_reports(corrupt_medium_child, "medium bin");
    test_environment(argv[0]);
    return check_report();
}
