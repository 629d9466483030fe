/* SPDX-License-Identifier: MIT */
/*
 * device_commands — the vfio-migctl commands on single devices, each one call to
 * vfio_migd.v1.DeviceService (devices.proto): devices, attach, detach, show, state, path, reset
 * and region. Most are a row and a CliCall: a request builder and the answer's JSON and text
 * forms; cli.c parses, calls and prints. Names are translated (states, flags), nothing the
 * daemon knows is computed: the arcs of `path` are the daemon's answer.
 */

#include "device_commands.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/fsm.h"
#include "output.h"
#include "util/cleanup.h"
#include "util/macro.h"
#include "util/strutil.h"

/* The method and message types of DeviceService's @method_ (snake_ is its name in snake case,
 * as in the generated descriptors). */
#define DEVICE_CALL(method_, snake_) CLI_METHOD_OF("DeviceService", method_, snake_)

typedef VfioMigd__V1__Device Device;

/* ---- devices */

OUTPUT_JSON_LIST_PRINTER(devices_json, ListDevicesResponse, devices, output_json_device)

static int
devices_text(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__ListDevicesResponse *r = resp;
    _cleanup_(output_table_freep) OutputTable *t = NULL;

    t = output_table_new(6, "ID", "BACKEND", "STATE", "FLAGS", "DATA-SIZE", "GROUP");
    if (!t) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < r->n_devices; i++) {
        const Device *d = r->devices[i];
        char flags[64], size[32];

        if (output_table_add(t, d->id, d->backend, output_state_name(d->state),
                             output_flags_string(d->migration_flags, flags, sizeof(flags)),
                             strutil_format_bytes(d->data_size, size, sizeof(size)),
                             d->group[0] ? d->group : "-") < 0) {
            return -ENOMEM;
        }
    }
    output_table_print(t, stdout);
    return 0;
}

static const CliCall devices_call =
    CLI_CALL(DEVICE_CALL(ListDevices, list_devices), NULL, NULL, devices_json, devices_text);

const CliCommand device_commands_devices = CLI_COMMAND(
    "devices", "",
    "List the attached devices and their migration states", 0, 0,
    .call = &devices_call);

/* ---- attach */

enum {
    OPT_SIM = CLI_OPT_COMMAND_FIRST,
    OPT_MODEL,
    OPT_NAME,
    OPT_PCI,
    OPT_MDEV,
    OPT_CDEV,
    OPT_VMM_USERS,
    OPT_VMM_GROUPS,
};

/* --vmm-users or --vmm-groups: the entries between the commas of every time the option was
 * given, as typed (names or numbers: the daemon resolves and checks them). Owned. */
typedef struct NameList {
    char **items;
    size_t n;
} NameList;

/* Adds the comma-separated entries of @arg; -EINVAL when it has none, -ENOMEM. */
static int
name_list_add(NameList *l, const char *arg)
{
    size_t before = l->n;

    for (const char *p = arg; *p;) {
        size_t len = strcspn(p, ",");
        char **items;

        if (len > 0) {
            items = realloc(l->items, (l->n + 1) * sizeof(*items));
            if (!items) {
                return -ENOMEM;
            }
            l->items = items;
            l->items[l->n] = strndup(p, len);
            if (!l->items[l->n]) {
                return -ENOMEM;
            }
            l->n++;
        }
        p += len + (p[len] == ',');
    }
    return l->n > before ? 0 : -EINVAL;
}

static void
name_list_done(NameList *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->items[i]);
    }
    free(l->items);
    *l = (NameList){0};
}

typedef struct AttachArgs {
    const char *name;
    const char *model;
    const char *sim;          /* --sim OPTS */
    int kernel_case;          /* VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_*, 0: none */
    const char *kernel_value; /* --pci/--mdev/--cdev's argument */
    unsigned n_sources;
    NameList vmm_users, vmm_groups;           /* --vmm-users, --vmm-groups */
    VfioMigd__V1__SimSource sim_source;       /* the request's source, built here */
    VfioMigd__V1__KernelSource kernel_source;
} AttachArgs;

static void
attach_args_done(void *args)
{
    AttachArgs *a = args;

    name_list_done(&a->vmm_users);
    name_list_done(&a->vmm_groups);
}

static CliExit
attach_option(Cli *cli, int opt, const char *arg, void *args)
{
    AttachArgs *a = args;

    if (opt == OPT_VMM_USERS || opt == OPT_VMM_GROUPS) {
        int r = name_list_add(opt == OPT_VMM_USERS ? &a->vmm_users : &a->vmm_groups, arg);

        if (r == -ENOMEM) {
            return cli_fail(cli, "out of memory");
        }
        if (r < 0) {
            return cli_usage_error(cli, "--vmm-%s '%s' names no one: give names or ids "
                                   "separated by commas", opt == OPT_VMM_USERS ? "users" : "groups",
                                   arg);
        }
    } else if (opt == OPT_SIM) {
        a->sim = arg;
        a->n_sources++;
    } else {
        a->kernel_case = opt == OPT_PCI    ? VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_PCI_ADDRESS
                         : opt == OPT_MDEV ? VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_MDEV_UUID
                                           : VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_CDEV_PATH;
        a->kernel_value = arg;
        a->n_sources++;
    }
    return CLI_GO_ON;
}

static CliExit
attach_options_done(Cli *cli, void *args)
{
    const AttachArgs *a = args;

    if (a->n_sources != 1) {
        return cli_usage_error(cli, "give exactly one of --sim, --pci, --mdev, --cdev");
    }
    if (a->model && !a->sim) {
        return cli_usage_error(cli, "--model applies to --sim devices only");
    }
    return CLI_GO_ON;
}

static CliExit
attach_build(Cli *cli _unused_, void *args, void *request)
{
    VfioMigd__V1__AttachDeviceRequest *req = request;
    AttachArgs *a = args;

    req->id = (char *) (a->name ? a->name : "");
    req->n_vmm_users = a->vmm_users.n;
    req->vmm_users = a->vmm_users.items;
    req->n_vmm_groups = a->vmm_groups.n;
    req->vmm_groups = a->vmm_groups.items;
    if (a->sim) {
        vfio_migd__v1__sim_source__init(&a->sim_source);
        a->sim_source.options = (char *) a->sim;
        a->sim_source.model = (char *) (a->model ? a->model : "");
        req->source_case = VFIO_MIGD__V1__ATTACH_DEVICE_REQUEST__SOURCE_SIM;
        req->sim = &a->sim_source;
    } else {
        vfio_migd__v1__kernel_source__init(&a->kernel_source);
        a->kernel_source.address_case = (VfioMigd__V1__KernelSource__AddressCase) a->kernel_case;
        /* the union's members share storage */
        a->kernel_source.pci_address = (char *) a->kernel_value;
        req->source_case = VFIO_MIGD__V1__ATTACH_DEVICE_REQUEST__SOURCE_KERNEL;
        req->kernel = &a->kernel_source;
    }
    return CLI_GO_ON;
}

static json_object *
attach_json(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__AttachDeviceResponse *r = resp;
    json_object *o = output_json_device(r->device);

    output_json_set(o, "found_state", output_json_state(r->found_state));
    output_json_set(o, "recovered", json_object_new_boolean(r->recovered));
    return o;
}

static int
attach_text(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__AttachDeviceResponse *r = resp;
    const Device *d = r->device;

    printf("attached %s (%s, state %s)\n", d->id, d->backend, output_state_name(d->state));
    if (r->recovered) {
        printf("note: %s was found in %s (left by a previous owner?) and was reset\n", d->id,
               output_state_name(r->found_state));
    }
    return 0;
}

static const CliCall attach_call = CLI_CALL(DEVICE_CALL(AttachDevice, attach_device), attach_build,
                                            "device", attach_json, attach_text);

static const CliStore attach_stores[] = {
    CLI_STORE_STRING(OPT_NAME, AttachArgs, name),
    CLI_STORE_STRING(OPT_MODEL, AttachArgs, model),
    {},
};

const CliCommand device_commands_attach = CLI_COMMAND(
    "attach",
    "--sim OPTS [--model M] [--name NAME] | --pci BDF | --mdev UUID | --cdev PATH "
    "[--vmm-users U,...] [--vmm-groups G,...]",
    "Attach a simulated or a VFIO device to the daemon", 0, 0,
    .help = "  --sim OPTS     a simulated device with comma-separated key=value options,\n"
            "                 e.g. 'flags=stop_copy+p2p,size=4M,latency_ms=5'; a key left out\n"
            "                 takes its default (size=1M is the default device); e.g.\n"
            "                 'size=256M,dirty_rate=20M' dirties 20 MiB/s during pre-copy, a\n"
            "                 busy guest (every key: docs/simulated-devices.md)\n"
            "  --model M      the simulated device's model (default: generic)\n"
            "  --pci BDF      a VFIO PCI device, e.g. 0000:3b:00.2\n"
            "  --mdev UUID    a VFIO mediated device\n"
            "  --cdev PATH    a VFIO device cdev, e.g. /dev/vfio/devices/vfio0 (iommufd)\n"
            "  --name NAME    the device's id (default: chosen by the daemon, e.g. sim0)\n"
            "  --vmm-users U1,U2,...  the device's own VMM allow-list: only these users'\n"
            "                 processes may take it over the VMM socket (names of the\n"
            "                 daemon's host, resolved by the daemon, or numeric uids; at most\n"
            "                 32); it replaces [vmm] allowed_users/allowed_groups for this\n"
            "                 device, root included (docs/vmm-protocol.md)\n"
            "  --vmm-groups G1,...  the same by primary group (gid)\n",
    .options = (const struct option[]) {
        {"sim", required_argument, NULL, OPT_SIM},
        {"model", required_argument, NULL, OPT_MODEL},
        {"name", required_argument, NULL, OPT_NAME},
        {"pci", required_argument, NULL, OPT_PCI},
        {"mdev", required_argument, NULL, OPT_MDEV},
        {"cdev", required_argument, NULL, OPT_CDEV},
        {"vmm-users", required_argument, NULL, OPT_VMM_USERS},
        {"vmm-groups", required_argument, NULL, OPT_VMM_GROUPS},
        {},
    },
    .args_size = sizeof(AttachArgs),
    .stores = attach_stores,
    .option = attach_option,
    .options_done = attach_options_done,
    .call = &attach_call,
    .args_done = attach_args_done);

/* ---- detach, show, reset */

/* --force, of state and reset: act on a device of a group alone (the daemon refuses it
 * otherwise, naming the group command). */
enum {
    OPT_ALONE = CLI_OPT_COMMAND_FIRST,
};

static const struct option force_options[] = {
    {"force", no_argument, NULL, OPT_ALONE},
    {},
};

#define FORCE_HELP                                                                                 \
    "  --force        act on this device even though it belongs to a group (the\n"                \
    "                 others stay where they are: the group's P2P-safe order breaks)\n"

/* The args of state and reset. */
typedef struct ForceArgs {
    bool force; /* --force */
} ForceArgs;

static const CliStore force_stores[] = {
    CLI_STORE_FLAG(OPT_ALONE, ForceArgs, force),
    {},
};

OUTPUT_DONE_PRINTERS(detach_json, detach_text, DetachDeviceRequest, id, "detached",
                     "detached %s\n")

static const CliCall detach_call = CLI_CALL(DEVICE_CALL(DetachDevice, detach_device),
                                            cli_build_name, NULL, detach_json, detach_text);

const CliCommand device_commands_detach =
    CLI_BY_ID_COMMAND("detach", "Detach a device from the daemon", &detach_call);

static json_object *
show_json(const void *req _unused_, const void *resp)
{
    return output_json_device(((const VfioMigd__V1__GetDeviceResponse *) resp)->device);
}

static int
show_text(const void *req _unused_, const void *resp)
{
    output_device_fields(((const VfioMigd__V1__GetDeviceResponse *) resp)->device);
    return 0;
}

static const CliCall show_call =
    CLI_CALL(DEVICE_CALL(GetDevice, get_device), cli_build_name, "device", show_json, show_text);

const CliCommand device_commands_show =
    CLI_BY_ID_COMMAND("show", "Show one device: state, flags, counters, properties", &show_call);

static json_object *
reset_json(const void *req, const void *resp)
{
    json_object *o = json_object_new_object();

    output_json_set(o, "id",
                    json_object_new_string(((const VfioMigd__V1__ResetDeviceRequest *) req)->id));
    output_json_set(o, "state",
                    output_json_state(((const VfioMigd__V1__ResetDeviceResponse *) resp)->state));
    return o;
}

static int
reset_text(const void *req, const void *resp)
{
    printf("reset %s: state %s\n", ((const VfioMigd__V1__ResetDeviceRequest *) req)->id,
           output_state_name(((const VfioMigd__V1__ResetDeviceResponse *) resp)->state));
    return 0;
}

static CliExit
reset_build(Cli *cli, void *args, void *request)
{
    VfioMigd__V1__ResetDeviceRequest *req = request;

    req->id = cli->args[0];
    req->force = ((const ForceArgs *) args)->force;
    return CLI_GO_ON;
}

static const CliCall reset_call =
    CLI_CALL(DEVICE_CALL(ResetDevice, reset_device), reset_build, NULL, reset_json, reset_text);

const CliCommand device_commands_reset = CLI_COMMAND(
    "reset", "ID [--force]",
    "Reset a device: back to running, any data session ends", 1, 1,
    .help = FORCE_HELP,
    .options = force_options,
    .args_size = sizeof(ForceArgs),
    .stores = force_stores,
    .call = &reset_call);

/* ---- state */

static json_object *
state_get_json(const void *req _unused_, const void *resp)
{
    const Device *d = ((const VfioMigd__V1__GetDeviceResponse *) resp)->device;
    json_object *o = json_object_new_object();

    output_json_set(o, "id", json_object_new_string(d->id));
    output_json_set(o, "state", output_json_state(d->state));
    return o;
}

static int
state_get_text(const void *req _unused_, const void *resp)
{
    const Device *d = ((const VfioMigd__V1__GetDeviceResponse *) resp)->device;

    printf("%s\n", output_state_name(d->state));
    return 0;
}

static const CliCall state_get_call = CLI_CALL(DEVICE_CALL(GetDevice, get_device), cli_build_name,
                                               "device", state_get_json, state_get_text);

static CliExit
state_set_build(Cli *cli, void *args, void *request)
{
    VfioMigd__V1__SetDeviceStateRequest *req = request;

    req->id = cli->args[0];
    req->force = ((const ForceArgs *) args)->force;
    return cli_parse_state(cli, cli->args[1], &req->target);
}

static json_object *
state_set_json(const void *req, const void *resp)
{
    const VfioMigd__V1__SetDeviceStateRequest *q = req;
    const VfioMigd__V1__SetDeviceStateResponse *r = resp;
    json_object *o = json_object_new_object(), *times = json_object_new_array();

    for (size_t i = 0; i < r->n_arcs; i++) {
        output_json_append(times, json_object_new_uint64(r->arcs[i]->duration_us));
    }
    output_json_set(o, "id", json_object_new_string(q->id));
    output_json_set(o, "state", output_json_state(r->state));
    output_json_set(o, "arcs", output_json_arcs(r->arcs, r->n_arcs));
    output_json_set(o, "arc_times_us", times);
    output_json_set(o, "elapsed_ms", output_json_ms(r->elapsed_us));
    return o;
}

static int
state_set_text(const void *req, const void *resp)
{
    const VfioMigd__V1__SetDeviceStateResponse *r = resp;
    char buf[32];

    for (size_t i = 0; i < r->n_arcs; i++) {
        const VfioMigd__V1__Arc *a = r->arcs[i];

        printf("%-14s -> %-14s %10s%s\n", output_state_name(a->from), output_state_name(a->to),
               output_duration(a->duration_us, buf, sizeof(buf)),
               a->opens_data_session ? "  (opens a data session)" : "");
    }
    printf("%s: %s (%zu arc%s, %s)\n", ((const VfioMigd__V1__SetDeviceStateRequest *) req)->id,
           output_state_name(r->state), r->n_arcs, r->n_arcs == 1 ? "" : "s",
           output_duration(r->elapsed_us, buf, sizeof(buf)));
    return 0;
}

static const CliCall state_set_call =
    CLI_CALL(DEVICE_CALL(SetDeviceState, set_device_state), state_set_build, NULL, state_set_json,
             state_set_text);

/* Without TARGET the state is read (GetDevice), with it the device is moved. */
static CliExit
state_run(Cli *cli, void *args)
{
    return cli_run_call(cli, cli->n_args == 1 ? &state_get_call : &state_set_call, args, NULL);
}

const CliCommand device_commands_state = CLI_COMMAND(
    "state", "ID [TARGET [--force]]",
    "Print a device's state, or move it to TARGET arc by arc", 1, 2,
    .help = "  TARGET         running, stop, stop_copy, resuming, running_p2p, pre_copy,\n"
            "                 pre_copy_p2p (any case; short forms run, sc, res, rp2p, pc, pcp2p)\n"
            FORCE_HELP,
    .options = force_options,
    .args_size = sizeof(ForceArgs),
    .stores = force_stores,
    .run = state_run);

/* ---- path */

enum {
    OPT_FLAGS = CLI_OPT_COMMAND_FIRST,
};

typedef struct PathArgs {
    bool flags_given;
    uint32_t flags; /* --flags */
} PathArgs;

static CliExit
path_option(Cli *cli, int opt _unused_, const char *arg, void *args)
{
    PathArgs *a = args;

    /* --flags is the only option of its own. */
    /* Only the spelling is checked here; which sets are legal is the daemon's answer. */
    if (fsm_flags_from_string(arg, &a->flags) < 0) {
        return cli_usage_error(cli, "bad --flags '%s'; use names joined by '+' from "
                               "stop_copy, p2p, pre_copy (or a number)", arg);
    }
    a->flags_given = true;
    return CLI_GO_ON;
}

static CliExit
path_build(Cli *cli, void *args, void *request)
{
    VfioMigd__V1__ComputePathRequest *req = request;
    const PathArgs *a = args;
    CliExit r;

    req->migration_flags = a->flags_given ? a->flags : MIG_FLAGS_ALL;
    r = cli_parse_state(cli, cli->args[0], &req->from);
    if (r != CLI_GO_ON) {
        return r;
    }
    return cli_parse_state(cli, cli->args[1], &req->to);
}

/* The index of the arc that opens a data session, or -1. */
static int
path_session_arc(const VfioMigd__V1__ComputePathResponse *r)
{
    for (size_t i = 0; i < r->n_arcs; i++) {
        if (r->arcs[i]->opens_data_session) {
            return (int) i;
        }
    }
    return -1;
}

static json_object *
path_json(const void *request, const void *resp)
{
    const VfioMigd__V1__ComputePathRequest *req = request;
    const VfioMigd__V1__ComputePathResponse *r = resp;
    json_object *o = json_object_new_object();

    output_json_set(o, "from", output_json_state(req->from));
    output_json_set(o, "to", output_json_state(req->to));
    output_json_set(o, "flags", output_json_flags(req->migration_flags));
    output_json_set(o, "arcs", output_json_arcs(r->arcs, r->n_arcs));
    output_json_set(o, "data_session_arc", json_object_new_int(path_session_arc(r)));
    return o;
}

static int
path_text(const void *request, const void *resp)
{
    const VfioMigd__V1__ComputePathRequest *req = request;
    const VfioMigd__V1__ComputePathResponse *r = resp;
    int session = path_session_arc(r);

    if (r->n_arcs == 0) {
        printf("%s (already there: no arcs)\n", output_state_name(req->from));
        return 0;
    }
    output_arc_chain(stdout, r->arcs, r->n_arcs);
    if (session < 0) {
        printf("\nno arc opens a data session\n");
    } else {
        printf("\narc %d (%s -> %s) opens a data session\n", session + 1,
               output_state_name(r->arcs[session]->from),
               output_state_name(r->arcs[session]->to));
    }
    return 0;
}

static const CliCall path_call =
    CLI_CALL(DEVICE_CALL(ComputePath, compute_path), path_build, NULL, path_json, path_text);

const CliCommand device_commands_path = CLI_COMMAND(
    "path", "FROM TO [--flags FLAGS]",
    "Show the kernel's arcs from FROM to TO (no device needed)", 2, 2,
    .help = "  --flags FLAGS  the device's migration flags, names joined by '+' from stop_copy,\n"
            "                 p2p, pre_copy, or a number (default: stop_copy+p2p+pre_copy)\n",
    .options = (const struct option[]) {
        {"flags", required_argument, NULL, OPT_FLAGS},
        {},
    },
    .args_size = sizeof(PathArgs),
    .option = path_option,
    .call = &path_call);

/* ---- region (diagnostics) */

#define REGION_MAX_BYTES 4096 /* devices.proto: one access moves 1-4096 bytes */
#define REGION_ARGS 5          /* VERB ID REGION OFFSET LENGTH|HEXBYTES */

/* Where a write's bytes live until the call is made. */
typedef struct RegionArgs {
    uint8_t data[REGION_MAX_BYTES];
} RegionArgs;

/* "7", "0x7": decimal, or hex after 0x (no octal surprises: "010" is ten). */
static CliExit
region_parse_number(Cli *cli, const char *what, const char *s, uint64_t min, uint64_t max,
                    uint64_t *ret)
{
    bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    const char *digits = hex ? s + 2 : s;
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(digits, &end, hex ? 16 : 10);
    /* The range said is the range checked: LENGTH says 1, not 0, and refuses 0. */
    if (!*digits || *end || errno || digits[0] == '-' || digits[0] == '+' || v < min ||
        v > max) {
        return cli_usage_error(cli, "%s '%s' is not a number from %llu to %llu (decimal, or "
                               "hex after 0x)", what, s, (unsigned long long) min,
                               (unsigned long long) max);
    }
    *ret = v;
    return CLI_GO_ON;
}

/* "5a6869" -> bytes; pairs of hex digits, 1-4096 bytes. */
static CliExit
region_parse_hex(Cli *cli, const char *s, uint8_t *buf, size_t *ret_len)
{
    size_t len = strlen(s);

    if (len == 0 || len % 2 || len / 2 > REGION_MAX_BYTES) {
        return cli_usage_error(cli, "HEXBYTES must be 1 to %d bytes as pairs of hex digits "
                               "(e.g. 5a68), got %zu characters", REGION_MAX_BYTES, len);
    }
    for (size_t i = 0; i < len; i += 2) {
        char pair[3] = {s[i], s[i + 1], '\0'};

        if (!isxdigit((unsigned char) pair[0]) || !isxdigit((unsigned char) pair[1])) {
            return cli_usage_error(cli, "'%s' is not hex: '%s' at character %zu", s, pair, i + 1);
        }
        buf[i / 2] = (uint8_t) strtoul(pair, NULL, 16);
    }
    *ret_len = len / 2;
    return CLI_GO_ON;
}

/* ID, REGION and OFFSET of "region VERB ID REGION OFFSET X", for either request. */
static CliExit
region_where(Cli *cli, char **ret_id, uint32_t *ret_region, uint64_t *ret_offset)
{
    uint64_t region, offset;
    CliExit r;

    r = region_parse_number(cli, "REGION", cli->args[2], 0, UINT32_MAX, &region);
    if (r == CLI_GO_ON) {
        r = region_parse_number(cli, "OFFSET", cli->args[3], 0, UINT64_MAX, &offset);
    }
    if (r != CLI_GO_ON) {
        return r;
    }
    *ret_id = cli->args[1];
    *ret_region = (uint32_t) region;
    *ret_offset = offset;
    return CLI_GO_ON;
}

static CliExit
region_read_build(Cli *cli, void *args _unused_, void *request)
{
    VfioMigd__V1__ReadRegionRequest *req = request;
    uint64_t n;
    CliExit r;

    r = region_where(cli, &req->id, &req->region_index, &req->offset);
    if (r == CLI_GO_ON) {
        r = region_parse_number(cli, "LENGTH", cli->args[4], 1, REGION_MAX_BYTES, &n);
    }
    req->length = r == CLI_GO_ON ? (uint32_t) n : 0;
    return r;
}

static CliExit
region_write_build(Cli *cli, void *args, void *request)
{
    VfioMigd__V1__WriteRegionRequest *req = request;
    RegionArgs *a = args;
    CliExit r;

    r = region_where(cli, &req->id, &req->region_index, &req->offset);
    if (r == CLI_GO_ON) {
        r = region_parse_hex(cli, cli->args[4], a->data, &req->data.len);
    }
    req->data.data = a->data;
    return r;
}

static json_object *
region_json(const char *id, uint32_t region, uint64_t offset)
{
    json_object *o = json_object_new_object();

    output_json_set(o, "id", json_object_new_string(id));
    output_json_set(o, "region", json_object_new_uint64(region));
    output_json_set(o, "offset", json_object_new_uint64(offset));
    return o;
}

/* The bytes read as hex digits; NULL when out of memory. */
static char *
region_hex(const VfioMigd__V1__ReadRegionResponse *r)
{
    char *hex = malloc(r->data.len * 2 + 1);

    if (!hex) {
        return NULL;
    }
    hex[0] = '\0';
    for (size_t i = 0; i < r->data.len; i++) {
        (void) snprintf(hex + 2 * i, 3, "%02x", r->data.data[i]);
    }
    return hex;
}

static json_object *
region_read_json(const void *request, const void *resp)
{
    const VfioMigd__V1__ReadRegionRequest *req = request;
    const VfioMigd__V1__ReadRegionResponse *r = resp;
    _cleanup_free_ char *hex = region_hex(r);
    json_object *o;

    if (!hex) {
        return NULL;
    }
    o = region_json(req->id, req->region_index, req->offset);
    output_json_set(o, "length", json_object_new_uint64(r->data.len));
    output_json_set(o, "data", json_object_new_string(hex));
    return o;
}

static int
region_read_text(const void *req _unused_, const void *resp)
{
    _cleanup_free_ char *hex = region_hex((const void *) resp);

    if (!hex) {
        return -ENOMEM;
    }
    printf("%s\n", hex);
    return 0;
}

static json_object *
region_write_json(const void *request, const void *resp)
{
    const VfioMigd__V1__WriteRegionRequest *req = request;
    json_object *o = region_json(req->id, req->region_index, req->offset);

    output_json_set(o, "bytes_written",
                    json_object_new_uint64(
                        ((const VfioMigd__V1__WriteRegionResponse *) resp)->bytes_written));
    return o;
}

static int
region_write_text(const void *request, const void *resp)
{
    const VfioMigd__V1__WriteRegionRequest *req = request;
    uint32_t n = ((const VfioMigd__V1__WriteRegionResponse *) resp)->bytes_written;

    printf("wrote %u byte%s to region %llu of %s at offset %llu\n", n, n == 1 ? "" : "s",
           (unsigned long long) req->region_index, req->id, (unsigned long long) req->offset);
    return 0;
}

static const CliCall region_read_call =
    CLI_CALL(DEVICE_CALL(ReadRegion, read_region), region_read_build, NULL, region_read_json,
             region_read_text);

static const CliCall region_write_call =
    CLI_CALL(DEVICE_CALL(WriteRegion, write_region), region_write_build, NULL, region_write_json,
             region_write_text);

/* The subcommand first, then its arguments: `region frob` is an unknown subcommand, not a
 * missing argument. */
static CliExit
region_run(Cli *cli, void *args)
{
    const char *verb = cli->args[0];
    const CliCall *call = strcmp(verb, "read") == 0    ? &region_read_call
                          : strcmp(verb, "write") == 0 ? &region_write_call
                                                       : NULL;

    if (!call) {
        return cli_usage_error(cli, "unknown subcommand '%s' (read or write)", verb);
    }
    if (cli->n_args < REGION_ARGS) {
        return cli_usage_error(cli, "missing argument; usage: vfio-migctl region %s ID REGION "
                               "OFFSET %s", verb,
                               call == &region_read_call ? "LENGTH" : "HEXBYTES");
    }
    return cli_run_call(cli, call, args, NULL);
}

const CliCommand device_commands_region = CLI_COMMAND(
    "region", "read ID REGION OFFSET LENGTH | write ID REGION OFFSET HEXBYTES",
    "Read or write bytes of a device region (diagnostics)", 1,
    REGION_ARGS, /* the least: region_run(), once it knows the subcommand */
    .help = "  read           print LENGTH (1-4096) bytes as hex, read as one access\n"
            "  write          write HEXBYTES (pairs of hex digits, e.g. 5a68) as one access\n"
            "  REGION         the VFIO region index (vfio-pci: 0-5 BARs, 7 config space)\n"
            "  OFFSET         bytes into the region; decimal, or hex after 0x\n"
            "                 Only while the device runs (running, pre_copy). A device register\n"
            "                 may act on every access: mtty's UART wants 1-byte accesses.\n",
    .args_size = sizeof(RegionArgs),
    .run = region_run);
