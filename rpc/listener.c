/* SPDX-License-Identifier: MIT */
/*
 * listener — see listener.h.
 *
 * The plan: rpc_listener_new() takes the lock and makes the socket, or checks and adopts
 * systemd's; rpc_listener_start() polls it; each wake-up accepts up to ACCEPT_BATCH
 * connections, each one checked (credentials, a free slot) and handed on, or refused. A
 * failing accept() pauses the poll on a timer instead of returning to a socket that is
 * still readable.
 */
#include "listener.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/accept.h"
#include "util/cleanup.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/macro.h"
#include "util/ratelimit.h"

/* Log lines a peer can cause: at most 5 per 10 s of each kind, then one with the count of
 * those left out. */
#define LOG_INTERVAL_NS (10ull * 1000000000ull)
#define LOG_BURST 5

typedef struct Conn {
    int fd;             /* -EBADF: a free slot */
    dev_t dev;          /* the socket's identity: tells our connection from a later file */
    ino_t ino;          /* that got the same fd number after gRPC closed ours */
    struct ucred cred;  /* SO_PEERCRED when accepted */
} Conn;

struct RpcListener {
    uv_loop_t *loop;
    int fd;                /* the listening socket; -EBADF once stopped */
    bool activated;        /* systemd's socket: never unlinked here */
    bool bound_here;       /* we made the socket file: unlinked when we stop */
    unsigned socket_mode;
    bool socket_gid_set;
    gid_t socket_gid;
    char *path;            /* where it listens; "@name" for an abstract socket */
    int lock_fd;           /* flock on "<path>.lock" while we serve */
    rpc_listener_connection_fn on_connection;
    void *userdata;

    uv_poll_t poll;
    uv_timer_t backoff;
    bool started;          /* the two handles exist */
    bool stopped;
    AcceptPause pause;     /* accept() out of fds: how long polling stops */

    Conn *conns;           /* max_conns slots */
    unsigned max_conns;
    RateLimit refuse_rl;
    RateLimit fail_rl;
    RpcListenerStats stats;
};

/* ---- the connection table */

static bool
conn_alive(const Conn *c)
{
    struct stat st;

    return c->fd >= 0 && fstat(c->fd, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino;
}

/* Frees the slots of connections gRPC has closed; returns the open ones. */
static unsigned
listener_sweep(RpcListener *l)
{
    unsigned n = 0;

    for (unsigned i = 0; i < l->max_conns; i++) {
        if (conn_alive(&l->conns[i])) {
            n++;
        } else {
            l->conns[i].fd = -EBADF;
        }
    }
    return n;
}

/* The slot for a new connection on @fd: the one that held the same fd number (accept() just
 * returned it, so that connection is gone), else a free one, else one freed by a sweep.
 * NULL when max_conns connections are open. */
static Conn *
listener_slot(RpcListener *l, int fd)
{
    Conn *free_slot = NULL;

    for (unsigned i = 0; i < l->max_conns; i++) {
        if (l->conns[i].fd == fd) {
            return &l->conns[i];
        }
        if (!free_slot && l->conns[i].fd < 0) {
            free_slot = &l->conns[i];
        }
    }
    if (free_slot || listener_sweep(l) == l->max_conns) {
        return free_slot;
    }
    for (unsigned i = 0; i < l->max_conns; i++) {
        if (l->conns[i].fd < 0) {
            return &l->conns[i];
        }
    }
    return NULL;
}

/* No conn_alive() here: a call's connection is open while the call lives (listener.h). */
int
rpc_listener_peer_cred(RpcListener *l, int fd, struct ucred *ret)
{
    for (unsigned i = 0; fd >= 0 && i < l->max_conns; i++) {
        if (l->conns[i].fd == fd) {
            *ret = l->conns[i].cred;
            return 0;
        }
    }
    return -ENOENT;
}

unsigned
rpc_listener_connections(RpcListener *l)
{
    return listener_sweep(l);
}

RpcListenerStats
rpc_listener_stats(const RpcListener *l)
{
    return l->stats;
}

const char *
rpc_listener_path(const RpcListener *l)
{
    return l->path;
}

bool
rpc_listener_activated(const RpcListener *l)
{
    return l->activated;
}

/* ---- accepting */

static void on_readable(uv_poll_t *p, int status, int events);

static void
on_backoff_done(uv_timer_t *t)
{
    RpcListener *l = t->data;

    if (!l->stopped) {
        (void) uv_poll_start(&l->poll, UV_READABLE, on_readable);
    }
}

/* Stops polling for a while (util/accept.h): the socket stays readable while connections
 * wait, and polling it again at once would spin the loop without freeing anything. */
static void
listener_pause(void *userdata, int r)
{
    RpcListener *l = userdata;
    unsigned suppressed = 0, ms = accept_pause_next(&l->pause);

    l->stats.backoffs++;
    if (ratelimit_below(&l->fail_rl, clock_now_ns(), &suppressed)) {
        (void) log_warning_errno(r, "Cannot accept API connections: %m; pausing accepts for %u ms "
                                 "(pauses not logged before this one: %u). Raise LimitNOFILE= "
                                 "(ulimit -n) or lower --max-connections.",
                                 ms, suppressed);
    }
    (void) uv_poll_stop(&l->poll);
    (void) uv_timer_start(&l->backoff, on_backoff_done, ms, 0);
}

static void
listener_refuse(RpcListener *l, int fd, const struct ucred *cred)
{
    unsigned suppressed = 0;

    (void) close(fd);
    l->stats.refused++;
    if (ratelimit_below(&l->refuse_rl, clock_now_ns(), &suppressed)) {
        log_warning("Refused an API connection from pid %d (uid %u): %u connections are open, "
                    "the maximum (refusals not logged before this one: %u). Raise "
                    "--max-connections if that many clients are expected.",
                    (int) cred->pid, (unsigned) cred->uid, l->max_conns, suppressed);
    }
}

/* Records @fd and hands it on, or refuses it when max_conns are open. */
static void
listener_admit(RpcListener *l, int fd, const struct ucred *cred)
{
    struct stat st;
    Conn *c;

    if (fstat(fd, &st) < 0) {
        (void) log_warning_errno(-errno, "Cannot fstat a new API connection, closing it: %m");
        (void) close(fd);
        return;
    }
    c = listener_slot(l, fd);
    if (!c) {
        listener_refuse(l, fd, cred);
        return;
    }
    *c = (Conn){.fd = fd, .dev = st.st_dev, .ino = st.st_ino, .cred = *cred};
    l->stats.accepted++;
    accept_pause_reset(&l->pause);
    l->on_connection(fd, cred, l->userdata);
}

/* A new connection: its credentials, then listener_admit(); false once the listener stopped. */
static bool
listener_take(void *userdata, int fd)
{
    RpcListener *l = userdata;
    struct ucred cred = {0};
    socklen_t len = sizeof(cred);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
        (void) log_warning_errno(-errno, "Cannot read the credentials of a new API "
                                 "connection, closing it: %m");
        (void) close(fd);
        return !l->stopped;
    }
    listener_admit(l, fd, &cred);
    return !l->stopped;
}

static void
on_readable(uv_poll_t *p, int status, int events)
{
    RpcListener *l = p->data;

    (void) events;
    accept_wakeup(l->fd, status, listener_take, listener_pause, l, &l->stats.accept_calls,
                  /* failures= */ NULL);
}

int
rpc_listener_start(RpcListener *l)
{
    int r;

    assert(!l->started && !l->stopped);
    r = uv_poll_init(l->loop, &l->poll, l->fd);
    if (r < 0) {
        return r;
    }
    (void) uv_timer_init(l->loop, &l->backoff);
    l->poll.data = l->backoff.data = l;
    l->started = true;
    /* Fails only for bad arguments or a closing handle: neither can be the case here. */
    (void) uv_poll_start(&l->poll, UV_READABLE, on_readable);
    return 0;
}

void
rpc_listener_stop(RpcListener *l)
{
    if (!l || l->stopped) {
        return;
    }
    l->stopped = true;
    if (l->started) {
        /* Closing the poll handle takes the fd out of epoll at once: closing the fd after
         * it is safe (libuv wants no fd closed under an active poll). */
        uv_close((uv_handle_t *) &l->poll, NULL);
        uv_close((uv_handle_t *) &l->backoff, NULL);
    }
    if (l->bound_here) {
        (void) unlink(l->path);
    }
    if (l->fd >= 0) {
        (void) close(TAKE_FD(l->fd));
    }
}

RpcListener *
rpc_listener_free(RpcListener *l)
{
    if (!l) {
        return NULL;
    }
    assert(!l->started || l->stopped); /* and the loop has run the close callbacks since */
    rpc_listener_stop(l);
    if (l->lock_fd >= 0) {
        (void) close(l->lock_fd);
    }
    free(l->conns);
    free(l->path);
    free(l);
    return NULL;
}

/* ---- making or adopting the socket */

static int
mkdir_parents(const char *path)
{
    _cleanup_free_ char *dir = strdup(path);
    char *slash;

    if (!dir) {
        return -ENOMEM;
    }
    for (slash = strchr(dir + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
            return -errno;
        }
        *slash = '/';
    }
    return 0;
}

/* The lock file, as root and next to a socket in a directory others may write to: never
 * through a symbolic link (O_NOFOLLOW), never anything but a regular file (O_NONBLOCK so a
 * FIFO does not block the open; fstat). Truncating whatever a link pointed at was the bug. */
static int
listener_open_lock(const char *lock_path, int *ret_fd, char *err, size_t err_size)
{
    _cleanup_close_ int fd = open(lock_path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK |
                                                 O_NOCTTY | O_CLOEXEC, 0600);
    struct stat st;
    int r;

    if (fd < 0 && errno == ELOOP) {
        (void) snprintf(err, err_size, "the lock file '%s' is a symbolic link, and vfio-migd "
                        "follows none there: remove it (rm '%s')", lock_path, lock_path);
        return -ELOOP;
    }
    if (fd < 0 || fstat(fd, &st) < 0) {
        r = -errno;
        (void) snprintf(err, err_size, "cannot open lock file '%s': %s", lock_path, strerror(-r));
        return r;
    }
    if (!S_ISREG(st.st_mode)) {
        (void) snprintf(err, err_size, "the lock file '%s' is not a regular file: remove it "
                        "(rm '%s')", lock_path, lock_path);
        return -EINVAL;
    }
    *ret_fd = TAKE_FD(fd);
    return 0;
}

/* Binding a unix socket needs its path free, so a daemon replaces a stale socket left by a
 * dead one; without this lock it would take a live socket over just the same (and gRPC did
 * so silently, grpc-core.md pitfall 4). The lock file holds the pid of the daemon that has
 * it, for the refusal. */
static int
listener_take_lock(RpcListener *l, char *err, size_t err_size)
{
    _cleanup_free_ char *lock_path = NULL;
    char pid_text[32] = "";
    int r;

    if (asprintf(&lock_path, "%s.lock", l->path) < 0) {
        return -ENOMEM;
    }
    r = mkdir_parents(lock_path);
    if (r < 0) {
        (void) snprintf(err, err_size, "cannot create the directory of '%s': %s", l->path,
                        strerror(-r));
        return r;
    }
    r = listener_open_lock(lock_path, &l->lock_fd, err, err_size);
    if (r < 0) {
        return r;
    }
    if (flock(l->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        r = errno == EWOULDBLOCK ? -EADDRINUSE : -errno;
        ssize_t n = pread(l->lock_fd, pid_text, sizeof(pid_text) - 1, 0);
        pid_text[n > 0 ? n : 0] = '\0';
        pid_text[strcspn(pid_text, "\n")] = '\0';
        (void) snprintf(err, err_size, "another vfio-migd%s%s%s already serves '%s'",
                        *pid_text ? " (pid " : "", pid_text, *pid_text ? ")" : "", l->path);
        (void) close(TAKE_FD(l->lock_fd));
        return r;
    }
    (void) snprintf(pid_text, sizeof(pid_text), "%d\n", (int) getpid());
    if (ftruncate(l->lock_fd, 0) < 0 || pwrite(l->lock_fd, pid_text, strlen(pid_text), 0) < 0) {
        (void) log_warning_errno(-errno, "Cannot record our pid in '%s', ignoring: %m",
                                 lock_path);
    }
    return 0;
}

/* Who may call: the socket's group and mode (the configuration's [api] socket_group and
 * socket_mode; never world-accessible, DESIGN §12). A socket that cannot be given them is
 * not served: it would let in others than the administrator meant, or keep out operators. */
static int
listener_set_permissions(RpcListener *l, char *err, size_t err_size)
{
    int r;

    if (l->socket_gid_set && chown(l->path, (uid_t) -1, l->socket_gid) < 0) {
        r = -errno;
        (void) snprintf(err, err_size, "cannot give the socket '%s' to group %u: %s (the daemon "
                        "must run as root with CAP_CHOWN, or be a member of that group)", l->path,
                        (unsigned) l->socket_gid, strerror(-r));
        return r;
    }
    if (chmod(l->path, l->socket_mode) < 0) {
        r = -errno;
        (void) snprintf(err, err_size, "cannot set the mode of the socket '%s' to %04o: %s",
                        l->path, l->socket_mode, strerror(-r));
        return r;
    }
    return 0;
}

static int
listener_make_socket(RpcListener *l, char *err, size_t err_size)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    _cleanup_close_ int fd = -EBADF;
    struct stat st;
    int r;

    if (lstat(l->path, &st) == 0 && !S_ISSOCK(st.st_mode)) {
        (void) snprintf(err, err_size, "'%s' exists and is not a socket; remove it or choose "
                        "another --socket", l->path);
        return -EEXIST;
    }
    /* A socket there is a dead daemon's: we hold the lock, so no daemon serves it. */
    if (unlink(l->path) < 0 && errno != ENOENT) {
        r = -errno;
        (void) snprintf(err, err_size, "cannot remove the stale socket '%s': %s", l->path,
                        strerror(-r));
        return r;
    }
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        r = -errno;
        (void) snprintf(err, err_size, "cannot make a unix socket: %s", strerror(-r));
        return r;
    }
    memcpy(sa.sun_path, l->path, strlen(l->path));
    if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
        r = -errno;
        (void) snprintf(err, err_size, "cannot listen on '%s': %s (check the directory's "
                        "permissions)", l->path, strerror(-r));
        return r;
    }
    l->bound_here = true;
    r = listener_set_permissions(l, err, err_size);
    if (r < 0) {
        return r;
    }
    if (listen(fd, SOMAXCONN) < 0) {
        r = -errno;
        (void) snprintf(err, err_size, "cannot listen on '%s': %s", l->path, strerror(-r));
        return r;
    }
    l->fd = TAKE_FD(fd);
    return 0;
}

/* What is wrong with an adopted fd, or NULL when it is a listening AF_UNIX stream socket. */
static const char *
adopted_fd_problem(int fd, int *ret_r)
{
    int domain = 0, type = 0, listening = 0;
    socklen_t len = sizeof(int);
    struct stat st;

    if (fstat(fd, &st) < 0) {
        *ret_r = -errno;
        return "cannot be used (fstat failed)";
    }
    *ret_r = -ENOTSOCK;
    if (!S_ISSOCK(st.st_mode)) {
        return "is not a socket";
    }
    *ret_r = -EAFNOSUPPORT;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_UNIX) {
        return "is not an AF_UNIX socket";
    }
    *ret_r = -ESOCKTNOSUPPORT;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM) {
        return "is not a stream socket";
    }
    *ret_r = -EINVAL;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0 || !listening) {
        return "is not listening";
    }
    *ret_r = 0;
    return NULL;
}

/* The path an adopted socket is bound to: "/run/...", "@name" (abstract) or "" (unnamed). */
static int
adopted_path(int fd, char **ret)
{
    struct sockaddr_un sa = {0};
    socklen_t len = sizeof(sa);
    size_t n;

    if (getsockname(fd, (struct sockaddr *) &sa, &len) < 0) {
        return -errno;
    }
    n = len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path)
                                                     : 0;
    if (n > 0 && sa.sun_path[0] == '\0') {
        return asprintf(ret, "@%.*s", (int) (n - 1), sa.sun_path + 1) < 0 ? -ENOMEM : 0;
    }
    *ret = strndup(sa.sun_path, n);
    return *ret ? 0 : -ENOMEM;
}

static int
listener_adopt(RpcListener *l, char *err, size_t err_size)
{
    const char *problem;
    int fd = l->fd, r, flags;

    problem = adopted_fd_problem(fd, &r);
    if (problem) {
        (void) snprintf(err, err_size, "the socket systemd passed as 'api' (fd %d) %s; "
                        "vfio-migd.socket needs ListenStream=/run/vfio-migd/api.sock and "
                        "FileDescriptorName=api", fd, problem);
        return r;
    }
    r = adopted_path(fd, &l->path);
    if (r < 0) {
        (void) snprintf(err, err_size, "cannot read the address of the socket systemd passed "
                        "as 'api' (fd %d): %s", fd, strerror(-r));
        return r;
    }
    /* A daemon started by hand on the same path would replace systemd's socket: the lock
     * keeps that one out, as between two daemons that make their own. */
    if (l->path[0] != '\0' && l->path[0] != '@') {
        r = listener_take_lock(l, err, err_size);
        if (r >= 0) {
            r = listener_set_permissions(l, err, err_size);
        }
        if (r < 0) {
            return r;
        }
    }
    flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        r = -errno;
        (void) snprintf(err, err_size, "cannot make the socket systemd passed non-blocking: %s",
                        strerror(-r));
        return r;
    }
    return 0;
}

int
rpc_listener_new(uv_loop_t *loop, const RpcListenerConfig *cfg, RpcListener **ret, char *err,
                 size_t err_size)
{
    size_t max = sizeof(((struct sockaddr_un *) NULL)->sun_path);
    _cleanup_(rpc_listener_freep) RpcListener *l = NULL;
    int r;

    assert(cfg->on_connection);
    assert(cfg->socket_mode != 0);
    assert(cfg->max_connections >= 1 && cfg->max_connections <= RPC_LISTENER_MAX_CONNECTIONS);
    if (cfg->listen_fd < 0 && strlen(cfg->socket_path) >= max) {
        (void) snprintf(err, err_size, "the socket path '%s' is longer than the %zu bytes a unix "
                        "socket address holds; choose a shorter one", cfg->socket_path, max - 1);
        return -ENAMETOOLONG;
    }
    l = calloc(1, sizeof(*l));
    if (!l) {
        if (cfg->listen_fd >= 0) {
            (void) close(cfg->listen_fd);
        }
        return -ENOMEM;
    }
    /* An adopted fd is ours from here on, closed by rpc_listener_free() on any failure. */
    *l = (RpcListener){.loop = loop, .fd = cfg->listen_fd >= 0 ? cfg->listen_fd : -EBADF,
                       .activated = cfg->listen_fd >= 0, .lock_fd = -EBADF,
                       .socket_mode = cfg->socket_mode, .socket_gid_set = cfg->socket_gid_set,
                       .socket_gid = cfg->socket_gid,
                       .on_connection = cfg->on_connection, .userdata = cfg->userdata,
                       .max_conns = cfg->max_connections,
                       .refuse_rl = RATELIMIT_INIT(LOG_INTERVAL_NS, LOG_BURST),
                       .fail_rl = RATELIMIT_INIT(LOG_INTERVAL_NS, LOG_BURST)};
    l->conns = calloc(l->max_conns, sizeof(*l->conns));
    if (!l->conns) {
        return -ENOMEM;
    }
    for (unsigned i = 0; i < l->max_conns; i++) {
        l->conns[i].fd = -EBADF;
    }
    if (l->activated) {
        r = listener_adopt(l, err, err_size);
    } else if (!(l->path = strdup(cfg->socket_path))) {
        r = -ENOMEM;
    } else {
        r = listener_take_lock(l, err, err_size);
        if (r >= 0) {
            r = listener_make_socket(l, err, err_size);
        }
    }
    if (r < 0) {
        return r;
    }
    *ret = TAKE_PTR(l);
    return 0;
}
