/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * ratelimit — "at most BURST events per INTERVAL" for log lines that a peer can make repeat
 * (refused connections, accept failures): the first ones are logged, the rest counted, and
 * the next line that gets through says how many were left out (OVS VLOG_*_RL, systemd
 * ratelimit_below()). Pure and header-only: the caller passes the time, so tests need no
 * clock. Not thread-safe: each limiter belongs to one thread (the loop).
 */

#include <stdbool.h>
#include <stdint.h>

typedef struct RateLimit {
    uint64_t interval_ns; /* length of a window */
    unsigned burst;       /* events let through per window */
    uint64_t begin_ns;    /* start of the current window */
    bool started;         /* a window has begun */
    unsigned num;         /* events let through in the current window */
    unsigned suppressed;  /* events held back since the last one let through */
} RateLimit;

#define RATELIMIT_INIT(interval, b) ((RateLimit){.interval_ns = (interval), .burst = (b)})

/* True when the event at @now_ns may be logged. When it may, *@ret_suppressed (if not NULL)
 * is the number of events held back before it, and the count starts again. */
static inline bool
ratelimit_below(RateLimit *rl, uint64_t now_ns, unsigned *ret_suppressed)
{
    if (!rl->started || now_ns - rl->begin_ns >= rl->interval_ns) {
        rl->started = true;
        rl->begin_ns = now_ns;
        rl->num = 0;
    }
    if (rl->num >= rl->burst) {
        rl->suppressed++;
        return false;
    }
    rl->num++;
    if (ret_suppressed) {
        *ret_suppressed = rl->suppressed;
    }
    rl->suppressed = 0;
    return true;
}
