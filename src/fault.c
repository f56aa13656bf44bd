/*
 * fault.c — fault injection: allocations that fail on purpose.
 *
 * Out-of-memory paths are code like any other and need tests; this makes
 * them reachable. Like the debug hooks and tracing, it is a wrapper: arming
 * a domain installs an om_allocator (om_set_allocator) whose functions
 * decide whether to fail and otherwise forward to the allocator that was
 * installed before (the "inner" one). It lives in no allocator's fast path.
 *
 * Per domain, one fault_state:
 *
 *   mode NONE     forward everything (still installed: a one-shot fault
 *                 that has fired leaves the wrapper in place until disarmed)
 *   mode AFTER    `countdown` allocations succeed, the next one fails, then
 *                 mode NONE (SQLite's test_malloc "fail once at N")
 *   mode RANDOM   each allocation fails with probability per_million / 1e6;
 *                 the draw for the k-th allocation is splitmix64(seed + k),
 *                 so a run replays exactly from its seed, and threads of
 *                 the RAW domain need no lock (k comes from an atomic
 *                 counter)
 *
 * An allocation is malloc, calloc, or realloc to a non-zero size; free and
 * realloc(p, 0) never fail. A failure is reported like a real one: NULL,
 * OM_ENOMEM, errno = ENOMEM, and a failed realloc leaves its block alone.
 * Disarming (n = -1, per_million = 0) puts the inner allocator back if the
 * wrapper is still the domain's allocator; if something was installed on
 * top since, the wrapper stays, forwarding.
 *
 * OBJMEM_FAIL=DOMAIN:N or DOMAIN:random:PER_MILLION:SEED arms a domain at
 * load time (DOMAIN is raw, mem or obj).
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

enum fault_mode { FAULT_NONE, FAULT_AFTER, FAULT_RANDOM };

typedef struct fault_state {
    _Atomic int mode;                /* enum fault_mode */
    _Atomic long countdown;          /* FAULT_AFTER: successes before the failure */
    long per_million;                /* FAULT_RANDOM: failure rate */
    uint64_t seed;                   /* FAULT_RANDOM: the draws' seed */
    _Atomic uint64_t draws;          /* FAULT_RANDOM: allocations seen */
    _Atomic long failures;           /* allocations failed on purpose */
    bool installed;                  /* the wrapper is (or was last) installed */
    om_allocator inner;              /* what the wrapper forwards to */
    om_domain domain;                /* for the error message */
} fault_state;

static fault_state faults[OM_DOMAIN_COUNT];

static const char *const domain_names[OM_DOMAIN_COUNT] = {"raw", "mem", "obj"};

static uint64_t splitmix64(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

/* Whether this allocation fails; counts it either way. */
static bool fault_fires(fault_state *f)
{
    switch (atomic_load(&f->mode)) {
    case FAULT_AFTER:
        if (atomic_fetch_sub(&f->countdown, 1) != 0)
            return false;
        atomic_store(&f->mode, FAULT_NONE);
        return true;
    case FAULT_RANDOM: {
        uint64_t k = atomic_fetch_add(&f->draws, 1);
        return splitmix64(f->seed + k) % 1000000 < (uint64_t)f->per_million;
    }
    default:
        return false;
    }
}

static void *fault_fail(fault_state *f, size_t size)
{
    long n = atomic_fetch_add(&f->failures, 1) + 1;
    omi_out_of_memory(size);
    omi_set_error(OM_ENOMEM, "fault injection: allocation of %zu bytes in the %s domain "
                  "failed on purpose (failure %ld)", size, domain_names[f->domain], n);
    return NULL;
}

static void *fault_malloc(void *ctx, size_t size)
{
    fault_state *f = ctx;
    return fault_fires(f) ? fault_fail(f, size) : f->inner.malloc(f->inner.ctx, size);
}

static void *fault_calloc(void *ctx, size_t count, size_t size)
{
    fault_state *f = ctx;
    return fault_fires(f) ? fault_fail(f, count * size)
                          : f->inner.calloc(f->inner.ctx, count, size);
}

static void *fault_realloc(void *ctx, void *ptr, size_t size)
{
    fault_state *f = ctx;
    if (size != 0 && fault_fires(f))
        return fault_fail(f, size);
    return f->inner.realloc(f->inner.ctx, ptr, size);
}

static void fault_free(void *ctx, void *ptr)
{
    fault_state *f = ctx;
    f->inner.free(f->inner.ctx, ptr);
}

static om_allocator fault_wrapper(fault_state *f)
{
    return (om_allocator){f, fault_malloc, fault_calloc, fault_realloc, fault_free};
}

static bool fault_wrapper_is_current(fault_state *f)
{
    om_allocator current;
    om_get_allocator(f->domain, &current);
    return current.ctx == f && current.malloc == fault_malloc;
}

/* Installs the wrapper over the domain's current allocator, once. */
static void fault_install(fault_state *f, om_domain domain)
{
    f->domain = domain;
    if (f->installed && fault_wrapper_is_current(f))
        return;
    om_get_allocator(domain, &f->inner);
    om_allocator wrapper = fault_wrapper(f);
    om_set_allocator(domain, &wrapper);
    f->installed = true;
}

static void fault_disarm(fault_state *f)
{
    atomic_store(&f->mode, FAULT_NONE);
    if (f->installed && fault_wrapper_is_current(f)) {
        om_set_allocator(f->domain, &f->inner);
        f->installed = false;
    }
}

static bool fault_domain_is_valid(om_domain domain, const char *function)
{
    if ((unsigned)domain < OM_DOMAIN_COUNT)
        return true;
    omi_set_error(OM_EINVAL, "%s: unknown domain %d", function, (int)domain);
    return false;
}

int om_fail_after(om_domain domain, long n)
{
    if (!fault_domain_is_valid(domain, "om_fail_after"))
        return -1;
    if (n < -1) {
        omi_set_error(OM_EINVAL, "om_fail_after: n is %ld; -1 disarms, 0 or more arms", n);
        return -1;
    }
    fault_state *f = &faults[domain];
    if (n == -1) {
        fault_disarm(f);
        return 0;
    }
    fault_install(f, domain);
    atomic_store(&f->countdown, n);
    atomic_store(&f->mode, FAULT_AFTER);
    return 0;
}

int om_fail_random(om_domain domain, long per_million, uint64_t seed)
{
    if (!fault_domain_is_valid(domain, "om_fail_random"))
        return -1;
    if (per_million < 0 || per_million > 1000000) {
        omi_set_error(OM_EINVAL, "om_fail_random: %ld is outside 0 … 1000000", per_million);
        return -1;
    }
    fault_state *f = &faults[domain];
    if (per_million == 0) {
        fault_disarm(f);
        return 0;
    }
    fault_install(f, domain);
    f->per_million = per_million;
    f->seed = seed;
    atomic_store(&f->draws, 0);
    atomic_store(&f->mode, FAULT_RANDOM);
    return 0;
}

long om_fail_count(om_domain domain)
{
    if (!fault_domain_is_valid(domain, "om_fail_count"))
        return -1;
    return atomic_load(&faults[domain].failures);
}

/* ---- OBJMEM_FAIL ------------------------------------------------------------ */

static int fault_domain_of(const char *name, size_t length)
{
    for (int d = 0; d < OM_DOMAIN_COUNT; d++)
        if (strlen(domain_names[d]) == length && strncmp(name, domain_names[d], length) == 0)
            return d;
    return -1;
}

/* Arms a domain from "DOMAIN:N" or "DOMAIN:random:PER_MILLION:SEED";
 * -1 if the text is not one of those. */
static int fault_arm_from_text(const char *text)
{
    const char *colon = strchr(text, ':');
    int domain = colon != NULL ? fault_domain_of(text, (size_t)(colon - text)) : -1;
    if (domain < 0)
        return -1;
    const char *rest = colon + 1;
    char *end;
    if (strncmp(rest, "random:", 7) == 0) {
        long per_million = strtol(rest + 7, &end, 10);
        if (*end != ':')
            return -1;
        unsigned long long seed = strtoull(end + 1, &end, 10);
        if (*end != '\0')
            return -1;
        return om_fail_random((om_domain)domain, per_million, (uint64_t)seed);
    }
    long n = strtol(rest, &end, 10);
    if (end == rest || *end != '\0')
        return -1;
    return om_fail_after((om_domain)domain, n);
}

void omi_fault_read_environment(void)
{
    const char *text = getenv("OBJMEM_FAIL");
    if (text != NULL && *text != '\0' && fault_arm_from_text(text) != 0)
        fprintf(stderr, "objmem: ignoring OBJMEM_FAIL=%s (expected raw|mem|obj:N or "
                        "raw|mem|obj:random:PER_MILLION:SEED)\n", text);
}
