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
 * That is one round; $BENCH_ROUNDS rounds (default 3) run, the migrations alternately one way
 * and back (the destination resumes its group, so it can be the next source). Each round's
 * details go to stderr; ONE JSON line on stdout, the round with the median ratio:
 *   {"bench":"migrate","bytes":..,"seconds":..,"gib_s":..,"pump_gib_s":..,"ratio":..,
 *    "tls_pump_gib_s":..,"ratio_tls_pump":..,"rounds":3,"peak_rss_kib":[..,..],"tls":true}
 * "tls": whether the migration ran in TLS (the default) or in clear (--tls=off on the command
 * line). pump_gib_s is the clear pump either way, so ratio in TLS against ratio in clear is
 * TLS's whole cost. With TLS, a second pump moves the same bytes on the same connections
 * through the daemon's own TLS (tls.h: a data channel's PSK handshake before the clock starts,
 * then 1 MiB writes and reads of records): tls_pump_gib_s, and ratio_tls_pump = gib_s /
 * tls_pump_gib_s, what the daemon loses against encryption alone (absent with --tls=off).
 * ratio = gib_s / pump_gib_s. Target (reported, not asserted): ratio >= 0.9. peak_rss_kib is
 * each daemon's peak RSS over all rounds (VmHWM: both were source and destination); target:
 * under 64 MiB each.
 *
 * The daemons, the pump and the migration are migration_common.h's, shared with
 * bench-downtime; this file holds the parameters and the line printed.
 */
#include <stdio.h>

#include "migration_common.h"

/* One round's details on stderr. */
static void
print_round(const BenchMigration *b, size_t i, const BenchMigrationRun *run, void *userdata)
{
    const VfioMigd__V1__Migration *mig = run->resp->migration;

    fprintf(stderr, "%s: round %zu: pump before %.3f GiB/s, after %.3f GiB/s; TLS pump "
            "before %.3f, after %.3f; migration %s: elapsed %.3f s (downtime %.3f s), wall "
            "%.3f s (StartMigration -> its end event); ratio %.3f\n", b->prog, i + 1,
            run->pump_before_gib_s, run->pump_after_gib_s, run->tls_pump_before_gib_s,
            run->tls_pump_after_gib_s, mig->id, (double) mig->elapsed_us / 1e6,
            (double) mig->downtime_us / 1e6, (double) run->wall_ns / 1e9,
            bench_migration_ratio(run));
    (void) userdata;
}

/* The JSON line of the round with the median ratio. */
static void
print_result(const BenchMigration *b, const BenchMigrationRun *run, size_t rounds)
{
    const VfioMigd__V1__Migration *mig = run->resp->migration;
    double seconds = (double) mig->elapsed_us / 1e6;

    double tls_pump = bench_migration_tls_pump_gib_s(run);

    printf("{\"bench\":\"migrate\",\"bytes\":%llu,\"seconds\":%.3f,\"gib_s\":%.3f,"
           "\"pump_gib_s\":%.3f,\"ratio\":%.3f,", (unsigned long long) mig->bytes, seconds,
           bench_migration_gib_s(run), bench_migration_pump_gib_s(run),
           bench_migration_ratio(run));
    if (!b->tls_off) {
        printf("\"tls_pump_gib_s\":%.3f,\"ratio_tls_pump\":%.3f,", tls_pump,
               bench_migration_gib_s(run) / tls_pump);
    }
    printf("\"rounds\":%zu,\"peak_rss_kib\":[%ld,%ld],\"tls\":%s}\n", rounds,
           bench_daemon_status_kib(b->src_daemon.pid, "VmHWM"),
           bench_daemon_status_kib(b->dst_daemon.pid, "VmHWM"), b->tls_off ? "false" : "true");
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    BenchMigration b = {
        .prog = "bench-migrate",
        .n_devices = 8,
        .device_bytes = 256ull << 20,
    };

    return bench_migration_main(&b, argc, argv, print_round, bench_migration_ratio_key,
                                print_result);
}
