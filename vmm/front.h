/* The front's internals that the minivm command's own features (--save, --workspace) reach; not part of libminivm's public header. */
#ifndef MINIVM_FRONT_H
#define MINIVM_FRONT_H

#include "vmm/front_files.h"
#include "vmm/minivm.h"

/* The OCI image and root the VM was built from (front_save() needs them).
 * Owned by vm; valid until minivm_vm_destroy(). */
struct front_files *front_vm_files(struct minivm_vm *vm);

/* The machine as the front prepared it (rootfs, disks after a restore or
 * with a scratch disk, cmdline with init= for an OCI root). Owned by vm. */
const struct minivm_config *front_vm_config(const struct minivm_vm *vm);

/* The scratch disk's image path, or "" (thrown away at destroy). */
const char *front_vm_scratch_image(const struct minivm_vm *vm);

/* Test seam (tests/unit/test_front.c): marks a created VM running and
 * ready without a VMM process, so that exec and files talk to whatever
 * serves minivm_vm_vsock_path(vm) (a fake VMM relaying to the agent run
 * on the host). Never for real use: wait, snapshot and pause refuse. */
void front_vm_test_running(struct minivm_vm *vm);

#endif
