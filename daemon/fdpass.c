/* SPDX-License-Identifier: MIT */
/*
 * fdpass — see fdpass.h; the protocol is docs/vmm-protocol.md. What a message says is
 * core/vmm_proto.c's to read (pure, unit-tested and fuzzed); here are the socket, the
 * connection's state (HELLO first, the device it holds) and the commands' effects.
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

#include "core/vmm_proto.h"
#include "device.h"
#include "irq.h"
#include "log_object.h"
#include "manager.h"
#include "util/cleanup.h"
#include "util/fdcheck.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/strutil.h"

static_assert(VMM_PROTO_MAX_MESSAGE == FDPASS_MAX_MESSAGE && VMM_PROTO_MAX_FDS == FDPASS_MAX_FDS &&
                  VMM_PROTO_VERSION == FDPASS_PROTOCOL_VERSION,
              "core/vmm_proto.h and include/vfio-migd/vmm.h disagree");

typedef struct FdConn FdConn;

struct FdPass {
    Manager *manager;
    int fd; /* the listening socket, owned */
    uv_poll_t poll;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    /* [vmm] allowed_users / allowed_groups: borrowed from the Config, whose lists a reload
     * (SIGHUP) replaces in place, so the next check follows it */
    const AuthzIds *users, *groups;
    FdConn *conns[FDPASS_MAX_CONNECTIONS];
};

/* One VMM's connection. Freed in its poll handle's close callback. */
struct FdConn {
    uv_poll_t poll;
    FdPass *fp; /* NULL once the FdPass is gone */
    int fd;     /* owned */
    pid_t pid;
    uid_t uid;
    gid_t gid; /* SO_PEERCRED's: what the allow-lists are checked against */
    bool hello;
    char device[65]; /* the device it holds by id; "" none */
};

/* A received message: its bytes and the fds that came with it (owned until taken). */
typedef struct FdMsg {
    char text[FDPASS_MAX_MESSAGE + 1]; /* one byte more than allowed: a longer one is seen */
    size_t size;
    int fds[FDPASS_MAX_FDS];
    size_t n_fds;
    bool fds_cut; /* more fds came than fit: the message is refused */
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

/* The global VMM allow-list as it is now. */
static AuthzVmmList
fdpass_global(const FdPass *fp)
{
    return (AuthzVmmList){.users = *fp->users, .groups = *fp->groups};
}

/* Whether this connection's peer may take and drive @d: its own VMM allow-list when it has
 * one, else the global one (authz_vmm_admits()). Answers the refusal, and logs it. */
static bool
conn_admitted(FdConn *c, Device *d)
{
    bool own = authz_vmm_list_is_set(&d->vmm_allow);
    AuthzVmmList global = fdpass_global(c->fp);

    if (authz_vmm_admits(&global, &d->vmm_allow, c->uid, c->gid)) {
        return true;
    }
    log_device_warning(d, "VMM pid %d (uid %u, gid %u) refused device '%s': not on %s.",
                       (int)c->pid, (unsigned)c->uid, (unsigned)c->gid, d->id,
                       own ? "the device's own VMM allow-list"
                           : "[vmm] allowed_users or allowed_groups");
    if (own) {
        (void)conn_error(c, -EACCES,
                         "uid %u (gid %u) may not take device '%s': its own VMM allow-list "
                         "does not name it (vfio-migctl show %s lists it; attach the device "
                         "with --vmm-users %u to admit this uid)",
                         (unsigned)c->uid, (unsigned)c->gid, d->id, d->id, (unsigned)c->uid);
    } else {
        (void)conn_error(c, -EACCES,
                         "uid %u (gid %u) may not take device '%s': it follows [vmm] "
                         "allowed_users and allowed_groups, which do not name it (add it there "
                         "in vfio-migd.conf, or attach the device with --vmm-users %u)",
                         (unsigned)c->uid, (unsigned)c->gid, d->id, (unsigned)c->uid);
    }
    return false;
}

/* The device this connection holds (and, when @admitted, may still drive: conn_admitted()),
 * or NULL (answered). */
static Device *
conn_device(FdConn *c, bool admitted)
{
    Device *d = c->device[0] ? manager_find(c->fp->manager, c->device) : NULL;

    if (!d || d->vmm_holder != c) {
        (void)conn_error(c, -ENOENT, "no device taken: send TAKE <device> first");
        return NULL;
    }
    return !admitted || conn_admitted(c, d) ? d : NULL;
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

/* A command, once vmm_proto_parse() accepted it and the connection's preconditions hold:
 * @d is the device the connection holds for a command that needs one, else NULL. */
typedef int (*FdCmdFn)(FdConn *c, Device *d, const VmmCommand *cmd, FdMsg *m);

static int
cmd_hello(FdConn *c, Device *d, const VmmCommand *cmd, FdMsg *m)
{
    (void)d;
    (void)cmd; /* vmm_proto_parse() accepted the version: the one this daemon speaks */
    (void)m;
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
cmd_take(FdConn *c, Device *held, const VmmCommand *cmd, FdMsg *m)
{
    Device *d = manager_find(c->fp->manager, cmd->device);
    int fds[2] = {-1, -1};
    int r;

    (void)held;
    (void)m;
    if (!d) {
        return conn_error(c, -ENOENT, "no device '%s' (vfio-migctl devices lists them)",
                          cmd->device);
    }
    if (!conn_admitted(c, d)) {
        return -EACCES;
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
cmd_enable(FdConn *c, Device *d, const VmmCommand *cmd, FdMsg *m)
{
    int r = irq_enable(d->irq, cmd->index, cmd->count);

    (void)m;
    if (r < 0) {
        return conn_error(c, r,
                          "enabling %s with %u vectors on '%s' refused: %s (vfio-migctl "
                          "irqs %s shows what is enabled)",
                          irq_type_name(cmd->index), cmd->count, d->id, strerror(-r), d->id);
    }
    return conn_send(c, NULL, 0, "OK");
}

/* VECTORS <start> <count>, with count eventfds: each becomes its vector's trigger. */
static int
cmd_vectors(FdConn *c, Device *d, const VmmCommand *cmd, FdMsg *m)
{
    const IrqModel *im = irq_model(d->irq);

    /* Every vector and fd checked before the first is given: a bad one at the end of the
     * range would otherwise leave the vectors before it given and the message refused. */
    for (uint32_t i = 0; i < cmd->count; i++) {
        uint32_t v = cmd->start + i; /* < IRQ_MAX_VECTORS: vmm_proto_parse() checked */

        if (v >= im->count || !im->vec[v].in_use) {
            return conn_error(c, -ENOENT, "vector %u of '%s': not in use (ENABLE it first)", v,
                              d->id);
        }
        if (fdcheck_is_eventfd(m->fds[i]) < 0) {
            return conn_error(c, -EINVAL, "vector %u of '%s': the fd is not an eventfd", v,
                              d->id);
        }
    }
    for (uint32_t i = 0; i < cmd->count; i++) {
        int r = irq_vmm_give(d->irq, cmd->start + i, m->fds[i]);
        if (r < 0) {
            return conn_error(c, r, "vector %u of '%s': %s", cmd->start + i, d->id,
                              r == -ENOENT   ? "not in use (ENABLE it first)"
                              : r == -EINVAL ? "the fd is not an eventfd"
                                             : strerror(-r));
        }
        m->fds[i] = -1; /* the Irq owns it now */
    }
    return conn_send(c, NULL, 0, "OK");
}

static int
cmd_vector_op(FdConn *c, Device *d, const VmmCommand *cmd, int (*fn)(Irq *irq, uint32_t v))
{
    int r = fn(d->irq, cmd->vector);

    if (r < 0) {
        return conn_error(c, r, "%s %u on '%s': %s", vmm_proto_verb_name(cmd->verb), cmd->vector,
                          d->id, strerror(-r));
    }
    return conn_send(c, NULL, 0, "OK");
}

static int
cmd_mask(FdConn *c, Device *d, const VmmCommand *cmd, FdMsg *m)
{
    (void)m;
    return cmd_vector_op(c, d, cmd, irq_mask);
}

static int
cmd_unmask(FdConn *c, Device *d, const VmmCommand *cmd, FdMsg *m)
{
    (void)m;
    return cmd_vector_op(c, d, cmd, irq_unmask);
}

static int
cmd_give(FdConn *c, Device *d, const VmmCommand *cmd, FdMsg *m)
{
    (void)d;
    (void)cmd;
    (void)m;
    conn_release(c);
    return conn_send(c, NULL, 0, "OK");
}

static const struct {
    FdCmdFn fn;
    bool needs_device; /* one taken on this connection (checked before the arguments) */
    /* ... and the peer still on its allow-list: every command that drives the device; giving
     * it back (GIVE) only takes something away from the peer */
    bool admitted;
} commands[] = {
    [VMM_VERB_HELLO] = {cmd_hello, false, false},  [VMM_VERB_TAKE] = {cmd_take, false, false},
    [VMM_VERB_ENABLE] = {cmd_enable, true, true},  [VMM_VERB_VECTORS] = {cmd_vectors, true, true},
    [VMM_VERB_MASK] = {cmd_mask, true, true},      [VMM_VERB_UNMASK] = {cmd_unmask, true, true},
    [VMM_VERB_GIVE] = {cmd_give, true, false},
};
static_assert(ELEMENTSOF(commands) == _VMM_VERB_MAX, "commands out of sync with VmmVerb");

/* Answers one message. The order of the checks is the protocol's: the message and its verb,
 * then HELLO first, then a device taken, then the command's arguments and fds. */
static void
conn_dispatch(FdConn *c, FdMsg *m)
{
    VmmCommand cmd;
    Device *d = NULL;

    (void)vmm_proto_parse(m->text, m->size, m->fds_cut ? FDPASS_MAX_FDS + 1 : m->n_fds, &cmd);
    if (cmd.verb < 0) {
        (void)conn_error(c, cmd.error, "%s", cmd.why);
        return;
    }
    if (!c->hello && cmd.verb != VMM_VERB_HELLO) {
        (void)conn_error(c, -EPROTO, "send HELLO %d first", FDPASS_PROTOCOL_VERSION);
        return;
    }
    if (commands[cmd.verb].needs_device) {
        d = conn_device(c, commands[cmd.verb].admitted);
        if (!d) {
            return;
        }
    }
    if (cmd.error < 0) {
        (void)conn_error(c, cmd.error, "%s", cmd.why);
        return;
    }
    (void)commands[cmd.verb].fn(c, d, &cmd, m);
}

/* Receives one message: its bytes, its fds. 0 at the peer's close. */
static ssize_t
conn_recv(FdConn *c, FdMsg *m)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * FDPASS_MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    struct iovec iov = {.iov_base = m->text, .iov_len = sizeof(m->text)};
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
    /* A message longer than the buffer fills it (MSG_TRUNC): one byte over the limit, which
     * vmm_proto_parse() refuses as too long. */
    m->size = (size_t)n;
    m->fds_cut = (mh.msg_flags & MSG_CTRUNC) != 0;
    return n;
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

void
fdpass_release_holder(Device *d, const char *why)
{
    FdConn *c = (FdConn *) d->vmm_holder;

    if (!c || !c->fp) {
        return;
    }
    /* Unasked, as the last message: an ERR a VMM reads either as the answer to the command it
     * sent or when it next reads; then the close, which gives the device back. */
    (void) conn_error(c, -ENODEV, "%s; close your copies of its fds (device and DMA fd): the "
                      "kernel's unbind waits for them", why);
    log_device_notice(d, "Device '%s': VMM pid %d is told the kernel wants it back, and its "
                      "connection is closed.", d->id, (int) c->pid);
    conn_close(c);
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
        (void)conn_error(c, (int)n, "message not received: %s", strerror((int)-n));
    } else {
        conn_dispatch(c, m);
    }
    msg_close_fds(m); /* what no command took */
}

/* Whether the peer may take any device now: the global list ([vmm] allowed_users /
 * allowed_groups) or a device's own list names it. Which device it may take is TAKE's
 * question (conn_admitted()); this one keeps everyone else off the socket. */
static bool
peer_allowed(const FdPass *fp, const struct ucred *cred)
{
    const Manager *m = fp->manager;
    AuthzVmmList global = fdpass_global(fp);

    if (authz_vmm_admits(&global, NULL, cred->uid, cred->gid)) {
        return true;
    }
    for (size_t i = 0; i < m->n_devices; i++) {
        const AuthzVmmList *own = &m->devices[i]->vmm_allow;

        if (authz_vmm_list_is_set(own) && authz_vmm_admits(&global, own, cred->uid, cred->gid)) {
            return true;
        }
    }
    return false;
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
    c->gid = cred->gid;
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
                    "or allowed_groups, nor in any device's own VMM allow-list.",
                    (int)cred.pid, (unsigned)cred.uid, (unsigned)cred.gid);
        (void)conn_error(&tmp, -EACCES,
                         "uid %u may not take devices: add it to [vmm] "
                         "allowed_users in vfio-migd.conf, or attach a device with "
                         "--vmm-users %u",
                         (unsigned)cred.uid, (unsigned)cred.uid);
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
    fp->users = users;
    fp->groups = groups;
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
