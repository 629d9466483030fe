/* SPDX-License-Identifier: MIT */
/*
 * fuzz_sim — arbitrary bytes through the sim back-end's parsers (daemon/backend/sim.c),
 * reached as the daemon reaches them, through sim_device_new() and the backend vtable.
 * The first input byte picks what the rest is:
 *   even  an options string ("key=value,..."), as AttachDevice passes it;
 *   odd   migration data written into a RESUMING device (size=4K), in writes of
 *         (second byte + 1) bytes, then RESUMING -> STOP, the "final validation".
 * Properties, besides no crash and no out-of-bounds access:
 *   - refused options make no device and say why in one printable sentence; accepted ones
 *     make a device that describes itself, not migratable devices offering no flags;
 *   - refused migration data changes nothing: the device describes the same content
 *     (digest, seed, generation) after the failed arc as before it;
 *   - accepted data round-trips: the device's new image, resumed into a fresh device, is
 *     accepted and saved back byte for byte.
 */
#include <errno.h>

#include "backend/backend.h"
#include "fuzz.h"

#define SIM_OPTIONS "size=4K,initial_state=stop"
#define IMAGE_MAX 8192

static BackendDevice *
new_device(const char *name)
{
    BackendDevice *bd = NULL;
    char err[256];

    fuzz_check(sim_device_new(name, SIM_OPTIONS, &bd, NULL, err, sizeof(err)) == 0,
               "the resume device is made");
    return bd;
}

/* STOP -> STOP_COPY, the whole image read, -> STOP. Returns its size. */
static size_t
save_image(BackendDevice *bd, uint8_t *out)
{
    DataSession *s = NULL;
    size_t n = 0;
    ssize_t r;

    fuzz_check(bd->ops->set_state(bd, DEVICE_STATE_STOP_COPY, &s) == 0 && s, "STOP_COPY");
    while ((r = s->ops->read(s, out + n, IMAGE_MAX - n)) > 0) {
        n += (size_t) r;
    }
    fuzz_check(r == 0 && n < IMAGE_MAX, "an image is read to its end");
    data_session_free(s);
    fuzz_check(bd->ops->set_state(bd, DEVICE_STATE_STOP, NULL) == 0, "STOP_COPY -> STOP");
    return n;
}

/* RESUMING, @data in writes of @step bytes, -> STOP. 0 when the device took it. */
static int
resume(BackendDevice *bd, const uint8_t *data, size_t size, size_t step)
{
    DataSession *s = NULL;
    int r = 0;

    fuzz_check(bd->ops->set_state(bd, DEVICE_STATE_RESUMING, &s) == 0 && s, "RESUMING");
    for (size_t off = 0; off < size && r == 0;) {
        ssize_t n = s->ops->write(s, data + off, size - off < step ? size - off : step);

        fuzz_check(n != 0, "a write takes something or fails");
        r = n < 0 ? (int) n : 0;
        off += n > 0 ? (size_t) n : 0;
    }
    if (r == 0) {
        r = bd->ops->set_state(bd, DEVICE_STATE_STOP, NULL);
    }
    data_session_free(s);
    return r;
}

/* What the device says of itself (digest, seed, generation, ...): its content. */
static void
describe(BackendDevice *bd, BackendProperty *props)
{
    memset(props, 0, BACKEND_MAX_PROPERTIES * sizeof(*props));
    fuzz_check(bd->ops->describe(bd, props, BACKEND_MAX_PROPERTIES) >= 0, "describe");
}

static void
check_resume(const uint8_t *data, size_t size, size_t step)
{
    static uint8_t image[IMAGE_MAX], again[IMAGE_MAX];
    BackendProperty before[BACKEND_MAX_PROPERTIES], after[BACKEND_MAX_PROPERTIES];
    BackendDevice *bd = new_device("fuzz"), *fresh;
    size_t n;

    describe(bd, before);
    if (resume(bd, data, size, step) < 0) {
        describe(bd, after);
        fuzz_check(memcmp(before, after, sizeof(before)) == 0,
                   "refused migration data changes nothing");
        fuzz_outcome = "migration data refused";
    } else {
        n = save_image(bd, image);
        fresh = new_device("fresh");
        fuzz_check(resume(fresh, image, n, IMAGE_MAX) == 0, "a saved image resumes");
        fuzz_check(save_image(fresh, again) == n && memcmp(again, image, n) == 0,
                   "a resumed image saves back byte for byte");
        backend_device_free(fresh);
        fuzz_outcome = "migration data accepted";
    }
    backend_device_free(bd);
}

static void
check_options(const char *options)
{
    BackendDevice *bd = (BackendDevice *) &bd; /* anything but NULL: a refusal leaves it */
    BackendInfo info;
    BackendProperty props[32];
    static char err[512];

    if (sim_device_new("fuzz", options, &bd, &info, err, sizeof(err)) < 0) {
        fuzz_check(bd == (BackendDevice *) &bd, "refused options make no device");
        fuzz_check_message(err, sizeof(err));
        fuzz_outcome = err;
        return;
    }
    fuzz_check(info.migratable || info.mig_flags == 0, "a device that cannot migrate offers no flags");
    fuzz_check(bd->ops->describe(bd, props, 32) >= 0, "an accepted device describes itself");
    backend_device_free(bd);
    fuzz_outcome = "options accepted";
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char options[1024];

    if (size < 2) {
        return 0;
    }
    if (data[0] & 1) {
        if (size - 2 <= IMAGE_MAX) {
            check_resume(data + 2, size - 2, (size_t) data[1] + 1);
        }
        return 0;
    }
    fuzz_string(data + 1, size - 1, options, sizeof(options));
    check_options(options);
    return 0;
}

#ifndef FUZZ_LIBFUZZER
/* ---- seeds: a device's image (whole and in odd writes), and a pre-copy stream */

int
fuzz_write_seeds(const char *dir)
{
    static uint8_t s[2 + 4 * IMAGE_MAX];
    BackendDevice *bd = NULL;
    DataSession *a = NULL, *b = NULL;
    char err[256];
    size_t n;
    ssize_t r;

    bd = new_device("source");
    s[0] = 1;
    s[1] = 255;
    n = save_image(bd, s + 2);
    if (fuzz_write_file(dir, "resume-image", s, 2 + n)) {
        return 1;
    }
    s[1] = 6;
    if (fuzz_write_file(dir, "resume-image-small-writes", s, 2 + n)) {
        return 1;
    }
    backend_device_free(bd);
    /* pre-copy: RUNNING -> PRE_COPY, read, -> STOP_COPY, read to the end */
    fuzz_check(sim_device_new("source", "size=4K,precopy_dirty=1K", &bd, NULL, err,
                              sizeof(err)) == 0, "pre-copy device");
    fuzz_check(bd->ops->set_state(bd, DEVICE_STATE_PRE_COPY, &a) == 0 && a, "PRE_COPY");
    n = 0;
    while ((r = a->ops->read(a, s + 2 + n, IMAGE_MAX - n)) > 0 && n < IMAGE_MAX / 2) {
        n += (size_t) r;
    }
    fuzz_check(bd->ops->set_state(bd, DEVICE_STATE_STOP_COPY, &b) == 0, "STOP_COPY");
    b = b ? b : a;
    while ((r = b->ops->read(b, s + 2 + n, sizeof(s) - 2 - n)) > 0) {
        n += (size_t) r;
    }
    s[1] = 200;
    if (b != a) {
        data_session_free(b);
    }
    data_session_free(a);
    backend_device_free(bd);
    if (fuzz_write_file(dir, "resume-precopy", s, 2 + n)) {
        return 1;
    }
    static const char *const options[] = {
        "size=4K,initial_state=stop",
        "flags=stop_copy|p2p|pre_copy,size=1M,seed=7",
        "migratable=0,flags=stop_copy",
        "fail_arc=stop->stop_copy,fail_errno=5,fail_nth=2,fail_to_error=1",
        "hold_arc=stop->stop_copy,hold_until=/tmp/x,hold_max_ms=10",
        "precopy_end=enomsg,precopy_dirty=1K,data_rate=1M,latency_ms=0",
        "size=\x1b[31m,latency_ms=100000",
        "size=4K,size=8K",
        "hold_max_ms=5",
        "=x,y",
    };
    for (size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
        char name[32];

        s[0] = 0;
        memcpy(s + 1, options[i], strlen(options[i]));
        (void) snprintf(name, sizeof(name), "options-%zu", i);
        if (fuzz_write_file(dir, name, s, 1 + strlen(options[i]))) {
            return 1;
        }
    }
    return 0;
}
#endif
