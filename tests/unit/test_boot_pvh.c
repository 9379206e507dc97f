/* Unit tests for the ELF/PVH parser and loader, on synthetic ELF files and a fake guest memory. */
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

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get64(const uint8_t *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

struct fake_vm {
	struct guest_mem gm;
	uint8_t *host;
	uint64_t size;
};

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

/*
 * The synthetic vmlinux:
 *   0x0000 ELF header          0x0040 program headers (room for 34)
 *   0x0800 PT_NOTE contents: a GNU build-id note, a Xen note of another type,
 *          then the PVH entry note
 *   0x1000 segment 0 file bytes (0x800), paddr 0x1000000, memsz 0x3000 (bss)
 *   0x1800 segment 1 file bytes (0x100), paddr 0x1400000
 */
#define F_PHDRS 0x40
#define F_NOTES 0x800
#define F_SEG0 0x1000
#define F_SEG1 0x1800
#define F_LEN 0x1900
#define SEG0_PADDR 0x1000000ULL
#define SEG1_PADDR 0x1400000ULL
#define ENTRY 0x1000100U

struct elf_opts {
	unsigned int note_align; /* 4 or 8 */
	uint32_t pvh_descsz;     /* 4 or 8 (or bad) */
	uint64_t pvh_desc;
	uint32_t pvh_type;
};

static struct elf_opts elf_default(void)
{
	return (struct elf_opts){ .note_align = 4, .pvh_descsz = 8, .pvh_desc = ENTRY,
				  .pvh_type = 18 };
}

static uint8_t *ph(uint8_t *b, unsigned int i)
{
	return b + F_PHDRS + 56 * i;
}

static void set_ph(uint8_t *b, unsigned int i, uint32_t type, uint64_t off, uint64_t paddr,
		   uint64_t filesz, uint64_t memsz, uint64_t align)
{
	uint8_t *p = ph(b, i);

	put32(p, type);
	put32(p + 4, 5);
	put64(p + 8, off);
	put64(p + 16, 0xffffffff80000000ULL + paddr); /* vaddr: the kernel map, unused */
	put64(p + 24, paddr);
	put64(p + 32, filesz);
	put64(p + 40, memsz);
	put64(p + 48, align);
}

static size_t put_note(uint8_t *p, unsigned int align, const char *name, uint32_t type,
		       const uint8_t *desc, uint32_t descsz)
{
	uint32_t namesz = (uint32_t)strlen(name) + 1;
	size_t npad = (namesz + align - 1) / align * align, dpad = (descsz + align - 1) / align * align;

	put32(p, namesz);
	put32(p + 4, descsz);
	put32(p + 8, type);
	memcpy(p + 12, name, namesz);
	if (descsz)
		memcpy(p + 12 + npad, desc, descsz);
	return 12 + npad + dpad;
}

static uint8_t segbyte(size_t i) { return (uint8_t)(i * 13 + 1); }

static uint8_t *elf_make(const struct elf_opts *o, size_t *len)
{
	uint8_t *b = calloc(1, F_LEN), desc[16] = { 0 };
	size_t n = 0;

	ck_assert_ptr_nonnull(b);
	memcpy(b, "\x7f" "ELF", 4);
	b[4] = 2; /* ELFCLASS64 */
	b[5] = 1; /* little-endian */
	b[6] = 1;
	put16(b + 0x10, 2);  /* ET_EXEC */
	put16(b + 0x12, 62); /* x86_64 */
	put32(b + 0x14, 1);
	put64(b + 0x18, 0xffffffff81000000ULL);
	put64(b + 0x20, F_PHDRS);
	put16(b + 0x34, 64);
	put16(b + 0x36, 56);
	put16(b + 0x38, 4);

	for (int i = 0; i < 20; i++)
		desc[i % 16] = (uint8_t)i;
	n += put_note(b + F_NOTES + n, o->note_align, "GNU", 3, desc, 16);
	n += put_note(b + F_NOTES + n, o->note_align, "Xen", 6, (const uint8_t *)"generic", 8);
	memset(desc, 0, sizeof(desc));
	put64(desc, o->pvh_desc);
	n += put_note(b + F_NOTES + n, o->note_align, "Xen", o->pvh_type, desc, o->pvh_descsz);

	set_ph(b, 0, 1, F_SEG0, SEG0_PADDR, 0x800, 0x3000, 0x200000);
	set_ph(b, 1, 4, F_NOTES, 0, n, n, o->note_align);
	set_ph(b, 2, 1, F_SEG1, SEG1_PADDR, 0x100, 0x100, 0x1000);
	set_ph(b, 3, 0x6474e551, 0xdeadbeefdeadULL, 0, 0, 0, 16); /* PT_GNU_STACK: ignored */
	for (size_t i = 0; i < 0x900; i++)
		b[F_SEG0 + i] = segbyte(i);
	*len = F_LEN;
	return b;
}

/* Parse an exact-size copy of b[len], so that ASan catches any read past len. */
static int parse(const uint8_t *b, size_t len, struct elf_pvh_info *info, struct boot_err *err)
{
	uint8_t *copy = malloc(len ? len : 1);
	int ret;

	ck_assert_ptr_nonnull(copy);
	if (b)
		memcpy(copy, b, len);
	memset(err, 0, sizeof(*err));
	ret = elf_pvh_parse(b ? copy : NULL, len, info, err);
	free(copy);
	return ret;
}

static int load(struct fake_vm *vm, const uint8_t *k, size_t len, const char *cmdline,
		struct boot_entry *e, struct boot_err *err)
{
	struct boot_load_args a = {
		.gm = &vm->gm, .kernel = k, .kernel_len = len, .cmdline = cmdline, .nr_vcpus = 2,
	};

	memset(err, 0, sizeof(*err));
	return boot_load(&a, e, err);
}

/* parse must fail with -ENOEXEC and a message containing `want`. */
static void expect_reject(const uint8_t *b, size_t len, const char *want)
{
	struct elf_pvh_info info;
	struct boot_err err;

	ck_assert_int_eq(parse(b, len, &info, &err), -ENOEXEC);
	ck_assert_msg(strstr(err.msg, want) != NULL, "message \"%s\" lacks \"%s\"", err.msg, want);
	ck_assert_uint_eq(info.nr_loads, 0);
	ck_assert_uint_eq(info.entry, 0);
}

/* ---- parser ---- */

START_TEST(parse_valid)
{
	struct elf_opts o = elf_default();
	struct elf_pvh_info info;
	struct boot_err err;
	size_t len;
	uint8_t *b = elf_make(&o, &len);

	ck_assert_int_eq(parse(b, len, &info, &err), 0);
	ck_assert_uint_eq(info.entry, ENTRY);
	ck_assert_uint_eq(info.nr_loads, 2);
	ck_assert_uint_eq(info.loads[0].paddr, SEG0_PADDR);
	ck_assert_uint_eq(info.loads[0].offset, F_SEG0);
	ck_assert_uint_eq(info.loads[0].filesz, 0x800);
	ck_assert_uint_eq(info.loads[0].memsz, 0x3000);
	ck_assert_uint_eq(info.loads[1].paddr, SEG1_PADDR);
	ck_assert_uint_eq(info.lowest, SEG0_PADDR);
	ck_assert_uint_eq(info.highest, SEG1_PADDR + 0x100);
	free(b);
}
END_TEST

START_TEST(parse_note_variants)
{
	struct elf_opts o = elf_default();
	struct elf_pvh_info info;
	struct boot_err err;
	size_t len;
	uint8_t *b;

	o.pvh_descsz = 4; /* a 32-bit _ASM_PTR */
	b = elf_make(&o, &len);
	ck_assert_int_eq(parse(b, len, &info, &err), 0);
	ck_assert_uint_eq(info.entry, ENTRY);
	free(b);

	o = elf_default();
	o.note_align = 8; /* 8-byte aligned notes, p_align 8 */
	b = elf_make(&o, &len);
	ck_assert_int_eq(parse(b, len, &info, &err), 0);
	ck_assert_uint_eq(info.entry, ENTRY);
	/* The same bytes read with 4-byte alignment do not find the note where
	 * it is: the GNU note's 8-byte padding misleads the walk. */
	put64(ph(b, 1) + 48, 4);
	ck_assert_int_ne(parse(b, len, &info, &err), 0);
	free(b);
}
END_TEST

START_TEST(parse_bad_header)
{
	struct elf_opts o = elf_default();
	size_t len;
	uint8_t *b = elf_make(&o, &len);

	expect_reject(b, 63, "truncated");
	expect_reject(NULL, 0, "truncated");
	b[4] = 1;
	expect_reject(b, len, "ELFCLASS64");
	b[4] = 2;
	b[5] = 2;
	expect_reject(b, len, "little-endian");
	b[5] = 1;
	b[6] = 0;
	expect_reject(b, len, "version");
	b[6] = 1;
	put16(b + 0x12, 3); /* EM_386 */
	expect_reject(b, len, "not x86_64");
	put16(b + 0x12, 62);
	put16(b + 0x10, 3); /* ET_DYN */
	expect_reject(b, len, "ET_EXEC");
	put16(b + 0x10, 2);
	b[1] = 'e';
	expect_reject(b, len, "ELF magic");
	free(b);
}
END_TEST

START_TEST(parse_bad_program_headers)
{
	struct elf_opts o = elf_default();
	size_t len;
	uint8_t *b = elf_make(&o, &len);

	put16(b + 0x36, 32);
	expect_reject(b, len, "program header size");
	put16(b + 0x36, 56);
	put16(b + 0x38, 0);
	expect_reject(b, len, "no program headers");
	put16(b + 0x38, 0xffff);
	expect_reject(b, len, "PN_XNUM");
	put16(b + 0x38, 4);
	put64(b + 0x20, len - 100); /* 4 headers from here run off the end */
	expect_reject(b, len, "run past the end of the file");
	put64(b + 0x20, UINT64_MAX - 8); /* phoff + size overflows */
	expect_reject(b, len, "run past the end of the file");
	put64(b + 0x20, F_PHDRS);
	/* Cut the file inside the program headers. */
	expect_reject(b, F_PHDRS + 56 * 3, "run past the end of the file");
	free(b);
}
END_TEST

START_TEST(parse_bad_segments)
{
	struct elf_opts o = elf_default();
	size_t len;
	uint8_t *b = elf_make(&o, &len);

	/* Segment bytes past the end of the file. */
	put64(ph(b, 2) + 32, 0x200);
	expect_reject(b, len, "runs past the end of the file");
	/* The file cut short of the last segment. */
	put64(ph(b, 2) + 32, 0x100);
	expect_reject(b, len - 1, "runs past the end of the file");
	/* Offset + size overflowing. */
	put64(ph(b, 2) + 8, UINT64_MAX - 0x10);
	expect_reject(b, len, "runs past the end of the file");
	put64(ph(b, 2) + 8, F_SEG1);
	/* filesz > memsz. */
	put64(ph(b, 2) + 40, 0x80);
	expect_reject(b, len, "p_filesz");
	put64(ph(b, 2) + 40, 0x100);
	/* paddr + memsz wrapping. */
	put64(ph(b, 2) + 24, UINT64_MAX - 0x10);
	expect_reject(b, len, "wraps");
	put64(ph(b, 2) + 24, SEG1_PADDR);
	/* Note segment past the end of the file. */
	put64(ph(b, 1) + 8, len - 8);
	expect_reject(b, len, "runs past the end of the file");
	put64(ph(b, 1) + 8, F_NOTES);
	/* No PT_LOAD at all. */
	put32(ph(b, 0), 6);
	put32(ph(b, 2), 6);
	expect_reject(b, len, "no PT_LOAD");
	free(b);
}
END_TEST

START_TEST(parse_too_many_segments)
{
	struct elf_opts o = elf_default();
	struct elf_pvh_info info;
	struct boot_err err;
	size_t len;
	uint8_t *b = elf_make(&o, &len);
	uint64_t notesz = get64(ph(b, 1) + 32);
	const unsigned int n = ELF_PVH_MAX_LOADS + 1;

	/* n page-apart PT_LOADs (the first holds the entry), then the notes */
	for (unsigned int i = 0; i < n; i++)
		set_ph(b, i, 1, F_SEG0, SEG0_PADDR + i * 0x1000, 0x800, 0x800, 0x1000);
	set_ph(b, n, 4, F_NOTES, 0, notesz, notesz, 4);
	put16(b + 0x38, (uint16_t)(n + 1));
	ck_assert_int_eq(parse(b, len, &info, &err), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err.msg, "more than"));
	/* Exactly the maximum is fine. */
	set_ph(b, ELF_PVH_MAX_LOADS, 4, F_NOTES, 0, notesz, notesz, 4);
	put16(b + 0x38, (uint16_t)(ELF_PVH_MAX_LOADS + 1));
	ck_assert_int_eq(parse(b, len, &info, &err), 0);
	ck_assert_uint_eq(info.nr_loads, ELF_PVH_MAX_LOADS);
	ck_assert_uint_eq(info.highest, SEG0_PADDR + (ELF_PVH_MAX_LOADS - 1) * 0x1000 + 0x800);
	free(b);
}
END_TEST

START_TEST(parse_no_pvh_note)
{
	struct elf_opts o = elf_default();
	struct elf_pvh_info info;
	struct boot_err err;
	size_t len;
	uint8_t *b;

	o.pvh_type = 17;
	b = elf_make(&o, &len);
	ck_assert_int_eq(parse(b, len, &info, &err), -ENOEXEC);
	ck_assert_str_eq(err.msg, "ELF has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); "
				  "build the kernel with CONFIG_PVH=y");
	free(b);

	/* Type 18 under another owner is not the PVH note. */
	o = elf_default();
	b = elf_make(&o, &len);
	memcpy(b + F_NOTES + 32 + 24 + 12, "Xem", 3); /* GNU note 32, Xen/6 note 24 */
	expect_reject(b, len, "no PVH entry note");
	free(b);

	/* No PT_NOTE segment at all. */
	o = elf_default();
	b = elf_make(&o, &len);
	put32(ph(b, 1), 6);
	expect_reject(b, len, "no PVH entry note");
	free(b);
}
END_TEST

START_TEST(parse_bad_note_sizes)
{
	struct elf_opts o = elf_default();
	size_t len;
	uint8_t *b;

	b = elf_make(&o, &len);
	put32(b + F_NOTES, 0xffffffff); /* first note's namesz */
	expect_reject(b, len, "runs past its PT_NOTE segment");
	put32(b + F_NOTES, 4);
	put32(b + F_NOTES + 4, 0xfffffff0); /* descsz */
	expect_reject(b, len, "runs past its PT_NOTE segment");
	put32(b + F_NOTES + 4, 16);
	/* The segment ends inside the PVH note. */
	put64(ph(b, 1) + 32, get64(ph(b, 1) + 32) - 4);
	expect_reject(b, len, "runs past its PT_NOTE segment");
	free(b);

	o.pvh_descsz = 2;
	b = elf_make(&o, &len);
	expect_reject(b, len, "expected 4 or 8");
	free(b);

	o.pvh_descsz = 8;
	o.pvh_desc = 0x100000000ULL | ENTRY;
	b = elf_make(&o, &len);
	expect_reject(b, len, "not a 32-bit address");
	free(b);

	/* Entry outside every segment's file bytes (in seg 0's bss). */
	o = elf_default();
	o.pvh_desc = SEG0_PADDR + 0x900;
	b = elf_make(&o, &len);
	expect_reject(b, len, "not inside any loaded segment");
	free(b);
}
END_TEST

/* ---- loader ---- */

/* On RAM known to be zeros the bss is left alone, unless another segment
 * lies under it (then it is written, as on any RAM). */
START_TEST(load_zeroed_ram_skips_bss)
{
	struct elf_opts o = elf_default();
	struct fake_vm vm;
	struct boot_entry e;
	struct boot_err err;
	size_t len;
	uint8_t *b = elf_make(&o, &len), *seg;
	struct boot_load_args a = {
		.kernel = b, .kernel_len = len, .cmdline = "", .nr_vcpus = 1, .ram_zeroed = true,
	};

	fake_vm_init(&vm, 64 * MIB);
	a.gm = &vm.gm;
	memset(gpa(&vm, SEG0_PADDR, 0x4000), 0xaa, 0x4000); /* not zeros: shows the skip */
	ck_assert_int_eq(boot_load(&a, &e, &err), 0);
	seg = gpa(&vm, SEG0_PADDR, 0x4000);
	for (size_t i = 0; i < 0x800; i++)
		ck_assert_uint_eq(seg[i], segbyte(i));
	for (size_t i = 0x800; i < 0x3000; i++)
		ck_assert_uint_eq(seg[i], 0xaa); /* bss left as the RAM was */
	fake_vm_fini(&vm);

	/* Segment 1 moved below segment 0, its bss over segment 0's bytes:
	 * on zeroed RAM the result is the same with and without the flag. */
	put64(ph(b, 1) + 0x18, SEG0_PADDR - 0x100);
	put64(ph(b, 1) + 0x28, 0x1000);
	{
		struct fake_vm ref;
		struct boot_load_args r = a;

		fake_vm_init(&vm, 64 * MIB);
		fake_vm_init(&ref, 64 * MIB);
		a.gm = &vm.gm;
		r.gm = &ref.gm;
		r.ram_zeroed = false;
		ck_assert_int_eq(boot_load(&a, &e, &err), 0);
		ck_assert_int_eq(boot_load(&r, &e, &err), 0);
		ck_assert_int_eq(memcmp(gpa(&vm, SEG0_PADDR - 0x100, 0x4000),
					gpa(&ref, SEG0_PADDR - 0x100, 0x4000), 0x4000), 0);
		fake_vm_fini(&ref);
		fake_vm_fini(&vm);
	}
	free(b);
}
END_TEST

START_TEST(load_valid)
{
	struct elf_opts o = elf_default();
	struct fake_vm vm;
	struct boot_entry e;
	struct boot_err err;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	size_t len;
	uint8_t *b = elf_make(&o, &len), *seg, *si, *map, *gdt;

	fake_vm_init(&vm, 64 * MIB);
	memset(gpa(&vm, SEG0_PADDR, 0x4000), 0xaa, 0x4000); /* stale bytes under the bss */
	ck_assert_int_eq(load(&vm, b, len, "console=ttyS0 nopv", &e, &err), 0);
	ck_assert_int_eq(e.kind, BOOT_KIND_PVH);
	ck_assert_str_eq(boot_kind_name(e.kind), "PVH");
	ck_assert_uint_eq(e.entry, ENTRY);
	ck_assert_uint_eq(e.load_addr, SEG0_PADDR);
	ck_assert_uint_eq(e.load_size, SEG1_PADDR + 0x100 - SEG0_PADDR);
	ck_assert_uint_eq(e.boot_info, BOOT_START_INFO_ADDR);
	ck_assert_uint_eq(e.protocol, 0);

	seg = gpa(&vm, SEG0_PADDR, 0x4000);
	for (size_t i = 0; i < 0x800; i++)
		ck_assert_uint_eq(seg[i], segbyte(i));
	for (size_t i = 0x800; i < 0x3000; i++)
		ck_assert_uint_eq(seg[i], 0); /* bss zeroed */
	ck_assert_uint_eq(seg[0x3000], 0xaa); /* past memsz: untouched */
	seg = gpa(&vm, SEG1_PADDR, 0x100);
	for (size_t i = 0; i < 0x100; i++)
		ck_assert_uint_eq(seg[i], segbyte(0x800 + i));

	si = gpa(&vm, BOOT_START_INFO_ADDR, 56);
	ck_assert_uint_eq(get32(si), 0x336ec578);
	ck_assert_uint_eq(get32(si + 4), 1);
	ck_assert_uint_eq(get32(si + 8), 0);   /* flags */
	ck_assert_uint_eq(get32(si + 12), 0);  /* nr_modules */
	ck_assert_uint_eq(get64(si + 24), BOOT_CMDLINE_ADDR);
	ck_assert_uint_eq(get64(si + 32), 0);  /* rsdp */
	ck_assert_uint_eq(get64(si + 40), BOOT_MEMMAP_ADDR);
	ck_assert_uint_eq(get32(si + 48), 3);
	ck_assert_str_eq((char *)gpa(&vm, get64(si + 24), 32), "console=ttyS0 nopv");
	map = gpa(&vm, BOOT_MEMMAP_ADDR, 3 * 24);
	ck_assert_uint_eq(get64(map), 0);
	ck_assert_uint_eq(get64(map + 8), 0x9fc00);
	ck_assert_uint_eq(get32(map + 16), 1);
	ck_assert_uint_eq(get64(map + 24), 0x9fc00);
	ck_assert_uint_eq(get32(map + 40), 2);
	ck_assert_uint_eq(get64(map + 48), 0x100000);
	ck_assert_uint_eq(get64(map + 56), 63 * MIB);
	ck_assert_uint_eq(get32(map + 64), 1);
	ck_assert_uint_eq(get32(map + 68), 0); /* reserved */

	memset(&regs, 0x77, sizeof(regs));
	memset(&sregs, 0, sizeof(sregs));
	sregs.cr0 = 0x60000010;
	sregs.efer = 0x500;
	sregs.cr4 = 0x20;
	boot_apply_regs(&e, &regs);
	boot_apply_sregs(&e, &sregs);
	ck_assert_uint_eq(regs.rip, ENTRY);
	ck_assert_uint_eq(regs.rbx, BOOT_START_INFO_ADDR);
	ck_assert_uint_eq(regs.rflags, 2);
	ck_assert_uint_eq(regs.rsi, 0);
	ck_assert_uint_eq(sregs.cr0, 0x11);
	ck_assert_uint_eq(sregs.cr3, 0);
	ck_assert_uint_eq(sregs.cr4, 0);
	ck_assert_uint_eq(sregs.efer, 0);
	ck_assert_uint_eq(sregs.cs.selector, 0x08);
	ck_assert_uint_eq(sregs.cs.db, 1);
	ck_assert_uint_eq(sregs.cs.l, 0);
	ck_assert_uint_eq(sregs.cs.g, 1);
	ck_assert_uint_eq(sregs.cs.base, 0);
	ck_assert_uint_eq(sregs.cs.limit, 0xffffffff);
	ck_assert_uint_eq(sregs.cs.type, 11);
	ck_assert_uint_eq(sregs.ss.db, 1);
	ck_assert_uint_eq(sregs.ss.limit, 0xffffffff);
	ck_assert_uint_eq(sregs.ds.type, 3);
	ck_assert_uint_eq(sregs.tr.base, 0);
	ck_assert_uint_eq(sregs.tr.limit, 0x67);
	ck_assert_uint_eq(sregs.tr.type, 11);
	gdt = gpa(&vm, sregs.gdt.base, sregs.gdt.limit + 1ULL);
	ck_assert_uint_eq(get64(gdt + 0x08), 0x00cf9b000000ffffULL);
	ck_assert_uint_eq(get64(gdt + 0x18), 0x00cf93000000ffffULL);
	ck_assert_uint_eq(get64(gdt + 0x20), 0x00008b0000000067ULL);
	fake_vm_fini(&vm);
	free(b);
}
END_TEST

START_TEST(load_segments_outside_ram)
{
	struct elf_opts o = elf_default();
	struct fake_vm vm;
	struct boot_entry e;
	struct boot_err err;
	size_t len;
	uint8_t *b = elf_make(&o, &len);

	fake_vm_init(&vm, 16 * MIB); /* ends exactly where segment 0 starts */
	ck_assert_int_eq(load(&vm, b, len, "", &e, &err), -ENOMEM);
	ck_assert_str_eq(err.msg, "kernel segment 0x1000000-0x1003000 does not fit: guest RAM "
				  "ends at 0x1000000");
	ck_assert_int_eq(e.kind, BOOT_KIND_NONE);
	fake_vm_fini(&vm);

	/* The last segment ending exactly at the end of RAM fits; a byte less does not. */
	fake_vm_init(&vm, SEG1_PADDR + 0x100);
	ck_assert_int_eq(load(&vm, b, len, "", &e, &err), 0);
	fake_vm_fini(&vm);
	fake_vm_init(&vm, SEG1_PADDR + 0xff);
	ck_assert_int_eq(load(&vm, b, len, "", &e, &err), -ENOMEM);
	ck_assert_ptr_nonnull(strstr(err.msg, "0x1400000-0x1400100"));
	fake_vm_fini(&vm);

	/* A segment in the MMIO hole, and one above 4 GiB, with RAM on both sides. */
	fake_vm_init(&vm, 0xd0000000ULL + 64 * MIB);
	put64(ph(b, 2) + 24, 0xd0000000ULL);
	ck_assert_int_eq(load(&vm, b, len, "", &e, &err), -ENOMEM);
	put64(ph(b, 2) + 24, 0x100000000ULL);
	ck_assert_int_eq(load(&vm, b, len, "", &e, &err), -ENOMEM);
	put64(ph(b, 2) + 24, SEG1_PADDR);
	ck_assert_int_eq(load(&vm, b, len, "", &e, &err), 0);
	fake_vm_fini(&vm);

	/* Below 1 MiB, over the boot structures. */
	fake_vm_init(&vm, 64 * MIB);
	put64(ph(b, 2) + 24, 0x9f000);
	ck_assert_int_eq(load(&vm, b, len, "", &e, &err), -ENOEXEC);
	ck_assert_ptr_nonnull(strstr(err.msg, "below 1 MiB"));
	fake_vm_fini(&vm);
	free(b);
}
END_TEST

START_TEST(load_cmdline_limit)
{
	struct elf_opts o = elf_default();
	struct fake_vm vm;
	struct boot_entry e;
	struct boot_err err;
	size_t len;
	uint8_t *b = elf_make(&o, &len);
	char *line = malloc(BOOT_CMDLINE_AREA + 1);

	ck_assert_ptr_nonnull(line);
	fake_vm_init(&vm, 64 * MIB);
	memset(line, 'a', 2047);
	line[2047] = 0;
	ck_assert_int_eq(load(&vm, b, len, line, &e, &err), 0);
	ck_assert_uint_eq(e.cmdline_len, 2047);
	ck_assert_uint_eq(strlen((char *)gpa(&vm, BOOT_CMDLINE_ADDR, 2048)), 2047);
	line[2047] = 'a';
	line[2048] = 0;
	ck_assert_int_eq(load(&vm, b, len, line, &e, &err), -E2BIG);
	ck_assert_ptr_nonnull(strstr(err.msg, "2048 bytes"));
	ck_assert_ptr_nonnull(strstr(err.msg, "2047"));
	/* Longer than boot/'s whole command line area. */
	memset(line, 'a', BOOT_CMDLINE_AREA);
	line[BOOT_CMDLINE_AREA] = 0;
	ck_assert_int_eq(load(&vm, b, len, line, &e, &err), -E2BIG);
	fake_vm_fini(&vm);
	free(line);
	free(b);
}
END_TEST

/* The map_file hook: records its calls and "maps" by copying from the file. */
struct map_rec {
	struct fake_vm *vm;
	const uint8_t *file;
	int ret;
	unsigned int calls;
	uint64_t gpa, off, len;
};

static int map_hook(void *ctx, uint64_t addr, uint64_t off, uint64_t len)
{
	struct map_rec *m = ctx;

	m->calls++;
	m->gpa = addr;
	m->off = off;
	m->len = len;
	if (m->ret == 0)
		memcpy(gpa(m->vm, addr, len), m->file + off, len);
	return m->ret;
}

/* A page-aligned segment with a partial last page: whole pages go through
 * the hook (or are copied when it declines), the rest is copied, the bss
 * zeroed; an unaligned segment never reaches the hook. */
static void load_mapped(int hook_ret)
{
	struct elf_opts o = elf_default();
	struct fake_vm vm;
	struct boot_entry e;
	struct boot_err err;
	struct map_rec m;
	size_t len, big = 0x3000;
	uint8_t *small = elf_make(&o, &len), *b = calloc(1, big), *seg;
	struct boot_load_args a;

	ck_assert_ptr_nonnull(b);
	memcpy(b, small, len);
	set_ph(b, 0, 1, F_SEG0, SEG0_PADDR, 0x1100, 0x3000, 0x200000);
	set_ph(b, 2, 1, 0x2800, SEG1_PADDR, 0x100, 0x100, 0x1000);
	for (size_t i = 0; i < 0x2000; i++)
		b[F_SEG0 + i] = segbyte(i);
	fake_vm_init(&vm, 64 * MIB);
	memset(gpa(&vm, SEG0_PADDR, 0x4000), 0xaa, 0x4000);
	memset(&m, 0, sizeof(m));
	m.vm = &vm;
	m.file = b;
	m.ret = hook_ret;
	memset(&a, 0, sizeof(a));
	a.gm = &vm.gm;
	a.kernel = b;
	a.kernel_len = big;
	a.cmdline = "x";
	a.nr_vcpus = 1;
	a.map_file = map_hook;
	a.map_ctx = &m;
	memset(&err, 0, sizeof(err));
	if (hook_ret < 0) {
		ck_assert_int_eq(boot_load(&a, &e, &err), hook_ret);
		ck_assert_ptr_nonnull(strstr(err.msg, "cannot map"));
		ck_assert_uint_eq(m.calls, 1);
		goto out;
	}
	ck_assert_int_eq(boot_load(&a, &e, &err), 0);
	ck_assert_uint_eq(m.calls, 1);
	ck_assert_uint_eq(m.gpa, SEG0_PADDR);
	ck_assert_uint_eq(m.off, F_SEG0);
	ck_assert_uint_eq(m.len, 0x1000);
	seg = gpa(&vm, SEG0_PADDR, 0x4000);
	for (size_t i = 0; i < 0x1100; i++)
		ck_assert_uint_eq(seg[i], segbyte(i));
	for (size_t i = 0x1100; i < 0x3000; i++)
		ck_assert_uint_eq(seg[i], 0);
	ck_assert_uint_eq(seg[0x3000], 0xaa);
	seg = gpa(&vm, SEG1_PADDR, 0x100);
	for (size_t i = 0; i < 0x100; i++)
		ck_assert_uint_eq(seg[i], segbyte(0x1800 + i));
out:
	fake_vm_fini(&vm);
	free(b);
	free(small);
}

START_TEST(load_whole_pages_mapped)
{
	load_mapped(0);
}
END_TEST

START_TEST(load_map_declined_copies)
{
	load_mapped(1);
}
END_TEST

START_TEST(load_map_failure_fails_the_load)
{
	load_mapped(-ENOMEM);
}
END_TEST

static Suite *pvh_suite(void)
{
	Suite *s = suite_create("boot_pvh");
	TCase *tp = tcase_create("parse"), *tl = tcase_create("load");

	tcase_add_test(tp, parse_valid);
	tcase_add_test(tp, parse_note_variants);
	tcase_add_test(tp, parse_bad_header);
	tcase_add_test(tp, parse_bad_program_headers);
	tcase_add_test(tp, parse_bad_segments);
	tcase_add_test(tp, parse_too_many_segments);
	tcase_add_test(tp, parse_no_pvh_note);
	tcase_add_test(tp, parse_bad_note_sizes);
	suite_add_tcase(s, tp);
	tcase_add_test(tl, load_valid);
	tcase_add_test(tl, load_zeroed_ram_skips_bss);
	tcase_add_test(tl, load_segments_outside_ram);
	tcase_add_test(tl, load_cmdline_limit);
	tcase_add_test(tl, load_whole_pages_mapped);
	tcase_add_test(tl, load_map_declined_copies);
	tcase_add_test(tl, load_map_failure_fails_the_load);
	suite_add_tcase(s, tl);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(pvh_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
