/* SPDX-License-Identifier: MIT */
/*
 * kernel-mtty-fsm — does core/fsm predict the real kernel, and does the daemon give the
 * kernel's verdicts? Runs in the Linux 6.12 test VM on one mtty mdev, booted with
 * mtty.dyndbg=+p so mtty logs every single arc it runs ("mtty_step_state: CUR -> NEW").
 *
 *   kernel-mtty-fsm direct --mdev UUID        the device through the kernel back-end, group path
 *   kernel-mtty-fsm direct --cdev UUID        the same through its iommufd cdev
 *   kernel-mtty-fsm daemon SOCKET ID UUID     the daemon's device ID (attached to UUID) over RPC
 *   kernel-mtty-fsm attach SOCKET ID --mdev UUID | --cdev PATH
 *                                             AttachDevice, printing found_state and recovered
 *                                             (which the CLI does not show) for daemon_test.sh
 *
 * direct: for every current state the device can be put in (all but ERROR, which mtty never
 * enters) and every target (the eight states, and the invalid numbers 8 and 99) it resets the
 * device, drives it to the current state, and issues ONE combined SET of the target through
 * the back-end. fsm_compute_path() says what must happen: refused (-EINVAL, state unchanged,
 * no arc run) or the exact arcs, in order, as mtty logs them, the final state, and a data
 * session exactly when the request's last arc opens one (which is then read or written to
 * check it is the right kind of session). From RESUMING every exit passes RESUMING -> STOP,
 * where mtty checks that a whole stream was written: each such request is made twice, after
 * writing a valid stream (accepted) and after writing nothing (the first arc fails with EINVAL
 * and the device stays in RESUMING).
 *
 * daemon: the same requests through SetDeviceState: refused ones answer INVALID_ARGUMENT and
 * touch nothing (no arc in the kernel log, GetDevice unchanged); accepted ones answer the arcs
 * fsm predicts, which are exactly the arcs mtty logs (one SET per arc); from RESUMING with no
 * data the answer is ABORTED naming resuming->stop and EINVAL, device left in resuming.
 * Also the API-only invalid numbers: 0 (unset), 9, 100.
 *
 * Output: TAP lines; exit 0 only when every check passed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "client.h"
#include "ktest.h"
#include "util/macro.h"
#include "vfio_migd/v1/devices.pb-c.h"

#define MTTY_FLAGS MIG_FLAGS_ALL
#define STREAM_MAX 4096

/* Every state a device can be driven to (mtty never enters ERROR). */
static const DeviceState currents[] = {
    DEVICE_STATE_STOP,        DEVICE_STATE_RUNNING,  DEVICE_STATE_STOP_COPY,
    DEVICE_STATE_RESUMING,    DEVICE_STATE_RUNNING_P2P, DEVICE_STATE_PRE_COPY,
    DEVICE_STATE_PRE_COPY_P2P,
};
/* Every kernel state number, and two that are none. */
static const int targets[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 99};

static const char *
state_label(int s)
{
    static char buf[4][16];
    static unsigned i;
    const char *n = fsm_state_name((DeviceState) s);

    if (n) {
        return n;
    }
    i = (i + 1) % 4;
    (void) snprintf(buf[i], sizeof(buf[i]), "#%d", s);
    return buf[i];
}

/* ---- direct: through the kernel back-end, one combined SET per request */

typedef struct Direct {
    BackendDevice *bd;
    const char *uuid;
    uint8_t stream[STREAM_MAX]; /* a valid save of the device, for RESUMING */
    size_t stream_size;
} Direct;

static ssize_t
read_all(DataSession *s, uint8_t *buf, size_t cap)
{
    size_t got = 0;

    for (;;) {
        ssize_t n = s->ops->read(s, buf + got, cap - got);

        if (n <= 0) {
            return n < 0 ? n : (ssize_t) got;
        }
        got += (size_t) n;
        if (got == cap) {
            return -ENOSPC;
        }
    }
}

static int
write_all(DataSession *s, const uint8_t *buf, size_t size)
{
    for (size_t off = 0; off < size;) {
        ssize_t n = s->ops->write(s, buf + off, size - off);

        if (n <= 0) {
            return n < 0 ? (int) n : -EIO;
        }
        off += (size_t) n;
    }
    return 0;
}

/* Puts the device in @cur from a fresh reset; *@session is the session the way opened. */
static int
direct_drive(Direct *x, DeviceState cur, bool with_data, DataSession **session)
{
    int r;

    *session = NULL;
    r = x->bd->ops->reset(x->bd);
    if (r < 0 || cur == DEVICE_STATE_RUNNING) {
        return r;
    }
    r = x->bd->ops->set_state(x->bd, cur, session);
    if (r >= 0 && cur == DEVICE_STATE_RESUMING && with_data) {
        r = *session ? write_all(*session, x->stream, x->stream_size) : -ENODATA;
    }
    return r;
}

/* The session a request returned is the one its last arc opened: check it acts like it. */
static void
direct_check_session(Direct *x, DeviceState target, DataSession *s, const char *what)
{
    uint8_t buf[STREAM_MAX];
    ssize_t n;

    if (target == DEVICE_STATE_STOP_COPY) {
        n = read_all(s, buf, sizeof(buf));
        ktest_check(n == (ssize_t) x->stream_size, "%s: the new session streams the whole state "
                    "(%zd of %zu bytes) and ends", what, n, x->stream_size);
    } else if (target == DEVICE_STATE_RESUMING) {
        int r = write_all(s, x->stream, x->stream_size);

        ktest_check(r == 0 && x->bd->ops->set_state(x->bd, DEVICE_STATE_STOP, NULL) == 0,
                    "%s: the new session takes a whole stream, then resuming->stop loads it", what);
    } else {
        uint64_t initial = 1, dirty = 1;
        int r;

        n = read_all(s, buf, sizeof(buf));
        r = s->ops->precopy_info(s, &initial, &dirty);
        ktest_check(n == 24 && r == 0 && initial == 0 && dirty == 0,
                    "%s: the pre-copy session gives mtty's 24-byte header, then read() 0 with "
                    "initial=dirty=0 (got %zd, %llu, %llu)", what, n,
                    (unsigned long long) initial, (unsigned long long) dirty);
    }
}

/* One request: cur --SET(target)--> ?; compared with fsm. */
static void
direct_request(Direct *x, DeviceState cur, int target, bool with_data)
{
    DataSession *before = NULL, *s = NULL;
    FsmPath path = {0};
    FsmRefusal why = FSM_OK;
    KtestArcs seen;
    DeviceState final = _DEVICE_STATE_INVALID;
    char what[128], want[256], got[256];
    bool refused = fsm_compute_path(cur, (DeviceState) target, MTTY_FLAGS, &path, &why) < 0;
    bool no_data = cur == DEVICE_STATE_RESUMING && !with_data;
    int r;

    (void) snprintf(what, sizeof(what), "%s -> %s%s", state_label(cur), state_label(target),
                    no_data ? " (nothing written)" : "");
    r = direct_drive(x, cur, with_data, &before);
    if (r < 0) {
        ktest_check(false, "%s: device driven to %s: %s", what, state_label(cur), strerror(-r));
        data_session_free(before);
        return;
    }
    ktest_kmsg_drain();
    r = x->bd->ops->set_state(x->bd, (DeviceState) target, &s);
    ktest_kmsg_arcs(x->uuid, &seen);
    (void) x->bd->ops->get_state(x->bd, &final);
    (void) ktest_arcs_string(seen.arcs, seen.n, got, sizeof(got));
    if (refused) {
        ktest_check(r == -EINVAL && final == cur && seen.n == 0 && !s,
                    "%s: refused like fsm says (%s): r=%d, state %s, kernel arcs %s", what,
                    fsm_refusal_to_string(why), r, state_label(final), got);
    } else if (no_data && path.n_arcs > 0) {
        ktest_check(r == -EINVAL && final == DEVICE_STATE_RESUMING && seen.n == 1 &&
                        seen.arcs[0].from == DEVICE_STATE_RESUMING &&
                        seen.arcs[0].to == DEVICE_STATE_STOP,
                    "%s: resuming->stop fails (EINVAL: incomplete stream), device stays in "
                    "resuming: r=%d, state %s, kernel arcs %s", what, r, state_label(final), got);
    } else {
        bool last_opens = path.n_arcs > 0 && path.session_arc == (int) path.n_arcs - 1;

        (void) ktest_arcs_string(path.arcs, path.n_arcs, want, sizeof(want));
        ktest_check(r == 0 && final == (DeviceState) target &&
                        ktest_arcs_equal(seen.arcs, seen.n, path.arcs, path.n_arcs) &&
                        (s != NULL) == last_opens,
                    "%s: kernel arcs %s (fsm: %s), r=%d, state %s, data session %s (fsm: %s)", what,
                    got, want, r, state_label(final), s ? "yes" : "no", last_opens ? "yes" : "no");
        if (s) {
            direct_check_session(x, (DeviceState) target, s, what);
        } else if (before && target == DEVICE_STATE_STOP_COPY) {
            /* PRE_COPY* -> STOP_COPY keeps the pre-copy session streaming (no new fd). */
            uint8_t buf[STREAM_MAX];
            ssize_t n = read_all(before, buf, sizeof(buf));

            ktest_check(n == (ssize_t) x->stream_size, "%s: the pre-copy session goes on with "
                        "the rest of the state (%zd of %zu bytes)", what, n, x->stream_size);
        }
    }
    data_session_free(s);
    data_session_free(before);
}

static int
direct_capture_stream(Direct *x)
{
    DataSession *s = NULL;
    ssize_t n;
    int r;

    r = x->bd->ops->reset(x->bd);
    if (r >= 0) {
        r = x->bd->ops->set_state(x->bd, DEVICE_STATE_STOP_COPY, &s);
    }
    if (r < 0 || !s) {
        return r < 0 ? r : -ENODATA;
    }
    n = read_all(s, x->stream, sizeof(x->stream));
    data_session_free(s);
    if (n <= 0) {
        return n < 0 ? (int) n : -ENODATA;
    }
    x->stream_size = (size_t) n;
    return x->bd->ops->reset(x->bd);
}

static int
run_direct(const char *how, const char *uuid)
{
    char err[512] = "", cdev[128];
    KernelAddress addr = {KERNEL_ADDRESS_MDEV, uuid};
    BackendInfo info;
    Direct x = {.uuid = uuid};
    int r;

    if (strcmp(how, "--cdev") == 0) {
        r = ktest_mdev_cdev_path(uuid, cdev, sizeof(cdev));
        if (!ktest_check(r >= 0, "mdev %s has a vfio cdev", uuid)) {
            return ktest_finish();
        }
        addr = (KernelAddress){KERNEL_ADDRESS_CDEV, cdev};
    }
    r = kernel_device_open(&addr, "/sys", &x.bd, &info, err, sizeof(err));
    if (!ktest_check(r >= 0 && info.mig_flags == MTTY_FLAGS, "open %s: flags 0x%x %s", addr.value,
                     info.mig_flags, err)) {
        return ktest_finish();
    }
    r = direct_capture_stream(&x);
    ktest_check(r >= 0 && x.stream_size == 60, "a valid stream saved from the device: %zu bytes",
                x.stream_size);
    for (size_t c = 0; c < ELEMENTSOF(currents); c++) {
        for (size_t t = 0; t < ELEMENTSOF(targets); t++) {
            direct_request(&x, currents[c], targets[t], true);
            if (currents[c] == DEVICE_STATE_RESUMING) {
                direct_request(&x, currents[c], targets[t], false);
            }
        }
    }
    (void) x.bd->ops->reset(x.bd);
    backend_device_free(x.bd);
    return ktest_finish();
}

/* ---- daemon: the same requests through the API */

typedef struct Daemon {
    RpcClient *client;
    const char *id;
    const char *uuid;
} Daemon;

#define DEVICE_METHOD(m) "/vfio_migd.v1.DeviceService/" m

static int
rpc_set_state(Daemon *dm, int api_target, VfioMigd__V1__SetDeviceStateResponse **ret,
              RpcError *err)
{
    VfioMigd__V1__SetDeviceStateRequest req = VFIO_MIGD__V1__SET_DEVICE_STATE_REQUEST__INIT;

    req.id = (char *) dm->id;
    req.target = (VfioMigd__V1__DeviceState) api_target;
    *ret = NULL;
    return rpc_client_call(dm->client, DEVICE_METHOD("SetDeviceState"), &req.base,
                           &vfio_migd__v1__set_device_state_response__descriptor, 20000,
                           (ProtobufCMessage **) ret, err);
}

static int
rpc_simple(Daemon *dm, const char *method, int api_target, int *ret_api_state)
{
    VfioMigd__V1__ResetDeviceRequest reset = VFIO_MIGD__V1__RESET_DEVICE_REQUEST__INIT;
    VfioMigd__V1__GetDeviceRequest get = VFIO_MIGD__V1__GET_DEVICE_REQUEST__INIT;
    VfioMigd__V1__SetDeviceStateResponse *sresp = NULL;
    ProtobufCMessage *resp = NULL;
    RpcError err;
    int r;

    if (strcmp(method, "SetDeviceState") == 0) {
        r = rpc_set_state(dm, api_target, &sresp, &err);
        resp = (ProtobufCMessage *) sresp;
    } else if (strcmp(method, "ResetDevice") == 0) {
        reset.id = (char *) dm->id;
        r = rpc_client_call(dm->client, DEVICE_METHOD("ResetDevice"), &reset.base,
                            &vfio_migd__v1__reset_device_response__descriptor, 20000, &resp, &err);
    } else {
        get.id = (char *) dm->id;
        r = rpc_client_call(dm->client, DEVICE_METHOD("GetDevice"), &get.base,
                            &vfio_migd__v1__get_device_response__descriptor, 20000, &resp, &err);
        if (r >= 0 && ret_api_state) {
            *ret_api_state = ((VfioMigd__V1__GetDeviceResponse *) resp)->device->state;
        }
    }
    if (r < 0) {
        ktest_diag("%s: %s (%s)", method, err.message, rpc_status_code_name(err.code));
    }
    if (resp) {
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    return r;
}

static int
daemon_state(Daemon *dm)
{
    int s = -1;

    (void) rpc_simple(dm, "GetDevice", 0, &s);
    return s - 1; /* the API numbers states as the kernel + 1 */
}

/* The arcs of a SetDeviceState answer, and whether the right one opens a session. */
static bool
daemon_arcs_match(const VfioMigd__V1__SetDeviceStateResponse *resp, const FsmPath *path,
                  char *got, size_t size)
{
    FsmArc arcs[KTEST_MAX_ARCS];
    unsigned n = 0;
    bool sessions_ok = true;

    for (size_t i = 0; i < resp->n_arcs && n < KTEST_MAX_ARCS; i++) {
        arcs[n++] = (FsmArc){(DeviceState) (resp->arcs[i]->from - 1),
                             (DeviceState) (resp->arcs[i]->to - 1)};
        sessions_ok &= resp->arcs[i]->opens_data_session == ((int) i == path->session_arc);
    }
    (void) ktest_arcs_string(arcs, n, got, size);
    return sessions_ok && ktest_arcs_equal(arcs, n, path->arcs, path->n_arcs);
}

static void
daemon_request(Daemon *dm, DeviceState cur, int api_target)
{
    VfioMigd__V1__SetDeviceStateResponse *resp = NULL;
    int kernel_target = api_target - 1;
    FsmPath path = {0};
    KtestArcs seen;
    RpcError err = {0};
    char what[128], want[256], got[256], answered[256] = "-";
    bool refused = api_target < 1 ||
                   fsm_compute_path(cur, (DeviceState) kernel_target, MTTY_FLAGS, &path, NULL) < 0;
    int r, final;

    (void) snprintf(what, sizeof(what), "daemon: %s -> API state %d (%s)", state_label(cur),
                    api_target, api_target < 1 ? "unset" : state_label(kernel_target));
    if (rpc_simple(dm, "ResetDevice", 0, NULL) < 0 ||
        (cur != DEVICE_STATE_RUNNING && rpc_simple(dm, "SetDeviceState", cur + 1, NULL) < 0)) {
        ktest_check(false, "%s: device driven to %s", what, state_label(cur));
        return;
    }
    ktest_kmsg_drain();
    r = rpc_set_state(dm, api_target, &resp, &err);
    ktest_kmsg_arcs(dm->uuid, &seen);
    final = daemon_state(dm);
    (void) ktest_arcs_string(seen.arcs, seen.n, got, sizeof(got));
    (void) ktest_arcs_string(path.arcs, path.n_arcs, want, sizeof(want));
    if (refused) {
        ktest_check(r < 0 && err.code == GRPC_STATUS_INVALID_ARGUMENT && seen.n == 0 &&
                        final == (int) cur,
                    "%s: INVALID_ARGUMENT (%s), nothing touched: kernel arcs %s, state %s", what,
                    rpc_status_code_name(err.code), got, state_label(final));
        ktest_diag("%s", err.message);
    } else if (cur == DEVICE_STATE_RESUMING && path.n_arcs > 0) {
        ktest_check(r < 0 && err.code == GRPC_STATUS_ABORTED && seen.n == 1 &&
                        final == DEVICE_STATE_RESUMING &&
                        strstr(err.message, "resuming->stop failed") && strstr(err.message, "EINVAL"),
                    "%s: ABORTED at resuming->stop with EINVAL (nothing was written), device left "
                    "in resuming: %s, kernel arcs %s, state %s", what,
                    rpc_status_code_name(err.code), got, state_label(final));
        ktest_diag("%s", err.message);
    } else {
        bool answer_ok = r >= 0 && daemon_arcs_match(resp, &path, answered, sizeof(answered));

        ktest_check(answer_ok && ktest_arcs_equal(seen.arcs, seen.n, path.arcs, path.n_arcs) &&
                        final == kernel_target && resp->state == (unsigned) api_target,
                    "%s: answered arcs %s, kernel ran %s, fsm says %s, state %s", what, answered,
                    got, want, state_label(final));
        if (r < 0) {
            ktest_diag("%s (%s)", err.message, rpc_status_code_name(err.code));
        }
    }
    if (resp) {
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
}

static int
run_daemon(const char *socket, const char *id, const char *uuid)
{
    static const int api_extra[] = {0, 9, 100}; /* unset, and numbers beyond the enum */
    Daemon dm = {.id = id, .uuid = uuid};
    int r;

    rpc_client_global_init();
    r = rpc_client_new(socket, &dm.client);
    if (!ktest_check(r >= 0, "client for %s", socket)) {
        return ktest_finish();
    }
    for (size_t c = 0; c < ELEMENTSOF(currents); c++) {
        for (int t = 1; t <= _DEVICE_STATE_MAX; t++) {
            daemon_request(&dm, currents[c], t);
        }
        for (size_t e = 0; e < ELEMENTSOF(api_extra); e++) {
            daemon_request(&dm, currents[c], api_extra[e]);
        }
    }
    (void) rpc_simple(&dm, "ResetDevice", 0, NULL);
    rpc_client_free(dm.client);
    rpc_client_global_shutdown();
    return ktest_finish();
}

/* attach: AttachDevice as the API answers it, for the daemon test (the CLI prints the device
 * only): "found_state=stop recovered=1 state=running". */
static int
run_attach(const char *socket, const char *id, const char *kind, const char *value)
{
    VfioMigd__V1__AttachDeviceRequest req = VFIO_MIGD__V1__ATTACH_DEVICE_REQUEST__INIT;
    VfioMigd__V1__KernelSource k = VFIO_MIGD__V1__KERNEL_SOURCE__INIT;
    VfioMigd__V1__AttachDeviceResponse *resp = NULL;
    RpcClient *client = NULL;
    RpcError err = {0};
    int r;

    req.id = (char *) id;
    req.source_case = VFIO_MIGD__V1__ATTACH_DEVICE_REQUEST__SOURCE_KERNEL;
    req.kernel = &k;
    k.address_case = strcmp(kind, "--cdev") == 0 ? VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_CDEV_PATH
                                                 : VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_MDEV_UUID;
    k.mdev_uuid = (char *) value; /* the oneof's members share storage */
    rpc_client_global_init();
    r = rpc_client_new(socket, &client);
    if (r >= 0) {
        r = rpc_client_call(client, DEVICE_METHOD("AttachDevice"), &req.base,
                            &vfio_migd__v1__attach_device_response__descriptor, 20000,
                            (ProtobufCMessage **) &resp, &err);
    }
    if (r >= 0 && resp->device) {
        printf("found_state=%s recovered=%d state=%s\n", state_label((int) resp->found_state - 1),
               resp->recovered, state_label((int) resp->device->state - 1));
    } else {
        printf("error=%s %s\n", rpc_status_code_name(err.code), err.message);
    }
    if (resp) {
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
    rpc_client_free(client);
    rpc_client_global_shutdown();
    return r < 0 ? 1 : 0;
}

int
main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 6 && strcmp(argv[1], "attach") == 0) {
        return run_attach(argv[2], argv[3], argv[4], argv[5]);
    }
    if (ktest_kmsg_open() < 0 || !ktest_dyndbg_enabled()) {
        printf("not ok 1 - mtty's arcs are visible: boot with mtty.dyndbg=+p, read /dev/kmsg\n");
        return 1;
    }
    if (argc == 4 && strcmp(argv[1], "direct") == 0 &&
        (strcmp(argv[2], "--mdev") == 0 || strcmp(argv[2], "--cdev") == 0)) {
        return run_direct(argv[2], argv[3]);
    }
    if (argc == 5 && strcmp(argv[1], "daemon") == 0) {
        return run_daemon(argv[2], argv[3], argv[4]);
    }
    fprintf(stderr, "usage: kernel-mtty-fsm direct --mdev|--cdev UUID\n"
                    "       kernel-mtty-fsm daemon SOCKET ID UUID\n"
                    "       kernel-mtty-fsm attach SOCKET ID --mdev|--cdev UUID|PATH\n");
    return 2;
}
