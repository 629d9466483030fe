/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * irq — the interrupt model of one device, as pure rules (DESIGN §9): which index is enabled
 * (none, INTx, MSI, MSI-X) with how many vectors, and per vector whether it is in use,
 * masked, pending, and whether a VMM has given an eventfd for it. No I/O: daemon/irq.c turns
 * the answers into VFIO_DEVICE_SET_IRQS calls through the back-end.
 *
 * Which eventfd the kernel signals for a vector (irq_model_trigger()):
 *   VMM    the VMM's eventfd (its KVM irqfd): the kernel signals it directly, no daemon hop;
 *   LATCH  an eventfd the daemon owns and watches: an interrupt there becomes the vector's
 *          pending bit (irq_model_latched());
 *   NONE   the vector is not in use: nothing is wired.
 * An in-use MSI/MSI-X vector is on LATCH when it is masked (vfio-pci cannot mask MSI/MSI-X:
 * SET_IRQS MASK answers -ENOTTY, so masking is emulated by swapping the trigger) or when no
 * VMM holds an eventfd for it (nobody to deliver to: the interrupt waits as pending). INTx
 * is masked by VFIO itself (ACTION_MASK/UNMASK): its trigger is never swapped for a mask,
 * and the device itself holds a masked INTx until the unmask.
 *
 * The rules, each one unit-tested (tests/unit/test_irq.c):
 *   - INTx, MSI and MSI-X are exclusive, as the kernel enforces: enabling one while another
 *     is enabled is refused (-EBUSY) until the other is disabled (count 0).
 *   - An index cannot grow past the count GET_IRQ_INFO gave (-ERANGE), nor shrink except to
 *     0 (-EINVAL): QEMU releases single vectors, it never shrinks an index.
 *   - Growing an enabled index whose info says NORESIZE is disable + re-enable with more
 *     vectors (as QEMU does); every in-use vector is first moved to its latch so that what
 *     fires until the new triggers are armed becomes pending instead of lost. Without
 *     NORESIZE (dynamic MSI-X) the new vectors are simply armed.
 *   - An interrupt on the latch of a masked vector, or of one no VMM holds, sets pending;
 *     unmasking (or a VMM arriving for an unmasked vector) with pending set fires the VMM's
 *     eventfd exactly once and clears the bit; an unmasked vector with a VMM never touches
 *     pending (the kernel delivers directly).
 *   - An AUTOMASKED INTx (vfio-pci's, mtty's) is masked by the kernel when it signals it: its
 *     unmask always reaches VFIO (ACTION_UNMASK), as a VMM's EOI does, whatever the model's bit.
 *   - Disabling an index forgets its vectors, their mask and pending bits, as the kernel does.
 *
 * Used by:  daemon/irq.c (applies it), the stream record (irq_model_export/import), tests.
 * Threads:  any; no globals.
 * Errors:   negative errno, as listed on each function; a refusal changes nothing.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compat.h"

/* VFIO_IRQ_INFO_* flags (kernel-uapi.md §3). */
#define IRQ_INFO_EVENTFD (1u << 0)
#define IRQ_INFO_MASKABLE (1u << 1)
#define IRQ_INFO_AUTOMASKED (1u << 2)
#define IRQ_INFO_NORESIZE (1u << 3)
#define IRQ_INFO_KNOWN_FLAGS 0xfu

/* PCI's own limits: MSI 32 vectors, MSI-X 2048 table entries, INTx one line. */
#define IRQ_MAX_VECTORS 2048

typedef enum IrqType {
    IRQ_TYPE_NONE,
    IRQ_TYPE_INTX,
    IRQ_TYPE_MSI,
    IRQ_TYPE_MSIX,
    _IRQ_TYPE_MAX,
    _IRQ_TYPE_INVALID = -EINVAL,
} IrqType;

typedef enum IrqTrigger {
    IRQ_TRIGGER_NONE,
    IRQ_TRIGGER_VMM,
    IRQ_TRIGGER_LATCH,
    _IRQ_TRIGGER_MAX,
} IrqTrigger;

/* One index's GET_IRQ_INFO answer; count 0 = the device has no such interrupt. */
typedef struct IrqIndexInfo {
    uint32_t flags;
    uint32_t count;
} IrqIndexInfo;

typedef struct IrqVector {
    bool in_use; /* enabled and wired (to the VMM's eventfd or the latch) */
    bool masked;
    bool pending; /* an interrupt arrived that the VMM has not been given yet */
    bool vmm;     /* a VMM holds an eventfd for this vector */
} IrqVector;

typedef struct IrqModel {
    IrqIndexInfo info[_IRQ_TYPE_MAX]; /* info[IRQ_TYPE_NONE] unused */
    IrqType type;                     /* the enabled index, IRQ_TYPE_NONE when none */
    uint32_t count;                   /* vectors enabled in it */
    IrqVector vec[IRQ_MAX_VECTORS];
} IrqModel;

/* What the caller must do to the device after a change, in this order. */
typedef struct IrqPlan {
    bool latch_all;     /* first move every vector in use before the change to its latch */
    bool disable;       /* then disable the index (DATA_NONE|ACTION_TRIGGER, count 0) */
    uint32_t arm_start; /* then arm [arm_start, arm_start + arm_count) with each vector's */
    uint32_t arm_count; /*   irq_model_trigger() (DATA_EVENTFD|ACTION_TRIGGER) */
} IrqPlan;

/* What to do for one vector after a mask/unmask/latch/VMM change. */
typedef struct IrqAction {
    bool rearm;       /* set the vector's trigger again: irq_model_trigger() changed */
    bool vfio_mask;   /* INTx: SET_IRQS ACTION_MASK */
    bool vfio_unmask; /* INTx: SET_IRQS ACTION_UNMASK */
    bool fire;        /* signal the VMM's eventfd once (after the rearm) */
} IrqAction;

/* "none", "intx", "msi", "msix": stable, used by the API, the CLI and the stream. */
const char *irq_type_name(IrqType t);
IrqType irq_type_from_name(const char *name);
/* The VFIO index (VFIO_PCI_INTX_IRQ_INDEX...) of @t, or -EINVAL for IRQ_TYPE_NONE. */
int irq_type_vfio_index(IrqType t);
/* Whether @t's mask is VFIO's own (INTx) rather than emulated by swapping the trigger. */
bool irq_type_vfio_masks(IrqType t);
/* PCI's limit for @t: INTx 1, MSI 32, MSI-X 2048 (0 for NONE or out of range). */
uint32_t irq_type_max_count(IrqType t);

/* Starts @m with nothing enabled and @info[t] for each type (info[IRQ_TYPE_NONE] ignored).
 * -EPROTO: an answer no vfio-pci device gives (count above PCI's limit for the type, INTx
 * with more than one line, unknown flags, a non-zero count without EVENTFD). */
int irq_model_init(IrqModel *m, const IrqIndexInfo info[_IRQ_TYPE_MAX]);

/* Enables @t with @count vectors, all in use and unmasked; count 0 disables the enabled
 * index (t must name it). Fills @ret_plan (on success only).
 *   -EBUSY    another index is enabled (exclusive)
 *   -ENODEV   the device has no interrupt of type @t (info count 0), or t is NONE with count > 0
 *   -ERANGE   @count is above the device's count for @t
 *   -EINVAL   shrinking an enabled index to a non-zero count, or disabling an index not enabled */
int irq_model_enable(IrqModel *m, IrqType t, uint32_t count, IrqPlan *ret_plan);

/* Mask/unmask vector @v. -ENOENT: @v is not in use. Masking a masked vector (or unmasking
 * an unmasked one) is a no-op with an empty action, but for an AUTOMASKED INTx: its unmask
 * always asks for VFIO's unmask, since the kernel masks the line at every interrupt. */
int irq_model_mask(IrqModel *m, uint32_t v, IrqAction *ret);
int irq_model_unmask(IrqModel *m, uint32_t v, IrqAction *ret);

/* An interrupt arrived on the daemon's latch for @v (one or more: an eventfd counts). Sets
 * pending when masked or no VMM holds the vector; fires when neither (a late read racing an
 * unmask: the VMM gets it now). -ENOENT: @v is not in use (a stale read; ignore it). */
int irq_model_latched(IrqModel *m, uint32_t v, IrqAction *ret);

/* A VMM gives (@held true) or drops (false) its eventfd for @v. Giving it to an unmasked
 * pending vector fires once. -ENOENT: @v is not in use. */
int irq_model_set_vmm(IrqModel *m, uint32_t v, bool held, IrqAction *ret);

/* Where vector @v's interrupts go now (see the header comment). */
IrqTrigger irq_model_trigger(const IrqModel *m, uint32_t v);

/* Number of vectors with the in_use/masked/pending bit set (for tests and summaries). */
uint32_t irq_model_count_pending(const IrqModel *m);

/* ---- the state carried across a migration (never eventfds) ---- */

/* Bitmaps, bit v of byte v / 8, vectors [0, count). */
#define IRQ_BITMAP_SIZE(count) (((size_t)(count) + 7) / 8)

typedef struct IrqState {
    IrqType type;
    uint32_t count;
    uint8_t in_use[IRQ_BITMAP_SIZE(IRQ_MAX_VECTORS)];
    uint8_t masked[IRQ_BITMAP_SIZE(IRQ_MAX_VECTORS)];
    uint8_t pending[IRQ_BITMAP_SIZE(IRQ_MAX_VECTORS)];
} IrqState;

void irq_model_export(const IrqModel *m, IrqState *ret);

/* Whether @s is a state some device could hold: a known type, count 0 exactly with NONE and
 * within PCI's limit for the type, no bit at or beyond count, masked and pending only on
 * vectors in use. -EINVAL otherwise. (The stream's decoder and irq_model_import use it.) */
int irq_state_check(const IrqState *s);

/* Makes @m (nothing enabled yet, or exactly @s->type with no more vectors) hold @s: the index
 * enabled with @s->count vectors, the same vectors in use, masked and pending; no VMM holds
 * any yet, so every in-use vector is on its latch. Fills @ret_plan like irq_model_enable.
 *   -EINVAL  @s is malformed (a type out of range, count 0 with a type, bits beyond count,
 *            masked or pending on a vector not in use)
 *   -EBUSY, -ENODEV, -ERANGE as irq_model_enable (the destination device cannot hold it) */
int irq_model_import(IrqModel *m, const IrqState *s, IrqPlan *ret_plan);

/* ---- compatibility (core/compat): a destination must hold the vectors the source uses ----
 *
 * The source's manifest describes what its device uses: "irq.<index>.count" (irq.msix.count,
 * irq.msi.count, irq.intx.count) = the vectors enabled in its active index, rule at_least;
 * nothing when no index is enabled. The destination adds, for each such field of its
 * partner's descriptor, the same field with ITS device's capacity for that index
 * (GET_IRQ_INFO's count), rule at_least; none when it has no such index, which compat then
 * reports as absent. So a destination with fewer vectors is a mismatch (device, field,
 * source count, destination capacity) found before the source stops, and a source that
 * describes no interrupts (none enabled, or an older daemon) asks nothing of it. */
#define IRQ_COMPAT_FIELD_MAX 24 /* "irq.msix.count" and its kin fit */

/* Adds @m's field to @d. -E2BIG/-EEXIST as compat_descriptor_add (@d unchanged). */
int irq_compat_describe(const IrqModel *m, CompatDescriptor *d);
/* Adds to @d @m's capacity for every irq.<index>.count field of @src (NULL: none). */
int irq_compat_capacity(const IrqModel *m, const CompatDescriptor *src, CompatDescriptor *d);

static inline bool
irq_bit_get(const uint8_t *map, uint32_t v)
{
    return map[v / 8] & (1u << (v % 8));
}

static inline void
irq_bit_set(uint8_t *map, uint32_t v, bool on)
{
    if (on) {
        map[v / 8] |= (uint8_t)(1u << (v % 8));
    } else {
        map[v / 8] &= (uint8_t) ~(1u << (v % 8));
    }
}
