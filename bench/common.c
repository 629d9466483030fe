/* SPDX-License-Identifier: MIT */
/*
 * common — see common.h.
 */
#include "common.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "vfio_migd/v1/devices.pb-c.h"
#include "vfio_migd/v1/groups.pb-c.h"
#include "vfio_migd/v1/system.pb-c.h"

int
bench_daemon_start(const char *binary, Daemon *d)
{
    snprintf(d->dir, sizeof(d->dir), "/tmp/vfio-migd-bench.XXXXXX");
    if (!mkdtemp(d->dir)) {
        return -errno;
    }
    snprintf(d->socket, sizeof(d->socket), "%s/api.sock", d->dir);
    snprintf(d->lock, sizeof(d->lock), "%s.lock", d->socket);

    d->pid = fork();
    if (d->pid < 0) {
        return -errno;
    }
    if (d->pid == 0) {
        execl(binary, binary, "--socket", d->socket, "--log-level", "warning", (char *) NULL);
        fprintf(stderr, "bench: cannot run '%s': %s\n", binary, strerror(errno));
        _exit(127);
    }
    return 0;
}

/* Polls GetVersion until it answers, the daemon dies, or 10 s pass. */
int
bench_daemon_wait_ready(Daemon *d, RpcClient *c)
{
    uint64_t deadline = clock_now_ns() + (uint64_t) BENCH_START_TIMEOUT_MS * 1000000u;
    VfioMigd__V1__GetVersionRequest req = VFIO_MIGD__V1__GET_VERSION_REQUEST__INIT;
    RpcError err = {};
    int status;

    while (clock_now_ns() < deadline) {
        ProtobufCMessage *resp = NULL;

        if (rpc_client_call(c, "/vfio_migd.v1.SystemService/GetVersion", &req.base,
                            &vfio_migd__v1__get_version_response__descriptor, 1000, &resp,
                            &err) == 0) {
            protobuf_c_message_free_unpacked(resp, NULL);
            return 0;
        }
        if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
            d->pid = 0;
            fprintf(stderr, "bench: the daemon exited before answering (status 0x%x)\n",
                    status);
            return -ECHILD;
        }
        (void) usleep(20000);
    }
    fprintf(stderr, "bench: the daemon did not answer within %d ms: %s (%s)\n",
            BENCH_START_TIMEOUT_MS, err.message, rpc_status_code_name(err.code));
    return -ETIMEDOUT;
}

/* VmRSS of @pid in KiB, or a negative errno. */
long
bench_daemon_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256], want[32];
    long kib = -ENOENT;
    size_t len;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
    len = (size_t) snprintf(want, sizeof(want), "%s:", field);
    f = fopen(path, "re");
    if (!f) {
        return -errno;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, want, len) == 0 && sscanf(line + len, " %ld kB", &kib) == 1) {
            break;
        }
    }
    fclose(f);
    return kib;
}

/* SIGTERM, wait up to 10 s, then SIGKILL; removes the temporary directory. */
void
bench_daemon_stop(Daemon *d)
{
    uint64_t deadline = clock_now_ns() + (uint64_t) BENCH_STOP_TIMEOUT_MS * 1000000u;
    int status;

    if (d->pid > 0) {
        (void) kill(d->pid, SIGTERM);
        while (waitpid(d->pid, &status, WNOHANG) == 0) {
            if (clock_now_ns() > deadline) {
                fprintf(stderr, "bench: the daemon ignored SIGTERM, killing it\n");
                (void) kill(d->pid, SIGKILL);
                (void) waitpid(d->pid, &status, 0);
                break;
            }
            (void) usleep(10000);
        }
        d->pid = 0;
    }
    (void) unlink(d->socket);
    (void) unlink(d->lock); /* the daemon's "<socket>.lock" (docs/operations.md) */
    (void) rmdir(d->dir);
}

int
bench_attach_sim(RpcClient *c, const char *id, const char *options)
{
    VfioMigd__V1__AttachDeviceRequest req = VFIO_MIGD__V1__ATTACH_DEVICE_REQUEST__INIT;
    VfioMigd__V1__SimSource sim = VFIO_MIGD__V1__SIM_SOURCE__INIT;
    ProtobufCMessage *resp = NULL;
    RpcError err = {};
    int r;

    sim.options = (char *) options;
    req.id = (char *) id;
    req.source_case = VFIO_MIGD__V1__ATTACH_DEVICE_REQUEST__SOURCE_SIM;
    req.sim = &sim;
    r = rpc_client_call(c, "/vfio_migd.v1.DeviceService/AttachDevice", &req.base,
                        &vfio_migd__v1__attach_device_response__descriptor,
                        BENCH_CALL_TIMEOUT_MS, &resp, &err);
    if (r < 0) {
        fprintf(stderr, "bench: AttachDevice '%s': %s (%s)\n", id, err.message,
                rpc_status_code_name(err.code));
        return r;
    }
    protobuf_c_message_free_unpacked(resp, NULL);
    return 0;
}

const char *
bench_daemon_binary(const char *arg)
{
    const char *env = getenv("VFIO_MIGD");

    if (arg) {
        return arg;
    }
    return env && *env ? env : "./build/vfio-migd";
}

/* ---- calls several benchmarks make */

int
bench_call(RpcClient *c, const char *prog, const char *method, const ProtobufCMessage *req,
           const ProtobufCMessageDescriptor *desc, ProtobufCMessage **resp)
{
    RpcError err = {};
    int r = rpc_client_call(c, method, req, desc, BENCH_LONG_CALL_TIMEOUT_MS, resp, &err);

    if (r < 0) {
        fprintf(stderr, "%s: %s: %s (%s)\n", prog, method, err.message,
                rpc_status_code_name(err.code));
        if (*resp) {
            protobuf_c_message_free_unpacked(*resp, NULL);
            *resp = NULL;
        }
    }
    return r;
}

int
bench_set_device_state(RpcClient *c, const char *prog, const char *id,
                       VfioMigd__V1__DeviceState target, double *ret_ms,
                       double *ret_slowest_arc_ms)
{
    VfioMigd__V1__SetDeviceStateRequest req = VFIO_MIGD__V1__SET_DEVICE_STATE_REQUEST__INIT;
    VfioMigd__V1__SetDeviceStateResponse *resp = NULL;
    double slowest = 0;
    int r;

    req.id = (char *) id;
    req.target = target;
    r = BENCH_CALL(c, prog, "DeviceService", SetDeviceState, &req, set_device_state_response,
                   &resp);
    if (r < 0) {
        return r;
    }
    for (size_t i = 0; i < resp->n_arcs; i++) {
        double d = (double) resp->arcs[i]->duration_us / 1000.0;

        slowest = d > slowest ? d : slowest;
    }
    *ret_ms = (double) resp->elapsed_us / 1000.0;
    if (ret_slowest_arc_ms) {
        *ret_slowest_arc_ms = slowest;
    }
    protobuf_c_message_free_unpacked(&resp->base, NULL);
    return 0;
}

int
bench_create_group(RpcClient *c, const char *prog, const char *name, char **ids, size_t n)
{
    VfioMigd__V1__CreateGroupRequest req = VFIO_MIGD__V1__CREATE_GROUP_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    int r;

    req.name = (char *) name;
    req.n_device_ids = n;
    req.device_ids = ids;
    r = BENCH_CALL(c, prog, "GroupService", CreateGroup, &req, create_group_response, &resp);
    if (resp) {
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    return r;
}

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;

    return (x > y) - (x < y);
}

double
bench_median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return v[n / 2];
}

static int
cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;

    return x < y ? -1 : x > y;
}

double
bench_percentile_us(uint64_t *v, size_t n, unsigned pct)
{
    size_t i = n * pct / 100;

    qsort(v, n, sizeof(v[0]), cmp_u64);
    return (double) v[i < n ? i : n - 1] / 1e3;
}

size_t
bench_median_index(const double *v, size_t n)
{
    /* The element bench_median() would return: the one with n / 2 elements before it in
     * sorted order (ties broken by position). */
    for (size_t i = 0; i < n; i++) {
        size_t before = 0;

        for (size_t k = 0; k < n; k++) {
            before += v[k] < v[i] || (v[k] == v[i] && k < i);
        }
        if (before == n / 2) {
            return i;
        }
    }
    return 0;
}
