/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * accept — what a listener on a level-triggered poll does with accept()'s errors, shared by
 * the API socket (rpc/listener.c) and a destination's data port (daemon/migration_accept.c).
 *
 * An empty queue ends a wake-up; a client that gave up before it was taken (ECONNABORTED,
 * EPROTO) or a signal leaves the next one to try; anything else (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM, or worse) leaves the socket readable with nothing freed, so polling it again at
 * once would spin the loop: the listener stops polling for a pause, short at first (other
 * connections end and free fds within milliseconds), doubling to a second while it lasts.
 * accept_wakeup() is the one wake-up both listeners run; the rest is pure and header-only.
 * The caller owns the socket, the poll and the timer.
 */

#include <errno.h>
#include <stdbool.h>

#define ACCEPT_BATCH 32          /* connections taken per wake-up */
#define ACCEPT_PAUSE_FIRST_MS 50
#define ACCEPT_PAUSE_MAX_MS 1000

typedef enum AcceptError {
    ACCEPT_ERROR_EMPTY,  /* nothing is waiting: the wake-up is over */
    ACCEPT_ERROR_NEXT,   /* that one is gone: try the next */
    ACCEPT_ERROR_PAUSE,  /* stop polling for accept_pause_next() ms */
} AcceptError;

/* What accept()'s negative errno @r means for the listener. */
static inline AcceptError
accept_error_kind(int r)
{
    if (r == -EAGAIN || r == -EWOULDBLOCK) {
        return ACCEPT_ERROR_EMPTY;
    }
    if (r == -EINTR || r == -ECONNABORTED || r == -EPROTO) {
        return ACCEPT_ERROR_NEXT;
    }
    return ACCEPT_ERROR_PAUSE;
}

/* The pause of a listener; {0} (or after accept_pause_reset()) before the first failure. */
typedef struct AcceptPause {
    unsigned next_ms;
} AcceptPause;

/* The length of this pause in ms; the next one is twice as long, up to the maximum. */
static inline unsigned
accept_pause_next(AcceptPause *p)
{
    unsigned ms = p->next_ms ? p->next_ms : ACCEPT_PAUSE_FIRST_MS;

    p->next_ms = ms * 2 < ACCEPT_PAUSE_MAX_MS ? ms * 2 : ACCEPT_PAUSE_MAX_MS;
    return ms;
}

/* A connection was accepted: the next failure pauses briefly again. */
static inline void
accept_pause_reset(AcceptPause *p)
{
    p->next_ms = 0;
}

/* A new connection for the listener @userdata: takes @fd (non-blocking, close-on-exec) and
 * returns whether the listener still accepts (false once it stopped: the batch ends). */
typedef bool (*AcceptAdmitFn)(void *userdata, int fd);
/* accept() or the poll failed with @r: stop polling for accept_pause_next() ms. */
typedef void (*AcceptPauseFn)(void *userdata, int r);

/* One wake-up of @listen_fd's level-triggered poll, whose status is @status: a failed poll
 * pauses; otherwise up to ACCEPT_BATCH accept4() calls, each new fd handed to @admit, an
 * empty queue ending the batch and a failure that is not the client's (ACCEPT_ERROR_PAUSE)
 * pausing it. Counts the calls in *@calls and those failures in *@failures (NULL: not
 * counted). Runs on the loop thread, as do @admit and @pause. */
void accept_wakeup(int listen_fd, int status, AcceptAdmitFn admit, AcceptPauseFn pause,
                   void *userdata, unsigned long *calls, unsigned long *failures);
