/* SPDX-License-Identifier: MIT */
/*
 * fuzz_control — arbitrary bytes as a migration control connection: the frames
 * ([u32 type][u32 length][payload]) read by the real transport_recv() from a socket, and
 * each payload through the decoder its type has (daemon/handshake.c): HELLO (token, stream
 * header, manifest), ACCEPT (key, protocol version), DATA_HELLO, STREAM_END, REFUSE/FAIL
 * text; and every frame through the hand-over's reading of it (handshake_handover_event) and
 * the commit table (core/handover.h) on both sides in every state.
 *
 * The first input byte is the number of devices a STREAM_END is read for (as the job's);
 * the rest goes into one end of a socketpair, closed after it, and transport_recv() reads
 * frames from the other end until it refuses or the bytes end. The HELLO token is the
 * constant FUZZ_TOKEN (the seeds carry it).
 * Properties, besides no crash and no out-of-bounds access:
 *   - transport_recv() returns exactly the frames the bytes hold, refuses a length over its
 *     limit (-E2BIG) before reading it, and -ENODATA when the bytes end;
 *   - a refused payload changes nothing of what the caller keeps (stream id, key, totals)
 *     and a refused HELLO says why in one printable sentence;
 *   - an accepted payload re-encodes to the same bytes (manifest, DATA_HELLO, STREAM_END);
 *   - a REFUSE/FAIL text as quoted is printable and bounded;
 *   - only an empty COMMIT can make a prepared destination resume, and nothing a destination
 *     sends can make a committed source resume;
 *   - frame by frame through both sides' tables, the two never both run the VM.
 */
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz.h"
#include "fuzz_handshake.h"
#include "handshake.h"
#include "util/le.h"

#define FUZZ_TOKEN "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define MAX_INPUT (256u << 10)  /* what the socket buffers hold without a second thread */
#define MAX_FRAME (64u << 10)   /* transport_recv()'s limit here, so -E2BIG is reached */

static StreamManifestDevice devices[STREAM_MAX_DEVICES];

static void
check_hello(const uint8_t *p, uint32_t size)
{
    static uint8_t out[MAX_FRAME];
    StreamManifest m = {.devices = devices};
    uint64_t id = 0x5a5a5a5a;
    char why[256] = "";
    size_t at = TRANSPORT_TOKEN_HEX + STREAM_HEADER_SIZE + STREAM_RECORD_HEADER_SIZE;
    int n;

    if (handshake_parse_hello(p, size, FUZZ_TOKEN, &m, &id, why, sizeof(why)) < 0) {
        fuzz_check(id == 0x5a5a5a5a, "a refused HELLO changes nothing");
        fuzz_check_message(why, sizeof(why));
        fuzz_outcome = "HELLO refused";
        return;
    }
    fuzz_check(id == get_le64(p + TRANSPORT_TOKEN_HEX + 16), "HELLO's stream id is the header's");
    n = stream_encode_manifest(&m, out, sizeof(out));
    fuzz_check(n >= 0 && (size_t) n == size - at && memcmp(out, p + at, (size_t) n) == 0,
               "an accepted manifest re-encodes to the same bytes");
    fuzz_outcome = "HELLO accepted";
}

static void
check_stream_end(const uint8_t *p, uint32_t size, uint32_t n_devices)
{
    static uint8_t out[MAX_FRAME];
    static StreamDeviceTotals t[STREAM_MAX_DEVICES + 1], before[STREAM_MAX_DEVICES + 1];
    int n;

    memset(t, 0xa5, sizeof(t));
    memcpy(before, t, sizeof(t));
    if (handshake_parse_stream_end(p, size, n_devices, t) < 0) {
        return; /* the caller frees its totals on a refusal: nothing kept */
    }
    fuzz_check(memcmp(&t[n_devices], &before[n_devices], sizeof(t[0])) == 0,
               "STREAM_END writes no more totals than the job's devices");
    n = stream_encode_stream_end(t, n_devices, out, sizeof(out));
    fuzz_check(n >= 0 && (size_t) n == size - STREAM_RECORD_HEADER_SIZE &&
               memcmp(out, p + STREAM_RECORD_HEADER_SIZE, (size_t) n) == 0,
               "an accepted STREAM_END re-encodes to the same bytes");
    fuzz_outcome = "STREAM_END accepted";
}

/* CHECK_REPORT: what is accepted re-encodes to the same bytes; a refusal writes nothing. */
static void
check_report(const uint8_t *p, uint32_t size)
{
    static CompatReport rep, before;
    static uint8_t out[HANDSHAKE_REPORT_MAX];

    memset(&rep, 0x5a, sizeof(rep));
    before = rep;
    if (handshake_parse_report(p, size, &rep) < 0) {
        fuzz_check(memcmp(&rep, &before, sizeof(rep)) == 0, "a refused CHECK_REPORT writes nothing");
        return;
    }
    fuzz_check(rep.n <= COMPAT_MAX_MISMATCHES && rep.n <= rep.total, "a report's counts are bounded");
    fuzz_check(handshake_encode_report(&rep, out) == size && memcmp(out, p, size) == 0,
               "an accepted CHECK_REPORT re-encodes to its bytes");
    fuzz_outcome = "a report";
}

static void
check_accept(const uint8_t *p, uint32_t size)
{
    char key[TRANSPORT_TOKEN_HEX + 1] = "untouched";
    uint8_t out[HANDSHAKE_ACCEPT_SIZE];
    uint32_t version = 77;

    if (handshake_parse_accept(p, size, key, &version) < 0) {
        fuzz_check(strcmp(key, "untouched") == 0 && version == 77,
                   "a refused ACCEPT changes nothing");
        return;
    }
    fuzz_check(memcmp(key, p, TRANSPORT_TOKEN_HEX) == 0, "ACCEPT's key is its bytes");
    fuzz_check(size == TRANSPORT_TOKEN_HEX ? version == 1 : version == get_le32(p + 64),
               "ACCEPT's version is protocol 1's or its bytes");
    if (version == TRANSPORT_PROTOCOL_VERSION) {
        handshake_encode_accept(key, out);
        fuzz_check(memcmp(out, p, sizeof(out)) == 0, "ACCEPT re-encodes to the same bytes");
        fuzz_outcome = "ACCEPT of this protocol";
    }
}

/* The two sides of a hand-over, fed every frame as if each had received it. */
static HandoverState side_state[_HANDOVER_SIDE_MAX];

static void
check_handover(uint32_t type, uint32_t size)
{
    HandoverEvent ev;

    if (type == TMSG_STREAM_END) { /* as if the destination had loaded it all */
        side_state[HANDOVER_DESTINATION] = handover_next(
            side_state[HANDOVER_DESTINATION],
            handover_action(HANDOVER_DESTINATION, side_state[HANDOVER_DESTINATION],
                            HANDOVER_EV_LOADED));
    }
    if (handshake_handover_event(type, size, &ev) < 0) {
        fuzz_check(type == TMSG_PING && size == 0, "only an empty PING means nothing");
        return;
    }
    fuzz_check(ev != HANDOVER_EV_GOT_COMMIT || (type == TMSG_COMMIT && size == 0),
               "only an empty COMMIT is a COMMIT");
    for (int side = 0; side < _HANDOVER_SIDE_MAX; side++) {
        for (int st = 0; st < _HANDOVER_STATE_MAX; st++) {
            HandoverAction a = handover_action(side, st, ev);
            fuzz_check(a != HANDOVER_DO_REFUSE, "a message is never refused like an API call");
            if (side == HANDOVER_SOURCE && st == HANDOVER_COMMITTED) {
                fuzz_check(a != HANDOVER_DO_RUN, "nothing resumes a committed source");
            }
            if (side == HANDOVER_DESTINATION && a == HANDOVER_DO_RUN) {
                fuzz_check(type == TMSG_COMMIT, "only COMMIT resumes a destination");
            }
        }
        side_state[side] = handover_next(side_state[side],
                                         handover_action(side, side_state[side], ev));
    }
    fuzz_check(!(side_state[HANDOVER_SOURCE] == HANDOVER_RUNS_HERE &&
                 side_state[HANDOVER_DESTINATION] == HANDOVER_RUNS_HERE),
               "the two sides never both run");
}

/* REFUSE, FAIL, and whatever type has no decoder: quoted as text. */
static void
check_text(const uint8_t *p, uint32_t size)
{
    char text[600];

    handshake_text(p, size, 512, text, sizeof(text));
    fuzz_check(strlen(text) <= 512 && strlen(text) == (size < 512 ? size : 512),
               "a quoted text is its bytes, bounded");
    for (const char *c = text; *c; c++) {
        fuzz_check(isprint((unsigned char) *c), "a quoted text is printable");
    }
}

/* The decoder each payload type has (STREAM_END's also takes the job's device count); a type
 * not in the table is text. */
static void (*const payload_checks[])(const uint8_t *p, uint32_t size) = {
    [TMSG_HELLO] = check_hello,
    [TMSG_ACCEPT] = check_accept,
    [TMSG_DATA_HELLO] = fuzz_check_data_hello,
    [TMSG_CHECK] = check_hello,
    [TMSG_CHECK_REPORT] = check_report,
};

static void
check_payload(uint32_t type, const uint8_t *p, uint32_t size, uint32_t n_devices)
{
    check_handover(type, size);
    if (type == TMSG_STREAM_END) {
        check_stream_end(p, size, n_devices);
    } else if (type < sizeof(payload_checks) / sizeof(payload_checks[0]) &&
               payload_checks[type]) {
        payload_checks[type](p, size);
    } else {
        check_text(p, size);
    }
}

/* transport_recv() over the socket, each frame compared with the bytes. */
static void
read_frames(int fd, const uint8_t *p, size_t size, uint32_t n_devices)
{
    static uint8_t buf[MAX_FRAME];
    size_t off = 0;

    for (;;) {
        uint32_t type, len;
        int r = transport_recv(fd, &type, buf, MAX_FRAME, &len);

        if (r == -E2BIG) {
            fuzz_check(size - off >= 8 && get_le32(p + off + 4) > MAX_FRAME,
                       "-E2BIG only for a length over the limit");
            fuzz_outcome = "a frame over the limit";
            return;
        }
        if (r < 0) {
            fuzz_check(r == -ENODATA, "the bytes ending is -ENODATA");
            fuzz_check(size - off < 8 || size - off - 8 < get_le32(p + off + 4),
                       "-ENODATA only when a frame is cut short");
            return;
        }
        fuzz_check(size - off >= 8 + (size_t) len && type == get_le32(p + off) &&
                   len == get_le32(p + off + 4) && memcmp(buf, p + off + 8, len) == 0,
                   "a frame read is the frame sent");
        check_payload(type, buf, len, n_devices);
        off += 8 + (size_t) len;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int sv[2], big = (int) MAX_INPUT * 2;
    uint32_t n_devices;

    if (size < 1 || size > MAX_INPUT) {
        return 0;
    }
    n_devices = data[0] % (STREAM_MAX_DEVICES + 1);
    data++;
    size--;
    fuzz_check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    (void) setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    (void) setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    if (size > 0 && transport_write_full(sv[0], data, size) < 0) {
        fuzz_check(false, "the input fits in the socket buffers");
    }
    (void) shutdown(sv[0], SHUT_WR);
    fuzz_outcome = "frames read";
    side_state[HANDOVER_SOURCE] = HANDOVER_MOVING;
    side_state[HANDOVER_DESTINATION] = HANDOVER_MOVING;
    read_frames(sv[1], data, size, n_devices);
    (void) close(sv[0]);
    (void) close(sv[1]);
    return 0;
}

#ifndef FUZZ_LIBFUZZER
/* ---- seeds: a HELLO, ACCEPT, DATA_HELLO, PING, STREAM_END, FAIL conversation */

static size_t
frame(uint8_t *out, size_t n, uint32_t type, const void *p, uint32_t len)
{
    put_le32(out + n, type);
    put_le32(out + n + 4, len);
    memcpy(out + n + 8, p, len);
    return n + 8 + len;
}

int
fuzz_write_seeds(const char *dir)
{
    static uint8_t s[1 << 16], msg[1 << 14];
    StreamManifest m = {.group = "vm", .n_devices = 2, .devices = devices};
    StreamDeviceTotals t[2] = {{100, 2}, {7, 1}};
    StreamHeader h = {.stream_id = 42};
    size_t n = 1, mlen, end;
    uint8_t *p = msg + TRANSPORT_TOKEN_HEX;

    memset(devices, 0, 2 * sizeof(devices[0]));
    strcpy(devices[0].name, "nic0");
    strcpy(devices[0].backend, "sim");
    strcpy(devices[1].name, "gpu1");
    strcpy(devices[1].backend, "kernel");
    s[0] = 2;
    memcpy(msg, FUZZ_TOKEN, TRANSPORT_TOKEN_HEX);
    stream_encode_header(&h, p);
    p += STREAM_HEADER_SIZE;
    mlen = stream_manifest_size(&m);
    (void) stream_encode_manifest(&m, p + STREAM_RECORD_HEADER_SIZE, mlen);
    stream_encode_record_header(&(StreamRecordHeader){.type = STREAM_RECORD_MANIFEST,
                                                      .device = STREAM_DEVICE_NONE,
                                                      .length = (uint32_t) mlen},
                                p + STREAM_RECORD_HEADER_SIZE, p);
    n = frame(s, n, TMSG_HELLO, msg,
              (uint32_t) (TRANSPORT_TOKEN_HEX + STREAM_HEADER_SIZE + STREAM_RECORD_HEADER_SIZE + mlen));
    handshake_encode_accept(FUZZ_TOKEN, msg);
    n = frame(s, n, TMSG_ACCEPT, msg, HANDSHAKE_ACCEPT_SIZE);
    n = frame(s, n, TMSG_DATA_HELLO, msg,
              (uint32_t) handshake_encode_data_hello(&(HandshakeDataHello){.key = FUZZ_TOKEN,
                                                                           .stream_id = 42,
                                                                           .index = 1,
                                                                           .channel = 1,
                                                                           .n_channels = 2},
                                                     TRANSPORT_PROTOCOL_VERSION, msg));
    n = frame(s, n, TMSG_PING, NULL, 0);
    mlen = stream_end_size(2);
    (void) stream_encode_stream_end(t, 2, msg + STREAM_RECORD_HEADER_SIZE, mlen);
    stream_encode_record_header(&(StreamRecordHeader){.type = STREAM_RECORD_STREAM_END,
                                                      .device = STREAM_DEVICE_NONE,
                                                      .length = (uint32_t) mlen, .sequence = 1},
                                msg + STREAM_RECORD_HEADER_SIZE, msg);
    n = frame(s, n, TMSG_STREAM_END, msg, (uint32_t) (STREAM_RECORD_HEADER_SIZE + mlen));
    end = n;
    n = frame(s, n, TMSG_FAIL, "device 'nic0' \x1b[31mfailed\x00", 24);
    if (fuzz_write_file(dir, "conversation", s, n)) {
        return 1;
    }
    /* The hand-over that completes: PREPARED, COMMIT, DONE after STREAM_END. */
    n = frame(s, end, TMSG_PREPARED, NULL, 0);
    n = frame(s, n, TMSG_COMMIT, NULL, 0);
    n = frame(s, n, TMSG_DONE, NULL, 0);
    if (fuzz_write_file(dir, "handover", s, n)) {
        return 1;
    }
    /* A protocol-1 ACCEPT (the key alone), and a COMMIT with a payload. */
    n = frame(s, 1, TMSG_ACCEPT, FUZZ_TOKEN, TRANSPORT_TOKEN_HEX);
    n = frame(s, n, TMSG_COMMIT, "x", 1);
    if (fuzz_write_file(dir, "protocol-1", s, n)) {
        return 1;
    }
    put_le32(s + 1 + 4, MAX_FRAME + 1);
    return fuzz_write_file(dir, "too-long", s, 1 + 8);
}
#endif
