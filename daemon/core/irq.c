/* SPDX-License-Identifier: MIT */
/*
 * irq — see irq.h.
 */
#include "irq.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "util/macro.h"

static const struct {
    const char *name;   /* stable: API, CLI, stream */
    int vfio_index;     /* VFIO_PCI_*_IRQ_INDEX */
    uint32_t max_count; /* PCI's limit for the type */
    bool vfio_masks;    /* VFIO masks it itself (INTx); else the mask is emulated */
} irq_type_table[] = {
    [IRQ_TYPE_NONE] = {"none", -EINVAL, 0, false},
    [IRQ_TYPE_INTX] = {"intx", 0, 1, true},
    [IRQ_TYPE_MSI] = {"msi", 1, 32, false},
    [IRQ_TYPE_MSIX] = {"msix", 2, IRQ_MAX_VECTORS, false},
};
static_assert(ELEMENTSOF(irq_type_table) == _IRQ_TYPE_MAX,
              "irq_type_table out of sync with IrqType");

const char *
irq_type_name(IrqType t)
{
    return (size_t)t < ELEMENTSOF(irq_type_table) ? irq_type_table[t].name : "invalid";
}

IrqType
irq_type_from_name(const char *name)
{
    for (size_t t = 0; t < ELEMENTSOF(irq_type_table); t++) {
        if (name && strcmp(irq_type_table[t].name, name) == 0) {
            return (IrqType)t;
        }
    }
    return _IRQ_TYPE_INVALID;
}

int
irq_type_vfio_index(IrqType t)
{
    return (size_t)t < ELEMENTSOF(irq_type_table) ? irq_type_table[t].vfio_index : -EINVAL;
}

bool
irq_type_vfio_masks(IrqType t)
{
    return (size_t)t < ELEMENTSOF(irq_type_table) && irq_type_table[t].vfio_masks;
}

uint32_t
irq_type_max_count(IrqType t)
{
    return (size_t)t < ELEMENTSOF(irq_type_table) ? irq_type_table[t].max_count : 0;
}

int
irq_model_init(IrqModel *m, const IrqIndexInfo info[_IRQ_TYPE_MAX])
{
    for (IrqType t = IRQ_TYPE_INTX; t < _IRQ_TYPE_MAX; t++) {
        if (info[t].count > irq_type_table[t].max_count ||
            (info[t].flags & ~IRQ_INFO_KNOWN_FLAGS) ||
            (info[t].count > 0 && !(info[t].flags & IRQ_INFO_EVENTFD))) {
            return -EPROTO;
        }
    }
    memset(m, 0, sizeof(*m));
    memcpy(m->info, info, sizeof(m->info));
    m->info[IRQ_TYPE_NONE] = (IrqIndexInfo){0, 0};
    m->type = IRQ_TYPE_NONE;
    return 0;
}

/* Every check of irq_model_enable(), before anything changes. */
static int
enable_check(const IrqModel *m, IrqType t, uint32_t count)
{
    if ((size_t)t >= _IRQ_TYPE_MAX) {
        return -EINVAL;
    }
    if (count == 0) {
        /* Disabling: only the enabled index; "none" with 0 is a no-op. */
        return t == m->type ? 0 : -EINVAL;
    }
    if (t == IRQ_TYPE_NONE || m->info[t].count == 0) {
        return -ENODEV;
    }
    if (m->type != IRQ_TYPE_NONE && m->type != t) {
        return -EBUSY;
    }
    if (count > m->info[t].count) {
        return -ERANGE;
    }
    if (m->type == t && count < m->count) {
        return -EINVAL;
    }
    return 0;
}

int
irq_model_enable(IrqModel *m, IrqType t, uint32_t count, IrqPlan *ret_plan)
{
    IrqPlan plan = {0};
    int r = enable_check(m, t, count);

    if (r < 0) {
        return r;
    }
    if (count == 0) {
        plan.disable = t != IRQ_TYPE_NONE;
        memset(m->vec, 0, sizeof(m->vec[0]) * m->count);
        m->type = IRQ_TYPE_NONE;
        m->count = 0;
        *ret_plan = plan;
        return 0;
    }
    if (m->type == t && (m->info[t].flags & IRQ_INFO_NORESIZE) && count > m->count) {
        /* The kernel cannot grow it in place: disable and re-enable every vector, with the
         * old ones on their latches through the gap so that nothing fired then is lost. */
        plan.latch_all = true;
        plan.disable = true;
        plan.arm_start = 0;
    } else {
        plan.arm_start = m->type == t ? m->count : 0;
    }
    plan.arm_count = count - plan.arm_start;
    for (uint32_t v = m->count; v < count; v++) {
        m->vec[v] = (IrqVector){.in_use = true};
    }
    m->type = t;
    m->count = count;
    *ret_plan = plan;
    return 0;
}

static bool
vector_ok(const IrqModel *m, uint32_t v)
{
    return v < m->count && m->vec[v].in_use;
}

IrqTrigger
irq_model_trigger(const IrqModel *m, uint32_t v)
{
    if (!vector_ok(m, v)) {
        return IRQ_TRIGGER_NONE;
    }
    const IrqVector *x = &m->vec[v];
    bool emulated_mask = x->masked && !irq_type_vfio_masks(m->type);
    return x->vmm && !emulated_mask ? IRQ_TRIGGER_VMM : IRQ_TRIGGER_LATCH;
}

/* Applies @change to vector @v and fills @ret with what the device needs: a re-arm when the
 * trigger moved, and one signal of the VMM's eventfd when a pending interrupt can now be
 * delivered. */
static int
vector_change(IrqModel *m, uint32_t v, void (*change)(IrqVector *x, bool on), bool on,
              IrqAction *ret)
{
    if (!vector_ok(m, v)) {
        return -ENOENT;
    }
    IrqVector *x = &m->vec[v];
    IrqTrigger before = irq_model_trigger(m, v);
    bool was_masked = x->masked;

    change(x, on);
    IrqAction a = {.rearm = irq_model_trigger(m, v) != before};
    if (irq_type_vfio_masks(m->type) && was_masked != x->masked) {
        a.vfio_mask = x->masked;
        a.vfio_unmask = !x->masked;
    }
    if (x->pending && x->vmm && !x->masked) {
        x->pending = false;
        a.fire = true;
    }
    *ret = a;
    return 0;
}

static void
set_masked(IrqVector *x, bool on)
{
    x->masked = on;
}

static void
set_vmm(IrqVector *x, bool on)
{
    x->vmm = on;
}

static void
set_pending(IrqVector *x, bool on)
{
    x->pending = x->pending || on;
}

int
irq_model_mask(IrqModel *m, uint32_t v, IrqAction *ret)
{
    return vector_change(m, v, set_masked, true, ret);
}

int
irq_model_unmask(IrqModel *m, uint32_t v, IrqAction *ret)
{
    int r = vector_change(m, v, set_masked, false, ret);

    /* An AUTOMASKED INTx is masked by the kernel at each interrupt it signals, which the model
     * never sees: the VMM's unmask (its EOI) must reach VFIO even when the model's bit is
     * clear, or the line stays masked after the first interrupt. */
    if (r == 0 && irq_type_vfio_masks(m->type) && (m->info[m->type].flags & IRQ_INFO_AUTOMASKED)) {
        ret->vfio_unmask = true;
    }
    return r;
}

int
irq_model_set_vmm(IrqModel *m, uint32_t v, bool held, IrqAction *ret)
{
    return vector_change(m, v, set_vmm, held, ret);
}

int
irq_model_latched(IrqModel *m, uint32_t v, IrqAction *ret)
{
    /* Pending, then delivered at once by vector_change() if nothing holds it back. */
    return vector_change(m, v, set_pending, true, ret);
}

uint32_t
irq_model_count_pending(const IrqModel *m)
{
    uint32_t n = 0;

    for (uint32_t v = 0; v < m->count; v++) {
        n += m->vec[v].pending;
    }
    return n;
}

void
irq_model_export(const IrqModel *m, IrqState *ret)
{
    memset(ret, 0, sizeof(*ret));
    ret->type = m->type;
    ret->count = m->count;
    for (uint32_t v = 0; v < m->count; v++) {
        irq_bit_set(ret->in_use, v, m->vec[v].in_use);
        irq_bit_set(ret->masked, v, m->vec[v].masked);
        irq_bit_set(ret->pending, v, m->vec[v].pending);
    }
}

int
irq_state_check(const IrqState *s)
{
    if ((size_t)s->type >= _IRQ_TYPE_MAX || s->count > irq_type_max_count(s->type) ||
        (s->type == IRQ_TYPE_NONE) != (s->count == 0)) {
        return -EINVAL;
    }
    for (uint32_t v = 0; v < IRQ_MAX_VECTORS; v++) {
        bool any =
            irq_bit_get(s->in_use, v) || irq_bit_get(s->masked, v) || irq_bit_get(s->pending, v);
        if (any && (v >= s->count || !irq_bit_get(s->in_use, v))) {
            return -EINVAL;
        }
    }
    return 0;
}

int
irq_model_import(IrqModel *m, const IrqState *s, IrqPlan *ret_plan)
{
    IrqPlan plan = {0};
    int r = irq_state_check(s);

    if (r < 0) {
        return r;
    }
    if (s->type == IRQ_TYPE_NONE) {
        *ret_plan = plan;
        return 0;
    }
    if (m->type == s->type && m->count > s->count) {
        return -EINVAL;
    }
    r = enable_check(m, s->type, s->count);
    if (r < 0) {
        return r;
    }
    r = irq_model_enable(m, s->type, s->count, &plan);
    if (r < 0) {
        return r;
    }
    for (uint32_t v = 0; v < s->count; v++) {
        m->vec[v] = (IrqVector){
            .in_use = irq_bit_get(s->in_use, v),
            .masked = irq_bit_get(s->masked, v),
            .pending = irq_bit_get(s->pending, v),
        };
    }
    /* Vectors that were in use before are re-armed too: their VMM is gone with the state. */
    plan.arm_start = 0;
    plan.arm_count = s->count;
    *ret_plan = plan;
    return 0;
}

/* ---- compatibility ---- */

static void
compat_field_name(IrqType t, char name[IRQ_COMPAT_FIELD_MAX])
{
    (void) snprintf(name, IRQ_COMPAT_FIELD_MAX, "irq.%s.count", irq_type_name(t));
}

static int
compat_add_count(CompatDescriptor *d, IrqType t, uint32_t count)
{
    char name[IRQ_COMPAT_FIELD_MAX], value[16];

    compat_field_name(t, name);
    (void) snprintf(value, sizeof(value), "%" PRIu32, count);
    return compat_descriptor_add(d, name, COMPAT_RULE_AT_LEAST, value);
}

int
irq_compat_describe(const IrqModel *m, CompatDescriptor *d)
{
    return m->type == IRQ_TYPE_NONE ? 0 : compat_add_count(d, m->type, m->count);
}

int
irq_compat_capacity(const IrqModel *m, const CompatDescriptor *src, CompatDescriptor *d)
{
    char name[IRQ_COMPAT_FIELD_MAX];

    for (IrqType t = IRQ_TYPE_INTX; src && t < _IRQ_TYPE_MAX; t++) {
        int r;

        compat_field_name(t, name);
        if (!compat_descriptor_find(src, name) || m->info[t].count == 0) {
            continue; /* not asked for, or absent here: compat says so */
        }
        r = compat_add_count(d, t, m->info[t].count);
        if (r < 0) {
            return r;
        }
    }
    return 0;
}
