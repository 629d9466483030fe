/* SPDX-License-Identifier: MIT */
#ifndef VFIO_MIGD_MLX5_PLUGIN_H
#define VFIO_MIGD_MLX5_PLUGIN_H

/*
 * mlx5_plugin — what the mlx5 plugin's files share (mlx5.c: the hooks; mlx5_sim.c: the
 * simulated model).
 */

#include <stddef.h>

#include <vfio-migd/plugin.h>

#define MLX5_VENDOR_ID 0x15b3
#define MLX5_VF_DEVICE_ID 0x101e /* ConnectX Family mlx5Gen Virtual Function */
#define MLX5_VARIANT_DRIVER "mlx5_vfio_pci"
/* A sim device's PSID and firmware when its options name none. */
#define MLX5_SIM_PSID "MT_0000000359"
#define MLX5_SIM_FW "22.36.1010"

/* The value of @key in the options string "k=v,k=v" into @buf: 1 found, 0 not there,
 * -ENOBUFS longer than @size - 1. */
int mlx5_option(const char *options, const char *key, char *buf, size_t size);

#endif
