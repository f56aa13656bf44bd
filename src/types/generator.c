/*
 * generator.c — generators: lazy sequences whose items a C function makes
 * one at a time, on demand. A generator is its own iterator.
 *
 *   | omi_gc_head | refcnt | type | next_fn | state | release | running |
 *
 * States and transitions:
 *
 *   live ──om_next──▶ running ──next_fn returns 1──▶ live
 *                        │
 *                        └── returns 0 or -1 ──▶ finished
 *   live ──death──▶ finished (then freed)
 *
 * finished: next_fn == NULL and release has run (release(state), exactly
 * once, on entering it). om_next on a finished generator returns NULL
 * with no error, as an exhausted Python generator; om_next on a running
 * one (next_fn calling om_next on its own generator) fails with OM_EVALUE.
 * While next_fn runs, the generator holds a reference to itself, so
 * next_fn may drop the caller's last reference without freeing the object
 * under its own feet.
 *
 * A GC type, like CPython's generators, so that the collector knows of
 * it; state is opaque, so traverse visits nothing.
 *
 * Learned from: CPython's Objects/genobject.c ("generator already
 * executing", closing on exception); written afresh.
 */
#include "../internal.h"

typedef struct generator_object {
    OM_OBJECT_HEAD;
    om_generator_fn next_fn;     /* NULL once finished */
    void *state;                 /* the user's, passed to next_fn and release */
    void (*release)(void *state);/* NULL once run, or if none was given */
    bool running;                /* inside next_fn */
} generator_object;

static generator_object *as_generator(om_object *o)
{
    return (generator_object *)o;
}

/* Enters the finished state: release runs once, here. */
static void generator_finish(generator_object *g)
{
    void (*release)(void *) = g->release;
    g->next_fn = NULL;
    g->release = NULL;
    if (release != NULL)
        release(g->state);
}

om_object *om_generator_new(om_generator_fn next_fn, void *state, void (*release)(void *state))
{
    om_object *o = next_fn != NULL ? om_new(&om_generator_type) : NULL;
    if (o == NULL) {
        if (next_fn == NULL)
            omi_set_error(OM_EINVAL, "om_generator_new: next_fn is NULL");
        if (release != NULL)
            release(state);
        return NULL;
    }
    generator_object *g = as_generator(o);
    g->next_fn = next_fn;
    g->state = state;
    g->release = release;
    return o;
}

/* One call of next_fn, its result turned into om_next's contract: an
 * item, or NULL at the end (no error: whatever next_fn left is cleared)
 * or on failure (an error always set). */
static om_object *generator_step(generator_object *g)
{
    om_object *item = NULL;
    g->running = true;
    int rc = g->next_fn(g->state, &item);
    g->running = false;
    if (rc == 1 && item != NULL)
        return item;
    if (rc == 0)
        om_clear_error();
    else if (rc != -1)
        omi_set_error(OM_EINVAL, "generator: next_fn returned %d%s", rc,
                      rc == 1 ? " but stored no item" : " (not 1, 0 or -1)");
    else if (om_last_error() == OM_OK)
        omi_set_error(OM_EVALUE, "generator: next_fn failed without setting an error");
    generator_finish(g);
    return NULL;
}

static om_object *generator_next(om_object *self)
{
    generator_object *g = as_generator(self);
    if (g->next_fn == NULL)
        return NULL;
    if (g->running) {
        omi_set_error(OM_EVALUE, "om_next: generator already executing");
        return NULL;
    }
    om_incref(self);
    om_object *item = generator_step(g);
    om_decref(self);
    return item;
}

static int generator_traverse(om_object *self, om_visit_fn visit, void *arg)
{
    (void)self;
    (void)visit;
    (void)arg;
    return 0;
}

static void generator_destroy(om_object *self)
{
    generator_finish(as_generator(self));
}

const om_type om_generator_type = {
    .name = "generator",
    .size = sizeof(generator_object),
    .flags = OM_TYPE_GC,
    .traverse = generator_traverse,
    .destroy = generator_destroy,
    .iter = omi_iterator_self,
    .next = generator_next,
};
