/* SPDX-License-Identifier: MIT */
/*
 * convert — see convert.h.
 */
#include "convert.h"

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
}

void
convert_arcs(const ArcRecord *arcs, unsigned n, ArcsMsg *out)
{
    out->n = n;
    for (unsigned i = 0; i < n; i++) {
        VfioMigd__V1__Arc *a = &out->arcs[i];

        vfio_migd__v1__arc__init(a);
        a->from = convert_state_to_api(arcs[i].from);
        a->to = convert_state_to_api(arcs[i].to);
        a->opens_data_session = arcs[i].opened_session;
        a->start_us = arcs[i].start_us;
        a->duration_us = arcs[i].duration_us;
        a->errno_value = -arcs[i].error;
        out->ptrs[i] = a;
    }
}
