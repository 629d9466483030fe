/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * irq — one device's interrupts, applied: core/irq.h decides, this module does it through
 * the back-end's SET_IRQS and owns the eventfds (DESIGN §9).
 *
 * Per vector it holds the VMM's eventfd (given over the VMM socket, fdpass.c) and, created
 * when first needed, a latch: an eventfd the daemon owns and watches on the loop. The kernel
 * signals whichever irq_model_trigger() names: an unmasked vector a VMM holds goes straight
 * to the VMM's eventfd (no daemon hop); a masked MSI/MSI-X vector, or one no VMM holds, goes
 * to its latch, where an interrupt becomes the pending bit; unmasking (or a VMM taking the
 * vector) signals the VMM's eventfd once if pending. INTx is masked by VFIO itself.
 *
 * Failures of the device after the model accepted a change put the model back as it was and
 * re-arm the device as the model says (best effort); refusals by the model touch nothing.
 *
 * Used by:  device.c (one Irq per device), rpc/handlers (the Irqs API), fdpass.c (VMM
 *           eventfds), migration (irq_export/irq_import).
 * Threads:  loop only. The back-end's set_irqs may run while a worker runs an arc on the
 *           same device (vfio-pci's igate is apart from its state mutex; so is the sim's).
 * Errors:   negative errno; nothing here logs above debug, callers report.
 */

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "backend/backend.h"
#include "core/irq.h"

typedef struct Irq Irq;

/* Reads GET_IRQ_INFO for INTx, MSI and MSI-X of @bd: a back-end without interrupts, or one
 * answering what no device gives, gives a model with none. @bd stays the caller's and must
 * outlive the Irq. */
int irq_new(uv_loop_t *loop, BackendDevice *bd, Irq **ret); /* @loop NULL: no latches (tests) */
/* Disables nothing (the back-end's free does), closes every eventfd, NULL-safe. */
Irq *irq_free(Irq *irq);

const IrqModel *irq_model(const Irq *irq);

/* Enables @t with @count vectors (0 disables), as irq_model_enable() allows. */
int irq_enable(Irq *irq, IrqType t, uint32_t count);
int irq_mask(Irq *irq, uint32_t v);
int irq_unmask(Irq *irq, uint32_t v);
/* The kernel's loopback on vector @v: the device's interrupt as the kernel would raise it.
 * -ENOENT: @v is not in use. */
int irq_trigger(Irq *irq, uint32_t v);

/* A VMM gives its eventfd @fd for vector @v: taken on success only (and closed with the
 * vector); the vector is re-armed to it if unmasked, and fires once if pending. -ENOENT: @v
 * not in use; -EINVAL: @fd is not an eventfd (-EBADF: not an fd). */
int irq_vmm_give(Irq *irq, uint32_t v, int fd);
/* The VMM is gone: every vector goes to its latch, so that interrupts wait as pending. */
void irq_vmm_drop_all(Irq *irq);
/* How many vectors a VMM holds. */
uint32_t irq_vmm_count(const Irq *irq);

/* What crosses a migration (never eventfds). */
void irq_export(const Irq *irq, IrqState *ret);
/* Makes the device hold @s (before the destination's group goes RUNNING): the same index
 * and count, vectors masked and pending as on the source, all on their latches until a VMM
 * takes the device. Errors as irq_model_import(); a device failure as irq_enable(). */
int irq_import(Irq *irq, const IrqState *s);

/* ---- across the daemon's own restart (restore_state.c: journal and fd store) */

/* @fn runs after every change the journal or the fd store keeps (the model's bits, which
 * eventfd a vector holds); a latch's repeated interrupts call it only when pending changes. */
void irq_set_on_change(Irq *irq, void (*fn)(void *userdata), void *userdata);

/* The eventfds of vector @v the kernel may signal, for the fd store: the VMM's and the
 * latch, each with a generation that changes whenever the slot's file does (0, and fd
 * -EBADF: none). The fds stay the Irq's. */
typedef struct IrqVectorFds {
    int vmm_fd;
    uint64_t vmm_gen;
    int latch_fd;
    uint64_t latch_gen;
} IrqVectorFds;
void irq_vector_fds(const Irq *irq, uint32_t v, IrqVectorFds *ret);
/* Bit v: a VMM's eventfd is vector v's (IRQ_BITMAP_SIZE(IRQ_MAX_VECTORS) bytes). */
void irq_export_vmm(const Irq *irq, uint8_t *ret_map);

/* A device re-adopted after the daemon's restart, whose kernel kept its interrupts armed:
 * the model becomes @s (no SET_IRQS disable, no reset), vectors the journal says a VMM held
 * (@vmm bitmap) get their VMM eventfd back from @vmm_fds, latches from @latch_fds (arrays of
 * @s->count fds, -1 where none; every fd is taken, and closed when it is not an eventfd or
 * not wanted). The back-end learns which eventfds it signals (irq_readopt); a vector whose
 * eventfd did not come back is re-armed in place. Then what waits on a latch becomes
 * pending. Errors: as irq_model_import() (-EBUSY: interrupts already enabled), or the
 * back-end's: then the index is disabled and the model has nothing enabled. */
int irq_readopt(Irq *irq, const IrqState *s, const uint8_t *vmm, int *vmm_fds, int *latch_fds);

/* Loop wake-ups caused by latches so far (bench-irq: the unmasked path must cause none). */
uint64_t irq_latch_wakeups(const Irq *irq);
