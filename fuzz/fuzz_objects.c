/*
 * fuzz_objects.c — a libFuzzer target that builds object graphs from
 * byte-coded operations and interleaves collections and deletes.
 *
 * Input: opcode bytes with operands, as in fuzz_alloc.c. The target holds
 * 32 root slots, each an owned reference or NULL. Operations make objects
 * into a slot (int, str, bytes, tuple of other roots, list, dict, and two
 * custom GC types: `node` with three object fields and `phoenix`, a node
 * whose PEP 442 finalizer may resurrect it), link roots into containers
 * and node fields (which makes cycles, self-loops included), make weak
 * references with callbacks (which allocate, and may keep one object
 * alive in a side slot), drop roots, pop and delete items, collect a
 * generation, run incremental steps, lower the thresholds so that
 * collections fire inside allocations, and freeze / unfreeze.
 *
 * Checked: every node reached from a root still carries its magic (a node
 * freed while reachable is a use after free that ASan reports; a clobbered
 * one fails here); a destroyed node was never destroyed before; a weak
 * reference's callback sees its reference cleared; om_heap_check every 16
 * operations; and at the end, after the roots are dropped and the
 * resurrected objects released and everything collected, om_heap_check
 * holds, every node made was destroyed, the collector found no
 * uncollectable garbage, and the default heap's live bytes are back at
 * their value before the input.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objmem.h"

#include "fuzz.h"

#define ROOT_COUNT 32
#define RESURRECTED_MAX 8
#define CHECK_EVERY 16
#define NODE_MAGIC 0x6e6f64656e6f6465ull
#define DEAD_MAGIC 0xdeaddeaddeaddeadull

typedef struct node {
    OM_OBJECT_HEAD;
    om_object *field[3];
    uint64_t magic;
} node;

typedef struct reader {
    const uint8_t *data;
    size_t size;
    size_t pos;
} reader;

/* Everything one input changes, reset before the next. */
typedef struct fuzz_state {
    om_object *roots[ROOT_COUNT];
    om_object *resurrected[RESURRECTED_MAX];   /* kept alive by finalizers */
    size_t resurrections_left;                  /* the input's budget for them */
    om_object *callback_keep;                   /* an object a callback made */
    bool keep_from_callback;                    /* the next callback keeps one */
    size_t nodes_made;
    size_t nodes_destroyed;
    size_t callbacks;
} fuzz_state;

static fuzz_state st;
static om_type *node_type;
static om_type *phoenix_type;

static uint8_t read_u8(reader *r)
{
    return r->pos < r->size ? r->data[r->pos++] : 0;
}

/* ---- The custom types ------------------------------------------------------- */

static void node_destroy(om_object *self)
{
    node *n = (node *)self;
    FUZZ_ASSERT(n->magic == NODE_MAGIC, "node %p destroyed twice or clobbered", (void *)n);
    n->magic = DEAD_MAGIC;
    st.nodes_destroyed++;
}

static void phoenix_finalize(om_object *self)
{
    if (st.resurrections_left == 0)
        return;
    for (size_t i = 0; i < RESURRECTED_MAX; i++) {
        if (st.resurrected[i] == NULL) {
            om_incref(self);
            st.resurrected[i] = self;
            st.resurrections_left--;
            return;
        }
    }
}

static om_type *make_type(const char *name, void (*finalize)(om_object *))
{
    static const size_t fields[] = {offsetof(node, field[0]), offsetof(node, field[1]),
                                    offsetof(node, field[2])};
    om_type_spec spec = {
        .name = name,
        .size = sizeof(node),
        .flags = OM_TYPE_WEAKREFABLE,
        .object_offsets = fields,
        .object_offset_count = 3,
        .finalize = finalize,
        .destroy = node_destroy,
    };
    om_type *t = om_type_from_spec(&spec);
    FUZZ_ASSERT(t != NULL, "om_type_from_spec: %s", om_last_error_message());
    return t;
}

static bool is_node(const om_object *o)
{
    return o != NULL && (om_type_of(o) == node_type || om_type_of(o) == phoenix_type);
}

static void check_node(const om_object *o)
{
    FUZZ_ASSERT(((const node *)o)->magic == NODE_MAGIC, "reachable node %p is dead (magic %llx)",
                (const void *)o, (unsigned long long)((const node *)o)->magic);
}

/* ---- Weak reference callbacks ----------------------------------------------- */

static void weak_callback(om_object *ref)
{
    st.callbacks++;
    FUZZ_ASSERT(om_weakref_get(ref) == om_none, "a callback's weak reference is not cleared");
    om_object *scratch = om_list_new(4);   /* callbacks may allocate */
    if (scratch == NULL)
        return;
    if (st.keep_from_callback && st.callback_keep == NULL) {
        st.keep_from_callback = false;
        st.callback_keep = scratch;
        return;
    }
    om_decref(scratch);
}

/* ---- Operations ------------------------------------------------------------- */

static om_object **root_slot(reader *r)
{
    return &st.roots[read_u8(r) % ROOT_COUNT];
}

/* A root as an operand: the object or NULL (checked if it is a node). */
static om_object *root_operand(reader *r)
{
    om_object *o = *root_slot(r);
    if (is_node(o))
        check_node(o);
    return o;
}

static void set_root(om_object **slot, om_object *o)
{
    OM_SETREF(*slot, o);   /* NULL (a failed call) empties the slot */
}

static om_object *make_node(const om_type *type)
{
    om_object *o = om_new(type);
    if (o != NULL) {
        ((node *)o)->magic = NODE_MAGIC;
        st.nodes_made++;
    }
    return o;
}

static om_object *make_tuple(reader *r)
{
    size_t count = read_u8(r) % 5;
    om_object *t = om_tuple_new(count);
    for (size_t i = 0; t != NULL && i < count; i++) {
        om_object *item = root_operand(r);
        if (item != NULL && item != t)
            FUZZ_ASSERT(om_tuple_set(t, (ptrdiff_t)i, item) == 0, "om_tuple_set: %s",
                        om_last_error_message());
    }
    return t;
}

static om_object *make_scalar(reader *r, uint8_t kind)
{
    uint8_t len = read_u8(r) % 24;
    char text[24];
    for (uint8_t i = 0; i < len; i++)
        text[i] = (char)read_u8(r);
    switch (kind % 3) {
    case 0: {
        int64_t v = 0;
        memcpy(&v, text, len < sizeof v ? len : sizeof v);
        return om_int_from_i64(len < 2 ? (int8_t)v : v);   /* small ints too */
    }
    case 1: return om_str_from_utf8(text, len);            /* NULL for bad UTF-8 */
    default: return om_bytes_from(text, len);
    }
}

static void op_make(reader *r)
{
    uint8_t kind = read_u8(r);
    om_object **slot = root_slot(r);
    om_object *o;
    switch (kind % 8) {
    case 0: o = make_node(node_type); break;
    case 1: o = make_node(phoenix_type); break;
    case 2: o = om_list_new(kind >> 4); break;
    case 3: o = om_dict_new(); break;
    case 4: o = make_tuple(r); break;
    default: o = make_scalar(r, kind >> 3); break;
    }
    set_root(slot, o);
}

/* Store root b into root a: a node field, a list item, a dict value (the
 * key another root); fails cleanly for the types that cannot hold it. */
static void op_link(reader *r)
{
    om_object *a = root_operand(r);
    om_object *b = root_operand(r);
    om_object *key = root_operand(r);
    uint8_t where = read_u8(r);
    if (a == NULL || b == NULL)
        return;
    if (is_node(a)) {
        om_incref(b);
        OM_SETREF(((node *)a)->field[where % 3], b);
    } else if (om_is_type(a, &om_list_type)) {
        if (where & 1)
            FUZZ_ASSERT(om_list_append(a, b) == 0, "append: %s", om_last_error_message());
        else
            FUZZ_ASSERT(om_list_insert(a, where >> 1, b) == 0, "insert: %s",
                        om_last_error_message());
    } else if (om_is_type(a, &om_dict_type) && key != NULL) {
        int rc = om_dict_set(a, key, b);
        FUZZ_ASSERT(rc == 0 || om_last_error() == OM_ETYPE, "dict set: %s",
                    om_last_error_message());
    }
}

/* Take something out of root a: a node field, a list item, a dict entry. */
static void op_unlink(reader *r)
{
    om_object *a = root_operand(r);
    om_object *key = root_operand(r);
    uint8_t which = read_u8(r);
    if (a == NULL)
        return;
    if (is_node(a)) {
        OM_CLEAR(((node *)a)->field[which % 3]);
    } else if (om_is_type(a, &om_list_type)) {
        if (om_list_size(a) > 0) {
            if (which & 1)
                FUZZ_ASSERT(om_list_delete(a, 0) == 0, "list delete");
            else
                om_decref(om_list_pop(a, -1));
        } else if (which & 2) {
            om_list_clear(a);
        }
    } else if (om_is_type(a, &om_dict_type)) {
        if (key != NULL && om_dict_delete(a, key) != 0)
            FUZZ_ASSERT(om_last_error() == OM_EKEY || om_last_error() == OM_ETYPE,
                        "dict delete: %s", om_last_error_message());
        if (which & 2)
            om_dict_clear(a);
    }
}

/* Copy root b into root a (one more reference), or move a reference out
 * of a container into a root (so the graph's shape changes). */
static void op_copy(reader *r)
{
    om_object **to = root_slot(r);
    om_object *from = root_operand(r);
    uint8_t which = read_u8(r);
    om_object *o = from;
    if (from != NULL && is_node(from) && ((node *)from)->field[which % 3] != NULL)
        o = ((node *)from)->field[which % 3];
    else if (from != NULL && om_is_type(from, &om_list_type) && om_list_size(from) > 0)
        o = om_list_get(from, which % om_list_size(from));
    om_xincref(o);
    set_root(to, o);
}

static void op_weakref(reader *r)
{
    om_object **to = root_slot(r);
    om_object *target = root_operand(r);
    uint8_t flags = read_u8(r);
    if (target == NULL)
        return;
    st.keep_from_callback = st.keep_from_callback || (flags & 2);
    om_object *ref = om_weakref_new(target, flags & 1 ? weak_callback : NULL);
    FUZZ_ASSERT(ref != NULL || om_last_error() == OM_ETYPE, "om_weakref_new: %s",
                om_last_error_message());
    if (ref != NULL) {
        om_object *got = om_weakref_get(ref);
        FUZZ_ASSERT(got == target, "a fresh weak reference does not give its referent");
    }
    set_root(to, ref);
}

static void op_collect(reader *r)
{
    uint8_t how = read_u8(r);
    switch (how % 6) {
    case 0: case 1: case 2: om_gc_collect(how % 3); break;
    case 3: om_gc_set_threshold(1 + (how >> 3), 1 + (how >> 6), 2); break;
    case 4:
        om_option_set(OM_OPTION_GC_INCREMENTAL_BUDGET_US, 1 + (how >> 3));
        om_gc_collect_step();
        break;
    default:
        if (how & 0x80)
            om_gc_freeze();
        else
            om_gc_unfreeze();
        break;
    }
}

static void op_drop(reader *r)
{
    om_object **slot = root_slot(r);   /* OM_CLEAR reads its slot twice */
    OM_CLEAR(*slot);
}

static void op_release_side(reader *r)
{
    uint8_t which = read_u8(r);
    if (which & 1)
        OM_CLEAR(st.callback_keep);
    else
        OM_CLEAR(st.resurrected[(which >> 1) % RESURRECTED_MAX]);
}

static void run(reader *r)
{
    for (unsigned step = 1; r->pos < r->size; step++) {
        uint8_t op = read_u8(r);
        switch (op % 10) {
        case 0: case 1: op_make(r); break;
        case 2: case 3: op_link(r); break;
        case 4: op_unlink(r); break;
        case 5: op_drop(r); break;
        case 6: op_copy(r); break;
        case 7: op_weakref(r); break;
        case 8: op_collect(r); break;
        default: op_release_side(r); break;
        }
        if (step % CHECK_EVERY == 0)
            om_heap_check();
    }
}

/* ---- Set-up and the end of an input --------------------------------------- */

static void restore_collector(void)
{
    om_gc_unfreeze();
    om_gc_set_threshold(700, 10, 10);
    om_option_set(OM_OPTION_GC_INCREMENTAL_BUDGET_US, 0);
}

static void release_everything(void)
{
    st.resurrections_left = 0;
    st.keep_from_callback = false;
    for (size_t i = 0; i < ROOT_COUNT; i++)
        OM_CLEAR(st.roots[i]);
    /* Collections can resurrect (finalizers ran before the budget ended)
     * and callbacks can keep an object: release those until none is left. */
    for (int round = 0; round < 8; round++) {
        for (size_t i = 0; i < RESURRECTED_MAX; i++)
            OM_CLEAR(st.resurrected[i]);
        OM_CLEAR(st.callback_keep);
        if (om_gc_collect(2) == 0)
            break;
    }
}

static size_t live_bytes(void)
{
    om_heap_stats stats;
    om_heap_get_stats(NULL, &stats);
    return stats.small_used_bytes + stats.medium_used_bytes + stats.large_bytes;
}

static void finish(size_t baseline)
{
    restore_collector();
    om_heap_check();
    release_everything();
    om_heap_check();
    FUZZ_ASSERT(st.nodes_destroyed == st.nodes_made, "%zu nodes made, %zu destroyed",
                st.nodes_made, st.nodes_destroyed);
    om_object *garbage = om_gc_garbage();
    FUZZ_ASSERT(garbage == NULL || om_list_size(garbage) == 0, "uncollectable garbage");
    size_t live = live_bytes();
    FUZZ_ASSERT(live == baseline, "live bytes %zu after the input, %zu before", live, baseline);
}

/* Made once, before the first baseline: the types, and the first
 * allocations of the collector, the weak-reference table and the garbage
 * list. */
static void set_up(void)
{
    node_type = make_type("node", NULL);
    phoenix_type = make_type("phoenix", phoenix_finalize);
    om_object *o = make_node(node_type);
    om_object *ref = om_weakref_new(o, NULL);
    om_decref(ref);
    om_decref(o);
    om_gc_collect(2);
    (void)om_gc_garbage();   /* made on first use */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (node_type == NULL)
        set_up();
    memset(&st, 0, sizeof st);
    st.resurrections_left = RESURRECTED_MAX;
    reader r = {data, size, 0};
    size_t baseline = live_bytes();
    run(&r);
    finish(baseline);
    return 0;
}
