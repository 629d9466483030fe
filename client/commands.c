/* SPDX-License-Identifier: MIT */
/*
 * commands — see commands.h. Every command has the same shape: parse (commands_next_option() handles
 * --help and the global options wherever they appear), build the request, call(), print with
 * output.h. call() is the only place a failed call is reported, so the error format and the
 * exit status mapping are the same for every command.
 *
 * The plan of a command function, for a reader adding one:
 *   r = commands_parse_plain(cli, argc, argv, min, max)   -- or a commands_next_option() loop for own options
 *   build the request from argv[optind...]       -- names translated, nothing computed
 *   r = commands_call(cli, DEVICE_METHOD("Name"), &req.base, &..._response__descriptor, NULL, &resp)
 *   print JSON (output_json_*) or text; return 0
 */

#include "commands.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fsm.h"
#include "grpc/health/v1/health.pb-c.h"
#include "migration_commands.h"
#include "output.h"
#include "util/cleanup.h"
#include "util/macro.h"
#include "util/strutil.h"
#include "vfio_migd/v1/devices.pb-c.h"
#include "vfio_migd/v1/migrations.pb-c.h"
#include "vfio_migd/v1/system.pb-c.h"

#define DEVICE_METHOD(m) "/vfio_migd.v1.DeviceService/" m
#define SYSTEM_METHOD(m) "/vfio_migd.v1.SystemService/" m
#define HEALTH_CHECK_METHOD "/grpc.health.v1.Health/Check"

/* --timeout is an int of milliseconds inside: 2147483 s is the largest that fits. */
#define TIMEOUT_MAX_S 2147483.0


/* ---- parsing */


int
commands_usage_error(Cli *cli, const char *fmt, ...)
{
    const char *name = cli->command->name;
    va_list ap;

    fprintf(stderr, "vfio-migctl: %s: ", name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'vfio-migctl %s --help'.\n", name);
    return -EINVAL;
}

int
commands_global_option(Cli *cli, int opt, const char *arg)
{
    double seconds;
    char *end;

    switch (opt) {
    case OPT_JSON:
        cli->json = true;
        return 0;
    case OPT_SOCKET:
        if (!*arg) {
            fprintf(stderr, "vfio-migctl: --socket needs a path\nTry 'vfio-migctl --help'.\n");
            return -EINVAL;
        }
        cli->socket_path = arg;
        return 0;
    case OPT_TIMEOUT:
        errno = 0;
        seconds = strtod(arg, &end);
        if (errno || end == arg || *end || !(seconds >= 0 && seconds <= TIMEOUT_MAX_S)) {
            fprintf(stderr, "vfio-migctl: --timeout: '%s' is not a number of seconds "
                            "(0 waits for ever)\nTry 'vfio-migctl --help'.\n", arg);
            return -EINVAL;
        }
        cli->timeout_ms = (int) (seconds * 1000.0 + 0.5);
        /* A positive value never rounds down to "wait for ever". */
        if (seconds > 0 && cli->timeout_ms == 0) {
            cli->timeout_ms = 1;
        }
        return 0;
    default:
        return -EINVAL;
    }
}

/*
 * getopt_long() over the command's arguments with @opts (which end with
 * COMMANDS_GLOBAL_OPTIONS). Handles --help and the global options itself and returns the next
 * option of the command's own (its val; optarg set), 0 when the options are over (the
 * positional arguments start at optind), -ECANCELED after printing --help, or -EINVAL after
 * reporting a usage error.
 */
int
commands_next_option(Cli *cli, int argc, char **argv, const struct option *opts)
{
    for (;;) {
        int c = getopt_long(argc, argv, ":h", opts, NULL);
        int r;

        switch (c) {
        case -1:
            return 0;
        case 'h':
            commands_print_help(cli->command, stdout);
            return -ECANCELED;
        case ':':
            return commands_usage_error(cli, "option '%s' needs an argument", argv[optind - 1]);
        case '?':
            if (optopt) {
                return commands_usage_error(cli, "invalid option '-%c'", optopt);
            }
            return commands_usage_error(cli, "unrecognized option '%s'", argv[optind - 1]);
        case OPT_JSON:
        case OPT_SOCKET:
        case OPT_TIMEOUT:
            r = commands_global_option(cli, c, optarg);
            if (r < 0) {
                return r;
            }
            break;
        default:
            return c;
        }
    }
}

/* Resets getopt for a command's argv: 0 makes glibc start over, at argv[1]. */
void
commands_parse_begin(void)
{
    optind = 0;
    opterr = 0;
}

/* Checks that min..max positional arguments follow the options. */
int
commands_check_positional(Cli *cli, int argc, int min, int max)
{
    const Command *cmd = cli->command;
    int n = argc - optind;

    if (n >= min && n <= max) {
        return 0;
    }
    return commands_usage_error(cli, "%s; usage: vfio-migctl %s%s%s",
                       n < min ? "missing argument" : "too many arguments", cmd->name,
                       *cmd->usage ? " " : "", cmd->usage);
}

/* For commands that have no options of their own. */
int
commands_parse_plain(Cli *cli, int argc, char **argv, int min, int max)
{
    static const struct option opts[] = {COMMANDS_GLOBAL_OPTIONS, {}};
    int r;

    commands_parse_begin();
    r = commands_next_option(cli, argc, argv, opts);
    if (r != 0) {
        return r < 0 ? r : -EINVAL; /* no command option can come back from @opts */
    }
    return commands_check_positional(cli, argc, min, max);
}

/* A state name as users type it (fsm_state_from_name), as the protocol's number. */
int
commands_parse_state(Cli *cli, const char *name, VfioMigd__V1__DeviceState *ret)
{
    DeviceState s = fsm_state_from_name(name);
    char valid[256] = "";

    if (s >= 0) {
        *ret = (VfioMigd__V1__DeviceState) (s + 1); /* devices.proto: kernel value + 1 */
        return 0;
    }
    for (int i = 0; i < _DEVICE_STATE_MAX; i++) {
        size_t used = strlen(valid);

        (void) snprintf(valid + used, sizeof(valid) - used, "%s%s", i ? ", " : "",
                        fsm_state_name((DeviceState) i));
    }
    return commands_usage_error(cli, "unknown state '%s'; valid states: %s (also the short forms run, sc, "
                       "res, rp2p, pc, pcp2p, err)", name, valid);
}

/* FILE as the daemon needs it: absolute, relative to the CLI's working directory. */
static int
absolute_path(Cli *cli, const char *file, char **ret)
{
    _cleanup_free_ char *cwd = NULL;

    if (!*file) {
        return commands_usage_error(cli, "FILE must not be empty");
    }
    if (file[0] == '/') {
        *ret = strdup(file);
        return *ret ? 0 : -ENOMEM;
    }
    cwd = getcwd(NULL, 0);
    if (!cwd) {
        int r = -errno;

        output_error(cli->command->name, "cannot resolve '%s': %s", file, strerror(-r));
        return r == -EINVAL ? -EIO : r; /* -EINVAL means a usage error to main.c */
    }
    if (asprintf(ret, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, file) < 0) {
        return -ENOMEM;
    }
    return 0;
}

/* ---- the call */

/*
 * Makes the command's one call. On failure reports it (stderr, and with --json @error_doc,
 * or a new object, plus "error" and "code" on stdout) and returns -EHOSTUNREACH when the
 * daemon cannot be reached, else -EREMOTEIO or another negative errno. Takes @error_doc.
 */
/* Makes the client on the first call. */
static int
ensure_client(Cli *cli, RpcError *err)
{
    int r;

    if (cli->client) {
        return 0;
    }
    rpc_client_global_init();
    r = rpc_client_new(cli->socket_path, &cli->client);
    if (r < 0) {
        rpc_client_global_shutdown();
        (void) snprintf(err->message, sizeof(err->message),
                        "cannot set up a client for '%s': %s", cli->socket_path, strerror(-r));
        err->code = GRPC_STATUS_INTERNAL;
        return r == -EINVAL ? -EIO : r; /* -EINVAL means a usage error to main.c */
    }
    return 0;
}

int
commands_call_raw(Cli *cli, const char *method, const ProtobufCMessage *req,
                  const ProtobufCMessageDescriptor *resp_desc, ProtobufCMessage **ret_resp,
                  RpcError *err)
{
    int r = ensure_client(cli, err);

    if (r < 0) {
        return r;
    }
    return rpc_client_call(cli->client, method, req, resp_desc, cli->timeout_ms, ret_resp, err);
}

int
commands_stream_open(Cli *cli, const char *method, const ProtobufCMessage *req,
                     RpcStream **ret, RpcError *err)
{
    int r = ensure_client(cli, err);

    if (r < 0) {
        return r;
    }
    r = rpc_client_stream_open(cli->client, method, req, cli->timeout_ms, ret, err);
    return r == -EINVAL ? -EIO : r;
}

int
commands_report_call_error(Cli *cli, int r, const RpcError *err, json_object *error_doc)
{
    if (!cli->json) {
        json_object_put(error_doc);
        error_doc = NULL;
    } else if (!error_doc) {
        error_doc = json_object_new_object();
    }
    output_call_error(cli->command->name, err, error_doc);
    if (err->code == GRPC_STATUS_UNAVAILABLE) {
        return -EHOSTUNREACH;
    }
    return r == -EINVAL ? -EIO : r;
}

/*
 * Makes the command's one call. On failure reports it (stderr, and with --json @error_doc,
 * or a new object, plus "error" and "code" on stdout) and returns -EHOSTUNREACH when the
 * daemon cannot be reached, else -EREMOTEIO or another negative errno. Takes @error_doc.
 */
int
commands_call(Cli *cli, const char *method, const ProtobufCMessage *req,
              const ProtobufCMessageDescriptor *resp_desc, json_object *error_doc,
              ProtobufCMessage **ret_resp)
{
    RpcError err = {.code = GRPC_STATUS_UNKNOWN};
    ProtobufCMessage *resp = NULL;
    int r;

    r = commands_call_raw(cli, method, req, resp_desc, &resp, &err);
    if (r >= 0) {
        json_object_put(error_doc);
        *ret_resp = resp;
        return 0;
    }
    if (resp) {
        protobuf_c_message_free_unpacked(resp, NULL); /* a partial result nobody asked for */
    }
    return commands_report_call_error(cli, r, &err, error_doc);
}

void
commands_done(Cli *cli)
{
    if (cli->client) {
        rpc_client_free(cli->client);
        cli->client = NULL;
        rpc_client_global_shutdown();
    }
}

void
commands_print_help(const Command *cmd, FILE *f)
{
    fprintf(f, "Usage: vfio-migctl [OPTIONS] %s%s%s\n\n%s.\n", cmd->name, *cmd->usage ? " " : "",
            cmd->usage, cmd->summary);
    if (cmd->options) {
        fprintf(f, "\nOptions:\n%s", cmd->options);
    }
    fprintf(f, "\nGlobal options (also accepted after the command):\n"
               "  --socket PATH      the daemon's socket (default: $VFIO_MIGD_SOCKET or "
               RPC_DEFAULT_SOCKET ")\n"
               "  --json             print one JSON document on stdout\n"
               "  --timeout SECONDS  wait at most SECONDS for the daemon (default 30; 0: "
               "for ever)\n"
               "  -h, --help         show this help\n"
               "\nExit status: 0 success, 1 the daemon answered with an error, 2 usage error,\n"
               "3 the daemon cannot be reached.\n");
}

/* ---- devices */

static int
print_devices(Cli *cli, const VfioMigd__V1__ListDevicesResponse *resp)
{
    _cleanup_(output_table_freep) OutputTable *t = NULL;
    json_object *a;

    if (cli->json) {
        a = json_object_new_array();
        for (size_t i = 0; i < resp->n_devices; i++) {
            output_json_append(a, output_json_device(resp->devices[i]));
        }
        return output_json_print(a);
    }

    t = output_table_new(5, "ID", "BACKEND", "STATE", "FLAGS", "DATA-SIZE");
    if (!t) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < resp->n_devices; i++) {
        const VfioMigd__V1__Device *d = resp->devices[i];
        char flags[64], size[32];

        if (output_table_add(t, d->id, d->backend, output_state_name(d->state),
                             output_flags_string(d->migration_flags, flags, sizeof(flags)),
                             strutil_format_bytes(d->data_size, size, sizeof(size))) < 0) {
            return -ENOMEM;
        }
    }
    output_table_print(t, stdout);
    return 0;
}

int
commands_devices(Cli *cli, int argc, char **argv)
{
    VfioMigd__V1__ListDevicesRequest req = VFIO_MIGD__V1__LIST_DEVICES_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__ListDevicesResponse *resp = NULL;
    int r;

    r = commands_parse_plain(cli, argc, argv, 0, 0);
    if (r < 0) {
        return r;
    }

    r = commands_call(cli, DEVICE_METHOD("ListDevices"), &req.base,
             &vfio_migd__v1__list_devices_response__descriptor, NULL, (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    return print_devices(cli, resp);
}

/* ---- attach */

enum {
    OPT_SIM = OPT_COMMAND_FIRST,
    OPT_MODEL,
    OPT_NAME,
    OPT_PCI,
    OPT_MDEV,
    OPT_CDEV,
};

typedef struct AttachArgs {
    const char *name;
    const char *model;
    const char *sim;          /* --sim OPTS */
    int kernel_case;          /* VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_*, 0: none */
    const char *kernel_value; /* --pci/--mdev/--cdev's argument */
    unsigned n_sources;
} AttachArgs;

static int
attach_parse(Cli *cli, int argc, char **argv, AttachArgs *a)
{
    static const struct option opts[] = {
        {"sim", required_argument, NULL, OPT_SIM},   {"model", required_argument, NULL, OPT_MODEL},
        {"name", required_argument, NULL, OPT_NAME}, {"pci", required_argument, NULL, OPT_PCI},
        {"mdev", required_argument, NULL, OPT_MDEV}, {"cdev", required_argument, NULL, OPT_CDEV},
        COMMANDS_GLOBAL_OPTIONS,                     {},
    };
    int c;

    commands_parse_begin();
    while ((c = commands_next_option(cli, argc, argv, opts)) > 0) {
        if (c == OPT_NAME) {
            a->name = optarg;
        } else if (c == OPT_MODEL) {
            a->model = optarg;
        } else if (c == OPT_SIM) {
            a->sim = optarg;
            a->n_sources++;
        } else {
            a->kernel_case = c == OPT_PCI    ? VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_PCI_ADDRESS
                             : c == OPT_MDEV ? VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_MDEV_UUID
                                             : VFIO_MIGD__V1__KERNEL_SOURCE__ADDRESS_CDEV_PATH;
            a->kernel_value = optarg;
            a->n_sources++;
        }
    }
    if (c < 0) {
        return c;
    }
    if (a->n_sources != 1) {
        return commands_usage_error(cli, "give exactly one of --sim, --pci, --mdev, --cdev");
    }
    if (a->model && !a->sim) {
        return commands_usage_error(cli, "--model applies to --sim devices only");
    }
    return commands_check_positional(cli, argc, 0, 0);
}

int
commands_attach(Cli *cli, int argc, char **argv)
{
    VfioMigd__V1__AttachDeviceRequest req = VFIO_MIGD__V1__ATTACH_DEVICE_REQUEST__INIT;
    VfioMigd__V1__SimSource sim = VFIO_MIGD__V1__SIM_SOURCE__INIT;
    VfioMigd__V1__KernelSource kernel = VFIO_MIGD__V1__KERNEL_SOURCE__INIT;
    _cleanup_message_ VfioMigd__V1__AttachDeviceResponse *resp = NULL;
    AttachArgs a = {};
    const VfioMigd__V1__Device *d;
    int r;

    r = attach_parse(cli, argc, argv, &a);
    if (r < 0) {
        return r;
    }
    req.id = (char *) (a.name ? a.name : "");
    if (a.sim) {
        sim.options = (char *) a.sim;
        sim.model = (char *) (a.model ? a.model : "");
        req.source_case = VFIO_MIGD__V1__ATTACH_DEVICE_REQUEST__SOURCE_SIM;
        req.sim = &sim;
    } else {
        kernel.address_case = (VfioMigd__V1__KernelSource__AddressCase) a.kernel_case;
        kernel.pci_address = (char *) a.kernel_value; /* the union's members share storage */
        req.source_case = VFIO_MIGD__V1__ATTACH_DEVICE_REQUEST__SOURCE_KERNEL;
        req.kernel = &kernel;
    }

    r = commands_call(cli, DEVICE_METHOD("AttachDevice"), &req.base,
             &vfio_migd__v1__attach_device_response__descriptor, NULL,
             (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    d = resp->device;
    if (!d) {
        output_error(cli->command->name, "the daemon's answer has no device");
        return -EBADMSG;
    }
    if (cli->json) {
        json_object *o = output_json_device(d);
        output_json_set(o, "found_state", output_json_state(resp->found_state));
        output_json_set(o, "recovered", json_object_new_boolean(resp->recovered));
        return output_json_print(o);
    }
    printf("attached %s (%s, state %s)\n", d->id, d->backend, output_state_name(d->state));
    if (resp->recovered) {
        printf("note: %s was found in %s (left by a previous owner?) and was reset\n", d->id,
               output_state_name(resp->found_state));
    }
    return 0;
}

/* ---- detach, show, reset */

int
commands_detach(Cli *cli, int argc, char **argv)
{
    VfioMigd__V1__DetachDeviceRequest req = VFIO_MIGD__V1__DETACH_DEVICE_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__DetachDeviceResponse *resp = NULL;
    json_object *o;
    int r;

    r = commands_parse_plain(cli, argc, argv, 1, 1);
    if (r < 0) {
        return r;
    }
    req.id = argv[optind];

    r = commands_call(cli, DEVICE_METHOD("DetachDevice"), &req.base,
             &vfio_migd__v1__detach_device_response__descriptor, NULL,
             (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    if (cli->json) {
        o = json_object_new_object();
        output_json_set(o, "id", json_object_new_string(req.id));
        output_json_set(o, "detached", json_object_new_boolean(1));
        return output_json_print(o);
    }
    printf("detached %s\n", req.id);
    return 0;
}

/* GetDevice for @id; the caller frees *ret. */
static int
get_device(Cli *cli, const char *id, VfioMigd__V1__GetDeviceResponse **ret)
{
    VfioMigd__V1__GetDeviceRequest req = VFIO_MIGD__V1__GET_DEVICE_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__GetDeviceResponse *resp = NULL;
    int r;

    req.id = (char *) id;
    r = commands_call(cli, DEVICE_METHOD("GetDevice"), &req.base,
             &vfio_migd__v1__get_device_response__descriptor, NULL, (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    if (!resp->device) {
        output_error(cli->command->name, "the daemon's answer has no device");
        return -EBADMSG;
    }
    *ret = TAKE_PTR(resp);
    return 0;
}

int
commands_show(Cli *cli, int argc, char **argv)
{
    _cleanup_message_ VfioMigd__V1__GetDeviceResponse *resp = NULL;
    int r;

    r = commands_parse_plain(cli, argc, argv, 1, 1);
    if (r < 0) {
        return r;
    }

    r = get_device(cli, argv[optind], &resp);
    if (r < 0) {
        return r;
    }
    if (cli->json) {
        return output_json_print(output_json_device(resp->device));
    }
    output_device_fields(resp->device);
    return 0;
}

int
commands_reset(Cli *cli, int argc, char **argv)
{
    VfioMigd__V1__ResetDeviceRequest req = VFIO_MIGD__V1__RESET_DEVICE_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__ResetDeviceResponse *resp = NULL;
    json_object *o;
    int r;

    r = commands_parse_plain(cli, argc, argv, 1, 1);
    if (r < 0) {
        return r;
    }
    req.id = argv[optind];

    r = commands_call(cli, DEVICE_METHOD("ResetDevice"), &req.base,
             &vfio_migd__v1__reset_device_response__descriptor, NULL,
             (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    if (cli->json) {
        o = json_object_new_object();
        output_json_set(o, "id", json_object_new_string(req.id));
        output_json_set(o, "state", output_json_state(resp->state));
        return output_json_print(o);
    }
    printf("reset %s: state %s\n", req.id, output_state_name(resp->state));
    return 0;
}

/* ---- state */

static int
state_show(Cli *cli, const char *id)
{
    _cleanup_message_ VfioMigd__V1__GetDeviceResponse *resp = NULL;
    json_object *o;
    int r;

    r = get_device(cli, id, &resp);
    if (r < 0) {
        return r;
    }
    if (cli->json) {
        o = json_object_new_object();
        output_json_set(o, "id", json_object_new_string(resp->device->id));
        output_json_set(o, "state", output_json_state(resp->device->state));
        return output_json_print(o);
    }
    printf("%s\n", output_state_name(resp->device->state));
    return 0;
}

static int
state_print(Cli *cli, const char *id, const VfioMigd__V1__SetDeviceStateResponse *resp)
{
    json_object *o, *times;
    char buf[32];

    if (cli->json) {
        o = json_object_new_object();
        times = json_object_new_array();
        for (size_t i = 0; i < resp->n_arcs; i++) {
            output_json_append(times, json_object_new_uint64(resp->arcs[i]->duration_us));
        }
        output_json_set(o, "id", json_object_new_string(id));
        output_json_set(o, "state", output_json_state(resp->state));
        output_json_set(o, "arcs", output_json_arcs(resp->arcs, resp->n_arcs));
        output_json_set(o, "arc_times_us", times);
        output_json_set(o, "elapsed_ms", output_json_ms(resp->elapsed_us));
        return output_json_print(o);
    }
    for (size_t i = 0; i < resp->n_arcs; i++) {
        const VfioMigd__V1__Arc *a = resp->arcs[i];

        printf("%-14s -> %-14s %10s%s\n", output_state_name(a->from), output_state_name(a->to),
               output_duration(a->duration_us, buf, sizeof(buf)),
               a->opens_data_session ? "  (opens a data session)" : "");
    }
    printf("%s: %s (%zu arc%s, %s)\n", id, output_state_name(resp->state), resp->n_arcs,
           resp->n_arcs == 1 ? "" : "s", output_duration(resp->elapsed_us, buf, sizeof(buf)));
    return 0;
}

int
commands_state(Cli *cli, int argc, char **argv)
{
    VfioMigd__V1__SetDeviceStateRequest req = VFIO_MIGD__V1__SET_DEVICE_STATE_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__SetDeviceStateResponse *resp = NULL;
    int r;

    r = commands_parse_plain(cli, argc, argv, 1, 2);
    if (r < 0) {
        return r;
    }
    if (optind + 1 == argc) {
        return state_show(cli, argv[optind]);
    }
    req.id = argv[optind];
    r = commands_parse_state(cli, argv[optind + 1], &req.target);
    if (r < 0) {
        return r;
    }

    r = commands_call(cli, DEVICE_METHOD("SetDeviceState"), &req.base,
             &vfio_migd__v1__set_device_state_response__descriptor, NULL,
             (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    return state_print(cli, req.id, resp);
}

/* ---- path */

enum {
    OPT_FLAGS = OPT_COMMAND_FIRST,
};

static int
path_parse(Cli *cli, int argc, char **argv, VfioMigd__V1__ComputePathRequest *req)
{
    static const struct option opts[] = {
        {"flags", required_argument, NULL, OPT_FLAGS},
        COMMANDS_GLOBAL_OPTIONS,
        {},
    };
    int c, r;

    req->migration_flags = MIG_FLAGS_ALL;
    commands_parse_begin();
    while ((c = commands_next_option(cli, argc, argv, opts)) > 0) {
        /* Only the spelling is checked here; which sets are legal is the daemon's answer. */
        if (fsm_flags_from_string(optarg, &req->migration_flags) < 0) {
            return commands_usage_error(cli, "bad --flags '%s'; use names joined by '+' from "
                               "stop_copy, p2p, pre_copy (or a number)", optarg);
        }
    }
    if (c < 0) {
        return c;
    }
    r = commands_check_positional(cli, argc, 2, 2);
    if (r < 0) {
        return r;
    }
    r = commands_parse_state(cli, argv[optind], &req->from);
    if (r < 0) {
        return r;
    }
    return commands_parse_state(cli, argv[optind + 1], &req->to);
}

static int
path_print(Cli *cli, const VfioMigd__V1__ComputePathRequest *req,
           const VfioMigd__V1__ComputePathResponse *resp)
{
    int session = -1;
    json_object *o;

    for (size_t i = 0; i < resp->n_arcs && session < 0; i++) {
        if (resp->arcs[i]->opens_data_session) {
            session = (int) i;
        }
    }
    if (cli->json) {
        o = json_object_new_object();
        output_json_set(o, "from", output_json_state(req->from));
        output_json_set(o, "to", output_json_state(req->to));
        output_json_set(o, "flags", output_json_flags(req->migration_flags));
        output_json_set(o, "arcs", output_json_arcs(resp->arcs, resp->n_arcs));
        output_json_set(o, "data_session_arc", json_object_new_int(session));
        return output_json_print(o);
    }
    if (resp->n_arcs == 0) {
        printf("%s (already there: no arcs)\n", output_state_name(req->from));
        return 0;
    }
    output_arc_chain(stdout, resp->arcs, resp->n_arcs);
    if (session < 0) {
        printf("\nno arc opens a data session\n");
    } else {
        printf("\narc %d (%s -> %s) opens a data session\n", session + 1,
               output_state_name(resp->arcs[session]->from),
               output_state_name(resp->arcs[session]->to));
    }
    return 0;
}

int
commands_path(Cli *cli, int argc, char **argv)
{
    VfioMigd__V1__ComputePathRequest req = VFIO_MIGD__V1__COMPUTE_PATH_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__ComputePathResponse *resp = NULL;
    int r;

    r = path_parse(cli, argc, argv, &req);
    if (r < 0) {
        return r;
    }

    r = commands_call(cli, DEVICE_METHOD("ComputePath"), &req.base,
             &vfio_migd__v1__compute_path_response__descriptor, NULL,
             (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    return path_print(cli, &req, resp);
}

/* ---- save, restore */

enum {
    OPT_RESUME = OPT_COMMAND_FIRST,
    OPT_FORCE,
    OPT_STOP,
    OPT_GROUP,
    OPT_DEVICE,
};

/* The options save and restore both take, before COMMANDS_GLOBAL_OPTIONS in their tables. */
#define TRANSFER_TARGET_OPTIONS                                                                    \
    {"group", no_argument, NULL, OPT_GROUP}, {"device", no_argument, NULL, OPT_DEVICE}

/* `save NAME FILE` or `restore NAME FILE` as parsed. Each command's option table lets only
 * its own options through, so the other command's flags stay false. */
typedef struct TransferArgs {
    /* --group, --device, or neither (ANY): what NAME is; without either the daemon looks NAME
     * up and says in its answer what it found */
    VfioMigd__V1__MigrationSubject subject;
    bool resume;    /* save --resume */
    bool overwrite; /* save --force */
    bool stop;      /* restore --stop */
    char *id;       /* NAME, in argv */
    char *path;     /* FILE made absolute (absolute_path()); owned */
} TransferArgs;

static void
transfer_args_done(TransferArgs *a)
{
    free(a->path);
}

/* Applies one option of save or restore; giving both --group and --device is a usage error. */
static int
transfer_option(Cli *cli, int c, TransferArgs *a)
{
    VfioMigd__V1__MigrationSubject t;

    switch (c) {
    case OPT_RESUME:
        a->resume = true;
        return 0;
    case OPT_FORCE:
        a->overwrite = true;
        return 0;
    case OPT_STOP:
        a->stop = true;
        return 0;
    case OPT_GROUP:
    case OPT_DEVICE:
        t = c == OPT_GROUP ? VFIO_MIGD__V1__MIGRATION_SUBJECT__MIGRATION_SUBJECT_GROUP
                           : VFIO_MIGD__V1__MIGRATION_SUBJECT__MIGRATION_SUBJECT_DEVICE;
        if (a->subject != VFIO_MIGD__V1__MIGRATION_SUBJECT__MIGRATION_SUBJECT_ANY &&
            a->subject != t) {
            return commands_usage_error(cli, "give --group or --device, not both");
        }
        a->subject = t;
        return 0;
    default:
        return -EINVAL; /* not in save's or restore's table */
    }
}

/* Parses save's or restore's arguments with the command's option table @opts: the options,
 * NAME and FILE, then FILE made absolute. */
static int
transfer_parse(Cli *cli, int argc, char **argv, const struct option *opts, TransferArgs *a)
{
    int c, r;

    commands_parse_begin();
    while ((c = commands_next_option(cli, argc, argv, opts)) > 0) {
        r = transfer_option(cli, c, a);
        if (r < 0) {
            return r;
        }
    }
    if (c < 0) {
        return c;
    }
    r = commands_check_positional(cli, argc, 2, 2);
    if (r < 0) {
        return r;
    }
    a->id = argv[optind];
    return absolute_path(cli, argv[optind + 1], &a->path);
}

/* Parses save's or restore's arguments with the command's option table @opts, then makes
 * the one call: Save when @save, else Restore. */
static int
transfer_run(Cli *cli, int argc, char **argv, const struct option *opts, bool save)
{
    _cleanup_(transfer_args_done) TransferArgs a = {};
    VfioMigd__V1__SaveRequest sreq = VFIO_MIGD__V1__SAVE_REQUEST__INIT;
    VfioMigd__V1__RestoreRequest rreq = VFIO_MIGD__V1__RESTORE_REQUEST__INIT;
    int r = transfer_parse(cli, argc, argv, opts, &a);

    if (r < 0) {
        return r;
    }
    if (save) {
        sreq.name = a.id;
        sreq.path = a.path;
        sreq.overwrite = a.overwrite;
        sreq.resume = a.resume;
        sreq.subject = a.subject;
        return commands_transfer(cli, "Save", &sreq.base, "saved", a.path);
    }
    rreq.name = a.id;
    rreq.path = a.path;
    rreq.stop = a.stop;
    rreq.subject = a.subject;
    return commands_transfer(cli, "Restore", &rreq.base, "restored", a.path);
}

int
commands_save(Cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"resume", no_argument, NULL, OPT_RESUME},
        {"force", no_argument, NULL, OPT_FORCE},
        TRANSFER_TARGET_OPTIONS,
        COMMANDS_GLOBAL_OPTIONS,
        {},
    };

    return transfer_run(cli, argc, argv, opts, /* save= */ true);
}

int
commands_restore(Cli *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"stop", no_argument, NULL, OPT_STOP},
        TRANSFER_TARGET_OPTIONS,
        COMMANDS_GLOBAL_OPTIONS,
        {},
    };

    return transfer_run(cli, argc, argv, opts, /* save= */ false);
}

/* ---- health, version */

/* grpc.health.v1 ServingStatus: the name printed, and its JSON spelling. */
static const struct {
    const char *name;
    const char *json;
} serving_status[] = {
    [GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__UNKNOWN] = {"UNKNOWN", "unknown"},
    [GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING] = {"SERVING", "serving"},
    [GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING] =
        {"NOT_SERVING", "not_serving"},
    [GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN] =
        {"SERVICE_UNKNOWN", "service_unknown"},
};

int
commands_health(Cli *cli, int argc, char **argv)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    _cleanup_message_ Grpc__Health__V1__HealthCheckResponse *resp = NULL;
    size_t status;
    json_object *o;
    int r;

    r = commands_parse_plain(cli, argc, argv, 0, 1);
    if (r < 0) {
        return r;
    }
    req.service = optind < argc ? argv[optind] : "";

    r = commands_call(cli, HEALTH_CHECK_METHOD, &req.base,
             &grpc__health__v1__health_check_response__descriptor, NULL,
             (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    status = (size_t) resp->status < ELEMENTSOF(serving_status) ? (size_t) resp->status : 0;
    if (cli->json) {
        o = json_object_new_object();
        output_json_set(o, "service", json_object_new_string(req.service));
        output_json_set(o, "status", json_object_new_string(serving_status[status].json));
        r = output_json_print(o);
        if (r < 0) {
            return r;
        }
    } else {
        printf("%s\n", serving_status[status].name);
    }
    /* Anything but SERVING is an answer, not a failed call: exit 1, with nothing more to say
     * than the status just printed. */
    if (resp->status != GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
        return -EREMOTEIO;
    }
    return 0;
}

static int
version_print(Cli *cli, const VfioMigd__V1__GetVersionResponse *v)
{
    char uptime[32], backends_text[256] = "";
    json_object *o, *backends;

    for (size_t i = 0; i < v->n_backends; i++) {
        size_t used = strlen(backends_text);

        (void) snprintf(backends_text + used, sizeof(backends_text) - used, "%s%s",
                        i ? ", " : "", v->backends[i]);
    }

    if (cli->json) {
        o = json_object_new_object();
        backends = json_object_new_array();
        for (size_t i = 0; i < v->n_backends; i++) {
            output_json_append(backends, json_object_new_string(v->backends[i]));
        }
        output_json_set(o, "client_version", json_object_new_string(VFIO_MIGD_VERSION));
        output_json_set(o, "daemon_version", json_object_new_string(v->version));
        output_json_set(o, "api", json_object_new_string(v->api));
        output_json_set(o, "pid", json_object_new_uint64(v->pid));
        output_json_set(o, "uptime_ms", json_object_new_uint64(v->uptime_ms));
        output_json_set(o, "grpc_core", json_object_new_string(v->grpc_core_version));
        output_json_set(o, "backends", backends);
        return output_json_print(o);
    }
    output_field("daemon", "%s (api %s)", v->version, v->api);
    output_field("pid", "%u", v->pid);
    output_field("uptime", "%s", output_duration(v->uptime_ms * 1000, uptime, sizeof(uptime)));
    output_field("grpc core", "%s", v->grpc_core_version);
    output_field("backends", "%s", backends_text);
    return 0;
}

int
commands_version(Cli *cli, int argc, char **argv)
{
    VfioMigd__V1__GetVersionRequest req = VFIO_MIGD__V1__GET_VERSION_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__GetVersionResponse *resp = NULL;
    json_object *error_doc = NULL;
    int r;

    r = commands_parse_plain(cli, argc, argv, 0, 0);
    if (r < 0) {
        return r;
    }
    /* The client's version is printed whatever the daemon does (CONVENTIONS 23). */
    if (cli->json) {
        error_doc = json_object_new_object();
        output_json_set(error_doc, "client_version", json_object_new_string(VFIO_MIGD_VERSION));
    } else {
        output_field("client", "%s", VFIO_MIGD_VERSION);
    }

    r = commands_call(cli, SYSTEM_METHOD("GetVersion"), &req.base,
             &vfio_migd__v1__get_version_response__descriptor, error_doc,
             (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    return version_print(cli, resp);
}

/* ---- region (diagnostics) */

#define REGION_MAX_BYTES 4096 /* devices.proto: one access moves 1-4096 bytes */

/* "7", "0x7": decimal, or hex after 0x (no octal surprises: "010" is ten). */
static int
region_parse_number(Cli *cli, const char *what, const char *s, uint64_t max, uint64_t *ret)
{
    bool hex = s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
    const char *digits = hex ? s + 2 : s;
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(digits, &end, hex ? 16 : 10);
    if (!*digits || *end || errno || digits[0] == '-' || digits[0] == '+' || v > max) {
        return commands_usage_error(cli, "%s '%s' is not a number from 0 to %llu (decimal, or "
                                    "hex after 0x)", what, s, (unsigned long long) max);
    }
    *ret = v;
    return 0;
}

/* "5a6869" -> bytes; pairs of hex digits, 1-4096 bytes. Returns the count or -EINVAL. */
static int
region_parse_hex(Cli *cli, const char *s, uint8_t *buf)
{
    size_t len = strlen(s);

    if (len == 0 || len % 2 || len / 2 > REGION_MAX_BYTES) {
        return commands_usage_error(cli, "HEXBYTES must be 1 to %d bytes as pairs of hex digits "
                                    "(e.g. 5a68), got %zu characters", REGION_MAX_BYTES, len);
    }
    for (size_t i = 0; i < len; i += 2) {
        char pair[3] = {s[i], s[i + 1], '\0'};

        if (!isxdigit((unsigned char) pair[0]) || !isxdigit((unsigned char) pair[1])) {
            return commands_usage_error(cli, "'%s' is not hex: '%s' at character %zu", s, pair,
                                        i + 1);
        }
        buf[i / 2] = (uint8_t) strtoul(pair, NULL, 16);
    }
    return (int) (len / 2);
}

static json_object *
region_json(const char *id, uint64_t region, uint64_t offset)
{
    json_object *o = json_object_new_object();

    output_json_set(o, "id", json_object_new_string(id));
    output_json_set(o, "region", json_object_new_uint64(region));
    output_json_set(o, "offset", json_object_new_uint64(offset));
    return o;
}

static int
region_read(Cli *cli, const char *id, uint64_t region, uint64_t offset, const char *length)
{
    VfioMigd__V1__ReadRegionRequest req = VFIO_MIGD__V1__READ_REGION_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__ReadRegionResponse *resp = NULL;
    _cleanup_free_ char *hex = NULL;
    uint64_t n;
    json_object *o;
    int r;

    r = region_parse_number(cli, "LENGTH", length, REGION_MAX_BYTES, &n);
    if (r < 0) {
        return r;
    }
    req.id = (char *) id;
    req.region_index = (uint32_t) region;
    req.offset = offset;
    req.length = (uint32_t) n;
    r = commands_call(cli, DEVICE_METHOD("ReadRegion"), &req.base,
                      &vfio_migd__v1__read_region_response__descriptor, NULL,
                      (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    hex = malloc(resp->data.len * 2 + 1);
    if (!hex) {
        return -ENOMEM;
    }
    hex[0] = '\0';
    for (size_t i = 0; i < resp->data.len; i++) {
        (void) snprintf(hex + 2 * i, 3, "%02x", resp->data.data[i]);
    }
    if (cli->json) {
        o = region_json(id, region, offset);
        output_json_set(o, "length", json_object_new_uint64(resp->data.len));
        output_json_set(o, "data", json_object_new_string(hex));
        return output_json_print(o);
    }
    printf("%s\n", hex);
    return 0;
}

static int
region_write(Cli *cli, const char *id, uint64_t region, uint64_t offset, const char *hex)
{
    VfioMigd__V1__WriteRegionRequest req = VFIO_MIGD__V1__WRITE_REGION_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__WriteRegionResponse *resp = NULL;
    uint8_t buf[REGION_MAX_BYTES];
    json_object *o;
    int n, r;

    n = region_parse_hex(cli, hex, buf);
    if (n < 0) {
        return n;
    }
    req.id = (char *) id;
    req.region_index = (uint32_t) region;
    req.offset = offset;
    req.data.data = buf;
    req.data.len = (size_t) n;
    r = commands_call(cli, DEVICE_METHOD("WriteRegion"), &req.base,
                      &vfio_migd__v1__write_region_response__descriptor, NULL,
                      (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    if (cli->json) {
        o = region_json(id, region, offset);
        output_json_set(o, "bytes_written", json_object_new_uint64(resp->bytes_written));
        return output_json_print(o);
    }
    printf("wrote %u byte%s to region %llu of %s at offset %llu\n", resp->bytes_written,
           resp->bytes_written == 1 ? "" : "s", (unsigned long long) region, id,
           (unsigned long long) offset);
    return 0;
}

int
commands_region(Cli *cli, int argc, char **argv)
{
    const char *verb;
    uint64_t region, offset;
    int r;

    r = commands_parse_plain(cli, argc, argv, 5, 5);
    if (r < 0) {
        return r;
    }
    verb = argv[optind];
    if (strcmp(verb, "read") != 0 && strcmp(verb, "write") != 0) {
        return commands_usage_error(cli, "unknown subcommand '%s' (read or write)", verb);
    }
    r = region_parse_number(cli, "REGION", argv[optind + 2], UINT32_MAX, &region);
    if (r >= 0) {
        r = region_parse_number(cli, "OFFSET", argv[optind + 3], UINT64_MAX, &offset);
    }
    if (r < 0) {
        return r;
    }
    if (verb[0] == 'r') {
        return region_read(cli, argv[optind + 1], region, offset, argv[optind + 4]);
    }
    return region_write(cli, argv[optind + 1], region, offset, argv[optind + 4]);
}
