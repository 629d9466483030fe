/* SPDX-License-Identifier: MIT */
/*
 * stream — see stream.h; the byte layout and the order rules are docs/stream-format.md,
 * which this file must match field for field. Explicit little-endian encoding, so a stream
 * moves between hosts. CRC32C lives in crc32c.c.
 *
 * Decoding is strict on purpose: every field has one valid encoding, every length is
 * bounded before it is used, and nothing may follow the last field of a payload. The
 * stateless checks (one header, one payload) produce the same words for stream_decode_*()
 * and for the StreamReader; the reader adds the order and the totals, and keeps its state
 * unchanged when it refuses a record.
 */
#include "../util/le.h"
#include "stream.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "../util/macro.h"

static const uint8_t stream_magic[8] = {'V', 'F', 'M', 'I', 'G', 'S', 'T', 'R'};

#define DEVICE_END_SIZE 16
#define STREAM_END_MIN (4 + 16)
#define STREAM_END_MAX (4 + 16 * STREAM_MAX_DEVICES)
/* Per device: name, mig_flags, data_size, backend, compat (docs/stream-format.md). */
#define MANIFEST_DEVICE_MIN (2 + 1 + 4 + 8 + 2 + 0 + 2 + 0)
#define MANIFEST_DEVICE_MAX (2 + STREAM_MAX_NAME + 4 + 8 + 2 + 15 + 2 + STREAM_MAX_COMPAT)
#define MANIFEST_MIN (2 + 1 + 4 + MANIFEST_DEVICE_MIN)
#define MANIFEST_MAX (2 + STREAM_MAX_NAME + 4 + STREAM_MAX_DEVICES * MANIFEST_DEVICE_MAX)
static_assert(MANIFEST_MAX <= STREAM_MAX_RECORD, "the largest manifest must fit one record");
static_assert(STREAM_MAX_RECORD <= INT32_MAX, "encoders return sizes as int");

/* ---- little-endian fields: util/le.h */

/* ---- error words: NULL @err means the caller wants the errno only */

static _printf_(4, 5) int
fail(char *err, size_t size, int r, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        va_start(ap, fmt);
        (void) vsnprintf(err, size, fmt, ap);
        va_end(ap);
    }
    return r;
}

#define reader_fail(r, e, ...) fail((r)->error, sizeof((r)->error), (e), __VA_ARGS__)

/* ---- record types: what each may carry */

typedef struct RecordType {
    const char *name;
    bool device_level;      /* a device index; else STREAM_DEVICE_NONE */
    uint32_t flags;         /* the flags it may carry */
    uint32_t min_length;
    uint32_t max_length;
    bool unsequenced;       /* OPTIONAL by nature: takes no sequence number, counts nothing */
} RecordType;

static const RecordType record_types[] = {
    [STREAM_RECORD_MANIFEST] = {"MANIFEST", false, 0, MANIFEST_MIN, MANIFEST_MAX, false},
    /* Empty data records are pointless but harmless; the pumps never write them. */
    [STREAM_RECORD_DEVICE_DATA] = {"DEVICE_DATA", true, STREAM_FLAG_PRECOPY, 0,
                                   STREAM_MAX_RECORD, false},
    [STREAM_RECORD_DEVICE_END] = {"DEVICE_END", true, 0, DEVICE_END_SIZE, DEVICE_END_SIZE, false},
    [STREAM_RECORD_STREAM_END] = {"STREAM_END", false, 0, STREAM_END_MIN, STREAM_END_MAX, false},
    [STREAM_RECORD_DEVICE_IRQS] = {"DEVICE_IRQS", true, STREAM_FLAG_OPTIONAL,
                                   STREAM_IRQS_MIN_SIZE, STREAM_IRQS_MAX_SIZE, true},
};

static const RecordType *
record_type(uint32_t type)
{
    if (type >= ELEMENTSOF(record_types) || !record_types[type].name) {
        return NULL;
    }
    return &record_types[type];
}

/* "DEVICE_DATA record 17 of device 2 ('nic1')", "STREAM_END record 1 of the stream": the
 * type, the device and the sequence, which is what a person needs to find the record. */
static void
describe_record(const StreamReader *r, const StreamRecordHeader *h, char *buf, size_t size)
{
    const RecordType *t = record_type(h->type);
    char type[24];

    if (t) {
        (void) snprintf(type, sizeof(type), "%s", t->name);
    } else {
        (void) snprintf(type, sizeof(type), "type %" PRIu32, h->type);
    }
    if (h->device == STREAM_DEVICE_NONE) {
        (void) snprintf(buf, size, "%s record %" PRIu64 " of the stream", type, h->sequence);
    } else if (r && h->device < r->n_devices && r->devices[h->device].name[0]) {
        (void) snprintf(buf, size, "%s record %" PRIu64 " of device %" PRIu32 " ('%s')", type,
                        h->sequence, h->device, r->devices[h->device].name);
    } else {
        (void) snprintf(buf, size, "%s record %" PRIu64 " of device %" PRIu32, type,
                        h->sequence, h->device);
    }
}

/* "device 2 ('nic1')", or "device 2" on a data channel, where names are not known. */
static void
describe_device(const StreamReader *r, uint32_t i, char *buf, size_t size)
{
    if (r->devices[i].name[0]) {
        (void) snprintf(buf, size, "device %" PRIu32 " ('%s')", i, r->devices[i].name);
    } else {
        (void) snprintf(buf, size, "device %" PRIu32, i);
    }
}

/* "<the record><what is wrong>", e.g. "DEVICE_DATA record 3 of device 0 ('nic0')" +
 * ": payload CRC mismatch". The record is described only on failure: the words cost more
 * than the checks. */
static _printf_(6, 7) int
record_fail(char *err, size_t size, const StreamReader *r, const StreamRecordHeader *h, int e,
            const char *fmt, ...)
{
    char what[160];
    char rest[160];
    va_list ap;

    if (!err) {
        return e;
    }
    describe_record(r, h, what, sizeof(what));
    va_start(ap, fmt);
    (void) vsnprintf(rest, sizeof(rest), fmt, ap);
    va_end(ap);
    return fail(err, size, e, "%s%s", what, rest);
}

#define reader_record_fail(r, h, e, ...) \
    record_fail((r)->error, sizeof((r)->error), (r), (h), (e), __VA_ARGS__)

/* ---- CRC-protected headers */

void
stream_encode_header(const StreamHeader *h, uint8_t out[STREAM_HEADER_SIZE])
{
    memset(out, 0, STREAM_HEADER_SIZE);
    memcpy(out, stream_magic, sizeof(stream_magic));
    put_le16(out + 8, STREAM_VERSION_MAJOR);
    put_le16(out + 10, STREAM_VERSION_MINOR);
    put_le32(out + 12, STREAM_HEADER_SIZE);
    put_le64(out + 16, h->stream_id);
    put_le32(out + 24, h->flags);
    put_le32(out + 28, crc32c(0, out, 28));
}

static int
check_header(const uint8_t in[STREAM_HEADER_SIZE], StreamHeader *ret, char *err, size_t size)
{
    uint16_t major = get_le16(in + 8);
    uint16_t minor = get_le16(in + 10);
    uint32_t header_size = get_le32(in + 12);
    uint32_t flags = get_le32(in + 24);

    if (memcmp(in, stream_magic, sizeof(stream_magic)) != 0) {
        return fail(err, size, -ENOEXEC, "not a vfio-migd migration stream (no 'VFMIGSTR' magic)");
    }
    /* Before the CRC: another major version may have moved the CRC, and "written by an
     * incompatible version" is the useful answer either way. */
    if (major != STREAM_VERSION_MAJOR) {
        return fail(err, size, -EPROTONOSUPPORT,
                    "stream format version %u.%u is not supported (this reader reads %u.x)",
                    major, minor, STREAM_VERSION_MAJOR);
    }
    if (get_le32(in + 28) != crc32c(0, in, 28)) {
        return fail(err, size, -EBADMSG, "stream header CRC mismatch (the header is damaged)");
    }
    /* A higher minor version adds OPTIONAL record types only, never header fields. */
    if (header_size != STREAM_HEADER_SIZE) {
        return fail(err, size, -EBADMSG, "stream header size %" PRIu32 ", expected %d",
                    header_size, STREAM_HEADER_SIZE);
    }
    if (flags != 0) {
        return fail(err, size, -EBADMSG, "stream header has reserved flags set (0x%" PRIx32 ")",
                    flags);
    }
    *ret = (StreamHeader) {.stream_id = get_le64(in + 16), .flags = flags};
    return 0;
}

int
stream_decode_header(const uint8_t in[STREAM_HEADER_SIZE], StreamHeader *ret)
{
    return check_header(in, ret, NULL, 0);
}

void
stream_encode_record_header_crc(const StreamRecordHeader *h,
                                uint8_t out[STREAM_RECORD_HEADER_SIZE])
{
    put_le32(out + 0, h->type);
    put_le32(out + 4, h->flags);
    put_le32(out + 8, h->device);
    put_le32(out + 12, h->length);
    put_le64(out + 16, h->sequence);
    put_le32(out + 24, h->payload_crc);
    put_le32(out + 28, crc32c(0, out, 28));
}

void
stream_encode_record_header(const StreamRecordHeader *h, const void *payload,
                            uint8_t out[STREAM_RECORD_HEADER_SIZE])
{
    StreamRecordHeader c = *h;

    c.payload_crc = crc32c(0, payload, h->length);
    stream_encode_record_header_crc(&c, out);
}

/* The device field must fit the type: an index for device records, NONE for stream-level
 * ones; unknown (optional) types may use either. */
static int
check_record_device(const StreamReader *r, const StreamRecordHeader *h, const RecordType *t,
                    char *err, size_t size)
{
    bool in_range = h->device < STREAM_MAX_DEVICES;
    bool none = h->device == STREAM_DEVICE_NONE;

    if (t && t->device_level && !in_range) {
        return record_fail(err, size, r, h, -EBADMSG, ": device index out of range");
    }
    if (t && !t->device_level && !none) {
        return record_fail(err, size, r, h, -EBADMSG, ": a stream-level record with a device");
    }
    if (!t && !in_range && !none) {
        return record_fail(err, size, r, h, -EBADMSG, ": device index out of range");
    }
    return 0;
}

static int
check_record_header(const uint8_t in[STREAM_RECORD_HEADER_SIZE], const StreamReader *r,
                    StreamRecordHeader *ret, char *err, size_t size)
{
    const uint32_t known_flags = STREAM_FLAG_OPTIONAL | STREAM_FLAG_PRECOPY;
    StreamRecordHeader h = {
        .type = get_le32(in + 0),
        .flags = get_le32(in + 4),
        .device = get_le32(in + 8),
        .length = get_le32(in + 12),
        .sequence = get_le64(in + 16),
        .payload_crc = get_le32(in + 24),
    };
    const RecordType *t = record_type(h.type);
    int rc;

    if (get_le32(in + 28) != crc32c(0, in, 28)) {
        return fail(err, size, -EBADMSG, "record header CRC mismatch (the header is damaged)");
    }
    if (h.type == 0) {
        return record_fail(err, size, r, &h, -EBADMSG, ": record type 0 is reserved");
    }
    if (h.flags & ~known_flags) {
        return record_fail(err, size, r, &h, -EBADMSG, ": reserved flags set (0x%" PRIx32 ")",
                           h.flags & ~known_flags);
    }
    if (!t && !(h.flags & STREAM_FLAG_OPTIONAL)) {
        return record_fail(err, size, r, &h, -EBADMSG, ": unknown record type, and not OPTIONAL");
    }
    if (t && (h.flags & ~t->flags)) {
        return record_fail(err, size, r, &h, -EBADMSG,
                           ": flags 0x%" PRIx32 " not allowed on this type", h.flags & ~t->flags);
    }
    rc = check_record_device(r, &h, t, err, size);
    if (rc < 0) {
        return rc;
    }
    if (h.length > STREAM_MAX_RECORD) {
        return record_fail(err, size, r, &h, -E2BIG,
                           ": length %" PRIu32 " over the limit of %u bytes", h.length,
                           STREAM_MAX_RECORD);
    }
    if (t && (h.length < t->min_length || h.length > t->max_length)) {
        return record_fail(err, size, r, &h, -EBADMSG,
                           ": length %" PRIu32 " outside %" PRIu32 "..%" PRIu32 " for this type",
                           h.length, t->min_length, t->max_length);
    }
    *ret = h;
    return 0;
}

int
stream_decode_record_header(const uint8_t in[STREAM_RECORD_HEADER_SIZE],
                            StreamRecordHeader *ret)
{
    return check_record_header(in, NULL, ret, NULL, 0);
}

/* ---- manifest */

/* A read position in a payload; every take is bounded by what is left. */
typedef struct Cursor {
    const uint8_t *p;
    size_t left;
} Cursor;

static const uint8_t *
take(Cursor *c, size_t n)
{
    const uint8_t *p = c->p;

    if (c->left < n) {
        return NULL;
    }
    c->p += n;
    c->left -= n;
    return p;
}

/* Names end up in logs, file names and error messages: no control characters (NUL
 * included, so a C string holds all of it). Other bytes, UTF-8 among them, pass. */
static bool
has_control(const uint8_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f) {
            return true;
        }
    }
    return false;
}

typedef struct Span {
    const uint8_t *p;
    uint16_t size;
} Span;

/* A u16-length-prefixed string of @min..@max bytes. */
static int
take_string(Cursor *c, size_t min, size_t max, const char *what, Span *ret, char *err,
            size_t size)
{
    const uint8_t *p = take(c, 2);
    uint16_t n;

    if (!p) {
        return fail(err, size, -EBADMSG, "manifest: %s runs past the end", what);
    }
    n = get_le16(p);
    if (n > max) {
        return fail(err, size, -E2BIG, "manifest: %s is %u bytes, over the limit of %zu", what,
                    n, max);
    }
    if (n < min) {
        return fail(err, size, -EBADMSG, "manifest: %s is empty", what);
    }
    p = take(c, n);
    if (!p) {
        return fail(err, size, -EBADMSG, "manifest: %s runs past the end", what);
    }
    if (has_control(p, n)) {
        return fail(err, size, -EBADMSG, "manifest: %s contains a control character", what);
    }
    *ret = (Span) {p, n};
    return 0;
}

static void
span_to_string(Span s, char *out)
{
    memcpy(out, s.p, s.size);
    out[s.size] = '\0';
}

/* One device entry; @ret (may be NULL) receives it, @name its name for the duplicate check. */
static int
take_device(Cursor *c, uint32_t i, StreamManifestDevice *ret, Span *name, char *err,
            size_t size)
{
    char what[32];
    Span backend;
    const uint8_t *fixed;
    const uint8_t *p;
    uint16_t compat_size;
    int r;

    (void) snprintf(what, sizeof(what), "device %" PRIu32 " name", i);
    r = take_string(c, 1, STREAM_MAX_NAME, what, name, err, size);
    if (r < 0) {
        return r;
    }
    fixed = take(c, 4 + 8);
    if (!fixed) {
        return fail(err, size, -EBADMSG, "manifest: device %" PRIu32 " runs past the end", i);
    }
    (void) snprintf(what, sizeof(what), "device %" PRIu32 " backend", i);
    r = take_string(c, 0, sizeof(ret->backend) - 1, what, &backend, err, size);
    if (r < 0) {
        return r;
    }
    p = take(c, 2);
    if (!p) {
        return fail(err, size, -EBADMSG, "manifest: device %" PRIu32 " runs past the end", i);
    }
    compat_size = get_le16(p);
    if (compat_size > STREAM_MAX_COMPAT) {
        return fail(err, size, -E2BIG,
                    "manifest: device %" PRIu32 " compatibility descriptor is %u bytes, "
                    "over the limit of %d", i, compat_size, STREAM_MAX_COMPAT);
    }
    p = take(c, compat_size);
    if (!p) {
        return fail(err, size, -EBADMSG, "manifest: device %" PRIu32 " runs past the end", i);
    }
    if (ret) {
        span_to_string(*name, ret->name);
        ret->mig_flags = get_le32(fixed);
        ret->data_size = get_le64(fixed + 4);
        memset(ret->backend, 0, sizeof(ret->backend));
        span_to_string(backend, ret->backend);
        ret->compat_size = compat_size;
        memcpy(ret->compat, p, compat_size);
    }
    return 0;
}

static int
check_duplicate(const Span *names, uint32_t n, char *err, size_t size)
{
    for (uint32_t j = 0; j < n; j++) {
        if (names[j].size == names[n].size && memcmp(names[j].p, names[n].p, names[n].size) == 0) {
            return fail(err, size, -EBADMSG,
                        "manifest: devices %" PRIu32 " and %" PRIu32 " are both named '%.*s'", j,
                        n, (int) names[n].size, (const char *) names[n].p);
        }
    }
    return 0;
}

/*
 * Walks a MANIFEST payload. With @m NULL it only checks, and @names (room for
 * STREAM_MAX_DEVICES) receives the device names; decoding runs it twice so that @m is
 * written only when the whole payload is good.
 */
static int
manifest_walk(const uint8_t *in, size_t in_size, StreamManifest *m, Span *names,
              uint32_t *ret_n, char *err, size_t size)
{
    Cursor c = {in, in_size};
    Span group;
    const uint8_t *p;
    uint32_t n;
    int r;

    r = take_string(&c, 1, STREAM_MAX_NAME, "the group name", &group, err, size);
    if (r < 0) {
        return r;
    }
    p = take(&c, 4);
    if (!p) {
        return fail(err, size, -EBADMSG, "manifest: the device count runs past the end");
    }
    n = get_le32(p);
    if (n == 0) {
        return fail(err, size, -EBADMSG, "manifest: no devices");
    }
    if (n > STREAM_MAX_DEVICES) {
        return fail(err, size, -E2BIG, "manifest: %" PRIu32 " devices, over the limit of %d", n,
                    STREAM_MAX_DEVICES);
    }
    for (uint32_t i = 0; i < n; i++) {
        r = take_device(&c, i, m ? &m->devices[i] : NULL, &names[i], err, size);
        if (r < 0) {
            return r;
        }
        r = check_duplicate(names, i, err, size);
        if (r < 0) {
            return r;
        }
    }
    if (c.left != 0) {
        return fail(err, size, -EBADMSG, "manifest: %zu bytes after the last device", c.left);
    }
    if (m) {
        span_to_string(group, m->group);
        m->n_devices = n;
    }
    *ret_n = n;
    return 0;
}

static int
decode_manifest(const uint8_t *in, size_t size, StreamManifest *m, Span *names, char *err,
                size_t err_size)
{
    uint32_t n;
    int r;

    r = manifest_walk(in, size, NULL, names, &n, err, err_size);
    if (r < 0 || !m) {
        return r;
    }
    return manifest_walk(in, size, m, names, &n, NULL, 0);
}

int
stream_decode_manifest(const uint8_t *in, size_t size, StreamManifest *m)
{
    Span names[STREAM_MAX_DEVICES];

    return decode_manifest(in, size, m, names, NULL, 0);
}

/* The encoder's side of the decoder's rules, so that whatever we write we also read. */
static int
check_name(const char *s, size_t cap, size_t min)
{
    size_t n = strnlen(s, cap);

    if (n >= cap) {
        return -E2BIG;
    }
    if (n < min || has_control((const uint8_t *) s, n)) {
        return -EINVAL;
    }
    return 0;
}

static int
check_manifest(const StreamManifest *m)
{
    int r;

    r = check_name(m->group, sizeof(m->group), 1);
    if (r < 0) {
        return r;
    }
    if (m->n_devices == 0) {
        return -EINVAL;
    }
    if (m->n_devices > STREAM_MAX_DEVICES) {
        return -E2BIG;
    }
    for (uint32_t i = 0; i < m->n_devices; i++) {
        const StreamManifestDevice *d = &m->devices[i];

        r = check_name(d->name, sizeof(d->name), 1);
        if (r < 0) {
            return r;
        }
        r = check_name(d->backend, sizeof(d->backend), 0);
        if (r < 0) {
            return r;
        }
        if (d->compat_size > STREAM_MAX_COMPAT) {
            return -E2BIG;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(m->devices[j].name, d->name) == 0) {
                return -EINVAL;
            }
        }
    }
    return 0;
}

size_t
stream_manifest_size(const StreamManifest *m)
{
    size_t size = 2 + strnlen(m->group, sizeof(m->group)) + 4;

    for (uint32_t i = 0; i < m->n_devices; i++) {
        const StreamManifestDevice *d = &m->devices[i];

        size += 2 + strnlen(d->name, sizeof(d->name)) + 4 + 8;
        size += 2 + strnlen(d->backend, sizeof(d->backend));
        size += 2 + (size_t) d->compat_size;
    }
    return size;
}

static uint8_t *
put_string(uint8_t *p, const char *s)
{
    size_t n = strlen(s);

    put_le16(p, (uint16_t) n);
    memcpy(p + 2, s, n);
    return p + 2 + n;
}

int
stream_encode_manifest(const StreamManifest *m, uint8_t *out, size_t size)
{
    size_t need;
    uint8_t *p = out;
    int r;

    r = check_manifest(m);
    if (r < 0) {
        return r;
    }
    need = stream_manifest_size(m);
    if (size < need) {
        return -E2BIG;
    }
    p = put_string(p, m->group);
    put_le32(p, m->n_devices);
    p += 4;
    for (uint32_t i = 0; i < m->n_devices; i++) {
        const StreamManifestDevice *d = &m->devices[i];

        p = put_string(p, d->name);
        put_le32(p, d->mig_flags);
        put_le64(p + 4, d->data_size);
        p = put_string(p + 12, d->backend);
        put_le16(p, d->compat_size);
        memcpy(p + 2, d->compat, d->compat_size);
        p += 2 + d->compat_size;
    }
    return (int) (p - out);
}

/* ---- totals */

int
stream_encode_device_end(const StreamDeviceTotals *t, uint8_t *out, size_t size)
{
    if (size < DEVICE_END_SIZE) {
        return -E2BIG;
    }
    put_le64(out, t->bytes);
    put_le64(out + 8, t->records);
    return DEVICE_END_SIZE;
}

int
stream_decode_device_end(const uint8_t *in, size_t size, StreamDeviceTotals *ret)
{
    if (size != DEVICE_END_SIZE) {
        return -EBADMSG;
    }
    *ret = (StreamDeviceTotals) {.bytes = get_le64(in), .records = get_le64(in + 8)};
    return 0;
}

/* ---- DEVICE_IRQS: index u8, reserved u8, count u16, then in_use, masked, pending bitmaps */

size_t
stream_device_irqs_size(const IrqState *s)
{
    return 4 + 3 * IRQ_BITMAP_SIZE(s->count);
}

int
stream_encode_device_irqs(const IrqState *s, uint8_t *out, size_t size)
{
    size_t n = IRQ_BITMAP_SIZE(s->count);

    if (irq_state_check(s) < 0 || s->type == IRQ_TYPE_NONE) {
        return -EINVAL;
    }
    if (size < stream_device_irqs_size(s)) {
        return -E2BIG;
    }
    out[0] = (uint8_t) s->type;
    out[1] = 0;
    put_le16(out + 2, (uint16_t) s->count);
    memcpy(out + 4, s->in_use, n);
    memcpy(out + 4 + n, s->masked, n);
    memcpy(out + 4 + 2 * n, s->pending, n);
    return (int) stream_device_irqs_size(s);
}

int
stream_decode_device_irqs(const uint8_t *in, size_t size, IrqState *ret, char *why,
                          size_t why_size)
{
    IrqState s = {0};
    size_t n;

    if (size < 4) {
        return fail(why, why_size, -EBADMSG, "%zu bytes, fewer than the 4 of its header", size);
    }
    s.type = in[0];
    s.count = get_le16(in + 2);
    if (s.type <= IRQ_TYPE_NONE || s.type >= _IRQ_TYPE_MAX) {
        return fail(why, why_size, -EBADMSG, "index %u is not 1 (intx), 2 (msi) or 3 (msix)",
                    in[0]);
    }
    if (in[1] != 0) {
        return fail(why, why_size, -EBADMSG, "reserved byte 1 is 0x%02x, not 0", in[1]);
    }
    if (s.count == 0 || s.count > irq_type_max_count(s.type)) {
        return fail(why, why_size, -EBADMSG, "%" PRIu32 " %s vectors, outside 1..%" PRIu32,
                    s.count, irq_type_name(s.type), irq_type_max_count(s.type));
    }
    n = IRQ_BITMAP_SIZE(s.count);
    if (size != 4 + 3 * n) {
        return fail(why, why_size, -EBADMSG, "%zu bytes, but %" PRIu32 " vectors take %zu",
                    size, s.count, 4 + 3 * n);
    }
    memcpy(s.in_use, in + 4, n);
    memcpy(s.masked, in + 4 + n, n);
    memcpy(s.pending, in + 4 + 2 * n, n);
    if (irq_state_check(&s) < 0) {
        return fail(why, why_size, -EBADMSG, "a bit at or beyond vector %" PRIu32 ", or masked "
                    "or pending on a vector not in use", s.count);
    }
    *ret = s;
    return 0;
}

size_t
stream_end_size(uint32_t n_devices)
{
    return 4 + 16 * (size_t) n_devices;
}

int
stream_encode_stream_end(const StreamDeviceTotals *t, uint32_t n_devices, uint8_t *out,
                         size_t size)
{
    if (n_devices == 0) {
        return -EINVAL;
    }
    if (n_devices > STREAM_MAX_DEVICES || size < stream_end_size(n_devices)) {
        return -E2BIG;
    }
    put_le32(out, n_devices);
    for (uint32_t i = 0; i < n_devices; i++) {
        put_le64(out + 4 + 16 * i, t[i].bytes);
        put_le64(out + 4 + 16 * i + 8, t[i].records);
    }
    return (int) stream_end_size(n_devices);
}

int
stream_decode_stream_end(const uint8_t *in, size_t size, StreamDeviceTotals *ret,
                         uint32_t n_devices)
{
    if (n_devices > STREAM_MAX_DEVICES) {
        return -E2BIG;
    }
    if (n_devices == 0 || size < 4 || get_le32(in) != n_devices ||
        size != stream_end_size(n_devices)) {
        return -EBADMSG;
    }
    for (uint32_t i = 0; i < n_devices; i++) {
        ret[i].bytes = get_le64(in + 4 + 16 * i);
        ret[i].records = get_le64(in + 4 + 16 * i + 8);
    }
    return 0;
}

/* ---- StreamReader */

void
stream_reader_init(StreamReader *r)
{
    memset(r, 0, sizeof(*r));
}

void
stream_reader_expect_devices(StreamReader *r, uint64_t stream_id, uint32_t n_devices)
{
    stream_reader_init(r);
    r->have_header = true;
    r->have_manifest = true;
    r->device_channel = true;
    r->stream_id = stream_id;
    r->n_devices = n_devices < STREAM_MAX_DEVICES ? n_devices : STREAM_MAX_DEVICES;
}

bool
stream_is_retired_save(const uint8_t *head, size_t size)
{
    return size >= sizeof(STREAM_RETIRED_SAVE_MAGIC) - 1 &&
           memcmp(head, STREAM_RETIRED_SAVE_MAGIC, sizeof(STREAM_RETIRED_SAVE_MAGIC) - 1) == 0;
}

int
stream_reader_header(StreamReader *r, const uint8_t in[STREAM_HEADER_SIZE])
{
    StreamHeader h = {0}; /* written by check_header() on success; -O3 cannot tell */
    int rc;

    if (r->have_header) {
        return reader_fail(r, -EBADMSG, "a second stream header");
    }
    rc = check_header(in, &h, r->error, sizeof(r->error));
    if (rc < 0) {
        return rc;
    }
    r->stream_id = h.stream_id;
    r->have_header = true;
    return 0;
}

/* @device is an index, or STREAM_DEVICE_NONE for the stream-level sequence. */
static int
check_sequence(StreamReader *r, uint32_t device, uint64_t expected, uint64_t got)
{
    const char *why = got > expected ? "records lost or reordered"
                                     : "a record repeated or reordered";
    char who[96];

    if (got == expected) {
        return 0;
    }
    if (device == STREAM_DEVICE_NONE) {
        (void) snprintf(who, sizeof(who), "stream-level records");
    } else {
        describe_device(r, device, who, sizeof(who));
    }
    return reader_fail(r, -ESTALE, "%s: expected sequence %" PRIu64 ", got %" PRIu64 " (%s)",
                       who, expected, got, why);
}

/* Stream-level records: MANIFEST once and first, STREAM_END last, their own sequence. */
static int
check_stream_order(StreamReader *r, const StreamRecordHeader *h)
{
    if (r->device_channel) {
        return reader_record_fail(r, h, -EBADMSG,
                                  " on a data channel, which carries device records only");
    }
    if (h->type == STREAM_RECORD_MANIFEST && r->have_manifest) {
        return reader_record_fail(r, h, -EBADMSG, ": a second MANIFEST");
    }
    if (h->type != STREAM_RECORD_MANIFEST && !r->have_manifest) {
        return reader_record_fail(r, h, -EBADMSG, " before the MANIFEST");
    }
    if (!record_type(h->type)) {
        return 0; /* optional: takes no sequence number */
    }
    return check_sequence(r, STREAM_DEVICE_NONE, r->next_stream_sequence, h->sequence);
}

/* Device records: a device of the manifest that has not ended, in its sequence. */
static int
check_device_order(StreamReader *r, const StreamRecordHeader *h)
{
    const StreamReaderDevice *d;

    if (!r->have_manifest) {
        return reader_record_fail(r, h, -EBADMSG, " before the MANIFEST");
    }
    if (h->device >= r->n_devices) {
        return reader_record_fail(r, h, -EBADMSG, ", but the manifest lists %" PRIu32 " devices",
                                  r->n_devices);
    }
    d = &r->devices[h->device];
    if (d->ended) {
        return reader_record_fail(r, h, -EBADMSG, " after the device's DEVICE_END");
    }
    if (d->irqs &&
        (h->type == STREAM_RECORD_DEVICE_DATA || h->type == STREAM_RECORD_DEVICE_IRQS)) {
        return reader_record_fail(r, h, -EBADMSG, " after the device's DEVICE_IRQS, which only "
                                  "its DEVICE_END may follow");
    }
    if (h->type == STREAM_RECORD_DEVICE_IRQS && (h->sequence != 0 ||
                                                 !(h->flags & STREAM_FLAG_OPTIONAL))) {
        return reader_record_fail(r, h, -EBADMSG, ": must be OPTIONAL, with sequence 0");
    }
    if (!record_type(h->type) || record_type(h->type)->unsequenced) {
        return 0; /* optional: takes no sequence number */
    }
    if (h->type == STREAM_RECORD_DEVICE_DATA && (h->flags & STREAM_FLAG_PRECOPY) && d->stop_copy) {
        return reader_record_fail(r, h, -EBADMSG, ": pre-copy data after stop-copy data");
    }
    return check_sequence(r, h->device, d->next_sequence, h->sequence);
}

static bool
totals_equal(const StreamDeviceTotals *a, const StreamDeviceTotals *b)
{
    return a->bytes == b->bytes && a->records == b->records;
}

/* @what is "DEVICE_END" or "STREAM_END": which record disagrees with the count. */
static int
totals_mismatch(StreamReader *r, const char *what, uint32_t i, const StreamDeviceTotals *said)
{
    const StreamDeviceTotals *got = &r->devices[i].totals;
    char who[96];

    describe_device(r, i, who, sizeof(who));
    return reader_fail(r, -EBADMSG,
                       "%s says %s sent %" PRIu64 " records / %" PRIu64 " bytes, but %" PRIu64
                       " records / %" PRIu64 " bytes arrived",
                       what, who, said->records, said->bytes, got->records, got->bytes);
}

static int
read_manifest(StreamReader *r, const StreamRecordHeader *h, const uint8_t *payload,
              StreamManifest *manifest)
{
    Span names[STREAM_MAX_DEVICES];
    uint32_t n;
    int rc;

    rc = manifest_walk(payload, h->length, NULL, names, &n, r->error, sizeof(r->error));
    if (rc < 0) {
        return rc;
    }
    if (manifest) {
        (void) manifest_walk(payload, h->length, manifest, names, &n, NULL, 0);
    }
    memset(r->devices, 0, sizeof(r->devices));
    for (uint32_t i = 0; i < n; i++) {
        span_to_string(names[i], r->devices[i].name);
    }
    r->n_devices = n;
    r->have_manifest = true;
    return 0;
}

static int
read_device_end(StreamReader *r, const StreamRecordHeader *h, const uint8_t *payload)
{
    StreamDeviceTotals t;

    if (stream_decode_device_end(payload, h->length, &t) < 0) {
        return reader_record_fail(r, h, -EBADMSG, ": not 16 bytes");
    }
    if (!totals_equal(&t, &r->devices[h->device].totals)) {
        return totals_mismatch(r, "DEVICE_END", h->device, &t);
    }
    r->devices[h->device].ended = true;
    return 0;
}

static int
read_device_irqs(StreamReader *r, const StreamRecordHeader *h, const uint8_t *payload)
{
    IrqState s;
    char why[160];

    if (stream_decode_device_irqs(payload, h->length, &s, why, sizeof(why)) < 0) {
        return reader_record_fail(r, h, -EBADMSG, ": %s", why);
    }
    r->devices[h->device].irqs = true;
    return 0;
}

static int
read_stream_end(StreamReader *r, const StreamRecordHeader *h, const uint8_t *payload)
{
    StreamDeviceTotals t[STREAM_MAX_DEVICES];
    char who[96];

    for (uint32_t i = 0; i < r->n_devices; i++) {
        if (!r->devices[i].ended) {
            describe_device(r, i, who, sizeof(who));
            return reader_record_fail(r, h, -EBADMSG, " before the DEVICE_END of %s", who);
        }
    }
    if (stream_decode_stream_end(payload, h->length, t, r->n_devices) < 0) {
        return reader_record_fail(r, h, -EBADMSG, ": totals for %" PRIu32 " devices expected",
                                  r->n_devices);
    }
    for (uint32_t i = 0; i < r->n_devices; i++) {
        if (!totals_equal(&t[i], &r->devices[i].totals)) {
            return totals_mismatch(r, "STREAM_END", i, &t[i]);
        }
    }
    r->ended = true;
    return 0;
}

/* The checks that read the payload; the last step, so nothing changes on a refusal. */
static int
read_payload(StreamReader *r, const StreamRecordHeader *h, const uint8_t *payload,
             StreamManifest *manifest)
{
    StreamReaderDevice *d;

    switch (h->type) {
    case STREAM_RECORD_MANIFEST:
        return read_manifest(r, h, payload, manifest);
    case STREAM_RECORD_DEVICE_END:
        return read_device_end(r, h, payload);
    case STREAM_RECORD_STREAM_END:
        return read_stream_end(r, h, payload);
    case STREAM_RECORD_DEVICE_IRQS:
        return read_device_irqs(r, h, payload);
    case STREAM_RECORD_DEVICE_DATA:
        d = &r->devices[h->device];
        d->totals.bytes += h->length;
        d->totals.records++;
        if (!(h->flags & STREAM_FLAG_PRECOPY)) {
            d->stop_copy = true;
        }
        return 0;
    default:
        return 0; /* unknown OPTIONAL: accepted, counts nothing */
    }
}

static int
reader_record(StreamReader *r, const uint8_t hdr[STREAM_RECORD_HEADER_SIZE],
              const uint8_t *payload, StreamManifest *manifest, bool check_crc,
              StreamRecordHeader *ret_header)
{
    StreamRecordHeader h;
    bool known;
    int rc;

    if (!r->have_header) {
        return reader_fail(r, -EBADMSG, "a record before the stream header");
    }
    if (r->ended) {
        return reader_fail(r, -EBADMSG, "data after STREAM_END, which ends the stream");
    }
    rc = check_record_header(hdr, r, &h, r->error, sizeof(r->error));
    if (rc < 0) {
        return rc;
    }
    if (h.length > 0 && !payload) {
        return reader_record_fail(r, &h, -EINVAL, ": no payload given");
    }
    rc = h.device == STREAM_DEVICE_NONE ? check_stream_order(r, &h) : check_device_order(r, &h);
    if (rc < 0) {
        return rc;
    }
    if (check_crc && crc32c(0, payload, h.length) != h.payload_crc) {
        return reader_record_fail(r, &h, -EBADMSG, ": payload CRC mismatch");
    }
    rc = read_payload(r, &h, payload, manifest);
    if (rc < 0) {
        return rc;
    }
    known = record_type(h.type) != NULL && !record_type(h.type)->unsequenced;
    if (known && h.device == STREAM_DEVICE_NONE) {
        r->next_stream_sequence++;
    } else if (known) {
        r->devices[h.device].next_sequence++;
    }
    *ret_header = h;
    return 0;
}

int
stream_reader_record(StreamReader *r, const uint8_t hdr[STREAM_RECORD_HEADER_SIZE],
                     const uint8_t *payload, StreamManifest *manifest,
                     StreamRecordHeader *ret_header)
{
    return reader_record(r, hdr, payload, manifest, /* check_crc= */ true, ret_header);
}

int
stream_reader_record_crc_checked(StreamReader *r, const uint8_t hdr[STREAM_RECORD_HEADER_SIZE],
                                 const uint8_t *payload, StreamRecordHeader *ret_header)
{
    return reader_record(r, hdr, payload, NULL, /* check_crc= */ false, ret_header);
}

int
stream_reader_adopt_device(StreamReader *r, const StreamReader *channel, uint32_t device)
{
    const StreamReaderDevice *c;
    StreamReaderDevice *d;
    char who[96];

    if (!channel->device_channel || r->device_channel || !r->have_manifest || r->ended ||
        device >= r->n_devices) {
        return reader_fail(r, -EINVAL, "cannot take device %" PRIu32 " from a data channel here",
                           device);
    }
    describe_device(r, device, who, sizeof(who));
    if (channel->stream_id != r->stream_id) {
        return reader_fail(r, -ESTALE, "%s: its data channel belongs to another stream", who);
    }
    if (channel->n_devices != r->n_devices) {
        return reader_fail(r, -EBADMSG,
                           "%s: its data channel expects %" PRIu32 " devices, the manifest lists "
                           "%" PRIu32, who, channel->n_devices, r->n_devices);
    }
    d = &r->devices[device];
    if (d->ended || d->next_sequence != 0) {
        return reader_fail(r, -EBADMSG, "%s: records on more than one channel", who);
    }
    c = &channel->devices[device];
    if (!c->ended) {
        return reader_fail(r, -ENODATA, "%s: its data channel ended before its DEVICE_END", who);
    }
    d->next_sequence = c->next_sequence;
    d->totals = c->totals;
    d->stop_copy = c->stop_copy;
    d->irqs = c->irqs;
    d->ended = true;
    return 0;
}

bool
stream_reader_complete(const StreamReader *r)
{
    return r->ended;
}

int
stream_reader_finish(StreamReader *r)
{
    char who[96];

    if (r->ended) {
        return 0;
    }
    if (r->device_channel) {
        return reader_fail(r, -EINVAL, "a data channel has no STREAM_END; "
                                       "use stream_reader_adopt_device()");
    }
    if (!r->have_header) {
        return reader_fail(r, -ENODATA, "the stream ended before its header");
    }
    if (!r->have_manifest) {
        return reader_fail(r, -ENODATA, "the stream ended before the MANIFEST");
    }
    for (uint32_t i = 0; i < r->n_devices; i++) {
        if (!r->devices[i].ended) {
            describe_device(r, i, who, sizeof(who));
            return reader_fail(r, -ENODATA, "the stream ended before the DEVICE_END of %s", who);
        }
    }
    return reader_fail(r, -ENODATA, "the stream ended before STREAM_END");
}
