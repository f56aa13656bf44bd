/*
 * tiny_interpreter.c — objmem embedded in a (very) small interpreter, the
 * program docs/guide-embedding.md walks through.
 *
 *   - Values are objmem objects: ints and strs are built-ins; a function is
 *     a type of the interpreter's own, made from a spec, that keeps its
 *     globals (so "def" makes a cycle: globals -> function -> globals).
 *   - Each interpreter owns a runtime: its heap, collector and GIL. Two
 *     interpreters run on two threads at once; deleting a runtime frees
 *     whatever its interpreter left behind, cycles included.
 *   - The eval loop offers the GIL to other threads of its runtime every
 *     so many instructions (om_yield_point) and gives it up around a
 *     blocking call (OM_BEGIN_ALLOW_THREADS).
 *   - A failing objmem call becomes the interpreter's exception, from
 *     om_last_error() and om_last_error_message().
 * Build:
 *   cc tiny_interpreter.c $(pkg-config --cflags --libs objmem) -pthread
 */
#define _POSIX_C_SOURCE 200809L     /* nanosleep under -std=c11 */
#include <objmem.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

/* ---- Values -------------------------------------------------------------- */

/* A function value: its name and the globals it runs in. */
typedef struct function {
    OM_OBJECT_HEAD;
    om_object *name;            /* str */
    om_object *globals;         /* dict: the cycle the collector breaks */
    long entry;                 /* where its code starts (unused by this toy) */
} function;

/* ---- Code ------------------------------------------------------------------ */

typedef enum opcode { PUSH_INT, PUSH_STR, LOAD, STORE, ADD, JUMP_IF_LESS, DEF, SLEEP_MS, HALT } opcode;

typedef struct instr {
    opcode op;
    long arg;                   /* PUSH_INT value, JUMP target, SLEEP_MS ms */
    const char *name;           /* LOAD/STORE/DEF variable, PUSH_STR text */
} instr;

/* total = 0; i = 0; do { total = total + i; i = i + 1 } while (i < 100000);
 * def report; sleep 2 ms; halt */
static const instr sum_program[] = {
    {PUSH_INT, 0, NULL}, {STORE, 0, "total"},
    {PUSH_INT, 0, NULL}, {STORE, 0, "i"},
    {LOAD, 0, "total"}, {LOAD, 0, "i"}, {ADD, 0, NULL}, {STORE, 0, "total"},      /* 4 */
    {LOAD, 0, "i"}, {PUSH_INT, 1, NULL}, {ADD, 0, NULL}, {STORE, 0, "i"},
    {LOAD, 0, "i"}, {PUSH_INT, 100000, NULL}, {JUMP_IF_LESS, 4, NULL},
    {DEF, 0, "report"},
    {SLEEP_MS, 2, NULL},
    {HALT, 0, NULL},
};

/* 1 + "one": the interpreter's TypeError. */
static const instr bad_program[] = {
    {PUSH_INT, 1, NULL}, {PUSH_STR, 0, "one"}, {ADD, 0, NULL}, {HALT, 0, NULL},
};

/* ---- The interpreter ----------------------------------------------------- */

enum { STACK_MAX = 16, YIELD_EVERY = 100 };

typedef struct interp {
    om_runtime *runtime;        /* owns every object below */
    om_type *function_type;     /* RAW memory, no objects: could be shared by all */
    om_object *globals;         /* dict: name (str) -> value */
    om_object *stack[STACK_MAX];
    int depth;
    long steps;                 /* instructions run */
    long collections;           /* finished collections, counted by the gc callback */
    char error[160];            /* the exception that stopped the program, or "" */
} interp;

static void on_gc(om_gc_phase phase, const om_gc_info *info, void *user)
{
    (void)info;
    if (phase == OM_GC_PHASE_STOP)
        ((interp *)user)->collections++;
}

static int interp_delete(interp *it);

/* A new interpreter with a runtime of its own, attached to the calling
 * thread (which then holds its GIL); NULL on failure, nothing left over. */
static interp *interp_new(interp *it)
{
    static const size_t function_objects[] = {offsetof(function, name),
                                              offsetof(function, globals)};
    *it = (interp){.runtime = om_runtime_new(NULL)};
    if (it->runtime == NULL || om_attach(it->runtime) != 0) {
        om_runtime_delete(it->runtime);
        return NULL;
    }
    om_type_spec spec = {.name = "function", .size = sizeof(function),
                         .object_offsets = function_objects, .object_offset_count = 2};
    it->function_type = om_type_from_spec(&spec);
    it->globals = om_dict_new();
    if (it->function_type == NULL || it->globals == NULL ||
        om_gc_callback_add(on_gc, it) != 0) {  /* this runtime's collector */
        interp_delete(it);
        return NULL;
    }
    return it;
}

/* Ends the interpreter: the runtime's deletion frees every object left,
 * the globals <-> function cycles included, then the type can go. */
static int interp_delete(interp *it)
{
    for (int i = 0; i < it->depth; i++)
        om_decref(it->stack[i]);
    om_xdecref(it->globals);
    int rc = om_runtime_delete(it->runtime);   /* detaches the caller too */
    om_type_delete(it->function_type);
    return rc;
}

/* Records the pending objmem error as the interpreter's exception. */
static int raise_from_objmem(interp *it, const char *op)
{
    static const char *const names[] = {"Error", "MemoryError", "SystemError", "TypeError",
                                        "IndexError", "KeyError", "OverflowError", "ValueError"};
    om_error code = om_last_error();
    snprintf(it->error, sizeof it->error, "%s in %s: %s",
             (unsigned)code < sizeof names / sizeof names[0] ? names[code] : "Error", op,
             om_last_error_message());
    return -1;
}

static int push(interp *it, om_object *v)      /* steals v */
{
    if (v == NULL)
        return raise_from_objmem(it, "push");
    if (it->depth == STACK_MAX) {
        om_decref(v);
        snprintf(it->error, sizeof it->error, "stack overflow");
        return -1;
    }
    it->stack[it->depth++] = v;
    return 0;
}

static om_object *pop(interp *it)           /* new reference to the caller */
{
    return it->stack[--it->depth];
}

/* Variable names are interned: one canonical str per text and runtime, so
 * a lookup matches the dict's key by pointer. */
static int store(interp *it, const char *name, om_object *v)   /* steals v */
{
    om_object *key = om_str_intern_cstr(name);
    int rc = key != NULL ? om_dict_set(it->globals, key, v) : -1;
    om_xdecref(key);
    om_decref(v);
    return rc == 0 ? 0 : raise_from_objmem(it, "store");
}

static int load(interp *it, const char *name)
{
    om_object *key = om_str_intern_cstr(name);
    om_object *v = key != NULL ? om_dict_get(it->globals, key) : NULL;   /* borrowed */
    om_xdecref(key);
    if (v == NULL)
        return raise_from_objmem(it, "load");
    om_incref(v);
    return push(it, v);
}

static int define(interp *it, const char *name)
{
    function *f = (function *)om_new(it->function_type);
    if (f == NULL)
        return raise_from_objmem(it, "def");
    f->name = om_str_from_cstr(name);
    f->globals = it->globals;
    om_incref(it->globals);
    if (f->name == NULL) {
        om_decref(OM_OBJ(f));
        return raise_from_objmem(it, "def");
    }
    return store(it, name, OM_OBJ(f));
}

static int binary_add(interp *it)
{
    om_object *b = pop(it), *a = pop(it);
    om_object *sum = om_int_add(a, b);
    om_decref(a);
    om_decref(b);
    return sum != NULL ? push(it, sum) : raise_from_objmem(it, "add");
}

static int jump_if_less(interp *it, long *pc, long target)
{
    om_object *b = pop(it), *a = pop(it);
    int order = 0;
    int rc = om_compare(a, b, &order);
    om_decref(a);
    om_decref(b);
    if (rc != 0)
        return raise_from_objmem(it, "compare");
    if (order < 0)
        *pc = target - 1;
    return 0;
}

/* Runs code until HALT or an exception: 0, or -1 with it->error set. */
static int run(interp *it, const instr *code)
{
    int rc = 0;
    for (long pc = 0; rc == 0 && code[pc].op != HALT; pc++, it->steps++) {
        if (it->steps % YIELD_EVERY == 0)
            om_yield_point();       /* let the runtime's other threads in */
        const instr *in = &code[pc];
        switch (in->op) {
        case PUSH_INT:     rc = push(it, om_int_from_i64(in->arg)); break;
        case PUSH_STR:     rc = push(it, om_str_from_cstr(in->name)); break;
        case LOAD:         rc = load(it, in->name); break;
        case STORE:        rc = store(it, in->name, pop(it)); break;
        case ADD:          rc = binary_add(it); break;
        case JUMP_IF_LESS: rc = jump_if_less(it, &pc, in->arg); break;
        case DEF:          rc = define(it, in->name); break;
        case SLEEP_MS:
            OM_BEGIN_ALLOW_THREADS  /* blocking: no object may be touched in here */
            nanosleep(&(struct timespec){.tv_nsec = in->arg * 1000000L}, NULL);
            OM_END_ALLOW_THREADS
            break;
        case HALT:         break;
        }
    }
    return rc;
}

/* ---- Two interpreters on two threads --------------------------------------- */

typedef struct job {
    const instr *code;
    int64_t total;              /* the program's "total" at the end, or -1 */
    long steps, collections;
    char error[160];
    int failed;                 /* the interpreter itself could not be made or deleted */
} job;

static void *interpreter_thread(void *arg)
{
    job *j = arg;
    interp it;
    if (interp_new(&it) == NULL) {
        j->failed = 1;
        return NULL;
    }
    j->total = -1;
    if (run(&it, j->code) == 0) {
        om_object *key = om_str_intern_cstr("total");
        om_object *v = key != NULL ? om_dict_get(it.globals, key) : NULL;
        if (v == NULL || om_int_as_i64(v, &j->total) != 0)
            j->total = -1;
        om_xdecref(key);
    }
    snprintf(j->error, sizeof j->error, "%s", it.error);
    j->steps = it.steps;
    if (interp_delete(&it) != 0)
        j->failed = 1;
    j->collections = it.collections;    /* the deletion's collections included */
    return NULL;
}

int main(void)
{
    job jobs[3] = {{.code = sum_program}, {.code = sum_program}, {.code = bad_program}};
    pthread_t threads[3];
    int started = 0;
    for (; started < 3; started++)
        if (pthread_create(&threads[started], NULL, interpreter_thread, &jobs[started]) != 0)
            break;
    for (int i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    if (started < 3)
        return 1;

    for (int i = 0; i < 3; i++)
        printf("interpreter %d: %ld instructions, %ld collections, total = %lld%s%s\n", i + 1,
               jobs[i].steps, jobs[i].collections, (long long)jobs[i].total,
               jobs[i].error[0] ? ", exception: " : "", jobs[i].error);

    int64_t expected = (int64_t)99999 * 100000 / 2;    /* 0 + 1 + … + 99999 */
    int ok = !jobs[0].failed && !jobs[1].failed && !jobs[2].failed &&
             jobs[0].total == expected && jobs[1].total == expected &&
             jobs[0].collections > 0 && jobs[2].total == -1 &&
             om_last_error() == OM_OK;      /* errors are per thread: main saw none */
    ok = ok && jobs[2].error[0] != '\0';
    return ok ? 0 : 1;
}
