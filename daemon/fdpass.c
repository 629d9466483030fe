/* SPDX-License-Identifier: MIT */
/*
 * fdpass — see fdpass.h; the protocol is docs/vmm-protocol.md.
 */
#include "fdpass.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>
#include <vfio-migd/vmm.h>

#include "device.h"
#include "irq.h"
#include "log_object.h"
#include "manager.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/strutil.h"

#define FDPASS_MAX_ARGS 4

typedef struct FdConn FdConn;

struct FdPass {
    Manager *manager;
    int fd; /* the listening socket, owned */
    uv_poll_t poll;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    AuthzIds users, groups;
    FdConn *conns[FDPASS_MAX_CONNECTIONS];
};

/* One VMM's connection. Freed in its poll handle's close callback. */
struct FdConn {
    uv_poll_t poll;
    FdPass *fp; /* NULL once the FdPass is gone */
    int fd;     /* owned */
    pid_t pid;
    uid_t uid;
    bool hello;
    char device[65]; /* the device it holds by id; "" none */
};

/* A received command: its words and the fds that came with it (owned until taken). */
typedef struct FdMsg {
    char text[FDPASS_MAX_MESSAGE + 1];
    char *argv[FDPASS_MAX_ARGS];
    int argc;
    int fds[FDPASS_MAX_FDS];
    size_t n_fds;
} FdMsg;

static void
msg_close_fds(FdMsg *m)
{
    for (size_t i = 0; i < m->n_fds; i++) {
        if (m->fds[i] >= 0) {
            (void)close(m->fds[i]);
        }
    }
    m->n_fds = 0;
}

/* Sends one answer, with @fds (may be 0). */
static int conn_send(FdConn *c, const int *fds, size_t n_fds, const char *fmt, ...) _printf_(4, 5);

static int
conn_send(FdConn *c, const int *fds, size_t n_fds, const char *fmt, ...)
{
    char text[FDPASS_MAX_MESSAGE];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    return vfio_migd_vmm_send(c->fd, text, (size_t) MIN(n, (int) sizeof(text) - 1), fds, n_fds,
                              MSG_DONTWAIT);
}

static int conn_error(FdConn *c, int r, const char *fmt, ...) _printf_(3, 4);

/* "ERR <ERRNO> <words>": the errno's name, then a sentence. Returns @r. */
static int
conn_error(FdConn *c, int r, const char *fmt, ...)
{
    char words[FDPASS_MAX_MESSAGE - 32];
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(words, sizeof(words), fmt, ap);
    va_end(ap);
    (void)conn_send(c, NULL, 0, "ERR %s %s", strerrorname_np(-r) ? strerrorname_np(-r) : "EIO",
                    words);
    return r;
}

/* The device this connection holds, or NULL (answered). */
static Device *
conn_device(FdConn *c)
{
    Device *d = c->device[0] ? manager_find(c->fp->manager, c->device) : NULL;

    if (!d || d->vmm_holder != c) {
        (void)conn_error(c, -ENOENT, "no device taken: send TAKE <device> first");
        return NULL;
    }
    return d;
}

/* Releases the device: the VMM's eventfds closed, every vector on the daemon's latch. */
static void
conn_release(FdConn *c)
{
    Device *d = c->device[0] && c->fp ? manager_find(c->fp->manager, c->device) : NULL;

    if (d && d->vmm_holder == c) {
        irq_vmm_drop_all(d->irq);
        d->vmm_holder = NULL;
        d->vmm_pid = 0;
        d->vmm_comm[0] = '\0';
        log_device_info(d, "Device '%s' given back by VMM pid %d; interrupts are latched.", d->id,
                        (int)c->pid);
    }
    c->device[0] = '\0';
}

static int
cmd_hello(FdConn *c, FdMsg *m)
{
    long v = strtol(m->argv[1], NULL, 10);

    if (v != FDPASS_PROTOCOL_VERSION) {
        return conn_error(c, -EPROTONOSUPPORT,
                          "protocol version %s not spoken; this daemon "
                          "speaks %d",
                          m->argv[1], FDPASS_PROTOCOL_VERSION);
    }
    c->hello = true;
    return conn_send(c, NULL, 0, "OK %d", FDPASS_PROTOCOL_VERSION);
}

/* The name of process @pid (/proc/PID/comm, at most 15 bytes), "" when it cannot be read: it
 * names the holder in `show` and `irqs`, nothing depends on it. Control characters (a
 * process names itself) become '?'. */
static void
process_comm(int pid, char ret[16])
{
    char path[64];
    _cleanup_close_ int fd = -EBADF;
    ssize_t n;

    ret[0] = '\0';
    (void)snprintf(path, sizeof(path), "/proc/%d/comm", pid);
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    n = fd < 0 ? -1 : read(fd, ret, 15);
    n = n < 0 ? 0 : n;
    ret[n] = '\0';
    ret[strcspn(ret, "\n")] = '\0';
    for (char *p = ret; *p; p++) {
        *p = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
    }
}

static int
cmd_take(FdConn *c, FdMsg *m)
{
    Device *d = strutil_id_is_valid(m->argv[1]) ? manager_find(c->fp->manager, m->argv[1]) : NULL;
    int fds[2] = {-1, -1};
    int r;

    if (!d) {
        return conn_error(c, -ENOENT, "no device '%.64s' (vfio-migctl devices lists them)",
                          m->argv[1]);
    }
    if (c->device[0]) {
        return conn_error(c, -EBUSY, "this connection holds '%s'; one device per connection",
                          c->device);
    }
    if (d->vmm_holder) {
        return conn_error(c, -EBUSY, "device '%s' is held by VMM pid %d", d->id, d->vmm_pid);
    }
    r = d->backend->ops->vmm_fds ? d->backend->ops->vmm_fds(d->backend, &fds[0], &fds[1])
                                 : -EOPNOTSUPP;
    if (r < 0) {
        return conn_error(c, r, "device '%s' cannot be handed to a VMM: %s", d->id, strerror(-r));
    }
    const IrqModel *im = irq_model(d->irq);
    r = conn_send(c, fds, fds[1] >= 0 ? 2 : 1, "OK %s %s %u %d", d->id, irq_type_name(im->type),
                  im->count, fds[1] >= 0 ? 2 : 1);
    if (r < 0) {
        return r;
    }
    (void)snprintf(c->device, sizeof(c->device), "%s", d->id);
    d->vmm_holder = c;
    d->vmm_pid = (int)c->pid;
    process_comm(d->vmm_pid, d->vmm_comm);
    log_device_info(d, "Device '%s' taken by VMM pid %d (uid %u).", d->id, (int)c->pid,
                    (unsigned)c->uid);
    return 0;
}

static int
parse_u32(const char *s, uint32_t max, uint32_t *ret)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || v > max) {
        return -EINVAL;
    }
    *ret = (uint32_t)v;
    return 0;
}

static int
cmd_enable(FdConn *c, FdMsg *m)
{
    Device *d = conn_device(c);
    IrqType t = irq_type_from_name(m->argv[1]);
    uint32_t count;
    int r;

    if (!d) {
        return -ENOENT;
    }
    if (t < 0 || parse_u32(m->argv[2], IRQ_MAX_VECTORS, &count) < 0) {
        return conn_error(c, -EINVAL,
                          "ENABLE takes intx|msi|msix and a count, got '%.16s' "
                          "'%.16s'",
                          m->argv[1], m->argv[2]);
    }
    r = irq_enable(d->irq, t, count);
    if (r < 0) {
        return conn_error(c, r,
                          "enabling %s with %u vectors on '%s' refused: %s (vfio-migctl "
                          "irqs %s shows what is enabled)",
                          m->argv[1], count, d->id, strerror(-r), d->id);
    }
    return conn_send(c, NULL, 0, "OK");
}

/* VECTORS <start> <count>, with count eventfds: each becomes its vector's trigger. */
static int
cmd_vectors(FdConn *c, FdMsg *m)
{
    Device *d = conn_device(c);
    uint32_t start, count;

    if (!d) {
        return -ENOENT;
    }
    if (parse_u32(m->argv[1], IRQ_MAX_VECTORS, &start) < 0 ||
        parse_u32(m->argv[2], FDPASS_MAX_FDS, &count) < 0 || count != m->n_fds) {
        return conn_error(c, -EINVAL,
                          "VECTORS <start> <count> must come with count eventfds "
                          "(at most %d per message); got %zu fds",
                          FDPASS_MAX_FDS, m->n_fds);
    }
    for (uint32_t i = 0; i < count; i++) {
        int r = irq_vmm_give(d->irq, start + i, m->fds[i]);
        if (r < 0) {
            return conn_error(c, r, "vector %u of '%s': %s", start + i, d->id,
                              r == -ENOENT   ? "not in use (ENABLE it first)"
                              : r == -EINVAL ? "the fd is not an eventfd"
                                             : strerror(-r));
        }
        m->fds[i] = -1; /* the Irq owns it now */
    }
    return conn_send(c, NULL, 0, "OK");
}

static int
cmd_vector_op(FdConn *c, FdMsg *m, int (*fn)(Irq *irq, uint32_t v))
{
    Device *d = conn_device(c);
    uint32_t v;
    int r;

    if (!d) {
        return -ENOENT;
    }
    if (parse_u32(m->argv[1], IRQ_MAX_VECTORS, &v) < 0) {
        return conn_error(c, -EINVAL, "'%.16s' is not a vector number", m->argv[1]);
    }
    r = fn(d->irq, v);
    if (r < 0) {
        return conn_error(c, r, "%s %u on '%s': %s", m->argv[0], v, d->id, strerror(-r));
    }
    return conn_send(c, NULL, 0, "OK");
}

static int
cmd_mask(FdConn *c, FdMsg *m)
{
    return cmd_vector_op(c, m, irq_mask);
}

static int
cmd_unmask(FdConn *c, FdMsg *m)
{
    return cmd_vector_op(c, m, irq_unmask);
}

static int
cmd_give(FdConn *c, FdMsg *m)
{
    (void)m;
    if (!conn_device(c)) {
        return -ENOENT;
    }
    conn_release(c);
    return conn_send(c, NULL, 0, "OK");
}

static const struct {
    const char *name;
    int argc; /* with the name */
    int (*fn)(FdConn *c, FdMsg *m);
} commands[] = {
    {"HELLO", 2, cmd_hello},     {"TAKE", 2, cmd_take}, {"ENABLE", 3, cmd_enable},
    {"VECTORS", 3, cmd_vectors}, {"MASK", 2, cmd_mask}, {"UNMASK", 2, cmd_unmask},
    {"GIVE", 1, cmd_give},
};

static void
conn_dispatch(FdConn *c, FdMsg *m)
{
    for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
        if (strcmp(m->argv[0], commands[i].name) != 0) {
            continue;
        }
        if (m->argc != commands[i].argc) {
            (void)conn_error(c, -EINVAL, "%s takes %d argument(s) (docs/vmm-protocol.md)",
                             commands[i].name, commands[i].argc - 1);
        } else if (!c->hello && commands[i].fn != cmd_hello) {
            (void)conn_error(c, -EPROTO, "send HELLO %d first", FDPASS_PROTOCOL_VERSION);
        } else {
            (void)commands[i].fn(c, m);
        }
        return;
    }
    (void)conn_error(c, -EINVAL, "unknown command '%.16s' (docs/vmm-protocol.md)", m->argv[0]);
}

/* Receives one message: its text split in words, its fds. 0 at the peer's close. */
static ssize_t
conn_recv(FdConn *c, FdMsg *m)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = m->text, .iov_len = FDPASS_MAX_MESSAGE};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = ctl.buf,
                        .msg_controllen = sizeof(ctl.buf)};
    ssize_t n = recvmsg(c->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);

    if (n <= 0) {
        return n < 0 ? -errno : 0;
    }
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
            size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < k && m->n_fds < FDPASS_MAX_FDS; i++) {
                memcpy(&m->fds[m->n_fds++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            }
        }
    }
    m->text[n] = '\0';
    if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        return -EMSGSIZE;
    }
    char *save = NULL;
    for (char *w = strtok_r(m->text, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
        if (m->argc == FDPASS_MAX_ARGS) {
            return -E2BIG;
        }
        m->argv[m->argc++] = w;
    }
    return m->argc > 0 ? n : -EINVAL;
}

static void
conn_on_closed(uv_handle_t *h)
{
    FdConn *c = h->data;

    (void)close(c->fd);
    free(c);
}

static void
conn_close(FdConn *c)
{
    if (c->fp) {
        conn_release(c);
        for (size_t i = 0; i < FDPASS_MAX_CONNECTIONS; i++) {
            if (c->fp->conns[i] == c) {
                c->fp->conns[i] = NULL;
            }
        }
    }
    c->fp = NULL;
    uv_close((uv_handle_t *)&c->poll, conn_on_closed);
}

static void
conn_on_ready(uv_poll_t *h, int status, int events)
{
    FdConn *c = h->data;
    _cleanup_free_ FdMsg *m = calloc(1, sizeof(*m));
    ssize_t n;

    (void)events;
    if (!m) {
        return; /* tried again at the next readiness */
    }
    n = status < 0 ? status : conn_recv(c, m);
    if (n == -EAGAIN) {
        return;
    }
    if (n == 0 || n == -ECONNRESET || status < 0) {
        msg_close_fds(m);
        conn_close(c);
        return;
    }
    if (n < 0) {
        (void)conn_error(c, (int)n,
                         "message refused: %s (commands are one line of at most "
                         "%d bytes with at most %d fds)",
                         strerror((int)-n), FDPASS_MAX_MESSAGE, FDPASS_MAX_FDS);
    } else {
        conn_dispatch(c, m);
    }
    msg_close_fds(m); /* what no command took */
}

/* Whether the peer may take devices: [vmm] allowed_users / allowed_groups. */
static bool
peer_allowed(const FdPass *fp, const struct ucred *cred)
{
    return authz_ids_contain(&fp->users, cred->uid) || authz_ids_contain(&fp->groups, cred->gid);
}

static int
conn_add(FdPass *fp, int fd, const struct ucred *cred)
{
    size_t slot = 0;

    while (slot < FDPASS_MAX_CONNECTIONS && fp->conns[slot]) {
        slot++;
    }
    if (slot == FDPASS_MAX_CONNECTIONS) {
        return -ENOSPC;
    }
    _cleanup_free_ FdConn *c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    int r = uv_poll_init(fp->manager->loop, &c->poll, fd);
    if (r < 0) {
        return r;
    }
    c->poll.data = c;
    c->fp = fp;
    c->fd = fd;
    c->pid = cred->pid;
    c->uid = cred->uid;
    uv_unref((uv_handle_t *)&c->poll); /* a VMM connected never holds up the daemon's exit */
    (void)uv_poll_start(&c->poll, UV_READABLE | UV_DISCONNECT, conn_on_ready);
    fp->conns[slot] = TAKE_PTR(c);
    return 0;
}

static void
fdpass_on_connect(uv_poll_t *h, int status, int events)
{
    FdPass *fp = h->data;
    struct ucred cred = {0};
    socklen_t len = sizeof(cred);
    FdConn tmp = {0};
    int r, fd = status < 0 ? -1 : accept4(fp->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

    (void)events;
    if (fd < 0) {
        return;
    }
    tmp.fd = fd;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || !peer_allowed(fp, &cred)) {
        log_warning("VMM socket: refused pid %d (uid %u, gid %u): not in [vmm] allowed_users "
                    "or allowed_groups.",
                    (int)cred.pid, (unsigned)cred.uid, (unsigned)cred.gid);
        (void)conn_error(&tmp, -EACCES,
                         "uid %u may not take devices: add it to [vmm] "
                         "allowed_users in vfio-migd.conf",
                         (unsigned)cred.uid);
        (void)close(fd);
        return;
    }
    r = conn_add(fp, fd, &cred);
    if (r >= 0) {
        /* The greeting first: a peer reads it (or its refusal) before it says anything, so a
         * refused peer's words are never discarded unread. */
        (void)conn_send(&tmp, NULL, 0, "VFIO-MIGD %d", FDPASS_PROTOCOL_VERSION);
    } else {
        (void)conn_error(&tmp, r, "the daemon holds %d VMM connections already",
                         FDPASS_MAX_CONNECTIONS);
        (void)close(fd);
    }
}

static int
fdpass_listen(FdPass *fp, const char *path, char *err, size_t err_size)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    if (strlen(path) >= sizeof(sa.sun_path)) {
        (void)snprintf(err, err_size, "the VMM socket path '%s' is too long", path);
        return -ENAMETOOLONG;
    }
    (void)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    (void)snprintf(fp->path, sizeof(fp->path), "%s", path);
    fp->fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fp->fd < 0) {
        return -errno;
    }
    (void)unlink(path); /* a stale socket of a previous daemon */
    if (bind(fp->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0660) < 0 ||
        listen(fp->fd, 16) < 0) {
        int r = -errno;
        (void)snprintf(err, err_size, "cannot listen on the VMM socket '%s': %s", path,
                       strerror(-r));
        return r;
    }
    return 0;
}

int
fdpass_new(Manager *m, const char *path, const AuthzIds *users, const AuthzIds *groups,
           FdPass **ret, char *err, size_t err_size)
{
    _cleanup_free_ FdPass *fp = calloc(1, sizeof(*fp));
    int r;

    if (!fp) {
        return -ENOMEM;
    }
    fp->manager = m;
    fp->users = *users;
    fp->groups = *groups;
    r = fdpass_listen(fp, path, err, err_size);
    if (r >= 0) {
        r = uv_poll_init(m->loop, &fp->poll, fp->fd);
    }
    if (r < 0) {
        if (fp->fd >= 0) {
            (void)close(fp->fd);
        }
        return r;
    }
    fp->poll.data = fp;
    uv_unref((uv_handle_t *)&fp->poll);
    (void)uv_poll_start(&fp->poll, UV_READABLE, fdpass_on_connect);
    *ret = TAKE_PTR(fp);
    return 0;
}

static void
fdpass_on_closed(uv_handle_t *h)
{
    FdPass *fp = h->data;

    (void)close(fp->fd);
    free(fp);
}

FdPass *
fdpass_free(FdPass *fp)
{
    if (!fp) {
        return NULL;
    }
    for (size_t i = 0; i < FDPASS_MAX_CONNECTIONS; i++) {
        if (fp->conns[i]) {
            conn_close(fp->conns[i]);
        }
    }
    (void)unlink(fp->path);
    uv_close((uv_handle_t *)&fp->poll, fdpass_on_closed);
    return NULL;
}

const char *
fdpass_path(const FdPass *fp)
{
    return fp->path;
}
