/* SPDX-License-Identifier: MIT */
/*
 * bench-downtime — how long the switchover of a migration without pre-copy takes, against
 * the least it could take: the time the link needs for the whole state plus one arc.
 *
 * The plan: start two vfio-migd (argv[1], $VFIO_MIGD or ./build/vfio-migd), a source and a
 * destination, each on its own socket. On each, attach 4 sim devices "size=64M" with the same
 * names and group them; on the source also a spare sim device "size=64M" outside the group.
 * Then, in this order:
 *   1. arc: 5 times, SetDeviceState(spare, STOP_COPY) then back to RUNNING; arc_ms is the
 *      median of the daemon's elapsed_us of the RUNNING -> STOP_COPY request (the kernel
 *      path RUNNING -> RUNNING_P2P -> STOP -> STOP_COPY, what every device of the group does
 *      at the switchover, all of them in parallel). Sim devices have latency_ms=0 by default,
 *      so this is the daemon's own cost of a transition (tens of microseconds), not a sleep;
 *   2. pump: 4 TCP connections over 127.0.0.1, each moving 64 MiB with write()/read() of
 *      1 MiB buffers and nothing else (one sender and one receiver thread per connection,
 *      connected beforehand, released together);
 *   3. migration: PrepareIncoming on the destination (listen 127.0.0.1:0), StartMigration on
 *      the source with precopy OFF (so all the state moves during the switchover), following
 *      WatchEvents on the source until it is no longer active; downtime_ms is
 *      the source's downtime_us (switchover start -> the destination's confirmation);
 *   4. pump again, as in 2; the pump rate is the mean of 2 and 4.
 * floor_ms = bytes / pump rate + arc_ms. Prints ONE JSON line on stdout (details on stderr):
 *   {"bench":"downtime","bytes":..,"downtime_ms":..,"floor_ms":..,"ratio":..}
 * ratio = downtime / floor. Target (reported, not asserted): ratio <= 1.3.
 *
 * The daemons, the pump and the migration are migration_common.h's, shared with
 * bench-migrate; this file holds the parameters, the arc measurement and the line printed.
 */
#include <stdio.h>

#include "migration_common.h"

#define PROG "bench-downtime"
#define SPARE "spare"
#define SPARE_OPTIONS "size=64M"
#define ARC_RUNS 5

/* The median RUNNING -> STOP_COPY request on the spare device, and the slowest arc seen. */
static int
measure_arc(RpcClient *c, double *ret_ms, double *ret_slowest_arc_ms)
{
    double runs[ARC_RUNS], slowest = 0, arc = 0, back = 0;
    int r = bench_attach_sim(c, SPARE, SPARE_OPTIONS);

    for (int i = 0; r >= 0 && i < ARC_RUNS; i++) {
        r = bench_set_device_state(c, PROG, SPARE,
                                   VFIO_MIGD__V1__DEVICE_STATE__DEVICE_STATE_STOP_COPY, &runs[i],
                                   &arc);
        slowest = arc > slowest ? arc : slowest;
        if (r >= 0) {
            r = bench_set_device_state(c, PROG, SPARE,
                                       VFIO_MIGD__V1__DEVICE_STATE__DEVICE_STATE_RUNNING, &back,
                                       &arc);
        }
    }
    if (r < 0) {
        return r;
    }
    *ret_ms = bench_median(runs, ARC_RUNS);
    *ret_slowest_arc_ms = slowest;
    return 0;
}

/* The details on stderr, then the JSON line on stdout. */
static void
print_result(const BenchMigration *b, const BenchMigrationRun *run, double arc_ms,
             double slowest_arc_ms)
{
    const VfioMigd__V1__Migration *mig = run->resp->migration;
    double pump = (run->pump_before_gib_s + run->pump_after_gib_s) / 2;
    double downtime_ms = (double) mig->downtime_us / 1000.0;
    double data_ms = (double) mig->bytes / GIB / pump * 1000.0;
    double floor_ms = data_ms + arc_ms;

    fprintf(stderr, "%s: pump before %.3f GiB/s, after %.3f GiB/s -> data %.1f ms; "
            "RUNNING->STOP_COPY %.3f ms (median of %d, slowest single arc %.3f ms); "
            "migration %s: elapsed %.1f ms, downtime %.1f ms\n", b->prog,
            run->pump_before_gib_s, run->pump_after_gib_s, data_ms, arc_ms, ARC_RUNS,
            slowest_arc_ms, mig->id, (double) mig->elapsed_us / 1000.0, downtime_ms);
    printf("{\"bench\":\"downtime\",\"bytes\":%llu,\"downtime_ms\":%.1f,"
           "\"floor_ms\":%.1f,\"ratio\":%.3f}\n", (unsigned long long) mig->bytes,
           downtime_ms, floor_ms, downtime_ms / floor_ms);
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    BenchMigration b = {
        .prog = PROG,
        .group = "bench-downtime",
        .n_devices = 4,
        .device_bytes = 64ull << 20,
        .device_options = "size=64M", /* device_bytes, as the sim spells it */
    };
    BenchMigrationRun run = {};
    double arc_ms = 0, slowest_arc_ms = 0;
    int r;

    r = bench_migration_start(&b, bench_daemon_binary(argc > 1 ? argv[1] : NULL));
    if (r >= 0) {
        r = measure_arc(b.src, &arc_ms, &slowest_arc_ms);
    }
    if (r >= 0) {
        r = bench_migration_run(&b, &run);
    }
    if (r >= 0) {
        print_result(&b, &run, arc_ms, slowest_arc_ms);
        r = bench_migration_check(&b, &run);
        bench_migration_run_done(&run);
    }
    bench_migration_stop(&b);
    return r < 0 ? 1 : 0;
}
