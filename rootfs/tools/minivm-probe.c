/* minivm-probe: guest user-space exit-latency probe (PIO, MMIO, ioeventfd notifications), the same under any VMM. */
/*
 * Usage (in the guest, as root):
 *   minivm-probe [N [ROUNDS [PORT]]]
 *   minivm-probe mark M        outb(M, 0xf40): a benchmark marker (16-255) that
 *                              minivm -v logs, and bench/run's QEMU sees through
 *                              an isa-debugcon on that port
 *
 * Times ROUNDS rounds (default 5) of N accesses (default 2000) of each kind
 * and prints one line per round:
 *
 *   probe KIND round=R n=N ns=NS_PER_ACCESS
 *
 * KIND is one of
 *   pio_out   outb to PORT (default 0xf48: no device in minivm nor in QEMU
 *             microvm, so both VMMs take the exit to user space, find no
 *             handler and drop the write)
 *   pio_in    inb from PORT (both answer all-ones from user space)
 *   mmio_read readl of the MagicValue register (offset 0) of the first
 *             virtio-mmio block device on the kernel command line: both VMMs
 *             answer it from their user-space virtio-mmio transport
 *   notify    writel of 0 to that device's QueueNotify (offset 0x50): both
 *             VMMs catch it with an ioeventfd (datamatch queue 0), so the
 *             vCPU does not return to user space; the device then sees a
 *             spurious notification (no new buffers), which virtio allows
 *   spin      N * PROBE_SPIN_MULT iterations of `dec %ecx; jnz` and no access
 *             (ns= per iteration): no exit at all, so what it costs above the
 *             floor is what the guest's own kernel takes from its user space
 *             (timer ticks, emulated on the test hosts) in any loop
 *
 * Each loop is exactly the instructions bench/floor.c runs in its guest
 * (see PROBE_LOOP below; keep the two in step): one access, `dec %ecx`,
 * `jnz`. The ns= figure is the guest's CLOCK_MONOTONIC, which can drift on
 * emulating hosts; so each timed loop is also framed by markers on port
 * 0xf40 (40 + kind before, 39 after, in the order of the kinds above) for
 * the host to time it: bench/run uses those.
 * Exit status 0; 1 on an error (message on stderr); 2 on bad usage.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PROBE_PORT_DEFAULT 0x0f48
#define PROBE_PORT_MARKER 0x0f40 /* MINIVM_PORT_MARKER */
#define PROBE_MARK_END 39        /* after each timed loop */
#define PROBE_MARK_KIND 40       /* 40 + kind before each timed loop */
#define PROBE_SPIN_MULT 25000u   /* spin iterations per access of the others */
#define VIRTIO_MMIO_MAGIC 0x000
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MAGIC 0x74726976u /* "virt" */
#define VIRTIO_ID_BLOCK 2

static uint64_t probe_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/*
 * The four loops. Registers: ecx = count, dx = port, rsi = address,
 * eax = data. bench/floor.c assembles the same byte sequences:
 *   pio_out   ee          outb %al,(%dx)
 *   pio_in    ec          inb (%dx),%al
 *   mmio_read 8b 06       mov (%rsi),%eax
 *   notify    89 06       mov %eax,(%rsi)
 *   spin      (nothing)
 * each followed by ff c9 (dec %ecx) and 75 xx (jnz back).
 */
#define PROBE_LOOP(insn, n, port, addr)                                                   \
	do {                                                                              \
		uint32_t c_ = (n), a_ = 0;                                                \
		__asm__ volatile("1: " insn "\n\tdec %%ecx\n\tjnz 1b"                     \
				 : "+c"(c_), "+a"(a_)                                     \
				 : "d"((uint16_t)(port)), "S"(addr)                       \
				 : "memory");                                             \
	} while (0)

enum probe_kind { PK_PIO_OUT, PK_PIO_IN, PK_MMIO_READ, PK_NOTIFY, PK_SPIN, PK_NR };
static const char *const probe_names[PK_NR] = { "pio_out", "pio_in", "mmio_read", "notify",
						"spin" };

static void probe_run(enum probe_kind k, uint32_t n, uint16_t port, volatile uint32_t *regs)
{
	volatile uint32_t *notify = regs + VIRTIO_MMIO_QUEUE_NOTIFY / 4;

	switch (k) {
	case PK_PIO_OUT:
		PROBE_LOOP("outb %%al, %%dx", n, port, regs);
		break;
	case PK_PIO_IN:
		PROBE_LOOP("inb %%dx, %%al", n, port, regs);
		break;
	case PK_MMIO_READ:
		PROBE_LOOP("movl (%%rsi), %%eax", n, port, regs);
		break;
	case PK_NOTIFY:
		PROBE_LOOP("movl %%eax, (%%rsi)", n, port, notify);
		break;
	case PK_SPIN:
		PROBE_LOOP("", n * PROBE_SPIN_MULT, port, regs);
		break;
	default:
		break;
	}
}

/* The first "virtio_mmio.device=SIZE@ADDR:IRQ" on the command line whose
 * device is a block device: both VMMs announce their devices that way
 * (QEMU microvm with acpi=off). 0 when there is none. */
static uint64_t probe_find_blk(int memfd, volatile uint32_t **regs_out, void **map_out)
{
	char line[4096];
	FILE *f = fopen("/proc/cmdline", "r");
	char *tok, *save = NULL;

	if (!f || !fgets(line, sizeof(line), f)) {
		if (f)
			fclose(f);
		return 0;
	}
	fclose(f);
	for (tok = strtok_r(line, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
		const char *at;
		uint64_t addr, page;
		void *map;
		volatile uint32_t *regs;

		if (strncmp(tok, "virtio_mmio.device=", 19) || !(at = strchr(tok, '@')))
			continue;
		addr = strtoull(at + 1, NULL, 0);
		page = addr & ~0xfffull;
		map = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, (off_t)page);
		if (map == MAP_FAILED)
			continue;
		regs = (volatile uint32_t *)((char *)map + (addr - page));
		if (regs[VIRTIO_MMIO_MAGIC / 4] == VIRTIO_MAGIC &&
		    regs[VIRTIO_MMIO_DEVICE_ID / 4] == VIRTIO_ID_BLOCK) {
			*regs_out = regs;
			*map_out = map;
			return addr;
		}
		munmap(map, 4096);
	}
	return 0;
}

static int probe_mark(const char *arg)
{
	unsigned long m = strtoul(arg, NULL, 0);

	if (m < 16 || m > 255) {
		fprintf(stderr, "minivm-probe: marker 16-255\n");
		return 2;
	}
	if (ioperm(PROBE_PORT_MARKER, 1, 1) < 0) {
		perror("minivm-probe: ioperm");
		return 1;
	}
	outb((unsigned char)m, PROBE_PORT_MARKER);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "mark"))
		return probe_mark(argv[2]);
	uint32_t n = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 2000;
	unsigned int rounds = argc > 2 ? (unsigned int)strtoul(argv[2], NULL, 0) : 5;
	unsigned long port = argc > 3 ? strtoul(argv[3], NULL, 0) : PROBE_PORT_DEFAULT;
	volatile uint32_t *regs = NULL;
	void *map = NULL;
	uint64_t addr;
	int memfd;

	if (argc > 4 || n == 0 || n > 100000 || rounds == 0 || rounds > 1000 || port == 0 || port > 0xffff) {
		fprintf(stderr, "usage: %s [N [ROUNDS [PORT]]]\n", argv[0]);
		return 2;
	}
	if (ioperm(port, 1, 1) < 0 || ioperm(PROBE_PORT_MARKER, 1, 1) < 0) {
		perror("minivm-probe: ioperm");
		return 1;
	}
	memfd = open("/dev/mem", O_RDWR | O_SYNC);
	if (memfd < 0) {
		perror("minivm-probe: /dev/mem");
		return 1;
	}
	addr = probe_find_blk(memfd, &regs, &map);
	if (!addr) {
		fprintf(stderr, "minivm-probe: no virtio-mmio block device on the command line\n");
		return 1;
	}
	printf("probe setup port=0x%lx mmio=0x%llx n=%u rounds=%u\n", port,
	       (unsigned long long)addr, n, rounds);
	/* Interleave the kinds round by round, so a burst of host load
	 * spreads over all of them. */
	for (unsigned int r = 1; r <= rounds; r++) {
		for (int k = 0; k < PK_NR; k++) {
			uint64_t t0, t1;

			outb((unsigned char)(PROBE_MARK_KIND + k), PROBE_PORT_MARKER);
			t0 = probe_now_ns();
			probe_run((enum probe_kind)k, n, (uint16_t)port, regs);
			t1 = probe_now_ns();
			outb(PROBE_MARK_END, PROBE_PORT_MARKER);
			printf("probe %s round=%u n=%u ns=%.3f\n", probe_names[k], r, n,
			       (double)(t1 - t0) / n / (k == PK_SPIN ? PROBE_SPIN_MULT : 1));
		}
		fflush(stdout);
	}
	munmap(map, 4096);
	close(memfd);
	return 0;
}
