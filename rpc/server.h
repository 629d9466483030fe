/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * server — the gRPC C core server on a unix socket, driven from the libuv loop.
 *
 * The socket is rpc/listener's (made here or handed over by systemd); the listener accepts
 * every connection, keeps its caller's credentials and gives the fd to gRPC
 * (grpc_server_add_channel_from_fd), so that a handler can ask who called
 * (rpc_call_peer_cred()).
 *
 * gRPC 1.51 cannot run on a libuv loop, so one thread blocks in grpc_completion_queue_next()
 * and only moves completion tags into the loop (waking it through an eventfd it polls); every
 * handler runs on the loop thread and may answer at once or later (after worker threads
 * finish). The server
 * serves a method table (RpcMethod, built by rpc/dispatch.c): unknown methods get
 * UNIMPLEMENTED; a call the admission rule refuses gets its errno's status, before its
 * request is even decoded; requests that do not parse get INVALID_ARGUMENT; requests larger
 * than RPC_MAX_REQUEST_SIZE are refused by gRPC itself (RESOURCE_EXHAUSTED), and one too
 * large for RPC_MEMORY_QUOTA has its stream reset before it is read whole. Every status
 * comes from an errno through rpc/status.c. See shared reference grpc-core.md §2 for the
 * recipe and its pitfalls.
 *
 * Used by:  main.c; handlers in rpc/handlers/ through rpc_call_*().
 * Threads:  every function is loop-thread only.
 */

#include <grpc/grpc.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include "client.h" /* RPC_MAX_REQUEST_SIZE */
#include "status.h"
#include "util/macro.h"

/* What gRPC's buffers of all API connections may hold together (a grpc_resource_quota): the
 * bound on a request larger than RPC_MAX_REQUEST_SIZE, which gRPC 1.51 reads whole before it
 * refuses it. Far above what RPC_LISTENER_DEFAULT_MAX_CONNECTIONS legitimate clients use. */
#define RPC_MEMORY_QUOTA (32u * 1024 * 1024)

typedef struct RpcServer RpcServer;
typedef struct RpcCall RpcCall;

/* Called on the loop with the decoded request; the request stays valid until the call is
 * answered. The handler must answer exactly once, now or later, with rpc_call_reply() or
 * rpc_call_fail*() — or, for a RPC_STREAMING method, with rpc_call_stream_*(). */
typedef void (*rpc_handler)(RpcCall *call, const ProtobufCMessage *request, void *userdata);

/* What a method is, beyond its types: the rules every call to it is held to. */
typedef enum RpcMethodFlags {
    RPC_READ_ONLY = 0,
    /* The call changes a device, a group, a migration or a file: only an operator may make it
     * (without this flag, a reader may), and never while the daemon shuts down
     * (rpc/dispatch.c). */
    RPC_MUTATING = 1u << 0,
    /* Server streaming: the handler answers with rpc_call_stream_*(), each message of the
     * method's response type, never with rpc_call_reply(). */
    RPC_STREAMING = 1u << 1,
    /* Anyone who can open the socket may call it, with no role: health and version, which a
     * probe must reach. Never together with RPC_MUTATING. */
    RPC_OPEN = 1u << 2,
} RpcMethodFlags;

typedef struct RpcMethod {
    const char *path;                           /* "/vfio_migd.v1.DeviceService/GetDevice" */
    const ProtobufCMessageDescriptor *request;  /* exactly one request message */
    const ProtobufCMessageDescriptor *response; /* the reply, or each message of a stream */
    rpc_handler handler;
    unsigned flags;                             /* RpcMethodFlags */
} RpcMethod;

/* Decides, before its request is decoded, whether a call to @m by @caller (its connection's
 * SO_PEERCRED; NULL when unknown) may run. Returns 0, or a negative errno with a sentence in
 * @why: the call is answered with both and its handler never runs. */
typedef int (*rpc_admit_fn)(const RpcMethod *m, const struct ucred *caller, void *userdata,
                            char *why, size_t why_size);

typedef struct RpcServerConfig {
    const char *socket_path;   /* the socket to make, unless listen_fd is set */
    int listen_fd;             /* > 0: serve this listening socket (systemd's, which passes
                                * fds from 3 on), and ignore socket_path; it passes to the
                                * server even on failure. 0: make socket_path */
    unsigned socket_mode;      /* the socket's permissions, made or adopted; 0: 0660 */
    bool socket_gid_set;       /* false: the socket keeps its group */
    gid_t socket_gid;
    unsigned max_connections;  /* 0: RPC_LISTENER_DEFAULT_MAX_CONNECTIONS (rpc/listener.h) */
    const RpcMethod *methods;  /* must outlive the server */
    size_t n_methods;
    rpc_admit_fn admit;        /* NULL: every call to a known method runs */
    void *userdata;            /* given to every handler and to @admit */
} RpcServerConfig;

/* Takes an exclusive lock next to the socket (so a second daemon cannot steal the path),
 * makes or adopts the socket (rpc/listener.h), gives it its mode and group, and starts
 * serving. -EADDRINUSE with @err set when another daemon owns it; -EPERM when the socket
 * cannot be given its group; the listener's other errors. */
int rpc_server_new(uv_loop_t *loop, const RpcServerConfig *config, RpcServer **ret, char *err,
                   size_t err_size);
/* Where the server listens, and whether systemd made that socket. */
const char *rpc_server_socket_path(const RpcServer *s);
bool rpc_server_socket_activated(const RpcServer *s);

/* Stops accepting connections (rpc_listener_stop()) and calls; in-flight calls get 2 s to
 * finish, then are cancelled. @done runs on the loop once every call is freed and the CQ
 * thread has ended. */
void rpc_server_shutdown(RpcServer *s, void (*done)(void *userdata), void *userdata);
/* Only after @done ran (or if the server never started). NULL-safe; returns NULL. */
RpcServer *rpc_server_free(RpcServer *s);

/* The credentials (pid, uid, gid) of the process that opened @call's connection, taken by
 * SO_PEERCRED when it was accepted: per connection, not per call; uid and gid are reliable,
 * a pid may have been reused since. -ENOENT if unknown (never for a call on a connection of
 * this server). The admission rule (rpc_admit_fn) gets it for every call. */
int rpc_call_peer_cred(RpcCall *call, struct ucred *ret);
/* Milliseconds left until the client's deadline (at least 1 once it has passed), or 0 when
 * the client set none: what an operation that waits for a worker may wait at most. */
uint64_t rpc_call_remaining_ms(const RpcCall *call);

/* A unary call that may wait (a device operation queued for a worker): @on_cancel runs on
 * the loop if the client goes away (cancels, or its connection closes) before the call is
 * answered, even with no deadline set, so that what has not started can be dropped. The call
 * must still be answered (the answer goes nowhere). At most once per call; costs one more
 * batch, so only calls that may wait use it. 0 or -errno (then @on_cancel never runs). */
int rpc_call_watch_cancel(RpcCall *call, void (*on_cancel)(RpcCall *call, void *userdata),
                          void *userdata);

/* Answers OK with @response (packed at once; it may be freed when this returns). */
void rpc_call_reply(RpcCall *call, const ProtobufCMessage *response);
/* Answers a request refused with @r (negative errno) before anything was touched: the status
 * is rpc_status_from_errno(@r), the message names what is wrong. */
void rpc_call_fail(RpcCall *call, int r, const char *fmt, ...) _printf_(3, 4);
/* Answers a request that failed with @r in the way @failure says (status.h): the status is
 * rpc_status_from_failure(). @result, when not NULL, is a message of the method's response
 * type saying what was done before the failure (which arcs ran, where each device ended); it
 * travels as a trailer the client can read (RPC_RESULT_TRAILER in rpc/client.h). */
void rpc_call_fail_ex(RpcCall *call, RpcFailure failure, int r, const ProtobufCMessage *result,
                      const char *fmt, ...) _printf_(5, 6);

/* Server streaming (RPC_STREAMING methods only): begin (the handler answers with messages,
 * then an end, instead of rpc_call_reply()). @on_cancel runs on the loop if the client goes
 * away first; the handler must then stop producing and call rpc_call_stream_end(). Messages
 * are packed at once and sent in order; the end sends the final status after them. Returns 0
 * or -errno (the stream still has to be ended). */
int rpc_call_stream_begin(RpcCall *call, void (*on_cancel)(RpcCall *call, void *userdata),
                          void *userdata);
/* Queues @message and returns how many messages wait for the reader (the one gRPC is sending
 * not counted; 0 once the client has gone). @key, when not NULL, marks a message that a later
 * one with the same key makes stale: the stale one, if still queued, is dropped (a progress
 * report replaced by a newer one; the new one goes last, so the order of the rest holds).
 * The queue has no bound of its own: the handler decides how far behind a reader may fall
 * and ends a slower one with rpc_call_stream_abort(). */
size_t rpc_call_stream_send(RpcCall *call, const ProtobufCMessage *message, const char *key);
/* Ends the stream now with rpc_status_from_errno(@r) and the formatted message, dropping
 * every queued message: for a reader too slow to keep. The status reaches the client even
 * though it does not read (it travels in trailers, which flow control does not hold back). */
void rpc_call_stream_abort(RpcCall *call, int r, const char *fmt, ...) _printf_(3, 4);
/* Ends the stream with rpc_status_from_errno(@r) (0: OK) and @message. */
void rpc_call_stream_end(RpcCall *call, int r, const char *message);
