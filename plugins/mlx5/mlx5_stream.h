/* SPDX-License-Identifier: MIT */
#ifndef VFIO_MIGD_MLX5_STREAM_H
#define VFIO_MIGD_MLX5_STREAM_H

/*
 * mlx5_stream — the record stream of mlx5_vfio_pci (drivers/vfio/pci/mlx5; reference:
 * kernel-uapi.md §8.3), parsed incrementally and bounded. Pure: no I/O, no daemon types, so
 * the unit test and the fuzz target link it alone.
 *
 * The stream is a sequence of records, each a 16-byte little-endian header
 *     offset 0  le64 record_size   bytes of data after the header
 *     offset 8  le32 flags         bit 0: TAG_OPTIONAL (an unknown optional tag is skipped)
 *     offset 12 le32 tag           0 FW_DATA, 1 STOP_COPY_SIZE
 * then record_size bytes. A saving stream starts with a STOP_COPY_SIZE record (OPTIONAL,
 * record_size 8, data le64: the size of the stop-copy buffer the source pre-allocated), then
 * FW_DATA records (MANDATORY, the opaque firmware image, one per SAVE or chunk).
 *
 * What the driver refuses in write(), this parser refuses first, before the bytes reach the
 * device: an unknown tag without TAG_OPTIONAL (driver: -EOPNOTSUPP), a record larger than one
 * LOAD can take, 2^32 - 1 bytes (driver: -ENOMEM). It also refuses what only a broken source
 * writes: a STOP_COPY_SIZE record that is not 8 bytes (the driver would read its le64 out of
 * whatever is there) and an empty FW_DATA record (a LOAD of nothing, refused by firmware).
 * It keeps no record's data but STOP_COPY_SIZE's 8 bytes, so its memory is constant.
 */

#include <stddef.h>
#include <stdint.h>

#define MLX5_HEADER_SIZE 16
#define MLX5_FLAG_TAG_OPTIONAL UINT32_C(1)
#define MLX5_TAG_FW_DATA UINT32_C(0)
#define MLX5_TAG_STOP_COPY_SIZE UINT32_C(1)
#define MLX5_STOP_COPY_DATA_SIZE 8
#define MLX5_MAX_RECORD_SIZE UINT64_C(0xffffffff) /* one LOAD_VHCA_STATE (MAX_LOAD_SIZE) */

struct mlx5_record_header {
    uint64_t record_size;
    uint32_t flags;
    uint32_t tag;
};

/* Writes the 16-byte header @h to @buf (little-endian): for the sim model and the tests. */
void mlx5_header_write(const struct mlx5_record_header *h, uint8_t buf[MLX5_HEADER_SIZE]);

/* Checks one complete header (@buf holds MLX5_HEADER_SIZE bytes). 0, or -EBADMSG (a size no
 * driver writes or loads) / -EPROTONOSUPPORT (an unknown mandatory tag) with a sentence in
 * @why. */
int mlx5_header_parse(const uint8_t *buf, struct mlx5_record_header *ret, char *why,
                      size_t why_size);

/* One stream being parsed. */
struct mlx5_stream {
    uint8_t hdr[MLX5_HEADER_SIZE];
    uint32_t hdr_pos;             /* header bytes collected of the next record */
    uint32_t in_record;           /* 1: inside @cur's data */
    struct mlx5_record_header cur;
    uint64_t record_left;         /* data bytes of @cur still to come */
    uint8_t scs[MLX5_STOP_COPY_DATA_SIZE]; /* STOP_COPY_SIZE's data being collected */
    uint64_t pos;                 /* bytes seen */
    uint64_t records;             /* complete records */
    uint64_t fw_records;          /* complete FW_DATA records */
    uint64_t fw_bytes;            /* data bytes of complete FW_DATA records */
    uint64_t stop_copy_size;      /* the last STOP_COPY_SIZE record's value; 0 before */
    int failed;                   /* a refusal is final */
};

void mlx5_stream_init(struct mlx5_stream *s);
/* Feeds the next @size bytes, in pieces of any size. 0, or a negative errno with @why: the
 * header's errors; every feed after a refusal is refused too. */
int mlx5_stream_feed(struct mlx5_stream *s, const uint8_t *data, size_t size, char *why,
                     size_t why_size);
/* 1 when the bytes so far end on a record boundary after at least one FW_DATA record: a
 * whole stream (the driver loads each record as it completes, so nothing else marks an end). */
int mlx5_stream_complete(const struct mlx5_stream *s);

#endif
