/*
 * test-thread-rules-inline.c — the debug hooks' reference-count rule in
 * code built with OM_DEBUG > 0, where om_incref and om_decref check it
 * inline (objmem/object.h): with the hooks on, a count change by a thread
 * that does not hold its runtime's GIL, or on an object of another
 * runtime, is one fatal report naming om_incref or om_decref, even when
 * the count does not reach zero. Without the hooks the same calls pass,
 * and immortal objects are never checked.
 */
#undef OM_DEBUG
#define OM_DEBUG 1

#include <signal.h>
#include <string.h>

#include "check.h"
#include "objmem.h"

typedef void (*misuse_fn)(void);

typedef struct misuse_case {
    misuse_fn fn;
} misuse_case;

static void run_misuse(void *arg)
{
    om_setup_debug_hooks();
    ((misuse_case *)arg)->fn();
    _exit(0);
}

static void expect_report(misuse_fn fn, const char *call, const char *phrase)
{
    static char err[8192];
    misuse_case c = {fn};
    int status = check_run_child(run_misuse, &c, err, sizeof err);
    char named[128];
    snprintf(named, sizeof named, "objmem: fatal error: %s: ", call);
    const char *first = strstr(err, "objmem: fatal error: ");
    bool ok = status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT &&
              first != NULL && strstr(first + 1, "objmem: fatal error: ") == NULL &&
              strstr(err, named) != NULL && strstr(err, phrase) != NULL;
    CHECK(ok);
    if (!ok)
        fprintf(stderr, "--- case %s (status %#x) stderr:\n%s---\n", call, (unsigned)status, err);
}

static void incref_released(void)
{
    om_object *l = om_list_new(0);
    om_save_thread();
    om_incref(l);
}

static void decref_released(void)
{
    om_object *l = om_list_new(0);
    om_incref(l);
    om_save_thread();
    om_decref(l);   /* 2 -> 1: no release, the inline check sees it */
}

static void incref_detached(void)
{
    om_object *l = om_list_new(0);
    om_detach();
    om_incref(l);
}

static void incref_foreign(void)
{
    om_runtime *a = om_runtime_new(NULL), *b = om_runtime_new(NULL);
    if (om_attach(a) != 0)
        _exit(3);
    om_object *l = om_list_new(0);
    om_detach();
    if (om_attach(b) != 0)
        _exit(3);
    om_incref(l);
}

/* Without the hooks the inline check costs a call and passes; immortal
 * objects are skipped even with them on and the GIL released. */
static void passes_child(void *arg)
{
    (void)arg;
    om_object *l = om_list_new(0);
    om_save_thread();
    om_incref(l);   /* a bug, but the hooks are off: nothing is checked */
    om_decref(l);
    om_setup_debug_hooks();
    om_incref(om_none);
    om_decref(om_none);
    _exit(0);
}

int main(void)
{
    expect_report(incref_released, "om_incref", "does not hold its runtime's GIL");
    expect_report(decref_released, "om_decref", "does not hold its runtime's GIL");
    expect_report(incref_detached, "om_incref", "not attached to any runtime");
    expect_report(incref_foreign, "om_incref", "belongs to another runtime");

    static char err[4096];
    int status = check_run_child(passes_child, NULL, err, sizeof err);
    CHECK(status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(strstr(err, "fatal error") == NULL);
    return check_report();
}
