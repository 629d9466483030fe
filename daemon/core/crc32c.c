/* SPDX-License-Identifier: MIT */
/*
 * crc32c — CRC-32C (Castagnoli), the checksum of every migration stream record (stream.h,
 * docs/stream-format.md). Every byte a migration moves is checksummed twice, by the writer
 * and by the reader, on the same cores that move it, so this must run far above link speed:
 * at 30 GB/s it still costs a 3 GB/s loopback pump about a tenth of its rate.
 *
 * Three implementations of one function, picked once per process by what the CPU has:
 *   - AVX-512 + VPCLMULQDQ: carry-less multiplication folds 256 bytes per step into four
 *     512-bit accumulators (the method of Intel's "Fast CRC Computation for Generic
 *     Polynomials Using PCLMULQDQ"; the fold constants are x^n mod P, computed below);
 *     the crc32 instruction reduces the last 128 bits and does the tail. On long buffers
 *     the crc32 instruction also runs three streams over part of every stripe while the
 *     vector unit folds the rest: the two use different execution units, so together they
 *     go faster than either (see avx512_stripes()).
 *   - SSE4.2: the crc32 instruction over three independent parts of the buffer at once,
 *     because one crc32 has a latency of about three cycles but the CPU can start one every
 *     cycle. The three partial CRCs are joined with precomputed "append N zero bytes"
 *     operators (tables below), the method of Mark Adler's crc32c.c.
 *   - slicing-by-8 tables, portable, about 1.5 GB/s.
 * All three work on the raw CRC register; crc32c() applies the iSCSI pre- and
 * post-inversion, so crc32c(crc32c(0, a), b) == crc32c(0, a || b). crc32c_with() runs any
 * of them, so the tests can hold each against the others on whatever CPU runs them.
 *
 * The tables are built once, on first use, under pthread_once(): any thread may call.
 */
#include "stream.h"

#include <endian.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "../util/le.h"
#include "../util/macro.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define CRC32C_HAVE_X86 1
#endif

#define CRC32C_POLY 0x82F63B78u /* reflected Castagnoli polynomial */

/* Block sizes of the three-way interleave: LONG amortises the join over 24 KiB, SHORT
 * keeps medium buffers (a small record) off the one-stream loop. Any multiple of 8 works. */
#define CRC32C_LONG 8192
#define CRC32C_SHORT 256
/* Below this the vector set-up and final reduction cost more than they save. */
#define CRC32C_VECTOR_MIN 1024
/* A stripe of the AVX-512 path: CRC32C_STRIPE_FOLDS groups of 256 bytes for the vector
 * unit, then 3 * CRC32C_STRIPE_SCALAR bytes for three crc32 streams, then the 256-byte group
 * that takes the streams' CRC in. 3/7 of the bytes to the crc32 instruction measured best
 * (bench-datapath, 512 KiB, AMD EPYC: 52 -> 67 GB/s); the streams take CRC32C_STRIPE_SCALAR / 8 /
 * CRC32C_STRIPE_FOLDS steps after each fold, the rest after the last. */
#define CRC32C_STRIPE_FOLDS 15
#define CRC32C_STRIPE_SCALAR 1024
#define CRC32C_STRIPE (256 * (CRC32C_STRIPE_FOLDS + 1) + 3 * CRC32C_STRIPE_SCALAR)

static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;
static Crc32cImpl crc32c_best = CRC32C_IMPL_TABLE;
static uint32_t crc32c_table[8][256];     /* slicing-by-8; [0] is the byte-at-a-time table */
static uint32_t crc32c_long[4][256];      /* register -> register after CRC32C_LONG zeros */
static uint32_t crc32c_short[4][256];     /* the same for CRC32C_SHORT zeros */
/* Fold constants, one (x^(D+31), x^(D-33)) mod P pair per 128-bit lane, for a fold
 * forward by D bits: 2048 (the main loop), 1024 and 512 (accumulators into each other),
 * and 384/256/128/none (the four lanes of the last accumulator into its last lane). */
static uint64_t crc32c_k2048[8], crc32c_k1024[8], crc32c_k512[8], crc32c_klast[8];
static uint64_t crc32c_kgap[8]; /* fold over a group and a stripe's scalar part */
static uint64_t crc32c_kscalar; /* x^(8 * CRC32C_STRIPE_SCALAR - 33) mod P: see shift_scalar() */

static const char *const impl_names[_CRC32C_IMPL_MAX] = {
    [CRC32C_IMPL_TABLE] = "table (slicing-by-8)",
    [CRC32C_IMPL_SSE42] = "SSE4.2 (crc32, 3 streams)",
    [CRC32C_IMPL_AVX512] = "AVX-512 VPCLMULQDQ",
};

static uint32_t
sw_raw(uint32_t crc, const uint8_t *p, size_t size)
{
    const uint32_t (*t)[256] = crc32c_table;

    /* Eight bytes per step: each table folds one byte position in, so the steps of one
     * word are independent loads rather than a chain of eight. */
    while (size >= 8) {
        uint64_t w = get_le64(p) ^ crc;

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

/* x^n mod P, in the reflected register representation (bit 31 - k holds x^k). */
static uint32_t
xpow_mod(unsigned n)
{
    uint32_t v = UINT32_C(1) << 31;

    while (n-- > 0) {
        v = (v >> 1) ^ (CRC32C_POLY & (0u - (v & 1u)));
    }
    return v;
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

/*
 * A 128-bit lane L of message bits, followed by D more bits, contributes L(x) * x^D to the
 * CRC. With L = A * x^64 + B (A its first 8 bytes), a reflected carry-less product of a
 * 64-bit half by a 32-bit constant C lands shifted by x^33, so A's constant is
 * x^(D+31) mod P and B's is x^(D-33) mod P; the sum of the two products is a lane that
 * contributes the same as L, D bits further on.
 */
static void
build_fold(uint64_t k[8], const unsigned d[4])
{
    for (int lane = 0; lane < 4; lane++) {
        k[2 * lane] = d[lane] ? xpow_mod(d[lane] + 31) : 0;
        k[2 * lane + 1] = d[lane] ? xpow_mod(d[lane] - 33) : 0;
    }
}

static void
build_tables(void)
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
    build_zeros_op(crc32c_long, CRC32C_LONG);
    build_zeros_op(crc32c_short, CRC32C_SHORT);
    build_fold(crc32c_k2048, (const unsigned[4]) {2048, 2048, 2048, 2048});
    build_fold(crc32c_k1024, (const unsigned[4]) {1024, 1024, 1024, 1024});
    build_fold(crc32c_k512, (const unsigned[4]) {512, 512, 512, 512});
    build_fold(crc32c_klast, (const unsigned[4]) {384, 256, 128, 0});
    unsigned gap = 8 * (256 + 3 * CRC32C_STRIPE_SCALAR);
    build_fold(crc32c_kgap, (const unsigned[4]) {gap, gap, gap, gap});
    crc32c_kscalar = xpow_mod(8 * CRC32C_STRIPE_SCALAR - 33);
}

static void
crc32c_init(void)
{
    build_tables();
#ifdef CRC32C_HAVE_X86
    if (__builtin_cpu_supports("sse4.2")) {
        crc32c_best = CRC32C_IMPL_SSE42;
    }
    if (crc32c_best == CRC32C_IMPL_SSE42 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("pclmul")) {
        crc32c_best = CRC32C_IMPL_AVX512;
    }
#endif
}

#ifdef CRC32C_HAVE_X86
#define TARGET_SSE42 __attribute__((target("sse4.2")))
#define TARGET_AVX512 __attribute__((target("sse4.2,pclmul,avx512f,vpclmulqdq")))

static inline uint64_t
load64(const uint8_t *p)
{
    uint64_t v;

    memcpy(&v, p, sizeof(v)); /* x86 is little-endian, as crc32 wants its operand */
    return v;
}

/* Applies a linear operator stored as four byte tables (see build_zeros_op()). */
static uint32_t
apply_op(const uint32_t op[4][256], uint32_t crc)
{
    return op[0][crc & 0xff] ^ op[1][(crc >> 8) & 0xff] ^ op[2][(crc >> 16) & 0xff] ^
           op[3][crc >> 24];
}

/* Three streams over the next 3 * @block bytes, joined into one register. */
TARGET_SSE42 static uint64_t
sse42_three_way(uint64_t c0, const uint8_t *p, size_t block, const uint32_t op[4][256])
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

TARGET_SSE42 static uint32_t
sse42_raw(uint32_t crc, const uint8_t *p, size_t size)
{
    uint64_t c = crc;

    /* Aligned loads are not required, but cheaper than loads straddling cache lines. */
    while (size > 0 && ((uintptr_t) p & 7) != 0) {
        c = _mm_crc32_u8((uint32_t) c, *p);
        p++;
        size--;
    }
    while (size >= 3 * CRC32C_LONG) {
        c = sse42_three_way(c, p, CRC32C_LONG, crc32c_long);
        p += 3 * CRC32C_LONG;
        size -= 3 * CRC32C_LONG;
    }
    while (size >= 3 * CRC32C_SHORT) {
        c = sse42_three_way(c, p, CRC32C_SHORT, crc32c_short);
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

/* Each 128-bit lane of @x moved forward by the distance @k was built for, plus @data. */
TARGET_AVX512 static inline __m512i
fold512(__m512i x, __m512i k, __m512i data)
{
    __m512i lo = _mm512_clmulepi64_epi128(x, k, 0x00);
    __m512i hi = _mm512_clmulepi64_epi128(x, k, 0x11);

    return _mm512_ternarylogic_epi64(lo, hi, data, 0x96); /* lo ^ hi ^ data */
}

/* Folds the four accumulators forward by the distance @k was built for, adding the 256
 * bytes at @p. */
TARGET_AVX512 static inline void
fold4(__m512i a[4], __m512i k, const uint8_t *p)
{
    /* Unrolled, so that the accumulators stay in registers at -O2 as well. */
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        a[i] = fold512(a[i], k, _mm512_loadu_si512(p + 64 * i));
    }
}

/* The raw register @crc moved CRC32C_STRIPE_SCALAR zero bytes on: the reflected product by
 * x^(8 * CRC32C_STRIPE_SCALAR - 33) lands 33 bits further on (build_fold()), and the crc32
 * instruction on the 64-bit product reduces it with the missing x^32 * x. */
TARGET_AVX512 static inline uint32_t
shift_scalar(uint32_t crc)
{
    __m128i p = _mm_clmulepi64_si128(_mm_cvtsi32_si128((int) crc),
                                     _mm_cvtsi64_si128((long long) crc32c_kscalar), 0x00);

    return (uint32_t) _mm_crc32_u64(0, (uint64_t) _mm_cvtsi128_si64(p));
}

/* @n steps of the three crc32 streams, which start CRC32C_STRIPE_SCALAR bytes apart. */
TARGET_AVX512 static inline const uint8_t *
scalar_steps(uint64_t c[3], const uint8_t *s, int n)
{
    for (int i = 0; i < n; i++, s += 8) {
        c[0] = _mm_crc32_u64(c[0], load64(s));
        c[1] = _mm_crc32_u64(c[1], load64(s + CRC32C_STRIPE_SCALAR));
        c[2] = _mm_crc32_u64(c[2], load64(s + 2 * CRC32C_STRIPE_SCALAR));
    }
    return s;
}

/* The three streams' registers as one: crc(A || B) = crc(A) moved |B| zero bytes on ^
 * crc_from_0(B), for raw registers. */
TARGET_AVX512 static inline uint32_t
join_streams(const uint64_t c[3])
{
    return shift_scalar(shift_scalar((uint32_t) c[0]) ^ (uint32_t) c[1]) ^ (uint32_t) c[2];
}

/*
 * Whole stripes from @p while @size holds one: each is CRC32C_STRIPE_FOLDS groups folded into
 * the accumulators, then 3 * CRC32C_STRIPE_SCALAR bytes run by the crc32 instruction as three
 * streams from 0 (interleaved with the folds, so both units work at once), then one group
 * folded over the whole scalar part (crc32c_kgap). The streams' joined CRC is XORed into the
 * first four bytes of that group: a register XORed into the message right after a part
 * stands for that part's CRC, as @crc does at the start (avx512_raw()). Returns the bytes
 * done.
 */
TARGET_AVX512 static size_t
avx512_stripes(__m512i a[4], const uint8_t *p, size_t size)
{
    enum {
        STEPS = CRC32C_STRIPE_SCALAR / 8 / CRC32C_STRIPE_FOLDS,
        LAST_STEPS = CRC32C_STRIPE_SCALAR / 8 - STEPS * CRC32C_STRIPE_FOLDS,
    };
    __m512i k2048 = _mm512_loadu_si512(crc32c_k2048);
    __m512i kgap = _mm512_loadu_si512(crc32c_kgap);
    size_t done = 0;

    for (; size - done >= CRC32C_STRIPE; done += CRC32C_STRIPE) {
        const uint8_t *v = p + done, *s = v + 256 * CRC32C_STRIPE_FOLDS;
        const uint8_t *next = s + 3 * CRC32C_STRIPE_SCALAR;
        uint64_t c[3] = {0, 0, 0};
        __m512i joined;

        for (int i = 0; i < CRC32C_STRIPE_FOLDS; i++) {
            fold4(a, k2048, v + 256 * i);
            s = scalar_steps(c, s, STEPS);
        }
        (void) scalar_steps(c, s, LAST_STEPS);
        joined = _mm512_zextsi128_si512(_mm_cvtsi32_si128((int) join_streams(c)));
        a[0] = fold512(a[0], kgap, _mm512_xor_si512(_mm512_loadu_si512(next), joined));
#pragma GCC unroll 3
        for (int i = 1; i < 4; i++) {
            a[i] = fold512(a[i], kgap, _mm512_loadu_si512(next + 64 * i));
        }
    }
    return done;
}

/* The four accumulators reduced to the raw register of everything folded into them. */
TARGET_AVX512 static uint32_t
avx512_reduce(__m512i a[4])
{
    __m512i r;
    __m128i x;
    uint64_t c;

    a[2] = fold512(a[0], _mm512_loadu_si512(crc32c_k1024), a[2]);
    a[3] = fold512(a[1], _mm512_loadu_si512(crc32c_k1024), a[3]);
    r = fold512(a[2], _mm512_loadu_si512(crc32c_k512), a[3]);
    /* Lanes 0..2 folded onto lane 3, which is kept as it is (its constants are 0). */
    r = fold512(r, _mm512_loadu_si512(crc32c_klast), _mm512_maskz_mov_epi64(0xC0, r));
    x = _mm_xor_si128(_mm_xor_si128(_mm512_extracti32x4_epi32(r, 0),
                                    _mm512_extracti32x4_epi32(r, 1)),
                      _mm_xor_si128(_mm512_extracti32x4_epi32(r, 2),
                                    _mm512_extracti32x4_epi32(r, 3)));
    c = _mm_crc32_u64(0, (uint64_t) _mm_cvtsi128_si64(x));
    return (uint32_t) _mm_crc32_u64(c, (uint64_t) _mm_extract_epi64(x, 1));
}

/* @size >= 256. The raw register @crc is XORed into the first four message bytes, which
 * is what starting the CRC from it means; the result is the lane that stands for the
 * whole buffer, reduced by the crc32 instruction. */
TARGET_AVX512 static uint32_t
avx512_raw(uint32_t crc, const uint8_t *p, size_t size)
{
    __m512i k2048 = _mm512_loadu_si512(crc32c_k2048);
    __m512i a[4];
    size_t done;

#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        a[i] = _mm512_loadu_si512(p + 64 * i);
    }
    a[0] = _mm512_xor_si512(a[0], _mm512_zextsi128_si512(_mm_cvtsi32_si128((int) crc)));
    p += 256;
    size -= 256;
    done = avx512_stripes(a, p, size);
    p += done;
    size -= done;
    while (size >= 256) {
        fold4(a, k2048, p);
        p += 256;
        size -= 256;
    }
    return sse42_raw(avx512_reduce(a), p, size);
}

TARGET_AVX512 static uint32_t
avx512_or_sse42_raw(uint32_t crc, const uint8_t *p, size_t size)
{
    size_t head;

    if (size < CRC32C_VECTOR_MIN) {
        return sse42_raw(crc, p, size);
    }
    /* Whole cache lines for the vector loop. */
    head = (64 - ((uintptr_t) p & 63)) & 63;
    crc = sse42_raw(crc, p, head);
    return avx512_raw(crc, p + head, size - head);
}
#endif

static uint32_t
raw_with(Crc32cImpl impl, uint32_t crc, const uint8_t *p, size_t size)
{
#ifdef CRC32C_HAVE_X86
    if (impl > crc32c_best) {
        impl = CRC32C_IMPL_TABLE;
    }
    switch (impl) {
    case CRC32C_IMPL_AVX512:
        return avx512_or_sse42_raw(crc, p, size);
    case CRC32C_IMPL_SSE42:
        return sse42_raw(crc, p, size);
    default:
        break;
    }
#else
    (void) impl;
#endif
    return sw_raw(crc, p, size);
}

uint32_t
crc32c(uint32_t crc, const void *buf, size_t size)
{
    (void) pthread_once(&crc32c_once, crc32c_init);
    return ~raw_with(crc32c_best, ~crc, buf, size);
}

uint32_t
crc32c_with(Crc32cImpl impl, uint32_t crc, const void *buf, size_t size)
{
    (void) pthread_once(&crc32c_once, crc32c_init);
    return ~raw_with(impl, ~crc, buf, size);
}

uint32_t
crc32c_sw(uint32_t crc, const void *buf, size_t size)
{
    return crc32c_with(CRC32C_IMPL_TABLE, crc, buf, size);
}

Crc32cImpl
crc32c_impl(void)
{
    (void) pthread_once(&crc32c_once, crc32c_init);
    return crc32c_best;
}

DEFINE_NAME_LOOKUP(crc32c_impl_name, Crc32cImpl, impl_names, "unknown");
