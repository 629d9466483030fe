/* SPDX-License-Identifier: MIT */
/*
 * groups — handlers of vfio_migd.v1.GroupService (rpc/proto/vfio_migd/v1/groups.proto).
 * A failed transition answers ABORTED and attaches the whole GroupTransitionResponse (every
 * device's arcs, failed arc, errno and final state) as the result trailer.
 */
#include <stdio.h>
#include <stdlib.h>

#include "convert.h"
#include "group.h"
#include "handlers.h"
#include "log_object.h"
#include "manager.h"
#include "util/log.h"

static void
reply_group(RpcCall *call, const Group *g, bool create)
{
    VfioMigd__V1__CreateGroupResponse cresp = VFIO_MIGD__V1__CREATE_GROUP_RESPONSE__INIT;
    VfioMigd__V1__GetGroupResponse gresp = VFIO_MIGD__V1__GET_GROUP_RESPONSE__INIT;
    GroupMsg msg;

    if (convert_group(g, !create, &msg) < 0) {
        rpc_call_fail(call, -ENOMEM, "out of memory describing group '%s'", g->name);
        return;
    }
    if (create) {
        cresp.group = &msg.msg;
        rpc_call_reply(call, &cresp.base);
    } else {
        gresp.group = &msg.msg;
        rpc_call_reply(call, &gresp.base);
    }
    convert_group_done(&msg);
}

static void
handle_create_group(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__CreateGroupRequest *req = REQ(CreateGroupRequest, r);
    RpcContext *ctx = userdata;
    char err[512] = "";
    Group *g = NULL;
    int ret;

    ret = group_new(ctx->manager, req->name, (const char *const *) req->device_ids,
                    req->n_device_ids, &g, err, sizeof(err));
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
        return;
    }
    reply_group(call, g, /* create= */ true);
}

static void
handle_delete_group(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__DeleteGroupRequest *req = REQ(DeleteGroupRequest, r);
    VfioMigd__V1__DeleteGroupResponse resp = VFIO_MIGD__V1__DELETE_GROUP_RESPONSE__INIT;
    Group *g = handlers_find_group_or_fail(call, userdata, req->name);
    char err[512] = "";

    if (g) {
        handlers_answer(call, group_delete(g, err, sizeof(err)), err, &resp.base);
    }
}

static void
handle_get_group(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__GetGroupRequest *req = REQ(GetGroupRequest, r);
    Group *g = handlers_find_group_or_fail(call, userdata, req->name);

    if (g) {
        reply_group(call, g, /* create= */ false);
    }
}

static int
list_group(const void *items, size_t i, void *msg)
{
    return convert_group(((Group *const *) items)[i], /* with_timeline= */ false, msg);
}

static void
list_group_done(void *msg)
{
    convert_group_done(msg);
}

static void
handle_list_groups(RpcCall *call, const ProtobufCMessage *r _unused_, void *userdata)
{
    static const HandlersList list = {"groups", sizeof(GroupMsg), offsetof(GroupMsg, msg),
                                      list_group, list_group_done};
    VfioMigd__V1__ListGroupsResponse resp = VFIO_MIGD__V1__LIST_GROUPS_RESPONSE__INIT;
    Manager *m = ((RpcContext *) userdata)->manager;

    handlers_reply_list(call, &resp.base, &list, m->groups, m->n_groups);
}

/* The answer to a transition or a reset: the run, or ABORTED with the run as the trailer and
 * the way out in the message. */
static void
on_run_done(Group *g, const GroupRun *run, void *userdata)
{
    char way_out[DEVICE_WAY_OUT_MAX];
    RpcCall *call = userdata;
    GroupRunMsg msg;

    if (convert_group_run(run, &msg) < 0) {
        rpc_call_fail(call, -ENOMEM, "out of memory describing group '%s'", g->name);
        return;
    }
    if (run->r < 0 && run->reset) {
        log_group_warning(g, "Group '%s' reset failed: %s.", g->name, run->error);
        rpc_call_fail_ex(call, RPC_FAILURE_DEVICE, run->r, &msg.msg.base,
                         "group '%s': reset failed: %s; the devices are left where reported; "
                         "try again with 'vfio-migctl group reset %s', or detach the device "
                         "that fails and attach it again", g->name, run->error, g->name);
    } else if (run->r < 0) {
        log_group_warning(g, "Group '%s' transition to %s failed: %s.", g->name,
                          fsm_state_name(run->target), run->error);
        rpc_call_fail_ex(call, RPC_FAILURE_DEVICE, run->r, &msg.msg.base,
                         "group '%s': transition to %s failed: %s; %s%s", g->name,
                         fsm_state_name(run->target), run->error,
                         run->rollback_failed
                             ? "rollback FAILED: devices are left where reported"
                             : "every device was brought back to its starting state",
                         group_way_out(g, way_out, sizeof(way_out)));
    } else {
        rpc_call_reply(call, &msg.msg.base);
    }
    convert_group_run_done(&msg);
}

static void
handle_group_transition(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__GroupTransitionRequest *req = REQ(GroupTransitionRequest, r);
    DeviceState target;
    char err[1024] = "";
    Group *g;
    int ret;

    if (!(g = handlers_find_group_or_fail(call, userdata, req->name)) ||
        !handlers_target_or_fail(call, req->target, &target)) {
        return;
    }
    ret = group_transition_start(g, target, req->force, on_run_done, call, err,
                                 sizeof(err));
    handlers_fail_unless_started(call, ret, err);
}

static void
handle_reset_group(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__ResetGroupRequest *req = REQ(ResetGroupRequest, r);
    char err[512] = "";
    Group *g;

    if ((g = handlers_find_group_or_fail(call, userdata, req->name))) {
        handlers_fail_unless_started(call, group_reset_start(g, on_run_done, call, err,
                                                             sizeof(err)), err);
    }
}

#define GROUPS "vfio_migd.v1.GroupService"

const RpcMethod group_methods[] = {
    METHOD_V1(GROUPS, CreateGroup, create_group, RPC_MUTATING),
    METHOD_V1(GROUPS, DeleteGroup, delete_group, RPC_MUTATING),
    METHOD_V1(GROUPS, GetGroup, get_group, RPC_READ_ONLY),
    METHOD_V1(GROUPS, ListGroups, list_groups, RPC_READ_ONLY),
    METHOD_V1(GROUPS, GroupTransition, group_transition, RPC_MUTATING),
    METHOD_V1_RESP(GROUPS, ResetGroup, reset_group, group_transition_response, RPC_MUTATING),
};
const size_t group_methods_count = ELEMENTSOF(group_methods);
