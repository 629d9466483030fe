/* SPDX-License-Identifier: MIT */
/*
 * health — grpc.health.v1.Health/Check (rpc/proto/grpc/health/v1/health.proto). The answer is
 * the daemon's as a whole, whichever service is named: SERVING, or NOT_SERVING once it has
 * begun shutting down. Known names are "" (the daemon) and every service in the method table
 * (rpc_dispatch_serves()). Watch is not registered, so it gets the server's UNIMPLEMENTED
 * answer for unknown methods.
 */
#include <string.h>

#include "dispatch.h"
#include "grpc/health/v1/health.pb-c.h"
#include "handlers.h"
#include "manager.h"

static void
handle_check(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *) r;
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    RpcContext *ctx = userdata;

    if (req->service[0] != '\0' && !rpc_dispatch_serves(req->service)) {
        rpc_call_fail(call, -ENOENT, "unknown service '%.128s'", req->service);
        return;
    }
    resp.status = ctx->manager->shutting_down
                      ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
                      : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    rpc_call_reply(call, &resp.base);
}

#define HEALTH "grpc.health.v1.Health"
/* A grpc.health.v1 message's descriptor, by its protobuf-c (snake case) name. */
#define HEALTH_V1(msg) grpc__health__v1__##msg##__descriptor

const RpcMethod health_methods[] = {
    METHOD(HEALTH, Check, HEALTH_V1(health_check_request), HEALTH_V1(health_check_response),
           handle_check, RPC_READ_ONLY | RPC_OPEN),
};
const size_t health_methods_count = ELEMENTSOF(health_methods);
