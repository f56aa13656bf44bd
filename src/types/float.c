/*
 * float.c — the float type: a C double, and the exact comparison of
 * numbers across int and float.
 *
 * Layout (64-bit build):
 *
 *   | ob_refcnt 8 | ob_type 8 | value 8 |   24 B, served from the 32 B class
 *
 * A float never changes its value. The type has no destroy hook.
 *
 * Mixed comparison: an int64 cannot always be converted to a double
 * without rounding (2^53 + 1 becomes 2^53), so a float d and an int v are
 * compared without converting v: a d outside [-2^63, 2^63) is beyond every
 * int64; otherwise trunc(d) is an exact int64 t, and v against t decides,
 * unless v == t, when the fraction d - t does. int.c swaps its operands
 * and calls these hooks through om_float_type, so the logic lives here only.
 *
 * Hash: equal numbers hash equal. A float whose value is an integer in
 * int64 range hashes as that int (omi_int_hash_value; -0.0 as 0); any
 * other float (fractions, infinities, NaN, huge values) hashes a mix of its
 * bits, which no int can equal. NaN compares unequal to everything and
 * om_compare with a NaN fails with OM_EVALUE (see objmem/scalars.h).
 *
 * Learned from CPython's Objects/floatobject.c (float_richcompare's exact
 * int comparison, float_hash agreeing with int's); written afresh.
 */
#include <math.h>
#include <string.h>

#include "internal.h"

typedef struct float_object {
    OM_OBJECT_HEAD;
    double value;           /* never changes */
} float_object;

_Static_assert(sizeof(float_object) == 24, "a float is 24 B: the 32 B size class");

/* 2^63 as a double: int64 values lie in [-TWO_63, TWO_63). */
#define TWO_63 9223372036854775808.0

static double float_value(const om_object *o)
{
    return ((const float_object *)o)->value;
}

/* d as an int64 when d is an integer in int64 range (without libm). */
static bool float_as_exact_i64(double d, int64_t *out)
{
    if (!(d >= -TWO_63 && d < TWO_63))
        return false;
    int64_t v = (int64_t)d;     /* trunc(d), exact in this range */
    if ((double)v != d)
        return false;
    *out = v;
    return true;
}

/* The sign of d - v, computed exactly; d is not NaN. */
static int compare_double_i64(double d, int64_t v)
{
    if (d >= TWO_63)
        return 1;
    if (d < -TWO_63)
        return -1;
    int64_t t = (int64_t)d;     /* trunc(d), exact in this range */
    if (t != v)
        return t < v ? -1 : 1;
    double fraction = d - (double)t;
    return (fraction > 0) - (fraction < 0);
}

/* ---- Hooks -------------------------------------------------------------- */

static int64_t float_hash(om_object *self)
{
    double d = float_value(self);
    int64_t v;
    if (float_as_exact_i64(d, &v))
        return omi_int_hash_value(v);
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    /* A murmur3-style finaliser: every bit of the double moves the hash. */
    bits ^= bits >> 33;
    bits *= 0xff51afd7ed558ccdULL;
    bits ^= bits >> 33;
    int64_t h = (int64_t)bits;
    return h == -1 ? -2 : h;
}

/* The numeric value of an int, om_true or om_false. */
static bool integer_value(om_object *o, int64_t *v)
{
    if (om_is_type(o, &om_int_type))
        return om_int_as_i64(o, v) == 0;
    if (o == om_true || o == om_false) {
        *v = o == om_true;
        return true;
    }
    return false;
}

static int float_equal(om_object *self, om_object *other)
{
    double d = float_value(self);
    int64_t v;
    if (om_is_type(other, &om_float_type))
        return d == float_value(other);
    if (integer_value(other, &v))
        return !isnan(d) && compare_double_i64(d, v) == 0;
    return 0;
}

static int nan_unordered(void)
{
    omi_set_error(OM_EVALUE, "om_compare: NaN is unordered");
    return -1;
}

static int float_compare(om_object *self, om_object *other, int *result)
{
    double a = float_value(self);
    if (om_is_type(other, &om_float_type)) {
        double b = float_value(other);
        if (isnan(a) || isnan(b))
            return nan_unordered();
        *result = (a > b) - (a < b);
        return 0;
    }
    int64_t v;
    if (om_is_type(other, &om_int_type) && om_int_as_i64(other, &v) == 0) {
        if (isnan(a))
            return nan_unordered();
        *result = compare_double_i64(a, v);
        return 0;
    }
    omi_set_error(OM_ETYPE, "om_compare: '<' not supported between 'float' and '%s'",
                  other->ob_type->name);
    return -1;
}

const om_type om_float_type = {
    .name = "float",
    .size = sizeof(float_object),
    .hash = float_hash,
    .equal = float_equal,
    .compare = float_compare,
};

/* ---- Creation and access ------------------------------------------------ */

om_object *om_float_from_double(double v)
{
    om_object *o = omi_object_alloc(&om_float_type, 0);
    if (o != NULL)
        ((float_object *)o)->value = v;
    return o;
}

int om_float_as_double(om_object *o, double *out)
{
    if (out == NULL) {
        omi_set_error(OM_EINVAL, "om_float_as_double: out is NULL");
        return -1;
    }
    int64_t v;
    if (o != NULL && om_is_type(o, &om_int_type)) {
        if (!omi_check_type(o, &om_int_type, "om_float_as_double") || om_int_as_i64(o, &v) != 0)
            return -1;
        *out = (double)v;
        return 0;
    }
    if (!omi_check_type(o, &om_float_type, "om_float_as_double"))
        return -1;
    *out = float_value(o);
    return 0;
}

bool om_float_check(const om_object *o)
{
    return o != NULL && om_is_type(o, &om_float_type);
}
