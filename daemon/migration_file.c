/* SPDX-License-Identifier: MIT */
/*
 * migration_file — SaveGroup and RestoreGroup: a group's devices in one stream file
 * (docs/stream-format.md), the same records a live migration sends.
 *
 * Save: group -> STOP_COPY (P2P-safe), then one worker writes "<path>.partial": header,
 * manifest, every device drained to its end (DEVICE_DATA..., DEVICE_END), STREAM_END; fsync;
 * rename to <path> (refusing to replace a file unless allowed). Then group -> STOP, or
 * RUNNING with resume. On failure the partial file is removed and the group goes back.
 * Restore: a worker reads the whole file through a StreamReader first (CRCs, order, totals,
 * the manifest against the group): a damaged file or another group's is refused before any
 * device is touched. Then group -> RESUMING, a second pass writes every DEVICE_DATA payload
 * into its device (paired by name), group -> STOP (drivers validate) -> RUNNING unless stop.
 * A failure after the devices were touched resets them.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manager.h"
#include "migration_internal.h"
#include "util/cleanup.h"
#include "util/clock.h"
#include "util/log.h"
#include "util/savepath.h"

/* ---- save ---- */

static int
write_prologue(MigrationJob *j, int fd)
{
    size_t mlen = stream_manifest_size(&j->manifest);
    _cleanup_free_ uint8_t *m = malloc(mlen);
    StreamHeader sh = {.stream_id = j->stream_id};
    uint8_t hdr[STREAM_HEADER_SIZE];
    int r;

    if (!m || stream_encode_manifest(&j->manifest, m, mlen) < 0) {
        return -ENOMEM;
    }
    stream_encode_header(&sh, hdr);
    r = transport_write_full(fd, hdr, sizeof(hdr));
    if (r >= 0) {
        r = mig_write_record(fd, STREAM_RECORD_MANIFEST, 0, STREAM_DEVICE_NONE, 0, m,
                             (uint32_t) mlen);
    }
    return r;
}

static int
write_epilogue(MigrationJob *j, int fd)
{
    size_t plen = stream_end_size((uint32_t) j->n_devs);
    _cleanup_free_ uint8_t *p = malloc(plen);
    _cleanup_free_ StreamDeviceTotals *t = calloc(j->n_devs, sizeof(*t));

    if (!p || !t) {
        return -ENOMEM;
    }
    for (size_t i = 0; i < j->n_devs; i++) {
        t[i].bytes = atomic_load(&j->devs[i].stopcopy_bytes);
        t[i].records = atomic_load(&j->devs[i].records);
    }
    (void) stream_encode_stream_end(t, (uint32_t) j->n_devs, p, plen);
    return mig_write_record(fd, STREAM_RECORD_STREAM_END, 0, STREAM_DEVICE_NONE, 1, p,
                            (uint32_t) plen);
}

static void
save_run(MigWork *w)
{
    MigrationJob *j = w->job;
    _cleanup_free_ char *partial = NULL;
    _cleanup_close_ int fd = -EBADF;
    int r;

    if (asprintf(&partial, "%s.partial", j->path) < 0) {
        w->r = -ENOMEM;
        return;
    }
    fd = open(partial, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    r = fd < 0 ? -errno : write_prologue(j, fd);
    for (size_t i = 0; r >= 0 && i < j->n_devs; i++) {
        r = mig_drain_device(&j->devs[i], fd, w->error, sizeof(w->error));
    }
    if (r >= 0) {
        r = write_epilogue(j, fd);
    }
    if (r >= 0 && fsync(fd) < 0) {
        r = -errno;
    }
    if (r >= 0) {
        r = (j->overwrite ? rename(partial, j->path)
                          : renameat2(AT_FDCWD, partial, AT_FDCWD, j->path, RENAME_NOREPLACE)) < 0
                ? -errno
                : 0;
    }
    if (r < 0) {
        (void) unlink(partial);
        if (!w->error[0]) {
            (void) snprintf(w->error, sizeof(w->error), "writing '%.300s' failed: %s", j->path,
                            strerror(-r));
        }
    }
    w->r = r;
}

static void
on_save_finished(MigrationJob *j, const GroupRun *run)
{
    if (run->r < 0) {
        log_warning("Save %s: the file is complete, but moving the group on failed: %s.", j->id,
                    run->error);
    }
    mig_complete(j);
}

static void
save_done(MigWork *w)
{
    MigrationJob *j = w->job;

    if (w->r < 0) {
        mig_fail(j, w->r, "%s", w->error);
        return;
    }
    j->end_ns = clock_now_ns();
    j->confirmed = true; /* the file is complete: no rollback from here */
    for (size_t i = 0; i < j->n_devs; i++) {
        j->devs[i].done = true;
    }
    if (mig_group_transition(j, j->resume_after ? DEVICE_STATE_RUNNING : DEVICE_STATE_STOP,
                             on_save_finished) < 0) {
        mig_complete(j);
    }
}

static void
on_save_stop_copy(MigrationJob *j, const GroupRun *run)
{
    if (run->r < 0) {
        mig_fail(j, run->r, "stopping the group failed: %s", run->error);
        return;
    }
    mig_set_phase(j, PHASE_SWITCHOVER);
    if (mig_queue(j, mig_work_new(j, NULL, save_run, save_done)) < 0) {
        mig_fail(j, -ENOMEM, "cannot start writing '%s'", j->path);
    }
}

/* ---- restore ---- */

/* Reads one record (header + payload) of a file at *off. 0, 1 at the end, or -errno. */
static int
read_record(int fd, off_t *off, uint8_t hdr[STREAM_RECORD_HEADER_SIZE], uint8_t **buf,
            size_t *cap, StreamRecordHeader *rh)
{
    ssize_t n = pread(fd, hdr, STREAM_RECORD_HEADER_SIZE, *off);

    if (n == 0) {
        return 1;
    }
    if (n != STREAM_RECORD_HEADER_SIZE) {
        return -ENODATA;
    }
    if (stream_decode_record_header(hdr, rh) < 0) {
        return -EBADMSG; /* restore_pass() feeds the header to the reader for its sentence */
    }
    if (rh->length > *cap) {
        uint8_t *p = realloc(*buf, rh->length);
        if (!p) {
            return -ENOMEM;
        }
        *buf = p;
        *cap = rh->length;
    }
    n = pread(fd, *buf, rh->length, *off + STREAM_RECORD_HEADER_SIZE);
    if (n != (ssize_t) rh->length) {
        return -ENODATA;
    }
    *off += STREAM_RECORD_HEADER_SIZE + rh->length;
    return 0;
}

/* One pass over the file; with @feed, DEVICE_DATA payloads go into the devices. */
static int
restore_pass(MigWork *w, int fd, bool feed, StreamManifest *mf)
{
    MigrationJob *j = w->job;
    _cleanup_free_ StreamReader *rd = malloc(sizeof(*rd));
    _cleanup_free_ uint8_t *buf = malloc(MIGRATION_DATA_CHUNK);
    uint8_t head[STREAM_HEADER_SIZE], hdr[STREAM_RECORD_HEADER_SIZE];
    size_t cap = MIGRATION_DATA_CHUNK;
    off_t off = STREAM_HEADER_SIZE;
    StreamRecordHeader rh;
    int r;

    if (!rd || !buf) {
        return -ENOMEM;
    }
    stream_reader_init(rd);
    r = pread(fd, head, sizeof(head), 0) == sizeof(head) ? stream_reader_header(rd, head) : -ENODATA;
    while (r >= 0 && (r = read_record(fd, &off, hdr, &buf, &cap, &rh)) == 0) {
        r = stream_reader_record(rd, hdr, buf, mf, &rh);
        if (r >= 0 && feed && rh.type == STREAM_RECORD_DEVICE_DATA) {
            DataSession *s = j->devs[rh.device].device->session;
            for (uint32_t o = 0; r >= 0 && o < rh.length;) {
                ssize_t n = s ? s->ops->write(s, buf + o, rh.length - o) : -ENODATA;
                r = n > 0 ? 0 : (n < 0 ? (int) n : -EIO);
                o += n > 0 ? (uint32_t) n : 0;
            }
            if (r < 0) {
                (void) snprintf(w->error, sizeof(w->error), "device '%s' refused the data: %s (%s)",
                                j->devs[rh.device].device->id, strerror(-r),
                                strerrorname_np(-r) ?: "?");
                return r;
            }
            atomic_fetch_add(&j->devs[rh.device].stopcopy_bytes, rh.length);
        }
    }
    if (r == -EBADMSG && !rd->error[0]) {
        (void) stream_reader_record(rd, hdr, NULL, NULL, &rh); /* names what is wrong */
    }
    if (r >= 0 || r == -ENODATA) {
        r = stream_reader_finish(rd); /* "the stream ended before ..." when incomplete */
    }
    if (r < 0 && !w->error[0]) {
        (void) snprintf(w->error, sizeof(w->error), "'%.300s' is not a valid stream of group '%s': %.400s",
                        j->path, j->group_name, rd->error[0] ? rd->error : strerror(-r));
    }
    return r < 0 ? r : 0;
}

static void
check_run(MigWork *w)
{
    MigrationJob *j = w->job;
    _cleanup_close_ int fd = open(j->path, O_RDONLY | O_CLOEXEC);
    _cleanup_free_ StreamManifestDevice *devs = calloc(STREAM_MAX_DEVICES, sizeof(*devs));
    StreamManifest mf = {.devices = devs};
    char why[384] = "";

    if (fd < 0 || !devs) {
        w->r = fd < 0 ? -errno : -ENOMEM;
        (void) snprintf(w->error, sizeof(w->error), "cannot read '%.300s': %s", j->path,
                        strerror(-w->r));
        return;
    }
    w->r = restore_pass(w, fd, false, &mf);
    if (w->r >= 0 && strcmp(mf.group, j->group_name) != 0) {
        w->r = -EMEDIUMTYPE;
        (void) snprintf(w->error, sizeof(w->error), "'%.300s' holds group '%s', not '%s'", j->path,
                        mf.group, j->group_name);
        return;
    }
    if (w->r >= 0 && mig_match_manifest(j, &mf, why, sizeof(why)) < 0) {
        w->r = -EMEDIUMTYPE;
        (void) snprintf(w->error, sizeof(w->error), "'%.300s' does not fit group '%s': %.384s", j->path,
                        j->group_name, why);
    }
}

static void
feed_run(MigWork *w)
{
    _cleanup_close_ int fd = open(w->job->path, O_RDONLY | O_CLOEXEC);

    w->r = fd < 0 ? -errno : restore_pass(w, fd, true, NULL);
}

static void
on_restore_finished(MigrationJob *j, const GroupRun *run)
{
    if (run->r < 0) {
        mig_fail(j, run->r, "the devices refused the restored state: %s", run->error);
        return;
    }
    j->end_ns = clock_now_ns();
    mig_complete(j);
}

static void
feed_done(MigWork *w)
{
    MigrationJob *j = w->job;

    if (w->r < 0) {
        mig_fail(j, w->r, "%s", w->error[0] ? w->error : strerror(-w->r));
        return;
    }
    for (size_t i = 0; i < j->n_devs; i++) {
        j->devs[i].done = true;
    }
    mig_set_phase(j, PHASE_COMPLETING);
    /* RESUMING -> STOP is where drivers validate what they were given. */
    (void) mig_group_transition(j, j->stop_after ? DEVICE_STATE_STOP : DEVICE_STATE_RUNNING,
                                on_restore_finished);
}

static void
on_restore_resuming(MigrationJob *j, const GroupRun *run)
{
    if (run->r < 0) {
        mig_fail(j, run->r, "the group could not enter resuming: %s", run->error);
        return;
    }
    mig_set_phase(j, PHASE_SWITCHOVER);
    if (mig_queue(j, mig_work_new(j, NULL, feed_run, feed_done)) < 0) {
        mig_fail(j, -ENOMEM, "cannot start restoring");
    }
}

static void
check_done(MigWork *w)
{
    MigrationJob *j = w->job;

    if (w->r < 0) {
        mig_fail(j, w->r, "%s", w->error);
        return;
    }
    (void) mig_group_transition(j, DEVICE_STATE_RESUMING, on_restore_resuming);
}

/* ---- entry points ---- */

static int
file_job_new(Manager *m, MigrationRole role, const char *group, const char *path,
             MigrationJob **ret, char *err, size_t err_size)
{
    Group *g = group_find(m, group);
    int r;

    if (!g) {
        (void) snprintf(err, err_size, "no group named '%.64s'", group);
        return -ENOENT;
    }
    r = mig_check_group_idle(g, err, err_size);
    if (r < 0) {
        return r;
    }
    r = mig_job_new(m, role, g, ret);
    if (r < 0) {
        return r;
    }
    (void) snprintf((*ret)->path, sizeof((*ret)->path), "%s", path);
    (void) snprintf((*ret)->peer, sizeof((*ret)->peer), "%s", path);
    return 0;
}

int
migration_save_group(Manager *m, const char *group, const char *path, bool overwrite,
                     bool resume, migration_done_cb done, void *userdata, MigrationJob **ret,
                     char *err, size_t err_size)
{
    MigrationJob *j;
    int r;

    if (!group_find(m, group)) { /* first: the CLI falls back to a device of that name */
        (void) snprintf(err, err_size, "no group named '%.64s'", group);
        return -ENOENT;
    }
    r = save_path_check(path, overwrite, err, err_size);
    if (r >= 0) {
        r = file_job_new(m, MIGRATION_SAVE, group, path, &j, err, err_size);
    }
    if (r < 0) {
        return r;
    }
    j->overwrite = overwrite;
    j->resume_after = resume;
    j->done = done;
    j->done_userdata = userdata;
    (void) getrandom(&j->stream_id, sizeof(j->stream_id), 0);
    mig_build_manifest(j);
    mig_set_phase(j, PHASE_CONNECTING);
    (void) mig_group_transition(j, DEVICE_STATE_STOP_COPY, on_save_stop_copy);
    *ret = j;
    return 0;
}

int
migration_restore_group(Manager *m, const char *group, const char *path, bool stop,
                        migration_done_cb done, void *userdata, MigrationJob **ret, char *err,
                        size_t err_size)
{
    struct stat st;
    MigrationJob *j;
    int r;

    if (!group_find(m, group)) { /* first: the CLI falls back to a device of that name */
        (void) snprintf(err, err_size, "no group named '%.64s'", group);
        return -ENOENT;
    }
    if (stat(path, &st) < 0 || !S_ISREG(st.st_mode)) {
        r = stat(path, &st) < 0 ? -errno : -EINVAL;
        (void) snprintf(err, err_size, "cannot restore from '%s': %s", path,
                        r == -EINVAL ? "not a regular file" : strerror(-r));
        return r;
    }
    r = file_job_new(m, MIGRATION_RESTORE, group, path, &j, err, err_size);
    if (r < 0) {
        return r;
    }
    j->stop_after = stop;
    j->done = done;
    j->done_userdata = userdata;
    mig_set_phase(j, PHASE_CONNECTING);
    if (mig_queue(j, mig_work_new(j, NULL, check_run, check_done)) < 0) {
        mig_fail(j, -ENOMEM, "cannot start reading '%s'", path);
        mig_maybe_finish_failure(j);
    }
    *ret = j;
    return 0;
}
