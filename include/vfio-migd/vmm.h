/* SPDX-License-Identifier: MIT */
#ifndef VFIO_MIGD_VMM_H
#define VFIO_MIGD_VMM_H
/*
 * vmm — the framing of the VMM socket (docs/vmm-protocol.md) that both of its ends share: the
 * daemon (daemon/fdpass.c) and the reference VMM (examples/vmm-client.c). One message is one
 * line of text with up to VFIO_MIGD_VMM_MAX_FDS file descriptors attached as SCM_RIGHTS.
 * Header-only, in the plugin ABI's dialect (vfio_migd_ prefix, fixed-width types); built
 * against by this tree only, not installed.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#define VFIO_MIGD_VMM_MAX_MESSAGE 512 /* one command or answer, bytes */
#define VFIO_MIGD_VMM_MAX_FDS 253     /* SCM_MAX_FD: the kernel's limit per message */

/* Sends @size bytes of @text with @n_fds of @fds (at most VFIO_MIGD_VMM_MAX_FDS, may be 0) as
 * one message on @sock, with sendmsg()'s @flags (MSG_NOSIGNAL is added). 0 or a negative
 * errno (-EINVAL for too many fds). */
static inline int
vfio_migd_vmm_send(int sock, const void *text, size_t size, const int *fds, size_t n_fds,
                   int flags)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * VFIO_MIGD_VMM_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = (void *) text, .iov_len = size};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

    if (n_fds > VFIO_MIGD_VMM_MAX_FDS) {
        return -EINVAL;
    }
    if (n_fds > 0) {
        memset(&ctl, 0, sizeof(ctl));
        mh.msg_control = ctl.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * n_fds);
    }
    return sendmsg(sock, &mh, flags | MSG_NOSIGNAL) < 0 ? -errno : 0;
}

#endif
