/*
 * test-debug.c — the debug hooks (om_setup_debug_hooks, issue 4 item 1).
 *
 * The misuse catalogue: each case runs in a child process (check_run_child).
 * The child installs the hooks (again: it inherits them, and installing
 * twice must be harmless), prints the address it is about to misuse as
 * "test-debug: block %p", and misbehaves. The parent asserts that the child
 * died of SIGABRT with exactly one report on stderr, after that line, that
 * reads "objmem: fatal error: debug hooks: " and contains the case's
 * phrase, the address as %p prints it and the block's "serial":
 *   - 1-byte overflow (small 20-byte, medium 5000-byte, large, OBJ and RAW
 *     blocks; the last guard byte too), seen by free, by realloc and by
 *     om_heap_check without any free: "buffer overflow", "expected 0xfd";
 *   - 1-byte underflow (the byte just before the block, and the first guard
 *     byte): "buffer underflow", "expected 0xfd";
 *   - double free of a small, a medium and a large block: "double free";
 *   - a block freed through another domain, both ways between MEM and OBJ
 *     and between RAW and MEM: "freed with om_obj_free" / "... om_mem_free"
 *     / "... om_raw_free";
 *   - write after free, seen by om_heap_check (small and medium blocks) and
 *     when the block leaves the quarantine (the middle of a 64-byte block,
 *     the last byte of a 300-byte one): "write after free";
 *   - realloc of a freed block: "realloc of a freed block";
 *   - an interior pointer (p + 16 of a debug block), a stack address and a
 *     pointer from the system malloc: the report names the function
 *     ("om_mem_free(") and the address; either a "debug hooks:" report or
 *     the ordinary "not a block objmem handed out" one.
 * In the sanitizer build ASan may see a write into a freed (quarantined)
 * block before the hooks do: for the write-after-free cases an
 * AddressSanitizer report is accepted there too.
 *
 * Non-fatal behaviour, in this process after om_setup_debug_hooks() (which
 * returns 0, twice): fresh memory of every domain and tier reads 0xCD;
 * calloc is zero; realloc keeps the contents and fills grown bytes with
 * 0xCD; om_usable_size is at least the size asked for, and all of it can be
 * written (in a child, which must exit cleanly); a freed block is filled
 * with 0xDD (normal build only) and not handed out again while it is in
 * the quarantine; om_heap_check passes with blocks live and the quarantine
 * full; the RAW domain works; blocks from om_aligned_alloc and a private
 * heap can still be freed with om_mem_free (the header's promise; in a
 * child); and 100,000 random malloc/calloc/realloc/free operations over the
 * three domains and tiers keep every byte, ending with a passing
 * om_heap_check.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objmem.h"
#include "testutil.h"

#define FRESH_BYTE 0xCD
#define FREED_BYTE 0xDD
#define DAMAGE_BYTE 0x5A
#define LARGE_SIZE ((size_t)300000)

static const tu_pattern debug_pattern = {131, 7, 9, 1};

/* ---- Helpers --------------------------------------------------------------- */

/* Writes one byte through a volatile pointer in a function of its own, so
 * that the compiler neither warns about nor removes a deliberate write
 * outside a block. */
static __attribute__((noinline)) void poke(void *p, ptrdiff_t offset, unsigned char value)
{
    volatile unsigned char *b = p;
    b[offset] = value;
}

/* 1 if all n bytes at p equal v (read through volatile: the allocation
 * functions are declared malloc-like, and the compiler may not assume the
 * contents of fresh memory). Reads every stride-th byte and the last one. */
static int all_bytes_strided(const void *p, size_t n, unsigned char v, size_t stride)
{
    const volatile unsigned char *b = p;
    for (size_t i = 0; i < n; i += stride)
        if (b[i] != v)
            return 0;
    return n == 0 || b[n - 1] == v;
}

static int all_bytes(const void *p, size_t n, unsigned char v)
{
    return all_bytes_strided(p, n, v, 1);
}

/* The child announces the address it misuses; the parent reads it back. */
static void announce(const void *p)
{
    fprintf(stderr, "test-debug: block %p\n", p);
    fflush(stderr);
}

#define DOMAINS (sizeof tu_all_domains / sizeof tu_all_domains[0])
#define RAW (&tu_all_domains[0])
#define MEM (&tu_all_domains[1])
#define OBJ (&tu_all_domains[2])

/* Sizes of every tier, with edges. */
static const size_t tier_sizes[] = {
    0, 1, 15, 16, 20, 100, 511, 512, 513, 640, 5000, 70000,
    OM_MEDIUM_SIZE_MAX, OM_MEDIUM_SIZE_MAX + 1, LARGE_SIZE, 2 * MB,
};
#define TIER_SIZES (sizeof tier_sizes / sizeof tier_sizes[0])

/* ---- The misuse catalogue (children) ---------------------------------------- */

/* What a child does to a block of one domain and size. */
typedef enum misuse_kind {
    OVERFLOW_FREE,        /* p[size] damaged, then free */
    OVERFLOW_LAST_GUARD,  /* p[size + 15] damaged, then free */
    OVERFLOW_REALLOC,     /* p[size] damaged, then realloc */
    OVERFLOW_CHECK,       /* p[size] damaged, then om_heap_check, no free */
    UNDERFLOW_FREE,       /* p[-1] damaged, then free */
    UNDERFLOW_FIRST_GUARD,/* p[-16] damaged, then free */
    DOUBLE_FREE,          /* free, free */
    REALLOC_FREED,        /* free, realloc */
    WRONG_DOMAIN,         /* allocated in one domain, freed in another */
    WRITE_AFTER_FREE_CHECK,   /* free, write, om_heap_check */
    WRITE_AFTER_FREE_EVICT,   /* free, write, push it out of the quarantine */
    WRITE_AFTER_FREE_EVICT_LAST, /* the same, writing its last byte */
    INTERIOR_POINTER,     /* free(p + 16) */
    STACK_POINTER,        /* free(a stack address) */
    SYSTEM_POINTER,       /* free(a pointer from the C library's malloc) */
} misuse_kind;

typedef struct misuse_case {
    const char *name;
    misuse_kind kind;
    const tu_domain_calls *alloc;   /* the domain that allocates */
    const tu_domain_calls *release; /* the domain that frees (WRONG_DOMAIN) */
    size_t size;
    const char *phrase;          /* must be in the report */
    const char *phrase2;         /* must be in it too, case-insensitively (or NULL) */
    unsigned flags;
} misuse_case;

enum {
    /* The pointer is not one of the hooks' blocks: the report may be the
     * hooks' or the ordinary invalid-pointer one, and has no serial. */
    FLAG_FOREIGN = 1,
    /* ASan may see the write into freed memory first (sanitizer build). */
    FLAG_ASAN_MAY_CATCH = 2,
};

static void misuse_child(void *arg)
{
    const misuse_case *c = arg;
    const tu_domain_calls *d = c->alloc;
    CHECK(om_setup_debug_hooks() == 0);
    switch (c->kind) {
    case OVERFLOW_FREE:
    case OVERFLOW_LAST_GUARD:
    case OVERFLOW_REALLOC:
    case OVERFLOW_CHECK: {
        unsigned char *p = d->malloc_fn(c->size);
        memset(p, 0x11, c->size);
        announce(p);
        poke(p, (ptrdiff_t)c->size + (c->kind == OVERFLOW_LAST_GUARD ? 15 : 0), DAMAGE_BYTE);
        if (c->kind == OVERFLOW_REALLOC) {
            void *q = d->realloc_fn(p, c->size * 2);
            d->free_fn(q);
        } else if (c->kind == OVERFLOW_CHECK) {
            om_heap_check();
        } else {
            d->free_fn(p);
        }
        break;
    }
    case UNDERFLOW_FREE:
    case UNDERFLOW_FIRST_GUARD: {
        unsigned char *p = d->malloc_fn(c->size);
        memset(p, 0x11, c->size);
        announce(p);
        poke(p, c->kind == UNDERFLOW_FREE ? -1 : -16, DAMAGE_BYTE);
        d->free_fn(p);
        break;
    }
    case DOUBLE_FREE: {
        void *keep = d->malloc_fn(c->size);
        void *p = d->malloc_fn(c->size);
        announce(p);
        d->free_fn(p);
        d->free_fn(p);
        d->free_fn(keep);
        break;
    }
    case REALLOC_FREED: {
        void *p = d->malloc_fn(c->size);
        announce(p);
        d->free_fn(p);
        void *q = d->realloc_fn(p, c->size + 100);
        d->free_fn(q);
        break;
    }
    case WRONG_DOMAIN: {
        void *p = d->malloc_fn(c->size);
        announce(p);
        c->release->free_fn(p);
        break;
    }
    case WRITE_AFTER_FREE_CHECK:
    case WRITE_AFTER_FREE_EVICT:
    case WRITE_AFTER_FREE_EVICT_LAST: {
        void *keep = d->malloc_fn(c->size);
        unsigned char *p = d->malloc_fn(c->size);
        announce(p);
        d->free_fn(p);
        poke(p, (ptrdiff_t)(c->kind == WRITE_AFTER_FREE_EVICT_LAST ? c->size - 1 : c->size / 2),
             DAMAGE_BYTE);   /* the bug under test */
        if (c->kind == WRITE_AFTER_FREE_CHECK) {
            om_heap_check();
        } else {
            /* More frees than the quarantine holds (1024) push it out. */
            for (int i = 0; i < 3000; i++)
                d->free_fn(d->malloc_fn(48));
        }
        d->free_fn(keep);
        break;
    }
    case INTERIOR_POINTER: {
        unsigned char *p = d->malloc_fn(c->size);
        memset(p, 0x11, c->size);
        announce(p + 16);
        d->free_fn(p + 16);
        break;
    }
    case STACK_POINTER: {
        _Alignas(16) unsigned char buf[512];
        memset(buf, 0, sizeof buf);
        announce(buf + 256);
        d->free_fn(buf + 256);
        break;
    }
    case SYSTEM_POINTER: {
        unsigned char *p = malloc(256);
        memset(p, 0, 256);
        announce(p);
        d->free_fn(p);
        free(p);
        break;
    }
    }
}

static void run_misuse(const misuse_case *c)
{
    static char err[32768];
    int status = check_run_child(misuse_child, (void *)c, err, sizeof err);

    /* The address the child misused, and what it wrote after that line. */
    const char *mark = strstr(err, "test-debug: block ");
    char addr[64] = "";
    const char *after = err;
    if (mark != NULL) {
        if (sscanf(mark + strlen("test-debug: block "), "%63s", addr) != 1)
            addr[0] = '\0';
        after = strchr(mark, '\n');
        if (after == NULL)
            after = mark + strlen(mark);
    }
    const char *report = strstr(after, "objmem: fatal error: ");

    int aborted = status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    int hooks = report != NULL && strncmp(report, "objmem: fatal error: debug hooks: ",
                                          strlen("objmem: fatal error: debug hooks: ")) == 0;
    int ok = aborted && addr[0] != '\0' && report != NULL &&
             tu_count_occurrences(after, "objmem: fatal error: ") == 1 &&
             strstr(report, c->phrase) != NULL && strstr(report, addr) != NULL &&
             (c->phrase2 == NULL || strcasestr(report, c->phrase2) != NULL);
    if (c->flags & FLAG_FOREIGN)
        ok = ok && (hooks || strstr(report, "not a block objmem handed out") != NULL);
    else
        ok = ok && hooks && strstr(report, "serial") != NULL;
#ifdef OM_TEST_SANITIZED
    if (!ok && (c->flags & FLAG_ASAN_MAY_CATCH))
        ok = status != -1 && !(WIFEXITED(status) && WEXITSTATUS(status) == 0) &&
             strstr(after, "AddressSanitizer") != NULL;
#endif
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "--- misuse case '%s' (status %#x; wanted SIGABRT, one \"debug hooks:\" "
                        "report with \"%s\"%s%s, address %s%s):\n%s---\n",
                c->name, (unsigned)status, c->phrase, c->phrase2 ? " and " : "",
                c->phrase2 ? c->phrase2 : "", addr[0] ? addr : "(none printed)",
                (c->flags & FLAG_FOREIGN) ? "" : " and \"serial\"", err);
}

static const misuse_case misuse_cases[] = {
    {"1-byte overflow of a small block, seen by free", OVERFLOW_FREE, MEM, NULL, 20,
     "buffer overflow", "expected 0xfd", 0},
    {"1-byte overflow of a medium block, seen by free", OVERFLOW_FREE, MEM, NULL, 5000,
     "buffer overflow", "expected 0xfd", 0},
    {"1-byte overflow of a large block, seen by free", OVERFLOW_FREE, OBJ, NULL, LARGE_SIZE,
     "buffer overflow", "expected 0xfd", 0},
    {"1-byte overflow of an OBJ block, seen by free", OVERFLOW_FREE, OBJ, NULL, 20,
     "buffer overflow", "expected 0xfd", 0},
    {"1-byte overflow of a RAW block, seen by free", OVERFLOW_FREE, RAW, NULL, 20,
     "buffer overflow", "expected 0xfd", 0},
    {"overflow into the last guard byte, seen by free", OVERFLOW_LAST_GUARD, MEM, NULL, 20,
     "buffer overflow", "expected 0xfd", 0},
    {"1-byte overflow, seen by realloc", OVERFLOW_REALLOC, MEM, NULL, 20,
     "buffer overflow", "expected 0xfd", 0},
    {"1-byte overflow, seen by om_heap_check without a free", OVERFLOW_CHECK, MEM, NULL, 20,
     "buffer overflow", "expected 0xfd", 0},
    {"1-byte overflow of a medium block, seen by om_heap_check", OVERFLOW_CHECK, OBJ, NULL,
     5000, "buffer overflow", "expected 0xfd", 0},
    {"1-byte underflow, seen by free", UNDERFLOW_FREE, MEM, NULL, 20,
     "buffer underflow", "expected 0xfd", 0},
    {"underflow into the first guard byte, seen by free", UNDERFLOW_FIRST_GUARD, OBJ, NULL,
     5000, "buffer underflow", "expected 0xfd", 0},
    {"double free of a small block", DOUBLE_FREE, MEM, NULL, 20, "double free", NULL, 0},
    {"double free of a medium block", DOUBLE_FREE, OBJ, NULL, 5000, "double free", NULL, 0},
    {"double free of a large block", DOUBLE_FREE, MEM, NULL, LARGE_SIZE, "double free", NULL,
     0},
    {"om_mem_malloc block freed with om_obj_free", WRONG_DOMAIN, MEM, OBJ, 64,
     "freed with om_obj_free", NULL, 0},
    {"om_obj_malloc block freed with om_mem_free", WRONG_DOMAIN, OBJ, MEM, 64,
     "freed with om_mem_free", NULL, 0},
    {"om_raw_malloc block freed with om_mem_free", WRONG_DOMAIN, RAW, MEM, 64,
     "freed with om_mem_free", NULL, 0},
    {"om_mem_malloc block freed with om_raw_free", WRONG_DOMAIN, MEM, RAW, 64,
     "freed with om_raw_free", NULL, 0},
    {"write after free of a small block, seen by om_heap_check", WRITE_AFTER_FREE_CHECK, MEM,
     NULL, 64, "write after free", NULL, FLAG_ASAN_MAY_CATCH},
    {"write after free of a medium block, seen by om_heap_check", WRITE_AFTER_FREE_CHECK, OBJ,
     NULL, 5000, "write after free", NULL, FLAG_ASAN_MAY_CATCH},
    {"write after free, seen when the block leaves the quarantine", WRITE_AFTER_FREE_EVICT,
     MEM, NULL, 64, "write after free", NULL, FLAG_ASAN_MAY_CATCH},
    /* Above 96 bytes the eviction reads the first 64 and the last 32. */
    {"write after free of the last byte of a 300-byte block, seen when it leaves the "
     "quarantine", WRITE_AFTER_FREE_EVICT_LAST, OBJ, NULL, 300, "write after free",
     "byte 299 of the freed block", FLAG_ASAN_MAY_CATCH},
    {"realloc of a freed block", REALLOC_FREED, MEM, NULL, 64, "realloc of a freed block",
     NULL, 0},
    {"realloc of a freed medium block", REALLOC_FREED, OBJ, NULL, 5000,
     "realloc of a freed block", NULL, 0},
    {"interior pointer (p + 16)", INTERIOR_POINTER, MEM, NULL, 64, "om_mem_free(", NULL,
     FLAG_FOREIGN},
    {"interior pointer (p + 16) of an OBJ block", INTERIOR_POINTER, OBJ, NULL, 5000,
     "om_obj_free(", NULL, FLAG_FOREIGN},
    {"foreign pointer (a stack address)", STACK_POINTER, MEM, NULL, 0, "om_mem_free(", NULL,
     FLAG_FOREIGN},
    {"foreign pointer (from the C library's malloc)", SYSTEM_POINTER, OBJ, NULL, 0,
     "om_obj_free(", NULL, FLAG_FOREIGN},
};

static void test_misuse_catalogue(void)
{
    for (size_t i = 0; i < sizeof misuse_cases / sizeof misuse_cases[0]; i++)
        run_misuse(&misuse_cases[i]);
}

/* ---- Non-fatal behaviour ------------------------------------------------------ */

static void test_setup_twice(void)
{
    CHECK(om_setup_debug_hooks() == 0);
    CHECK(om_setup_debug_hooks() == 0);
    void *p = om_mem_malloc(40);
    CHECK(p != NULL);
    CHECK(om_setup_debug_hooks() == 0);   /* idempotent with a block live */
    om_mem_free(p);
}

/* Fresh memory reads 0xCD in every byte; usable size covers the request;
 * the block is aligned. */
static void test_fresh_fill(void)
{
    for (size_t d = 0; d < DOMAINS; d++) {
        const tu_domain_calls *dc = &tu_all_domains[d];
        size_t bad_fill = 0, bad_usable = 0, bad_align = 0, null = 0;
        for (size_t i = 0; i < TIER_SIZES; i++) {
            size_t n = tier_sizes[i];
            unsigned char *p = dc->malloc_fn(n);
            if (p == NULL) {
                null++;
                continue;
            }
            if (!all_bytes(p, n, FRESH_BYTE))
                bad_fill++;
            if (!tu_is_aligned(p))
                bad_align++;
            if (dc->domain != OM_DOMAIN_RAW && om_usable_size(p) < n)
                bad_usable++;
            dc->free_fn(p);
        }
        CHECK_EQ_SIZE(null, 0);
        CHECK_EQ_SIZE(bad_fill, 0);
        CHECK_EQ_SIZE(bad_usable, 0);
        CHECK_EQ_SIZE(bad_align, 0);
        if (bad_fill || bad_usable || bad_align)
            fprintf(stderr, "  (fresh blocks of domain %s)\n", dc->name);
    }
    /* malloc(0) still gives distinct, freeable pointers. */
    void *a = om_mem_malloc(0), *b = om_mem_malloc(0);
    CHECK(a != NULL && b != NULL && a != b);
    om_mem_free(a);
    om_mem_free(b);
}

/* calloc zeroes, also when the memory comes back from the quarantine. */
static void test_calloc_zero(void)
{
    for (size_t d = 0; d < DOMAINS; d++) {
        const tu_domain_calls *dc = &tu_all_domains[d];
        size_t bad = 0;
        for (int round = 0; round < 2; round++) {
            for (size_t i = 0; i < TIER_SIZES; i++) {
                size_t n = tier_sizes[i];
                unsigned char *p = dc->calloc_fn(1, n);
                if (p == NULL || !tu_is_zero(p, n))
                    bad++;
                if (p != NULL)
                    memset(p, 0x77, n);
                dc->free_fn(p);
                p = dc->calloc_fn(n > 4 ? n / 4 : 1, 4);
                if (p == NULL || !tu_is_zero(p, n > 4 ? n / 4 * 4 : 4))
                    bad++;
                dc->free_fn(p);
            }
            /* Flush the quarantine so that the second round reuses memory. */
            for (int i = 0; i < 1100; i++)
                dc->free_fn(dc->malloc_fn(16 + (size_t)(i % 8) * 600));
        }
        CHECK_EQ_SIZE(bad, 0);
    }
}

/* realloc keeps the contents and fills grown bytes with 0xCD, in every
 * domain and across tiers, up and down. */
static void test_realloc_contents(void)
{
    static const size_t steps[] = {20, 100, 512, 513, 5000, 70000, LARGE_SIZE, 2 * MB,
                                   600000, 30000, 700, 300, 10, 1};
    for (size_t d = 0; d < DOMAINS; d++) {
        const tu_domain_calls *dc = &tu_all_domains[d];
        size_t bad_kept = 0, bad_grown = 0, bad_usable = 0;
        size_t size = steps[0];
        unsigned char *p = dc->malloc_fn(size);
        CHECK(p != NULL);
        tu_fill_pattern(&debug_pattern, p, size, 1);
        for (size_t i = 1; i < sizeof steps / sizeof steps[0]; i++) {
            size_t n = steps[i];
            unsigned char *q = dc->realloc_fn(p, n);
            CHECK(q != NULL);
            if (q == NULL)
                break;
            size_t kept = size < n ? size : n;
            if (!tu_has_pattern(&debug_pattern, q, kept, (unsigned)i))
                bad_kept++;
            if (n > size && !all_bytes(q + size, n - size, FRESH_BYTE))
                bad_grown++;
            if (dc->domain != OM_DOMAIN_RAW && om_usable_size(q) < n)
                bad_usable++;
            tu_fill_pattern(&debug_pattern, q, n, (unsigned)i + 1);
            p = q;
            size = n;
        }
        dc->free_fn(p);
        CHECK_EQ_SIZE(bad_kept, 0);
        CHECK_EQ_SIZE(bad_grown, 0);
        CHECK_EQ_SIZE(bad_usable, 0);
        if (bad_kept || bad_grown || bad_usable)
            fprintf(stderr, "  (realloc in domain %s)\n", dc->name);
    }
    /* realloc(NULL, n) is malloc(n): fresh bytes. */
    unsigned char *p = om_obj_realloc(NULL, 300);
    CHECK(p != NULL && all_bytes(p, 300, FRESH_BYTE));
    om_obj_free(p);
}

/* Every byte om_usable_size reports may be written: a child fills them all
 * and frees, and must exit cleanly (no overflow report). */
static void usable_child(void *arg)
{
    (void)arg;
    CHECK(om_setup_debug_hooks() == 0);
    for (size_t i = 0; i < TIER_SIZES; i++) {
        unsigned char *p = om_mem_malloc(tier_sizes[i]);
        size_t u = om_usable_size(p);
        memset(p, 0x66, u);
        unsigned char *q = om_obj_malloc(tier_sizes[i]);
        memset(q, 0x66, om_usable_size(q));
        om_mem_free(p);
        om_obj_free(q);
    }
    om_heap_check();
    _exit(check_failed ? 1 : 0);
}

/* The header's promises outside the domain allocators still hold with the
 * hooks on: "Free it [om_aligned_alloc] with om_mem_free or om_obj_free",
 * and om_heap_malloc: "Any om_*_free, om_*_realloc and om_usable_size
 * accepts the result". A child does both and must exit cleanly. */
static void bypass_child(void *arg)
{
    (void)arg;
    CHECK(om_setup_debug_hooks() == 0);
    void *a = om_aligned_alloc(64, 100);
    void *b = om_aligned_alloc(4096, 5000);
    CHECK(a != NULL && b != NULL && om_usable_size(a) >= 100 && om_usable_size(b) >= 5000);
    om_mem_free(a);
    om_obj_free(b);
    om_heap *h = om_heap_new();
    void *c = om_heap_malloc(h, 100);
    void *e = om_heap_malloc(h, 5000);
    CHECK(c != NULL && e != NULL && om_usable_size(c) >= 100);
    om_mem_free(c);
    om_obj_free(e);
    om_heap_delete(h);
    om_heap_check();
    _exit(check_failed ? 1 : 0);
}

static void run_clean_child(void (*child)(void *), const char *what)
{
    static char err[16384];
    int status = check_run_child(child, NULL, err, sizeof err);
    int clean = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    CHECK(clean);
    if (!clean)
        fprintf(stderr, "--- %s (status %#x):\n%s---\n", what, (unsigned)status, err);
}

static void test_usable_size(void)
{
    run_clean_child(usable_child, "writing every usable byte then freeing");
    run_clean_child(bypass_child,
                    "om_aligned_alloc and om_heap_malloc blocks freed with om_mem_free");
}

/* A freed block is filled with 0xDD and not handed out again while it is
 * in the quarantine. */
static void test_quarantine(void)
{
    static const size_t sizes[] = {16, 64, 500, 5000, 70000, LARGE_SIZE};
    size_t reused = 0, unfilled = 0;
    for (size_t d = 0; d < DOMAINS; d++) {
        const tu_domain_calls *dc = &tu_all_domains[d];
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            unsigned char *p = dc->malloc_fn(sizes[i]);
            memset(p, 0x33, sizes[i]);
            dc->free_fn(p);
#ifndef OM_TEST_SANITIZED
            /* Reading freed memory is the test's own misuse: only where no
             * sanitizer watches it. The block is still in the quarantine. */
            if (!all_bytes(p, sizes[i], FREED_BYTE))
                unfilled++;
#endif
            unsigned char *q = dc->malloc_fn(sizes[i]);
            unsigned char *r = dc->malloc_fn(sizes[i]);
            if (q == p || r == p)
                reused++;
            dc->free_fn(q);
            dc->free_fn(r);
        }
    }
    CHECK_EQ_SIZE(reused, 0);
    CHECK_EQ_SIZE(unfilled, 0);

    /* Not reused for as long as it is among the last 1024 freed. */
    void *p = om_mem_malloc(48);
    om_mem_free(p);
    size_t hits = 0;
    void *held[1000];
    for (size_t i = 0; i < 1000; i++) {
        held[i] = om_mem_malloc(48);
        if (held[i] == p)
            hits++;
        if (i % 2)
            om_mem_free(held[i]);
    }
    for (size_t i = 0; i < 1000; i += 2)
        om_mem_free(held[i]);
    CHECK_EQ_SIZE(hits, 0);
}

/* om_heap_check passes with blocks live and the quarantine full. */
static void test_check_clean(void)
{
    enum { N = 4000 };
    static void *blocks[N];
    static const tu_domain_calls *owner[N];
    tu_rng rng = {0xdeb0c0de};
    CHECK(om_heap_check() == 0);
    for (size_t i = 0; i < N; i++) {
        uint64_t r = tu_rng_next(&rng);
        size_t size = (r % 10 < 7) ? r % 512 : (r % 10 < 9) ? 513 + r % 60000 : 300000;
        owner[i] = &tu_all_domains[(r >> 32) % DOMAINS];
        blocks[i] = owner[i]->malloc_fn(size);
        CHECK(blocks[i] != NULL);
        if (i % 3 == 0)
            memset(blocks[i], 0x42, size);
    }
    CHECK(om_heap_check() == 0);
    for (size_t i = 0; i < N; i += 2)
        owner[i]->free_fn(blocks[i]);   /* 2000 frees: the quarantine is full */
    CHECK(om_heap_check() == 0);
    for (size_t i = 1; i < N; i += 2)
        owner[i]->free_fn(blocks[i]);
    CHECK(om_heap_check() == 0);
    CHECK(om_heap_check_heap(NULL) == 0);
}

/* The RAW domain under the hooks. */
static void test_raw(void)
{
    unsigned char *p = om_raw_malloc(100);
    CHECK(p != NULL && all_bytes(p, 100, FRESH_BYTE));
    tu_fill_pattern(&debug_pattern, p, 100, 9);
    unsigned char *q = om_raw_realloc(p, 10000);
    CHECK(q != NULL && tu_has_pattern(&debug_pattern, q, 100, 9) &&
          all_bytes(q + 100, 9900, FRESH_BYTE));
    unsigned char *z = om_raw_calloc(100, 100);
    CHECK(z != NULL && tu_is_zero(z, 10000));
    om_raw_free(q);
    om_raw_free(z);
    om_raw_free(NULL);
    om_mem_free(NULL);
    om_obj_free(NULL);
}

/* 100,000 random operations over the three domains and tiers. */
typedef struct slot {
    unsigned char *p;
    size_t size;
    unsigned seed;
    const tu_domain_calls *d;
} slot;

static size_t random_size(tu_rng *rng)
{
    uint64_t r = tu_rng_next(rng);
    unsigned pick = (unsigned)(r % 100);
    r >>= 8;
    if (pick < 75)
        return r % (OM_SMALL_SIZE_MAX + 1);
    if (pick < 97)
        return OM_SMALL_SIZE_MAX + 1 + r % 16000;
    if (pick < 99)
        return OM_SMALL_SIZE_MAX + 1 + r % (OM_MEDIUM_SIZE_MAX - OM_SMALL_SIZE_MAX);
    return OM_MEDIUM_SIZE_MAX + 1 + r % (512 * KB);
}

static int slot_intact(const slot *s)
{
    size_t stride = s->size > 4096 ? 61 : 1;
    return tu_has_pattern_range(&debug_pattern, s->p, 0, s->size, stride, s->seed);
}

static void test_random_operations(void)
{
    enum { SLOTS = 1024 };
    static slot slots[SLOTS];
    const size_t ops = OM_TEST_SCALE(100000);
    tu_rng rng = {0x5eed0de6};
    size_t failed_alloc = 0, bad_contents = 0, bad_fresh = 0, bad_zero = 0, bad_usable = 0;
    unsigned seed = 1;
    for (size_t op = 0; op < ops; op++) {
        slot *s = &slots[tu_rng_next(&rng) % SLOTS];
        uint64_t r = tu_rng_next(&rng);
        if (s->p == NULL) {
            s->d = &tu_all_domains[r % DOMAINS];
            s->size = random_size(&rng);
            int zeroed = (r >> 8) % 4 == 0;
            s->p = zeroed ? s->d->calloc_fn(1, s->size) : s->d->malloc_fn(s->size);
            if (s->p == NULL) {
                failed_alloc++;
                continue;
            }
            size_t stride = s->size > 4096 ? 61 : 1;
            if (zeroed && !all_bytes_strided(s->p, s->size, 0, stride))
                bad_zero++;
            if (!zeroed && !all_bytes_strided(s->p, s->size, FRESH_BYTE, stride))
                bad_fresh++;
        } else if ((r >> 8) % 2 == 0) {
            if (!slot_intact(s))
                bad_contents++;
            s->d->free_fn(s->p);
            s->p = NULL;
            continue;
        } else {
            if (!slot_intact(s))
                bad_contents++;
            size_t n = random_size(&rng);
            unsigned char *q = s->d->realloc_fn(s->p, n);
            if (q == NULL) {
                failed_alloc++;
                continue;
            }
            size_t kept = s->size < n ? s->size : n;
            size_t stride = kept > 4096 ? 61 : 1;
            if (!tu_has_pattern_range(&debug_pattern, q, 0, kept, stride, s->seed))
                bad_contents++;
            if (n > s->size &&
                !all_bytes_strided(q + s->size, n - s->size, FRESH_BYTE, stride))
                bad_fresh++;
            s->p = q;
            s->size = n;
        }
        if (s->d->domain != OM_DOMAIN_RAW && om_usable_size(s->p) < s->size)
            bad_usable++;
        s->seed = seed++;
        tu_fill_pattern(&debug_pattern, s->p, s->size, s->seed);
    }
    CHECK_EQ_SIZE(failed_alloc, 0);
    CHECK_EQ_SIZE(bad_contents, 0);
    CHECK_EQ_SIZE(bad_fresh, 0);
    CHECK_EQ_SIZE(bad_zero, 0);
    CHECK_EQ_SIZE(bad_usable, 0);
    CHECK(om_heap_check() == 0);
    for (size_t i = 0; i < SLOTS; i++) {
        if (slots[i].p != NULL) {
            if (!slot_intact(&slots[i]))
                bad_contents++;
            slots[i].d->free_fn(slots[i].p);
            slots[i].p = NULL;
        }
    }
    CHECK_EQ_SIZE(bad_contents, 0);
    CHECK(om_heap_check() == 0);
}

int main(void)
{
    test_setup_twice();
    test_fresh_fill();
    test_calloc_zero();
    test_realloc_contents();
    test_usable_size();
    test_quarantine();
    test_check_clean();
    test_raw();
    test_random_operations();
    test_misuse_catalogue();
    CHECK(om_heap_check() == 0);
    return check_report();
}
