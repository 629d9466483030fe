/* SPDX-License-Identifier: MIT */
/*
 * test_strutil — unit tests for daemon/util/strutil.c: byte sizes, bounded integers, device
 * ids, "key=value,..." option lists and byte formatting. Expected values come from strutil.h's
 * contract and plain arithmetic, never from the code under test. Every failure path also
 * checks that the output argument was left alone (CONVENTIONS §5: outputs written only on
 * success).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/strutil.h"

/* Every test runs in its own process (criterion default) with a timeout, so a path loop
 * that never ends fails instead of hanging the suite. */
TestSuite(strutil, .timeout = 60);

#define SENTINEL UINT64_C(0x5eed5eed5eed5eed)

/* ---- strutil_parse_size */

Test(strutil, parse_size_accepts)
{
    static const struct {
        const char *s;
        uint64_t bytes;
    } cases[] = {
        {"0", 0},
        {"1", 1},
        {"4096", 4096},
        {"007", 7}, /* decimal, not octal */
        {"60B", 60},
        {"60b", 60},
        {"4K", UINT64_C(4) << 10},
        {"4k", UINT64_C(4) << 10},
        {"4KB", UINT64_C(4) << 10},
        {"4KiB", UINT64_C(4) << 10},
        {"4kib", UINT64_C(4) << 10},
        {"16M", UINT64_C(16) << 20},
        {"16MiB", UINT64_C(16) << 20},
        {"16MB", UINT64_C(16) << 20}, /* binary multiples even when spelt "MB" */
        {"1G", UINT64_C(1) << 30},
        {"1GiB", UINT64_C(1) << 30},
        {"64G", UINT64_C(64) << 30},
        {"0K", 0},
        {"18446744073709551615", UINT64_MAX},
        {"18014398509481983K", (UINT64_C(18014398509481983) << 10)}, /* 2^54-1 KiB */
        {"17592186044415M", (UINT64_C(17592186044415) << 20)},       /* 2^44-1 MiB */
        {"17179869183G", (UINT64_C(17179869183) << 30)},             /* 2^34-1 GiB */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t got = SENTINEL;

        cr_expect_eq(strutil_parse_size(cases[i].s, &got), 0, "'%s'", cases[i].s);
        cr_expect_eq(got, cases[i].bytes, "'%s': %llu, want %llu", cases[i].s,
                     (unsigned long long)got, (unsigned long long)cases[i].bytes);
    }
}

Test(strutil, parse_size_overflow_is_erange)
{
    static const char *const cases[] = {
        "18446744073709551616", /* 2^64 */
        "99999999999999999999999999",
        "18014398509481984K", /* 2^54 KiB = 2^64 */
        "17592186044416M",    /* 2^44 MiB */
        "17179869184G",       /* 2^34 GiB */
        "17179869184GiB",
        "18446744073709551615K",
        "99999999999999999999999G", /* overflows before the suffix is looked at */
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t got = SENTINEL;

        cr_expect_eq(strutil_parse_size(cases[i], &got), -ERANGE, "'%s'", cases[i]);
        cr_expect_eq(got, SENTINEL, "'%s': output written on failure", cases[i]);
    }
}

Test(strutil, parse_size_rejects_junk)
{
    static const char *const cases[] = {
        "",    "K",  "abc",  "-1",  "-0",    "+1",   " 1",  "1 ",  "1 K",  "1.5K", "1,5K", "4KK",
        "4Ki", "4T", "4TiB", "4iB", "4KiBB", "0x10", "1e3", "4K ", "four", "4\n",  "4M\t", "1KB2",
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t got = SENTINEL;

        cr_expect_eq(strutil_parse_size(cases[i], &got), -EINVAL, "'%s'", cases[i]);
        cr_expect_eq(got, SENTINEL, "'%s': output written on failure", cases[i]);
    }
    cr_expect_eq(strutil_parse_size(NULL, &(uint64_t){0}), -EINVAL);
}

/* ---- strutil_parse_rate: a size with an optional "/s" */

Test(strutil, parse_rate)
{
    static const struct {
        const char *s;
        int r;
        uint64_t bytes;
    } cases[] = {
        {"0", 0, 0},
        {"500000", 0, 500000},
        {"64K", 0, UINT64_C(64) << 10},
        {"100M/s", 0, UINT64_C(100) << 20},
        {"1GiB/s", 0, UINT64_C(1) << 30},
        {"0/s", 0, 0},
        {"/s", -EINVAL, 0},
        {"", -EINVAL, 0},
        {"1M/S", -EINVAL, 0},
        {"1M/s/s", -EINVAL, 0},
        {"1M /s", -EINVAL, 0},
        {"fast", -EINVAL, 0},
        {"18446744073709551616/s", -ERANGE, 0},
        /* longer than any rate: refused before it is copied */
        {"1000000000000000000000000000000000000000000000000000000000000000000", -EINVAL, 0},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t got = SENTINEL;

        cr_expect_eq(strutil_parse_rate(cases[i].s, &got), cases[i].r, "'%s'", cases[i].s);
        cr_expect_eq(got, cases[i].r == 0 ? cases[i].bytes : SENTINEL, "'%s'", cases[i].s);
    }
    cr_expect_eq(strutil_parse_rate(NULL, &(uint64_t){0}), -EINVAL);
}

/* ---- strutil_parse_int_bounded */

Test(strutil, parse_int_bounded_accepts)
{
    static const struct {
        const char *s;
        long long min, max, want;
    } cases[] = {
        {"42", 0, 100, 42},
        {"0", 0, 100, 0}, /* bounds are inclusive */
        {"100", 0, 100, 100},
        {"-5", -10, 10, -5},
        {"-10", -10, 10, -10},
        {"010", 0, 100, 10}, /* decimal, not octal */
        {"7", 7, 7, 7},
        {"9223372036854775807", LLONG_MIN, LLONG_MAX, LLONG_MAX},
        {"-9223372036854775808", LLONG_MIN, LLONG_MAX, LLONG_MIN},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long long got = 12345;

        cr_expect_eq(strutil_parse_int_bounded(cases[i].s, cases[i].min, cases[i].max, &got), 0,
                     "'%s' in [%lld, %lld]", cases[i].s, cases[i].min, cases[i].max);
        cr_expect_eq(got, cases[i].want, "'%s': %lld", cases[i].s, got);
    }
}

Test(strutil, parse_int_bounded_out_of_range_is_erange)
{
    static const struct {
        const char *s;
        long long min, max;
    } cases[] = {
        {"101", 0, 100},
        {"-1", 0, 100},
        {"8", 7, 7},
        {"6", 7, 7},
        {"9223372036854775808", LLONG_MIN, LLONG_MAX}, /* beyond long long */
        {"-9223372036854775809", LLONG_MIN, LLONG_MAX},
        {"99999999999999999999999", 0, 10},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long long got = 12345;

        cr_expect_eq(strutil_parse_int_bounded(cases[i].s, cases[i].min, cases[i].max, &got),
                     -ERANGE, "'%s' in [%lld, %lld]", cases[i].s, cases[i].min, cases[i].max);
        cr_expect_eq(got, 12345, "'%s': output written on failure", cases[i].s);
    }
}

Test(strutil, parse_int_bounded_rejects_junk)
{
    static const char *const cases[] = {
        "",     " ",   " 1", "1 ",  "\t1", "1\n",   "x",   "1x",
        "0x10", "1.0", "-",  "--1", "1e3", "1,000", "one", "99999999999999999999x",
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long long got = 12345;

        cr_expect_eq(strutil_parse_int_bounded(cases[i], LLONG_MIN, LLONG_MAX, &got), -EINVAL,
                     "'%s'", cases[i]);
        cr_expect_eq(got, 12345, "'%s': output written on failure", cases[i]);
    }
    cr_expect_eq(strutil_parse_int_bounded(NULL, 0, 1, &(long long){0}), -EINVAL);
}

/* ---- strutil_id_is_valid */

Test(strutil, id_lengths)
{
    char id[DEVICE_ID_MAX + 2];

    cr_assert_eq(DEVICE_ID_MAX, 64);
    for (size_t n = 1; n <= DEVICE_ID_MAX + 1; n++) {
        memset(id, 'a', n);
        id[n] = '\0';
        cr_expect_eq(strutil_id_is_valid(id), n <= DEVICE_ID_MAX, "length %zu", n);
    }
    cr_expect_not(strutil_id_is_valid(""));
    cr_expect_not(strutil_id_is_valid(NULL));
}

Test(strutil, id_charset)
{
    static const char *const good[] = {
        "a",   "Z",  "0",  "_",  ":",  "vf0",           "mlx5_vf-0", "0000:3b:00.1",
        "a.b", "a-", "a.", "_x", ":x", "A-Za-z0-9_.:-",
    };
    static const char *const bad[] = {
        "-a",  ".a",  "-",   ".",  "..",   "a b", "a/b",  "a=b",      "a,b",   "a\n",
        "a\t", "a+b", "a@b", "a*", "a\\b", "a'b", "a\"b", "\xc3\xa9", "a\xff", "a$",
    };

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        cr_expect(strutil_id_is_valid(good[i]), "'%s' should be valid", good[i]);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_not(strutil_id_is_valid(bad[i]), "'%s' should be invalid", bad[i]);
    }
}

Test(strutil, id_every_byte)
{
    /* Each byte alone in the middle of an id: only [A-Za-z0-9_.:-] pass. */
    for (int c = 1; c < 256; c++) {
        char id[4] = {'a', (char)c, 'b', '\0'};
        bool want = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == ':' || c == '-';

        cr_expect_eq(strutil_id_is_valid(id), want, "byte 0x%02x", c);
    }
}

/* ---- strutil_options_next */

typedef struct Pair {
    const char *key, *value;
} Pair;

/* Reads all pairs of @s; checks them against @want and the final return against @end_r. */
static void
check_options(const char *s, const Pair *want, size_t n_want, int end_r)
{
    const char *cursor = s;
    char key[16], value[32];
    size_t n = 0;
    int r;

    for (;;) {
        const char *before = cursor;

        r = strutil_options_next(&cursor, key, sizeof(key), value, sizeof(value));
        if (r != 1) {
            cr_expect_eq(cursor, before, "'%s': cursor moved on r=%d", s, r);
            break;
        }
        cr_assert_lt(n, n_want, "'%s': more pairs than expected (extra '%s'='%s')", s, key, value);
        cr_expect_str_eq(key, want[n].key, "'%s' pair %zu", s, n);
        cr_expect_str_eq(value, want[n].value, "'%s' pair %zu", s, n);
        cr_expect(cursor > before, "'%s': cursor did not advance", s);
        n++;
    }
    cr_expect_eq(r, end_r, "'%s': final r=%d, want %d", s, r, end_r);
    cr_expect_eq(n, n_want, "'%s': %zu pairs, want %zu", s, n, n_want);
}

Test(strutil, options_normal)
{
    check_options("a=1", (Pair[]){{"a", "1"}}, 1, 0);
    check_options("a=1,b=2", (Pair[]){{"a", "1"}, {"b", "2"}}, 2, 0);
    check_options("speed=fast,size=4K,name=vf0",
                  (Pair[]){{"speed", "fast"}, {"size", "4K"}, {"name", "vf0"}}, 3, 0);
    /* the same key twice is the caller's business */
    check_options("a=1,a=2", (Pair[]){{"a", "1"}, {"a", "2"}}, 2, 0);
    /* only the first '=' splits: values may contain '=' */
    check_options("path=a=b", (Pair[]){{"path", "a=b"}}, 1, 0);
    /* whitespace is kept, not trimmed */
    check_options(" a = 1", (Pair[]){{" a ", " 1"}}, 1, 0);
}

Test(strutil, options_empty_value_allowed)
{
    check_options("a=", (Pair[]){{"a", ""}}, 1, 0);
    check_options("a=,b=", (Pair[]){{"a", ""}, {"b", ""}}, 2, 0);
    check_options("a=,b=2", (Pair[]){{"a", ""}, {"b", "2"}}, 2, 0);
}

Test(strutil, options_end)
{
    const char *cursor = "";
    const char *null_cursor = NULL;
    char key[8] = "K", value[8] = "V";

    cr_expect_eq(strutil_options_next(&cursor, key, sizeof(key), value, sizeof(value)), 0);
    cr_expect_eq(strutil_options_next(&null_cursor, key, sizeof(key), value, sizeof(value)), 0);
    cr_expect_null(null_cursor);
    cr_expect_str_eq(key, "K", "key touched at the end");
    cr_expect_str_eq(value, "V", "value touched at the end");
}

Test(strutil, options_malformed)
{
    /* missing '=' */
    check_options("a", NULL, 0, -EINVAL);
    check_options("a,b=1", NULL, 0, -EINVAL);
    check_options("a=1,b", (Pair[]){{"a", "1"}}, 1, -EINVAL);
    /* empty key */
    check_options("=1", NULL, 0, -EINVAL);
    check_options("=", NULL, 0, -EINVAL);
    check_options("a=1,=2", (Pair[]){{"a", "1"}}, 1, -EINVAL);
    /* empty element */
    check_options(",a=1", NULL, 0, -EINVAL);
    check_options("a=1,,b=2", (Pair[]){{"a", "1"}}, 1, -EINVAL);
    check_options(",", NULL, 0, -EINVAL);
}

Test(strutil, options_trailing_comma)
{
    const char *s = "a=1,";
    const char *cursor = s;
    char key[8], value[8];

    /* "a=1," is a typo: refused as a whole, cursor not advanced */
    cr_expect_eq(strutil_options_next(&cursor, key, sizeof(key), value, sizeof(value)), -EINVAL);
    cr_expect_eq(cursor, s);
    check_options("a=1,b=2,", (Pair[]){{"a", "1"}}, 1, -EINVAL);
}

Test(strutil, options_too_long)
{
    char key[4], value[4];
    const char *cursor;

    /* key_size 4 holds 3 characters + NUL */
    cursor = "abc=xyz";
    cr_expect_eq(strutil_options_next(&cursor, key, sizeof(key), value, sizeof(value)), 1);
    cr_expect_str_eq(key, "abc");
    cr_expect_str_eq(value, "xyz");
    cr_expect_str_eq(cursor, "");

    cursor = "abcd=x";
    cr_expect_eq(strutil_options_next(&cursor, key, sizeof(key), value, sizeof(value)), -EINVAL,
                 "key of 4 characters in a 4-byte buffer");
    cr_expect_str_eq(cursor, "abcd=x", "cursor moved on failure");

    cursor = "a=wxyz";
    cr_expect_eq(strutil_options_next(&cursor, key, sizeof(key), value, sizeof(value)), -EINVAL,
                 "value of 4 characters in a 4-byte buffer");
    cr_expect_str_eq(cursor, "a=wxyz", "cursor moved on failure");

    /* the length check looks at this pair only, not the rest of the list */
    cursor = "a=b,cdefgh=ijklmn";
    cr_expect_eq(strutil_options_next(&cursor, key, sizeof(key), value, sizeof(value)), 1);
    cr_expect_str_eq(cursor, "cdefgh=ijklmn");
    cr_expect_eq(strutil_options_next(&cursor, key, sizeof(key), value, sizeof(value)), -EINVAL);
}

Test(strutil, options_cursor_advance)
{
    const char *s = "k1=v1,k2=v2";
    const char *cursor = s;
    char key[8], value[8];

    cr_assert_eq(strutil_options_next(&cursor, key, sizeof(key), value, sizeof(value)), 1);
    cr_expect_eq(cursor, s + 6, "cursor should point past the comma, at 'k2'");
    cr_assert_eq(strutil_options_next(&cursor, key, sizeof(key), value, sizeof(value)), 1);
    cr_expect_eq(cursor, s + strlen(s), "cursor should point at the terminating NUL");
    cr_expect_eq(strutil_options_next(&cursor, key, sizeof(key), value, sizeof(value)), 0);
    cr_expect_eq(strutil_options_next(&cursor, key, sizeof(key), value, sizeof(value)), 0,
                 "end is sticky");
}

/* ---- strutil_format_bytes */

Test(strutil, format_bytes_values)
{
    static const struct {
        uint64_t bytes;
        const char *s;
    } cases[] = {
        {0, "0 B"},
        {1, "1 B"},
        {60, "60 B"},
        {1023, "1023 B"},
        {1024, "1 KiB"},
        {1536, "1.5 KiB"},
        {UINT64_C(256) << 20, "256 MiB"},
        {UINT64_C(3) << 29, "1.5 GiB"},
        {UINT64_C(1) << 30, "1 GiB"},
        {UINT64_C(5) << 40, "5 TiB"},
        {UINT64_C(2048) << 40, "2048 TiB"}, /* TiB is the largest unit */
        {UINT64_MAX, "16777216 TiB"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];

        cr_expect_eq(strutil_format_bytes(cases[i].bytes, buf, sizeof(buf)), buf);
        cr_expect_str_eq(buf, cases[i].s, "%llu bytes", (unsigned long long)cases[i].bytes);
    }
}

Test(strutil, format_bytes_header_example)
{
    /* strutil.h: exact multiples print without a decimal ("256 MiB"), others with one. */
    char buf[32];

    cr_expect_str_eq(strutil_format_bytes(4096, buf, sizeof(buf)), "4 KiB",
                     "strutil.h example for 4096 bytes");
    cr_expect_str_eq(strutil_format_bytes(1536, buf, sizeof(buf)), "1.5 KiB", "1536 bytes");
}

Test(strutil, format_bytes_no_1024_below_unit_boundary)
{
    /* Just below a unit boundary the text must not claim 1024 of the smaller unit. */
    static const uint64_t cases[] = {
        (UINT64_C(1) << 20) - 1,
        (UINT64_C(1) << 30) - 1,
        (UINT64_C(1) << 40) - 1,
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[32];

        (void)strutil_format_bytes(cases[i], buf, sizeof(buf));
        cr_expect_null(strstr(buf, "1024"), "%llu bytes gave '%s'", (unsigned long long)cases[i],
                       buf);
    }
}

Test(strutil, format_bytes_small_buffer_terminates)
{
    for (size_t size = 1; size <= 16; size++) {
        char buf[32];

        memset(buf, 'X', sizeof(buf));
        (void)strutil_format_bytes(UINT64_C(1536) << 30, buf, size);
        cr_expect_lt(strnlen(buf, sizeof(buf)), size, "size %zu", size);
        cr_expect_eq(buf[size], 'X', "size %zu: wrote past the buffer", size);
    }
}

static void append_failure(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
append_failure(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    strutil_vappend_failure(buf, size, fmt, ap);
    va_end(ap);
}

Test(strutil, append_failure_joins_with_semicolons)
{
    char buf[64] = "";

    append_failure(buf, sizeof(buf), "arc %s failed", "STOP>RUN");
    cr_expect_str_eq(buf, "arc STOP>RUN failed");
    append_failure(buf, sizeof(buf), "rollback: %d", -5);
    cr_expect_str_eq(buf, "arc STOP>RUN failed; rollback: -5");
}

Test(strutil, append_failure_cuts_and_terminates)
{
    char buf[16] = "0123456789abc";

    append_failure(buf, sizeof(buf), "%s", "more");
    cr_expect_str_eq(buf, "0123456789abc; "); /* the separator fits, the text is cut */
    append_failure(buf, sizeof(buf), "%s", "again");
    cr_expect_str_eq(buf, "0123456789abc; ", "a full buffer stays as it was");
}
