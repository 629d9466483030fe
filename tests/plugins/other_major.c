/* SPDX-License-Identifier: MIT */
/*
 * other_major — a plugin built against another ABI major (the next one): the daemon must
 * refuse it with one log line that says expected vs found, and never call it.
 */
#include "test_plugin.h"

/* Would the daemon call its hook, the test process would abort. */
TEST_PLUGIN_ABI(VFIO_MIGD_PLUGIN_ABI_MAJOR + 1, 0, sizeof(struct vfio_migd_plugin), "testdrv",
                "other_major", "9.9", .prerequisites = test_plugin_never_prerequisites)
