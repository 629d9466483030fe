/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * savefile — reading a save file (a whole stream, docs/stream-format.md) as a restore does:
 * the stream header, then record by record (header, payload) with pread(), each checked by
 * the stream reader, until the file's end; bytes after STREAM_END (even fewer than a
 * record header) and a stream that stops before it are refused. migration_file.c runs it
 * twice per restore (check, then load) with its own callback; tests/fuzz/fuzz_savefile.c
 * runs it over arbitrary bytes.
 *
 * Threads: any (a worker). Errors: negative errno; @rd->error says what is wrong when the
 * reader refused, the callback writes its own sentence.
 */

#include "core/stream.h"

/* Called for each record the reader accepted, in order; a negative return stops the read
 * and is returned. @payload holds rh->length bytes. */
typedef int (*SavefileRecordFn)(void *userdata, const uint8_t *hdr, const StreamRecordHeader *rh,
                                const uint8_t *payload);

/* Reads the file @fd from offset 0 through @rd (initialised here); the MANIFEST goes to
 * @manifest when given (its devices array holds STREAM_MAX_DEVICES). 0 when the stream is
 * complete; -ENODATA (truncated), the reader's errors (core/stream.h), -ENOMEM, or the
 * callback's. */
int savefile_read(int fd, StreamReader *rd, StreamManifest *manifest, SavefileRecordFn fn,
                  void *userdata);
