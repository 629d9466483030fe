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
 * The sim has no ERR or REQ interrupt (count 0) and raises no interrupt by itself: the
 * loopback is how tests (and bench-irq) make one, on sim and real devices alike.
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
} SimIrqConfig;

/* NULL on OOM. */
SimIrq *sim_irq_new(const SimIrqConfig *c);
/* Closes every eventfd it holds (the device's fd closing disables its interrupts). */
void sim_irq_free(SimIrq *si);

int sim_irq_info(SimIrq *si, uint32_t index, uint32_t *ret_flags, uint32_t *ret_count);
int sim_irq_set(SimIrq *si, uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
                const void *data);
