/*
 * format.c — output and measurement helpers shared by the tool's subcommands.
 *
 * Numbers: thousands separators and binary units (B, KiB, MiB, GiB) without
 * locale; durations in ns/us/ms/s. Each formatter writes into one of
 * FMT_SLOTS rotating static buffers and returns it, so a single printf can
 * take up to FMT_SLOTS formatted numbers (the tool is single-threaded where
 * it prints). Escape codes (bold, dim) only when stdout is a terminal,
 * NO_COLOR is unset and TERM is not "dumb"; output is ASCII only.
 *
 * Errors: every message is one line on stderr that starts with
 * "objmem <command>:", so a user sees which subcommand complained.
 */
#include "tool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *tool_command_name; /* NULL until main() found the command */

/* ---- Colour ---------------------------------------------------------------- */

static bool tool_colour; /* stdout is a terminal that wants escape codes */

void colour_init(void)
{
    const char *term = getenv("TERM");
    tool_colour = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL &&
                  term != NULL && strcmp(term, "dumb") != 0;
}

const char *bold(void) { return tool_colour ? "\033[1m" : ""; }
const char *dim(void) { return tool_colour ? "\033[2m" : ""; }
const char *plain(void) { return tool_colour ? "\033[0m" : ""; }

/* ---- Numbers ----------------------------------------------------------------- */

enum { FMT_SLOTS = 16, FMT_CAP = 32 };

static char *fmt_slot(void)
{
    static char slots[FMT_SLOTS][FMT_CAP];
    static unsigned next;
    return slots[next++ % FMT_SLOTS];
}

const char *fmt_count(size_t n)
{
    char digits[FMT_CAP];
    int len = snprintf(digits, sizeof digits, "%zu", n);
    char *out = fmt_slot();
    int o = 0;
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            out[o++] = ',';
        out[o++] = digits[i];
    }
    out[o] = '\0';
    return out;
}

const char *fmt_bytes(size_t n)
{
    char *out = fmt_slot();
    double v = (double)n;
    if (n < 1024)
        snprintf(out, FMT_CAP, "%s B", fmt_count(n));
    else if (n < ((size_t)1 << 20))
        snprintf(out, FMT_CAP, "%.1f KiB", v / 1024.0);
    else if (n < ((size_t)1 << 30))
        snprintf(out, FMT_CAP, "%.1f MiB", v / (1024.0 * 1024.0));
    else
        snprintf(out, FMT_CAP, "%.2f GiB", v / (1024.0 * 1024.0 * 1024.0));
    return out;
}

const char *fmt_delta(size_t now, size_t before)
{
    char *out = fmt_slot();
    if (now >= before)
        snprintf(out, FMT_CAP, "%s%s", now > before ? "+" : "", fmt_bytes(now - before));
    else
        snprintf(out, FMT_CAP, "-%s", fmt_bytes(before - now));
    return out;
}

const char *fmt_rss(size_t rss)
{
    return rss ? fmt_bytes(rss) : "n/a";
}

const char *fmt_percent(double part, double whole)
{
    char *out = fmt_slot();
    snprintf(out, FMT_CAP, "%.1f %%", whole > 0 ? 100.0 * part / whole : 0.0);
    return out;
}

const char *fmt_ns(double ns)
{
    char *out = fmt_slot();
    if (ns < 1e3)
        snprintf(out, FMT_CAP, "%.1f ns", ns);
    else if (ns < 1e6)
        snprintf(out, FMT_CAP, "%.1f us", ns / 1e3);
    else if (ns < 1e9)
        snprintf(out, FMT_CAP, "%.2f ms", ns / 1e6);
    else
        snprintf(out, FMT_CAP, "%.2f s", ns / 1e9);
    return out;
}

/* ---- Errors ------------------------------------------------------------------ */

static void fail_print(const char *fmt, va_list ap)
{
    fflush(stdout);
    if (tool_command_name != NULL)
        fprintf(stderr, "objmem %s: ", tool_command_name);
    else
        fputs("objmem: ", stderr);
    vfprintf(stderr, fmt, ap);
}

int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_print(fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return -1;
}

int fail_om(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_print(fmt, ap);
    va_end(ap);
    fprintf(stderr, " failed: error %d: %s\n", (int)om_last_error(), om_last_error_message());
    return -1;
}

int usage_error(void (*usage)(FILE *), const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fail_print(fmt, ap);
    va_end(ap);
    fputs("\n\n", stderr);
    usage(stderr);
    return EXIT_USAGE;
}

bool is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

int finish_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "objmem %s: writing to stdout failed: %s\n", tool_command_name,
                strerror(errno));
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

/* ---- Measurements ------------------------------------------------------------- */

uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* From /proc/self/statm; 0 when it cannot be read (not Linux, no /proc). */
size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long total_pages = 0, resident_pages = 0;
    int got = fscanf(f, "%lu %lu", &total_pages, &resident_pages);
    fclose(f);
    long page_size = sysconf(_SC_PAGESIZE);
    if (got != 2 || page_size <= 0)
        return 0;
    return (size_t)resident_pages * (size_t)page_size;
}

/* Marsaglia's xorshift64: deterministic, good enough for workloads. */
uint64_t xorshift64(uint64_t *state)
{
    uint64_t x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *state = x;
}

int parse_count(const char *text, size_t min, size_t max, size_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-' || v < min || v > max)
        return -1;
    *out = (size_t)v;
    return 0;
}
