/* SPDX-License-Identifier: MIT */
/*
 * test_manager — manager_attach(): a device found in another state than RUNNING (left by a
 * previous owner, or a crash) is reset before anyone can use it; a device found RUNNING, or
 * one without migration support, is left alone. Real sim devices, real workers, real loop.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "device.h"
#include "manager_fixture.h"

TestSuite(attach, .init = manager_fixture_setup, .fini = manager_fixture_teardown, .timeout = 60);

typedef struct Attached {
    unsigned calls;
    Device *d;
    DeviceState found;
    bool reset_ran;
    int reset_r;
} Attached;

static void
on_attached(Device *d, DeviceState found, const OpResult *reset, void *userdata)
{
    Attached *a = userdata;

    a->calls++;
    a->d = d;
    a->found = found;
    a->reset_ran = reset != NULL;
    a->reset_r = reset ? reset->r : 0;
}

/* Attaches a sim device with @options and runs the loop until nothing is left to do. */
static void
attach(const char *id, const char *options, Attached *a)
{
    AttachSource src = {.sim_model = "", .sim_options = options};
    char err[512] = "";

    *a = (Attached){0};
    cr_assert_eq(manager_attach(mgr, id, &src, on_attached, a, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(a->calls, 1u, "the callback runs exactly once");
    cr_assert_eq(a->d, manager_find(mgr, id), "the callback gets the attached device");
}

Test(attach, a_running_device_is_left_alone)
{
    Attached a;

    attach("run", "size=4K", &a);
    cr_expect_eq(a.found, DEVICE_STATE_RUNNING);
    cr_expect_not(a.reset_ran);
    cr_expect_eq(a.d->stats.resets, 0u);
}

Test(attach, a_device_found_stopped_is_reset_to_running)
{
    static const char *const found[] = {"stop", "stop_copy", "resuming", "running_p2p",
                                        "pre_copy", "error"};

    for (size_t i = 0; i < sizeof(found) / sizeof(found[0]); i++) {
        char opts[64], id[16];
        Attached a;

        (void) snprintf(opts, sizeof(opts), "size=4K,initial_state=%s", found[i]);
        (void) snprintf(id, sizeof(id), "d%zu", i);
        attach(id, opts, &a);
        cr_expect_eq(a.found, fsm_state_from_name(found[i]), "%s: found_state", found[i]);
        cr_expect(a.reset_ran, "%s: reset", found[i]);
        cr_expect_eq(a.reset_r, 0, "%s: the reset worked", found[i]);
        cr_expect_eq(a.d->state, DEVICE_STATE_RUNNING, "%s: now running", found[i]);
        cr_expect_eq(a.d->stats.resets, 1u, "%s: one reset", found[i]);
        cr_expect_not(device_is_busy(a.d), "%s: idle again", found[i]);
    }
}

Test(attach, a_device_without_migration_support_is_not_touched)
{
    Attached a;

    /* Its state means nothing (the kernel has no migration state for it): never a reason. */
    attach("nomig", "size=4K,migratable=0,initial_state=stop", &a);
    cr_expect_not(a.reset_ran);
    cr_expect_eq(a.d->stats.resets, 0u);
}

Test(attach, a_refused_attach_never_calls_back_and_attaches_nothing)
{
    AttachSource src = {.sim_model = "", .sim_options = "size=4K,initial_state=bogus"};
    Attached a = {0};
    char err[512] = "";

    cr_expect_eq(manager_attach(mgr, "bad", &src, on_attached, &a, err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "initial_state"), "%s", err);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_expect_eq(a.calls, 0u);
    cr_expect_null(manager_find(mgr, "bad"));
}
