/*
 * fuzz_alloc.c — a libFuzzer target that drives the allocator with
 * byte-coded operation sequences and checks every result against a shadow
 * model.
 *
 * Input: a sequence of operations, each an opcode byte followed by its
 * operand bytes (read as zero once the input runs out). Operations act on
 * 64 slots; a slot holds one live block and its shadow:
 *
 *   slot = { ptr, size asked for, owner, pattern seed }
 *   owner = RAW | MEM | OBJ domain, or private heap 0 | 1
 *
 * The block's bytes hold a pattern derived from (seed, index); blocks up to
 * 64 KiB carry it everywhere, bigger ones at their sample points (the first
 * and last 4 KiB and every 64 KiB-th byte), so multi-MiB blocks stay cheap
 * (touching every page of them was most of the run time: page faults).
 * Pattern bytes come from a table, so filling and checking are memcpy and
 * memcmp.
 *
 * Operations: malloc, calloc, realloc, free, aligned alloc (valid and
 * invalid alignments), writes up to om_usable_size, impossible sizes,
 * om_heap_trim, private heaps made and deleted with blocks still in them,
 * the purge delay switched between 0 and its default, and one-shot fault
 * injection (om_fail_after) on a domain. Sizes cover 0 .. 4 MiB: every
 * small class, medium class and large mappings, plus the boundaries.
 *
 * Checked: a block comes back aligned (16 B, or its alignment), with
 * om_usable_size >= the size asked, zeroed by calloc, with its pattern
 * intact after every other operation and across realloc (prefix kept);
 * a NULL result only where one is promised (an impossible size, a fault
 * this target injected) and then with om_last_error set and the old block
 * untouched; om_heap_check (and om_heap_check_heap for private heaps)
 * every 16 operations and at the end; and after the input's blocks are
 * freed, the default heap's live bytes are back at their value before the
 * input. A violation aborts with a message (libFuzzer saves the input).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "objmem.h"

#include "fuzz.h"

#define SLOT_COUNT 64
#define HEAP_COUNT 2
#define FULL_PATTERN_MAX ((size_t)64 << 10)   /* bigger blocks are sampled */
#define SAMPLE_EDGE ((size_t)4096)             /* bigger ones: both ends in full */
#define SAMPLE_STRIDE ((size_t)64 << 10)       /* and one byte per 64 KiB between */
#define CHECK_EVERY 16                         /* operations between heap checks */
#define LARGE_MAX ((size_t)4 << 20)

enum owner { OWNER_RAW, OWNER_MEM, OWNER_OBJ, OWNER_HEAP0, OWNER_HEAP1, OWNER_COUNT };

typedef struct slot {
    unsigned char *ptr;     /* NULL = empty */
    size_t size;            /* bytes asked for */
    enum owner owner;
    unsigned seed;          /* pattern seed */
} slot;

typedef struct reader {
    const uint8_t *data;
    size_t size;
    size_t pos;
} reader;

typedef struct fuzz_state {
    slot slots[SLOT_COUNT];
    om_heap *heaps[HEAP_COUNT];
    bool fault_armed[OM_DOMAIN_COUNT];
    unsigned next_seed;
} fuzz_state;

static uint8_t read_u8(reader *r)
{
    return r->pos < r->size ? r->data[r->pos++] : 0;
}

static uint16_t read_u16(reader *r)
{
    uint16_t lo = read_u8(r);
    return (uint16_t)(lo | (uint16_t)read_u8(r) << 8);
}

/* ---- Sizes ------------------------------------------------------------------ */

static const size_t edge_sizes[] = {
    0, 1, 15, 16, 17, 31, 32, 48, 496, 511, 512, 513, 639, 640, 641, 1024, 4096, 16384,
    65536, 131072, 262143, 262144, 262145, 266240, 1048575, 1048576, 1048577,
    2097152, 4194304,
};

/* A size from every tier: small (half of the draws), medium (a quarter),
 * large, or a boundary (an eighth each). */
static size_t read_size(reader *r)
{
    uint8_t tier = read_u8(r);
    uint16_t v = read_u16(r);
    switch (tier & 7) {
    case 0: case 1: case 2: case 3:
        return v % (OM_SMALL_SIZE_MAX + 1);
    case 4: case 5:
        return OM_SMALL_SIZE_MAX + 1 + ((size_t)v * 4 + (tier >> 3)) %
                                           (OM_MEDIUM_SIZE_MAX - OM_SMALL_SIZE_MAX);
    case 6:
        return OM_MEDIUM_SIZE_MAX + 1 + ((size_t)v * 61 + (tier >> 3)) %
                                            (LARGE_MAX - OM_MEDIUM_SIZE_MAX);
    default:
        return edge_sizes[v % (sizeof edge_sizes / sizeof edge_sizes[0])];
    }
}

/* ---- Patterns --------------------------------------------------------------- */

/* Pattern bytes: byte i of a block with seed s is table[(s * 977 + i) %
 * PATTERN_PERIOD]. The table holds pseudo-random bytes twice over, so any
 * run of up to PATTERN_PERIOD pattern bytes is one memcpy / memcmp (ASan
 * checks a range at once; a loop over bytes was a quarter of the run time). */
#define PATTERN_PERIOD ((size_t)64 << 10)
static unsigned char pattern_table[2 * PATTERN_PERIOD];

static void pattern_table_fill(void)
{
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (size_t i = 0; i < PATTERN_PERIOD; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        pattern_table[i] = pattern_table[i + PATTERN_PERIOD] = (unsigned char)(x >> 24);
    }
}

static const unsigned char *pattern_at(unsigned seed, size_t i)
{
    return &pattern_table[((size_t)seed * 977 + i) % PATTERN_PERIOD];
}

_Static_assert(FULL_PATTERN_MAX <= PATTERN_PERIOD && SAMPLE_EDGE <= PATTERN_PERIOD,
               "a sampled range is one run of the table");

typedef void range_fn(const slot *s, size_t from, size_t to, const char *when);

/* Calls fn on the sample ranges of a block of `size` bytes, clipped to
 * [0, limit): all of a block up to FULL_PATTERN_MAX, else the first and
 * last SAMPLE_EDGE bytes and one byte every SAMPLE_STRIDE between. */
static void for_each_sample(const slot *s, size_t size, size_t limit, range_fn *fn,
                            const char *when)
{
    if (size <= FULL_PATTERN_MAX) {
        fn(s, 0, limit < size ? limit : size, when);
        return;
    }
    fn(s, 0, limit < SAMPLE_EDGE ? limit : SAMPLE_EDGE, when);
    for (size_t i = SAMPLE_STRIDE; i < size - SAMPLE_EDGE && i < limit; i += SAMPLE_STRIDE)
        fn(s, i, i + 1, when);
    if (limit > size - SAMPLE_EDGE)
        fn(s, size - SAMPLE_EDGE, limit < size ? limit : size, when);
}

static void fill_range(const slot *s, size_t from, size_t to, const char *when)
{
    (void)when;
    if (from < to)
        memcpy(s->ptr + from, pattern_at(s->seed, from), to - from);
}

static void check_range(const slot *s, size_t from, size_t to, const char *when)
{
    if (from >= to || memcmp(s->ptr + from, pattern_at(s->seed, from), to - from) == 0)
        return;
    size_t i = from;
    while (s->ptr[i] == *pattern_at(s->seed, i))
        i++;
    FUZZ_ASSERT(false, "block %p (%zu B, owner %d): byte %zu changed %s", (void *)s->ptr,
                s->size, (int)s->owner, i, when);
}

static void zero_range(const slot *s, size_t from, size_t to, const char *when)
{
    for (size_t i = from; i < to; i++)
        FUZZ_ASSERT(s->ptr[i] == 0, "calloc block %p (%zu B): byte %zu not zero %s",
                    (void *)s->ptr, s->size, i, when);
}

static void fill_pattern(slot *s)
{
    for_each_sample(s, s->size, s->size, fill_range, NULL);
}

/* The pattern of s's first `to` bytes, at the sample points of a block of
 * `size` bytes (s->size, or the size before a realloc). */
static void check_pattern_as(const slot *s, size_t size, size_t to, const char *when)
{
    for_each_sample(s, size, to, check_range, when);
}

static void check_pattern(const slot *s, const char *when)
{
    check_pattern_as(s, s->size, s->size, when);
}

static void check_zero(const slot *s)
{
    for_each_sample(s, s->size, s->size, zero_range, "");
}

/* ---- Owners ----------------------------------------------------------------- */

static om_domain domain_of(enum owner owner)
{
    return owner == OWNER_RAW ? OM_DOMAIN_RAW : owner == OWNER_OBJ ? OM_DOMAIN_OBJ : OM_DOMAIN_MEM;
}

static bool is_heap_owner(enum owner owner)
{
    return owner >= OWNER_HEAP0;
}

/* A private heap, made on first use. Its record comes from the RAW domain,
 * so an armed RAW fault can fail om_heap_new: NULL then, with a clean error,
 * and the operation that wanted the heap fails as an allocation would. */
static om_heap *heap_of(fuzz_state *st, enum owner owner)
{
    om_heap **h = &st->heaps[owner - OWNER_HEAP0];
    if (*h == NULL) {
        long fails = om_fail_count(OM_DOMAIN_RAW);
        *h = om_heap_new();
        FUZZ_ASSERT(*h != NULL || (om_fail_count(OM_DOMAIN_RAW) > fails &&
                                   om_last_error() == OM_ENOMEM),
                    "om_heap_new failed without a fault: %s", om_last_error_message());
    }
    return *h;
}

/* Failures injected so far where owner's allocations can fail: a private
 * heap's blocks come from its own arenas, only its making takes RAW. */
static long fail_count(enum owner owner)
{
    return om_fail_count(is_heap_owner(owner) ? OM_DOMAIN_RAW : domain_of(owner));
}

static void *owner_malloc(fuzz_state *st, enum owner owner, size_t size)
{
    switch (owner) {
    case OWNER_RAW: return om_raw_malloc(size);
    case OWNER_MEM: return om_mem_malloc(size);
    case OWNER_OBJ: return om_obj_malloc(size);
    default: {
        om_heap *h = heap_of(st, owner);
        return h == NULL ? NULL : om_heap_malloc(h, size);
    }
    }
}

static void *owner_calloc(fuzz_state *st, enum owner owner, size_t count, size_t size)
{
    switch (owner) {
    case OWNER_RAW: return om_raw_calloc(count, size);
    case OWNER_MEM: return om_mem_calloc(count, size);
    case OWNER_OBJ: return om_obj_calloc(count, size);
    default: {
        om_heap *h = heap_of(st, owner);
        return h == NULL ? NULL : om_heap_calloc(h, count, size);
    }
    }
}

static void *owner_realloc(fuzz_state *st, enum owner owner, void *p, size_t size)
{
    switch (owner) {
    case OWNER_RAW: return om_raw_realloc(p, size);
    case OWNER_MEM: return om_mem_realloc(p, size);
    case OWNER_OBJ: return om_obj_realloc(p, size);
    default: return om_heap_realloc(heap_of(st, owner), p, size);
    }
}

static void owner_free(enum owner owner, void *p)
{
    switch (owner) {
    case OWNER_RAW: om_raw_free(p); return;
    case OWNER_OBJ: om_obj_free(p); return;
    default: om_mem_free(p); return;   /* private heaps' blocks too: the map knows */
    }
}

/* A NULL result is allowed only when fault injection made it. */
static void check_failure(enum owner owner, long fails_before, const char *call, size_t size)
{
    FUZZ_ASSERT(fail_count(owner) > fails_before, "%s(%zu) failed without a fault: %s", call,
                size, om_last_error_message());
    FUZZ_ASSERT(om_last_error() == OM_ENOMEM, "%s(%zu): failed with error %d", call, size,
                (int)om_last_error());
}

static void check_fresh_block(const slot *s, size_t alignment)
{
    FUZZ_ASSERT((uintptr_t)s->ptr % alignment == 0, "block %p (%zu B) not aligned to %zu",
                (void *)s->ptr, s->size, alignment);
    if (s->owner != OWNER_RAW)
        FUZZ_ASSERT(om_usable_size(s->ptr) >= s->size, "block %p: usable %zu < %zu asked",
                    (void *)s->ptr, om_usable_size(s->ptr), s->size);
}

/* ---- Operations ------------------------------------------------------------- */

static void slot_release(slot *s)
{
    if (s->ptr == NULL)
        return;
    check_pattern(s, "before free");
    owner_free(s->owner, s->ptr);
    s->ptr = NULL;
}

static void op_malloc(fuzz_state *st, reader *r, slot *s, bool zeroed)
{
    slot_release(s);
    enum owner owner = read_u8(r) % OWNER_COUNT;
    size_t size = read_size(r);
    long fails = fail_count(owner);
    void *p;
    if (zeroed) {
        size_t count = (read_u8(r) & 7) + 1;
        size = size / count;
        p = owner_calloc(st, owner, count, size);
        size *= count;
    } else {
        p = owner_malloc(st, owner, size);
    }
    if (p == NULL) {
        check_failure(owner, fails, zeroed ? "calloc" : "malloc", size);
        return;
    }
    *s = (slot){p, size, owner, st->next_seed++};
    check_fresh_block(s, OM_ALIGNMENT);
    if (zeroed)
        check_zero(s);
    fill_pattern(s);
}

static void op_realloc(fuzz_state *st, reader *r, slot *s)
{
    size_t size = read_size(r);
    if (s->ptr == NULL)
        return;
    check_pattern(s, "before realloc");
    long fails = fail_count(s->owner);
    unsigned char *p = owner_realloc(st, s->owner, s->ptr, size);
    if (p == NULL) {
        check_failure(s->owner, fails, "realloc", size);
        check_pattern(s, "by a failed realloc");
        return;
    }
    size_t kept = s->size < size ? s->size : size;
    size_t old_size = s->size;
    s->ptr = p;
    s->size = size;
    /* The kept prefix at the old block's sample points; then the new
     * size's sample points are written (the kept ones get the same bytes). */
    check_pattern_as(s, old_size, kept, "by realloc");
    check_fresh_block(s, OM_ALIGNMENT);
    fill_pattern(s);
}

static void op_aligned(fuzz_state *st, reader *r, slot *s)
{
    slot_release(s);
    uint8_t a = read_u8(r);
    size_t size = read_size(r);
    bool use_heap = a & 0x80;
    enum owner owner = use_heap ? (a & 0x40 ? OWNER_HEAP1 : OWNER_HEAP0) : OWNER_MEM;
    size_t alignment = (size_t)1 << (a % 22);   /* 1 B .. 2 MiB */
    if ((a & 0x20) && alignment > 2)
        alignment += 1 + (a & 1);               /* not a power of two */
    if (use_heap && heap_of(st, owner) == NULL)
        return;
    om_clear_error();
    void *p = use_heap ? om_heap_aligned_alloc(heap_of(st, owner), alignment, size)
                       : om_aligned_alloc(alignment, size);
    bool valid = (alignment & (alignment - 1)) == 0;
    if (!valid) {
        FUZZ_ASSERT(p == NULL && om_last_error() == OM_EINVAL,
                    "aligned alloc with alignment %zu did not fail with OM_EINVAL", alignment);
        return;
    }
    FUZZ_ASSERT(p != NULL, "aligned alloc(%zu, %zu) failed: %s", alignment, size,
                om_last_error_message());
    *s = (slot){p, size, owner, st->next_seed++};
    check_fresh_block(s, alignment);
    fill_pattern(s);
}

/* Writes the slack between the size asked and the usable size: it is the
 * caller's to use, so nothing may break (ASan catches a usable size that
 * lies). The pattern's own bytes stay. */
static void op_touch_usable(slot *s)
{
    if (s->ptr == NULL || s->owner == OWNER_RAW)
        return;
    size_t usable = om_usable_size(s->ptr);
    size_t end = usable - s->size > FULL_PATTERN_MAX ? s->size + FULL_PATTERN_MAX : usable;
    memset(s->ptr + s->size, 0xA5, end - s->size);
}

/* Sizes no allocator can serve fail cleanly with OM_ENOMEM. */
static void op_impossible(fuzz_state *st, reader *r)
{
    enum owner owner = read_u8(r) % OWNER_COUNT;
    om_clear_error();
    void *p = owner_malloc(st, owner, (size_t)PTRDIFF_MAX + 1 + read_u8(r));
    FUZZ_ASSERT(p == NULL && om_last_error() == OM_ENOMEM, "malloc of > PTRDIFF_MAX bytes");
    om_clear_error();
    p = owner_calloc(st, owner, SIZE_MAX / 2 + 1, 2 + read_u8(r) % 4);
    FUZZ_ASSERT(p == NULL && om_last_error() != OM_OK, "calloc whose product overflows");
}

static void drop_heap_slots(fuzz_state *st, enum owner owner)
{
    for (size_t i = 0; i < SLOT_COUNT; i++) {
        if (st->slots[i].ptr != NULL && st->slots[i].owner == owner) {
            check_pattern(&st->slots[i], "before om_heap_delete");
            st->slots[i].ptr = NULL;
        }
    }
}

static void op_heap_delete(fuzz_state *st, reader *r)
{
    enum owner owner = OWNER_HEAP0 + read_u8(r) % HEAP_COUNT;
    om_heap **h = &st->heaps[owner - OWNER_HEAP0];
    if (*h == NULL)
        return;
    om_heap_check_heap(*h);
    drop_heap_slots(st, owner);
    om_heap_delete(*h);
    *h = NULL;
}

static void op_trim(fuzz_state *st, reader *r)
{
    uint8_t which = read_u8(r) % (HEAP_COUNT + 1);
    om_heap *h = which == HEAP_COUNT ? NULL : heap_of(st, OWNER_HEAP0 + which);
    if (which == HEAP_COUNT || h != NULL)
        om_heap_trim(h);
}

static void op_fault(fuzz_state *st, reader *r)
{
    om_domain domain = (om_domain)(read_u8(r) % OM_DOMAIN_COUNT);
    long n = read_u8(r) % 8;
    FUZZ_ASSERT(om_fail_after(domain, n) == 0, "om_fail_after");
    st->fault_armed[domain] = true;
}

static void op_purge_delay(reader *r)
{
    om_option_set(OM_OPTION_PURGE_DELAY_MS, read_u8(r) & 1 ? 0 : 1000);
}

static void check_heaps(fuzz_state *st)
{
    om_heap_check();
    for (size_t i = 0; i < HEAP_COUNT; i++)
        if (st->heaps[i] != NULL)
            om_heap_check_heap(st->heaps[i]);
}

static size_t live_bytes(void)
{
    om_heap_stats stats;
    om_heap_get_stats(NULL, &stats);
    return stats.small_used_bytes + stats.medium_used_bytes + stats.large_bytes;
}

static void run(fuzz_state *st, reader *r)
{
    for (unsigned step = 1; r->pos < r->size; step++) {
        uint8_t op = read_u8(r);
        slot *s = &st->slots[read_u8(r) % SLOT_COUNT];
        switch (op % 16) {
        case 0: case 1: case 2: op_malloc(st, r, s, false); break;
        case 3: op_malloc(st, r, s, true); break;
        case 4: case 5: op_realloc(st, r, s); break;
        case 6: case 7: slot_release(s); break;
        case 8: op_aligned(st, r, s); break;
        case 9: op_touch_usable(s); break;
        case 10: op_impossible(st, r); break;
        case 11: op_heap_delete(st, r); break;
        case 12: op_trim(st, r); break;
        case 13: op_fault(st, r); break;
        case 14: op_purge_delay(r); break;
        default: check_heaps(st); break;
        }
        if (step % CHECK_EVERY == 0)
            check_heaps(st);
    }
}

static void finish(fuzz_state *st, size_t baseline)
{
    for (int d = 0; d < OM_DOMAIN_COUNT; d++)
        if (st->fault_armed[d])
            om_fail_after((om_domain)d, -1);
    check_heaps(st);
    for (size_t i = 0; i < SLOT_COUNT; i++)
        slot_release(&st->slots[i]);
    for (size_t i = 0; i < HEAP_COUNT; i++)
        if (st->heaps[i] != NULL)
            om_heap_delete(st->heaps[i]);
    om_option_set(OM_OPTION_PURGE_DELAY_MS, 1000);
    om_heap_check();
    size_t live = live_bytes();
    FUZZ_ASSERT(live == baseline, "live bytes %zu after the input, %zu before", live, baseline);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fuzz_state st;
    static bool table_ready;
    if (!table_ready) {
        pattern_table_fill();
        table_ready = true;
    }
    memset(&st, 0, sizeof st);
    reader r = {data, size, 0};
    size_t baseline = live_bytes();
    run(&st, &r);
    finish(&st, baseline);
    return 0;
}
