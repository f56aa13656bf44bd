/*
 * test-secure.c — hardened mode (OM_OPTION_SECURE, OBJMEM_SECURE=1).
 *
 * Each protection is shown in a forked child that must die the promised
 * way: a double free and a corrupted free-list link end in one fatal report
 * (SIGABRT) naming what happened, a linear overflow off an arena hits its
 * guard page (SIGSEGV). Hardened heaps hand out their blocks in an order
 * that differs between heaps (and is not the address order of a default
 * heap), and still pass every heap check under churn. The mode is taken by
 * private heaps created while the option is on; the default heap of this
 * process stays in the default mode (it took it at its first block).
 */
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "objmem.h"
#include "testutil.h"

static char report[4096];

/* A hardened heap; the option stays on, so its arenas get guard pages
 * (a parent test turns it off again when done). */
static om_heap *secure_heap(void)
{
    om_option_set(OM_OPTION_SECURE, 1);
    return om_heap_new();
}

static bool died_with(int status, int signal_number)
{
    return status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == signal_number;
}

/* Under AddressSanitizer a write after free, an overflow into the next
 * (poisoned) block or a fault is ASan's to report before hardened mode
 * sees it: in that build the child may die with ASan's report instead; the
 * release build runs the hardened checks themselves. */
static bool sanitizer_caught(int status)
{
#ifdef OM_TEST_SANITIZED
    return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) != 0 &&
           strstr(report, "ERROR: AddressSanitizer") != NULL;
#else
    (void)status;
    return false;
#endif
}

static void test_option(void)
{
    CHECK(om_option_get(OM_OPTION_SECURE) == 0);
    CHECK(om_option_set(OM_OPTION_SECURE, 2) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_option_set(OM_OPTION_SECURE, -1) == -1);
    CHECK(om_option_set(OM_OPTION_SECURE, 1) == 0 && om_option_get(OM_OPTION_SECURE) == 1);
    CHECK(om_option_set(OM_OPTION_SECURE, 0) == 0);
}

/* ---- Double free ----------------------------------------------------------- */

static void free_twice(void *arg)
{
    size_t size = *(size_t *)arg;
    om_heap *h = secure_heap();
    void *keep = om_heap_malloc(h, size);   /* the pool stays in use */
    void *p = om_heap_malloc(h, size);
    om_mem_free(p);
    om_mem_free(p);
    (void)keep;
}

/* The second free of a block whose pool was full (so the first free made it
 * usable again) and of a block freed long ago, after others. */
static void free_twice_later(void *arg)
{
    (void)arg;
    om_heap *h = secure_heap();
    void *blocks[2000];
    for (size_t i = 0; i < 2000; i++)
        blocks[i] = om_heap_malloc(h, 64);
    om_obj_free(blocks[10]);
    for (size_t i = 100; i < 200; i++)
        om_obj_free(blocks[i]);
    om_obj_free(blocks[10]);
}

static void test_double_free(void)
{
    size_t sizes[] = {1, 16, 48, 256, 512};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int status = check_run_child(free_twice, &sizes[i], report, sizeof report);
        CHECK(died_with(status, SIGABRT));
        CHECK(strstr(report, "om_mem_free(") != NULL);
        CHECK(strstr(report, "double free") != NULL);
    }
    int status = check_run_child(free_twice_later, NULL, report, sizeof report);
    CHECK(died_with(status, SIGABRT));
    CHECK(strstr(report, "om_obj_free(") != NULL && strstr(report, "double free") != NULL);
}

/* Without hardened mode (and without debug hooks) the same double free
 * passes unnoticed: the detection above is hardened mode's own. */
static void free_twice_default(void *arg)
{
    (void)arg;
    om_heap *h = om_heap_new();
    void *keep = om_heap_malloc(h, 32);
    void *p = om_heap_malloc(h, 32);
    om_mem_free(p);
    om_mem_free(p);
    (void)keep;
    _exit(7);
}

static void test_double_free_default_unnoticed(void)
{
    int status = check_run_child(free_twice_default, NULL, report, sizeof report);
#ifdef OM_TEST_VALGRIND
    /* Under `make valgrind` memcheck reports the second free itself (the
     * client requests announce pool blocks) and exits with its error code. */
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 99);
#else
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 7);
#endif
}

/* ---- Corrupted free list ----------------------------------------------------- */

static char forged_target[64] __attribute__((aligned(16)));

/* A write after free puts a plausible raw pointer where the freed block's
 * link is: the allocation that pops the block must refuse to follow it. */
static void overwrite_link(void *arg)
{
    size_t size = *(size_t *)arg;
    om_heap *h = secure_heap();
    void *keep = om_heap_malloc(h, size);
    void *a = om_heap_malloc(h, size);
    void *b = om_heap_malloc(h, size);
    om_mem_free(a);
    om_mem_free(b);
    *(void **)b = forged_target;   /* the write after free */
    void *first = om_heap_malloc(h, size);
    void *second = om_heap_malloc(h, size);
    fprintf(stderr, "followed: %p %p\n", first, second);
    (void)keep;
    _exit(second == forged_target ? 3 : 4);
}

static void test_corrupted_link(void)
{
    size_t sizes[] = {16, 96, 512};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        int status = check_run_child(overwrite_link, &sizes[i], report, sizeof report);
        if (sanitizer_caught(status))
            continue;
        CHECK(died_with(status, SIGABRT));
        CHECK(strstr(report, "free list of pool") != NULL && strstr(report, "corrupted") != NULL);
        CHECK(strstr(report, "followed:") == NULL);
    }
}

/* ---- Guard pages -------------------------------------------------------------- */

static char *arena_of(const void *p)
{
    return (char *)((uintptr_t)p & ~(uintptr_t)(OM_ARENA_SIZE - 1));
}

/* A linear overflow from a block to one byte past its arena. */
static void overflow_off_arena(void *arg)
{
    (void)arg;
    om_heap *h = secure_heap();
    char *p = om_heap_malloc(h, 256);
    char *end = arena_of(p) + OM_ARENA_SIZE;
    for (volatile char *at = p; at <= end; at++)
        *at = 'x';
    _exit(5);
}

static void underflow_off_arena(void *arg)
{
    (void)arg;
    om_heap *h = secure_heap();
    char *p = om_heap_malloc(h, 256);
    volatile char *before = arena_of(p) - 1;
    *before = 'x';
    _exit(5);
}

/* The overflow of a block of a medium arena: the same guards. */
static void overflow_off_medium_arena(void *arg)
{
    (void)arg;
    om_heap *h = secure_heap();
    char *p = om_heap_malloc(h, 100000);
    char *end = arena_of(p) + OM_ARENA_SIZE;
    for (volatile char *at = end - 64; at <= end; at++)
        *at = 'x';
    _exit(5);
}

/* true if the page at p is mapped (msync fails with ENOMEM on a hole). */
static bool page_is_mapped(const void *p)
{
    return msync((void *)((uintptr_t)p & ~(uintptr_t)4095), 4096, MS_ASYNC) == 0;
}

static void test_guard_pages(void)
{
    void (*children[])(void *) = {overflow_off_arena, underflow_off_arena,
                                  overflow_off_medium_arena};
    for (size_t i = 0; i < sizeof children / sizeof *children; i++) {
        int status = check_run_child(children[i], NULL, report, sizeof report);
        CHECK(died_with(status, SIGSEGV) || sanitizer_caught(status));
    }

    /* The faulting pages are guards (mapped, no access), not holes. */
    om_heap *h = secure_heap();
    char *p = om_heap_malloc(h, 64);
    CHECK(p != NULL);
    CHECK(page_is_mapped(arena_of(p) + OM_ARENA_SIZE));
    CHECK(page_is_mapped(arena_of(p) - 1));
    om_heap_delete(h);
    om_option_set(OM_OPTION_SECURE, 0);
}

/* ---- Allocation order --------------------------------------------------------- */

enum { ORDER_BLOCKS = 200 };

/* The pool offsets of the first ORDER_BLOCKS blocks of 48 B from h. */
static void block_order(om_heap *h, uint16_t *offsets)
{
    for (size_t i = 0; i < ORDER_BLOCKS; i++)
        offsets[i] = (uint16_t)((uintptr_t)om_heap_malloc(h, 48) & (OM_POOL_SIZE - 1));
}

static bool is_ascending(const uint16_t *offsets)
{
    for (size_t i = 1; i < ORDER_BLOCKS; i++)
        if (offsets[i] <= offsets[i - 1])
            return false;
    return true;
}

static void test_random_order(void)
{
    uint16_t first[ORDER_BLOCKS], second[ORDER_BLOCKS], plain[ORDER_BLOCKS];
    om_heap *a = secure_heap(), *b = secure_heap();
    om_option_set(OM_OPTION_SECURE, 0);
    om_heap *d = om_heap_new();
    block_order(a, first);
    block_order(b, second);
    block_order(d, plain);
    CHECK(memcmp(first, second, sizeof first) != 0);
    CHECK(!is_ascending(first) && !is_ascending(second));
    CHECK(is_ascending(plain));   /* the default mode carves in address order */
    CHECK(om_heap_check_heap(a) == 0 && om_heap_check_heap(b) == 0);
    om_heap_delete(a);
    om_heap_delete(b);
    om_heap_delete(d);
}

/* ---- Churn: the encoded lists stay consistent ---------------------------------- */

static void test_churn(void)
{
    om_heap *h = secure_heap();
    om_option_set(OM_OPTION_SECURE, 0);
    enum { LIVE = 20000 };
    static void *live[LIVE];
    static size_t sizes[LIVE];
    tu_rng r = {0x5ec0de};
    size_t damaged = 0;
    for (size_t step = 0; step < 400000; step++) {
        size_t i = tu_rng_next(&r) % LIVE;
        if (live[i] != NULL) {
            damaged += ((unsigned char *)live[i])[sizes[i] - 1] != (unsigned char)i;
            om_mem_free(live[i]);
        }
        sizes[i] = 1 + tu_rng_next(&r) % OM_SMALL_SIZE_MAX;
        live[i] = om_heap_malloc(h, sizes[i]);
        memset(live[i], (int)i, sizes[i]);
        if (step % 100000 == 0)
            CHECK(om_heap_check_heap(h) == 0);
    }
    CHECK(damaged == 0);
    for (size_t i = 0; i < LIVE; i++)
        om_mem_free(live[i]);
    CHECK(om_heap_check_heap(h) == 0);
    om_heap_trim(h);
    CHECK(tu_get_stats(h).arenas_current == 0);
    om_heap_delete(h);
}

/* ---- Failure ------------------------------------------------------------------- */

/* The bytes of address space this process has mapped. */
static size_t address_space_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long pages = 0;
    if (f != NULL) {
        if (fscanf(f, "%lu", &pages) != 1)
            pages = 0;
        fclose(f);
    }
    return (size_t)pages * (size_t)sysconf(_SC_PAGESIZE);
}

/* No address space left for a guarded arena: NULL with OM_ENOMEM, no report. */
static void no_address_space(void *arg)
{
    (void)arg;
    om_heap *h = secure_heap();
    size_t room = address_space_bytes() + OM_ARENA_SIZE / 2;
    struct rlimit limit = {room, room};
    if (setrlimit(RLIMIT_AS, &limit) != 0)
        _exit(2);
    void *p = om_heap_malloc(h, 64);
    _exit(p == NULL && om_last_error() == OM_ENOMEM ? 6 : 1);
}

static void *failing_arena_alloc(void *ctx, size_t size)
{
    (void)ctx;
    (void)size;
    return NULL;
}

static void unused_arena_free(void *ctx, void *p, size_t size)
{
    (void)ctx;
    (void)p;
    (void)size;
}

static void test_out_of_memory(void)
{
    int status = check_run_child(no_address_space, NULL, report, sizeof report);
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 6);

    om_arena_allocator failing = {NULL, failing_arena_alloc, unused_arena_free};
    CHECK(om_set_arena_allocator(&failing) == 0);
    om_heap *h = secure_heap();
    om_option_set(OM_OPTION_SECURE, 0);
    CHECK(om_heap_malloc(h, 64) == NULL && om_last_error() == OM_ENOMEM);
    CHECK(om_set_arena_allocator(NULL) == 0);
    void *p = om_heap_malloc(h, 64);   /* the heap works once arenas come */
    CHECK(p != NULL);
    om_mem_free(p);
    CHECK(om_heap_check_heap(h) == 0);
    om_heap_delete(h);
}

int main(void)
{
    if (getenv("OBJMEM_SECURE") != NULL) {
        printf("test-secure: unset OBJMEM_SECURE (the test sets the option itself)\n");
        return 77;
    }
    test_option();
    test_double_free();
    test_double_free_default_unnoticed();
    test_corrupted_link();
    test_guard_pages();
    test_random_order();
    test_churn();
    test_out_of_memory();
    return check_report();
}
