/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * fdcheck — what kind of file an fd from outside really is, before it is used as one.
 * An fd handed over a socket (SCM_RIGHTS) or given to SET_IRQS may be anything the peer
 * chose; the kernel's own check (eventfd_ctx_fdget) answers -EBADF or -EINVAL, and so do we.
 *
 * Used by:  daemon/backend/sim_irq.c (SET_IRQS as the kernel checks it), daemon/fdpass.c.
 * Threads:  any.
 */

/* 0 when @fd is an open eventfd; -EBADF when it is not an open fd; -EINVAL for any other
 * file. Reads /proc/self/fd/@fd, which for an eventfd and nothing else is
 * "anon_inode:[eventfd]" (a file with a path links to "/...", a socket to "socket:[N]"). */
int fdcheck_is_eventfd(int fd);
