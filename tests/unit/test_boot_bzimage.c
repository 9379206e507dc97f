/* Unit tests for the bzImage parser and loader, on synthetic images and a fake guest memory. */
#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "boot/boot.h"
#include "boot/layout.h"
#include "vmm/guest_mem.h"

#define MIB (1024ULL * 1024)

/* ---- helpers ---- */

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

struct fake_vm {
	struct guest_mem gm;
	uint8_t *host;
	uint64_t size;
};

/* Guest RAM of `size` bytes, lazily backed (MAP_NORESERVE), zero-filled. */
static void fake_vm_init(struct fake_vm *vm, uint64_t size)
{
	vm->host = mmap(NULL, size, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	ck_assert_ptr_ne(vm->host, MAP_FAILED);
	vm->size = size;
	gm_layout(&vm->gm, vm->host, size);
}

static void fake_vm_fini(struct fake_vm *vm)
{
	munmap(vm->host, vm->size);
}

static uint8_t *gpa(struct fake_vm *vm, uint64_t addr, uint64_t len)
{
	uint8_t *p = gm_ptr(&vm->gm, addr, len);

	ck_assert_ptr_nonnull(p);
	return p;
}

struct bz_opts {
	uint8_t setup_sects;
	uint16_t version;
	uint16_t xloadflags;
	uint32_t ksize; /* multiple of 16 */
	uint64_t pref;
	uint32_t init_size;
	uint32_t align;
	uint8_t reloc;
	uint32_t cmdline_size;
	uint8_t jump;
};

static struct bz_opts bz_default(void)
{
	return (struct bz_opts){
		.setup_sects = 3, .version = 0x020f, .xloadflags = 0x3, .ksize = 0x4000,
		.pref = 0x1000000, .init_size = 0x200000, .align = 0x200000, .reloc = 1,
		.cmdline_size = 2047, .jump = 0x6a,
	};
}

static uint8_t kbyte(size_t i) { return (uint8_t)(i * 7 + 3); }

/* A bzImage with the header fields from `o` and a patterned protected-mode part. */
static uint8_t *bz_make(const struct bz_opts *o, size_t *len)
{
	unsigned int sects = o->setup_sects ? o->setup_sects : 4;
	size_t setup = (sects + 1) * 512;
	uint8_t *b;

	*len = setup + o->ksize;
	b = calloc(1, *len);
	ck_assert_ptr_nonnull(b);
	b[0x1f1] = o->setup_sects;
	put32(b + 0x1f4, o->ksize / 16);
	put16(b + 0x1fe, 0xaa55);
	b[0x200] = 0xeb;
	b[0x201] = o->jump;
	memcpy(b + 0x202, "HdrS", 4);
	put16(b + 0x206, o->version);
	b[0x211] = 0x01; /* LOADED_HIGH */
	put32(b + 0x214, 0x100000);
	put32(b + 0x230, o->align);
	b[0x234] = o->reloc;
	put16(b + 0x236, o->xloadflags);
	put32(b + 0x238, o->cmdline_size);
	put64(b + 0x258, o->pref);
	put32(b + 0x260, o->init_size);
	b[0x26b] = 0x5a; /* inside the header (ends at 0x26c): must be copied */
	b[0x26c] = 0xa5; /* past the header's end: must not be */
	for (size_t i = 0; i < o->ksize; i++)
		b[setup + i] = kbyte(i);
	return b;
}

/* Parse an exact-size copy of b[len], so that ASan catches any read past len. */
static int parse(const uint8_t *b, size_t len, struct bzimage_info *bi, struct boot_err *err)
{
	uint8_t *copy = malloc(len ? len : 1);
	int ret;

	ck_assert_ptr_nonnull(copy);
	if (b)
		memcpy(copy, b, len);
	memset(err, 0, sizeof(*err));
	ret = bzimage_parse(b ? copy : NULL, len, bi, err);
	free(copy);
	return ret;
}

static int load(struct fake_vm *vm, const uint8_t *k, size_t len, const char *cmdline,
		unsigned int nr_vcpus, struct boot_entry *e, struct boot_err *err)
{
	struct boot_load_args a = {
		.gm = &vm->gm, .kernel = k, .kernel_len = len, .cmdline = cmdline,
		.nr_vcpus = nr_vcpus,
	};

	memset(err, 0, sizeof(*err));
	return boot_load(&a, e, err);
}

/* ---- parser ---- */

START_TEST(parse_valid)
{
	struct bz_opts o = bz_default();
	struct bzimage_info bi;
	struct boot_err err;
	size_t len;
	uint8_t *b = bz_make(&o, &len);

	ck_assert_int_eq(parse(b, len, &bi, &err), 0);
	ck_assert_uint_eq(bi.protocol, 0x020f);
	ck_assert_uint_eq(bi.setup_sects, 3);
	ck_assert_uint_eq(bi.setup_size, 4 * 512);
	ck_assert_uint_eq(bi.kernel_offset, 4 * 512);
	ck_assert_uint_eq(bi.kernel_size, 0x4000);
	ck_assert_uint_eq(bi.pref_address, 0x1000000);
	ck_assert_uint_eq(bi.init_size, 0x200000);
	ck_assert_uint_eq(bi.kernel_alignment, 0x200000);
	ck_assert(bi.relocatable);
	ck_assert_uint_eq(bi.cmdline_size, 2047);
	ck_assert_uint_eq(bi.hdr_end, 0x26c);
	ck_assert_uint_eq(bi.xloadflags, 0x3);
	free(b);
}
END_TEST

START_TEST(parse_setup_sects_zero_means_four)
{
	struct bz_opts o = bz_default();
	struct bzimage_info bi;
	struct boot_err err;
	size_t len;
	uint8_t *b;

	o.setup_sects = 0;
	b = bz_make(&o, &len);
	ck_assert_uint_eq(len, 5 * 512 + 0x4000);
	ck_assert_int_eq(parse(b, len, &bi, &err), 0);
	ck_assert_uint_eq(bi.setup_sects, 4);
	ck_assert_uint_eq(bi.kernel_offset, 5 * 512);
	ck_assert_uint_eq(bi.kernel_size, 0x4000);
	free(b);
}
END_TEST

START_TEST(parse_truncated)
{
	struct bz_opts o = bz_default();
	struct bzimage_info bi;
	struct boot_err err;
	size_t len;
	uint8_t *b = bz_make(&o, &len);
	const size_t cuts[] = { 0, 1, 0x1f1, 0x205, 0x206, 0x207, 0x208, 0x300, 4 * 512 - 1, 4 * 512,
				4 * 512 + 1, len - 16, len - 1 };

	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		ck_assert_int_eq(parse(b, cuts[i], &bi, &err), -ENOEXEC);
		ck_assert_msg(strstr(err.msg, "truncated") != NULL, "cut %zu: %s", cuts[i], err.msg);
		ck_assert_uint_eq(bi.kernel_size, 0); /* out is cleared on failure */
	}
	/* The truncated-kernel message names both sizes. */
	ck_assert_int_eq(parse(b, len - 1, &bi, &err), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err.msg, "16384 bytes"));
	ck_assert_int_eq(parse(NULL, 0, &bi, &err), -ENOEXEC);
	free(b);
}
END_TEST

START_TEST(parse_wrong_magic)
{
	struct bz_opts o = bz_default();
	struct bzimage_info bi;
	struct boot_err err;
	size_t len;
	uint8_t *b = bz_make(&o, &len);

	b[0x205] = 'T';
	ck_assert_int_eq(parse(b, len, &bi, &err), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err.msg, "HdrS"));
	free(b);
}
END_TEST

START_TEST(parse_boot_flag_missing)
{
	struct bz_opts o = bz_default();
	struct bzimage_info bi;
	struct boot_err err;
	size_t len;
	uint8_t *b = bz_make(&o, &len);

	put16(b + 0x1fe, 0);
	ck_assert_int_eq(parse(b, len, &bi, &err), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err.msg, "boot flag"));
	ck_assert_ptr_nonnull(strstr(err.msg, "0xaa55"));
	free(b);
}
END_TEST

START_TEST(parse_protocol_too_old)
{
	struct bz_opts o = bz_default();
	struct bzimage_info bi;
	struct boot_err err;
	size_t len;
	uint8_t *b;

	o.version = 0x0203;
	b = bz_make(&o, &len);
	ck_assert_int_eq(parse(b, len, &bi, &err), -ENOEXEC);
	ck_assert_str_eq(err.msg, "bzImage boot protocol 2.03 is too old (need 2.12 with 64-bit entry)");
	free(b);

	o.version = 0x020b;
	b = bz_make(&o, &len);
	ck_assert_int_eq(parse(b, len, &bi, &err), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err.msg, "2.11 is too old"));
	free(b);

	/* 2.12 is enough only with a 64-bit entry. */
	o.version = 0x020c;
	o.xloadflags = 0x2;
	b = bz_make(&o, &len);
	ck_assert_int_eq(parse(b, len, &bi, &err), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err.msg, "XLF_KERNEL_64"));
	ck_assert_ptr_nonnull(strstr(err.msg, "too old"));
	free(b);

	o.xloadflags = 0x1;
	b = bz_make(&o, &len);
	ck_assert_int_eq(parse(b, len, &bi, &err), 0);
	free(b);
}
END_TEST

START_TEST(parse_bad_header_extent)
{
	struct bz_opts o = bz_default();
	struct bzimage_info bi;
	struct boot_err err;
	size_t len;
	uint8_t *b;

	o.jump = 0x20; /* header ends at 0x222: before the 2.12 fields */
	b = bz_make(&o, &len);
	ck_assert_int_eq(parse(b, len, &bi, &err), -ENOEXEC);
	free(b);
	o.jump = 0xfe; /* backwards jump / past boot_params' header room */
	b = bz_make(&o, &len);
	ck_assert_int_eq(parse(b, len, &bi, &err), -ENOEXEC);
	b[0x201] = 0x6a;
	b[0x200] = 0xe9; /* not a short jump */
	ck_assert_int_eq(parse(b, len, &bi, &err), -ENOEXEC);
	b[0x200] = 0xeb;
	ck_assert_int_eq(parse(b, len, &bi, &err), 0);
	free(b);
}
END_TEST

START_TEST(parse_empty_kernel_and_bad_alignment)
{
	struct bz_opts o = bz_default();
	struct bzimage_info bi;
	struct boot_err err;
	size_t len;
	uint8_t *b = bz_make(&o, &len);

	put32(b + 0x1f4, 0);
	ck_assert_int_eq(parse(b, len, &bi, &err), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err.msg, "syssize 0"));
	put32(b + 0x1f4, 0x4000 / 16);
	put32(b + 0x230, 0x300000);
	ck_assert_int_eq(parse(b, len, &bi, &err), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err.msg, "power of two"));
	/* syssize so large that offset + size would not fit the file */
	put32(b + 0x230, 0x200000);
	put32(b + 0x1f4, 0xffffffff);
	ck_assert_int_eq(parse(b, len, &bi, &err), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err.msg, "truncated"));
	free(b);
}
END_TEST

/* ---- loader ---- */

START_TEST(load_valid)
{
	struct bz_opts o = bz_default();
	struct fake_vm vm;
	struct boot_entry e;
	struct boot_err err;
	size_t len;
	uint8_t *b = bz_make(&o, &len), *bp, *k, *pd, *pdpt, *pml4;

	fake_vm_init(&vm, 64 * MIB);
	ck_assert_int_eq(load(&vm, b, len, "console=ttyS0 quiet", 2, &e, &err), 0);
	ck_assert_int_eq(e.kind, BOOT_KIND_BZIMAGE);
	ck_assert_str_eq(boot_kind_name(e.kind), "bzImage");
	ck_assert_uint_eq(e.load_addr, 0x1000000);
	ck_assert_uint_eq(e.entry, 0x1000200);
	ck_assert_uint_eq(e.load_size, 0x200000);
	ck_assert_uint_eq(e.boot_info, BOOT_PARAMS_ADDR);
	ck_assert_uint_eq(e.protocol, 0x020f);
	ck_assert_uint_eq(e.cmdline_addr, BOOT_CMDLINE_ADDR);
	ck_assert_uint_eq(e.cmdline_len, strlen("console=ttyS0 quiet"));

	/* The protected-mode part, byte for byte, and nothing after it. */
	k = gpa(&vm, 0x1000000, o.ksize + 1);
	for (size_t i = 0; i < o.ksize; i++)
		ck_assert_uint_eq(k[i], kbyte(i));
	ck_assert_uint_eq(k[o.ksize], 0);

	ck_assert_str_eq((char *)gpa(&vm, BOOT_CMDLINE_ADDR, 32), "console=ttyS0 quiet");

	bp = gpa(&vm, BOOT_PARAMS_ADDR, BOOT_PARAMS_SIZE);
	ck_assert_uint_eq(get32(bp + 0x202), get32(b + 0x202));        /* header copied */
	ck_assert_uint_eq(get16(bp + 0x206), 0x020f);
	ck_assert_uint_eq(get64(bp + 0x258), 0x1000000);
	ck_assert_uint_eq(bp[0x26b], 0x5a);                             /* last header byte */
	ck_assert_uint_eq(bp[0x26c], 0);                                /* past the header */
	ck_assert_uint_eq(bp[0x210], 0xff);                             /* type_of_loader */
	ck_assert_uint_eq(get32(bp + 0x228), BOOT_CMDLINE_ADDR);        /* cmd_line_ptr */
	ck_assert_uint_eq(get32(bp + 0x0c8), 0);                        /* ext_cmd_line_ptr */
	ck_assert_uint_eq(get16(bp + 0x1fa), 0xffff);                   /* vid_mode */
	ck_assert_uint_eq(get32(bp + 0x218), 0);                        /* no initrd */
	ck_assert_uint_eq(bp[0x1e8], 3);                                /* e820_entries */
	ck_assert_uint_eq(get64(bp + 0x2d0), 0);
	ck_assert_uint_eq(get64(bp + 0x2d8), 0x9fc00);
	ck_assert_uint_eq(get32(bp + 0x2e0), 1);
	ck_assert_uint_eq(get64(bp + 0x2e4), 0x9fc00);
	ck_assert_uint_eq(get64(bp + 0x2ec), 0x100000 - 0x9fc00);
	ck_assert_uint_eq(get32(bp + 0x2f4), 2);
	ck_assert_uint_eq(get64(bp + 0x2f8), 0x100000);
	ck_assert_uint_eq(get64(bp + 0x300), 64 * MIB - 0x100000);
	ck_assert_uint_eq(get32(bp + 0x308), 1);
	ck_assert_uint_eq(get32(bp + 0x30c), 0); /* no 4th entry */

	/* Page tables: PML4[0] -> PDPT, PDPT[0] -> PD, PD maps 1 GiB in 2 MiB pages. */
	pml4 = gpa(&vm, BOOT_PML4_ADDR, 4096);
	pdpt = gpa(&vm, BOOT_PDPT_ADDR, 4096);
	pd = gpa(&vm, BOOT_PD_ADDR, 4096);
	ck_assert_uint_eq(get64(pml4), BOOT_PDPT_ADDR | 3);
	ck_assert_uint_eq(get64(pml4 + 8), 0);
	ck_assert_uint_eq(get64(pdpt), BOOT_PD_ADDR | 3);
	ck_assert_uint_eq(get64(pdpt + 8), 0);
	for (unsigned int i = 0; i < 512; i++)
		ck_assert_uint_eq(get64(pd + 8 * i), (uint64_t)i * 2 * MIB | 0x83);

	/* The MP table went in too (details in test_boot_tables). */
	ck_assert_int_eq(memcmp(gpa(&vm, 0x9fc00, 4), "_MP_", 4), 0);
	fake_vm_fini(&vm);
	free(b);
}
END_TEST

START_TEST(load_not_relocatable_goes_to_1mib)
{
	struct bz_opts o = bz_default();
	struct fake_vm vm;
	struct boot_entry e;
	struct boot_err err;
	size_t len;
	uint8_t *b;

	/* Loaded at 1 MiB, but it moves itself to pref_address (16 MiB) and
	 * needs init_size from there: RAM must reach 0x1200000. */
	o.reloc = 0;
	b = bz_make(&o, &len);
	fake_vm_init(&vm, 0x1200000);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), 0);
	ck_assert_uint_eq(e.load_addr, 0x100000);
	ck_assert_uint_eq(e.entry, 0x100200);
	ck_assert_uint_eq(e.load_size, 0x1200000 - 0x100000);
	ck_assert_uint_eq(gpa(&vm, 0x100000, 1)[0], kbyte(0));
	fake_vm_fini(&vm);
	fake_vm_init(&vm, 0x1200000 - 4096);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), -ENOMEM);
	ck_assert_str_eq(err.msg, "kernel needs 17 MiB at 0x100000 but guest RAM ends at 0x11ff000");
	fake_vm_fini(&vm);
	free(b);

	/* No pref_address: it runs where it is loaded. */
	o.pref = 0;
	b = bz_make(&o, &len);
	fake_vm_init(&vm, 0x100000 + 0x200000);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), 0);
	ck_assert_uint_eq(e.load_size, 0x200000);
	fake_vm_fini(&vm);
	free(b);

	/* A pref_address below 1 MiB would run over the boot structures. */
	o.pref = 0x10000;
	b = bz_make(&o, &len);
	fake_vm_init(&vm, 64 * MIB);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err.msg, "below 1 MiB"));
	fake_vm_fini(&vm);
	free(b);
}
END_TEST

START_TEST(load_kernel_larger_than_ram)
{
	struct bz_opts o = bz_default();
	struct fake_vm vm;
	struct boot_entry e;
	struct boot_err err;
	size_t len;
	uint8_t *b;

	o.init_size = 40 * MIB;
	b = bz_make(&o, &len);
	fake_vm_init(&vm, 8 * MIB);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), -ENOMEM);
	ck_assert_str_eq(err.msg, "kernel needs 40 MiB at 0x1000000 but guest RAM ends at 0x800000");
	ck_assert_int_eq(e.kind, BOOT_KIND_NONE);
	/* Nothing was written: the checks come before the copy. */
	ck_assert_uint_eq(gpa(&vm, BOOT_PARAMS_ADDR + 0x202, 1)[0], 0);
	fake_vm_fini(&vm);

	/* Exactly at the end of RAM fits; one byte less of RAM does not. */
	fake_vm_init(&vm, 0x1000000 + 40 * MIB);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), 0);
	fake_vm_fini(&vm);
	fake_vm_init(&vm, 0x1000000 + 40 * MIB - 4096);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), -ENOMEM);
	fake_vm_fini(&vm);
	free(b);

	/* init_size smaller than the image: the image size counts. */
	o = bz_default();
	o.init_size = 0x1000;
	o.ksize = 0x10000;
	b = bz_make(&o, &len);
	fake_vm_init(&vm, 0x1000000 + 0x8000);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), -ENOMEM);
	fake_vm_fini(&vm);
	fake_vm_init(&vm, 0x1000000 + 0x10000);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), 0);
	ck_assert_uint_eq(e.load_size, 0x10000);
	fake_vm_fini(&vm);
	free(b);
}
END_TEST

START_TEST(load_bad_addresses)
{
	struct bz_opts o = bz_default();
	struct fake_vm vm;
	struct boot_entry e;
	struct boot_err err;
	size_t len;
	uint8_t *b;

	fake_vm_init(&vm, 2048 * MIB);
	o.pref = 0x8000; /* below 1 MiB */
	o.align = 0x1000;
	b = bz_make(&o, &len);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err.msg, "below 1 MiB"));
	free(b);

	o.pref = 0x3fe00000; /* fits RAM but not the 1 GiB identity map */
	o.align = 0x200000;
	o.init_size = 4 * MIB;
	b = bz_make(&o, &len);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), -ENOMEM);
	ck_assert_ptr_nonnull(strstr(err.msg, "1 GiB"));
	free(b);

	o.pref = UINT64_MAX - 0x1000; /* wraps when aligned */
	b = bz_make(&o, &len);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), -ENOEXEC);
	free(b);

	o.pref = UINT64_MAX - 0x200000 + 1; /* aligned, but load + init_size wraps */
	b = bz_make(&o, &len);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), -ENOMEM);
	free(b);

	o.pref = 0x1100000; /* not aligned: rounded up to 2 MiB */
	b = bz_make(&o, &len);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), 0);
	ck_assert_uint_eq(e.load_addr, 0x1200000);
	free(b);
	fake_vm_fini(&vm);
}
END_TEST

START_TEST(load_cmdline_limits)
{
	struct bz_opts o = bz_default();
	struct fake_vm vm;
	struct boot_entry e;
	struct boot_err err;
	size_t len;
	uint8_t *b;
	char line[300];

	o.cmdline_size = 255;
	b = bz_make(&o, &len);
	fake_vm_init(&vm, 64 * MIB);
	memset(line, 'x', 255);
	line[255] = 0;
	ck_assert_int_eq(load(&vm, b, len, line, 1, &e, &err), 0);
	ck_assert_uint_eq(e.cmdline_len, 255);
	line[255] = 'y';
	line[256] = 0;
	ck_assert_int_eq(load(&vm, b, len, line, 1, &e, &err), -E2BIG);
	ck_assert_ptr_nonnull(strstr(err.msg, "256 bytes"));
	ck_assert_ptr_nonnull(strstr(err.msg, "cmdline_size"));
	/* NULL is the empty command line. */
	ck_assert_int_eq(load(&vm, b, len, NULL, 1, &e, &err), 0);
	ck_assert_uint_eq(e.cmdline_len, 0);
	ck_assert_uint_eq(gpa(&vm, BOOT_CMDLINE_ADDR, 1)[0], 0);
	fake_vm_fini(&vm);
	free(b);
}
END_TEST

START_TEST(load_rejects_non_kernels_and_bad_args)
{
	struct fake_vm vm;
	struct boot_entry e;
	struct boot_err err;
	struct bz_opts o = bz_default();
	uint8_t junk[4096];
	size_t len;
	uint8_t *b = bz_make(&o, &len);
	struct boot_load_args a = { 0 };

	fake_vm_init(&vm, 64 * MIB);
	memset(junk, 0x90, sizeof(junk));
	ck_assert_int_eq(load(&vm, junk, sizeof(junk), "", 1, &e, &err), -ENOEXEC);
	ck_assert_str_eq(err.msg,
			 "not a Linux kernel (neither a bzImage nor an ELF vmlinux with a PVH note)");
	ck_assert_int_eq(load(&vm, junk, 3, "", 1, &e, &err), -ENOEXEC);
	ck_assert_int_eq(load(&vm, NULL, 0, "", 1, &e, &err), -ENOEXEC);
	ck_assert_int_eq(load(&vm, b, len, "", 0, &e, &err), -EINVAL);
	ck_assert_int_eq(load(&vm, b, len, "", BOOT_MAX_VCPUS + 1, &e, &err), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "vCPUs"));
	ck_assert_int_eq(load(&vm, b, len, "", BOOT_MAX_VCPUS, &e, &err), 0);
	ck_assert_int_eq(boot_load(&a, &e, NULL), -EINVAL);
	ck_assert_int_eq(boot_load(NULL, &e, NULL), -EINVAL);
	fake_vm_fini(&vm);

	/* RAM of 1 MiB or less cannot hold a kernel. */
	fake_vm_init(&vm, 1 * MIB);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), -ENOMEM);
	ck_assert_ptr_nonnull(strstr(err.msg, "1 MiB"));
	fake_vm_fini(&vm);
	free(b);
}
END_TEST

/* GDT descriptor -> the fields KVM's struct kvm_segment holds. */
static void check_desc_matches(const uint8_t *gdt, const struct kvm_segment *s)
{
	uint64_t d = get64(gdt + s->selector);
	uint64_t limit = (d & 0xffff) | ((d >> 32) & 0xf0000);
	uint64_t base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000);
	unsigned int g = (d >> 55) & 1;

	if (g)
		limit = (limit << 12) | 0xfff;
	ck_assert_uint_eq(limit, s->limit);
	ck_assert_uint_eq(base, s->base);
	ck_assert_uint_eq((d >> 40) & 0xf, s->type);
	ck_assert_uint_eq((d >> 44) & 1, s->s);
	ck_assert_uint_eq((d >> 45) & 3, s->dpl);
	ck_assert_uint_eq((d >> 47) & 1, s->present);
	ck_assert_uint_eq((d >> 53) & 1, s->l);
	ck_assert_uint_eq((d >> 54) & 1, s->db);
	ck_assert_uint_eq(g, s->g);
}

START_TEST(apply_regs_and_sregs)
{
	struct bz_opts o = bz_default();
	struct fake_vm vm;
	struct boot_entry e;
	struct boot_err err;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	size_t len;
	uint8_t *b = bz_make(&o, &len), *gdt;

	fake_vm_init(&vm, 64 * MIB);
	ck_assert_int_eq(load(&vm, b, len, "", 1, &e, &err), 0);
	memset(&regs, 0x55, sizeof(regs));
	memset(&sregs, 0, sizeof(sregs));
	sregs.cr0 = 0x60000010; /* as at reset: CD | NW | ET */
	sregs.apic_base = 0xfee00900;
	sregs.ldt.type = 2;
	boot_apply_regs(&e, &regs);
	boot_apply_sregs(&e, &sregs);

	ck_assert_uint_eq(regs.rip, 0x1000200);
	ck_assert_uint_eq(regs.rsi, BOOT_PARAMS_ADDR);
	ck_assert_uint_eq(regs.rflags, 0x2);
	ck_assert_uint_eq(regs.rsp, BOOT_STACK_TOP);
	ck_assert_uint_eq(regs.rax | regs.rbx | regs.rcx | regs.rdx | regs.rdi | regs.rbp |
			  regs.r8 | regs.r15, 0);

	ck_assert_uint_eq(sregs.cr0, 0x80000011);
	ck_assert_uint_eq(sregs.cr3, BOOT_PML4_ADDR);
	ck_assert_uint_eq(sregs.cr4, 0x20);
	ck_assert_uint_eq(sregs.efer, 0x500);
	ck_assert_uint_eq(sregs.cs.selector, 0x10);
	ck_assert_uint_eq(sregs.cs.l, 1);
	ck_assert_uint_eq(sregs.cs.db, 0);
	ck_assert_uint_eq(sregs.cs.present, 1);
	ck_assert_uint_eq(sregs.cs.s, 1);
	ck_assert_uint_eq(sregs.cs.type & 0x8, 0x8); /* code */
	ck_assert_uint_eq(sregs.ds.selector, 0x18);
	ck_assert_uint_eq(sregs.ss.selector, 0x18);
	ck_assert_uint_eq(sregs.es.selector, 0x18);
	ck_assert_uint_eq(sregs.ds.base, 0);
	ck_assert_uint_eq(sregs.ds.limit, 0xffffffff);
	ck_assert_uint_eq(sregs.ds.type & 0x8, 0); /* data */
	ck_assert_uint_eq(sregs.ds.type & 0x2, 0x2); /* writable */
	ck_assert_uint_eq(sregs.gdt.base, BOOT_GDT_ADDR);
	ck_assert_uint_eq(sregs.gdt.limit, BOOT_GDT_SIZE - 1);
	ck_assert_uint_eq(sregs.tr.s, 0);
	ck_assert_uint_eq(sregs.tr.type, 11);
	ck_assert_uint_eq(sregs.apic_base, 0xfee00900); /* untouched */
	ck_assert_uint_eq(sregs.ldt.type, 2);           /* untouched */

	/* The GDT in guest memory says what sregs say. */
	gdt = gpa(&vm, BOOT_GDT_ADDR, BOOT_GDT_SIZE);
	ck_assert_uint_eq(get64(gdt), 0);
	check_desc_matches(gdt, &sregs.cs);
	check_desc_matches(gdt, &sregs.ds);
	check_desc_matches(gdt, &sregs.tr);
	ck_assert_uint_eq(get64(gdt + 0x10), 0x00af9b000000ffffULL);
	ck_assert_uint_eq(get64(gdt + 0x18), 0x00cf93000000ffffULL);

	/* A failed load's entry changes nothing. */
	memset(&e, 0, sizeof(e));
	regs.rip = 1234;
	boot_apply_regs(&e, &regs);
	boot_apply_sregs(&e, &sregs);
	ck_assert_uint_eq(regs.rip, 1234);
	ck_assert_uint_eq(sregs.cr0, 0x80000011);
	fake_vm_fini(&vm);
	free(b);
}
END_TEST

static Suite *bz_suite(void)
{
	Suite *s = suite_create("boot_bzimage");
	TCase *tp = tcase_create("parse"), *tl = tcase_create("load");

	tcase_add_test(tp, parse_valid);
	tcase_add_test(tp, parse_setup_sects_zero_means_four);
	tcase_add_test(tp, parse_truncated);
	tcase_add_test(tp, parse_wrong_magic);
	tcase_add_test(tp, parse_boot_flag_missing);
	tcase_add_test(tp, parse_protocol_too_old);
	tcase_add_test(tp, parse_bad_header_extent);
	tcase_add_test(tp, parse_empty_kernel_and_bad_alignment);
	suite_add_tcase(s, tp);
	tcase_add_test(tl, load_valid);
	tcase_add_test(tl, load_not_relocatable_goes_to_1mib);
	tcase_add_test(tl, load_kernel_larger_than_ram);
	tcase_add_test(tl, load_bad_addresses);
	tcase_add_test(tl, load_cmdline_limits);
	tcase_add_test(tl, load_rejects_non_kernels_and_bad_args);
	tcase_add_test(tl, apply_regs_and_sregs);
	suite_add_tcase(s, tl);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(bz_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
