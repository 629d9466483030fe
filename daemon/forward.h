/* SPDX-License-Identifier: MIT */
#pragma once

/* Forward declarations shared by the daemon's headers, so headers need not include each
 * other (systemd *-forward.h). */

typedef struct Device Device;
typedef struct Manager Manager;
typedef struct DeviceOp DeviceOp;
typedef struct Group Group;
typedef struct MigrationJob MigrationJob;
typedef struct OpResult OpResult;
typedef struct PluginHost PluginHost;
typedef struct Plugin Plugin;
struct vfio_migd_device;
