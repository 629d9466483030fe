/* SPDX-License-Identifier: MIT */
/*
 * devices — handlers of vfio_migd.v1.DeviceService (rpc/proto/vfio_migd/v1/devices.proto).
 * Each decodes and checks its request, calls one manager/device function and encodes the
 * answer. Operations that touch a device answer from their completion callback.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "device.h"
#include "handlers.h"
#include "log_object.h"
#include "manager.h"
#include "util/log.h"

/* How each kind of operation failure answers (status.h): an arc failing means the device did
 * something else than asked; the rest is said by its errno. */
static const RpcFailure op_failure_class[] = {
    [OP_FAILED_NONE] = RPC_FAILURE_REFUSED,
    [OP_FAILED_REFUSED] = RPC_FAILURE_REFUSED,
    [OP_FAILED_ARC] = RPC_FAILURE_DEVICE,
};
static_assert(ELEMENTSOF(op_failure_class) == OP_FAILED_ARC + 1,
              "op_failure_class out of sync with OpFailure");

/* Answers a failed device operation, with @result (what ran; may be NULL) as the trailer. */
static void
fail_from_result(RpcCall *call, const Device *d, const char *what, const OpResult *res,
                 const ProtobufCMessage *result)
{
    const char *where = fsm_state_name(res->final_state);
    char way_out[DEVICE_WAY_OUT_MAX];

    log_device_warning(d, "Device '%s': %s failed: %s; device in %s.", d->id, what, res->message,
                       where);
    rpc_call_fail_ex(call, op_failure_class[res->failure], res->r, result,
                     "device '%s': %s failed: %s; device now in %s%s", d->id, what, res->message,
                     where, device_way_out(d, res->final_state, way_out, sizeof(way_out)));
}

static int
list_device(const void *items, size_t i, void *msg)
{
    convert_device(((Device *const *) items)[i], msg);
    return 0;
}

static void
handle_list_devices(RpcCall *call, const ProtobufCMessage *req _unused_, void *userdata)
{
    static const HandlersList list = {"devices", sizeof(DeviceMsg), offsetof(DeviceMsg, msg),
                                      list_device, NULL};
    VfioMigd__V1__ListDevicesResponse resp = VFIO_MIGD__V1__LIST_DEVICES_RESPONSE__INIT;
    Manager *m = ((RpcContext *) userdata)->manager;

    handlers_reply_list(call, &resp.base, &list, m->devices, m->n_devices);
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
on_attached(Device *d, DeviceState found, const OpResult *reset, void *userdata)
{
    RpcCall *call = userdata;

    if (reset && reset->r < 0) {
        /* The device stays attached so an operator can look at it and retry a reset. */
        fail_from_result(call, d, "recovery reset after attach", reset, NULL);
        return;
    }
    reply_attached(call, d, found, reset != NULL);
}

/* The API's kernel source as a KernelAddress; -EINVAL when it names none. */
static int
kernel_address(const VfioMigd__V1__KernelSource *k, KernelAddress *ret)
{
    switch (k->address_case) {
    case VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_PCI_ADDRESS:
        *ret = (KernelAddress){KERNEL_ADDRESS_PCI, k->pci_address};
        return 0;
    case VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_MDEV_UUID:
        *ret = (KernelAddress){KERNEL_ADDRESS_MDEV, k->mdev_uuid};
        return 0;
    case VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_CDEV_PATH:
        *ret = (KernelAddress){KERNEL_ADDRESS_CDEV, k->cdev_path};
        return 0;
    default:
        return -EINVAL;
    }
}

/* The request's source as the manager takes it; answers the call when it names none. */
static bool
attach_source_or_fail(RpcCall *call, const VfioMigd__V1__AttachDeviceRequest *req,
                      AttachSource *ret)
{
    if (req->source_case == VFIO_MIGD__V1__ATTACH_DEVICE_REQUEST__SOURCE_SIM) {
        *ret = (AttachSource){.sim_model = req->sim->model, .sim_options = req->sim->options};
    } else if (req->source_case == VFIO_MIGD__V1__ATTACH_DEVICE_REQUEST__SOURCE_KERNEL) {
        *ret = (AttachSource){.kernel = true};
    } else {
        rpc_call_fail(call, -EINVAL, "say which device to attach: a sim or a kernel source");
        return false;
    }
    ret->vmm_users = req->vmm_users;
    ret->n_vmm_users = req->n_vmm_users;
    ret->vmm_groups = req->vmm_groups;
    ret->n_vmm_groups = req->n_vmm_groups;
    if (ret->kernel && kernel_address(req->kernel, &ret->kernel_address) < 0) {
        rpc_call_fail(call, -EINVAL, "a kernel source needs a PCI address, an mdev UUID or a "
                                     "cdev path");
        return false;
    }
    return true;
}

static void
handle_attach_device(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__AttachDeviceRequest *req = REQ(AttachDeviceRequest, r);
    RpcContext *ctx = userdata;
    AttachSource src;
    char err[512] = "";
    int ret;

    if (!attach_source_or_fail(call, req, &src)) {
        return;
    }
    ret = manager_attach(ctx->manager, req->id, &src, on_attached, call, err, sizeof(err));
    handlers_fail_unless_started(call, ret, err);
}

static void
handle_detach_device(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__DetachDeviceRequest *req = REQ(DetachDeviceRequest, r);
    VfioMigd__V1__DetachDeviceResponse resp = VFIO_MIGD__V1__DETACH_DEVICE_RESPONSE__INIT;
    RpcContext *ctx = userdata;
    char err[512] = "";

    if (!handlers_find_device_or_fail(call, ctx, req->id)) {
        return;
    }
    handlers_answer(call, manager_detach(ctx->manager, req->id, err, sizeof(err)), err,
                    &resp.base);
}

static void
handle_get_device(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__GetDeviceRequest *req = REQ(GetDeviceRequest, r);
    VfioMigd__V1__GetDeviceResponse resp = VFIO_MIGD__V1__GET_DEVICE_RESPONSE__INIT;
    Device *d = handlers_find_device_or_fail(call, userdata, req->id);
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
    if (res->r < 0) {
        /* When the device moved, which arcs ran and where it ended travel with the error. */
        bool moved = op_failure_class[res->failure] == RPC_FAILURE_DEVICE;

        fail_from_result(call, d, "state change", res, moved ? &resp.base : NULL);
        return;
    }
    rpc_call_reply(call, &resp.base);
}

/* The client of a state change or reset went away (no deadline needed: Ctrl-C on
 * `--timeout 0`): what still waits for a worker is dropped, as at a passed deadline. */
static void
on_device_client_gone(RpcCall *call, void *userdata)
{
    (void) call;
    (void) device_drop_queued(userdata, "its client went away");
}

/* Answers a device operation that did not start; one that did, without a deadline, is
 * watched for its client going away (with a deadline, the deadline drops it: wait_max_ms,
 * and one reason in the log, not whichever of the client's cancel and the timer comes
 * first). */
static void
device_op_started_or_fail(RpcCall *call, Device *d, int ret, const char *err)
{
    if (ret >= 0 && rpc_call_remaining_ms(call) == 0) {
        (void) rpc_call_watch_cancel(call, on_device_client_gone, d);
    }
    handlers_fail_unless_started(call, ret, err);
}

static void
handle_set_device_state(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__SetDeviceStateRequest *req = REQ(SetDeviceStateRequest, r);
    DeviceState target;
    char err[512] = "";
    Device *d;
    int ret;

    if (!(d = handlers_find_device_or_fail(call, userdata, req->id)) ||
        !handlers_target_or_fail(call, req->target, &target)) {
        return;
    }
    ret = req->force ? 0 : device_check_alone(d, DEVICE_ALONE_STATE, err, sizeof(err));
    if (ret >= 0) {
        DeviceOpOptions opts = {.wait_max_ms = rpc_call_remaining_ms(call)};

        ret = device_set_state_start_ex(d, target, &opts, on_set_state_done, call, err,
                                        sizeof(err));
    }
    device_op_started_or_fail(call, d, ret, err);
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
        fail_from_result(call, d, "reset", res, NULL);
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

    if (!(d = handlers_find_device_or_fail(call, userdata, req->id))) {
        return;
    }
    ret = req->force ? 0 : device_check_alone(d, DEVICE_ALONE_RESET, err, sizeof(err));
    if (ret >= 0) {
        DeviceOpOptions opts = {.wait_max_ms = rpc_call_remaining_ms(call)};

        ret = device_reset_start_ex(d, &opts, on_reset_done, call, err, sizeof(err));
    }
    device_op_started_or_fail(call, d, ret, err);
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
        rpc_call_fail_ex(rc->call, RPC_FAILURE_DEVICE, -e, NULL,
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

    if (!(d = handlers_find_device_or_fail(call, ctx, id))) {
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

#define DEVICES "vfio_migd.v1.DeviceService"

/* ReadRegion is mutating too: reading a register can change the device (mtty's UART pops a
 * byte from its FIFO), so it needs what a write needs. */
const RpcMethod device_methods[] = {
    METHOD_V1(DEVICES, ListDevices, list_devices, RPC_READ_ONLY),
    METHOD_V1(DEVICES, AttachDevice, attach_device, RPC_MUTATING),
    METHOD_V1(DEVICES, DetachDevice, detach_device, RPC_MUTATING),
    METHOD_V1(DEVICES, GetDevice, get_device, RPC_READ_ONLY),
    METHOD_V1(DEVICES, SetDeviceState, set_device_state, RPC_MUTATING),
    METHOD_V1(DEVICES, ComputePath, compute_path, RPC_READ_ONLY),
    METHOD_V1(DEVICES, ResetDevice, reset_device, RPC_MUTATING),
    METHOD_V1(DEVICES, ReadRegion, read_region, RPC_MUTATING),
    METHOD_V1(DEVICES, WriteRegion, write_region, RPC_MUTATING),
};
const size_t device_methods_count = ELEMENTSOF(device_methods);
