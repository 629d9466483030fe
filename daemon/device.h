/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * device — one device the daemon owns: its back-end handle, the state the daemon last
 * observed, its open data session, statistics, and at most one operation at a time.
 *
 * Every operation that touches the device (state transitions, reset, save, restore) runs
 * on a libuv worker thread, never on the loop: the worker steps the kernel's path one arc at
 * a time (core/fsm), timing each arc, and reads the state back after a failed arc; a device
 * found in ERROR is reset. While an operation runs, the worker owns the back-end handle and
 * the data session; the loop only reads the cached fields below. The completion callback
 * runs on the loop, after the cached fields were updated.
 *
 * Used by:  manager.c (lifetime), rpc/handlers/devices.c (API).
 * Uses:     backend/backend.h (the device vtable), core/fsm.h, core/savefile.h.
 * Threads:  every function here is loop-thread only.
 * Errors:   negative errno; a human-readable explanation goes into the caller's buffer or
 *           the OpResult. Nothing here logs above debug; callers report.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "backend/backend.h"
#include "core/fsm.h"
#include "forward.h"

/* A save or restore takes at most: 4 arcs to STOP_COPY/RESUMING, 1-3 arcs onwards, and the
 * same again for a rollback or a reset path. */
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
    OP_FAILED_DATA,      /* reading or writing the data session failed */
    OP_FAILED_FILE,      /* the file could not be read or written */
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
    uint64_t bytes;              /* data bytes saved or restored */
    bool was_reset;              /* the device was reset (ERROR, or an aborted restore) */
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
    const void *lock;             /* set while a group transition owns the device */
};

/* How a caller that coordinates several devices (group.c) runs an operation. */
typedef struct DeviceOpOptions {
    const void *lock_key;  /* must equal the device's lock when it is locked */
    bool no_auto_reset;    /* leave a device found in ERROR in ERROR: the caller resets it
                            * when that is P2P-safe */
} DeviceOpOptions;

/* Takes ownership of @backend on success and on failure. */
int device_new(Manager *m, const char *id, BackendDevice *backend, const BackendInfo *info,
               Device **ret);
/* Frees an idle device (closes its session and back-end). NULL-safe; returns NULL. */
Device *device_free(Device *d);

bool device_is_busy(const Device *d);
const char *device_busy_operation(const Device *d); /* NULL when idle */
const char *device_backend_name(const Device *d);

/*
 * Each of these returns 0 and later calls @cb exactly once on the loop, or returns a negative
 * errno, fills @err, and never calls @cb:
 *   -EBUSY       another operation runs on the device
 *   -EOPNOTSUPP  the device has no migration support
 *   -EINVAL      the kernel's state machine refuses the request from the current state
 * Failures of the work itself (an arc, the data session, the file) arrive in OpResult.
 */
int device_set_state_start(Device *d, DeviceState target, device_op_cb cb, void *userdata,
                           char *err, size_t err_size);
int device_reset_start(Device *d, device_op_cb cb, void *userdata, char *err, size_t err_size);
/* The same, for coordinated operations (@opts may be NULL). */
int device_set_state_start_ex(Device *d, DeviceState target, const DeviceOpOptions *opts,
                              device_op_cb cb, void *userdata, char *err, size_t err_size);
int device_reset_start_ex(Device *d, const DeviceOpOptions *opts, device_op_cb cb, void *userdata,
                          char *err, size_t err_size);

/* While locked with @key, operations without that key are refused with -EBUSY. */
void device_lock(Device *d, const void *key);
void device_unlock(Device *d);
/* Saves to @path (absolute): "<path>.partial" is written and renamed when complete. */
int device_save_start(Device *d, const char *path, bool resume, bool overwrite, device_op_cb cb,
                      void *userdata, char *err, size_t err_size);
int device_restore_start(Device *d, const char *path, bool stop, device_op_cb cb, void *userdata,
                         char *err, size_t err_size);

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
