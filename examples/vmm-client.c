/* SPDX-License-Identifier: MIT */
/*
 * vmm-client — the reference VMM side of the VMM socket (docs/vmm-protocol.md), used by the
 * tests and bench-irq. It takes a device, enables its interrupt index when none is enabled,
 * hands the daemon one eventfd per vector (a real VMM would pass its KVM irqfds instead) and
 * prints one JSON line {"vector":V} on stdout per interrupt received. Commands on stdin, one
 * per line: "mask V", "unmask V", "give" (give the device back), "reconnect", "quit".
 * Progress and the daemon's answers go to stderr; "vmm-client: ready ..." says the vectors
 * are wired.
 *
 * With --stay, the daemon closing the connection (its restart) does not end the client: as a
 * VMM would, it keeps its eventfds and goes on receiving interrupts on them (the kernel
 * signals them, not the daemon), says "vmm-client: disconnected" and waits for "reconnect",
 * which takes the device again and hands the same eventfds over again.
 *
 *   vmm-client --socket PATH --device NAME --vectors N [--index intx|msi|msix] [--stay]
 *
 * Exit status: 0 on quit, end of stdin or SIGTERM; 1 when the daemon refused.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MSG_CMSG_CLOEXEC, POLLRDHUP */
#endif
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <vfio-migd/vmm.h>

#define MAX_VECTORS 2048
#define MAX_FDS_PER_MESSAGE VFIO_MIGD_VMM_MAX_FDS
#define MAX_MESSAGE VFIO_MIGD_VMM_MAX_MESSAGE

static int efd[MAX_VECTORS];
static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    (void) sig;
    stop = 1;
}

/* Sends @text with @n fds. */
static int
send_msg(int sock, const char *text, const int *fds, size_t n)
{
    return vfio_migd_vmm_send(sock, text, strlen(text), fds, n, 0);
}

/* Receives one answer into @text; the fds that came with it into @fds (up to 2). Returns
 * 0 for "OK ...", -1 for anything else (printed). */
static int
recv_answer(int sock, char *text, int *fds, size_t *n_fds)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * 2)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = { .iov_base = text, .iov_len = MAX_MESSAGE - 1 };
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                         .msg_controllen = sizeof(ctl.buf) };
    ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);

    if (n <= 0) {
        text[0] = '\0';
        fprintf(stderr, "vmm-client: the daemon closed the connection\n");
        return -1;
    }
    text[n] = '\0';
    if (n_fds) {
        *n_fds = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
            size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k && *n_fds < 2; i++) {
                memcpy(&fds[(*n_fds)++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            }
        }
    }
    fprintf(stderr, "vmm-client: %s\n", text);
    return strncmp(text, "OK", 2) == 0 ? 0 : -1;
}

static int
command(int sock, const char *text)
{
    char answer[MAX_MESSAGE];

    if (send_msg(sock, text, NULL, 0) < 0) {
        return -1;
    }
    return recv_answer(sock, answer, NULL, NULL);
}

static int
connect_to(const char *path)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

    if (sock < 0 || strlen(path) >= sizeof(sa.sun_path)) {
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (connect(sock, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
        fprintf(stderr, "vmm-client: cannot connect to '%s': %m\n", path);
        close(sock);
        return -1;
    }
    return sock;
}

/* HELLO, TAKE, ENABLE (when nothing is enabled), VECTORS in chunks of 253. */
static int
take_device(int sock, const char *device, const char *index, unsigned n)
{
    char text[MAX_MESSAGE], answer[MAX_MESSAGE], got_index[16] = "";
    int fds[2];
    size_t n_fds = 0;
    unsigned count = 0;

    /* The daemon speaks first: "VFIO-MIGD <version>", or why it refuses this process. */
    if (recv_answer(sock, answer, NULL, NULL) < 0 && strncmp(answer, "VFIO-MIGD ", 10) != 0) {
        return -1;
    }
    if (command(sock, "HELLO 1") < 0) {
        return -1;
    }
    (void) snprintf(text, sizeof(text), "TAKE %s", device);
    if (send_msg(sock, text, NULL, 0) < 0 || recv_answer(sock, answer, fds, &n_fds) < 0) {
        return -1;
    }
    /* A real VMM keeps the device fd and maps guest memory through the DMA fd. */
    for (size_t i = 0; i < n_fds; i++) {
        close(fds[i]);
    }
    if (sscanf(answer, "OK %*s %15s %u", got_index, &count) != 2) {
        return -1;
    }
    if (strcmp(got_index, "none") == 0) {
        (void) snprintf(text, sizeof(text), "ENABLE %s %u", index, n);
        if (command(sock, text) < 0) {
            return -1;
        }
    }
    for (unsigned start = 0; start < n; start += MAX_FDS_PER_MESSAGE) {
        unsigned k = n - start < MAX_FDS_PER_MESSAGE ? n - start : MAX_FDS_PER_MESSAGE;
        (void) snprintf(text, sizeof(text), "VECTORS %u %u", start, k);
        if (send_msg(sock, text, efd + start, k) < 0 || recv_answer(sock, answer, NULL, NULL) < 0) {
            return -1;
        }
    }
    fprintf(stderr, "vmm-client: ready: %s, %u vectors wired\n", device, n);
    return 0;
}

static const char *socket_path, *device, *index_name = "msix";
static unsigned n_vectors;

/* Connects and takes the device; -1 when that fails. */
static int
connect_and_take(void)
{
    int sock = connect_to(socket_path);

    if (sock >= 0 && take_device(sock, device, index_name, n_vectors) < 0) {
        close(sock);
        return -1;
    }
    return sock;
}

/* One stdin line: "mask V", "unmask V", "give", "reconnect", "quit". 1 to quit. */
static int
stdin_command(int *sock, char *line)
{
    char text[MAX_MESSAGE];
    unsigned v;

    line[strcspn(line, "\r\n")] = '\0';
    if (strcmp(line, "quit") == 0) {
        return 1;
    }
    if (strcmp(line, "reconnect") == 0) {
        if (*sock >= 0) {
            close(*sock);
        }
        *sock = connect_and_take();
    } else if (*sock < 0) {
        fprintf(stderr, "vmm-client: not connected ('reconnect' first)\n");
    } else if (strcmp(line, "give") == 0) {
        (void) command(*sock, "GIVE");
    } else if (sscanf(line, "mask %u", &v) == 1) {
        (void) snprintf(text, sizeof(text), "MASK %u", v);
        (void) command(*sock, text);
    } else if (sscanf(line, "unmask %u", &v) == 1) {
        (void) snprintf(text, sizeof(text), "UNMASK %u", v);
        (void) command(*sock, text);
    } else if (line[0]) {
        fprintf(stderr, "vmm-client: unknown command '%s' (mask V, unmask V, give, reconnect, "
                        "quit)\n", line);
    }
    fprintf(stderr, "vmm-client: done: %s\n", line);
    return 0;
}

/* Prints {"vector":V} once per interrupt counted on @v's eventfd. */
static void
drain_vector(unsigned v)
{
    eventfd_t count = 0;

    if (eventfd_read(efd[v], &count) == 0) {
        for (eventfd_t i = 0; i < count; i++) {
            printf("{\"vector\":%u}\n", v);
        }
    }
}

static int
run(int sock, unsigned n, bool stay)
{
    static struct pollfd pfd[MAX_VECTORS + 2];
    char line[256];

    while (!stop) {
        pfd[0] = (struct pollfd) { .fd = 0, .events = POLLIN };
        /* -1: ignored. POLLIN: between commands the daemon says nothing, except a last
         * "ERR ENODEV ..." before it closes (the kernel wants the device back). */
        pfd[1] = (struct pollfd) { .fd = sock, .events = POLLIN | POLLRDHUP };
        for (unsigned v = 0; v < n; v++) {
            pfd[v + 2] = (struct pollfd) { .fd = efd[v], .events = POLLIN };
        }
        if (poll(pfd, n + 2, -1) < 0) {
            continue; /* EINTR: a signal, stop is set */
        }
        for (unsigned v = 0; v < n; v++) {
            if (pfd[v + 2].revents & POLLIN) {
                drain_vector(v);
            }
        }
        if (sock >= 0 && (pfd[1].revents & POLLIN)) {
            char last[MAX_MESSAGE];
            (void) recv_answer(sock, last, NULL, NULL); /* printed */
        }
        if (sock >= 0 && (pfd[1].revents & (POLLHUP | POLLRDHUP | POLLERR))) {
            fprintf(stderr, "vmm-client: the daemon closed the connection\n");
            if (!stay) {
                return 1;
            }
            close(sock);
            sock = -1;
            fprintf(stderr, "vmm-client: disconnected\n");
        }
        if (pfd[0].revents & (POLLIN | POLLHUP)) {
            if (!fgets(line, sizeof(line), stdin)) {
                return 0; /* end of stdin: quit, as documented (a test's "take and go") */
            } else if (stdin_command(&sock, line) == 1) {
                return 0;
            }
        }
    }
    return 0;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        { "socket", required_argument, NULL, 's' }, { "device", required_argument, NULL, 'd' },
        { "vectors", required_argument, NULL, 'n' }, { "index", required_argument, NULL, 'i' },
        { "stay", no_argument, NULL, 'S' },          { "help", no_argument, NULL, 'h' },
        {},
    };
    bool stay = false;
    long n = 0;
    int c, sock;

    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': socket_path = optarg; break;
        case 'd': device = optarg; break;
        case 'n': n = strtol(optarg, NULL, 10); break;
        case 'i': index_name = optarg; break;
        case 'S': stay = true; break;
        default:
            fprintf(stderr, "usage: vmm-client --socket PATH --device NAME --vectors N "
                            "[--index intx|msi|msix] [--stay]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (!socket_path || !device || n < 1 || n > MAX_VECTORS) {
        fprintf(stderr, "vmm-client: --socket, --device and --vectors 1-%d are needed\n",
                MAX_VECTORS);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* poll() sees only what stdio has not read ahead: one line per wake-up, none kept back. */
    setvbuf(stdin, NULL, _IONBF, 0);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    for (long v = 0; v < n; v++) {
        efd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (efd[v] < 0) {
            return 1;
        }
    }
    n_vectors = (unsigned) n;
    sock = connect_and_take();
    if (sock < 0) {
        return 1;
    }
    return run(sock, (unsigned) n, stay);
}
