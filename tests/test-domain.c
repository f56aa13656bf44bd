/*
 * test-domain.c — the three domains, pluggable allocators, errors, foreign
 * pointers and the thread-safe RAW domain.
 *
 *   - om_get_allocator/om_set_allocator round-trip for RAW, MEM and OBJ: a
 *     counting wrapper that forwards to the saved allocator sees exactly the
 *     calls of its own domain, with the arguments given; restoring the saved
 *     allocator stops that;
 *   - a replacing (non-forwarding) allocator receives every call;
 *   - bad arguments: unknown domain, NULL pointers, incomplete allocators give
 *     -1 and OM_EINVAL with a message, and change nothing; om_clear_error;
 *     a successful call does not clear an error; errors are per thread;
 *   - foreign pointers (plain malloc, om_raw_*, static and stack storage)
 *     given to om_mem_free, om_obj_free, the MEM/OBJ/heap realloc functions
 *     and om_usable_size are fatal: the child process aborts after one
 *     report naming the call, the address and "not in any objmem arena";
 *     RAW blocks keep working with om_raw_*;
 *   - the RAW domain's contract, and RAW used from several threads at once.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "objmem.h"
#include "testutil.h"

/* ------------------------------------------------------------------------ */
/* Helpers                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct domain_fns {
    const char *name;
    om_domain domain;
    void *(*malloc_fn)(size_t size);
    void *(*calloc_fn)(size_t count, size_t size);
    void *(*realloc_fn)(void *ptr, size_t size);
    void (*free_fn)(void *ptr);
} domain_fns;

static const domain_fns domains[OM_DOMAIN_COUNT] = {
    {"raw", OM_DOMAIN_RAW, tu_raw_malloc, tu_raw_calloc, tu_raw_realloc, om_raw_free},
    {"mem", OM_DOMAIN_MEM, tu_mem_malloc, tu_mem_calloc, tu_mem_realloc, om_mem_free},
    {"obj", OM_DOMAIN_OBJ, tu_obj_malloc, tu_obj_calloc, tu_obj_realloc, om_obj_free},
};

static const tu_pattern byte_pattern = {37, 11, 8, 3};

static int same_allocator(const om_allocator *a, const om_allocator *b)
{
    return a->ctx == b->ctx && a->malloc == b->malloc && a->calloc == b->calloc &&
           a->realloc == b->realloc && a->free == b->free;
}

/* Sizes the compiler must not see as constants (alloc_size warnings). */
static volatile size_t volatile_size_max = SIZE_MAX;
static volatile size_t volatile_ptrdiff_max = (size_t)PTRDIFF_MAX;

/* An error was recorded with this code and a non-empty message. */
static int error_is(om_error code)
{
    const char *msg = om_last_error_message();
    return om_last_error() == code && msg != NULL && msg[0] != '\0';
}

/* ------------------------------------------------------------------------ */
/* A counting allocator that forwards to the one it replaced                 */
/* ------------------------------------------------------------------------ */

typedef struct counting {
    om_allocator inner;
    size_t mallocs, callocs, reallocs, frees;
    size_t last_size, last_count;
    void *last_ptr;
    size_t wrong_ctx;
    void *self; /* the ctx the hooks must receive */
} counting;

static void *counting_malloc(void *ctx, size_t size)
{
    counting *c = ctx;
    if (c->self != c)
        c->wrong_ctx++;
    c->mallocs++;
    c->last_size = size;
    return c->inner.malloc(c->inner.ctx, size);
}

static void *counting_calloc(void *ctx, size_t count, size_t size)
{
    counting *c = ctx;
    if (c->self != c)
        c->wrong_ctx++;
    c->callocs++;
    c->last_count = count;
    c->last_size = size;
    return c->inner.calloc(c->inner.ctx, count, size);
}

static void *counting_realloc(void *ctx, void *ptr, size_t size)
{
    counting *c = ctx;
    if (c->self != c)
        c->wrong_ctx++;
    c->reallocs++;
    c->last_ptr = ptr;
    c->last_size = size;
    return c->inner.realloc(c->inner.ctx, ptr, size);
}

static void counting_free(void *ctx, void *ptr)
{
    counting *c = ctx;
    if (c->self != c)
        c->wrong_ctx++;
    if (ptr)
        c->frees++;
    c->last_ptr = ptr;
    c->inner.free(c->inner.ctx, ptr);
}

static void counting_init(counting *c, om_domain domain, om_allocator *as_allocator)
{
    memset(c, 0, sizeof *c);
    c->self = c;
    CHECK(om_get_allocator(domain, &c->inner) == 0);
    *as_allocator = (om_allocator){c, counting_malloc, counting_calloc, counting_realloc,
                                   counting_free};
}

static size_t counting_total(const counting *c)
{
    return c->mallocs + c->callocs + c->reallocs + c->frees;
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

static void test_wrap_each_domain(void)
{
    for (size_t di = 0; di < OM_DOMAIN_COUNT; di++) {
        const domain_fns *d = &domains[di];
        om_allocator saved;
        memset(&saved, 0, sizeof saved);
        CHECK(om_get_allocator(d->domain, &saved) == 0);
        CHECK(saved.malloc && saved.calloc && saved.realloc && saved.free);

        /* A block from before the switch, freed after it. */
        void *before = d->malloc_fn(40);
        CHECK(before != NULL);
        if (before)
            tu_fill_pattern(&byte_pattern, before, 40, 1);

        counting c;
        om_allocator wrapper;
        counting_init(&c, d->domain, &wrapper);
        CHECK(same_allocator(&c.inner, &saved));
        CHECK(om_set_allocator(d->domain, &wrapper) == 0);
        om_allocator now;
        CHECK(om_get_allocator(d->domain, &now) == 0);
        CHECK(same_allocator(&now, &wrapper));

        void *p = d->malloc_fn(24);
        CHECK(p != NULL);
        CHECK_EQ_SIZE(c.mallocs, 1);
        CHECK_EQ_SIZE(c.last_size, 24);
        if (p)
            tu_fill_pattern(&byte_pattern, p, 24, 2);

        void *q = d->calloc_fn(3, 8);
        CHECK(q != NULL && tu_is_zero(q, 24));
        CHECK_EQ_SIZE(c.callocs, 1);
        CHECK_EQ_SIZE(c.last_count, 3);
        CHECK_EQ_SIZE(c.last_size, 8);

        void *r = d->realloc_fn(p, 300);
        CHECK(r != NULL);
        CHECK_EQ_SIZE(c.reallocs, 1);
        CHECK(c.last_ptr == p);
        CHECK_EQ_SIZE(c.last_size, 300);
        CHECK(r && tu_has_pattern(&byte_pattern, r, 24, 2));
        if (r)
            p = r;

        d->free_fn(p);
        CHECK_EQ_SIZE(c.frees, 1);
        CHECK(c.last_ptr == p);
        d->free_fn(q);
        CHECK_EQ_SIZE(c.frees, 2);
        CHECK(before && tu_has_pattern(&byte_pattern, before, 40, 1));
        d->free_fn(before);
        CHECK_EQ_SIZE(c.frees, 3);
        CHECK_EQ_SIZE(c.wrong_ctx, 0);

        /* The other domains do not reach this wrapper. */
        size_t total = counting_total(&c);
        for (size_t other = 0; other < OM_DOMAIN_COUNT; other++) {
            if (other == di)
                continue;
            void *o = domains[other].malloc_fn(32);
            CHECK(o != NULL);
            o = domains[other].realloc_fn(o, 64);
            domains[other].free_fn(o);
            domains[other].free_fn(domains[other].calloc_fn(2, 2));
        }
        CHECK_EQ_SIZE(counting_total(&c), total);

        /* Restored: calls no longer reach it, and the allocator is the saved one. */
        CHECK(om_set_allocator(d->domain, &saved) == 0);
        CHECK(om_get_allocator(d->domain, &now) == 0);
        CHECK(same_allocator(&now, &saved));
        void *after = d->malloc_fn(16);
        CHECK(after != NULL);
        d->free_fn(after);
        CHECK_EQ_SIZE(counting_total(&c), total);
    }
}

/* All three wrapped at once: each sees only its own calls. */
static void test_wrap_all(void)
{
    counting c[OM_DOMAIN_COUNT];
    om_allocator saved[OM_DOMAIN_COUNT], wrapper[OM_DOMAIN_COUNT];
    for (size_t di = 0; di < OM_DOMAIN_COUNT; di++) {
        CHECK(om_get_allocator(domains[di].domain, &saved[di]) == 0);
        counting_init(&c[di], domains[di].domain, &wrapper[di]);
    }
    for (size_t di = 0; di < OM_DOMAIN_COUNT; di++)
        CHECK(om_set_allocator(domains[di].domain, &wrapper[di]) == 0);
    for (size_t di = 0; di < OM_DOMAIN_COUNT; di++) {
        for (size_t k = 0; k <= di; k++) {
            void *p = domains[di].malloc_fn(100 * k + 1);
            CHECK(p != NULL);
            domains[di].free_fn(p);
        }
    }
    for (size_t di = 0; di < OM_DOMAIN_COUNT; di++) {
        CHECK_EQ_SIZE(c[di].mallocs, di + 1);
        CHECK_EQ_SIZE(c[di].frees, di + 1);
        CHECK_EQ_SIZE(c[di].callocs + c[di].reallocs, 0);
        CHECK_EQ_SIZE(c[di].wrong_ctx, 0);
        CHECK(om_set_allocator(domains[di].domain, &saved[di]) == 0);
    }
}

/* An allocator that does not forward: a bump allocator over a static buffer. */
typedef struct bump {
    _Alignas(16) unsigned char buffer[1 << 16];
    size_t used;
    size_t frees;
} bump;

static void *bump_malloc(void *ctx, size_t size)
{
    bump *b = ctx;
    size_t need = (size + 15) / 16 * 16 + 16;
    if (b->used + need > sizeof b->buffer)
        return NULL;
    void *p = b->buffer + b->used;
    b->used += need;
    return p;
}

static void *bump_calloc(void *ctx, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        return NULL;
    void *p = bump_malloc(ctx, count * size);
    if (p)
        memset(p, 0, count * size);
    return p;
}

static void *bump_realloc(void *ctx, void *ptr, size_t size)
{
    bump *b = ctx;
    void *p = bump_malloc(ctx, size);
    if (p && ptr) {
        /* Copies what fits: the old size is not recorded. */
        size_t room = (size_t)(b->buffer + b->used - (unsigned char *)ptr);
        memmove(p, ptr, size < room ? size : room);
    }
    return p;
}

static void bump_free(void *ctx, void *ptr)
{
    bump *b = ctx;
    if (ptr)
        b->frees++;
}

static void test_replacing_allocator(void)
{
    static bump b;
    om_allocator saved;
    CHECK(om_get_allocator(OM_DOMAIN_OBJ, &saved) == 0);
    om_allocator replacing = {&b, bump_malloc, bump_calloc, bump_realloc, bump_free};
    CHECK(om_set_allocator(OM_DOMAIN_OBJ, &replacing) == 0);
    uintptr_t lo = (uintptr_t)b.buffer, hi = lo + sizeof b.buffer;
    unsigned char *p = om_obj_malloc(40);
    unsigned char *q = om_obj_calloc(4, 4);
    CHECK((uintptr_t)p >= lo && (uintptr_t)p < hi);
    CHECK((uintptr_t)q >= lo && (uintptr_t)q < hi);
    CHECK(q && tu_is_zero(q, 16));
    if (p)
        tu_fill_pattern(&byte_pattern, p, 40, 4);
    unsigned char *r = om_obj_realloc(p, 80);
    CHECK((uintptr_t)r >= lo && (uintptr_t)r < hi);
    CHECK(r && tu_has_pattern(&byte_pattern, r, 40, 4));
    om_obj_free(r);
    om_obj_free(q);
    CHECK_EQ_SIZE(b.frees, 2);
    CHECK(om_set_allocator(OM_DOMAIN_OBJ, &saved) == 0);
    void *s = om_obj_malloc(40);
    CHECK(s != NULL && ((uintptr_t)s < lo || (uintptr_t)s >= hi));
    om_obj_free(s);
    CHECK_EQ_SIZE(b.frees, 2);
}

static void test_invalid_arguments(void)
{
    om_allocator saved[OM_DOMAIN_COUNT];
    for (size_t di = 0; di < OM_DOMAIN_COUNT; di++)
        CHECK(om_get_allocator((om_domain)di, &saved[di]) == 0);
    counting c;
    om_allocator valid;
    counting_init(&c, OM_DOMAIN_MEM, &valid);

    /* Unknown domains. */
    const om_domain unknown[] = {(om_domain)OM_DOMAIN_COUNT, (om_domain)1000};
    for (size_t i = 0; i < 2; i++) {
        om_allocator out;
        om_clear_error();
        CHECK(om_get_allocator(unknown[i], &out) == -1);
        CHECK(error_is(OM_EINVAL));
        om_clear_error();
        CHECK(om_set_allocator(unknown[i], &valid) == -1);
        CHECK(error_is(OM_EINVAL));
    }

    for (size_t di = 0; di < OM_DOMAIN_COUNT; di++) {
        om_domain dom = (om_domain)di;
        /* NULL out and NULL allocator. */
        om_clear_error();
        CHECK(om_get_allocator(dom, NULL) == -1);
        CHECK(error_is(OM_EINVAL));
        om_clear_error();
        CHECK(om_set_allocator(dom, NULL) == -1);
        CHECK(error_is(OM_EINVAL));

        /* Each hook missing in turn, and all of them. */
        for (int missing = 0; missing < 5; missing++) {
            om_allocator bad = valid;
            if (missing == 0 || missing == 4)
                bad.malloc = NULL;
            if (missing == 1 || missing == 4)
                bad.calloc = NULL;
            if (missing == 2 || missing == 4)
                bad.realloc = NULL;
            if (missing == 3 || missing == 4)
                bad.free = NULL;
            om_clear_error();
            CHECK(om_set_allocator(dom, &bad) == -1);
            CHECK(error_is(OM_EINVAL));
        }
        /* Nothing changed. */
        om_allocator now;
        CHECK(om_get_allocator(dom, &now) == 0);
        CHECK(same_allocator(&now, &saved[di]));
    }
    /* The domains still work and the refused wrapper saw nothing. */
    for (size_t di = 0; di < OM_DOMAIN_COUNT; di++) {
        void *p = domains[di].malloc_fn(10);
        CHECK(p != NULL);
        domains[di].free_fn(p);
    }
    CHECK_EQ_SIZE(counting_total(&c), 0);
}

static void test_error_state(void)
{
    om_clear_error();
    CHECK(om_last_error() == OM_OK);
    CHECK(om_last_error_message() != NULL && om_last_error_message()[0] == '\0');

    om_allocator out;
    CHECK(om_get_allocator((om_domain)77, &out) == -1);
    CHECK(error_is(OM_EINVAL));

    /* A successful call does not clear the error (api.md). */
    void *p = om_mem_malloc(8);
    CHECK(p != NULL);
    om_mem_free(p);
    CHECK(om_last_error() == OM_EINVAL);

    /* A new failure replaces it. */
    size_t huge = volatile_ptrdiff_max + 1;
    p = om_obj_malloc(huge);
    CHECK(p == NULL);
    CHECK(error_is(OM_ENOMEM));

    om_clear_error();
    CHECK(om_last_error() == OM_OK);
    CHECK(om_last_error_message()[0] == '\0');
    om_clear_error(); /* twice is fine */
    CHECK(om_last_error() == OM_OK);
}

/* Errors are per thread. */
typedef struct error_thread_result {
    om_error seen_at_start;
    om_error after_failure;
    int message_ok;
} error_thread_result;

static void *error_thread(void *arg)
{
    error_thread_result *r = arg;
    r->seen_at_start = om_last_error();
    size_t huge = volatile_size_max;
    void *p = om_raw_malloc(huge);
    r->after_failure = p == NULL ? om_last_error() : OM_OK;
    r->message_ok = om_last_error_message()[0] != '\0';
    om_raw_free(p);
    return NULL;
}

static void test_error_per_thread(void)
{
    om_clear_error();
    om_allocator out;
    CHECK(om_get_allocator((om_domain)9, &out) == -1);
    CHECK(om_last_error() == OM_EINVAL);
    error_thread_result r = {OM_EINVAL, OM_OK, 0};
    pthread_t t;
    CHECK(pthread_create(&t, NULL, error_thread, &r) == 0);
    pthread_join(t, NULL);
    CHECK(r.seen_at_start == OM_OK);
    CHECK(r.after_failure == OM_ENOMEM);
    CHECK(r.message_ok);
    CHECK(om_last_error() == OM_EINVAL);
    om_clear_error();
}

/* Pointers that objmem did not hand out are fatal misuse for the MEM and
 * OBJ calls (objmem.h, section 3): one report on stderr naming the call,
 * the address and what the address map knows, then abort(). Each misuse
 * runs in a child process. */
typedef enum foreign_call {
    CALL_MEM_FREE,
    CALL_OBJ_FREE,
    CALL_MEM_REALLOC,
    CALL_OBJ_REALLOC,
    CALL_HEAP_REALLOC,
    CALL_USABLE_SIZE,
    CALL_COUNT
} foreign_call;

static const char *const foreign_call_names[CALL_COUNT] = {
    "om_mem_free", "om_obj_free", "om_mem_realloc", "om_obj_realloc", "om_heap_realloc",
    "om_usable_size",
};

typedef struct foreign_case {
    foreign_call call;
    void *ptr;
} foreign_case;

static volatile size_t foreign_sink;

static void foreign_child(void *arg)
{
    const foreign_case *fc = arg;
    switch (fc->call) {
    case CALL_MEM_FREE:
        om_mem_free(fc->ptr);
        break;
    case CALL_OBJ_FREE:
        om_obj_free(fc->ptr);
        break;
    case CALL_MEM_REALLOC:
        foreign_sink = (size_t)(uintptr_t)om_mem_realloc(fc->ptr, 200);
        break;
    case CALL_OBJ_REALLOC:
        foreign_sink = (size_t)(uintptr_t)om_obj_realloc(fc->ptr, 5000);
        break;
    case CALL_HEAP_REALLOC:
        foreign_sink = (size_t)(uintptr_t)om_heap_realloc(NULL, fc->ptr, 40);
        break;
    case CALL_USABLE_SIZE:
        foreign_sink = om_usable_size(fc->ptr);
        break;
    default:
        break;
    }
    /* Reaching this line means the misuse was not caught. */
    fputs("foreign pointer accepted\n", stderr);
}

/* Runs one misuse in a child: it must abort with one report that names the
 * call, the address and the address map's finding. */
static void expect_foreign_fatal(foreign_call call, void *ptr, const char *what)
{
    foreign_case fc = {call, ptr};
    char err[4096];
    int status = check_run_child(foreign_child, &fc, err, sizeof err);
    char address[64];
    snprintf(address, sizeof address, "%p", ptr);
    int aborted = status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    int named = strstr(err, foreign_call_names[call]) != NULL;
    int addressed = strstr(err, address) != NULL;
    int finding = strstr(err, "not in any objmem arena") != NULL;
    int once = tu_count_occurrences(err, "fatal error") == 1;
    if (!aborted || !named || !addressed || !finding || !once)
        fprintf(stderr, "  %s(%s) of %s: status 0x%x, stderr:\n%s\n",
                foreign_call_names[call], address, what, (unsigned)status, err);
    CHECK(aborted);
    CHECK(named);
    CHECK(addressed);
    CHECK(finding);
    CHECK(once);
}

static void test_foreign_pointers(void)
{
    static char static_bytes[256];
    char stack_bytes[64];
    void *sys = malloc(100);
    void *sys_big = malloc(1 << 20); /* glibc maps this one on its own */
    void *raw = om_raw_malloc(64);
    void *aligned = aligned_alloc(64, 256);
    CHECK(sys && sys_big && raw && aligned);
    struct {
        void *ptr;
        const char *what;
    } foreign[] = {
        {sys, "a malloc block"},
        {sys_big, "a 1 MiB malloc block"},
        {raw, "an om_raw_malloc block"},
        {aligned, "an aligned_alloc block"},
        {static_bytes + 16, "static storage"},
        {stack_bytes, "the stack"},
    };
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
        for (int call = 0; call < CALL_COUNT; call++)
            expect_foreign_fatal((foreign_call)call, foreign[i].ptr, foreign[i].what);

    /* The parent's blocks are untouched by the children's misuse, and RAW
     * blocks still work with the RAW calls (the system allocator). */
    tu_fill_pattern(&byte_pattern, raw, 64, 7);
    unsigned char *grown = om_raw_realloc(raw, 5000);
    CHECK(grown && tu_has_pattern(&byte_pattern, grown, 64, 7));
    om_raw_free(grown ? grown : raw);
    free(aligned);
    free(sys_big);

    /* RAW's realloc accepts a plain malloc block, growing and shrinking. */
    static const size_t new_sizes[] = {5000, 40, 100, 513, 1};
    for (size_t i = 0; i < sizeof new_sizes / sizeof new_sizes[0]; i++) {
        size_t n = new_sizes[i];
        size_t keep = n < 100 ? n : 100;
        unsigned char *f = malloc(100);
        CHECK(f != NULL);
        if (!f)
            continue;
        tu_fill_pattern(&byte_pattern, f, 100, (unsigned)i + 90);
        unsigned char *g = om_raw_realloc(f, n);
        CHECK(g != NULL && tu_has_pattern(&byte_pattern, g, keep, (unsigned)i + 90));
        om_raw_free(g ? g : f);
    }
    om_raw_free(sys);
}

/* The RAW domain's contract. */
static void test_raw_contract(void)
{
    enum { N = 200 };
    void *zeros[N];
    size_t nulls = 0, misaligned = 0;
    for (size_t i = 0; i < N; i++) {
        zeros[i] = om_raw_malloc(0);
        if (!zeros[i])
            nulls++;
        else if ((uintptr_t)zeros[i] % OM_ALIGNMENT)
            misaligned++;
    }
    CHECK_EQ_SIZE(nulls, 0);
    CHECK_EQ_SIZE(misaligned, 0);
    size_t dups = 0;
    for (size_t i = 0; i < N; i++)
        for (size_t j = i + 1; j < N; j++)
            if (zeros[i] == zeros[j])
                dups++;
    CHECK_EQ_SIZE(dups, 0);
    for (size_t i = 0; i < N; i++)
        om_raw_free(zeros[i]);

    static const size_t sizes[] = {1, 15, 16, 17, 512, 513, 100000};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        unsigned char *p = om_raw_malloc(sizes[i]);
        CHECK(p != NULL && (uintptr_t)p % OM_ALIGNMENT == 0);
        /* The whole request is writable (om_usable_size is for MEM/OBJ
         * blocks only: a RAW block given to it is fatal). */
        if (p)
            tu_fill_pattern(&byte_pattern, p, sizes[i], (unsigned)i);
        CHECK(p && tu_has_pattern(&byte_pattern, p, sizes[i], (unsigned)i));
        om_raw_free(p);
        p = om_raw_calloc(sizes[i], 1);
        CHECK(p != NULL && tu_is_zero(p, sizes[i]));
        om_raw_free(p);
    }

    size_t max = volatile_size_max;
    const size_t overflow[][2] = {{max, 2}, {2, max}, {(size_t)1 << 33, (size_t)1 << 33}};
    for (size_t i = 0; i < 3; i++) {
        om_clear_error();
        errno = 0;
        void *p = om_raw_calloc(overflow[i][0], overflow[i][1]);
        CHECK(p == NULL);
        CHECK(errno == ENOMEM);
        CHECK(error_is(OM_ENOMEM));
    }
    const size_t too_large[] = {volatile_ptrdiff_max + 1, max};
    for (size_t i = 0; i < 2; i++) {
        om_clear_error();
        errno = 0;
        void *p = om_raw_malloc(too_large[i]);
        CHECK(p == NULL);
        CHECK(errno == ENOMEM);
        CHECK(error_is(OM_ENOMEM));
        unsigned char *old = om_raw_malloc(32);
        CHECK(old != NULL);
        tu_fill_pattern(&byte_pattern, old, 32, 3);
        om_clear_error();
        p = om_raw_realloc(old, too_large[i]);
        CHECK(p == NULL);
        CHECK(error_is(OM_ENOMEM));
        CHECK(tu_has_pattern(&byte_pattern, old, 32, 3));
        om_raw_free(old);
    }

    om_clear_error();
    om_raw_free(NULL);
    CHECK(om_last_error() == OM_OK);
    unsigned char *p = om_raw_realloc(NULL, 50);
    CHECK(p != NULL);
    tu_fill_pattern(&byte_pattern, p, 50, 8);
    unsigned char *q = om_raw_realloc(p, 5000);
    CHECK(q && tu_has_pattern(&byte_pattern, q, 50, 8));
    p = q ? q : p;
    q = om_raw_realloc(p, 10);
    CHECK(q && tu_has_pattern(&byte_pattern, q, 10, 8));
    om_raw_free(q ? q : p);
}

/* RAW from several threads at once. */
typedef struct raw_thread_arg {
    unsigned id;
    size_t ops;
    size_t corrupt;
    size_t failed;
    size_t error_wrong;
} raw_thread_arg;

static void *raw_thread(void *varg)
{
    raw_thread_arg *a = varg;
    enum { SLOTS = 256 };
    unsigned char *ptr[SLOTS] = {0};
    size_t size[SLOTS] = {0};
    unsigned seed[SLOTS] = {0};
    tu_rng thread_rng = {0x9e3779b97f4a7c15ULL * (a->id + 1)};
    for (size_t op = 0; op < a->ops; op++) {
        uint64_t r = tu_rng_next(&thread_rng);
        size_t s = (size_t)(r % SLOTS);
        size_t n = (size_t)((r >> 16) % 2000);
        if (!ptr[s]) {
            ptr[s] = (r >> 40) & 1 ? om_raw_malloc(n) : om_raw_calloc(1, n);
            if (!ptr[s]) {
                a->failed++;
                continue;
            }
            if (((r >> 40) & 1) == 0 && !tu_is_zero(ptr[s], n))
                a->corrupt++;
            size[s] = n;
            seed[s] = (unsigned)(a->id * 1000003u + op);
            tu_fill_pattern(&byte_pattern, ptr[s], n, seed[s]);
        } else if ((r >> 41) & 1) {
            if (!tu_has_pattern(&byte_pattern, ptr[s], size[s], seed[s]))
                a->corrupt++;
            om_raw_free(ptr[s]);
            ptr[s] = NULL;
        } else {
            if (!tu_has_pattern(&byte_pattern, ptr[s], size[s], seed[s]))
                a->corrupt++;
            if (n == 0)
                n = 1;
            unsigned char *q = om_raw_realloc(ptr[s], n);
            if (!q) {
                a->failed++;
                continue;
            }
            size_t keep = size[s] < n ? size[s] : n;
            if (!tu_has_pattern(&byte_pattern, q, keep, seed[s]))
                a->corrupt++;
            ptr[s] = q;
            size[s] = n;
            seed[s] = (unsigned)(a->id * 1000003u + op);
            tu_fill_pattern(&byte_pattern, q, n, seed[s]);
        }
        if (op % 4096 == 0) {
            /* Every thread sees its own errors. */
            om_clear_error();
            size_t huge = volatile_ptrdiff_max + 1 + (size_t)a->id;
            void *bad = om_raw_malloc(huge);
            if (bad != NULL || om_last_error() != OM_ENOMEM)
                a->error_wrong++;
            om_clear_error();
            if (om_last_error() != OM_OK)
                a->error_wrong++;
        }
    }
    for (size_t s = 0; s < SLOTS; s++) {
        if (ptr[s] && !tu_has_pattern(&byte_pattern, ptr[s], size[s], seed[s]))
            a->corrupt++;
        om_raw_free(ptr[s]);
    }
    return NULL;
}

static void test_raw_threads(void)
{
    enum { THREADS = 4 };
    pthread_t t[THREADS];
    raw_thread_arg args[THREADS];
    for (unsigned i = 0; i < THREADS; i++) {
        args[i] = (raw_thread_arg){i, OM_TEST_SCALE(400000), 0, 0, 0};
        CHECK(pthread_create(&t[i], NULL, raw_thread, &args[i]) == 0);
    }
    for (unsigned i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_SIZE(args[i].corrupt, 0);
        CHECK_EQ_SIZE(args[i].failed, 0);
        CHECK_EQ_SIZE(args[i].error_wrong, 0);
    }
}

/* A wrapper on RAW sees the calls of every thread (the domain is shared). */
typedef struct atomic_counting {
    om_allocator inner;
    _Atomic size_t calls;
} atomic_counting;

static void *ac_malloc(void *ctx, size_t size)
{
    atomic_counting *c = ctx;
    c->calls++;
    return c->inner.malloc(c->inner.ctx, size);
}

static void *ac_calloc(void *ctx, size_t count, size_t size)
{
    atomic_counting *c = ctx;
    c->calls++;
    return c->inner.calloc(c->inner.ctx, count, size);
}

static void *ac_realloc(void *ctx, void *ptr, size_t size)
{
    atomic_counting *c = ctx;
    c->calls++;
    return c->inner.realloc(c->inner.ctx, ptr, size);
}

static void ac_free(void *ctx, void *ptr)
{
    atomic_counting *c = ctx;
    if (ptr)
        c->calls++;
    c->inner.free(c->inner.ctx, ptr);
}

static void *raw_pairs_thread(void *arg)
{
    size_t n = *(size_t *)arg;
    for (size_t i = 0; i < n; i++) {
        void *p = om_raw_malloc(16 + i % 100);
        om_raw_free(p);
    }
    return NULL;
}

static void test_raw_wrapper_threads(void)
{
    static atomic_counting ac;
    CHECK(om_get_allocator(OM_DOMAIN_RAW, &ac.inner) == 0);
    ac.calls = 0;
    om_allocator wrap = {&ac, ac_malloc, ac_calloc, ac_realloc, ac_free};
    CHECK(om_set_allocator(OM_DOMAIN_RAW, &wrap) == 0);
    enum { THREADS = 4 };
    size_t n = OM_TEST_SCALE(50000);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, raw_pairs_thread, &n) == 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK(om_set_allocator(OM_DOMAIN_RAW, &ac.inner) == 0);
    CHECK_EQ_SIZE(ac.calls, 2 * n * THREADS);
}

int main(void)
{
    test_wrap_each_domain();
    test_wrap_all();
    test_replacing_allocator();
    test_invalid_arguments();
    test_error_state();
    test_error_per_thread();
    test_foreign_pointers();
    test_raw_contract();
    test_raw_threads();
    test_raw_wrapper_threads();
    return check_report();
}
