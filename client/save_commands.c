/* SPDX-License-Identifier: MIT */
/*
 * save_commands — `vfio-migctl save NAME FILE` and `restore NAME FILE`: one call each,
 * MigrationService/Save and Restore (migrations.proto). NAME is a group or a device: the daemon
 * looks it up (or is told by --group, --device) and says in its answer what it was
 * (Migration.subject); the answer is printed as that. FILE is made absolute here, against the
 * CLI's working directory, because the daemon runs elsewhere.
 */
#include "save_commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "output.h"
#include "output_migration.h"
#include "util/cleanup.h"
#include "util/strutil.h"
#include "vfio_migd/v1/migrations.pb-c.h"

typedef VfioMigd__V1__Migration Migration;
typedef VfioMigd__V1__MigrationResponse MigrationResponse;

enum {
    OPT_RESUME = CLI_OPT_COMMAND_FIRST,
    OPT_FORCE,
    OPT_STOP,
    OPT_GROUP,
    OPT_DEVICE,
    OPT_FORCE_GROUPED,
};

/* The options and help lines save and restore share. */
#define TRANSFER_TARGET_OPTIONS                                                                    \
    {"group", no_argument, NULL, OPT_GROUP}, {"device", no_argument, NULL, OPT_DEVICE},            \
    {"force-grouped", no_argument, NULL, OPT_FORCE_GROUPED}
#define TRANSFER_HELP_NAME                                                                         \
    "  NAME           a group, else a device (the daemon is asked for a group first)\n"
#define TRANSFER_HELP_TARGET_FILE                                                                  \
    "  --group        NAME is a group: do not try a device\n"                                      \
    "  --device       NAME is a device: do not try a group\n"                                      \
    "  --force-grouped  NAME may be a device of a group, moved alone (the others stay where\n"   \
    "                 they are: the group's P2P-safe order breaks; else refused)\n"              \
    "  FILE           made absolute against the current directory\n"

/* `save NAME FILE` or `restore NAME FILE` as parsed. Each command's option table lets only
 * its own options through, so the other command's flags stay false. */
typedef struct TransferArgs {
    /* --group, --device, or neither (ANY): what NAME is; without either the daemon looks NAME
     * up and says in its answer what it found */
    VfioMigd__V1__MigrationSubject subject;
    bool resume;    /* save --resume */
    bool overwrite; /* save --force */
    bool stop;      /* restore --stop */
    bool force_grouped; /* --force-grouped */
    char *path;     /* FILE made absolute by the request builder; owned */
} TransferArgs;

static void
transfer_args_done(void *args)
{
    free(((TransferArgs *) args)->path);
}

/* The flags of save and restore, stored as they are. */
static const CliStore transfer_stores[] = {
    CLI_STORE_FLAG(OPT_RESUME, TransferArgs, resume),
    CLI_STORE_FLAG(OPT_FORCE, TransferArgs, overwrite),
    CLI_STORE_FLAG(OPT_STOP, TransferArgs, stop),
    CLI_STORE_FLAG(OPT_FORCE_GROUPED, TransferArgs, force_grouped),
    {},
};

/* --group or --device; giving both is a usage error. */
static CliExit
transfer_option(Cli *cli, int opt, const char *arg _unused_, void *args)
{
    TransferArgs *a = args;
    VfioMigd__V1__MigrationSubject t =
        opt == OPT_GROUP ? VFIO_MIGD__V1__MIGRATION_SUBJECT__MIGRATION_SUBJECT_GROUP
                         : VFIO_MIGD__V1__MIGRATION_SUBJECT__MIGRATION_SUBJECT_DEVICE;

    if (a->subject != VFIO_MIGD__V1__MIGRATION_SUBJECT__MIGRATION_SUBJECT_ANY && a->subject != t) {
        return cli_usage_error(cli, "give --group or --device, not both");
    }
    a->subject = t;
    return CLI_GO_ON;
}

/* FILE as the daemon needs it: absolute, relative to the CLI's working directory. */
static CliExit
absolute_path(Cli *cli, const char *file, char **ret)
{
    _cleanup_free_ char *cwd = NULL;

    if (!*file) {
        return cli_usage_error(cli, "FILE must not be empty");
    }
    if (file[0] == '/') {
        *ret = strdup(file);
        return *ret ? CLI_GO_ON : CLI_EXIT_FAILED;
    }
    cwd = getcwd(NULL, 0);
    if (!cwd) {
        return cli_fail(cli, "cannot resolve '%s': %s", file, strerror(errno));
    }
    if (asprintf(ret, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, file) < 0) {
        return CLI_EXIT_FAILED;
    }
    return CLI_GO_ON;
}

/* ---- the answer: a device's or a group's save or restore */

/* The group's state when every device is in the same one, else "mixed" (as `group state`
 * prints a group whose devices differ). */
static const char *
group_state_name(const Migration *m)
{
    if (m->n_devices == 0) {
        return "unknown";
    }
    for (size_t i = 1; i < m->n_devices; i++) {
        if (m->devices[i]->state != m->devices[0]->state) {
            return "mixed";
        }
    }
    return output_state_name(m->devices[0]->state);
}

static bool
is_device_transfer(const Migration *m)
{
    return m->subject == VFIO_MIGD__V1__MIGRATION_SUBJECT__MIGRATION_SUBJECT_DEVICE &&
           m->n_devices == 1;
}

/* The absolute FILE of a SaveRequest or a RestoreRequest: both have "path". */
static const char *
request_path(const void *req)
{
    const ProtobufCMessage *m = req;
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, "path");

    assert(f && f->type == PROTOBUF_C_TYPE_STRING);
    return *(const char *const *) ((const char *) m + f->offset);
}

static bool
is_save(const void *req)
{
    return ((const ProtobufCMessage *) req)->descriptor == &vfio_migd__v1__save_request__descriptor;
}

/* The file as the daemon named it (canonical, in the migration's "peer"), else as asked. */
static const char *
transfer_path(const void *req, const Migration *m)
{
    return m->peer && m->peer[0] ? m->peer : request_path(req);
}

/* The JSON of save/restore. A device: "id" is the device, "state" and "arcs" are its own.
 * A group: "group", "id" is the migration's. Both: "path", "bytes", "elapsed_ms" and the
 * whole migration under "migration". */
static json_object *
transfer_json(const void *req, const void *resp)
{
    const Migration *m = ((const MigrationResponse *) resp)->migration;
    json_object *o = json_object_new_object();

    if (is_device_transfer(m)) {
        const VfioMigd__V1__DeviceProgress *d = m->devices[0];

        output_json_set(o, "id", json_object_new_string(d->id));
        output_json_set(o, "state", output_json_state(d->state));
        output_json_set(o, "arcs", output_json_arcs(d->arcs, d->n_arcs));
    } else {
        OUTPUT_JSON_FIELDS(o, m, "group", "id");
        output_json_set(o, "state", json_object_new_string(group_state_name(m)));
    }
    output_json_set(o, "path", json_object_new_string(transfer_path(req, m)));
    output_json_set(o, "bytes", json_object_new_uint64(m->bytes));
    output_json_set(o, "elapsed_ms", output_json_ms(m->elapsed_us));
    output_json_set(o, "migration", output_migration_json(m));
    return o;
}

/* "saved sim0 to '/srv/a.sav': ... (m3)" and the device's arcs, or "saved group g1 ..." and
 * the table of its devices. */
static int
transfer_text(const void *req, const void *resp)
{
    const Migration *m = ((const MigrationResponse *) resp)->migration;
    bool device = is_device_transfer(m);
    char size[32], time[32];

    printf("%s %s%s %s '%s': %s (%llu bytes) in %s, state %s", is_save(req) ? "saved" : "restored",
           device ? "" : "group ", device ? m->devices[0]->id : m->group,
           is_save(req) ? "to" : "from", transfer_path(req, m),
           strutil_format_bytes(m->bytes, size, sizeof(size)), (unsigned long long) m->bytes,
           output_duration(m->elapsed_us, time, sizeof(time)),
           device ? output_state_name(m->devices[0]->state) : group_state_name(m));
    printf(" (%s)\n", m->id);
    if (device) {
        printf("arcs: ");
        output_arc_chain(stdout, m->devices[0]->arcs, m->devices[0]->n_arcs);
        putchar('\n');
        return 0;
    }
    return output_migration_devices(m, /* in_flight= */ false);
}

/* A failed group save or restore may say where every device ended: shown before the error. */
static int
transfer_partial_text(const void *req _unused_, const void *resp)
{
    const Migration *m = ((const MigrationResponse *) resp)->migration;

    return is_device_transfer(m) ? 0 : output_migration_fields(m);
}

/* ---- the commands */

/* FILE made absolute, then the SaveRequest or RestoreRequest from the arguments. */
static CliExit
transfer_build(Cli *cli, void *args, void *request)
{
    VfioMigd__V1__SaveRequest *save = request;
    VfioMigd__V1__RestoreRequest *restore = request;
    TransferArgs *a = args;
    CliExit r;

    r = absolute_path(cli, cli->args[1], &a->path);
    if (r != CLI_GO_ON) {
        return r;
    }
    if (is_save(request)) {
        save->name = cli->args[0];
        save->path = a->path;
        save->overwrite = a->overwrite;
        save->resume = a->resume;
        save->force_grouped = a->force_grouped;
        save->subject = a->subject;
    } else {
        restore->name = cli->args[0];
        restore->path = a->path;
        restore->stop = a->stop;
        restore->force_grouped = a->force_grouped;
        restore->subject = a->subject;
    }
    return CLI_GO_ON;
}

/* What save and restore share after NAME FILE: their options parsed alike, one MigrationService
 * call answered with the migration. */
#define TRANSFER_COMMAND(method_, request_)                                                        \
    .args_size = sizeof(TransferArgs), .stores = transfer_stores, .option = transfer_option,        \
    .args_done = transfer_args_done,                                                               \
    .call = &(const CliCall) CLI_CALL(                                                             \
        CLI_METHOD("MigrationService", method_, request_, migration_response), transfer_build,     \
        "migration", transfer_json, transfer_text, .partial_text = transfer_partial_text)

const CliCommand save_commands_save = CLI_COMMAND(
    "save", "NAME FILE [--resume] [--force] [--group|--device] [--force-grouped]",
    "Save a group's or a device's state to FILE on the daemon's host", 2, 2,
    .help = TRANSFER_HELP_NAME
            "  --resume       return the devices to running after saving (default: stop)\n"
            "  --force        replace FILE if it exists\n"
            TRANSFER_HELP_TARGET_FILE,
    .options = (const struct option[]) {
        {"resume", no_argument, NULL, OPT_RESUME},
        {"force", no_argument, NULL, OPT_FORCE},
        TRANSFER_TARGET_OPTIONS,
        {},
    },
    TRANSFER_COMMAND(Save, save_request));

const CliCommand save_commands_restore = CLI_COMMAND(
    "restore", "NAME FILE [--stop] [--group|--device] [--force-grouped]",
    "Restore a group's or a device's state from a FILE written by save", 2, 2,
    .help = TRANSFER_HELP_NAME
            "  --stop         leave the devices stopped instead of running\n"
            TRANSFER_HELP_TARGET_FILE,
    .options = (const struct option[]) {
        {"stop", no_argument, NULL, OPT_STOP},
        TRANSFER_TARGET_OPTIONS,
        {},
    },
    TRANSFER_COMMAND(Restore, restore_request));
