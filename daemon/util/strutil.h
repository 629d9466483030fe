/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * strutil — parsing helpers shared by the daemon, the CLI and tests: byte sizes with
 * suffixes, bounded integers, "key=value,key=value" option lists, and device ids; and the
 * "; "-joined failure text of a device operation or a group run.
 * Pure: no I/O, no allocation except where a function says so. Errors: negative errno.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "4096", "4K", "16M", "1G" (binary multiples; a trailing "iB"/"B" is accepted). */
int strutil_parse_size(const char *s, uint64_t *ret_bytes);
/* A rate in bytes per second: a size as above, optionally followed by "/s" ("100M/s"). */
int strutil_parse_rate(const char *s, uint64_t *ret_bytes);
/* A decimal integer within [min, max]; -ERANGE outside, -EINVAL when not a number. */
int strutil_parse_int_bounded(const char *s, long long min, long long max, long long *ret);

/* 1-64 characters from [A-Za-z0-9_.:-], not starting with '-' or '.'. */
#define DEVICE_ID_MAX 64
bool strutil_id_is_valid(const char *id);

/*
 * Iterates "key=value,key=value". Each call stores the next pair into @key/@value (copied,
 * NUL-terminated, truncation is an error) and advances *@cursor. Returns 1 when a pair was
 * read, 0 at the end, -EINVAL on a malformed pair (empty key, missing '=', too long).
 */
int strutil_options_next(const char **cursor, char *key, size_t key_size, char *value,
                         size_t value_size);

/* @s as a message quotes it: its first @max bytes, each unprintable one as '?', and "..."
 * when it was longer (and @size has room); returns @buf. Input from a file, a peer or an API
 * call then cannot put control characters in front of a person. */
char *strutil_printable(const char *s, size_t max, char *buf, size_t size);

/* Formats @bytes as "256 MiB", "1.5 KiB", "60 B" into @buf (exact multiples without a
 * decimal); returns @buf. */
char *strutil_format_bytes(uint64_t bytes, char *buf, size_t size);

/* Appends the text @fmt formats to the NUL-terminated text in @buf (@size bytes), after "; "
 * when @buf holds some already: every failure of one operation, first one first (device and
 * group results). What does not fit is cut. */
void strutil_vappend_failure(char *buf, size_t size, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
