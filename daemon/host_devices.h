/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * host_devices — host readiness (`vfio-migctl host-devices`, `bind`): every PCI function and
 * mdev of the host that a plugin claims or that is bound to a VFIO driver, whether it could
 * migrate now and if not what fails and the command that fixes it; and, on request only,
 * binding a PCI function to the variant driver it needs (unbind, driver_override, bind).
 *
 * Everything is read under a sysfs root that is a parameter ("/sys"; tests build a fake
 * tree), and every sysfs write goes through a HostWriter, so a test observes the writes a
 * bind makes on a tree that cannot really bind. Nothing here binds implicitly.
 *
 * Used by:  rpc/handlers/system.c; tests/unit/test_host_devices.c.
 * Threads:  any (reads and writes sysfs: the callers run binds on a worker). Never logs.
 */

#include <stdbool.h>
#include <stddef.h>

#include "backend/identity.h"
#include "plugin_host.h"

#define HOST_DEVICES_MAX 1024 /* listed at most: a host has a few hundred functions */

typedef struct HostDevice {
    BackendIdentity id;
    const Plugin *plugin;       /* the plugin that claims it, or NULL */
    char variant_driver[64];    /* the driver it must be bound to to migrate */
    bool can_migrate;           /* every prerequisite holds */
    PluginPrereqs prereqs;      /* the daemon's own check first, then the plugin's */
    char plugin_error[256];     /* the prerequisites hook failed: why; "" */
} HostDevice;

/* How a bind writes sysfs: the real one writes the file, a test records. */
typedef struct HostWriter {
    int (*write)(void *userdata, const char *path, const char *value);
    void *userdata;
} HostWriter;

/* The devices under @root (sorted: PCI functions, then mdevs, by address). *ret is an array
 * of *ret_n (freed with free()). -errno only when the tree cannot be listed at all. */
int host_devices_list(const char *root, const PluginHost *plugins, HostDevice **ret,
                      size_t *ret_n);

/* Binds PCI function @address to the driver it needs (its plugin's variant driver, else
 * vfio-pci): unbind from its driver, driver_override, bind. 0 with @ret_before and
 * @ret_driver (64 bytes each) filled; already bound to it: 0 and nothing written. -EINVAL
 * not a PCI address, -ENOENT no such function or the driver is not loaded, else the write's
 * errno; @err says which step and what to do. */
int host_devices_bind(const char *root, const PluginHost *plugins, const char *address,
                      const HostWriter *w, char *ret_before, char *ret_driver, char *err,
                      size_t err_size);

/* The real writer: open(@path, O_WRONLY), one write of @value. */
int host_devices_write_file(void *userdata, const char *path, const char *value);
