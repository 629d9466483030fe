/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * pb — protobuf-c messages to and from gRPC byte buffers. Header-only; used by the server
 * (rpc/server.c) and the client helpers (rpc/client.c).
 */

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <protobuf-c/protobuf-c.h>

/* Packs @msg into a new byte buffer (caller destroys it). NULL on OOM. */
static inline grpc_byte_buffer *
pb_pack(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    grpc_slice s = grpc_slice_malloc(len);
    grpc_byte_buffer *bb;

    (void) protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(s));
    bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

/* Unpacks @bb as @desc. NULL when @bb is NULL (no message) or does not parse. Free the
 * result with protobuf_c_message_free_unpacked(msg, NULL). */
static inline ProtobufCMessage *
pb_unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb)
{
    grpc_byte_buffer_reader reader;
    ProtobufCMessage *msg;
    grpc_slice s;

    if (!bb || !grpc_byte_buffer_reader_init(&reader, bb)) {
        return NULL;
    }
    s = grpc_byte_buffer_reader_readall(&reader);
    msg = protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    grpc_byte_buffer_reader_destroy(&reader);
    return msg;
}
