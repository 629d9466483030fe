/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * system_commands — the rows of the commands any daemon answers (CONVENTIONS 23): health
 * (grpc.health.v1), version, log-level, plugins, host-devices and bind (SystemService).
 *
 * Used by:  main.c (the command table).
 * Uses:     cli.h (rows, calls), output.h.
 */

#include "cli.h"

extern const CliCommand system_commands_health;
extern const CliCommand system_commands_version;
extern const CliCommand system_commands_log_level;
extern const CliCommand system_commands_plugins;
extern const CliCommand system_commands_host_devices;
extern const CliCommand system_commands_bind;
