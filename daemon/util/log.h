/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * log — leveled logging to stderr. Under systemd (JOURNAL_STREAM set) each line carries a
 * <N> syslog priority prefix that journald turns into the entry's priority; otherwise a
 * readable "level: " prefix. log_*_errno() return the negative errno they were given so a
 * caller can `return log_error_errno(r, "...: %m")`; %m prints that errno's text.
 *
 * Modules under core/ and backend/ do not log (debug at most); the daemon's edges do.
 * Threads: safe from any thread (one fprintf per line).
 */

#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

/* Marks an errno we invent (no syscall failed); keeps the sign convention in one place. */
#define SYNTHETIC_ERRNO(e) (-(e))

void log_set_max_level(int level);
int log_get_max_level(void);
int log_level_from_string(const char *s); /* "debug", "info", ... -> LOG_*, or -EINVAL */
const char *log_level_to_string(int level); /* LOG_* -> "debug", ...; "?" for others */

/* Logs at @level when enabled; sets errno to -@error for %m. Returns @error (<= 0). */
int log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
    _printf_(5, 6);

#define log_full_errno(level, error, ...) log_internal(level, error, __FILE__, __LINE__, __VA_ARGS__)
#define log_debug(...) (void) log_full_errno(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) (void) log_full_errno(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) (void) log_full_errno(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) (void) log_full_errno(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) (void) log_full_errno(LOG_ERR, 0, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_info_errno(e, ...) log_full_errno(LOG_INFO, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, e, __VA_ARGS__)

/* Every device state change goes through TRACE, named after the function (debug level). */
#define TRACE(fn, ...) log_debug("trace " #fn ": " __VA_ARGS__)
