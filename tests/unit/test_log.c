/* SPDX-License-Identifier: MIT */
/*
 * test_log — util/log and log_object: the journal entry of a message (fields, their order,
 * what is left out), the fields of a device, a group and a migration, the plain stderr line
 * (unchanged format) and where lines go by JOURNAL_STREAM. The entries as journald receives
 * them, from a running daemon, are checked by tests/integration/test_journal.sh.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device.h"
#include "group.h"
#include "log_object.h"
#include "migration_internal.h"
#include "util/log.h"
#include "util/macro.h"

/* The iovecs as "KEY=value" lines, joined with '|'. */
static char *
joined(const struct iovec *iov, int n)
{
    char *s = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&s, &size);

    cr_assert(f);
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s%.*s", i ? "|" : "", (int) iov[i].iov_len, (const char *) iov[i].iov_base);
    }
    (void) fclose(f);
    return s;
}

TestSuite(entry, .timeout = 10);

Test(entry, fixed_fields_first_then_the_callers_in_order_without_null_values)
{
    LogField f[] = {{"VFIO_MIGD_GROUP", "vm1"}, {"VFIO_MIGD_DEVICE", "nic0"},
                    {"VFIO_MIGD_MIGRATION", NULL}, {"VFIO_MIGD_DEVICE", "nic1"}};
    struct iovec *iov = NULL;
    char *buf = NULL, *s;
    int n;

    n = log_journal_entry(LOG_WARNING, 0, "daemon/group.c", 42, "Group 'vm1': it failed.", f,
                          ELEMENTSOF(f), &iov, &buf);
    cr_assert_eq(n, 8);
    s = joined(iov, n);
    cr_expect_str_eq(s, "MESSAGE=Group 'vm1': it failed.|PRIORITY=4|SYSLOG_IDENTIFIER=vfio-migd|"
                        "CODE_FILE=daemon/group.c|CODE_LINE=42|VFIO_MIGD_GROUP=vm1|"
                        "VFIO_MIGD_DEVICE=nic0|VFIO_MIGD_DEVICE=nic1");
    free(s);
    free(iov);
    free(buf);
}

Test(entry, an_error_adds_its_errno_and_a_newline_stays_in_the_value)
{
    struct iovec *iov = NULL;
    char *buf = NULL, *s;
    int n;

    n = log_journal_entry(LOG_ERR, -ENOENT, "main.c", 7, "two\nlines", NULL, 0, &iov, &buf);
    cr_assert_eq(n, 6);
    s = joined(iov, n);
    cr_expect_str_eq(s, "MESSAGE=two\nlines|PRIORITY=3|SYSLOG_IDENTIFIER=vfio-migd|"
                        "CODE_FILE=main.c|CODE_LINE=7|ERRNO=2");
    free(s);
    free(iov);
    free(buf);
}

Test(entry, a_whole_group_of_fields_fits)
{
    LogField f[GROUP_MAX_DEVICES + 2];
    char ids[ELEMENTSOF(f)][16];
    const char *last = "VFIO_MIGD_DEVICE=d257";
    struct iovec *iov = NULL;
    char *buf = NULL;
    int n;

    for (size_t i = 0; i < ELEMENTSOF(f); i++) {
        (void) snprintf(ids[i], sizeof(ids[i]), "d%zu", i);
        f[i] = (LogField){"VFIO_MIGD_DEVICE", ids[i]};
    }
    n = log_journal_entry(LOG_INFO, 0, "x.c", 1, "m", f, ELEMENTSOF(f), &iov, &buf);
    cr_assert_eq(n, 5 + (int) ELEMENTSOF(f));
    cr_expect_eq(iov[n - 1].iov_len, strlen(last));
    cr_expect_eq(memcmp(iov[n - 1].iov_base, last, strlen(last)), 0);
    free(iov);
    free(buf);
}

/* ---- the fields of a device, a group, a migration */

TestSuite(object, .timeout = 10);

static Device dev[3] = {{.id = "nic0"}, {.id = "nic1"}, {.id = "fpga"}};
static Device *members[2] = {&dev[0], &dev[1]};
static Group grp = {.name = "vm1", .devices = members, .n_devices = 2};

static char *
fields_text(const LogField *f, size_t n)
{
    char *s = NULL;
    size_t size = 0;
    FILE *m = open_memstream(&s, &size);

    cr_assert(m);
    for (size_t i = 0; i < n; i++) {
        fprintf(m, "%s%s=%s", i ? "|" : "", f[i].key, f[i].value);
    }
    (void) fclose(m);
    return s;
}

static void
expect_fields(const LogField *f, size_t n, const char *want)
{
    char *s = fields_text(f, n);

    cr_expect_str_eq(s, want);
    free(s);
}

Test(object, a_device_its_id)
{
    LogField f[4];

    dev[0].group = &grp; /* the group is not a device line's field: workers log them too */
    expect_fields(f, log_object_device_fields(&dev[0], f, ELEMENTSOF(f)), "VFIO_MIGD_DEVICE=nic0");
}

Test(object, a_group_its_name_and_every_member)
{
    LogField f[GROUP_MAX_DEVICES + 1];

    expect_fields(f, log_object_group_fields(&grp, f, ELEMENTSOF(f)),
                  "VFIO_MIGD_GROUP=vm1|VFIO_MIGD_DEVICE=nic0|VFIO_MIGD_DEVICE=nic1");
    cr_expect_eq(log_object_group_fields(&grp, f, 2), 2u, "never more than the room given");
}

Test(object, a_migration_its_id_its_group_and_while_it_runs_the_devices)
{
    static MigrationJob j = {.id = "m7", .subject = MIGRATION_SUBJECT_GROUP, .group = &grp,
                             .group_name = "vm1", .phase = PHASE_PRECOPY};
    LogField f[GROUP_MAX_DEVICES + 2];

    expect_fields(f, log_object_job_fields(&j, f, ELEMENTSOF(f)),
                  "VFIO_MIGD_MIGRATION=m7|VFIO_MIGD_GROUP=vm1|VFIO_MIGD_DEVICE=nic0|"
                  "VFIO_MIGD_DEVICE=nic1");
    /* Over, the job no longer owns the group: it may be deleted, so it is not read. */
    j.phase = PHASE_COMPLETED;
    j.group = (Group *) 0x1; /* would crash if read */
    expect_fields(f, log_object_job_fields(&j, f, ELEMENTSOF(f)),
                  "VFIO_MIGD_MIGRATION=m7|VFIO_MIGD_GROUP=vm1");
}

Test(object, a_save_of_one_device_names_the_device_not_a_group)
{
    static Device *one[] = {&dev[2]};
    static Group transient = {.name = "fpga", .devices = one, .n_devices = 1};
    MigrationJob j = {.id = "m8", .subject = MIGRATION_SUBJECT_DEVICE, .group = &transient,
                      .group_name = "fpga", .phase = PHASE_SWITCHOVER};
    LogField f[GROUP_MAX_DEVICES + 2];

    expect_fields(f, log_object_job_fields(&j, f, ELEMENTSOF(f)),
                  "VFIO_MIGD_MIGRATION=m8|VFIO_MIGD_DEVICE=fpga");
}

/* ---- where a line goes */

static char logfile[64];

/* stderr to a fresh file; returns its "DEV:INO". */
static void
stderr_to_file(char *devino, size_t size)
{
    struct stat st;
    int fd;

    (void) snprintf(logfile, sizeof(logfile), "/tmp/test-log.XXXXXX");
    fd = mkstemp(logfile);
    cr_assert_geq(fd, 0);
    cr_assert_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    (void) close(fd);
    cr_assert_eq(fstat(STDERR_FILENO, &st), 0);
    (void) snprintf(devino, size, "%ju:%ju", (uintmax_t) st.st_dev, (uintmax_t) st.st_ino);
}

static char *
written(void)
{
    static char text[4096];
    FILE *f;
    size_t n;

    fflush(stderr);
    f = fopen(logfile, "r");
    cr_assert(f);
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    (void) fclose(f);
    (void) unlink(logfile);
    return text;
}

TestSuite(stderr, .timeout = 10);

Test(stderr, not_the_journal_the_format_of_old_and_no_fields)
{
    char devino[64];

    stderr_to_file(devino, sizeof(devino));
    cr_assert_eq(setenv("JOURNAL_STREAM", "8:12345", 1), 0); /* another file's */
    log_open();
    log_set_max_level(LOG_INFO);
    log_device_warning(&dev[2], "Device '%s': it broke.", dev[2].id);
    errno = EINTR;
    cr_expect_eq(log_error_errno(-ENOENT, "Cannot open: %m"), -ENOENT);
    cr_expect_eq(errno, EINTR, "errno is left as it was");
    log_debug("not shown at info");
    cr_expect_str_eq(written(), "vfio-migd: warning: Device 'fpga': it broke.\n"
                                "vfio-migd: error: Cannot open: No such file or directory\n");
}

Test(stderr, debug_adds_file_and_line)
{
    char devino[64];
    int line;

    stderr_to_file(devino, sizeof(devino));
    cr_assert_eq(unsetenv("JOURNAL_STREAM"), 0);
    log_open();
    log_set_max_level(LOG_DEBUG);
    line = __LINE__ + 1;
    TRACE_DEVICE(&dev[0], op_run_arc, "%s stop->running", dev[0].id);
    char want[256];
    (void) snprintf(want, sizeof(want),
                    "vfio-migd: debug: trace op_run_arc: nic0 stop->running (%s:%d)\n", __FILE__,
                    line);
    cr_expect_str_eq(written(), want);
}

Test(stderr, the_journal_stream_without_journald_gets_priority_prefixes)
{
    char devino[64];

    if (access("/run/systemd/journal/socket", F_OK) == 0) {
        cr_skip_test("journald runs here: the entries would go to it (test_journal.sh checks "
                     "this in a namespace of its own)");
    }
    stderr_to_file(devino, sizeof(devino));
    cr_assert_eq(setenv("JOURNAL_STREAM", devino, 1), 0);
    log_open();
    log_set_max_level(LOG_INFO);
    log_group_warning(&grp, "Group '%s': slow.", grp.name);
    log_info("Serving.");
    cr_expect_str_eq(written(), "<4>Group 'vm1': slow.\n<6>Serving.\n");
}
