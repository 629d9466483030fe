/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * client — blocking gRPC calls, unary and server streaming, to a vfio-migd daemon over its
 * unix socket, for vfio-migctl, the benchmarks and tests. One RpcClient = one channel (one
 * HTTP/2 connection) and one pluck completion queue; use one RpcClient per thread.
 *
 * Threads: an RpcClient is used by one thread at a time. rpc_client_global_init() must be
 * called once before the first client is made (it calls grpc_init()).
 * Errors: negative errno for local failures; a call the daemon answered with a non-OK status
 * returns -EREMOTEIO and fills RpcError.
 */

#include <signal.h>

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>

#define RPC_DEFAULT_SOCKET "/run/vfio-migd/api.sock"

typedef struct RpcClient RpcClient;

typedef struct RpcError {
    grpc_status_code code; /* GRPC_STATUS_OK when the call succeeded */
    char message[1024];    /* the daemon's status message, or a local explanation */
} RpcError;

/* "unix:" + @path as the URI gRPC is given: gRPC parses the target as one, so '#', '?', '%'
 * or a space in a path would otherwise be taken as URI syntax; every byte outside
 * [A-Za-z0-9/-._~] is percent-encoded, and gRPC percent-decodes the path again. The caller
 * frees it; NULL without memory. */
char *rpc_client_target(const char *path);

void rpc_client_global_init(void);
void rpc_client_global_shutdown(void);

/* Connects lazily: creating a client never fails because the daemon is down; the first call
 * does (GRPC_STATUS_UNAVAILABLE). @socket_path is a filesystem path. */
int rpc_client_new(const char *socket_path, RpcClient **ret);
void rpc_client_free(RpcClient *c);

/* How often a waiting call looks at the interrupt flag. */
#define RPC_INTERRUPT_CHECK_MS 100

/* @flag (set by the caller's SIGINT/SIGTERM handler; NULL: none) ends every wait of @c within
 * RPC_INTERRUPT_CHECK_MS once it is non-zero, also a wait that began before: the call is
 * cancelled, and the function returns -EINTR with @err (code CANCELLED) saying so. A call
 * made while the flag is set ends at once the same way. What the daemon was asked may still
 * happen: cancelling a unary call does not undo it. */
void rpc_client_set_interrupt(RpcClient *c, const volatile sig_atomic_t *flag);

/* Trailer in which the daemon attaches its partial result to a failed call (e.g. a group
 * transition that was rolled back): a serialized message of the method's response type. */
#define RPC_RESULT_TRAILER "vfio-migd-result-bin"
/* The largest request the daemon takes (rpc/server.c): requests are ids, paths and short
 * option lists; 64 KiB leaves room and bounds memory. A client refuses a larger one itself,
 * with words that name the limit: gRPC's own refusal ("Received message larger than max") or
 * its stream reset over the daemon's memory quota say neither what nor how to fix it. */
#define RPC_MAX_REQUEST_SIZE (64 * 1024)
/* The initial metadata key a server-streaming call carries when the daemon took it: a stream
 * the daemon refused (a Trailers-Only answer, e.g. too many watchers) opens without it, so the
 * client learns of the refusal when it opens the stream, before it prints anything. */
#define RPC_STREAM_TAKEN "vfio-migd-stream"

/*
 * Calls @method (e.g. "/vfio_migd.v1.DeviceService/GetDevice") with @req and waits up to
 * @timeout_ms (<= 0: no deadline). On GRPC_STATUS_OK returns 0 and *@ret_resp (free with
 * protobuf_c_message_free_unpacked). Otherwise returns -EREMOTEIO with @err filled
 * (code UNAVAILABLE when the daemon cannot be reached), -EINTR (rpc_client_set_interrupt()),
 * or another negative errno. When the
 * daemon attached its partial result to a failure (RPC_RESULT_TRAILER), *@ret_resp is set
 * on -EREMOTEIO too and must be freed likewise.
 */
int rpc_client_call(RpcClient *c, const char *method, const ProtobufCMessage *req,
                    const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
                    ProtobufCMessage **ret_resp, RpcError *err);

/*
 * Server streaming (e.g. MigrationService/WatchEvents): rpc_client_stream_open() sends @req
 * and waits up to @timeout_ms for the daemon to take the call; rpc_stream_next() then waits
 * up to @timeout_ms (<= 0: for ever) for the next message: 1 and *@ret_msg (free it with
 * protobuf_c_message_free_unpacked), 0 when the daemon ended the stream with OK,
 * -ETIMEDOUT when nothing came in time (the stream stays usable), -EREMOTEIO with @err
 * filled when it ended with another status, -EINTR when interrupted (the stream is cancelled:
 * only rpc_stream_close() is left), or another negative errno. rpc_stream_close()
 * cancels a stream that has not ended. The stream uses the client's queue: while it is
 * open, unary calls on the same client are fine, from the same thread.
 */
typedef struct RpcStream RpcStream;
int rpc_client_stream_open(RpcClient *c, const char *method, const ProtobufCMessage *req,
                           int timeout_ms, RpcStream **ret, RpcError *err);
int rpc_stream_next(RpcStream *s, const ProtobufCMessageDescriptor *desc, int timeout_ms,
                    ProtobufCMessage **ret_msg, RpcError *err);
void rpc_stream_close(RpcStream *s);

const char *rpc_status_code_name(grpc_status_code code); /* "NOT_FOUND", ... */
