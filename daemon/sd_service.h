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

#include <stdbool.h>
#include <uv.h>

typedef struct SdService SdService;

/* Takes the fds systemd passed (and unsets LISTEN_* so nothing we start inherits them). */
int sd_service_new(uv_loop_t *loop, SdService **ret);
/* Hands the fd systemd passed as @name to the caller. -ENOENT: none by that name;
 * -ENOTUNIQ: several (they stay here, to be closed by sd_service_close_unclaimed()). */
int sd_service_take_fd(SdService *s, const char *name, int *ret_fd);
/* Closes every passed fd no one took, with a warning naming each, and asks the service
 * manager to drop its copies (FDSTOREREMOVE=1) so they are not passed again. */
void sd_service_close_unclaimed(SdService *s);
/* The names of the passed fds not taken yet, for a caller that takes them by a prefix
 * (restore_state). Calls @fn for each; @fn may call sd_service_take_fd(). */
void sd_service_foreach_passed(SdService *s, void (*fn)(const char *name, void *userdata),
                               void *userdata);

/* The fd store (FileDescriptorStoreMax=): keeps a copy of @fd under @name in the service
 * manager (FDSTORE=1, FDNAME=@name, FDPOLL=0) so that it survives the daemon's crash or
 * restart; the caller keeps its own fd. @name: 1-255 characters, no ':' and no control
 * characters (-EINVAL otherwise). Returns 0 when sent or when there is no NOTIFY_SOCKET (a
 * no-op outside systemd), else the sd_pid_notify_with_fds() error. Thread: any. */
int sd_service_store_fd(const char *name, int fd);
/* Closes the manager's copies of every fd stored as @name (FDSTOREREMOVE=1). Same rules. */
int sd_service_remove_fd(const char *name);
/* True when @name is a valid store name (see sd_service_store_fd()). */
bool sd_service_fd_name_is_valid(const char *name);
void sd_service_ready(SdService *s, const char *status);
/* Sends STATUS=@status unless it is the line sent last. */
void sd_service_status(SdService *s, const char *status);
void sd_service_stopping(SdService *s);
/* Stops the watchdog timer and frees @s once the timer handle is closed. NULL-safe. */
void sd_service_free(SdService *s);
