/* vCPU exit handling as a pure function: a KVM exit in, the vCPU loop's next step out. */
#ifndef MINIVM_EXIT_H
#define MINIVM_EXIT_H

#include <linux/kvm.h>
#include <stddef.h>

#include "vmm/bus.h"

enum exit_action {
	EXIT_CONTINUE = 0, /* run the vCPU again */
	EXIT_RESET,        /* the guest asked for a reset (or shut down): the VM ends */
	EXIT_CRASH,        /* triple fault / crash event: the VM ends, guest crashed */
	EXIT_FATAL,        /* unexpected exit reason: the VM ends with an error */
};

struct exit_env {
	const struct bus *pio;
	const struct bus *mmio;
};

/*
 * Handles run->exit_reason. PIO and MMIO accesses are dispatched to the
 * buses (a read's result is written back into run for KVM to complete the
 * instruction). For EXIT_FATAL, msg receives a description naming the exit
 * reason (the caller adds the RIP, which needs an ioctl). Never reads more
 * of the shared run page than the exit reason defines; bounds every
 * KVM-provided count and offset against run_size.
 */
enum exit_action exit_handle(struct kvm_run *run, size_t run_size, const struct exit_env *env,
			     char *msg, size_t msglen);

/* A name for a KVM exit reason ("IO", "MMIO", "SHUTDOWN", ...), or NULL. */
const char *exit_reason_name(unsigned int reason);

#endif
