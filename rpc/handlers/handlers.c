/* SPDX-License-Identifier: MIT */
/*
 * handlers — see handlers.h: the helpers every service's handlers share, so that a lookup,
 * a path or a state number is refused with the same status and words whichever method
 * carries it.
 */
#include "handlers.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "convert.h"
#include "group.h"
#include "manager.h"
#include "migration.h"
#include "util/cleanup.h"
#include "util/strutil.h"

Device *
handlers_find_device_or_fail(RpcCall *call, RpcContext *ctx, const char *id)
{
    Device *d;

    if (!strutil_id_is_valid(id)) {
        rpc_call_fail(call, -EINVAL, "'%.64s' is not a valid device id", id);
        return NULL;
    }
    d = manager_find(ctx->manager, id);
    if (!d) {
        rpc_call_fail(call, -ENOENT, "no device with id '%s'", id);
    }
    return d;
}

Group *
handlers_find_group_or_fail(RpcCall *call, RpcContext *ctx, const char *name)
{
    Group *g = strutil_id_is_valid(name) ? group_find(ctx->manager, name) : NULL;

    if (!g) {
        rpc_call_fail(call, -ENOENT, "no group named '%.64s'", name);
    }
    return g;
}

MigrationJob *
handlers_find_job_or_fail(RpcCall *call, RpcContext *ctx, const char *id)
{
    MigrationJob *j = migration_find(ctx->manager, id);

    if (!j) {
        rpc_call_fail(call, -ENOENT, "no migration with id '%.64s'", id);
    }
    return j;
}

int
handlers_check_path(const char *path, char *err, size_t err_size)
{
    size_t len = path ? strlen(path) : 0;

    if (len == 0 || path[0] != '/') {
        (void) snprintf(err, err_size, "the file path must be absolute (on the daemon's host), "
                        "got '%.256s'", path ? path : "");
        return -EINVAL;
    }
    if (len >= HANDLERS_PATH_MAX) {
        (void) snprintf(err, err_size, "the file path is %zu characters long; the daemon takes "
                        "at most %d", len, HANDLERS_PATH_MAX - 1);
        return -ENAMETOOLONG;
    }
    return 0;
}

bool
handlers_path_ok_or_fail(RpcCall *call, const char *path)
{
    char err[512];
    int r = handlers_check_path(path, err, sizeof(err));

    if (r < 0) {
        rpc_call_fail(call, r, "%s", err);
        return false;
    }
    return true;
}

bool
handlers_target_or_fail(RpcCall *call, int api_state, DeviceState *ret)
{
    DeviceState s = convert_state_from_api(api_state);

    if (s < 0) {
        rpc_call_fail(call, -EINVAL,
                      "target state %d is not a VFIO migration state (1-8 in the API; 0 is unset)",
                      api_state);
        return false;
    }
    *ret = s;
    return true;
}

void
handlers_fail_unless_started(RpcCall *call, int r, const char *err)
{
    if (r < 0) {
        rpc_call_fail(call, r, "%s", err);
    }
}

void
handlers_answer(RpcCall *call, int r, const char *err, const ProtobufCMessage *response)
{
    if (r < 0) {
        rpc_call_fail(call, r, "%s", err);
        return;
    }
    rpc_call_reply(call, response);
}

void
handlers_reply_list(RpcCall *call, ProtobufCMessage *resp, const HandlersList *list,
                    const void *items, size_t n)
{
    const ProtobufCFieldDescriptor *f = &resp->descriptor->fields[0];
    _cleanup_free_ char *msgs = calloc(n ? n : 1, list->msg_size);
    _cleanup_free_ void **ptrs = calloc(n ? n : 1, sizeof(*ptrs));
    size_t done = 0;

    /* The list responses' layout (the .proto's field 1): our bug if not. */
    assert(f->id == 1 && f->label == PROTOBUF_C_LABEL_REPEATED);
    for (; msgs && ptrs && done < n; done++) {
        if (list->convert(items, done, msgs + done * list->msg_size) < 0) {
            break;
        }
        ptrs[done] = msgs + done * list->msg_size + list->msg_offset;
    }
    if (!msgs || !ptrs || done < n) {
        rpc_call_fail(call, -ENOMEM, "out of memory listing %s", list->what);
    } else {
        *(size_t *) ((char *) resp + f->quantifier_offset) = n;
        *(void ***) ((char *) resp + f->offset) = ptrs;
        rpc_call_reply(call, resp);
    }
    for (size_t i = 0; list->done && msgs && i < done; i++) {
        list->done(msgs + i * list->msg_size);
    }
}
