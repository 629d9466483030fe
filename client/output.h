/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * output — how vfio-migctl prints: aligned tables and "key: value" lines for people, one
 * JSON document per invocation (json-c) for scripts, and the one error format. It translates
 * protocol values into the names users type (lower-case kernel state names, flag names) and
 * computes nothing else.
 *
 * Used by:  cli.c (the error format, the JSON document), every *_commands.c,
 *           output_migration.c, follow.c (progress line: migrate --wait).
 * Uses:     core/fsm.h (state and flag names), util/strutil.h (byte sizes), json-c.
 * Threads:  single-threaded (stdout/stderr).
 * Errors:   negative errno; JSON builders return NULL only when out of memory, and every
 *           output_json_* function accepts NULL so a build can be checked once, at the end.
 */

#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client.h"
#include "util/cleanup.h"
#include "util/macro.h"
#include "vfio_migd/v1/devices.pb-c.h"

/* ---- names and numbers */

/* "running", "stop_copy", ...; "unknown" for 0 or a number this client does not know. */
const char *output_state_name(VfioMigd__V1__DeviceState s);
/* "stop_copy+p2p+pre_copy", or "-" when no flag is set. Returns @buf. */
char *output_flags_string(uint32_t flags, char *buf, size_t size);
/* "850 us", "12.4 ms", "3.25 s", "2m 05s", "3h 07m", "2d 04h". Returns @buf. */
char *output_duration(uint64_t us, char *buf, size_t size);
/* A rate in bytes per second as "28.8 MiB/s" (whole bytes; not a sane number: "0 B/s").
 * Returns @buf. */
char *output_rate(double rate, char *buf, size_t size);
/* The arcs as people read them: "running -> running_p2p -> stop"; a gap between two arcs
 * (one's end is not the next one's start) is shown as ", ". "-" when there is none. */
void output_arc_chain(FILE *f, VfioMigd__V1__Arc *const *arcs, size_t n_arcs);

/* ---- tables */

typedef struct OutputTable OutputTable;

/* A table with @n_columns columns whose header line is the @n_columns strings that follow.
 * NULL when out of memory. */
OutputTable *output_table_new(unsigned n_columns, ...);
/* Appends a row of n_columns strings (copied). 0 or -ENOMEM. */
int output_table_add(OutputTable *t, ...);
/* Columns are left-aligned and separated by two spaces; no trailing blanks. The header line
 * is left out after output_set_table_headers(false) (--no-headers). */
void output_table_print(const OutputTable *t, FILE *f);
void output_set_table_headers(bool on);
OutputTable *output_table_free(OutputTable *t); /* NULL-safe; returns NULL */
DEFINE_CLEANUP_FUNC(OutputTable *, output_table_free);

/* One "key: value" line on stdout with the value column aligned across a listing. */
void output_field(const char *key, const char *fmt, ...) _printf_(2, 3);

/* ---- JSON */

json_object *output_json_state(VfioMigd__V1__DeviceState s);
json_object *output_json_flags(uint32_t flags);                 /* ["stop_copy", "p2p"] */
json_object *output_json_arcs(VfioMigd__V1__Arc *const *arcs, size_t n_arcs); /* ["a->b"] */
json_object *output_json_ms(uint64_t us);                       /* milliseconds, 3 decimals */
json_object *output_json_rate(double rate);                     /* whole bytes per second */
/* The device as documented in docs/cli.md ("show"): fixed keys, "stats", "properties", and
 * each property again at the top level unless its key is taken. */
json_object *output_json_device(const VfioMigd__V1__Device *d);
/* One plugin prerequisite: {check, ok, message, fix} (show, host-devices). */
json_object *output_json_prerequisite(const VfioMigd__V1__Prerequisite *p);
/* Sets @key of @o to @v, taking @v; does nothing but release @v when @o is NULL. */
void output_json_set(json_object *o, const char *key, json_object *v);
/* Sets in @o, in the order given, the scalar fields of the message @msg named in @names (ending
 * with NULL), each under its .proto name and as its .proto type says (string, bool, integer):
 * the JSON keys are the API's names. Use OUTPUT_JSON_FIELDS(o, msg, "check", "ok"). */
void output_json_set_fields(json_object *o, const void *msg, const char *const *names);
#define OUTPUT_JSON_FIELDS(o, msg, ...)                                                            \
    output_json_set_fields((o), (msg), (const char *const[]){__VA_ARGS__, NULL})
/* Appends @v to the array @a, taking @v. */
void output_json_append(json_object *a, json_object *v);
/* A JSON array of @fn(@items[i]) for each of the @n items: a list of messages as JSON
 * (output_json_device), of strings (json_object_new_string), ... */
#define OUTPUT_JSON_ARRAY(items, n, fn)                                                            \
    ({                                                                                             \
        json_object *array_ = json_object_new_array();                                             \
                                                                                                   \
        for (size_t i_ = 0; i_ < (n); i_++) {                                                      \
            output_json_append(array_, fn((items)[i_]));                                           \
        }                                                                                          \
        array_;                                                                                    \
    })

/* Defines @name, a CliCall.json for a list answer: the @field items of the response
 * VfioMigd__V1__@Response as a JSON array of @fn(item) (devices, jobs, group list, ...). */
#define OUTPUT_JSON_LIST_PRINTER(name, Response, field, fn)                                        \
    static json_object *name(const void *req _unused_, const void *resp)                           \
    {                                                                                              \
        const VfioMigd__V1__##Response *r_ = resp;                                                 \
                                                                                                   \
        return OUTPUT_JSON_ARRAY(r_->field, r_->n_##field, fn);                                    \
    }

/* Defines @json_name and @text_name, the CliCall printers of a call whose answer is only
 * success, about the string @field of the request VfioMigd__V1__@Request: as JSON
 * {"@field": <it>, "@done": true}, as text @text_format with it for the one %s (detach:
 * {"id": "sim0", "detached": true} and "detached sim0"; group delete). */
#define OUTPUT_DONE_PRINTERS(json_name, text_name, Request, field, done, text_format)             \
    static json_object *json_name(const void *req, const void *resp _unused_)                      \
    {                                                                                              \
        const VfioMigd__V1__##Request *q_ = req;                                                   \
        json_object *o_ = json_object_new_object();                                                \
                                                                                                   \
        output_json_set(o_, #field, json_object_new_string(q_->field));                            \
        output_json_set(o_, (done), json_object_new_boolean(1));                                   \
        return o_;                                                                                 \
    }                                                                                              \
    static int text_name(const void *req, const void *resp _unused_)                               \
    {                                                                                              \
        printf(text_format, ((const VfioMigd__V1__##Request *) req)->field);                       \
        return 0;                                                                                  \
    }

/* Prints @o as the invocation's JSON document on stdout and releases it. -ENOMEM when @o
 * is NULL (a build ran out of memory), -EIO when stdout fails. */
int output_json_print(json_object *o);
/* @o as one compact line on stdout, flushed at once, and releases it: an element of a stream
 * of JSON lines (watch --json). Errors as output_json_print(). */
int output_json_print_line(json_object *o);

/* ---- people */

/* "key: value" lines for one device (the table form of "show"). */
void output_device_fields(const VfioMigd__V1__Device *d);

/* ---- progress (one line rewritten in place on a terminal) */

/* "[#########-----------]" with @width cells filled in proportion to @done of @total (an
 * empty bar when @total is 0). Returns @buf. */
char *output_progress_bar(uint64_t done, uint64_t total, unsigned width, char *buf, size_t size);
/* Replaces the progress line on @f (a terminal) with the formatted text, cut to the
 * terminal's width so that "\r" can overwrite it next time. */
void output_progress_line(FILE *f, const char *fmt, ...) _printf_(2, 3);
/* Erases the progress line, if one is shown, so that normal output starts on a clean line. */
void output_progress_clear(FILE *f);

/* ---- errors */

/* "vfio-migctl: <command>: <message>" on stderr. */
void output_error(const char *command, const char *fmt, ...) _printf_(2, 3);
void output_verror(const char *command, const char *fmt, va_list ap) _printf_(2, 0);
/* A failed call: "vfio-migctl: <command>: <message> (<STATUS>)" on stderr and, when @doc is
 * not NULL (--json), @doc with "error" and "code" added as the JSON document on stdout.
 * Takes @doc. */
void output_call_error(const char *command, const RpcError *err, json_object *doc);
