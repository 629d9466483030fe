/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * stream — the migration stream format (docs/stream-format.md) as pure encode/decode: no
 * I/O, no allocation beyond what a function says. Used for live migration between daemons
 * (one control channel + one data channel per device) and for group save files (everything
 * in one file). Every length read from outside is bounded before use.
 *
 * Layout: a 32-byte stream header, then records. Every record has a 32-byte header (type,
 * flags, device index, payload length, per-device sequence number, CRC32C of the payload,
 * CRC32C of the header itself) followed by its payload. Record types: MANIFEST (the group
 * and its devices), DEVICE_DATA (migration data: pre-copy or stop-copy), DEVICE_END (one
 * device's totals), STREAM_END (per-device totals of the whole stream); types with the
 * OPTIONAL flag that a reader does not know are skipped (room for interrupt state, plugin
 * sections). StreamReader enforces the order: header, manifest, then per device its data
 * records in sequence and one DEVICE_END, then STREAM_END with matching totals.
 *
 * Threads: any; a StreamReader is used by one thread at a time.
 * Errors: negative errno, and StreamReader.error says what is wrong in words:
 *   -ENOEXEC   not a vfio-migd stream (magic)
 *   -EPROTONOSUPPORT  another major version
 *   -EBADMSG   a CRC mismatch, a malformed field, a record out of order, totals that differ
 *   -E2BIG     a length over its bound
 *   -ENODATA   the stream ended early (truncated)
 *   -ESTALE    a record of another stream (stream id) or a duplicate / missing sequence
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "irq.h"

#define STREAM_HEADER_SIZE 32
#define STREAM_RECORD_HEADER_SIZE 32
#define STREAM_VERSION_MAJOR 1
#define STREAM_VERSION_MINOR 1 /* 1.1: the optional DEVICE_IRQS record */
/* One record's payload: large enough that framing costs nothing at 10+ GB/s, small enough
 * that a receiver never has to hold much; the data pumps use 1 MiB. */
#define STREAM_MAX_RECORD (16u << 20)
#define STREAM_MAX_DEVICES 256
#define STREAM_MAX_NAME 64          /* group and device names, bytes */
#define STREAM_MAX_COMPAT 4096      /* a plugin's compatibility descriptor, bytes */
#define STREAM_DEVICE_NONE UINT32_MAX /* device index of stream-level records */

typedef enum StreamRecordType {
    STREAM_RECORD_MANIFEST = 1,
    STREAM_RECORD_DEVICE_DATA = 2,
    STREAM_RECORD_DEVICE_END = 3,
    STREAM_RECORD_STREAM_END = 4,
} StreamRecordType;

/* Ends one data channel of a device spread over several (docs/stream-format.md, "One device
 * over several channels"): always sent with STREAM_FLAG_OPTIONAL, so that a reader that
 * does not know it skips it; payload as DEVICE_END's, the DEVICE_DATA records and bytes
 * that channel carried. No sequence number. */
#define STREAM_RECORD_CHANNEL_END 5u

/* One device's interrupt state (docs/stream-format.md, "Interrupt state"): the enabled index,
 * its vector count and the in-use, masked and pending bitmaps, never eventfds or MSI
 * messages. Always sent with STREAM_FLAG_OPTIONAL (an older reader skips it), no sequence
 * number (0), at most one per device, after the device's last DEVICE_DATA: the next record
 * of its device is its DEVICE_END. A writer omits it for a device with no index enabled. */
#define STREAM_RECORD_DEVICE_IRQS 6u
#define STREAM_IRQS_MIN_SIZE (4 + 3)
#define STREAM_IRQS_MAX_SIZE (4 + 3 * IRQ_BITMAP_SIZE(IRQ_MAX_VECTORS))

#define STREAM_FLAG_OPTIONAL (1u << 0) /* a reader that does not know the type skips it */
#define STREAM_FLAG_PRECOPY (1u << 1)  /* DEVICE_DATA read while the device ran (pre-copy) */

typedef struct StreamHeader {
    uint64_t stream_id;   /* random per migration or save; every channel repeats it */
    uint32_t flags;       /* reserved, 0 */
} StreamHeader;

typedef struct StreamRecordHeader {
    uint32_t type;
    uint32_t flags;
    uint32_t device;      /* index into the manifest, or STREAM_DEVICE_NONE */
    uint32_t length;      /* payload bytes, <= STREAM_MAX_RECORD */
    uint64_t sequence;    /* per device: 0, 1, 2, ... (stream-level records: their own count) */
    uint32_t payload_crc; /* CRC32C of the payload */
} StreamRecordHeader;

typedef struct StreamManifestDevice {
    char name[STREAM_MAX_NAME + 1];
    uint32_t mig_flags;   /* VFIO_MIGRATION_* */
    uint64_t data_size;   /* MIG_DATA_SIZE estimate at the start */
    char backend[16];     /* "sim", "kernel" */
    uint16_t compat_size; /* plugin compatibility descriptor; empty until plugins land */
    uint8_t compat[STREAM_MAX_COMPAT];
} StreamManifestDevice;

typedef struct StreamManifest {
    char group[STREAM_MAX_NAME + 1];
    uint32_t n_devices;
    StreamManifestDevice *devices; /* n_devices entries, owned by the caller */
} StreamManifest;

typedef struct StreamDeviceTotals {
    uint64_t bytes;       /* DEVICE_DATA payload bytes */
    uint64_t records;     /* DEVICE_DATA records */
} StreamDeviceTotals;

/* ---- CRC32C (Castagnoli), hardware-accelerated where the CPU has SSE4.2 ---- */
uint32_t crc32c(uint32_t crc, const void *buf, size_t size); /* start with crc = 0 */
/* Test and benchmark hooks, to hold the implementations against each other on any CPU:
 * which one crc32c() uses here, and any one on demand (one the CPU lacks runs the table). */
typedef enum Crc32cImpl {
    CRC32C_IMPL_TABLE,    /* slicing-by-8, any CPU */
    CRC32C_IMPL_SSE42,    /* crc32 instruction, three interleaved streams */
    CRC32C_IMPL_AVX512,   /* AVX-512 VPCLMULQDQ folding; SSE4.2 below 1 KiB and for tails */
    _CRC32C_IMPL_MAX,
} Crc32cImpl;
Crc32cImpl crc32c_impl(void);
const char *crc32c_impl_name(Crc32cImpl impl);
uint32_t crc32c_with(Crc32cImpl impl, uint32_t crc, const void *buf, size_t size);
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t size); /* the table path */

/* ---- encoding ---- */
void stream_encode_header(const StreamHeader *h, uint8_t out[STREAM_HEADER_SIZE]);
/* Fills @out from @h, computing payload_crc over @payload (h->payload_crc is ignored) and the
 * header CRC. */
void stream_encode_record_header(const StreamRecordHeader *h, const void *payload,
                                 uint8_t out[STREAM_RECORD_HEADER_SIZE]);
/* The same when the caller already has the payload's CRC (it was computed while copying). */
void stream_encode_record_header_crc(const StreamRecordHeader *h,
                                     uint8_t out[STREAM_RECORD_HEADER_SIZE]);
/* Manifest and totals payloads: the size needed, and the encoder (returns bytes written or
 * -E2BIG when @size is too small / a field is over its bound, -EINVAL when a field breaks
 * another rule: an empty name, a control character, a duplicate device name, 0 devices). */
size_t stream_manifest_size(const StreamManifest *m);
int stream_encode_manifest(const StreamManifest *m, uint8_t *out, size_t size);
int stream_encode_device_end(const StreamDeviceTotals *t, uint8_t *out, size_t size);
size_t stream_end_size(uint32_t n_devices);
int stream_encode_stream_end(const StreamDeviceTotals *t, uint32_t n_devices, uint8_t *out,
                             size_t size);

/* ---- decoding (stateless pieces) ---- */
int stream_decode_header(const uint8_t in[STREAM_HEADER_SIZE], StreamHeader *ret);
/* Checks the header CRC, the bounds and the reserved bits; not the payload CRC. */
int stream_decode_record_header(const uint8_t in[STREAM_RECORD_HEADER_SIZE],
                                StreamRecordHeader *ret);
/* Decodes a MANIFEST payload into @m; m->devices must have room for STREAM_MAX_DEVICES. */
int stream_decode_manifest(const uint8_t *in, size_t size, StreamManifest *m);
int stream_decode_device_end(const uint8_t *in, size_t size, StreamDeviceTotals *ret);
/* DEVICE_IRQS payload: its size for @s (4 + 3 bitmaps of ceil(count / 8) bytes), the
 * encoder (bytes written; -EINVAL when irq_state_check() refuses @s or its type is NONE,
 * -E2BIG when @size is too small) and the decoder: -EBADMSG for anything but one valid
 * encoding (a length that is not exactly the count's, an index that is not intx/msi/msix, a
 * count of 0 or over the index's limit, a reserved byte set, a bit at or beyond the count,
 * masked or pending on a vector not in use), with the reason in @why (may be NULL). */
size_t stream_device_irqs_size(const IrqState *s);
int stream_encode_device_irqs(const IrqState *s, uint8_t *out, size_t size);
int stream_decode_device_irqs(const uint8_t *in, size_t size, IrqState *ret, char *why,
                              size_t why_size);
int stream_decode_stream_end(const uint8_t *in, size_t size, StreamDeviceTotals *ret,
                             uint32_t n_devices);

/* The magic of the single-device save file that vfio-migd wrote before a device's save became
 * a one-device stream (docs/stream-format.md, "Save files"). That format is retired: such a
 * file is recognised only to be refused with a sentence that says so. */
#define STREAM_RETIRED_SAVE_MAGIC "VFMIGDSV"
/* Whether the first @size bytes of a file are those of a retired single-device save file. */
bool stream_is_retired_save(const uint8_t *head, size_t size);

/* ---- StreamReader: the order and totals of a whole stream ---- */

typedef struct StreamReaderDevice {
    uint64_t next_sequence;
    StreamDeviceTotals totals;
    bool ended;
    bool stop_copy;        /* a DEVICE_DATA without PRECOPY was read: no PRECOPY may follow */
    bool irqs;             /* its DEVICE_IRQS was read: only its DEVICE_END may follow */
    char name[STREAM_MAX_NAME + 1]; /* from the manifest, for messages; "" on data channels */
} StreamReaderDevice;

typedef struct StreamReader {
    bool have_header;
    bool have_manifest;
    bool ended;            /* STREAM_END seen: nothing may follow */
    bool device_channel;   /* set up by stream_reader_expect_devices(): device records only */
    uint64_t stream_id;
    uint32_t n_devices;
    uint64_t next_stream_sequence;
    StreamReaderDevice devices[STREAM_MAX_DEVICES];
    char error[256];       /* what is wrong, when a call failed */
} StreamReader;

void stream_reader_init(StreamReader *r);
/* Feed the stream header. */
int stream_reader_header(StreamReader *r, const uint8_t in[STREAM_HEADER_SIZE]);
/*
 * Feed one record: its 32 header bytes and its payload (length from the header). Checks the
 * header, the payload CRC, the order (manifest first; per-device sequence; no data after its
 * DEVICE_END; nothing after STREAM_END) and, at DEVICE_END and STREAM_END, the totals.
 * @manifest, when the record is the MANIFEST, receives it (its devices array needs room for
 * STREAM_MAX_DEVICES). On success *ret_header says what the record is, so the caller can
 * hand DEVICE_DATA payloads to the device. Unknown OPTIONAL types are accepted and reported
 * as they are (the caller ignores them); unknown mandatory types are -EBADMSG.
 */
int stream_reader_record(StreamReader *r, const uint8_t hdr[STREAM_RECORD_HEADER_SIZE],
                         const uint8_t *payload, StreamManifest *manifest,
                         StreamRecordHeader *ret_header);
/* The same for a record whose payload CRC the caller has checked already (the receivers of
 * a device spread over several channels check theirs in parallel, then feed the device's
 * one reader in sequence order). Never a MANIFEST. */
int stream_reader_record_crc_checked(StreamReader *r, const uint8_t hdr[STREAM_RECORD_HEADER_SIZE],
                                     const uint8_t *payload, StreamRecordHeader *ret_header);
/* Initialises @r for a channel that carries device records only (a live migration data
 * channel): no stream header and no MANIFEST come on it, the caller learnt @stream_id and
 * @n_devices on the control channel. Device records are checked as in a whole stream (index
 * < @n_devices, sequence, payload CRC, DEVICE_END totals); a stream-level record is
 * -EBADMSG. Use one reader per channel; a channel meant for one device checks
 * ret_header->device itself, and hands the device's state to the control channel's reader
 * with stream_reader_adopt_device() once the channel is done. */
void stream_reader_expect_devices(StreamReader *r, uint64_t stream_id, uint32_t n_devices);
/* Takes @device's counts from a data-channel reader into @r (the control channel's reader,
 * after its MANIFEST), so that @r can check STREAM_END against them:
 *   -ESTALE   @channel belongs to another stream (stream id)
 *   -ENODATA  @device did not reach its DEVICE_END on @channel (the channel ended early)
 *   -EBADMSG  @r already has records or an end of @device, or the device counts differ
 *   -EINVAL   @device is out of range, @channel is not a data-channel reader, or @r has no
 *             MANIFEST yet or has ended */
int stream_reader_adopt_device(StreamReader *r, const StreamReader *channel, uint32_t device);
/* True when STREAM_END was read and every device ended with matching totals. */
bool stream_reader_complete(const StreamReader *r);
/* For the caller that reached the end of its input: 0 when stream_reader_complete(), else
 * -ENODATA with r->error saying what is missing ("the stream ended before STREAM_END"). */
int stream_reader_finish(StreamReader *r);
