/*
 * track.h — telling AddressSanitizer and valgrind which bytes of a pool are
 * live.
 *
 * The pools hand out blocks from memory that the tools see as one big
 * mapping, so without help a use-after-free inside a pool goes unseen. These
 * macros describe each transition of a block to the tool that is active:
 *
 *   omi_track_malloc(p, size)    a block is handed out: addressable, contents
 *                                undefined (valgrind: MALLOCLIKE_BLOCK)
 *   omi_track_free(p, size)      a block is given back: no access
 *   omi_track_resize(p, old, new)  a live block grew in place
 *   omi_asan_readable(p, size)     ASan: the bytes may be read (a check the
 *                                  debug hooks make before trusting a header
 *                                  in front of a pointer that is not objmem's)
 *   omi_track_internal_open(p, size)   the allocator itself is about to
 *                                read/write the free-list link of a free block
 *   omi_track_internal_close(p, size)  …and is done with it
 *
 * In a build with neither OM_ASAN nor OM_VALGRIND every macro compiles to
 * nothing, so the hot paths carry no cost.
 */
#ifndef OM_TRACK_H
#define OM_TRACK_H

#include <stddef.h>

#if defined(OM_ASAN) && OM_ASAN
#include <sanitizer/asan_interface.h>
#define omi_asan_poison(p, size) ASAN_POISON_MEMORY_REGION((p), (size))
#define omi_asan_unpoison(p, size) ASAN_UNPOISON_MEMORY_REGION((p), (size))
#define omi_asan_readable(p, size) (__asan_region_is_poisoned((void *)(p), (size)) == NULL)
#else
#define omi_asan_poison(p, size) ((void)(p), (void)(size))
#define omi_asan_unpoison(p, size) ((void)(p), (void)(size))
#define omi_asan_readable(p, size) ((void)(p), (void)(size), 1)
#endif

#if defined(OM_VALGRIND) && OM_VALGRIND
#include <valgrind/memcheck.h>
#define omi_vg_malloclike(p, size) VALGRIND_MALLOCLIKE_BLOCK((p), (size), 0, 0)
#define omi_vg_freelike(p) VALGRIND_FREELIKE_BLOCK((p), 0)
#define omi_vg_defined(p, size) VALGRIND_MAKE_MEM_DEFINED((p), (size))
#define omi_vg_noaccess(p, size) VALGRIND_MAKE_MEM_NOACCESS((p), (size))
#define omi_vg_resize(p, old, new) VALGRIND_RESIZEINPLACE_BLOCK((p), (old), (new), 0)
#else
#define omi_vg_malloclike(p, size) ((void)(p), (void)(size))
#define omi_vg_freelike(p) ((void)(p))
#define omi_vg_defined(p, size) ((void)(p), (void)(size))
#define omi_vg_noaccess(p, size) ((void)(p), (void)(size))
#define omi_vg_resize(p, old, new) ((void)(p), (void)(old), (void)(new))
#endif

#define omi_track_malloc(p, size) \
    do { omi_asan_unpoison((p), (size)); omi_vg_malloclike((p), (size)); } while (0)
#define omi_track_free(p, size) \
    do { omi_vg_freelike(p); omi_asan_poison((p), (size)); } while (0)
#define omi_track_resize(p, old, new) \
    do { omi_asan_unpoison((p), (new)); omi_vg_resize((p), (old), (new)); } while (0)
#define omi_track_internal_open(p, size) \
    do { omi_asan_unpoison((p), (size)); omi_vg_defined((p), (size)); } while (0)
#define omi_track_internal_close(p, size) \
    do { omi_asan_poison((p), (size)); omi_vg_noaccess((p), (size)); } while (0)

#endif
