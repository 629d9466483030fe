/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * migration_internal — the MigrationJob and what the migration_*.c files share. Not for
 * other modules: they use migration.h.
 *
 * Ownership: the job owns its sockets, its listening socket and its timer; the devices stay
 * the manager's, locked with the job as key for the whole job, so no other request can move
 * them. Workers only touch their own MigDevice (and the atomics), the job's immutable fields
 * (ids, keys, snapshot manifest) and the sockets; everything else is the loop's.
 */

#include <pthread.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <uv.h>

#include "core/handover.h"
#include "core/spread.h"
#include "core/stream.h"
#include "device.h"
#include "files.h"
#include "group.h"
#include "migration.h"
#include "tls.h"
#include "transport.h"
#include "util/accept.h"
#include "util/clock.h"
#include "util/ratelimit.h"

/* Payload per DEVICE_DATA record, and read size. A record is read from the device, checked
 * and sent in one go, so its buffer and the socket's copy of it should stay in a core's L2:
 * bench-migrate moved 512 KiB records at 0.97 of the pump, 1 MiB ones at 0.93, 256 KiB ones
 * (more records, more wake-ups) at 0.85 (medians of 5). */
#define MIGRATION_DATA_CHUNK (512u << 10)
#define MIGRATION_TICK_MS 100            /* progress, convergence and timeout checks */
#define MIGRATION_KEEP_FINISHED 64       /* finished jobs kept for GetMigration/ListMigrations */
/* Connections that have not yet said who they are, per migration and per peer address
 * (host, any port): one more is closed at once. The source's host gets one more per device
 * once its HELLO was accepted (its data channels arrive together). */
#define MIGRATION_PREAUTH_MAX 16
#define MIGRATION_PREAUTH_PER_PEER 4
/* Peer addresses whose refusals are logged, each at most once per interval (the next line
 * counts those left out); a peer beyond this many takes the slot of the quietest. */
#define MIGRATION_REFUSAL_PEERS 16
/* The source PINGs every second; this much silence means the source or the link is gone. */
#define MIGRATION_PEER_SILENCE_MS 15000
/* How long a closed data channel waits for the peer's FAIL reason on the control channel. */
#define MIGRATION_PEER_REASON_NS (500 * 1000000ull)
/* The arcs a job keeps per device (MigrationDeviceSnapshot.arcs): a save or restore takes
 * up to 8, a live migration up to 12; rollbacks and resets add a few. Any beyond are not
 * kept. */
#define MIGRATION_MAX_ARCS 64

/* A connection on a destination's data port that has not yet said who it is: read on the
 * loop, never by a worker, without blocking, until its first message is whole or its
 * deadline passes. Freed in its poll handle's close callback. */
typedef struct MigPreauth {
    uv_poll_t poll;
    MigrationJob *job;
    struct MigPreauth *next;
    int fd;
    char peer[TRANSPORT_ADDRESS_MAX];  /* "host:port" */
    char host[TRANSPORT_ADDRESS_MAX];  /* "host": what the caps and the log limits count */
    uint64_t deadline_ns;
    uint8_t hdr[8];
    uint32_t hdr_got;
    uint8_t *msg;                      /* grown as bytes arrive, up to the declared size */
    uint32_t size, got, cap;
    bool probed;                       /* its first byte said TLS or clear */
    TlsSession *tls;                   /* TLS: the session, handshaking until tls_ready */
    bool tls_ready;
} MigPreauth;

/* The per-peer limit of refusal log lines. */
typedef struct MigRefusalPeer {
    char host[TRANSPORT_ADDRESS_MAX];
    RateLimit rl;
} MigRefusalPeer;

/* What the data port did, for the debug log and tests. */
typedef struct MigAcceptStats {
    unsigned long accept_calls;
    unsigned long accept_failures; /* accept() out of fds (or worse): each pauses accepting */
    unsigned long pauses;
    unsigned long refused;         /* closed before authentication, for any reason */
} MigAcceptStats;

typedef struct MigDevice {
    MigrationJob *job;
    Device *device;                /* NULL once the job has ended: the device may go away */
    char id[STREAM_MAX_NAME + 1];  /* the device's id, kept for the job's record */
    DeviceState start_state;       /* where the job found it */
    DeviceState end_state;         /* where the job left it (once device is NULL) */
    uint32_t index;
    int fd;                        /* the data channel (live migration), or -EBADF */
    /* progress: written by this device's worker, read by the loop */
    _Atomic uint64_t precopy_bytes;
    _Atomic uint64_t stopcopy_bytes;
    _Atomic uint64_t records;
    _Atomic uint64_t initial_bytes;
    _Atomic uint64_t dirty_bytes;
    _Atomic bool initial_sent;     /* pre-copy: its last PRECOPY_INFO had no initial data left */
    uint64_t sequence;             /* next DEVICE_DATA sequence (the worker's) */
    uint64_t pace_ns;              /* the worker's: when its next record may go (caps) */
    uint8_t *buf;                  /* the worker's: MIGRATION_DATA_CHUNK for pump and drain,
                                    * made before the switchover (mig_device_buffer) */
    uint64_t data_size;            /* estimate at the start */
    uint64_t rate_prev_bytes;      /* loop: for the rate */
    double rate;
    bool done;                     /* DEVICE_END sent or received */
    bool channel_bound;            /* destination: a data channel claimed this device */
    uint32_t n_channels;           /* its data channels: 1, or spread->n */
    struct MigSpread *spread;      /* when spread over several channels, else NULL */
    /* Its interrupt state (DEVICE_IRQS): the source's, taken on the loop once the device is
     * in STOP_COPY and before any drain runs; the destination's, written by the worker that
     * received it and read on the loop once every worker has returned. */
    bool irqs_present;
    IrqState irqs;
    int error;
    char message[256];
    ArcRecord arcs[MIGRATION_MAX_ARCS]; /* loop: every arc the job took on the device */
    unsigned n_arcs;
} MigDevice;

/* One device's stream spread over several data channels (core/spread.h): channel 0 is the
 * device's own fd and buffer (MigDevice.fd, .buf), channels 1.. are here. The source's drains
 * take turns reading the device under @lock; the destination's receivers deliver to the
 * device in sequence order through @window, under @lock, waiting on @cond. */
typedef struct MigSpread {
    uint32_t n;                            /* channels, 2..SPREAD_MAX_CHANNELS */
    int fds[SPREAD_MAX_CHANNELS];          /* [0] unused: MigDevice.fd */
    uint8_t *bufs[SPREAD_MAX_CHANNELS];    /* source: [0] unused: MigDevice.buf */
    uint64_t pace_ns[SPREAD_MAX_CHANNELS]; /* source: each channel's share of a cap */
    bool bound[SPREAD_MAX_CHANNELS];       /* destination: a DATA_HELLO claimed the channel */
    unsigned finished;                     /* loop: channels whose worker returned */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool read_end;                         /* source: the device's data ended (or failed) */
    uint64_t read_bytes;                   /* source: stop-copy bytes given a sequence */
    SpreadWindow window;                   /* destination */
    StreamReader reader;                   /* destination: the device's order and totals */
} MigSpread;

/* A unit of blocking work for one device or for the job, run by uv_queue_work. */
typedef struct MigWork {
    uv_work_t req;
    MigrationJob *job;
    MigDevice *dev;                /* NULL for job-wide work */
    uint32_t channel;              /* which of the device's data channels */
    int fd;                        /* the connection it works on, when relevant */
    void (*run)(struct MigWork *w);
    void (*done)(struct MigWork *w);
    int r;
    uint32_t msg_type;             /* what a handshake/control worker received */
    uint8_t *msg;                  /* its payload (heap, freed with the work) */
    uint32_t msg_size;
    char error[1024];
} MigWork;

struct MigrationJob {
    Manager *manager;
    char id[MIGRATION_ID_MAX];
    MigrationRole role;
    MigrationSubject subject;      /* GROUP, or DEVICE: group is then a transient one */
    Group *group;                  /* NULL once the job has ended */
    bool owns_group;               /* the transient group of a DEVICE job: freed with it */
    char group_name[STREAM_MAX_NAME + 1]; /* the group's name, or the device's */
    MigrationPhase phase;
    MigrationOptions opts;         /* the loop's; the caps in effect are the two below */
    _Atomic uint64_t precopy_cap;  /* bytes/s over all devices, 0 unlimited: read by workers */
    _Atomic uint64_t stopcopy_cap;
    bool auto_resume;              /* destination */
    char peer[TRANSPORT_ADDRESS_MAX]; /* address or file path */
    char token[TRANSPORT_TOKEN_HEX + 1];
    char channel_key[TRANSPORT_TOKEN_HEX + 1];
    char hello_proof[TRANSPORT_TOKEN_HEX + 1]; /* what a HELLO over TLS carries (tls.h) */
    TlsSecrets tls_secrets;        /* destination: the PSKs its handshakes take (token, key) */
    bool token_used;
    uint64_t stream_id;
    uint32_t peer_protocol;        /* source: the destination's control protocol (ACCEPT) */
    bool peer_same_host;           /* source: the destination runs on this host (its CPUs) */
    MigDevice *devs;
    size_t n_devs;
    StreamManifest manifest;       /* ours: what we send, or what the source must match */
    int ctl_fd;
    pthread_mutex_t ctl_lock;      /* one writer at a time on the control socket */
    int listen_fd;
    FileSocket listen_socket;      /* a unix listening socket's file: unlinked only if ours */
    uv_poll_t listen_poll;
    bool listen_active;
    uv_timer_t accept_pause;       /* accept() ran out of fds: polling stops for backoff_ms */
    bool accept_pause_active;
    AcceptPause accept_pause_len;  /* how long the next pause is */
    RateLimit accept_fail_rl;      /* the warnings of those pauses */
    MigPreauth *preauth;           /* connections not yet authenticated (loop) */
    unsigned n_preauth;
    uint32_t handshake_ms;         /* their total deadline */
    MigRefusalPeer refusal_peers[MIGRATION_REFUSAL_PEERS];
    MigAcceptStats accept_stats;
    uv_timer_t tick;
    bool tick_initialized;
    bool tick_active;
    unsigned handles_open;
    atomic_bool stop_pumps;        /* pre-copy pumps return when set */
    atomic_bool abort;             /* every worker returns as soon as it can */
    atomic_bool control_stop;
    unsigned workers;              /* MigWork in flight */
    unsigned pumps;                /* pre-copy pumps in flight */
    unsigned drains;               /* stop-copy drains / destination channels in flight */
    bool group_busy;               /* a group transition of ours is running */
    bool stream_end_received;      /* destination */
    StreamDeviceTotals *end_totals;
    bool confirmed;                /* save: the file is complete and being named */
    HandoverState handover;        /* live migration: the commit protocol (core/handover.h) */
    uint64_t commit_ns;            /* source: when it committed (the wait for DONE) */
    uint64_t peer_gone_ns;         /* a data channel saw the peer go away (mig_fail_io) */
    int peer_gone_r;
    char peer_gone_error[1024];
    bool cancel_requested;
    bool rollback_started;
    bool touched;                  /* a group transition of the job ran: devices may have moved */
    bool reset_devices;            /* the rollback reset the devices */
    unsigned resets_pending;
    uint64_t start_ns, precopy_start_ns, switchover_ns, end_ns;
    /* source: the switchover's steps, for the downtime's breakdown in the log: the group in
     * STOP_COPY, and every drain reported (STREAM_END sent); commit_ns and end_ns follow */
    uint64_t stopcopy_ns, data_end_ns;
    char switchover_reason[256];   /* source: how pre-copy ended (core/switchover), or "" */
    bool precopy_converged;        /* source: ... because the estimate met the target */
    uint64_t started_unix_ms;
    uint64_t rate_prev_ns;
    int r;
    char error[1536];
    char path[4096];               /* save/restore file, canonical */
    FileNew save_file;             /* save: the partial file, created before any device moves */
    int file_fd;                   /* restore: the file, opened once before any worker runs */
    struct stat file_stat;         /* restore: the file as opened: a change fails the restore */
    uint8_t *checked_manifest;     /* restore: the MANIFEST record the check pass read ... */
    uint32_t checked_manifest_size; /* ... (header and payload): the load pass must read it */
    bool overwrite, resume_after, stop_after;
    migration_done_cb done;        /* save/restore callers */
    void *done_userdata;
};

/* ---- migration_source.c ---- */

/* Starts the oldest source migration that waits for a plugin's firmware limit (phase
 * "waiting", plugin.h max_migrating_per_parent) and may start now; called when a source
 * migration ends. */
void mig_source_start_waiting(Manager *m);

/* ---- migration.c ---- */

/* What the one job constructor needs to know. */
typedef struct MigJobSetup {
    MigrationRole role;
    MigrationSubject subject;  /* GROUP for live migrations; any for save/restore */
    const char *name;          /* the group's or the device's */
    const char *peer;          /* a source's destination; NULL: filled in by the flow (a file
                                * job's file is j->path, set once the file is open) */
    const MigrationOptions *opts; /* NULL: the defaults */
    bool force_grouped;        /* a device of a group may be saved/restored alone */
} MigJobSetup;

/* Finds the group (or the device, in a transient group), checks that it may start a job
 * (idle, not in a migration, every device migratable; a source's devices RUNNING), creates
 * and registers the job in PHASE_NEW and locks its devices. Source and save jobs get their
 * stream id and manifest. The flow then sets its first phase. Errors: -ENOENT, -EINVAL (a
 * name that is both a group and a device with subject ANY), -EBUSY, -EOPNOTSUPP, -ESTALE,
 * -ENOMEM, with a sentence in @err. */
int mig_job_new(Manager *m, const MigJobSetup *s, MigrationJob **ret, char *err,
                size_t err_size);
/* Forgets a job whose flow could not begin (nothing of it ran): unlocks and frees it. */
void mig_job_discard(MigrationJob *j);
const char *mig_phase_name(MigrationPhase p);
/* The only writer of j->phase: checks the phase table, logs, tells the watchers. A move the
 * table forbids is a bug: it is refused, logged loudly and fails the job (-ESTALE). */
int mig_set_phase(MigrationJob *j, MigrationPhase p);
/* Queues @w (w->run on a worker, then w->done on the loop) and counts it. */
int mig_queue(MigrationJob *j, MigWork *w);
MigWork *mig_work_new(MigrationJob *j, MigDevice *dev, void (*run)(MigWork *),
                      void (*done)(MigWork *));
/* Queues the job's control worker (the flow's @run and @done); on failure fails the job and
 * returns -ENOMEM. */
int mig_start_control(MigrationJob *j, void (*run)(MigWork *), void (*done)(MigWork *));
/* Records the job's failure (first one wins), stops every worker, and rolls back once
 * they have returned and no group transition of ours runs. */
void mig_fail(MigrationJob *j, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* On the loop, a worker's result: when it is an error, fails the job with the worker's words
 * (else the errno's). Returns w->r. */
int mig_work_result(MigWork *w);
/* Called when a worker or group transition of the job ended: continues a pending failure. */
void mig_maybe_finish_failure(MigrationJob *j);
/* A data channel's failure: if the peer simply went away, wait MIGRATION_PEER_REASON_NS for
 * its own reason (FAIL on the control channel) before failing with @text. */
void mig_fail_io(MigrationJob *j, int r, const char *text);
/* On the loop, a data channel worker's result: counts the worker out of @in_flight (one of the
 * job's counters), then on an error hands it to mig_fail_io(). Returns w->r. */
int mig_data_result(MigWork *w, unsigned *in_flight);
/* From the tick: fails the job with the data channel's error once the wait is over. */
void mig_check_peer_gone(MigrationJob *j);
void mig_complete(MigrationJob *j);
/* A live migration's hand-over event (core/handover.h): applies the table's action that
 * concerns the job as a whole (a give-up fails the job as mig_fail() does, a hold puts it in
 * doubt) and returns it; the flow carries out the others (send PREPARED or COMMIT, run). @r
 * and @text say what happened, for a failure or a hold. */
HandoverAction mig_handover(MigrationJob *j, HandoverEvent ev, int r, const char *text);
bool mig_is_over(const MigrationJob *j);
/* Over, or failing (ROLLING_BACK): the flow must not go on, its rollback takes over. */
bool mig_is_failing(const MigrationJob *j);

/* Starts a group transition owned by the job; @done runs on the loop, unless the job is
 * failing by then (its rollback takes over). @fail_what set: a failed run fails the job with
 * "<fail_what>: <the run's error>" instead of reaching @done, which then sees only runs that
 * succeeded; NULL: @done takes a failed run itself. -ECANCELED when the job already fails. */
int mig_group_transition(MigrationJob *j, DeviceState target, const char *fail_what,
                         void (*done)(MigrationJob *j, const GroupRun *run));
/* Pairs @src's devices with the job's (core/compat: by name, or the single device of a
 * DEVICE job) and puts the job's devices in @src's order, so record device indexes address
 * j->devs. -EMEDIUMTYPE with every mismatch in @why; -EBADMSG a malformed descriptor. */
int mig_match_manifest(MigrationJob *j, const StreamManifest *src, char *why, size_t why_size);
/* The same comparison for a dry run: 0 with every mismatch in @report (none: compatible),
 * the job's devices left in their order; another errno (a malformed descriptor) with @why. */
int mig_check_manifest(MigrationJob *j, const StreamManifest *src, CompatReport *report,
                       char *why, size_t why_size);
/* The manifest of @g's devices (names, flags, sizes, back-ends, descriptors), as a source
 * sends it. Loop thread (asks the devices' plugins). */
int mig_manifest_of_group(const Group *g, StreamManifest *mf, char *err, size_t err_size);
/* Source (migration, save): takes every device's interrupt state for its DEVICE_IRQS
 * record. Loop thread, once the group is in STOP_COPY and before the drains start. */
void mig_take_irqs(MigrationJob *j);
/* Destination (migration, restore): gives every device the interrupt state its DEVICE_IRQS
 * carried (irq_import: same index and count, same vectors masked and pending, all on the
 * daemon's latches until a VMM takes the device); a device without the record (an older
 * source) keeps its own. Loop thread, after every record arrived and before the group goes
 * to STOP or RUNNING. 0, or -errno with @why naming the device. */
int mig_restore_irqs(MigrationJob *j, char *why, size_t why_size);
/* HELLO's (and CHECK's) payload: the token, the stream header of @stream_id and @mf's
 * MANIFEST record, in a new buffer (*ret, freed by the caller). -E2BIG over a control
 * message's size, -ENOMEM. */
int mig_encode_hello(const char *token, uint64_t stream_id, const StreamManifest *mf,
                     uint8_t **ret, size_t *ret_size);
void mig_send_nonblocking(MigrationJob *j, uint32_t type, const char *text);
/* Closes the job's sockets and files once no worker uses them: a unix listening socket's
 * file is unlinked if it is still the one bound, and a save's partial file (one that was
 * not given its name) removed if it is still the one created. Idempotent. */
void mig_close_sockets(MigrationJob *j);
void mig_tick_start(MigrationJob *j, void (*cb)(uv_timer_t *));
/* Updates every device's smoothed rate; returns the job's total (bytes/s). */
double mig_update_rates(MigrationJob *j);

/* ---- migration_accept.c (loop): the data port of a destination ---- */
/* Polls j->listen_fd: accepts (pausing when out of fds), caps and reads connections until
 * their first message is whole, then hands it to mig_dest_first_message(). 0 or -errno. */
int mig_accept_start(MigrationJob *j);
/* Stops accepting and closes every connection not yet handed on. Idempotent. */
void mig_accept_stop(MigrationJob *j);
/* Closes the connections whose deadline has passed (from the job's tick). */
void mig_accept_sweep(MigrationJob *j, uint64_t now_ns);
/* Logs why a connection from @peer was refused: at most once per peer address and
 * interval, with the count of refusals left out since. */
void mig_log_refusal(MigrationJob *j, const char *peer, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- migration_dest.c ---- */
/* The first message of a connection to the data port, whole (@type HELLO, CHECK or DATA_HELLO).
 * Takes *@fd (a blocking socket by then) when it keeps the connection; else the caller
 * closes it. */
void mig_dest_first_message(MigrationJob *j, int *fd, const char *peer, uint32_t type,
                            const uint8_t *msg, uint32_t size);
/* ---- migration_source.c, migration_dest.c ---- */
/* Source: the destination has the VM (DONE, or a resolve): group -> STOP, then COMPLETED. */
void mig_source_hand_over(MigrationJob *j);
/* Destination: it holds the VM (COMMIT, or a resolve): DONE when still connected, group ->
 * RUNNING with auto_resume, then COMPLETED. */
void mig_dest_take_over(MigrationJob *j);

/* ---- migration_data.c (workers) ---- */
/* Makes @md's data buffer, once, and touches its pages: a source calls it while it connects,
 * so that neither the allocation (an mmap: it is above glibc's threshold) nor its page
 * faults fall into the downtime. 0 or -ENOMEM; freed with the job. */
int mig_device_buffer(MigDevice *md);
void mig_device_buffer_free(MigDevice *md); /* util/pages.h's, not free() */
/* Source: pre-copy until stop_pumps; returns 0, or -errno with w->error set. */
void mig_pump_precopy(MigWork *w);
/* Source: stop-copy: read the session to its end, then DEVICE_END (socket or file). Stops
 * with -ECANCELED before the next record once the job aborts. */
int mig_drain_device(MigDevice *md, int fd, char *err, size_t err_size);
/* Source: @md's DEVICE_IRQS on @fd when it has an index enabled, else nothing. */
int mig_write_irqs(const MigDevice *md, int fd, char *err, size_t err_size);
/* Destination: read this device's records from its channel into its resuming session. */
void mig_channel_receive(MigWork *w);
/* Source and destination: @md spread over @n channels (2..SPREAD_MAX_CHANNELS): its MigSpread,
 * with the window and reader of a destination for a stream of @n_devices. -ENOMEM, -EINVAL. */
int mig_spread_new(MigDevice *md, uint32_t n, uint64_t stream_id, uint32_t n_devices);
/* Frees it, closing its fds. NULL-safe. */
void mig_spread_free(MigSpread *sp);
/* Source: stop-copy of channel @channel of a spread device, the drains taking turns at the
 * device: its records, then DEVICE_END (the channel that found the end) or CHANNEL_END. */
int mig_drain_spread(MigDevice *md, uint32_t channel, char *err, size_t err_size);
/* Destination: one channel of a spread device (w->channel): its records into the device, in
 * sequence order with the other channels'. */
void mig_channel_receive_spread(MigWork *w);
/* Wakes every receiver waiting in a spread device's window (the job is failing). */
void mig_spread_wake(MigrationJob *j);
/* Writes a stream record (header + payload) to @fd. */
int mig_write_record(int fd, uint32_t type, uint32_t flags, uint32_t device, uint64_t seq,
                     const void *payload, uint32_t size);

