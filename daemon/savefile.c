/* SPDX-License-Identifier: MIT */
/*
 * savefile — see savefile.h.
 */
#include "savefile.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/cleanup.h"

/* A first payload buffer; a larger record grows it once per pass (up to STREAM_MAX_RECORD). */
#define SAVEFILE_BUFFER (64u << 10)

/* Reads one record (header + payload) of a file at *off. 0, 1 at the end, or -errno. */
static int
read_record(int fd, off_t *off, uint8_t hdr[STREAM_RECORD_HEADER_SIZE], uint8_t **buf,
            size_t *cap, StreamRecordHeader *rh)
{
    ssize_t n = pread(fd, hdr, STREAM_RECORD_HEADER_SIZE, *off);

    if (n == 0) {
        return 1;
    }
    if (n != STREAM_RECORD_HEADER_SIZE) {
        return -ENODATA;
    }
    if (stream_decode_record_header(hdr, rh) < 0) {
        return -EBADMSG; /* savefile_read() feeds the header to the reader for its sentence */
    }
    if (rh->length > *cap) {
        uint8_t *p = realloc(*buf, rh->length);
        if (!p) {
            return -ENOMEM;
        }
        *buf = p;
        *cap = rh->length;
    }
    n = pread(fd, *buf, rh->length, *off + STREAM_RECORD_HEADER_SIZE);
    if (n != (ssize_t) rh->length) {
        return -ENODATA;
    }
    *off += STREAM_RECORD_HEADER_SIZE + rh->length;
    return 0;
}

int
savefile_read(int fd, StreamReader *rd, StreamManifest *manifest, SavefileRecordFn fn,
              void *userdata)
{
    _cleanup_free_ uint8_t *buf = malloc(SAVEFILE_BUFFER);
    uint8_t head[STREAM_HEADER_SIZE], hdr[STREAM_RECORD_HEADER_SIZE] = {0};
    size_t cap = SAVEFILE_BUFFER;
    off_t off = STREAM_HEADER_SIZE;
    StreamRecordHeader rh;
    int r;

    stream_reader_init(rd);
    if (!buf) {
        return -ENOMEM;
    }
    r = pread(fd, head, sizeof(head), 0) == sizeof(head) ? stream_reader_header(rd, head) : -ENODATA;
    while (r >= 0 && (r = read_record(fd, &off, hdr, &buf, &cap, &rh)) == 0) {
        r = stream_reader_record(rd, hdr, buf, manifest, &rh);
        if (r >= 0) {
            r = fn(userdata, hdr, &rh, buf);
        }
    }
    /* A record header that did not decode: the reader names what is wrong with it (a
     * callback's -EBADMSG comes with the callback's own sentence). */
    if (r == -EBADMSG && !rd->error[0] && stream_decode_record_header(hdr, &rh) < 0) {
        (void) stream_reader_record(rd, hdr, NULL, NULL, &rh); /* names what is wrong */
    }
    if (r == -ENODATA && stream_reader_complete(rd)) {
        /* Fewer bytes than a record header after STREAM_END: still something after it. */
        (void) snprintf(rd->error, sizeof(rd->error), "data after STREAM_END, which ends the "
                        "stream");
        return -EBADMSG;
    }
    if (r >= 0 || r == -ENODATA) {
        r = stream_reader_finish(rd); /* "the stream ended before ..." when incomplete */
    }
    return r;
}
