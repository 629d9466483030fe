/* SPDX-License-Identifier: MIT */
/*
 * kernel_sysfs — see kernel_sysfs.h. Address checks are plain character scans; lookups are
 * stat(), readlink() and readdir() under the caller's root, nothing more, so a fake tree of
 * directories and symlinks stands in for /sys in the unit tests.
 */
#include "kernel_sysfs.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../util/cleanup.h"
#include "../util/macro.h"

#define CDEV_DIR "/dev/vfio/devices/"

static const char *const bus_names[_KERNEL_SYSFS_BUS_MAX] = {
    [KERNEL_SYSFS_BUS_PCI] = "pci",
    [KERNEL_SYSFS_BUS_MDEV] = "mdev",
};

DEFINE_NAME_LOOKUP(kernel_sysfs_bus_name, KernelSysfsBus, bus_names, NULL);

/* ---- addresses */

/* Counts the hex digits at @s. */
static size_t
hex_run(const char *s)
{
    size_t n = 0;

    while (isxdigit((unsigned char) s[n])) {
        n++;
    }
    return n;
}

static int
copy_lower(const char *s, size_t len, char *buf, size_t size)
{
    if (len + 1 > size) {
        return -ENAMETOOLONG;
    }
    for (size_t i = 0; i < len; i++) {
        buf[i] = (char) tolower((unsigned char) s[i]);
    }
    buf[len] = '\0';
    return 0;
}

int
kernel_sysfs_parse_bdf(const char *s, char *buf, size_t size)
{
    char tmp[KERNEL_SYSFS_NAME_MAX];
    const char *p = s;
    size_t domain = hex_run(s);
    unsigned long dev;

    /* "BB:DD.F" has a 2-digit first field followed by ':' and then 2 digits and '.'; with a
     * domain the first field is 4-8 digits (VMD domains have 5). */
    if (domain == 2 && s[2] == ':' && hex_run(s + 3) == 2 && s[5] == '.') {
        domain = 0;
    } else if (domain < 4 || domain > 8 || s[domain] != ':') {
        return -EINVAL;
    } else {
        p = s + domain + 1;
    }
    if (hex_run(p) != 2 || p[2] != ':' || hex_run(p + 3) != 2 || p[5] != '.' ||
        p[6] < '0' || p[6] > '7' || p[7] != '\0') {
        return -EINVAL;
    }
    dev = strtoul(p + 3, NULL, 16);
    if (dev > 0x1f) {
        return -EINVAL; /* 5 bits of device number */
    }
    if (domain == 0) {
        (void) snprintf(tmp, sizeof(tmp), "0000:%s", s);
        return copy_lower(tmp, strlen(tmp), buf, size);
    }
    return copy_lower(s, strlen(s), buf, size);
}

int
kernel_sysfs_parse_uuid(const char *s, char *buf, size_t size)
{
    static const size_t groups[] = {8, 4, 4, 4, 12};
    const char *p = s;

    for (size_t i = 0; i < ELEMENTSOF(groups); i++) {
        if (hex_run(p) != groups[i]) {
            return -EINVAL;
        }
        p += groups[i];
        if (*p != (i + 1 < ELEMENTSOF(groups) ? '-' : '\0')) {
            return -EINVAL;
        }
        p++;
    }
    return copy_lower(s, 36, buf, size);
}

int
kernel_sysfs_parse_cdev_path(const char *path, char *buf, size_t size)
{
    const char *name, *digits;
    size_t n = 0;

    if (strncmp(path, CDEV_DIR, strlen(CDEV_DIR)) != 0) {
        return -EINVAL;
    }
    name = path + strlen(CDEV_DIR);
    if (strncmp(name, "vfio", 4) != 0) {
        return -EINVAL;
    }
    digits = name + 4;
    while (isdigit((unsigned char) digits[n])) {
        n++;
    }
    /* The kernel names them "vfio%d": no sign, no leading zeros, nothing after. */
    if (n == 0 || n > 9 || digits[n] != '\0' || (digits[0] == '0' && n > 1)) {
        return -EINVAL;
    }
    return copy_lower(name, strlen(name), buf, size);
}

bool
kernel_sysfs_driver_is_vfio(const char *driver)
{
    return driver && strstr(driver, "vfio") != NULL;
}

/* ---- lookups */

_printf_(3, 4) static int
path_format(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

int
kernel_sysfs_link_name(const char *target, char *buf, size_t size)
{
    const char *base = strrchr(target, '/');

    base = base ? base + 1 : target;
    if (!*base) {
        return -EBADMSG;
    }
    return path_format(buf, size, "%s", base);
}

int
kernel_sysfs_parse_group(const char *name, unsigned *ret_group)
{
    unsigned long n;
    char *end;

    errno = 0;
    n = strtoul(name, &end, 10);
    if (errno || end == name || *end || !isdigit((unsigned char) name[0]) || n > UINT_MAX) {
        return -EBADMSG;
    }
    *ret_group = (unsigned) n;
    return 0;
}

/* The last component of the symlink @path. */
static int
link_basename(const char *path, char *buf, size_t size)
{
    char target[PATH_MAX];
    ssize_t n;

    n = readlink(path, target, sizeof(target) - 1);
    if (n < 0) {
        return errno == EINVAL ? -EBADMSG : -errno; /* EINVAL: not a symlink */
    }
    target[n] = '\0';
    return kernel_sysfs_link_name(target, buf, size);
}

int
kernel_sysfs_device_path(const char *root, KernelSysfsBus bus, const char *name, char *buf,
                         size_t size)
{
    struct stat st;
    int r;

    if (!kernel_sysfs_bus_name(bus) || strchr(name, '/') || name[0] == '.') {
        return -EINVAL;
    }
    r = path_format(buf, size, "%s/bus/%s/devices/%s", root, bus_names[bus], name);
    if (r < 0) {
        return r;
    }
    if (stat(buf, &st) < 0) {
        return -errno;
    }
    return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* "<device dir>/<entry>" for the device @name. */
static int
device_entry(const char *root, KernelSysfsBus bus, const char *name, const char *entry,
             char *buf, size_t size)
{
    char dir[PATH_MAX];
    int r;

    r = kernel_sysfs_device_path(root, bus, name, dir, sizeof(dir));
    if (r < 0) {
        return r;
    }
    return path_format(buf, size, "%s/%s", dir, entry);
}

int
kernel_sysfs_iommu_group(const char *root, KernelSysfsBus bus, const char *name,
                         unsigned *ret_group)
{
    char path[PATH_MAX], base[32];
    int r;

    r = device_entry(root, bus, name, "iommu_group", path, sizeof(path));
    if (r < 0) {
        return r;
    }
    r = link_basename(path, base, sizeof(base));
    if (r < 0) {
        return r == -ENAMETOOLONG ? -EBADMSG : r;
    }
    return kernel_sysfs_parse_group(base, ret_group);
}

int
kernel_sysfs_driver(const char *root, KernelSysfsBus bus, const char *name, char *buf,
                    size_t size)
{
    return kernel_sysfs_link_attr(root, bus, name, "driver", buf, size);
}

int
kernel_sysfs_link_attr(const char *root, KernelSysfsBus bus, const char *name, const char *entry,
                       char *buf, size_t size)
{
    char path[PATH_MAX];
    int r;

    r = device_entry(root, bus, name, entry, path, sizeof(path));
    if (r < 0) {
        return r;
    }
    return link_basename(path, buf, size);
}

int
kernel_sysfs_read_id(const char *root, KernelSysfsBus bus, const char *name, const char *entry,
                     unsigned *ret_id)
{
    char path[PATH_MAX], text[16], *end;
    _cleanup_close_ int fd = -EBADF;
    unsigned long v;
    ssize_t n;
    int r;

    r = device_entry(root, bus, name, entry, path, sizeof(path));
    if (r < 0) {
        return r;
    }
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return -errno;
    }
    n = read(fd, text, sizeof(text) - 1);
    if (n < 0) {
        return -errno;
    }
    text[n] = '\0';
    /* sysfs writes "0x15b3\n": exactly 0x and four hex digits */
    if (n < 6 || text[0] != '0' || text[1] != 'x' || hex_run(text + 2) != 4 ||
        (text[6] != '\0' && text[6] != '\n')) {
        return -EBADMSG;
    }
    v = strtoul(text + 2, &end, 16);
    *ret_id = (unsigned) v;
    return 0;
}

static void
closedirp(DIR **d)
{
    if (*d) {
        (void) closedir(*d);
    }
}

int
kernel_sysfs_vfio_cdev(const char *root, KernelSysfsBus bus, const char *name, char *buf,
                       size_t size)
{
    _cleanup_(closedirp) DIR *d = NULL;
    char path[PATH_MAX];
    struct dirent *de;
    int r;

    r = device_entry(root, bus, name, "vfio-dev", path, sizeof(path));
    if (r < 0) {
        return r;
    }
    d = opendir(path);
    if (!d) {
        return -errno;
    }
    while ((de = readdir(d))) {
        char check[KERNEL_SYSFS_NAME_MAX], full[PATH_MAX];

        /* Reuse the cdev path check so only "vfio<M>" entries count. */
        if (path_format(full, sizeof(full), CDEV_DIR "%s", de->d_name) == 0 &&
            kernel_sysfs_parse_cdev_path(full, check, sizeof(check)) == 0) {
            return path_format(buf, size, "%s", check);
        }
    }
    return -ENOENT;
}

int
kernel_sysfs_cdev_device(const char *root, const char *cdev, KernelSysfsBus *ret_bus, char *name,
                         size_t size)
{
    char path[PATH_MAX], bus[32], dev[KERNEL_SYSFS_NAME_MAX];
    /* The device the cdev belongs to, and the bus that device sits on. */
    const struct {
        const char *suffix;
        char *buf;
        size_t size;
    } links[] = {
        {"", dev, sizeof(dev)},
        {"/subsystem", bus, sizeof(bus)},
    };
    int r;

    if (strchr(cdev, '/') || cdev[0] == '.') {
        return -EINVAL;
    }
    for (size_t i = 0; i < ELEMENTSOF(links); i++) {
        r = path_format(path, sizeof(path), "%s/class/vfio-dev/%s/device%s", root, cdev,
                        links[i].suffix);
        if (r < 0) {
            return r;
        }
        r = link_basename(path, links[i].buf, links[i].size);
        if (r < 0) {
            return r;
        }
    }
    for (int b = 0; b < _KERNEL_SYSFS_BUS_MAX; b++) {
        if (strcmp(bus, bus_names[b]) == 0) {
            *ret_bus = (KernelSysfsBus) b;
            return path_format(name, size, "%s", dev);
        }
    }
    return -EPROTONOSUPPORT; /* a platform or cdx device: not a bus this daemon attaches */
}

/* Drivers the kernel lets share a viable group with vfio devices (vfio_main.c
 * vfio_driver_allowed / group.c): pci-stub and pcieport. */
static bool
driver_tolerated(const char *driver)
{
    return kernel_sysfs_driver_is_vfio(driver) || strcmp(driver, "pci-stub") == 0 ||
           strcmp(driver, "pcieport") == 0;
}

int
kernel_sysfs_group_blocker(const char *root, unsigned group, char *buf, size_t size)
{
    _cleanup_(closedirp) DIR *d = NULL;
    char path[PATH_MAX];
    struct dirent *de;

    if (path_format(path, sizeof(path), "%s/kernel/iommu_groups/%u/devices", root, group) < 0) {
        return 0;
    }
    d = opendir(path);
    if (!d) {
        return 0;
    }
    while ((de = readdir(d))) {
        char link[PATH_MAX], driver[128], bus[32];

        if (de->d_name[0] == '.' ||
            path_format(link, sizeof(link), "%s/%s/driver", path, de->d_name) < 0 ||
            link_basename(link, driver, sizeof(driver)) < 0 || driver_tolerated(driver)) {
            continue;
        }
        /* An mdev's driver is its parent's mdev driver ("mtty"): a VFIO device anyway. */
        if (path_format(link, sizeof(link), "%s/%s/subsystem", path, de->d_name) == 0 &&
            link_basename(link, bus, sizeof(bus)) == 0 && strcmp(bus, "mdev") == 0) {
            continue;
        }
        (void) snprintf(buf, size, "%s (driver '%s')", de->d_name, driver);
        return 1;
    }
    return 0;
}

int
kernel_sysfs_identity(const char *root, KernelSysfsBus bus, const char *name,
                      BackendIdentity *ret)
{
    BackendIdentity id = {.vendor_id = BACKEND_ID_NONE, .device_id = BACKEND_ID_NONE};
    unsigned v;
    int r;

    r = kernel_sysfs_device_path(root, bus, name, id.sysfs_path, sizeof(id.sysfs_path));
    if (r < 0) {
        return r;
    }
    (void) snprintf(id.bus, sizeof(id.bus), "%s", bus_names[bus]);
    (void) snprintf(id.address, sizeof(id.address), "%s", name);
    (void) kernel_sysfs_driver(root, bus, name, id.driver, sizeof(id.driver));
    if (bus == KERNEL_SYSFS_BUS_MDEV) {
        (void) kernel_sysfs_link_attr(root, bus, name, "mdev_type", id.mdev_type,
                                      sizeof(id.mdev_type));
    } else {
        if (kernel_sysfs_read_id(root, bus, name, "vendor", &v) >= 0) {
            id.vendor_id = v;
        }
        if (kernel_sysfs_read_id(root, bus, name, "device", &v) >= 0) {
            id.device_id = v;
        }
        if (kernel_sysfs_link_attr(root, bus, name, "physfn", id.parent, sizeof(id.parent)) >= 0) {
            (void) kernel_sysfs_driver(root, bus, id.parent, id.parent_driver,
                                       sizeof(id.parent_driver));
        }
    }
    *ret = id;
    return 0;
}
