/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * req — the kernel asking for a device back: vfio-pci's REQ interrupt (index 4,
 * BackendOps.req_arm). An eventfd the daemon owns is registered as the device's REQ trigger
 * and watched on the loop (a uv_poll, no thread). The kernel signals it when the device's
 * driver is being unbound or the device (an mdev) removed while the daemon holds it open, and
 * again every 10 s until every fd of the device is closed (vfio_unregister_group_dev()):
 * each wake-up reads the counter and calls the owner, whose handling must be idempotent.
 * mtty has no REQ: such a device gets no Req and an unbind waits until it is detached.
 *
 * Used by:  manager.c (armed at attach and at re-adoption, freed with the device),
 *           restore_state.c (the eventfd in the fd store as "req/<id>").
 * Threads:  loop only.
 * Errors:   negative errno; nothing here logs above debug, the owner reports.
 */

#include <stdbool.h>
#include <uv.h>

#include "backend/backend.h"

typedef struct Req Req;

/* Registers @fd (taken: the eventfd the fd store gave back after a restart, which the kernel
 * still signals; -EBADF: a new one) as @bd's REQ trigger and watches it; @cb(@userdata) runs on
 * the loop whenever the kernel signals it. 0 with *@ret NULL: the device has no REQ (nothing
 * registered, @fd closed); a negative errno: the device refused (@fd closed). @bd must
 * outlive the Req. */
int req_arm(uv_loop_t *loop, BackendDevice *bd, int fd, void (*cb)(void *userdata),
            void *userdata, Req **ret);
/* The eventfd the kernel signals (the Req's), for the fd store. */
int req_fd(const Req *r);
/* Closes the eventfd once its watch is closed; @cb never runs again. With @unregister the
 * trigger is unregistered first (a detach: a VMM may hold the device open after the daemon
 * closed it, and the kernel would signal a file nobody reads); without (the daemon stops, its
 * fds stay in the fd store) the kernel keeps signalling it for the next daemon. NULL-safe;
 * returns NULL. */
Req *req_free(Req *r, bool unregister);
