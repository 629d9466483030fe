/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * log — leveled logging, to the journal or to stderr.
 *
 * When stderr is the journal (JOURNAL_STREAM names stderr's device and inode, as systemd sets
 * it for a service whose output goes to the journal; log_open() checks once), each message
 * is sent with sd_journal_sendv() as a structured entry: MESSAGE=, PRIORITY=,
 * SYSLOG_IDENTIFIER=vfio-migd, CODE_FILE=, CODE_LINE=, ERRNO= (when there is one) and the
 * caller's fields, e.g. VFIO_MIGD_DEVICE=nic0 (log_object.h adds those for every message
 * about a device, group or migration), so that `journalctl VFIO_MIGD_DEVICE=nic0` shows one
 * device's history. If journald's socket is missing or does not take the entry, the line goes
 * to stderr (the journal's stream) with a <N> priority prefix instead. Otherwise lines go to stderr as
 * "vfio-migd: <level>: <message>" (plus " (file:line)" at debug level), fields left out.
 *
 * log_*_errno() return the negative errno they were given so a caller can
 * `return log_error_errno(r, "...: %m")`; %m prints that errno's text.
 * Modules under core/ and backend/ do not log (debug at most); the daemon's edges do.
 * Threads: safe from any thread (one write or one datagram per message); log_open() at
 * start-up, before other threads log; log_set_max_level() at any time (a reload, SetLogLevel).
 */

#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/uio.h>
#include <syslog.h>

#include "macro.h"

/* Marks an errno we invent (no syscall failed); keeps the sign convention in one place. */
#define SYNTHETIC_ERRNO(e) (-(e))

/* A structured field of a journal entry: KEY (upper case, digits, '_') and its value. A NULL
 * value leaves the field out. One key may appear several times (a group's devices). */
typedef struct LogField {
    const char *key;
    const char *value;
} LogField;

void log_set_max_level(int level);
int log_get_max_level(void);
int log_level_from_string(const char *s); /* "debug", "info", ... -> LOG_*, or -EINVAL */
const char *log_level_to_string(int level); /* LOG_* -> "debug", ...; "?" for others */

/* Decides where messages go: the journal when JOURNAL_STREAM matches stderr, else stderr. */
void log_open(void);

/* Logs at @level when enabled; sets errno to -@error for %m. Returns @error (<= 0). */
int log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
    _printf_(5, 6);
/* The same with structured fields (used by the journal only). */
int log_fields_internalv(int level, int error, const char *file, int line,
                         const LogField *fields, size_t n_fields, const char *fmt, va_list ap)
    _printf_(7, 0);

/* Pure: the journal entry of one message, as "KEY=value" iovecs pointing into one buffer:
 * MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, CODE_FILE, CODE_LINE, ERRNO (when @error < 0), then
 * @fields with a value. Returns the number of iovecs and sets *@ret_iov and *@ret_buf (free
 * both), or -ENOMEM. */
int log_journal_entry(int level, int error, const char *file, int line, const char *message,
                      const LogField *fields, size_t n_fields, struct iovec **ret_iov,
                      char **ret_buf);

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
