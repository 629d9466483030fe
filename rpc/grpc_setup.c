/* SPDX-License-Identifier: MIT */
/*
 * grpc_setup — see grpc_setup.h.
 */
#include "grpc_setup.h"

#include <dlfcn.h>
#include <grpc/grpc.h>

/* absl::debian3::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle): bookworm's Abseil
 * 20220623 with Debian's inline namespace. OnDeadlockCycle is an int-sized enum class whose
 * kIgnore is 0 (absl/synchronization/mutex.h). */
#define ABSL_SET_DEADLOCK_MODE "_ZN4absl7debian329SetMutexDeadlockDetectionModeENS0_15OnDeadlockCycleE"
#define ABSL_ON_DEADLOCK_CYCLE_IGNORE 0

bool
rpc_grpc_init(void)
{
    void (*set_mode)(int) = NULL;
    void *sym = dlsym(RTLD_DEFAULT, ABSL_SET_DEADLOCK_MODE);

    if (sym) {
        *(void **) &set_mode = sym; /* POSIX: a data pointer to a function pointer */
        set_mode(ABSL_ON_DEADLOCK_CYCLE_IGNORE);
    }
    grpc_init();
    return sym != NULL;
}
