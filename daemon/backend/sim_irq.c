/* SPDX-License-Identifier: MIT */
/*
 * sim_irq — see sim_irq.h. Each function names the vfio-pci-core function it follows.
 */
#include "sim_irq.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "../core/irq.h"
#include "../util/cleanup.h"
#include "../util/fdcheck.h"
#include "../util/macro.h"
#include "backend.h"

#define SIM_IRQ_NONE -1 /* no index enabled (vdev->irq_type == VFIO_PCI_NUM_IRQS) */
#define DATA_MASK                                                                                  \
    (BACKEND_IRQ_SET_DATA_NONE | BACKEND_IRQ_SET_DATA_BOOL | BACKEND_IRQ_SET_DATA_EVENTFD)
#define ACTION_MASK                                                                                \
    (BACKEND_IRQ_SET_ACTION_MASK | BACKEND_IRQ_SET_ACTION_UNMASK | BACKEND_IRQ_SET_ACTION_TRIGGER)

struct SimIrq {
    pthread_mutex_t lock; /* vdev->igate */
    SimIrqConfig cfg;     /* immutable */
    int type;             /* the enabled index, or SIM_IRQ_NONE */
    uint32_t nvec;        /* vectors allocated in it */
    int *trigger;         /* [max(msi, msix, intx)]: our duplicate of each eventfd, or -1 */
    uint32_t n_trigger;
    bool intx_masked;
    int intx_unmask; /* INTx's unmask eventfd (our duplicate), or -1 */
    int req;         /* REQ's trigger (our duplicate; vdev->req_trigger), or -1 */
    bool req_orphan; /* adopted with a REQ trigger whose eventfd died with the daemon */
    SimIrqKept *kept;              /* in the state memfd, or NULL */
    uint8_t orphan[2048 / 8];      /* armed when adopted, its eventfd not given back yet */
};

static_assert(IRQ_MAX_VECTORS == 2048, "SimIrqKept.armed is sized for 2048 vectors");

/* The set-up as it is now, into the state memfd. */
static void
sim_irq_sync(SimIrq *si)
{
    SimIrqKept *k = si->kept;

    if (!k) {
        return;
    }
    k->type = si->type == SIM_IRQ_NONE ? 0 : (uint32_t)si->type + 1;
    k->nvec = si->nvec;
    k->intx_masked = si->intx_masked;
    k->req_armed = si->req >= 0 || si->req_orphan;
    for (uint32_t v = 0; v < si->n_trigger; v++) {
        irq_bit_set(k->armed, v, si->trigger[v] >= 0 || irq_bit_get(si->orphan, v));
    }
}

SimIrq *
sim_irq_new(const SimIrqConfig *c)
{
    SimIrq *si = calloc(1, sizeof(*si));
    uint32_t n = MAX(c->intx, c->msi);

    n = MAX(n, c->msix);

    if (!si) {
        return NULL;
    }
    si->trigger = malloc(sizeof(int) * MAX(n, 1u));
    if (!si->trigger) {
        free(si);
        return NULL;
    }
    for (uint32_t i = 0; i < MAX(n, 1u); i++) {
        si->trigger[i] = -1;
    }
    si->n_trigger = n;
    si->lock = (pthread_mutex_t)PTHREAD_MUTEX_INITIALIZER;
    si->cfg = *c;
    si->type = SIM_IRQ_NONE;
    si->intx_unmask = -1;
    si->req = -1;
    return si;
}

static void
close_slot(int *fd)
{
    if (*fd >= 0) {
        (void)close(*fd);
    }
    *fd = -1;
}

/* vfio_msi_disable / vfio_intx_disable: every vector's eventfd released. */
static void
sim_irq_disable(SimIrq *si)
{
    for (uint32_t i = 0; i < si->n_trigger; i++) {
        close_slot(&si->trigger[i]);
    }
    memset(si->orphan, 0, sizeof(si->orphan));
    close_slot(&si->intx_unmask);
    si->type = SIM_IRQ_NONE;
    si->nvec = 0;
    si->intx_masked = false;
}

void
sim_irq_free(SimIrq *si)
{
    if (!si) {
        return;
    }
    sim_irq_disable(si);
    close_slot(&si->req); /* vfio_pci_core_close_device drops req_trigger */
    free(si->trigger);
    free(si);
}

/* vfio_pci_get_irq_count, and GET_IRQ_INFO's flags (vfio_pci_ioctl_get_irq_info). */
static uint32_t
sim_irq_count(const SimIrq *si, uint32_t index)
{
    const uint32_t counts[] = {
        [BACKEND_IRQ_INDEX_INTX] = si->cfg.intx,
        [BACKEND_IRQ_INDEX_MSI] = si->cfg.msi,
        [BACKEND_IRQ_INDEX_MSIX] = si->cfg.msix,
        [BACKEND_IRQ_INDEX_REQ] = si->cfg.req,
    };
    return index < ELEMENTSOF(counts) ? counts[index] : 0;
}

int
sim_irq_info(SimIrq *si, uint32_t index, uint32_t *ret_flags, uint32_t *ret_count)
{
    uint32_t flags = IRQ_INFO_EVENTFD;

    if (index >= BACKEND_IRQ_NUM_INDEXES) {
        return -EINVAL;
    }
    if (index == BACKEND_IRQ_INDEX_INTX) {
        flags |= IRQ_INFO_MASKABLE | IRQ_INFO_AUTOMASKED;
    }
    if (index != BACKEND_IRQ_INDEX_MSIX || !si->cfg.msix_dynamic) {
        flags |= IRQ_INFO_NORESIZE;
    }
    *ret_flags = flags;
    *ret_count = sim_irq_count(si, index);
    return 0;
}

/* Our own reference to the eventfd @fd, as eventfd_ctx_fdget() takes one. */
static int
sim_irq_ref(int fd, int *ret)
{
    int r = fdcheck_is_eventfd(fd);

    if (r < 0) {
        return r;
    }
    r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (r < 0) {
        return -errno;
    }
    *ret = r;
    return 0;
}

static void
sim_irq_signal(int fd)
{
    if (fd >= 0) {
        (void)eventfd_write(fd, 1); /* a counter at its maximum: the peer is awake anyway */
    }
}

/* vfio_msi_set_vector_signal: the old trigger goes; a new one only on an allocated vector
 * (or a dynamic MSI-X one, allocated now). */
static int
sim_msi_set_vector(SimIrq *si, uint32_t v, int fd)
{
    int ref = -1;
    int r;

    close_slot(&si->trigger[v]);
    irq_bit_set(si->orphan, v, false);
    if (fd < 0) {
        return 0;
    }
    if (v >= si->nvec && !(si->type == (int)BACKEND_IRQ_INDEX_MSIX && si->cfg.msix_dynamic)) {
        return -EINVAL;
    }
    r = sim_irq_ref(fd, &ref);
    if (r < 0) {
        return r;
    }
    si->trigger[v] = ref;
    si->nvec = MAX(si->nvec, v + 1); /* dynamic MSI-X allocates the vector now */
    return 0;
}

/* vfio_msi_set_block: all or nothing. */
static int
sim_msi_set_block(SimIrq *si, uint32_t start, uint32_t count, const int32_t *fds)
{
    for (uint32_t i = 0; i < count; i++) {
        int r = sim_msi_set_vector(si, start + i, fds[i]);
        if (r < 0) {
            for (uint32_t j = start; j < start + i; j++) {
                close_slot(&si->trigger[j]);
            }
            return r;
        }
    }
    return 0;
}

/* The loopback (DATA_NONE, or DATA_BOOL true) on [start, start + count). */
static void
sim_irq_loopback(SimIrq *si, uint32_t flags, uint32_t start, uint32_t count, const uint8_t *bools)
{
    for (uint32_t i = 0; i < count; i++) {
        if ((flags & BACKEND_IRQ_SET_DATA_NONE) || bools[i]) {
            sim_irq_signal(si->trigger[start + i]);
        }
    }
}

/* vfio_pci_set_msi_trigger. */
static int
sim_msi_trigger(SimIrq *si, uint32_t index, uint32_t start, uint32_t count, uint32_t flags,
                const void *data)
{
    int r;

    if (si->type == (int)index && count == 0 && (flags & BACKEND_IRQ_SET_DATA_NONE)) {
        sim_irq_disable(si);
        return 0;
    }
    if (si->type != (int)index && si->type != SIM_IRQ_NONE) {
        return -EINVAL;
    }
    if (flags & BACKEND_IRQ_SET_DATA_EVENTFD) {
        if (si->type == (int)index) {
            return sim_msi_set_block(si, start, count, data);
        }
        si->type = (int)index; /* vfio_msi_enable(start + count) */
        si->nvec = start + count;
        r = sim_msi_set_block(si, start, count, data);
        if (r < 0) {
            sim_irq_disable(si);
        }
        return r;
    }
    if (si->type != (int)index) {
        return -EINVAL;
    }
    sim_irq_loopback(si, flags, start, count, data);
    return 0;
}

/* vfio_pci_set_intx_trigger. */
static int
sim_intx_trigger(SimIrq *si, uint32_t index, uint32_t start, uint32_t count, uint32_t flags,
                 const void *data)
{
    bool intx = si->type == (int)BACKEND_IRQ_INDEX_INTX;
    int ref = -1;

    if (intx && count == 0 && (flags & BACKEND_IRQ_SET_DATA_NONE)) {
        sim_irq_disable(si);
        return 0;
    }
    if ((!intx && si->type != SIM_IRQ_NONE) || start != 0 || count != 1) {
        return -EINVAL;
    }
    if (flags & BACKEND_IRQ_SET_DATA_EVENTFD) {
        int32_t fd = *(const int32_t *)data;
        if (fd >= 0) {
            int r = sim_irq_ref(fd, &ref);
            if (r < 0) {
                return r;
            }
        }
        close_slot(&si->trigger[0]);
        irq_bit_set(si->orphan, 0, false);
        si->trigger[0] = ref; /* vfio_intx_set_signal, or vfio_intx_enable */
        si->type = (int)index;
        si->nvec = 1;
        return 0;
    }
    if (!intx) {
        return -EINVAL;
    }
    sim_irq_loopback(si, flags, 0, 1, data); /* vfio_send_intx_eventfd ignores the mask */
    return 0;
}

/* vfio_pci_set_intx_mask / _unmask: DATA_NONE or DATA_BOOL act; an unmask eventfd is
 * registered (-1 unregisters), a mask eventfd does not exist (-EINVAL). The sim never
 * automasks (it raises no interrupt of its own), so its unmask eventfd is only held. */
static int
sim_intx_mask(SimIrq *si, uint32_t start, uint32_t count, uint32_t flags, const void *data)
{
    bool mask = flags & BACKEND_IRQ_SET_ACTION_MASK;
    int ref = -1;

    if (si->type != (int)BACKEND_IRQ_INDEX_INTX || start != 0 || count != 1) {
        return -EINVAL;
    }
    if (flags & BACKEND_IRQ_SET_DATA_EVENTFD) {
        int32_t fd = *(const int32_t *)data;
        if (mask) {
            return -EINVAL;
        }
        if (fd >= 0) {
            int r = sim_irq_ref(fd, &ref);
            if (r < 0) {
                return r;
            }
        }
        close_slot(&si->intx_unmask);
        si->intx_unmask = ref;
        return 0;
    }
    if ((flags & BACKEND_IRQ_SET_DATA_NONE) || *(const uint8_t *)data) {
        si->intx_masked = mask;
    }
    return 0;
}

/* vfio_pci_set_req_trigger, then vfio_pci_set_ctx_trigger_single (6.12). */
static int
sim_req_trigger(SimIrq *si, uint32_t start, uint32_t count, uint32_t flags, const void *data)
{
    int ref = -1;
    int32_t fd;

    if (start != 0 || count > 1) {
        return -EINVAL;
    }
    if (flags & BACKEND_IRQ_SET_DATA_NONE) {
        if (si->req < 0) {
            return -EINVAL; /* no trigger: the kernel falls through to -EINVAL */
        }
        if (count) {
            sim_irq_signal(si->req);
        } else {
            close_slot(&si->req);
        }
        return 0;
    }
    if (count == 0) {
        return -EINVAL;
    }
    if (flags & BACKEND_IRQ_SET_DATA_BOOL) {
        if (*(const uint8_t *)data) {
            sim_irq_signal(si->req);
        }
        return 0;
    }
    fd = *(const int32_t *)data;
    if (fd >= 0) {
        int r = sim_irq_ref(fd, &ref);
        if (r < 0) {
            return r;
        }
    }
    if (fd >= -1) { /* below -1: the kernel changes nothing and answers 0 */
        close_slot(&si->req);
        si->req = ref;
        si->req_orphan = false;
    }
    return 0;
}

/* vfio_set_irqs_validate_and_prepare: the checks every call passes first. */
static int
sim_irq_validate(const SimIrq *si, uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
                 const void *data)
{
    uint32_t data_type = flags & DATA_MASK;
    uint32_t max = sim_irq_count(si, index);

    if (flags & ~(DATA_MASK | ACTION_MASK)) {
        return -EINVAL;
    }
    if (data_type != BACKEND_IRQ_SET_DATA_NONE && data_type != BACKEND_IRQ_SET_DATA_BOOL &&
        data_type != BACKEND_IRQ_SET_DATA_EVENTFD) {
        return -EINVAL;
    }
    if (index >= BACKEND_IRQ_NUM_INDEXES || start >= max || count > max - start) {
        return -EINVAL;
    }
    if (data_type != BACKEND_IRQ_SET_DATA_NONE && count > 0 && !data) {
        return -EINVAL; /* the kernel: argsz too small for the data */
    }
    return 0;
}

int
sim_irq_set(SimIrq *si, uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
            const void *data)
{
    uint32_t action = flags & ACTION_MASK;
    int r = sim_irq_validate(si, flags, index, start, count, data);

    if (r < 0) {
        return r;
    }
    (void)pthread_mutex_lock(&si->lock);
    if (index == BACKEND_IRQ_INDEX_REQ) {
        r = action == BACKEND_IRQ_SET_ACTION_TRIGGER ? sim_req_trigger(si, start, count, flags, data)
                                                     : -ENOTTY;
    } else if (action == BACKEND_IRQ_SET_ACTION_TRIGGER && index == BACKEND_IRQ_INDEX_INTX) {
        r = sim_intx_trigger(si, index, start, count, flags, data);
    } else if (action == BACKEND_IRQ_SET_ACTION_TRIGGER) {
        r = sim_msi_trigger(si, index, start, count, flags, data);
    } else if (index == BACKEND_IRQ_INDEX_INTX &&
               (action == BACKEND_IRQ_SET_ACTION_MASK || action == BACKEND_IRQ_SET_ACTION_UNMASK)) {
        r = sim_intx_mask(si, start, count, flags, data);
    } else {
        r = -ENOTTY; /* no handler: MSI/MSI-X mask, or a combination of actions */
    }
    sim_irq_sync(si);
    (void)pthread_mutex_unlock(&si->lock);
    return r;
}

void
sim_irq_keep(SimIrq *si, SimIrqKept *kept)
{
    (void)pthread_mutex_lock(&si->lock);
    si->kept = kept;
    memset(kept, 0, sizeof(*kept));
    sim_irq_sync(si);
    (void)pthread_mutex_unlock(&si->lock);
}

int
sim_irq_adopt(SimIrq *si, SimIrqKept *kept)
{
    SimIrqKept k = *kept; /* read once: the memfd is input */
    uint32_t index = k.type - 1, max = k.type ? sim_irq_count(si, index) : 0;

    if (k.type > BACKEND_IRQ_INDEX_MSIX + 1 || (k.type == 0) != (k.nvec == 0) || k.nvec > max ||
        (k.intx_masked && index != BACKEND_IRQ_INDEX_INTX) || k.req_armed > 1 ||
        (k.req_armed && si->cfg.req == 0)) {
        return -EINVAL;
    }
    for (uint32_t v = k.nvec; v < IRQ_MAX_VECTORS; v++) {
        if (irq_bit_get(k.armed, v)) {
            return -EINVAL;
        }
    }
    (void)pthread_mutex_lock(&si->lock);
    sim_irq_disable(si);
    si->type = k.type ? (int)index : SIM_IRQ_NONE;
    si->nvec = k.nvec;
    si->intx_masked = k.intx_masked;
    memcpy(si->orphan, k.armed, sizeof(si->orphan));
    close_slot(&si->req);
    si->req_orphan = k.req_armed; /* the daemon registers its eventfd again (req_arm) */
    si->kept = kept;
    sim_irq_sync(si);
    (void)pthread_mutex_unlock(&si->lock);
    return 0;
}

static int
sim_irq_readopt_locked(SimIrq *si, uint32_t index, uint32_t start, uint32_t count,
                       const int32_t *fds)
{
    _cleanup_free_ int *refs = malloc(sizeof(int) * (count ? count : 1));
    int r = 0;

    if (!refs) {
        return -ENOMEM;
    }
    if (si->type != (int)index || start > si->nvec || count > si->nvec - start) {
        return -ESTALE;
    }
    for (uint32_t i = 0; i < count; i++) {
        refs[i] = -1;
        if (fds[i] >= 0 && !irq_bit_get(si->orphan, start + i)) {
            r = -ESTALE;
        } else if (fds[i] >= 0) {
            r = sim_irq_ref(fds[i], &refs[i]);
        }
        if (r < 0) {
            for (uint32_t j = 0; j <= i; j++) {
                close_slot(&refs[j]);
            }
            return r;
        }
    }
    for (uint32_t i = 0; i < count; i++) {
        if (refs[i] >= 0) {
            si->trigger[start + i] = refs[i];
            irq_bit_set(si->orphan, start + i, false);
        }
    }
    return 0;
}

int
sim_irq_readopt(SimIrq *si, uint32_t index, uint32_t start, uint32_t count, const int32_t *fds)
{
    int r;

    if (count > IRQ_MAX_VECTORS) {
        return -EINVAL;
    }
    (void)pthread_mutex_lock(&si->lock);
    r = sim_irq_readopt_locked(si, index, start, count, fds);
    sim_irq_sync(si);
    (void)pthread_mutex_unlock(&si->lock);
    return r;
}
