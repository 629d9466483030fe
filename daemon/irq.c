/* SPDX-License-Identifier: MIT */
/*
 * irq — see irq.h.
 */
#include "irq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fdcheck.h"
#include "util/log.h"
#include "util/macro.h"

/* One vector's latch: an eventfd the daemon owns, watched on the loop. Freed in its close
 * callback (libuv's rule), possibly after the Irq: then @irq is NULL. */
typedef struct IrqLatch {
    uv_poll_t poll;
    int fd;
    Irq *irq;
    uint32_t v;
} IrqLatch;

struct Irq {
    uv_loop_t *loop;
    BackendDevice *bd; /* not owned */
    IrqModel model;
    uint32_t armed;                   /* vectors [0, armed) have been set in the kernel */
    int vmm_fd[IRQ_MAX_VECTORS];      /* the VMM's eventfd per vector, owned, or -EBADF */
    IrqLatch *latch[IRQ_MAX_VECTORS]; /* owned until closed, or NULL */
    uint64_t latch_wakeups;
    /* Which file each eventfd slot holds, for the fd store (irq_vector_fds): a slot's
     * generation changes whenever its fd does; 0 when empty. */
    uint64_t gen;
    uint64_t vmm_gen[IRQ_MAX_VECTORS];
    uint64_t latch_gen[IRQ_MAX_VECTORS];
    void (*on_change)(void *userdata);
    void *userdata;
    unsigned quiet; /* inside a batch (irq_vmm_drop_all): one call at its end */
};

/* Something the journal or the fd store keeps changed. */
static void
irq_changed(Irq *irq)
{
    if (irq->on_change && irq->quiet == 0) {
        irq->on_change(irq->userdata);
    }
}

/* @fd (owned, or -EBADF) becomes @v's VMM eventfd. */
static void
vmm_fd_set(Irq *irq, uint32_t v, int fd)
{
    irq->vmm_fd[v] = fd;
    irq->vmm_gen[v] = fd >= 0 ? ++irq->gen : 0;
}

static void irq_latch_on_ready(uv_poll_t *h, int status, int events);

static void
latch_on_closed(uv_handle_t *h)
{
    IrqLatch *l = h->data;

    if (l->fd >= 0) {
        (void)close(l->fd);
    }
    free(l);
}

static void
latch_close(IrqLatch *l)
{
    if (l) {
        l->irq = NULL;
        uv_close((uv_handle_t *)&l->poll, latch_on_closed);
    }
}

/* Watches @fd (taken on success only) as @v's latch. */
static int
latch_watch(Irq *irq, uint32_t v, int fd)
{
    _cleanup_free_ IrqLatch *l = calloc(1, sizeof(*l));
    int r;

    if (!l) {
        return -ENOMEM;
    }
    r = uv_poll_init(irq->loop, &l->poll, fd);
    if (r < 0) {
        return r;
    }
    l->fd = fd;
    l->poll.data = l;
    l->irq = irq;
    l->v = v;
    /* Watching never keeps the daemon alive: at shutdown the loop ends with the last
     * operation, and the device's free closes its latches. */
    uv_unref((uv_handle_t *) &l->poll);
    r = uv_poll_start(&l->poll, UV_READABLE, irq_latch_on_ready);
    irq->latch[v] = TAKE_PTR(l);
    irq->latch_gen[v] = ++irq->gen;
    if (r < 0) {
        irq->latch[v]->fd = -EBADF; /* stays the caller's */
        latch_close(TAKE_PTR(irq->latch[v]));
        irq->latch_gen[v] = 0;
        return r;
    }
    return 0;
}

/* The latch of @v, created and watched on first use. */
static int
latch_get(Irq *irq, uint32_t v, int *ret_fd)
{
    if (!irq->latch[v] && !irq->loop) {
        return -EOPNOTSUPP; /* unit tests without a loop */
    }
    if (!irq->latch[v]) {
        int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        int r;

        if (fd < 0) {
            return -errno;
        }
        r = latch_watch(irq, v, fd);
        if (r < 0) {
            (void)close(fd);
            return r;
        }
    }
    *ret_fd = irq->latch[v]->fd;
    return 0;
}

/* Reads (and so resets) @v's latch: whether an interrupt arrived on it. */
static bool
latch_drain(Irq *irq, uint32_t v)
{
    eventfd_t n = 0;

    return irq->latch[v] && eventfd_read(irq->latch[v]->fd, &n) == 0 && n > 0;
}

/* The fd the kernel must signal for @v now, -1 for none. */
static int
trigger_fd(Irq *irq, uint32_t v, int *ret_fd)
{
    switch (irq_model_trigger(&irq->model, v)) {
    case IRQ_TRIGGER_VMM:
        *ret_fd = irq->vmm_fd[v];
        return 0;
    case IRQ_TRIGGER_LATCH:
        return latch_get(irq, v, ret_fd);
    default:
        *ret_fd = -1;
        return 0;
    }
}

/* SET_IRQS on @t's index. */
static int
set_irqs(Irq *irq, IrqType t, uint32_t flags, uint32_t start, uint32_t count, const void *data)
{
    int index = irq_type_vfio_index(t);

    if (!irq->bd->ops->set_irqs) {
        return -ENOTTY;
    }
    return index < 0 ? -EINVAL
                     : irq->bd->ops->set_irqs(irq->bd, flags, (uint32_t)index, start, count, data);
}

/* Sets vectors [start, start + count) to @all_latch ? their latches : their triggers. */
static int
arm(Irq *irq, uint32_t start, uint32_t count, bool all_latch)
{
    _cleanup_free_ int32_t *fds = NULL;
    int r;

    if (count == 0) {
        return 0;
    }
    fds = calloc(count, sizeof(*fds));
    if (!fds) {
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < count; i++) {
        int fd = -1;
        bool used = irq_model_trigger(&irq->model, start + i) != IRQ_TRIGGER_NONE;
        r = all_latch && used ? latch_get(irq, start + i, &fd) : trigger_fd(irq, start + i, &fd);
        if (r < 0) {
            return r;
        }
        fds[i] = fd;
    }
    r = set_irqs(irq, irq->model.type,
                 BACKEND_IRQ_SET_DATA_EVENTFD | BACKEND_IRQ_SET_ACTION_TRIGGER, start, count, fds);
    if (r >= 0) {
        irq->armed = MAX(irq->armed, start + count);
    }
    return r;
}

static int
disable(Irq *irq, IrqType t)
{
    int r =
        set_irqs(irq, t, BACKEND_IRQ_SET_DATA_NONE | BACKEND_IRQ_SET_ACTION_TRIGGER, 0, 0, NULL);

    if (r >= 0) {
        irq->armed = 0;
    }
    return r;
}

static void
vector_forget(Irq *irq, uint32_t v)
{
    latch_close(TAKE_PTR(irq->latch[v]));
    irq->latch_gen[v] = 0;
    if (irq->vmm_fd[v] >= 0) {
        (void)close(irq->vmm_fd[v]);
    }
    vmm_fd_set(irq, v, -EBADF);
}

/* Carries out @plan, the model already changed from @old. */
static int
plan_apply(Irq *irq, const IrqModel *old, const IrqPlan *p)
{
    int r = 0;

    if (p->latch_all) {
        /* The old vectors, on the old index, move to their latches through the gap. */
        r = arm(irq, 0, irq->armed, /* all_latch= */ true);
    }
    if (r >= 0 && p->disable) {
        r = disable(irq, old->type);
    }
    if (r >= 0) {
        r = arm(irq, p->arm_start, p->arm_count, /* all_latch= */ false);
    }
    return r;
}

/* After a failed plan: the model as it was, and the device as close to it as it will go. */
static void
plan_undo(Irq *irq, const IrqModel *old, IrqType tried)
{
    irq->model = *old;
    if (tried != IRQ_TYPE_NONE) {
        (void)disable(irq, tried);
    }
    if (old->type != IRQ_TYPE_NONE) {
        (void)arm(irq, 0, old->count, /* all_latch= */ false);
    }
}

static int
apply_change(Irq *irq, IrqModel *old, IrqType t, const IrqPlan *p)
{
    int r = plan_apply(irq, old, p);

    if (r < 0) {
        log_debug_errno(r, "irq: applying %s failed, restoring %s: %m", irq_type_name(t),
                        irq_type_name(old->type));
        plan_undo(irq, old, t);
        return r;
    }
    /* Vectors the model no longer has lose their eventfds (a disable). */
    for (uint32_t v = irq->model.count; v < old->count; v++) {
        vector_forget(irq, v);
    }
    return 0;
}

int
irq_enable(Irq *irq, IrqType t, uint32_t count)
{
    _cleanup_free_ IrqModel *old = malloc(sizeof(*old));
    IrqPlan p;
    int r;

    if (!old) {
        return -ENOMEM;
    }
    *old = irq->model;
    r = irq_model_enable(&irq->model, t, count, &p);
    if (r < 0) {
        return r;
    }
    TRACE(irq_enable, "%s %u -> %s %u", irq_type_name(old->type), old->count, irq_type_name(t),
          count);
    r = apply_change(irq, old, count > 0 ? t : IRQ_TYPE_NONE, &p);
    irq_changed(irq); /* also after a failure: latches may have come */
    return r;
}

/* Does what the model asked for vector @v. */
static int
action_apply(Irq *irq, uint32_t v, const IrqAction *a)
{
    const uint32_t none = BACKEND_IRQ_SET_DATA_NONE;
    int r = 0;

    if (a->rearm) {
        r = arm(irq, v, 1, /* all_latch= */ false);
    }
    if (r >= 0 && (a->vfio_mask || a->vfio_unmask)) {
        r = set_irqs(
            irq, irq->model.type,
            none | (a->vfio_mask ? BACKEND_IRQ_SET_ACTION_MASK : BACKEND_IRQ_SET_ACTION_UNMASK), 0,
            1, NULL);
    }
    if (a->fire) {
        (void)eventfd_write(irq->vmm_fd[v], 1); /* a full counter: the VMM is awake anyway */
    }
    return r;
}

/* Runs @change on @v's model and applies it; on a device failure the model goes back. */
static int
vector_op(Irq *irq, uint32_t v, int (*change)(IrqModel *m, uint32_t v, IrqAction *ret))
{
    IrqVector before;
    IrqAction a;
    int r;

    if (v >= irq->model.count) {
        return -ENOENT;
    }
    before = irq->model.vec[v];
    r = change(&irq->model, v, &a);
    if (r < 0) {
        return r;
    }
    r = action_apply(irq, v, &a);
    if (r < 0) {
        irq->model.vec[v] = before;
        (void)arm(irq, v, 1, /* all_latch= */ false);
    }
    irq_changed(irq);
    return r;
}

int
irq_mask(Irq *irq, uint32_t v)
{
    TRACE(irq_mask, "vector %u", v);
    return vector_op(irq, v, irq_model_mask);
}

/* Whatever waits on @v's latch, into the model now: pending, or delivered. */
static void
latch_collect(Irq *irq, uint32_t v)
{
    IrqAction a;

    bool was_pending = v < irq->model.count && irq->model.vec[v].pending;

    if (latch_drain(irq, v) && irq_model_latched(&irq->model, v, &a) == 0) {
        TRACE(irq_latched, "vector %u%s", v, a.fire ? " delivered" : " pending");
        (void)action_apply(irq, v, &a);
        if (irq->model.vec[v].pending != was_pending) {
            irq_changed(irq); /* the journal keeps pending bits; repeats change nothing */
        }
    }
}

int
irq_unmask(Irq *irq, uint32_t v)
{
    TRACE(irq_unmask, "vector %u", v);
    /* What the loop has not read from the latch yet arrived while masked: pending, so that
     * the unmask fires it once, not the unmask and then the late read. */
    if (v < irq->model.count) {
        latch_collect(irq, v);
    }
    return vector_op(irq, v, irq_model_unmask);
}

int
irq_trigger(Irq *irq, uint32_t v)
{
    if (irq_model_trigger(&irq->model, v) == IRQ_TRIGGER_NONE) {
        return -ENOENT;
    }
    return set_irqs(irq, irq->model.type,
                    BACKEND_IRQ_SET_DATA_NONE | BACKEND_IRQ_SET_ACTION_TRIGGER, v, 1, NULL);
}

static int
vmm_take(IrqModel *m, uint32_t v, IrqAction *ret)
{
    return irq_model_set_vmm(m, v, true, ret);
}

int
irq_vmm_give(Irq *irq, uint32_t v, int fd)
{
    int old, r = fdcheck_is_eventfd(fd);

    if (r < 0) {
        return r;
    }
    if (v >= irq->model.count || !irq->model.vec[v].in_use) {
        return -ENOENT;
    }
    old = irq->vmm_fd[v];
    uint64_t old_gen = irq->vmm_gen[v];
    vmm_fd_set(irq, v, fd);
    r = vector_op(irq, v, vmm_take);
    if (r < 0) {
        irq->vmm_fd[v] = old;
        irq->vmm_gen[v] = old_gen;
        return r;
    }
    if (old >= 0 && old != fd) {
        (void)close(old);
    }
    return 0;
}

static int
vmm_leave(IrqModel *m, uint32_t v, IrqAction *ret)
{
    return irq_model_set_vmm(m, v, false, ret);
}

void
irq_vmm_drop_all(Irq *irq)
{
    irq->quiet++;
    for (uint32_t v = 0; v < irq->model.count; v++) {
        if (irq->model.vec[v].vmm) {
            int r = vector_op(irq, v, vmm_leave);
            if (r < 0) {
                log_debug_errno(r, "irq: vector %u to its latch: %m", v);
            }
        }
        if (irq->vmm_fd[v] >= 0) {
            (void)close(irq->vmm_fd[v]);
        }
        vmm_fd_set(irq, v, -EBADF);
    }
    irq->quiet--;
    irq_changed(irq);
}

uint32_t
irq_vmm_count(const Irq *irq)
{
    uint32_t n = 0;

    for (uint32_t v = 0; v < irq->model.count; v++) {
        n += irq->model.vec[v].vmm;
    }
    return n;
}

/* An interrupt on a latch: pending, or (late, after an unmask) straight to the VMM. */
static void
irq_latch_on_ready(uv_poll_t *h, int status, int events)
{
    IrqLatch *l = h->data;

    (void)events;
    if (!l->irq) {
        return;
    }
    l->irq->latch_wakeups++;
    if (status >= 0) {
        latch_collect(l->irq, l->v);
    }
}

void
irq_export(const Irq *irq, IrqState *ret)
{
    irq_model_export(&irq->model, ret);
}

int
irq_import(Irq *irq, const IrqState *s)
{
    _cleanup_free_ IrqModel *old = malloc(sizeof(*old));
    IrqPlan p;
    int r;

    if (!old) {
        return -ENOMEM;
    }
    *old = irq->model;
    r = irq_model_import(&irq->model, s, &p);
    if (r < 0) {
        return r;
    }
    irq_vmm_drop_all(irq); /* no VMM holds a restored vector yet */
    r = apply_change(irq, old, s->type, &p);
    irq_changed(irq);
    return r;
}

void
irq_set_on_change(Irq *irq, void (*fn)(void *userdata), void *userdata)
{
    irq->on_change = fn;
    irq->userdata = userdata;
}

void
irq_vector_fds(const Irq *irq, uint32_t v, IrqVectorFds *ret)
{
    *ret = (IrqVectorFds){.vmm_fd = -EBADF, .latch_fd = -EBADF};
    if (v < IRQ_MAX_VECTORS && irq->vmm_fd[v] >= 0) {
        ret->vmm_fd = irq->vmm_fd[v];
        ret->vmm_gen = irq->vmm_gen[v];
    }
    if (v < IRQ_MAX_VECTORS && irq->latch[v]) {
        ret->latch_fd = irq->latch[v]->fd;
        ret->latch_gen = irq->latch_gen[v];
    }
}

void
irq_export_vmm(const Irq *irq, uint8_t *ret_map)
{
    memset(ret_map, 0, IRQ_BITMAP_SIZE(IRQ_MAX_VECTORS));
    for (uint32_t v = 0; v < irq->model.count; v++) {
        irq_bit_set(ret_map, v, irq->model.vec[v].vmm);
    }
}

/* Takes @fd into @v's slot of the re-adopted model when it is @wanted, an eventfd, and the
 * vector is in use; else closes it. */
static void
readopt_take(Irq *irq, uint32_t v, bool latch, int fd, bool wanted)
{
    if (fd < 0) {
        return;
    }
    if (!wanted || !irq->model.vec[v].in_use || fdcheck_is_eventfd(fd) < 0 ||
        (latch && (!irq->loop || latch_watch(irq, v, fd) < 0))) {
        (void)close(fd);
        return;
    }
    if (!latch) {
        vmm_fd_set(irq, v, fd);
        irq->model.vec[v].vmm = true;
    }
}

/* The fds of vectors [0, count) the device signals now, -1 where the previous daemon's
 * trigger did not come back (those go in @rearm: the kernel still signals a file we lost). */
static int
readopt_triggers(Irq *irq, const uint8_t *vmm, int32_t *fds, bool *rearm)
{
    for (uint32_t v = 0; v < irq->model.count; v++) {
        bool was_vmm = irq_bit_get(vmm, v) && irq->model.vec[v].in_use;
        IrqTrigger t = irq_model_trigger(&irq->model, v);

        fds[v] = -1;
        rearm[v] = (was_vmm && !irq->model.vec[v].vmm) ||
                   (t == IRQ_TRIGGER_LATCH && !irq->latch[v]);
        if (!rearm[v] && t != IRQ_TRIGGER_NONE) {
            int r = trigger_fd(irq, v, &fds[v]);
            if (r < 0) {
                return r;
            }
        }
    }
    return 0;
}

/* Tells the back-end which eventfds it signals (the sim needs them back), then re-arms in
 * place the vectors whose eventfd was lost: the index stays enabled. */
static int
readopt_apply(Irq *irq, const uint8_t *vmm)
{
    _cleanup_free_ int32_t *fds = calloc(irq->model.count, sizeof(*fds));
    _cleanup_free_ bool *rearm = calloc(irq->model.count, sizeof(*rearm));
    int index = irq_type_vfio_index(irq->model.type);
    int r;

    if (!fds || !rearm) {
        return -ENOMEM;
    }
    r = readopt_triggers(irq, vmm, fds, rearm);
    if (r >= 0 && irq->bd->ops->irq_readopt) {
        r = irq->bd->ops->irq_readopt(irq->bd, (uint32_t)index, 0, irq->model.count, fds);
    }
    if (r < 0) {
        return r;
    }
    irq->armed = irq->model.count;
    for (uint32_t v = 0; v < irq->model.count && r >= 0; v++) {
        r = rearm[v] ? arm(irq, v, 1, /* all_latch= */ false) : 0;
    }
    return r;
}

int
irq_readopt(Irq *irq, const IrqState *s, const uint8_t *vmm, int *vmm_fds, int *latch_fds)
{
    IrqPlan unused;
    int r = irq->model.type == IRQ_TYPE_NONE ? irq_model_import(&irq->model, s, &unused)
                                             : -EBUSY;

    for (uint32_t v = 0; v < s->count && v < IRQ_MAX_VECTORS; v++) {
        bool held = r >= 0 && irq_bit_get(vmm, v);

        /* Every fd is taken: what the model does not want is closed. */
        readopt_take(irq, v, /* latch= */ false, vmm_fds[v], held);
        readopt_take(irq, v, /* latch= */ true, latch_fds[v], r >= 0);
    }
    if (r < 0 || s->type == IRQ_TYPE_NONE) {
        return r;
    }
    r = readopt_apply(irq, vmm);
    if (r < 0) {
        /* The device does not hold what the journal says: start it again from nothing. */
        IrqIndexInfo info[_IRQ_TYPE_MAX];
        memcpy(info, irq->model.info, sizeof(info));
        (void)disable(irq, s->type);
        for (uint32_t v = 0; v < IRQ_MAX_VECTORS; v++) {
            vector_forget(irq, v);
        }
        (void)irq_model_init(&irq->model, info);
    } else {
        /* What arrived on a latch while no daemon watched it: pending now. */
        for (uint32_t v = 0; v < irq->model.count; v++) {
            latch_collect(irq, v);
        }
    }
    irq_changed(irq);
    return r;
}

uint64_t
irq_latch_wakeups(const Irq *irq)
{
    return irq->latch_wakeups;
}

const IrqModel *
irq_model(const Irq *irq)
{
    return &irq->model;
}

int
irq_new(uv_loop_t *loop, BackendDevice *bd, Irq **ret)
{
    static const uint32_t index[_IRQ_TYPE_MAX] = {
        [IRQ_TYPE_INTX] = BACKEND_IRQ_INDEX_INTX,
        [IRQ_TYPE_MSI] = BACKEND_IRQ_INDEX_MSI,
        [IRQ_TYPE_MSIX] = BACKEND_IRQ_INDEX_MSIX,
    };
    IrqIndexInfo info[_IRQ_TYPE_MAX] = {0};
    _cleanup_free_ Irq *irq = calloc(1, sizeof(*irq));

    if (!irq) {
        return -ENOMEM;
    }
    for (IrqType t = IRQ_TYPE_INTX; t < _IRQ_TYPE_MAX && bd->ops->irq_info; t++) {
        /* An index beyond the device's num_irqs is an interrupt it does not have. */
        if (bd->ops->irq_info(bd, index[t], &info[t].flags, &info[t].count) < 0) {
            info[t] = (IrqIndexInfo){0, 0};
        }
    }
    if (irq_model_init(&irq->model, info) < 0) {
        /* Answers no vfio-pci device gives: the daemon will not drive its interrupts. */
        log_debug("irq: GET_IRQ_INFO answers no device gives; no interrupts used");
        IrqIndexInfo none[_IRQ_TYPE_MAX] = {0};
        (void)irq_model_init(&irq->model, none);
    }
    irq->loop = loop;
    irq->bd = bd;
    for (uint32_t v = 0; v < IRQ_MAX_VECTORS; v++) {
        irq->vmm_fd[v] = -EBADF;
    }
    irq->gen = 0;
    *ret = TAKE_PTR(irq);
    return 0;
}

Irq *
irq_free(Irq *irq)
{
    if (!irq) {
        return NULL;
    }
    for (uint32_t v = 0; v < IRQ_MAX_VECTORS; v++) {
        vector_forget(irq, v);
    }
    free(irq);
    return NULL;
}
