/*
 * gc_bench.c — the cycle collector against CPython 3.11's (issue 6's targets).
 *
 * Rows (the same graph shapes on both sides; objmem nodes are spec-type
 * records with two object fields, CPython's are instances of a class with
 * __slots__ = ('a', 'b'), both tracked by their collector):
 *
 *   (a) full collection, per live tracked object: N nodes held by lists of
 *       1000, field a of node i pointing to node i+1 ("seq") or to a random
 *       node ("rand"); om_gc_collect(2) vs gc.collect(), nothing to free.
 *   (b) cycle reclaim, per freed object: N/2 two-cycles made with the
 *       collector off, dropped, then one full collection frees them.
 *   (c) binary trees (benchmarks game, max depth D, no cycles at all) with
 *       automatic collection on, default thresholds: share of the run spent
 *       in collections (gc callbacks' start/stop on both sides).
 *   (d) pauses on a big heap: N/2 live two-cycles held in lists of 1000,
 *       then R rounds that each replace a random pair by a new one (the old
 *       one becomes cyclic garbage); the longest round is the longest pause
 *       the program sees. objmem default, objmem incremental (budget B µs),
 *       CPython. Also the objects alive at the end against the live ones,
 *       and for objmem the longest collector time in one round in thread
 *       CPU time (gc callbacks): on a shared machine a round's wall time
 *       also counts the time the process waited for a CPU.
 *
 * CPython runs in a python3 child process (the script is in this file), so
 * that the two heaps never share a process; each figure is the median of
 * the repetitions. Usage:
 *   gc_bench [--n N] [--depth D] [--rounds R] [--reps K] [--budget-us B]
 *            [--rows abcd] [--python PATH]
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "objmem.h"

#include "bench_util.h"

#define SEED 0x9E3779B97F4A7C15ULL
#define CHUNK 1000

typedef struct options {
    size_t n;           /* objects for rows (a), (b), (d) */
    int depth;          /* binary-trees max depth */
    size_t rounds;      /* row (d) replacements */
    int reps;           /* repetitions (medians) */
    long budget_us;     /* incremental budget for row (d) */
    const char *rows;   /* which rows */
    const char *python; /* interpreter */
} options;

/* ---- Helpers ------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static void die(const char *what)
{
    fprintf(stderr, "gc_bench: %s failed: %s\n", what, om_last_error_message());
    exit(1);
}

/* ---- objmem side ---------------------------------------------------------------- */

typedef struct node {
    OM_OBJECT_HEAD;
    om_object *a;
    om_object *b;
} node;

static om_type *node_type;

static node *new_node(void)
{
    node *x = (node *)om_new(node_type);
    if (x == NULL)
        die("om_new");
    return x;
}

/* Stores a new reference to v in *slot. */
static void store(om_object **slot, node *v)
{
    om_incref(OM_OBJ(v));
    OM_SETREF(*slot, OM_OBJ(v));
}

/* N nodes in lists of CHUNK held by one outer list; field a to the next
 * node or a random one. Returns the outer list. */
static om_object *build_heap(size_t n, bool random_refs)
{
    node **all = malloc(n * sizeof *all);
    om_object *outer = om_list_new(0), *chunk = NULL;
    for (size_t i = 0; i < n; i++) {
        if (i % CHUNK == 0) {
            om_xdecref(chunk);
            chunk = om_list_new(0);
            if (chunk == NULL || om_list_append(outer, chunk) != 0)
                die("list");
        }
        all[i] = new_node();
        if (om_list_append(chunk, OM_OBJ(all[i])) != 0)
            die("om_list_append");
        om_decref(OM_OBJ(all[i]));
    }
    om_xdecref(chunk);
    uint64_t rng = SEED;
    for (size_t i = 0; i < n; i++)
        store(&all[i]->a, all[random_refs ? rng_next(&rng) % n : (i + 1) % n]);
    free(all);
    return outer;
}

static double om_row_a(size_t n, bool random_refs, int reps)
{
    om_gc_disable();
    om_object *heap = build_heap(n, random_refs);
    om_gc_collect(2);
    double t[64];
    for (int r = 0; r < reps; r++) {
        uint64_t s = now_ns();
        om_gc_collect(2);
        t[r] = (double)(now_ns() - s) / (double)n;
    }
    om_decref(heap);
    om_gc_collect(2);
    om_gc_enable();
    return bench_median(t, reps);
}

static double om_row_b(size_t n, int reps)
{
    double t[64];
    om_gc_disable();
    for (int r = 0; r < reps; r++) {
        for (size_t i = 0; i < n / 2; i++) {
            node *x = new_node(), *y = new_node();
            store(&x->a, y);
            store(&y->a, x);
            om_decref(OM_OBJ(x));
            om_decref(OM_OBJ(y));
        }
        uint64_t s = now_ns();
        long freed = om_gc_collect(2);
        t[r] = (double)(now_ns() - s) / (double)freed;
    }
    om_gc_enable();
    return bench_median(t, reps);
}

/* Binary trees with automatic collection; time in collections by callbacks. */
typedef struct gc_clock {
    uint64_t started;
    uint64_t total_ns;
    uint64_t longest_ns;
    size_t collections;
} gc_clock;

static void clock_cb(om_gc_phase phase, const om_gc_info *info, void *user)
{
    (void)info;
    gc_clock *c = user;
    uint64_t t = now_ns();
    if (phase == OM_GC_PHASE_START) {
        c->started = t;
        return;
    }
    c->total_ns += t - c->started;
    c->longest_ns = t - c->started > c->longest_ns ? t - c->started : c->longest_ns;
    c->collections++;
}

static node *bottom_up(int depth)
{
    node *x = new_node();
    if (depth > 0) {
        node *l = bottom_up(depth - 1), *r = bottom_up(depth - 1);
        x->a = OM_OBJ(l);
        x->b = OM_OBJ(r);
    }
    return x;
}

static long check_tree(const node *x)
{
    return x->a == NULL ? 1 : 1 + check_tree((node *)x->a) + check_tree((node *)x->b);
}

static long binary_trees(int max_depth)
{
    long sum = 0;
    node *stretch = bottom_up(max_depth + 1);
    sum += check_tree(stretch);
    om_decref(OM_OBJ(stretch));
    node *long_lived = bottom_up(max_depth);
    for (int d = 4; d <= max_depth; d += 2) {
        long iterations = 1L << (max_depth - d + 4);
        for (long i = 0; i < iterations; i++) {
            node *t = bottom_up(d);
            sum += check_tree(t);
            om_decref(OM_OBJ(t));
        }
    }
    sum += check_tree(long_lived);
    om_decref(OM_OBJ(long_lived));
    return sum;
}

static void om_row_c(int depth, int reps, double *share, double *seconds, double *full)
{
    double s[64], w[64], f[64];
    for (int r = 0; r < reps; r++) {
        gc_clock c = {0};
        om_gc_stats before[3], after[3];
        om_gc_get_stats(before);
        om_gc_callback_add(clock_cb, &c);
        uint64_t t0 = now_ns();
        volatile long sum = binary_trees(depth);
        (void)sum;
        uint64_t total = now_ns() - t0;
        om_gc_callback_remove(clock_cb, &c);
        om_gc_get_stats(after);
        s[r] = 100.0 * (double)c.total_ns / (double)total;
        w[r] = (double)total / 1e9;
        f[r] = (double)(after[2].collections - before[2].collections);
    }
    *share = bench_median(s, reps);
    *seconds = bench_median(w, reps);
    *full = bench_median(f, reps);
}

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Row (d)'s collector time in the current round, thread CPU time. */
typedef struct round_clock {
    uint64_t started;       /* at the last START */
    uint64_t in_round;      /* collector CPU time since the round began */
} round_clock;

static void round_cb(om_gc_phase phase, const om_gc_info *info, void *user)
{
    (void)info;
    round_clock *c = user;
    if (phase == OM_GC_PHASE_START)
        c->started = cpu_ns();
    else
        c->in_round += cpu_ns() - c->started;
}

/* Row (d): longest round of the churn on a big heap. */
static void om_row_d(size_t n, size_t rounds, long budget_us, double *longest_ms,
                     double *mean_us, double *garbage_ratio, double *longest_cpu_ms)
{
    om_option_set(OM_OPTION_GC_INCREMENTAL_BUDGET_US, budget_us);
    size_t pairs = n / 2;
    om_object **chunks = malloc((pairs / CHUNK + 1) * sizeof *chunks);
    size_t nchunks = 0;
    for (size_t i = 0; i < pairs; i++) {
        if (i % CHUNK == 0)
            chunks[nchunks++] = om_list_new(0);
        node *x = new_node(), *y = new_node();
        store(&x->a, y);
        store(&y->a, x);
        om_decref(OM_OBJ(y));
        if (om_list_append(chunks[nchunks - 1], OM_OBJ(x)) != 0)
            die("om_list_append");
        om_decref(OM_OBJ(x));
    }
    om_gc_collect(2);
    round_clock rc = {0, 0};
    uint64_t longest_cpu = 0;
    om_gc_callback_add(round_cb, &rc);
    uint64_t rng = SEED, longest = 0, t_all = now_ns();
    for (size_t r = 0; r < rounds; r++) {
        uint64_t t = now_ns();
        size_t j = rng_next(&rng) % pairs;
        node *x = new_node(), *y = new_node();
        store(&x->a, y);
        store(&y->a, x);
        om_decref(OM_OBJ(y));
        if (om_list_set(chunks[j / CHUNK], (ptrdiff_t)(j % CHUNK), OM_OBJ(x)) != 0)
            die("om_list_set");
        om_decref(OM_OBJ(x));
        t = now_ns() - t;
        longest = t > longest ? t : longest;
        longest_cpu = rc.in_round > longest_cpu ? rc.in_round : longest_cpu;
        rc.in_round = 0;
    }
    t_all = now_ns() - t_all;
    om_gc_callback_remove(round_cb, &rc);
    *longest_cpu_ms = (double)longest_cpu / 1e6;
    om_object *all = om_gc_get_objects(-1);
    *garbage_ratio = (double)om_list_size(all) / (double)(2 * pairs + nchunks);
    om_decref(all);
    *longest_ms = (double)longest / 1e6;
    *mean_us = (double)t_all / (double)rounds / 1e3;
    for (size_t i = 0; i < nchunks; i++)
        om_decref(chunks[i]);
    free(chunks);
    om_option_set(OM_OPTION_GC_INCREMENTAL_BUDGET_US, 0);
    om_gc_collect(2);
}

/* ---- CPython side (child process) ------------------------------------------------- */

static const char python_script[] =
    "import gc, sys, time, random\n"
    "class Node:\n"
    "    __slots__ = ('a', 'b')\n"
    "    def __init__(self):\n"
    "        self.a = None; self.b = None\n"
    "def med(v):\n"
    "    v = sorted(v); n = len(v)\n"
    "    return v[n//2] if n % 2 else (v[n//2-1] + v[n//2]) / 2\n"
    "def row_a(n, rand, reps):\n"
    "    gc.disable()\n"
    "    nodes = [Node() for _ in range(n)]\n"
    "    outer = [nodes[i:i+1000] for i in range(0, n, 1000)]\n"
    "    rng = random.Random(1)\n"
    "    for i in range(n):\n"
    "        nodes[i].a = nodes[rng.randrange(n)] if rand else nodes[(i+1) % n]\n"
    "    del nodes\n"
    "    gc.collect()\n"
    "    t = []\n"
    "    for _ in range(reps):\n"
    "        s = time.perf_counter_ns(); gc.collect(); t.append((time.perf_counter_ns()-s)/n)\n"
    "    del outer; gc.collect(); gc.enable()\n"
    "    return med(t)\n"
    "def row_b(n, reps):\n"
    "    gc.disable(); t = []\n"
    "    for _ in range(reps):\n"
    "        for i in range(n // 2):\n"
    "            x = Node(); y = Node(); x.a = y; y.a = x\n"
    "        del x, y\n"
    "        s = time.perf_counter_ns(); f = gc.collect(); t.append((time.perf_counter_ns()-s)/f)\n"
    "    gc.enable()\n"
    "    return med(t)\n"
    "def bottom_up(d):\n"
    "    x = Node()\n"
    "    if d > 0:\n"
    "        x.a = bottom_up(d-1); x.b = bottom_up(d-1)\n"
    "    return x\n"
    "def check(x):\n"
    "    return 1 if x.a is None else 1 + check(x.a) + check(x.b)\n"
    "def trees(m):\n"
    "    s = check(bottom_up(m+1))\n"
    "    ll = bottom_up(m)\n"
    "    for d in range(4, m+1, 2):\n"
    "        for i in range(1 << (m-d+4)):\n"
    "            s += check(bottom_up(d))\n"
    "    return s + check(ll)\n"
    "def row_c(m, reps):\n"
    "    sh = []; w = []; fu = []\n"
    "    for _ in range(reps):\n"
    "        st = {'t': 0, 's': 0}\n"
    "        def cb(phase, info):\n"
    "            if phase == 'start': st['s'] = time.perf_counter_ns()\n"
    "            else: st['t'] += time.perf_counter_ns() - st['s']\n"
    "        f0 = gc.get_stats()[2]['collections']\n"
    "        gc.callbacks.append(cb)\n"
    "        t0 = time.perf_counter_ns(); trees(m); tot = time.perf_counter_ns() - t0\n"
    "        gc.callbacks.remove(cb)\n"
    "        sh.append(100.0 * st['t'] / tot); w.append(tot / 1e9)\n"
    "        fu.append(gc.get_stats()[2]['collections'] - f0)\n"
    "    return med(sh), med(w), med(fu)\n"
    "def row_d(n, rounds):\n"
    "    pairs = n // 2; chunks = []\n"
    "    for i in range(pairs):\n"
    "        if i % 1000 == 0: chunks.append([])\n"
    "        x = Node(); y = Node(); x.a = y; y.a = x; chunks[-1].append(x)\n"
    "    del x, y\n"
    "    gc.collect()\n"
    "    rng = random.Random(1); longest = 0; pc = time.perf_counter_ns\n"
    "    t_all = pc()\n"
    "    for r in range(rounds):\n"
    "        t = pc()\n"
    "        j = rng.randrange(pairs)\n"
    "        x = Node(); y = Node(); x.a = y; y.a = x\n"
    "        chunks[j // 1000][j % 1000] = x\n"
    "        t = pc() - t\n"
    "        if t > longest: longest = t\n"
    "    t_all = pc() - t_all\n"
    "    ratio = len(gc.get_objects()) / (2 * pairs + len(chunks))\n"
    "    return longest / 1e6, t_all / rounds / 1e3, ratio\n"
    "sys.setrecursionlimit(10000)\n"
    "row = sys.argv[1]; a = [int(x) for x in sys.argv[2:]]\n"
    "if row == 'a': print(row_a(a[0], a[1], a[2]))\n"
    "elif row == 'b': print(row_b(a[0], a[1]))\n"
    "elif row == 'c': print(*row_c(a[0], a[1]))\n"
    "elif row == 'd': print(*row_d(a[0], a[1]))\n";

/* Runs the script for one row; reads up to 3 numbers. false if Python
 * could not run. */
static bool python_row(const options *o, const char *args, double out[3])
{
    static char path[64];
    if (path[0] == '\0') {
        snprintf(path, sizeof path, "/tmp/gc_bench_%d.py", (int)getpid());
        FILE *f = fopen(path, "w");
        if (f == NULL || fputs(python_script, f) < 0 || fclose(f) != 0)
            return false;
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "%s %s %s", o->python, path, args);
    FILE *p = popen(cmd, "r");
    if (p == NULL)
        return false;
    int got = fscanf(p, "%lf %lf %lf", &out[0], &out[1], &out[2]);
    int status = pclose(p);
    return got >= 1 && status == 0;
}

/* ---- Report ----------------------------------------------------------------------- */

static void row_a(const options *o)
{
    printf("\n(a) full collection, ns per live tracked object (N = %zu, median of %d)\n", o->n,
           o->reps);
    printf("    %-6s %10s %10s %8s\n", "refs", "objmem", "CPython", "ratio");
    for (int rand = 0; rand <= 1; rand++) {
        double om = om_row_a(o->n, rand, o->reps), py[3] = {0};
        char args[64];
        snprintf(args, sizeof args, "a %zu %d %d", o->n, rand, o->reps);
        bool have = python_row(o, args, py);
        printf("    %-6s %10.1f %10.1f %8.2f\n", rand ? "rand" : "seq", om, have ? py[0] : 0.0,
               have ? om / py[0] : 0.0);
    }
}

static void row_b(const options *o)
{
    printf("\n(b) cycle reclaim, ns per freed object (N/2 = %zu two-cycles, median of %d)\n",
           o->n / 2, o->reps);
    double om = om_row_b(o->n, o->reps), py[3] = {0};
    char args[64];
    snprintf(args, sizeof args, "b %zu %d", o->n, o->reps);
    bool have = python_row(o, args, py);
    printf("    %10s %10s %8s\n    %10.1f %10.1f %8.2f\n", "objmem", "CPython", "ratio", om,
           have ? py[0] : 0.0, have ? om / py[0] : 0.0);
}

static void row_c(const options *o)
{
    printf("\n(c) binary trees depth %d, automatic collection: share of time in the collector "
           "(median of %d)\n", o->depth, o->reps);
    double share, secs, full, py[3] = {0};
    om_row_c(o->depth, o->reps, &share, &secs, &full);
    char args[64];
    snprintf(args, sizeof args, "c %d %d", o->depth, o->reps);
    bool have = python_row(o, args, py);
    printf("    %-8s %10s %10s %14s\n", "", "in gc %", "run s", "full colls");
    printf("    %-8s %10.2f %10.3f %14.0f\n", "objmem", share, secs, full);
    if (have)
        printf("    %-8s %10.2f %10.3f %14.0f\n", "CPython", py[0], py[1], py[2]);
}

static void row_d(const options *o)
{
    printf("\n(d) churn on a heap of %zu tracked objects (%zu live two-cycles), %zu rounds "
           "each replacing one: longest round = longest pause\n", o->n, o->n / 2, o->rounds);
    printf("    %-22s %12s %14s %16s %16s\n", "", "longest ms", "mean us/round",
           "tracked / live", "gc cpu ms/round");
    double l, m, g, c, py[3] = {0};
    om_row_d(o->n, o->rounds, 0, &l, &m, &g, &c);
    printf("    %-22s %12.2f %14.3f %16.2f %16.2f\n", "objmem default", l, m, g, c);
    om_row_d(o->n, o->rounds, o->budget_us, &l, &m, &g, &c);
    char label[64];
    snprintf(label, sizeof label, "objmem incr %ld us", o->budget_us);
    printf("    %-22s %12.2f %14.3f %16.2f %16.2f\n", label, l, m, g, c);
    om_gc_incremental_stats is;
    om_gc_get_incremental_stats(&is);
    printf("    (incremental: %zu steps, %zu sweeps, %zu fallbacks, longest step %.2f ms, "
           "step limit %zu objects)\n", is.steps, is.sweeps, is.fallbacks,
           is.max_step_seconds * 1e3, is.step_object_limit);
    char args[64];
    snprintf(args, sizeof args, "d %zu %zu", o->n, o->rounds);
    if (python_row(o, args, py))
        printf("    %-22s %12.2f %14.3f %16.2f\n", "CPython", py[0], py[1], py[2]);
}

static void usage(void)
{
    fprintf(stderr, "usage: gc_bench [--n N] [--depth D] [--rounds R] [--reps K] "
                    "[--budget-us B] [--rows abcd] [--python PATH]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    options o = {1000000, 18, 2000000, 5, 1000, "abcd", "python3"};
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (strcmp(argv[i - 1], "--n") == 0)
            o.n = strtoull(v, NULL, 10);
        else if (strcmp(argv[i - 1], "--depth") == 0)
            o.depth = atoi(v);
        else if (strcmp(argv[i - 1], "--rounds") == 0)
            o.rounds = strtoull(v, NULL, 10);
        else if (strcmp(argv[i - 1], "--reps") == 0)
            o.reps = atoi(v);
        else if (strcmp(argv[i - 1], "--budget-us") == 0)
            o.budget_us = atol(v);
        else if (strcmp(argv[i - 1], "--rows") == 0)
            o.rows = v;
        else if (strcmp(argv[i - 1], "--python") == 0)
            o.python = v;
        else
            usage();
    }
    if (o.n < 2 * CHUNK || o.reps < 1 || o.reps > 64 || o.depth < 4 || o.depth > 26)
        usage();
    static const size_t fields[] = {offsetof(node, a), offsetof(node, b)};
    om_type_spec spec = {.name = "node", .size = sizeof(node), .object_offsets = fields,
                         .object_offset_count = 2};
    node_type = om_type_from_spec(&spec);
    if (node_type == NULL)
        die("om_type_from_spec");
    printf("gc_bench: objmem %d.%d.%d vs %s (child process); N = %zu\n", OM_VERSION_MAJOR,
           OM_VERSION_MINOR, OM_VERSION_PATCH, o.python, o.n);
    if (strchr(o.rows, 'a'))
        row_a(&o);
    if (strchr(o.rows, 'b'))
        row_b(&o);
    if (strchr(o.rows, 'c'))
        row_c(&o);
    if (strchr(o.rows, 'd'))
        row_d(&o);
    char path[64];
    snprintf(path, sizeof path, "/tmp/gc_bench_%d.py", (int)getpid());
    unlink(path);
    om_type_delete(node_type);
    return 0;
}
