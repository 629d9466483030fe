/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * client_internal — what client.c and client_stream.c share: the client itself and the
 * helpers that turn a call's outcome into an RpcError. Not for users of client.h.
 */

#include <stdbool.h>

#include <grpc/support/time.h>

#include "client.h"
#include "util/macro.h"

struct RpcClient {
    char *socket_path;         /* as given: for messages and the access() check */
    grpc_channel *channel;     /* one HTTP/2 connection (local subchannel pool) */
    grpc_completion_queue *cq; /* pluck queue: each call plucks its own tags */
    bool reached;              /* a call has had an answer from the daemon */
};

void rpc_error_set(RpcError *err, grpc_status_code code, const char *fmt, ...) _printf_(3, 4);
/* @err from a non-OK status: UNAVAILABLE and our own deadline get a message that says which
 * socket and what to do; anything else is the daemon's own message, verbatim. */
void rpc_error_from_status(RpcClient *c, grpc_status_code status, grpc_slice details,
                           gpr_timespec deadline, int timeout_ms, RpcError *err);
/* -EREMOTEIO with @err filled when the socket file is missing or not ours to connect to. */
int rpc_check_socket(RpcClient *c, RpcError *err);
/* A monotonic deadline @timeout_ms from now; none for timeout_ms <= 0. */
gpr_timespec rpc_deadline_from_timeout(int timeout_ms);
