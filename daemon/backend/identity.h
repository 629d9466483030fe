/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * identity — who a device is, as a plugin claims it (plugin_host.c): its bus and address,
 * its bound driver, its PCI IDs, an mdev's type, a VF's PF. The kernel back-end reads it from
 * sysfs (kernel_sysfs_identity()), the sim back-end from its options (pci=, pci_id=,
 * driver=, mdev_type=), and `host-devices` from sysfs for devices nobody attached.
 *
 * Used by:  backend/ (fills it), plugin_host.c (matches it), device.c.
 */

#include <stdint.h>

#define BACKEND_ID_NONE UINT32_MAX /* a PCI ID that is unknown, or an mdev's */

typedef struct BackendIdentity {
    char bus[8];             /* "pci", "mdev", "" (a sim device that claims no bus) */
    char address[72];        /* canonical BDF or mdev UUID; "" */
    char driver[64];         /* bound driver; "" unbound or unknown */
    uint32_t vendor_id;      /* BACKEND_ID_NONE when unknown */
    uint32_t device_id;
    char mdev_type[64];      /* "mtty-2"; "" */
    char parent[72];         /* a VF's PF (physfn); "" */
    char parent_driver[64];  /* the PF's driver; "" */
    char sysfs_path[512];    /* the device's directory under the sysfs root; "" for a sim */
    const char *sim_options; /* a sim device's options (owned by the device); NULL otherwise */
    const char *sim_model;   /* the vendor model a sim device runs (its plugin's); NULL */
} BackendIdentity;
