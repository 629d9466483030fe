/* SPDX-License-Identifier: MIT */
/*
 * crc32c — CRC-32C (Castagnoli), the checksum of every migration stream record (stream.h,
 * docs/stream-format.md). Every byte a migration moves is checksummed twice (by the writer
 * and by the reader), so this sits on the data path and must run well above link speed.
 *
 * Two implementations of one function:
 *   - SSE4.2 (x86-64 CPUs that have it, checked at run time): the crc32 instruction over
 *     three independent parts of the buffer at once, because one crc32 has a latency of
 *     about three cycles but the CPU can start one every cycle. The three partial CRCs are
 *     joined with precomputed "append N zero bytes" operators (tables below), the method of
 *     Mark Adler's crc32c.c.
 *   - slicing-by-8 tables, portable, about 1-2 GB/s; also exported as crc32c_sw() so the
 *     tests can hold the two against each other on any CPU.
 * Both work on the raw CRC register; crc32c() applies the iSCSI pre- and post-inversion, so
 * crc32c(crc32c(0, a), b) == crc32c(0, a || b).
 *
 * The tables are built once, on first use, under pthread_once(): any thread may call.
 */
#include "stream.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define CRC32C_HAVE_X86 1
#endif

#define CRC32C_POLY 0x82F63B78u /* reflected Castagnoli polynomial */

/* Block sizes of the three-way interleave: LONG amortises the join over 24 KiB, SHORT
 * keeps medium buffers (a record header plus a small payload) off the one-stream loop.
 * Both are powers of two only by habit; any multiple of 8 works. */
#define CRC32C_LONG 8192
#define CRC32C_SHORT 256

static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;
static bool crc32c_hw;
static uint32_t crc32c_table[8][256];     /* slicing-by-8; [0] is the byte-at-a-time table */
static uint32_t crc32c_long[4][256];      /* register -> register after CRC32C_LONG zeros */
static uint32_t crc32c_short[4][256];     /* the same for CRC32C_SHORT zeros */

static uint64_t
load_le64(const uint8_t *p)
{
    uint64_t v = 0;

    for (int i = 0; i < 8; i++) {
        v |= (uint64_t) p[i] << (8 * i);
    }
    return v;
}

static uint32_t
sw_raw(uint32_t crc, const uint8_t *p, size_t size)
{
    const uint32_t (*t)[256] = crc32c_table;

    /* Eight bytes per step: each table folds one byte position in, so the steps of one
     * word are independent loads rather than a chain of eight. */
    while (size >= 8) {
        uint64_t w = load_le64(p) ^ crc;

        crc = t[7][w & 0xff] ^ t[6][(w >> 8) & 0xff] ^ t[5][(w >> 16) & 0xff] ^
              t[4][(w >> 24) & 0xff] ^ t[3][(w >> 32) & 0xff] ^ t[2][(w >> 40) & 0xff] ^
              t[1][(w >> 48) & 0xff] ^ t[0][w >> 56];
        p += 8;
        size -= 8;
    }
    while (size > 0) {
        crc = t[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
        p++;
        size--;
    }
    return crc;
}

/* Applies a linear operator stored as four byte tables (see build_zeros_op()). */
static uint32_t
apply_op(const uint32_t op[4][256], uint32_t crc)
{
    return op[0][crc & 0xff] ^ op[1][(crc >> 8) & 0xff] ^ op[2][(crc >> 16) & 0xff] ^
           op[3][crc >> 24];
}

/*
 * Appending zero bytes to a message changes the raw CRC register linearly over GF(2), so
 * the effect of @zeros zero bytes is fixed by its effect on the 32 single-bit registers;
 * the table entry for a byte value is the XOR of the images of its set bits. The images
 * are computed by simply running the table CRC over the zeros: slow, once, and obviously
 * right.
 */
static void
build_zeros_op(uint32_t op[4][256], size_t zeros)
{
    static const uint8_t zero[CRC32C_LONG];
    uint32_t image[32];

    for (int b = 0; b < 32; b++) {
        image[b] = sw_raw(UINT32_C(1) << b, zero, zeros);
    }
    for (int k = 0; k < 4; k++) {
        for (unsigned n = 0; n < 256; n++) {
            uint32_t v = 0;
            for (int b = 0; b < 8; b++) {
                if (n & (1u << b)) {
                    v ^= image[8 * k + b];
                }
            }
            op[k][n] = v;
        }
    }
}

static void
crc32c_init(void)
{
    for (unsigned n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) {
            c = (c >> 1) ^ (CRC32C_POLY & (0u - (c & 1u)));
        }
        crc32c_table[0][n] = c;
    }
    for (unsigned n = 0; n < 256; n++) {
        for (int k = 1; k < 8; k++) {
            uint32_t c = crc32c_table[k - 1][n];
            crc32c_table[k][n] = (c >> 8) ^ crc32c_table[0][c & 0xff];
        }
    }
#ifdef CRC32C_HAVE_X86
    crc32c_hw = __builtin_cpu_supports("sse4.2");
    if (crc32c_hw) {
        build_zeros_op(crc32c_long, CRC32C_LONG);
        build_zeros_op(crc32c_short, CRC32C_SHORT);
    }
#endif
}

#ifdef CRC32C_HAVE_X86
static inline uint64_t
load64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v)); /* x86 is little-endian, as crc32 wants its operand */
    return v;
}

/* Three streams over the next 3 * @block bytes, joined into one register. */
__attribute__((target("sse4.2"))) static uint64_t
hw_three_way(uint64_t c0, const uint8_t *p, size_t block, const uint32_t op[4][256])
{
    const uint8_t *end = p + block;
    uint64_t c1 = 0;
    uint64_t c2 = 0;

    do {
        c0 = _mm_crc32_u64(c0, load64(p));
        c1 = _mm_crc32_u64(c1, load64(p + block));
        c2 = _mm_crc32_u64(c2, load64(p + 2 * block));
        p += 8;
    } while (p < end);
    /* crc(A || B) = zeros_op(crc(A)) ^ crc_from_0(B), for the raw register. */
    c0 = apply_op(op, (uint32_t) c0) ^ c1;
    return apply_op(op, (uint32_t) c0) ^ c2;
}

__attribute__((target("sse4.2"))) static uint32_t
hw_raw(uint32_t crc, const uint8_t *p, size_t size)
{
    uint64_t c = crc;

    /* Aligned loads are not required, but cheaper when a load would straddle lines. */
    while (size > 0 && ((uintptr_t) p & 7) != 0) {
        c = _mm_crc32_u8((uint32_t) c, *p);
        p++;
        size--;
    }
    while (size >= 3 * CRC32C_LONG) {
        c = hw_three_way(c, p, CRC32C_LONG, crc32c_long);
        p += 3 * CRC32C_LONG;
        size -= 3 * CRC32C_LONG;
    }
    while (size >= 3 * CRC32C_SHORT) {
        c = hw_three_way(c, p, CRC32C_SHORT, crc32c_short);
        p += 3 * CRC32C_SHORT;
        size -= 3 * CRC32C_SHORT;
    }
    while (size >= 8) {
        c = _mm_crc32_u64(c, load64(p));
        p += 8;
        size -= 8;
    }
    while (size > 0) {
        c = _mm_crc32_u8((uint32_t) c, *p);
        p++;
        size--;
    }
    return (uint32_t) c;
}
#endif

uint32_t
crc32c(uint32_t crc, const void *buf, size_t size)
{
    (void) pthread_once(&crc32c_once, crc32c_init);
#ifdef CRC32C_HAVE_X86
    if (crc32c_hw) {
        return ~hw_raw(~crc, buf, size);
    }
#endif
    return ~sw_raw(~crc, buf, size);
}

uint32_t
crc32c_sw(uint32_t crc, const void *buf, size_t size)
{
    (void) pthread_once(&crc32c_once, crc32c_init);
    return ~sw_raw(~crc, buf, size);
}

bool
crc32c_hw_available(void)
{
    (void) pthread_once(&crc32c_once, crc32c_init);
    return crc32c_hw;
}
