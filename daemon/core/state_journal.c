/* SPDX-License-Identifier: MIT */
/*
 * state_journal — see state_journal.h. The encoder writes into a buffer that grows; the
 * decoder reads through a cursor whose every read is bounded by the bytes left.
 */
#include "state_journal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../util/le.h"
#include "stream.h" /* crc32c() */

/* ---- encoding */

typedef struct Writer {
    uint8_t *buf;
    size_t size;
    size_t allocated;
    int r; /* the first failure; later writes do nothing */
} Writer;

static uint8_t *
writer_reserve(Writer *w, size_t n)
{
    if (w->r < 0) {
        return NULL;
    }
    if (w->size + n > w->allocated) {
        size_t a = w->allocated ? w->allocated : 256;
        uint8_t *p;

        while (a < w->size + n) {
            a *= 2;
        }
        p = realloc(w->buf, a);
        if (!p) {
            w->r = -ENOMEM;
            return NULL;
        }
        w->buf = p;
        w->allocated = a;
    }
    w->size += n;
    return w->buf + w->size - n;
}

static void
writer_u8(Writer *w, uint8_t v)
{
    uint8_t *p = writer_reserve(w, 1);

    if (p) {
        *p = v;
    }
}

static void
writer_u32(Writer *w, uint32_t v)
{
    uint8_t *p = writer_reserve(w, 4);

    if (p) {
        put_le32(p, v);
    }
}

static void
writer_u64(Writer *w, uint64_t v)
{
    uint8_t *p = writer_reserve(w, 8);

    if (p) {
        put_le64(p, v);
    }
}

static void
writer_str(Writer *w, const char *s, size_t max)
{
    size_t len = s ? strlen(s) : 0;
    uint8_t *p;

    if (len > max) {
        w->r = w->r < 0 ? w->r : -EINVAL;
        return;
    }
    p = writer_reserve(w, 2 + len);
    if (p) {
        put_le16(p, (uint16_t) len);
        memcpy(p + 2, s ? s : "", len);
    }
}

static void
writer_irq(Writer *w, const StateJournalDevice *d)
{
    size_t n = STATE_JOURNAL_IRQ_MAPS * STATE_JOURNAL_IRQ_MAP_SIZE(d->irq_count);
    uint8_t *p;

    if (d->irq_type > STATE_JOURNAL_MAX_IRQ_TYPE || d->irq_count > STATE_JOURNAL_MAX_VECTORS ||
        (d->irq_type == 0) != (d->irq_count == 0) || (n > 0 && !d->irq_bits)) {
        w->r = w->r < 0 ? w->r : -EINVAL;
        return;
    }
    writer_u8(w, d->irq_type);
    writer_u32(w, d->irq_count);
    p = writer_reserve(w, n);
    if (p && n > 0) {
        memcpy(p, d->irq_bits, n);
    }
}

static void
writer_ids(Writer *w, const AuthzIds *ids)
{
    if (ids->n > AUTHZ_MAX_IDS) {
        w->r = w->r < 0 ? w->r : -EINVAL;
        return;
    }
    writer_u32(w, (uint32_t) ids->n);
    for (size_t i = 0; i < ids->n; i++) {
        writer_u32(w, ids->ids[i]);
    }
}

static void
writer_body(Writer *w, const StateJournal *j)
{
    writer_u32(w, (uint32_t) j->n_devices);
    for (size_t i = 0; i < j->n_devices; i++) {
        const StateJournalDevice *d = &j->devices[i];

        writer_str(w, d->id, STATE_JOURNAL_MAX_NAME);
        writer_u8(w, d->kernel ? 1 : 0);
        writer_u8(w, d->address_kind);
        writer_str(w, d->source, STATE_JOURNAL_MAX_SOURCE);
        writer_u32(w, d->group);
        writer_irq(w, d);
        writer_ids(w, &d->vmm_allow.users);
        writer_ids(w, &d->vmm_allow.groups);
    }
    writer_u32(w, (uint32_t) j->n_groups);
    for (size_t i = 0; i < j->n_groups; i++) {
        writer_str(w, j->groups[i].name, STATE_JOURNAL_MAX_NAME);
        writer_u32(w, (uint32_t) j->groups[i].n_members);
        for (size_t k = 0; k < j->groups[i].n_members; k++) {
            writer_str(w, j->groups[i].members[k], STATE_JOURNAL_MAX_NAME);
        }
    }
    writer_u32(w, (uint32_t) j->n_jobs);
    for (size_t i = 0; i < j->n_jobs; i++) {
        writer_str(w, j->jobs[i].id, STATE_JOURNAL_MAX_NAME);
        writer_u8(w, j->jobs[i].role);
        writer_u8(w, j->jobs[i].subject);
        writer_u8(w, j->jobs[i].phase);
        writer_str(w, j->jobs[i].name, STATE_JOURNAL_MAX_NAME);
        if (j->jobs[i].flags & ~STATE_JOURNAL_JOB_AUTO_RESUME) {
            w->r = w->r < 0 ? w->r : -EINVAL;
        }
        writer_u8(w, j->jobs[i].flags);
        writer_str(w, j->jobs[i].peer, STATE_JOURNAL_MAX_PEER);
        writer_u64(w, j->jobs[i].started_unix_ms);
    }
}

static bool
state_journal_within_limits(const StateJournal *j)
{
    if (j->n_devices > STATE_JOURNAL_MAX_DEVICES || j->n_groups > STATE_JOURNAL_MAX_GROUPS ||
        j->n_jobs > STATE_JOURNAL_MAX_JOBS) {
        return false;
    }
    for (size_t i = 0; i < j->n_groups; i++) {
        if (j->groups[i].n_members > STATE_JOURNAL_MAX_MEMBERS) {
            return false;
        }
    }
    return true;
}

/* The header before the CRC field (the sequence number among it), then the body. */
static uint32_t
state_journal_crc(const uint8_t *journal, size_t body)
{
    return crc32c(crc32c(0, journal, 24), journal + STATE_JOURNAL_HEADER_SIZE, body);
}

int
state_journal_encode(const StateJournal *j, uint8_t **ret_buf, size_t *ret_size)
{
    Writer w = {0};
    uint8_t *h;
    size_t body;

    if (!state_journal_within_limits(j)) {
        return -EINVAL;
    }
    (void) writer_reserve(&w, STATE_JOURNAL_HEADER_SIZE);
    writer_body(&w, j);
    if (w.r >= 0 && w.size - STATE_JOURNAL_HEADER_SIZE > STATE_JOURNAL_MAX_BODY) {
        w.r = -EINVAL;
    }
    if (w.r < 0) {
        free(w.buf);
        return w.r;
    }
    body = w.size - STATE_JOURNAL_HEADER_SIZE;
    h = w.buf;
    memset(h, 0, STATE_JOURNAL_HEADER_SIZE);
    memcpy(h, STATE_JOURNAL_MAGIC, 8);
    put_le32(h + 8, STATE_JOURNAL_VERSION);
    put_le32(h + 12, (uint32_t) body);
    put_le64(h + 16, j->seq);
    put_le32(h + 24, state_journal_crc(h, body));
    *ret_buf = w.buf;
    *ret_size = w.size;
    return 0;
}

/* ---- decoding */

typedef struct Reader {
    const uint8_t *p;
    size_t left;
    char *err;
    size_t err_size;
    int r; /* the first failure; later reads return zeros */
    uint32_t version; /* from the header */
} Reader;

static void reader_fail(Reader *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
reader_fail(Reader *rd, const char *fmt, ...)
{
    va_list ap;

    if (rd->r < 0) {
        return;
    }
    rd->r = -EBADMSG;
    if (rd->err && rd->err_size > 0) {
        va_start(ap, fmt);
        (void) vsnprintf(rd->err, rd->err_size, fmt, ap);
        va_end(ap);
    }
}

static const uint8_t *
reader_take(Reader *rd, size_t n, const char *what)
{
    const uint8_t *p;

    if (rd->r < 0) {
        return NULL;
    }
    if (n > rd->left) {
        reader_fail(rd, "the journal ends inside %s", what);
        return NULL;
    }
    p = rd->p;
    rd->p += n;
    rd->left -= n;
    return p;
}

static uint8_t
reader_u8(Reader *rd, const char *what)
{
    const uint8_t *p = reader_take(rd, 1, what);

    return p ? *p : 0;
}

static uint32_t
reader_count(Reader *rd, uint32_t max, const char *what)
{
    const uint8_t *p = reader_take(rd, 4, what);
    uint32_t v = p ? get_le32(p) : 0;

    if (v > max) {
        reader_fail(rd, "the journal claims %u %s, more than %u", v, what, max);
        return 0;
    }
    return v;
}

static uint64_t
reader_u64(Reader *rd, const char *what)
{
    const uint8_t *p = reader_take(rd, 8, what);

    return p ? get_le64(p) : 0;
}

/* A string of at most @max bytes without NUL, copied; NULL after a failure. */
static char *
reader_str(Reader *rd, size_t max, const char *what)
{
    const uint8_t *p = reader_take(rd, 2, what);
    size_t len = p ? get_le16(p) : 0;
    char *s;

    if (!p) {
        return NULL;
    }
    if (len > max) {
        reader_fail(rd, "the journal has a %s of %zu bytes, more than %zu", what, len, max);
        return NULL;
    }
    p = reader_take(rd, len, what);
    if (!p) {
        return NULL;
    }
    if (memchr(p, '\0', len)) {
        reader_fail(rd, "the journal has a %s with a NUL byte", what);
        return NULL;
    }
    s = strndup((const char *) p, len);
    if (!s) {
        rd->r = rd->r < 0 ? rd->r : -ENOMEM;
    }
    return s;
}

/* A count of at most @max, then an array of that many zeroed @size-byte items (one when the
 * count is 0, so that NULL means only "failed"); NULL, with rd->r set, after a failure. */
static void *
reader_array(Reader *rd, uint32_t max, size_t size, const char *what, uint32_t *ret_n)
{
    uint32_t n = reader_count(rd, max, what);
    void *a = calloc(n ? n : 1, size);

    if (!a) {
        rd->r = rd->r < 0 ? rd->r : -ENOMEM;
    }
    *ret_n = n;
    return a;
}

/* True when a bit at or beyond @count is set in the @size-byte bitmap @map. */
static bool
bits_beyond(const uint8_t *map, size_t size, uint32_t count)
{
    for (uint32_t v = count; v < size * 8; v++) {
        if (map[v / 8] & (1u << (v % 8))) {
            return true;
        }
    }
    return false;
}

/* A device's interrupts (version 3 on): the shape is checked here, what the bits mean by
 * the caller (irq_model_import). */
static void
reader_irq(Reader *rd, StateJournalDevice *d, uint32_t i)
{
    size_t map;
    const uint8_t *p;

    if (rd->version < 3) {
        return;
    }
    d->irq_type = reader_u8(rd, "a device's interrupt type");
    d->irq_count = reader_count(rd, STATE_JOURNAL_MAX_VECTORS, "interrupt vectors");
    if (rd->r >= 0 && (d->irq_type > STATE_JOURNAL_MAX_IRQ_TYPE ||
                       (d->irq_type == 0) != (d->irq_count == 0))) {
        reader_fail(rd, "device %u has interrupt type %u with %u vectors", i, d->irq_type,
                    d->irq_count);
    }
    map = STATE_JOURNAL_IRQ_MAP_SIZE(d->irq_count);
    p = reader_take(rd, STATE_JOURNAL_IRQ_MAPS * map, "interrupt bitmaps");
    if (!p || map == 0) {
        return;
    }
    for (size_t k = 0; k < STATE_JOURNAL_IRQ_MAPS; k++) {
        if (bits_beyond(p + k * map, map, d->irq_count)) {
            reader_fail(rd, "device %u has an interrupt bit beyond its %u vectors", i,
                        d->irq_count);
            return;
        }
    }
    d->irq_bits = malloc(STATE_JOURNAL_IRQ_MAPS * map);
    if (!d->irq_bits) {
        rd->r = rd->r < 0 ? rd->r : -ENOMEM;
        return;
    }
    memcpy(d->irq_bits, p, STATE_JOURNAL_IRQ_MAPS * map);
}

/* One of a device's VMM allow-lists (version 5 on): at most AUTHZ_MAX_IDS ids, none of them
 * (uid_t) -1, which names no one (chown(2)'s "unchanged"). */
static void
reader_ids(Reader *rd, AuthzIds *ids, const char *what, uint32_t i)
{
    uint32_t n;

    if (rd->version < 5) {
        return;
    }
    n = reader_count(rd, AUTHZ_MAX_IDS, what);
    for (uint32_t k = 0; k < n && rd->r >= 0; k++) {
        uint32_t id = reader_count(rd, UINT32_MAX, what);

        if (rd->r >= 0 && (id == UINT32_MAX || authz_ids_add(ids, id) < 0)) {
            reader_fail(rd, "device %u has %s %u in its VMM allow-list, no valid id", i, what,
                        id);
        }
    }
}

/* A list: a count of at most @max, then that many items, each read by @read_one into its
 * slot of a zeroed array of @size-byte items (NULL, with rd->r set, after a failure).
 * *ret_n counts the items begun, so that state_journal_clear() frees what a failure left
 * half-read. */
static void *
reader_list(Reader *rd, uint32_t max, size_t size, const char *what, size_t *ret_n,
            void (*read_one)(Reader *rd, void *item, uint32_t i))
{
    uint32_t n;
    uint8_t *a = reader_array(rd, max, size, what, &n);

    for (uint32_t i = 0; i < n && rd->r >= 0; i++) {
        (*ret_n)++;
        read_one(rd, a + i * size, i);
    }
    return a;
}

static void
reader_device(Reader *rd, void *item, uint32_t i)
{
    StateJournalDevice *d = item;
    uint8_t kernel;

    d->id = reader_str(rd, STATE_JOURNAL_MAX_NAME, "device id");
    kernel = reader_u8(rd, "a device's back-end");
    d->kernel = kernel == 1;
    d->address_kind = reader_u8(rd, "a device's address kind");
    d->source = reader_str(rd, STATE_JOURNAL_MAX_SOURCE, "device source");
    d->group = rd->version >= 2 ? reader_count(rd, UINT32_MAX, "IOMMU group")
                                : STATE_JOURNAL_NO_GROUP;
    if (kernel > 1) {
        reader_fail(rd, "device %u has back-end %u (0 sim, 1 kernel)", i, kernel);
    }
    reader_irq(rd, d, i);
    reader_ids(rd, &d->vmm_allow.users, "VMM users", i);
    reader_ids(rd, &d->vmm_allow.groups, "VMM groups", i);
}

static void
reader_group(Reader *rd, void *item, uint32_t i)
{
    StateJournalGroup *g = item;
    uint32_t m;

    (void) i;
    g->name = reader_str(rd, STATE_JOURNAL_MAX_NAME, "group name");
    g->members = reader_array(rd, STATE_JOURNAL_MAX_MEMBERS, sizeof(*g->members),
                              "group members", &m);
    for (uint32_t k = 0; k < m && rd->r >= 0; k++) {
        g->members[g->n_members++] = reader_str(rd, STATE_JOURNAL_MAX_NAME, "member id");
    }
}

static void
reader_job(Reader *rd, void *item, uint32_t i)
{
    StateJournalJob *job = item;

    job->id = reader_str(rd, STATE_JOURNAL_MAX_NAME, "job id");
    job->role = reader_u8(rd, "a job's role");
    job->subject = reader_u8(rd, "a job's subject");
    job->phase = reader_u8(rd, "a job's phase");
    job->name = reader_str(rd, STATE_JOURNAL_MAX_NAME, "job name");
    if (rd->version < 4) {
        return; /* no flags, peer NULL, start 0 */
    }
    job->flags = reader_u8(rd, "a job's flags");
    if (job->flags & ~STATE_JOURNAL_JOB_AUTO_RESUME) {
        reader_fail(rd, "job %u has unknown flags 0x%02x", i, job->flags);
    }
    job->peer = reader_str(rd, STATE_JOURNAL_MAX_PEER, "job peer");
    job->started_unix_ms = reader_u64(rd, "a job's start");
}

/* The header: magic, version, sizes and the body's CRC. */
static void
reader_header(Reader *rd, StateJournal *j)
{
    const uint8_t *h = reader_take(rd, STATE_JOURNAL_HEADER_SIZE, "the header");
    uint32_t body;

    if (!h) {
        return;
    }
    if (memcmp(h, STATE_JOURNAL_MAGIC, 8) != 0) {
        reader_fail(rd, "the journal does not start with '%s'", STATE_JOURNAL_MAGIC);
        return;
    }
    rd->version = get_le32(h + 8);
    if (rd->version < STATE_JOURNAL_VERSION_MIN || rd->version > STATE_JOURNAL_VERSION) {
        reader_fail(rd, "the journal has version %u, this daemon reads versions %u to %u",
                    rd->version, STATE_JOURNAL_VERSION_MIN, STATE_JOURNAL_VERSION);
        return;
    }
    body = get_le32(h + 12);
    if (body != rd->left || body > STATE_JOURNAL_MAX_BODY) {
        reader_fail(rd, "the journal's header announces %u body bytes, %zu follow", body,
                    rd->left);
        return;
    }
    if (state_journal_crc(h, body) != get_le32(h + 24)) {
        reader_fail(rd, "the journal's checksum does not match its content");
        return;
    }
    j->seq = get_le64(h + 16);
}

int
state_journal_decode(const uint8_t *buf, size_t size, StateJournal *ret, char *err,
                     size_t err_size)
{
    Reader rd = {.p = buf, .left = size, .err = err, .err_size = err_size};

    state_journal_clear(ret);
    reader_header(&rd, ret);
    ret->devices = reader_list(&rd, STATE_JOURNAL_MAX_DEVICES, sizeof(*ret->devices), "devices",
                               &ret->n_devices, reader_device);
    ret->groups = reader_list(&rd, STATE_JOURNAL_MAX_GROUPS, sizeof(*ret->groups), "groups",
                              &ret->n_groups, reader_group);
    ret->jobs = reader_list(&rd, STATE_JOURNAL_MAX_JOBS, sizeof(*ret->jobs), "jobs", &ret->n_jobs,
                            reader_job);
    if (rd.r >= 0 && rd.left > 0) {
        reader_fail(&rd, "the journal has %zu bytes after its last job", rd.left);
    }
    return rd.r < 0 ? rd.r : 0;
}

void
state_journal_clear(StateJournal *j)
{
    for (size_t i = 0; i < j->n_devices; i++) {
        free(j->devices[i].id);
        free(j->devices[i].source);
        free(j->devices[i].irq_bits);
    }
    free(j->devices);
    for (size_t i = 0; i < j->n_groups; i++) {
        free(j->groups[i].name);
        for (size_t k = 0; k < j->groups[i].n_members; k++) {
            free(j->groups[i].members[k]);
        }
        free(j->groups[i].members);
    }
    free(j->groups);
    for (size_t i = 0; i < j->n_jobs; i++) {
        free(j->jobs[i].id);
        free(j->jobs[i].name);
        free(j->jobs[i].peer);
    }
    free(j->jobs);
    *j = (StateJournal){0};
}
