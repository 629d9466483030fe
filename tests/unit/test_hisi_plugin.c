/* SPDX-License-Identifier: MIT */
/*
 * The hisi plugin's hooks (plugins/hisi/hisi.c) against the plugin mock and a fake sysfs
 * tree, and its sim model (hisi_model.c) call by call against kernel-uapi.md §9: flags 0x5,
 * MIG_DATA_SIZE 176, pre-copy with the 40 match bytes only, read() 0 at the temporary end,
 * the state appended at PRE_COPY -> STOP_COPY, write() EFAULT on a match mismatch (after
 * taking the bytes) and ENOMEM past 176, RESUMING -> STOP taking 40 or 176 bytes only, and
 * EBUSY when the device is stopped with interrupts pending.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin_mock.h"

#include "hisi.h"
#include "hisi_stream.h"
#include "../unit/tmptree.h"

VFIO_MIGD_PLUGIN_EXPORT const struct vfio_migd_plugin *vfio_migd_plugin_entry(void);

static PluginMock mock;
static char root[64];
static const struct vfio_migd_plugin *P;
static const struct vfio_migd_sim_model *M;

static void
setup(void)
{
    char dir[256];

    (void) snprintf(root, sizeof(root), "/tmp/test-hisi-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    (void) snprintf(dir, sizeof(dir), "%s/bus/pci/devices/0000:3b:00.0", root);
    for (char *p = dir + strlen(root) + 1; (p = strchr(p, '/')); p++) {
        *p = '\0';
        (void) mkdir(dir, 0755);
        *p = '/';
    }
    cr_assert_eq(mkdir(dir, 0755), 0);
    plugin_mock_init(&mock, root);
    mock.now_ns = 12345;
    P = vfio_migd_plugin_entry();
    M = P->sim_model;
}

static void
teardown(void)
{
    (void) tmptree_remove(root);
}

TestSuite(hisi, .init = setup, .fini = teardown, .timeout = 30);

static void
revision(const char *text)
{
    char path[256];
    FILE *f;

    (void) snprintf(path, sizeof(path), "%s/bus/pci/devices/0000:3b:00.0/revision", root);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static struct vfio_migd_device
real_vf(const char *driver, const char *pf_driver)
{
    return (struct vfio_migd_device){
        .struct_size = sizeof(struct vfio_migd_device), .name = "z0", .bus = "pci",
        .address = "0000:3b:00.2", .driver = driver, .vendor_id = 0x19e5, .device_id = 0xa251,
        .mdev_type = "", .parent = "0000:3b:00.0", .parent_driver = pf_driver,
        .sysfs_path = "", .sim_options = ""};
}

Test(hisi, a_ready_vf_passes_every_prerequisite)
{
    struct vfio_migd_device dev = real_vf("hisi_acc_vfio_pci", "hisi_zip");
    char why[512];

    revision("0x30\n");
    cr_assert_eq(P->prerequisites(&mock.host, &dev, &mock.prereqs), 0);
    cr_expect_str_empty(plugin_mock_prereq_unmet(&mock, 4, why, sizeof(why)));
}

Test(hisi, each_failing_prerequisite_has_its_fix)
{
    struct vfio_migd_device dev = real_vf("vfio-pci", "vfio-pci");

    revision("0x21\n");
    cr_assert_eq(P->prerequisites(&mock.host, &dev, &mock.prereqs), 0);
    cr_assert_eq(mock.prereqs.n, 4);
    cr_expect_eq(mock.prereqs.items[0].ok, 0);
    cr_expect_str_eq(mock.prereqs.items[0].fix, "vfio-migctl bind 0000:3b:00.2");
    cr_expect_eq(mock.prereqs.items[1].ok, 1, "a VF");
    cr_expect_eq(mock.prereqs.items[2].ok, 0);
    cr_expect_str_eq(mock.prereqs.items[2].fix, "modprobe hisi_zip && echo 0000:3b:00.0 > "
                     "/sys/bus/pci/drivers/hisi_zip/bind && vfio-migctl bind 0000:3b:00.2");
    cr_expect_eq(mock.prereqs.items[3].ok, 0);
    cr_expect(strstr(mock.prereqs.items[3].message, "version 0x21"), "%s",
              mock.prereqs.items[3].message);
    /* a SEC VF wants hisi_sec2; no revision file: said so */
    dev.device_id = 0xa256;
    (void) unlink(strcat(strcpy((char[256]){0}, root), "/bus/pci/devices/0000:3b:00.0/revision"));
    mock.prereqs.n = 0;
    cr_assert_eq(P->prerequisites(&mock.host, &dev, &mock.prereqs), 0);
    cr_expect(strstr(mock.prereqs.items[2].fix, "modprobe hisi_sec2"), "%s", mock.prereqs.items[2].fix);
    cr_expect(strstr(mock.prereqs.items[3].message, "cannot be read"), "%s", mock.prereqs.items[3].message);
    dev.parent = "";
    mock.prereqs.n = 0;
    cr_assert_eq(P->prerequisites(&mock.host, &dev, &mock.prereqs), 0);
    cr_expect_eq(mock.prereqs.items[1].ok, 0, "not a VF");
}

Test(hisi, descriptors_of_real_and_sim_devices)
{
    struct vfio_migd_device dev = real_vf("hisi_acc_vfio_pci", "hisi_zip");
    char why[256] = "";

    cr_assert_eq(P->descriptor(&mock.host, &dev, &mock.fields, why, sizeof(why)), 0, "%s", why);
    cr_assert_eq(mock.fields.n, 1, "a real VF: dev_id only");
    cr_expect_str_eq(plugin_mock_field(&mock, "dev_id"), "a251");
    mock.fields.n = 0;
    dev = (struct vfio_migd_device){.struct_size = sizeof(dev), .simulated = 1, .name = "s",
                                    .bus = "", .address = "", .driver = "", .mdev_type = "",
                                    .parent = "", .parent_driver = "", .sysfs_path = "",
                                    .sim_options = "size_ignored=1,model=hisi,dev_id=a259,"
                                                   "qp_num=8,iso=1,magic=v1"};
    cr_assert_eq(P->descriptor(&mock.host, &dev, &mock.fields, why, sizeof(why)), 0, "%s", why);
    cr_expect_str_eq(plugin_mock_field(&mock, "dev_id"), "a259");
    cr_expect_str_eq(plugin_mock_field(&mock, "qp_num"), "8");
    cr_expect_str_eq(plugin_mock_field(&mock, "que_iso_cfg"), "1");
    cr_expect_str_eq(plugin_mock_field(&mock, "stream_magic"), "v1");
}

/* ---- the sim model */

static void *
model(const char *opts)
{
    void *m = NULL;
    char why[256] = "";

    cr_assert_eq(M->create(&mock.host, opts, &m, why, sizeof(why)), 0, "'%s': %s", opts, why);
    return m;
}

static void *
open_stream(void *m, uint32_t from, uint32_t to)
{
    void *s = NULL;

    cr_assert_eq(M->stream_open(m, from, to, &s), 0);
    return s;
}

Test(hisi, model_options_flags_and_size)
{
    void *m = model("dev_id=a256,qp_num=16");
    uint64_t size = 0;
    char why[256] = "";
    void *bad = NULL;

    cr_expect_eq(M->mig_flags(m), 0x5u, "STOP_COPY | PRE_COPY, no P2P");
    for (uint32_t st = 1; st <= 6; st++) {
        cr_expect_eq(M->data_size(m, st, &size), 0);
        cr_expect_eq(size, 176u, "MIG_DATA_SIZE is 176 in every state");
    }
    M->destroy(m);
    cr_expect_eq(M->create(&mock.host, "colour=red", &bad, why, sizeof(why)), -EINVAL);
    cr_expect(strstr(why, "unknown option 'colour'"), "%s", why);
    cr_expect_eq(M->create(&mock.host, "dev_id=a252", &bad, why, sizeof(why)), -EINVAL);
    cr_expect(strstr(why, "dev_id"), "%s", why);
}

/* Pre-copy: the 40 match bytes, read() 0, PRECOPY_INFO counting down; PRE_COPY -> STOP_COPY
 * appends the rest; a destination with the same match takes it all and loads it. */
Test(hisi, precopy_then_stop_copy_then_resume)
{
    void *src = model("content=7,qp_num=32"), *dst = model("content=8,qp_num=32");
    void *s = open_stream(src, VFIO_MIGD_STATE_RUNNING, VFIO_MIGD_STATE_PRE_COPY), *w;
    uint8_t buf[200];
    uint64_t initial, dirty;
    struct hisi_match match;

    cr_assert_eq(M->stream_precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(initial, 40u);
    cr_expect_eq(dirty, 0u);
    cr_assert_eq(M->stream_read(s, buf, 30), 30);
    cr_assert_eq(M->stream_precopy_info(s, &initial, &dirty), 0);
    cr_expect_eq(initial, 10u);
    cr_assert_eq(M->stream_read(s, buf + 30, sizeof(buf)), 10);
    cr_expect_eq(M->stream_read(s, buf + 40, sizeof(buf)), 0, "the temporary end is 0, not ENOMSG");
    hisi_match_decode(buf, &match);
    cr_expect_eq(match.magic, HISI_MAGIC_V2);
    cr_expect_eq(match.qp_num, 32u);
    cr_expect_eq(match.dev_id, 0xa251u);
    cr_expect_eq(match.vf_qm_state, HISI_QM_READY);
    cr_assert_eq(M->arc(src, VFIO_MIGD_STATE_PRE_COPY, VFIO_MIGD_STATE_STOP_COPY), 0);
    cr_assert_eq(M->stream_advance(s, VFIO_MIGD_STATE_PRE_COPY, VFIO_MIGD_STATE_STOP_COPY), 0);
    cr_assert_eq(M->stream_read(s, buf + 40, sizeof(buf)), 136);
    cr_expect_eq(M->stream_read(s, buf, sizeof(buf)), 0);
    M->stream_close(s);

    cr_expect_neq(M->digest(src), M->digest(dst));
    w = open_stream(dst, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_RESUMING);
    for (size_t i = 0; i < 176; i += 16) {
        cr_assert_eq(M->stream_write(w, buf + i, 176 - i < 16 ? 176 - i : 16),
                     176 - i < 16 ? (int64_t) (176 - i) : 16);
    }
    cr_expect_eq(M->stream_write(w, buf, 1), -ENOMEM, "past 176 bytes");
    cr_assert_eq(M->stream_finish(w), 0);
    M->stream_close(w);
    cr_expect_eq(M->digest(src), M->digest(dst), "the destination took the content");
    M->destroy(src);
    M->destroy(dst);
}

Test(hisi, a_match_mismatch_is_efault_once_40_bytes_are_in)
{
    void *src = model("qp_num=64"), *dst = model("qp_num=32");
    void *s = open_stream(src, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_STOP_COPY);
    void *w = open_stream(dst, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_RESUMING);
    uint8_t buf[176];
    uint64_t d0 = M->digest(dst);

    cr_assert_eq(M->stream_read(s, buf, sizeof(buf)), 176, "STOP -> STOP_COPY: match and state");
    cr_expect_eq(M->stream_write(w, buf, 39), 39, "not checked before 40 bytes");
    cr_expect_eq(M->stream_write(w, buf + 39, 1), -EFAULT);
    cr_expect_eq(M->stream_write(w, buf + 40, 136), -EFAULT, "checked again, as the driver does");
    cr_expect_eq(M->stream_finish(w), -EINVAL, "strict: a refused match never loads");
    cr_expect_eq(M->digest(dst), d0);
    M->stream_close(s);
    M->stream_close(w);
    M->destroy(src);
    M->destroy(dst);
}

/* RESUMING -> STOP: exactly 40 bytes (nothing loaded) or 176; anything else EINVAL. */
Test(hisi, the_final_check_takes_40_or_176_bytes)
{
    void *src = model("content=1"), *dst = model("content=2");
    void *s = open_stream(src, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_STOP_COPY), *w;
    uint8_t buf[176];
    uint64_t d0 = M->digest(dst);

    cr_assert_eq(M->stream_read(s, buf, sizeof(buf)), 176);
    M->stream_close(s);
    w = open_stream(dst, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_RESUMING);
    cr_expect_eq(M->stream_write(w, buf, 40), 40);
    cr_expect_eq(M->stream_finish(w), 0, "match data only: success");
    cr_expect_eq(M->digest(dst), d0, "  ... and nothing loaded");
    cr_expect_eq(M->stream_write(w, buf + 40, 60), 60);
    cr_expect_eq(M->stream_finish(w), -EINVAL, "100 bytes");
    M->stream_close(w);
    w = open_stream(dst, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_RESUMING);
    cr_expect_eq(M->stream_finish(w), -EINVAL, "nothing written");
    M->stream_close(w);
    M->destroy(src);
    M->destroy(dst);
}

/* A guest that never started the VF's queues: the stream is the match data alone, saying so. */
Test(hisi, a_vf_whose_queues_are_not_ready_saves_40_bytes)
{
    void *m = model("qm_ready=0");
    void *s = open_stream(m, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_STOP_COPY);
    uint8_t buf[176];
    struct hisi_match match;

    cr_assert_eq(M->stream_read(s, buf, sizeof(buf)), 40);
    hisi_match_decode(buf, &match);
    cr_expect_eq(match.vf_qm_state, HISI_QM_NOT_READY);
    M->stream_close(s);
    M->destroy(m);
}

Test(hisi, stopping_with_interrupts_pending_is_ebusy)
{
    void *m = model("irq_pending=1");

    cr_expect_eq(M->arc(m, VFIO_MIGD_STATE_RUNNING, VFIO_MIGD_STATE_STOP), -EBUSY);
    cr_expect_eq(M->arc(m, VFIO_MIGD_STATE_PRE_COPY, VFIO_MIGD_STATE_STOP_COPY), -EBUSY);
    cr_expect_eq(M->arc(m, VFIO_MIGD_STATE_RUNNING, VFIO_MIGD_STATE_PRE_COPY), 0);
    cr_expect_eq(M->arc(m, VFIO_MIGD_STATE_PRE_COPY, VFIO_MIGD_STATE_RUNNING), 0);
    cr_expect_eq(M->arc(m, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_RUNNING), 0);
    M->destroy(m);
    m = model("");
    cr_expect_eq(M->arc(m, VFIO_MIGD_STATE_RUNNING, VFIO_MIGD_STATE_STOP), 0);
    M->destroy(m);
}
