/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * savefile — the header of a single-device save file (SaveDevice / RestoreDevice).
 * Pure codec: encodes and checks a fixed 64-byte little-endian header; no I/O.
 *
 * File = header (64 bytes) + the device's raw migration data, exactly as read from its
 * saving data session. The header carries the data length and a CRC-32 of the data so a
 * truncated or damaged file is refused before any device is touched. The group stream format
 * of the migration issue (docs/stream-format.md) supersedes this for groups.
 *
 *   offset size field
 *   0      8    magic "VFMIGDSV"
 *   8      4    version (1)
 *   12     4    header size (64)
 *   16     4    migration flags of the saved device (VFIO_MIGRATION_*)
 *   20     4    reserved, 0
 *   24     8    data bytes
 *   32     4    CRC-32 (zlib) of the data
 *   36     4    reserved, 0
 *   40     16   back-end name, NUL-padded ("sim", "kernel")
 *   56     4    reserved, 0
 *   60     4    CRC-32 of bytes 0..59
 */

#include <stddef.h>
#include <stdint.h>

#define SAVEFILE_HEADER_SIZE 64
#define SAVEFILE_VERSION 1
/* A single device's state: mlx5 images stay below 4 GiB without chunk mode; allow 64 GiB so a
 * corrupt length cannot make the daemon read forever. */
#define SAVEFILE_MAX_DATA (UINT64_C(64) << 30)

typedef struct SaveFileHeader {
    uint32_t mig_flags;
    uint64_t data_bytes;
    uint32_t data_crc32;
    char backend[16]; /* NUL-terminated */
} SaveFileHeader;

void savefile_encode(const SaveFileHeader *h, uint8_t out[SAVEFILE_HEADER_SIZE]);

/* Checks magic, version, sizes, reserved fields and the header CRC. 0 or -EBADMSG (damaged),
 * -EPROTONOSUPPORT (another version), -ENOEXEC (not a vfio-migd save file). *ret is written
 * only on success. */
int savefile_decode(const uint8_t in[SAVEFILE_HEADER_SIZE], SaveFileHeader *ret);

/* Running CRC-32 over the data (zlib's polynomial); start with crc = 0. */
uint32_t savefile_crc32(uint32_t crc, const void *buf, size_t size);

/* A sentence for a decode error, for messages. */
const char *savefile_strerror(int r);
