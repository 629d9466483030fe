/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * migration_commands — the rows of the migration commands (MigrationService): incoming,
 * migrate, switchover, cancel, jobs, job, watch.
 *
 * Used by:  main.c (the command table).
 * Uses:     cli.h (rows, calls), output_migration.h, follow.h (migrate --wait, watch).
 */

#include "cli.h"

extern const CliCommand migration_commands_incoming;
extern const CliCommand migration_commands_migrate;
extern const CliCommand migration_commands_migrate_set;
extern const CliCommand migration_commands_switchover;
extern const CliCommand migration_commands_cancel;
extern const CliCommand migration_commands_resolve;
extern const CliCommand migration_commands_jobs;
extern const CliCommand migration_commands_job;
extern const CliCommand migration_commands_watch;
