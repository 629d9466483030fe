/* SPDX-License-Identifier: MIT */
/*
 * sd_service — see sd_service.h.
 */
#include "sd_service.h"

#include <stdlib.h>
#include <systemd/sd-daemon.h>

#include "util/log.h"

struct SdService {
    uv_timer_t watchdog;
    bool watchdog_active;
};

static void
on_watchdog(uv_timer_t *t)
{
    (void) t;
    (void) sd_notify(0, "WATCHDOG=1");
}

int
sd_service_new(uv_loop_t *loop, SdService **ret)
{
    SdService *s = calloc(1, sizeof(*s));
    uint64_t usec = 0;

    if (!s) {
        return -ENOMEM;
    }
    (void) uv_timer_init(loop, &s->watchdog);
    s->watchdog.data = s;
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        uint64_t half_ms = usec / 2000 ? usec / 2000 : 1;
        (void) uv_timer_start(&s->watchdog, on_watchdog, half_ms, half_ms);
        uv_unref((uv_handle_t *) &s->watchdog); /* pings must not keep the loop alive */
        s->watchdog_active = true;
        log_debug("Watchdog enabled, pinging every %llu ms.", (unsigned long long) half_ms);
    }
    *ret = s;
    return 0;
}

void
sd_service_ready(SdService *s, const char *status)
{
    (void) s;
    (void) sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void
sd_service_stopping(SdService *s)
{
    (void) s;
    (void) sd_notify(0, "STOPPING=1\nSTATUS=Shutting down");
}

static void
on_closed(uv_handle_t *h)
{
    free(h->data);
}

void
sd_service_free(SdService *s)
{
    if (!s) {
        return;
    }
    (void) uv_timer_stop(&s->watchdog);
    uv_close((uv_handle_t *) &s->watchdog, on_closed);
}
