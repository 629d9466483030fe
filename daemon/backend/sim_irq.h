/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * sim_irq — a simulated device's interrupts, answering GET_IRQ_INFO and SET_IRQS exactly as
 * vfio-pci-core does (kernel-uapi.md §3; drivers/vfio/pci/vfio_pci_intrs.c):
 *   - the core validation first: unknown flag bits, not exactly one DATA type, an index
 *     beyond the five of vfio-pci, start/start+count beyond the index's count -> -EINVAL;
 *   - INTx: MASK, UNMASK and TRIGGER; MSI/MSI-X: TRIGGER only, MASK/UNMASK -> -ENOTTY (as
 *     any action combination);
 *   - INTx, MSI and MSI-X exclusive: enabling one while another is enabled -> -EINVAL;
 *   - DATA_EVENTFD enables the index with start+count vectors the first time; later calls
 *     set vectors in place, and a vector beyond those enabled is -EINVAL unless the index is
 *     dynamic MSI-X (the sim's msix_dynamic option; the kernel's has_dyn_msix); -1 clears a
 *     vector; an fd that is not an eventfd -> -EINVAL (-EBADF: not an fd), and a failed
 *     first enable leaves the index disabled;
 *   - DATA_NONE with count 0 disables the enabled index; DATA_NONE (or DATA_BOOL true) with
 *     count > 0 is the loopback: each vector's eventfd is signalled, as the kernel does.
 * The eventfds are the sim's own duplicates, as the kernel holds its own references.
 * After the daemon's restart, the set-up survives in the state memfd (SimIrqKept) and the
 * eventfds come back from the fd store, as the kernel's references outlive the process.
 *   - REQ (index 4, the sim's req option, count 1; vfio_pci_set_req_trigger): TRIGGER only
 *     (else -ENOTTY), start 0 and count <= 1 (else -EINVAL); DATA_EVENTFD sets (-1 clears)
 *     the one trigger, DATA_NONE with count 1 or DATA_BOOL true signals it (the loopback),
 *     DATA_NONE with count 0 clears it; DATA_NONE without a trigger -> -EINVAL. It is apart
 *     from INTx/MSI/MSI-X: enabling or disabling those leaves it.
 * The sim has no ERR interrupt (count 0) and raises no interrupt by itself: the loopback is
 * how tests (and bench-irq) make one, on sim and real devices alike; a REQ the "kernel" sends
 * on an unbind is, for a sim device, a write to the trigger's eventfd (the fd store's copy,
 * sdharness signal-fd req/<id>): the same file the kernel's eventfd_signal() would reach.
 *
 * Threads: any; each SimIrq has its own lock (vfio-pci's igate), apart from the device's
 * state mutex, so SET_IRQS never waits for a migration arc.
 */

#include <stdbool.h>
#include <stdint.h>

typedef struct SimIrq SimIrq;

typedef struct SimIrqConfig {
    uint32_t intx;     /* 0 or 1 */
    uint32_t msi;      /* 0..32 */
    uint32_t msix;     /* 0..2048 */
    bool msix_dynamic; /* MSI-X without NORESIZE: vectors may be added while enabled */
    uint32_t req;      /* 0 or 1: the REQ index's count (vfio-pci: 1; mtty: none) */
} SimIrqConfig;

/* What the "kernel" half of a sim device's interrupts must keep when the daemon dies (the
 * kernel keeps a device's interrupt set-up while any fd holds the device): the enabled index,
 * its vectors and which of them have a trigger. It lives in the device's state memfd
 * (sim.c), written on every change; the eventfds themselves cannot be in a memfd: they come
 * back from the fd store (sim_irq_readopt()). Native endianness, checked on adoption. */
typedef struct SimIrqKept {
    uint32_t type;                    /* the enabled index + 1; 0: none */
    uint32_t nvec;
    uint8_t intx_masked;
    /* REQ has a trigger. A byte that was reserved, and so always 0, before: a state an older
     * daemon wrote reads as "no REQ trigger", which it had none of; no version change. */
    uint8_t req_armed;
    uint8_t reserved[2];
    uint8_t armed[2048 / 8];          /* bit v: vector v has a trigger eventfd */
} SimIrqKept;

/* NULL on OOM. */
SimIrq *sim_irq_new(const SimIrqConfig *c);
/* From now on every change is also written to @kept (the state memfd; it must outlive @si),
 * which is filled with the present state. */
void sim_irq_keep(SimIrq *si, SimIrqKept *kept);
/* A device adopted from its state memfd: @kept (checked: -EINVAL when it holds what this
 * device's configuration cannot) is the set-up the kernel kept; the vectors it says were
 * armed have lost their eventfds (they died with the daemon's process) until
 * sim_irq_readopt() gives them back. Writes go on to @kept. */
int sim_irq_adopt(SimIrq *si, SimIrqKept *kept);
/* The eventfds of vectors [start, start + count) of @index that the fd store kept (@fds, -1
 * where none): each is taken (our own duplicate) for a vector adopted armed and still without
 * its eventfd; -ESTALE when @index is not the one enabled, a vector was not armed, or an fd is
 * given for a vector that has one; -EINVAL (-EBADF) for an fd that is not an eventfd. All or
 * nothing. */
int sim_irq_readopt(SimIrq *si, uint32_t index, uint32_t start, uint32_t count,
                    const int32_t *fds);
/* Closes every eventfd it holds (the device's fd closing disables its interrupts). */
void sim_irq_free(SimIrq *si);

int sim_irq_info(SimIrq *si, uint32_t index, uint32_t *ret_flags, uint32_t *ret_count);
int sim_irq_set(SimIrq *si, uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
                const void *data);
