/* SPDX-License-Identifier: MIT */
/*
 * group_commands — `vfio-migctl group create|delete|show|list|state`: one short function
 * per subcommand, each one call to vfio_migd.v1.GroupService (groups.proto). A failed
 * `group state` prints the daemon's partial result (every device's arcs, failed arc, errno
 * and final state), as JSON with "error" set under --json.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "output.h"
#include "util/macro.h"
#include "vfio_migd/v1/groups.pb-c.h"

#define GROUP_METHOD(m) "/vfio_migd.v1.GroupService/" m

typedef int (*subcommand_fn)(Cli *cli, int argc, char **argv);

/* ---- output ---- */

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
json_timeline(const VfioMigd__V1__GroupTransitionResponse *t)
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
json_transition(const VfioMigd__V1__GroupTransitionResponse *t)
{
    json_object *o = json_object_new_object(), *devs = json_object_new_array();

    for (size_t i = 0; i < t->n_devices; i++) {
        output_json_append(devs, json_group_device(t->devices[i]));
    }
    output_json_set(o, "name", json_object_new_string(t->name));
    output_json_set(o, "target", output_json_state(t->target));
    output_json_set(o, "state", t->state ? output_json_state(t->state) : json_object_new_string("mixed"));
    output_json_set(o, "elapsed_ms", output_json_ms(t->elapsed_us));
    output_json_set(o, "phases", json_object_new_int((int) t->phases));
    output_json_set(o, "rolled_back", json_object_new_boolean(t->rolled_back));
    output_json_set(o, "rollback_failed", json_object_new_boolean(t->rollback_failed));
    output_json_set(o, "forced", json_object_new_boolean(t->forced));
    output_json_set(o, "devices", devs);
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
print_timeline(const VfioMigd__V1__GroupTransitionResponse *t)
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

static void
print_transition(const VfioMigd__V1__GroupTransitionResponse *t)
{
    char buf[32];

    printf("group %s: -> %s, %s in %s (%u phase%s)%s\n", t->name, output_state_name(t->target),
           t->error[0] ? (t->rollback_failed ? "FAILED, rollback failed" : "failed, rolled back")
                       : "done",
           output_duration(t->elapsed_us, buf, sizeof(buf)), t->phases, t->phases == 1 ? "" : "s",
           t->forced ? " [forced]" : "");
    printf("  %-16s %-13s %-13s %s\n", "DEVICE", "START", "STATE", "ERROR");
    for (size_t i = 0; i < t->n_devices; i++) {
        const VfioMigd__V1__GroupDeviceResult *d = t->devices[i];
        printf("  %-16s %-13s %-13s %s%s%s%s\n", d->id, output_state_name(d->start_state),
               output_state_name(d->state), d->failed_arc, d->failed_arc[0] ? ": " : "",
               d->error, "");
    }
    print_timeline(t);
}

/* ---- subcommands ---- */

static int
group_create(Cli *cli, int argc, char **argv)
{
    VfioMigd__V1__CreateGroupRequest req = VFIO_MIGD__V1__CREATE_GROUP_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__CreateGroupResponse *resp = NULL;
    json_object *o;
    int r;

    r = commands_parse_plain(cli, argc, argv, 2, 1 + 256);
    if (r < 0) {
        return r;
    }
    req.name = argv[optind];
    req.n_device_ids = (size_t) (argc - optind - 1);
    req.device_ids = argv + optind + 1;
    r = commands_call(cli, GROUP_METHOD("CreateGroup"), &req.base,
                      &vfio_migd__v1__create_group_response__descriptor, NULL,
                      (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    if (cli->json) {
        o = json_object_new_object();
        output_json_set(o, "name", json_object_new_string(resp->group->name));
        output_json_set(o, "devices", json_object_new_array());
        for (size_t i = 0; i < resp->group->n_device_ids; i++) {
            output_json_append(json_object_object_get(o, "devices"),
                               json_object_new_string(resp->group->device_ids[i]));
        }
        return output_json_print(o);
    }
    printf("created group %s with %zu device(s)\n", resp->group->name, resp->group->n_device_ids);
    return 0;
}

static int
group_delete(Cli *cli, int argc, char **argv)
{
    VfioMigd__V1__DeleteGroupRequest req = VFIO_MIGD__V1__DELETE_GROUP_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__DeleteGroupResponse *resp = NULL;
    json_object *o;
    int r;

    r = commands_parse_plain(cli, argc, argv, 1, 1);
    if (r < 0) {
        return r;
    }
    req.name = argv[optind];
    r = commands_call(cli, GROUP_METHOD("DeleteGroup"), &req.base,
                      &vfio_migd__v1__delete_group_response__descriptor, NULL,
                      (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    if (cli->json) {
        o = json_object_new_object();
        output_json_set(o, "name", json_object_new_string(req.name));
        output_json_set(o, "deleted", json_object_new_boolean(1));
        return output_json_print(o);
    }
    printf("deleted group %s\n", req.name);
    return 0;
}

static json_object *
json_group(const VfioMigd__V1__Group *g)
{
    json_object *o = json_object_new_object(), *devs = json_object_new_array();

    for (size_t i = 0; i < g->n_device_ids; i++) {
        json_object *d = json_object_new_object();
        output_json_set(d, "id", json_object_new_string(g->device_ids[i]));
        output_json_set(d, "state", output_json_state(i < g->n_states ? g->states[i] : 0));
        output_json_append(devs, d);
    }
    output_json_set(o, "name", json_object_new_string(g->name));
    output_json_set(o, "busy", json_object_new_boolean(g->busy));
    output_json_set(o, "devices", devs);
    if (g->last_transition) {
        output_json_set(o, "last_transition", json_transition(g->last_transition));
    }
    return o;
}

static int
group_show(Cli *cli, int argc, char **argv)
{
    VfioMigd__V1__GetGroupRequest req = VFIO_MIGD__V1__GET_GROUP_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__GetGroupResponse *resp = NULL;
    const VfioMigd__V1__Group *g;
    int r;

    r = commands_parse_plain(cli, argc, argv, 1, 1);
    if (r < 0) {
        return r;
    }
    req.name = argv[optind];
    r = commands_call(cli, GROUP_METHOD("GetGroup"), &req.base,
                      &vfio_migd__v1__get_group_response__descriptor, NULL,
                      (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    g = resp->group;
    if (cli->json) {
        return output_json_print(json_group(g));
    }
    printf("group %s%s\n", g->name, g->busy ? " (in a transition)" : "");
    for (size_t i = 0; i < g->n_device_ids; i++) {
        printf("  %-16s %s\n", g->device_ids[i],
               output_state_name(i < g->n_states ? g->states[i] : 0));
    }
    if (g->last_transition) {
        printf("last transition:\n");
        print_transition(g->last_transition);
    }
    return 0;
}

static int
group_list(Cli *cli, int argc, char **argv)
{
    VfioMigd__V1__ListGroupsRequest req = VFIO_MIGD__V1__LIST_GROUPS_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__ListGroupsResponse *resp = NULL;
    json_object *a;
    int r;

    r = commands_parse_plain(cli, argc, argv, 0, 0);
    if (r < 0) {
        return r;
    }
    r = commands_call(cli, GROUP_METHOD("ListGroups"), &req.base,
                      &vfio_migd__v1__list_groups_response__descriptor, NULL,
                      (ProtobufCMessage **) &resp);
    if (r < 0) {
        return r;
    }
    if (cli->json) {
        a = json_object_new_array();
        for (size_t i = 0; i < resp->n_groups; i++) {
            output_json_append(a, json_group(resp->groups[i]));
        }
        return output_json_print(a);
    }
    printf("%-16s %-8s %s\n", "NAME", "DEVICES", "STATES");
    for (size_t i = 0; i < resp->n_groups; i++) {
        const VfioMigd__V1__Group *g = resp->groups[i];
        printf("%-16s %-8zu", g->name, g->n_device_ids);
        for (size_t k = 0; k < g->n_states; k++) {
            printf("%s%s", k ? "," : " ", output_state_name(g->states[k]));
        }
        printf("%s\n", g->busy ? " (busy)" : "");
    }
    return 0;
}

enum {
    OPT_FORCE = OPT_COMMAND_FIRST + 32,
};

static int
group_state_parse(Cli *cli, int argc, char **argv, VfioMigd__V1__GroupTransitionRequest *req)
{
    static const struct option opts[] = {
        {"force", no_argument, NULL, OPT_FORCE},
        COMMANDS_GLOBAL_OPTIONS,
        {},
    };
    int c;

    commands_parse_begin();
    while ((c = commands_next_option(cli, argc, argv, opts)) > 0) {
        req->force = true; /* --force is the only option of our own */
    }
    if (c < 0) {
        return c;
    }
    c = commands_check_positional(cli, argc, 2, 2);
    if (c < 0) {
        return c;
    }
    req->name = argv[optind];
    return commands_parse_state(cli, argv[optind + 1], &req->target);
}

static int
group_state(Cli *cli, int argc, char **argv)
{
    VfioMigd__V1__GroupTransitionRequest req = VFIO_MIGD__V1__GROUP_TRANSITION_REQUEST__INIT;
    _cleanup_message_ VfioMigd__V1__GroupTransitionResponse *resp = NULL;
    RpcError err = {.code = GRPC_STATUS_UNKNOWN};
    json_object *doc = NULL;
    int r;

    r = group_state_parse(cli, argc, argv, &req);
    if (r < 0) {
        return r;
    }
    r = commands_call_raw(cli, GROUP_METHOD("GroupTransition"), &req.base,
                          &vfio_migd__v1__group_transition_response__descriptor,
                          (ProtobufCMessage **) &resp, &err);
    if (r >= 0) {
        if (cli->json) {
            return output_json_print(json_transition(resp));
        }
        print_transition(resp);
        return 0;
    }
    /* A failed transition still says where every device ended: show it, then the error. */
    if (resp && cli->json) {
        doc = json_transition(resp);
    } else if (resp) {
        print_transition(resp);
    }
    return commands_report_call_error(cli, r, &err, doc);
}

static const struct {
    const char *name;
    subcommand_fn run;
} subcommands[] = {
    {"create", group_create}, {"delete", group_delete}, {"show", group_show},
    {"list", group_list},     {"state", group_state},
};

int
commands_group(Cli *cli, int argc, char **argv)
{
    if (argc < 2) {
        return commands_usage_error(cli, "missing subcommand: create, delete, show, list or state");
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        commands_print_help(cli->command, stdout);
        return -ECANCELED;
    }
    for (size_t i = 0; i < ELEMENTSOF(subcommands); i++) {
        if (strcmp(argv[1], subcommands[i].name) == 0) {
            return subcommands[i].run(cli, argc - 1, argv + 1);
        }
    }
    return commands_usage_error(cli, "unknown subcommand '%s' (create, delete, show, list, state)",
                                argv[1]);
}
