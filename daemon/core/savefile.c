/* SPDX-License-Identifier: MIT */
/*
 * savefile — see savefile.h. Explicit little-endian encoding so a file moves between hosts.
 */
#include "../util/le.h"
#include "savefile.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

static const uint8_t magic[8] = {'V', 'F', 'M', 'I', 'G', 'D', 'S', 'V'};

uint32_t
savefile_crc32(uint32_t crc, const void *buf, size_t size)
{
    /* zlib's crc32() takes a uInt length: feed large buffers in slices. */
    const uint8_t *p = buf;
    while (size > 0) {
        uInt n = size > (1u << 30) ? (1u << 30) : (uInt) size;
        crc = (uint32_t) crc32(crc, p, n);
        p += n;
        size -= n;
    }
    return crc;
}

void
savefile_encode(const SaveFileHeader *h, uint8_t out[SAVEFILE_HEADER_SIZE])
{
    memset(out, 0, SAVEFILE_HEADER_SIZE);
    memcpy(out, magic, sizeof(magic));
    put_le32(out + 8, SAVEFILE_VERSION);
    put_le32(out + 12, SAVEFILE_HEADER_SIZE);
    put_le32(out + 16, h->mig_flags);
    put_le64(out + 24, h->data_bytes);
    put_le32(out + 32, h->data_crc32);
    memcpy(out + 40, h->backend, strnlen(h->backend, 15));
    put_le32(out + 60, savefile_crc32(0, out, 60));
}

int
savefile_decode(const uint8_t in[SAVEFILE_HEADER_SIZE], SaveFileHeader *ret)
{
    SaveFileHeader h = {0};

    if (memcmp(in, magic, sizeof(magic)) != 0) {
        return -ENOEXEC;
    }
    if (get_le32(in + 60) != savefile_crc32(0, in, 60)) {
        return -EBADMSG;
    }
    if (get_le32(in + 8) != SAVEFILE_VERSION) {
        return -EPROTONOSUPPORT;
    }
    if (get_le32(in + 12) != SAVEFILE_HEADER_SIZE || get_le32(in + 20) || get_le32(in + 36) ||
        get_le32(in + 56) || in[55] != '\0') {
        return -EBADMSG;
    }
    h.mig_flags = get_le32(in + 16);
    h.data_bytes = get_le64(in + 24);
    h.data_crc32 = get_le32(in + 32);
    if (h.data_bytes > SAVEFILE_MAX_DATA) {
        return -EBADMSG;
    }
    memcpy(h.backend, in + 40, 16);
    h.backend[15] = '\0';
    /* Canonical headers only: nothing may hide after the name's terminating NUL. */
    for (size_t i = strlen(h.backend); i < 16; i++) {
        if (in[40 + i] != 0) {
            return -EBADMSG;
        }
    }
    *ret = h;
    return 0;
}

const char *
savefile_strerror(int r)
{
    switch (r) {
    case -ENOEXEC:
        return "not a vfio-migd save file (bad magic)";
    case -EBADMSG:
        return "the save file header is damaged";
    case -EPROTONOSUPPORT:
        return "the save file was written by an incompatible vfio-migd version";
    default:
        return "the save file cannot be read";
    }
}
