/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * listener — the API socket and the connections it accepts.
 *
 * The socket is either made here (an flock on "<path>.lock" first, so that a second daemon
 * cannot take a live path over; a stale socket of a dead daemon is replaced) or adopted from
 * systemd (socket activation: the fd named "api", which must be a listening AF_UNIX stream
 * socket; it stays systemd's, so connections that arrive while the daemon restarts wait in
 * its queue). Either way it gets the configured mode and group ([api] socket_mode and
 * socket_group): the configuration says who may call, whoever made the socket. Either way the daemon accepts every connection itself
 * (accept4 NONBLOCK|CLOEXEC from a uv_poll on the listening fd), reads the caller's
 * credentials (SO_PEERCRED) into a table keyed by the connection's fd, and hands the fd on
 * (rpc/server.c gives it to gRPC with grpc_server_add_channel_from_fd, which then owns it:
 * gRPC names such a call's peer "fd:N", and rpc_listener_peer_cred() looks N up).
 *
 * Limits: at most max_connections connections at once (a connection beyond it is accepted
 * and closed at once, with a rate-limited log line naming the option); when accept() runs
 * out of fds (EMFILE, ENFILE, ENOBUFS, ENOMEM) the listener stops polling for a while (50 ms
 * doubling to 1 s) instead of spinning on a level-triggered fd that stays readable.
 *
 * gRPC closes a connection's fd on its own threads and says nothing, so the table learns of
 * it lazily: an entry is alive while its fd number still names the same socket (fstat's
 * st_dev/st_ino). Full tables are swept before a connection is refused. A call's lookup
 * needs no such check: gRPC closes the fd only when the transport is destroyed, after its
 * last call is unreffed (grpc-core.md §6), so while a call is alive its fd number is its
 * connection's; and the one reuse that would matter, a later connection accepted on the
 * same number, overwrites the entry (a check on the socket's identity would pass for it
 * just the same). Dropping the per-call fstat took 3 % off the daemon's CPU per call
 * (bench/README.md, issue 12, 12r).
 *
 * Used by:  rpc/server.c.
 * Threads:  loop-thread only (handlers, which look credentials up, run there too).
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include "util/cleanup.h"

/* The default of --max-connections: more than the 200 concurrent clients the daemon was
 * tried with (issue 11), well under the fds a default RLIMIT_NOFILE of 1024 leaves after
 * devices. */
#define RPC_LISTENER_DEFAULT_MAX_CONNECTIONS 256
#define RPC_LISTENER_MAX_CONNECTIONS 65536

typedef struct RpcListener RpcListener;

/* Called on the loop for each accepted connection; takes ownership of @fd. */
typedef void (*rpc_listener_connection_fn)(int fd, const struct ucred *cred, void *userdata);

typedef struct RpcListenerConfig {
    const char *socket_path;   /* the socket to make (listen_fd < 0) */
    int listen_fd;             /* >= 0: adopt this socket (systemd's); it passes to the
                                * listener even on failure */
    unsigned socket_mode;      /* given to the socket, made or adopted */
    bool socket_gid_set;       /* give it socket_gid too (else it keeps its group) */
    gid_t socket_gid;
    unsigned max_connections;  /* 1..RPC_LISTENER_MAX_CONNECTIONS */
    rpc_listener_connection_fn on_connection;
    void *userdata;
} RpcListenerConfig;

/* What the listener did, for tests and logs. */
typedef struct RpcListenerStats {
    unsigned long accept_calls; /* accept4() calls, failed ones included */
    unsigned long accepted;     /* connections handed on */
    unsigned long refused;      /* connections closed because max_connections were open */
    unsigned long backoffs;     /* times accepting paused for lack of fds */
} RpcListenerStats;

/* Makes or adopts the socket; nothing is accepted before rpc_listener_start(). Returns 0, or
 * a negative errno with a sentence in @err: -EADDRINUSE another daemon holds the lock;
 * -EPERM the socket cannot be given its group;
 * -ENOTSOCK/-ESOCKTNOSUPPORT/-EAFNOSUPPORT/-EINVAL an adopted fd of the wrong kind; -EEXIST
 * something that is not a socket sits at the path; -ENAMETOOLONG; or the syscall's errno. */
int rpc_listener_new(uv_loop_t *loop, const RpcListenerConfig *config, RpcListener **ret,
                     char *err, size_t err_size);
/* Begins accepting (the consumer of on_connection must be ready). */
int rpc_listener_start(RpcListener *l);
/* Stops accepting for good and closes the listening fd: a socket made here is unlinked (its
 * clients get ECONNREFUSED at once); systemd's copy of an adopted one keeps queueing. The
 * credentials table stays until rpc_listener_free(). Idempotent. */
void rpc_listener_stop(RpcListener *l);
/* After rpc_listener_stop() and a loop run that closed its handles (or if never started).
 * Releases the lock. NULL-safe; returns NULL. */
RpcListener *rpc_listener_free(RpcListener *l);
DEFINE_CLEANUP_FUNC(RpcListener *, rpc_listener_free);

/* The credentials of the caller on connection @fd, taken when it was accepted. @fd is the
 * connection of a call gRPC still holds (so it is open: see above). -ENOENT if @fd is no
 * connection of this listener, or one a sweep found closed. */
int rpc_listener_peer_cred(RpcListener *l, int fd, struct ucred *ret);

/* The socket's path ("@name" for an abstract socket). */
const char *rpc_listener_path(const RpcListener *l);
/* True when the socket came from systemd. */
bool rpc_listener_activated(const RpcListener *l);
/* Open connections, after a sweep of the ones gRPC has closed. */
unsigned rpc_listener_connections(RpcListener *l);
RpcListenerStats rpc_listener_stats(const RpcListener *l);
