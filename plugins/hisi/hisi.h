/* SPDX-License-Identifier: MIT */
#ifndef HISI_H
#define HISI_H

#include <vfio-migd/plugin.h>

/* The hisi sim model (hisi_model.c), part of the hisi plugin (hisi.c). */
extern const struct vfio_migd_sim_model hisi_sim_model;

#endif /* HISI_H */
