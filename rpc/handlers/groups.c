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
#include "manager.h"
#include "util/log.h"
#include "util/strutil.h"

#define REQ(type, r) ((const VfioMigd__V1__##type *) (r))

static Group *
find_group_or_fail(RpcCall *call, RpcContext *ctx, const char *name)
{
    Group *g = strutil_id_is_valid(name) ? group_find(ctx->manager, name) : NULL;

    if (!g) {
        rpc_call_fail(call, -ENOENT, "no group named '%.64s'", name);
    }
    return g;
}

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
    reply_group(call, g, true);
}

static void
handle_delete_group(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__DeleteGroupRequest *req = REQ(DeleteGroupRequest, r);
    VfioMigd__V1__DeleteGroupResponse resp = VFIO_MIGD__V1__DELETE_GROUP_RESPONSE__INIT;
    Group *g = find_group_or_fail(call, userdata, req->name);
    char err[512] = "";
    int ret;

    if (!g) {
        return;
    }
    ret = group_delete(g, err, sizeof(err));
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
        return;
    }
    rpc_call_reply(call, &resp.base);
}

static void
handle_get_group(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__GetGroupRequest *req = REQ(GetGroupRequest, r);
    Group *g = find_group_or_fail(call, userdata, req->name);

    if (g) {
        reply_group(call, g, false);
    }
}

static void
handle_list_groups(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    VfioMigd__V1__ListGroupsResponse resp = VFIO_MIGD__V1__LIST_GROUPS_RESPONSE__INIT;
    Manager *m = ((RpcContext *) userdata)->manager;
    GroupMsg *msgs = calloc(m->n_groups ? m->n_groups : 1, sizeof(*msgs));
    VfioMigd__V1__Group **ptrs = calloc(m->n_groups ? m->n_groups : 1, sizeof(*ptrs));
    size_t done = 0;

    (void) r;
    for (; msgs && ptrs && done < m->n_groups; done++) {
        if (convert_group(m->groups[done], false, &msgs[done]) < 0) {
            break;
        }
        ptrs[done] = &msgs[done].msg;
    }
    if (!msgs || !ptrs || done < m->n_groups) {
        rpc_call_fail(call, -ENOMEM, "out of memory listing groups");
    } else {
        resp.n_groups = m->n_groups;
        resp.groups = ptrs;
        rpc_call_reply(call, &resp.base);
    }
    for (size_t i = 0; msgs && i < done; i++) {
        convert_group_done(&msgs[i]);
    }
    free(msgs);
    free(ptrs);
}

static void
on_transition_done(Group *g, const GroupRun *run, void *userdata)
{
    RpcCall *call = userdata;
    GroupRunMsg msg;

    if (convert_group_run(run, &msg) < 0) {
        rpc_call_fail(call, -ENOMEM, "out of memory describing group '%s'", g->name);
        return;
    }
    if (run->r < 0) {
        log_warning("Group '%s' transition to %s failed: %s.", g->name,
                    fsm_state_name(run->target), run->error);
        rpc_call_fail_with_result(call, GRPC_STATUS_ABORTED, &msg.msg.base,
                                  "group '%s': transition to %s failed: %s; %s", g->name,
                                  fsm_state_name(run->target), run->error,
                                  run->rollback_failed
                                      ? "rollback FAILED: devices are left where reported"
                                      : "every device was brought back to its starting state");
    } else {
        rpc_call_reply(call, &msg.msg.base);
    }
    convert_group_run_done(&msg);
}

static void
handle_group_transition(RpcCall *call, const ProtobufCMessage *r, void *userdata)
{
    const VfioMigd__V1__GroupTransitionRequest *req = REQ(GroupTransitionRequest, r);
    DeviceState target = convert_state_from_api(req->target);
    RpcContext *ctx = userdata;
    char err[1024] = "";
    Group *g;
    int ret;

    if (ctx->manager->shutting_down) {
        rpc_call_fail(call, -ESHUTDOWN, "vfio-migd is shutting down");
        return;
    }
    if (!(g = find_group_or_fail(call, ctx, req->name))) {
        return;
    }
    if (target < 0) {
        rpc_call_fail(call, -EINVAL,
                      "target state %d is not a VFIO migration state (1-8 in the API; 0 is unset)",
                      (int) req->target);
        return;
    }
    ret = group_transition_start(g, target, req->force, on_transition_done, call, err,
                                 sizeof(err));
    if (ret < 0) {
        rpc_call_fail(call, ret, "%s", err);
    }
}

#define METHOD(name, snake, resp)                                                                  \
    {                                                                                              \
        "/vfio_migd.v1.GroupService/" #name, &vfio_migd__v1__##snake##_request__descriptor,        \
            &vfio_migd__v1__##resp##__descriptor, handle_##snake,                                  \
    }

const RpcMethod group_methods[] = {
    METHOD(CreateGroup, create_group, create_group_response),
    METHOD(DeleteGroup, delete_group, delete_group_response),
    METHOD(GetGroup, get_group, get_group_response),
    METHOD(ListGroups, list_groups, list_groups_response),
    METHOD(GroupTransition, group_transition, group_transition_response),
};
const size_t group_methods_count = ELEMENTSOF(group_methods);
