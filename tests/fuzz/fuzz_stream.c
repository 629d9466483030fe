/* SPDX-License-Identifier: MIT */
/*
 * fuzz_stream — arbitrary bytes through the migration stream reader (daemon/core/stream.c).
 *
 * The first input byte picks a mode, the rest is a stream:
 *   bit 0  reseal: before reading, recompute every record header's CRCs (the payload CRC
 *          over whatever payload bytes are there). Random bytes almost never carry valid
 *          CRCs, so without this the fuzzer would spend its time on the first check; with
 *          it, it reaches the manifest parser, the order rules and the totals.
 *   bit 1  data channel: no stream header, a reader set up with
 *          stream_reader_expect_devices() for (second byte) devices, as a live migration
 *          data channel is.
 * Besides "no crash, no out-of-bounds read" (ASan; the input is an exactly sized heap
 * copy), it checks properties that must hold for every input:
 *   - whatever header or manifest the decoders accept re-encodes to the same bytes (one
 *     encoding per value, so nothing can hide in a stream);
 *   - a reader that says the stream is complete has seen every device end, and
 *     stream_reader_finish() agrees with stream_reader_complete().
 * The driver, the builds and the corpus: fuzz.h. fuzz_write_seeds() generates the seeds
 * (tests/fuzz/corpus/fuzz_stream/), which need valid CRCs.
 */
#include <errno.h>

#include "core/stream.h"
#include "fuzz.h"
#include "reseal.h"

#define MODE_RESEAL 1u
#define MODE_CHANNEL 2u

static StreamManifestDevice manifest_devices[STREAM_MAX_DEVICES];
static StreamReader reader;

/* The stateless decoders on their own: whatever they accept must re-encode identically. */
static void
check_canonical_header(const uint8_t *p, size_t size)
{
    StreamHeader h;
    uint8_t buf[STREAM_HEADER_SIZE];

    /* Any minor version is accepted but re-encodes as ours: compare headers of our minor. */
    if (size >= STREAM_HEADER_SIZE && stream_decode_header(p, &h) == 0 &&
        p[10] == (STREAM_VERSION_MINOR & 0xff) && p[11] == (STREAM_VERSION_MINOR >> 8)) {
        stream_encode_header(&h, buf);
        fuzz_check(memcmp(buf, p, STREAM_HEADER_SIZE) == 0, "stream header re-encodes");
    }
}

static void
check_canonical_record(const uint8_t *hdr, const uint8_t *payload, size_t length)
{
    static uint8_t out[2 << 20];
    StreamManifest m = {.devices = manifest_devices};
    StreamDeviceTotals t[STREAM_MAX_DEVICES];
    StreamRecordHeader rh;
    IrqState irqs;
    uint8_t buf[STREAM_RECORD_HEADER_SIZE];
    int n;

    if (stream_decode_record_header(hdr, &rh) == 0) {
        stream_encode_record_header_crc(&rh, buf);
        fuzz_check(memcmp(buf, hdr, STREAM_RECORD_HEADER_SIZE) == 0, "record header re-encodes");
    }
    if (stream_decode_manifest(payload, length, &m) == 0) {
        n = stream_encode_manifest(&m, out, sizeof(out));
        fuzz_check(n >= 0 && (size_t) n == length && stream_manifest_size(&m) == length &&
              memcmp(out, payload, length) == 0, "manifest re-encodes");
    }
    if (stream_decode_device_end(payload, length, t) == 0) {
        n = stream_encode_device_end(t, out, sizeof(out));
        fuzz_check(n == 16 && memcmp(out, payload, 16) == 0, "DEVICE_END re-encodes");
    }
    if (stream_decode_device_irqs(payload, length, &irqs, NULL, 0) == 0) {
        n = stream_encode_device_irqs(&irqs, out, sizeof(out));
        fuzz_check(n >= 0 && (size_t) n == length && memcmp(out, payload, length) == 0,
                   "DEVICE_IRQS re-encodes");
    }
    if (length >= 4) {
        uint32_t count = get_le32(payload);

        if (stream_decode_stream_end(payload, length, t, count) == 0) {
            n = stream_encode_stream_end(t, count, out, sizeof(out));
            fuzz_check(n >= 0 && (size_t) n == length && memcmp(out, payload, length) == 0,
                  "STREAM_END re-encodes");
        }
    }
}

/* The loop a restore runs: records while bytes remain, then the end. */
static void
read_records(StreamReader *r, const uint8_t *p, size_t size, size_t off)
{
    StreamManifest m = {.devices = manifest_devices};

    while (size - off >= STREAM_RECORD_HEADER_SIZE) {
        StreamRecordHeader h;
        bool ok = stream_decode_record_header(p + off, &h) == 0;

        if (ok && h.length > size - off - STREAM_RECORD_HEADER_SIZE) {
            fuzz_outcome = "cut short in a record";
            return;
        }
        if (ok) {
            check_canonical_record(p + off, p + off + STREAM_RECORD_HEADER_SIZE, h.length);
        }
        if (stream_reader_record(r, p + off, ok ? p + off + STREAM_RECORD_HEADER_SIZE : NULL,
                                 &m, &h) < 0) {
            fuzz_check(r->error[0] != '\0', "a refusal says why");
            fuzz_outcome = r->error;
            return;
        }
        off += STREAM_RECORD_HEADER_SIZE + h.length;
    }
    if (off != size) {
        /* Less than a record header left: the caller's to refuse (after STREAM_END, as
         * trailing bytes; before it, as a cut), the reader never sees it. */
        fuzz_outcome = "a partial record header at the end";
        return;
    }
    if (stream_reader_complete(r)) {
        for (uint32_t i = 0; i < r->n_devices; i++) {
            fuzz_check(r->devices[i].ended, "a complete stream has every device ended");
        }
        fuzz_check(stream_reader_finish(r) == 0, "finish agrees with complete");
        fuzz_outcome = "complete";
    } else if (!r->device_channel) {
        fuzz_check(stream_reader_finish(r) == -ENODATA, "an unfinished stream is -ENODATA");
        fuzz_outcome = r->error;
    } else {
        fuzz_outcome = "data channel read to its end";
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t mode;
    uint8_t *p;
    size_t off = 0;

    if (size < 1) {
        return 0;
    }
    mode = data[0];
    data++;
    size--;
    /* An exactly sized heap copy, so that ASan sees any read past the end. */
    p = malloc(size ? size : 1);
    if (!p) {
        return 0;
    }
    memcpy(p, data, size);
    check_canonical_header(p, size);

    if (mode & MODE_CHANNEL) {
        uint32_t n = size > 0 ? p[0] : 0;

        off = size > 0 ? 1 : 0;
        stream_reader_expect_devices(&reader, 0, n);
    } else {
        stream_reader_init(&reader);
        off = STREAM_HEADER_SIZE;
        if (size < STREAM_HEADER_SIZE || stream_reader_header(&reader, p) < 0) {
            fuzz_outcome = size < STREAM_HEADER_SIZE ? "no header" : reader.error;
            free(p);
            return 0;
        }
    }
    if (mode & MODE_RESEAL) {
        fuzz_reseal(p, size, off);
    }
    read_records(&reader, p, size, off);
    free(p);
    return 0;
}

#ifndef FUZZ_LIBFUZZER
/* ---- seeds */

static size_t
add_record(uint8_t *p, size_t n, uint32_t type, uint32_t flags, uint32_t device, uint64_t seq,
           const uint8_t *payload, uint32_t length)
{
    StreamRecordHeader h = {type, flags, device, length, seq, 0};

    stream_encode_record_header(&h, payload, p + n);
    memcpy(p + n + STREAM_RECORD_HEADER_SIZE, payload, length);
    return n + STREAM_RECORD_HEADER_SIZE + length;
}

/* Device 0's DEVICE_IRQS (MSI-X, 8 vectors, vector 3 masked and pending) when @irqs. */
static size_t
add_irqs(uint8_t *p, size_t n, bool irqs)
{
    IrqState st = {.type = IRQ_TYPE_MSIX, .count = 8, .in_use = {0xff}, .masked = {0x08},
                   .pending = {0x08}};
    uint8_t payload[STREAM_IRQS_MAX_SIZE];
    int len = stream_encode_device_irqs(&st, payload, sizeof(payload));

    return irqs ? add_record(p, n, STREAM_RECORD_DEVICE_IRQS, STREAM_FLAG_OPTIONAL, 0, 0,
                             payload, (uint32_t) len)
                : n;
}

/* A valid two-device stream with pre-copy, stop-copy and an optional record (and device 0's
 * interrupt state when @irqs); and the same records as one device's data channel. */
static int
write_seeds(const char *dir, bool irqs)
{
    static uint8_t s[1 << 16], payload[1 << 12];
    StreamManifestDevice *d = manifest_devices;
    StreamManifest m = {.group = "vm", .n_devices = 2, .devices = d};
    StreamDeviceTotals t[2] = {{100, 2}, {7, 1}};
    StreamHeader h = {.stream_id = 42};
    size_t n = 1, c = 2;
    uint8_t ch[1 << 12];
    int len;

    memset(d, 0, 2 * sizeof(*d));
    strcpy(d[0].name, "nic0");
    strcpy(d[0].backend, "sim");
    strcpy(d[1].name, "gpu1");
    strcpy(d[1].backend, "kernel");
    d[1].compat_size = 3;
    memcpy(d[1].compat, "abc", 3);
    s[0] = 0;
    stream_encode_header(&h, s + n);
    n += STREAM_HEADER_SIZE;
    len = stream_encode_manifest(&m, payload, sizeof(payload));
    n = add_record(s, n, STREAM_RECORD_MANIFEST, 0, STREAM_DEVICE_NONE, 0, payload,
                   (uint32_t) len);
    memset(payload, 0xab, 100);
    n = add_record(s, n, STREAM_RECORD_DEVICE_DATA, STREAM_FLAG_PRECOPY, 0, 0, payload, 60);
    n = add_record(s, n, STREAM_RECORD_DEVICE_DATA, 0, 1, 0, payload, 7);
    n = add_record(s, n, 9, STREAM_FLAG_OPTIONAL, 1, 0, payload, 5);
    n = add_record(s, n, STREAM_RECORD_DEVICE_DATA, 0, 0, 1, payload, 40);
    n = add_irqs(s, n, irqs);
    (void) stream_encode_device_end(&t[0], payload, sizeof(payload));
    n = add_record(s, n, STREAM_RECORD_DEVICE_END, 0, 0, 2, payload, 16);
    (void) stream_encode_device_end(&t[1], payload, sizeof(payload));
    n = add_record(s, n, STREAM_RECORD_DEVICE_END, 0, 1, 1, payload, 16);
    len = stream_encode_stream_end(t, 2, payload, sizeof(payload));
    n = add_record(s, n, STREAM_RECORD_STREAM_END, 0, STREAM_DEVICE_NONE, 1, payload,
                   (uint32_t) len);

    ch[0] = MODE_CHANNEL;
    ch[1] = 2;
    memset(payload, 0xcd, 100);
    c = add_record(ch, c, STREAM_RECORD_DEVICE_DATA, STREAM_FLAG_PRECOPY, 0, 0, payload, 60);
    c = add_record(ch, c, STREAM_RECORD_DEVICE_DATA, 0, 0, 1, payload, 40);
    c = add_irqs(ch, c, irqs);
    (void) stream_encode_device_end(&t[0], payload, sizeof(payload));
    c = add_record(ch, c, STREAM_RECORD_DEVICE_END, 0, 0, 2, payload, 16);

    if (fuzz_write_file(dir, irqs ? "stream-irqs" : "stream", s, n) ||
        fuzz_write_file(dir, irqs ? "channel-irqs" : "channel", ch, c)) {
        return 1;
    }
    s[0] = MODE_RESEAL;
    return fuzz_write_file(dir, irqs ? "stream-irqs-reseal" : "stream-reseal", s, n);
}

int
fuzz_write_seeds(const char *dir)
{
    return write_seeds(dir, false) || write_seeds(dir, true);
}
#endif
