/* /dev/kvm: open, API version, capabilities, supported CPUID. */
#include "vmm/kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const struct {
	int cap;
	const char *name;
} kvm_required_caps[] = {
	{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
	{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
	{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
	{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
	{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
	{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
};

int kvm_open(struct kvm_sys *k, char *err, size_t errlen)
{
	/* KVM_MAX_CPUID_ENTRIES (256) at once: each KVM_GET_SUPPORTED_CPUID
	 * costs 0.4 ms on the test hosts, and 64 entries were too few there
	 * (75), so the retry below cost every start-up one more call. */
	int ver, n = 256, r;

	memset(k, 0, sizeof(*k));
	k->fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (k->fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot open /dev/kvm: %s%s", strerror(errno),
			 errno == ENOENT ? " (is KVM enabled? load kvm_intel or kvm_amd)"
			 : errno == EACCES ? " (add yourself to the kvm group or run as root)"
					   : "");
		return r;
	}
	ver = ioctl(k->fd, KVM_GET_API_VERSION, 0);
	if (ver != KVM_API_VERSION) {
		snprintf(err, errlen, "/dev/kvm speaks KVM API %d, minivm needs %d", ver,
			 KVM_API_VERSION);
		r = -ENOTSUP;
		goto fail;
	}
	for (size_t i = 0; i < sizeof(kvm_required_caps) / sizeof(kvm_required_caps[0]); i++) {
		if (ioctl(k->fd, KVM_CHECK_EXTENSION, kvm_required_caps[i].cap) <= 0) {
			snprintf(err, errlen, "/dev/kvm lacks %s, which minivm needs",
				 kvm_required_caps[i].name);
			r = -ENOTSUP;
			goto fail;
		}
	}
	r = ioctl(k->fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (r < (int)sizeof(struct kvm_run)) {
		snprintf(err, errlen, "KVM_GET_VCPU_MMAP_SIZE returned %d", r);
		r = -ENOTSUP;
		goto fail;
	}
	k->run_size = (size_t)r;
	for (;;) {
		k->cpuid = calloc(1, sizeof(*k->cpuid) + (size_t)n * sizeof(k->cpuid->entries[0]));
		if (!k->cpuid) {
			r = -ENOMEM;
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		k->cpuid->nent = (unsigned int)n;
		if (ioctl(k->fd, KVM_GET_SUPPORTED_CPUID, k->cpuid) == 0)
			break;
		r = -errno;
		free(k->cpuid);
		k->cpuid = NULL;
		if (r != -E2BIG || n >= 4096) {
			snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-r));
			goto fail;
		}
		n *= 2;
	}
	return 0;
fail:
	kvm_close(k);
	return r;
}

void kvm_close(struct kvm_sys *k)
{
	free(k->cpuid);
	k->cpuid = NULL;
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
}

struct kvm_cpuid2 *kvm_cpuid_dup(const struct kvm_sys *k)
{
	size_t sz = sizeof(*k->cpuid) + k->cpuid->nent * sizeof(k->cpuid->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);

	if (c)
		memcpy(c, k->cpuid, sz);
	return c;
}

struct kvm_cpuid_entry2 *kvm_cpuid_find(struct kvm_cpuid2 *t, unsigned int function,
					unsigned int index)
{
	for (unsigned int i = 0; i < t->nent; i++) {
		struct kvm_cpuid_entry2 *e = &t->entries[i];

		if (e->function != function)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e->index != index)
			continue;
		return e;
	}
	return NULL;
}
