/* SPDX-License-Identifier: MIT */
/*
 * test_sim_content — unit tests of daemon/backend/sim_content.c, the sim devices' chunk bytes.
 *
 * The oracle is the formula of docs/simulated-devices.md "Content model", computed byte by
 * byte below: byte b of a chunk with key K is byte (b mod 8) of the little-endian word
 * K ^ ((b div 8) * 0x9E3779B97F4A7C15). The scalar implementation is held against it; every
 * other implementation this CPU has is held against the scalar one, for every length up to
 * two steps of the widest main loop and then some, and every alignment of the buffer and of
 * the chunk offset, so each loop (four vectors per step, then one), the scalar rest and both
 * partial words are crossed. Guard bytes around each buffer
 * show that nothing outside it is written; the ASan build shows that nothing outside it is
 * read.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sim_content.h"

#define GOLDEN UINT64_C(0x9E3779B97F4A7C15)
/* Two main-loop steps of AVX-512 (4 vectors, 256 bytes), a single-vector step and a scalar
 * rest, with partial words at both ends. */
#define MAX_LEN 560
#define MAX_OFF 17   /* chunk offsets 0..16: every position inside a word, twice */
#define MAX_ALIGN 64 /* buffer addresses at every offset inside a cache line */
#define GUARD 16
#define GUARD_BYTE 0xA5
#define AREA_SIZE (GUARD + MAX_ALIGN + MAX_LEN + GUARD)
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

TestSuite(content, .timeout = 120);

static const uint64_t keys[] = {0, UINT64_MAX, UINT64_C(0x0123456789ABCDEF), GOLDEN};

static uint8_t
oracle_byte(uint64_t key, uint64_t b)
{
    return (uint8_t) ((key ^ ((b / 8) * GOLDEN)) >> (8 * (b % 8)));
}

/* Guards the whole area and returns the buffer at address alignment @align inside it. */
static uint8_t *
guarded(uint8_t *area, size_t align)
{
    memset(area, GUARD_BYTE, AREA_SIZE);
    return area + GUARD + align;
}

static void
assert_guards(const uint8_t *area, const uint8_t *buf, size_t len, const char *what)
{
    static uint8_t guards[AREA_SIZE];
    size_t before = (size_t) (buf - area), after = AREA_SIZE - before - len;

    memset(guards, GUARD_BYTE, sizeof(guards));
    cr_assert_arr_eq(area, guards, before, "%s wrote before the buffer", what);
    cr_assert_arr_eq(buf + len, guards, after, "%s wrote after the buffer", what);
}

static SimContentImpl
impl_at(int i)
{
    return (SimContentImpl) i;
}

Test(content, scalar_is_the_documented_formula)
{
    _Alignas(64) uint8_t area[AREA_SIZE];

    for (size_t k = 0; k < N_KEYS; k++) {
        for (uint64_t off = 0; off < MAX_OFF; off++) {
            for (size_t len = 0; len <= MAX_LEN; len++) {
                uint8_t *buf = guarded(area, off % 8);

                sim_content_fill_with(SIM_CONTENT_IMPL_SCALAR, keys[k], off, buf, len);
                for (size_t i = 0; i < len; i++) {
                    cr_assert_eq(buf[i], oracle_byte(keys[k], off + i),
                                 "key %zu offset %" PRIu64 " length %zu: byte %zu", k, off, len, i);
                }
                assert_guards(area, buf, len, "scalar fill");
                cr_assert_eq(sim_content_verify_with(SIM_CONTENT_IMPL_SCALAR, keys[k], off, buf,
                                                     len), 0);
            }
        }
    }
}

/* Offsets far into a chunk (and beyond any real one): the word index is 64-bit. */
Test(content, scalar_at_large_offsets)
{
    const uint64_t offs[] = {65528, 65535, UINT64_C(1) << 40, UINT64_MAX - 300};
    uint8_t buf[257];

    for (size_t o = 0; o < sizeof(offs) / sizeof(offs[0]); o++) {
        for (int i = 0; i < _SIM_CONTENT_IMPL_MAX; i++) {
            memset(buf, 0, sizeof(buf));
            sim_content_fill_with(impl_at(i), keys[2], offs[o], buf, sizeof(buf));
            for (size_t b = 0; b < sizeof(buf); b++) {
                cr_assert_eq(buf[b], oracle_byte(keys[2], offs[o] + b), "%s offset %" PRIu64
                             " byte %zu", sim_content_impl_name(impl_at(i)), offs[o], b);
            }
        }
    }
}

/* Every implementation this CPU has fills exactly the scalar bytes, and nothing else. */
Test(content, fill_agrees_with_scalar_for_every_length_and_alignment)
{
    _Alignas(64) uint8_t area[AREA_SIZE], want[MAX_LEN];

    cr_log_info("sim_content uses %s", sim_content_impl_name(sim_content_impl()));
    for (int i = 1; i <= (int) sim_content_impl(); i++) {
        const char *name = sim_content_impl_name(impl_at(i));

        for (size_t align = 0; align < MAX_ALIGN; align++) {
            for (uint64_t off = 0; off < MAX_OFF; off++) {
                for (size_t len = 0; len <= MAX_LEN; len++) {
                    uint8_t *buf = guarded(area, align);

                    sim_content_fill_with(SIM_CONTENT_IMPL_SCALAR, keys[2], off, want, len);
                    sim_content_fill_with(impl_at(i), keys[2], off, buf, len);
                    cr_assert_arr_eq(buf, want, len, "%s: align %zu offset %" PRIu64 " length %zu",
                                     name, align, off, len);
                    assert_guards(area, buf, len, name);
                }
            }
        }
    }
}

/* Every implementation accepts the right bytes and refuses one flipped bit anywhere in the
 * range, at every position; bytes outside the range do not count. Chunk offsets 0..8 put
 * the range's start at every position inside a word. */
Test(content, verify_agrees_with_scalar_for_every_length_and_alignment)
{
    _Alignas(64) uint8_t area[AREA_SIZE];
    const size_t aligns[] = {0, 1, 7, 63};

    for (int i = 0; i <= (int) sim_content_impl(); i++) {
        const char *name = sim_content_impl_name(impl_at(i));

        for (size_t a = 0; a < sizeof(aligns) / sizeof(aligns[0]); a++) {
            for (uint64_t off = 0; off <= 8; off++) {
                for (size_t len = 0; len <= MAX_LEN; len++) {
                    uint8_t *buf = guarded(area, aligns[a]);

                    sim_content_fill_with(SIM_CONTENT_IMPL_SCALAR, keys[1], off, buf, len);
                    buf[-1] ^= 0xFF; /* outside the range: must not matter */
                    buf[len] ^= 0xFF;
                    cr_assert_eq(sim_content_verify_with(impl_at(i), keys[1], off, buf, len), 0,
                                 "%s refused good bytes: align %zu offset %" PRIu64 " length %zu",
                                 name, aligns[a], off, len);
                    for (size_t b = 0; b < len; b++) {
                        uint8_t bit = (uint8_t) (1u << ((b + len) % 8));
                        int r;

                        buf[b] ^= bit;
                        r = sim_content_verify_with(impl_at(i), keys[1], off, buf, len);
                        buf[b] ^= bit;
                        if (r != -EFAULT) {
                            cr_assert_fail("%s took a flipped bit: align %zu offset %" PRIu64
                                           " length %zu byte %zu: %d", name, aligns[a], off,
                                           len, b, r);
                        }
                    }
                }
            }
        }
    }
}

/* A whole 64 KiB chunk and its pieces, as the sim hands them over, at odd splits. */
Test(content, whole_chunks_agree)
{
    const size_t size = 65536 + 64;
    uint8_t *want = malloc(size), *got = malloc(size + 1);
    const size_t splits[] = {1, 3, 8, 63, 64, 65, 4095, 4096, 65535};

    cr_assert(want && got);
    sim_content_fill_with(SIM_CONTENT_IMPL_SCALAR, keys[3], 0, want, size);
    for (int i = 1; i <= (int) sim_content_impl(); i++) {
        for (size_t s = 0; s < sizeof(splits) / sizeof(splits[0]); s++) {
            memset(got, 0, size + 1);
            for (size_t done = 0; done < size; done += splits[s]) {
                size_t n = size - done < splits[s] ? size - done : splits[s];
                /* got + 1: the pieces land at an odd address */
                sim_content_fill_with(impl_at(i), keys[3], done, got + 1 + done, n);
            }
            cr_assert_arr_eq(got + 1, want, size, "%s in pieces of %zu",
                             sim_content_impl_name(impl_at(i)), splits[s]);
            cr_assert_eq(sim_content_verify_with(impl_at(i), keys[3], 0, got + 1, size), 0);
            got[1 + size - 1] ^= 0x80; /* the last byte: the scalar rest */
            cr_assert_eq(sim_content_verify_with(impl_at(i), keys[3], 0, got + 1, size), -EFAULT);
            got[1 + 4096] ^= 0x01; /* and one deep inside the vector loop */
            got[1 + size - 1] ^= 0x80;
            cr_assert_eq(sim_content_verify_with(impl_at(i), keys[3], 0, got + 1, size), -EFAULT);
        }
    }
    free(want);
    free(got);
}

/* An implementation the CPU lacks runs the scalar one: never a crash, never other bytes. */
Test(content, every_implementation_is_callable)
{
    uint8_t want[100], got[100];

    sim_content_fill_with(SIM_CONTENT_IMPL_SCALAR, 42, 3, want, sizeof(want));
    for (int i = 0; i < _SIM_CONTENT_IMPL_MAX; i++) {
        cr_assert_str_neq(sim_content_impl_name(impl_at(i)), "unknown");
        sim_content_fill_with(impl_at(i), 42, 3, got, sizeof(got));
        cr_assert_arr_eq(got, want, sizeof(want), "%d", i);
        cr_assert_eq(sim_content_verify_with(impl_at(i), 42, 3, want, sizeof(want)), 0);
    }
    cr_assert_str_eq(sim_content_impl_name(_SIM_CONTENT_IMPL_MAX), "unknown");
    sim_content_fill(42, 3, got, sizeof(got));
    cr_assert_arr_eq(got, want, sizeof(want));
    cr_assert_eq(sim_content_verify(42, 3, want, sizeof(want)), 0);
}
