/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * switchover — when a live migration's pre-copy ends: the switchover policy as a pure function
 * of a few numbers, so every case can be unit-tested without a daemon, a clock or a device.
 *
 * Pre-copy sends the devices' state while the VM runs; what is left when the switchover
 * starts is sent with the VM paused, and that time is the downtime. So the switchover starts
 * only when the stop-copy data the devices report (initial plus dirty bytes, summed over the
 * group) moves within the downtime target at the rate the pre-copy has measured. A workload
 * that dirties faster than the link carries never gets there: at max_precopy_ms the
 * migration gives up waiting and switches over anyway (or waits for the operator, manual
 * mode), and says why in words, so a long downtime is never a silent one.
 *
 * Used by:  migration_source.c (its tick), bench/README.md explains the measurements.
 * Uses:     util/macro.h only.
 * Threads:  any (pure). Errors: none; a decision for every input.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum SwitchoverDecision {
    SWITCHOVER_CONTINUE, /* keep pre-copying: the estimate does not fit yet */
    SWITCHOVER_NOW,      /* converged: the rest moves within the target */
    SWITCHOVER_GIVE_UP,  /* max_precopy_ms passed without converging */
    _SWITCHOVER_DECISION_MAX,
} SwitchoverDecision;

/* What the source knows at one tick of pre-copy. */
typedef struct SwitchoverInput {
    uint64_t remaining_bytes; /* sum over the group of each device's last PRECOPY_INFO,
                               * initial + dirty: what the stop-copy would move now */
    bool initial_sent;        /* every device has reported and read all its initial data */
    uint64_t rate;            /* bytes/s the pre-copy measured (switchover_rate()); 0: none */
    uint64_t elapsed_ms;      /* since pre-copy started */
    uint32_t target_ms;       /* downtime_target_ms */
    uint32_t max_ms;          /* max_precopy_ms */
} SwitchoverInput;

/* The measured transfer rate of the pre-copy so far: @bytes sent in @elapsed_ns, in bytes
 * per second (rounded down); 0 while no time has passed. */
uint64_t switchover_rate(uint64_t bytes, uint64_t elapsed_ns);

/* The estimated stop-copy time of @remaining_bytes at @rate, in ms rounded up; UINT64_MAX
 * when there is something to move and no rate to move it at. */
uint64_t switchover_estimate_ms(uint64_t remaining_bytes, uint64_t rate);

/* Decides, and writes into @reason (when given) one sentence for the job and the operator:
 * "pre-copy converged in 2140 ms: 1.2 MiB left at 450.0 MiB/s needs 3 ms <= target 50 ms"
 * or "pre-copy did not converge in 30000 ms: 180.0 MiB left at 95.0 MiB/s needs 1895 ms >
 * target 50 ms" (bytes always in MiB, one decimal). Nothing is written for
 * SWITCHOVER_CONTINUE. */
SwitchoverDecision switchover_decide(const SwitchoverInput *in, char *reason, size_t reason_size);

/* "continue", "now", "give-up" (tests, traces). */
const char *switchover_decision_name(SwitchoverDecision d);
