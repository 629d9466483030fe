/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * vfio_abi — the Linux VFIO and iommufd uAPI the kernel back-end (kernel.c) speaks.
 *
 * Debian bookworm's <linux/vfio.h> is the 6.1 uAPI: it lacks PRE_COPY, the pre-copy info
 * ioctl, MIG_DATA_SIZE and the iommufd cdev ioctls, and there is no <linux/iommufd.h> at
 * all. This header includes the system headers and defines, under the kernel's own names,
 * only what they lack, each under a guard so a newer system header wins and nothing is
 * defined twice. The values are those of Linux 6.12 (shared reference kernel-uapi.md §1,
 * §2.2, §4, §5); tests/unit/test_vfio_abi.c compiles the same list of sizes, offsets and
 * numbers against this header and against the 6.12 uapi headers and compares them.
 *
 * Every VFIO ioctl is _IO(';', 100 + n): no size or direction bits, the size travels in
 * argsz. iommufd uses the same type letter with numbers from 0x80.
 *
 * Used by:  backend/kernel.c only (nothing else in the daemon may speak VFIO).
 * Uses:     <linux/vfio.h>, <linux/iommufd.h> when the system has it, core/fsm.h.
 */

#include <linux/types.h>
#include <linux/vfio.h>
#include <stdint.h>

#if defined(__has_include)
#if __has_include(<linux/iommufd.h>)
#include <linux/iommufd.h>
#endif
#endif

#include "../core/fsm.h"

/* ---- linux/vfio.h items added after 6.1 */

/* VFIO_DEVICE_INFO flags (6.6, vfio-cdx): only used to name device_flags bits. */
#ifndef VFIO_DEVICE_FLAGS_CDX
#define VFIO_DEVICE_FLAGS_CDX (1 << 8)
#endif

/* PRE_COPY came with the pre-copy info ioctl and its struct (Linux 6.2, commit
 * 4db52602a607), so one guard covers the three. */
#ifndef VFIO_MIG_GET_PRECOPY_INFO
#define VFIO_MIGRATION_PRE_COPY (1 << 2)

/* Issued on the saving data fd (not the device fd), valid in PRE_COPY and PRE_COPY_P2P. */
struct vfio_precopy_info {
    __u32 argsz;          /* >= 24 */
    __u32 flags;          /* pass 0; drivers never write it back, so ignore it on output */
    __aligned_u64 initial_bytes;
    __aligned_u64 dirty_bytes;
};

#define VFIO_MIG_GET_PRECOPY_INFO _IO(VFIO_TYPE, VFIO_BASE + 21)
#endif

#ifndef VFIO_DEVICE_FEATURE_MIG_DATA_SIZE
struct vfio_device_feature_mig_data_size {
    __aligned_u64 stop_copy_length; /* estimated bytes of a complete STOP_COPY stream */
};

#define VFIO_DEVICE_FEATURE_MIG_DATA_SIZE 9
#endif

/* The iommufd cdev interface of /dev/vfio/devices/vfioN (Linux 6.6). */
#ifndef VFIO_DEVICE_BIND_IOMMUFD
struct vfio_device_bind_iommufd {
    __u32 argsz;
    __u32 flags;     /* must be 0 */
    __s32 iommufd;
    __u32 out_devid;
};

#define VFIO_DEVICE_BIND_IOMMUFD _IO(VFIO_TYPE, VFIO_BASE + 18)
#endif

#ifndef VFIO_DEVICE_ATTACH_IOMMUFD_PT
struct vfio_device_attach_iommufd_pt {
    __u32 argsz;
    __u32 flags;     /* must be 0 */
    __u32 pt_id;     /* in: an IOAS (or HWPT) id; out: the id attached */
};

#define VFIO_DEVICE_ATTACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 19)
#endif

/* ---- linux/iommufd.h (absent before 6.2; the daemon needs only an IOAS) */

#ifndef IOMMUFD_TYPE
#define IOMMUFD_TYPE (';')
#endif

#ifndef IOMMU_IOAS_ALLOC
struct iommu_ioas_alloc {
    __u32 size;          /* sizeof(struct iommu_ioas_alloc) */
    __u32 flags;         /* must be 0 */
    __u32 out_ioas_id;
};

#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, 0x81)
#endif

/* ---- the migration state enum: DeviceState (core/fsm.h) carries the kernel's numbers, and
 * the kernel back-end passes them through unchanged. The 6.1 enum stops at RUNNING_P2P, so
 * PRE_COPY (6) and PRE_COPY_P2P (7) are checked by test_vfio_abi.c against 6.12. */
#define VFIO_ABI_SAME_STATE(s) ((int) DEVICE_STATE_##s == (int) VFIO_DEVICE_STATE_##s)
_Static_assert(VFIO_ABI_SAME_STATE(ERROR) && VFIO_ABI_SAME_STATE(STOP) &&
                   VFIO_ABI_SAME_STATE(RUNNING) && VFIO_ABI_SAME_STATE(STOP_COPY) &&
                   VFIO_ABI_SAME_STATE(RESUMING) && VFIO_ABI_SAME_STATE(RUNNING_P2P),
               "DeviceState (core/fsm.h) must carry the kernel's enum vfio_device_mig_state");
_Static_assert(MIG_FLAG_STOP_COPY == VFIO_MIGRATION_STOP_COPY && MIG_FLAG_P2P == VFIO_MIGRATION_P2P &&
                   MIG_FLAG_PRE_COPY == VFIO_MIGRATION_PRE_COPY,
               "MIG_FLAG_* (core/fsm.h) must be the kernel's VFIO_MIGRATION_* bits");

/* ---- helpers: one VFIO_DEVICE_FEATURE buffer, header and payload, aligned for the u64s */

/* The largest payload kernel.c sends: mig_state, migration flags and data size are 8 bytes. */
#define VFIO_ABI_FEATURE_PAYLOAD_MAX 8

typedef union VfioFeatureBuf {
    struct vfio_device_feature hdr;
    uint64_t align; /* payload u64s sit at offset 8: keep the buffer 8-byte aligned */
    uint8_t bytes[sizeof(struct vfio_device_feature) + VFIO_ABI_FEATURE_PAYLOAD_MAX];
} VfioFeatureBuf;
