/*
 * tool.h — what the files of the objmem command-line tool share.
 *
 * The tool is one program, `objmem`, with one file per subcommand:
 *   objmem.c     main(): the command table, dispatch, the top-level usage
 *   format.c     output helpers: numbers with units, colour, error lines,
 *                measurements (clock, RSS), a deterministic PRNG
 *   demo.c       `objmem demo`   the guided tour
 *   cmd_stats.c  `objmem stats`  heap tables of a workload or a JSON snapshot
 *   cmd_bench.c  `objmem bench`  the allocator benchmark against its peers
 *   cmd_trace.c  `objmem trace`  a program's top allocation sites and leaks
 *   cmd_report.c `objmem report` the HTML heap report (om_write_report)
 *
 * Every subcommand is `int cmd_<name>(int argc, char **argv)` with argv[0]
 * the subcommand's name, and `void <name>_usage(FILE *out)`. Exit status,
 * for all of them: 0 success; 1 a run-time failure; 2 a usage error (the
 * message and the usage on stderr). `--help` prints the usage on stdout
 * and exits 0.
 */
#ifndef OBJMEM_TOOL_H
#define OBJMEM_TOOL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "objmem.h"

#if defined(__GNUC__) || defined(__clang__)
#define TOOL_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define TOOL_PRINTF(f, a)
#endif

enum { EXIT_USAGE = 2 };

/* ---- format.c: output ---------------------------------------------------- */

/* Name used in error lines ("objmem <name>: …"); set by main(), NULL before. */
extern const char *tool_command_name;

/* Decide once whether stdout wants escape codes (a terminal, NO_COLOR unset,
 * TERM not dumb). */
void colour_init(void);
const char *bold(void);
const char *dim(void);
const char *plain(void);

/* The formatters return one of 16 rotating buffers, so one printf can take
 * several formatted numbers. */
const char *fmt_count(size_t n);                  /* 1234567 -> "1,234,567" */
const char *fmt_bytes(size_t n);                  /* "512 B", "16.0 KiB", "1.25 GiB" */
const char *fmt_delta(size_t now, size_t before); /* "+78.3 MiB", "-1.0 MiB", "0 B" */
const char *fmt_rss(size_t rss);                  /* fmt_bytes, or "n/a" for 0 */
const char *fmt_percent(double part, double whole); /* "12.5 %" */
const char *fmt_ns(double ns);                    /* "8.4 ns", "12.1 us", "3.02 ms", "1.50 s" */

/* "objmem <command>: <message>\n" on stderr; returns -1 for `return fail(…)`. */
int fail(const char *fmt, ...) TOOL_PRINTF(1, 2);
/* As fail(), then " failed: error <code>: <om_last_error_message()>". */
int fail_om(const char *fmt, ...) TOOL_PRINTF(1, 2);
/* A usage error: "objmem <command>: <message>", a blank line, the usage, all
 * on stderr; returns EXIT_USAGE. */
int usage_error(void (*usage)(FILE *), const char *fmt, ...) TOOL_PRINTF(2, 3);
/* True for "-h" and "--help". */
bool is_help(const char *arg);
/* Flush stdout; EXIT_SUCCESS, or EXIT_FAILURE with a message if writing failed. */
int finish_stdout(void);

/* ---- format.c: measurements ---------------------------------------------- */

uint64_t now_ns(void);          /* CLOCK_MONOTONIC, nanoseconds */
size_t rss_bytes(void);         /* this process's RSS, bytes; 0 if unknown */
uint64_t xorshift64(uint64_t *state);
/* A decimal count in [min, max]; 0, or -1 for anything else. */
int parse_count(const char *text, size_t min, size_t max, size_t *out);

/* ---- cmd_stats.c: the heap tables and the workload behind them ------------ */

/* The size-class table and the arena, medium and large totals of s. */
void print_stats_tables(const om_heap_stats *s);

enum {
    WL_DICT_KEYS = 20000,      /* str keys of the dict, each with an int value */
    WL_LIST_ITEMS = 50000,     /* items of the list: ints and strs alternating */
    WL_MEDIUM_BUFFERS = 64,    /* om_mem_malloc buffers of 1 KiB .. 192 KiB */
    WL_LARGE_BUFFERS = 4,      /* om_mem_malloc buffers of 1 MiB .. 4 MiB */
};

/* What a typical program holds, on the default heap (`objmem stats`, and
 * the page of `objmem report`). */
typedef struct stats_workload {
    om_object *dict;                        /* str -> int */
    om_object *list;                        /* ints and strs */
    void *medium[WL_MEDIUM_BUFFERS];        /* medium buffers */
    void *large[WL_LARGE_BUFFERS];          /* large buffers */
} stats_workload;

/* Builds it: 0, or -1 after reporting (what was built stays in *w for
 * stats_workload_free). */
int stats_workload_run(stats_workload *w);
/* Frees everything stats_workload_run made (also after a failure). */
void stats_workload_free(stats_workload *w);

/* ---- the subcommands ----------------------------------------------------- */

int cmd_demo(int argc, char **argv);
void demo_usage(FILE *out);
int cmd_stats(int argc, char **argv);
void stats_usage(FILE *out);
int cmd_bench(int argc, char **argv);
void bench_usage(FILE *out);
int cmd_trace(int argc, char **argv);
void trace_usage(FILE *out);
int cmd_report(int argc, char **argv);
void report_usage(FILE *out);

#endif /* OBJMEM_TOOL_H */
