/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * device — one device the daemon owns: its back-end handle, the state the daemon last
 * observed, its open data session, statistics, and at most one operation at a time.
 *
 * Every operation that touches the device (state transitions, reset, region access) runs
 * on a libuv worker thread, never on the loop: the worker steps the kernel's path one arc at
 * a time (core/fsm), timing each arc, and reads the state back after a failed arc; a device
 * found in ERROR is reset. While an operation runs, the worker owns the back-end handle and
 * the data session; the loop only reads the cached fields below. The completion callback
 * runs on the loop, after the cached fields were updated.
 *
 * A job (a migration, a save, a restore: migration.h) holds its devices with device_lock()
 * for its whole life and moves them through group transitions; the job, not each of its
 * steps, is what stats.transitions counts.
 *
 * Used by:  manager.c (lifetime), group.c, migration*.c, rpc/handlers/devices.c (API).
 * Uses:     backend/backend.h (the device vtable), core/fsm.h, core/compat.h.
 * Threads:  every function here is loop-thread only.
 * Errors:   negative errno; a human-readable explanation goes into the caller's buffer or
 *           the OpResult. Nothing here logs above debug; callers report.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "backend/backend.h"
#include "core/authz.h"
#include "core/fsm.h"
#include "forward.h"
#include "irq.h"
#include "req.h"

/* One request takes at most 4 arcs (a kernel path) and, on failure, the way back or a reset;
 * 24 leaves room for any of them. */
#define DEVICE_MAX_ARCS 24
#define DEVICE_MESSAGE_MAX 512

typedef struct ArcRecord {
    DeviceState from;
    DeviceState to;
    uint64_t start_us;    /* since the operation started */
    uint64_t duration_us;
    uint64_t begin_ns;    /* CLOCK_MONOTONIC at the start and the end of the arc: exact */
    uint64_t end_ns;      /* ordering across devices (group timelines, invariant checks) */
    int error;            /* 0, or the negative errno the back-end returned */
    bool opened_session;
    bool reset;           /* not an arc but a VFIO_DEVICE_RESET (from -> RUNNING) */
} ArcRecord;

typedef struct DeviceStats {
    uint64_t transitions;
    uint64_t arcs;
    uint64_t failed_arcs;
    uint64_t resets;
    uint64_t bytes_saved;
    uint64_t bytes_restored;
} DeviceStats;

typedef enum OpFailure {
    OP_FAILED_NONE = 0,
    OP_FAILED_REFUSED,   /* nothing was touched: the request was refused up front */
    OP_FAILED_ARC,       /* a kernel arc failed */
} OpFailure;

/* What an operation did, filled on the worker, read on the loop. */
typedef struct OpResult {
    int r;                       /* 0 or negative errno */
    OpFailure failure;
    DeviceState start_state;
    DeviceState final_state;     /* as read back from the device */
    unsigned n_arcs;
    ArcRecord arcs[DEVICE_MAX_ARCS];
    uint64_t start_ns;           /* CLOCK_MONOTONIC when the worker began */
    uint64_t elapsed_us;
    bool was_reset;              /* the device was reset (ERROR, or on request) */
    char message[DEVICE_MESSAGE_MAX]; /* on failure: what happened, naming arcs and errnos */
} OpResult;

/* Runs once on the loop when an operation started by device_*_start() ends. */
typedef void (*device_op_cb)(Device *d, const OpResult *res, void *userdata);

struct Device {
    Manager *manager;
    char *id;
    BackendDevice *backend;       /* owned */
    BackendInfo info;
    DeviceState state;            /* last observed; updated only on the loop */
    uint64_t data_size;
    DataSession *session;         /* owned; touched by the worker while busy */
    DeviceOp *op;                 /* the operation in flight, NULL when idle */
    DeviceStats stats;
    char last_error[DEVICE_MESSAGE_MAX];
    BackendProperty props[BACKEND_MAX_PROPERTIES]; /* cached at attach and after each op */
    unsigned n_props;
    Group *group;                 /* the group the device belongs to, or NULL */
    const void *lock;             /* set while a group transition or a job owns the device */
    const char *lock_what;        /* the job holding it ("save", ...) or NULL: busy_operation */
    /* How it was attached, for the restart journal (restore_state.c): sim options or the
     * kernel address. Owned; NULL when unknown. */
    char *attach_source;
    bool attach_kernel;
    KernelAddressKind attach_kind;
    /* Who the device is (bus, address, driver, IDs, mdev type), asked of the back-end at
     * attach, and the vendor plugin that claims it (plugin_host.h), or NULL. */
    BackendIdentity identity;
    const Plugin *plugin;
    Irq *irq; /* owned: its interrupts (irq.h); never NULL once device_new() succeeded */
    int vmm_pid; /* the process holding the device over the VMM socket (fdpass.c), or 0 */
    char vmm_comm[16]; /* its name (/proc/PID/comm when it took the device), "" unreadable */
    const void *vmm_holder; /* that connection (fdpass.c), compared only; NULL when none */
    /* The kernel's REQ watch (req.h), owned; NULL when the device has no REQ (mtty). */
    Req *req;
    /* The kernel asked for the device back (REQ): the manager releases it as soon as nothing
     * holds it (manager_release.c). */
    bool release_requested;
    bool release_blocked_said; /* ... and the log said once why it must wait */
    /* Who may take it over the VMM socket (attach --vmm-users/--vmm-groups), replacing the
     * global [vmm] list for this device (authz_vmm_admits()); naming no one: the global list
     * applies. Set at attach, kept across a restart by the state journal. */
    AuthzVmmList vmm_allow;
};

/* How a caller that coordinates several devices (group.c) runs an operation. */
typedef struct DeviceOpOptions {
    const void *lock_key;  /* must equal the device's lock when it is locked */
    bool no_auto_reset;    /* leave a device found in ERROR in ERROR: the caller resets it
                            * when that is P2P-safe */
    bool part_of_request;  /* one step of a larger request (a group transition, a job): its
                            * owner counts the request in stats.transitions, once */
    uint64_t wait_max_ms;  /* > 0: an operation that has not got a worker within this (the
                            * client's deadline) is dropped, untouched: @cb gets -ETIMEDOUT */
} DeviceOpOptions;

/* Takes ownership of @backend on success and on failure. */
int device_new(Manager *m, const char *id, BackendDevice *backend, const BackendInfo *info,
               Device **ret);
/* Frees an idle device (closes its session and back-end). NULL-safe; returns NULL. */
Device *device_free(Device *d);

/* An operation runs on the device (a job's lock alone does not count: see below). */
bool device_is_busy(const Device *d);
/* What holds the device: the job's label while a job holds it ("save", "restore",
 * "migration"), else the operation in flight ("set-state", ...); NULL when idle. */
const char *device_busy_operation(const Device *d);
const char *device_backend_name(const Device *d);

/*
 * Each of these returns 0 and later calls @cb exactly once on the loop, or returns a negative
 * errno, fills @err, and never calls @cb:
 *   -EBUSY       another operation runs on the device
 *   -EOPNOTSUPP  the device has no migration support
 *   -EINVAL      the kernel's state machine refuses the request from the current state
 * Failures of the work itself (an arc, a reset) arrive in OpResult.
 */
int device_set_state_start(Device *d, DeviceState target, device_op_cb cb, void *userdata,
                           char *err, size_t err_size);
int device_reset_start(Device *d, device_op_cb cb, void *userdata, char *err, size_t err_size);
/* The same, for coordinated operations (@opts may be NULL). */
/* Drops @d's operation if it still waits for a worker (nothing of it ran): its callback gets
 * -ETIMEDOUT with "dropped before it started: @why ..." (@why static, e.g. "its client went
 * away"), and the drop is logged. -ENOENT no operation, -EBUSY it runs already. */
int device_drop_queued(Device *d, const char *why);
int device_set_state_start_ex(Device *d, DeviceState target, const DeviceOpOptions *opts,
                              device_op_cb cb, void *userdata, char *err, size_t err_size);
int device_reset_start_ex(Device *d, const DeviceOpOptions *opts, device_op_cb cb, void *userdata,
                          char *err, size_t err_size);

/* What one device of a group may be asked on its own. Each of these moves the device while
 * the other devices of its group stay where they are, which breaks the group's P2P-safe
 * order (no device stopped while another can still DMA into it): refused unless forced. */
typedef enum DeviceAlone {
    DEVICE_ALONE_STATE,
    DEVICE_ALONE_RESET,
    DEVICE_ALONE_SAVE,
    DEVICE_ALONE_RESTORE,
    _DEVICE_ALONE_MAX,
} DeviceAlone;

/* 0 when @d belongs to no group, or to a group of one device; else -EBUSY with @err naming
 * the group, the group command to use instead and the option that forces @what on this
 * device alone. */
int device_check_alone(const Device *d, DeviceAlone what, char *err, size_t err_size);

/* While locked with @key, operations without that key are refused with -EBUSY. @what is
 * NULL for a group transition, or the label of the job that holds the device (a string
 * that outlives the lock). */
void device_lock(Device *d, const void *key, const char *what);
void device_unlock(Device *d);

/* The way out for @d left in @s by a failure, as a clause to append to a message ("; to
 * recover: 'vfio-migctl reset ID' ..."), or "" when @s needs none. Returns @buf. */
#define DEVICE_WAY_OUT_MAX 192
const char *device_way_out(const Device *d, DeviceState s, char *buf, size_t size);

/* Whether @arcs moved the device: an arc that is neither a reset nor failed. */
bool device_arcs_moved(const ArcRecord *arcs, unsigned n);
/* The owner of a request made of several operations (part_of_request) counts it once. */
void device_count_request(Device *d);
/* A save or restore job adds the bytes it moved (stats.bytes_saved/bytes_restored). */
void device_count_transfer(Device *d, uint64_t saved, uint64_t restored);
/* A job that failed records why, as a failed operation does. */
void device_set_last_error(Device *d, const char *message);
/* The device's compatibility descriptor from its back-end (empty when it has none). Loop
 * only, while no operation runs. */
int device_compat_descriptor(Device *d, CompatDescriptor *ret, char *why, size_t why_size);
/* Asks the back-end who the device is and finds the plugin that claims it (NULL @plugins:
 * none). Called once, at attach. */
void device_identify(Device *d, const PluginHost *plugins, const char *sysfs_root);
/* The plugin.h view of the device, for hooks; valid while @d is. */
void device_plugin_view(const Device *d, struct vfio_migd_device *ret);
/* Whether the device's data stream is its plugin's vendor's, so the plugin's stream and
 * pre-copy hooks apply: a real device its plugin claims, or a sim device running the
 * plugin's sim model (a generic sim device's stream is the sim's own format). */
bool device_stream_is_plugins(const Device *d);
/* Could a device described as (@flags, @backend, @src) — on another host — migrate into @d?
 * compat_compare() of the two, @d's rules deciding: 0 with @report listing every mismatch
 * (none: yes), or a negative errno with @why when @d cannot describe itself. */
int device_check_descriptor(Device *d, uint32_t flags, const char *backend,
                            const CompatDescriptor *src, CompatReport *report, char *why,
                            size_t why_size);

/* ---- region access (diagnostics: ReadRegion / WriteRegion; device.c last section) */

/* The most bytes one access moves: a page, plenty for registers and small windows. */
#define DEVICE_REGION_MAX 4096

/* Runs once on the loop when a region access ends: @r is the bytes transferred or -errno
 * (-ENOENT no such region, -ERANGE outside it, -EOPNOTSUPP not readable/writable, else the
 * kernel's); @data holds the bytes read (a read), NULL for a write; valid during the call. */
typedef void (*device_region_cb)(Device *d, ssize_t r, const uint8_t *data, void *userdata);

/* Reads @size bytes from, or writes @size bytes of @data to, region @index of @d at @offset,
 * as ONE access on a worker (back-end region_access). Returns 0 and later calls @cb exactly
 * once, or a negative errno with @err filled, never calling @cb:
 *   -EINVAL   @size is 0 or above DEVICE_REGION_MAX
 *   -EBUSY    another operation runs on the device, or its group holds it
 *   -ESTALE   the device is not running: only RUNNING and PRE_COPY allow access
 *   -ENOTTY   the back-end has no regions (sim)
 * The device counts as busy ("region") until @cb runs. */
int device_region_start(Device *d, uint32_t index, uint64_t offset, const void *data, size_t size,
                        bool write, device_region_cb cb, void *userdata, char *err,
                        size_t err_size);
