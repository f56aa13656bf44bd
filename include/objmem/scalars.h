/* objmem/scalars.h — part of objmem.h; include <objmem.h>, not this file.
 *
 * 11. Built-in types: numbers, str and bytes
 *
 * Immutable value objects that hold no references (so none of them is a
 * GC type; their iterators are, as they hold their sequence):
 *   int    a 64-bit signed value; arithmetic that leaves int64 fails with
 *          OM_EOVERFLOW instead of wrapping. The small ints -5 … 256 are
 *          static immortal objects: om_int_from_i64 returns them without
 *          allocating, so equal small ints are the same object.
 *   float  a C double.
 *   str    immutable UTF-8 text, validated on creation, NUL-terminated,
 *          its hash computed once and cached; om_str_intern keeps one
 *          canonical, immortal copy of each interned text.
 *   bytes  an immutable byte string (any bytes, NUL-terminated too).
 *
 * Numbers compare as Python's do: an int and a float are equal when their
 * values are (exactly, without rounding the int), they order together, and
 * equal numbers have equal hashes, so 1 and 1.0 are the same dict key.
 * om_true and om_false are equal to 1 and 0 (their hashes are 1 and 0), as
 * in Python, but they do not order against numbers (om_compare with a
 * bool on either side is OM_ETYPE).
 *
 * NaN: a float NaN is not equal to anything, itself included, except that
 * om_equal(x, x) on the very same object is 1 (om_equal checks identity
 * first, as Python's containers do). om_compare with a NaN on either side
 * fails with OM_EVALUE ("NaN is unordered"): there is no order that keeps
 * om_compare and om_equal consistent.
 *
 * Hashes (om_hash): an int v hashes to v, except -1, which hashes to -2
 * (-1 is never a hash); a float with an integral value in int64 range
 * hashes as that int; any other float to a mix of its bits. Ints use
 * Python's identity hash: a hash table must spread the low bits (as
 * Python's dict does with its perturbed probing). str and bytes hash their
 * bytes with a fast 64-bit multiply-and-rotate hash (never -1; a str and a
 * bytes with the same bytes are not equal but may share the hash).
 *
 * Calling conventions, as everywhere in objmem: "new reference" results
 * are owned by the caller; a NULL or -1 result sets om_last_error():
 * OM_EINVAL for a NULL object, OM_ETYPE for an object of the wrong type,
 * OM_EINDEX, OM_EOVERFLOW, OM_EVALUE or OM_ENOMEM as stated. A call on a
 * freed object is fatal misuse (reported naming the type when objmem can
 * see it). Lengths, sizes and indexes are ptrdiff_t so that -1 can mean
 * "error"; a negative index counts from the end, as in Python.
 *
 * Sizes (om_sizeof, a 64-bit build): int and float 24 B (a 32 B block);
 * str 40 B + its UTF-8 bytes + 1; bytes 32 B + its bytes + 1.
 */
#ifndef OBJMEM_SCALARS_H
#define OBJMEM_SCALARS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- int ---------------------------------------------------------------- */

/** The type of int objects ("int"). */
OM_API extern const om_type om_int_type;

/** The smallest and largest of the preallocated immortal small ints. */
#define OM_SMALL_INT_MIN (-5)
#define OM_SMALL_INT_MAX 256

/** An int of value v (new reference). For OM_SMALL_INT_MIN ≤ v ≤
 *  OM_SMALL_INT_MAX the shared immortal object, without allocating (never
 *  fails); otherwise a new 32 B block, or NULL with OM_ENOMEM. */
OM_API om_object *om_int_from_i64(int64_t v) OM_NODISCARD;

/** Stores the value of int o in *out: 0, or -1 with OM_ETYPE when o is not
 *  an int (OM_EINVAL when o or out is NULL); *out is unchanged on failure. */
OM_API int om_int_as_i64(om_object *o, int64_t *out);

/** True when o is an int (false for NULL and for om_true/om_false). */
OM_API bool om_int_check(const om_object *o);

/** a + b (new reference); NULL with OM_EOVERFLOW when the sum leaves
 *  int64, OM_ETYPE when a or b is not an int, OM_ENOMEM. */
OM_API om_object *om_int_add(om_object *a, om_object *b) OM_NODISCARD;

/** a - b (new reference); errors as om_int_add. */
OM_API om_object *om_int_sub(om_object *a, om_object *b) OM_NODISCARD;

/** a * b (new reference); errors as om_int_add. */
OM_API om_object *om_int_mul(om_object *a, om_object *b) OM_NODISCARD;

/** a // b rounded toward minus infinity, as Python (new reference): -7 // 2
 *  is -4. NULL with OM_EVALUE when b is 0, OM_EOVERFLOW for INT64_MIN //
 *  -1, otherwise errors as om_int_add. */
OM_API om_object *om_int_floordiv(om_object *a, om_object *b) OM_NODISCARD;

/** a % b with the sign of b, as Python (new reference): -7 % 2 is 1, so
 *  that a == (a // b) * b + a % b. NULL with OM_EVALUE when b is 0, else
 *  errors as om_int_add (never overflows). */
OM_API om_object *om_int_mod(om_object *a, om_object *b) OM_NODISCARD;

/** -a (new reference); NULL with OM_EOVERFLOW for INT64_MIN, else errors as
 *  om_int_add. */
OM_API om_object *om_int_neg(om_object *a) OM_NODISCARD;

/* ---- float -------------------------------------------------------------- */

/** The type of float objects ("float"). */
OM_API extern const om_type om_float_type;

/** A float of value v (new reference; any double, NaN and infinities
 *  included), or NULL with OM_ENOMEM. */
OM_API om_object *om_float_from_double(double v) OM_NODISCARD;

/** Stores the value of o in *out: a float's value, or an int's converted
 *  to the nearest double (ints beyond 2^53 may round). 0, or -1 with
 *  OM_ETYPE when o is neither (OM_EINVAL when o or out is NULL). */
OM_API int om_float_as_double(om_object *o, double *out);

/** True when o is a float (false for NULL and for ints). */
OM_API bool om_float_check(const om_object *o);

/* ---- str ---------------------------------------------------------------- */

/** The type of str objects ("str"). */
OM_API extern const om_type om_str_type;

/** The type of the iterators om_iter returns for a str ("str_iterator"). */
OM_API extern const om_type om_str_iterator_type;

/** A str of the `size` bytes at data (new reference), which must be valid
 *  UTF-8: no overlong forms, no surrogates (U+D800 … U+DFFF), nothing
 *  above U+10FFFF, no truncated sequence. U+0000 is allowed (om_str_utf8
 *  then looks shorter than om_str_size_bytes). NULL with OM_EVALUE naming
 *  the byte offset of the first invalid byte, OM_EINVAL when data is NULL
 *  and size is not 0, OM_ENOMEM. Cost: one pass to validate and count the
 *  code points (8 bytes at a time over ASCII), one copy. */
OM_API om_object *om_str_from_utf8(const char *data, size_t size) OM_NODISCARD;

/** om_str_from_utf8(s, strlen(s)); OM_EINVAL when s is NULL. */
OM_API om_object *om_str_from_cstr(const char *s) OM_NODISCARD;

/** The UTF-8 bytes of str o, NUL-terminated (borrowed: valid while o
 *  lives), or NULL on error. */
OM_API const char *om_str_utf8(om_object *o);

/** The number of UTF-8 bytes of str o (without the terminating NUL), or
 *  -1 on error. O(1). */
OM_API ptrdiff_t om_str_size_bytes(om_object *o);

/** The number of code points of str o, or -1 on error. O(1). */
OM_API ptrdiff_t om_str_length(om_object *o);

/** The code point at `index` of str o as a new 1-character str (new
 *  reference); a negative index counts from the end. NULL with OM_EINDEX
 *  when out of range, OM_ENOMEM. O(1) for an ASCII str, else a scan of
 *  the bytes before the code point (iterate with om_iter for a whole str). */
OM_API om_object *om_str_get(om_object *o, ptrdiff_t index) OM_NODISCARD;

/** The str a followed by b (new reference), or NULL with OM_ETYPE, OM_ENOMEM. */
OM_API om_object *om_str_concat(om_object *a, om_object *b) OM_NODISCARD;

/** 1 when str o holds exactly the bytes of the C string s, 0 when not, -1
 *  on error (o not a str; OM_EINVAL when s is NULL). */
OM_API int om_str_equal_cstr(om_object *o, const char *s);

/** True when o is a str (false for NULL). */
OM_API bool om_str_check(const om_object *o);

/** The canonical str equal to str s (new reference): the first str
 *  interned with this text, or s itself, which is then made immortal and
 *  recorded. Each runtime has its own intern table: interned strs live
 *  until their runtime is deleted, and equal strs interned in one runtime
 *  are the same object, so they compare by address (two runtimes hold two
 *  copies). The table takes its memory from the RAW domain. NULL with
 *  OM_ETYPE, or OM_ENOMEM when the table cannot grow (s is then left as it
 *  was). The GIL of the calling thread's runtime is held, as for every
 *  object call. */
OM_API om_object *om_str_intern(om_object *s) OM_NODISCARD;

/** The canonical str of the C string s (new reference), as om_str_intern
 *  of om_str_from_cstr(s), but without making a str when the text is
 *  interned already. NULL with OM_EINVAL (s NULL), OM_EVALUE (not UTF-8),
 *  OM_ENOMEM. */
OM_API om_object *om_str_intern_cstr(const char *s) OM_NODISCARD;

/* ---- bytes -------------------------------------------------------------- */

/** The type of bytes objects ("bytes"). */
OM_API extern const om_type om_bytes_type;

/** The type of the iterators om_iter returns for a bytes ("bytes_iterator"). */
OM_API extern const om_type om_bytes_iterator_type;

/** A bytes holding a copy of the `size` bytes at data (new reference), or
 *  NULL with OM_EINVAL (data NULL and size not 0), OM_ENOMEM. */
OM_API om_object *om_bytes_from(const void *data, size_t size) OM_NODISCARD;

/** The bytes of o, followed by a NUL that is not counted in its size
 *  (borrowed: valid while o lives), or NULL on error. */
OM_API const unsigned char *om_bytes_data(om_object *o);

/** The number of bytes of o, or -1 on error. */
OM_API ptrdiff_t om_bytes_size(om_object *o);

/** The bytes a followed by b (new reference), or NULL with OM_ETYPE, OM_ENOMEM. */
OM_API om_object *om_bytes_concat(om_object *a, om_object *b) OM_NODISCARD;

/** The byte at `index` of o as an int 0 … 255 (new reference; a small int,
 *  so never an allocation); a negative index counts from the end. NULL with
 *  OM_EINDEX when out of range. */
OM_API om_object *om_bytes_get(om_object *o, ptrdiff_t index) OM_NODISCARD;

/** True when o is a bytes (false for NULL). */
OM_API bool om_bytes_check(const om_object *o);

#ifdef __cplusplus
}
#endif

#endif /* OBJMEM_SCALARS_H */
