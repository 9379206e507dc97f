/* Assembles the guest kernel command line from the configuration. */
#ifndef MINIVM_VMCMDLINE_H
#define MINIVM_VMCMDLINE_H

#include <stdbool.h>
#include <stddef.h>

#include "vmm/minivm.h"

/* The switches an emulating host needs (HOSTS.md): no XSAVE, CPU features
 * its x86 emulator lacks masked, no paravirtual IPIs/clock. */
#define VM_CMDLINE_EMULATED                                                              \
	"noxsave clearcpuid=popcnt,avx,avx2,avx512f,bmi1,bmi2,movbe,rdrand,rdseed,erms,fsrm," \
	"smap,smep,umip,pku,rdpid nopv"

/*
 * Boot work an emulating host pays for instruction by instruction
 * (kernel-config/README.md has the figures): keep the SMP lock prefixes
 * instead of patching each one out through text_poke() on a 1-vCPU guest;
 * no 40 ms busy wait checking that the timer ticks; per-CPU areas from
 * pages instead of a zeroed 2 MB embedded chunk; and rodata=off: no
 * mark_rodata_ro(), whose page-table rewrites and frees cost 4.3 M emulated
 * instructions (4-5 s) there. The guest kernel's own text then stays
 * writable to guest kernel code: a guest-internal hardening lost where the
 * guest is emulated only; the isolation boundary is the VM, and the
 * workload runs as root in the guest anyway. bench/run gives QEMU the same.
 */
#define VM_CMDLINE_EMULATED_BOOT "noreplace-smp no_timer_check percpu_alloc=page rodata=off"

/*
 * Pure: writes the command line into buf: minivm's base switches, the
 * emulating-host switches when `emulated`, each of dev_params (the
 * "virtio_mmio.device=..." words), root= for a rootfs, the program as
 * minivm.run=<percent-encoded>, then cfg->cmdline last so the user can
 * override. -E2BIG with a message when it does not fit in `cap` (the
 * kernel's limit), -EINVAL for a command that cannot be encoded.
 */
int vm_cmdline_build(char *buf, size_t cap, const struct minivm_config *cfg, bool emulated,
		     const char (*dev_params)[64], unsigned int nr_dev_params, char *err,
		     size_t errlen) __attribute__((warn_unused_result));

#endif
