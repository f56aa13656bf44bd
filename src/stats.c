/*
 * stats.c — snapshots of a heap, as numbers, a table or JSON.
 *
 * Nothing here costs the hot paths anything: the arena counters are kept by
 * pool.c on its slow paths, and everything else is computed by walking every
 * assigned pool of every arena (O(pools)), as CPython's _debugmallocstats
 * does. The table mirrors sys._debugmallocstats(): one row per size class
 * in use, then the arena totals.
 */
#include <string.h>

#include "internal.h"

static void stats_add_pool(om_heap_stats *out, const omi_pool *pool)
{
    om_size_class_stats *cls = &out->classes[pool->class_index];
    size_t capacity = omi_pool_capacity(pool->class_index);
    cls->pools++;
    cls->used_blocks += pool->used;
    cls->free_blocks += capacity - pool->used;
}

int om_heap_get_stats(const om_heap *h, om_heap_stats *out)
{
    if (out == NULL) {
        omi_set_error(OM_EINVAL, "om_heap_get_stats: out is NULL");
        return -1;
    }
    if (h == NULL)
        h = &omi_default_heap;
    memset(out, 0, sizeof *out);
    out->arena_size = OMI_ARENA_SIZE;
    out->pool_size = OMI_POOL_SIZE;
    out->arenas_allocated = h->arenas_allocated;
    out->arenas_freed = h->arenas_freed;
    out->arenas_current = h->arenas_current;
    out->arenas_highwater = h->arenas_highwater;
    out->mapped_bytes = h->arenas_current * OMI_ARENA_SIZE;
    for (const omi_arena *arena = h->all_arenas; arena != NULL; arena = arena->all_next) {
        out->pools_free += arena->nfree_pools;
        for (uint32_t i = 1; i < arena->untouched_index; i++) {
            if (arena->pools[i].class_index != OMI_POOL_UNASSIGNED)
                stats_add_pool(out, &arena->pools[i]);
        }
    }
    out->medium_arenas_current = h->medium.arenas_current;
    out->medium_arenas_allocated = h->medium.arenas_allocated;
    out->medium_arenas_freed = h->medium.arenas_freed;
    omi_medium_stats(h, &out->medium_used_bytes, &out->medium_free_bytes,
                     &out->medium_cached_bytes);
    out->large_count = h->large_count;
    out->large_bytes = h->large_bytes;
    out->large_cached_bytes = h->large_cached_bytes;
    out->purged_bytes = h->purged_bytes;
    out->purges = h->purges;
    for (size_t c = 0; c < OMI_CLASS_COUNT; c++) {
        om_size_class_stats *cls = &out->classes[c];
        cls->block_size = omi_class_block_size(c);
        cls->used_bytes = cls->used_blocks * cls->block_size;
        out->pools_used += cls->pools;
        out->small_used_bytes += cls->used_bytes;
        out->small_free_bytes += cls->free_blocks * cls->block_size;
    }
    return 0;
}

void om_heap_print_stats(const om_heap *h, FILE *out)
{
    om_heap_stats s;
    if (out == NULL)
        out = stderr;
    om_heap_get_stats(h, &s);
    fprintf(out, "Small block threshold = %d, in %d size classes.\n\n",
            OM_SMALL_SIZE_MAX, OM_SMALL_CLASS_COUNT);
    fprintf(out, "class   size   num pools   blocks in use  avail blocks\n");
    fprintf(out, "-----   ----   ---------   -------------  ------------\n");
    for (size_t c = 0; c < OMI_CLASS_COUNT; c++) {
        const om_size_class_stats *cls = &s.classes[c];
        if (cls->pools == 0)
            continue;
        fprintf(out, "%5zu %6zu %11zu %15zu %13zu\n", c, cls->block_size, cls->pools,
                cls->used_blocks, cls->free_blocks);
    }
    fprintf(out, "\n");
    fprintf(out, "%-36s = %15zu\n", "# arenas allocated total", s.arenas_allocated);
    fprintf(out, "%-36s = %15zu\n", "# arenas reclaimed", s.arenas_freed);
    fprintf(out, "%-36s = %15zu\n", "# arenas highwater mark", s.arenas_highwater);
    fprintf(out, "%-36s = %15zu\n", "# arenas allocated current", s.arenas_current);
    fprintf(out, "%zu arenas * %zu bytes/arena%*s = %15zu\n\n", s.arenas_current,
            s.arena_size, 11, "", s.mapped_bytes);
    fprintf(out, "%-36s = %15zu\n", "# bytes in allocated blocks", s.small_used_bytes);
    fprintf(out, "%-36s = %15zu\n", "# bytes in available blocks", s.small_free_bytes);
    fprintf(out, "%-36s = %15zu\n", "# pools in use", s.pools_used);
    fprintf(out, "%-36s = %15zu\n", "# unused pools", s.pools_free);
    fprintf(out, "%-36s = %15zu\n", "# bytes in arena descriptors",
            s.arenas_current * s.pool_size);
    size_t accounted = s.small_used_bytes + s.small_free_bytes +
                       (s.pools_free + s.arenas_current) * s.pool_size;
    fprintf(out, "%-36s = %15zu\n", "# bytes lost to quantization",
            s.mapped_bytes > accounted ? s.mapped_bytes - accounted : 0);
    fprintf(out, "%-36s = %15zu\n", "Total", s.mapped_bytes);
    fprintf(out, "\nMedium blocks (513 B - %zu KiB) and large mappings:\n\n",
            OM_MEDIUM_SIZE_MAX >> 10);
    fprintf(out, "%-36s = %15zu\n", "# medium arenas allocated total", s.medium_arenas_allocated);
    fprintf(out, "%-36s = %15zu\n", "# medium arenas reclaimed", s.medium_arenas_freed);
    fprintf(out, "%-36s = %15zu\n", "# medium arenas allocated current", s.medium_arenas_current);
    fprintf(out, "%-36s = %15zu\n", "# bytes in medium blocks in use", s.medium_used_bytes);
    fprintf(out, "%-36s = %15zu\n", "# bytes in medium class caches", s.medium_cached_bytes);
    fprintf(out, "%-36s = %15zu\n", "# bytes in free medium runs", s.medium_free_bytes);
    fprintf(out, "%-36s = %15zu\n", "# large blocks", s.large_count);
    fprintf(out, "%-36s = %15zu\n", "# bytes in large blocks", s.large_bytes);
    fprintf(out, "%-36s = %15zu\n", "# bytes in freed large mappings", s.large_cached_bytes);
    fprintf(out, "%-36s = %15zu\n", "# bytes purged (madvise)", s.purged_bytes);
    fprintf(out, "%-36s = %15zu\n", "# purges", s.purges);
}

void om_debug_malloc_stats(FILE *out)
{
    om_heap_print_stats(NULL, out);
}

int om_heap_write_stats_json(const om_heap *h, FILE *out)
{
    if (out == NULL) {
        omi_set_error(OM_EINVAL, "om_heap_write_stats_json: out is NULL");
        return -1;
    }
    om_heap_stats s;
    om_heap_get_stats(h, &s);
    fprintf(out,
            "{\"arena_size\":%zu,\"pool_size\":%zu,\"arenas_allocated\":%zu,"
            "\"arenas_freed\":%zu,\"arenas_current\":%zu,\"arenas_highwater\":%zu,"
            "\"pools_used\":%zu,\"pools_free\":%zu,\"small_used_bytes\":%zu,"
            "\"small_free_bytes\":%zu,\"mapped_bytes\":%zu,",
            s.arena_size, s.pool_size, s.arenas_allocated, s.arenas_freed, s.arenas_current,
            s.arenas_highwater, s.pools_used, s.pools_free, s.small_used_bytes,
            s.small_free_bytes, s.mapped_bytes);
    fprintf(out,
            "\"medium_arenas_current\":%zu,\"medium_arenas_allocated\":%zu,"
            "\"medium_arenas_freed\":%zu,\"medium_used_bytes\":%zu,"
            "\"medium_cached_bytes\":%zu,\"medium_free_bytes\":%zu,"
            "\"large_count\":%zu,\"large_bytes\":%zu,\"large_cached_bytes\":%zu,\"purged_bytes\":%zu,"
            "\"purges\":%zu,\"classes\":[",
            s.medium_arenas_current, s.medium_arenas_allocated, s.medium_arenas_freed,
            s.medium_used_bytes, s.medium_cached_bytes, s.medium_free_bytes, s.large_count,
            s.large_bytes, s.large_cached_bytes, s.purged_bytes, s.purges);
    for (size_t c = 0; c < OMI_CLASS_COUNT; c++) {
        const om_size_class_stats *cls = &s.classes[c];
        fprintf(out,
                "%s{\"block_size\":%zu,\"pools\":%zu,\"used_blocks\":%zu,"
                "\"free_blocks\":%zu,\"used_bytes\":%zu}",
                c == 0 ? "" : ",", cls->block_size, cls->pools, cls->used_blocks,
                cls->free_blocks, cls->used_bytes);
    }
    fprintf(out, "]}\n");
    return 0;
}

void omi_stats_print_at_exit(void)
{
    om_debug_malloc_stats(stderr);
}
