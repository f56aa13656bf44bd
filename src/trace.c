/*
 * trace.c — allocation tracing (CPython's tracemalloc), a domain wrapper.
 *
 * om_trace_start(n) installs on each domain an om_allocator that forwards
 * to the one installed before (the "inner" allocator) and prefixes every
 * block it makes with a header:
 *
 *   inner block (16-byte aligned)
 *   | trace_header (32 B): record, size, pad, cookie | user block: size bytes |
 *                                                    ^ the pointer the caller gets
 *
 *   record  the interned traceback of the allocation (below)
 *   size    the bytes asked for
 *   cookie  (uintptr_t)header ^ LIVE_KEY while the block is live, ^ FREED_KEY
 *           from its free on (so that a debug report raised inside that free
 *           still finds the traceback); it sits in the word just before the
 *           user block
 *
 * Interned tracebacks (trace_record): frames + domain, hashed into one
 * table, each with counters of the live blocks that point to it:
 *   record.size  = Σ header.size  over live blocks with header.record == record
 *   record.count = number of those blocks
 *   current      = Σ record.size  over records of the current epoch
 * so free and om_trace_get_object_traceback are O(1) through the header
 * (no table of pointers, unlike CPython), and a snapshot copies counters:
 * O(distinct tracebacks), not O(blocks).
 *
 * Telling a traced block from an untraced one (allocated before start, or
 * after stop, or by the tracer itself): read the cookie word before the
 * pointer. Before an objmem block, that word lies in objmem memory (the
 * address map says so before it is read); before a system malloc block it
 * is the chunk's size field, never a heap address ^ LIVE_KEY. The cookie is
 * changed on free and before an inner realloc, so a stale one cannot
 * survive in memory handed out again.
 *
 * Epochs: every start and stop increments `epoch`. A record belongs to the
 * epoch it was made in; blocks of an older epoch free normally and update
 * their record but not the totals. om_trace_start frees the records of old
 * epochs that no live block points to (count == 0); the others stay until
 * the next start finds them empty. om_trace_stop uninstalls the wrapper of
 * a domain that has no traced block left and is still on top; otherwise
 * the wrapper stays, only forwarding (and stripping headers).
 *
 * Threads: MEM and OBJ are serialised by their users (and share the
 * default heap), RAW is concurrent. Records are per domain, so a MEM/OBJ
 * record's counters are only touched under that serialisation (relaxed
 * loads and stores: plain moves) and only RAW records use atomic adds; the
 * totals are split the same way (heap_current, raw_current), and the peak
 * is kept with a compare-and-swap when a total passes it. The table is
 * under one mutex; in front of it each thread has a small direct-mapped
 * cache (hash -> record, tagged with the epoch), so a repeated traceback
 * costs no lock. The tracer's own memory comes from om_raw_* with a
 * per-thread "busy" flag that makes the wrapper pass those calls through
 * untraced: fault injection armed on RAW reaches the tracer's allocations,
 * and a failure there makes the traced allocation fail cleanly (NULL,
 * OM_ENOMEM, counters unchanged).
 *
 * Frames: domain.c stores, in the non-default branch of each entry point,
 * the entry point's return address and the caller's frame pointer in
 * omi_trace_caller (so objmem's own frames, tail calls included, never
 * appear); the wrapper consumes it and walks the frame-pointer chain for
 * frames 2…n, accepting a frame only while it lies between the walker's
 * own frame and the top of the thread's stack and grows upwards.
 *
 * Names: dladdr gives the library and exported symbols; addr2line (one
 * process per library for a batch of addresses) gives functions and
 * file:line; names are cached for the process. A dumped snapshot stores
 * each frame as library path, offset and name (format below), and load
 * rebases frames of libraries loaded in this process.
 *
 * Learned from: CPython's Python/tracemalloc.c (interned tracebacks, the
 * reentrancy flag, snapshots, statistics and compare, peak and reset_peak)
 * and debug.c here (a header in front of the block, a cookie to recognise
 * it, plain blocks passing through).
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <link.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"

extern char **environ;

/* ---- Tunables --------------------------------------------------------------- */

#define LIVE_KEY ((uintptr_t)0x74726163654C6976ULL)
#define FREED_KEY ((uintptr_t)0x7472616365467265ULL)
#define CACHE_SIZE 256               /* per-thread cache slots, a power of two */
#define TABLE_MIN_BUCKETS 1024       /* the table's first size, a power of two */
#define DUMP_MAGIC "OMTRACE\n"
#define DUMP_VERSION 1u
#define NAME_MAX_LENGTH 4096         /* longest frame name stored in a dump */
_Static_assert((CACHE_SIZE & (CACHE_SIZE - 1)) == 0, "cache index is a mask");
_Static_assert((TABLE_MIN_BUCKETS & (TABLE_MIN_BUCKETS - 1)) == 0, "bucket index is a mask");

/* ---- Data structures -------------------------------------------------------- */

typedef struct trace_record {
    struct trace_record *chain;      /* next in its bucket (current epoch only) */
    struct trace_record *next_all;   /* every record, all epochs */
    uint64_t hash;                   /* of frames and domain */
    _Atomic size_t size;             /* live bytes: Σ header.size */
    _Atomic size_t count;            /* live blocks */
    uint32_t epoch;                  /* the session it was made in */
    uint16_t domain;                 /* om_domain */
    uint16_t nframes;                /* 1 … OM_TRACE_MAX_FRAMES */
    uintptr_t frames[];              /* innermost first */
} trace_record;

typedef struct trace_header {
    trace_record *record;            /* the allocation's traceback */
    size_t size;                     /* bytes asked for */
    uintptr_t pad;                   /* keeps the user block 16-byte aligned */
    uintptr_t cookie;                /* (uintptr_t)this ^ LIVE_KEY or ^ FREED_KEY */
} trace_header;
#define HEADER_SIZE sizeof(trace_header)
_Static_assert(HEADER_SIZE % OM_ALIGNMENT == 0, "the user block stays 16-byte aligned");

typedef struct cache_slot {
    uint64_t hash;
    uint32_t epoch;                  /* the slot is valid only in this epoch */
    trace_record *record;
} cache_slot;

/* What a thread keeps: read on every traced call. */
typedef struct trace_thread {
    cache_slot *cache;               /* CACHE_SIZE slots, or NULL */
    uintptr_t stack_top;             /* highest address of the stack, or 0 */
    bool busy;                       /* inside the tracer: pass calls through */
} trace_thread;

typedef struct trace_domain {
    om_allocator inner;              /* what the wrapper forwards to */
    om_domain domain;
    bool installed;                  /* the wrapper is in the domain's chain */
    bool inner_is_heap;              /* inner blocks are objmem's: ask the map */
} trace_domain;

typedef struct trace_state {
    pthread_mutex_t lock;            /* table, record list, install state */
    _Atomic bool tracing;
    _Atomic uint32_t epoch;
    _Atomic int nframes;             /* the limit for new blocks */
    trace_record **buckets;          /* current epoch's records by hash */
    size_t bucket_count;             /* a power of two, or 0 */
    size_t record_count;             /* records in buckets */
    trace_record *all;               /* every record not yet freed */
    _Atomic size_t heap_current;     /* MEM + OBJ bytes (serialised) */
    _Atomic size_t raw_current;      /* RAW bytes (atomic adds) */
    _Atomic size_t peak;             /* most heap_current + raw_current seen */
    pthread_key_t cache_key;         /* frees a thread's cache at its exit */
    bool cache_key_made;
    trace_domain domains[OM_DOMAIN_COUNT];
} trace_state;

static trace_state trace = {.lock = PTHREAD_MUTEX_INITIALIZER};
static __thread trace_thread trace_self __attribute__((tls_model("initial-exec")));

__thread omi_trace_site omi_trace_caller __attribute__((tls_model("initial-exec")));
bool omi_trace_wrapped;

static const char *const domain_names[OM_DOMAIN_COUNT] = {"raw", "mem", "obj"};

/* ---- The tracer's own memory --------------------------------------------------- */

/* om_raw_* with the wrapper passing through: fault injection sees these
 * calls, tracing does not. */
static void *own_malloc(size_t size)
{
    bool was_busy = trace_self.busy;
    trace_self.busy = true;
    void *p = om_raw_malloc(size);
    trace_self.busy = was_busy;
    return p;
}

static void *own_calloc(size_t count, size_t size)
{
    bool was_busy = trace_self.busy;
    trace_self.busy = true;
    void *p = om_raw_calloc(count, size);
    trace_self.busy = was_busy;
    return p;
}

static void own_free(void *p)
{
    bool was_busy = trace_self.busy;
    trace_self.busy = true;
    om_raw_free(p);
    trace_self.busy = was_busy;
}

/* ---- Capturing frames ------------------------------------------------------------ */

static uintptr_t thread_stack_top(void)
{
    if (trace_self.stack_top == 0) {
        pthread_attr_t attr;
        void *base;
        size_t size;
        if (pthread_getattr_np(pthread_self(), &attr) == 0) {
            if (pthread_attr_getstack(&attr, &base, &size) == 0)
                trace_self.stack_top = (uintptr_t)base + size;
            pthread_attr_destroy(&attr);
        }
        if (trace_self.stack_top == 0)
            trace_self.stack_top = UINTPTR_MAX;   /* unknown: ordering still bounds the walk */
    }
    return trace_self.stack_top;
}

/* Fills frames[0 … limit) and returns how many: the caller the entry point
 * recorded, then the frame-pointer chain from the caller's frame. A link is
 * followed only while it points above the previous one and below the top
 * of this thread's stack, so a caller without frame pointers ends the walk. */
static OMI_NOINLINE __attribute__((no_sanitize_address)) size_t capture_frames(uintptr_t *frames, size_t limit, uintptr_t ra,
                                          uintptr_t fp)
{
    frames[0] = ra;
    size_t n = 1;
    if (limit == 1)
        return n;
    uintptr_t low = (uintptr_t)__builtin_frame_address(0);
    uintptr_t top = thread_stack_top();
    while (n < limit && fp > low && fp <= top - 2 * sizeof(uintptr_t) &&
           fp % sizeof(uintptr_t) == 0) {
        const uintptr_t *link = (const uintptr_t *)fp;
        uintptr_t ret = link[1];
        if (ret == 0)
            break;
        frames[n++] = ret;
        low = fp;
        fp = link[0];
    }
    return n;
}

static uint64_t hash_frames(const uintptr_t *frames, size_t n, unsigned domain)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ domain ^ ((uint64_t)n << 8);
    for (size_t i = 0; i < n; i++) {
        h ^= frames[i];
        h *= 0xBF58476D1CE4E5B9ULL;
        h ^= h >> 29;
    }
    return h;
}

static bool record_matches(const trace_record *r, uint64_t hash, const uintptr_t *frames,
                           size_t n, unsigned domain)
{
    return r->hash == hash && r->nframes == n && r->domain == domain &&
           memcmp(r->frames, frames, n * sizeof *frames) == 0;
}

/* ---- The table of tracebacks (under trace.lock) ------------------------------------ */

static int table_grow_locked(void)
{
    size_t new_count = trace.bucket_count != 0 ? trace.bucket_count * 2 : TABLE_MIN_BUCKETS;
    trace_record **buckets = own_calloc(new_count, sizeof *buckets);
    if (buckets == NULL)
        return -1;
    for (size_t i = 0; i < trace.bucket_count; i++) {
        trace_record *r = trace.buckets[i];
        while (r != NULL) {
            trace_record *next = r->chain;
            size_t slot = r->hash & (new_count - 1);
            r->chain = buckets[slot];
            buckets[slot] = r;
            r = next;
        }
    }
    own_free(trace.buckets);
    trace.buckets = buckets;
    trace.bucket_count = new_count;
    return 0;
}

static trace_record *table_find_locked(uint64_t hash, const uintptr_t *frames, size_t n,
                                       unsigned domain)
{
    if (trace.bucket_count == 0)
        return NULL;
    for (trace_record *r = trace.buckets[hash & (trace.bucket_count - 1)]; r != NULL;
         r = r->chain)
        if (record_matches(r, hash, frames, n, domain))
            return r;
    return NULL;
}

static trace_record *table_insert_locked(uint64_t hash, const uintptr_t *frames, size_t n,
                                         unsigned domain)
{
    if (trace.record_count >= trace.bucket_count && table_grow_locked() != 0)
        return NULL;
    trace_record *r = own_malloc(sizeof *r + n * sizeof *frames);
    if (r == NULL)
        return NULL;
    r->hash = hash;
    atomic_init(&r->size, 0);
    atomic_init(&r->count, 0);
    r->epoch = atomic_load_explicit(&trace.epoch, memory_order_relaxed);
    r->domain = (uint16_t)domain;
    r->nframes = (uint16_t)n;
    memcpy(r->frames, frames, n * sizeof *frames);
    size_t slot = hash & (trace.bucket_count - 1);
    r->chain = trace.buckets[slot];
    trace.buckets[slot] = r;
    r->next_all = trace.all;
    trace.all = r;
    trace.record_count++;
    return r;
}

static void cache_free(void *cache)
{
    trace_self.cache = NULL;
    own_free(cache);
}

/* The thread's cache, made on first use; NULL if it cannot be (the
 * locked table still works). */
static cache_slot *thread_cache(void)
{
    if (omi_likely(trace_self.cache != NULL))
        return trace_self.cache;
    cache_slot *cache = own_calloc(CACHE_SIZE, sizeof *cache);
    if (cache == NULL)
        return NULL;
    trace_self.cache = cache;
    pthread_setspecific(trace.cache_key, cache);
    return cache;
}

/* The record of this traceback in the current epoch, made if new; NULL
 * when the tracer's memory runs out. */
static trace_record *record_of(const uintptr_t *frames, size_t n, unsigned domain)
{
    uint64_t hash = hash_frames(frames, n, domain);
    uint32_t epoch = atomic_load_explicit(&trace.epoch, memory_order_relaxed);
    cache_slot *cache = thread_cache();
    cache_slot *slot = cache != NULL ? &cache[hash & (CACHE_SIZE - 1)] : NULL;
    if (slot != NULL && slot->hash == hash && slot->epoch == epoch &&
        record_matches(slot->record, hash, frames, n, domain))
        return slot->record;
    pthread_mutex_lock(&trace.lock);
    trace_record *r = table_find_locked(hash, frames, n, domain);
    if (r == NULL)
        r = table_insert_locked(hash, frames, n, domain);
    pthread_mutex_unlock(&trace.lock);
    if (r != NULL && slot != NULL)
        *slot = (cache_slot){hash, epoch, r};
    return r;
}

/* ---- Counters ------------------------------------------------------------------------ */

static void peak_update(size_t total)
{
    size_t peak = atomic_load_explicit(&trace.peak, memory_order_relaxed);
    while (total > peak &&
           !atomic_compare_exchange_weak_explicit(&trace.peak, &peak, total,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

/* Adds (sign 1) or removes (sign -1) `size` bytes of one block. Serialised
 * domains use plain loads and stores; RAW atomic adds. The count of the
 * record changes last: om_trace_start frees an old record once it reads 0. */
static void account(trace_record *r, size_t size, int sign)
{
    size_t delta = sign > 0 ? size : (size_t)0 - size;
    size_t one = sign > 0 ? 1 : (size_t)0 - 1;
    bool current_epoch = r->epoch == atomic_load_explicit(&trace.epoch, memory_order_relaxed);
    if (r->domain == OM_DOMAIN_RAW) {
        atomic_fetch_add_explicit(&r->size, delta, memory_order_relaxed);
        atomic_fetch_add_explicit(&r->count, one, memory_order_release);
        if (!current_epoch)
            return;
        size_t raw = atomic_fetch_add_explicit(&trace.raw_current, delta,
                                               memory_order_relaxed) + delta;
        if (sign > 0)
            peak_update(raw + atomic_load_explicit(&trace.heap_current, memory_order_relaxed));
        return;
    }
    atomic_store_explicit(&r->size, atomic_load_explicit(&r->size, memory_order_relaxed) + delta,
                          memory_order_relaxed);
    atomic_store_explicit(&r->count, atomic_load_explicit(&r->count, memory_order_relaxed) + one,
                          memory_order_release);
    if (!current_epoch)
        return;
    size_t heap = atomic_load_explicit(&trace.heap_current, memory_order_relaxed) + delta;
    atomic_store_explicit(&trace.heap_current, heap, memory_order_relaxed);
    if (sign > 0 && heap + atomic_load_explicit(&trace.raw_current, memory_order_relaxed) >
                        atomic_load_explicit(&trace.peak, memory_order_relaxed))
        peak_update(heap + atomic_load_explicit(&trace.raw_current, memory_order_relaxed));
}

/* ---- Headers ------------------------------------------------------------------------- */

static trace_header *header_of(const void *p)
{
    return (trace_header *)((uintptr_t)p - HEADER_SIZE);
}

static void *user_of(trace_header *h)
{
    return (char *)h + HEADER_SIZE;
}

/* The live header in front of p, or NULL when p is not a live traced
 * block of this domain's chain. Reads the word before p only where it is
 * known to be readable (objmem memory per the address map, or any memory
 * for a system allocator, whose chunks have a size word before them). */
static trace_header *live_header(const trace_domain *d, const void *p)
{
    uintptr_t cookie_at = (uintptr_t)p - sizeof(uintptr_t);
    if (d->inner_is_heap && omi_addrmap_lookup((const void *)cookie_at) == 0)
        return NULL;
    if (!omi_asan_readable(cookie_at, sizeof(uintptr_t)))
        return NULL;
    trace_header *h = header_of(p);
    return h->cookie == ((uintptr_t)h ^ LIVE_KEY) ? h : NULL;
}

/* ---- The wrapper ----------------------------------------------------------------------- */

/* Takes the caller the entry point recorded, or, for a direct call to the
 * wrapper, the wrapper's own caller. */
#define TAKE_CALLER(site)                                                        \
    do {                                                                         \
        (site) = omi_trace_caller;                                               \
        omi_trace_caller.return_address = 0;                                     \
        if ((site).return_address == 0) {                                        \
            (site).return_address = (uintptr_t)__builtin_return_address(0);      \
            (site).frame = *(uintptr_t *)__builtin_frame_address(0);             \
        }                                                                        \
    } while (0)

static bool tracing_this_call(void)
{
    return atomic_load_explicit(&trace.tracing, memory_order_relaxed) && !trace_self.busy;
}

static void *traced_failure(size_t size)
{
    omi_out_of_memory(size);
    omi_set_error(OM_ENOMEM, "tracing: no memory to record the traceback of an allocation "
                  "of %zu bytes", size);
    return NULL;
}

/* Writes the header into the inner block `h` and counts the block; on a
 * failure to record the traceback, gives h back and returns NULL. */
static void *trace_finish(trace_domain *d, trace_header *h, size_t size, omi_trace_site site)
{
    uintptr_t frames[OM_TRACE_MAX_FRAMES];
    size_t limit = (size_t)atomic_load_explicit(&trace.nframes, memory_order_relaxed);
    size_t n = capture_frames(frames, limit, site.return_address, site.frame);
    trace_record *r = record_of(frames, n, (unsigned)d->domain);
    if (omi_unlikely(r == NULL)) {
        d->inner.free(d->inner.ctx, h);
        return traced_failure(size);
    }
    h->record = r;
    h->size = size;
    h->cookie = (uintptr_t)h ^ LIVE_KEY;
    account(r, size, 1);
    return user_of(h);
}

static void *trace_malloc(void *ctx, size_t size)
{
    trace_domain *d = ctx;
    omi_trace_site site;
    TAKE_CALLER(site);
    if (!tracing_this_call())
        return d->inner.malloc(d->inner.ctx, size);
    if (size > PTRDIFF_MAX - HEADER_SIZE)
        return omi_out_of_memory(size);
    trace_header *h = d->inner.malloc(d->inner.ctx, HEADER_SIZE + size);
    return h != NULL ? trace_finish(d, h, size, site) : NULL;
}

static void *trace_calloc(void *ctx, size_t count, size_t size)
{
    trace_domain *d = ctx;
    omi_trace_site site;
    TAKE_CALLER(site);
    if (!tracing_this_call())
        return d->inner.calloc(d->inner.ctx, count, size);
    size_t total;
    if (!omi_mul_size(count, size, &total) || total > PTRDIFF_MAX - HEADER_SIZE)
        return omi_calloc_overflow(count, size);
    trace_header *h = d->inner.calloc(d->inner.ctx, 1, HEADER_SIZE + total);
    return h != NULL ? trace_finish(d, h, total, site) : NULL;
}

static OMI_COLD _Noreturn void wrong_domain(const trace_domain *d, const void *p,
                                            const trace_header *h, const char *verb)
{
    fprintf(stderr, "objmem: fatal error: tracing: block %p allocated with om_%s_malloc "
                    "%s with om_%s_%s\n", p, domain_names[h->record->domain % OM_DOMAIN_COUNT],
            verb, domain_names[d->domain], verb[0] == 'f' ? "free" : "realloc");
    omi_trace_print_traceback(stderr, h->record->frames, h->record->nframes);
    fflush(stderr);
    abort();
}

static void trace_free(void *ctx, void *p)
{
    trace_domain *d = ctx;
    omi_trace_caller.return_address = 0;
    trace_header *h = p != NULL ? live_header(d, p) : NULL;
    if (h == NULL) {
        d->inner.free(d->inner.ctx, p);
        return;
    }
    if (omi_unlikely(h->record->domain != d->domain))
        wrong_domain(d, p, h, "freed");
    h->cookie = (uintptr_t)h ^ FREED_KEY;
    account(h->record, h->size, -1);
    d->inner.free(d->inner.ctx, h);
}

/* realloc of a traced block: the block moves to the traceback of this call
 * (as in CPython); with tracing off it keeps its old one. */
static void *trace_realloc_traced(trace_domain *d, trace_header *h, size_t size,
                                  omi_trace_site site)
{
    if (size > PTRDIFF_MAX - HEADER_SIZE)
        return omi_out_of_memory(size);
    trace_record *old = h->record;
    size_t old_size = h->size;
    trace_record *r = old;
    if (tracing_this_call()) {
        uintptr_t frames[OM_TRACE_MAX_FRAMES];
        size_t limit = (size_t)atomic_load_explicit(&trace.nframes, memory_order_relaxed);
        size_t n = capture_frames(frames, limit, site.return_address, site.frame);
        r = record_of(frames, n, (unsigned)d->domain);
        if (omi_unlikely(r == NULL))
            return traced_failure(size);
    }
    h->cookie = (uintptr_t)h ^ FREED_KEY;
    trace_header *moved = d->inner.realloc(d->inner.ctx, h, HEADER_SIZE + size);
    if (moved == NULL) {
        h->cookie = (uintptr_t)h ^ LIVE_KEY;
        return NULL;
    }
    account(old, old_size, -1);
    moved->record = r;
    moved->size = size;
    moved->cookie = (uintptr_t)moved ^ LIVE_KEY;
    account(r, size, 1);
    return user_of(moved);
}

static void *trace_realloc(void *ctx, void *p, size_t size)
{
    trace_domain *d = ctx;
    omi_trace_site site;
    TAKE_CALLER(site);
    if (p == NULL) {
        omi_trace_caller = site;
        return trace_malloc(ctx, size);
    }
    trace_header *h = live_header(d, p);
    if (h == NULL)
        return d->inner.realloc(d->inner.ctx, p, size);
    if (omi_unlikely(h->record->domain != d->domain))
        wrong_domain(d, p, h, "reallocated");
    return trace_realloc_traced(d, h, size, site);
}

/* ---- Installing ------------------------------------------------------------------------ */

static bool wrapper_is_current(const trace_domain *d)
{
    om_allocator current;
    om_get_allocator(d->domain, &current);
    return current.ctx == d && current.malloc == trace_malloc;
}

static void install_locked(void)
{
    for (int i = 0; i < OM_DOMAIN_COUNT; i++) {
        trace_domain *d = &trace.domains[i];
        d->domain = (om_domain)i;
        if (d->installed)
            continue;
        om_get_allocator(d->domain, &d->inner);
        d->inner_is_heap = i != OM_DOMAIN_RAW && d->inner.ctx == om_heap_default();
        om_allocator wrapper = {d, trace_malloc, trace_calloc, trace_realloc, trace_free};
        om_set_allocator(d->domain, &wrapper);
        d->installed = true;
    }
    omi_trace_wrapped = true;
}

/* Live blocks of `domain` that still carry a header, in any epoch. */
static size_t live_blocks_locked(om_domain domain)
{
    size_t n = 0;
    for (const trace_record *r = trace.all; r != NULL; r = r->next_all)
        if (r->domain == domain)
            n += atomic_load_explicit(&r->count, memory_order_acquire);
    return n;
}

static void uninstall_idle_locked(void)
{
    for (int i = 0; i < OM_DOMAIN_COUNT; i++) {
        trace_domain *d = &trace.domains[i];
        if (d->installed && wrapper_is_current(d) && live_blocks_locked(d->domain) == 0) {
            om_set_allocator(d->domain, &d->inner);
            d->installed = false;
        }
    }
}

/* Frees the records of old epochs that no block points to any more. */
static void sweep_locked(uint32_t epoch)
{
    trace_record **link = &trace.all;
    while (*link != NULL) {
        trace_record *r = *link;
        if (r->epoch != epoch && atomic_load_explicit(&r->count, memory_order_acquire) == 0) {
            *link = r->next_all;
            own_free(r);
        } else {
            link = &r->next_all;
        }
    }
}

static void new_epoch_locked(void)
{
    uint32_t epoch = atomic_fetch_add(&trace.epoch, 1) + 1;
    memset(trace.buckets, 0, trace.bucket_count * sizeof *trace.buckets);
    trace.record_count = 0;
    atomic_store(&trace.heap_current, 0);
    atomic_store(&trace.raw_current, 0);
    atomic_store(&trace.peak, 0);
    sweep_locked(epoch);
}

/* ---- Public: start, stop, counters ---------------------------------------------------------- */

int om_trace_start(int nframes)
{
    if (nframes < 1 || nframes > OM_TRACE_MAX_FRAMES) {
        omi_set_error(OM_EINVAL, "om_trace_start: nframes is %d, expected 1 … %d", nframes,
                      OM_TRACE_MAX_FRAMES);
        return -1;
    }
    pthread_mutex_lock(&trace.lock);
    int result = 0;
    if (!trace.cache_key_made) {
        result = pthread_key_create(&trace.cache_key, cache_free) == 0 ? 0 : -1;
        trace.cache_key_made = result == 0;
    }
    if (result == 0 && trace.bucket_count == 0)
        result = table_grow_locked();
    if (result != 0) {
        pthread_mutex_unlock(&trace.lock);
        omi_set_error(OM_ENOMEM, "om_trace_start: out of memory");
        return -1;
    }
    atomic_store(&trace.nframes, nframes);
    if (!atomic_load(&trace.tracing)) {
        new_epoch_locked();
        install_locked();
        atomic_store(&trace.tracing, true);
    }
    pthread_mutex_unlock(&trace.lock);
    return 0;
}

int om_trace_stop(void)
{
    pthread_mutex_lock(&trace.lock);
    if (atomic_load(&trace.tracing)) {
        atomic_store(&trace.tracing, false);
        new_epoch_locked();
        uninstall_idle_locked();
    }
    pthread_mutex_unlock(&trace.lock);
    return 0;
}

int om_trace_is_tracing(void)
{
    return atomic_load(&trace.tracing) ? 1 : 0;
}

int om_trace_get_traceback_limit(void)
{
    return atomic_load(&trace.tracing) ? atomic_load(&trace.nframes) : 0;
}

void om_trace_get_traced_memory(size_t *current, size_t *peak)
{
    size_t now = atomic_load(&trace.heap_current) + atomic_load(&trace.raw_current);
    size_t top = atomic_load(&trace.peak);
    if (current != NULL)
        *current = now;
    if (peak != NULL)
        *peak = top > now ? top : now;
}

void om_trace_reset_peak(void)
{
    atomic_store(&trace.peak, atomic_load(&trace.heap_current) + atomic_load(&trace.raw_current));
}

/* ---- Public: one block --------------------------------------------------------------------- */

/* The live or just-freed header whose user block is p, with no domain
 * known: the map decides readability for objmem memory; other memory is a
 * RAW (system) block. */
static trace_header *any_header(const void *p, bool freed_too)
{
    if (!omi_trace_wrapped || p == NULL)
        return NULL;
    uintptr_t cookie_at = (uintptr_t)p - sizeof(uintptr_t);
    if (omi_addrmap_lookup(p) != 0 && omi_addrmap_lookup((const void *)cookie_at) == 0)
        return NULL;
    if (!omi_asan_readable(cookie_at, sizeof(uintptr_t)))
        return NULL;
    trace_header *h = header_of(p);
    if (h->cookie == ((uintptr_t)h ^ LIVE_KEY) ||
        (freed_too && h->cookie == ((uintptr_t)h ^ FREED_KEY)))
        return h;
    return NULL;
}

/* The header of live block ptr, or of the block of the object at ptr: an
 * object of a GC type starts sizeof(omi_gc_head) into its block, behind the
 * collector's header (a block that small cannot hold such an object). */
static trace_header *object_header(const void *ptr)
{
    trace_header *h = any_header(ptr, false);
    if (h != NULL || ptr == NULL)
        return h;
    h = any_header((const unsigned char *)ptr - sizeof(omi_gc_head), false);
    return h != NULL && h->size >= sizeof(omi_gc_head) + sizeof(om_object) ? h : NULL;
}

om_traceback *om_trace_get_object_traceback(const void *ptr)
{
    trace_header *h = object_header(ptr);
    if (h == NULL) {
        omi_set_error(OM_EINVAL, "om_trace_get_object_traceback(%p): %s", ptr,
                      ptr == NULL ? "NULL" : "not a traced block");
        return NULL;
    }
    const trace_record *r = h->record;
    om_traceback *tb = own_malloc(sizeof *tb + r->nframes * sizeof tb->frames[0]);
    if (tb == NULL)
        return NULL;
    tb->nframes = r->nframes;
    tb->domain = (om_domain)r->domain;
    tb->size = h->size;
    for (size_t i = 0; i < r->nframes; i++)
        tb->frames[i] = (const void *)r->frames[i];
    return tb;
}

void om_traceback_free(om_traceback *tb)
{
    own_free(tb);
}

size_t omi_trace_usable_size(const void *p)
{
    trace_header *h = any_header(p, false);
    if (h != NULL)
        return h->size;
    if (omi_debug_active)
        return omi_debug_usable_size(p);
    return omi_usable_size("om_usable_size", p);
}

void omi_trace_print_block(FILE *out, const void *outer_user, size_t outer_size,
                           const void *inner_block)
{
    const trace_header *h = NULL;
    if (outer_size >= HEADER_SIZE)     /* tracing wraps the caller of this report */
        h = any_header((const char *)outer_user + HEADER_SIZE, true);
    if (h == NULL)                     /* tracing is inside it */
        h = any_header(inner_block, true);
    if (h == NULL)
        return;
    fprintf(out, "  allocated at (most recent call first):\n");
    omi_trace_print_traceback(out, h->record->frames, h->record->nframes);
}

/* ---- Names of frames ------------------------------------------------------------------------- */

/*
 * A process-wide cache: address -> frame_name. Filled by resolve_batch
 * (dladdr, then one addr2line run per library for the addresses not yet
 * named) and by om_snapshot_load for frames of libraries not loaded here.
 * Plain malloc: names are not the traced program's memory.
 */
typedef struct frame_name {
    struct frame_name *next;
    uintptr_t address;
    char *function;                  /* or NULL */
    char *file;                      /* source path, or NULL */
    unsigned line;
    char *library;                   /* path of the object, or NULL */
    uintptr_t offset;                /* address - the object's base */
    char *text;                      /* the printed form */
} frame_name;

#define NAME_BUCKETS 1024
static struct {
    pthread_mutex_t lock;
    frame_name *buckets[NAME_BUCKETS];
} names = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t name_slot(uintptr_t address)
{
    return (size_t)((address * 0x9E3779B97F4A7C15ULL) >> 54) & (NAME_BUCKETS - 1);
}

static frame_name *name_find_locked(uintptr_t address)
{
    for (frame_name *f = names.buckets[name_slot(address)]; f != NULL; f = f->next)
        if (f->address == address)
            return f;
    return NULL;
}

static char *copy_text(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash != NULL ? slash + 1 : path;
}

/* Builds f->text from its parts. */
static void name_compose(frame_name *f)
{
    char buf[NAME_MAX_LENGTH];
    const char *lib = f->library != NULL ? base_name(f->library) : "?";
    if (f->function != NULL && f->file != NULL)
        snprintf(buf, sizeof buf, "%s (%s:%u)", f->function, f->file, f->line);
    else if (f->function != NULL)
        snprintf(buf, sizeof buf, "%s (%s+0x%llx)", f->function, lib,
                 (unsigned long long)f->offset);
    else if (f->library != NULL)
        snprintf(buf, sizeof buf, "%s+0x%llx", lib, (unsigned long long)f->offset);
    else
        snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)f->address);
    f->text = strdup(buf);
}

/* A name from dladdr alone (exported symbols, library + offset). */
static frame_name *name_from_dladdr(uintptr_t address)
{
    frame_name *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    f->address = address;
    Dl_info info;
    if (address != 0 && dladdr((void *)(address - 1), &info) != 0) {
        f->library = copy_text(info.dli_fname);
        f->offset = address - (uintptr_t)info.dli_fbase;
        if (info.dli_sname != NULL)
            f->function = copy_text(info.dli_sname);
    }
    return f;
}

static void name_insert_locked(frame_name *f)
{
    size_t slot = name_slot(f->address);
    f->next = names.buckets[slot];
    names.buckets[slot] = f;
}

/* The path addr2line can open for `library` (the main program may be
 * known by a relative name or none). */
static const char *object_path(const char *library)
{
    return library != NULL && library[0] != '\0' && access(library, R_OK) == 0
               ? library : "/proc/self/exe";
}

/* Runs `program` -f -e path addr… and reads its output into a malloc'd
 * string; NULL if it cannot run. */
static char *run_addr2line(const char *program, const char *path, char **addresses, size_t n)
{
    char **argv = calloc(n + 5, sizeof *argv);
    int fds[2];
    if (argv == NULL || pipe(fds) != 0) {
        free(argv);
        return NULL;
    }
    argv[0] = (char *)program;
    argv[1] = "-f";
    argv[2] = "-e";
    argv[3] = (char *)path;
    memcpy(argv + 4, addresses, n * sizeof *argv);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    int spawned = posix_spawnp(&pid, program, &actions, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&actions);
    free(argv);
    close(fds[1]);
    char *out = NULL;
    size_t length = 0, capacity = 0;
    ssize_t got = 1;
    while (spawned == 0 && got > 0) {
        if (length + 4096 + 1 > capacity) {
            capacity = capacity * 2 + 8192;
            char *grown = realloc(out, capacity);
            if (grown == NULL)
                break;
            out = grown;
        }
        got = read(fds[0], out + length, capacity - length - 1);
        if (got > 0)
            length += (size_t)got;
    }
    close(fds[0]);
    int status = 0;
    if (spawned == 0)
        waitpid(pid, &status, 0);
    if (spawned != 0 || out == NULL || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        free(out);
        return NULL;
    }
    out[length] = '\0';
    return out;
}

/* Takes "function\nfile:line\n" of one address from *cursor into f. */
static void parse_addr2line(char **cursor, frame_name *f)
{
    char *function = strsep(cursor, "\n");
    char *location = *cursor != NULL ? strsep(cursor, "\n") : NULL;
    if (function != NULL && strcmp(function, "??") != 0 && function[0] != '\0') {
        free(f->function);
        f->function = strdup(function);
    }
    if (location == NULL)
        return;
    char *colon = strrchr(location, ':');
    if (colon == NULL || strncmp(location, "??", 2) == 0)
        return;
    *colon = '\0';
    unsigned line = (unsigned)strtoul(colon + 1, NULL, 10);
    if (line == 0)
        return;
    f->file = strdup(location);
    f->line = line;
}

/* The offset addr2line expects: the address for a fixed-address executable,
 * else the offset in the object. */
static uintptr_t lookup_address(const frame_name *f)
{
    Dl_info info;
    if (dladdr((void *)(f->address - 1), &info) != 0 && info.dli_fbase != NULL) {
        const ElfW(Ehdr) *ehdr = info.dli_fbase;
        if (ehdr->e_type == ET_EXEC)
            return f->address - 1;
    }
    return f->offset - 1;
}

/* Names from addr2line for the frames of one library (same `library`). */
static void name_with_addr2line(frame_name **group, size_t n)
{
    const char *program = getenv("OBJMEM_ADDR2LINE");
    if (program == NULL)
        program = "addr2line";
    if (program[0] == '\0' || group[0]->library == NULL)
        return;
    char **addresses = calloc(n, sizeof *addresses);
    if (addresses == NULL)
        return;
    size_t made = 0;
    for (; made < n; made++) {
        char buf[32];
        snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)lookup_address(group[made]));
        addresses[made] = strdup(buf);
        if (addresses[made] == NULL)
            break;
    }
    char *out = made == n ? run_addr2line(program, object_path(group[0]->library),
                                          addresses, n) : NULL;
    char *cursor = out;
    for (size_t i = 0; i < n && cursor != NULL; i++)
        parse_addr2line(&cursor, group[i]);
    free(out);
    for (size_t i = 0; i < made; i++)
        free(addresses[i]);
    free(addresses);
}

static bool same_library(const frame_name *a, const frame_name *b)
{
    return a->library != NULL && b->library != NULL && strcmp(a->library, b->library) == 0;
}

/* Names every address of the list that has none yet; on a failure the
 * frames keep what dladdr found. */
static void resolve_batch(const uintptr_t *addresses, size_t n)
{
    frame_name **fresh = calloc(n != 0 ? n : 1, sizeof *fresh);
    if (fresh == NULL)
        return;
    size_t count = 0;
    pthread_mutex_lock(&names.lock);
    for (size_t i = 0; i < n; i++) {
        bool seen = name_find_locked(addresses[i]) != NULL;
        for (size_t k = 0; k < count && !seen; k++)
            seen = fresh[k]->address == addresses[i];
        if (!seen && (fresh[count] = name_from_dladdr(addresses[i])) != NULL)
            count++;
    }
    pthread_mutex_unlock(&names.lock);
    /* Group by library (an insertion sort: batches are small) and ask once per group. */
    for (size_t i = 1; i < count; i++)
        for (size_t k = i; k > 0 && fresh[k - 1]->library != NULL && fresh[k]->library != NULL &&
                           strcmp(fresh[k - 1]->library, fresh[k]->library) > 0; k--) {
            frame_name *t = fresh[k];
            fresh[k] = fresh[k - 1];
            fresh[k - 1] = t;
        }
    for (size_t start = 0, end; start < count; start = end) {
        for (end = start + 1; end < count && same_library(fresh[start], fresh[end]); end++) {
        }
        name_with_addr2line(fresh + start, end - start);
    }
    pthread_mutex_lock(&names.lock);
    for (size_t i = 0; i < count; i++) {
        name_compose(fresh[i]);
        if (fresh[i]->text != NULL && name_find_locked(fresh[i]->address) == NULL) {
            name_insert_locked(fresh[i]);
            fresh[i] = NULL;
        }
    }
    pthread_mutex_unlock(&names.lock);
    for (size_t i = 0; i < count; i++) {
        if (fresh[i] != NULL) {
            free(fresh[i]->function);
            free(fresh[i]->file);
            free(fresh[i]->library);
            free(fresh[i]->text);
            free(fresh[i]);
        }
    }
    free(fresh);
}

/* The cached name of an address (resolving it if new), or NULL. Names are
 * never freed, so the pointer stays valid. */
static const frame_name *name_of(uintptr_t address)
{
    pthread_mutex_lock(&names.lock);
    const frame_name *f = name_find_locked(address);
    pthread_mutex_unlock(&names.lock);
    if (f != NULL)
        return f;
    resolve_batch(&address, 1);
    pthread_mutex_lock(&names.lock);
    f = name_find_locked(address);
    pthread_mutex_unlock(&names.lock);
    return f;
}

int om_trace_format_frame(const void *frame, char *buf, size_t size)
{
    if (buf == NULL && size > 0) {
        omi_set_error(OM_EINVAL, "om_trace_format_frame: buf is NULL");
        return -1;
    }
    const frame_name *f = name_of((uintptr_t)frame);
    char fallback[32];
    snprintf(fallback, sizeof fallback, "%p", frame);
    const char *text = f != NULL ? f->text : fallback;
    return snprintf(buf, size, "%s", text);
}

void omi_trace_print_traceback(FILE *out, const uintptr_t *frames, size_t n)
{
    resolve_batch(frames, n);
    for (size_t i = 0; i < n; i++) {
        char buf[NAME_MAX_LENGTH];
        om_trace_format_frame((const void *)frames[i], buf, sizeof buf);
        fprintf(out, "    %s\n", buf);
    }
}

/* ---- Snapshots ---------------------------------------------------------------------------- */

typedef struct snapshot_entry {
    size_t size;                     /* live bytes */
    size_t count;                    /* live blocks */
    unsigned domain;
    size_t nframes;
    const uintptr_t *frames;         /* into the snapshot's frame pool */
} snapshot_entry;

struct om_snapshot {
    int traceback_limit;
    size_t nentries;
    snapshot_entry *entries;
    uintptr_t *frame_pool;           /* every entry's frames, back to back */
};

void om_snapshot_free(om_snapshot *snap)
{
    if (snap == NULL)
        return;
    own_free(snap->entries);
    own_free(snap->frame_pool);
    own_free(snap);
}

int om_snapshot_traceback_limit(const om_snapshot *snap)
{
    return snap != NULL ? snap->traceback_limit : 0;
}

/* An empty snapshot with room for n entries and `frames` frames. */
static om_snapshot *snapshot_new(size_t n, size_t frames, int limit)
{
    om_snapshot *snap = own_calloc(1, sizeof *snap);
    if (snap == NULL)
        return NULL;
    snap->traceback_limit = limit;
    snap->entries = own_calloc(n != 0 ? n : 1, sizeof *snap->entries);
    snap->frame_pool = own_calloc(frames != 0 ? frames : 1, sizeof *snap->frame_pool);
    if (snap->entries == NULL || snap->frame_pool == NULL) {
        om_snapshot_free(snap);
        return NULL;
    }
    return snap;
}

om_snapshot *om_trace_take_snapshot(void)
{
    if (!atomic_load(&trace.tracing)) {
        omi_set_error(OM_EINVAL, "om_trace_take_snapshot: not tracing (call om_trace_start)");
        return NULL;
    }
    pthread_mutex_lock(&trace.lock);
    uint32_t epoch = atomic_load(&trace.epoch);
    size_t n = 0, frames = 0;
    for (const trace_record *r = trace.all; r != NULL; r = r->next_all)
        if (r->epoch == epoch && atomic_load(&r->count) != 0) {
            n++;
            frames += r->nframes;
        }
    om_snapshot *snap = snapshot_new(n, frames, atomic_load(&trace.nframes));
    if (snap != NULL) {
        uintptr_t *pool = snap->frame_pool;
        for (const trace_record *r = trace.all; r != NULL && snap->nentries < n; r = r->next_all) {
            size_t count = atomic_load(&r->count);
            if (r->epoch != epoch || count == 0)
                continue;
            memcpy(pool, r->frames, r->nframes * sizeof *pool);
            snap->entries[snap->nentries++] = (snapshot_entry){
                atomic_load(&r->size), count, r->domain, r->nframes, pool};
            pool += r->nframes;
        }
    }
    pthread_mutex_unlock(&trace.lock);
    return snap;
}

/* ---- Filters ------------------------------------------------------------------------------ */

static bool glob_matches(const char *pattern, const char *path)
{
    return path != NULL && (fnmatch(pattern, path, 0) == 0 ||
                            fnmatch(pattern, base_name(path), 0) == 0);
}

static bool frame_matches(const char *pattern, uintptr_t address)
{
    if (pattern == NULL)
        return true;
    const frame_name *f = name_of(address);
    return f != NULL && (glob_matches(pattern, f->file) || glob_matches(pattern, f->library));
}

static bool filter_matches(const om_trace_filter *filter, const snapshot_entry *e)
{
    if (filter->domain >= 0 && (unsigned)filter->domain != e->domain)
        return false;
    size_t frames = filter->all_frames ? e->nframes : 1;
    for (size_t i = 0; i < frames; i++)
        if (frame_matches(filter->pattern, e->frames[i]))
            return true;
    return false;
}

static bool entry_passes(const om_trace_filter *filters, size_t nfilters,
                         const snapshot_entry *e)
{
    for (size_t i = 0; i < nfilters; i++)
        if (filter_matches(&filters[i], e) != (filters[i].inclusive != 0))
            return false;
    return true;
}

om_snapshot *om_snapshot_filter(const om_snapshot *snap, const om_trace_filter *filters,
                                size_t nfilters)
{
    if (snap == NULL || (nfilters > 0 && filters == NULL)) {
        omi_set_error(OM_EINVAL, "om_snapshot_filter: %s is NULL",
                      snap == NULL ? "snap" : "filters");
        return NULL;
    }
    size_t frames = 0;
    for (size_t i = 0; i < snap->nentries; i++)
        frames += snap->entries[i].nframes;
    resolve_batch(snap->frame_pool, frames);
    om_snapshot *out = snapshot_new(snap->nentries, frames, snap->traceback_limit);
    if (out == NULL)
        return NULL;
    uintptr_t *pool = out->frame_pool;
    for (size_t i = 0; i < snap->nentries; i++) {
        const snapshot_entry *e = &snap->entries[i];
        if (!entry_passes(filters, nfilters, e))
            continue;
        memcpy(pool, e->frames, e->nframes * sizeof *pool);
        out->entries[out->nentries] = *e;
        out->entries[out->nentries++].frames = pool;
        pool += e->nframes;
    }
    return out;
}

/* ---- Statistics and compare ----------------------------------------------------------------- */

/* A group key: the frames that identify it under `group`. */
typedef struct group_item {
    const uintptr_t *frames;
    size_t nframes;
    size_t size, count;              /* the new snapshot's */
    size_t old_size, old_count;      /* the old snapshot's (compare) */
} group_item;

static int compare_keys(const group_item *a, const group_item *b)
{
    size_t n = a->nframes < b->nframes ? a->nframes : b->nframes;
    for (size_t i = 0; i < n; i++)
        if (a->frames[i] != b->frames[i])
            return a->frames[i] < b->frames[i] ? -1 : 1;
    return a->nframes < b->nframes ? -1 : a->nframes > b->nframes;
}

static int compare_keys_qsort(const void *a, const void *b)
{
    return compare_keys(a, b);
}

static size_t abs_diff(size_t a, size_t b)
{
    return a > b ? a - b : b - a;
}

/* Largest |size diff| first (0 for plain statistics), then largest size,
 * count, then by key: a total order, so results are deterministic. */
static int compare_rank(const void *pa, const void *pb)
{
    const group_item *a = pa, *b = pb;
    size_t da = abs_diff(a->size, a->old_size), db = abs_diff(b->size, b->old_size);
    if (da != db)
        return da > db ? -1 : 1;
    if (a->size != b->size)
        return a->size > b->size ? -1 : 1;
    if (a->count != b->count)
        return a->count > b->count ? -1 : 1;
    return compare_keys(a, b);
}

/* Appends snap's entries as items keyed by `group`; `old` says which
 * counters they fill. */
static void items_add(group_item *items, size_t *n, const om_snapshot *snap,
                      om_trace_group group, bool old)
{
    for (size_t i = 0; i < snap->nentries; i++) {
        const snapshot_entry *e = &snap->entries[i];
        group_item *it = &items[(*n)++];
        *it = (group_item){e->frames, group == OM_TRACE_BY_SITE ? 1 : e->nframes, 0, 0, 0, 0};
        if (old) {
            it->old_size = e->size;
            it->old_count = e->count;
        } else {
            it->size = e->size;
            it->count = e->count;
        }
    }
}

/* Sorts by key and merges equal keys in place; returns the new count. */
static size_t items_merge(group_item *items, size_t n)
{
    if (n == 0)
        return 0;
    qsort(items, n, sizeof *items, compare_keys_qsort);
    size_t out = 0;
    for (size_t i = 1; i < n; i++) {
        if (compare_keys(&items[out], &items[i]) == 0) {
            items[out].size += items[i].size;
            items[out].count += items[i].count;
            items[out].old_size += items[i].old_size;
            items[out].old_count += items[i].old_count;
        } else {
            items[++out] = items[i];
        }
    }
    return out + 1;
}

void om_trace_stats_free(om_trace_stats *stats)
{
    if (stats == NULL)
        return;
    own_free(stats->entries);
    own_free(stats);
}

/* The stats object for merged items: one allocation holds the struct, the
 * entries and their frames. */
static om_trace_stats *stats_build(group_item *items, size_t n)
{
    qsort(items, n, sizeof *items, compare_rank);
    size_t frames = 0;
    for (size_t i = 0; i < n; i++)
        frames += items[i].nframes;
    om_trace_stats *stats = own_calloc(1, sizeof *stats);
    if (stats == NULL)
        return NULL;
    size_t entry_bytes = (n != 0 ? n : 1) * sizeof(om_trace_stat);
    stats->entries = own_malloc(entry_bytes + frames * sizeof(void *));
    if (stats->entries == NULL) {
        own_free(stats);
        return NULL;
    }
    const void **pool = (const void **)((char *)stats->entries + entry_bytes);
    for (size_t i = 0; i < n; i++) {
        const group_item *it = &items[i];
        for (size_t k = 0; k < it->nframes; k++)
            pool[k] = (const void *)it->frames[k];
        stats->entries[i] = (om_trace_stat){
            it->size, it->count, (ptrdiff_t)(it->size - it->old_size),
            (ptrdiff_t)(it->count - it->old_count), it->nframes, pool};
        stats->total_size += it->size;
        stats->total_size_diff += stats->entries[i].size_diff;
        pool += it->nframes;
    }
    stats->count = n;
    return stats;
}

static om_trace_stats *group_snapshots(const om_snapshot *old_snap, const om_snapshot *new_snap,
                                       om_trace_group group)
{
    size_t n = new_snap->nentries + (old_snap != NULL ? old_snap->nentries : 0);
    group_item *items = own_malloc((n != 0 ? n : 1) * sizeof *items);
    if (items == NULL)
        return NULL;
    size_t made = 0;
    items_add(items, &made, new_snap, group, false);
    if (old_snap != NULL)
        items_add(items, &made, old_snap, group, true);
    om_trace_stats *stats = stats_build(items, items_merge(items, made));
    own_free(items);
    return stats;
}

static bool group_is_valid(om_trace_group group, const char *function)
{
    if (group == OM_TRACE_BY_SITE || group == OM_TRACE_BY_TRACEBACK)
        return true;
    omi_set_error(OM_EINVAL, "%s: unknown group %d", function, (int)group);
    return false;
}

om_trace_stats *om_snapshot_statistics(const om_snapshot *snap, om_trace_group group)
{
    if (snap == NULL) {
        omi_set_error(OM_EINVAL, "om_snapshot_statistics: snap is NULL");
        return NULL;
    }
    if (!group_is_valid(group, "om_snapshot_statistics"))
        return NULL;
    return group_snapshots(NULL, snap, group);
}

om_trace_stats *om_snapshot_compare(const om_snapshot *old_snap, const om_snapshot *new_snap,
                                    om_trace_group group)
{
    if (old_snap == NULL || new_snap == NULL) {
        omi_set_error(OM_EINVAL, "om_snapshot_compare: a snapshot is NULL");
        return NULL;
    }
    if (!group_is_valid(group, "om_snapshot_compare"))
        return NULL;
    return group_snapshots(old_snap, new_snap, group);
}

void om_trace_print_stats(FILE *out, const om_trace_stats *stats, size_t limit)
{
    if (out == NULL || stats == NULL)
        return;
    size_t n = limit != 0 && limit < stats->count ? limit : stats->count;
    for (size_t i = 0; i < n; i++) {
        const om_trace_stat *s = &stats->entries[i];
        char name[NAME_MAX_LENGTH];
        om_trace_format_frame(s->nframes > 0 ? s->frames[0] : NULL, name, sizeof name);
        fprintf(out, "%s: size=%zu B, count=%zu", name, s->size, s->count);
        if (s->size_diff != 0 || s->count_diff != 0)
            fprintf(out, " (%+td B, %+td blocks)", s->size_diff, s->count_diff);
        fputc('\n', out);
        for (size_t k = 1; k < s->nframes; k++) {
            om_trace_format_frame(s->frames[k], name, sizeof name);
            fprintf(out, "    %s\n", name);
        }
    }
}

/* ---- Dump and load ----------------------------------------------------------------------------- */

/*
 * File format, version 1 (all integers little-endian u64 unless noted):
 *   "OMTRACE\n"                     8 bytes
 *   version (u32), traceback limit (u32)
 *   frame count F, entry count E
 *   F frames:  address, offset, library length L, name length N,
 *              L bytes of library path, N bytes of name (no NULs)
 *   E entries: size, count, domain, nframes, nframes frame indices (< F)
 *   checksum: FNV-1a 64 of every byte before it
 * The reader checks each length against the bytes left before reading,
 * every index against F, and the checksum before building anything.
 */

typedef struct dump_writer {
    FILE *file;
    uint64_t checksum;
    bool failed;
} dump_writer;

static uint64_t fnv1a(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001B3ULL;
    }
    return h;
}
#define FNV_OFFSET 0xCBF29CE484222325ULL

static void dump_bytes(dump_writer *w, const void *data, size_t n)
{
    w->checksum = fnv1a(w->checksum, data, n);
    if (!w->failed && fwrite(data, 1, n, w->file) != n)
        w->failed = true;
}

static void dump_u64(dump_writer *w, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    dump_bytes(w, b, 8);
}

static void dump_u32(dump_writer *w, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    dump_bytes(w, b, 4);
}

static int compare_addresses(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* The snapshot's distinct frames, sorted; *n receives their number. */
static uintptr_t *distinct_frames(const om_snapshot *snap, size_t *n)
{
    size_t total = 0;
    for (size_t i = 0; i < snap->nentries; i++)
        total += snap->entries[i].nframes;
    uintptr_t *frames = own_malloc((total != 0 ? total : 1) * sizeof *frames);
    if (frames == NULL)
        return NULL;
    memcpy(frames, snap->frame_pool, total * sizeof *frames);
    qsort(frames, total, sizeof *frames, compare_addresses);
    size_t out = 0;
    for (size_t i = 0; i < total; i++)
        if (out == 0 || frames[out - 1] != frames[i])
            frames[out++] = frames[i];
    *n = out;
    return frames;
}

static uint64_t frame_index(const uintptr_t *frames, size_t n, uintptr_t address)
{
    const uintptr_t *hit = bsearch(&address, frames, n, sizeof *frames, compare_addresses);
    return (uint64_t)(hit - frames);
}

static void dump_frame(dump_writer *w, uintptr_t address)
{
    const frame_name *f = name_of(address);
    const char *library = f != NULL && f->library != NULL ? f->library : "";
    const char *text = f != NULL ? f->text : "?";
    size_t library_length = strnlen(library, NAME_MAX_LENGTH);
    size_t text_length = strnlen(text, NAME_MAX_LENGTH);
    dump_u64(w, address);
    dump_u64(w, f != NULL ? f->offset : 0);
    dump_u64(w, library_length);
    dump_u64(w, text_length);
    dump_bytes(w, library, library_length);
    dump_bytes(w, text, text_length);
}

static void dump_body(dump_writer *w, const om_snapshot *snap, const uintptr_t *frames,
                      size_t nframes)
{
    dump_bytes(w, DUMP_MAGIC, 8);
    dump_u32(w, DUMP_VERSION);
    dump_u32(w, (uint32_t)snap->traceback_limit);
    dump_u64(w, nframes);
    dump_u64(w, snap->nentries);
    for (size_t i = 0; i < nframes; i++)
        dump_frame(w, frames[i]);
    for (size_t i = 0; i < snap->nentries; i++) {
        const snapshot_entry *e = &snap->entries[i];
        dump_u64(w, e->size);
        dump_u64(w, e->count);
        dump_u64(w, e->domain);
        dump_u64(w, e->nframes);
        for (size_t k = 0; k < e->nframes; k++)
            dump_u64(w, frame_index(frames, nframes, e->frames[k]));
    }
    dump_u64(w, w->checksum);
}

int om_snapshot_dump(const om_snapshot *snap, const char *path)
{
    if (snap == NULL || path == NULL) {
        omi_set_error(OM_EINVAL, "om_snapshot_dump: %s is NULL", snap == NULL ? "snap" : "path");
        return -1;
    }
    size_t nframes = 0;
    uintptr_t *frames = distinct_frames(snap, &nframes);
    if (frames == NULL)
        return -1;
    resolve_batch(frames, nframes);
    dump_writer w = {fopen(path, "wb"), FNV_OFFSET, false};
    if (w.file == NULL) {
        own_free(frames);
        omi_set_error(OM_ENOMEM, "om_snapshot_dump: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    dump_body(&w, snap, frames, nframes);
    own_free(frames);
    if (fclose(w.file) != 0 || w.failed) {
        omi_set_error(OM_ENOMEM, "om_snapshot_dump: cannot write %s", path);
        return -1;
    }
    return 0;
}

typedef struct load_reader {
    const unsigned char *at;
    size_t left;
    bool failed;
} load_reader;

static const unsigned char *load_bytes(load_reader *r, size_t n)
{
    if (r->failed || n > r->left) {
        r->failed = true;
        return NULL;
    }
    const unsigned char *p = r->at;
    r->at += n;
    r->left -= n;
    return p;
}

static uint64_t load_u64(load_reader *r)
{
    const unsigned char *b = load_bytes(r, 8);
    uint64_t v = 0;
    for (int i = 0; b != NULL && i < 8; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

static uint32_t load_u32(load_reader *r)
{
    const unsigned char *b = load_bytes(r, 4);
    uint32_t v = 0;
    for (int i = 0; b != NULL && i < 4; i++)
        v |= (uint32_t)b[i] << (8 * i);
    return v;
}

/* The whole file in memory (own memory), or NULL with the error set. */
static unsigned char *load_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (f == NULL || fstat(fileno(f), &st) != 0 || st.st_size < 0) {
        omi_set_error(OM_EINVAL, "om_snapshot_load: cannot open %s: %s", path, strerror(errno));
        if (f != NULL)
            fclose(f);
        return NULL;
    }
    unsigned char *data = own_malloc((size_t)st.st_size + 1);
    size_t got = data != NULL ? fread(data, 1, (size_t)st.st_size, f) : 0;
    fclose(f);
    if (data == NULL)
        return NULL;
    *size = got;
    return data;
}

/* Where a library's code is in this process: its base, found by path. */
typedef struct library_search {
    const char *path;
    uintptr_t base;
    bool found;
} library_search;

static int find_library(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    library_search *search = arg;
    const char *name = info->dlpi_name;
    if (name == NULL || name[0] == '\0')
        name = "";
    Dl_info probe;
    /* The main program has no name here; dladdr names it as the frames did. */
    if (name[0] == '\0' && info->dlpi_phnum > 0 &&
        dladdr((void *)(info->dlpi_addr + info->dlpi_phdr[0].p_vaddr), &probe) != 0 &&
        probe.dli_fname != NULL)
        name = probe.dli_fname;
    if (strcmp(name, search->path) != 0)
        return 0;
    search->base = info->dlpi_addr;
    search->found = true;
    return 1;
}

/* The address of a stored frame in this process: rebased when its library
 * is loaded here (the same address when nothing moved), else a tag value
 * in the upper half (never user code) that only its stored name explains. */
#define FOREIGN_FRAME_TAG ((uintptr_t)1 << (sizeof(uintptr_t) * 8 - 1))
static uintptr_t rebase_frame(const char *library, uintptr_t address, uintptr_t offset)
{
    if (library[0] != '\0') {
        library_search search = {library, 0, false};
        dl_iterate_phdr(find_library, &search);
        if (search.found) {
            Dl_info info;
            uintptr_t here = search.base + offset;
            if (dladdr((void *)(here - 1), &info) != 0 && info.dli_fbase != NULL &&
                ((const ElfW(Ehdr) *)info.dli_fbase)->e_type == ET_EXEC)
                return address;
            return here;
        }
    }
    return FOREIGN_FRAME_TAG | address;
}

/* Remembers the stored name of a frame this process cannot name itself. */
static void name_remember(uintptr_t address, const char *library, uintptr_t offset,
                          const unsigned char *text, size_t length)
{
    pthread_mutex_lock(&names.lock);
    if (name_find_locked(address) == NULL) {
        frame_name *f = calloc(1, sizeof *f);
        char *copy = malloc(length + 1);
        if (f != NULL && copy != NULL) {
            memcpy(copy, text, length);
            copy[length] = '\0';
            f->address = address;
            f->offset = offset;
            f->library = library[0] != '\0' ? strdup(library) : NULL;
            f->text = copy;
            name_insert_locked(f);
        } else {
            free(f);
            free(copy);
        }
    }
    pthread_mutex_unlock(&names.lock);
}

/* Reads the frame table into frames[0 … n); false on a malformed record. */
static bool load_frames(load_reader *r, uintptr_t *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t address = load_u64(r), offset = load_u64(r);
        uint64_t library_length = load_u64(r), text_length = load_u64(r);
        if (r->failed || library_length > NAME_MAX_LENGTH || text_length > NAME_MAX_LENGTH)
            return false;
        const unsigned char *library = load_bytes(r, library_length);
        const unsigned char *text = load_bytes(r, text_length);
        if (r->failed || memchr(library, '\0', library_length) != NULL)
            return false;
        char path[NAME_MAX_LENGTH + 1];
        memcpy(path, library, library_length);
        path[library_length] = '\0';
        frames[i] = rebase_frame(path, (uintptr_t)address, (uintptr_t)offset);
        if (frames[i] & FOREIGN_FRAME_TAG)
            name_remember(frames[i], path, (uintptr_t)offset, text, text_length);
    }
    return true;
}

/* Reads the entries into snap (room made by the caller); false if bad. */
static bool load_entries(load_reader *r, om_snapshot *snap, const uintptr_t *frames,
                         size_t nframes, size_t nentries, size_t pool_capacity)
{
    uintptr_t *pool = snap->frame_pool;
    size_t used = 0;
    for (size_t i = 0; i < nentries; i++) {
        uint64_t size = load_u64(r), count = load_u64(r);
        uint64_t domain = load_u64(r), n = load_u64(r);
        if (r->failed || domain >= OM_DOMAIN_COUNT || n == 0 || n > OM_TRACE_MAX_FRAMES ||
            n > pool_capacity - used)
            return false;
        for (size_t k = 0; k < n; k++) {
            uint64_t index = load_u64(r);
            if (r->failed || index >= nframes)
                return false;
            pool[used + k] = frames[index];
        }
        snap->entries[snap->nentries++] =
            (snapshot_entry){(size_t)size, (size_t)count, (unsigned)domain, (size_t)n,
                             pool + used};
        used += n;
    }
    return true;
}

static om_snapshot *load_parse(const unsigned char *data, size_t size)
{
    load_reader r = {data, size, false};
    const unsigned char *magic = load_bytes(&r, 8);
    uint32_t version = load_u32(&r);
    uint32_t limit = load_u32(&r);
    uint64_t nframes = load_u64(&r), nentries = load_u64(&r);
    /* Every frame takes at least 32 bytes and every entry 40: bound the
     * counts by the file before allocating for them. */
    if (r.failed || memcmp(magic, DUMP_MAGIC, 8) != 0 || version != DUMP_VERSION ||
        limit == 0 || limit > OM_TRACE_MAX_FRAMES || nframes > r.left / 32 ||
        nentries > r.left / 40)
        return NULL;
    uintptr_t *frames = own_malloc((nframes != 0 ? nframes : 1) * sizeof *frames);
    size_t pool_capacity = (r.left - 32 * nframes) / 8;
    om_snapshot *snap = frames != NULL
                            ? snapshot_new(nentries, pool_capacity, (int)limit) : NULL;
    bool ok = snap != NULL && load_frames(&r, frames, nframes) &&
              load_entries(&r, snap, frames, nframes, nentries, pool_capacity);
    own_free(frames);
    if (!ok || r.left != 8) {
        om_snapshot_free(snap);
        return NULL;
    }
    return snap;
}

om_snapshot *om_snapshot_load(const char *path)
{
    if (path == NULL) {
        omi_set_error(OM_EINVAL, "om_snapshot_load: path is NULL");
        return NULL;
    }
    om_clear_error();
    size_t size = 0;
    unsigned char *data = load_file(path, &size);
    if (data == NULL)
        return NULL;
    om_snapshot *snap = NULL;
    if (size >= 8) {
        uint64_t stored = 0;
        for (int i = 0; i < 8; i++)
            stored |= (uint64_t)data[size - 8 + i] << (8 * i);
        if (stored == fnv1a(FNV_OFFSET, data, size - 8))
            snap = load_parse(data, size);
    }
    own_free(data);
    if (snap == NULL && om_last_error() != OM_ENOMEM)
        omi_set_error(OM_EINVAL, "om_snapshot_load: %s is not a version %u objmem trace "
                      "snapshot, or it is truncated or corrupt", path, DUMP_VERSION);
    return snap;
}

/* ---- OBJMEM_TRACEMALLOC, OBJMEM_TRACE_OUTPUT ----------------------------------------------------- */

/* The path OBJMEM_TRACE_OUTPUT named, copied at load time (the program may
 * change its environment before it exits); empty when unset. */
static char trace_output_path[4096];

/* atexit: what is still traced when the program ends, dumped to
 * trace_output_path for `objmem trace` (or om_snapshot_load). Registered
 * at load time, so it runs after the program's own atexit handlers. */
static void trace_dump_at_exit(void)
{
    om_snapshot *snap = om_trace_take_snapshot();
    if (snap == NULL || om_snapshot_dump(snap, trace_output_path) != 0)
        fprintf(stderr, "objmem: OBJMEM_TRACE_OUTPUT: cannot write the trace snapshot to %s: %s\n",
                trace_output_path, om_last_error_message());
    om_snapshot_free(snap);
}

static void trace_output_at_exit(void)
{
    const char *path = getenv("OBJMEM_TRACE_OUTPUT");
    if (path == NULL || *path == '\0')
        return;
    if (strlen(path) >= sizeof trace_output_path) {
        fprintf(stderr, "objmem: ignoring OBJMEM_TRACE_OUTPUT (a path of %zu bytes; at most %zu)\n",
                strlen(path), sizeof trace_output_path - 1);
        return;
    }
    strcpy(trace_output_path, path);
    atexit(trace_dump_at_exit);
}

void omi_trace_read_environment(void)
{
    const char *text = getenv("OBJMEM_TRACEMALLOC");
    if (text == NULL || *text == '\0')
        return;
    char *end;
    long n = strtol(text, &end, 10);
    if (*end != '\0' || n < 1 || n > OM_TRACE_MAX_FRAMES || om_trace_start((int)n) != 0)
        fprintf(stderr, "objmem: ignoring OBJMEM_TRACEMALLOC=%s (expected 1 … %d)\n", text,
                OM_TRACE_MAX_FRAMES);
    else
        trace_output_at_exit();
}
