/* SPDX-License-Identifier: MIT */
/*
 * strutil — see strutil.h.
 */
#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "macro.h"

int
strutil_parse_size(const char *s, uint64_t *ret_bytes)
{
    static const struct {
        const char *suffix;
        uint64_t factor;
    } suffixes[] = {
        {"", 1},           {"B", 1},
        {"K", 1ULL << 10}, {"KiB", 1ULL << 10}, {"KB", 1ULL << 10},
        {"M", 1ULL << 20}, {"MiB", 1ULL << 20}, {"MB", 1ULL << 20},
        {"G", 1ULL << 30}, {"GiB", 1ULL << 30}, {"GB", 1ULL << 30},
    };
    unsigned long long v;
    char *end;

    if (!s || !isdigit((unsigned char) s[0])) {
        return -EINVAL;
    }
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno) {
        return -ERANGE;
    }
    for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
        if (strcasecmp(end, suffixes[i].suffix) == 0) {
            if (v > UINT64_MAX / suffixes[i].factor) {
                return -ERANGE;
            }
            *ret_bytes = v * suffixes[i].factor;
            return 0;
        }
    }
    return -EINVAL;
}

int
strutil_parse_rate(const char *s, uint64_t *ret_bytes)
{
    char buf[64];
    size_t len = s ? strlen(s) : 0;

    if (!s || len >= sizeof(buf)) {
        return -EINVAL;
    }
    memcpy(buf, s, len + 1);
    if (len > 2 && strcmp(buf + len - 2, "/s") == 0) {
        buf[len - 2] = '\0';
    }
    return strutil_parse_size(buf, ret_bytes);
}

int
strutil_parse_int_bounded(const char *s, long long min, long long max, long long *ret)
{
    long long v;
    char *end;

    if (!s || !*s || isspace((unsigned char) s[0])) {
        return -EINVAL;
    }
    errno = 0;
    v = strtoll(s, &end, 10);
    if (*end) {
        return -EINVAL;
    }
    if (errno == ERANGE || v < min || v > max) {
        return -ERANGE;
    }
    *ret = v;
    return 0;
}

bool
strutil_id_is_valid(const char *id)
{
    size_t n;

    if (!id) {
        return false;
    }
    n = strlen(id);
    if (n == 0 || n > DEVICE_ID_MAX || id[0] == '-' || id[0] == '.') {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char) id[i];
        if (!isalnum(c) && c != '_' && c != '.' && c != ':' && c != '-') {
            return false;
        }
    }
    return true;
}

static int
copy_bounded(const char *src, size_t len, char *dst, size_t size)
{
    if (len >= size) {
        return -EINVAL;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

int
strutil_options_next(const char **cursor, char *key, size_t key_size, char *value,
                     size_t value_size)
{
    const char *p = *cursor;
    size_t len, key_len;
    const char *eq;

    if (!p || !*p) {
        return 0;
    }
    len = strcspn(p, ",");
    eq = memchr(p, '=', len);
    if (!eq) {
        return -EINVAL;
    }
    key_len = (size_t) (eq - p);
    if (key_len == 0 || copy_bounded(p, key_len, key, key_size) < 0 ||
        copy_bounded(eq + 1, len - key_len - 1, value, value_size) < 0) {
        return -EINVAL;
    }
    p += len;
    if (*p == ',') {
        p++;
        if (!*p) {
            return -EINVAL; /* "a=1," — a trailing comma is a typo, not an empty option */
        }
    }
    *cursor = p;
    return 1;
}

char *
strutil_format_bytes(uint64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double) bytes;
    size_t u = 0;

    /* 1048575 bytes must print as "1.0 MiB", not "1024.0 KiB": promote when %.1f would
     * round up to 1024. */
    while (v >= 1023.95 && u + 1 < ELEMENTSOF(units)) {
        v /= 1024.0;
        u++;
    }
    if (u == 0) {
        (void) snprintf(buf, size, "%llu B", (unsigned long long) bytes);
    } else if (v == (double) (uint64_t) v) {
        (void) snprintf(buf, size, "%.0f %s", v, units[u]);
    } else {
        (void) snprintf(buf, size, "%.1f %s", v, units[u]);
    }
    return buf;
}

char *
strutil_printable(const char *s, size_t max, char *buf, size_t size)
{
    size_t n = 0, len = strnlen(s, max + 1);

    for (; n < len && n < max && n + 1 < size; n++) {
        buf[n] = isprint((unsigned char) s[n]) ? s[n] : '?';
    }
    buf[n] = '\0';
    if (n < len && size - n > 3) {
        strcpy(buf + n, "...");
    }
    return buf;
}

void
strutil_vappend_failure(char *buf, size_t size, const char *fmt, va_list ap)
{
    size_t used = strnlen(buf, size);

    if (used >= size) {
        return; /* not a string: nothing to append to */
    }
    if (used > 0 && used + 2 < size) {
        buf[used++] = ';';
        buf[used++] = ' ';
        buf[used] = '\0';
    }
    (void) vsnprintf(buf + used, size - used, fmt, ap);
}
