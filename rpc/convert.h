/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * convert — daemon objects to API v1 messages. The messages borrow strings from the daemon
 * objects and arrays from the *Msg holder structs, so they are valid only until the holder
 * or the object changes; handlers pack them at once (rpc_call_reply).
 * Threads: loop only.
 */

#include "device.h"
#include "vfio_migd/v1/devices.pb-c.h"

typedef struct DeviceMsg {
    VfioMigd__V1__Device msg;
    VfioMigd__V1__DeviceStats stats;
    VfioMigd__V1__Device__PropertiesEntry entries[BACKEND_MAX_PROPERTIES];
    VfioMigd__V1__Device__PropertiesEntry *entry_ptrs[BACKEND_MAX_PROPERTIES];
} DeviceMsg;

typedef struct ArcsMsg {
    VfioMigd__V1__Arc arcs[DEVICE_MAX_ARCS];
    VfioMigd__V1__Arc *ptrs[DEVICE_MAX_ARCS];
    size_t n;
} ArcsMsg;

void convert_device(const Device *d, DeviceMsg *out);
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
