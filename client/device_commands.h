/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * device_commands — the rows of the commands on single devices (DeviceService): devices,
 * attach, detach, show, state, path, reset, region.
 *
 * Used by:  main.c (the command table).
 * Uses:     cli.h (rows, calls), output.h.
 */

#include "cli.h"

extern const CliCommand device_commands_devices;
extern const CliCommand device_commands_attach;
extern const CliCommand device_commands_detach;
extern const CliCommand device_commands_show;
extern const CliCommand device_commands_state;
extern const CliCommand device_commands_path;
extern const CliCommand device_commands_reset;
extern const CliCommand device_commands_region;
