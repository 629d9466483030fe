/* SPDX-License-Identifier: MIT */
/*
 * test_mlx5_sim — the mlx5 plugin's sim model (plugins/mlx5/mlx5_sim.c) driven through its
 * hooks as the sim back-end drives them, against kernel-uapi.md §8: flags 0x7; a saving
 * stream of 16-byte LE records that starts with STOP_COPY_SIZE; pre-copy reads answering
 * -ENOMSG until PRECOPY_INFO starts the next incremental SAVE (and not in PRE_COPY_P2P);
 * chunk mode above 4 GiB; the resume parser's errnos; a LOAD failing on another PSID and
 * -ENODEV after it; a stream moving the content from one model to another.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "mlx5_sim.h"
#include "mlx5_stream.h"
#include "plugin_mock.h"

static const struct vfio_migd_sim_model *M = &mlx5_sim_model;

static void *
model(const char *options)
{
    PluginMock *pm = calloc(1, sizeof(*pm));
    char why[256] = "";
    void *m = NULL;

    plugin_mock_init(pm, "/nonexistent"); /* leaked on purpose: the model keeps the host */
    cr_assert_eq(M->create(&pm->host, options, &m, why, sizeof(why)), 0, "%s: %s", options, why);
    return m;
}

static int
refused(const char *options, const char *words)
{
    PluginMock pm;
    char why[256] = "";
    void *m = NULL;

    plugin_mock_init(&pm, "/nonexistent");
    cr_assert_eq(M->create(&pm.host, options, &m, why, sizeof(why)), -EINVAL, "%s", options);
    cr_assert(strstr(why, words), "%s: %s", options, why);
    return 1;
}

Test(mlx5_sim, options)
{
    void *m = model("");
    uint64_t image, size;

    cr_assert_eq(M->mig_flags(m), 0x7);
    cr_assert_eq(mlx5_sim_content(m, &image), 1);
    cr_assert_eq(image, 1u << 20);
    cr_assert_eq(M->data_size(m, VFIO_MIGD_STATE_RUNNING, &size), 0);
    cr_assert_eq(size, 24 + 80 + (1u << 20), "STOP_COPY_SIZE and one FW_DATA record");
    M->destroy(m);
    m = model("psid=MT_0000000001,fw=22.40.1000,eswitch=legacy,chunk=0,image=4K,dirty=64K,"
              "content=0x42");
    cr_assert_eq(mlx5_sim_content(m, &image), 0x42);
    M->destroy(m);
    refused("size=1M", "unknown option 'size'");
    refused("psid=mt-1", "psid: 'mt-1'");
    refused("chunk=2", "chunk: '2' is not 0 or 1");
    refused("image=1Q", "image");
    refused("content=0", "content");
    refused("chunk=0,image=5G", "without chunk mode");
    refused("psid", "malformed");
}

/* Reads everything readable now; the last read's result in *ret_last. */
static uint64_t
drain(void *st, uint8_t *buf, uint64_t cap, int64_t *ret_last)
{
    uint64_t total = 0;
    int64_t n;

    while ((n = M->stream_read(st, buf + total, cap - total < 777 ? cap - total : 777)) > 0) {
        total += (uint64_t) n;
        cr_assert_leq(total, cap);
    }
    *ret_last = n;
    return total;
}

Test(mlx5_sim, precopy_is_driven_by_precopy_info)
{
    void *m = model("image=64K,dirty=8K");
    uint8_t *buf = malloc(1 << 20);
    struct mlx5_record_header h;
    uint64_t initial, dirty, n;
    int64_t last;
    void *st;
    char why[256];

    cr_assert_eq(M->stream_open(m, VFIO_MIGD_STATE_RUNNING, VFIO_MIGD_STATE_PRE_COPY, &st), 0);
    cr_assert_eq(M->stream_precopy_info(st, &initial, &dirty), 0);
    cr_assert_eq(initial, 24 + 80 + 65536, "the initial SAVE, unread");
    cr_assert_eq(dirty, 8192, "the firmware's incremental size, not saved yet");
    n = drain(st, buf, 1 << 20, &last);
    cr_assert_eq(n, 24 + 80 + 65536);
    cr_assert_eq(last, -ENOMSG, "nothing queued: -ENOMSG, not 0");
    cr_assert_eq(mlx5_header_parse(buf, &h, why, sizeof(why)), 0);
    cr_assert_eq(h.tag, MLX5_TAG_STOP_COPY_SIZE, "every saving stream starts with it");
    cr_assert_eq(h.flags, MLX5_FLAG_TAG_OPTIONAL);
    cr_assert_eq(M->stream_read(st, buf, 100), -ENOMSG, "read() alone never queues more");
    cr_assert_eq(M->stream_precopy_info(st, &initial, &dirty), 0);
    cr_assert_eq(initial, 0);
    cr_assert_eq(dirty, 80 + 8192, "the ioctl started an incremental SAVE");
    n = drain(st, buf, 1 << 20, &last);
    cr_assert_eq(n, 80 + 8192);
    cr_assert_eq(M->stream_advance(st, VFIO_MIGD_STATE_PRE_COPY, VFIO_MIGD_STATE_PRE_COPY_P2P), 0);
    cr_assert_eq(M->stream_precopy_info(st, &initial, &dirty), 0);
    cr_assert_eq(dirty, 0, "PRE_COPY_P2P: no firmware query, nothing queued");
    cr_assert_eq(M->stream_read(st, buf, 100), -ENOMSG);
    cr_assert_eq(M->stream_advance(st, VFIO_MIGD_STATE_PRE_COPY_P2P, VFIO_MIGD_STATE_STOP_COPY), 0);
    n = drain(st, buf, 1 << 20, &last);
    cr_assert_eq(n, 80 + 8192, "the final incremental SAVE");
    cr_assert_eq(last, 0, "then the end, in STOP_COPY");
    M->stream_close(st);
    M->destroy(m);
    free(buf);
}

/* Source -> destination through a buffer; the destination's write() result. */
static int64_t
migrate(void *src, void *dst, int precopy, uint64_t *ret_bytes)
{
    uint8_t buf[5000];
    void *out, *in;
    int64_t n, w = 0;
    uint64_t a, b;

    cr_assert_eq(M->stream_open(src, precopy ? VFIO_MIGD_STATE_RUNNING : VFIO_MIGD_STATE_STOP,
                                precopy ? VFIO_MIGD_STATE_PRE_COPY : VFIO_MIGD_STATE_STOP_COPY,
                                &out), 0);
    cr_assert_eq(M->stream_open(dst, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_RESUMING, &in), 0);
    *ret_bytes = 0;
    for (int round = 0; precopy && round < 3; round++) {
        while (w >= 0 && (n = M->stream_read(out, buf, sizeof(buf))) > 0) {
            w = M->stream_write(in, buf, (uint64_t) n);
            *ret_bytes += (uint64_t) n;
        }
        cr_assert_eq(M->stream_precopy_info(out, &a, &b), 0);
    }
    if (precopy) {
        cr_assert_eq(M->stream_advance(out, VFIO_MIGD_STATE_PRE_COPY,
                                       VFIO_MIGD_STATE_PRE_COPY_P2P), 0);
        cr_assert_eq(M->stream_advance(out, VFIO_MIGD_STATE_PRE_COPY_P2P,
                                       VFIO_MIGD_STATE_STOP_COPY), 0);
    }
    while (w >= 0 && (n = M->stream_read(out, buf, sizeof(buf))) > 0) {
        w = M->stream_write(in, buf, (uint64_t) n);
        *ret_bytes += (uint64_t) n;
    }
    if (w >= 0) {
        cr_assert_eq(M->stream_finish(in), 0);
    }
    M->stream_close(out);
    M->stream_close(in);
    return w;
}

Test(mlx5_sim, a_migration_moves_the_content)
{
    void *src = model("image=100K,dirty=10K,content=7,chunk=1");
    void *dst = model("image=4K,content=9");
    uint64_t si, di, bytes;

    cr_assert_geq(migrate(src, dst, 1, &bytes), 0);
    cr_assert_neq(mlx5_sim_content(src, &si), 7, "pre-copy rounds changed the state");
    cr_assert_eq(mlx5_sim_content(dst, &di), mlx5_sim_content(src, &si));
    cr_assert_eq(di, 100 * 1024, "the image size came along");
    M->destroy(src);
    M->destroy(dst);
}

Test(mlx5_sim, another_psid_fails_the_load)
{
    void *src = model("psid=MT_0000000359,content=7");
    void *dst = model("psid=MT_0000000360,content=9");
    uint8_t b[1] = {0};
    uint64_t image, bytes;
    void *in;

    cr_assert_eq(migrate(src, dst, 0, &bytes), -EIO, "LOAD_VHCA_STATE rejected in write()");
    cr_assert_eq(mlx5_sim_content(dst, &image), 9, "the VF keeps its state");
    cr_assert_eq(M->stream_open(dst, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_RESUMING, &in), 0);
    cr_assert_eq(M->stream_write(in, b, 1), 1, "a new session starts clean");
    M->stream_close(in);
    M->destroy(src);
    M->destroy(dst);
}

Test(mlx5_sim, the_resume_parser_errnos_and_then_enodev)
{
    void *dst = model("");
    struct mlx5_record_header h = {.record_size = 3, .flags = 0, .tag = 0x42};
    uint8_t b[16];
    void *in;

    mlx5_header_write(&h, b);
    cr_assert_eq(M->stream_open(dst, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_RESUMING, &in), 0);
    cr_assert_eq(M->stream_write(in, b, 10), 10);
    cr_assert_eq(M->stream_write(in, b + 10, 6), -EOPNOTSUPP, "unknown mandatory tag");
    cr_assert_eq(M->stream_write(in, b, 16), -ENODEV, "the file is in its error state");
    M->stream_close(in);
    h = (struct mlx5_record_header){.record_size = UINT64_C(1) << 32, .tag = MLX5_TAG_FW_DATA};
    mlx5_header_write(&h, b);
    cr_assert_eq(M->stream_open(dst, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_RESUMING, &in), 0);
    cr_assert_eq(M->stream_write(in, b, 16), -ENOMEM, "a record past one LOAD");
    M->stream_close(in);
    h = (struct mlx5_record_header){.record_size = 3, .flags = 1, .tag = 0x42};
    mlx5_header_write(&h, b);
    cr_assert_eq(M->stream_open(dst, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_RESUMING, &in), 0);
    cr_assert_eq(M->stream_write(in, b, 16), 16);
    cr_assert_eq(M->stream_write(in, b, 3), 3, "an optional record is skipped");
    cr_assert_eq(M->stream_finish(in), 0, "RESUMING -> STOP checks nothing");
    M->stream_close(in);
    M->destroy(dst);
}

Test(mlx5_sim, a_corrupted_byte_fails_the_load)
{
    void *src = model("image=8K,content=3");
    void *dst = model("content=4");
    uint8_t buf[24 + 80 + 8192];
    uint64_t image;
    int64_t last;
    void *out, *in;

    cr_assert_eq(M->stream_open(src, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_STOP_COPY, &out), 0);
    cr_assert_eq(drain(out, buf, sizeof(buf), &last), sizeof(buf));
    cr_assert_eq(last, 0);
    buf[24 + 80 + 4000] ^= 1;
    cr_assert_eq(M->stream_open(dst, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_RESUMING, &in), 0);
    cr_assert_eq(M->stream_write(in, buf, sizeof(buf) - 1), sizeof(buf) - 1, "not loaded yet");
    cr_assert_eq(M->stream_write(in, buf + sizeof(buf) - 1, 1), -EIO, "loaded: refused");
    M->stream_close(in);
    M->stream_close(out);
    cr_assert_eq(mlx5_sim_content(dst, &image), 4);
    M->destroy(src);
    M->destroy(dst);
}

Test(mlx5_sim, chunk_mode_above_4_gib)
{
    void *m = model("image=5G,chunk=1");
    uint8_t *buf = malloc(24 + 2 * (80 + (8u << 20)));
    struct mlx5_record_header h;
    uint64_t size;
    void *out;
    char why[128];

    cr_assert_eq(M->data_size(m, VFIO_MIGD_STATE_STOP, &size), 0);
    cr_assert_eq(size, 24 + 640 * 80 + (UINT64_C(5) << 30), "640 chunks of 8 MiB");
    cr_assert_eq(M->stream_open(m, VFIO_MIGD_STATE_STOP, VFIO_MIGD_STATE_STOP_COPY, &out), 0);
    cr_assert_eq(M->stream_read(out, buf, 24 + 2 * (80 + (8u << 20))), 24 + 2 * (80 + (8u << 20)));
    cr_assert_eq(mlx5_header_parse(buf + 24 + 80 + (8u << 20), &h, why, sizeof(why)), 0);
    cr_assert_eq(h.record_size, 64 + (8u << 20), "the second chunk is a record of its own");
    cr_assert_eq(buf[24 + 80 + (8u << 20) + 16 + 24 + 2], 0x80, "at image offset 8 MiB");
    M->stream_close(out);
    M->destroy(m);
    free(buf);
}
