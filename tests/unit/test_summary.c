/* SPDX-License-Identifier: MIT */
/*
 * test_summary — the STATUS= line: counts from a real manager (devices, groups, jobs that
 * are not over) and the sentence, singular and plural, serving or shutting down.
 */
#include <criterion/criterion.h>

#include "group.h"
#include "manager_fixture.h"
#include "migration_internal.h"
#include "summary.h"
#include "util/macro.h"

static void
expect_line(const Summary *s, const char *want)
{
    char line[128];

    summary_format(s, line, sizeof(line));
    cr_expect_str_eq(line, want);
}

TestSuite(summary, .timeout = 10);

Test(summary, the_sentence)
{
    expect_line(&(Summary){0}, "Serving: 0 devices, 0 groups, 0 migrations running");
    expect_line(&(Summary){.devices = 1, .groups = 1, .migrations = 1},
                "Serving: 1 device, 1 group, 1 migration running");
    expect_line(&(Summary){.devices = 3, .groups = 2, .migrations = 5, .shutting_down = true},
                "Shutting down: 3 devices, 2 groups, 5 migrations running");
}

TestSuite(counts, .init = manager_fixture_setup, .fini = manager_fixture_teardown, .timeout = 10);

static unsigned changes;

static void
on_change(Manager *m, void *userdata)
{
    (void) m;
    (void) userdata;
    changes++;
}

Test(counts, from_the_manager_and_every_change_told)
{
    const char *ids[] = {"a", "b"};
    MigrationJob running = {.phase = PHASE_PRECOPY}, over = {.phase = PHASE_FAILED};
    MigrationJob *jobs[] = {&running, &over};
    char err[256] = "";
    Device *d = NULL;
    Group *g = NULL;
    Summary s;

    mgr->on_change = on_change;
    cr_assert_eq(manager_attach_sim(mgr, "a", "", "size=4K", &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(manager_attach_sim(mgr, "b", "", "size=4K", &d, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(changes, 2u, "each attach is told");
    cr_assert_eq(group_new(mgr, "g", ids, 2, &g, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(changes, 3u, "a new group is told");
    mgr->jobs = jobs;
    mgr->n_jobs = ELEMENTSOF(jobs);
    summary_of(mgr, &s);
    cr_expect_eq(s.devices, 2u);
    cr_expect_eq(s.groups, 1u);
    cr_expect_eq(s.migrations, 1u, "only the job that is not over runs");
    cr_expect_not(s.shutting_down);
    mgr->jobs = NULL;
    mgr->n_jobs = 0;
    manager_migration_changed(mgr, &running);
    cr_expect_eq(changes, 4u, "a job's phase change is told");
    cr_assert_eq(group_delete(g, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(manager_detach(mgr, "a", err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(changes, 6u, "a group deleted and a device detached are told");
    mgr->on_change = NULL;
}
