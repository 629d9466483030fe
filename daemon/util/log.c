/* SPDX-License-Identifier: MIT */
/*
 * log — see log.h. A single write per line (one fprintf) or one datagram per journal entry
 * keeps messages from different threads whole.
 */
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The entry's CODE_FILE and CODE_LINE are the caller's, not this file's: without this,
 * sd_journal_sendv() is a macro that adds its own. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

/* A message is one sentence or a few: longer ones are cut. */
#define LOG_MESSAGE_MAX 2048

/* Atomic: SetLogLevel and a reload change it on the loop while workers log. */
static _Atomic int max_level = LOG_INFO;
static bool journal_stream; /* stderr is a journal stream: "<N>message" lines */
static bool journal_native; /* and journald's socket is there: entries with fields */

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

DEFINE_NAME_LOOKUP(log_level_to_string, int, level_names, "?");

/* journald's native socket (systemd docs/JOURNAL_NATIVE_PROTOCOL.md). */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* systemd.exec(5): JOURNAL_STREAM is "DEV:INO" of the stream the service's stderr was
 * connected to; a process whose stderr is still that stream may log natively instead. It is
 * inherited by children whose stderr may be elsewhere, hence the comparison. Natively only
 * when the socket is there: sd_journal_sendv() reports success when it is not (and drops the
 * entry), while the stream still reaches journald. */
void
log_open(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    uintmax_t dev, ino;
    struct stat st;
    int n = 0;

    journal_stream = e && sscanf(e, "%ju:%ju%n", &dev, &ino, &n) == 2 && e[n] == '\0' &&
                     fstat(STDERR_FILENO, &st) == 0 && (uintmax_t) st.st_dev == dev &&
                     (uintmax_t) st.st_ino == ino;
    journal_native = journal_stream && access(JOURNAL_SOCKET, W_OK) == 0;
}


/* Appends "KEY=value" to @buf at *@used and records it in @iov. */
static void
entry_add(struct iovec *iov, size_t *n, char *buf, size_t *used, const char *key,
          const char *value)
{
    size_t k = strlen(key), v = strlen(value);

    memcpy(buf + *used, key, k);
    buf[*used + k] = '=';
    memcpy(buf + *used + k + 1, value, v);
    iov[(*n)++] = (struct iovec){.iov_base = buf + *used, .iov_len = k + 1 + v};
    *used += k + 1 + v;
}

int
log_journal_entry(int level, int error, const char *file, int line, const char *message,
                  const LogField *fields, size_t n_fields, struct iovec **ret_iov,
                  char **ret_buf)
{
    char priority[16], line_text[16], errno_text[16];
    LogField fixed[] = {
        {"MESSAGE", message},          {"PRIORITY", priority},
        {"SYSLOG_IDENTIFIER", "vfio-migd"}, {"CODE_FILE", file},
        {"CODE_LINE", line_text},      {"ERRNO", error < 0 ? errno_text : NULL},
    };
    size_t size = 0, used = 0, n = 0;
    struct iovec *iov;
    char *buf;

    (void) snprintf(priority, sizeof(priority), "%d", level);
    (void) snprintf(line_text, sizeof(line_text), "%d", line);
    (void) snprintf(errno_text, sizeof(errno_text), "%d", -error);
    for (size_t i = 0; i < ELEMENTSOF(fixed) + n_fields; i++) {
        const LogField *f = i < ELEMENTSOF(fixed) ? &fixed[i] : &fields[i - ELEMENTSOF(fixed)];
        size += f->value ? strlen(f->key) + 1 + strlen(f->value) : 0;
    }
    iov = calloc(ELEMENTSOF(fixed) + n_fields, sizeof(*iov));
    buf = malloc(size + 1);
    if (!iov || !buf) {
        free(iov);
        free(buf);
        return -ENOMEM;
    }
    for (size_t i = 0; i < ELEMENTSOF(fixed) + n_fields; i++) {
        const LogField *f = i < ELEMENTSOF(fixed) ? &fixed[i] : &fields[i - ELEMENTSOF(fixed)];
        if (f->value) {
            entry_add(iov, &n, buf, &used, f->key, f->value);
        }
    }
    *ret_iov = iov;
    *ret_buf = buf;
    return (int) n;
}

/* 0 when journald took the entry. */
static int
log_send_journal(int level, int error, const char *file, int line, const char *msg,
                 const LogField *fields, size_t n_fields)
{
    struct iovec *iov = NULL;
    char *buf = NULL;
    int n, r;

    n = log_journal_entry(level, error, file, line, msg, fields, n_fields, &iov, &buf);
    if (n < 0) {
        return n;
    }
    r = sd_journal_sendv(iov, n);
    free(iov);
    free(buf);
    return r;
}

static void
log_write(int level, int error, const char *file, int line, const char *msg,
          const LogField *fields, size_t n_fields)
{
    if (journal_native && log_send_journal(level, error, file, line, msg, fields, n_fields) >= 0) {
        return;
    }
    if (journal_stream) {
        /* No socket, or journald did not take the entry: the stream still reaches it. */
        fprintf(stderr, "<%d>%s\n", level, msg);
    } else if (max_level >= LOG_DEBUG) {
        fprintf(stderr, "vfio-migd: %s: %s (%s:%d)\n", level_names[level], msg, file, line);
    } else {
        fprintf(stderr, "vfio-migd: %s: %s\n", level_names[level], msg);
    }
}

int
log_fields_internalv(int level, int error, const char *file, int line, const LogField *fields,
                     size_t n_fields, const char *fmt, va_list ap)
{
    char msg[LOG_MESSAGE_MAX];
    int saved = errno;

    if (level > max_level) {
        return error;
    }
    /* %m in fmt prints strerror(errno): make it describe @error, not whatever errno is. */
    errno = error < 0 ? -error : 0;
    (void) vsnprintf(msg, sizeof(msg), fmt, ap);
    log_write(level, error, file, line, msg, fields, n_fields);
    errno = saved;
    return error;
}

int
log_internal(int level, int error, const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void) log_fields_internalv(level, error, file, line, NULL, 0, fmt, ap);
    va_end(ap);
    return error;
}
