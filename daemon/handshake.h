/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * handshake — the payloads of the migration control messages (transport.h, TMSG_*), as the
 * two daemons decode them: pure functions over bytes a peer sent, so that every one of them
 * is fuzzed (tests/fuzz/fuzz_control.c). The sockets, the job and its state stay in
 * migration_source.c and migration_dest.c; what a message means is there.
 *
 *   HELLO       token (64 hex), stream header, MANIFEST record (header + payload), exactly
 *   ACCEPT      the data channels' key (64 hex)
 *   DATA_HELLO  key (64 hex), stream id (le64), device index (le32)
 *   STREAM_END  the STREAM_END record (header + payload), exactly
 *   REFUSE/FAIL text for a person, not NUL-terminated
 *
 * Threads: any. Errors: negative errno; nothing logs.
 */

#include <stddef.h>
#include <stdint.h>

#include "core/stream.h"
#include "transport.h"

#define HANDSHAKE_DATA_HELLO_SIZE (TRANSPORT_TOKEN_HEX + 12)

/* HELLO: -EPERM when it holds no token or not @token (checked first: the sender is a
 * stranger, and nothing of the migration may change); any other error means the token was
 * right: -EBADMSG (malformed: @why says what), -ENOMEM. On success @src has the source's
 * manifest (its devices array holds STREAM_MAX_DEVICES) and *ret_stream_id the stream's id. */
int handshake_parse_hello(const uint8_t *msg, size_t size, const char *token,
                          StreamManifest *src, uint64_t *ret_stream_id, char *why,
                          size_t why_size);
/* ACCEPT: the key, NUL-terminated, into @key; -EPROTO when malformed. */
int handshake_parse_accept(const uint8_t *msg, size_t size,
                           char key[TRANSPORT_TOKEN_HEX + 1]);
void handshake_encode_data_hello(const char *key, uint64_t stream_id, uint32_t index,
                                 uint8_t out[HANDSHAKE_DATA_HELLO_SIZE]);
/* DATA_HELLO: -EBADMSG when malformed; the caller compares the key (constant time), the
 * stream id and the index with its job. */
int handshake_parse_data_hello(const uint8_t *msg, size_t size,
                               char key[TRANSPORT_TOKEN_HEX + 1], uint64_t *ret_stream_id,
                               uint32_t *ret_index);
/* STREAM_END for a job of @n_devices devices: the record checked (CRC, exact length) and
 * its totals into @ret (n_devices entries); -EBADMSG otherwise. */
int handshake_parse_stream_end(const uint8_t *msg, size_t size, uint32_t n_devices,
                               StreamDeviceTotals *ret);
/* A REFUSE or FAIL text as the job's error may quote it: at most @max bytes, each
 * unprintable byte (a NUL too) as '?'; returns @buf. A peer cannot put control characters
 * in front of a person. */
char *handshake_text(const uint8_t *msg, size_t size, size_t max, char *buf, size_t buf_size);
