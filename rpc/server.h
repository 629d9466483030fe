/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * server — the gRPC C core server on a unix socket, driven from the libuv loop.
 *
 * gRPC 1.51 cannot run on a libuv loop, so one thread blocks in grpc_completion_queue_next()
 * and only moves completion tags into the loop (uv_async_send); every handler runs on the
 * loop thread and may answer at once or later (after worker threads finish). Unknown
 * methods get UNIMPLEMENTED; requests that do not parse get INVALID_ARGUMENT; requests
 * larger than RPC_MAX_REQUEST_SIZE are refused by gRPC itself (RESOURCE_EXHAUSTED).
 * See shared reference grpc-core.md §2 for the recipe and its pitfalls.
 *
 * Used by:  main.c; handlers in rpc/handlers/ through rpc_call_*().
 * Threads:  every function is loop-thread only.
 */

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <uv.h>

#include "util/macro.h"

/* Requests are ids, paths and short option lists; 64 KiB leaves room and bounds memory. */
#define RPC_MAX_REQUEST_SIZE (64 * 1024)

typedef struct RpcServer RpcServer;
typedef struct RpcCall RpcCall;

/* Called on the loop with the decoded request; the request stays valid until the call is
 * answered. The handler must answer exactly once, now or later, with rpc_call_reply() or
 * rpc_call_fail*(). */
typedef void (*rpc_handler)(RpcCall *call, const ProtobufCMessage *request, void *userdata);

typedef struct RpcMethod {
    const char *path; /* "/vfio_migd.v1.DeviceService/GetDevice" */
    const ProtobufCMessageDescriptor *request;
    const ProtobufCMessageDescriptor *response;
    rpc_handler handler;
} RpcMethod;

/* RpcMethod.request/response are the same for streaming methods: the handler streams. */

/* Takes an exclusive lock next to the socket (so a second daemon cannot steal the path),
 * binds, and starts serving. -EADDRINUSE with @err set when another daemon owns it. */
int rpc_server_new(uv_loop_t *loop, const char *socket_path, const RpcMethod *methods,
                   size_t n_methods, void *userdata, RpcServer **ret, char *err, size_t err_size);

/* Stops accepting calls; in-flight calls get 2 s to finish, then are cancelled. @done runs
 * on the loop once every call is freed and the CQ thread has ended. */
void rpc_server_shutdown(RpcServer *s, void (*done)(void *userdata), void *userdata);
bool rpc_server_is_shutting_down(const RpcServer *s);
/* Only after @done ran (or if the server never started). NULL-safe; returns NULL. */
RpcServer *rpc_server_free(RpcServer *s);

/* Answers OK with @response (packed at once; it may be freed when this returns). */
void rpc_call_reply(RpcCall *call, const ProtobufCMessage *response);
/* Answers with the status rpc_status_from_errno(@r) and a message. */
void rpc_call_fail(RpcCall *call, int r, const char *fmt, ...) _printf_(3, 4);
/* Server streaming: begin (the handler answers with messages, then a status, instead of
 * rpc_call_reply()). @on_cancel runs on the loop if the client goes away first; the handler
 * must then stop producing and call rpc_call_stream_end(). Messages are packed at once and
 * sent in order; end sends the final status after them. Returns 0 or -errno (the stream
 * still has to be ended). */
int rpc_call_stream_begin(RpcCall *call, void (*on_cancel)(RpcCall *call, void *userdata),
                          void *userdata);
void rpc_call_stream_send(RpcCall *call, const ProtobufCMessage *message);
void rpc_call_stream_end(RpcCall *call, grpc_status_code code, const char *message);

/* Answers with an explicit status code and a message, and attaches @result (a message of the
 * method's response type: what was done before the failure) as a trailer the client can
 * read (RPC_RESULT_TRAILER in rpc/client.h). */
void rpc_call_fail_with_result(RpcCall *call, grpc_status_code code,
                               const ProtobufCMessage *result, const char *fmt, ...)
    _printf_(4, 5);
/* Answers with an explicit status code and a message. */
void rpc_call_fail_code(RpcCall *call, grpc_status_code code, const char *fmt, ...) _printf_(3, 4);
