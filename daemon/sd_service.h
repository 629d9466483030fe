/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * sd_service — the daemon's side of the systemd service contract: READY=1 once the API
 * socket serves, STATUS= lines, STOPPING=1 on shutdown, and WATCHDOG=1 pings from a loop
 * timer at half of WatchdogSec= (so a wedged loop gets the service restarted). Every call is
 * a no-op when not run under systemd (no NOTIFY_SOCKET).
 * Threads: loop-thread only.
 */

#include <uv.h>

typedef struct SdService SdService;

int sd_service_new(uv_loop_t *loop, SdService **ret);
void sd_service_ready(SdService *s, const char *status);
void sd_service_stopping(SdService *s);
/* Stops the watchdog timer and frees @s once the timer handle is closed. NULL-safe. */
void sd_service_free(SdService *s);
