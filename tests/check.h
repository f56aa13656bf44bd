/*
 * check.h — the in-house test harness.
 *
 * CHECK(expr) records one check; a failure prints file:line and the
 * expression. CHECK_EQ_SIZE(a, b) prints both values too. At the end,
 * check_report() prints "N passed, N failed" (the line CTest logs and CI
 * reads) and returns the process exit code.
 *
 * check_run_child(fn, arg, stderr_buf, cap) runs fn in a forked child and
 * returns its wait status, with the child's stderr captured: for tests of
 * fatal reports that abort.
 *
 * OM_TEST_SCALE(n) shrinks stress parameters under sanitizers and valgrind
 * (OM_TEST_VALGRIND, set by `make valgrind`).
 */
#ifndef OM_TESTS_CHECK_H
#define OM_TESTS_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int check_passed;
static int check_failed;

#define CHECK(expr)                                                          \
    do {                                                                     \
        if (expr) {                                                          \
            check_passed++;                                                  \
        } else {                                                             \
            check_failed++;                                                  \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, \
                    #expr);                                                  \
        }                                                                    \
    } while (0)

#define CHECK_EQ_SIZE(a, b)                                                   \
    do {                                                                      \
        size_t check_a_ = (size_t)(a), check_b_ = (size_t)(b);                \
        if (check_a_ == check_b_) {                                           \
            check_passed++;                                                   \
        } else {                                                              \
            check_failed++;                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%zu != %zu)\n",   \
                    __FILE__, __LINE__, #a, #b, check_a_, check_b_);          \
        }                                                                     \
    } while (0)

#if defined(OM_TEST_SANITIZED) || defined(OM_TEST_VALGRIND)
#define OM_TEST_SCALE(n) ((n) / 10 > 0 ? (n) / 10 : 1)
#else
#define OM_TEST_SCALE(n) (n)
#endif

static inline int check_report(void)
{
    printf("%d passed, %d failed\n", check_passed, check_failed);
    fflush(stdout);
    return check_failed == 0 ? 0 : 1;
}

/* Runs fn(arg) in a child process; its stderr lands in buf (NUL-terminated,
 * truncated to cap - 1 bytes). Returns the raw wait status, or -1. */
static inline int check_run_child(void (*fn)(void *), void *arg, char *buf, size_t cap)
{
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t got;
    while (len + 1 < cap && (got = read(fds[0], buf + len, cap - 1 - len)) > 0)
        len += (size_t)got;
    buf[len] = '\0';
    char sink[256];
    while (read(fds[0], sink, sizeof sink) > 0) {
    }
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

/* Resident set size of this process in bytes, from /proc/self/statm. */
static inline size_t check_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long total = 0, resident = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &total, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

#endif
