/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * dispatch — the daemon's complete method table (every service's methods in one array, for
 * rpc_server_new()) and the rules every call is held to before its handler runs, read from
 * each method's flags: checked here once, not remembered by each handler.
 *
 * Used by:  main.c (serving), rpc/handlers/health.c (which services exist), tests.
 * Threads:  loop only.
 */

#include <stdbool.h>

#include "handlers/handlers.h"
#include "server.h"

/* Returns the table (static storage) and its length. */
const RpcMethod *rpc_dispatch_table(size_t *ret_count);

/* The admission rule (an rpc_admit_fn; @userdata is the RpcContext): a RPC_MUTATING call
 * while the daemon shuts down is refused with -ESHUTDOWN (UNAVAILABLE); read-only calls are
 * always admitted, so that the daemon can still be looked at until it has stopped. */
int rpc_dispatch_admit(const RpcMethod *m, void *userdata, char *why, size_t why_size);

/* Whether @service ("vfio_migd.v1.DeviceService") has a method in the table. */
bool rpc_dispatch_serves(const char *service);
