/*
 * custom_type.c — a type of your own from a spec (om_type_from_spec): list
 * the offsets of the struct's object fields, and objmem writes the
 * traverse, clear and destroy hooks that the collector and reference
 * counting need. The destroy hook you give releases what else the struct
 * owns (here a note in a MEM buffer). An employee and a manager point at
 * each other, a cycle the generated hooks let the collector free.
 * Build:
 *   cc custom_type.c $(pkg-config --cflags --libs objmem)
 */
#include <objmem.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

typedef struct employee {
    OM_OBJECT_HEAD;             /* always first */
    om_object *name;            /* a str */
    om_object *manager;         /* an employee, or NULL */
    om_object *reports;         /* a list of employees, or NULL */
    char *note;                 /* not an object: our destroy hook frees it */
    double salary;
} employee;

static const size_t employee_objects[] = {
    offsetof(employee, name),
    offsetof(employee, manager),
    offsetof(employee, reports),
};

static int destroyed;

/* Called by the generated destroy before it drops the three object fields.
 * They may be NULL already: to break a cycle the collector calls the
 * generated clear hook first, which empties every listed field. */
static void employee_destroy(om_object *self)
{
    employee *e = (employee *)self;
    printf("  destroy %s (note: %s)\n", e->name != NULL ? om_str_utf8(e->name) : "<cleared>",
           e->note != NULL ? e->note : "none");
    om_mem_free(e->note);
    e->note = NULL;
    destroyed++;
}

/* A new employee (new reference), or NULL with objmem's error set. */
static employee *employee_new(const om_type *type, const char *name, double salary)
{
    employee *e = (employee *)om_new(type);         /* fields after the head are zeroed */
    if (e == NULL)
        return NULL;
    e->salary = salary;
    e->name = om_str_from_cstr(name);
    e->note = om_mem_malloc(32);
    if (e->name == NULL || e->note == NULL) {
        om_decref(OM_OBJ(e));                       /* the hooks cope with NULL fields */
        return NULL;
    }
    snprintf(e->note, 32, "hired at %.0f", salary);
    return e;
}

/* boss manages e: boss's reports list holds e, e->manager holds boss. */
static int manage(employee *boss, employee *e)
{
    if (boss->reports == NULL && (boss->reports = om_list_new(0)) == NULL)
        return -1;
    if (om_list_append(boss->reports, OM_OBJ(e)) != 0)
        return -1;
    om_incref(OM_OBJ(boss));
    OM_SETREF(e->manager, OM_OBJ(boss));
    return 0;
}

int main(void)
{
    om_type_spec spec = {
        .name = "employee",
        .size = sizeof(employee),
        .object_offsets = employee_objects,
        .object_offset_count = sizeof employee_objects / sizeof employee_objects[0],
        .destroy = employee_destroy,
    };
    om_type *employee_type = om_type_from_spec(&spec);   /* OM_TYPE_GC is added */
    if (employee_type == NULL) {
        fprintf(stderr, "om_type_from_spec: %s\n", om_last_error_message());
        return 1;
    }

    om_gc_disable();            /* so that only our om_gc_collect collects */
    employee *ada = employee_new(employee_type, "Ada", 120000);
    employee *bob = employee_new(employee_type, "Bob", 90000);
    if (ada == NULL || bob == NULL || manage(ada, bob) != 0) {
        fprintf(stderr, "building the team: %s\n", om_last_error_message());
        return 1;
    }
    printf("Bob's note: \"%s\"; om_sizeof(Bob) = %zu B (block with the collector's header)\n",
           bob->note, om_sizeof(OM_OBJ(bob)));

    /* The generated traverse visits the three object fields. */
    om_object *refs = om_gc_get_referents(OM_OBJ(ada));
    printf("Ada refers to %td objects (her name and her reports list)\n",
           refs != NULL ? om_list_size(refs) : -1);
    om_xdecref(refs);

    om_decref(OM_OBJ(ada));     /* Ada <-> Bob through the list: a cycle remains */
    om_decref(OM_OBJ(bob));
    printf("after our decrefs: %d destroyed\n", destroyed);
    int before_collect = destroyed;

    printf("om_gc_collect(2):\n");
    long found = om_gc_collect(2);
    printf("found %ld unreachable objects, %d employees destroyed\n", found, destroyed);
    om_gc_enable();

    om_type_delete(employee_type);  /* no employee is alive any more */
    return before_collect == 0 && destroyed == 2 && found == 3 ? 0 : 1;
}
