/* SPDX-License-Identifier: MIT */
/*
 * client — see client.h. Blocking unary calls with the gRPC C core API: one channel and one
 * pluck completion queue per RpcClient, one batch per call (shared reference grpc-core.md §3).
 *
 * The batch always carries RECV_INITIAL_METADATA: without it a Trailers-Only answer (any error
 * status sent without a message) never completes and the call hangs (grpc-core.md §7, pitfall
 * 2). Calls are made without wait_for_ready, so a channel that cannot connect fails them at
 * once with UNAVAILABLE instead of queueing them until the deadline; the socket path is also
 * looked at (client_socket.c) until the daemon has answered once, so the common "daemon not
 * running" case gets a plain message without gRPC's connection diagnostics.
 *
 * Used by:  client/ (vfio-migctl), bench/, tests.
 * Threads:  one thread per RpcClient at a time; rpc_client_global_init() before any client.
 */

#include "client.h"
#include "client_internal.h"
#include "grpc_setup.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "pb.h"
#include "util/cleanup.h"
#include "util/macro.h"

/*
 * Reconnect backoff of the channel. gRPC's defaults (1 s initial, 120 s maximum) make a
 * client that tried before the daemon was up wait seconds after it is; calls made while the
 * channel backs off fail at once with UNAVAILABLE, so short values only cost a few
 * connect() attempts on a local socket. GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is left alone on
 * purpose: despite its name it is the minimum time a connection attempt may take to get the
 * server's HTTP/2 SETTINGS, and 100 ms would fail a daemon that is merely slow to answer.
 */
#define RPC_RECONNECT_BACKOFF_MS 100
#define RPC_RECONNECT_BACKOFF_MAX_MS 1000

/* What the user can do about an unreachable daemon; the CLI's option, also apt for tests. */
#define RPC_UNREACHABLE_HINT "is the daemon running? use --socket"


/* What one unary batch brought back. */
typedef struct RpcReply {
    grpc_status_code status;
    grpc_slice details;          /* the status message; always unref'd */
    grpc_byte_buffer *message;   /* NULL when the daemon sent none */
    grpc_byte_buffer *result_detail; /* RPC_RESULT_TRAILER of a failed call, or NULL */
} RpcReply;

/* Each code by its name in grpc's status.h, spelled once: the string is the enumerator's. */
#define STATUS_NAME(code) [GRPC_STATUS_##code] = #code
static const char *const status_names[] = {
    STATUS_NAME(OK),
    STATUS_NAME(CANCELLED),
    STATUS_NAME(UNKNOWN),
    STATUS_NAME(INVALID_ARGUMENT),
    STATUS_NAME(DEADLINE_EXCEEDED),
    STATUS_NAME(NOT_FOUND),
    STATUS_NAME(ALREADY_EXISTS),
    STATUS_NAME(PERMISSION_DENIED),
    STATUS_NAME(RESOURCE_EXHAUSTED),
    STATUS_NAME(FAILED_PRECONDITION),
    STATUS_NAME(ABORTED),
    STATUS_NAME(OUT_OF_RANGE),
    STATUS_NAME(UNIMPLEMENTED),
    STATUS_NAME(INTERNAL),
    STATUS_NAME(UNAVAILABLE),
    STATUS_NAME(DATA_LOSS),
    STATUS_NAME(UNAUTHENTICATED),
};
#undef STATUS_NAME

/* ---- public */

void
rpc_client_global_init(void)
{
    (void) rpc_grpc_init();
}

void
rpc_client_global_shutdown(void)
{
    grpc_shutdown();
}

const char *
rpc_status_code_name(grpc_status_code code)
{
    if ((int) code < 0 || (size_t) code >= ELEMENTSOF(status_names) || !status_names[code]) {
        return "UNKNOWN";
    }
    return status_names[code];
}

char *
rpc_client_target(const char *path)
{
    static const char hex[] = "0123456789ABCDEF";
    char *target = malloc(strlen("unix:") + 3 * strlen(path) + 1);
    char *p = target;

    if (!target) {
        return NULL;
    }
    p = stpcpy(p, "unix:");
    for (const unsigned char *s = (const unsigned char *) path; *s; s++) {
        if (isalnum(*s) || strchr("/-._~", *s)) {
            *p++ = (char) *s;
        } else {
            *p++ = '%';
            *p++ = hex[*s >> 4];
            *p++ = hex[*s & 0xf];
        }
    }
    *p = '\0';
    return target;
}

int
rpc_client_new(const char *socket_path, RpcClient **ret)
{
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
         .value.integer = RPC_RECONNECT_BACKOFF_MS},
        {.type = GRPC_ARG_INTEGER,
         .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
         .value.integer = RPC_RECONNECT_BACKOFF_MAX_MS},
        /* Our own connection per client, as client.h promises: the benchmark's threads
         * each get one, and one client's failure never affects another's. */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, .value.integer = 1},
        /* Unary calls to a local daemon: a retried mutating call could act twice. */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 0},
    };
    grpc_channel_args channel_args = {.num_args = ELEMENTSOF(args), .args = args};
    grpc_channel_credentials *creds;
    _cleanup_free_ char *target = NULL;
    RpcClient *c;

    if (!socket_path || !*socket_path || !ret) {
        return -EINVAL;
    }
    target = rpc_client_target(socket_path);
    if (!target) {
        return -ENOMEM;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        return -ENOMEM;
    }
    c->socket_path = strdup(socket_path);
    c->cq = grpc_completion_queue_create_for_pluck(NULL);
    creds = grpc_insecure_credentials_create();
    c->channel = grpc_channel_create(target, creds, &channel_args);
    grpc_channel_credentials_release(creds);
    if (!c->socket_path || !c->cq || !c->channel) {
        rpc_client_free(c);
        return -ENOMEM;
    }

    *ret = c;
    return 0;
}

void
rpc_client_free(RpcClient *c)
{
    if (!c) {
        return;
    }
    if (c->channel) {
        grpc_channel_destroy(c->channel);
    }
    if (c->cq) {
        /* Drain before destroying: destroying a queue with events left is a use-after-free
         * (grpc-core.md §7, pitfall 8). No call is in flight, so this returns quickly. */
        grpc_completion_queue_shutdown(c->cq);
        while (grpc_completion_queue_pluck(c->cq, NULL, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL)
                   .type != GRPC_QUEUE_SHUTDOWN) {
        }
        grpc_completion_queue_destroy(c->cq);
    }
    free(c->socket_path);
    free(c);
}

/* ---- one call */

gpr_timespec
rpc_deadline_from_timeout(int timeout_ms)
{
    if (timeout_ms <= 0) {
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    }
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

static void
ops_fill(grpc_op ops[6], grpc_byte_buffer *request, grpc_metadata_array *initial_md,
         grpc_metadata_array *trailing_md, RpcReply *reply)
{
    /* flags and reserved must be 0 (grpc-core.md §7, pitfall 6). */
    memset(ops, 0, 6 * sizeof(ops[0]));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    /* Required even though we ignore it: see the file comment (pitfall 2). */
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = initial_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &reply->message;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = trailing_md;
    ops[5].data.recv_status_on_client.status = &reply->status;
    ops[5].data.recv_status_on_client.status_details = &reply->details;
}

/* A failed call may carry the daemon's partial result (what moved, where each device ended)
 * in the RPC_RESULT_TRAILER trailer: keep a copy of it for the caller. */
static void
reply_take_result_detail(const grpc_metadata_array *md, RpcReply *reply)
{
    for (size_t i = 0; i < md->count; i++) {
        if (grpc_slice_str_cmp(md->metadata[i].key, RPC_RESULT_TRAILER) == 0) {
            grpc_slice v = grpc_slice_copy(md->metadata[i].value);
            reply->result_detail = grpc_raw_byte_buffer_create(&v, 1);
            grpc_slice_unref(v);
            return;
        }
    }
}

/* Releases what a batch brought back; the slice is always there, the buffers may be NULL. */
static void
reply_done(RpcReply *reply)
{
    grpc_slice_unref(reply->details);
    if (reply->message) {
        grpc_byte_buffer_destroy(reply->message);
    }
    if (reply->result_detail) {
        grpc_byte_buffer_destroy(reply->result_detail);
    }
}

grpc_call *
rpc_client_create_call(RpcClient *c, const char *method, gpr_timespec deadline)
{
    grpc_slice method_slice = grpc_slice_from_copied_string(method);
    grpc_call *call = grpc_channel_create_call(c->channel, NULL, GRPC_PROPAGATE_DEFAULTS, c->cq,
                                               method_slice, NULL, deadline, NULL);

    grpc_slice_unref(method_slice); /* the call holds its own reference */
    return call;
}

/* Runs one unary batch to completion. On 0, @reply holds the status, its details and the
 * message, which the caller releases; on failure nothing is left to release. */
static int
call_run(RpcClient *c, const char *method, grpc_byte_buffer *request, gpr_timespec deadline,
         RpcReply *reply)
{
    grpc_metadata_array initial_md, trailing_md;
    grpc_event ev = {.type = GRPC_QUEUE_TIMEOUT};
    grpc_call *call = rpc_client_create_call(c, method, deadline);
    grpc_call_error e;
    grpc_op ops[6];
    int r = 0;

    if (!call) {
        return -ENOMEM;
    }

    grpc_metadata_array_init(&initial_md);
    grpc_metadata_array_init(&trailing_md);
    *reply = (RpcReply) {.status = GRPC_STATUS_UNKNOWN, .details = grpc_empty_slice()};
    ops_fill(ops, request, &initial_md, &trailing_md, reply);

    /* The client is the tag: it runs one call at a time on its own queue. */
    e = grpc_call_start_batch(call, ops, ELEMENTSOF(ops), c, NULL);
    if (e == GRPC_CALL_OK) {
        /* The call's deadline ends it; the wait adds the interrupt. */
        r = rpc_client_wait(c, call, c, gpr_inf_future(GPR_CLOCK_MONOTONIC), &ev);
    }

    /* Before the unref: the metadata's slices may live in the call's arena. */
    reply_take_result_detail(&trailing_md, reply);
    grpc_call_unref(call);
    grpc_metadata_array_destroy(&initial_md);
    grpc_metadata_array_destroy(&trailing_md);
    if (r < 0 || e != GRPC_CALL_OK || ev.type != GRPC_OP_COMPLETE || !ev.success) {
        reply_done(reply);
        return r < 0 ? r : -EIO;
    }
    return 0;
}

/* ---- waiting, interruptibly */

void
rpc_client_set_interrupt(RpcClient *c, const volatile sig_atomic_t *flag)
{
    c->interrupt = flag;
}

/* gRPC's pluck cannot be woken by a signal (it retries EINTR), so the wait is cut into
 * slices of RPC_INTERRUPT_CHECK_MS, and the flag is looked at between two. */
int
rpc_client_wait(RpcClient *c, grpc_call *call, void *tag, gpr_timespec deadline,
                grpc_event *ret)
{
    for (;;) {
        gpr_timespec now = gpr_now(GPR_CLOCK_MONOTONIC);
        gpr_timespec slice = gpr_time_add(now, gpr_time_from_millis(RPC_INTERRUPT_CHECK_MS,
                                                                    GPR_TIMESPAN));
        grpc_event ev;

        if (c->interrupt && *c->interrupt) {
            /* A cancelled call completes its batches at once: this wait is short. */
            grpc_call_cancel(call, NULL);
            *ret = grpc_completion_queue_pluck(c->cq, tag, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                               NULL);
            return -EINTR;
        }
        if (gpr_time_cmp(now, deadline) >= 0) {
            return -ETIMEDOUT;
        }
        ev = grpc_completion_queue_pluck(c->cq, tag,
                                         gpr_time_cmp(deadline, slice) < 0 ? deadline : slice,
                                         NULL);
        if (ev.type != GRPC_QUEUE_TIMEOUT) {
            *ret = ev;
            return 0;
        }
    }
}

/* ---- errors */

void
rpc_error_set(RpcError *err, grpc_status_code code, const char *fmt, ...)
{
    va_list ap;

    err->code = code;
    va_start(ap, fmt);
    (void) vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
}

/* Fills @err from a non-OK status. UNAVAILABLE and our own deadline get a message that says
 * which socket and what to do; anything else is the daemon's own message, verbatim. */
void
rpc_error_from_status(RpcClient *c, grpc_status_code status, grpc_slice details,
                      gpr_timespec deadline, int timeout_ms, RpcError *err)
{
    char *text = grpc_slice_to_c_string(details);
    bool ours = timeout_ms > 0 && gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), deadline) >= 0;

    if (rpc_explain_unreachable(c, status, text, ours ? timeout_ms : 0, err)) {
        /* said in words: what is at the socket path, and what to do */
    } else if (status == GRPC_STATUS_UNAVAILABLE) {
        /* Also what a daemon that is shutting down answers, so "cannot reach" would be
         * too strong; the hint still applies. */
        rpc_error_set(err, status,
                      "vfio-migd at '%s' is unavailable: %s (" RPC_UNREACHABLE_HINT ")",
                      c->socket_path, *text ? text : "no reason given");
    } else if (status == GRPC_STATUS_DEADLINE_EXCEEDED && ours) {
        rpc_error_gave_up(c, timeout_ms, err);
    } else if (!*text) {
        rpc_error_set(err, status, "the daemon answered %s without a message",
                      rpc_status_code_name(status));
    } else {
        rpc_error_set(err, status, "%s", text);
    }
    gpr_free(text);
}

/* Giving up on a call does not stop what the daemon was asked to do (a save, a restore, a
 * migration): say so, and where it can be followed. Only a device operation still waiting
 * for a worker at the deadline is dropped (device.c, wait_max_ms). */
void
rpc_error_gave_up(RpcClient *c, int timeout_ms, RpcError *err)
{
    rpc_error_set(err, GRPC_STATUS_DEADLINE_EXCEEDED,
                  "no answer from vfio-migd at '%s' within %g s; the operation goes on; "
                  "`vfio-migctl jobs` shows it (a state change or reset that had not started "
                  "yet is dropped; --timeout SECONDS waits longer)",
                  c->socket_path, timeout_ms / 1000.0);
}

void
rpc_error_interrupted(RpcError *err)
{
    rpc_error_set(err, GRPC_STATUS_CANCELLED,
                  "interrupted before vfio-migd answered; what it was asked may still happen "
                  "(`vfio-migctl jobs` shows the long operations)");
}

/* ---- the call */

int
rpc_error_not_made(RpcError *err, const char *method, int r)
{
    if (r == -EINTR) {
        rpc_error_interrupted(err);
        return r;
    }
    rpc_error_set(err, GRPC_STATUS_INTERNAL, "%s: the call could not be made: %s", method,
                  strerror(-r));
    return r;
}

int
rpc_check_call(RpcClient *c, const char *method, const ProtobufCMessage *req, RpcError *err)
{
    size_t size = protobuf_c_message_get_packed_size(req);
    const char *name = strrchr(method, '/');

    if (size > RPC_MAX_REQUEST_SIZE) {
        rpc_error_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "the %s request is %zu bytes, more "
                      "than the %u bytes the daemon takes: shorten its arguments (ids, paths, "
                      "options)", name ? name + 1 : method, size, (unsigned) RPC_MAX_REQUEST_SIZE);
        return -EMSGSIZE;
    }
    return rpc_check_socket(c, err);
}

int
rpc_client_call(RpcClient *c, const char *method, const ProtobufCMessage *req,
                const ProtobufCMessageDescriptor *resp_desc, int timeout_ms,
                ProtobufCMessage **ret_resp, RpcError *err)
{
    RpcError local_err;
    gpr_timespec deadline;
    grpc_byte_buffer *request;
    ProtobufCMessage *resp;
    RpcReply reply;
    int r;

    if (!err) {
        err = &local_err;
    }
    if (!c || !method || !req || !resp_desc || !ret_resp) {
        rpc_error_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid call arguments");
        return -EINVAL;
    }
    r = rpc_check_call(c, method, req, err);
    if (r < 0) {
        return r;
    }

    request = pb_pack(req);
    if (!request) {
        rpc_error_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED,
                      "out of memory packing the request");
        return -ENOMEM;
    }
    deadline = rpc_deadline_from_timeout(timeout_ms);
    r = call_run(c, method, request, deadline, &reply);
    grpc_byte_buffer_destroy(request);
    if (r < 0) {
        return rpc_error_not_made(err, method, r);
    }

    if (reply.status != GRPC_STATUS_OK) {
        rpc_error_from_status(c, reply.status, reply.details, deadline, timeout_ms, err);
        r = -EREMOTEIO;
        if (reply.result_detail) {
            *ret_resp = pb_unpack(resp_desc, reply.result_detail);
        }
    } else {
        resp = pb_unpack(resp_desc, reply.message);
        if (resp) {
            err->code = GRPC_STATUS_OK;
            err->message[0] = '\0';
            *ret_resp = resp;
        } else {
            rpc_error_set(err, GRPC_STATUS_INTERNAL,
                          "%s: the daemon's answer is not a valid %s", method, resp_desc->name);
            r = -EBADMSG;
        }
    }
    /* After the error: before the daemon has answered once, it explains a failure in words. */
    if (reply.status != GRPC_STATUS_UNAVAILABLE) {
        c->reached = true;
    }
    reply_done(&reply);
    return r;
}
