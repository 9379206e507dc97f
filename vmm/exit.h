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

/* The exit kinds metrics count: one per reason exit_handle() dispatches,
 * the rest together as "other". */
enum exit_kind {
	EXIT_K_IO = 0,
	EXIT_K_MMIO,
	EXIT_K_INTR,
	EXIT_K_HLT,
	EXIT_K_SHUTDOWN,
	EXIT_K_SYSTEM_EVENT,
	EXIT_K_INTERNAL_ERROR,
	EXIT_K_FAIL_ENTRY,
	EXIT_K_OTHER,
	EXIT_K_COUNT,
};

/* The kind a KVM exit reason is counted as. */
enum exit_kind exit_kind_of(unsigned int reason);

/* The kind's metric name: "io", "mmio", ..., "other" (never NULL). */
const char *exit_kind_name(enum exit_kind k);

#endif
