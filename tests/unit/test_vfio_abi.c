/* SPDX-License-Identifier: MIT */
/*
 * test_vfio_abi — checks every size, offset and number of the VFIO/iommufd uAPI the kernel
 * back-end uses, as daemon/backend/vfio_abi.h provides them on this machine (bookworm's 6.1
 * <linux/vfio.h> plus our definitions of what it lacks), against two independent sources:
 *
 *  1. the numbers of the shared reference kernel-uapi.md §1, §4, §5 (computed there by
 *     compiling the 6.12 headers), written out below as literals; always runs;
 *  2. the Linux 6.12 uapi headers themselves ($VFIO_UAPI_INCLUDE, default
 *     ../shared/kernel/out/include next to the repository). This same file is compiled a
 *     second time with -DVFIO_ABI_REFERENCE and -I<those headers>, and then only emits the
 *     table vfio_abi_reference[] from the kernel's own definitions. CMake links that object in
 *     when the headers exist; otherwise the test is skipped and says where to get them.
 *
 * Both tables are built from one X-macro list (VFIO_ABI_ITEMS), so an item added to the
 * list is checked against both sources at once.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef VFIO_ABI_REFERENCE
#include <linux/iommufd.h>
#include <linux/vfio.h>
#else
#include "backend/vfio_abi.h"
#endif
#include "core/fsm.h"

typedef struct VfioAbiItem {
    const char *name;
    uint64_t value;
} VfioAbiItem;

/* SIZE(type), OFFSET(type, member), VALUE(macro), STATE(kernel state name without prefix),
 * END(type, member): the end of the last member the daemon uses, for argsz-versioned structs
 * that grew at the end: 6.1's struct vfio_device_info is 20 bytes, 6.12 added a pad word (24).
 * The kernel takes either size (argsz travels with the struct), so only the prefix must
 * agree. */
#define VFIO_ABI_ITEMS(SIZE, OFFSET, VALUE, STATE, END)                                                 \
    /* container and group (6.1 has them) */                                                       \
    VALUE(VFIO_API_VERSION)                                                                        \
    VALUE(VFIO_TYPE1v2_IOMMU)                                                                      \
    VALUE(VFIO_GET_API_VERSION)                                                                    \
    VALUE(VFIO_CHECK_EXTENSION)                                                                    \
    VALUE(VFIO_SET_IOMMU)                                                                          \
    VALUE(VFIO_GROUP_GET_STATUS)                                                                   \
    VALUE(VFIO_GROUP_SET_CONTAINER)                                                                \
    VALUE(VFIO_GROUP_GET_DEVICE_FD)                                                                \
    VALUE(VFIO_GROUP_FLAGS_VIABLE)                                                                 \
    SIZE(struct vfio_group_status)                                                                 \
    OFFSET(struct vfio_group_status, flags)                                                        \
    /* device */                                                                                   \
    VALUE(VFIO_DEVICE_GET_INFO)                                                                    \
    END(struct vfio_device_info, num_irqs)                                                         \
    OFFSET(struct vfio_device_info, flags)                                                         \
    OFFSET(struct vfio_device_info, num_regions)                                                   \
    OFFSET(struct vfio_device_info, num_irqs)                                                      \
    VALUE(VFIO_DEVICE_FLAGS_RESET)                                                                 \
    VALUE(VFIO_DEVICE_FLAGS_PCI)                                                                   \
    VALUE(VFIO_DEVICE_FLAGS_CAPS)                                                                  \
    VALUE(VFIO_DEVICE_FLAGS_CDX)                                                                   \
    VALUE(VFIO_DEVICE_GET_REGION_INFO)                                                             \
    SIZE(struct vfio_region_info)                                                                  \
    OFFSET(struct vfio_region_info, flags)                                                         \
    OFFSET(struct vfio_region_info, index)                                                         \
    OFFSET(struct vfio_region_info, size)                                                          \
    OFFSET(struct vfio_region_info, offset)                                                        \
    VALUE(VFIO_REGION_INFO_FLAG_READ)                                                              \
    VALUE(VFIO_REGION_INFO_FLAG_WRITE)                                                             \
    VALUE(VFIO_DEVICE_RESET)                                                                       \
    /* VFIO_DEVICE_FEATURE and the migration features */                                           \
    VALUE(VFIO_DEVICE_FEATURE)                                                                     \
    SIZE(struct vfio_device_feature)                                                               \
    OFFSET(struct vfio_device_feature, flags)                                                      \
    OFFSET(struct vfio_device_feature, data)                                                       \
    VALUE(VFIO_DEVICE_FEATURE_MASK)                                                                \
    VALUE(VFIO_DEVICE_FEATURE_GET)                                                                 \
    VALUE(VFIO_DEVICE_FEATURE_SET)                                                                 \
    VALUE(VFIO_DEVICE_FEATURE_PROBE)                                                               \
    VALUE(VFIO_DEVICE_FEATURE_MIGRATION)                                                           \
    SIZE(struct vfio_device_feature_migration)                                                     \
    VALUE(VFIO_MIGRATION_STOP_COPY)                                                                \
    VALUE(VFIO_MIGRATION_P2P)                                                                      \
    VALUE(VFIO_MIGRATION_PRE_COPY)                                                                 \
    VALUE(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE)                                                    \
    SIZE(struct vfio_device_feature_mig_state)                                                     \
    OFFSET(struct vfio_device_feature_mig_state, device_state)                                     \
    OFFSET(struct vfio_device_feature_mig_state, data_fd)                                          \
    VALUE(VFIO_DEVICE_FEATURE_DMA_LOGGING_START)                                                   \
    VALUE(VFIO_DEVICE_FEATURE_MIG_DATA_SIZE)                                                       \
    SIZE(struct vfio_device_feature_mig_data_size)                                                 \
    OFFSET(struct vfio_device_feature_mig_data_size, stop_copy_length)                             \
    STATE(ERROR)                                                                                   \
    STATE(STOP)                                                                                    \
    STATE(RUNNING)                                                                                 \
    STATE(STOP_COPY)                                                                               \
    STATE(RESUMING)                                                                                \
    STATE(RUNNING_P2P)                                                                             \
    STATE(PRE_COPY)                                                                                \
    STATE(PRE_COPY_P2P)                                                                            \
    /* the data fd */                                                                              \
    VALUE(VFIO_MIG_GET_PRECOPY_INFO)                                                               \
    SIZE(struct vfio_precopy_info)                                                                 \
    OFFSET(struct vfio_precopy_info, argsz)                                                        \
    OFFSET(struct vfio_precopy_info, flags)                                                        \
    OFFSET(struct vfio_precopy_info, initial_bytes)                                                \
    OFFSET(struct vfio_precopy_info, dirty_bytes)                                                  \
    /* the iommufd cdev path */                                                                    \
    VALUE(VFIO_DEVICE_BIND_IOMMUFD)                                                                \
    SIZE(struct vfio_device_bind_iommufd)                                                          \
    OFFSET(struct vfio_device_bind_iommufd, flags)                                                 \
    OFFSET(struct vfio_device_bind_iommufd, iommufd)                                               \
    OFFSET(struct vfio_device_bind_iommufd, out_devid)                                             \
    VALUE(VFIO_DEVICE_ATTACH_IOMMUFD_PT)                                                           \
    SIZE(struct vfio_device_attach_iommufd_pt)                                                     \
    OFFSET(struct vfio_device_attach_iommufd_pt, flags)                                            \
    OFFSET(struct vfio_device_attach_iommufd_pt, pt_id)                                            \
    VALUE(IOMMUFD_TYPE)                                                                            \
    VALUE(IOMMU_IOAS_ALLOC)                                                                        \
    SIZE(struct iommu_ioas_alloc)                                                                  \
    OFFSET(struct iommu_ioas_alloc, flags)                                                         \
    OFFSET(struct iommu_ioas_alloc, out_ioas_id)

#define ITEM_SIZE(t) {"sizeof(" #t ")", sizeof(t)},
#define ITEM_OFFSET(t, m) {"offsetof(" #t ", " #m ")", offsetof(t, m)},
#define ITEM_VALUE(v) {#v, (uint64_t) (v)},
#define ITEM_END(t, m) {"offsetofend(" #t ", " #m ")", offsetof(t, m) + sizeof(((t *) 0)->m)},
#ifdef VFIO_ABI_REFERENCE
#define ITEM_STATE(s) {"VFIO_DEVICE_STATE_" #s, (uint64_t) VFIO_DEVICE_STATE_##s},
#else
#define ITEM_STATE(s) {"VFIO_DEVICE_STATE_" #s, (uint64_t) DEVICE_STATE_##s},
#endif

#ifdef VFIO_ABI_REFERENCE

/* The kernel's own definitions: only this table is compiled in reference mode. */
extern const VfioAbiItem vfio_abi_reference[];
extern const size_t vfio_abi_reference_count;

const VfioAbiItem vfio_abi_reference[] = {
    VFIO_ABI_ITEMS(ITEM_SIZE, ITEM_OFFSET, ITEM_VALUE, ITEM_STATE, ITEM_END)
};
const size_t vfio_abi_reference_count = sizeof(vfio_abi_reference) / sizeof(vfio_abi_reference[0]);

#else /* the test */

#include <criterion/criterion.h>

TestSuite(vfio_abi, .timeout = 60);

static const VfioAbiItem ours[] = {
    VFIO_ABI_ITEMS(ITEM_SIZE, ITEM_OFFSET, ITEM_VALUE, ITEM_STATE, ITEM_END)
};

static const VfioAbiItem *
find(const VfioAbiItem *items, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(items[i].name, name) == 0) {
            return &items[i];
        }
    }
    return NULL;
}

/* Source 1: shared reference kernel-uapi.md, the numbers it computed from the 6.12 headers
 * on x86-64. Every VFIO ioctl is 0x3B00 | (100 + n). */
Test(vfio_abi, matches_the_documented_numbers)
{
    static const VfioAbiItem documented[] = {
        {"VFIO_GET_API_VERSION", 0x3B64},
        {"VFIO_CHECK_EXTENSION", 0x3B65},
        {"VFIO_SET_IOMMU", 0x3B66},
        {"VFIO_GROUP_GET_STATUS", 0x3B67},
        {"VFIO_GROUP_SET_CONTAINER", 0x3B68},
        {"VFIO_GROUP_GET_DEVICE_FD", 0x3B6A},
        {"VFIO_DEVICE_GET_INFO", 0x3B6B},
        {"VFIO_DEVICE_GET_REGION_INFO", 0x3B6C},
        {"VFIO_DEVICE_RESET", 0x3B6F},
        {"VFIO_DEVICE_FEATURE", 0x3B75},
        {"VFIO_DEVICE_BIND_IOMMUFD", 0x3B76},
        {"VFIO_DEVICE_ATTACH_IOMMUFD_PT", 0x3B77},
        {"VFIO_MIG_GET_PRECOPY_INFO", 0x3B79},
        {"IOMMU_IOAS_ALLOC", 0x3B81},
        {"IOMMUFD_TYPE", ';'},
        {"VFIO_API_VERSION", 0},
        {"VFIO_TYPE1v2_IOMMU", 3},
        {"VFIO_DEVICE_FEATURE_MASK", 0xffff},
        {"VFIO_DEVICE_FEATURE_GET", 0x10000},
        {"VFIO_DEVICE_FEATURE_SET", 0x20000},
        {"VFIO_DEVICE_FEATURE_PROBE", 0x40000},
        {"VFIO_DEVICE_FEATURE_MIGRATION", 1},
        {"VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE", 2},
        {"VFIO_DEVICE_FEATURE_DMA_LOGGING_START", 6},
        {"VFIO_DEVICE_FEATURE_MIG_DATA_SIZE", 9},
        {"VFIO_MIGRATION_STOP_COPY", 1},
        {"VFIO_MIGRATION_P2P", 2},
        {"VFIO_MIGRATION_PRE_COPY", 4},
        {"VFIO_DEVICE_FLAGS_CDX", 1 << 8},
        {"VFIO_DEVICE_STATE_ERROR", 0},
        {"VFIO_DEVICE_STATE_STOP", 1},
        {"VFIO_DEVICE_STATE_RUNNING", 2},
        {"VFIO_DEVICE_STATE_STOP_COPY", 3},
        {"VFIO_DEVICE_STATE_RESUMING", 4},
        {"VFIO_DEVICE_STATE_RUNNING_P2P", 5},
        {"VFIO_DEVICE_STATE_PRE_COPY", 6},
        {"VFIO_DEVICE_STATE_PRE_COPY_P2P", 7},
        {"sizeof(struct vfio_device_feature)", 8},
        {"offsetof(struct vfio_device_feature, data)", 8},
        {"sizeof(struct vfio_device_feature_migration)", 8},
        {"sizeof(struct vfio_device_feature_mig_state)", 8},
        {"sizeof(struct vfio_device_feature_mig_data_size)", 8},
        {"sizeof(struct vfio_precopy_info)", 24},
        {"offsetof(struct vfio_precopy_info, initial_bytes)", 8},
        {"offsetof(struct vfio_precopy_info, dirty_bytes)", 16},
        {"offsetofend(struct vfio_device_info, num_irqs)", 16},
        {"sizeof(struct vfio_region_info)", 32},
        {"sizeof(struct vfio_group_status)", 8},
        {"sizeof(struct vfio_device_bind_iommufd)", 16},
        {"sizeof(struct vfio_device_attach_iommufd_pt)", 12},
        {"sizeof(struct iommu_ioas_alloc)", 12},
    };

    for (size_t i = 0; i < sizeof(documented) / sizeof(documented[0]); i++) {
        const VfioAbiItem *o = find(ours, sizeof(ours) / sizeof(ours[0]), documented[i].name);

        cr_assert(o, "%s is documented but not in the checked list", documented[i].name);
        cr_expect_eq(o->value, documented[i].value, "%s: ours 0x%llx, documented 0x%llx",
                     o->name, (unsigned long long) o->value,
                     (unsigned long long) documented[i].value);
    }
}

/* The feature buffer kernel.c sends: the payload starts at data[], 8-byte aligned. */
Test(vfio_abi, feature_buffer_layout)
{
    VfioFeatureBuf buf;

    cr_expect_eq(offsetof(struct vfio_device_feature, data), 8);
    cr_expect_eq((uintptr_t) buf.hdr.data % 8, 0, "payload not 8-byte aligned");
    cr_expect_geq(sizeof(buf), sizeof(struct vfio_device_feature) +
                                   sizeof(struct vfio_device_feature_mig_state));
}

#ifdef VFIO_ABI_HAVE_REFERENCE
extern const VfioAbiItem vfio_abi_reference[];
extern const size_t vfio_abi_reference_count;

/* Source 2: the 6.12 headers, item for item. */
Test(vfio_abi, matches_the_linux_6_12_headers)
{
    size_t n = sizeof(ours) / sizeof(ours[0]);

    cr_assert_eq(vfio_abi_reference_count, n, "both tables come from VFIO_ABI_ITEMS");
    for (size_t i = 0; i < n; i++) {
        cr_expect_str_eq(ours[i].name, vfio_abi_reference[i].name);
        cr_expect_eq(ours[i].value, vfio_abi_reference[i].value,
                     "%s: vfio_abi.h gives 0x%llx, the headers in %s give 0x%llx", ours[i].name,
                     (unsigned long long) ours[i].value, VFIO_ABI_REFERENCE_DIR,
                     (unsigned long long) vfio_abi_reference[i].value);
    }
}
#else
Test(vfio_abi, matches_the_linux_6_12_headers)
{
    cr_skip_test("no Linux 6.12 uapi headers when this build was configured (looked for "
                 "linux/vfio.h and linux/iommufd.h in '%s'): set VFIO_UAPI_INCLUDE to a "
                 "'make headers_install' tree, e.g. the one tests/kernel/build-kernel.sh "
                 "writes, and reconfigure", VFIO_ABI_REFERENCE_DIR);
}
#endif

#endif /* VFIO_ABI_REFERENCE */
