/* SPDX-License-Identifier: MIT */
/*
 * group_commands — `vfio-migctl group create|delete|show|list|state|reset`: a command of
 * subcommands, each a row with one call to vfio_migd.v1.GroupService (groups.proto). A failed
 * `group state` prints the daemon's partial result (every device's arcs, failed arc, errno and
 * final state) before the error, as JSON with "error" set under --json.
 */
#include "group_commands.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "util/macro.h"
#include "vfio_migd/v1/groups.pb-c.h"

#define GROUP_CALL(method_, snake_) CLI_METHOD_OF("GroupService", method_, snake_)

typedef VfioMigd__V1__GroupTransitionResponse GroupTransition;

/* ---- output */

static json_object *
json_group_device(const VfioMigd__V1__GroupDeviceResult *d)
{
    json_object *o = json_object_new_object();

    output_json_set(o, "id", json_object_new_string(d->id));
    output_json_set(o, "start_state", output_json_state(d->start_state));
    output_json_set(o, "state", output_json_state(d->state));
    output_json_set(o, "arcs", output_json_arcs(d->arcs, d->n_arcs));
    output_json_set(o, "elapsed_ms", output_json_ms(d->elapsed_us));
    if (d->error[0]) {
        output_json_set(o, "error", json_object_new_string(d->error));
        output_json_set(o, "errno", json_object_new_int(d->errno_value));
        output_json_set(o, "failed_arc", json_object_new_string(d->failed_arc));
    }
    return o;
}

/* Per arc: device, from, to, start and end in ms since the transition began. */
static json_object *
json_timeline(const GroupTransition *t)
{
    json_object *a = json_object_new_array();

    for (size_t i = 0; i < t->n_devices; i++) {
        for (size_t k = 0; k < t->devices[i]->n_arcs; k++) {
            const VfioMigd__V1__Arc *arc = t->devices[i]->arcs[k];
            json_object *o = json_object_new_object();

            output_json_set(o, "id", json_object_new_string(t->devices[i]->id));
            output_json_set(o, "from", output_json_state(arc->from));
            output_json_set(o, "to", output_json_state(arc->to));
            output_json_set(o, "start_ms", output_json_ms(arc->start_us));
            output_json_set(o, "end_ms", output_json_ms(arc->start_us + arc->duration_us));
            if (arc->reset) {
                output_json_set(o, "reset", json_object_new_boolean(1));
            }
            if (arc->errno_value) {
                output_json_set(o, "errno", json_object_new_int(arc->errno_value));
            }
            output_json_append(a, o);
        }
    }
    return a;
}

static json_object *
json_transition(const GroupTransition *t)
{
    json_object *o = json_object_new_object();

    output_json_set(o, "name", json_object_new_string(t->name));
    output_json_set(o, "target", output_json_state(t->target));
    output_json_set(o, "state",
                    t->state ? output_json_state(t->state) : json_object_new_string("mixed"));
    output_json_set(o, "elapsed_ms", output_json_ms(t->elapsed_us));
    output_json_set(o, "phases", json_object_new_int((int) t->phases));
    OUTPUT_JSON_FIELDS(o, t, "rolled_back", "rollback_failed", "forced", "reset");
    output_json_set(o, "devices", OUTPUT_JSON_ARRAY(t->devices, t->n_devices, json_group_device));
    output_json_set(o, "timeline", json_timeline(t));
    return o;
}

static int
arc_start_cmp(const void *a, const void *b)
{
    const VfioMigd__V1__Arc *x = *(VfioMigd__V1__Arc *const *) a;
    const VfioMigd__V1__Arc *y = *(VfioMigd__V1__Arc *const *) b;
    return (x->start_us > y->start_us) - (x->start_us < y->start_us);
}

/* The arcs of every device on one time axis, earliest first. */
static void
print_timeline(const GroupTransition *t)
{
    size_t n = 0, k = 0;
    VfioMigd__V1__Arc **all;
    const char **owner;

    for (size_t i = 0; i < t->n_devices; i++) {
        n += t->devices[i]->n_arcs;
    }
    all = calloc(n ? n : 1, sizeof(*all));
    owner = calloc(n ? n : 1, sizeof(*owner));
    if (!all || !owner) {
        free(all);
        free(owner);
        return;
    }
    for (size_t i = 0; i < t->n_devices; i++) {
        for (size_t j = 0; j < t->devices[i]->n_arcs; j++) {
            all[k++] = t->devices[i]->arcs[j];
        }
    }
    qsort(all, n, sizeof(*all), arc_start_cmp);
    for (size_t i = 0; i < t->n_devices; i++) {
        for (size_t j = 0; j < t->devices[i]->n_arcs; j++) {
            for (size_t m = 0; m < n; m++) {
                if (all[m] == t->devices[i]->arcs[j]) {
                    owner[m] = t->devices[i]->id;
                }
            }
        }
    }
    printf("  %10s %10s  %-16s %s\n", "START(ms)", "END(ms)", "DEVICE", "ARC");
    for (size_t m = 0; m < n; m++) {
        printf("  %10.3f %10.3f  %-16s %s -> %s%s%s\n", all[m]->start_us / 1000.0,
               (all[m]->start_us + all[m]->duration_us) / 1000.0, owner[m],
               output_state_name(all[m]->from), output_state_name(all[m]->to),
               all[m]->reset ? "  (reset)" : "", all[m]->errno_value ? "  FAILED" : "");
    }
    free(all);
    free(owner);
}

/* DEVICE START STATE ERROR, as every table: aligned, "-" for no error, --no-headers. */
static int
print_device_results(const GroupTransition *t)
{
    _cleanup_(output_table_freep) OutputTable *tab = NULL;

    tab = output_table_new(4, "DEVICE", "START", "STATE", "ERROR");
    for (size_t i = 0; tab && i < t->n_devices; i++) {
        const VfioMigd__V1__GroupDeviceResult *d = t->devices[i];
        _cleanup_free_ char *error = NULL;

        if (asprintf(&error, "%s%s%s", d->failed_arc, d->failed_arc[0] ? ": " : "",
                     d->error) < 0) {
            return -ENOMEM;
        }
        if (output_table_add(tab, d->id, output_state_name(d->start_state),
                             output_state_name(d->state), error[0] ? error : "-") < 0) {
            return -ENOMEM;
        }
    }
    if (!tab) {
        return -ENOMEM;
    }
    output_table_print(tab, stdout);
    return 0;
}

static void
print_transition(const GroupTransition *t)
{
    char buf[32];

    if (t->reset) {
        printf("group %s: reset, %s in %s\n", t->name, t->error[0] ? "FAILED" : "done",
               output_duration(t->elapsed_us, buf, sizeof(buf)));
    } else {
        printf("group %s: -> %s, %s in %s (%u phase%s)%s\n", t->name,
               output_state_name(t->target),
               t->error[0] ? (t->rollback_failed ? "FAILED, rollback failed"
                                                 : "failed, rolled back")
                           : "done",
               output_duration(t->elapsed_us, buf, sizeof(buf)), t->phases,
               t->phases == 1 ? "" : "s", t->forced ? " [forced]" : "");
    }
    (void) print_device_results(t);
    print_timeline(t);
}

/* The devices of @g as JSON: [{"id", "state"}], in the group's order. */
static json_object *
json_group_devices(const VfioMigd__V1__Group *g)
{
    json_object *devs = json_object_new_array();

    for (size_t i = 0; i < g->n_device_ids; i++) {
        json_object *d = json_object_new_object();

        output_json_set(d, "id", json_object_new_string(g->device_ids[i]));
        output_json_set(d, "state", output_json_state(i < g->n_states ? g->states[i] : 0));
        output_json_append(devs, d);
    }
    return devs;
}

/* ---- create, delete */

static CliExit
create_build(Cli *cli, void *args _unused_, void *request)
{
    VfioMigd__V1__CreateGroupRequest *req = request;

    req->name = cli->args[0];
    req->n_device_ids = (size_t) cli->n_args - 1;
    req->device_ids = cli->args + 1;
    return CLI_GO_ON;
}

static json_object *
create_json(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__Group *g = ((const VfioMigd__V1__CreateGroupResponse *) resp)->group;
    json_object *o = json_object_new_object();

    /* The same objects as show and list give, not a list of names. */
    output_json_set(o, "name", json_object_new_string(g->name));
    output_json_set(o, "devices", json_group_devices(g));
    return o;
}

static int
create_text(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__Group *g = ((const VfioMigd__V1__CreateGroupResponse *) resp)->group;

    printf("created group %s with %zu device(s)\n", g->name, g->n_device_ids);
    return 0;
}

static const CliCall create_call = CLI_CALL(GROUP_CALL(CreateGroup, create_group), create_build,
                                            "group", create_json, create_text);

OUTPUT_DONE_PRINTERS(delete_json, delete_text, DeleteGroupRequest, name, "deleted",
                     "deleted group %s\n")

static const CliCall delete_call =
    CLI_CALL(GROUP_CALL(DeleteGroup, delete_group), cli_build_name, NULL, delete_json, delete_text);

/* ---- show, list */

static json_object *
json_group(const VfioMigd__V1__Group *g)
{
    json_object *o = json_object_new_object();

    OUTPUT_JSON_FIELDS(o, g, "name", "busy");
    output_json_set(o, "devices", json_group_devices(g));
    if (g->last_transition) {
        output_json_set(o, "last_transition", json_transition(g->last_transition));
    }
    return o;
}

static json_object *
show_json(const void *req _unused_, const void *resp)
{
    return json_group(((const VfioMigd__V1__GetGroupResponse *) resp)->group);
}

static int
show_text(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__Group *g = ((const VfioMigd__V1__GetGroupResponse *) resp)->group;

    _cleanup_(output_table_freep) OutputTable *t = output_table_new(2, "DEVICE", "STATE");

    printf("group %s%s\n", g->name, g->busy ? " (in a transition)" : "");
    for (size_t i = 0; t && i < g->n_device_ids; i++) {
        if (output_table_add(t, g->device_ids[i],
                             output_state_name(i < g->n_states ? g->states[i] : 0)) < 0) {
            return -ENOMEM;
        }
    }
    if (!t) {
        return -ENOMEM;
    }
    output_table_print(t, stdout);
    if (g->last_transition) {
        printf("last transition:\n");
        print_transition(g->last_transition);
    }
    return 0;
}

static const CliCall show_call =
    CLI_CALL(GROUP_CALL(GetGroup, get_group), cli_build_name, "group", show_json, show_text);

OUTPUT_JSON_LIST_PRINTER(list_json, ListGroupsResponse, groups, json_group)

/* The state the group's devices share, "mixed" when they differ (`group show` lists each),
 * "-" for a group without devices. */
static const char *
group_state(const VfioMigd__V1__Group *g)
{
    for (size_t k = 1; k < g->n_states; k++) {
        if (g->states[k] != g->states[0]) {
            return "mixed";
        }
    }
    return g->n_states ? output_state_name(g->states[0]) : "-";
}

static int
list_text(const void *req _unused_, const void *resp)
{
    const VfioMigd__V1__ListGroupsResponse *r = resp;

    _cleanup_(output_table_freep) OutputTable *t = NULL;

    t = output_table_new(4, "NAME", "DEVICES", "STATE", "BUSY");
    for (size_t i = 0; t && i < r->n_groups; i++) {
        const VfioMigd__V1__Group *g = r->groups[i];
        char n[24];

        (void) snprintf(n, sizeof(n), "%zu", g->n_device_ids);
        if (output_table_add(t, g->name, n, group_state(g), g->busy ? "yes" : "no") < 0) {
            return -ENOMEM;
        }
    }
    if (!t) {
        return -ENOMEM;
    }
    output_table_print(t, stdout);
    return 0;
}

static const CliCall list_call =
    CLI_CALL(GROUP_CALL(ListGroups, list_groups), NULL, NULL, list_json, list_text);

/* ---- state */

enum {
    OPT_FORCE = CLI_OPT_COMMAND_FIRST,
};

typedef struct StateArgs {
    bool force; /* --force */
} StateArgs;

static CliExit
state_build(Cli *cli, void *args, void *request)
{
    VfioMigd__V1__GroupTransitionRequest *req = request;

    req->force = ((const StateArgs *) args)->force;
    req->name = cli->args[0];
    return cli_parse_state(cli, cli->args[1], &req->target);
}

static json_object *
state_json(const void *req _unused_, const void *resp)
{
    return json_transition((const GroupTransition *) resp);
}

static int
state_text(const void *req _unused_, const void *resp)
{
    print_transition((const GroupTransition *) resp);
    return 0;
}

/* A failed transition still says where every device ended (.partial_text). */
static const CliCall state_call =
    CLI_CALL(GROUP_CALL(GroupTransition, group_transition), state_build, NULL, state_json,
             state_text, .partial_text = state_text);

/* ---- reset */

/* A failed reset still says where every device ended (.partial_text). */
static const CliCall reset_call =
    CLI_CALL(CLI_METHOD("GroupService", ResetGroup, reset_group_request, group_transition_response),
             cli_build_name, NULL, state_json, state_text, .partial_text = state_text);

/* ---- the command */

static const CliStore state_stores[] = {
    CLI_STORE_FLAG(OPT_FORCE, StateArgs, force),
    {},
};

static const CliCommand subcommands[] = {
    {.name = "create", .min_args = 2, .max_args = 1 + 256, .call = &create_call},
    {.name = "delete", .min_args = 1, .max_args = 1, .call = &delete_call},
    {.name = "show", .min_args = 1, .max_args = 1, .call = &show_call},
    {.name = "list", .call = &list_call},
    {.name = "reset", .min_args = 1, .max_args = 1, .call = &reset_call},
    {
        .name = "state",
        .min_args = 2,
        .max_args = 2,
        .options = (const struct option[]) {
            {"force", no_argument, NULL, OPT_FORCE},
            {},
        },
        .args_size = sizeof(StateArgs),
        .stores = state_stores,
        .call = &state_call,
    },
};

/* argv[1] is the subcommand; everything after it is the subcommand's. */
static CliExit
group_dispatch(Cli *cli, int argc, char **argv)
{
    if (argc < 2) {
        return cli_usage_error(cli, "missing subcommand: create, delete, show, list, state or reset");
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        return cli_help(cli);
    }
    for (size_t i = 0; i < ELEMENTSOF(subcommands); i++) {
        if (strcmp(argv[1], subcommands[i].name) == 0) {
            return cli_run_command(cli, &subcommands[i], argc - 1, argv + 1);
        }
    }
    return cli_usage_error(cli, "unknown subcommand '%s' (create, delete, show, list, state, reset)",
                           argv[1]);
}

const CliCommand group_commands_group = {
    .name = "group",
    .usage = "create NAME ID... | delete NAME | show NAME | list | state NAME TARGET [--force] "
             "| reset NAME",
    .summary = "Manage groups: the devices of one VM, moved together P2P-safely",
    .help = "  create NAME ID...     make a group of attached devices (each in one group at most)\n"
            "  delete NAME           delete a group; its devices stay attached\n"
            "  show NAME             devices, states and the last transition's timeline\n"
            "  list                  every group\n"
            "  state NAME TARGET     move every device to TARGET: to a P2P state first, barrier,\n"
            "                        then TARGET (and the reverse when resuming); rolls back on\n"
            "                        failure and prints where every device ended\n"
            "  --force               allow a group where some device lacks P2P (best-effort "
            "order)\n"
            "  reset NAME            reset every device (state discarded, back to running), all\n"
            "                        at once: the way out of resuming, error or mixed states\n",
    .dispatch = group_dispatch,
};
