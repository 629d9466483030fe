/* SPDX-License-Identifier: MIT */
/*
 * bench-precopy — whether the downtime target holds while the devices keep dirtying their
 * state: a live migration with pre-copy, devices that dirty at a steady rate, and the
 * downtime it ends with against the target it was given.
 *
 * The plan: start two vfio-migd (argv[1], $VFIO_MIGD or ./build/vfio-migd), a source and a
 * destination, each on its own socket. On each, attach 4 sim devices "size=256M,
 * dirty_rate=20M" (each dirties 20 MiB/s of its state while it runs in pre-copy, a busy
 * guest) with the same names, and group them. Then a round:
 *   1. pump: 4 TCP connections over 127.0.0.1, each moving 256 MiB (migration_common.h), the
 *      link's rate for the round's stderr line;
 *   2. migration with pre-copy on, downtime_target_ms 50 and max_precopy_ms 30000: the
 *      source's policy (docs/migration.md "When pre-copy ends") ends the pre-copy once what
 *      the devices report left moves within 50 ms at the measured rate, or gives up at
 *      30 s; WatchEvents on the source until the job is no longer active;
 *   3. pump again.
 * $BENCH_ROUNDS rounds (default 3) run, the migrations alternately one way and back. Each
 * round's details go to stderr; ONE JSON line on stdout, the round with the median downtime:
 *   {"bench":"precopy","downtime_ms":..,"target_ms":50,"ratio":..,"precopy_s":..,
 *    "converged":true|false,"bytes":..,"rounds":3,"reason":".."}
 * ratio = downtime / target; converged and reason are the job's precopy_converged and
 * switchover_reason. Target (reported, not asserted): converged, ratio <= 1.25.
 */
#include <stdio.h>

#include "migration_common.h"

#define PROG "bench-precopy"
#define TARGET_MS 50
#define MAX_PRECOPY_MS 30000 /* the daemon's default: a workload that does not converge */

static double
round_downtime_ms(const BenchMigrationRun *run)
{
    return (double) run->resp->migration->downtime_us / 1000.0;
}

static double
downtime_key(const BenchMigration *b, const BenchMigrationRun *run)
{
    (void) b;
    return round_downtime_ms(run);
}

/* One round's details on stderr. */
static void
print_round(const BenchMigration *b, size_t i, const BenchMigrationRun *run, void *userdata)
{
    const VfioMigd__V1__Migration *mig = run->resp->migration;

    (void) userdata;
    fprintf(stderr, "%s: round %zu: pump before %.3f GiB/s, after %.3f GiB/s; migration %s: "
            "%.1f MiB in %.1f ms, pre-copy %.3f s, downtime %.1f ms (target %d ms, ratio %.3f); "
            "%s\n", b->prog, i + 1, run->pump_before_gib_s, run->pump_after_gib_s, mig->id,
            (double) mig->bytes / (1 << 20), (double) mig->elapsed_us / 1000.0,
            (double) mig->precopy_us / 1e6, round_downtime_ms(run), TARGET_MS,
            round_downtime_ms(run) / TARGET_MS, mig->switchover_reason);
}

/* @s as the inside of a JSON string: the daemon's sentence is plain text, but a quote or a
 * control character must not break the line a script parses. */
static void
print_json_text(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char) *s;

        if (c == '"' || c == '\\') {
            printf("\\%c", c);
        } else if (c < 0x20) {
            printf("\\u%04x", c);
        } else {
            putchar(c);
        }
    }
}

/* The JSON line of the round with the median downtime. */
static void
print_result(const BenchMigration *b, const BenchMigrationRun *run, size_t rounds)
{
    const VfioMigd__V1__Migration *mig = run->resp->migration;

    (void) b;
    printf("{\"bench\":\"precopy\",\"downtime_ms\":%.1f,\"target_ms\":%d,\"ratio\":%.3f,"
           "\"precopy_s\":%.3f,\"converged\":%s,\"bytes\":%llu,\"rounds\":%zu,\"reason\":\"",
           round_downtime_ms(run), TARGET_MS, round_downtime_ms(run) / TARGET_MS,
           (double) mig->precopy_us / 1e6, mig->precopy_converged ? "true" : "false",
           (unsigned long long) mig->bytes, rounds);
    print_json_text(mig->switchover_reason);
    printf("\"}\n");
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    BenchMigration b = {
        .prog = PROG,
        .n_devices = 4,
        .device_bytes = 256ull << 20,
        .sim_options = "dirty_rate=20M",
        .precopy = true,
        .downtime_target_ms = TARGET_MS,
        .max_precopy_ms = MAX_PRECOPY_MS,
    };

    return bench_migration_main(&b, argc, argv, print_round, downtime_key, print_result);
}
