/* SPDX-License-Identifier: MIT */
/*
 * bench-single — one large device uses the link: the live migration of ONE sim device of
 * 2 GiB, without pre-copy, against a 2-connection pump over the same loopback link.
 *
 * The plan is bench-migrate's (migration_common.h: two real daemons, pump, migration, pump
 * again, $BENCH_ROUNDS rounds back and forth, the median round printed), with one device
 * "size=2G" and a pump of 2 connections moving 1 GiB each. The migration uses the daemon's
 * automatic channel count (core/spread.h: both daemons run here, so half the CPUs count: 1
 * channel on a 2-CPU machine, 2 on a 4-CPU one), or $BENCH_CHANNELS (1..8) to force one, as
 * `migrate --channels` does. ONE JSON line on stdout:
 *   {"bench":"single","bytes":..,"seconds":..,"gib_s":..,"pump_gib_s":..,"ratio":..,
 *    "channels":..,"rounds":3,"tls":true}
 * channels is what the device went over (the forced count, or the daemon's automatic one for
 * this device and this machine's CPUs); tls whether the migration ran in TLS (the daemons'
 * default) or in clear (--tls=off), as in bench-migrate: the pump is clear either way. Target
 * (reported, not asserted): ratio >= 0.85.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/spread.h"
#include "migration_common.h"

#define DEVICE_BYTES (2ull << 30)

static void
print_round(const BenchMigration *b, size_t i, const BenchMigrationRun *run, void *userdata)
{
    const VfioMigd__V1__Migration *mig = run->resp->migration;

    fprintf(stderr, "%s: round %zu: pump before %.3f GiB/s, after %.3f GiB/s; migration %s: "
            "elapsed %.3f s, %.3f GiB/s; ratio %.3f\n", b->prog, i + 1, run->pump_before_gib_s,
            run->pump_after_gib_s, mig->id, (double) mig->elapsed_us / 1e6,
            bench_migration_gib_s(run),
            bench_migration_ratio(run));
    (void) userdata;
}

/* The channels the device goes over: the forced count, else the daemon's own rule. */
static uint32_t
channels_used(const BenchMigration *b)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    return b->channels ? b->channels
                       : spread_channels_auto(DEVICE_BYTES, cpus > 0 ? (uint32_t) cpus : 1, 1,
                                              /* same_host= */ true);
}

static void
print_result(const BenchMigration *b, const BenchMigrationRun *run, size_t rounds)
{
    const VfioMigd__V1__Migration *mig = run->resp->migration;

    printf("{\"bench\":\"single\",\"bytes\":%llu,\"seconds\":%.3f,\"gib_s\":%.3f,"
           "\"pump_gib_s\":%.3f,\"ratio\":%.3f,\"channels\":%u,\"rounds\":%zu,\"tls\":%s}\n",
           (unsigned long long) mig->bytes, (double) mig->elapsed_us / 1e6,
           bench_migration_gib_s(run),
           bench_migration_pump_gib_s(run), bench_migration_ratio(run),
           channels_used(b), rounds, b->tls_off ? "false" : "true");
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    const char *e = getenv("BENCH_CHANNELS");
    long forced = e ? strtol(e, NULL, 10) : 0;
    BenchMigration b = {
        .prog = "bench-single",
        .n_devices = 1,
        .device_bytes = DEVICE_BYTES,
        .pump_connections = 2,
        .channels = forced >= 1 && forced <= SPREAD_MAX_CHANNELS ? (uint32_t) forced : 0,
    };

    return bench_migration_main(&b, argc, argv, print_round, bench_migration_ratio_key,
                                print_result);
}
