/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * sd_service — the daemon's side of the systemd service contract:
 *   - the fds systemd passed (LISTEN_FDS, LISTEN_FDNAMES; socket units' fds first, then the
 *     fd store's): taken once at start-up, handed out by name (sd_service_take_fd(): "api"
 *     for the API socket); the ones nobody takes are closed with a warning;
 *   - READY=1 once the API serves, STATUS= lines (sent only when they change), STOPPING=1
 *     on shutdown;
 *   - WATCHDOG=1 pings from a loop timer at half of WatchdogSec= (a wedged loop gets the
 *     service restarted).
 * Notifications are no-ops when not run under systemd (no NOTIFY_SOCKET); without LISTEN_FDS
 * there are no fds to take.
 * Threads: loop-thread only.
 */

#include <uv.h>

typedef struct SdService SdService;

/* Takes the fds systemd passed (and unsets LISTEN_* so nothing we start inherits them). */
int sd_service_new(uv_loop_t *loop, SdService **ret);
/* Hands the fd systemd passed as @name to the caller. -ENOENT: none by that name;
 * -ENOTUNIQ: several (they stay here, to be closed by sd_service_close_unclaimed()). */
int sd_service_take_fd(SdService *s, const char *name, int *ret_fd);
/* Closes every passed fd no one took, with a warning naming each. */
void sd_service_close_unclaimed(SdService *s);
void sd_service_ready(SdService *s, const char *status);
/* Sends STATUS=@status unless it is the line sent last. */
void sd_service_status(SdService *s, const char *status);
void sd_service_stopping(SdService *s);
/* Stops the watchdog timer and frees @s once the timer handle is closed. NULL-safe. */
void sd_service_free(SdService *s);
