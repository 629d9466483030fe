/* SPDX-License-Identifier: MIT */
/*
 * fuzz_vmm — arbitrary bytes as one request on the VMM socket (docs/vmm-protocol.md), read by
 * vmm_proto_parse() (daemon/core/vmm_proto.c) as fdpass.c reads every message a VMM sends.
 * The input's first byte is how many fds came with the message (0-255: past 253, the kernel's
 * limit, says they were cut short); the rest is the message, of any size (fdpass.c hands over
 * at most 513 bytes: one more than allowed, so a longer message is seen to be).
 * Properties, besides no crash and no out-of-bounds access:
 *   - the parse is a function of the bytes and the fd count: the same twice, the bytes
 *     untouched;
 *   - a refusal is one of the documented errnos, with one printable sentence, and consumes
 *     no fd; a message over 512 bytes or 253 fds is refused as too long, one with a NUL is
 *     refused;
 *   - an accepted command says nothing ("" why), consumes exactly the fds received (none
 *     left over, none missing), and keeps its fields' bounds (version 1, a valid device id,
 *     counts and vectors within IRQ_MAX_VECTORS, VECTORS' range too);
 *   - an accepted command formats to a message of at most 512 bytes that parses to the same
 *     command, and blanks added around the message change nothing.
 */
#include "core/vmm_proto.h"
#include "fuzz.h"

static bool
same_command(const VmmCommand *a, const VmmCommand *b)
{
    return a->verb == b->verb && a->error == b->error && strcmp(a->why, b->why) == 0 &&
           a->version == b->version && strcmp(a->device, b->device) == 0 &&
           a->index == b->index && a->start == b->start && a->count == b->count &&
           a->vector == b->vector && a->n_fds == b->n_fds;
}

static char outcome[64];

static void
check_refusal(const VmmCommand *c, size_t size, size_t n_fds)
{
    int e = -c->error;

    fuzz_check(e == EMSGSIZE || e == EINVAL || e == E2BIG || e == EPROTONOSUPPORT || e == ENOENT,
               "a refusal is a documented errno");
    fuzz_check_message(c->why, sizeof(c->why));
    fuzz_check(c->n_fds == 0, "a refusal consumes no fd");
    fuzz_check(c->verb == _VMM_VERB_INVALID || (c->verb >= 0 && c->verb < _VMM_VERB_MAX),
               "a refusal names a verb of the table or none");
    if (size > VMM_PROTO_MAX_MESSAGE || n_fds > VMM_PROTO_MAX_FDS) {
        fuzz_check(e == EMSGSIZE, "a message over the limits is refused as too long");
    }
    fuzz_check(e != EMSGSIZE || size > VMM_PROTO_MAX_MESSAGE || n_fds > VMM_PROTO_MAX_FDS,
               "only a message over the limits is too long");
    (void) snprintf(outcome, sizeof(outcome), "refused: %s", strerrorname_np(e));
    fuzz_outcome = outcome;
}

/* The fields of an accepted command are within their bounds. */
static void
check_fields(const VmmCommand *c, size_t n_fds)
{
    fuzz_check(c->verb >= 0 && c->verb < _VMM_VERB_MAX, "an accepted command has a verb");
    fuzz_check(c->why[0] == '\0', "an accepted command says nothing");
    fuzz_check(c->n_fds == n_fds, "an accepted command consumes exactly the fds received");
    switch (c->verb) {
    case VMM_VERB_HELLO:
        fuzz_check(c->version == VMM_PROTO_VERSION, "HELLO is accepted for version 1 only");
        break;
    case VMM_VERB_TAKE:
        fuzz_check(strutil_id_is_valid(c->device), "TAKE names a valid device id");
        break;
    case VMM_VERB_ENABLE:
        fuzz_check(c->index >= 0 && c->index < _IRQ_TYPE_MAX && c->count <= IRQ_MAX_VECTORS,
                   "ENABLE's index is known and its count within IRQ_MAX_VECTORS");
        break;
    case VMM_VERB_VECTORS:
        fuzz_check(c->count == c->n_fds && c->count <= VMM_PROTO_MAX_FDS &&
                   c->start + c->count <= IRQ_MAX_VECTORS,
                   "VECTORS consumes count fds, at most 253, for vectors below IRQ_MAX_VECTORS");
        break;
    default:
        fuzz_check(c->vector <= IRQ_MAX_VECTORS && c->n_fds == 0 && c->count == 0,
                   "MASK, UNMASK and GIVE take no fd and no count");
        break;
    }
    fuzz_check(c->verb == VMM_VERB_VECTORS || c->n_fds == 0, "only VECTORS consumes fds");
}

static void
check_accepted(const VmmCommand *c, const uint8_t *msg, size_t size, size_t n_fds)
{
    char text[VMM_PROTO_MAX_MESSAGE + 1], padded[VMM_PROTO_MAX_MESSAGE + 3];
    VmmCommand back;

    check_fields(c, n_fds);
    fuzz_check(vmm_proto_format(c, text, sizeof(text)) == 0, "an accepted command formats");
    fuzz_check(vmm_proto_parse(text, strlen(text), c->n_fds, &back) == 0 && same_command(&back, c),
               "a formatted command parses to the same command");
    if (size + 2 <= VMM_PROTO_MAX_MESSAGE) {
        padded[0] = '\t';
        memcpy(padded + 1, msg, size);
        padded[size + 1] = '\n';
        fuzz_check(vmm_proto_parse(padded, size + 2, n_fds, &back) == 0 && same_command(&back, c),
                   "blanks around a message change nothing");
    }
    fuzz_outcome = vmm_proto_verb_name(c->verb);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    VmmCommand c, again;
    uint8_t *copy;
    size_t n_fds;
    int r;

    if (size == 0) {
        return 0;
    }
    n_fds = data[0];
    data++;
    size--;
    copy = malloc(size ? size : 1);
    fuzz_check(copy != NULL, "malloc");
    memcpy(copy, data, size);
    r = vmm_proto_parse((const char *) data, size, n_fds, &c);
    fuzz_check(r == c.error && r <= 0, "the result is the command's error");
    fuzz_check(memcmp(copy, data, size) == 0, "the message is not changed");
    (void) vmm_proto_parse((const char *) data, size, n_fds, &again);
    fuzz_check(same_command(&c, &again), "the same message parses the same way twice");
    if (size > 0 && memchr(data, '\0', size)) {
        fuzz_check(r == -EINVAL || r == -EMSGSIZE, "a message with a NUL is refused");
    }
    if (r < 0) {
        check_refusal(&c, size, n_fds);
    } else {
        check_accepted(&c, data, size, n_fds);
    }
    free(copy);
    return 0;
}
