/* SPDX-License-Identifier: MIT */
/*
 * backend — what every back-end shares (see backend.h): building the properties GetDevice
 * shows; registering the REQ trigger.
 */
#include "backend.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "../core/irq.h" /* IRQ_INFO_EVENTFD */

void
backend_property_add(BackendProperty *props, size_t max, size_t *n, const char *key,
                     const char *fmt, ...)
{
    va_list ap;

    if (*n >= max) {
        return;
    }
    (void) snprintf(props[*n].key, sizeof(props[*n].key), "%s", key);
    va_start(ap, fmt);
    (void) vsnprintf(props[*n].value, sizeof(props[*n].value), fmt, ap);
    va_end(ap);
    (*n)++;
}

int
backend_req_arm(BackendDevice *bd, int fd)
{
    const uint32_t set = BACKEND_IRQ_SET_DATA_EVENTFD | BACKEND_IRQ_SET_ACTION_TRIGGER;
    uint32_t flags = 0, count = 0;
    int32_t data = fd;
    int r;

    if (!bd->ops->irq_info || !bd->ops->set_irqs) {
        return -ENOENT;
    }
    r = bd->ops->irq_info(bd, BACKEND_IRQ_INDEX_REQ, &flags, &count);
    /* -EINVAL: an index beyond the device's num_irqs, or one its driver does not have (mtty
     * answers so for ERR and REQ). */
    if (r == -EINVAL || (r >= 0 && (count == 0 || !(flags & IRQ_INFO_EVENTFD)))) {
        return -ENOENT;
    }
    if (r < 0) {
        return r;
    }
    return bd->ops->set_irqs(bd, set, BACKEND_IRQ_INDEX_REQ, 0, 1, &data);
}
