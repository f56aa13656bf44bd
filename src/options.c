/*
 * options.c — run-time options: one enum (objmem.h), one table here.
 *
 * Each option has a name, a default (a compile-time OM_DEFAULT_<NAME> that
 * a build may override), a range, and an environment variable
 * OBJMEM_<NAME> read once at load time. A value outside the range, in the
 * environment or through om_option_set, is refused: the environment's with
 * one line on stderr, the call's with OM_EINVAL. The hot paths read
 * omi_option_values[] directly.
 *
 * The environment is read by a constructor of the highest priority, before
 * the other modules' constructors can allocate: a heap's hardened mode
 * (OBJMEM_SECURE) is fixed when it takes its first pool.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#ifndef OM_DEFAULT_PURGE_DELAY_MS
#define OM_DEFAULT_PURGE_DELAY_MS 1000
#endif
#ifndef OM_DEFAULT_GC_INCREMENTAL_BUDGET_US
#define OM_DEFAULT_GC_INCREMENTAL_BUDGET_US 0
#endif
#ifndef OM_DEFAULT_SECURE
#define OM_DEFAULT_SECURE 0
#endif

typedef struct option_desc {
    const char *env_name;     /* environment variable */
    long min;                 /* smallest accepted value */
    long max;                 /* largest accepted value */
} option_desc;

static const option_desc option_table[OM_OPTION_COUNT] = {
    [OM_OPTION_PURGE_DELAY_MS] = {"OBJMEM_PURGE_DELAY_MS", 0, 3600L * 1000},
    [OM_OPTION_GC_INCREMENTAL_BUDGET_US] = {"OBJMEM_GC_INCREMENTAL_BUDGET_US", 0, 1000L * 1000},
    [OM_OPTION_SECURE] = {"OBJMEM_SECURE", 0, 1},
};

long omi_option_values[OM_OPTION_COUNT] = {
    [OM_OPTION_PURGE_DELAY_MS] = OM_DEFAULT_PURGE_DELAY_MS,
    [OM_OPTION_GC_INCREMENTAL_BUDGET_US] = OM_DEFAULT_GC_INCREMENTAL_BUDGET_US,
    [OM_OPTION_SECURE] = OM_DEFAULT_SECURE,
};

static bool option_is_known(om_option option)
{
    return (unsigned)option < OM_OPTION_COUNT;
}

long om_option_get(om_option option)
{
    if (!option_is_known(option)) {
        omi_set_error(OM_EINVAL, "om_option_get: unknown option %d", (int)option);
        return -1;
    }
    return omi_option_values[option];
}

int om_option_set(om_option option, long value)
{
    if (!option_is_known(option)) {
        omi_set_error(OM_EINVAL, "om_option_set: unknown option %d", (int)option);
        return -1;
    }
    const option_desc *desc = &option_table[option];
    if (value < desc->min || value > desc->max) {
        omi_set_error(OM_EINVAL, "om_option_set: %ld is outside %ld … %ld for %s", value,
                      desc->min, desc->max, desc->env_name);
        return -1;
    }
    omi_option_values[option] = value;
    return 0;
}

__attribute__((constructor(101))) static void options_read_environment(void)
{
    for (int i = 0; i < OM_OPTION_COUNT; i++) {
        const char *text = getenv(option_table[i].env_name);
        if (text == NULL || *text == '\0')
            continue;
        char *end;
        errno = 0;
        long value = strtol(text, &end, 10);
        if (errno != 0 || *end != '\0' || om_option_set((om_option)i, value) != 0)
            fprintf(stderr, "objmem: ignoring %s=%s (not a whole number in %ld … %ld)\n",
                    option_table[i].env_name, text, option_table[i].min, option_table[i].max);
    }
}
