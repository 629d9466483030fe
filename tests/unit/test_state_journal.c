/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for core/state_journal: a journal comes back exactly as written, and any byte
 * changed, any length or count beyond its bound, any truncation is refused with a sentence.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/state_journal.h"
#include "core/stream.h" /* crc32c() */
#include "util/le.h"

static char *members[] = {"nic0", "gpu:0"};
/* MSI-X with 10 vectors: all in use, 2 masked, 2 and 9 pending, 0..7 held by a VMM. */
static uint8_t irq_bits[4 * 2] = {0xff, 0x03, 0x04, 0x00, 0x04, 0x02, 0xff, 0x00};

static StateJournal
sample(void)
{
    static StateJournalDevice devices[] = {
        {.id = "nic0", .kernel = false, .source = "size=4M,seed=7",
         .group = STATE_JOURNAL_NO_GROUP, .irq_type = 3, .irq_count = 10, .irq_bits = irq_bits,
         .vmm_allow = {.users = {.ids = {1000, 0}, .n = 2}, .groups = {.ids = {27}, .n = 1}}},
        {.id = "gpu:0", .kernel = true, .address_kind = 1,
         .source = "6f1d2b7c-3c3e-4c1e-9d7e-2f1a0b3c4d5e", .group = 17},
    };
    static StateJournalGroup groups[] = {{.name = "vm1", .members = members, .n_members = 2}};
    static StateJournalJob jobs[] = {
        {.id = "m3", .role = 1, .subject = 1, .phase = 3, .name = "vm1"},
        {.id = "m4", .role = 2, .subject = 1, .phase = 11, .name = "vm1",
         .flags = STATE_JOURNAL_JOB_AUTO_RESUME, .peer = "192.0.2.7:4711",
         .started_unix_ms = UINT64_C(1765000000123)},
    };

    return (StateJournal){.seq = 42, .devices = devices, .n_devices = 2, .groups = groups,
                          .n_groups = 1, .jobs = jobs, .n_jobs = 2};
}

/* Seals @buf again after a test edited it: the CRC at 24 covers the 24 bytes before it and
 * the body from 32, so that the decoder's own bounds are what refuses the edit. */
static void
reseal(uint8_t *buf, size_t size)
{
    put_le32(buf + 24, crc32c(crc32c(0, buf, 24), buf + 32, size - 32));
}

/* Rewrites a freshly encoded @buf as an older @version wrote it: without the @n bytes at @at
 * (what that version did not have), the header's version and body length to match, sealed. */
static void
as_version(uint8_t *buf, size_t *size, size_t at, size_t n, uint32_t version)
{
    memmove(buf + at, buf + at + n, *size - at - n);
    *size -= n;
    put_le32(buf + 8, version);
    put_le32(buf + 12, (uint32_t) (*size - 32));
    reseal(buf, *size);
}

/* @buf, edited by a test, sealed again: decoding it into @out is refused as malformed, with a
 * reason that contains @needle; @out is cleared after. */
static void
expect_refused(uint8_t *buf, size_t size, StateJournal *out, const char *needle)
{
    char err[256] = "";

    reseal(buf, size);
    cr_expect_eq(state_journal_decode(buf, size, out, err, sizeof(err)), -EBADMSG, "%s", needle);
    cr_expect(strstr(err, needle) != NULL, "'%s' lacks '%s'", err, needle);
    state_journal_clear(out);
}

Test(state_journal, round_trip)
{
    StateJournal in = sample(), out = {0};
    uint8_t *buf = NULL;
    size_t size = 0;
    char err[256] = "";

    cr_assert_eq(state_journal_encode(&in, &buf, &size), 0);
    cr_assert_eq(state_journal_decode(buf, size, &out, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(out.seq, 42);
    cr_assert_eq(out.n_devices, 2);
    cr_expect_str_eq(out.devices[1].id, "gpu:0");
    cr_expect(out.devices[1].kernel);
    cr_expect_eq(out.devices[1].address_kind, 1);
    cr_expect_eq(out.devices[1].group, 17);
    cr_expect_eq(out.devices[0].group, STATE_JOURNAL_NO_GROUP);
    cr_expect_str_eq(out.devices[0].source, "size=4M,seed=7");
    cr_expect_eq(out.devices[0].irq_type, 3);
    cr_assert_eq(out.devices[0].irq_count, 10);
    cr_expect_arr_eq(out.devices[0].irq_bits, irq_bits, sizeof(irq_bits));
    cr_expect_eq(out.devices[1].irq_type, 0);
    cr_expect_eq(out.devices[1].irq_count, 0);
    cr_expect_null(out.devices[1].irq_bits);
    cr_assert_eq(out.devices[0].vmm_allow.users.n, 2);
    cr_expect_eq(out.devices[0].vmm_allow.users.ids[0], 1000);
    cr_expect_eq(out.devices[0].vmm_allow.users.ids[1], 0);
    cr_assert_eq(out.devices[0].vmm_allow.groups.n, 1);
    cr_expect_eq(out.devices[0].vmm_allow.groups.ids[0], 27);
    cr_expect_not(authz_vmm_list_is_set(&out.devices[1].vmm_allow), "gpu:0 has no VMM list");
    cr_assert_eq(out.n_groups, 1);
    cr_expect_str_eq(out.groups[0].name, "vm1");
    cr_assert_eq(out.groups[0].n_members, 2);
    cr_expect_str_eq(out.groups[0].members[1], "gpu:0");
    cr_assert_eq(out.n_jobs, 2);
    cr_expect_str_eq(out.jobs[0].id, "m3");
    cr_expect_eq(out.jobs[0].phase, 3);
    cr_expect_str_eq(out.jobs[0].name, "vm1");
    cr_expect_eq(out.jobs[0].flags, 0);
    cr_expect_str_eq(out.jobs[0].peer, "", "a NULL peer is written empty");
    cr_expect_eq(out.jobs[0].started_unix_ms, 0);
    cr_expect_eq(out.jobs[1].phase, 11);
    cr_expect_eq(out.jobs[1].flags, STATE_JOURNAL_JOB_AUTO_RESUME);
    cr_expect_str_eq(out.jobs[1].peer, "192.0.2.7:4711");
    cr_expect_eq(out.jobs[1].started_unix_ms, UINT64_C(1765000000123));
    state_journal_clear(&out);
    free(buf);
}

Test(state_journal, every_flipped_byte_and_every_truncation_is_refused)
{
    StateJournal in = sample(), out = {0};
    uint8_t *buf = NULL;
    size_t size = 0;
    char err[256];

    cr_assert_eq(state_journal_encode(&in, &buf, &size), 0);
    for (size_t i = 0; i < size; i++) {
        if (i >= 28 && i < 32) {
            continue; /* the reserved word is not checked */
        }
        buf[i] ^= 0x20;
        err[0] = '\0';
        cr_expect_eq(state_journal_decode(buf, size, &out, err, sizeof(err)), -EBADMSG,
                     "byte %zu flipped", i);
        cr_expect_neq(err[0], '\0');
        state_journal_clear(&out);
        buf[i] ^= 0x20;
    }
    for (size_t n = 0; n < size; n++) {
        cr_expect_eq(state_journal_decode(buf, n, &out, err, sizeof(err)), -EBADMSG, "%zu", n);
        state_journal_clear(&out);
    }
    free(buf);
}

/* A journal whose CRC is right but whose counts lie: the bounds hold on their own. */
Test(state_journal, counts_beyond_bounds_are_refused)
{
    StateJournal in = {.seq = 1}, out = {0};
    uint8_t *buf = NULL;
    size_t size = 0;

    cr_assert_eq(state_journal_encode(&in, &buf, &size), 0);
    put_le32(buf + 32, STATE_JOURNAL_MAX_DEVICES + 1); /* n_devices */
    expect_refused(buf, size, &out, "more than 1024");
    free(buf);
}

Test(state_journal, encode_refuses_what_decode_would)
{
    StateJournalDevice d = {.id = "x", .source = NULL};
    char longid[STATE_JOURNAL_MAX_NAME + 2];
    StateJournal in = {.devices = &d, .n_devices = 1};
    uint8_t *buf = NULL;
    size_t size = 0;

    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    d.id = longid;
    cr_expect_eq(state_journal_encode(&in, &buf, &size), -EINVAL);
    in.n_devices = STATE_JOURNAL_MAX_DEVICES + 1;
    cr_expect_eq(state_journal_encode(&in, &buf, &size), -EINVAL);
}

/* Interrupt shapes no daemon writes: a bit beyond the count (CRC right), a type out of range
 * or without vectors; the encoder refuses them too. */
Test(state_journal, interrupt_bits_beyond_the_count_are_refused)
{
    uint8_t bits[4] = {0x01, 0x00, 0x00, 0x00};
    StateJournalDevice d = {.id = "s", .source = "", .irq_type = 2, .irq_count = 1,
                            .irq_bits = bits};
    StateJournal in = {.seq = 1, .devices = &d, .n_devices = 1}, out = {0};
    uint8_t *buf = NULL;
    size_t size = 0;

    cr_assert_eq(state_journal_encode(&in, &buf, &size), 0);
    /* the pending map (before the two empty VMM lists and the two empty counts): vector 1 of
     * a 1-vector index */
    buf[size - 16 - 2] = 0x02;
    expect_refused(buf, size, &out, "beyond its 1 vectors");
    free(buf);
    d.irq_type = 4;
    cr_expect_eq(state_journal_encode(&in, &buf, &size), -EINVAL);
    d.irq_type = 2;
    d.irq_count = 0;
    cr_expect_eq(state_journal_encode(&in, &buf, &size), -EINVAL);
}

/* A version-1 journal (written before devices had a group field) still reads, every device
 * without a group: an upgraded daemon keeps the sim devices the old one stored. */
Test(state_journal, version_1_reads_without_groups)
{
    StateJournalDevice d = {.id = "sim0", .source = "size=4K", .group = 5};
    StateJournal in = {.seq = 9, .devices = &d, .n_devices = 1}, out = {0};
    uint8_t *buf = NULL;
    size_t size = 0;
    char err[256] = "";

    cr_assert_eq(state_journal_encode(&in, &buf, &size), 0);
    /* body: u32 n, str id (2+4), u8, u8, str source (2+7), then the u32 group, the
     * interrupts (u8 type, u32 count: none) and the VMM lists (two u32 counts: none) */
    size_t group_at = 32 + 4 + 6 + 2 + 9;
    as_version(buf, &size, group_at, 17, 1);
    cr_assert_eq(state_journal_decode(buf, size, &out, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(out.n_devices, 1);
    cr_expect_str_eq(out.devices[0].source, "size=4K");
    cr_expect_eq(out.devices[0].group, STATE_JOURNAL_NO_GROUP);
    put_le32(buf + 8, STATE_JOURNAL_VERSION + 1); /* a version from the future */
    expect_refused(buf, size, &out, "version 6");
    free(buf);
}

/* A version-3 journal (jobs without flags, peer and start) still reads: a daemon upgraded while
 * a job was in flight finds it, with no peer and auto_resume off. Unknown job flags are refused,
 * by the encoder and (CRC right) by the decoder. */
Test(state_journal, version_3_jobs_and_unknown_job_flags)
{
    StateJournalJob job = {.id = "m9", .role = 2, .subject = 1, .phase = 11, .name = "vm",
                           .flags = STATE_JOURNAL_JOB_AUTO_RESUME, .peer = "h:1",
                           .started_unix_ms = 5};
    StateJournal in = {.seq = 3, .jobs = &job, .n_jobs = 1}, out = {0};
    uint8_t *buf = NULL;
    size_t size = 0;
    char err[256] = "";

    cr_assert_eq(state_journal_encode(&in, &buf, &size), 0);
    /* the job's version-4 tail: u8 flags, str peer (2 + 3), u64 start, at the very end */
    size -= 1 + 5 + 8;
    put_le32(buf + 8, 3);
    put_le32(buf + 12, (uint32_t) (size - 32));
    reseal(buf, size);
    cr_assert_eq(state_journal_decode(buf, size, &out, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(out.n_jobs, 1);
    cr_expect_str_eq(out.jobs[0].name, "vm");
    cr_expect_eq(out.jobs[0].phase, 11);
    cr_expect_eq(out.jobs[0].flags, 0);
    cr_expect_null(out.jobs[0].peer);
    cr_expect_eq(out.jobs[0].started_unix_ms, 0);
    state_journal_clear(&out);
    free(buf);

    cr_assert_eq(state_journal_encode(&in, &buf, &size), 0);
    buf[size - 1 - 5 - 8] = 0x80;
    expect_refused(buf, size, &out, "unknown flags 0x80");
    free(buf);
    job.flags = 0x80;
    cr_expect_eq(state_journal_encode(&in, &buf, &size), -EINVAL);
}

/* A version-4 journal (written before devices had VMM allow-lists) still reads, its devices
 * with none (they follow the global list, as they did), its interrupts as they were. */
Test(state_journal, version_4_reads_without_vmm_lists)
{
    uint8_t bits[4] = {0x01, 0x01, 0x00, 0x00};
    StateJournalDevice d = {.id = "sim0", .source = "size=4K", .group = STATE_JOURNAL_NO_GROUP,
                            .irq_type = 2, .irq_count = 1, .irq_bits = bits};
    StateJournal in = {.seq = 9, .devices = &d, .n_devices = 1}, out = {0};
    uint8_t *buf = NULL;
    size_t size = 0;
    char err[256] = "";

    cr_assert_eq(state_journal_encode(&in, &buf, &size), 0);
    /* the two empty VMM lists end the device, before the two empty counts */
    size_t lists_at = size - 8 - 8;
    as_version(buf, &size, lists_at, 8, 4);
    cr_assert_eq(state_journal_decode(buf, size, &out, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(out.n_devices, 1);
    cr_expect_not(authz_vmm_list_is_set(&out.devices[0].vmm_allow));
    cr_expect_eq(out.devices[0].irq_count, 1);
    cr_expect_arr_eq(out.devices[0].irq_bits, bits, sizeof(bits));
    state_journal_clear(&out);
    /* The same bytes claiming version 5 lack the lists: refused, not misread. */
    put_le32(buf + 8, 5);
    reseal(buf, size);
    cr_expect_eq(state_journal_decode(buf, size, &out, err, sizeof(err)), -EBADMSG);
    state_journal_clear(&out);
    free(buf);
}

/* A VMM list longer than AUTHZ_MAX_IDS, or naming (uid_t) -1, is no daemon's (CRC right). */
Test(state_journal, vmm_lists_beyond_bounds_are_refused)
{
    StateJournalDevice d = {.id = "s", .source = "",
                            .vmm_allow = {.users = {.ids = {7}, .n = 1}}};
    StateJournal in = {.seq = 1, .devices = &d, .n_devices = 1}, out = {0};
    uint8_t *buf = NULL;
    size_t size = 0;

    cr_assert_eq(state_journal_encode(&in, &buf, &size), 0);
    /* the device ends: u32 n_users (1), u32 uid, u32 n_groups (0); then two empty counts */
    size_t users_at = size - 8 - 4 - 8;
    cr_assert_eq(get_le32(buf + users_at), 1);
    cr_assert_eq(get_le32(buf + users_at + 4), 7);
    put_le32(buf + users_at + 4, UINT32_MAX);
    expect_refused(buf, size, &out, "no valid id");
    put_le32(buf + users_at + 4, 7);
    put_le32(buf + users_at, AUTHZ_MAX_IDS + 1);
    expect_refused(buf, size, &out, "more than 32");
    free(buf);
    d.vmm_allow.users.n = AUTHZ_MAX_IDS + 1;
    cr_expect_eq(state_journal_encode(&in, &buf, &size), -EINVAL);
}
