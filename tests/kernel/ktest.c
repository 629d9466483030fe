/* SPDX-License-Identifier: MIT */
/*
 * ktest — see ktest.h. The kernel log is read through /dev/kmsg: one record per read(),
 * "prio,seq,usec,flags;text\n" followed by " KEY=value" lines; a non-blocking fd answers
 * EAGAIN when nothing new was logged. mtty's dev_dbg lines look like
 * "mtty 83b8f4f2-...: mtty_step_state: 2 -> 5" (samples/vfio-mdev/mtty.c, Linux 6.12).
 */
#include "ktest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned checks, failed;
static int kmsg_fd = -1;

bool
ktest_check(bool cond, const char *fmt, ...)
{
    va_list ap;

    checks++;
    if (!cond) {
        failed++;
    }
    printf("%sok %u - ", cond ? "" : "not ", checks);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    return cond;
}

void
ktest_diag(const char *fmt, ...)
{
    va_list ap;

    fputs("#   ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

int
ktest_finish(void)
{
    if (checks == 0) {
        printf("not ok 1 - the program made checks\n");
        failed++;
    }
    printf("%u passed, %u failed\n", checks - failed, failed);
    return failed ? 1 : 0;
}

int
ktest_kmsg_open(void)
{
    kmsg_fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (kmsg_fd < 0) {
        return -errno;
    }
    (void) lseek(kmsg_fd, 0, SEEK_END);
    return 0;
}

/* The next record's text (up to its first newline) into @buf; false when there is none. */
static bool
kmsg_next(char *buf, size_t size)
{
    char rec[8192];
    ssize_t n;
    char *text, *nl;

    for (;;) {
        n = read(kmsg_fd, rec, sizeof(rec) - 1);
        if (n < 0 && errno == EPIPE) {
            continue; /* records were overwritten: go on with the next one */
        }
        if (n <= 0) {
            return false;
        }
        rec[n] = '\0';
        text = strchr(rec, ';');
        if (!text) {
            continue;
        }
        text++;
        nl = strchr(text, '\n');
        if (nl) {
            *nl = '\0';
        }
        (void) snprintf(buf, size, "%s", text);
        return true;
    }
}

void
ktest_kmsg_drain(void)
{
    char line[1024];

    while (kmsg_next(line, sizeof(line))) {
        continue;
    }
}

void
ktest_kmsg_arcs(const char *uuid, KtestArcs *ret)
{
    char line[1024];
    int from, to;

    ret->n = 0;
    while (kmsg_next(line, sizeof(line))) {
        const char *p = strstr(line, "mtty_step_state: ");

        if (!p || !strstr(line, uuid) || sscanf(p, "mtty_step_state: %d -> %d", &from, &to) != 2) {
            continue;
        }
        if (ret->n < KTEST_MAX_ARCS) {
            ret->arcs[ret->n++] = (FsmArc){(DeviceState) from, (DeviceState) to};
        }
    }
}

bool
ktest_dyndbg_enabled(void)
{
    FILE *f = fopen("/proc/cmdline", "re");
    char line[4096] = "";
    bool on;

    if (!f) {
        return false;
    }
    on = fgets(line, sizeof(line), f) && strstr(line, "mtty.dyndbg=+p");
    fclose(f);
    return on;
}

char *
ktest_arcs_string(const FsmArc *arcs, unsigned n, char *buf, size_t size)
{
    size_t used = 0;

    if (n == 0) {
        (void) snprintf(buf, size, "-");
        return buf;
    }
    for (unsigned i = 0; i < n && used < size; i++) {
        const char *from = fsm_state_name(arcs[i].from) ?: "?";
        const char *to = fsm_state_name(arcs[i].to) ?: "?";

        /* a chain when the arcs connect, ", " where they do not */
        if (i == 0) {
            used += (size_t) snprintf(buf + used, size - used, "%s->%s", from, to);
        } else if (arcs[i - 1].to == arcs[i].from) {
            used += (size_t) snprintf(buf + used, size - used, "->%s", to);
        } else {
            used += (size_t) snprintf(buf + used, size - used, ", %s->%s", from, to);
        }
    }
    return buf;
}

bool
ktest_arcs_equal(const FsmArc *a, unsigned na, const FsmArc *b, unsigned nb)
{
    if (na != nb) {
        return false;
    }
    for (unsigned i = 0; i < na; i++) {
        if (a[i].from != b[i].from || a[i].to != b[i].to) {
            return false;
        }
    }
    return true;
}

int
ktest_mdev_cdev_path(const char *uuid, char *buf, size_t size)
{
    char dir[256];
    struct dirent *de;
    DIR *d;

    (void) snprintf(dir, sizeof(dir), "/sys/bus/mdev/devices/%s/vfio-dev", uuid);
    d = opendir(dir);
    if (!d) {
        return -errno;
    }
    while ((de = readdir(d))) {
        if (strncmp(de->d_name, "vfio", 4) == 0) {
            (void) snprintf(buf, size, "/dev/vfio/devices/%s", de->d_name);
            closedir(d);
            return 0;
        }
    }
    closedir(d);
    return -ENOENT;
}
