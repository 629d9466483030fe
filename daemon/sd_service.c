/* SPDX-License-Identifier: MIT */
/*
 * sd_service — see sd_service.h.
 */
#include "sd_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "util/log.h"

/* STATUS= lines are one short sentence (summary.h); longer ones are cut. */
/* sd_notify(3): FDNAME= is at most 255 characters. */
#define SD_FD_NAME_MAX 255
#define STATUS_MAX 256

typedef struct PassedFd {
    int fd;        /* -EBADF once taken or closed */
    char *name;    /* LISTEN_FDNAMES entry: "api", a store name, or "unknown" */
} PassedFd;

struct SdService {
    uv_timer_t watchdog;
    bool watchdog_active;
    PassedFd *fds;
    size_t n_fds;
    char status[STATUS_MAX]; /* the last STATUS= sent */
};

static void
on_watchdog(uv_timer_t *t)
{
    (void) t;
    (void) sd_notify(0, "WATCHDOG=1");
}

/* LISTEN_PID must be ours, else the fds were meant for another process (sd_listen_fds(3)). */
static void
sd_service_take_passed(SdService *s)
{
    char **names = NULL;
    int n = sd_listen_fds_with_names(/* unset_environment= */ 1, &names);

    if (n < 0) {
        (void) log_warning_errno(n, "Cannot read the fds systemd passed (LISTEN_FDS), "
                                 "ignoring them: %m");
        return;
    }
    if (n == 0) {
        return;
    }
    s->fds = calloc((size_t) n, sizeof(*s->fds));
    for (int i = 0; i < n; i++) {
        if (s->fds) {
            s->fds[i] = (PassedFd){.fd = SD_LISTEN_FDS_START + i, .name = names[i]};
        } else {
            (void) close(SD_LISTEN_FDS_START + i);
            free(names[i]);
        }
    }
    free(names);
    if (!s->fds) {
        log_error("Out of memory: closed the %d fds systemd passed.", n);
        return;
    }
    s->n_fds = (size_t) n;
    log_debug("systemd passed %d fd(s).", n);
}

int
sd_service_new(uv_loop_t *loop, SdService **ret)
{
    SdService *s = calloc(1, sizeof(*s));
    uint64_t usec = 0;

    if (!s) {
        return -ENOMEM;
    }
    sd_service_take_passed(s);
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

int
sd_service_take_fd(SdService *s, const char *name, int *ret_fd)
{
    PassedFd *found = NULL;

    for (size_t i = 0; i < s->n_fds; i++) {
        if (s->fds[i].fd >= 0 && strcmp(s->fds[i].name, name) == 0) {
            if (found) {
                return -ENOTUNIQ;
            }
            found = &s->fds[i];
        }
    }
    if (!found) {
        return -ENOENT;
    }
    *ret_fd = found->fd;
    found->fd = -EBADF;
    return 0;
}

void
sd_service_close_unclaimed(SdService *s)
{
    for (size_t i = 0; i < s->n_fds; i++) {
        if (s->fds[i].fd >= 0) {
            log_warning("Closing fd %d that systemd passed as '%s': nothing here uses it.",
                        s->fds[i].fd, s->fds[i].name);
            (void) close(s->fds[i].fd);
            s->fds[i].fd = -EBADF;
            /* A stored fd would otherwise come back at every start. */
            (void) sd_service_remove_fd(s->fds[i].name);
        }
    }
}

void
sd_service_foreach_passed(SdService *s, void (*fn)(const char *name, void *userdata),
                          void *userdata)
{
    for (size_t i = 0; i < s->n_fds; i++) {
        if (s->fds[i].fd >= 0) {
            fn(s->fds[i].name, userdata);
        }
    }
}

/* sd_notify(3): at most 255 characters, no control characters and no ':' (the separator of
 * LISTEN_FDNAMES); systemd ignores a message with a name it does not accept. */
bool
sd_service_fd_name_is_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;

    if (len == 0 || len > SD_FD_NAME_MAX) {
        return false;
    }
    for (const unsigned char *p = (const unsigned char *) name; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || *p == ':') {
            return false;
        }
    }
    return true;
}

int
sd_service_store_fd(const char *name, int fd)
{
    char msg[SD_FD_NAME_MAX + 64];
    int r;

    if (!sd_service_fd_name_is_valid(name) || fd < 0) {
        return -EINVAL;
    }
    if (!getenv("NOTIFY_SOCKET")) {
        return 0;
    }
    /* FDPOLL=0: VFIO and memfd files cannot be polled anyway; this says we do not want the
     * manager to drop an fd on its own (a pollable one on EPOLLHUP). */
    (void) snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s\nFDPOLL=0", name);
    r = sd_pid_notify_with_fds(0, /* unset_environment= */ 0, msg, &fd, 1);
    return r < 0 ? r : 0;
}

int
sd_service_remove_fd(const char *name)
{
    int r;

    if (!sd_service_fd_name_is_valid(name)) {
        return -EINVAL;
    }
    if (!getenv("NOTIFY_SOCKET")) {
        return 0;
    }
    r = sd_notifyf(0, "FDSTOREREMOVE=1\nFDNAME=%s", name);
    return r < 0 ? r : 0;
}

void
sd_service_ready(SdService *s, const char *status)
{
    (void) snprintf(s->status, sizeof(s->status), "%s", status);
    (void) sd_notifyf(0, "READY=1\nSTATUS=%s", s->status);
}

void
sd_service_status(SdService *s, const char *status)
{
    if (strncmp(s->status, status, sizeof(s->status) - 1) == 0) {
        return;
    }
    (void) snprintf(s->status, sizeof(s->status), "%s", status);
    (void) sd_notifyf(0, "STATUS=%s", s->status);
}

void
sd_service_stopping(SdService *s)
{
    (void) s;
    (void) sd_notify(0, "STOPPING=1");
}

static void
on_closed(uv_handle_t *h)
{
    SdService *s = h->data;

    for (size_t i = 0; i < s->n_fds; i++) {
        free(s->fds[i].name);
    }
    free(s->fds);
    free(s);
}

void
sd_service_free(SdService *s)
{
    if (!s) {
        return;
    }
    sd_service_close_unclaimed(s);
    (void) uv_timer_stop(&s->watchdog);
    uv_close((uv_handle_t *) &s->watchdog, on_closed);
}
