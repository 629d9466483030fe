/* SPDX-License-Identifier: MIT */
/*
 * kernel — real VFIO devices. Being written: until then every open is refused clearly.
 */
#include <errno.h>
#include <stdio.h>

#include "backend.h"

int
kernel_device_open(const KernelAddress *addr, const char *sysfs_root, BackendDevice **ret,
                   BackendInfo *ret_info, char *err, size_t err_size)
{
    (void) addr;
    (void) sysfs_root;
    (void) ret;
    (void) ret_info;
    (void) snprintf(err, err_size, "the kernel back-end is not available in this build yet");
    return -ENOSYS;
}
