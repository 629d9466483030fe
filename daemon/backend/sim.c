/* SPDX-License-Identifier: MIT */
/*
 * sim — the simulated device back-end: a VFIO migration device modelled inside the daemon's
 * own process, with no kernel, that answers every backend.h call the way a kernel
 * driver (mtty, mlx5, hisi_acc) answers the matching ioctl, read() or write() — never more
 * forgivingly. The demo, the integration tests and most unit tests migrate these devices, so
 * any leniency here would hide a daemon bug that real hardware then exposes.
 *
 * The plan:
 *  - set_state() is one SET of MIG_DEVICE_STATE: under the device mutex it walks core/fsm hop
 *    by hop with fsm_next_hop(), sleeps latency_ms before each arc and runs that single arc;
 *    a failed arc stops the walk at the last completed hop (kernel-uapi.md §6.4), or in ERROR
 *    when fail_to_error asks for pds-like behaviour.
 *  - The device content is three numbers (seed, size, gen). Every byte of a saved image is a
 *    pure function of them, so a save of any size costs no memory and the resuming side
 *    checks each byte as it arrives. docs/simulated-devices.md describes the content model
 *    and the stream layout; the two must stay in step.
 *  - A SimSession is the driver-side state of one data fd. The device holds its live session
 *    (so RESUMING -> STOP can validate after the caller closed its handle, as drivers hold
 *    their own file reference); the caller holds a handle. Device handle and session objects
 *    each count one reference on the device, so they may be freed in any order.
 *  - Faults (fail_arc, fail_nth, fail_to_error) are injected per arc, before the arc has any
 *    effect.
 *  - A hold (hold_arc, hold_until) keeps one arc waiting, mutex held like latency_ms, until a
 *    file exists: tests make an operation last exactly as long as they need, whatever the
 *    machine's speed, instead of betting on a latency being long enough.
 *  - A vendor's sim model (model=NAME: a plugin's struct vfio_migd_sim_model) supplies what
 *    is vendor-specific — flags, data size, arc errors and, when it has stream hooks, every
 *    byte of its sessions — while the walk, the fd rules, reset, holds and faults stay the
 *    sim's. The model gets only the keys the sim does not know; its hooks run under the
 *    device mutex and what they return is checked like any input.
 *
 * Uses:     core/fsm (the kernel's table), core/compat (its descriptor), sim_content (the
 *           chunks' bytes), core/stream's CRC32C (header CRC), util/strutil (option parsing).
 * Threads:  any; one mutex per device guards the device and every session it ever opened.
 * Errors:   negative errno exactly as a kernel driver returns it; logs at debug level only.
 */
#include "backend.h"

#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

#include "../core/stream.h" /* crc32c() */
#include "../util/cleanup.h"
#include "../util/clock.h"
#include "../util/le.h"
#include "../util/log.h"
#include "../util/macro.h"
#include "../util/strutil.h"
#include "kernel_sysfs.h" /* kernel_sysfs_parse_bdf() */
#include "sim_content.h"
#include "../core/irq.h" /* IRQ_MAX_VECTORS */
#include "sim_irq.h"

#include <vfio-migd/plugin.h>

/* ---- stream layout (docs/simulated-devices.md "Stream layout" is the normative text) */

#define SIM_MAGIC "VFSIMDEV"
#define SIM_STREAM_VERSION UINT32_C(1)
#define SIM_HEADER_SIZE UINT64_C(64)
#define SIM_RECORD_SIZE UINT64_C(16) /* a record header: tag, chunk index, version or gen */
/* Granularity of dirtying and of dirty records. 64 KiB keeps the per-chunk version table at
 * 1 Mi entries (8 MiB) for the largest device (64 GiB) while records stay small enough that
 * pre-copy has something to iterate over. */
#define SIM_CHUNK_SIZE UINT64_C(65536)
#define SIM_HDR_FLAG_RECORDS UINT32_C(1) /* dirty records and an END record follow the image */
#define SIM_TAG_CHUNK UINT32_C(1)
#define SIM_TAG_END UINT32_C(2)

/* Byte offsets inside the 64-byte header; everything little-endian, unused bytes zero. */
enum {
    SIM_HDR_MAGIC = 0,     /* 8 bytes "VFSIMDEV" */
    SIM_HDR_VERSION = 8,   /* u32 */
    SIM_HDR_FLAGS = 12,    /* u32 SIM_HDR_FLAG_* */
    SIM_HDR_SIZE = 16,     /* u64 total image size, this header included */
    SIM_HDR_SEED = 24,     /* u64 */
    SIM_HDR_GEN = 32,      /* u64 generation of the image */
    SIM_HDR_CHUNK = 40,    /* u32 SIM_CHUNK_SIZE */
    SIM_HDR_RESERVED = 44, /* 16 zero bytes */
    SIM_HDR_CRC = 60,      /* u32 CRC32C of bytes 0..59 (the stream format's CRC) */
};

/* ---- option limits */

#define SIM_SIZE_MIN SIM_HEADER_SIZE      /* the header alone: a device with no payload */
#define SIM_SIZE_MAX (UINT64_C(64) << 30) /* 64 GiB: above mlx5's 4 GiB non-chunked limit */
#define SIM_SIZE_DEFAULT (UINT64_C(1) << 20)
#define SIM_LATENCY_MAX_MS 60000 /* a minute: longer is a hang, not a latency */
/* Slower than 4 KiB/s, one 512 KiB read would take two minutes: a hang, not a rate. */
#define SIM_DATA_RATE_MIN 4096
#define SIM_ERRNO_MAX 4095       /* the kernel's MAX_ERRNO */
#define SIM_HOLD_MAX_MS_DEFAULT 60000
#define SIM_HOLD_MAX_MS_MAX 600000 /* ten minutes: a test that needs longer has hung */
#define SIM_HOLD_POLL_MS 5         /* how often a held arc looks for its release file */
#define SIM_PATH_MAX 128           /* a value of the options string is shorter */
#define SIM_ID_TEXT_MAX 64         /* driver= and mdev_type=: as sysfs names them */

#define GOLDEN UINT64_C(0x9E3779B97F4A7C15) /* 2^64 / phi, the splitmix64 increment */
/* At most this many chunks dirtied by one look at the clock: far more than any device has
 * (64 GiB is 2^20 chunks), and the product below cannot overflow generations. */
#define SIM_DIRTY_MAX_CHUNKS UINT64_C(0xffffffff)

/* The clock dirty_rate runs on; unit tests step their own (sim_set_clock). */
static sim_clock_fn sim_clock = clock_now_ns;

typedef struct SimDevice SimDevice;
typedef struct SimSession SimSession;

typedef struct SimConfig {
    uint32_t flags;      /* MIG_FLAG_*, one of the four legal sets */
    bool migratable;     /* false: FEATURE ioctls answer -ENOTTY */
    uint64_t size;       /* exact STOP_COPY stream length, also MIG_DATA_SIZE */
    int latency_ms;      /* slept before every arc, state mutex held */
    bool fail_set;       /* fail_arc was given */
    FsmArc fail_arc;
    int fail_errno;         /* positive */
    int fail_nth;           /* 0: fail every run of fail_arc; N: only the N-th */
    bool fail_to_error;     /* the failing arc leaves the device in ERROR (pds) */
    bool precopy_enomsg;    /* temporary end: -ENOMSG (mlx5) instead of 0 (mtty, hisi) */
    uint64_t precopy_dirty; /* bytes dirtied by each PRECOPY_INFO in PRE_COPY */
    uint64_t dirty_rate;    /* bytes/s dirtied while in PRE_COPY (sim_dirty_accrue) */
    uint64_t data_rate;     /* bytes/s a data session moves; 0: memory speed */
    uint64_t seed;
    DeviceState initial_state;
    bool hold_set; /* hold_arc was given (and then hold_until too) */
    FsmArc hold_arc;
    char hold_until[SIM_PATH_MAX]; /* absolute; the arc waits until this name exists */
    int hold_max_ms;               /* a run of hold_arc waits this long at most */
    char pci[KERNEL_SYSFS_NAME_MAX + 1]; /* canonical PCI address the device claims; "" none */
    /* Who the device says it is, so a plugin can claim it (identity.h): */
    char driver[SIM_ID_TEXT_MAX];    /* the driver it claims to be bound to; "" */
    uint32_t vendor_id, device_id;   /* pci_id=VVVV:DDDD; BACKEND_ID_NONE */
    char mdev_type[SIM_ID_TEXT_MAX]; /* an mdev's type ("mtty-2"); "" */
    char label[SIM_ID_TEXT_MAX];     /* free text for plugins to read (test plugins); "" */
    char model[SIM_ID_TEXT_MAX];     /* model=: "" or "generic" for the sim's own */
    SimIrqConfig irq;                /* intx=, msi=, msix=, msix_dynamic=, req= (sim_irq.h) */
    char pf[KERNEL_SYSFS_NAME_MAX + 1]; /* pf=: the PF of a VF (identity.parent); "" */
} SimConfig;

typedef enum SimSessionKind {
    SIM_SESSION_SAVE,    /* STOP -> STOP_COPY: the image, then EOF */
    SIM_SESSION_PRECOPY, /* RUNNING -> PRE_COPY, RUNNING_P2P -> PRE_COPY_P2P: image + records */
    SIM_SESSION_RESUME,  /* STOP -> RESUMING */
} SimSessionKind;

/* The record being produced or consumed after the image: header bytes, then chunk bytes. */
typedef struct SimRecord {
    bool active;
    uint8_t hdr[SIM_RECORD_SIZE];
    uint32_t tag;
    uint32_t chunk;
    uint64_t value; /* CHUNK: the chunk's version; END: the final generation */
    uint64_t off;   /* bytes of this record done, header included */
    uint64_t len;   /* SIM_RECORD_SIZE + data bytes */
} SimRecord;

struct SimSession {
    DataSession base;
    SimDevice *dev;      /* holds one reference */
    SimSessionKind kind; /* immutable */
    bool live;           /* the device's current session; false once ended: -ENODEV */
    bool handle_open;    /* the caller has not called session_free() */
    uint64_t pos;        /* stream bytes produced or accepted */
    uint64_t seed;       /* content of the image ... */
    uint64_t gen;        /* ... at this generation */
    SimRecord rec;
    /* saving with records */
    uint64_t sent_gen; /* dirtying events before this one are covered by data produced */
    bool end_done;     /* the END record was produced completely: EOF from now on */
    /* dirty_rate: the device's dirtying is accounted up to dirty_ns (sim_clock), with the
     * part of a chunk not yet dirtied kept as byte-nanoseconds, so no fraction is ever lost */
    uint64_t dirty_ns;
    uint64_t dirty_carry;
    /* resuming */
    uint8_t hdr[SIM_HEADER_SIZE];
    bool records; /* the header announced records */
    bool broken;  /* a write failed validation: -EIO, and RESUMING -> STOP fails */
    bool end_seen;
    uint64_t end_gen;
    uint64_t *versions; /* per chunk, the version the destination holds (records only) */
    void *mstream;      /* the model's stream while live (model with stream hooks), or NULL */
    int token_fd;       /* SessionOps.fd: sim_token_new(), closed with the handle; owned */
};

/* What stands for a session's data fd in the fd store: the stream lives in this process, so
 * the fd is a sealed memfd that only names the device (its state memfd's inode), made when the
 * session opens and closed when its handle is; a restarted daemon checks it against the device
 * it re-adopted (sim_data_fd_check) and closes it, as it does with a kernel data fd. */
#define SIM_TOKEN_MAGIC "VFSIMDF1"

typedef struct SimToken {
    char magic[8];
    uint64_t dev, ino;
} SimToken;

/* What the device itself remembers (state, content, fault counter), in a memfd the sim owns
 * and maps: the kernel keeps a device's state in the device, not in the process that opened
 * it, so a sim device must outlive its daemon the same way. The fd store keeps the memfd
 * across a crash or restart and sim_device_adopt() maps it again; every write is in the memfd
 * at once, so a crash loses nothing. Data sessions are not in it: like a data fd nobody
 * stored, a session dies with the daemon and the device stays where it is. Fixed layout,
 * native endianness (only this host's next daemon reads it); checked on adoption. */
#define SIM_STATE_MAGIC "VFSIMST1"
#define SIM_STATE_VERSION UINT32_C(2) /* 2: the interrupts' set-up (irq) */

typedef struct SimPersist {
    char magic[8];       /* SIM_STATE_MAGIC */
    uint32_t version;    /* SIM_STATE_VERSION */
    DeviceState state;
    uint64_t size;       /* cfg.size, checked against the options on adoption */
    uint64_t seed;       /* content: (seed, cfg.size, gen) */
    uint64_t gen;
    unsigned fail_runs;  /* runs of cfg.fail_arc so far */
    uint32_t reserved;
    SimIrqKept irq;      /* the interrupts' set-up the kernel keeps (sim_irq.h) */
} SimPersist;

struct SimDevice {
    BackendDevice base;
    pthread_mutex_t lock; /* the driver's state mutex; guards everything below */
    unsigned refs;        /* the device handle + every SimSession object */
    char *name;
    char *options; /* as given: plugins read their model's keys from it */
    SimConfig cfg; /* immutable after creation */
    uint64_t n_chunks;
    int state_fd;        /* the memfd behind st; owned */
    SimPersist *st;      /* the device's own state, mapped from state_fd */
    SimSession *session; /* the live data session, or NULL */
    atomic_bool holding; /* a run of cfg.hold_arc waits now; read without the lock */
    SimModel model;      /* model.ops NULL: the generic device */
    void *mstate;        /* the model's device state (its create); owned */
    SimIrq *irq;         /* interrupts: their own lock (sim_irq.h); NULL once the fd closed */
    int vmm_view;        /* read-only reopening of state_fd handed to VMMs, or -EBADF; owned */
};

/* The device's sessions are the model's (it has stream hooks), not the content model's. */
static const char *
sim_model_name(const SimDevice *d)
{
    return d->model.ops ? d->model.ops->name : "generic";
}

static bool
sim_model_streams(const SimDevice *d)
{
    return d->model.ops && d->model.ops->stream_open;
}

/* What a model hook returned, as an errno the sim may pass on: a value outside the contract
 * (a positive number, beyond MAX_ERRNO) is the model's bug and reads as -EIO. */
static int
sim_model_errno(int64_t r)
{
    return r < 0 && r >= -SIM_ERRNO_MAX ? (int) r : -EIO;
}

/* ---- content model: bytes as a pure function of (seed, chunk, version) */

static inline uint64_t
splitmix64(uint64_t x)
{
    x += GOLDEN;
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

/* Generation g dirties chunk g mod n, so chunk @i has seen this many dirtying events. */
static uint64_t
sim_chunk_version(uint64_t n_chunks, uint64_t i, uint64_t gen)
{
    return gen / n_chunks + (i < gen % n_chunks ? 1 : 0);
}

static uint64_t
sim_chunk_len(const SimDevice *d, uint64_t i)
{
    return MIN(d->cfg.size - SIM_HEADER_SIZE - i * SIM_CHUNK_SIZE, SIM_CHUNK_SIZE);
}

static uint64_t
sim_chunk_key(uint64_t seed, uint64_t i, uint64_t version)
{
    return splitmix64(seed ^ (i * UINT64_C(0xD1B54A32D192ED03)) ^
                      (version * UINT64_C(0x8CB92BA72F3D8DD7)));
}

/* The bytes of a chunk, key ^ (j * GOLDEN) for word j, come from sim_content.c: vector code
 * that generates and checks them at memory speed in any build. */

/* The key of the payload chunk holding payload offset @off in the image (seed, gen). */
static uint64_t
sim_payload_key(const SimDevice *d, uint64_t seed, uint64_t gen, uint64_t off)
{
    uint64_t i = off / SIM_CHUNK_SIZE;

    return sim_chunk_key(seed, i, sim_chunk_version(d->n_chunks, i, gen));
}

/* Fills @len payload bytes at payload offset @off of the image (seed, gen); the caller keeps
 * the range inside the payload. */
static void
sim_payload_fill(const SimDevice *d, uint64_t seed, uint64_t gen, uint64_t off, uint8_t *buf,
                 size_t len)
{
    while (len > 0) {
        uint64_t in = off % SIM_CHUNK_SIZE;
        size_t n = MIN((uint64_t) len, SIM_CHUNK_SIZE - in);

        sim_content_fill(sim_payload_key(d, seed, gen, off), in, buf, n);
        off += n;
        buf += n;
        len -= n;
    }
}

/* As sim_payload_fill(), but compares: 0, or -EFAULT at the first differing byte. */
static int
sim_payload_verify(const SimDevice *d, uint64_t seed, uint64_t gen, uint64_t off,
                   const uint8_t *buf, size_t len)
{
    while (len > 0) {
        uint64_t in = off % SIM_CHUNK_SIZE;
        size_t n = MIN((uint64_t) len, SIM_CHUNK_SIZE - in);
        int r = sim_content_verify(sim_payload_key(d, seed, gen, off), in, buf, n);

        if (r < 0) {
            return r;
        }
        off += n;
        buf += n;
        len -= n;
    }
    return 0;
}

/* Equal for two devices exactly when (seed, size, gen) are equal (up to 2^-64 collisions). */
static uint64_t
sim_digest(uint64_t seed, uint64_t size, uint64_t gen)
{
    return splitmix64(splitmix64(splitmix64(seed) ^ size) ^ gen);
}

/* ---- the stream header (its fields little-endian: util/le.h) */

static void
sim_header_encode(uint8_t *hdr, uint64_t size, uint64_t seed, uint64_t gen, bool records)
{
    memset(hdr, 0, SIM_HEADER_SIZE);
    memcpy(hdr + SIM_HDR_MAGIC, SIM_MAGIC, 8);
    put_le32(hdr + SIM_HDR_VERSION, SIM_STREAM_VERSION);
    put_le32(hdr + SIM_HDR_FLAGS, records ? SIM_HDR_FLAG_RECORDS : 0);
    put_le64(hdr + SIM_HDR_SIZE, size);
    put_le64(hdr + SIM_HDR_SEED, seed);
    put_le64(hdr + SIM_HDR_GEN, gen);
    put_le32(hdr + SIM_HDR_CHUNK, (uint32_t) SIM_CHUNK_SIZE);
    put_le32(hdr + SIM_HDR_CRC, crc32c(0, hdr, SIM_HDR_CRC));
}

/* ---- device lifetime and sessions (all called with d->lock held) */

static void
sim_device_destroy(SimDevice *d)
{
    if (!d) {
        return;
    }
    (void) pthread_mutex_destroy(&d->lock);
    sim_irq_free(d->irq);
    if (d->st) {
        (void) munmap(d->st, sizeof(*d->st));
    }
    if (d->state_fd >= 0) {
        (void) close(d->state_fd);
    }
    if (d->mstate) {
        d->model.ops->destroy(d->mstate);
    }
    if (d->vmm_view >= 0) {
        (void) close(d->vmm_view);
    }
    free(d->name);
    free(d->options);
    free(d);
}
DEFINE_CLEANUP_FUNC(SimDevice *, sim_device_destroy);

/* Drops d->lock; frees the device when the last reference went away while it was held. Safe:
 * with no references left no other thread can reach the device. */
static void
sim_device_unlock(SimDevice *d)
{
    bool gone = d->refs == 0;

    (void) pthread_mutex_unlock(&d->lock);
    if (gone) {
        sim_device_destroy(d);
    }
}

/* The token of @d's state memfd (SimToken). */
static int
sim_token_of(const SimDevice *d, SimToken *ret)
{
    struct stat sb;

    if (fstat(d->state_fd, &sb) < 0) {
        return -errno;
    }
    *ret = (SimToken){.magic = SIM_TOKEN_MAGIC, .dev = sb.st_dev, .ino = sb.st_ino};
    return 0;
}

static int
sim_token_new(const SimDevice *d, int *ret_fd)
{
    _cleanup_close_ int fd = memfd_create("vfio-migd-sim-data", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    SimToken t;
    int r;

    if (fd < 0) {
        return -errno;
    }
    r = sim_token_of(d, &t);
    if (r < 0) {
        return r;
    }
    errno = 0;
    if (write(fd, &t, sizeof(t)) != (ssize_t) sizeof(t) ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
        return errno ? -errno : -EIO;
    }
    *ret_fd = TAKE_FD(fd);
    return 0;
}

static void
sim_session_destroy(SimSession *s)
{
    if (s->token_fd >= 0) {
        (void) close(s->token_fd);
    }
    s->dev->refs--;
    free(s->versions);
    free(s);
}

/* Ends the live session, if any: like a driver disabling its migration file, the handle keeps
 * existing but answers -ENODEV from now on. */
static void
sim_session_end(SimDevice *d)
{
    SimSession *s = TAKE_PTR(d->session);

    if (!s) {
        return;
    }
    if (sim_model_streams(d)) {
        d->model.ops->stream_close(TAKE_PTR(s->mstream));
    }
    s->live = false;
    if (!s->handle_open) {
        sim_session_destroy(s);
    }
}

static const SessionOps sim_session_ops;

/* The session a session-opening arc creates; it replaces (ends) any previous one. */
static int
sim_session_open(SimDevice *d, DeviceState from, DeviceState to, SimSession **ret)
{
    SimSession *s = calloc(1, sizeof(*s));
    int r;

    if (!s) {
        return -ENOMEM;
    }
    s->base.ops = &sim_session_ops;
    s->dev = d;
    s->token_fd = -EBADF;
    if (to == DEVICE_STATE_RESUMING) {
        s->kind = SIM_SESSION_RESUME;
    } else if (from == DEVICE_STATE_STOP) {
        s->kind = SIM_SESSION_SAVE;
    } else {
        s->kind = SIM_SESSION_PRECOPY;
    }
    s->live = true;
    s->handle_open = true;
    s->seed = d->st->seed;
    s->gen = d->st->gen;
    s->sent_gen = d->st->gen; /* the image carries every chunk at this generation */
    s->dirty_ns = sim_clock();
    if (sim_model_streams(d)) {
        r = d->model.ops->stream_open(d->mstate, (uint32_t) from, (uint32_t) to, &s->mstream);
        if (r < 0) {
            free(s);
            return sim_model_errno(r); /* the arc fails; the previous session lives on */
        }
    }
    /* Where the kernel allocates the data fd: failing, the arc fails (-EMFILE, -ENOMEM). */
    r = sim_token_new(d, &s->token_fd);
    if (r < 0) {
        if (s->mstream) {
            d->model.ops->stream_close(s->mstream);
        }
        free(s);
        return r;
    }

    sim_session_end(d);
    d->refs++;
    d->session = s;
    *ret = s;
    return 0;
}

/* ---- saving: image, dirty records, END */

/* dirty_rate: the running device has dirtied rate x elapsed bytes since the last look, in
 * whole chunks (the remainder carries over), each one dirtying event (a generation). Called,
 * d->lock held, wherever a driver would look at its dirty tracking: PRECOPY_INFO, read(), and
 * the arc leaving PRE_COPY. Only PRE_COPY dirties: in PRE_COPY_P2P the device is quiesced,
 * and a RUNNING device's changes are taken whole by the next image. */
static void
sim_dirty_accrue(SimSession *s)
{
    SimDevice *d = s->dev;
    const unsigned __int128 per_chunk = (unsigned __int128) SIM_CHUNK_SIZE * 1000000000u;
    unsigned __int128 acc;
    uint64_t now;

    if (d->cfg.dirty_rate == 0 || d->st->state != DEVICE_STATE_PRE_COPY ||
        s->kind != SIM_SESSION_PRECOPY) {
        return;
    }
    now = sim_clock();
    if (now <= s->dirty_ns) {
        return; /* a clock that did not move (or a test's that went back) dirties nothing */
    }
    acc = (unsigned __int128) (now - s->dirty_ns) * d->cfg.dirty_rate + s->dirty_carry;
    s->dirty_ns = now;
    s->dirty_carry = (uint64_t) (acc % per_chunk);
    d->st->gen += (uint64_t) MIN(acc / per_chunk, (unsigned __int128) SIM_DIRTY_MAX_CHUNKS);
}

/* Number of chunks dirtied since they were last produced. Dirtying is round robin, so these
 * are the chunks of the last k events [gen - k, gen), k <= n_chunks. */
static uint64_t
sim_pending_chunks(const SimSession *s)
{
    const SimDevice *d = s->dev;

    if (d->n_chunks == 0) {
        return 0;
    }
    return MIN(d->st->gen - s->sent_gen, d->n_chunks);
}

/* dirty_bytes of PRECOPY_INFO: the unread rest of the record in flight plus every pending
 * record, header included. */
static uint64_t
sim_pending_bytes(const SimSession *s)
{
    const SimDevice *d = s->dev;
    uint64_t k = sim_pending_chunks(s);
    uint64_t bytes = s->rec.active ? s->rec.len - s->rec.off : 0;
    uint64_t first;

    if (k == 0) {
        return bytes;
    }
    bytes += k * (SIM_RECORD_SIZE + SIM_CHUNK_SIZE);
    first = (d->st->gen - k) % d->n_chunks;
    if (d->n_chunks - 1 - first < k) {
        /* the last chunk is among them, and it may be shorter */
        bytes -= SIM_CHUNK_SIZE - sim_chunk_len(d, d->n_chunks - 1);
    }
    return bytes;
}

static void
sim_record_start(SimRecord *rec, uint32_t tag, uint64_t chunk, uint64_t value, uint64_t data)
{
    *rec = (SimRecord){.active = true, .tag = tag, .chunk = (uint32_t) chunk, .value = value};
    put_le32(rec->hdr, tag);
    put_le32(rec->hdr + 4, (uint32_t) chunk);
    put_le64(rec->hdr + 8, value);
    rec->len = SIM_RECORD_SIZE + data;
}

/* Starts the next record of a pre-copy stream whose image has been read. Returns false at
 * the end of what is available now. */
static bool
sim_record_next(SimSession *s)
{
    SimDevice *d = s->dev;
    uint64_t n = d->n_chunks, chunk;

    if (s->end_done) {
        return false;
    }
    if (sim_pending_chunks(s) > 0) {
        if (d->st->gen - s->sent_gen > n) {
            /* more than n events behind: the last n cover every chunk once */
            s->sent_gen = d->st->gen - n;
        }
        chunk = s->sent_gen % n;
        s->sent_gen++;
        sim_record_start(&s->rec, SIM_TAG_CHUNK, chunk, sim_chunk_version(n, chunk, d->st->gen),
                         sim_chunk_len(d, chunk));
        return true;
    }
    if (d->st->state == DEVICE_STATE_STOP_COPY) {
        sim_record_start(&s->rec, SIM_TAG_END, 0, d->st->gen, 0);
        return true;
    }
    return false;
}

static size_t
sim_record_produce(SimSession *s, uint8_t *buf, size_t size)
{
    SimRecord *rec = &s->rec;
    size_t n, done = 0;

    if (rec->off < SIM_RECORD_SIZE) {
        n = MIN((uint64_t) size, SIM_RECORD_SIZE - rec->off);
        memcpy(buf, rec->hdr + rec->off, n);
        rec->off += n;
        done += n;
    }
    if (done < size && rec->off < rec->len) {
        n = MIN((uint64_t) (size - done), rec->len - rec->off);
        sim_content_fill(sim_chunk_key(s->seed, rec->chunk, rec->value),
                         rec->off - SIM_RECORD_SIZE, buf + done, n);
        rec->off += n;
        done += n;
    }
    if (rec->off == rec->len) {
        rec->active = false;
        s->end_done = rec->tag == SIM_TAG_END;
    }
    s->pos += done;
    return done;
}

static size_t
sim_image_produce(SimSession *s, uint8_t *buf, size_t size)
{
    const SimDevice *d = s->dev;
    size_t n, done = 0;

    if (s->pos < SIM_HEADER_SIZE) {
        uint8_t hdr[SIM_HEADER_SIZE];

        sim_header_encode(hdr, d->cfg.size, s->seed, s->gen, s->kind == SIM_SESSION_PRECOPY);
        n = MIN((uint64_t) size, SIM_HEADER_SIZE - s->pos);
        memcpy(buf, hdr + s->pos, n);
        s->pos += n;
        done += n;
    }
    if (done < size && s->pos < d->cfg.size) {
        n = MIN((uint64_t) (size - done), d->cfg.size - s->pos);
        sim_payload_fill(d, s->seed, s->gen, s->pos - SIM_HEADER_SIZE, buf + done, n);
        s->pos += n;
        done += n;
    }
    return done;
}

static ssize_t
sim_save_produce(SimSession *s, uint8_t *buf, size_t size)
{
    size_t done;

    size = MIN(size, (size_t) SSIZE_MAX);
    done = sim_image_produce(s, buf, size);
    while (s->kind == SIM_SESSION_PRECOPY && done < size && s->pos >= s->dev->cfg.size) {
        if (!s->rec.active && !sim_record_next(s)) {
            break;
        }
        done += sim_record_produce(s, buf + done, size - done);
    }
    if (done > 0 || size == 0) {
        return (ssize_t) done;
    }
    if (s->kind == SIM_SESSION_PRECOPY && s->dev->st->state != DEVICE_STATE_STOP_COPY) {
        /* a temporary end: mtty and hisi return 0, mlx5 -ENOMSG (kernel-uapi.md §5.4) */
        return s->dev->cfg.precopy_enomsg ? -ENOMSG : 0;
    }
    return 0; /* EOF in STOP_COPY, permanent */
}

/* ---- resuming: check every byte as it arrives */

/* Checks a complete header in s->hdr and takes the image's identity from it. -EFAULT, as
 * mtty fails a write whose header it rejects; a size that differs from this device's is one
 * of those rejections. */
static int
sim_header_check(SimSession *s)
{
    const SimDevice *d = s->dev;
    const uint8_t *h = s->hdr;
    uint32_t flags = get_le32(h + SIM_HDR_FLAGS);
    static const uint8_t zeros[SIM_HDR_CRC - SIM_HDR_RESERVED];

    if (memcmp(h + SIM_HDR_MAGIC, SIM_MAGIC, 8) != 0 ||
        get_le32(h + SIM_HDR_VERSION) != SIM_STREAM_VERSION ||
        get_le32(h + SIM_HDR_CRC) != crc32c(0, h, SIM_HDR_CRC) ||
        (flags & ~SIM_HDR_FLAG_RECORDS) != 0 || get_le64(h + SIM_HDR_SIZE) != d->cfg.size ||
        get_le32(h + SIM_HDR_CHUNK) != SIM_CHUNK_SIZE ||
        memcmp(h + SIM_HDR_RESERVED, zeros, sizeof(zeros)) != 0) {
        return -EFAULT;
    }
    s->seed = get_le64(h + SIM_HDR_SEED);
    s->gen = get_le64(h + SIM_HDR_GEN);
    s->records = flags & SIM_HDR_FLAG_RECORDS;
    if (s->records && d->n_chunks > 0) {
        if (!s->versions) {
            s->versions = calloc(d->n_chunks, sizeof(*s->versions));
            if (!s->versions) {
                return -ENOMEM;
            }
        }
        for (uint64_t i = 0; i < d->n_chunks; i++) {
            s->versions[i] = sim_chunk_version(d->n_chunks, i, s->gen);
        }
    }
    return 0;
}

/* Copies the header bytes of this write into s->hdr without consuming them, so a write that
 * is then refused as a whole (-ENOMEM) accepts nothing. Returns 1 when the header is known,
 * 0 when it is still incomplete, -EFAULT for a bad header, -ENOMEM when the version table of
 * a records stream cannot be allocated. */
static int
sim_resume_peek_header(SimSession *s, const uint8_t *buf, size_t size)
{
    size_t n;
    int r;

    if (s->pos >= SIM_HEADER_SIZE) {
        return 1;
    }
    n = MIN((uint64_t) size, SIM_HEADER_SIZE - s->pos);
    memcpy(s->hdr + s->pos, buf, n);
    if (s->pos + n < SIM_HEADER_SIZE) {
        return 0;
    }
    r = sim_header_check(s);
    return r < 0 ? r : 1;
}

/* A record header is complete: check it against the chunk layout and what is held. */
static int
sim_resume_record_header(SimSession *s)
{
    const SimDevice *d = s->dev;
    SimRecord *rec = &s->rec;

    rec->tag = get_le32(rec->hdr);
    rec->chunk = get_le32(rec->hdr + 4);
    rec->value = get_le64(rec->hdr + 8);
    if (rec->tag == SIM_TAG_CHUNK) {
        if (rec->chunk >= d->n_chunks) {
            return -ENOMEM; /* data beyond the device's layout, mtty's "too much" errno */
        }
        if (rec->value <= s->versions[rec->chunk]) {
            return -EFAULT; /* a source only re-sends a chunk that changed */
        }
        rec->len = SIM_RECORD_SIZE + sim_chunk_len(d, rec->chunk);
        return 0;
    }
    if (rec->tag == SIM_TAG_END && rec->chunk == 0 && rec->value >= s->gen) {
        s->end_seen = true;
        s->end_gen = rec->value;
        rec->active = false;
        return 0;
    }
    return -EFAULT;
}

/* Consumes the front of @buf as record bytes; *ret_used says how many. */
static int
sim_resume_record(SimSession *s, const uint8_t *buf, size_t size, size_t *ret_used)
{
    SimRecord *rec = &s->rec;
    size_t n;
    int r;

    if (!rec->active) {
        *rec = (SimRecord){.active = true, .len = SIM_RECORD_SIZE};
    }
    if (rec->off < SIM_RECORD_SIZE) {
        n = MIN((uint64_t) size, SIM_RECORD_SIZE - rec->off);
        memcpy(rec->hdr + rec->off, buf, n);
        rec->off += n;
        *ret_used = n;
        return rec->off == SIM_RECORD_SIZE ? sim_resume_record_header(s) : 0;
    }
    n = MIN((uint64_t) size, rec->len - rec->off);
    r = sim_content_verify(sim_chunk_key(s->seed, rec->chunk, rec->value),
                           rec->off - SIM_RECORD_SIZE, buf, n);
    if (r < 0) {
        return r;
    }
    rec->off += n;
    if (rec->off == rec->len) {
        s->versions[rec->chunk] = rec->value;
        rec->active = false;
    }
    *ret_used = n;
    return 0;
}

/* Consumes a whole write whose length was already found acceptable. */
static int
sim_resume_consume(SimSession *s, const uint8_t *buf, size_t size)
{
    const SimDevice *d = s->dev;
    size_t n;
    int r;

    if (s->pos < SIM_HEADER_SIZE) {
        n = MIN((uint64_t) size, SIM_HEADER_SIZE - s->pos); /* checked by the peek */
        s->pos += n;
        buf += n;
        size -= n;
    }
    if (size > 0 && s->pos < d->cfg.size) {
        n = MIN((uint64_t) size, d->cfg.size - s->pos);
        r = sim_payload_verify(d, s->seed, s->gen, s->pos - SIM_HEADER_SIZE, buf, n);
        if (r < 0) {
            return r;
        }
        s->pos += n;
        buf += n;
        size -= n;
    }
    while (size > 0) {
        if (!s->records || s->end_seen) {
            return -ENOMEM; /* beyond the end of the stream */
        }
        r = sim_resume_record(s, buf, size, &n);
        if (r < 0) {
            return r;
        }
        s->pos += n;
        buf += n;
        size -= n;
    }
    return 0;
}

static ssize_t
sim_resume_write(SimSession *s, const uint8_t *buf, size_t size)
{
    int r;

    size = MIN(size, (size_t) SSIZE_MAX);
    r = sim_resume_peek_header(s, buf, size);
    if (r < 0) {
        s->broken = true;
        return r;
    }
    /* mtty refuses a write that would pass the stream's end before taking any of it */
    if (r == 1 && ((!s->records && size > s->dev->cfg.size - s->pos) ||
                   (s->records && s->end_seen && size > 0))) {
        return -ENOMEM;
    }
    r = sim_resume_consume(s, buf, size);
    if (r < 0) {
        s->broken = true;
        return r;
    }
    return (ssize_t) size;
}

/* RESUMING -> STOP: the "final validation" of kernel-uapi.md §5.3. Incomplete, broken or
 * inconsistent data fails the arc with -EINVAL; on success the device takes the content. */
static int
sim_resume_finish(SimDevice *d, const SimSession *s)
{
    uint64_t gen;

    if (!s || s->broken || s->pos < d->cfg.size) {
        return -EINVAL;
    }
    gen = s->gen;
    if (s->records) {
        if (!s->end_seen) {
            return -EINVAL;
        }
        /* every chunk changed between the image and END must hold its final version */
        for (uint64_t i = 0; i < d->n_chunks; i++) {
            if (s->versions[i] != sim_chunk_version(d->n_chunks, i, s->end_gen)) {
                return -EINVAL;
            }
        }
        gen = s->end_gen;
    }
    d->st->seed = s->seed;
    d->st->gen = gen;
    return 0;
}

/* ---- a model's sessions (d->lock held, session live): the model's bytes, checked */

static ssize_t
sim_model_read(SimSession *s, void *buf, size_t size)
{
    int64_t r;

    size = MIN(size, (size_t) SSIZE_MAX);
    r = s->dev->model.ops->stream_read(s->mstream, buf, size);
    if (r > (int64_t) size) {
        return -EIO;
    }
    return r >= 0 ? (ssize_t) r : sim_model_errno(r);
}

static ssize_t
sim_model_write(SimSession *s, const void *buf, size_t size)
{
    int64_t r;

    size = MIN(size, (size_t) SSIZE_MAX);
    r = s->dev->model.ops->stream_write(s->mstream, buf, size);
    if (r > (int64_t) size) {
        return -EIO;
    }
    return r >= 0 ? (ssize_t) r : sim_model_errno(r);
}

static int
sim_model_precopy_info(SimSession *s, uint64_t *ret_initial, uint64_t *ret_dirty)
{
    const struct vfio_migd_sim_model *m = s->dev->model.ops;
    uint64_t initial = 0, dirty = 0;
    int32_t r;

    if (m->stream_precopy_info) {
        r = m->stream_precopy_info(s->mstream, &initial, &dirty);
        if (r != 0) {
            return sim_model_errno(r);
        }
    }
    *ret_initial = initial;
    *ret_dirty = dirty;
    return 0;
}

/* The model's part of arc @from -> @to, before any of the sim's: its arc hook, the saving
 * session moving on without a new fd, the final check of RESUMING -> STOP. On failure the
 * sim has changed nothing (what the model did to itself is the model's). */
static int
sim_model_arc(SimDevice *d, DeviceState from, DeviceState to)
{
    const struct vfio_migd_sim_model *m = d->model.ops;
    int32_t r = 0;

    if (!m) {
        return 0;
    }
    if (m->arc) {
        r = m->arc(d->mstate, (uint32_t) from, (uint32_t) to);
    }
    if (r == 0 && sim_model_streams(d) && d->session && fsm_state_is_saving(from) &&
        fsm_state_is_saving(to) && m->stream_advance) {
        r = m->stream_advance(d->session->mstream, (uint32_t) from, (uint32_t) to);
    }
    if (r == 0 && sim_model_streams(d) && from == DEVICE_STATE_RESUMING &&
        to == DEVICE_STATE_STOP) {
        r = d->session && m->stream_finish ? m->stream_finish(d->session->mstream)
            : d->session ? 0 : -EINVAL;
    }
    return r == 0 ? 0 : sim_model_errno(r);
}

/* ---- SessionOps */

/* data_rate: a device whose firmware moves its state slowly takes this long for @n bytes
 * (the read or write blocks, as a driver's does while the device copies). */
static void
sim_pace(const SimDevice *d, ssize_t n)
{
    uint64_t ns;
    struct timespec ts;

    if (d->cfg.data_rate == 0 || n <= 0) {
        return;
    }
    ns = (uint64_t) n * UINT64_C(1000000000) / d->cfg.data_rate;
    ts = (struct timespec){.tv_sec = (time_t) (ns / 1000000000u),
                           .tv_nsec = (long) (ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
        continue;
    }
}

static ssize_t
sim_session_read(DataSession *ds, void *buf, size_t size)
{
    SimSession *s = (SimSession *) ds;
    SimDevice *d = s->dev;
    ssize_t r;

    if (s->kind == SIM_SESSION_RESUME) {
        return -EBADF; /* the resuming fd is O_WRONLY: the VFS refuses before the driver */
    }
    (void) pthread_mutex_lock(&d->lock);
    if (!s->live) {
        r = -ENODEV;
    } else if (sim_model_streams(d)) {
        r = sim_model_read(s, buf, size);
    } else {
        sim_dirty_accrue(s);
        r = sim_save_produce(s, buf, size);
    }
    (void) pthread_mutex_unlock(&d->lock);
    sim_pace(d, r);
    return r;
}

static ssize_t
sim_session_write(DataSession *ds, const void *buf, size_t size)
{
    SimSession *s = (SimSession *) ds;
    SimDevice *d = s->dev;
    ssize_t r;

    if (s->kind != SIM_SESSION_RESUME) {
        return -EBADF; /* saving fds are O_RDONLY */
    }
    (void) pthread_mutex_lock(&d->lock);
    if (!s->live) {
        r = -ENODEV;
    } else if (sim_model_streams(d)) {
        r = sim_model_write(s, buf, size); /* what a failed write leaves is the driver's */
    } else if (s->broken) {
        r = -EIO;
    } else {
        r = sim_resume_write(s, buf, size);
    }
    (void) pthread_mutex_unlock(&d->lock);
    sim_pace(d, r);
    return r;
}

/* VFIO_MIG_GET_PRECOPY_INFO. The order of the checks is mtty's and mlx5's: device state
 * first (-EINVAL), then whether this fd is still the live one (-ENODEV). A freed device keeps
 * its last state, as the kernel's does after close_device. */
static int
sim_session_precopy_info(DataSession *ds, uint64_t *ret_initial, uint64_t *ret_dirty)
{
    SimSession *s = (SimSession *) ds;
    SimDevice *d = s->dev;
    int r = 0;

    if (s->kind == SIM_SESSION_RESUME) {
        return -ENOTTY; /* the resuming fd has no ioctls at all */
    }
    (void) pthread_mutex_lock(&d->lock);
    if (d->st->state != DEVICE_STATE_PRE_COPY && d->st->state != DEVICE_STATE_PRE_COPY_P2P) {
        r = -EINVAL;
    } else if (!s->live) {
        r = -ENODEV;
    } else if (sim_model_streams(d)) {
        r = sim_model_precopy_info(s, ret_initial, ret_dirty);
    } else {
        /* like mlx5, the ioctl drives the data flow: the running device has dirtied state */
        sim_dirty_accrue(s);
        if (d->st->state == DEVICE_STATE_PRE_COPY && d->cfg.precopy_dirty > 0) {
            d->st->gen += (d->cfg.precopy_dirty + SIM_CHUNK_SIZE - 1) / SIM_CHUNK_SIZE;
        }
        *ret_initial = s->pos < d->cfg.size ? d->cfg.size - s->pos : 0;
        *ret_dirty = sim_pending_bytes(s);
    }
    (void) pthread_mutex_unlock(&d->lock);
    return r;
}

/* close(data_fd): the device keeps its own reference while the session is live. */
static void
sim_session_free(DataSession *ds)
{
    SimSession *s = (SimSession *) ds;
    SimDevice *d = s->dev;

    (void) pthread_mutex_lock(&d->lock);
    s->handle_open = false;
    if (s->token_fd >= 0) {
        (void) close(TAKE_FD(s->token_fd)); /* close(data_fd) */
    }
    if (!s->live) {
        sim_session_destroy(s);
    }
    sim_device_unlock(d);
}

/* Immutable from the session's opening to its handle's closing, when only the handle's owner
 * still calls: no lock. */
static int
sim_session_fd(DataSession *ds)
{
    return ((SimSession *) ds)->token_fd;
}

static const SessionOps sim_session_ops = {
    .read = sim_session_read,
    .write = sim_session_write,
    .precopy_info = sim_session_precopy_info,
    .free = sim_session_free,
    .fd = sim_session_fd,
};

/* ---- arcs and the SET walk */

static void
sim_sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000L};

    if (ms == 0) {
        return;
    }
    /* clock_nanosleep returns the error number; on EINTR @ts holds the time still owed */
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
        continue;
    }
}

/* Leaving the running side is "work": the content changes on every arc that stops it. */
static bool
sim_arc_stops_device(DeviceState from, DeviceState to)
{
    return (to == DEVICE_STATE_STOP || to == DEVICE_STATE_STOP_COPY) &&
           (fsm_state_is_running(from) || fsm_state_is_p2p(from));
}

/* Counts a run of the configured failing arc; returns its errno when this run must fail. */
static int
sim_fault_check(SimDevice *d, DeviceState from, DeviceState to)
{
    const SimConfig *c = &d->cfg;

    if (!c->fail_set || c->fail_arc.from != from || c->fail_arc.to != to) {
        return 0;
    }
    if (d->st->fail_runs < UINT_MAX) {
        d->st->fail_runs++;
    }
    if (c->fail_nth != 0 && d->st->fail_runs != (unsigned) c->fail_nth) {
        return 0;
    }
    return -c->fail_errno;
}

/* True when the name @path exists (a dangling symlink counts: it is the name that releases). */
static bool
sim_path_exists(const char *path)
{
    struct stat st;

    return fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* A run of the held arc waits, d->lock held as a slow firmware command holds the driver's
 * state mutex, until hold_until exists. It is polled: the wait must end by itself even if the
 * directory goes away, and a few milliseconds of delay after the release cost nothing. After
 * hold_max_ms the arc fails with -ETIMEDOUT and has no effect, as an mlx5 firmware command
 * that never completes fails (mlx5_cmd_exec). */
static int
sim_hold(SimDevice *d, DeviceState from, DeviceState to)
{
    const SimConfig *c = &d->cfg;
    uint64_t deadline;
    int r = 0;

    if (!c->hold_set || c->hold_arc.from != from || c->hold_arc.to != to) {
        return 0;
    }
    deadline = clock_now_ns() + (uint64_t) c->hold_max_ms * 1000000u;
    atomic_store(&d->holding, true);
    while (!sim_path_exists(c->hold_until)) {
        if (clock_now_ns() >= deadline) {
            r = -ETIMEDOUT;
            break;
        }
        sim_sleep_ms(SIM_HOLD_POLL_MS);
    }
    atomic_store(&d->holding, false);
    return r;
}

/* Runs the single arc @from -> @to. On failure nothing has changed. */
static int
sim_run_arc(SimDevice *d, DeviceState from, DeviceState to, SimSession **ret_opened)
{
    int r;

    *ret_opened = NULL;
    r = sim_model_arc(d, from, to);
    if (r < 0) {
        return r;
    }
    if (from == DEVICE_STATE_PRE_COPY && d->session) {
        sim_dirty_accrue(d->session); /* it dirtied until it stops running */
    }
    if (from == DEVICE_STATE_RESUMING && to == DEVICE_STATE_STOP && !sim_model_streams(d)) {
        r = sim_resume_finish(d, d->session);
        if (r < 0) {
            return r;
        }
    }
    if (fsm_arc_opens_session(from, to)) {
        /* no opening arc also stops the device or closes a session (fsm.h), so the order of
         * this and the two effects below is free */
        r = sim_session_open(d, from, to, ret_opened);
        if (r < 0) {
            return r;
        }
    }
    if (sim_arc_stops_device(from, to)) {
        d->st->gen++;
    }
    if (fsm_arc_closes_session(from, to)) {
        sim_session_end(d);
    }
    if (to == DEVICE_STATE_PRE_COPY && d->session) {
        d->session->dirty_ns = sim_clock(); /* back from PRE_COPY_P2P: quiesced until now */
    }
    return 0;
}

/* A failed arc the driver can neither complete nor undo (pds): ERROR, fds dead. */
static void
sim_enter_error(SimDevice *d)
{
    TRACE(sim_enter_error, "%s: %s -> error", d->name, fsm_state_name(d->st->state));
    d->st->state = DEVICE_STATE_ERROR;
    sim_session_end(d);
}

/* The driver loop of kernel-uapi.md §6.4, d->lock held. Also validates a request that needs
 * no arc, as core/fsm does, so SET(ERROR) in ERROR is refused. */
static int
sim_walk(SimDevice *d, DeviceState target, SimSession **ret_opened)
{
    SimSession *opened = NULL;
    DeviceState next;
    int r;

    for (;;) {
        r = fsm_next_hop(d->st->state, target, d->cfg.flags, &next, NULL);
        if (r < 0 || d->st->state == target) {
            break;
        }
        if (opened) {
            /* a data fd on an interior arc: the kernel WARNs, drops the file and fails; the
             * table makes this unreachable */
            opened->handle_open = false;
            sim_session_end(d);
            return -EINVAL;
        }
        sim_sleep_ms((unsigned) d->cfg.latency_ms);
        r = sim_hold(d, d->st->state, next);
        if (r < 0) {
            return r; /* the arc never ran: the device stays at the last completed hop */
        }
        r = sim_fault_check(d, d->st->state, next);
        if (r < 0) {
            if (d->cfg.fail_to_error) {
                sim_enter_error(d);
            }
            return r;
        }
        r = sim_run_arc(d, d->st->state, next, &opened);
        if (r < 0) {
            return r;
        }
        TRACE(sim_set_state, "%s: %s -> %s", d->name, fsm_state_name(d->st->state),
              fsm_state_name(next));
        d->st->state = next;
    }
    if (r < 0) {
        return r;
    }
    *ret_opened = opened;
    return 0;
}

/* ---- BackendOps */

static int
sim_get_state(BackendDevice *bd, DeviceState *ret_state)
{
    SimDevice *d = (SimDevice *) bd;

    if (!d->cfg.migratable) {
        return -ENOTTY;
    }
    (void) pthread_mutex_lock(&d->lock);
    *ret_state = d->st->state;
    (void) pthread_mutex_unlock(&d->lock);
    return 0;
}

static int
sim_set_state(BackendDevice *bd, DeviceState target, DataSession **ret_session)
{
    SimDevice *d = (SimDevice *) bd;
    SimSession *opened = NULL;
    int r;

    if (!d->cfg.migratable) {
        return -ENOTTY;
    }
    (void) pthread_mutex_lock(&d->lock);
    r = sim_walk(d, target, &opened);
    if (r >= 0 && opened && !ret_session) {
        opened->handle_open = false; /* nobody will hold it: the device owns it alone */
    }
    (void) pthread_mutex_unlock(&d->lock);
    if (r < 0) {
        return r;
    }
    /* still valid after unlocking: only session_free() may drop an object with an open handle */
    if (ret_session) {
        *ret_session = opened ? &opened->base : NULL;
    }
    return 0;
}

/* VFIO_DEVICE_RESET: RUNNING, fds dead; the content stays (mtty keeps its UART registers). */
static int
sim_reset(BackendDevice *bd)
{
    SimDevice *d = (SimDevice *) bd;

    (void) pthread_mutex_lock(&d->lock);
    TRACE(sim_reset, "%s: %s -> running", d->name, fsm_state_name(d->st->state));
    sim_session_end(d);
    d->st->state = DEVICE_STATE_RUNNING;
    (void) pthread_mutex_unlock(&d->lock);
    return 0;
}

/* MIG_DATA_SIZE: the full stream length in every state, like mtty. */
static int
sim_data_size(BackendDevice *bd, uint64_t *ret_bytes)
{
    SimDevice *d = (SimDevice *) bd;

    int r = 0;

    if (!d->cfg.migratable) {
        return -ENOTTY;
    }
    if (!d->model.ops || !d->model.ops->data_size) {
        *ret_bytes = d->cfg.size;
        return 0;
    }
    (void) pthread_mutex_lock(&d->lock);
    r = d->model.ops->data_size(d->mstate, (uint32_t) d->st->state, ret_bytes);
    (void) pthread_mutex_unlock(&d->lock);
    return r == 0 ? 0 : sim_model_errno(r);
}


static int
sim_describe(BackendDevice *bd, BackendProperty *props, size_t max)
{
    SimDevice *d = (SimDevice *) bd;
    const SimConfig *c = &d->cfg;
    size_t n = 0;

    (void) pthread_mutex_lock(&d->lock);
    backend_property_add(props, max, &n, "model", "%s", sim_model_name(d));
    if (!sim_model_streams(d)) {
        backend_property_add(props, max, &n, "digest", "%016" PRIx64,
                             sim_digest(d->st->seed, c->size, d->st->gen));
        backend_property_add(props, max, &n, "size", "%" PRIu64, c->size);
        backend_property_add(props, max, &n, "seed", "%" PRIu64, d->st->seed);
        backend_property_add(props, max, &n, "generation", "%" PRIu64, d->st->gen);
    } else if (d->model.ops->digest) {
        /* the content is the model's: only it can say what a save would carry */
        backend_property_add(props, max, &n, "digest", "%016" PRIx64,
                             d->model.ops->digest(d->mstate));
    }
    backend_property_add(props, max, &n, "latency_ms", "%d", c->latency_ms);
    if (c->pci[0]) {
        backend_property_add(props, max, &n, "device", "%s", c->pci);
        backend_property_add(props, max, &n, "bus", "pci");
    }
    if (c->data_rate > 0) {
        backend_property_add(props, max, &n, "data_rate", "%" PRIu64, c->data_rate);
    }
    if (c->dirty_rate > 0) {
        backend_property_add(props, max, &n, "dirty_rate", "%" PRIu64, c->dirty_rate);
    }
    if (c->fail_set) {
        char nth[32] = "";

        if (c->fail_nth > 0) {
            (void) snprintf(nth, sizeof(nth), " nth=%d", c->fail_nth);
        }
        backend_property_add(props, max, &n, "fault", "%s->%s errno=%d%s%s", fsm_state_name(c->fail_arc.from),
                 fsm_state_name(c->fail_arc.to), c->fail_errno, nth,
                 c->fail_to_error ? " to_error" : "");
    }
    if (c->hold_set) {
        backend_property_add(props, max, &n, "hold", "%s->%s until %s (at most %d ms)",
                             fsm_state_name(c->hold_arc.from), fsm_state_name(c->hold_arc.to),
                             c->hold_until, c->hold_max_ms);
    }
    (void) pthread_mutex_unlock(&d->lock);
    return (int) n;
}

/* What another device must match to take this one's state: a sim device's content model is
 * fixed by its model and size (a stream of another size is refused by the resuming device),
 * so both must be equal. A vendor model's streams are its own: what else must match is its
 * plugin's descriptor's business. */
static int
sim_compat_descriptor(BackendDevice *bd, CompatDescriptor *ret)
{
    SimDevice *d = (SimDevice *) bd;
    char size[32];
    int r;

    (void) snprintf(size, sizeof(size), "%" PRIu64, d->cfg.size);
    r = compat_descriptor_add(ret, "model", COMPAT_RULE_EQUAL, sim_model_name(d));
    if (r >= 0 && !sim_model_streams(d)) {
        r = compat_descriptor_add(ret, "size", COMPAT_RULE_EQUAL, size);
    }
    return r;
}

/* Who the device says it is (pci=, pci_id=, driver=, mdev_type=), for plugins to claim it.
 * Immutable after creation: no lock needed. */
static int
sim_identity(BackendDevice *bd, const char *sysfs_root, BackendIdentity *ret)
{
    const SimDevice *d = (const SimDevice *) bd;
    const SimConfig *c = &d->cfg;

    (void) sysfs_root; /* a sim device is in no sysfs tree */
    *ret = (BackendIdentity){.vendor_id = c->vendor_id, .device_id = c->device_id,
                             .sim_options = d->options,
                             .sim_model = d->model.ops ? d->model.ops->name : NULL};
    (void) snprintf(ret->bus, sizeof(ret->bus), "%s", c->pci[0] ? "pci" : c->mdev_type[0] ? "mdev" : "");
    (void) snprintf(ret->address, sizeof(ret->address), "%s", c->pci);
    (void) snprintf(ret->driver, sizeof(ret->driver), "%s", c->driver);
    (void) snprintf(ret->mdev_type, sizeof(ret->mdev_type), "%s", c->mdev_type);
    (void) snprintf(ret->parent, sizeof(ret->parent), "%s", c->pf);
    return 0;
}

/* Closing the device fd: the live session dies; handles the caller still holds keep the
 * device struct alive until they are freed. */
static void
sim_free(BackendDevice *bd)
{
    SimDevice *d = (SimDevice *) bd;

    /* Closing the device fd disables its interrupts (vfio_pci_core_close_device). */
    sim_irq_free(TAKE_PTR(d->irq));
    (void) pthread_mutex_lock(&d->lock);
    d->refs--;
    sim_session_end(d);
    sim_device_unlock(d);
}

/* The memfd that holds what the device remembers: all a sim device needs to survive. */
static int
sim_store_fds(BackendDevice *bd, BackendFd *ret, size_t max)
{
    SimDevice *d = (SimDevice *) bd;

    if (max < 1) {
        return -ENOBUFS;
    }
    ret[0] = (BackendFd){.role = "sim-state", .fd = d->state_fd};
    return 1;
}

/* A token back from the fd store is this device's when it is sealed, holds a SimToken, and
 * names this device's state memfd. */
static int
sim_data_fd_check(BackendDevice *bd, int fd, char *err, size_t err_size)
{
    int seals = fcntl(fd, F_GET_SEALS);
    SimToken want, got;
    struct stat sb;

    if (seals < 0 || !(seals & F_SEAL_WRITE) || fstat(fd, &sb) < 0 ||
        sb.st_size != (off_t) sizeof(got)) {
        (void) snprintf(err, err_size, "it is not a sealed sim data token");
        return -EBADF;
    }
    if (pread(fd, &got, sizeof(got), 0) != (ssize_t) sizeof(got) ||
        sim_token_of((SimDevice *) bd, &want) < 0 || memcmp(&got, &want, sizeof(got)) != 0) {
        (void) snprintf(err, err_size, "it is a sim data token of another device");
        return -EBADF;
    }
    return 0;
}

static int
sim_irq_info_op(BackendDevice *bd, uint32_t index, uint32_t *ret_flags, uint32_t *ret_count)
{
    return sim_irq_info(((SimDevice *) bd)->irq, index, ret_flags, ret_count);
}

static int
sim_irq_readopt_op(BackendDevice *bd, uint32_t index, uint32_t start, uint32_t count,
                   const int32_t *fds)
{
    return sim_irq_readopt(((SimDevice *) bd)->irq, index, start, count, fds);
}

static int
sim_set_irqs(BackendDevice *bd, uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
             const void *data)
{
    return sim_irq_set(((SimDevice *) bd)->irq, flags, index, start, count, data);
}

/* The sim has no device fd a VMM could use: a read-only view of the state memfd stands for it
 * (reopened once, so the VMM cannot change the device's state through it). */
static int
sim_vmm_fds(BackendDevice *bd, int *ret_device, int *ret_dma)
{
    SimDevice *d = (SimDevice *) bd;
    char path[64];

    if (d->vmm_view < 0) {
        (void) snprintf(path, sizeof(path), "/proc/self/fd/%d", d->state_fd);
        d->vmm_view = open(path, O_RDONLY | O_CLOEXEC);
        if (d->vmm_view < 0) {
            return -errno;
        }
    }
    *ret_device = d->vmm_view;
    *ret_dma = -1;
    return 0;
}

static const BackendOps sim_ops = {
    .name = "sim",
    .get_state = sim_get_state,
    .set_state = sim_set_state,
    .reset = sim_reset,
    .data_size = sim_data_size,
    .describe = sim_describe,
    .compat_descriptor = sim_compat_descriptor,
    .identity = sim_identity,
    .store_fds = sim_store_fds,
    .data_fd_check = sim_data_fd_check,
    .irq_info = sim_irq_info_op,
    .set_irqs = sim_set_irqs,
    .irq_readopt = sim_irq_readopt_op,
    .req_arm = backend_req_arm,
    .vmm_fds = sim_vmm_fds,
    .free = sim_free,
};

void
sim_set_clock(sim_clock_fn now)
{
    sim_clock = now ? now : clock_now_ns;
}

bool
sim_device_holding(BackendDevice *bd)
{
    SimDevice *d = (SimDevice *) bd;

    return bd && bd->ops == &sim_ops && atomic_load(&d->holding);
}

/* ---- options */

static int sim_error(char *err, size_t err_size, const char *fmt, ...) _printf_(3, 4);

/* Formats the one-line reason into @err (when given); returns -EINVAL for the caller. */
static int
sim_error(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err && err_size > 0) {
        va_start(ap, fmt);
        (void) vsnprintf(err, err_size, fmt, ap);
        va_end(ap);
        /* The sentences quote option values from an API request: nothing unprintable. */
        for (char *p = err; *p; p++) {
            *p = isprint((unsigned char) *p) ? *p : '?';
        }
    }
    return -EINVAL;
}

static int
sim_parse_bool(const char *v, bool *ret)
{
    if (strcmp(v, "0") != 0 && strcmp(v, "1") != 0) {
        return -EINVAL;
    }
    *ret = v[0] == '1';
    return 0;
}

/* Decimal, or hexadecimal with 0x; no sign, no blanks. */
static int
sim_parse_u64(const char *v, uint64_t *ret)
{
    int base = 10;
    unsigned long long x;
    char *end;

    if (strncasecmp(v, "0x", 2) == 0) {
        base = 16;
        v += 2;
    }
    if (!isxdigit((unsigned char) v[0])) {
        return -EINVAL;
    }
    errno = 0;
    x = strtoull(v, &end, base);
    if (errno != 0 || *end != '\0') {
        return -EINVAL;
    }
    *ret = x;
    return 0;
}

typedef int (*SimOptionParser)(SimConfig *c, const char *v, char *err, size_t err_size);

static int
sim_opt_flags(SimConfig *c, const char *v, char *err, size_t err_size)
{
    if (fsm_flags_from_string(v, &c->flags) < 0 || !fsm_flags_valid(c->flags)) {
        return sim_error(err, err_size,
                         "flags: '%s' is not a legal flag set (use stop_copy, stop_copy+p2p, "
                         "stop_copy+pre_copy or stop_copy+p2p+pre_copy)",
                         v);
    }
    return 0;
}

static int
sim_opt_migratable(SimConfig *c, const char *v, char *err, size_t err_size)
{
    if (sim_parse_bool(v, &c->migratable) < 0) {
        return sim_error(err, err_size, "migratable: '%s' is not 0 or 1", v);
    }
    return 0;
}

static int
sim_opt_size(SimConfig *c, const char *v, char *err, size_t err_size)
{
    int r = strutil_parse_size(v, &c->size);

    if (r == -EINVAL) {
        return sim_error(err, err_size, "size: '%s' is not a size (use e.g. 4096, 64K, 16M, 1G)",
                         v);
    }
    if (r < 0 || c->size < SIM_SIZE_MIN || c->size > SIM_SIZE_MAX) {
        return sim_error(err, err_size, "size: '%s' is out of range (64 to 64G)", v);
    }
    return 0;
}

/* A whole number of option @key within [@min, @max]; @what says what it counts, for the
 * refusal. */
static int
sim_parse_bounded(const char *key, const char *what, const char *v, int min, int max,
                  int *ret, char *err, size_t err_size)
{
    long long x;

    if (strutil_parse_int_bounded(v, min, max, &x) < 0) {
        return sim_error(err, err_size, "%s: '%s' is not %s from %d to %d", key, v, what, min,
                         max);
    }
    *ret = (int) x;
    return 0;
}

static int
sim_opt_latency(SimConfig *c, const char *v, char *err, size_t err_size)
{
    return sim_parse_bounded("latency_ms", "an integer", v, 0, SIM_LATENCY_MAX_MS,
                             &c->latency_ms, err, err_size);
}

static int
sim_opt_intx(SimConfig *c, const char *v, char *err, size_t err_size)
{
    int x = 0;
    int r = sim_parse_bounded("intx", "a line count", v, 0, 1, &x, err, err_size);
    c->irq.intx = (uint32_t) x;
    return r;
}

static int
sim_opt_msi(SimConfig *c, const char *v, char *err, size_t err_size)
{
    int x = 0;
    int r = sim_parse_bounded("msi", "a vector count", v, 0, 32, &x, err, err_size);
    c->irq.msi = (uint32_t) x;
    return r;
}

static int
sim_opt_msix(SimConfig *c, const char *v, char *err, size_t err_size)
{
    int x = 0;
    int r = sim_parse_bounded("msix", "a vector count", v, 0, IRQ_MAX_VECTORS, &x, err, err_size);
    c->irq.msix = (uint32_t) x;
    return r;
}

/* req=1: the device has vfio-pci's REQ interrupt (the kernel asking for it back); mtty, the
 * default here, has none. */
static int
sim_opt_req(SimConfig *c, const char *v, char *err, size_t err_size)
{
    bool req = false;

    if (sim_parse_bool(v, &req) < 0) {
        return sim_error(err, err_size, "req: '%s' is not 0 or 1", v);
    }
    c->irq.req = req ? 1 : 0;
    return 0;
}

static int
sim_opt_msix_dynamic(SimConfig *c, const char *v, char *err, size_t err_size)
{
    if (sim_parse_bool(v, &c->irq.msix_dynamic) < 0) {
        return sim_error(err, err_size, "msix_dynamic: '%s' is not 0 or 1", v);
    }
    return 0;
}

/* "FROM->TO" with names fsm_state_from_name() accepts. */
static int
sim_parse_arc(const char *v, FsmArc *ret)
{
    const char *arrow = strstr(v, "->");
    char from[32];
    FsmArc arc;

    if (!arrow || (size_t) (arrow - v) >= sizeof(from)) {
        return -EINVAL;
    }
    memcpy(from, v, (size_t) (arrow - v));
    from[arrow - v] = '\0';
    arc.from = fsm_state_from_name(from);
    arc.to = fsm_state_from_name(arrow + 2);
    if (arc.from < 0 || arc.to < 0) {
        return -EINVAL;
    }
    *ret = arc;
    return 0;
}

/* fail_arc, hold_arc: whether the arc exists depends on the flags, sim_config_check() looks. */
static int
sim_parse_arc_option(const char *key, const char *v, FsmArc *ret, bool *ret_set, char *err,
                     size_t err_size)
{
    if (sim_parse_arc(v, ret) < 0) {
        return sim_error(err, err_size,
                         "%s: '%s' is not FROM->TO with two state names (e.g. stop->stop_copy)",
                         key, v);
    }
    *ret_set = true;
    return 0;
}

static int
sim_opt_fail_arc(SimConfig *c, const char *v, char *err, size_t err_size)
{
    return sim_parse_arc_option("fail_arc", v, &c->fail_arc, &c->fail_set, err, err_size);
}

static int
sim_opt_fail_errno(SimConfig *c, const char *v, char *err, size_t err_size)
{
    return sim_parse_bounded("fail_errno", "an errno", v, 1, SIM_ERRNO_MAX, &c->fail_errno, err,
                             err_size);
}

static int
sim_opt_fail_nth(SimConfig *c, const char *v, char *err, size_t err_size)
{
    return sim_parse_bounded("fail_nth", "a count (0: every time)", v, 0, INT_MAX, &c->fail_nth,
                             err, err_size);
}

static int
sim_opt_fail_to_error(SimConfig *c, const char *v, char *err, size_t err_size)
{
    if (sim_parse_bool(v, &c->fail_to_error) < 0) {
        return sim_error(err, err_size, "fail_to_error: '%s' is not 0 or 1", v);
    }
    return 0;
}

static int
sim_opt_hold_arc(SimConfig *c, const char *v, char *err, size_t err_size)
{
    return sim_parse_arc_option("hold_arc", v, &c->hold_arc, &c->hold_set, err, err_size);
}

/* Absolute: the daemon's working directory is not the caller's. Only its existence is ever
 * looked at; the daemon neither opens nor creates it. */
static int
sim_opt_hold_until(SimConfig *c, const char *v, char *err, size_t err_size)
{
    if (v[0] != '/' || strlen(v) >= sizeof(c->hold_until)) {
        return sim_error(err, err_size,
                         "hold_until: '%s' is not an absolute path (the file whose creation "
                         "releases the held arc, e.g. /tmp/t/go)",
                         v);
    }
    strcpy(c->hold_until, v);
    return 0;
}

static int
sim_opt_hold_max_ms(SimConfig *c, const char *v, char *err, size_t err_size)
{
    return sim_parse_bounded("hold_max_ms", "an integer", v, 1, SIM_HOLD_MAX_MS_MAX,
                             &c->hold_max_ms, err, err_size);
}

static int
sim_opt_precopy_end(SimConfig *c, const char *v, char *err, size_t err_size)
{
    if (strcmp(v, "zero") == 0 || strcmp(v, "enomsg") == 0) {
        c->precopy_enomsg = v[0] == 'e';
        return 0;
    }
    return sim_error(err, err_size, "precopy_end: '%s' is neither 'zero' nor 'enomsg'", v);
}

static int
sim_opt_precopy_dirty(SimConfig *c, const char *v, char *err, size_t err_size)
{
    if (strutil_parse_size(v, &c->precopy_dirty) < 0 || c->precopy_dirty > SIM_SIZE_MAX) {
        return sim_error(err, err_size, "precopy_dirty: '%s' is not a size from 0 to 64G", v);
    }
    return 0;
}

static int
sim_opt_dirty_rate(SimConfig *c, const char *v, char *err, size_t err_size)
{
    if (strutil_parse_size(v, &c->dirty_rate) < 0 || c->dirty_rate > SIM_SIZE_MAX) {
        return sim_error(err, err_size, "dirty_rate: '%s' is not a size from 0 to 64G "
                         "(bytes per second)", v);
    }
    return 0;
}

static int
sim_opt_data_rate(SimConfig *c, const char *v, char *err, size_t err_size)
{
    if (strutil_parse_size(v, &c->data_rate) < 0 || c->data_rate > SIM_SIZE_MAX ||
        (c->data_rate > 0 && c->data_rate < SIM_DATA_RATE_MIN)) {
        return sim_error(err, err_size, "data_rate: '%s' is not 0 or a size from 4K to 64G "
                         "(bytes per second)", v);
    }
    return 0;
}

static int
sim_opt_seed(SimConfig *c, const char *v, char *err, size_t err_size)
{
    if (sim_parse_u64(v, &c->seed) < 0) {
        return sim_error(err, err_size,
                         "seed: '%s' is not an unsigned 64-bit number (decimal or 0x...)", v);
    }
    return 0;
}

static int
sim_opt_initial_state(SimConfig *c, const char *v, char *err, size_t err_size)
{
    c->initial_state = fsm_state_from_name(v);
    if (c->initial_state < 0) {
        return sim_error(err, err_size, "initial_state: '%s' is not a state name (e.g. stop)", v);
    }
    return 0;
}

/* A PCI address the device reports as a kernel PCI device does ("device", "bus" = pci), so
 * that tools placing devices by address (the libvirt hook) can be tested without hardware.
 * Checked and spelled as the kernel back-end checks --pci. */
static int
sim_opt_pci(SimConfig *c, const char *v, char *err, size_t err_size)
{
    if (kernel_sysfs_parse_bdf(v, c->pci, sizeof(c->pci)) < 0) {
        return sim_error(err, err_size, "pci: '%s' is not a PCI address (use e.g. 0000:3b:00.2)", v);
    }
    return 0;
}

/* The PF a VF belongs to: what a plugin's per-PF limit counts (mlx5: 4 VFs of a PF). */
static int
sim_opt_pf(SimConfig *c, const char *v, char *err, size_t err_size)
{
    if (kernel_sysfs_parse_bdf(v, c->pf, sizeof(c->pf)) < 0) {
        return sim_error(err, err_size, "pf: '%s' is not a PCI address (use e.g. 0000:3b:00.0)", v);
    }
    return 0;
}

/* A driver or mdev type name as sysfs spells them: [A-Za-z0-9_.-]+. */
static int
sim_opt_id_text(char *out, const char *key, const char *v, char *err, size_t err_size)
{
    size_t n = strlen(v);

    if (n == 0 || n >= SIM_ID_TEXT_MAX || strspn(v, "abcdefghijklmnopqrstuvwxyz"
                                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != n) {
        return sim_error(err, err_size, "%s: '%s' is not a name of 1 to %d letters, digits, "
                         "'_', '.' or '-'", key, v, SIM_ID_TEXT_MAX - 1);
    }
    memcpy(out, v, n + 1);
    return 0;
}

static int
sim_opt_driver(SimConfig *c, const char *v, char *err, size_t err_size)
{
    return sim_opt_id_text(c->driver, "driver", v, err, err_size);
}

static int
sim_opt_label(SimConfig *c, const char *v, char *err, size_t err_size)
{
    size_t n = strlen(v);

    if (n == 0 || n >= SIM_ID_TEXT_MAX || strspn(v, "abcdefghijklmnopqrstuvwxyz"
                                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:/-") != n) {
        return sim_error(err, err_size, "label: '%s' is not 1 to %d letters, digits, '_', "
                         "'.', ':', '/' or '-'", v, SIM_ID_TEXT_MAX - 1);
    }
    memcpy(c->label, v, n + 1);
    return 0;
}

static int
sim_opt_mdev_type(SimConfig *c, const char *v, char *err, size_t err_size)
{
    return sim_opt_id_text(c->mdev_type, "mdev_type", v, err, err_size);
}

/* model=: which driver the device behaves like; the manager found the plugin whose sim model
 * it names (sim_device_new_model()), sim_config_check() checks the two agree. */
static int
sim_opt_model(SimConfig *c, const char *v, char *err, size_t err_size)
{
    return sim_opt_id_text(c->model, "model", v, err, err_size);
}

/* "15b3:101e": the PCI vendor and device IDs, four hex digits each. */
static int
sim_opt_pci_id(SimConfig *c, const char *v, char *err, size_t err_size)
{
    unsigned vendor, device;
    int n = 0;

    if (strlen(v) != 9 || strspn(v, "0123456789abcdefABCDEF:") != 9 || v[4] != ':' ||
        sscanf(v, "%4x:%4x%n", &vendor, &device, &n) != 2 || n != 9) {
        return sim_error(err, err_size, "pci_id: '%s' is not VENDOR:DEVICE in hex (e.g. "
                         "15b3:101e)", v);
    }
    c->vendor_id = vendor;
    c->device_id = device;
    return 0;
}

/* @needs: an option that means nothing without another one names it. */
static const struct {
    const char *key;
    SimOptionParser parse;
    const char *needs;
} sim_options[] = {
    {"flags", sim_opt_flags, NULL},
    {"migratable", sim_opt_migratable, NULL},
    {"size", sim_opt_size, NULL},
    {"latency_ms", sim_opt_latency, NULL},
    {"fail_arc", sim_opt_fail_arc, NULL},
    {"fail_errno", sim_opt_fail_errno, "fail_arc"},
    {"fail_nth", sim_opt_fail_nth, "fail_arc"},
    {"fail_to_error", sim_opt_fail_to_error, "fail_arc"},
    {"hold_arc", sim_opt_hold_arc, "hold_until"},
    {"hold_until", sim_opt_hold_until, "hold_arc"},
    {"hold_max_ms", sim_opt_hold_max_ms, "hold_arc"},
    {"precopy_end", sim_opt_precopy_end, NULL},
    {"precopy_dirty", sim_opt_precopy_dirty, NULL},
    {"dirty_rate", sim_opt_dirty_rate, NULL},
    {"data_rate", sim_opt_data_rate, NULL},
    {"seed", sim_opt_seed, NULL},
    {"initial_state", sim_opt_initial_state, NULL},
    {"pci", sim_opt_pci, NULL},
    {"driver", sim_opt_driver, NULL},
    {"pci_id", sim_opt_pci_id, "pci"},
    {"pf", sim_opt_pf, "pci"},
    {"mdev_type", sim_opt_mdev_type, "driver"},
    {"label", sim_opt_label, NULL},
    {"model", sim_opt_model, NULL},
    {"intx", sim_opt_intx, NULL},
    {"msi", sim_opt_msi, NULL},
    {"msix", sim_opt_msix, NULL},
    {"msix_dynamic", sim_opt_msix_dynamic, "msix"},
    {"req", sim_opt_req, NULL},
};
static_assert(ELEMENTSOF(sim_options) < 32, "the seen-mask in sim_config_parse is 32 bits");

static int
sim_unknown_option(const char *key, char *err, size_t err_size)
{
    char known[256] = "";
    size_t used = 0;

    for (size_t i = 0; i < ELEMENTSOF(sim_options) && used < sizeof(known); i++) {
        int n =
            snprintf(known + used, sizeof(known) - used, "%s%s", i ? ", " : "", sim_options[i].key);
        used += n > 0 ? (size_t) n : 0;
    }
    return sim_error(err, err_size, "unknown option '%s' (known: %s)", key, known);
}

static bool
sim_option_seen(uint32_t seen, const char *key)
{
    for (size_t i = 0; i < ELEMENTSOF(sim_options); i++) {
        if (strcmp(sim_options[i].key, key) == 0) {
            return seen & (UINT32_C(1) << i);
        }
    }
    return false;
}

/* A fault or hold arc must be one the kernel's driver loop runs with these flags. */
static int
sim_check_arc(const char *key, FsmArc arc, uint32_t flags, const char *flags_name, char *err,
              size_t err_size)
{
    DeviceState next;

    if (arc.from == arc.to || fsm_next_hop(arc.from, arc.to, flags, &next, NULL) < 0 ||
        next != arc.to) {
        return sim_error(err, err_size,
                         "%s: '%s->%s' is not an arc of the flags=%s state machine (the "
                         "kernel never runs it)",
                         key, fsm_state_name(arc.from), fsm_state_name(arc.to), flags_name);
    }
    return 0;
}

/* Options a vendor model takes the place of: flags (the model's are its driver's), and with
 * its own streams everything about the sim's content model. */
static const struct {
    const char *key;
    bool streams_only;
} sim_model_replaces[] = {
    {"flags", false},         {"size", true},          {"seed", true},
    {"precopy_end", true},    {"precopy_dirty", true}, {"dirty_rate", true},
};

static int
sim_config_check_model(const SimConfig *c, const SimModel *model, uint32_t seen, char *err,
                       size_t err_size)
{
    if (!model || !model->ops) {
        if (c->model[0] && strcmp(c->model, "generic") != 0) {
            return sim_error(err, err_size, "model: '%s' is not a model of the sim back-end "
                             "(known: generic; a vendor's comes with its plugin)", c->model);
        }
        return 0;
    }
    if (strcmp(c->model, model->ops->name) != 0) {
        return sim_error(err, err_size, "model: '%s' is not the model '%s' the device is "
                         "created with", c->model, model->ops->name);
    }
    for (size_t i = 0; i < ELEMENTSOF(sim_model_replaces); i++) {
        if (sim_option_seen(seen, sim_model_replaces[i].key) &&
            (!sim_model_replaces[i].streams_only || model->ops->stream_open)) {
            return sim_error(err, err_size, "%s: has no effect with model=%s (the model "
                             "decides it as its driver does); leave %s out",
                             sim_model_replaces[i].key, model->ops->name,
                             sim_model_replaces[i].key);
        }
    }
    return 0;
}

/* Checks that need all options: the fault and hold arcs and the initial state depend on the
 * flags; some options need another one. */
static int
sim_config_check(const SimConfig *c, const SimModel *model, uint32_t seen, char *err,
                 size_t err_size)
{
    char fl[64];
    int r;

    r = sim_config_check_model(c, model, seen, err, err_size);
    if (r < 0) {
        return r;
    }

    (void) fsm_flags_to_string(c->flags, fl, sizeof(fl));
    if (c->initial_state != DEVICE_STATE_ERROR &&
        !fsm_state_supported(c->initial_state, c->flags)) {
        return sim_error(err, err_size, "initial_state: '%s' does not exist with flags=%s",
                         fsm_state_name(c->initial_state), fl);
    }
    for (size_t i = 0; i < ELEMENTSOF(sim_options); i++) {
        const char *needs = sim_options[i].needs;

        if ((seen & (UINT32_C(1) << i)) && needs && !sim_option_seen(seen, needs)) {
            return sim_error(err, err_size, "%s: has no effect without %s", sim_options[i].key,
                             needs);
        }
    }
    if (c->fail_set) {
        r = sim_check_arc("fail_arc", c->fail_arc, c->flags, fl, err, err_size);
    }
    if (r >= 0 && c->hold_set) {
        r = sim_check_arc("hold_arc", c->hold_arc, c->flags, fl, err, err_size);
    }
    return r;
}

/* Appends key=value to the model's options (@mo, as large as the whole options string). */
static void
sim_model_option_add(char *mo, const char *key, const char *value)
{
    size_t n = strlen(mo);

    (void) sprintf(mo + n, "%s%s=%s", n ? "," : "", key, value);
}

/* Parses @options into @c and *ret_seen (a bit per sim_options entry). A key the sim does not
 * know goes to @model_opts (NULL: no model, an unknown key is an error); the caller makes it
 * at least as large as @options. */
static int
sim_config_parse(SimConfig *c, const char *options, char *model_opts, uint32_t *ret_seen,
                 char *err, size_t err_size)
{
    const char *cursor = options;
    char key[32], value[128];
    uint32_t seen = 0;
    int r;

    while ((r = strutil_options_next(&cursor, key, sizeof(key), value, sizeof(value))) > 0) {
        size_t i = 0;

        while (i < ELEMENTSOF(sim_options) && strcmp(sim_options[i].key, key) != 0) {
            i++;
        }
        if (i == ELEMENTSOF(sim_options) && model_opts) {
            sim_model_option_add(model_opts, key, value);
            continue;
        }
        if (i == ELEMENTSOF(sim_options)) {
            return sim_unknown_option(key, err, err_size);
        }
        if (seen & (UINT32_C(1) << i)) {
            return sim_error(err, err_size, "option '%s' is given twice", key);
        }
        seen |= UINT32_C(1) << i;
        r = sim_options[i].parse(c, value, err, err_size);
        if (r < 0) {
            return r;
        }
    }
    if (r < 0) {
        return sim_error(err, err_size,
                         "malformed options at '%.40s' (expected key=value,key=value with keys "
                         "under 32 and values under 128 characters)",
                         cursor);
    }
    *ret_seen = seen;
    return 0;
}

/* FNV-1a over the name, then mixed: distinct names give unrelated default seeds. */
static uint64_t
sim_name_seed(const char *name)
{
    uint64_t h = UINT64_C(0xCBF29CE484222325);

    for (const unsigned char *p = (const unsigned char *) name; *p; p++) {
        h = (h ^ *p) * UINT64_C(0x100000001B3);
    }
    return splitmix64(h);
}

/* A new state memfd, sized and mapped, for a device created from @cfg. */
static int
sim_state_create(SimDevice *d, const SimConfig *cfg)
{
    int fd = memfd_create("vfio-migd-sim-state", MFD_CLOEXEC);

    if (fd < 0) {
        return -errno;
    }
    d->state_fd = fd;
    if (ftruncate(fd, sizeof(SimPersist)) < 0) {
        return -errno;
    }
    d->st = mmap(NULL, sizeof(SimPersist), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (d->st == MAP_FAILED) {
        d->st = NULL;
        return -errno;
    }
    memcpy(d->st->magic, SIM_STATE_MAGIC, sizeof(d->st->magic));
    d->st->version = SIM_STATE_VERSION;
    d->st->state = cfg->initial_state;
    d->st->size = cfg->size;
    d->st->seed = cfg->seed;
    sim_irq_keep(d->irq, &d->st->irq);
    return 0;
}

/* Maps a state memfd handed back by the fd store. Everything in it is checked: it is input
 * (another process may have written the memfd). Takes @fd on success only. */
static int
sim_state_adopt(SimDevice *d, int fd, const SimConfig *cfg, char *err, size_t err_size)
{
    SimPersist *st;
    struct stat sb;
    int32_t raw;

    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || fcntl(fd, F_GET_SEALS) < 0) {
        return sim_error(err, err_size, "the stored state fd is not a memfd");
    }
    if (sb.st_size != (off_t) sizeof(SimPersist)) {
        return sim_error(err, err_size, "the stored state has %lld bytes, not %zu",
                         (long long) sb.st_size, sizeof(SimPersist));
    }
    st = mmap(NULL, sizeof(SimPersist), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (st == MAP_FAILED) {
        return sim_error(err, err_size, "cannot map the stored state: %s", strerror(errno));
    }
    memcpy(&raw, &st->state, sizeof(raw));
    if (memcmp(st->magic, SIM_STATE_MAGIC, sizeof(st->magic)) != 0 ||
        st->version != SIM_STATE_VERSION || raw < 0 || raw >= _DEVICE_STATE_MAX ||
        st->size != cfg->size) {
        (void) munmap(st, sizeof(*st));
        return sim_error(err, err_size, "the stored state is not a version %u sim state of a "
                         "%" PRIu64 "-byte device", SIM_STATE_VERSION, cfg->size);
    }
    if (sim_irq_adopt(d->irq, &st->irq) < 0) {
        (void) munmap(st, sizeof(*st));
        return sim_error(err, err_size, "the stored interrupt set-up is not one this device's "
                         "options (intx=, msi=, msix=) allow");
    }
    d->st = st;
    d->state_fd = fd;
    return 0;
}

/* The model's device state from its own keys @model_opts, and the flags it reports. */
static int
sim_model_create(SimDevice *d, const char *model_opts, char *err, size_t err_size)
{
    const struct vfio_migd_sim_model *m = d->model.ops;
    char why[256] = "";
    uint32_t flags;
    int32_t r;

    r = m->create(d->model.host, model_opts, &d->mstate, why, sizeof(why));
    if (r < 0) {
        d->mstate = NULL;
        if (r == -EINVAL) {
            return sim_error(err, err_size, "%s", why[0] ? why : "the model refused its options");
        }
        return sim_model_errno(r);
    }
    flags = m->mig_flags(d->mstate);
    if (!fsm_flags_valid(flags)) {
        return sim_error(err, err_size, "the %s model reports migration flags 0x%x, not one of "
                         "the legal sets 0x1, 0x3, 0x5, 0x7 (a bug of its plugin)", m->name,
                         flags);
    }
    d->cfg.flags = flags;
    return 0;
}

/* @options over the defaults into @ret_cfg; the keys a model owns go to @model_opts (NULL
 * without a model), and @ret_seen says which keys were given. */
static int
sim_options_parse(const char *name, const char *options, char *model_opts, SimConfig *ret_cfg,
                  uint32_t *ret_seen, char *err, size_t err_size)
{
    SimConfig cfg = {
        .flags = MIG_FLAGS_ALL,
        .migratable = true,
        .size = SIM_SIZE_DEFAULT,
        .fail_errno = EIO,
        .initial_state = DEVICE_STATE_RUNNING,
        .hold_max_ms = SIM_HOLD_MAX_MS_DEFAULT,
        .vendor_id = BACKEND_ID_NONE,
        .device_id = BACKEND_ID_NONE,
        .seed = sim_name_seed(name),
    };
    uint32_t seen = 0;
    int r;

    r = sim_config_parse(&cfg, options, model_opts, &seen, err, err_size);
    if (r < 0) {
        return r;
    }
    *ret_cfg = cfg;
    *ret_seen = seen;
    return 0;
}

/* The device without its state: options parsed, model created, nothing mapped yet. */
static int
sim_device_alloc(const char *name, const char *options, const SimModel *model, SimDevice **ret,
                 char *err, size_t err_size)
{
    _cleanup_(sim_device_destroyp) SimDevice *d = NULL;
    _cleanup_free_ char *model_opts = NULL;
    SimConfig cfg;
    bool with_model = model && model->ops;
    uint32_t seen = 0;
    int r;

    if (!name || !*name || !ret) {
        return sim_error(err, err_size, "a simulated device needs a name");
    }
    options = options ? options : "";
    if (with_model && !(model_opts = calloc(1, strlen(options) + 1))) {
        return -ENOMEM;
    }
    r = sim_options_parse(name, options, model_opts, &cfg, &seen, err, err_size);
    if (r < 0) {
        return r;
    }
    d = calloc(1, sizeof(*d));
    if (!d) {
        return -ENOMEM;
    }
    d->lock = (pthread_mutex_t) PTHREAD_MUTEX_INITIALIZER;
    d->state_fd = -EBADF;
    d->vmm_view = -EBADF;
    d->name = strdup(name);
    d->options = strdup(options);
    if (!d->name || !d->options) {
        return -ENOMEM;
    }
    d->base.ops = &sim_ops;
    d->refs = 1;
    d->cfg = cfg;
    if (with_model) {
        d->model = *model;
        r = sim_model_create(d, model_opts, err, err_size);
        if (r < 0) {
            return r;
        }
    }
    r = sim_config_check(&d->cfg, model, seen, err, err_size);
    if (r < 0) {
        return r;
    }
    d->n_chunks = (cfg.size - SIM_HEADER_SIZE + SIM_CHUNK_SIZE - 1) / SIM_CHUNK_SIZE;
    d->irq = sim_irq_new(&cfg.irq);
    if (!d->irq) {
        return -ENOMEM;
    }
    *ret = TAKE_PTR(d);
    return 0;
}

static void
sim_device_publish(SimDevice *d, BackendDevice **ret, BackendInfo *ret_info, char *err,
                   size_t err_size)
{
    if (err && err_size > 0) {
        err[0] = '\0';
    }
    if (ret_info) {
        *ret_info = (BackendInfo){
            .migratable = d->cfg.migratable,
            .mig_flags = d->cfg.migratable ? d->cfg.flags : 0,
            .initial_state = d->st->state,
        };
    }
    *ret = &d->base;
}

int
sim_device_new_model(const char *name, const char *options, const SimModel *model,
                     BackendDevice **ret, BackendInfo *ret_info, char *err, size_t err_size)
{
    _cleanup_(sim_device_destroyp) SimDevice *d = NULL;
    int r;

    r = sim_device_alloc(name, options, model, &d, err, err_size);
    if (r < 0) {
        return r;
    }
    r = sim_state_create(d, &d->cfg);
    if (r < 0) {
        return r;
    }
    sim_device_publish(TAKE_PTR(d), ret, ret_info, err, err_size);
    return 0;
}

int
sim_device_new(const char *name, const char *options, BackendDevice **ret, BackendInfo *ret_info,
               char *err, size_t err_size)
{
    return sim_device_new_model(name, options, NULL, ret, ret_info, err, err_size);
}

int
sim_device_adopt_model(const char *name, const char *options, const SimModel *model,
                       int state_fd, BackendDevice **ret, BackendInfo *ret_info, char *err,
                       size_t err_size)
{
    _cleanup_(sim_device_destroyp) SimDevice *d = NULL;
    int r;

    r = sim_device_alloc(name, options, model, &d, err, err_size);
    if (r < 0) {
        return r;
    }
    r = sim_state_adopt(d, state_fd, &d->cfg, err, err_size);
    if (r < 0) {
        return r;
    }
    sim_device_publish(TAKE_PTR(d), ret, ret_info, err, err_size);
    return 0;
}

int
sim_device_adopt(const char *name, const char *options, int state_fd, BackendDevice **ret,
                 BackendInfo *ret_info, char *err, size_t err_size)
{
    return sim_device_adopt_model(name, options, NULL, state_fd, ret, ret_info, err, err_size);
}
