/* SPDX-License-Identifier: MIT */
/*
 * convert — see convert.h.
 */
#include "convert.h"

#include <stdio.h>
#include <stdlib.h>

/* The descriptor is asked from the back-end and the plugin at each call, as the migration
 * code does: a device that cannot give one (an error) shows none, and why, rather than
 * failing the whole answer. */
static void
convert_compat(const Device *d, DeviceMsg *out)
{
    VfioMigd__V1__Device *m = &out->msg;

    out->desc = (CompatDescriptor) {0};
    if (device_compat_descriptor((Device *) d, &out->desc, out->plugin_error,
                                 sizeof(out->plugin_error)) < 0) {
        out->desc.n_fields = 0;
    } else {
        /* the vectors it uses, as a migration's manifest says (docs/stream-format.md) */
        (void) irq_compat_describe(irq_model(d->irq), &out->desc);
    }
    for (unsigned i = 0; i < out->desc.n_fields; i++) {
        const CompatField *f = &out->desc.fields[i];
        const char *rule = compat_rule_name(f->rule);

        vfio_migd__v1__compat_field__init(&out->compat[i]);
        out->compat[i].name = (char *) f->name;
        out->compat[i].value = (char *) f->value;
        out->compat[i].rule = (char *) (rule ? rule : "");
        out->compat_ptrs[i] = &out->compat[i];
    }
    m->n_compat = out->desc.n_fields;
    m->compat = out->compat_ptrs;
}

/* The plugin's prerequisites, checked now (they change with the host: a driver bound, a
 * devlink setting); a failing hook shows none, and why. */
static void
convert_prerequisites(const Device *d, DeviceMsg *out)
{
    VfioMigd__V1__Device *m = &out->msg;
    struct vfio_migd_device view;
    char why[256] = "";

    out->prereqs.n = 0;
    if (!d->plugin) {
        return;
    }
    device_plugin_view(d, &view);
    if (plugin_prerequisites(d->plugin, &view, &out->prereqs, why, sizeof(why)) < 0 &&
        !out->plugin_error[0]) {
        (void) snprintf(out->plugin_error, sizeof(out->plugin_error), "%s", why);
    }
    for (size_t i = 0; i < out->prereqs.n; i++) {
        const PluginPrereq *p = &out->prereqs.items[i];

        vfio_migd__v1__prerequisite__init(&out->prereq[i]);
        out->prereq[i].check = (char *) p->check;
        out->prereq[i].ok = p->ok;
        out->prereq[i].message = (char *) p->message;
        out->prereq[i].fix = (char *) p->fix;
        out->prereq_ptrs[i] = &out->prereq[i];
    }
    m->n_prerequisites = out->prereqs.n;
    m->prerequisites = out->prereq_ptrs;
}

void
convert_device(const Device *d, DeviceMsg *out)
{
    VfioMigd__V1__Device *m = &out->msg;
    const char *busy = device_busy_operation(d);

    vfio_migd__v1__device__init(m);
    vfio_migd__v1__device_stats__init(&out->stats);
    m->id = d->id;
    m->backend = (char *) device_backend_name(d);
    m->state = convert_state_to_api(d->state);
    m->migration_flags = d->info.mig_flags;
    m->migratable = d->info.migratable;
    m->data_size = d->data_size;
    m->busy = busy != NULL;
    m->busy_operation = (char *) (busy ? busy : "");
    m->data_session_open = d->session != NULL;
    m->group = d->group ? d->group->name : "";
    m->holder_pid = d->vmm_pid;
    m->holder_comm = (char *) d->vmm_comm;
    /* AuthzIds holds unsigned ids, the message uint32_t ones: the same type on Linux. */
    static_assert(sizeof(d->vmm_allow.users.ids[0]) == sizeof(*m->vmm_uids), "id width");
    m->n_vmm_uids = d->vmm_allow.users.n;
    m->vmm_uids = (uint32_t *) d->vmm_allow.users.ids;
    m->n_vmm_gids = d->vmm_allow.groups.n;
    m->vmm_gids = (uint32_t *) d->vmm_allow.groups.ids;

    out->stats.transitions = d->stats.transitions;
    out->stats.arcs = d->stats.arcs;
    out->stats.failed_arcs = d->stats.failed_arcs;
    out->stats.resets = d->stats.resets;
    out->stats.bytes_saved = d->stats.bytes_saved;
    out->stats.bytes_restored = d->stats.bytes_restored;
    out->stats.last_error = (char *) d->last_error;
    m->stats = &out->stats;

    for (unsigned i = 0; i < d->n_props; i++) {
        vfio_migd__v1__device__properties_entry__init(&out->entries[i]);
        out->entries[i].key = (char *) d->props[i].key;
        out->entries[i].value = (char *) d->props[i].value;
        out->entry_ptrs[i] = &out->entries[i];
    }
    m->n_properties = d->n_props;
    m->properties = out->entry_ptrs;
    out->plugin_error[0] = '\0';
    m->plugin = (char *) (d->plugin ? plugin_name(d->plugin) : "");
    convert_compat(d, out);
    convert_prerequisites(d, out);
    m->plugin_error = out->plugin_error;
}

static void
convert_arc(const ArcRecord *in, VfioMigd__V1__Arc *a)
{
    vfio_migd__v1__arc__init(a);
    a->from = convert_state_to_api(in->from);
    a->to = convert_state_to_api(in->to);
    a->opens_data_session = in->opened_session;
    a->start_us = in->start_us;
    a->duration_us = in->duration_us;
    a->errno_value = -in->error;
    a->reset = in->reset;
}

void
convert_arcs(const ArcRecord *arcs, unsigned n, ArcsMsg *out)
{
    out->n = n;
    for (unsigned i = 0; i < n; i++) {
        convert_arc(&arcs[i], &out->arcs[i]);
        out->ptrs[i] = &out->arcs[i];
    }
}

static void
convert_device_result(const GroupRun *run, const GroupDeviceRun *dr,
                      VfioMigd__V1__GroupDeviceResult *r, VfioMigd__V1__Arc *arcs,
                      VfioMigd__V1__Arc **arc_ptrs)
{
    ArcsMsg tmp;

    (void) run;
    vfio_migd__v1__group_device_result__init(r);
    r->id = dr->device->id;
    r->start_state = convert_state_to_api(dr->start_state);
    r->state = convert_state_to_api(dr->state);
    for (unsigned i = 0; i < dr->n_arcs; i += DEVICE_MAX_ARCS) {
        unsigned n = dr->n_arcs - i < DEVICE_MAX_ARCS ? dr->n_arcs - i : DEVICE_MAX_ARCS;
        convert_arcs(dr->arcs + i, n, &tmp);
        for (unsigned k = 0; k < n; k++) {
            arcs[i + k] = tmp.arcs[k];
            arc_ptrs[i + k] = &arcs[i + k];
        }
    }
    r->n_arcs = dr->n_arcs;
    r->arcs = arc_ptrs;
    r->elapsed_us = dr->end_us;
    r->error = (char *) dr->message;
    r->errno_value = -dr->error;
    r->failed_arc = (char *) dr->failed_arc;
}

int
convert_group_run(const GroupRun *run, GroupRunMsg *out)
{
    VfioMigd__V1__GroupTransitionResponse *m = &out->msg;
    DeviceState common = group_common_state(run);
    size_t total = 0, used = 0;

    *out = (GroupRunMsg){0};
    vfio_migd__v1__group_transition_response__init(m);
    for (size_t i = 0; i < run->n_devices; i++) {
        total += run->devices[i].n_arcs;
    }
    out->results = calloc(run->n_devices ? run->n_devices : 1, sizeof(*out->results));
    out->result_ptrs = calloc(run->n_devices ? run->n_devices : 1, sizeof(*out->result_ptrs));
    out->arcs = calloc(total ? total : 1, sizeof(*out->arcs));
    out->arc_ptrs = calloc(total ? total : 1, sizeof(*out->arc_ptrs));
    if (!out->results || !out->result_ptrs || !out->arcs || !out->arc_ptrs) {
        convert_group_run_done(out);
        return -ENOMEM;
    }
    for (size_t i = 0; i < run->n_devices; i++) {
        convert_device_result(run, &run->devices[i], &out->results[i], out->arcs + used,
                              out->arc_ptrs + used);
        out->result_ptrs[i] = &out->results[i];
        used += run->devices[i].n_arcs;
    }
    m->name = run->group->name;
    m->target = convert_state_to_api(run->target);
    m->state = common < 0 ? VFIO_MIGD__V1__DEVICE_STATE__DEVICE_STATE_UNSPECIFIED
                          : convert_state_to_api(common);
    m->elapsed_us = run->elapsed_us;
    m->n_devices = run->n_devices;
    m->devices = out->result_ptrs;
    m->phases = run->phases;
    m->rolled_back = run->rolled_back;
    m->rollback_failed = run->rollback_failed;
    m->error = (char *) run->error;
    m->forced = run->force;
    m->reset = run->reset;
    m->started_unix_ms = run->started_unix_ms;
    return 0;
}

void
convert_group_run_done(GroupRunMsg *m)
{
    free(m->results);
    free(m->result_ptrs);
    free(m->arcs);
    free(m->arc_ptrs);
    *m = (GroupRunMsg){0};
}

int
convert_group(const Group *g, bool with_timeline, GroupMsg *out)
{
    VfioMigd__V1__Group *m = &out->msg;

    *out = (GroupMsg){0};
    vfio_migd__v1__group__init(m);
    out->ids = calloc(g->n_devices, sizeof(*out->ids));
    out->states = calloc(g->n_devices, sizeof(*out->states));
    if (!out->ids || !out->states) {
        convert_group_done(out);
        return -ENOMEM;
    }
    for (size_t i = 0; i < g->n_devices; i++) {
        out->ids[i] = g->devices[i]->id;
        out->states[i] = convert_state_to_api(g->devices[i]->state);
    }
    m->name = g->name;
    m->n_device_ids = m->n_states = g->n_devices;
    m->device_ids = out->ids;
    m->states = out->states;
    m->busy = g->active != NULL;
    if (with_timeline && g->last) {
        if (convert_group_run(g->last, &out->last) < 0) {
            convert_group_done(out);
            return -ENOMEM;
        }
        out->has_last = true;
        m->last_transition = &out->last.msg;
    }
    return 0;
}

void
convert_group_done(GroupMsg *m)
{
    if (m->has_last) {
        convert_group_run_done(&m->last);
    }
    free(m->ids);
    free(m->states);
    *m = (GroupMsg){0};
}

/* One device's progress; its arcs go into @arcs/@ptrs (room for d->n_arcs). */
static void
convert_progress(const MigrationDeviceSnapshot *d, VfioMigd__V1__DeviceProgress *p,
                 VfioMigd__V1__Arc *arcs, VfioMigd__V1__Arc **ptrs)
{
    vfio_migd__v1__device_progress__init(p);
    p->id = (char *) d->id;
    p->state = convert_state_to_api(d->state);
    p->bytes = d->bytes;
    p->precopy_bytes = d->precopy_bytes;
    p->stopcopy_bytes = d->stopcopy_bytes;
    p->initial_bytes = d->initial_bytes;
    p->dirty_bytes = d->dirty_bytes;
    p->rate = d->rate;
    p->estimate_remaining = d->estimate_remaining;
    p->done = d->done;
    p->error = (char *) d->error;
    for (unsigned i = 0; i < d->n_arcs; i++) {
        convert_arc(&d->arcs[i], &arcs[i]);
        ptrs[i] = &arcs[i];
    }
    p->n_arcs = d->n_arcs;
    p->arcs = ptrs;
}

static void
convert_options(const MigrationOptions *o, VfioMigd__V1__MigrationOptions *m)
{
    vfio_migd__v1__migration_options__init(m);
    m->precopy = o->precopy ? VFIO_MIGD__V1__PRECOPY_MODE__PRECOPY_AUTO
                            : VFIO_MIGD__V1__PRECOPY_MODE__PRECOPY_OFF;
    m->switchover = o->manual_switchover ? VFIO_MIGD__V1__SWITCHOVER_MODE__SWITCHOVER_MANUAL
                                         : VFIO_MIGD__V1__SWITCHOVER_MODE__SWITCHOVER_AUTO;
    m->max_precopy_ms = o->max_precopy_ms;
    m->downtime_target_ms = o->downtime_target_ms;
    m->bandwidth_limit = o->bandwidth_limit;
    m->stopcopy_bandwidth_limit = o->stopcopy_bandwidth_limit;
    m->timeout_ms = o->timeout_ms;
    m->channels = o->channels;
    m->tls = o->tls == TLS_MODE_OFF    ? VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_OFF
             : o->tls == TLS_MODE_CERT ? VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_CERT
                                       : VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_PSK;
}

static int
convert_migration_alloc(const MigrationSnapshot *s, MigrationMsg *out)
{
    size_t n = s->n_devices ? s->n_devices : 1, arcs = 1;

    for (size_t i = 0; i < s->n_devices; i++) {
        arcs += s->devices[i].n_arcs;
    }
    *out = (MigrationMsg){0};
    out->devs = calloc(n, sizeof(*out->devs));
    out->dev_ptrs = calloc(n, sizeof(*out->dev_ptrs));
    out->arcs = calloc(arcs, sizeof(*out->arcs));
    out->arc_ptrs = calloc(arcs, sizeof(*out->arc_ptrs));
    if (!out->devs || !out->dev_ptrs || !out->arcs || !out->arc_ptrs) {
        convert_migration_done(out);
        return -ENOMEM;
    }
    return 0;
}

int
convert_migration(const MigrationSnapshot *s, MigrationMsg *out)
{
    VfioMigd__V1__Migration *m = &out->msg;
    size_t used = 0;

    if (convert_migration_alloc(s, out) < 0) {
        return -ENOMEM;
    }
    vfio_migd__v1__migration__init(m);
    for (size_t i = 0; i < s->n_devices; i++) {
        convert_progress(&s->devices[i], &out->devs[i], out->arcs + used, out->arc_ptrs + used);
        used += s->devices[i].n_arcs;
        out->dev_ptrs[i] = &out->devs[i];
    }
    convert_options(&s->options, &out->opts);
    m->id = (char *) s->id;
    m->role = (VfioMigd__V1__MigrationRole) s->role;
    m->subject = (VfioMigd__V1__MigrationSubject) s->subject;
    m->group = (char *) s->name;
    m->phase = (VfioMigd__V1__MigrationPhase) s->phase;
    m->state = (char *) s->state;
    m->peer = (char *) s->peer;
    m->options = &out->opts;
    m->bytes = s->bytes;
    m->estimate_remaining = s->estimate_remaining;
    m->rate = s->rate;
    m->elapsed_us = s->elapsed_us;
    m->precopy_us = s->precopy_us;
    m->downtime_us = s->downtime_us;
    m->error = (char *) s->error;
    m->switchover_reason = (char *) s->switchover_reason;
    m->precopy_converged = s->precopy_converged;
    m->n_devices = s->n_devices;
    m->devices = out->dev_ptrs;
    m->started_unix_ms = s->started_unix_ms;
    m->auto_resume = s->auto_resume;
    return 0;
}

void
convert_migration_done(MigrationMsg *m)
{
    free(m->devs);
    free(m->dev_ptrs);
    free(m->arcs);
    free(m->arc_ptrs);
    *m = (MigrationMsg){0};
}
