/* SPDX-License-Identifier: MIT */
/*
 * log_object — see log_object.h.
 */
#include "log_object.h"

#include "device.h"
#include "group.h"
#include "migration_internal.h"

/* A job's fields: its id, its group's name, and one per device. */
#define JOB_FIELDS_MAX (GROUP_MAX_DEVICES + 2)

static size_t
field_add(LogField *f, size_t n, size_t max, const char *key, const char *value)
{
    if (n < max && value) {
        f[n++] = (LogField){key, value};
    }
    return n;
}

/* The id only: it never changes, so workers may log about a device too (TRACE_DEVICE). */
size_t
log_object_device_fields(const Device *d, LogField *f, size_t max)
{
    return field_add(f, 0, max, LOG_FIELD_DEVICE, d->id);
}

/* The members' fields, after @n already in @f. */
static size_t
members_fields(const Group *g, LogField *f, size_t n, size_t max)
{
    for (size_t i = 0; g && i < g->n_devices; i++) {
        n = field_add(f, n, max, LOG_FIELD_DEVICE, g->devices[i]->id);
    }
    return n;
}

size_t
log_object_group_fields(const Group *g, LogField *f, size_t max)
{
    return members_fields(g, f, field_add(f, 0, max, LOG_FIELD_GROUP, g->name), max);
}

size_t
log_object_job_fields(const MigrationJob *j, LogField *f, size_t max)
{
    bool one_device = j->subject == MIGRATION_SUBJECT_DEVICE;
    size_t n = field_add(f, 0, max, LOG_FIELD_MIGRATION, j->id);

    /* group_name is a copy, safe at any time: the group's name, or the device's for a save or
     * restore of one device (whose group is a transient one, no name to filter on). */
    n = field_add(f, n, max, one_device ? LOG_FIELD_DEVICE : LOG_FIELD_GROUP, j->group_name);
    /* A group's devices only while the job runs: it owns the group then (no delete, no
     * detach); once it is over, the group and its devices may be gone. */
    return one_device || mig_is_over(j) ? n : members_fields(j->group, f, n, max);
}

/* ---- one logging function for every kind, reading this table */

static size_t
device_fields(const void *o, LogField *f, size_t max)
{
    return log_object_device_fields(o, f, max);
}

static size_t
group_fields(const void *o, LogField *f, size_t max)
{
    return log_object_group_fields(o, f, max);
}

static size_t
job_fields(const void *o, LogField *f, size_t max)
{
    return log_object_job_fields(o, f, max);
}

static size_t (*const fields_of[])(const void *o, LogField *f, size_t max) = {
    [LOG_OBJECT_DEVICE] = device_fields,
    [LOG_OBJECT_GROUP] = group_fields,
    [LOG_OBJECT_JOB] = job_fields,
};
static_assert(ELEMENTSOF(fields_of) == _LOG_OBJECT_MAX, "a kind of object without its fields");

int
log_object(LogObject kind, const void *object, int level, int error, const char *file, int line,
           const char *fmt, ...)
{
    LogField f[JOB_FIELDS_MAX]; /* the most any kind has */
    va_list ap;

    if (level > log_get_max_level()) {
        return error; /* before the fields are gathered */
    }
    va_start(ap, fmt);
    (void) log_fields_internalv(level, error, file, line, f,
                                fields_of[kind](object, f, ELEMENTSOF(f)), fmt, ap);
    va_end(ap);
    return error;
}
