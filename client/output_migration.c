/* SPDX-License-Identifier: MIT */
/*
 * output_migration — see output_migration.h. Protocol enums become names from the .proto's
 * own value names (a number this client does not know shows as "unknown"); sizes, rates and durations
 * go through output.h, so they look the same as everywhere else.
 */
#include "output_migration.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "output.h"
#include "util/macro.h"
#include "util/strutil.h"

#define MIGRATION_STATE_ACTIVE "active"
#define MIGRATION_STATE_COMPLETED "completed"

typedef VfioMigd__V1__Migration Migration;
typedef VfioMigd__V1__DeviceProgress DeviceProgress;

/* ---- names */

/* The names users see for the values of one .proto enum: a value's name in the .proto after
 * the enum's prefix, in lower case (MIGRATION_PHASE_ROLLING_BACK: "rolling_back"), so the
 * CLI's words are the API's and a value the API adds is named with no change here. Each name
 * is built on first use (the CLI is single-threaded). */
typedef struct EnumNames {
    const ProtobufCEnumDescriptor *desc;
    const char *prefix; /* of every value's name in the .proto */
    char names[16][24]; /* by value; "" until built. More than the enums here have */
} EnumNames;

static EnumNames phase_names = {.desc = &vfio_migd__v1__migration_phase__descriptor,
                                .prefix = "MIGRATION_PHASE_"};
static EnumNames role_names = {.desc = &vfio_migd__v1__migration_role__descriptor,
                               .prefix = "MIGRATION_ROLE_"};
static EnumNames subject_names = {.desc = &vfio_migd__v1__migration_subject__descriptor,
                                  .prefix = "MIGRATION_SUBJECT_"};

/* @value's name in @t; "unknown" for 0 (UNSPECIFIED, ANY) and for a number this client does
 * not know. */
static const char *
enum_name(EnumNames *t, int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(t->desc, value);
    size_t n = strlen(t->prefix);

    if (value <= 0 || (size_t) value >= ELEMENTSOF(t->names) || !v ||
        strncmp(v->name, t->prefix, n) != 0) {
        return "unknown";
    }
    if (!t->names[value][0]) {
        char *name = t->names[value];

        (void) snprintf(name, sizeof(t->names[value]), "%s", v->name + n);
        for (char *c = name; *c; c++) {
            *c = (char) tolower((unsigned char) *c);
        }
    }
    return t->names[value];
}

/* --tls's words, by MigrationTls; DEFAULT appears in requests only (a migration's options
 * are resolved), never printed. */
const char *const output_migration_tls_names[4] = {
    [VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_DEFAULT] = "default",
    [VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_PSK] = "psk",
    [VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_OFF] = "off",
    [VFIO_MIGD__V1__MIGRATION_TLS__MIGRATION_TLS_CERT] = "cert",
};

/* Option values as users type them; the index is the protocol's number. */
const char *const output_migration_precopy_names[2] = {
    [VFIO_MIGD__V1__PRECOPY_MODE__PRECOPY_AUTO] = "auto",
    [VFIO_MIGD__V1__PRECOPY_MODE__PRECOPY_OFF] = "off",
};
const char *const output_migration_switchover_names[2] = {
    [VFIO_MIGD__V1__SWITCHOVER_MODE__SWITCHOVER_AUTO] = "auto",
    [VFIO_MIGD__V1__SWITCHOVER_MODE__SWITCHOVER_MANUAL] = "manual",
};

/* names[v], or "unknown" for a number this client does not know. */
static const char *
name_of(const char *const *names, size_t n, int v)
{
    return v >= 0 && (size_t) v < n && names[v] ? names[v] : "unknown";
}

const char *
output_migration_tls_name(int tls)
{
    return name_of(output_migration_tls_names, ELEMENTSOF(output_migration_tls_names), tls);
}

#define PHASE_NAME(p) enum_name(&phase_names, (int) (p))
#define ROLE_NAME(r) enum_name(&role_names, (int) (r))
#define SUBJECT_NAME(v) enum_name(&subject_names, (int) (v))
#define PRECOPY_NAME(v)                                                                            \
    name_of(output_migration_precopy_names, ELEMENTSOF(output_migration_precopy_names), (int) (v))
#define SWITCHOVER_NAME(v)                                                                         \
    name_of(output_migration_switchover_names, ELEMENTSOF(output_migration_switchover_names),      \
            (int) (v))

const char *
output_migration_phase(VfioMigd__V1__MigrationPhase phase)
{
    return PHASE_NAME(phase);
}

const char *
output_migration_role(VfioMigd__V1__MigrationRole role)
{
    return ROLE_NAME(role);
}

bool
output_migration_is_active(const Migration *m)
{
    return strcmp(m->state, MIGRATION_STATE_ACTIVE) == 0;
}

bool
output_migration_is_completed(const Migration *m)
{
    return strcmp(m->state, MIGRATION_STATE_COMPLETED) == 0;
}

/* ---- JSON */

static json_object *
json_device_progress(const DeviceProgress *d)
{
    json_object *o = json_object_new_object();

    OUTPUT_JSON_FIELDS(o, d, "id");
    output_json_set(o, "state", output_json_state(d->state));
    OUTPUT_JSON_FIELDS(o, d, "bytes", "precopy_bytes", "stopcopy_bytes", "initial_bytes",
                       "dirty_bytes");
    output_json_set(o, "rate", output_json_rate(d->rate));
    OUTPUT_JSON_FIELDS(o, d, "estimate_remaining", "done", "error");
    return o;
}

/* The options as the daemon reports them; 0 means "the daemon's default" (migrations.proto). */
static json_object *
json_options(const VfioMigd__V1__MigrationOptions *opt)
{
    json_object *o = json_object_new_object();

    output_json_set(o, "precopy", json_object_new_string(PRECOPY_NAME(opt->precopy)));
    output_json_set(o, "switchover", json_object_new_string(SWITCHOVER_NAME(opt->switchover)));
    OUTPUT_JSON_FIELDS(o, opt, "max_precopy_ms", "downtime_target_ms", "bandwidth_limit",
                       "stopcopy_bandwidth_limit", "timeout_ms", "channels");
    output_json_set(o, "tls", json_object_new_string(output_migration_tls_name(opt->tls)));
    return o;
}

/* The one JSON form of a migration, used by every command (docs/cli.md). */
json_object *
output_migration_json(const Migration *m)
{
    json_object *o = json_object_new_object();

    OUTPUT_JSON_FIELDS(o, m, "id");
    output_json_set(o, "role", json_object_new_string(ROLE_NAME(m->role)));
    output_json_set(o, "subject", json_object_new_string(SUBJECT_NAME(m->subject)));
    OUTPUT_JSON_FIELDS(o, m, "group");
    output_json_set(o, "phase", json_object_new_string(PHASE_NAME(m->phase)));
    OUTPUT_JSON_FIELDS(o, m, "state", "peer", "bytes", "estimate_remaining");
    output_json_set(o, "rate", output_json_rate(m->rate));
    output_json_set(o, "elapsed_ms", output_json_ms(m->elapsed_us));
    output_json_set(o, "precopy_ms", output_json_ms(m->precopy_us));
    output_json_set(o, "downtime_ms", output_json_ms(m->downtime_us));
    if (m->error[0]) {
        OUTPUT_JSON_FIELDS(o, m, "error");
    }
    OUTPUT_JSON_FIELDS(o, m, "switchover_reason", "precopy_converged", "auto_resume",
                       "started_unix_ms");
    if (m->options) {
        output_json_set(o, "options", json_options(m->options));
    }
    output_json_set(o, "devices",
                    OUTPUT_JSON_ARRAY(m->devices, m->n_devices, json_device_progress));
    return o;
}

/* ---- text */

/* "120 MiB / 340 MiB": moved, and moved plus the daemon's estimate of what remains. */
char *
output_migration_moved(const Migration *m, char *buf, size_t size)
{
    char moved[32], total[32];

    (void) snprintf(buf, size, "%s / %s", strutil_format_bytes(m->bytes, moved, sizeof(moved)),
                    strutil_format_bytes(m->bytes + m->estimate_remaining, total, sizeof(total)));
    return buf;
}

/* Percentage of moved in moved + remaining; 0 while nothing is known. */
unsigned
output_migration_percent(const Migration *m)
{
    uint64_t total = m->bytes + m->estimate_remaining;

    return total ? (unsigned) ((double) m->bytes * 100.0 / (double) total) : 0;
}

/* Every device's progress: all the columns for a migration in flight (job), the data moved
 * and the outcome for one that ended. */
int
output_migration_devices(const Migration *m, bool in_flight)
{
    _cleanup_(output_table_freep) OutputTable *t = NULL;

    t = in_flight ? output_table_new(10, "DEVICE", "STATE", "BYTES", "PRE-COPY", "STOP-COPY",
                                     "INITIAL", "DIRTY", "RATE", "REMAINING", "ERROR")
                  : output_table_new(6, "DEVICE", "STATE", "BYTES", "PRE-COPY", "STOP-COPY",
                                     "ERROR");
    if (!t) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < m->n_devices; i++) {
        const DeviceProgress *d = m->devices[i];
        char bytes[32], pre[32], stop[32], initial[32], dirty[32], rate[40], rem[32];
        const char *error = d->error[0] ? d->error : "-";
        int r;

        (void) strutil_format_bytes(d->bytes, bytes, sizeof(bytes));
        (void) strutil_format_bytes(d->precopy_bytes, pre, sizeof(pre));
        (void) strutil_format_bytes(d->stopcopy_bytes, stop, sizeof(stop));
        if (in_flight) {
            r = output_table_add(t, d->id, output_state_name(d->state), bytes, pre, stop,
                                 strutil_format_bytes(d->initial_bytes, initial, sizeof(initial)),
                                 strutil_format_bytes(d->dirty_bytes, dirty, sizeof(dirty)),
                                 output_rate(d->rate, rate, sizeof(rate)),
                                 d->done ? "done"
                                         : strutil_format_bytes(d->estimate_remaining, rem,
                                                                sizeof(rem)),
                                 error);
        } else {
            r = output_table_add(t, d->id, output_state_name(d->state), bytes, pre, stop, error);
        }
        if (r < 0) {
            return r;
        }
    }
    output_table_print(t, stdout);
    return 0;
}

/* "default" for the 0 that asks for the daemon's own value. */
static const char *
format_option_ms(uint32_t ms, char *buf, size_t size)
{
    if (ms == 0) {
        return "default";
    }
    return output_duration((uint64_t) ms * 1000, buf, size);
}

/* A cap as the options line says it: "100.0 MiB/s" or "unlimited". */
static const char *
format_cap(uint64_t bytes_per_second, char *buf, size_t size)
{
    if (bytes_per_second) {
        return output_rate((double) bytes_per_second, buf, size);
    }
    (void) snprintf(buf, size, "unlimited");
    return buf;
}

static void
print_options(const VfioMigd__V1__MigrationOptions *opt)
{
    char maxpre[32], downtime[32], timeout[32], bw[40], stop_bw[40], chans[16] = "automatic";

    if (opt->channels) {
        (void) snprintf(chans, sizeof(chans), "%u", opt->channels);
    }
    output_field("options", "precopy %s, switchover %s, max pre-copy %s, downtime target %s, "
                 "bandwidth %s (stop-copy %s), peer timeout %s, channels per device %s, tls %s",
                 PRECOPY_NAME(opt->precopy),
                 SWITCHOVER_NAME(opt->switchover),
                 format_option_ms(opt->max_precopy_ms, maxpre, sizeof(maxpre)),
                 format_option_ms(opt->downtime_target_ms, downtime, sizeof(downtime)),
                 format_cap(opt->bandwidth_limit, bw, sizeof(bw)),
                 format_cap(opt->stopcopy_bandwidth_limit, stop_bw, sizeof(stop_bw)),
                 format_option_ms(opt->timeout_ms, timeout, sizeof(timeout)), chans,
                 output_migration_tls_name(opt->tls));
}

/* "key: value" lines and the device table (job, switchover, cancel). */
int
output_migration_fields(const Migration *m)
{
    char buf[64], started[64];
    time_t t = (time_t) (m->started_unix_ms / 1000);
    struct tm tm;

    output_field("id", "%s", m->id);
    output_field("role", "%s", ROLE_NAME(m->role));
    output_field("group", "%s", m->group);
    output_field("phase", "%s", PHASE_NAME(m->phase));
    output_field("state", "%s", m->state);
    output_field("peer", "%s", m->peer[0] ? m->peer : "-");
    if (m->started_unix_ms && localtime_r(&t, &tm)) {
        (void) strftime(started, sizeof(started), "%Y-%m-%d %H:%M:%S %z", &tm);
        output_field("started", "%s", started);
    }
    output_field("bytes", "%s (%llu bytes)", strutil_format_bytes(m->bytes, buf, sizeof(buf)),
                 (unsigned long long) m->bytes);
    output_field("remaining", "%s (estimate)", strutil_format_bytes(m->estimate_remaining, buf,
                                                             sizeof(buf)));
    output_field("rate", "%s", output_rate(m->rate, buf, sizeof(buf)));
    output_field("elapsed", "%s", output_duration(m->elapsed_us, buf, sizeof(buf)));
    output_field("pre-copy", "%s",
                 m->precopy_us ? output_duration(m->precopy_us, buf, sizeof(buf)) : "-");
    output_field("downtime", "%s",
                 m->downtime_us ? output_duration(m->downtime_us, buf, sizeof(buf)) : "-");
    if (m->switchover_reason[0]) {
        output_field("switchover", "%s", m->switchover_reason);
    }
    if (m->role == VFIO_MIGD__V1__MIGRATION_ROLE__MIGRATION_ROLE_DESTINATION) {
        output_field("auto resume", "%s", m->auto_resume ? "yes" : "no");
    }
    if (m->options) {
        print_options(m->options);
    }
    if (m->error[0]) {
        output_field("error", "%s", m->error);
    }
    if (m->n_devices == 0) {
        return 0;
    }
    putchar('\n');
    return output_migration_devices(m, /* in_flight= */ output_migration_is_active(m));
}

/* How a finished migration ended, for a line of text: "completed: 340 MiB in 2.31 s
 * (pre-copy 1.20 s, downtime 120 ms)", "failed after 1.20 s: <error>". */
char *
output_migration_outcome(const Migration *m, char *buf, size_t size)
{
    char bytes[32], elapsed[32], pre[32], down[32];

    (void) output_duration(m->elapsed_us, elapsed, sizeof(elapsed));
    if (output_migration_is_completed(m)) {
        (void) snprintf(buf, size, "completed: %s in %s (pre-copy %s, downtime %s)",
                        strutil_format_bytes(m->bytes, bytes, sizeof(bytes)), elapsed,
                        output_duration(m->precopy_us, pre, sizeof(pre)),
                        output_duration(m->downtime_us, down, sizeof(down)));
    } else if (strcmp(PHASE_NAME(m->phase), m->state) == 0) {
        (void) snprintf(buf, size, "%s after %s%s%s", m->state, elapsed,
                        m->error[0] ? ": " : "", m->error);
    } else {
        (void) snprintf(buf, size, "%s after %s in phase %s%s%s", m->state, elapsed,
                        PHASE_NAME(m->phase), m->error[0] ? ": " : "", m->error);
    }
    return buf;
}
