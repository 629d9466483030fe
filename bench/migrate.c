/* SPDX-License-Identifier: MIT */
/*
 * bench-migrate — live-migration throughput between two real daemons, against what the same
 * loopback link moves with nothing but read()/write().
 *
 * The plan: start two vfio-migd (argv[1], $VFIO_MIGD or ./build/vfio-migd), a source and a
 * destination, each on its own socket in its own temporary directory. On each, attach 8 sim
 * devices "size=256M" with the same names (same names = same content seed) and group them.
 * Then, in this order:
 *   1. pump: 8 TCP connections over 127.0.0.1, each moving 256 MiB with write()/read() of
 *      1 MiB buffers and no other work (one sender and one receiver thread per connection,
 *      connected beforehand, released together); seconds = release -> last receiver done;
 *   2. migration: PrepareIncoming on the destination (listen 127.0.0.1:0), StartMigration on
 *      the source with precopy OFF, WatchEvents on the source until the job is no longer
 *      active; seconds = the source's elapsed_us (StartMigration -> the destination's
 *      confirmation), bytes = the source's bytes (8 x 256 MiB: every device's whole state);
 *   3. pump again, as in 1. pump_gib_s is the mean of 1 and 3, so that a load change on a
 *      shared machine during the run weighs on both sides of the ratio alike.
 * Prints ONE JSON line on stdout (details on stderr):
 *   {"bench":"migrate","bytes":..,"seconds":..,"gib_s":..,"pump_gib_s":..,"ratio":..}
 * ratio = gib_s / pump_gib_s. Target (reported, not asserted): ratio >= 0.9.
 *
 * The daemons, the pump and the migration are migration_common.h's, shared with
 * bench-downtime; this file holds the parameters and the line printed.
 */
#include <stdio.h>

#include "migration_common.h"

/* The details on stderr, then the JSON line on stdout. */
static void
print_result(const BenchMigration *b, const BenchMigrationRun *run)
{
    const VfioMigd__V1__Migration *mig = run->resp->migration;
    double seconds = (double) mig->elapsed_us / 1e6;
    double gib_s = (double) mig->bytes / GIB / seconds;
    double pump = (run->pump_before_gib_s + run->pump_after_gib_s) / 2;

    fprintf(stderr, "%s: pump before %.3f GiB/s, after %.3f GiB/s; migration %s: "
            "elapsed %.3f s (downtime %.3f s), wall %.3f s (StartMigration -> its end "
            "event)\n", b->prog, run->pump_before_gib_s, run->pump_after_gib_s, mig->id, seconds,
            (double) mig->downtime_us / 1e6, (double) run->wall_ns / 1e9);
    printf("{\"bench\":\"migrate\",\"bytes\":%llu,\"seconds\":%.3f,\"gib_s\":%.3f,"
           "\"pump_gib_s\":%.3f,\"ratio\":%.3f}\n", (unsigned long long) mig->bytes,
           seconds, gib_s, pump, gib_s / pump);
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    BenchMigration b = {
        .prog = "bench-migrate",
        .group = "bench-migrate",
        .n_devices = 8,
        .device_bytes = 256ull << 20,
        .device_options = "size=256M", /* device_bytes, as the sim spells it */
    };
    BenchMigrationRun run = {};
    int r;

    r = bench_migration_start(&b, bench_daemon_binary(argc > 1 ? argv[1] : NULL));
    if (r >= 0) {
        r = bench_migration_run(&b, &run);
    }
    if (r >= 0) {
        print_result(&b, &run);
        r = bench_migration_check(&b, &run);
        bench_migration_run_done(&run);
    }
    bench_migration_stop(&b);
    return r < 0 ? 1 : 0;
}
