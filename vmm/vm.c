/* The VM: creation (KVM, memory, irqchip, devices, vCPUs), running, and teardown. */
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "boot/boot.h"
#include "rootfs/agent/cmdline.h"
#include "rootfs/agent/minivm_guest.h"
#include "vmm/exit.h"
#include "vmm/jail.h"
#include "vmm/probe.h"
#include "vmm/rootfs_check.h"
#include "vmm/snapshot.h"
#include "vmm/vm_snapshot.h"
#include "vmm/vmcmdline.h"

#define VM_TSS_ADDR 0xfffbd000ULL
#define VM_IDENTITY_MAP_ADDR 0xfffbc000ULL
#define VM_KERNEL_MAX (512ULL << 20) /* a kernel file larger than this is not one */
#define VCPU_KICK_SIGNAL (SIGRTMIN + 1)
#define VM_PAUSE_TIMEOUT_MS 10000 /* every vCPU parks within this, or the snapshot fails */

#define MSR_IA32_TSC 0x10
#define MSR_IA32_SYSENTER_CS 0x174
#define MSR_IA32_SYSENTER_ESP 0x175
#define MSR_IA32_SYSENTER_EIP 0x176
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_MTRR_DEF_TYPE 0x2ff
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SYSCALL_MASK 0xc0000084
#define MSR_KERNEL_GS_BASE 0xc0000102

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t vm_elapsed(const struct minivm *vm)
{
	uint64_t t = now_ns() - vm->t0_ns;

	return t ? t : 1; /* 0 means "not reached" */
}

void vm_set_error(struct minivm *vm, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(vm->err, sizeof(vm->err), fmt, ap);
	va_end(ap);
}

void vm_log(const struct minivm *vm, int level, const char *fmt, ...)
{
	va_list ap;

	if (vm->cfg.verbose < level)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "minivm: [%9.3f] ", (double)(now_ns() - vm->t0_ns) / 1e9);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void minivm_config_init(struct minivm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->console_fd = STDERR_FILENO;
	cfg->mem_bytes = 256ULL << 20;
	cfg->cpus = 1;
	cfg->emul = MINIVM_EMUL_AUTO;
	cfg->guest_cid = MINIVM_DEFAULT_GUEST_CID;
	cfg->snapshot_mem_fd = cfg->snapshot_state_fd = -1;
	cfg->restore_state_fd = cfg->restore_mem_fd = -1;
}

const char *minivm_error(const struct minivm *vm)
{
	return vm ? vm->err : "no VM";
}

int minivm_exit_status(const struct minivm_result *res)
{
	switch (res->outcome) {
	case MINIVM_GUEST_EXITED:
		return res->status & 0xff;
	case MINIVM_GUEST_CRASHED:
		return MINIVM_EXIT_GUEST_CRASH;
	case MINIVM_TIMED_OUT:
		return MINIVM_EXIT_VM_TIMEOUT;
	default:
		return MINIVM_EXIT_ERROR;
	}
}

/* Wakes whoever polls minivm_event_fd(); async-signal-safe. */
static void vm_signal_event(struct minivm *vm)
{
	uint64_t one = 1;

	if (vm->event_fd >= 0 && write(vm->event_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero, the fd already readable. */
	}
}

void vm_post_event(struct minivm *vm, const struct minivm_event *ev)
{
	if (evq_post(&vm->events, ev, vm_elapsed(vm)))
		vm_signal_event(vm);
}

/* A GUEST_ERROR event with a printf message. */
__attribute__((format(printf, 2, 3))) static void vm_guest_error(struct minivm *vm, const char *fmt, ...)
{
	struct minivm_event ev;
	va_list ap;

	memset(&ev, 0, sizeof(ev));
	ev.type = MINIVM_EVENT_GUEST_ERROR;
	va_start(ap, fmt);
	vsnprintf(ev.message, sizeof(ev.message), fmt, ap);
	va_end(ap);
	vm_post_event(vm, &ev);
}

/* Ends the VM once (first caller wins) and kicks every vCPU out of KVM_RUN. */
static void vm_end(struct minivm *vm, enum minivm_outcome outcome)
{
	int expected = VM_RUNNING;

	if (!atomic_compare_exchange_strong(&vm->state, &expected, VM_ENDED))
		return;
	vm->result.outcome = outcome;
	atomic_store(&vm->exit_ns, vm_elapsed(vm));
	vm_signal_event(vm);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->run)
			v->run->immediate_exit = 1;
		if (atomic_load(&v->in_guest_thread))
			pthread_kill(v->thread, VCPU_KICK_SIGNAL);
	}
}

void minivm_stop(struct minivm *vm)
{
	vm_end(vm, MINIVM_STOPPED);
}

void vm_time_out(struct minivm *vm)
{
	vm_end(vm, MINIVM_TIMED_OUT);
}

/* ---- the guest-to-host ports (rootfs/agent/minivm_guest.h) ---- */

static void sig_marker_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct minivm *vm = opaque;
	uint8_t phase = *(const uint8_t *)data;
	uint64_t zero = 0;

	if (off != 0)
		return;
	(void)len;
	if (phase == MINIVM_PHASE_INIT_STARTED) {
		atomic_compare_exchange_strong(&vm->init_started_ns, &zero, vm_elapsed(vm));
		vm_log(vm, 1, "guest init started");
	} else if (phase == MINIVM_PHASE_READY) {
		atomic_compare_exchange_strong(&vm->ready_ns, &zero, vm_elapsed(vm));
		vm_signal_event(vm);
		vm_log(vm, 1, "guest ready");
	} else if (phase >= MINIVM_PHASE_USER) {
		/* Benchmarks time guest work with the host's clock. */
		vm_log(vm, 1, "guest marker %u", phase);
	}
}

static void sig_status_write(void *opaque, uint64_t off, const void *data, unsigned int len)
{
	struct minivm *vm = opaque;
	uint32_t v = 0;

	if (off != 0 || len > sizeof(v))
		return;
	memcpy(&v, data, len);
	pthread_mutex_lock(&vm->lock);
	if (!vm->status_written) {
		vm->status_written = true;
		vm->status = (int)(v & 0xff);
	}
	pthread_mutex_unlock(&vm->lock);
	vm_log(vm, 1, "guest exit status %u", v & 0xff);
}

/* A reset (i8042, or a KVM reset/shutdown event): an exit if the guest said
 * its status first, a crash otherwise. */
static void vm_guest_reset(void *opaque)
{
	struct minivm *vm = opaque;
	bool exited;

	pthread_mutex_lock(&vm->lock);
	exited = vm->status_written;
	vm->result.status = vm->status;
	pthread_mutex_unlock(&vm->lock);
	if (!exited && atomic_load(&vm->state) == VM_RUNNING)
		vm_guest_error(vm, "the guest reset without an exit status (crash, panic or triple fault)");
	vm_end(vm, exited ? MINIVM_GUEST_EXITED : MINIVM_GUEST_CRASHED);
}

/* ---- vCPUs ---- */

static void vcpu_kick_handler(int sig)
{
	(void)sig; /* only there to make KVM_RUN return EINTR */
}

static int vcpu_setup_cpuid(struct minivm *vm, struct vcpu *v)
{
	struct kvm_cpuid2 *c = kvm_cpuid_dup(&vm->kvm);
	int r = 0;

	if (!c)
		return -ENOMEM;
	for (unsigned int i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];

		switch (e->function) {
		case 1:
			/* initial APIC id, logical processor count, CLFLUSH 64 bytes */
			e->ebx = (v->id << 24) | (vm->nr_vcpus << 16) | (8 << 8);
			e->ecx |= 1u << 31; /* hypervisor present */
			break;
		case 0xb:
		case 0x1f:
			e->edx = v->id; /* x2APIC id */
			break;
		default:
			break;
		}
	}
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0)
		r = -errno;
	free(c);
	return r;
}

static int vcpu_setup_msrs(struct vcpu *v)
{
	static const uint32_t zero_msrs[] = { MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_ESP,
					      MSR_IA32_SYSENTER_EIP, MSR_STAR, MSR_CSTAR,
					      MSR_KERNEL_GS_BASE, MSR_SYSCALL_MASK, MSR_LSTAR,
					      MSR_IA32_TSC };
	const unsigned int max = sizeof(zero_msrs) / sizeof(zero_msrs[0]) + 2;
	struct kvm_msrs *m = calloc(1, sizeof(*m) + max * sizeof(m->entries[0]));
	unsigned int n = 0;
	int r;

	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(zero_msrs) / sizeof(zero_msrs[0]); i++)
		m->entries[n++].index = zero_msrs[i];
	m->entries[n].index = MSR_IA32_MISC_ENABLE;
	m->entries[n++].data = 1; /* fast string operations */
	m->entries[n].index = MSR_MTRR_DEF_TYPE;
	m->entries[n++].data = (1u << 11) | 6; /* MTRRs enabled, default write-back */
	m->nmsrs = n;
	/* KVM_SET_MSRS returns how many it set; a host that refuses one of
	 * these optional MSRs is not fatal. */
	r = ioctl(v->fd, KVM_SET_MSRS, m) < 0 ? -errno : 0;
	free(m);
	return r;
}

static int vcpu_setup_fpu(struct vcpu *v)
{
	struct kvm_fpu fpu;

	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	return ioctl(v->fd, KVM_SET_FPU, &fpu) < 0 ? -errno : 0;
}

static int vcpu_create(struct minivm *vm, unsigned int id)
{
	struct vcpu *v = &vm->vcpus[id];
	int r;

	v->vm = vm;
	v->id = id;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)id);
	if (v->fd < 0) {
		r = -errno;
		vm_set_error(vm, "KVM_CREATE_VCPU %u: %s", id, strerror(errno));
		return r;
	}
	v->run = mmap(NULL, vm->kvm.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		r = -errno;
		v->run = NULL;
		vm_set_error(vm, "mmap of vCPU %u state: %s", id, strerror(errno));
		return r;
	}
	r = vcpu_setup_cpuid(vm, v);
	if (r) {
		vm_set_error(vm, "KVM_SET_CPUID2 on vCPU %u: %s", id, strerror(-r));
		return r;
	}
	r = vcpu_setup_msrs(v);
	if (r)
		vm_log(vm, 1, "vCPU %u: setting MSRs: %s (continuing)", id, strerror(-r));
	r = vcpu_setup_fpu(v);
	if (r) {
		vm_set_error(vm, "KVM_SET_FPU on vCPU %u: %s", id, strerror(-r));
		return r;
	}
	return 0;
}

/* The boot vCPU's registers as the loader left them; application
 * processors wait for INIT/SIPI from it instead. */
static int vcpu_set_boot_regs(struct minivm *vm, const struct boot_entry *entry)
{
	struct vcpu *v = &vm->vcpus[0];
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int r;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0 || ioctl(v->fd, KVM_GET_REGS, &regs) < 0) {
		r = -errno;
		vm_set_error(vm, "reading vCPU 0 registers: %s", strerror(errno));
		return r;
	}
	boot_apply_sregs(entry, &sregs);
	boot_apply_regs(entry, &regs);
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(v->fd, KVM_SET_REGS, &regs) < 0) {
		r = -errno;
		vm_set_error(vm, "setting vCPU 0 registers: %s", strerror(errno));
		return r;
	}
	return 0;
}

static void vcpu_fatal(struct vcpu *v, const char *what)
{
	struct minivm *vm = v->vm;
	struct kvm_regs regs;
	char rip[64] = "";

	if (ioctl(v->fd, KVM_GET_REGS, &regs) == 0)
		snprintf(rip, sizeof(rip), " at RIP 0x%llx", (unsigned long long)regs.rip);
	pthread_mutex_lock(&vm->lock);
	if (!vm->fatal[0])
		snprintf(vm->fatal, sizeof(vm->fatal), "vCPU %u: %s%s", v->id, what, rip);
	pthread_mutex_unlock(&vm->lock);
	vm_guest_error(vm, "VMM error: vCPU %u: %s%s", v->id, what, rip);
	vm_end(vm, MINIVM_VMM_ERROR);
}

/* A vCPU asked to pause (minivm_snapshot) waits here, out of KVM_RUN,
 * until resumed or the VM ends. A timed wait: vm_end() runs in signal
 * handlers, where it cannot signal the condition. */
static void vcpu_park(struct vcpu *v)
{
	struct minivm *vm = v->vm;

	pthread_mutex_lock(&vm->pause_lock);
	vm->parked++;
	pthread_cond_broadcast(&vm->pause_cond);
	while (atomic_load(&vm->pause_req) && atomic_load(&vm->state) == VM_RUNNING) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &ts);
	}
	vm->parked--;
	pthread_mutex_unlock(&vm->pause_lock);
	/* Before the loop's state check: a vm_end() after this sets it again. */
	v->run->immediate_exit = 0;
}

/* One more exit of this kind. Only this vCPU's thread writes its
 * counters, so a relaxed load and store suffice (no locked add). */
static void vcpu_count_exit(struct vcpu *v)
{
	_Atomic uint64_t *c = &v->exits[exit_kind_of(v->run->exit_reason)];

	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
			      memory_order_relaxed);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct minivm *vm = v->vm;
	struct exit_env env = { .pio = &vm->pio, .mmio = &vm->mmio };
	unsigned int eagain = 0;
	sigset_t set;
	char msg[200];

	/* Only the kick signal reaches a vCPU thread; the rest go elsewhere. */
	sigfillset(&set);
	sigdelset(&set, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	/* "vcpuN" in ps, top and perf (bench/run finds the first KVM_RUN by it). */
	snprintf(msg, sizeof(msg), "vcpu%u", v->id);
	prctl(PR_SET_NAME, msg, 0, 0, 0);
	/* The jailed VMM: this thread's seccomp allowlist, before KVM_RUN. */
	if (vm->cfg.seccomp && jail_seccomp_thread(vm->seccomp_filters, JAIL_THREAD_VCPU, msg, sizeof(msg))) {
		vcpu_fatal(v, msg);
		return NULL;
	}
	while (atomic_load(&vm->state) == VM_RUNNING) {
		/* A pause: one KVM_RUN with immediate_exit completes a pending
		 * PIO/MMIO read (KVM's rule for a consistent state), then EINTR. */
		if (atomic_load(&vm->pause_req))
			v->run->immediate_exit = 1;
		if (v->id == 0) {
			uint64_t zero = 0;

			atomic_compare_exchange_strong(&vm->first_run_ns, &zero, vm_elapsed(vm));
		}
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR) {
				if (atomic_load(&vm->pause_req))
					vcpu_park(v);
				continue;
			}
			if (errno == EAGAIN) {
				/* An AP before its SIPI: some hosts return at once,
				 * so back off instead of spinning a host core. */
				if (++eagain > 8)
					usleep(eagain > 64 ? 1000 : 100);
				continue;
			}
			snprintf(msg, sizeof(msg), "KVM_RUN failed: %s", strerror(errno));
			vcpu_fatal(v, msg);
			break;
		}
		eagain = 0;
		vcpu_count_exit(v);
		switch (exit_handle(v->run, vm->kvm.run_size, &env, msg, sizeof(msg))) {
		case EXIT_CONTINUE:
			break;
		case EXIT_RESET:
			vm_guest_reset(vm);
			break;
		case EXIT_CRASH:
			vm_log(vm, 1, "vCPU %u: guest shutdown (KVM exit %s)", v->id,
			       exit_reason_name(v->run->exit_reason));
			vm_guest_reset(vm);
			break;
		case EXIT_FATAL:
			vcpu_fatal(v, msg);
			break;
		}
	}
	return NULL;
}

/* ---- creation ---- */

static int vm_check_rootfs(struct minivm *vm, const char *path)
{
	uint8_t sb[ROOTFS_PROBE_BYTES];
	char why[160];
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		vm_set_error(vm, "cannot open rootfs '%s': %s", path, strerror(errno));
		return r;
	}
	n = pread(fd, sb, sizeof(sb), 0);
	close(fd);
	if (n < 0) {
		r = -errno;
		vm_set_error(vm, "reading rootfs '%s': %s", path, strerror(errno));
		return r;
	}
	if (rootfs_check(sb, (size_t)n, why, sizeof(why))) {
		vm_set_error(vm, "rootfs '%s' is not usable: %s", path, why);
		return -EINVAL;
	}
	return 0;
}

static int vm_setup_memory(struct minivm *vm)
{
	vm->ram_size = vm->cfg.mem_bytes;
	if (vm->restored) {
		/* The snapshot's memory file, privately: pages load on demand,
		 * writes are copy-on-write, clones share the page cache. */
		vm->ram = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE,
			       vm->cfg.restore_mem_fd, 0);
		if (vm->ram == MAP_FAILED) {
			int r = -errno;

			vm->ram = NULL;
			vm_set_error(vm, "cannot map the snapshot's memory file: %s", strerror(errno));
			return r;
		}
		gm_layout(&vm->gm, vm->ram, vm->ram_size);
		return 0;
	}
	vm->ram = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->ram == MAP_FAILED) {
		int r = -errno;

		vm->ram = NULL;
		vm_set_error(vm, "cannot map %llu MiB of guest memory: %s",
		       (unsigned long long)(vm->ram_size >> 20), strerror(errno));
		return r;
	}
	/* Huge pages where the host allows them: fewer shadow/EPT faults and
	 * TLB misses for the guest (QEMU does the same). */
	if (madvise(vm->ram, vm->ram_size, MADV_HUGEPAGE) < 0)
		vm_log(vm, 2, "madvise(MADV_HUGEPAGE): %s (ignored)", strerror(errno));
	gm_layout(&vm->gm, vm->ram, vm->ram_size);
	return 0;
}

/* Guest RAM into KVM's memory slots. On the setup thread: the ioctl waits
 * for an SRCU grace period (3.7 ms of start-up on the test hosts). Writes
 * its error into err, not vm->err, which the main thread owns meanwhile. */
static int vm_register_memory(struct minivm *vm, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < vm->gm.nr; i++) {
		struct kvm_userspace_memory_region region = {
			.slot = i,
			.guest_phys_addr = vm->gm.r[i].gpa,
			.memory_size = vm->gm.r[i].size,
			.userspace_addr = (uint64_t)(uintptr_t)vm->gm.r[i].host,
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0) {
			int r = -errno;

			snprintf(err, errlen, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
			return r;
		}
	}
	return 0;
}

/*
 * Start-up work that mostly waits in the kernel (SRCU grace periods, a
 * probe VM) runs on helper threads beside the main thread's own setup;
 * minivm_create joins them before it returns, and before anything reads
 * what they produce. Each writes only its own struct.
 */
struct vm_setup_job {
	struct minivm *vm;
	pthread_t thread;
	bool started;
	int ret;
	bool cached; /* the probe's answer came from its cache (probe.h) */
	char err[256];
};

static void *vm_slots_thread(void *arg)
{
	struct vm_setup_job *job = arg;

	job->ret = vm_register_memory(job->vm, job->err, sizeof(job->err));
	return NULL;
}

/*
 * Drop PIT ticks the guest missed instead of injecting them later: a guest
 * slower than real time (kernel code emulated, host loaded) otherwise falls
 * ever further behind and spends all its time in catch-up ticks (seen: a
 * boot stuck in tick work after "Run /sbin/init"). Linux does not count on
 * reinjection. Turning it off unregisters KVM's ack notifier, which waits
 * for an SRCU grace period (0.1 to 15 ms on the test hosts), so it runs on
 * a thread of its own that nothing waits for: a vCPU may run before the
 * PIT's reinjection is off (the first ticks come long after).
 * minivm_start starts it after the jail, not minivm_create: the jail's uid
 * switch (setresuid and friends, which glibc applies to every thread by
 * signalling each) waited for this thread to leave its uninterruptible SRCU
 * wait, 0.2 to 17 ms of the jailed start-up here. It is a thread of the
 * jailed VMM like the others, with its own allowlist (that ioctl).
 * minivm_destroy joins it.
 */
static void vm_reinject_off(struct minivm *vm)
{
	struct kvm_reinject_control rc = { .pit_reinject = 0 };

	if (ioctl(vm->vm_fd, KVM_REINJECT_CONTROL, &rc) < 0)
		vm_log(vm, 1, "KVM_REINJECT_CONTROL: %s (ignored)", strerror(errno));
}

static void *vm_reinject_thread(void *arg)
{
	struct minivm *vm = arg;
	char err[200];

	if (vm->cfg.seccomp && jail_seccomp_thread(vm->seccomp_filters, JAIL_THREAD_REINJECT, err, sizeof(err))) {
		vm_log(vm, 1, "%s: PIT reinjection stays on", err);
		return NULL;
	}
	vm_reinject_off(vm);
	return NULL;
}

/* Whether guest kernel code is emulated (probe.h): cached per host boot and
 * kvm module load, else a throwaway VM of its own, beside the main thread's
 * setup. */
static void *vm_probe_thread(void *arg)
{
	struct vm_setup_job *job = arg;
	struct minivm *vm = job->vm;

	job->ret = probe_emulation_cached(&vm->kvm, &vm->emulated, &job->cached, job->err,
					  sizeof(job->err));
	return NULL;
}

static void vm_job_start(struct vm_setup_job *job, struct minivm *vm, void *(*fn)(void *))
{
	memset(job, 0, sizeof(*job));
	job->vm = vm;
	job->started = pthread_create(&job->thread, NULL, fn, job) == 0;
	if (!job->started)
		fn(job);
}

/* Joins a job (once); its failure becomes vm's error unless vm has one. */
static int vm_job_join(struct vm_setup_job *job, struct minivm *vm)
{
	if (job->started) {
		pthread_join(job->thread, NULL);
		job->started = false;
	}
	if (job->ret && !vm->err[0])
		vm_set_error(vm, "%s", job->err[0] ? job->err : strerror(-job->ret));
	return job->ret;
}

/*
 * The PIT (it needs the in-kernel irqchip first). KVM_CREATE_PIT2 starts a
 * kernel worker thread and registers two I/O devices, each waiting for an
 * SRCU grace period: 0.1 to 12 ms here. Beside it the main thread sets up
 * the console, the devices and the kernel; it holds kvm->lock meanwhile, so
 * KVM_CREATE_VCPU comes last. Only the worker's creation truly overlaps:
 * its two registrations and the devices' ioeventfds (each an SRCU wait
 * too) take kvm->slots_lock in turn. Joined before minivm_create returns:
 * no vCPU runs without it.
 */
static void *vm_pit_thread(void *arg)
{
	struct vm_setup_job *job = arg;
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	if (ioctl(job->vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		job->ret = -errno;
		snprintf(job->err, sizeof(job->err), "KVM_CREATE_PIT2: %s", strerror(errno));
	}
	return NULL;
}

static int vm_setup_irqchip(struct minivm *vm)
{
	struct kvm_irqfd irqfd;

	/* Intel VMX needs these three pages reserved; elsewhere they are
	 * harmless, and a host that refuses them does not need them. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, (unsigned long)VM_TSS_ADDR) < 0)
		vm_log(vm, 2, "KVM_SET_TSS_ADDR: %s (ignored)", strerror(errno));
	{
		uint64_t idmap = VM_IDENTITY_MAP_ADDR;

		if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0)
			vm_log(vm, 2, "KVM_SET_IDENTITY_MAP_ADDR: %s (ignored)", strerror(errno));
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		int r = -errno;

		vm_set_error(vm, "KVM_CREATE_IRQCHIP: %s", strerror(errno));
		return r;
	}
	/* KVM_CREATE_PIT2 runs on its own thread (vm_pit_thread), started by
	 * minivm_create right after this; KVM_REINJECT_CONTROL on another
	 * (vm_reinject_thread), started by minivm_start. */
	vm->uart_irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->uart_irq_fd < 0) {
		int r = -errno;

		vm_set_error(vm, "eventfd: %s", strerror(errno));
		return r;
	}
	memset(&irqfd, 0, sizeof(irqfd));
	irqfd.fd = (uint32_t)vm->uart_irq_fd;
	irqfd.gsi = UART_COM1_IRQ;
	if (ioctl(vm->vm_fd, KVM_IRQFD, &irqfd) < 0) {
		int r = -errno;

		vm_set_error(vm, "KVM_IRQFD for the UART: %s", strerror(errno));
		return r;
	}
	return 0;
}

static int vm_setup_console(struct minivm *vm)
{
	if (vm->cfg.console) {
		vm->console_fd = open(vm->cfg.console, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (vm->console_fd < 0) {
			int r = -errno;

			vm_set_error(vm, "cannot open console file '%s': %s", vm->cfg.console,
			       strerror(errno));
			return r;
		}
		vm->own_console_fd = true;
	} else {
		vm->console_fd = vm->cfg.console_fd;
	}
	uart_init(&vm->uart, vm->console_fd, vm->uart_irq_fd);
	vm->uart_ready = true;
	i8042_init(&vm->kbd, vm_guest_reset, vm);
	rtc_cmos_init(&vm->rtc);
	if (bus_add(&vm->pio, UART_COM1_BASE, UART_NR_REGS, uart_read, uart_write, &vm->uart) ||
	    bus_add(&vm->pio, I8042_DATA_PORT, I8042_CMD_PORT - I8042_DATA_PORT + 1, i8042_read,
		    i8042_write, &vm->kbd) ||
	    bus_add(&vm->pio, RTC_CMOS_PORT, RTC_CMOS_NR_PORTS, rtc_cmos_read, rtc_cmos_write,
		    &vm->rtc) ||
	    bus_add(&vm->pio, MINIVM_PORT_MARKER, 1, NULL, sig_marker_write, vm) ||
	    bus_add(&vm->pio, MINIVM_PORT_STATUS, 4, NULL, sig_status_write, vm)) {
		vm_set_error(vm, "internal error: overlapping port ranges");
		return -EINVAL;
	}
	return 0;
}

/* How many of net->allow a copied config holds (vm_check_config refuses
 * more than MINIVM_MAX_NET_RULES). */
static unsigned int vm_net_rules_held(const struct minivm_net *net)
{
	return net->nr_allow < MINIVM_MAX_NET_RULES ? net->nr_allow : MINIVM_MAX_NET_RULES;
}

static char *vm_strdup(const char *s, bool *oom)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

static int vm_copy_config(struct minivm *vm, const struct minivm_config *cfg)
{
	bool oom = false;

	vm->cfg = *cfg;
	vm->cfg.kernel = vm_strdup(cfg->kernel, &oom);
	vm->cfg.rootfs = vm_strdup(cfg->rootfs, &oom);
	vm->cfg.run = vm_strdup(cfg->run, &oom);
	vm->cfg.cmdline = vm_strdup(cfg->cmdline, &oom);
	vm->cfg.console = vm_strdup(cfg->console, &oom);
	vm->cfg.vsock_uds = vm_strdup(cfg->vsock_uds, &oom);
	vm->cfg.vsock_uds_jailed = vm_strdup(cfg->vsock_uds_jailed, &oom);
	for (unsigned int i = 0; i < cfg->nr_disks && i < MINIVM_MAX_DISKS; i++)
		vm->cfg.disks[i].path = vm_strdup(cfg->disks[i].path, &oom);
	vm->cfg.net.tap = vm_strdup(cfg->net.tap, &oom);
	vm->cfg.net.policy_file = vm_strdup(cfg->net.policy_file, &oom);
	vm->cfg.net.allow = NULL;
	vm->cfg.snapshot_disks = NULL;
	if (cfg->snapshot_disks && cfg->nr_snapshot_disks) {
		size_t n = cfg->nr_snapshot_disks, sz = sizeof(struct snapshot_disk);
		void *d;

		if (n > SNAPSHOT_MAX_DISKS)
			return -EINVAL;
		d = malloc(n * sz);
		if (!d)
			return -ENOMEM;
		memcpy(d, cfg->snapshot_disks, n * sz);
		vm->cfg.snapshot_disks = d;
	} else {
		vm->cfg.nr_snapshot_disks = 0;
	}
	if (cfg->net.nr_allow && cfg->net.allow) {
		unsigned int n = vm_net_rules_held(&cfg->net);
		char **allow = calloc(n, sizeof(*allow));

		vm->cfg.net.allow = (const char *const *)allow;
		if (!allow)
			return -ENOMEM;
		for (unsigned int i = 0; i < n; i++)
			allow[i] = vm_strdup(cfg->net.allow[i], &oom);
	}
	return oom ? -ENOMEM : 0;
}

static int vm_check_config(struct minivm *vm)
{
	const struct minivm_config *c = &vm->cfg;

	if (!c->kernel && c->restore_state_fd < 0) {
		vm_set_error(vm, "no kernel given");
		return -EINVAL;
	}
	if (c->cpus < 1 || c->cpus > MINIVM_MAX_CPUS) {
		vm_set_error(vm, "%u vCPUs requested; minivm supports 1 to %d", c->cpus, MINIVM_MAX_CPUS);
		return -EINVAL;
	}
	if (c->mem_bytes < (32ULL << 20) || (c->mem_bytes & 0xfffff)) {
		vm_set_error(vm, "guest memory must be a whole number of MiB, at least 32 MiB");
		return -EINVAL;
	}
	if (c->nr_disks >= MINIVM_MAX_DISKS) {
		vm_set_error(vm, "at most %d extra disks", MINIVM_MAX_DISKS - 1);
		return -EINVAL;
	}
	if ((c->restore_state_fd >= 0) != (c->restore_mem_fd >= 0) ||
	    (c->snapshot_state_fd >= 0) != (c->snapshot_mem_fd >= 0)) {
		vm_set_error(vm, "a snapshot needs both its state and its memory file");
		return -EINVAL;
	}
	if ((c->restore_state_fd >= 0 || c->snapshot_state_fd >= 0) && c->net.tap) {
		vm_set_error(vm, "snapshots of VMs with a NIC (--net) are not supported");
		return -EINVAL;
	}
	if (c->net.nr_allow > MINIVM_MAX_NET_RULES || (c->net.nr_allow && !c->net.allow)) {
		vm_set_error(vm, "net: at most %d allow rules, in an array", MINIVM_MAX_NET_RULES);
		return -EINVAL;
	}
	return 0;
}

struct vm_kernel_map {
	struct minivm *vm;
	int fd;
};

/*
 * boot/'s map_file hook: the kernel file's pages mapped privately over guest
 * RAM (copy-on-write), instead of copied: 0.9 ms instead of 5 ms for the
 * project's 12 MiB vmlinux on the test hosts (bench/run's start-up figure),
 * and VMs booting the same kernel share the pages they never write. The
 * file must not be rewritten in place while a VM runs (replacing it, as make
 * and install do, is safe): untouched private pages follow the page cache.
 */
static int vm_kernel_map_file(void *ctx, uint64_t gpa, uint64_t off, uint64_t len)
{
	struct vm_kernel_map *m = ctx;
	void *dst = gm_ptr(&m->vm->gm, gpa, len);

	if (!dst || off > (uint64_t)INT64_MAX || len > SIZE_MAX)
		return 1; /* not ours to map: boot/ copies */
	if (mmap(dst, (size_t)len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, m->fd,
		 (off_t)off) != MAP_FAILED)
		return 0;
	vm_log(m->vm, 2, "mapping the kernel at 0x%llx: %s (copying instead)",
	       (unsigned long long)gpa, strerror(errno));
	/* A failed MAP_FIXED may have unmapped the range: put RAM back. */
	if (mmap(dst, (size_t)len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED)
		return -ENOMEM;
	return 1;
}

static int vm_load_kernel(struct minivm *vm)
{
	struct vm_kernel_map map;
	struct boot_load_args args;
	struct boot_err berr;
	struct stat st;
	void *img;
	int fd, r;

	/* Mapped, not read: the loader copies only what it loads. */
	fd = open(vm->cfg.kernel, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		vm_set_error(vm, "cannot open kernel '%s': %s", vm->cfg.kernel, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (uint64_t)st.st_size > VM_KERNEL_MAX) {
		vm_set_error(vm, "kernel '%s' is not a regular file of a plausible size", vm->cfg.kernel);
		close(fd);
		return -EINVAL;
	}
	img = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (img == MAP_FAILED) {
		r = -errno;
		close(fd);
		vm_set_error(vm, "cannot map kernel '%s': %s", vm->cfg.kernel, strerror(errno));
		return r;
	}
	map.vm = vm;
	map.fd = fd;
	memset(&args, 0, sizeof(args));
	args.gm = &vm->gm;
	args.kernel = img;
	args.kernel_len = (size_t)st.st_size;
	args.cmdline = vm->cmdline;
	args.nr_vcpus = vm->nr_vcpus;
	args.map_file = vm_kernel_map_file;
	args.map_ctx = &map;
	args.ram_zeroed = true; /* vm_setup_memory's mapping, untouched so far */
	memset(&berr, 0, sizeof(berr));
	r = boot_load(&args, &vm->entry, &berr);
	munmap(img, (size_t)st.st_size);
	close(fd);
	if (r) {
		vm_set_error(vm, "kernel '%s': %s", vm->cfg.kernel, berr.msg[0] ? berr.msg : strerror(-r));
		return r;
	}
	vm_log(vm, 1, "loaded %s kernel at 0x%llx (%llu KiB), entry 0x%llx",
	       boot_kind_name(vm->entry.kind), (unsigned long long)vm->entry.load_addr,
	       (unsigned long long)(vm->entry.load_size >> 10), (unsigned long long)vm->entry.entry);
	return 0;
}

/* A restore's first step: the state file read and validated, checked
 * against the config the front made from it, and the memory file against
 * the state file. Nothing of KVM is touched yet. */
static int vm_restore_open(struct minivm *vm)
{
	const struct minivm_config *c = &vm->cfg;
	struct snapshot_meta *m = malloc(sizeof(*m));
	uint8_t *buf = NULL;
	size_t len;
	unsigned int want_disks = (c->rootfs ? 1u : 0u) + c->nr_disks;
	int r;

	if (!m) {
		vm_set_error(vm, "out of memory");
		return -ENOMEM;
	}
	r = snapshot_state_read(c->restore_state_fd, &buf, &len, &vm->restore, vm->err,
				sizeof(vm->err));
	if (r)
		goto out;
	vm->restore_buf = buf;
	r = snapshot_meta_parse(&vm->restore, m, vm->err, sizeof(vm->err));
	if (r)
		goto out;
	if (m->ram_size != c->mem_bytes || m->nr_vcpus != c->cpus || m->guest_cid != c->guest_cid ||
	    m->nr_disks != want_disks || m->has_rootfs != (c->rootfs != NULL)) {
		vm_set_error(vm, "restore: the configuration is not the snapshot's (RAM %llu/%llu, "
				 "vCPUs %u/%u, CID %u/%u, disks %u/%u)",
			     (unsigned long long)c->mem_bytes, (unsigned long long)m->ram_size, c->cpus,
			     m->nr_vcpus, c->guest_cid, m->guest_cid, want_disks, m->nr_disks);
		r = -EINVAL;
		goto out;
	}
	r = snapshot_check_memory(c->restore_mem_fd, m, vm->err, sizeof(vm->err));
	if (r)
		goto out;
	vm->emulated = m->emulated;
	vm->restored = true;
out:
	free(m);
	return r;
}

/* The saved state into the VM just made as for a boot (devices set up,
 * vCPUs created, no kernel loaded): devices, irqchip, each vCPU, then the
 * PIT once its creation (pit_job, on its own thread since the irqchip was
 * made) is joined, the clock last. */
static int vm_restore_state(struct minivm *vm, struct vm_setup_job *pit_job)
{
	char msg[sizeof(vm->err)];
	int r;

	/* Devices first (vmm/vm_snapshot.h's order): they stay quiesced
	 * until minivm_start resumes them. */
	msg[0] = '\0';
	r = vm_devices_restore(vm, &vm->restore, msg, sizeof(msg));
	if (r) {
		vm_set_error(vm, "restore: %s", msg[0] ? msg : strerror(-r));
		return r;
	}
	r = snapshot_restore_irqchip(vm, &vm->restore, vm->err, sizeof(vm->err));
	if (r)
		return r;
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		r = snapshot_restore_vcpu(vm, &vm->vcpus[i], &vm->restore, vm->err, sizeof(vm->err));
		if (r)
			return r;
	}
	r = vm_job_join(pit_job, vm);
	if (!r)
		r = snapshot_restore_pit(vm, &vm->restore, vm->err, sizeof(vm->err));
	if (r)
		return r;
	return snapshot_restore_clock(vm, &vm->restore, vm->err, sizeof(vm->err));
}

int minivm_snapshot(struct minivm *vm)
{
	struct timespec deadline;
	char msg[sizeof(vm->err)];
	int r = 0;

	if (!vm->started || minivm_ended(vm)) {
		vm_set_error(vm, "snapshot: the VM is not running");
		return -ECHILD;
	}
	if (vm->cfg.snapshot_mem_fd < 0 || vm->cfg.snapshot_state_fd < 0) {
		vm_set_error(vm, "snapshot: no snapshot files were given");
		return -EINVAL;
	}
	if (vm->paused) {
		vm_set_error(vm, "snapshot: the VM is already paused");
		return -EALREADY;
	}
	vm->paused = true;
	atomic_store(&vm->pause_req, true);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		v->run->immediate_exit = 1;
		if (atomic_load(&v->in_guest_thread))
			pthread_kill(v->thread, VCPU_KICK_SIGNAL);
	}
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += VM_PAUSE_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&vm->pause_lock);
	while (vm->parked < vm->nr_vcpus && !minivm_ended(vm) && r == 0) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		if (ts.tv_sec > deadline.tv_sec ||
		    (ts.tv_sec == deadline.tv_sec && ts.tv_nsec >= deadline.tv_nsec)) {
			r = -ETIMEDOUT;
			break;
		}
		ts.tv_nsec += 10 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&vm->pause_cond, &vm->pause_lock, &ts);
	}
	pthread_mutex_unlock(&vm->pause_lock);
	if (r) {
		vm_set_error(vm, "snapshot: the vCPUs did not pause within %d s", VM_PAUSE_TIMEOUT_MS / 1000);
		return r;
	}
	if (minivm_ended(vm)) {
		vm_set_error(vm, "snapshot: the VM ended while pausing");
		return -ECHILD;
	}
	vm_log(vm, 1, "snapshot: %u vCPU(s) paused", vm->nr_vcpus);
	/* Nothing in flight, nothing written to guest memory from here on. */
	r = vm_devices_quiesce(vm, VM_QUIESCE_TIMEOUT_MS);
	if (r)
		return r;
	msg[0] = '\0';
	r = snapshot_save(vm, vm->cfg.snapshot_mem_fd, vm->cfg.snapshot_state_fd, vm_devices_save,
			  msg, sizeof(msg));
	if (r)
		vm_set_error(vm, "%s", msg[0] ? msg : strerror(-r));
	return r;
}

void minivm_resume(struct minivm *vm)
{
	if (!vm->paused)
		return;
	vm_devices_resume(vm, false);
	pthread_mutex_lock(&vm->pause_lock);
	atomic_store(&vm->pause_req, false);
	pthread_cond_broadcast(&vm->pause_cond);
	pthread_mutex_unlock(&vm->pause_lock);
	vm->paused = false;
	vm_log(vm, 1, "resumed");
}

int minivm_create(const struct minivm_config *cfg, struct minivm **out, char *err, size_t errlen)
{
	struct minivm *vm;
	struct sigaction sa;
	struct vm_setup_job probe_job = { .started = false }, slots_job = { .started = false };
	struct vm_setup_job pit_job = { .started = false };
	int r;

	*out = NULL;
	vm = calloc(1, sizeof(*vm));
	if (!vm) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	vm->t0_ns = now_ns();
	vm->vm_fd = vm->uart_irq_fd = vm->console_fd = -1;
	vm->timeout_fd = -1;
	vm->event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->event_fd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		free(vm);
		return -ENOMEM;
	}
	r = evq_init(&vm->events, 0);
	if (r) {
		snprintf(err, errlen, "event queue: %s", strerror(-r));
		close(vm->event_fd);
		free(vm);
		return r;
	}
	vm->kvm.fd = -1;
	for (unsigned int i = 0; i < MINIVM_MAX_CPUS; i++)
		vm->vcpus[i].fd = -1;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->pause_lock, NULL);
	pthread_cond_init(&vm->pause_cond, NULL);
	atomic_init(&vm->state, VM_RUNNING);
	r = vm_copy_config(vm, cfg);
	if (r) {
		vm_set_error(vm, "out of memory");
		goto fail;
	}
	r = vm_check_config(vm);
	if (r)
		goto fail;
	vm->nr_vcpus = vm->cfg.cpus;
	if (vm->cfg.restore_state_fd >= 0) {
		r = vm_restore_open(vm);
		if (r)
			goto fail;
		vm->restore_validated_ns = vm_elapsed(vm);
	}
	if (vm->cfg.rootfs) {
		r = vm_check_rootfs(vm, vm->cfg.rootfs);
		if (r)
			goto fail;
	}
	r = kvm_open(&vm->kvm, vm->err, sizeof(vm->err));
	if (r)
		goto fail;
	/* A restore keeps the answer its snapshot's guest was booted for. */
	switch (vm->restored ? (int)-1 : (int)vm->cfg.emul) {
	case -1:
		break;
	case MINIVM_EMUL_YES:
		vm->emulated = true;
		break;
	case MINIVM_EMUL_NO:
		vm->emulated = false;
		break;
	default:
		/* A cache hit here; a miss runs the probe VM on its thread. */
		if (probe_cache_lookup(&vm->emulated) == 0)
			probe_job.cached = true;
		else
			vm_job_start(&probe_job, vm, vm_probe_thread);
		break;
	}
	vm->vm_fd = ioctl(vm->kvm.fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		r = -errno;
		vm_set_error(vm, "KVM_CREATE_VM: %s", strerror(errno));
		goto fail;
	}
	/* The memory slot first: its SRCU wait is the longest step of all. */
	r = vm_setup_memory(vm);
	if (r)
		goto fail;
	if (vm->restored)
		vm->restore_mapped_ns = vm_elapsed(vm);
	vm_job_start(&slots_job, vm, vm_slots_thread);
	r = vm_setup_irqchip(vm);
	if (r)
		goto fail;
	vm_job_start(&pit_job, vm, vm_pit_thread);
	r = vm_setup_console(vm);
	if (r)
		goto fail;
	r = vm_devices_setup(vm);
	if (r)
		goto fail;
	r = vm_job_join(&probe_job, vm);
	if (r)
		goto fail;
	vm_log(vm, 1, "host %s guest kernel code%s", vm->emulated ? "emulates" : "runs natively",
	       probe_job.cached ? " (the probe's cached answer)" : "");
	if (!vm->restored) {
		r = vm_cmdline_build(vm->cmdline, sizeof(vm->cmdline), &vm->cfg, vm->emulated,
				     vm->dev_params, vm->nr_dev_params, vm->err, sizeof(vm->err));
		if (r)
			goto fail;
		vm_log(vm, 1, "kernel command line: %s", vm->cmdline);
		r = vm_load_kernel(vm);
		if (r)
			goto fail;
	}
	/* After the kernel's load: the PIT's creation holds kvm->lock, which
	 * KVM_CREATE_VCPU takes too. */
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		r = vcpu_create(vm, i);
		if (r)
			goto fail;
	}
	if (vm->restored) {
		r = vm_restore_state(vm, &pit_job);
		if (r)
			goto fail;
		vm->restore_state_ns = vm_elapsed(vm);
		vm_log(vm, 1, "restored the snapshot's state");
	} else {
		r = vcpu_set_boot_regs(vm, &vm->entry);
		if (r)
			goto fail;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = vcpu_kick_handler; /* no SA_RESTART: KVM_RUN must see EINTR */
	sigemptyset(&sa.sa_mask);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0) {
		r = -errno;
		vm_set_error(vm, "sigaction: %s", strerror(errno));
		goto fail;
	}
	r = vm_job_join(&slots_job, vm);
	if (r)
		goto fail;
	r = vm_job_join(&pit_job, vm);
	if (r)
		goto fail;
	*out = vm;
	return 0;
fail:
	vm_job_join(&probe_job, vm);
	vm_job_join(&slots_job, vm);
	vm_job_join(&pit_job, vm);
	snprintf(err, errlen, "%s", vm->err[0] ? vm->err : strerror(-r));
	minivm_destroy(vm);
	return r;
}

int minivm_start(struct minivm *vm)
{
	sigset_t all, old;
	int r = 0;

	if (vm->started) {
		vm_set_error(vm, "the VM was already started");
		return -EALREADY;
	}
	vm->started = true;
	r = vm_devices_start(vm);
	if (r) {
		vm_end(vm, MINIVM_VMM_ERROR);
		vm->start_err = r;
		return r;
	}
	/* A restore's devices were restored quiesced: serve their queues,
	 * resend pending interrupts and reset the guest's vsock connections
	 * before any vCPU runs (the event loop runs already). */
	if (vm->restored)
		vm_devices_resume(vm, true);
	/* Threads start with every signal blocked; each vCPU unblocks its kick. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		r = pthread_create(&v->thread, NULL, vcpu_thread, v);
		if (r) {
			vm_set_error(vm, "cannot start vCPU thread: %s", strerror(r));
			vm_end(vm, MINIVM_VMM_ERROR);
			r = -r;
			vm->start_err = r;
			break;
		}
		v->started = true;
		atomic_store(&v->in_guest_thread, true);
	}
	if (r == 0 && vm->restored) {
		/* The agent was ready when the snapshot was taken: a restored
		 * VM is ready as it resumes (the front's HELLO round trip is
		 * what proves it). */
		atomic_store(&vm->ready_ns, vm_elapsed(vm));
		vm_signal_event(vm);
	}
	if (r == 0) {
		vm->reinject_started =
			pthread_create(&vm->reinject_thread, NULL, vm_reinject_thread, vm) == 0;
		if (!vm->reinject_started)
			vm_reinject_off(vm); /* here, then */
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

bool minivm_ended(const struct minivm *vm)
{
	return atomic_load(&vm->state) != VM_RUNNING;
}

int minivm_metrics(struct minivm *vm, struct minivm_metrics *out)
{
	if (!vm || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	for (unsigned int k = 0; k < EXIT_K_COUNT && k < MINIVM_METRICS_MAX_EXITS; k++) {
		struct minivm_exit_count *e = &out->exits[out->nr_exits++];

		snprintf(e->name, sizeof(e->name), "%s", exit_kind_name((enum exit_kind)k));
		for (unsigned int i = 0; i < vm->nr_vcpus && i < MINIVM_MAX_CPUS; i++)
			e->count += atomic_load_explicit(&vm->vcpus[i].exits[k], memory_order_relaxed);
		out->exits_total += e->count;
	}
	vm_devices_metrics(vm, out);
	evq_counts(&vm->events, &out->events_suppressed, &out->guest_errors);
	return 0;
}

int minivm_next_event(struct minivm *vm, struct minivm_event *ev)
{
	return evq_pop(&vm->events, ev) ? 1 : 0;
}

int minivm_event_fd(const struct minivm *vm)
{
	return vm->event_fd;
}

int minivm_wait_ready(struct minivm *vm, int timeout_ms)
{
	uint64_t deadline = timeout_ms >= 0 ? now_ns() + (uint64_t)timeout_ms * 1000000ULL : 0;

	for (;;) {
		struct pollfd pfd = { .fd = vm->event_fd, .events = POLLIN };
		int wait_ms = -1;

		if (atomic_load(&vm->ready_ns))
			return 0;
		if (minivm_ended(vm))
			return -ECHILD;
		if (timeout_ms >= 0) {
			uint64_t now = now_ns();

			if (now >= deadline)
				return -ETIMEDOUT;
			wait_ms = (int)((deadline - now + 999999) / 1000000);
		}
		if (poll(&pfd, 1, wait_ms) < 0 && errno == EINTR)
			return -EINTR;
		if (pfd.revents & POLLIN) {
			uint64_t cnt;

			/* Consume the wake-up; the state checks above decide. */
			if (read(vm->event_fd, &cnt, sizeof(cnt)) < 0) {
				/* EAGAIN: another reader took it; recheck. */
			}
		}
	}
}

int minivm_wait(struct minivm *vm, struct minivm_result *res)
{
	int r = vm->start_err;

	memset(res, 0, sizeof(*res));
	if (!vm->started) {
		vm_set_error(vm, "minivm_wait() before minivm_start()");
		res->outcome = MINIVM_VMM_ERROR;
		return -EINVAL;
	}
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->started) {
			pthread_join(v->thread, NULL);
			atomic_store(&v->in_guest_thread, false);
			v->started = false;
		}
	}
	vm_devices_stop(vm);
	uart_flush(&vm->uart);
	res->outcome = vm->result.outcome;
	res->status = vm->result.status;
	res->emulated = vm->emulated;
	res->timings.first_run_ns = atomic_load(&vm->first_run_ns);
	res->timings.init_started_ns = atomic_load(&vm->init_started_ns);
	res->timings.ready_ns = atomic_load(&vm->ready_ns);
	res->timings.exit_ns = atomic_load(&vm->exit_ns);
	res->timings.restore_validated_ns = vm->restore_validated_ns;
	res->timings.restore_mapped_ns = vm->restore_mapped_ns;
	res->timings.restore_state_ns = vm->restore_state_ns;
	if (res->outcome == MINIVM_VMM_ERROR) {
		if (vm->fatal[0])
			snprintf(vm->err, sizeof(vm->err), "%s", vm->fatal);
		return r ? r : -EIO;
	}
	return r;
}

int minivm_run(struct minivm *vm, struct minivm_result *res)
{
	int r = minivm_start(vm);
	int w = minivm_wait(vm, res);

	return r ? r : w;
}

void minivm_destroy(struct minivm *vm)
{
	if (!vm)
		return;
	if (vm->reinject_started) {
		pthread_join(vm->reinject_thread, NULL);
		vm->reinject_started = false;
	}
	/* Started and never waited for: stop and join the threads first. */
	for (unsigned int i = 0; i < vm->nr_vcpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->started) {
			minivm_stop(vm);
			pthread_join(v->thread, NULL);
			atomic_store(&v->in_guest_thread, false);
			v->started = false;
		}
	}
	for (unsigned int i = 0; i < MINIVM_MAX_CPUS; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v->run)
			munmap(v->run, vm->kvm.run_size);
		if (v->fd >= 0)
			close(v->fd);
	}
	vm_devices_destroy(vm);
	if (vm->uart_ready) {
		uart_destroy(&vm->uart);
		rtc_cmos_destroy(&vm->rtc);
	}
	if (vm->own_console_fd && vm->console_fd >= 0)
		close(vm->console_fd);
	if (vm->uart_irq_fd >= 0)
		close(vm->uart_irq_fd);
	if (vm->ram)
		munmap(vm->ram, vm->ram_size);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	kvm_close(&vm->kvm);
	free((char *)vm->cfg.kernel);
	free((char *)vm->cfg.rootfs);
	free((char *)vm->cfg.run);
	free((char *)vm->cfg.cmdline);
	free((char *)vm->cfg.console);
	free((char *)vm->cfg.vsock_uds);
	free((char *)vm->cfg.vsock_uds_jailed);
	for (unsigned int i = 0; i < vm->cfg.nr_disks && i < MINIVM_MAX_DISKS; i++)
		free((char *)vm->cfg.disks[i].path);
	free((char *)vm->cfg.net.tap);
	free((char *)vm->cfg.net.policy_file);
	if (vm->cfg.net.allow) {
		for (unsigned int i = 0; i < vm_net_rules_held(&vm->cfg.net); i++)
			free((char *)vm->cfg.net.allow[i]);
		free((void *)vm->cfg.net.allow);
	}
	if (vm->event_fd >= 0)
		close(vm->event_fd);
	free((void *)vm->cfg.snapshot_disks);
	free(vm->restore_buf);
	pthread_cond_destroy(&vm->pause_cond);
	pthread_mutex_destroy(&vm->pause_lock);
	pthread_mutex_destroy(&vm->lock);
	evq_destroy(&vm->events);
	free(vm);
}
