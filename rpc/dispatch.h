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
#include <sys/socket.h>

#include "core/authz.h"

#include "handlers/handlers.h"
#include "server.h"

/* Returns the table (static storage) and its length. */
const RpcMethod *rpc_dispatch_table(size_t *ret_count);

/* The admission rule (an rpc_admit_fn; @userdata is the RpcContext), in this order:
 *   - a caller without the role the method needs (rpc_dispatch_role_needed) under
 *     ctx->authz, or whose credentials are unknown (@caller NULL), is refused with -EACCES
 *     (PERMISSION_DENIED) and a sentence naming the caller, the role and the keys that grant
 *     it; RPC_OPEN methods need no role and no credentials;
 *   - a RPC_MUTATING call while the daemon shuts down is refused with -ESHUTDOWN
 *     (UNAVAILABLE); read-only calls are admitted until the end, so that the daemon can
 *     still be looked at until it has stopped.
 * Looks the caller's groups up through NSS when its uid alone does not grant the role. */
int rpc_dispatch_admit(const RpcMethod *m, const struct ucred *caller, void *userdata, char *why,
                       size_t why_size);

/* The role a call to @m needs: none (RPC_OPEN), operator (RPC_MUTATING), else reader. Pure. */
AuthzRole rpc_dispatch_role_needed(const RpcMethod *m);
/* The role @caller holds under @p, as far as @need is concerned (once its uid grants @need,
 * its groups are not looked up). NONE when @p or @caller is NULL. */
AuthzRole rpc_dispatch_role_of(const AuthzPolicy *p, const struct ucred *caller, AuthzRole need);

/* Whether @service ("vfio_migd.v1.DeviceService") has a method in the table. */
bool rpc_dispatch_serves(const char *service);
