/* SPDX-License-Identifier: MIT */
/*
 * devices — handlers of vfio_migd.v1.DeviceService (rpc/proto/vfio_migd/v1/devices.proto).
 * Each decodes and checks its request, calls one manager/device function and encodes the
 * answer. Operations that touch a device answer from their completion callback.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "device.h"
#include "handlers.h"
#include "manager.h"
#include "util/log.h"
#include "util/strutil.h"

#define REQ(type, r) ((const VfioMigd__V1__##type *) (r))

static Device *
find_device_or_fail(RpcCall *call, RpcContext *ctx, const char *id)
{
    Device *d;

    if (!strutil_id_is_valid(id)) {
        rpc_call_fail(call, -EINVAL, "'%.64s' is not a valid device id", id);
        return NULL;
    }
    d = manager_find(ctx->manager, id);
    if (!d) {
        rpc_call_fail(call, -ENOENT, "no device with id '%s'", id);
    }
    return d;
}

/* Refuses new device operations once the daemon is stopping. */
static bool
accepting_or_fail(RpcCall *call, RpcContext *ctx)
{
    if (ctx->manager->shutting_down) {
        rpc_call_fail(call, -ESHUTDOWN, "vfio-migd is shutting down");
        return false;
    }
    return true;
}

/* Answers a failed device operation. Arc and data failures are ABORTED (the device did
 * something else than asked); everything else maps from its errno. */
static void
fail_from_result(RpcCall *call, const Device *d, const char *what, const OpResult *res)
{
    const char *where = fsm_state_name(res->final_state);

    log_warning("Device '%s': %s failed: %s; device in %s.", d->id, what, res->message, where);
    if (res->failure == OP_FAILED_ARC || res->failure == OP_FAILED_DATA) {
        rpc_call_fail_code(call, GRPC_STATUS_ABORTED, "device '%s': %s failed: %s; device now in %s",
                           d->id, what, res->message, where);
        return;
    }
    rpc_call_fail(call, res->r, "device '%s': %s failed: %s; device now in %s", d->id, what,
                  res->message, where);
}

static void
handle_list_devices(RpcCall *call, const ProtobufCMessage *req, void *userdata)
{
    RpcContext *ctx = userdata;
    Manager *m = ctx->manager;
    VfioMigd__V1__ListDevicesResponse resp = VFIO_MIGD__V1__LIST_DEVICES_RESPONSE__INIT;
    DeviceMsg *msgs = calloc(m->n_devices ? m->n_devices : 1, sizeof(*msgs));
    VfioMigd__V1__Device **ptrs = calloc(m->n_devices ? m->n_devices : 1, sizeof(*ptrs));

    (void) req;
    if (!msgs || !ptrs) {
        rpc_call_fail(call, -ENOMEM, "out of memory listing devices");
    } else {
        for (size_t i = 0; i < m->n_devices; i++) {
            convert_device(m->devices[i], &msgs[i]);
            ptrs[i] = &msgs[i].msg;
        }
        resp.n_devices = m->n_devices;
        resp.devices = ptrs;
        rpc_call_reply(call, &resp.base);
    }
    free(msgs);
    free(ptrs);
}

static void
reply_attached(RpcCall *call, Device *d, DeviceState found, bool recovered)
{
    VfioMigd__V1__AttachDeviceResponse resp = VFIO_MIGD__V1__ATTACH_DEVICE_RESPONSE__INIT;
    DeviceMsg msg;

    convert_device(d, &msg);
    resp.device = &msg.msg;
    resp.found_state = convert_state_to_api(found);
    resp.recovered = recovered;
    rpc_call_reply(call, &resp.base);
}

static void
on_attach_recovered(Device *d, const OpResult *res, void *userdata)
{
    RpcCall *call = userdata;

    if (res->r < 0) {
        /* The device stays attached so an operator can look at it and retry a reset. */
        fail_from_result(call, d, "recovery reset after attach", res);
        return;
    }
    log_notice("Device '%s' was found in %s and has been reset to %s.", d->id,
               fsm_state_name(d->info.initial_state), fsm_state_name(d->state));
    reply_attached(call, d, d->info.initial_state, true);
}

static int
attach_kernel(RpcContext *ctx, const VfioMigd__V1__AttachDeviceRequest *req, Device **ret,
              char *err, size_t err_size)
{
    const VfioMigd__V1__KernelSource *k = req->kernel;
    KernelAddress addr;

    switch (k->address_case) {
    case VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_PCI_ADDRESS:
        addr = (KernelAddress){KERNEL_ADDRESS_PCI, k->pci_address};
        break;
    case VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_MDEV_UUID:
        addr = (KernelAddress){KERNEL_ADDRESS_MDEV, k->mdev_uuid};
        break;
    case VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_CDEV_PATH:
        addr = (KernelAddress){KERNEL_ADDRESS_CDEV, k->cdev_path};
        break;
    default:
        (void) snprintf(err, err_size, "a kernel source needs a PCI address, an mdev UUID or a "
                                       "cdev path");
        return -EINVAL;
    }
    return manager_attach_kernel(ctx->manager, req->id, &addr, ret, err, err_size);
}

static void
handle_attach_device(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__AttachDeviceRequest *req = REQ(AttachDeviceRequest, r);
    RpcContext *ctx = userdata;
    char err[512] = "";
    Device *d = NULL;
    int ret;

    if (!accepting_or_fail(call, ctx)) {
        return;
    }
    switch (req->source_case) {
    case VFIO_MIGD__V1__ATTACH_DEVICE_REQUEST__SOURCE_SIM:
        ret = manager_attach_sim(ctx->manager, req->id, req->sim->model, req->sim->options, &d,
                                 err, sizeof(err));
        break;
    case VFIO_MIGD__V1__ATTACH_DEVICE_REQUEST__SOURCE_KERNEL:
        ret = attach_kernel(ctx, req, &d, err, sizeof(err));
        break;
    default:
        rpc_call_fail(call, -EINVAL, "say which device to attach: a sim or a kernel source");
        return;
    }
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
        return;
    }
    if (d->info.migratable && d->state != DEVICE_STATE_RUNNING) {
        log_warning("Device '%s' was found in %s (left by a previous owner?); resetting it.",
                    d->id, fsm_state_name(d->state));
        ret = device_reset_start(d, on_attach_recovered, call, err, sizeof(err));
        if (ret < 0) {
            rpc_call_fail(call, ret, "device '%s' needs a reset but it could not start: %s", d->id,
                          err);
        }
        return;
    }
    reply_attached(call, d, d->state, false);
}

static void
handle_detach_device(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__DetachDeviceRequest *req = REQ(DetachDeviceRequest, r);
    VfioMigd__V1__DetachDeviceResponse resp = VFIO_MIGD__V1__DETACH_DEVICE_RESPONSE__INIT;
    RpcContext *ctx = userdata;
    char err[512] = "";
    int ret;

    if (!find_device_or_fail(call, ctx, req->id)) {
        return;
    }
    ret = manager_detach(ctx->manager, req->id, err, sizeof(err));
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
        return;
    }
    rpc_call_reply(call, &resp.base);
}

static void
handle_get_device(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__GetDeviceRequest *req = REQ(GetDeviceRequest, r);
    VfioMigd__V1__GetDeviceResponse resp = VFIO_MIGD__V1__GET_DEVICE_RESPONSE__INIT;
    Device *d = find_device_or_fail(call, userdata, req->id);
    DeviceMsg msg;

    if (!d) {
        return;
    }
    convert_device(d, &msg);
    resp.device = &msg.msg;
    rpc_call_reply(call, &resp.base);
}

static void
on_set_state_done(Device *d, const OpResult *res, void *userdata)
{
    VfioMigd__V1__SetDeviceStateResponse resp = VFIO_MIGD__V1__SET_DEVICE_STATE_RESPONSE__INIT;
    RpcCall *call = userdata;
    ArcsMsg arcs;

    convert_arcs(res->arcs, res->n_arcs, &arcs);
    resp.state = convert_state_to_api(res->final_state);
    resp.n_arcs = arcs.n;
    resp.arcs = arcs.ptrs;
    resp.elapsed_us = res->elapsed_us;
    if (res->r < 0 && (res->failure == OP_FAILED_ARC || res->failure == OP_FAILED_DATA)) {
        /* Which arcs ran and where the device ended travel with the error (trailer). */
        log_warning("Device '%s': state change failed: %s; device in %s.", d->id, res->message,
                    fsm_state_name(res->final_state));
        rpc_call_fail_with_result(call, GRPC_STATUS_ABORTED, &resp.base,
                                  "device '%s': state change failed: %s; device now in %s", d->id,
                                  res->message, fsm_state_name(res->final_state));
        return;
    }
    if (res->r < 0) {
        fail_from_result(call, d, "state change", res);
        return;
    }
    rpc_call_reply(call, &resp.base);
}

static void
handle_set_device_state(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__SetDeviceStateRequest *req = REQ(SetDeviceStateRequest, r);
    DeviceState target = convert_state_from_api(req->target);
    char err[512] = "";
    Device *d;
    int ret;

    if (!accepting_or_fail(call, userdata) || !(d = find_device_or_fail(call, userdata, req->id))) {
        return;
    }
    if (target < 0) {
        rpc_call_fail(call, -EINVAL,
                      "target state %d is not a VFIO migration state (1-8 in the API; 0 is unset)",
                      (int) req->target);
        return;
    }
    ret = device_set_state_start(d, target, on_set_state_done, call, err, sizeof(err));
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
    }
}

static void
handle_compute_path(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__ComputePathRequest *req = REQ(ComputePathRequest, r);
    VfioMigd__V1__ComputePathResponse resp = VFIO_MIGD__V1__COMPUTE_PATH_RESPONSE__INIT;
    DeviceState from = convert_state_from_api(req->from), to = convert_state_from_api(req->to);
    ArcRecord records[FSM_MAX_ARCS];
    FsmRefusal why = FSM_REFUSE_BAD_STATE;
    char flags[64];
    FsmPath path;
    ArcsMsg arcs;

    (void) userdata;
    if (from < 0 || to < 0 || fsm_compute_path(from, to, req->migration_flags, &path, &why) < 0) {
        rpc_call_fail(call, -EINVAL, "%s -> %s with flags %s is refused: %s (EINVAL)",
                      fsm_state_name(from) ?: "?", fsm_state_name(to) ?: "?",
                      fsm_flags_to_string(req->migration_flags, flags, sizeof(flags)),
                      fsm_refusal_to_string(why));
        return;
    }
    for (unsigned i = 0; i < path.n_arcs; i++) {
        records[i] = (ArcRecord){.from = path.arcs[i].from, .to = path.arcs[i].to,
                                 .opened_session = (int) i == path.session_arc};
    }
    convert_arcs(records, path.n_arcs, &arcs);
    resp.n_arcs = arcs.n;
    resp.arcs = arcs.ptrs;
    rpc_call_reply(call, &resp.base);
}

static void
on_reset_done(Device *d, const OpResult *res, void *userdata)
{
    VfioMigd__V1__ResetDeviceResponse resp = VFIO_MIGD__V1__RESET_DEVICE_RESPONSE__INIT;
    RpcCall *call = userdata;

    if (res->r < 0) {
        fail_from_result(call, d, "reset", res);
        return;
    }
    resp.state = convert_state_to_api(res->final_state);
    rpc_call_reply(call, &resp.base);
}

static void
handle_reset_device(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__ResetDeviceRequest *req = REQ(ResetDeviceRequest, r);
    char err[512] = "";
    Device *d;
    int ret;

    if (!accepting_or_fail(call, userdata) || !(d = find_device_or_fail(call, userdata, req->id))) {
        return;
    }
    ret = device_reset_start(d, on_reset_done, call, err, sizeof(err));
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
    }
}

static bool
path_ok_or_fail(RpcCall *call, const char *path)
{
    if (!path || path[0] != '/') {
        rpc_call_fail(call, -EINVAL, "the file path must be absolute (on the daemon's host), got '%.256s'",
                      path ? path : "");
        return false;
    }
    if (strlen(path) >= PATH_MAX - 16) {
        rpc_call_fail(call, -ENAMETOOLONG, "the file path is longer than %d characters",
                      PATH_MAX - 16);
        return false;
    }
    return true;
}

/* Save and restore answer the same shape: state, bytes, arcs, elapsed. */
#define REPLY_TRANSFER(call, type, TYPE, res)                                                      \
    do {                                                                                           \
        VfioMigd__V1__##type resp = VFIO_MIGD__V1__##TYPE##__INIT;                                 \
        ArcsMsg arcs;                                                                              \
        convert_arcs((res)->arcs, (res)->n_arcs, &arcs);                                           \
        resp.state = convert_state_to_api((res)->final_state);                                     \
        resp.bytes = (res)->bytes;                                                                 \
        resp.n_arcs = arcs.n;                                                                      \
        resp.arcs = arcs.ptrs;                                                                     \
        resp.elapsed_us = (res)->elapsed_us;                                                       \
        rpc_call_reply(call, &resp.base);                                                          \
    } while (0)

static void
on_save_done(Device *d, const OpResult *res, void *userdata)
{
    if (res->r < 0) {
        fail_from_result(userdata, d, "save", res);
        return;
    }
    log_info("Saved device '%s': %llu bytes in %llu ms.", d->id, (unsigned long long) res->bytes,
             (unsigned long long) res->elapsed_us / 1000);
    REPLY_TRANSFER(userdata, SaveDeviceResponse, SAVE_DEVICE_RESPONSE, res);
}

static void
handle_save_device(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__SaveDeviceRequest *req = REQ(SaveDeviceRequest, r);
    char err[512] = "";
    Device *d;
    int ret;

    if (!accepting_or_fail(call, userdata) || !(d = find_device_or_fail(call, userdata, req->id)) ||
        !path_ok_or_fail(call, req->path)) {
        return;
    }
    ret = device_save_start(d, req->path, req->resume, req->overwrite, on_save_done, call, err,
                            sizeof(err));
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
    }
}

static void
on_restore_done(Device *d, const OpResult *res, void *userdata)
{
    if (res->r < 0) {
        fail_from_result(userdata, d, "restore", res);
        return;
    }
    log_info("Restored device '%s': %llu bytes in %llu ms.", d->id,
             (unsigned long long) res->bytes, (unsigned long long) res->elapsed_us / 1000);
    REPLY_TRANSFER(userdata, RestoreDeviceResponse, RESTORE_DEVICE_RESPONSE, res);
}

static void
handle_restore_device(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__RestoreDeviceRequest *req = REQ(RestoreDeviceRequest, r);
    char err[512] = "";
    Device *d;
    int ret;

    if (!accepting_or_fail(call, userdata) || !(d = find_device_or_fail(call, userdata, req->id)) ||
        !path_ok_or_fail(call, req->path)) {
        return;
    }
    ret = device_restore_start(d, req->path, req->stop, on_restore_done, call, err, sizeof(err));
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
    }
}

/* ---- region access (diagnostics) */

/* What a region call needs when its access completes. */
typedef struct RegionCall {
    RpcCall *call;
    uint32_t index;
    uint64_t offset;
    size_t size;
    bool write;
} RegionCall;

static void
fail_region(const RegionCall *rc, const Device *d, ssize_t r)
{
    const char *what = rc->write ? "writable" : "readable";
    int e = (int) -r;

    switch (e) {
    case ENOENT:
        rpc_call_fail(rc->call, -ENOENT, "device '%s' has no region %u", d->id, rc->index);
        return;
    case ERANGE:
        rpc_call_fail(rc->call, -ERANGE, "bytes [%llu, %llu) lie outside region %u of device '%s'",
                      (unsigned long long) rc->offset,
                      (unsigned long long) (rc->offset + rc->size), rc->index, d->id);
        return;
    case EOPNOTSUPP:
        rpc_call_fail(rc->call, -EOPNOTSUPP, "region %u of device '%s' is not %s", rc->index,
                      d->id, what);
        return;
    default:
        rpc_call_fail_code(rc->call, GRPC_STATUS_ABORTED,
                           "device '%s': %s of %zu byte%s at offset %llu of region %u failed: %s "
                           "(%s)", d->id, rc->write ? "write" : "read", rc->size,
                           rc->size == 1 ? "" : "s", (unsigned long long) rc->offset, rc->index,
                           strerror(e), strerrorname_np(e) ?: "E?");
    }
}

static void
on_region_done(Device *d, ssize_t r, const uint8_t *data, void *userdata)
{
    RegionCall *rc = userdata;

    if (r < 0) {
        fail_region(rc, d, r);
    } else if (rc->write) {
        VfioMigd__V1__WriteRegionResponse resp = VFIO_MIGD__V1__WRITE_REGION_RESPONSE__INIT;

        resp.bytes_written = (uint32_t) r;
        rpc_call_reply(rc->call, &resp.base);
    } else {
        VfioMigd__V1__ReadRegionResponse resp = VFIO_MIGD__V1__READ_REGION_RESPONSE__INIT;

        resp.data.data = (uint8_t *) data;
        resp.data.len = (size_t) r;
        rpc_call_reply(rc->call, &resp.base);
    }
    free(rc);
}

/* Starts the access; answers the call itself when it cannot start. */
static void
start_region(RpcCall *call, RpcContext *ctx, const char *id, RegionCall rc, const void *data)
{
    char err[512] = "";
    RegionCall *p;
    Device *d;
    int ret;

    if (!accepting_or_fail(call, ctx) || !(d = find_device_or_fail(call, ctx, id))) {
        return;
    }
    p = malloc(sizeof(*p));
    if (!p) {
        rpc_call_fail(call, -ENOMEM, "out of memory");
        return;
    }
    *p = rc;
    p->call = call;
    ret = device_region_start(d, rc.index, rc.offset, data, rc.size, rc.write, on_region_done, p,
                              err, sizeof(err));
    if (ret < 0) {
        free(p);
        rpc_call_fail(call, ret, "%s", err);
    }
}

static void
handle_read_region(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__ReadRegionRequest *req = REQ(ReadRegionRequest, r);

    start_region(call, userdata, req->id,
                 (RegionCall){.index = req->region_index, .offset = req->offset,
                              .size = req->length, .write = false}, NULL);
}

static void
handle_write_region(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__WriteRegionRequest *req = REQ(WriteRegionRequest, r);

    start_region(call, userdata, req->id,
                 (RegionCall){.index = req->region_index, .offset = req->offset,
                              .size = req->data.len, .write = true}, req->data.data);
}

#define METHOD(name, snake)                                                                        \
    {                                                                                              \
        "/vfio_migd.v1.DeviceService/" #name, &vfio_migd__v1__##snake##_request__descriptor,       \
            &vfio_migd__v1__##snake##_response__descriptor, handle_##snake,                        \
    }

const RpcMethod device_methods[] = {
    METHOD(ListDevices, list_devices),
    METHOD(AttachDevice, attach_device),
    METHOD(DetachDevice, detach_device),
    METHOD(GetDevice, get_device),
    METHOD(SetDeviceState, set_device_state),
    METHOD(ComputePath, compute_path),
    METHOD(ResetDevice, reset_device),
    METHOD(SaveDevice, save_device),
    METHOD(RestoreDevice, restore_device),
    METHOD(ReadRegion, read_region),
    METHOD(WriteRegion, write_region),
};
const size_t device_methods_count = ELEMENTSOF(device_methods);
