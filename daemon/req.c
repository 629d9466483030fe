/* SPDX-License-Identifier: MIT */
/*
 * req — see req.h.
 */
#include "req.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/fdcheck.h"
#include "util/log.h"

/* Freed in its poll handle's close callback (libuv's rule). */
struct Req {
    uv_poll_t poll;
    int fd;            /* owned */
    BackendDevice *bd; /* not owned; NULL once freed */
    void (*cb)(void *userdata);
    void *userdata;
};

static void
req_on_closed(uv_handle_t *h)
{
    Req *r = h->data;

    (void) close(r->fd);
    free(r);
}

static void
req_on_ready(uv_poll_t *h, int status, int events)
{
    Req *r = h->data;
    eventfd_t n = 0;

    (void) events;
    /* Read first: the kernel's next signal (10 s later) must wake the loop again. */
    if (status < 0 || eventfd_read(r->fd, &n) < 0 || n == 0 || !r->cb) {
        return;
    }
    TRACE(req_on_ready, "REQ signalled %llu time(s)", (unsigned long long) n);
    r->cb(r->userdata); /* may free @r (req_free): nothing touches it after this */
}

int
req_arm(uv_loop_t *loop, BackendDevice *bd, int fd, void (*cb)(void *userdata), void *userdata,
        Req **ret)
{
    _cleanup_close_ int efd = fd >= 0 ? fd : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    _cleanup_free_ Req *r = NULL;
    int q;

    *ret = NULL;
    if (efd < 0) {
        return -errno;
    }
    q = fdcheck_is_eventfd(efd);
    if (q < 0) {
        return q; /* the store gave back something else under the name */
    }
    if (!bd->ops->req_arm) {
        return 0;
    }
    q = bd->ops->req_arm(bd, efd);
    if (q == -ENOENT) {
        return 0; /* no REQ on this device (mtty): the kernel's unbind waits for a detach */
    }
    if (q < 0) {
        return q;
    }
    r = calloc(1, sizeof(*r));
    q = r ? uv_poll_init(loop, &r->poll, efd) : -ENOMEM;
    if (q < 0) {
        (void) bd->ops->req_arm(bd, -1);
        return q;
    }
    r->fd = TAKE_FD(efd);
    r->bd = bd;
    r->cb = cb;
    r->userdata = userdata;
    r->poll.data = r;
    uv_unref((uv_handle_t *) &r->poll); /* a watch never keeps the daemon alive */
    (void) uv_poll_start(&r->poll, UV_READABLE, req_on_ready);
    *ret = TAKE_PTR(r);
    return 0;
}

int
req_fd(const Req *r)
{
    return r->fd;
}

Req *
req_free(Req *r, bool unregister)
{
    if (r) {
        if (unregister) {
            (void) r->bd->ops->req_arm(r->bd, -1);
        }
        r->cb = NULL;
        uv_close((uv_handle_t *) &r->poll, req_on_closed);
    }
    return NULL;
}
