/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * fsm — the kernel's VFIO migration v2 state machine as pure functions (no I/O, no globals).
 *
 * For (current state, target state, migration flags) it computes the exact list of single
 * arcs a kernel driver takes for one VFIO_DEVICE_FEATURE SET of MIG_DEVICE_STATE, which
 * arc returns a new data fd, or the refusal. It mirrors vfio_mig_get_next_state() in
 * drivers/vfio/vfio_main.c (Linux 6.12): the next-hop table, the skipping of states the
 * device does not support, and the refusals (ERROR as source or target, STOP_COPY ->
 * PRE_COPY*). See docs/state-machines.md and shared reference kernel-uapi.md §5-6.
 *
 * Used by:  the sim backend (to behave exactly as a kernel driver), device.c (to step arc
 *           by arc and time each arc), the ComputePath RPC, tests.
 * Threads:  any; everything here is reentrant.
 * Errors:   negative errno, never logs.
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

/* Values are the kernel's enum vfio_device_mig_state (uapi/linux/vfio.h). */
typedef enum DeviceState {
    DEVICE_STATE_ERROR = 0,
    DEVICE_STATE_STOP = 1,
    DEVICE_STATE_RUNNING = 2,
    DEVICE_STATE_STOP_COPY = 3,
    DEVICE_STATE_RESUMING = 4,
    DEVICE_STATE_RUNNING_P2P = 5,
    DEVICE_STATE_PRE_COPY = 6,
    DEVICE_STATE_PRE_COPY_P2P = 7,
    _DEVICE_STATE_MAX,
    _DEVICE_STATE_INVALID = -EINVAL,
} DeviceState;

/* The kernel's VFIO_MIGRATION_* bits of struct vfio_device_feature_migration.flags. */
#define MIG_FLAG_STOP_COPY (UINT32_C(1) << 0)
#define MIG_FLAG_P2P (UINT32_C(1) << 1)
#define MIG_FLAG_PRE_COPY (UINT32_C(1) << 2)
#define MIG_FLAGS_ALL (MIG_FLAG_STOP_COPY | MIG_FLAG_P2P | MIG_FLAG_PRE_COPY)

/* The longest path the table produces is 4 arcs (e.g. RESUMING -> PRE_COPY with all flags:
 * STOP -> RUNNING_P2P -> RUNNING -> PRE_COPY); leave headroom without hiding a bug. */
#define FSM_MAX_ARCS 6

typedef struct FsmArc {
    DeviceState from;
    DeviceState to;
} FsmArc;

typedef struct FsmPath {
    unsigned n_arcs;
    FsmArc arcs[FSM_MAX_ARCS];
    int session_arc; /* index of the arc that returns a new data fd, or -1 */
} FsmPath;

/* Why a request is refused, so callers can say something a person can act on. */
typedef enum FsmRefusal {
    FSM_OK = 0,
    FSM_REFUSE_BAD_FLAGS,         /* not one of the four legal flag sets */
    FSM_REFUSE_BAD_STATE,         /* a number outside the kernel's enum */
    FSM_REFUSE_FROM_ERROR,        /* ERROR is left only by a device reset */
    FSM_REFUSE_TO_ERROR,          /* ERROR can never be requested */
    FSM_REFUSE_FROM_UNSUPPORTED,  /* the device cannot be in this state with these flags */
    FSM_REFUSE_TO_UNSUPPORTED,    /* the target needs a flag the device lacks */
    FSM_REFUSE_BLOCKED,           /* STOP_COPY -> PRE_COPY / PRE_COPY_P2P */
    _FSM_REFUSAL_MAX,
} FsmRefusal;

bool fsm_state_valid(int state);
bool fsm_flags_valid(uint32_t flags);                   /* 0x1, 0x3, 0x5, 0x7 only */
bool fsm_state_supported(DeviceState s, uint32_t flags); /* ERROR never is */

/* PRE_COPY, PRE_COPY_P2P, STOP_COPY: the states that share one saving data fd. */
bool fsm_state_is_saving(DeviceState s);
/* RUNNING and PRE_COPY: the device may initiate DMA, including peer-to-peer. */
bool fsm_state_is_running(DeviceState s);
/* RUNNING_P2P and PRE_COPY_P2P: running but no new peer-to-peer DMA. */
bool fsm_state_is_p2p(DeviceState s);
/* STOP, STOP_COPY, RESUMING: the device does nothing. */
bool fsm_state_is_stopped(DeviceState s);

/* ERROR and RESUMING: left there by a failure, only a device reset is sure to move the device
 * on (leaving RESUMING loads the data, which a failed restore or migration never completed). */
bool fsm_state_needs_reset(DeviceState s);

/* RUN->PC, RP2P->PCP2P, STOP->SC, STOP->RES: arcs that create a new data fd. */
bool fsm_arc_opens_session(DeviceState from, DeviceState to);
/* Arcs after which the current data fd is dead (-ENODEV): leaving the saving group, or
 * RESUMING -> STOP. PC->SC and PCP2P->SC keep the saving fd streaming. */
bool fsm_arc_closes_session(DeviceState from, DeviceState to);

/* The kernel's vfio_mig_get_next_state(): the next supported state on the way from @cur to
 * @target. Returns 0 and *ret_next, or -EINVAL (refused) with *ret_refusal set when given. */
int fsm_next_hop(DeviceState cur, DeviceState target, uint32_t flags, DeviceState *ret_next,
                 FsmRefusal *ret_refusal);

/* The whole path a single SET from @cur to @target takes. @cur == @target gives 0 arcs.
 * Returns 0, or -EINVAL (refused; *ret_refusal says why when non-NULL). *ret is written only
 * on success. */
int fsm_compute_path(DeviceState cur, DeviceState target, uint32_t flags, FsmPath *ret,
                     FsmRefusal *ret_refusal);

/* Lower-case kernel names: "running", "stop_copy", ... NULL for an invalid state. */
const char *fsm_state_name(DeviceState s);
/* Upper-case kernel names as in the uAPI: "RUNNING", "STOP_COPY", ... */
const char *fsm_state_kernel_name(DeviceState s);
/* Accepts both spellings, case-insensitive, plus the short forms of the kernel reference
 * ("run", "sc", "res", "rp2p", "pc", "pcp2p", "err"). Returns the state or -EINVAL. */
DeviceState fsm_state_from_name(const char *name);

/* A sentence (no trailing period) describing a refusal, for error messages. */
const char *fsm_refusal_to_string(FsmRefusal r);

/* Formats flags as "stop_copy+p2p+pre_copy" into @buf; returns @buf. */
char *fsm_flags_to_string(uint32_t flags, char *buf, unsigned size);
/* Parses "stop_copy+p2p" (also ',' or '|' separators, or a number). 0 or -EINVAL. */
int fsm_flags_from_string(const char *s, uint32_t *ret_flags);
