/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * common — what every benchmark needs: a real vfio-migd started on a socket in a fresh
 * temporary directory, waited for, measured (VmRSS) and stopped; a monotonic clock; and
 * sim device attachment. Fork the daemon before grpc_init() (grpc-core.md pitfall 13).
 */

#include <stdint.h>
#include <sys/types.h>

#include "client.h"

#define BENCH_START_TIMEOUT_MS 10000
#define BENCH_CALL_TIMEOUT_MS 5000
#define BENCH_STOP_TIMEOUT_MS 10000

typedef struct Daemon {
    pid_t pid;
    char dir[64];       /* mkdtemp() directory holding the socket */
    char socket[128];
    char lock[136];     /* the daemon's lock file next to the socket */
} Daemon;

uint64_t bench_now_ns(void);
/* Forks and execs @binary --socket <tmp>/api.sock --log-level warning. */
int bench_daemon_start(const char *binary, Daemon *d);
/* Polls GetVersion until it answers, the daemon dies, or 10 s pass. */
int bench_daemon_wait_ready(Daemon *d, RpcClient *c);
/* VmRSS of @pid in KiB, or a negative errno. */
long bench_daemon_rss_kib(pid_t pid);
/* SIGTERM, wait up to 10 s, then SIGKILL; removes the temporary directory. */
void bench_daemon_stop(Daemon *d);
/* Attaches a sim device @id with @options; prints the daemon's error on failure. */
int bench_attach_sim(RpcClient *c, const char *id, const char *options);
/* The daemon binary: @arg, else $VFIO_MIGD, else ./build/vfio-migd. */
const char *bench_daemon_binary(const char *arg);
