/* SPDX-License-Identifier: MIT */
/*
 * hisi_options — see hisi_options.h.
 */
#include "hisi_options.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hisi_stream.h"

#define HISI_OPTIONS_MAX 4096

static const struct {
    uint32_t dev_id;
    const char *pf_driver;
} hisi_devices[] = {
    {0xa251, "hisi_zip"},  /* ZIP VF */
    {0xa256, "hisi_sec2"}, /* SEC VF */
    {0xa259, "hisi_hpre"}, /* HPRE VF */
};

const char *
hisi_native_driver(uint32_t dev_id)
{
    for (size_t i = 0; i < sizeof(hisi_devices) / sizeof(hisi_devices[0]); i++) {
        if (hisi_devices[i].dev_id == dev_id) {
            return hisi_devices[i].pf_driver;
        }
    }
    return NULL;
}

/* A whole number in @base within [0, @max]. */
static int
hisi_number(const char *v, int base, uint64_t max, uint64_t *ret)
{
    char *end;
    unsigned long long x;

    if (!*v || *v == '-' || *v == '+' || *v == ' ') {
        return -EINVAL;
    }
    errno = 0;
    x = strtoull(v, &end, base);
    if (errno || *end || x > max) {
        return -EINVAL;
    }
    *ret = x;
    return 0;
}

static int
hisi_opt_dev_id(struct hisi_options *o, const char *v)
{
    uint64_t x;

    if (strlen(v) != 4 || hisi_number(v, 16, 0xffff, &x) < 0 || !hisi_native_driver((uint32_t) x)) {
        return -EINVAL;
    }
    o->dev_id = (uint32_t) x;
    return 0;
}

static int
hisi_opt_magic(struct hisi_options *o, const char *v)
{
    if (strcmp(v, "v1") == 0 || strcmp(v, "v2") == 0) {
        o->magic = v[1] == '1' ? HISI_MAGIC_V1 : HISI_MAGIC_V2;
        return 0;
    }
    return strncmp(v, "0x", 2) == 0 ? hisi_number(v + 2, 16, UINT64_MAX, &o->magic) : -EINVAL;
}

static int
hisi_opt_pf_driver(struct hisi_options *o, const char *v)
{
    size_t n = strlen(v);

    if (n == 0 || n >= sizeof(o->pf_driver) ||
        strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") != n) {
        return -EINVAL;
    }
    memcpy(o->pf_driver, v, n + 1);
    return 0;
}

/* One key; 1 when it is not the model's. */
static int
hisi_option(struct hisi_options *o, const char *key, const char *v)
{
    uint64_t x = 0;
    int r;

    if (strcmp(key, "dev_id") == 0) {
        return hisi_opt_dev_id(o, v);
    }
    if (strcmp(key, "magic") == 0) {
        return hisi_opt_magic(o, v);
    }
    if (strcmp(key, "pf_driver") == 0) {
        return hisi_opt_pf_driver(o, v);
    }
    if (strcmp(key, "content") == 0) {
        o->content_set = 1;
        return hisi_number(v, 10, UINT64_MAX, &o->content);
    }
    if (strcmp(key, "qm_ver") == 0) {
        r = strncmp(v, "0x", 2) == 0 ? hisi_number(v + 2, 16, 0xff, &x) : -EINVAL;
        o->qm_ver = (uint32_t) x;
        return r;
    }
    static const struct {
        const char *key;
        uint64_t min, max;
        size_t off;
    } nums[] = {
        {"qp_num", 1, 1024, offsetof(struct hisi_options, qp_num)},
        {"iso", 0, 1, offsetof(struct hisi_options, que_iso_cfg)},
        {"qp_base", 0, 1023, offsetof(struct hisi_options, qp_base)},
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        if (strcmp(key, nums[i].key) == 0) {
            r = hisi_number(v, 10, nums[i].max, &x);
            if (r < 0 || x < nums[i].min) {
                return -EINVAL;
            }
            *(uint32_t *) ((char *) o + nums[i].off) = (uint32_t) x;
            return 0;
        }
    }
    if (strcmp(key, "qm_ready") == 0 || strcmp(key, "irq_pending") == 0) {
        r = hisi_number(v, 10, 1, &x);
        *(key[0] == 'q' ? &o->qm_ready : &o->irq_pending) = (int) x;
        return r;
    }
    return 1;
}

static const char hisi_keys[] = "dev_id, qp_num, iso, qp_base, magic, qm_ready, content, "
                                "irq_pending, pf_driver, qm_ver";

int
hisi_options_parse(const char *options, int strict, struct hisi_options *o, char *why,
                   size_t why_size)
{
    char buf[HISI_OPTIONS_MAX + 1], *save = NULL;
    int r;

    *o = (struct hisi_options){.dev_id = 0xa251, .qp_num = 64, .magic = HISI_MAGIC_V2,
                               .qm_ready = 1, .qm_ver = 0x30};
    if (strlen(options) > HISI_OPTIONS_MAX) {
        (void) snprintf(why, why_size, "hisi: the options are longer than %d bytes",
                        HISI_OPTIONS_MAX);
        return -EINVAL;
    }
    strcpy(buf, options);
    for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');

        if (!eq) {
            (void) snprintf(why, why_size, "hisi: '%.40s' is not key=value", kv);
            return -EINVAL;
        }
        *eq = '\0';
        r = hisi_option(o, kv, eq + 1);
        if (r < 0) {
            (void) snprintf(why, why_size, "hisi: %s: '%.40s' is not a valid value (see "
                            "docs/vendors/hisi.md)", kv, eq + 1);
            return -EINVAL;
        }
        if (r > 0 && strict) {
            (void) snprintf(why, why_size, "hisi: unknown option '%.32s' (the model's: %s)", kv,
                            hisi_keys);
            return -EINVAL;
        }
    }
    if (!o->pf_driver[0]) {
        (void) snprintf(o->pf_driver, sizeof(o->pf_driver), "%s", hisi_native_driver(o->dev_id));
    }
    return 0;
}
