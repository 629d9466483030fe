/* SPDX-License-Identifier: MIT */
/*
 * test_sim_irq — the sim back-end's GET_IRQ_INFO and SET_IRQS through the backend vtable,
 * against vfio-pci-core's answers (kernel-uapi.md §3, vfio_pci_intrs.c): flags per index,
 * the core validation, exclusive indexes, NORESIZE and dynamic MSI-X, -ENOTTY for MSI/MSI-X
 * mask, eventfds checked to be eventfds, the loopback signalling real eventfds; and
 * fdcheck_is_eventfd() itself.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "backend/backend.h"
#include "eventfds.h"
#include "core/irq.h"
#include "util/fdcheck.h"

TestSuite(sim_irq, .timeout = 20);

#define TRIGGER_EVENTFD (BACKEND_IRQ_SET_DATA_EVENTFD | BACKEND_IRQ_SET_ACTION_TRIGGER)
#define TRIGGER_NONE (BACKEND_IRQ_SET_DATA_NONE | BACKEND_IRQ_SET_ACTION_TRIGGER)

static BackendDevice *
dev_new(const char *options)
{
    BackendDevice *bd = NULL;
    BackendInfo info;
    char err[256] = "";
    int r = sim_device_new("irqdev", options, &bd, &info, err, sizeof(err));
    cr_assert_eq(r, 0, "sim_device_new: %s", err);
    return bd;
}

/* The end of a test: closes the caller's eventfd @fd, then frees @bd. */
static void
dev_done(BackendDevice *bd, int fd)
{
    (void)close(fd);
    backend_device_free(bd);
}

static int
set(BackendDevice *bd, uint32_t flags, uint32_t index, uint32_t start, uint32_t count,
    const void *data)
{
    return bd->ops->set_irqs(bd, flags, index, start, count, data);
}

Test(sim_irq, info_as_vfio_pci)
{
    BackendDevice *bd = dev_new("intx=1,msi=1,msix=64");
    uint32_t flags, count;

    cr_assert_eq(bd->ops->irq_info(bd, BACKEND_IRQ_INDEX_INTX, &flags, &count), 0);
    cr_assert_eq(flags,
                 IRQ_INFO_EVENTFD | IRQ_INFO_MASKABLE | IRQ_INFO_AUTOMASKED | IRQ_INFO_NORESIZE);
    cr_assert_eq(count, 1);
    cr_assert_eq(bd->ops->irq_info(bd, BACKEND_IRQ_INDEX_MSI, &flags, &count), 0);
    cr_assert_eq(flags, IRQ_INFO_EVENTFD | IRQ_INFO_NORESIZE);
    cr_assert_eq(count, 1);
    cr_assert_eq(bd->ops->irq_info(bd, BACKEND_IRQ_INDEX_MSIX, &flags, &count), 0);
    cr_assert_eq(flags, IRQ_INFO_EVENTFD | IRQ_INFO_NORESIZE);
    cr_assert_eq(count, 64);
    cr_assert_eq(bd->ops->irq_info(bd, 4, &flags, &count), 0);
    cr_assert_eq(count, 0, "no REQ interrupt in the sim");
    cr_assert_eq(bd->ops->irq_info(bd, 5, &flags, &count), -EINVAL);
    backend_device_free(bd);

    bd = dev_new("msix=8,msix_dynamic=1");
    cr_assert_eq(bd->ops->irq_info(bd, BACKEND_IRQ_INDEX_MSIX, &flags, &count), 0);
    cr_assert_eq(flags, IRQ_INFO_EVENTFD, "dynamic MSI-X: no NORESIZE");
    cr_assert_eq(bd->ops->irq_info(bd, BACKEND_IRQ_INDEX_INTX, &flags, &count), 0);
    cr_assert_eq(count, 0, "no interrupt unless asked for");
    backend_device_free(bd);
}

Test(sim_irq, options_are_checked)
{
    const char *bad[] = {"intx=2",  "msi=33",         "msix=2049",
                         "msix=-1", "msix_dynamic=1", "msix=4,msix_dynamic=yes", "req=2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        BackendDevice *bd = NULL;
        BackendInfo info;
        char err[256] = "";
        cr_assert_eq(sim_device_new("x", bad[i], &bd, &info, err, sizeof(err)), -EINVAL, "%s",
                     bad[i]);
        cr_assert_neq(err[0], '\0', "%s: no reason given", bad[i]);
    }
}

Test(sim_irq, core_validation)
{
    BackendDevice *bd = dev_new("msix=4");
    int fd = efd();
    int32_t fds[5] = {fd, fd, fd, fd, fd};

    cr_assert_eq(set(bd, TRIGGER_EVENTFD | (1u << 6), 2, 0, 1, fds), -EINVAL, "unknown flag");
    cr_assert_eq(set(bd, BACKEND_IRQ_SET_ACTION_TRIGGER, 2, 0, 1, fds), -EINVAL, "no data type");
    cr_assert_eq(set(bd, TRIGGER_EVENTFD | BACKEND_IRQ_SET_DATA_NONE, 2, 0, 1, fds), -EINVAL);
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 2, 0, 5, fds), -EINVAL, "beyond the count");
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 2, 4, 0, fds), -EINVAL, "start beyond the count");
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 1, 0, 1, fds), -EINVAL, "no MSI on this device");
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 5, 0, 1, fds), -EINVAL, "no such index");
    cr_assert_eq(set(bd, TRIGGER_EVENTFD | BACKEND_IRQ_SET_ACTION_MASK, 2, 0, 1, fds), -ENOTTY,
                 "two actions");
    cr_assert_eq(set(bd, TRIGGER_NONE, 2, 0, 0, NULL), -EINVAL, "disabling what is not enabled");
    dev_done(bd, fd);
}

Test(sim_irq, msi_and_msix_cannot_be_masked)
{
    BackendDevice *bd = dev_new("msi=1,msix=4");
    int32_t fd = efd(); /* &fd: the one-element array of fds */

    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 2, 0, 1, &fd), 0);
    for (uint32_t index = 1; index <= 2; index++) {
        cr_assert_eq(
            set(bd, BACKEND_IRQ_SET_DATA_NONE | BACKEND_IRQ_SET_ACTION_MASK, index, 0, 1, NULL),
            -ENOTTY);
        cr_assert_eq(
            set(bd, BACKEND_IRQ_SET_DATA_NONE | BACKEND_IRQ_SET_ACTION_UNMASK, index, 0, 1, NULL),
            -ENOTTY);
    }
    dev_done(bd, fd);
}

Test(sim_irq, indexes_are_exclusive)
{
    BackendDevice *bd = dev_new("intx=1,msi=1,msix=4");
    int32_t fd = efd(); /* &fd: the one-element array of fds */

    cr_assert_eq(set(bd, TRIGGER_EVENTFD, BACKEND_IRQ_INDEX_MSIX, 0, 1, &fd), 0);
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, BACKEND_IRQ_INDEX_MSI, 0, 1, &fd), -EINVAL);
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, BACKEND_IRQ_INDEX_INTX, 0, 1, &fd), -EINVAL);
    cr_assert_eq(set(bd, TRIGGER_NONE, BACKEND_IRQ_INDEX_MSI, 0, 0, NULL), -EINVAL);
    cr_assert_eq(set(bd, TRIGGER_NONE, BACKEND_IRQ_INDEX_MSIX, 0, 0, NULL), 0, "disable");
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, BACKEND_IRQ_INDEX_MSI, 0, 1, &fd), 0);
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, BACKEND_IRQ_INDEX_MSIX, 0, 1, &fd), -EINVAL);
    dev_done(bd, fd);
}

Test(sim_irq, loopback_signals_the_armed_eventfd_even_after_the_caller_closed_its_copy)
{
    BackendDevice *bd = dev_new("msix=4");
    int a = efd(), b = efd();
    int b_copy = fcntl(b, F_DUPFD_CLOEXEC, 3);
    int32_t fds[2] = {a, b};

    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 2, 0, 2, fds), 0);
    (void)close(b); /* the kernel keeps its own reference */
    cr_assert_eq(set(bd, TRIGGER_NONE, 2, 1, 1, NULL), 0);
    cr_assert_eq(take(a), 0);
    cr_assert_eq(take(b_copy), 1);
    uint8_t bools[2] = {1, 0};
    cr_assert_eq(
        set(bd, BACKEND_IRQ_SET_DATA_BOOL | BACKEND_IRQ_SET_ACTION_TRIGGER, 2, 0, 2, bools), 0);
    cr_assert_eq(take(a), 1);
    cr_assert_eq(take(b_copy), 0);
    /* Vectors 2 and 3 were never allocated: the loopback skips them. */
    cr_assert_eq(set(bd, TRIGGER_NONE, 2, 0, 4, NULL), 0);
    cr_assert_eq(take(a), 1);
    cr_assert_eq(take(b_copy), 1);
    /* Swapping a vector's eventfd: only the new one fires. */
    int32_t swap[1] = {a};
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 2, 1, 1, swap), 0);
    cr_assert_eq(set(bd, TRIGGER_NONE, 2, 1, 1, NULL), 0);
    cr_assert_eq(take(a), 1);
    cr_assert_eq(take(b_copy), 0);
    (void)close(a);
    (void)close(b_copy);
    backend_device_free(bd);
}

Test(sim_irq, noresize_refuses_growth_in_place_dynamic_allows_it)
{
    BackendDevice *bd = dev_new("msix=8");
    int32_t fd = efd(); /* &fd: the one-element array of fds */
    int32_t none[1] = {-1};

    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 2, 0, 1, &fd), 0);
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 2, 3, 1, &fd), -EINVAL, "NORESIZE: disable first");
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 2, 3, 1, none), 0, "clearing is always fine");
    cr_assert_eq(set(bd, TRIGGER_NONE, 2, 0, 0, NULL), 0);
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 2, 3, 1, &fd), 0, "re-enabled with 4 vectors");
    cr_assert_eq(set(bd, TRIGGER_NONE, 2, 3, 1, NULL), 0);
    cr_assert_eq(take(fd), 1);
    backend_device_free(bd);

    bd = dev_new("msix=8,msix_dynamic=1");
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 2, 0, 1, &fd), 0);
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 2, 5, 1, &fd), 0, "dynamic MSI-X grows in place");
    cr_assert_eq(set(bd, TRIGGER_NONE, 2, 5, 1, NULL), 0);
    cr_assert_eq(take(fd), 1);
    dev_done(bd, fd);
}

Test(sim_irq, only_eventfds_are_taken_and_a_failed_enable_leaves_nothing)
{
    BackendDevice *bd = dev_new("msi=1,msix=4");
    int fd = efd();
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int32_t sock[2] = {fd, sv[0]};
    int32_t file[1] = {null};
    int32_t closed[1] = {1000};

    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 2, 0, 2, sock), -EINVAL);
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 2, 0, 1, file), -EINVAL);
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 2, 0, 1, closed), -EBADF);
    /* Nothing stayed enabled: MSI may be enabled now. */
    int32_t ok[1] = {fd};
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 1, 0, 1, ok), 0);
    cr_assert_eq(set(bd, TRIGGER_NONE, 1, 0, 1, NULL), 0);
    cr_assert_eq(take(fd), 1);
    (void)close(fd);
    (void)close(sv[0]);
    (void)close(sv[1]);
    (void)close(null);
    backend_device_free(bd);
}

Test(sim_irq, intx_mask_unmask_and_unmask_eventfd)
{
    BackendDevice *bd = dev_new("intx=1,msi=1");
    int32_t fd = efd(); /* &fd: the one-element array of fds */
    const uint32_t none = BACKEND_IRQ_SET_DATA_NONE;

    cr_assert_eq(set(bd, none | BACKEND_IRQ_SET_ACTION_MASK, 0, 0, 1, NULL), -EINVAL,
                 "INTx not enabled");
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 0, 0, 1, &fd), 0);
    cr_assert_eq(set(bd, none | BACKEND_IRQ_SET_ACTION_MASK, 0, 0, 1, NULL), 0);
    cr_assert_eq(set(bd, BACKEND_IRQ_SET_DATA_EVENTFD | BACKEND_IRQ_SET_ACTION_MASK, 0, 0, 1, &fd),
                 -EINVAL, "no mask eventfd exists");
    cr_assert_eq(
        set(bd, BACKEND_IRQ_SET_DATA_EVENTFD | BACKEND_IRQ_SET_ACTION_UNMASK, 0, 0, 1, &fd), 0);
    cr_assert_eq(set(bd, none | BACKEND_IRQ_SET_ACTION_UNMASK, 0, 0, 1, NULL), 0);
    cr_assert_eq(set(bd, TRIGGER_NONE, 0, 0, 1, NULL), 0);
    cr_assert_eq(take(fd), 1);
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 1, 0, 1, &fd), -EINVAL, "INTx is enabled");
    cr_assert_eq(set(bd, TRIGGER_NONE, 0, 0, 0, NULL), 0);
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, 1, 0, 1, &fd), 0);
    dev_done(bd, fd);
}

/* REQ as vfio-pci has it (vfio_pci_set_req_trigger): one trigger, TRIGGER only, the loopback,
 * backend_req_arm() over it; none on a device without req=1 (mtty's -EINVAL, as no REQ). */
Test(sim_irq, req_as_vfio_pci)
{
    BackendDevice *bd = dev_new("msix=4,req=1");
    int a = efd(), b = efd();
    int32_t fds[2] = {a, b};
    uint8_t yes = 1;
    uint32_t flags, count;

    cr_assert_eq(bd->ops->irq_info(bd, BACKEND_IRQ_INDEX_REQ, &flags, &count), 0);
    cr_assert_eq(flags, IRQ_INFO_EVENTFD | IRQ_INFO_NORESIZE);
    cr_assert_eq(count, 1);
    cr_expect_eq(set(bd, TRIGGER_NONE, BACKEND_IRQ_INDEX_REQ, 0, 1, NULL), -EINVAL,
                 "loopback without a trigger");
    cr_expect_eq(set(bd, TRIGGER_EVENTFD, BACKEND_IRQ_INDEX_REQ, 0, 2, fds), -EINVAL, "count 2");
    cr_expect_eq(set(bd, BACKEND_IRQ_SET_DATA_NONE | BACKEND_IRQ_SET_ACTION_MASK,
                     BACKEND_IRQ_INDEX_REQ, 0, 1, NULL), -ENOTTY);
    cr_assert_eq(bd->ops->req_arm(bd, a), 0);
    cr_expect_eq(set(bd, TRIGGER_NONE, BACKEND_IRQ_INDEX_REQ, 0, 1, NULL), 0);
    cr_expect_eq(take(a), 1, "the loopback signals the REQ trigger");
    cr_assert_eq(set(bd, TRIGGER_EVENTFD, BACKEND_IRQ_INDEX_MSIX, 0, 1, &fds[1]), 0);
    cr_assert_eq(set(bd, TRIGGER_NONE, BACKEND_IRQ_INDEX_MSIX, 0, 0, NULL), 0, "MSI-X off");
    cr_expect_eq(set(bd, BACKEND_IRQ_SET_DATA_BOOL | BACKEND_IRQ_SET_ACTION_TRIGGER,
                     BACKEND_IRQ_INDEX_REQ, 0, 1, &yes), 0);
    cr_expect_eq(take(a), 1, "REQ is apart from MSI-X");
    cr_assert_eq(bd->ops->req_arm(bd, b), 0);
    cr_expect_eq(set(bd, TRIGGER_NONE, BACKEND_IRQ_INDEX_REQ, 0, 1, NULL), 0);
    cr_expect_eq(take(a) * 10 + take(b), 1, "replaced: only the new trigger");
    cr_assert_eq(bd->ops->req_arm(bd, -1), 0);
    cr_expect_eq(set(bd, TRIGGER_NONE, BACKEND_IRQ_INDEX_REQ, 0, 1, NULL), -EINVAL, "cleared");
    backend_device_free(bd);

    bd = dev_new("msix=4");
    cr_expect_eq(bd->ops->req_arm(bd, a), -ENOENT, "no REQ: not an error, nothing armed");
    cr_expect_eq(set(bd, TRIGGER_EVENTFD, BACKEND_IRQ_INDEX_REQ, 0, 1, fds), -EINVAL);
    backend_device_free(bd);
    (void)close(a);
    (void)close(b);
}

Test(sim_irq, fdcheck)
{
    int fd = efd();
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);

    cr_assert_eq(fdcheck_is_eventfd(fd), 0);
    cr_assert_eq(fdcheck_is_eventfd(sv[0]), -EINVAL);
    cr_assert_eq(fdcheck_is_eventfd(p[0]), -EINVAL);
    cr_assert_eq(fdcheck_is_eventfd(-1), -EBADF);
    (void)close(p[1]);
    cr_assert_eq(fdcheck_is_eventfd(p[1]), -EBADF);
    (void)close(fd);
    (void)close(sv[0]);
    (void)close(sv[1]);
    (void)close(p[0]);
}
