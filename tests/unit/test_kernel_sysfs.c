/* SPDX-License-Identifier: MIT */
/*
 * test_kernel_sysfs — unit tests for daemon/backend/kernel_sysfs.c (address checks and sysfs
 * lookups) and for the attach decisions daemon/backend/kernel.c takes from sysfs before it
 * opens any /dev/vfio node. Each test builds a fake sysfs tree of directories and symlinks
 * in its own temporary directory, laid out as Linux 6.12 lays out /sys (a real PCI function
 * with vfio-pci, a function bound to a host driver in the same IOMMU group, an unbound one,
 * an mtty mdev, cdevs under class/vfio-dev), and passes its root where the daemon passes
 * "/sys". The real kernel paths are exercised by tests/kernel/ in a 6.12 VM.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/state_journal.h"
#include "backend/kernel_sysfs.h"

TestSuite(kernel_sysfs, .timeout = 60);
TestSuite(kernel_open_sysfs, .timeout = 60);

#define VF "0000:3b:00.2"      /* bound to vfio-pci, group 17, cdev vfio3 */
#define VF_HOST "0000:3b:00.3" /* bound to ixgbevf, also group 17 */
#define VF_BARE "0000:3b:00.4" /* no driver, no group */
#define VF_NOGRP "0000:3b:00.5" /* bound to vfio-pci but without a group */
#define VF_BADGRP "0000:3b:00.6" /* iommu_group link that does not end in a number */
#define UUID "83b8f4f2-509f-382f-3c1e-e6bfe0fa0001" /* mtty mdev, group 0, cdev vfio0 */
#define PCIDEV "devices/pci0000:3a/0000:3a:00.0"

static char root[PATH_MAX];

/* ---- the fake tree */

static void
mkdir_p(const char *rel)
{
    char path[PATH_MAX];

    cr_assert(snprintf(path, sizeof(path), "%s/%s", root, rel) < (int) sizeof(path));
    for (char *p = path + strlen(root) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %m", path);
            *p = '/';
        }
    }
    cr_assert(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %m", path);
}

/* @rel (relative to the root) becomes a symlink to @target (relative to the link, as sysfs
 * makes them); its directory is created first. */
static void
link_at(const char *rel, const char *target)
{
    char path[PATH_MAX], dir[PATH_MAX];

    (void) snprintf(dir, sizeof(dir), "%s", rel);
    *strrchr(dir, '/') = '\0';
    mkdir_p(dir);
    cr_assert(snprintf(path, sizeof(path), "%s/%s", root, rel) < (int) sizeof(path));
    cr_assert(symlink(target, path) == 0, "symlink %s -> %s: %m", path, target);
}

static void
pci_function(const char *bdf, const char *driver, const char *group)
{
    char rel[PATH_MAX], target[PATH_MAX];

    (void) snprintf(rel, sizeof(rel), "%s/%s", PCIDEV, bdf);
    mkdir_p(rel);
    (void) snprintf(rel, sizeof(rel), "bus/pci/devices/%s", bdf);
    (void) snprintf(target, sizeof(target), "../../../%s/%s", PCIDEV, bdf);
    link_at(rel, target);
    (void) snprintf(rel, sizeof(rel), "%s/%s/subsystem", PCIDEV, bdf);
    link_at(rel, "../../../../bus/pci");
    if (driver) {
        (void) snprintf(rel, sizeof(rel), "%s/%s/driver", PCIDEV, bdf);
        (void) snprintf(target, sizeof(target), "../../../../bus/pci/drivers/%s", driver);
        link_at(rel, target);
    }
    if (group) {
        (void) snprintf(rel, sizeof(rel), "%s/%s/iommu_group", PCIDEV, bdf);
        (void) snprintf(target, sizeof(target), "../../../../kernel/iommu_groups/%s", group);
        link_at(rel, target);
        (void) snprintf(rel, sizeof(rel), "kernel/iommu_groups/%s/devices/%s", group, bdf);
        (void) snprintf(target, sizeof(target), "../../../../%s/%s", PCIDEV, bdf);
        link_at(rel, target);
    }
}

/* <dev>/vfio-dev/<cdev>, and class/vfio-dev/<cdev> -> it, whose "device" leads back. */
static void
vfio_cdev(const char *devdir, const char *cdev)
{
    char rel[PATH_MAX], target[PATH_MAX];

    (void) snprintf(rel, sizeof(rel), "%s/vfio-dev/%s", devdir, cdev);
    mkdir_p(rel);
    (void) snprintf(rel, sizeof(rel), "%s/vfio-dev/%s/device", devdir, cdev);
    (void) snprintf(target, sizeof(target), "../../../%s", strrchr(devdir, '/') + 1);
    link_at(rel, target);
    (void) snprintf(rel, sizeof(rel), "class/vfio-dev/%s", cdev);
    (void) snprintf(target, sizeof(target), "../../%s/vfio-dev/%s", devdir, cdev);
    link_at(rel, target);
}

static void
build_tree(void)
{
    const char *tmp = getenv("TMPDIR");

    (void) snprintf(root, sizeof(root), "%s/test_kernel_sysfs.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert(mkdtemp(root), "mkdtemp: %m");
    mkdir_p("bus/pci/drivers/vfio-pci");
    mkdir_p("bus/pci/drivers/ixgbevf");
    mkdir_p("bus/mdev/drivers/mtty");
    pci_function(VF, "vfio-pci", "17");
    pci_function(VF_HOST, "ixgbevf", "17");
    pci_function(VF_BARE, NULL, NULL);
    pci_function(VF_NOGRP, "vfio-pci", NULL);
    pci_function(VF_BADGRP, "vfio-pci", "abc");
    vfio_cdev(PCIDEV "/" VF, "vfio3");

    mkdir_p("devices/virtual/mtty/mtty/" UUID);
    link_at("bus/mdev/devices/" UUID, "../../../devices/virtual/mtty/mtty/" UUID);
    link_at("devices/virtual/mtty/mtty/" UUID "/subsystem", "../../../../../bus/mdev");
    link_at("devices/virtual/mtty/mtty/" UUID "/driver", "../../../../../bus/mdev/drivers/mtty");
    link_at("devices/virtual/mtty/mtty/" UUID "/iommu_group", "../../../../../kernel/iommu_groups/0");
    link_at("kernel/iommu_groups/0/devices/" UUID, "../../../../devices/virtual/mtty/mtty/" UUID);
    vfio_cdev("devices/virtual/mtty/mtty/" UUID, "vfio0");
    /* a stray non-cdev entry must not be taken for one */
    mkdir_p("devices/virtual/mtty/mtty/" UUID "/vfio-dev/power");
}

static void
remove_tree(void)
{
    char cmd[PATH_MAX + 16];

    if (root[0]) {
        (void) snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        cr_expect_eq(system(cmd), 0);
    }
}

/* ---- addresses */

Test(kernel_sysfs, parse_bdf)
{
    static const struct {
        const char *in;
        const char *canonical; /* NULL: refused */
    } cases[] = {
        {"0000:3b:00.2", "0000:3b:00.2"},
        {"0000:3B:00.2", "0000:3b:00.2"},
        {"3b:00.2", "0000:3b:00.2"},
        {"10000:00:1f.7", "10000:00:1f.7"}, /* VMD domain */
        {"abcd:ff:1f.0", "abcd:ff:1f.0"},
        {"0000:3b:20.0", NULL}, /* device number has 5 bits */
        {"0000:3b:00.8", NULL},
        {"0000:3b:00.", NULL},
        {"0000:3b:00.2 ", NULL},
        {"0000:3b:0.2", NULL},
        {"000:3b:00.2", NULL},
        {"123456789:00:00.0", NULL},
        {"0000:3b:00:2", NULL},
        {"0000:3g:00.2", NULL},
        {"../../etc", NULL},
        {"", NULL},
        {"0000:3b:00.2/../x", NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[KERNEL_SYSFS_NAME_MAX] = "untouched";
        int r = kernel_sysfs_parse_bdf(cases[i].in, buf, sizeof(buf));

        if (cases[i].canonical) {
            cr_expect_eq(r, 0, "'%s': %d", cases[i].in, r);
            cr_expect_str_eq(buf, cases[i].canonical, "'%s'", cases[i].in);
        } else {
            cr_expect_eq(r, -EINVAL, "'%s' accepted as '%s'", cases[i].in, buf);
        }
    }
}

Test(kernel_sysfs, parse_uuid)
{
    char buf[KERNEL_SYSFS_NAME_MAX];

    cr_expect_eq(kernel_sysfs_parse_uuid(UUID, buf, sizeof(buf)), 0);
    cr_expect_str_eq(buf, UUID);
    cr_expect_eq(kernel_sysfs_parse_uuid("83B8F4F2-509F-382F-3C1E-E6BFE0FA0001", buf, sizeof(buf)), 0);
    cr_expect_str_eq(buf, UUID, "upper case is canonicalised");
    cr_expect_eq(kernel_sysfs_parse_uuid("83b8f4f2509f382f3c1ee6bfe0fa0001", buf, sizeof(buf)), -EINVAL);
    cr_expect_eq(kernel_sysfs_parse_uuid("83b8f4f2-509f-382f-3c1e-e6bfe0fa000", buf, sizeof(buf)), -EINVAL);
    cr_expect_eq(kernel_sysfs_parse_uuid("83b8f4f2-509f-382f-3c1e-e6bfe0fa00011", buf, sizeof(buf)), -EINVAL);
    cr_expect_eq(kernel_sysfs_parse_uuid("83b8f4f2-509f-382f-3c1e-e6bfe0fa000g", buf, sizeof(buf)), -EINVAL);
    cr_expect_eq(kernel_sysfs_parse_uuid("{83b8f4f2-509f-382f-3c1e-e6bfe0fa0001}", buf, sizeof(buf)), -EINVAL);
    cr_expect_eq(kernel_sysfs_parse_uuid("", buf, sizeof(buf)), -EINVAL);
    cr_expect_eq(kernel_sysfs_parse_uuid(UUID, buf, 36), -ENAMETOOLONG, "no room for the NUL");
}

Test(kernel_sysfs, parse_cdev_path)
{
    static const char *const bad[] = {
        "/dev/vfio/devices/vfio",   "/dev/vfio/devices/vfio01", "/dev/vfio/devices/vfio-1",
        "/dev/vfio/devices/vfio1x", "/dev/vfio/devices/../vfio", "/dev/vfio/0",
        "dev/vfio/devices/vfio1",   "/dev/vfio/devices//vfio1", "/dev/vfio/devices/vfio1/",
        "/dev/vfio/devices/iommu",  "/dev/vfio/devices/vfio1234567890", "",
    };
    char buf[KERNEL_SYSFS_NAME_MAX];

    cr_expect_eq(kernel_sysfs_parse_cdev_path("/dev/vfio/devices/vfio0", buf, sizeof(buf)), 0);
    cr_expect_str_eq(buf, "vfio0");
    cr_expect_eq(kernel_sysfs_parse_cdev_path("/dev/vfio/devices/vfio123", buf, sizeof(buf)), 0);
    cr_expect_str_eq(buf, "vfio123");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(kernel_sysfs_parse_cdev_path(bad[i], buf, sizeof(buf)), -EINVAL, "'%s'", bad[i]);
    }
}

Test(kernel_sysfs, driver_is_vfio)
{
    cr_expect(kernel_sysfs_driver_is_vfio("vfio-pci"));
    cr_expect(kernel_sysfs_driver_is_vfio("mlx5_vfio_pci"));
    cr_expect(kernel_sysfs_driver_is_vfio("hisi_acc_vfio_pci"));
    cr_expect_not(kernel_sysfs_driver_is_vfio("ixgbevf"));
    cr_expect_not(kernel_sysfs_driver_is_vfio("mlx5_core"));
    cr_expect_not(kernel_sysfs_driver_is_vfio(NULL));
}

/* ---- lookups */

Test(kernel_sysfs, device_path, .init = build_tree, .fini = remove_tree)
{
    char buf[PATH_MAX], want[PATH_MAX];

    cr_expect_eq(kernel_sysfs_device_path(root, KERNEL_SYSFS_BUS_PCI, VF, buf, sizeof(buf)), 0);
    cr_assert(snprintf(want, sizeof(want), "%s/bus/pci/devices/%s", root, VF) < (int) sizeof(want));
    cr_expect_str_eq(buf, want);
    cr_expect_eq(kernel_sysfs_device_path(root, KERNEL_SYSFS_BUS_MDEV, UUID, buf, sizeof(buf)), 0);
    cr_expect_eq(kernel_sysfs_device_path(root, KERNEL_SYSFS_BUS_PCI, "0000:3b:00.7", buf, sizeof(buf)),
                 -ENOENT);
    cr_expect_eq(kernel_sysfs_device_path(root, KERNEL_SYSFS_BUS_MDEV, VF, buf, sizeof(buf)), -ENOENT,
                 "a PCI address is not an mdev");
    cr_expect_eq(kernel_sysfs_device_path(root, KERNEL_SYSFS_BUS_PCI, "../../bus", buf, sizeof(buf)),
                 -EINVAL, "no way out of the devices directory");
    cr_expect_eq(kernel_sysfs_device_path(root, _KERNEL_SYSFS_BUS_MAX, VF, buf, sizeof(buf)), -EINVAL);
    cr_expect_eq(kernel_sysfs_device_path(root, KERNEL_SYSFS_BUS_PCI, VF, buf, 8), -ENAMETOOLONG);
}

Test(kernel_sysfs, iommu_group, .init = build_tree, .fini = remove_tree)
{
    unsigned g = 12345;

    cr_expect_eq(kernel_sysfs_iommu_group(root, KERNEL_SYSFS_BUS_PCI, VF, &g), 0);
    cr_expect_eq(g, 17);
    cr_expect_eq(kernel_sysfs_iommu_group(root, KERNEL_SYSFS_BUS_MDEV, UUID, &g), 0);
    cr_expect_eq(g, 0);
    g = 12345;
    cr_expect_eq(kernel_sysfs_iommu_group(root, KERNEL_SYSFS_BUS_PCI, VF_BARE, &g), -ENOENT);
    cr_expect_eq(kernel_sysfs_iommu_group(root, KERNEL_SYSFS_BUS_PCI, VF_BADGRP, &g), -EBADMSG);
    cr_expect_eq(kernel_sysfs_iommu_group(root, KERNEL_SYSFS_BUS_PCI, "0000:3b:00.7", &g), -ENOENT);
    cr_expect_eq(g, 12345, "output untouched on failure");
}

Test(kernel_sysfs, driver, .init = build_tree, .fini = remove_tree)
{
    char buf[64];

    cr_expect_eq(kernel_sysfs_driver(root, KERNEL_SYSFS_BUS_PCI, VF, buf, sizeof(buf)), 0);
    cr_expect_str_eq(buf, "vfio-pci");
    cr_expect_eq(kernel_sysfs_driver(root, KERNEL_SYSFS_BUS_PCI, VF_HOST, buf, sizeof(buf)), 0);
    cr_expect_str_eq(buf, "ixgbevf");
    cr_expect_eq(kernel_sysfs_driver(root, KERNEL_SYSFS_BUS_MDEV, UUID, buf, sizeof(buf)), 0);
    cr_expect_str_eq(buf, "mtty");
    cr_expect_eq(kernel_sysfs_driver(root, KERNEL_SYSFS_BUS_PCI, VF_BARE, buf, sizeof(buf)), -ENOENT);
}

Test(kernel_sysfs, cdev_both_ways, .init = build_tree, .fini = remove_tree)
{
    char buf[KERNEL_SYSFS_NAME_MAX];
    KernelSysfsBus bus = _KERNEL_SYSFS_BUS_INVALID;

    cr_expect_eq(kernel_sysfs_vfio_cdev(root, KERNEL_SYSFS_BUS_PCI, VF, buf, sizeof(buf)), 0);
    cr_expect_str_eq(buf, "vfio3");
    cr_expect_eq(kernel_sysfs_vfio_cdev(root, KERNEL_SYSFS_BUS_MDEV, UUID, buf, sizeof(buf)), 0);
    cr_expect_str_eq(buf, "vfio0", "the 'power' entry is not a cdev");
    cr_expect_eq(kernel_sysfs_vfio_cdev(root, KERNEL_SYSFS_BUS_PCI, VF_HOST, buf, sizeof(buf)), -ENOENT);

    cr_expect_eq(kernel_sysfs_cdev_device(root, "vfio3", &bus, buf, sizeof(buf)), 0);
    cr_expect_eq(bus, KERNEL_SYSFS_BUS_PCI);
    cr_expect_str_eq(buf, VF);
    cr_expect_eq(kernel_sysfs_cdev_device(root, "vfio0", &bus, buf, sizeof(buf)), 0);
    cr_expect_eq(bus, KERNEL_SYSFS_BUS_MDEV);
    cr_expect_str_eq(buf, UUID);
    cr_expect_eq(kernel_sysfs_cdev_device(root, "vfio9", &bus, buf, sizeof(buf)), -ENOENT);
    cr_expect_eq(kernel_sysfs_cdev_device(root, "../vfio3", &bus, buf, sizeof(buf)), -EINVAL);
}

Test(kernel_sysfs, group_blocker, .init = build_tree, .fini = remove_tree)
{
    char buf[160] = "";

    cr_expect_eq(kernel_sysfs_group_blocker(root, 17, buf, sizeof(buf)), 1);
    cr_expect_str_eq(buf, VF_HOST " (driver 'ixgbevf')");
    cr_expect_eq(kernel_sysfs_group_blocker(root, 0, buf, sizeof(buf)), 0, "mtty's group is fine");
    cr_expect_eq(kernel_sysfs_group_blocker(root, 99, buf, sizeof(buf)), 0, "no such group");
}

/* ---- kernel.c: what attach decides from sysfs, before any /dev/vfio node is opened */

static int
open_with(KernelAddressKind kind, const char *value, char *err, size_t size)
{
    KernelAddress addr = {kind, value};
    BackendDevice *bd = (BackendDevice *) 0x1;
    BackendInfo info = {.migratable = true, .mig_flags = 0x55};
    int r;

    err[0] = '\0';
    r = kernel_device_open(&addr, root, &bd, &info, err, size);
    cr_expect_lt(r, 0, "'%s' opened in a fake tree", value);
    cr_expect_eq(bd, (BackendDevice *) 0x1, "output untouched on failure");
    cr_expect_eq(info.mig_flags, 0x55, "output untouched on failure");
    return r;
}

Test(kernel_open_sysfs, malformed_addresses, .init = build_tree, .fini = remove_tree)
{
    char err[512];

    cr_expect_eq(open_with(KERNEL_ADDRESS_PCI, "3b:00.2.1", err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "'3b:00.2.1' is not a PCI address: expected DDDD:BB:DD.F"), "%s", err);
    cr_expect_eq(open_with(KERNEL_ADDRESS_MDEV, "not-a-uuid", err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "'not-a-uuid' is not an mdev UUID"), "%s", err);
    cr_expect_eq(open_with(KERNEL_ADDRESS_CDEV, "/dev/vfio/0", err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "'/dev/vfio/0' is not a VFIO device cdev: expected "
                          "/dev/vfio/devices/vfioN"), "%s", err);
    cr_expect_eq(open_with(KERNEL_ADDRESS_PCI, "", err, sizeof(err)), -EINVAL);
}

Test(kernel_open_sysfs, sysfs_refusals, .init = build_tree, .fini = remove_tree)
{
    char err[512];

    cr_expect_eq(open_with(KERNEL_ADDRESS_PCI, "0000:3b:00.7", err, sizeof(err)), -ENOENT);
    cr_expect(strstr(err, "no device 0000:3b:00.7 in sysfs"), "%s", err);
    cr_expect_eq(open_with(KERNEL_ADDRESS_PCI, "3B:00.4", err, sizeof(err)), -EMEDIUMTYPE);
    cr_expect(strstr(err, "device 0000:3b:00.4 is not bound to a vfio driver (bind it to "
                          "vfio-pci or its variant driver: see docs/kernel.md)"), "%s", err);
    cr_expect_eq(open_with(KERNEL_ADDRESS_PCI, VF_HOST, err, sizeof(err)), -EMEDIUMTYPE);
    cr_expect(strstr(err, "is bound to 'ixgbevf', not to a vfio driver"), "%s", err);
    cr_expect_eq(open_with(KERNEL_ADDRESS_PCI, VF_NOGRP, err, sizeof(err)), -EMEDIUMTYPE);
    cr_expect(strstr(err, "has no IOMMU group"), "%s", err);
    cr_expect_eq(open_with(KERNEL_ADDRESS_MDEV, "83b8f4f2-509f-382f-3c1e-e6bfe0fa0009", err,
                           sizeof(err)), -ENOENT);
    cr_expect(strstr(err, "no device 83b8f4f2-509f-382f-3c1e-e6bfe0fa0009 in sysfs"), "%s", err);
    cr_expect_eq(open_with(KERNEL_ADDRESS_CDEV, "/dev/vfio/devices/vfio9", err, sizeof(err)), -ENOENT);
    cr_expect(strstr(err, "no such VFIO cdev in sysfs"), "%s", err);
}

/* A device sysfs finds fit goes on to the device nodes; on a machine without them (a build
 * host) the error names the node and what to do, on one with VFIO it names the group node. */
Test(kernel_open_sysfs, reaches_the_device_nodes, .init = build_tree, .fini = remove_tree)
{
    char err[512];
    int r;

    r = open_with(KERNEL_ADDRESS_PCI, VF, err, sizeof(err));
    cr_expect(r == -ENOENT || r == -EACCES || r == -EBUSY, "%d: %s", r, err);
    cr_expect(strstr(err, "/dev/vfio/"), "%s", err);
    cr_expect(!strstr(err, "sysfs"), "%s", err);
}

/* ---- kernel.c: re-adopting a device from the fds the previous daemon kept (restart) */

static bool
fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* Adopts @value from three memfds standing in for the kept fds; each check must refuse them
 * and close every fd it was given. */
static int
adopt_with(KernelAddressKind kind, const char *value, uint32_t group, char *err, size_t size)
{
    KernelAddress addr = {kind, value};
    int a = memfd_create("dev", MFD_CLOEXEC), b = memfd_create("grp", MFD_CLOEXEC),
        c = memfd_create("ctr", MFD_CLOEXEC);
    KernelKeptFds fds = {.device_fd = a, .group_fd = kind == KERNEL_ADDRESS_CDEV ? -EBADF : b,
                         .container_fd = kind == KERNEL_ADDRESS_CDEV ? -EBADF : c,
                         .iommufd = kind == KERNEL_ADDRESS_CDEV ? b : -EBADF};
    BackendDevice *bd = (BackendDevice *) 0x1;
    BackendInfo info = {.mig_flags = 0x55};
    int r;

    cr_assert(a >= 0 && b >= 0 && c >= 0);
    err[0] = '\0';
    r = kernel_device_adopt(&addr, root, group, &fds, &bd, &info, err, size);
    cr_expect_lt(r, 0, "'%s' adopted from memfds", value);
    cr_expect_eq(bd, (BackendDevice *) 0x1, "output untouched on failure");
    cr_expect(!fd_is_open(a) && !fd_is_open(b), "the kept fds are closed on failure");
    if (kind == KERNEL_ADDRESS_CDEV) {
        (void) close(c);
    } else {
        cr_expect(!fd_is_open(c), "the container fd is closed on failure");
    }
    return r;
}

Test(kernel_adopt, refuses_what_the_journal_does_not_describe, .init = build_tree,
     .fini = remove_tree)
{
    char err[512];

    cr_expect_eq(adopt_with(KERNEL_ADDRESS_PCI, "3b:00.2.1", 17, err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "is not a PCI address"), "%s", err);
    cr_expect_eq(adopt_with(KERNEL_ADDRESS_PCI, VF, 16, err, sizeof(err)), -ESTALE);
    cr_expect(strstr(err, "sysfs puts " VF " in IOMMU group 17, the journal in group 16"),
              "%s", err);
    cr_expect_eq(adopt_with(KERNEL_ADDRESS_PCI, VF, 17, err, sizeof(err)), -EBADF);
    cr_expect(strstr(err, "the kept device fd is not a VFIO device"), "%s", err);
    cr_expect_eq(adopt_with(KERNEL_ADDRESS_PCI, VF_HOST, 17, err, sizeof(err)), -EMEDIUMTYPE);
    cr_expect_eq(adopt_with(KERNEL_ADDRESS_CDEV, "/dev/vfio/devices/vfio3", STATE_JOURNAL_NO_GROUP,
                            err, sizeof(err)), -EBADF);
    cr_expect(strstr(err, "the kept fds are not /dev/vfio/devices/vfio3 and /dev/iommu"), "%s",
              err);
}
