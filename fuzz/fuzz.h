/* fuzz/fuzz.h — what the fuzz targets share.
 *
 * FUZZ_ASSERT(cond, fmt, ...): a check of the target's own model of objmem
 * (a shadow of every block, or of every node's life). When it fails the
 * report names the file, line and condition, then the details, and the
 * target aborts, so that libFuzzer (or replay.c) keeps the input.
 */
#ifndef OBJMEM_FUZZ_H
#define OBJMEM_FUZZ_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_ASSERT(cond, ...)                                                    \
    do {                                                                          \
        if (!(cond)) {                                                            \
            fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);            \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
            abort();                                                              \
        }                                                                         \
    } while (0)

#endif
