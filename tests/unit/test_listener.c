/* SPDX-License-Identifier: MIT */
/*
 * test_listener — the API socket (rpc/listener.c) on real sockets and a real loop: making it
 * (lock, mode, stale sockets, what is not ours), adopting systemd's (each wrong kind of fd
 * refused), accepting with the caller's credentials, the connection limit, the pause when
 * accept() runs out of fds; and, through the real gRPC server and client, a handler finding
 * its caller's credentials (rpc_call_peer_cred).
 *
 * Every wait is on an event (a callback that stops the loop, a child's exit), never on time.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include "client.h"
#include "grpc/health/v1/health.pb-c.h"
#include "listener.h"
#include "server.h"
#include "util/log.h"
#include "util/macro.h"
#include "tmptree.h"

#define MAX_TAKEN 16

static uv_loop_t loop;
static char dir[64], path[128];
static int taken[MAX_TAKEN];      /* fds the callback received, in order */
static struct ucred taken_cred[MAX_TAKEN];
static unsigned n_taken, stop_after;

static void
setup(void)
{
    log_set_max_level(LOG_CRIT); /* the refusals log warnings on purpose */
    cr_assert_eq(uv_loop_init(&loop), 0);
    (void) snprintf(dir, sizeof(dir), "/tmp/test-listener.XXXXXX");
    cr_assert(mkdtemp(dir));
    (void) snprintf(path, sizeof(path), "%s/api.sock", dir);
    n_taken = 0;
    stop_after = 1;
}

static void
teardown(void)
{
    for (unsigned i = 0; i < n_taken; i++) {
        (void) close(taken[i]);
    }
    cr_expect_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_expect_eq(uv_loop_close(&loop), 0, "the loop still has handles");
    cr_expect_eq(tmptree_remove(dir), 0, "removing %s", dir);
}

/* Keeps the connection (as gRPC would) and stops the loop after stop_after of them. */
static void
on_connection(int fd, const struct ucred *cred, void *userdata)
{
    cr_assert_lt(n_taken, MAX_TAKEN);
    taken[n_taken] = fd;
    taken_cred[n_taken++] = *cred;
    if (n_taken >= stop_after) {
        uv_stop(userdata);
    }
}

static int
make(const char *p, int fd, unsigned max, RpcListener **ret, char *err, size_t err_size)
{
    RpcListenerConfig cfg = {.socket_path = p, .listen_fd = fd, .socket_mode = 0660,
                             .max_connections = max, .on_connection = on_connection,
                             .userdata = &loop};

    return rpc_listener_new(&loop, &cfg, ret, err, err_size);
}

static RpcListener *
make_ok(unsigned max)
{
    RpcListener *l = NULL;
    char err[512] = "";

    cr_assert_eq(make(path, -1, max, &l, err, sizeof(err)), 0, "%s", err);
    return l;
}

static struct sockaddr_un
unix_address(const char *p)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};

    cr_assert_lt(strlen(p), sizeof(sa.sun_path));
    memcpy(sa.sun_path, p, strlen(p));
    return sa;
}

/* A client socket connected to @p (the connection waits in the listen queue). */
static int
client_connect(const char *p)
{
    struct sockaddr_un sa = unix_address(p);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    cr_assert_eq(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), 0, "connect: %s",
                 strerror(errno));
    return fd;
}

static void
stop_and_free(RpcListener *l)
{
    rpc_listener_stop(l);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0); /* the close callbacks */
    rpc_listener_free(l);
}

static bool
fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* ---- making the socket */

TestSuite(make, .init = setup, .fini = teardown, .timeout = 30);

Test(make, a_socket_0660_with_a_lock_that_names_us_removed_when_stopped)
{
    RpcListener *l = make_ok(4);
    char lock[160], pid[32] = "";
    struct stat st;
    FILE *f;

    cr_assert_eq(stat(path, &st), 0);
    cr_expect(S_ISSOCK(st.st_mode));
    cr_expect_eq(st.st_mode & 0777, 0660);
    cr_expect_str_eq(rpc_listener_path(l), path);
    cr_expect_not(rpc_listener_activated(l));
    (void) snprintf(lock, sizeof(lock), "%s.lock", path);
    f = fopen(lock, "r");
    cr_assert(f);
    cr_assert(fgets(pid, sizeof(pid), f));
    (void) fclose(f);
    cr_expect_eq(atoi(pid), (int) getpid());
    cr_assert_eq(rpc_listener_start(l), 0);
    stop_and_free(l);
    cr_expect_eq(access(path, F_OK), -1, "the socket is removed when the listener stops");
}

Test(make, a_second_listener_on_a_served_path_is_refused_and_changes_nothing)
{
    RpcListener *l = make_ok(4), *l2 = NULL;
    char err[512] = "", want[64];
    struct stat before, after;

    cr_assert_eq(stat(path, &before), 0);
    cr_expect_eq(make(path, -1, 4, &l2, err, sizeof(err)), -EADDRINUSE);
    (void) snprintf(want, sizeof(want), "(pid %d)", (int) getpid());
    cr_expect(strstr(err, want) && strstr(err, path), "%s", err);
    cr_assert_eq(stat(path, &after), 0);
    cr_expect_eq(before.st_ino, after.st_ino, "the first listener's socket stays");
    rpc_listener_free(l);
}

Test(make, what_is_not_a_socket_is_never_removed)
{
    RpcListener *l = NULL;
    char err[512] = "", text[16] = "";
    FILE *f = fopen(path, "w");

    cr_assert(f);
    (void) fputs("precious", f);
    (void) fclose(f);
    cr_expect_eq(make(path, -1, 4, &l, err, sizeof(err)), -EEXIST);
    cr_expect(strstr(err, "is not a socket") && strstr(err, path), "%s", err);
    f = fopen(path, "r");
    cr_assert(f, "the file is still there");
    cr_expect(fgets(text, sizeof(text), f) && strcmp(text, "precious") == 0);
    (void) fclose(f);
}

Test(make, a_stale_socket_of_a_dead_daemon_is_replaced)
{
    struct sockaddr_un sa = unix_address(path);
    int old = socket(AF_UNIX, SOCK_STREAM, 0);
    RpcListener *l;
    int c;

    cr_assert_eq(bind(old, (struct sockaddr *) &sa, sizeof(sa)), 0);
    (void) close(old); /* bound, then gone: the file stays, nobody listens */
    l = make_ok(4);
    cr_assert_eq(rpc_listener_start(l), 0);
    c = client_connect(path);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 1, "the loop stopped at the connection");
    cr_expect_eq(n_taken, 1u);
    (void) close(c);
    stop_and_free(l);
}

Test(make, a_path_too_long_for_a_socket_address_is_refused)
{
    char longp[300];
    RpcListener *l = NULL;
    char err[512] = "";

    (void) snprintf(longp, sizeof(longp), "%s/%0150d.sock", dir, 0);
    cr_expect_eq(make(longp, -1, 4, &l, err, sizeof(err)), -ENAMETOOLONG);
    cr_expect(strstr(err, longp), "%s", err);
}

/* ---- adopting systemd's socket */

TestSuite(adopt, .init = setup, .fini = teardown, .timeout = 30);

/* Adopting @fd fails with @want and a message saying @what; the fd is closed after. */
static void
expect_refused(int fd, int want, const char *what)
{
    RpcListener *l = NULL;
    char err[512] = "";

    cr_expect_eq(make(NULL, fd, 4, &l, err, sizeof(err)), want, "%s: %s", what, err);
    cr_expect(strstr(err, what) && strstr(err, "FileDescriptorName=api"), "%s", err);
    cr_expect_not(fd_open(fd), "%s: the refused fd is closed", what);
}

Test(adopt, every_wrong_kind_of_fd_is_refused_with_what_it_is)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    char dgram[160];
    struct sockaddr_un sa;
    int fd;

    expect_refused(open("/dev/null", O_RDONLY | O_CLOEXEC), -ENOTSOCK, "is not a socket");

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(bind(fd, (struct sockaddr *) &in, sizeof(in)), 0);
    cr_assert_eq(listen(fd, 4), 0);
    expect_refused(fd, -EAFNOSUPPORT, "is not an AF_UNIX socket");

    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    (void) snprintf(dgram, sizeof(dgram), "%s/dgram", dir);
    sa = unix_address(dgram);
    cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
    expect_refused(fd, -ESOCKTNOSUPPORT, "is not a stream socket");

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    expect_refused(fd, -EINVAL, "is not listening");
}

/* A listening socket as a .socket unit makes it. */
static int
systemd_socket(const char *p)
{
    struct sockaddr_un sa = unix_address(p);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

    cr_assert_eq(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 16), 0);
    return fd;
}

Test(adopt, a_listening_unix_socket_serves_keeps_its_file_and_its_queue)
{
    int sd = systemd_socket(path), keep = dup(sd), c1, c2;
    RpcListener *l = NULL, *l2 = NULL;
    char err[512] = "";
    unsigned char byte = 0;

    cr_assert_eq(make(NULL, sd, 4, &l, err, sizeof(err)), 0, "%s", err);
    cr_expect(rpc_listener_activated(l));
    cr_expect_str_eq(rpc_listener_path(l), path, "the path comes from the socket itself");
    /* A daemon started by hand on the same path is kept out by the lock. */
    cr_expect_eq(make(path, -1, 4, &l2, err, sizeof(err)), -EADDRINUSE, "%s", err);
    cr_assert_eq(rpc_listener_start(l), 0);
    c1 = client_connect(path);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 1);
    cr_expect_eq(n_taken, 1u);
    stop_and_free(l);
    cr_expect_eq(access(path, F_OK), 0, "systemd's socket file is not removed");
    /* The daemon is gone: a client still connects, and waits in systemd's queue. */
    c2 = client_connect(path);
    cr_expect_eq(send(c2, "x", 1, 0), 1);
    cr_assert_eq(make(NULL, keep, 4, &l, err, sizeof(err)), 0, "a restart adopts it again: %s",
                 err);
    cr_assert_eq(rpc_listener_start(l), 0);
    stop_after = 2;
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 1);
    cr_assert_eq(n_taken, 2u, "the queued connection is accepted by the next listener");
    cr_expect_eq(recv(taken[1], &byte, 1, 0), 1);
    cr_expect_eq(byte, 'x');
    (void) close(c1);
    (void) close(c2);
    stop_and_free(l);
}

/* ---- accepting */

TestSuite(accept, .init = setup, .fini = teardown, .timeout = 30);

/* A child that connects as @uid (when we are root) and waits until its socket is closed. */
static pid_t
child_connect(uid_t uid)
{
    pid_t pid = fork();

    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char b;
        int fd;

        if (geteuid() == 0 && (setgid(uid) < 0 || setuid(uid) < 0)) {
            _exit(2);
        }
        fd = client_connect(path);
        _exit(read(fd, &b, 1) == 0 ? 0 : 3);
    }
    return pid;
}

Test(accept, each_connection_carries_its_callers_credentials)
{
    RpcListener *l = make_ok(4);
    uid_t other = geteuid() == 0 ? 65534 : geteuid();
    int status = -1, f;
    pid_t child;
    struct ucred cred = {0};

    /* So that the child may connect as another user. */
    cr_assert_eq(chmod(dir, 0711), 0);
    cr_assert_eq(chmod(path, 0666), 0);
    cr_assert_eq(rpc_listener_start(l), 0);
    child = child_connect(other);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 1);
    cr_assert_eq(n_taken, 1u);
    cr_expect_eq(taken_cred[0].pid, child);
    cr_assert_eq(rpc_listener_peer_cred(l, taken[0], &cred), 0);
    cr_expect_eq(cred.pid, child, "the peer's pid, not ours (%d)", (int) getpid());
    cr_expect_eq(cred.uid, other);
    cr_expect_eq(cred.gid, (gid_t) other);
    cr_expect_eq(rpc_listener_peer_cred(l, 0, &cred), -ENOENT, "stdin is no connection");
    cr_expect_eq(rpc_listener_peer_cred(l, -1, &cred), -ENOENT);

    /* Closed (as gRPC closes it, once the connection's last call is gone), then the number
     * taken by the next connection, of another process (as root, of another user too): the
     * lookup gives the new caller, never the old one. */
    f = taken[0];
    (void) close(f);
    n_taken = 0;
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child saw the close");
    child = child_connect(geteuid());
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 1);
    cr_assert_eq(n_taken, 1u);
    cr_assert_eq(taken[0], f, "the lowest free number is the old connection's");
    cr_assert_eq(rpc_listener_peer_cred(l, f, &cred), 0);
    cr_expect_eq(cred.pid, child);
    cr_expect_eq(cred.uid, geteuid());

    /* Closed again, then the number taken by another file: a sweep lets the entry go. */
    (void) close(f);
    cr_assert_eq(waitpid(child, &status, 0), child);
    cr_assert_eq(open("/dev/null", O_RDONLY | O_CLOEXEC), f, "the number is reused");
    cr_expect_eq(rpc_listener_connections(l), 0u);
    cr_expect_eq(rpc_listener_peer_cred(l, f, &cred), -ENOENT);
    (void) close(f);
    cr_expect_eq(rpc_listener_stats(l).accepted, 2ul);
    stop_and_free(l);
}

static bool
peer_closed(int fd)
{
    char b;

    return recv(fd, &b, 1, 0) == 0 || errno == ECONNRESET;
}

Test(accept, beyond_the_maximum_a_connection_is_closed_until_one_ends)
{
    RpcListener *l = make_ok(2);
    int c[4];

    cr_assert_eq(rpc_listener_start(l), 0);
    stop_after = 2;
    c[0] = client_connect(path);
    c[1] = client_connect(path);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 1);
    cr_assert_eq(n_taken, 2u);
    cr_expect_eq(rpc_listener_connections(l), 2u);

    /* The third is accepted and closed at once: the client reads the end, no hang. */
    c[2] = client_connect(path);
    while (rpc_listener_stats(l).refused == 0) {
        cr_assert_eq(uv_run(&loop, UV_RUN_ONCE), 1);
    }
    cr_expect(peer_closed(c[2]), "the refused client sees its connection closed");
    cr_expect_eq(n_taken, 2u);

    /* One ends (gRPC closed it): its slot is reclaimed for the next. */
    (void) close(taken[0]);
    taken[0] = taken[--n_taken];
    stop_after = 2;
    c[3] = client_connect(path);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 1);
    cr_expect_eq(n_taken, 2u, "accepted once a slot was free");
    cr_expect_eq(rpc_listener_stats(l).refused, 1ul);
    cr_expect_eq(rpc_listener_connections(l), 2u);
    for (int i = 0; i < 4; i++) {
        (void) close(c[i]);
    }
    stop_and_free(l);
}

Test(accept, out_of_fds_it_pauses_instead_of_spinning_then_takes_every_waiting_client)
{
    RpcListener *l = make_ok(16);
    RpcListenerStats st;
    struct rlimit rl, low;
    int c[5], filler[256], n_filler = 0, top = 0;

    cr_assert_eq(rpc_listener_start(l), 0);
    for (int i = 0; i < 5; i++) {
        c[i] = client_connect(path);
        top = MAX(top, c[i]);
    }
    /* Every number up to the highest in use taken (holes filled), none allowed above it:
     * accept() fails with EMFILE. */
    for (;;) {
        int f = open("/dev/null", O_RDONLY | O_CLOEXEC);

        cr_assert_geq(f, 0);
        if (f > top) {
            (void) close(f);
            break;
        }
        cr_assert_lt(n_filler, (int) ELEMENTSOF(filler));
        filler[n_filler++] = f;
    }
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    low = rl;
    low.rlim_cur = (rlim_t) top + 1;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
    for (int i = 0; i < 100; i++) {
        (void) uv_run(&loop, UV_RUN_NOWAIT);
    }
    /* A poll left running on the readable socket calls accept() on each of the 100 turns.
     * Paused, each try is followed by a pause (50 ms, doubling): a few at most, however
     * slowly the turns ran. */
    st = rpc_listener_stats(l);
    cr_expect(st.accept_calls >= 1 && st.accept_calls < 10, "accept() was tried %lu times",
              st.accept_calls);
    cr_expect_eq(st.backoffs, st.accept_calls, "each failed accept() paused the poll");
    cr_expect_eq(n_taken, 0u);
    while (n_filler > 0) {
        (void) close(filler[--n_filler]);
    }

    /* Fds again: once the pause ends, every waiting client is taken. */
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    stop_after = 5;
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 1);
    cr_expect_eq(n_taken, 5u);
    for (int i = 0; i < 5; i++) {
        (void) close(c[i]);
    }
    stop_and_free(l);
}

/* ---- through gRPC: a handler asks who called */

static RpcServer *server;
static struct ucred seen;
static int seen_r = 1;

static void
handle_check(RpcCall *call, const ProtobufCMessage *request, void *userdata)
{
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

    (void) request;
    (void) userdata;
    seen_r = rpc_call_peer_cred(call, &seen);
    rpc_call_reply(call, &resp.base);
}

static const RpcMethod check_method = {
    .path = "/grpc.health.v1.Health/Check",
    .request = &grpc__health__v1__health_check_request__descriptor,
    .response = &grpc__health__v1__health_check_response__descriptor,
    .handler = handle_check,
};

static void
on_server_done(void *userdata)
{
    (void) userdata;
}

static void *
client_thread(void *arg)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    RpcError err = {0};
    RpcClient *c = NULL;
    int r;

    (void) arg;
    r = rpc_client_new(path, &c);
    if (r >= 0) {
        r = rpc_client_call(c, check_method.path, &req.base, check_method.response, 30000, &resp,
                            &err);
    }
    if (resp) {
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    rpc_client_free(c);
    return (void *) (intptr_t) r;
}

static void
on_client_done(uv_work_t *w, int status)
{
    (void) w;
    (void) status;
    rpc_server_shutdown(server, on_server_done, NULL);
}

static void
run_client(uv_work_t *w)
{
    w->data = client_thread(NULL);
}

TestSuite(server, .init = setup, .fini = teardown, .timeout = 60);

Test(server, a_handler_finds_its_callers_credentials)
{
    RpcServerConfig cfg = {.socket_path = path, .methods = &check_method, .n_methods = 1};
    char err[512] = "";
    uv_work_t work = {0};

    rpc_client_global_init();
    cr_assert_eq(rpc_server_new(&loop, &cfg, &server, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(uv_queue_work(&loop, &work, run_client, on_client_done), 0);
    cr_assert_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_expect_eq((intptr_t) work.data, 0, "the call succeeded");
    cr_expect_eq(seen_r, 0, "rpc_call_peer_cred: %d", seen_r);
    cr_expect_eq(seen.pid, getpid(), "the client runs in this process");
    cr_expect_eq(seen.uid, geteuid());
    cr_expect_eq(seen.gid, getegid());
    rpc_server_free(server);
    rpc_client_global_shutdown();
}
