/* Environment settings in a statically linked program that calls none of
 * the modules that read them.
 *
 * A constructor in a static library's member is linked only when the
 * program references that member; objmem reads OBJMEM_FAIL (fault.c),
 * OBJMEM_MALLOC (debug.c) and OBJMEM_TRACEMALLOC / OBJMEM_TRACE_OUTPUT
 * (trace.c) from heap.c's constructor so that every program that allocates
 * honours them. This program therefore calls only the domain functions and
 * om_last_error: it re-executes itself through /proc/self/exe with one
 * setting in its environment (the settings are read at load time) and the
 * child reports, by its exit status and output, whether the setting took.
 */
#include <objmem.h>

#include "check.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

/* Child modes: argv[1]. */
static int child_fail_first(void)
{
    void *p = om_obj_malloc(64);
    return p == NULL && om_last_error() == OM_ENOMEM ? 0 : 1;
}

static volatile size_t block_size = 24;   /* volatile: the overrun is deliberate */

static int child_overrun(void)
{
    size_t size = block_size;
    unsigned char *p = om_mem_malloc(size);
    if (p == NULL)
        return 1;
    p[size] = 0x5a;        /* one byte past the block: the debug hooks' guard */
    om_mem_free(p);      /* reported and aborted here with OBJMEM_MALLOC=debug */
    return 0;
}

static int child_leak(void)
{
    return om_mem_malloc(1000) != NULL ? 0 : 1;   /* live at exit: traced */
}

/* One re-execution: this program as `self mode` with name=value added. */
typedef struct self_run {
    const char *mode, *name, *value;
} self_run;

static void exec_self(void *arg)
{
    const self_run *run = arg;
    setenv(run->name, run->value, 1);
    execl("/proc/self/exe", "test-environment", run->mode, (char *)NULL);
    _exit(127);
}

/* The wait status of `self mode` run with name=value; its stderr in err. */
static int run_self(const char *mode, const char *name, const char *value, char *err, size_t cap)
{
    self_run run = {mode, name, value};
    return check_run_child(exec_self, &run, err, cap);
}

static void test_fail_setting(void)
{
    char err[4096];
    int status = run_self("fail-first", "OBJMEM_FAIL", "obj:0", err, sizeof err);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    status = run_self("fail-first", "OBJMEM_FAIL", "", err, sizeof err);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);   /* unset: it succeeds */
}

static void test_malloc_setting(void)
{
    char err[4096];
    int status = run_self("overrun", "OBJMEM_MALLOC", "debug", err, sizeof err);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
    CHECK(strstr(err, "om_mem_free") != NULL);
    status = run_self("overrun", "OBJMEM_MALLOC", "default", err, sizeof err);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);   /* undetected without hooks */
}

static void test_trace_setting(void)
{
    char path[] = "/tmp/test-environment-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    close(fd);
    unlink(path);
    char err[4096];
    setenv("OBJMEM_TRACE_OUTPUT", path, 1);
    int status = run_self("leak", "OBJMEM_TRACEMALLOC", "1", err, sizeof err);
    unsetenv("OBJMEM_TRACE_OUTPUT");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    struct stat st;
    CHECK(stat(path, &st) == 0 && st.st_size > 0);   /* the snapshot dumped at exit */
    unlink(path);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "fail-first") == 0)
        return child_fail_first();
    if (argc == 2 && strcmp(argv[1], "overrun") == 0)
        return child_overrun();
    if (argc == 2 && strcmp(argv[1], "leak") == 0)
        return child_leak();
    test_fail_setting();
    test_malloc_setting();
    test_trace_setting();
    return check_report();
}
