/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * status — the one place where a negative errno becomes a gRPC status code (CONVENTIONS C1).
 * Threads: any. Pure.
 */

#include <grpc/status.h>

grpc_status_code rpc_status_from_errno(int r);
