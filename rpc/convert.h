/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * convert — daemon objects to API v1 messages. The messages borrow strings from the daemon
 * objects and arrays from the *Msg holder structs, so they are valid only until the holder
 * or the object changes; handlers pack them at once (rpc_call_reply).
 * Threads: loop only.
 */

#include "device.h"
#include "group.h"
#include "migration.h"
#include "plugin_host.h"
#include "vfio_migd/v1/migrations.pb-c.h"
#include "core/compat.h"
#include "vfio_migd/v1/devices.pb-c.h"
#include "vfio_migd/v1/groups.pb-c.h"

typedef struct DeviceMsg {
    VfioMigd__V1__Device msg;
    VfioMigd__V1__DeviceStats stats;
    VfioMigd__V1__Device__PropertiesEntry entries[BACKEND_MAX_PROPERTIES];
    VfioMigd__V1__Device__PropertiesEntry *entry_ptrs[BACKEND_MAX_PROPERTIES];
    CompatDescriptor desc; /* the strings the compat fields point into */
    VfioMigd__V1__CompatField compat[COMPAT_MAX_FIELDS];
    VfioMigd__V1__CompatField *compat_ptrs[COMPAT_MAX_FIELDS];
    PluginPrereqs prereqs; /* the strings the prerequisites point into */
    VfioMigd__V1__Prerequisite prereq[PLUGIN_MAX_PREREQS];
    VfioMigd__V1__Prerequisite *prereq_ptrs[PLUGIN_MAX_PREREQS];
    char plugin_error[256];
} DeviceMsg;

typedef struct ArcsMsg {
    VfioMigd__V1__Arc arcs[DEVICE_MAX_ARCS];
    VfioMigd__V1__Arc *ptrs[DEVICE_MAX_ARCS];
    size_t n;
} ArcsMsg;

/* Heap storage of a message listing devices, each with its arcs: the per-device messages
 * (a group run's results or a migration's progress) and their pointers, and every device's
 * arcs one after the other, with theirs. */
typedef struct DevicesStore {
    union {
        VfioMigd__V1__GroupDeviceResult *results;
        VfioMigd__V1__DeviceProgress *progress;
    };
    union {
        VfioMigd__V1__GroupDeviceResult **result_ptrs;
        VfioMigd__V1__DeviceProgress **progress_ptrs;
    };
    VfioMigd__V1__Arc *arcs;
    VfioMigd__V1__Arc **arc_ptrs;
} DevicesStore;

/* A group transition (or the last one's timeline), with heap storage for its devices and
 * arcs: convert_group_run_done() releases it. */
typedef struct GroupRunMsg {
    VfioMigd__V1__GroupTransitionResponse msg;
    DevicesStore store;
} GroupRunMsg;

/* A group, with its current device states and (when @with_timeline) its last transition. */
typedef struct GroupMsg {
    VfioMigd__V1__Group msg;
    char **ids;
    VfioMigd__V1__DeviceState *states;
    GroupRunMsg last;
    bool has_last;
} GroupMsg;

void convert_device(const Device *d, DeviceMsg *out);
int convert_group_run(const GroupRun *run, GroupRunMsg *out);  /* 0 or -ENOMEM */
void convert_group_run_done(GroupRunMsg *m);
int convert_group(const Group *g, bool with_timeline, GroupMsg *out);
void convert_group_done(GroupMsg *m);
void convert_arcs(const ArcRecord *arcs, unsigned n, ArcsMsg *out);

/* The API numbers states as the kernel plus one (0 = unset). */
static inline VfioMigd__V1__DeviceState
convert_state_to_api(DeviceState s)
{
    return (VfioMigd__V1__DeviceState) (s + 1);
}

/* _DEVICE_STATE_INVALID for 0 (unset) and numbers outside the enum. */
static inline DeviceState
convert_state_from_api(int v)
{
    return v >= 1 && v <= _DEVICE_STATE_MAX ? (DeviceState) (v - 1) : _DEVICE_STATE_INVALID;
}

/* A migration (its snapshot), with storage for its per-device progress and arcs. The message
 * borrows the snapshot's strings: keep the snapshot until the message is packed. */
typedef struct MigrationMsg {
    VfioMigd__V1__Migration msg;
    VfioMigd__V1__MigrationOptions opts;
    DevicesStore store;
} MigrationMsg;

int convert_migration(const MigrationSnapshot *s, MigrationMsg *out); /* 0 or -ENOMEM */
void convert_migration_done(MigrationMsg *m);
