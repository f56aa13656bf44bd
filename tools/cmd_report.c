/*
 * cmd_report.c — `objmem report --html FILE`: the HTML heap report of a
 * workload.
 *
 * The report itself is the library's (om_write_report in src/report.c: one
 * self-contained page with the arena map, the size-class histogram, the
 * collector's pauses and the top allocation sites). This command gives it
 * something to show: it starts tracing (so the page has allocation sites),
 * runs the workload of `objmem stats` (stats_workload_run: a dict, a list
 * of ints and strs, medium and large buffers), collects once (so the
 * page has a pause), writes the report while the workload is alive, then
 * frees everything.
 *
 * Exit status: 0 written; 1 the workload or the write failed (the
 * library's message names the reason); 2 a usage error.
 */
#include "tool.h"

#include <stdlib.h>
#include <string.h>

enum { REPORT_TRACE_FRAMES = 8 };

void report_usage(FILE *out)
{
    fprintf(out,
            "usage: objmem report --html FILE\n"
            "\n"
            "Runs the workload of `objmem stats` with tracing on, collects once, and\n"
            "writes the HTML heap report of the default heap to FILE with\n"
            "om_write_report(): one self-contained page (inline SVG, no network)\n"
            "with the arena map, the size-class histogram, the collector's pauses\n"
            "and the top allocation sites. A program writes its own report with\n"
            "om_write_report(path).\n"
            "\n"
            "options:\n"
            "  --html FILE  where to write the page (required)\n"
            "  -h, --help   show this help\n"
            "\n"
            "exit status: 0 written, 1 the report could not be written, 2 usage error\n");
}

int cmd_report(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            report_usage(stdout);
            return EXIT_SUCCESS;
        } else if (strcmp(argv[i], "--html") == 0) {
            if (i + 1 == argc || argv[i + 1][0] == '\0')
                return usage_error(report_usage, "--html wants a FILE");
            if (path != NULL)
                return usage_error(report_usage, "--html given twice");
            path = argv[++i];
        } else {
            return usage_error(report_usage, "unknown argument '%s'", argv[i]);
        }
    }
    if (path == NULL)
        return usage_error(report_usage, "--html FILE is required");

    if (!om_trace_is_tracing() && om_trace_start(REPORT_TRACE_FRAMES) != 0) {
        fail_om("om_trace_start(%d)", REPORT_TRACE_FRAMES);
        return EXIT_FAILURE;
    }
    stats_workload w;
    int rc = stats_workload_run(&w);
    if (rc == 0 && om_gc_collect(-1) < 0)
        rc = fail_om("om_gc_collect(-1)");
    if (rc == 0 && om_write_report(path) != 0)
        rc = fail_om("om_write_report(\"%s\")", path);
    stats_workload_free(&w);
    om_trace_stop();
    if (rc != 0)
        return EXIT_FAILURE;
    printf("wrote %s\n", path);
    return finish_stdout();
}
