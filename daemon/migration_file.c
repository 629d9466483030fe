/* SPDX-License-Identifier: MIT */
/*
 * migration_file — Save and Restore: a group's devices, or one device's, in one stream file
 * (docs/stream-format.md), the same records a live migration sends. A device on its own is a
 * one-device stream, moved by a transient one-device group, so both kinds take exactly the
 * same path.
 *
 * Save: the file is created first, under a name of its own next to FILE (files.h: in an
 * allowed directory, exclusively, mode 0600, no symbolic link followed; a file that cannot be
 * created refuses the save before any device moves); the group goes to STOP_COPY (P2P-safe);
 * one worker writes the header, the manifest, every device drained to its end (DEVICE_DATA...,
 * DEVICE_END) and STREAM_END, and fsyncs; the group goes to STOP, or RUNNING with resume; only
 * then does the file get its name (refusing to replace one unless allowed). On any failure,
 * a cancel or the daemon's shutdown (the writer stops within a record) the partial file is
 * removed and the devices go back to where they were: a file under the final name is always
 * complete and always the state the devices were left in.
 * Restore: the file is opened once, on the loop, before any worker runs (files.h: no link, no
 * FIFO, a regular file), and both passes read that descriptor. A worker reads the whole file
 * through a StreamReader first (CRCs, order, totals); the loop checks the manifest against
 * the group (core/compat; a device takes a one-device stream whatever the saved device's
 * name): a damaged file or another group's is refused before any device is touched. Then
 * group -> RESUMING, a second pass checks everything again, requires the very manifest the
 * first pass checked (the bytes could have been rewritten in place) and writes every
 * DEVICE_DATA payload into its device, group -> STOP (drivers validate) -> RUNNING unless
 * stop. A failure after the devices were touched resets them (and takes them back to where
 * they were when that was not RUNNING).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manager.h"
#include "migration_internal.h"
#include "savefile.h"
#include "util/cleanup.h"
#include "util/log.h"

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
save_write_run(MigWork *w)
{
    MigrationJob *j = w->job;
    int fd = j->save_file.fd;
    int r = write_prologue(j, fd);

    for (size_t i = 0; r >= 0 && i < j->n_devs && !atomic_load(&j->abort); i++) {
        r = mig_drain_device(&j->devs[i], fd, w->error, sizeof(w->error));
        /* one device at a time: a large group's save holds one buffer, not one per device */
        mig_device_buffer_free(&j->devs[i]);
    }
    if (r >= 0 && atomic_load(&j->abort)) {
        r = -ECANCELED;
    }
    if (r >= 0) {
        r = write_epilogue(j, fd);
    }
    if (r >= 0 && fsync(fd) < 0) {
        r = -errno;
    }
    if (r < 0 && !w->error[0]) {
        (void) snprintf(w->error, sizeof(w->error), "writing '%.300s' failed: %s", j->path,
                        strerror(-r));
    }
    w->r = r;
}

static void
rename_run(MigWork *w)
{
    MigrationJob *j = w->job;

    w->r = files_commit(&j->save_file, j->overwrite, w->error, sizeof(w->error));
}

static void
rename_done(MigWork *w)
{
    MigrationJob *j = w->job;

    if (w->r < 0) {
        j->confirmed = false; /* the file has no name: the save failed after all */
        mig_fail(j, w->r, "%s", w->error);
        return;
    }
    mig_complete(j);
}

static void
on_save_final(MigrationJob *j, const GroupRun *run)
{
    if (run->r < 0) {
        mig_fail(j, run->r, "the file is written, but moving on to %s failed: %s",
                 fsm_state_name(run->target), run->error);
        return;
    }
    /* The devices are where they were asked to go and the file is complete: from here a
     * cancel or a shutdown must not undo the one and leave the other (confirmed). */
    j->confirmed = true;
    if (mig_queue(j, mig_work_new(j, NULL, rename_run, rename_done)) < 0) {
        j->confirmed = false;
        mig_fail(j, -ENOMEM, "cannot name '%s'", j->path);
    }
}

/* Loop: a worker moved every device's data (into the file, or into the devices). The group
 * goes on to @target: a save's devices settle there, a restore's drivers validate what they
 * were given (RESUMING -> STOP). */
static void
data_moved(MigWork *w, DeviceState target, const char *fail_what,
           void (*done)(MigrationJob *j, const GroupRun *run))
{
    MigrationJob *j = w->job;

    if (mig_work_result(w) < 0 || mig_is_failing(j)) {
        return;
    }
    for (size_t i = 0; i < j->n_devs; i++) {
        j->devs[i].done = true;
    }
    (void) mig_set_phase(j, PHASE_COMPLETING);
    (void) mig_group_transition(j, target, fail_what, done);
}

static void
save_write_done(MigWork *w)
{
    data_moved(w, w->job->resume_after ? DEVICE_STATE_RUNNING : DEVICE_STATE_STOP,
               /* fail_what= */ NULL, on_save_final);
}

static void
on_save_stop_copy(MigrationJob *j, const GroupRun *run)
{
    (void) run; /* succeeded: a failure failed the job */
    (void) mig_set_phase(j, PHASE_SWITCHOVER);
    mig_take_irqs(j);
    if (mig_queue(j, mig_work_new(j, NULL, save_write_run, save_write_done)) < 0) {
        mig_fail(j, -ENOMEM, "cannot start writing '%s'", j->path);
    }
}

/* Checks the destination and creates the partial file before any device moves; takes the
 * save's options. */
static int
save_create_file(MigrationJob *j, const MigrationFileRequest *req, char *err, size_t err_size)
{
    int r = files_create(&j->manager->files, req->path, req->overwrite, &j->save_file, err,
                         err_size);

    if (r >= 0) {
        (void) snprintf(j->path, sizeof(j->path), "%s", j->save_file.spot.path);
        j->overwrite = req->overwrite;
        j->resume_after = req->resume;
    }
    return r;
}

/* What makes a save and a restore differ when their job starts. */
typedef struct FileJobKind {
    MigrationRole role;
    /* Takes the job's file (creates or opens it) and its options from @req; 0, or a negative
     * errno with @err (the job is then discarded with whatever was taken). */
    int (*take_file)(MigrationJob *j, const MigrationFileRequest *req, char *err,
                     size_t err_size);
    /* Sets the CONNECTING job going; failures from here on are the job's own. */
    void (*begin)(MigrationJob *j, const MigrationFileRequest *req);
} FileJobKind;

/* A save's or a restore's job: made, its file taken, CONNECTING, @done to be called at its
 * end, then begun. On failure nothing is left. */
static int
file_job_start(Manager *m, const FileJobKind *kind, const MigrationFileRequest *req,
               migration_done_cb done, void *userdata, MigrationJob **ret, char *err,
               size_t err_size)
{
    MigJobSetup setup = {.role = kind->role, .subject = req->subject, .name = req->name,
                         .force_grouped = req->force_grouped};
    MigrationJob *j;
    int r;

    r = mig_job_new(m, &setup, &j, err, err_size);
    if (r < 0) {
        return r;
    }
    r = kind->take_file(j, req, err, err_size);
    if (r < 0) {
        mig_job_discard(j);
        return r;
    }
    j->done = done;
    j->done_userdata = userdata;
    (void) mig_set_phase(j, PHASE_CONNECTING);
    kind->begin(j, req);
    *ret = j;
    return 0;
}

/* The group goes to STOP_COPY first: a save reads the stopped devices' data from there. */
static void
save_begin(MigrationJob *j, const MigrationFileRequest *req _unused_)
{
    (void) mig_group_transition(j, DEVICE_STATE_STOP_COPY, "stopping failed", on_save_stop_copy);
}

int
migration_save(Manager *m, const MigrationFileRequest *req, migration_done_cb done,
               void *userdata, MigrationJob **ret, char *err, size_t err_size)
{
    static const FileJobKind save = {MIGRATION_SAVE, save_create_file, save_begin};

    return file_job_start(m, &save, req, done, userdata, ret, err, err_size);
}

/* ---- restore ---- */

/* Writes one DEVICE_DATA payload into its device's resuming session. */
static int
feed_record(MigWork *w, const StreamRecordHeader *rh, const uint8_t *buf)
{
    MigDevice *md;
    DataSession *s;
    uint64_t at;
    int r = 0;

    /* The reader bounds the index by the file's manifest, which must be the checked one:
     * this bounds it by the job's devices themselves, whatever the file says. */
    if (rh->device >= w->job->n_devs) {
        (void) snprintf(w->error, sizeof(w->error), "'%.300s' names device %u of %zu",
                        w->job->path, rh->device, w->job->n_devs);
        return -EBADMSG;
    }
    md = &w->job->devs[rh->device];
    s = md->device->session;
    at = atomic_load(&md->stopcopy_bytes);

    for (uint32_t o = 0; r >= 0 && o < rh->length;) {
        ssize_t n = s ? s->ops->write(s, buf + o, rh->length - o) : -ENODATA;
        r = n > 0 ? 0 : (n < 0 ? (int) n : -EIO);
        if (r < 0) {
            (void) snprintf(w->error, sizeof(w->error), "device '%s' rejected the data at byte "
                            "%llu: %s (%s)", md->id, (unsigned long long) (at + o), strerror(-r),
                            strerrorname_np(-r) ?: "?");
        }
        o += n > 0 ? (uint32_t) n : 0;
    }
    if (r >= 0) {
        atomic_fetch_add(&md->stopcopy_bytes, rh->length);
    }
    return r;
}

/* A device's DEVICE_IRQS (the reader decoded it already), applied once every record is in. */
static int
note_irqs(MigWork *w, const StreamRecordHeader *rh, const uint8_t *payload)
{
    MigDevice *md;

    if (rh->device >= w->job->n_devs) {
        (void) snprintf(w->error, sizeof(w->error), "'%.300s' names device %u of %zu",
                        w->job->path, rh->device, w->job->n_devs);
        return -EBADMSG;
    }
    md = &w->job->devs[rh->device];
    md->irqs_present = stream_decode_device_irqs(payload, rh->length, &md->irqs, NULL, 0) == 0;
    return 0;
}

/* What a reader's refusal makes of the file, for the sentence. */
static const char *
stream_problem(int r)
{
    if (r == -ENODATA) {
        return "is truncated";
    }
    if (r == -ENOEXEC) {
        return "is not a vfio-migd stream file";
    }
    if (r == -EPROTONOSUPPORT) {
        return "was written in another stream format version";
    }
    return "is damaged";
}

/* The load pass must read the very MANIFEST record the check pass read and checked: the
 * file is the one opened, but its bytes may have been rewritten in place since. */
static int
note_manifest(MigWork *w, bool feed, const uint8_t *hdr, const uint8_t *payload, uint32_t len)
{
    MigrationJob *j = w->job;
    size_t size = STREAM_RECORD_HEADER_SIZE + (size_t) len;

    if (!feed) {
        free(j->checked_manifest);
        j->checked_manifest = malloc(size);
        if (!j->checked_manifest) {
            return -ENOMEM;
        }
        memcpy(j->checked_manifest, hdr, STREAM_RECORD_HEADER_SIZE);
        memcpy(j->checked_manifest + STREAM_RECORD_HEADER_SIZE, payload, len);
        j->checked_manifest_size = (uint32_t) size;
        return 0;
    }
    if (!j->checked_manifest || size != j->checked_manifest_size ||
        memcmp(j->checked_manifest, hdr, STREAM_RECORD_HEADER_SIZE) != 0 ||
        memcmp(j->checked_manifest + STREAM_RECORD_HEADER_SIZE, payload, len) != 0) {
        (void) snprintf(w->error, sizeof(w->error), "'%.300s' changed while it was being "
                        "restored: its manifest is no longer the one that was checked; restore "
                        "a file that nothing writes to", j->path);
        return -EBADMSG;
    }
    return 0;
}

/* Whether the file's bytes changed since it was opened: its size or its modification time.
 * (Not its change time: renaming another file over the path moves that, and the file read
 * is still the one opened. A writer who sets the modification time back still has to keep
 * the manifest byte for byte: note_manifest().) */
static bool
file_changed(const MigrationJob *j)
{
    const struct stat *a = &j->file_stat;
    struct stat b;

    return fstat(j->file_fd, &b) < 0 || a->st_size != b.st_size ||
           a->st_mtim.tv_sec != b.st_mtim.tv_sec || a->st_mtim.tv_nsec != b.st_mtim.tv_nsec;
}

typedef struct RestorePass {
    MigWork *w;
    bool feed;
} RestorePass;

/* What a pass does with each record the reader accepted. */
static int
on_record(void *userdata, const uint8_t *hdr, const StreamRecordHeader *rh,
          const uint8_t *payload)
{
    const RestorePass *pass = userdata;
    MigWork *w = pass->w;
    bool feed = pass->feed;

    if (atomic_load(&w->job->abort)) {
        (void) snprintf(w->error, sizeof(w->error), "reading '%.300s' stopped", w->job->path);
        return -ECANCELED;
    }
    if (rh->type == STREAM_RECORD_MANIFEST) {
        return note_manifest(w, feed, hdr, payload, rh->length);
    }
    if (feed && rh->type == STREAM_RECORD_DEVICE_DATA) {
        return feed_record(w, rh, payload);
    }
    if (feed && rh->type == STREAM_RECORD_DEVICE_IRQS) {
        return note_irqs(w, rh, payload);
    }
    return 0;
}

/* One pass over the job's file, every record checked; the check pass keeps the manifest,
 * the load pass (@feed) compares it and writes DEVICE_DATA payloads into the devices. A
 * cancel or a shutdown stops either pass between two records. */
static int
restore_pass(MigWork *w, bool feed)
{
    MigrationJob *j = w->job;
    _cleanup_free_ StreamReader *rd = malloc(sizeof(*rd));
    RestorePass pass = {w, feed};
    int r;

    if (!rd) {
        return -ENOMEM;
    }
    r = savefile_read(j->file_fd, rd, feed ? NULL : &j->manifest, on_record, &pass);
    if (file_changed(j)) {
        /* Whatever the pass made of it, the file is not the one opened: say that. */
        r = -EBADMSG;
        (void) snprintf(w->error, sizeof(w->error), "'%.300s' changed while it was being "
                        "restored; restore a file that nothing writes to", j->path);
    }
    if (r < 0 && !w->error[0]) {
        (void) snprintf(w->error, sizeof(w->error), "'%.300s' %s: %.400s", j->path,
                        stream_problem(r), rd->error[0] ? rd->error : strerror(-r));
    }
    return r < 0 ? r : 0;
}

/* The file's first bytes: a file in the retired single-device format gets its own answer. */
static int
check_not_retired(MigWork *w, int fd)
{
    uint8_t head[sizeof(STREAM_RETIRED_SAVE_MAGIC) - 1];
    ssize_t n = pread(fd, head, sizeof(head), 0);

    if (n <= 0 || !stream_is_retired_save(head, (size_t) n)) {
        return 0;
    }
    (void) snprintf(w->error, sizeof(w->error), "'%.300s' was written by an older vfio-migd in "
                    "the retired single-device format; restore it with the vfio-migd that "
                    "wrote it, save it again with this one, and restore that file",
                    w->job->path);
    return -EPROTONOSUPPORT;
}

/* Worker: the whole file read and checked; the manifest lands in j->manifest, which nothing
 * else touches while a restore checks its file. */
static void
check_run(MigWork *w)
{
    w->r = check_not_retired(w, w->job->file_fd);
    if (w->r >= 0) {
        w->r = restore_pass(w, /* feed= */ false);
    }
}

static void
feed_run(MigWork *w)
{
    w->r = restore_pass(w, /* feed= */ true);
}

static void
on_restore_finished(MigrationJob *j, const GroupRun *run)
{
    (void) run; /* succeeded: a failure failed the job */
    mig_complete(j);
}

static void
feed_done(MigWork *w)
{
    /* The interrupts are the devices' before they run, as on a live migration's destination. */
    if (w->r == 0 && !mig_is_failing(w->job)) {
        w->r = mig_restore_irqs(w->job, w->error, sizeof(w->error));
    }
    data_moved(w, w->job->stop_after ? DEVICE_STATE_STOP : DEVICE_STATE_RUNNING,
               "the state was refused", on_restore_finished);
}

static void
on_restore_resuming(MigrationJob *j, const GroupRun *run)
{
    (void) run; /* succeeded: a failure failed the job */
    (void) mig_set_phase(j, PHASE_SWITCHOVER);
    if (mig_queue(j, mig_work_new(j, NULL, feed_run, feed_done)) < 0) {
        mig_fail(j, -ENOMEM, "cannot start restoring");
    }
}

/* Loop: the file's manifest against the job's devices, before any of them moves. */
static int
check_manifest(MigrationJob *j, char *err, size_t err_size)
{
    char why[768] = "";
    int r;

    if (j->subject == MIGRATION_SUBJECT_GROUP && strcmp(j->manifest.group, j->group_name) != 0) {
        (void) snprintf(err, err_size, "'%.300s' holds group '%s', not '%s'", j->path,
                        j->manifest.group, j->group_name);
        return -EMEDIUMTYPE;
    }
    r = mig_match_manifest(j, &j->manifest, why, sizeof(why));
    if (r < 0) {
        (void) snprintf(err, err_size, "'%.300s' does not fit %s '%s': %s", j->path,
                        j->subject == MIGRATION_SUBJECT_DEVICE ? "device" : "group",
                        j->group_name, why[0] ? why : strerror(-r));
    }
    return r;
}

static void
check_done(MigWork *w)
{
    MigrationJob *j = w->job;
    char err[1024] = "";
    int r;

    if (mig_work_result(w) < 0 || mig_is_failing(j)) {
        return;
    }
    r = check_manifest(j, err, sizeof(err));
    if (r < 0) {
        mig_fail(j, r, "%s", err);
        return;
    }
    (void) mig_group_transition(j, DEVICE_STATE_RESUMING, "entering resuming failed",
                                on_restore_resuming);
}

/* The one open, here on the loop and before any worker: a worker never opens a path. */
static int
restore_open_file(MigrationJob *j, const MigrationFileRequest *req, char *err, size_t err_size)
{
    int r;

    r = files_open_read(&j->manager->files, req->path, &j->file_fd, err, err_size);
    if (r >= 0 && fstat(j->file_fd, &j->file_stat) < 0) {
        r = -errno;
        (void) snprintf(err, err_size, "cannot read '%s': %s", req->path, strerror(-r));
    }
    if (r >= 0) {
        (void) files_canonical(req->path, j->path, sizeof(j->path));
        j->stop_after = req->stop;
    }
    return r;
}

/* The file is checked first, on a worker, before any device moves. */
static void
restore_begin(MigrationJob *j, const MigrationFileRequest *req)
{
    if (mig_queue(j, mig_work_new(j, NULL, check_run, check_done)) < 0) {
        mig_fail(j, -ENOMEM, "cannot start reading '%s'", req->path);
        mig_maybe_finish_failure(j);
    }
}

int
migration_restore(Manager *m, const MigrationFileRequest *req, migration_done_cb done,
                  void *userdata, MigrationJob **ret, char *err, size_t err_size)
{
    static const FileJobKind restore = {MIGRATION_RESTORE, restore_open_file, restore_begin};

    return file_job_start(m, &restore, req, done, userdata, ret, err, err_size);
}
