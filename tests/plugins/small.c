/* SPDX-License-Identifier: MIT */
/*
 * small — a plugin whose descriptor is smaller than this header's (as one built against an
 * older minor would be): struct_size stops before the hooks, so the daemon must read them as
 * NULL even though the memory after the plugin's struct holds pointers to functions that
 * abort. The claims and rules inside struct_size are used.
 */
#include <stddef.h>

#include "test_plugin.h"

/* Hooks past struct_size: the test process aborts if the daemon calls them. */
TEST_PLUGIN_ABI(VFIO_MIGD_PLUGIN_ABI_MAJOR, 0, offsetof(struct vfio_migd_plugin, prerequisites),
                "smalldrv", "small", "0.0.1", .prerequisites = test_plugin_never_prerequisites,
                .descriptor = test_plugin_never_descriptor)
