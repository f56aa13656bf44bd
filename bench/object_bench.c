/*
 * object_bench.c — objects and reference counting against their peers.
 *
 * Workloads, each timed several times in one run, medians reported:
 *   trees   binary-trees (the Benchmarks Game algorithm) at depth 21: a
 *           stretch tree, a long-lived tree, then many short-lived trees of
 *           depths 4, 6, …, 21, each built, walked and released. Three ways:
 *           objmem objects (a record type from om_type_from_spec, released
 *           by refcount; once with the cycle collector on as shipped and
 *           once with it disabled, which is refcounting alone), plain C
 *           structs with malloc/free (glibc), and the same algorithm in
 *           CPython 3.11 (python3 in a child process, timed inside Python,
 *           gc on as shipped).
 *   chain   a chain of 10M objects, each holding the next, released by
 *           dropping the head: objmem against CPython (a __slots__ class).
 *           Reported per object.
 *   dict    1M str keys: insert into an empty dict, then look each up (the
 *           same key objects, and equal copies whose hash is cached); objmem
 *           against CPython's dict through its C API (libpython embedded in
 *           this process; skipped when the bench is built without it).
 *
 * Ratios are objmem's time over the peer's (below 1 = objmem faster). Build
 * with `make bench` (Release); arguments: [depth] [chain length] [dict keys]
 * [repetitions].
 */
#include <objmem.h>

#include "bench_util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef OM_BENCH_HAVE_PYTHON
#include <Python.h>
#endif

typedef struct bench_config {
    int depth;             /* binary-trees maximum depth */
    size_t chain_length;   /* objects in the chain */
    size_t dict_keys;      /* keys in the dict workload */
    int repetitions;       /* timings per workload; the median is kept */
} bench_config;

static void die(const char *what)
{
    fprintf(stderr, "object_bench: %s: %s\n", what, om_last_error_message());
    exit(1);
}

/* ---- binary-trees, objmem objects ------------------------------------- */

typedef struct om_tree {
    OM_OBJECT_HEAD;
    om_object *left;
    om_object *right;
} om_tree;

static om_type *om_tree_type;

static void om_tree_type_init(void)
{
    static const size_t fields[] = {offsetof(om_tree, left), offsetof(om_tree, right)};
    om_type_spec spec = {.name = "tree", .size = sizeof(om_tree),
                         .object_offsets = fields, .object_offset_count = 2};
    om_tree_type = om_type_from_spec(&spec);
    if (om_tree_type == NULL)
        die("om_type_from_spec");
}

static om_object *om_tree_make(int depth)
{
    om_tree *t = (om_tree *)om_new(om_tree_type);
    if (t == NULL)
        die("om_new");
    if (depth > 0) {
        t->left = om_tree_make(depth - 1);
        t->right = om_tree_make(depth - 1);
    }
    return OM_OBJ(t);
}

static long om_tree_check(const om_object *o)
{
    const om_tree *t = (const om_tree *)o;
    return 1 + (t->left != NULL ? om_tree_check(t->left) + om_tree_check(t->right) : 0);
}

/* ---- binary-trees, malloc/free ------------------------------------------ */

typedef struct c_tree {
    struct c_tree *left;
    struct c_tree *right;
} c_tree;

static c_tree *c_tree_make(int depth)
{
    c_tree *t = malloc(sizeof *t);
    if (t == NULL) {
        perror("malloc");
        exit(1);
    }
    t->left = depth > 0 ? c_tree_make(depth - 1) : NULL;
    t->right = depth > 0 ? c_tree_make(depth - 1) : NULL;
    return t;
}

static long c_tree_check(const c_tree *t)
{
    return 1 + (t->left != NULL ? c_tree_check(t->left) + c_tree_check(t->right) : 0);
}

static void c_tree_free(c_tree *t)
{
    if (t->left != NULL) {
        c_tree_free(t->left);
        c_tree_free(t->right);
    }
    free(t);
}

/* The Benchmarks Game's binary-trees, on one implementation; returns the
 * total of the checks (the same for every implementation). */
#define BINARY_TREES(make, check, release, max_depth, total)                    \
    do {                                                                        \
        __typeof__(make(0)) stretch_ = make((max_depth) + 1);                   \
        (total) += check(stretch_);                                             \
        release(stretch_);                                                      \
        __typeof__(make(0)) long_lived_ = make(max_depth);                      \
        for (int d_ = 4; d_ <= (max_depth); d_ += 2) {                          \
            long iterations_ = 1L << ((max_depth) - d_ + 4);                    \
            for (long i_ = 0; i_ < iterations_; i_++) {                         \
                __typeof__(make(0)) t_ = make(d_);                              \
                (total) += check(t_);                                           \
                release(t_);                                                    \
            }                                                                   \
        }                                                                       \
        (total) += check(long_lived_);                                          \
        release(long_lived_);                                                   \
    } while (0)

static double trees_objmem(int depth, bool collector, long *total)
{
    if (!collector)
        om_gc_disable();
    double t0 = bench_now_seconds();
    BINARY_TREES(om_tree_make, om_tree_check, om_decref, depth, *total);
    double seconds = bench_now_seconds() - t0;
    om_gc_enable();
    return seconds;
}

static double trees_malloc(int depth, long *total)
{
    double t0 = bench_now_seconds();
    BINARY_TREES(c_tree_make, c_tree_check, c_tree_free, depth, *total);
    return bench_now_seconds() - t0;
}

/* ---- CPython in a child process ----------------------------------------- */

static const char python_trees[] =
    "import sys, time\n"
    "class Node:\n"
    "    __slots__ = ('left', 'right')\n"
    "    def __init__(self, left, right):\n"
    "        self.left = left; self.right = right\n"
    "def make(d):\n"
    "    return Node(make(d - 1), make(d - 1)) if d > 0 else Node(None, None)\n"
    "def check(t):\n"
    "    return 1 + (check(t.left) + check(t.right) if t.left is not None else 0)\n"
    "def run(n):\n"
    "    total = 0\n"
    "    s = make(n + 1); total += check(s); del s\n"
    "    ll = make(n)\n"
    "    for d in range(4, n + 1, 2):\n"
    "        for i in range(1 << (n - d + 4)):\n"
    "            t = make(d); total += check(t); del t\n"
    "    total += check(ll)\n"
    "    return total\n"
    "n = int(sys.argv[1])\n"
    "t0 = time.perf_counter(); total = run(n); t1 = time.perf_counter()\n"
    "print(t1 - t0, total)\n";

static const char python_chain[] =
    "import sys, time\n"
    "class Node:\n"
    "    __slots__ = ('next',)\n"
    "    def __init__(self, nxt):\n"
    "        self.next = nxt\n"
    "n = int(sys.argv[1])\n"
    "head = None\n"
    "for i in range(n):\n"
    "    head = Node(head)\n"
    "t0 = time.perf_counter(); del head; t1 = time.perf_counter()\n"
    "print(t1 - t0, n)\n";

/* Runs `script` with python3 and one argument; returns the seconds it
 * printed (and the count after them in *count), or -1 when python3 fails. */
static double run_python(const char *script, long argument, long *count)
{
    char path[] = "/tmp/object_bench_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    FILE *f = fdopen(fd, "w");
    fputs(script, f);
    fclose(f);
    char command[256];
    snprintf(command, sizeof command, "python3 %s %ld", path, argument);
    FILE *p = popen(command, "r");
    double seconds = -1;
    if (p != NULL) {
        if (fscanf(p, "%lf %ld", &seconds, count) != 2)
            seconds = -1;
        if (pclose(p) != 0)
            seconds = -1;
    }
    remove(path);
    return seconds;
}

/* ---- chain --------------------------------------------------------------- */

static double chain_objmem(size_t length)
{
    om_object *head = NULL;
    for (size_t i = 0; i < length; i++) {
        om_tree *t = (om_tree *)om_new(om_tree_type);
        if (t == NULL)
            die("om_new");
        t->right = head;
        head = OM_OBJ(t);
    }
    double t0 = bench_now_seconds();
    om_decref(head);
    return bench_now_seconds() - t0;
}

/* ---- dict of str keys ---------------------------------------------------- */

typedef struct dict_times {
    double insert;        /* ns per key */
    double lookup_same;   /* ns per key, the inserted key objects */
    double lookup_equal;  /* ns per key, equal copies (hash computed beforehand) */
} dict_times;

static void dict_key_text(char *buf, size_t cap, size_t i)
{
    snprintf(buf, cap, "key-%zu", i * 2654435761u % 1000000007u);
}

static om_object **om_make_keys(size_t n)
{
    om_object **keys = malloc(n * sizeof *keys);
    char text[32];
    for (size_t i = 0; keys != NULL && i < n; i++) {
        dict_key_text(text, sizeof text, i);
        keys[i] = om_str_from_cstr(text);
        if (keys[i] == NULL || om_hash(keys[i]) == -1)
            die("om_str_from_cstr");
    }
    return keys;
}

static void om_drop_keys(om_object **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        om_decref(keys[i]);
    free(keys);
}

static double om_dict_lookups(om_object *d, om_object **keys, size_t n)
{
    double t0 = bench_now_seconds();
    for (size_t i = 0; i < n; i++)
        if (om_dict_get(d, keys[i]) == NULL)
            die("om_dict_get");
    return (bench_now_seconds() - t0) * 1e9 / (double)n;
}

static dict_times dict_objmem(size_t n)
{
    om_object **keys = om_make_keys(n), **copies = om_make_keys(n);
    om_object *d = om_dict_new();
    if (keys == NULL || copies == NULL || d == NULL)
        die("dict set-up");
    dict_times t;
    double t0 = bench_now_seconds();
    for (size_t i = 0; i < n; i++)
        if (om_dict_set(d, keys[i], om_none) != 0)
            die("om_dict_set");
    t.insert = (bench_now_seconds() - t0) * 1e9 / (double)n;
    t.lookup_same = om_dict_lookups(d, keys, n);
    t.lookup_equal = om_dict_lookups(d, copies, n);
    om_decref(d);
    om_drop_keys(keys, n);
    om_drop_keys(copies, n);
    return t;
}

#ifdef OM_BENCH_HAVE_PYTHON
static PyObject **py_make_keys(size_t n)
{
    PyObject **keys = malloc(n * sizeof *keys);
    char text[32];
    for (size_t i = 0; keys != NULL && i < n; i++) {
        dict_key_text(text, sizeof text, i);
        keys[i] = PyUnicode_FromString(text);
        if (keys[i] == NULL || PyObject_Hash(keys[i]) == -1) {
            fprintf(stderr, "object_bench: PyUnicode_FromString failed\n");
            exit(1);
        }
    }
    return keys;
}

static void py_drop_keys(PyObject **keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        Py_DECREF(keys[i]);
    free(keys);
}

static double py_dict_lookups(PyObject *d, PyObject **keys, size_t n)
{
    double t0 = bench_now_seconds();
    for (size_t i = 0; i < n; i++)
        if (PyDict_GetItemWithError(d, keys[i]) == NULL) {
            fprintf(stderr, "object_bench: PyDict_GetItem failed\n");
            exit(1);
        }
    return (bench_now_seconds() - t0) * 1e9 / (double)n;
}

static dict_times dict_python(size_t n)
{
    PyObject **keys = py_make_keys(n), **copies = py_make_keys(n);
    PyObject *d = PyDict_New();
    dict_times t;
    double t0 = bench_now_seconds();
    for (size_t i = 0; i < n; i++)
        if (PyDict_SetItem(d, keys[i], Py_None) != 0) {
            fprintf(stderr, "object_bench: PyDict_SetItem failed\n");
            exit(1);
        }
    t.insert = (bench_now_seconds() - t0) * 1e9 / (double)n;
    t.lookup_same = py_dict_lookups(d, keys, n);
    t.lookup_equal = py_dict_lookups(d, copies, n);
    Py_DECREF(d);
    py_drop_keys(keys, n);
    py_drop_keys(copies, n);
    return t;
}
#endif

/* ---- report ----------------------------------------------------------- */

static void print_row(const char *workload, const char *unit, double objmem, const char *peer,
                      double peer_value)
{
    if (peer_value > 0)
        printf("%-28s %10.2f %-5s %-18s %10.2f %-5s %6.2fx\n", workload, objmem, unit, peer,
               peer_value, unit, objmem / peer_value);
    else
        printf("%-28s %10.2f %-5s %-18s %10s\n", workload, objmem, unit, peer, "skipped");
}

static void bench_trees(const bench_config *cfg)
{
    double om[16], rc[16], mc[16], py[16];
    long om_total = 0, rc_total = 0, mc_total = 0, py_total = 0;
    int py_runs = 0;
    for (int r = 0; r < cfg->repetitions; r++) {
        long total = 0;
        om[r] = trees_objmem(cfg->depth, true, &total);
        om_total = total;
        total = 0;
        rc[r] = trees_objmem(cfg->depth, false, &total);
        rc_total = total;
        total = 0;
        mc[r] = trees_malloc(cfg->depth, &total);
        mc_total = total;
        /* CPython needs minutes at depth 21: one run of it. */
        double p = r == 0 ? run_python(python_trees, cfg->depth, &total) : -1;
        if (p > 0) {
            py[py_runs++] = p;
            py_total = total;
        }
    }
    if (om_total != mc_total || rc_total != mc_total || (py_runs > 0 && py_total != om_total)) {
        fprintf(stderr, "object_bench: binary-trees checks differ: %ld %ld %ld\n", om_total,
                mc_total, py_total);
        exit(1);
    }
    double om_s = bench_median(om, cfg->repetitions), rc_s = bench_median(rc, cfg->repetitions);
    double mc_s = bench_median(mc, cfg->repetitions);
    print_row("binary-trees, refcount only", "s", rc_s, "malloc/free", mc_s);
    print_row("binary-trees, collector on", "s", om_s, "malloc/free", mc_s);
    print_row("binary-trees, collector on", "s", om_s, "CPython 3.11", py_runs ? bench_median(py, py_runs) : -1);
    printf("%-28s %9.1f %%\n", "  time in the collector", 100.0 * (om_s - rc_s) / om_s);
}

static void bench_chain(const bench_config *cfg)
{
    double om[16], py[16];
    int py_runs = 0;
    double n = (double)cfg->chain_length;
    for (int r = 0; r < cfg->repetitions; r++) {
        om[r] = chain_objmem(cfg->chain_length) * 1e9 / n;
        long count = 0;
        double p = run_python(python_chain, (long)cfg->chain_length, &count);
        if (p > 0)
            py[py_runs++] = p * 1e9 / n;
    }
    print_row("chain release (ns/object)", "ns", bench_median(om, cfg->repetitions), "CPython 3.11",
              py_runs ? bench_median(py, py_runs) : -1);
}

static void bench_dict(const bench_config *cfg)
{
    double om[3][16], py[3][16];
    for (int r = 0; r < cfg->repetitions; r++) {
        dict_times t = dict_objmem(cfg->dict_keys);
        om[0][r] = t.insert, om[1][r] = t.lookup_same, om[2][r] = t.lookup_equal;
#ifdef OM_BENCH_HAVE_PYTHON
        t = dict_python(cfg->dict_keys);
        py[0][r] = t.insert, py[1][r] = t.lookup_same, py[2][r] = t.lookup_equal;
#else
        py[0][r] = py[1][r] = py[2][r] = -1;
#endif
    }
    static const char *const rows[3] = {"dict insert (ns/key)", "dict lookup, same keys",
                                        "dict lookup, equal keys"};
    for (int i = 0; i < 3; i++)
        print_row(rows[i], "ns", bench_median(om[i], cfg->repetitions), "CPython C API",
                  bench_median(py[i], cfg->repetitions));
}

int main(int argc, char **argv)
{
    bench_config cfg = {.depth = 21, .chain_length = 10000000, .dict_keys = 1000000,
                        .repetitions = 5};
    if (argc > 1)
        cfg.depth = atoi(argv[1]);
    if (argc > 2)
        cfg.chain_length = strtoul(argv[2], NULL, 10);
    if (argc > 3)
        cfg.dict_keys = strtoul(argv[3], NULL, 10);
    if (argc > 4)
        cfg.repetitions = atoi(argv[4]);
    if (cfg.depth < 4 || cfg.depth > 25 || cfg.chain_length == 0 || cfg.dict_keys == 0 ||
        cfg.repetitions < 1 || cfg.repetitions > 16) {
        fprintf(stderr, "usage: object_bench [depth 4-25] [chain length] [dict keys] "
                        "[repetitions 1-16]\n");
        return 2;
    }
    om_tree_type_init();
#ifdef OM_BENCH_HAVE_PYTHON
    Py_InitializeEx(0);
#endif
    printf("objmem %d.%d.%d object_bench: depth %d, chain %zu, dict %zu keys, median of %d\n",
           OM_VERSION_MAJOR, OM_VERSION_MINOR, OM_VERSION_PATCH, cfg.depth, cfg.chain_length,
           cfg.dict_keys, cfg.repetitions);
    printf("%-28s %16s %-18s %16s %7s\n", "workload", "objmem", "peer", "peer", "ratio");
    bench_trees(&cfg);
    bench_chain(&cfg);
    bench_dict(&cfg);
    return 0;
}
