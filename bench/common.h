/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * common — what every benchmark needs: a real vfio-migd started on a socket in a fresh
 * temporary directory, waited for, measured (VmRSS) and stopped; a monotonic clock; sim
 * device attachment; and the few calls several benchmarks make (any call with its failure
 * reported, SetDeviceState timed by the daemon, CreateGroup). Fork the daemon before
 * grpc_init() (grpc-core.md pitfall 13). migration_common.h builds the two-daemon
 * benchmarks on top of this.
 */

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "client.h"
#include "util/clock.h"
#include "vfio_migd/v1/devices.pb-c.h"

#define BENCH_START_TIMEOUT_MS 10000
#define BENCH_CALL_TIMEOUT_MS 5000
#define BENCH_STOP_TIMEOUT_MS 10000
/* bench_call()'s deadline: generous, so that only a stuck daemon fails a call. */
#define BENCH_LONG_CALL_TIMEOUT_MS 60000

typedef struct Daemon {
    pid_t pid;
    char dir[64];       /* mkdtemp() directory holding the socket */
    char socket[128];
    char lock[136];     /* the daemon's lock file next to the socket */
} Daemon;

/* Forks and execs @binary --socket <tmp>/api.sock --log-level warning. */
int bench_daemon_start(const char *binary, Daemon *d);
/* Polls GetVersion until it answers, the daemon dies, or 10 s pass. */
int bench_daemon_wait_ready(Daemon *d, RpcClient *c);
/* A size line of /proc/@pid/status in KiB: @field "VmRSS" (now), "VmHWM" (the peak RSS of
 * the process's life); or a negative errno. */
long bench_daemon_status_kib(pid_t pid, const char *field);
/* SIGTERM, wait up to 10 s, then SIGKILL; removes the temporary directory. */
void bench_daemon_stop(Daemon *d);
/* Attaches a sim device @id with @options; prints the daemon's error on failure. */
int bench_attach_sim(RpcClient *c, const char *id, const char *options);
/* The daemon binary: @arg, else $VFIO_MIGD, else ./build/vfio-migd. */
const char *bench_daemon_binary(const char *arg);

/* One call with a 60 s deadline. On failure prints "@prog: METHOD: message (CODE)" on stderr,
 * frees a partial answer and leaves *@resp NULL; returns 0 or a negative errno. */
int bench_call(RpcClient *c, const char *prog, const char *method, const ProtobufCMessage *req,
               const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp);
/* bench_call() by service and method name, as client/cli.h's CLI_METHOD() names them:
 * BENCH_CALL(c, prog, "GroupService", GroupTransition, &req, group_transition_response, &resp). */
#define BENCH_CALL(c, prog, service, method_, req, response_, resp)                                \
    bench_call((c), (prog), "/vfio_migd.v1." service "/" #method_, &(req)->base,                   \
               &vfio_migd__v1__##response_##__descriptor, (ProtobufCMessage **) (resp))
/* SetDeviceState of @id to @target: the daemon's elapsed_us in ms, and, when
 * @ret_slowest_arc_ms is not NULL, the longest of its arcs in ms. */
int bench_set_device_state(RpcClient *c, const char *prog, const char *id,
                           VfioMigd__V1__DeviceState target, double *ret_ms,
                           double *ret_slowest_arc_ms);
/* CreateGroup @name of the @n devices @ids (attached already). */
int bench_create_group(RpcClient *c, const char *prog, const char *name, char **ids, size_t n);
/* The median of @v (sorted in place): v[n / 2]. */
double bench_median(double *v, size_t n);
/* The @pct percentile of @v (n >= 1, nanoseconds; sorted in place), in microseconds. */
double bench_percentile_us(uint64_t *v, size_t n, unsigned pct);
/* The index of the median of @v (n >= 1), leaving @v as it is. */
size_t bench_median_index(const double *v, size_t n);
