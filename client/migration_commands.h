/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * migration_commands — the vfio-migctl commands for migrations (incoming, migrate,
 * switchover, cancel, jobs, job, watch) and the group half of save/restore, all calls to
 * vfio_migd.v1.MigrationService (migrations.proto). Same shape and error rules as
 * commands.h; `migrate --wait` and `watch` poll, because the API has no streaming call yet.
 *
 * Used by:  main.c (command table), commands.c (save and restore: it parses, this calls and
 *           prints).
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

/* `save`/`restore`: calls MigrationService @method ("Save" or "Restore") with @req, and prints
 * the result as what the daemon says NAME was (Migration.subject): a device with the keys of a
 * device's save (id, path, state, bytes, elapsed_ms, arcs), a group with its devices. @verb
 * is "saved" or "restored", @path the absolute FILE. 0, or a negative errno after reporting
 * the failure (with the daemon's partial result, when it sent one). */
int commands_transfer(Cli *cli, const char *method, const ProtobufCMessage *req,
                      const char *verb, const char *path);
