/* SPDX-License-Identifier: MIT */
/*
 * mlx5_stream — see mlx5_stream.h.
 */
#include "mlx5_stream.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Little-endian on every host, as the driver's __le fields are. */
static uint64_t
get_le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = n; i > 0; i--) {
        v = (v << 8) | p[i - 1];
    }
    return v;
}

static void
put_le(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++, v >>= 8) {
        p[i] = (uint8_t) v;
    }
}

void
mlx5_header_write(const struct mlx5_record_header *h, uint8_t buf[MLX5_HEADER_SIZE])
{
    put_le(buf, h->record_size, 8);
    put_le(buf + 8, h->flags, 4);
    put_le(buf + 12, h->tag, 4);
}

int
mlx5_header_parse(const uint8_t *buf, struct mlx5_record_header *ret, char *why,
                  size_t why_size)
{
    struct mlx5_record_header h = {
        .record_size = get_le(buf, 8),
        .flags = (uint32_t) get_le(buf + 8, 4),
        .tag = (uint32_t) get_le(buf + 12, 4),
    };

    if (h.record_size > MLX5_MAX_RECORD_SIZE) {
        (void) snprintf(why, why_size, "record of %" PRIu64 " bytes (tag %" PRIu32 "): one "
                        "record is at most 4294967295 bytes (the driver would answer ENOMEM)",
                        h.record_size, h.tag);
        return -EBADMSG;
    }
    if (h.tag == MLX5_TAG_STOP_COPY_SIZE && h.record_size != MLX5_STOP_COPY_DATA_SIZE) {
        (void) snprintf(why, why_size, "STOP_COPY_SIZE record of %" PRIu64 " bytes: it carries "
                        "one le64, 8 bytes", h.record_size);
        return -EBADMSG;
    }
    if (h.tag == MLX5_TAG_FW_DATA && h.record_size == 0) {
        (void) snprintf(why, why_size, "FW_DATA record without data: the firmware loads no "
                        "empty image");
        return -EBADMSG;
    }
    if (h.tag != MLX5_TAG_FW_DATA && h.tag != MLX5_TAG_STOP_COPY_SIZE &&
        !(h.flags & MLX5_FLAG_TAG_OPTIONAL)) {
        (void) snprintf(why, why_size, "unknown mandatory record tag 0x%" PRIx32 " (flags 0x%"
                        PRIx32 "): the driver knows FW_DATA and STOP_COPY_SIZE and would "
                        "answer EOPNOTSUPP", h.tag, h.flags);
        return -EPROTONOSUPPORT;
    }
    *ret = h;
    return 0;
}

void
mlx5_stream_init(struct mlx5_stream *s)
{
    memset(s, 0, sizeof(*s));
}

/* @cur's last data byte arrived. */
static void
mlx5_stream_record_done(struct mlx5_stream *s)
{
    if (s->cur.tag == MLX5_TAG_STOP_COPY_SIZE) {
        s->stop_copy_size = get_le(s->scs, MLX5_STOP_COPY_DATA_SIZE);
    } else if (s->cur.tag == MLX5_TAG_FW_DATA) {
        s->fw_records++;
        s->fw_bytes += s->cur.record_size;
    }
    s->records++;
    s->in_record = 0;
    s->hdr_pos = 0;
}

/* Takes header bytes; 0, or the header's refusal once it is complete. */
static int
mlx5_stream_header(struct mlx5_stream *s, const uint8_t *data, size_t *used, size_t size,
                   char *why, size_t why_size)
{
    size_t take = MLX5_HEADER_SIZE - s->hdr_pos;
    int r;

    take = take < size ? take : size;
    memcpy(s->hdr + s->hdr_pos, data, take);
    s->hdr_pos += (uint32_t) take;
    *used = take;
    if (s->hdr_pos < MLX5_HEADER_SIZE) {
        return 0;
    }
    r = mlx5_header_parse(s->hdr, &s->cur, why, why_size);
    if (r < 0) {
        return r;
    }
    s->in_record = 1;
    s->record_left = s->cur.record_size;
    return 0;
}

/* Takes data bytes of @cur (at most what it has left). */
static size_t
mlx5_stream_data(struct mlx5_stream *s, const uint8_t *data, size_t size)
{
    size_t take = s->record_left < size ? (size_t) s->record_left : size;

    if (s->cur.tag == MLX5_TAG_STOP_COPY_SIZE) {
        memcpy(s->scs + (MLX5_STOP_COPY_DATA_SIZE - s->record_left), data, take);
    }
    s->record_left -= take;
    return take;
}

int
mlx5_stream_feed(struct mlx5_stream *s, const uint8_t *data, size_t size, char *why,
                 size_t why_size)
{
    if (s->failed) {
        (void) snprintf(why, why_size, "the stream was refused already");
        return -EBADMSG;
    }
    while (size > 0 || (s->in_record && s->record_left == 0)) {
        size_t used = 0;

        if (s->in_record && s->record_left == 0) {
            mlx5_stream_record_done(s);
            continue;
        }
        if (!s->in_record) {
            int r = mlx5_stream_header(s, data, &used, size, why, why_size);

            if (r < 0) {
                s->failed = 1;
                return r;
            }
        } else {
            used = mlx5_stream_data(s, data, size);
        }
        s->pos += used;
        data += used;
        size -= used;
    }
    return 0;
}

int
mlx5_stream_complete(const struct mlx5_stream *s)
{
    return !s->failed && !s->in_record && s->hdr_pos == 0 && s->fw_records > 0;
}
