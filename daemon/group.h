/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * group — P2P-safe state transitions across all devices of one VM.
 *
 * A Group references Devices owned by the Manager (a device belongs to at most one group)
 * and moves them together. A transition is a plan of steps; each step moves every device
 * that has something to do in it, all in parallel, and ends with a barrier:
 *
 *   quiesce  devices in RUNNING/PRE_COPY -> RUNNING_P2P/PRE_COPY_P2P   (only when some
 *            device is or will be stopped)
 *   wake     devices in STOP/STOP_COPY/RESUMING whose goal is not stopped -> RUNNING_P2P
 *            (or PRE_COPY_P2P when that is the goal)
 *   stop     devices whose goal is a stopped state -> goal
 *   final    every other device -> goal
 *
 * so no device is ever in STOP, STOP_COPY or RESUMING while another is in RUNNING or
 * PRE_COPY. Devices without P2P have no P2P state: they skip quiesce and wake and move in
 * the last steps (best effort; only allowed with force in groups of two or more).
 * If a device fails, the rest of that step is waited for, then the same plan runs with every
 * device's goal set to where it started (rollback). Devices left in ERROR are reset in a
 * step of their own, once waking the stopped devices has made that P2P-safe. A failing
 * rollback stops at the end of its step, leaving the devices where they are (still P2P-safe).
 *
 * Used by:  rpc/handlers/ (API); migration.c, with a job's lock key, for every group move of
 *           a migration or a save/restore (pre-copy, switchover, resuming, resume, rollback);
 *           a job on one device alone moves it with a transient one-device group;
 *           migration.c's job constructor finds the group a job names; manager.c (free).
 * Uses:     device.h (one device's operations on workers), core/fsm.h (path checks).
 * Threads:  loop-thread only.
 * Errors:   negative errno plus a sentence; nothing here logs above info.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device.h"
#include "util/cleanup.h"
#include "forward.h"

/* A VM rarely has more than a handful of passthrough devices; 256 bounds a request. */
#define GROUP_MAX_DEVICES 256
/* Per device and transition: at most 4 arcs in each of the 4 forward steps, the same
 * for rollback, and resets. */
#define GROUP_MAX_ARCS 48
#define GROUP_SPARE_RUNS 2 /* the run in flight and the next one, while Group.last is kept */

typedef struct GroupDeviceRun {
    struct GroupRun *run;       /* the transition this belongs to */
    Device *device;
    DeviceState start_state;
    DeviceState state;          /* the latest state reported by the device's operations */
    DeviceState goal;           /* the current plan's target for this device */
    ArcRecord arcs[GROUP_MAX_ARCS]; /* start_us measured from the transition's start */
    unsigned n_arcs;
    uint64_t end_us;            /* end of the device's last arc */
    int error;                  /* 0, or this device's first failure */
    bool failed_in_rollback;
    char failed_arc[48];        /* "from->to" */
    char message[DEVICE_MESSAGE_MAX];
} GroupDeviceRun;

/* One transition: in flight while Group.active, then kept as Group.last (the timeline). */
typedef struct GroupRun {
    Group *group;
    DeviceState target;
    /* Force overrode the P2P-safe order (a device lacks P2P): not merely "force was given",
     * which a migration always gives its own transitions, and which changed nothing. */
    bool force;
    uint64_t start_ns;
    uint64_t started_unix_ms;
    uint64_t elapsed_us;
    size_t n_devices;
    GroupDeviceRun *devices;
    size_t capacity;            /* devices[] has room for this many (a reused run's memory) */
    unsigned phases;            /* forward steps that moved something */
    unsigned step;              /* the step running */
    unsigned pending;           /* device operations of this step still running */
    bool step_failed;
    bool rolling_back;
    bool rolled_back;
    bool rollback_failed;
    const void *lock_key;       /* the key the devices are locked with during the run */
    bool owns_lock;             /* the run locked them itself (else a migration did) */
    bool reset;                 /* a group reset (group_reset_start): one step, no rollback */
    int r;                      /* 0, or the transition's failure */
    char error[1024];
    void (*done)(Group *g, const struct GroupRun *run, void *userdata);
    void *userdata;
} GroupRun;

struct Group {
    Manager *manager;
    char *name;
    void *migration;            /* the MigrationJob that owns the group, or NULL */
    Device **devices;           /* in the order given at creation */
    size_t n_devices;
    GroupRun *active;           /* the transition in flight, or NULL */
    GroupRun *last;             /* the last finished transition, or NULL */
    /* Finished runs' memory for the next ones, touched when the group was made: a transition
     * takes no page faults for its run (about 3.4 KiB a device; each first touch of a page
     * is an exit on a VM). A group holds at most GROUP_SPARE_RUNS + 1 runs at rest. */
    GroupRun *spares[GROUP_SPARE_RUNS];
    size_t n_spares;
};

typedef void (*group_done_cb)(Group *g, const GroupRun *run, void *userdata);

/* Creates and registers a group. -EEXIST name taken; -EINVAL bad name/list; -ENOENT unknown
 * device; -EBUSY a device is in another group. */
int group_new(Manager *m, const char *name, const char *const *device_ids, size_t n,
              Group **ret, char *err, size_t err_size);
/* A one-device group for a job on that device alone (a device's save or restore): named after
 * the device, registered nowhere, and the device does not belong to it (it may belong to a
 * group of its own). Freed with group_free() when no transition runs. -ENOMEM. */
int group_new_transient(Manager *m, Device *d, Group **ret);
/* Unregisters and frees; the devices become free. -EBUSY while a transition runs. */
int group_delete(Group *g, char *err, size_t err_size);
/* Takes @d out of @g (the kernel wants it back: manager_release.c); a group left empty is
 * deleted, the others lose their last timeline (it names @d). Only while no transition runs
 * and no job owns @g. */
void group_remove_device(Group *g, Device *d);
/* Frees without checks (daemon shutdown, when nothing runs). NULL-safe; returns NULL. */
Group *group_free(Group *g);

DEFINE_CLEANUP_FUNC(Group *, group_free);

Group *group_find(Manager *m, const char *name);

/*
 * Starts moving every device of @g to @target. Returns 0 and later calls @done exactly once
 * on the loop (run->r says whether it worked); or returns a negative errno, fills @err, and
 * never calls @done:
 *   -EBUSY       a transition runs on @g, an operation on one of its devices, or another
 *                owner (a job) holds one of them
 *   -EOPNOTSUPP  several devices, one lacks P2P, and @force is false; or one is not migratable
 *   -EINVAL      @target is ERROR, or some device's state machine refuses the path
 */
int group_transition_start(Group *g, DeviceState target, bool force, group_done_cb done,
                           void *userdata, char *err, size_t err_size);

/* The same for an owner (a migration) that has locked every device of @g with @lock_key
 * for longer than one transition: the run uses that key instead of locking them itself. */
int group_transition_start_ex(Group *g, DeviceState target, bool force, const void *lock_key,
                              group_done_cb done, void *userdata, char *err, size_t err_size);

/*
 * Resets every device of @g (VFIO_DEVICE_RESET, back to RUNNING) in parallel: the way out of
 * ERROR, of a RESUMING a failed restore or migration left, or of any state nobody can move
 * on from. One step, no rollback (a reset has nothing to go back to): the run reports each
 * device's reset. Returns 0 and later calls @done exactly once, or a negative errno with
 * @err filled and never calls @done:
 *   -EBUSY  a transition runs on @g, the group belongs to a migration, or a device is busy
 */
int group_reset_start(Group *g, group_done_cb done, void *userdata, char *err, size_t err_size);

/* The way out for @g's devices as they are now, as a clause to append to a message ("; to
 * recover, 'vfio-migctl group reset NAME' ..."), when one of them is in a state only a reset
 * leaves (ERROR, RESUMING) or they are in different states; else "". Returns @buf. */
const char *group_way_out(const Group *g, char *buf, size_t size);

/* The state every device is in, or _DEVICE_STATE_INVALID when they differ. */
DeviceState group_common_state(const GroupRun *run);
