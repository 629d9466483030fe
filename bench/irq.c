/* SPDX-License-Identifier: MIT */
/*
 * bench-irq — an interrupt's way from a loopback trigger to the VMM's eventfd, and what the
 * daemon does on it (issue 14 item 8; DESIGN §9, docs/vmm-protocol.md).
 *
 * The plan: start the daemon (argv[1], $VFIO_MIGD or ./build/vfio-migd), attach one sim
 * device with "msix=8", and be its VMM: over the VMM socket (vmm.sock beside the API socket)
 * HELLO, TAKE, ENABLE msix 8 and VECTORS 0 8 with eight eventfds this program holds. A
 * waiter thread polls them as a VMM's irqfd would be; then
 *   1. 100 warm-up triggers, then 2000 timed ones, vector i % 8, unmasked. What is timed:
 *      from just before the TriggerIrq API call is issued (the kernel's loopback, SET_IRQS
 *      DATA_NONE|ACTION_TRIGGER, which the daemon makes on the device) to the moment the
 *      waiter thread's poll() returns with the vector's eventfd readable: the gRPC request,
 *      the daemon's handler, the SET_IRQS and the eventfd signal, and the thread's wake-up.
 *      The sim signals the eventfd inside the SET_IRQS call as the kernel does, so the
 *      interrupt arrives before the call's answer; each eventfd must read exactly 1, on the
 *      vector triggered. -> p50_us, p99_us; call_p50_us is the TriggerIrq round trip alone.
 *   2. daemon_wakeups_per_irq: GetIrqs' latch_wakeups before and after the 2000, divided by
 *      2000: how often the daemon's loop woke up for those interrupts (target 0: an unmasked
 *      vector a VMM holds is wired to the VMM's eventfd, the kernel signals it directly).
 *      The API calls that trigger wake the daemon's gRPC threads, not its latches: they
 *      stand for the device raising the interrupt, which on real hardware costs no call.
 *   3. 200 MaskIrq/UnmaskIrq pairs on vector 0 through the API -> mask_p50_us and
 *      unmask_p50_us (each call's round trip); then 200 MASK/UNMASK pairs over the VMM
 *      socket, as a VMM masks -> vmm_mask_p50_us, vmm_unmask_p50_us.
 * ONE JSON line on stdout:
 *   {"bench":"irq","p50_us":..,"p99_us":..,"daemon_wakeups_per_irq":..,"mask_p50_us":..,
 *    "unmask_p50_us":..,"irqs":2000,"call_p50_us":..,"vmm_mask_p50_us":..,
 *    "vmm_unmask_p50_us":..}
 * Targets (reported, not asserted): daemon_wakeups_per_irq 0.
 *
 * The daemon is forked before grpc_init() (grpc-core.md pitfall 13).
 */

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common.h"
#include <vfio-migd/vmm.h>
#include "util/macro.h"

#define PROG "bench-irq"
#define DEVICE "irq0"
#define VECTORS 8
#define WARMUP_IRQS 100
#define TIMED_IRQS 2000
#define MASK_PAIRS 200
/* Only a stuck daemon takes this long to deliver one interrupt: then the bench fails. */
#define DELIVERY_TIMEOUT_MS 5000
#define VMM_MESSAGE VFIO_MIGD_VMM_MAX_MESSAGE

typedef struct Results {
    double p50_us, p99_us, call_p50_us, wakeups_per_irq;
    double mask_p50_us, unmask_p50_us, vmm_mask_p50_us, vmm_unmask_p50_us;
} Results;

/* The VMM side: its socket, its eventfds, and the thread that waits on them. */
typedef struct Vmm {
    int sock;
    int efd[VECTORS];
    int stop_fd;                /* an eventfd: the waiter's end */
    pthread_t waiter;
    bool waiting;               /* the waiter thread runs */
    sem_t arrived;              /* posted once per eventfd read */
    _Atomic uint64_t at_ns;     /* when poll() returned for the last read */
    _Atomic uint64_t value;     /* what that read gave */
    _Atomic int vector;         /* on which vector */
} Vmm;

/* ---- the VMM socket (docs/vmm-protocol.md) */

/* Sends @text with @n fds; receives the one answer; 0 when it is "OK...". */
static int
vmm_command(Vmm *vmm, const char *text, const int *fds, size_t n)
{
    char answer[VMM_MESSAGE + 1];
    int r = text[0] ? vfio_migd_vmm_send(vmm->sock, text, strlen(text), fds, n, 0) : 0;
    ssize_t got;

    if (r < 0) {
        return r;
    }
    /* No control buffer: the fds TAKE sends are closed by the kernel on receipt (this VMM
     * maps no memory and drives no device). */
    got = recv(vmm->sock, answer, VMM_MESSAGE, 0);
    if (got <= 0) {
        fprintf(stderr, PROG ": the daemon closed the VMM socket after '%s'\n", text);
        return -ECONNRESET;
    }
    answer[got] = '\0';
    if (strncmp(answer, "OK", 2) != 0 && strncmp(answer, "VFIO-MIGD ", 10) != 0) {
        fprintf(stderr, PROG ": '%s' answered: %s\n", text, answer);
        return -EPROTO;
    }
    return 0;
}

/* Connects, reads the greeting, takes the device and wires every vector to an eventfd. */
static int
vmm_take(Vmm *vmm, const char *dir)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char text[64];
    int r;

    (void) snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/vmm.sock", dir);
    vmm->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (vmm->sock < 0 || connect(vmm->sock, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
        fprintf(stderr, PROG ": cannot connect to '%s': %m\n", sa.sun_path);
        return -errno;
    }
    r = vmm_command(vmm, "", NULL, 0); /* the daemon speaks first */
    if (r == 0) {
        r = vmm_command(vmm, "HELLO 1", NULL, 0);
    }
    if (r == 0) {
        r = vmm_command(vmm, "TAKE " DEVICE, NULL, 0);
    }
    if (r == 0) {
        (void) snprintf(text, sizeof(text), "ENABLE msix %d", VECTORS);
        r = vmm_command(vmm, text, NULL, 0);
    }
    if (r == 0) {
        (void) snprintf(text, sizeof(text), "VECTORS 0 %d", VECTORS);
        r = vmm_command(vmm, text, vmm->efd, VECTORS);
    }
    return r;
}

/* ---- the waiter thread: the VMM's side of the eventfds */

static void *
waiter_run(void *arg)
{
    Vmm *vmm = arg;
    struct pollfd pfd[VECTORS + 1];

    for (int v = 0; v < VECTORS; v++) {
        pfd[v] = (struct pollfd){.fd = vmm->efd[v], .events = POLLIN};
    }
    pfd[VECTORS] = (struct pollfd){.fd = vmm->stop_fd, .events = POLLIN};
    for (;;) {
        if (poll(pfd, VECTORS + 1, -1) < 0) {
            continue; /* EINTR */
        }
        uint64_t now = clock_now_ns();
        if (pfd[VECTORS].revents) {
            return NULL;
        }
        for (int v = 0; v < VECTORS; v++) {
            eventfd_t n = 0;
            if ((pfd[v].revents & POLLIN) && eventfd_read(vmm->efd[v], &n) == 0) {
                atomic_store(&vmm->at_ns, now);
                atomic_store(&vmm->value, n);
                atomic_store(&vmm->vector, v);
                (void) sem_post(&vmm->arrived);
            }
        }
    }
}

/* Waits (bounded) for the waiter's next read; -ETIMEDOUT when nothing arrived. */
static int
waiter_next(Vmm *vmm)
{
    struct timespec until;

    (void) clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += DELIVERY_TIMEOUT_MS / 1000;
    while (sem_clockwait(&vmm->arrived, CLOCK_MONOTONIC, &until) < 0) {
        if (errno != EINTR) {
            return -errno;
        }
    }
    return 0;
}

/* @vmm zeroed. Its eventfds and the waiter; vmm_close() undoes what was done. */
static int
vmm_open(Vmm *vmm)
{
    int r;

    vmm->sock = -1;
    vmm->stop_fd = eventfd(0, EFD_CLOEXEC);
    for (int v = 0; v < VECTORS; v++) {
        vmm->efd[v] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    }
    for (int v = 0; v < VECTORS; v++) {
        if (vmm->efd[v] < 0) {
            return -EMFILE;
        }
    }
    if (vmm->stop_fd < 0 || sem_init(&vmm->arrived, 0, 0) < 0) {
        return -errno;
    }
    r = -pthread_create(&vmm->waiter, NULL, waiter_run, vmm);
    vmm->waiting = r == 0;
    return r;
}

static void
vmm_close(Vmm *vmm)
{
    if (vmm->waiting) {
        (void) eventfd_write(vmm->stop_fd, 1);
        (void) pthread_join(vmm->waiter, NULL);
        (void) sem_destroy(&vmm->arrived);
    }
    for (int v = 0; v < VECTORS; v++) {
        if (vmm->efd[v] >= 0) {
            (void) close(vmm->efd[v]);
        }
    }
    if (vmm->stop_fd >= 0) {
        (void) close(vmm->stop_fd);
    }
    if (vmm->sock >= 0) {
        (void) close(vmm->sock);
    }
}

/* ---- the measurements */

static int
irq_call(RpcClient *c, const char *method, uint32_t vector)
{
    VfioMigd__V1__IrqVectorRequest req = VFIO_MIGD__V1__IRQ_VECTOR_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    int r;

    req.id = DEVICE;
    req.vector = vector;
    r = bench_call(c, PROG, method, &req.base, &vfio_migd__v1__irq_vector_response__descriptor,
                   &resp);
    if (resp) {
        protobuf_c_message_free_unpacked(resp, NULL);
    }
    return r;
}

static int
latch_wakeups(RpcClient *c, uint64_t *ret)
{
    VfioMigd__V1__GetIrqsRequest req = VFIO_MIGD__V1__GET_IRQS_REQUEST__INIT;
    VfioMigd__V1__GetIrqsResponse *resp = NULL;
    int r;

    req.id = DEVICE;
    r = BENCH_CALL(c, PROG, "DeviceService", GetIrqs, &req, get_irqs_response, &resp);
    if (r == 0) {
        *ret = resp->irqs->latch_wakeups;
        protobuf_c_message_free_unpacked(&resp->base, NULL);
    }
    return r;
}

/* One trigger of @v: its delivery latency and the call's round trip, in ns. */
static int
trigger_once(RpcClient *c, Vmm *vmm, int v, uint64_t *ret_delivery, uint64_t *ret_call)
{
    uint64_t t0 = clock_now_ns();
    int r = irq_call(c, "/vfio_migd.v1.DeviceService/TriggerIrq", (uint32_t) v);
    uint64_t t1 = clock_now_ns();

    if (r == 0) {
        r = waiter_next(vmm);
    }
    if (r < 0) {
        fprintf(stderr, PROG ": vector %d: no interrupt within %d ms: %s\n", v,
                DELIVERY_TIMEOUT_MS, strerror(-r));
        return r;
    }
    if (atomic_load(&vmm->vector) != v || atomic_load(&vmm->value) != 1) {
        fprintf(stderr, PROG ": triggered vector %d, got %llu interrupt(s) on vector %d\n", v,
                (unsigned long long) atomic_load(&vmm->value), atomic_load(&vmm->vector));
        return -EPROTO;
    }
    *ret_delivery = atomic_load(&vmm->at_ns) - t0;
    *ret_call = t1 - t0;
    return 0;
}

static int
run_unmasked(RpcClient *c, Vmm *vmm, Results *res)
{
    static uint64_t delivery[TIMED_IRQS], call[TIMED_IRQS];
    uint64_t before = 0, after = 0;
    int r = 0;

    for (int i = 0; i < WARMUP_IRQS && r == 0; i++) {
        r = trigger_once(c, vmm, i % VECTORS, &delivery[0], &call[0]);
    }
    if (r == 0) {
        r = latch_wakeups(c, &before);
    }
    for (int i = 0; i < TIMED_IRQS && r == 0; i++) {
        r = trigger_once(c, vmm, i % VECTORS, &delivery[i], &call[i]);
    }
    if (r == 0) {
        r = latch_wakeups(c, &after);
    }
    if (r < 0) {
        return r;
    }
    res->p50_us = bench_percentile_us(delivery, TIMED_IRQS, 50);
    res->p99_us = bench_percentile_us(delivery, TIMED_IRQS, 99);
    res->call_p50_us = bench_percentile_us(call, TIMED_IRQS, 50);
    res->wakeups_per_irq = (double) (after - before) / TIMED_IRQS;
    return 0;
}

/* MASK_PAIRS mask + unmask of vector 0, through the API (@c) or the VMM socket (@c NULL). */
static int
run_mask(RpcClient *c, Vmm *vmm, double *ret_mask_p50, double *ret_unmask_p50)
{
    static uint64_t mask[MASK_PAIRS], unmask[MASK_PAIRS];
    int r = 0;

    for (int i = 0; i < MASK_PAIRS && r == 0; i++) {
        uint64_t t0 = clock_now_ns();
        r = c ? irq_call(c, "/vfio_migd.v1.DeviceService/MaskIrq", 0)
              : vmm_command(vmm, "MASK 0", NULL, 0);
        uint64_t t1 = clock_now_ns();
        if (r == 0) {
            r = c ? irq_call(c, "/vfio_migd.v1.DeviceService/UnmaskIrq", 0)
                  : vmm_command(vmm, "UNMASK 0", NULL, 0);
        }
        mask[i] = t1 - t0;
        unmask[i] = clock_now_ns() - t1;
    }
    if (r < 0) {
        return r;
    }
    *ret_mask_p50 = bench_percentile_us(mask, MASK_PAIRS, 50);
    *ret_unmask_p50 = bench_percentile_us(unmask, MASK_PAIRS, 50);
    return 0;
}

static int
run(Daemon *d, Vmm *vmm, Results *res)
{
    RpcClient *c = NULL;
    int r = rpc_client_new(d->socket, &c);

    if (r < 0) {
        return r;
    }
    r = bench_daemon_wait_ready(d, c);
    if (r == 0) {
        r = bench_attach_sim(c, DEVICE, "size=4K,msix=8"); /* VECTORS */
    }
    if (r == 0) {
        r = vmm_take(vmm, d->dir);
    }
    if (r == 0) {
        r = run_unmasked(c, vmm, res);
    }
    if (r == 0) {
        r = run_mask(c, vmm, &res->mask_p50_us, &res->unmask_p50_us);
    }
    if (r == 0) {
        r = run_mask(NULL, vmm, &res->vmm_mask_p50_us, &res->vmm_unmask_p50_us);
    }
    rpc_client_free(c);
    return r;
}

int
main(int argc, char **argv)
{
    const char *binary = bench_daemon_binary(argc > 1 ? argv[1] : NULL);
    Daemon d = {};
    Vmm vmm = {};
    Results res = {};
    int r;

    if (access(binary, X_OK) < 0) {
        fprintf(stderr, PROG ": cannot run '%s': %s (give the daemon's path as the first "
                             "argument or in $VFIO_MIGD)\n", binary, strerror(errno));
        return 1;
    }
    r = bench_daemon_start(binary, &d);
    if (r < 0) {
        fprintf(stderr, PROG ": cannot start the daemon: %s\n", strerror(-r));
        return 1;
    }
    rpc_client_global_init();
    r = vmm_open(&vmm);
    if (r == 0) {
        r = run(&d, &vmm, &res);
    }
    vmm_close(&vmm);
    bench_daemon_stop(&d);
    rpc_client_global_shutdown();
    if (r < 0) {
        fprintf(stderr, PROG ": failed: %s\n", strerror(-r));
        return 1;
    }
    printf("{\"bench\":\"irq\",\"p50_us\":%.1f,\"p99_us\":%.1f,\"daemon_wakeups_per_irq\":%.3f,"
           "\"mask_p50_us\":%.1f,\"unmask_p50_us\":%.1f,\"irqs\":%d,\"call_p50_us\":%.1f,"
           "\"vmm_mask_p50_us\":%.1f,\"vmm_unmask_p50_us\":%.1f}\n",
           res.p50_us, res.p99_us, res.wakeups_per_irq, res.mask_p50_us, res.unmask_p50_us,
           TIMED_IRQS, res.call_p50_us, res.vmm_mask_p50_us, res.vmm_unmask_p50_us);
    return 0;
}
