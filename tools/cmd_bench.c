/*
 * cmd_bench.c — `objmem bench`: objmem's allocator against its peers on
 * the workloads of bench/workloads.h, with a table of ratios at the end.
 *
 * Peers (the allocators) are found at run time, so the tool has no
 * build-time dependency on any of them:
 *
 *   objmem    om_obj_malloc / om_obj_free / om_obj_realloc (linked in)
 *   glibc     malloc / free / realloc of the C library
 *   mimalloc  mi_malloc / mi_free / mi_realloc     dlopen libmimalloc.so.2
 *   jemalloc  malloc / free / realloc              LD_PRELOAD libjemalloc.so.2
 *   tcmalloc  tc_malloc / tc_free / tc_realloc     dlopen libtcmalloc_minimal.so.4
 *   pymalloc  PyObject_Malloc / _Free / _Realloc   dlopen libpython3.11.so.1.0
 *
 * jemalloc is preloaded rather than opened: its thread-local storage uses
 * the initial-exec model, which dlopen cannot place ("cannot allocate
 * memory in static TLS block"). pymalloc needs no Py_Initialize in 3.11:
 * the OBJ domain is statically pymalloc. A peer whose library is missing
 * is listed as unavailable and skipped; `make bench` (bench/install-peers.sh)
 * installs them.
 *
 * Process structure: one fresh process per measurement, so that no
 * allocator inherits another's heap or RSS high-water mark. For each run,
 * workload and allocator (interleaved in that order, so drift on a busy
 * machine spreads over every allocator) the parent spawns
 *   /proc/self/exe bench --child ALLOCATOR WORKLOAD SIZE
 * (SIZE quick or full) with stdout on a pipe. The child binds the
 * allocator's three functions into bench_alloc, runs the workload once and
 * writes one line: "ok OPS CPU_NS WALL_NS PEAK_KB", or "unavailable REASON" and
 * exit status 5. The parent keeps the median of the runs per cell, and
 * prints the ns/op table and the ratios objmem / peer (below 1: objmem is
 * faster), or all of it as JSON with --json. The tables use the child's
 * CPU time (CLOCK_PROCESS_CPUTIME_ID: user + kernel, so page faults
 * count), because on a shared machine wall time mostly measures the wait
 * for a core; the JSON has wall time too. On a terminal (and without
 * --json) a progress bar on stdout counts the measurements.
 *
 * Fairness: workloads.h is compiled once here, and every allocator, objmem
 * included, is called through the same function pointers in bench_alloc;
 * the indirect call costs each the same ~1-2 ns, so the absolute numbers
 * are a little above alloc_bench's (direct calls through the PLT), the
 * ratios comparable. One xorshift64 sequence feeds every allocator; the
 * bench's own arrays come from mmap, outside every allocator.
 *
 * Exit status: 0 done (unavailable peers are reported, not errors); 1 a
 * measurement failed (a child crashed or an allocation failed); 2 usage.
 */
#include "tool.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* ---- What workloads.h needs ---------------------------------------------------- */

typedef struct bench_params {
    uint64_t pairs;         /* pairs: malloc+free pairs of 8-512 B */
    size_t churn_live;      /* churn: live slots */
    uint64_t churn_steps;   /* churn: replace steps */
    size_t bulk_count;      /* bulk: objects */
    int tree_depth;         /* trees: max depth */
    uint64_t medium_pairs;  /* medium: malloc+free pairs of 513 B-32 KiB */
    size_t window_live;     /* window: live medium blocks */
    uint64_t window_steps;  /* window: replace steps */
    uint64_t large_pairs;   /* large: malloc+free pairs of 32 KiB-1 MiB */
    size_t realloc_max;     /* realloc: final size of the buffer, bytes */
} bench_params;

typedef struct bench_result {
    uint64_t ops;            /* operations timed */
    uint64_t elapsed_ns;     /* wall time of those operations */
    uint64_t cpu_ns;         /* CPU time of the process over the same intervals */
    uint64_t peak_kb;        /* VmHWM after the workload, KiB */
    uint64_t after_kb;       /* bulk: RSS after every free, KiB */
    uint64_t base_kb;        /* bulk, window: RSS before the first allocation, KiB */
    uint64_t retained_kb;    /* bulk: RSS kept after every free, KiB */
    uint64_t moves;          /* realloc: reallocs that moved the buffer */
    uint64_t live_max_bytes; /* window: most bytes held at once */
} bench_result;

typedef struct tree_node {
    struct tree_node *left;  /* NULL in a leaf */
    struct tree_node *right; /* NULL in a leaf */
} tree_node;

typedef struct bench_clock {
    uint64_t wall_ns;        /* CLOCK_MONOTONIC at the start */
    uint64_t cpu_ns;         /* CLOCK_PROCESS_CPUTIME_ID at the start */
} bench_clock;

#define BENCH_SEED UINT64_C(0x9E3779B97F4A7C15)
#define WL_MEDIUM_MIN 513u
#define WL_MEDIUM_MAX 32768u
#define WL_LARGE_MIN 32769u
#define WL_LARGE_MAX 1048576u

enum { CHILD_OOM = 3, CHILD_BAD = 4, CHILD_UNAVAILABLE = 5 };

static inline uint64_t rng_next(uint64_t *state)
{
    return xorshift64(state);
}

static inline uint64_t cpu_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline bench_clock clock_start(void)
{
    return (bench_clock){.cpu_ns = cpu_now_ns(), .wall_ns = now_ns()};
}

static inline void clock_stop(bench_clock c, bench_result *res)
{
    uint64_t wall = now_ns();
    res->cpu_ns += cpu_now_ns() - c.cpu_ns;
    res->elapsed_ns += wall - c.wall_ns;
}

/* The first byte written and the address escaping: no allocation can be
 * optimised away. */
static inline void touch_block(void *p, uint64_t r)
{
    *(volatile unsigned char *)p = (unsigned char)r;
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

/* One byte written in every page of [p, p + size). */
static inline void touch_pages(void *p, size_t size, uint64_t r)
{
    volatile unsigned char *bytes = p;
    for (size_t at = 0; at < size; at += 4096)
        bytes[at] = (unsigned char)r;
    bytes[size - 1] = (unsigned char)r;
    __asm__ __volatile__("" : : "r"(p) : "memory");
}

static _Noreturn void bench_bad(const char *what, size_t where)
{
    fprintf(stderr, "objmem bench: %s (at byte %zu)\n", what, where);
    exit(CHILD_BAD);
}

static _Noreturn void bench_oom(size_t size)
{
    fprintf(stderr, "objmem bench: an allocation of %zu bytes failed\n", size);
    exit(CHILD_OOM);
}

static void *bench_map(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        bench_oom(size);
    return p;
}

static void bench_unmap(void *p, size_t size)
{
    munmap(p, size);
}

static uint64_t rss_now_kb(void)
{
    return rss_bytes() / 1024;
}

/* VmHWM of this process image, KiB (0 if unknown). */
static uint64_t rss_peak_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmHWM: %llu", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static uint64_t tree_check(const tree_node *t)
{
    return t->left == NULL ? 1 : 1 + tree_check(t->left) + tree_check(t->right);
}

/* The allocator under test, bound once in the child. */
static struct {
    void *(*malloc_fn)(size_t);
    void (*free_fn)(void *);
    void *(*realloc_fn)(void *, size_t);
} bench_alloc;

#define WL_FAMILY tool
#define WL_MALLOC(size) bench_alloc.malloc_fn(size)
#define WL_FREE(ptr) bench_alloc.free_fn(ptr)
#define WL_REALLOC(ptr, size) bench_alloc.realloc_fn(ptr, size)
#include "workloads.h"

/* ---- Workloads and allocators ---------------------------------------------------- */

typedef struct workload {
    const char *name;
    const char *what;       /* one line for the table's legend */
    const char *op;         /* what one operation is */
    void (*run)(const bench_params *, bench_result *);
} workload;

static const workload workloads[] = {
    {"pairs", "malloc+free pairs of 8-512 B", "pair", wl_pairs_tool},
    {"churn", "free a random one of many live 8-512 B blocks, allocate anew", "step", wl_churn_tool},
    {"bulk", "allocate many 16-128 B blocks, free them shuffled", "block", wl_bulk_tool},
    {"trees", "binary trees of 16 B nodes, built and freed", "node", wl_trees_tool},
    {"medium", "malloc+free pairs of 513 B-32 KiB", "pair", wl_medium_tool},
    {"window", "replace random ones of many live 513 B-32 KiB blocks", "step", wl_window_tool},
    {"large", "malloc+free pairs of 32 KiB-1 MiB", "pair", wl_large_tool},
    {"realloc", "grow one buffer by realloc, 1 B at a time", "realloc", wl_realloc_tool},
};
enum { WORKLOAD_COUNT = sizeof workloads / sizeof workloads[0] };

typedef struct allocator {
    const char *name;
    const char *library;    /* soname; NULL: linked in */
    bool preload;           /* LD_PRELOAD it instead of dlopen */
    const char *symbols[3]; /* malloc, free, realloc */
} allocator;

static const allocator allocators[] = {
    {"objmem", NULL, false, {"om_obj_malloc", "om_obj_free", "om_obj_realloc"}},
    {"glibc", NULL, false, {"malloc", "free", "realloc"}},
    {"mimalloc", "libmimalloc.so.2", false, {"mi_malloc", "mi_free", "mi_realloc"}},
    {"jemalloc", "libjemalloc.so.2", true, {"malloc", "free", "realloc"}},
    {"tcmalloc", "libtcmalloc_minimal.so.4", false, {"tc_malloc", "tc_free", "tc_realloc"}},
    {"pymalloc", "libpython3.11.so.1.0", false,
     {"PyObject_Malloc", "PyObject_Free", "PyObject_Realloc"}},
};
enum { ALLOCATOR_COUNT = sizeof allocators / sizeof allocators[0], OBJMEM = 0 };

static void params_init(bench_params *p, bool quick)
{
    if (quick)
        *p = (bench_params){.pairs = 1000000, .churn_live = 50000, .churn_steps = 500000,
                            .bulk_count = 200000, .tree_depth = 12, .medium_pairs = 100000,
                            .window_live = 512, .window_steps = 50000, .large_pairs = 5000,
                            .realloc_max = (size_t)1 << 20};
    else
        *p = (bench_params){.pairs = 10000000, .churn_live = 1000000, .churn_steps = 5000000,
                            .bulk_count = 2000000, .tree_depth = 16, .medium_pairs = 1000000,
                            .window_live = 4096, .window_steps = 1000000, .large_pairs = 100000,
                            .realloc_max = (size_t)16 << 20};
}

static int find_workload(const char *name)
{
    for (int i = 0; i < WORKLOAD_COUNT; i++)
        if (strcmp(workloads[i].name, name) == 0)
            return i;
    return -1;
}

static int find_allocator(const char *name)
{
    for (int i = 0; i < ALLOCATOR_COUNT; i++)
        if (strcmp(allocators[i].name, name) == 0)
            return i;
    return -1;
}

/* ---- The child: one measurement ------------------------------------------------------ */

/* Binds bench_alloc to allocator a; 0, or -1 with the reason in why. */
static int bind_allocator(const allocator *a, char *why, size_t why_size)
{
    if (a == &allocators[OBJMEM]) {
        bench_alloc.malloc_fn = om_obj_malloc;
        bench_alloc.free_fn = om_obj_free;
        bench_alloc.realloc_fn = om_obj_realloc;
        return 0;
    }
    void *lib = RTLD_DEFAULT;
    if (a->library != NULL) {
        /* Preloaded: already in the process, so RTLD_NOLOAD finds it. */
        lib = dlopen(a->library, RTLD_NOW | RTLD_LOCAL | (a->preload ? RTLD_NOLOAD : 0));
        if (lib == NULL) {
            snprintf(why, why_size, "%s", a->preload ? "not preloaded (a sanitizer build?)" : dlerror());
            return -1;
        }
    }
    void *fn[3];
    for (int i = 0; i < 3; i++) {
        if ((fn[i] = dlsym(lib, a->symbols[i])) == NULL) {
            snprintf(why, why_size, "no %s in %s", a->symbols[i], a->library ? a->library : "libc");
            return -1;
        }
    }
    /* dlsym returns data pointers; POSIX guarantees they convert to functions. */
    memcpy(&bench_alloc.malloc_fn, &fn[0], sizeof fn[0]);
    memcpy(&bench_alloc.free_fn, &fn[1], sizeof fn[1]);
    memcpy(&bench_alloc.realloc_fn, &fn[2], sizeof fn[2]);
    return 0;
}

static int child_main(int argc, char **argv)
{
    int al = argc == 5 ? find_allocator(argv[2]) : -1;
    int wl = argc == 5 ? find_workload(argv[3]) : -1;
    if (al < 0 || wl < 0 || (strcmp(argv[4], "quick") != 0 && strcmp(argv[4], "full") != 0))
        return usage_error(bench_usage, "bad --child arguments");
    char why[256];
    if (bind_allocator(&allocators[al], why, sizeof why) != 0) {
        printf("unavailable %s\n", why);
        return CHILD_UNAVAILABLE;
    }
    bench_params params;
    params_init(&params, strcmp(argv[4], "quick") == 0);
    bench_result res = {0};
    workloads[wl].run(&params, &res);
    res.peak_kb = rss_peak_kb();
    printf("ok %llu %llu %llu %llu\n", (unsigned long long)res.ops,
           (unsigned long long)res.cpu_ns, (unsigned long long)res.elapsed_ns,
           (unsigned long long)res.peak_kb);
    return finish_stdout();
}

/* ---- The parent: every measurement ---------------------------------------------------- */

enum { MAX_RUNS = 99 };

typedef struct cell {
    int done;                   /* runs measured */
    double ns_per_op[MAX_RUNS]; /* CPU time per operation, one per run */
    double wall_per_op[MAX_RUNS]; /* wall time per operation, one per run */
    uint64_t ops;               /* per run (the same every run) */
    uint64_t peak_kb;           /* the largest peak of the runs */
} cell;

typedef struct bench_state {
    bool quick, json;
    int runs;
    bool want_workload[WORKLOAD_COUNT];
    bool want_allocator[ALLOCATOR_COUNT];
    bool unavailable[ALLOCATOR_COUNT];
    char why[ALLOCATOR_COUNT][160];     /* why unavailable */
    cell cells[WORKLOAD_COUNT][ALLOCATOR_COUNT];
    int steps, steps_done;              /* for the progress bar */
    bool progress;                      /* draw it */
} bench_state;

/* The environment of a child: environ, with LD_PRELOAD set to `preload`
 * (or removed when NULL, so no inherited preload skews a measurement). */
static char **child_environment(const char *preload, char *preload_var, size_t var_size)
{
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **env = malloc((n + 2) * sizeof *env);
    if (env == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0)
            env[k++] = environ[i];
    if (preload != NULL) {
        snprintf(preload_var, var_size, "LD_PRELOAD=%s", preload);
        env[k++] = preload_var;
    }
    env[k] = NULL;
    return env;
}

/* Runs one child; 0 with its line in line[], or -1 after reporting. */
static int spawn_child(const bench_state *st, int wl, int al, char *line, size_t line_size,
                       int *status)
{
    const allocator *a = &allocators[al];
    char preload_var[256];
    char **env = child_environment(a->preload ? a->library : NULL, preload_var, sizeof preload_var);
    int fds[2];
    if (env == NULL || pipe(fds) != 0) {
        free(env);
        return fail("cannot start a measurement: %s", env == NULL ? "out of memory" : strerror(errno));
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    posix_spawn_file_actions_addclose(&actions, fds[1]);
    char *argv[] = {"objmem", "bench", "--child", (char *)a->name, (char *)workloads[wl].name,
                    st->quick ? "quick" : "full", NULL};
    pid_t pid;
    int rc = posix_spawn(&pid, "/proc/self/exe", &actions, NULL, argv, env);
    posix_spawn_file_actions_destroy(&actions);
    free(env);
    close(fds[1]);
    if (rc != 0) {
        close(fds[0]);
        return fail("cannot run /proc/self/exe: %s", strerror(rc));
    }
    FILE *out = fdopen(fds[0], "r");
    line[0] = '\0';
    if (out == NULL || fgets(line, (int)line_size, out) == NULL)
        line[0] = '\0';
    if (out != NULL)
        fclose(out);
    else
        close(fds[0]);
    while (waitpid(pid, status, 0) < 0)
        if (errno != EINTR)
            return fail("waiting for a measurement: %s", strerror(errno));
    return 0;
}

static void progress_draw(bench_state *st, int wl, int al)
{
    if (!st->progress)
        return;
    enum { WIDTH = 30 };
    int filled = st->steps ? st->steps_done * WIDTH / st->steps : WIDTH;
    char bar[WIDTH + 1];
    for (int i = 0; i < WIDTH; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[WIDTH] = '\0';
    printf("\r  [%s] %3d/%d  %-8s %-9s", bar, st->steps_done, st->steps,
           wl >= 0 ? workloads[wl].name : "", al >= 0 ? allocators[al].name : "");
    fflush(stdout);
}

static void progress_clear(const bench_state *st)
{
    if (st->progress)
        printf("\r%72s\r", "");
}

/* One measurement into its cell; 0, or -1 when it failed. */
static int measure(bench_state *st, int wl, int al)
{
    char line[256];
    int status = 0;
    if (spawn_child(st, wl, al, line, sizeof line, &status) != 0)
        return -1;
    unsigned long long ops, cpu, wall, peak;
    cell *c = &st->cells[wl][al];
    if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_UNAVAILABLE &&
        strncmp(line, "unavailable ", 12) == 0) {
        st->unavailable[al] = true;
        line[strcspn(line, "\n")] = '\0';
        snprintf(st->why[al], sizeof st->why[al], "%.150s", line + 12);
        return 0;
    }
    if (allocators[al].preload && c->done == 0 && line[0] == '\0' &&
        !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
        /* The process did not even start with the library preloaded (a
         * sanitizer runtime insists on coming first, for one). */
        st->unavailable[al] = true;
        snprintf(st->why[al], sizeof st->why[al], "the process does not start with %s preloaded",
                 allocators[al].library);
        return 0;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        sscanf(line, "ok %llu %llu %llu %llu", &ops, &cpu, &wall, &peak) != 4 || ops == 0) {
        progress_clear(st);
        if (WIFSIGNALED(status))
            return fail("%s on %s: killed by signal %d (%s)", workloads[wl].name,
                        allocators[al].name, WTERMSIG(status), strsignal(WTERMSIG(status)));
        return fail("%s on %s: the measurement failed (exit status %d)", workloads[wl].name,
                    allocators[al].name, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    c->wall_per_op[c->done] = (double)wall / (double)ops;
    c->ns_per_op[c->done++] = (double)cpu / (double)ops;
    c->ops = ops;
    if (peak > c->peak_kb)
        c->peak_kb = peak;
    return 0;
}

static int run_all(bench_state *st)
{
    int nwl = 0, nal = 0;
    for (int w = 0; w < WORKLOAD_COUNT; w++)
        nwl += st->want_workload[w];
    for (int a = 0; a < ALLOCATOR_COUNT; a++)
        nal += st->want_allocator[a];
    st->steps = st->runs * nwl * nal;
    for (int run = 0; run < st->runs; run++) {
        for (int w = 0; w < WORKLOAD_COUNT; w++) {
            for (int a = 0; a < ALLOCATOR_COUNT && st->want_workload[w]; a++) {
                if (!st->want_allocator[a])
                    continue;
                progress_draw(st, w, a);
                if (!st->unavailable[a] && measure(st, w, a) != 0)
                    return -1;
                st->steps_done++;
            }
        }
    }
    progress_draw(st, -1, -1);
    progress_clear(st);
    return 0;
}

/* ---- Results -------------------------------------------------------------------------- */

static int compare_doubles(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return (a > b) - (a < b);
}

static double median(const double *values, int n)
{
    if (n == 0)
        return 0;
    double v[MAX_RUNS];
    memcpy(v, values, (size_t)n * sizeof v[0]);
    qsort(v, (size_t)n, sizeof v[0], compare_doubles);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median CPU ns per operation of a cell; 0 when it has no measurement. */
static double cell_ns(const cell *c)
{
    return median(c->ns_per_op, c->done);
}

static bool column(const bench_state *st, int a)
{
    return st->want_allocator[a] && !st->unavailable[a];
}

static void print_text(const bench_state *st)
{
    printf("%sobjmem bench%s: %s workloads, %d run%s each (median), one process per "
           "measurement\n\n", bold(), plain(), st->quick ? "quick" : "full", st->runs,
           st->runs == 1 ? "" : "s");
    printf("%s%-9s", dim(), "CPU ns/op");
    for (int a = 0; a < ALLOCATOR_COUNT; a++)
        if (column(st, a))
            printf(" %10s", allocators[a].name);
    printf("   per%s\n", plain());
    for (int w = 0; w < WORKLOAD_COUNT; w++) {
        if (!st->want_workload[w])
            continue;
        printf("%-9s", workloads[w].name);
        for (int a = 0; a < ALLOCATOR_COUNT; a++)
            if (column(st, a))
                printf(" %10.1f", cell_ns(&st->cells[w][a]));
        printf("   %s\n", workloads[w].op);
    }

    printf("\n%sratios: objmem time / peer time (below 1: objmem is faster)%s\n", bold(), plain());
    printf("%s%-9s", dim(), "");
    for (int a = 1; a < ALLOCATOR_COUNT; a++)
        if (column(st, a))
            printf(" %10s", allocators[a].name);
    printf("%s\n", plain());
    for (int w = 0; w < WORKLOAD_COUNT; w++) {
        if (!st->want_workload[w])
            continue;
        printf("%-9s", workloads[w].name);
        double om = cell_ns(&st->cells[w][OBJMEM]);
        for (int a = 1; a < ALLOCATOR_COUNT; a++)
            if (column(st, a))
                printf(" %10.2f", om / cell_ns(&st->cells[w][a]));
        printf("\n");
    }

    printf("\n");
    for (int w = 0; w < WORKLOAD_COUNT; w++)
        if (st->want_workload[w])
            printf("  %-9s %s (%s %ss)\n", workloads[w].name, workloads[w].what,
                   fmt_count(st->cells[w][OBJMEM].ops), workloads[w].op);
    for (int a = 0; a < ALLOCATOR_COUNT; a++)
        if (st->want_allocator[a] && st->unavailable[a])
            printf("  %s skipped: %s\n", allocators[a].name, st->why[a]);
    printf("  every allocator is called through the same function pointers (see docs/tool.md);\n"
           "  `make bench` runs the full suite with direct calls and memory tables\n");
}

/* s as a JSON string (control characters, which a reason never has, as '?'). */
static void json_string(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar((unsigned char)*s < 0x20 ? '?' : *s);
    }
    putchar('"');
}

static void print_json(const bench_state *st)
{
    printf("{\"version\":\"%d.%d.%d\",\"quick\":%s,\"runs\":%d,\"ratio\":\"objmem_ns / peer_ns\",\n",
           OM_VERSION_MAJOR, OM_VERSION_MINOR, OM_VERSION_PATCH, st->quick ? "true" : "false",
           st->runs);
    printf(" \"allocators\":[");
    bool first = true;
    for (int a = 0; a < ALLOCATOR_COUNT; a++) {
        if (!st->want_allocator[a])
            continue;
        printf("%s\n  {\"name\":\"%s\",\"available\":%s", first ? "" : ",", allocators[a].name,
               st->unavailable[a] ? "false" : "true");
        if (st->unavailable[a]) {
            fputs(",\"reason\":", stdout);
            json_string(st->why[a]);
        }
        putchar('}');
        first = false;
    }
    printf("],\n \"workloads\":[");
    first = true;
    for (int w = 0; w < WORKLOAD_COUNT; w++) {
        if (!st->want_workload[w])
            continue;
        printf("%s\n  {\"name\":\"%s\",\"op\":\"%s\",\"ops\":%llu,\"ns_per_op\":{", first ? "" : ",",
               workloads[w].name, workloads[w].op, (unsigned long long)st->cells[w][OBJMEM].ops);
        bool first_al = true;
        for (int a = 0; a < ALLOCATOR_COUNT; a++) {
            if (column(st, a))
                printf("%s\"%s\":%.3f", first_al ? "" : ",", allocators[a].name,
                       cell_ns(&st->cells[w][a]));
            first_al = first_al && !column(st, a);
        }
        printf("},\"wall_ns_per_op\":{");
        first_al = true;
        for (int a = 0; a < ALLOCATOR_COUNT; a++) {
            if (column(st, a))
                printf("%s\"%s\":%.3f", first_al ? "" : ",", allocators[a].name,
                       median(st->cells[w][a].wall_per_op, st->cells[w][a].done));
            first_al = first_al && !column(st, a);
        }
        printf("},\"peak_kb\":{");
        first_al = true;
        for (int a = 0; a < ALLOCATOR_COUNT; a++) {
            if (column(st, a))
                printf("%s\"%s\":%llu", first_al ? "" : ",", allocators[a].name,
                       (unsigned long long)st->cells[w][a].peak_kb);
            first_al = first_al && !column(st, a);
        }
        printf("},\"ratios\":{");
        first_al = true;
        double om = cell_ns(&st->cells[w][OBJMEM]);
        for (int a = 1; a < ALLOCATOR_COUNT; a++) {
            if (column(st, a))
                printf("%s\"%s\":%.4f", first_al ? "" : ",", allocators[a].name,
                       om / cell_ns(&st->cells[w][a]));
            first_al = first_al && !column(st, a);
        }
        printf("}}");
        first = false;
    }
    printf("\n]}\n");
}

/* ---- The command ------------------------------------------------------------------------ */

void bench_usage(FILE *out)
{
    fprintf(out,
            "usage: objmem bench [--quick] [--json] [--runs N] [--filter NAME[,NAME...]]\n"
            "\n"
            "Times objmem's allocator (om_obj_*) against the peers found on this\n"
            "machine (glibc, mimalloc, jemalloc, tcmalloc, CPython's pymalloc) on\n"
            "the workloads of bench/workloads.h, one fresh process per measurement,\n"
            "and prints ns per operation and the ratios objmem / peer (below 1:\n"
            "objmem is faster). A peer that is not installed is skipped and named.\n"
            "\n"
            "options:\n"
            "  --quick          small workloads: seconds, not minutes; one run\n"
            "  --json           print the results as one JSON object\n"
            "  --runs N         runs per measurement, median kept, 1 .. %d\n"
            "                   (default 1 with --quick, else 3)\n"
            "  --filter LIST    only these workloads and/or allocators (objmem is\n"
            "                   always measured: the ratios need it); names:\n"
            "                   ",
            MAX_RUNS);
    for (int w = 0; w < WORKLOAD_COUNT; w++)
        fprintf(out, "%s ", workloads[w].name);
    fprintf(out, "\n                   ");
    for (int a = 0; a < ALLOCATOR_COUNT; a++)
        fprintf(out, "%s ", allocators[a].name);
    fprintf(out, "\n"
                 "  -h, --help       show this help\n"
                 "\n"
                 "A progress bar is drawn on stdout when it is a terminal (not with --json).\n"
                 "exit status: 0 done, 1 a measurement failed, 2 usage error\n");
}

/* Applies --filter's comma-separated names; 0, or EXIT_USAGE after reporting. */
static int apply_filter(bench_state *st, const char *list)
{
    bool any_workload = false, any_allocator = false;
    bool wl[WORKLOAD_COUNT] = {false}, al[ALLOCATOR_COUNT] = {false};
    const char *p = list;
    for (;;) {
        size_t len = strcspn(p, ",");
        char name[32];
        if (len == 0 || len >= sizeof name)
            return usage_error(bench_usage, "--filter: bad name list '%s'", list);
        memcpy(name, p, len);
        name[len] = '\0';
        int w = find_workload(name), a = find_allocator(name);
        if (w < 0 && a < 0)
            return usage_error(bench_usage, "--filter: no workload or allocator named '%s'", name);
        if (w >= 0)
            wl[w] = any_workload = true;
        if (a >= 0)
            al[a] = any_allocator = true;
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    for (int w = 0; w < WORKLOAD_COUNT && any_workload; w++)
        st->want_workload[w] = wl[w];
    for (int a = 1; a < ALLOCATOR_COUNT && any_allocator; a++)
        st->want_allocator[a] = al[a];
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--child") == 0)
        return child_main(argc, argv);
    static bench_state st;
    for (int w = 0; w < WORKLOAD_COUNT; w++)
        st.want_workload[w] = true;
    for (int a = 0; a < ALLOCATOR_COUNT; a++)
        st.want_allocator[a] = true;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            bench_usage(stdout);
            return EXIT_SUCCESS;
        } else if (strcmp(argv[i], "--quick") == 0) {
            st.quick = true;
        } else if (strcmp(argv[i], "--json") == 0) {
            st.json = true;
        } else if (strcmp(argv[i], "--runs") == 0 || strcmp(argv[i], "--filter") == 0) {
            if (i + 1 == argc)
                return usage_error(bench_usage, "%s wants a value", argv[i]);
            size_t runs;
            if (argv[i][2] == 'f') {
                int rc = apply_filter(&st, argv[++i]);
                if (rc != 0)
                    return rc;
            } else if (parse_count(argv[++i], 1, MAX_RUNS, &runs) != 0) {
                return usage_error(bench_usage, "--runs wants a number from 1 to %d, not '%s'",
                                   MAX_RUNS, argv[i]);
            } else {
                st.runs = (int)runs;
            }
        } else {
            return usage_error(bench_usage, "unknown argument '%s'", argv[i]);
        }
    }
    if (st.runs == 0)
        st.runs = st.quick ? 1 : 3;
    st.progress = !st.json && isatty(STDOUT_FILENO);
    if (run_all(&st) != 0)
        return EXIT_FAILURE;
    if (st.json)
        print_json(&st);
    else
        print_text(&st);
    return finish_stdout();
}
