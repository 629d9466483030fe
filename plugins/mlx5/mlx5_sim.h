/* SPDX-License-Identifier: MIT */
#ifndef VFIO_MIGD_MLX5_SIM_H
#define VFIO_MIGD_MLX5_SIM_H

/*
 * mlx5_sim — the mlx5 plugin's sim model (attach --sim model=mlx5,...): a ConnectX VF behind
 * mlx5_vfio_pci as kernel-uapi.md §8 describes it, never more forgiving. docs/vendors/mlx5.md
 * lists its options; docs/simulated-devices.md how the sim calls a model.
 *
 * The VF's state is an image of image= bytes whose content is a pure function of a 64-bit
 * content key (content=, default 1): nothing of it is stored, so a 5 GiB VF costs no memory.
 * Saving streams are the driver's records (mlx5_stream.h): a STOP_COPY_SIZE record, then the
 * full image as FW_DATA records (one, or 8 MiB chunks in chunk mode), then incremental
 * FW_DATA records of dirty= bytes each time PRECOPY_INFO finds the queue read (it starts the
 * next incremental SAVE; read() alone answers -ENOMSG), and a final incremental one when the
 * device stops. An incremental SAVE gives the state a new key, as the guest changed it.
 * Each FW_DATA payload starts with this simulation's 64-byte image header (the real image is
 * opaque to the driver; its firmware judges it):
 *     offset 0  le64 magic "MLX5SIMG"      offset 8  le64 key after this record
 *     offset 16 le64 base key (0: full)    offset 24 le64 image offset of the data
 *     offset 32 le64 image size            offset 40 char psid[24], NUL-padded
 * A resuming VF loads each FW_DATA record when its last byte is written (inside that
 * write(), as the driver does): a PSID other than its own, a broken chain of keys or bytes
 * other than the key's fail that write() with -EIO (the firmware's LOAD failing), and every
 * later write with -ENODEV. RESUMING -> STOP checks nothing more (the driver has no final
 * check); a VF whose full image never arrived is left with no valid content.
 */

#include <vfio-migd/plugin.h>

#define MLX5_SIM_IMAGE_HEADER 64
#define MLX5_SIM_MAGIC UINT64_C(0x474d49534d354c4d) /* "MLX5SIMG" little-endian */
#define MLX5_SIM_CHUNK (UINT64_C(8) << 20)         /* chunk mode: 8 MiB per SAVE */
/* Without chunk mode one SAVE holds the whole image: 2^32 - PAGE_SIZE bytes at most. */
#define MLX5_SIM_MAX_UNCHUNKED (UINT64_C(0x100000000) - 4096 - MLX5_SIM_IMAGE_HEADER)

extern const struct vfio_migd_sim_model mlx5_sim_model;

/* The model's content key (0: no valid state) and image size: what its digest covers. */
uint64_t mlx5_sim_content(const void *model, uint64_t *ret_image);

/* The bytes of image offset @off.. under @key (tests and the resume check use it too). */
void mlx5_sim_fill(uint64_t key, uint64_t off, uint8_t *buf, size_t n);

#endif
