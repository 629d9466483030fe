/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * handlers — the API's method tables, one per service file. Each handler decodes and checks
 * its request, calls one manager/device function, and encodes the answer (CONVENTIONS 22);
 * semantic checks live in the daemon modules.
 * Threads: loop only.
 */

#include "forward.h"
#include "server.h"

/* What every handler gets as userdata. */
typedef struct RpcContext {
    Manager *manager;
    RpcServer *server;
} RpcContext;

extern const RpcMethod device_methods[];
extern const size_t device_methods_count;
extern const RpcMethod migration_methods[];
extern const size_t migration_methods_count;
extern const RpcMethod migration_stream_methods[];
extern const size_t migration_stream_methods_count;
extern const RpcMethod group_methods[];
extern const size_t group_methods_count;
extern const RpcMethod system_methods[];
extern const size_t system_methods_count;
extern const RpcMethod health_methods[];
extern const size_t health_methods_count;

/* Service names the daemon serves, for health checks. NULL-terminated. */
extern const char *const rpc_service_names[];
