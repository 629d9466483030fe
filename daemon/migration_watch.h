/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * migration_watch — the decisions behind WatchEvents: which events a watcher gets and when.
 * For one migration (until it ends) or for all of them (until the watcher stops):
 *   - the current state of each watched active migration when the watch begins ("phase");
 *   - a "phase" event at every phase change, as it happens (the manager tells the watch on
 *     the loop, so several changes in one loop turn are each seen);
 *   - a "progress" event at most once a MIGRATION_WATCH_PROGRESS_MS while the phase stays;
 *   - an "end" event when the migration completed, failed or was cancelled, with its final
 *     totals and error (sent on the next loop turn, when the job has them all), once.
 * The watch keeps, per migration, what it already sent. The RPC handler only turns the
 * snapshots into messages and the end into a status.
 *
 * Used by:  rpc/handlers/migrations.c (WatchEvents).
 * Uses:     migration.h (snapshots), manager.h (phase-change listeners).
 * Threads:  loop only.
 */

#include <stdint.h>

#include "forward.h"
#include "migration.h"

#define MIGRATION_WATCH_PROGRESS_MS 1000 /* at most one progress event a second per migration */
/* Watches open at once, unless the manager says otherwise ([api] max_watchers). */
#define MIGRATION_WATCH_DEFAULT_MAX 64
#define MIGRATION_WATCH_MAX 4096
/* Events one watcher may have waiting to be sent ([api] watch_queue_max): beyond it the
 * reader is too slow and is disconnected (rpc/handlers/migrations.c). */
#define MIGRATION_WATCH_DEFAULT_QUEUE 256
#define MIGRATION_WATCH_MIN_QUEUE 8
#define MIGRATION_WATCH_MAX_QUEUE 65536

typedef struct MigrationWatch MigrationWatch;

typedef enum MigrationEventKind {
    MIGRATION_EVENT_PHASE,
    MIGRATION_EVENT_PROGRESS,
    MIGRATION_EVENT_END,
    _MIGRATION_EVENT_MAX,
} MigrationEventKind;

/* "phase", "progress", "end": the API's names (MigrationEvent.kind). */
const char *migration_event_kind_name(MigrationEventKind kind);

typedef struct MigrationWatchOps {
    /* An event to send; @s is the migration as of @unix_ms (valid during the call). Returns
     * 0, or a negative errno when the receiver ended the stream itself (a reader too slow):
     * the watch then stops, and @end is not called. */
    int (*event)(MigrationEventKind kind, const MigrationSnapshot *s, uint64_t unix_ms,
                 void *userdata);
    /* The stream is over: @r is 0 (the one watched migration ended, or was forgotten) or
     * -ESHUTDOWN (the daemon stops), with @message. Called at most once; nothing follows. */
    void (*end)(int r, const char *message, void *userdata);
} MigrationWatchOps;

/* Starts watching migration @id, or every migration when @id is "". The first events come on
 * the next loop turn. -ENOENT no such migration, -ENOSPC as many watches as the manager's
 * max_watches are open (both with @err), -ENOMEM. */
int migration_watch_start(Manager *m, const char *id, const MigrationWatchOps *ops,
                          void *userdata, MigrationWatch **ret, char *err, size_t err_size);
/* The watcher went away: no callback runs after this call; @w frees itself. */
void migration_watch_stop(MigrationWatch *w);
