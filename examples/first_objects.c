/*
 * first_objects.c — objects with reference counts: a dict in a list, freed
 * the moment the last reference goes, and a lazy range that iterates ten
 * million ints in constant memory. Build:
 *   cc first_objects.c $(pkg-config --cflags --libs objmem)
 */
#include <objmem.h>
#include <stdio.h>

/* Bytes in blocks the default heap has handed out. */
static size_t live_bytes(void)
{
    om_heap_stats s;
    om_heap_get_stats(NULL, &s);
    return s.small_used_bytes + s.medium_used_bytes + s.large_bytes;
}

static int fail(const char *what)
{
    fprintf(stderr, "%s: %s\n", what, om_last_error_message());
    return 1;
}

int main(void)
{
    size_t before = live_bytes();

    om_object *d = om_dict_new();
    om_object *key = om_str_from_cstr("answer");
    om_object *value = om_int_from_i64(4200);
    if (d == NULL || key == NULL || value == NULL || om_dict_set(d, key, value) != 0)
        return fail("building the dict");
    om_decref(key);                     /* the dict holds its own references */
    om_decref(value);

    om_object *list = om_list_new(0);
    if (list == NULL || om_list_append(list, d) != 0)
        return fail("building the list");
    om_decref(d);                       /* the list keeps the dict alive */
    printf("a list holding a dict: %zu B live, the dict's count is %ld\n",
           live_bytes() - before, (long)om_refcnt(d));

    om_decref(list);                    /* count 0: list, dict, key, value go now */
    printf("after om_decref(list): %zu B live\n", live_bytes() - before);

    om_object *r = om_range(0, 10000000, 1);
    om_object *it = r != NULL ? om_iter(r) : NULL;
    if (it == NULL)
        return fail("om_range / om_iter");
    long long sum = 0;
    om_object *item;
    while ((item = om_next(it)) != NULL) {
        int64_t v;
        om_int_as_i64(item, &v);
        sum += v;
        om_decref(item);
    }
    if (om_last_error() != OM_OK)
        return fail("om_next");
    printf("sum of range(10M) = %lld, with the range holding %zu B\n", sum, om_sizeof(r));
    om_decref(it);
    om_decref(r);
    return live_bytes() == before ? 0 : 1;
}
