/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * migration_commands — the vfio-migctl commands for migrations (incoming, migrate,
 * switchover, cancel, jobs, job, watch) and the group half of save/restore, all calls to
 * vfio_migd.v1.MigrationService (migrations.proto). Same shape and error rules as
 * commands.h; `migrate --wait` and `watch` poll, because the API has no streaming call yet.
 *
 * Used by:  main.c (command table), commands.c (save and restore of a NAME that may be a
 *           group or a device).
 * Uses:     commands.h (parsing, the call), output.h (tables, JSON, progress line).
 * Threads:  single-threaded.
 */

#include <stdbool.h>

#include "commands.h"

int commands_incoming(Cli *cli, int argc, char **argv);
int commands_migrate(Cli *cli, int argc, char **argv);
int commands_switchover(Cli *cli, int argc, char **argv);
int commands_cancel(Cli *cli, int argc, char **argv);
int commands_jobs(Cli *cli, int argc, char **argv);
int commands_job(Cli *cli, int argc, char **argv);
int commands_watch(Cli *cli, int argc, char **argv);

/* What commands_save_group()/commands_restore_group() return when the daemon says NAME is
 * not a group (NOT_FOUND "no group named ...", or UNIMPLEMENTED from a daemon without
 * MigrationService) and @may_be_device is set: nothing was reported, ask for a device. */
#define COMMANDS_NOT_A_GROUP 1

/* `save NAME FILE` for a group: SaveGroup with the absolute @path, result printed. 0,
 * COMMANDS_NOT_A_GROUP (see above), or a negative errno after reporting the failure (with
 * the daemon's partial result, when it sent one). */
int commands_save_group(Cli *cli, const char *group, const char *path, bool overwrite,
                        bool resume, bool may_be_device);
/* `restore NAME FILE` for a group: RestoreGroup; returns as commands_save_group(). */
int commands_restore_group(Cli *cli, const char *group, const char *path, bool stop,
                           bool may_be_device);
