/* SPDX-License-Identifier: MIT */
/*
 * migration_common — see migration_common.h. The plan of a run: pump, migrate, pump again,
 * so that a load change on a shared machine during the run weighs on both sides of the
 * comparison alike; the CPU time of the pump's threads and of each daemon is taken around
 * each step, to tell "the link is slow" from "the machine is busy".
 *
 * The daemons are forked before grpc_init() (grpc-core.md pitfall 13); the pump's threads
 * are made after, which is fine: nothing forks after them.
 */
#include "migration_common.h"
#include "tls.h"
#include "util/macro.h"

#include <errno.h>
#include <netinet/in.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define PUMP_BUFFER (1u << 20)
/* A few times what the slowest machine needs; a job that is still active by then is stuck. */
#define MIGRATION_DEADLINE_MS 90000
#define MIGRATION_TIMEOUT_MS 30000 /* the daemons' own waits (connect, confirm) */

/* ---- CPU time, to tell "the link is slow" from "the machine is busy" ---- */

/* User + system CPU of this process (the pump's threads), in ns. */
static uint64_t
self_cpu_ns(void)
{
    struct rusage ru;

    if (getrusage(RUSAGE_SELF, &ru) < 0) {
        return 0;
    }
    return ((uint64_t) ru.ru_utime.tv_sec + (uint64_t) ru.ru_stime.tv_sec) * 1000000000u +
           ((uint64_t) ru.ru_utime.tv_usec + (uint64_t) ru.ru_stime.tv_usec) * 1000u;
}

/* User + system CPU of process @pid (a daemon, every thread, those that ended too), in ns, from
 * its CPU-time clock: the scheduler's own count to the nanosecond. /proc/PID/stat gives the
 * same in clock ticks (10 ms), which over bench-downtime's 60 to 100 ms migrations swung the
 * CPU per byte by a third from one round to the next. 0 when the clock cannot be read. */
static uint64_t
pid_cpu_ns(pid_t pid)
{
    struct timespec ts;
    clockid_t clock;

    if (clock_getcpuclockid(pid, &clock) != 0 || clock_gettime(clock, &ts) < 0) {
        return 0;
    }
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* CPU per byte moved: on a shared machine the rates swing with the load, these hardly do. */
static void
report_cpu(const BenchMigration *b, const BenchMigrationRun *run, uint64_t pump_bytes,
           uint64_t bytes)
{
    double l1 = 0, l5 = 0, l15 = 0;
    FILE *f = fopen("/proc/loadavg", "re");

    if (f) {
        if (fscanf(f, "%lf %lf %lf", &l1, &l5, &l15) != 3) {
            l1 = l5 = l15 = -1;
        }
        fclose(f);
    }
    fprintf(stderr, "%s: CPU per byte: pump %.3f ns (send + receive), TLS pump %.3f ns; "
            "migration %.3f ns (source %.3f + destination %.3f); load average %.2f %.2f %.2f\n",
            b->prog, (double) run->pump_cpu_ns / (double) pump_bytes,
            (double) run->tls_pump_cpu_ns / (double) pump_bytes,
            (double) (run->src_cpu_ns + run->dst_cpu_ns) / (double) bytes,
            (double) run->src_cpu_ns / (double) bytes, (double) run->dst_cpu_ns / (double) bytes,
            l1, l5, l15);
}

/* ---- the socket pump, clear or TLS ---- */

/* The TLS pump's data key, as ACCEPT would carry it (any 64 hex characters). */
#define PUMP_KEY "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define PUMP_HANDSHAKE_MS 10000 /* a pump handshake that takes longer has failed */

typedef struct PumpConn {
    pthread_t sender, receiver;
    int send_fd, recv_fd;
    uint64_t bytes;
    pthread_barrier_t *gate;
    bool tls;         /* through the daemon's TLS (tls.h) instead of write()/read() */
    int send_r, recv_r; /* 0, or each side's failure (negative errno) */
} PumpConn;

/* The server side of a data channel's handshake on @fd, as migration_accept.c steps it, then
 * the session attached to @fd. */
static int
pump_tls_accept(int fd)
{
    static const TlsSecrets secrets = {.mode = TLS_MODE_PSK, .token = PUMP_KEY, .key = PUMP_KEY};
    TlsSession *s;
    char why[256];
    int r;

    if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) {
        return -errno;
    }
    s = tls_server_new(fd, &secrets);
    if (!s) {
        return -ENOMEM;
    }
    while ((r = tls_server_step(s, why, sizeof(why))) == 0 || r == 2) {
        struct pollfd p = {.fd = fd, .events = r == 0 ? POLLIN : POLLOUT};
        if (poll(&p, 1, PUMP_HANDSHAKE_MS) <= 0) {
            r = -ETIMEDOUT;
            break;
        }
    }
    if (r < 0) {
        tls_session_free(s);
        return r;
    }
    return tls_attach(fd, s);
}

/* What one write()/read() of the pump moves: a 1 MiB buffer, in clear or in TLS records. */
static ssize_t
pump_write(const PumpConn *c, const void *buf, size_t size)
{
    int r;

    if (!c->tls) {
        return write(c->send_fd, buf, size);
    }
    r = tls_write2(c->send_fd, buf, size, NULL, 0);
    errno = -r;
    return r < 0 ? -1 : (ssize_t) size;
}

static ssize_t
pump_read(const PumpConn *c, void *buf, size_t size, uint64_t left)
{
    ssize_t n;

    if (!c->tls) {
        return read(c->recv_fd, buf, size);
    }
    n = tls_read(c->recv_fd, buf, size, MIN(size, left));
    errno = n < 0 ? (int) -n : 0;
    return n == -ENODATA ? 0 : n < 0 ? -1 : n;
}

static void *
pump_send(void *arg)
{
    PumpConn *c = arg;
    uint8_t *buf = malloc(PUMP_BUFFER);
    char err[256];
    int r = 0;

    if (buf) {
        memset(buf, 0xa5, PUMP_BUFFER); /* touched before the clock starts */
    }
    if (c->tls) { /* the handshake before the clock starts, as a data channel's */
        r = tls_client_handshake(c->send_fd, TLS_MODE_PSK, TLS_PSK_DATA, PUMP_KEY, "pump", err, sizeof(err));
    }
    (void) pthread_barrier_wait(c->gate);
    for (uint64_t left = c->bytes; r == 0 && buf && left > 0;) {
        size_t want = left < PUMP_BUFFER ? (size_t) left : PUMP_BUFFER;
        ssize_t n = pump_write(c, buf, want);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            r = n < 0 ? -errno : -EIO;
            break;
        }
        left -= (uint64_t) n;
    }
    c->send_r = buf ? r : -ENOMEM;
    (void) shutdown(c->send_fd, SHUT_WR);
    free(buf);
    return NULL;
}

static void *
pump_receive(void *arg)
{
    PumpConn *c = arg;
    uint8_t *buf = malloc(PUMP_BUFFER);
    uint64_t got = 0;
    int r = c->tls ? pump_tls_accept(c->recv_fd) : 0;

    if (buf) {
        memset(buf, 0, PUMP_BUFFER);
    }
    if (r < 0) {
        (void) shutdown(c->recv_fd, SHUT_RDWR); /* the sender must not wait for ever */
    }
    (void) pthread_barrier_wait(c->gate);
    while (r == 0 && buf && got < c->bytes) {
        ssize_t n = pump_read(c, buf, PUMP_BUFFER, c->bytes - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            r = n < 0 ? -errno : -ENODATA;
            (void) shutdown(c->recv_fd, SHUT_RDWR); /* the sender must not wait for ever */
            break;
        }
        got += (uint64_t) n;
    }
    c->recv_r = buf ? r : -ENOMEM;
    free(buf);
    return NULL;
}

/* One listener on 127.0.0.1:0; @n connections connected and accepted before any thread runs. */
static int
pump_connect(PumpConn *conns, size_t n)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    int lfd, r = 0;

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0) {
        return -errno;
    }
    if (bind(lfd, (struct sockaddr *) &a, sizeof(a)) < 0 || listen(lfd, (int) n) < 0 ||
        getsockname(lfd, (struct sockaddr *) &a, &len) < 0) {
        r = -errno;
    }
    for (size_t i = 0; r == 0 && i < n; i++) {
        conns[i].send_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (conns[i].send_fd < 0 ||
            connect(conns[i].send_fd, (struct sockaddr *) &a, sizeof(a)) < 0) {
            r = -errno;
            break;
        }
        conns[i].recv_fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (conns[i].recv_fd < 0) {
            r = -errno;
        }
    }
    (void) close(lfd);
    return r;
}

/* One connection per device, as the migration has one data channel per device, unless the
 * benchmark sets its own count (bench-single: 2 for its one device) or
 * $BENCH_PUMP_CONNECTIONS says otherwise (1 .. n_devices): on a machine with fewer cores than
 * devices, fewer connections may move the same bytes faster (README). */
static size_t
pump_connections(const BenchMigration *b)
{
    const char *e = getenv("BENCH_PUMP_CONNECTIONS");
    long v = e ? strtol(e, NULL, 10) : 0;

    if (b->pump_connections) {
        return MIN(b->pump_connections, (size_t) BENCH_MIGRATION_MAX_DEVICES);
    }
    return v >= 1 && (size_t) v <= b->n_devices ? (size_t) v : b->n_devices;
}

/* Moves n_devices x device_bytes over loopback on pump_connections() connections, in clear
 * or (@tls) through the daemon's TLS with a data channel's PSK handshake (before the clock
 * starts); *@ret_gib_s is the whole pump's rate, *@ret_cpu_ns the CPU it took (this process). */
static int
pump_run(const BenchMigration *b, bool tls, double *ret_gib_s, uint64_t *ret_cpu_ns)
{
    PumpConn conns[BENCH_MIGRATION_MAX_DEVICES];
    size_t n = pump_connections(b);
    uint64_t per = b->n_devices * b->device_bytes / n;
    pthread_barrier_t gate;
    uint64_t t0, t1, c0;
    int r;

    if (n > BENCH_MIGRATION_MAX_DEVICES) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        conns[i] = (PumpConn){.send_fd = -1, .recv_fd = -1, .bytes = per,
                              .gate = &gate, .tls = tls};
    }
    r = pump_connect(conns, n);
    if (r == 0) {
        r = -pthread_barrier_init(&gate, NULL, (unsigned) (2 * n + 1));
    }
    for (size_t i = 0; r == 0 && i < n; i++) {
        /* A thread that could not start would leave the others at the gate for ever. */
        if (pthread_create(&conns[i].sender, NULL, pump_send, &conns[i]) != 0 ||
            pthread_create(&conns[i].receiver, NULL, pump_receive, &conns[i]) != 0) {
            fprintf(stderr, "%s: cannot start the pump's threads\n", b->prog);
            exit(1);
        }
    }
    if (r == 0) {
        c0 = self_cpu_ns();
        (void) pthread_barrier_wait(&gate);
        t0 = clock_now_ns();
        for (size_t i = 0; i < n; i++) {
            (void) pthread_join(conns[i].sender, NULL);
            (void) pthread_join(conns[i].receiver, NULL);
            if (r == 0) {
                r = conns[i].send_r < 0 ? conns[i].send_r : conns[i].recv_r;
            }
        }
        t1 = clock_now_ns();
        *ret_cpu_ns = self_cpu_ns() - c0;
        (void) pthread_barrier_destroy(&gate);
        *ret_gib_s = (double) (n * per) / GIB / ((double) (t1 - t0) / 1e9);
    }
    for (size_t i = 0; i < n; i++) { /* transport_close(): a TLS session goes with its fd */
        if (conns[i].send_fd >= 0) {
            (void) transport_close(conns[i].send_fd);
        }
        if (conns[i].recv_fd >= 0) {
            (void) transport_close(conns[i].recv_fd);
        }
    }
    if (r < 0) {
        fprintf(stderr, "%s: the %s pump failed: %s\n", b->prog, tls ? "TLS" : "clear",
                strerror(-r));
    }
    return r;
}

/* ---- the daemons ---- */

/* Attaches n_devices sim devices "m0", "m1", ... of device_bytes each (and sim_options), and
 * groups them under the benchmark's name. */
static int
setup_side(const BenchMigration *b, RpcClient *c)
{
    char names[BENCH_MIGRATION_MAX_DEVICES][24], *ids[BENCH_MIGRATION_MAX_DEVICES];
    char options[256];
    int r = 0;

    if (b->n_devices > BENCH_MIGRATION_MAX_DEVICES) {
        return -EINVAL;
    }
    int n = snprintf(options, sizeof(options), "size=%llu%s%s",
                     (unsigned long long) b->device_bytes, b->sim_options ? "," : "",
                     b->sim_options ? b->sim_options : "");
    if (n < 0 || (size_t) n >= sizeof(options)) {
        return -ENAMETOOLONG;
    }
    for (size_t i = 0; r >= 0 && i < b->n_devices; i++) {
        (void) snprintf(names[i], sizeof(names[i]), "m%zu", i);
        ids[i] = names[i];
        r = bench_attach_sim(c, ids[i], options);
    }
    if (r < 0) {
        return r;
    }
    return bench_create_group(c, b->prog, b->prog, ids, b->n_devices);
}

static int
start_daemon(const BenchMigration *b, const char *binary, Daemon *d, const char *role)
{
    int r = bench_daemon_start(binary, d);

    if (r < 0) {
        fprintf(stderr, "%s: cannot start the %s daemon '%s': %s\n", b->prog, role, binary,
                strerror(-r));
    }
    return r;
}

int
bench_migration_start(BenchMigration *b, const char *binary)
{
    int r;

    /* Both forks before grpc_init(). */
    r = start_daemon(b, binary, &b->src_daemon, "source");
    if (r >= 0) {
        r = start_daemon(b, binary, &b->dst_daemon, "destination");
    }
    if (r < 0) {
        bench_daemon_stop(&b->src_daemon);
        return r;
    }
    b->started = true;
    (void) signal(SIGPIPE, SIG_IGN); /* a broken pump connection is an error, not a death */
    rpc_client_global_init();
    r = rpc_client_new(b->src_daemon.socket, &b->src);
    if (r >= 0) {
        r = rpc_client_new(b->dst_daemon.socket, &b->dst);
    }
    if (r >= 0) {
        r = bench_daemon_wait_ready(&b->src_daemon, b->src);
    }
    if (r >= 0) {
        r = bench_daemon_wait_ready(&b->dst_daemon, b->dst);
    }
    if (r >= 0) {
        r = setup_side(b, b->src);
    }
    if (r >= 0) {
        r = setup_side(b, b->dst);
    }
    return r;
}

void
bench_migration_stop(BenchMigration *b)
{
    if (!b->started) {
        return;
    }
    rpc_client_free(b->src);
    rpc_client_free(b->dst);
    b->src = b->dst = NULL;
    rpc_client_global_shutdown();
    bench_daemon_stop(&b->src_daemon);
    bench_daemon_stop(&b->dst_daemon);
    b->started = false;
}

/* ---- the migration ---- */

static const char *
phase_name(VfioMigd__V1__MigrationPhase phase)
{
    const ProtobufCEnumDescriptor *desc = &vfio_migd__v1__migration_phase__descriptor;
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(desc, (int) phase);

    return v ? v->name : "?";
}

static int
get_migration(const BenchMigration *b, RpcClient *c, const char *id,
              VfioMigd__V1__MigrationResponse **ret)
{
    VfioMigd__V1__MigrationIdRequest req = VFIO_MIGD__V1__MIGRATION_ID_REQUEST__INIT;

    req.id = (char *) id;
    *ret = NULL;
    return BENCH_CALL(c, b->prog, "MigrationService", GetMigration, &req, migration_response, ret);
}

/* A failed (or failing) migration: what both sides say. */
static void
report_failure(const BenchMigration *b, const char *dst_id, const VfioMigd__V1__Migration *s)
{
    VfioMigd__V1__MigrationResponse *d = NULL;

    fprintf(stderr, "%s: the migration failed: source %s, %s (%s): '%s'\n", b->prog, s->id,
            s->state, phase_name(s->phase), s->error);
    if (get_migration(b, b->dst, dst_id, &d) >= 0) {
        fprintf(stderr, "%s: the destination's side: %s, %s (%s): '%s'\n", b->prog,
                d->migration->id, d->migration->state, phase_name(d->migration->phase),
                d->migration->error);
        protobuf_c_message_free_unpacked(&d->base, NULL);
    }
}

/* PrepareIncoming on the destination (listen 127.0.0.1:0, resume when done), then
 * StartMigration on the source with the benchmark's policy (pre-copy off by default). *@ret is StartMigration's answer (free it), @dst_id the destination's
 * job, *@ret_t0 the time StartMigration was sent. */
static int
migration_start(const BenchMigration *b, char *dst_id, size_t dst_id_size,
                VfioMigd__V1__MigrationResponse **ret, uint64_t *ret_t0)
{
    VfioMigd__V1__PrepareIncomingRequest prep = VFIO_MIGD__V1__PREPARE_INCOMING_REQUEST__INIT;
    VfioMigd__V1__PrepareIncomingResponse *prepared = NULL;
    VfioMigd__V1__StartMigrationRequest start = VFIO_MIGD__V1__START_MIGRATION_REQUEST__INIT;
    VfioMigd__V1__MigrationOptions opts = VFIO_MIGD__V1__MIGRATION_OPTIONS__INIT;
    VfioMigd__V1__MigrationResponse *m = NULL;
    uint64_t t0;
    int r;

    prep.group = (char *) b->prog;
    prep.listen = (char *) "127.0.0.1:0";
    /* The destination resumes after it confirmed (outside the measured times), so that the
     * next round can migrate back from it (bench_migration_swap()). */
    prep.auto_resume = true;
    prep.tls = b->tls_off ? VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_OFF
                          : VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_PSK;
    r = BENCH_CALL(b->dst, b->prog, "MigrationService", PrepareIncoming, &prep,
                   prepare_incoming_response, &prepared);
    if (r < 0) {
        return r;
    }
    (void) snprintf(dst_id, dst_id_size, "%s", prepared->migration->id);
    opts.precopy = b->precopy ? VFIO_MIGD__V1__PRECOPY_MODE__PRECOPY_AUTO
                              : VFIO_MIGD__V1__PRECOPY_MODE__PRECOPY_OFF;
    opts.downtime_target_ms = b->downtime_target_ms;
    opts.max_precopy_ms = b->max_precopy_ms;
    opts.channels = b->channels;
    opts.timeout_ms = MIGRATION_TIMEOUT_MS;
    opts.tls = b->tls_off ? VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_OFF
                          : VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_PSK;
    start.group = (char *) b->prog;
    start.address = prepared->address;
    start.token = prepared->token;
    start.options = &opts;
    t0 = clock_now_ns();
    r = BENCH_CALL(b->src, b->prog, "MigrationService", StartMigration, &start, migration_response,
                   &m);
    protobuf_c_message_free_unpacked(&prepared->base, NULL);
    if (r < 0) {
        return r;
    }
    *ret = m;
    *ret_t0 = t0;
    return 0;
}

/* Follows the source's migration @id through WatchEvents until it is no longer active or
 * has an error, or until @deadline_ns. An event stream, not polling: the benchmark must not
 * load the daemon it measures (GetMigration every 10 ms cost the migration about 3 %). */
static int
wait_for_end(const BenchMigration *b, const char *id, uint64_t deadline_ns)
{
    VfioMigd__V1__MigrationIdRequest req = VFIO_MIGD__V1__MIGRATION_ID_REQUEST__INIT;
    RpcStream *s;
    RpcError err;
    int r;

    req.id = (char *) id;
    r = rpc_client_stream_open(b->src, "/vfio_migd.v1.MigrationService/WatchEvents", &req.base,
                               BENCH_CALL_TIMEOUT_MS, &s, &err);
    if (r < 0) {
        fprintf(stderr, "%s: WatchEvents: %s\n", b->prog, err.message);
        return r;
    }
    for (;;) {
        VfioMigd__V1__MigrationEvent *ev = NULL;
        uint64_t now = clock_now_ns();
        bool over;

        r = now >= deadline_ns ? -ETIMEDOUT
                               : rpc_stream_next(s, &vfio_migd__v1__migration_event__descriptor,
                                                 (int) ((deadline_ns - now) / 1000000u) + 1,
                                                 (ProtobufCMessage **) &ev, &err);
        if (r <= 0) {
            break;
        }
        over = !ev->migration || strcmp(ev->migration->state, "active") != 0 ||
               ev->migration->error[0];
        protobuf_c_message_free_unpacked(&ev->base, NULL);
        if (over) {
            break;
        }
    }
    rpc_stream_close(s);
    if (r == -ETIMEDOUT) {
        fprintf(stderr, "%s: the migration is still active after %d ms\n", b->prog,
                MIGRATION_DEADLINE_MS);
    } else if (r < 0) {
        fprintf(stderr, "%s: WatchEvents: %s\n", b->prog, err.message);
    }
    return r < 0 ? r : 0; /* 0: the stream ended (the migration is over) */
}

/* Starts the migration and waits until the job is no longer active, or has an error (a
 * failure is under way: its end is not waited for). *@ret is the source's GetMigration
 * answer then (free it). */
static int
migrate(const BenchMigration *b, VfioMigd__V1__MigrationResponse **ret, uint64_t *ret_wall_ns)
{
    VfioMigd__V1__MigrationResponse *m = NULL;
    char id[64], dst_id[64];
    uint64_t t0;
    int r;

    r = migration_start(b, dst_id, sizeof(dst_id), &m, &t0);
    if (r < 0) {
        return r;
    }
    (void) snprintf(id, sizeof(id), "%s", m->migration->id);
    protobuf_c_message_free_unpacked(&m->base, NULL);
    r = wait_for_end(b, id, t0 + (uint64_t) MIGRATION_DEADLINE_MS * 1000000u);
    *ret_wall_ns = clock_now_ns() - t0;
    if (r >= 0) {
        r = get_migration(b, b->src, id, &m);
    }
    if (r < 0) {
        return r;
    }
    if (m->migration->phase != VFIO_MIGD__V1__MIGRATION_PHASE__MIGRATION_PHASE_COMPLETED) {
        report_failure(b, dst_id, m->migration);
        protobuf_c_message_free_unpacked(&m->base, NULL);
        return -EREMOTEIO;
    }
    *ret = m;
    return 0;
}

/* ---- the run ---- */

/* The pumps before or after the migration: clear, and TLS unless the migration is clear. */
static int
pumps_run(const BenchMigration *b, double *ret_gib_s, double *ret_tls_gib_s,
          BenchMigrationRun *run)
{
    uint64_t cpu_ns = 0, tls_cpu_ns = 0;
    int r = pump_run(b, /* tls= */ false, ret_gib_s, &cpu_ns);

    if (r >= 0 && !b->tls_off) {
        r = pump_run(b, /* tls= */ true, ret_tls_gib_s, &tls_cpu_ns);
    }
    run->pump_cpu_ns += cpu_ns;
    run->tls_pump_cpu_ns += tls_cpu_ns;
    return r;
}

int
bench_migration_run(BenchMigration *b, BenchMigrationRun *ret)
{
    BenchMigrationRun run = {};
    int r;

    r = pumps_run(b, &run.pump_before_gib_s, &run.tls_pump_before_gib_s, &run);
    if (r < 0) {
        return r;
    }
    run.src_cpu_ns = pid_cpu_ns(b->src_daemon.pid);
    run.dst_cpu_ns = pid_cpu_ns(b->dst_daemon.pid);
    r = migrate(b, &run.resp, &run.wall_ns);
    run.src_cpu_ns = pid_cpu_ns(b->src_daemon.pid) - run.src_cpu_ns;
    run.dst_cpu_ns = pid_cpu_ns(b->dst_daemon.pid) - run.dst_cpu_ns;
    if (r < 0) {
        return r;
    }
    r = pumps_run(b, &run.pump_after_gib_s, &run.tls_pump_after_gib_s, &run);
    if (r < 0) {
        bench_migration_run_done(&run);
        return r;
    }
    *ret = run;
    return 0;
}

int
bench_migration_check(const BenchMigration *b, const BenchMigrationRun *run)
{
    const VfioMigd__V1__Migration *mig = run->resp->migration;
    uint64_t expected = b->n_devices * b->device_bytes;
    int r = 0;

    if (b->precopy ? mig->bytes < expected : mig->bytes != expected) {
        fprintf(stderr, "%s: moved %llu bytes, expected %s%llu\n", b->prog,
                (unsigned long long) mig->bytes, b->precopy ? "at least " : "",
                (unsigned long long) expected);
        r = -EBADMSG;
    }
    report_cpu(b, run, 2 * expected, run->resp->migration->bytes);
    return r;
}

void
bench_migration_swap(BenchMigration *b)
{
    RpcClient *c = b->src;
    Daemon d = b->src_daemon;

    b->src = b->dst;
    b->dst = c;
    b->src_daemon = b->dst_daemon;
    b->dst_daemon = d;
}

int
bench_migration_run_rounds(BenchMigration *b, BenchMigrationRun *runs, size_t n,
                           BenchRoundReport report, void *userdata)
{
    int r = 0;

    for (size_t i = 0; r >= 0 && i < n; i++, bench_migration_swap(b)) {
        r = bench_migration_run(b, &runs[i]);
        if (r >= 0) {
            report(b, i, &runs[i], userdata);
            r = bench_migration_check(b, &runs[i]);
        }
    }
    return r;
}

int
bench_migration_main(BenchMigration *b, int argc, char **argv, BenchRoundReport report,
                     BenchRoundKey key, BenchRoundPrint print)
{
    BenchMigrationRun runs[BENCH_MIGRATION_MAX_ROUNDS] = {};
    double keys[BENCH_MIGRATION_MAX_ROUNDS];
    size_t rounds = bench_migration_rounds();
    const char *binary = NULL;
    int r;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--tls=off") == 0 || strcmp(argv[i], "--tls=psk") == 0) {
            b->tls_off = strcmp(argv[i], "--tls=off") == 0;
        } else {
            binary = argv[i];
        }
    }
    r = bench_migration_start(b, bench_daemon_binary(binary));
    if (r >= 0 && b->prepare) {
        r = b->prepare(b);
    }
    if (r >= 0) {
        r = bench_migration_run_rounds(b, runs, rounds, report, b->userdata);
    }
    if (r >= 0) {
        for (size_t i = 0; i < rounds; i++) {
            keys[i] = key(b, &runs[i]);
        }
        print(b, &runs[bench_median_index(keys, rounds)], rounds);
    }
    bench_migration_runs_done(runs, rounds);
    bench_migration_stop(b);
    return r < 0 ? 1 : 0;
}

void
bench_migration_runs_done(BenchMigrationRun *runs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bench_migration_run_done(&runs[i]);
    }
}

size_t
bench_migration_rounds(void)
{
    const char *e = getenv("BENCH_ROUNDS");
    long v = e ? strtol(e, NULL, 10) : 0;

    return v >= 1 && v <= BENCH_MIGRATION_MAX_ROUNDS ? (size_t) v : 3;
}

void
bench_migration_run_done(BenchMigrationRun *run)
{
    if (run->resp) {
        protobuf_c_message_free_unpacked(&run->resp->base, NULL);
        run->resp = NULL;
    }
}

double
bench_migration_gib_s(const BenchMigrationRun *run)
{
    const VfioMigd__V1__Migration *mig = run->resp->migration;

    return (double) mig->bytes / GIB / ((double) mig->elapsed_us / 1e6);
}

double
bench_migration_pump_gib_s(const BenchMigrationRun *run)
{
    return (run->pump_before_gib_s + run->pump_after_gib_s) / 2;
}

double
bench_migration_ratio(const BenchMigrationRun *run)
{
    return bench_migration_gib_s(run) / bench_migration_pump_gib_s(run);
}

double
bench_migration_tls_pump_gib_s(const BenchMigrationRun *run)
{
    return (run->tls_pump_before_gib_s + run->tls_pump_after_gib_s) / 2;
}

double
bench_migration_ratio_key(const BenchMigration *b, const BenchMigrationRun *run)
{
    (void) b;
    return bench_migration_ratio(run);
}
