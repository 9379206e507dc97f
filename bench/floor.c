/* floor: the raw KVM cost of the exits rootfs/tools/minivm-probe.c times, with nothing but a KVM_RUN loop around them. */
/*
 * usage: floor [N [ROUNDS [PORT]]]      (defaults 2000, 5, 0xf48: the probe's)
 *
 * One VM, one vCPU, 2 MiB of RAM, no irqchip, no devices. The guest runs in
 * 64-bit mode at CPL 3, with its ports allowed by the TSS I/O bitmap (what
 * ioperm() sets up for the probe in a Linux guest; the test hosts ignore
 * IOPL for this), as the probe runs in a Linux guest's user space: on the
 * test hosts an exit taken from guest user mode costs several times one
 * from kernel mode, so the privilege level matters as much as the
 * instruction. For each kind the vCPU runs exactly the probe's loop bytes:
 *
 *   <access>; dec %ecx; jnz <access>      then  mov $PORT_END,%edx; out %al,(%dx)
 *
 * and the host answers each exit the least a VMM can: an `in` reads
 * all-ones, an MMIO read returns the virtio magic, writes are dropped. The
 * notification loop writes the QueueNotify address, caught by an ioeventfd
 * (datamatch 0), so it never returns to user space, as in minivm and QEMU.
 * The spin loop has no access at all (ns per iteration): its floor is the
 * CPU's; in a Linux guest the difference is the guest kernel's own time.
 * Prints, per round and kind, the same line as the probe:
 *
 *   probe KIND round=R n=N ns=NS_PER_ACCESS
 *
 * timed on the host around the KVM_RUN loop (the one extra exit, the end
 * port, is 1/N of it). Exit status 0, 1 on an error.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define RAM_SIZE (2u << 20)
#define PML4_GPA 0x1000u
#define PDPT_GPA 0x2000u
#define PD_LOW_GPA 0x3000u  /* 0 - 1 GiB: the RAM */
#define PD_HIGH_GPA 0x4000u /* 3 - 4 GiB: the MMIO window */
#define CODE_GPA 0x10000u   /* one loop per kind, 64 bytes apart */
#define TSS_GPA 0x20000u    /* a 64-bit TSS whose I/O bitmap allows every port */
#define TSS_IOMAP 0x68u     /* the bitmap right after the 104-byte TSS */
#define MMIO_GPA 0xd0000000ull /* where minivm's first virtio-mmio slot is */
#define NOTIFY_OFF 0x50u       /* virtio-mmio QueueNotify */
#define VIRTIO_MAGIC 0x74726976u
#define PORT_END 0x0f4f

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_PS 0x80ull

enum kind { K_PIO_OUT, K_PIO_IN, K_MMIO_READ, K_NOTIFY, K_SPIN, K_NR };
static const char *const kind_name[K_NR] = { "pio_out", "pio_in", "mmio_read", "notify", "spin" };
#define SPIN_MULT 25000u /* the probe's PROBE_SPIN_MULT */

/* The access instruction of each loop, byte for byte the probe's
 * (objdump -d of minivm-probe shows them). */
static const uint8_t access_insn[K_NR][2] = {
	{ 0xee },       /* out %al,(%dx) */
	{ 0xec },       /* in (%dx),%al */
	{ 0x8b, 0x06 }, /* mov (%rsi),%eax */
	{ 0x89, 0x06 }, /* mov %eax,(%rsi) */
	{ 0 },          /* spin: no access, only the loop */
};
static const unsigned int access_len[K_NR] = { 1, 1, 2, 2, 0 };

static void die(const char *what)
{
	fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Writes loop k at CODE_GPA + 64 k: access; dec %ecx; jnz access; then the
 * end: mov $PORT_END,%edx; out %al,(%dx). */
static void put_code(uint8_t *ram, enum kind k)
{
	uint8_t *p = ram + CODE_GPA + 64 * k;
	unsigned int n = 0, len = access_len[k];

	memcpy(p, access_insn[k], len);
	n = len;
	p[n++] = 0xff; /* dec %ecx */
	p[n++] = 0xc9;
	p[n++] = 0x75; /* jnz back to the access */
	p[n] = (uint8_t)-(int)(n + 1);
	n++;
	p[n++] = 0xba; /* mov $PORT_END,%edx */
	p[n++] = PORT_END & 0xff;
	p[n++] = PORT_END >> 8;
	p[n++] = 0;
	p[n++] = 0;
	p[n++] = 0xee; /* out %al,(%dx) */
	p[n++] = 0xeb; /* jmp . (never reached: the host stops here) */
	p[n++] = 0xfe;
}

/* Identity-mapped 2 MiB pages, user-accessible: the RAM at 0 and the MMIO
 * window's first 2 MiB. */
static void put_page_tables(uint8_t *ram)
{
	uint64_t *pml4 = (uint64_t *)(ram + PML4_GPA);
	uint64_t *pdpt = (uint64_t *)(ram + PDPT_GPA);
	uint64_t *pd_low = (uint64_t *)(ram + PD_LOW_GPA);
	uint64_t *pd_high = (uint64_t *)(ram + PD_HIGH_GPA);
	const uint64_t f = PTE_P | PTE_RW | PTE_US;

	pml4[0] = PDPT_GPA | f;
	pdpt[0] = PD_LOW_GPA | f;
	pdpt[MMIO_GPA >> 30] = PD_HIGH_GPA | f;
	pd_low[0] = 0 | f | PTE_PS;
	pd_high[(MMIO_GPA >> 21) & 511] = MMIO_GPA | f | PTE_PS;
}

static void set_seg(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	memset(s, 0, sizeof(*s));
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 3;
	s->s = 1;
	s->g = 1;
	s->l = code ? 1 : 0;
	s->db = code ? 0 : 1;
}

/* 64-bit mode at CPL 3 straight away: no guest kernel, no IDT (nothing
 * here raises an exception or takes an interrupt). */
static void setup_vcpu(int kvm, int vcpu)
{
	struct kvm_sregs sregs;
	struct kvm_cpuid2 *cpuid;
	const int max = 100;

	cpuid = calloc(1, sizeof(*cpuid) + max * sizeof(cpuid->entries[0]));
	if (!cpuid)
		die("calloc");
	cpuid->nent = max;
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0)
		die("KVM_GET_SUPPORTED_CPUID");
	if (ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0) /* long mode needs CPUID.LM */
		die("KVM_SET_CPUID2");
	free(cpuid);
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		die("KVM_GET_SREGS");
	set_seg(&sregs.cs, 0x23, 0xb, 1);
	set_seg(&sregs.ds, 0x1b, 0x3, 0);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.type = 0xb; /* a busy 64-bit TSS, as VM entry requires */
	sregs.tr.present = 1;
	sregs.tr.base = TSS_GPA;
	sregs.tr.limit = TSS_IOMAP + 8192; /* the bitmap and its 0xff terminator */
	sregs.cr0 = 0x80000031; /* PG NE ET PE */
	sregs.cr3 = PML4_GPA;
	sregs.cr4 = 0x20;     /* PAE */
	sregs.efer = 0x500;   /* LMA LME */
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
		die("KVM_SET_SREGS");
}

/* Runs loop k for n accesses; returns the host nanoseconds it took. */
static uint64_t run_loop(int vcpu, struct kvm_run *run, enum kind k, uint32_t n, uint16_t port)
{
	struct kvm_regs regs;
	uint64_t t0;

	memset(&regs, 0, sizeof(regs));
	regs.rip = CODE_GPA + 64 * k;
	regs.rflags = 0x2; /* IOPL 0: the TSS bitmap allows the ports, as ioperm() does */
	regs.rcx = k == K_SPIN ? n * SPIN_MULT : n;
	regs.rdx = port;
	regs.rsi = MMIO_GPA + (k == K_NOTIFY ? NOTIFY_OFF : 0);
	if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		die("KVM_SET_REGS");
	t0 = now_ns();
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("KVM_RUN");
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			if (run->io.port == PORT_END)
				return now_ns() - t0;
			if (run->io.direction == KVM_EXIT_IO_IN)
				memset((uint8_t *)run + run->io.data_offset, 0xff,
				       (size_t)run->io.size * run->io.count);
			break;
		case KVM_EXIT_MMIO:
			if (!run->mmio.is_write) {
				uint32_t v = VIRTIO_MAGIC;

				memcpy(run->mmio.data, &v, sizeof(v));
			}
			break;
		default:
			fprintf(stderr, "floor: unexpected exit %u in loop %s\n", run->exit_reason,
				kind_name[k]);
			exit(1);
		}
	}
}

int main(int argc, char **argv)
{
	uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 2000;
	unsigned int rounds = argc > 2 ? (unsigned int)strtoul(argv[2], NULL, 0) : 5;
	unsigned long port = argc > 3 ? strtoul(argv[3], NULL, 0) : 0x0f48;
	struct kvm_userspace_memory_region mem;
	struct kvm_ioeventfd ioev;
	struct kvm_run *run;
	int kvm, vm, vcpu, efd, run_size;
	uint8_t *ram;

	if (argc > 4 || n == 0 || n > 100000 || rounds == 0 || port == 0 || port > 0xffff || port == PORT_END) {
		fprintf(stderr, "usage: %s [N [ROUNDS [PORT]]]\n", argv[0]);
		return 2;
	}
	kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm");
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0)
		die("KVM_CREATE_VM");
	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ram == MAP_FAILED)
		die("mmap");
	put_page_tables(ram);
	/* TSS: the I/O map base at offset 0x66; a zero bit allows a port. */
	memcpy(ram + TSS_GPA + 0x66, &(uint16_t){ TSS_IOMAP }, 2);
	ram[TSS_GPA + TSS_IOMAP + 8192] = 0xff;
	for (int k = 0; k < K_NR; k++)
		put_code(ram, (enum kind)k);
	mem = (struct kvm_userspace_memory_region){ .slot = 0, .guest_phys_addr = 0,
						    .memory_size = RAM_SIZE,
						    .userspace_addr = (uint64_t)(uintptr_t)ram };
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &mem) < 0)
		die("KVM_SET_USER_MEMORY_REGION");
	/* The notification: a 4-byte write of 0 to QueueNotify wakes an eventfd
	 * in the kernel; nobody reads it (the counter just grows). */
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (efd < 0)
		die("eventfd");
	memset(&ioev, 0, sizeof(ioev));
	ioev.addr = MMIO_GPA + NOTIFY_OFF;
	ioev.len = 4;
	ioev.fd = efd;
	ioev.datamatch = 0;
	ioev.flags = KVM_IOEVENTFD_FLAG_DATAMATCH;
	if (ioctl(vm, KVM_IOEVENTFD, &ioev) < 0)
		die("KVM_IOEVENTFD");
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		die("KVM_CREATE_VCPU");
	run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(*run))
		die("KVM_GET_VCPU_MMAP_SIZE");
	run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		die("mmap of kvm_run");
	setup_vcpu(kvm, vcpu);
	/* Warm-up: the first pass faults the pages in (shadow page tables). */
	for (int k = 0; k < K_NR; k++)
		run_loop(vcpu, run, (enum kind)k, 16, (uint16_t)port);
	printf("probe setup port=0x%lx mmio=0x%llx n=%u rounds=%u\n", port,
	       (unsigned long long)MMIO_GPA, n, rounds);
	for (unsigned int r = 1; r <= rounds; r++) {
		for (int k = 0; k < K_NR; k++) {
			uint64_t ns = run_loop(vcpu, run, (enum kind)k, n, (uint16_t)port);

			printf("probe %s round=%u n=%u ns=%.3f\n", kind_name[k], r, n,
			       (double)ns / n / (k == K_SPIN ? SPIN_MULT : 1));
		}
		fflush(stdout);
	}
	return 0;
}
