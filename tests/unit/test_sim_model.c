/* SPDX-License-Identifier: MIT */
/*
 * test_sim_model — the seam between the sim back-end and a vendor's sim model (plugin.h
 * struct vfio_migd_sim_model), with the real test plugin tests/plugins/seam.c loaded through
 * plugin_host: what the sim asks the model (flags, data size, arc errors, stream bytes,
 * write() validation, PRECOPY_INFO, the RESUMING -> STOP check, the digest), what it keeps
 * for itself (the walk, the fd rules and their errnos, its holds and faults), which options
 * reach the model, and that a model breaking the ABI's contract gets -EIO, not trust.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "backend/backend.h"
#include "core/fsm.h"
#include "plugin_host.h"
#include "util/log.h"
#include "backend_props.h"

static PluginHost *host;
static SimModel seam;

static void
setup(void)
{
    PluginServices svc = plugin_services_default("/nonexistent-sysfs");
    const Plugin *p;

    log_set_max_level(LOG_ERR);
    host = plugin_host_new(&svc);
    cr_assert(host);
    cr_assert_eq(plugin_host_load(host, TEST_PLUGIN_DIR "/seam.so"), 0);
    p = plugin_host_find_model(host, "seam");
    cr_assert(p);
    seam = (SimModel){plugin_sim_model(p), plugin_host_services(p)};
}

static void
teardown(void)
{
    host = plugin_host_free(host);
}

TestSuite(sim_model, .init = setup, .fini = teardown, .timeout = 30);

static BackendDevice *
dev_new(const char *opts, BackendInfo *info)
{
    BackendDevice *bd = NULL;
    char err[256] = "";
    int r = sim_device_new_model("m0", opts, &seam, &bd, info, err, sizeof(err));

    cr_assert_eq(r, 0, "'%s': %d %s", opts, r, err);
    return bd;
}

static int
dev_new_err(const char *opts, char *err, size_t size)
{
    BackendDevice *bd = NULL;
    int r = sim_device_new_model("m0", opts, &seam, &bd, NULL, err, size);

    cr_assert_null(bd);
    return r;
}

static DataSession *
set_ok(BackendDevice *bd, DeviceState to)
{
    DataSession *s = NULL;
    int r = bd->ops->set_state(bd, to, &s);

    cr_assert_eq(r, 0, "set %s: %d", fsm_state_name(to), r);
    return s;
}

Test(sim_model, flags_data_size_and_identity_are_the_models)
{
    BackendInfo info = {0};
    BackendDevice *bd = dev_new("model=seam,mflags=7", &info);
    BackendIdentity id;
    uint64_t size = 0;
    char buf[64];

    cr_expect_eq(info.mig_flags, 0x7u);
    cr_expect_eq(bd->ops->data_size(bd, &size), 0);
    cr_expect_eq(size, 32u);
    cr_expect_str_eq(dev_prop(bd, "model", buf, sizeof(buf)), "seam");
    cr_expect_null(dev_prop(bd, "size", buf, sizeof(buf)), "the sim's content model is not used");
    cr_expect_str_eq(dev_prop(bd, "digest", buf, sizeof(buf)), "5ea0000000000001");
    cr_assert_eq(bd->ops->identity(bd, "/sys", &id), 0);
    cr_expect_str_eq(id.sim_model, "seam");
    backend_device_free(bd);
    bd = dev_new("model=seam", &info);
    cr_expect_eq(info.mig_flags, 0x5u, "the model's default, not the sim's 0x7");
    backend_device_free(bd);
}

/* The sim's own keys never reach the model; the model refuses what it does not know; keys the
 * model decides are refused by the sim. */
Test(sim_model, options_are_split_between_sim_and_model)
{
    char err[256] = "";
    BackendDevice *bd = dev_new("latency_ms=0,model=seam,content=9,fail_arc=stop->stop_copy", NULL);

    backend_device_free(bd);
    cr_expect_eq(dev_new_err("model=seam,colour=red", err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "seam: unknown option or bad value 'colour"), "%s", err);
    cr_expect_eq(dev_new_err("model=seam,flags=7", err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "flags: has no effect with model=seam"), "%s", err);
    cr_expect_eq(dev_new_err("model=seam,size=4K", err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "size:"), "%s", err);
    cr_expect_eq(dev_new_err("model=seam,mflags=2", err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "0x2"), "%s", err);
    cr_expect_eq(dev_new_err("model=other", err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "model: 'other'"), "%s", err);
    /* fault arcs are checked against the model's flags: 0x5 has no RUNNING_P2P */
    cr_expect_eq(dev_new_err("model=seam,fail_arc=running->running_p2p", err, sizeof(err)),
                 -EINVAL);
    cr_expect(strstr(err, "flags=stop_copy+pre_copy"), "%s", err);
    /* without a model, a vendor's name is no model of the sim */
    cr_expect_eq(sim_device_new("g", "model=seam", &bd, NULL, err, sizeof(err)), -EINVAL);
    cr_expect(strstr(err, "model: 'seam' is not a model of the sim back-end"), "%s", err);
}

/* Pre-copy carries the header only, read() answers 0 at the temporary end, PRECOPY_INFO is
 * the model's, PRE_COPY -> STOP_COPY appends the body to the same stream; the destination
 * takes it and RESUMING -> STOP gives it the content. */
Test(sim_model, a_save_and_restore_runs_through_the_model)
{
    BackendDevice *src = dev_new("model=seam,content=42", NULL);
    BackendDevice *dst = dev_new("model=seam,accept=42", NULL);
    DataSession *s = set_ok(src, DEVICE_STATE_PRE_COPY), *w;
    uint8_t buf[64];
    uint64_t initial = 9, dirty = 9;
    ssize_t n;
    char a[64], b[64];

    cr_assert_not_null(s);
    cr_expect_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(initial, 8u);
    cr_expect_eq(dirty, 0u);
    cr_expect_eq(s->ops->read(s, buf, sizeof(buf)), 8);
    cr_expect_eq(s->ops->read(s, buf, sizeof(buf)), 0, "the temporary end");
    cr_expect_eq(s->ops->precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(initial, 0u);
    cr_assert_null(set_ok(src, DEVICE_STATE_STOP_COPY), "no new fd on PRE_COPY -> STOP_COPY");
    cr_expect_eq(s->ops->precopy_info(s, &initial, &dirty), -EINVAL, "the sim's: not PC");
    n = s->ops->read(s, buf + 8, sizeof(buf) - 8);
    cr_assert_eq(n, 24);
    cr_expect_eq(s->ops->read(s, buf, sizeof(buf)), 0);
    cr_expect_eq(memcmp(buf, "SEAMHDR*", 8), 0);
    cr_expect_eq(s->ops->write(s, buf, 1), -EBADF, "the sim's fd rule");
    set_ok(src, DEVICE_STATE_STOP);
    cr_expect_eq(s->ops->read(s, buf, 1), -ENODEV, "the session ended");
    data_session_free(s);

    w = set_ok(dst, DEVICE_STATE_RESUMING);
    cr_assert_not_null(w);
    cr_expect_eq(w->ops->read(w, buf, 1), -EBADF);
    cr_expect_eq(w->ops->precopy_info(w, &initial, &dirty), -ENOTTY);
    for (size_t i = 0; i < 32; i += 5) {
        size_t k = 32 - i < 5 ? 32 - i : 5;

        cr_expect_eq(w->ops->write(w, buf + i, k), (ssize_t) k);
    }
    cr_expect_eq(w->ops->write(w, buf, 1), -ENOMEM, "the model's: past the end");
    set_ok(dst, DEVICE_STATE_STOP);
    data_session_free(w);
    cr_expect_str_eq(dev_prop(dst, "digest", a, sizeof(a)), dev_prop(src, "digest", b, sizeof(b)));
    backend_device_free(src);
    backend_device_free(dst);
}

/* The model's write() errno passes through; its final check fails RESUMING -> STOP and the
 * device stays in RESUMING with its content. */
Test(sim_model, the_models_refusals_reach_the_caller)
{
    BackendDevice *dst = dev_new("model=seam,accept=7,content=3", NULL);
    DataSession *w = set_ok(dst, DEVICE_STATE_RESUMING);
    const uint8_t hdr[8] = {'S', 'E', 'A', 'M', 'H', 'D', 'R', 8};
    char d[64];

    cr_expect_eq(w->ops->write(w, hdr, 8), -EFAULT, "a match mismatch");
    cr_expect_eq(w->ops->write(w, hdr, 4), 4, "a failed write took nothing");
    cr_expect_eq(dst->ops->set_state(dst, DEVICE_STATE_STOP, NULL), -EINVAL);
    cr_expect_eq(dev_state(dst), DEVICE_STATE_RESUMING);
    cr_expect_str_eq(dev_prop(dst, "digest", d, sizeof(d)), "5ea0000000000003");
    data_session_free(w);
    cr_expect_eq(dst->ops->reset(dst), 0);
    cr_expect_eq(dev_state(dst), DEVICE_STATE_RUNNING);
    backend_device_free(dst);
}

/* A device of @options refuses RUNNING -> STOP with EIO and stays running. */
static void
stop_fails_with_eio(const char *options)
{
    BackendDevice *bd = dev_new(options, NULL);

    cr_expect_eq(bd->ops->set_state(bd, DEVICE_STATE_STOP, NULL), -EIO);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_RUNNING);
    backend_device_free(bd);
}

/* An arc the model fails leaves the device where the arc started (kernel-uapi.md §6.4), and
 * the sim's own fault comes first. */
Test(sim_model, an_arc_the_model_fails_stays_where_it_was)
{
    BackendDevice *bd = dev_new("model=seam,busy=1", NULL);
    DataSession *s = NULL;

    cr_expect_eq(bd->ops->set_state(bd, DEVICE_STATE_STOP, &s), -EBUSY);
    cr_expect_eq(dev_state(bd), DEVICE_STATE_RUNNING);
    /* through pre-copy the device never takes RUNNING -> STOP */
    s = set_ok(bd, DEVICE_STATE_PRE_COPY);
    cr_assert_not_null(s);
    cr_expect_null(set_ok(bd, DEVICE_STATE_STOP_COPY));
    data_session_free(s);
    backend_device_free(bd);
    stop_fails_with_eio("model=seam,busy=1,fail_arc=running->stop,fail_errno=5");
}

/* What the ABI forbids a hook to return is not passed on. */
Test(sim_model, a_model_breaking_the_contract_gets_eio)
{
    BackendDevice *bd = dev_new("model=seam,bad=read", NULL);
    DataSession *s = set_ok(bd, DEVICE_STATE_PRE_COPY);
    uint8_t buf[4];
    uint64_t size = 0;

    cr_expect_eq(s->ops->read(s, buf, sizeof(buf)), -EIO);
    data_session_free(s);
    backend_device_free(bd);
    stop_fails_with_eio("model=seam,bad=errno");
    bd = dev_new("model=seam,bad=size", NULL);
    cr_expect_eq(bd->ops->data_size(bd, &size), -EIO);
    backend_device_free(bd);
}

/* A new session replaces the old one, which answers -ENODEV without reaching the model
 * (whose stream was closed), and a reset ends the live one. */
Test(sim_model, ended_sessions_never_reach_the_model)
{
    BackendDevice *bd = dev_new("model=seam", NULL);
    DataSession *s = set_ok(bd, DEVICE_STATE_PRE_COPY);
    uint8_t buf[8];
    uint64_t i, d;

    set_ok(bd, DEVICE_STATE_RUNNING);
    cr_expect_eq(s->ops->read(s, buf, sizeof(buf)), -ENODEV);
    cr_expect_eq(s->ops->precopy_info(s, &i, &d), -EINVAL);
    data_session_free(s);
    s = set_ok(bd, DEVICE_STATE_PRE_COPY);
    cr_expect_eq(bd->ops->reset(bd), 0);
    cr_expect_eq(s->ops->read(s, buf, sizeof(buf)), -ENODEV);
    data_session_free(s);
    backend_device_free(bd);
}
