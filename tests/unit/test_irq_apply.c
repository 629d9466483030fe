/* SPDX-License-Identifier: MIT */
/*
 * test_irq_apply — daemon/irq.c on a real libuv loop, a sim device and real eventfds: the
 * unmasked path reaches the VMM's eventfd with no loop wake-up; mask, three interrupts,
 * unmask -> exactly one; the VMM leaving and coming back loses nothing; NORESIZE growth keeps
 * what was pending; the migrated state restored on another device fires once. Waits are on
 * the loop's events (UV_RUN_ONCE returns after the latch's poll ran), never on time.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <uv.h>

#include "backend/backend.h"
#include "eventfds.h"
#include "irq.h"
#include "util/macro.h"

TestSuite(irq_apply, .timeout = 30);

typedef struct Fixture {
    uv_loop_t loop;
    uv_prepare_t alive; /* the latches never keep a loop alive (irq.c): this does, so that
                         * UV_RUN_ONCE waits in poll for a latch to be signalled */
    BackendDevice *bd;
    Irq *irq;
    int vmm[8]; /* the VMM's copy of the eventfd given for each vector, or -1; closed by
                 * give() when replaced and by fixture_done() */
} Fixture;

static void
on_prepare(uv_prepare_t *h)
{
    (void) h;
}

static void
fixture_init(Fixture *f, const char *options)
{
    BackendInfo info;
    char err[256] = "";

    for (size_t v = 0; v < ELEMENTSOF(f->vmm); v++) {
        f->vmm[v] = -1;
    }
    cr_assert_eq(uv_loop_init(&f->loop), 0);
    cr_assert_eq(uv_prepare_init(&f->loop, &f->alive), 0);
    cr_assert_eq(uv_prepare_start(&f->alive, on_prepare), 0);
    cr_assert_eq(sim_device_new("irqdev", options, &f->bd, &info, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(irq_new(&f->loop, f->bd, &f->irq), 0);
}

static void
fixture_done(Fixture *f)
{
    for (size_t v = 0; v < ELEMENTSOF(f->vmm); v++) {
        (void)close(f->vmm[v]);
    }
    uv_close((uv_handle_t *) &f->alive, NULL);
    f->irq = irq_free(f->irq);
    backend_device_free(f->bd);
    (void)uv_run(&f->loop, UV_RUN_NOWAIT); /* the latches' close callbacks */
    cr_assert_eq(uv_loop_close(&f->loop), 0, "a handle was left open");
}

/* fixture_init(), then @count vectors of @t enabled. */
static void
fixture_enabled(Fixture *f, const char *options, IrqType t, uint32_t count)
{
    fixture_init(f, options);
    cr_assert_eq(irq_enable(f->irq, t, count), 0, "enable %s %u", irq_type_name(t), count);
}

/* Gives the VMM's eventfd for @v; returns the VMM's own copy to read from, which the fixture
 * owns (a copy given before for @v is closed). */
static int
give(Fixture *f, uint32_t v)
{
    int fd = efd();
    int mine = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    cr_assert_lt(v, ELEMENTSOF(f->vmm));
    cr_assert_eq(irq_vmm_give(f->irq, v, fd), 0);
    (void)close(f->vmm[v]);
    f->vmm[v] = mine;
    return mine;
}

/* Runs the loop until vector @v is pending: the latch's poll callback has run. */
static void
run_until_pending(Fixture *f, uint32_t v)
{
    while (!irq_model(f->irq)->vec[v].pending) {
        cr_assert_neq(uv_run(&f->loop, UV_RUN_ONCE), 0, "nothing left to wait for");
    }
}

/* Triggers vector @v, which waits on its latch, and runs the loop until it is pending. */
static void
trigger_to_latch(Fixture *f, uint32_t v)
{
    cr_assert_eq(irq_trigger(f->irq, v), 0, "trigger vector %u", v);
    run_until_pending(f, v);
}

/* Unmasking vector @v, which has an interrupt pending, delivers it to @vmm exactly once: at
 * the unmask, and nothing more once the loop has run. */
static void
unmask_fires_once(Fixture *f, uint32_t v, int vmm)
{
    cr_assert_eq(irq_unmask(f->irq, v), 0);
    cr_assert_eq(take(vmm), 1, "the pending interrupt, at the unmask");
    (void)uv_run(&f->loop, UV_RUN_NOWAIT);
    cr_assert_eq(take(vmm), 0, "exactly once");
}

Test(irq_apply, unmasked_path_has_no_daemon_hop)
{
    Fixture f;
    fixture_enabled(&f, "msix=8,msi=1,intx=1", IRQ_TYPE_MSIX, 4);
    int vmm = give(&f, 2);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(irq_trigger(f.irq, 2), 0);
        cr_assert_eq(take(vmm), 1);
    }
    (void)uv_run(&f.loop, UV_RUN_NOWAIT);
    cr_assert_eq(irq_latch_wakeups(f.irq), 0);
    cr_assert_eq(irq_model(f.irq)->vec[2].pending, false);
    cr_assert_eq(irq_trigger(f.irq, 4), -ENOENT);
    cr_assert_eq(irq_enable(f.irq, IRQ_TYPE_MSI, 1), -EBUSY);
    fixture_done(&f);
}

/* One vector of @t enabled and given to a VMM (returned), masked, then @n interrupts. */
static int
masked_then_triggered(Fixture *f, const char *options, IrqType t, int n)
{
    fixture_enabled(f, options, t, 1);
    int vmm = give(f, 0);
    cr_assert_eq(irq_mask(f->irq, 0), 0);
    for (int i = 0; i < n; i++) {
        cr_assert_eq(irq_trigger(f->irq, 0), 0);
    }
    return vmm;
}

Test(irq_apply, mask_three_triggers_unmask_fires_once)
{
    Fixture f;
    int vmm = masked_then_triggered(&f, "msix=8", IRQ_TYPE_MSIX, 3);
    run_until_pending(&f, 0);
    cr_assert_eq(take(vmm), 0, "nothing reaches the VMM while masked");
    unmask_fires_once(&f, 0, vmm);
    cr_assert_eq(irq_trigger(f.irq, 0), 0);
    cr_assert_eq(take(vmm), 1, "unmasked again: straight to the VMM");
    fixture_done(&f);
}

/* Triggered while masked and unmasked before the loop ran: the unmask itself collects it. */
Test(irq_apply, unmask_before_the_loop_read_the_latch_fires_once)
{
    Fixture f;
    int vmm = masked_then_triggered(&f, "msi=1", IRQ_TYPE_MSI, 2);
    unmask_fires_once(&f, 0, vmm);
    fixture_done(&f);
}

Test(irq_apply, vmm_gone_and_back_loses_nothing)
{
    Fixture f;
    fixture_enabled(&f, "msix=8", IRQ_TYPE_MSIX, 2);
    int vmm0 = give(&f, 0), vmm1 = give(&f, 1);
    cr_assert_eq(irq_vmm_count(f.irq), 2);
    irq_vmm_drop_all(f.irq);
    cr_assert_eq(irq_vmm_count(f.irq), 0);
    trigger_to_latch(&f, 1);
    cr_assert_eq(take(vmm1), 0, "the old VMM's eventfd is no longer wired");
    vmm0 = give(&f, 0);
    cr_assert_eq(take(vmm0), 0);
    vmm1 = give(&f, 1);
    cr_assert_eq(take(vmm1), 1, "the pending interrupt, once");
    cr_assert_eq(irq_model(f.irq)->vec[1].pending, false);
    fixture_done(&f);
}

Test(irq_apply, noresize_growth_keeps_pending_and_wiring)
{
    Fixture f;
    fixture_enabled(&f, "msix=8", IRQ_TYPE_MSIX, 2);
    int vmm0 = give(&f, 0), vmm1 = give(&f, 1);
    cr_assert_eq(irq_mask(f.irq, 1), 0);
    trigger_to_latch(&f, 1);
    cr_assert_eq(irq_enable(f.irq, IRQ_TYPE_MSIX, 6), 0);
    cr_assert_eq(irq_trigger(f.irq, 0), 0);
    cr_assert_eq(take(vmm0), 1, "re-armed to the VMM after the re-enable");
    cr_assert_eq(irq_unmask(f.irq, 1), 0);
    cr_assert_eq(take(vmm1), 1, "pending survived the disable/re-enable");
    cr_assert_eq(irq_trigger(f.irq, 5), 0, "a new vector is wired (to its latch)");
    run_until_pending(&f, 5);
    fixture_done(&f);
}

Test(irq_apply, migrated_state_fires_once_on_the_destination)
{
    Fixture src, dst;
    IrqState st;
    fixture_init(&src, "msix=8");
    fixture_init(&dst, "msix=8");
    cr_assert_eq(irq_enable(src.irq, IRQ_TYPE_MSIX, 3), 0);
    cr_assert_eq(irq_mask(src.irq, 2), 0);
    trigger_to_latch(&src, 2);
    irq_export(src.irq, &st);

    cr_assert_eq(irq_import(dst.irq, &st), 0);
    cr_assert_eq(irq_model(dst.irq)->type, IRQ_TYPE_MSIX);
    cr_assert_eq(irq_model(dst.irq)->count, 3);
    cr_assert(irq_model(dst.irq)->vec[2].masked);
    cr_assert(irq_model(dst.irq)->vec[2].pending);
    int vmm = give(&dst, 2);
    cr_assert_eq(take(vmm), 0, "still masked");
    unmask_fires_once(&dst, 2, vmm);

    IrqState big = st;
    big.count = 9;
    for (uint32_t v = 0; v < 9; v++) {
        irq_bit_set(big.in_use, v, true);
    }
    Fixture small;
    fixture_init(&small, "msix=8");
    cr_assert_eq(irq_import(small.irq, &big), -ERANGE);
    cr_assert_eq(irq_model(small.irq)->type, IRQ_TYPE_NONE);
    fixture_done(&small);
    fixture_done(&src);
    fixture_done(&dst);
}

Test(irq_apply, vmm_fd_must_be_an_eventfd)
{
    Fixture f;
    fixture_enabled(&f, "msix=8", IRQ_TYPE_MSIX, 1);
    int p[2];
    cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
    cr_assert_eq(irq_vmm_give(f.irq, 0, p[0]), -EINVAL);
    cr_assert_eq(irq_vmm_give(f.irq, 0, -1), -EBADF);
    int fd = efd();
    cr_assert_eq(irq_vmm_give(f.irq, 1, fd), -ENOENT);
    (void)close(fd);
    (void)close(p[0]);
    (void)close(p[1]);
    fixture_done(&f);
}

static int
dup_fd(int fd)
{
    int r = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    cr_assert_geq(r, 0);
    return r;
}

/* The daemon dies and the next one takes the interrupts back from what the fd store kept: the
 * index stays enabled (no disable), a VMM's vector still goes straight to its eventfd, masked
 * and pending bits come back, a latch fired while no daemon ran is pending, and a vector whose
 * eventfd did not come back (or came back as something else) is re-armed to a new latch. */
Test(irq_apply, readopt_after_the_daemon_died)
{
    Fixture f;
    IrqState st;
    uint8_t vmm_map[IRQ_BITMAP_SIZE(IRQ_MAX_VECTORS)];
    IrqVectorFds vf;
    BackendFd sfd[BACKEND_MAX_FDS];
    BackendInfo info;
    char err[256] = "";

    fixture_enabled(&f, "msix=4,msi=1", IRQ_TYPE_MSIX, 4);
    int vmm0 = give(&f, 0), vmm1 = give(&f, 1), vmm3 = give(&f, 3);
    cr_assert_eq(irq_mask(f.irq, 1), 0);
    cr_assert_eq(irq_mask(f.irq, 3), 0);
    trigger_to_latch(&f, 1);
    irq_export(f.irq, &st);
    irq_export_vmm(f.irq, vmm_map);
    /* what the store keeps: vector 0's VMM eventfd, the latches of 1 and 3, the sim's memfd */
    int vmm_fds[4] = {-1, -1, -1, -1}, latch_fds[4] = {-1, -1, -1, -1};
    irq_vector_fds(f.irq, 0, &vf);
    vmm_fds[0] = dup_fd(vf.vmm_fd);
    irq_vector_fds(f.irq, 1, &vf);
    latch_fds[1] = dup_fd(vf.latch_fd);
    irq_vector_fds(f.irq, 3, &vf);
    latch_fds[3] = dup_fd(vf.latch_fd);
    vmm_fds[3] = open("/dev/null", O_RDONLY | O_CLOEXEC); /* not an eventfd: refused */
    cr_assert_eq(f.bd->ops->store_fds(f.bd, sfd, BACKEND_MAX_FDS), 1);
    int state_fd = dup_fd(sfd[0].fd);
    f.irq = irq_free(f.irq);
    backend_device_free(f.bd);
    (void)eventfd_write(latch_fds[3], 1); /* masked vector 3 fires while no daemon runs */

    cr_assert_eq(sim_device_adopt("irqdev", "msix=4,msi=1", state_fd, &f.bd, &info, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(irq_new(&f.loop, f.bd, &f.irq), 0);
    cr_assert_eq(irq_readopt(f.irq, &st, vmm_map, vmm_fds, latch_fds), 0);
    const IrqModel *m = irq_model(f.irq);
    cr_expect_eq(m->type, IRQ_TYPE_MSIX);
    cr_expect_eq(m->count, 4);
    cr_expect(m->vec[0].vmm && !m->vec[0].masked && !m->vec[0].pending);
    cr_expect(m->vec[1].masked && m->vec[1].pending && !m->vec[1].vmm, "its VMM fd was lost");
    cr_expect(m->vec[3].masked && m->vec[3].pending, "fired on its latch while no daemon ran");
    cr_expect(!m->vec[3].vmm, "/dev/null is no eventfd");
    /* vector 0: the kernel still signals the VMM's eventfd, no loop wake-up */
    cr_assert_eq(irq_trigger(f.irq, 0), 0);
    cr_expect_eq(take(vmm0), 1);
    /* vector 2 had no latch in the store: re-armed to a new one, its interrupt waits */
    trigger_to_latch(&f, 2);
    cr_expect_eq(take(vmm1) + take(vmm3), 0, "nothing reached a lost VMM eventfd");
    /* the index is still MSI-X: a disable was never needed, and MSI stays refused */
    cr_expect_eq(irq_enable(f.irq, IRQ_TYPE_MSI, 1), -EBUSY);
    fixture_done(&f);
}
