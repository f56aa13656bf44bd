/*
 * container_sizes.c — what each built-in type costs in memory, measured:
 * om_sizeof of every type at a few sizes, how a list's capacity and a
 * dict's table grow as items arrive, and the heap's live bytes for a
 * million ints held in a list, a tuple, a dict, a range and a generator.
 * docs/guide-containers.md quotes its output. Build:
 *   cc container_sizes.c $(pkg-config --cflags --libs objmem)
 */
#include <objmem.h>
#include <stdio.h>

enum { MILLION = 1000000 };

/* Bytes in blocks the default heap has handed out right now: small blocks,
 * medium blocks, and large blocks by their usable size (whole 1 MiB slots
 * less the 4 KiB descriptor page: padding never touched costs no RSS). */
static size_t live_bytes(void)
{
    om_heap_stats s;
    om_heap_get_stats(NULL, &s);
    return s.small_used_bytes + s.medium_used_bytes + s.large_bytes;
}

/* Bytes in small blocks only (the objects themselves, up to 512 B each). */
static size_t small_bytes(void)
{
    om_heap_stats s;
    om_heap_get_stats(NULL, &s);
    return s.small_used_bytes;
}

static int failed(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, om_last_error_message());
    return 1;
}

/* Prints "name: N B" and drops o (which may be NULL after a failure). */
static int show_size(const char *name, om_object *o)
{
    if (o == NULL)
        return failed(name);
    printf("  %-34s %6zu B\n", name, om_sizeof(o));
    om_decref(o);
    return 0;
}

static om_object *list_of_ints(size_t n)
{
    om_object *l = om_list_new(0);
    for (size_t i = 0; l != NULL && i < n; i++) {
        om_object *v = om_int_from_i64(1000 + (int64_t)i);
        if (v == NULL || om_list_append(l, v) != 0) {
            om_xdecref(v);
            om_decref(l);
            return NULL;
        }
        om_decref(v);
    }
    return l;
}

static om_object *tuple_of_ints(size_t n)
{
    om_object *t = om_tuple_new(n);
    for (size_t i = 0; t != NULL && i < n; i++) {
        om_object *v = om_int_from_i64(1000 + (int64_t)i);
        if (v == NULL || om_tuple_set(t, (ptrdiff_t)i, v) != 0) {
            om_xdecref(v);
            om_decref(t);
            return NULL;
        }
        om_decref(v);
    }
    return t;
}

static om_object *dict_of_ints(size_t n)
{
    om_object *d = om_dict_new();
    for (size_t i = 0; d != NULL && i < n; i++) {
        om_object *k = om_int_from_i64(1000 + (int64_t)i), *v = om_int_from_i64(-1000 - (int64_t)i);
        int rc = k != NULL && v != NULL ? om_dict_set(d, k, v) : -1;
        om_xdecref(k);
        om_xdecref(v);
        if (rc != 0) {
            om_decref(d);
            return NULL;
        }
    }
    return d;
}

static int sizes_of_each_type(void)
{
    printf("om_sizeof of each built-in type:\n");
    char text[101] = {0};
    for (int i = 0; i < 100; i++)
        text[i] = 'a';
    int rc = 0;
    rc |= show_size("int 1000", om_int_from_i64(1000));
    rc |= show_size("float 1.5", om_float_from_double(1.5));
    rc |= show_size("str \"\" (0 bytes)", om_str_from_utf8(text, 0));
    rc |= show_size("str of 10 ASCII bytes", om_str_from_utf8(text, 10));
    rc |= show_size("str of 100 ASCII bytes", om_str_from_utf8(text, 100));
    rc |= show_size("bytes of 0", om_bytes_from(text, 0));
    rc |= show_size("bytes of 100", om_bytes_from(text, 100));
    rc |= show_size("tuple of 0 (the immortal one)", om_tuple_new(0));
    rc |= show_size("tuple of 1", tuple_of_ints(1));
    rc |= show_size("tuple of 10", tuple_of_ints(10));
    rc |= show_size("tuple of 100", tuple_of_ints(100));
    rc |= show_size("list, empty", om_list_new(0));
    rc |= show_size("list of 10 (appended)", list_of_ints(10));
    rc |= show_size("list of 100 (appended)", list_of_ints(100));
    rc |= show_size("dict, empty", om_dict_new());
    rc |= show_size("dict of 10", dict_of_ints(10));
    rc |= show_size("dict of 100", dict_of_ints(100));
    rc |= show_size("range(0, 10)", om_range(0, 10, 1));
    rc |= show_size("range(0, 10**12)", om_range(0, 1000000000000, 1));
    return rc;
}

/* The capacities a list passes through while 0 … n items are appended. */
static int list_growth(size_t n)
{
    om_object *l = om_list_new(0), *item = om_int_from_i64(7);
    if (l == NULL || item == NULL)
        return failed("list_growth");
    printf("list capacity after each resize, appending 1 … %zu items:\n  ", n);
    ptrdiff_t capacity = om_list_capacity(l);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = om_list_append(l, item);
        if (om_list_capacity(l) != capacity) {
            capacity = om_list_capacity(l);
            printf("%td ", capacity);
        }
    }
    printf("\n");
    om_decref(item);
    om_decref(l);
    return rc != 0 ? failed("om_list_append") : 0;
}

/* om_sizeof of a dict each time its table grows, inserting 1 … n keys. */
static int dict_growth(size_t n)
{
    om_object *d = om_dict_new();
    if (d == NULL)
        return failed("dict_growth");
    printf("dict om_sizeof after each table growth, inserting 1 … %zu keys:\n", n);
    size_t size = om_sizeof(d);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        om_object *k = om_int_from_i64(1000 + (int64_t)i);
        rc = k != NULL ? om_dict_set(d, k, om_none) : -1;
        om_xdecref(k);
        if (om_sizeof(d) != size) {
            size = om_sizeof(d);
            printf("  %6zu keys: %7zu B\n", i + 1, size);
        }
    }
    om_decref(d);
    return rc != 0 ? failed("om_dict_set") : 0;
}

static int count_next(void *state, om_object **item)
{
    int64_t *i = state;
    if (*i >= MILLION)
        return 0;
    *item = om_int_from_i64(1000 + (*i)++);
    return *item != NULL ? 1 : -1;
}

/* Iterates it to the end; returns the most live bytes above base seen
 * (sampled every 1024 items: a statistics snapshot walks every pool). */
static size_t drain(om_object *it, size_t base, long *items)
{
    size_t peak = 0;
    om_object *item;
    *items = 0;
    while ((item = om_next(it)) != NULL) {
        if ((*items)++ % 1024 == 0 && live_bytes() - base > peak)
            peak = live_bytes() - base;
        om_decref(item);
    }
    return peak;
}

/* One row of the table: the container's bytes, split into small blocks
 * (objects) and the rest (the container's buffer), and per item. */
static void show_held(const char *name, size_t base, size_t small_base, om_object *o)
{
    size_t total = live_bytes() - base, small = small_bytes() - small_base;
    printf("  %-16s %11zu B = %10zu B objects + %9zu B buffer; %5.1f B per item;"
           " om_sizeof %zu B\n", name, total, small, total - small, (double)total / MILLION,
           om_sizeof(o));
}

/* Live heap bytes for a million ints held in each container. */
static int million_ints(void)
{
    printf("live heap bytes for %d ints (each int 1000 + i, not cached):\n", MILLION);
    size_t base = live_bytes(), small_base = small_bytes();
    om_object *l = list_of_ints(MILLION);
    if (l == NULL)
        return failed("list of a million");
    show_held("list (appended)", base, small_base, l);
    printf("  %-16s capacity %td for %d items\n", "", om_list_capacity(l), MILLION);
    om_decref(l);
    om_heap_trim(NULL);     /* or the tuple would reuse the list's cached mapping */
    om_object *t = tuple_of_ints(MILLION);
    if (t == NULL)
        return failed("tuple of a million");
    show_held("tuple", base, small_base, t);
    om_decref(t);
    om_heap_trim(NULL);
    om_object *d = dict_of_ints(MILLION);
    if (d == NULL)
        return failed("dict of a million");
    show_held("dict int -> int", base, small_base, d);
    om_decref(d);

    om_object *r = om_range(1000, 1000 + MILLION, 1);
    om_object *it = r != NULL ? om_iter(r) : NULL;
    if (it == NULL)
        return failed("range");
    long items;
    size_t held = live_bytes() - base;
    size_t peak = drain(it, base, &items);
    printf("  %-16s %11zu B held; peak %zu B while iterating %ld items\n", "range + iterator",
           held, peak, items);
    om_decref(it);
    om_decref(r);

    int64_t *state = om_raw_malloc(sizeof *state);
    if (state == NULL)
        return failed("om_raw_malloc");
    *state = 0;
    om_object *g = om_generator_new(count_next, state, om_raw_free);
    if (g == NULL)
        return failed("om_generator_new");
    held = live_bytes() - base;
    peak = drain(g, base, &items);
    printf("  %-16s %11zu B held; peak %zu B while iterating %ld items\n", "generator", held,
           peak, items);
    om_decref(g);
    return live_bytes() == base ? 0 : failed("memory left behind");
}

int main(void)
{
    om_gc_disable();        /* no collection in the middle of a measurement */
    int rc = sizes_of_each_type();
    rc |= list_growth(100);
    rc |= dict_growth(100000);
    rc |= million_ints();
    om_gc_enable();
    return rc;
}
