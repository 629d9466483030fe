/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * transport — the daemon-to-daemon sockets of a live migration: addresses ("host:port" TCP,
 * or "unix:/path"), listening, connecting with a deadline, whole reads and writes with
 * timeouts, the control-message framing, and the one-time secrets.
 *
 * Control messages are framed as [u32 type][u32 length][payload] (little-endian), payloads
 * at most TRANSPORT_MAX_MESSAGE; data channels carry stream records (core/stream.h) after
 * their handshake. See docs/migration.md.
 *
 * Threads: every function may block and runs on workers, except transport_listen() and the
 * token helpers, which the loop calls. Errors: negative errno, plus a sentence where a
 * buffer is given: -ETIMEDOUT (a wait ran out), -ECONNRESET/-EPIPE (the peer went away),
 * -ENODATA (the peer closed the connection cleanly), -E2BIG (an oversized message).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A manifest of 256 devices with plugin descriptors fits; anything larger is refused. */
#define TRANSPORT_MAX_MESSAGE (2u << 20)
#define TRANSPORT_HEADER_SIZE 8       /* a control message's [u32 type][u32 length] */
#define TRANSPORT_TOKEN_HEX 64        /* 32 random bytes as hex */
#define TRANSPORT_ADDRESS_MAX 128
#define TRANSPORT_BULK_WAKE (512u << 10) /* a bulk reader's wake-up threshold */

/* The control protocol's version, in ACCEPT. 3: a device's stream may be spread over several
 * data channels (DATA_HELLO says which channel of how many; core/spread.h). 2: the hand-over
 * is a commit (PREPARED, COMMIT, DONE; core/handover.h); a source still migrates to a
 * protocol-2 destination, with one channel per device. 1 (an ACCEPT of the key alone) ended
 * with CONFIRM, after which the destination resumed whether or not the source heard it:
 * refused both ways. */
#define TRANSPORT_PROTOCOL_VERSION 3
#define TRANSPORT_PROTOCOL_OLDEST 2 /* the oldest destination a source migrates to */

typedef enum TransportMessage {
    TMSG_HELLO = 1,       /* source -> destination: token, stream header, manifest record */
    TMSG_ACCEPT = 2,      /* destination -> source: the data channels' key, protocol version */
    TMSG_REFUSE = 3,      /* destination -> source: why (text) */
    TMSG_DATA_HELLO = 4,  /* source -> destination on a data connection: key, stream id, device */
    TMSG_DATA_ACCEPT = 5,
    TMSG_PING = 6,        /* source -> destination, every second: the link is alive */
    TMSG_STREAM_END = 7,  /* source -> destination: the STREAM_END record */
    TMSG_CONFIRM = 8,     /* protocol 1 only: never sent; named for a peer that sends it */
    TMSG_FAIL = 9,        /* either way: why (text); from the source, only before COMMIT */
    TMSG_PREPARED = 10,   /* destination -> source: all loaded and validated; it waits */
    TMSG_COMMIT = 11,     /* source -> destination: committed, it never resumes on its own */
    TMSG_DONE = 12,       /* destination -> source: it holds the VM */
        /* source -> destination: a dry run (migrate --dry-run), HELLO's payload; the destination
     * compares the manifest and answers CHECK_REPORT (or REFUSE), touching no device and
     * leaving the token unspent */
    TMSG_CHECK = 13,
    TMSG_CHECK_REPORT = 14, /* destination -> source: every mismatch (handshake.h) */
} TransportMessage;

/* The address of the other end of a connected socket, as people read it ("192.0.2.7:40123",
 * "[2001:db8::7]:40123", "unix"; "?" when it cannot be known). */
void transport_peer_name(int fd, char *out, size_t size);

/* Whether connected socket @fd leads to this host: a unix socket, a loopback address
 * (127.0.0.0/8, ::1), or both ends with the same IP address (one of the host's own). */
bool transport_same_host(int fd);

/* A parsed migration address. */
typedef struct TransportAddress {
    struct sockaddr_storage sa;
    socklen_t len;
} TransportAddress;
/* Parses "host:port" (a port from @min_port to 65535, in digits), "[v6]:port" (a numeric host, or "localhost") or "unix:/absolute/path"
 * (shorter than sun_path). Pure apart from getaddrinfo() on a numeric host, which never asks
 * the network. -EINVAL with a sentence in @err (the address quoted printable). */
int transport_parse_address(const char *address, int min_port, TransportAddress *ret, char *err,
                            size_t err_size);
/* Writes @a as transport_parse_address() reads it back (a v6 scope as "%N"); -ENAMETOOLONG
 * when @size is too small. */
int transport_format_address(const TransportAddress *a, char *out, size_t size);

/* Binds and listens (non-blocking, CLOEXEC); a port from 0 (any free one) to 65535, checked
 * as a number, never truncated. @bound gets the address actually bound. A
 * unix path that exists is refused by bind() (EADDRINUSE), never unlinked. */
int transport_listen(const char *address, int *ret_fd, char *bound, size_t bound_size,
                     char *err, size_t err_size);
/* Checks, without connecting, that @address is one transport_connect() takes: "host:port"
 * with a numeric host (or localhost) and a port from 1 to 65535, or "unix:/path". -EINVAL. */
int transport_check_peer_address(const char *address, char *err, size_t err_size);
/* Connects within @timeout_ms; the socket is blocking, CLOEXEC, tuned for bulk data. */
int transport_connect(const char *address, int timeout_ms, int *ret_fd, char *err,
                      size_t err_size);
/* At most this many addresses are offered to a peer (a host with more interfaces: the first). */
#define TRANSPORT_REACHABLE_MAX 16

struct ifaddrs;

/* The local address the kernel would use to reach @peer_host (numeric, or "localhost"; no
 * port), into @ret_host: a UDP connect() that sends nothing, then getsockname(). -EINVAL a
 * host that is not an address; -ENETUNREACH etc. no route. */
int transport_route_source(const char *peer_host, char *ret_host, size_t size, char *err,
                           size_t err_size);
/*
 * The addresses a peer on another host can connect to, for a socket listening on @listen_fd
 * and bound to @bound ("host:port" or "unix:/path"), into @ret (at most @max):
 *   - @bound itself unless its host is a wildcard (0.0.0.0, [::]), and for unix:;
 *   - "@route_host:PORT" when @route_host is given (from transport_route_source());
 *   - else every address of an interface that is up (getifaddrs()), of the socket's family
 *     (both for [::] unless IPV6_V6ONLY), loopback only when nothing else is, IPv6 link-local
 *     never (it needs a scope a peer cannot guess).
 * Returns 0, or a negative errno from getifaddrs().
 */
int transport_reachable_addresses(int listen_fd, const char *bound, const char *route_host,
                                  char (*ret)[TRANSPORT_ADDRESS_MAX], size_t max, size_t *ret_n);
/* The pure part of the above: picks from @ifs (a getifaddrs() list) for @port. @v4 and @v6 say
 * which families the listener takes. */
size_t transport_pick_addresses(const struct ifaddrs *ifs, bool v4, bool v6, unsigned port,
                                char (*ret)[TRANSPORT_ADDRESS_MAX], size_t max);

/* Receive and send timeouts for a blocking socket (0: none). */
int transport_set_timeout(int fd, int timeout_ms);
/* TCP_NODELAY so small control messages go at once; buffers stay autotuned. */
void transport_tune(int fd);

/* Blocking reads that honour the socket's SO_RCVTIMEO (control and handshake messages). */
int transport_read_full(int fd, void *buf, size_t size);
/* The socket's wake-up threshold a bulk reader keeps, SO_RCVLOWAT; a new socket has 1. */
typedef struct TransportLowat {
    int value; /* what the socket has now; 0 = the option was refused, never asked again */
} TransportLowat;
#define TRANSPORT_LOWAT_INIT ((TransportLowat){.value = 1})
/* As transport_read_full(), for bulk data: the reader is woken when min(left, 512 KiB) bytes
 * wait, not at every segment. It waits without a deadline (shutdown() ends the wait, as for
 * a blocking read without SO_RCVTIMEO). Sockets only; used on the data channels, @lw is the
 * channel's. */
int transport_read_bulk(int fd, void *buf, size_t size, TransportLowat *lw);
int transport_write_full(int fd, const void *buf, size_t size);
/* Two buffers in one write (record header + payload) without copying. */
int transport_writev_full(int fd, const void *a, size_t a_size, const void *b, size_t b_size);

int transport_send(int fd, uint32_t type, const void *payload, uint32_t size);
/* A control message's header for @size bytes of payload, into @ret (TRANSPORT_HEADER_SIZE
 * bytes), for a whole message built in one buffer (transport_send_nowait()). */
void transport_encode_header(uint32_t type, uint32_t size, uint8_t *ret);
/* Reads one message; its payload (at most @max bytes, else -E2BIG) into @buf. */
int transport_recv(int fd, uint32_t *ret_type, void *buf, uint32_t max, uint32_t *ret_size);
/*
 * Reads the first answer of a peer that should be a vfio-migd port of kind @kind ("data",
 * the migration listener), as transport_recv() does, and says in @err what went wrong in
 * words that name the peer at @peer: anything that is not a vfio-migd message (an unknown
 * type, a length over @max, a connection that ends inside the header) is "the peer at ADDR
 * is not a vfio-migd data port", quoting the first bytes it sent. Returns 0, or:
 *   -EPROTO      not a vfio-migd message
 *   -ENODATA     closed without a byte;  -ECONNRESET reset without a byte
 *   -ETIMEDOUT   nothing within the socket's receive timeout
 *   -EBADMSG     closed or reset inside a message's payload
 *   other        the socket's errno
 */
int transport_recv_answer(int fd, const char *peer, const char *kind, uint32_t *ret_type,
                          void *buf, uint32_t max, uint32_t *ret_size, char *err,
                          size_t err_size);
/* @n bytes a peer sent as text to quote: printable ASCII as it is, the rest (a quote and a
 * backslash too) as \xNN; cut where @out (of @size > 0) is full. */
void transport_quote(const uint8_t *bytes, size_t n, char *out, size_t size);
/* The name of a message type ("ACCEPT"), or NULL when @type is none. */
const char *transport_message_name(uint32_t type);
/* A clause for what a socket error means about the peer ("it reset the connection")
 * for the errnos of the network, else strerror(): never an errno meant for something else
 * ("Argument list too long", "No data available"). */
const char *transport_strerror(int r);

/* A short message from the loop (REFUSE, PREPARED, DONE, ...): a clear socket's send()
 * without waiting, whole or -EPIPE; on a TLS socket one record, waiting at most the socket's
 * send timeout (a few bytes: the socket buffer takes them). */
int transport_send_nowait(int fd, const void *buf, size_t size);
/* Closes a migration socket and forgets its TLS session (tls.h), if it has one: every
 * migration socket is closed here, so that no session outlives its fd. */
int transport_close(int fd);
static inline void
transport_closep(int *fd)
{
    if (*fd >= 0) {
        (void) transport_close(*fd);
    }
}

/* Waits up to @timeout_ms for @fd to be readable: 1 readable, 0 timed out, or -errno. */
int transport_wait_readable(int fd, int timeout_ms);

/* 32 random bytes as 64 hex characters plus NUL. */
int transport_new_token(char out[TRANSPORT_TOKEN_HEX + 1]);
/* Compares in constant time (the time does not depend on where they differ). */
bool transport_token_equal(const char *a, const char *b);
