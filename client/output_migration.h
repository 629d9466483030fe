/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * output_migration — how vfio-migctl prints a migration (a Migration message of
 * migrations.proto): its JSON object, its "key: value" lines and device table, the one-line
 * outcome, and the names of phases, roles and option values. Every command that shows a
 * migration goes through here, so the keys and words are the same in all of them (docs/cli.md,
 * "The migration object"). Like output.h it translates and formats, and computes nothing.
 *
 * Used by:  migration_commands.c, follow.c (migrate --wait, watch), save_commands.c.
 * Uses:     output.h (fields, tables, durations, sizes), json-c.
 * Threads:  single-threaded (stdout).
 * Errors:   negative errno (-ENOMEM); JSON builders return NULL only when out of memory.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "vfio_migd/v1/migrations.pb-c.h"

/* Option values as users type them (migrate --precopy, --switchover), indexed by the
 * protocol's number. */
extern const char *const output_migration_precopy_names[2];
extern const char *const output_migration_tls_names[4];
/* "psk", "off" or "cert" for a MigrationTls value. */
const char *output_migration_tls_name(int tls);
extern const char *const output_migration_switchover_names[2];

/* "precopy", "source", ...; "unknown" for a number this client does not know. */
const char *output_migration_phase(VfioMigd__V1__MigrationPhase phase);
const char *output_migration_role(VfioMigd__V1__MigrationRole role);

/* The migration's short state (docs/cli.md): "active" while it runs, then "completed",
 * "failed" or "cancelled". */
bool output_migration_is_active(const VfioMigd__V1__Migration *m);
bool output_migration_is_completed(const VfioMigd__V1__Migration *m);

/* The one JSON form of a migration. */
json_object *output_migration_json(const VfioMigd__V1__Migration *m);
/* "key: value" lines and the device table (job, switchover, cancel, a failed group save). */
int output_migration_fields(const VfioMigd__V1__Migration *m);
/* Every device's progress: all the columns for a migration in flight, the data moved and the
 * outcome for one that ended. */
int output_migration_devices(const VfioMigd__V1__Migration *m, bool in_flight);

/* How a finished migration ended, for a line of text: "completed: 340 MiB in 2.31 s
 * (pre-copy 1.20 s, downtime 120 ms)", "failed after 1.20 s: <error>". Returns @buf. */
char *output_migration_outcome(const VfioMigd__V1__Migration *m, char *buf, size_t size);
/* "120 MiB / 340 MiB": moved, and moved plus the daemon's estimate of what remains. */
char *output_migration_moved(const VfioMigd__V1__Migration *m, char *buf, size_t size);
/* Percentage of moved in moved + remaining; 0 while nothing is known. */
unsigned output_migration_percent(const VfioMigd__V1__Migration *m);
