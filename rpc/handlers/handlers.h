/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * handlers — the API's method tables, one per service file, and what the handlers share.
 * Each handler decodes and checks its request, calls one manager/device/group/migration
 * function, and encodes the answer (CONVENTIONS 22); semantic checks live in the daemon
 * modules, and the rules that hold for every call (no change while the daemon shuts down)
 * are checked once, from the table's flags, by rpc/dispatch.c.
 *
 * Used by:  rpc/dispatch.c (the tables), the handler files (the helpers).
 * Threads:  loop only.
 */

#include <limits.h>
#include <stdbool.h>

#include "core/authz.h"
#include "core/fsm.h"
#include "forward.h"
#include "server.h"

/* What every handler gets as userdata. */
typedef struct RpcContext {
    Manager *manager;
    RpcServer *server;
    const AuthzPolicy *authz; /* who may call what (rpc/dispatch.c); NULL: nobody but open
                               * methods */
    const char *config_path;  /* named in refusals: where to grant a role */
} RpcContext;

/* One row of a method table: "/@service/@name", the request and response message
 * descriptors, the handler, and RpcMethodFlags (server.h). Every service uses this form. */
#define METHOD(service, name, req, resp, fn, fl)                                                  \
    {                                                                                              \
        .path = "/" service "/" #name, .request = &(req), .response = &(resp), .handler = (fn),   \
        .flags = (fl),                                                                             \
    }
/* A vfio_migd.v1 message's descriptor, by its protobuf-c (snake case) name. */
#define V1(msg) vfio_migd__v1__##msg##__descriptor
/* The row of a vfio_migd.v1 method named after its messages and handler, as most are: Name
 * (@snake in snake case) takes snake_request, answers snake_response, and is handled by
 * handle_snake(). METHOD_V1_RESP: the same, for a method answering a @resp message that
 * several methods share. The rest use METHOD(). */
#define METHOD_V1(service, Name, snake, fl)                                                        \
    METHOD(service, Name, V1(snake##_request), V1(snake##_response), handle_##snake, fl)
#define METHOD_V1_RESP(service, Name, snake, resp, fl)                                             \
    METHOD(service, Name, V1(snake##_request), V1(resp), handle_##snake, fl)
/* The request a handler got, as its own type. */
#define REQ(type, r) ((const VfioMigd__V1__##type *) (r))

extern const RpcMethod device_methods[];
extern const size_t device_methods_count;
extern const RpcMethod migration_methods[];
extern const size_t migration_methods_count;
extern const RpcMethod group_methods[];
extern const size_t group_methods_count;
extern const RpcMethod system_methods[];
extern const size_t system_methods_count;
extern const RpcMethod irq_methods[];
extern const size_t irq_methods_count;
extern const RpcMethod health_methods[];
extern const size_t health_methods_count;

/* ---- shared by the handlers (handlers.c). The *_or_fail helpers answer the call when they
 * return NULL or false: the handler then simply returns. */

/* Looks a device up: INVALID_ARGUMENT for an id that cannot exist, NOT_FOUND. */
Device *handlers_find_device_or_fail(RpcCall *call, RpcContext *ctx, const char *id);
/* Looks a group up: NOT_FOUND (a name that cannot exist names no group either). */
Group *handlers_find_group_or_fail(RpcCall *call, RpcContext *ctx, const char *name);
/* Looks a migration job up: NOT_FOUND. */
MigrationJob *handlers_find_job_or_fail(RpcCall *call, RpcContext *ctx, const char *id);

/* The longest file path the daemon takes: PATH_MAX less room for the "<path>.partial" it
 * writes first, and for the NUL. */
#define HANDLERS_PATH_MAX (PATH_MAX - 16)
/* A file path as the daemon takes it: absolute (a relative one would be resolved against the
 * daemon's directory, not the caller's) and at most HANDLERS_PATH_MAX - 1 characters. 0, or
 * -EINVAL (empty or relative) / -ENAMETOOLONG (too long) with a sentence in @err. Pure. */
int handlers_check_path(const char *path, char *err, size_t err_size);
bool handlers_path_ok_or_fail(RpcCall *call, const char *path);

/* An API DeviceState number (1-8) as the daemon's state: INVALID_ARGUMENT for 0 (unset) and
 * numbers outside the enum. */
bool handlers_target_or_fail(RpcCall *call, int api_state, DeviceState *ret);

/* Answers @response when @r is 0, else the refusal @r with @err (the sentence the daemon
 * function wrote): the tail of every handler that calls one function and replies. */
void handlers_answer(RpcCall *call, int r, const char *err, const ProtobufCMessage *response);
/* Answers the refusal @r with @err when a *_start() function refused (its callback will never
 * run); nothing when it started (the callback answers). */
void handlers_fail_unless_started(RpcCall *call, int r, const char *err);

/* How a list answer's items are made: @msg_size-byte wrappers (convert.h's DeviceMsg,
 * GroupMsg, ...) holding the API message at @msg_offset. */
typedef struct HandlersList {
    const char *what;   /* "groups": the refusal says "out of memory listing groups" */
    size_t msg_size;
    size_t msg_offset;
    /* Fills the wrapper @msg from item @i of @items: 0, or a negative errno (-ENOMEM). */
    int (*convert)(const void *items, size_t i, void *msg);
    void (*done)(void *msg); /* releases what convert made; NULL: nothing */
} HandlersList;

/* Answers @resp, a list response whose field 1 is its repeated message, with the @n items of
 * @items converted as @list says (in order), or with RESOURCE_EXHAUSTED when memory runs
 * out. The items are released after the answer is encoded. */
void handlers_reply_list(RpcCall *call, ProtobufCMessage *resp, const HandlersList *list,
                         const void *items, size_t n);
