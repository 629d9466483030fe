/* SPDX-License-Identifier: MIT */
/*
 * bench-group — how long a P2P-safe group transition takes against one device's.
 *
 * The plan: start a real vfio-migd (argv[1], $VFIO_MIGD or ./build/vfio-migd); for N = 1, 8,
 * 32, 64 attach N sim devices with latency_ms=10 (every kernel arc sleeps 10 ms), group them,
 * and time RUNNING -> STOP and STOP -> RUNNING of the group; time the same single-device
 * RUNNING -> STOP on a lone device. Each figure is the median of 5 runs of the daemon's own
 * measurement (elapsed_us in the answer). Prints one JSON line per N:
 *   {"bench":"group","n":N,"stop_ms":..,"resume_ms":..,"single_stop_ms":..,"ratio":..}
 * ratio = group stop / single stop. Target: ratio <= 1.25 at N = 32 (one device after
 * another would be 32): the phases run on every device at once.
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

static int
group_transition_ms(RpcClient *c, const char *name, VfioMigd__V1__DeviceState target, double *ret)
{
    VfioMigd__V1__GroupTransitionRequest req = VFIO_MIGD__V1__GROUP_TRANSITION_REQUEST__INIT;
    VfioMigd__V1__GroupTransitionResponse *resp = NULL;
    int r;

    req.name = (char *) name;
    req.target = target;
    r = bench_call(c, PROG, "/vfio_migd.v1.GroupService/GroupTransition", &req.base,
                   &vfio_migd__v1__group_transition_response__descriptor,
                   (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    *ret = (double) resp->elapsed_us / 1000.0;
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

static int
bench_one_size(RpcClient *c, size_t n)
{
    double stop[RUNS], resume[RUNS], single[RUNS], back;
    char name[32], single_id[32];
    int r;

    r = make_group(c, n, name, sizeof(name));
    (void) snprintf(single_id, sizeof(single_id), "single-%zu", n);
    if (r >= 0) {
        r = bench_attach_sim(c, single_id, ARC_LATENCY);
    }
    for (int i = 0; r >= 0 && i < RUNS; i++) {
        r = group_transition_ms(c, name, VFIO_MIGD__V1__DEVICE_STATE__DEVICE_STATE_STOP, &stop[i]);
        if (r >= 0) {
            r = group_transition_ms(c, name, VFIO_MIGD__V1__DEVICE_STATE__DEVICE_STATE_RUNNING,
                                    &resume[i]);
        }
        if (r >= 0) {
            r = bench_set_device_state(c, PROG, single_id,
                                       VFIO_MIGD__V1__DEVICE_STATE__DEVICE_STATE_STOP, &single[i],
                                       /* ret_slowest_arc_ms= */ NULL);
        }
        if (r >= 0) {
            r = bench_set_device_state(c, PROG, single_id,
                                       VFIO_MIGD__V1__DEVICE_STATE__DEVICE_STATE_RUNNING, &back,
                                       /* ret_slowest_arc_ms= */ NULL);
        }
    }
    if (r < 0) {
        return r;
    }
    double s = bench_median(stop, RUNS), res = bench_median(resume, RUNS);
    double one = bench_median(single, RUNS);
    printf("{\"bench\":\"group\",\"n\":%zu,\"stop_ms\":%.2f,\"resume_ms\":%.2f,"
           "\"single_stop_ms\":%.2f,\"ratio\":%.3f}\n", n, s, res, one, s / one);
    fflush(stdout);
    return 0;
}

int
main(int argc, char **argv)
{
    const char *binary = bench_daemon_binary(argc > 1 ? argv[1] : NULL);
    RpcClient *c = NULL;
    Daemon d = {0};
    int r;

    r = bench_daemon_start(binary, &d);
    if (r < 0) {
        fprintf(stderr, PROG ": cannot start '%s': %s\n", binary, strerror(-r));
        return 1;
    }
    rpc_client_global_init();
    r = rpc_client_new(d.socket, &c);
    if (r >= 0) {
        r = bench_daemon_wait_ready(&d, c);
    }
    for (size_t i = 0; r >= 0 && i < ELEMENTSOF(group_sizes); i++) {
        r = bench_one_size(c, group_sizes[i]);
    }
    rpc_client_free(c);
    rpc_client_global_shutdown();
    bench_daemon_stop(&d);
    return r < 0 ? 1 : 0;
}
