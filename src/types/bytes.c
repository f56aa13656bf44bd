/*
 * bytes.c — the bytes type (an immutable byte string) and its iterator.
 *
 * Layout of a bytes (64-bit build), one block from the OBJ domain:
 *
 *   | ob_refcnt 8 | ob_type 8 | ob_size 8 | hash 8 | data: size bytes, NUL |
 *   |<------ bytes_object: 32 B (om_bytes_type.size) ------>|<- ob_size -->|
 *
 * Invariants:
 *   ob_size == size + 1          (item_size 1; the +1 is a NUL, so that
 *                                 text in a bytes can go to C functions)
 *   data[size] == '\0'; the bytes never change once returned
 *   hash == -1 until first asked for, then omi_hash_bytes(data, size)
 *
 * Not a GC type (no references), no destroy hook. Equality and order are
 * by content (memcmp, then size), as Python's bytes; a bytes never equals
 * a str. The iterator is a GC type holding the bytes, dropped at the end;
 * it yields small ints (0 … 255), so iterating never allocates.
 *
 * Learned from CPython's Objects/bytesobject.c (inline data with a
 * trailing NUL, cached hash); written afresh.
 */
#include <string.h>

#include "internal.h"

typedef struct bytes_object {
    OM_OBJECT_VAR_HEAD;         /* ob_size = size + 1 */
    int64_t hash;               /* -1 until computed */
    unsigned char data[];       /* size bytes, then NUL */
} bytes_object;

_Static_assert(sizeof(bytes_object) == 32, "a bytes' head is 32 B");

static bytes_object *bytes_of(om_object *o)
{
    return (bytes_object *)o;
}

static size_t bytes_size(const bytes_object *b)
{
    return b->ob_var_head.ob_size - 1;
}

/* ---- Creation ------------------------------------------------------------ */

/* A bytes of `size` bytes that the caller fills; the NUL is written. */
static bytes_object *bytes_alloc(size_t size, const char *function)
{
    if (size >= PTRDIFF_MAX) {
        omi_set_error(OM_ENOMEM, "%s: a bytes of %zu bytes does not fit in memory", function,
                      size);
        return NULL;
    }
    bytes_object *b = (bytes_object *)omi_object_alloc(&om_bytes_type, size + 1);
    if (b == NULL)
        return NULL;
    b->hash = -1;
    b->data[size] = '\0';
    return b;
}

om_object *om_bytes_from(const void *data, size_t size)
{
    if (data == NULL && size != 0) {
        omi_set_error(OM_EINVAL, "om_bytes_from: data is NULL but size is %zu", size);
        return NULL;
    }
    bytes_object *b = bytes_alloc(size, "om_bytes_from");
    if (b == NULL)
        return NULL;
    if (size > 0)
        memcpy(b->data, data, size);
    return OM_OBJ(b);
}

om_object *om_bytes_concat(om_object *a, om_object *b)
{
    if (!omi_check_type(a, &om_bytes_type, "om_bytes_concat") ||
        !omi_check_type(b, &om_bytes_type, "om_bytes_concat"))
        return NULL;
    bytes_object *x = bytes_of(a), *y = bytes_of(b);
    size_t size_x = bytes_size(x), size_y = bytes_size(y);
    bytes_object *r = bytes_alloc(size_x + size_y, "om_bytes_concat");
    if (r == NULL)
        return NULL;
    memcpy(r->data, x->data, size_x);
    memcpy(r->data + size_x, y->data, size_y);
    return OM_OBJ(r);
}

/* ---- Access -------------------------------------------------------------- */

bool om_bytes_check(const om_object *o)
{
    return o != NULL && om_is_type(o, &om_bytes_type);
}

const unsigned char *om_bytes_data(om_object *o)
{
    if (!omi_check_type(o, &om_bytes_type, "om_bytes_data"))
        return NULL;
    return bytes_of(o)->data;
}

ptrdiff_t om_bytes_size(om_object *o)
{
    if (!omi_check_type(o, &om_bytes_type, "om_bytes_size"))
        return -1;
    return (ptrdiff_t)bytes_size(bytes_of(o));
}

om_object *om_bytes_get(om_object *o, ptrdiff_t index)
{
    if (!omi_check_type(o, &om_bytes_type, "om_bytes_get"))
        return NULL;
    bytes_object *b = bytes_of(o);
    ptrdiff_t size = (ptrdiff_t)bytes_size(b);
    ptrdiff_t i = index < 0 ? index + size : index;
    if (i < 0 || i >= size) {
        omi_set_error(OM_EINDEX, "om_bytes_get: index %td out of range for a bytes of size %td",
                      index, size);
        return NULL;
    }
    return om_int_from_i64(b->data[i]);
}

/* ---- Hooks --------------------------------------------------------------- */

static int64_t bytes_hash(om_object *self)
{
    bytes_object *b = bytes_of(self);
    if (b->hash == -1)
        b->hash = omi_hash_bytes(b->data, bytes_size(b));
    return b->hash;
}

static int bytes_equal(om_object *self, om_object *other)
{
    if (!om_is_type(other, &om_bytes_type))
        return 0;
    bytes_object *a = bytes_of(self), *b = bytes_of(other);
    size_t size = bytes_size(a);
    if (size != bytes_size(b) || (a->hash != -1 && b->hash != -1 && a->hash != b->hash))
        return 0;
    return memcmp(a->data, b->data, size) == 0;
}

static int bytes_compare(om_object *self, om_object *other, int *result)
{
    if (!om_is_type(other, &om_bytes_type)) {
        omi_set_error(OM_ETYPE, "om_compare: '<' not supported between 'bytes' and '%s'",
                      other->ob_type->name);
        return -1;
    }
    bytes_object *a = bytes_of(self), *b = bytes_of(other);
    size_t size_a = bytes_size(a), size_b = bytes_size(b);
    *result = omi_compare_bytes(a->data, size_a, b->data, size_b);
    return 0;
}

static om_object *bytes_iter(om_object *self);

const om_type om_bytes_type = {
    .name = "bytes",
    .size = sizeof(bytes_object),
    .item_size = 1,
    .hash = bytes_hash,
    .equal = bytes_equal,
    .compare = bytes_compare,
    .iter = bytes_iter,
};

/* ---- Iterator ------------------------------------------------------------ */

/* An omi_seq_iterator whose index is that of the next byte. */
static omi_seq_iterator *bytes_iterator_of(om_object *o)
{
    return (omi_seq_iterator *)o;
}

/* The next byte as a small int (no allocation, cannot fail); at the end the
 * bytes is let go. */
static om_object *bytes_iterator_next(om_object *self)
{
    omi_seq_iterator *it = bytes_iterator_of(self);
    if (it->seq == NULL)
        return NULL;
    const bytes_object *b = bytes_of(it->seq);
    if (it->index >= bytes_size(b)) {
        OM_CLEAR(it->seq);
        return NULL;
    }
    return om_int_from_i64(b->data[it->index++]);
}

const om_type om_bytes_iterator_type =
    OMI_SEQ_ITERATOR_TYPE("bytes_iterator", bytes_iterator_next);

static om_object *bytes_iter(om_object *self)
{
    return omi_seq_iterator_new(&om_bytes_iterator_type, self);
}
