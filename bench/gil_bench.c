/*
 * gil_bench.c — runtimes, threads and the GIL against their targets
 * (issue 7), each part timed several times in one run, medians reported.
 *
 *   (i)   hand-off latency: two threads pass the GIL back and forth. The
 *         holder waits (GIL held) until the other thread has announced
 *         that it is about to wait for the GIL, holds on HANDOFF_SETTLE_NS
 *         more so that the waiter is asleep in the lock, reads the clock
 *         and releases; the waiter reads the clock as soon as it holds the
 *         GIL. Latency = the two readings' difference. The releaser does not
 *         compete for the GIL again until the waiter has taken it (it spins
 *         without the GIL on a flag), so the figure is the hand-off alone.
 *         The same pattern on objmem's GIL (om_save_thread /
 *         om_restore_thread) and on CPython 3.11's (PyEval_SaveThread /
 *         PyEval_RestoreThread, two pthreads with PyGILState_Ensure,
 *         libpython embedded in this process). p50 and p99 per run;
 *         target: objmem p99 <= CPython's.
 *   (ii)  parallel runtimes: the same work (binary trees built and
 *         released, objects of a GC type, collector on) once on one
 *         thread (T1); twice at once on two threads, each attached to a
 *         runtime of its own (Tthreads); twice at once in two forked
 *         processes (Tprocs). Speed-ups 2·T1/Tthreads and 2·T1/Tprocs;
 *         target: runtimes reach >= 90 % of the processes' speed-up.
 *   (iii) convoy: the same work twice on two threads attached to ONE
 *         runtime (they take turns on its GIL; T2) against once on one
 *         thread: throughput ratio 2·T1/T2; target >= 0.9. For the same
 *         moment's load, CPython's ratio on the same pattern (binary trees
 *         of a __slots__ class, one thread then two threads) is printed too.
 * Each part prints every run's p99 (i) so that the spread behind the
 * medians shows: on a loaded 2-core machine a hand-off's tail is mostly the
 * scheduler's (the woken thread waiting for a CPU).
 *
 * Build with -DOM_BUILD_BENCH=ON (Release; objmem's shared library, as the
 * peers are shared libraries). Arguments: [repetitions] [tree depth]
 * [trees per work unit] [hand-offs per run]. The default unit, 40 trees of
 * depth 16, takes ~0.2 s on one thread: with 8 trees (~50 ms) starting the
 * threads and the second runtime's first arenas weighed on (ii) and the
 * 5 ms switch interval on (iii).
 */
#include <objmem.h>

#include "bench_util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef OM_BENCH_HAVE_PYTHON
#include <Python.h>
#endif

#define HANDOFF_SETTLE_NS 50000   /* the waiter is asleep in the lock by then */
#define MAX_REPETITIONS 64

typedef struct bench_config {
    int repetitions;       /* timed runs per part; medians reported */
    int depth;             /* depth of each binary tree */
    int trees;             /* trees per work unit */
    int handoffs;          /* hand-offs per latency run */
} bench_config;

static void die(const char *what)
{
    fprintf(stderr, "gil_bench: %s: %s\n", what, om_last_error_message());
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void spin_until_ns(uint64_t deadline)
{
    while (now_ns() < deadline)
        ;
}

/* ---- (i) Hand-off latency ---------------------------------------------- */

/* The GIL under test, as two calls: release (returns a token) and take. */
typedef struct gil_ops {
    void *(*release)(void);
    void (*take)(void *token);
    void (*thread_begin)(void);    /* on a new thread: attach, hold the GIL */
    void (*thread_end)(void);
} gil_ops;

typedef struct handoff_state {
    const gil_ops *ops;
    int handoffs;                 /* hand-offs to make in all */
    atomic_int released;          /* threads past their first release */
    atomic_int first_holder_ready; /* thread 0 holds the GIL for hand-off 0 */
    atomic_int waiting[2];        /* thread i is about to wait for the GIL */
    atomic_int taken;             /* hand-offs completed */
    _Atomic uint64_t released_at; /* clock when the holder released */
    double *latencies_ns;         /* one per hand-off */
} handoff_state;

typedef struct handoff_thread {
    handoff_state *s;
    int me;                       /* 0 or 1 */
} handoff_thread;

/* Holder's side of hand-off k: wait until the other thread is queued for
 * the GIL, let it fall asleep there, read the clock, release; then stay
 * out of the lock until the waiter has it. Returns the release token. */
static void *hand_over(handoff_state *s, int me, int k)
{
    while (atomic_load(&s->waiting[1 - me]) == 0)
        ;
    spin_until_ns(now_ns() + HANDOFF_SETTLE_NS);
    atomic_store(&s->released_at, now_ns());
    void *token = s->ops->release();
    while (atomic_load(&s->taken) <= k)
        ;
    return token;
}

/* Waiter's side of hand-off k: announce, take, read the clock. */
static void wait_for_hand_over(handoff_state *s, int me, void *token, int k)
{
    atomic_store(&s->waiting[me], 1);
    s->ops->take(token);
    uint64_t got = now_ns();
    atomic_store(&s->waiting[me], 0);
    s->latencies_ns[k] = (double)(got - atomic_load(&s->released_at));
    atomic_store(&s->taken, k + 1);
}

/* Both threads run this. Hand-off k goes from thread k % 2 to the other:
 * thread 0 holds the GIL first. */
static void *handoff_run(void *varg)
{
    handoff_thread *t = varg;
    handoff_state *s = t->s;
    s->ops->thread_begin();
    void *token = s->ops->release();
    atomic_fetch_add(&s->released, 1);
    while (atomic_load(&s->released) < 2)
        ;
    if (t->me == 0) {
        s->ops->take(token);
        atomic_store(&s->first_holder_ready, 1);
    } else {
        while (atomic_load(&s->first_holder_ready) == 0)
            ;
        wait_for_hand_over(s, 1, token, 0);
    }
    for (int k = t->me; k < s->handoffs; k += 2) {
        token = hand_over(s, t->me, k);
        if (k + 1 < s->handoffs)
            wait_for_hand_over(s, t->me, token, k + 1);
        else
            s->ops->take(token);
    }
    s->ops->thread_end();
    return NULL;
}

typedef struct percentiles {
    double p50, p99;
} percentiles;

static percentiles percentiles_of(double *values, int count)
{
    qsort(values, (size_t)count, sizeof *values, bench_compare_doubles);
    return (percentiles){values[count / 2], values[(count * 99) / 100]};
}

/* One run of `handoffs` hand-offs; the p50 and p99 latencies (ns). */
static percentiles handoff_once(const gil_ops *ops, int handoffs)
{
    handoff_state s = {.ops = ops, .handoffs = handoffs};
    s.latencies_ns = calloc((size_t)handoffs, sizeof *s.latencies_ns);
    if (s.latencies_ns == NULL)
        die("calloc");
    handoff_thread t[2] = {{&s, 0}, {&s, 1}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, handoff_run, &t[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    percentiles p = percentiles_of(s.latencies_ns, handoffs);
    free(s.latencies_ns);
    return p;
}

/* objmem's GIL: both threads attach to one runtime made for the run. */
static om_runtime *handoff_runtime;

static void *om_release(void) { return om_save_thread(); }
static void om_take(void *token) { om_restore_thread(token); }
static void om_begin(void)
{
    if (om_attach(handoff_runtime) != 0)
        die("om_attach");
}
static void om_end(void) { om_detach(); }

static const gil_ops objmem_gil = {om_release, om_take, om_begin, om_end};

#ifdef OM_BENCH_HAVE_PYTHON
static _Thread_local PyGILState_STATE py_gstate;   /* each thread's Ensure */

static void *py_release(void) { return PyEval_SaveThread(); }
static void py_take(void *token) { PyEval_RestoreThread(token); }
static void py_begin(void) { py_gstate = PyGILState_Ensure(); }
static void py_end(void) { PyGILState_Release(py_gstate); }

static const gil_ops cpython_gil = {py_release, py_take, py_begin, py_end};
#endif

/* ---- (ii), (iii) Work: binary trees of a GC type ------------------------ */

typedef struct tree_node {
    OM_OBJECT_HEAD;
    om_object *left;
    om_object *right;
} tree_node;

static const om_type *node_type;

static om_object *tree_make(int depth)
{
    om_object *n = om_new(node_type);
    if (n == NULL)
        die("om_new");
    if (depth > 0) {
        ((tree_node *)n)->left = tree_make(depth - 1);
        ((tree_node *)n)->right = tree_make(depth - 1);
    }
    return n;
}

static long tree_count(om_object *n)
{
    if (n == NULL)
        return 0;
    return 1 + tree_count(((tree_node *)n)->left) + tree_count(((tree_node *)n)->right);
}

static const bench_config *work_config;

/* One work unit on the calling thread (attached, GIL held): `trees`
 * trees built, walked and released; a yield point between trees. */
static long work_unit(void)
{
    long nodes = 0;
    for (int i = 0; i < work_config->trees; i++) {
        om_object *root = tree_make(work_config->depth);
        nodes += tree_count(root);
        om_decref(root);
        om_yield_point();
    }
    return nodes;
}

typedef struct work_thread {
    om_runtime *rt;
    atomic_int *ready;            /* threads attached and waiting to start */
    int team;                     /* threads that start together */
} work_thread;

static void *work_run(void *varg)
{
    work_thread *w = varg;
    if (om_attach(w->rt) != 0)
        die("om_attach");
    /* Start together (the GIL released while waiting for the others). */
    OM_BEGIN_ALLOW_THREADS
    atomic_fetch_add(w->ready, 1);
    while (atomic_load(w->ready) < w->team)
        ;
    OM_END_ALLOW_THREADS
    work_unit();
    om_detach();
    return NULL;
}

/* Seconds for `count` threads each doing one work unit, attached to
 * rts[i] (the same runtime for all, or one each). */
static double time_threads(om_runtime **rts, int count)
{
    atomic_int ready = 0;
    work_thread w[2];
    pthread_t th[2];
    double start = bench_now_seconds();
    for (int i = 0; i < count; i++) {
        w[i] = (work_thread){rts[i], &ready, count};
        pthread_create(&th[i], NULL, work_run, &w[i]);
    }
    for (int i = 0; i < count; i++)
        pthread_join(th[i], NULL);
    return bench_now_seconds() - start;
}

/* Seconds for two processes each doing one work unit on a new runtime. */
static double time_processes(void)
{
    int go[2];
    if (pipe(go) != 0)
        die("pipe");
    pid_t pid[2];
    for (int i = 0; i < 2; i++) {
        pid[i] = fork();
        if (pid[i] < 0)
            die("fork");
        if (pid[i] == 0) {
            close(go[1]);
            om_runtime *rt = om_runtime_new(NULL);
            if (rt == NULL || om_attach(rt) != 0)
                _exit(2);
            char byte;
            if (read(go[0], &byte, 1) != 0)   /* wait for the start (EOF) */
                _exit(2);
            work_unit();
            _exit(0);
        }
    }
    close(go[0]);
    usleep(20000);   /* both children have made their runtime */
    double start = bench_now_seconds();
    close(go[1]);
    for (int i = 0; i < 2; i++) {
        int status;
        waitpid(pid[i], &status, 0);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            die("worker process failed");
    }
    return bench_now_seconds() - start;
}

/* ---- Report ------------------------------------------------------------- */

static void print_machine(void)
{
    char model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "model name", 10) == 0) {
            const char *colon = strchr(line, ':');
            if (colon != NULL) {
                snprintf(model, sizeof model, "%s", colon + 2);
                model[strcspn(model, "\n")] = '\0';
            }
            break;
        }
    }
    if (f != NULL)
        fclose(f);
    printf("machine: %ld CPUs online, %s\n", sysconf(_SC_NPROCESSORS_ONLN), model);
}

static const char *verdict(bool met)
{
    return met ? "met" : "MISSED";
}

/* Prints each run's p99 (sorted), for the spread behind the median. */
static void print_runs(const char *who, const double *p99, int n)
{
    printf("      %-8s p99 of each run, us:", who);
    for (int r = 0; r < n; r++)
        printf(" %.0f", p99[r] / 1e3);
    printf("\n");
}

#ifdef OM_BENCH_HAVE_PYTHON
/* (iii)'s pattern in CPython, for the same moment's load: binary trees of
 * a __slots__ class on one thread, then on two threads at once; prints the
 * median throughput ratio 2·T1/T2 of `runs` runs. */
static const char cpython_convoy[] =
    "import threading, time\n"
    "class Node:\n"
    "    __slots__ = ('left', 'right')\n"
    "    def __init__(self, left, right):\n"
    "        self.left = left\n"
    "        self.right = right\n"
    "def make(d):\n"
    "    return Node(make(d - 1), make(d - 1)) if d else Node(None, None)\n"
    "def count(n):\n"
    "    return 1 + count(n.left) + count(n.right) if n.left else 1\n"
    "def unit():\n"
    "    for _ in range(TREES):\n"
    "        count(make(DEPTH))\n"
    "def timed(k):\n"
    "    ts = [threading.Thread(target=unit) for _ in range(k)]\n"
    "    t = time.perf_counter()\n"
    "    for x in ts: x.start()\n"
    "    for x in ts: x.join()\n"
    "    return time.perf_counter() - t\n"
    "ratios = sorted(2 * timed(1) / timed(2) for _ in range(RUNS))\n"
    "print('(iii) reference: CPython, same pattern (%d trees of depth %d, __slots__ class): "
    "throughput %.2fx one thread' % (TREES, DEPTH, ratios[len(ratios) // 2]), flush=True)\n";

static void cpython_convoy_reference(const bench_config *cfg)
{
    PyGILState_STATE g = PyGILState_Ensure();
    char settings[128];
    int trees = cfg->trees / 4 > 0 ? cfg->trees / 4 : 1;
    snprintf(settings, sizeof settings, "TREES = %d\nDEPTH = %d\nRUNS = %d\n", trees,
             cfg->depth, cfg->repetitions);
    if (PyRun_SimpleString(settings) != 0 || PyRun_SimpleString(cpython_convoy) != 0)
        printf("    CPython reference failed\n");
    PyGILState_Release(g);
}
#endif

/* The runs alternate between the two GILs, so that both see the same
 * moments of a shared machine's load. */
static void bench_handoff(const bench_config *cfg)
{
    int n = cfg->repetitions;
    double om50[MAX_REPETITIONS], om99[MAX_REPETITIONS];
    handoff_runtime = om_runtime_new(NULL);
    if (handoff_runtime == NULL)
        die("om_runtime_new");
#ifdef OM_BENCH_HAVE_PYTHON
    double py50[MAX_REPETITIONS], py99[MAX_REPETITIONS];
    Py_InitializeEx(0);
    PyThreadState *main_state = PyEval_SaveThread();
#endif
    for (int r = 0; r < n; r++) {
        percentiles p = handoff_once(&objmem_gil, cfg->handoffs);
        om50[r] = p.p50;
        om99[r] = p.p99;
#ifdef OM_BENCH_HAVE_PYTHON
        p = handoff_once(&cpython_gil, cfg->handoffs);
        py50[r] = p.p50;
        py99[r] = p.p99;
#endif
    }
    om_runtime_delete(handoff_runtime);
    double o50 = bench_median(om50, n), o99 = bench_median(om99, n);
    printf("(i) hand-off latency, %d hand-offs x %d runs (median of the runs' percentiles)\n",
           cfg->handoffs, n);
    printf("    objmem   p50 %8.1f us   p99 %8.1f us\n", o50 / 1e3, o99 / 1e3);
    print_runs("objmem", om99, n);
#ifdef OM_BENCH_HAVE_PYTHON
    PyEval_RestoreThread(main_state);
    double c50 = bench_median(py50, n), c99 = bench_median(py99, n);
    printf("    CPython  p50 %8.1f us   p99 %8.1f us   (%.6s)\n", c50 / 1e3, c99 / 1e3,
           Py_GetVersion());
    print_runs("CPython", py99, n);
    printf("    ratio objmem/CPython: p50 %.2f, p99 %.2f   target p99 <= CPython's: %s\n",
           o50 / c50, o99 / c99, verdict(o99 <= c99));
    PyThreadState *again = PyEval_SaveThread();
    cpython_convoy_reference(cfg);
    PyEval_RestoreThread(again);
#else
    printf("    CPython  skipped: built without libpython\n");
#endif
}

static void bench_parallel(const bench_config *cfg)
{
    double t1[MAX_REPETITIONS], tthreads[MAX_REPETITIONS], tprocs[MAX_REPETITIONS],
        tshared[MAX_REPETITIONS];
    double ratio_par[MAX_REPETITIONS], ratio_convoy[MAX_REPETITIONS];
    for (int r = 0; r < cfg->repetitions; r++) {
        om_runtime *a = om_runtime_new(NULL), *b = om_runtime_new(NULL);
        if (a == NULL || b == NULL)
            die("om_runtime_new");
        om_runtime *one[2] = {a, a}, *two[2] = {a, b};
        t1[r] = time_threads(one, 1);
        tthreads[r] = time_threads(two, 2);
        tprocs[r] = time_processes();
        tshared[r] = time_threads(one, 2);
        ratio_par[r] = (2 * t1[r] / tthreads[r]) / (2 * t1[r] / tprocs[r]);
        ratio_convoy[r] = 2 * t1[r] / tshared[r];
        om_runtime_delete(a);
        om_runtime_delete(b);
    }
    int n = cfg->repetitions;
    double med_t1 = bench_median(t1, n), med_threads = bench_median(tthreads, n),
           med_procs = bench_median(tprocs, n), med_shared = bench_median(tshared, n);
    double par = bench_median(ratio_par, n), convoy = bench_median(ratio_convoy, n);
    printf("(ii) work unit: %d binary trees of depth %d (GC type, collector on), %d runs\n",
           cfg->trees, cfg->depth, n);
    printf("    one thread                      %7.3f s\n", med_t1);
    printf("    2 runtimes on 2 threads         %7.3f s   speed-up %.2fx\n", med_threads,
           2 * med_t1 / med_threads);
    printf("    2 processes                     %7.3f s   speed-up %.2fx\n", med_procs,
           2 * med_t1 / med_procs);
    printf("    runtimes / processes (median of per-run ratios) %.1f %%   target >= 90 %%: %s\n",
           100 * par, verdict(par >= 0.9));
    printf("(iii) 2 threads on 1 runtime       %7.3f s   throughput %.2fx one thread   "
           "target >= 0.9x: %s\n", med_shared, convoy, verdict(convoy >= 0.9));
}

int main(int argc, char **argv)
{
    bench_config cfg = {
        .repetitions = argc > 1 ? atoi(argv[1]) : 7,
        .depth = argc > 2 ? atoi(argv[2]) : 16,
        .trees = argc > 3 ? atoi(argv[3]) : 40,
        .handoffs = argc > 4 ? atoi(argv[4]) : 2000,
    };
    if (cfg.repetitions < 1 || cfg.repetitions > MAX_REPETITIONS || cfg.depth < 1 ||
        cfg.trees < 1 || cfg.handoffs < 100) {
        fprintf(stderr, "usage: gil_bench [repetitions 1-%d] [depth] [trees] [hand-offs >= 100]\n",
                MAX_REPETITIONS);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    work_config = &cfg;
    static const size_t offsets[] = {offsetof(tree_node, left), offsetof(tree_node, right)};
    om_type_spec spec = {.name = "tree_node", .size = sizeof(tree_node),
                         .object_offsets = offsets, .object_offset_count = 2};
    node_type = om_type_from_spec(&spec);
    if (node_type == NULL)
        die("om_type_from_spec");
    om_detach();   /* the main thread only starts and times threads */
    print_machine();
    bench_parallel(&cfg);
    bench_handoff(&cfg);
    return 0;
}
