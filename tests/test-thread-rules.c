/*
 * test-thread-rules.c — the debug hooks' runtime rules (issue 7 item 4),
 * as a program built without OM_DEBUG sees them: the checks that run out
 * of line (test-thread-rules-inline.c covers om_incref and om_decref's
 * inline ones).
 *
 * Each misuse runs in a child process (check_run_child) that installs the
 * debug hooks and misbehaves; the parent asserts that the child died of
 * SIGABRT with exactly one "objmem: fatal error: " report naming the call
 * and the rule broken:
 *   - without the GIL (the thread attached, the GIL released with
 *     om_save_thread): om_mem_malloc, om_mem_calloc, om_mem_realloc,
 *     om_mem_free, om_obj_malloc, om_obj_free, om_new (om_dict_new),
 *     om_new_var (om_str_from_cstr), and the release of an object whose
 *     count reaches zero (om_decref);
 *   - a container store across runtimes (an object of runtime A stored in
 *     a container of runtime B): om_list_append, om_list_insert,
 *     om_list_set, om_list_extend, om_dict_set (key and value),
 *     om_tuple_set, om_tuple_pack, and an interned str of A stored in B;
 *   - a release (count to zero) of another runtime's object.
 * And the rules let correct use through, in a child that must exit 0: two
 * runtimes used one after the other with the hooks on, statics (om_none,
 * small ints) stored in either, the RAW domain used without any runtime,
 * and a thread that is not attached yet attached by its first om_mem_malloc.
 * Last, in this process (TSan runs it): two runtimes churn objects on two
 * threads at once with the hooks on (each runtime has its own debug lists
 * and dead-object quarantine, so nothing is shared), then one is deleted
 * while the other's blocks stay checkable by om_heap_check.
 */
#include <pthread.h>
#include <signal.h>
#include <string.h>

#include "check.h"
#include "objmem.h"

/* ---- Harness ------------------------------------------------------------- */

typedef void (*misuse_fn)(void);

typedef struct misuse_case {
    misuse_fn fn;
} misuse_case;

/* Results of calls that must not return (the child dies in them). */
static void *volatile sink;

static void run_misuse(void *arg)
{
    om_setup_debug_hooks();
    ((misuse_case *)arg)->fn();
    _exit(0);   /* no report: the parent sees a clean exit and fails */
}

static size_t count_of(const char *text, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* The child must abort with one report that contains `call` followed by
 * ": " and the phrase. */
static void expect_report(misuse_fn fn, const char *call, const char *phrase)
{
    static char err[8192];
    misuse_case c = {fn};
    int status = check_run_child(run_misuse, &c, err, sizeof err);
    char named[128];
    snprintf(named, sizeof named, "fatal error: %s: ", call);
    int aborted = status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
    bool ok = aborted && count_of(err, "objmem: fatal error: ") == 1 &&
              strstr(err, named) != NULL && strstr(err, phrase) != NULL;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "--- case %s / \"%s\" (status %#x) stderr:\n%s---\n", call, phrase,
                (unsigned)status, err);
}

static const char *const NO_GIL = "does not hold its runtime's GIL";
static const char *const FOREIGN = "belongs to another runtime";

/* ---- Without the GIL ------------------------------------------------------ */

static void mem_malloc_released(void)
{
    om_mem_free(om_mem_malloc(8));   /* attached to the default runtime */
    om_save_thread();
    sink = om_mem_malloc(32);
}

static void mem_calloc_released(void)
{
    om_mem_free(om_mem_malloc(8));
    om_save_thread();
    sink = om_mem_calloc(4, 8);
}

static void mem_realloc_released(void)
{
    void *p = om_mem_malloc(40);
    om_save_thread();
    sink = om_mem_realloc(p, 400);
}

static void mem_free_released(void)
{
    void *p = om_mem_malloc(40);
    om_save_thread();
    om_mem_free(p);
}

static void obj_malloc_released(void)
{
    om_obj_free(om_obj_malloc(8));
    om_save_thread();
    sink = om_obj_malloc(64);
}

static void obj_free_released(void)
{
    void *p = om_obj_malloc(64);
    om_save_thread();
    om_obj_free(p);
}

static void new_released(void)
{
    om_decref(om_dict_new());
    om_save_thread();
    sink = om_dict_new();
}

static void new_var_released(void)
{
    om_decref(om_str_from_cstr("attached"));
    om_save_thread();
    sink = om_str_from_cstr("released");
}

static void release_released(void)
{
    om_object *l = om_list_new(0);
    om_save_thread();
    om_decref(l);   /* count 1 -> 0: the release checks */
}

/* ---- Across runtimes ----------------------------------------------------- */

/* Objects made in runtime `a`; the thread ends attached to a new runtime b,
 * holding its GIL. */
typedef struct two_runtimes {
    om_object *str_a;     /* a str of runtime a */
    om_object *list_a;    /* a list of runtime a */
    om_object *interned_a;
} two_runtimes;

static two_runtimes switch_runtimes(void)
{
    om_runtime *a = om_runtime_new(NULL), *b = om_runtime_new(NULL);
    if (a == NULL || b == NULL || om_attach(a) != 0)
        _exit(3);
    two_runtimes r = {om_str_from_cstr("of a"), om_list_new(0), om_str_intern_cstr("name")};
    om_detach();
    if (om_attach(b) != 0)
        _exit(3);
    return r;
}

static void list_append_foreign(void)
{
    two_runtimes r = switch_runtimes();
    om_list_append(om_list_new(0), r.str_a);
}

static void list_append_into_foreign(void)
{
    two_runtimes r = switch_runtimes();
    om_list_append(r.list_a, om_str_from_cstr("of b"));
}

static void list_insert_foreign(void)
{
    two_runtimes r = switch_runtimes();
    om_list_insert(om_list_new(0), 0, r.str_a);
}

static void list_set_foreign(void)
{
    two_runtimes r = switch_runtimes();
    om_object *l = om_list_new(0);
    om_list_append(l, om_none);
    om_list_set(l, 0, r.str_a);
}

static void list_extend_foreign(void)
{
    two_runtimes r = switch_runtimes();
    om_list_extend(om_list_new(0), r.list_a);
}

static void dict_key_foreign(void)
{
    two_runtimes r = switch_runtimes();
    om_dict_set(om_dict_new(), r.str_a, om_none);
}

static void dict_value_foreign(void)
{
    two_runtimes r = switch_runtimes();
    om_object *key = om_str_from_cstr("k");
    om_dict_set(om_dict_new(), key, r.list_a);
}

static void tuple_set_foreign(void)
{
    two_runtimes r = switch_runtimes();
    om_tuple_set(om_tuple_new(1), 0, r.str_a);
}

static void tuple_pack_foreign(void)
{
    two_runtimes r = switch_runtimes();
    sink = om_tuple_pack(2, om_none, r.str_a);
}

static void interned_foreign(void)
{
    two_runtimes r = switch_runtimes();
    om_list_append(om_list_new(0), r.interned_a);
}

static void release_foreign(void)
{
    two_runtimes r = switch_runtimes();
    om_decref(r.list_a);   /* its last reference, dropped in runtime b */
}

/* ---- Correct use --------------------------------------------------------- */

static void *first_call_attaches(void *arg)
{
    (void)arg;
    void *p = om_mem_malloc(24);   /* not attached yet: the call attaches */
    om_mem_free(p);
    om_detach();
    return NULL;
}

static void use_runtime(om_runtime *rt)
{
    if (om_attach(rt) != 0)
        _exit(3);
    om_object *l = om_list_new(0), *d = om_dict_new();
    om_object *s = om_str_intern_cstr("shared text");
    om_list_append(l, om_none);
    om_list_append(l, om_int_from_i64(7));   /* a small int: static, immortal */
    om_list_append(l, s);
    om_dict_set(d, s, l);
    om_object *t = om_tuple_pack(2, s, l);
    OM_BEGIN_ALLOW_THREADS
    om_raw_free(om_raw_malloc(100));   /* RAW needs no GIL */
    OM_END_ALLOW_THREADS
    om_decref(t);
    om_decref(d);
    om_decref(l);
    om_decref(s);
    om_gc_collect(2);
    om_detach();
}

static void correct_use_child(void *arg)
{
    (void)arg;
    om_setup_debug_hooks();
    om_runtime *a = om_runtime_new(NULL), *b = om_runtime_new(NULL);
    use_runtime(a);
    use_runtime(b);
    use_runtime(om_runtime_default());
    pthread_t t;
    if (pthread_create(&t, NULL, first_call_attaches, NULL) != 0)
        _exit(3);
    pthread_join(t, NULL);
    if (om_runtime_delete(a) != 0 || om_runtime_delete(b) != 0)
        _exit(4);
    om_heap_check();
    _exit(0);
}

static void test_correct_use(void)
{
    static char err[8192];
    int status = check_run_child(correct_use_child, NULL, err, sizeof err);
    bool ok = status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0 &&
              strstr(err, "fatal error") == NULL;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "--- correct use (status %#x) stderr:\n%s---\n", (unsigned)status, err);
}

/* ---- Two runtimes in parallel with the hooks on ----------------------- */

enum { CHURN_ROUNDS = 200, CHURN_WIDTH = 64 };

typedef struct churn_arg {
    om_runtime *rt;
    bool failed;
} churn_arg;

/* Lists of strs and dicts made and dropped: every release goes through
 * the runtime's dead-object quarantine and debug lists. */
static void *churn_thread(void *varg)
{
    churn_arg *a = varg;
    if (om_attach(a->rt) != 0) {
        a->failed = true;
        return NULL;
    }
    for (int round = 0; round < OM_TEST_SCALE(CHURN_ROUNDS); round++) {
        om_object *l = om_list_new(0);
        for (int i = 0; i < CHURN_WIDTH; i++) {
            om_object *s = om_str_from_cstr("churned text");
            om_object *d = om_dict_new();
            a->failed |= s == NULL || d == NULL || om_dict_set(d, s, l) != 0 ||
                         om_list_append(l, d) != 0;
            om_decref(s);
            om_decref(d);
        }
        om_decref(l);   /* a cycle per dict: the collector frees them */
        om_yield_point();
    }
    om_gc_collect(2);
    om_detach();
    return NULL;
}

static void test_parallel_with_hooks(void)
{
    om_setup_debug_hooks();
    om_detach();
    churn_arg args[2];
    pthread_t t[2];
    for (int i = 0; i < 2; i++) {
        args[i] = (churn_arg){om_runtime_new(NULL), false};
        CHECK(args[i].rt != NULL);
        CHECK(pthread_create(&t[i], NULL, churn_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 2; i++) {
        pthread_join(t[i], NULL);
        CHECK(!args[i].failed);
    }
    CHECK(om_runtime_delete(args[0].rt) == 0);
    CHECK(om_attach(args[1].rt) == 0);
    om_object *kept = om_list_new(0);
    CHECK(om_list_append(kept, om_none) == 0);
    CHECK(om_heap_check() == 0);
    om_decref(kept);
    CHECK(om_runtime_delete(args[1].rt) == 0);
}

int main(void)
{
    expect_report(mem_malloc_released, "om_mem_malloc", NO_GIL);
    expect_report(mem_calloc_released, "om_mem_calloc", NO_GIL);
    expect_report(mem_realloc_released, "om_mem_realloc", NO_GIL);
    expect_report(mem_free_released, "om_mem_free", NO_GIL);
    expect_report(obj_malloc_released, "om_obj_malloc", NO_GIL);
    expect_report(obj_free_released, "om_obj_free", NO_GIL);
    expect_report(new_released, "om_new", NO_GIL);
    expect_report(new_var_released, "om_new_var", NO_GIL);
    expect_report(release_released, "om_decref", NO_GIL);
    expect_report(mem_malloc_released, "om_mem_malloc", "released the GIL (om_save_thread)");

    expect_report(list_append_foreign, "om_list_append", FOREIGN);
    expect_report(list_append_foreign, "om_list_append", "the object stored, a 'str' object");
    expect_report(list_append_into_foreign, "om_list_append", "the container, a 'list' object");
    expect_report(list_insert_foreign, "om_list_insert", FOREIGN);
    expect_report(list_set_foreign, "om_list_set", FOREIGN);
    expect_report(list_extend_foreign, "om_list_extend", FOREIGN);
    expect_report(dict_key_foreign, "om_dict_set", FOREIGN);
    expect_report(dict_value_foreign, "om_dict_set", FOREIGN);
    expect_report(tuple_set_foreign, "om_tuple_set", FOREIGN);
    expect_report(tuple_pack_foreign, "om_tuple_pack", FOREIGN);
    expect_report(interned_foreign, "om_list_append", FOREIGN);
    expect_report(release_foreign, "om_decref", FOREIGN);

    test_correct_use();
    test_parallel_with_hooks();
    return check_report();
}
