/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * le — little-endian fields of the project's wire and file formats (stream records, save
 * files, control messages): explicit byte order, so files and streams move between hosts.
 */

#include <endian.h>
#include <stdint.h>
#include <string.h>

/* Each is one load or store and, on a big-endian CPU, a byte swap. Not a loop or a shift-or
 * over the bytes: GCC merges such code into one load only when it unrolls it completely,
 * which -O2 does not always do, and the CRC32C table path (core/crc32c.c) then ran three times
 * the instructions it does at -O3 (bench/README.md). */

static inline void
put_le16(uint8_t *p, uint16_t v)
{
    v = htole16(v);
    memcpy(p, &v, sizeof(v));
}

static inline void
put_le32(uint8_t *p, uint32_t v)
{
    v = htole32(v);
    memcpy(p, &v, sizeof(v));
}

static inline void
put_le64(uint8_t *p, uint64_t v)
{
    v = htole64(v);
    memcpy(p, &v, sizeof(v));
}

static inline uint16_t
get_le16(const uint8_t *p)
{
    uint16_t v;

    memcpy(&v, p, sizeof(v));
    return le16toh(v);
}

static inline uint32_t
get_le32(const uint8_t *p)
{
    uint32_t v;

    memcpy(&v, p, sizeof(v));
    return le32toh(v);
}

static inline uint64_t
get_le64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v));
    return le64toh(v);
}
