/* libFuzzer target: elf_pvh_parse() and boot_load() on hostile ELF bytes, raw or patched from a valid template. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "boot/boot.h"
#include "boot/layout.h"
#include "vmm/guest_mem.h"

#define RAM_SIZE (32ULL << 20)
#define TEMPLATE_LEN 0x800
#define PHDRS 0x40
#define NOTES 0x200
#define SEG 0x400
#define SEG_PADDR 0x1000000ULL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *ram;
static struct guest_mem gm;
static uint8_t template[TEMPLATE_LEN];

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void phdr(uint8_t *p, uint32_t type, uint64_t off, uint64_t paddr, uint64_t filesz,
		 uint64_t memsz, uint64_t align)
{
	put32(p, type);
	put64(p + 8, off);
	put64(p + 24, paddr);
	put64(p + 32, filesz);
	put64(p + 40, memsz);
	put64(p + 48, align);
}

static void setup(void)
{
	uint8_t *n = template + NOTES;

	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		abort();
	gm_layout(&gm, ram, RAM_SIZE);

	/* A valid vmlinux: two PT_LOADs, a PT_NOTE with a GNU note and the PVH note. */
	memcpy(template, "\x7f" "ELF", 4);
	template[4] = 2;
	template[5] = 1;
	template[6] = 1;
	put16(template + 0x10, 2);
	put16(template + 0x12, 62);
	put64(template + 0x20, PHDRS);
	put16(template + 0x36, 56);
	put16(template + 0x38, 3);
	phdr(template + PHDRS, 1, SEG, SEG_PADDR, 0x200, 0x4000, 0x1000);
	phdr(template + PHDRS + 56, 4, NOTES, 0, 32 + 24, 32 + 24, 4);
	phdr(template + PHDRS + 112, 1, SEG + 0x200, SEG_PADDR + 0x10000, 0x100, 0x100, 0x1000);
	put32(n, 4);
	put32(n + 4, 16);
	put32(n + 8, 3);
	memcpy(n + 12, "GNU", 4);
	n += 32;
	put32(n, 4);
	put32(n + 4, 8);
	put32(n + 8, 18);
	memcpy(n + 12, "Xen", 4);
	put64(n + 16, SEG_PADDR + 0x10);
	for (size_t i = SEG; i < TEMPLATE_LEN; i++)
		template[i] = (uint8_t)i;
}

static void check(const uint8_t *img, size_t len)
{
	struct elf_pvh_info info;
	struct boot_err err;
	struct boot_entry e;
	struct boot_load_args a = {
		.gm = &gm, .kernel = img, .kernel_len = len, .cmdline = "console=ttyS0",
		.nr_vcpus = 1 + (unsigned int)(len % 8),
	};

	if (elf_pvh_parse(img, len, &info, &err) == 0) {
		int inside = 0;

		if (info.nr_loads == 0 || info.nr_loads > ELF_PVH_MAX_LOADS)
			abort();
		for (unsigned int i = 0; i < info.nr_loads; i++) {
			const struct elf_pvh_load *l = &info.loads[i];

			if (l->offset > len || l->filesz > len - l->offset || l->filesz > l->memsz ||
			    l->paddr + l->memsz < l->paddr || l->paddr < info.lowest ||
			    l->paddr + l->memsz > info.highest)
				abort();
			if (info.entry >= l->paddr && info.entry - l->paddr < l->filesz)
				inside = 1;
		}
		if (!inside)
			abort();
	} else if (err.msg[0] == 0 || info.nr_loads != 0) {
		abort();
	}

	err.msg[0] = 0;
	if (boot_load(&a, &e, &err) == 0) {
		if (e.kind != BOOT_KIND_PVH && e.kind != BOOT_KIND_BZIMAGE)
			abort();
		if (e.kind == BOOT_KIND_PVH &&
		    (e.load_addr < BOOT_KERNEL_MIN || e.load_addr + e.load_size > RAM_SIZE ||
		     e.entry < e.load_addr || e.entry >= e.load_addr + e.load_size))
			abort();
	} else if (err.msg[0] == 0 || e.kind != BOOT_KIND_NONE) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t img[TEMPLATE_LEN];
	size_t len = TEMPLATE_LEN;
	uint8_t *exact;

	if (!ram)
		setup();
	if (size == 0 || !(data[0] & 1)) {
		check(data, size);
		return 0;
	}
	/* Template mode: byte 0 bit 1 asks for a cut at le16(bytes 1..2); then
	 * (le16 offset, value) triples patch the image. */
	memcpy(img, template, sizeof(img));
	if ((data[0] & 2) && size >= 3)
		len = (size_t)(data[1] | data[2] << 8) % (TEMPLATE_LEN + 1);
	for (size_t i = 3; i + 3 <= size; i += 3)
		img[(size_t)(data[i] | data[i + 1] << 8) % TEMPLATE_LEN] = data[i + 2];
	exact = malloc(len ? len : 1);
	if (!exact)
		abort();
	memcpy(exact, img, len);
	check(exact, len);
	free(exact);
	return 0;
}
