/* SPDX-License-Identifier: MIT */
/*
 * transport — see transport.h.
 */
#include "util/le.h"
#include "transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/macro.h"
#include "util/strutil.h"
#include "tls.h"

static int
parse_unix(const char *path, TransportAddress *ret, char *err, size_t err_size)
{
    struct sockaddr_un *un = (struct sockaddr_un *) &ret->sa;

    char shown[64];

    if (path[0] != '/' || strlen(path) >= sizeof(un->sun_path)) {
        (void) snprintf(err, err_size, "'unix:%s' needs an absolute path shorter than %zu bytes",
                        strutil_printable(path, 40, shown, sizeof(shown)), sizeof(un->sun_path));
        return -EINVAL;
    }
    memset(ret, 0, sizeof(*ret));
    un->sun_family = AF_UNIX;
    strcpy(un->sun_path, path);
    ret->len = sizeof(*un);
    return 0;
}

/* The port of "host:port" in decimal, within @min_port..65535: getaddrinfo() would take
 * "99999" or "65536" and keep its low 16 bits, listening or connecting somewhere else. */
static int
parse_port(const char *address, const char *s, int min_port, char *err, size_t err_size)
{
    char shown[TRANSPORT_ADDRESS_MAX + 4], port[24];
    long long v;

    if (strspn(s, "0123456789") != strlen(s) ||
        strutil_parse_int_bounded(s, min_port, 65535, &v) < 0) {
        (void) snprintf(err, err_size, "'%s': the port '%s' is not a number from %d to 65535%s",
                        strutil_printable(address, TRANSPORT_ADDRESS_MAX, shown, sizeof(shown)),
                        strutil_printable(s, 16, port, sizeof(port)), min_port,
                        min_port == 0 ? " (0: the system picks a free port)" : "");
        return -EINVAL;
    }
    return (int) v;
}

/* "host:port", "[v6]:port", or "unix:/path"; ports from @min_port (0 to listen on any free
 * one, 1 to connect). Numeric hosts and "localhost" only: a migration address comes from
 * PrepareIncoming, never from name resolution that could hang. */
int
transport_parse_address(const char *address, int min_port, TransportAddress *ret, char *err,
                        size_t err_size)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    char host[TRANSPORT_ADDRESS_MAX], shown[TRANSPORT_ADDRESS_MAX + 4];
    const char *colon;
    int r;

    if (strncmp(address, "unix:", 5) == 0) {
        return parse_unix(address + 5, ret, err, err_size);
    }
    colon = strrchr(address, ':');
    if (!colon || colon == address || (size_t) (colon - address) >= sizeof(host)) {
        (void) snprintf(err, err_size, "'%s' is not an address (use host:port or unix:/path)",
                        strutil_printable(address, TRANSPORT_ADDRESS_MAX, shown, sizeof(shown)));
        return -EINVAL;
    }
    r = parse_port(address, colon + 1, min_port, err, err_size);
    if (r < 0) {
        return r;
    }
    memcpy(host, address, (size_t) (colon - address));
    host[colon - address] = '\0';
    if (host[0] == '[' && host[strlen(host) - 1] == ']') {
        memmove(host, host + 1, strlen(host) - 2);
        host[strlen(host) - 2] = '\0';
    }
    if (strcmp(host, "localhost") != 0) {
        hints.ai_flags |= AI_NUMERICHOST;
    }
    r = getaddrinfo(host, colon + 1, &hints, &res);
    if (r != 0 || !res) {
        (void) snprintf(err, err_size, "'%s' is not an address: %s",
                        strutil_printable(address, TRANSPORT_ADDRESS_MAX, shown, sizeof(shown)),
                        gai_strerror(r));
        return -EINVAL;
    }
    memcpy(&ret->sa, res->ai_addr, res->ai_addrlen);
    ret->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void format_host_port(const struct sockaddr *sa, unsigned port, char *out, size_t size);

static unsigned
port_of(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *) ss)->sin_port
                                          : ((const struct sockaddr_in6 *) ss)->sin6_port);
}

int
transport_format_address(const TransportAddress *a, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int n;

    if (a->sa.ss_family == AF_UNIX) {
        n = snprintf(out, size, "unix:%s", ((const struct sockaddr_un *) &a->sa)->sun_path);
    } else if (a->sa.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) &a->sa;
        (void) inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        n = snprintf(out, size, "%s:%u", host, ntohs(in->sin_port));
    } else if (a->sa.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *) &a->sa;
        (void) inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        /* A link-local address means nothing without its interface: keep the scope. */
        n = in6->sin6_scope_id ? snprintf(out, size, "[%s%%%u]:%u", host, in6->sin6_scope_id,
                                          ntohs(in6->sin6_port))
                               : snprintf(out, size, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        n = snprintf(out, size, "?");
    }
    return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

/* What was bound: a TCP port 0 becomes the port the kernel chose. */
static void
format_bound(int fd, const TransportAddress *a, char *out, size_t size)
{
    TransportAddress got = {.len = sizeof(got.sa)};

    if (a->sa.ss_family != AF_UNIX &&
        getsockname(fd, (struct sockaddr *) &got.sa, &got.len) == 0) {
        a = &got;
    } else if (a->sa.ss_family != AF_UNIX) {
        (void) snprintf(out, size, "?");
        return;
    }
    (void) transport_format_address(a, out, size);
}

void
transport_peer_name(int fd, char *out, size_t size)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getpeername(fd, (struct sockaddr *) &ss, &len) < 0) {
        (void) snprintf(out, size, "?");
        return;
    }
    if (ss.ss_family == AF_UNIX) {
        (void) snprintf(out, size, "unix");
        return;
    }
    format_host_port((struct sockaddr *) &ss, port_of(&ss), out, size);
}

/* The IP address of @ss as IPv6 (an IPv4 one mapped), for comparing. */
static bool
ip6_of(const struct sockaddr_storage *ss, struct in6_addr *ret)
{
    if (ss->ss_family == AF_INET6) {
        *ret = ((const struct sockaddr_in6 *) ss)->sin6_addr;
        return true;
    }
    if (ss->ss_family == AF_INET) {
        memset(ret, 0, sizeof(*ret));
        ret->s6_addr[10] = ret->s6_addr[11] = 0xff;
        memcpy(&ret->s6_addr[12], &((const struct sockaddr_in *) ss)->sin_addr, 4);
        return true;
    }
    return false;
}

bool
transport_same_host(int fd)
{
    struct sockaddr_storage local, peer;
    socklen_t local_len = sizeof(local), peer_len = sizeof(peer);
    struct in6_addr a, b;

    if (getsockname(fd, (struct sockaddr *) &local, &local_len) < 0 ||
        getpeername(fd, (struct sockaddr *) &peer, &peer_len) < 0) {
        return false;
    }
    if (local.ss_family == AF_UNIX) {
        return true;
    }
    if (!ip6_of(&local, &a) || !ip6_of(&peer, &b)) {
        return false;
    }
    /* 127.0.0.0/8 (mapped) and ::1 are this host whatever the other end's address */
    return memcmp(&a, &b, sizeof(a)) == 0 || IN6_IS_ADDR_LOOPBACK(&b) ||
           (IN6_IS_ADDR_V4MAPPED(&b) && b.s6_addr[12] == 127);
}

int
transport_check_peer_address(const char *address, char *err, size_t err_size)
{
    TransportAddress a;

    return transport_parse_address(address, /* min_port= */ 1, &a, err, err_size);
}

/* Parses @address and opens a non-blocking stream socket of its family: the first step of
 * both listening and connecting. Returns the fd (the caller owns it) or a negative errno. */
static int
address_socket(const char *address, int min_port, TransportAddress *ret, char *err,
               size_t err_size)
{
    int fd, r;

    r = transport_parse_address(address, min_port, ret, err, err_size);
    if (r < 0) {
        return r;
    }
    fd = socket(ret->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd < 0 ? -errno : fd;
}

int
transport_listen(const char *address, int *ret_fd, char *bound, size_t bound_size, char *err,
                 size_t err_size)
{
    _cleanup_close_ int fd = -EBADF;
    TransportAddress a;
    int one = 1, r;

    fd = address_socket(address, /* min_port= */ 0, &a, err, err_size);
    if (fd < 0) {
        return fd;
    }
    /* A unix socket's path is never unlinked here: what is there is not ours to remove
     * (bind() fails on it; files.h says how the daemon picks and removes its own). */
    if (a.sa.ss_family != AF_UNIX) {
        (void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    }
    if (bind(fd, (struct sockaddr *) &a.sa, a.len) < 0 || listen(fd, 64) < 0) {
        r = -errno;
        (void) snprintf(err, err_size, "cannot listen on '%.128s': %s", address, strerror(-r));
        return r;
    }
    format_bound(fd, &a, bound, bound_size);
    *ret_fd = TAKE_FD(fd);
    return 0;
}

static void
format_host(const struct sockaddr *sa, char *out, size_t size)
{
    const void *a = sa->sa_family == AF_INET
                        ? (const void *) &((const struct sockaddr_in *) sa)->sin_addr
                        : (const void *) &((const struct sockaddr_in6 *) sa)->sin6_addr;

    if (!inet_ntop(sa->sa_family, a, out, (socklen_t) size)) {
        (void) snprintf(out, size, "?");
    }
}

/* "host:port" as a peer writes it: IPv6 in brackets. */
static void
format_host_port(const struct sockaddr *sa, unsigned port, char *out, size_t size)
{
    char host[INET6_ADDRSTRLEN];

    format_host(sa, host, sizeof(host));
    (void) snprintf(out, size, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

int
transport_route_source(const char *peer_host, char *ret_host, size_t size, char *err,
                       size_t err_size)
{
    char probe[TRANSPORT_ADDRESS_MAX + 8];
    _cleanup_close_ int fd = -EBADF;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    TransportAddress a;
    int r;

    /* Port 9 (discard) only makes the address complete: a UDP connect() sends nothing. */
    (void) snprintf(probe, sizeof(probe), strchr(peer_host, ':') && peer_host[0] != '[' ? "[%s]:9"
                                                                                       : "%s:9",
                    peer_host);
    if (!*peer_host || strncmp(peer_host, "unix:", 5) == 0 ||
        transport_parse_address(probe, /* min_port= */ 1, &a, err, err_size) < 0) {
        (void) snprintf(err, err_size, "'%.128s' is not a numeric host address (e.g. 192.0.2.5 "
                        "or 2001:db8::5)", peer_host);
        return -EINVAL;
    }
    fd = socket(a.sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *) &a.sa, a.len) < 0 ||
        getsockname(fd, (struct sockaddr *) &ss, &len) < 0) {
        r = -errno;
        (void) snprintf(err, err_size, "this host has no route to '%.128s': %s", peer_host,
                        strerror(-r));
        return r;
    }
    format_host((struct sockaddr *) &ss, ret_host, size);
    return 0;
}

static bool
is_link_local6(const struct sockaddr *sa)
{
    const struct in6_addr *a = &((const struct sockaddr_in6 *) sa)->sin6_addr;
    return IN6_IS_ADDR_LINKLOCAL(a) || IN6_IS_ADDR_V4MAPPED(a);
}

/* Adds @sa unless it is there already; false when @ret is full. */
static bool
add_unique(const struct sockaddr *sa, unsigned port, char (*ret)[TRANSPORT_ADDRESS_MAX],
           size_t max, size_t *n)
{
    char s[TRANSPORT_ADDRESS_MAX];

    format_host_port(sa, port, s, sizeof(s));
    for (size_t i = 0; i < *n; i++) {
        if (strcmp(ret[i], s) == 0) {
            return true;
        }
    }
    if (*n >= max) {
        return false;
    }
    memcpy(ret[(*n)++], s, sizeof(s));
    return true;
}

size_t
transport_pick_addresses(const struct ifaddrs *ifs, bool v4, bool v6, unsigned port,
                         char (*ret)[TRANSPORT_ADDRESS_MAX], size_t max)
{
    size_t n = 0;

    /* Pass 0 takes what another host can use; pass 1, only when that found nothing, the
     * loopback addresses (a host without a network still migrates to itself). */
    for (int loopback = 0; loopback < 2 && n == 0; loopback++) {
        for (const struct ifaddrs *i = ifs; i; i = i->ifa_next) {
            const struct sockaddr *sa = i->ifa_addr;
            bool fam = sa && ((sa->sa_family == AF_INET && v4) ||
                              (sa->sa_family == AF_INET6 && v6 && !is_link_local6(sa)));

            if (fam && (i->ifa_flags & IFF_UP) && !!(i->ifa_flags & IFF_LOOPBACK) == loopback &&
                !add_unique(sa, port, ret, max, &n)) {
                return n;
            }
        }
    }
    return n;
}

int
transport_reachable_addresses(int listen_fd, const char *bound, const char *route_host,
                              char (*ret)[TRANSPORT_ADDRESS_MAX], size_t max, size_t *ret_n)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    struct ifaddrs *ifs = NULL;
    int v6only = 0;
    socklen_t ol = sizeof(v6only);
    unsigned port;
    bool any;

    *ret_n = 0;
    if (max == 0) {
        return 0;
    }
    if (strncmp(bound, "unix:", 5) == 0 || getsockname(listen_fd, (struct sockaddr *) &ss,
                                                       &len) < 0) {
        (void) snprintf(ret[0], TRANSPORT_ADDRESS_MAX, "%s", bound);
        *ret_n = 1;
        return 0;
    }
    port = port_of(&ss);
    any = ss.ss_family == AF_INET
              ? ((struct sockaddr_in *) &ss)->sin_addr.s_addr == htonl(INADDR_ANY)
              : IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *) &ss)->sin6_addr);
    if (!any) {
        (void) snprintf(ret[0], TRANSPORT_ADDRESS_MAX, "%s", bound);
        *ret_n = 1;
        return 0;
    }
    if (route_host && *route_host) {
        (void) snprintf(ret[0], TRANSPORT_ADDRESS_MAX,
                        strchr(route_host, ':') ? "[%s]:%u" : "%s:%u", route_host, port);
        *ret_n = 1;
        return 0;
    }
    if (getifaddrs(&ifs) < 0) {
        return -errno;
    }
    if (ss.ss_family == AF_INET6) {
        (void) getsockopt(listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &ol);
    }
    *ret_n = transport_pick_addresses(ifs, ss.ss_family == AF_INET || !v6only,
                                      ss.ss_family == AF_INET6, port, ret, max);
    freeifaddrs(ifs);
    return 0;
}

void
transport_tune(int fd)
{
    int one = 1;

    /* Socket buffers are left to the kernel: fixing SO_SNDBUF/SO_RCVBUF turns TCP's
     * autotuning off, which measured slower on loopback and costs receive CPU (bench-migrate). */
    (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* fails on unix: fine */
}

int
transport_set_timeout(int fd, int timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};

    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
        return -errno;
    }
    return 0;
}

static const char *const message_names[] = {
    [TMSG_HELLO] = "HELLO",
    [TMSG_ACCEPT] = "ACCEPT",
    [TMSG_REFUSE] = "REFUSE",
    [TMSG_DATA_HELLO] = "DATA_HELLO",
    [TMSG_DATA_ACCEPT] = "DATA_ACCEPT",
    [TMSG_PING] = "PING",
    [TMSG_STREAM_END] = "STREAM_END",
    [TMSG_CONFIRM] = "CONFIRM",
    [TMSG_FAIL] = "FAIL",
    [TMSG_PREPARED] = "PREPARED",
    [TMSG_COMMIT] = "COMMIT",
    [TMSG_DONE] = "DONE",
    [TMSG_CHECK] = "CHECK",
    [TMSG_CHECK_REPORT] = "CHECK_REPORT",
};

DEFINE_NAME_LOOKUP(transport_message_name, uint32_t, message_names, NULL);

/* What the errnos of a connection mean about the peer, as clauses about it ("it ..."). The ones transport.c makes itself
 * (-ENODATA for a clean close, -E2BIG for an oversized message) would read as nonsense in
 * strerror()'s words. */
static const struct {
    int r;
    const char *text;
} socket_texts[] = {
    {-ENODATA, "it closed the connection"},
    {-EPIPE, "it closed the connection"},
    {-ECONNRESET, "it reset the connection"},
    {-ETIMEDOUT, "it sent nothing within the timeout"},
    {-E2BIG, "it sent a message longer than any vfio-migd message"},
    {-EBADMSG, "it sent a malformed message"},
    {-EPROTO, "it broke the vfio-migd protocol"},
    {-EKEYREJECTED, "a TLS record failed its authentication: the stream was changed on the "
                    "way"},
    {-ECONNREFUSED, "nothing listens there (connection refused)"},
    {-EHOSTUNREACH, "no route to the host"},
    {-ENETUNREACH, "no route to the network"},
    {-ECONNABORTED, "the connection was aborted"},
};

/* The same for a connection that could not be made. */
static const struct {
    int r;
    const char *text;
} connect_texts[] = {
    {-ECONNREFUSED, "nothing listens there (connection refused): check that 'vfio-migctl "
                    "incoming' waits on the destination and that this is the address it printed"},
    {-ETIMEDOUT, "no answer within the timeout: the host is down, or a firewall drops the "
                 "connection"},
};

#define TEXT_OF(table, r_)                                                                         \
    ({                                                                                             \
        const char *_t = NULL;                                                                     \
        for (size_t _i = 0; _i < ELEMENTSOF(table) && !_t; _i++) {                                 \
            _t = (table)[_i].r == (r_) ? (table)[_i].text : NULL;                                  \
        }                                                                                          \
        _t;                                                                                        \
    })

const char *
transport_strerror(int r)
{
    return TEXT_OF(socket_texts, r) ?: strerror(-r);
}

static int
connect_wait(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    int r;

    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
        return -ETIMEDOUT;
    }
    if (r < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) {
        return -errno;
    }
    return -soerr;
}

int
transport_connect(const char *address, int timeout_ms, int *ret_fd, char *err, size_t err_size)
{
    _cleanup_close_ int fd = -EBADF;
    TransportAddress a;
    int r;

    fd = address_socket(address, /* min_port= */ 1, &a, err, err_size);
    if (fd < 0) {
        return fd;
    }
    transport_tune(fd);
    r = connect(fd, (struct sockaddr *) &a.sa, a.len) < 0 ? -errno : 0;
    if (r == -EINPROGRESS || r == -EAGAIN) {
        r = connect_wait(fd, timeout_ms);
    }
    if (r < 0) {
        (void) snprintf(err, err_size, "cannot connect to '%.128s': %s", address,
                        TEXT_OF(connect_texts, r) ?: transport_strerror(r));
        return r;
    }
    if (fcntl(fd, F_SETFL, 0) < 0) { /* blocking from here on; waits use SO_*TIMEO */
        return -errno;
    }
    *ret_fd = TAKE_FD(fd);
    return 0;
}

/* EAGAIN on a blocking socket means SO_RCVTIMEO/SO_SNDTIMEO ran out. */
static int
io_errno(int e)
{
    return e == EAGAIN || e == EWOULDBLOCK ? -ETIMEDOUT : -e;
}

/* One read of the connection, TLS or clear: bytes read, 0 at its end, or -1 with errno. */
static ssize_t
conn_recv(int fd, void *buf, size_t size, int flags, bool bulk)
{
    ssize_t n;

    if (!tls_attached(fd)) {
        return recv(fd, buf, size, flags);
    }
    n = tls_read(fd, buf, size, bulk ? size : 1);
    if (n == -ENODATA) {
        return 0;
    }
    if (n < 0) {
        errno = (int) -n;
        return -1;
    }
    return n;
}

int
transport_read_full(int fd, void *buf, size_t size)
{
    uint8_t *p = buf;

    while (size > 0) {
        ssize_t n = conn_recv(fd, p, size, 0, false);
        if (n == 0) {
            return -ENODATA;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return io_errno(errno);
        }
        p += n;
        size -= (size_t) n;
    }
    return 0;
}

/* Sets the wake-up threshold to @want unless it is already there. Where the socket refuses
 * it, the reader just wakes more often. */
static void
set_lowat(int fd, TransportLowat *lw, size_t want)
{
    int v = (int) want;

    if (lw->value == 0 || lw->value == v) {
        return;
    }
    lw->value = setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &v, sizeof(v)) < 0 ? 0 : v;
}

int
transport_read_bulk(int fd, void *buf, size_t size, TransportLowat *lw)
{
    uint8_t *p = buf;

    if (tls_attached(fd)) {
        /* The session keeps its own threshold (tls.c): ciphertext is not plaintext. */
        (void) lw;
        while (size > 0) {
            ssize_t n = conn_recv(fd, p, size, 0, /* bulk= */ true);
            if (n <= 0) {
                return n == 0 ? -ENODATA : io_errno(errno);
            }
            p += n;
            size -= (size_t) n;
        }
        return 0;
    }
    /* Each wake-up of a blocked reader costs both sides a scheduling round and, in a VM, an
     * IPI; at one per 64 KiB segment that was a sixth of a loopback migration's CPU. With
     * SO_RCVLOWAT the kernel wakes a reader only once that many bytes wait. Two rules keep it
     * from waking the reader never: the threshold is at most what this read still needs (the
     * stream may end there), and the reader waits in poll(), not in recv(): a blocked recv()
     * keeps what it copied so far while the kernel compares only what is still queued with
     * the threshold. */
    while (size > 0) {
        ssize_t n;

        set_lowat(fd, lw, MIN(size, TRANSPORT_BULK_WAKE));
        n = recv(fd, p, size, MSG_DONTWAIT);
        if (n == 0) {
            return -ENODATA;
        }
        if (n < 0) {
            int r = errno == EAGAIN || errno == EWOULDBLOCK ? transport_wait_readable(fd, -1)
                    : errno == EINTR                        ? 0
                                                            : io_errno(errno);
            if (r < 0) {
                return r;
            }
            continue;
        }
        p += n;
        size -= (size_t) n;
    }
    return 0;
}

int
transport_writev_full(int fd, const void *a, size_t a_size, const void *b, size_t b_size)
{
    struct iovec iov[2] = {{(void *) a, a_size}, {(void *) b, b_size}};
    struct iovec *v = iov;
    int cnt = 2;

    if (tls_attached(fd)) {
        return tls_write2(fd, a, a_size, b, b_size);
    }
    /* writev(), not sendmsg(): the same records go to sockets and to save files. A peer that
     * went away gives EPIPE, not a signal: the daemon ignores SIGPIPE (main.c). */
    while (iov[0].iov_len + iov[1].iov_len > 0) {
        ssize_t n = writev(fd, v, cnt);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return io_errno(errno);
        }
        for (int i = 0; i < 2 && n > 0; i++) {
            size_t k = (size_t) n < iov[i].iov_len ? (size_t) n : iov[i].iov_len;
            iov[i].iov_base = (uint8_t *) iov[i].iov_base + k;
            iov[i].iov_len -= k;
            n -= (ssize_t) k;
        }
        if (iov[0].iov_len == 0) {
            v = &iov[1];
            cnt = 1;
        }
    }
    return 0;
}

int
transport_write_full(int fd, const void *buf, size_t size)
{
    return transport_writev_full(fd, buf, size, NULL, 0);
}

void
transport_encode_header(uint32_t type, uint32_t size, uint8_t *ret)
{
    put_le32(ret, type);
    put_le32(ret + 4, size);
}

int
transport_send(int fd, uint32_t type, const void *payload, uint32_t size)
{
    uint8_t hdr[TRANSPORT_HEADER_SIZE];

    if (size > TRANSPORT_MAX_MESSAGE) {
        return -E2BIG;
    }
    transport_encode_header(type, size, hdr);
    return transport_writev_full(fd, hdr, sizeof(hdr), payload, size);
}

int
transport_recv(int fd, uint32_t *ret_type, void *buf, uint32_t max, uint32_t *ret_size)
{
    uint8_t hdr[8];
    uint32_t size;
    int r;

    r = transport_read_full(fd, hdr, sizeof(hdr));
    if (r < 0) {
        return r;
    }
    size = get_le32(hdr + 4);
    if (size > max || size > TRANSPORT_MAX_MESSAGE) {
        return -E2BIG; /* bounded before anything is read into @buf */
    }
    r = transport_read_full(fd, buf, size);
    if (r < 0) {
        return r;
    }
    *ret_type = get_le32(hdr);
    *ret_size = size;
    return 0;
}

/* Reads up to @size bytes, stopping at EOF; *@ret_got says how many came. */
static int
read_upto(int fd, uint8_t *buf, size_t size, size_t *ret_got)
{
    size_t got = 0;
    int r = 0;

    while (got < size) {
        ssize_t n = conn_recv(fd, buf + got, size - got, 0, false);
        if (n == 0) {
            r = -ENODATA;
            break;
        }
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            r = io_errno(errno);
            break;
        }
        got += (size_t) n;
    }
    *ret_got = got;
    return r;
}

void
transport_quote(const uint8_t *bytes, size_t n, char *out, size_t size)
{
    size_t o = 0;

    for (size_t i = 0; i < n && o + 5 < size; i++) {
        if (bytes[i] >= 0x20 && bytes[i] < 0x7f && bytes[i] != '\\' && bytes[i] != '\'') {
            out[o++] = (char) bytes[i];
        } else {
            o += (size_t) snprintf(out + o, size - o, "\\x%02x", bytes[i]);
        }
    }
    if (size > 0) {
        out[o] = '\0';
    }
}

/* @head (the first bytes a peer sent), plus what else it has sent already, as quoted text:
 * at most 48 bytes. */
static void
quote_bytes(int fd, const uint8_t *head, size_t n_head, char *out, size_t size)
{
    uint8_t bytes[48];
    size_t n = MIN(n_head, sizeof(bytes));
    ssize_t more;

    memcpy(bytes, head, n);
    more = tls_attached(fd) ? 0 : recv(fd, bytes + n, sizeof(bytes) - n, MSG_DONTWAIT);
    n += more > 0 ? (size_t) more : 0;
    transport_quote(bytes, n, out, size);
}

int
transport_recv_answer(int fd, const char *peer, const char *kind, uint32_t *ret_type,
                      void *buf, uint32_t max, uint32_t *ret_size, char *err, size_t err_size)
{
    uint8_t hdr[8];
    char quoted[48 * 4 + 1];
    uint32_t type, size;
    size_t got;
    int r;

    r = read_upto(fd, hdr, sizeof(hdr), &got);
    if (r < 0 && got == 0) {
        (void) snprintf(err, err_size, "the peer at '%s' gave no answer (%s): it is not a "
                        "vfio-migd %s port, or its daemon stopped", peer, transport_strerror(r),
                        kind);
        return r;
    }
    type = get_le32(hdr);
    size = get_le32(hdr + 4);
    if (r < 0 || !transport_message_name(type) || size > max || size > TRANSPORT_MAX_MESSAGE) {
        quote_bytes(fd, hdr, got, quoted, sizeof(quoted));
        (void) snprintf(err, err_size, "the peer at '%s' is not a vfio-migd %s port: it "
                        "answered '%s'", peer, kind, quoted);
        return -EPROTO;
    }
    r = read_upto(fd, buf, size, &got);
    if (r == -ENODATA || r == -ECONNRESET) {
        (void) snprintf(err, err_size, "the peer at '%s' ended the connection inside message %s "
                        "(%zu of %u bytes): it is not a vfio-migd %s port, or its daemon stopped",
                        peer, transport_message_name(type), got, size, kind);
        return -EBADMSG;
    }
    if (r < 0) {
        (void) snprintf(err, err_size, "the peer at '%s' stopped inside message %s: %s", peer,
                        transport_message_name(type), transport_strerror(r));
        return r;
    }
    *ret_type = type;
    *ret_size = size;
    return 0;
}

int
transport_wait_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;

    if (tls_pending(fd)) {
        return 1; /* decrypted bytes wait in the session, where poll() cannot see them */
    }
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r < 0) {
        return -errno;
    }
    return r > 0;
}

int
transport_new_token(char out[TRANSPORT_TOKEN_HEX + 1])
{
    uint8_t raw[TRANSPORT_TOKEN_HEX / 2];
    size_t got = 0;

    while (got < sizeof(raw)) {
        ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -errno;
        }
        got += (size_t) n;
    }
    for (size_t i = 0; i < sizeof(raw); i++) {
        (void) snprintf(out + 2 * i, 3, "%02x", raw[i]);
    }
    return 0;
}

bool
transport_token_equal(const char *a, const char *b)
{
    volatile uint8_t diff = 0;
    size_t la = strnlen(a, TRANSPORT_TOKEN_HEX + 1), lb = strnlen(b, TRANSPORT_TOKEN_HEX + 1);

    if (la != TRANSPORT_TOKEN_HEX || lb != TRANSPORT_TOKEN_HEX) {
        return false; /* the length of a token is public */
    }
    for (size_t i = 0; i < TRANSPORT_TOKEN_HEX; i++) {
        diff |= (uint8_t) (a[i] ^ b[i]);
    }
    return diff == 0;
}

int
transport_send_nowait(int fd, const void *buf, size_t size)
{
    if (tls_attached(fd)) {
        return tls_write2(fd, buf, size, NULL, 0);
    }
    return send(fd, buf, size, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t) size ? 0 : -EPIPE;
}

int
transport_close(int fd)
{
    if (fd < 0) {
        return 0;
    }
    tls_detach(fd);
    return close(fd);
}
