/*
 * test-scalars.c — the scalar built-in types: int, float, str, bytes and
 * their iterators: lifecycle, small ints, arithmetic and its errors,
 * numeric hash/equality/ordering across int and float, UTF-8 validation,
 * indexing, interning, iteration, sizes, fault injection at every
 * allocation, and use of a freed object under the debug hooks.
 *
 * Every test takes its leak baseline (tu_live_bytes) at its start, after
 * anything it interns (interned strs live for ever), and checks that the
 * heap is back to it at its end.
 */
#include <math.h>
#include <signal.h>
#include <stdint.h>

#include "check.h"
#include "internal.h"
#include "testutil.h"

static int error_is(om_error code)
{
    return om_last_error() == code;
}

static int message_has(const char *text)
{
    return strstr(om_last_error_message(), text) != NULL;
}

static int64_t int_value(om_object *o)
{
    int64_t v = INT64_MIN + 12345;
    CHECK(om_int_as_i64(o, &v) == 0);
    return v;
}

static int64_t hash_of(om_object *o)
{
    int64_t h = om_hash(o);
    CHECK(h != -1);
    return h;
}

static int compare_of(om_object *a, om_object *b)
{
    int result = 99;
    CHECK(om_compare(a, b, &result) == 0);
    return result;
}

/* ---- int ---------------------------------------------------------------- */

static void test_int_lifecycle(void)
{
    size_t base = tu_live_bytes();
    om_object *o = om_int_from_i64(1000);
    CHECK(o != NULL && om_int_check(o) && !om_float_check(o));
    CHECK(om_refcnt(o) == 1 && !om_is_immortal(o));
    CHECK(int_value(o) == 1000);
    CHECK(strcmp(om_type_name(o), "int") == 0);
    CHECK_EQ_SIZE(tu_live_bytes(), base + 32);
    CHECK_EQ_SIZE(om_sizeof(o), 24);
    om_incref(o);
    CHECK(om_refcnt(o) == 2);
    om_decref(o);
    CHECK(om_refcnt(o) == 1);
    om_decref(o);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_small_ints(void)
{
    size_t base = tu_live_bytes();
    for (int64_t v = OM_SMALL_INT_MIN; v <= OM_SMALL_INT_MAX; v++) {
        om_object *a = om_int_from_i64(v), *b = om_int_from_i64(v);
        CHECK(a == b && om_is_immortal(a) && int_value(a) == v);
        om_decref(a);
        om_decref(b);
        om_decref(a);
    }
    CHECK(om_int_from_i64(-5) != om_int_from_i64(-4));
    CHECK(om_is_immortal(om_int_from_i64(256)));
    CHECK_EQ_SIZE(tu_live_bytes(), base);
    om_object *a = om_int_from_i64(257), *b = om_int_from_i64(257);
    om_object *c = om_int_from_i64(-6);
    CHECK(a != b && !om_is_immortal(a) && !om_is_immortal(c) && int_value(c) == -6);
    CHECK(om_equal(a, b) == 1);
    om_decref(a);
    om_decref(b);
    om_decref(c);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

typedef om_object *(*binary_fn)(om_object *, om_object *);

/* op(a, b) == want, checked and released. */
static void check_binary(binary_fn op, int64_t a, int64_t b, int64_t want)
{
    om_object *x = om_int_from_i64(a), *y = om_int_from_i64(b);
    om_object *r = op(x, y);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(int_value(r) == want);
        om_decref(r);
    }
    om_decref(x);
    om_decref(y);
}

/* op(a, b) fails with `code`. */
static void check_binary_fails(binary_fn op, int64_t a, int64_t b, om_error code)
{
    om_object *x = om_int_from_i64(a), *y = om_int_from_i64(b);
    om_clear_error();
    CHECK(op(x, y) == NULL && error_is(code));
    om_decref(x);
    om_decref(y);
}

static void test_int_arithmetic(void)
{
    size_t base = tu_live_bytes();
    check_binary(om_int_add, 1000000, 2345, 1002345);
    check_binary(om_int_add, INT64_MAX, INT64_MIN, -1);
    check_binary(om_int_sub, -3, 5, -8);
    check_binary(om_int_sub, INT64_MIN + 1, 1, INT64_MIN);
    check_binary(om_int_mul, 3037000499, 3037000499, 9223372030926249001);
    check_binary(om_int_mul, -7, 6, -42);
    check_binary(om_int_floordiv, 7, 2, 3);
    check_binary(om_int_floordiv, -7, 2, -4);
    check_binary(om_int_floordiv, 7, -2, -4);
    check_binary(om_int_floordiv, -7, -2, 3);
    check_binary(om_int_floordiv, -8, 2, -4);
    check_binary(om_int_floordiv, INT64_MIN, 1, INT64_MIN);
    check_binary(om_int_mod, 7, 2, 1);
    check_binary(om_int_mod, -7, 2, 1);
    check_binary(om_int_mod, 7, -2, -1);
    check_binary(om_int_mod, -7, -2, -1);
    check_binary(om_int_mod, -8, 2, 0);
    check_binary(om_int_mod, INT64_MIN, -1, 0);
    check_binary(om_int_mod, INT64_MIN, 7, 6);    /* -(2^63) = 7 * q + 6 */

    check_binary_fails(om_int_add, INT64_MAX, 1, OM_EOVERFLOW);
    CHECK(message_has("om_int_add"));
    check_binary_fails(om_int_sub, INT64_MIN, 1, OM_EOVERFLOW);
    check_binary_fails(om_int_mul, INT64_MAX / 2 + 1, 2, OM_EOVERFLOW);
    check_binary_fails(om_int_mul, INT64_MIN, -1, OM_EOVERFLOW);
    check_binary_fails(om_int_floordiv, INT64_MIN, -1, OM_EOVERFLOW);
    check_binary_fails(om_int_floordiv, 5, 0, OM_EVALUE);
    CHECK(message_has("by zero"));
    check_binary_fails(om_int_mod, 5, 0, OM_EVALUE);

    om_object *m = om_int_from_i64(INT64_MIN), *x = om_int_from_i64(12345);
    om_object *neg = om_int_neg(x);
    CHECK(neg != NULL && int_value(neg) == -12345);
    om_clear_error();
    CHECK(om_int_neg(m) == NULL && error_is(OM_EOVERFLOW));

    om_object *f = om_float_from_double(1.5);
    om_clear_error();
    CHECK(om_int_add(x, f) == NULL && error_is(OM_ETYPE) && message_has("'float'"));
    CHECK(om_int_neg(f) == NULL && error_is(OM_ETYPE));
    CHECK(om_int_add(NULL, x) == NULL && error_is(OM_EINVAL));
    int64_t out = 77;
    CHECK(om_int_as_i64(f, &out) == -1 && error_is(OM_ETYPE) && out == 77);
    CHECK(om_int_as_i64(x, NULL) == -1 && error_is(OM_EINVAL));
    CHECK(om_int_as_i64(om_true, &out) == -1 && error_is(OM_ETYPE));
    CHECK(!om_int_check(NULL) && !om_int_check(om_true) && !om_int_check(f));
    om_decref(f);
    om_decref(neg);
    om_decref(m);
    om_decref(x);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- float and numbers together ------------------------------------------ */

static void test_float_lifecycle(void)
{
    size_t base = tu_live_bytes();
    om_object *f = om_float_from_double(2.5);
    CHECK(f != NULL && om_float_check(f) && !om_int_check(f));
    CHECK(om_refcnt(f) == 1 && strcmp(om_type_name(f), "float") == 0);
    CHECK_EQ_SIZE(om_sizeof(f), 24);
    CHECK_EQ_SIZE(tu_live_bytes(), base + 32);
    double d = 0;
    CHECK(om_float_as_double(f, &d) == 0 && d == 2.5);
    om_object *i = om_int_from_i64(-300);
    CHECK(om_float_as_double(i, &d) == 0 && d == -300.0);
    om_object *s = om_str_from_cstr("2.5");
    d = 9;
    om_clear_error();
    CHECK(om_float_as_double(s, &d) == -1 && error_is(OM_ETYPE) && d == 9);
    CHECK(om_float_as_double(f, NULL) == -1 && error_is(OM_EINVAL));
    CHECK(om_float_as_double(NULL, &d) == -1 && error_is(OM_EINVAL));
    om_incref(f);
    om_decref(f);
    om_decref(f);
    om_decref(i);
    om_decref(s);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* An int and a float that are equal: om_equal both ways, same hash, order 0. */
static void check_same_number(int64_t v, double d)
{
    om_object *i = om_int_from_i64(v), *f = om_float_from_double(d);
    CHECK(om_equal(i, f) == 1 && om_equal(f, i) == 1);
    CHECK(hash_of(i) == hash_of(f));
    CHECK(compare_of(i, f) == 0 && compare_of(f, i) == 0);
    om_decref(i);
    om_decref(f);
}

/* An int and a float with sign(v - d) == want. */
static void check_order(int64_t v, double d, int want)
{
    om_object *i = om_int_from_i64(v), *f = om_float_from_double(d);
    CHECK(om_equal(i, f) == 0 && om_equal(f, i) == 0);
    CHECK(compare_of(i, f) == want);
    CHECK(compare_of(f, i) == -want);
    om_decref(i);
    om_decref(f);
}

static void test_numbers_together(void)
{
    size_t base = tu_live_bytes();
    check_same_number(1, 1.0);
    check_same_number(0, -0.0);
    check_same_number(-1, -1.0);
    check_same_number(1000000, 1e6);
    check_same_number(INT64_MIN, -9223372036854775808.0);
    check_same_number((int64_t)1 << 53, 9007199254740992.0);
    check_order(0, 0.5, -1);
    check_order(1, 0.5, 1);
    check_order(-1, -0.5, -1);
    check_order(-1, -1.5, 1);
    check_order(((int64_t)1 << 53) + 1, 9007199254740992.0, 1);  /* rounds to 2^53 as a double */
    check_order(INT64_MAX, 9223372036854775808.0, -1);           /* (double)INT64_MAX == 2^63 */
    check_order(INT64_MIN, -9223372036854777856.0, 1);
    check_order(INT64_MAX, INFINITY, -1);
    check_order(INT64_MIN, -INFINITY, 1);

    om_object *one = om_int_from_i64(1), *m1 = om_int_from_i64(-1);
    CHECK(hash_of(one) == 1 && hash_of(m1) == -2);
    CHECK(om_equal(one, om_true) == 1 && om_equal(om_true, one) == 1);
    CHECK(om_equal(om_int_from_i64(0), om_false) == 1 && om_equal(one, om_false) == 0);
    CHECK(hash_of(om_true) == hash_of(one));

    om_object *half = om_float_from_double(0.5), *half2 = om_float_from_double(0.5);
    om_object *fone = om_float_from_double(1.0);
    CHECK(om_equal(half, half2) == 1 && hash_of(half) == hash_of(half2));
    CHECK(om_equal(fone, om_true) == 1 && om_equal(half, om_true) == 0);
    CHECK(compare_of(half, fone) < 0 && compare_of(fone, half) > 0);

    om_object *nan = om_float_from_double(NAN), *nan2 = om_float_from_double(NAN);
    CHECK(om_equal(nan, nan) == 1);       /* identity first, as Python's containers */
    CHECK(om_equal(nan, nan2) == 0);
    int r = 5;
    om_clear_error();
    CHECK(om_compare(nan, half, &r) == -1 && error_is(OM_EVALUE) && message_has("NaN"));
    CHECK(om_compare(half, nan, &r) == -1 && error_is(OM_EVALUE));
    CHECK(om_compare(one, nan, &r) == -1 && error_is(OM_EVALUE));
    CHECK(om_compare(nan, one, &r) == -1 && error_is(OM_EVALUE));
    CHECK(om_equal(one, nan) == 0 && om_hash(nan) != -1);
    om_object *s = om_str_from_cstr("1");
    CHECK(om_equal(one, s) == 0 && om_equal(fone, s) == 0);
    CHECK(om_compare(one, s, &r) == -1 && error_is(OM_ETYPE));
    CHECK(om_compare(fone, s, &r) == -1 && error_is(OM_ETYPE));
    CHECK(om_compare(one, om_true, &r) == -1 && error_is(OM_ETYPE));
    om_decref(s);
    om_decref(nan);
    om_decref(nan2);
    om_decref(half);
    om_decref(half2);
    om_decref(fone);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- str ---------------------------------------------------------------- */

static void test_str_lifecycle(void)
{
    size_t base = tu_live_bytes();
    om_object *s = om_str_from_cstr("hello");
    CHECK(s != NULL && om_str_check(s) && om_refcnt(s) == 1);
    CHECK(strcmp(om_type_name(s), "str") == 0);
    CHECK(om_str_length(s) == 5 && om_str_size_bytes(s) == 5);
    CHECK(strcmp(om_str_utf8(s), "hello") == 0);
    CHECK(om_str_equal_cstr(s, "hello") == 1 && om_str_equal_cstr(s, "hell") == 0);
    CHECK(om_str_equal_cstr(s, "hello!") == 0);
    CHECK_EQ_SIZE(om_sizeof(s), 40 + 6);
    CHECK_EQ_SIZE(tu_live_bytes(), base + 48);
    om_incref(s);
    CHECK(om_refcnt(s) == 2);
    om_decref(s);
    om_decref(s);
    CHECK_EQ_SIZE(tu_live_bytes(), base);

    om_object *e = om_str_from_utf8(NULL, 0);
    CHECK(e != NULL && om_str_length(e) == 0 && strcmp(om_str_utf8(e), "") == 0);
    CHECK_EQ_SIZE(om_sizeof(e), 41);
    om_clear_error();
    CHECK(om_str_get(e, 0) == NULL && error_is(OM_EINDEX));
    om_decref(e);

    om_object *nul = om_str_from_utf8("a\0b", 3);
    CHECK(nul != NULL && om_str_length(nul) == 3 && om_str_size_bytes(nul) == 3);
    om_decref(nul);

    om_clear_error();
    CHECK(om_str_from_cstr(NULL) == NULL && error_is(OM_EINVAL));
    CHECK(om_str_from_utf8(NULL, 3) == NULL && error_is(OM_EINVAL));
    om_object *i = om_int_from_i64(3);
    CHECK(om_str_length(i) == -1 && error_is(OM_ETYPE) && message_has("'str'"));
    CHECK(om_str_utf8(i) == NULL && om_str_size_bytes(i) == -1);
    CHECK(om_str_equal_cstr(i, "3") == -1 && om_str_get(i, 0) == NULL);
    CHECK(!om_str_check(i) && !om_str_check(NULL));
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

typedef struct bad_utf8 {
    const char *bytes;
    size_t size;
    size_t offset;          /* of the first invalid sequence */
    const char *why;        /* a part of the message */
} bad_utf8;

static const bad_utf8 bad_utf8_cases[] = {
    {"\xC0\x80", 2, 0, "overlong"},
    {"ab\xC1\xBF", 4, 2, "overlong"},
    {"\xE0\x80\xAF", 3, 0, "overlong"},
    {"\xE0\x9F\xBF", 3, 0, "overlong"},
    {"\xF0\x80\x80\xAF", 4, 0, "overlong"},
    {"\xF0\x8F\xBF\xBF", 4, 0, "overlong"},
    {"x\xED\xA0\x80", 4, 1, "surrogate"},
    {"\xED\xBF\xBF", 3, 0, "surrogate"},
    {"a\xE2\x82", 3, 1, "truncated"},
    {"\xF0\x9F\x98", 3, 0, "truncated"},
    {"\xC3", 1, 0, "truncated"},
    {"\xF4\x90\x80\x80", 4, 0, "above U+10FFFF"},
    {"\xF5\x80\x80\x80", 4, 0, "above U+10FFFF"},
    {"\xF7\xBF\xBF\xBF", 4, 0, "above U+10FFFF"},
    {"\x80", 1, 0, "continuation"},
    {"\xC3\xA9\xA9", 3, 2, "continuation"},
    {"\xC3\x28", 2, 0, "invalid continuation"},
    {"\xE2\x28\xA1", 3, 0, "invalid continuation"},
    {"\xFF", 1, 0, "invalid byte"},
    {"0123456789abc\xFE", 14, 13, "invalid byte"},
    {"0123456789abcdef\xE2\x82", 18, 16, "truncated"},
};

static void test_utf8_validation(void)
{
    size_t base = tu_live_bytes();
    for (size_t k = 0; k < sizeof bad_utf8_cases / sizeof bad_utf8_cases[0]; k++) {
        const bad_utf8 *c = &bad_utf8_cases[k];
        char where[64];
        snprintf(where, sizeof where, "byte offset %zu ", c->offset);
        om_clear_error();
        CHECK(om_str_from_utf8(c->bytes, c->size) == NULL);
        CHECK(error_is(OM_EVALUE) && message_has(where) && message_has(c->why));
        if (!message_has(where) || !message_has(c->why))
            fprintf(stderr, "  case %zu: %s\n", k, om_last_error_message());
    }
    static const struct {
        const char *bytes;
        ptrdiff_t length;
    } good[] = {
        {"\x7F", 1},
        {"\xC2\x80", 1},               /* U+0080 */
        {"\xDF\xBF", 1},               /* U+07FF */
        {"\xE0\xA0\x80", 1},           /* U+0800 */
        {"\xED\x9F\xBF", 1},           /* U+D7FF */
        {"\xEE\x80\x80", 1},           /* U+E000 */
        {"\xEF\xBF\xBF", 1},           /* U+FFFF */
        {"\xF0\x90\x80\x80", 1},       /* U+10000 */
        {"\xF4\x8F\xBF\xBF", 1},       /* U+10FFFF */
        {"h\xC3\xA9llo \xE2\x86\x92 \xF0\x9F\x98\x80!", 10},
        {"abcdefgh\xC3\xA9" "abcdefghijklmnop", 25},
    };
    for (size_t k = 0; k < sizeof good / sizeof good[0]; k++) {
        om_object *s = om_str_from_cstr(good[k].bytes);
        CHECK(s != NULL && om_str_length(s) == good[k].length);
        CHECK(s != NULL && om_str_size_bytes(s) == (ptrdiff_t)strlen(good[k].bytes));
        om_xdecref(s);
    }
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* om_str_get(s, index) is the str `want`. */
static void check_get(om_object *s, ptrdiff_t index, const char *want)
{
    om_object *c = om_str_get(s, index);
    CHECK(c != NULL && om_str_equal_cstr(c, want) == 1 && om_str_length(c) == 1);
    om_xdecref(c);
}

static void test_str_indexing(void)
{
    size_t base = tu_live_bytes();
    static const char *const chars[] = {"h", "\xC3\xA9", "l", "\xE2\x86\x92", "\xF0\x9F\x98\x80",
                                        "!"};
    om_object *s = om_str_from_cstr("h\xC3\xA9l\xE2\x86\x92\xF0\x9F\x98\x80!");
    CHECK(om_str_length(s) == 6 && om_str_size_bytes(s) == 12);
    for (ptrdiff_t i = 0; i < 6; i++) {
        check_get(s, i, chars[i]);
        check_get(s, i - 6, chars[i]);
    }
    om_clear_error();
    CHECK(om_str_get(s, 6) == NULL && error_is(OM_EINDEX) && message_has("index 6"));
    CHECK(om_str_get(s, -7) == NULL && error_is(OM_EINDEX));
    om_object *a = om_str_from_cstr("abcdefghij");
    check_get(a, 0, "a");
    check_get(a, 9, "j");
    check_get(a, -1, "j");
    check_get(a, -10, "a");
    CHECK(om_str_get(a, 10) == NULL && error_is(OM_EINDEX));
    CHECK(om_str_get(a, PTRDIFF_MIN) == NULL && error_is(OM_EINDEX));

    om_object *c = om_str_concat(a, s);
    CHECK(c != NULL && om_str_length(c) == 16 && om_str_size_bytes(c) == 22);
    check_get(c, 10, "h");
    check_get(c, 14, "\xF0\x9F\x98\x80");
    CHECK(strcmp(om_str_utf8(c), "abcdefghijh\xC3\xA9l\xE2\x86\x92\xF0\x9F\x98\x80!") == 0);
    om_object *i = om_int_from_i64(1);
    CHECK(om_str_concat(a, i) == NULL && error_is(OM_ETYPE));
    CHECK(om_str_concat(i, a) == NULL && error_is(OM_ETYPE));
    om_decref(c);
    om_decref(a);
    om_decref(s);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_str_hash_order(void)
{
    size_t base = tu_live_bytes();
    om_object *a = om_str_from_cstr("dictionary key");
    om_object *b = om_str_from_cstr("dictionary key");
    om_object *c = om_str_from_cstr("dictionary kez");
    CHECK(a != b && om_equal(a, b) == 1 && om_equal(a, c) == 0);
    CHECK(hash_of(a) == hash_of(b) && hash_of(a) == hash_of(a));
    CHECK(hash_of(a) != hash_of(c));
    CHECK(compare_of(a, c) < 0 && compare_of(c, a) > 0 && compare_of(a, b) == 0);
    om_object *ab = om_str_from_cstr("ab"), *abc = om_str_from_cstr("abc");
    om_object *z = om_str_from_cstr("z"), *e_acute = om_str_from_cstr("\xC3\xA9");
    om_object *emoji = om_str_from_cstr("\xF0\x9F\x98\x80"), *ffff = om_str_from_cstr("\xEF\xBF\xBF");
    CHECK(compare_of(ab, abc) < 0 && compare_of(abc, ab) > 0);
    CHECK(compare_of(z, e_acute) < 0);         /* U+007A < U+00E9 */
    CHECK(compare_of(ffff, emoji) < 0);        /* U+FFFF < U+1F600 */
    /* Hashes spread: 10,000 short keys hit distinct values in the low 16 bits
     * for most of them. */
    static unsigned char seen[1 << 16];
    size_t distinct = 0;
    for (int k = 0; k < 10000; k++) {
        char text[16];
        snprintf(text, sizeof text, "key%d", k);
        om_object *s = om_str_from_cstr(text);
        unsigned low = (unsigned)(hash_of(s) & 0xffff);
        distinct += !seen[low];
        seen[low] = 1;
        om_decref(s);
    }
    CHECK(distinct > 8500);     /* ideal: 65536 * (1 - e^(-10000/65536)) ≈ 9260 */
    om_object *one = om_int_from_i64(1);
    int r;
    om_clear_error();
    CHECK(om_compare(a, one, &r) == -1 && error_is(OM_ETYPE));
    CHECK(om_equal(a, one) == 0);
    om_object *objects[] = {a, b, c, ab, abc, z, e_acute, emoji, ffff};
    for (size_t k = 0; k < sizeof objects / sizeof objects[0]; k++)
        om_decref(objects[k]);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_intern(void)
{
    om_object *spam = om_str_intern_cstr("spam");
    CHECK(spam != NULL && om_is_immortal(spam) && om_str_equal_cstr(spam, "spam") == 1);
    om_object *eggs = om_str_from_cstr("eggs, interned by object");
    om_object *eggs_canonical = om_str_intern(eggs);
    CHECK(eggs_canonical == eggs && om_is_immortal(eggs));
    /* Enough texts to grow the table a few times. */
    om_object *keys[500];
    for (int k = 0; k < 500; k++) {
        char text[32];
        snprintf(text, sizeof text, "interned key %d", k);
        keys[k] = om_str_intern_cstr(text);
        CHECK(keys[k] != NULL && om_is_immortal(keys[k]));
    }

    size_t base = tu_live_bytes();
    CHECK(om_str_intern_cstr("spam") == spam);
    om_object *s = om_str_from_cstr("spam");
    om_object *t = om_str_intern(s);
    CHECK(t == spam && s != spam && !om_is_immortal(s));
    om_decref(t);
    om_decref(s);
    CHECK(om_str_intern_cstr("eggs, interned by object") == eggs);
    for (int k = 0; k < 500; k++) {
        char text[32];
        snprintf(text, sizeof text, "interned key %d", k);
        CHECK(om_str_intern_cstr(text) == keys[k]);
        om_object *fresh = om_str_from_cstr(text);
        CHECK(om_str_intern(fresh) == keys[k]);
        om_decref(fresh);
    }
    CHECK(om_str_intern(spam) == spam);
    om_object *i = om_int_from_i64(4);
    om_clear_error();
    CHECK(om_str_intern(i) == NULL && error_is(OM_ETYPE));
    CHECK(om_str_intern_cstr(NULL) == NULL && error_is(OM_EINVAL));
    CHECK(om_str_intern_cstr("\xC0\x80") == NULL && error_is(OM_EVALUE));
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Iterators ------------------------------------------------------------ */

static void test_str_iterator(void)
{
    size_t base = tu_live_bytes();
    static const char *const chars[] = {"a", "\xC3\xA9", "\xF0\x9F\x98\x80", "z"};
    om_object *s = om_str_from_cstr("a\xC3\xA9\xF0\x9F\x98\x80z");
    om_object *it = om_iter(s);
    CHECK(it != NULL && om_type_of(it) == &om_str_iterator_type);
    CHECK(omi_gc_is_tracked(it) && om_refcnt(s) == 2);
    CHECK_EQ_SIZE(om_sizeof(it), 16 + 32);
    om_object *again = om_iter(it);
    CHECK(again == it && om_refcnt(it) == 2);
    om_decref(again);
    for (int k = 0; k < 4; k++) {
        om_object *c = om_next(it);
        CHECK(c != NULL && om_str_equal_cstr(c, chars[k]) == 1);
        om_xdecref(c);
    }
    om_object *end = om_next(it);
    CHECK(end == NULL && error_is(OM_OK));
    CHECK(om_refcnt(s) == 1);                  /* the exhausted iterator let go */
    CHECK(om_next(it) == NULL && error_is(OM_OK));
    om_decref(it);

    om_object *half = om_iter(s);              /* dropped half-way */
    om_object *first = om_next(half);
    om_decref(first);
    om_decref(half);
    CHECK(om_refcnt(s) == 1);
    om_decref(s);

    om_object *i = om_int_from_i64(5);
    om_clear_error();
    CHECK(om_iter(i) == NULL && error_is(OM_ETYPE));
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- bytes --------------------------------------------------------------- */

static void test_bytes(void)
{
    size_t base = tu_live_bytes();
    static const unsigned char raw[] = {0x00, 0xff, 'a', 0x80, 0x00, 7};
    om_object *b = om_bytes_from(raw, sizeof raw);
    CHECK(b != NULL && om_bytes_check(b) && !om_str_check(b) && om_refcnt(b) == 1);
    CHECK(strcmp(om_type_name(b), "bytes") == 0);
    CHECK(om_bytes_size(b) == 6 && memcmp(om_bytes_data(b), raw, 6) == 0);
    CHECK(om_bytes_data(b)[6] == 0);
    CHECK_EQ_SIZE(om_sizeof(b), 32 + 7);
    CHECK_EQ_SIZE(tu_live_bytes(), base + 48);
    for (ptrdiff_t i = 0; i < 6; i++) {
        om_object *v = om_bytes_get(b, i), *w = om_bytes_get(b, i - 6);
        CHECK(v != NULL && v == w && int_value(v) == raw[i] && om_is_immortal(v));
    }
    om_clear_error();
    CHECK(om_bytes_get(b, 6) == NULL && error_is(OM_EINDEX) && message_has("index 6"));
    CHECK(om_bytes_get(b, -7) == NULL && error_is(OM_EINDEX));

    om_object *same = om_bytes_from(raw, sizeof raw), *shorter = om_bytes_from(raw, 5);
    om_object *text = om_bytes_from("abc", 3), *str = om_str_from_cstr("abc");
    CHECK(om_equal(b, same) == 1 && hash_of(b) == hash_of(same) && compare_of(b, same) == 0);
    CHECK(om_equal(b, shorter) == 0 && compare_of(shorter, b) < 0 && compare_of(b, shorter) > 0);
    CHECK(compare_of(b, text) < 0);            /* 0x00 < 'a' */
    CHECK(om_equal(text, str) == 0 && om_equal(str, text) == 0);
    int r;
    CHECK(om_compare(text, str, &r) == -1 && error_is(OM_ETYPE));
    CHECK(om_compare(str, text, &r) == -1 && error_is(OM_ETYPE));

    om_object *ab = om_bytes_concat(text, b);
    CHECK(ab != NULL && om_bytes_size(ab) == 9 && memcmp(om_bytes_data(ab), "abc", 3) == 0);
    CHECK(ab != NULL && memcmp(om_bytes_data(ab) + 3, raw, 6) == 0 && om_bytes_data(ab)[9] == 0);
    CHECK(om_bytes_concat(text, str) == NULL && error_is(OM_ETYPE));
    CHECK(om_bytes_data(str) == NULL && om_bytes_size(str) == -1 && error_is(OM_ETYPE));
    CHECK(om_bytes_get(str, 0) == NULL && error_is(OM_ETYPE));
    CHECK(om_bytes_from(NULL, 1) == NULL && error_is(OM_EINVAL));
    CHECK(!om_bytes_check(NULL) && !om_bytes_check(str));

    om_object *empty = om_bytes_from(NULL, 0);
    CHECK(empty != NULL && om_bytes_size(empty) == 0 && om_bytes_data(empty)[0] == 0);
    CHECK_EQ_SIZE(om_sizeof(empty), 33);
    CHECK(compare_of(empty, text) < 0 && om_hash(empty) != -1);

    om_object *objects[] = {b, same, shorter, text, str, ab, empty};
    for (size_t k = 0; k < sizeof objects / sizeof objects[0]; k++)
        om_decref(objects[k]);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static void test_bytes_iterator(void)
{
    size_t base = tu_live_bytes();
    om_object *b = om_bytes_from("\x01\xfez", 3);
    om_object *it = om_iter(b);
    CHECK(it != NULL && om_type_of(it) == &om_bytes_iterator_type);
    CHECK(omi_gc_is_tracked(it) && om_refcnt(b) == 2 && om_iter(it) == it);
    om_decref(it);
    CHECK_EQ_SIZE(om_sizeof(it), 16 + 32);
    static const int64_t want[] = {1, 0xfe, 'z'};
    for (int k = 0; k < 3; k++) {
        om_object *v = om_next(it);
        CHECK(v != NULL && int_value(v) == want[k]);
    }
    CHECK(om_next(it) == NULL && error_is(OM_OK) && om_refcnt(b) == 1);
    CHECK(om_next(it) == NULL && error_is(OM_OK));
    om_decref(it);
    om_decref(b);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* ---- Fault injection ------------------------------------------------------- */

typedef om_object *(*make_fn)(void *arg);

/* make(arg) under fault injection in `domain`: the n-th allocation fails,
 * n = 0, 1, … until make succeeds; every failure is NULL with OM_ENOMEM
 * and leaves the heap as it was. Returns make's successful result. */
static om_object *fault_loop(om_domain domain, make_fn make, void *arg, const char *what)
{
    size_t base = tu_live_bytes();
    for (long n = 0; n < 64; n++) {
        om_clear_error();
        CHECK(om_fail_after(domain, n) == 0);
        om_object *o = make(arg);
        om_fail_after(domain, -1);
        if (o != NULL)
            return o;
        CHECK(error_is(OM_ENOMEM));
        CHECK_EQ_SIZE(tu_live_bytes(), base);
    }
    fprintf(stderr, "fault_loop: %s never succeeded\n", what);
    CHECK(0);
    return NULL;
}

/* fault_loop of a make whose result is released at once. */
static void fault_check(om_domain domain, make_fn make, void *arg, const char *what)
{
    size_t base = tu_live_bytes();
    om_object *o = fault_loop(domain, make, arg, what);
    om_xdecref(o);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static om_object *make_int(void *arg)
{
    (void)arg;
    return om_int_from_i64(1 << 20);
}

static om_object *make_float(void *arg)
{
    (void)arg;
    return om_float_from_double(3.25);
}

static om_object *make_str(void *arg)
{
    return om_str_from_cstr(arg);
}

static om_object *make_int_sum(void *arg)
{
    om_object *a = om_int_from_i64(INT64_MAX - 5);
    om_object *b = om_int_from_i64(5);
    om_object *sum = a != NULL ? om_int_add(a, b) : NULL;
    om_xdecref(a);
    om_decref(b);
    (void)arg;
    return sum;
}

static om_object *make_concat(void *arg)
{
    return om_str_concat(((om_object **)arg)[0], ((om_object **)arg)[1]);
}

static om_object *make_get(void *arg)
{
    return om_str_get(arg, -1);
}

static om_object *make_iter(void *arg)
{
    return om_iter(arg);
}

static om_object *make_next(void *arg)
{
    return om_next(arg);
}

static om_object *make_intern_cstr(void *arg)
{
    return om_str_intern_cstr(arg);
}

static void test_faults_numbers_and_str(void)
{
    size_t base = tu_live_bytes();
    fault_check(OM_DOMAIN_OBJ, make_int, NULL, "om_int_from_i64");
    fault_check(OM_DOMAIN_OBJ, make_int_sum, NULL, "om_int_add");
    fault_check(OM_DOMAIN_OBJ, make_float, NULL, "om_float_from_double");
    fault_check(OM_DOMAIN_OBJ, make_str, "h\xC3\xA9llo", "om_str_from_cstr");
    om_object *pair[2] = {om_str_from_cstr("left "), om_str_from_cstr("right \xE2\x86\x92")};
    fault_check(OM_DOMAIN_OBJ, make_concat, pair, "om_str_concat");
    fault_check(OM_DOMAIN_OBJ, make_get, pair[1], "om_str_get");
    fault_check(OM_DOMAIN_OBJ, make_iter, pair[1], "om_iter(str)");
    om_object *it = om_iter(pair[1]);
    fault_check(OM_DOMAIN_OBJ, make_next, it, "om_next(str_iterator)");
    om_object *second = om_next(it);
    CHECK(second != NULL && om_str_equal_cstr(second, "i") == 1);   /* no step lost */
    om_xdecref(second);
    om_decref(it);
    om_decref(pair[0]);
    om_decref(pair[1]);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

static om_object *make_bytes(void *arg)
{
    return om_bytes_from(arg, strlen(arg));
}

static om_object *make_bytes_concat(void *arg)
{
    return om_bytes_concat(((om_object **)arg)[0], ((om_object **)arg)[1]);
}

static void test_faults_bytes(void)
{
    size_t base = tu_live_bytes();
    fault_check(OM_DOMAIN_OBJ, make_bytes, "some bytes", "om_bytes_from");
    om_object *pair[2] = {om_bytes_from("ab", 2), om_bytes_from("\0cd", 3)};
    fault_check(OM_DOMAIN_OBJ, make_bytes_concat, pair, "om_bytes_concat");
    fault_check(OM_DOMAIN_OBJ, make_iter, pair[1], "om_iter(bytes)");
    om_decref(pair[0]);
    om_decref(pair[1]);
    CHECK_EQ_SIZE(tu_live_bytes(), base);
}

/* Interning under faults: an interned str stays, so each success moves the
 * baseline by its block; the RAW domain (the table) is failed too, with
 * enough fresh texts that the table has to grow under a failing RAW. */
static void test_faults_intern(void)
{
    for (int k = 0; k < 200; k++) {
        char text[32];
        snprintf(text, sizeof text, "fault key %d", k);
        om_domain domain = k % 2 ? OM_DOMAIN_RAW : OM_DOMAIN_OBJ;
        om_object *s = fault_loop(domain, make_intern_cstr, text, "om_str_intern_cstr");
        CHECK(s != NULL && om_is_immortal(s) && om_str_intern_cstr(text) == s);
    }
    long raw_failed = om_fail_count(OM_DOMAIN_RAW);
    for (int k = 0; k < 5000 && om_fail_count(OM_DOMAIN_RAW) == raw_failed; k++) {
        char text[32];
        snprintf(text, sizeof text, "fault object key %d", k);
        om_object *s = om_str_from_cstr(text);
        size_t base = tu_live_bytes();
        om_object *t = NULL;
        for (long n = 0; t == NULL && n < 8; n++) {
            om_clear_error();
            om_fail_after(OM_DOMAIN_RAW, n);
            t = om_str_intern(s);
            om_fail_after(OM_DOMAIN_RAW, -1);
            CHECK(t != NULL || (error_is(OM_ENOMEM) && !om_is_immortal(s)));
            CHECK_EQ_SIZE(tu_live_bytes(), base);
        }
        CHECK(t == s && om_is_immortal(s));
    }
    CHECK(om_fail_count(OM_DOMAIN_RAW) > raw_failed);   /* the table grew under a failure */
}

/* ---- Use of a freed object -------------------------------------------------- */

static void str_length_after_free(void *arg)
{
    (void)arg;
    om_setup_debug_hooks();
    om_object *s = om_str_from_cstr("soon gone");
    om_decref(s);
    ptrdiff_t n = om_str_length(s);
    fprintf(stderr, "not reached: %td\n", n);
}

static void bytes_size_after_free(void *arg)
{
    (void)arg;
    om_setup_debug_hooks();
    om_object *b = om_bytes_from("gone", 4);
    om_decref(b);
    ptrdiff_t n = om_bytes_size(b);
    fprintf(stderr, "not reached: %td\n", n);
}

static void int_decref_after_free(void *arg)
{
    (void)arg;
    om_setup_debug_hooks();
    om_object *i = om_int_from_i64(123456);
    om_decref(i);
    om_decref(i);
    fprintf(stderr, "not reached\n");
}

/* fn aborts with one report that names `function` and the type `name`. */
static void check_dead_use(void (*fn)(void *), const char *function, const char *name)
{
    char buf[4096];
    int status = check_run_child(fn, NULL, buf, sizeof buf);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(strstr(buf, function) != NULL && strstr(buf, name) != NULL);
    CHECK(strstr(buf, "not reached") == NULL);
    if (strstr(buf, function) == NULL || strstr(buf, name) == NULL)
        fprintf(stderr, "  child said: %s\n", buf);
}

static void test_use_after_free(void)
{
    check_dead_use(str_length_after_free, "om_str_length", "'str'");
    check_dead_use(bytes_size_after_free, "om_bytes_size", "'bytes'");
    check_dead_use(int_decref_after_free, "om_decref", "'int'");
}

int main(void)
{
    test_int_lifecycle();
    test_small_ints();
    test_int_arithmetic();
    test_float_lifecycle();
    test_numbers_together();
    test_str_lifecycle();
    test_utf8_validation();
    test_str_indexing();
    test_str_hash_order();
    test_intern();
    test_str_iterator();
    test_bytes();
    test_bytes_iterator();
    test_faults_numbers_and_str();
    test_faults_bytes();
    test_faults_intern();
    test_use_after_free();
    return check_report();
}
