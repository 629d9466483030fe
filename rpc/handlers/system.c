/* SPDX-License-Identifier: MIT */
/*
 * system — handlers of vfio_migd.v1.SystemService (rpc/proto/vfio_migd/v1/system.proto).
 */
#include <errno.h>
#include <grpc/grpc.h>
#include <unistd.h>

#include "handlers.h"
#include "manager.h"
#include "util/log.h"
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

static void
handle_get_log_level(RpcCall *call, const ProtobufCMessage *req _unused_, void *userdata _unused_)
{
    VfioMigd__V1__LogLevelResponse resp = VFIO_MIGD__V1__LOG_LEVEL_RESPONSE__INIT;

    resp.level = (char *) log_level_to_string(log_get_max_level());
    rpc_call_reply(call, &resp.base);
}

/* The level holds until a reload (SIGHUP) applies the configured one again: a reload means
 * "what the configuration says", and the log line below tells who changed it meanwhile. */
static void
handle_set_log_level(RpcCall *call, const ProtobufCMessage *r, void *userdata _unused_)
{
    const VfioMigd__V1__SetLogLevelRequest *req = REQ(SetLogLevelRequest, r);
    VfioMigd__V1__LogLevelResponse resp = VFIO_MIGD__V1__LOG_LEVEL_RESPONSE__INIT;
    int previous = log_get_max_level();
    int level = log_level_from_string(req->level);

    if (level < 0) {
        rpc_call_fail(call, -EINVAL, "unknown log level '%.32s': use error, warning, notice, "
                      "info or debug", req->level);
        return;
    }
    log_set_max_level(level);
    log_notice("Log level set to %s (was %s) by a client; a reload (SIGHUP) applies the "
               "configured level again.", log_level_to_string(level),
               log_level_to_string(previous));
    resp.level = (char *) log_level_to_string(level);
    resp.previous = (char *) log_level_to_string(previous);
    rpc_call_reply(call, &resp.base);
}

#define SYSTEM "vfio_migd.v1.SystemService"

const RpcMethod system_methods[] = {
    METHOD(SYSTEM, GetVersion, V1(get_version_request), V1(get_version_response),
           handle_get_version, RPC_READ_ONLY | RPC_OPEN),
    METHOD(SYSTEM, GetLogLevel, V1(get_log_level_request), V1(log_level_response),
           handle_get_log_level, RPC_READ_ONLY),
    METHOD(SYSTEM, SetLogLevel, V1(set_log_level_request), V1(log_level_response),
           handle_set_log_level, RPC_MUTATING),
};
const size_t system_methods_count = ELEMENTSOF(system_methods);
