/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * follow — the follow/wait engine: `migrate --wait` and `watch` follow migrations through the
 * daemon's WatchEvents stream until they end, print what changed (a progress line on a
 * terminal for --wait, a log of phase changes for watch), and end at once, the migrations
 * untouched, on SIGINT or SIGTERM.
 *
 * Used by:  migration_commands.c (migrate --wait, watch).
 * Uses:     cli.h (calls, the stream, reports), output_migration.h (the migration's forms).
 * Threads:  single-threaded; installs SIGINT and SIGTERM handlers for the rest of the process.
 */

#include "cli.h"
#include "vfio_migd/v1/migrations.pb-c.h"

/* migrate --wait: follows the migration of *@resp (StartMigration's answer, which this takes)
 * until it is no longer active and prints its final form; exit 0 only when it completed. */
CliExit follow_migration(Cli *cli, VfioMigd__V1__MigrationResponse **resp);

/* watch [ID]: follows migration @id, or with NULL every migration active now or starting
 * while it watches, until none is active; exit 0 only when every one followed completed. */
CliExit follow_watch(Cli *cli, const char *id);
