/* SPDX-License-Identifier: MIT */
/*
 * summary — see summary.h.
 */
#include "summary.h"

#include <stdio.h>

#include "manager.h"
#include "migration_internal.h"

void
summary_of(const Manager *m, Summary *ret)
{
    Summary s = {.devices = m->n_devices, .groups = m->n_groups,
                 .shutting_down = m->shutting_down};

    for (size_t i = 0; i < m->n_jobs; i++) {
        s.migrations += !mig_is_over(m->jobs[i]);
    }
    *ret = s;
}

static const char *
plural(size_t n)
{
    return n == 1 ? "" : "s";
}

void
summary_format(const Summary *s, char *buf, size_t size)
{
    (void) snprintf(buf, size, "%s: %zu device%s, %zu group%s, %zu migration%s running",
                    s->shutting_down ? "Shutting down" : "Serving", s->devices,
                    plural(s->devices), s->groups, plural(s->groups), s->migrations,
                    plural(s->migrations));
}
