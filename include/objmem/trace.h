/* objmem/trace.h — part of objmem.h; include <objmem.h>, not this file. */
#ifndef OBJMEM_TRACE_H
#define OBJMEM_TRACE_H

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* 9. Allocation tracing (CPython's tracemalloc)                            */
/* ------------------------------------------------------------------------ */

/*
 * om_trace_start(n) wraps the allocators of all three domains: from then
 * on every block allocated through om_raw_*, om_mem_* and om_obj_* records
 * the size asked for and the traceback of the call, at most n frames,
 * innermost first. A frame is a return address in the caller's code; it
 * prints as "function (file:line)" where debug information and the
 * addr2line program exist (environment OBJMEM_ADDR2LINE names another
 * program; empty turns the lookup off), else "library+0xoffset".
 *
 * Frames: the first is exact whatever the caller was built with (the call
 * instruction that called om_*_malloc; a call in tail position is
 * attributed to the function's caller). Deeper frames follow the frame
 * pointer chain, so they need the calling code built with
 * -fno-omit-frame-pointer; a chain that leaves the thread's stack ends the
 * traceback early, it never crashes. Blocks made by om_heap_malloc or
 * om_aligned_alloc do not pass through the domains and are not traced.
 *
 * Cost and memory: a traced block carries a 32-byte header in front of it;
 * a traceback is stored once however many blocks share it. A block
 * allocated before tracing started is not traced (also not after a
 * realloc) and frees normally; a block traced before om_trace_stop frees
 * normally after it. Tracing and the debug hooks compose: call
 * om_setup_debug_hooks() first, then om_trace_start(), then arm fault
 * injection; a fatal report of the debug hooks then shows the block's
 * allocation traceback. Environment: OBJMEM_TRACEMALLOC=N starts tracing
 * with N frames at load time (after OBJMEM_MALLOC took effect); with it,
 * OBJMEM_TRACE_OUTPUT=PATH dumps a snapshot of what is still traced when
 * the process exits (atexit, after the program's own handlers) to PATH,
 * as om_snapshot_dump: what `objmem trace` reads.
 *
 * Threads: allocation and free through every domain may run on any thread
 * (RAW concurrently). om_trace_start and om_trace_stop install and remove
 * allocators, so, like om_set_allocator, call them while no other thread
 * allocates. Snapshots are values: any thread may use one it owns.
 */

/** Most frames a traceback keeps. */
#define OM_TRACE_MAX_FRAMES 128

/** Start tracing with tracebacks of at most `nframes` frames (1 …
 *  OM_TRACE_MAX_FRAMES). Starting again after om_trace_stop begins afresh:
 *  blocks traced before no longer count. While tracing, changes the frame
 *  limit for new blocks. Returns 0, or -1 with OM_EINVAL for a bad nframes
 *  or OM_ENOMEM. */
OM_API int om_trace_start(int nframes);

/** Stop tracing: later blocks are not traced, the traced-memory counters
 *  and the traces are dropped (snapshots already taken stay valid). Blocks
 *  traced before still free normally. Returns 0 (also when not tracing). */
OM_API int om_trace_stop(void);

/** 1 while tracing, else 0. */
OM_API int om_trace_is_tracing(void);

/** The frame limit given to om_trace_start (0 when not tracing). */
OM_API int om_trace_get_traceback_limit(void);

/** Bytes in traced blocks now (*current) and the most there were at once
 *  since tracing started or om_trace_reset_peak (*peak); sizes as asked
 *  for, headers not counted. Both 0 when not tracing. Either pointer may
 *  be NULL. Exact when the domains are not used concurrently; with RAW
 *  calls racing on other threads the peak is the largest total one of
 *  the calls saw. */
OM_API void om_trace_get_traced_memory(size_t *current, size_t *peak);

/** Set the peak to the current traced size. */
OM_API void om_trace_reset_peak(void);

/** The traceback of a block: nframes return addresses, innermost first. */
typedef struct om_traceback {
    size_t nframes;                 /**< entries in frames */
    om_domain domain;               /**< the domain it was allocated through */
    size_t size;                    /**< bytes asked for */
    const void *frames[];           /**< return addresses, innermost first */
} om_traceback;

/** A copy of the traceback of live block ptr, to free with
 *  om_traceback_free; NULL with OM_EINVAL when ptr is NULL or was not
 *  traced (allocated before tracing, or by a private heap), OM_ENOMEM when
 *  out of memory. ptr must be a live block of a domain or a live object
 *  (for an object of a GC type, whose block begins with the collector's
 *  header, size counts that header too). */
OM_API om_traceback *om_trace_get_object_traceback(const void *ptr) OM_NODISCARD;

/** Free a traceback from om_trace_get_object_traceback (NULL is fine). */
OM_API void om_traceback_free(om_traceback *tb);

/** Writes the name of return address `frame` into buf (always
 *  NUL-terminated, truncated to size - 1 bytes): "function (file:line)",
 *  "function (library+0xoffset)" or "library+0xoffset". Frames of a loaded
 *  snapshot print the names stored in the file. Slow (may run addr2line
 *  once per library; names are cached). Returns the length of the full
 *  name, or -1 with OM_EINVAL for a NULL buf with size > 0. */
OM_API int om_trace_format_frame(const void *frame, char *buf, size_t size);

/** A snapshot of the traced blocks: their tracebacks with the size and
 *  number of live blocks of each. Opaque; free with om_snapshot_free. */
typedef struct om_snapshot om_snapshot;

/** A snapshot of what is traced now; NULL with OM_EINVAL when not tracing,
 *  OM_ENOMEM when out of memory. Cost: O(distinct tracebacks), not
 *  O(blocks): counters are kept per traceback. */
OM_API om_snapshot *om_trace_take_snapshot(void) OM_NODISCARD;

/** Free a snapshot (NULL is fine). */
OM_API void om_snapshot_free(om_snapshot *snap);

/** The traceback limit the snapshot was taken with. */
OM_API int om_snapshot_traceback_limit(const om_snapshot *snap);

/** Which traces a filter keeps. A pattern is a shell glob (fnmatch) tried
 *  against the frame's source file path, its base name, its library's
 *  path and that path's base name; it matches if any of them matches,
 *  e.g. "*.c", "parser.c", "*libfoo.so*", "/usr/lib/x86_64-linux-gnu/libc.so.6". */
typedef struct om_trace_filter {
    int inclusive;          /**< 1: keep only matching traces; 0: drop them */
    const char *pattern;    /**< glob, see above (NULL matches every frame) */
    int all_frames;         /**< 0: test the innermost frame; 1: any frame */
    int domain;             /**< -1: any domain; else only traces of that domain match */
} om_trace_filter;

/** A new snapshot with the traces of snap that pass every filter (as
 *  CPython's Snapshot.filter_traces: a trace is kept when it matches every
 *  inclusive filter and no exclusive one). NULL with OM_EINVAL (NULL snap,
 *  or nfilters > 0 with NULL filters) or OM_ENOMEM. */
OM_API om_snapshot *om_snapshot_filter(const om_snapshot *snap, const om_trace_filter *filters,
                                       size_t nfilters) OM_NODISCARD;

/** How statistics group traces. */
typedef enum om_trace_group {
    OM_TRACE_BY_SITE = 0,        /**< by the innermost frame: the call site */
    OM_TRACE_BY_TRACEBACK = 1,   /**< by the whole traceback */
} om_trace_group;

/** One group of traces. */
typedef struct om_trace_stat {
    size_t size;                 /**< bytes in live blocks (the new snapshot's, for a compare) */
    size_t count;                /**< live blocks */
    ptrdiff_t size_diff;         /**< om_snapshot_compare: size - the old snapshot's; else 0 */
    ptrdiff_t count_diff;        /**< om_snapshot_compare: count - the old one's; else 0 */
    size_t nframes;              /**< frames of the group (1 for OM_TRACE_BY_SITE) */
    const void *const *frames;   /**< innermost first; owned by the om_trace_stats */
} om_trace_stat;

/** Statistics: entries sorted by size descending (a compare: by absolute
 *  size_diff descending), ties by count, then by frame addresses. */
typedef struct om_trace_stats {
    size_t count;                /**< entries */
    om_trace_stat *entries;      /**< the groups */
    size_t total_size;           /**< sum of size */
    ptrdiff_t total_size_diff;   /**< sum of size_diff */
} om_trace_stats;

/** The traces of snap grouped by `group` (domains merged). NULL with
 *  OM_EINVAL for a NULL snap or unknown group, OM_ENOMEM. */
OM_API om_trace_stats *om_snapshot_statistics(const om_snapshot *snap,
                                              om_trace_group group) OM_NODISCARD;

/** The groups of new_snap with their differences against old_snap (a
 *  group only in old_snap appears with size 0 and negative diffs). NULL
 *  with OM_EINVAL or OM_ENOMEM. */
OM_API om_trace_stats *om_snapshot_compare(const om_snapshot *old_snap,
                                           const om_snapshot *new_snap,
                                           om_trace_group group) OM_NODISCARD;

/** Free statistics (NULL is fine). */
OM_API void om_trace_stats_free(om_trace_stats *stats);

/** Print the first `limit` entries (0 = all), one per line:
 *  "<frame>: size=…, count=…" with ", +… B, +… blocks" after a compare,
 *  further frames of a traceback group indented below. */
OM_API void om_trace_print_stats(FILE *out, const om_trace_stats *stats, size_t limit);

/** Write snap to the file at path (format "objmem trace snapshot",
 *  version 1: frames stored as library path + offset + name, so that a
 *  later process of the same programs can load and compare it). Returns 0,
 *  or -1 with OM_EINVAL (NULL argument) or OM_ENOMEM (cannot write; the
 *  message has the reason). */
OM_API int om_snapshot_dump(const om_snapshot *snap, const char *path);

/** Read a snapshot written by om_snapshot_dump. Frames of libraries that
 *  this process has loaded get their addresses here, so compare and
 *  get_object_traceback results match them; others keep their stored
 *  names. NULL with OM_EINVAL for a file that is not a snapshot, of
 *  another version, truncated or corrupt (checked by length and checksum),
 *  or OM_ENOMEM. Never trusts a count before the file's size confirms it. */
OM_API om_snapshot *om_snapshot_load(const char *path) OM_NODISCARD;

#ifdef __cplusplus
}
#endif

#endif /* OBJMEM_TRACE_H */
