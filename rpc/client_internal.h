/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * client_internal — what client.c and client_stream.c share: the client itself and the
 * helpers that turn a call's outcome into an RpcError. Not for users of client.h.
 */

#include <signal.h>
#include <stdbool.h>

#include <grpc/support/time.h>

#include "client.h"
#include "util/macro.h"

struct RpcClient {
    char *socket_path;         /* as given: for messages and the access() check */
    grpc_channel *channel;     /* one HTTP/2 connection (local subchannel pool) */
    grpc_completion_queue *cq; /* pluck queue: each call plucks its own tags */
    bool reached;              /* a call has had an answer from the daemon */
    const volatile sig_atomic_t *interrupt; /* rpc_client_set_interrupt(), or NULL */
};

void rpc_error_set(RpcError *err, grpc_status_code code, const char *fmt, ...) _printf_(3, 4);
/* @err from a non-OK status: UNAVAILABLE and our own deadline get a message that says which
 * socket and what to do; anything else is the daemon's own message, verbatim. */
void rpc_error_from_status(RpcClient *c, grpc_status_code status, grpc_slice details,
                           gpr_timespec deadline, int timeout_ms, RpcError *err);
/* -EREMOTEIO with @err filled when the socket file is missing, not a socket or not ours to
 * connect to (client_socket.c). */
int rpc_check_socket(RpcClient *c, RpcError *err);
/* Before the daemon has answered once: fills @err with one sentence when @status and gRPC's
 * @text show that the path is no vfio-migd socket, or that nobody listens there; @timeout_ms
 * is our deadline when it is what passed, else 0. False when it cannot say more. */
bool rpc_explain_unreachable(RpcClient *c, grpc_status_code status, const char *text,
                             int timeout_ms, RpcError *err);
/* A monotonic deadline @timeout_ms from now; none for timeout_ms <= 0. */
gpr_timespec rpc_deadline_from_timeout(int timeout_ms);
/* Waits until @tag (a batch of @call) completes or @deadline passes, looking at the client's
 * interrupt flag in between: 0 and *@ret, -ETIMEDOUT (the batch is still pending), or
 * -EINTR: the flag was set, @call is cancelled and the batch has completed (*@ret). */
int rpc_client_wait(RpcClient *c, grpc_call *call, void *tag, gpr_timespec deadline,
                    grpc_event *ret);
/* The RpcError of a wait that rpc_client_wait() ended with -EINTR. */
void rpc_error_interrupted(RpcError *err);
/* The RpcError of a call on which the client gave up after @timeout_ms. */
void rpc_error_gave_up(RpcClient *c, int timeout_ms, RpcError *err);
/* What every call checks before it is made: a request larger than the daemon takes
 * (RPC_MAX_REQUEST_SIZE) is -EMSGSIZE, and a socket path that is no daemon's is -EREMOTEIO
 * (rpc_check_socket), each with @err saying so in plain words; else 0. */
int rpc_check_call(RpcClient *c, const char *method, const ProtobufCMessage *req, RpcError *err);
/* A call of @method on the client's channel and queue, ending at @deadline; NULL when out of
 * memory. */
grpc_call *rpc_client_create_call(RpcClient *c, const char *method, gpr_timespec deadline);
/* The RpcError of a call that never reached the daemon: interrupted (@r -EINTR, SIGINT or
 * SIGTERM), or gRPC failed; returns @r. */
int rpc_error_not_made(RpcError *err, const char *method, int r);
