/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * grpc_setup — gRPC's process-wide start, the same for the daemon and every client.
 *
 * Debian builds Abseil without NDEBUG, so every absl::Mutex that gRPC locks also runs
 * Abseil's debug-only deadlock detector: a per-lock graph update under one global lock, at
 * every Lock() of every gRPC thread. That detector is a development aid (an upstream release
 * build has it compiled out); here it was 12 % of the daemon's user CPU under four RPC
 * callers (bench-rpc, perf). rpc_grpc_init() turns it off before gRPC's first lock, through
 * Abseil's own switch, SetMutexDeadlockDetectionMode(kIgnore). The switch is C++; it is
 * looked up by its mangled name at run time, so a build against another Abseil (another
 * inline namespace, or one with the detector compiled out) simply keeps its default.
 *
 * Threads: call once per process, before any other gRPC call (as grpc_init() itself).
 */

#include <stdbool.h>

/* Turns Abseil's debug deadlock detector off (see above), then grpc_init(). Returns whether
 * the detector was found and switched off (for the log), never fails. */
bool rpc_grpc_init(void);
