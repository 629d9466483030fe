/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * migration_common — what bench-migrate, bench-downtime and bench-precopy share: two real
 * daemons, a source and a destination, each with the same group of sim devices (same names =
 * same content seed); a plain socket pump over loopback; one migration (PrepareIncoming on the
 * destination, StartMigration on the source with pre-copy off unless the benchmark asks for
 * it, WatchEvents on the source until the job is no longer active); and the CPU each side
 * spent per byte. Each benchmark keeps only its parameters, what it measures beyond this, and
 * its JSON line.
 *
 * Used by:  migrate.c, downtime.c, precopy.c.
 * Uses:     common.h (daemons, calls, sim devices).
 * Threads:  the pump starts and joins its own threads; everything else is the main thread's.
 * Errors:   negative errno, reported on stderr prefixed with the benchmark's name.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "vfio_migd/v1/migrations.pb-c.h"

/* At most this many devices per side, and pump connections (one per device). */
#define BENCH_MIGRATION_MAX_DEVICES 8
#define GIB ((double) (1ull << 30))

/* One two-daemon benchmark: its parameters (set by the caller), then what
 * bench_migration_start() makes. */
typedef struct BenchMigration {
    const char *prog;           /* "bench-migrate": every message starts with it, and it
                                 * names the group on both sides */
    size_t n_devices;           /* "m0".."m<n-1>" on both sides; also the pump's connections */
    uint64_t device_bytes;      /* each device's state (the sim's size=), and what each pump
                                 * connection moves */
    const char *sim_options;    /* more sim options for the devices after size= (NULL: none) */
    /* The migration's policy: without pre-copy all the state moves in the switchover; with
     * it (bench-precopy), downtime_target_ms and max_precopy_ms decide when pre-copy ends
     * (0: the daemon's defaults), and the devices may move more than device_bytes. */
    bool precopy;
    /* --tls=off on the command line: the migration in clear (the daemons' default: TLS 1.3
     * keyed by the token), so that both costs can be measured side by side. */
    bool tls_off;
    uint32_t downtime_target_ms;
    uint32_t max_precopy_ms;
    uint32_t channels;          /* data channels per device (0: the daemon's automatic count) */
    size_t pump_connections;    /* the pump's connections (0: one per device, README) */
    /* A benchmark's own step after both daemons answer, before the rounds (bench-downtime
     * measures an arc there), and what it keeps for its report, key and print (NULL: none). */
    int (*prepare)(struct BenchMigration *b);
    void *userdata;

    Daemon src_daemon, dst_daemon;
    RpcClient *src, *dst;       /* connections to the source and the destination */
    bool started;               /* both daemons forked and gRPC set up: stop has work to do */
} BenchMigration;

/* What bench_migration_run() measured. */
typedef struct BenchMigrationRun {
    VfioMigd__V1__MigrationResponse *resp; /* the source's GetMigration answer at the end */
    double pump_before_gib_s;              /* the pump before the migration */
    double pump_after_gib_s;               /* and after it */
    /* The same bytes on the same connections through the daemon's TLS (tls.h: its PSK
     * handshake, its records), before and after; 0 when the migration is clear. */
    double tls_pump_before_gib_s, tls_pump_after_gib_s;
    uint64_t pump_cpu_ns;                  /* both clear pumps' CPU (this process) */
    uint64_t tls_pump_cpu_ns;              /* both TLS pumps' */
    uint64_t wall_ns;                      /* StartMigration -> seen no longer active */
    uint64_t src_cpu_ns, dst_cpu_ns;       /* each daemon's CPU during the migration */
} BenchMigrationRun;

/* Forks both daemons of @binary (before grpc_init()), then connects to them, waits until both
 * answer and sets up the devices and the group on each side. When a daemon cannot be
 * started, the other is stopped already; after any other failure, call
 * bench_migration_stop(). */
int bench_migration_start(BenchMigration *b, const char *binary);
/* Pump, migration, pump again. On success @ret->resp is the completed migration (free it
 * with bench_migration_run_done()); on failure the reason is on stderr. */
int bench_migration_run(BenchMigration *b, BenchMigrationRun *ret);
/* The next migration goes the other way: source and destination trade places (the
 * migration leaves the destination's group running and the source's stopped, which is what
 * an incoming and an outgoing migration need). */
void bench_migration_swap(BenchMigration *b);
/* How many rounds (migrations) a benchmark reports the median of: $BENCH_ROUNDS, 1 to
 * BENCH_MIGRATION_MAX_ROUNDS, default 3. */
#define BENCH_MIGRATION_MAX_ROUNDS 9
size_t bench_migration_rounds(void);
/* Prints one round's details on stderr (the benchmark's own). */
typedef void (*BenchRoundReport)(const BenchMigration *b, size_t i, const BenchMigrationRun *run,
                                 void *userdata);
/* @n rounds into @runs: each bench_migration_run(), @report, bench_migration_check(), then
 * bench_migration_swap(). Stops at the first failure; free with bench_migration_runs_done(). */
int bench_migration_run_rounds(BenchMigration *b, BenchMigrationRun *runs, size_t n,
                               BenchRoundReport report, void *userdata);
void bench_migration_runs_done(BenchMigrationRun *runs, size_t n);
/* What a benchmark ranks its rounds by (ratio, downtime), and its JSON line of one round. */
typedef double (*BenchRoundKey)(const BenchMigration *b, const BenchMigrationRun *run);
typedef void (*BenchRoundPrint)(const BenchMigration *b, const BenchMigrationRun *run,
                                size_t rounds);
/* A whole two-daemon benchmark: start (the daemon binary from the first argument that is no
 * option, $VFIO_MIGD or ./build/vfio-migd; --tls=off|psk sets @b->tls_off), @b->prepare, the rounds with @report (given @b->userdata), @print of the
 * round whose @key is the median, stop. Returns the exit status (0 measured, 1 failed). */
int bench_migration_main(BenchMigration *b, int argc, char **argv, BenchRoundReport report,
                         BenchRoundKey key, BenchRoundPrint print);
/* Checks that every device's whole state moved (exactly, or at least with pre-copy, which
 * sends dirty data again) and prints the CPU per byte and the load average on stderr.
 * -EBADMSG when bytes are missing. */
int bench_migration_check(const BenchMigration *b, const BenchMigrationRun *run);
void bench_migration_run_done(BenchMigrationRun *run);
/* A throughput round's figures: the migration's rate (bytes over the source's elapsed time),
 * the pump's (the mean of before and after), their ratio, and the ratio as a BenchRoundKey
 * (bench-migrate, bench-single). */
double bench_migration_gib_s(const BenchMigrationRun *run);
double bench_migration_pump_gib_s(const BenchMigrationRun *run);
double bench_migration_ratio(const BenchMigrationRun *run);
/* The TLS pump's rate (the mean of before and after): what a migration in TLS is compared
 * with, beside the clear pump; 0 when the migration ran in clear. */
double bench_migration_tls_pump_gib_s(const BenchMigrationRun *run);
double bench_migration_ratio_key(const BenchMigration *b, const BenchMigrationRun *run);
/* Closes the connections, shuts gRPC down and stops both daemons; a no-op when
 * bench_migration_start() stopped them already. */
void bench_migration_stop(BenchMigration *b);
