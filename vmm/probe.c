/* The emulating-host probe: does KVM_SET_CPUID2 hold for guest kernel code? */
#include "vmm/probe.h"

#include <cpuid.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define PROBE_PORT 0x0f48
#define PROBE_CODE_GPA 0x1000
#define PROBE_MEM_SIZE 0x2000

bool probe_decide(uint32_t host_ecx, unsigned int bit, uint32_t guest_ecx)
{
	if (bit >= 32 || !(host_ecx & (1u << bit)))
		return false;
	return (guest_ecx & (1u << bit)) != 0;
}

unsigned int probe_pick_bit(uint32_t host_ecx)
{
	/* Not OSXSAVE (27: follows the guest's CR4) nor "hypervisor" (31). */
	uint32_t usable = host_ecx & ~((1u << 27) | (1u << 31));

	return usable ? (unsigned int)__builtin_ctz(usable) : 32;
}

static void probe_segment(struct kvm_segment *s, uint16_t sel, uint8_t type)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->s = 1;
	s->db = 1;
	s->g = 1;
}

int probe_emulation(const struct kvm_sys *k, bool *emulated, char *err, size_t errlen)
{
	/* 32-bit flat protected mode, paging off (as a PVH entry):
	 * mov eax,1; xor ecx,ecx; cpuid; mov eax,ecx; mov dx,PROBE_PORT;
	 * out dx,eax; hlt */
	static const uint8_t code[] = { 0xb8, 0x01, 0x00, 0x00, 0x00, 0x31, 0xc9, 0x0f, 0xa2,
					0x89, 0xc8, 0x66, 0xba, PROBE_PORT & 0xff, PROBE_PORT >> 8,
					0xef, 0xf4 };
	unsigned int eax, ebx, ecx = 0, edx, bit;
	struct kvm_cpuid2 *cpuid = NULL;
	struct kvm_cpuid_entry2 *leaf1;
	struct kvm_run *run = MAP_FAILED;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int vm = -1, vcpu = -1, r;
	uint8_t *mem = MAP_FAILED;

	*emulated = false;
	if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
		return 0;
	cpuid = kvm_cpuid_dup(k);
	if (!cpuid)
		return -ENOMEM;
	leaf1 = kvm_cpuid_find(cpuid, 1, 0);
	bit = probe_pick_bit(ecx);
	if (bit >= 32 || !leaf1) {
		free(cpuid);
		return 0; /* nothing to test with: assume standard KVM */
	}
	leaf1->ecx &= ~(1u << bit);

	r = -errno;
	vm = ioctl(k->fd, KVM_CREATE_VM, 0);
	if (vm < 0) {
		r = -errno;
		snprintf(err, errlen, "probe: KVM_CREATE_VM: %s", strerror(errno));
		goto out;
	}
	mem = mmap(NULL, PROBE_MEM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		r = -errno;
		snprintf(err, errlen, "probe: mmap: %s", strerror(errno));
		goto out;
	}
	memcpy(mem + PROBE_CODE_GPA, code, sizeof(code));
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = PROBE_MEM_SIZE,
		.userspace_addr = (uint64_t)(uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0 ||
	    (vcpu = ioctl(vm, KVM_CREATE_VCPU, 0)) < 0 || ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0 ||
	    ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) {
		r = -errno;
		snprintf(err, errlen, "probe: setting up the probe VM: %s", strerror(errno));
		goto out;
	}
	run = mmap(NULL, k->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) {
		r = -errno;
		snprintf(err, errlen, "probe: mmap kvm_run: %s", strerror(errno));
		goto out;
	}
	probe_segment(&sregs.cs, 0x08, 0xb);
	probe_segment(&sregs.ds, 0x10, 0x3);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.cr0 = 0x11; /* PE | ET */
	sregs.cr4 = 0;
	sregs.efer = 0;
	memset(&regs, 0, sizeof(regs));
	regs.rip = PROBE_CODE_GPA;
	regs.rflags = 0x2;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0) {
		r = -errno;
		snprintf(err, errlen, "probe: setting probe registers: %s", strerror(errno));
		goto out;
	}
	for (int tries = 0; tries < 16; tries++) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			r = -errno;
			snprintf(err, errlen, "probe: KVM_RUN: %s", strerror(errno));
			goto out;
		}
		if (run->exit_reason == KVM_EXIT_IO && run->io.port == PROBE_PORT &&
		    run->io.size == 4 && run->io.direction == KVM_EXIT_IO_OUT &&
		    run->io.data_offset + 4 <= k->run_size) {
			uint32_t guest_ecx;

			memcpy(&guest_ecx, (uint8_t *)run + run->io.data_offset, 4);
			*emulated = probe_decide(ecx, bit, guest_ecx);
			r = 0;
			goto out;
		}
		if (run->exit_reason != KVM_EXIT_INTR)
			break;
	}
	snprintf(err, errlen, "probe: the probe guest stopped with KVM exit %u instead of reporting",
		 run->exit_reason);
	r = -EIO;
out:
	if (run != MAP_FAILED)
		munmap(run, k->run_size);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	if (mem != MAP_FAILED)
		munmap(mem, PROBE_MEM_SIZE);
	free(cpuid);
	return r;
}
