/* SPDX-License-Identifier: MIT */
/*
 * system_commands — `vfio-migctl health` (grpc.health.v1.Health/Check) and `version`
 * (vfio_migd.v1.SystemService/GetVersion): what any daemon answers, whatever its devices.
 * `version` prints the client's own version first, so that it is known even when the daemon
 * cannot be reached. `log-level [LEVEL]` (GetLogLevel / SetLogLevel) reads or changes the
 * daemon's log level at run time, as `ovs-appctl vlog/set` does.
 */

#include "system_commands.h"

#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "output.h"
#include "vfio_migd/v1/system.pb-c.h"

/* ---- health */

typedef Grpc__Health__V1__HealthCheckResponse HealthCheckResponse;

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

/* The index into serving_status[]: UNKNOWN for a status this client does not know. */
static size_t
health_status(const void *resp)
{
    size_t status = (size_t) ((const HealthCheckResponse *) resp)->status;

    return status < ELEMENTSOF(serving_status) ? status : 0;
}

static CliExit
health_build(Cli *cli, void *args _unused_, void *req)
{
    ((Grpc__Health__V1__HealthCheckRequest *) req)->service = cli->n_args ? cli->args[0] : "";
    return CLI_GO_ON;
}

static json_object *
health_json(const void *req, const void *resp)
{
    const Grpc__Health__V1__HealthCheckRequest *q = req;
    json_object *o = json_object_new_object();

    output_json_set(o, "service", json_object_new_string(q->service));
    output_json_set(o, "status", json_object_new_string(serving_status[health_status(resp)].json));
    return o;
}

static int
health_text(const void *req _unused_, const void *resp)
{
    printf("%s\n", serving_status[health_status(resp)].name);
    return 0;
}

/* Anything but SERVING is an answer, not a failed call: exit 1, with nothing more to say than
 * the status just printed. */
static CliExit
health_outcome(const void *resp)
{
    return ((const HealthCheckResponse *) resp)->status ==
                   GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
               ? CLI_EXIT_OK
               : CLI_EXIT_FAILED;
}

static const CliCall health_call = {
    .method = "/grpc.health.v1.Health/Check",
    .request = &grpc__health__v1__health_check_request__descriptor,
    .response = &grpc__health__v1__health_check_response__descriptor,
    .build = health_build,
    .json = health_json,
    .text = health_text,
    .outcome = health_outcome,
};

const CliCommand system_commands_health = CLI_COMMAND(
    "health", "[SERVICE]",
    "Check the daemon's health (exit 0 only when SERVING)", 0, 1,
    .help = "  SERVICE        '' (default: the whole daemon) or one of its services:\n"
            "                 vfio_migd.v1.DeviceService, vfio_migd.v1.GroupService,\n"
            "                 vfio_migd.v1.MigrationService, vfio_migd.v1.SystemService,\n"
            "                 grpc.health.v1.Health; each answers as the daemon does\n",
    .call = &health_call);

/* ---- version */

static json_object *
version_json(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__GetVersionResponse *v = resp;
    json_object *o = json_object_new_object();

    output_json_set(o, "client_version", json_object_new_string(VFIO_MIGD_VERSION));
    output_json_set(o, "daemon_version", json_object_new_string(v->version));
    OUTPUT_JSON_FIELDS(o, v, "api", "pid", "uptime_ms");
    output_json_set(o, "grpc_core", json_object_new_string(v->grpc_core_version));
    output_json_set(o, "backends",
                    OUTPUT_JSON_ARRAY(v->backends, v->n_backends, json_object_new_string));
    return o;
}

static int
version_text(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__GetVersionResponse *v = resp;
    char uptime[32], backends[256] = "";

    for (size_t i = 0; i < v->n_backends; i++) {
        size_t used = strlen(backends);

        (void) snprintf(backends + used, sizeof(backends) - used, "%s%s", i ? ", " : "",
                        v->backends[i]);
    }
    output_field("daemon", "%s (api %s)", v->version, v->api);
    output_field("pid", "%u", v->pid);
    output_field("uptime", "%s", output_duration(v->uptime_ms * 1000, uptime, sizeof(uptime)));
    output_field("grpc core", "%s", v->grpc_core_version);
    output_field("backends", "%s", backends);
    return 0;
}

static const CliCall version_call =
    CLI_CALL(CLI_METHOD_OF("SystemService", GetVersion, get_version), NULL, NULL, version_json,
             version_text);

/* The client's version is printed whatever the daemon does (CONVENTIONS 23): as a line before
 * the call, or in the JSON document of a failed one. */
static CliExit
version_run(Cli *cli, void *args)
{
    json_object *error_doc = NULL;

    if (cli->json) {
        error_doc = json_object_new_object();
        output_json_set(error_doc, "client_version", json_object_new_string(VFIO_MIGD_VERSION));
    } else {
        output_field("client", "%s", VFIO_MIGD_VERSION);
    }
    return cli_run_call(cli, &version_call, args, error_doc);
}

const CliCommand system_commands_version = CLI_COMMAND(
    "version", "",
    "Print the client's and the daemon's versions", 0, 0,
    .run = version_run);

/* ---- log-level */

static CliExit
log_level_build(Cli *cli, void *args _unused_, void *req)
{
    ((VfioMigd__V1__SetLogLevelRequest *) req)->level = cli->args[0];
    return cli_require(cli, "LEVEL", cli->args[0]);
}

static json_object *
log_level_json(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__LogLevelResponse *r = resp;
    json_object *o = json_object_new_object();

    output_json_set(o, "level", json_object_new_string(r->level));
    if (r->previous[0]) {
        output_json_set(o, "previous", json_object_new_string(r->previous));
    }
    return o;
}

static int
log_level_text(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__LogLevelResponse *r = resp;

    if (r->previous[0]) {
        printf("log level %s (was %s)\n", r->level, r->previous);
    } else {
        printf("%s\n", r->level);
    }
    return 0;
}

static const CliCall get_log_level_call =
    CLI_CALL(CLI_METHOD("SystemService", GetLogLevel, get_log_level_request, log_level_response),
             NULL, NULL, log_level_json, log_level_text);

static const CliCall set_log_level_call =
    CLI_CALL(CLI_METHOD("SystemService", SetLogLevel, set_log_level_request, log_level_response),
             log_level_build, NULL, log_level_json, log_level_text);

static CliExit
log_level_run(Cli *cli, void *args)
{
    return cli_run_call(cli, cli->n_args ? &set_log_level_call : &get_log_level_call, args, NULL);
}

const CliCommand system_commands_log_level = CLI_COMMAND(
    "log-level", "[LEVEL]",
    "Print the daemon's log level, or set it to LEVEL until a reload", 0, 1,
    .help = "  LEVEL          error, warning, notice, info or debug; without it, print the\n"
            "                 level in force. A reload (SIGHUP) or a restart applies the\n"
            "                 configured level ([daemon] log_level) again\n",
    .run = log_level_run);

/* ---- plugins */

static json_object *
plugin_json(const VfioMigd__V1__Plugin *p)
{
    json_object *o = json_object_new_object();

    OUTPUT_JSON_FIELDS(o, p, "name", "version", "abi", "description", "path");
    output_json_set(o, "claims", OUTPUT_JSON_ARRAY(p->claims, p->n_claims, json_object_new_string));
    output_json_set(o, "sim_model", p->sim_model[0] ? json_object_new_string(p->sim_model) : NULL);
    return o;
}

OUTPUT_JSON_LIST_PRINTER(plugins_json, ListPluginsResponse, plugins, plugin_json)

static int
plugins_text(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__ListPluginsResponse *r = resp;

    if (r->n_plugins == 0) {
        printf("no plugins loaded (see the daemon's plugin_dir and its log)\n");
    }
    for (size_t i = 0; i < r->n_plugins; i++) {
        const VfioMigd__V1__Plugin *p = r->plugins[i];

        printf("%s %s (ABI %s)%s%s\n", p->name, p->version, p->abi, p->description[0] ? ": " : "",
               p->description);
        for (size_t k = 0; k < p->n_claims; k++) {
            printf("  claims %s\n", p->claims[k]);
        }
        if (p->sim_model[0]) {
            printf("  sim model %s\n", p->sim_model);
        }
    }
    return 0;
}

static const CliCall plugins_call =
    CLI_CALL(CLI_METHOD_OF("SystemService", ListPlugins, list_plugins), NULL, NULL, plugins_json,
             plugins_text);

const CliCommand system_commands_plugins = CLI_COMMAND(
    "plugins", "",
    "List the vendor plugins the daemon loaded and the devices each claims", 0, 0,
    .call = &plugins_call);

/* ---- host-devices, bind */

static json_object *
host_device_json(const VfioMigd__V1__HostDevice *d)
{
    json_object *o = json_object_new_object();

    OUTPUT_JSON_FIELDS(o, d, "address", "bus", "vendor_id", "device_id", "driver",
                       "variant_driver");
    output_json_set(o, "plugin", d->plugin[0] ? json_object_new_string(d->plugin) : NULL);
    OUTPUT_JSON_FIELDS(o, d, "mdev_type", "can_migrate");
    output_json_set(o, "prerequisites",
                    OUTPUT_JSON_ARRAY(d->prerequisites, d->n_prerequisites,
                                      output_json_prerequisite));
    output_json_set(o, "plugin_error",
                    d->plugin_error[0] ? json_object_new_string(d->plugin_error) : NULL);
    return o;
}

OUTPUT_JSON_LIST_PRINTER(host_devices_json, ListHostDevicesResponse, devices,
                         host_device_json)

static int
host_devices_text(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__ListHostDevicesResponse *r = resp;

    for (size_t i = 0; i < r->n_devices; i++) {
        const VfioMigd__V1__HostDevice *d = r->devices[i];

        printf("%s %s%s%s%s driver %s (needs %s) plugin %s: %s\n", d->address,
               d->vendor_id[0] ? d->vendor_id : "", d->vendor_id[0] ? ":" : "", d->device_id,
               d->mdev_type[0] ? d->mdev_type : "", d->driver[0] ? d->driver : "-",
               d->variant_driver, d->plugin[0] ? d->plugin : "-",
               d->can_migrate ? "can migrate" : "cannot migrate now");
        for (size_t k = 0; k < d->n_prerequisites; k++) {
            const VfioMigd__V1__Prerequisite *p = d->prerequisites[k];

            if (!p->ok) {
                printf("  FAILED %s: %s%s%s\n", p->check, p->message, p->fix[0] ? "; fix: " : "",
                       p->fix);
            }
        }
        if (d->plugin_error[0]) {
            printf("  plugin error: %s\n", d->plugin_error);
        }
    }
    return 0;
}

static const CliCall host_devices_call =
    CLI_CALL(CLI_METHOD_OF("SystemService", ListHostDevices, list_host_devices), NULL, NULL,
             host_devices_json, host_devices_text);

const CliCommand system_commands_host_devices = CLI_COMMAND(
    "host-devices", "",
    "List the host's functions and mdevs a plugin claims or VFIO holds, whether "
    "each can migrate now, and the fixes", 0, 0,
    .call = &host_devices_call);

static CliExit
bind_build(Cli *cli, void *args _unused_, void *req)
{
    ((VfioMigd__V1__BindHostDeviceRequest *) req)->address = cli->args[0];
    return CLI_GO_ON;
}

static json_object *
bind_json(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__BindHostDeviceResponse *r = resp;
    json_object *o = json_object_new_object();

    OUTPUT_JSON_FIELDS(o, r, "address", "driver_before", "driver", "changed");
    return o;
}

static int
bind_text(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__BindHostDeviceResponse *r = resp;

    if (r->changed) {
        printf("%s: bound to %s (was %s)\n", r->address, r->driver,
               r->driver_before[0] ? r->driver_before : "unbound");
    } else {
        printf("%s: already bound to %s\n", r->address, r->driver);
    }
    return 0;
}

static const CliCall bind_call =
    CLI_CALL(CLI_METHOD_OF("SystemService", BindHostDevice, bind_host_device), bind_build, NULL,
             bind_json, bind_text);

const CliCommand system_commands_bind = CLI_COMMAND(
    "bind", "ADDRESS",
    "Bind PCI function ADDRESS to the driver it needs to migrate (unbind, "
    "driver_override, bind)", 1, 1,
    .call = &bind_call);
