/*
 * objmem.c — the objmem command-line tool: the command table and main().
 *
 * Role: the front door for someone who has just cloned the repository or
 * installed the library. Each subcommand lives in its own file (see
 * tool.h for the map); this file only knows their names, one-line
 * summaries, handlers and usage printers.
 *
 * Dispatch: main() looks argv[1] up in commands[] and calls the handler
 * with argv shifted so that argv[0] is the subcommand's name. `objmem`,
 * `objmem --help`, `objmem -h` and `objmem help` print the overview on
 * stdout (exit 0; no command at all is a usage error, exit 2);
 * `objmem help <command>` and `objmem <command> --help` print that
 * command's usage on stdout; an unknown command prints the overview on
 * stderr and exits 2.
 */
#include "tool.h"

#include <stdlib.h>
#include <string.h>

typedef struct tool_command {
    const char *name;                   /* as typed after `objmem` */
    const char *summary;                /* one line for the overview */
    int (*run)(int argc, char **argv);  /* argv[0] is the command name */
    void (*usage)(FILE *out);           /* the command's --help text */
} tool_command;

static int cmd_help(int argc, char **argv);
static void help_usage(FILE *out);

static const tool_command commands[] = {
    {"demo", "a guided tour of the allocator, with measured numbers", cmd_demo, demo_usage},
    {"stats", "heap tables of a workload, or of a saved JSON snapshot", cmd_stats, stats_usage},
    {"bench", "objmem against glibc, mimalloc, jemalloc, tcmalloc, pymalloc", cmd_bench,
     bench_usage},
    {"trace", "run a program with tracing: top allocation sites, leaks at exit", cmd_trace,
     trace_usage},
    {"report", "write the HTML heap report of a workload (om_write_report)", cmd_report,
     report_usage},
    {"help", "show this help, or `objmem help <command>` for one command", cmd_help,
     help_usage},
};
enum { COMMAND_COUNT = sizeof commands / sizeof commands[0] };

static const tool_command *find_command(const char *name)
{
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        if (strcmp(name, commands[i].name) == 0)
            return &commands[i];
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out,
            "objmem %d.%d.%d: Python's memory manager as a C library\n"
            "\n"
            "usage: objmem <command> [options]\n"
            "       objmem --help | --version\n"
            "\n"
            "commands:\n",
            OM_VERSION_MAJOR, OM_VERSION_MINOR, OM_VERSION_PATCH);
    for (size_t i = 0; i < COMMAND_COUNT; i++)
        fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n`objmem <command> --help` describes a command. Docs: README.md, docs/tool.md.\n");
}

static void help_usage(FILE *out)
{
    fprintf(out, "usage: objmem help [COMMAND]\n\n"
                 "Without COMMAND, lists the commands; with one, prints its usage.\n");
}

static int cmd_help(int argc, char **argv)
{
    if (argc > 2)
        return usage_error(help_usage, "too many arguments");
    if (argc == 2 && is_help(argv[1])) {
        help_usage(stdout);
        return EXIT_SUCCESS;
    }
    if (argc == 2) {
        const tool_command *c = find_command(argv[1]);
        if (c == NULL)
            return usage_error(usage, "unknown command '%s'", argv[1]);
        c->usage(stdout);
        return EXIT_SUCCESS;
    }
    usage(stdout);
    return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    colour_init();
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (is_help(name)) {
        usage(stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(name, "--version") == 0) {
        printf("objmem %d.%d.%d\n", OM_VERSION_MAJOR, OM_VERSION_MINOR, OM_VERSION_PATCH);
        return EXIT_SUCCESS;
    }
    const tool_command *c = find_command(name);
    if (c == NULL)
        return usage_error(usage, "unknown command '%s'", name);
    tool_command_name = c->name;
    return c->run(argc - 1, argv + 1);
}
