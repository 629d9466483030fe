/* SPDX-License-Identifier: MIT */
/*
 * compat_commands — see compat_commands.h. The CLI computes nothing here: `describe` prints
 * what GetDevice says, `check` hands the file's descriptor to the daemon, which compares.
 */

#include "compat_commands.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "output.h"
#include "vfio_migd/v1/devices.pb-c.h"
#include "vfio_migd/v1/migrations.pb-c.h"

/* A descriptor file is a few hundred bytes; anything near this is something else. */
#define DESCRIPTOR_FILE_MAX (64 * 1024)

typedef VfioMigd__V1__CompatReport CompatReportMsg;

/* ---- the answer both questions get */

static json_object *
mismatch_json(const VfioMigd__V1__CompatMismatch *m)
{
    json_object *o = json_object_new_object();

    OUTPUT_JSON_FIELDS(o, m, "device", "field", "source", "destination");
    return o;
}

static json_object *
report_json(const void *req _unused_, const void *resp)
{
    const CompatReportMsg *r = resp;
    json_object *o = json_object_new_object();

    output_json_set(o, "compatible", json_object_new_boolean(r->compatible));
    output_json_set(o, "mismatches", OUTPUT_JSON_ARRAY(r->mismatches, r->n_mismatches, mismatch_json));
    output_json_set(o, "total", json_object_new_uint64(r->total));
    return o;
}

static int
report_text(const void *req _unused_, const void *resp)
{
    const CompatReportMsg *r = resp;

    if (r->compatible) {
        printf("compatible\n");
        return 0;
    }
    printf("not compatible: %u mismatch(es)\n", r->total);
    for (size_t i = 0; i < r->n_mismatches; i++) {
        const VfioMigd__V1__CompatMismatch *m = r->mismatches[i];

        printf("  device '%s': %s: source '%s', destination '%s'\n", m->device, m->field,
               m->source, m->destination);
    }
    if (r->total > r->n_mismatches) {
        printf("  and %u more\n", r->total - (unsigned) r->n_mismatches);
    }
    return 0;
}

/* "The daemon said no" (1) when not compatible: a script tests the exit status alone. */
static CliExit
report_outcome(const void *resp)
{
    return ((const CompatReportMsg *) resp)->compatible ? CLI_EXIT_OK : CLI_EXIT_FAILED;
}

/* The call of either question: its own request, the one CompatReport answer and its printers. */
#define REPORT_CALL(method_, request_, build_)                                                     \
    CLI_CALL(CLI_METHOD("MigrationService", method_, request_, compat_report), (build_), NULL,     \
             report_json, report_text, .outcome = report_outcome)

/* ---- migrate --dry-run */

typedef struct DryRun {
    const char *group, *address, *token;
    uint32_t timeout_ms;
    int tls; /* VFIO_MIGD__V1__MIGRATION_TLS__* */
} DryRun;

static CliExit
dry_run_build(Cli *cli _unused_, void *args, void *req)
{
    VfioMigd__V1__CheckMigrationRequest *q = req;
    const DryRun *d = args;

    q->group = (char *) d->group;
    q->address = (char *) d->address;
    q->token = (char *) d->token;
    q->timeout_ms = d->timeout_ms;
    q->tls = (VfioMigd__V1__MigrationTls) d->tls;
    return CLI_GO_ON;
}

static const CliCall dry_run_call =
    REPORT_CALL(CheckMigration, check_migration_request, dry_run_build);

CliExit
compat_commands_dry_run(Cli *cli, const char *group, const char *address, const char *token,
                        uint32_t timeout_ms, int tls)
{
    DryRun d = {group, address, token, timeout_ms, tls};

    return cli_run_call(cli, &dry_run_call, &d, NULL);
}

/* ---- describe */

static json_object *
field_json(const VfioMigd__V1__CompatField *f)
{
    json_object *o = json_object_new_object();

    OUTPUT_JSON_FIELDS(o, f, "name", "value", "rule");
    return o;
}

/* What `check` reads back on another host: the device's flags, back-end and fields. */
static json_object *
describe_json(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__Device *d = ((const VfioMigd__V1__GetDeviceResponse *) resp)->device;
    json_object *o = json_object_new_object();

    output_json_set(o, "device", json_object_new_string(d->id));
    OUTPUT_JSON_FIELDS(o, d, "backend", "migration_flags");
    output_json_set(o, "plugin", d->plugin[0] ? json_object_new_string(d->plugin) : NULL);
    output_json_set(o, "fields", OUTPUT_JSON_ARRAY(d->compat, d->n_compat, field_json));
    return o;
}

/* The descriptor is JSON whether --json is given or not: it is made to be saved in a file. */
static int
describe_text(const void *req, const void *resp)
{
    return output_json_print(describe_json(req, resp));
}

static const CliCall describe_call =
    CLI_CALL(CLI_METHOD_OF("DeviceService", GetDevice, get_device), cli_build_name, "device",
             describe_json, describe_text);

const CliCommand compat_commands_describe = CLI_BY_ID_COMMAND(
    "describe", "Print a device's compatibility descriptor as JSON (for 'check' on another host)",
    &describe_call);

/* ---- check */

typedef struct CheckArgs {
    json_object *doc; /* the file's, owned */
    VfioMigd__V1__CompatField *fields;
    VfioMigd__V1__CompatField **ptrs;
} CheckArgs;

static CliExit
read_descriptor_file(Cli *cli, const char *path, json_object **ret)
{
    _cleanup_free_ char *buf = malloc(DESCRIPTOR_FILE_MAX + 1);
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    size_t n = 0;
    ssize_t k;

    if (fd < 0 || !buf) {
        return cli_fail(cli, "cannot open the descriptor file '%s': %s", path,
                        strerror(buf ? errno : ENOMEM));
    }
    while (n <= DESCRIPTOR_FILE_MAX && (k = read(fd, buf + n, DESCRIPTOR_FILE_MAX + 1 - n)) != 0) {
        if (k < 0 && errno != EINTR) {
            break;
        }
        n += k > 0 ? (size_t) k : 0;
    }
    if (fd != STDIN_FILENO) {
        (void) close(fd);
    }
    if (n > DESCRIPTOR_FILE_MAX) {
        return cli_fail(cli, "'%s' is larger than %d bytes: not a descriptor", path,
                        DESCRIPTOR_FILE_MAX);
    }
    buf[n] = '\0';
    *ret = json_tokener_parse(buf);
    if (!*ret || !json_object_is_type(*ret, json_type_object)) {
        json_object_put(*ret);
        *ret = NULL;
        return cli_fail(cli, "'%s' is not a JSON object as 'vfio-migctl describe' prints it", path);
    }
    return CLI_GO_ON;
}

static const char *
json_string_of(json_object *o, const char *key)
{
    json_object *v;

    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

/* The request from the file: shapes are checked here, values by the daemon. */
static CliExit
check_build(Cli *cli, void *args, void *req)
{
    VfioMigd__V1__CheckDescriptorRequest *q = req;
    CheckArgs *a = args;
    json_object *flags, *fields;
    size_t n;
    CliExit r;

    r = read_descriptor_file(cli, cli->args[0], &a->doc);
    if (r != CLI_GO_ON) {
        return r;
    }
    if (!json_object_object_get_ex(a->doc, "migration_flags", &flags) ||
        !json_object_is_type(flags, json_type_int) || !json_string_of(a->doc, "backend") ||
        !json_object_object_get_ex(a->doc, "fields", &fields) ||
        !json_object_is_type(fields, json_type_array) ||
        (n = json_object_array_length(fields)) > 64) {
        return cli_fail(cli, "'%s' lacks migration_flags, backend or fields (at most 64) as "
                        "'vfio-migctl describe' prints them", cli->args[0]);
    }
    a->fields = calloc(n + 1, sizeof(*a->fields));
    a->ptrs = calloc(n + 1, sizeof(*a->ptrs));
    if (!a->fields || !a->ptrs) {
        return cli_fail(cli, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        json_object *f = json_object_array_get_idx(fields, i);
        VfioMigd__V1__CompatField *m = &a->fields[i];

        vfio_migd__v1__compat_field__init(m);
        m->name = (char *) json_string_of(f, "name");
        m->value = (char *) json_string_of(f, "value");
        m->rule = (char *) json_string_of(f, "rule");
        if (!m->name || !m->value || !m->rule) {
            return cli_fail(cli, "'%s': field %zu lacks a name, value or rule string",
                            cli->args[0], i);
        }
        a->ptrs[i] = m;
    }
    q->device = cli->args[1];
    q->migration_flags = (uint32_t) json_object_get_int64(flags);
    q->backend = (char *) json_string_of(a->doc, "backend");
    q->n_fields = n;
    q->fields = a->ptrs;
    return CLI_GO_ON;
}

static const CliCall check_call =
    REPORT_CALL(CheckDescriptor, check_descriptor_request, check_build);

static CliExit
check_run(Cli *cli, void *args)
{
    CheckArgs *a = args;
    CliExit r = cli_run_call(cli, &check_call, a, NULL);

    json_object_put(a->doc);
    free(a->fields);
    free(a->ptrs);
    return r;
}

const CliCommand compat_commands_check = CLI_COMMAND(
    "check", "DESCRIPTOR-FILE ID",
    "Could the device described in DESCRIPTOR-FILE ('describe' on another host, '-': "
    "stdin) migrate into device ID? Exit 0 only when it could", 2, 2,
    .args_size = sizeof(CheckArgs),
    .run = check_run);
