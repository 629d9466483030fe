/* SPDX-License-Identifier: MIT */
/*
 * test_transport — transport_read_bulk(), the data channels' reader, on real sockets; and the
 * address parser's port ranges and the addresses offered to a peer (the last tests).
 *
 * It sets SO_RCVLOWAT so the kernel wakes it only once many bytes wait. The kernel compares
 * the threshold with what is queued, not with what the read still needs, and a blocked
 * recv() keeps what it copied so far: a wrong threshold leaves the reader asleep for ever at
 * the end of a stream that stays open. Every test here ends its stream WITHOUT closing the
 * writer's side until the reader is done, the case a migration's data channel is in (the
 * source keeps it open until the destination confirms), and each runs under a timeout, so
 * such a hang fails the test.
 *
 * The writer is a thread that writes the expected bytes in pieces of odd sizes with pauses,
 * so the reader finds partial data queued, below and above the threshold.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "transport.h"

TestSuite(transport, .timeout = 120);

typedef struct Writer {
    int fd;
    const uint8_t *data;
    size_t size;
    size_t piece;     /* bytes per write() */
    long pause_us;    /* between writes */
    size_t fast;      /* the first bytes go in one write, without a pause */
} Writer;

static void *
writer_run(void *arg)
{
    Writer *w = arg;
    struct timespec ts = {.tv_nsec = w->pause_us * 1000};

    for (size_t off = 0; off < w->size;) {
        size_t piece = off < w->fast ? w->fast - off : w->piece;
        size_t n = w->size - off < piece ? w->size - off : piece;
        ssize_t k = write(w->fd, w->data + off, n);
        if (k <= 0) {
            break;
        }
        off += (size_t) k;
        if (w->pause_us > 0 && off >= w->fast) {
            (void) nanosleep(&ts, NULL);
        }
    }
    return NULL; /* the socket stays open: the reader must not depend on an end of file */
}

/* A connected TCP pair over 127.0.0.1: fds[0] writes, fds[1] reads. */
static void
tcp_pair(int fds[2])
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert(lfd >= 0);
    cr_assert(bind(lfd, (struct sockaddr *) &a, sizeof(a)) == 0);
    cr_assert(listen(lfd, 1) == 0);
    cr_assert(getsockname(lfd, (struct sockaddr *) &a, &len) == 0);
    fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(fds[0] >= 0);
    cr_assert(connect(fds[0], (struct sockaddr *) &a, sizeof(a)) == 0);
    fds[1] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
    cr_assert(fds[1] >= 0);
    (void) close(lfd);
}

static uint8_t *
pattern(size_t size, unsigned seed)
{
    uint8_t *p = malloc(size);

    cr_assert(p);
    for (size_t i = 0; i < size; i++) {
        p[i] = (uint8_t) (i * 131 + seed + (i >> 12));
    }
    return p;
}

/* Writes @sizes[] back to back in one stream; reads each with transport_read_bulk(). */
static void
check_reads_after(int fds[2], const size_t *sizes, size_t n, size_t fast, size_t piece,
                  long pause_us)
{
    size_t total = 0;
    uint8_t *data, *got;
    pthread_t t;
    Writer w;
    TransportLowat lw = TRANSPORT_LOWAT_INIT;

    for (size_t i = 0; i < n; i++) {
        total += sizes[i];
    }
    data = pattern(total, (unsigned) n);
    got = calloc(1, total);
    cr_assert(got);
    w = (Writer){.fd = fds[0], .data = data, .size = total, .piece = piece, .pause_us = pause_us,
                 .fast = fast};
    cr_assert(pthread_create(&t, NULL, writer_run, &w) == 0);
    for (size_t i = 0, off = 0; i < n; off += sizes[i], i++) {
        cr_assert_eq(transport_read_bulk(fds[1], got + off, sizes[i], &lw), 0,
                     "read %zu (%zu bytes) failed", i, sizes[i]);
    }
    cr_assert(pthread_join(t, NULL) == 0);
    cr_assert(memcmp(data, got, total) == 0, "the bytes read differ from those written");
    free(data);
    free(got);
}

#define ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* check_reads_after() on a new TCP pair. */
static void
check_tcp(const size_t *sizes, size_t n, size_t fast, size_t piece, long pause_us)
{
    int fds[2];

    tcp_pair(fds);
    check_reads_after(fds, sizes, n, fast, piece, pause_us);
    (void) close(fds[0]);
    (void) close(fds[1]);
}

/* Records as a migration's stop-copy sends them: header, 512 KiB payload + next header, ...,
 * and the last reads far below the threshold. */
static const size_t record_reads[] = {32, (512u << 10) + 32, (512u << 10) + 32, 100000, 48, 7};

Test(transport, tcp_stream_ending_below_the_threshold)
{
    check_tcp(record_reads, ELEMS(record_reads), 0, 65536, 0);
}

Test(transport, tcp_slow_writer_small_pieces)
{
    /* The reader finds a little data queued, copies it and must wait for the rest. */
    check_tcp(record_reads, ELEMS(record_reads), 0, 40000, 200);
}

Test(transport, tcp_read_arriving_in_two_halves)
{
    /* The reader copies the first half and waits for the rest; the threshold must follow what
     * is still missing, and the wait must not be one in recv(), which counts the half it
     * already copied while the kernel's wake-up test does not. 16 MiB first, at full speed,
     * open the receive window as a migration's does: a small window wakes the reader anyway.
     * The kernel has other reasons to wake a reader (memory pressure), so a wait in recv()
     * fails here only sometimes; a threshold above what is missing fails every time. */
    static const size_t sizes[] = {16u << 20, 400000, 20};

    check_tcp(sizes, ELEMS(sizes), 16u << 20, 200000, 50000);
}

Test(transport, tcp_one_read_of_several_megabytes)
{
    static const size_t sizes[] = {(3u << 20) + 5};

    check_tcp(sizes, ELEMS(sizes), 0, 1u << 20, 100);
}

Test(transport, unix_socket_pair)
{
    int fds[2];

    cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    check_reads_after(fds, record_reads, ELEMS(record_reads), 0, 65536, 50);
    (void) close(fds[0]);
    (void) close(fds[1]);
}

Test(transport, same_host)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(9)};
    int fds[2], fd;

    tcp_pair(fds);
    cr_expect(transport_same_host(fds[0]), "127.0.0.1 to 127.0.0.1");
    cr_expect(transport_same_host(fds[1]));
    (void) close(fds[0]);
    (void) close(fds[1]);
    cr_assert(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    cr_expect(transport_same_host(fds[0]), "a unix socket");
    (void) close(fds[0]);
    (void) close(fds[1]);
    fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    cr_assert(fd >= 0);
    cr_expect_not(transport_same_host(fd), "not connected: no peer");
    /* A UDP connect() sends nothing; it needs a route to 198.51.100.1 (TEST-NET-2), which a
     * machine without a default route lacks: then only the cases above are checked. */
    a.sin_addr.s_addr = htonl(0xc6336401);
    if (connect(fd, (struct sockaddr *) &a, sizeof(a)) == 0) {
        cr_expect_not(transport_same_host(fd), "another host's address");
    }
    (void) close(fd);
}

Test(transport, peer_closing_early_is_enodata)
{
    uint8_t buf[1000] = {0};
    TransportLowat lw = TRANSPORT_LOWAT_INIT;
    int fds[2];

    tcp_pair(fds);
    cr_assert(write(fds[0], buf, 100) == 100);
    (void) close(fds[0]);
    cr_assert_eq(transport_read_bulk(fds[1], buf, sizeof(buf), &lw), -ENODATA);
    (void) close(fds[1]);
}

static void *
shutdown_later(void *arg)
{
    struct timespec ts = {.tv_nsec = 100 * 1000000L};

    (void) nanosleep(&ts, NULL);
    (void) shutdown(*(int *) arg, SHUT_RDWR);
    return NULL;
}

Test(transport, shutdown_ends_a_wait)
{
    /* The daemon stops a channel's reader with shutdown() from the loop while the reader
     * waits: the wait must end with an error, not last for ever (the read has no deadline). */
    uint8_t buf[64];
    TransportLowat lw = TRANSPORT_LOWAT_INIT;
    pthread_t t;
    int fds[2];

    tcp_pair(fds);
    cr_assert(pthread_create(&t, NULL, shutdown_later, &fds[1]) == 0);
    cr_assert_eq(transport_read_bulk(fds[1], buf, sizeof(buf), &lw), -ENODATA);
    cr_assert(pthread_join(t, NULL) == 0);
    (void) close(fds[0]);
    (void) close(fds[1]);
}

/* Issue 10 item 4: a port is a decimal number in range, never truncated to 16 bits (getaddrinfo
 * alone takes "99999" as 34463 and "65536" as 0, a random port). */
Test(transport, ports_are_checked_not_truncated)
{
    static const struct {
        const char *address;
        bool listen_ok, connect_ok;
    } cases[] = {
        {"127.0.0.1:0", true, false},      {"127.0.0.1:1", true, true},
        {"127.0.0.1:65535", true, true},   {"127.0.0.1:65536", false, false},
        {"127.0.0.1:99999", false, false}, {"127.0.0.1:-1", false, false},
        {"127.0.0.1:+80", false, false},   {"127.0.0.1: 80", false, false},
        {"127.0.0.1:0x50", false, false},  {"127.0.0.1:", false, false},
        {"[::1]:65536", false, false},     {"127.0.0.1:0000080", true, true},
    };
    char err[256], bound[128];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int fd = -1, r;

        err[0] = '\0';
        r = transport_check_peer_address(cases[i].address, err, sizeof(err));
        cr_expect_eq(r >= 0, cases[i].connect_ok, "connect %s: %d %s", cases[i].address, r, err);
        if (!cases[i].connect_ok) {
            cr_expect(strstr(err, "from 1 to 65535") || strstr(err, "not an address"),
                      "connect %s: %s", cases[i].address, err);
        }
        r = transport_listen(cases[i].address, &fd, bound, sizeof(bound), err, sizeof(err));
        cr_expect_eq(r >= 0, cases[i].listen_ok, "listen %s: %d %s", cases[i].address, r, err);
        if (r >= 0) {
            close(fd);
        } else {
            cr_expect(strstr(err, "from 0 to 65535"), "listen %s: %s", cases[i].address, err);
        }
    }
}

/* Issue 10 item 5: which interface addresses a peer is offered for a wildcard listener. */
static struct ifaddrs *
fake_if(struct ifaddrs *next, const char *addr, unsigned flags, struct sockaddr_storage *ss)
{
    struct ifaddrs *i = calloc(1, sizeof(*i));

    memset(ss, 0, sizeof(*ss));
    if (strchr(addr, ':')) {
        ss->ss_family = AF_INET6;
        cr_assert_eq(inet_pton(AF_INET6, addr, &((struct sockaddr_in6 *) ss)->sin6_addr), 1);
    } else {
        ss->ss_family = AF_INET;
        cr_assert_eq(inet_pton(AF_INET, addr, &((struct sockaddr_in *) ss)->sin_addr), 1);
    }
    i->ifa_next = next;
    i->ifa_addr = (struct sockaddr *) ss;
    i->ifa_flags = flags;
    return i;
}

static void
free_ifs(struct ifaddrs *i)
{
    while (i) {
        struct ifaddrs *next = i->ifa_next;
        free(i);
        i = next;
    }
}

Test(transport, pick_addresses_for_a_wildcard_listener)
{
    struct sockaddr_storage ss[7];
    char out[TRANSPORT_REACHABLE_MAX][TRANSPORT_ADDRESS_MAX];
    struct ifaddrs *ifs = NULL;
    size_t n;

    ifs = fake_if(ifs, "127.0.0.1", IFF_UP | IFF_LOOPBACK, &ss[0]);
    ifs = fake_if(ifs, "::1", IFF_UP | IFF_LOOPBACK, &ss[1]);
    ifs = fake_if(ifs, "192.0.2.7", IFF_UP, &ss[2]);
    ifs = fake_if(ifs, "198.51.100.1", 0, &ss[3]); /* down */
    ifs = fake_if(ifs, "fe80::1", IFF_UP, &ss[4]);  /* link-local */
    ifs = fake_if(ifs, "2001:db8::7", IFF_UP, &ss[5]);
    ifs = fake_if(ifs, "192.0.2.7", IFF_UP, &ss[6]); /* the same address twice */

    n = transport_pick_addresses(ifs, /* v4= */ true, /* v6= */ false, 4000, out, 16);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(out[0], "192.0.2.7:4000");
    n = transport_pick_addresses(ifs, true, true, 4000, out, 16);
    cr_assert_eq(n, 2);
    cr_expect_str_eq(out[0], "192.0.2.7:4000");
    cr_expect_str_eq(out[1], "[2001:db8::7]:4000");
    n = transport_pick_addresses(ifs, false, true, 4000, out, 1);
    cr_assert_eq(n, 1, "bounded by max");
    cr_expect_str_eq(out[0], "[2001:db8::7]:4000");
    free_ifs(ifs);

    /* Only loopback up: loopback is all there is, and a host migrating to itself uses it. */
    ifs = fake_if(NULL, "127.0.0.1", IFF_UP | IFF_LOOPBACK, &ss[0]);
    ifs = fake_if(ifs, "192.0.2.7", 0, &ss[1]);
    n = transport_pick_addresses(ifs, true, false, 5, out, 16);
    cr_assert_eq(n, 1);
    cr_expect_str_eq(out[0], "127.0.0.1:5");
    free_ifs(ifs);
}
