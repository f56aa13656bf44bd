/*
 * trace_bench.c — what allocation tracing costs (issue 4's targets).
 *
 * One workload, the pairs loop of alloc_bench's row (a): n times allocate a
 * block of 8–512 bytes (sizes from one xorshift64 sequence), write its
 * first byte, free it. Measured in these modes, each in a child process of
 * its own (the debug hooks cannot be removed, Python is initialised once
 * per child), interleaved over the repetitions so that a drift of the
 * machine hits every mode alike; each child warms up with n / 10 pairs:
 *
 *   objmem             om_obj_malloc/om_obj_free, nothing installed
 *   objmem debug       after om_setup_debug_hooks()
 *   objmem trace 1     after om_trace_start(1)
 *   objmem trace 10    after om_trace_start(10)
 *   pymalloc           PyObject_Malloc/PyObject_Free from libpython, untraced
 *   tracemalloc 1      the same after tracemalloc.start(1)
 *   tracemalloc 10     the same after tracemalloc.start(10)
 *
 * The loop always runs at the bottom of a 10-deep call chain: 10 C frames
 * (noinline functions; this file is built with -fno-omit-frame-pointer) for
 * objmem, 10 Python frames (a recursive Python function that calls the C
 * loop as a built-in at depth 10) for CPython, whose tracemalloc records
 * Python frames only. So "10 frames" is a full 10-frame traceback on both
 * sides.
 *
 * Output: the median ns per pair of each mode over the repetitions, and the
 * ratios the targets name: trace 1 / untraced (≤ 3×), trace 10 / untraced
 * (≤ 6×), debug / untraced (≤ 4×), and objmem trace vs tracemalloc with
 * the same number of frames (< 1×).
 *
 * Usage: trace_bench [--pairs N] [--reps R]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "objmem.h"

#include "bench_util.h"

#ifdef OM_BENCH_HAVE_PYTHON
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#endif

#define NOINLINE __attribute__((noinline))
#define CHAIN_DEPTH 10
#define DEFAULT_PAIRS 5000000u
#define DEFAULT_REPS 5
#define SEED 0x9E3779B97F4A7C15ULL

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);

static volatile unsigned char sink;
static volatile int depth_sink;

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static double now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

/* The pairs loop; returns ns per pair. */
static NOINLINE double pairs_loop(uint64_t n, malloc_fn alloc, free_fn release)
{
    uint64_t s = SEED;
    double t0 = now_ns();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t r = rng_next(&s);
        size_t size = 8 + (size_t)(r % 505);
        unsigned char *p = alloc(size);
        if (p == NULL) {
            fprintf(stderr, "trace_bench: out of memory\n");
            exit(1);
        }
        p[0] = (unsigned char)r;
        sink = p[0];
        release(p);
    }
    return (now_ns() - t0) / (double)n;
}

/* pairs_loop at the bottom of `depth` frames of its own. */
static NOINLINE double chain(int depth, uint64_t n, malloc_fn alloc, free_fn release)
{
    double ns = depth <= 1 ? pairs_loop(n, alloc, release)
                           : chain(depth - 1, n, alloc, release);
    depth_sink = depth;           /* not a tail call: the frame stays */
    return ns;
}

static void *obj_malloc(size_t size) { return om_obj_malloc(size); }
static void obj_free(void *p) { om_obj_free(p); }

enum mode {
    MODE_OBJMEM, MODE_DEBUG, MODE_TRACE1, MODE_TRACE10,
    MODE_PYMALLOC, MODE_TRACEMALLOC1, MODE_TRACEMALLOC10, MODE_COUNT
};

static const char *const mode_names[MODE_COUNT] = {
    "objmem", "objmem debug hooks", "objmem trace 1 frame", "objmem trace 10 frames",
    "pymalloc", "tracemalloc 1 frame", "tracemalloc 10 frames",
};

static double measure_objmem(enum mode mode, uint64_t n)
{
    if (mode == MODE_DEBUG)
        om_setup_debug_hooks();
    if (mode == MODE_TRACE1 || mode == MODE_TRACE10)
        om_trace_start(mode == MODE_TRACE1 ? 1 : CHAIN_DEPTH);
    chain(CHAIN_DEPTH, n / 10, obj_malloc, obj_free);
    return chain(CHAIN_DEPTH, n, obj_malloc, obj_free);
}

#ifdef OM_BENCH_HAVE_PYTHON
static uint64_t py_pairs;
static double py_result;

static void *py_malloc(size_t size) { return PyObject_Malloc(size); }
static void py_free(void *p) { PyObject_Free(p); }

/* The built-in the Python chain calls at its bottom: warm up, measure. */
static PyObject *py_run(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    pairs_loop(py_pairs / 10, py_malloc, py_free);
    py_result = pairs_loop(py_pairs, py_malloc, py_free);
    Py_RETURN_NONE;
}

static PyMethodDef py_run_def = {"run", py_run, METH_NOARGS, "the pairs loop"};

static double measure_python(enum mode mode, uint64_t n)
{
    py_pairs = n;
    Py_Initialize();
    PyObject *main_module = PyImport_AddModule("__main__");
    PyObject *run = PyCFunction_New(&py_run_def, NULL);
    if (main_module == NULL || run == NULL ||
        PyObject_SetAttrString(main_module, "run", run) != 0)
        return -1;
    char code[512];
    int frames = mode == MODE_TRACEMALLOC1 ? 1 : CHAIN_DEPTH;
    snprintf(code, sizeof code,
             "import tracemalloc\n"
             "def chain(depth):\n"
             "    if depth <= 1:\n"
             "        run()\n"
             "    else:\n"
             "        chain(depth - 1)\n"
             "    return depth\n"
             "%s\n"
             "chain(%d)\n",
             mode == MODE_PYMALLOC ? "" : (frames == 1 ? "tracemalloc.start(1)"
                                                       : "tracemalloc.start(10)"),
             CHAIN_DEPTH - 1);   /* the module level is the 10th frame */
    if (PyRun_SimpleString(code) != 0)
        return -1;
    return py_result;
}
#endif

/* Runs one measurement in a child; ns per pair, or -1. */
static double measure_in_child(enum mode mode, uint64_t n)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        double ns = -1;
        if (mode <= MODE_TRACE10)
            ns = measure_objmem(mode, n);
#ifdef OM_BENCH_HAVE_PYTHON
        else
            ns = measure_python(mode, n / 4);   /* CPython's tracing is slower: fewer pairs */
#endif
        ssize_t w = write(fds[1], &ns, sizeof ns);
        _exit(w == (ssize_t)sizeof ns ? 0 : 1);
    }
    close(fds[1]);
    double ns = -1;
    if (pid < 0 || read(fds[0], &ns, sizeof ns) != (ssize_t)sizeof ns)
        ns = -1;
    close(fds[0]);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    return ns;
}

static void print_ratio(const char *what, double a, double b, const char *target)
{
    if (a > 0 && b > 0)
        printf("  %-44s %6.2fx   (target %s)\n", what, a / b, target);
    else
        printf("  %-44s    n/a   (target %s)\n", what, target);
}

int main(int argc, char **argv)
{
    uint64_t pairs = DEFAULT_PAIRS;
    int reps = DEFAULT_REPS;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--pairs") == 0)
            pairs = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--reps") == 0)
            reps = atoi(argv[i + 1]);
    }
    if (pairs < 10 || reps < 1 || reps > 99) {
        fprintf(stderr, "usage: trace_bench [--pairs N>=10] [--reps 1..99]\n");
        return 2;
    }
    int modes = MODE_COUNT;
#ifndef OM_BENCH_HAVE_PYTHON
    modes = MODE_PYMALLOC;
    printf("libpython not found at build time: the CPython rows are skipped\n");
#endif
    double runs[MODE_COUNT][99];
    double med[MODE_COUNT] = {0};
    printf("trace_bench: %llu pairs of 8-512 B (CPython rows: %llu), %d repetitions, "
           "at the bottom of a %d-frame call chain\n",
           (unsigned long long)pairs, (unsigned long long)pairs / 4, reps, CHAIN_DEPTH);
    for (int r = 0; r < reps; r++)
        for (int m = 0; m < modes; m++)
            runs[m][r] = measure_in_child((enum mode)m, pairs);
    printf("\n%-26s %10s   runs (ns per pair, sorted)\n", "mode", "median");
    for (int m = 0; m < modes; m++) {
        med[m] = bench_median(runs[m], reps);
        printf("%-26s %10.2f  ", mode_names[m], med[m]);
        for (int r = 0; r < reps; r++)
            printf(" %.2f", runs[m][r]);
        printf("\n");
    }
    printf("\nratios:\n");
    print_ratio("objmem trace 1 frame / objmem", med[MODE_TRACE1], med[MODE_OBJMEM], "<= 3");
    print_ratio("objmem trace 10 frames / objmem", med[MODE_TRACE10], med[MODE_OBJMEM], "<= 6");
    print_ratio("objmem debug hooks / objmem", med[MODE_DEBUG], med[MODE_OBJMEM], "<= 4");
    print_ratio("objmem trace 1 / tracemalloc 1", med[MODE_TRACE1], med[MODE_TRACEMALLOC1],
                "< 1");
    print_ratio("objmem trace 10 / tracemalloc 10", med[MODE_TRACE10],
                med[MODE_TRACEMALLOC10], "< 1");
    print_ratio("tracemalloc 1 / pymalloc", med[MODE_TRACEMALLOC1], med[MODE_PYMALLOC], "-");
    print_ratio("tracemalloc 10 / pymalloc", med[MODE_TRACEMALLOC10], med[MODE_PYMALLOC], "-");
    return 0;
}
