/*
 * test-dict.c — the dict: against a model under random operations,
 * colliding hashes, rebuilds with deletions, mutation during iteration,
 * unhashable keys, failing and mutating equal hooks, fault injection at
 * every allocation of set, copy and items iteration, the collector's hooks,
 * and use of a freed dict under the debug hooks. Every test ends with the
 * heap's live bytes back at the value it started with.
 *
 * argv: [operations of the model test] [seed]
 */
#include <inttypes.h>

#include "internal.h"
#include "testutil.h"

/* ---- Helpers ------------------------------------------------------------- */

static om_object *int_obj(int64_t v)
{
    om_object *o = om_int_from_i64(v);
    if (o == NULL)
        CHECK(!"om_int_from_i64 failed");
    return o;
}

static int64_t int_val(om_object *o)
{
    int64_t v = INT64_MIN;
    if (o == NULL || om_int_as_i64(o, &v) != 0)
        CHECK(!"not an int");
    return v;
}

/* d[k] = v for ints k, v; the dict takes its own references. */
static int set_ii(om_object *d, int64_t k, int64_t v)
{
    om_object *key = int_obj(k), *value = int_obj(v);
    int r = om_dict_set(d, key, value);
    om_decref(key);
    om_decref(value);
    return r;
}

/* d[k] as an int, or INT64_MIN when absent (no error recorded then). */
static int64_t get_ii(om_object *d, int64_t k)
{
    om_object *key = int_obj(k), *value = NULL;
    int r = om_dict_find(d, key, &value);
    om_decref(key);
    if (r < 0)
        CHECK(!"om_dict_find failed");
    return r == 1 ? int_val(value) : INT64_MIN;
}

static int error_is(om_error code, const char *word)
{
    return om_last_error() == code && strstr(om_last_error_message(), word) != NULL;
}

/* ---- A key type of the test: an int64 with a chosen hash and equal ------- */

typedef struct tkey {
    OM_OBJECT_HEAD;
    int64_t v;
} tkey;

static om_object *mutate_target;   /* mkey's equal clears this dict once */
static int equal_fails;            /* fkey's equal fails while set */
static long equal_calls;           /* equal hooks of test keys called */

static int64_t tkey_v(om_object *o)
{
    return ((tkey *)o)->v;
}

static int64_t constant_hash(om_object *self)
{
    (void)self;
    return 42;
}

static int tkey_equal(om_object *self, om_object *other)
{
    equal_calls++;
    return om_type_of(other) == om_type_of(self) && tkey_v(self) == tkey_v(other);
}

static int fkey_equal(om_object *self, om_object *other)
{
    if (equal_fails) {
        omi_set_error(OM_EVALUE, "fkey: equal failed on purpose");
        return -1;
    }
    return tkey_equal(self, other);
}

static int mkey_equal(om_object *self, om_object *other)
{
    om_object *target = mutate_target;
    if (target != NULL) {
        mutate_target = NULL;
        CHECK(om_dict_clear(target) == 0);
    }
    return tkey_equal(self, other);
}

/* All keys of these types collide: every lookup goes through equal. */
static const om_type ckey_type = {.name = "ckey", .size = sizeof(tkey), .hash = constant_hash,
                                  .equal = tkey_equal};
static const om_type fkey_type = {.name = "fkey", .size = sizeof(tkey), .hash = constant_hash,
                                  .equal = fkey_equal};
static const om_type mkey_type = {.name = "mkey", .size = sizeof(tkey), .hash = constant_hash,
                                  .equal = mkey_equal};

static om_object *tkey_new(const om_type *type, int64_t v)
{
    tkey *k = (tkey *)om_new(type);
    CHECK(k != NULL);
    k->v = v;
    return OM_OBJ(k);
}

/* ---- The model: int64 -> int64 with insertion order ---------------------- */

/* Keys are 0 … MODEL_KEYS-1 mapped through model_key (spread and signed). */
#define MODEL_KEYS 200000

typedef struct model {
    int64_t value[MODEL_KEYS];
    uint64_t seq[MODEL_KEYS];      /* insertion stamp; 0 = absent */
    uint64_t next_seq;
    size_t count;
} model;

static model the_model;

static int64_t model_key(size_t i)
{
    return (int64_t)(i * 2654435761u) - (int64_t)MODEL_KEYS * 1000;
}

static void model_set(model *m, size_t i, int64_t v)
{
    if (m->seq[i] == 0) {
        m->seq[i] = ++m->next_seq;
        m->count++;
    }
    m->value[i] = v;
}

static void model_delete(model *m, size_t i)
{
    m->seq[i] = 0;
    m->count--;
}

static void model_clear(model *m)
{
    memset(m, 0, sizeof *m);
}

/* Index of key k in the model (k = model_key(i)); MODEL_KEYS if none. */
static size_t model_index(int64_t k)
{
    uint64_t x = (uint64_t)(k + (int64_t)MODEL_KEYS * 1000);
    return x % 2654435761u == 0 && x / 2654435761u < MODEL_KEYS ? (size_t)(x / 2654435761u)
                                                                 : MODEL_KEYS;
}

/* d holds exactly the model's keys and values, in insertion order, by
 * om_dict_next and by lookups. */
static int dict_matches_model(om_object *d, const model *m)
{
    if (om_dict_size(d) != (ptrdiff_t)m->count)
        return 0;
    size_t pos = 0, seen = 0;
    uint64_t last_seq = 0;
    om_object *key, *value;
    while (om_dict_next(d, &pos, &key, &value)) {
        size_t i = model_index(int_val(key));
        if (i >= MODEL_KEYS || m->seq[i] <= last_seq || m->value[i] != int_val(value))
            return 0;
        last_seq = m->seq[i];
        seen++;
    }
    return seen == m->count;
}

/* ---- Tests --------------------------------------------------------------- */

static void test_basics(void)
{
    size_t base = tu_live_bytes();
    om_object *d = om_dict_new();
    CHECK(d != NULL && om_is_type(d, &om_dict_type));
    CHECK(om_dict_size(d) == 0);
    CHECK(omi_gc_is_tracked(d));
    size_t empty_size = om_sizeof(d);

    om_object *k = om_str_from_cstr("alpha"), *v = int_obj(1000);
    CHECK(om_dict_set(d, k, v) == 0);
    CHECK(om_refcnt(k) == 2 && om_refcnt(v) == 2);
    CHECK(om_dict_get(d, k) == v);
    CHECK(om_dict_contains(d, k) == 1);
    CHECK(om_sizeof(d) > empty_size);

    /* A fresh equal str finds the same entry. */
    om_object *k2 = om_str_from_cstr("alpha");
    CHECK(om_dict_get(d, k2) == v);
    om_object *v2 = int_obj(2000);
    CHECK(om_dict_set(d, k2, v2) == 0);
    CHECK(om_dict_size(d) == 1 && om_dict_get(d, k) == v2);
    CHECK(om_refcnt(v) == 1 && om_refcnt(k2) == 1);   /* the first key object stays */

    /* Absent keys. */
    om_object *absent = om_str_from_cstr("beta"), *found = v;
    om_clear_error();
    CHECK(om_dict_find(d, absent, &found) == 0 && found == v && om_last_error() == OM_OK);
    CHECK(om_dict_contains(d, absent) == 0 && om_last_error() == OM_OK);
    CHECK(om_dict_get(d, absent) == NULL && error_is(OM_EKEY, "om_dict_get"));
    CHECK(om_dict_delete(d, absent) == -1 && error_is(OM_EKEY, "om_dict_delete"));
    CHECK(om_dict_pop(d, absent) == NULL && error_is(OM_EKEY, "om_dict_pop"));

    /* Bad arguments. */
    CHECK(om_dict_set(d, NULL, v) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_dict_set(d, k, NULL) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_dict_size(NULL) == -1 && om_last_error() == OM_EINVAL);
    CHECK(om_dict_get(v, k) == NULL && error_is(OM_ETYPE, "expected 'dict', got 'int'"));
    CHECK(om_dict_set(om_none, k, v) == -1 && om_last_error() == OM_ETYPE);
    CHECK(om_dict_keys(v) == NULL && om_last_error() == OM_ETYPE);
    size_t pos = 0;
    CHECK(om_dict_next(v, &pos, NULL, NULL) == 0 && om_last_error() == OM_ETYPE);
    CHECK(om_dict_next(d, NULL, NULL, NULL) == 0 && om_last_error() == OM_EINVAL);

    /* pop hands the dict's reference over; delete drops it. */
    om_object *popped = om_dict_pop(d, k2);
    CHECK(popped == v2 && om_refcnt(v2) == 2 && om_refcnt(k) == 1);
    om_decref(popped);
    CHECK(om_dict_size(d) == 0 && om_dict_contains(d, k) == 0);
    CHECK(om_dict_set(d, k, v) == 0 && om_dict_delete(d, k) == 0 && om_refcnt(v) == 1);

    /* Equal numbers are one key: 1, 1.0 and True. */
    om_object *one = int_obj(1), *one_f = om_float_from_double(1.0);
    CHECK(om_dict_set(d, one_f, v) == 0);
    CHECK(om_dict_get(d, one) == v && om_dict_get(d, om_true) == v);
    CHECK(om_dict_set(d, om_true, v2) == 0 && om_dict_size(d) == 1);
    CHECK(om_dict_pop(d, one) == v2 && om_dict_size(d) == 0);
    om_decref(v2);
    om_decref(one_f);

    /* Immortal keys and values. */
    CHECK(om_dict_set(d, om_none, om_true) == 0 && om_dict_get(d, om_none) == om_true);
    CHECK(om_dict_clear(d) == 0 && om_dict_size(d) == 0 && om_sizeof(d) == empty_size);
    CHECK(om_dict_clear(d) == 0);

    om_object *objs[] = {d, k, v, k2, v2, absent};
    for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++)
        om_decref(objs[i]);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_order(void)
{
    size_t base = tu_live_bytes();
    om_object *d = om_dict_new();
    for (int64_t i = 0; i < 1000; i++)
        CHECK(set_ii(d, i * 7 - 300, i) == 0);
    /* Replace keeps the place; delete and re-insert moves to the end. */
    CHECK(set_ii(d, 0 * 7 - 300, -1) == 0);
    om_object *k = int_obj(5 * 7 - 300);
    CHECK(om_dict_delete(d, k) == 0);
    CHECK(set_ii(d, 5 * 7 - 300, 5) == 0);
    om_decref(k);
    size_t pos = 0, n = 0;
    om_object *key, *value;
    int in_order = 1;
    while (om_dict_next(d, &pos, &key, &value)) {
        int64_t expect = n < 5 ? (int64_t)n : n < 999 ? (int64_t)n + 1 : 5;
        in_order &= int_val(key) == expect * 7 - 300;
        in_order &= int_val(value) == (n == 0 ? -1 : expect);
        n++;
    }
    CHECK(in_order && n == 1000);
    CHECK(om_dict_next(d, &pos, &key, &value) == 0);

    /* The keys and values iterators, and om_iter, follow the same order. */
    om_object *keys = om_dict_keys(d), *values = om_dict_values(d), *it = om_iter(d);
    CHECK(keys != NULL && values != NULL && it != NULL);
    CHECK(om_iter(keys) == keys && om_refcnt(keys) == 2);
    om_decref(keys);
    pos = 0;
    int same = 1;
    while (om_dict_next(d, &pos, &key, &value)) {
        om_object *k1 = om_next(keys), *v1 = om_next(values), *k3 = om_next(it);
        same &= k1 == key && v1 == value && k3 == key;
        om_xdecref(k1);
        om_xdecref(v1);
        om_xdecref(k3);
    }
    CHECK(same);
    CHECK(om_next(keys) == NULL && om_last_error() == OM_OK);
    CHECK(om_next(keys) == NULL && om_last_error() == OM_OK);
    CHECK(om_next(values) == NULL && om_next(it) == NULL && om_last_error() == OM_OK);
    om_decref(keys);
    om_decref(values);
    om_decref(it);

    /* An iterator keeps its dict alive. */
    it = om_dict_values(d);
    om_decref(d);
    om_object *first = om_next(it);
    CHECK(first != NULL && int_val(first) == -1);
    om_xdecref(first);
    om_decref(it);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* One random operation on d and the model; 1 when d answered as the model. */
static int model_op(om_object *d, model *m, tu_rng *rng, size_t universe)
{
    size_t i = (size_t)(tu_rng_next(rng) % universe);
    om_object *key = int_obj(model_key(i));
    unsigned op = (unsigned)(tu_rng_next(rng) % 100);
    int present = m->seq[i] != 0, ok;
    if (op < 40) {
        int64_t v = (int64_t)(tu_rng_next(rng) >> 1) - INT64_MAX / 2;
        om_object *value = int_obj(v);
        ok = om_dict_set(d, key, value) == 0;
        om_decref(value);
        model_set(m, i, v);
    } else if (op < 60) {
        om_object *value = om_dict_get(d, key);
        ok = present ? value != NULL && int_val(value) == m->value[i]
                     : value == NULL && om_last_error() == OM_EKEY;
    } else if (op < 70) {
        ok = om_dict_contains(d, key) == present;
    } else if (op < 85) {
        ok = om_dict_delete(d, key) == (present ? 0 : -1);
        if (present)
            model_delete(m, i);
    } else {
        om_object *value = om_dict_pop(d, key);
        ok = present ? value != NULL && int_val(value) == m->value[i]
                     : value == NULL && om_last_error() == OM_EKEY;
        om_xdecref(value);
        if (present)
            model_delete(m, i);
    }
    om_decref(key);
    return ok;
}

static void test_model(size_t ops, uint64_t seed)
{
    size_t base = tu_live_bytes();
    static const size_t universes[] = {4, 60, 1000, 30000, MODEL_KEYS, 500};
    tu_rng rng = {seed};
    model *m = &the_model;
    model_clear(m);
    om_object *d = om_dict_new();
    int matches = 1;
    size_t checks = 0;
    for (size_t n = 0; n < ops; n++) {
        size_t phase = n / (ops / 12 + 1);
        size_t universe = universes[phase % (sizeof universes / sizeof universes[0])];
        matches &= model_op(d, m, &rng, universe);
        if (n % 50000 == 49999 || (n < 2000 && n % 97 == 0)) {
            matches &= dict_matches_model(d, m);
            om_object *copy = om_dict_copy(d);
            matches &= copy != NULL && dict_matches_model(copy, m) && om_equal(copy, d) == 1;
            om_xdecref(copy);
            checks++;
        }
        if (n % 300000 == 299999) {
            CHECK(om_dict_clear(d) == 0);
            model_clear(m);
        }
    }
    CHECK(matches && checks > 0);
    CHECK(dict_matches_model(d, m));
    om_decref(d);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_collisions(void)
{
    size_t base = tu_live_bytes();
    enum { N = 600 };
    om_object *d = om_dict_new(), *keys[N];
    for (int64_t i = 0; i < N; i++) {
        keys[i] = tkey_new(&ckey_type, i);
        om_object *v = int_obj(i * 3);
        CHECK(om_dict_set(d, keys[i], v) == 0);
        om_decref(v);
    }
    CHECK(om_dict_size(d) == N);
    /* Lookups with equal, non-identical keys go through equal. */
    int all = 1;
    for (int64_t i = 0; i < N; i++) {
        om_object *probe = tkey_new(&ckey_type, i);
        om_object *v = om_dict_get(d, probe);
        all &= v != NULL && int_val(v) == i * 3;
        om_decref(probe);
    }
    CHECK(all);
    om_object *missing = tkey_new(&ckey_type, N);
    equal_calls = 0;
    CHECK(om_dict_contains(d, missing) == 0);
    CHECK(equal_calls >= N);   /* perturbed probes may revisit a slot */
    om_decref(missing);
    /* Delete every other key, then the rest find theirs past the dummies. */
    for (int64_t i = 0; i < N; i += 2)
        CHECK(om_dict_delete(d, keys[i]) == 0);
    all = 1;
    for (int64_t i = 0; i < N; i++)
        all &= om_dict_contains(d, keys[i]) == (i % 2);
    CHECK(all && om_dict_size(d) == N / 2);
    for (int64_t i = 0; i < N; i++)
        om_decref(keys[i]);
    om_decref(d);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_rebuild_with_dummies(void)
{
    size_t base = tu_live_bytes();
    om_object *d = om_dict_new();
    for (int64_t i = 0; i < 20000; i++)
        CHECK(set_ii(d, i, i) == 0);
    size_t big = om_sizeof(d);
    for (int64_t i = 0; i < 20000; i++)
        if (i % 1000 != 0) {
            om_object *k = int_obj(i);
            CHECK(om_dict_delete(d, k) == 0);
            om_decref(k);
        }
    CHECK(om_dict_size(d) == 20 && om_sizeof(d) == big);   /* deletion never shrinks */
    /* Inserting until the entries run out rebuilds for 3 × the live keys. */
    int64_t next = 100000;
    while (om_sizeof(d) == big)
        CHECK(set_ii(d, next++, 0) == 0);
    CHECK(om_sizeof(d) < big / 3);   /* 2^15 slots down to 2^13 */
    size_t pos = 0, n = 0;
    om_object *key;
    int ordered = 1;
    while (om_dict_next(d, &pos, &key, NULL)) {
        int64_t expect = n < 20 ? (int64_t)n * 1000 : 100000 + (int64_t)n - 20;
        ordered &= int_val(key) == expect;
        n++;
    }
    CHECK(ordered && (ptrdiff_t)n == om_dict_size(d));
    /* A dict of one key deleted and re-inserted again and again stays small. */
    om_object *one = om_dict_new(), *k = int_obj(77);
    for (int i = 0; i < 100000; i++) {
        CHECK(om_dict_set(one, k, k) == 0);
        CHECK(om_dict_delete(one, k) == 0);
    }
    CHECK(om_sizeof(one) < 512);
    om_decref(k);
    om_decref(one);
    om_decref(d);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_mutation_during_iteration(void)
{
    size_t base = tu_live_bytes();
    om_object *d = om_dict_new();
    for (int64_t i = 0; i < 10; i++)
        CHECK(set_ii(d, i, i) == 0);
    om_object *it = om_dict_keys(d);
    om_object *first = om_next(it);
    CHECK(first != NULL && int_val(first) == 0);
    om_xdecref(first);
    /* Replacing a value is not a change of size. */
    CHECK(set_ii(d, 5, 50) == 0);
    om_object *second = om_next(it);
    CHECK(second != NULL && int_val(second) == 1);
    om_xdecref(second);
    CHECK(set_ii(d, 10, 10) == 0);
    CHECK(om_next(it) == NULL && error_is(OM_EVALUE, "dict changed size during iteration"));
    /* Sticky, even when the size is back. */
    om_object *k = int_obj(10);
    CHECK(om_dict_delete(d, k) == 0);
    om_decref(k);
    CHECK(om_next(it) == NULL && om_last_error() == OM_EVALUE);
    om_decref(it);

    /* Deletion during values iteration, and clear during keys iteration. */
    it = om_dict_values(d);
    om_object *v = om_next(it);
    om_xdecref(v);
    k = int_obj(3);
    CHECK(om_dict_delete(d, k) == 0);
    om_decref(k);
    CHECK(om_next(it) == NULL && om_last_error() == OM_EVALUE);
    om_decref(it);
    it = om_iter(d);
    CHECK(om_dict_clear(d) == 0);
    CHECK(om_next(it) == NULL && om_last_error() == OM_EVALUE);
    om_decref(it);

    /* om_dict_next over a dict that grows and shrinks under it stays in bounds. */
    for (int64_t i = 0; i < 100; i++)
        CHECK(set_ii(d, i, i) == 0);
    size_t pos = 0, steps = 0;
    om_object *key;
    while (om_dict_next(d, &pos, &key, NULL) && steps < 10000) {
        int64_t kv = int_val(key);
        om_object *kk = int_obj(kv);
        CHECK(om_dict_delete(d, kk) == 0);
        om_decref(kk);
        if (kv < 1000)
            CHECK(set_ii(d, kv + 1000, 0) == 0);
        steps++;
    }
    CHECK(steps < 10000);
    om_decref(d);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_unhashable(void)
{
    size_t base = tu_live_bytes();
    om_object *d = om_dict_new(), *other = om_dict_new();
    CHECK(set_ii(d, 1, 2) == 0);
    om_object *v = int_obj(5000), *out = NULL;
    CHECK(om_dict_set(d, other, v) == -1 && error_is(OM_ETYPE, "unhashable type: 'dict'"));
    CHECK(om_dict_set(d, d, v) == -1 && om_last_error() == OM_ETYPE);
    CHECK(om_dict_get(d, other) == NULL && om_last_error() == OM_ETYPE);
    CHECK(om_dict_find(d, other, &out) == -1 && out == NULL && om_last_error() == OM_ETYPE);
    CHECK(om_dict_contains(d, other) == -1 && om_last_error() == OM_ETYPE);
    CHECK(om_dict_delete(d, other) == -1 && om_last_error() == OM_ETYPE);
    CHECK(om_dict_pop(d, other) == NULL && om_last_error() == OM_ETYPE);
    CHECK(om_hash(d) == -1 && om_last_error() == OM_ETYPE);
    CHECK(om_dict_size(d) == 1 && get_ii(d, 1) == 2);
    CHECK(om_refcnt(v) == 1 && om_refcnt(other) == 1);
    om_decref(v);
    om_decref(other);
    om_decref(d);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_failing_equal(void)
{
    size_t base = tu_live_bytes();
    om_object *d = om_dict_new(), *keys[8];
    for (int64_t i = 0; i < 8; i++) {
        keys[i] = tkey_new(&fkey_type, i);
        CHECK(om_dict_set(d, keys[i], keys[i]) == 0);
    }
    size_t size_before = om_sizeof(d);
    om_object *probe = tkey_new(&fkey_type, 100), *v = int_obj(9000);
    equal_fails = 1;
    CHECK(om_dict_set(d, probe, v) == -1 && error_is(OM_EVALUE, "on purpose"));
    CHECK(om_dict_get(d, probe) == NULL && om_last_error() == OM_EVALUE);
    CHECK(om_dict_contains(d, probe) == -1 && om_last_error() == OM_EVALUE);
    CHECK(om_dict_delete(d, probe) == -1 && om_last_error() == OM_EVALUE);
    CHECK(om_dict_pop(d, probe) == NULL && om_last_error() == OM_EVALUE);
    /* Identity needs no equal: the key first on the probe path is found. */
    CHECK(om_dict_get(d, keys[0]) == keys[0]);
    /* Dict equality propagates the failure of a value's equal. */
    om_object *copy = om_dict_copy(d);
    om_object *probe3 = tkey_new(&fkey_type, 3);
    equal_fails = 0;
    CHECK(om_dict_set(copy, keys[3], probe3) == 0);
    equal_fails = 1;
    CHECK(om_equal(d, copy) == -1 && om_last_error() == OM_EVALUE);
    equal_fails = 0;
    CHECK(om_equal(d, copy) == 1);
    CHECK(om_dict_size(d) == 8 && om_sizeof(d) == size_before && om_refcnt(v) == 1);
    size_t pos = 0;
    om_object *key, *value;
    int64_t n = 0;
    int same = 1;
    while (om_dict_next(d, &pos, &key, &value)) {
        same &= key == keys[n] && value == keys[n];
        n++;
    }
    CHECK(same && n == 8);
    for (int i = 0; i < 8; i++)
        om_decref(keys[i]);
    om_object *objs[] = {probe, probe3, v, copy, d};
    for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++)
        om_decref(objs[i]);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_mutating_equal(void)
{
    size_t base = tu_live_bytes();
    om_object *d = om_dict_new();
    for (int64_t i = 0; i < 5; i++) {
        om_object *k = tkey_new(&mkey_type, i);
        CHECK(om_dict_set(d, k, k) == 0);
        om_decref(k);
    }
    /* The first equal call empties the dict: the lookup starts over and
     * finds nothing; the insertion then lands in a fresh table. */
    om_object *probe = tkey_new(&mkey_type, 3);
    mutate_target = d;
    CHECK(om_dict_set(d, probe, probe) == 0);
    CHECK(om_dict_size(d) == 1 && om_dict_get(d, probe) == probe);
    mutate_target = d;
    om_object *probe2 = tkey_new(&mkey_type, 3);
    CHECK(om_dict_contains(d, probe2) == 0);
    om_decref(probe2);
    om_decref(probe);
    om_decref(d);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_equal_and_copy(void)
{
    size_t base = tu_live_bytes();
    om_object *a = om_dict_new(), *b = om_dict_new();
    CHECK(om_equal(a, b) == 1);
    for (int64_t i = 0; i < 300; i++)
        CHECK(set_ii(a, i, i * i) == 0);
    for (int64_t i = 299; i >= 0; i--)
        CHECK(set_ii(b, i, i * i) == 0);
    CHECK(om_equal(a, b) == 1 && om_equal(b, a) == 1);
    CHECK(set_ii(b, 7, 0) == 0);
    CHECK(om_equal(a, b) == 0);
    CHECK(set_ii(b, 7, 49) == 0 && set_ii(b, 1000, 1) == 0);
    CHECK(om_equal(a, b) == 0);
    CHECK(om_equal(a, om_none) == 0);

    om_object *c = om_dict_copy(a);
    CHECK(c != NULL && c != a && om_equal(a, c) == 1 && om_dict_size(c) == 300);
    CHECK(om_sizeof(c) <= om_sizeof(a));
    size_t pa = 0, pc = 0;
    om_object *ka, *va, *kc, *vc;
    int same = 1;
    while (om_dict_next(a, &pa, &ka, &va)) {
        same &= om_dict_next(c, &pc, &kc, &vc) && ka == kc && va == vc;
    }
    CHECK(same && !om_dict_next(c, &pc, NULL, NULL));
    CHECK(set_ii(c, 1, -1) == 0 && get_ii(a, 1) == 1);   /* shallow, but separate */
    om_object *empty = om_dict_new(), *empty_copy = om_dict_copy(empty);
    CHECK(empty_copy != NULL && om_dict_size(empty_copy) == 0 && om_equal(empty, empty_copy) == 1);
    om_object *objs[] = {a, b, c, empty, empty_copy};
    for (size_t i = 0; i < sizeof objs / sizeof objs[0]; i++)
        om_decref(objs[i]);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static int count_visit(om_object *o, void *arg)
{
    (void)o;
    (*(size_t *)arg)++;
    return 0;
}

static void test_gc_hooks(void)
{
    size_t base = tu_live_bytes();
    om_object *d = om_dict_new();
    for (int64_t i = 0; i < 10; i++)
        CHECK(set_ii(d, 1000 + i, 1000 + i) == 0);
    om_object *k = int_obj(1003);
    CHECK(om_dict_delete(d, k) == 0);
    om_decref(k);
    size_t visited = 0;
    CHECK(om_dict_type.traverse(d, count_visit, &visited) == 0 && visited == 18);
    /* A cycle through the dict itself, broken by the clear hook. */
    om_object *self_key = om_str_from_cstr("self");
    CHECK(om_dict_set(d, self_key, d) == 0 && om_refcnt(d) == 2);
    om_object *it = om_dict_items(d);
    CHECK(it != NULL && omi_gc_is_tracked(it));
    CHECK(om_dict_set(d, it, om_none) == -1 && om_last_error() == OM_ETYPE);
    visited = 0;
    CHECK(om_type_of(it)->traverse(it, count_visit, &visited) == 0 && visited == 1);
    om_decref(it);
    om_dict_type.clear(d);
    CHECK(om_dict_size(d) == 0 && om_refcnt(d) == 1);
    om_decref(self_key);
    om_decref(d);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_str_keys(void)
{
    size_t base = tu_live_bytes();
    enum { N = 20000 };
    om_object *d = om_dict_new();
    char buf[32];
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof buf, "key-%d", i);
        om_object *k = om_str_from_cstr(buf), *v = int_obj(i);
        CHECK(om_dict_set(d, k, v) == 0);
        om_decref(k);
        om_decref(v);
    }
    int all = 1;
    for (int i = 0; i < N; i++) {
        snprintf(buf, sizeof buf, "key-%d", i);
        om_object *k = om_str_from_cstr(buf), *v = om_dict_get(d, k);
        all &= v != NULL && int_val(v) == i;
        om_decref(k);
    }
    CHECK(all && om_dict_size(d) == N);
    size_t pos = 0;
    om_object *key;
    CHECK(om_dict_next(d, &pos, &key, NULL) && strcmp(om_str_utf8(key), "key-0") == 0);
    om_decref(d);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Fault injection ----------------------------------------------------- */

/* A dict of keys model_key(0 … count-1) mapped to i, and its model. */
static om_object *fill_model_dict(model *m, size_t count)
{
    model_clear(m);
    om_object *d = om_dict_new();
    for (size_t i = 0; i < count; i++) {
        CHECK(set_ii(d, model_key(i), (int64_t)i) == 0);
        model_set(m, i, (int64_t)i);
    }
    return d;
}

static void test_faults_set(om_domain domain)
{
    size_t base = tu_live_bytes();
    model *m = &the_model;
    om_object *d = fill_model_dict(m, 0);
    int clean = 1;
    long failures = 0;
    for (size_t i = 0; i < 400; i++) {
        om_object *key = int_obj(model_key(i)), *value = int_obj((int64_t)i);
        for (long n = 0;; n++) {
            size_t live = tu_live_bytes();
            om_fail_after(domain, n);
            int r = om_dict_set(d, key, value);
            om_fail_after(domain, -1);
            if (r == 0)
                break;
            failures++;
            clean &= om_last_error() == OM_ENOMEM && tu_live_bytes() == live;
            clean &= dict_matches_model(d, m);
        }
        model_set(m, i, (int64_t)i);
        om_decref(key);
        om_decref(value);
    }
    CHECK(clean && dict_matches_model(d, m));
    CHECK(domain == OM_DOMAIN_OBJ || failures >= 7);   /* one per growth at least */
    om_decref(d);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_faults_copy(om_domain domain)
{
    size_t base = tu_live_bytes();
    model *m = &the_model;
    static const size_t sizes[] = {0, 1, 5, 6, 100, 3000};
    int clean = 1;
    long failures = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        om_object *d = fill_model_dict(m, sizes[s]);
        for (long n = 0;; n++) {
            size_t live = tu_live_bytes();
            om_fail_after(domain, n);
            om_object *copy = om_dict_copy(d);
            om_fail_after(domain, -1);
            if (copy != NULL) {
                clean &= dict_matches_model(copy, m);
                om_decref(copy);
                break;
            }
            failures++;
            clean &= om_last_error() == OM_ENOMEM && tu_live_bytes() == live;
            clean &= dict_matches_model(d, m);
        }
        om_decref(d);
    }
    CHECK(clean && failures >= 1);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* Walks an items iterator over d to the end; 1 when every pair matched
 * om_dict_next's, in order, 0 when a call failed (error left set), -1 on a
 * mismatch. */
static int items_walk(om_object *d)
{
    om_object *it = om_dict_items(d);
    if (it == NULL)
        return 0;
    size_t pos = 0;
    om_object *key, *value, *pair;
    int result = 1;
    while ((pair = om_next(it)) != NULL) {
        if (!om_dict_next(d, &pos, &key, &value) || om_tuple_size(pair) != 2 ||
            om_tuple_get(pair, 0) != key || om_tuple_get(pair, 1) != value)
            result = -1;
        om_decref(pair);
    }
    if (om_last_error() != OM_OK)
        result = 0;
    else if (om_dict_next(d, &pos, NULL, NULL))
        result = -1;
    om_decref(it);
    return result;
}

static void test_faults_items(om_domain domain)
{
    size_t base = tu_live_bytes();
    model *m = &the_model;
    om_object *d = fill_model_dict(m, 50);
    int clean = 1;
    long failures = 0;
    for (long n = 0;; n++) {
        size_t live = tu_live_bytes();
        om_fail_after(domain, n);
        int r = items_walk(d);
        om_fail_after(domain, -1);
        clean &= r >= 0;
        if (r == 1)
            break;
        failures++;
        clean &= om_last_error() == OM_ENOMEM && tu_live_bytes() == live;
        clean &= dict_matches_model(d, m);
    }
    CHECK(clean && (domain != OM_DOMAIN_OBJ || failures >= 51));

    /* A failed om_next does not advance: the next call yields the same pair. */
    om_object *it = om_dict_items(d);
    om_object *first = om_next(it);
    om_fail_after(OM_DOMAIN_OBJ, 0);
    om_object *failed = om_next(it);
    om_fail_after(OM_DOMAIN_OBJ, -1);
    CHECK(failed == NULL && om_last_error() == OM_ENOMEM);
    om_object *second = om_next(it);
    CHECK(first != NULL && second != NULL && int_val(om_tuple_get(second, 1)) == 1);
    om_xdecref(first);
    om_xdecref(second);
    om_decref(it);
    om_decref(d);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Use of a freed dict ------------------------------------------------- */

static void set_on_freed_dict(void *arg)
{
    (void)arg;
    om_setup_debug_hooks();
    om_object *d = om_dict_new();
    om_decref(d);
    om_dict_set(d, om_none, om_none);
}

static void test_freed_dict(void)
{
    char report[4096];
    int status = check_run_child(set_on_freed_dict, NULL, report, sizeof report);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(strstr(report, "fatal error") != NULL && strstr(report, "om_dict_set") != NULL);
    CHECK(strstr(report, "'dict'") != NULL);
}

int main(int argc, char **argv)
{
    size_t ops = argc > 1 ? strtoull(argv[1], NULL, 0) : OM_TEST_SCALE(1000000);
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 0xd1c7ULL;
    test_basics();
    test_order();
    test_model(ops, seed);
    test_collisions();
    test_rebuild_with_dummies();
    test_mutation_during_iteration();
    test_unhashable();
    test_failing_equal();
    test_mutating_equal();
    test_equal_and_copy();
    test_gc_hooks();
    test_str_keys();
    test_faults_set(OM_DOMAIN_MEM);
    test_faults_set(OM_DOMAIN_OBJ);
    test_faults_copy(OM_DOMAIN_MEM);
    test_faults_copy(OM_DOMAIN_OBJ);
    test_faults_items(OM_DOMAIN_MEM);
    test_faults_items(OM_DOMAIN_OBJ);
    test_freed_dict();
    return check_report();
}
