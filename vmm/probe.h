/* Works out whether the host runs guest kernel code under emulation (HOSTS.md). */
#ifndef MINIVM_PROBE_H
#define MINIVM_PROBE_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/kvm.h"

/*
 * The decision, as a pure function. The probe guest ran CPUID leaf 1 after
 * KVM_SET_CPUID2 cleared bit `bit` of ECX, a bit the host CPU has. On
 * standard KVM, CPUID is intercepted and the mask holds; on an emulating
 * host (kvm_pvm) the guest saw the host's CPUID, so the bit is still set.
 * Returns true for "emulated". bit >= 32 means no usable bit: not emulated.
 */
bool probe_decide(uint32_t host_ecx, unsigned int bit, uint32_t guest_ecx);

/* Picks the lowest ECX bit of leaf 1 the host CPU has, leaving out the bits
 * KVM sets dynamically (27 OSXSAVE, 31 hypervisor); 32 if none. The probe
 * clears it in the table it gives the guest (measured on kvm_pvm: the guest
 * still sees host bits the table lacks, e.g. SSE3 and POPCNT). */
unsigned int probe_pick_bit(uint32_t host_ecx);

/* Runs the probe guest (a throwaway VM with one page of code). On success
 * *emulated is set; on failure -errno and a message. */
int probe_emulation(const struct kvm_sys *k, bool *emulated, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
