/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * restore_state — restart without reset, through systemd's fd store.
 *
 * The plan:
 *  - Every device's fds that keep it alive (BackendOps.store_fds: a sim device's state memfd;
 *    a kernel device's device fd and iommufd, or its group's group and container fds) go into
 *    the fd store as "dev/<id>/<role>" (':' in an id, as in a PCI address, becomes '%', which
 *    no id contains: store names may not have ':'), or under the shared name the back-end
 *    gives ("grp/<n>/group", "ctr/<n>/container": one entry per group); a detached device's
 *    are removed (FDSTOREREMOVE), a shared one with the last device that keeps it.
 *  - A device's interrupt eventfds (the VMM's per vector, the daemon's latches: the files the
 *    kernel signals) go in as "irq/<id>/<vector>/vmm" and ".../latch", stored again when a
 *    vector's eventfd changes and removed when it goes (irq_vector_fds' generations).
 *  - The data fd of a device's open migration session (SessionOps.fd: the kernel's data fd,
 *    the sim's session token) goes in as "mig/<id>/data" when the back-end opens it and is
 *    removed when it is closed (restore_state_data_fd(), called by device.c). Without it in
 *    the store, the crash itself would close the data fd: the driver ends its session at the
 *    moment of the crash instead of when the new daemon decides.
 *  - What those fds need (core/state_journal: devices and how they were attached, their
 *    interrupts, groups, jobs not over) is written to a new sealed memfd on every change the manager reports, and
 *    stored under "state-journal.0" and "state-journal.1" in turn, each write with a higher
 *    sequence number: the new one is stored before the old name is removed, so a crash at any
 *    moment leaves a complete journal in the store.
 *  - At start, the journal with the highest sequence that decodes is read back; each device
 *    is re-adopted from its stored fds without a reset (manager_readopt_sim(),
 *    manager_readopt_kernel(): nothing reopened, the state read back), its interrupts taken
 *    back as the kernel kept them (irq_readopt(): nothing disabled), groups are
 *    made again, every data fd is checked (BackendOps.data_fd_check), logged and closed
 *    (a session's stream cannot be resumed by another process: the job that read it is gone),
 *    and a job that was in flight is failed cleanly: a source's (or save's)
 *    devices go back to RUNNING, a destination's (or restore's) are reset, and the job is
 *    listed as failed under its old id (migration_record_failed()); a live migration past its
 *    commit point (journaled in doubt) comes back in doubt instead, a live job holding its
 *    devices as they are until resolved (migration_readopt_in_doubt()). Stored fds nothing
 *    claims are closed and removed. No journal, or one that does not decode: one log line,
 *    every stored fd closed, the daemon starts empty.
 * Outside systemd (no NOTIFY_SOCKET) nothing is stored and nothing written.
 *
 * Used by:  main.c (start, Manager.on_change).
 * Uses:     sd_service (the fds), manager/group/device, core/state_journal.
 * Threads:  loop-thread only.
 * Errors:   logs what it recovers and what it gives up; never fails the daemon's start.
 */

#include <stdbool.h>

#include "forward.h"
#include "sd_service.h"

typedef struct DataSession DataSession;

typedef struct RestoreState RestoreState;

/* Takes back what the previous daemon stored, from the fds @sd holds, into @m. Returns the
 * tracker that keeps the store and the journal current (NULL on OOM: nothing is kept). */
RestoreState *restore_state_start(Manager *m, SdService *sd);
/* Call on every Manager.on_change: stores new devices' fds, removes detached ones', writes
 * the journal. */
void restore_state_changed(RestoreState *rs);
/* A device's data session changed (device.c): the old one's fd (@had_old) leaves the store,
 * @now's (SessionOps.fd) goes in, as "mig/<id>/data". Stateless, so no RestoreState; a no-op
 * outside systemd. Thread: any (the worker that opened or closed the session). */
void restore_state_data_fd(const char *id, bool had_old, DataSession *now);
/* NULL-safe; keeps the store as it is (a restart must find it). Returns NULL. */
RestoreState *restore_state_free(RestoreState *rs);
