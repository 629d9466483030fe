/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * log_object — log lines about a device, a group or a migration, with the journal fields an
 * operator filters on (util/log.h sends them when stderr is the journal; on plain stderr the
 * line is as any other):
 *   log_device_*(d, ...)  VFIO_MIGD_DEVICE=<id>
 *   log_group_*(g, ...)   VFIO_MIGD_GROUP=<name>, VFIO_MIGD_DEVICE=<id> for every member
 *   log_job_*(j, ...)     VFIO_MIGD_MIGRATION=<id>, VFIO_MIGD_GROUP=<name>, and, while
 *                         it runs, VFIO_MIGD_DEVICE=<id> for every device of its group; for a
 *                         save or restore of one device, VFIO_MIGD_DEVICE=<id> instead
 * so that `journalctl VFIO_MIGD_DEVICE=nic0` shows nic0's whole history: attach, state
 * changes, its group's transitions, the migrations that moved it. The message text still
 * names the object itself (the plain stderr line has no fields).
 *
 * Used by:  the daemon's modules that log about its objects (manager, device, group,
 *           migration*, rpc/handlers).
 * Threads:  log_device_*() and TRACE_DEVICE() from any thread (a device's id never changes);
 *           the group and job ones on the loop only (they read the group's members).
 */

#include <stddef.h>

#include "forward.h"
#include "util/log.h"

#define LOG_FIELD_DEVICE "VFIO_MIGD_DEVICE"
#define LOG_FIELD_GROUP "VFIO_MIGD_GROUP"
#define LOG_FIELD_MIGRATION "VFIO_MIGD_MIGRATION"

/* The fields of each kind of object, into @f (room for @max); returns how many. Enough room:
 * 1 for a device, GROUP_MAX_DEVICES + 1 for a group, GROUP_MAX_DEVICES + 2 for a job. */
size_t log_object_device_fields(const Device *d, LogField *f, size_t max);
size_t log_object_group_fields(const Group *g, LogField *f, size_t max);
size_t log_object_job_fields(const MigrationJob *j, LogField *f, size_t max);

typedef enum LogObject {
    LOG_OBJECT_DEVICE,
    LOG_OBJECT_GROUP,
    LOG_OBJECT_JOB,
    _LOG_OBJECT_MAX,
} LogObject;

/* Logs about @object, a Device, Group or MigrationJob as @kind says, with its fields. Use
 * the macros below: they pass the right kind and check the object's type. */
int log_object(LogObject kind, const void *object, int level, int error, const char *file,
               int line, const char *fmt, ...) _printf_(7, 8);

#define log_device_full_errno(d, level, error, ...)                                               \
    log_object(LOG_OBJECT_DEVICE, (const Device *){(d)}, level, error, __FILE__, __LINE__,      \
               __VA_ARGS__)
#define log_device_debug(d, ...) (void) log_device_full_errno(d, LOG_DEBUG, 0, __VA_ARGS__)
#define log_device_info(d, ...) (void) log_device_full_errno(d, LOG_INFO, 0, __VA_ARGS__)
#define log_device_notice(d, ...) (void) log_device_full_errno(d, LOG_NOTICE, 0, __VA_ARGS__)
#define log_device_warning(d, ...) (void) log_device_full_errno(d, LOG_WARNING, 0, __VA_ARGS__)
#define log_device_error(d, ...) (void) log_device_full_errno(d, LOG_ERR, 0, __VA_ARGS__)
#define log_device_warning_errno(d, e, ...) log_device_full_errno(d, LOG_WARNING, e, __VA_ARGS__)
#define log_device_error_errno(d, e, ...) log_device_full_errno(d, LOG_ERR, e, __VA_ARGS__)

/* util/log.h's TRACE for a device's state changes, with its field (CONVENTIONS 11). */
#define TRACE_DEVICE(d, fn, ...) log_device_debug(d, "trace " #fn ": " __VA_ARGS__)

#define log_group_full_errno(g, level, error, ...)                                                \
    log_object(LOG_OBJECT_GROUP, (const Group *){(g)}, level, error, __FILE__, __LINE__,        \
               __VA_ARGS__)
#define log_group_debug(g, ...) (void) log_group_full_errno(g, LOG_DEBUG, 0, __VA_ARGS__)
#define log_group_info(g, ...) (void) log_group_full_errno(g, LOG_INFO, 0, __VA_ARGS__)
#define log_group_notice(g, ...) (void) log_group_full_errno(g, LOG_NOTICE, 0, __VA_ARGS__)
#define log_group_warning(g, ...) (void) log_group_full_errno(g, LOG_WARNING, 0, __VA_ARGS__)
#define log_group_error(g, ...) (void) log_group_full_errno(g, LOG_ERR, 0, __VA_ARGS__)
#define log_group_warning_errno(g, e, ...) log_group_full_errno(g, LOG_WARNING, e, __VA_ARGS__)
#define log_group_error_errno(g, e, ...) log_group_full_errno(g, LOG_ERR, e, __VA_ARGS__)

#define TRACE_GROUP(g, fn, ...) log_group_debug(g, "trace " #fn ": " __VA_ARGS__)

#define log_job_full_errno(j, level, error, ...)                                                  \
    log_object(LOG_OBJECT_JOB, (const MigrationJob *){(j)}, level, error, __FILE__, __LINE__,   \
               __VA_ARGS__)
#define log_job_debug(j, ...) (void) log_job_full_errno(j, LOG_DEBUG, 0, __VA_ARGS__)
#define log_job_info(j, ...) (void) log_job_full_errno(j, LOG_INFO, 0, __VA_ARGS__)
#define log_job_notice(j, ...) (void) log_job_full_errno(j, LOG_NOTICE, 0, __VA_ARGS__)
#define log_job_warning(j, ...) (void) log_job_full_errno(j, LOG_WARNING, 0, __VA_ARGS__)
#define log_job_error(j, ...) (void) log_job_full_errno(j, LOG_ERR, 0, __VA_ARGS__)
#define log_job_warning_errno(j, e, ...) log_job_full_errno(j, LOG_WARNING, e, __VA_ARGS__)
#define log_job_error_errno(j, e, ...) log_job_full_errno(j, LOG_ERR, e, __VA_ARGS__)
