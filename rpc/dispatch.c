/* SPDX-License-Identifier: MIT */
/*
 * dispatch — see dispatch.h. The table is built once, on first use, from the per-service
 * tables of rpc/handlers/.
 */
#include "dispatch.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "manager.h"

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

int
rpc_dispatch_admit(const RpcMethod *m, void *userdata, char *why, size_t why_size)
{
    const RpcContext *ctx = userdata;

    /* A change started now could not finish before the daemon exits (or would delay that
     * exit); looking at the state of things is harmless and useful until the end. */
    if ((m->flags & RPC_MUTATING) && ctx->manager->shutting_down) {
        (void) snprintf(why, why_size, "vfio-migd is shutting down: it accepts no more calls "
                        "that change devices, groups, migrations or files (start it again to "
                        "make changes)");
        return -ESHUTDOWN;
    }
    return 0;
}

bool
rpc_dispatch_serves(const char *service)
{
    size_t n, len = strlen(service);
    const RpcMethod *t = rpc_dispatch_table(&n);

    /* A method's path is "/<service>/<method>". */
    for (size_t i = 0; i < n; i++) {
        if (strncmp(t[i].path + 1, service, len) == 0 && t[i].path[1 + len] == '/') {
            return true;
        }
    }
    return false;
}
