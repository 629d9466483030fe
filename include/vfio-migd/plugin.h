/* SPDX-License-Identifier: MIT */
#ifndef VFIO_MIGD_PLUGIN_H
#define VFIO_MIGD_PLUGIN_H

/*
 * vfio-migd plugin ABI — the one installed header of vfio-migd, and the only file a vendor
 * plugin compiles against. docs/plugins.md explains how to write a plugin with it and walks
 * through the mtty plugin (plugins/mtty/mtty.c).
 *
 * A plugin is a shared object in the daemon's plugin directory (--plugin-dir, config key
 * [daemon] plugin_dir, default <libdir>/vfio-migd/plugins). It exports exactly one symbol,
 * VFIO_MIGD_PLUGIN_ENTRY, a function that returns a pointer to a constant
 * struct vfio_migd_plugin: the plugin's name and version, the devices it claims, the rules of
 * its compatibility fields, and its hooks. Build it with -fvisibility=hidden and a version
 * script that exports only that symbol (plugins/plugin.map).
 *
 * Versioning. The descriptor starts with abi_major, abi_minor and struct_size, which never
 * move. The daemon refuses a plugin whose abi_major differs from its own (one log line: which
 * major it expected, which it found, and to rebuild the plugin against this header). Within a
 * major, members are only ever added at the end of a struct: the daemon reads only the
 * members that fit in the struct_size the plugin declares, and treats the others as NULL/0.
 * The same holds the other way for the structs the daemon passes in (host, device, ...):
 * every one starts with its own struct_size, and a plugin built against a newer minor checks
 * it (VFIO_MIGD_HAS(type, ptr, member)) before it uses a member this header added later.
 *
 * Dialect: plain C11, vfio_migd_ prefix, fixed-width integers, no bool (0/1 in uint32_t), no
 * fixed char arrays (strings are const char *, NUL-terminated UTF-8 without control
 * characters). Errors are negative errno values (<errno.h>), as everywhere in vfio-migd.
 *
 * Hooks and failure. Every hook may be NULL (the daemon then does what it does for a device
 * no plugin claims). The daemon calls a hook only where a failure is an ordinary error
 * return: before a migration starts, while a device is looked at, or on bytes before they
 * reach the device — never inside a device state transition without a way back. A hook that
 * fails leaves the device as it was: the operation that asked is refused with the plugin's
 * words. Hooks run on the daemon's loop thread unless their comment says otherwise; they must
 * not block for long (a sysfs read is fine, waiting for a device is not), must not keep the
 * pointers they are given after they return (unless said), and must never call exit(),
 * abort() or change the process's signal dispositions.
 *
 * Host services (struct vfio_migd_host) are passed in to every hook: logging, the sysfs root,
 * a clock, devlink queries and the output sinks. A plugin never reaches for them itself
 * (no "/sys" in a plugin: tests run plugins against a fake sysfs tree).
 */

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI this header describes. A change that breaks an existing plugin bumps the major;
 * a member added at the end of a struct bumps the minor. */
#define VFIO_MIGD_PLUGIN_ABI_MAJOR 1
#define VFIO_MIGD_PLUGIN_ABI_MINOR 1

/* The name of the one exported symbol: a function of type vfio_migd_plugin_entry_fn. */
#define VFIO_MIGD_PLUGIN_ENTRY "vfio_migd_plugin_entry"

/* A wildcard for a claim's vendor_id and device_id. */
#define VFIO_MIGD_ANY_ID UINT32_C(0xffffffff)

/* True when the struct of type @type that @p points to (every struct here starts with
 * uint32_t struct_size) is large enough to hold @member: the way to use a member added in a
 * later minor. Plain C11: VFIO_MIGD_HAS(struct vfio_migd_host, host, devlink_get). */
#define VFIO_MIGD_HAS(type, p, member)                                                         \
    ((p)->struct_size >= offsetof(type, member) + sizeof(((type *) 0)->member))

/* Log priorities for vfio_migd_host.log, as syslog(3) numbers them. */
#define VFIO_MIGD_LOG_ERR 3
#define VFIO_MIGD_LOG_WARNING 4
#define VFIO_MIGD_LOG_NOTICE 5
#define VFIO_MIGD_LOG_INFO 6
#define VFIO_MIGD_LOG_DEBUG 7

/* How a destination's compatibility field must relate to the source's (core/compat):
 * the destination device's rule decides, a field only one side has is a mismatch unless
 * that side calls it informational. */
enum vfio_migd_rule_kind {
    VFIO_MIGD_RULE_EQUAL = 0,    /* the values must be equal, byte for byte */
    VFIO_MIGD_RULE_AT_LEAST = 1, /* destination >= source: decimal numbers and dotted versions
                                  * compare part by part ("22.36.1010" >= "22.35.9"); values
                                  * not both of that form must be equal */
    VFIO_MIGD_RULE_INFO = 2,     /* shown (describe, show), never compared */
};

/* Data-stream directions for the stream hooks. */
enum vfio_migd_stream_direction {
    VFIO_MIGD_STREAM_SAVE = 0,   /* bytes read from a saving device (the source) */
    VFIO_MIGD_STREAM_RESUME = 1, /* bytes about to be written to a resuming device */
};

/* Migration states as VFIO numbers them (linux/vfio.h enum vfio_device_mig_state): the sim
 * model's arc hook gets these. */
enum vfio_migd_mig_state {
    VFIO_MIGD_STATE_ERROR = 0,
    VFIO_MIGD_STATE_STOP = 1,
    VFIO_MIGD_STATE_RUNNING = 2,
    VFIO_MIGD_STATE_STOP_COPY = 3,
    VFIO_MIGD_STATE_RESUMING = 4,
    VFIO_MIGD_STATE_RUNNING_P2P = 5,
    VFIO_MIGD_STATE_PRE_COPY = 6,
    VFIO_MIGD_STATE_PRE_COPY_P2P = 7,
};

/* Opaque output sinks the daemon owns; a hook fills them only through the host's *_add
 * functions, which copy what they are given. */
struct vfio_migd_prereq_list;
struct vfio_migd_field_list;

/* ---- what the daemon gives a plugin */

/* Host services. One per plugin, valid from the first hook call until the daemon exits. */
struct vfio_migd_host {
    uint32_t struct_size; /* sizeof(struct vfio_migd_host) of the daemon */
    uint32_t abi_major;   /* the daemon's VFIO_MIGD_PLUGIN_ABI_MAJOR */
    uint32_t abi_minor;   /* the daemon's VFIO_MIGD_PLUGIN_ABI_MINOR */
    uint32_t reserved;    /* 0 */
    /* Root of the sysfs tree: "/sys" in production, a fake tree in tests. A plugin builds
     * every sysfs path from it (never from "/sys"). Never NULL. */
    const char *sysfs_root;
    /* Logs @message (one line, no trailing newline) at @priority (VFIO_MIGD_LOG_*), tagged
     * with the plugin's name. Never NULL; any thread. */
    void (*log)(const struct vfio_migd_host *host, int32_t priority, const char *message);
    /* CLOCK_MONOTONIC in nanoseconds (tests may fake it). Never NULL; any thread. */
    uint64_t (*clock_ns)(const struct vfio_migd_host *host);
    /* Reads one devlink attribute into @buf (NUL-terminated, at most @size bytes with the NUL).
     * @handle is a devlink handle: "pci/0000:3b:00.0" for a device, "pci/0000:3b:00.0/1" for a
     * port. @attribute is one of:
     *   device (devlink dev info): "board.id" (the PSID), "fw.version" (running firmware),
     *                              "driver", "serial_number";
     *   device (eswitch):          "eswitch_mode" -> "legacy" or "switchdev";
     *   port:                      "function.migratable" -> "enable" or "disable",
     *                              "function.hw_addr", "pci_vf_number";
     *   "port_of:<VF address>" on a device handle -> the port handle of that VF
     *                              ("pci/0000:3b:00.0/1"), so a plugin can go VF -> port.
     * Returns 0, -ENOENT (no such device, port or attribute), -EOPNOTSUPP (the kernel or the
     * daemon has no devlink), -ENOBUFS (@size too small), or another negative errno. The
     * daemon answers it over generic netlink, a test from a table. Never NULL. */
    int32_t (*devlink_get)(const struct vfio_migd_host *host, const char *handle,
                           const char *attribute, char *buf, uint32_t size);
    /* Adds one prerequisite to @out (the prerequisites hook's sink): what was checked
     * (@check, a short phrase: "bound to mlx5_vfio_pci"), whether it holds (@ok 0/1), and
     * when it does not, what is wrong (@message, a sentence) and the exact command that
     * fixes it (@fix, "" when no single command does). Copies the strings. Returns 0,
     * -EINVAL (NULL or a control character), -E2BIG (too long: check 64, message and fix
     * 255 bytes) or -ENOSPC (32 prerequisites already). */
    int32_t (*prereq_add)(struct vfio_migd_prereq_list *out, const char *check, uint32_t ok,
                          const char *message, const char *fix);
    /* Adds one compatibility field to @out (the descriptor hook's sink). @name is
     * [a-z][a-z0-9_.-]* of at most 32 bytes; @value at most 128 bytes without control
     * characters. The field's rule comes from the plugin's rules table (EQUAL when it is not
     * there). Returns 0, -EINVAL, -E2BIG, -EEXIST (the name is taken, also by the back-end's
     * own fields "model" and "size") or -ENOSPC. */
    int32_t (*field_add)(struct vfio_migd_field_list *out, const char *name, const char *value);
};

/* A device, as the daemon found it. Every string is non-NULL ("" when unknown or not
 * applicable) and valid only during the hook call. */
struct vfio_migd_device {
    uint32_t struct_size;   /* sizeof(struct vfio_migd_device) of the daemon */
    uint32_t simulated;     /* 1: a sim back-end device (attach --sim); 0: a real one */
    const char *name;       /* the daemon's device id ("nic0"); "" when not attached (host-devices) */
    const char *bus;        /* "pci" or "mdev" ("" for a sim device without pci=/mdev_type=) */
    const char *address;    /* "0000:3b:00.2" (pci) or the mdev UUID; "" */
    const char *driver;     /* the bound driver ("mlx5_vfio_pci", "vfio-pci", "mtty"); "" unbound */
    uint32_t vendor_id;     /* PCI vendor ID; VFIO_MIGD_ANY_ID for an mdev or unknown */
    uint32_t device_id;     /* PCI device ID; VFIO_MIGD_ANY_ID for an mdev or unknown */
    const char *mdev_type;  /* an mdev's type ("mtty-2"); "" for a PCI function */
    const char *parent;     /* an mdev's parent device, or a VF's PF address; "" */
    const char *parent_driver; /* the parent's (PF's) bound driver ("mlx5_core"); "" */
    /* The device's directory under host->sysfs_root ("<root>/bus/pci/devices/0000:3b:00.2");
     * "" for a sim device. */
    const char *sysfs_path;
    /* A sim device's options string ("model=mlx5,psid=MT_0000000359,..."), so a plugin can
     * describe a simulated device from its options; "" for a real device. */
    const char *sim_options;
};

/* The daemon's access to a saving device's data fd, for the precopy hook. */
struct vfio_migd_precopy_io {
    uint32_t struct_size;
    int32_t data_fd;  /* the data fd (kernel devices), -1 for a sim device: use precopy_info */
    void *ctx;        /* the daemon's; pass it back */
    /* VFIO_MIG_GET_PRECOPY_INFO on the data fd (the sim's equivalent for a sim device).
     * Returns 0 with both counters, or the kernel's negative errno (-EINVAL outside
     * PRE_COPY/PRE_COPY_P2P, -ENODEV once the session ended). May block (mlx5: while a SAVE
     * is in flight). */
    int32_t (*precopy_info)(void *ctx, uint64_t *ret_initial_bytes, uint64_t *ret_dirty_bytes);
};

/* What a stream parser learned so far, updated by the stream_feed hook. */
struct vfio_migd_stream_progress {
    uint32_t struct_size;
    uint32_t complete;        /* 1: the parser has seen a whole, well-formed stream */
    uint64_t bytes;           /* bytes parsed so far (the daemon sets it before each call) */
    uint64_t expected_total;  /* the stream's total size if the stream says it, else 0
                               * (mtty: 24 + 36 x ports; mlx5: from STOP_COPY_SIZE) */
    uint64_t stop_copy_size;  /* the stop-copy size estimate the stream carries, else 0 */
};

/* ---- what a plugin gives the daemon */

/* One set of devices a plugin claims: every member that is not a wildcard must match
 * (NULL strings and VFIO_MIGD_ANY_ID are wildcards; at least one member must be set). */
struct vfio_migd_claim {
    const char *driver;       /* the bound driver (an mdev's: its parent's mdev driver, "mtty") */
    uint32_t vendor_id;       /* PCI IDs, e.g. 0x15b3 / 0x101e */
    uint32_t device_id;
    const char *mdev_type;    /* "mtty-1" */
    /* The VFIO (variant) driver the device must be bound to to migrate ("mlx5_vfio_pci"),
     * which `vfio-migctl bind` binds it to; NULL: the driver it has (mdevs) or vfio-pci. */
    const char *variant_driver;
};

/* How one compatibility field compares (enum vfio_migd_rule_kind). */
struct vfio_migd_rule {
    const char *field;
    uint32_t rule;
};

/* A simulated model: lets the sim back-end (attach --sim model=NAME,...) behave like this
 * vendor's driver, answering what the driver answers — never more forgivingly. The sim keeps
 * the state machine (core/fsm: which arcs exist, the hop-by-hop walk, -EINVAL for a state
 * the flags lack), the device mutex, reset, the fd rules (-EBADF reading a resuming fd or
 * writing a saving one, -ENOTTY for PRECOPY_INFO on a resuming fd, -EINVAL for PRECOPY_INFO
 * outside PRE_COPY/PRE_COPY_P2P, -ENODEV once a session ended) and its own fault options;
 * the model supplies what is vendor-specific. Hooks run on worker threads under the sim
 * device's mutex (create on the loop): they must not call back into the daemon except
 * host->log and host->clock_ns, and must not block. Every hook but create, destroy and
 * mig_flags may be NULL: the sim's generic behaviour is used for it. The stream hooks go
 * together: with stream_open set, every data session of the device is the model's (reads,
 * writes, PRECOPY_INFO and the RESUMING -> STOP check), and the sim's own content model
 * (docs/simulated-devices.md) is not used. A value a hook returns outside its contract (an
 * errno beyond 4095, more bytes than asked, a positive "errno") fails the call with -EIO. */
struct vfio_migd_sim_model {
    uint32_t struct_size; /* sizeof(struct vfio_migd_sim_model) the plugin was built with */
    uint32_t reserved;
    const char *name; /* what model= selects: [a-z][a-z0-9_-]*, unique among loaded plugins */
    /* Parses the model's own keys and creates the model's device state (one per sim device).
     * @options holds only the keys the sim does not know itself, in the order given, as
     * "key=value,key=value" ("" when there are none): the sim's own keys (size=, latency_ms=,
     * fail_arc=, model=, ... docs/simulated-devices.md) never reach it. The model refuses a
     * key it does not know: -EINVAL with a sentence naming the key in @why (at most @why_size
     * bytes), and the attach is refused with it. Loop thread. */
    int32_t (*create)(const struct vfio_migd_host *host, const char *options, void **ret_model,
                      char *why, uint32_t why_size);
    void (*destroy)(void *model);
    /* The VFIO migration flags the driver reports (mlx5 0x7, hisi 0x5): one of the legal sets
     * 0x1, 0x3, 0x5, 0x7 (another refuses the attach). The sim's flags= option is refused
     * with a model: the model decides. Called once, after create. */
    uint32_t (*mig_flags)(void *model);
    /* MIG_DATA_SIZE in @state. NULL: the sim's size= option, in every state. */
    int32_t (*data_size)(void *model, uint32_t state, uint64_t *ret_bytes);
    /* Called before the sim runs arc @from -> @to (VFIO_MIGD_STATE_*; every hop of a SET, in
     * order), after the sim's own hold and fault options: a negative errno fails that arc as
     * the driver would (hisi RUNNING -> STOP: -EBUSY while interrupts are pending); the
     * device then stays in @from and the SET returns the errno. 0: the arc runs. */
    int32_t (*arc)(void *model, uint32_t from, uint32_t to);
    /* Opens the stream of a new saving session (@from -> @to opened it: RUNNING -> PRE_COPY,
     * RUNNING_P2P -> PRE_COPY_P2P or STOP -> STOP_COPY) or a resuming one (STOP ->
     * RESUMING). *ret_stream is the model's. A negative errno fails the arc (device stays in
     * @from). */
    int32_t (*stream_open)(void *model, uint32_t from, uint32_t to, void **ret_stream);
    /* The saving session's device moved on without a new fd: PRE_COPY <-> PRE_COPY_P2P, and
     * PRE_COPY(_P2P) -> STOP_COPY (the rest of the state is appended to the same stream).
     * A negative errno fails the arc (device stays in @from). May be NULL. */
    int32_t (*stream_advance)(void *stream, uint32_t from, uint32_t to);
    /* read(data_fd): bytes written to @buf (> 0, at most @size), 0 at the end (permanent in
     * STOP_COPY, temporary in PRE_COPY: mtty, hisi), -ENOMSG (mlx5's temporary end), or an
     * errno. */
    int64_t (*stream_read)(void *stream, uint8_t *buf, uint64_t size);
    /* VFIO_MIG_GET_PRECOPY_INFO, called only in PRE_COPY or PRE_COPY_P2P on a live session
     * (the sim answers the other cases); may queue more data (mlx5 starts an incremental
     * SAVE). Which of the two states the device is in, the model knows from stream_open and
     * stream_advance. NULL: the ioctl answers 0 and 0. */
    int32_t (*stream_precopy_info)(void *stream, uint64_t *ret_initial, uint64_t *ret_dirty);
    /* write(data_fd) on a resuming stream: bytes accepted (at most @size), or the driver's
     * errno (mlx5: firmware rejection on a PSID mismatch; hisi: -EFAULT on a match-header
     * mismatch, -ENOMEM past 176 bytes). What a failed write does to later writes is the
     * driver's and so the model's (mlx5: -ENODEV from then on). */
    int64_t (*stream_write)(void *stream, const uint8_t *buf, uint64_t size);
    /* RESUMING -> STOP: the driver's final check and load (hisi: -EINVAL on a stream that is
     * neither 40 nor 176 bytes); 0 makes what was written the device's content. A negative
     * errno fails the arc: the device stays in RESUMING with its old content. */
    int32_t (*stream_finish)(void *stream);
    /* The session ended (its arc, reset, another session, the device freed). Never fails. */
    void (*stream_close)(void *stream);
    /* ---- ABI 1.1 */
    /* A digest of the device's current content (what a save carries), shown as the
     * device's "digest" property so a test can check that a migration moved the content:
     * two devices with equal content have equal digests. NULL: no digest is shown for a
     * device whose streams are the model's. Under the device mutex. */
    uint64_t (*digest)(void *model);
};

/* The plugin's descriptor, returned by the entry symbol. Constant and valid until the daemon
 * exits (the daemon never dlclose()s a plugin it accepted). */
struct vfio_migd_plugin {
    uint32_t abi_major;   /* VFIO_MIGD_PLUGIN_ABI_MAJOR the plugin was built with */
    uint32_t abi_minor;   /* VFIO_MIGD_PLUGIN_ABI_MINOR the plugin was built with */
    uint32_t struct_size; /* sizeof(struct vfio_migd_plugin) the plugin was built with */
    uint32_t reserved;    /* 0 */

    /* [a-z][a-z0-9_-]*, at most 32 bytes; unique among the loaded plugins (a second plugin of
     * a name is refused). Shown by `vfio-migctl plugins` and `show`. */
    const char *name;
    const char *version;     /* the plugin's own version, free text ("1.0") */
    const char *description; /* one line; may be NULL */

    /* The devices this plugin claims: a device is claimed by the first plugin (in file-name
     * order) with a matching claim. n_claims may be 0 (a plugin that only adds a sim model). */
    const struct vfio_migd_claim *claims;
    uint32_t n_claims;

    /* How each field of the descriptor hook compares (a field not listed: EQUAL). */
    uint32_t n_rules;
    const struct vfio_migd_rule *rules;

    /* PREREQUISITES. May be NULL. Checks what the device needs to migrate on this host and
     * adds one entry per check through host->prereq_add(out, ...), failing ones with their
     * message and fix. Shown by `show` and `host-devices`; a failing prerequisite makes
     * "can migrate now" false. Returns 0 (even when checks fail: failures are entries), or a
     * negative errno when the checks themselves could not run. Reads sysfs (host->sysfs_root)
     * and devlink (host->devlink_get) only. */
    int32_t (*prerequisites)(const struct vfio_migd_host *host,
                             const struct vfio_migd_device *dev,
                             struct vfio_migd_prereq_list *out);

    /* DESCRIPTOR. May be NULL. Adds the device's compatibility fields through
     * host->field_add(out, name, value). They travel in the migration manifest's descriptor
     * slot (docs/stream-format.md) and are compared by the rules above before the source
     * stops anything (StartMigration, migrate --dry-run, check). Returns 0 or a negative
     * errno, with a sentence in @why (at most @why_size bytes): the migration, describe or
     * check that asked is refused with it; the device is untouched. */
    int32_t (*descriptor)(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                          struct vfio_migd_field_list *out, char *why, uint32_t why_size);

    /* STREAM KNOWLEDGE. Either all three or none. Called only for a device whose data stream
     * is this vendor's: a real device, or a sim device running this plugin's sim model.
     * stream_open: starts a parser for one stream of @dev in @direction; *ret_state is the
     *   plugin's (may be NULL if it needs none). For RESUME, @dev is the destination device
     *   the bytes are for, so the parser can compare the stream with it.
     * stream_feed: the next @size bytes of the stream, in order, in chunks of any size
     *   (one byte at a time included). For RESUME it runs BEFORE the bytes are written to
     *   the device: a negative errno refuses them and the migration fails before the device
     *   saw them (-EBADMSG malformed, -EMEDIUMTYPE incompatible with @dev), with a sentence
     *   naming the field in @why. Updates @progress. Worker thread.
     * stream_close: frees the parser. Never fails. */
    int32_t (*stream_open)(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                           uint32_t direction, void **ret_state);
    int32_t (*stream_feed)(const struct vfio_migd_host *host, void *state, const uint8_t *data,
                           uint64_t size, struct vfio_migd_stream_progress *progress, char *why,
                           uint32_t why_size);
    void (*stream_close)(const struct vfio_migd_host *host, void *state);

    /* PRE-COPY DRIVING. May be NULL (read() until it returns 0 or -ENOMSG is enough). Called
     * on the worker that reads a saving device in PRE_COPY whenever read() returned 0 or
     * -ENOMSG (nothing queued). The hook may call io->precopy_info() (mlx5: the ioctl queues
     * an incremental SAVE) and returns 1 when more data is readable now (the daemon reads
     * again), 0 when nothing is (the daemon decides on convergence with *ret_dirty_bytes), or
     * a negative errno (the migration fails; the source device goes back to RUNNING). */
    int32_t (*precopy_refill)(const struct vfio_migd_host *host,
                              const struct vfio_migd_device *dev,
                              const struct vfio_migd_precopy_io *io, uint64_t *ret_initial_bytes,
                              uint64_t *ret_dirty_bytes);

    /* SIMULATED MODEL. May be NULL. */
    const struct vfio_migd_sim_model *sim_model;

    /* ---- ABI 1.1 */

    /* FIRMWARE CONCURRENCY. 0: no limit. N: at most N devices this plugin claims that share
     * a parent (the VFs of one PF: struct vfio_migd_device.parent) may be the source of live
     * migrations at once (mlx5: 4, a documented firmware limit). The daemon starts a
     * migration that would exceed it in phase "waiting", says so in its log, and starts it
     * when one of the others ends; a group that alone has more than N such devices is
     * refused. */
    uint32_t max_migrating_per_parent;
};

/* The entry symbol's type. It is called once, right after dlopen(), and must return the same
 * constant descriptor every time; it must not fail (a plugin that cannot work on this host
 * says so in its prerequisites). */
typedef const struct vfio_migd_plugin *(*vfio_migd_plugin_entry_fn)(void);

/* Declares the entry symbol with default visibility (the only one the plugin exports). */
#define VFIO_MIGD_PLUGIN_EXPORT __attribute__((visibility("default")))

/* The three members every descriptor starts with, as built against this header; first in the
 * initializer: static const struct vfio_migd_plugin p = {VFIO_MIGD_PLUGIN_HEADER, .name = ...}.
 * A plugin written for an older minor sets them itself (struct_size is what it knows). */
#define VFIO_MIGD_PLUGIN_HEADER                                                                \
    .abi_major = VFIO_MIGD_PLUGIN_ABI_MAJOR, .abi_minor = VFIO_MIGD_PLUGIN_ABI_MINOR,          \
    .struct_size = sizeof(struct vfio_migd_plugin)

/* Defines the entry symbol, returning @descriptor (the plugin's static const descriptor). */
#define VFIO_MIGD_PLUGIN_DEFINE_ENTRY(descriptor)                                              \
    VFIO_MIGD_PLUGIN_EXPORT const struct vfio_migd_plugin *vfio_migd_plugin_entry(void)        \
    {                                                                                          \
        return &(descriptor);                                                                  \
    }

/* The number of elements of the array @a, as the uint32_t counts here take it
 * (.n_claims = VFIO_MIGD_ELEMENTS(claims)). */
#define VFIO_MIGD_ELEMENTS(a) ((uint32_t) (sizeof(a) / sizeof((a)[0])))

/* One compatibility field, for vfio_migd_fields_add(). */
struct vfio_migd_field {
    const char *name;
    const char *value;
};

/* Adds the @n fields of @fields through host->field_add(), in order, and stops at the first
 * one refused: the usual body of a descriptor hook. Returns 0 or that refusal's negative
 * errno (the hook returns it: every field added is then dropped). Not part of the ABI: it
 * only calls host->field_add(). */
static inline int32_t
vfio_migd_fields_add(const struct vfio_migd_host *host, struct vfio_migd_field_list *out,
                     const struct vfio_migd_field *fields, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        int32_t r = host->field_add(out, fields[i].name, fields[i].value);

        if (r < 0) {
            return r;
        }
    }
    return 0;
}

/* A claim of every device bound to @drv, whatever its IDs (an mdev parent's driver, say). */
#define VFIO_MIGD_CLAIM_DRIVER(drv)                                                            \
    {.driver = (drv), .vendor_id = VFIO_MIGD_ANY_ID, .device_id = VFIO_MIGD_ANY_ID}

#ifdef __cplusplus
}
#endif

#endif /* VFIO_MIGD_PLUGIN_H */
