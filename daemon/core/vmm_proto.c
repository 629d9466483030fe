/* SPDX-License-Identifier: MIT */
/*
 * vmm_proto — see vmm_proto.h. The message is copied into a bounded buffer and split there
 * (never strtok on the caller's bytes: not re-entrant, and it mutates), then each verb's row
 * of verb_table reads its words.
 */
#include "vmm_proto.h"

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "util/macro.h"

/* The words after the verb, as vmm_proto_format() writes them. */
typedef enum VmmArg {
    ARG_NONE,
    ARG_VERSION,
    ARG_DEVICE,
    ARG_INDEX,
    ARG_START,
    ARG_COUNT,
    ARG_VECTOR,
} VmmArg;

#define VMM_MAX_ARGS (VMM_PROTO_MAX_WORDS - 2) /* the most any verb takes */

/* Reads the words after the verb (@w[1..]) into @c; 0 or a refusal (refuse()). */
typedef int (*VmmParseFn)(char *const *w, size_t n_fds, VmmCommand *c);

static int parse_hello(char *const *w, size_t n_fds, VmmCommand *c);
static int parse_take(char *const *w, size_t n_fds, VmmCommand *c);
static int parse_enable(char *const *w, size_t n_fds, VmmCommand *c);
static int parse_vectors(char *const *w, size_t n_fds, VmmCommand *c);
static int parse_vector(char *const *w, size_t n_fds, VmmCommand *c);
static int parse_nothing(char *const *w, size_t n_fds, VmmCommand *c);

static const struct {
    const char *name;
    VmmArg args[VMM_MAX_ARGS]; /* in order, ARG_NONE after the last */
    VmmParseFn parse;
} verb_table[] = {
    [VMM_VERB_HELLO] = {"HELLO", {ARG_VERSION}, parse_hello},
    [VMM_VERB_TAKE] = {"TAKE", {ARG_DEVICE}, parse_take},
    [VMM_VERB_ENABLE] = {"ENABLE", {ARG_INDEX, ARG_COUNT}, parse_enable},
    [VMM_VERB_VECTORS] = {"VECTORS", {ARG_START, ARG_COUNT}, parse_vectors},
    [VMM_VERB_MASK] = {"MASK", {ARG_VECTOR}, parse_vector},
    [VMM_VERB_UNMASK] = {"UNMASK", {ARG_VECTOR}, parse_vector},
    [VMM_VERB_GIVE] = {"GIVE", {ARG_NONE}, parse_nothing},
};
static_assert(ELEMENTSOF(verb_table) == _VMM_VERB_MAX, "verb_table out of sync with VmmVerb");

const char *
vmm_proto_verb_name(VmmVerb v)
{
    return (size_t) v < ELEMENTSOF(verb_table) ? verb_table[v].name : "invalid";
}

static size_t
verb_n_args(VmmVerb v)
{
    size_t n = 0;

    while (n < VMM_MAX_ARGS && verb_table[v].args[n] != ARG_NONE) {
        n++;
    }
    return n;
}

/* ---- refusals */

static int refuse(VmmCommand *c, int r, const char *fmt, ...) _printf_(3, 4);

/* Sets the refusal @r with its sentence; bytes a terminal would act on, which only quoted
 * words can bring, become '?'. Returns @r. */
static int
refuse(VmmCommand *c, int r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void) vsnprintf(c->why, sizeof(c->why), fmt, ap);
    va_end(ap);
    for (char *p = c->why; *p; p++) {
        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
            *p = '?';
        }
    }
    c->error = r;
    return r;
}

/* ---- words */

/* A decimal number of digits only, at most @max: no sign, blank or base prefix, which
 * strtoul() would take. 0, -EINVAL (not digits) or -ERANGE (over @max). */
static int
parse_number(const char *s, uint32_t max, uint32_t *ret)
{
    uint64_t v = 0;

    if (!*s) {
        return -EINVAL;
    }
    for (; *s; s++) {
        if (*s < '0' || *s > '9') {
            return -EINVAL;
        }
        v = v * 10 + (uint64_t) (*s - '0'); /* v <= UINT32_MAX here: no overflow */
        if (v > max) {
            return -ERANGE;
        }
    }
    *ret = (uint32_t) v;
    return 0;
}

static bool
is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

/* Splits @text (NUL-terminated, ours) in place into at most VMM_PROTO_MAX_WORDS words.
 * The number of words, or -E2BIG. */
static int
split_words(char *text, char *w[VMM_PROTO_MAX_WORDS])
{
    int n = 0;

    for (char *p = text; *p;) {
        if (is_blank(*p)) {
            p++;
            continue;
        }
        if (n == VMM_PROTO_MAX_WORDS) {
            return -E2BIG;
        }
        w[n++] = p;
        while (*p && !is_blank(*p)) {
            p++;
        }
        if (*p) {
            *p++ = '\0';
        }
    }
    return n;
}

/* ---- each verb's words */

static int
parse_hello(char *const *w, size_t n_fds, VmmCommand *c)
{
    (void) n_fds;
    if (parse_number(w[1], UINT32_MAX, &c->version) < 0 || c->version != VMM_PROTO_VERSION) {
        c->version = 0;
        return refuse(c, -EPROTONOSUPPORT,
                      "protocol version '%.16s' not spoken; this daemon speaks %d", w[1],
                      VMM_PROTO_VERSION);
    }
    return 0;
}

static int
parse_take(char *const *w, size_t n_fds, VmmCommand *c)
{
    (void) n_fds;
    /* Not a name a device can have: no such device, as the daemon would find. */
    if (!strutil_id_is_valid(w[1])) {
        return refuse(c, -ENOENT, "no device '%.64s' (vfio-migctl devices lists them)", w[1]);
    }
    (void) snprintf(c->device, sizeof(c->device), "%s", w[1]);
    return 0;
}

static int
parse_enable(char *const *w, size_t n_fds, VmmCommand *c)
{
    (void) n_fds;
    c->index = irq_type_from_name(w[1]);
    if (c->index < 0 || parse_number(w[2], IRQ_MAX_VECTORS, &c->count) < 0) {
        c->index = 0;
        c->count = 0;
        return refuse(c, -EINVAL, "ENABLE takes intx|msi|msix and a count, got '%.16s' '%.16s'",
                      w[1], w[2]);
    }
    return 0;
}

/* VECTORS <start> <count>: count fds, for vectors start .. start + count - 1. */
static int
parse_vectors(char *const *w, size_t n_fds, VmmCommand *c)
{
    if (parse_number(w[1], IRQ_MAX_VECTORS, &c->start) < 0 ||
        parse_number(w[2], VMM_PROTO_MAX_FDS, &c->count) < 0 || c->count != n_fds) {
        c->start = c->count = 0;
        return refuse(c, -EINVAL,
                      "VECTORS <start> <count> must come with count eventfds (at most %d per "
                      "message); got %zu fds",
                      VMM_PROTO_MAX_FDS, n_fds);
    }
    /* Checked here, before any vector is given: a range that runs off the end would give
     * the first vectors and refuse the rest. */
    if (c->start + c->count > IRQ_MAX_VECTORS) {
        uint32_t start = c->start, count = c->count;

        c->start = c->count = 0;
        return refuse(c, -EINVAL, "VECTORS %u %u goes past vector %d, the last a device has",
                      start, count, IRQ_MAX_VECTORS - 1);
    }
    c->n_fds = c->count;
    return 0;
}

static int
parse_vector(char *const *w, size_t n_fds, VmmCommand *c)
{
    (void) n_fds;
    if (parse_number(w[1], IRQ_MAX_VECTORS, &c->vector) < 0) {
        c->vector = 0;
        return refuse(c, -EINVAL, "'%.16s' is not a vector number", w[1]);
    }
    return 0;
}

static int
parse_nothing(char *const *w, size_t n_fds, VmmCommand *c)
{
    (void) w;
    (void) n_fds;
    (void) c;
    return 0;
}

/* ---- the request */

static VmmVerb
verb_from_name(const char *s)
{
    for (size_t v = 0; v < ELEMENTSOF(verb_table); v++) {
        if (strcmp(verb_table[v].name, s) == 0) {
            return (VmmVerb) v;
        }
    }
    return _VMM_VERB_INVALID;
}

/* The verb of the @n words @w and their count; _VMM_VERB_INVALID refused. */
static VmmVerb
parse_verb(char *const *w, int n, VmmCommand *c)
{
    VmmVerb v = verb_from_name(w[0]);

    if (v < 0) {
        (void) refuse(c, -EINVAL, "unknown command '%.16s' (docs/vmm-protocol.md)", w[0]);
        return _VMM_VERB_INVALID;
    }
    if ((size_t) n != 1 + verb_n_args(v)) {
        (void) refuse(c, -EINVAL, "%s takes %zu argument(s) (docs/vmm-protocol.md)",
                      verb_table[v].name, verb_n_args(v));
        return _VMM_VERB_INVALID;
    }
    return v;
}

int
vmm_proto_parse(const char *msg, size_t size, size_t n_fds, VmmCommand *ret)
{
    char text[VMM_PROTO_MAX_MESSAGE + 1], *w[VMM_PROTO_MAX_WORDS];
    int n;

    *ret = (VmmCommand) {.verb = _VMM_VERB_INVALID};
    if (size > VMM_PROTO_MAX_MESSAGE || n_fds > VMM_PROTO_MAX_FDS) {
        return refuse(ret, -EMSGSIZE,
                      "message refused: commands are one line of at most %d bytes with at "
                      "most %d fds (docs/vmm-protocol.md)",
                      VMM_PROTO_MAX_MESSAGE, VMM_PROTO_MAX_FDS);
    }
    if (size > 0 && memchr(msg, '\0', size)) {
        return refuse(ret, -EINVAL, "message refused: byte %zu is a NUL; commands are text",
                      (size_t) ((const char *) memchr(msg, '\0', size) - msg));
    }
    if (size > 0) {
        memcpy(text, msg, size);
    }
    text[size] = '\0';
    n = split_words(text, w);
    if (n < 0) {
        return refuse(ret, n, "message refused: more than %d words (docs/vmm-protocol.md)",
                      VMM_PROTO_MAX_WORDS);
    }
    if (n == 0) {
        return refuse(ret, -EINVAL, "message refused: no command in it (docs/vmm-protocol.md)");
    }
    VmmVerb v = parse_verb(w, n, ret);
    if (v < 0) {
        return ret->error;
    }
    ret->verb = v;
    if (verb_table[v].parse(w, n_fds, ret) < 0) {
        return ret->error;
    }
    if (n_fds != ret->n_fds) {
        return refuse(ret, -EINVAL, "%s takes no fds; %zu came with it (docs/vmm-protocol.md)",
                      verb_table[v].name, n_fds);
    }
    return 0;
}

/* ---- formatting */

/* The value of @arg of @c, as a word (@tmp holds a number's digits). */
static const char *
arg_word(const VmmCommand *c, VmmArg arg, char tmp[16])
{
    uint32_t n;

    switch (arg) {
    case ARG_DEVICE:
        return c->device;
    case ARG_INDEX:
        return irq_type_name(c->index);
    case ARG_VERSION:
        n = c->version;
        break;
    case ARG_START:
        n = c->start;
        break;
    case ARG_COUNT:
        n = c->count;
        break;
    default:
        n = c->vector;
        break;
    }
    (void) snprintf(tmp, 16, "%u", n);
    return tmp;
}

int
vmm_proto_format(const VmmCommand *c, char *buf, size_t size)
{
    size_t used;
    int k;

    if ((size_t) c->verb >= ELEMENTSOF(verb_table)) {
        return -EINVAL;
    }
    k = snprintf(buf, size, "%s", verb_table[c->verb].name);
    for (size_t i = 0; i < verb_n_args(c->verb) && k >= 0 && (size_t) k < size; i++) {
        char tmp[16];

        used = (size_t) k;
        k = snprintf(buf + used, size - used, " %s", arg_word(c, verb_table[c->verb].args[i], tmp));
        k = k < 0 ? k : (int) used + k;
    }
    return k < 0 || (size_t) k >= size ? -ENOBUFS : 0;
}
