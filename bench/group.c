/* SPDX-License-Identifier: MIT */
/*
 * bench-group — how long a P2P-safe group transition takes against one device's, the first
 * one of a fresh daemon and the ones after it.
 *
 * The plan: start one real vfio-migd (argv[1], $VFIO_MIGD or ./build/vfio-migd) per N = 1, 8,
 * 32, 64, all before the client library starts (grpc-core.md: fork before grpc_init); each
 * serves one N and nothing before it. In it, attach N sim devices with latency_ms=10 (every
 * kernel arc sleeps 10 ms) and a lone one, group the N, then:
 *  - first: the group's RUNNING -> STOP and STOP -> RUNNING, the first device operations
 *    this daemon runs: what a real migration's single switchover gets;
 *  - steady: 5 runs of the same, each followed by the lone device's RUNNING -> STOP and back;
 *    each figure is the median of the 5.
 * All times are the daemon's own measurement (elapsed_us in the answer). One JSON line per N:
 *   {"bench":"group","n":N,"stop_ms":..,"resume_ms":..,"single_stop_ms":..,"ratio":..,
 *    "first_stop_ms":..,"first_resume_ms":..,"first_ratio":..}
 * ratio = group stop / single stop (steady), first_ratio = first group stop / single stop.
 * Target for both: <= 1.25 at N = 32 (one device after another would be 32): the phases run
 * on every device at once. stderr shows, for the first and a steady stop, when the group's
 * first arcs began after its start: time before them is set-up, not arcs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "common.h"
#include "util/macro.h"
#include "vfio_migd/v1/groups.pb-c.h"

#define PROG "bench-group"
#define RUNS 5
#define ARC_LATENCY "latency_ms=10,size=4K"

static const size_t group_sizes[] = {1, 8, 32, 64};

typedef struct GroupTiming {
    double ms;             /* the daemon's elapsed_us */
    double arcs_begin_ms;  /* the earliest and the latest first arc of a device, from the */
    double arcs_spread_ms; /* ... start of the transition: set-up and fan-out */
} GroupTiming;

static void
first_arcs(const VfioMigd__V1__GroupTransitionResponse *resp, GroupTiming *t)
{
    uint64_t lo = UINT64_MAX, hi = 0;

    for (size_t i = 0; i < resp->n_devices; i++) {
        const VfioMigd__V1__GroupDeviceResult *d = resp->devices[i];

        if (d->n_arcs > 0) {
            lo = MIN(lo, d->arcs[0]->start_us);
            hi = MAX(hi, d->arcs[0]->start_us);
        }
    }
    t->arcs_begin_ms = lo == UINT64_MAX ? 0 : (double) lo / 1000.0;
    t->arcs_spread_ms = lo == UINT64_MAX ? 0 : (double) (hi - lo) / 1000.0;
}

static int
group_transition(RpcClient *c, const char *name, VfioMigd__V1__DeviceState target,
                 GroupTiming *ret)
{
    VfioMigd__V1__GroupTransitionRequest req = VFIO_MIGD__V1__GROUP_TRANSITION_REQUEST__INIT;
    VfioMigd__V1__GroupTransitionResponse *resp = NULL;
    int r;

    req.name = (char *) name;
    req.target = target;
    r = BENCH_CALL(c, PROG, "GroupService", GroupTransition, &req, group_transition_response,
                   &resp);
    if (r < 0) {
        return r;
    }
    ret->ms = (double) resp->elapsed_us / 1000.0;
    first_arcs(resp, ret);
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return 0;
}

static int
make_group(RpcClient *c, size_t n, char *name, size_t name_size)
{
    char **ids = calloc(n, sizeof(*ids));
    int r = ids ? 0 : -ENOMEM;

    for (size_t i = 0; r >= 0 && i < n; i++) {
        if (asprintf(&ids[i], "g%zu-d%zu", n, i) < 0) {
            ids[i] = NULL;
            r = -ENOMEM;
        } else {
            r = bench_attach_sim(c, ids[i], ARC_LATENCY);
        }
    }
    (void) snprintf(name, name_size, "bench-%zu", n);
    if (r >= 0) {
        r = bench_create_group(c, PROG, name, ids, n);
    }
    for (size_t i = 0; ids && i < n; i++) {
        free(ids[i]);
    }
    free(ids);
    return r;
}

#define STOP VFIO_MIGD__V1__DEVICE_STATE__DEVICE_STATE_STOP
#define RUNNING VFIO_MIGD__V1__DEVICE_STATE__DEVICE_STATE_RUNNING

/* One steady run: the group's stop and resume, then the lone device's. */
static int
steady_run(RpcClient *c, const char *name, const char *single_id, GroupTiming *stop,
           GroupTiming *resume, double *single)
{
    double back;
    int r;

    r = group_transition(c, name, STOP, stop);
    if (r >= 0) {
        r = group_transition(c, name, RUNNING, resume);
    }
    if (r >= 0) {
        r = bench_set_device_state(c, PROG, single_id, STOP, single,
                                   /* ret_slowest_arc_ms= */ NULL);
    }
    if (r >= 0) {
        r = bench_set_device_state(c, PROG, single_id, RUNNING, &back,
                                   /* ret_slowest_arc_ms= */ NULL);
    }
    return r;
}

/* In a daemon that has run no device operation yet. */
static int
bench_one_size(RpcClient *c, size_t n)
{
    GroupTiming first_stop, first_resume, stop[RUNS], resume[RUNS];
    double stop_ms[RUNS], resume_ms[RUNS], single[RUNS];
    char name[32], single_id[32];
    size_t mid;
    int r;

    r = make_group(c, n, name, sizeof(name));
    (void) snprintf(single_id, sizeof(single_id), "single-%zu", n);
    if (r >= 0) {
        r = bench_attach_sim(c, single_id, ARC_LATENCY);
    }
    if (r >= 0) {
        r = group_transition(c, name, STOP, &first_stop);
    }
    if (r >= 0) {
        r = group_transition(c, name, RUNNING, &first_resume);
    }
    for (int i = 0; r >= 0 && i < RUNS; i++) {
        r = steady_run(c, name, single_id, &stop[i], &resume[i], &single[i]);
        stop_ms[i] = stop[i].ms;
        resume_ms[i] = resume[i].ms;
    }
    if (r < 0) {
        return r;
    }
    mid = bench_median_index(stop_ms, RUNS);
    fprintf(stderr, PROG ": n=%zu: first stop %.2f ms, its first arcs began after %.2f ms "
            "(over %.2f ms); median steady stop %.2f ms, after %.2f ms (over %.2f ms)\n", n,
            first_stop.ms, first_stop.arcs_begin_ms, first_stop.arcs_spread_ms, stop[mid].ms,
            stop[mid].arcs_begin_ms, stop[mid].arcs_spread_ms);
    double s = bench_median(stop_ms, RUNS), res = bench_median(resume_ms, RUNS);
    double one = bench_median(single, RUNS);
    printf("{\"bench\":\"group\",\"n\":%zu,\"stop_ms\":%.2f,\"resume_ms\":%.2f,"
           "\"single_stop_ms\":%.2f,\"ratio\":%.3f,\"first_stop_ms\":%.2f,"
           "\"first_resume_ms\":%.2f,\"first_ratio\":%.3f}\n", n, s, res, one, s / one,
           first_stop.ms, first_resume.ms, first_stop.ms / one);
    fflush(stdout);
    return 0;
}

/* A fresh daemon for group size @n: connect, wait until it serves, measure. */
static int
bench_in_daemon(Daemon *d, size_t n)
{
    RpcClient *c = NULL;
    int r;

    r = rpc_client_new(d->socket, &c);
    if (r >= 0) {
        r = bench_daemon_wait_ready(d, c);
    }
    if (r >= 0) {
        r = bench_one_size(c, n);
    }
    rpc_client_free(c);
    return r;
}

int
main(int argc, char **argv)
{
    const char *binary = bench_daemon_binary(argc > 1 ? argv[1] : NULL);
    Daemon d[ELEMENTSOF(group_sizes)] = {0};
    int r = 0;

    for (size_t i = 0; r >= 0 && i < ELEMENTSOF(group_sizes); i++) {
        r = bench_daemon_start(binary, &d[i]);
        if (r < 0) {
            fprintf(stderr, PROG ": cannot start '%s': %s\n", binary, strerror(-r));
        }
    }
    rpc_client_global_init();
    for (size_t i = 0; r >= 0 && i < ELEMENTSOF(group_sizes); i++) {
        r = bench_in_daemon(&d[i], group_sizes[i]);
        bench_daemon_stop(&d[i]); /* so that the next sizes run beside no idle daemon */
    }
    rpc_client_global_shutdown();
    for (size_t i = 0; i < ELEMENTSOF(group_sizes); i++) {
        bench_daemon_stop(&d[i]);
    }
    return r < 0 ? 1 : 0;
}
