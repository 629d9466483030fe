/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * migration — live migration of a group between two daemons, and save/restore of a group or
 * of one device to and from a stream file. A MigrationJob is owned by the manager and driven
 * from the loop; everything that blocks (sockets, data sessions, files) runs on workers,
 * which report progress through atomics and finish with a callback on the loop. See
 * docs/migration.md for the protocol and the phases, and the comment of each flow file:
 *   migration_source.c  StartMigration: connect, manifest, pre-copy, switchover, commit
 *   migration_dest.c    PrepareIncoming: listen, token, manifest check, load, validate
 *   migration_file.c    Save / Restore (a group, or one device as a one-device stream)
 *   migration_data.c    the data pumps (session <-> records <-> socket or file)
 *   migration_watch.c   WatchEvents: which events go out, and when
 *   migration.c         jobs, the phase table, progress, failure and rollback, the registry
 *
 * Never lose the VM, never run it twice: any failure before the source's commit takes the
 * source group back to RUNNING (a P2P-safe group transition) and resets the destination's
 * devices; the destination resumes only once the source has committed (core/handover.h); a
 * side that loses its peer between its commit point and the outcome holds its devices as they
 * are (PHASE_IN_DOUBT) until migration_resolve(); every wait has a timeout.
 *
 * Other modules see a job only through this header: its id, and a MigrationSnapshot, a plain
 * copy of what the API shows (the job's own struct is in migration_internal.h).
 *
 * Threads: every function here is loop-thread only. Errors: negative errno plus a sentence.
 */

#include <stdbool.h>
#include <stddef.h>

#include "tls.h" /* TlsMode */
#include <stdint.h>

#include "core/compat.h" /* CompatReport */
#include "device.h" /* ArcRecord, DeviceState */
#include "forward.h"

typedef struct MigrationJob MigrationJob;

/* Mirrors vfio_migd.v1.MigrationRole / MigrationSubject / MigrationPhase (migrations.proto),
 * same numbers. */
typedef enum MigrationRole {
    MIGRATION_SOURCE = 1,
    MIGRATION_DESTINATION = 2,
    MIGRATION_SAVE = 3,
    MIGRATION_RESTORE = 4,
    _MIGRATION_ROLE_MAX,
} MigrationRole;

typedef enum MigrationSubject {
    MIGRATION_SUBJECT_ANY = 0,    /* requests only: a group or a device, whichever has the name */
    MIGRATION_SUBJECT_GROUP = 1,
    MIGRATION_SUBJECT_DEVICE = 2, /* a save or restore of one device (a one-device stream) */
    _MIGRATION_SUBJECT_MAX,
} MigrationSubject;

typedef enum MigrationPhase {
    PHASE_NEW = 0,                /* being set up; never seen through the API */
    PHASE_WAITING = 1,
    PHASE_CONNECTING = 2,
    PHASE_PRECOPY = 3,
    PHASE_READY = 4,
    PHASE_SWITCHOVER = 5,
    PHASE_COMPLETING = 6,
    PHASE_COMPLETED = 7,
    PHASE_ROLLING_BACK = 8,
    PHASE_FAILED = 9,
    PHASE_CANCELLED = 10,
    PHASE_IN_DOUBT = 11,          /* lost the peer after the commit point: see migration_resolve */
    _PHASE_MAX,
} MigrationPhase;

#define MIGRATION_ID_MAX 16        /* "m4294967295" and its NUL */
#define MIGRATION_ADDRESS_MAX 128  /* a listen or peer address and its NUL (transport.h) */
#define MIGRATION_TOKEN_MAX 65     /* the one-time token: 64 hex characters and a NUL */

typedef struct MigrationOptions {
    bool precopy;             /* pre-copy when every device supports it */
    bool manual_switchover;
    uint32_t max_precopy_ms;
    uint32_t downtime_target_ms;
    uint64_t bandwidth_limit; /* pre-copy: bytes/s over all devices; 0 unlimited */
    uint64_t stopcopy_bandwidth_limit; /* stop-copy: bytes/s over all devices; 0 unlimited */
    uint32_t timeout_ms;
    uint32_t channels;        /* data channels per device; 0: automatic (core/spread.h) */
    /* --tls: psk, the default, TLS 1.3 keyed by the token (tls.h) on every socket; cert, TLS
     * 1.3 with the daemons' certificates ([migration] tls_cert, tls_key, tls_ca) and the token
     * proved in the HELLO; off, everything in clear, the token too (a trusted link). */
    TlsMode tls;
} MigrationOptions;

/* A new cap for a running source migration: NULL leaves that phase's cap as it is. */
typedef struct MigrationRates {
    const uint64_t *precopy;  /* bytes/s over all devices; 0 unlimited */
    const uint64_t *stopcopy;
} MigrationRates;

/* The built-in defaults of a migration's policy (migrations.proto); the daemon's configuration
 * ([migration] in vfio-migd.conf, daemon/conf.c) may change them for the options a request
 * leaves at 0. Plain numbers: conf.c spells them into its table. */
#define MIGRATION_DEFAULT_MAX_PRECOPY_MS 30000
#define MIGRATION_DEFAULT_DOWNTIME_TARGET_MS 300
#define MIGRATION_DEFAULT_TIMEOUT_MS 30000
/* A new connection on a destination's data port must have sent its whole HELLO or
 * DATA_HELLO within this (the default of [migration] handshake_timeout_ms): one deadline from
 * accept(), never restarted by a byte. */
#define MIGRATION_HANDSHAKE_MS 10000
/* 30 s pre-copy, 300 ms downtime target, 30 s timeouts, pre-copy on, no bandwidth limit. */
void migration_options_defaults(MigrationOptions *o);

/* What PrepareIncoming offers a source on another host (migrations.proto, peer_addresses). */
#define MIGRATION_REACHABLE_MAX 16
/* The local address of this host's route to @peer (a numeric host, no port), for
 * migration_incoming_addresses(). -EINVAL with @err: not an address, or no route. */
int migration_route_source(const char *peer, char *ret_host, size_t size, char *err,
                           size_t err_size);
/* The addresses a source can connect to for the incoming migration @j: its bound address
 * unless that is a wildcard; then "@route_host:PORT" when @route_host is not empty, else each
 * interface address. Never fails: at worst the bound address alone. */
void migration_incoming_addresses(const MigrationJob *j, const char *route_host,
                                  char (*ret)[MIGRATION_ADDRESS_MAX], size_t max, size_t *ret_n);

int migration_prepare_incoming(Manager *m, const char *group, const char *listen,
                               bool auto_resume, uint32_t timeout_ms, TlsMode tls,
                               MigrationJob **ret,
                               char *bound, size_t bound_size, char *token, size_t token_size,
                               char *err, size_t err_size);
/* Called on the loop when a dry run ends: @r 0 with @report (no mismatch: compatible), or a
 * negative errno with @error (the destination refused the question itself: a wrong token,
 * unreachable, another protocol version). */
typedef void (*migration_check_cb)(int r, const CompatReport *report, const char *error,
                                   void *userdata);
/* A dry run of migrating @group to @address with @token (migration_check.c): asks the
 * destination whether it would accept the group's devices, without touching a device on
 * either side or spending the token. Returns 0 and calls @cb once, later; or a negative errno
 * with @err (no such group, a bad address or token) and never calls @cb. @timeout_ms 0: the
 * [migration] timeout. @tls: ask as a migration with that --tls would (the destination must
 * be prepared the same way). Loop thread. */
int migration_check(Manager *m, const char *group, const char *address, const char *token,
                    uint32_t timeout_ms, TlsMode tls, migration_check_cb cb, void *userdata,
                    char *err, size_t err_size);
int migration_start(Manager *m, const char *group, const char *address, const char *token,
                    const MigrationOptions *opts, MigrationJob **ret, char *err,
                    size_t err_size);
/* -ESTALE: not a source migration waiting in READY (or PRECOPY). */
int migration_switchover(MigrationJob *j, char *err, size_t err_size);
/* Changes the bandwidth caps of a source migration that is still moving data, from the next
 * record on. -ESTALE: it ended, or is past its stop-copy; -EINVAL: not a live migration's
 * source (with @err). */
int migration_set_rates(MigrationJob *j, const MigrationRates *rates, char *err,
                        size_t err_size);
/* -ESTALE when it already ended, or is past its commit point (a live migration: the source
 * sent COMMIT, the destination PREPARED). The cancel completes asynchronously (phase
 * CANCELLED). */
int migration_cancel(MigrationJob *j, char *err, size_t err_size);
/* Decides a live migration that is in doubt (PHASE_IN_DOUBT): @resume true makes this side run
 * the VM (a source rolls back to RUNNING and ends failed; a destination resumes with its
 * auto_resume and ends completed), false makes it give the VM up (a source ends completed,
 * stopped; a destination resets its devices and ends failed). The orchestrator decides after
 * asking the other side (docs/migration.md). -ESTALE: not in doubt; -EBUSY: the job is still
 * stopping its workers (try again). Completes asynchronously. */
int migration_resolve(MigrationJob *j, bool resume, char *err, size_t err_size);

/* What a Save or a Restore asks for. */
typedef struct MigrationFileRequest {
    const char *name;         /* a group or a device */
    MigrationSubject subject; /* which one; ANY: whichever exists (both: refused, -EINVAL) */
    const char *path;         /* absolute, on this host */
    bool overwrite;           /* save: replace an existing file */
    bool resume;              /* save: back to RUNNING afterwards (else STOP) */
    bool stop;                /* restore: stay in STOP (else RUNNING) */
    bool force_grouped;       /* act on one device of a group alone (device_check_alone) */
} MigrationFileRequest;

/* Save / Restore: @done runs once on the loop when the job has ended (either way). Refusals
 * before a job exists return a negative errno with @err and never call @done: -ENOENT no such
 * group or device (or file, restore), -EINVAL both exist with subject ANY, -EBUSY,
 * -EOPNOTSUPP not migratable, -EEXIST the file exists (save without overwrite). */
typedef void (*migration_done_cb)(MigrationJob *j, void *userdata);
int migration_save(Manager *m, const MigrationFileRequest *req, migration_done_cb done,
                   void *userdata, MigrationJob **ret, char *err, size_t err_size);
int migration_restore(Manager *m, const MigrationFileRequest *req, migration_done_cb done,
                      void *userdata, MigrationJob **ret, char *err, size_t err_size);

/* Lists a job the previous daemon did not finish (restore_state.c, after a restart) as failed
 * with @error, under its old @id, so that `jobs` and `job ID` answer for it; no device is
 * touched. New ids continue after it. -EINVAL: a bad or taken id, or role; -ENOMEM. */
int migration_record_failed(Manager *m, const char *id, MigrationRole role,
                            MigrationSubject subject, const char *name, const char *error);
/* A live migration the previous daemon journaled in doubt (restore_state.c, after a restart):
 * what the journal kept of it. */
typedef struct MigrationInDoubt {
    const char *id;           /* its old id */
    MigrationRole role;       /* SOURCE or DESTINATION */
    const char *group;
    const char *peer;         /* the other daemon's address, or "" / NULL */
    bool auto_resume;         /* destination: a --resume also runs the group */
    uint64_t started_unix_ms; /* 0: unknown (now) */
} MigrationInDoubt;
/* Brings the job back as a live job in PHASE_IN_DOUBT under its old id, holding its group's
 * devices as they are (nothing moves): no control connection, no worker, no timer, so nothing
 * happens to it until migration_resolve() (the same rules as before the restart: a cancel is
 * refused) or the next restart, which keeps it again. -EINVAL: not a live role, a bad or taken
 * id; -ENOENT: no such group; -EBUSY, -EOPNOTSUPP: the group cannot be held (mig_job_new's
 * checks); -ENOMEM. @err says which. New ids continue after it. */
int migration_readopt_in_doubt(Manager *m, const MigrationInDoubt *w, char *err,
                               size_t err_size);
MigrationJob *migration_find(Manager *m, const char *id);
/* The API's name of @p ("precopy", ...); "unknown" for a number that is no phase. */
const char *migration_phase_name(MigrationPhase p);
const char *migration_id(const MigrationJob *j);
/* Frees every job; cancels active ones first is the caller's business (daemon shutdown). */
void migration_free_all(Manager *m);
/* The kernel wants device @d back (REQ, manager_release.c): the job that holds it fails with
 * -ENODEV and @why, by its rules (a source or a save goes back to RUNNING, a destination or a
 * restore resets), and lets the device go when its rollback ends. 0: a job holds it and
 * fails (or was failing already); -EBUSY: the job may not fail now (in doubt past its commit
 * point: the orchestrator resolves it; or completing); -ENOENT: no job holds @d. */
int migration_release_device(Manager *m, const Device *d, const char *why);
/* Aborts every active job (daemon shutdown): each rolls back as on a failure. */
void migration_abort_all(Manager *m);

/* ---- snapshots: what the API shows of a job, as plain values ---- */

/* One device's part. */
typedef struct MigrationDeviceSnapshot {
    const char *id;
    DeviceState state;          /* as last observed (at the end, for a job that ended) */
    uint64_t bytes;             /* precopy_bytes + stopcopy_bytes */
    uint64_t precopy_bytes;
    uint64_t stopcopy_bytes;
    uint64_t initial_bytes;     /* the last PRECOPY_INFO */
    uint64_t dirty_bytes;
    double rate;                /* bytes/s, smoothed */
    uint64_t estimate_remaining;
    bool done;                  /* its stream ended (DEVICE_END) */
    const char *error;
    const ArcRecord *arcs;      /* the kernel arcs the job took on it, start_us from the job's
                                 * start */
    unsigned n_arcs;
} MigrationDeviceSnapshot;

typedef struct MigrationSnapshot {
    const char *id;
    MigrationRole role;
    MigrationSubject subject;   /* GROUP, or DEVICE for a one-device save or restore */
    const char *name;           /* the group, or the device of a DEVICE job */
    MigrationPhase phase;
    const char *phase_name;     /* "waiting", ... (the API's names) */
    const char *state;          /* "active", "completed", "failed" or "cancelled" */
    bool over;                  /* completed, failed or cancelled: nothing more will happen */
    const char *peer;           /* the other daemon's address, or the file */
    MigrationOptions options;
    bool auto_resume;
    uint64_t bytes, estimate_remaining;
    double rate;
    uint64_t elapsed_us, precopy_us, downtime_us;
    uint64_t started_unix_ms;
    int r;                      /* 0, or the failure's negative errno */
    bool touched;               /* some device was moved: a failure is no mere refusal */
    bool held;                  /* a live migration past its commit point (PREPARED or COMMIT
                                 * sent, or in doubt): its devices may only move by the
                                 * protocol or a resolve, never by a restart's recovery */
    const char *error;          /* why it failed, naming the device, arc, channel or file */
    const char *switchover_reason; /* source: how its pre-copy ended, or "" */
    bool precopy_converged;     /* source: ... because the estimate met the downtime target */
    size_t n_devices;
    MigrationDeviceSnapshot *devices;
} MigrationSnapshot;

/* Fills @ret with @j as it is now; the strings and arcs are borrowed from the job and stay
 * valid until the loop goes on. 0 or -ENOMEM; release with migration_snapshot_done(). */
int migration_snapshot(const MigrationJob *j, MigrationSnapshot *ret);
void migration_snapshot_done(MigrationSnapshot *s);
/* Every job, newest first: *ret_n snapshots in *ret (NULL when there is none). 0 or -ENOMEM;
 * release with migration_snapshots_free(). */
int migration_snapshot_all(Manager *m, MigrationSnapshot **ret, size_t *ret_n);
void migration_snapshots_free(MigrationSnapshot *s, size_t n);
