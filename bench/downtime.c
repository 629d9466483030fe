/* SPDX-License-Identifier: MIT */
/*
 * bench-downtime — how long the switchover of a migration without pre-copy takes, against
 * the least it could take: the time the link needs for the whole state plus one arc.
 *
 * The plan: start two vfio-migd (argv[1], $VFIO_MIGD or ./build/vfio-migd), a source and a
 * destination, each on its own socket. On each, attach 4 sim devices "size=64M" with the same
 * names and group them; on the source also a spare sim device "size=64M" outside the group.
 * Then, in this order:
 *   1. arc: 5 times, SetDeviceState(spare, STOP_COPY) then back to RUNNING; arc_ms is the
 *      median of the daemon's elapsed_us of the RUNNING -> STOP_COPY request (the kernel
 *      path RUNNING -> RUNNING_P2P -> STOP -> STOP_COPY, what every device of the group does
 *      at the switchover, all of them in parallel). Sim devices have latency_ms=0 by default,
 *      so this is the daemon's own cost of a transition (tens of microseconds), not a sleep;
 *   2. pump: 4 TCP connections over 127.0.0.1, each moving 64 MiB with write()/read() of
 *      1 MiB buffers and nothing else (one sender and one receiver thread per connection,
 *      connected beforehand, released together);
 *   3. migration: PrepareIncoming on the destination (listen 127.0.0.1:0), StartMigration on
 *      the source with precopy OFF (so all the state moves during the switchover), polling
 *      GetMigration on the source every 10 ms until it is no longer active; downtime_ms is
 *      the source's downtime_us (switchover start -> the destination's confirmation);
 *   4. pump again, as in 2; the pump rate is the mean of 2 and 4.
 * floor_ms = bytes / pump rate + arc_ms. Prints ONE JSON line on stdout (details on stderr):
 *   {"bench":"downtime","bytes":..,"downtime_ms":..,"floor_ms":..,"ratio":..}
 * ratio = downtime / floor. Target (reported, not asserted): ratio <= 1.3.
 *
 * The daemons are forked before grpc_init() (grpc-core.md pitfall 13).
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "client.h"
#include "common.h"
#include "vfio_migd/v1/devices.pb-c.h"
#include "vfio_migd/v1/groups.pb-c.h"
#include "vfio_migd/v1/migrations.pb-c.h"

#define N_DEVICES 4
#define DEVICE_BYTES (64ull << 20)
#define DEVICE_OPTIONS "size=64M"
#define SPARE "spare"
#define ARC_RUNS 5
#define PUMP_BUFFER (1u << 20)
#define GROUP "bench-downtime"
#define POLL_MS 10
/* A few times what the slowest machine needs; a job that is still active by then is stuck. */
#define MIGRATION_DEADLINE_MS 90000
#define MIGRATION_TIMEOUT_MS 30000 /* the daemons' own waits (connect, confirm) */
#define GIB ((double) (1ull << 30))

static const char *prog = "bench-downtime";

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

/* User + system CPU of process @pid (a daemon, every thread), in ns; clock-tick resolution. */
static uint64_t
pid_cpu_ns(pid_t pid)
{
    char path[64], line[1024], *p;
    unsigned long utime = 0, stime = 0;
    long hz = sysconf(_SC_CLK_TCK);
    FILE *f;

    (void) snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
    f = fopen(path, "re");
    if (!f) {
        return 0;
    }
    p = fgets(line, sizeof(line), f) ? strrchr(line, ')') : NULL;
    fclose(f);
    if (!p || hz <= 0 ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
               &stime) != 2) {
        return 0;
    }
    return (uint64_t) (utime + stime) * (1000000000u / (uint64_t) hz);
}

/* ---- the plain socket pump ---- */

typedef struct PumpConn {
    pthread_t sender, receiver;
    int send_fd, recv_fd;
    uint64_t bytes;
    pthread_barrier_t *gate;
    int r; /* 0, or the first failure (negative errno), either side */
} PumpConn;

static void *
pump_send(void *arg)
{
    PumpConn *c = arg;
    uint8_t *buf = malloc(PUMP_BUFFER);

    if (buf) {
        memset(buf, 0xa5, PUMP_BUFFER); /* touched before the clock starts */
    }
    (void) pthread_barrier_wait(c->gate);
    for (uint64_t left = c->bytes; buf && left > 0;) {
        size_t want = left < PUMP_BUFFER ? (size_t) left : PUMP_BUFFER;
        ssize_t n = write(c->send_fd, buf, want);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            c->r = n < 0 ? -errno : -EIO;
            break;
        }
        left -= (uint64_t) n;
    }
    if (!buf) {
        c->r = -ENOMEM;
    }
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

    if (buf) {
        memset(buf, 0, PUMP_BUFFER);
    }
    (void) pthread_barrier_wait(c->gate);
    while (buf && got < c->bytes) {
        ssize_t n = read(c->recv_fd, buf, PUMP_BUFFER);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            c->r = n < 0 ? -errno : -ENODATA;
            (void) shutdown(c->recv_fd, SHUT_RDWR); /* the sender must not wait for ever */
            break;
        }
        got += (uint64_t) n;
    }
    if (!buf) {
        c->r = -ENOMEM;
    }
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

/* Moves @n x @bytes over loopback; *@ret_gib_s is the whole pump's rate, *@ret_cpu_ns the
 * CPU it took (this process). */
static int
pump_run(size_t n, uint64_t bytes, double *ret_gib_s, uint64_t *ret_cpu_ns)
{
    PumpConn conns[N_DEVICES];
    pthread_barrier_t gate;
    uint64_t t0, t1, c0;
    int r;

    if (n > N_DEVICES) {
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        conns[i] = (PumpConn){.send_fd = -1, .recv_fd = -1, .bytes = bytes, .gate = &gate};
    }
    r = pump_connect(conns, n);
    if (r == 0) {
        r = -pthread_barrier_init(&gate, NULL, (unsigned) (2 * n + 1));
    }
    for (size_t i = 0; r == 0 && i < n; i++) {
        /* A thread that could not start would leave the others at the gate for ever. */
        if (pthread_create(&conns[i].sender, NULL, pump_send, &conns[i]) != 0 ||
            pthread_create(&conns[i].receiver, NULL, pump_receive, &conns[i]) != 0) {
            fprintf(stderr, "%s: cannot start the pump's threads\n", prog);
            exit(1);
        }
    }
    if (r == 0) {
        c0 = self_cpu_ns();
        (void) pthread_barrier_wait(&gate);
        t0 = bench_now_ns();
        for (size_t i = 0; i < n; i++) {
            (void) pthread_join(conns[i].sender, NULL);
            (void) pthread_join(conns[i].receiver, NULL);
            if (conns[i].r < 0 && r == 0) {
                r = conns[i].r;
            }
        }
        t1 = bench_now_ns();
        *ret_cpu_ns = self_cpu_ns() - c0;
        (void) pthread_barrier_destroy(&gate);
        *ret_gib_s = (double) (n * bytes) / GIB / ((double) (t1 - t0) / 1e9);
    }
    for (size_t i = 0; i < n; i++) {
        if (conns[i].send_fd >= 0) {
            (void) close(conns[i].send_fd);
        }
        if (conns[i].recv_fd >= 0) {
            (void) close(conns[i].recv_fd);
        }
    }
    if (r < 0) {
        fprintf(stderr, "%s: the pump failed: %s\n", prog, strerror(-r));
    }
    return r;
}

/* ---- the daemons ---- */

static int
call(RpcClient *c, const char *method, const ProtobufCMessage *req,
     const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp)
{
    RpcError err = {};
    int r = rpc_client_call(c, method, req, desc, 60000, resp, &err);

    if (r < 0) {
        fprintf(stderr, "%s: %s: %s (%s)\n", prog, method, err.message,
                rpc_status_code_name(err.code));
        if (*resp) {
            protobuf_c_message_free_unpacked(*resp, NULL);
            *resp = NULL;
        }
    }
    return r;
}

/* Attaches N_DEVICES sim devices "m0".."m3" and groups them as GROUP. */
static int
setup_side(RpcClient *c)
{
    VfioMigd__V1__CreateGroupRequest req = VFIO_MIGD__V1__CREATE_GROUP_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    char names[N_DEVICES][16], *ids[N_DEVICES];
    int r = 0;

    for (size_t i = 0; r >= 0 && i < N_DEVICES; i++) {
        (void) snprintf(names[i], sizeof(names[i]), "m%zu", i);
        ids[i] = names[i];
        r = bench_attach_sim(c, ids[i], DEVICE_OPTIONS);
    }
    if (r < 0) {
        return r;
    }
    req.name = (char *) GROUP;
    req.n_device_ids = N_DEVICES;
    req.device_ids = ids;
    r = call(c, "/vfio_migd.v1.GroupService/CreateGroup", &req.base,
             &vfio_migd__v1__create_group_response__descriptor, &resp);
    if (resp) {
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    return r;
}

static int
start_daemon(const char *binary, Daemon *d, const char *role)
{
    int r = bench_daemon_start(binary, d);

    if (r < 0) {
        fprintf(stderr, "%s: cannot start the %s daemon '%s': %s\n", prog, role, binary,
                strerror(-r));
    }
    return r;
}

static const char *
phase_name(VfioMigd__V1__MigrationPhase phase)
{
    const ProtobufCEnumDescriptor *desc = &vfio_migd__v1__migration_phase__descriptor;
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(desc, (int) phase);

    return v ? v->name : "?";
}

static int
get_migration(RpcClient *c, const char *id, VfioMigd__V1__MigrationResponse **ret)
{
    VfioMigd__V1__MigrationIdRequest req = VFIO_MIGD__V1__MIGRATION_ID_REQUEST__INIT;

    req.id = (char *) id;
    *ret = NULL;
    return call(c, "/vfio_migd.v1.MigrationService/GetMigration", &req.base,
                &vfio_migd__v1__migration_response__descriptor, (ProtobufCMessage **) ret);
}

/* A failed (or failing) migration: what both sides say. */
static void
report_failure(RpcClient *dst, const char *dst_id, const VfioMigd__V1__Migration *s)
{
    VfioMigd__V1__MigrationResponse *d = NULL;

    fprintf(stderr, "%s: the migration failed: source %s, %s (%s): '%s'\n", prog, s->id,
            s->state, phase_name(s->phase), s->error);
    if (get_migration(dst, dst_id, &d) >= 0) {
        fprintf(stderr, "%s: the destination's side: %s, %s (%s): '%s'\n", prog,
                d->migration->id, d->migration->state, phase_name(d->migration->phase),
                d->migration->error);
        protobuf_c_message_free_unpacked(&d->base, NULL);
    }
}

/* PrepareIncoming on @dst, StartMigration on @src (precopy off), polls @src until the job is
 * no longer active, or has an error (a failure is under way: its end is not waited for).
 * *@ret is the source's last GetMigration answer (free it). */
static int
migrate(RpcClient *src, RpcClient *dst, VfioMigd__V1__MigrationResponse **ret,
        uint64_t *ret_wall_ns)
{
    VfioMigd__V1__PrepareIncomingRequest prep = VFIO_MIGD__V1__PREPARE_INCOMING_REQUEST__INIT;
    VfioMigd__V1__PrepareIncomingResponse *prepared = NULL;
    VfioMigd__V1__StartMigrationRequest start = VFIO_MIGD__V1__START_MIGRATION_REQUEST__INIT;
    VfioMigd__V1__MigrationOptions opts = VFIO_MIGD__V1__MIGRATION_OPTIONS__INIT;
    VfioMigd__V1__MigrationResponse *m = NULL;
    char id[64], dst_id[64];
    uint64_t t0, deadline;
    int r;

    prep.group = (char *) GROUP;
    prep.listen = (char *) "127.0.0.1:0";
    r = call(dst, "/vfio_migd.v1.MigrationService/PrepareIncoming", &prep.base,
             &vfio_migd__v1__prepare_incoming_response__descriptor,
             (ProtobufCMessage **) &prepared);
    if (r < 0) {
        return r;
    }
    (void) snprintf(dst_id, sizeof(dst_id), "%s", prepared->migration->id);
    opts.precopy = VFIO_MIGD__V1__PRECOPY_MODE__PRECOPY_OFF;
    opts.timeout_ms = MIGRATION_TIMEOUT_MS;
    start.group = (char *) GROUP;
    start.address = prepared->address;
    start.token = prepared->token;
    start.options = &opts;
    t0 = bench_now_ns();
    r = call(src, "/vfio_migd.v1.MigrationService/StartMigration", &start.base,
             &vfio_migd__v1__migration_response__descriptor, (ProtobufCMessage **) &m);
    protobuf_c_message_free_unpacked(&prepared->base, NULL);
    if (r < 0) {
        return r;
    }
    (void) snprintf(id, sizeof(id), "%s", m->migration->id);
    deadline = t0 + (uint64_t) MIGRATION_DEADLINE_MS * 1000000u;
    while (strcmp(m->migration->state, "active") == 0 && !m->migration->error[0]) {
        if (bench_now_ns() > deadline) {
            fprintf(stderr, "%s: the migration is still active (%s) after %d ms\n", prog,
                    phase_name(m->migration->phase), MIGRATION_DEADLINE_MS);
            protobuf_c_message_free_unpacked(&m->base, NULL);
            return -ETIMEDOUT;
        }
        (void) usleep(POLL_MS * 1000);
        protobuf_c_message_free_unpacked(&m->base, NULL);
        r = get_migration(src, id, &m);
        if (r < 0) {
            return r;
        }
    }
    *ret_wall_ns = bench_now_ns() - t0;
    if (m->migration->phase != VFIO_MIGD__V1__MIGRATION_PHASE__MIGRATION_PHASE_COMPLETED) {
        report_failure(dst, dst_id, m->migration);
        protobuf_c_message_free_unpacked(&m->base, NULL);
        return -EREMOTEIO;
    }
    *ret = m;
    return 0;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return (x > y) - (x < y);
}

/* One SetDeviceState of @id to @target: the daemon's elapsed time in ms, and its slowest arc. */
static int
set_state_ms(RpcClient *c, const char *id, VfioMigd__V1__DeviceState target, double *ret_ms,
             double *ret_slowest_arc_ms)
{
    VfioMigd__V1__SetDeviceStateRequest req = VFIO_MIGD__V1__SET_DEVICE_STATE_REQUEST__INIT;
    VfioMigd__V1__SetDeviceStateResponse *resp = NULL;
    double slowest = 0;
    int r;

    req.id = (char *) id;
    req.target = target;
    r = call(c, "/vfio_migd.v1.DeviceService/SetDeviceState", &req.base,
             &vfio_migd__v1__set_device_state_response__descriptor, (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    for (size_t i = 0; i < resp->n_arcs; i++) {
        double d = (double) resp->arcs[i]->duration_us / 1000.0;
        slowest = d > slowest ? d : slowest;
    }
    *ret_ms = (double) resp->elapsed_us / 1000.0;
    *ret_slowest_arc_ms = slowest;
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return 0;
}

/* The median RUNNING -> STOP_COPY request on the spare device, and the slowest arc seen. */
static int
measure_arc(RpcClient *c, double *ret_ms, double *ret_slowest_arc_ms)
{
    double runs[ARC_RUNS], slowest = 0, arc = 0, back = 0;
    int r = bench_attach_sim(c, SPARE, DEVICE_OPTIONS);

    for (int i = 0; r >= 0 && i < ARC_RUNS; i++) {
        r = set_state_ms(c, SPARE, VFIO_MIGD__V1__DEVICE_STATE__DEVICE_STATE_STOP_COPY, &runs[i],
                         &arc);
        slowest = arc > slowest ? arc : slowest;
        if (r >= 0) {
            r = set_state_ms(c, SPARE, VFIO_MIGD__V1__DEVICE_STATE__DEVICE_STATE_RUNNING, &back,
                             &arc);
        }
    }
    if (r < 0) {
        return r;
    }
    qsort(runs, ARC_RUNS, sizeof(runs[0]), cmp_double);
    *ret_ms = runs[ARC_RUNS / 2];
    *ret_slowest_arc_ms = slowest;
    return 0;
}

/* CPU per byte moved: on a shared machine the rates swing with the load, these hardly do. */
static void
report_cpu(uint64_t pump_cpu_ns, uint64_t pump_bytes, uint64_t src_cpu_ns, uint64_t dst_cpu_ns,
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
    fprintf(stderr, "%s: CPU per byte: pump %.3f ns (send + receive); migration %.3f ns "
            "(source %.3f + destination %.3f); load average %.2f %.2f %.2f\n", prog,
            (double) pump_cpu_ns / (double) pump_bytes,
            (double) (src_cpu_ns + dst_cpu_ns) / (double) bytes,
            (double) src_cpu_ns / (double) bytes, (double) dst_cpu_ns / (double) bytes, l1, l5,
            l15);
}

int
main(int argc, char **argv)
{
    const char *binary = bench_daemon_binary(argc > 1 ? argv[1] : NULL);
    VfioMigd__V1__MigrationResponse *m = NULL;
    RpcClient *src = NULL, *dst = NULL;
    Daemon ds = {0}, dd = {0};
    double pump1 = 0, pump2 = 0, arc_ms = 0, slowest_arc_ms = 0;
    uint64_t wall_ns = 0, pump_cpu1 = 0, pump_cpu2 = 0, src_cpu = 0, dst_cpu = 0;
    int r;

    /* Both forks before grpc_init(). */
    r = start_daemon(binary, &ds, "source");
    if (r >= 0) {
        r = start_daemon(binary, &dd, "destination");
    }
    if (r < 0) {
        bench_daemon_stop(&ds);
        return 1;
    }
    (void) signal(SIGPIPE, SIG_IGN); /* a broken pump connection is an error, not a death */
    rpc_client_global_init();
    r = rpc_client_new(ds.socket, &src);
    if (r >= 0) {
        r = rpc_client_new(dd.socket, &dst);
    }
    if (r >= 0) {
        r = bench_daemon_wait_ready(&ds, src);
    }
    if (r >= 0) {
        r = bench_daemon_wait_ready(&dd, dst);
    }
    if (r >= 0) {
        r = setup_side(src);
    }
    if (r >= 0) {
        r = setup_side(dst);
    }
    if (r >= 0) {
        r = measure_arc(src, &arc_ms, &slowest_arc_ms);
    }
    if (r >= 0) {
        r = pump_run(N_DEVICES, DEVICE_BYTES, &pump1, &pump_cpu1);
    }
    if (r >= 0) {
        src_cpu = pid_cpu_ns(ds.pid);
        dst_cpu = pid_cpu_ns(dd.pid);
        r = migrate(src, dst, &m, &wall_ns);
        src_cpu = pid_cpu_ns(ds.pid) - src_cpu;
        dst_cpu = pid_cpu_ns(dd.pid) - dst_cpu;
    }
    if (r >= 0) {
        r = pump_run(N_DEVICES, DEVICE_BYTES, &pump2, &pump_cpu2);
    }
    if (r >= 0) {
        const VfioMigd__V1__Migration *mig = m->migration;
        double pump = (pump1 + pump2) / 2;
        double downtime_ms = (double) mig->downtime_us / 1000.0;
        double data_ms = (double) mig->bytes / GIB / pump * 1000.0;
        double floor_ms = data_ms + arc_ms;

        fprintf(stderr, "%s: pump before %.3f GiB/s, after %.3f GiB/s -> data %.1f ms; "
                "RUNNING->STOP_COPY %.3f ms (median of %d, slowest single arc %.3f ms); "
                "migration %s: elapsed %.1f ms, downtime %.1f ms\n", prog, pump1, pump2, data_ms,
                arc_ms, ARC_RUNS, slowest_arc_ms, mig->id, (double) mig->elapsed_us / 1000.0,
                downtime_ms);
        printf("{\"bench\":\"downtime\",\"bytes\":%llu,\"downtime_ms\":%.1f,"
               "\"floor_ms\":%.1f,\"ratio\":%.3f}\n", (unsigned long long) mig->bytes,
               downtime_ms, floor_ms, downtime_ms / floor_ms);
        fflush(stdout);
        if (mig->bytes != N_DEVICES * DEVICE_BYTES) {
            fprintf(stderr, "%s: moved %llu bytes, expected %llu\n", prog,
                    (unsigned long long) mig->bytes,
                    (unsigned long long) (N_DEVICES * DEVICE_BYTES));
            r = -EBADMSG;
        }
        report_cpu(pump_cpu1 + pump_cpu2, 2 * N_DEVICES * DEVICE_BYTES, src_cpu, dst_cpu,
                   mig->bytes);
        protobuf_c_message_free_unpacked(&m->base, NULL);
    }
    rpc_client_free(src);
    rpc_client_free(dst);
    rpc_client_global_shutdown();
    bench_daemon_stop(&ds);
    bench_daemon_stop(&dd);
    return r < 0 ? 1 : 0;
}
