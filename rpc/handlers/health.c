/* SPDX-License-Identifier: MIT */
/*
 * health — grpc.health.v1.Health/Check (rpc/proto/grpc/health/v1/health.proto). Watch is
 * not registered, so it gets the server's UNIMPLEMENTED answer for unknown methods.
 */
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "handlers.h"

static void
handle_check(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const Grpc__Health__V1__HealthCheckRequest *req = (const void *) r;
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    RpcContext *ctx = userdata;
    bool known = req->service[0] == '\0';

    for (size_t i = 0; !known && rpc_service_names[i]; i++) {
        known = strcmp(req->service, rpc_service_names[i]) == 0;
    }
    if (!known) {
        rpc_call_fail(call, -ENOENT, "unknown service '%.128s'", req->service);
        return;
    }
    resp.status = rpc_server_is_shutting_down(ctx->server)
                      ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
                      : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    rpc_call_reply(call, &resp.base);
}

const RpcMethod health_methods[] = {
    {"/grpc.health.v1.Health/Check", &grpc__health__v1__health_check_request__descriptor,
     &grpc__health__v1__health_check_response__descriptor, handle_check},
};
const size_t health_methods_count = ELEMENTSOF(health_methods);
