/* SPDX-License-Identifier: MIT */
/*
 * fdcheck — see fdcheck.h.
 */
#include "fdcheck.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
fdcheck_is_eventfd(int fd)
{
    static const char want[] = "anon_inode:[eventfd]";
    char path[64], target[sizeof(want) + 1];
    struct stat st;
    ssize_t n;

    if (fd < 0 || fstat(fd, &st) < 0) {
        return -EBADF;
    }
    /* The link of a file with a path starts with '/', a socket's is "socket:[N]": only an
     * anonymous eventfd inode reads exactly so (its st_mode differs across kernels). */
    (void)snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0) {
        return errno == ENOENT ? -EBADF : -errno;
    }
    target[n] = '\0';
    return strcmp(target, want) == 0 ? 0 : -EINVAL;
}
