/* The emulating-host probe: does KVM_SET_CPUID2 hold for guest kernel code? */
#include "vmm/probe.h"

#include <cpuid.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PROBE_PORT 0x0f48
#define PROBE_CODE_GPA 0x1000
#define PROBE_MEM_SIZE 0x2000
#define PROBE_CACHE_MAGIC "minivm-probe"
#define PROBE_CACHE_ROOT_DIR "/run/minivm"
#define PROBE_CACHE_MAX_MODULES 16

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

/* ---- the cache ---- */

int probe_cache_format(const char *key, bool emulated, char *out, size_t len)
{
	int n;

	if (strchr(key, '\n'))
		return -ENOSPC;
	n = snprintf(out, len, PROBE_CACHE_MAGIC " %d emulated=%d %s\n", PROBE_CACHE_VERSION,
		     emulated ? 1 : 0, key);
	return n < 0 || (size_t)n >= len ? -ENOSPC : n;
}

int probe_cache_parse(const char *text, size_t len, const char *key, bool *emulated)
{
	char want[PROBE_CACHE_KEY_MAX + 64];
	int n;

	for (int e = 0; e < 2; e++) {
		n = probe_cache_format(key, e, want, sizeof(want));
		if (n > 0 && (size_t)n == len && !memcmp(text, want, len)) {
			*emulated = e;
			return 0;
		}
	}
	return -ENOENT;
}

static int probe_name_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int probe_cache_key(char *key, size_t len)
{
	char boot[64], names[PROBE_CACHE_MAX_MODULES][64], *sorted[PROBE_CACHE_MAX_MODULES];
	unsigned int nr = 0;
	struct dirent *e;
	size_t used;
	ssize_t n;
	DIR *d;
	int fd;

	fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, boot, sizeof(boot) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	boot[n] = '\0';
	boot[strcspn(boot, "\n")] = '\0';
	n = snprintf(key, len, "boot=%s", boot);
	if (n < 0 || (size_t)n >= len)
		return -ENOSPC;
	used = (size_t)n;
	/* Every kvm* module, by name and sysfs inode (new at each load). */
	d = opendir("/sys/module");
	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		size_t l;

		if (strncmp(e->d_name, "kvm", 3) != 0)
			continue;
		l = strlen(e->d_name);

		if (nr == PROBE_CACHE_MAX_MODULES || l >= sizeof(names[0])) {
			closedir(d);
			return -E2BIG;
		}
		memcpy(names[nr], e->d_name, l + 1);
		sorted[nr] = names[nr];
		nr++;
	}
	closedir(d);
	qsort(sorted, nr, sizeof(sorted[0]), probe_name_cmp);
	for (unsigned int i = 0; i < nr; i++) {
		char path[96];
		struct stat st;

		snprintf(path, sizeof(path), "/sys/module/%s", sorted[i]);
		if (stat(path, &st) < 0)
			return -errno;
		n = snprintf(key + used, len - used, " %s:%llu", sorted[i],
			     (unsigned long long)st.st_ino);
		if (n < 0 || (size_t)n >= len - used)
			return -ENOSPC;
		used += (size_t)n;
	}
	return 0;
}

/* The caller's cache directory, made if missing: owned by the caller and
 * writable by nobody else, or -errno (no cache). */
static int probe_cache_dir(char *dir, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	uid_t uid = geteuid();
	struct stat st;
	int n;

	if (uid == 0)
		n = snprintf(dir, len, "%s", PROBE_CACHE_ROOT_DIR);
	else if (xdg && xdg[0] == '/')
		n = snprintf(dir, len, "%s/minivm", xdg);
	else
		return -ENOENT;
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	if (mkdir(dir, uid == 0 ? 0755 : 0700) < 0 && errno != EEXIST)
		return -errno;
	if (lstat(dir, &st) < 0)
		return -errno;
	if (!S_ISDIR(st.st_mode) || st.st_uid != uid || (st.st_mode & 022))
		return -EPERM;
	return 0;
}

static int probe_cache_read(const char *dir, const char *key, bool *emulated)
{
	char path[300], buf[PROBE_CACHE_KEY_MAX + 64];
	struct stat st;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/" PROBE_CACHE_FILE, dir);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022)) {
		close(fd);
		return -EPERM;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n <= 0)
		return -ENOENT;
	return probe_cache_parse(buf, (size_t)n, key, emulated);
}

/* Written to a new file and renamed over the old: readers see a whole
 * record or the previous one. */
static void probe_cache_write(const char *dir, const char *key, bool emulated)
{
	char path[300], tmp[300], buf[PROBE_CACHE_KEY_MAX + 64];
	int fd, n;

	n = probe_cache_format(key, emulated, buf, sizeof(buf));
	if (n < 0)
		return;
	snprintf(path, sizeof(path), "%s/" PROBE_CACHE_FILE, dir);
	snprintf(tmp, sizeof(tmp), "%s/." PROBE_CACHE_FILE ".XXXXXX", dir);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return;
	if (fchmod(fd, 0644) < 0 || write(fd, buf, (size_t)n) != n) {
		close(fd);
		(void)unlink(tmp);
		return;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0)
		(void)unlink(tmp);
}

int probe_cache_lookup(bool *emulated)
{
	char key[PROBE_CACHE_KEY_MAX], dir[256];
	int r = probe_cache_key(key, sizeof(key));

	if (!r)
		r = probe_cache_dir(dir, sizeof(dir));
	if (!r)
		r = probe_cache_read(dir, key, emulated);
	return r;
}

int probe_emulation_cached(const struct kvm_sys *k, bool *emulated, bool *cached, char *err,
			   size_t errlen)
{
	char key[PROBE_CACHE_KEY_MAX], dir[256];
	bool have_key = probe_cache_key(key, sizeof(key)) == 0;
	bool have_dir = have_key && probe_cache_dir(dir, sizeof(dir)) == 0;
	int r;

	*cached = false;
	if (have_dir && probe_cache_read(dir, key, emulated) == 0) {
		*cached = true;
		return 0;
	}
	r = probe_emulation(k, emulated, err, errlen);
	if (r == 0 && have_dir)
		probe_cache_write(dir, key, *emulated);
	return r;
}
