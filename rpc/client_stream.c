/* SPDX-License-Identifier: MIT */
/*
 * client_stream — server-streaming calls (client.h), with the gRPC C core API on the
 * client's pluck queue.
 *
 * Three kinds of batch, each with its own tag so that a caller may pluck one while the
 * others are pending: the start (send the request, close the sending side, receive the
 * initial metadata: without RECV_INITIAL_METADATA a Trailers-Only answer would never
 * complete, grpc-core.md §7 pitfall 2), one RECV_MESSAGE at a time, and RECV_STATUS_ON_CLIENT,
 * started at once and completed when the call ends. A RECV_MESSAGE that completes without a
 * message means the stream ended: the status batch then completes too.
 *
 * Used by:  client/ (vfio-migctl watch, migrate --wait), bench/.
 * Threads:  as RpcClient: one thread at a time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/support/time.h>

#include "client.h"
#include "client_internal.h"
#include "pb.h"

struct RpcStream {
    RpcClient *client;
    grpc_call *call;
    gpr_timespec deadline;         /* of the call: none; kept for error messages */
    grpc_metadata_array initial_md, trailing_md;
    grpc_status_code status;
    grpc_slice details;
    grpc_byte_buffer *message;     /* the RECV_MESSAGE batch's result */
    bool message_pending;          /* a RECV_MESSAGE batch was started and not plucked */
    bool ended;                    /* the status batch has completed */
    /* The tags: the address of a field is unique to this stream and to the batch. */
    char tag_start, tag_message, tag_status;
};

/* After grpc_call_cancel(): the batch completes at once. */
static grpc_event
pluck(RpcStream *s, void *tag, int timeout_ms)
{
    return grpc_completion_queue_pluck(s->client->cq, tag, rpc_deadline_from_timeout(timeout_ms),
                                       NULL);
}

/* Any other wait: rpc_client_wait(), so that an interrupt ends it. */
static int
wait_for(RpcStream *s, void *tag, int timeout_ms, grpc_event *ret)
{
    return rpc_client_wait(s->client, s->call, tag, rpc_deadline_from_timeout(timeout_ms), ret);
}

static int stream_status(RpcStream *s, RpcError *err);

/* Whether the daemon took the call: its initial metadata says so (RPC_STREAM_TAKEN). */
static bool
stream_taken(const RpcStream *s)
{
    for (size_t i = 0; i < s->initial_md.count; i++) {
        if (grpc_slice_str_cmp(s->initial_md.metadata[i].key, RPC_STREAM_TAKEN) == 0) {
            return true;
        }
    }
    return false;
}

/* Sends the request and starts the status batch. 0: the daemon took the call; -EREMOTEIO:
 * it refused it (s->status says why); else the call could not be made. */
static int
stream_start(RpcStream *s, grpc_byte_buffer *request, int timeout_ms)
{
    grpc_op ops[4], status_op;
    grpc_event ev;
    int r;

    /* flags and reserved must be 0 (grpc-core.md §7, pitfall 6). */
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = request;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &s->initial_md;
    if (grpc_call_start_batch(s->call, ops, 4, &s->tag_start, NULL) != GRPC_CALL_OK) {
        return -EIO;
    }
    memset(&status_op, 0, sizeof(status_op));
    status_op.op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    status_op.data.recv_status_on_client.trailing_metadata = &s->trailing_md;
    status_op.data.recv_status_on_client.status = &s->status;
    status_op.data.recv_status_on_client.status_details = &s->details;
    if (grpc_call_start_batch(s->call, &status_op, 1, &s->tag_status, NULL) != GRPC_CALL_OK) {
        /* The start batch is under way: it must complete before the call goes. */
        grpc_call_cancel(s->call, NULL);
        (void) pluck(s, &s->tag_start, -1);
        s->ended = true;
        return -EIO;
    }
    /* The daemon sends its initial metadata when it takes the call, not with the first
     * event; a timeout here means it did not take it. */
    r = wait_for(s, &s->tag_start, timeout_ms, &ev);
    if (r == -ETIMEDOUT) {
        grpc_call_cancel(s->call, NULL);
        (void) pluck(s, &s->tag_start, -1);
    }
    /* A start that failed means the call ended: its status says why (rpc_stream_next). */
    if (r < 0 || stream_taken(s)) {
        return r;
    }
    /* Refused: the status is on its way with the (empty) initial metadata. */
    r = wait_for(s, &s->tag_status, timeout_ms, &ev);
    if (r < 0) {
        grpc_call_cancel(s->call, NULL);
        (void) pluck(s, &s->tag_status, -1);
    }
    s->ended = true;
    return r < 0 ? r : -EREMOTEIO;
}

int
rpc_client_stream_open(RpcClient *c, const char *method, const ProtobufCMessage *req,
                       int timeout_ms, RpcStream **ret, RpcError *err)
{
    grpc_byte_buffer *request;
    RpcStream *s;
    int r;

    if (!c || !method || !req || !ret || !err) {
        if (err) {
            rpc_error_set(err, GRPC_STATUS_INVALID_ARGUMENT, "invalid call arguments");
        }
        return -EINVAL;
    }
    r = rpc_check_call(c, method, req, err);
    if (r < 0) {
        return r;
    }
    s = calloc(1, sizeof(*s));
    request = pb_pack(req);
    if (!s || !request) {
        free(s);
        if (request) {
            grpc_byte_buffer_destroy(request);
        }
        rpc_error_set(err, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory starting %s", method);
        return -ENOMEM;
    }
    s->client = c;
    s->deadline = gpr_inf_future(GPR_CLOCK_MONOTONIC);
    s->status = GRPC_STATUS_UNKNOWN;
    s->details = grpc_empty_slice();
    grpc_metadata_array_init(&s->initial_md);
    grpc_metadata_array_init(&s->trailing_md);
    s->call = rpc_client_create_call(c, method, s->deadline);
    r = s->call ? stream_start(s, request, timeout_ms) : -ENOMEM;
    grpc_byte_buffer_destroy(request);
    if (r == -ETIMEDOUT) {
        if (!rpc_explain_unreachable(c, GRPC_STATUS_DEADLINE_EXCEEDED, "", timeout_ms, err)) {
            rpc_error_gave_up(c, timeout_ms, err);
        }
    } else if (r == -EREMOTEIO) {
        r = stream_status(s, err); /* an empty stream ended OK opens, and ends at once */
    } else if (r < 0) {
        (void) rpc_error_not_made(err, method, r);
    }
    if (r < 0) {
        rpc_stream_close(s);
        return r;
    }
    *ret = s;
    return 0;
}

/* The stream has ended: 0 for OK, else -EREMOTEIO with @err. */
static int
stream_status(RpcStream *s, RpcError *err)
{
    grpc_event ev;

    if (!s->ended) {
        /* Interrupted, the call is cancelled and the status is CANCELLED: reported as
         * such below. */
        (void) wait_for(s, &s->tag_status, -1, &ev);
        s->ended = true;
    }
    if (s->status != GRPC_STATUS_OK) {
        rpc_error_from_status(s->client, s->status, s->details, s->deadline, 0, err);
    }
    if (s->status != GRPC_STATUS_UNAVAILABLE) {
        s->client->reached = true;
    }
    return s->status == GRPC_STATUS_OK ? 0 : -EREMOTEIO;
}

int
rpc_stream_next(RpcStream *s, const ProtobufCMessageDescriptor *desc, int timeout_ms,
                ProtobufCMessage **ret_msg, RpcError *err)
{
    ProtobufCMessage *msg;
    grpc_event ev;
    int r;

    if (s->ended) {
        return stream_status(s, err);
    }
    if (!s->message_pending) {
        grpc_op op;

        memset(&op, 0, sizeof(op));
        op.op = GRPC_OP_RECV_MESSAGE;
        op.data.recv_message.recv_message = &s->message;
        if (grpc_call_start_batch(s->call, &op, 1, &s->tag_message, NULL) != GRPC_CALL_OK) {
            return stream_status(s, err);
        }
        s->message_pending = true;
    }
    r = wait_for(s, &s->tag_message, timeout_ms, &ev);
    if (r == -ETIMEDOUT) {
        return r;
    }
    s->message_pending = false;
    if (r == -EINTR) {
        if (s->message) {
            grpc_byte_buffer_destroy(s->message);
            s->message = NULL;
        }
        rpc_error_interrupted(err);
        return r;
    }
    if (!s->message) {
        return stream_status(s, err); /* no message: the stream ended */
    }
    msg = pb_unpack(desc, s->message);
    grpc_byte_buffer_destroy(s->message);
    s->message = NULL;
    if (!msg) {
        rpc_error_set(err, GRPC_STATUS_INTERNAL, "the daemon sent a message that is not a "
                      "valid %s", desc->name);
        return -EBADMSG;
    }
    *ret_msg = msg;
    return 1;
}

void
rpc_stream_close(RpcStream *s)
{
    if (!s) {
        return;
    }
    if (s->call) {
        if (!s->ended) {
            grpc_call_cancel(s->call, NULL);
            if (s->message_pending) {
                (void) pluck(s, &s->tag_message, -1);
            }
            (void) pluck(s, &s->tag_status, -1);
        }
        grpc_call_unref(s->call);
    }
    if (s->message) {
        grpc_byte_buffer_destroy(s->message);
    }
    grpc_slice_unref(s->details);
    grpc_metadata_array_destroy(&s->initial_md);
    grpc_metadata_array_destroy(&s->trailing_md);
    free(s);
}
