/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * vmm_proto — one request of the VMM socket (docs/vmm-protocol.md) read as pure rules: the
 * bytes of one SOCK_SEQPACKET message and the number of fds that came with it become a
 * command (its verb, the device it names, its numbers, how many of the fds it consumes) or a
 * refusal (a negative errno and a sentence for the VMM). No I/O, no daemon state: fdpass.c
 * receives the message, asks here what it says, checks what depends on the connection (HELLO
 * first, a device taken) and acts.
 *
 * The rules, each one unit-tested (tests/unit/test_vmm_proto.c) and fuzzed
 * (tests/fuzz/fuzz_vmm.c):
 *   - a message is at most VMM_PROTO_MAX_MESSAGE bytes with at most VMM_PROTO_MAX_FDS fds
 *     (-EMSGSIZE), and has no NUL byte (-EINVAL: a C string would end there and hide the rest);
 *   - words are separated by blanks (space, tab, CR, LF); an empty message is refused
 *     (-EINVAL), so is one of more than VMM_PROTO_MAX_WORDS words (-E2BIG);
 *   - the first word is a verb of the table (-EINVAL otherwise), followed by exactly the
 *     number of words it takes (-EINVAL);
 *   - numbers are decimal digits only (no sign, blank or "0x"), within the field's bound:
 *     a vector or a first vector at most IRQ_MAX_VECTORS, an ENABLE count at most
 *     IRQ_MAX_VECTORS, a VECTORS count at most VMM_PROTO_MAX_FDS, and VECTORS' range within
 *     IRQ_MAX_VECTORS (-EINVAL); HELLO's version is VMM_PROTO_VERSION (-EPROTONOSUPPORT);
 *   - TAKE's device is a valid device id (strutil_id_is_valid(); -ENOENT: no such device);
 *   - VECTORS <start> <count> comes with exactly <count> fds and consumes them; every other
 *     command comes with none (-EINVAL): no fd is left over, and none is missing.
 * Words quoted in a refusal are cut to a few bytes and their control bytes become '?'.
 *
 * Used by:  fdpass.c (the daemon's end of the VMM socket), tests.
 * Threads:  any; no globals.
 * Errors:   negative errno in VmmCommand.error, with its sentence in VmmCommand.why.
 */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "irq.h"
#include "util/strutil.h"

#define VMM_PROTO_VERSION 1
#define VMM_PROTO_MAX_MESSAGE 512 /* VFIO_MIGD_VMM_MAX_MESSAGE (include/vfio-migd/vmm.h) */
#define VMM_PROTO_MAX_FDS 253     /* VFIO_MIGD_VMM_MAX_FDS: the kernel's SCM_MAX_FD */
/* One more word than any command takes, so that one word too many is told as a wrong count
 * ("ENABLE takes 2 argument(s)") and only a longer message as too many words. */
#define VMM_PROTO_MAX_WORDS 4
/* The longest refusal sentence (a quoted device name of DEVICE_ID_MAX bytes and the words
 * around it fit with room to spare). */
#define VMM_PROTO_WHY_MAX 256

typedef enum VmmVerb {
    VMM_VERB_HELLO,
    VMM_VERB_TAKE,
    VMM_VERB_ENABLE,
    VMM_VERB_VECTORS,
    VMM_VERB_MASK,
    VMM_VERB_UNMASK,
    VMM_VERB_GIVE,
    _VMM_VERB_MAX,
    _VMM_VERB_INVALID = -EINVAL,
} VmmVerb;

/* A parsed request. Only the fields of its verb are set; the others are zero. */
typedef struct VmmCommand {
    /* The command the message names with the right number of words; _VMM_VERB_INVALID when
     * the message was refused before that (its size, its words, its verb, their count). A
     * refusal with a verb is one of the command's arguments or fds: the daemon checks the
     * connection's own preconditions (HELLO first, a device taken) before telling it. */
    VmmVerb verb;
    int error;                      /* 0, or the refusal's negative errno */
    char why[VMM_PROTO_WHY_MAX];    /* the refusal's sentence; "" when accepted */
    uint32_t version;               /* HELLO */
    char device[DEVICE_ID_MAX + 1]; /* TAKE */
    IrqType index;                  /* ENABLE (IRQ_TYPE_NONE, "none", with 0 is a no-op) */
    uint32_t start;                 /* VECTORS: the first vector */
    uint32_t count;                 /* ENABLE: vectors; VECTORS: vectors, and fds */
    uint32_t vector;                /* MASK, UNMASK */
    size_t n_fds;                   /* fds it consumes: the first n_fds received */
} VmmCommand;

/* Parses the @size bytes at @msg (not NUL-terminated; may hold anything), received with
 * @n_fds fds (more than VMM_PROTO_MAX_FDS says the fds were cut short), into @ret, which is
 * always written: the command, or the refusal (why a refusal is a result here: see
 * VmmCommand.verb). Returns ret->error: 0 or a negative errno as listed above. */
int vmm_proto_parse(const char *msg, size_t size, size_t n_fds, VmmCommand *ret);

/* Writes @c (an accepted command) as the message a VMM sends for it, NUL-terminated, into
 * @buf: what vmm_proto_parse() reads back as @c. 0; -EINVAL for an invalid verb; -ENOBUFS
 * when @size is too small. */
int vmm_proto_format(const VmmCommand *c, char *buf, size_t size);

/* "HELLO", "TAKE", ...; "invalid" for anything else. */
const char *vmm_proto_verb_name(VmmVerb v);
