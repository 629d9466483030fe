/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * handshake — the payloads of the migration control messages (transport.h, TMSG_*), as the
 * two daemons decode them: pure functions over bytes a peer sent, so that every one of them
 * is fuzzed (tests/fuzz/fuzz_control.c). The sockets, the job and its state stay in
 * migration_source.c and migration_dest.c; what a message means is there.
 *
 *   HELLO       token (64 hex), stream header, MANIFEST record (header + payload), exactly
 *   ACCEPT      the data channels' key (64 hex), the protocol version (le32); protocol 1's
 *               ACCEPT was the key alone
 *   DATA_HELLO  key (64 hex), stream id (le64), device index (le32); from protocol 3 on, also
 *               the channel (le32) of the device's channels (le32): one device's stream spread
 *               over several channels (core/spread.h). Protocol 2's form is channel 0 of 1.
 *   STREAM_END  the STREAM_END record (header + payload), exactly
 *   REFUSE/FAIL text for a person, not NUL-terminated
 *   PREPARED, COMMIT, DONE   empty: the hand-over's commit (core/handover.h)
 *   CHECK       as HELLO (a dry run: the token is checked, not spent)
 *   CHECK_REPORT le32 mismatches found, le32 n listed (<= COMPAT_MAX_MISMATCHES), then n times
 *               four strings (device, field, source, destination), each a u8 length and
 *               its bytes, within compat.h's bounds
 *
 * Threads: any. Errors: negative errno; nothing logs.
 */

#include <stddef.h>
#include <stdint.h>

#include "core/handover.h"
#include "core/compat.h"
#include "core/spread.h"
#include "core/stream.h"
#include "transport.h"

#define HANDSHAKE_DATA_HELLO_SIZE (TRANSPORT_TOKEN_HEX + 12)        /* protocol 2: one channel */
#define HANDSHAKE_DATA_HELLO_SPREAD_SIZE (TRANSPORT_TOKEN_HEX + 20) /* protocol 3 */

typedef struct HandshakeDataHello {
    char key[TRANSPORT_TOKEN_HEX + 1];
    uint64_t stream_id;
    uint32_t index;        /* the device */
    uint32_t channel;      /* which of its channels: < n_channels */
    uint32_t n_channels;   /* 1..SPREAD_MAX_CHANNELS */
} HandshakeDataHello;
#define HANDSHAKE_ACCEPT_SIZE (TRANSPORT_TOKEN_HEX + 4)
#define HANDSHAKE_HEADER_SIZE 8 /* a message's header: le32 type, le32 payload size */

/* The header of a data-port connection's first message, read before anyone has shown the
 * token (migration_accept.c): a HELLO or a dry run's CHECK of at most TRANSPORT_MAX_MESSAGE
 * bytes, or a DATA_HELLO of exactly its size. 0 with the payload's size in *@ret_size, so
 * that no more is ever read; or -EPROTO with the reason in @why, before any payload is read,
 * and *@ret_size untouched. */
int handshake_check_first_header(const uint8_t hdr[HANDSHAKE_HEADER_SIZE], uint32_t *ret_size,
                                 char *why, size_t why_size);

/* HELLO: -EPERM when it holds no token or not @token (checked first: the sender is a
 * stranger, and nothing of the migration may change); any other error means the token was
 * right: -EBADMSG (malformed: @why says what), -ENOMEM. On success @src has the source's
 * manifest (its devices array holds STREAM_MAX_DEVICES) and *ret_stream_id the stream's id. */
int handshake_parse_hello(const uint8_t *msg, size_t size, const char *token,
                          StreamManifest *src, uint64_t *ret_stream_id, char *why,
                          size_t why_size);
void handshake_encode_accept(const char *key, uint8_t out[HANDSHAKE_ACCEPT_SIZE]);
/* ACCEPT: the key, NUL-terminated, into @key and the peer's protocol version into
 * *ret_version (1 for a protocol-1 ACCEPT, the key alone); -EPROTO when malformed. The caller
 * refuses a version that is not TRANSPORT_PROTOCOL_VERSION. */
int handshake_parse_accept(const uint8_t *msg, size_t size, char key[TRANSPORT_TOKEN_HEX + 1],
                           uint32_t *ret_version);
/* What a control message received during the hand-over means (core/handover.h): an empty
 * PREPARED, COMMIT or DONE its event, FAIL HANDOVER_EV_GOT_FAIL, a PING -EAGAIN (nothing);
 * anything else (another type, a payload where none belongs) is a peer out of protocol,
 * HANDOVER_EV_PEER_LOST. */
int handshake_handover_event(uint32_t type, size_t size, HandoverEvent *ret);
/* DATA_HELLO in the form a destination of control protocol @peer_version reads: protocol 2's
 * (which can only say channel 0 of 1) below 3. Returns the size written. */
size_t handshake_encode_data_hello(const HandshakeDataHello *h, uint32_t peer_version,
                                   uint8_t out[HANDSHAKE_DATA_HELLO_SPREAD_SIZE]);
/* DATA_HELLO, of either size: -EBADMSG when malformed (a channel count of 0 or over
 * SPREAD_MAX_CHANNELS, a channel not below it); @ret is written only on success. The caller
 * compares the key (constant time), the stream id, the index and the channels with its job. */
int handshake_parse_data_hello(const uint8_t *msg, size_t size, HandshakeDataHello *ret);
/* STREAM_END for a job of @n_devices devices: the record checked (CRC, exact length) and
 * its totals into @ret (n_devices entries); -EBADMSG otherwise. */
int handshake_parse_stream_end(const uint8_t *msg, size_t size, uint32_t n_devices,
                               StreamDeviceTotals *ret);
/* CHECK_REPORT: the encoding of @report into @out (HANDSHAKE_REPORT_MAX bytes); its size. */
#define HANDSHAKE_REPORT_MAX                                                                    \
    (8 + COMPAT_MAX_MISMATCHES * (4 + COMPAT_MAX_DEVICE_NAME + COMPAT_MAX_NAME + 2 * COMPAT_MAX_VALUE))
size_t handshake_encode_report(const CompatReport *report, uint8_t out[HANDSHAKE_REPORT_MAX]);
/* CHECK_REPORT: -EBADMSG when malformed (a length past the end or over its bound, a control
 * character, trailing bytes, listed > found); @ret is written only on success. */
int handshake_parse_report(const uint8_t *msg, size_t size, CompatReport *ret);
/* A REFUSE or FAIL text as the job's error may quote it: at most @max bytes, each
 * unprintable byte (a NUL too) as '?'; returns @buf. A peer cannot put control characters
 * in front of a person. */
char *handshake_text(const uint8_t *msg, size_t size, size_t max, char *buf, size_t buf_size);
