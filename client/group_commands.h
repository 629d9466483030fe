/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * group_commands — the row of `vfio-migctl group` (GroupService) and its subcommands.
 *
 * Used by:  main.c (the command table).
 * Uses:     cli.h (rows, calls), output.h.
 */

#include "cli.h"

extern const CliCommand group_commands_group;
