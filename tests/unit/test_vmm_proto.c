/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for core/vmm_proto: every command of the VMM socket (docs/vmm-protocol.md) with
 * good words, each with every wrong number of words, each number out of its bound or not a
 * number, each fd count that is not the command's, and the message-level refusals (size, NUL,
 * blanks, too many words, unknown verbs). Accepted commands format back to a message that
 * parses to the same command; refusals say why in one printable sentence.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "core/vmm_proto.h"
#include "util/macro.h"

/* ---- accepted */

typedef struct Good {
    const char *msg;
    size_t n_fds;
    VmmCommand want; /* verb and fields; error 0, why "" */
} Good;

static const Good goods[] = {
    {"HELLO 1", 0, {.verb = VMM_VERB_HELLO, .version = 1}},
    {"HELLO 0001", 0, {.verb = VMM_VERB_HELLO, .version = 1}},
    {"TAKE nic0", 0, {.verb = VMM_VERB_TAKE, .device = "nic0"}},
    {"TAKE 0000:00:01.0", 0, {.verb = VMM_VERB_TAKE, .device = "0000:00:01.0"}},
    {"TAKE a-b_c.d:e", 0, {.verb = VMM_VERB_TAKE, .device = "a-b_c.d:e"}},
    {"TAKE " "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl", 0,
     {.verb = VMM_VERB_TAKE,
      .device = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl"}},
    {"ENABLE msix 8", 0, {.verb = VMM_VERB_ENABLE, .index = IRQ_TYPE_MSIX, .count = 8}},
    {"ENABLE msi 1", 0, {.verb = VMM_VERB_ENABLE, .index = IRQ_TYPE_MSI, .count = 1}},
    {"ENABLE intx 1", 0, {.verb = VMM_VERB_ENABLE, .index = IRQ_TYPE_INTX, .count = 1}},
    {"ENABLE msix 0", 0, {.verb = VMM_VERB_ENABLE, .index = IRQ_TYPE_MSIX, .count = 0}},
    {"ENABLE none 0", 0, {.verb = VMM_VERB_ENABLE, .index = IRQ_TYPE_NONE, .count = 0}},
    {"ENABLE msix 2048", 0, {.verb = VMM_VERB_ENABLE, .index = IRQ_TYPE_MSIX, .count = 2048}},
    {"VECTORS 0 4", 4, {.verb = VMM_VERB_VECTORS, .start = 0, .count = 4, .n_fds = 4}},
    {"VECTORS 0 0", 0, {.verb = VMM_VERB_VECTORS}},
    {"VECTORS 253 253", 253, {.verb = VMM_VERB_VECTORS, .start = 253, .count = 253, .n_fds = 253}},
    {"VECTORS 1795 253", 253,
     {.verb = VMM_VERB_VECTORS, .start = 1795, .count = 253, .n_fds = 253}},
    {"VECTORS 2047 1", 1, {.verb = VMM_VERB_VECTORS, .start = 2047, .count = 1, .n_fds = 1}},
    {"MASK 3", 0, {.verb = VMM_VERB_MASK, .vector = 3}},
    {"MASK 007", 0, {.verb = VMM_VERB_MASK, .vector = 7}},
    {"MASK 2048", 0, {.verb = VMM_VERB_MASK, .vector = 2048}},
    {"UNMASK 0", 0, {.verb = VMM_VERB_UNMASK, .vector = 0}},
    {"GIVE", 0, {.verb = VMM_VERB_GIVE}},
    /* blanks: any run of space, tab, CR, LF, before, between and after */
    {"  HELLO\t1\r\n", 0, {.verb = VMM_VERB_HELLO, .version = 1}},
    {"GIVE\n", 0, {.verb = VMM_VERB_GIVE}},
    {"\tENABLE \t msix\n\n4 ", 0, {.verb = VMM_VERB_ENABLE, .index = IRQ_TYPE_MSIX, .count = 4}},
};

static void
assert_same_command(const VmmCommand *got, const VmmCommand *want, const char *what)
{
    cr_assert_eq(got->verb, want->verb, "%s: verb %d, want %d", what, got->verb, want->verb);
    cr_assert_eq(got->version, want->version, "%s: version", what);
    cr_assert_str_eq(got->device, want->device, "%s: device", what);
    cr_assert_eq(got->index, want->index, "%s: index", what);
    cr_assert_eq(got->start, want->start, "%s: start %u", what, got->start);
    cr_assert_eq(got->count, want->count, "%s: count %u", what, got->count);
    cr_assert_eq(got->vector, want->vector, "%s: vector %u", what, got->vector);
    cr_assert_eq(got->n_fds, want->n_fds, "%s: n_fds %zu", what, got->n_fds);
}

Test(vmm_proto, every_command_with_good_words)
{
    bool seen[_VMM_VERB_MAX] = {false};

    for (size_t i = 0; i < ELEMENTSOF(goods); i++) {
        const Good *g = &goods[i];
        VmmCommand c;
        int r = vmm_proto_parse(g->msg, strlen(g->msg), g->n_fds, &c);

        cr_assert_eq(r, 0, "'%s': %d %s", g->msg, r, c.why);
        cr_assert_eq(c.error, 0, "'%s'", g->msg);
        cr_assert_str_eq(c.why, "", "'%s'", g->msg);
        assert_same_command(&c, &g->want, g->msg);
        seen[c.verb] = true;
    }
    for (int v = 0; v < _VMM_VERB_MAX; v++) {
        cr_assert(seen[v], "no good case for %s", vmm_proto_verb_name(v));
    }
}

Test(vmm_proto, an_accepted_command_formats_to_a_message_that_parses_to_it)
{
    for (size_t i = 0; i < ELEMENTSOF(goods); i++) {
        VmmCommand c, back;
        char text[VMM_PROTO_MAX_MESSAGE + 1];

        cr_assert_eq(vmm_proto_parse(goods[i].msg, strlen(goods[i].msg), goods[i].n_fds, &c), 0);
        cr_assert_eq(vmm_proto_format(&c, text, sizeof(text)), 0, "'%s'", goods[i].msg);
        cr_assert_eq(vmm_proto_parse(text, strlen(text), c.n_fds, &back), 0, "'%s' -> '%s': %s",
                     goods[i].msg, text, back.why);
        assert_same_command(&back, &c, text);
    }
}

Test(vmm_proto, format_writes_the_protocol_spelling)
{
    static const struct {
        const char *msg;
        size_t n_fds;
        const char *want;
    } cases[] = {
        {" HELLO 01 ", 0, "HELLO 1"},       {"TAKE nic0", 0, "TAKE nic0"},
        {"ENABLE msix 08", 0, "ENABLE msix 8"}, {"VECTORS 2 3", 3, "VECTORS 2 3"},
        {"MASK 1", 0, "MASK 1"},            {"UNMASK 2", 0, "UNMASK 2"},
        {"GIVE\n", 0, "GIVE"},
    };
    for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
        VmmCommand c;
        char text[64];

        cr_assert_eq(vmm_proto_parse(cases[i].msg, strlen(cases[i].msg), cases[i].n_fds, &c), 0);
        cr_assert_eq(vmm_proto_format(&c, text, sizeof(text)), 0);
        cr_assert_str_eq(text, cases[i].want);
    }
}

Test(vmm_proto, format_refuses_a_small_buffer_and_an_invalid_verb)
{
    VmmCommand c = {.verb = VMM_VERB_ENABLE, .index = IRQ_TYPE_MSIX, .count = 2048};
    char text[32];

    cr_assert_eq(vmm_proto_format(&c, text, strlen("ENABLE msix 2048") + 1), 0);
    cr_assert_str_eq(text, "ENABLE msix 2048");
    for (size_t size = 0; size <= strlen("ENABLE msix 2048"); size++) {
        cr_assert_eq(vmm_proto_format(&c, text, size), -ENOBUFS, "size %zu", size);
    }
    c.verb = _VMM_VERB_INVALID;
    cr_assert_eq(vmm_proto_format(&c, text, sizeof(text)), -EINVAL);
    c.verb = _VMM_VERB_MAX;
    cr_assert_eq(vmm_proto_format(&c, text, sizeof(text)), -EINVAL);
    cr_assert_str_eq(vmm_proto_verb_name(_VMM_VERB_MAX), "invalid");
}

/* ---- refused */

typedef struct Bad {
    const char *msg;
    size_t size; /* 0: strlen(msg) */
    size_t n_fds;
    int error;
    VmmVerb verb; /* _VMM_VERB_INVALID: refused before the arguments */
    const char *why; /* a part of the sentence */
} Bad;

#define MSG_LEVEL _VMM_VERB_INVALID

static const Bad bads[] = {
    /* the message */
    {"", 0, 0, -EINVAL, MSG_LEVEL, "no command"},
    {" \t\r\n ", 0, 0, -EINVAL, MSG_LEVEL, "no command"},
    {"GIVE a b c d", 0, 0, -E2BIG, MSG_LEVEL, "more than 4 words"},
    {"a b c d e f g h", 0, 0, -E2BIG, MSG_LEVEL, "more than 4 words"},
    {"HELLO 1", 0, VMM_PROTO_MAX_FDS + 1, -EMSGSIZE, MSG_LEVEL, "at most 253 fds"},
    {"HELLO 1\0x", 9, 0, -EINVAL, MSG_LEVEL, "byte 7 is a NUL"},
    {"\0", 1, 0, -EINVAL, MSG_LEVEL, "byte 0 is a NUL"},
    {"GIVE\0", 5, 0, -EINVAL, MSG_LEVEL, "byte 4 is a NUL"},
    /* the verb: exact and upper case */
    {"FOO", 0, 0, -EINVAL, MSG_LEVEL, "unknown command 'FOO'"},
    {"hello 1", 0, 0, -EINVAL, MSG_LEVEL, "unknown command 'hello'"},
    {"HELLOX 1", 0, 0, -EINVAL, MSG_LEVEL, "unknown command 'HELLOX'"},
    {"GIV", 0, 0, -EINVAL, MSG_LEVEL, "unknown command 'GIV'"},
    {"OK 1", 0, 0, -EINVAL, MSG_LEVEL, "unknown command 'OK'"},
    {"VERYLONGCOMMANDNAMEXYZ", 0, 0, -EINVAL, MSG_LEVEL, "'VERYLONGCOMMANDN'"},
    {"\x1b[2J", 0, 0, -EINVAL, MSG_LEVEL, "unknown command '?[2J'"},
    /* HELLO's version */
    {"HELLO 2", 0, 0, -EPROTONOSUPPORT, VMM_VERB_HELLO, "version '2' not spoken"},
    {"HELLO 0", 0, 0, -EPROTONOSUPPORT, VMM_VERB_HELLO, "this daemon speaks 1"},
    {"HELLO x", 0, 0, -EPROTONOSUPPORT, VMM_VERB_HELLO, "version 'x'"},
    {"HELLO 1x", 0, 0, -EPROTONOSUPPORT, VMM_VERB_HELLO, "version '1x'"},
    {"HELLO +1", 0, 0, -EPROTONOSUPPORT, VMM_VERB_HELLO, "version '+1'"},
    {"HELLO -1", 0, 0, -EPROTONOSUPPORT, VMM_VERB_HELLO, "version '-1'"},
    {"HELLO 4294967297", 0, 0, -EPROTONOSUPPORT, VMM_VERB_HELLO, "version '4294967297'"},
    /* TAKE's device name */
    {"TAKE -x", 0, 0, -ENOENT, VMM_VERB_TAKE, "no device '-x'"},
    {"TAKE .x", 0, 0, -ENOENT, VMM_VERB_TAKE, "no device '.x'"},
    {"TAKE a/b", 0, 0, -ENOENT, VMM_VERB_TAKE, "vfio-migctl devices"},
    {"TAKE a\x01z", 0, 0, -ENOENT, VMM_VERB_TAKE, "no device 'a?z'"},
    {"TAKE abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklm", 0, 0, -ENOENT,
     VMM_VERB_TAKE, "no device 'abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijkl'"},
    /* ENABLE's index and count */
    {"ENABLE MSIX 1", 0, 0, -EINVAL, VMM_VERB_ENABLE, "intx|msi|msix and a count, got 'MSIX' '1'"},
    {"ENABLE foo 1", 0, 0, -EINVAL, VMM_VERB_ENABLE, "got 'foo' '1'"},
    {"ENABLE msix 2049", 0, 0, -EINVAL, VMM_VERB_ENABLE, "got 'msix' '2049'"},
    {"ENABLE msix -1", 0, 0, -EINVAL, VMM_VERB_ENABLE, "'-1'"},
    {"ENABLE msix +1", 0, 0, -EINVAL, VMM_VERB_ENABLE, "'+1'"},
    {"ENABLE msix 0x10", 0, 0, -EINVAL, VMM_VERB_ENABLE, "'0x10'"},
    {"ENABLE msix 4294967296", 0, 0, -EINVAL, VMM_VERB_ENABLE, "'4294967296'"},
    {"ENABLE msix 99999999999999999999999", 0, 0, -EINVAL, VMM_VERB_ENABLE, "'9999999999999999'"},
    /* VECTORS' start, count and fds */
    {"VECTORS 0 4", 0, 3, -EINVAL, VMM_VERB_VECTORS, "must come with count eventfds"},
    {"VECTORS 0 4", 0, 5, -EINVAL, VMM_VERB_VECTORS, "got 5 fds"},
    {"VECTORS 0 4", 0, 0, -EINVAL, VMM_VERB_VECTORS, "got 0 fds"},
    {"VECTORS 0 0", 0, 1, -EINVAL, VMM_VERB_VECTORS, "got 1 fds"},
    {"VECTORS 0 254", 0, 253, -EINVAL, VMM_VERB_VECTORS, "at most 253 per message"},
    {"VECTORS 2049 0", 0, 0, -EINVAL, VMM_VERB_VECTORS, "must come with"},
    {"VECTORS x 1", 0, 1, -EINVAL, VMM_VERB_VECTORS, "must come with"},
    {"VECTORS 0 x", 0, 0, -EINVAL, VMM_VERB_VECTORS, "must come with"},
    {"VECTORS -1 1", 0, 1, -EINVAL, VMM_VERB_VECTORS, "must come with"},
    {"VECTORS 4294967295 1", 0, 1, -EINVAL, VMM_VERB_VECTORS, "must come with"},
    {"VECTORS 2047 2", 0, 2, -EINVAL, VMM_VERB_VECTORS, "VECTORS 2047 2 goes past vector 2047"},
    {"VECTORS 2048 1", 0, 1, -EINVAL, VMM_VERB_VECTORS, "goes past"},
    {"VECTORS 1900 253", 0, 253, -EINVAL, VMM_VERB_VECTORS, "goes past"},
    /* MASK's and UNMASK's vector */
    {"MASK 2049", 0, 0, -EINVAL, VMM_VERB_MASK, "'2049' is not a vector number"},
    {"MASK x", 0, 0, -EINVAL, VMM_VERB_MASK, "'x' is not"},
    {"MASK -0", 0, 0, -EINVAL, VMM_VERB_MASK, "'-0' is not"},
    {"UNMASK 1.0", 0, 0, -EINVAL, VMM_VERB_UNMASK, "'1.0' is not"},
    {"UNMASK 18446744073709551617", 0, 0, -EINVAL, VMM_VERB_UNMASK, "'1844674407370955' is not"},
    /* fds with a command that takes none */
    {"HELLO 1", 0, 1, -EINVAL, VMM_VERB_HELLO, "HELLO takes no fds; 1 came with it"},
    {"TAKE nic0", 0, 2, -EINVAL, VMM_VERB_TAKE, "TAKE takes no fds; 2 came"},
    {"ENABLE msix 4", 0, 4, -EINVAL, VMM_VERB_ENABLE, "ENABLE takes no fds"},
    {"MASK 1", 0, 1, -EINVAL, VMM_VERB_MASK, "MASK takes no fds"},
    {"UNMASK 1", 0, 253, -EINVAL, VMM_VERB_UNMASK, "UNMASK takes no fds; 253 came"},
    {"GIVE", 0, 1, -EINVAL, VMM_VERB_GIVE, "GIVE takes no fds"},
};

static void
assert_printable(const char *why, const char *what)
{
    cr_assert(why[0] != '\0', "%s: a refusal says why", what);
    cr_assert_lt(strlen(why), VMM_PROTO_WHY_MAX);
    for (const char *p = why; *p; p++) {
        cr_assert((unsigned char) *p >= 0x20 && *p != 0x7f, "%s: control byte in '%s'", what, why);
    }
}

Test(vmm_proto, every_refusal_with_its_errno_and_sentence)
{
    for (size_t i = 0; i < ELEMENTSOF(bads); i++) {
        const Bad *b = &bads[i];
        size_t size = b->size ? b->size : strlen(b->msg);
        VmmCommand c;
        int r = vmm_proto_parse(b->msg, size, b->n_fds, &c);

        cr_assert_eq(r, b->error, "'%s' (%zu fds): %d, want %d (%s)", b->msg, b->n_fds, r,
                     b->error, c.why);
        cr_assert_eq(c.error, r);
        cr_assert_eq(c.verb, b->verb, "'%s': verb %d, want %d", b->msg, c.verb, b->verb);
        cr_assert(strstr(c.why, b->why), "'%s': '%s' does not say '%s'", b->msg, c.why, b->why);
        assert_printable(c.why, b->msg);
    }
}

/* Every verb with each wrong number of words, up to one more than it takes. */
Test(vmm_proto, every_command_with_each_wrong_count)
{
    static const char *const words[] = {"HELLO", "1", "2", "3"};

    for (int v = 0; v < _VMM_VERB_MAX; v++) {
        VmmCommand good;
        char text[64];
        size_t want_words = 0;

        /* the good case's word count, from its formatted spelling */
        for (size_t i = 0; i < ELEMENTSOF(goods); i++) {
            if (goods[i].want.verb == (VmmVerb) v) {
                cr_assert_eq(vmm_proto_format(&goods[i].want, text, sizeof(text)), 0);
                want_words = 1;
                for (const char *p = text; *p; p++) {
                    want_words += *p == ' ';
                }
                break;
            }
        }
        for (size_t n = 1; n <= VMM_PROTO_MAX_WORDS; n++) {
            size_t used = (size_t) snprintf(text, sizeof(text), "%s", vmm_proto_verb_name(v));

            if (n == want_words) {
                continue;
            }
            for (size_t k = 1; k < n; k++) {
                used += (size_t) snprintf(text + used, sizeof(text) - used, " %s", words[k]);
            }
            cr_assert_eq(vmm_proto_parse(text, strlen(text), 0, &good), -EINVAL, "'%s'", text);
            cr_assert_eq(good.verb, _VMM_VERB_INVALID, "'%s'", text);
            cr_assert(strstr(good.why, "takes"), "'%s': %s", text, good.why);
            cr_assert(strstr(good.why, vmm_proto_verb_name(v)), "'%s': %s", text, good.why);
        }
    }
}

Test(vmm_proto, a_message_of_the_largest_size_is_read_and_one_byte_more_is_refused)
{
    char text[VMM_PROTO_MAX_MESSAGE + 1];
    VmmCommand c;

    memset(text, ' ', sizeof(text));
    memcpy(text, "GIVE", 4);
    cr_assert_eq(vmm_proto_parse(text, VMM_PROTO_MAX_MESSAGE, 0, &c), 0, "%s", c.why);
    cr_assert_eq(c.verb, VMM_VERB_GIVE);
    cr_assert_eq(vmm_proto_parse(text, VMM_PROTO_MAX_MESSAGE + 1, 0, &c), -EMSGSIZE);
    cr_assert_eq(c.verb, _VMM_VERB_INVALID);
    cr_assert(strstr(c.why, "at most 512 bytes"), "%s", c.why);
    /* the last word ends at the last byte: no terminator is read past the size */
    memset(text, ' ', sizeof(text));
    memcpy(text + VMM_PROTO_MAX_MESSAGE - 6, "MASK 7", 6);
    cr_assert_eq(vmm_proto_parse(text, VMM_PROTO_MAX_MESSAGE, 0, &c), 0, "%s", c.why);
    cr_assert_eq(c.vector, 7);
    /* a word running to the end of a long message */
    memset(text, '9', sizeof(text));
    memcpy(text, "MASK ", 5);
    cr_assert_eq(vmm_proto_parse(text, VMM_PROTO_MAX_MESSAGE, 0, &c), -EINVAL);
    assert_printable(c.why, "long number");
}

Test(vmm_proto, the_message_is_not_changed_and_nothing_past_its_size_is_read)
{
    char text[] = "ENABLE\tmsix 8 trailing-ignored";
    char copy[sizeof(text)];
    VmmCommand c;

    memcpy(copy, text, sizeof(text));
    cr_assert_eq(vmm_proto_parse(text, strlen("ENABLE\tmsix 8"), 0, &c), 0, "%s", c.why);
    cr_assert_eq(c.count, 8);
    cr_assert_eq(memcmp(text, copy, sizeof(text)), 0, "the caller's bytes are untouched");
    cr_assert_eq(vmm_proto_parse(NULL, 0, 0, &c), -EINVAL, "no bytes at all: no command");
}

Test(vmm_proto, a_refusal_clears_what_a_previous_parse_left)
{
    VmmCommand c;

    cr_assert_eq(vmm_proto_parse("TAKE nic0", 9, 0, &c), 0);
    cr_assert_eq(vmm_proto_parse("TAKE -x", 7, 0, &c), -ENOENT);
    cr_assert_str_eq(c.device, "", "a refused TAKE names no device");
    cr_assert_eq(vmm_proto_parse("VECTORS 0 4", 11, 4, &c), 0);
    cr_assert_eq(vmm_proto_parse("VECTORS 0 4", 11, 3, &c), -EINVAL);
    cr_assert_eq(c.n_fds, 0, "a refused VECTORS consumes no fd");
    cr_assert_eq(c.count, 0);
}
