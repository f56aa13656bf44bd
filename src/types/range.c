/*
 * range.c — the range type and its iterator: arithmetic progressions of
 * int64 values in O(1) memory.
 *
 *   range_object           | refcnt | type | start | stop | step | length |
 *   range_iterator         | refcnt | type | next | step | remaining |
 *
 * Neither holds a reference, so neither is a GC type.
 *
 * Invariants: step != 0; length = the number of values start + k*step
 * (k ≥ 0) strictly before stop, which for int64 bounds is at most 2^64 - 1,
 * so it is kept as uint64_t; every produced value lies between start and
 * stop and so fits int64.
 *
 * Overflow-safe arithmetic: every offset is computed in uint64_t, where
 * wrap-around is defined. The distance |stop - start| is below 2^64, so
 * (uint64)stop - (uint64)start is exact; start + k*step is computed modulo
 * 2^64 and is exact because the true value fits int64; i64_from_u64 maps
 * it back without implementation-defined conversions. The iterator never
 * steps past its last value, so it never leaves int64 either.
 *
 * Items are ints made on demand (om_int_from_i64), so a range of 2^63
 * items costs one small object however far it is iterated.
 *
 * Learned from: CPython's Objects/rangeobject.c (length and containment
 * without iterating; a separate iterator type); written afresh.
 */
#include "../internal.h"

typedef struct range_object {
    OM_OBJECT_HEAD;
    int64_t start;               /* first value */
    int64_t stop;                /* bound, excluded */
    int64_t step;                /* != 0 */
    uint64_t length;             /* number of values, ≤ 2^64 - 1 */
} range_object;

typedef struct range_iterator {
    OM_OBJECT_HEAD;
    int64_t next;                /* the value to return next, if remaining > 0 */
    int64_t step;                /* as the range's */
    uint64_t remaining;          /* values left */
} range_iterator;

static range_object *as_range(om_object *o)
{
    return (range_object *)o;
}

/* The int64 whose two's complement bits are u. */
static int64_t i64_from_u64(uint64_t u)
{
    return u <= (uint64_t)INT64_MAX ? (int64_t)u : -(int64_t)(~u) - 1;
}

/* |v| as uint64 (exact also for INT64_MIN). */
static uint64_t u64_abs(int64_t v)
{
    return v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
}

static uint64_t range_compute_length(int64_t start, int64_t stop, int64_t step)
{
    if (step > 0 ? start >= stop : start <= stop)
        return 0;
    uint64_t distance = step > 0 ? (uint64_t)stop - (uint64_t)start
                                 : (uint64_t)start - (uint64_t)stop;
    return (distance - 1) / u64_abs(step) + 1;
}

/* Value number k (k < length) of the range. */
static int64_t range_value(const range_object *r, uint64_t k)
{
    return i64_from_u64((uint64_t)r->start + k * (uint64_t)r->step);
}

om_object *om_range(int64_t start, int64_t stop, int64_t step)
{
    if (step == 0) {
        omi_set_error(OM_EVALUE, "om_range: step must not be zero");
        return NULL;
    }
    om_object *o = om_new(&om_range_type);
    if (o == NULL)
        return NULL;
    range_object *r = as_range(o);
    r->start = start;
    r->stop = stop;
    r->step = step;
    r->length = range_compute_length(start, stop, step);
    return o;
}

int64_t om_range_length(om_object *r)
{
    if (!omi_check_type(r, &om_range_type, "om_range_length"))
        return -1;
    uint64_t length = as_range(r)->length;
    if (length > (uint64_t)INT64_MAX) {
        omi_set_error(OM_EOVERFLOW, "om_range_length: %llu items do not fit int64_t",
                      (unsigned long long)length);
        return -1;
    }
    return (int64_t)length;
}

om_object *om_range_get(om_object *r, int64_t index)
{
    if (!omi_check_type(r, &om_range_type, "om_range_get"))
        return NULL;
    const range_object *range = as_range(r);
    uint64_t k = index >= 0 ? (uint64_t)index : range->length - u64_abs(index);
    if (index >= 0 ? k >= range->length : u64_abs(index) > range->length) {
        omi_set_error(OM_EINDEX, "om_range_get: index %lld out of range (length %llu)",
                      (long long)index, (unsigned long long)range->length);
        return NULL;
    }
    return om_int_from_i64(range_value(range, k));
}

/* The integer v stands for, as Python's equality sees it: an int, a bool
 * (1 or 0) or a float with an integral value in int64 range. */
static bool integral_value(om_object *v, int64_t *value)
{
    if (om_int_check(v))
        return om_int_as_i64(v, value) == 0;
    if (v == om_true || v == om_false) {
        *value = v == om_true;
        return true;
    }
    double d;
    if (!om_float_check(v) || om_float_as_double(v, &d) != 0)
        return false;
    if (!(d >= -0x1p63 && d < 0x1p63) || d != (double)(int64_t)d)
        return false;
    *value = (int64_t)d;
    return true;
}

int om_range_contains(om_object *r, om_object *v)
{
    if (!omi_check_type(r, &om_range_type, "om_range_contains"))
        return -1;
    if (v == NULL) {
        omi_set_error(OM_EINVAL, "om_range_contains: object is NULL");
        return -1;
    }
    int64_t value;
    if (!integral_value(v, &value))
        return 0;
    const range_object *range = as_range(r);
    bool inside = range->step > 0 ? value >= range->start && value < range->stop
                                  : value <= range->start && value > range->stop;
    if (!inside)
        return 0;
    uint64_t offset = range->step > 0 ? (uint64_t)value - (uint64_t)range->start
                                      : (uint64_t)range->start - (uint64_t)value;
    return offset % u64_abs(range->step) == 0;
}

/* ---- Type hooks --------------------------------------------------------- */

/* Two ranges are equal when they produce the same values (Python). */
static int range_equal(om_object *self, om_object *other)
{
    if (other->ob_type != &om_range_type)
        return 0;
    const range_object *a = as_range(self), *b = as_range(other);
    if (a->length != b->length)
        return 0;
    return a->length == 0 || (a->start == b->start && (a->length == 1 || a->step == b->step));
}

static om_object *range_iter(om_object *self)
{
    range_iterator *it = (range_iterator *)om_new(&om_range_iterator_type);
    if (it == NULL)
        return NULL;
    it->next = as_range(self)->start;
    it->step = as_range(self)->step;
    it->remaining = as_range(self)->length;
    return OM_OBJ(it);
}

const om_type om_range_type = {
    .name = "range",
    .size = sizeof(range_object),
    .equal = range_equal,
    .iter = range_iter,
};

/* ---- The iterator ------------------------------------------------------- */

/* The int is made before the iterator advances, so a failed allocation
 * loses no value. */
static om_object *range_iterator_next(om_object *self)
{
    range_iterator *it = (range_iterator *)self;
    if (it->remaining == 0)
        return NULL;
    om_object *item = om_int_from_i64(it->next);
    if (item == NULL)
        return NULL;
    if (--it->remaining > 0)
        it->next = i64_from_u64((uint64_t)it->next + (uint64_t)it->step);
    return item;
}

const om_type om_range_iterator_type = {
    .name = "range_iterator",
    .size = sizeof(range_iterator),
    .iter = omi_iterator_self,
    .next = range_iterator_next,
};
