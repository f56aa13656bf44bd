/*
 * int.c — the int type: a 64-bit signed value, arithmetic that reports
 * overflow instead of wrapping, and the preallocated small ints.
 *
 * Layout (64-bit build):
 *
 *   | ob_refcnt 8 | ob_type 8 | value 8 |   24 B, served from the 32 B class
 *
 * One block per int, no buffer. Invariants: an int never changes its value
 * after om_int_from_i64 returns it; every int whose value lies in
 * OM_SMALL_INT_MIN … OM_SMALL_INT_MAX made through this file is the one
 * static object of small_ints (so equal small ints are identical), which is
 * immortal and never freed. Ints outside that range come from the OBJ
 * domain through omi_object_alloc and are freed by the object core when
 * their count reaches zero (the type has no destroy hook: nothing to drop).
 *
 * Arithmetic uses the compiler's overflow builtins, so a result is either
 * exact or an OM_EOVERFLOW error; floor division and modulo follow Python
 * (round toward minus infinity, remainder with the divisor's sign).
 *
 * Comparisons with a float go through float.c's hooks (om_float_type),
 * which compare an int64 and a double exactly; this file only swaps the
 * operands. The hash is Python's for values below 2^61: the value itself,
 * -1 mapped to -2 (omi_int_hash_value, shared with float.c).
 *
 * Learned from CPython's Objects/longobject.c (small-int cache, the floor
 * division fix-up, hash(-1) == -2); written afresh for fixed 64-bit values.
 */
#include "internal.h"

typedef struct int_object {
    OM_OBJECT_HEAD;
    int64_t value;          /* never changes */
} int_object;

_Static_assert(sizeof(int_object) == 24, "an int is 24 B: the 32 B size class");

static int_object *int_of(om_object *o)
{
    return (int_object *)o;
}

/* ---- Hooks -------------------------------------------------------------- */

int64_t omi_int_hash_value(int64_t v)
{
    return v == -1 ? -2 : v;
}

static int64_t int_hash(om_object *self)
{
    return omi_int_hash_value(int_of(self)->value);
}

/* om_true and om_false count as 1 and 0 in equality, as in Python (their
 * hashes already agree with the ints'). */
static bool bool_value(const om_object *o, int64_t *value)
{
    if (o != om_true && o != om_false)
        return false;
    *value = o == om_true;
    return true;
}

static int int_equal(om_object *self, om_object *other)
{
    int64_t b;
    if (om_is_type(other, &om_int_type))
        return int_of(self)->value == int_of(other)->value;
    if (om_is_type(other, &om_float_type))
        return om_float_type.equal(other, self);
    if (bool_value(other, &b))
        return int_of(self)->value == b;
    return 0;
}

static int int_compare(om_object *self, om_object *other, int *result)
{
    if (om_is_type(other, &om_int_type)) {
        int64_t a = int_of(self)->value, b = int_of(other)->value;
        *result = (a > b) - (a < b);
        return 0;
    }
    if (om_is_type(other, &om_float_type)) {
        int reversed;
        if (om_float_type.compare(other, self, &reversed) != 0)
            return -1;
        *result = -reversed;
        return 0;
    }
    omi_set_error(OM_ETYPE, "om_compare: '<' not supported between 'int' and '%s'",
                  other->ob_type->name);
    return -1;
}

const om_type om_int_type = {
    .name = "int",
    .size = sizeof(int_object),
    .hash = int_hash,
    .equal = int_equal,
    .compare = int_compare,
};

/* ---- Small ints --------------------------------------------------------- */

#define SMALL(v) {{OM_REFCNT_IMMORTAL, &om_int_type}, (v)}
#define SMALL4(v) SMALL(v), SMALL((v) + 1), SMALL((v) + 2), SMALL((v) + 3)
#define SMALL16(v) SMALL4(v), SMALL4((v) + 4), SMALL4((v) + 8), SMALL4((v) + 12)
#define SMALL64(v) SMALL16(v), SMALL16((v) + 16), SMALL16((v) + 32), SMALL16((v) + 48)

/* small_ints[v - OM_SMALL_INT_MIN] has value v. */
static int_object small_ints[] = {
    SMALL(-5), SMALL4(-4),
    SMALL64(0), SMALL64(64), SMALL64(128), SMALL64(192),
    SMALL(256),
};

_Static_assert(sizeof small_ints / sizeof small_ints[0] == OM_SMALL_INT_MAX - OM_SMALL_INT_MIN + 1,
               "one static object per small int");

/* ---- Creation and access ------------------------------------------------ */

om_object *om_int_from_i64(int64_t v)
{
    if (v >= OM_SMALL_INT_MIN && v <= OM_SMALL_INT_MAX)
        return &small_ints[v - OM_SMALL_INT_MIN].ob_head;
    om_object *o = omi_object_alloc(&om_int_type, 0);
    if (o != NULL)
        int_of(o)->value = v;
    return o;
}

int om_int_as_i64(om_object *o, int64_t *out)
{
    if (!omi_check_type(o, &om_int_type, "om_int_as_i64"))
        return -1;
    if (out == NULL) {
        omi_set_error(OM_EINVAL, "om_int_as_i64: out is NULL");
        return -1;
    }
    *out = int_of(o)->value;
    return 0;
}

bool om_int_check(const om_object *o)
{
    return o != NULL && om_is_type(o, &om_int_type);
}

/* ---- Arithmetic --------------------------------------------------------- */

/* Both operands are ints: their values in *a and *b. */
static bool int_operands(om_object *x, om_object *y, int64_t *a, int64_t *b, const char *function)
{
    if (!omi_check_type(x, &om_int_type, function) || !omi_check_type(y, &om_int_type, function))
        return false;
    *a = int_of(x)->value;
    *b = int_of(y)->value;
    return true;
}

static om_object *int_overflow(const char *function, int64_t a, const char *op, int64_t b)
{
    omi_set_error(OM_EOVERFLOW, "%s: %lld %s %lld does not fit in int64", function,
                  (long long)a, op, (long long)b);
    return NULL;
}

static bool divisor_ok(int64_t b, const char *function)
{
    if (b != 0)
        return true;
    omi_set_error(OM_EVALUE, "%s: integer division or modulo by zero", function);
    return false;
}

om_object *om_int_add(om_object *x, om_object *y)
{
    int64_t a, b, r;
    if (!int_operands(x, y, &a, &b, "om_int_add"))
        return NULL;
    if (__builtin_add_overflow(a, b, &r))
        return int_overflow("om_int_add", a, "+", b);
    return om_int_from_i64(r);
}

om_object *om_int_sub(om_object *x, om_object *y)
{
    int64_t a, b, r;
    if (!int_operands(x, y, &a, &b, "om_int_sub"))
        return NULL;
    if (__builtin_sub_overflow(a, b, &r))
        return int_overflow("om_int_sub", a, "-", b);
    return om_int_from_i64(r);
}

om_object *om_int_mul(om_object *x, om_object *y)
{
    int64_t a, b, r;
    if (!int_operands(x, y, &a, &b, "om_int_mul"))
        return NULL;
    if (__builtin_mul_overflow(a, b, &r))
        return int_overflow("om_int_mul", a, "*", b);
    return om_int_from_i64(r);
}

om_object *om_int_floordiv(om_object *x, om_object *y)
{
    int64_t a, b;
    if (!int_operands(x, y, &a, &b, "om_int_floordiv") || !divisor_ok(b, "om_int_floordiv"))
        return NULL;
    if (a == INT64_MIN && b == -1)
        return int_overflow("om_int_floordiv", a, "//", b);
    int64_t q = a / b;
    /* C truncates toward zero; Python floors: one less when the division
     * was inexact and the signs differ. */
    if (a % b != 0 && (a < 0) != (b < 0))
        q--;
    return om_int_from_i64(q);
}

om_object *om_int_mod(om_object *x, om_object *y)
{
    int64_t a, b;
    if (!int_operands(x, y, &a, &b, "om_int_mod") || !divisor_ok(b, "om_int_mod"))
        return NULL;
    /* INT64_MIN % -1 is undefined in C although its value (0) fits. */
    int64_t r = b == -1 ? 0 : a % b;
    if (r != 0 && (r < 0) != (b < 0))
        r += b;
    return om_int_from_i64(r);
}

om_object *om_int_neg(om_object *x)
{
    if (!omi_check_type(x, &om_int_type, "om_int_neg"))
        return NULL;
    int64_t a = int_of(x)->value;
    if (a == INT64_MIN) {
        omi_set_error(OM_EOVERFLOW, "om_int_neg: -(%lld) does not fit in int64", (long long)a);
        return NULL;
    }
    return om_int_from_i64(-a);
}
