/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * ktest — what the kernel test programs (mtty_fsm.c, backend_check.c) share: TAP output,
 * mtty's own record of the arcs it ran (its dev_dbg lines, read from /dev/kmsg when the guest
 * kernel booted with mtty.dyndbg=+p), and the facts of the test VM's mdevs.
 *
 * These programs run inside the Linux 6.12 test VM (tests/kernel/run-vm.sh), as root, on
 * mtty mdevs; they are not meant for a host.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/fsm.h"

/* ---- TAP: "ok N - what" / "not ok N - what" + "#   diagnostics" */

bool ktest_check(bool cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ktest_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "<N> passed, <M> failed"; returns the exit status (0 only when nothing failed). */
int ktest_finish(void);

/* ---- mtty's arcs, from the kernel log */

#define KTEST_MAX_ARCS 16

typedef struct KtestArcs {
    unsigned n;
    FsmArc arcs[KTEST_MAX_ARCS];
} KtestArcs;

/* Opens /dev/kmsg positioned at its end. 0 or -errno. */
int ktest_kmsg_open(void);
/* Skips every record logged so far. */
void ktest_kmsg_drain(void);
/* The "mtty_step_state: CUR -> NEW" lines logged for device @uuid since the last call
 * (mtty prints one before running each single arc). */
void ktest_kmsg_arcs(const char *uuid, KtestArcs *ret);
/* Whether mtty's dev_dbg lines reach the log at all (mtty.dyndbg=+p on the command line). */
bool ktest_dyndbg_enabled(void);

/* "running->running_p2p->stop" into @buf; "-" for none. */
char *ktest_arcs_string(const FsmArc *arcs, unsigned n, char *buf, size_t size);
bool ktest_arcs_equal(const FsmArc *a, unsigned na, const FsmArc *b, unsigned nb);

/* ---- the VM's mdevs */

/* "/dev/vfio/devices/vfioN" of mdev @uuid, from sysfs. 0 or -errno. */
int ktest_mdev_cdev_path(const char *uuid, char *buf, size_t size);
