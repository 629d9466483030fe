/* SPDX-License-Identifier: MIT */
/*
 * server — see server.h.
 *
 * The plan: each registered method keeps REQUESTS_PER_METHOD calls requested from gRPC, plus
 * one generic request for unknown methods (without it, unknown methods hang: grpc-core.md
 * pitfall 3). Every RpcCall embeds its tags ("new", "done", and a stream's three), each
 * knowing the function that completes it.
 *
 * Two completion queues. Every "new" tag, and every tag of a streaming call, arrives on `cq`,
 * where the CQ thread waits (and so polls the connections for gRPC): it pushes each finished
 * tag onto a locked list and wakes the loop through an eventfd, once until the loop drains
 * the list; on_wake() drains the whole list. Not uv_async: its loop side spins until the
 * waking thread is back from its write() (libuv 1.44's uv__async_spin, sched_yield after 997
 * tries), 4-5 % of the daemon's CPU per call on a 2-vCPU guest. A unary call's own batches
 * (its reply, and rpc_call_watch_cancel()'s) are bound to `cq_unary`, a non-polling queue on
 * which nothing waits: their completion wakes no thread (on `cq` gRPC had to kick the CQ
 * thread out of its epoll_wait for each, only for it to hand over a tag that frees a call).
 * The loop takes them at each wake-up, and from a timer every UNARY_DRAIN_MS while any is in
 * flight (bench/README.md, issue 12, 12r: 33 % less daemon CPU per call with both changes).
 *
 * A new call goes through call_dispatch(): known method, admitted, request decoded,
 * handler. A call is freed when its reply batch completes. Shutdown follows grpc-core.md §2
 * strictly; no batch is started once the completion queues are shut down (pitfall 9).
 */
#include "server.h"

#include <grpc/grpc_posix.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "client.h" /* RPC_RESULT_TRAILER */
#include "listener.h"
#include "pb.h"
#include "status.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "util/macro.h"

/* Calls gRPC may accept per method before the loop re-requests (on_tag_new() requests the
 * next one as it dispatches a call): as many as bench-rpc's concurrent callers of one method.
 * A further concurrent call of the same method waits in gRPC's own queue until the loop
 * requests again, one wake-up later; it is not refused. Each requested call costs about
 * 0.7 KiB (the RpcCall and gRPC's request) times 40 methods for as long as the daemon runs:
 * 8 per method were 0.2 MiB of the idle daemon's 16 MiB (issue 12, bench/README.md). */
#define REQUESTS_PER_METHOD 4
/* While a unary call's batch is in flight, the loop takes cq_unary's completions at least
 * this often: an idle daemon frees its answered calls (and lets their connections go) within
 * it, and a watched call's cancel is seen within it. Costs 50 loop wake-ups a second only
 * while such a batch is in flight (a device operation without a deadline, watched). */
#define UNARY_DRAIN_MS 20
/* In-flight calls get this long to finish when the daemon stops (grpc-core.md §2 step 3). */
#define SHUTDOWN_GRACE_MS 2000

typedef struct StreamMessage {
    grpc_byte_buffer *bb;
    char *key; /* NULL, or what a later message with the same key replaces */
    struct StreamMessage *next;
} StreamMessage;

/* A completion gRPC reports: embedded in the call (or server) it belongs to, it knows the
 * function that handles it on the loop. */
typedef struct Tag {
    void (*complete)(struct Tag *t); /* runs on the loop; may free what embeds the tag */
    bool ok;
    struct Tag *next;
} Tag;

struct RpcCall {
    RpcServer *server;
    int method_index; /* -1: a call to an unknown method */
    Tag tag_new;      /* gRPC handed us a call */
    Tag tag_done;     /* a unary call's reply batch completed (on cq_unary) */
    grpc_call *call;
    gpr_timespec deadline;
    grpc_metadata_array request_md;
    grpc_call_details details; /* unknown methods only */
    grpc_byte_buffer *payload;
    ProtobufCMessage *request;
    grpc_byte_buffer *reply;
    grpc_slice status_details;
    bool has_status_details;
    grpc_metadata trailer;       /* RPC_RESULT_TRAILER of a failure with a partial result */
    grpc_metadata taken;         /* RPC_STREAM_TAKEN: static slices, nothing to free */
    bool has_trailer;
    bool answered;
    bool reply_pending;        /* a unary call's reply batch is in flight */
    bool close_pending;        /* a unary call's RECV_CLOSE_ON_SERVER batch is in flight */
    int cancelled;
    /* server streaming (rpc_call_stream_*) */
    Tag tag_send;              /* one message was sent */
    Tag tag_close;             /* the client closed or cancelled the stream (or, for a
                                * unary call, rpc_call_watch_cancel()'s batch completed) */
    Tag tag_status;            /* the final status was sent */
    StreamMessage *queue_head, *queue_tail;
    size_t n_queued;           /* messages in the queue, not counting the one in flight */
    grpc_byte_buffer *in_flight;
    bool streaming, md_sent, ending, status_started, client_gone;
    unsigned pending;          /* batches of this stream in flight */
    unsigned in_dispatch;      /* inside a completion: freeing waits for its end */
    grpc_status_code end_code;
    void (*on_cancel)(RpcCall *call, void *userdata); /* streams and watched unary calls */
    void *cancel_userdata;
};

struct RpcServer {
    uv_loop_t *loop;
    grpc_server *server;
    grpc_completion_queue *cq;       /* new calls, streams' batches: the CQ thread waits here */
    grpc_completion_queue *cq_unary; /* unary calls' batches: non-polling, the loop drains it */
    uv_timer_t unary_timer;  /* drains cq_unary while a batch is in flight */
    unsigned unary_pending;  /* unary calls' batches in flight (on cq_unary) */
    grpc_server_credentials *creds;
    const RpcMethod *methods;
    void **method_handles;
    size_t n_methods;
    rpc_admit_fn admit;
    void *userdata;
    RpcListener *listener; /* the API socket; accepts connections and hands them to gRPC */

    uv_thread_t cq_thread;
    bool cq_thread_started;
    int wake_fd;       /* eventfd: the CQ thread wakes the loop; -EBADF before it exists */
    uv_poll_t wake;    /* the loop's watch on wake_fd */
    bool wake_started; /* wake was initialised: it must be closed before the server is freed */
    uv_mutex_t lock;
    Tag *queue_head; /* guarded by lock */
    Tag *queue_tail;
    bool wake_pending; /* guarded by lock: wake_fd was written and the loop has not drained */
    bool cq_drained; /* guarded by lock: the CQ thread saw GRPC_QUEUE_SHUTDOWN */

    Tag shutdown_tag; /* grpc_server_shutdown_and_notify() finished */
    uv_timer_t grace_timer;
    bool shutting_down; /* no more calls are requested from gRPC */
    bool cq_shut;    /* grpc_completion_queue_shutdown() was called: no more batches */
    bool finished;
    unsigned live_calls;
    unsigned handles_open;
    void (*done)(void *userdata);
    void *done_userdata;
};

static inline void
gpr_freep(char **p)
{
    gpr_free(*p);
}

#define container_of(ptr, type, member) ((type *) ((char *) (ptr) - offsetof(type, member)))

static void server_maybe_finish(RpcServer *s);
static void on_tag_new(Tag *t);
static void on_tag_done(Tag *t);
static void on_stream_sent(Tag *t);
static void on_stream_closed(Tag *t);
static void on_stream_status(Tag *t);

/* ---- CQ thread ---- */

/* Writes the eventfd the loop polls. Only the CQ thread writes it, and only when it set
 * wake_pending, so the counter stays far below the maximum that would make write() fail. */
static void
cq_kick_loop(RpcServer *s)
{
    uint64_t one = 1;

    if (write(s->wake_fd, &one, sizeof(one)) < 0) {
        abort(); /* EAGAIN is impossible (see above), EBADF would be our bug */
    }
}

/* Queues @t for the loop (NULL: queues nothing) and wakes it unless a wake-up is pending
 * already. The loop's drain clears wake_pending under the same lock after it read the
 * eventfd, so a tag queued after the drain wakes the loop again. */
static void
cq_queue_tag(RpcServer *s, Tag *t)
{
    bool wake;

    uv_mutex_lock(&s->lock);
    if (t) {
        t->next = NULL;
        if (s->queue_tail) {
            s->queue_tail->next = t;
        } else {
            s->queue_head = t;
        }
        s->queue_tail = t;
    }
    wake = !s->wake_pending;
    s->wake_pending = true;
    uv_mutex_unlock(&s->lock);
    if (wake) {
        cq_kick_loop(s);
    }
}

static void
cq_thread_main(void *arg)
{
    RpcServer *s = arg;

    for (;;) {
        grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC),
                                                   NULL);
        Tag *t;

        if (ev.type == GRPC_QUEUE_SHUTDOWN) {
            break;
        }
        if (ev.type != GRPC_OP_COMPLETE) {
            continue; /* a timeout, which an infinite deadline never gives */
        }
        t = ev.tag;
        t->ok = ev.success;
        cq_queue_tag(s, t);
    }
    uv_mutex_lock(&s->lock);
    s->cq_drained = true;
    uv_mutex_unlock(&s->lock);
    cq_queue_tag(s, NULL);
}

/* ---- calls ---- */

static StreamMessage *
stream_message_free(StreamMessage *m)
{
    if (m) {
        grpc_byte_buffer_destroy(m->bb);
        free(m->key);
        free(m);
    }
    return NULL;
}

/* Frees every message of @c's stream not yet handed to gRPC. */
static void
stream_drop_queue(RpcCall *c)
{
    while (c->queue_head) {
        StreamMessage *m = c->queue_head;
        c->queue_head = m->next;
        (void) stream_message_free(m);
    }
    c->queue_tail = NULL;
    c->n_queued = 0;
}

static void
call_free(RpcCall *c)
{
    RpcServer *s = c->server;

    if (c->call) {
        grpc_call_unref(c->call);
    }
    grpc_metadata_array_destroy(&c->request_md);
    if (c->method_index < 0) {
        grpc_call_details_destroy(&c->details);
    }
    if (c->payload) {
        grpc_byte_buffer_destroy(c->payload);
    }
    if (c->reply) {
        grpc_byte_buffer_destroy(c->reply);
    }
    if (c->has_status_details) {
        grpc_slice_unref(c->status_details);
    }
    if (c->has_trailer) {
        grpc_slice_unref(c->trailer.key);
        grpc_slice_unref(c->trailer.value);
    }
    stream_drop_queue(c);
    if (c->in_flight) {
        grpc_byte_buffer_destroy(c->in_flight);
    }
    if (c->request) {
        protobuf_c_message_free_unpacked(c->request, NULL);
    }
    free(c);
    s->live_calls--;
    server_maybe_finish(s);
}

/* Asks gRPC for the next call to method @index (-1: any unknown method). */
static void
server_request_call(RpcServer *s, int index)
{
    RpcCall *c = calloc(1, sizeof(*c));
    grpc_call_error e;

    if (!c) {
        log_error("Out of memory requesting a gRPC call; method %d gets one request fewer.", index);
        return;
    }
    c->server = s;
    c->method_index = index;
    c->tag_new.complete = on_tag_new;
    c->tag_done.complete = on_tag_done;
    grpc_metadata_array_init(&c->request_md);
    s->live_calls++;
    if (index < 0) {
        grpc_call_details_init(&c->details);
        e = grpc_server_request_call(s->server, &c->call, &c->details, &c->request_md,
                                     s->cq_unary, s->cq, &c->tag_new);
    } else {
        bool stream = s->methods[index].flags & RPC_STREAMING;

        /* A stream's batches must wake the loop (its next message, its client gone): on cq,
         * where the CQ thread waits. A unary call's go to cq_unary (see the top). */
        e = grpc_server_request_registered_call(s->server, s->method_handles[index], &c->call,
                                                &c->deadline, &c->request_md, &c->payload,
                                                stream ? s->cq : s->cq_unary, s->cq,
                                                &c->tag_new);
    }
    if (e != GRPC_CALL_OK) {
        log_error("grpc_server_request_call failed (%d).", e);
        call_free(c);
    }
}

/* Attaches @result, packed, as the RPC_RESULT_TRAILER trailer of a failing call. */
static void
call_set_trailer(RpcCall *c, const ProtobufCMessage *result)
{
    size_t len = protobuf_c_message_get_packed_size(result);
    grpc_slice v = grpc_slice_malloc(len);

    (void) protobuf_c_message_pack(result, GRPC_SLICE_START_PTR(v));
    c->trailer.key = grpc_slice_from_static_string(RPC_RESULT_TRAILER);
    c->trailer.value = v;
    c->has_trailer = true;
}

/* ---- the unary calls' completion queue ---- */

/* Runs every completion cq_unary holds; never blocks (a non-polling queue: nothing waits on
 * it, so a completion costs gRPC no wake-up of a thread). Stops when a completion freed the
 * last call of a server that is finishing: server_maybe_finish() destroyed the queue. */
static void
server_drain_unary(RpcServer *s)
{
    while (s->cq_unary) {
        grpc_event ev = grpc_completion_queue_next(s->cq_unary,
                                                   gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
        Tag *t;

        if (ev.type != GRPC_OP_COMPLETE) {
            return;
        }
        t = ev.tag;
        t->ok = ev.success;
        t->complete(t);
    }
}

static void
on_unary_timer(uv_timer_t *timer)
{
    server_drain_unary(timer->data);
}

static void
unary_batch_started(RpcServer *s)
{
    if (s->unary_pending++ == 0) {
        (void) uv_timer_start(&s->unary_timer, on_unary_timer, UNARY_DRAIN_MS, UNARY_DRAIN_MS);
    }
}

static void
unary_batch_done(RpcServer *s)
{
    if (--s->unary_pending == 0) {
        (void) uv_timer_stop(&s->unary_timer);
    }
}

/* A unary call goes once it is answered and no batch of it is left in flight. */
static void
unary_maybe_free(RpcCall *c)
{
    if (c->answered && !c->reply_pending && !c->close_pending) {
        call_free(c);
    }
}

static void
on_unary_closed(Tag *t)
{
    RpcCall *c = container_of(t, RpcCall, tag_close);

    unary_batch_done(c->server);
    c->close_pending = false;
    if (c->cancelled && c->on_cancel) {
        void (*fn)(RpcCall *, void *) = TAKE_PTR(c->on_cancel);

        fn(c, c->cancel_userdata); /* may answer (the answer then goes nowhere) */
    }
    unary_maybe_free(c);
}

int
rpc_call_watch_cancel(RpcCall *call, void (*on_cancel)(RpcCall *call, void *userdata),
                      void *userdata)
{
    grpc_op op = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
    grpc_call_error e;

    assert(!call->answered && !call->streaming && !call->close_pending);
    if (call->server->cq_shut) {
        return -ESHUTDOWN;
    }
    op.data.recv_close_on_server.cancelled = &call->cancelled;
    call->tag_close.complete = on_unary_closed;
    e = grpc_call_start_batch(call->call, &op, 1, &call->tag_close, NULL);
    if (e != GRPC_CALL_OK) {
        return -EIO;
    }
    unary_batch_started(call->server);
    call->close_pending = true;
    call->on_cancel = on_cancel;
    call->cancel_userdata = userdata;
    return 0;
}

static void
call_answer(RpcCall *c, grpc_status_code code, const char *message,
            const ProtobufCMessage *response)
{
    RpcServer *s = c->server;
    grpc_op ops[4];
    size_t n = 0;
    grpc_call_error e;

    assert(!c->answered);
    c->answered = true;
    c->on_cancel = NULL;
    if (s->cq_shut) {
        /* The CQ is gone: no batch may start (grpc-core.md pitfall 9); just let go. */
        unary_maybe_free(c);
        return;
    }
    memset(ops, 0, sizeof(ops));
    ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
    if (code == GRPC_STATUS_OK && response) {
        c->reply = pb_pack(response);
        ops[n].op = GRPC_OP_SEND_MESSAGE;
        ops[n++].data.send_message.send_message = c->reply;
    }
    c->status_details = grpc_slice_from_copied_string(message ? message : "");
    c->has_status_details = true;
    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = code;
    if (c->has_trailer) {
        ops[n].data.send_status_from_server.trailing_metadata_count = 1;
        ops[n].data.send_status_from_server.trailing_metadata = &c->trailer;
    }
    ops[n++].data.send_status_from_server.status_details = &c->status_details;
    if (!c->close_pending) {
        /* RECV_CLOSE_ON_SERVER once per call: it is in flight already when the handler
         * watches for the client going away (rpc_call_watch_cancel). */
        ops[n].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
        ops[n++].data.recv_close_on_server.cancelled = &c->cancelled;
    }
    e = grpc_call_start_batch(c->call, ops, n, &c->tag_done, NULL);
    if (e != GRPC_CALL_OK) {
        log_error("Starting the reply batch failed (%d); dropping the call.", e);
    } else {
        unary_batch_started(s);
        c->reply_pending = true;
    }
    unary_maybe_free(c);
}

static const RpcMethod *
call_method(const RpcCall *c)
{
    return c->method_index >= 0 ? &c->server->methods[c->method_index] : NULL;
}

void
rpc_call_reply(RpcCall *call, const ProtobufCMessage *response)
{
    assert(!(call_method(call)->flags & RPC_STREAMING)); /* streams answer with stream_* */
    call_answer(call, GRPC_STATUS_OK, "", response);
}

/* Every failure answer: the message is formatted here, once, and bounded. */
static void
call_fail_v(RpcCall *c, grpc_status_code code, const ProtobufCMessage *result, const char *fmt,
            va_list ap)
{
    char msg[1024];

    (void) vsnprintf(msg, sizeof(msg), fmt, ap);
    log_debug("Call answered %d: %s", code, msg);
    if (result && !c->server->cq_shut) {
        call_set_trailer(c, result);
    }
    call_answer(c, code, msg, NULL);
}

void
rpc_call_fail(RpcCall *call, int r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    call_fail_v(call, rpc_status_from_errno(r), NULL, fmt, ap);
    va_end(ap);
}

void
rpc_call_fail_ex(RpcCall *call, RpcFailure failure, int r, const ProtobufCMessage *result,
                 const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    call_fail_v(call, rpc_status_from_failure(r, failure), result, fmt, ap);
    va_end(ap);
}

/* ---- server-streaming calls ----
 * One RECV_CLOSE_ON_SERVER batch watches for the client going away; messages are queued and
 * sent one batch at a time (only one SEND_MESSAGE may be in flight, grpc-core.md pitfall 6);
 * the status goes last. The call is freed when the stream has ended and no batch is left. */

static void stream_pump(RpcCall *c);

static void
stream_maybe_free(RpcCall *c)
{
    if (c->in_dispatch == 0 && c->ending && c->pending == 0 &&
        (c->status_started || c->server->cq_shut || c->client_gone)) {
        call_free(c);
    }
}

static int
stream_start_batch(RpcCall *c, grpc_op *ops, size_t n, Tag *tag)
{
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);

    if (e != GRPC_CALL_OK) {
        log_error("Starting a stream batch failed (%d); ending the stream.", e);
        c->client_gone = true;
        return -EIO;
    }
    c->pending++;
    return 0;
}

/* Clears @ops (two) and puts the initial metadata first when this stream has not sent it
 * yet: it may go in one batch only (grpc-core.md pitfall 6). Returns the ops used. */
static size_t
stream_ops_init(RpcCall *c, grpc_op ops[2])
{
    memset(ops, 0, 2 * sizeof(ops[0]));
    if (c->md_sent) {
        return 0;
    }
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    c->md_sent = true;
    return 1;
}

static void
stream_send_next(RpcCall *c)
{
    StreamMessage *m = c->queue_head;
    grpc_op ops[2];
    size_t n = stream_ops_init(c, ops);

    c->queue_head = m->next;
    if (!c->queue_head) {
        c->queue_tail = NULL;
    }
    c->n_queued--;
    c->in_flight = TAKE_PTR(m->bb);
    (void) stream_message_free(m);
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n++].data.send_message.send_message = c->in_flight;
    (void) stream_start_batch(c, ops, n, &c->tag_send);
}

static void
stream_send_status(RpcCall *c)
{
    grpc_op ops[2];
    size_t n = stream_ops_init(c, ops);

    ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[n].data.send_status_from_server.status = c->end_code;
    ops[n++].data.send_status_from_server.status_details = &c->status_details;
    c->status_started = true;
    (void) stream_start_batch(c, ops, n, &c->tag_status);
}

static void
stream_pump(RpcCall *c)
{
    if (c->server->cq_shut || c->client_gone || c->in_flight) {
        stream_maybe_free(c);
        return;
    }
    if (c->queue_head) {
        stream_send_next(c);
    } else if (c->ending && !c->status_started) {
        stream_send_status(c);
    }
    stream_maybe_free(c);
}

/* Completions: the handler's callbacks may end the stream re-entrantly, so the call is freed
 * only once, after the completion's own work (in_dispatch). */
static void
on_stream_sent(Tag *t)
{
    RpcCall *c = container_of(t, RpcCall, tag_send);

    c->in_dispatch++;
    c->pending--;
    grpc_byte_buffer_destroy(c->in_flight);
    c->in_flight = NULL;
    if (!t->ok) {
        c->client_gone = true;
    }
    stream_pump(c);
    c->in_dispatch--;
    stream_maybe_free(c);
}

static void
on_stream_closed(Tag *t)
{
    RpcCall *c = container_of(t, RpcCall, tag_close);

    c->in_dispatch++;
    c->pending--;
    if (c->cancelled) {
        c->client_gone = true;
        if (c->on_cancel && !c->ending) {
            c->on_cancel(c, c->cancel_userdata); /* the handler stops and ends the stream */
        }
    }
    c->in_dispatch--;
    stream_maybe_free(c);
}

static void
on_stream_status(Tag *t)
{
    RpcCall *c = container_of(t, RpcCall, tag_status);

    c->pending--;
    stream_maybe_free(c);
}

uint64_t
rpc_call_remaining_ms(const RpcCall *call)
{
    gpr_timespec left;
    int64_t ms;

    if (call->method_index < 0 || call->deadline.tv_sec == INT64_MAX) {
        return 0; /* gpr_inf_future(): no deadline */
    }
    left = gpr_time_sub(call->deadline, gpr_now(call->deadline.clock_type));
    ms = gpr_time_to_millis(left);
    return ms < 1 ? 1 : (uint64_t) ms;
}

int
rpc_call_stream_begin(RpcCall *call, void (*on_cancel)(RpcCall *call, void *userdata),
                      void *userdata)
{
    grpc_op ops[2];

    assert(!call->answered && !call->streaming);
    assert(call_method(call)->flags & RPC_STREAMING);
    call->streaming = call->answered = true;
    call->on_cancel = on_cancel;
    call->cancel_userdata = userdata;
    call->tag_send.complete = on_stream_sent;
    call->tag_close.complete = on_stream_closed;
    call->tag_status.complete = on_stream_status;
    if (call->server->cq_shut) {
        return -ESHUTDOWN;
    }
    /* The initial metadata goes now, not with the first message: it is what tells the
     * client that the daemon took the call, and a stream may stay quiet for a long time
     * (WatchEvents with nothing active) — a client waiting for it would wait as long. */
    memset(ops, 0, sizeof(ops));
    call->taken.key = grpc_slice_from_static_string(RPC_STREAM_TAKEN);
    call->taken.value = grpc_slice_from_static_string("taken");
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = 1;
    ops[0].data.send_initial_metadata.metadata = &call->taken;
    ops[1].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[1].data.recv_close_on_server.cancelled = &call->cancelled;
    call->md_sent = true;
    return stream_start_batch(call, ops, ELEMENTSOF(ops), &call->tag_close);
}

/* Unlinks and frees the queued message with @key, if there is one (at most one: each
 * keyed message replaced the previous one). */
static void
stream_unqueue_key(RpcCall *c, const char *key)
{
    StreamMessage *prev = NULL;

    for (StreamMessage *m = c->queue_head; m; prev = m, m = m->next) {
        if (!m->key || strcmp(m->key, key) != 0) {
            continue;
        }
        if (prev) {
            prev->next = m->next;
        } else {
            c->queue_head = m->next;
        }
        if (c->queue_tail == m) {
            c->queue_tail = prev;
        }
        c->n_queued--;
        (void) stream_message_free(m);
        return;
    }
}

size_t
rpc_call_stream_send(RpcCall *call, const ProtobufCMessage *message, const char *key)
{
    StreamMessage *m;

    assert(call->streaming && !call->ending);
    if (call->client_gone || call->server->cq_shut) {
        return 0;
    }
    m = calloc(1, sizeof(*m));
    if (!m || !(m->bb = pb_pack(message)) || (key && !(m->key = strdup(key)))) {
        (void) stream_message_free(m);
        return call->n_queued;
    }
    if (key) {
        stream_unqueue_key(call, key);
    }
    if (call->queue_tail) {
        call->queue_tail->next = m;
    } else {
        call->queue_head = m;
    }
    call->queue_tail = m;
    call->n_queued++;
    stream_pump(call);
    return call->n_queued;
}

void
rpc_call_stream_abort(RpcCall *call, int r, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    assert(call->streaming && !call->ending);
    va_start(ap, fmt);
    (void) vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_debug("Stream ended %d: %s", rpc_status_from_errno(r), msg);
    stream_drop_queue(call);
    call->ending = true;
    call->on_cancel = NULL;
    if (!call->client_gone && !call->server->cq_shut) {
        /* Not a status batch: it would wait behind the message the reader does not take.
         * Cancelling sends the status in trailers, which flow control does not hold. */
        (void) grpc_call_cancel_with_status(call->call, rpc_status_from_errno(r), msg, NULL);
    }
    call->client_gone = true;
    stream_maybe_free(call);
}

void
rpc_call_stream_end(RpcCall *call, int r, const char *message)
{
    assert(call->streaming && !call->ending);
    call->ending = true;
    call->on_cancel = NULL; /* the handler is done with the stream */
    call->end_code = rpc_status_from_errno(r);
    call->status_details = grpc_slice_from_copied_string(message ? message : "");
    call->has_status_details = true;
    stream_pump(call);
}

/* The one path every call takes to its handler: known method, admitted (the daemon's rules
 * for every method: the caller's role, no mutating call while it shuts down), request
 * decoded. */
static void
call_dispatch(RpcCall *c)
{
    RpcServer *s = c->server;
    const RpcMethod *m = call_method(c);
    struct ucred cred;
    char why[512] = "";
    int r;

    if (!m) {
        _cleanup_(gpr_freep) char *path = grpc_slice_to_c_string(c->details.method);
        rpc_call_fail(c, -ENOSYS, "unknown method '%s'", path);
        return;
    }
    r = rpc_call_peer_cred(c, &cred);
    r = s->admit ? s->admit(m, r >= 0 ? &cred : NULL, s->userdata, why, sizeof(why)) : 0;
    if (r < 0) {
        rpc_call_fail(c, r, "%s", why);
        return;
    }
    c->request = pb_unpack(m->request, c->payload);
    if (!c->request) {
        rpc_call_fail(c, -EINVAL, "the request is not a valid %s message", m->request->name);
        return;
    }
    /* With "Call answered", a call's life at debug level. The handler runs in this same loop
     * callback: a call that arrives after this line is handled after this one. */
    log_debug("Call %s", m->path);
    m->handler(c, c->request, s->userdata);
}

static void
on_tag_done(Tag *t)
{
    RpcCall *c = container_of(t, RpcCall, tag_done);

    unary_batch_done(c->server);
    c->reply_pending = false;
    unary_maybe_free(c);
}

static void
on_tag_new(Tag *t)
{
    RpcCall *c = container_of(t, RpcCall, tag_new);
    RpcServer *s = c->server;

    if (!t->ok) {
        /* A request outstanding at shutdown comes back with ok=0: nothing to answer. */
        call_free(c);
        return;
    }
    if (!s->shutting_down) {
        server_request_call(s, c->method_index);
    }
    call_dispatch(c);
}

static void
on_tag_shutdown(Tag *t)
{
    RpcServer *s = container_of(t, RpcServer, shutdown_tag);

    (void) uv_timer_stop(&s->grace_timer);
    grpc_server_destroy(s->server);
    s->server = NULL;
    s->cq_shut = true;
    grpc_completion_queue_shutdown(s->cq);
    grpc_completion_queue_shutdown(s->cq_unary);
}

static void
on_wake(uv_poll_t *p, int status, int events)
{
    RpcServer *s = p->data;
    uint64_t n;
    Tag *t, *next;
    bool drained;

    (void) status;
    (void) events;
    /* Read before draining: a wake-up written after the drain below leaves the eventfd
     * readable, so no tag queued later waits. EAGAIN: the tags were taken with an earlier
     * wake-up already. */
    if (read(s->wake_fd, &n, sizeof(n)) < 0 && errno != EAGAIN) {
        (void) log_warning_errno(-errno, "Cannot read the API server's wake-up eventfd, "
                                 "ignoring: %m");
    }
    uv_mutex_lock(&s->lock);
    t = s->queue_head;
    s->queue_head = s->queue_tail = NULL;
    s->wake_pending = false;
    drained = s->cq_drained;
    uv_mutex_unlock(&s->lock);

    for (; t; t = next) {
        next = t->next; /* the completion may free the call that embeds t */
        t->complete(t);
    }
    server_drain_unary(s);
    if (drained && s->cq_thread_started) {
        (void) uv_thread_join(&s->cq_thread);
        s->cq_thread_started = false;
        server_maybe_finish(s);
    }
}

/* ---- shutdown ---- */

static void
on_handle_closed(uv_handle_t *h)
{
    RpcServer *s = h->data;

    if (--s->handles_open == 0 && s->done) {
        s->done(s->done_userdata);
    }
}

/* Finishes once the CQ thread ended and no call is alive (a handler may still be waiting on
 * a worker after the CQ drained; its call must be freed before the CQ is destroyed). */
static void
server_maybe_finish(RpcServer *s)
{
    if (!s->cq_shut || s->cq_thread_started || s->live_calls > 0 || s->finished) {
        return;
    }
    s->finished = true;
    grpc_completion_queue_destroy(s->cq);
    s->cq = NULL;
    server_drain_unary(s); /* nothing left: every call is gone; takes the SHUTDOWN event */
    grpc_completion_queue_destroy(s->cq_unary);
    s->cq_unary = NULL;
    uv_close((uv_handle_t *) &s->unary_timer, on_handle_closed);
    /* Closing the poll handle takes the fd out of epoll at once: closing the fd after it is
     * safe, and the CQ thread that wrote it has ended. */
    uv_close((uv_handle_t *) &s->wake, on_handle_closed);
    (void) close(TAKE_FD(s->wake_fd));
    uv_close((uv_handle_t *) &s->grace_timer, on_handle_closed);
}

static void
on_grace_expired(uv_timer_t *t)
{
    RpcServer *s = t->data;

    log_info("Cancelling %u call(s) still in flight after %d ms.", s->live_calls,
             SHUTDOWN_GRACE_MS);
    grpc_server_cancel_all_calls(s->server);
}

void
rpc_server_shutdown(RpcServer *s, void (*done)(void *userdata), void *userdata)
{
    if (s->shutting_down) {
        return;
    }
    s->shutting_down = true;
    s->done = done;
    s->done_userdata = userdata;
    /* First: no connection may be handed to a server that is shutting down. */
    rpc_listener_stop(s->listener);
    s->shutdown_tag.complete = on_tag_shutdown;
    grpc_server_shutdown_and_notify(s->server, s->cq, &s->shutdown_tag);
    (void) uv_timer_start(&s->grace_timer, on_grace_expired, SHUTDOWN_GRACE_MS, 0);
}

RpcServer *
rpc_server_free(RpcServer *s)
{
    if (!s) {
        return NULL;
    }
    if (s->creds) {
        grpc_server_credentials_release(s->creds);
    }
    rpc_listener_free(s->listener);
    if (s->wake_fd >= 0) {
        (void) close(s->wake_fd);
    }
    uv_mutex_destroy(&s->lock);
    free(s->method_handles);
    free(s);
    return NULL;
}

/* ---- start-up ---- */

/* The gRPC server with the method table; it listens on nothing itself: the listener hands it
 * each connection (grpc-core.md §6). */
static int
server_create(RpcServer *s)
{
    grpc_resource_quota *quota = grpc_resource_quota_create("vfio-migd-api");
    grpc_arg argv[] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = RPC_MAX_REQUEST_SIZE},
        {.type = GRPC_ARG_POINTER, .key = GRPC_ARG_RESOURCE_QUOTA,
         .value.pointer = {.p = quota, .vtable = grpc_resource_quota_arg_vtable()}},
    };
    grpc_channel_args args = {.num_args = ELEMENTSOF(argv), .args = argv};
    grpc_completion_queue_attributes unary_attr = {
        .version = 1, .cq_completion_type = GRPC_CQ_NEXT, .cq_polling_type = GRPC_CQ_NON_POLLING};

    /* gRPC 1.51 checks RPC_MAX_REQUEST_SIZE only once the whole message has arrived, and
     * opens the stream's flow-control window to let it arrive: a 1 GB request was buffered
     * whole. The quota bounds what every connection's buffers hold together; a request
     * that would take more has its stream reset (ENHANCE_YOUR_CALM: the client sees
     * RESOURCE_EXHAUSTED) long before it is read. */
    grpc_resource_quota_resize(quota, RPC_MEMORY_QUOTA);

    s->server = grpc_server_create(&args, NULL);
    grpc_resource_quota_unref(quota); /* the server holds its own reference */
    s->cq = grpc_completion_queue_create_for_next(NULL);
    grpc_server_register_completion_queue(s->server, s->cq, NULL);
    s->cq_unary = grpc_completion_queue_create(grpc_completion_queue_factory_lookup(&unary_attr),
                                               &unary_attr, NULL);
    s->method_handles = calloc(s->n_methods, sizeof(void *));
    if (!s->method_handles) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < s->n_methods; i++) {
        s->method_handles[i] = grpc_server_register_method(
            s->server, s->methods[i].path, NULL, GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER, 0);
    }
    /* The only kind add_channel_from_fd takes (grpc-core.md §6): the socket's mode and the
     * callers' credentials are the protection. */
    s->creds = grpc_insecure_server_credentials_create();
    return 0;
}

/* A connection the listener accepted: gRPC owns @fd from here on, and names calls on it
 * "fd:<fd>" (rpc_call_peer_cred). */
static void
on_connection(int fd, const struct ucred *cred, void *userdata)
{
    RpcServer *s = userdata;

    (void) cred;
    grpc_server_add_channel_from_fd(s->server, fd, s->creds);
}

static void
server_start_serving(RpcServer *s)
{
    grpc_server_start(s->server);
    for (size_t i = 0; i < s->n_methods; i++) {
        for (int k = 0; k < REQUESTS_PER_METHOD; k++) {
            server_request_call(s, (int) i);
        }
    }
    server_request_call(s, -1);
    /* The async handle exists before the CQ thread can use it (grpc-core.md pitfall 10). */
    (void) uv_thread_create(&s->cq_thread, cq_thread_main, s);
    s->cq_thread_started = true;
}

/* Routes gRPC's own log lines through ours: errors stay errors, the rest is debug. */
static void
grpc_log_to_ours(gpr_log_func_args *args)
{
    int level = args->severity == GPR_LOG_SEVERITY_ERROR ? LOG_WARNING : LOG_DEBUG;
    log_full_errno(level, 0, "grpc: %s", args->message);
}

/* A server that holds nothing yet but its configuration. */
static int
server_alloc(uv_loop_t *loop, const RpcServerConfig *cfg, RpcServer **ret)
{
    RpcServer *s = calloc(1, sizeof(*s));

    if (!s) {
        return -ENOMEM;
    }
    s->loop = loop;
    s->methods = cfg->methods;
    s->n_methods = cfg->n_methods;
    s->admit = cfg->admit;
    s->userdata = cfg->userdata;
    s->wake_fd = -EBADF;
    (void) uv_mutex_init(&s->lock);
    *ret = s;
    return 0;
}

/* The eventfd the CQ thread wakes the loop with, and the loop's poll on it. */
static int
server_wake_init(RpcServer *s)
{
    int r;

    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->wake_fd < 0) {
        return -errno;
    }
    r = uv_poll_init(s->loop, &s->wake, s->wake_fd);
    if (r < 0) {
        return r;
    }
    s->wake.data = s;
    s->wake_started = true;
    /* Fails only for bad arguments or a closing handle: neither can be the case here. */
    (void) uv_poll_start(&s->wake, UV_READABLE, on_wake);
    return 0;
}

static void
on_abandoned_closed(uv_handle_t *h)
{
    rpc_server_free(h->data);
}

/* Undoes a start-up that failed before serving. The listener never started: freeing it
 * closes its socket and unlinks the path only if it made the socket there. Once the wake-up
 * poll exists, libuv may touch it until its close callback, which frees the server. */
static void
server_abandon(RpcServer *s)
{
    if (s->server) {
        grpc_server_destroy(s->server);
    }
    if (s->cq) {
        grpc_completion_queue_shutdown(s->cq);
        grpc_completion_queue_destroy(s->cq);
    }
    if (s->cq_unary) {
        grpc_completion_queue_shutdown(s->cq_unary);
        grpc_completion_queue_destroy(s->cq_unary);
    }
    if (s->wake_started) {
        uv_close((uv_handle_t *) &s->wake, on_abandoned_closed);
        return;
    }
    rpc_server_free(s);
}

int
rpc_server_new(uv_loop_t *loop, const RpcServerConfig *config, RpcServer **ret, char *err,
               size_t err_size)
{
    RpcListenerConfig lc = {
        .socket_path = config->socket_path,
        .listen_fd = config->listen_fd > 0 ? config->listen_fd : -EBADF,
        .socket_mode = config->socket_mode ? config->socket_mode : 0660,
        .socket_gid_set = config->socket_gid_set,
        .socket_gid = config->socket_gid,
        .max_connections = config->max_connections ? config->max_connections
                                                   : RPC_LISTENER_DEFAULT_MAX_CONNECTIONS,
        .on_connection = on_connection,
    };
    RpcServer *s = NULL;
    int r;

    r = server_alloc(loop, config, &s);
    if (r < 0) {
        if (lc.listen_fd >= 0) {
            (void) close(lc.listen_fd);
        }
        return r;
    }
    gpr_set_log_function(grpc_log_to_ours);

    lc.userdata = s;
    r = rpc_listener_new(loop, &lc, &s->listener, err, err_size);
    if (r >= 0) {
        r = server_create(s);
    }
    if (r >= 0) {
        r = server_wake_init(s);
    }
    if (r >= 0) {
        /* Its callback runs from the loop, so only once gRPC has started (below). */
        r = rpc_listener_start(s->listener);
    }
    if (r < 0) {
        server_abandon(s);
        return r;
    }
    (void) uv_timer_init(loop, &s->grace_timer);
    s->grace_timer.data = s;
    (void) uv_timer_init(loop, &s->unary_timer);
    s->unary_timer.data = s;
    s->handles_open = 3;
    server_start_serving(s);
    *ret = s;
    return 0;
}

const char *
rpc_server_socket_path(const RpcServer *s)
{
    return rpc_listener_path(s->listener);
}

bool
rpc_server_socket_activated(const RpcServer *s)
{
    return rpc_listener_activated(s->listener);
}

int
rpc_call_peer_cred(RpcCall *call, struct ucred *ret)
{
    _cleanup_(gpr_freep) char *peer = grpc_call_get_peer(call->call);
    int fd, n = 0;

    /* "fd:N" is how gRPC names the peer of a connection given by grpc_server_add_channel_
     * from_fd (grpc-core.md §6); every connection of this server is one. */
    if (!peer || sscanf(peer, "fd:%d%n", &fd, &n) != 1 || peer[n] != '\0') {
        return -ENOENT;
    }
    return rpc_listener_peer_cred(call->server->listener, fd, ret);
}
