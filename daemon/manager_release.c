/* SPDX-License-Identifier: MIT */
/*
 * manager_release — a device the kernel asks for (REQ, req.h) is released instead of blocking
 * the kernel: the fds the daemon holds keep the device open (the fd store's too), and an
 * unbind of its driver or a removal of the device waits in vfio_unregister_group_dev() until
 * every one is closed, re-sending REQ every 10 s.
 *
 * Releasing takes what holds the device away, in order: a VMM holding it (TAKE) is told and
 * its connection closed (fdpass_release_holder); a job holding it fails by its rules
 * (migration_release_device: a source back to RUNNING, a destination reset) and lets it go
 * when its rollback ends; an operation or a group transition running on it ends by itself;
 * its group (no transition, no job) loses it. Then the device is detached: its fds closed,
 * its fd store entries removed. Whatever still holds it, the attempt is made again after each
 * of its operations, after each job's phase change, and on each REQ the kernel repeats; every
 * step is a no-op the second time, so the kernel's repeats change nothing.
 *
 * Threads: loop only.
 */
#include "log_object.h"
#include "manager.h"

#include <stdio.h>
#include <stdlib.h>

#include "device.h"
#include "fdpass.h"
#include "group.h"
#include "migration.h"
#include "util/log.h"

#define RELEASE_WHY "the kernel asked for device '%s' back (REQ: its driver is being unbound, " \
                    "or the device removed)"

/* One step toward releasing @d; true once it is detached (@d is freed then). */
static bool
release_step(Manager *m, Device *d)
{
    char why[256], err[512] = "";
    int r;

    (void) snprintf(why, sizeof(why), RELEASE_WHY, d->id);
    fdpass_release_holder(d, why);
    if (d->lock) {
        r = migration_release_device(m, d, why);
        if (r == -EBUSY && !d->release_blocked_said) {
            /* Once: the kernel's repeats (every 10 s) would say it again and again. */
            log_device_warning(d, "Device '%s' cannot be released yet: its live migration is "
                               "in doubt or completing; the kernel's unbind waits until it is "
                               "resolved ('vfio-migctl jobs').", d->id);
            d->release_blocked_said = true;
        }
        return false; /* released when the job's rollback (or the transition) lets it go */
    }
    if (device_is_busy(d)) {
        return false; /* after the operation (device.c calls manager_release_soon()) */
    }
    if (d->group && (d->group->active || d->group->migration)) {
        return false;
    }
    if (d->group) {
        group_remove_device(d->group, d);
    }
    log_device_notice(d, "Releasing device '%s': the kernel asked for it (REQ: its driver is "
                      "being unbound, or the device removed); its fds are closed and removed "
                      "from the fd store.", d->id);
    r = manager_detach(m, d->id, err, sizeof(err));
    if (r < 0) {
        log_device_warning(d, "Cannot release device '%s' yet: %s", d->id, err);
        return false;
    }
    return true;
}

/* Every device the kernel asked for, one step each. The array shrinks under the loop: from
 * the end, a detach moves only entries already visited. */
static void
release_pass(Manager *m)
{
    for (size_t i = m->n_devices; i-- > 0;) {
        if (i < m->n_devices && m->devices[i]->release_requested) {
            (void) release_step(m, m->devices[i]);
        }
    }
}

static void
on_release_timer(uv_timer_t *t)
{
    release_pass(t->data);
}

static void
on_release_timer_closed(uv_handle_t *h)
{
    free(h);
}

void
manager_release_request(Manager *m, Device *d)
{
    if (d->release_requested) {
        log_device_debug(d, "The kernel asks for device '%s' again (REQ repeats every 10 s "
                         "until it is released).", d->id);
    } else {
        log_device_notice(d, "The kernel asks for device '%s' back (REQ: its driver is being "
                          "unbound, or the device removed); releasing it.", d->id);
        d->release_requested = true;
    }
    (void) release_step(m, d);
}

void
manager_release_soon(Manager *m)
{
    if (!m || !m->loop || m->shutting_down) {
        return;
    }
    if (!m->release_timer) {
        m->release_timer = calloc(1, sizeof(*m->release_timer));
        if (!m->release_timer || uv_timer_init(m->loop, m->release_timer) < 0) {
            free(m->release_timer);
            m->release_timer = NULL;
            return; /* the kernel's next REQ tries again */
        }
        m->release_timer->data = m;
        uv_unref((uv_handle_t *) m->release_timer);
    }
    /* A timeout of 0: the next loop iteration, once the caller's callback chain has ended. */
    (void) uv_timer_start(m->release_timer, on_release_timer, 0, 0);
}

void
manager_release_done(Manager *m)
{
    if (m->release_timer) {
        uv_close((uv_handle_t *) TAKE_PTR(m->release_timer), on_release_timer_closed);
    }
}
