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
 * floor_ms = bytes / pump rate + arc_ms. Steps 2-4 are a round; $BENCH_ROUNDS rounds (default
 * 3) run, the migrations alternately one way and back. Each round's details go to stderr;
 * ONE JSON line on stdout, the round with the median ratio:
 *   {"bench":"downtime","bytes":..,"downtime_ms":..,"floor_ms":..,"ratio":..,"pump_gib_s":..,
 *    "tls_pump_gib_s":..,"tls_floor_ms":..,"ratio_tls_pump":..,"rounds":3,"tls":true}
 * ("tls": false with --tls=off, and no tls_* fields then). ratio = downtime / floor; with TLS
 * a second pump moves the same bytes through the daemon's TLS (as in bench-migrate), and
 * tls_floor_ms and ratio_tls_pump = downtime / tls_floor_ms are the same against it. Target (reported, not asserted): ratio <= 1.3.
 *
 * The daemons, the pump, the migration and main's rounds are migration_common.h's, shared
 * with bench-migrate and bench-precopy (bench_migration_main(), with the arc measured in its
 * prepare step); this file holds the parameters, the arc measurement and the lines printed.
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

/* The floor: the migration's bytes at @pump_gib_s (the clear pump's, or the TLS pump's)
 * plus the arc. */
static double
floor_ms(const BenchMigrationRun *run, double pump_gib_s, double arc_ms)
{
    return (double) run->resp->migration->bytes / GIB / pump_gib_s * 1000.0 + arc_ms;
}

static double
round_floor_ms(const BenchMigrationRun *run, double arc_ms)
{
    return floor_ms(run, bench_migration_pump_gib_s(run), arc_ms);
}

static double
round_ratio(const BenchMigrationRun *run, double arc_ms)
{
    return (double) run->resp->migration->downtime_us / 1000.0 / round_floor_ms(run, arc_ms);
}

typedef struct Arc {
    double ms, slowest_ms; /* measure_arc()'s */
} Arc;

/* Before the rounds: the arc on the source's spare device (BenchMigration.prepare). */
static int
prepare_arc(BenchMigration *b)
{
    Arc *arc = b->userdata;

    return measure_arc(b->src, &arc->ms, &arc->slowest_ms);
}

static double
ratio_key(const BenchMigration *b, const BenchMigrationRun *run)
{
    return round_ratio(run, ((const Arc *) b->userdata)->ms);
}

/* One round's details on stderr. */
static void
print_round(const BenchMigration *b, size_t i, const BenchMigrationRun *run, void *userdata)
{
    const VfioMigd__V1__Migration *mig = run->resp->migration;
    const Arc *arc = userdata;
    double arc_ms = arc->ms, slowest_arc_ms = arc->slowest_ms;

    fprintf(stderr, "%s: round %zu: pump before %.3f GiB/s, after %.3f GiB/s -> data %.1f ms "
            "(TLS pump before %.3f, after %.3f); RUNNING->STOP_COPY %.3f ms (median of %d, "
            "slowest single arc %.3f ms); migration %s: elapsed %.1f ms, downtime %.1f ms; "
            "ratio %.3f\n", b->prog, i + 1, run->pump_before_gib_s, run->pump_after_gib_s,
            round_floor_ms(run, arc_ms) - arc_ms, run->tls_pump_before_gib_s,
            run->tls_pump_after_gib_s, arc_ms, ARC_RUNS, slowest_arc_ms, mig->id,
            (double) mig->elapsed_us / 1000.0, (double) mig->downtime_us / 1000.0,
            round_ratio(run, arc_ms));
}

/* The JSON line of the round with the median ratio. */
static void
print_result(const BenchMigration *b, const BenchMigrationRun *run, size_t rounds)
{
    const VfioMigd__V1__Migration *mig = run->resp->migration;
    double arc_ms = ((const Arc *) b->userdata)->ms;

    double tls_floor = floor_ms(run, bench_migration_tls_pump_gib_s(run), arc_ms);

    printf("{\"bench\":\"downtime\",\"bytes\":%llu,\"downtime_ms\":%.1f,"
           "\"floor_ms\":%.1f,\"ratio\":%.3f,\"pump_gib_s\":%.3f,",
           (unsigned long long) mig->bytes, (double) mig->downtime_us / 1000.0,
           round_floor_ms(run, arc_ms), round_ratio(run, arc_ms),
           bench_migration_pump_gib_s(run));
    if (!b->tls_off) {
        printf("\"tls_pump_gib_s\":%.3f,\"tls_floor_ms\":%.1f,\"ratio_tls_pump\":%.3f,",
               bench_migration_tls_pump_gib_s(run), tls_floor,
               (double) mig->downtime_us / 1000.0 / tls_floor);
    }
    printf("\"rounds\":%zu,\"tls\":%s}\n", rounds, b->tls_off ? "false" : "true");
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    Arc arc = {};
    BenchMigration b = {
        .prog = PROG,
        .n_devices = 4,
        .device_bytes = 64ull << 20,
        .prepare = prepare_arc,
        .userdata = &arc,
    };

    return bench_migration_main(&b, argc, argv, print_round, ratio_key, print_result);
}
