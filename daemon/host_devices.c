/* SPDX-License-Identifier: MIT */
/*
 * host_devices — see host_devices.h.
 */
#include "host_devices.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/kernel_sysfs.h"
#include "util/cleanup.h"

/* The driver @id must be bound to to migrate: its plugin's claim says, else an mdev keeps its
 * own (mdevs are VFIO devices by construction) and a PCI function needs vfio-pci unless it is
 * bound to a VFIO driver already. */
static void
variant_of(const BackendIdentity *id, const struct vfio_migd_claim *claim, char *buf,
           size_t size)
{
    const char *v = claim && claim->variant_driver ? claim->variant_driver
                    : strcmp(id->bus, "mdev") == 0 || kernel_sysfs_driver_is_vfio(id->driver)
                        ? id->driver
                        : "vfio-pci";

    (void) snprintf(buf, size, "%s", v);
}

static void
prereq_set(PluginPrereq *p, const char *check, int ok, const char *message, const char *fix)
{
    (void) snprintf(p->check, sizeof(p->check), "%s", check);
    p->ok = ok;
    (void) snprintf(p->message, sizeof(p->message), "%s", ok ? "" : message);
    (void) snprintf(p->fix, sizeof(p->fix), "%s", ok ? "" : fix);
}

/* One device: the daemon's binding check, then the plugin's prerequisites. */
static void
host_device_fill(HostDevice *hd, const PluginHost *plugins)
{
    const struct vfio_migd_claim *claim = NULL;
    struct vfio_migd_device view;
    PluginPrereqs extra;
    char check[PLUGIN_PREREQ_CHECK_MAX + 1], message[256], fix[128];
    bool bound;

    hd->plugin = plugin_host_match(plugins, &hd->id, &claim);
    variant_of(&hd->id, claim, hd->variant_driver, sizeof(hd->variant_driver));
    bound = hd->id.driver[0] && strcmp(hd->id.driver, hd->variant_driver) == 0;
    (void) snprintf(check, sizeof(check), "bound to %.50s", hd->variant_driver);
    (void) snprintf(message, sizeof(message), "the %s is %s%s%s, not to %s",
                    strcmp(hd->id.bus, "mdev") == 0 ? "mdev" : "function",
                    hd->id.driver[0] ? "bound to " : "not bound", hd->id.driver,
                    hd->id.driver[0] ? "" : " to a driver", hd->variant_driver);
    (void) snprintf(fix, sizeof(fix), "vfio-migctl bind %s", hd->id.address);
    hd->prereqs.n = 1;
    prereq_set(&hd->prereqs.items[0], check, bound, message, fix);
    if (hd->plugin) {
        plugin_device_view(&hd->id, "", &view);
        if (plugin_prerequisites(hd->plugin, &view, &extra, hd->plugin_error,
                                 sizeof(hd->plugin_error)) >= 0) {
            for (size_t i = 0; i < extra.n && hd->prereqs.n < PLUGIN_MAX_PREREQS; i++) {
                hd->prereqs.items[hd->prereqs.n++] = extra.items[i];
            }
        }
    }
    hd->can_migrate = !hd->plugin_error[0];
    for (size_t i = 0; i < hd->prereqs.n; i++) {
        hd->can_migrate = hd->can_migrate && hd->prereqs.items[i].ok;
    }
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

/* The entries of <root>/bus/<bus>/devices, sorted, appended to @out as far as room goes. */
static int
list_bus(const char *root, KernelSysfsBus bus, const PluginHost *plugins, HostDevice *out,
         size_t *n)
{
    char path[PATH_MAX], *names[HOST_DEVICES_MAX];
    size_t k = 0;
    struct dirent *e;
    DIR *d;

    (void) snprintf(path, sizeof(path), "%s/bus/%s/devices", root, kernel_sysfs_bus_name(bus));
    d = opendir(path);
    if (!d) {
        return errno == ENOENT ? 0 : -errno;
    }
    while ((e = readdir(d)) && k < HOST_DEVICES_MAX) {
        if (e->d_name[0] != '.' && (names[k] = strdup(e->d_name))) {
            k++;
        }
    }
    (void) closedir(d);
    qsort(names, k, sizeof(*names), name_cmp);
    for (size_t i = 0; i < k; i++) {
        HostDevice *hd = &out[*n];

        if (*n < HOST_DEVICES_MAX &&
            kernel_sysfs_identity(root, bus, names[i], &hd->id) >= 0) {
            host_device_fill(hd, plugins);
            /* listed: claimed, bound to a VFIO driver, or an mdev */
            if (hd->plugin || bus == KERNEL_SYSFS_BUS_MDEV ||
                kernel_sysfs_driver_is_vfio(hd->id.driver)) {
                (*n)++;
            }
        }
        free(names[i]);
    }
    return 0;
}

int
host_devices_list(const char *root, const PluginHost *plugins, HostDevice **ret, size_t *ret_n)
{
    _cleanup_free_ HostDevice *out = calloc(HOST_DEVICES_MAX, sizeof(*out));
    size_t n = 0;
    int r;

    if (!out) {
        return -ENOMEM;
    }
    r = list_bus(root, KERNEL_SYSFS_BUS_PCI, plugins, out, &n);
    if (r >= 0) {
        r = list_bus(root, KERNEL_SYSFS_BUS_MDEV, plugins, out, &n);
    }
    if (r < 0) {
        return r;
    }
    *ret = TAKE_PTR(out);
    *ret_n = n;
    return 0;
}

int
host_devices_write_file(void *userdata, const char *path, const char *value)
{
    _cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    size_t n = strlen(value);

    (void) userdata;
    if (fd < 0) {
        return -errno;
    }
    if (write(fd, value, n) != (ssize_t) n) {
        return errno ? -errno : -EIO;
    }
    return 0;
}

/* One step of a bind: @value into <dir>/@file; @err names the step on failure. */
static int
bind_step(const HostWriter *w, const char *dir, const char *file, const char *value,
          const char *step, char *err, size_t err_size)
{
    char path[PATH_MAX];
    int r;

    (void) snprintf(path, sizeof(path), "%s/%s", dir, file);
    r = w->write(w->userdata, path, value);
    if (r < 0) {
        (void) snprintf(err, err_size, "%s: writing '%s' to %s failed: %s", step, value, path,
                        strerror(-r));
    }
    return r;
}

int
host_devices_bind(const char *root, const PluginHost *plugins, const char *address,
                  const HostWriter *w, char *ret_before, char *ret_driver, char *err,
                  size_t err_size)
{
    const struct vfio_migd_claim *claim = NULL;
    char bdf[KERNEL_SYSFS_NAME_MAX], target[64], dev[PATH_MAX], drv[PATH_MAX];
    BackendIdentity id;
    struct stat st;
    int r;

    if (kernel_sysfs_parse_bdf(address, bdf, sizeof(bdf)) < 0) {
        (void) snprintf(err, err_size, "'%.64s' is not a PCI address (e.g. 0000:3b:00.2); only "
                        "PCI functions are bound (an mdev's driver is its parent's)", address);
        return -EINVAL;
    }
    if (kernel_sysfs_identity(root, KERNEL_SYSFS_BUS_PCI, bdf, &id) < 0) {
        (void) snprintf(err, err_size, "no PCI function %s on this host", bdf);
        return -ENOENT;
    }
    (void) plugin_host_match(plugins, &id, &claim);
    variant_of(&id, claim, target, sizeof(target));
    (void) snprintf(ret_before, 64, "%s", id.driver);
    (void) snprintf(ret_driver, 64, "%s", target);
    if (strcmp(id.driver, target) == 0) {
        return 0;
    }
    (void) snprintf(drv, sizeof(drv), "%s/bus/pci/drivers/%s", root, target);
    if (stat(drv, &st) < 0) {
        (void) snprintf(err, err_size, "the driver %s is not loaded: modprobe %s, then bind "
                        "again", target, target);
        return -ENOENT;
    }
    (void) snprintf(dev, sizeof(dev), "%s/bus/pci/devices/%s", root, bdf);
    /* The order the kernel wants: driver_override only takes effect on the next probe, so
     * unbind first, then name the driver, then bind to it. */
    r = id.driver[0] ? bind_step(w, dev, "driver/unbind", bdf, "unbinding from its driver",
                                 err, err_size)
                     : 0;
    r = r < 0 ? r : bind_step(w, dev, "driver_override", target, "setting driver_override",
                              err, err_size);
    r = r < 0 ? r : bind_step(w, drv, "bind", bdf, "binding", err, err_size);
    return r;
}
