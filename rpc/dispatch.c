/* SPDX-License-Identifier: MIT */
/*
 * dispatch — see dispatch.h. Built once, on first use, from the per-service tables.
 */
#include "dispatch.h"

#include <string.h>

#include "handlers/handlers.h"

const char *const rpc_service_names[] = {
    "vfio_migd.v1.DeviceService",
    "vfio_migd.v1.GroupService",
    "vfio_migd.v1.MigrationService",
    "vfio_migd.v1.SystemService",
    "grpc.health.v1.Health",
    NULL,
};

/* Enough for every service's methods; checked below. */
#define DISPATCH_MAX_METHODS 64

const RpcMethod *
rpc_dispatch_table(size_t *ret_count)
{
    static RpcMethod table[DISPATCH_MAX_METHODS];
    static size_t count;
    const struct {
        const RpcMethod *methods;
        size_t n;
    } services[] = {
        {device_methods, device_methods_count},
        {group_methods, group_methods_count},
        {migration_methods, migration_methods_count},
        {migration_stream_methods, migration_stream_methods_count},
        {system_methods, system_methods_count},
        {health_methods, health_methods_count},
    };

    if (count == 0) {
        for (size_t i = 0; i < ELEMENTSOF(services); i++) {
            assert(count + services[i].n <= DISPATCH_MAX_METHODS);
            memcpy(table + count, services[i].methods, services[i].n * sizeof(RpcMethod));
            count += services[i].n;
        }
    }
    *ret_count = count;
    return table;
}
