/* SPDX-License-Identifier: MIT */
/*
 * irqs — the interrupt methods of vfio_migd.v1.DeviceService (devices.proto: GetIrqs,
 * EnableIrqs, MaskIrq, UnmaskIrq, TriggerIrq). Each finds the device, calls one irq.h
 * function and answers with the state after it. SET_IRQS is quick and independent of the
 * device's migration state, so these run on the loop even while an operation runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "vfio_migd/v1/devices.pb-c.h"
#include "handlers.h"
#include "irq.h"
#include "log_object.h"
#include "manager.h"
#include "util/log.h"

/* The IrqStatus message of a device, with its storage. */
typedef struct IrqStatusMsg {
    VfioMigd__V1__IrqStatus msg;
    VfioMigd__V1__IrqVector *vec;
    VfioMigd__V1__IrqVector **ptrs;
} IrqStatusMsg;

static void
irq_status_done(IrqStatusMsg *s)
{
    free(s->vec);
    free(s->ptrs);
}

/* The latch wake-ups of every device attached now. */
static uint64_t
latch_wakeups_total(const Manager *m)
{
    uint64_t n = 0;

    for (size_t i = 0; i < m->n_devices; i++) {
        n += irq_latch_wakeups(m->devices[i]->irq);
    }
    return n;
}

static int
irq_status_build(const Device *d, IrqStatusMsg *ret)
{
    const IrqModel *m = irq_model(d->irq);
    size_t n = m->count;

    *ret = (IrqStatusMsg){.msg = VFIO_MIGD__V1__IRQ_STATUS__INIT};
    ret->vec = calloc(n ? n : 1, sizeof(*ret->vec));
    ret->ptrs = calloc(n ? n : 1, sizeof(*ret->ptrs));
    if (!ret->vec || !ret->ptrs) {
        irq_status_done(ret);
        return -ENOMEM;
    }
    ret->msg.index = (char *)irq_type_name(m->type);
    ret->msg.count = m->count;
    ret->msg.intx_count = m->info[IRQ_TYPE_INTX].count;
    ret->msg.msi_count = m->info[IRQ_TYPE_MSI].count;
    ret->msg.msix_count = m->info[IRQ_TYPE_MSIX].count;
    /* A device without MSI-X (mtty: its MSI-X index answers EINVAL, no flags) has nothing
     * to resize. */
    ret->msg.msix_resizable = m->info[IRQ_TYPE_MSIX].count > 0 &&
                              !(m->info[IRQ_TYPE_MSIX].flags & IRQ_INFO_NORESIZE);
    ret->msg.holder_pid = d->vmm_pid;
    ret->msg.latch_wakeups = irq_latch_wakeups(d->irq);
    ret->msg.latch_wakeups_total = d->manager ? latch_wakeups_total(d->manager) : 0;
    for (uint32_t v = 0; v < n; v++) {
        ret->vec[v] = (VfioMigd__V1__IrqVector)VFIO_MIGD__V1__IRQ_VECTOR__INIT;
        ret->vec[v].vector = v;
        ret->vec[v].in_use = m->vec[v].in_use;
        ret->vec[v].masked = m->vec[v].masked;
        ret->vec[v].pending = m->vec[v].pending;
        ret->vec[v].held = m->vec[v].vmm;
        ret->ptrs[v] = &ret->vec[v];
    }
    ret->msg.n_vectors = n;
    ret->msg.vectors = ret->ptrs;
    return 0;
}

/* Answers @call with a response whose only field is the device's IrqStatus. The three
 * response types have the same layout (base, then the IrqStatus pointer). */
static void
reply_status(RpcCall *call, const Device *d, ProtobufCMessage *resp, VfioMigd__V1__IrqStatus **slot)
{
    IrqStatusMsg s;

    if (irq_status_build(d, &s) < 0) {
        rpc_call_fail(call, -ENOMEM, "out of memory describing the interrupts of '%s'", d->id);
        return;
    }
    *slot = &s.msg;
    rpc_call_reply(call, resp);
    irq_status_done(&s);
}

static void
handle_get_irqs(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__GetIrqsRequest *req = REQ(GetIrqsRequest, r);
    VfioMigd__V1__GetIrqsResponse resp = VFIO_MIGD__V1__GET_IRQS_RESPONSE__INIT;
    Device *d = handlers_find_device_or_fail(call, userdata, req->id);

    if (d) {
        reply_status(call, d, &resp.base, &resp.irqs);
    }
}

/* Why irq_enable() refused, in words with the command that fixes it. */
static void
fail_enable(RpcCall *call, const Device *d, IrqType t, uint32_t count, int r)
{
    const IrqModel *m = irq_model(d->irq);
    const char *name = irq_type_name(t), *now = irq_type_name(m->type);

    switch (r) {
    case -EBUSY:
        rpc_call_fail(call, -EBUSY,
                      "device '%s' has %s enabled (INTx, MSI and MSI-X are "
                      "exclusive); disable it first: vfio-migctl irq enable %s %s 0",
                      d->id, now, d->id, now);
        break;
    case -ENODEV:
        rpc_call_fail(call, -EOPNOTSUPP, "device '%s' has no %s interrupt", d->id, name);
        break;
    case -ERANGE:
        rpc_call_fail(call, -ERANGE, "device '%s' has %u %s vector%s; %u asked", d->id,
                      m->info[t].count, name, m->info[t].count == 1 ? "" : "s", count);
        break;
    case -EINVAL:
        rpc_call_fail(call, -EINVAL,
                      "device '%s' has %s with %u vectors enabled and an index "
                      "only grows (or is disabled with count 0: vfio-migctl irq enable %s %s 0)",
                      d->id, now, m->count, d->id, now);
        break;
    default:
        rpc_call_fail_ex(call, RPC_FAILURE_DEVICE, r, NULL,
                         "device '%s' refused enabling %s with %u vectors: %s", d->id, name, count,
                         strerror(-r));
    }
}

static void
handle_enable_irqs(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__EnableIrqsRequest *req = REQ(EnableIrqsRequest, r);
    VfioMigd__V1__EnableIrqsResponse resp = VFIO_MIGD__V1__ENABLE_IRQS_RESPONSE__INIT;
    Device *d = handlers_find_device_or_fail(call, userdata, req->id);
    IrqType t = irq_type_from_name(req->index);
    int ret;

    if (!d) {
        return;
    }
    if (t < 0 || t == IRQ_TYPE_NONE) {
        rpc_call_fail(call, -EINVAL, "'%.16s' is not an interrupt index: intx, msi or msix",
                      req->index);
        return;
    }
    if (req->count == 0 && irq_model(d->irq)->type == IRQ_TYPE_NONE) {
        reply_status(call, d, &resp.base, &resp.irqs); /* disabling what is off: done */
        return;
    }
    ret = irq_enable(d->irq, t, req->count);
    if (ret < 0) {
        fail_enable(call, d, t, req->count, ret);
        return;
    }
    log_device_info(d, "Device '%s': %s with %u vectors enabled.", d->id, irq_type_name(t),
                    req->count);
    reply_status(call, d, &resp.base, &resp.irqs);
}

typedef int (*IrqVectorFn)(Irq *irq, uint32_t v);

static void
vector_call(RpcCall *call, const ProtobufCMessage *r, void *userdata, IrqVectorFn fn,
            const char *what)
{
    const VfioMigd__V1__IrqVectorRequest *req = REQ(IrqVectorRequest, r);
    VfioMigd__V1__IrqVectorResponse resp = VFIO_MIGD__V1__IRQ_VECTOR_RESPONSE__INIT;
    Device *d = handlers_find_device_or_fail(call, userdata, req->id);
    int ret;

    if (!d) {
        return;
    }
    ret = fn(d->irq, req->vector);
    if (ret == -ENOENT) {
        const IrqModel *m = irq_model(d->irq);
        rpc_call_fail(call, -ENOENT,
                      "device '%s' has no vector %u in use (%s with %u vectors "
                      "enabled; vfio-migctl irqs %s)",
                      d->id, req->vector, irq_type_name(m->type), m->count, d->id);
        return;
    }
    if (ret < 0) {
        rpc_call_fail_ex(call, RPC_FAILURE_DEVICE, ret, NULL,
                         "device '%s': %s of vector %u failed: %s", d->id, what, req->vector,
                         strerror(-ret));
        return;
    }
    reply_status(call, d, &resp.base, &resp.irqs);
}

static void
handle_mask_irq(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    vector_call(call, r, userdata, irq_mask, "mask");
}

static void
handle_unmask_irq(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    vector_call(call, r, userdata, irq_unmask, "unmask");
}

static void
handle_trigger_irq(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    vector_call(call, r, userdata, irq_trigger, "trigger");
}

#define DEVICES "vfio_migd.v1.DeviceService"

/* The methods on one vector (vector_call) share their request and response. */
#define VECTOR_METHOD(Name, fn)                                                                    \
    METHOD(DEVICES, Name, V1(irq_vector_request), V1(irq_vector_response), fn, RPC_MUTATING)

const RpcMethod irq_methods[] = {
    METHOD_V1(DEVICES, GetIrqs, get_irqs, RPC_READ_ONLY),
    METHOD_V1(DEVICES, EnableIrqs, enable_irqs, RPC_MUTATING),
    VECTOR_METHOD(MaskIrq, handle_mask_irq),
    VECTOR_METHOD(UnmaskIrq, handle_unmask_irq),
    VECTOR_METHOD(TriggerIrq, handle_trigger_irq),
};
const size_t irq_methods_count = ELEMENTSOF(irq_methods);
