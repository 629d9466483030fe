/* SPDX-License-Identifier: MIT */
/*
 * accept — see accept.h: the accept() batch of a wake-up, shared by the API socket
 * (rpc/listener.c) and a destination's data port (daemon/migration_accept.c), which differ
 * only in what they do with a new fd and how they log a pause.
 */
#include "accept.h"

#include <stddef.h>
#include <sys/socket.h>

void
accept_wakeup(int listen_fd, int status, AcceptAdmitFn admit, AcceptPauseFn pause,
              void *userdata, unsigned long *calls, unsigned long *failures)
{
    int fd, r;

    if (status < 0) {
        pause(userdata, status);
        return;
    }
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        (*calls)++;
        fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            if (!admit(userdata, fd)) {
                return;
            }
            continue;
        }
        r = -errno;
        if (accept_error_kind(r) == ACCEPT_ERROR_EMPTY) {
            return;
        }
        if (accept_error_kind(r) == ACCEPT_ERROR_PAUSE) {
            if (failures) {
                (*failures)++;
            }
            pause(userdata, r);
            return;
        }
    }
}
