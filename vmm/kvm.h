/* /dev/kvm: opening it and checking the API version and every capability minivm uses. */
#ifndef MINIVM_KVM_H
#define MINIVM_KVM_H

#include <linux/kvm.h>
#include <stddef.h>

struct kvm_sys {
	int fd;             /* /dev/kvm */
	size_t run_size;    /* KVM_GET_VCPU_MMAP_SIZE */
	struct kvm_cpuid2 *cpuid; /* KVM_GET_SUPPORTED_CPUID, malloc'd */
};

/* Opens /dev/kvm, checks API 12 and the capabilities; on failure -errno and
 * a message naming what is missing. */
int kvm_open(struct kvm_sys *k, char *err, size_t errlen) __attribute__((warn_unused_result));
void kvm_close(struct kvm_sys *k);

/* A copy of the supported CPUID table (caller frees), or NULL. */
struct kvm_cpuid2 *kvm_cpuid_dup(const struct kvm_sys *k);

/* The entry for (function, index) in t, or NULL. */
struct kvm_cpuid_entry2 *kvm_cpuid_find(struct kvm_cpuid2 *t, unsigned int function,
					unsigned int index);

#endif
