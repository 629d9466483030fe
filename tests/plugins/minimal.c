/* SPDX-License-Identifier: MIT */
/*
 * minimal — a plugin with a name, a version, one claim and NO hook at all: the ABI says
 * every hook may be NULL, and the daemon must then treat the device as no plugin claimed it
 * (test_plugin_host.c, integration test_plugins.sh).
 */
#include "test_plugin.h"

TEST_PLUGIN("testdrv", "minimal", "0.1")
