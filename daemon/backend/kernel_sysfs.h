/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * kernel_sysfs — what the kernel back-end needs to know about a VFIO device before it opens
 * anything: is the address well formed, does the device exist, which driver is it bound to,
 * which IOMMU group is it in, which /dev/vfio/devices/vfioN cdev is it. Everything is read
 * from a sysfs tree whose root is a parameter ("/sys" in the daemon, a fake tree built in a
 * temporary directory by tests/unit/test_kernel_sysfs.c), so all of it is unit-testable.
 *
 * The layout relied on (Linux 6.12, and unchanged since the iommufd cdev appeared in 6.6):
 *   <root>/bus/pci/devices/<BDF>          PCI device (a symlink into /sys/devices)
 *   <root>/bus/mdev/devices/<UUID>        mediated device
 *   <dev>/iommu_group -> .../kernel/iommu_groups/<N>    the group, /dev/vfio/<N>
 *   <dev>/driver -> .../drivers/<name>                  absent when unbound
 *   <dev>/vfio-dev/vfio<M>                              the cdev /dev/vfio/devices/vfio<M>
 *   <root>/class/vfio-dev/vfio<M>/device -> <dev>       and back
 *   <root>/kernel/iommu_groups/<N>/devices/<name>       every device of a group
 *
 * Used by:  backend/kernel.c.
 * Threads:  any; reentrant. Errors: negative errno, never logs.
 */

#include <stdbool.h>
#include <stddef.h>

#include "identity.h"

typedef enum KernelSysfsBus {
    KERNEL_SYSFS_BUS_PCI,
    KERNEL_SYSFS_BUS_MDEV,
    _KERNEL_SYSFS_BUS_MAX,
    _KERNEL_SYSFS_BUS_INVALID = -22, /* -EINVAL */
} KernelSysfsBus;

/* Longest device name kept: a PCI address with an 8-digit domain, or a UUID, fits. */
#define KERNEL_SYSFS_NAME_MAX 64

/* ---- addresses (pure) */

/* Checks a PCI address "DDDD:BB:DD.F" (domain 4-8 hex digits, optional: "BB:DD.F" means
 * domain 0000; device 00-1f, function 0-7; either case) and writes its canonical sysfs
 * spelling (lower case, with the domain) to @buf. 0 or -EINVAL. */
int kernel_sysfs_parse_bdf(const char *s, char *buf, size_t size);
/* Checks an mdev UUID "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (either case) and writes it in
 * lower case, as sysfs and VFIO_GROUP_GET_DEVICE_FD spell it. 0 or -EINVAL. */
int kernel_sysfs_parse_uuid(const char *s, char *buf, size_t size);
/* Checks a cdev path: exactly "/dev/vfio/devices/vfio<M>" with M a decimal number without
 * leading zeros; writes "vfio<M>" to @buf. 0 or -EINVAL. */
int kernel_sysfs_parse_cdev_path(const char *path, char *buf, size_t size);

/* A driver that hands its devices to VFIO: vfio-pci and its variant drivers
 * (mlx5_vfio_pci, hisi_acc_vfio_pci, pds_vfio_pci, ...), vfio-platform and the like all have
 * "vfio" in their names. */
bool kernel_sysfs_driver_is_vfio(const char *driver);

const char *kernel_sysfs_bus_name(KernelSysfsBus bus); /* "pci", "mdev" */

/* ---- what sysfs links say (pure): the lookups below read a link, these parse it */

/* The last component of a link's target ("../../../kernel/iommu_groups/12" -> "12") into
 * @buf: -EBADMSG when it is empty (the target ends in '/'), -ENAMETOOLONG when @size is
 * too small. */
int kernel_sysfs_link_name(const char *target, char *buf, size_t size);
/* An IOMMU group's name as a number: decimal digits only, at most UINT_MAX; else -EBADMSG. */
int kernel_sysfs_parse_group(const char *name, unsigned *ret_group);

/* ---- lookups under @root; @name is canonical (parse_* above) */

/* "<root>/bus/<bus>/devices/<name>" into @buf; -ENOENT when no such device exists. */
int kernel_sysfs_device_path(const char *root, KernelSysfsBus bus, const char *name, char *buf,
                             size_t size);
/* The number N of the device's IOMMU group (/dev/vfio/N). -ENOENT: the device has no group
 * (no IOMMU, or not isolated); -EBADMSG: the link does not end in a number. */
int kernel_sysfs_iommu_group(const char *root, KernelSysfsBus bus, const char *name,
                             unsigned *ret_group);
/* The name of the driver the device is bound to. -ENOENT: no driver is bound. */
int kernel_sysfs_driver(const char *root, KernelSysfsBus bus, const char *name, char *buf,
                        size_t size);
/* The last component of the link <device dir>/@entry ("driver", "mdev_type", "physfn"):
 * -ENOENT when the device has no such link, -EBADMSG when it is not a link. */
int kernel_sysfs_link_attr(const char *root, KernelSysfsBus bus, const char *name, const char *entry,
                           char *buf, size_t size);
/* A PCI ID attribute (<device dir>/@entry: "vendor", "device"), which sysfs writes as "0x15b3\n".
 * -ENOENT: no such file; -EBADMSG: anything but 0x and four hex digits. */
int kernel_sysfs_read_id(const char *root, KernelSysfsBus bus, const char *name, const char *entry,
                         unsigned *ret_id);
/* The device's VFIO cdev name, "vfio<M>". -ENOENT: none (not bound to a vfio driver, or a
 * kernel without CONFIG_VFIO_DEVICE_CDEV). */
int kernel_sysfs_vfio_cdev(const char *root, KernelSysfsBus bus, const char *name, char *buf,
                           size_t size);
/* The device behind cdev @cdev ("vfio<M>"): its bus and sysfs name. -ENOENT: no such cdev. */
int kernel_sysfs_cdev_device(const char *root, const char *cdev, KernelSysfsBus *ret_bus,
                             char *name, size_t size);
/* The first device of IOMMU group @group that keeps the group from being viable, i.e. bound
 * to a driver that is not a vfio driver (unbound devices and pci-stub/pcieport, which the
 * kernel tolerates, do not count). Writes "<device> (driver '<driver>')" to @buf and returns
 * 1; 0 when every device is fine or the group cannot be listed. */
int kernel_sysfs_group_blocker(const char *root, unsigned group, char *buf, size_t size);

/* Everything a plugin claims a device by (identity.h): driver, PCI IDs (PCI only), mdev type
 * (mdev only), the PF of a VF and its driver, the sysfs directory. Missing parts stay ""
 * (or BACKEND_ID_NONE): an unbound function has no driver. -ENOENT: no such device. */
int kernel_sysfs_identity(const char *root, KernelSysfsBus bus, const char *name,
                          BackendIdentity *ret);
