/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * clock — the one monotonic clock of the project: durations, deadlines, timelines. Shared by
 * the daemon, the CLI, the benchmarks and tests (header-only, no project includes).
 * CLOCK_MONOTONIC, not CLOCK_REALTIME: a clock step (NTP, an operator's `date`) must not
 * stretch a measured arc or fire a deadline early. Wall-clock times shown to people
 * ("started at") are taken separately, where they are shown.
 */

#include <stdint.h>
#include <time.h>

/* Nanoseconds since an arbitrary start (boot), never going back. */
static inline uint64_t
clock_now_ns(void)
{
    struct timespec ts;

    /* Cannot fail: CLOCK_MONOTONIC always exists and &ts is valid. */
    (void) clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ull + (uint64_t) ts.tv_nsec;
}
