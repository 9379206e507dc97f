/* vmlinux via PVH: parse the ELF and its Xen PHYS32_ENTRY note, load segments, build hvm_start_info. */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "boot/boot.h"
#include "boot/boot_priv.h"
#include "boot/layout.h"

/* ELF64 (System V gABI), the fields used. */
#define EH_SIZE 64
#define EH_CLASS 4   /* e_ident[EI_CLASS] */
#define EH_DATA 5    /* e_ident[EI_DATA] */
#define EH_IDVER 6   /* e_ident[EI_VERSION] */
#define EH_TYPE 0x10 /* u16 */
#define EH_MACHINE 0x12
#define EH_PHOFF 0x20     /* u64 */
#define EH_PHENTSIZE 0x36 /* u16 */
#define EH_PHNUM 0x38     /* u16 */
#define ELFCLASS64 2
#define ELFDATA2LSB 1
#define EV_CURRENT 1
#define ET_EXEC 2
#define EM_X86_64 62
#define PN_XNUM 0xffff

#define PH_SIZE 56
#define PH_TYPE 0x00   /* u32 */
#define PH_OFFSET 0x08 /* u64 */
#define PH_PADDR 0x18
#define PH_FILESZ 0x20
#define PH_MEMSZ 0x28
#define PH_ALIGN 0x30
#define PT_LOAD 1
#define PT_NOTE 4

#define NOTE_HDR 12 /* u32 namesz, descsz, type */

/* xen/include/public/arch-x86/hvm/start_info.h */
#define HVM_START_MAGIC 0x336ec578U
#define HVM_START_VERSION 1
#define SI_MAGIC 0
#define SI_VERSION 4
#define SI_CMDLINE_PADDR 24
#define SI_RSDP_PADDR 32
#define SI_MEMMAP_PADDR 40
#define SI_MEMMAP_ENTRIES 48
#define SI_SIZE 56

static const uint8_t elf_magic[4] = { 0x7f, 'E', 'L', 'F' };

/* Whether load i's bss meets another load's range (then it must be
 * written: the other may have put bytes there). */
static bool elf_bss_overlaps(const struct elf_pvh_info *info, unsigned int i)
{
	const struct elf_pvh_load *l = &info->loads[i];
	uint64_t lo = l->paddr + l->filesz, hi = l->paddr + l->memsz;

	for (unsigned int j = 0; j < info->nr_loads; j++) {
		const struct elf_pvh_load *o = &info->loads[j];

		if (j != i && lo < hi && o->paddr < hi && lo < o->paddr + o->memsz)
			return true;
	}
	return false;
}

/* Scan one PT_NOTE segment's bytes for the PVH entry note. 0 with *found set
 * when it is there, 0 with *found clear when not, -ENOEXEC when malformed. */
static int elf_scan_notes(const uint8_t *p, uint64_t size, uint64_t align, uint64_t seg_off,
			  uint32_t *entry, int *found, struct boot_err *err)
{
	uint64_t pos = 0;

	/* Each note advances pos by at least NOTE_HDR, so at most size / 12 turns. */
	while (size - pos >= NOTE_HDR) {
		uint32_t namesz = boot_le32(p + pos), descsz = boot_le32(p + pos + 4);
		uint32_t type = boot_le32(p + pos + 8);
		/* u32 + 7 cannot overflow a u64; neither can their sum. */
		uint64_t name_pad = ((uint64_t)namesz + align - 1) & ~(align - 1);
		uint64_t desc_pad = ((uint64_t)descsz + align - 1) & ~(align - 1);
		uint64_t total = NOTE_HDR + name_pad + desc_pad;
		const uint8_t *name = p + pos + NOTE_HDR, *desc = name + name_pad;

		if (total > size - pos) {
			boot_errf(err, "ELF note at file offset 0x%" PRIx64 " (name size %" PRIu32
				  ", desc size %" PRIu32 ") runs past its PT_NOTE segment",
				  seg_off + pos, namesz, descsz);
			return -ENOEXEC;
		}
		if (!*found && namesz == 4 && memcmp(name, "Xen", 4) == 0 &&
		    type == ELF_PVH_NOTE_TYPE) {
			/* Linux emits the entry with _ASM_PTR: 8 bytes on x86_64, 4 on
			 * i386. Either way it is a 32-bit physical address. */
			if (descsz != 4 && descsz != 8) {
				boot_errf(err, "PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) has a %" PRIu32
					  "-byte descriptor, expected 4 or 8", descsz);
				return -ENOEXEC;
			}
			if (descsz == 8 && boot_le32(desc + 4) != 0) {
				boot_errf(err, "PVH entry 0x%" PRIx64 " is not a 32-bit address",
					  boot_le64(desc));
				return -ENOEXEC;
			}
			*entry = boot_le32(desc);
			*found = 1;
		}
		pos += total;
	}
	/* Fewer than NOTE_HDR bytes left: padding at the segment's end. */
	return 0;
}

/* elf_pvh_parse() without the clean-up: may leave *out half-filled on error. */
static int elf_pvh_parse_into(const uint8_t *data, size_t len, struct elf_pvh_info *out,
			      struct boot_err *err)
{
	uint64_t phoff, phsize, phend;
	unsigned int phnum, phentsize;
	uint32_t entry = 0;
	int found = 0, ret;

	memset(out, 0, sizeof(*out));
	if (!data || len < EH_SIZE) {
		boot_errf(err, "ELF truncated: %zu bytes, the ELF header needs %d",
			  data ? len : 0, EH_SIZE);
		return -ENOEXEC;
	}
	if (memcmp(data, elf_magic, sizeof(elf_magic)) != 0) {
		boot_errf(err, "no ELF magic: not a vmlinux");
		return -ENOEXEC;
	}
	if (data[EH_CLASS] != ELFCLASS64) {
		boot_errf(err, "ELF class %u is not ELFCLASS64 (need a 64-bit x86_64 vmlinux)",
			  data[EH_CLASS]);
		return -ENOEXEC;
	}
	if (data[EH_DATA] != ELFDATA2LSB) {
		boot_errf(err, "ELF data encoding %u is not little-endian", data[EH_DATA]);
		return -ENOEXEC;
	}
	if (data[EH_IDVER] != EV_CURRENT) {
		boot_errf(err, "ELF version %u is not 1", data[EH_IDVER]);
		return -ENOEXEC;
	}
	if (boot_le16(data + EH_TYPE) != ET_EXEC) {
		boot_errf(err, "ELF type %u is not ET_EXEC (an executable vmlinux)",
			  boot_le16(data + EH_TYPE));
		return -ENOEXEC;
	}
	if (boot_le16(data + EH_MACHINE) != EM_X86_64) {
		boot_errf(err, "ELF machine %u is not x86_64 (62)", boot_le16(data + EH_MACHINE));
		return -ENOEXEC;
	}

	phoff = boot_le64(data + EH_PHOFF);
	phentsize = boot_le16(data + EH_PHENTSIZE);
	phnum = boot_le16(data + EH_PHNUM);
	if (phnum == 0 || phnum == PN_XNUM) {
		boot_errf(err, "ELF has %s program headers", phnum ? "extended (PN_XNUM)" : "no");
		return -ENOEXEC;
	}
	if (phentsize != PH_SIZE) {
		boot_errf(err, "ELF program header size %u is not %d", phentsize, PH_SIZE);
		return -ENOEXEC;
	}
	phsize = (uint64_t)phnum * PH_SIZE; /* < 2^16 * 56: no overflow */
	if (__builtin_add_overflow(phoff, phsize, &phend) || phend > len) {
		boot_errf(err, "ELF program headers (%u at 0x%" PRIx64
			  ") run past the end of the file (%zu bytes)", phnum, phoff, len);
		return -ENOEXEC;
	}

	out->lowest = UINT64_MAX;
	for (unsigned int i = 0; i < phnum; i++) {
		const uint8_t *ph = data + phoff + (uint64_t)i * PH_SIZE;
		uint32_t type = boot_le32(ph + PH_TYPE);
		uint64_t off = boot_le64(ph + PH_OFFSET), paddr = boot_le64(ph + PH_PADDR);
		uint64_t filesz = boot_le64(ph + PH_FILESZ), memsz = boot_le64(ph + PH_MEMSZ);
		uint64_t fend, mend;

		if (type != PT_LOAD && type != PT_NOTE)
			continue;
		if (__builtin_add_overflow(off, filesz, &fend) || fend > len) {
			boot_errf(err, "ELF segment %u (0x%" PRIx64 " bytes at file offset 0x%" PRIx64
				  ") runs past the end of the file (%zu bytes)", i, filesz, off, len);
			return -ENOEXEC;
		}
		if (type == PT_NOTE) {
			uint64_t align = boot_le64(ph + PH_ALIGN) == 8 ? 8 : 4;

			ret = elf_scan_notes(data + off, filesz, align, off, &entry, &found, err);
			if (ret)
				return ret;
			continue;
		}
		if (filesz > memsz) {
			boot_errf(err, "ELF segment %u has p_filesz 0x%" PRIx64 " > p_memsz 0x%" PRIx64,
				  i, filesz, memsz);
			return -ENOEXEC;
		}
		if (memsz == 0)
			continue;
		if (__builtin_add_overflow(paddr, memsz, &mend)) {
			boot_errf(err, "ELF segment %u at 0x%" PRIx64 " + 0x%" PRIx64
				  " wraps the address space", i, paddr, memsz);
			return -ENOEXEC;
		}
		if (out->nr_loads == ELF_PVH_MAX_LOADS) {
			boot_errf(err, "ELF has more than %d PT_LOAD segments", ELF_PVH_MAX_LOADS);
			return -ENOEXEC;
		}
		out->loads[out->nr_loads++] = (struct elf_pvh_load){
			.offset = off, .paddr = paddr, .filesz = filesz, .memsz = memsz,
		};
		if (paddr < out->lowest)
			out->lowest = paddr;
		if (mend > out->highest)
			out->highest = mend;
	}

	if (out->nr_loads == 0) {
		boot_errf(err, "ELF has no PT_LOAD segment to load");
		return -ENOEXEC;
	}
	if (!found) {
		boot_errf(err, "ELF has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); "
			  "build the kernel with CONFIG_PVH=y");
		return -ENOEXEC;
	}
	for (unsigned int i = 0; i < out->nr_loads; i++) {
		const struct elf_pvh_load *l = &out->loads[i];

		if (entry >= l->paddr && entry - l->paddr < l->filesz) {
			out->entry = entry;
			return 0;
		}
	}
	boot_errf(err, "PVH entry 0x%" PRIx32 " is not inside any loaded segment's file bytes",
		  entry);
	return -ENOEXEC;
}

int elf_pvh_parse(const uint8_t *data, size_t len, struct elf_pvh_info *out, struct boot_err *err)
{
	int ret = elf_pvh_parse_into(data, len, out, err);

	if (ret)
		memset(out, 0, sizeof(*out));
	return ret;
}

static int pvh_write_start_info(const struct guest_mem *gm, const struct boot_e820_entry *e820,
				unsigned int nr_e820)
{
	uint8_t si[SI_SIZE], map[BOOT_E820_MAX * BOOT_MEMMAP_ENTRY_SIZE];
	int ret;

	_Static_assert(SI_SIZE <= BOOT_START_INFO_SIZE, "start_info fits its slot");
	if (nr_e820 > BOOT_E820_MAX)
		return -EINVAL;
	memset(map, 0, sizeof(map));
	for (unsigned int i = 0; i < nr_e820; i++) {
		uint8_t *ent = map + i * BOOT_MEMMAP_ENTRY_SIZE;

		boot_put64(ent, e820[i].addr);
		boot_put64(ent + 8, e820[i].size);
		boot_put32(ent + 16, e820[i].type); /* then u32 reserved = 0 */
	}
	ret = gm_write(gm, BOOT_MEMMAP_ADDR, map, sizeof(map));
	if (ret)
		return ret;

	memset(si, 0, sizeof(si));
	boot_put32(si + SI_MAGIC, HVM_START_MAGIC);
	boot_put32(si + SI_VERSION, HVM_START_VERSION); /* version 1 has the memmap */
	boot_put64(si + SI_CMDLINE_PADDR, BOOT_CMDLINE_ADDR);
	boot_put64(si + SI_RSDP_PADDR, 0); /* no ACPI */
	boot_put64(si + SI_MEMMAP_PADDR, BOOT_MEMMAP_ADDR);
	boot_put32(si + SI_MEMMAP_ENTRIES, nr_e820);
	return gm_write(gm, BOOT_START_INFO_ADDR, si, sizeof(si));
}

int elf_pvh_load(const struct guest_mem *gm, const uint8_t *data, size_t len,
		 const struct elf_pvh_info *info, const struct boot_load_args *in, size_t cmdline_len,
		 const struct boot_e820_entry *e820, unsigned int nr_e820, struct boot_entry *out,
		 struct boot_err *err)
{
	uint64_t ram_end = boot_low_ram_end(gm);
	int ret;

	if (cmdline_len > BOOT_PVH_CMDLINE_MAX) {
		boot_errf(err, "kernel command line is %zu bytes but PVH boot takes at most %d "
			  "(x86 COMMAND_LINE_SIZE 2048)", cmdline_len, BOOT_PVH_CMDLINE_MAX);
		return -E2BIG;
	}
	if (info->nr_loads == 0 || info->nr_loads > ELF_PVH_MAX_LOADS)
		return -EINVAL;

	/* Check every segment before writing any. */
	for (unsigned int i = 0; i < info->nr_loads; i++) {
		const struct elf_pvh_load *l = &info->loads[i];
		uint64_t end;

		if (l->paddr < BOOT_KERNEL_MIN) {
			boot_errf(err, "ELF PT_LOAD segment at 0x%" PRIx64
				  " is below 1 MiB, where the boot structures live", l->paddr);
			return -ENOEXEC;
		}
		/* elf_pvh_parse guarantees these four. */
		if (__builtin_add_overflow(l->paddr, l->memsz, &end) || l->offset > len ||
		    l->filesz > len - l->offset || l->filesz > l->memsz)
			return -EINVAL;
		if (end > ram_end || !gm_ptr(gm, l->paddr, l->memsz)) {
			boot_errf(err, "kernel segment 0x%" PRIx64 "-0x%" PRIx64
				  " does not fit: guest RAM ends at 0x%" PRIx64,
				  l->paddr, end, ram_end);
			return -ENOMEM;
		}
	}

	for (unsigned int i = 0; i < info->nr_loads; i++) {
		const struct elf_pvh_load *l = &info->loads[i];
		uint8_t *dst = gm_ptr(gm, l->paddr, l->memsz); /* checked above */

		uint64_t mapped = 0;

		if (!dst)
			return -EFAULT;
		/* Whole pages straight from the file where the caller can map
		 * them: no copy, and VMs booting one kernel share its pages. */
		if (in && in->map_file && !(l->paddr & (BOOT_PAGE_SIZE - 1)) &&
		    !(l->offset & (BOOT_PAGE_SIZE - 1))) {
			uint64_t whole = l->filesz & ~(uint64_t)(BOOT_PAGE_SIZE - 1);
			int m = whole ? in->map_file(in->map_ctx, l->paddr, l->offset, whole) : 1;

			if (m < 0) {
				boot_errf(err, "cannot map the kernel segment at 0x%" PRIx64
					  " into guest RAM (%d)", l->paddr, m);
				return m;
			}
			if (m == 0)
				mapped = whole;
		}
		memcpy(dst + mapped, data + l->offset + mapped, l->filesz - mapped);
		if (!in || !in->ram_zeroed || elf_bss_overlaps(info, i))
			memset(dst + l->filesz, 0, l->memsz - l->filesz); /* bss */
	}

	ret = pvh_write_start_info(gm, e820, nr_e820);
	if (ret) {
		boot_errf(err, "cannot write hvm_start_info into guest RAM (%d)", ret);
		return -ENOMEM;
	}
	out->kind = BOOT_KIND_PVH;
	out->entry = info->entry;
	out->load_addr = info->lowest;
	out->load_size = info->highest - info->lowest;
	out->boot_info = BOOT_START_INFO_ADDR;
	out->protocol = 0;
	return 0;
}
