/*
 * alloc_bench.c — objmem's allocator against its peers.
 *
 * Role. `make bench` runs this program. It times eight deterministic
 * workloads (bench/workloads.h): four of small objects, (a) pairs,
 * (b) churn, (c) bulk, (d) trees; and four of bigger blocks, (e) medium
 * pairs, (e') a medium window (with peak RSS against the bytes held),
 * (f) large pairs and (g) a buffer grown by realloc, against:
 *
 *   objmem     om_obj_malloc / om_obj_free / om_obj_realloc from objmem's
 *              shared library
 *   objmem-secure  the same in hardened mode (OBJMEM_SECURE=1 in the
 *              child's environment; issue 9's target: <= 1.3x objmem's time
 *              on small-object pairs)
 *   pymalloc   PyObject_Malloc / PyObject_Free / PyObject_Realloc from
 *              libpython (CPython 3.11; above 512 B it calls malloc)
 *   glibc      malloc / free, the system allocator
 *   mimalloc   malloc / free with libmimalloc.so.2 in LD_PRELOAD
 *   jemalloc   malloc / free with libjemalloc.so.2 in LD_PRELOAD
 *   tcmalloc   malloc / free with libtcmalloc_minimal.so.4 in LD_PRELOAD
 *
 * and prints ns per operation, peak RSS, and every peer's time as a ratio to
 * objmem's (peer / objmem: above 1 means objmem is faster), each the median
 * of --runs runs.
 *
 * Process structure. The parent never allocates on anyone's behalf: for each
 * (workload, run, allocator) it forks and re-executes itself as
 *   alloc_bench --child ALLOC WORKLOAD [--quick]
 * with LD_PRELOAD set to the peer's library (or removed for the others). The
 * child checks that `malloc` really resolves to the library it was promised,
 * runs the workload once and writes one line on its stdout:
 *   ok <ops> <elapsed_ns> <cpu_ns> <peak_kb> <after_kb> <base_kb> <retained_kb>
 *      <moves> <live_max_bytes>
 * A fresh process per measurement means no allocator inherits another's
 * heap, page cache of freed memory or RSS high-water mark. Runs are
 * interleaved (workload → run → allocator) so that drift on a noisy machine
 * spreads over every allocator instead of hitting one.
 *
 * Fairness rules kept here:
 *  - all six are shared libraries reached through the PLT (objmem's too);
 *  - the workload text is compiled three times, once per calling family
 *    (malloc/free/realloc, om_obj_*, PyObject_*), never through a function
 *    pointer;
 *  - one xorshift64 sequence with one seed feeds every allocator;
 *  - each block gets its first byte written and its address escapes into an
 *    empty asm statement, so no compiler can fold a malloc/free pair away
 *    (GCC does that for the builtin malloc, which would favour the peers);
 *  - the bench's own arrays come from mmap, outside every allocator;
 *  - time is CLOCK_MONOTONIC; RSS is VmHWM / VmRSS of the child alone.
 *
 * pymalloc needs no Py_Initialize in 3.11: its state is static and
 * PYMEM_DOMAIN_OBJ is statically set to pymalloc in a release build. The
 * child proves it before timing with _PyObject_DebugMallocStats, which
 * returns 0 when pymalloc is not the OBJ allocator.
 */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <gnu/libc-version.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "objmem.h"

#ifdef OM_BENCH_HAVE_PYTHON
/* The symbols we need from libpython's stable ABI, declared here rather
 * than through Python.h, whose feature macros would clash with ours. The
 * malloc attributes match what <stdlib.h> gives malloc and objmem.h gives
 * om_obj_malloc, so the compiler knows the same about all three. */
extern void *PyObject_Malloc(size_t size) __attribute__((malloc, alloc_size(1)));
extern void *PyObject_Realloc(void *ptr, size_t size) __attribute__((alloc_size(2)));
extern void PyObject_Free(void *ptr);
extern const char *Py_GetVersion(void);
extern int _PyObject_DebugMallocStats(FILE *out);
#endif

extern char **environ;

/* Set by bench/CMakeLists.txt: the source revision and build type. */
#ifndef OM_BENCH_GIT_REV
#define OM_BENCH_GIT_REV "unknown revision"
#endif
#ifndef OM_BENCH_BUILD_TYPE
#define OM_BENCH_BUILD_TYPE "unknown build type"
#endif

/* ------------------------------------------------------------------------ */
/* Parameters                                                               */
/* ------------------------------------------------------------------------ */

/* Full-size workloads, as issues 2 ((a)-(d)) and 3 ((e)-(g)) fix them. */
#define FULL_PAIRS        50000000u  /* (a) malloc+free pairs */
#define FULL_CHURN_LIVE    1000000u  /* (b) live objects */
#define FULL_CHURN_STEPS  20000000u  /* (b) replace steps */
#define FULL_BULK_COUNT   10000000u  /* (c) objects */
#define FULL_TREE_DEPTH         20   /* (d) max depth */
#define FULL_MEDIUM_PAIRS  5000000u  /* (e) malloc+free pairs */
#define FULL_WINDOW_LIVE      4096u  /* (e') live blocks */
#define FULL_WINDOW_STEPS  5000000u  /* (e') replace steps */
#define FULL_LARGE_PAIRS   1000000u  /* (f) malloc+free pairs */
#define FULL_REALLOC_MAX  ((size_t)64 << 20)  /* (g) final size, bytes */

/* --quick: a smoke run that finishes in seconds. */
#define QUICK_PAIRS        2000000u
#define QUICK_CHURN_LIVE    100000u
#define QUICK_CHURN_STEPS  1000000u
#define QUICK_BULK_COUNT    500000u
#define QUICK_TREE_DEPTH        14
#define QUICK_MEDIUM_PAIRS  200000u
#define QUICK_WINDOW_LIVE     1024u
#define QUICK_WINDOW_STEPS  200000u
#define QUICK_LARGE_PAIRS    20000u
#define QUICK_REALLOC_MAX ((size_t)4 << 20)

/* The size ranges of rows (e)-(g), inclusive and disjoint from (a)'s
 * 8-512 B, so that each row exercises one tier of objmem: medium
 * 513 B-32 KiB for (e) and (e'), 32 KiB + 1 B-1 MiB for (f) (objmem's
 * medium tier up to 256 KiB, its own mappings above). */
#define WL_MEDIUM_MIN 513u
#define WL_MEDIUM_MAX 32768u
#define WL_LARGE_MIN  32769u
#define WL_LARGE_MAX  1048576u

#define BENCH_SEED UINT64_C(0x9E3779B97F4A7C15)
#define MAX_RUNS 99

typedef struct bench_params {
    uint64_t pairs;         /* (a) malloc+free pairs */
    size_t churn_live;      /* (b) live slots */
    uint64_t churn_steps;   /* (b) replace steps */
    size_t bulk_count;      /* (c) objects */
    int tree_depth;         /* (d) max depth; the stretch tree is one deeper */
    uint64_t medium_pairs;  /* (e) malloc+free pairs */
    size_t window_live;     /* (e') live blocks */
    uint64_t window_steps;  /* (e') replace steps */
    uint64_t large_pairs;   /* (f) malloc+free pairs */
    size_t realloc_max;     /* (g) final size of the buffer, bytes */
} bench_params;

/* What one child measures in one run. */
typedef struct bench_result {
    uint64_t ops;           /* operations timed (see each workload) */
    uint64_t elapsed_ns;    /* wall time (CLOCK_MONOTONIC) for those operations */
    uint64_t cpu_ns;        /* CPU time of the process (user + kernel, so page
                               faults count) over the same intervals */
    uint64_t peak_kb;       /* VmHWM after the workload, KiB */
    uint64_t after_kb;      /* (c) RSS after every free, KiB */
    uint64_t base_kb;       /* (c) RSS before the first allocation, KiB */
    uint64_t retained_kb;   /* (c) RSS the allocator kept after every free, KiB */
    uint64_t moves;         /* (g) reallocs that returned a new address */
    uint64_t live_max_bytes;/* (e') most bytes held at once (requested sizes) */
} bench_result;

typedef struct tree_node {
    struct tree_node *left;     /* NULL in a leaf */
    struct tree_node *right;    /* NULL in a leaf */
} tree_node;

/* ------------------------------------------------------------------------ */
/* Helpers shared by every allocator family                                 */
/* ------------------------------------------------------------------------ */

/* Marsaglia's xorshift64 (13, 7, 17): fast, and the same for everyone. */
static inline uint64_t rng_next(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

static inline uint64_t clock_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A timed interval starts here. Wall time is what the tables report; the
 * process CPU time beside it shows whether the child was preempted (on a busy
 * machine wall time grows, CPU time much less). */
typedef struct bench_clock {
    uint64_t wall_ns;
    uint64_t cpu_ns;
} bench_clock;

static inline bench_clock clock_start(void)
{
    bench_clock c;
    c.cpu_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    c.wall_ns = clock_ns(CLOCK_MONOTONIC);
    return c;
}

/* Add the interval since `start` to the result's times. */
static inline void clock_stop(bench_clock start, bench_result *res)
{
    uint64_t wall = clock_ns(CLOCK_MONOTONIC);
    uint64_t cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    res->elapsed_ns += wall - start.wall_ns;
    res->cpu_ns += cpu - start.cpu_ns;
}

/* Write the block's first byte and let its address escape, so that the
 * compiler must perform every allocation and every store. */
static inline void touch_block(void *p, uint64_t r)
{
    *(volatile unsigned char *)p = (unsigned char)r;
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

/* Write one byte in every page the block [p, p + size) overlaps: the first
 * byte, then every 4 KiB, then the last byte (consecutive writes are at most
 * 4 KiB apart, so none of its pages is skipped). The block's memory is then
 * resident, whatever the allocator did with it before. */
static inline void touch_pages(void *p, size_t size, uint64_t r)
{
    volatile unsigned char *b = p;
    for (size_t off = 0; off < size; off += 4096)
        b[off] = (unsigned char)r;
    b[size - 1] = (unsigned char)r;
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

/* A workload found its data wrong: the allocator under test is broken. */
static void bench_bad(const char *what, size_t where) __attribute__((noreturn, cold, noinline));
static void bench_bad(const char *what, size_t where)
{
    fprintf(stderr, "alloc_bench: %s (at byte %zu)\n", what, where);
    exit(4);
}

static void bench_oom(size_t size) __attribute__((noreturn, cold, noinline));
static void bench_oom(size_t size)
{
    fprintf(stderr, "alloc_bench: allocation of %zu bytes failed\n", size);
    exit(3);
}

/* Memory for the bench's own arrays, outside every allocator under test. */
static void *bench_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        fprintf(stderr, "alloc_bench: mmap of %zu bytes failed: %s\n",
                size, strerror(errno));
        exit(3);
    }
    return p;
}

static void bench_unmap(void *p, size_t size)
{
    munmap(p, size);
}

/* Current RSS in KiB, from /proc/self/statm (second field, in pages). */
static uint64_t rss_now_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long long size_pages = 0, rss_pages = 0;
    if (f == NULL)
        return 0;
    if (fscanf(f, "%llu %llu", &size_pages, &rss_pages) != 2)
        rss_pages = 0;
    fclose(f);
    return (uint64_t)rss_pages * (uint64_t)sysconf(_SC_PAGESIZE) / 1024u;
}

/* Peak RSS of this process image in KiB: VmHWM from /proc/self/status. It
 * is per address space, so the parent's RSS before exec does not leak in
 * (getrusage's ru_maxrss would carry it over). */
static uint64_t rss_peak_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    unsigned long long kb = 0;
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmHWM:", 6) == 0) {
            kb = strtoull(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return (uint64_t)kb;
}

/* Nodes in the tree; the same code reads every allocator's trees. */
static uint64_t tree_check(const tree_node *t)
{
    if (t->left == NULL)
        return 1;
    return 1 + tree_check(t->left) + tree_check(t->right);
}

/* ------------------------------------------------------------------------ */
/* The workloads, instantiated per family                                   */
/* ------------------------------------------------------------------------ */

#define WL_FAMILY sys
#define WL_MALLOC(size) malloc(size)
#define WL_FREE(ptr) free(ptr)
#define WL_REALLOC(ptr, size) realloc(ptr, size)
#include "workloads.h"

#define WL_FAMILY om
#define WL_MALLOC(size) om_obj_malloc(size)
#define WL_FREE(ptr) om_obj_free(ptr)
#define WL_REALLOC(ptr, size) om_obj_realloc(ptr, size)
#include "workloads.h"

#ifdef OM_BENCH_HAVE_PYTHON
#define WL_FAMILY py
#define WL_MALLOC(size) PyObject_Malloc(size)
#define WL_FREE(ptr) PyObject_Free(ptr)
#define WL_REALLOC(ptr, size) PyObject_Realloc(ptr, size)
#include "workloads.h"
#endif

/* ------------------------------------------------------------------------ */
/* Tables of workloads and allocators                                       */
/* ------------------------------------------------------------------------ */

enum { WL_PAIRS, WL_CHURN, WL_BULK, WL_TREES,
       WL_MEDIUM, WL_WINDOW, WL_LARGE, WL_REALLOC, WL_COUNT };

typedef void (*workload_fn)(const bench_params *, bench_result *);

typedef struct workload_desc {
    const char *name;       /* for --only and the tables */
    const char *alias;      /* the letter (also for --only) */
    const char *unit;       /* what one op is */
} workload_desc;

static const workload_desc workloads[WL_COUNT] = {
    [WL_PAIRS] = { "pairs", "a", "ns per malloc+free pair" },
    [WL_CHURN] = { "churn", "b", "ns per replace step (free + malloc)" },
    [WL_BULK]  = { "bulk",  "c", "ns per object (malloc + shuffled free)" },
    [WL_TREES] = { "trees", "d", "ns per tree node (malloc + visit + free)" },
    [WL_MEDIUM] = { "medium", "e", "ns per malloc+free pair" },
    [WL_WINDOW] = { "window", "e'", "ns per replace step (free + malloc + page writes)" },
    [WL_LARGE]  = { "large", "f", "ns per malloc+free pair" },
    [WL_REALLOC] = { "realloc", "g", "ns per realloc (+ write of the new last byte)" },
};

typedef enum family { FAM_SYS, FAM_OM, FAM_PY } family;

enum { AL_OBJMEM, AL_OBJMEM_SECURE, AL_PYMALLOC, AL_GLIBC, AL_MIMALLOC, AL_JEMALLOC,
       AL_TCMALLOC, AL_COUNT };

typedef struct alloc_desc {
    const char *name;                /* for --alloc and the tables */
    family fam;                      /* which instantiation it runs */
    const char *expect;              /* substring of the library that must
                                        define malloc in the child (FAM_SYS) */
    const char *const *sonames;      /* preload candidates, NULL: no preload */
    const char *env;                 /* one more NAME=value for the child, or NULL */
} alloc_desc;

static const char *const mimalloc_sonames[] = {
    "libmimalloc.so.2", "libmimalloc.so", NULL };
static const char *const jemalloc_sonames[] = {
    "libjemalloc.so.2", "libjemalloc.so", NULL };
/* The minimal build first: the full one adds heap-profiler hooks. */
static const char *const tcmalloc_sonames[] = {
    "libtcmalloc_minimal.so.4", "libtcmalloc.so.4",
    "libtcmalloc_minimal.so", "libtcmalloc.so", NULL };

static const alloc_desc allocs[AL_COUNT] = {
    [AL_OBJMEM]   = { "objmem",   FAM_OM,  NULL,       NULL },
    [AL_OBJMEM_SECURE] = { "objmem-secure", FAM_OM, NULL, NULL, "OBJMEM_SECURE=1" },
    [AL_PYMALLOC] = { "pymalloc", FAM_PY,  NULL,       NULL },
    [AL_GLIBC]    = { "glibc",    FAM_SYS, "libc.so",  NULL },
    [AL_MIMALLOC] = { "mimalloc", FAM_SYS, "mimalloc", mimalloc_sonames },
    [AL_JEMALLOC] = { "jemalloc", FAM_SYS, "jemalloc", jemalloc_sonames },
    [AL_TCMALLOC] = { "tcmalloc", FAM_SYS, "tcmalloc", tcmalloc_sonames },
};

static workload_fn workload_for(int al, int wl)
{
    static const workload_fn sys_fns[WL_COUNT] = {
        wl_pairs_sys, wl_churn_sys, wl_bulk_sys, wl_trees_sys,
        wl_medium_sys, wl_window_sys, wl_large_sys, wl_realloc_sys };
    static const workload_fn om_fns[WL_COUNT] = {
        wl_pairs_om, wl_churn_om, wl_bulk_om, wl_trees_om,
        wl_medium_om, wl_window_om, wl_large_om, wl_realloc_om };
#ifdef OM_BENCH_HAVE_PYTHON
    static const workload_fn py_fns[WL_COUNT] = {
        wl_pairs_py, wl_churn_py, wl_bulk_py, wl_trees_py,
        wl_medium_py, wl_window_py, wl_large_py, wl_realloc_py };
#endif
    switch (allocs[al].fam) {
    case FAM_SYS: return sys_fns[wl];
    case FAM_OM:  return om_fns[wl];
    case FAM_PY:
#ifdef OM_BENCH_HAVE_PYTHON
        return py_fns[wl];
#else
        return NULL;
#endif
    }
    return NULL;
}

static int find_workload(const char *name)
{
    for (int i = 0; i < WL_COUNT; i++)
        if (strcmp(name, workloads[i].name) == 0 ||
            strcmp(name, workloads[i].alias) == 0)
            return i;
    return -1;
}

static int find_alloc(const char *name)
{
    for (int i = 0; i < AL_COUNT; i++)
        if (strcmp(name, allocs[i].name) == 0)
            return i;
    return -1;
}

static void params_init(bench_params *bp, bool quick)
{
    bp->pairs = quick ? QUICK_PAIRS : FULL_PAIRS;
    bp->churn_live = quick ? QUICK_CHURN_LIVE : FULL_CHURN_LIVE;
    bp->churn_steps = quick ? QUICK_CHURN_STEPS : FULL_CHURN_STEPS;
    bp->bulk_count = quick ? QUICK_BULK_COUNT : FULL_BULK_COUNT;
    bp->tree_depth = quick ? QUICK_TREE_DEPTH : FULL_TREE_DEPTH;
    bp->medium_pairs = quick ? QUICK_MEDIUM_PAIRS : FULL_MEDIUM_PAIRS;
    bp->window_live = quick ? QUICK_WINDOW_LIVE : FULL_WINDOW_LIVE;
    bp->window_steps = quick ? QUICK_WINDOW_STEPS : FULL_WINDOW_STEPS;
    bp->large_pairs = quick ? QUICK_LARGE_PAIRS : FULL_LARGE_PAIRS;
    bp->realloc_max = quick ? QUICK_REALLOC_MAX : FULL_REALLOC_MAX;
}

/* ------------------------------------------------------------------------ */
/* Child: run one workload once                                             */
/* ------------------------------------------------------------------------ */

/* The library that defines the `malloc` this process calls, or "?". */
static const char *malloc_provider(void)
{
    Dl_info info;
    void *sym = dlsym(RTLD_DEFAULT, "malloc");
    if (sym == NULL || dladdr(sym, &info) == 0 || info.dli_fname == NULL)
        return "?";
    return info.dli_fname;
}

static int child_main(const char *alloc_name, const char *wl_name, bool quick)
{
    int al = find_alloc(alloc_name);
    int wl = find_workload(wl_name);
    if (al < 0 || wl < 0) {
        fprintf(stderr, "alloc_bench: child: unknown allocator or workload\n");
        return 2;
    }
    workload_fn fn = workload_for(al, wl);
    if (fn == NULL) {
        fprintf(stderr, "alloc_bench: child: %s not built in\n", alloc_name);
        return 2;
    }
    if (allocs[al].expect != NULL) {
        const char *lib = malloc_provider();
        if (strstr(lib, allocs[al].expect) == NULL) {
            fprintf(stderr, "alloc_bench: child %s: malloc comes from %s, "
                    "not from %s; refusing to measure\n",
                    alloc_name, lib, allocs[al].expect);
            return 2;
        }
    }
#ifdef OM_BENCH_HAVE_PYTHON
    if (allocs[al].fam == FAM_PY) {
        FILE *devnull = fopen("/dev/null", "w");
        int is_pymalloc = devnull != NULL && _PyObject_DebugMallocStats(devnull);
        if (devnull != NULL)
            fclose(devnull);
        if (!is_pymalloc) {
            fprintf(stderr, "alloc_bench: child: PyObject_Malloc is not "
                    "pymalloc in this libpython; refusing to measure\n");
            return 2;
        }
    }
#endif
    if (al == AL_OBJMEM_SECURE && om_option_get(OM_OPTION_SECURE) != 1) {
        fprintf(stderr, "alloc_bench: child: OBJMEM_SECURE=1 did not take; refusing to measure\n");
        return 2;
    }
    bench_params bp;
    bench_result res;
    params_init(&bp, quick);
    memset(&res, 0, sizeof res);
    fn(&bp, &res);
    res.peak_kb = rss_peak_kb();
    printf("ok %llu %llu %llu %llu %llu %llu %llu %llu %llu\n",
           (unsigned long long)res.ops, (unsigned long long)res.elapsed_ns,
           (unsigned long long)res.cpu_ns,
           (unsigned long long)res.peak_kb, (unsigned long long)res.after_kb,
           (unsigned long long)res.base_kb,
           (unsigned long long)res.retained_kb,
           (unsigned long long)res.moves,
           (unsigned long long)res.live_max_bytes);
    fflush(stdout);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Parent: find the peers                                                   */
/* ------------------------------------------------------------------------ */

#if defined(__x86_64__)
#define BENCH_TRIPLET "x86_64-linux-gnu"
#elif defined(__aarch64__)
#define BENCH_TRIPLET "aarch64-linux-gnu"
#elif defined(__i386__)
#define BENCH_TRIPLET "i386-linux-gnu"
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define BENCH_TRIPLET "powerpc64le-linux-gnu"
#elif defined(__s390x__)
#define BENCH_TRIPLET "s390x-linux-gnu"
#elif defined(__riscv) && __riscv_xlen == 64
#define BENCH_TRIPLET "riscv64-linux-gnu"
#elif defined(__arm__)
#define BENCH_TRIPLET "arm-linux-gnueabihf"
#endif

/* Does the ELF file at `path` have our class and machine? (A 32-bit library
 * in /usr/lib must not end up in a 64-bit LD_PRELOAD.) */
static bool elf_matches_self(const char *path)
{
    static bool have_self;
    static unsigned char self_class;
    static uint16_t self_machine;
    Elf64_Ehdr eh;   /* e_ident and e_machine sit at the same offsets in
                        Elf32_Ehdr, so this layout reads either class */
    if (!have_self) {
        int fd = open("/proc/self/exe", O_RDONLY);
        if (fd < 0)
            return true;    /* cannot tell: let the child's check decide */
        ssize_t got = read(fd, &eh, sizeof eh);
        close(fd);
        if (got < (ssize_t)sizeof eh)
            return true;
        self_class = eh.e_ident[EI_CLASS];
        self_machine = eh.e_machine;
        have_self = true;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return false;
    ssize_t got = read(fd, &eh, sizeof eh);
    close(fd);
    if (got < (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        return false;
    return eh.e_ident[EI_CLASS] == self_class && eh.e_machine == self_machine;
}

/* Ask the dynamic linker's cache (ldconfig -p) for `soname`. */
static bool find_in_ldconfig(const char *soname, char *out, size_t out_size)
{
    static const char *const cmds[] = {
        "/sbin/ldconfig -p 2>/dev/null", "/usr/sbin/ldconfig -p 2>/dev/null",
        "ldconfig -p 2>/dev/null", NULL };
    size_t len = strlen(soname);
    for (int c = 0; cmds[c] != NULL; c++) {
        FILE *p = popen(cmds[c], "r");
        char line[PATH_MAX + 128];
        bool found = false;
        if (p == NULL)
            continue;
        while (!found && fgets(line, sizeof line, p) != NULL) {
            const char *s = line;
            while (*s == ' ' || *s == '\t')
                s++;
            if (strncmp(s, soname, len) != 0 || (s[len] != ' ' && s[len] != '\t'))
                continue;
            const char *arrow = strstr(s, "=> ");
            if (arrow == NULL)
                continue;
            snprintf(out, out_size, "%s", arrow + 3);
            out[strcspn(out, "\r\n")] = '\0';
            found = elf_matches_self(out);
        }
        pclose(p);
        if (found)
            return true;
    }
    return false;
}

/* The path of a peer's library: the usual library directories first, then
 * the dynamic linker's cache. */
static bool find_peer_library(const alloc_desc *a, char *out, size_t out_size)
{
    static const char *const dirs[] = {
#ifdef BENCH_TRIPLET
        "/usr/lib/" BENCH_TRIPLET, "/lib/" BENCH_TRIPLET,
        "/usr/local/lib/" BENCH_TRIPLET,
#endif
        "/usr/lib64", "/lib64", "/usr/local/lib64",
        "/usr/lib", "/lib", "/usr/local/lib", NULL };
    for (int n = 0; a->sonames[n] != NULL; n++) {
        for (int d = 0; dirs[d] != NULL; d++) {
            snprintf(out, out_size, "%s/%s", dirs[d], a->sonames[n]);
            if (access(out, R_OK) == 0 && elf_matches_self(out))
                return true;
        }
        if (find_in_ldconfig(a->sonames[n], out, out_size))
            return true;
    }
    return false;
}

/* ------------------------------------------------------------------------ */
/* Parent: run children                                                     */
/* ------------------------------------------------------------------------ */

typedef struct alloc_state {
    bool selected;              /* named by --alloc (or all by default) */
    bool available;             /* built in and, for peers, library found */
    char skip_reason[160];      /* why not available */
    char lib[PATH_MAX];         /* LD_PRELOAD value, "" for none */
    char **envp;                /* the child's environment */
} alloc_state;

typedef struct cell {
    int ok_runs;                        /* runs that succeeded */
    int failed_runs;                    /* runs whose child failed */
    double ns_per_op[MAX_RUNS];         /* wall time */
    double cpu_ns_per_op[MAX_RUNS];     /* process CPU time */
    double peak_mb[MAX_RUNS];
    double after_mb[MAX_RUNS];
    double after_pct[MAX_RUNS];         /* after / peak */
    double retained_pct[MAX_RUNS];      /* retained / (peak - base) */
    double moves[MAX_RUNS];             /* (g) buffer moves */
    double live_mb[MAX_RUNS];           /* (e') most bytes held, MB */
    double peak_per_live[MAX_RUNS];     /* (e') peak RSS / live_max */
    double heap_per_live[MAX_RUNS];     /* (e') (peak - base) / live_max */
} cell;

/* The environment for a child: ours, minus any LD_PRELOAD, plus the peer's. */
static char **make_child_env(const char *preload, const char *extra)
{
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **envp = calloc(n + 3, sizeof *envp);
    if (envp == NULL)
        bench_oom((n + 3) * sizeof *envp);
    size_t k = 0;
    if (extra != NULL)
        envp[k++] = (char *)extra;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
            envp[k++] = environ[i];
    if (preload != NULL && preload[0] != '\0') {
        size_t len = strlen(preload) + sizeof "LD_PRELOAD=";
        char *var = malloc(len);
        if (var == NULL)
            bench_oom(len);
        snprintf(var, len, "LD_PRELOAD=%s", preload);
        envp[k++] = var;
    }
    envp[k] = NULL;
    return envp;
}

/* Run one child; true and *res filled if it reported a result. */
static bool run_child(const char *self, const alloc_desc *a,
                      const alloc_state *st, const workload_desc *w,
                      bool quick, bench_result *res)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("alloc_bench: pipe");
        return false;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        perror("alloc_bench: fork");
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    if (pid == 0) {
        char *argv[6];
        int k = 0;
        argv[k++] = (char *)self;
        argv[k++] = (char *)"--child";
        argv[k++] = (char *)a->name;
        argv[k++] = (char *)w->name;
        if (quick)
            argv[k++] = (char *)"--quick";
        argv[k] = NULL;
        close(fds[0]);
        if (dup2(fds[1], STDOUT_FILENO) < 0)
            _exit(126);
        close(fds[1]);
        execve(self, argv, st->envp);
        _exit(127);
    }
    close(fds[1]);
    char buf[512];
    size_t used = 0;
    for (;;) {
        ssize_t got = read(fds[0], buf + used, sizeof buf - 1 - used);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        used += (size_t)got;
        if (used == sizeof buf - 1)
            break;
    }
    buf[used] = '\0';
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (WIFSIGNALED(status))
            fprintf(stderr, "alloc_bench: %s/%s child killed by signal %d\n",
                    a->name, w->name, WTERMSIG(status));
        else
            fprintf(stderr, "alloc_bench: %s/%s child exited with %d\n",
                    a->name, w->name, WEXITSTATUS(status));
        return false;
    }
    unsigned long long v[9];
    if (sscanf(buf, "ok %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
               &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8]) != 9
        || v[0] == 0) {
        fprintf(stderr, "alloc_bench: %s/%s child gave no result\n",
                a->name, w->name);
        return false;
    }
    res->ops = v[0];
    res->elapsed_ns = v[1];
    res->cpu_ns = v[2];
    res->peak_kb = v[3];
    res->after_kb = v[4];
    res->base_kb = v[5];
    res->retained_kb = v[6];
    res->moves = v[7];
    res->live_max_bytes = v[8];
    return true;
}

/* ------------------------------------------------------------------------ */
/* Parent: machine description and reporting                                */
/* ------------------------------------------------------------------------ */

typedef struct machine_info {
    char cpu[256];          /* /proc/cpuinfo model name */
    long nproc;             /* online CPUs */
    char kernel[400];       /* uname -srm */
    char date[64];          /* UTC, ISO 8601 */
    char compiler[128];     /* what compiled this bench */
    char python[64];        /* libpython's version, "" if not built in */
    char load_start[64];    /* /proc/loadavg when the bench started */
} machine_info;

/* The 1, 5 and 15 minute load averages, to show how busy the machine was. */
static void read_loadavg(char *out, size_t size)
{
    double l1 = 0, l5 = 0, l15 = 0;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f == NULL || fscanf(f, "%lf %lf %lf", &l1, &l5, &l15) != 3)
        snprintf(out, size, "unknown");
    else
        snprintf(out, size, "%.2f %.2f %.2f", l1, l5, l15);
    if (f != NULL)
        fclose(f);
}

static void machine_info_get(machine_info *m)
{
    snprintf(m->cpu, sizeof m->cpu, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f != NULL) {
        char line[512];
        while (fgets(line, sizeof line, f) != NULL) {
            if (strncmp(line, "model name", 10) == 0) {
                const char *colon = strchr(line, ':');
                if (colon != NULL) {
                    colon++;
                    while (*colon == ' ' || *colon == '\t')
                        colon++;
                    snprintf(m->cpu, sizeof m->cpu, "%s", colon);
                    m->cpu[strcspn(m->cpu, "\r\n")] = '\0';
                }
                break;
            }
        }
        fclose(f);
    }
    m->nproc = sysconf(_SC_NPROCESSORS_ONLN);
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(m->kernel, sizeof m->kernel, "%s %s %s",
                 u.sysname, u.release, u.machine);
    else
        snprintf(m->kernel, sizeof m->kernel, "unknown");
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(m->date, sizeof m->date, "%Y-%m-%d %H:%M:%S UTC", &tm);
#if defined(__clang__)
    snprintf(m->compiler, sizeof m->compiler, "clang %s", __clang_version__);
#elif defined(__GNUC__)
    snprintf(m->compiler, sizeof m->compiler, "gcc %s", __VERSION__);
#else
    snprintf(m->compiler, sizeof m->compiler, "unknown compiler");
#endif
    read_loadavg(m->load_start, sizeof m->load_start);
    m->python[0] = '\0';
#ifdef OM_BENCH_HAVE_PYTHON
    snprintf(m->python, sizeof m->python, "%s", Py_GetVersion());
    m->python[strcspn(m->python, " ")] = '\0';
#endif
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(const double *v, int n)
{
    double tmp[MAX_RUNS];
    if (n <= 0)
        return 0.0;
    memcpy(tmp, v, (size_t)n * sizeof *tmp);
    qsort(tmp, (size_t)n, sizeof *tmp, cmp_double);
    return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2.0;
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

static void json_array(const double *v, int n, const char *fmt)
{
    putchar('[');
    for (int i = 0; i < n; i++) {
        if (i > 0)
            printf(", ");
        printf(fmt, v[i]);
    }
    putchar(']');
}

typedef struct report {
    const machine_info *m;
    const bench_params *bp;
    bool quick;
    int runs;
    bool wl_selected[WL_COUNT];
    const alloc_state *st;                  /* [AL_COUNT] */
    cell (*cells)[AL_COUNT];                /* [WL_COUNT][AL_COUNT] */
    const char *command;
} report;

static void workload_title(const report *r, int wl, char *out, size_t size)
{
    const bench_params *bp = r->bp;
    switch (wl) {
    case WL_PAIRS:
        snprintf(out, size, "(a) pairs: %llu malloc+free, 8-512 B",
                 (unsigned long long)bp->pairs);
        break;
    case WL_CHURN:
        snprintf(out, size, "(b) churn: %zu live, %llu replace steps, 8-512 B",
                 bp->churn_live, (unsigned long long)bp->churn_steps);
        break;
    case WL_BULK:
        snprintf(out, size, "(c) bulk: %zu objects 16-128 B, shuffled free",
                 bp->bulk_count);
        break;
    case WL_TREES:
        snprintf(out, size, "(d) binary trees: depth %d (stretch %d), 16 B nodes",
                 bp->tree_depth, bp->tree_depth + 1);
        break;
    case WL_MEDIUM:
        snprintf(out, size, "(e) medium pairs: %llu malloc+free, 513 B-32 KiB",
                 (unsigned long long)bp->medium_pairs);
        break;
    case WL_WINDOW:
        snprintf(out, size, "(e') medium window: %zu live, %llu replace steps, "
                 "513 B-32 KiB, every page written",
                 bp->window_live, (unsigned long long)bp->window_steps);
        break;
    case WL_LARGE:
        snprintf(out, size, "(f) large pairs: %llu malloc+free, 32 KiB+1 B-1 MiB",
                 (unsigned long long)bp->large_pairs);
        break;
    case WL_REALLOC:
        snprintf(out, size, "(g) realloc: one buffer grown 1 B at a time, 1 B-%zu MiB",
                 bp->realloc_max >> 20);
        break;
    default:
        snprintf(out, size, "?");
    }
}

static bool cell_has(const report *r, int wl, int al)
{
    return r->st[al].selected && r->st[al].available && r->cells[wl][al].ok_runs > 0;
}

static void print_json(const report *r)
{
    const machine_info *m = r->m;
    printf("{\n  \"bench\": \"alloc_bench\",\n  \"date\": ");
    json_string(m->date);
    printf(",\n  \"command\": ");
    json_string(r->command);
    printf(",\n  \"machine\": {\"cpu\": ");
    json_string(m->cpu);
    printf(", \"nproc\": %ld, \"kernel\": ", m->nproc);
    json_string(m->kernel);
    printf(", \"glibc\": ");
    json_string(gnu_get_libc_version());
    printf(", \"compiler\": ");
    json_string(m->compiler);
    printf("},\n  \"objmem_version\": \"%d.%d.%d\",\n  \"python\": ",
           OM_VERSION_MAJOR, OM_VERSION_MINOR, OM_VERSION_PATCH);
    json_string(m->python);
    printf(",\n  \"objmem_git\": \"%s\",\n  \"build_type\": \"%s\",\n  \"load_start\": ",
           OM_BENCH_GIT_REV, OM_BENCH_BUILD_TYPE);
    json_string(m->load_start);
    printf(",\n  \"quick\": %s,\n  \"runs\": %d,\n  \"allocators\": [",
           r->quick ? "true" : "false", r->runs);
    bool first = true;
    for (int al = 0; al < AL_COUNT; al++) {
        if (!r->st[al].selected)
            continue;
        printf("%s\n    {\"name\": \"%s\", \"available\": %s, \"library\": ",
               first ? "" : ",", allocs[al].name,
               r->st[al].available ? "true" : "false");
        json_string(r->st[al].lib);
        printf(", \"skip_reason\": ");
        json_string(r->st[al].available ? "" : r->st[al].skip_reason);
        printf("}");
        first = false;
    }
    printf("\n  ],\n  \"results\": [");
    first = true;
    for (int wl = 0; wl < WL_COUNT; wl++) {
        if (!r->wl_selected[wl])
            continue;
        const cell *om = &r->cells[wl][AL_OBJMEM];
        double om_ns = cell_has(r, wl, AL_OBJMEM)
                           ? median(om->ns_per_op, om->ok_runs) : 0.0;
        for (int al = 0; al < AL_COUNT; al++) {
            if (!r->st[al].selected || !r->st[al].available)
                continue;
            const cell *c = &r->cells[wl][al];
            int n = c->ok_runs;
            printf("%s\n    {\"workload\": \"%s\", \"letter\": \"%s\", "
                   "\"allocator\": \"%s\", "
                   "\"unit\": \"%s\", \"ok_runs\": %d, \"failed_runs\": %d",
                   first ? "" : ",", workloads[wl].name, workloads[wl].alias,
                   allocs[al].name,
                   workloads[wl].unit, n, c->failed_runs);
            first = false;
            if (n == 0) {
                printf("}");
                continue;
            }
            double ns = median(c->ns_per_op, n);
            printf(", \"ns_per_op\": %.3f", ns);
            if (om_ns > 0.0)
                printf(", \"ratio_to_objmem\": %.3f", ns / om_ns);
            printf(", \"cpu_ns_per_op\": %.3f", median(c->cpu_ns_per_op, n));
            printf(", \"peak_rss_mb\": %.1f", median(c->peak_mb, n));
            printf(", \"runs_ns_per_op\": ");
            json_array(c->ns_per_op, n, "%.3f");
            printf(", \"runs_cpu_ns_per_op\": ");
            json_array(c->cpu_ns_per_op, n, "%.3f");
            printf(", \"runs_peak_rss_mb\": ");
            json_array(c->peak_mb, n, "%.1f");
            if (wl == WL_BULK) {
                printf(", \"after_free_rss_mb\": %.1f, \"after_free_pct_of_peak\": %.1f"
                       ", \"allocator_retained_pct\": %.1f",
                       median(c->after_mb, n), median(c->after_pct, n),
                       median(c->retained_pct, n));
            }
            if (wl == WL_WINDOW) {
                printf(", \"live_max_mb\": %.3f, \"peak_rss_per_live\": %.4f"
                       ", \"peak_minus_base_per_live\": %.4f, \"runs_live_max_mb\": ",
                       median(c->live_mb, n), median(c->peak_per_live, n),
                       median(c->heap_per_live, n));
                json_array(c->live_mb, n, "%.3f");
            }
            if (wl == WL_REALLOC) {
                printf(", \"moves\": %.0f, \"runs_moves\": ", median(c->moves, n));
                json_array(c->moves, n, "%.0f");
            }
            printf("}");
        }
    }
    printf("\n  ]\n}\n");
}

static void print_header(const report *r)
{
    const machine_info *m = r->m;
    printf("alloc_bench — objmem %d.%d.%d against its peers\n",
           OM_VERSION_MAJOR, OM_VERSION_MINOR, OM_VERSION_PATCH);
    printf("command:  %s\n", r->command);
    printf("date:     %s\n", m->date);
    printf("machine:  %s, nproc %ld\n", m->cpu, m->nproc);
    printf("system:   %s, glibc %s, %s\n", m->kernel, gnu_get_libc_version(),
           m->compiler);
    printf("objmem:   %s, built %s\n", OM_BENCH_GIT_REV, OM_BENCH_BUILD_TYPE);
    printf("load:     %s (1/5/15 min) at start\n", m->load_start);
    printf("runs:     median of %d per cell%s; one fresh process per run\n",
           r->runs, r->quick ? " (--quick: scaled-down sizes)" : "");
    for (int al = 0; al < AL_COUNT; al++) {
        const alloc_state *s = &r->st[al];
        if (!s->selected)
            continue;
        if (!s->available) {
            printf("%-9s skipped: %s\n", allocs[al].name, s->skip_reason);
            continue;
        }
        switch (al) {
        case AL_OBJMEM:
            printf("%-9s om_obj_malloc/om_obj_free, shared library\n", "objmem");
            break;
        case AL_OBJMEM_SECURE:
            printf("%-9s the same, hardened mode (OBJMEM_SECURE=1)\n", "objmem-secure");
            break;
        case AL_PYMALLOC:
            printf("%-9s PyObject_Malloc/PyObject_Free, libpython %s\n",
                   "pymalloc", m->python);
            break;
        case AL_GLIBC:
            printf("%-9s malloc/free, glibc %s\n", "glibc", gnu_get_libc_version());
            break;
        default: {
            char real[PATH_MAX];
            const char *shown = realpath(s->lib, real) != NULL ? real : s->lib;
            printf("%-9s malloc/free, LD_PRELOAD=%s (%s)\n",
                   allocs[al].name, s->lib, shown);
            break;
        }
        }
    }
    printf("\n");
}

/* "| <first> | a | b |" and its separator line. */
static void print_header_row_named(const char *first, const int *cols, int ncols)
{
    printf("| %s |", first);
    for (int i = 0; i < ncols; i++)
        printf(" %s |", allocs[cols[i]].name);
    printf("\n|---|");
    for (int i = 0; i < ncols; i++)
        printf("---:|");
    printf("\n");
}

/* "| workload | a | b |" and its separator line. */
static void print_header_row(const int *cols, int ncols)
{
    print_header_row_named("workload", cols, ncols);
}

/* One row per workload: the median ns/op of each column and its ratio to
 * objmem's. `cpu` picks process CPU time instead of wall time, and rows
 * named "name (alias)" instead of the full title with its unit. */
static void print_ratio_rows(const report *r, const int *cols, int ncols, bool cpu)
{
    char title[128];
    for (int wl = 0; wl < WL_COUNT; wl++) {
        if (!r->wl_selected[wl])
            continue;
        if (cpu) {
            printf("| %s (%s) |", workloads[wl].name, workloads[wl].alias);
        } else {
            workload_title(r, wl, title, sizeof title);
            printf("| %s | %s |", title, workloads[wl].unit);
        }
        const cell *om = &r->cells[wl][AL_OBJMEM];
        double om_ns = !cell_has(r, wl, AL_OBJMEM) ? 0.0
                       : median(cpu ? om->cpu_ns_per_op : om->ns_per_op, om->ok_runs);
        for (int i = 0; i < ncols; i++) {
            const cell *c = &r->cells[wl][cols[i]];
            if (c->ok_runs == 0) {
                printf(" failed |");
                continue;
            }
            double ns = median(cpu ? c->cpu_ns_per_op : c->ns_per_op, c->ok_runs);
            if (om_ns > 0.0)
                printf(" %.2f (%.2f) |", ns, ns / om_ns);
            else
                printf(" %.2f (-) |", ns);
        }
        printf("\n");
    }
}

static void print_tables(const report *r)
{
    int cols[AL_COUNT], ncols = 0;
    for (int al = 0; al < AL_COUNT; al++)
        if (r->st[al].selected && r->st[al].available)
            cols[ncols++] = al;
    if (ncols == 0) {
        printf("no allocator to report\n");
        return;
    }

    printf("### Time: ns/op, median (ratio = allocator / objmem; > 1 means objmem is faster)\n\n");
    printf("| workload | unit |");
    for (int i = 0; i < ncols; i++)
        printf(" %s |", allocs[cols[i]].name);
    printf("\n|---|---|");
    for (int i = 0; i < ncols; i++)
        printf("---:|");
    printf("\n");
    print_ratio_rows(r, cols, ncols, false);

    printf("\n### Spread of the runs: fastest - slowest ns/op (wall)\n\n");
    print_header_row(cols, ncols);
    for (int wl = 0; wl < WL_COUNT; wl++) {
        if (!r->wl_selected[wl])
            continue;
        printf("| %s (%s) |", workloads[wl].name, workloads[wl].alias);
        for (int i = 0; i < ncols; i++) {
            const cell *c = &r->cells[wl][cols[i]];
            if (c->ok_runs == 0) {
                printf(" failed |");
                continue;
            }
            double lo = c->ns_per_op[0], hi = c->ns_per_op[0];
            for (int k = 1; k < c->ok_runs; k++) {
                lo = c->ns_per_op[k] < lo ? c->ns_per_op[k] : lo;
                hi = c->ns_per_op[k] > hi ? c->ns_per_op[k] : hi;
            }
            printf(" %.2f - %.2f |", lo, hi);
        }
        printf("\n");
    }

    printf("\n### CPU time of the process, ns/op (median; user + kernel; "
           "ratio = allocator / objmem)\n\n");
    print_header_row(cols, ncols);
    print_ratio_rows(r, cols, ncols, true);

    printf("\n### Peak RSS of the child process, MB (median)\n\n");
    print_header_row(cols, ncols);
    for (int wl = 0; wl < WL_COUNT; wl++) {
        if (!r->wl_selected[wl])
            continue;
        printf("| %s (%s) |", workloads[wl].name, workloads[wl].alias);
        for (int i = 0; i < ncols; i++) {
            const cell *c = &r->cells[wl][cols[i]];
            if (c->ok_runs == 0)
                printf(" failed |");
            else
                printf(" %.1f |", median(c->peak_mb, c->ok_runs));
        }
        printf("\n");
    }

    if (r->wl_selected[WL_BULK]) {
        printf("\n### (c) bulk: RSS after freeing everything (median)\n\n");
        print_header_row_named("measure", cols, ncols);
        static const char *const rows[] = {
            "RSS after free, MB", "RSS after free, % of peak RSS",
            "allocator kept, % of what it took" };
        for (int row = 0; row < 3; row++) {
            printf("| %s |", rows[row]);
            for (int i = 0; i < ncols; i++) {
                const cell *c = &r->cells[WL_BULK][cols[i]];
                if (c->ok_runs == 0) {
                    printf(" failed |");
                    continue;
                }
                const double *v = row == 0 ? c->after_mb
                                  : row == 1 ? c->after_pct : c->retained_pct;
                printf(row == 0 ? " %.1f |" : " %.1f %% |", median(v, c->ok_runs));
            }
            printf("\n");
        }
    }
    if (r->wl_selected[WL_WINDOW]) {
        printf("\n### (e') medium window: peak RSS against the bytes held (median)\n\n");
        print_header_row_named("measure", cols, ncols);
        static const char *const rows[] = {
            "most bytes held at once (live), MB",
            "peak RSS of the process, MB",
            "peak RSS / live",
            "(peak RSS - RSS before the first malloc) / live" };
        for (int row = 0; row < 4; row++) {
            printf("| %s |", rows[row]);
            for (int i = 0; i < ncols; i++) {
                const cell *c = &r->cells[WL_WINDOW][cols[i]];
                if (c->ok_runs == 0) {
                    printf(" failed |");
                    continue;
                }
                const double *v = row == 0 ? c->live_mb : row == 1 ? c->peak_mb
                                  : row == 2 ? c->peak_per_live : c->heap_per_live;
                printf(row < 2 ? " %.1f |" : " %.3f |", median(v, c->ok_runs));
            }
            printf("\n");
        }
    }

    if (r->wl_selected[WL_REALLOC]) {
        printf("\n### (g) realloc: times the buffer moved to a new address (median; "
               "range over the runs)\n\n");
        print_header_row(cols, ncols);
        printf("| realloc (g) |");
        for (int i = 0; i < ncols; i++) {
            const cell *c = &r->cells[WL_REALLOC][cols[i]];
            if (c->ok_runs == 0) {
                printf(" failed |");
                continue;
            }
            double lo = c->moves[0], hi = c->moves[0];
            for (int k = 1; k < c->ok_runs; k++) {
                lo = c->moves[k] < lo ? c->moves[k] : lo;
                hi = c->moves[k] > hi ? c->moves[k] : hi;
            }
            if (lo == hi)
                printf(" %.0f |", median(c->moves, c->ok_runs));
            else
                printf(" %.0f (%.0f-%.0f) |", median(c->moves, c->ok_runs), lo, hi);
        }
        printf("\n");
    }

    char load_end[64];
    read_loadavg(load_end, sizeof load_end);
    printf("\nload average at the end: %s (1/5/15 min)\n", load_end);
}

/* ------------------------------------------------------------------------ */
/* Options                                                                  */
/* ------------------------------------------------------------------------ */

static void usage(FILE *out)
{
    fprintf(out,
        "usage: alloc_bench [--runs N] [--quick] [--only WORKLOAD[,..]]\n"
        "                   [--alloc NAME[,..]] [--lib NAME=PATH] [--json]\n"
        "  --runs N      runs per cell, the median is reported (default 3)\n"
        "  --quick       scaled-down sizes for a smoke run\n"
        "  --only LIST   workloads, by name or letter:\n"
        "                  pairs (a), churn (b), bulk (c), trees (d): 8-512 B\n"
        "                  medium (e): malloc+free pairs of 513 B-32 KiB\n"
        "                  window (e'): 4096 live blocks of 513 B-32 KiB, peak\n"
        "                    RSS against the bytes held\n"
        "                  large (f): malloc+free pairs of 32 KiB+1 B-1 MiB\n"
        "                  realloc (g): a buffer grown by realloc to 64 MiB\n"
        "                (default: all; quote e' in a shell, or say window)\n"
        "  --alloc LIST  allocators: objmem, pymalloc, glibc, mimalloc,\n"
        "                jemalloc, tcmalloc (default: all that are available)\n"
        "  --lib N=PATH  use PATH as the LD_PRELOAD library of peer N\n"
        "  --json        print the results as JSON instead of tables\n");
}

/* Mark the names of a comma-separated list in `sel`; false on an unknown
 * name. */
static bool parse_list(const char *list, bool *sel, int count,
                       int (*find)(const char *), const char *what)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        int i = find(tok);
        if (i < 0 || i >= count) {
            fprintf(stderr, "alloc_bench: unknown %s '%s'\n", what, tok);
            return false;
        }
        sel[i] = true;
    }
    return true;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2], argv[3],
                          argc >= 5 && strcmp(argv[4], "--quick") == 0);

    int runs = 3;
    bool quick = false, json = false;
    bool wl_sel[WL_COUNT] = { false }, al_sel[AL_COUNT] = { false };
    bool any_wl = false, any_al = false;
    const char *lib_override[AL_COUNT] = { NULL };

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--runs") == 0 && i + 1 < argc) {
            runs = atoi(argv[++i]);
            if (runs < 1 || runs > MAX_RUNS) {
                fprintf(stderr, "alloc_bench: --runs must be 1..%d\n", MAX_RUNS);
                return 2;
            }
        } else if (strcmp(a, "--quick") == 0) {
            quick = true;
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--only") == 0 && i + 1 < argc) {
            if (!parse_list(argv[++i], wl_sel, WL_COUNT, find_workload, "workload"))
                return 2;
            any_wl = true;
        } else if (strcmp(a, "--alloc") == 0 && i + 1 < argc) {
            if (!parse_list(argv[++i], al_sel, AL_COUNT, find_alloc, "allocator"))
                return 2;
            any_al = true;
        } else if (strcmp(a, "--lib") == 0 && i + 1 < argc) {
            char name[32];
            const char *eq = strchr(argv[++i], '=');
            size_t len = eq != NULL ? (size_t)(eq - argv[i]) : 0;
            if (eq == NULL || len >= sizeof name) {
                fprintf(stderr, "alloc_bench: --lib wants NAME=PATH\n");
                return 2;
            }
            memcpy(name, argv[i], len);
            name[len] = '\0';
            int al = find_alloc(name);
            if (al < 0 || allocs[al].sonames == NULL) {
                fprintf(stderr, "alloc_bench: --lib: '%s' is not a preloaded peer\n",
                        name);
                return 2;
            }
            lib_override[al] = eq + 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "alloc_bench: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    for (int i = 0; i < WL_COUNT; i++)
        if (!any_wl)
            wl_sel[i] = true;
    for (int i = 0; i < AL_COUNT; i++)
        if (!any_al)
            al_sel[i] = true;

    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) {
        perror("alloc_bench: readlink /proc/self/exe");
        return 1;
    }
    self[len] = '\0';

    /* The command line, for the record. */
    char command[1024];
    size_t used = (size_t)snprintf(command, sizeof command, "alloc_bench");
    for (int i = 1; i < argc && used < sizeof command; i++)
        used += (size_t)snprintf(command + used, sizeof command - used, " %s", argv[i]);

    static alloc_state st[AL_COUNT];
    for (int al = 0; al < AL_COUNT; al++) {
        alloc_state *s = &st[al];
        s->selected = al_sel[al];
        s->available = true;
        s->lib[0] = '\0';
        if (!s->selected)
            continue;
        if (allocs[al].fam == FAM_PY && workload_for(al, 0) == NULL) {
            s->available = false;
            snprintf(s->skip_reason, sizeof s->skip_reason,
                     "built without libpython (python3-config --embed not found)");
        }
        if (allocs[al].sonames != NULL) {
            if (lib_override[al] != NULL) {
                snprintf(s->lib, sizeof s->lib, "%s", lib_override[al]);
                if (access(s->lib, R_OK) != 0) {
                    s->available = false;
                    snprintf(s->skip_reason, sizeof s->skip_reason,
                             "--lib %s: cannot read it", allocs[al].name);
                }
            } else if (!find_peer_library(&allocs[al], s->lib, sizeof s->lib)) {
                s->available = false;
                s->lib[0] = '\0';
                snprintf(s->skip_reason, sizeof s->skip_reason,
                         "%s not found (run bench/install-peers.sh as root)",
                         allocs[al].sonames[0]);
            }
        }
        if (s->available)
            s->envp = make_child_env(s->lib, allocs[al].env);
        else
            fprintf(stderr, "alloc_bench: skipping %s: %s\n",
                    allocs[al].name, s->skip_reason);
    }

    machine_info m;
    machine_info_get(&m);
    bench_params bp;
    params_init(&bp, quick);

    static cell cells[WL_COUNT][AL_COUNT];
    report r = { .m = &m, .bp = &bp, .quick = quick, .runs = runs,
                 .st = st, .cells = cells, .command = command };
    memcpy(r.wl_selected, wl_sel, sizeof wl_sel);

    if (!json) {
        print_header(&r);
        fflush(stdout);
    }

    /* Interleave: every allocator runs run 1 of a workload before any runs
     * run 2, so slow drift on the machine is shared. */
    for (int wl = 0; wl < WL_COUNT; wl++) {
        if (!wl_sel[wl])
            continue;
        for (int run = 0; run < runs; run++) {
            for (int al = 0; al < AL_COUNT; al++) {
                if (!st[al].selected || !st[al].available)
                    continue;
                bench_result res;
                memset(&res, 0, sizeof res);
                cell *c = &cells[wl][al];
                if (!run_child(self, &allocs[al], &st[al], &workloads[wl],
                               quick, &res)) {
                    c->failed_runs++;
                    continue;
                }
                int k = c->ok_runs++;
                c->ns_per_op[k] = (double)res.elapsed_ns / (double)res.ops;
                c->cpu_ns_per_op[k] = (double)res.cpu_ns / (double)res.ops;
                c->peak_mb[k] = (double)res.peak_kb / 1024.0;
                c->after_mb[k] = (double)res.after_kb / 1024.0;
                c->after_pct[k] = res.peak_kb > 0
                    ? 100.0 * (double)res.after_kb / (double)res.peak_kb : 0.0;
                c->retained_pct[k] = res.peak_kb > res.base_kb
                    ? 100.0 * (double)res.retained_kb
                          / (double)(res.peak_kb - res.base_kb)
                    : 0.0;
                c->moves[k] = (double)res.moves;
                c->live_mb[k] = (double)res.live_max_bytes / (1024.0 * 1024.0);
                c->peak_per_live[k] = res.live_max_bytes > 0
                    ? (double)res.peak_kb * 1024.0 / (double)res.live_max_bytes
                    : 0.0;
                c->heap_per_live[k] = res.live_max_bytes > 0
                    ? (double)(res.peak_kb > res.base_kb
                                   ? res.peak_kb - res.base_kb : 0) * 1024.0
                          / (double)res.live_max_bytes
                    : 0.0;
                fprintf(stderr, "  %-7s run %d/%d  %-8s %9.2f ns/op  (cpu %9.2f)"
                        "  peak %8.1f MB\n",
                        workloads[wl].name, run + 1, runs, allocs[al].name,
                        c->ns_per_op[k], c->cpu_ns_per_op[k], c->peak_mb[k]);
            }
        }
    }

    if (json)
        print_json(&r);
    else
        print_tables(&r);

    int failures = 0;
    for (int wl = 0; wl < WL_COUNT; wl++)
        for (int al = 0; al < AL_COUNT; al++)
            failures += cells[wl][al].failed_runs;
    if (failures > 0)
        fprintf(stderr, "alloc_bench: %d run(s) failed\n", failures);
    return failures > 0 ? 1 : 0;
}
