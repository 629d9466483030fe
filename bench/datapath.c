/* SPDX-License-Identifier: MIT */
/*
 * bench-datapath — the per-byte work of a migration's data path, alone, in this process:
 * the sim device generating its saved data (fill), the resuming sim device checking every
 * byte it is given (verify), and CRC32C, which every record's writer and reader run over the
 * payload. No daemon, no socket: these are the loops whose speed depends on the compiler's
 * optimisation level, measured without the copies and wake-ups around them.
 *
 * The plan:
 *  - session lines: a sim device of the pass size goes RUNNING -> STOP_COPY and its
 *    session is read in MIGRATION_DATA_CHUNK pieces (what a migration's pump reads); each
 *    piece is written at once into a second sim device of the same name (same content) in
 *    RESUMING. The reads are "fill", the writes "verify", each timed on its own.
 *  - content lines: every implementation of the sim's content generator and checker
 *    (backend/sim_content.h) that this CPU has, the scalar reference included, alone.
 *  - crc32c lines: every CRC32C implementation this CPU has, over one chunk-sized buffer.
 * Each figure is the median of RUNS passes; a pass moves 256 MiB ($BENCH_DATAPATH_MIB, 1 to
 * 4096: smaller for a run under valgrind --tool=callgrind, whose instruction counts do not
 * depend on the machine's load). gb_s is bytes / wall time. One JSON line per figure:
 *   {"bench":"datapath","op":"fill","impl":"sim-session","block":524288,"gb_s":..}
 * Nothing is asserted; exit 1 only when something failed (a verify error is a failure).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/sim_content.h"
#include "common.h"
#include "core/stream.h"
#include "util/macro.h"

#define PROG "bench-datapath"
#define RUNS 5
#define PASS_MIB_DEFAULT 256
#define PASS_MIB_MAX 4096
#define BLOCK (512u << 10) /* MIGRATION_DATA_CHUNK: what a pump reads and writes at once */
#define SIM_CHUNK (64u << 10) /* the sim device's chunk: one key per 64 KiB */

/* Wall time only: the CPU-time clock is a system call, as slow as a tenth of a block's
 * work, and the figures that must not depend on the machine's load are callgrind's
 * instruction counts (bench/README.md), not a clock. */
typedef struct Timing {
    uint64_t ns;
} Timing;

static void
timing_stop(Timing *t, uint64_t start_ns)
{
    t->ns += clock_now_ns() - start_ns;
}

static void
print_line(const char *op, const char *impl, uint64_t bytes, const Timing *runs)
{
    double gb_s[RUNS];

    for (int i = 0; i < RUNS; i++) {
        gb_s[i] = (double) bytes / (double) MAX(runs[i].ns, UINT64_C(1));
    }
    printf("{\"bench\":\"datapath\",\"op\":\"%s\",\"impl\":\"%s\",\"block\":%u,"
           "\"gb_s\":%.2f}\n", op, impl, BLOCK, bench_median(gb_s, RUNS));
    fflush(stdout);
}

/* A sim device named @name moved to @target; its data session in *@ret_s. */
static int
sim_session(const char *name, uint64_t bytes, DeviceState target, BackendDevice **ret_bd,
            DataSession **ret_s)
{
    char err[256] = "", options[64];
    int r;

    (void) snprintf(options, sizeof(options), "size=%" PRIu64, bytes);
    r = sim_device_new(name, options, ret_bd, NULL, err, sizeof(err));
    if (r < 0) {
        fprintf(stderr, PROG ": sim device: %s\n", err[0] ? err : strerror(-r));
        return r;
    }
    r = (*ret_bd)->ops->set_state(*ret_bd, target, ret_s);
    if (r < 0 || !*ret_s) {
        fprintf(stderr, PROG ": sim device to %s: %s\n", fsm_state_name(target),
                strerror(r < 0 ? -r : ENODATA));
        return r < 0 ? r : -ENODATA;
    }
    return 0;
}

/* One pass: the whole image read from a saving device and written into a resuming one. */
static int
session_pass(uint8_t *buf, uint64_t bytes, Timing *fill, Timing *verify)
{
    BackendDevice *src = NULL, *dst = NULL;
    DataSession *out = NULL, *in = NULL;
    uint64_t t0;
    int r;

    r = sim_session("bench", bytes, DEVICE_STATE_STOP_COPY, &src, &out);
    if (r >= 0) {
        r = sim_session("bench", bytes, DEVICE_STATE_RESUMING, &dst, &in);
    }
    while (r >= 0) {
        t0 = clock_now_ns();
        ssize_t n = out->ops->read(out, buf, BLOCK);
        timing_stop(fill, t0);
        if (n <= 0) {
            r = (int) n;
            break;
        }
        t0 = clock_now_ns();
        ssize_t w = in->ops->write(in, buf, (size_t) n);
        timing_stop(verify, t0);
        if (w != n) {
            fprintf(stderr, PROG ": the resuming sim device refused its own data: %zd\n", w);
            r = w < 0 ? (int) w : -EIO;
        }
    }
    if (r >= 0 && dst->ops->set_state(dst, DEVICE_STATE_STOP, NULL) < 0) {
        fprintf(stderr, PROG ": RESUMING -> STOP refused the data\n");
        r = -EBADMSG;
    }
    data_session_free(out);
    data_session_free(in);
    backend_device_free(src);
    backend_device_free(dst);
    return r;
}

static int
bench_session(uint8_t *buf, uint64_t bytes)
{
    Timing fill[RUNS] = {0}, verify[RUNS] = {0};

    for (int i = 0; i < RUNS; i++) {
        int r = session_pass(buf, bytes, &fill[i], &verify[i]);
        if (r < 0) {
            return r;
        }
    }
    print_line("fill", "sim-session", bytes, fill);
    print_line("verify", "sim-session", bytes, verify);
    return 0;
}

/* Each content implementation on its own, over the block in 64 KiB calls (one sim chunk, as
 * the sim device makes them), every chunk of the block with its own key. */
static int
bench_content(uint8_t *buf, uint64_t bytes)
{
    for (int impl = 0; impl <= (int) sim_content_impl(); impl++) {
        SimContentImpl ci = (SimContentImpl) impl;
        Timing fill[RUNS] = {0}, verify[RUNS] = {0};
        uint64_t t0;
        int r = 0;

        for (int i = 0; i < RUNS; i++) {
            t0 = clock_now_ns();
            for (uint64_t done = 0; done < bytes; done += SIM_CHUNK) {
                sim_content_fill_with(ci, done % BLOCK, 0, buf + done % BLOCK, SIM_CHUNK);
            }
            timing_stop(&fill[i], t0);
            t0 = clock_now_ns();
            for (uint64_t done = 0; done < bytes; done += SIM_CHUNK) {
                r |= sim_content_verify_with(ci, done % BLOCK, 0, buf + done % BLOCK, SIM_CHUNK);
            }
            timing_stop(&verify[i], t0);
        }
        if (r != 0) {
            fprintf(stderr, PROG ": %s: verify rejected what fill wrote\n",
                    sim_content_impl_name(ci));
            return -EBADMSG;
        }
        print_line("fill", sim_content_impl_name(ci), bytes, fill);
        print_line("verify", sim_content_impl_name(ci), bytes, verify);
    }
    return 0;
}

static void
bench_crc(const uint8_t *buf, uint64_t bytes)
{
    for (int impl = 0; impl <= (int) crc32c_impl(); impl++) {
        Timing t[RUNS] = {0};
        volatile uint32_t sink = 0;

        for (int i = 0; i < RUNS; i++) {
            uint64_t t0 = clock_now_ns();

            for (uint64_t done = 0; done < bytes; done += BLOCK) {
                sink = crc32c_with((Crc32cImpl) impl, sink, buf, BLOCK);
            }
            timing_stop(&t[i], t0);
        }
        print_line("crc32c", crc32c_impl_name((Crc32cImpl) impl), bytes, t);
    }
}

static uint64_t
pass_bytes(void)
{
    const char *e = getenv("BENCH_DATAPATH_MIB");
    long v = e ? strtol(e, NULL, 10) : 0;

    return (uint64_t) (v >= 1 && v <= PASS_MIB_MAX ? v : PASS_MIB_DEFAULT) << 20;
}

int
main(void)
{
    uint8_t *buf = aligned_alloc(64, BLOCK);
    uint64_t bytes = pass_bytes();
    int r;

    if (!buf) {
        fprintf(stderr, PROG ": out of memory\n");
        return 1;
    }
    memset(buf, 0x5a, BLOCK);
    r = bench_session(buf, bytes);
    if (r >= 0) {
        r = bench_content(buf, bytes);
    }
    if (r >= 0) {
        bench_crc(buf, bytes);
    }
    free(buf);
    return r < 0 ? 1 : 0;
}
