/* libFuzzer target: bzimage_parse() and boot_load() on hostile bzImage bytes, raw or patched from a valid template. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "boot/boot.h"
#include "boot/layout.h"
#include "vmm/guest_mem.h"

#define RAM_SIZE (32ULL << 20)
#define SETUP_SECTS 4
#define KSIZE 0x1000
#define TEMPLATE_LEN ((SETUP_SECTS + 1) * 512 + KSIZE)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *ram;
static struct guest_mem gm;
static uint8_t template[TEMPLATE_LEN];

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void setup(void)
{
	ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		abort();
	gm_layout(&gm, ram, RAM_SIZE);

	/* A valid 2.15 bzImage: the fuzzer reaches the loader from here. */
	template[0x1f1] = SETUP_SECTS;
	put32(template + 0x1f4, KSIZE / 16);
	template[0x1fe] = 0x55;
	template[0x1ff] = 0xaa;
	template[0x200] = 0xeb;
	template[0x201] = 0x6a;
	memcpy(template + 0x202, "HdrS", 4);
	template[0x206] = 0x0f;
	template[0x207] = 0x02;
	put32(template + 0x230, 0x200000);
	template[0x234] = 1;
	template[0x236] = 0x03;
	put32(template + 0x238, 2047);
	put32(template + 0x258, 0x1000000);
	put32(template + 0x260, 0x400000);
	for (size_t i = 0; i < KSIZE; i++)
		template[(SETUP_SECTS + 1) * 512 + i] = (uint8_t)i;
}

static void check(const uint8_t *img, size_t len)
{
	struct bzimage_info bi;
	struct boot_err err;
	struct boot_entry e;
	struct boot_load_args a = {
		.gm = &gm, .kernel = img, .kernel_len = len, .cmdline = "console=ttyS0 quiet",
		.nr_vcpus = 1 + (unsigned int)(len % 4),
	};

	if (bzimage_parse(img, len, &bi, &err) == 0) {
		/* What the loader relies on. */
		if (bi.kernel_offset + bi.kernel_size > len || bi.kernel_size == 0 ||
		    bi.hdr_end > 0x290 || bi.hdr_end > bi.setup_size || bi.setup_size > len ||
		    bi.protocol < BZIMAGE_MIN_PROTOCOL || !(bi.xloadflags & BZIMAGE_XLF_KERNEL_64))
			abort();
	} else if (err.msg[0] == 0) {
		abort(); /* every failure says why */
	}

	err.msg[0] = 0;
	if (boot_load(&a, &e, &err) == 0) {
		if (e.kind != BOOT_KIND_BZIMAGE || e.entry != e.load_addr + 0x200 ||
		    e.load_addr < BOOT_KERNEL_MIN || e.load_addr + e.load_size > RAM_SIZE)
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
	/* An exact-size copy, so that ASan sees any read past its end. */
	exact = malloc(len ? len : 1);
	if (!exact)
		abort();
	memcpy(exact, img, len);
	check(exact, len);
	free(exact);
	return 0;
}
