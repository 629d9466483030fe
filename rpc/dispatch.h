/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * dispatch — the daemon's complete method table: every service's methods in one array for
 * rpc_server_new(). Threads: loop only.
 */

#include "server.h"

/* Returns the table (static storage) and its length. */
const RpcMethod *rpc_dispatch_table(size_t *ret_count);
