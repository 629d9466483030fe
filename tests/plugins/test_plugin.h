/* SPDX-License-Identifier: MIT */
/*
 * What the test plugins share: the descriptor of a plugin claiming every device of one driver
 * (all of them but vendor.c) and the hooks a test expects the daemon never to call. Each test
 * plugin is then its hooks and one TEST_PLUGIN() line, so what it tests stands out.
 */
#ifndef TESTS_PLUGINS_TEST_PLUGIN_H
#define TESTS_PLUGINS_TEST_PLUGIN_H

#include <stdlib.h>

#include <vfio-migd/plugin.h>

/* Defines the claims, the descriptor and the entry symbol of a plugin @name @version with the
 * given ABI header, claiming every device bound to @driver; the hooks follow as designated
 * initializers (.prerequisites = ...). */
#define TEST_PLUGIN_ABI(major, minor, size, driver, name_, version_, ...)                          \
    static const struct vfio_migd_claim claims[] = {VFIO_MIGD_CLAIM_DRIVER(driver)};               \
    static const struct vfio_migd_plugin plugin = {.abi_major = (major),                           \
                                                   .abi_minor = (minor),                           \
                                                   .struct_size = (size),                          \
                                                   .name = (name_),                                \
                                                   .version = (version_),                          \
                                                   .claims = claims,                               \
                                                   .n_claims = 1,                                  \
                                                   __VA_ARGS__};                                   \
    VFIO_MIGD_PLUGIN_DEFINE_ENTRY(plugin)

/* The same, built against this header. */
#define TEST_PLUGIN(driver, name_, version_, ...)                                                  \
    TEST_PLUGIN_ABI(VFIO_MIGD_PLUGIN_ABI_MAJOR, VFIO_MIGD_PLUGIN_ABI_MINOR,                        \
                    sizeof(struct vfio_migd_plugin), driver, name_, version_, __VA_ARGS__)

/* Hooks the daemon must never call: were it to, the test process aborts. */
static inline int32_t
test_plugin_never_prerequisites(const struct vfio_migd_host *host,
                                const struct vfio_migd_device *dev,
                                struct vfio_migd_prereq_list *out)
{
    (void) host, (void) dev, (void) out;
    abort();
}

static inline int32_t
test_plugin_never_descriptor(const struct vfio_migd_host *host, const struct vfio_migd_device *dev,
                             struct vfio_migd_field_list *out, char *why, uint32_t why_size)
{
    (void) host, (void) dev, (void) out, (void) why, (void) why_size;
    abort();
}

#endif /* TESTS_PLUGINS_TEST_PLUGIN_H */
