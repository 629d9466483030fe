/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * manager_fixture — a real libuv loop and a real Manager for unit tests that drive daemon
 * objects (devices, groups, attach) on the test's own thread. Each test runs in its own
 * process (criterion), so the statics are per test. The teardown frees the manager, runs the
 * loop dry and checks that nothing was left on it (CONVENTIONS 25).
 */

#include <criterion/criterion.h>
#include <uv.h>

#include "manager.h"
#include "util/log.h"

static uv_loop_t loop;
static Manager *mgr;

static inline void
manager_fixture_setup(void)
{
    log_set_max_level(LOG_ERR);
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(manager_new(&loop, &mgr), 0);
}

static inline void
manager_fixture_teardown(void)
{
    manager_free(mgr);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_assert_eq(uv_loop_close(&loop), 0, "the loop still has handles or requests");
}
