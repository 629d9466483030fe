/* SPDX-License-Identifier: MIT */
/*
 * system — handlers of vfio_migd.v1.SystemService (rpc/proto/vfio_migd/v1/system.proto).
 */
#include <grpc/grpc.h>
#include <unistd.h>

#include "handlers.h"
#include "manager.h"
#include "vfio_migd/v1/system.pb-c.h"

static void
handle_get_version(RpcCall *call, const ProtobufCMessage *req, void *userdata)
{
    VfioMigd__V1__GetVersionResponse resp = VFIO_MIGD__V1__GET_VERSION_RESPONSE__INIT;
    static char *backends[] = {"sim", "kernel"};
    RpcContext *ctx = userdata;

    (void) req;
    resp.version = VFIO_MIGD_VERSION;
    resp.api = "vfio_migd.v1";
    resp.grpc_core_version = (char *) grpc_version_string();
    resp.pid = (uint32_t) getpid();
    resp.uptime_ms = manager_uptime_ms(ctx->manager);
    resp.n_backends = ELEMENTSOF(backends);
    resp.backends = backends;
    rpc_call_reply(call, &resp.base);
}

#define SYSTEM "vfio_migd.v1.SystemService"

const RpcMethod system_methods[] = {
    METHOD(SYSTEM, GetVersion, V1(get_version_request), V1(get_version_response),
           handle_get_version, RPC_READ_ONLY | RPC_OPEN),
};
const size_t system_methods_count = ELEMENTSOF(system_methods);
