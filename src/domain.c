/*
 * domain.c — the three allocation domains and their pluggable allocators.
 *
 * Each domain (RAW, MEM, OBJ; CPython's PyMem_Raw*, PyMem_*, PyObject_*)
 * has an om_allocator: four functions and a context. The defaults are
 *   RAW      the system allocator (thread-safe, no runtime)
 *   MEM/OBJ  the heap of the calling thread's runtime (runtime.c): small
 *            blocks from its pools
 * om_set_allocator replaces one; debug hooks, tracing and fault injection
 * wrap the current allocator this way instead of living inside it.
 *
 * The hot path: a MEM/OBJ call checks one flag, "this domain still has its
 * default allocator", and if so runs the inline pool fast path directly on
 * the current runtime's heap (one thread-local load, runtime.c); only
 * a replaced allocator costs an indirect call. The flag and the table change
 * together in om_set_allocator.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- Default allocators ---------------------------------------------------- */

static void *raw_malloc(void *ctx, size_t size)
{
    (void)ctx;
    if (size > PTRDIFF_MAX)
        return omi_out_of_memory(size);
    void *p = malloc(size != 0 ? size : 1);
    return p != NULL ? p : omi_out_of_memory(size);
}

static void *raw_calloc(void *ctx, size_t count, size_t size)
{
    (void)ctx;
    size_t total;
    if (!omi_mul_size(count, size, &total))
        return omi_calloc_overflow(count, size);
    void *p = calloc(total != 0 ? total : 1, 1);
    return p != NULL ? p : omi_out_of_memory(total);
}

static void *raw_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    if (size > PTRDIFF_MAX)
        return omi_out_of_memory(size);
    void *p = realloc(ptr, size != 0 ? size : 1);
    return p != NULL ? p : omi_out_of_memory(size);
}

static void raw_free(void *ctx, void *ptr)
{
    (void)ctx;
    free(ptr);
}

/* The MEM/OBJ defaults allocate from the calling thread's runtime's heap;
 * their ctx (the default heap) only marks them as the defaults (debug.c
 * recognises its inner allocator by it). */
static void *heap_domain_malloc(void *ctx, size_t size)
{
    (void)ctx;
    return omi_heap_malloc(omi_current_heap(), size);
}

static void *heap_domain_calloc(void *ctx, size_t count, size_t size)
{
    (void)ctx;
    return omi_heap_calloc(omi_current_heap(), count, size);
}

static void *heap_domain_realloc(void *ctx, void *ptr, size_t size)
{
    (void)ctx;
    return omi_heap_realloc("om_*_realloc", omi_current_heap(), ptr, size);
}

static void heap_domain_free(void *ctx, void *ptr)
{
    (void)ctx;
    omi_free("om_*_free", ptr);
}

#define RAW_DEFAULT {NULL, raw_malloc, raw_calloc, raw_realloc, raw_free}
#define HEAP_DEFAULT {&omi_default_heap, heap_domain_malloc, heap_domain_calloc, \
                      heap_domain_realloc, heap_domain_free}

/* ---- Domain state ----------------------------------------------------------- */

typedef struct domain_state {
    om_allocator allocators[OM_DOMAIN_COUNT];  /* what each domain calls */
} domain_state;

static domain_state domains = {
    .allocators = {RAW_DEFAULT, HEAP_DEFAULT, HEAP_DEFAULT},
};

/* omi_domain_is_default[d]: allocators[d] is the default (read by the
 * inline paths here and in object.c). */
bool omi_domain_is_default[OM_DOMAIN_COUNT] = {true, true, true};

static const om_allocator domain_defaults[OM_DOMAIN_COUNT] = {
    RAW_DEFAULT, HEAP_DEFAULT, HEAP_DEFAULT,
};

static bool domain_is_valid(om_domain domain)
{
    return (unsigned)domain < OM_DOMAIN_COUNT;
}

int om_get_allocator(om_domain domain, om_allocator *out)
{
    if (!domain_is_valid(domain) || out == NULL) {
        omi_set_error(OM_EINVAL, "om_get_allocator: %s",
                      out == NULL ? "out is NULL" : "unknown domain");
        return -1;
    }
    *out = domains.allocators[domain];
    return 0;
}

int om_set_allocator(om_domain domain, const om_allocator *allocator)
{
    if (!domain_is_valid(domain)) {
        omi_set_error(OM_EINVAL, "om_set_allocator: unknown domain %d", (int)domain);
        return -1;
    }
    if (allocator == NULL || allocator->malloc == NULL || allocator->calloc == NULL ||
        allocator->realloc == NULL || allocator->free == NULL) {
        omi_set_error(OM_EINVAL, "om_set_allocator: all four functions must be set");
        return -1;
    }
    domains.allocators[domain] = *allocator;
    omi_domain_is_default[domain] =
        memcmp(allocator, &domain_defaults[domain], sizeof *allocator) == 0;
    return 0;
}

/* ---- The public entry points ----------------------------------------------- */

/* Dispatch for MEM and OBJ: the inline heap path while the default is in
 * place, else the installed allocator, after recording the caller for
 * tracing (only on that branch: the default path pays nothing). */
#define DOMAIN_CALL(d, default_call, hook, ...) \
    (omi_likely(omi_domain_is_default[d]) ? (default_call) \
     : (OMI_TRACE_CAPTURE(), \
        domains.allocators[d].hook(domains.allocators[d].ctx, __VA_ARGS__)))

/* RAW has no inline path; the caller is recorded once it is wrapped. */
#define RAW_CAPTURE() \
    do { \
        if (!omi_domain_is_default[OM_DOMAIN_RAW]) \
            OMI_TRACE_CAPTURE(); \
    } while (0)

void *om_raw_malloc(size_t size)
{
    RAW_CAPTURE();
    const om_allocator *a = &domains.allocators[OM_DOMAIN_RAW];
    return a->malloc(a->ctx, size);
}

void *om_raw_calloc(size_t count, size_t size)
{
    RAW_CAPTURE();
    const om_allocator *a = &domains.allocators[OM_DOMAIN_RAW];
    return a->calloc(a->ctx, count, size);
}

void *om_raw_realloc(void *ptr, size_t size)
{
    RAW_CAPTURE();
    const om_allocator *a = &domains.allocators[OM_DOMAIN_RAW];
    return a->realloc(a->ctx, ptr, size);
}

void om_raw_free(void *ptr)
{
    const om_allocator *a = &domains.allocators[OM_DOMAIN_RAW];
    a->free(a->ctx, ptr);
}

#define DEFINE_HEAP_DOMAIN(prefix, d)                                              \
    void *prefix##_malloc(size_t size)                                             \
    {                                                                              \
        return DOMAIN_CALL(d, omi_heap_malloc(omi_current_heap(), size), malloc,    \
                           size);                                                  \
    }                                                                              \
    void *prefix##_calloc(size_t count, size_t size)                               \
    {                                                                              \
        return DOMAIN_CALL(d, omi_heap_calloc(omi_current_heap(), count, size),     \
                           calloc, count, size);                                   \
    }                                                                              \
    void *prefix##_realloc(void *ptr, size_t size)                                 \
    {                                                                              \
        return DOMAIN_CALL(d, omi_heap_realloc(#prefix "_realloc", omi_current_heap(),\
                                               ptr, size),                         \
                           realloc, ptr, size);                                    \
    }                                                                              \
    void prefix##_free(void *ptr)                                                  \
    {                                                                              \
        if (omi_likely(omi_domain_is_default[d]))                                     \
            omi_free(#prefix "_free", ptr);                                        \
        else                                                                       \
            domains.allocators[d].free(domains.allocators[d].ctx, ptr);            \
    }

DEFINE_HEAP_DOMAIN(om_mem, OM_DOMAIN_MEM)
DEFINE_HEAP_DOMAIN(om_obj, OM_DOMAIN_OBJ)
