/* SPDX-License-Identifier: MIT */
/*
 * test_savefile — unit tests for daemon/core/savefile.c, the 64-byte save-file header codec.
 *
 * The oracle is independent of the code under test: the byte layout is the table in
 * savefile.h checked offset by offset, and CRC-32 is computed by a bitwise implementation
 * below (reflected polynomial 0xEDB88320, the one zlib uses), itself checked against the
 * standard check values. Tampered headers get their CRC recomputed with that oracle, so each
 * test reaches the check it means to reach.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "core/savefile.h"

/* Every test runs in its own process (criterion default) with a timeout, so a path loop
 * that never ends fails instead of hanging the suite. */
TestSuite(savefile, .timeout = 10);

/* ---- oracle */

static uint32_t
ref_crc32(uint32_t crc, const void *buf, size_t size)
{
    const uint8_t *p = buf;

    crc = ~crc;
    for (size_t i = 0; i < size; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

static uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void
put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* Re-seals a header after tampering: header CRC over bytes 0..59 at offset 60. */
static void
reseal(uint8_t *h)
{
    put_le32(h + 60, ref_crc32(0, h, 60));
}

static void
sample_header(uint8_t out[SAVEFILE_HEADER_SIZE])
{
    SaveFileHeader h = {
        .mig_flags = 0x7,
        .data_bytes = UINT64_C(0x0123456789),
        .data_crc32 = 0xCBF43926,
        .backend = "sim",
    };

    savefile_encode(&h, out);
}

static void
fill_pattern(uint8_t *p, size_t n, uint32_t seed)
{
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        p[i] = (uint8_t)(seed >> 16);
    }
}

/* ---- CRC-32 */

Test(savefile, crc_known_vectors)
{
    static const struct {
        const char *s;
        uint32_t crc;
    } cases[] = {
        {"123456789", 0xCBF43926},
        {"", 0x00000000},
        {"a", 0xE8B7BE43},
        {"abc", 0x352441C2},
        {"The quick brown fox jumps over the lazy dog", 0x414FA339},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = strlen(cases[i].s);

        cr_expect_eq(ref_crc32(0, cases[i].s, n), cases[i].crc, "oracle on '%s'", cases[i].s);
        cr_expect_eq(savefile_crc32(0, cases[i].s, n), cases[i].crc, "'%s': %#010x, want %#010x",
                     cases[i].s, savefile_crc32(0, cases[i].s, n), cases[i].crc);
    }
}

Test(savefile, crc_matches_oracle_on_every_length)
{
    uint8_t buf[1100];

    fill_pattern(buf, sizeof(buf), 42);
    for (size_t n = 0; n <= sizeof(buf); n++) {
        cr_expect_eq(savefile_crc32(0, buf, n), ref_crc32(0, buf, n), "length %zu", n);
    }
}

Test(savefile, crc_chunked_equals_one_shot)
{
    uint8_t buf[777];
    uint32_t whole;

    fill_pattern(buf, sizeof(buf), 7);
    whole = savefile_crc32(0, buf, sizeof(buf));
    /* every two-way split */
    for (size_t a = 0; a <= sizeof(buf); a++) {
        uint32_t c = savefile_crc32(0, buf, a);

        c = savefile_crc32(c, buf + a, sizeof(buf) - a);
        cr_expect_eq(c, whole, "split at %zu", a);
    }
    /* byte by byte */
    {
        uint32_t c = 0;

        for (size_t i = 0; i < sizeof(buf); i++) {
            c = savefile_crc32(c, buf + i, 1);
        }
        cr_expect_eq(c, whole, "byte by byte");
    }
    /* "123456789" in pieces */
    {
        uint32_t c = savefile_crc32(0, "1234", 4);

        c = savefile_crc32(c, "", 0);
        c = savefile_crc32(c, "56789", 5);
        cr_expect_eq(c, 0xCBF43926u);
    }
}

Test(savefile, crc_of_nothing_keeps_the_running_value)
{
    cr_expect_eq(savefile_crc32(0x12345678, "", 0), 0x12345678u);
    cr_expect_eq(savefile_crc32(0x12345678, NULL, 0), 0x12345678u);
    cr_expect_eq(savefile_crc32(0, NULL, 0), 0u);
}

Test(savefile, crc_over_more_than_1_gib, .timeout = 60)
{
    /* savefile_crc32 feeds zlib in 1 GiB slices (zlib takes a uInt length); cross the slice
     * boundary and compare with 64 MiB chunks. Untouched anonymous pages read as zeros and
     * cost no memory. */
    const size_t size = (UINT64_C(1) << 30) + 4099;
    const size_t chunk = (size_t)64 << 20;
    uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint32_t whole, pieces = 0;

    cr_assert_neq(p, MAP_FAILED);
    memcpy(p, "head", 4);
    memcpy(p + (UINT64_C(1) << 30) - 2, "seam", 4);
    memcpy(p + size - 4, "tail", 4);

    whole = savefile_crc32(0, p, size);
    for (size_t off = 0; off < size; off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;

        pieces = savefile_crc32(pieces, p + off, n);
    }
    cr_expect_eq(whole, pieces, "one-shot %#010x vs chunked %#010x", whole, pieces);
    /* and the tail the oracle can afford: the last 4099 bytes alone */
    cr_expect_eq(savefile_crc32(0, p + (UINT64_C(1) << 30), 4099),
                 ref_crc32(0, p + (UINT64_C(1) << 30), 4099));
    (void)munmap(p, size);
}

/* ---- encoding */

Test(savefile, encode_layout)
{
    SaveFileHeader h = {
        .mig_flags = 0x05,
        .data_bytes = UINT64_C(0x1122334455667788),
        .data_crc32 = 0xA1B2C3D4,
        .backend = "kernel",
    };
    /* clang-format off */
    static const uint8_t want[SAVEFILE_HEADER_SIZE - 4] = {
        'V', 'F', 'M', 'I', 'G', 'D', 'S', 'V',          /* 0  magic */
        0x01, 0x00, 0x00, 0x00,                          /* 8  version 1 */
        0x40, 0x00, 0x00, 0x00,                          /* 12 header size 64 */
        0x05, 0x00, 0x00, 0x00,                          /* 16 migration flags */
        0x00, 0x00, 0x00, 0x00,                          /* 20 reserved */
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,  /* 24 data bytes */
        0xD4, 0xC3, 0xB2, 0xA1,                          /* 32 data CRC */
        0x00, 0x00, 0x00, 0x00,                          /* 36 reserved */
        'k', 'e', 'r', 'n', 'e', 'l', 0, 0,              /* 40 back-end, NUL-padded */
        0, 0, 0, 0, 0, 0, 0, 0,
        0x00, 0x00, 0x00, 0x00,                          /* 56 reserved */
    };
    /* clang-format on */
    uint8_t out[SAVEFILE_HEADER_SIZE];

    cr_assert_eq(SAVEFILE_HEADER_SIZE, 64);
    cr_assert_eq(SAVEFILE_VERSION, 1);
    memset(out, 0xee, sizeof(out));
    savefile_encode(&h, out);
    for (size_t i = 0; i < sizeof(want); i++) {
        cr_expect_eq(out[i], want[i], "byte %zu: %#04x, want %#04x", i, out[i], want[i]);
    }
    cr_expect_eq(get_le32(out + 60), ref_crc32(0, out, 60), "header CRC");
}

Test(savefile, encode_overlong_backend_is_truncated)
{
    /* backend must be NUL-terminated; a caller that fills all 16 bytes still gets a valid
     * header with 15 characters. */
    SaveFileHeader h = {.mig_flags = 1, .data_bytes = 1};
    SaveFileHeader back;
    uint8_t out[SAVEFILE_HEADER_SIZE];

    memset(h.backend, 'x', sizeof(h.backend));
    savefile_encode(&h, out);
    cr_expect_eq(out[55], 0);
    cr_assert_eq(savefile_decode(out, &back), 0);
    cr_expect_str_eq(back.backend, "xxxxxxxxxxxxxxx");
}

Test(savefile, round_trip)
{
    static const SaveFileHeader cases[] = {
        {.mig_flags = 0x1, .data_bytes = 0, .data_crc32 = 0, .backend = "sim"},
        {.mig_flags = 0x3, .data_bytes = 1, .data_crc32 = 0xE8B7BE43, .backend = "kernel"},
        {.mig_flags = 0x5, .data_bytes = 176, .data_crc32 = 0xffffffff, .backend = ""},
        {.mig_flags = 0x7,
         .data_bytes = SAVEFILE_MAX_DATA,
         .data_crc32 = 1,
         .backend = "fifteen-chars-x"},
        {.mig_flags = 0xffffffff,
         .data_bytes = UINT64_C(4) << 30,
         .data_crc32 = 0x80000000,
         .backend = "a"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t out[SAVEFILE_HEADER_SIZE], again[SAVEFILE_HEADER_SIZE];
        SaveFileHeader back;

        memset(&back, 0x5a, sizeof(back));
        savefile_encode(&cases[i], out);
        cr_assert_eq(savefile_decode(out, &back), 0, "case %zu", i);
        cr_expect_eq(back.mig_flags, cases[i].mig_flags, "case %zu", i);
        cr_expect_eq(back.data_bytes, cases[i].data_bytes, "case %zu", i);
        cr_expect_eq(back.data_crc32, cases[i].data_crc32, "case %zu", i);
        cr_expect_str_eq(back.backend, cases[i].backend, "case %zu", i);
        /* and the decoded header encodes to the same bytes */
        savefile_encode(&back, again);
        cr_expect_arr_eq(again, out, sizeof(out), "case %zu re-encodes differently", i);
    }
}

/* ---- decoding damaged headers */

Test(savefile, every_single_bit_flip_is_rejected)
{
    uint8_t good[SAVEFILE_HEADER_SIZE];

    sample_header(good);
    for (unsigned bit = 0; bit < 8 * SAVEFILE_HEADER_SIZE; bit++) {
        uint8_t h[SAVEFILE_HEADER_SIZE];
        SaveFileHeader out;
        int want = bit < 64 ? -ENOEXEC : -EBADMSG; /* magic first, then the CRC */
        int r;

        memcpy(h, good, sizeof(h));
        h[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        memset(&out, 0x5a, sizeof(out));
        r = savefile_decode(h, &out);
        cr_expect_lt(r, 0, "bit %u (byte %u): accepted", bit, bit / 8);
        cr_expect_eq(r, want, "bit %u (byte %u): %d, want %d", bit, bit / 8, r, want);
        for (size_t k = 0; k < sizeof(out); k++) {
            if (((uint8_t *)&out)[k] != 0x5a) {
                cr_expect_fail("bit %u: *ret written on failure", bit);
                break;
            }
        }
    }
}

Test(savefile, every_double_bit_flip_after_magic_is_rejected)
{
    /* CRC-32 has Hamming distance >= 4 at this length: every 2-bit error is caught. */
    uint8_t good[SAVEFILE_HEADER_SIZE];
    unsigned failures = 0;

    sample_header(good);
    for (unsigned a = 64; a < 8 * SAVEFILE_HEADER_SIZE; a++) {
        for (unsigned b = a + 1; b < 8 * SAVEFILE_HEADER_SIZE; b++) {
            uint8_t h[SAVEFILE_HEADER_SIZE];
            SaveFileHeader out;
            int r;

            memcpy(h, good, sizeof(h));
            h[a / 8] ^= (uint8_t)(1u << (a % 8));
            h[b / 8] ^= (uint8_t)(1u << (b % 8));
            r = savefile_decode(h, &out);
            if (r != -EBADMSG && failures++ < 10) {
                cr_expect_fail("bits %u and %u: %d, want -EBADMSG", a, b, r);
            }
        }
    }
    cr_expect_eq(failures, 0u);
}

Test(savefile, wrong_magic_is_enoexec)
{
    static const char *const magics[] = {
        "VFMIGDSW",     "vfmigdsv", "VFMIGDS\0", "\0\0\0\0\0\0\0\0", "\x1f\x8b\x08\0\0\0\0\0",
        "QEVM\0\0\0\3",
    };

    for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
        uint8_t h[SAVEFILE_HEADER_SIZE];
        SaveFileHeader out;

        sample_header(h);
        memcpy(h, magics[i], 8);
        reseal(h); /* a valid CRC does not make it ours */
        cr_expect_eq(savefile_decode(h, &out), -ENOEXEC, "magic %zu", i);
    }
    {
        uint8_t zero[SAVEFILE_HEADER_SIZE] = {0};
        uint8_t ones[SAVEFILE_HEADER_SIZE];
        SaveFileHeader out;

        memset(ones, 0xff, sizeof(ones));
        cr_expect_eq(savefile_decode(zero, &out), -ENOEXEC);
        cr_expect_eq(savefile_decode(ones, &out), -ENOEXEC);
    }
}

Test(savefile, other_version_is_eprotonosupport)
{
    static const uint32_t versions[] = {0, 2, 3, 0x100, 0x01000001, 0xffffffff};

    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        uint8_t h[SAVEFILE_HEADER_SIZE];
        SaveFileHeader out;

        memset(&out, 0x5a, sizeof(out));
        sample_header(h);
        put_le32(h + 8, versions[i]);
        reseal(h);
        cr_expect_eq(savefile_decode(h, &out), -EPROTONOSUPPORT, "version %#x", versions[i]);
        cr_expect_eq(out.mig_flags, 0x5a5a5a5au, "version %#x: *ret written", versions[i]);
    }
    {
        /* version changed without resealing: damage, not another version */
        uint8_t h[SAVEFILE_HEADER_SIZE];
        SaveFileHeader out;

        sample_header(h);
        put_le32(h + 8, 2);
        cr_expect_eq(savefile_decode(h, &out), -EBADMSG);
    }
}

Test(savefile, data_bytes_limit)
{
    static const struct {
        uint64_t bytes;
        int r;
    } cases[] = {
        {0, 0},
        {SAVEFILE_MAX_DATA - 1, 0},
        {SAVEFILE_MAX_DATA, 0},
        {SAVEFILE_MAX_DATA + 1, -EBADMSG},
        {UINT64_C(1) << 63, -EBADMSG},
        {UINT64_MAX, -EBADMSG},
    };

    cr_assert_eq(SAVEFILE_MAX_DATA, UINT64_C(64) << 30);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t h[SAVEFILE_HEADER_SIZE];
        SaveFileHeader out;
        int r;

        sample_header(h);
        put_le64(h + 24, cases[i].bytes);
        reseal(h);
        r = savefile_decode(h, &out);
        cr_expect_eq(r, cases[i].r, "data_bytes %llu: %d", (unsigned long long)cases[i].bytes, r);
        if (r == 0) {
            cr_expect_eq(out.data_bytes, cases[i].bytes);
        }
    }
}

Test(savefile, bad_header_size_is_ebadmsg)
{
    static const uint32_t sizes[] = {0, 63, 65, 128, 0x40000000};

    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t h[SAVEFILE_HEADER_SIZE];
        SaveFileHeader out;

        sample_header(h);
        put_le32(h + 12, sizes[i]);
        reseal(h);
        cr_expect_eq(savefile_decode(h, &out), -EBADMSG, "header size %u", sizes[i]);
    }
}

Test(savefile, nonzero_reserved_is_ebadmsg)
{
    /* each byte of the three reserved words, and the terminating byte of the back-end name */
    static const unsigned offsets[] = {20, 21, 22, 23, 36, 37, 38, 39, 55, 56, 57, 58, 59};

    for (size_t i = 0; i < sizeof(offsets) / sizeof(offsets[0]); i++) {
        uint8_t h[SAVEFILE_HEADER_SIZE];
        SaveFileHeader out;

        sample_header(h);
        h[offsets[i]] = 0x01;
        reseal(h);
        cr_expect_eq(savefile_decode(h, &out), -EBADMSG, "byte %u", offsets[i]);
    }
}

Test(savefile, resealed_changes_to_payload_fields_decode)
{
    /* The CRC guards against damage, not edits: a resealed header with other field values is
     * a valid header carrying those values. */
    uint8_t h[SAVEFILE_HEADER_SIZE];
    SaveFileHeader out;

    sample_header(h);
    put_le32(h + 16, 0x3);
    put_le32(h + 32, 0xdeadbeef);
    memcpy(h + 40, "fifteen-chars-x", 15);
    reseal(h);
    cr_assert_eq(savefile_decode(h, &out), 0);
    cr_expect_eq(out.mig_flags, 0x3u);
    cr_expect_eq(out.data_crc32, 0xdeadbeefu);
    cr_expect_str_eq(out.backend, "fifteen-chars-x");
}

/* ---- messages */

Test(savefile, strerror_messages)
{
    static const int codes[] = {-ENOEXEC, -EBADMSG, -EPROTONOSUPPORT, -EIO, -ENOENT, 0, 1};

    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        const char *s = savefile_strerror(codes[i]);

        cr_expect_not_null(s, "code %d", codes[i]);
        if (s) {
            cr_expect_gt(strlen(s), 0u, "code %d", codes[i]);
        }
    }
    /* the three decode errors say different things */
    cr_expect_str_neq(savefile_strerror(-ENOEXEC), savefile_strerror(-EBADMSG));
    cr_expect_str_neq(savefile_strerror(-ENOEXEC), savefile_strerror(-EPROTONOSUPPORT));
    cr_expect_str_neq(savefile_strerror(-EBADMSG), savefile_strerror(-EPROTONOSUPPORT));
}
