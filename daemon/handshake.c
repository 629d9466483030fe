/* SPDX-License-Identifier: MIT */
/*
 * handshake — see handshake.h.
 */
#include "handshake.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cleanup.h"
#include "util/le.h"
#include "util/macro.h"

int
handshake_parse_hello(const uint8_t *msg, size_t size, const char *token, StreamManifest *src,
                      uint64_t *ret_stream_id, char *why, size_t why_size)
{
    _cleanup_free_ StreamReader *rd = malloc(sizeof(*rd));
    const uint8_t *p = msg + TRANSPORT_TOKEN_HEX + STREAM_HEADER_SIZE;
    StreamRecordHeader rh;
    char got[TRANSPORT_TOKEN_HEX + 1];
    int r;

    if (!rd) {
        return -ENOMEM;
    }
    /* The token first, and alone: whoever does not send the right one learns nothing more
     * and changes nothing, whatever else is wrong with what it sent. */
    if (size < TRANSPORT_TOKEN_HEX) {
        (void) snprintf(why, why_size, "its HELLO is too short to hold a token (%zu bytes): "
                        "not a vfio-migd source, or one of another version", size);
        return -EPERM;
    }
    memcpy(got, msg, TRANSPORT_TOKEN_HEX);
    got[TRANSPORT_TOKEN_HEX] = '\0';
    if (!transport_token_equal(got, token)) {
        (void) snprintf(why, why_size, "wrong token: give --token the token that 'vfio-migctl "
                        "incoming' printed on the destination for this migration");
        return -EPERM;
    }
    if (size < TRANSPORT_TOKEN_HEX + STREAM_HEADER_SIZE + STREAM_RECORD_HEADER_SIZE) {
        (void) snprintf(why, why_size, "its HELLO is too short (%zu bytes): the source speaks "
                        "another version of the vfio-migd protocol; run the same version on both "
                        "hosts", size);
        return -EBADMSG;
    }
    stream_reader_init(rd);
    r = stream_reader_header(rd, msg + TRANSPORT_TOKEN_HEX);
    /* The record must fill the message: its payload is read from it. A header that does
     * not decode is the reader's to refuse, with its sentence. */
    if (r >= 0 && stream_decode_record_header(p, &rh) >= 0 &&
        rh.length != size - (size_t) (p - msg) - STREAM_RECORD_HEADER_SIZE) {
        r = -EBADMSG;
    }
    if (r >= 0) {
        r = stream_reader_record(rd, p, p + STREAM_RECORD_HEADER_SIZE, src, &rh);
    }
    if (r < 0 || rh.type != STREAM_RECORD_MANIFEST) {
        (void) snprintf(why, why_size, "bad manifest: %s", rd->error[0] ? rd->error : "malformed");
        return r < 0 ? r : -EBADMSG;
    }
    *ret_stream_id = rd->stream_id;
    return 0;
}

void
handshake_encode_accept(const char *key, uint8_t out[HANDSHAKE_ACCEPT_SIZE])
{
    memcpy(out, key, TRANSPORT_TOKEN_HEX);
    put_le32(out + TRANSPORT_TOKEN_HEX, TRANSPORT_PROTOCOL_VERSION);
}

static void
take_key(const uint8_t *msg, char key[TRANSPORT_TOKEN_HEX + 1])
{
    memcpy(key, msg, TRANSPORT_TOKEN_HEX);
    key[TRANSPORT_TOKEN_HEX] = '\0';
}

int
handshake_parse_accept(const uint8_t *msg, size_t size, char key[TRANSPORT_TOKEN_HEX + 1],
                       uint32_t *ret_version)
{
    if (size != TRANSPORT_TOKEN_HEX && size != HANDSHAKE_ACCEPT_SIZE) {
        return -EPROTO;
    }
    take_key(msg, key);
    *ret_version = size == TRANSPORT_TOKEN_HEX ? 1 : get_le32(msg + TRANSPORT_TOKEN_HEX);
    return 0;
}

static const HandoverEvent handover_events[] = {
    [TMSG_PREPARED] = HANDOVER_EV_GOT_PREPARED,
    [TMSG_COMMIT] = HANDOVER_EV_GOT_COMMIT,
    [TMSG_DONE] = HANDOVER_EV_GOT_DONE,
};

int
handshake_handover_event(uint32_t type, size_t size, HandoverEvent *ret)
{
    if (type == TMSG_PING && size == 0) {
        return -EAGAIN;
    }
    if (type == TMSG_FAIL) {
        *ret = HANDOVER_EV_GOT_FAIL;
    } else if (type >= TMSG_PREPARED && type < ELEMENTSOF(handover_events) && size == 0) {
        *ret = handover_events[type];
    } else {
        *ret = HANDOVER_EV_PEER_LOST;
    }
    return 0;
}

size_t
handshake_encode_data_hello(const HandshakeDataHello *h, uint32_t peer_version,
                            uint8_t out[HANDSHAKE_DATA_HELLO_SPREAD_SIZE])
{
    memcpy(out, h->key, TRANSPORT_TOKEN_HEX);
    put_le64(out + TRANSPORT_TOKEN_HEX, h->stream_id);
    put_le32(out + TRANSPORT_TOKEN_HEX + 8, h->index);
    if (peer_version < 3) {
        return HANDSHAKE_DATA_HELLO_SIZE;
    }
    put_le32(out + TRANSPORT_TOKEN_HEX + 12, h->channel);
    put_le32(out + TRANSPORT_TOKEN_HEX + 16, h->n_channels);
    return HANDSHAKE_DATA_HELLO_SPREAD_SIZE;
}

int
handshake_check_first_header(const uint8_t hdr[HANDSHAKE_HEADER_SIZE], uint32_t *ret_size,
                             char *why, size_t why_size)
{
    uint32_t type = get_le32(hdr), size = get_le32(hdr + 4);
    char quoted[HANDSHAKE_HEADER_SIZE * 4 + 1];

    if (((type == TMSG_HELLO || type == TMSG_CHECK) && size <= TRANSPORT_MAX_MESSAGE) ||
        (type == TMSG_DATA_HELLO &&
         (size == HANDSHAKE_DATA_HELLO_SIZE || size == HANDSHAKE_DATA_HELLO_SPREAD_SIZE))) {
        *ret_size = size;
        return 0;
    }
    if (transport_message_name(type)) {
        (void) snprintf(why, why_size, "its first message is %s of %u bytes, not a HELLO or a "
                        "DATA_HELLO", transport_message_name(type), size);
    } else {
        transport_quote(hdr, HANDSHAKE_HEADER_SIZE, quoted, sizeof(quoted));
        (void) snprintf(why, why_size, "it sent '%s', not a vfio-migd HELLO: it is no "
                        "vfio-migd source", quoted);
    }
    return -EPROTO;
}

int
handshake_parse_data_hello(const uint8_t *msg, size_t size, HandshakeDataHello *ret)
{
    HandshakeDataHello h = {.n_channels = 1};

    if (size != HANDSHAKE_DATA_HELLO_SIZE && size != HANDSHAKE_DATA_HELLO_SPREAD_SIZE) {
        return -EBADMSG;
    }
    take_key(msg, h.key); /* the same key field as ACCEPT's */
    h.stream_id = get_le64(msg + TRANSPORT_TOKEN_HEX);
    h.index = get_le32(msg + TRANSPORT_TOKEN_HEX + 8);
    if (size == HANDSHAKE_DATA_HELLO_SPREAD_SIZE) {
        h.channel = get_le32(msg + TRANSPORT_TOKEN_HEX + 12);
        h.n_channels = get_le32(msg + TRANSPORT_TOKEN_HEX + 16);
    }
    if (h.n_channels == 0 || h.n_channels > SPREAD_MAX_CHANNELS || h.channel >= h.n_channels) {
        return -EBADMSG;
    }
    *ret = h;
    return 0;
}

int
handshake_parse_stream_end(const uint8_t *msg, size_t size, uint32_t n_devices,
                           StreamDeviceTotals *ret)
{
    StreamRecordHeader rh;

    if (size < STREAM_RECORD_HEADER_SIZE || stream_decode_record_header(msg, &rh) < 0 ||
        rh.type != STREAM_RECORD_STREAM_END || rh.length != size - STREAM_RECORD_HEADER_SIZE ||
        crc32c(0, msg + STREAM_RECORD_HEADER_SIZE, rh.length) != rh.payload_crc) {
        return -EBADMSG;
    }
    return stream_decode_stream_end(msg + STREAM_RECORD_HEADER_SIZE, rh.length, ret, n_devices);
}

char *
handshake_text(const uint8_t *msg, size_t size, size_t max, char *buf, size_t buf_size)
{
    size_t n = 0;

    for (; n < size && n < max && n + 1 < buf_size; n++) {
        buf[n] = isprint(msg[n]) ? (char) msg[n] : '?';
    }
    buf[n] = '\0';
    return buf;
}

/* ---- CHECK_REPORT */

static size_t
put_text(uint8_t *p, const char *s)
{
    size_t n = strlen(s);

    p[0] = (uint8_t) n; /* every field is within 255 bytes (compat.h bounds) */
    memcpy(p + 1, s, n);
    return 1 + n;
}

size_t
handshake_encode_report(const CompatReport *report, uint8_t out[HANDSHAKE_REPORT_MAX])
{
    size_t used = 8;

    put_le32(out, report->total);
    put_le32(out + 4, report->n);
    for (unsigned i = 0; i < report->n; i++) {
        const CompatMismatch *m = &report->items[i];

        used += put_text(out + used, m->device);
        used += put_text(out + used, m->field);
        used += put_text(out + used, m->source);
        used += put_text(out + used, m->destination);
    }
    return used;
}

/* One length-prefixed string into @buf (@max bytes at most, no control character). */
static int
get_text(const uint8_t *msg, size_t size, size_t *pos, char *buf, size_t max)
{
    size_t n;

    if (*pos >= size || (n = msg[*pos]) > max || n > size - *pos - 1) {
        return -EBADMSG;
    }
    for (size_t i = 0; i < n; i++) {
        uint8_t c = msg[*pos + 1 + i];
        if (c < 0x20 || c == 0x7f) {
            return -EBADMSG;
        }
    }
    memcpy(buf, msg + *pos + 1, n);
    buf[n] = '\0';
    *pos += 1 + n;
    return 0;
}

int
handshake_parse_report(const uint8_t *msg, size_t size, CompatReport *ret)
{
    _cleanup_free_ CompatReport *rep = calloc(1, sizeof(*rep));
    size_t pos = 8;

    if (!rep) {
        return -ENOMEM;
    }
    if (size < 8) {
        return -EBADMSG;
    }
    rep->total = get_le32(msg);
    rep->n = get_le32(msg + 4);
    if (rep->n > COMPAT_MAX_MISMATCHES || rep->n > rep->total) {
        return -EBADMSG;
    }
    for (unsigned i = 0; i < rep->n; i++) {
        CompatMismatch *m = &rep->items[i];

        if (get_text(msg, size, &pos, m->device, COMPAT_MAX_DEVICE_NAME) < 0 ||
            get_text(msg, size, &pos, m->field, COMPAT_MAX_NAME) < 0 ||
            get_text(msg, size, &pos, m->source, COMPAT_MAX_VALUE) < 0 ||
            get_text(msg, size, &pos, m->destination, COMPAT_MAX_VALUE) < 0) {
            return -EBADMSG;
        }
    }
    if (pos != size) {
        return -EBADMSG;
    }
    *ret = *rep;
    return 0;
}
