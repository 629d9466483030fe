/* SPDX-License-Identifier: MIT */
/*
 * worker — see worker.h.
 *
 * The plan: libuv has no call that starts its pool, but its first uv_queue_work() does so
 * synchronously, threads and all, before it returns. So the daemon queues one empty work
 * item at start-up; its completion runs on the loop's first iteration and does nothing.
 */
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static uv_work_t warm_up; /* one per process, as the pool is */

static void
warm_up_work(uv_work_t *w)
{
    (void) w;
}

static void
warm_up_done(uv_work_t *w, int status)
{
    (void) w;
    (void) status;
}

int
worker_pool_start(uv_loop_t *loop, unsigned n)
{
    char size[16];

    if (n < 1 || n > WORKER_MAX) {
        return -EINVAL;
    }
    /* libuv reads this once, when the pool is made: just below. */
    (void) snprintf(size, sizeof(size), "%u", n);
    if (setenv("UV_THREADPOOL_SIZE", size, 1) < 0) {
        return -errno;
    }
    return uv_queue_work(loop, &warm_up, warm_up_work, warm_up_done);
}
