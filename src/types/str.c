/*
 * str.c — the str type (immutable UTF-8 text), its iterator, the byte hash
 * that str and bytes share, and the intern table.
 *
 * Layout of a str (64-bit build), one block from the OBJ domain:
 *
 *   | ob_refcnt 8 | ob_type 8 | ob_size 8 | hash 8 | length 8 | data: size bytes, NUL |
 *   |<------------- str_object: 40 B (om_str_type.size) ----->|<-- ob_size items --->|
 *
 * Invariants:
 *   ob_size == size + 1          (item_size 1; the +1 is the terminating NUL)
 *   data[0 … size) is valid UTF-8 (checked once, in om_str_from_utf8) and
 *   data[size] == '\0'
 *   length == number of code points ≤ size, and length == size ⇔ the text
 *   is ASCII: then code point i is byte i, so indexing is O(1); otherwise
 *   om_str_get scans for the code point's offset
 *   hash == -1 until first asked for, then omi_hash_bytes(data, size)
 *   forever (a hash is never -1)
 *   the bytes never change after the str is returned to a caller.
 *
 * str holds no references, so it is not a GC type and has no destroy hook.
 * Its iterator holds one (the str) and so is a GC type, as in CPython; it
 * drops the str when it reaches the end.
 *
 * Ordering: strs compare by their bytes (memcmp, then size), which for
 * valid UTF-8 is code point order, as Python compares strs.
 *
 * Intern tables: one per runtime (omi_intern_table, a member of the
 * runtime, reached through the calling thread's binding), because an
 * interned str lives in its runtime's heap and dies with it: a table shared
 * by runtimes would race between their threads and hand one runtime the
 * dangling strs of a deleted other. Each is an open-addressing table
 * (linear probing, power-of-two capacity, at most 2/3 full) of pointers to
 * the runtime's interned strs, in a block from the RAW domain. An interned
 * str is immortal, so the table holds no counts and never shrinks; the
 * first str interned with a text stays its canonical copy. The runtime's
 * GIL serialises its table.
 *
 * Hash (omi_hash_bytes): 8 bytes at a time, each word multiplied into the
 * state, which is rotated and multiplied again; the tail is loaded as one
 * zero-padded word; a final xor-shift-multiply avalanche spreads every
 * input bit over the low bits that hash tables index with. The seed is a
 * constant, so hashes repeat from run to run (no randomisation against
 * hash flooding).
 *
 * Learned from CPython's Objects/unicodeobject.c (cached hash, interning,
 * the ASCII fast path), RFC 3629 for the UTF-8 rules, and the
 * multiply-rotate structure of wyhash and xxHash; written afresh.
 */
#include <string.h>

#include "internal.h"

typedef struct str_object {
    OM_OBJECT_VAR_HEAD;     /* ob_size = size + 1 */
    int64_t hash;           /* -1 until computed */
    size_t length;          /* code points; == size iff ASCII */
    char data[];            /* size bytes of UTF-8, then NUL */
} str_object;

_Static_assert(sizeof(str_object) == 40, "a str's head is 40 B");

static str_object *str_of(om_object *o)
{
    return (str_object *)o;
}

static size_t str_size(const str_object *s)
{
    return s->ob_var_head.ob_size - 1;
}

static bool str_is_ascii(const str_object *s)
{
    return s->length == str_size(s);
}

/* ---- Hash ---------------------------------------------------------------- */

#define HASH_SEED 0x243f6a8885a308d3ULL
#define HASH_K1 0x9e3779b97f4a7c15ULL
#define HASH_K2 0xc2b2ae3d27d4eb4fULL

static uint64_t hash_mix(uint64_t h, uint64_t word)
{
    h ^= word * HASH_K2;
    h = (h << 29) | (h >> 35);
    return h * HASH_K1;
}

int64_t omi_hash_bytes(const void *data, size_t size)
{
    const unsigned char *p = data;
    uint64_t h = HASH_SEED ^ (size * HASH_K1);
    uint64_t word;
    for (; size >= 8; p += 8, size -= 8) {
        memcpy(&word, p, 8);
        h = hash_mix(h, word);
    }
    if (size > 0) {
        word = 0;
        memcpy(&word, p, size);
        h = hash_mix(h, word);
    }
    h ^= h >> 32;
    h *= HASH_K2;
    h ^= h >> 29;
    int64_t result = (int64_t)h;
    return result == -1 ? -2 : result;
}

static int64_t str_hash(om_object *self)
{
    str_object *s = str_of(self);
    if (s->hash == -1)
        s->hash = omi_hash_bytes(s->data, str_size(s));
    return s->hash;
}

/* ---- UTF-8 ---------------------------------------------------------------- */

/* What is wrong when the second byte of a sequence is a continuation byte
 * outside the range its lead byte allows. */
static const char *second_byte_error(unsigned char lead)
{
    if (lead == 0xED)
        return "surrogate (U+D800 … U+DFFF)";
    if (lead == 0xF4)
        return "code point above U+10FFFF";
    return "overlong encoding";
}

/* Bytes of the valid sequence at p (avail ≥ 1 bytes left), or 0 with *why
 * set. RFC 3629: the second byte's range is narrowed after E0 (overlong),
 * ED (surrogates), F0 (overlong) and F4 (above U+10FFFF). */
static size_t utf8_sequence(const unsigned char *p, size_t avail, const char **why)
{
    unsigned char c = p[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c < 0xC0) {
        *why = "unexpected continuation byte";
        return 0;
    }
    if (c < 0xC2) {
        *why = "overlong encoding";
        return 0;
    }
    if (c < 0xE0) {
        n = 2;
    } else if (c < 0xF0) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c < 0xF5) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        *why = c < 0xF8 ? "code point above U+10FFFF" : "invalid byte";
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if (i >= avail) {
            *why = "truncated sequence";
            return 0;
        }
        if (p[i] < 0x80 || p[i] > 0xBF) {
            *why = "invalid continuation byte";
            return 0;
        }
        if (i == 1 && (p[i] < lo || p[i] > hi)) {
            *why = second_byte_error(c);
            return 0;
        }
    }
    return n;
}

static bool ascii_word_at(const unsigned char *p)
{
    uint64_t word;
    memcpy(&word, p, 8);
    return (word & 0x8080808080808080ULL) == 0;
}

/* Validates p[0 … size) and counts its code points into *length; on
 * failure sets OM_EVALUE naming the offset of the bad sequence. */
static bool utf8_scan(const unsigned char *p, size_t size, size_t *length, const char *function)
{
    size_t i = 0, count = 0;
    while (i < size) {
        if (size - i >= 8 && ascii_word_at(p + i)) {
            i += 8;
            count += 8;
            continue;
        }
        const char *why = NULL;
        size_t n = utf8_sequence(p + i, size - i, &why);
        if (n == 0) {
            omi_set_error(OM_EVALUE, "%s: invalid UTF-8 at byte offset %zu (0x%02x): %s",
                          function, i, p[i], why);
            return false;
        }
        i += n;
        count++;
    }
    *length = count;
    return true;
}

/* Bytes in the sequence whose (valid) lead byte is c. */
static size_t utf8_lead_size(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

/* The byte offset of code point `index` (< length) of a non-ASCII str. */
static size_t utf8_offset_of(const str_object *s, size_t index)
{
    size_t offset = 0;
    for (size_t seen = 0;; offset++) {
        if (((unsigned char)s->data[offset] & 0xC0) == 0x80)
            continue;
        if (seen++ == index)
            return offset;
    }
}

/* ---- Creation ------------------------------------------------------------ */

/* A str of `size` bytes and `length` code points whose data the caller
 * fills; the NUL is written. NULL with OM_ENOMEM. */
static str_object *str_alloc(size_t size, size_t length, const char *function)
{
    if (size >= PTRDIFF_MAX) {
        omi_set_error(OM_ENOMEM, "%s: a str of %zu bytes does not fit in memory", function, size);
        return NULL;
    }
    str_object *s = (str_object *)omi_object_alloc(&om_str_type, size + 1);
    if (s == NULL)
        return NULL;
    s->hash = -1;
    s->length = length;
    s->data[size] = '\0';
    return s;
}

/* A str of the valid UTF-8 at data. */
static om_object *str_make(const char *data, size_t size, size_t length, const char *function)
{
    str_object *s = str_alloc(size, length, function);
    if (s == NULL)
        return NULL;
    if (size > 0)
        memcpy(s->data, data, size);
    return OM_OBJ(s);
}

static bool data_argument_ok(const void *data, size_t size, const char *function)
{
    if (data != NULL || size == 0)
        return true;
    omi_set_error(OM_EINVAL, "%s: data is NULL but size is %zu", function, size);
    return false;
}

om_object *om_str_from_utf8(const char *data, size_t size)
{
    size_t length;
    if (!data_argument_ok(data, size, "om_str_from_utf8") ||
        !utf8_scan((const unsigned char *)data, size, &length, "om_str_from_utf8"))
        return NULL;
    return str_make(data, size, length, "om_str_from_utf8");
}

om_object *om_str_from_cstr(const char *s)
{
    if (s == NULL) {
        omi_set_error(OM_EINVAL, "om_str_from_cstr: s is NULL");
        return NULL;
    }
    return om_str_from_utf8(s, strlen(s));
}

/* ---- Access -------------------------------------------------------------- */

bool om_str_check(const om_object *o)
{
    return o != NULL && om_is_type(o, &om_str_type);
}

const char *om_str_utf8(om_object *o)
{
    if (!omi_check_type(o, &om_str_type, "om_str_utf8"))
        return NULL;
    return str_of(o)->data;
}

ptrdiff_t om_str_size_bytes(om_object *o)
{
    if (!omi_check_type(o, &om_str_type, "om_str_size_bytes"))
        return -1;
    return (ptrdiff_t)str_size(str_of(o));
}

ptrdiff_t om_str_length(om_object *o)
{
    if (!omi_check_type(o, &om_str_type, "om_str_length"))
        return -1;
    return (ptrdiff_t)str_of(o)->length;
}

/* The 1-code-point str at byte offset `offset` of s. */
static om_object *str_char_at(const str_object *s, size_t offset, const char *function)
{
    const char *c = s->data + offset;
    return str_make(c, utf8_lead_size((unsigned char)*c), 1, function);
}

om_object *om_str_get(om_object *o, ptrdiff_t index)
{
    if (!omi_check_type(o, &om_str_type, "om_str_get"))
        return NULL;
    str_object *s = str_of(o);
    ptrdiff_t length = (ptrdiff_t)s->length;
    ptrdiff_t i = index < 0 ? index + length : index;
    if (i < 0 || i >= length) {
        omi_set_error(OM_EINDEX, "om_str_get: index %td out of range for a str of length %td",
                      index, length);
        return NULL;
    }
    size_t offset = str_is_ascii(s) ? (size_t)i : utf8_offset_of(s, (size_t)i);
    return str_char_at(s, offset, "om_str_get");
}

om_object *om_str_concat(om_object *a, om_object *b)
{
    if (!omi_check_type(a, &om_str_type, "om_str_concat") ||
        !omi_check_type(b, &om_str_type, "om_str_concat"))
        return NULL;
    str_object *x = str_of(a), *y = str_of(b);
    size_t size_x = str_size(x), size_y = str_size(y);
    str_object *s = str_alloc(size_x + size_y, x->length + y->length, "om_str_concat");
    if (s == NULL)
        return NULL;
    memcpy(s->data, x->data, size_x);
    memcpy(s->data + size_x, y->data, size_y);
    return OM_OBJ(s);
}

int om_str_equal_cstr(om_object *o, const char *s)
{
    if (!omi_check_type(o, &om_str_type, "om_str_equal_cstr"))
        return -1;
    if (s == NULL) {
        omi_set_error(OM_EINVAL, "om_str_equal_cstr: s is NULL");
        return -1;
    }
    size_t size = strlen(s);
    return size == str_size(str_of(o)) && memcmp(str_of(o)->data, s, size) == 0;
}

/* ---- Hooks --------------------------------------------------------------- */

static bool str_same_text(const str_object *a, const char *data, size_t size, int64_t hash)
{
    if (str_size(a) != size || (a->hash != -1 && hash != -1 && a->hash != hash))
        return false;
    return memcmp(a->data, data, size) == 0;
}

static int str_equal(om_object *self, om_object *other)
{
    if (!om_is_type(other, &om_str_type))
        return 0;
    str_object *b = str_of(other);
    return str_same_text(str_of(self), b->data, str_size(b), b->hash);
}

int omi_compare_bytes(const void *a, size_t size_a, const void *b, size_t size_b)
{
    int c = memcmp(a, b, size_a < size_b ? size_a : size_b);
    return c != 0 ? c : (size_a > size_b) - (size_a < size_b);
}

static int str_compare(om_object *self, om_object *other, int *result)
{
    if (!om_is_type(other, &om_str_type)) {
        omi_set_error(OM_ETYPE, "om_compare: '<' not supported between 'str' and '%s'",
                      other->ob_type->name);
        return -1;
    }
    str_object *a = str_of(self), *b = str_of(other);
    size_t size_a = str_size(a), size_b = str_size(b);
    *result = omi_compare_bytes(a->data, size_a, b->data, size_b);
    return 0;
}

static om_object *str_iter(om_object *self);

const om_type om_str_type = {
    .name = "str",
    .size = sizeof(str_object),
    .item_size = 1,
    .hash = str_hash,
    .equal = str_equal,
    .compare = str_compare,
    .iter = str_iter,
};

/* ---- Iterator ------------------------------------------------------------ */

/* An omi_seq_iterator whose index is the byte offset of the next code point. */
static omi_seq_iterator *str_iterator_of(om_object *o)
{
    return (omi_seq_iterator *)o;
}

/* The next code point as a 1-character str; at the end, the str is let go.
 * A failed allocation leaves the position where it was. */
static om_object *str_iterator_next(om_object *self)
{
    omi_seq_iterator *it = str_iterator_of(self);
    if (it->seq == NULL)
        return NULL;
    const str_object *s = str_of(it->seq);
    if (it->index >= str_size(s)) {
        OM_CLEAR(it->seq);
        return NULL;
    }
    om_object *c = str_char_at(s, it->index, "om_next");
    if (c != NULL)
        it->index += str_size(str_of(c));
    return c;
}

const om_type om_str_iterator_type =
    OMI_SEQ_ITERATOR_TYPE("str_iterator", str_iterator_next);

static om_object *str_iter(om_object *self)
{
    return omi_seq_iterator_new(&om_str_iterator_type, self);
}

/* ---- Interning ----------------------------------------------------------- */

#define INTERN_MIN_CAPACITY 64

/* The calling thread's runtime's table (attaching it first if needed). */
static omi_intern_table *intern_table_current(void)
{
    return omi_runtime_intern_table(omi_bound()->runtime);
}

/* The slot holding the interned str with this text, or the empty slot
 * where it would go (capacity > 0; the table always has an empty slot). */
static om_object **intern_slot(const omi_intern_table *t, const char *data, size_t size,
                               int64_t hash)
{
    size_t mask = t->capacity - 1;
    for (size_t i = (size_t)hash & mask;; i = (i + 1) & mask) {
        om_object *s = t->slots[i];
        if (s == NULL || str_same_text(str_of(s), data, size, hash))
            return &t->slots[i];
    }
}

static str_object *intern_find(const omi_intern_table *t, const char *data, size_t size,
                               int64_t hash)
{
    return t->capacity != 0 ? str_of(*intern_slot(t, data, size, hash)) : NULL;
}

/* Room for one more entry: grows the table (moving the entries) when it
 * would pass 2/3. false with OM_ENOMEM, the table unchanged. */
static bool intern_reserve(omi_intern_table *t)
{
    if ((t->count + 1) * 3 <= t->capacity * 2)
        return true;
    size_t capacity = t->capacity ? t->capacity * 2 : INTERN_MIN_CAPACITY;
    omi_intern_table bigger = {om_raw_calloc(capacity, sizeof(om_object *)), capacity,
                               t->count};
    if (bigger.slots == NULL)
        return false;
    for (size_t i = 0; i < t->capacity; i++) {
        str_object *s = str_of(t->slots[i]);
        if (s != NULL)
            *intern_slot(&bigger, s->data, str_size(s), s->hash) = OM_OBJ(s);
    }
    om_raw_free(t->slots);
    *t = bigger;
    return true;
}

/* Records s (hash computed, room reserved, text not yet interned). */
static om_object *intern_insert(omi_intern_table *t, str_object *s)
{
    *intern_slot(t, s->data, str_size(s), s->hash) = OM_OBJ(s);
    t->count++;
    om_make_immortal(OM_OBJ(s));
    return OM_OBJ(s);
}

void omi_intern_table_release(omi_intern_table *t)
{
    om_raw_free(t->slots);
    *t = (omi_intern_table){0};
}

om_object *om_str_intern(om_object *o)
{
    if (!omi_check_type(o, &om_str_type, "om_str_intern"))
        return NULL;
    omi_intern_table *t = intern_table_current();
    str_object *s = str_of(o);
    str_object *found = intern_find(t, s->data, str_size(s), str_hash(o));
    if (found != NULL) {
        om_incref(OM_OBJ(found));
        return OM_OBJ(found);
    }
    return intern_reserve(t) ? intern_insert(t, s) : NULL;
}

om_object *om_str_intern_cstr(const char *c)
{
    if (c == NULL) {
        omi_set_error(OM_EINVAL, "om_str_intern_cstr: s is NULL");
        return NULL;
    }
    omi_intern_table *t = intern_table_current();
    size_t size = strlen(c);
    int64_t hash = omi_hash_bytes(c, size);
    str_object *found = intern_find(t, c, size, hash);
    if (found != NULL) {
        om_incref(OM_OBJ(found));
        return OM_OBJ(found);
    }
    if (!intern_reserve(t))
        return NULL;
    om_object *o = om_str_from_utf8(c, size);
    if (o == NULL)
        return NULL;
    str_of(o)->hash = hash;
    return intern_insert(t, str_of(o));
}
