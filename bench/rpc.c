/* SPDX-License-Identifier: MIT */
/*
 * bench-rpc — unary RPC latency, throughput and idle memory of a real vfio-migd.
 *
 * The plan: start the daemon binary (argv[1], $VFIO_MIGD or ./build/vfio-migd) on a socket
 * in a fresh temporary directory, wait until GetVersion answers (10 s at most), attach one
 * sim device ("size=1M"), then
 *   1. 200 warm-up GetDevice calls;
 *   2. 10,000 sequential GetDevice calls, each timed (CLOCK_MONOTONIC) -> p50/p99;
 *   3. 4 threads, each with its own RpcClient (its own connection), 10,000 calls each,
 *      released together -> calls/s for the whole phase and its p50/p99;
 *   4. 1 s of idle, then the daemon's VmRSS from /proc/PID/status;
 * then SIGTERM the daemon and wait for it. Prints ONE JSON line on stdout; progress and
 * errors go to stderr. Targets (reported, not asserted): p50 <= 100 us, p99 <= 1 ms,
 * >= 15,000 calls/s with 4 callers, RSS <= 16 MiB.
 *
 * The daemon is forked before grpc_init(): gRPC's threads must not exist at fork time
 * (shared reference grpc-core.md §7, pitfall 13).
 */

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "util/macro.h"
#include "vfio_migd/v1/devices.pb-c.h"
#include "vfio_migd/v1/system.pb-c.h"

#define BENCH_WARMUP_CALLS 200
#define BENCH_SEQ_CALLS 10000
#define BENCH_THREADS 4
#define BENCH_THREAD_CALLS 10000
#define BENCH_THREAD_WARMUP 50  /* per thread, before the start line: connect and settle */
#define BENCH_START_TIMEOUT_MS 10000
#define BENCH_CALL_TIMEOUT_MS 5000
#define BENCH_STOP_TIMEOUT_MS 10000
#define BENCH_DEVICE "bench0"

typedef struct Daemon {
    pid_t pid;
    char dir[64];       /* mkdtemp() directory holding the socket */
    char socket[128];
    char lock[136];     /* the daemon's lock file next to the socket */
} Daemon;

/* Where the workers wait, warmed up, until every one is ready and the clock starts. */
typedef struct StartGate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned ready;     /* workers done with their warm-up */
    bool go;            /* set once: start (or, with cancel, give up) */
    bool cancel;
} StartGate;

typedef struct Worker {
    pthread_t thread;
    RpcClient *client;
    StartGate *gate;
    uint64_t *lat_ns;   /* BENCH_THREAD_CALLS entries */
    int r;              /* 0, or the first call's failure */
} Worker;

/* ---- helpers */

static uint64_t
now_ns(void)
{
    struct timespec ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return x < y ? -1 : x > y;
}

/* The @pct percentile of @v (sorted in place), in microseconds. */
static double
percentile_us(uint64_t *v, size_t n, unsigned pct)
{
    size_t i = n * pct / 100;

    qsort(v, n, sizeof(v[0]), cmp_u64);
    return (double) v[MIN(i, n - 1)] / 1e3;
}

static int
get_device(RpcClient *c, RpcError *err)
{
    VfioMigd__V1__GetDeviceRequest req = VFIO_MIGD__V1__GET_DEVICE_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    int r;

    req.id = BENCH_DEVICE;
    r = rpc_client_call(c, "/vfio_migd.v1.DeviceService/GetDevice", &req.base,
                        &vfio_migd__v1__get_device_response__descriptor, BENCH_CALL_TIMEOUT_MS,
                        &resp, err);
    if (r < 0) {
        return r;
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

/* ---- the daemon */

static int
daemon_start(const char *binary, Daemon *d)
{
    snprintf(d->dir, sizeof(d->dir), "/tmp/bench-rpc.XXXXXX");
    if (!mkdtemp(d->dir)) {
        return -errno;
    }
    snprintf(d->socket, sizeof(d->socket), "%s/api.sock", d->dir);
    snprintf(d->lock, sizeof(d->lock), "%s.lock", d->socket);

    d->pid = fork();
    if (d->pid < 0) {
        return -errno;
    }
    if (d->pid == 0) {
        execl(binary, binary, "--socket", d->socket, "--log-level", "warning", (char *) NULL);
        fprintf(stderr, "bench-rpc: cannot run '%s': %s\n", binary, strerror(errno));
        _exit(127);
    }
    return 0;
}

/* Polls GetVersion until it answers, the daemon dies, or 10 s pass. */
static int
daemon_wait_ready(Daemon *d, RpcClient *c)
{
    uint64_t deadline = now_ns() + (uint64_t) BENCH_START_TIMEOUT_MS * 1000000u;
    VfioMigd__V1__GetVersionRequest req = VFIO_MIGD__V1__GET_VERSION_REQUEST__INIT;
    RpcError err = {};
    int status;

    while (now_ns() < deadline) {
        ProtobufCMessage *resp = NULL;

        if (rpc_client_call(c, "/vfio_migd.v1.SystemService/GetVersion", &req.base,
                            &vfio_migd__v1__get_version_response__descriptor, 1000, &resp,
                            &err) == 0) {
            protobuf_c_message_free_unpacked(resp, NULL);
            return 0;
        }
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            fprintf(stderr, "bench-rpc: the daemon exited before answering (status 0x%x)\n",
                    status);
            return -ECHILD;
        }
        (void) usleep(20000);
    }
    fprintf(stderr, "bench-rpc: the daemon did not answer within %d ms: %s (%s)\n",
            BENCH_START_TIMEOUT_MS, err.message, rpc_status_code_name(err.code));
    return -ETIMEDOUT;
}

/* VmRSS of @pid in KiB, or a negative errno. */
static long
daemon_rss_kib(pid_t pid)
{
    char path[64], line[256];
    long kib = -ENOENT;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
    f = fopen(path, "re");
    if (!f) {
        return -errno;
    }
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) {
            break;
        }
    }
    fclose(f);
    return kib;
}

/* SIGTERM, wait up to 10 s, then SIGKILL; removes the temporary directory. */
static void
daemon_stop(Daemon *d)
{
    uint64_t deadline = now_ns() + (uint64_t) BENCH_STOP_TIMEOUT_MS * 1000000u;
    int status;

    if (d->pid > 0) {
        (void) kill(d->pid, SIGTERM);
        while (waitpid(d->pid, &status, WNOHANG) == 0) {
            if (now_ns() > deadline) {
                fprintf(stderr, "bench-rpc: the daemon ignored SIGTERM, killing it\n");
                (void) kill(d->pid, SIGKILL);
                (void) waitpid(d->pid, &status, 0);
                break;
            }
            (void) usleep(10000);
        }
        d->pid = 0;
    }
    (void) unlink(d->socket);
    (void) unlink(d->lock); /* the daemon's "<socket>.lock" (docs/operations.md) */
    (void) rmdir(d->dir);
}

static int
attach_sim(RpcClient *c)
{
    VfioMigd__V1__AttachDeviceRequest req = VFIO_MIGD__V1__ATTACH_DEVICE_REQUEST__INIT;
    VfioMigd__V1__SimSource sim = VFIO_MIGD__V1__SIM_SOURCE__INIT;
    ProtobufCMessage *resp = NULL;
    RpcError err = {};
    int r;

    sim.options = "size=1M";
    req.id = BENCH_DEVICE;
    req.source_case = VFIO_MIGD__V1__ATTACH_DEVICE_REQUEST__SOURCE_SIM;
    req.sim = &sim;
    r = rpc_client_call(c, "/vfio_migd.v1.DeviceService/AttachDevice", &req.base,
                        &vfio_migd__v1__attach_device_response__descriptor,
                        BENCH_CALL_TIMEOUT_MS, &resp, &err);
    if (r < 0) {
        fprintf(stderr, "bench-rpc: AttachDevice: %s (%s)\n", err.message,
                rpc_status_code_name(err.code));
        return r;
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

/* ---- phases */

typedef struct Results {
    double p50_us, p99_us, seq_calls_per_s;
    double p50_concurrent_us, p99_concurrent_us, calls_per_s;
    long rss_kib;
} Results;

static int
run_sequential(RpcClient *c, Results *res)
{
    uint64_t *lat = calloc(BENCH_SEQ_CALLS, sizeof(uint64_t));
    uint64_t begin;
    RpcError err = {};
    int r = 0;

    if (!lat) {
        return -ENOMEM;
    }
    for (unsigned i = 0; i < BENCH_WARMUP_CALLS && r == 0; i++) {
        r = get_device(c, &err);
    }
    begin = now_ns();
    for (unsigned i = 0; i < BENCH_SEQ_CALLS && r == 0; i++) {
        uint64_t t0 = now_ns();

        r = get_device(c, &err);
        lat[i] = now_ns() - t0;
    }
    if (r == 0) {
        res->seq_calls_per_s = BENCH_SEQ_CALLS / ((double) (now_ns() - begin) / 1e9);
        res->p50_us = percentile_us(lat, BENCH_SEQ_CALLS, 50);
        res->p99_us = percentile_us(lat, BENCH_SEQ_CALLS, 99);
    } else {
        fprintf(stderr, "bench-rpc: GetDevice: %s (%s)\n", err.message,
                rpc_status_code_name(err.code));
    }
    free(lat);
    return r;
}

/* Returns false when the run was called off. */
static bool
gate_pass(StartGate *g)
{
    bool go;

    pthread_mutex_lock(&g->lock);
    g->ready++;
    pthread_cond_broadcast(&g->cond);
    while (!g->go) {
        pthread_cond_wait(&g->cond, &g->lock);
    }
    go = !g->cancel;
    pthread_mutex_unlock(&g->lock);
    return go;
}

/* Waits for @n workers to be ready, then lets them go (or cancels them all). */
static void
gate_open(StartGate *g, unsigned n, bool cancel)
{
    pthread_mutex_lock(&g->lock);
    while (!cancel && g->ready < n) {
        pthread_cond_wait(&g->cond, &g->lock);
    }
    g->go = true;
    g->cancel = cancel;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->lock);
}

static void *
worker_run(void *userdata)
{
    Worker *w = userdata;
    RpcError err = {};

    for (unsigned i = 0; i < BENCH_THREAD_WARMUP && w->r == 0; i++) {
        w->r = get_device(w->client, &err);
    }
    if (!gate_pass(w->gate)) {
        return NULL;
    }
    for (unsigned i = 0; i < BENCH_THREAD_CALLS && w->r == 0; i++) {
        uint64_t t0 = now_ns();

        w->r = get_device(w->client, &err);
        w->lat_ns[i] = now_ns() - t0;
    }
    if (w->r < 0) {
        fprintf(stderr, "bench-rpc: GetDevice (thread): %s (%s)\n", err.message,
                rpc_status_code_name(err.code));
    }
    return NULL;
}

/* Starts the workers, each with its own client (its own connection). Returns how many run. */
static unsigned
workers_start(const char *socket, Worker *w, StartGate *gate, uint64_t *lat)
{
    unsigned i;
    int r = 0;

    for (i = 0; i < BENCH_THREADS; i++) {
        w[i] = (Worker) {.gate = gate, .lat_ns = lat + (size_t) i * BENCH_THREAD_CALLS};
        r = rpc_client_new(socket, &w[i].client);
        if (r < 0) {
            break;
        }
        r = -pthread_create(&w[i].thread, NULL, worker_run, &w[i]);
        if (r < 0) {
            rpc_client_free(w[i].client);
            break;
        }
    }
    if (r < 0) {
        fprintf(stderr, "bench-rpc: cannot start worker %u: %s\n", i, strerror(-r));
    }
    return i;
}

static int
run_concurrent(const char *socket, Results *res)
{
    const size_t n = (size_t) BENCH_THREADS * BENCH_THREAD_CALLS;
    StartGate gate = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
    uint64_t *lat = calloc(n, sizeof(uint64_t));
    Worker w[BENCH_THREADS] = {};
    unsigned started;
    uint64_t begin;
    int r = 0;

    if (!lat) {
        return -ENOMEM;
    }
    started = workers_start(socket, w, &gate, lat);
    gate_open(&gate, started, /* cancel= */ started < BENCH_THREADS);
    begin = now_ns();
    for (unsigned i = 0; i < started; i++) {
        (void) pthread_join(w[i].thread, NULL);
        r = r < 0 ? r : w[i].r;
    }
    res->calls_per_s = (double) n / ((double) (now_ns() - begin) / 1e9);
    for (unsigned i = 0; i < started; i++) {
        rpc_client_free(w[i].client);
    }
    if (started < BENCH_THREADS) {
        r = -EAGAIN;
    }
    if (r == 0) {
        res->p50_concurrent_us = percentile_us(lat, n, 50);
        res->p99_concurrent_us = percentile_us(lat, n, 99);
    }
    free(lat);
    return r;
}

static int
run(Daemon *d, Results *res)
{
    RpcClient *c = NULL;
    int r;

    r = rpc_client_new(d->socket, &c);
    if (r < 0) {
        return r;
    }
    r = daemon_wait_ready(d, c);
    if (r == 0) {
        r = attach_sim(c);
    }
    if (r == 0) {
        r = run_sequential(c, res);
    }
    rpc_client_free(c);
    if (r == 0) {
        r = run_concurrent(d->socket, res);
    }
    if (r == 0) {
        (void) sleep(1); /* let the daemon settle: this is the idle RSS after the run */
        res->rss_kib = daemon_rss_kib(d->pid);
    }
    return r;
}

int
main(int argc, char **argv)
{
    const char *binary = argc > 1 ? argv[1] : getenv("VFIO_MIGD");
    Daemon d = {};
    Results res = {};
    int r;

    if (!binary || !*binary) {
        binary = "./build/vfio-migd";
    }
    if (access(binary, X_OK) < 0) {
        fprintf(stderr, "bench-rpc: cannot run '%s': %s (give the daemon's path as the first "
                        "argument or in $VFIO_MIGD)\n", binary, strerror(errno));
        return 1;
    }
    r = daemon_start(binary, &d);
    if (r < 0) {
        fprintf(stderr, "bench-rpc: cannot start the daemon: %s\n", strerror(-r));
        return 1;
    }

    rpc_client_global_init();
    r = run(&d, &res);
    daemon_stop(&d);
    rpc_client_global_shutdown();
    if (r < 0) {
        return 1;
    }

    printf("{\"bench\":\"rpc\",\"p50_us\":%.1f,\"p99_us\":%.1f,\"calls_per_s\":%.0f,"
           "\"rss_kib\":%ld,\"seq_calls_per_s\":%.0f,\"p50_concurrent_us\":%.1f,"
           "\"p99_concurrent_us\":%.1f,\"threads\":%d,\"calls\":%d}\n",
           res.p50_us, res.p99_us, res.calls_per_s, res.rss_kib, res.seq_calls_per_s,
           res.p50_concurrent_us, res.p99_concurrent_us, BENCH_THREADS, BENCH_SEQ_CALLS);
    return 0;
}
