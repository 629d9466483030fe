/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * worker — the pool of threads that runs every blocking device operation and data pump
 * (libuv's thread pool, fed with uv_queue_work() by device.c and migration.c).
 *
 * libuv creates its pool lazily, on the first uv_queue_work() of the process, and then
 * creates every thread of it and waits for each to start before queueing anything. Left
 * to itself, that happens inside the first device operation: the first group transition
 * of a daemon with 64 workers began its arcs 7.5 ms late (bench-group "first_stop_ms").
 * worker_pool_start() makes the pool while the daemon starts, before it serves the API.
 *
 * What idle workers cost, the bound: each thread is blocked on a condition variable and uses
 * no CPU; its stack is reserved address space (libuv's default), of which it has touched a
 * few pages: about 10 KiB of RSS per worker, measured (64 workers, the default: +0.6 MiB;
 * 1024, the maximum: +8.6 MiB). Idle devices cost nothing more: they share the pool.
 *
 * Threads: loop thread only, before the loop runs.
 */

#include <uv.h>

#define WORKER_MAX 1024 /* libuv's own limit on UV_THREADPOOL_SIZE */

/* Sizes libuv's pool to @n threads (1..WORKER_MAX) and creates them now. The pool is
 * process-wide and sized once: call this before anything else queues work. Returns 0 or a
 * negative errno (the pool then starts lazily, as libuv would). */
int worker_pool_start(uv_loop_t *loop, unsigned n);
