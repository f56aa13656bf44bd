/*
 * cmd_trace.c — `objmem trace`: run a program linked with objmem with
 * allocation tracing on, then show where its still-live memory came from.
 *
 * How: the library reads two environment variables at load time
 * (src/trace.c): OBJMEM_TRACEMALLOC=N starts tracing with N frames, and
 * OBJMEM_TRACE_OUTPUT=PATH makes it dump a snapshot of every block still
 * traced when the process exits (atexit, om_snapshot_dump format). So the
 * tool needs nothing from the program but its link to objmem:
 *
 *   1. make a private directory (mkdtemp in $TMPDIR, else /tmp) for the
 *      snapshot file;
 *   2. posix_spawnp the program with both variables added to the
 *      environment, and wait for it (its stdout and stderr pass through);
 *   3. report how it ended (exit status or signal), om_snapshot_load the
 *      file, print the top sites by live bytes (OM_TRACE_BY_SITE) and the
 *      tracebacks of the live blocks (OM_TRACE_BY_TRACEBACK), --top each;
 *   4. remove the file and the directory.
 * A program that is not linked with objmem, or that ends without running
 * its atexit handlers (a signal, _exit), leaves no snapshot: the tool says
 * so and exits 1. Frame names come from the snapshot (the program's
 * addr2line names, made in the child at exit).
 *
 * Exit status: 0 the program ran and its trace is shown (whatever the
 * program's own exit status, which is printed); 1 the program could not
 * be started or left no snapshot; 2 a usage error.
 */
#include "tool.h"

#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

enum {
    TRACE_DEFAULT_FRAMES = 16,  /* frames per traceback */
    TRACE_DEFAULT_TOP = 10,     /* entries per table */
    TRACE_MAX_TOP = 100000,
    TRACE_NAME_CAP = 512,       /* a frame name, truncated beyond */
};

typedef struct trace_options {
    size_t frames;      /* --frames */
    size_t top;         /* --top */
    char **program;     /* argv of the program, NULL-terminated */
} trace_options;

void trace_usage(FILE *out)
{
    fprintf(out,
            "usage: objmem trace [--frames N] [--top K] [--] PROGRAM [ARGS...]\n"
            "\n"
            "Runs PROGRAM (a program linked with objmem) with allocation tracing\n"
            "on (OBJMEM_TRACEMALLOC=N, OBJMEM_TRACE_OUTPUT=a private file), waits\n"
            "for it, reports its exit status, then shows the memory it still held\n"
            "through om_raw_*, om_mem_* and om_obj_* when it exited: the top\n"
            "allocation sites by live bytes, and the full tracebacks of the live\n"
            "blocks. PROGRAM is looked up in PATH; its output passes through.\n"
            "Deep tracebacks need PROGRAM built with -fno-omit-frame-pointer, and\n"
            "function names and lines need debug information (-g) and addr2line.\n"
            "\n"
            "options:\n"
            "  --frames N   frames per traceback, 1 .. %d (default %d)\n"
            "  --top K      entries per table, 1 .. %d (default %d)\n"
            "  -h, --help   show this help\n"
            "\n"
            "exit status: 0 the trace is shown (PROGRAM's own status is printed),\n"
            "1 PROGRAM could not run or left no trace, 2 usage error\n",
            OM_TRACE_MAX_FRAMES, TRACE_DEFAULT_FRAMES, TRACE_MAX_TOP, TRACE_DEFAULT_TOP);
}

/* Parses the options; 0, or EXIT_USAGE after reporting, or -1 for --help. */
static int trace_parse(int argc, char **argv, trace_options *o)
{
    o->frames = TRACE_DEFAULT_FRAMES;
    o->top = TRACE_DEFAULT_TOP;
    o->program = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (is_help(argv[i]))
            return -1;
        bool frames = strcmp(argv[i], "--frames") == 0, top = strcmp(argv[i], "--top") == 0;
        if (!frames && !top)
            return usage_error(trace_usage, "unknown option '%s'", argv[i]);
        if (i + 1 == argc)
            return usage_error(trace_usage, "%s wants a number", argv[i]);
        size_t max = frames ? OM_TRACE_MAX_FRAMES : TRACE_MAX_TOP;
        if (parse_count(argv[i + 1], 1, max, frames ? &o->frames : &o->top) != 0)
            return usage_error(trace_usage, "%s wants a number from 1 to %zu, not '%s'", argv[i],
                               max, argv[i + 1]);
        i++;
    }
    if (i == argc)
        return usage_error(trace_usage, "no PROGRAM to run");
    o->program = argv + i;
    return 0;
}

/* environ plus the two variables (replacing any inherited values); NULL
 * when out of memory. The strings are the caller's (vars), not copied. */
static char **child_environment(char *const vars[2])
{
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **env = malloc((n + 3) * sizeof *env);
    if (env == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], "OBJMEM_TRACEMALLOC=", 19) != 0 &&
            strncmp(environ[i], "OBJMEM_TRACE_OUTPUT=", 20) != 0)
            env[k++] = environ[i];
    env[k++] = vars[0];
    env[k++] = vars[1];
    env[k] = NULL;
    return env;
}

/* Spawns the program and waits; 0 with its wait status, or -1 after
 * reporting why it could not start. */
static int run_program(char **program, char *const vars[2], int *status)
{
    char **env = child_environment(vars);
    if (env == NULL)
        return fail("out of memory");
    pid_t pid;
    int rc = posix_spawnp(&pid, program[0], NULL, NULL, program, env);
    free(env);
    if (rc != 0)
        return fail("cannot run '%s': %s", program[0], strerror(rc));
    while (waitpid(pid, status, 0) < 0) {
        if (errno != EINTR)
            return fail("waiting for '%s': %s", program[0], strerror(errno));
    }
    return 0;
}

static void print_ending(const char *name, int status)
{
    fflush(stdout);
    printf("\n%sobjmem trace%s: %s ", bold(), plain(), name);
    if (WIFEXITED(status))
        printf("exited with status %d\n", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        printf("was killed by signal %d (%s)\n", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        printf("ended with wait status 0x%x\n", (unsigned)status);
}

static const char *frame_name(const void *frame)
{
    static char name[TRACE_NAME_CAP];
    om_trace_format_frame(frame, name, sizeof name);
    return name;
}

/* The first `top` entries: live bytes, blocks, average, then the site (and
 * the rest of the traceback, indented, when the group is a traceback). */
static void print_table(const om_trace_stats *st, size_t top)
{
    printf("%s  %10s %9s %10s   %s%s\n", dim(), "live", "blocks", "average", "allocated at", plain());
    size_t shown = st->count < top ? st->count : top;
    for (size_t i = 0; i < shown; i++) {
        const om_trace_stat *e = &st->entries[i];
        printf("  %10s %9s %10s   %s\n", fmt_bytes(e->size), fmt_count(e->count),
               fmt_bytes(e->count ? e->size / e->count : 0), frame_name(e->frames[0]));
        for (size_t f = 1; f < e->nframes; f++)
            printf("  %31s   %s\n", "", frame_name(e->frames[f]));
    }
    if (st->count > shown)
        printf("  ... and %s more (--top)\n", fmt_count(st->count - shown));
}

/* Both tables of the snapshot at path; 0, or -1 after reporting. */
static int print_trace(const char *program, const char *path, size_t top)
{
    om_snapshot *snap = om_snapshot_load(path);
    if (snap == NULL) {
        if (access(path, F_OK) != 0)
            return fail("%s left no trace snapshot: is it linked with objmem, and did it "
                        "exit normally (not by a signal or _exit)?", program);
        return fail_om("om_snapshot_load(%s)", path);
    }
    om_trace_stats *sites = om_snapshot_statistics(snap, OM_TRACE_BY_SITE);
    om_trace_stats *tracebacks = om_snapshot_statistics(snap, OM_TRACE_BY_TRACEBACK);
    int rc = 0;
    if (sites == NULL || tracebacks == NULL) {
        rc = fail_om("om_snapshot_statistics");
    } else {
        size_t blocks = 0;
        for (size_t i = 0; i < sites->count; i++)
            blocks += sites->entries[i].count;
        printf("still live at exit: %s (%s bytes) in %s blocks from %s site%s (tracebacks of "
               "up to %d frames)\n", fmt_bytes(sites->total_size), fmt_count(sites->total_size),
               fmt_count(blocks), fmt_count(sites->count), sites->count == 1 ? "" : "s",
               om_snapshot_traceback_limit(snap));
        if (sites->count > 0) {
            printf("\n%stop allocation sites of the live memory, by size%s\n", bold(), plain());
            print_table(sites, top);
            printf("\n%slive blocks at exit, by traceback%s\n", bold(), plain());
            print_table(tracebacks, top);
        }
    }
    om_trace_stats_free(sites);
    om_trace_stats_free(tracebacks);
    om_snapshot_free(snap);
    return rc;
}

int cmd_trace(int argc, char **argv)
{
    trace_options o;
    int parsed = trace_parse(argc, argv, &o);
    if (parsed < 0) {
        trace_usage(stdout);
        return EXIT_SUCCESS;
    }
    if (parsed != 0)
        return parsed;

    const char *tmp = getenv("TMPDIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/objmem-trace.XXXXXX", tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
    if (strlen(dir) + 1 == sizeof dir || mkdtemp(dir) == NULL) {
        fail("cannot make a directory for the snapshot: %s", strerror(errno));
        return EXIT_FAILURE;
    }
    char path[sizeof dir + 16], frames_var[48], output_var[sizeof path + 24];
    snprintf(path, sizeof path, "%s/snapshot", dir);
    snprintf(frames_var, sizeof frames_var, "OBJMEM_TRACEMALLOC=%zu", o.frames);
    snprintf(output_var, sizeof output_var, "OBJMEM_TRACE_OUTPUT=%s", path);
    char *const vars[2] = {frames_var, output_var};

    int status = 0;
    int rc = run_program(o.program, vars, &status);
    if (rc == 0) {
        print_ending(o.program[0], status);
        rc = print_trace(o.program[0], path, o.top);
    }
    unlink(path);
    rmdir(dir);
    return rc == 0 ? finish_stdout() : EXIT_FAILURE;
}
