/* SPDX-License-Identifier: MIT */
/*
 * convert — see convert.h.
 */
#include "convert.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/macro.h"

/* ---- field copies
 *
 * Most fields of a message are one field of a daemon struct, taken as it is or nearly: a row
 * of a FieldCopy table says which, and how (FieldKind; a table lists its rows by kind), and
 * convert_fields() copies the rows.
 * FIELD() checks at compile time that the two fields' types are what the kind copies, so a
 * struct that changes cannot be copied wrong in silence. What is computed (a name looked up,
 * an enum translated) stays code next to the table. */

typedef enum FieldKind {
    FIELD_SAME,   /* the same type on both sides: copied */
    FIELD_BOOL,   /* bool -> protobuf_c_boolean */
    FIELD_STRING, /* a (const) char * -> char *: the message borrows the string */
    FIELD_ARRAY,  /* a char array -> char *: the message borrows the array */
    FIELD_STATE,  /* DeviceState -> the API's DeviceState (convert_state_to_api) */
    FIELD_ERRNO,  /* 0 or a negative errno (int) -> the API's positive errno_value */
} FieldKind;

typedef struct FieldCopy {
    size_t to;      /* offset of the field in the message */
    size_t from;    /* offset of the field in the daemon struct */
    size_t size;    /* of the message's field, for FIELD_SAME */
    FieldKind kind;
} FieldCopy;

#define TYPE_OF(T, f) __typeof__(((T *) 0)->f)
#define TYPE_IS(T, f, type) __builtin_types_compatible_p(TYPE_OF(T, f), type)
/* Whether message field M.mf can be copied from S.sf by each kind. */
#define FITS_SAME(M, mf, S, sf) __builtin_types_compatible_p(TYPE_OF(M, mf), TYPE_OF(S, sf))
#define FITS_BOOL(M, mf, S, sf) (TYPE_IS(M, mf, protobuf_c_boolean) && TYPE_IS(S, sf, bool))
#define FITS_STRING(M, mf, S, sf)                                                                 \
    (TYPE_IS(M, mf, char *) && (TYPE_IS(S, sf, const char *) || TYPE_IS(S, sf, char *)))
#define FITS_ARRAY(M, mf, S, sf)                                                                  \
    (TYPE_IS(M, mf, char *) && TYPE_IS(S, sf, char[sizeof(TYPE_OF(S, sf))]))
#define FITS_STATE(M, mf, S, sf)                                                                  \
    (TYPE_IS(M, mf, VfioMigd__V1__DeviceState) && TYPE_IS(S, sf, DeviceState))
#define FITS_ERRNO(M, mf, S, sf) (TYPE_IS(M, mf, int32_t) && TYPE_IS(S, sf, int))

/* The row copying S.sf into message field M.mf by FIELD_<how>. */
#define FIELD(how, M, mf, S, sf)                                                                 \
    {                                                                                              \
        .to = offsetof(M, mf), .from = offsetof(S, sf), .size = sizeof(TYPE_OF(M, mf)),           \
        .kind = FIELD_##how + 0 * sizeof(struct {                                                 \
            static_assert(FITS_##how(M, mf, S, sf),                                              \
                          #M "." #mf " is no " #how " of " #S "." #sf);                            \
            int unused_;                                                                           \
        }),                                                                                        \
    }

/* Copies the @n rows of @fields from the daemon struct @from into the message @msg. */
static void
convert_fields(void *msg, const void *from, const FieldCopy *fields, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char *to = (char *) msg + fields[i].to;
        const char *src = (const char *) from + fields[i].from;

        switch (fields[i].kind) {
        case FIELD_SAME:
            memcpy(to, src, fields[i].size);
            break;
        case FIELD_BOOL:
            *(protobuf_c_boolean *) to = *(const bool *) src;
            break;
        case FIELD_STRING:
            *(char **) to = *(char *const *) src;
            break;
        case FIELD_ARRAY:
            *(char **) to = (char *) src;
            break;
        case FIELD_STATE:
            *(VfioMigd__V1__DeviceState *) to = convert_state_to_api(*(const DeviceState *) src);
            break;
        case FIELD_ERRNO:
            *(int32_t *) to = -*(const int *) src;
            break;
        }
    }
}

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

#define DEV(how, mf, sf) FIELD(how, VfioMigd__V1__Device, mf, Device, sf)
static const FieldCopy device_fields[] = {
    DEV(STRING, id, id),
    DEV(STATE, state, state),
    DEV(SAME, migration_flags, info.mig_flags), DEV(SAME, data_size, data_size),
    DEV(SAME, holder_pid, vmm_pid),
    DEV(BOOL, migratable, info.migratable),
    DEV(ARRAY, holder_comm, vmm_comm),
};
#undef DEV

#define STATS(how, mf, sf) FIELD(how, VfioMigd__V1__DeviceStats, mf, Device, sf)
static const FieldCopy device_stats_fields[] = {
    STATS(SAME, transitions, stats.transitions), STATS(SAME, arcs, stats.arcs),
    STATS(SAME, failed_arcs, stats.failed_arcs), STATS(SAME, resets, stats.resets),
    STATS(SAME, bytes_saved, stats.bytes_saved), STATS(SAME, bytes_restored, stats.bytes_restored),
    STATS(ARRAY, last_error, last_error),
};
#undef STATS

void
convert_device(const Device *d, DeviceMsg *out)
{
    VfioMigd__V1__Device *m = &out->msg;
    const char *busy = device_busy_operation(d);

    vfio_migd__v1__device__init(m);
    vfio_migd__v1__device_stats__init(&out->stats);
    convert_fields(m, d, device_fields, ELEMENTSOF(device_fields));
    convert_fields(&out->stats, d, device_stats_fields, ELEMENTSOF(device_stats_fields));
    m->backend = (char *) device_backend_name(d);
    m->busy = busy != NULL;
    m->busy_operation = (char *) (busy ? busy : "");
    m->data_session_open = d->session != NULL;
    m->group = d->group ? d->group->name : "";
    /* AuthzIds holds unsigned ids, the message uint32_t ones: the same type on Linux. */
    static_assert(sizeof(d->vmm_allow.users.ids[0]) == sizeof(*m->vmm_uids), "id width");
    m->n_vmm_uids = d->vmm_allow.users.n;
    m->vmm_uids = (uint32_t *) d->vmm_allow.users.ids;
    m->n_vmm_gids = d->vmm_allow.groups.n;
    m->vmm_gids = (uint32_t *) d->vmm_allow.groups.ids;
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

#define ARC(how, mf, sf) FIELD(how, VfioMigd__V1__Arc, mf, ArcRecord, sf)
static const FieldCopy arc_fields[] = {
    ARC(STATE, from, from), ARC(STATE, to, to),
    ARC(BOOL, opens_data_session, opened_session), ARC(BOOL, reset, reset),
    ARC(SAME, start_us, start_us), ARC(SAME, duration_us, duration_us),
    ARC(ERRNO, errno_value, error),
};
#undef ARC

/* The @n arcs of @in into @arcs, with their pointers in @ptrs (room for @n each). */
static void
convert_arc_list(const ArcRecord *in, unsigned n, VfioMigd__V1__Arc *arcs,
                 VfioMigd__V1__Arc **ptrs)
{
    for (unsigned i = 0; i < n; i++) {
        vfio_migd__v1__arc__init(&arcs[i]);
        convert_fields(&arcs[i], &in[i], arc_fields, ELEMENTSOF(arc_fields));
        ptrs[i] = &arcs[i];
    }
}

void
convert_arcs(const ArcRecord *arcs, unsigned n, ArcsMsg *out)
{
    out->n = n;
    convert_arc_list(arcs, n, out->arcs, out->ptrs);
}

#define RESULT(how, mf, sf) FIELD(how, VfioMigd__V1__GroupDeviceResult, mf, GroupDeviceRun, sf)
static const FieldCopy device_result_fields[] = {
    RESULT(STATE, start_state, start_state), RESULT(STATE, state, state),
    RESULT(SAME, elapsed_us, end_us),
    RESULT(ARRAY, error, message), RESULT(ARRAY, failed_arc, failed_arc),
    RESULT(ERRNO, errno_value, error),
};
#undef RESULT

static void
devices_store_done(DevicesStore *s)
{
    free(s->results);
    free(s->result_ptrs);
    free(s->arcs);
    free(s->arc_ptrs);
    *s = (DevicesStore){0};
}

/* Room for @n per-device messages of @item_size bytes, @n_arcs arcs and their pointers; one
 * of each at least, so that NULL means out of memory. 0, or -ENOMEM and nothing to free. */
static int
devices_store_new(DevicesStore *s, size_t n, size_t item_size, size_t n_arcs)
{
    *s = (DevicesStore){0};
    s->results = calloc(n ? n : 1, item_size);
    s->result_ptrs = calloc(n ? n : 1, sizeof(void *));
    s->arcs = calloc(n_arcs ? n_arcs : 1, sizeof(*s->arcs));
    s->arc_ptrs = calloc(n_arcs ? n_arcs : 1, sizeof(*s->arc_ptrs));
    if (!s->results || !s->result_ptrs || !s->arcs || !s->arc_ptrs) {
        devices_store_done(s);
        return -ENOMEM;
    }
    return 0;
}

/* One device's part of a group run; its arcs go into @arcs/@arc_ptrs (room for dr->n_arcs). */
static void
convert_device_result(const GroupDeviceRun *dr, VfioMigd__V1__GroupDeviceResult *r,
                      VfioMigd__V1__Arc *arcs, VfioMigd__V1__Arc **arc_ptrs)
{
    vfio_migd__v1__group_device_result__init(r);
    convert_fields(r, dr, device_result_fields, ELEMENTSOF(device_result_fields));
    r->id = dr->device->id;
    convert_arc_list(dr->arcs, dr->n_arcs, arcs, arc_ptrs);
    r->n_arcs = dr->n_arcs;
    r->arcs = arc_ptrs;
}

#define RUN(how, mf, sf) FIELD(how, VfioMigd__V1__GroupTransitionResponse, mf, GroupRun, sf)
static const FieldCopy group_run_fields[] = {
    RUN(STATE, target, target),
    RUN(SAME, elapsed_us, elapsed_us), RUN(SAME, phases, phases),
    RUN(SAME, started_unix_ms, started_unix_ms),
    RUN(BOOL, rolled_back, rolled_back), RUN(BOOL, rollback_failed, rollback_failed),
    RUN(BOOL, forced, force), RUN(BOOL, reset, reset),
    RUN(ARRAY, error, error),
};
#undef RUN

int
convert_group_run(const GroupRun *run, GroupRunMsg *out)
{
    VfioMigd__V1__GroupTransitionResponse *m = &out->msg;
    DevicesStore *st = &out->store;
    DeviceState common = group_common_state(run);
    size_t total = 0, used = 0;

    *out = (GroupRunMsg){0};
    vfio_migd__v1__group_transition_response__init(m);
    for (size_t i = 0; i < run->n_devices; i++) {
        total += run->devices[i].n_arcs;
    }
    if (devices_store_new(st, run->n_devices, sizeof(*st->results), total) < 0) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < run->n_devices; i++) {
        convert_device_result(&run->devices[i], &st->results[i], st->arcs + used,
                              st->arc_ptrs + used);
        st->result_ptrs[i] = &st->results[i];
        used += run->devices[i].n_arcs;
    }
    convert_fields(m, run, group_run_fields, ELEMENTSOF(group_run_fields));
    m->name = run->group->name;
    m->state = common < 0 ? VFIO_MIGD__V1__DEVICE_STATE__DEVICE_STATE_UNSPECIFIED
                          : convert_state_to_api(common);
    m->n_devices = run->n_devices;
    m->devices = st->result_ptrs;
    return 0;
}

void
convert_group_run_done(GroupRunMsg *m)
{
    devices_store_done(&m->store);
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

#define PROGRESS(how, f)                                                                         \
    FIELD(how, VfioMigd__V1__DeviceProgress, f, MigrationDeviceSnapshot, f)
static const FieldCopy progress_fields[] = {
    PROGRESS(STRING, id), PROGRESS(STRING, error),
    PROGRESS(STATE, state),
    PROGRESS(SAME, bytes), PROGRESS(SAME, precopy_bytes), PROGRESS(SAME, stopcopy_bytes),
    PROGRESS(SAME, initial_bytes), PROGRESS(SAME, dirty_bytes), PROGRESS(SAME, rate),
    PROGRESS(SAME, estimate_remaining),
    PROGRESS(BOOL, done),
};
#undef PROGRESS

/* One device's progress; its arcs go into @arcs/@ptrs (room for d->n_arcs). */
static void
convert_progress(const MigrationDeviceSnapshot *d, VfioMigd__V1__DeviceProgress *p,
                 VfioMigd__V1__Arc *arcs, VfioMigd__V1__Arc **ptrs)
{
    vfio_migd__v1__device_progress__init(p);
    convert_fields(p, d, progress_fields, ELEMENTSOF(progress_fields));
    convert_arc_list(d->arcs, d->n_arcs, arcs, ptrs);
    p->n_arcs = d->n_arcs;
    p->arcs = ptrs;
}

#define OPTION(f) FIELD(SAME, VfioMigd__V1__MigrationOptions, f, MigrationOptions, f)
static const FieldCopy option_fields[] = {
    OPTION(max_precopy_ms), OPTION(downtime_target_ms), OPTION(timeout_ms), OPTION(channels),
    OPTION(bandwidth_limit), OPTION(stopcopy_bandwidth_limit),
};
#undef OPTION

static void
convert_options(const MigrationOptions *o, VfioMigd__V1__MigrationOptions *m)
{
    vfio_migd__v1__migration_options__init(m);
    convert_fields(m, o, option_fields, ELEMENTSOF(option_fields));
    m->precopy = o->precopy ? VFIO_MIGD__V1__PRECOPY_MODE__PRECOPY_AUTO
                            : VFIO_MIGD__V1__PRECOPY_MODE__PRECOPY_OFF;
    m->switchover = o->manual_switchover ? VFIO_MIGD__V1__SWITCHOVER_MODE__SWITCHOVER_MANUAL
                                         : VFIO_MIGD__V1__SWITCHOVER_MODE__SWITCHOVER_AUTO;
    m->tls = o->tls == TLS_MODE_OFF    ? VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_OFF
             : o->tls == TLS_MODE_CERT ? VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_CERT
                                       : VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_PSK;
}

#define MIGRATION(how, mf, sf) FIELD(how, VfioMigd__V1__Migration, mf, MigrationSnapshot, sf)
static const FieldCopy migration_fields[] = {
    MIGRATION(STRING, id, id), MIGRATION(STRING, group, name), MIGRATION(STRING, state, state),
    MIGRATION(STRING, peer, peer), MIGRATION(STRING, error, error),
    MIGRATION(STRING, switchover_reason, switchover_reason),
    MIGRATION(SAME, bytes, bytes), MIGRATION(SAME, estimate_remaining, estimate_remaining),
    MIGRATION(SAME, rate, rate), MIGRATION(SAME, elapsed_us, elapsed_us),
    MIGRATION(SAME, precopy_us, precopy_us), MIGRATION(SAME, downtime_us, downtime_us),
    MIGRATION(SAME, started_unix_ms, started_unix_ms),
    MIGRATION(BOOL, precopy_converged, precopy_converged),
    MIGRATION(BOOL, auto_resume, auto_resume),
};
#undef MIGRATION

int
convert_migration(const MigrationSnapshot *s, MigrationMsg *out)
{
    VfioMigd__V1__Migration *m = &out->msg;
    DevicesStore *st = &out->store;
    size_t total = 0, used = 0;

    *out = (MigrationMsg){0};
    for (size_t i = 0; i < s->n_devices; i++) {
        total += s->devices[i].n_arcs;
    }
    if (devices_store_new(st, s->n_devices, sizeof(*st->progress), total) < 0) {
        return -ENOMEM;
    }
    vfio_migd__v1__migration__init(m);
    for (size_t i = 0; i < s->n_devices; i++) {
        convert_progress(&s->devices[i], &st->progress[i], st->arcs + used, st->arc_ptrs + used);
        used += s->devices[i].n_arcs;
        st->progress_ptrs[i] = &st->progress[i];
    }
    convert_options(&s->options, &out->opts);
    convert_fields(m, s, migration_fields, ELEMENTSOF(migration_fields));
    /* The API's enums number these as the daemon does (migration.h). */
    m->role = (VfioMigd__V1__MigrationRole) s->role;
    m->subject = (VfioMigd__V1__MigrationSubject) s->subject;
    m->phase = (VfioMigd__V1__MigrationPhase) s->phase;
    m->options = &out->opts;
    m->n_devices = s->n_devices;
    m->devices = st->progress_ptrs;
    return 0;
}

void
convert_migration_done(MigrationMsg *m)
{
    devices_store_done(&m->store);
    *m = (MigrationMsg){0};
}
