/* SPDX-License-Identifier: MIT */
/*
 * fuzz_savefile — arbitrary bytes as a save file, read by the restore's loop
 * (daemon/savefile.c, what migration_file.c runs) from a real file (a memfd): stream header,
 * records read with pread() and checked by the stream reader, the end rules.
 * The first input byte: with bit 0 set, every record header after the stream header is
 * resealed (CRCs recomputed) first, so that the fuzzer gets past the CRCs to the manifest,
 * order and totals rules. The rest is the file.
 * Properties, besides no crash and no out-of-bounds access:
 *   - the callback sees the MANIFEST first, and only records of devices the manifest has
 *     (the restore indexes its devices with them);
 *   - 0 only for a complete stream (every device ended, STREAM_END last, nothing after it);
 *   - a refusal is -ENODATA or a reader's errno, and says why in one printable sentence.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "reseal.h"
#include "savefile.h"
#include "util/le.h"

static StreamManifestDevice devices[STREAM_MAX_DEVICES];
static StreamManifest manifest = {.devices = devices};

typedef struct Seen {
    bool manifest;
    uint64_t records;
} Seen;

static int
on_record(void *userdata, const uint8_t *hdr, const StreamRecordHeader *rh,
          const uint8_t *payload)
{
    Seen *seen = userdata;

    (void) payload;
    fuzz_check(get_le32(hdr) == rh->type, "the callback gets the record's own header");
    if (rh->type == STREAM_RECORD_MANIFEST) {
        fuzz_check(!seen->manifest && seen->records == 0, "the MANIFEST comes first, once");
        seen->manifest = true;
    } else {
        fuzz_check(seen->manifest, "no record before the MANIFEST");
    }
    if (rh->type == STREAM_RECORD_DEVICE_DATA || rh->type == STREAM_RECORD_DEVICE_END) {
        fuzz_check(rh->device < manifest.n_devices, "a device record names a manifest device");
    }
    seen->records++;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static StreamReader rd;
    Seen seen = {0};
    uint8_t *p;
    int fd, r;

    if (size < 1 || size > (4u << 20)) {
        return 0;
    }
    p = malloc(size);
    fuzz_check(p != NULL, "malloc");
    memcpy(p, data + 1, size - 1);
    if (data[0] & 1) {
        fuzz_reseal(p, size - 1, STREAM_HEADER_SIZE);
    }
    fd = memfd_create("fuzz_savefile", MFD_CLOEXEC);
    fuzz_check(fd >= 0 && write(fd, p, size - 1) == (ssize_t) (size - 1), "the file is written");
    memset(&manifest, 0, offsetof(StreamManifest, devices));
    r = savefile_read(fd, &rd, &manifest, on_record, &seen);
    if (r == 0) {
        fuzz_check(stream_reader_complete(&rd), "0 only for a complete stream");
        for (uint32_t i = 0; i < rd.n_devices; i++) {
            fuzz_check(rd.devices[i].ended, "a complete stream has every device ended");
        }
        fuzz_outcome = "complete";
    } else {
        fuzz_check(r == -ENODATA || r == -EBADMSG || r == -E2BIG || r == -ESTALE ||
                   r == -ENOEXEC || r == -EPROTONOSUPPORT,
                   "a refusal is -ENODATA or one of the stream reader's (stream.h)");
        fuzz_check_message(rd.error, sizeof(rd.error));
        fuzz_outcome = rd.error;
    }
    (void) close(fd);
    free(p);
    return 0;
}
