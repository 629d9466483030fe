/* SPDX-License-Identifier: MIT */
/*
 * log — see log.h. A single fprintf per message keeps lines from different threads whole.
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int max_level = LOG_INFO;

static const char *const level_names[] = {
    [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit",  [LOG_ERR] = "error",
    [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

void
log_set_max_level(int level)
{
    max_level = level;
}

int
log_get_max_level(void)
{
    return max_level;
}

int
log_level_from_string(const char *s)
{
    for (size_t i = 0; i < ELEMENTSOF(level_names); i++) {
        if (level_names[i] && strcmp(level_names[i], s) == 0) {
            return (int) i;
        }
    }
    return -EINVAL;
}

const char *
log_level_to_string(int level)
{
    return level >= 0 && (size_t) level < ELEMENTSOF(level_names) ? level_names[level] : "?";
}

int
log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    if (level > max_level) {
        return error;
    }

    /* %m in fmt prints strerror(errno): make it describe @error, not whatever errno is. */
    errno = error < 0 ? -error : 0;
    va_start(ap, fmt);
    (void) vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    if (getenv("JOURNAL_STREAM")) {
        fprintf(stderr, "<%d>%s\n", level, msg);
    } else if (max_level >= LOG_DEBUG) {
        fprintf(stderr, "vfio-migd: %s: %s (%s:%d)\n", level_names[level], msg, file, line);
    } else {
        fprintf(stderr, "vfio-migd: %s: %s\n", level_names[level], msg);
    }
    return error;
}
