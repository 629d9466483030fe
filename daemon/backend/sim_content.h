/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * sim_content — the bytes of a simulated device's chunk, generated and checked at memory
 * speed. Word j of a chunk with key K is the little-endian 64-bit K ^ (j * 0x9E3779B97F4A7C15)
 * (docs/simulated-devices.md "Content model"); a saving sim device fills its reads with it
 * and a resuming one checks every byte written against it. Both run over every byte a
 * migration of sim devices moves, on the same cores as the migration itself, so they must
 * never be what a benchmark measures.
 *
 * Several implementations of the same two functions; the best the CPU has is picked once per
 * process, and any one can be run on demand so that the tests can hold each against the
 * scalar reference:
 *   - scalar: one word at a time, the reference;
 *   - vector: GCC vector extensions, four registers per step, in the base instruction set
 *     (SSE2 on x86-64, NEON on arm64);
 *   - AVX2 and AVX-512: the same source compiled for those instruction sets.
 * The vector code is written out rather than left to the auto-vectoriser: GCC's -O2 (the
 * default RelWithDebInfo build and Debian's packages) vectorises a loop only when it needs no
 * scalar epilogue, and these loops, of any length, do. The compiler's loops ran about five
 * times slower at -O2 than at -O3; these run alike at both, and faster (bench/README.md).
 *
 * Pure: no I/O, no allocation. Threads: any.
 */

#include <stddef.h>
#include <stdint.h>

typedef enum SimContentImpl {
    SIM_CONTENT_IMPL_SCALAR, /* one word at a time: the reference */
    SIM_CONTENT_IMPL_VECTOR, /* vector code in the base instruction set (SSE2, NEON) */
    SIM_CONTENT_IMPL_AVX2,   /* x86-64 with AVX2 */
    SIM_CONTENT_IMPL_AVX512, /* x86-64 with AVX-512F */
    _SIM_CONTENT_IMPL_MAX,
} SimContentImpl;

/* Fills @buf with bytes [@off, @off + @len) of the chunk with key @key. */
void sim_content_fill(uint64_t key, uint64_t off, uint8_t *buf, size_t len);

/* 0 when @buf holds bytes [@off, @off + @len) of the chunk with key @key, else -EFAULT (the
 * errno mtty gives a stream it rejects). */
int sim_content_verify(uint64_t key, uint64_t off, const uint8_t *buf, size_t len);

/* The implementation the two functions above use on this CPU. Every implementation up to it
 * runs here; asking for one above it runs the scalar one. */
SimContentImpl sim_content_impl(void);
const char *sim_content_impl_name(SimContentImpl impl);
void sim_content_fill_with(SimContentImpl impl, uint64_t key, uint64_t off, uint8_t *buf,
                           size_t len);
int sim_content_verify_with(SimContentImpl impl, uint64_t key, uint64_t off, const uint8_t *buf,
                            size_t len);
