/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * save_commands — the rows of `vfio-migctl save` and `restore` (MigrationService/Save,
 * Restore), of a group or a device.
 *
 * Used by:  main.c (the command table).
 * Uses:     cli.h (rows, calls), output_migration.h (a group's save is a migration).
 */

#include "cli.h"

extern const CliCommand save_commands_save;
extern const CliCommand save_commands_restore;
