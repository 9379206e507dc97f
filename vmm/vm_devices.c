/* virtio-mmio devices and the event loop: placement, eventfds, lifecycle. */
#include <errno.h>

#include "vmm/vm.h"

int vm_devices_setup(struct minivm *vm)
{
	vm->nr_devs = 0;
	vm->nr_dev_params = 0;
	return 0;
}

int vm_devices_start(struct minivm *vm)
{
	(void)vm;
	return 0;
}

void vm_devices_stop(struct minivm *vm)
{
	(void)vm;
}

void vm_devices_destroy(struct minivm *vm)
{
	(void)vm;
}
