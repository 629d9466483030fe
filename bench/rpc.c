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
#include "common.h"
#include "util/macro.h"
#include "vfio_migd/v1/devices.pb-c.h"
#include "vfio_migd/v1/system.pb-c.h"

#define BENCH_WARMUP_CALLS 200
#define BENCH_SEQ_CALLS 10000
#define BENCH_THREADS 4
#define BENCH_THREAD_CALLS 10000
#define BENCH_THREAD_WARMUP 50  /* per thread, before the start line: connect and settle */
#define BENCH_DEVICE "bench0"

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
    begin = clock_now_ns();
    for (unsigned i = 0; i < BENCH_SEQ_CALLS && r == 0; i++) {
        uint64_t t0 = clock_now_ns();

        r = get_device(c, &err);
        lat[i] = clock_now_ns() - t0;
    }
    if (r == 0) {
        res->seq_calls_per_s = BENCH_SEQ_CALLS / ((double) (clock_now_ns() - begin) / 1e9);
        res->p50_us = bench_percentile_us(lat, BENCH_SEQ_CALLS, 50);
        res->p99_us = bench_percentile_us(lat, BENCH_SEQ_CALLS, 99);
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
        uint64_t t0 = clock_now_ns();

        w->r = get_device(w->client, &err);
        w->lat_ns[i] = clock_now_ns() - t0;
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
    begin = clock_now_ns();
    for (unsigned i = 0; i < started; i++) {
        (void) pthread_join(w[i].thread, NULL);
        r = r < 0 ? r : w[i].r;
    }
    res->calls_per_s = (double) n / ((double) (clock_now_ns() - begin) / 1e9);
    for (unsigned i = 0; i < started; i++) {
        rpc_client_free(w[i].client);
    }
    if (started < BENCH_THREADS) {
        r = -EAGAIN;
    }
    if (r == 0) {
        res->p50_concurrent_us = bench_percentile_us(lat, n, 50);
        res->p99_concurrent_us = bench_percentile_us(lat, n, 99);
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
    r = bench_daemon_wait_ready(d, c);
    if (r == 0) {
        r = bench_attach_sim(c, BENCH_DEVICE, "size=1M");
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
        res->rss_kib = bench_daemon_status_kib(d->pid, "VmRSS");
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
    r = bench_daemon_start(binary, &d);
    if (r < 0) {
        fprintf(stderr, "bench-rpc: cannot start the daemon: %s\n", strerror(-r));
        return 1;
    }

    rpc_client_global_init();
    r = run(&d, &res);
    bench_daemon_stop(&d);
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
