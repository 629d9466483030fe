/* SPDX-License-Identifier: MIT */
/*
 * test_irq — every rule of the interrupt model (daemon/core/irq.c): the exclusive indexes,
 * growth with and without NORESIZE, masked -> pending -> unmask fires exactly once, an
 * unmasked vector held by a VMM never touches pending, the VMM leaving and coming back, and
 * the state carried across a migration. Expected answers are written from the rules in
 * irq.h and kernel-uapi.md §3, not computed by the code under test.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "core/irq.h"
#include "util/macro.h"

TestSuite(irq, .timeout = 20);

/* vfio-pci's answers for a device with INTx, 1 MSI vector and 64 MSI-X vectors; @dyn_msix
 * when the host allows dynamic MSI-X (no NORESIZE on MSI-X). */
static IrqModel *
model_new(bool dyn_msix)
{
    static IrqModel m;
    IrqIndexInfo info[_IRQ_TYPE_MAX] = {
        [IRQ_TYPE_INTX] = {IRQ_INFO_EVENTFD | IRQ_INFO_MASKABLE | IRQ_INFO_AUTOMASKED |
                               IRQ_INFO_NORESIZE,
                           1},
        [IRQ_TYPE_MSI] = {IRQ_INFO_EVENTFD | IRQ_INFO_NORESIZE, 1},
        [IRQ_TYPE_MSIX] = {IRQ_INFO_EVENTFD | (dyn_msix ? 0 : IRQ_INFO_NORESIZE), 64},
    };
    cr_assert_eq(irq_model_init(&m, info), 0);
    return &m;
}

static IrqPlan
enable_ok(IrqModel *m, IrqType t, uint32_t count)
{
    IrqPlan p;
    cr_assert_eq(irq_model_enable(m, t, count, &p), 0, "enable %s %u", irq_type_name(t), count);
    return p;
}

/* A fresh model (NORESIZE MSI-X) with @count vectors of @t enabled. */
static IrqModel *
model_enabled(IrqType t, uint32_t count)
{
    IrqModel *m = model_new(false);
    enable_ok(m, t, count);
    return m;
}

/* A VMM takes vector @v: the action the model asks for. */
static IrqAction
vmm_takes(IrqModel *m, uint32_t v)
{
    IrqAction a;
    cr_assert_eq(irq_model_set_vmm(m, v, true, &a), 0, "vmm takes vector %u", v);
    return a;
}

Test(irq, names_round_trip)
{
    const char *names[] = {"none", "intx", "msi", "msix"};
    for (size_t i = 0; i < ELEMENTSOF(names); i++) {
        cr_assert_eq(irq_type_from_name(names[i]), (IrqType)i);
        cr_assert_str_eq(irq_type_name((IrqType)i), names[i]);
    }
    cr_assert_eq(irq_type_from_name("MSIX"), _IRQ_TYPE_INVALID);
    cr_assert_eq(irq_type_from_name(NULL), _IRQ_TYPE_INVALID);
    cr_assert_eq(irq_type_vfio_index(IRQ_TYPE_INTX), 0);
    cr_assert_eq(irq_type_vfio_index(IRQ_TYPE_MSI), 1);
    cr_assert_eq(irq_type_vfio_index(IRQ_TYPE_MSIX), 2);
    cr_assert_lt(irq_type_vfio_index(IRQ_TYPE_NONE), 0);
    cr_assert(irq_type_vfio_masks(IRQ_TYPE_INTX));
    cr_assert_not(irq_type_vfio_masks(IRQ_TYPE_MSI));
    cr_assert_not(irq_type_vfio_masks(IRQ_TYPE_MSIX));
}

Test(irq, init_refuses_answers_no_device_gives)
{
    IrqModel m;
    struct {
        IrqType t;
        IrqIndexInfo info;
    } bad[] = {
        {IRQ_TYPE_INTX, {IRQ_INFO_EVENTFD, 2}},
        {IRQ_TYPE_MSI, {IRQ_INFO_EVENTFD, 33}},
        {IRQ_TYPE_MSIX, {IRQ_INFO_EVENTFD, IRQ_MAX_VECTORS + 1}},
        {IRQ_TYPE_MSIX, {IRQ_INFO_EVENTFD | (1u << 4), 4}},
        {IRQ_TYPE_MSIX, {0, 4}},
    };
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        IrqIndexInfo info[_IRQ_TYPE_MAX] = {0};
        info[bad[i].t] = bad[i].info;
        cr_assert_eq(irq_model_init(&m, info), -EPROTO, "case %zu", i);
    }
    IrqIndexInfo none[_IRQ_TYPE_MAX] = {0};
    cr_assert_eq(irq_model_init(&m, none), 0);
    cr_assert_eq(m.type, IRQ_TYPE_NONE);
}

Test(irq, indexes_are_exclusive)
{
    for (IrqType a = IRQ_TYPE_INTX; a < _IRQ_TYPE_MAX; a++) {
        for (IrqType b = IRQ_TYPE_INTX; b < _IRQ_TYPE_MAX; b++) {
            IrqModel *m = model_new(false);
            IrqPlan p;
            enable_ok(m, a, 1);
            int r = irq_model_enable(m, b, 1, &p);
            cr_assert_eq(r, a == b ? 0 : -EBUSY, "%s then %s", irq_type_name(a), irq_type_name(b));
            cr_assert_eq(m->type, a);
            /* Disabling the other one is not a way around it either. */
            if (a != b) {
                cr_assert_eq(irq_model_enable(m, b, 0, &p), -EINVAL);
            }
            enable_ok(m, a, 0);
            cr_assert_eq(m->type, IRQ_TYPE_NONE);
            enable_ok(m, b, 1);
        }
    }
}

Test(irq, counts_are_bounded)
{
    IrqModel *m = model_new(false);
    IrqPlan p;

    cr_assert_eq(irq_model_enable(m, IRQ_TYPE_MSIX, 65, &p), -ERANGE);
    cr_assert_eq(irq_model_enable(m, IRQ_TYPE_MSI, 2, &p), -ERANGE);
    cr_assert_eq(irq_model_enable(m, IRQ_TYPE_NONE, 1, &p), -ENODEV);
    cr_assert_eq(irq_model_enable(m, (IrqType)9, 1, &p), -EINVAL);
    cr_assert_eq(m->type, IRQ_TYPE_NONE);
    enable_ok(m, IRQ_TYPE_MSIX, 8);
    cr_assert_eq(irq_model_enable(m, IRQ_TYPE_MSIX, 4, &p), -EINVAL, "shrink refused");
    cr_assert_eq(m->count, 8);

    IrqIndexInfo info[_IRQ_TYPE_MAX] = {[IRQ_TYPE_MSI] = {IRQ_INFO_EVENTFD, 1}};
    cr_assert_eq(irq_model_init(m, info), 0);
    cr_assert_eq(irq_model_enable(m, IRQ_TYPE_MSIX, 1, &p), -ENODEV);
}

Test(irq, first_enable_arms_every_vector_without_disable)
{
    IrqModel *m = model_new(false);
    IrqPlan p = enable_ok(m, IRQ_TYPE_MSIX, 4);

    cr_assert_not(p.latch_all);
    cr_assert_not(p.disable);
    cr_assert_eq(p.arm_start, 0);
    cr_assert_eq(p.arm_count, 4);
    for (uint32_t v = 0; v < 4; v++) {
        cr_assert(m->vec[v].in_use);
        /* No VMM yet: interrupts wait on the latch. */
        cr_assert_eq(irq_model_trigger(m, v), IRQ_TRIGGER_LATCH);
    }
    cr_assert_eq(irq_model_trigger(m, 4), IRQ_TRIGGER_NONE);
}

Test(irq, noresize_growth_disables_and_reenables_through_the_latch)
{
    IrqModel *m = model_enabled(IRQ_TYPE_MSIX, 2);
    IrqAction a = vmm_takes(m, 0);
    cr_assert_eq(irq_model_mask(m, 1, &a), 0);
    cr_assert_eq(irq_model_latched(m, 1, &a), 0);

    IrqPlan p = enable_ok(m, IRQ_TYPE_MSIX, 6);
    cr_assert(p.latch_all);
    cr_assert(p.disable);
    cr_assert_eq(p.arm_start, 0);
    cr_assert_eq(p.arm_count, 6);
    /* The old vectors keep what they had: nothing lost, nothing new. */
    cr_assert(m->vec[0].vmm);
    cr_assert(m->vec[1].masked);
    cr_assert(m->vec[1].pending);
    cr_assert_eq(irq_model_count_pending(m), 1);
    cr_assert(m->vec[5].in_use);
    cr_assert_eq(irq_model_trigger(m, 0), IRQ_TRIGGER_VMM);
}

Test(irq, dynamic_msix_growth_arms_only_the_new_vectors)
{
    IrqModel *m = model_new(true);
    enable_ok(m, IRQ_TYPE_MSIX, 2);
    IrqPlan p = enable_ok(m, IRQ_TYPE_MSIX, 6);

    cr_assert_not(p.latch_all);
    cr_assert_not(p.disable);
    cr_assert_eq(p.arm_start, 2);
    cr_assert_eq(p.arm_count, 4);
    p = enable_ok(m, IRQ_TYPE_MSIX, 6);
    cr_assert_eq(p.arm_count, 0, "same count: nothing to do");
}

Test(irq, disable_forgets_vectors)
{
    IrqModel *m = model_enabled(IRQ_TYPE_MSIX, 3);
    IrqAction a;
    cr_assert_eq(irq_model_mask(m, 2, &a), 0);
    cr_assert_eq(irq_model_latched(m, 2, &a), 0);
    IrqPlan p = enable_ok(m, IRQ_TYPE_MSIX, 0);
    cr_assert(p.disable);
    cr_assert_eq(p.arm_count, 0);
    cr_assert_eq(m->count, 0);
    cr_assert_eq(irq_model_mask(m, 2, &a), -ENOENT);
    p = enable_ok(m, IRQ_TYPE_MSIX, 3);
    cr_assert_not(m->vec[2].masked);
    cr_assert_not(m->vec[2].pending);
    cr_assert_eq(irq_model_enable(m, IRQ_TYPE_NONE, 0, &p), -EINVAL, "msix still enabled");
    enable_ok(m, IRQ_TYPE_MSIX, 0);
    enable_ok(m, IRQ_TYPE_NONE, 0);
}

/* The heart of it: masked -> any number of interrupts -> unmask fires exactly once. */
Test(irq, masked_pending_unmask_fires_once)
{
    for (IrqType t = IRQ_TYPE_MSI; t <= IRQ_TYPE_MSIX; t++) {
        IrqModel *m = model_enabled(t, 1);
        IrqAction a = vmm_takes(m, 0);
        cr_assert(a.rearm, "latch -> vmm");
        cr_assert_not(a.fire);
        cr_assert_eq(irq_model_mask(m, 0, &a), 0);
        cr_assert(a.rearm, "vmm -> latch: the mask is emulated");
        cr_assert_not(a.vfio_mask);
        cr_assert_eq(irq_model_trigger(m, 0), IRQ_TRIGGER_LATCH);
        for (int i = 0; i < 3; i++) {
            cr_assert_eq(irq_model_latched(m, 0, &a), 0);
            cr_assert_not(a.fire);
            cr_assert_not(a.rearm);
        }
        cr_assert(m->vec[0].pending);
        cr_assert_eq(irq_model_unmask(m, 0, &a), 0);
        cr_assert(a.rearm);
        cr_assert(a.fire);
        cr_assert_not(m->vec[0].pending);
        cr_assert_eq(irq_model_trigger(m, 0), IRQ_TRIGGER_VMM);
        cr_assert_eq(irq_model_unmask(m, 0, &a), 0);
        cr_assert_not(a.fire, "a second unmask fires nothing");
        cr_assert_not(a.rearm);
    }
}

Test(irq, unmasked_never_touches_pending)
{
    IrqModel *m = model_enabled(IRQ_TYPE_MSIX, 2);
    IrqAction a = vmm_takes(m, 1);
    /* A late latch read after the unmask swapped back: delivered at once, not kept. */
    cr_assert_eq(irq_model_latched(m, 1, &a), 0);
    cr_assert(a.fire);
    cr_assert_not(m->vec[1].pending);
    cr_assert_eq(irq_model_mask(m, 1, &a), 0);
    cr_assert_eq(irq_model_unmask(m, 1, &a), 0);
    cr_assert_not(a.fire, "mask + unmask with nothing pending fires nothing");
    cr_assert_eq(irq_model_latched(m, 7, &a), -ENOENT);
}

Test(irq, without_a_vmm_interrupts_wait_as_pending)
{
    IrqModel *m = model_enabled(IRQ_TYPE_MSIX, 2);
    IrqAction a = vmm_takes(m, 0);
    a = vmm_takes(m, 1);
    cr_assert_eq(irq_model_mask(m, 1, &a), 0);
    /* The VMM goes away: both vectors go to their latches. */
    cr_assert_eq(irq_model_set_vmm(m, 0, false, &a), 0);
    cr_assert(a.rearm);
    cr_assert_eq(irq_model_set_vmm(m, 1, false, &a), 0);
    cr_assert_not(a.rearm, "already on the latch (masked)");
    cr_assert_eq(irq_model_latched(m, 0, &a), 0);
    cr_assert_not(a.fire);
    cr_assert_eq(irq_model_latched(m, 1, &a), 0);
    cr_assert_eq(irq_model_count_pending(m), 2);
    /* The next VMM takes the device: the unmasked vector fires at once, the masked one on unmask.
     */
    a = vmm_takes(m, 0);
    cr_assert(a.rearm);
    cr_assert(a.fire);
    a = vmm_takes(m, 1);
    cr_assert_not(a.fire);
    cr_assert_not(a.rearm);
    cr_assert_eq(irq_model_unmask(m, 1, &a), 0);
    cr_assert(a.fire);
    cr_assert_eq(irq_model_count_pending(m), 0);
}

Test(irq, intx_uses_vfio_mask)
{
    IrqModel *m = model_enabled(IRQ_TYPE_INTX, 1);
    IrqAction a = vmm_takes(m, 0);
    cr_assert_eq(irq_model_mask(m, 0, &a), 0);
    cr_assert(a.vfio_mask);
    cr_assert_not(a.rearm, "INTx keeps the VMM's trigger");
    cr_assert_eq(irq_model_trigger(m, 0), IRQ_TRIGGER_VMM);
    cr_assert_eq(irq_model_mask(m, 0, &a), 0);
    cr_assert_not(a.vfio_mask, "already masked");
    cr_assert_eq(irq_model_unmask(m, 0, &a), 0);
    cr_assert(a.vfio_unmask);
    cr_assert_not(a.vfio_mask);
}

/* The kernel masks an AUTOMASKED INTx at each interrupt without the model seeing it: the
 * VMM's unmask (its EOI) reaches VFIO even while the model's bit says unmasked. */
Test(irq, intx_automasked_unmask_always_reaches_vfio)
{
    IrqModel *m = model_enabled(IRQ_TYPE_INTX, 1);
    IrqAction a = vmm_takes(m, 0);
    cr_assert_eq(irq_model_unmask(m, 0, &a), 0);
    cr_assert(a.vfio_unmask, "an unmask after an interrupt the kernel automasked");
    cr_assert_not(a.vfio_mask);
    cr_assert_not(a.rearm);
    cr_assert_not(a.fire);
    cr_assert_not(m->vec[0].masked);

    IrqIndexInfo info[_IRQ_TYPE_MAX] = {
        [IRQ_TYPE_INTX] = {IRQ_INFO_EVENTFD | IRQ_INFO_MASKABLE, 1}, /* no AUTOMASKED */
    };
    cr_assert_eq(irq_model_init(m, info), 0);
    enable_ok(m, IRQ_TYPE_INTX, 1);
    cr_assert_eq(irq_model_unmask(m, 0, &a), 0);
    cr_assert_not(a.vfio_unmask, "without AUTOMASKED an unmasked line needs nothing");
}

/* Every (masked, vmm, pending) starting state against every operation, from the rules. */
Test(irq, every_vector_state_and_operation)
{
    for (unsigned s = 0; s < 8; s++) {
        for (int op = 0; op < 5; op++) {
            IrqModel *m = model_enabled(IRQ_TYPE_MSIX, 1);
            IrqAction a;
            bool masked = s & 1, vmm = s & 2, pending = s & 4;
            m->vec[0] = (IrqVector){true, masked, pending, vmm};
            int r;
            switch (op) {
            case 0:
                r = irq_model_mask(m, 0, &a);
                masked = true;
                break;
            case 1:
                r = irq_model_unmask(m, 0, &a);
                masked = false;
                break;
            case 2:
                r = irq_model_latched(m, 0, &a);
                pending = true;
                break;
            case 3:
                r = irq_model_set_vmm(m, 0, true, &a);
                vmm = true;
                break;
            default:
                r = irq_model_set_vmm(m, 0, false, &a);
                vmm = false;
                break;
            }
            cr_assert_eq(r, 0);
            bool deliverable = vmm && !masked;
            cr_assert_eq(a.fire, deliverable && pending, "state %u op %d", s, op);
            cr_assert_eq(m->vec[0].pending, pending && !deliverable, "state %u op %d", s, op);
            cr_assert_eq(irq_model_trigger(m, 0),
                         deliverable ? IRQ_TRIGGER_VMM : IRQ_TRIGGER_LATCH);
            bool was_deliverable = (s & 2) && !(s & 1);
            cr_assert_eq(a.rearm, was_deliverable != deliverable, "state %u op %d", s, op);
            cr_assert_not(a.vfio_mask || a.vfio_unmask);
        }
    }
}

Test(irq, state_round_trips_and_restores_latched)
{
    IrqModel *m = model_enabled(IRQ_TYPE_MSIX, 10);
    IrqAction a;
    IrqState st;
    cr_assert_eq(irq_model_mask(m, 9, &a), 0);
    cr_assert_eq(irq_model_latched(m, 9, &a), 0);
    cr_assert_eq(irq_model_mask(m, 3, &a), 0);
    irq_model_export(m, &st);
    cr_assert_eq(st.type, IRQ_TYPE_MSIX);
    cr_assert_eq(st.count, 10);
    cr_assert_eq(st.in_use[0], 0xff);
    cr_assert_eq(st.in_use[1], 0x03);
    cr_assert_eq(st.masked[0], 0x08);
    cr_assert_eq(st.masked[1], 0x02);
    cr_assert_eq(st.pending[1], 0x02);

    IrqModel *d = model_new(true);
    IrqPlan p;
    cr_assert_eq(irq_model_import(d, &st, &p), 0);
    cr_assert_eq(p.arm_start, 0);
    cr_assert_eq(p.arm_count, 10);
    cr_assert_eq(d->type, IRQ_TYPE_MSIX);
    cr_assert(d->vec[9].masked && d->vec[9].pending);
    cr_assert(d->vec[3].masked && !d->vec[3].pending);
    cr_assert_eq(irq_model_trigger(d, 0), IRQ_TRIGGER_LATCH, "no VMM yet");
    /* The destination's VMM takes the device and unmasks: exactly one interrupt. */
    a = vmm_takes(d, 9);
    cr_assert_not(a.fire);
    cr_assert_eq(irq_model_unmask(d, 9, &a), 0);
    cr_assert(a.fire);
    cr_assert_eq(irq_model_unmask(d, 9, &a), 0);
    cr_assert_not(a.fire);
}

Test(irq, import_refuses_what_the_device_cannot_hold)
{
    IrqState st = {.type = IRQ_TYPE_MSIX, .count = 65};
    IrqPlan p;
    for (uint32_t v = 0; v < 65; v++) {
        irq_bit_set(st.in_use, v, true);
    }
    IrqModel *d = model_new(false);
    cr_assert_eq(irq_model_import(d, &st, &p), -ERANGE, "fewer vectors on the destination");
    cr_assert_eq(d->type, IRQ_TYPE_NONE);

    IrqState msi = {.type = IRQ_TYPE_MSI, .count = 1};
    irq_bit_set(msi.in_use, 0, true);
    enable_ok(d, IRQ_TYPE_MSIX, 2);
    cr_assert_eq(irq_model_import(d, &msi, &p), -EBUSY);
    cr_assert_eq(d->type, IRQ_TYPE_MSIX);
}

Test(irq, import_refuses_malformed_state)
{
    IrqModel *d = model_new(false);
    IrqPlan p;
    IrqState bad[5] = {0};
    bad[0] = (IrqState){.type = (IrqType)7, .count = 1};
    bad[1] = (IrqState){.type = IRQ_TYPE_MSIX, .count = 0};
    bad[2] = (IrqState){.type = IRQ_TYPE_NONE, .count = 3};
    bad[3] = (IrqState){.type = IRQ_TYPE_MSIX, .count = 2};
    irq_bit_set(bad[3].in_use, 2, true); /* beyond count */
    bad[4] = (IrqState){.type = IRQ_TYPE_MSIX, .count = 2};
    irq_bit_set(bad[4].in_use, 0, true);
    irq_bit_set(bad[4].pending, 1, true); /* pending on a vector not in use */
    for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
        cr_assert_eq(irq_model_import(d, &bad[i], &p), -EINVAL, "case %zu", i);
        cr_assert_eq(d->type, IRQ_TYPE_NONE);
    }
    IrqState none = {.type = IRQ_TYPE_NONE};
    cr_assert_eq(irq_model_import(d, &none, &p), 0);
    cr_assert_eq(p.arm_count, 0);
}
