/*
 * error.c — the calling thread's last error, and fatal reports.
 *
 * Every failing public call records a code and a message here through
 * omi_set_error (one reporting function for the whole library); the caller
 * reads them with om_last_error() and om_last_error_message(). The record is
 * thread-local, so threads never see each other's errors.
 *
 * Fatal misuse (corruption that makes continuing unsafe) goes through
 * omi_fatal: one report on stderr, then abort(), like Py_FatalError.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

#define ERROR_MESSAGE_SIZE 256

typedef struct error_state {
    om_error code;                       /* last code, OM_OK if none */
    char message[ERROR_MESSAGE_SIZE];    /* last message, NUL-terminated */
} error_state;

static _Thread_local error_state thread_error __attribute__((tls_model("initial-exec")));

void omi_set_error(om_error code, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(thread_error.message, sizeof thread_error.message, fmt, args);
    va_end(args);
    thread_error.code = code;
}

void omi_fatal(const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    fputs("objmem: fatal error: ", stderr);
    vfprintf(stderr, fmt, args);
    fputc('\n', stderr);
    va_end(args);
    fflush(stderr);
    abort();
}

void omi_invalid_pointer(const char *function, const void *p, const char *finding)
{
    omi_fatal("%s(%p): not a block objmem handed out\n"
              "  the address map says: %s\n"
              "  (a pointer from another allocator, the inside of a block, or a block\n"
              "  already freed)",
              function, p, finding);
}

void *omi_out_of_memory(size_t size)
{
    errno = ENOMEM;
    omi_set_error(OM_ENOMEM, "out of memory: cannot allocate %zu bytes", size);
    return NULL;
}

void *omi_calloc_overflow(size_t count, size_t size)
{
    errno = ENOMEM;
    omi_set_error(OM_ENOMEM, "calloc: %zu elements of %zu bytes overflow the address space",
                  count, size);
    return NULL;
}

om_error om_last_error(void)
{
    return thread_error.code;
}

const char *om_last_error_message(void)
{
    return thread_error.message;
}

void om_clear_error(void)
{
    thread_error.code = OM_OK;
    thread_error.message[0] = '\0';
}
