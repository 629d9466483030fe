/* SPDX-License-Identifier: MIT */
/*
 * test_sim — unit tests of the simulated back-end (daemon/backend/sim.c) through the
 * backend.h vtable only, the way device.c drives it. The reference for every expectation is
 * the kernel: core/fsm for paths, refusals and which arc returns a data fd, and
 * kernel-uapi.md §5-7 for data-fd errnos. The stream layout checked here is the one
 * docs/simulated-devices.md documents.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "backend/backend.h"
#include "core/fsm.h"
#include "core/stream.h" /* crc32c() */
#include "util/cleanup.h"
#include "util/clock.h"
#include "backend_props.h"

#define SIZE_1M (UINT64_C(1) << 20)
#define HDR 64u
#define REC 16u
#define CHUNK UINT64_C(65536)
/* CRC32C of save_plain("x", "size=307205,seed=5"): the stream of the sim before
 * sim_content.c, with the header CRC that became CRC32C when zlib left the project. */
#define GOLDEN_PLAIN_CRC 0xf1a07361u

/* A pointer no backend call may write on failure. */
static DataSession *const SENTINEL = (DataSession *) (uintptr_t) 0x5e551;

/* ---- helpers */

typedef struct Bytes {
    uint8_t *data;
    size_t len;
    size_t cap;
} Bytes;

static void
bytes_append(Bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->data = realloc(b->data, b->cap);
        cr_assert_not_null(b->data);
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

static void
bytes_free(Bytes *b)
{
    free(b->data);
    *b = (Bytes){0};
}

static BackendDevice *
dev_new(const char *name, const char *opts)
{
    BackendDevice *bd = NULL;
    char err[256] = "";
    int r = sim_device_new(name, opts, &bd, NULL, err, sizeof(err));

    cr_assert_eq(r, 0, "sim_device_new('%s', '%s') = %d: %s", name, opts, r, err);
    cr_assert_not_null(bd);
    return bd;
}

/* The end of a test: frees @s and @t (either may be NULL), then their device @bd. */
static void
dev_free_with(BackendDevice *bd, DataSession *s, DataSession *t)
{
    data_session_free(s);
    data_session_free(t);
    backend_device_free(bd);
}

static int
dev_set(BackendDevice *bd, DeviceState target, DataSession **ret)
{
    return bd->ops->set_state(bd, target, ret);
}

/* Moves to @target, expecting success; returns the session the request opened (or NULL). */
static DataSession *
dev_set_ok(BackendDevice *bd, DeviceState target)
{
    DataSession *s = SENTINEL;
    int r = dev_set(bd, target, &s);

    cr_assert_eq(r, 0, "set_state(%s) = %d", fsm_state_name(target), r);
    cr_assert_neq(s, SENTINEL);
    cr_assert_eq(dev_state(bd), target);
    return s;
}

static uint64_t
dev_digest(BackendDevice *bd)
{
    char buf[128];
    const char *v = dev_prop(bd, "digest", buf, sizeof(buf));

    cr_assert_not_null(v);
    cr_assert_eq(strlen(v), 16u, "digest '%s' is not 16 hex digits", v);
    return strtoull(v, NULL, 16);
}

static uint64_t
dev_generation(BackendDevice *bd)
{
    char buf[128];
    const char *v = dev_prop(bd, "generation", buf, sizeof(buf));

    cr_assert_not_null(v);
    return strtoull(v, NULL, 10);
}

/* Reads a PRE_COPY session up to its temporary end; returns what read() said there. */
static ssize_t
drain_precopy(DataSession *s, Bytes *out, size_t step)
{
    uint8_t *buf = malloc(step);
    ssize_t n;

    cr_assert_not_null(buf);
    while ((n = s->ops->read(s, buf, step)) > 0) {
        bytes_append(out, buf, (size_t) n);
    }
    free(buf);
    return n;
}

/* Reads a STOP_COPY session to EOF in @step pieces, then checks EOF stays. */
static void
drain(DataSession *s, Bytes *out, size_t step)
{
    uint8_t byte;
    ssize_t n = drain_precopy(s, out, step);

    cr_assert_eq(n, 0, "read() = %zd before EOF", n);
    cr_assert_eq(s->ops->read(s, &byte, 1), 0, "EOF is not permanent");
}

/* Writes @len bytes in @step pieces, each of which must be accepted whole. */
static void
feed(DataSession *s, const uint8_t *p, size_t len, size_t step)
{
    for (size_t off = 0; off < len;) {
        size_t n = len - off < step ? len - off : step;
        ssize_t r = s->ops->write(s, p + off, n);

        cr_assert_eq(r, (ssize_t) n, "write(%zu bytes at %zu) = %zd", n, off, r);
        off += n;
    }
}

/* True while the session is not dead (-ENODEV); works for both directions. */
static bool
session_alive(DataSession *s)
{
    uint8_t b;
    ssize_t r = s->ops->read(s, &b, 0);

    if (r == -EBADF) {
        r = s->ops->write(s, &b, 0);
    }
    return r != -ENODEV;
}

/* A full plain save of a fresh device: RUNNING -> STOP_COPY, drained, back to STOP. */
static uint64_t
save_plain(const char *name, const char *opts, Bytes *out)
{
    BackendDevice *bd = dev_new(name, opts);
    DataSession *s = dev_set_ok(bd, DEVICE_STATE_STOP_COPY);
    uint64_t digest;

    cr_assert_not_null(s);
    drain(s, out, 100000);
    digest = dev_digest(bd);
    dev_free_with(bd, s, NULL);
    return digest;
}

/* Loads @st into a fresh device; returns what RESUMING -> STOP said. */
static int
restore(BackendDevice *bd, const Bytes *st, size_t step)
{
    DataSession *w = dev_set_ok(bd, DEVICE_STATE_RESUMING);
    int r;

    cr_assert_not_null(w);
    feed(w, st->data, st->len, step);
    r = dev_set(bd, DEVICE_STATE_STOP, NULL);
    data_session_free(w);
    return r;
}

/* A whole pre-copy migration stream: @rounds PRECOPY_INFO + drain rounds, then STOP_COPY. */
static uint64_t
save_precopy(BackendDevice *bd, Bytes *out, int rounds)
{
    DataSession *s = dev_set_ok(bd, DEVICE_STATE_PRE_COPY);
    DataSession *none = SENTINEL;
    uint64_t initial, dirty;

    cr_assert_not_null(s);
    for (int i = 0; i < rounds; i++) {
        cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
        (void) drain_precopy(s, out, 50000);
    }
    cr_assert_eq(dev_set(bd, DEVICE_STATE_STOP_COPY, &none), 0);
    cr_assert_null(none, "PRE_COPY -> STOP_COPY must not open a new session");
    drain(s, out, 50000);
    data_session_free(s);
    return dev_digest(bd);
}

static uint64_t
chunk_len(uint64_t size, uint64_t i)
{
    uint64_t left = size - HDR - i * CHUNK;

    return left < CHUNK ? left : CHUNK;
}

/* Offsets of the records after the image of a pre-copy stream; returns how many. */
static size_t
stream_records(const Bytes *st, uint64_t size, size_t *offs, size_t max)
{
    size_t n = 0;

    for (size_t pos = size; pos < st->len;) {
        uint32_t tag, idx;

        cr_assert_lt(n, max);
        memcpy(&tag, st->data + pos, 4);
        memcpy(&idx, st->data + pos + 4, 4);
        tag = le32toh(tag);
        idx = le32toh(idx);
        offs[n++] = pos;
        pos += REC + (tag == 1 ? chunk_len(size, idx) : 0);
    }
    return n;
}

/* Seconds, for the throughput figures printed below (util/clock.h). */
static double
now_s(void)
{
    return (double) clock_now_ns() / 1e9;
}

/* ---- options */

Test(options, defaults)
{
    BackendDevice *bd = NULL;
    BackendInfo info = {0};
    char err[64] = "x";
    uint64_t size = 0;
    char buf[128];

    cr_assert_eq(sim_device_new("d0", "", &bd, &info, err, sizeof(err)), 0);
    cr_expect_str_empty(err);
    cr_expect(info.migratable);
    cr_expect_eq(info.mig_flags, MIG_FLAGS_ALL);
    cr_expect_eq(info.initial_state, DEVICE_STATE_RUNNING);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_RUNNING);
    cr_expect_eq(bd->ops->data_size(bd, &size), 0);
    cr_expect_eq(size, SIZE_1M);
    cr_expect_str_eq(dev_prop(bd, "model", buf, sizeof(buf)), "generic");
    cr_expect_str_eq(dev_prop(bd, "size", buf, sizeof(buf)), "1048576");
    cr_expect_str_eq(dev_prop(bd, "generation", buf, sizeof(buf)), "0");
    cr_expect_str_eq(dev_prop(bd, "latency_ms", buf, sizeof(buf)), "0");
    cr_expect_null(dev_prop(bd, "fault", buf, sizeof(buf)));
    cr_expect_str_eq(bd->ops->name, "sim");
    backend_device_free(bd);

    /* NULL options are the defaults too */
    cr_assert_eq(sim_device_new("d0", NULL, &bd, &info, NULL, 0), 0);
    backend_device_free(bd);
}

Test(options, values)
{
    BackendDevice *bd = NULL;
    BackendInfo info = {0};
    uint64_t size = 0;
    char buf[128];

    cr_assert_eq(sim_device_new("d1",
                                "flags=stop_copy+p2p,size=64K,latency_ms=1,seed=0x2a,"
                                "initial_state=stop,fail_arc=stop->stop_copy,fail_errno=28,"
                                "fail_nth=3,fail_to_error=1,precopy_end=enomsg,precopy_dirty=1K",
                                &bd, &info, NULL, 0),
                 0);
    cr_expect_eq(info.mig_flags, MIG_FLAG_STOP_COPY | MIG_FLAG_P2P);
    cr_expect_eq(info.initial_state, DEVICE_STATE_STOP);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_STOP);
    cr_expect_eq(bd->ops->data_size(bd, &size), 0);
    cr_expect_eq(size, 65536u);
    cr_expect_str_eq(dev_prop(bd, "seed", buf, sizeof(buf)), "42");
    cr_expect_str_eq(dev_prop(bd, "latency_ms", buf, sizeof(buf)), "1");
    cr_expect_str_eq(dev_prop(bd, "fault", buf, sizeof(buf)),
                     "stop->stop_copy errno=28 nth=3 to_error");
    backend_device_free(bd);

    bd = dev_new("d2", "fail_arc=stop->stop_copy");
    cr_expect_str_eq(dev_prop(bd, "fault", buf, sizeof(buf)), "stop->stop_copy errno=5");
    backend_device_free(bd);
}

/* A PCI address is reported as a kernel PCI device reports its own ("device", "bus"), in the
 * kernel back-end's canonical spelling; without one the device has neither property. */
Test(options, pci_address)
{
    BackendDevice *bd = dev_new("vf", "pci=3B:00.2");
    char buf[128];

    cr_expect_str_eq(dev_prop(bd, "device", buf, sizeof(buf)), "0000:3b:00.2");
    cr_expect_str_eq(dev_prop(bd, "bus", buf, sizeof(buf)), "pci");
    backend_device_free(bd);
    bd = dev_new("plain", "");
    cr_expect_null(dev_prop(bd, "device", buf, sizeof(buf)));
    cr_expect_null(dev_prop(bd, "bus", buf, sizeof(buf)));
    backend_device_free(bd);
}

Test(options, seed_defaults_to_name_hash)
{
    BackendDevice *a = dev_new("same", ""), *b = dev_new("same", ""), *c = dev_new("other", "");
    BackendDevice *d = dev_new("other", "seed=7"), *e = dev_new("same", "seed=7");

    cr_expect_eq(dev_digest(a), dev_digest(b));
    cr_expect_neq(dev_digest(a), dev_digest(c));
    cr_expect_eq(dev_digest(d), dev_digest(e), "the seed, not the name, is the content");
    backend_device_free(a);
    backend_device_free(b);
    backend_device_free(c);
    backend_device_free(d);
    backend_device_free(e);
}

static const struct {
    const char *options;
    const char *needle;
} bad_options[] = {
    {"sise=1M", "unknown option 'sise' (known: flags, migratable, size,"},
    {"size=12Q", "size: '12Q' is not a size (use e.g. 4096, 64K, 16M, 1G)"},
    {"size=63", "size"},
    {"size=65G", "size"},
    {"size=", "size"},
    {"flags=p2p", "flags"},
    {"flags=stop_copy+bogus", "flags"},
    {"flags=8", "flags"},
    {"migratable=2", "migratable"},
    {"migratable=yes", "migratable"},
    {"latency_ms=60001", "latency_ms"},
    {"latency_ms=-1", "latency_ms"},
    {"latency_ms=1s", "latency_ms"},
    {"fail_arc=stop-stop_copy", "fail_arc"},
    {"fail_arc=stop->bogus", "fail_arc"},
    {"fail_arc=->stop", "fail_arc"},
    {"fail_arc=running->stop", "fail_arc"},
    {"fail_arc=stop->stop", "fail_arc"},
    {"fail_arc=stop->error", "fail_arc"},
    {"fail_arc=stop_copy->pre_copy", "fail_arc"},
    {"flags=stop_copy,fail_arc=running->running_p2p", "fail_arc"},
    {"fail_arc=stop->stop_copy,fail_errno=0", "fail_errno"},
    {"fail_arc=stop->stop_copy,fail_errno=4096", "fail_errno"},
    {"fail_arc=stop->stop_copy,fail_nth=-1", "fail_nth"},
    {"fail_arc=stop->stop_copy,fail_to_error=2", "fail_to_error"},
    {"fail_errno=5", "fail_errno"},
    {"fail_nth=1", "fail_nth"},
    {"fail_to_error=1", "fail_to_error"},
    {"precopy_end=maybe", "precopy_end"},
    {"precopy_dirty=1X", "precopy_dirty"},
    {"precopy_dirty=65G", "precopy_dirty"},
    {"dirty_rate=1X", "dirty_rate"},
    {"dirty_rate=65G", "dirty_rate"},
    {"dirty_rate=-1", "dirty_rate"},
    {"data_rate=4095", "data_rate"},
    {"data_rate=65G", "data_rate"},
    {"data_rate=fast", "data_rate"},
    {"seed=abc", "seed"},
    {"seed=-1", "seed"},
    {"seed=18446744073709551616", "seed"},
    {"hold_arc=running->stop", "hold_arc: has no effect without hold_until"},
    {"hold_until=/tmp/go", "hold_until: has no effect without hold_arc"},
    {"hold_until=/tmp/go,hold_arc=running->stop", "hold_arc: 'running->stop' is not an arc"},
    {"hold_until=/tmp/go,hold_arc=stop-stop_copy", "hold_arc"},
    {"hold_until=go,hold_arc=stop->stop_copy", "hold_until: 'go' is not an absolute path"},
    {"hold_until=/tmp/go,hold_arc=stop->stop_copy,hold_max_ms=0", "hold_max_ms"},
    {"hold_until=/tmp/go,hold_arc=stop->stop_copy,hold_max_ms=600001", "hold_max_ms"},
    {"hold_max_ms=5", "hold_max_ms: has no effect without hold_arc"},
    {"initial_state=bogus", "initial_state"},
    {"flags=stop_copy,initial_state=pre_copy", "initial_state"},
    {"flags=stop_copy+pre_copy,initial_state=running_p2p", "initial_state"},
    {"pci=3b:00", "pci: '3b:00' is not a PCI address (use e.g. 0000:3b:00.2)"},
    {"pci=0000:3b:20.0", "pci"},
    {"pci=0000:3b:00.8", "pci"},
    {"pci=", "pci"},
    {"size=1M,size=2M", "'size' is given twice"},
    {"size", "malformed options at 'size'"},
    {"size=1M,", "malformed options"},
    {",size=1M", "malformed options"},
};

Test(options, bad_options_name_the_option)
{
    for (size_t i = 0; i < sizeof(bad_options) / sizeof(bad_options[0]); i++) {
        BackendDevice *bd = (BackendDevice *) SENTINEL;
        BackendInfo info = {.initial_state = DEVICE_STATE_PRE_COPY};
        char err[256] = "";
        int r = sim_device_new("bad", bad_options[i].options, &bd, &info, err, sizeof(err));

        cr_expect_eq(r, -EINVAL, "'%s' gave %d", bad_options[i].options, r);
        cr_expect(strstr(err, bad_options[i].needle) != NULL, "'%s': message '%s' lacks '%s'",
                  bad_options[i].options, err, bad_options[i].needle);
        cr_expect(strchr(err, '\n') == NULL, "'%s': message is not one line",
                  bad_options[i].options);
        cr_expect_eq(bd, (BackendDevice *) SENTINEL, "'%s': *ret written on failure",
                     bad_options[i].options);
        cr_expect_eq(info.initial_state, DEVICE_STATE_PRE_COPY, "'%s': info written on failure",
                     bad_options[i].options);
    }
}

Test(options, accepted_spellings)
{
    static const char *const good[] = {
        "flags=stop_copy",
        "flags=stop_copy+pre_copy",
        "flags=7",
        "size=64",
        "size=64G",
        "size=16MiB",
        "seed=0",
        "seed=18446744073709551615",
        "initial_state=sc",
        "initial_state=error",
        "fail_arc=run->rp2p",
        "flags=stop_copy,fail_arc=running->stop",
        "fail_arc=pcp2p->sc,fail_nth=0",
        "precopy_end=zero",
        "precopy_dirty=0",
        "migratable=0",
        "data_rate=0",
        "data_rate=4K",
        "data_rate=64G",
    };

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        BackendDevice *bd = NULL;
        char err[256] = "";

        cr_expect_eq(sim_device_new("good", good[i], &bd, NULL, err, sizeof(err)), 0, "'%s': %s",
                     good[i], err);
        backend_device_free(bd);
    }
}

Test(options, not_migratable)
{
    BackendDevice *bd = NULL;
    BackendInfo info = {.migratable = true};
    DataSession *s = SENTINEL;
    DeviceState st = DEVICE_STATE_STOP;
    uint64_t size = 7;

    cr_assert_eq(sim_device_new("nm", "migratable=0", &bd, &info, NULL, 0), 0);
    cr_expect_not(info.migratable);
    cr_expect_eq(info.mig_flags, 0u);
    cr_expect_eq(bd->ops->get_state(bd, &st), -ENOTTY);
    cr_expect_eq(st, DEVICE_STATE_STOP, "output written on failure");
    cr_expect_eq(bd->ops->set_state(bd, DEVICE_STATE_STOP, &s), -ENOTTY);
    cr_expect_eq(s, SENTINEL);
    cr_expect_eq(bd->ops->data_size(bd, &size), -ENOTTY);
    cr_expect_eq(size, 7u);
    cr_expect_eq(bd->ops->reset(bd), 0, "VFIO_DEVICE_RESET does not need migration");
    backend_device_free(bd);
}

Test(options, initial_state_error_needs_reset)
{
    BackendDevice *bd = NULL;
    BackendInfo info = {0};
    DataSession *s = SENTINEL;

    cr_assert_eq(sim_device_new("err", "initial_state=error", &bd, &info, NULL, 0), 0);
    cr_expect_eq(info.initial_state, DEVICE_STATE_ERROR);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_ERROR);
    for (int t = 0; t < _DEVICE_STATE_MAX; t++) {
        cr_expect_eq(dev_set(bd, (DeviceState) t, &s), -EINVAL, "SET %d in ERROR", t);
        cr_expect_eq(dev_state(bd), DEVICE_STATE_ERROR);
    }
    cr_expect_eq(s, SENTINEL);
    cr_expect_eq(bd->ops->reset(bd), 0);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_RUNNING);
    backend_device_free(bd);
}

Test(options, initial_state_stop_saves_at_once)
{
    BackendDevice *bd = dev_new("crashed", "initial_state=stop,size=4K");
    DataSession *s = dev_set_ok(bd, DEVICE_STATE_STOP_COPY);
    Bytes st = {0};

    cr_assert_not_null(s);
    drain(s, &st, 1000);
    cr_expect_eq(st.len, 4096u);
    cr_expect_eq(dev_generation(bd), 0u, "STOP -> STOP_COPY is not a stop arc");
    dev_free_with(bd, s, NULL);
    bytes_free(&st);
}

/* ---- fsm conformance */

/* A valid image for the conformance devices (size=200K), so RESUMING can be left. */
static Bytes conformance_image;

static void
reach(BackendDevice *bd, DeviceState start, DataSession **ret_session)
{
    *ret_session = start == DEVICE_STATE_RUNNING ? NULL : dev_set_ok(bd, start);
    if (start == DEVICE_STATE_RESUMING) {
        feed(*ret_session, conformance_image.data, conformance_image.len, 65536);
    }
}

static void
check_one_request(uint32_t flags, const char *opts, DeviceState start, int target)
{
    BackendDevice *bd = dev_new("conf", opts);
    DataSession *old = NULL, *s = SENTINEL;
    FsmPath path = {0};
    int expect, r;

    reach(bd, start, &old);
    expect = fsm_compute_path(start, (DeviceState) target, flags, &path, NULL);
    r = dev_set(bd, (DeviceState) target, &s);
    if (expect < 0) {
        cr_expect_eq(r, -EINVAL, "0x%x %s->%d: %d", flags, fsm_state_name(start), target, r);
        cr_expect_eq(dev_state(bd), start, "0x%x %s->%d moved", flags, fsm_state_name(start),
                     target);
        cr_expect_eq(s, SENTINEL, "session written on failure");
        if (old) {
            cr_expect(session_alive(old), "a refused request ended the session");
        }
    } else {
        bool closes = false;

        cr_expect_eq(r, 0, "0x%x %s->%s: %d", flags, fsm_state_name(start), fsm_state_name(target),
                     r);
        cr_expect_eq(dev_state(bd), target);
        cr_expect_eq(s != NULL, path.session_arc >= 0, "0x%x %s->%s: session %p", flags,
                     fsm_state_name(start), fsm_state_name(target), (void *) s);
        for (unsigned i = 0; i < path.n_arcs; i++) {
            closes |= fsm_arc_closes_session(path.arcs[i].from, path.arcs[i].to);
        }
        if (old) {
            cr_expect_eq(session_alive(old), !closes, "0x%x %s->%s: old session alive=%d", flags,
                         fsm_state_name(start), fsm_state_name(target), session_alive(old));
        }
    }
    if (s != SENTINEL) {
        data_session_free(s);
    }
    dev_free_with(bd, old, NULL);
}

static void
check_conformance(uint32_t flags)
{
    char fl[64], opts[128];
    unsigned starts = 0;

    (void) snprintf(opts, sizeof(opts), "flags=%s,size=200K",
                    fsm_flags_to_string(flags, fl, sizeof(fl)));
    (void) save_plain("donor", "size=200K", &conformance_image);
    for (int start = 1; start < _DEVICE_STATE_MAX; start++) {
        if (!fsm_state_supported((DeviceState) start, flags)) {
            continue;
        }
        starts++;
        /* 0..7 and two numbers outside the kernel's enum */
        for (int target = 0; target <= _DEVICE_STATE_MAX + 1; target++) {
            check_one_request(flags, opts, (DeviceState) start, target);
        }
        check_one_request(flags, opts, (DeviceState) start, 99);
        check_one_request(flags, opts, (DeviceState) start, -1);
    }
    bytes_free(&conformance_image);
    cr_expect_eq(starts, 4u + ((flags & MIG_FLAG_P2P) ? 1u : 0u) +
                             ((flags & MIG_FLAG_PRE_COPY) ? 1u : 0u) +
                             ((flags & MIG_FLAG_P2P) && (flags & MIG_FLAG_PRE_COPY) ? 1u : 0u));
}

Test(fsm, conformance_stop_copy)
{
    check_conformance(MIG_FLAG_STOP_COPY);
}

Test(fsm, conformance_p2p)
{
    check_conformance(MIG_FLAG_STOP_COPY | MIG_FLAG_P2P);
}

Test(fsm, conformance_pre_copy)
{
    check_conformance(MIG_FLAG_STOP_COPY | MIG_FLAG_PRE_COPY);
}

Test(fsm, conformance_all)
{
    check_conformance(MIG_FLAGS_ALL);
}

/* Without complete data every way out of RESUMING fails in its first arc, RES -> STOP. */
Test(fsm, resuming_without_data_is_stuck)
{
    BackendDevice *bd = dev_new("stuck", "size=4K");
    DataSession *w = dev_set_ok(bd, DEVICE_STATE_RESUMING), *s = SENTINEL;

    for (int t = 0; t < _DEVICE_STATE_MAX; t++) {
        int r = dev_set(bd, (DeviceState) t, &s);

        cr_expect_eq(r, t == DEVICE_STATE_RESUMING ? 0 : -EINVAL, "RES -> %d: %d", t, r);
        cr_expect_eq(dev_state(bd), DEVICE_STATE_RESUMING);
    }
    cr_expect_null(s);
    cr_expect(session_alive(w));
    cr_expect_eq(bd->ops->reset(bd), 0);
    cr_expect_not(session_alive(w));
    dev_free_with(bd, w, NULL);
}

Test(fsm, refusals_leave_state_unchanged)
{
    BackendDevice *bd = dev_new("ref", "size=4K");
    BackendDevice *sc = dev_new("ref-sc", "flags=stop_copy,size=4K");
    DataSession *s = dev_set_ok(bd, DEVICE_STATE_STOP_COPY), *t = SENTINEL;
    static const int refused[] = {
        DEVICE_STATE_ERROR, DEVICE_STATE_PRE_COPY, DEVICE_STATE_PRE_COPY_P2P, 8, 99, -1};

    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        cr_expect_eq(dev_set(bd, (DeviceState) refused[i], &t), -EINVAL, "SC -> %d", refused[i]);
        cr_expect_eq(dev_state(bd), DEVICE_STATE_STOP_COPY);
    }
    cr_expect(session_alive(s));
    cr_expect_eq(t, SENTINEL);
    /* a target the flags do not have */
    cr_expect_eq(dev_set(sc, DEVICE_STATE_RUNNING_P2P, &t), -EINVAL);
    cr_expect_eq(dev_set(sc, DEVICE_STATE_PRE_COPY, &t), -EINVAL);
    cr_expect_eq(dev_state(sc), DEVICE_STATE_RUNNING);
    /* a request for the current state is no arc at all */
    cr_expect_eq(dev_set(sc, DEVICE_STATE_RUNNING, &t), 0);
    cr_expect_null(t);
    dev_free_with(bd, s, NULL);
    backend_device_free(sc);
}

Test(fsm, null_ret_session_is_allowed)
{
    BackendDevice *bd = dev_new("nul", "size=4K");

    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP_COPY, NULL), 0);
    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP, NULL), 0);
    cr_expect_eq(dev_set(bd, DEVICE_STATE_PRE_COPY, NULL), 0);
    backend_device_free(bd);
}

/* ---- saving and restoring without pre-copy */

Test(save, exact_length_then_eof)
{
    static const char *const sizes[] = {"64", "65", "100000", "65600", "1M", "3M"};
    static const uint64_t bytes[] = {64, 65, 100000, 65600, SIZE_1M, 3 * SIZE_1M};

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char opts[64];
        Bytes st = {0};

        (void) snprintf(opts, sizeof(opts), "size=%s", sizes[i]);
        (void) save_plain("len", opts, &st);
        cr_expect_eq(st.len, bytes[i], "size=%s saved %zu bytes", sizes[i], st.len);
        bytes_free(&st);
    }
}

Test(save, header_layout)
{
    Bytes st = {0};
    uint64_t v64;
    uint32_t v32;

    (void) save_plain("hdr", "size=200K,seed=0x1122334455667788", &st);
    cr_assert_eq(st.len, 200u * 1024u);
    cr_expect_eq(memcmp(st.data, "VFSIMDEV", 8), 0);
    memcpy(&v32, st.data + 8, 4);
    cr_expect_eq(le32toh(v32), 1u, "version");
    memcpy(&v32, st.data + 12, 4);
    cr_expect_eq(le32toh(v32), 0u, "a plain save announces no records");
    memcpy(&v64, st.data + 16, 8);
    cr_expect_eq(le64toh(v64), 200u * 1024u);
    memcpy(&v64, st.data + 24, 8);
    cr_expect_eq(le64toh(v64), UINT64_C(0x1122334455667788));
    memcpy(&v64, st.data + 32, 8);
    cr_expect_eq(le64toh(v64), 1u, "RUNNING_P2P -> STOP dirtied the device once");
    memcpy(&v32, st.data + 40, 4);
    cr_expect_eq(le32toh(v32), 65536u);
    memcpy(&v32, st.data + 60, 4);
    cr_expect_eq(le32toh(v32), crc32c(0, st.data, 60));
    bytes_free(&st);
}

Test(save, deterministic_content)
{
    Bytes a = {0}, b = {0}, c = {0};

    (void) save_plain("x", "size=300K,seed=5", &a);
    (void) save_plain("y", "size=300K,seed=5", &b);
    (void) save_plain("x", "size=300K,seed=6", &c);
    cr_assert_eq(a.len, b.len);
    cr_expect_eq(memcmp(a.data, b.data, a.len), 0, "same seed, same bytes");
    cr_expect_neq(memcmp(a.data + HDR, c.data + HDR, a.len - HDR), 0);
    bytes_free(&a);
    bytes_free(&b);
    bytes_free(&c);
}

/* The documented content model, computed here from docs/simulated-devices.md "Content model"
 * byte by byte, independently of sim.c and sim_content.c. */
static uint64_t
doc_splitmix64(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    return x ^ (x >> 31);
}

static uint8_t
doc_payload_byte(uint64_t seed, uint64_t gen, uint64_t n_chunks, uint64_t b)
{
    uint64_t i = b / CHUNK, j = (b % CHUNK) / 8;
    uint64_t version = gen / n_chunks + (i < gen % n_chunks ? 1 : 0);
    uint64_t key = doc_splitmix64(seed ^ (i * UINT64_C(0xD1B54A32D192ED03)) ^
                                  (version * UINT64_C(0x8CB92BA72F3D8DD7)));

    return (uint8_t) ((key ^ (j * UINT64_C(0x9E3779B97F4A7C15))) >> (8 * (b % 8)));
}

/* Every payload byte is the documented function of (seed, gen), and the whole stream is the
 * one this version of the sim has always produced: the CRC below was taken from the scalar
 * implementation before the vector one replaced it, so saved files and digests stay valid. */
Test(save, bytes_are_the_documented_content)
{
    const uint64_t size = 300 * 1024 + 5; /* a short last chunk, and an odd tail */
    const uint64_t n_chunks = (size - HDR + CHUNK - 1) / CHUNK;
    Bytes st = {0};
    uint64_t seed, gen;

    (void) save_plain("x", "size=307205,seed=5", &st);
    cr_assert_eq(st.len, size);
    memcpy(&seed, st.data + 24, 8);
    memcpy(&gen, st.data + 32, 8);
    seed = le64toh(seed);
    gen = le64toh(gen);
    cr_assert_eq(seed, 5u);
    for (uint64_t b = 0; b < size - HDR; b++) {
        cr_assert_eq(st.data[HDR + b], doc_payload_byte(seed, gen, n_chunks, b),
                     "payload byte %" PRIu64, b);
    }
    cr_expect_eq(crc32c(0, st.data, st.len), GOLDEN_PLAIN_CRC,
                 "the stream changed: CRC32C %#010x", (unsigned) crc32c(0, st.data, st.len));
    bytes_free(&st);
}

Test(save, data_size_in_every_state)
{
    BackendDevice *bd = dev_new("ds", "size=96");

    for (int t = 1; t < _DEVICE_STATE_MAX; t++) {
        uint64_t size = 0;

        (void) dev_set(bd, (DeviceState) t, NULL);
        cr_expect_eq(bd->ops->data_size(bd, &size), 0);
        cr_expect_eq(size, 96u, "in %s", fsm_state_name(dev_state(bd)));
    }
    backend_device_free(bd);
}

Test(save, round_trip)
{
    Bytes st = {0};
    uint64_t digest = save_plain("a", "size=1M", &st);
    BackendDevice *b = dev_new("b", "size=1M");
    char seed_b[64];
    uint64_t seed_a;

    cr_expect_neq(dev_digest(b), digest, "B already equals A");
    cr_expect_eq(restore(b, &st, 7777), 0);
    cr_expect_eq(dev_state(b), DEVICE_STATE_STOP);
    cr_expect_eq(dev_digest(b), digest);
    memcpy(&seed_a, st.data + 24, 8);
    cr_expect_eq(strtoull(dev_prop(b, "seed", seed_b, sizeof(seed_b)), NULL, 10), le64toh(seed_a),
                 "B took A's seed");
    cr_expect_eq(dev_generation(b), 1u);
    /* the restored content survives going back to RUNNING */
    (void) dev_set_ok(b, DEVICE_STATE_RUNNING);
    cr_expect_eq(dev_digest(b), digest);
    backend_device_free(b);
    bytes_free(&st);
}

/* data_rate: the session moves at most that many bytes a second, both ways (a lower bound on
 * the time taken, which a sleep guarantees on any machine), and the bytes are the same. */
Test(save, data_rate_paces_both_directions)
{
    Bytes plain = {0}, st = {0};
    uint64_t digest = save_plain("paced", "size=16K", &plain);
    BackendDevice *a = dev_new("paced", "size=16K,data_rate=32K");
    BackendDevice *b = dev_new("b", "size=16K,data_rate=32K");
    DataSession *s = dev_set_ok(a, DEVICE_STATE_STOP_COPY);
    char buf[64];
    double t0 = now_s(), t1;

    drain(s, &st, 4096);
    t1 = now_s();
    cr_expect_geq(t1 - t0, 0.5, "16K at 32K/s took %.3f s", t1 - t0);
    cr_expect_eq(st.len, plain.len);
    cr_expect_eq(memcmp(st.data, plain.data, st.len), 0, "the paced save is the plain one");
    cr_expect_str_eq(dev_prop(a, "data_rate", buf, sizeof(buf)), "32768");
    cr_expect_eq(restore(b, &st, 4096), 0);
    cr_expect_geq(now_s() - t1, 0.5, "16K restored at 32K/s took %.3f s", now_s() - t1);
    cr_expect_eq(dev_digest(b), digest);
    dev_free_with(a, s, NULL);
    backend_device_free(b);
    bytes_free(&plain);
    bytes_free(&st);
}

Test(save, round_trip_odd_chunking)
{
    static const size_t steps[] = {1, 13, 4096, 65536, 65537, 1 << 20};
    Bytes st = {0};
    uint64_t digest = save_plain("a", "size=300000", &st);

    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        BackendDevice *b = dev_new("b", "size=300000");

        cr_expect_eq(restore(b, &st, steps[i]), 0, "step %zu", steps[i]);
        cr_expect_eq(dev_digest(b), digest, "step %zu", steps[i]);
        backend_device_free(b);
    }
    bytes_free(&st);
}

Test(save, generation_counts_stop_arcs)
{
    BackendDevice *bd = dev_new("gen", "size=4K");
    uint64_t d0 = dev_digest(bd);

    (void) dev_set_ok(bd, DEVICE_STATE_RUNNING_P2P);
    cr_expect_eq(dev_generation(bd), 0u);
    (void) dev_set_ok(bd, DEVICE_STATE_STOP);
    cr_expect_eq(dev_generation(bd), 1u);
    cr_expect_neq(dev_digest(bd), d0);
    (void) dev_set_ok(bd, DEVICE_STATE_RUNNING);
    (void) dev_set_ok(bd, DEVICE_STATE_STOP);
    cr_expect_eq(dev_generation(bd), 2u);
    cr_expect_eq(bd->ops->reset(bd), 0);
    cr_expect_eq(dev_generation(bd), 2u, "reset keeps the content");
    backend_device_free(bd);
}

Test(save, throughput_256m, .timeout = 60)
{
    const uint64_t size = UINT64_C(256) << 20;
    const size_t step = 4u << 20;
    BackendDevice *a = dev_new("fast-a", "size=256M,initial_state=stop");
    BackendDevice *b = dev_new("fast-b", "size=256M,initial_state=stop");
    DataSession *r = dev_set_ok(a, DEVICE_STATE_STOP_COPY);
    DataSession *w = dev_set_ok(b, DEVICE_STATE_RESUMING);
    uint8_t *buf = malloc(step);
    double t_read = 0, t_write = 0;
    uint64_t total = 0;
    ssize_t n;

    cr_assert_not_null(buf);
    for (;;) {
        double t0 = now_s(), t1;

        n = r->ops->read(r, buf, step);
        t1 = now_s();
        t_read += t1 - t0;
        if (n <= 0) {
            break;
        }
        total += (uint64_t) n;
        cr_assert_eq(w->ops->write(w, buf, (size_t) n), n);
        t_write += now_s() - t1;
    }
    cr_expect_eq(n, 0);
    cr_expect_eq(total, size);
    cr_expect_eq(dev_set(b, DEVICE_STATE_STOP, NULL), 0);
    cr_expect_eq(dev_digest(b), dev_digest(a));
    cr_log_info("sim 256 MiB: save %.0f MB/s (%.3f s), verified restore %.0f MB/s (%.3f s)",
                (double) size / 1e6 / t_read, t_read, (double) size / 1e6 / t_write, t_write);
    free(buf);
    dev_free_with(a, r, w);
    backend_device_free(b);
}

/* ---- pre-copy */

static void
precopy_round_trip(const char *src_opts, const char *dst_opts, bool enomsg)
{
    BackendDevice *a = dev_new("pa", src_opts), *b = dev_new("pb", dst_opts);
    DataSession *s = dev_set_ok(a, DEVICE_STATE_PRE_COPY), *none = SENTINEL;
    uint8_t tmp[100];
    Bytes st = {0};
    size_t offs[4096], n;
    uint64_t initial, dirty, digest, v;

    cr_assert_not_null(s);
    for (int round = 0; round < 4; round++) {
        cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
        cr_expect_gt(round == 0 ? initial : dirty, 0u, "round %d has nothing to send", round);
        cr_expect_eq(drain_precopy(s, &st, 10000), enomsg ? -ENOMSG : 0, "temporary end");
        cr_expect_eq(s->ops->read(s, tmp, sizeof(tmp)), enomsg ? -ENOMSG : 0, "again");
        cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
        cr_expect_eq(initial, 0u);
        cr_expect_gt(dirty, 0u, "precopy_dirty dirties on every PRECOPY_INFO");
        cr_expect_eq(drain_precopy(s, &st, 3333), enomsg ? -ENOMSG : 0);
    }
    cr_assert_eq(dev_set(a, DEVICE_STATE_STOP_COPY, &none), 0);
    cr_expect_null(none, "PRE_COPY -> STOP_COPY opened a session");
    cr_expect(session_alive(s));
    cr_expect_eq(s->ops->precopy_info(s, &initial, &dirty), -EINVAL, "in STOP_COPY");
    drain(s, &st, 10000);
    digest = dev_digest(a);

    /* the stream ends with END carrying the final generation */
    n = stream_records(&st, SIZE_1M, offs, 4096);
    cr_assert_gt(n, 1u);
    memcpy(&v, st.data + offs[n - 1] + 8, 8);
    cr_expect_eq(st.data[offs[n - 1]], 2, "the last record is END");
    cr_expect_eq(le64toh(v), dev_generation(a));
    cr_expect_eq(offs[n - 1] + REC, st.len);

    cr_expect_neq(dev_digest(b), digest);
    cr_expect_eq(restore(b, &st, 7777), 0);
    cr_expect_eq(dev_digest(b), digest);
    dev_free_with(a, s, NULL);
    backend_device_free(b);
    bytes_free(&st);
}

Test(precopy, round_trip_end_zero)
{
    precopy_round_trip("size=1M,precopy_dirty=200K", "size=1M", false);
}

Test(precopy, round_trip_end_enomsg)
{
    precopy_round_trip("size=1M,precopy_dirty=200K,precopy_end=enomsg", "size=1M", true);
}

Test(precopy, round_trip_without_p2p)
{
    precopy_round_trip("flags=stop_copy+pre_copy,size=1M,precopy_dirty=1", "size=1M", false);
}

Test(precopy, round_trip_whole_device_dirty)
{
    /* 3 MiB dirtied per call: more than the 16 chunks, so every chunk is re-sent once */
    precopy_round_trip("size=1M,precopy_dirty=3M", "size=1M", false);
}

Test(precopy, destination_flags_do_not_matter)
{
    precopy_round_trip("size=1M,precopy_dirty=64K", "flags=stop_copy,size=1M", false);
}

/* 1 MiB = 16 chunks, the last one 64 bytes short; 200K dirties 4 chunks per call. */
Test(precopy, info_is_exact)
{
    const uint64_t rec = REC + CHUNK, all = 16 * rec - HDR;
    BackendDevice *bd = dev_new("info", "size=1M,precopy_dirty=200K");
    DataSession *s = dev_set_ok(bd, DEVICE_STATE_PRE_COPY);
    uint64_t initial, dirty;
    uint8_t buf[1000];
    Bytes st = {0};

    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(initial, SIZE_1M);
    cr_expect_eq(dirty, 4 * rec);
    cr_expect_eq(s->ops->read(s, buf, sizeof(buf)), (ssize_t) sizeof(buf));
    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(initial, SIZE_1M - sizeof(buf));
    cr_expect_eq(dirty, 8 * rec);
    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(dirty, all, "all 16 chunks, the short one included");
    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(dirty, all, "a chunk dirty twice is sent once");
    cr_expect_eq(dev_generation(bd), 20u);

    cr_expect_eq(drain_precopy(s, &st, 4096), 0);
    cr_expect_eq(st.len, SIZE_1M - sizeof(buf) + all);
    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(initial, 0u);
    cr_expect_eq(dirty, 4 * rec);

    /* PRE_COPY_P2P: the device no longer dirties on the ioctl */
    (void) dev_set_ok(bd, DEVICE_STATE_PRE_COPY_P2P);
    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(dirty, 4 * rec);
    cr_expect_eq(dev_generation(bd), 24u);
    dev_free_with(bd, s, NULL);
    bytes_free(&st);
}

/* ---- dirty_rate, on a clock the test steps: no test here sleeps */

static _Atomic uint64_t fake_now_ns = UINT64_C(1000000000);

static uint64_t
fake_clock(void)
{
    return atomic_load(&fake_now_ns);
}

static void
fake_clock_step_ms(uint64_t ms)
{
    atomic_fetch_add(&fake_now_ns, ms * 1000000u);
}

static void
fake_clock_setup(void)
{
    sim_set_clock(fake_clock);
}

static void
fake_clock_teardown(void)
{
    sim_set_clock(NULL);
}

/* 1 MiB = 16 chunks; 100K/s dirties 1.5625 chunks a second, so the carried fraction shows. */
Test(dirty_rate, chunks_follow_the_clock_exactly, .init = fake_clock_setup,
     .fini = fake_clock_teardown)
{
    const uint64_t rec = REC + CHUNK;
    BackendDevice *bd = dev_new("rate", "size=1M,dirty_rate=100K");
    DataSession *s = dev_set_ok(bd, DEVICE_STATE_PRE_COPY);
    uint64_t initial, dirty, g0 = dev_generation(bd);
    char buf[64];
    Bytes st = {0};

    cr_expect_str_eq(dev_prop(bd, "dirty_rate", buf, sizeof(buf)), "102400");
    cr_expect_eq(drain_precopy(s, &st, 65536), 0, "the image, at a clock that stands still");
    cr_expect_eq(st.len, SIZE_1M);
    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(dirty, 0u, "no time passed: nothing dirty");
    cr_expect_eq(dev_generation(bd), g0);

    fake_clock_step_ms(1000); /* 102400 bytes: 1 chunk, 36864 carried */
    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(dirty, 1 * rec);
    fake_clock_step_ms(1000); /* 204800: 3 chunks, 8192 carried */
    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(dirty, 3 * rec, "the fraction of a chunk carried over");
    cr_expect_eq(dev_generation(bd), g0 + 3);
    fake_clock_step_ms(560); /* 8192 + 57344 = 65536: exactly one more */
    cr_expect_eq(drain_precopy(s, &st, 4096), 0, "read() looks at the clock too");
    cr_expect_eq(st.len, SIZE_1M + 4 * rec);
    cr_expect_eq(dev_generation(bd), g0 + 4);
    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(dirty, 0u);

    /* a clock that goes back (only a test's can) dirties nothing and loses nothing */
    atomic_fetch_sub(&fake_now_ns, 2000000000u);
    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(dirty, 0u);
    dev_free_with(bd, s, NULL);
    bytes_free(&st);
}

/* Quiesced in PRE_COPY_P2P, dirtying again back in PRE_COPY; leaving PRE_COPY counts the time
 * up to the arc. */
Test(dirty_rate, only_pre_copy_dirties, .init = fake_clock_setup, .fini = fake_clock_teardown)
{
    BackendDevice *bd = dev_new("p2p", "size=1M,dirty_rate=64K");
    DataSession *s = dev_set_ok(bd, DEVICE_STATE_PRE_COPY), *none = SENTINEL;
    uint64_t initial, dirty, g0 = dev_generation(bd);

    fake_clock_step_ms(2000); /* 2 chunks, counted at the arc to PRE_COPY_P2P */
    cr_assert_eq(dev_set(bd, DEVICE_STATE_PRE_COPY_P2P, &none), 0);
    cr_expect_eq(dev_generation(bd), g0 + 2);
    fake_clock_step_ms(10000);
    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(dev_generation(bd), g0 + 2, "PRE_COPY_P2P is quiesced");
    cr_assert_eq(dev_set(bd, DEVICE_STATE_PRE_COPY, &none), 0);
    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(dev_generation(bd), g0 + 2, "the quiesced time does not count afterwards");
    fake_clock_step_ms(3000);
    /* PRE_COPY -> PRE_COPY_P2P -> STOP_COPY: 3 chunks, then the stop's own change */
    cr_assert_eq(dev_set(bd, DEVICE_STATE_STOP_COPY, &none), 0);
    cr_expect_eq(dev_generation(bd), g0 + 2 + 3 + 1);
    fake_clock_step_ms(10000);
    cr_expect_eq(dev_generation(bd), g0 + 6, "STOP_COPY does not dirty");
    dev_free_with(bd, s, NULL);
}

/* A workload the reader cannot keep up with: the destination still gets the final content. */
Test(dirty_rate, round_trip_under_load, .init = fake_clock_setup, .fini = fake_clock_teardown)
{
    BackendDevice *a = dev_new("ra", "size=1M,dirty_rate=1G"), *b = dev_new("rb", "size=1M");
    DataSession *s = dev_set_ok(a, DEVICE_STATE_PRE_COPY), *none = SENTINEL;
    uint64_t initial, dirty;
    Bytes st = {0};

    for (int round = 0; round < 5; round++) {
        fake_clock_step_ms(1); /* 1 MiB: every chunk */
        cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
        cr_expect_eq(dirty, 16 * (REC + CHUNK) - HDR, "round %d: the whole device", round);
        cr_expect_eq(drain_precopy(s, &st, 100000), 0);
    }
    fake_clock_step_ms(1);
    cr_assert_eq(dev_set(a, DEVICE_STATE_STOP_COPY, &none), 0);
    drain(s, &st, 77777);
    cr_expect_eq(restore(b, &st, 65536), 0);
    cr_expect_eq(dev_digest(b), dev_digest(a));
    dev_free_with(a, s, NULL);
    backend_device_free(b);
    bytes_free(&st);
}

Test(precopy, info_outside_precopy)
{
    BackendDevice *bd = dev_new("out", "size=4K");
    DataSession *s = dev_set_ok(bd, DEVICE_STATE_STOP_COPY), *w;
    uint64_t initial = 1, dirty = 2;

    cr_expect_eq(s->ops->precopy_info(s, &initial, &dirty), -EINVAL, "plain STOP_COPY");
    cr_expect_eq(initial, 1u);
    cr_expect_eq(dirty, 2u);
    (void) dev_set_ok(bd, DEVICE_STATE_STOP);
    w = dev_set_ok(bd, DEVICE_STATE_RESUMING);
    cr_expect_eq(w->ops->precopy_info(w, &initial, &dirty), -ENOTTY, "the resuming fd");
    dev_free_with(bd, s, w);
}

Test(precopy, stale_session_is_enodev)
{
    BackendDevice *bd = dev_new("stale", "size=4K");
    DataSession *s1 = dev_set_ok(bd, DEVICE_STATE_PRE_COPY), *s2;
    uint64_t initial, dirty;
    uint8_t buf[16];

    (void) dev_set_ok(bd, DEVICE_STATE_RUNNING); /* PC -> RUN ends it */
    cr_expect_eq(s1->ops->read(s1, buf, sizeof(buf)), -ENODEV);
    /* mtty and mlx5 look at the device state before the fd */
    cr_expect_eq(s1->ops->precopy_info(s1, &initial, &dirty), -EINVAL);
    s2 = dev_set_ok(bd, DEVICE_STATE_PRE_COPY);
    cr_assert_not_null(s2);
    cr_expect_neq(s2, s1);
    cr_expect_eq(s1->ops->precopy_info(s1, &initial, &dirty), -ENODEV);
    cr_expect_eq(s2->ops->precopy_info(s2, &initial, &dirty), 0);
    cr_expect_eq(initial, 4096u);
    dev_free_with(bd, s1, s2);
}

Test(precopy, stop_aborts_precopy)
{
    BackendDevice *bd = dev_new("abort", "size=4K");
    DataSession *s = dev_set_ok(bd, DEVICE_STATE_PRE_COPY), *t;
    uint8_t buf[16];

    /* PC -> STOP goes through RUNNING: the session ends, no new one */
    t = dev_set_ok(bd, DEVICE_STATE_STOP);
    cr_expect_null(t);
    cr_expect_eq(s->ops->read(s, buf, sizeof(buf)), -ENODEV);
    dev_free_with(bd, s, NULL);
}

/* ---- resuming: validation */

/* Feeds @st with the byte at @flip changed, in 4 KiB writes; expects the write holding it to
 * fail -EFAULT, the session to be broken, RESUMING -> STOP to fail, and reset to recover. */
static void
expect_corruption_caught(const Bytes *st, uint64_t size, size_t flip)
{
    char opts[64];
    BackendDevice *b;
    DataSession *w;
    uint8_t *copy = malloc(st->len);
    size_t off;

    (void) snprintf(opts, sizeof(opts), "size=%" PRIu64, size);
    b = dev_new("victim", opts);
    w = dev_set_ok(b, DEVICE_STATE_RESUMING);
    cr_assert_not_null(copy);
    memcpy(copy, st->data, st->len);
    copy[flip] ^= 0x40;
    for (off = 0; off + 4096 <= flip; off += 4096) {
        cr_assert_eq(w->ops->write(w, copy + off, 4096), 4096);
    }
    cr_expect_eq(w->ops->write(w, copy + off, st->len - off < 4096 ? st->len - off : 4096), -EFAULT,
                 "flip at %zu", flip);
    cr_expect_eq(w->ops->write(w, copy, 1), -EIO, "a broken session takes nothing more");
    cr_expect_eq(dev_set(b, DEVICE_STATE_STOP, NULL), -EINVAL);
    cr_expect_eq(dev_state(b), DEVICE_STATE_RESUMING);
    cr_expect_eq(dev_set(b, DEVICE_STATE_RUNNING, NULL), -EINVAL);
    cr_expect_eq(dev_state(b), DEVICE_STATE_RESUMING);
    cr_expect_eq(b->ops->reset(b), 0);
    cr_expect_eq(dev_state(b), DEVICE_STATE_RUNNING);
    cr_expect_eq(w->ops->write(w, copy, 1), -ENODEV);
    free(copy);
    dev_free_with(b, w, NULL);
}

/* The two ends of a resume test: @st saved from the source, the destination @b in RESUMING
 * with its write session @w, and the source's digest a complete restore must reproduce. */
typedef struct Resume {
    BackendDevice *a; /* the source while a test still needs it, else NULL */
    BackendDevice *b;
    DataSession *w;
    Bytes st;
    uint64_t digest;
} Resume;

/* A two-round pre-copy stream of a fresh "a" with @src_opts, for a 1 MiB "b". */
static Resume
resume_precopy(const char *src_opts)
{
    Resume t = {.a = dev_new("a", src_opts), .b = dev_new("b", "size=1M")};

    t.w = dev_set_ok(t.b, DEVICE_STATE_RESUMING);
    t.digest = save_precopy(t.a, &t.st, 2);
    return t;
}

/* A plain save of a fresh "a" with @src_opts, for a "b" with @dst_opts. */
static Resume
resume_plain(const char *src_opts, const char *dst_opts)
{
    Resume t = {0};

    t.digest = save_plain("a", src_opts, &t.st);
    t.b = dev_new("b", dst_opts);
    t.w = dev_set_ok(t.b, DEVICE_STATE_RESUMING);
    return t;
}

static void
resume_done(Resume *t)
{
    data_session_free(t->w);
    backend_device_free(t->a);
    backend_device_free(t->b);
    bytes_free(&t->st);
}

Test(resume, corrupt_header)
{
    Bytes st = {0};

    (void) save_plain("a", "size=256K", &st);
    expect_corruption_caught(&st, 256 * 1024, 3);  /* magic */
    expect_corruption_caught(&st, 256 * 1024, 26); /* seed: only the CRC can tell */
    expect_corruption_caught(&st, 256 * 1024, 61); /* the CRC itself */
    expect_corruption_caught(&st, 256 * 1024, 50); /* reserved */
    bytes_free(&st);
}

Test(resume, corrupt_payload)
{
    Bytes st = {0};

    (void) save_plain("a", "size=256K", &st);
    expect_corruption_caught(&st, 256 * 1024, st.len / 2 + 3);
    expect_corruption_caught(&st, 256 * 1024, HDR);
    expect_corruption_caught(&st, 256 * 1024, st.len - 1);
    bytes_free(&st);
}

Test(resume, corrupt_record)
{
    BackendDevice *a = dev_new("a", "size=1M,precopy_dirty=100K");
    size_t offs[256], n;
    Bytes st = {0};

    (void) save_precopy(a, &st, 2);
    n = stream_records(&st, SIZE_1M, offs, 256);
    cr_assert_gt(n, 2u);
    expect_corruption_caught(&st, SIZE_1M, offs[0] + REC + 100); /* data */
    expect_corruption_caught(&st, SIZE_1M, offs[1]);             /* tag */
    expect_corruption_caught(&st, SIZE_1M, offs[1] + 8);         /* version */
    backend_device_free(a);
    bytes_free(&st);
}

Test(resume, replayed_record)
{
    Resume t = resume_precopy("size=1M,precopy_dirty=100K");
    size_t offs[64];

    cr_assert_gt(stream_records(&t.st, SIZE_1M, offs, 64), 2u);
    /* a pump that retries a write it believed lost sends a record twice */
    feed(t.w, t.st.data, offs[1], 65536);
    cr_expect_eq(t.w->ops->write(t.w, t.st.data + offs[0], offs[1] - offs[0]), -EFAULT);
    cr_expect_eq(dev_set(t.b, DEVICE_STATE_STOP, NULL), -EINVAL);
    resume_done(&t);
}

/* END's generation cannot be checked as it arrives: with the chunks held it only proves a
 * record is missing, which is RESUMING -> STOP's final validation. */
Test(resume, corrupt_end_generation)
{
    Resume t = resume_precopy("size=1M,precopy_dirty=100K");

    t.st.data[t.st.len - 8] ^= 0x40;
    feed(t.w, t.st.data, t.st.len, 65536);
    cr_expect_eq(dev_set(t.b, DEVICE_STATE_STOP, NULL), -EINVAL);
    cr_expect_eq(dev_state(t.b), DEVICE_STATE_RESUMING);
    resume_done(&t);
}

Test(resume, truncated_then_completed)
{
    Resume t = resume_plain("size=100K", "size=100K");

    feed(t.w, t.st.data, t.st.len - 1000, 4096);
    cr_expect_eq(dev_set(t.b, DEVICE_STATE_STOP, NULL), -EINVAL, "incomplete data passed");
    cr_expect_eq(dev_state(t.b), DEVICE_STATE_RESUMING);
    /* like mtty, an incomplete stream is not broken: the rest may still come */
    feed(t.w, t.st.data + t.st.len - 1000, 1000, 4096);
    cr_expect_eq(dev_set(t.b, DEVICE_STATE_STOP, NULL), 0);
    cr_expect_eq(dev_digest(t.b), t.digest);
    resume_done(&t);
}

Test(resume, truncated_header_and_empty)
{
    Resume t = resume_plain("size=4K", "size=4K");

    cr_expect_eq(dev_set(t.b, DEVICE_STATE_STOP, NULL), -EINVAL, "nothing written");
    feed(t.w, t.st.data, 10, 3);
    cr_expect_eq(dev_set(t.b, DEVICE_STATE_STOP, NULL), -EINVAL, "half a header");
    cr_expect_eq(dev_state(t.b), DEVICE_STATE_RESUMING);
    resume_done(&t);
}

Test(resume, too_many_bytes)
{
    Resume t = resume_plain("size=4K", "size=4K");
    DataSession *w = t.w;
    uint8_t *big = calloc(1, t.st.len + 1);

    cr_assert_not_null(big);
    memcpy(big, t.st.data, t.st.len);
    /* one write past the end is refused whole, as mtty does, and breaks nothing */
    cr_expect_eq(w->ops->write(w, big, t.st.len + 1), -ENOMEM);
    feed(w, t.st.data, t.st.len - 10, 1000);
    cr_expect_eq(w->ops->write(w, big + t.st.len - 10, 11), -ENOMEM);
    feed(w, t.st.data + t.st.len - 10, 10, 10);
    cr_expect_eq(w->ops->write(w, big, 1), -ENOMEM);
    cr_expect_eq(dev_set(t.b, DEVICE_STATE_STOP, NULL), 0);
    cr_expect_eq(dev_digest(t.b), t.digest);
    free(big);
    resume_done(&t);
}

Test(resume, byte_after_end_record)
{
    Resume t = resume_precopy("size=1M,precopy_dirty=64K");
    uint8_t zero = 0;

    feed(t.w, t.st.data, t.st.len, 65536);
    cr_expect_eq(t.w->ops->write(t.w, &zero, 1), -ENOMEM);
    resume_done(&t);
}

Test(resume, record_outside_chunk_layout)
{
    Resume t = resume_precopy("size=1M,precopy_dirty=64K");
    uint8_t rec[REC];
    uint32_t idx = htole32(16); /* chunks are 0..15 */
    size_t offs[64];

    cr_assert_gt(stream_records(&t.st, SIZE_1M, offs, 64), 1u);
    feed(t.w, t.st.data, offs[0], 65536);
    memcpy(rec, t.st.data + offs[0], REC);
    memcpy(rec + 4, &idx, 4);
    cr_expect_eq(t.w->ops->write(t.w, rec, REC), -ENOMEM);
    cr_expect_eq(t.w->ops->write(t.w, rec, 1), -EIO);
    cr_expect_eq(dev_set(t.b, DEVICE_STATE_STOP, NULL), -EINVAL);
    resume_done(&t);
}

Test(resume, missing_end_record)
{
    Resume t = resume_precopy("size=1M,precopy_dirty=64K");

    feed(t.w, t.st.data, t.st.len - REC, 65536);
    cr_expect_eq(dev_set(t.b, DEVICE_STATE_STOP, NULL), -EINVAL);
    cr_expect_eq(dev_state(t.b), DEVICE_STATE_RESUMING);
    feed(t.w, t.st.data + t.st.len - REC, REC, REC);
    cr_expect_eq(dev_set(t.b, DEVICE_STATE_STOP, NULL), 0);
    cr_expect_eq(dev_digest(t.b), t.digest);
    resume_done(&t);
}

Test(resume, missing_dirty_record)
{
    Resume t = resume_precopy("size=1M,precopy_dirty=64K");
    size_t offs[64], n;

    n = stream_records(&t.st, SIZE_1M, offs, 64);
    cr_assert_gt(n, 2u);
    /* drop the last chunk record: nothing later re-sends that chunk */
    feed(t.w, t.st.data, offs[n - 2], 65536);
    feed(t.w, t.st.data + offs[n - 1], REC, REC);
    cr_expect_eq(dev_set(t.b, DEVICE_STATE_STOP, NULL), -EINVAL);
    cr_expect_eq(dev_state(t.b), DEVICE_STATE_RESUMING);
    resume_done(&t);
}

Test(resume, size_mismatch)
{
    Resume t = resume_plain("size=1M", "size=2M");

    cr_expect_eq(t.w->ops->write(t.w, t.st.data, 4096), -EFAULT);
    cr_expect_eq(dev_set(t.b, DEVICE_STATE_STOP, NULL), -EINVAL);
    resume_done(&t);
}

Test(resume, handle_closed_before_validation)
{
    Resume t = resume_plain("size=64K", "size=64K");

    /* the driver holds its own reference to the migration file */
    feed(t.w, t.st.data, t.st.len, 4096);
    data_session_free(TAKE_PTR(t.w));
    cr_expect_eq(dev_set(t.b, DEVICE_STATE_STOP, NULL), 0);
    cr_expect_eq(dev_digest(t.b), t.digest);
    resume_done(&t);
}

Test(resume, wrong_direction_is_ebadf)
{
    BackendDevice *a = dev_new("a", "size=4K"), *b = dev_new("b", "size=4K");
    DataSession *r = dev_set_ok(a, DEVICE_STATE_STOP_COPY);
    DataSession *w = dev_set_ok(b, DEVICE_STATE_RESUMING);
    uint8_t buf[64] = {0};

    cr_expect_eq(r->ops->write(r, buf, sizeof(buf)), -EBADF);
    cr_expect_eq(w->ops->read(w, buf, sizeof(buf)), -EBADF);
    cr_expect_eq(b->ops->reset(b), 0);
    cr_expect_eq(w->ops->read(w, buf, sizeof(buf)), -EBADF, "EBADF comes before ENODEV");
    dev_free_with(a, r, w);
    backend_device_free(b);
}

/* ---- session lifetime */

Test(session, enodev_after_session_end)
{
    BackendDevice *a = dev_new("a", "size=4K"), *b = dev_new("b", "size=4K");
    DataSession *r = dev_set_ok(a, DEVICE_STATE_STOP_COPY), *w;
    uint8_t buf[4096];
    Bytes st = {0};

    drain(r, &st, 1000);
    (void) dev_set_ok(a, DEVICE_STATE_STOP); /* SC -> STOP */
    cr_expect_eq(r->ops->read(r, buf, sizeof(buf)), -ENODEV);
    w = dev_set_ok(b, DEVICE_STATE_RESUMING);
    feed(w, st.data, st.len, 1000);
    (void) dev_set_ok(b, DEVICE_STATE_STOP); /* RES -> STOP */
    cr_expect_eq(w->ops->write(w, buf, 1), -ENODEV);
    dev_free_with(a, r, w);
    backend_device_free(b);
    bytes_free(&st);
}

Test(session, enodev_after_reset)
{
    BackendDevice *bd = dev_new("rs", "size=64K");
    DataSession *s = dev_set_ok(bd, DEVICE_STATE_STOP_COPY);
    uint64_t digest = dev_digest(bd);
    uint8_t buf[100];

    cr_expect_eq(s->ops->read(s, buf, sizeof(buf)), (ssize_t) sizeof(buf));
    cr_expect_eq(bd->ops->reset(bd), 0);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_RUNNING);
    cr_expect_eq(s->ops->read(s, buf, sizeof(buf)), -ENODEV);
    cr_expect_eq(dev_digest(bd), digest, "reset keeps the content");
    dev_free_with(bd, s, NULL);
}

Test(session, enodev_after_device_free)
{
    BackendDevice *bd = dev_new("gone", "size=64K");
    DataSession *s = dev_set_ok(bd, DEVICE_STATE_PRE_COPY);
    uint64_t initial, dirty;
    uint8_t buf[100];

    backend_device_free(bd);
    cr_expect_eq(s->ops->read(s, buf, sizeof(buf)), -ENODEV);
    cr_expect_eq(s->ops->precopy_info(s, &initial, &dirty), -ENODEV);
    data_session_free(s); /* the last reference: ASan checks the device is freed once */
}

Test(session, session_free_keeps_device_state)
{
    BackendDevice *bd = dev_new("keep", "size=64K");
    DataSession *s = dev_set_ok(bd, DEVICE_STATE_STOP_COPY);

    data_session_free(s);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_STOP_COPY);
    (void) dev_set_ok(bd, DEVICE_STATE_RUNNING);
    backend_device_free(bd);
}

typedef struct Reader {
    DataSession *s;
    uint64_t total;
    ssize_t last;
} Reader;

static void *
reader_run(void *userdata)
{
    Reader *rd = userdata;
    static uint8_t buf[256 * 1024];

    while ((rd->last = rd->s->ops->read(rd->s, buf, sizeof(buf))) > 0) {
        rd->total += (uint64_t) rd->last;
    }
    return NULL;
}

Test(session, device_freed_while_reading)
{
    BackendDevice *bd = dev_new("race", "size=64M");
    Reader rd = {.s = dev_set_ok(bd, DEVICE_STATE_STOP_COPY)};
    struct timespec ms = {.tv_nsec = 1000000};
    pthread_t t;

    cr_assert_eq(pthread_create(&t, NULL, reader_run, &rd), 0);
    nanosleep(&ms, NULL);
    backend_device_free(bd);
    cr_assert_eq(pthread_join(t, NULL), 0);
    if (rd.last == 0) {
        cr_expect_eq(rd.total, UINT64_C(64) << 20, "EOF before the whole image");
    } else {
        cr_expect_eq(rd.last, -ENODEV);
        cr_expect_leq(rd.total, UINT64_C(64) << 20);
    }
    data_session_free(rd.s);
}

/* ---- fault injection */

Test(fault, fail_arc_every_time)
{
    BackendDevice *bd = dev_new("f", "size=4K,fail_arc=stop->stop_copy");
    DataSession *s = SENTINEL;

    /* RUNNING -> STOP_COPY is RUNNING_P2P, STOP, STOP_COPY: the third arc fails */
    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP_COPY, &s), -EIO);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_STOP, "not at the last completed hop");
    cr_expect_eq(s, SENTINEL);
    cr_expect_eq(dev_generation(bd), 1u, "the completed stop arc still counted");
    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP_COPY, &s), -EIO);
    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP_COPY, &s), -EIO);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_STOP);
    /* other arcs still work */
    cr_expect_null(dev_set_ok(bd, DEVICE_STATE_RUNNING));
    backend_device_free(bd);
}

Test(fault, fail_errno)
{
    BackendDevice *bd = dev_new("f", "size=4K,fail_arc=running->running_p2p,fail_errno=28");

    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP, NULL), -ENOSPC);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_RUNNING, "the first arc failed");
    backend_device_free(bd);
}

Test(fault, fail_nth)
{
    BackendDevice *bd = dev_new("f", "size=4K,fail_arc=run->rp2p,fail_nth=2");

    cr_expect_eq(dev_set(bd, DEVICE_STATE_RUNNING_P2P, NULL), 0, "run 1");
    cr_expect_eq(dev_set(bd, DEVICE_STATE_RUNNING, NULL), 0);
    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP, NULL), -EIO, "run 2");
    cr_expect_eq(dev_state(bd), DEVICE_STATE_RUNNING);
    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP, NULL), 0, "run 3");
    cr_expect_eq(dev_set(bd, DEVICE_STATE_RUNNING, NULL), 0);
    cr_expect_eq(dev_set(bd, DEVICE_STATE_RUNNING_P2P, NULL), 0, "run 4");
    backend_device_free(bd);
}

Test(fault, fail_to_error)
{
    BackendDevice *bd = dev_new("f", "size=4K,fail_arc=running_p2p->stop,fail_to_error=1");
    DataSession *s = SENTINEL;

    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP, &s), -EIO);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_ERROR);
    cr_expect_eq(s, SENTINEL);
    cr_expect_eq(dev_set(bd, DEVICE_STATE_RUNNING, &s), -EINVAL);
    cr_expect_eq(dev_set(bd, DEVICE_STATE_RUNNING_P2P, &s), -EINVAL);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_ERROR);
    cr_expect_eq(bd->ops->reset(bd), 0);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_RUNNING);
    cr_expect_null(dev_set_ok(bd, DEVICE_STATE_RUNNING_P2P));
    backend_device_free(bd);
}

Test(fault, fail_to_error_ends_the_session)
{
    BackendDevice *bd = dev_new("f", "size=4K,fail_arc=pcp2p->sc,fail_to_error=1,fail_errno=110");
    DataSession *s = dev_set_ok(bd, DEVICE_STATE_PRE_COPY);
    uint8_t buf[16];

    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP_COPY, NULL), -ETIMEDOUT);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_ERROR);
    cr_expect_eq(s->ops->read(s, buf, sizeof(buf)), -ENODEV);
    dev_free_with(bd, s, NULL);
}

Test(fault, failed_stop_copy_keeps_precopy_session)
{
    BackendDevice *bd = dev_new("f", "size=4K,fail_arc=pcp2p->sc");
    DataSession *s = dev_set_ok(bd, DEVICE_STATE_PRE_COPY);
    uint64_t initial, dirty;

    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP_COPY, NULL), -EIO);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_PRE_COPY_P2P);
    cr_expect_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(initial, 4096u);
    dev_free_with(bd, s, NULL);
}

Test(fault, arc_must_exist_for_the_flags)
{
    BackendDevice *bd = NULL;
    char err[256] = "";

    cr_expect_eq(sim_device_new("f", "fail_arc=running->stop", &bd, NULL, err, sizeof(err)),
                 -EINVAL);
    cr_expect(strstr(err, "fail_arc: 'running->stop'") != NULL, "%s", err);
    cr_expect(strstr(err, "stop_copy+p2p+pre_copy") != NULL, "%s", err);
    /* without P2P the kernel does run RUNNING -> STOP */
    bd = dev_new("f", "flags=stop_copy,size=4K,fail_arc=running->stop");
    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP_COPY, NULL), -EIO);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_RUNNING);
    backend_device_free(bd);
}

Test(fault, failing_resume_validation_is_not_the_injected_fault)
{
    BackendDevice *bd = dev_new("f", "size=4K,fail_arc=stop->resuming,fail_nth=2,fail_to_error=1");

    cr_expect_eq(dev_set(bd, DEVICE_STATE_RESUMING, NULL), 0);
    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP, NULL), -EINVAL, "no data written");
    cr_expect_eq(dev_state(bd), DEVICE_STATE_RESUMING, "validation failure is not ERROR");
    cr_expect_eq(bd->ops->reset(bd), 0);
    cr_expect_eq(dev_set(bd, DEVICE_STATE_RESUMING, NULL), -EIO);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_ERROR);
    backend_device_free(bd);
}

/* ---- latency */

/* A lower bound only: a busy machine makes the arcs slower, never faster. */
Test(latency, sleeps_per_arc)
{
    BackendDevice *bd = dev_new("slow", "size=4K,latency_ms=20");
    DataSession *s;
    double t0 = now_s(), elapsed;

    s = dev_set_ok(bd, DEVICE_STATE_STOP_COPY); /* RUNNING_P2P, STOP, STOP_COPY */
    elapsed = now_s() - t0;
    cr_expect_geq(elapsed, 0.060, "3 arcs took %.3f s", elapsed);
    dev_free_with(bd, s, NULL);
}

/* A request for the current state runs no arc, so it does not sleep: with a minute of latency
 * per arc it returns, or the test's timeout (half that minute) fails it. No speed is assumed. */
Test(latency, no_arc_no_sleep, .timeout = 30)
{
    BackendDevice *bd = dev_new("slow", "size=4K,latency_ms=60000,initial_state=stop_copy");

    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP_COPY, NULL), 0);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_STOP_COPY);
    backend_device_free(bd);
}

/* ---- hold: an arc that waits until a file exists */

typedef struct Setter {
    BackendDevice *bd;
    DeviceState target;
    int r;
    atomic_bool done;
} Setter;

static void *
setter_run(void *arg)
{
    Setter *st = arg;

    st->r = dev_set(st->bd, st->target, NULL);
    atomic_store(&st->done, true);
    return NULL;
}

/* A fresh directory for a release file: "<dir>/go", not yet created. */
static void
hold_dir(char *dir, size_t size, char *go, size_t go_size)
{
    const char *tmp = getenv("TMPDIR");

    (void) snprintf(dir, size, "%s/test_sim.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    cr_assert(mkdtemp(dir), "mkdtemp: %m");
    (void) snprintf(go, go_size, "%s/go", dir);
}

static void
touch(const char *path)
{
    FILE *f = fopen(path, "w");

    cr_assert(f, "%s: %m", path);
    (void) fclose(f);
}

/* Waits for a state of another thread: bounded by the test's timeout, not by a guess. */
static void
wait_holding(BackendDevice *bd)
{
    const struct timespec ms = {.tv_nsec = 1000000L};

    while (!sim_device_holding(bd)) {
        (void) nanosleep(&ms, NULL);
    }
}

Test(hold, the_arc_waits_until_the_file_exists, .timeout = 60)
{
    char dir[256], go[300], opts[400], buf[512];
    BackendDevice *bd;
    Setter st = {.target = DEVICE_STATE_STOP};
    pthread_t t;

    hold_dir(dir, sizeof(dir), go, sizeof(go));
    (void) snprintf(opts, sizeof(opts), "flags=stop_copy,size=4K,hold_arc=running->stop,"
                    "hold_until=%s", go);
    st.bd = bd = dev_new("held", opts);
    (void) snprintf(opts, sizeof(opts), "running->stop until %s (at most 60000 ms)", go);
    cr_expect_str_eq(dev_prop(bd, "hold", buf, sizeof(buf)), opts);
    cr_expect(!sim_device_holding(bd));
    cr_assert_eq(pthread_create(&t, NULL, setter_run, &st), 0);
    wait_holding(bd);
    cr_expect(!atomic_load(&st.done), "the held request returned before its release");
    touch(go);
    cr_assert_eq(pthread_join(t, NULL), 0);
    cr_expect_eq(st.r, 0);
    cr_expect(!sim_device_holding(bd));
    cr_expect_eq(dev_state(bd), DEVICE_STATE_STOP);
    cr_expect_eq(dev_generation(bd), 1u, "the held arc ran once released");
    /* The file still exists: later runs of the arc pass at once (the test's timeout says so:
     * hold_max_ms is a minute). */
    cr_expect_eq(bd->ops->reset(bd), 0);
    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP, NULL), 0);
    cr_expect_eq(dev_generation(bd), 2u);
    /* Other arcs never wait. */
    (void) unlink(go);
    cr_expect_eq(dev_set(bd, DEVICE_STATE_RUNNING, NULL), 0);
    backend_device_free(bd);
    (void) rmdir(dir);
}

Test(hold, unreleased_the_arc_fails_etimedout_and_changes_nothing, .timeout = 60)
{
    char dir[256], go[300], opts[400];
    BackendDevice *bd;
    DataSession *s = SENTINEL;
    double t0;

    hold_dir(dir, sizeof(dir), go, sizeof(go));
    (void) snprintf(opts, sizeof(opts), "flags=stop_copy,size=4K,hold_arc=stop->stop_copy,"
                    "hold_until=%s,hold_max_ms=50",
                    go);
    bd = dev_new("never", opts);
    t0 = now_s();
    /* RUNNING -> STOP_COPY is RUNNING -> STOP, STOP -> STOP_COPY: the second arc is held */
    cr_expect_eq(dev_set(bd, DEVICE_STATE_STOP_COPY, &s), -ETIMEDOUT);
    cr_expect_geq(now_s() - t0, 0.050, "it waited hold_max_ms first");
    cr_expect_eq(s, SENTINEL);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_STOP, "at the last completed hop");
    cr_expect_eq(dev_generation(bd), 1u, "only the completed stop arc counted");
    cr_expect(!sim_device_holding(bd));
    backend_device_free(bd);
    (void) rmdir(dir);
}

/* ---- the state memfd: a device survives its daemon (sim_device_adopt) */

static int
dev_state_fd_dup(BackendDevice *bd)
{
    BackendFd fds[BACKEND_MAX_FDS];
    int n = bd->ops->store_fds(bd, fds, BACKEND_MAX_FDS);

    cr_assert_eq(n, 1);
    cr_assert_str_eq(fds[0].role, "sim-state");
    return fcntl(fds[0].fd, F_DUPFD_CLOEXEC, 3);
}

Test(adopt, same_state_and_content_without_reset)
{
    BackendDevice *bd = dev_new("a0", "size=1M,precopy_dirty=65536");
    DataSession *s = NULL;
    BackendInfo info = {0};
    uint64_t initial = 0, dirty = 0;
    char digest[128], buf[128], gen[128], err[256] = "";
    int fd;

    cr_assert_eq(dev_set(bd, DEVICE_STATE_PRE_COPY, &s), 0);
    cr_assert_eq(s->ops->precopy_info(s, &initial, &dirty), 0); /* dirties: gen moves */
    data_session_free(s);
    cr_assert_eq(dev_set(bd, DEVICE_STATE_STOP, NULL), 0);
    (void) snprintf(digest, sizeof(digest), "%s", dev_prop(bd, "digest", buf, sizeof(buf)));
    (void) snprintf(gen, sizeof(gen), "%s", dev_prop(bd, "generation", buf, sizeof(buf)));
    cr_assert_str_neq(gen, "0");
    fd = dev_state_fd_dup(bd);
    backend_device_free(bd); /* the daemon dies; the store's copy keeps the memfd */

    cr_assert_eq(sim_device_adopt("a0", "size=1M,precopy_dirty=65536", fd, &bd, &info, err,
                                  sizeof(err)), 0, "%s", err);
    cr_expect_eq(info.initial_state, DEVICE_STATE_STOP);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_STOP);
    cr_expect_str_eq(dev_prop(bd, "digest", buf, sizeof(buf)), digest);
    cr_expect_str_eq(dev_prop(bd, "generation", buf, sizeof(buf)), gen);
    /* and it keeps working: its state goes on living in the same memfd */
    cr_assert_eq(dev_set(bd, DEVICE_STATE_RUNNING, NULL), 0);
    fd = dev_state_fd_dup(bd);
    backend_device_free(bd);
    cr_assert_eq(sim_device_adopt("a0", "size=1M,precopy_dirty=65536", fd, &bd, &info, err,
                                  sizeof(err)), 0, "%s", err);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_RUNNING);
    backend_device_free(bd);
}

Test(adopt, refuses_what_is_not_its_state)
{
    BackendDevice *bd = dev_new("a1", "size=1M"), *other = NULL;
    char err[256] = "";
    int fd = dev_state_fd_dup(bd), nullfd;
    uint32_t bad = 99;

    /* another size: another device */
    cr_expect_eq(sim_device_adopt("a1", "size=2M", fd, &other, NULL, err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "sim state") != NULL, "%s", err);
    cr_expect_eq(fcntl(fd, F_GETFD), FD_CLOEXEC, "a refused fd stays the caller's");
    /* a state out of range */
    cr_assert_eq(pwrite(fd, &bad, sizeof(bad), 12), (ssize_t) sizeof(bad));
    cr_expect_eq(sim_device_adopt("a1", "size=1M", fd, &other, NULL, err, sizeof(err)), -EINVAL);
    /* a file that is no memfd */
    nullfd = open("/dev/null", O_RDWR | O_CLOEXEC);
    cr_expect_eq(sim_device_adopt("a1", "size=1M", nullfd, &other, NULL, err, sizeof(err)),
                 -EINVAL);
    cr_expect(strstr(err, "not a memfd") != NULL, "%s", err);
    (void) close(nullfd);
    (void) close(fd);
    backend_device_free(bd);
}

/* A session's data fd (its token) lives as long as the handle, names its device, and is
 * what the adopt path accepts from the store for that device only. */
Test(adopt, data_fd_token_names_its_device)
{
    BackendDevice *bd = dev_new("t0", "size=1M"), *other = dev_new("t1", "size=1M"), *again;
    DataSession *s = NULL;
    BackendInfo info = {0};
    char err[256] = "";
    int fd, kept, state_fd, memfd;

    cr_assert_eq(dev_set(bd, DEVICE_STATE_PRE_COPY, &s), 0);
    fd = data_session_fd(s);
    cr_assert_geq(fd, 0, "a session has a real fd");
    cr_expect_eq(bd->ops->data_fd_check(bd, fd, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(other->ops->data_fd_check(other, fd, err, sizeof(err)), -EBADF);
    cr_expect(strstr(err, "another device") != NULL, "%s", err);
    memfd = memfd_create("not-a-token", MFD_CLOEXEC);
    cr_expect_eq(bd->ops->data_fd_check(bd, memfd, err, sizeof(err)), -EBADF);
    cr_expect(strstr(err, "not a sealed sim data token") != NULL, "%s", err);
    (void) close(memfd);
    /* the device dies with its daemon; the store's copies bring it and the token back */
    kept = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    state_fd = dev_state_fd_dup(bd);
    data_session_free(s);
    cr_expect_eq(fcntl(fd, F_GETFD), -1, "closing the session closes its fd");
    backend_device_free(bd);
    cr_assert_eq(sim_device_adopt("t0", "size=1M", state_fd, &again, &info, err, sizeof(err)),
                 0, "%s", err);
    cr_expect_eq(info.initial_state, DEVICE_STATE_PRE_COPY);
    cr_expect_eq(again->ops->data_fd_check(again, kept, err, sizeof(err)), 0, "%s", err);
    (void) close(kept);
    backend_device_free(again);
    backend_device_free(other);
}

/* The interrupts' set-up survives as the kernel keeps it: the index stays enabled with its
 * vectors, an armed vector signals nothing until the fd store gives its eventfd back, and the
 * sim takes back only what its memfd says was armed. */
Test(adopt, interrupts_survive_and_take_back_only_armed_vectors)
{
    BackendDevice *bd = dev_new("i0", "size=1M,msix=8");
    BackendInfo info = {0};
    int32_t fds[4] = {-1, -1, -1, -1}, none[2] = {-1, -1};
    char err[256] = "";
    eventfd_t n = 0;
    int fd;

    for (int i = 0; i < 3; i++) {
        fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    }
    const uint32_t trig = BACKEND_IRQ_SET_DATA_EVENTFD | BACKEND_IRQ_SET_ACTION_TRIGGER;
    const uint32_t loop = BACKEND_IRQ_SET_DATA_NONE | BACKEND_IRQ_SET_ACTION_TRIGGER;
    cr_assert_eq(bd->ops->set_irqs(bd, trig, BACKEND_IRQ_INDEX_MSIX, 0, 2, fds), 0);
    fd = dev_state_fd_dup(bd);
    backend_device_free(bd);
    cr_assert_eq(sim_device_adopt("i0", "size=1M,msix=8", fd, &bd, &info, err, sizeof(err)), 0,
                 "%s", err);
    /* the index is still MSI-X: enabling MSI is refused as the kernel refuses it */
    cr_expect_eq(bd->ops->set_irqs(bd, trig, BACKEND_IRQ_INDEX_MSI, 0, 1, &fds[2]), -EINVAL);
    cr_expect_eq(bd->ops->set_irqs(bd, loop, BACKEND_IRQ_INDEX_MSIX, 1, 1, NULL), 0);
    cr_expect_neq(eventfd_read(fds[1], &n), 0, "no eventfd until the store gives it back");
    /* vector 2 was never armed; MSI is not the enabled index */
    cr_expect_eq(bd->ops->irq_readopt(bd, BACKEND_IRQ_INDEX_MSIX, 2, 1, &fds[2]), -ESTALE);
    cr_expect_eq(bd->ops->irq_readopt(bd, BACKEND_IRQ_INDEX_MSI, 0, 1, &fds[0]), -ESTALE);
    cr_assert_eq(bd->ops->irq_readopt(bd, BACKEND_IRQ_INDEX_MSIX, 0, 2, fds), 0);
    cr_expect_eq(bd->ops->irq_readopt(bd, BACKEND_IRQ_INDEX_MSIX, 0, 1, fds), -ESTALE,
                 "vector 0 has its eventfd again");
    cr_expect_eq(bd->ops->irq_readopt(bd, BACKEND_IRQ_INDEX_MSIX, 0, 2, none), 0);
    cr_expect_eq(bd->ops->set_irqs(bd, loop, BACKEND_IRQ_INDEX_MSIX, 1, 1, NULL), 0);
    cr_expect_eq(eventfd_read(fds[1], &n), 0);
    cr_expect_eq(n, 1);
    /* a memfd that claims more vectors than the options allow is not this device's */
    fd = dev_state_fd_dup(bd);
    backend_device_free(bd);
    cr_expect_eq(sim_device_adopt("i0", "size=1M,msix=1", fd, &bd, &info, err, sizeof(err)),
                 -EINVAL);
    cr_expect(strstr(err, "interrupt") != NULL, "%s", err);
    for (int i = 0; i < 3; i++) {
        (void) close(fds[i]);
    }
    (void) close(fd);
}

/* The REQ trigger, like the others, is in the state memfd: an adopted device knows it had
 * one (a memfd saying so is refused by a device without req=1) and takes a new eventfd. */
Test(adopt, req_trigger_is_kept)
{
    BackendDevice *bd = dev_new("r0", "size=1M,req=1");
    const uint32_t loop = BACKEND_IRQ_SET_DATA_NONE | BACKEND_IRQ_SET_ACTION_TRIGGER;
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    BackendInfo info = {0};
    char err[256] = "";
    eventfd_t n = 0;
    int fd;

    cr_assert_eq(bd->ops->req_arm(bd, efd), 0);
    fd = dev_state_fd_dup(bd);
    backend_device_free(bd);
    cr_expect_eq(sim_device_adopt("r0", "size=1M", fd, &bd, &info, err, sizeof(err)), -EINVAL,
                 "a REQ trigger on a device without req=1");
    cr_assert_eq(sim_device_adopt("r0", "size=1M,req=1", fd, &bd, &info, err, sizeof(err)), 0,
                 "%s", err);
    cr_expect_eq(bd->ops->set_irqs(bd, loop, BACKEND_IRQ_INDEX_REQ, 0, 1, NULL), -EINVAL,
                 "its eventfd died with the daemon");
    cr_assert_eq(bd->ops->req_arm(bd, efd), 0);
    cr_expect_eq(bd->ops->set_irqs(bd, loop, BACKEND_IRQ_INDEX_REQ, 0, 1, NULL), 0);
    cr_expect_eq(eventfd_read(efd, &n), 0);
    cr_expect_eq(n, 1);
    backend_device_free(bd);
    (void) close(efd);
}
