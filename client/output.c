/* SPDX-License-Identifier: MIT */
/*
 * output — see output.h. Protocol states are the kernel's values plus one (devices.proto),
 * so every state goes through output_state_name(), which undoes that and asks core/fsm for
 * the name; nothing else here knows about the numbering. JSON keys are part of the CLI's
 * contract (docs/cli.md): add keys freely, never rename or drop one.
 */

#include "output.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/fsm.h"
#include "util/strutil.h"

/* Width of the key column of "key: value" listings: fits "bytes restored:" and most
 * back-end property names; longer keys push their own value right. */
#define OUTPUT_FIELD_WIDTH 18

struct OutputTable {
    unsigned n_columns;
    size_t n_rows;   /* including the header */
    char **cells;    /* n_rows * n_columns strings, row-major */
};

/* ---- names and numbers */

const char *
output_state_name(VfioMigd__V1__DeviceState s)
{
    const char *name;

    if ((int) s <= 0) {
        return "unknown";
    }
    name = fsm_state_name((DeviceState) ((int) s - 1));
    return name ? name : "unknown";
}

char *
output_flags_string(uint32_t flags, char *buf, size_t size)
{
    if (flags == 0) {
        (void) snprintf(buf, size, "-");
        return buf;
    }
    return fsm_flags_to_string(flags, buf, (unsigned) size);
}

char *
output_duration(uint64_t us, char *buf, size_t size)
{
    if (us < 1000) {
        (void) snprintf(buf, size, "%llu us", (unsigned long long) us);
    } else if (us < 1000000) {
        (void) snprintf(buf, size, "%.1f ms", (double) us / 1e3);
    } else if (us < 60 * UINT64_C(1000000)) {
        (void) snprintf(buf, size, "%.2f s", (double) us / 1e6);
    } else {
        uint64_t s = us / 1000000;

        if (s < 3600) {
            (void) snprintf(buf, size, "%llum %02llus", (unsigned long long) (s / 60),
                            (unsigned long long) (s % 60));
        } else if (s < 86400) {
            (void) snprintf(buf, size, "%lluh %02llum", (unsigned long long) (s / 3600),
                            (unsigned long long) (s % 3600 / 60));
        } else {
            (void) snprintf(buf, size, "%llud %02lluh", (unsigned long long) (s / 86400),
                            (unsigned long long) (s % 86400 / 3600));
        }
    }
    return buf;
}

/* A rate from the daemon in whole bytes per second: nobody needs the fraction, and a value
 * that is not a sane number (NaN, negative, beyond uint64) shows as 0. */
static uint64_t
rate_bytes(double rate)
{
    return isfinite(rate) && rate > 0 && rate < 1.8e19 ? (uint64_t) (rate + 0.5) : 0;
}

char *
output_rate(double rate, char *buf, size_t size)
{
    char b[32];

    (void) snprintf(buf, size, "%s/s", strutil_format_bytes(rate_bytes(rate), b, sizeof(b)));
    return buf;
}

void
output_arc_chain(FILE *f, VfioMigd__V1__Arc *const *arcs, size_t n_arcs)
{
    if (n_arcs == 0) {
        fputs("-", f);
        return;
    }
    fputs(output_state_name(arcs[0]->from), f);
    for (size_t i = 0; i < n_arcs; i++) {
        if (i > 0 && arcs[i]->from != arcs[i - 1]->to) {
            fprintf(f, ", %s", output_state_name(arcs[i]->from));
        }
        fprintf(f, " -> %s", output_state_name(arcs[i]->to));
    }
}

/* ---- tables */

static int
table_append(OutputTable *t, va_list ap)
{
    char **cells = realloc(t->cells, (t->n_rows + 1) * t->n_columns * sizeof(char *));
    char **row;

    if (!cells) {
        return -ENOMEM;
    }
    t->cells = cells;
    row = cells + t->n_rows * t->n_columns;
    for (unsigned i = 0; i < t->n_columns; i++) {
        const char *s = va_arg(ap, const char *);

        row[i] = strdup(s ? s : "");
    }
    t->n_rows++;
    for (unsigned i = 0; i < t->n_columns; i++) {
        if (!row[i]) {
            return -ENOMEM; /* the row is complete (NULL cells), output_table_free copes */
        }
    }
    return 0;
}

OutputTable *
output_table_new(unsigned n_columns, ...)
{
    _cleanup_(output_table_freep) OutputTable *t = NULL;
    va_list ap;
    int r;

    t = calloc(1, sizeof(*t));
    if (!t) {
        return NULL;
    }
    t->n_columns = n_columns;
    va_start(ap, n_columns);
    r = table_append(t, ap);
    va_end(ap);
    if (r < 0) {
        return NULL;
    }
    return TAKE_PTR(t);
}

int
output_table_add(OutputTable *t, ...)
{
    va_list ap;
    int r;

    va_start(ap, t);
    r = table_append(t, ap);
    va_end(ap);
    return r;
}

/* --no-headers: one setting for every table of the invocation (cli.c sets it). */
static bool table_headers = true;

void
output_set_table_headers(bool on)
{
    table_headers = on;
}

void
output_table_print(const OutputTable *t, FILE *f)
{
    _cleanup_free_ size_t *width = calloc(t->n_columns, sizeof(size_t));
    size_t first = table_headers ? 0 : 1; /* without the header, it sets no width either */

    if (!width) {
        return;
    }
    for (size_t i = first * t->n_columns; i < t->n_rows * t->n_columns; i++) {
        width[i % t->n_columns] = MAX(width[i % t->n_columns], strlen(t->cells[i]));
    }
    for (size_t row = first; row < t->n_rows; row++) {
        char *const *cells = t->cells + row * t->n_columns;

        for (unsigned col = 0; col + 1 < t->n_columns; col++) {
            fprintf(f, "%-*s  ", (int) width[col], cells[col]);
        }
        fprintf(f, "%s\n", cells[t->n_columns - 1]);
    }
}

OutputTable *
output_table_free(OutputTable *t)
{
    if (!t) {
        return NULL;
    }
    for (size_t i = 0; i < t->n_rows * t->n_columns; i++) {
        free(t->cells[i]);
    }
    free(t->cells);
    free(t);
    return NULL;
}

void
output_field(const char *key, const char *fmt, ...)
{
    va_list ap;

    printf("%s:%*s", key, (int) MAX(1, OUTPUT_FIELD_WIDTH - (int) strlen(key)), "");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

/* ---- JSON */

void
output_json_set(json_object *o, const char *key, json_object *v)
{
    if (!o) {
        json_object_put(v);
        return;
    }
    json_object_object_add(o, key, v);
}

/* A scalar field of a message as JSON, by its .proto type; NULL for a type no printer needs. */
static json_object *
json_scalar(const ProtobufCFieldDescriptor *f, const void *msg)
{
    const void *p = (const char *) msg + f->offset;

    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
        return json_object_new_string(*(const char *const *) p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_object_new_boolean(*(const protobuf_c_boolean *) p);
    case PROTOBUF_C_TYPE_INT32:
        return json_object_new_int(*(const int32_t *) p);
    case PROTOBUF_C_TYPE_UINT32:
        return json_object_new_uint64(*(const uint32_t *) p);
    case PROTOBUF_C_TYPE_UINT64:
        return json_object_new_uint64(*(const uint64_t *) p);
    default:
        return NULL;
    }
}

void
output_json_set_fields(json_object *o, const void *msg, const char *const *names)
{
    const ProtobufCMessageDescriptor *desc = ((const ProtobufCMessage *) msg)->descriptor;

    for (size_t i = 0; names[i]; i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(desc, names[i]);
        json_object *v = f && f->label == PROTOBUF_C_LABEL_NONE ? json_scalar(f, msg) : NULL;

        /* The names are the printers' constants: one that is not a scalar is our bug. */
        assert(v);
        output_json_set(o, names[i], v);
    }
}

void
output_json_append(json_object *a, json_object *v)
{
    if (!a) {
        json_object_put(v);
        return;
    }
    json_object_array_add(a, v);
}

json_object *
output_json_state(VfioMigd__V1__DeviceState s)
{
    return json_object_new_string(output_state_name(s));
}

/* Each known bit by the name core/fsm gives it alone, lowest first (the order of
 * "stop_copy+p2p+pre_copy"); a bit the kernel ABI does not define is left out. */
json_object *
output_json_flags(uint32_t flags)
{
    json_object *a = json_object_new_array();

    for (uint32_t bit = 1; bit != 0 && bit <= MIG_FLAGS_ALL; bit <<= 1) {
        char name[32];

        if (flags & bit & MIG_FLAGS_ALL) {
            output_json_append(a, json_object_new_string(
                                      fsm_flags_to_string(bit, name, (unsigned) sizeof(name))));
        }
    }
    return a;
}

json_object *
output_json_arcs(VfioMigd__V1__Arc *const *arcs, size_t n_arcs)
{
    json_object *a = json_object_new_array();

    for (size_t i = 0; i < n_arcs; i++) {
        char buf[64];

        (void) snprintf(buf, sizeof(buf), "%s->%s", output_state_name(arcs[i]->from),
                        output_state_name(arcs[i]->to));
        output_json_append(a, json_object_new_string(buf));
    }
    return a;
}

json_object *
output_json_rate(double rate)
{
    return json_object_new_uint64(rate_bytes(rate));
}

json_object *
output_json_ms(uint64_t us)
{
    char buf[32];

    /* json-c prints doubles with 17 significant digits; give it our own text instead. */
    (void) snprintf(buf, sizeof(buf), "%.3f", (double) us / 1e3);
    return json_object_new_double_s((double) us / 1e3, buf);
}

static json_object *
json_stats(const VfioMigd__V1__DeviceStats *s)
{
    json_object *o = json_object_new_object();

    OUTPUT_JSON_FIELDS(o, s, "transitions", "arcs", "failed_arcs", "resets", "bytes_saved",
                       "bytes_restored", "last_error");
    return o;
}

/* "properties" as an object, and each property also at the top level of @o unless a key of
 * the device (or an earlier property) already has that name. "properties" is added first so
 * that no property can take its name. */
static void
json_properties(json_object *o, const VfioMigd__V1__Device *d)
{
    json_object *props = json_object_new_object();

    if (!o || !props) {
        json_object_put(props);
        return;
    }
    json_object_object_add(o, "properties", props); /* @o holds it; we fill it in place */
    for (size_t i = 0; i < d->n_properties; i++) {
        const VfioMigd__V1__Device__PropertiesEntry *p = d->properties[i];

        output_json_set(props, p->key, json_object_new_string(p->value));
        if (!json_object_object_get_ex(o, p->key, NULL)) {
            output_json_set(o, p->key, json_object_new_string(p->value));
        }
    }
}

/* "compat": the descriptor as a list of {name, value, rule}, in the back-end's order. */
static json_object *
json_compat(const VfioMigd__V1__Device *d)
{
    json_object *list = json_object_new_array();

    for (size_t i = 0; list && i < d->n_compat; i++) {
        const VfioMigd__V1__CompatField *f = d->compat[i];
        json_object *o = json_object_new_object();

        OUTPUT_JSON_FIELDS(o, f, "name", "value", "rule");
        if (o) {
            json_object_array_add(list, o);
        }
    }
    return list;
}

/* "descriptor": field -> value, for schedulers that read one field (rules are in "compat"). */
static json_object *
json_descriptor(const VfioMigd__V1__Device *d)
{
    json_object *o = json_object_new_object();

    for (size_t i = 0; o && i < d->n_compat; i++) {
        output_json_set(o, d->compat[i]->name, json_object_new_string(d->compat[i]->value));
    }
    return o;
}

json_object *
output_json_prerequisite(const VfioMigd__V1__Prerequisite *p)
{
    json_object *o = json_object_new_object();

    OUTPUT_JSON_FIELDS(o, p, "check", "ok", "message", "fix");
    return o;
}

static json_object *
json_prerequisites(const VfioMigd__V1__Device *d)
{
    return OUTPUT_JSON_ARRAY(d->prerequisites, d->n_prerequisites, output_json_prerequisite);
}

json_object *
output_json_device(const VfioMigd__V1__Device *d)
{
    static const VfioMigd__V1__DeviceStats no_stats = VFIO_MIGD__V1__DEVICE_STATS__INIT;
    json_object *o = json_object_new_object();

    OUTPUT_JSON_FIELDS(o, d, "id", "backend");
    output_json_set(o, "state", output_json_state(d->state));
    output_json_set(o, "flags", output_json_flags(d->migration_flags));
    OUTPUT_JSON_FIELDS(o, d, "migration_flags", "migratable", "group", "data_size", "busy",
                       "busy_operation", "data_session_open");
    output_json_set(o, "stats", json_stats(d->stats ? d->stats : &no_stats));
    output_json_set(o, "compat", json_compat(d));
    output_json_set(o, "plugin", d->plugin[0] ? json_object_new_string(d->plugin) : NULL);
    output_json_set(o, "prerequisites", json_prerequisites(d));
    output_json_set(o, "descriptor", json_descriptor(d));
    output_json_set(o, "plugin_error",
                    d->plugin_error[0] ? json_object_new_string(d->plugin_error) : NULL);
    OUTPUT_JSON_FIELDS(o, d, "holder_pid");
    output_json_set(o, "holder_comm",
                    d->holder_comm[0] ? json_object_new_string(d->holder_comm) : NULL);
    output_json_set(o, "vmm_uids", OUTPUT_JSON_ARRAY(d->vmm_uids, d->n_vmm_uids,
                                                     json_object_new_int64));
    output_json_set(o, "vmm_gids", OUTPUT_JSON_ARRAY(d->vmm_gids, d->n_vmm_gids,
                                                     json_object_new_int64));
    json_properties(o, d);
    return o;
}

int
output_json_print_line(json_object *o)
{
    int r;

    if (!o) {
        return -ENOMEM;
    }
    r = printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    /* A stream of lines is read as it comes: each line goes out at once. */
    return r < 0 || fflush(stdout) != 0 ? -EIO : 0;
}

int
output_json_print(json_object *o)
{
    const char *text;

    if (!o) {
        return -ENOMEM;
    }
    text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                 JSON_C_TO_STRING_SPACED |
                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!text) {
        json_object_put(o);
        return -ENOMEM;
    }
    (void) puts(text);
    json_object_put(o);
    return fflush(stdout) == 0 && !ferror(stdout) ? 0 : -EIO;
}

/* ---- people */

static void
device_stats_fields(const VfioMigd__V1__DeviceStats *s)
{
    char buf[32];

    output_field("transitions", "%llu", (unsigned long long) s->transitions);
    output_field("arcs", "%llu", (unsigned long long) s->arcs);
    output_field("failed arcs", "%llu", (unsigned long long) s->failed_arcs);
    output_field("resets", "%llu", (unsigned long long) s->resets);
    output_field("bytes saved", "%s", strutil_format_bytes(s->bytes_saved, buf, sizeof(buf)));
    output_field("bytes restored", "%s", strutil_format_bytes(s->bytes_restored, buf, sizeof(buf)));
    output_field("last error", "%s", *s->last_error ? s->last_error : "-");
}

/* "0, 1000": @n ids, truncated with "..." beyond @size. */
static const char *
ids_string(const uint32_t *ids, size_t n, char *buf, size_t size)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++) {
        int k = snprintf(buf + used, size - used, "%s%" PRIu32, i ? ", " : "", ids[i]);

        used += k > 0 ? (size_t) k : 0;
    }
    if (used >= size && size > 4) {
        memcpy(buf + size - 4, "...", 4);
    }
    return buf;
}

/* The device's own VMM allow-list, or that the global one applies. */
static void
device_vmm_allow_field(const VfioMigd__V1__Device *d)
{
    char uids[256], gids[256];

    if (d->n_vmm_uids == 0 && d->n_vmm_gids == 0) {
        output_field("vmm allow-list", "global ([vmm] allowed_users, allowed_groups)");
        return;
    }
    output_field("vmm allow-list", "own: uids %s; gids %s",
                 d->n_vmm_uids ? ids_string(d->vmm_uids, d->n_vmm_uids, uids, sizeof(uids)) : "-",
                 d->n_vmm_gids ? ids_string(d->vmm_gids, d->n_vmm_gids, gids, sizeof(gids)) : "-");
}

void
output_device_fields(const VfioMigd__V1__Device *d)
{
    char flags[64], size[32];

    output_field("id", "%s", d->id);
    output_field("backend", "%s", d->backend);
    output_field("state", "%s", output_state_name(d->state));
    output_field("flags", "%s", output_flags_string(d->migration_flags, flags, sizeof(flags)));
    output_field("migratable", "%s", d->migratable ? "yes" : "no");
    output_field("group", "%s", d->group[0] ? d->group : "-");
    output_field("data size", "%s (%llu bytes)",
                 strutil_format_bytes(d->data_size, size, sizeof(size)),
                 (unsigned long long) d->data_size);
    if (d->busy) {
        output_field("busy", "yes (%s)", *d->busy_operation ? d->busy_operation : "?");
    } else {
        output_field("busy", "no");
    }
    output_field("data session", "%s", d->data_session_open ? "open" : "none");
    if (d->holder_pid > 0) {
        output_field("held by", "VMM pid %d%s%s%s", d->holder_pid, d->holder_comm[0] ? " (" : "",
                     d->holder_comm, d->holder_comm[0] ? ")" : "");
    } else {
        output_field("held by", "no VMM");
    }
    device_vmm_allow_field(d);
    if (d->stats) {
        device_stats_fields(d->stats);
    }
    output_field("plugin", "%s", d->plugin[0] ? d->plugin : "-");
    for (size_t i = 0; i < d->n_compat; i++) {
        output_field("descriptor", "%s = %s (%s)", d->compat[i]->name, d->compat[i]->value,
                     d->compat[i]->rule);
    }
    for (size_t i = 0; i < d->n_prerequisites; i++) {
        const VfioMigd__V1__Prerequisite *p = d->prerequisites[i];

        if (p->ok) {
            output_field("prerequisite", "ok: %s", p->check);
        } else {
            output_field("prerequisite", "FAILED: %s: %s%s%s", p->check, p->message,
                         p->fix[0] ? "; fix: " : "", p->fix);
        }
    }
    if (d->plugin_error[0]) {
        output_field("plugin error", "%s", d->plugin_error);
    }
    /* Back-end properties follow as plain fields, so "digest: ..." greps like "state: ...". */
    for (size_t i = 0; i < d->n_properties; i++) {
        output_field(d->properties[i]->key, "%s", d->properties[i]->value);
    }
}

/* ---- progress */

/* Whether output_progress_line() left a line that output_progress_clear() must erase. */
static bool progress_shown;

char *
output_progress_bar(uint64_t done, uint64_t total, unsigned width, char *buf, size_t size)
{
    unsigned filled = 0;
    size_t n = 0;

    if (size == 0) {
        return buf;
    }
    if (total > 0) {
        filled = (unsigned) ((double) MIN(done, total) / (double) total * width);
    }
    buf[n++] = '[';
    for (unsigned i = 0; i < width && n + 2 < size; i++) {
        buf[n++] = i < filled ? '#' : '-';
    }
    if (n + 1 < size) {
        buf[n++] = ']';
    }
    buf[n] = '\0';
    return buf;
}

/* Columns of @f's terminal; 80 when it cannot be asked. */
static unsigned
terminal_columns(FILE *f)
{
    struct winsize ws = {};

    if (ioctl(fileno(f), TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0) {
        return 80;
    }
    return ws.ws_col;
}

void
output_progress_line(FILE *f, const char *fmt, ...)
{
    char line[512];
    unsigned columns = terminal_columns(f);
    va_list ap;

    va_start(ap, fmt);
    (void) vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One column short of the width: a full-width line wraps on some terminals, and then
     * "\r" returns to the wrong line. */
    if (columns > 1 && strlen(line) >= columns) {
        line[columns - 1] = '\0';
    }
    fprintf(f, "\r%s\033[K", line); /* ESC [ K: erase the rest of a longer previous line */
    (void) fflush(f);
    progress_shown = true;
}

void
output_progress_clear(FILE *f)
{
    if (!progress_shown) {
        return;
    }
    fputs("\r\033[K", f);
    (void) fflush(f);
    progress_shown = false;
}

/* ---- errors */

void
output_verror(const char *command, const char *fmt, va_list ap)
{
    (void) fflush(stdout); /* keep the order of what was printed before */
    fprintf(stderr, "vfio-migctl: %s: ", command);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void
output_error(const char *command, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    output_verror(command, fmt, ap);
    va_end(ap);
}

void
output_call_error(const char *command, const RpcError *err, json_object *doc)
{
    const char *code = rpc_status_code_name(err->code);

    output_error(command, "%s (%s)", err->message, code);
    if (doc) {
        output_json_set(doc, "error", json_object_new_string(err->message));
        output_json_set(doc, "code", json_object_new_string(code));
        (void) output_json_print(doc);
    }
}
