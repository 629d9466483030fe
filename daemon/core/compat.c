/* SPDX-License-Identifier: MIT */
/*
 * compat — see compat.h.
 *
 * The plan: compat_compare() pairs the devices (by name, or the single one), notes a
 * mismatch for every device without a partner, then compares each pair: the flags, the
 * back-end, and every descriptor field either side has. Nothing stops at the first mismatch.
 */
#include "compat.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../util/macro.h"
#include "fsm.h"
#include "stream.h"

static_assert(COMPAT_DESCRIPTOR_MAX_SIZE <= STREAM_MAX_COMPAT,
              "a descriptor at its limits must fit the manifest's compat slot");
static_assert(COMPAT_MAX_DEVICE_NAME == STREAM_MAX_NAME && COMPAT_MAX_DEVICES == STREAM_MAX_DEVICES,
              "compat compares what a manifest can hold");
static_assert(COMPAT_MAX_NAME < 256 && COMPAT_MAX_VALUE < 256, "sizes are encoded in one byte");

static const char *const rule_names[_COMPAT_RULE_MAX] = {
    [COMPAT_RULE_EQUAL] = "equal",
    [COMPAT_RULE_AT_LEAST] = "at_least",
    [COMPAT_RULE_INFO] = "info",
};

DEFINE_NAME_LOOKUP(compat_rule_name, CompatRule, rule_names, NULL);

/* ---- descriptors ---- */

static bool
name_is_valid(const char *s, size_t len)
{
    if (len == 0 || len > COMPAT_MAX_NAME || s[0] < 'a' || s[0] > 'z') {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == '-')) {
            return false;
        }
    }
    return true;
}

static bool
value_is_valid(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c < 0x20 || c == 0x7F) {
            return false;
        }
    }
    return true;
}

const CompatField *
compat_descriptor_find(const CompatDescriptor *d, const char *name)
{
    for (unsigned i = 0; d && i < d->n_fields; i++) {
        if (strcmp(d->fields[i].name, name) == 0) {
            return &d->fields[i];
        }
    }
    return NULL;
}

int
compat_descriptor_add(CompatDescriptor *d, const char *name, CompatRule rule, const char *value)
{
    size_t nlen = strnlen(name, COMPAT_MAX_NAME + 1), vlen = strnlen(value, COMPAT_MAX_VALUE + 1);
    CompatField *f;

    if (nlen > COMPAT_MAX_NAME || vlen > COMPAT_MAX_VALUE || d->n_fields >= COMPAT_MAX_FIELDS) {
        return -E2BIG;
    }
    if (!name_is_valid(name, nlen) || !value_is_valid(value, vlen) || !compat_rule_name(rule)) {
        return -EINVAL;
    }
    if (compat_descriptor_find(d, name)) {
        return -EEXIST;
    }
    f = &d->fields[d->n_fields++];
    memcpy(f->name, name, nlen + 1);
    memcpy(f->value, value, vlen + 1);
    f->rule = rule;
    return 0;
}

size_t
compat_descriptor_size(const CompatDescriptor *d)
{
    size_t size = 2;

    if (!d || d->n_fields == 0) {
        return 0;
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        size += 3 + strlen(d->fields[i].name) + strlen(d->fields[i].value);
    }
    return size;
}

int
compat_descriptor_encode(const CompatDescriptor *d, uint8_t *out, size_t size)
{
    size_t need = compat_descriptor_size(d);
    uint8_t *p = out;

    if (need > size) {
        return -ENOBUFS;
    }
    if (need == 0) {
        return 0;
    }
    *p++ = COMPAT_ENCODING_VERSION;
    *p++ = (uint8_t) d->n_fields;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const CompatField *f = &d->fields[i];
        size_t nlen = strlen(f->name), vlen = strlen(f->value);

        *p++ = (uint8_t) f->rule;
        *p++ = (uint8_t) nlen;
        memcpy(p, f->name, nlen);
        p += nlen;
        *p++ = (uint8_t) vlen;
        memcpy(p, f->value, vlen);
        p += vlen;
    }
    return (int) need;
}

_printf_(4, 5) static int
decode_error(int r, char *why, size_t why_size, const char *fmt, ...)
{
    va_list ap;

    if (why && why_size > 0) {
        va_start(ap, fmt);
        (void) vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return r;
}

/* Decodes field @i at *pos; every length is checked against what is left first. */
static int
decode_field(const uint8_t *in, size_t size, size_t *pos, unsigned i, CompatDescriptor *d,
             char *why, size_t why_size)
{
    size_t p = *pos, nlen, vlen;
    char name[COMPAT_MAX_NAME + 1], value[COMPAT_MAX_VALUE + 1];
    int r;

    if (size - p < 2 || (nlen = in[p + 1]) > size - p - 2 || size - p - 2 - nlen < 1) {
        return decode_error(-EBADMSG, why, why_size, "field %u runs past the end", i);
    }
    vlen = in[p + 2 + nlen];
    if (vlen > size - p - 3 - nlen) {
        return decode_error(-EBADMSG, why, why_size, "field %u runs past the end", i);
    }
    if (nlen > COMPAT_MAX_NAME || vlen > COMPAT_MAX_VALUE) {
        return decode_error(-E2BIG, why, why_size, "field %u: a name over %d or a value over "
                            "%d bytes", i, COMPAT_MAX_NAME, COMPAT_MAX_VALUE);
    }
    memcpy(name, in + p + 2, nlen);
    name[nlen] = '\0';
    memcpy(value, in + p + 3 + nlen, vlen);
    value[vlen] = '\0';
    if (memchr(name, '\0', nlen) || memchr(value, '\0', vlen)) {
        return decode_error(-EBADMSG, why, why_size, "field %u: a NUL byte in its name or value",
                            i);
    }
    r = compat_descriptor_add(d, name, (CompatRule) in[p], value);
    if (r == -EEXIST) {
        return decode_error(-EBADMSG, why, why_size, "field '%s' appears twice", name);
    }
    if (r < 0) {
        return decode_error(-EBADMSG, why, why_size, "field %u: a malformed name, a control "
                            "character in its value, or unknown rule %u", i, in[p]);
    }
    *pos = p + 3 + nlen + vlen;
    return 0;
}

int
compat_descriptor_decode(const uint8_t *in, size_t size, CompatDescriptor *ret, char *why,
                         size_t why_size)
{
    CompatDescriptor d = {0}; /* *ret is written only on success */
    size_t pos = 2;
    int r;

    if (size > 0 && in[0] != COMPAT_ENCODING_VERSION) {
        return decode_error(-EPROTONOSUPPORT, why, why_size, "encoding version %u (this reader "
                            "reads %d)", in[0], COMPAT_ENCODING_VERSION);
    }
    if (size == 1 || (size > 1 && in[1] == 0)) {
        return decode_error(-EBADMSG, why, why_size, "no field count, or a count of 0");
    }
    if (size > 1 && in[1] > COMPAT_MAX_FIELDS) {
        return decode_error(-E2BIG, why, why_size, "%u fields, over the limit of %d", in[1],
                            COMPAT_MAX_FIELDS);
    }
    for (unsigned i = 0; size > 0 && i < in[1]; i++) {
        r = decode_field(in, size, &pos, i, &d, why, why_size);
        if (r < 0) {
            return r;
        }
    }
    if (size > 0 && pos != size) {
        return decode_error(-EBADMSG, why, why_size, "%zu bytes after the last field",
                            size - pos);
    }
    *ret = d;
    return 0;
}

/* ---- comparison ---- */

static void
report_add(CompatReport *rep, const char *device, const char *field, const char *source,
           const char *destination)
{
    CompatMismatch *m;

    rep->total++;
    if (rep->n >= COMPAT_MAX_MISMATCHES) {
        return; /* counted: the sentence says how many more */
    }
    m = &rep->items[rep->n++];
    (void) snprintf(m->device, sizeof(m->device), "%s", device);
    (void) snprintf(m->field, sizeof(m->field), "%s", field);
    (void) snprintf(m->source, sizeof(m->source), "%s", source);
    (void) snprintf(m->destination, sizeof(m->destination), "%s", destination);
}

/* "N" or "N.N...", decimal: its parts. False for anything else ("", "1.", "1..2", "v1", a
 * part over 2^64). */
static bool
parse_version(const char *s, uint64_t *parts, size_t max, size_t *ret_n)
{
    size_t n = 0;

    for (;;) {
        const char *start = s;
        uint64_t v = 0;

        for (; *s >= '0' && *s <= '9'; s++) {
            if (v > (UINT64_MAX - 9) / 10) {
                return false;
            }
            v = v * 10 + (uint64_t) (*s - '0');
        }
        if (s == start || n == max) {
            return false;
        }
        parts[n++] = v;
        if (*s == '\0') {
            break;
        }
        if (*s != '.') {
            return false;
        }
        s++;
    }
    *ret_n = n;
    return true;
}

/* <0, 0, >0 as @a is below, equal to or above @b; false when they are not both versions. */
static bool
version_compare(const char *a, const char *b, int *ret)
{
    uint64_t pa[COMPAT_MAX_VALUE / 2 + 1], pb[COMPAT_MAX_VALUE / 2 + 1];
    size_t na, nb;

    if (!parse_version(a, pa, ELEMENTSOF(pa), &na) || !parse_version(b, pb, ELEMENTSOF(pb), &nb)) {
        return false;
    }
    for (size_t i = 0; i < MAX(na, nb); i++) {
        uint64_t x = i < na ? pa[i] : 0, y = i < nb ? pb[i] : 0; /* "1.2" == "1.2.0" */
        if (x != y) {
            *ret = x < y ? -1 : 1;
            return true;
        }
    }
    *ret = 0;
    return true;
}

/* One descriptor field; @s or @d is NULL when that side lacks it. */
static void
compare_field(CompatReport *rep, const char *device, const CompatField *s, const CompatField *d)
{
    CompatRule rule = d ? d->rule : s->rule; /* the destination's rule decides */
    int c;

    if (rule == COMPAT_RULE_INFO) {
        return;
    }
    if (s && d) {
        if (strcmp(s->value, d->value) == 0) {
            return;
        }
        if (rule == COMPAT_RULE_AT_LEAST && version_compare(d->value, s->value, &c) && c >= 0) {
            return;
        }
    }
    report_add(rep, device, d ? d->name : s->name, s ? s->value : COMPAT_ABSENT,
               d ? d->value : COMPAT_ABSENT);
}

static void
compare_descriptors(CompatReport *rep, const char *device, const CompatDescriptor *s,
                    const CompatDescriptor *d)
{
    for (unsigned i = 0; d && i < d->n_fields; i++) {
        compare_field(rep, device, compat_descriptor_find(s, d->fields[i].name), &d->fields[i]);
    }
    for (unsigned i = 0; s && i < s->n_fields; i++) {
        if (!compat_descriptor_find(d, s->fields[i].name)) {
            compare_field(rep, device, &s->fields[i], NULL);
        }
    }
}

/* Flags in words ("stop_copy+p2p"), as the CLI and the sim's options spell them. */
static const char *
flags_text(uint32_t flags, char *buf, size_t size)
{
    (void) fsm_flags_to_string(flags, buf, (unsigned) size);
    if (!buf[0]) {
        (void) snprintf(buf, size, "none");
    }
    return buf;
}

/* A pair of devices; mismatches are named after the destination's device (the one that
 * would take the state). */
static void
compare_pair(CompatReport *rep, const CompatDevice *s, const CompatDevice *d)
{
    char sv[64], dv[64];

    if (s->mig_flags != d->mig_flags) {
        report_add(rep, d->name, "migration_flags", flags_text(s->mig_flags, sv, sizeof(sv)),
                   flags_text(d->mig_flags, dv, sizeof(dv)));
    }
    if (strcmp(s->backend ? s->backend : "", d->backend ? d->backend : "") != 0) {
        report_add(rep, d->name, "backend", s->backend ? s->backend : "",
                   d->backend ? d->backend : "");
    }
    compare_descriptors(rep, d->name, s->descriptor, d->descriptor);
}

static int
check_names(const CompatDevice *devs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!devs[i].name || !devs[i].name[0]) {
            return -EINVAL;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(devs[i].name, devs[j].name) == 0) {
                return -EINVAL;
            }
        }
    }
    return 0;
}

static void
report_count(CompatReport *rep, size_t n_src, size_t n_dst)
{
    char sv[32], dv[32];

    (void) snprintf(sv, sizeof(sv), "%zu", n_src);
    (void) snprintf(dv, sizeof(dv), "%zu", n_dst);
    report_add(rep, "", "devices", sv, dv);
}

/* pairs[i] = the destination device named as source device i, or SIZE_MAX. */
static void
pair_by_name(const CompatDevice *src, size_t n_src, const CompatDevice *dst, size_t n_dst,
             size_t *pairs, CompatReport *rep)
{
    bool used[COMPAT_MAX_DEVICES] = {false};

    if (n_src != n_dst) {
        report_count(rep, n_src, n_dst);
    }
    for (size_t i = 0; i < n_src; i++) {
        pairs[i] = SIZE_MAX;
        for (size_t k = 0; k < n_dst && pairs[i] == SIZE_MAX; k++) {
            if (strcmp(src[i].name, dst[k].name) == 0) {
                pairs[i] = k;
                used[k] = true;
            }
        }
        if (pairs[i] == SIZE_MAX) {
            report_add(rep, src[i].name, "device", "present", COMPAT_ABSENT);
        }
    }
    for (size_t k = 0; k < n_dst; k++) {
        if (!used[k]) {
            report_add(rep, dst[k].name, "device", COMPAT_ABSENT, "present");
        }
    }
}

int
compat_compare(const CompatDevice *src, size_t n_src, const CompatDevice *dst, size_t n_dst,
               CompatPairing pairing, size_t *ret_pairs, CompatReport *report)
{
    size_t pairs[COMPAT_MAX_DEVICES];

    report->n = report->total = 0;
    if (n_src > COMPAT_MAX_DEVICES || n_dst > COMPAT_MAX_DEVICES) {
        return -E2BIG;
    }
    if (pairing < 0 || pairing >= _COMPAT_PAIRING_MAX || check_names(src, n_src) < 0 ||
        check_names(dst, n_dst) < 0) {
        return -EINVAL;
    }
    if (pairing == COMPAT_PAIR_BY_NAME) {
        pair_by_name(src, n_src, dst, n_dst, pairs, report);
    } else if (n_src != 1 || n_dst != 1) {
        report_count(report, n_src, n_dst);
        n_src = 0; /* nothing to pair */
    } else {
        pairs[0] = 0;
    }
    for (size_t i = 0; i < n_src; i++) {
        if (pairs[i] != SIZE_MAX) {
            compare_pair(report, &src[i], &dst[pairs[i]]);
        }
    }
    if (report->total > 0) {
        return -EMEDIUMTYPE;
    }
    memcpy(ret_pairs, pairs, n_src * sizeof(*pairs));
    return 0;
}

/* ---- the sentence ---- */

_printf_(4, 5) static void
append(char *buf, size_t size, size_t *used, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (*used + 1 >= size) {
        return;
    }
    va_start(ap, fmt);
    n = vsnprintf(buf + *used, size - *used, fmt, ap);
    va_end(ap);
    *used = n < 0 ? *used : MIN(size - 1, *used + (size_t) n);
}

static void
format_one(const CompatMismatch *m, const char *where, char *buf, size_t size, size_t *used)
{
    if (strcmp(m->field, "devices") == 0 && !m->device[0]) {
        append(buf, size, used, "the source has %s devices, %s here has %s", m->source, where,
               m->destination);
    } else if (strcmp(m->field, "device") == 0 && strcmp(m->destination, COMPAT_ABSENT) == 0) {
        append(buf, size, used, "the source's device '%s' has no device of that name in %s here",
               m->device, where);
    } else if (strcmp(m->field, "device") == 0) {
        append(buf, size, used, "device '%s' of %s here has no device of that name in the "
               "source", m->device, where);
    } else {
        append(buf, size, used, "device '%s': %s: source '%s', destination '%s'", m->device,
               m->field, m->source, m->destination);
    }
}

void
compat_report_format(const CompatReport *report, const char *where, char *buf, size_t size)
{
    size_t used = 0;

    if (size == 0) {
        return;
    }
    buf[0] = '\0';
    for (unsigned i = 0; i < report->n; i++) {
        append(buf, size, &used, "%s", i > 0 ? "; " : "");
        format_one(&report->items[i], where, buf, size, &used);
    }
    if (report->total > report->n) {
        append(buf, size, &used, "; and %u more", report->total - report->n);
    }
}
