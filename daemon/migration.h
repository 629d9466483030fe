/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * migration — live migration of a group between two daemons, and group save/restore to a
 * stream file. A MigrationJob is owned by the manager and driven from the loop; everything
 * that blocks (sockets, data sessions, files) runs on workers, which report progress through
 * atomics and finish with a callback on the loop. See docs/migration.md for the protocol and
 * the phases, and the comment of each flow file:
 *   migration_source.c  StartMigration: connect, manifest, pre-copy, switchover, confirm
 *   migration_dest.c    PrepareIncoming: listen, token, manifest check, load, validate
 *   migration_file.c    SaveGroup / RestoreGroup
 *   migration_data.c    the data pumps (session <-> records <-> socket or file)
 *   migration.c         jobs, progress, failure and rollback, the registry
 *
 * Never lose the VM: any failure before the destination's confirmation takes the source group
 * back to RUNNING (a P2P-safe group transition) and resets the destination's devices; every
 * wait has a timeout.
 *
 * Threads: every function here is loop-thread only. Errors: negative errno plus a sentence.
 */

#include <stdbool.h>
#include <stdint.h>

#include "forward.h"

typedef struct MigrationJob MigrationJob;

/* Mirrors vfio_migd.v1.MigrationRole / MigrationPhase (migrations.proto), same numbers. */
typedef enum MigrationRole {
    MIGRATION_SOURCE = 1,
    MIGRATION_DESTINATION = 2,
    MIGRATION_SAVE = 3,
    MIGRATION_RESTORE = 4,
} MigrationRole;

typedef enum MigrationPhase {
    PHASE_WAITING = 1,
    PHASE_CONNECTING = 2,
    PHASE_PRECOPY = 3,
    PHASE_READY = 4,
    PHASE_SWITCHOVER = 5,
    PHASE_COMPLETING = 6,
    PHASE_COMPLETED = 7,
    PHASE_ROLLING_BACK = 8,
    PHASE_FAILED = 9,
    PHASE_CANCELLED = 10,
    _PHASE_MAX,
} MigrationPhase;

typedef struct MigrationOptions {
    bool precopy;             /* pre-copy when every device supports it */
    bool manual_switchover;
    uint32_t max_precopy_ms;
    uint32_t downtime_target_ms;
    uint64_t bandwidth_limit; /* bytes/s over all devices; 0 unlimited */
    uint32_t timeout_ms;
} MigrationOptions;

/* Defaults (migrations.proto): 30 s pre-copy, 300 ms downtime target, 30 s timeouts. */
void migration_options_defaults(MigrationOptions *o);

int migration_prepare_incoming(Manager *m, const char *group, const char *listen,
                               bool auto_resume, uint32_t timeout_ms, MigrationJob **ret,
                               char *bound, size_t bound_size, char *token, size_t token_size,
                               char *err, size_t err_size);
int migration_start(Manager *m, const char *group, const char *address, const char *token,
                    const MigrationOptions *opts, MigrationJob **ret, char *err,
                    size_t err_size);
/* -ESTALE: not a source migration waiting in READY (or PRECOPY). */
int migration_switchover(MigrationJob *j, char *err, size_t err_size);
/* -ESTALE when it already ended. The cancel completes asynchronously (phase CANCELLED). */
int migration_cancel(MigrationJob *j, char *err, size_t err_size);

/* SaveGroup / RestoreGroup: @done runs once on the loop when the job has ended (either way). */
typedef void (*migration_done_cb)(MigrationJob *j, void *userdata);
int migration_save_group(Manager *m, const char *group, const char *path, bool overwrite,
                         bool resume, migration_done_cb done, void *userdata,
                         MigrationJob **ret, char *err, size_t err_size);
int migration_restore_group(Manager *m, const char *group, const char *path, bool stop,
                            migration_done_cb done, void *userdata, MigrationJob **ret,
                            char *err, size_t err_size);

MigrationJob *migration_find(Manager *m, const char *id);
/* Frees every job; cancels active ones first is the caller's business (daemon shutdown). */
void migration_free_all(Manager *m);
/* Aborts every active job (daemon shutdown): each rolls back as on a failure. */
void migration_abort_all(Manager *m);
