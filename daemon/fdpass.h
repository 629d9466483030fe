/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * fdpass — the VMM socket (docs/vmm-protocol.md, DESIGN §9): a unix SOCK_SEQPACKET socket
 * over which a VMM takes a device by name and receives (SCM_RIGHTS) the device fd and the fd
 * it maps guest memory through, enables the device's interrupt index, hands the daemon one
 * eventfd per vector (its KVM irqfds), masks and unmasks vectors, and gives the device back.
 * One text command per message, one answer per command ("OK ..." or "ERR <ERRNO> <words>");
 * the one message unasked is the last, "ERR ENODEV ...", when the kernel wants the device back
 * (fdpass_release_holder()).
 *
 * The peer is authorised by SO_PEERCRED. When it connects: its uid in [vmm] allowed_users or
 * its gid in allowed_groups, or in some device's own VMM allow-list (attach --vmm-users,
 * --vmm-groups), else it is told why and closed. At TAKE, and at every later command on the
 * device but GIVE: the device's own list when it has one, which then replaces the global list
 * for that device (authz_vmm_admits()), else the global list. A connection holds at most one
 * device, a device is held by at most one connection. When the connection closes, the device
 * stays with the daemon and every vector goes to the daemon's latches (irq_vmm_drop_all), so
 * interrupts wait as pending for the next VMM: nothing is lost.
 *
 * Used by:  main.c. Uses: manager.h (devices by name), irq.h.
 * Threads:  loop only.
 * Errors:   negative errno; fdpass_new() says why in @err.
 */

#include <stddef.h>
#include <vfio-migd/vmm.h>

#include "core/authz.h"
#include "forward.h"

#define FDPASS_PROTOCOL_VERSION 1
#define FDPASS_MAX_CONNECTIONS 64
#define FDPASS_MAX_MESSAGE VFIO_MIGD_VMM_MAX_MESSAGE
#define FDPASS_MAX_FDS VFIO_MIGD_VMM_MAX_FDS

typedef struct FdPass FdPass;

/* Listens on @path (a stale socket file there is replaced; its directory must exist).
 * @users and @groups, the global allow-list, are borrowed: they must outlive the FdPass, and
 * what they hold at each check is what counts (a reload changes them in place). */
int fdpass_new(Manager *m, const char *path, const AuthzIds *users, const AuthzIds *groups,
               FdPass **ret, char *err, size_t err_size);
/* Closes the listener and every connection (devices stay, vectors latched). NULL-safe. */
FdPass *fdpass_free(FdPass *fp);
const char *fdpass_path(const FdPass *fp);
/* The kernel wants @d back (REQ, manager_release.c): the VMM connection holding it, if any,
 * gets "ERR ENODEV @why ..." unasked and is closed, which gives the device back (its vectors
 * go to the daemon's latches). The VMM must close its own copies of the device's fds: while
 * one is open the kernel's unbind still waits. */
void fdpass_release_holder(Device *d, const char *why);
