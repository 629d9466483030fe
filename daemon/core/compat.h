/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * compat — may a migration state move from the source's devices into the destination's?
 * Pure logic, no I/O: the devices of a manifest are compared with the local ones field by
 * field, and EVERY mismatch is reported as (device, field, source value, destination value),
 * so a refusal lists all that is wrong at once.
 *
 * A device is described by
 *   - its VFIO migration flags: equal on both sides (they decide which states exist);
 *   - its back-end ("sim", "kernel"), an opaque string: equal on both sides;
 *   - its compatibility descriptor: named fields, each with a value and a rule, filled by the
 *     device's back-end (backend.h, compat_descriptor) and, later, by its vendor plugin:
 *       equal     the destination's value must equal the source's;
 *       at_least  the destination's value must be >= the source's: numbers and dotted
 *                 versions compare part by part ("22.36.1010" >= "22.35.9"); two values
 *                 that are not both of that form must be equal;
 *       info      shown, never compared.
 *     The destination's rule decides (it is the destination's device that must accept the
 *     state); a field only one side has is a mismatch unless that side calls it info.
 * Nothing here knows a back-end or a vendor: a back-end whose data size is a property of the
 * device (the sim's) says so with a descriptor field of rule equal.
 *
 * Devices pair by name (live migration, group restore), or the single source device with the
 * single destination device (a device's save restored into another device).
 *
 * The descriptor travels in the manifest's compat slot; its encoding is in
 * docs/stream-format.md ("Compatibility descriptor"): compat_descriptor_encode()/decode().
 *
 * Used by:  migration.c (manifest checks), backend/ (descriptors), device.c.
 * Threads:  any; no globals.
 * Errors:   negative errno; decode errors also leave a sentence in the caller's buffer.
 */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#define COMPAT_ENCODING_VERSION 1
#define COMPAT_MAX_FIELDS 24        /* per device: vendor descriptors need a handful */
#define COMPAT_MAX_NAME 32          /* a field's name, bytes */
#define COMPAT_MAX_VALUE 128        /* a field's value, bytes */
#define COMPAT_MAX_DEVICE_NAME 64   /* as the stream format's names (STREAM_MAX_NAME) */
#define COMPAT_MAX_DEVICES 256      /* as the stream format's manifest (STREAM_MAX_DEVICES) */
#define COMPAT_MAX_MISMATCHES 32    /* reported in full; any beyond are only counted */
/* The largest encoding: version, count, then per field its rule, two sizes, name and value.
 * 3914 bytes: it fits the manifest's 4096-byte compat slot (checked in compat.c). */
#define COMPAT_DESCRIPTOR_MAX_SIZE (2 + COMPAT_MAX_FIELDS * (3 + COMPAT_MAX_NAME + COMPAT_MAX_VALUE))

typedef enum CompatRule {
    COMPAT_RULE_EQUAL = 0,
    COMPAT_RULE_AT_LEAST = 1,
    COMPAT_RULE_INFO = 2,
    _COMPAT_RULE_MAX,
    _COMPAT_RULE_INVALID = -EINVAL,
} CompatRule;

typedef struct CompatField {
    char name[COMPAT_MAX_NAME + 1];   /* [a-z][a-z0-9_.-]*, unique in its descriptor */
    char value[COMPAT_MAX_VALUE + 1]; /* any bytes but control characters */
    CompatRule rule;
} CompatField;

typedef struct CompatDescriptor {
    unsigned n_fields;
    CompatField fields[COMPAT_MAX_FIELDS];
} CompatDescriptor;

/* One device as compat sees it. The strings are borrowed. */
typedef struct CompatDevice {
    const char *name;
    uint32_t mig_flags;
    const char *backend;
    const CompatDescriptor *descriptor; /* NULL: no fields */
} CompatDevice;

typedef enum CompatPairing {
    COMPAT_PAIR_BY_NAME,  /* every source device with the destination device of its name */
    COMPAT_PAIR_SINGLE,   /* one source device with one destination device, names aside */
    _COMPAT_PAIRING_MAX,
} CompatPairing;

/* The value a side shows for a field or a device it does not have. */
#define COMPAT_ABSENT "(absent)"

typedef struct CompatMismatch {
    char device[COMPAT_MAX_DEVICE_NAME + 1]; /* "" for the device count */
    /* "devices" (the count), "device" (one side lacks the device: values "present" and
     * COMPAT_ABSENT), "migration_flags", "backend", or a descriptor field's name */
    char field[COMPAT_MAX_NAME + 1];
    char source[COMPAT_MAX_VALUE + 1];
    char destination[COMPAT_MAX_VALUE + 1];
} CompatMismatch;

typedef struct CompatReport {
    unsigned n;      /* mismatches in items[], in the order found */
    unsigned total;  /* mismatches found: more than n when items[] ran full */
    CompatMismatch items[COMPAT_MAX_MISMATCHES];
} CompatReport;

const char *compat_rule_name(CompatRule rule); /* "equal", "at_least", "info"; NULL if unknown */

/* Appends a field. -EINVAL a malformed name, a control character in @value or an unknown
 * rule; -EEXIST the name is taken; -E2BIG the descriptor is full or a string too long.
 * @d is unchanged on failure. */
int compat_descriptor_add(CompatDescriptor *d, const char *name, CompatRule rule,
                          const char *value);
const CompatField *compat_descriptor_find(const CompatDescriptor *d, const char *name);

/* Bytes of the encoding (0 for a descriptor without fields). */
size_t compat_descriptor_size(const CompatDescriptor *d);
/* Writes the encoding; returns its size, or -ENOBUFS when @size is too small. */
int compat_descriptor_encode(const CompatDescriptor *d, uint8_t *out, size_t size);
/* Decodes @size bytes (0: no fields). -EBADMSG malformed, -E2BIG over a bound,
 * -EPROTONOSUPPORT another encoding version; @why then says what is wrong. *ret is written
 * only on success. */
int compat_descriptor_decode(const uint8_t *in, size_t size, CompatDescriptor *ret, char *why,
                             size_t why_size);

/*
 * Compares the source's devices with the destination's. Returns 0 when every source device
 * has a partner and nothing differs; then ret_pairs[i] is the index in @dst of source device
 * i (@ret_pairs has room for @n_src entries). Returns -EMEDIUMTYPE with @report listing the
 * mismatches; -E2BIG when a side has more than COMPAT_MAX_DEVICES devices; -EINVAL for a
 * device without a name, a name used twice on one side, or an unknown @pairing. @report is
 * always rewritten.
 */
int compat_compare(const CompatDevice *src, size_t n_src, const CompatDevice *dst, size_t n_dst,
                   CompatPairing pairing, size_t *ret_pairs, CompatReport *report);

/* One sentence for a report, at most @size bytes with its NUL: each mismatch in turn,
 * separated by "; ", and "; and N more" when some were only counted. @where names the
 * destination's side in sentences about devices ("group 'vm1'"). */
void compat_report_format(const CompatReport *report, const char *where, char *buf, size_t size);
