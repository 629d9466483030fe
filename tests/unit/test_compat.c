/* SPDX-License-Identifier: MIT */
/*
 * test_compat — core/compat: descriptors (building, the encoding of docs/stream-format.md
 * byte for byte, every malformed input refused), and the comparison of a source's devices
 * with the destination's: every field equal and unequal, each rule, the destination's rule
 * deciding, several mismatches at once, pairing by name and of a single device, missing and
 * extra devices, and the bounds on counts and lengths.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/compat.h"
#include "core/irq.h"
#include "core/stream.h"
#include "util/macro.h"

TestSuite(compat, .timeout = 60);

/* ---- helpers ---- */

static CompatDescriptor
desc2(const char *n1, CompatRule r1, const char *v1, const char *n2, CompatRule r2,
      const char *v2)
{
    CompatDescriptor d = {0};

    if (n1) {
        cr_assert_eq(compat_descriptor_add(&d, n1, r1, v1), 0);
    }
    if (n2) {
        cr_assert_eq(compat_descriptor_add(&d, n2, r2, v2), 0);
    }
    return d;
}

static CompatDevice
dev(const char *name, uint32_t flags, const char *backend, const CompatDescriptor *d)
{
    return (CompatDevice){name, flags, backend, d};
}

/* Compares one source device with one destination device (pairing by name). */
static int
compare1(const CompatDevice *s, const CompatDevice *d, CompatReport *rep)
{
    size_t pairs[1];
    return compat_compare(s, 1, d, 1, COMPAT_PAIR_BY_NAME, pairs, rep);
}

/* Compares by name, expecting a refusal that lists @n mismatches in @rep. */
static void
expect_mismatches(const CompatDevice *src, size_t n_src, const CompatDevice *dst, size_t n_dst,
               CompatReport *rep, size_t n)
{
    size_t pairs[COMPAT_MAX_DEVICES];

    cr_assert_eq(compat_compare(src, n_src, dst, n_dst, COMPAT_PAIR_BY_NAME, pairs, rep),
                 -EMEDIUMTYPE);
    cr_assert_eq(rep->n, n);
}

static void
expect_mismatch(const CompatMismatch *m, const char *device, const char *field,
                const char *source, const char *destination)
{
    cr_expect_str_eq(m->device, device);
    cr_expect_str_eq(m->field, field);
    cr_expect_str_eq(m->source, source);
    cr_expect_str_eq(m->destination, destination);
}

/* ---- descriptors ---- */

Test(compat, rule_names)
{
    cr_expect_str_eq(compat_rule_name(COMPAT_RULE_EQUAL), "equal");
    cr_expect_str_eq(compat_rule_name(COMPAT_RULE_AT_LEAST), "at_least");
    cr_expect_str_eq(compat_rule_name(COMPAT_RULE_INFO), "info");
    cr_expect_null(compat_rule_name(_COMPAT_RULE_MAX));
    cr_expect_null(compat_rule_name(_COMPAT_RULE_INVALID));
}

Test(compat, add_checks_names)
{
    static const char *const bad[] = {"", "Size", "1size", "_x", "a b", "a/b", "a=b", "é"};
    CompatDescriptor d = {0};
    char name[COMPAT_MAX_NAME + 2];

    cr_expect_eq(compat_descriptor_add(&d, "fw.version-2_x", COMPAT_RULE_EQUAL, "1"), 0);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(compat_descriptor_add(&d, bad[i], COMPAT_RULE_EQUAL, "1"), -EINVAL, "%s",
                     bad[i]);
    }
    memset(name, 'a', COMPAT_MAX_NAME);
    name[COMPAT_MAX_NAME] = '\0';
    cr_expect_eq(compat_descriptor_add(&d, name, COMPAT_RULE_EQUAL, "1"), 0, "32 bytes");
    name[COMPAT_MAX_NAME] = 'a';
    name[COMPAT_MAX_NAME + 1] = '\0';
    cr_expect_eq(compat_descriptor_add(&d, name, COMPAT_RULE_EQUAL, "1"), -E2BIG, "33 bytes");
    cr_expect_eq(d.n_fields, 2u, "only the good names were added");
}

Test(compat, add_checks_values_rules_duplicates_and_room)
{
    CompatDescriptor d = {0};
    char value[COMPAT_MAX_VALUE + 2];

    memset(value, 'v', COMPAT_MAX_VALUE);
    value[COMPAT_MAX_VALUE] = '\0';
    cr_expect_eq(compat_descriptor_add(&d, "long", COMPAT_RULE_INFO, value), 0, "128 bytes");
    value[COMPAT_MAX_VALUE] = 'v';
    value[COMPAT_MAX_VALUE + 1] = '\0';
    cr_expect_eq(compat_descriptor_add(&d, "longer", COMPAT_RULE_INFO, value), -E2BIG);
    cr_expect_eq(compat_descriptor_add(&d, "empty", COMPAT_RULE_EQUAL, ""), 0);
    cr_expect_eq(compat_descriptor_add(&d, "utf8", COMPAT_RULE_EQUAL, "Kunpeng 920 ✓"), 0);
    cr_expect_eq(compat_descriptor_add(&d, "tab", COMPAT_RULE_EQUAL, "a\tb"), -EINVAL);
    cr_expect_eq(compat_descriptor_add(&d, "del", COMPAT_RULE_EQUAL, "a\x7f"), -EINVAL);
    cr_expect_eq(compat_descriptor_add(&d, "rule", (CompatRule) 3, "1"), -EINVAL);
    cr_expect_eq(compat_descriptor_add(&d, "rule", _COMPAT_RULE_INVALID, "1"), -EINVAL);
    cr_expect_eq(compat_descriptor_add(&d, "empty", COMPAT_RULE_INFO, "again"), -EEXIST);
    cr_expect_eq(d.n_fields, 3u);
    cr_expect_str_eq(compat_descriptor_find(&d, "empty")->value, "");
    cr_expect_null(compat_descriptor_find(&d, "tab"));
    cr_expect_null(compat_descriptor_find(NULL, "empty"));
    for (unsigned i = d.n_fields; i < COMPAT_MAX_FIELDS; i++) {
        char name[16];
        (void) snprintf(name, sizeof(name), "f%u", i);
        cr_assert_eq(compat_descriptor_add(&d, name, COMPAT_RULE_EQUAL, "x"), 0);
    }
    cr_expect_eq(compat_descriptor_add(&d, "one-more", COMPAT_RULE_EQUAL, "x"), -E2BIG);
    cr_expect_eq(d.n_fields, (unsigned) COMPAT_MAX_FIELDS);
}

Test(compat, encoding_layout)
{
    CompatDescriptor d = desc2("size", COMPAT_RULE_EQUAL, "4096", "fw", COMPAT_RULE_AT_LEAST,
                               "1.2");
    static const uint8_t want[] = {
        1, 2,                                   /* encoding version, fields */
        0, 4, 's', 'i', 'z', 'e', 4, '4', '0', '9', '6',
        1, 2, 'f', 'w', 3, '1', '.', '2',
    };
    uint8_t out[64];

    cr_assert_eq(compat_descriptor_size(&d), sizeof(want));
    cr_assert_eq(compat_descriptor_encode(&d, out, sizeof(out)), (int) sizeof(want));
    cr_expect_arr_eq(out, want, sizeof(want));
    cr_expect_eq(compat_descriptor_encode(&d, out, sizeof(want) - 1), -ENOBUFS);
}

Test(compat, empty_descriptor_is_zero_bytes)
{
    CompatDescriptor d = {0}, back = desc2("x", COMPAT_RULE_EQUAL, "1", NULL, 0, NULL);
    uint8_t out[4] = {0xAA};

    cr_expect_eq(compat_descriptor_size(&d), 0u);
    cr_expect_eq(compat_descriptor_size(NULL), 0u);
    cr_expect_eq(compat_descriptor_encode(&d, out, 0), 0);
    cr_expect_eq(out[0], 0xAA, "nothing written");
    cr_expect_eq(compat_descriptor_decode(out, 0, &back, NULL, 0), 0);
    cr_expect_eq(back.n_fields, 0u);
}

Test(compat, largest_descriptor_fits_the_manifest_and_round_trips)
{
    CompatDescriptor d = {0}, back;
    char name[COMPAT_MAX_NAME + 1], value[COMPAT_MAX_VALUE + 1];
    uint8_t out[STREAM_MAX_COMPAT];

    memset(value, '9', COMPAT_MAX_VALUE);
    value[COMPAT_MAX_VALUE] = '\0';
    for (unsigned i = 0; i < COMPAT_MAX_FIELDS; i++) {
        memset(name, 'a' + (char) i, COMPAT_MAX_NAME);
        name[COMPAT_MAX_NAME] = '\0';
        cr_assert_eq(compat_descriptor_add(&d, name, (CompatRule) (i % 3), value), 0);
    }
    cr_expect_eq(compat_descriptor_size(&d), (size_t) COMPAT_DESCRIPTOR_MAX_SIZE);
    cr_expect_leq(COMPAT_DESCRIPTOR_MAX_SIZE, STREAM_MAX_COMPAT);
    cr_assert_eq(compat_descriptor_encode(&d, out, sizeof(out)), COMPAT_DESCRIPTOR_MAX_SIZE);
    cr_assert_eq(compat_descriptor_decode(out, COMPAT_DESCRIPTOR_MAX_SIZE, &back, NULL, 0), 0);
    cr_expect_eq(memcmp(&back, &d, sizeof(d)), 0);
}

/* A valid encoding to damage. */
static size_t
sample(uint8_t *out, size_t size)
{
    CompatDescriptor d = desc2("model", COMPAT_RULE_EQUAL, "generic", "size", COMPAT_RULE_EQUAL,
                               "262144");
    int n = compat_descriptor_encode(&d, out, size);

    cr_assert_gt(n, 0);
    return (size_t) n;
}

static void
expect_refused(const uint8_t *in, size_t size, int r, const char *needle)
{
    CompatDescriptor d = desc2("keep", COMPAT_RULE_INFO, "me", NULL, 0, NULL);
    char why[256] = "";

    cr_expect_eq(compat_descriptor_decode(in, size, &d, why, sizeof(why)), r, "%s", needle);
    cr_expect(strstr(why, needle), "'%s' in '%s'", needle, why);
    cr_expect_eq(d.n_fields, 1u, "*ret untouched on failure");
}

/* One damaged byte of sample(): which, its new value, how much of the buffer to decode (0: all
 * of it), and the refusal expected. */
typedef struct {
    size_t at;
    uint8_t byte;
    size_t size;
    int r;
    const char *needle;
} Damage;

/* Each case damages a fresh sample, so no case depends on the one before. */
static void
expect_damage_refused(const Damage *cases, size_t n_cases)
{
    for (size_t i = 0; i < n_cases; i++) {
        uint8_t b[64];
        size_t n = sample(b, sizeof(b));

        b[cases[i].at] = cases[i].byte;
        expect_refused(b, cases[i].size ? cases[i].size : n, cases[i].r, cases[i].needle);
    }
}

Test(compat, decode_refuses_every_malformed_header)
{
    static const Damage cases[] = {
        {0, 2, 0, -EPROTONOSUPPORT, "encoding version 2"},
        {0, 1, 1, -EBADMSG, "no field count"},
        {1, 0, 0, -EBADMSG, "a count of 0"},
        {1, COMPAT_MAX_FIELDS + 1, 0, -E2BIG, "25 fields"},
        {1, 3, 0, -EBADMSG, "field 2 runs past the end"},
        {1, 1, 0, -EBADMSG, "bytes after the last field"},
    };

    expect_damage_refused(cases, ELEMENTSOF(cases));
}

Test(compat, decode_refuses_every_truncation)
{
    uint8_t b[64];
    size_t n = sample(b, sizeof(b));
    CompatDescriptor d;

    for (size_t len = 1; len < n; len++) {
        cr_expect_lt(compat_descriptor_decode(b, len, &d, NULL, 0), 0, "a prefix of %zu bytes",
                     len);
    }
    cr_expect_eq(compat_descriptor_decode(b, n, &d, NULL, 0), 0);
    cr_expect_str_eq(d.fields[1].value, "262144");
}

Test(compat, decode_refuses_bad_fields)
{
    /* layout: 1 2 | rule 0, 5 "model", 7 "generic" | rule 0, 4 "size", 6 "262144" */
    static const Damage cases[] = {
        {2, 3, 0, -EBADMSG, "unknown rule 3"},
        {4, 'M', 0, -EBADMSG, "a malformed name"},
        {10, 0x01, 0, -EBADMSG, "a control character"},
        {10, '\0', 0, -EBADMSG, "a NUL byte"},
    };

    expect_damage_refused(cases, ELEMENTSOF(cases));
    {
        uint8_t dup[64] = {1, 2, 0, 1, 'x', 1, '1', 0, 1, 'x', 1, '2'};
        expect_refused(dup, 12, -EBADMSG, "field 'x' appears twice");
    }
    {
        uint8_t big[64] = {1, 1, 0, 40};
        memset(big + 4, 'a', 40);
        big[44] = 0;
        expect_refused(big, 45, -E2BIG, "a name over 32");
    }
}

Test(compat, decode_survives_every_byte_flip)
{
    uint8_t b[64], c[64];
    size_t n = sample(b, sizeof(b));
    CompatDescriptor d;

    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            int r;
            memcpy(c, b, n);
            c[i] ^= (uint8_t) (1u << bit);
            r = compat_descriptor_decode(c, n, &d, NULL, 0);
            cr_expect(r == 0 || r == -EBADMSG || r == -E2BIG || r == -EPROTONOSUPPORT,
                      "byte %zu bit %d: %d", i, bit, r);
        }
    }
}

/* ---- comparison: one pair ---- */

Test(compat, identical_devices_are_compatible)
{
    CompatDescriptor d = desc2("model", COMPAT_RULE_EQUAL, "generic", "size", COMPAT_RULE_EQUAL,
                               "4096");
    CompatDevice s = dev("nic0", 7, "sim", &d), t = dev("nic0", 7, "sim", &d);
    CompatReport rep;

    cr_expect_eq(compare1(&s, &t, &rep), 0);
    cr_expect_eq(rep.n, 0u);
    cr_expect_eq(rep.total, 0u);
}

Test(compat, flags_differ)
{
    CompatDevice s = dev("nic0", 7, "sim", NULL), t = dev("nic0", 3, "sim", NULL);
    CompatReport rep;

    cr_assert_eq(compare1(&s, &t, &rep), -EMEDIUMTYPE);
    cr_assert_eq(rep.n, 1u);
    expect_mismatch(&rep.items[0], "nic0", "migration_flags", "stop_copy+p2p+pre_copy",
                    "stop_copy+p2p");
}

Test(compat, backend_differs)
{
    CompatDevice s = dev("nic0", 7, "kernel", NULL), t = dev("nic0", 7, "sim", NULL);
    CompatReport rep;

    cr_assert_eq(compare1(&s, &t, &rep), -EMEDIUMTYPE);
    cr_assert_eq(rep.n, 1u);
    expect_mismatch(&rep.items[0], "nic0", "backend", "kernel", "sim");
}

/* A field with rule @rule on both sides: source @sv, destination @dv. */
static int
field_case(CompatRule rule, const char *sv, const char *dv, CompatReport *rep)
{
    CompatDescriptor a = desc2("f", rule, sv, NULL, 0, NULL), b = desc2("f", rule, dv, NULL, 0, NULL);
    CompatDevice s = dev("d", 1, "x", &a), t = dev("d", 1, "x", &b);

    return compare1(&s, &t, rep);
}

Test(compat, rule_equal)
{
    CompatReport rep;

    cr_expect_eq(field_case(COMPAT_RULE_EQUAL, "4096", "4096", &rep), 0);
    cr_expect_eq(field_case(COMPAT_RULE_EQUAL, "", "", &rep), 0);
    cr_assert_eq(field_case(COMPAT_RULE_EQUAL, "4096", "8192", &rep), -EMEDIUMTYPE);
    expect_mismatch(&rep.items[0], "d", "f", "4096", "8192");
    cr_expect_eq(field_case(COMPAT_RULE_EQUAL, "1.0", "1", &rep), -EMEDIUMTYPE,
                 "equal compares the strings, not the numbers");
}

Test(compat, rule_at_least)
{
    static const struct {
        const char *src, *dst;
        int want;
    } cases[] = {
        {"5", "5", 0},           {"5", "6", 0},           {"6", "5", -EMEDIUMTYPE},
        {"22.35.9", "22.36.1010", 0},                     {"22.36.1010", "22.35.9", -EMEDIUMTYPE},
        {"1.2", "1.2.0", 0},     {"1.2.1", "1.2", -EMEDIUMTYPE},
        {"10", "9.99", -EMEDIUMTYPE},                     {"0.10", "0.9", -EMEDIUMTYPE},
        {"18446744073709551615", "18446744073709551615", 0},
        {"18446744073709551616", "18446744073709551617", -EMEDIUMTYPE}, /* over 2^64: text */
        {"abc", "abc", 0},       {"abc", "abd", -EMEDIUMTYPE},          {"1.x", "2", -EMEDIUMTYPE},
        {"1.", "2", -EMEDIUMTYPE}, {"", "1", -EMEDIUMTYPE},           {"1..2", "1.3", -EMEDIUMTYPE},
    };
    CompatReport rep;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cr_expect_eq(field_case(COMPAT_RULE_AT_LEAST, cases[i].src, cases[i].dst, &rep),
                     cases[i].want, "source '%s', destination '%s'", cases[i].src, cases[i].dst);
    }
}

Test(compat, rule_info_is_never_compared)
{
    CompatReport rep;

    cr_expect_eq(field_case(COMPAT_RULE_INFO, "a", "b", &rep), 0);
}

Test(compat, the_destinations_rule_decides)
{
    CompatDescriptor a = desc2("f", COMPAT_RULE_INFO, "1", NULL, 0, NULL);
    CompatDescriptor b = desc2("f", COMPAT_RULE_EQUAL, "2", NULL, 0, NULL);
    CompatDevice s = dev("d", 1, "x", &a), t = dev("d", 1, "x", &b);
    CompatReport rep;

    cr_expect_eq(compare1(&s, &t, &rep), -EMEDIUMTYPE, "source info, destination equal");
    s.descriptor = &b;
    t.descriptor = &a;
    cr_expect_eq(compare1(&s, &t, &rep), 0, "source equal, destination info");
}

Test(compat, a_field_only_one_side_has)
{
    CompatDescriptor eq = desc2("psid", COMPAT_RULE_EQUAL, "MT_1", NULL, 0, NULL);
    CompatDescriptor info = desc2("psid", COMPAT_RULE_INFO, "MT_1", NULL, 0, NULL);
    CompatDescriptor none = {0};
    CompatDevice s = dev("d", 1, "x", &none), t = dev("d", 1, "x", &eq);
    CompatReport rep;

    cr_assert_eq(compare1(&s, &t, &rep), -EMEDIUMTYPE, "destination needs it");
    expect_mismatch(&rep.items[0], "d", "psid", COMPAT_ABSENT, "MT_1");
    t.descriptor = &info;
    cr_expect_eq(compare1(&s, &t, &rep), 0, "destination only shows it");
    s.descriptor = &eq;
    t.descriptor = NULL;
    cr_assert_eq(compare1(&s, &t, &rep), -EMEDIUMTYPE, "source says it must match");
    expect_mismatch(&rep.items[0], "d", "psid", "MT_1", COMPAT_ABSENT);
    s.descriptor = &info;
    cr_expect_eq(compare1(&s, &t, &rep), 0, "source only shows it");
}

Test(compat, every_mismatch_of_a_pair_at_once)
{
    CompatDescriptor a = desc2("model", COMPAT_RULE_EQUAL, "generic", "size", COMPAT_RULE_EQUAL,
                               "4096");
    CompatDescriptor b = desc2("size", COMPAT_RULE_EQUAL, "8192", "model", COMPAT_RULE_EQUAL,
                               "mlx5");
    CompatDevice s = dev("nic0", 7, "sim", &a), t = dev("nic0", 3, "kernel", &b);
    CompatReport rep;

    cr_assert_eq(compare1(&s, &t, &rep), -EMEDIUMTYPE);
    cr_assert_eq(rep.n, 4u);
    cr_expect_eq(rep.total, 4u);
    expect_mismatch(&rep.items[0], "nic0", "migration_flags", "stop_copy+p2p+pre_copy",
                    "stop_copy+p2p");
    expect_mismatch(&rep.items[1], "nic0", "backend", "sim", "kernel");
    expect_mismatch(&rep.items[2], "nic0", "size", "4096", "8192");
    expect_mismatch(&rep.items[3], "nic0", "model", "generic", "mlx5");
}

/* ---- comparison: pairing ---- */

Test(compat, pairs_by_name_in_any_order)
{
    CompatDevice src[3] = {dev("a", 1, "x", NULL), dev("b", 1, "x", NULL), dev("c", 1, "x", NULL)};
    CompatDevice dst[3] = {dev("c", 1, "x", NULL), dev("a", 1, "x", NULL), dev("b", 1, "x", NULL)};
    size_t pairs[3] = {99, 99, 99};
    CompatReport rep;

    cr_assert_eq(compat_compare(src, 3, dst, 3, COMPAT_PAIR_BY_NAME, pairs, &rep), 0);
    cr_expect_eq(pairs[0], 1u);
    cr_expect_eq(pairs[1], 2u);
    cr_expect_eq(pairs[2], 0u);
}

Test(compat, mismatches_of_several_devices_each_named)
{
    CompatDevice src[2] = {dev("a", 7, "x", NULL), dev("b", 7, "x", NULL)};
    CompatDevice dst[2] = {dev("b", 3, "x", NULL), dev("a", 1, "x", NULL)};
    CompatReport rep;

    expect_mismatches(src, 2, dst, 2, &rep, 2);
    expect_mismatch(&rep.items[0], "a", "migration_flags", "stop_copy+p2p+pre_copy", "stop_copy");
    expect_mismatch(&rep.items[1], "b", "migration_flags", "stop_copy+p2p+pre_copy",
                    "stop_copy+p2p");
}

Test(compat, missing_and_extra_devices)
{
    CompatDevice src[2] = {dev("a", 1, "x", NULL), dev("gone", 1, "x", NULL)};
    CompatDevice dst[3] = {dev("a", 2, "x", NULL), dev("new1", 1, "x", NULL),
                           dev("new2", 1, "x", NULL)};
    CompatReport rep;

    expect_mismatches(src, 2, dst, 3, &rep, 5);
    expect_mismatch(&rep.items[0], "", "devices", "2", "3");
    expect_mismatch(&rep.items[1], "gone", "device", "present", COMPAT_ABSENT);
    expect_mismatch(&rep.items[2], "new1", "device", COMPAT_ABSENT, "present");
    expect_mismatch(&rep.items[3], "new2", "device", COMPAT_ABSENT, "present");
    expect_mismatch(&rep.items[4], "a", "migration_flags", "stop_copy", "p2p");
}

/* Flags are named in words, as the CLI and the sim options spell them; none, and bits the
 * kernel does not define, still say what they are. */
Test(compat, flags_in_words)
{
    CompatDevice src[1] = {dev("a", 0, "x", NULL)}, dst[1] = {dev("a", 0x11, "x", NULL)};
    CompatReport rep;

    expect_mismatches(src, 1, dst, 1, &rep, 1);
    expect_mismatch(&rep.items[0], "a", "migration_flags", "none", "stop_copy+0x10");
}

Test(compat, same_count_other_names)
{
    CompatDevice src[1] = {dev("tty0", 1, "x", NULL)}, dst[1] = {dev("ttyX", 1, "x", NULL)};
    CompatReport rep;

    expect_mismatches(src, 1, dst, 1, &rep, 2);
    expect_mismatch(&rep.items[0], "tty0", "device", "present", COMPAT_ABSENT);
    expect_mismatch(&rep.items[1], "ttyX", "device", COMPAT_ABSENT, "present");
}

Test(compat, single_pairing_ignores_names)
{
    CompatDescriptor a = desc2("size", COMPAT_RULE_EQUAL, "1", NULL, 0, NULL);
    CompatDescriptor b = desc2("size", COMPAT_RULE_EQUAL, "2", NULL, 0, NULL);
    CompatDevice src[2] = {dev("A", 1, "x", &a), dev("A2", 1, "x", &a)}, dst[1] = {dev("B", 1, "x", &a)};
    size_t pairs[2] = {99, 99};
    CompatReport rep;

    cr_assert_eq(compat_compare(src, 1, dst, 1, COMPAT_PAIR_SINGLE, pairs, &rep), 0);
    cr_expect_eq(pairs[0], 0u);
    dst[0].descriptor = &b;
    cr_assert_eq(compat_compare(src, 1, dst, 1, COMPAT_PAIR_SINGLE, pairs, &rep), -EMEDIUMTYPE);
    expect_mismatch(&rep.items[0], "B", "size", "1", "2");
    cr_assert_eq(compat_compare(src, 2, dst, 1, COMPAT_PAIR_SINGLE, pairs, &rep), -EMEDIUMTYPE);
    cr_assert_eq(rep.n, 1u, "two devices into one: the count, nothing paired");
    expect_mismatch(&rep.items[0], "", "devices", "2", "1");
}

Test(compat, bounds_and_bad_arguments)
{
    static CompatDevice many[COMPAT_MAX_DEVICES + 1];
    static char names[COMPAT_MAX_DEVICES + 1][8];
    static size_t pairs[COMPAT_MAX_DEVICES + 1];
    CompatDevice one[2] = {dev("a", 1, "x", NULL), dev("a", 1, "x", NULL)};
    CompatReport rep;

    for (size_t i = 0; i <= COMPAT_MAX_DEVICES; i++) {
        (void) snprintf(names[i], sizeof(names[i]), "d%zu", i);
        many[i] = dev(names[i], 1, "x", NULL);
    }
    cr_expect_eq(compat_compare(many, COMPAT_MAX_DEVICES, many, COMPAT_MAX_DEVICES,
                                COMPAT_PAIR_BY_NAME, pairs, &rep), 0, "256 devices");
    cr_expect_eq(pairs[255], 255u);
    cr_expect_eq(compat_compare(many, COMPAT_MAX_DEVICES + 1, many, 1, COMPAT_PAIR_BY_NAME, pairs,
                                &rep), -E2BIG);
    cr_expect_eq(compat_compare(many, 1, many, COMPAT_MAX_DEVICES + 1, COMPAT_PAIR_BY_NAME, pairs,
                                &rep), -E2BIG);
    cr_expect_eq(compat_compare(one, 2, many, 1, COMPAT_PAIR_BY_NAME, pairs, &rep), -EINVAL,
                 "a name twice");
    one[1].name = "";
    cr_expect_eq(compat_compare(one, 2, many, 1, COMPAT_PAIR_BY_NAME, pairs, &rep), -EINVAL);
    one[1].name = NULL;
    cr_expect_eq(compat_compare(many, 1, one, 2, COMPAT_PAIR_BY_NAME, pairs, &rep), -EINVAL);
    cr_expect_eq(compat_compare(many, 1, many, 1, _COMPAT_PAIRING_MAX, pairs, &rep), -EINVAL);
}

Test(compat, a_full_report_counts_the_rest)
{
    CompatDescriptor a = {0}, b = {0};
    CompatDevice s = dev("d", 1, "x", &a), t = dev("d", 2, "y", &b);
    CompatReport rep;
    char buf[8192];

    for (unsigned i = 0; i < COMPAT_MAX_FIELDS; i++) {
        char name[16];
        (void) snprintf(name, sizeof(name), "f%u", i);
        cr_assert_eq(compat_descriptor_add(&a, name, COMPAT_RULE_EQUAL, "1"), 0);
        cr_assert_eq(compat_descriptor_add(&b, name, COMPAT_RULE_EQUAL, "2"), 0);
    }
    /* 24 fields, plus the flags and the back-end: 26, and another device's 26. */
    {
        CompatDevice src[2] = {s, dev("e", 1, "x", &a)}, dst[2] = {t, dev("e", 2, "y", &b)};
        size_t pairs[2];
        cr_assert_eq(compat_compare(src, 2, dst, 2, COMPAT_PAIR_BY_NAME, pairs, &rep),
                     -EMEDIUMTYPE);
    }
    cr_expect_eq(rep.n, (unsigned) COMPAT_MAX_MISMATCHES);
    cr_expect_eq(rep.total, 52u);
    compat_report_format(&rep, "group 'g'", buf, sizeof(buf));
    cr_expect(strstr(buf, "; and 20 more"), "%s", buf);
}

/* ---- the sentence ---- */

Test(compat, report_sentences)
{
    CompatDevice src[2] = {dev("a", 7, "sim", NULL), dev("tty0", 1, "x", NULL)};
    CompatDevice dst[2] = {dev("a", 3, "sim", NULL), dev("ttyX", 1, "x", NULL)};
    CompatDescriptor d4 = desc2("size", COMPAT_RULE_EQUAL, "4194304", NULL, 0, NULL);
    CompatDescriptor d2 = desc2("size", COMPAT_RULE_EQUAL, "2097152", NULL, 0, NULL);
    size_t pairs[2];
    CompatReport rep;
    char buf[1024];

    (void) compat_compare(src, 2, dst, 1, COMPAT_PAIR_BY_NAME, pairs, &rep);
    compat_report_format(&rep, "group 'odd'", buf, sizeof(buf));
    cr_expect_str_eq(buf, "the source has 2 devices, group 'odd' here has 1; the source's "
                          "device 'tty0' has no device of that name in group 'odd' here; device "
                          "'a': migration_flags: source 'stop_copy+p2p+pre_copy', destination "
                          "'stop_copy+p2p'");
    (void) compat_compare(src + 1, 1, dst + 1, 1, COMPAT_PAIR_BY_NAME, pairs, &rep);
    compat_report_format(&rep, "group 'odd'", buf, sizeof(buf));
    cr_expect_str_eq(buf, "the source's device 'tty0' has no device of that name in group 'odd' "
                          "here; device 'ttyX' of group 'odd' here has no device of that name in "
                          "the source");
    src[0].descriptor = &d4;
    dst[0].descriptor = &d2;
    dst[0].mig_flags = 7;
    (void) compat_compare(src, 1, dst, 1, COMPAT_PAIR_BY_NAME, pairs, &rep);
    compat_report_format(&rep, "group 'sz'", buf, sizeof(buf));
    cr_expect_str_eq(buf, "device 'a': size: source '4194304', destination '2097152'");
}

Test(compat, report_format_is_bounded)
{
    CompatDevice src[2] = {dev("a", 7, "sim", NULL), dev("b", 7, "sim", NULL)};
    CompatDevice dst[2] = {dev("a", 3, "sim", NULL), dev("b", 3, "sim", NULL)};
    size_t pairs[2];
    CompatReport rep;
    char buf[24];

    (void) compat_compare(src, 2, dst, 2, COMPAT_PAIR_BY_NAME, pairs, &rep);
    memset(buf, 'Z', sizeof(buf));
    compat_report_format(&rep, "group 'g'", buf, sizeof(buf));
    cr_expect_eq(strlen(buf), sizeof(buf) - 1);
    cr_expect_eq(strncmp(buf, "device 'a': migration_f", sizeof(buf) - 1), 0, "%s", buf);
    compat_report_format(&rep, "group 'g'", buf, 1);
    cr_expect_str_eq(buf, "");
    compat_report_format(&rep, "group 'g'", buf, 0); /* writes nothing, no crash */
}

/* ---- interrupts (core/irq.h): the destination must hold the vectors the source uses ---- */

/* A device with @msix MSI-X vectors (and MSI 1, INTx 1), @used of them enabled (0: none). */
static void
irq_dev(IrqModel *m, uint32_t msix, uint32_t used)
{
    IrqIndexInfo info[_IRQ_TYPE_MAX] = {
        [IRQ_TYPE_INTX] = {IRQ_INFO_EVENTFD | IRQ_INFO_MASKABLE | IRQ_INFO_AUTOMASKED, 1},
        [IRQ_TYPE_MSI] = {IRQ_INFO_EVENTFD | IRQ_INFO_NORESIZE, 1},
        [IRQ_TYPE_MSIX] = {IRQ_INFO_EVENTFD | IRQ_INFO_NORESIZE, msix},
    };
    IrqPlan plan;

    cr_assert_eq(irq_model_init(m, info), 0);
    if (used > 0) {
        cr_assert_eq(irq_model_enable(m, IRQ_TYPE_MSIX, used, &plan), 0);
    }
}

/* The source's descriptor for @src, the destination's for @dst given it, and the verdict. */
static int
irq_compare(const IrqModel *src, const IrqModel *dst, CompatReport *rep)
{
    static CompatDescriptor s, d;
    CompatDevice a = dev("nic", 1, "sim", &s), b = dev("nic", 1, "sim", &d);

    memset(&s, 0, sizeof(s));
    memset(&d, 0, sizeof(d));
    cr_assert_eq(compat_descriptor_add(&s, "model", COMPAT_RULE_EQUAL, "x"), 0);
    cr_assert_eq(compat_descriptor_add(&d, "model", COMPAT_RULE_EQUAL, "x"), 0);
    cr_assert_eq(irq_compat_describe(src, &s), 0);
    cr_assert_eq(irq_compat_capacity(dst, &s, &d), 0);
    return compare1(&a, &b, rep);
}

Test(compat, irq_source_describes_what_it_uses)
{
    static IrqModel m;
    CompatDescriptor d = {0};
    const CompatField *f;

    irq_dev(&m, 8, 0);
    cr_assert_eq(irq_compat_describe(&m, &d), 0);
    cr_assert_eq(d.n_fields, 0, "no index enabled: nothing asked of the destination");
    irq_dev(&m, 64, 8);
    cr_assert_eq(irq_compat_describe(&m, &d), 0);
    f = compat_descriptor_find(&d, "irq.msix.count");
    cr_assert_not_null(f);
    cr_assert_str_eq(f->value, "8", "the vectors used, not the device's 64");
    cr_assert_eq(f->rule, COMPAT_RULE_AT_LEAST);
    cr_assert_eq(irq_compat_describe(&m, &d), -EEXIST, "twice: refused, unchanged");
    cr_assert_eq(d.n_fields, 1);
}

Test(compat, irq_destination_with_fewer_vectors_is_a_mismatch)
{
    static IrqModel src, dst;
    CompatReport rep;

    irq_dev(&src, 8, 8);
    irq_dev(&dst, 4, 0);
    cr_assert_eq(irq_compare(&src, &dst, &rep), -EMEDIUMTYPE);
    cr_assert_eq(rep.n, 1);
    expect_mismatch(&rep.items[0], "nic", "irq.msix.count", "8", "4");

    irq_dev(&dst, 8, 0);
    cr_expect_eq(irq_compare(&src, &dst, &rep), 0, "as many: compatible");
    irq_dev(&dst, 2048, 0);
    cr_expect_eq(irq_compare(&src, &dst, &rep), 0, "more: compatible");
    irq_dev(&src, 64, 5);
    irq_dev(&dst, 8, 0);
    cr_expect_eq(irq_compare(&src, &dst, &rep), 0, "the source's device is larger, uses 5");
    irq_dev(&dst, 4, 0);
    cr_assert_eq(irq_compare(&src, &dst, &rep), -EMEDIUMTYPE);
    expect_mismatch(&rep.items[0], "nic", "irq.msix.count", "5", "4");
}

Test(compat, irq_destination_without_the_index_is_a_mismatch)
{
    static IrqModel src, dst;
    CompatReport rep;

    irq_dev(&src, 8, 3);
    irq_dev(&dst, 0, 0); /* MSI and INTx only */
    cr_assert_eq(irq_compare(&src, &dst, &rep), -EMEDIUMTYPE);
    expect_mismatch(&rep.items[0], "nic", "irq.msix.count", "3", COMPAT_ABSENT);
}

Test(compat, irq_a_source_that_says_nothing_asks_nothing)
{
    static IrqModel src, dst;
    CompatReport rep;
    CompatDescriptor d = {0};

    irq_dev(&src, 8, 0); /* nothing enabled */
    irq_dev(&dst, 1, 0);
    cr_expect_eq(irq_compare(&src, &dst, &rep), 0);
    /* an older source: no descriptor at all */
    cr_assert_eq(irq_compat_capacity(&dst, NULL, &d), 0);
    cr_assert_eq(d.n_fields, 0);
}
